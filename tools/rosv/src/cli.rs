//! The command-line interface: arguments and what each command does.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::image::ImageSpec;
use crate::machine::{Machine, VirtioTransport};
use crate::network::{Network, PortForward, parse_forward, parse_network};
use crate::packages::PackageOptions;
use crate::vm::{Accelerator, Hypervisor};
use crate::{bench, image, kernel};

mod run;

use run::run;

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
    ///
    /// The application's standard input, output and error are rosv's:
    /// output can be piped and compared, standard input reaches the
    /// program (when it is a terminal, only with -i or -t), and a stream
    /// is a terminal in the guest exactly when it is one here. The
    /// kernel's own messages go to standard error (errors only, unless
    /// --verbose). Every SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to rosv
    /// goes to the application, which ends or handles it as on Linux; a
    /// third SIGINT or SIGTERM within 5 s (Ctrl-C three times) stops the
    /// VM at once.
    Run(Box<RunArgs>),
    /// Write an image directory: the kernel, a ROFS root filesystem (from a
    /// manifest, a directory or one executable) and the default command line.
    Build(BuildArgs),
    /// Write the kernel ELF, for use with any VMM.
    Kernel(KernelArgs),
    /// List the VMs started with `rosv run -d`.
    Ps(PsArgs),
    /// Print what a VM started with `rosv run -d` wrote to its standard
    /// output and error.
    Logs(LogsArgs),
    /// Stop a VM started with `rosv run -d`: its application gets SIGTERM,
    /// and the VM is stopped if it has not ended 20 s later.
    Stop(NameArgs),
    /// Forget a VM started with `rosv run -d` that has ended.
    Rm(NameArgs),
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
    /// Make and manage volumes for `rosv run --volume`.
    #[command(subcommand)]
    Volume(VolumeCommand),
}

#[derive(Debug, Subcommand)]
enum VolumeCommand {
    /// Make FILE an empty ext4 filesystem with the host's mkfs.ext4 (an
    /// existing file is never overwritten).
    Create(VolumeCreateArgs),
}

#[derive(Debug, Args)]
struct VolumeCreateArgs {
    /// The image file to make.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Its size: bytes, or a number with a K, M, G or T suffix.
    #[arg(long, value_name = "SIZE", value_parser = crate::volume::parse_size)]
    size: u64,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// An image directory written by `rosv build`, or a disk it wrote
    /// with --format (raw, qcow2, vmdk or vdi), which boots through the
    /// firmware (--firmware) on QEMU's pc machine.
    #[arg(value_name = "IMAGE", required_unless_present_any = ["exec", "oci"])]
    image: Option<PathBuf>,
    /// The firmware that boots a disk: bios (SeaBIOS) or uefi (OVMF).
    #[arg(long, value_enum, default_value_t = crate::disk::Firmware::Bios)]
    firmware: crate::disk::Firmware,
    /// A container image to run instead of an image: an OCI image layout
    /// directory or a docker/podman save archive (see `rosv build --oci`).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["image", "exec"])]
    oci: Option<PathBuf>,
    /// A Linux executable on the host to run instead of an image (with its
    /// interpreter and libraries if it is dynamically linked).
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    exec: Option<PathBuf>,
    /// Set an environment variable of the application (repeatable).
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE", value_parser = parse_environment)]
    environment: Vec<(String, String)>,
    /// Forward standard input to the application even when it is a
    /// terminal (a pipe or a file is always forwarded).
    #[arg(short, long)]
    interactive: bool,
    /// Give the application a terminal: rosv's terminal goes into raw mode
    /// and the guest edits lines, echoes and turns Ctrl-C into SIGINT and
    /// Ctrl-\ into SIGQUIT (Ctrl-Z is ignored). Needs a terminal on
    /// standard input.
    #[arg(short, long)]
    tty: bool,
    /// The application's working directory (an absolute path in the image).
    #[arg(short, long, value_name = "DIRECTORY")]
    workdir: Option<String>,
    /// Run the application as this user and group (numeric ids; group 0
    /// unless given).
    #[arg(short, long, value_name = "UID[:GID]", value_parser = parse_user)]
    user: Option<(u32, u32)>,
    /// Mount an ext4 image FILE (made by `rosv volume create` or
    /// mkfs.ext4) at the absolute guest path TARGET, read-write unless
    /// :ro (repeatable). It is attached as one more virtio disk after the
    /// --disk ones.
    #[arg(short, long, value_name = "FILE:TARGET[:ro]", value_parser = crate::volume::parse_volume)]
    volume: Vec<crate::volume::Volume>,
    /// Mount the NFS (version 3, TCP) export HOST:/export at the absolute
    /// guest path TARGET, with nfs(5) OPTIONS such as port=2049,timeo=50
    /// (repeatable). A loopback HOST is the host itself, reached through
    /// the user network, which the guest then gets.
    #[arg(long, value_name = "HOST:/export:TARGET[:OPTIONS]", value_parser = crate::nfs::parse_nfs)]
    nfs: Vec<crate::nfs::NfsMount>,
    /// Run in the background: print the VM's name and return. `rosv ps`,
    /// `rosv logs` and `rosv stop` manage it.
    #[arg(short, long)]
    detach: bool,
    /// The name of a VM run with -d (default: the program's name and a
    /// number).
    #[arg(long, value_name = "NAME", value_parser = crate::detached::parse_name, requires = "detach")]
    name: Option<String>,
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    packages: PackageArgs,
    /// With an image: the command and its arguments, replacing the image's
    /// default command. With --exec: the program's arguments. A lone `;`
    /// starts another command, run after the first as the kernel's command
    /// line does (write `\;` for a literal `;`); `&` (background
    /// commands) is refused.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct PsArgs {
    /// Also list the VMs that have ended.
    #[arg(short, long)]
    all: bool,
}

