//! Running a virtual machine to its end and reporting its exit status.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::boot_config::{self, BootConfigFile};
use crate::cli::MachineArgs;
use crate::image::Image;
use crate::kernel_symbols::Symbols;
use crate::machine::Board;
use crate::network::{self, Network, PortForward};
use crate::output::{CaptureSink, ConsoleFilter, SerialOutput};
use crate::streams::{HostStreams, PortSockets, RawMode, Relay, StreamOptions};
use crate::{builtin, firecracker, qemu};
use rosv_abi::streams::ControlMessage;
use std::os::unix::process::CommandExt;

/// `rosv`'s exit status when it failed itself (not the application).
pub const TOOL_FAILURE: u8 = 125;
/// `rosv`'s exit status when `--timeout` stopped the VM.
pub const TIMED_OUT: u8 = 124;

/// The hypervisor that runs the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Hypervisor {
    /// QEMU, with the machine `--machine` names.
    Qemu,
    /// Firecracker.
    Firecracker,
    /// rosv's own KVM monitor: no other program needed, only /dev/kvm.
    Builtin,
}

/// How the hypervisor executes guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Accelerator {
    /// KVM if the host has hardware virtualization, else QEMU's TCG.
    Auto,
    /// KVM, even software KVM (`kvm_pvm`).
    Kvm,
    /// QEMU's TCG emulator.
    Tcg,
    /// QEMU's TCG with the guest's clocks counting instructions (one
    /// nanosecond each): times the guest measures, the bootchart's among
    /// them, come out within microseconds of each other on every run and
    /// every host (only device completions still follow the host).
    Icount,
}

/// Everything a hypervisor needs to boot the VM.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The kernel ELF.
    pub kernel: PathBuf,
    /// The root filesystem (a ROFS image), attached as a read-only virtio
    /// block device.
    pub root_disk: PathBuf,
    /// More read-only disks, attached after the root one in this order.
    pub disks: Vec<PathBuf>,
    /// The disks of `--volume` images, attached after those.
    pub volume_disks: Vec<crate::volume::VolumeDisk>,
    /// Host directories of `--volume`, shared with the guest over 9P.
    pub shared_directories: Vec<crate::volume::SharedDirectory>,
    /// The machine and the transport of its virtio devices.
    pub board: Board,
    /// The kernel command line.
    pub command_line: String,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Whether the guest gets ACPI tables.
    pub has_acpi: bool,
    /// The guest's network card, if any.
    pub network: Network,
    /// Host ports forwarded to the guest (with [`Network::User`] only).
    pub forwards: Vec<PortForward>,
    /// The directory of the sockets behind the guest's stream ports (QEMU
    /// only, see `streams::PortSockets`); none: the kernel's serial console
    /// carries the application's streams too.
    pub stream_sockets: Option<PathBuf>,
    /// The application's commands and environment, loaded as the initrd.
    pub boot_config: Option<BootConfigFile>,
    /// A disk that boots through the firmware instead of the kernel,
    /// root disk, command line and boot configuration above (QEMU's pc
    /// machine only).
    pub boot_disk: Option<crate::disk::BootDisk>,
    /// The Unix socket behind the guest's vsock device (built-in monitor
    /// and Firecracker only).
    pub vsock: Option<PathBuf>,
}

