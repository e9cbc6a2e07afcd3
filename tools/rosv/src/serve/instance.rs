//! One VM of a function: its hypervisor's process, console and readiness.
//!
//! An [`Instance`] of an HTTP function is started, on QEMU, with a host
//! loopback port forwarded to the function's guest port (QEMU's user-mode
//! network, as `rosv run --net user --forward` sets it up); on the
//! built-in monitor (a `rosv run` child) or Firecracker, with a vsock
//! device on a Unix socket of its own and the kernel forwarding the vsock
//! port to the guest's TCP port (`--vsock-forward`). One of a Lambda function
//! has a [`RuntimeApi`] its runtime reaches at 10.0.2.2 on QEMU, and on the
//! others at `127.0.0.1:`[`RUNTIME_API_PORT`] in the guest, which the kernel
//! forwards to the host's vsock port of the same number
//! (`--vsock-listen`), a Unix socket beside the device's. Its console and
//! QEMU's own messages go into a [`ConsoleTail`], which keeps the last
//! bytes for error reports and invocation logs and notes the kernel's
//! `Booted in` line. Readiness is decided by `pool`: the first request that
//! gets an answer (or the runtime's first request for an invocation)
//! makes the instance [`Readiness::Answering`].

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

mod console;

pub use console::ConsoleTail;
use console::TailWriter;

use super::billing;
use super::guest_stream::{GuestStream, connect_vsock};
use super::restore::ControlChannel;
use super::runtime_api::RuntimeApi;
use super::snapshot::Launch;
use crate::network::{Network, PortForward, Protocol};
use crate::vm::{Accelerator, VmConfig};

/// How long one connection attempt to QEMU's forwarded port may wait
/// before it is made again (see [`Instance::connect`]).
const CONNECT_RETRY: Duration = Duration::from_millis(25);

/// The guest's TCP port, and the host's vsock port, where a Lambda runtime
/// finds its Runtime API on the built-in monitor and Firecracker.
pub const RUNTIME_API_PORT: u16 = 9001;
/// The name of a VM's vsock socket in its directory.
const VSOCK_SOCKET: &str = "v.sock";

/// Why a request could not be answered by a function; becomes the host's
/// own response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 502, 503 or 504.
    pub status: u16,
    /// What happened, for the client and the log.
    pub message: String,
}

impl Failure {
    /// A failure with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
    }
}

/// Whether an instance answers yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Booting; `is_probing` once a request tries to reach the guest (the
    /// others wait for its outcome).
    Booting {
        /// Whether a request is trying the guest.
        is_probing: bool,
    },
    /// The guest has answered a request.
    Answering,
    /// The instance cannot serve: it failed to boot or was stopped.
    Failed(Failure),
}

/// The host's context id (vsock).
const HOST_CID: u32 = 2;

/// How a function's VMs are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    /// QEMU, with this acceleration.
    Qemu(Accelerator),
    /// Firecracker.
    Firecracker,
    /// The built-in monitor, in a `rosv run --hypervisor builtin` child
    /// whose arguments (image, memory, environment, command) these are;
    /// the instance adds its vsock socket and kernel options.
    Builtin(Vec<String>),
}

impl Launcher {
    /// Whether its VMs are reached over vsock (they have no user network).
    pub fn is_vsock(&self) -> bool {
        !matches!(self, Launcher::Qemu(_))
    }
}

/// Where an instance's vsock device listens, and the function's port.
#[derive(Debug)]
pub struct VsockPort {
    /// The device's Unix socket.
    pub socket: std::path::PathBuf,
    /// The vsock port the kernel forwards to the function's TCP port (HTTP
    /// functions).
    pub port: Option<u16>,
    /// The directory of the socket (and Firecracker's configuration),
    /// removed with the instance.
    _directory: VsockDirectory,
}

/// The directory of one VM's vsock socket, made before the VM so that the
/// host can listen beside it for the guest's connections (the device
/// connects to `<socket>_PORT` for the host's port PORT).
#[derive(Debug)]
pub struct VsockDirectory(tempfile::TempDir);

impl VsockDirectory {
    /// A new, empty directory.
    pub fn new() -> Result<VsockDirectory> {
        let directory = tempfile::Builder::new()
            .prefix("rosv-serve-vm-")
            .tempdir()
            .context("cannot create a directory for the VM's vsock socket")?;
        Ok(VsockDirectory(directory))
    }

