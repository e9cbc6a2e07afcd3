//! `/proc/sys`: the kernel's settings as a generated tree. Root may write
//! the ones Linux lets it change (mode 0644): the names, the System V IPC
//! limits the IPC calls enforce, the network's settings
//! (`net::settings`), and the settings below, which are kept and
//! reported.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::fs::generated::{self, Entry, GeneratedNode};
use crate::linux::UTSNAME;
use crate::net::settings::{
    Number, RMEM_DEFAULT, RMEM_MAX, SOMAXCONN, WMEM_DEFAULT, WMEM_MAX, local_port_range, set_local_port_range,
};
use crate::syscall::ipc_limits::{self, Limit};
use crate::vfs::{Caller, FsError};

/// The inode number of `/proc/sys`; its tree follows.
pub const FIRST_INODE: u64 = 100;

/// The most process ids (`PID_MAX_LIMIT` on 64-bit machines).
const PID_MAX_LIMIT: u64 = 4_194_304;
/// The fewest process ids `kernel.pid_max` takes (`RESERVED_PIDS + 1`).
const PID_MAX_MINIMUM: u64 = 301;
/// `INT_MAX`, the bound of settings Linux keeps in an `int`.
const INT_MAX: u64 = i32::MAX as u64;

/// A number root may set within a range, kept for whoever reads it.
pub struct Setting {
    value: AtomicU64,
    minimum: u64,
    maximum: u64,
}

