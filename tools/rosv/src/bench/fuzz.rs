//! `rosv bench fuzz`: runs a system-call fuzzer (such as
//! tests/guest/fuzz.c) on many seeds and counts how the runs ended.
//!
//! The fuzzer prints each call before making it (`T<thread> #<n>
//! <number>(<arguments>)`) and `fuzz: done: ..., N calls made, ...` at the
//! end, so a run that kills the machine names its culprit in the last call
//! line each thread printed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::boot_captured;
use crate::cli::MachineArgs;
use crate::image::{self, Image, ImageSpec};
use crate::vm::{Outcome, VmConfig};
use rosv_abi::exit::status::KERNEL_FAILURE;

/// Arguments of `rosv bench fuzz`.
#[derive(Debug, Args)]
pub struct FuzzBenchArgs {
    /// The static fuzzer program (such as tests/guest/fuzz.c built with
    /// musl-gcc -static); `cargo xtask fuzz-syscalls` builds and passes it.
    #[arg(long, value_name = "FILE")]
    exec: PathBuf,
    /// Runs, one seed each.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    seeds: u64,
    /// The first seed; the runs take consecutive seeds from it.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Calls each fuzzing thread makes.
    #[arg(long, default_value_t = 3000)]
    calls: u64,
    /// Fuzzing threads.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    threads: u32,
    /// More arguments for the fuzzer, such as `--no-populate` or
    /// `--exclude 77,285`.
    #[arg(last = true, value_name = "FUZZER ARGUMENTS")]
    arguments: Vec<String>,
    #[command(flatten)]
    machine: MachineArgs,
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The fuzzer finished and exited with 0.
    Finished,
    /// The kernel panicked.
    Panic,
    /// The kernel faulted in its own code.
    KernelFault,
    /// The machine ran past the time limit, or a call stayed blocked.
    Hang,
    /// The machine reset or stopped without an exit record.
    Reset,
    /// The fuzzer ended otherwise (it faulted itself, or exited non-zero).
    Other,
}

impl Ending {
    const ALL: [Ending; 6] =
        [Ending::Finished, Ending::Panic, Ending::KernelFault, Ending::Hang, Ending::Reset, Ending::Other];

    fn name(self) -> &'static str {
        match self {
            Ending::Finished => "finished",
            Ending::Panic => "kernel panics",
            Ending::KernelFault => "kernel faults",
            Ending::Hang => "hangs",
            Ending::Reset => "resets",
            Ending::Other => "other failures",
        }
    }
}

/// Classifies a run from its outcome and console output.
pub fn ending(outcome: &Outcome, output: &str) -> Ending {
    if output.contains("kernel panic") {
        return Ending::Panic;
    }
    // Other processors may still print while one reports, so the text can
    // come out interleaved: the kernel's exit status tells as well.
    let is_kernel_failure =
        matches!(outcome, Outcome::Exited { reported: Some(status), .. } if *status == KERNEL_FAILURE);
    if output.contains("kernel fault") || is_kernel_failure {
        return Ending::KernelFault;
    }
    match outcome {
        Outcome::TimedOut(_) => Ending::Hang,
        _ if output.contains("fuzz: a call stayed blocked") => Ending::Hang,
        Outcome::Exited { reported: None, .. } | Outcome::Interrupted(_) => Ending::Reset,
        Outcome::Exited { reported: Some(0), .. } if output.contains("fuzz: done:") => Ending::Finished,
        Outcome::Exited { .. } => Ending::Other,
    }
}

