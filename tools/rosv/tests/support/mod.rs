//! What several boot-test files share: skipping visibly, and whether
//! Firecracker can run here.

#![allow(dead_code)]

use std::path::Path;

/// Says that a test was skipped, on the terminal: writing to the standard
/// error handle directly is not captured by the test harness.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Whether Firecracker can be tested here; says why not otherwise.
pub fn firecracker_available(test: &str) -> bool {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|directory| directory.join("firecracker").is_file())
    });
    if !on_path {
        skip(test, "firecracker is not on PATH");
        return false;
    }
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(test, "/dev/kvm cannot be opened");
        return false;
    }
    true
}

/// Whether the host's KVM emulates ring 0 in software (`kvm_pvm`), which
/// cannot run the SSE code of C libraries in the ring 0 applications use.
pub fn kvm_is_software() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

/// Seconds any one VM may run: generous, for slow emulation.
pub const TIMEOUT_SECONDS: &str = "180";

/// Bytes as text, for assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A test path as the `&str` a command line takes.
pub fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Runs `rosv` with `arguments` and prints what it did, for failing tests.
pub fn rosv(arguments: &[&str]) -> std::process::Output {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_rosv")).args(arguments).output().expect("run rosv");
    println!(
        "--- rosv {arguments:?}\nstatus {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Runs `rosv run` with `arguments` and [`TIMEOUT_SECONDS`].
pub fn rosv_run(arguments: &[&str]) -> std::process::Output {
    let mut all = vec!["run", "--timeout", TIMEOUT_SECONDS];
    all.extend_from_slice(arguments);
    rosv(&all)
}