    /// The device's socket.
    pub fn socket(&self) -> std::path::PathBuf {
        self.0.path().join(VSOCK_SOCKET)
    }

    /// Where the guest's connections to the host's vsock `port` arrive.
    pub fn host_port_socket(&self, port: u16) -> std::path::PathBuf {
        self.0.path().join(format!("{VSOCK_SOCKET}_{port}"))
    }
}

/// What the host reaches in a VM over vsock.
#[derive(Debug)]
enum VsockRole {
    /// The function's HTTP server on this TCP port of the guest.
    Http(u16),
    /// The runtime, which connects out to this Runtime API; the
    /// environment Lambda gives it.
    Lambda(Arc<RuntimeApi>, Vec<(String, String)>),
}

/// One VM of a function.
#[derive(Debug)]
pub struct Instance {
    /// `function#number`, for the log.
    pub label: String,
    /// The host loopback port forwarded to the guest's port (HTTP
    /// functions on QEMU).
    pub host_port: Option<u16>,
    /// The vsock device that reaches the guest's port (HTTP functions on
    /// the built-in monitor and Firecracker).
    pub vsock: Option<VsockPort>,
    /// The Runtime API its runtime asks for invocations (Lambda functions).
    pub runtime: Option<Arc<RuntimeApi>>,
    /// How it was started (snapshot functions).
    pub launch: Launch,
    /// The host's end of its control port (snapshot functions).
    pub control: Option<ControlChannel>,
    /// The hypervisor's process id.
    pub pid: u32,
    /// The configuration it runs, kept so that its files (the boot
    /// configuration QEMU reads as it starts) last as long as the VM.
    _config: VmConfig,
    /// When the VM was started.
    pub started: Instant,
    /// The console's last bytes.
    pub console: Arc<ConsoleTail>,
    /// `None` once the process has been waited for.
    child: Mutex<Option<Child>>,
    exit_status: Mutex<Option<ExitStatus>>,
    readiness: Mutex<Readiness>,
    readiness_changed: Condvar,
    /// Requests using the instance now.
    active: AtomicUsize,
    /// Requests it has answered.
    answered: AtomicU64,
    last_used: Mutex<Instant>,
    /// The vCPU time the boot took, once the instance is ready.
    boot_cpu: Mutex<Option<Duration>>,
    /// Whether an invocation has been billed for the boot.
    is_boot_billed: AtomicBool,
    /// The latest vCPU time read, kept for when the process is gone.
    last_cpu: Mutex<Duration>,
}

impl Instance {
    /// Starts a VM of `config` as `launcher` says, with a free host port
    /// (QEMU) or a vsock device (the others) reaching `guest_port`, if
    /// given, and `runtime` for its Lambda runtime.
    pub fn start(
        label: String,
        config: &VmConfig,
        launcher: &Launcher,
        guest_port: Option<u16>,
        runtime: Option<Arc<RuntimeApi>>,
        launch: &Launch,
    ) -> Result<Instance> {
        let accel = match launcher {
            Launcher::Qemu(accel) => *accel,
            Launcher::Firecracker | Launcher::Builtin(_) => {
                let guest_port = guest_port.context(
                    "a Lambda function's VM on the built-in monitor or Firecracker starts with \
                     Instance::start_lambda_on_vsock",
                )?;
                return Self::start_with_vsock(
                    label,
                    config,
                    launcher,
                    VsockDirectory::new()?,
                    VsockRole::Http(guest_port),
                );
            }
        };
        let mut config = config.clone();
        let host_port = match guest_port {
            Some(guest_port) => {
                let host_port = free_loopback_port()?;
                config.forwards = vec![PortForward {
                    protocol: Protocol::Tcp,
                    host_address: Ipv4Addr::LOCALHOST,
                    host_port,
                    guest_port,
                }];
                Some(host_port)
            }
            None => None,
        };
        let control = launch.control_socket.as_deref().map(ControlChannel::listen).transpose()?;
        let built = crate::qemu::command(&config, accel, None)?;
        let mut qemu = Command::new(built.get_program());
        let arguments = built.get_args().map(std::ffi::OsStr::to_owned).collect();
        qemu.args(launch.apply(arguments, config.board.transport)?);
        // Named vCPU threads, so that billing counts their time alone.
        qemu.args(["-name", "rosv,debug-threads=on"]);
        let mut command = crate::vm::killed_with_parent(&qemu);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let child = spawn(command).context("cannot start qemu-system-x86_64")?;
        Ok(Self::watch(label, child, config, started, host_port, None, runtime, launch, control))
    }

