//! The application's standard streams: `rosv run` behaves like running
//! the program. Its output alone on standard output, its errors on
//! standard error, standard input forwarded to its end, binary data
//! unchanged, a terminal exactly when rosv has one, and with `-t` a
//! terminal the guest implements (driven here through `script` and tmux).

mod guests;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guests::Variant;
use support::{TIMEOUT_SECONDS, path, rosv_run, skip, text};

fn rosv() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rosv"));
    command.args(["run", "--timeout", TIMEOUT_SECONDS]);
    command
}

/// Runs `rosv run` with `arguments`, `input` on its standard input.
fn run_with_input(arguments: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = rosv()
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rosv");
    let mut stdin = child.stdin.take().expect("a piped standard input");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait for rosv");
    writer.join().expect("the writer ran").expect("rosv took its whole input");
    println!(
        "--- rosv run {arguments:?}\nstatus {:?}\nstderr:\n{}",
        output.status.code(),
        text(&output.stderr)
    );
    output
}

#[test]
fn standard_output_holds_the_programs_output_alone() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let out = directory.path().join("out");
    let status = rosv()
        .args(["--exec", "/bin/echo", "--", "hello"])
        .stdout(std::fs::File::create(&out).expect("create the output file"))
        .status()
        .expect("run rosv");
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::read(&out).expect("read the output"), b"hello\n");
}

#[test]
fn standard_input_reaches_the_program_to_its_end() {
    let output = run_with_input(&["--exec", "/bin/cat"], b"one\ntwo\n");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "one\ntwo\n");
    assert_eq!(text(&output.stderr), "");
}

#[test]
fn standard_error_stays_apart() {
    let output = rosv_run(&["--exec", "/bin/ls", "--", "/missing"]);
    assert_eq!(output.status.code(), Some(2), "ls's own status");
    assert_eq!(text(&output.stdout), "");
    // A packaged program runs from where the host has it.
    assert_eq!(text(&output.stderr), "/bin/ls: cannot access '/missing': No such file or directory\n");
}

#[test]
fn a_mebibyte_of_binary_data_round_trips() {
    let data: Vec<u8> =
        (0..1u32 << 20).map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let started = Instant::now();
    let output = run_with_input(&["-i", "--exec", "/bin/cat"], &data);
    println!("1 MiB through cat in {:?}", started.elapsed());
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stdout == data,
        "{} bytes came back, unchanged: {}",
        output.stdout.len(),
        output.stdout == data
    );
}

#[test]
fn a_program_whose_output_is_no_longer_read_gets_sigpipe() {
    // `yes` writes until its output is closed: `head -1` reads one line
    // and closes the pipe, as on Linux.
    let mut child = rosv()
        .args(["--exec", "/usr/bin/yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rosv");
    let stdout = child.stdout.take().expect("a piped standard output");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read a line");
    assert_eq!(line, "y\n");
    let status = child.wait().expect("wait for rosv");
    assert_eq!(status.code(), Some(128 + 13), "yes ended on SIGPIPE");
}

#[test]
fn a_stream_is_a_terminal_only_when_rosvs_is() {
    let output = rosv_run(&["--exec", "/usr/bin/test", "--", "-t", "1"]);
    assert_eq!(output.status.code(), Some(1), "standard output is a pipe here");
    if !support::has_program("script") {
        skip("a_stream_is_a_terminal_only_when_rosvs_is", "script is missing (apt-get install bsdutils)");
        return;
    }
    let rosv = env!("CARGO_BIN_EXE_rosv");
    for (options, descriptor, expected) in
        [("-t", "1", 0), ("-t", "0", 0), ("", "1", 0), ("-t", "1 >/dev/null", 1)]
    {
        let command = format!(
            "{rosv} run --timeout {TIMEOUT_SECONDS} {options} --exec /usr/bin/test -- -t {descriptor}"
        );
        let status = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("run script");
        assert_eq!(status.code(), Some(expected), "{command}");
    }
}

#[test]
fn the_program_runs_as_the_user_asked_for() {
    let output = rosv_run(&["-u", "1000:1000", "--exec", "/usr/bin/id"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "uid=1000 gid=1000 groups=1000\n");
    let root = rosv_run(&["--exec", "/usr/bin/id"]);
    assert!(text(&root.stdout).starts_with("uid=0(root) gid=0(root)"), "{}", text(&root.stdout));
}

#[test]
fn commands_chain_on_a_lone_semicolon_and_run_in_the_working_directory() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("image");
    let built = support::rosv(&["build", "--exec", "/bin/busybox", "-o", path(&image)]);
    assert!(built.status.success());
    let output = rosv_run(&[
        "-w",
        "/proc",
        path(&image),
        "--",
        "/busybox",
        "pwd",
        ";",
        "/busybox",
        "echo",
        "\\;",
        "second",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "/proc\n; second\n");
    let background = rosv_run(&[path(&image), "--", "/busybox", "true", "&"]);
    assert_eq!(background.status.code(), Some(125));
    assert!(
        text(&background.stderr).contains("a lone `&` would run the command before it in the background")
    );
}

#[test]
fn the_built_in_monitor_carries_the_streams_on_the_serial_port() {
    let test = "the_built_in_monitor_carries_the_streams_on_the_serial_port";
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(test, "/dev/kvm cannot be opened");
        return;
    }
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let output = run_with_input(&["--hypervisor", "builtin", "--exec", path(&guests::syscall_cat())], &data);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stdout == data,
        "{} bytes came back, unchanged: {}",
        output.stdout.len(),
        output.stdout == data
    );
    assert_eq!(text(&output.stderr), "");
}

