//! `rosv bench boot`: boot times, next to a reference guest.
//!
//! Each run is timed from starting the hypervisor to its exit. The kernel's
//! own time from its first instruction to the application's `main` is read
//! from the `Booted in X ms` line it prints. The reference guest is a
//! kernel that powers off at its first instructions, booted the same way:
//! the difference between the two is what rosv costs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cli::MachineArgs;
use crate::image::{Image, ImageSpec};
use crate::kernel_symbols::Symbols;
use crate::vm::{self, Console, Hypervisor, Outcome, VmConfig};
use crate::{builtin, firecracker, guest_elf, image, qemu};

pub mod disk;
pub mod fuzz;
pub mod linux;
pub mod servers;
pub mod summary;

/// Arguments of `rosv bench boot`.
#[derive(Debug, Args)]
pub struct BootBenchArgs {
    /// Boots of each guest.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    runs: u32,
    /// Boot this static executable instead of the built-in hello program.
    #[arg(long, value_name = "FILE")]
    exec: Option<std::path::PathBuf>,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Minimum, median and maximum of some durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The shortest.
    pub min: Duration,
    /// The median (the upper one for an even count).
    pub median: Duration,
    /// The longest.
    pub max: Duration,
}

/// Summarizes `samples`; `None` if there are none.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    Some(Summary { min: *sorted.first()?, median: sorted[sorted.len() / 2], max: *sorted.last()? })
}

/// Reads `Booted in X ms` from the console output.
pub fn kernel_boot_time(output: &str) -> Option<Duration> {
    let line = output.lines().find_map(|line| line.strip_prefix("Booted in "))?;
    let milliseconds: f64 = line.strip_suffix(" ms")?.parse().ok()?;
    Some(Duration::from_secs_f64(milliseconds / 1000.0))
}

/// Runs the benchmark and prints its figures.
pub fn boot(arguments: &BootBenchArgs) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image = program_image(arguments.exec.as_deref(), scratch.path())?;
    let hello_config = VmConfig::new(&image, &arguments.machine, &[], None)?.reporting_boot();
    let reference_path = scratch.path().join("reference.elf");
    std::fs::write(&reference_path, guest_elf::reference_kernel())?;
    let reference_config = VmConfig { kernel: reference_path, ..hello_config.clone() };

    let mut hello_times = Vec::new();
    let mut kernel_times = Vec::new();
    let mut reference_times = Vec::new();
    for _ in 0..arguments.runs {
        let (elapsed, output) = timed_boot(&hello_config, &arguments.machine, scratch.path(), true)?;
        hello_times.push(elapsed);
        kernel_times.extend(kernel_boot_time(&output));
        let (elapsed, _) = timed_boot(&reference_config, &arguments.machine, scratch.path(), false)?;
        reference_times.push(elapsed);
    }
    let hypervisor = hypervisor_name(&arguments.machine);
    println!("boot benchmark: {} runs each on {hypervisor}, {} MiB", arguments.runs, hello_config.memory_mib);
    println!("{:<44} {:>10} {:>10} {:>10}", "", "min ms", "median ms", "max ms");
    print_row("hello on rosv: hypervisor start to exit", summarize(&hello_times));
    print_row("reference guest: hypervisor start to exit", summarize(&reference_times));
    print_row("rosv kernel: first instruction to main", summarize(&kernel_times));
    if let (Some(hello), Some(reference)) = (summarize(&hello_times), summarize(&reference_times)) {
        let overhead = hello.median.as_secs_f64() - reference.median.as_secs_f64();
        println!("rosv over the reference guest (median): {:+.3} ms", overhead * 1000.0);
    }
    if arguments.machine.hypervisor == Hypervisor::Qemu {
        linux_boot(arguments, &hello_config, summarize(&hello_times), scratch.path())?;
    }
    // One more boot with the bootchart, to show where the kernel's time goes.
    let mut charted = arguments.machine.clone();
    charted.bootchart = true;
    let chart_config = VmConfig::new(&image, &charted, &[], None)?;
    let (_, output) = timed_boot(&chart_config, &charted, scratch.path(), true)?;
    println!("the kernel's boot phases, one more boot (ms since its first instruction):");
    for line in bootchart_lines(&output) {
        println!("  {line}");
    }
    Ok(0)
}

