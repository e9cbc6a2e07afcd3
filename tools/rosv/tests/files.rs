//! Boot tests of the filesystem: the file system calls of C programs
//! against the read-only root image, `/tmp`, `/dev` and `/proc`.

mod guests;

use std::process::Command;

use guests::VARIANTS;

const TIMEOUT_SECONDS: &str = "180";

#[test]
fn file_system_calls_behave_like_linux() {
    for variant in VARIANTS {
        for cpus in ["1", "2"] {
            let program = guests::c_program("files", variant);
            let path = program.to_str().expect("UTF-8 path");
            let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
                .args(["run", "--timeout", TIMEOUT_SECONDS, "--cpus", cpus, "--exec", path])
                .output()
                .expect("run rosv");
            let stdout = String::from_utf8_lossy(&output.stdout);
            println!(
                "--- {variant:?} on {cpus} CPUs: status {:?}\n{stdout}\n{}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
        }
    }
}