#[derive(Debug, Args)]
struct LogsArgs {
    /// The VM's name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Keep printing what comes until the VM ends.
    #[arg(short, long)]
    follow: bool,
}

#[derive(Debug, Args)]
struct NameArgs {
    /// The VM's name.
    #[arg(value_name = "NAME")]
    name: String,
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
    #[arg(short, long, default_value = "128M", value_parser = parse_memory_mib)]
    pub memory: u64,
    /// Give the guest ACPI tables (QEMU only; without them the kernel reads
    /// the MP table).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub acpi: Switch,
    /// Number of virtual CPUs.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Extra kernel options, placed before the command (e.g. "--verbose").
    #[arg(long, value_name = "OPTIONS", allow_hyphen_values = true)]
    pub kernel_args: Option<String>,
    /// Print the time of every boot phase.
    #[arg(long)]
    pub bootchart: bool,
    /// Stop the VM after this many seconds (exit status 124); at least 1.
    /// Without it the VM runs until the application ends.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<u64>,
    /// Attach FILE as one more read-only virtio block device, after the
    /// root disk: /dev/vdb, /dev/vdc, ... in order (repeatable). Mount a
    /// ROFS image on it with --kernel-args=--mount-fs=rofs,/dev/vdb,/data.
    #[arg(long = "disk", value_name = "FILE")]
    pub disks: Vec<PathBuf>,
    /// The guest's network card: none (no card, only the loopback), user
    /// (QEMU's user-mode network: the guest gets 10.0.2.15/24 by DHCP and
    /// reaches the host's loopback at 10.0.2.2), or tap:IFNAME (a tap
    /// device created and configured beforehand). Default: user with
    /// --forward, else none.
    #[arg(long, value_name = "NETWORK", value_parser = parse_network)]
    pub net: Option<Network>,
    /// Forward a host port to a guest port (QEMU's user-mode network), over
    /// TCP unless udp is given, listening on 127.0.0.1 unless HOSTADDR is
    /// given (repeatable). E.g. -p 8080:80, -p 5353:53/udp.
    #[arg(
        short = 'p',
        long = "forward",
        value_name = "[tcp:|udp:][HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]",
        value_parser = parse_forward
    )]
    pub forwards: Vec<PortForward>,
    /// Give the guest a vsock device whose host side is the Unix socket
    /// PATH, as Firecracker's: connect to PATH and write `CONNECT <port>\n`
    /// to reach a guest port; the guest's connections to the host's port P
    /// go to PATH_P (built-in monitor and Firecracker).
    #[arg(long, value_name = "PATH")]
    pub vsock: Option<PathBuf>,
    /// Boot this kernel ELF instead of the built-in (or the image's) one.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Print the hypervisor command before running it, and the kernel's
    /// boot time.
    #[arg(long)]
    pub verbose: bool,
}

