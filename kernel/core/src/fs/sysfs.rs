//! sysfs at `/sys` and the cgroup (version 2) filesystem at
//! `/sys/fs/cgroup`: what runtimes read to size their thread pools and
//! heaps.
//!
//! The machine is one cgroup: `cpu.max` allows as many processors' worth of
//! time as the VM has, `memory.max` is the RAM the frame allocator holds,
//! and the process is its only member (`/proc/self/cgroup` says `0::/`).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use super::generated::{Entry, GeneratedFs};
use crate::vfs::Caller;

/// `SYSFS_MAGIC`.
const SYSFS_MAGIC: u64 = 0x6265_6572;
/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_MAGIC: u64 = 0x6367_7270;
/// The period `cpu.max` states its quota in, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// The processors, as Linux lists CPU sets (`0-1`).
fn processor_list(caller: &Caller<'_>) -> String {
    match caller.machine.cpu_count() {
        0 | 1 => String::from("0\n"),
        count => format!("0-{}\n", count - 1),
    }
}

fn kernel_max(_caller: &Caller<'_>) -> String {
    String::from("8191\n")
}

const CPU: &[(&str, Entry)] = &[
    ("kernel_max", Entry::File(kernel_max)),
    ("offline", Entry::File(|_| String::from("\n"))),
    ("online", Entry::File(processor_list)),
    ("possible", Entry::File(processor_list)),
    ("present", Entry::File(processor_list)),
];

const SYSTEM: &[(&str, Entry)] = &[("cpu", Entry::Directory(CPU))];
const DEVICES: &[(&str, Entry)] = &[("system", Entry::Directory(SYSTEM))];
/// `/sys/fs`: `cgroup` is a mount point over it.
const FILESYSTEMS: &[(&str, Entry)] = &[];
const ROOT: &[(&str, Entry)] = &[
    ("block", Entry::Directory(&[])),
    ("bus", Entry::Directory(&[])),
    ("class", Entry::Directory(&[])),
    ("dev", Entry::Directory(&[])),
    ("devices", Entry::Directory(DEVICES)),
    ("firmware", Entry::Directory(&[])),
    ("fs", Entry::Directory(FILESYSTEMS)),
    ("kernel", Entry::Directory(&[])),
    ("module", Entry::Directory(&[])),
];

/// A sysfs instance.
pub fn sysfs() -> Arc<GeneratedFs> {
    GeneratedFs::new(Entry::Directory(ROOT), "sysfs", SYSFS_MAGIC)
}

fn cpu_max(caller: &Caller<'_>) -> String {
    let count = caller.machine.cpu_count().max(1) as u64;
    format!("{} {CPU_PERIOD_US}\n", count * CPU_PERIOD_US)
}

fn memory_max(_caller: &Caller<'_>) -> String {
    format!("{}\n", crate::pages::figures().total_bytes)
}

fn memory_current(_caller: &Caller<'_>) -> String {
    let figures = crate::pages::figures();
    format!("{}\n", figures.total_bytes.saturating_sub(figures.free_bytes))
}

fn members(caller: &Caller<'_>) -> String {
    match caller.process {
        Some(_) => format!("{}\n", crate::process::PROCESS_ID),
        None => String::new(),
    }
}

fn threads(caller: &Caller<'_>) -> String {
    let mut text = String::new();
    if let Some(process) = caller.process {
        for thread in process.threads() {
            text.push_str(&format!("{}\n", thread.tid));
        }
    }
    text
}

fn pids_current(caller: &Caller<'_>) -> String {
    format!("{}\n", caller.process.map_or(0, |process| process.thread_count()))
}

const CGROUP: &[(&str, Entry)] = &[
    ("cgroup.controllers", Entry::File(|_| String::from("cpuset cpu memory pids\n"))),
    ("cgroup.max.depth", Entry::File(|_| String::from("max\n"))),
    ("cgroup.max.descendants", Entry::File(|_| String::from("max\n"))),
    ("cgroup.procs", Entry::File(members)),
    ("cgroup.subtree_control", Entry::File(|_| String::from("\n"))),
    ("cgroup.threads", Entry::File(threads)),
    ("cgroup.type", Entry::File(|_| String::from("domain\n"))),
    ("cpu.max", Entry::File(cpu_max)),
    ("cpu.weight", Entry::File(|_| String::from("100\n"))),
    ("cpuset.cpus.effective", Entry::File(processor_list)),
    ("cpuset.mems.effective", Entry::File(|_| String::from("0\n"))),
    ("memory.current", Entry::File(memory_current)),
    ("memory.high", Entry::File(|_| String::from("max\n"))),
    ("memory.low", Entry::File(|_| String::from("0\n"))),
    ("memory.max", Entry::File(memory_max)),
    ("memory.min", Entry::File(|_| String::from("0\n"))),
    ("memory.swap.current", Entry::File(|_| String::from("0\n"))),
    ("memory.swap.max", Entry::File(|_| String::from("0\n"))),
    ("pids.current", Entry::File(pids_current)),
    ("pids.max", Entry::File(|_| String::from("max\n"))),
];

/// The cgroup filesystem: one group, the machine.
pub fn cgroupfs() -> Arc<GeneratedFs> {
    GeneratedFs::new(Entry::Directory(CGROUP), "cgroup2", CGROUP2_MAGIC)
}
