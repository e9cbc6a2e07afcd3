//! Waiting for descriptors: poll, ppoll, select, pselect6.
//!
//! Pipes and special files (eventfds, epoll instances) report their state;
//! every other object is always ready. A wait adds the thread to the
//! waiter list of each object involved, checks once more (a change may
//! have come in between) and blocks until one changes, the deadline passes
//! or a signal arrives (`EINTR`: these calls are not restarted, as on
//! Linux). `epoll_wait` waits the same way.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::files::file;
use super::signals::with_wait_mask;
use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::machine::Wakeup;
use crate::user::User;
use crate::vfs::OpenFile;
use crate::vfs::waiters::events::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

/// `poll` readiness of `file` among `requested` events.
fn revents(file: &OpenFile, requested: u16) -> u16 {
    file.poll() & (requested | POLLERR | POLLHUP)
}

/// Waits until `check` reports something ready, the monotonic `deadline`
/// passes or a signal comes; `files` are the objects whose changes wake
/// the thread.
pub(super) fn wait_until_ready(
    context: Context<'_>,
    files: &[Arc<OpenFile>],
    deadline_ns: Option<u64>,
    mut check: impl FnMut() -> core::result::Result<u64, Errno>,
) -> Result {
    let machine = context.machine;
    let me = machine.current_thread();
    loop {
        let ready = check()?;
        if ready > 0 || deadline_ns.is_some_and(|deadline| machine.monotonic_ns() >= deadline) {
            return Ok(ready);
        }
        for file in files {
            file.add_waiter(&me);
        }
        let ready = check();
        let is_ready = !matches!(ready, Ok(0));
        let stopped = !is_ready
            && (context.thread.has_deliverable_signal() || machine.block(deadline_ns) == Wakeup::Stop);
        for file in files {
            file.remove_waiter(&me);
        }
        if is_ready {
            return Ok(ready?);
        }
        if stopped {
            return Err(Errno::EINTR.into());
        }
    }
}

fn poll_until(context: Context<'_>, address: u64, count: u64, deadline_ns: Option<u64>) -> Result {
    let user = User::new(context.machine);
    if count > context.process.state.lock().descriptor_limit() as u64 {
        return Err(Errno::EINVAL.into());
    }
    let mut table = user.read_bytes(address, count as usize * 8)?;
    let entries: Vec<(i32, u16)> = table
        .chunks_exact(8)
        .map(|entry| {
            (
                i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]),
                u16::from_le_bytes([entry[4], entry[5]]),
            )
        })
        .collect();
    let files: Vec<Option<Arc<OpenFile>>> =
        entries.iter().map(|&(fd, _)| if fd < 0 { None } else { file(context, fd as u64).ok() }).collect();
    let waited: Vec<Arc<OpenFile>> = files.iter().flatten().cloned().collect();
    let ready = wait_until_ready(context, &waited, deadline_ns, || {
        let mut ready = 0;
        for (index, ((fd, events), file)) in entries.iter().zip(&files).enumerate() {
            let revents = match file {
                _ if *fd < 0 => 0,
                None => POLLNVAL,
                Some(file) => revents(file, *events),
            };
            table[index * 8 + 6..index * 8 + 8].copy_from_slice(&revents.to_le_bytes());
            ready += u64::from(revents != 0);
        }
        Ok(ready)
    })?;
    user.write_bytes(address, &table)?;
    Ok(ready)
}

/// The monotonic deadline a timeout in milliseconds sets (none when it
/// is negative: wait for ever).
pub(super) fn milliseconds_deadline(context: Context<'_>, timeout_ms: i64) -> Option<u64> {
    (timeout_ms >= 0).then(|| context.machine.monotonic_ns() + timeout_ms as u64 * 1_000_000)
}

pub(super) fn poll(context: Context<'_>, address: u64, count: u64, timeout_ms: i64) -> Result {
    poll_until(context, address, count, milliseconds_deadline(context, timeout_ms))
}

/// The monotonic deadline a `struct timespec` timeout at `address` sets
/// (none for a null pointer).
pub(super) fn timespec_deadline(
    context: Context<'_>,
    address: u64,
) -> core::result::Result<Option<u64>, Errno> {
    if address == 0 {
        return Ok(None);
    }
    let mut bytes = [0u8; 16];
    User::new(context.machine).read_into(address, &mut bytes)?;
    let timeout = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?;
    Ok(Some(context.machine.monotonic_ns().saturating_add(timeout.to_ns())))
}

/// `ppoll`: `poll` with a `struct timespec` timeout, into which the time
/// left is written back, and a signal mask to wait with.
pub(super) fn ppoll(
    context: Context<'_>,
    address: u64,
    count: u64,
    timeout: u64,
    [mask, set_size]: [u64; 2],
) -> Result {
    let deadline = timespec_deadline(context, timeout)?;
    let result = with_wait_mask(context, mask, set_size, || poll_until(context, address, count, deadline));
    write_time_left(context, timeout, deadline, TimeFormat::Timespec);
    result
}

/// How a timeout argument is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    /// `struct timespec`: seconds and nanoseconds.
    Timespec,
    /// `struct timeval`: seconds and microseconds.
    Timeval,
}

