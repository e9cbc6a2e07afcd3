//! What the process used and what the machine has: `times`, `getrusage`,
//! `sysinfo`.

use super::{Context, Result};
use crate::errno::Errno;
use crate::process::{CpuTime, IoCounters};
use crate::user::User;

/// Clock ticks per second as `times` counts them (Linux's `USER_HZ`).
const TICKS_PER_SECOND: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / TICKS_PER_SECOND;

/// `times`: the process's user and system time and its reaped children's,
/// in clock ticks, and the ticks since boot.
pub(super) fn times(context: Context<'_>, address: u64) -> Result {
    if address != 0 {
        let own = context.process.cpu_time();
        let children = context.process.accounts.reaped_children().cpu;
        let mut bytes = [0u8; 32];
        let fields = [own.user_ns, own.system_ns, children.user_ns, children.system_ns];
        for (slot, ns) in bytes.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&(ns / NS_PER_TICK).to_le_bytes());
        }
        User::new(context.machine).write_bytes(address, &bytes)?;
    }
    Ok(context.machine.monotonic_ns() / NS_PER_TICK)
}

/// `getrusage` targets.
const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

/// Size of `struct rusage`.
const RUSAGE_SIZE: usize = 144;

/// A `struct rusage` with user and system time `cpu`, blocks read and
/// written from `io` (in 512-byte units, as Linux counts them), and
/// `switches` (voluntary, involuntary).
pub(super) fn encode_usage(cpu: CpuTime, io: IoCounters, switches: (u64, u64)) -> [u8; RUSAGE_SIZE] {
    let mut bytes = [0u8; RUSAGE_SIZE];
    let mut timeval = |offset: usize, ns: u64| {
        let microseconds = ns / 1000;
        bytes[offset..offset + 8].copy_from_slice(&(microseconds / 1_000_000).to_le_bytes());
        bytes[offset + 8..offset + 16].copy_from_slice(&(microseconds % 1_000_000).to_le_bytes());
    };
    timeval(0, cpu.user_ns);
    timeval(16, cpu.system_ns);
    // ru_inblock and ru_oublock.
    bytes[88..96].copy_from_slice(&(io.read_bytes / 512).to_le_bytes());
    bytes[96..104].copy_from_slice(&(io.write_bytes / 512).to_le_bytes());
    // ru_nvcsw and ru_nivcsw, the last two fields.
    bytes[128..136].copy_from_slice(&switches.0.to_le_bytes());
    bytes[136..144].copy_from_slice(&switches.1.to_le_bytes());
    bytes
}

/// `getrusage`: user and system time, blocks and context switches of the
/// process (its live and ended threads), of the calling thread, or of the
/// reaped children; as the largest resident set the memory in use now
/// outside the kernel heap (one process owns the machine's memory). Faults
/// are not counted.
pub(super) fn getrusage(context: Context<'_>, who: u64, address: u64) -> Result {
    let threads = match who as i32 {
        RUSAGE_SELF => context.process.threads(),
        RUSAGE_THREAD => alloc::vec![context.thread.clone()],
        RUSAGE_CHILDREN => alloc::vec::Vec::new(),
        _ => return Err(Errno::EINVAL.into()),
    };
    let (cpu, io) = match who as i32 {
        RUSAGE_SELF => (context.process.cpu_time(), context.process.io_counters()),
        RUSAGE_CHILDREN => {
            let children = context.process.accounts.reaped_children();
            (children.cpu, children.io)
        }
        _ => (
            context.thread.control().map_or_else(CpuTime::default, |control| CpuTime::of(&*control)),
            context.thread.io.snapshot(),
        ),
    };
    let switches = threads
        .iter()
        .filter_map(|thread| thread.control())
        .map(|control| control.context_switches())
        .fold((0, 0), |(voluntary, involuntary), (more, others)| (voluntary + more, involuntary + others));
    let mut bytes = encode_usage(cpu, io, switches);
    if who as i32 != RUSAGE_CHILDREN {
        let figures = crate::pages::figures();
        let used = figures.total_bytes.saturating_sub(figures.free_bytes).saturating_sub(figures.heap_bytes);
        bytes[32..40].copy_from_slice(&(used / 1024).to_le_bytes());
    }
    User::new(context.machine).write_bytes(address, &bytes)?;
    Ok(0)
}

/// `sysinfo`: uptime, the frame allocator's RAM figures (in bytes), no
/// swap, no load averages, and the number of threads.
pub(super) fn sysinfo(context: Context<'_>, address: u64) -> Result {
    let figures = crate::pages::figures();
    let mut bytes = [0u8; 112];
    let uptime_seconds = context.machine.monotonic_ns() / 1_000_000_000;
    bytes[..8].copy_from_slice(&uptime_seconds.to_le_bytes());
    bytes[32..40].copy_from_slice(&figures.total_bytes.to_le_bytes());
    bytes[40..48].copy_from_slice(&figures.available_bytes().to_le_bytes());
    let threads = u16::try_from(context.process.thread_count()).unwrap_or(u16::MAX);
    bytes[80..82].copy_from_slice(&threads.to_le_bytes());
    bytes[104..108].copy_from_slice(&1u32.to_le_bytes());
    User::new(context.machine).write_bytes(address, &bytes)?;
    Ok(0)
}

/// `SIGXFSZ`.
const SIGXFSZ: u8 = 25;