/// Boots the same program in the Linux reference guest and prints the time
/// from starting QEMU to its first output, next to rosv's time to exit.
fn linux_boot(
    arguments: &BootBenchArgs,
    config: &VmConfig,
    rosv: Option<Summary>,
    scratch: &Path,
) -> Result<()> {
    let program = match &arguments.exec {
        Some(path) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        None => guest_elf::hello(b"Hello from rosv!\n"),
    };
    let linux = linux_first_output_times(program, &arguments.machine, config, arguments.runs, scratch)?;
    print_row("same program on Linux: QEMU start to output", linux);
    if let (Some(rosv), Some(linux)) = (rosv, linux) {
        println!(
            "rosv's boot over Linux's (median): {:.3} (Linux takes {:.1}× as long)",
            rosv.median.as_secs_f64() / linux.median.as_secs_f64(),
            linux.median.as_secs_f64() / rosv.median.as_secs_f64()
        );
    }
    Ok(())
}

/// Boots `program` as the Linux reference guest's `/init` `runs` times on
/// the machine of `config`; returns the times from starting QEMU to its
/// first output.
fn linux_first_output_times(
    program: Vec<u8>,
    machine: &MachineArgs,
    config: &VmConfig,
    runs: u32,
    scratch: &Path,
) -> Result<Option<Summary>> {
    let initramfs = scratch.join("initramfs.cpio");
    let init = linux::Entry::file("init", program, 0o755);
    std::fs::write(&initramfs, linux::initramfs(&[init])).context("cannot write the initramfs")?;
    let kernel = linux::kernel()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let run = linux::boot(&kernel, &initramfs, machine, config.memory_mib, config.cpus, &[])?;
        let Some(time) = run.to_first_output else {
            bail!("the program printed nothing in the Linux reference guest; output:\n{}", run.output)
        };
        times.push(time);
    }
    Ok(summarize(&times))
}

/// The phase lines of a bootchart (`   1.234 (+0.567) phase`).
fn bootchart_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .map(str::trim)
        .filter(|line| line.contains(" (+") && line.ends_with(|c: char| c.is_alphabetic()))
        .collect()
}

/// An image in `scratch` of `program`, or of a built-in hello program.
fn program_image(program: Option<&Path>, scratch: &Path) -> Result<Image> {
    let program = match program {
        Some(path) => path.to_path_buf(),
        None => {
            let path = scratch.join("hello");
            std::fs::write(&path, guest_elf::hello(b"Hello from rosv!\n"))?;
            path
        }
    };
    let image_directory = scratch.join("image");
    image::write(&ImageSpec::from_executable(&program, &[], &[])?, &image_directory)?;
    Image::open(&image_directory)
}

fn print_row(label: &str, summary: Option<Summary>) {
    let milliseconds = |duration: Duration| duration.as_secs_f64() * 1000.0;
    match summary {
        Some(summary) => println!(
            "{label:<44} {:>10.3} {:>10.3} {:>10.3}",
            milliseconds(summary.min),
            milliseconds(summary.median),
            milliseconds(summary.max)
        ),
        None => println!("{label:<44} {:>10}", "n/a"),
    }
}

/// Boots `config` once; returns the wall time and the console output.
fn timed_boot(
    config: &VmConfig,
    machine: &MachineArgs,
    scratch: &Path,
    expect_status: bool,
) -> Result<(Duration, String)> {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let limit = Duration::from_secs(machine.timeout.unwrap_or(60));
    let started = Instant::now();
    let outcome = boot_captured(config, machine, scratch, limit, &captured)?;
    let elapsed = started.elapsed();
    let output =
        String::from_utf8_lossy(&captured.lock().map(|bytes| bytes.clone()).unwrap_or_default()).into_owned();
    match outcome {
        Outcome::TimedOut(_) => bail!("a boot did not finish in time; output so far:\n{output}"),
        Outcome::Interrupted(signal) => bail!("stopped on signal {signal}"),
        Outcome::Exited { reported, code } if expect_status && reported != Some(0) => {
            bail!("the hello guest failed (status {reported:?}, hypervisor exit {code:?}); output:\n{output}")
        }
        Outcome::Exited { .. } => Ok((elapsed, output)),
    }
}

