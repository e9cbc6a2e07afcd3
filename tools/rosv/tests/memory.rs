//! Boot tests of the kernel's memory at its limits: applications that map,
//! write and start threads until RAM runs out get Linux's errors, or are
//! ended as Linux's out-of-memory killer would; the kernel never fails.

mod guests;
mod support;

use guests::Variant;
use support::{rosv_run, text};

#[test]
fn running_out_of_memory_gives_errors_not_failures() {
    for (variant, cpus) in [(Variant::GlibcStatic, "1"), (Variant::MuslStatic, "2")] {
        let program = guests::c_program("memory", variant);
        let path = program.to_str().expect("UTF-8 path");
        let output = rosv_run(&["--memory", "64M", "--cpus", cpus, "--exec", path]);
        let stdout = text(&output.stdout);
        assert!(stdout.contains("\n0 checks failed\n"), "{variant:?} on {cpus} CPUs:\n{stdout}");
        assert_eq!(output.status.code(), Some(0), "{variant:?} on {cpus} CPUs");
    }
}

#[test]
fn a_program_that_touches_more_than_ram_is_killed_with_137() {
    for (arguments, cpus) in [(vec!["touch"], "1"), (vec!["threads", "4"], "2")] {
        let program = guests::c_program("oom", Variant::GlibcStatic);
        let mut all =
            vec!["--memory", "64M", "--cpus", cpus, "--exec", program.to_str().expect("UTF-8 path")];
        all.push("--");
        all.extend(arguments.iter().copied());
        let output = rosv_run(&all);
        let console = format!("{}{}", text(&output.stdout), text(&output.stderr));
        assert!(console.contains("rosv: out of memory: killed"), "{arguments:?}:\n{console}");
        assert!(!console.contains("kernel panic") && !console.contains("kernel fault"), "{console}");
        assert_eq!(output.status.code(), Some(137), "{arguments:?}");
    }
}