/// How many of `wanted` bytes a write to the regular file `file` at
/// `start` (its offset, or its end with `O_APPEND`, when `None`) may
/// write under `RLIMIT_FSIZE`. None at all is `EFBIG`, after `SIGXFSZ`
/// to the writer, as on Linux. Other files are not limited.
pub(super) fn file_size_room(
    context: Context<'_>,
    file: &crate::vfs::OpenFile,
    start: Option<u64>,
    wanted: u64,
) -> core::result::Result<u64, super::Failure> {
    use crate::vfs::file::flags;
    let limit = context.process.state.lock().limits[crate::process::limit::FSIZE].current;
    if limit == crate::process::RLIM_INFINITY || wanted == 0 {
        return Ok(wanted);
    }
    let Some(location) =
        file.location().filter(|location| location.file_type() == crate::vfs::FileType::Regular)
    else {
        return Ok(wanted);
    };
    let start = match start {
        Some(start) => start,
        None if file.status_flags() & flags::O_APPEND != 0 => {
            let caller = super::files::caller(context);
            location.node.metadata(&caller).map(|metadata| metadata.size_bytes).unwrap_or(0)
        }
        None => file.offset(),
    };
    if start >= limit {
        exceeded(context);
        return Err(Errno::EFBIG.into());
    }
    Ok(wanted.min(limit - start))
}

/// A file would grow past `RLIMIT_FSIZE`: `SIGXFSZ` to the caller.
pub(super) fn exceeded(context: Context<'_>) {
    let _ = crate::signal::send(
        context.process,
        crate::signal::Target::Thread(context.thread),
        SIGXFSZ,
        crate::signal::SignalInfo::kernel(),
        None,
        crate::signal::Queueing::Always,
    );
}

/// Cuts `vectors` to `total` bytes.
pub(super) fn cut_vectors(vectors: &[(u64, u64)], total: u64) -> alloc::vec::Vec<(u64, u64)> {
    let mut left = total;
    let mut cut = alloc::vec::Vec::new();
    for &(base, length) in vectors {
        if left == 0 {
            break;
        }
        let taken = length.min(left);
        cut.push((base, taken));
        left -= taken;
    }
    cut
}

/// `syslog` actions (Linux `SYSLOG_ACTION_*`).
mod syslog_action {
    pub const CLOSE: u64 = 0;
    pub const OPEN: u64 = 1;
    pub const READ: u64 = 2;
    pub const READ_ALL: u64 = 3;
    pub const READ_CLEAR: u64 = 4;
    pub const CLEAR: u64 = 5;
    pub const CONSOLE_OFF: u64 = 6;
    pub const CONSOLE_ON: u64 = 7;
    pub const CONSOLE_LEVEL: u64 = 8;
    pub const SIZE_UNREAD: u64 = 9;
    pub const SIZE_BUFFER: u64 = 10;
}

/// The log's size as `syslog` reports it (the kernel's ring).
const LOG_BUFFER_BYTES: u64 = 16 * 1024;
/// Where `syslog`'s destructive reads and its clearing have got to, in
/// bytes since boot.
static LOG_READ: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static LOG_CLEARED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// `syslog`: reads the kernel's log ring. Reading everything and the
/// buffer's size are open to all (`dmesg_restrict` off); the rest needs
/// `CAP_SYSLOG` (or `CAP_SYS_ADMIN`). A destructive read waits for messages.
pub(super) fn syslog(context: Context<'_>, action: u64, buffer: u64, length: u64) -> Result {
    use core::sync::atomic::Ordering;
    use syslog_action as action_code;
    /// `CAP_SYSLOG`.
    const CAP_SYSLOG: u32 = 34;
    let is_root = {
        let credentials = &context.process.state.lock().credentials;
        credentials.has_capability(CAP_SYSLOG)
            || credentials.has_capability(crate::credentials::capability::SYS_ADMIN)
    };
    if !is_root && !matches!(action, action_code::READ_ALL | action_code::SIZE_BUFFER) {
        return Err(Errno::EPERM.into());
    }
    let length = length as i32;
    match action {
        action_code::CLOSE | action_code::OPEN | action_code::CONSOLE_OFF | action_code::CONSOLE_ON => Ok(0),
        action_code::CONSOLE_LEVEL if (1..=8).contains(&length) => Ok(0),
        action_code::CONSOLE_LEVEL => Err(Errno::EINVAL.into()),
        action_code::SIZE_BUFFER => Ok(LOG_BUFFER_BYTES),
        action_code::SIZE_UNREAD => {
            let (unread, _) = context.machine.kernel_log(LOG_READ.load(Ordering::Relaxed));
            Ok(unread.len() as u64)
        }
        action_code::CLEAR => {
            LOG_CLEARED.store(context.machine.kernel_log(u64::MAX).1, Ordering::Relaxed);
            Ok(0)
        }
        action_code::READ | action_code::READ_ALL | action_code::READ_CLEAR => {
            if buffer == 0 || length < 0 {
                return Err(Errno::EINVAL.into());
            }
            if length == 0 {
                return Ok(0);
            }
            let (text, total) = if action == action_code::READ {
                loop {
                    let since = LOG_READ.load(Ordering::Relaxed);
                    let (text, total) = context.machine.kernel_log(since);
                    if !text.is_empty() {
                        break (text, total);
                    }
                    super::threads::sleep_until(context, context.machine.monotonic_ns() + 100_000_000)
                        .map_err(|_| super::Failure::RestartUnlessHandled)?;
                }
            } else {
                context.machine.kernel_log(LOG_CLEARED.load(Ordering::Relaxed))
            };
            // A destructive read takes the oldest; the others the newest.
            let taken = if action == action_code::READ {
                let taken = &text[..text.len().min(length as usize)];
                LOG_READ.store(total - (text.len() - taken.len()) as u64, Ordering::Relaxed);
                taken
            } else {
                &text[text.len().saturating_sub(length as usize)..]
            };
            User::new(context.machine).write_bytes(buffer, taken)?;
            if action == action_code::READ_CLEAR {
                LOG_CLEARED.store(total, Ordering::Relaxed);
            }
            Ok(taken.len() as u64)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}