    /// Starts a VM of a Lambda function on the built-in monitor or
    /// Firecracker, whose `runtime` listens in `directory` on the socket of
    /// host port [`RUNTIME_API_PORT`]; `environment` is what Lambda gives
    /// the runtime (`config` has it too, with the function's own).
    pub fn start_lambda_on_vsock(
        label: String,
        config: &VmConfig,
        launcher: &Launcher,
        directory: VsockDirectory,
        runtime: Arc<RuntimeApi>,
        environment: Vec<(String, String)>,
    ) -> Result<Instance> {
        Self::start_with_vsock(label, config, launcher, directory, VsockRole::Lambda(runtime, environment))
    }

    /// Starts a VM on the built-in monitor or Firecracker: no network
    /// card, a vsock device on a socket in `directory`, and the kernel
    /// forwarding what `role` needs: vsock port P to TCP port P on the
    /// guest's loopback for an HTTP function on port P, or the guest's
    /// `127.0.0.1:`[`RUNTIME_API_PORT`] to the host's vsock port of the
    /// same number for a Lambda function's runtime.
    fn start_with_vsock(
        label: String,
        config: &VmConfig,
        launcher: &Launcher,
        directory: VsockDirectory,
        role: VsockRole,
    ) -> Result<Instance> {
        let socket = directory.socket();
        let (forward_option, guest_port, runtime, environment) = match role {
            VsockRole::Http(port) => (format!("--vsock-forward={port}:{port}"), Some(port), None, Vec::new()),
            VsockRole::Lambda(runtime, environment) => (
                format!("--vsock-listen={RUNTIME_API_PORT}:{}:{RUNTIME_API_PORT}", HOST_CID),
                None,
                Some(runtime),
                environment,
            ),
        };
        let mut config = config.clone();
        config.network = Network::None;
        config.forwards = Vec::new();
        config.vsock = Some(socket.clone());
        config.add_kernel_options(std::slice::from_ref(&forward_option));
        let (built, name) = match launcher {
            Launcher::Firecracker => {
                (crate::firecracker::command(&config, directory.0.path())?, "firecracker")
            }
            Launcher::Builtin(arguments) => {
                let rosv = std::env::current_exe().context("cannot find rosv's own executable")?;
                let mut command = Command::new(rosv);
                command.args(["run", "--hypervisor", "builtin", "--vsock"]).arg(&socket);
                command.arg(format!("--kernel-args={} {forward_option}", crate::vm::REPORT_BOOT_OPTION));
                // Before the function's own arguments, whose variables win.
                command.args(environment.iter().map(|(name, value)| format!("--env={name}={value}")));
                command.args(arguments);
                (command, "rosv run --hypervisor builtin")
            }
            Launcher::Qemu(_) => anyhow::bail!("QEMU reaches functions through its user network"),
        };
        let mut command = crate::vm::killed_with_parent(&built);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let child = spawn(command).with_context(|| format!("cannot start {name}"))?;
        let vsock = VsockPort { socket, port: guest_port, _directory: directory };
        Ok(Self::watch(label, child, config, started, None, Some(vsock), runtime, &Launch::default(), None))
    }