/// A tmux server of its own, with one window running a shell command.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` in a new window of `columns` by `rows`; `None`, after
    /// saying why, without tmux.
    fn start(test: &str, command: &str, columns: u16, rows: u16) -> Option<Tmux> {
        if !support::has_program("tmux") {
            skip(test, "tmux is missing (apt-get install tmux)");
            return None;
        }
        let tmux = Tmux { socket: format!("rosv-test-{}-{test}", std::process::id()) };
        let started = tmux.command(&[
            "new-session",
            "-d",
            "-x",
            &columns.to_string(),
            "-y",
            &rows.to_string(),
            command,
        ]);
        assert!(started, "tmux starts");
        Some(tmux)
    }

    fn command(&self, arguments: &[&str]) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(arguments)
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Types `keys` (tmux key names, or text).
    fn send(&self, keys: &[&str]) {
        let mut arguments = vec!["send-keys", "-t", "0"];
        arguments.extend_from_slice(keys);
        assert!(self.command(&arguments), "tmux sends {keys:?}");
    }

    /// What the window shows.
    fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("run tmux");
        text(&output.stdout)
    }

    /// Waits until the window shows `wanted`; panics with the screen after
    /// `limit`.
    fn wait_for(&self, wanted: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.contains(wanted) {
                return;
            }
            assert!(Instant::now() < deadline, "the window never showed {wanted:?}; it shows:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.command(&["kill-server"]);
    }
}

/// How long a guest may take to boot and answer a key under TCG.
const TYPING_TIMEOUT: Duration = Duration::from_secs(120);

/// A shell command that runs `rosv run ARGUMENTS` between two records of
/// the terminal's settings, then records rosv's status, in `directory`.
fn recorded(directory: &Path, arguments: &str) -> String {
    let record = |name: &str| directory.join(name).display().to_string();
    format!(
        "stty -g > {before}; {rosv} run --timeout {TIMEOUT_SECONDS} {arguments}; echo $? > {status}; \
         stty -g > {after}; echo ENDED; sleep 600",
        rosv = env!("CARGO_BIN_EXE_rosv"),
        before = record("before"),
        after = record("after"),
        status = record("status"),
    )
}

fn read_record(directory: &Path, name: &str) -> String {
    std::fs::read_to_string(directory.join(name)).unwrap_or_default().trim().to_string()
}

