//! Boot tests against hostile applications: a system-call fuzzer on fixed
//! seeds, on one and two processors, and a program whose calls go past
//! every limit and fault in every way, checked against Linux's answers.

mod guests;
mod support;

use guests::{VARIANTS, Variant};
use support::{rosv_run, text};

/// The seeds CI runs. Each run makes 3 × 1500 calls.
const SEEDS: [u64; 6] = [1, 2, 3, 17, 102, 157];

#[test]
fn fuzzed_system_calls_never_take_the_kernel_down() {
    let program = guests::c_program("fuzz", Variant::MuslStatic);
    let path = program.to_str().expect("UTF-8 path");
    for cpus in ["1", "2"] {
        for seed in SEEDS {
            let seed_text = seed.to_string();
            let mut arguments =
                vec!["--cpus", cpus, "--exec", path, "--", "--seed", &seed_text, "--calls", "1500"];
            arguments.extend(["--threads", "3"]);
            let output = rosv_run(&arguments);
            let stdout = text(&output.stdout);
            let stderr = text(&output.stderr);
            let what = format!("seed {seed} on {cpus} CPUs");
            // A hang ends at the timeout, a reset without an exit status.
            for sign in
                ["kernel panic", "kernel fault", "did not finish", "without an exit status", "stayed blocked"]
            {
                assert!(
                    !stdout.contains(sign) && !stderr.contains(sign),
                    "{what}: {sign}:\n{stdout}\n{stderr}"
                );
            }
            assert!(stdout.contains(&format!("fuzz: done: seed {seed}, ")), "{what}: no summary:\n{stdout}");
            assert_eq!(output.status.code(), Some(0), "{what}:\n{stdout}\n{stderr}");
        }
    }
}

#[test]
fn calls_past_every_limit_get_linuxs_answers() {
    for variant in VARIANTS {
        let program = guests::c_program("hostile", variant);
        let path = program.to_str().expect("UTF-8 path");
        // Linux first: the program's expectations are Linux's.
        let host = std::process::Command::new(&program).output().expect("run the program on the host");
        let host_stdout = text(&host.stdout);
        assert!(host_stdout.contains("\n0 checks failed\n"), "{variant:?} on Linux:\n{host_stdout}");
        for cpus in ["1", "2"] {
            let output = rosv_run(&["--cpus", cpus, "--memory", "128M", "--exec", path]);
            let stdout = text(&output.stdout);
            assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{stdout}");
            for sign in ["kernel panic", "kernel fault"] {
                assert!(!stdout.contains(sign), "{variant:?} on {cpus} CPUs:\n{stdout}");
            }
            assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
        }
    }
}