/// Writes the time left until `deadline_ns` into the timeout at `address`,
/// as Linux does for `select`, `pselect6` and `ppoll` (not for a zero
/// timeout, not for a thread whose personality has `STICKY_TIMEOUTS`, and
/// silently not where the timeout cannot be written).
fn write_time_left(context: Context<'_>, address: u64, deadline_ns: Option<u64>, format: TimeFormat) {
    const STICKY_TIMEOUTS: u32 = 0x400_0000;
    let Some(deadline) = deadline_ns.filter(|_| address != 0) else {
        return;
    };
    if context.thread.state.lock().personality & STICKY_TIMEOUTS != 0 {
        return;
    }
    let user = User::new(context.machine);
    let Ok(given) = user.read_bytes(address, 16) else {
        return;
    };
    if given.iter().all(|&byte| byte == 0) {
        return;
    }
    let left = Timespec::from_ns(deadline.saturating_sub(context.machine.monotonic_ns()));
    let fraction = match format {
        TimeFormat::Timespec => left.nanoseconds,
        TimeFormat::Timeval => left.nanoseconds / 1000,
    };
    let _ = user.write_u64(address, left.seconds as u64);
    let _ = user.write_u64(address + 8, fraction as u64);
}

/// The three descriptor sets of `select`.
struct Sets {
    read: Option<Vec<u8>>,
    write: Option<Vec<u8>>,
    except: Option<Vec<u8>>,
}

fn is_set(set: &Option<Vec<u8>>, fd: usize) -> bool {
    set.as_ref().is_some_and(|bytes| bytes[fd / 8] & (1 << (fd % 8)) != 0)
}

fn select_until(context: Context<'_>, count: u64, addresses: [u64; 3], deadline_ns: Option<u64>) -> Result {
    let count = usize::try_from(count as i32).map_err(|_| Errno::EINVAL)?;
    // Linux looks at no descriptor past its table's size (`max_fds`, a
    // multiple of the 64 bits of a word): a larger count is cut, the bits
    // beyond it are neither read nor written.
    let table_size = context.descriptors().with(|table| table.capacity()).next_multiple_of(64).max(64);
    let count = count.min(table_size);
    let user = User::new(context.machine);
    // fd_set is an array of longs: whole words are read and written.
    let length = count.div_ceil(64) * 8;
    let read_set = |address: u64| -> core::result::Result<Option<Vec<u8>>, Errno> {
        if address == 0 { Ok(None) } else { user.read_bytes(address, length).map(Some) }
    };
    let sets = Sets {
        read: read_set(addresses[0])?,
        write: read_set(addresses[1])?,
        except: read_set(addresses[2])?,
    };
    let mut files: Vec<(usize, Arc<OpenFile>)> = Vec::new();
    for fd in 0..count {
        if is_set(&sets.read, fd) || is_set(&sets.write, fd) || is_set(&sets.except, fd) {
            files.push((fd, file(context, fd as u64)?));
        }
    }
    let waited: Vec<Arc<OpenFile>> = files.iter().map(|(_, file)| file.clone()).collect();
    let mut results = [alloc::vec![0u8; length], alloc::vec![0u8; length]];
    let ready = wait_until_ready(context, &waited, deadline_ns, || {
        results = [alloc::vec![0u8; length], alloc::vec![0u8; length]];
        let mut ready = 0;
        for (fd, file) in &files {
            let state = file.poll();
            if is_set(&sets.read, *fd) && state & (POLLIN | POLLHUP | POLLERR) != 0 {
                results[0][fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
            if is_set(&sets.write, *fd) && state & (POLLOUT | POLLERR) != 0 {
                results[1][fd / 8] |= 1 << (fd % 8);
                ready += 1;
            }
        }
        Ok(ready)
    })?;
    for (address, result) in [(addresses[0], &results[0]), (addresses[1], &results[1])] {
        if address != 0 {
            user.write_bytes(address, result)?;
        }
    }
    if addresses[2] != 0 {
        // No object has exceptional conditions (out-of-band data).
        user.write_bytes(addresses[2], &alloc::vec![0u8; length])?;
    }
    Ok(ready)
}

/// `select`, which writes the time left back into its timeout.
pub(super) fn select(context: Context<'_>, count: u64, addresses: [u64; 3], timeout: u64) -> Result {
    let deadline = if timeout == 0 {
        None
    } else {
        let user = User::new(context.machine);
        let (seconds, microseconds) = (user.read_u64(timeout)? as i64, user.read_u64(timeout + 8)? as i64);
        if seconds < 0 || !(0..1_000_000).contains(&microseconds) {
            return Err(Errno::EINVAL.into());
        }
        let timeout_ns =
            (seconds as u64).saturating_mul(1_000_000_000).saturating_add(microseconds as u64 * 1000);
        Some(context.machine.monotonic_ns().saturating_add(timeout_ns))
    };
    let result = select_until(context, count, addresses, deadline);
    write_time_left(context, timeout, deadline, TimeFormat::Timeval);
    result
}

/// `pselect6`: `select` with a `struct timespec` timeout and, through
/// `mask_argument`, a pointer to a signal mask and its size.
pub(super) fn pselect6(
    context: Context<'_>,
    count: u64,
    addresses: [u64; 3],
    timeout: u64,
    mask_argument: u64,
) -> Result {
    let deadline = timespec_deadline(context, timeout)?;
    let [mask, set_size] = if mask_argument == 0 {
        [0, 0]
    } else {
        let user = User::new(context.machine);
        [user.read_u64(mask_argument)?, user.read_u64(mask_argument + 8)?]
    };
    let result =
        with_wait_mask(context, mask, set_size, || select_until(context, count, addresses, deadline));
    write_time_left(context, timeout, deadline, TimeFormat::Timespec);
    result
}
