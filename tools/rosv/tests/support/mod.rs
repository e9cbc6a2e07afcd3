//! What several boot-test files share: skipping visibly, whether
//! Firecracker can run here, running `rosv`, and guests that serve the
//! host.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Says that a test was skipped, on the terminal: writing to the standard
/// error handle directly is not captured by the test harness.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Whether Firecracker can be tested here; says why not otherwise.
pub fn firecracker_available(test: &str) -> bool {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|directory| directory.join("firecracker").is_file())
    });
    if !on_path {
        skip(test, "firecracker is not on PATH");
        return false;
    }
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(test, "/dev/kvm cannot be opened");
        return false;
    }
    true
}

/// Whether the host's KVM emulates ring 0 in software (`kvm_pvm`), which
/// cannot run the SSE code of C libraries in the ring 0 applications use.
pub fn kvm_is_software() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

/// Seconds any one VM may run: generous, for slow emulation.
pub const TIMEOUT_SECONDS: &str = "180";

/// Bytes as text, for assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A test path as the `&str` a command line takes.
pub fn path(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Runs `rosv` with `arguments` and prints what it did, for failing tests.
pub fn rosv(arguments: &[&str]) -> std::process::Output {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_rosv")).args(arguments).output().expect("run rosv");
    println!(
        "--- rosv {arguments:?}\nstatus {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Runs `rosv run` with `arguments` and [`TIMEOUT_SECONDS`].
pub fn rosv_run(arguments: &[&str]) -> std::process::Output {
    let mut all = vec!["run", "--timeout", TIMEOUT_SECONDS];
    all.extend_from_slice(arguments);
    rosv(&all)
}

/// A TCP port on the host's loopback that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("the listener's address").port()
}

/// A running `rosv run` whose console arrives line by line.
pub struct Guest {
    child: Child,
    lines: Receiver<String>,
    seen: String,
}

impl Guest {
    pub fn start(arguments: &[&str]) -> Guest {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rosv"))
            .args(["run", "--timeout", TIMEOUT_SECONDS])
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start rosv");
        let stdout = child.stdout.take().expect("rosv's standard output is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        println!("--- rosv run {arguments:?}");
        Guest { child, lines, seen: String::new() }
    }

    /// Waits for a console line containing `wanted`; false after `limit`
    /// or when the console ends first.
    pub fn wait_for(&mut self, wanted: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(wanted) {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Waits for rosv to end (its `--timeout` bounds the wait) and returns
    /// its exit status and the whole console.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait for rosv");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        println!("status {:?}\nstdout:\n{}", status.code(), self.seen);
        (status.code(), self.seen)
    }

    /// Stops the VM after a failed wait and fails the test with what the
    /// guest printed.
    pub fn abandon(mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let (_, console) = self.finish();
        panic!("{why}; the guest printed:\n{console}");
    }
}

/// Connects to `address`, retrying for a few seconds: QEMU may still be
/// setting the listener up.
pub fn connect_with_retries(address: SocketAddr) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

impl Guest {
    /// The process id of `rosv`.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops the VM as a user would (SIGTERM to `rosv`) and returns its
    /// exit status and the whole console.
    pub fn terminate(self) -> (Option<i32>, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.finish()
    }
}