/// The calls made, from the fuzzer's closing line.
pub fn calls_made(output: &str) -> Option<u64> {
    let line = output.lines().find(|line| line.starts_with("fuzz: done:"))?;
    let before = line.split(" calls made").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

/// The last call line each thread printed (`T<n> #...`), by thread.
pub fn last_calls(output: &str) -> Vec<&str> {
    let mut last: Vec<(&str, &str)> = Vec::new();
    for line in output.lines() {
        let Some((thread, _)) = line.split_once(" #") else { continue };
        if !thread.starts_with('T') || !thread[1..].chars().all(|c| c.is_ascii_digit()) || thread.len() < 2 {
            continue;
        }
        match last.iter_mut().find(|(name, _)| *name == thread) {
            Some(entry) => entry.1 = line,
            None => last.push((thread, line)),
        }
    }
    last.sort();
    last.into_iter().map(|(_, line)| line).collect()
}

/// Runs the fuzzer on `--seeds` seeds and prints the counts.
pub fn fuzz(arguments: &FuzzBenchArgs) -> Result<u8> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let spec = ImageSpec::from_executable(&arguments.exec, &[], &[])?;
    let image_directory = scratch.path().join("image");
    image::write(&spec, &image_directory)?;
    let image = Image::open(&image_directory)?;
    // `from_executable` puts the program at the root under its own name.
    let name =
        arguments.exec.file_name().and_then(|name| name.to_str()).context("the program has no name")?;
    let program = format!("/{name}");
    let limit = Duration::from_secs(arguments.machine.timeout.unwrap_or(300));
    let mut counts = [0u64; Ending::ALL.len()];
    let mut calls = 0u64;
    let mut failures = Vec::new();
    for seed in arguments.first_seed..arguments.first_seed.saturating_add(arguments.seeds) {
        let mut command = vec![
            program.clone(),
            "--seed".to_string(),
            seed.to_string(),
            "--calls".to_string(),
            arguments.calls.to_string(),
            "--threads".to_string(),
            arguments.threads.to_string(),
        ];
        command.extend(arguments.arguments.iter().cloned());
        let config = VmConfig::new(&image, &arguments.machine, &[], Some(&command))?;
        let captured = Arc::new(Mutex::new(Vec::new()));
        let outcome = boot_captured(&config, &arguments.machine, scratch.path(), limit, &captured)?;
        let output = String::from_utf8_lossy(&captured.lock().map(|bytes| bytes.clone()).unwrap_or_default())
            .into_owned();
        let ending = ending(&outcome, &output);
        calls += calls_made(&output).unwrap_or(0);
        if let Some(index) = Ending::ALL.iter().position(|&each| each == ending) {
            counts[index] += 1;
        }
        if ending != Ending::Finished {
            println!("seed {seed}: {} ({outcome:?})", ending.name());
            for line in last_calls(&output) {
                println!("  last call: {line}");
            }
            let is_report = |line: &&str| {
                line.starts_with("rosv:")
                    || line.starts_with("fuzz:")
                    || line.trim_start().starts_with("at 0x")
            };
            for line in output.lines().filter(is_report) {
                println!("  {line}");
            }
            failures.push(seed);
        }
    }
    println!(
        "system-call fuzzing: {} runs ({} threads, {} calls each, {} CPUs), {calls} calls made",
        arguments.seeds, arguments.threads, arguments.calls, arguments.machine.cpus
    );
    for (ending, count) in Ending::ALL.iter().zip(counts) {
        println!("  {:<16} {count}", ending.name());
    }
    if !failures.is_empty() {
        println!("  failing seeds: {failures:?}");
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_runs() {
        let exited = |reported| Outcome::Exited { code: Some(0), reported };
        assert_eq!(ending(&exited(Some(0)), "fuzz: done: seed 1, 5 calls made\n"), Ending::Finished);
        assert_eq!(ending(&exited(Some(0)), "T0 #1 0(0x0)\n"), Ending::Other);
        assert_eq!(ending(&exited(Some(125)), "rosv: kernel panic: out of memory\n"), Ending::Panic);
        assert_eq!(ending(&exited(Some(125)), "rosv: kernel fault: page fault\n"), Ending::KernelFault);
        assert_eq!(ending(&exited(Some(125)), "rosv: kerneT0 #1l fault\n"), Ending::KernelFault);
        assert_eq!(ending(&Outcome::TimedOut(Duration::from_secs(1)), ""), Ending::Hang);
        assert_eq!(ending(&exited(Some(3)), "fuzz: a call stayed blocked: T0 #1\n"), Ending::Hang);
        assert_eq!(ending(&exited(None), "T0 #1 0(0x0)\n"), Ending::Reset);
        assert_eq!(ending(&exited(Some(4)), "fuzz: the fuzzer itself faulted\n"), Ending::Other);
    }

    #[test]
    fn reads_the_calls_made_and_the_last_calls() {
        let output = "T0 #1 0(0x1)\nT1 #1 2(0x3)\nT0 #2 4(0x5)\nTx #3 nothing\n\
                      fuzz: done: seed 7, 1234 calls made, 5 signals caught\n";
        assert_eq!(calls_made(output), Some(1234));
        assert_eq!(calls_made("T0 #1 0(0x1)\n"), None);
        assert_eq!(last_calls(output), ["T0 #2 4(0x5)", "T1 #1 2(0x3)"]);
    }
}
