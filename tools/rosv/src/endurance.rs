//! `rosv bench soak` and `rosv bench boots`: long runs that count failures.
//!
//! Neither measures speed: each boots a program again and again (or for a
//! long time) and reports how many runs failed, with the end of each failed
//! run's console, so that a rare hang or crash is seen and can be studied.
//! A run fails when the guest does not report exit status 0, or runs past
//! its time limit (then the kernel has printed what each processor was
//! doing), or, for the soak, when the program counted a failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use crate::bench::{self, summarize};
use crate::cli::MachineArgs;
use crate::image::{self, Image, ImageSpec};
use crate::vm::{Outcome, VmConfig};

/// Console lines shown for each failed run.
const TAIL_LINES: usize = 40;
/// The kernel's first line of its thread dump.
const DUMP_START: &str = "rosv: thread dump:";

/// Arguments of `rosv bench soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The soak program (tests/guest/soak.c, built static): it takes
    /// SECONDS SLEEPERS CANCELLERS SPINNERS, prints its counts and `soak
    /// failures: N`.
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// How long each run soaks.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    seconds: u32,
    /// Runs, each a fresh boot.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    runs: u32,
    /// Threads that sleep in every way a program can.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=48))]
    sleepers: u32,
    /// Threads that cancel and signal threads spinning in application code.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16))]
    cancellers: u32,
    /// Threads that spin in application code throughout, keeping the
    /// processors busy.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16))]
    spinners: u32,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Arguments of `rosv bench boots`.
#[derive(Debug, Args)]
pub struct BootsArgs {
    /// The program to boot (static, or dynamic with its libraries).
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// Boots, one after another.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    /// A boot also fails unless the console contains this text.
    #[arg(long, value_name = "TEXT")]
    expect: Option<String>,
    /// The program's arguments.
    #[arg(last = true, value_name = "ARGUMENTS")]
    arguments: Vec<String>,
    #[command(flatten)]
    machine: MachineArgs,
}

/// How one run ended.
#[derive(Debug)]
struct Run {
    elapsed: Duration,
    outcome: Outcome,
    console: String,
}

impl Run {
    /// Why the run failed, or `None` if it passed: exit status 0 reported
    /// and `wanted` (if any) on the console.
    fn failure(&self, wanted: Option<&str>) -> Option<String> {
        match self.outcome {
            Outcome::Exited { reported: Some(0), .. } => match wanted {
                Some(text) if !self.console.contains(text) => {
                    Some(format!("exit status 0 without \"{text}\""))
                }
                _ => None,
            },
            Outcome::Exited { reported: Some(status), .. } => Some(format!("exit status {status}")),
            Outcome::Exited { reported: None, code } => {
                Some(format!("no exit status reported (hypervisor exit {code:?})"))
            }
            Outcome::TimedOut(limit) => Some(format!("still running after {} s", limit.as_secs())),
            Outcome::Interrupted(signal) => Some(format!("stopped by signal {signal}")),
        }
    }
}

/// The last `count` lines of `console`.
/// The last `count` lines of `console`, or, when the kernel printed its
/// thread dump (a run that timed out), everything from the `count` lines
/// before the dump on.
fn tail(console: &str, count: usize) -> String {
    let lines: Vec<&str> = console.lines().collect();
    let end = lines.iter().position(|line| line.contains(DUMP_START)).unwrap_or(lines.len());
    lines[end.saturating_sub(count)..].join("\n")
}

/// Boots `config` once with the hypervisor `machine` names, for at most
/// `limit`.
fn boot_once(config: &VmConfig, machine: &MachineArgs, scratch: &Path, limit: Duration) -> Result<Run> {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let outcome = bench::boot_captured(config, machine, scratch, limit, &captured)?;
    let elapsed = started.elapsed();
    let console =
        String::from_utf8_lossy(&captured.lock().map(|bytes| bytes.clone()).unwrap_or_default()).into_owned();
    Ok(Run { elapsed, outcome, console })
}

/// Writes an image of `program` with `arguments` in `scratch`.
fn image_of(program: &Path, arguments: &[String], scratch: &Path) -> Result<Image> {
    let directory = scratch.join("image");
    image::write(&ImageSpec::from_executable(program, arguments, &[])?, &directory)?;
    Image::open(&directory)
}

/// The counts the soak program printed: its table and its verdict.
fn soak_counts(console: &str) -> Vec<&str> {
    console
        .lines()
        .filter(|line| {
            line.contains(" done ") || line.starts_with("soak ran") || line.starts_with("soak failures")
        })
        .collect()
}