impl Setting {
    const fn new(value: u64, minimum: u64, maximum: u64) -> Self {
        Setting { value: AtomicU64::new(value), minimum, maximum }
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    fn set(&self, value: u64) -> Result<(), FsError> {
        if !(self.minimum..=self.maximum).contains(&value) {
            return Err(FsError::InvalidArgument);
        }
        self.value.store(value, Ordering::Relaxed);
        Ok(())
    }
}

/// `kernel.pid_max`: the highest process id, plus one.
pub static PID_MAX: Setting = Setting::new(PID_MAX_LIMIT, PID_MAX_MINIMUM, PID_MAX_LIMIT);
/// `vm.overcommit_memory`: 0 heuristic, 1 always, 2 never.
pub static OVERCOMMIT_MEMORY: Setting = Setting::new(0, 0, 2);
/// `vm.overcommit_ratio`: the percentage of RAM mode 2 commits.
pub static OVERCOMMIT_RATIO: Setting = Setting::new(50, 0, INT_MAX);
/// `vm.max_map_count`: the most mappings of a process.
pub static MAX_MAP_COUNT: Setting = Setting::new(65530, 0, INT_MAX);
/// `fs.file-max`: the most open files of the machine.
pub static FILE_MAX: Setting = Setting::new(crate::process::NR_OPEN, 0, i64::MAX as u64);
/// `fs.nr_open`: the highest `RLIMIT_NOFILE`; from a word's bits up to
/// `INT_MAX` rounded down to them.
pub static NR_OPEN: Setting = Setting::new(crate::process::NR_OPEN, 64, INT_MAX & !63);

fn line(value: impl core::fmt::Display) -> String {
    format!("{value}\n")
}

/// The numbers written to a setting, as Linux's `proc_dointvec` reads
/// them: separated by white space, each optionally negative.
fn numbers(text: &str) -> Result<Vec<i64>, FsError> {
    text.split_whitespace().map(|word| word.parse::<i64>().map_err(|_| FsError::InvalidArgument)).collect()
}

/// The one non-negative number written.
fn number(text: &str) -> Result<u64, FsError> {
    match numbers(text)?.as_slice() {
        [value, ..] => u64::try_from(*value).map_err(|_| FsError::InvalidArgument),
        [] => Err(FsError::InvalidArgument),
    }
}

fn set_limit(limit: &Limit, text: &str) -> Result<(), FsError> {
    // Limits held in an unsigned long take any 64-bit value.
    let value = if limit.maximum() == u64::MAX {
        text.split_whitespace()
            .next()
            .and_then(|word| word.parse::<u64>().ok())
            .ok_or(FsError::InvalidArgument)?
    } else {
        number(text)?
    };
    if limit.set(value) { Ok(()) } else { Err(FsError::InvalidArgument) }
}

/// A name written to `hostname` or `domainname`: up to the first newline,
/// cut to the longest name, as Linux's `proc_dostring` does.
fn name_written(text: &str) -> &str {
    let name = text.split('\n').next().unwrap_or("");
    let mut end = name.len().min(crate::uts::NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The UTS namespace whose names `caller` sees (the kernel's: the
/// initial one).
fn uts_of(caller: &Caller<'_>) -> alloc::sync::Arc<crate::namespace::Namespace> {
    caller.process.map_or_else(crate::namespace::initial_uts, |process| process.namespaces().uts)
}

/// Writes the host (or, with `is_domain`, domain) name of the caller's
/// UTS namespace.
fn set_name(caller: &Caller<'_>, text: &str, is_domain: bool) -> Result<(), FsError> {
    let uts = uts_of(caller);
    let names = uts.names().ok_or(FsError::InvalidArgument)?;
    let name = name_written(text);
    let set = if is_domain { names.set_domain_name(name) } else { names.set_host_name(name) };
    set.map_err(|_| FsError::InvalidArgument)
}

/// `kernel.sem`: SEMMSL, SEMMNS, SEMOPM and SEMMNI, as many as written.
/// As on Linux, a SEMMNI out of range keeps its old value, fails with
/// `ERANGE` and leaves the others written.
fn set_semaphore_limits(_: &Caller<'_>, text: &str) -> Result<(), FsError> {
    use crate::syscall::ipc_limits::{SEMMNI, SEMMNS, SEMMSL, SEMOPM};
    let values = numbers(text)?;
    let values: Vec<u64> = values
        .iter()
        .take(4)
        .map(|&value| {
            u64::try_from(value).ok().filter(|&value| value <= INT_MAX).ok_or(FsError::InvalidArgument)
        })
        .collect::<Result<_, _>>()?;
    let mut result = Ok(());
    for (&value, limit) in values.iter().zip([&SEMMSL, &SEMMNS, &SEMOPM, &SEMMNI]) {
        if !limit.set(value) {
            result = Err(FsError::Errno(crate::errno::Errno::ERANGE));
        }
    }
    result
}

/// Sixteen random bytes as a version-4 UUID.
fn uuid(bytes: [u8; 16]) -> String {
    let mut bytes = bytes;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}\n", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn random_bytes(caller: &Caller<'_>) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    match caller.process {
        Some(process) => {
            let mut random = process.random.lock();
            random.mix_hardware(caller.machine);
            random.fill(&mut bytes);
        }
        None => {
            for chunk in bytes.chunks_mut(8) {
                let value = caller.machine.hardware_random().unwrap_or(caller.machine.monotonic_ns());
                chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
            }
        }
    }
    bytes
}

/// `boot_id`: drawn once per boot.
static BOOT_ID: spin::Mutex<Option<[u8; 16]>> = spin::Mutex::new(None);

/// `boot_id`: the instance id the host gave a VM restored from a snapshot,
/// else drawn once per boot.
fn boot_id(caller: &Caller<'_>) -> String {
    if let Some(instance_id) = crate::restore::instance_id() {
        return uuid(instance_id);
    }
    let mut boot_id = BOOT_ID.lock();
    let bytes = *boot_id.get_or_insert_with(|| random_bytes(caller));
    uuid(bytes)
}

const RANDOM: &[(&str, Entry)] = &[
    ("boot_id", Entry::File(boot_id)),
    ("entropy_avail", Entry::File(|_| line(256))),
    ("poolsize", Entry::File(|_| line(256))),
    ("uuid", Entry::File(|caller| uuid(random_bytes(caller)))),
];

/// `kernel.sem`: the most semaphores per set, in all, per `semop` call,
/// and sets.
fn semaphore_limits(_: &Caller<'_>) -> String {
    use crate::syscall::ipc_limits::{SEMMNI, SEMMNS, SEMMSL, SEMOPM};
    format!("{}\t{}\t{}\t{}\n", SEMMSL.get(), SEMMNS.get(), SEMOPM.get(), SEMMNI.get())
}

const KERNEL: &[(&str, Entry)] = &[
    ("cap_last_cap", Entry::File(|_| line(crate::credentials::capability::LAST))),
    // Empty, as Linux reports it when crashes leave no core file: rosv
    // writes none.
    ("core_pattern", Entry::File(|_| line(""))),
    (
        "domainname",
        Entry::Setting(
            |caller| line(uts_of(caller).names().map(|names| names.domain_name()).unwrap_or_default()),
            |caller, text| set_name(caller, text, true),
        ),
    ),
    (
        "hostname",
        Entry::Setting(
            |caller| line(uts_of(caller).names().map(|names| names.host_name()).unwrap_or_default()),
            |caller, text| set_name(caller, text, false),
        ),
    ),
    (
        "msgmax",
        Entry::Setting(|_| line(ipc_limits::MSGMAX.get()), |_, text| set_limit(&ipc_limits::MSGMAX, text)),
    ),
    (
        "msgmnb",
        Entry::Setting(|_| line(ipc_limits::MSGMNB.get()), |_, text| set_limit(&ipc_limits::MSGMNB, text)),
    ),
    (
        "msgmni",
        Entry::Setting(|_| line(ipc_limits::MSGMNI.get()), |_, text| set_limit(&ipc_limits::MSGMNI, text)),
    ),
    ("ngroups_max", Entry::File(|_| line(crate::credentials::GROUPS_MAX))),
    ("osrelease", Entry::File(|_| line(UTSNAME[2]))),
    ("ostype", Entry::File(|_| line(UTSNAME[0]))),
    ("overflowgid", Entry::File(|_| line(65534))),
    ("overflowuid", Entry::File(|_| line(65534))),
    ("pid_max", Entry::Setting(|_| line(PID_MAX.get()), |_, text| PID_MAX.set(number(text)?))),
    ("random", Entry::Directory(RANDOM)),
    ("sem", Entry::Setting(semaphore_limits, set_semaphore_limits)),
    (
        "shmall",
        Entry::Setting(|_| line(ipc_limits::SHMALL.get()), |_, text| set_limit(&ipc_limits::SHMALL, text)),
    ),
    (
        "shmmax",
        Entry::Setting(|_| line(ipc_limits::SHMMAX.get()), |_, text| set_limit(&ipc_limits::SHMMAX, text)),
    ),
    (
        "shmmni",
        Entry::Setting(|_| line(ipc_limits::SHMMNI.get()), |_, text| set_limit(&ipc_limits::SHMMNI, text)),
    ),
    // No module is ever loaded and nothing taints the kernel.
    ("tainted", Entry::File(|_| line(0))),
    // A thread's stacks take 128 KiB of RAM.
    ("threads-max", Entry::File(|_| line(crate::pages::figures().total_bytes / (128 << 10)))),
    ("version", Entry::File(|_| line(UTSNAME[3]))),
    ("yama", Entry::Directory(YAMA)),
];

/// Yama's `ptrace_scope` 0: a process may trace any other of its user
/// (Linux's own access check still applies).
const YAMA: &[(&str, Entry)] = &[("ptrace_scope", Entry::File(|_| line(0)))];

const VIRTUAL_MEMORY: &[(&str, Entry)] = &[
    (
        "max_map_count",
        Entry::Setting(|_| line(MAX_MAP_COUNT.get()), |_, text| MAX_MAP_COUNT.set(number(text)?)),
    ),
    // 0: the kernel refuses what its heuristic judges can never fit, as
    // Linux's default does (a writable mapping larger than all RAM).
    (
        "overcommit_memory",
        Entry::Setting(|_| line(OVERCOMMIT_MEMORY.get()), |_, text| OVERCOMMIT_MEMORY.set(number(text)?)),
    ),
    (
        "overcommit_ratio",
        Entry::Setting(|_| line(OVERCOMMIT_RATIO.get()), |_, text| OVERCOMMIT_RATIO.set(number(text)?)),
    ),
];

const INOTIFY: &[(&str, Entry)] =
    &[("max_queued_events", Entry::File(|_| line(crate::vfs::notify::QUEUE_MAX)))];

const FILESYSTEMS: &[(&str, Entry)] = &[
    ("file-max", Entry::Setting(|_| line(FILE_MAX.get()), |_, text| FILE_MAX.set(number(text)?))),
    ("inotify", Entry::Directory(INOTIFY)),
    ("nr_open", Entry::Setting(|_| line(NR_OPEN.get()), |_, text| NR_OPEN.set(number(text)?))),
    (
        "pipe-max-size",
        Entry::Setting(
            |_| line(crate::vfs::pipe::max_size()),
            |_, text| crate::vfs::pipe::set_max_size(number(text)?),
        ),
    ),
];

/// A network setting root may change.
fn net_number(setting: &Number, text: &str) -> Result<(), FsError> {
    match numbers(text)?.as_slice() {
        [value, ..] => setting.set(*value).map_err(|_| FsError::InvalidArgument),
        [] => Err(FsError::InvalidArgument),
    }
}

const NET_CORE: &[(&str, Entry)] = &[
    ("rmem_default", Entry::Setting(|_| line(RMEM_DEFAULT.get()), |_, text| net_number(&RMEM_DEFAULT, text))),
    ("rmem_max", Entry::Setting(|_| line(RMEM_MAX.get()), |_, text| net_number(&RMEM_MAX, text))),
    ("somaxconn", Entry::Setting(|_| line(SOMAXCONN.get()), |_, text| net_number(&SOMAXCONN, text))),
    ("wmem_default", Entry::Setting(|_| line(WMEM_DEFAULT.get()), |_, text| net_number(&WMEM_DEFAULT, text))),
    ("wmem_max", Entry::Setting(|_| line(WMEM_MAX.get()), |_, text| net_number(&WMEM_MAX, text))),
];

/// What the stack does, as Linux's TCP settings say it: smoltcp scales
/// windows and offers and sends selective acknowledgements, but sends no
/// timestamps and no SYN cookies; `TCP_LINGER2` reads back 60 s. The
/// buffer triples (least, default, most) are Linux's defaults.
const NET_IPV4: &[(&str, Entry)] = &[
    (
        "ip_local_port_range",
        Entry::Setting(
            |_| {
                let range = local_port_range();
                format!("{}\t{}\n", range.start(), range.end())
            },
            |_, text| match numbers(text)?.as_slice() {
                [first, last, ..] => {
                    set_local_port_range(*first, *last).map_err(|_| FsError::InvalidArgument)
                }
                _ => Err(FsError::InvalidArgument),
            },
        ),
    ),
    ("tcp_fin_timeout", Entry::File(|_| line(60))),
    ("tcp_rmem", Entry::File(|_| String::from("4096\t131072\t6291456\n"))),
    ("tcp_sack", Entry::File(|_| line(1))),
    ("tcp_syncookies", Entry::File(|_| line(0))),
    ("tcp_timestamps", Entry::File(|_| line(0))),
    ("tcp_window_scaling", Entry::File(|_| line(1))),
    ("tcp_wmem", Entry::File(|_| String::from("4096\t16384\t4194304\n"))),
];
const NET: &[(&str, Entry)] = &[("core", Entry::Directory(NET_CORE)), ("ipv4", Entry::Directory(NET_IPV4))];

const SETTINGS: &[(&str, Entry)] = &[
    ("fs", Entry::Directory(FILESYSTEMS)),
    ("kernel", Entry::Directory(KERNEL)),
    ("net", Entry::Directory(NET)),
    ("vm", Entry::Directory(VIRTUAL_MEMORY)),
];

/// The nodes of `/proc/sys`.
pub fn tree() -> Arc<GeneratedNode> {
    generated::tree(Entry::Directory(SETTINGS), FIRST_INODE)
}