#[test]
fn an_interactive_shell_edits_lines_and_takes_ctrl_c_and_ctrl_d() {
    let test = "an_interactive_shell_edits_lines_and_takes_ctrl_c_and_ctrl_d";
    let directory = tempfile::tempdir().expect("temporary directory");
    let command = recorded(directory.path(), "-it --exec /bin/busybox -- sh");
    let Some(tmux) = Tmux::start(test, &command, 100, 30) else { return };
    tmux.wait_for("~ #", TYPING_TIMEOUT);
    // A builtin, typed with a mistake erased on the way.
    tmux.send(&["echo hello $((6*8", "BSpace", "7))", "Enter"]);
    tmux.wait_for("hello 42", TYPING_TIMEOUT);
    // Ctrl-C interrupts a builtin blocked in read(2) and gives the prompt
    // back; the next command runs.
    tmux.send(&["read line", "Enter"]);
    std::thread::sleep(Duration::from_secs(2));
    tmux.send(&["C-c"]);
    tmux.wait_for("^C", TYPING_TIMEOUT);
    tmux.send(&["echo after the interrupt", "Enter"]);
    tmux.wait_for("after the interrupt\n", TYPING_TIMEOUT);
    // Ctrl-C on a half-typed line drops it.
    tmux.send(&["echo never", "C-c", "echo status $?", "Enter"]);
    tmux.wait_for("status 130", TYPING_TIMEOUT);
    tmux.send(&["C-d"]);
    tmux.wait_for("ENDED", TYPING_TIMEOUT);
    let screen = tmux.screen();
    assert!(!screen.contains("never\n"), "the interrupted line did not run:\n{screen}");
    assert_eq!(
        read_record(directory.path(), "status"),
        "0",
        "the status of the shell's last command:\n{screen}"
    );
    let before = read_record(directory.path(), "before");
    assert!(!before.is_empty());
    assert_eq!(read_record(directory.path(), "after"), before, "rosv restored the terminal");
}