/// Runs the soak and prints its counts; exit status 1 if any run failed.
pub fn soak(arguments: &SoakArgs) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let program_arguments = [
        arguments.seconds.to_string(),
        arguments.sleepers.to_string(),
        arguments.cancellers.to_string(),
        arguments.spinners.to_string(),
    ];
    let image = image_of(&arguments.exec, &program_arguments, scratch.path())?;
    let config = VmConfig::new(&image, &arguments.machine, &[], None)?;
    // The program's own watchdog reports a thread stuck for 30 s; past
    // that, the whole machine is stuck.
    let limit =
        Duration::from_secs(arguments.machine.timeout.unwrap_or(u64::from(arguments.seconds) * 3 + 120));
    println!(
        "soak: {} runs of {} s on {} CPUs ({}), {} sleepers, {} cancellers and {} spinners each",
        arguments.runs,
        arguments.seconds,
        config.cpus,
        bench::hypervisor_name(&arguments.machine),
        arguments.sleepers,
        arguments.cancellers,
        arguments.spinners
    );
    let mut failed = 0;
    let mut runs = 0;
    for index in 1..=arguments.runs {
        let run = boot_once(&config, &arguments.machine, scratch.path(), limit)?;
        runs += 1;
        if let Outcome::Interrupted(signal) = run.outcome {
            println!("run {index}: stopped by signal {signal}; no more runs");
            failed += 1;
            break;
        }
        let failure = run.failure(Some("soak failures: 0"));
        match &failure {
            None => println!("run {index}: passed in {:.1} s", run.elapsed.as_secs_f64()),
            Some(why) => {
                failed += 1;
                println!(
                    "run {index}: FAILED ({why}); the console ended with:\n{}",
                    tail(&run.console, TAIL_LINES)
                );
            }
        }
        for line in soak_counts(&run.console) {
            println!("  {line}");
        }
    }
    println!("soak: {runs} runs, {} passed, {failed} failed", runs - failed);
    Ok(u8::from(failed > 0))
}

/// Boots the program `--count` times and prints the failures; exit status
/// 1 if any boot failed.
pub fn boots(arguments: &BootsArgs) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let image = image_of(&arguments.exec, &arguments.arguments, scratch.path())?;
    let config = VmConfig::new(&image, &arguments.machine, &[], None)?;
    let limit = Duration::from_secs(arguments.machine.timeout.unwrap_or(120));
    println!(
        "boots: {} boots of {} on {} CPUs ({}), each within {} s",
        arguments.count,
        arguments.exec.display(),
        config.cpus,
        bench::hypervisor_name(&arguments.machine),
        limit.as_secs()
    );
    let progress_every = (arguments.count / 20).max(1);
    let mut times = Vec::new();
    let mut failed = 0;
    for index in 1..=arguments.count {
        let run = boot_once(&config, &arguments.machine, scratch.path(), limit)?;
        if let Outcome::Interrupted(signal) = run.outcome {
            println!("boot {index}: stopped by signal {signal}; no more boots");
            failed += 1;
            times.push(run.elapsed);
            break;
        }
        times.push(run.elapsed);
        if let Some(why) = run.failure(arguments.expect.as_deref()) {
            failed += 1;
            println!(
                "boot {index}: FAILED ({why}); the console ended with:\n{}",
                tail(&run.console, TAIL_LINES)
            );
        }
        if index % progress_every == 0 {
            println!("boots: {index} of {}, {failed} failed", arguments.count);
        }
    }
    if let Some(summary) = summarize(&times) {
        println!(
            "boot to exit: min {:.3} s, median {:.3} s, max {:.3} s",
            summary.min.as_secs_f64(),
            summary.median.as_secs_f64(),
            summary.max.as_secs_f64()
        );
    }
    let runs = times.len();
    println!("boots: {runs} runs, {} passed, {failed} failed", runs - failed);
    Ok(u8::from(failed > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome, console: &str) -> Run {
        Run { elapsed: Duration::ZERO, outcome, console: console.into() }
    }

    #[test]
    fn a_run_passes_only_with_status_zero_and_the_wanted_text() {
        let exited = |status| Outcome::Exited { code: Some(1), reported: status };
        assert_eq!(run(exited(Some(0)), "soak failures: 0\n").failure(Some("soak failures: 0")), None);
        assert_eq!(run(exited(Some(0)), "anything").failure(None), None);
        assert!(run(exited(Some(0)), "soak failures: 3\n").failure(Some("soak failures: 0")).is_some());
        assert_eq!(run(exited(Some(3)), "").failure(None).as_deref(), Some("exit status 3"));
        assert!(run(exited(None), "").failure(None).is_some());
        let timed_out = run(Outcome::TimedOut(Duration::from_secs(9)), "").failure(None);
        assert_eq!(timed_out.as_deref(), Some("still running after 9 s"));
    }

    #[test]
    fn keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a\n", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn a_thread_dump_is_kept_whole() {
        let mut console: String = (0..50).map(|line| format!("line {line}\n")).collect();
        console.push_str("rosv: thread dump: every processor, then every thread\n");
        console.push_str(&(0..100).map(|line| format!("rosv: thread {line}\n")).collect::<String>());
        let kept = tail(&console, 3);
        assert!(kept.starts_with("line 47\nline 48\nline 49\nrosv: thread dump:"), "{kept}");
        assert!(kept.ends_with("rosv: thread 99"), "{kept}");
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    }

    #[test]
    fn picks_the_soak_counts() {
        let console = "Booted in 1 ms\nsoak: 5 s\nsoak ran 5.0 s\nnanosleep    12 done     0 early     0 late, worst \
                       1.0 ms over\nsoak failures: 0\n";
        assert_eq!(
            soak_counts(console),
            [
                "soak ran 5.0 s",
                "nanosleep    12 done     0 early     0 late, worst 1.0 ms over",
                "soak failures: 0"
            ]
        );
    }
}