impl MachineArgs {
    /// The network card: as --net says, else QEMU's user-mode network when
    /// ports are forwarded, else none.
    pub fn network(&self) -> Network {
        match &self.net {
            Some(network) => network.clone(),
            None if !self.forwards.is_empty() => Network::User,
            None => Network::None,
        }
    }
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// A manifest in OSv's syntax (`/guest/path: host/path` lines), or a
    /// host directory whose tree becomes the image's root.
    #[arg(value_name = "MANIFEST_OR_DIRECTORY", required_unless_present_any = ["exec", "oci"])]
    source: Option<PathBuf>,
    /// Instead of a manifest: a container image, as an OCI image layout
    /// directory or a `docker save`/`podman save` archive (a directory or
    /// tar, layers plain or gzip-compressed). Its layers make the root;
    /// its Entrypoint and Cmd the command (words after -- replace Cmd),
    /// its Env, WorkingDir and User how it runs.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["source", "exec"])]
    oci: Option<PathBuf>,
    /// Instead of a manifest: a Linux executable on the host, placed at
    /// /<its name> (with its interpreter and libraries if it is dynamically
    /// linked).
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    exec: Option<PathBuf>,
    /// The image directory to write (or, with --format, the disk file).
    #[arg(short, long, value_name = "PATH", required_unless_present = "dry_run")]
    output: Option<PathBuf>,
    /// Write a disk that boots by itself with BIOS and UEFI firmware
    /// instead of an image directory: raw, qcow2 (QEMU, OpenStack), vmdk
    /// (VMware), vdi (VirtualBox) or gce (disk.raw in a .tar.gz, as Google
    /// Compute Engine imports). Boot one with `rosv run DISK`.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<crate::disk::DiskFormat>,
    /// Set an environment variable of the application (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_environment)]
    environment: Vec<(String, String)>,
    #[command(flatten)]
    packages: PackageArgs,
    /// With a manifest or directory: the default command (program and
    /// arguments). With --exec: the program's arguments.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// What an image takes from the host's Debian packages.
#[derive(Debug, Args, Clone, Default)]
struct PackageArgs {
    /// Add the files of this installed Debian package, and of what it
    /// needs, to the image (repeatable). With --exec, the packages that
    /// hold the program and its libraries are added without asking.
    #[arg(long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Leave out of what packages bring the files whose image path matches
    /// GLOB: `*` and `?` within a name, `**` across names; a directory
    /// leaves out its tree (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// With --exec: take only the program and its libraries, not the
    /// files of the Debian packages that hold them.
    #[arg(long)]
    no_packages: bool,
    /// Print what would be taken from packages and its size, and stop.
    #[arg(long)]
    dry_run: bool,
}

impl PackageArgs {
    fn options(&self) -> PackageOptions {
        PackageOptions {
            is_enabled: !self.no_packages,
            requested: self.packages.clone(),
            excludes: self.excludes.clone(),
        }
    }
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
    /// Time mmap, a store and munmap of a page while 1,000 to 100,000 other
    /// mappings exist, with a measuring program (such as
    /// tests/guest/mmap-cost.c), in rosv and on the host.
    Mmap(bench::MmapBenchArgs),
    /// Start and reap processes (fork, vfork and execve, posix_spawn) with
    /// a measuring program (such as tests/guest/spawn-cost.c), in rosv, in
    /// a Linux guest and on the host: processes per second, side by side.
    Spawn(bench::SpawnBenchArgs),
    /// Read a file from the root disk with a measuring program (such as
    /// tests/guest/read-throughput.c), next to the host reading it from its
    /// page cache.
    Disk(bench::DiskBenchArgs),
    /// Move bytes between two threads through TCP over the loopback, local
    /// sockets and pipes with a measuring program (such as
    /// tests/guest/socket-throughput.c), in rosv and on the host.
    Network(bench::NetworkBenchArgs),
    /// Serve a 1 KiB file with Debian's nginx and answer redis-benchmark
    /// with Redis, in rosv and in a Linux guest on the same machine, loaded
    /// from the host through forwarded ports.
    Servers(bench::servers::ServersBenchArgs),
    /// Every figure rosv is judged by against a Linux guest on the same
    /// QEMU machine (boot, system call, futex and pipe round trips, file
    /// reads, loopback TCP, nginx and Redis), in one table with ratios.
    Linux(bench::summary::LinuxBenchArgs),
    /// Time cold starts and warm requests through the function host (`rosv
    /// serve`) with one function whose application serves HTTP.
    Serve(crate::serve::bench::ServeBenchArgs),
    /// Run a system-call fuzzer (such as tests/guest/fuzz.c) on many seeds
    /// and count the runs that finished, panicked, hung or reset.
    Fuzz(bench::fuzz::FuzzBenchArgs),
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

pub fn parse_environment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got \"{text}\"")),
    }
}