/// Boots `config` on the hypervisor `machine` names, its console captured
/// into `captured`, stopped after `limit`. The time includes starting the
/// hypervisor (for the built-in monitor: creating the VM in this process).
pub(crate) fn boot_captured(
    config: &VmConfig,
    machine: &MachineArgs,
    scratch: &Path,
    limit: Duration,
    captured: &Arc<Mutex<Vec<u8>>>,
) -> Result<Outcome> {
    let console = Console::Capture(captured.clone());
    // A run that times out prints the kernel's thread dump first.
    let monitor = scratch.join("monitor.sock");
    let mut command: Command = match machine.hypervisor {
        Hypervisor::Qemu => qemu::command(config, machine.accel, Some(&monitor))?,
        Hypervisor::Firecracker => firecracker::command(config, scratch)?,
        Hypervisor::Builtin => return builtin::boot(config, Some(limit), None, console),
    };
    // Backtraces of a kernel that failed get their function names.
    let symbols = std::fs::read(&config.kernel).ok().and_then(|kernel| Symbols::read(&kernel));
    let monitor = (machine.hypervisor == Hypervisor::Qemu).then_some(monitor.as_path());
    vm::supervise(&mut command, Some(limit), symbols, console, monitor, None)
}

/// The name of the hypervisor `machine` describes, for reports.
pub(crate) fn hypervisor_name(machine: &MachineArgs) -> &'static str {
    match machine.hypervisor {
        Hypervisor::Qemu if machine.machine == crate::machine::Machine::Pc => "QEMU pc",
        Hypervisor::Qemu => "QEMU microvm",
        Hypervisor::Firecracker => "Firecracker",
        Hypervisor::Builtin => "the built-in KVM monitor",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_durations() {
        let samples: Vec<Duration> = [5, 1, 3, 2, 4].into_iter().map(Duration::from_millis).collect();
        let summary = summarize(&samples).unwrap();
        assert_eq!(summary.min, Duration::from_millis(1));
        assert_eq!(summary.median, Duration::from_millis(3));
        assert_eq!(summary.max, Duration::from_millis(5));
        assert_eq!(summarize(&[]), None);
    }

    #[test]
    fn reads_figures() {
        let output = "Booted in 1 ms\ncontext switch: 812.5 ns\nclock_gettime: 16.0 ns\n";
        assert_eq!(figures(output), vec![("context switch".into(), 812.5), ("clock_gettime".into(), 16.0)]);
    }

    #[test]
    fn picks_the_bootchart_phases() {
        let output = "bootchart (ms since the first kernel instruction):\n     0.000 (+0.000) kernel entered\n    \
                      2.729 (+0.103) main\nHello\n";
        assert_eq!(bootchart_lines(output), ["0.000 (+0.000) kernel entered", "2.729 (+0.103) main"]);
    }

    #[test]
    fn reads_the_kernel_boot_line() {
        let output = "Booted in 1.234 ms\nhello\n";
        assert_eq!(kernel_boot_time(output), Some(Duration::from_micros(1234)));
        assert_eq!(kernel_boot_time("hello\n"), None);
    }
}

/// Arguments of `rosv bench switch`.
#[derive(Debug, Args)]
pub struct SwitchBenchArgs {
    /// The static program that measures: it prints `context switch: N ns`
    /// and `clock_gettime: N ns` lines.
    #[arg(long, value_name = "FILE")]
    exec: std::path::PathBuf,
    /// Arguments passed to it, in both runs.
    #[arg(last = true, value_name = "ARGUMENTS")]
    arguments: Vec<String>,
    #[command(flatten)]
    machine: MachineArgs,
}

/// The figures a measuring program printed: `name: value ns` lines.
pub fn figures(output: &str) -> Vec<(String, f64)> {
    output
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            let value: f64 = value.strip_suffix(" ns")?.trim().parse().ok()?;
            Some((name.trim().to_string(), value))
        })
        .collect()
}

/// Runs the measuring program in rosv and on the host and prints both.
pub fn switch(arguments: &SwitchBenchArgs) -> Result<u8> {
    let run = program_measurement(&arguments.exec, &arguments.arguments, &arguments.machine)?;
    run.print(&arguments.exec, "ns", |value| value);
    Ok(0)
}

