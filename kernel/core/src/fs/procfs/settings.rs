//! `/proc/sys`: the kernel's settings, read-only, as a generated tree.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use crate::fs::generated::{self, Entry, GeneratedNode};
use crate::linux::UTSNAME;
use crate::vfs::Caller;

/// The inode number of `/proc/sys`; its tree follows.
pub const FIRST_INODE: u64 = 100;

/// The highest process id (Linux's default `kernel.pid_max`).
const PID_MAX: u64 = 4_194_304;

fn line(value: impl core::fmt::Display) -> String {
    format!("{value}\n")
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
    use crate::syscall::ipc_limits::{SEMMNI, SEMMSL, SEMOPM};
    format!("{}\t{}\t{}\t{}\n", SEMMSL, SEMMSL * SEMMNI as u64, SEMOPM, SEMMNI)
}

const KERNEL: &[(&str, Entry)] = &[
    ("cap_last_cap", Entry::File(|_| line(crate::credentials::capability::LAST))),
    // Empty, as Linux reports it when crashes leave no core file: rosv
    // writes none.
    ("core_pattern", Entry::File(|_| line(""))),
    ("domainname", Entry::File(|_| line(crate::uts::domain_name()))),
    ("hostname", Entry::File(|_| line(crate::uts::host_name()))),
    ("msgmax", Entry::File(|_| line(crate::syscall::ipc_limits::MSGMAX))),
    ("msgmnb", Entry::File(|_| line(crate::syscall::ipc_limits::MSGMNB))),
    ("msgmni", Entry::File(|_| line(crate::syscall::ipc_limits::MSGMNI))),
    ("ngroups_max", Entry::File(|_| line(crate::credentials::GROUPS_MAX))),
    ("osrelease", Entry::File(|_| line(UTSNAME[2]))),
    ("ostype", Entry::File(|_| line(UTSNAME[0]))),
    ("overflowgid", Entry::File(|_| line(65534))),
    ("overflowuid", Entry::File(|_| line(65534))),
    ("pid_max", Entry::File(|_| line(PID_MAX))),
    ("random", Entry::Directory(RANDOM)),
    ("sem", Entry::File(semaphore_limits)),
    ("shmall", Entry::File(|_| line(crate::syscall::ipc_limits::SHMALL))),
    ("shmmax", Entry::File(|_| line(crate::syscall::ipc_limits::SHMMAX))),
    ("shmmni", Entry::File(|_| line(crate::syscall::ipc_limits::SHMMNI))),
    // No module is ever loaded and nothing taints the kernel.
    ("tainted", Entry::File(|_| line(0))),
    // A thread's stacks take 128 KiB of RAM.
    ("threads-max", Entry::File(|_| line(crate::pages::figures().total_bytes / (128 << 10)))),
    ("version", Entry::File(|_| line(UTSNAME[3]))),
];

const VIRTUAL_MEMORY: &[(&str, Entry)] = &[
    ("max_map_count", Entry::File(|_| line(65530))),
    // 0: the kernel refuses what its heuristic judges can never fit, as
    // Linux's default does (a writable mapping larger than all RAM).
    ("overcommit_memory", Entry::File(|_| line(0))),
    ("overcommit_ratio", Entry::File(|_| line(50))),
];

const INOTIFY: &[(&str, Entry)] =
    &[("max_queued_events", Entry::File(|_| line(crate::vfs::notify::QUEUE_MAX)))];

const FILESYSTEMS: &[(&str, Entry)] = &[
    ("file-max", Entry::File(|_| line(crate::process::NR_OPEN))),
    ("inotify", Entry::Directory(INOTIFY)),
    ("nr_open", Entry::File(|_| line(crate::process::NR_OPEN))),
    ("pipe-max-size", Entry::File(|_| line(crate::vfs::pipe::PIPE_MAX_SIZE))),
];

const NET_CORE: &[(&str, Entry)] = &[("somaxconn", Entry::File(|_| line(4096)))];
const NET: &[(&str, Entry)] = &[("core", Entry::Directory(NET_CORE))];

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
