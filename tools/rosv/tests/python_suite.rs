//! Modules of CPython's own regression tests (Debian's
//! `libpython3.11-testsuite`), run unmodified by `python3 -m test` in the
//! VM: the system-level modules that exercise files, descriptors, polling,
//! signals and processes the way Python's users do. Skipped, visibly, when
//! the test package is not installed.

mod support;

use std::path::Path;

use support::{rosv_run, skip, text};

/// A file of the test package, whose presence says it is installed.
const TEST_PACKAGE_FILE: &str = "/usr/lib/python3.11/test/test_posix.py";

/// Runs `python3 -m test` with `arguments` in the VM, with the test
/// package and a shell (`os.popen` and some tests run `/bin/sh` and
/// coreutils), and checks that the run's summary says every test passed.
fn suite_passes(test: &str, arguments: &[&str]) {
    if !Path::new(TEST_PACKAGE_FILE).exists() {
        skip(test, "CPython's tests are missing (apt-get install libpython3.11-testsuite)");
        return;
    }
    let mut all = vec![
        "--memory",
        "1G",
        "--exec",
        "/usr/bin/python3",
        "--package",
        "libpython3.11-testsuite",
        "--package",
        "dash",
        "--package",
        "coreutils",
        "--",
        "-m",
        "test",
    ];
    all.extend_from_slice(arguments);
    let output = rosv_run(&all);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("Tests result: SUCCESS"), "{stdout}{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn cpython_file_and_polling_modules_pass() {
    suite_passes(
        "cpython_file_and_polling_modules_pass",
        &[
            "test_posix",
            "test_fcntl",
            "test_stat",
            "test_poll",
            "test_select",
            "test_epoll",
            "test_sched",
            "test_pwd",
            "test_glob",
        ],
    );
}

/// The tests that found differences from Linux: a child closing every
/// descriptor it lists in `/proc/self/fd` while it reads the listing,
/// `pidfd_send_signal` through a `/proc/PID` directory descriptor, and the
/// socket module's name lookups, which read `/etc/services`.
#[test]
fn cpython_descriptor_passing_proc_pidfd_and_socket_name_tests_pass() {
    suite_passes(
        "cpython_descriptor_passing_proc_pidfd_and_socket_name_tests_pass",
        &[
            "-v",
            "test_subprocess",
            "test_signal",
            "test_socket",
            "-m",
            "test_pass_fds",
            "-m",
            "test_pidfd_send_signal",
            "-m",
            "GeneralModuleTests",
        ],
    );
}
