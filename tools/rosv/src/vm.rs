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
use crate::output::ConsoleFilter;
use crate::{builtin, firecracker, qemu};

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
    /// The application's commands and environment, loaded as the initrd.
    pub boot_config: Option<BootConfigFile>,
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
        let mut parts = vec![rosv_abi::exit::RECORD_OPTION.to_string()];
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
            Some(argv) => vec![argv.to_vec()],
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
        network::check(machine.hypervisor, &machine.net, &machine.forwards)?;
        network::check_host(&machine.net)?;
        Ok(VmConfig {
            kernel: machine.kernel.clone().unwrap_or_else(|| image.kernel.clone()),
            root_disk: image.root.clone(),
            disks: machine.disks.clone(),
            board,
            command_line,
            memory_mib: machine.memory,
            cpus: machine.cpus,
            has_acpi: machine.acpi == crate::cli::Switch::On,
            network: machine.net.clone(),
            forwards: machine.forwards.clone(),
            boot_config: Some(boot_config),
        })
    }
}

/// Whether the VM will run under KVM (rather than QEMU's emulator).
fn uses_kvm(machine: &MachineArgs) -> bool {
    match machine.hypervisor {
        Hypervisor::Firecracker | Hypervisor::Builtin => true,
        Hypervisor::Qemu => machine.accel == Accelerator::Kvm,
    }
}

/// Boots the VM, copies its console to standard output, and returns the
/// application's exit status.
pub fn run(config: &VmConfig, machine: &MachineArgs, scratch: &Path) -> Result<u8> {
    let monitor = scratch.join("monitor.sock");
    let (mut command, monitor) = match machine.hypervisor {
        Hypervisor::Qemu => (qemu::command(config, machine.accel, Some(&monitor))?, Some(monitor.as_path())),
        Hypervisor::Firecracker => (firecracker::command(config, scratch)?, None),
        Hypervisor::Builtin => return builtin::run(config, machine.timeout.map(Duration::from_secs)),
    };
    if machine.verbose {
        eprintln!("rosv: {command:?}");
    }
    let symbols = std::fs::read(&config.kernel).ok().and_then(|kernel| Symbols::read(&kernel));
    let limit = machine.timeout.map(Duration::from_secs);
    let outcome = supervise(&mut command, limit, symbols, Console::Terminal, monitor)?;
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
    /// rosv received this signal (SIGINT, SIGTERM or SIGHUP) and killed it.
    Interrupted(i32),
}

/// The last terminating signal rosv received (0: none yet), recorded by
/// handlers installed once, so that a VM never outlives its `rosv`.
pub fn termination_signal() -> Result<&'static std::sync::Arc<std::sync::atomic::AtomicUsize>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static RECEIVED: std::sync::OnceLock<std::sync::Arc<std::sync::atomic::AtomicUsize>> =
        std::sync::OnceLock::new();
    if let Some(received) = RECEIVED.get() {
        return Ok(received);
    }
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
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
    /// To our standard output, as it arrives.
    Terminal,
    /// Into a buffer.
    Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>),
}

/// Runs `command` with its standard output filtered to `console`. On a
/// timeout, QEMU's `monitor` socket (if given) is used first to send every
/// processor an NMI, so the kernel reports what each one was running.
pub fn supervise(
    command: &mut Command,
    limit: Option<Duration>,
    symbols: Option<Symbols>,
    console: Console,
    monitor: Option<&Path>,
) -> Result<Outcome> {
    let mut command = killed_with_parent(command);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let signal = termination_signal()?;
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().with_context(|| format!("cannot start {program}"))?;
    let stdout = child.stdout.take().context("the hypervisor has no standard output")?;
    let pump = std::thread::spawn(move || match console {
        Console::Terminal => pump_console(stdout, symbols, &mut std::io::stdout().lock()),
        Console::Capture(buffer) => {
            let mut captured = Vec::new();
            let status = pump_console(stdout, symbols, &mut captured);
            if let Ok(mut buffer) = buffer.lock() {
                buffer.extend_from_slice(&captured);
            }
            status
        }
    });
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if let Some(limit) = limit
            && started.elapsed() > limit
        {
            if let Some(monitor) = monitor {
                ask_for_report(monitor);
            }
            stop(&mut child);
            let _ = pump.join();
            return Ok(Outcome::TimedOut(limit));
        }
        let received = signal.load(std::sync::atomic::Ordering::Relaxed);
        if received != 0 {
            stop(&mut child);
            let _ = pump.join();
            return Ok(Outcome::Interrupted(received as i32));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let reported = pump.join().unwrap_or(None);
    Ok(Outcome::Exited { code, reported })
}

/// Sends `nmi` to QEMU's human monitor and gives the guest a moment to
/// print its report.
fn ask_for_report(monitor: &Path) {
    use std::os::unix::net::UnixStream;
    if let Ok(mut stream) = UnixStream::connect(monitor) {
        let _ = stream.write_all(b"nmi\n");
        std::thread::sleep(Duration::from_millis(800));
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
