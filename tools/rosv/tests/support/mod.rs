//! What several boot-test files share: skipping visibly, whether
//! Firecracker can run here, running `rosv`, guests that serve the
//! host, tap devices, and tiny hand-made PVH kernels.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
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

/// Seconds any one VM may run: generous, for slow emulation. A VM that
/// runs out of time prints the kernel's thread dump (`rosv run` asks for it
/// before stopping the VM), which the failing test shows.
pub const TIMEOUT_SECONDS: &str = "180";

/// How long the kernel gets to print its thread dump.
const DUMP_GRACE: Duration = Duration::from_secs(3);

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
    /// guest printed, the kernel's thread dump included (see
    /// [`Guest::ask_for_dump`]).
    pub fn abandon(mut self, why: &str) -> ! {
        self.ask_for_dump();
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

/// Sends `request` to `address` and reads the answer to its end, starting
/// over while the exchange fails or comes back empty, for up to `limit`:
/// with QEMU's user network the host's connection is accepted by QEMU
/// before the guest's server listens, and then reset.
pub fn exchange_with_retries(
    address: SocketAddr,
    request: &[u8],
    limit: Duration,
) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + limit;
    loop {
        let attempt = connect_with_retries(address).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(120)))?;
            stream.write_all(request)?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer)?;
            Ok(answer)
        });
        match attempt {
            Ok(answer) if !answer.is_empty() => return Ok(answer),
            Ok(_) if Instant::now() > deadline => return Ok(String::new()),
            Err(error) if Instant::now() > deadline => return Err(error),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

impl Guest {
    /// Asks the kernel for its thread dump (SIGUSR1 to `rosv`, which sends
    /// every processor an NMI) and gives it time to print it on the
    /// console, where [`Guest::finish`] collects it.
    pub fn ask_for_dump(&self) {
        let _ = Command::new("kill").args(["-USR1", &self.child.id().to_string()]).status();
        std::thread::sleep(DUMP_GRACE);
    }

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

/// Where [`pvh_kernel`] loads its one segment (headers included).
const PVH_KERNEL_LOAD: u64 = 0x10_0000;
/// The size of its ELF header and two program headers.
const PVH_KERNEL_HEADERS: u64 = 64 + 2 * 56;
/// Where [`pvh_kernel`]'s code starts: its PVH entry.
pub const PVH_KERNEL_ENTRY: u64 = PVH_KERNEL_LOAD + PVH_KERNEL_HEADERS;

/// A kernel ELF whose PVH entry (32-bit protected mode) is `code`: one
/// `PT_LOAD` at 1 MiB holding the headers and the code, and a `PT_NOTE`
/// with the `XEN_ELFNOTE_PHYS32_ENTRY` note.
pub fn pvh_kernel(code: &[u8]) -> Vec<u8> {
    let note_offset = PVH_KERNEL_HEADERS + code.len() as u64;
    let mut note = Vec::new();
    for word in [4u32, 4, 18] {
        note.extend_from_slice(&word.to_le_bytes());
    }
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&(PVH_KERNEL_ENTRY as u32).to_le_bytes());
    let file_size = note_offset + note.len() as u64;
    let mut file = Vec::new();
    file.extend_from_slice(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    file.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    file.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&PVH_KERNEL_ENTRY.to_le_bytes());
    file.extend_from_slice(&64u64.to_le_bytes()); // program headers
    file.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    file.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 2, 64, 0, 0] {
        file.extend_from_slice(&half.to_le_bytes());
    }
    let segments = [
        (1u32, 5u32, 0u64, PVH_KERNEL_LOAD, file_size, 4096u64),
        (4, 4, note_offset, PVH_KERNEL_LOAD + note_offset, note.len() as u64, 4),
    ];
    for (kind, flags, offset, address, size, align) in segments {
        file.extend_from_slice(&kind.to_le_bytes());
        file.extend_from_slice(&flags.to_le_bytes());
        for word in [offset, address, address, size, size, align] {
            file.extend_from_slice(&word.to_le_bytes());
        }
    }
    file.extend_from_slice(code);
    file.extend_from_slice(&note);
    file
}

/// Compiles the Java class `class` from `source` on the host and writes an
/// image holding the host's JDK and the class, whose command runs it. The
/// temporary directory holding the image comes back with it; `None`, after
/// saying why, when the host has no JDK.
pub fn java_image(test: &str, class: &str, source: &str) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let Ok(java) = std::fs::canonicalize("/usr/bin/java") else {
        skip(test, "/usr/bin/java is missing (apt-get install openjdk-17-jdk-headless)");
        return None;
    };
    let Some(home) = java.parent().and_then(Path::parent).map(Path::to_path_buf) else {
        skip(test, "cannot tell the JDK's directory");
        return None;
    };
    let directory = tempfile::tempdir().expect("temporary directory");
    std::fs::write(directory.path().join(format!("{class}.java")), source).expect("write the class");
    let compiled = Command::new("javac").arg(format!("{class}.java")).current_dir(directory.path()).status();
    if !compiled.is_ok_and(|status| status.success()) {
        skip(test, "javac is missing or failed (apt-get install openjdk-17-jdk-headless)");
        return None;
    }
    let manifest = directory.path().join("java.manifest");
    let text = format!(
        "{home}/**: {home}/**\n/app/{class}.class: {}\n",
        directory.path().join(format!("{class}.class")).display(),
        home = home.display()
    );
    std::fs::write(&manifest, text).expect("write the manifest");
    let image = directory.path().join("image");
    let java_path = java.to_str().expect("UTF-8 path");
    let built = rosv(&["build", path(&manifest), "-o", path(&image), "--", java_path, "-cp", "/app", class]);
    assert!(built.status.success());
    Some((directory, image))
}

