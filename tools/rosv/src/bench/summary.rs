//! `rosv bench linux`: every figure rosv is judged by, next to the Linux
//! reference guest's on the same QEMU machine, memory and CPUs, in one
//! table with the ratio and the goal.
//!
//! It runs what the other benchmarks run: a hello program's boot (`bench
//! boot`), the cost of a cheap system call and of futex and pipe round
//! trips (`bench switch` with tests/guest/syscall-costs.c), 64 KiB reads of
//! a file (`bench disk` with tests/guest/read-throughput.c), loopback TCP
//! throughput (`bench network` with tests/guest/socket-throughput.c), and
//! nginx and Redis served to the host (`bench servers`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::servers::{self, Row, ServerLoad};
use super::{Measurement, linux_first_output_times, program_measurement, read_measurement, summarize};
use crate::cli::MachineArgs;
use crate::guest_elf;
use crate::image::{self, Image, ImageSpec};
use crate::vm::{Hypervisor, VmConfig};

/// Arguments of `rosv bench linux`.
#[derive(Debug, Args)]
pub struct LinuxBenchArgs {
    /// The static program that prints the cost of a system call and of
    /// futex and pipe round trips (tests/guest/syscall-costs.c).
    #[arg(long, value_name = "FILE")]
    syscall_costs: PathBuf,
    /// The static program that reads a file with 4 KiB, 64 KiB and 1 MiB
    /// buffers (tests/guest/read-throughput.c).
    #[arg(long, value_name = "FILE")]
    read_throughput: PathBuf,
    /// The static program that moves bytes through loopback TCP, local
    /// sockets and pipes (tests/guest/socket-throughput.c).
    #[arg(long, value_name = "FILE")]
    socket_throughput: PathBuf,
    /// MiB read and moved per run.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    size_mib: u32,
    /// Boots of each guest for the boot figure.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    boots: u32,
    /// Leave nginx and Redis out.
    #[arg(long)]
    no_servers: bool,
    #[command(flatten)]
    load: ServerLoad,
    #[command(flatten)]
    machine: MachineArgs,
}

/// The goals: rosv's advantage over the Linux guest on boot and on every
/// throughput figure.
const BOOT_GOAL: f64 = 10.0;
const THROUGHPUT_GOAL: f64 = 1.5;

/// Runs every measurement and prints the table.
pub fn linux(arguments: &LinuxBenchArgs) -> Result<u8> {
    if arguments.machine.hypervisor != Hypervisor::Qemu {
        bail!("the Linux reference guest runs on QEMU only");
    }
    let mut rows = Vec::new();
    rows.push(boot_row(arguments)?);
    eprintln!("measuring system calls, futex and pipe round trips");
    let costs = program_measurement(&arguments.syscall_costs, &[], &arguments.machine)?;
    for (figure, name) in [
        ("getppid system call", "cheap system call ns"),
        ("futex round trip", "futex round trip ns"),
        ("pipe round trip", "pipe round trip ns"),
    ] {
        rows.push(figure_row(&costs, figure, name, |ns| ns, true)?);
    }
    eprintln!("measuring file reads");
    let reads = read_measurement(&arguments.read_throughput, arguments.size_mib, &arguments.machine)?;
    rows.push(figure_row(&reads, "read with 64 KiB buffers", "64 KiB file reads MiB/s", per_second, false)?);
    eprintln!("measuring loopback TCP");
    let size = [arguments.size_mib.to_string()];
    let sockets = program_measurement(&arguments.socket_throughput, &size, &arguments.machine)?;
    rows.push(figure_row(&sockets, "tcp loopback 64 KiB", "loopback TCP MiB/s", per_second, false)?);
    // The servers come last and fail alone: the figures so far still
    // print, and the exit status says something is missing.
    let mut status = 0;
    if !arguments.no_servers {
        eprintln!("measuring nginx and Redis");
        match servers::measure_servers(&arguments.load, &arguments.machine) {
            Ok(server_rows) => rows.extend(server_rows),
            Err(error) => {
                eprintln!("rosv: nginx and Redis were not measured: {error:#}");
                status = 1;
            }
        }
    }
    print_table(&rows, &arguments.machine);
    Ok(status)
}

/// MiB per second from nanoseconds per MiB.
fn per_second(ns_per_mib: f64) -> f64 {
    1e9 / ns_per_mib
}

