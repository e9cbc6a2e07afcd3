//! Boot tests of the kernel's core: multi-threaded programs on 1, 2 and 4
//! processors, processors found through ACPI (MADT) and through the MP
//! table.

mod guests;
mod support;

use guests::{VARIANTS, Variant};
use support::rosv_run;

/// Runs a checking program (one line per check, "N checks failed" at the
/// end, exit status N) on `cpus` processors and asserts that all passed.
fn assert_all_checks_pass(program: &std::path::Path, cpus: u32, extra: &[&str]) {
    let cpus_text = cpus.to_string();
    let path = program.to_str().expect("UTF-8 path");
    let mut arguments = vec!["--cpus", cpus_text.as_str()];
    arguments.extend_from_slice(extra);
    arguments.extend(["--exec", path, "--", cpus_text.as_str()]);
    let output = rosv_run(&arguments);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\n0 checks failed\n"), "{path} on {cpus} CPUs:\n{stdout}");
    assert_eq!(output.status.code(), Some(0), "{path} on {cpus} CPUs");
}

#[test]
fn pthread_programs_pass_on_one_two_and_four_processors() {
    for variant in VARIANTS {
        for cpus in [1, 2, 4] {
            assert_all_checks_pass(&guests::c_program("threads", variant), cpus, &[]);
        }
    }
}

#[test]
fn rust_threads_pass_on_one_two_and_four_processors() {
    for cpus in [1, 2, 4] {
        assert_all_checks_pass(&guests::rust_program("rust-threads"), cpus, &[]);
    }
}

#[test]
fn signals_reach_faulting_and_spinning_threads() {
    for variant in VARIANTS {
        for cpus in [1, 2] {
            let program = guests::c_program("signals", variant);
            let path = program.to_str().expect("UTF-8 path");
            let cpus_text = cpus.to_string();
            let output = rosv_run(&["--cpus", &cpus_text, "--exec", path]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(stdout.contains("\n0 checks failed\n"), "{path} on {cpus} CPUs:\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{path} on {cpus} CPUs");
        }
    }
}

/// A short version of `rosv bench soak`: every wait ends on time and every
/// spinning thread is cancelled or signalled, on 1, 2 and 4 processors.
#[test]
fn timers_and_cancellation_survive_a_short_soak() {
    let runs = [
        (Variant::GlibcStatic, 1),
        (Variant::GlibcStatic, 2),
        (Variant::GlibcStatic, 4),
        (Variant::MuslStatic, 2),
    ];
    for (variant, cpus) in runs {
        let program = guests::c_program("soak", variant);
        let path = program.to_str().expect("UTF-8 path");
        let cpus_text = cpus.to_string();
        let output =
            support::rosv(&["bench", "soak", "--cpus", &cpus_text, "--seconds", "8", "--exec", path]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("soak failures: 0"), "{path} on {cpus} CPUs:\n{stdout}");
        assert!(stdout.contains("soak: 1 runs, 1 passed, 0 failed"), "{path} on {cpus} CPUs:\n{stdout}");
        assert_eq!(output.status.code(), Some(0), "{path} on {cpus} CPUs");
    }
}

/// Threads handing a turn back and forth across busy processors (each
/// after a while in the kernel), sleepers and spinners: the program's
/// watchdog fails it as soon as any thread stalls for 10 s, which a lost
/// wake-up or a processor whose timer stayed masked (it then ran one
/// thread for ever) did. The VM's own time limit, with the kernel's thread
/// dump, catches a machine that stops altogether.
#[test]
fn wakeups_are_never_lost_on_busy_processors() {
    for variant in VARIANTS {
        let program = guests::c_program("wakeups", variant);
        let host =
            std::process::Command::new(&program).arg("2").output().expect("run the program on the host");
        let stdout = support::text(&host.stdout);
        assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on Linux:\n{stdout}");
    }
    for (variant, cpus) in [(Variant::GlibcStatic, "4"), (Variant::MuslStatic, "2")] {
        let program = guests::c_program("wakeups", variant);
        let path = program.to_str().expect("UTF-8 path");
        let output = support::rosv(&["run", "--timeout", "120", "--cpus", cpus, "--exec", path, "--", "6"]);
        let stdout = support::text(&output.stdout);
        let console = format!("{stdout}{}", support::text(&output.stderr));
        assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{console}");
        assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs:\n{console}");
    }
}

#[test]
fn ended_threads_give_their_memory_back() {
    // A thousand threads' kernel stacks alone are twice this machine's memory.
    let program = guests::c_program("thread-churn", Variant::GlibcStatic);
    let path = program.to_str().expect("UTF-8 path");
    let output = rosv_run(&["--memory", "48M", "--cpus", "2", "--exec", path, "--", "1000"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1000 threads created and joined"), "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn processors_come_from_the_madt_or_the_mp_table() {
    let program = guests::c_program("threads", Variant::GlibcStatic);
    for (acpi, source) in [("on", "(Madt)"), ("off", "(MpTable)")] {
        for cpus in [1u32, 2, 4] {
            let cpus_text = cpus.to_string();
            let output = rosv_run(&[
                "--acpi",
                acpi,
                "--cpus",
                &cpus_text,
                "--kernel-args=--verbose",
                "--exec",
                program.to_str().expect("UTF-8 path"),
                "--",
                &cpus_text,
            ]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(&format!("{cpus} processors listed {source}")), "{stderr}");
            assert!(stderr.contains(&format!("{cpus} processors running")), "{stderr}");
            assert!(stdout.contains("\n0 checks failed\n"), "{stdout}");
        }
    }
}