/// The least guest memory the kernel boots in, in MiB (it is loaded at
/// 1 MiB and takes some 2 MiB; `rosv bench memory` measures what a program needs).
pub const MINIMUM_MEMORY_MIB: u64 = 4;

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
    if mib < MINIMUM_MEMORY_MIB {
        return Err(format!(
            "{mib} MiB is too little: the kernel needs at least {MINIMUM_MEMORY_MIB} MiB, and a program more \
             (a dynamically linked one some 10 MiB)"
        ));
    }
    if mib > 1024 * 1024 {
        return Err(format!("{mib} MiB is more than the 1 TiB rosv gives a guest"));
    }
    Ok(mib)
}

fn parse_timeout(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("a timeout of 0 s would stop the VM before it starts; give at least 1, or leave --timeout out to \
                      let the VM run until the application ends"
            .into()),
        Ok(seconds) => Ok(seconds),
        Err(_) => Err(format!("\"{text}\" is not a number of seconds")),
    }
}

fn parse_user(text: &str) -> Result<(u32, u32), String> {
    let invalid = || format!("\"{text}\" is not UID[:GID] with numeric ids, e.g. 1000 or 1000:1000");
    let parse = |id: &str| id.parse::<u32>().ok().filter(|&id| id != u32::MAX).ok_or_else(invalid);
    match text.split_once(':') {
        Some((user, group)) => Ok((parse(user)?, parse(group)?)),
        None => Ok((parse(text)?, 0)),
    }
}

