//! The command-line interface: arguments and what each command does.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::image::{Image, ImageSpec};
use crate::machine::{Machine, VirtioTransport};
use crate::network::{Network, PortForward, parse_forward, parse_network};
use crate::vm::{Accelerator, Hypervisor, VmConfig};
use crate::{bench, image, kernel, vm};

/// Build rosv unikernel images and run them as micro-VMs.
#[derive(Debug, Parser)]
#[command(name = "rosv", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot an image, or a host executable packed into a temporary
    /// image; exit with the application's exit status.
    Run(RunArgs),
    /// Write an image directory: the kernel, a ROFS root filesystem (from a
    /// manifest, a directory or one executable) and the default command line.
    Build(BuildArgs),
    /// Write the kernel ELF, for use with any VMM.
    Kernel(KernelArgs),
    /// Serve functions over HTTP, booting each function's VM on demand.
    ///
    /// A request for /NAME/... goes to the HTTP server of function NAME's
    /// application, in a VM booted for it or already running; idle VMs are
    /// stopped. GET /_rosv/stats reports boots, cold starts and requests.
    #[command(after_long_help = crate::serve::CONFIGURATION_EXAMPLE)]
    Serve(crate::serve::ServeArgs),
    /// Measure the system.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// An image directory written by `rosv build`.
    #[arg(value_name = "IMAGE", required_unless_present = "exec")]
    image: Option<PathBuf>,
    /// A Linux executable on the host to run instead of an image (with its
    /// interpreter and libraries if it is dynamically linked).
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    exec: Option<PathBuf>,
    /// Set an environment variable of the application (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_environment)]
    environment: Vec<(String, String)>,
    #[command(flatten)]
    machine: MachineArgs,
    /// With an image: the command and its arguments, replacing the image's
    /// default command. With --exec: the program's arguments.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// How to run the virtual machine.
#[derive(Debug, Args, Clone)]
pub struct MachineArgs {
    /// The hypervisor to run on.
    #[arg(long, value_enum, default_value_t = Hypervisor::Qemu)]
    pub hypervisor: Hypervisor,
    /// The machine to emulate: microvm (no PCI), or pc with PCI, booted
    /// through qboot (QEMU only).
    #[arg(long, value_enum, default_value_t = Machine::Microvm)]
    pub machine: Machine,
    /// How the root disk is attached: mmio (microvm's default), or
    /// virtio-pci as legacy, modern (pc's default) or transitional.
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub virtio: Option<VirtioTransport>,
    /// Hardware acceleration: KVM where it is real, else QEMU's TCG.
    #[arg(long, value_enum, default_value_t = Accelerator::Auto)]
    pub accel: Accelerator,
    /// Guest memory, in MiB or with a K, M or G suffix.
    #[arg(long, default_value = "128M", value_parser = parse_memory_mib)]
    pub memory: u64,
    /// Give the guest ACPI tables (QEMU only; without them the kernel reads
    /// the MP table).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub acpi: Switch,
    /// Number of virtual CPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Extra kernel options, placed before the command (e.g. "--verbose").
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    pub kernel_args: Option<String>,
    /// Print the time of every boot phase.
    #[arg(long)]
    pub bootchart: bool,
    /// Stop the VM after this many seconds (exit status 124).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Attach FILE as one more read-only virtio block device, after the
    /// root disk: /dev/vdb, /dev/vdc, ... in order (repeatable). Mount a
    /// ROFS image on it with --kernel-args=--mount-fs=rofs,/dev/vdb,/data.
    #[arg(long = "disk", value_name = "FILE")]
    pub disks: Vec<PathBuf>,
    /// The guest's network card: none (no card, only the loopback), user
    /// (QEMU's user-mode network: the guest gets 10.0.2.15/24 by DHCP and
    /// reaches the host's loopback at 10.0.2.2), or tap:IFNAME (a tap
    /// device created and configured beforehand).
    #[arg(long, value_name = "NETWORK", default_value = "none", value_parser = parse_network)]
    pub net: Network,
    /// With --net user: forward a host port to a guest port, over TCP unless
    /// udp: is given, listening on 127.0.0.1 unless HOSTADDR is given
    /// (repeatable). E.g. --forward 8080:80.
    #[arg(
        long = "forward",
        value_name = "[tcp:|udp:][HOSTADDR:]HOSTPORT:GUESTPORT",
        value_parser = parse_forward
    )]
    pub forwards: Vec<PortForward>,
    /// Boot this kernel ELF instead of the built-in (or the image's) one.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Print the hypervisor command before running it.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// A manifest in OSv's syntax (`/guest/path: host/path` lines), or a
    /// host directory whose tree becomes the image's root.
    #[arg(value_name = "MANIFEST_OR_DIRECTORY", required_unless_present = "exec")]
    source: Option<PathBuf>,
    /// Instead of a manifest: a Linux executable on the host, placed at
    /// /<its name> (with its interpreter and libraries if it is dynamically
    /// linked).
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    exec: Option<PathBuf>,
    /// The image directory to write.
    #[arg(short, long, value_name = "DIRECTORY")]
    output: PathBuf,
    /// Set an environment variable of the application (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_environment)]
    environment: Vec<(String, String)>,
    /// With a manifest or directory: the default command (program and
    /// arguments). With --exec: the program's arguments.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct KernelArgs {
    /// Where to write the kernel ELF.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Leave out the PVH note, so that Firecracker boots the kernel through
    /// the Linux 64-bit boot protocol.
    #[arg(long)]
    no_pvh_note: bool,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Boot a hello program many times and report boot times, next to a
    /// trivial reference guest booted the same way.
    Boot(bench::BootBenchArgs),
    /// Run a program that measures thread switches and clock reads (such as
    /// tests/guest/context-switch.c) in rosv and on the host, side by side.
    Switch(bench::SwitchBenchArgs),
    /// The least guest memory a program boots in (by default a hello
    /// program), found by bisection up to --memory.
    Memory(bench::MemoryBenchArgs),
    /// Read a file from the root disk with a measuring program (such as
    /// tests/guest/read-throughput.c), next to the host reading it from its
    /// page cache.
    Disk(bench::DiskBenchArgs),
    /// Move bytes between two threads through TCP over the loopback, local
    /// sockets and pipes with a measuring program (such as
    /// tests/guest/socket-throughput.c), in rosv and on the host.
    Network(bench::NetworkBenchArgs),
    /// Time cold starts and warm requests through the function host (`rosv
    /// serve`) with one function whose application serves HTTP.
    Serve(crate::serve::bench::ServeBenchArgs),
    /// Soak timers and cancellation with a soak program (such as
    /// tests/guest/soak.c) and count the waits and cancellations that ended
    /// early, late or never.
    Soak(crate::endurance::SoakArgs),
    /// Boot a program many times, one boot after another, and count the
    /// boots that failed, with the end of each one's console.
    Boots(crate::endurance::BootsArgs),
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

