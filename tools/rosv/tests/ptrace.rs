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
        guests::assert_checks_pass_on_linux("ptrace", variant);
        guests::assert_checks_pass("ptrace", variant, cpus);
    }
}

/// Whether each of `paths` exists on the host; says which is missing
/// (and which package brings it) otherwise.
fn available(test: &str, paths: &[(&str, &str)]) -> bool {
    for (host_path, package) in paths {
        if !std::path::Path::new(host_path).exists() {
            support::skip(test, &format!("{host_path} is missing (apt-get install {package})"));
            return false;
        }
    }
    true
}

/// The programs the strace tests run, and their packages.
const STRACE_PROGRAMS: &[(&str, &str)] =
    &[("/usr/bin/strace", "strace"), ("/usr/bin/dash", "dash"), ("/usr/bin/cat", "coreutils")];

/// What strace printed that does not depend on the machine: the lines of
/// `execve` and of opening files under `directory` (a C library's own
/// search for its libraries and locales depends on what the image holds),
/// the attach notes and the ends, with ids, addresses and environment
/// sizes left out.
fn normalized(output: &str, directory: &str) -> Vec<String> {
    output
        .lines()
        .filter(|line| {
            line.contains("execve(")
                || line.contains(directory)
                || line.contains(" attached")
                || line.contains("+++ exited")
                || line.contains("+++ killed")
        })
        .map(|line| {
            let line = line.replace("/usr/bin/strace: ", "strace: ");
            let line = match line.find("[pid ") {
                Some(start) => match line[start..].find(']') {
                    Some(end) => format!("{}[pid]{}", &line[..start], &line[start + end + 1..]),
                    None => line,
                },
                None => line,
            };
            let line = match (line.find("/* "), line.find(" vars */")) {
                (Some(start), Some(end)) if start < end => {
                    format!("{}/* vars */{}", &line[..start], &line[end + 8..])
                }
                _ => line,
            };
            let line = match line.strip_prefix("strace: Process ") {
                Some(rest) => {
                    format!("strace: Process {}", rest.split_once(' ').map_or(rest, |(_, tail)| tail))
                }
                None => line,
            };
            hexadecimal_hidden(&line)
        })
        .collect()
}

/// `line` with every hexadecimal number (`0x...`) written `0x?`.
fn hexadecimal_hidden(line: &str) -> String {
    let mut result = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("0x") {
        result.push_str(&rest[..start]);
        result.push_str("0x?");
        let tail = &rest[start + 2..];
        let digits = tail.find(|character: char| !character.is_ascii_hexdigit()).unwrap_or(tail.len());
        rest = &tail[digits..];
    }
    result.push_str(rest);
    result
}

#[test]
fn strace_follows_a_shell_and_its_child_as_on_linux() {
    let test = "strace_follows_a_shell_and_its_child_as_on_linux";
    if !available(test, STRACE_PROGRAMS) {
        return;
    }
    // A directory the guest sees at the host's path, so that both run the
    // same command on the same file.
    let directory = tempfile::tempdir().expect("temporary directory");
    let shared = directory.path().to_str().expect("UTF-8 path").to_string();
    std::fs::write(directory.path().join("name"), "traced\n").expect("write the file");
    let script = format!("cat {shared}/name; true");
    let strace_arguments = ["-f", "-e", "trace=openat,execve", "sh", "-c", script.as_str()];
    let host = std::process::Command::new("/usr/bin/strace")
        .args(strace_arguments)
        .output()
        .expect("run strace on the host");
    assert_eq!(host.status.code(), Some(0), "strace on the host: {}", text(&host.stderr));
    let expected = normalized(&text(&host.stderr), &shared);
    assert!(expected.iter().any(|line| line.contains("attached")), "host: {expected:?}");
    let volume = format!("{shared}:{shared}");
    for cpus in ["1", "2"] {
        let mut arguments =
            vec!["--cpus", cpus, "--volume", &volume, "--package", "dash", "--package", "coreutils"];
        arguments.extend(["--exec", "/usr/bin/strace", "--"]);
        arguments.extend(strace_arguments);
        let output = rosv_run(&arguments);
        let console = text(&output.stderr);
        assert_eq!(text(&output.stdout), "traced\n", "on {cpus} CPUs:\n{console}");
        assert_eq!(normalized(&console, &shared), expected, "on {cpus} CPUs:\n{console}");
        assert_eq!(output.status.code(), Some(0), "on {cpus} CPUs:\n{console}");
    }
}

#[test]
fn strace_counts_the_calls_of_a_shell_and_its_child() {
    let test = "strace_counts_the_calls_of_a_shell_and_its_child";
    if !available(test, STRACE_PROGRAMS) {
        return;
    }
    let arguments =
        ["--cpus", "2", "--package", "dash", "--package", "coreutils", "--exec", "/usr/bin/strace"];
    let mut arguments = arguments.to_vec();
    arguments.extend(["--", "-c", "-f", "sh", "-c", "cat /proc/self/stat > /dev/null; exit 4"]);
    let output = rosv_run(&arguments);
    let console = text(&output.stderr);
    // The summary table: a heading, a row per call, and the total.
    assert!(console.contains("% time") && console.contains("syscall"), "{console}");
    for call in ["execve", "openat", "read", "wait4", "total"] {
        assert!(console.lines().any(|line| line.trim_end().ends_with(call)), "no {call} row:\n{console}");
    }
    assert_eq!(output.status.code(), Some(4), "{console}");
}

#[test]
fn gdb_runs_a_crashing_program_and_prints_its_backtrace() {
    let test = "gdb_runs_a_crashing_program_and_prints_its_backtrace";
    if !available(test, &[("/usr/bin/gdb", "gdb"), ("/usr/bin/dash", "dash")]) {
        return;
    }
    // The program at the same path in the guest as on the host.
    let directory = tempfile::tempdir().expect("temporary directory");
    let shared = directory.path().to_str().expect("UTF-8 path").to_string();
    let program = directory.path().join("crash");
    std::fs::copy(guests::c_program("crash", Variant::GlibcStatic), &program).expect("copy the program");
    let program = program.to_str().expect("UTF-8 path");
    let volume = format!("{shared}:{shared}");
    let arguments = ["--cpus", "2", "--memory", "1G", "--volume", &volume, "--package", "dash"];
    let mut arguments = arguments.to_vec();
    arguments.extend(["--exec", "/usr/bin/gdb", "--", "-batch", "-ex", "run", "-ex", "bt", program]);
    let output = rosv_run(&arguments);
    let stdout = text(&output.stdout);
    let console = format!("{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("Program received signal SIGSEGV, Segmentation fault."), "{console}");
    assert!(
        stdout.lines().any(|line| line.starts_with("#0 ") && line.contains(" in main ")),
        "no backtrace:\n{console}"
    );
    assert_eq!(output.status.code(), Some(0), "{console}");
}