impl VmConfig {
    /// The configuration for booting `image` as `machine` asks, with extra
    /// `environment` and, if given, `command` instead of the image's own.
    pub fn new(
        image: &Image,
        machine: &MachineArgs,
        environment: &[(String, String)],
        command: Option<&[String]>,
    ) -> Result<Self> {
        // The image's root disk is the first disk: say so, so that a disk
        // that is not ROFS is reported as such rather than as a missing
        // program on an empty root (the image's options may still choose).
        let mut parts = vec![rosv_abi::exit::RECORD_OPTION.to_string(), "--rootfs=overlay".to_string()];
        if crate::host::kvm() == Some(crate::host::Kvm::Software) && uses_kvm(machine) {
            // This host cannot run XSAVE in the guest's ring 0, and may not
            // hide it from CPUID either.
            parts.push("--noxsave".into());
        }
        if machine.bootchart {
            parts.push("--bootchart".into());
        }
        parts.extend(machine.kernel_args.clone());
        // The commands and the environment travel in the boot configuration;
        // the command line keeps the kernel options alone.
        let image_options = boot_config::split_options(&image.options)?;
        parts.push(image_options.options);
        let commands = match command {
            Some(words) => crate::image::split_commands(words)?,
            None => boot_config::parse_commands(&image.command)?,
        };
        if commands.is_empty() {
            anyhow::bail!(
                "the image has no default command; give one after `--`, e.g. `rosv run IMAGE -- /bin/program`"
            );
        }
        let mut environment_entries = image_options.environment;
        environment_entries.extend(environment.iter().map(|(name, value)| format!("{name}={value}")));
        let boot_config = boot_config::write(&environment_entries, &commands)?;
        let command_line = parts.into_iter().filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ");
        boot_config::check_command_line(&command_line)?;
        let board = Board::choose(machine.hypervisor, machine.machine, machine.virtio)?;
        for disk in &machine.disks {
            if !disk.is_file() {
                anyhow::bail!(
                    "--disk {}: no such file; give a disk image such as a ROFS image",
                    disk.display()
                );
            }
        }
        let network = machine.network();
        network::check(machine.hypervisor, &network, &machine.forwards)?;
        network::check_host(&network)?;
        Ok(VmConfig {
            kernel: machine.kernel.clone().unwrap_or_else(|| image.kernel.clone()),
            root_disk: image.root.clone(),
            disks: machine.disks.clone(),
            volume_disks: Vec::new(),
            shared_directories: Vec::new(),
            board,
            command_line,
            memory_mib: machine.memory,
            cpus: machine.cpus,
            has_acpi: machine.acpi == crate::cli::Switch::On,
            network,
            forwards: machine.forwards.clone(),
            stream_sockets: None,
            boot_config: Some(boot_config),
            boot_disk: None,
            vsock: machine.vsock.clone(),
        })
    }

    /// The configuration for booting `disk` through its firmware on QEMU's
    /// pc machine; `--disk`, the network and the application's streams are
    /// attached as for an image, over virtio-pci. The disk's own
    /// `grub.cfg` holds the kernel command line.
    pub fn for_disk(disk: crate::disk::BootDisk, machine: &MachineArgs) -> Result<Self> {
        if machine.hypervisor != Hypervisor::Qemu {
            anyhow::bail!(
                "{} boots through firmware, which only QEMU has here; leave out --hypervisor",
                disk.path.display()
            );
        }
        if machine.kernel.is_some() || machine.kernel_args.is_some() {
            anyhow::bail!(
                "{}: the disk holds its kernel and options; build it again to change them",
                disk.path.display()
            );
        }
        let transport = machine.virtio.unwrap_or(crate::machine::VirtioTransport::Modern);
        let board = Board::choose(Hypervisor::Qemu, crate::machine::Machine::Pc, Some(transport))?;
        for extra in &machine.disks {
            if !extra.is_file() {
                anyhow::bail!("--disk {}: no such file", extra.display());
            }
        }
        let network = machine.network();
        network::check(machine.hypervisor, &network, &machine.forwards)?;
        network::check_host(&network)?;
        Ok(VmConfig {
            kernel: PathBuf::new(),
            root_disk: PathBuf::new(),
            disks: machine.disks.clone(),
            volume_disks: Vec::new(),
            shared_directories: Vec::new(),
            board,
            command_line: String::new(),
            memory_mib: machine.memory,
            cpus: machine.cpus,
            has_acpi: machine.acpi == crate::cli::Switch::On,
            network,
            forwards: machine.forwards.clone(),
            stream_sockets: None,
            boot_config: None,
            boot_disk: Some(disk),
            vsock: machine.vsock.clone(),
        })
    }

    /// Adds kernel options in front of the command line (options come
    /// first, before the command).
    pub fn add_kernel_options(&mut self, options: &[String]) {
        if options.is_empty() {
            return;
        }
        self.command_line = format!("{} {}", options.join(" "), self.command_line);
    }

    /// Adds kernel options after the image's own, so that they win where
    /// an option given twice takes the last value (`--cwd`, `--user`).
    pub fn override_kernel_options(&mut self, options: &[String]) {
        if options.is_empty() {
            return;
        }
        self.command_line = format!("{} {}", self.command_line, options.join(" "));
    }

    /// Makes the kernel print `Booted in N ms` before the application
    /// starts.
    pub fn reporting_boot(mut self) -> Self {
        self.add_kernel_options(&[REPORT_BOOT_OPTION.to_string()]);
        self
    }
}

