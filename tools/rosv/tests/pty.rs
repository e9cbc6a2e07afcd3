//! Boot tests of pseudo-terminals: the C checks (`tests/guest/pty.c`, data,
//! packet mode, output flow control, job control, hangups) on Linux and in
//! rosv, and real programs that open pseudo-terminals:
//! Python's `os.openpty` and `pty.spawn`, util-linux's `script`, and
//! `tmux`. Each compares with what the same program prints on Linux; a
//! program the host lacks is skipped, visibly.

mod guests;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use guests::Variant;
use support::{SHELL_MANIFEST, image, path, rosv_run, skip, text};

/// Whether each of `paths` exists on the host; says which is missing
/// (and which package brings it) otherwise.
fn available(test: &str, paths: &[(&str, &str)]) -> bool {
    for (host_path, package) in paths {
        if !Path::new(host_path).exists() {
            skip(test, &format!("{host_path} is missing (apt-get install {package})"));
            return false;
        }
    }
    true
}

/// Runs `program` with `arguments` on the host, its input empty.
fn on_linux(program: &str, arguments: &[&str]) -> std::process::Output {
    Command::new(program).args(arguments).stdin(Stdio::null()).output().expect("run the program on the host")
}

#[test]
fn pseudo_terminals_behave_like_linux() {
    for variant in [Variant::GlibcStatic, Variant::MuslStatic] {
        let program = guests::c_program("pty", variant);
        let host = Command::new(&program).stdin(Stdio::null()).output().expect("run the program on the host");
        let host_stdout = text(&host.stdout);
        assert!(host_stdout.contains("\n0 checks failed\n"), "{variant:?} on Linux:\n{host_stdout}");
        assert_eq!(host.status.code(), Some(0), "{variant:?} on Linux");
        for cpus in ["1", "2"] {
            let output = rosv_run(&["--cpus", cpus, "--exec", path(&program)]);
            let stdout = text(&output.stdout);
            let what = format!("{variant:?} on {cpus} CPUs");
            assert!(stdout.contains("\n0 checks failed\n"), "{what}:\n{stdout}\n{}", text(&output.stderr));
            assert_eq!(output.status.code(), Some(0), "{what}");
        }
    }
}

/// Python opens a pair, types a line and reads its echo, reads `EIO` once
/// the slave closed, and runs a child on a new terminal with `pty.spawn`.
const PYTHON_SCRIPT: &str = r#"
import os, pty, sys
m, s = os.openpty()
name = os.ttyname(s)
print("openpty", name.startswith("/dev/pts/"), os.isatty(m), os.isatty(s))
os.write(m, b"hello\n")
print("slave", os.read(s, 100))
print("echo", os.read(m, 100))
os.write(s, b"out\n")
print("master", os.read(m, 100))
os.close(s)
try:
    os.read(m, 100)
    print("no error")
except OSError as error:
    print("closed", error.errno)
os.close(m)
sys.stdout.flush()
code = "import os; print('child', os.isatty(0), os.ttyname(1).startswith('/dev/pts/'), os.getsid(0) == os.getpid())"
status = pty.spawn(["/usr/bin/python3", "-c", code])
print("spawn", os.waitstatus_to_exitcode(status))
"#;

#[test]
fn python_opens_pseudo_terminals_and_spawns_on_one() {
    let test = "python_opens_pseudo_terminals_and_spawns_on_one";
    if !available(test, &[("/usr/bin/python3", "python3")]) {
        return;
    }
    let host = on_linux("/usr/bin/python3", &["-c", PYTHON_SCRIPT]);
    let expected = text(&host.stdout);
    assert!(expected.contains("child True True True\r\nspawn 0\n"), "on Linux:\n{expected}");
    for cpus in ["1", "2"] {
        let output = rosv_run(&[
            "--cpus",
            cpus,
            "--memory",
            "256M",
            "--exec",
            "/usr/bin/python3",
            "--",
            "-c",
            PYTHON_SCRIPT,
        ]);
        assert_eq!(text(&output.stdout), expected, "on {cpus} CPUs; stderr:\n{}", text(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "on {cpus} CPUs");
    }
}

#[test]
fn script_runs_a_command_on_a_pseudo_terminal() {
    let test = "script_runs_a_command_on_a_pseudo_terminal";
    if !available(test, &[("/usr/bin/dash", "dash"), ("/usr/bin/script", "bsdutils")]) {
        return;
    }
    let arguments = ["-qc", "echo hi; tty; stty size", "/dev/null"];
    let host = on_linux("/usr/bin/script", &arguments);
    assert_eq!(host.status.code(), Some(0), "on Linux");
    let host_stdout = text(&host.stdout);
    assert!(host_stdout.starts_with("hi\r\n/dev/pts/"), "on Linux:\n{host_stdout}");
    let directory = tempfile::tempdir().expect("temporary directory");
    let manifest = format!("{SHELL_MANIFEST}/usr/bin/script: /usr/bin/script\n");
    let mut command = vec!["/usr/bin/script"];
    command.extend(arguments);
    let image = image(directory.path(), &manifest, &["bsdutils", "coreutils"], &command);
    let output = rosv_run(&[path(&image)]);
    let stdout = text(&output.stdout);
    // The terminal's number may differ from the host's.
    let shape = |stdout: &str| -> Vec<String> {
        let number = |line: &str| line.starts_with("/dev/pts/");
        stdout
            .split("\r\n")
            .map(|line| String::from(if number(line) { "/dev/pts/N" } else { line }))
            .collect()
    };
    assert_eq!(shape(&stdout), shape(&host_stdout), "stdout:\n{stdout}\nstderr:\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn tmux_starts_a_detached_session_and_lists_it() {
    let test = "tmux_starts_a_detached_session_and_lists_it";
    if !available(test, &[("/usr/bin/dash", "dash"), ("/usr/bin/tmux", "tmux")]) {
        return;
    }
    // A server of its own on the host, away from any the user runs.
    let socket = format!("rosv-test-{}", std::process::id());
    let script = format!(
        "tmux -L {socket} new -d -s work 'sleep 30'; echo new=$?; tmux -L {socket} ls; echo ls=$?; \
         tmux -L {socket} kill-server; echo kill=$?"
    );
    let host = Command::new("/usr/bin/dash")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/root")
        .stdin(Stdio::null())
        .output()
        .expect("run tmux on the host");
    // The creation time differs.
    let shape = |stdout: &str| -> String {
        stdout
            .lines()
            .map(|line| match line.find("(created ") {
                Some(start) => format!("{}(created TIME)\n", &line[..start]),
                None => format!("{line}\n"),
            })
            .collect()
    };
    let expected = shape(&text(&host.stdout));
    assert_eq!(expected, "new=0\nwork: 1 windows (created TIME)\nls=0\nkill=0\n", "on Linux");
    let directory = tempfile::tempdir().expect("temporary directory");
    let manifest = format!("{SHELL_MANIFEST}/usr/bin/tmux: /usr/bin/tmux\n");
    let image = image(
        directory.path(),
        &manifest,
        &["tmux", "coreutils", "ncurses-base"],
        &["/bin/sh", "-c", &script],
    );
    for cpus in ["1", "2"] {
        let output = rosv_run(&["--cpus", cpus, path(&image)]);
        let stdout = text(&output.stdout);
        assert_eq!(shape(&stdout), expected, "on {cpus} CPUs; stderr:\n{}", text(&output.stderr));
        assert_eq!(output.status.code(), Some(0), "on {cpus} CPUs");
    }
}
