//! Boot tests of the Linux ABI's breadth: credentials and the permission
//! checks that follow them, file system calls beyond the basics, and the
//! files of `/proc` and `/sys`. Each program runs on the host first (a
//! check that fails on Linux is wrong), then in rosv on one and two CPUs.

mod guests;
mod support;

use guests::{VARIANTS, Variant};
use support::{rosv_run, text};

/// Runs `name` on the host and in rosv, and checks both report no failed
/// check.
fn passes_like_linux(name: &str, variants: &[Variant]) {
    for &variant in variants {
        let program = guests::c_program(name, variant);
        let host = std::process::Command::new(&program).output().expect("run the program on the host");
        let host_stdout = text(&host.stdout);
        assert!(
            host_stdout.contains("\n0 checks failed\n") || host_stdout.starts_with("SKIPPED"),
            "{variant:?} on Linux:\n{host_stdout}"
        );
        let path = program.to_str().expect("UTF-8 path");
        for cpus in ["1", "2"] {
            let output = rosv_run(&["--cpus", cpus, "--exec", path]);
            let stdout = text(&output.stdout);
            assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
        }
    }
}

#[test]
fn credentials_and_permission_checks_behave_like_linux() {
    passes_like_linux("credentials", &VARIANTS);
}

#[test]
fn proc_and_sys_files_behave_like_linux() {
    passes_like_linux("procfs", &VARIANTS);
}

#[test]
fn processor_time_and_io_accounting_behave_like_linux() {
    passes_like_linux("accounting", &VARIANTS);
}

#[test]
fn memory_call_and_wait_errors_behave_like_linux() {
    passes_like_linux("memory-errors", &VARIANTS);
}

#[test]
fn transfers_between_descriptors_behave_like_linux() {
    passes_like_linux("transfer", &VARIANTS);
}

#[test]
fn locks_and_status_flags_behave_like_linux() {
    passes_like_linux("locks", &VARIANTS);
}

#[test]
fn extended_attributes_behave_like_linux() {
    passes_like_linux("attributes", &VARIANTS);
}

#[test]
fn named_pipes_and_device_nodes_behave_like_linux() {
    passes_like_linux("nodes", &VARIANTS);
}

#[test]
fn loop_devices_behave_like_linux() {
    passes_like_linux("loop", &VARIANTS);
}

#[test]
fn settings_and_ipc_listings_behave_like_linux() {
    passes_like_linux("settings", &VARIANTS);
}

#[test]
fn chroot_behaves_like_linux() {
    passes_like_linux("chroot", &VARIANTS);
}

#[test]
fn inotify_and_dnotify_behave_like_linux() {
    passes_like_linux("watches", &VARIANTS);
}

#[test]
fn openat2_limits_path_walks_like_linux() {
    passes_like_linux("open-how", &VARIANTS);
}

#[test]
fn access_times_follow_the_mount_policy_like_linux() {
    passes_like_linux("access-times", &VARIANTS);
}

#[test]
fn the_map_count_limit_holds_like_linux() {
    passes_like_linux("map-count", &VARIANTS);
}

#[test]
fn descriptor_mount_calls_behave_like_linux() {
    passes_like_linux("mounts", &VARIANTS);
}
