//! Boot tests of processes: fork, execve, wait, pipes between processes,
//! signals to children, process groups; and shell scripts, which need all
//! of them.

mod guests;
mod support;

use guests::Variant;
use support::{rosv_run, text};

#[test]
fn fork_exec_and_wait_behave_like_linux() {
    for (variant, cpus) in [
        (Variant::GlibcStatic, "1"),
        (Variant::MuslStatic, "2"),
        (Variant::GlibcStaticPie, "2"),
        (Variant::MuslStaticPie, "1"),
    ] {
        guests::assert_checks_pass_on_linux("processes", variant);
        guests::assert_checks_pass("processes", variant, cpus);
    }
}

#[test]
fn stop_and_continue_signals_control_jobs() {
    for (variant, cpus) in [(Variant::GlibcStatic, "2"), (Variant::MuslStatic, "1")] {
        guests::assert_checks_pass("processes-jobs", variant, cpus);
    }
}

#[test]
fn process_descriptors_name_open_signal_and_wait() {
    for (variant, cpus) in [(Variant::GlibcStatic, "1"), (Variant::MuslStatic, "2")] {
        guests::assert_checks_pass_on_linux("processes-pidfd", variant);
        guests::assert_checks_pass("processes-pidfd", variant, cpus);
    }
}

#[test]
fn only_the_same_user_or_root_may_signal_another_process() {
    for (variant, cpus) in [(Variant::GlibcStatic, "2"), (Variant::MuslStatic, "1")] {
        guests::assert_checks_pass_on_linux("processes-permissions", variant);
        guests::assert_checks_pass("processes-permissions", variant, cpus);
    }
}

#[test]
fn clone_shares_descriptors_fs_and_handlers_until_unshared() {
    for (variant, cpus) in [(Variant::GlibcStatic, "1"), (Variant::MuslStatic, "2")] {
        guests::assert_checks_pass_on_linux("processes-sharing", variant);
        guests::assert_checks_pass("processes-sharing", variant, cpus);
    }
}

#[test]
fn the_spawn_bench_prints_processes_per_second_side_by_side() {
    let program = guests::c_program("spawn-cost", Variant::GlibcStatic);
    let path = program.to_str().expect("UTF-8 path");
    let output = support::rosv(&["bench", "spawn", "--rounds", "20", "--timeout", "300", "--exec", path]);
    let stdout = text(&output.stdout);
    let console = format!("{stdout}{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{console}");
    for name in ["fork+exit+wait", "vfork+exec+wait", "posix_spawn+wait"] {
        let line = stdout.lines().find(|line| line.starts_with(name)).unwrap_or_default();
        // rosv's figure, then the Linux guest's, the ratio and the host's.
        let rosv: f64 = line.split_whitespace().nth(1).and_then(|cell| cell.parse().ok()).unwrap_or(0.0);
        assert!(rosv > 0.0, "no rate for {name}:\n{console}");
    }
}

/// Debian's static busybox, if this machine has it.
fn busybox() -> Option<String> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|directory| directory.join("busybox"))
        .find(|path| path.is_file())
        .map(|path| path.to_string_lossy().into_owned())
}

#[test]
fn shell_scripts_run_pipelines_substitutions_and_subshells() {
    let Some(busybox) = busybox() else {
        support::skip("shell_scripts_run_pipelines_substitutions_and_subshells", "busybox is not on PATH");
        return;
    };
    let script = r#"
echo start
echo a b c | wc -w
x=$(echo substituted); echo "got $x"
(exit 7); echo "subshell $?"
sleep 0.1 & background=$!; wait $background; echo "background $?"
sh -c 'kill -9 $$'; echo "killed $?"
for i in 1 2 3 4 5; do echo $i; done | sort -r | head -n 2
ls / | grep -c busybox
sh -c 'exit 3'; echo "nested $?"
echo "ppid $PPID"
exit 4
"#;
    for cpus in ["1", "2"] {
        let output = rosv_run(&["--cpus", cpus, "--exec", &busybox, "--", "sh", "-c", script]);
        let stdout = text(&output.stdout);
        let expected =
            "start\n3\ngot substituted\nsubshell 7\nbackground 0\nkilled 137\n5\n4\n1\nnested 3\nppid 0\n";
        assert_eq!(stdout, expected, "on {cpus} CPUs; stderr:\n{}", text(&output.stderr));
        assert_eq!(output.status.code(), Some(4), "on {cpus} CPUs");
    }
}

#[test]
fn ps_pidof_and_killall_see_every_process() {
    let Some(busybox) = busybox() else {
        support::skip("ps_pidof_and_killall_see_every_process", "busybox is not on PATH");
        return;
    };
    // The script's own text never holds the sleep's command line, which
    // every shell forked from it shows too.
    let script = r#"
n=30
sleep $n & s=$!
sleep 0.5
ps | grep -c "[s]leep $n"
test "$(pidof sleep)" = "$s" && echo "pidof found it"
ps -o pid,ppid,stat,args | grep "[s]leep $n" | awk -v s=$s -v p=$$ '$1 == s && $2 == p { print "ps fields right" }'
kill -STOP $s
sleep 0.5
ps -o pid,stat | awk -v s=$s '$1 == s { print "state " substr($2, 1, 1) }'
kill -CONT $s
killall sleep; wait $s; echo "killall $?"
"#;
    let output = rosv_run(&["--exec", &busybox, "--", "sh", "-c", script]);
    let stdout = text(&output.stdout);
    let expected = "1\npidof found it\nps fields right\nstate T\nkillall 143\n";
    assert_eq!(stdout, expected, "stderr:\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}