/// Arguments of `rosv bench disk`.
#[derive(Debug, Args)]
pub struct DiskBenchArgs {
    /// The static program that measures (such as
    /// tests/guest/read-throughput.c): it reads the file named by its
    /// argument and prints `name: N ns` lines, N per MiB read.
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// Also measure writes, fsyncs and metadata changes with this static
    /// program (such as tests/guest/disk-ops.c, given a directory and the
    /// MiB to write) on an ext4 volume in rosv and in a directory on the
    /// host.
    #[arg(long, value_name = "FILE")]
    volume_exec: Option<PathBuf>,
    /// With --volume-exec: also run it on this NFS export of this host,
    /// mounted in rosv, and on the host in the exported directory itself.
    #[arg(long, value_name = "HOST:/export:TARGET[:OPTIONS]", value_parser = crate::nfs::parse_nfs, requires = "volume_exec")]
    nfs: Option<crate::nfs::NfsMount>,
    /// Size of the file it reads, in MiB.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    size_mib: u32,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Reads a file from the root disk in rosv and from the host's page cache,
/// and prints the throughput of both.
pub fn disk(arguments: &DiskBenchArgs) -> Result<u8> {
    let run = read_measurement(&arguments.exec, arguments.size_mib, &arguments.machine)?;
    println!(
        "reading a {} MiB file: the root disk in rosv, the initramfs in the Linux guest, the page cache on the host",
        arguments.size_mib
    );
    run.print(&arguments.exec, "MiB/s", |ns_per_mib| 1e9 / ns_per_mib);
    if let Some(program) = &arguments.volume_exec {
        println!();
        disk::volume_operations(program, arguments.size_mib, &arguments.machine)?;
        println!();
        disk::shared_directory_operations(program, arguments.size_mib, &arguments.machine)?;
        if let Some(export) = &arguments.nfs {
            println!();
            disk::nfs_operations(program, arguments.size_mib, export, &arguments.machine)?;
        }
    }
    Ok(0)
}

/// Runs the reading program `exec` on a file of `size_mib` MiB: from the
/// root disk in rosv, the initramfs in the Linux guest, the page cache on
/// the host.
fn read_measurement(exec: &Path, size_mib: u32, machine: &MachineArgs) -> Result<Measurement> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(&tree).context("cannot create the image tree")?;
    std::fs::copy(exec, tree.join("reader")).with_context(|| format!("cannot copy {}", exec.display()))?;
    let data = tree.join("data");
    write_noise(&data, u64::from(size_mib) << 20)?;
    let host_arguments = [data.to_string_lossy().into_owned()];
    let command = ["/reader".to_string(), "/data".to_string()];
    let spec = ImageSpec::from_tree(&tree, &command, &[])?;
    let contents = std::fs::read(&data).with_context(|| format!("cannot read {}", data.display()))?;
    let reference = Reference {
        files: vec![linux::Entry::file("data", contents, 0o644)],
        arguments: vec![String::from("/data")],
    };
    measure(exec, &host_arguments, &spec, machine, reference)
}