/// Runs the parsed command; returns the process exit status.
pub fn execute(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(arguments) => run(*arguments),
        Command::Ps(arguments) => {
            crate::detached::list(arguments.all, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Logs(arguments) => {
            crate::detached::logs(&arguments.name, arguments.follow, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Stop(arguments) => match crate::detached::stop(&arguments.name)? {
            crate::detached::State::Running => bail!("{} is still running", arguments.name),
            crate::detached::State::Exited(_) => {
                println!("{}", arguments.name);
                Ok(0)
            }
        },
        Command::Rm(arguments) => {
            crate::detached::remove(&arguments.name)?;
            println!("{}", arguments.name);
            Ok(0)
        }
        Command::Build(arguments) => {
            let packages = arguments.packages.options();
            let (spec, report) = match (&arguments.source, &arguments.exec, &arguments.oci) {
                (None, None, Some(container)) => {
                    let mut spec =
                        ImageSpec::from_container(container, &arguments.command, &arguments.environment)?;
                    let report = if packages.requested.is_empty() {
                        None
                    } else {
                        Some(spec.add_packages(&packages)?)
                    };
                    (spec, report)
                }
                (Some(source), None, None) => {
                    let mut spec = ImageSpec::from_tree(source, &arguments.command, &arguments.environment)?;
                    let report = if packages.requested.is_empty() {
                        None
                    } else {
                        Some(spec.add_packages(&packages)?)
                    };
                    (spec, report)
                }
                (None, Some(executable), None) => {
                    let (spec, report) = ImageSpec::from_program(
                        executable,
                        &arguments.command,
                        &arguments.environment,
                        &packages,
                    )?;
                    (spec, Some(report))
                }
                _ => bail!("give a manifest, a directory, --exec FILE or --oci PATH"),
            };
            if let Some(report) = report {
                print!("{report}");
            }
            let Some(output) = arguments.output.as_ref().filter(|_| !arguments.packages.dry_run) else {
                return Ok(0);
            };
            if let Some(format) = arguments.format {
                let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
                let directory = scratch.path().join("image");
                image::write(&spec, &directory)?;
                crate::disk::write(&directory, format, output)?;
                println!("wrote disk {}", output.display());
                return Ok(0);
            }
            image::write(&spec, output)?;
            println!("wrote image {}", output.display());
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
        Command::Bench(BenchCommand::Mmap(arguments)) => bench::mmap(&arguments),
        Command::Bench(BenchCommand::Spawn(arguments)) => bench::spawn(&arguments),
        Command::Bench(BenchCommand::Fuzz(arguments)) => bench::fuzz::fuzz(&arguments),
        Command::Bench(BenchCommand::Servers(arguments)) => bench::servers::servers(&arguments),
        Command::Bench(BenchCommand::Linux(arguments)) => bench::summary::linux(&arguments),
        Command::Serve(arguments) => crate::serve::serve(&arguments),
        Command::Volume(VolumeCommand::Create(arguments)) => {
            crate::volume::create(&arguments.file, arguments.size)?;
            println!("wrote volume {}", arguments.file.display());
            Ok(0)
        }
        Command::Bench(BenchCommand::Serve(arguments)) => crate::serve::bench::serve(&arguments),
        Command::Bench(BenchCommand::Soak(arguments)) => crate::endurance::soak(&arguments),
        Command::Bench(BenchCommand::Boots(arguments)) => crate::endurance::boots(&arguments),
    }
}

#[cfg(test)]
mod tests {
    use super::run::without_detach;
    use super::*;

    fn parse(words: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rosv").chain(words.iter().copied()))
    }

    fn run_arguments(words: &[&str]) -> RunArgs {
        match parse(words).unwrap().command {
            Command::Run(arguments) => *arguments,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn run_takes_the_short_options_users_expect() {
        let arguments = run_arguments(&[
            "run",
            "-it",
            "-m",
            "256M",
            "-c",
            "2",
            "-e",
            "A=1",
            "-p",
            "8080:80",
            "-w",
            "/srv",
            "-u",
            "1000:50",
            "--exec",
            "/bin/true",
        ]);
        assert!(arguments.interactive && arguments.tty);
        assert_eq!((arguments.machine.memory, arguments.machine.cpus), (256, 2));
        assert_eq!(arguments.environment, [("A".to_string(), "1".to_string())]);
        assert_eq!(arguments.machine.network(), Network::User, "forwarding implies the user-mode network");
        assert_eq!(arguments.workdir.as_deref(), Some("/srv"));
        assert_eq!(arguments.user, Some((1000, 50)));
        let explicit = run_arguments(&["run", "--net", "none", "--exec", "/bin/true"]);
        assert_eq!(explicit.machine.network(), Network::None);
    }

    #[test]
    fn values_are_checked_with_the_reason() {
        let message = |words: &[&str]| parse(words).unwrap_err().to_string();
        let memory = message(&["run", "-m", "3", "--exec", "/bin/true"]);
        assert!(memory.contains(&format!("at least {MINIMUM_MEMORY_MIB} MiB")), "{memory}");
        let timeout = message(&["run", "--timeout", "0", "--exec", "/bin/true"]);
        assert!(timeout.contains("give at least 1"), "{timeout}");
        let user = message(&["run", "-u", "root", "--exec", "/bin/true"]);
        assert!(user.contains("numeric ids"), "{user}");
        let name = message(&["run", "-d", "--name", "a b", "--exec", "/bin/true"]);
        assert!(name.contains("is not a name"), "{name}");
        assert!(parse(&["run", "--name", "web", "--exec", "/bin/true"]).is_err(), "--name needs -d");
    }

    #[test]
    fn package_and_container_options_go_together_as_documented() {
        let Command::Build(build) =
            parse(&["build", "--dry-run", "--exec", "/bin/true", "--package", "a", "--exclude", "/x/**"])
                .unwrap()
                .command
        else {
            panic!("not build");
        };
        assert!(build.output.is_none(), "a dry run writes nothing and needs no -o");
        let options = build.packages.options();
        assert!(options.is_enabled && options.requested == ["a"] && options.excludes == ["/x/**"]);
        assert!(parse(&["build", "--exec", "/bin/true"]).is_err(), "-o is needed without --dry-run");
        assert!(
            !run_arguments(&["run", "--no-packages", "--exec", "/bin/true"]).packages.options().is_enabled
        );
        assert!(run_arguments(&["run", "--oci", "layout"]).oci.is_some());
        assert!(parse(&["run", "--oci", "layout", "--exec", "/bin/true"]).is_err());
        assert!(parse(&["build", "--oci", "layout", "root", "-o", "image"]).is_err());
    }

    #[test]
    fn the_background_rosv_gets_every_argument_but_detach() {
        let words =
            ["run", "-d", "--name", "web", "-di", "--name=x", "--exec", "/x", "--", "-d", "--name", "y"];
        let kept = without_detach(words.iter().map(std::ffi::OsString::from));
        assert_eq!(kept, ["run", "-i", "--exec", "/x", "--", "-d", "--name", "y"]);
        let kept = without_detach(kept.into_iter());
        assert!(parse(&kept.iter().map(|word| word.to_str().unwrap()).collect::<Vec<_>>()).is_ok());
    }
}