/// A tap device that exists while this value lives.
pub struct TapDevice {
    name: String,
}

impl TapDevice {
    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the tap device `name`, up, with `host_address` (CIDR) if
    /// given; says why not otherwise.
    pub fn create(name: &str, host_address: Option<&str>) -> Result<TapDevice, String> {
        let run = |arguments: &[&str]| -> Result<(), String> {
            let output =
                Command::new("ip").args(arguments).output().map_err(|error| format!("ip: {error}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("ip {}: {}", arguments.join(" "), text(&output.stderr).trim()))
            }
        };
        run(&["tuntap", "add", "dev", name, "mode", "tap"])?;
        let tap = TapDevice { name: name.to_string() };
        if let Some(address) = host_address {
            run(&["address", "add", address, "dev", name])?;
        }
        run(&["link", "set", "dev", name, "up"])?;
        Ok(tap)
    }
}

impl Drop for TapDevice {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "delete", "dev", &self.name]).output();
    }
}

/// The third number of a 192.168.N.0/24 network the host routes nowhere
/// yet, chosen from the process id so that test runs side by side do not
/// pick the same one.
pub fn unused_network() -> Option<u8> {
    let routes = Command::new("ip").args(["-4", "route"]).output().ok()?;
    let routes = text(&routes.stdout);
    let start = u8::try_from(std::process::id() % 100).expect("below 100");
    (0..100).map(|offset| 100 + (start + offset) % 100).find(|n| !routes.contains(&format!("192.168.{n}.")))
}

/// Accepts one connection on `listener` (within `limit`), reads a line
/// and answers `welcome, <line>`; sends the line it read.
pub fn serve_once(listener: TcpListener, limit: Duration) -> Receiver<std::io::Result<String>> {
    let (sender, result) = mpsc::channel();
    std::thread::spawn(move || {
        let served = (|| {
            listener.set_nonblocking(true)?;
            let deadline = Instant::now() + limit;
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err(error);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(error) => return Err(error),
                }
            };
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line)?;
            let line = line.trim_end().to_string();
            (&stream).write_all(format!("welcome, {line}\n").as_bytes())?;
            Ok(line)
        })();
        let _ = sender.send(served);
    });
    result
}

/// nginx's configuration for the tests: in the foreground, one process,
/// files from `/srv`, a fixed answer at `/hello`, on port 8080.
pub const NGINX_CONFIGURATION: &str = "daemon off;
master_process off;
worker_processes 1;
error_log stderr notice;
pid /tmp/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    server {
        listen 8080;
        location / { root /srv; }
        location /hello { return 200 \"hello from nginx\\n\"; }
    }
}
";

/// Writes, in `directory`, an image of Debian's nginx with
/// [`NGINX_CONFIGURATION`] and `page` as `/srv/index.html`; returns its path.
pub fn nginx_image(directory: &Path, page: &str) -> std::path::PathBuf {
    let configuration = directory.join("nginx.conf");
    std::fs::write(&configuration, NGINX_CONFIGURATION).expect("write nginx's configuration");
    let page_path = directory.join("index.html");
    std::fs::write(&page_path, page).expect("write the page");
    let manifest = directory.join("nginx.manifest");
    let text = format!(
        "/usr/sbin/nginx: /usr/sbin/nginx\n/etc/nginx/nginx.conf: {}\n/srv/index.html: {}\n",
        configuration.display(),
        page_path.display()
    );
    std::fs::write(&manifest, text).expect("write the manifest");
    let image = directory.join("nginx");
    let built = rosv(&["build", path(&manifest), "-o", path(&image), "--", "/usr/sbin/nginx", "-p", "/tmp"]);
    assert!(built.status.success());
    image
}

/// Whether `program` is on PATH.
pub fn has_program(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|directory| directory.join(program).is_file()))
}

/// Writes an image of `manifest` (lines of `rosv build`'s manifest) with
/// the files of the Debian `packages`, whose command is `command`, into
/// `directory`; returns its path.
pub fn image(directory: &Path, manifest: &str, packages: &[&str], command: &[&str]) -> PathBuf {
    let manifest_path = directory.join("image.manifest");
    std::fs::write(&manifest_path, manifest).expect("write the manifest");
    let image = directory.join("image");
    let mut arguments = vec!["build", path(&manifest_path), "-o", path(&image)];
    for package in packages {
        arguments.extend(["--package", package]);
    }
    arguments.push("--");
    arguments.extend(command);
    let built = rosv(&arguments);
    assert!(built.status.success(), "rosv build failed");
    image
}

/// Debian's dash as an image's `/bin/sh`.
pub const SHELL_MANIFEST: &str = "/usr/bin/dash: /usr/bin/dash\n/bin/sh: ->/usr/bin/dash\n";