#[test]
fn an_interactive_shell_controls_jobs_with_ctrl_c_and_ctrl_z() {
    let test = "an_interactive_shell_controls_jobs_with_ctrl_c_and_ctrl_z";
    let directory = tempfile::tempdir().expect("temporary directory");
    let command = recorded(directory.path(), "-it --exec /bin/busybox -- sh");
    let Some(tmux) = Tmux::start(test, &command, 100, 30) else { return };
    tmux.wait_for("~ #", TYPING_TIMEOUT);
    // The shell puts the command in a group of its own and makes it the
    // terminal's foreground: Ctrl-C reaches the command, not the shell.
    tmux.send(&["sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_secs(3));
    tmux.send(&["C-c"]);
    tmux.send(&["echo after sleep $?", "Enter"]);
    tmux.wait_for("after sleep 130", TYPING_TIMEOUT);
    // Ctrl-Z stops the foreground job; `fg` continues it in the
    // foreground, where Ctrl-C ends it.
    tmux.send(&["sleep 200", "Enter"]);
    std::thread::sleep(Duration::from_secs(3));
    tmux.send(&["C-z"]);
    tmux.wait_for("Stopped", TYPING_TIMEOUT);
    tmux.send(&["jobs -l > /tmp/jobs; echo listed $(grep -c 'sleep 200' /tmp/jobs)", "Enter"]);
    tmux.wait_for("listed 1", TYPING_TIMEOUT);
    tmux.send(&["fg", "Enter"]);
    std::thread::sleep(Duration::from_secs(3));
    tmux.send(&["C-c"]);
    tmux.send(&["echo after fg $?", "Enter"]);
    tmux.wait_for("after fg 130", TYPING_TIMEOUT);
    // A background job that reads the terminal is stopped (SIGTTIN).
    tmux.send(&["cat &", "Enter"]);
    std::thread::sleep(Duration::from_secs(3));
    tmux.send(&["jobs", "Enter"]);
    tmux.wait_for("Stopped (tty input)", TYPING_TIMEOUT);
    tmux.send(&["kill -9 %1; sleep 1; jobs", "Enter"]);
    tmux.wait_for("Killed", TYPING_TIMEOUT);
    tmux.send(&["exit 5", "Enter"]);
    tmux.wait_for("ENDED", TYPING_TIMEOUT);
    let screen = tmux.screen();
    assert_eq!(read_record(directory.path(), "status"), "5", "the shell's exit status:\n{screen}");
}

#[test]
fn the_guest_follows_the_terminals_size() {
    let test = "the_guest_follows_the_terminals_size";
    let directory = tempfile::tempdir().expect("temporary directory");
    let program = guests::c_program("winsize", Variant::MuslStatic);
    let command = recorded(directory.path(), &format!("-t --exec {}", path(&program)));
    let Some(tmux) = Tmux::start(test, &command, 100, 30) else { return };
    tmux.wait_for("start: 30 rows, 100 columns", TYPING_TIMEOUT);
    assert!(tmux.command(&["resize-window", "-t", "0", "-x", "120", "-y", "40"]), "tmux resizes");
    tmux.wait_for("resized: 40 rows, 120 columns", TYPING_TIMEOUT);
    // Canonical mode: a line is read whole, with its newline.
    tmux.send(&["abc", "Enter"]);
    tmux.wait_for("read 4 bytes", TYPING_TIMEOUT);
    tmux.send(&["C-d"]);
    tmux.wait_for("ENDED", TYPING_TIMEOUT);
    let screen = tmux.screen();
    assert!(screen.contains("end of input"), "{screen}");
    assert_eq!(read_record(directory.path(), "status"), "0", "{screen}");
    assert_eq!(read_record(directory.path(), "after"), read_record(directory.path(), "before"));
}

#[test]
fn ctrl_c_without_a_terminal_of_the_guests_reaches_the_program_through_rosv() {
    let test = "ctrl_c_without_a_terminal_of_the_guests_reaches_the_program_through_rosv";
    let directory = tempfile::tempdir().expect("temporary directory");
    let sleeper = guests::c_program("sleeper", Variant::MuslStatic);
    let command = recorded(directory.path(), &format!("--exec {}", path(&sleeper)));
    let Some(tmux) = Tmux::start(test, &command, 100, 30) else { return };
    tmux.wait_for("sleeping", TYPING_TIMEOUT);
    // The host's terminal turns Ctrl-C into SIGINT to rosv, which passes
    // it on; the program, which does not handle it, ends.
    tmux.send(&["C-c"]);
    tmux.wait_for("ENDED", TYPING_TIMEOUT);
    assert_eq!(read_record(directory.path(), "status"), "130", "{}", tmux.screen());
}

/// Where a test's background VMs keep their records.
fn runtime_directory() -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().to_path_buf();
    (directory, path)
}

/// `rosv` with `arguments`, its records of background VMs in `runtime`.
fn rosv_in(runtime: &Path, arguments: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(arguments)
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null())
        .output()
        .expect("run rosv");
    println!(
        "--- rosv {arguments:?}\nstatus {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

#[test]
fn a_vm_runs_in_the_background_and_is_listed_logged_and_stopped() {
    let test = "a_vm_runs_in_the_background_and_is_listed_logged_and_stopped";
    if !Path::new("/usr/sbin/nginx").is_file() {
        skip(test, "/usr/sbin/nginx is missing (apt-get install nginx-light)");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = support::nginx_image(directory.path(), "page\n");
    let (_runtime, runtime) = runtime_directory();
    let port = support::free_port();
    let forward = format!("{port}:8080");
    let started = Instant::now();
    let output =
        rosv_in(&runtime, &["run", "-d", "--name", "web", "-m", "256M", "-p", &forward, path(&image)]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "web\n");
    assert!(started.elapsed() < Duration::from_secs(30), "-d returns without waiting for the VM");
    let listing = text(&rosv_in(&runtime, &["ps"]).stdout);
    assert!(listing.lines().any(|line| line.starts_with("web ") && line.contains("running")), "{listing}");
    let answer = support::exchange_with_retries(
        ([127, 0, 0, 1], port).into(),
        b"GET /hello HTTP/1.0\r\n\r\n",
        Duration::from_secs(120),
    );
    let taken = rosv_in(&runtime, &["run", "-d", "--name", "web", path(&image)]);
    assert_eq!(taken.status.code(), Some(125), "a second VM called web");
    assert!(text(&taken.stderr).contains("a VM called web is running"));
    let stopped = rosv_in(&runtime, &["stop", "web"]);
    assert_eq!(stopped.status.code(), Some(0));
    assert_eq!(text(&stopped.stdout), "web\n");
    let answer = answer.expect("nginx answers in the background");
    assert!(answer.ends_with("hello from nginx\n"), "{answer}");
    let logs = text(&rosv_in(&runtime, &["logs", "web"]).stdout);
    assert!(logs.contains("nginx"), "nginx's messages are kept: {logs}");
    assert!(!text(&rosv_in(&runtime, &["ps"]).stdout).contains("web "), "gone from the running VMs");
    let all = text(&rosv_in(&runtime, &["ps", "-a"]).stdout);
    assert!(all.lines().any(|line| line.starts_with("web ") && line.contains("exited (0)")), "{all}");
    assert_eq!(rosv_in(&runtime, &["rm", "web"]).status.code(), Some(0));
    assert!(!text(&rosv_in(&runtime, &["ps", "-a"]).stdout).contains("web "));
    let unknown = rosv_in(&runtime, &["logs", "nothing"]);
    assert_eq!(unknown.status.code(), Some(125));
    assert!(text(&unknown.stderr).contains("there is no VM called nothing"));
}
