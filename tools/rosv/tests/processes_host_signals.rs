//! Boot tests of the host's signals to `rosv run`: every SIGINT, SIGTERM
//! and SIGHUP reaches the application, which ends or handles it as it
//! would on Linux; SIGQUIT stops the VM at once.

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
fn a_program_that_catches_sigint_gets_every_one() {
    for cpus in ["1", "2"] {
        let mut guest = start("processes-interrupts", cpus, "ready");
        for count in 1..=3 {
            send(&guest, "-INT");
            if !guest.wait_for(&format!("SIGINT {count}"), ANSWER_LIMIT) {
                guest.abandon(&format!("SIGINT {count} did not reach the program on {cpus} CPUs"));
            }
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
fn sigquit_stops_the_vm_whatever_the_program_catches() {
    let guest = start("processes-interrupts", "1", "ready");
    send(&guest, "-QUIT");
    let (status, console) = guest.finish();
    assert_eq!(status, Some(128 + 3), "{console}");
    assert!(!console.contains("SIGINT"), "{console}");
}
