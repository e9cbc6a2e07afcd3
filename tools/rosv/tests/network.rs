//! Boot tests of networking: TCP and UDP sockets over the loopback
//! interface and local (`AF_UNIX`) sockets, between threads of a guest, on
//! one and two processors.

mod guests;
mod support;

use guests::VARIANTS;
use support::{rosv_run, text};

/// Runs the checking program `name` in every static variant on the host
/// (Linux: the behaviour to match), then in rosv on one and two
/// processors; every check must pass in both.
fn assert_checks_pass(name: &str) {
    for variant in VARIANTS {
        let program = guests::c_program(name, variant);
        let path = program.to_str().expect("UTF-8 path");
        let host = std::process::Command::new(&program).output().expect("run the program on the host");
        let host_stdout = text(&host.stdout);
        assert!(host_stdout.contains("\n0 checks failed\n"), "{variant:?} on Linux:\n{host_stdout}");
        assert_eq!(host.status.code(), Some(0), "{variant:?} on Linux");
        for cpus in ["1", "2"] {
            let output = rosv_run(&["--cpus", cpus, "--exec", path]);
            let stdout = text(&output.stdout);
            assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
        }
    }
}

#[test]
fn sockets_over_the_loopback_behave_like_linux() {
    assert_checks_pass("network");
}

#[test]
fn tcp_info_gathered_sends_multicast_and_error_queues_behave_like_linux() {
    assert_checks_pass("network-options");
}

#[test]
fn listeners_backlogs_and_network_settings_behave_like_linux() {
    assert_checks_pass("listeners");
}

#[test]
fn local_sockets_behave_like_linux() {
    assert_checks_pass("local");
}

#[test]
fn socket_options_control_messages_and_timeouts_behave_like_linux() {
    assert_checks_pass("sockets");
}

#[test]
fn blocking_calls_end_as_on_linux() {
    assert_checks_pass("blocking");
}

#[test]
fn misused_sockets_fail_as_on_linux() {
    assert_checks_pass("socket-errors");
}

#[test]
fn images_carry_name_service_files_and_the_kernel_writes_the_resolver_configuration() {
    for variant in guests::DYNAMIC_VARIANTS {
        let program = guests::c_program("names", variant);
        let path = program.to_str().expect("UTF-8 path");
        let output = rosv_run(&["--kernel-args=--nameserver=192.0.2.53", "--exec", path]);
        let stdout = text(&output.stdout);
        assert!(stdout.contains("localhost is 127.0.0.1\n"), "{variant:?}:\n{stdout}");
        assert!(stdout.contains("nobody is 65534\n"), "{variant:?}:\n{stdout}");
        assert!(stdout.contains("resolv.conf: nameserver 192.0.2.53\n"), "{variant:?}:\n{stdout}");
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
    }
}

#[test]
fn programs_see_the_interfaces_through_netlink_and_ioctls() {
    for variant in VARIANTS {
        let program = guests::c_program("interfaces", variant);
        let path = program.to_str().expect("UTF-8 path");
        let output = rosv_run(&["--exec", path]);
        let stdout = text(&output.stdout);
        assert!(stdout.contains("\ninterface lo 127.0.0.1/8\n"), "{variant:?}:\n{stdout}");
        assert!(!stdout.contains("interface eth0"), "no card, no eth0 ({variant:?}):\n{stdout}");
        assert!(stdout.contains("\n0 checks failed\n"), "{variant:?}:\n{stdout}");
        assert_eq!(output.status.code(), Some(0), "{variant:?}");
    }
}