/// Arguments of `rosv bench network`.
#[derive(Debug, Args)]
pub struct NetworkBenchArgs {
    /// The static program that measures (such as
    /// tests/guest/socket-throughput.c): it moves the MiB its argument
    /// gives between two threads and prints `name: N ns` lines, N per MiB.
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// MiB moved per run.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    size_mib: u32,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Moves bytes between two threads through TCP over the loopback, local
/// sockets and pipes, in rosv and on the host, and prints the throughput.
pub fn network(arguments: &NetworkBenchArgs) -> Result<u8> {
    let run = program_measurement(&arguments.exec, &[arguments.size_mib.to_string()], &arguments.machine)?;
    println!("moving {} MiB between two threads of one program", arguments.size_mib);
    run.print(&arguments.exec, "MiB/s", |ns_per_mib| 1e9 / ns_per_mib);
    Ok(0)
}

/// Runs the measuring program `exec` with `program_arguments` in rosv, in
/// the Linux guest and on the host.
fn program_measurement(
    exec: &Path,
    program_arguments: &[String],
    machine: &MachineArgs,
) -> Result<Measurement> {
    let spec = ImageSpec::from_executable(exec, program_arguments, &[])?;
    let reference = Reference { files: Vec::new(), arguments: program_arguments.to_vec() };
    measure(exec, program_arguments, &spec, machine, reference)
}

/// Writes `size` bytes that compress badly.
fn write_noise(path: &Path, size: u64) -> Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..size / 8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        writer.write_all(&state.to_le_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// What a measuring program printed in rosv, in the Linux reference guest
/// and on the host.
struct Measurement {
    guest: Vec<(String, f64)>,
    linux: Option<Vec<(String, f64)>>,
    host: Vec<(String, f64)>,
    hypervisor: &'static str,
    cpus: u32,
    memory_mib: u64,
}

impl Measurement {
    /// Prints each figure side by side, converted by `convert` into `unit`,
    /// with rosv's figure over the Linux guest's.
    fn print(&self, program: &Path, unit: &str, convert: impl Fn(f64) -> f64) {
        println!(
            "{} on rosv and on a Linux guest ({}, {} CPUs, {} MiB), and on this host",
            program.display(),
            self.hypervisor,
            self.cpus,
            self.memory_mib
        );
        let width = self.guest.iter().map(|(name, _)| name.len()).max().unwrap_or(0).max(24);
        println!(
            "{:<width$} {:>14} {:>14} {:>12} {:>14}",
            "",
            format!("rosv {unit}"),
            format!("Linux {unit}"),
            "rosv/Linux",
            format!("host {unit}")
        );
        let find = |figures: &[(String, f64)], name: &str| {
            figures.iter().find(|(other, _)| other == name).map(|(_, value)| convert(*value))
        };
        let cell =
            |value: Option<f64>| value.map_or_else(|| String::from("n/a"), |value| format!("{value:.1}"));
        for (name, value) in &self.guest {
            let value = convert(*value);
            let linux = self.linux.as_deref().and_then(|linux| find(linux, name));
            let ratio = linux.filter(|linux| *linux > 0.0).map(|linux| format!("{:.2}", value / linux));
            println!(
                "{name:<width$} {value:>14.1} {:>14} {:>12} {:>14}",
                cell(linux),
                ratio.unwrap_or_else(|| String::from("n/a")),
                cell(find(&self.host, name))
            );
        }
    }
}

/// The reference run of a measurement: the files its initramfs holds
/// besides the program, and the program's arguments there.
struct Reference {
    files: Vec<linux::Entry>,
    arguments: Vec<String>,
}

/// Runs `program` with `host_arguments` on the host, then the image `spec`
/// in rosv, then the same program in the Linux reference guest as
/// `reference` describes (unless `machine` is not QEMU), and collects the
/// `name: N ns` figures each printed.
fn measure(
    program: &Path,
    host_arguments: &[String],
    spec: &ImageSpec,
    machine: &MachineArgs,
    reference: Reference,
) -> Result<Measurement> {
    let host = Command::new(program)
        .args(host_arguments)
        .output()
        .with_context(|| format!("cannot run {} on the host", program.display()))?;
    if !host.status.success() {
        bail!("{} failed on the host ({})", program.display(), host.status);
    }
    let host_figures = figures(&String::from_utf8_lossy(&host.stdout));

    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image_directory = scratch.path().join("image");
    image::write(spec, &image_directory)?;
    let config = VmConfig::new(&Image::open(&image_directory)?, machine, &[], None)?;
    let captured = Arc::new(Mutex::new(Vec::new()));
    let limit = Duration::from_secs(machine.timeout.unwrap_or(600));
    let outcome = boot_captured(&config, machine, scratch.path(), limit, &captured)?;
    let output =
        String::from_utf8_lossy(&captured.lock().map(|bytes| bytes.clone()).unwrap_or_default()).into_owned();
    if !matches!(outcome, Outcome::Exited { reported: Some(0), .. }) {
        bail!("the program failed in rosv ({outcome:?}); output:\n{output}");
    }
    let linux = match machine.hypervisor {
        Hypervisor::Qemu => {
            let mut files = reference.files;
            let contents =
                std::fs::read(program).with_context(|| format!("cannot read {}", program.display()))?;
            files.push(linux::Entry::file("program", contents, 0o755));
            // Linux starts with the loop down: busybox brings it up (as
            // rosv's is from the start), then the program runs.
            let busybox = std::fs::read("/bin/busybox")
                .context("busybox is missing for the Linux guest: apt-get install busybox-static")?;
            files.push(linux::Entry::file("bin/busybox", busybox, 0o755));
            let init = "#!/bin/busybox sh\n/bin/busybox ip link set lo up\nexec /program \"$@\"\n";
            files.push(linux::Entry::file("init", init.as_bytes().to_vec(), 0o755));
            let initramfs = scratch.path().join("initramfs.cpio");
            std::fs::write(&initramfs, linux::initramfs(&files)).context("cannot write the initramfs")?;
            let kernel = linux::kernel()?;
            let run = linux::boot(
                &kernel,
                &initramfs,
                machine,
                config.memory_mib,
                config.cpus,
                &reference.arguments,
            )?;
            Some(figures(&run.output))
        }
        _ => None,
    };
    let hypervisor = hypervisor_name(machine);
    Ok(Measurement {
        guest: figures(&output),
        linux,
        host: host_figures,
        hypervisor,
        cpus: config.cpus,
        memory_mib: config.memory_mib,
    })
}

/// Arguments of `rosv bench mmap`.
#[derive(Debug, Args)]
pub struct MmapBenchArgs {
    /// The static program that measures (such as tests/guest/mmap-cost.c):
    /// it prints `mmap+touch+munmap with N mappings: T ns` lines.
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// Rounds per figure.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Times mmap, a store and munmap with many mappings alive, in rosv, in the
/// Linux guest and on the host.
pub fn mmap(arguments: &MmapBenchArgs) -> Result<u8> {
    let program_arguments = [arguments.rounds.to_string()];
    let spec = ImageSpec::from_executable(&arguments.exec, &program_arguments, &[])?;
    let reference = Reference { files: Vec::new(), arguments: program_arguments.to_vec() };
    let run = measure(&arguments.exec, &program_arguments, &spec, &arguments.machine, reference)?;
    run.print(&arguments.exec, "ns", |value| value);
    Ok(0)
}

/// Arguments of `rosv bench spawn`.
#[derive(Debug, Args)]
pub struct SpawnBenchArgs {
    /// The static program that measures (such as tests/guest/spawn-cost.c):
    /// it starts and reaps processes three ways (fork, vfork and execve of
    /// itself, posix_spawn of itself) and prints `name: N ns` lines, N per
    /// process.
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// Processes per figure.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Starts and reaps processes in rosv, in the Linux guest and on the host,
/// and prints how many of each kind start per second.
pub fn spawn(arguments: &SpawnBenchArgs) -> Result<u8> {
    let program_arguments = [arguments.rounds.to_string()];
    let spec = ImageSpec::from_executable(&arguments.exec, &program_arguments, &[])?;
    let reference = Reference { files: Vec::new(), arguments: program_arguments.to_vec() };
    let run = measure(&arguments.exec, &program_arguments, &spec, &arguments.machine, reference)?;
    run.print(&arguments.exec, "/s", |nanoseconds| if nanoseconds > 0.0 { 1e9 / nanoseconds } else { 0.0 });
    Ok(0)
}

/// Arguments of `rosv bench memory`.
#[derive(Debug, Args)]
pub struct MemoryBenchArgs {
    /// Boot this executable instead of the built-in hello program.
    #[arg(long, value_name = "FILE")]
    exec: Option<PathBuf>,
    /// Skip measuring how much memory an application can take.
    #[arg(long)]
    no_touch: bool,
    #[command(flatten)]
    machine: MachineArgs,
}

/// The least guest memory [`memory`] tries, in MiB: the kernel is loaded at
/// 1 MiB and takes some 2 MiB.
const MEMORY_FLOOR_MIB: u64 = 3;

/// Guest sizes at which [`memory`] measures what an application can take.
const TOUCH_SIZES_MIB: [u64; 3] = [64, 256, 1024];

/// Finds the least memory, in whole MiB, that the program boots and exits
/// 0 in, by bisection between [`MEMORY_FLOOR_MIB`] and `--memory`; then
/// how much of the guest's RAM an application can map and touch.
pub fn memory(arguments: &MemoryBenchArgs) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image = program_image(arguments.exec.as_deref(), scratch.path())?;
    let config = VmConfig::new(&image, &arguments.machine, &[], None)?;
    let machine =
        MachineArgs { timeout: Some(arguments.machine.timeout.unwrap_or(20)), ..arguments.machine.clone() };
    let boots = |memory_mib: u64| -> Result<bool> {
        let trial = VmConfig { memory_mib, ..config.clone() };
        Ok(timed_boot(&trial, &machine, scratch.path(), true).is_ok())
    };
    let name = match &arguments.exec {
        Some(path) => path.display().to_string(),
        None => String::from("a hello program"),
    };
    let (mut low, mut high) = (MEMORY_FLOOR_MIB, config.memory_mib);
    if !boots(high)? {
        bail!("{name} does not boot in {high} MiB; give more with --memory");
    }
    if boots(low)? {
        high = low;
    }
    // The program boots in `high` MiB and not in `low` (unless they meet).
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if boots(middle)? { high = middle } else { low = middle }
    }
    println!(
        "{name} boots and exits 0 in {high} MiB of guest memory (tried {MEMORY_FLOOR_MIB} to {} MiB)",
        config.memory_mib
    );
    if !arguments.no_touch {
        touch_memory(&arguments.machine)?;
    }
    Ok(0)
}

/// Boots a program that maps and touches memory until none is left, at
/// each of [`TOUCH_SIZES_MIB`], and prints what it got next to the guest's
/// RAM and to what the kernel said was available when the program started.
fn touch_memory(machine: &MachineArgs) -> Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    println!("an application maps and touches memory 1 MiB at a time (MAP_POPULATE) until refused:");
    println!("{:>10} {:>12} {:>8} {:>18}", "guest RAM", "it got", "of RAM", "of free at start");
    for size_mib in TOUCH_SIZES_MIB {
        let program = scratch.path().join(format!("toucher-{size_mib}"));
        let limit = u32::try_from(size_mib * 2).unwrap_or(u32::MAX);
        std::fs::write(&program, guest_elf::toucher(limit))
            .with_context(|| format!("cannot write {}", program.display()))?;
        let image_directory = scratch.path().join(format!("image-{size_mib}"));
        image::write(&ImageSpec::from_executable(&program, &[], &[])?, &image_directory)?;
        let verbose = MachineArgs {
            kernel_args: Some(String::from("--verbose")),
            timeout: Some(machine.timeout.unwrap_or(300)),
            ..machine.clone()
        };
        let config = VmConfig {
            memory_mib: size_mib,
            ..VmConfig::new(&Image::open(&image_directory)?, &verbose, &[], None)?
        };
        let (_, output) = timed_boot(&config, &verbose, scratch.path(), true)?;
        let touched_mib =
            output.lines().filter_map(|line| line.trim().parse::<u64>().ok()).next_back().with_context(
                || format!("the toucher printed no count in {size_mib} MiB; output:\n{output}"),
            )?;
        let available_mib = available_at_start_kib(&output).map(|kib| kib as f64 / 1024.0);
        let of_free = match available_mib {
            Some(available) if available > 0.0 => format!("{:.1}%", 100.0 * touched_mib as f64 / available),
            _ => String::from("n/a"),
        };
        println!(
            "{:>6} MiB {:>8} MiB {:>7.1}% {:>18}",
            size_mib,
            touched_mib,
            100.0 * touched_mib as f64 / size_mib as f64,
            of_free
        );
    }
    Ok(())
}

/// The memory the kernel said was available to the application when it
/// started (its `memory: ... available` line under `--verbose`), in KiB.
fn available_at_start_kib(output: &str) -> Option<u64> {
    output.lines().find_map(|line| {
        let rest = line.split("memory: ").nth(1)?;
        let (figure, tail) = rest.split_once(" KiB")?;
        tail.contains("available to the application").then(|| figure.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn reads_the_memory_available_at_start() {
        let output =
            "Booted in 3 ms\n[debug] memory: 60123 KiB available to the application (64000 KiB of RAM)\n57\n";
        assert_eq!(available_at_start_kib(output), Some(60123));
        assert_eq!(available_at_start_kib("memory: lots"), None);
    }
}