    /// The instance of a started hypervisor process: its console and
    /// errors go into the console tail.
    #[allow(clippy::too_many_arguments)]
    fn watch(
        label: String,
        mut child: Child,
        config: VmConfig,
        started: Instant,
        host_port: Option<u16>,
        vsock: Option<VsockPort>,
        runtime: Option<Arc<RuntimeApi>>,
        launch: &Launch,
        control: Option<ControlChannel>,
    ) -> Instance {
        let pid = child.id();
        let console = Arc::new(ConsoleTail::default());
        if let Some(stdout) = child.stdout.take() {
            let console = console.clone();
            std::thread::spawn(move || {
                let status = crate::vm::pump_console(stdout, None, &mut TailWriter(console.clone()));
                console.set_reported_status(status);
                console.end_stream();
            });
        }
        if let Some(mut stderr) = child.stderr.take() {
            let console = console.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(count @ 1..) = stderr.read(&mut buffer) {
                    console.push(&buffer[..count]);
                }
                console.end_stream();
            });
        }
        Instance {
            label,
            host_port,
            vsock,
            runtime,
            launch: launch.clone(),
            control,
            pid,
            _config: config,
            started,
            console,
            child: Mutex::new(Some(child)),
            exit_status: Mutex::new(None),
            readiness: Mutex::new(Readiness::Booting { is_probing: false }),
            readiness_changed: Condvar::new(),
            active: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            last_used: Mutex::new(started),
            boot_cpu: Mutex::new(None),
            is_boot_billed: AtomicBool::new(false),
            last_cpu: Mutex::new(Duration::ZERO),
        }
    }

    /// The vCPU time the VM has used so far (the last known once it ended).
    pub fn vcpu_time(&self) -> Duration {
        let mut last = lock(&self.last_cpu);
        if let Some(time) = billing::vcpu_time(self.pid) {
            *last = (*last).max(time);
        }
        *last
    }

    /// Notes the boot's vCPU time, the first time the instance is ready.
    pub fn note_ready(&self) {
        let mut boot_cpu = lock(&self.boot_cpu);
        if boot_cpu.is_none() {
            *boot_cpu = Some(self.vcpu_time());
        }
    }

    /// Whether the instance has been ready (answered, or its runtime
    /// asked for work) at some point.
    pub fn has_been_ready(&self) -> bool {
        lock(&self.boot_cpu).is_some()
    }

    /// The boot's vCPU time for the first invocation to ask, `None` for
    /// the others (or before the instance is ready).
    pub fn take_boot_cpu(&self) -> Option<Duration> {
        let boot_cpu = *lock(&self.boot_cpu);
        boot_cpu.filter(|_| !self.is_boot_billed.swap(true, Ordering::SeqCst))
    }

    /// The readiness now.
    pub fn readiness(&self) -> Readiness {
        lock(&self.readiness).clone()
    }

    /// Waits while another request probes the booting guest; returns the
    /// readiness then, having claimed the probe if the instance is still
    /// booting and nobody probes (then the caller must call
    /// [`Instance::set_readiness`]).
    pub fn claim_probe_or_wait(&self) -> Readiness {
        let mut readiness = lock(&self.readiness);
        loop {
            match &*readiness {
                Readiness::Booting { is_probing: false } => {
                    *readiness = Readiness::Booting { is_probing: true };
                    return Readiness::Booting { is_probing: false };
                }
                Readiness::Booting { is_probing: true } => {
                    readiness = self
                        .readiness_changed
                        .wait(readiness)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                other => return other.clone(),
            }
        }
    }

    /// Records the outcome of a probe (or a stop) and wakes the waiters.
    pub fn set_readiness(&self, new: Readiness) {
        *lock(&self.readiness) = new;
        self.readiness_changed.notify_all();
    }

    /// Whether the instance can still take requests.
    pub fn is_usable(&self) -> bool {
        !matches!(self.readiness(), Readiness::Failed(_)) && self.exit_status().is_none()
    }

    /// Connects to the guest's forwarded port within `timeout`.
    ///
    /// QEMU listens there with a backlog of one and accepts from its main
    /// loop, which an emulated guest keeps busy: a burst of connections
    /// overflows the backlog, and the host drops a SYN that finds it full,
    /// to send it again only a second later. Connecting again after
    /// [`CONNECT_RETRY`] sends a new SYN sooner.
    pub fn connect(&self, timeout: Duration) -> std::io::Result<GuestStream> {
        if let Some(vsock) = &self.vsock {
            let Some(port) = vsock.port else {
                return Err(std::io::Error::other("a Lambda function's VM has no forwarded port"));
            };
            return connect_vsock(&vsock.socket, port, timeout);
        }
        let Some(host_port) = self.host_port else {
            return Err(std::io::Error::other("a Lambda function's VM has no forwarded port"));
        };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = left.min(CONNECT_RETRY).max(Duration::from_millis(1));
            match TcpStream::connect_timeout(&address, attempt) {
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut && !left.is_zero() => continue,
                result => return result.map(GuestStream::Tcp),
            }
        }
    }

    /// Requests using the instance now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Marks one more request as using the instance.
    pub fn begin_request(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks a request as done with the instance.
    pub fn end_request(&self) {
        *lock(&self.last_used) = Instant::now();
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    /// Counts an answer the guest gave.
    pub fn count_answer(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// Answers the guest gave.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// How long since the last request ended (or the boot, if none has).
    pub fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    /// The process's exit status, once it has exited (checked without
    /// waiting).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        if let Some(status) = *lock(&self.exit_status) {
            return Some(status);
        }
        let mut child = lock(&self.child);
        let status = child.as_mut().and_then(|child| child.try_wait().ok().flatten())?;
        *child = None;
        *lock(&self.exit_status) = Some(status);
        Some(status)
    }

    /// Stops the VM (if it still runs) and waits for its process; marks
    /// the instance failed with `reason` so that waiting requests go.
    pub fn stop(&self, reason: &str) {
        if let Some(runtime) = &self.runtime {
            runtime.close();
        }
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                *lock(&self.exit_status) = Some(status);
            }
        }
        let mut readiness = lock(&self.readiness);
        if !matches!(*readiness, Readiness::Failed(_)) {
            *readiness = Readiness::Failed(Failure::new(503, reason));
        }
        drop(readiness);
        self.readiness_changed.notify_all();
    }

    /// How the process ended, in words.
    pub fn describe_exit(&self) -> String {
        match self.exit_status() {
            None => "it still runs".into(),
            Some(status) if self.vsock.is_some() => describe_monitor_status(status),
            Some(status) => describe_status(status, self.console.reported_status()),
        }
    }
}

