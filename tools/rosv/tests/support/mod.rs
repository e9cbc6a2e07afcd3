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
