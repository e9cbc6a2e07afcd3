//! Boot tests of Linux's system-call semantics beyond files: signals
//! queued, waited for and delivered; timers; System V and POSIX IPC;
//! scheduling policies; keys and the rest. Each guest program checks one
//! area, one line per check, and passes on Linux first (the host), then in
//! rosv on one and two processors, with glibc and musl.

mod guests;
mod support;

use guests::{VARIANTS, Variant};
use support::{rosv_run, skip, text};

/// Runs checking program `name` built as `variant` on the host, then in
/// rosv on each of `cpus`, and asserts that every check passed; checks
/// the machine cannot make are reported as skipped.
fn assert_checks_pass(test: &str, name: &str, variant: Variant, cpus: &[u32], extra: &[&str]) {
    let program = guests::c_program(name, variant);
    let path = support::path(&program);
    let host = std::process::Command::new(&program).output().expect("run the program on the host");
    let host_stdout = text(&host.stdout);
    assert!(host_stdout.contains("\n0 checks failed\n"), "{name} ({variant:?}) on Linux:\n{host_stdout}");
    assert_eq!(host.status.code(), Some(0), "{name} ({variant:?}) on Linux");
    for &cpus in cpus {
        let cpus_text = cpus.to_string();
        let mut arguments = vec!["--cpus", cpus_text.as_str()];
        arguments.extend_from_slice(extra);
        arguments.extend(["--exec", path]);
        let output = rosv_run(&arguments);
        let stdout = text(&output.stdout);
        let what = format!("{name} ({variant:?}) on {cpus} CPUs");
        assert!(stdout.contains("\n0 checks failed\n"), "{what}:\n{stdout}\n{}", text(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "{what}");
        for line in stdout.lines().filter(|line| line.starts_with("skip ")) {
            skip(test, &format!("{what}: {}", &line["skip ".len()..]));
        }
    }
}

/// Runs `name` in every static variant: on one and two processors for
/// the non-PIE ones, on one for the PIE ones.
fn assert_checks_pass_everywhere(test: &str, name: &str) {
    for variant in VARIANTS {
        let cpus: &[u32] = match variant {
            Variant::MuslStatic | Variant::GlibcStatic => &[1, 2],
            _ => &[1],
        };
        assert_checks_pass(test, name, variant, cpus, &[]);
    }
}

#[test]
fn signals_queue_wait_and_reach_their_handlers_as_on_linux() {
    assert_checks_pass_everywhere(
        "signals_queue_wait_and_reach_their_handlers_as_on_linux",
        "signal-delivery",
    );
}

#[test]
fn timers_expire_signal_and_count_as_on_linux() {
    assert_checks_pass_everywhere("timers_expire_signal_and_count_as_on_linux", "timers");
}

#[test]
fn message_queues_and_semaphores_behave_as_on_linux() {
    assert_checks_pass_everywhere("message_queues_and_semaphores_behave_as_on_linux", "ipc");
}

#[test]
fn futex_waitv_wakes_on_any_word_as_on_linux() {
    assert_checks_pass_everywhere("futex_waitv_wakes_on_any_word_as_on_linux", "futex-vector");
}

#[test]
fn system_v_objects_keep_owners_and_refuse_other_users_as_on_linux() {
    assert_checks_pass_everywhere(
        "system_v_objects_keep_owners_and_refuse_other_users_as_on_linux",
        "ipc-permissions",
    );
}

#[test]
fn scheduling_policies_are_honoured_and_reported_as_on_linux() {
    assert_checks_pass_everywhere("scheduling_policies_are_honoured_and_reported_as_on_linux", "sched");
}

#[test]
fn usage_names_barriers_and_own_process_calls_behave_as_on_linux() {
    assert_checks_pass_everywhere("usage_names_barriers_and_own_process_calls_behave_as_on_linux", "system");
}