/// Boot to the application's first output: rosv's hello program until it
/// exits (which is later), Linux's until it prints.
fn boot_row(arguments: &LinuxBenchArgs) -> Result<Row> {
    eprintln!("measuring boots");
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let program = guest_elf::hello(b"Hello from rosv!\n");
    let path = scratch.path().join("hello");
    std::fs::write(&path, &program).context("cannot write the hello program")?;
    let image_directory = scratch.path().join("image");
    image::write(&ImageSpec::from_executable(&path, &[], &[])?, &image_directory)?;
    let config = VmConfig::new(&Image::open(&image_directory)?, &arguments.machine, &[], None)?;
    let mut times = Vec::new();
    for _ in 0..arguments.boots {
        let (elapsed, _) = super::timed_boot(&config, &arguments.machine, scratch.path(), true)?;
        times.push(elapsed);
    }
    let rosv = summarize(&times).context("no boots")?;
    let linux =
        linux_first_output_times(program, &arguments.machine, &config, arguments.boots, scratch.path())?
            .context("no Linux boots")?;
    Ok(Row {
        name: String::from("boot to first output ms"),
        rosv: rosv.median.as_secs_f64() * 1000.0,
        linux: linux.median.as_secs_f64() * 1000.0,
        is_lower_better: true,
    })
}

/// The row of `figure` in `measurement`, converted by `convert`.
fn figure_row(
    measurement: &Measurement,
    figure: &str,
    name: &str,
    convert: fn(f64) -> f64,
    is_lower_better: bool,
) -> Result<Row> {
    let find = |figures: &[(String, f64)]| {
        figures.iter().find(|(other, _)| other == figure).map(|(_, value)| convert(*value))
    };
    let rosv = find(&measurement.guest).with_context(|| format!("rosv printed no \"{figure}\" figure"))?;
    let linux = measurement
        .linux
        .as_deref()
        .and_then(find)
        .with_context(|| format!("the Linux guest printed no \"{figure}\" figure"))?;
    Ok(Row { name: String::from(name), rosv, linux, is_lower_better })
}

/// How many times better rosv's figure is than Linux's (above 1: rosv is
/// ahead), whichever direction is better.
fn advantage(row: &Row) -> Option<f64> {
    let (better, worse) = if row.is_lower_better { (row.linux, row.rosv) } else { (row.rosv, row.linux) };
    (worse > 0.0).then(|| better / worse)
}

/// The goal for a row, if it has one.
fn goal(row: &Row) -> Option<f64> {
    if row.name.starts_with("boot") {
        Some(BOOT_GOAL)
    } else if row.name.contains("/s") {
        Some(THROUGHPUT_GOAL)
    } else {
        None
    }
}

fn print_table(rows: &[Row], machine: &MachineArgs) {
    println!(
        "rosv and a Linux guest (Debian's cloud kernel) on QEMU, {} CPUs, {} MiB (nginx and Redis on pc)",
        machine.cpus, machine.memory
    );
    println!("ahead: how many times better rosv's figure is (Linux's over rosv's for times and memory)");
    println!("{:<28} {:>12} {:>12} {:>8} {:>6}", "", "rosv", "Linux", "ahead", "goal");
    for row in rows {
        let cell =
            |value: Option<f64>, text: &str| value.map_or_else(|| String::from(text), |v| format!("{v:.2}"));
        println!(
            "{:<28} {:>12.1} {:>12.1} {:>8} {:>6}",
            row.name,
            row.rosv,
            row.linux,
            cell(advantage(row), "n/a"),
            cell(goal(row), "")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, rosv: f64, linux: f64, is_lower_better: bool) -> Row {
        Row { name: String::from(name), rosv, linux, is_lower_better }
    }

    #[test]
    fn the_advantage_reads_the_same_way_for_times_and_rates() {
        assert_eq!(advantage(&row("boot to first output ms", 100.0, 1000.0, true)), Some(10.0));
        assert_eq!(advantage(&row("loopback TCP MiB/s", 300.0, 200.0, false)), Some(1.5));
        assert_eq!(advantage(&row("nginx 1 KiB p99 ms", 0.0, 2.0, true)), None);
    }

    #[test]
    fn boots_and_throughputs_have_goals() {
        assert_eq!(goal(&row("boot to first output ms", 1.0, 1.0, true)), Some(BOOT_GOAL));
        assert_eq!(goal(&row("redis GET requests/s", 1.0, 1.0, false)), Some(THROUGHPUT_GOAL));
        assert_eq!(goal(&row("pipe round trip ns", 1.0, 1.0, true)), None);
    }

    #[test]
    fn a_figure_missing_from_a_guest_is_an_error() {
        let measurement = Measurement {
            guest: vec![(String::from("pipe round trip"), 10.0)],
            linux: Some(Vec::new()),
            host: Vec::new(),
            hypervisor: "QEMU",
            cpus: 1,
            memory_mib: 128,
        };
        assert!(figure_row(&measurement, "pipe round trip", "pipe", |ns| ns, true).is_err());
        assert!(figure_row(&measurement, "futex round trip", "futex", |ns| ns, true).is_err());
    }

    #[test]
    fn rates_come_from_nanoseconds_per_mebibyte() {
        assert_eq!(per_second(1e9), 1.0);
    }
}