/// The exit status of a `rosv run --hypervisor builtin` child or of
/// Firecracker in words: the first is the application's status, the
/// second Firecracker's own.
pub fn describe_monitor_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("its monitor exited with status {code}"),
        (None, Some(signal)) => format!("its monitor was killed by signal {signal}"),
        (None, None) => "its monitor ended".into(),
    }
}

/// QEMU's exit status in words, with the guest's status: the one the
/// kernel reported on its console, or else the one QEMU's `isa-debug-exit`
/// carries. QEMU's own failures exit with 1, which is also what a guest
/// status 0 written to `isa-debug-exit` becomes, so 1 without a report is
/// QEMU's.
pub fn describe_status(status: ExitStatus, reported: Option<u8>) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(guest) = reported {
        return format!("the application exited with status {guest}");
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => match rosv_abi::exit::status_from_debug_exit(code).filter(|_| code != 1) {
            Some(guest) => format!("the application exited with status {guest}"),
            None => format!("QEMU exited with status {code}"),
        },
        (None, Some(signal)) => format!("QEMU was killed by signal {signal}"),
        (None, None) => "QEMU ended".into(),
    }
}

/// A command for the launching thread, and where its process goes.
type LaunchRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts `command` from a thread that lasts as long as rosv: the parent
/// of a process, for its parent-death signal, is the thread that started
/// it, and the threads serving requests come and go.
fn spawn(mut command: Command) -> std::io::Result<Child> {
    static LAUNCHER: OnceLock<Option<Mutex<mpsc::Sender<LaunchRequest>>>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<LaunchRequest>();
        let thread = std::thread::Builder::new().name("launcher".into()).spawn(move || {
            for (mut command, reply) in requests {
                let _ = reply.send(command.spawn());
            }
        });
        thread.ok().map(|_| Mutex::new(sender))
    });
    let Some(launcher) = launcher else { return command.spawn() };
    let (reply, child) = mpsc::channel();
    let ended = || std::io::Error::other("the launching thread ended");
    lock(launcher).send((command, reply)).map_err(|_| ended())?;
    child.recv().unwrap_or_else(|_| Err(ended()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A loopback TCP port that was free a moment ago (QEMU binds it next; if
/// another program takes it first, QEMU fails and the boot is reported
/// failed).
fn free_loopback_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port on the loopback")?;
    Ok(listener.local_addr().context("cannot find a free port on the loopback")?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemus_own_failure_is_not_read_as_the_application_status_zero() {
        use std::os::unix::process::ExitStatusExt;
        // An exit code lives in the second byte of a wait status.
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(describe_status(exited(1), None), "QEMU exited with status 1");
        assert_eq!(describe_status(exited(1), Some(0)), "the application exited with status 0");
        assert_eq!(describe_status(exited(7), None), "the application exited with status 3");
        assert_eq!(describe_status(exited(7), Some(3)), "the application exited with status 3");
        assert_eq!(describe_status(exited(2), None), "QEMU exited with status 2");
        assert_eq!(describe_status(ExitStatus::from_raw(9), None), "QEMU was killed by signal 9");
    }
}