fn parse_environment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got \"{text}\"")),
    }
}

/// Parses a memory size: a number of MiB, or a number with a K, M or G suffix.
pub fn parse_memory_mib(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, scale_kib) = match text.char_indices().last() {
        Some((index, 'K' | 'k')) => (&text[..index], 1),
        Some((index, 'M' | 'm')) => (&text[..index], 1024),
        Some((index, 'G' | 'g')) => (&text[..index], 1024 * 1024),
        _ => (text, 1024),
    };
    let value: u64 =
        digits.parse().map_err(|_| format!("\"{text}\" is not a memory size like 128M or 1G"))?;
    let mib = value.saturating_mul(scale_kib) / 1024;
    if !(3..=1024 * 1024).contains(&mib) {
        return Err(format!("{mib} MiB is outside 3 MiB to 1 TiB (the kernel loads at 2 MiB)"));
    }
    Ok(mib)
}

/// Runs the parsed command; returns the process exit status.
pub fn execute(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(arguments) => run(arguments),
        Command::Build(arguments) => {
            let spec = match (&arguments.source, &arguments.exec) {
                (Some(source), None) => {
                    ImageSpec::from_tree(source, &arguments.command, &arguments.environment)?
                }
                (None, Some(executable)) => {
                    ImageSpec::from_executable(executable, &arguments.command, &arguments.environment)?
                }
                _ => bail!("give a manifest, a directory or --exec FILE"),
            };
            image::write(&spec, &arguments.output)?;
            println!("wrote image {}", arguments.output.display());
            Ok(0)
        }
        Command::Kernel(arguments) => {
            let bytes =
                if arguments.no_pvh_note { kernel::without_pvh_note()? } else { kernel::ELF.to_vec() };
            std::fs::write(&arguments.output, bytes)
                .with_context(|| format!("cannot write {}", arguments.output.display()))?;
            Ok(0)
        }
        Command::Bench(BenchCommand::Boot(arguments)) => bench::boot(&arguments),
        Command::Bench(BenchCommand::Switch(arguments)) => bench::switch(&arguments),
        Command::Bench(BenchCommand::Disk(arguments)) => bench::disk(&arguments),
        Command::Bench(BenchCommand::Network(arguments)) => bench::network(&arguments),
        Command::Bench(BenchCommand::Memory(arguments)) => bench::memory(&arguments),
        Command::Serve(arguments) => crate::serve::serve(&arguments),
        Command::Bench(BenchCommand::Serve(arguments)) => crate::serve::bench::serve(&arguments),
        Command::Bench(BenchCommand::Soak(arguments)) => crate::endurance::soak(&arguments),
        Command::Bench(BenchCommand::Boots(arguments)) => crate::endurance::boots(&arguments),
    }
}

fn run(arguments: RunArgs) -> Result<u8> {
    let temporary = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image = match (&arguments.image, &arguments.exec) {
        (Some(path), None) => Image::open(path)?,
        (None, Some(executable)) => {
            let spec = ImageSpec::from_executable(executable, &arguments.command, &[])?;
            let directory = temporary.path().join("image");
            image::write(&spec, &directory)?;
            Image::open(&directory)?
        }
        _ => bail!("give an image directory or --exec FILE"),
    };
    let command = if arguments.exec.is_none() && !arguments.command.is_empty() {
        Some(arguments.command.as_slice())
    } else {
        None
    };
    let config = VmConfig::new(&image, &arguments.machine, &arguments.environment, command)?;
    vm::run(&config, &arguments.machine, temporary.path())
}