/// The kernel option that asks for the `Booted in` line.
pub const REPORT_BOOT_OPTION: &str = "--report-boot";
/// How many SIGINTs and SIGTERMs within [`ESCAPE_WINDOW`] stop the VM
/// rather than going to the application: the way out of a guest that
/// catches or ignores them (as Docker's three Ctrl-Cs).
pub const ESCAPE_COUNT: usize = 3;
/// The time within which [`ESCAPE_COUNT`] signals stop the VM.
pub const ESCAPE_WINDOW: Duration = Duration::from_secs(5);

/// Counts the SIGINTs and SIGTERMs rosv received, to tell when the user
/// wants out whatever the application does with them.
#[derive(Debug, Default)]
pub struct Escape {
    recent: std::collections::VecDeque<Instant>,
}

impl Escape {
    /// Records `signal`, received at `now`; true when it is the
    /// [`ESCAPE_COUNT`]-th SIGINT or SIGTERM within [`ESCAPE_WINDOW`].
    pub fn is_escape(&mut self, signal: i32, now: Instant) -> bool {
        use signal_hook::consts::{SIGINT, SIGTERM};
        if signal != SIGINT && signal != SIGTERM {
            return false;
        }
        while self.recent.front().is_some_and(|&first| now.duration_since(first) > ESCAPE_WINDOW) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() == ESCAPE_COUNT - 1 {
            eprintln!(
                "rosv: passed signal {signal} to the application; {ESCAPE_COUNT} SIGINTs or SIGTERMs \
                 within {} s stop the VM",
                ESCAPE_WINDOW.as_secs()
            );
        }
        self.recent.len() >= ESCAPE_COUNT
    }
}
/// How long rosv waits for the guest's last output once the VM ended.
const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Whether the VM will run under KVM (rather than QEMU's emulator).
fn uses_kvm(machine: &MachineArgs) -> bool {
    match machine.hypervisor {
        Hypervisor::Firecracker | Hypervisor::Builtin => true,
        Hypervisor::Qemu => machine.accel == Accelerator::Kvm,
    }
}

/// Boots the VM with the application's streams on rosv's own (kernel
/// messages on standard error), and returns the application's exit status.
pub fn run(config: &VmConfig, machine: &MachineArgs, scratch: &Path, options: StreamOptions) -> Result<u8> {
    let mut config = config.clone();
    if machine.verbose {
        config = config.reporting_boot();
    }
    let host = HostStreams::detect(options)?;
    config.add_kernel_options(&host.kernel_options());
    let monitor = scratch.join("monitor.sock");
    let (mut command, monitor, link) = match machine.hypervisor {
        Hypervisor::Qemu => {
            let sockets = PortSockets::listen(scratch)?;
            config.stream_sockets = Some(scratch.to_path_buf());
            let command = qemu::command(&config, machine.accel, Some(&monitor))?;
            (command, Some(monitor.as_path()), StreamLink::Ports(sockets))
        }
        // One serial port for everything: see `firecracker`.
        Hypervisor::Firecracker => (firecracker::command(&config, scratch)?, None, StreamLink::Serial),
        Hypervisor::Builtin => {
            return builtin::run(
                &config,
                machine.timeout.map(Duration::from_secs),
                host,
                options.has_terminal,
            );
        }
    };
    let streams = Some(StreamSetup { link, host, wants_raw_mode: options.has_terminal });
    if machine.verbose {
        eprintln!("rosv: {command:?}");
    }
    let symbols = std::fs::read(&config.kernel).ok().and_then(|kernel| Symbols::read(&kernel));
    let limit = machine.timeout.map(Duration::from_secs);
    let outcome = supervise(&mut command, limit, symbols, Console::Stderr, monitor, streams)?;
    let name = match machine.hypervisor {
        Hypervisor::Qemu => "QEMU",
        Hypervisor::Firecracker => "Firecracker",
        Hypervisor::Builtin => "the built-in monitor",
    };
    match outcome {
        Outcome::TimedOut(limit) => {
            eprintln!("rosv: the VM did not finish within {} s; stopped it", limit.as_secs());
            Ok(TIMED_OUT)
        }
        Outcome::Interrupted(signal) => {
            eprintln!("rosv: stopped the VM on signal {signal}");
            Ok(128u8.saturating_add(signal as u8))
        }
        Outcome::Exited { reported: Some(status), .. } => Ok(status),
        Outcome::Exited { reported: None, code } => {
            let from_debug_exit = (machine.hypervisor == Hypervisor::Qemu)
                .then(|| code.and_then(rosv_abi::exit::status_from_debug_exit))
                .flatten();
            match from_debug_exit {
                Some(status) => Ok(status),
                None => anyhow::bail!(
                    "{name} exited ({}) without an exit status from the guest",
                    code.map_or_else(|| "killed by a signal".to_string(), |code| format!("code {code}"))
                ),
            }
        }
    }
}

/// How a supervised hypervisor ended.
#[derive(Debug)]
pub enum Outcome {
    /// It exited; `reported` is the guest's exit record, if it printed one.
    Exited { code: Option<i32>, reported: Option<u8> },
    /// It ran past the time limit and was killed.
    TimedOut(Duration),
    /// rosv received this signal (one it could not pass on, or the last
    /// of [`ESCAPE_COUNT`] SIGINTs and SIGTERMs) and killed it.
    Interrupted(i32),
}

/// The last terminating signal rosv received (0: none yet), recorded by
/// handlers installed once, so that a VM never outlives its `rosv`.
pub fn termination_signal() -> Result<&'static std::sync::Arc<std::sync::atomic::AtomicUsize>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    static RECEIVED: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicUsize>> =
        std::sync::OnceLock::new();
    if let Some(received) = RECEIVED.get() {
        return Ok(received);
    }
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
        signal_hook::flag::register_usize(signal, received.clone(), signal as usize)
            .context("cannot watch for termination signals")?;
    }
    Ok(RECEIVED.get_or_init(|| received))
}

