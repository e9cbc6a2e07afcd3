//! Boot tests of the filesystem: the file system calls of C programs
//! against the read-only root image (`--rootfs=rofs`), `/tmp`, `/dev` and
//! `/proc`.

mod guests;
mod support;

use guests::VARIANTS;
use support::{rosv_run, text};

#[test]
fn file_system_calls_behave_like_linux() {
    for variant in VARIANTS {
        for cpus in ["1", "2"] {
            let program = guests::c_program("files", variant);
            let path = program.to_str().expect("UTF-8 path");
            let output = rosv_run(&["--cpus", cpus, "--kernel-args=--rootfs=rofs", "--exec", path]);
            let stdout = text(&output.stdout);
            assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
        }
    }
}
