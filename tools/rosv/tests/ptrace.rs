//! Boot tests of process tracing: the ptrace checks program on glibc and
//! musl, on one and two processors (and on Linux first), and Debian's
//! `strace` following a shell and its child as it does on Linux.

mod guests;
mod support;

use guests::Variant;
use support::{rosv_run, text};

#[test]
fn ptrace_stops_registers_memory_signals_and_events_behave_like_linux() {
    for (variant, cpus) in [
        (Variant::GlibcStatic, "1"),
        (Variant::MuslStatic, "2"),
        (Variant::GlibcStaticPie, "2"),
        (Variant::MuslStaticPie, "1"),
    ] {
        assert_checks_pass_on_linux("ptrace", variant);
        assert_checks_pass("ptrace", variant, cpus);
    }
}

/// Runs the C check program `name` built for `variant` on the host: every
/// check passes there, so that the checks say what Linux does.
fn assert_checks_pass_on_linux(name: &str, variant: Variant) {
    let program = guests::c_program(name, variant);
    let host = std::process::Command::new(&program).output().expect("run the program on the host");
    let stdout = text(&host.stdout);
    assert!(stdout.contains("\n0 checks failed\n"), "{name} {variant:?} on Linux:\n{stdout}");
    assert_eq!(host.status.code(), Some(0), "{name} {variant:?} on Linux:\n{stdout}");
}

/// Runs the C check program `name` built for `variant` on `cpus`
/// processors: every check passes and it exits with 0.
fn assert_checks_pass(name: &str, variant: Variant, cpus: &str) {
    let program = guests::c_program(name, variant);
    let path = program.to_str().expect("UTF-8 path");
    let output = rosv_run(&["--cpus", cpus, "--exec", path]);
    let stdout = text(&output.stdout);
    let console = format!("{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("\n0 checks failed\n"), "{name} {variant:?} on {cpus} CPUs:\n{console}");
    assert_eq!(output.status.code(), Some(0), "{name} {variant:?} on {cpus} CPUs:\n{console}");
}