/// `command`, run so that the kernel kills it if the thread that started
/// it ends: through util-linux's `setpriv --pdeathsig KILL`, which sets the
/// signal and then executes the command (the process keeps its id). So no
/// VM outlives a `rosv` that was killed outright; the signals rosv can
/// catch stop its VMs anyway. Without `setpriv`, the command as it is.
pub fn killed_with_parent(command: &Command) -> Command {
    let (program, arguments) = match crate::host::find_program("setpriv") {
        Some(setpriv) => {
            let mut arguments: Vec<std::ffi::OsString> =
                vec!["--pdeathsig".into(), "KILL".into(), "--".into()];
            arguments.push(command.get_program().to_owned());
            arguments.extend(command.get_args().map(std::ffi::OsStr::to_owned));
            (setpriv.into_os_string(), arguments)
        }
        None => {
            (command.get_program().to_owned(), command.get_args().map(std::ffi::OsStr::to_owned).collect())
        }
    };
    let mut wrapped = Command::new(program);
    wrapped.args(arguments);
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    if let Some(directory) = command.get_current_dir() {
        wrapped.current_dir(directory);
    }
    wrapped
}

/// Where the guest console goes.
#[derive(Debug, Clone)]
pub enum Console {
    /// The kernel's text to our standard error, the application's streams
    /// (if the serial carries them) to our standard output and error, as
    /// they arrive.
    Stderr,
    /// Into a buffer.
    Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

/// How the application's streams reach the host.
#[derive(Debug)]
pub enum StreamLink {
    /// A virtio-console port each, through these sockets (QEMU).
    Ports(PortSockets),
    /// Framed on the serial port: output in records on the hypervisor's
    /// standard output, input in frames on its standard input
    /// (Firecracker).
    Serial,
}

/// What connects the application's streams to rosv's while a VM runs.
#[derive(Debug)]
pub struct StreamSetup {
    /// How the streams travel.
    pub link: StreamLink,
    /// rosv's streams as the guest sees them.
    pub host: HostStreams,
    /// Whether the host's terminal goes into raw mode (`-t`).
    pub wants_raw_mode: bool,
}

/// Runs `command` with its standard output (the serial console) filtered
/// to `console` and, with `streams`, the application's streams relayed.
/// On a timeout, QEMU's `monitor` socket (if given) is used first to send
/// every processor an NMI, so the kernel prints its thread dump (what each
/// processor runs, every thread and what it waits for); SIGUSR1 to rosv
/// asks for the same dump while the VM goes on.
///
/// Every signal rosv receives (SIGINT, SIGTERM, SIGHUP, SIGQUIT) goes to
/// the application when the streams have a control port, which decides, as
/// on Linux: one it does not catch ends it (and the VM), one it catches it
/// handles. Without a control port, or on the [`ESCAPE_COUNT`]-th SIGINT
/// or SIGTERM within [`ESCAPE_WINDOW`], the VM is stopped at once. A
/// change of the terminal's size (SIGWINCH) is passed on too.
pub fn supervise(
    command: &mut Command,
    limit: Option<Duration>,
    symbols: Option<Symbols>,
    console: Console,
    monitor: Option<&Path>,
    streams: Option<StreamSetup>,
) -> Result<Outcome> {
    let mut command = killed_with_parent(command);
    let takes_input = streams.as_ref().is_some_and(|streams| matches!(streams.link, StreamLink::Serial));
    let input = if takes_input { Stdio::piped() } else { Stdio::null() };
    command.stdin(input).stdout(Stdio::piped()).stderr(Stdio::inherit());
    // Keys that raise signals on rosv's terminal (Ctrl-C without -t) must
    // reach rosv alone, which passes them to the application.
    command.process_group(0);
    let signal = termination_signal()?;
    let resized = window_changes()?;
    let dump_requested = dump_requests()?;
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().with_context(|| format!("cannot start {program}"))?;
    let stdout = child.stdout.take().context("the hypervisor has no standard output")?;
    let is_raw = streams.as_ref().is_some_and(|streams| streams.wants_raw_mode);
    let output = match console {
        Console::Stderr => SerialOutput::to_standard_streams(symbols, is_raw),
        Console::Capture(buffer) => SerialOutput::to_one_sink(symbols, Box::new(CaptureSink(buffer))),
    };
    let pump = std::thread::spawn(move || pump_serial(stdout, output));
    let mut attached = None;
    if let Some(setup) = streams {
        match attach(setup, &mut child) {
            Ok(streams) => attached = Some(streams),
            Err(error) => {
                stop(&mut child);
                let _ = pump.join();
                return Err(error);
            }
        }
    }
    let relay = attached.as_ref().map(|(relay, _)| relay);
    let mut escape = Escape::default();
    let started = Instant::now();
    let ended = loop {
        if let Some(status) = child.try_wait()? {
            break Ok(status.code());
        }
        if let Some(limit) = limit
            && started.elapsed() > limit
        {
            if let Some(monitor) = monitor {
                ask_for_report(monitor);
            }
            break Err(Outcome::TimedOut(limit));
        }
        if dump_requested.swap(false, std::sync::atomic::Ordering::Relaxed) {
            match monitor {
                Some(monitor) if request_dump(monitor) => {}
                _ => eprintln!("rosv: Firecracker cannot be asked for the guest's thread dump"),
            }
        }
        let received = signal.swap(0, std::sync::atomic::Ordering::Relaxed) as i32;
        if received != 0 && !pass_signal(relay, received, &mut escape) {
            break Err(Outcome::Interrupted(received));
        }
        if resized.swap(false, std::sync::atomic::Ordering::Relaxed)
            && let (Some(relay), Some((columns, rows))) = (relay, crate::streams::window_size())
        {
            relay.send(ControlMessage::Resize { columns, rows });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if ended.is_err() {
        stop(&mut child);
    }
    let reported = pump.join().unwrap_or(None);
    if let Some((relay, raw_mode)) = attached {
        relay.finish(OUTPUT_DRAIN_LIMIT);
        drop(raw_mode);
    }
    match ended {
        Ok(code) => Ok(Outcome::Exited { code, reported }),
        Err(outcome) => Ok(outcome),
    }
}

/// Passes `signal`, which rosv received, to the application; false when
/// it completes an escape (see [`Escape`]) or cannot be passed, and the VM
/// is to stop.
pub fn pass_signal(relay: Option<&Relay>, signal: i32, escape: &mut Escape) -> bool {
    !escape.is_escape(signal, Instant::now())
        && u8::try_from(signal)
            .is_ok_and(|signal| relay.is_some_and(|relay| relay.send(ControlMessage::Signal(signal))))
}

/// Connects the streams (waiting for QEMU to connect its ports), puts the
/// terminal in raw mode if asked, and starts relaying.
fn attach(setup: StreamSetup, child: &mut Child) -> Result<(Relay, Option<RawMode>)> {
    let relay = match setup.link {
        StreamLink::Ports(sockets) => {
            let connections =
                sockets.accept(|| matches!(child.try_wait(), Ok(None)), Duration::from_secs(60))?;
            Relay::start(connections, &setup.host)
        }
        StreamLink::Serial => {
            let input = child.stdin.take().context("the hypervisor has no standard input")?;
            Relay::start_serial(Box::new(input), &setup.host)
        }
    };
    let raw_mode = if setup.wants_raw_mode { Some(RawMode::enter()?) } else { None };
    Ok((relay, raw_mode))
}

/// Whether rosv's terminal changed size since last asked (SIGWINCH).
pub fn window_changes() -> Result<&'static std::sync::Arc<std::sync::atomic::AtomicBool>> {
    static RESIZED: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    if let Some(resized) = RESIZED.get() {
        return Ok(resized);
    }
    let resized = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGWINCH, resized.clone())
        .context("cannot watch the terminal's size")?;
    Ok(RESIZED.get_or_init(|| resized))
}

/// Whether rosv was asked for the guest's thread dump (SIGUSR1) since last
/// asked.
pub fn dump_requests() -> Result<&'static std::sync::Arc<std::sync::atomic::AtomicBool>> {
    static REQUESTED: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    if let Some(requested) = REQUESTED.get() {
        return Ok(requested);
    }
    let requested = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, requested.clone())
        .context("cannot watch for thread-dump requests")?;
    Ok(REQUESTED.get_or_init(|| requested))
}

