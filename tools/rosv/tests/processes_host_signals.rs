//! Boot tests of the host's signals to `rosv run`: every SIGINT, SIGTERM,
//! SIGHUP and SIGQUIT reaches the application, which ends or handles it as
//! it would on Linux; a third SIGINT or SIGTERM within a few seconds stops
//! the VM at once.

mod guests;
mod support;

use std::process::Command;
use std::time::Duration;

use guests::Variant;
use support::Guest;

/// How long a booting guest may take to print its first line under TCG.
const BOOT_LIMIT: Duration = Duration::from_secs(120);
/// How long a signal may take to reach the program and its answer to come
/// back, on a loaded host.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);
/// How far apart signals must be never to count as a way out (rosv's
/// window, 5 s, and a margin).
const ESCAPE_WINDOW: Duration = Duration::from_secs(6);

fn send(guest: &Guest, signal: &str) {
    let status = Command::new("kill").args([signal, &guest.id().to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {signal} failed");
}

fn start(name: &str, cpus: &str, first_line: &str) -> Guest {
    let program = guests::c_program(name, Variant::MuslStatic);
    let path = program.to_str().expect("UTF-8 path");
    let mut guest = Guest::start(&["--cpus", cpus, "--exec", path]);
    if !guest.wait_for(first_line, BOOT_LIMIT) {
        guest.abandon(&format!("{name} never printed {first_line:?}"));
    }
    guest
}

#[test]
fn a_program_that_catches_sigint_and_sigquit_gets_each_one() {
    for cpus in ["1", "2"] {
        let mut guest = start("processes-interrupts", cpus, "ready");
        for (signal, line) in [("-INT", "SIGINT 1"), ("-QUIT", "SIGQUIT 1"), ("-INT", "SIGINT 2")] {
            send(&guest, signal);
            if !guest.wait_for(line, ANSWER_LIMIT) {
                guest.abandon(&format!("{line} did not reach the program on {cpus} CPUs"));
            }
        }
        // Past the escape window, a third SIGINT reaches the program too.
        std::thread::sleep(ESCAPE_WINDOW);
        send(&guest, "-INT");
        if !guest.wait_for("SIGINT 3", ANSWER_LIMIT) {
            guest.abandon(&format!("the third SIGINT did not reach the program on {cpus} CPUs"));
        }
        // It does not catch SIGTERM, which ends it (and the VM).
        let (status, console) = guest.terminate();
        assert_eq!(status, Some(128 + 15), "on {cpus} CPUs:\n{console}");
    }
}

#[test]
fn a_program_that_does_not_catch_sigint_ends_with_the_first() {
    let guest = start("sleeper", "1", "sleeping");
    send(&guest, "-INT");
    let (status, console) = guest.finish();
    assert_eq!(status, Some(128 + 2), "{console}");
}

#[test]
fn three_sigints_in_a_row_stop_the_vm_whatever_the_program_catches() {
    let guest = start("processes-interrupts", "1", "ready");
    for _ in 0..3 {
        send(&guest, "-INT");
        // Apart enough for rosv to see each one.
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, console) = guest.finish();
    assert_eq!(status, Some(128 + 2), "{console}");
}