/// Copies the serial console to `output` until it ends; returns the
/// reported status.
fn pump_serial(mut console: impl Read, mut output: SerialOutput) -> Option<u8> {
    let mut buffer = [0u8; 8192];
    loop {
        match console.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(length) => output.feed(&buffer[..length]),
        }
    }
    output.finish()
}

/// How long a guest may take to print its thread dump before its VM is
/// stopped: its processors answer within a second, and a thousand threads'
/// lines take about as long again on the serial console.
const DUMP_GRACE: Duration = Duration::from_secs(3);

/// Sends `nmi` to QEMU's human monitor (an NMI to every processor, which
/// the kernel answers with its thread dump); false if the monitor cannot
/// be reached. The connection stays open until the monitor has prompted
/// again (or for a second): QEMU drops a command whose connection closed
/// before it read it.
pub fn request_dump(monitor: &Path) -> bool {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let Ok(mut stream) = UnixStream::connect(monitor) else {
        return false;
    };
    if stream.write_all(b"nmi\n").is_err() {
        return false;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    // The banner's prompt, then the one after the command.
    while answer.windows(6).filter(|window| window == b"(qemu)").count() < 2 {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(length) => answer.extend_from_slice(&buffer[..length]),
        }
    }
    true
}

/// Asks for the guest's thread dump and gives it [`DUMP_GRACE`] to print
/// it, before its VM is stopped.
fn ask_for_report(monitor: &Path) {
    if request_dump(monitor) {
        std::thread::sleep(DUMP_GRACE);
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Copies the console to `sink`; returns the reported status.
pub fn pump_console(mut console: impl Read, symbols: Option<Symbols>, sink: &mut impl Write) -> Option<u8> {
    let mut filter = ConsoleFilter::new(symbols);
    let mut buffer = [0u8; 8192];
    loop {
        match console.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(length) => {
                if filter.feed(&buffer[..length], sink).is_err() {
                    break;
                }
            }
        }
    }
    let _ = filter.finish(sink);
    let _ = sink.flush();
    filter.status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};

    #[test]
    fn the_third_sigint_or_sigterm_within_the_window_escapes() {
        let start = Instant::now();
        let mut escape = Escape::default();
        assert!(!escape.is_escape(SIGINT, start));
        assert!(!escape.is_escape(SIGQUIT, start), "SIGQUIT goes to the program");
        assert!(!escape.is_escape(SIGHUP, start));
        assert!(!escape.is_escape(SIGTERM, start + Duration::from_secs(1)));
        assert!(escape.is_escape(SIGINT, start + Duration::from_secs(2)));
    }

    #[test]
    fn signals_spread_wider_than_the_window_never_escape() {
        let start = Instant::now();
        let mut escape = Escape::default();
        for step in 0..10 {
            let now = start + (ESCAPE_WINDOW / 2 + Duration::from_millis(100)) * step;
            assert!(!escape.is_escape(SIGINT, now), "signal {step}");
        }
    }
}
