//! Event notification: eventfd, eventfd2, and the epoll calls
//! (epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
//! epoll_pwait2).
//!
//! The objects live in [`crate::vfs::eventfd`] and [`crate::vfs::epoll`];
//! here are the argument checks, in the order Linux makes them, so that a
//! call with several faults fails with Linux's error. `epoll_wait` waits
//! as `poll` does ([`super::poll`]): a signal ends it with `EINTR`, never
//! restarted. `epoll_pwait` and `epoll_pwait2` wait with the signal mask
//! they are given, as `ppoll` does.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::files::file;
use super::paths::install;
use super::poll::{milliseconds_deadline, timespec_deadline, wait_until_ready};
use super::signals::with_wait_mask;
use super::{Context, Result};
use crate::errno::Errno;
use crate::memory::APPLICATION_END;
use crate::user::User;
use crate::vfs::epoll::{EpollEvent, Operation, epoll_of, flags as epoll_flags};
use crate::vfs::file::flags;
use crate::vfs::waiters::events::{POLLERR, POLLHUP, POLLIN, POLLOUT};
use crate::vfs::{Epoll, EventCounter, FileObject, OpenFile};

/// `eventfd2` flags (Linux `include/linux/eventfd.h`).
const EFD_SEMAPHORE: u64 = 1;
const EFD_NONBLOCK: u64 = flags::O_NONBLOCK as u64;
const EFD_CLOEXEC: u64 = flags::O_CLOEXEC as u64;

/// `epoll_create1` flags and `epoll_ctl` operations.
const EPOLL_CLOEXEC: u64 = flags::O_CLOEXEC as u64;
const EPOLL_CTL_ADD: u64 = 1;
const EPOLL_CTL_DEL: u64 = 2;
const EPOLL_CTL_MOD: u64 = 3;
/// The most events one wait may ask for (`EP_MAX_EVENTS`).
const EVENTS_MAX: u64 = i32::MAX as u64 / EpollEvent::SIZE_BYTES as u64;
/// What an `EPOLLEXCLUSIVE` interest may ask for besides
/// (`EPOLLEXCLUSIVE_OK_BITS`).
const EXCLUSIVE_ALLOWED: u32 = (POLLIN | POLLOUT | POLLERR | POLLHUP) as u32
    | epoll_flags::EPOLLWAKEUP
    | epoll_flags::EPOLLET
    | epoll_flags::EPOLLEXCLUSIVE;

/// `eventfd2` (and `eventfd`, which passes no flags): a counter starting
/// at the `unsigned int` `initial`.
pub(super) fn eventfd2(context: Context<'_>, initial: u64, event_flags: u64) -> Result {
    if event_flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let counter = EventCounter::new(u64::from(initial as u32), event_flags & EFD_SEMAPHORE != 0);
    let status = flags::O_RDWR | (event_flags & EFD_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(counter as Arc<_>), status);
    install(context, file, event_flags & EFD_CLOEXEC != 0)
}

/// `epoll_create`: the size is a hint from older days, but must be
/// positive.
pub(super) fn epoll_create(context: Context<'_>, size: u64) -> Result {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    epoll_create1(context, 0)
}

pub(super) fn epoll_create1(context: Context<'_>, create_flags: u64) -> Result {
    if create_flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL.into());
    }
    let file = OpenFile::new(FileObject::Special(Epoll::new() as Arc<_>), flags::O_RDWR);
    install(context, file, create_flags & EPOLL_CLOEXEC != 0)
}

/// The open file of `fd`, which must not be an `O_PATH` descriptor.
fn open_file(context: Context<'_>, fd: u64) -> core::result::Result<Arc<OpenFile>, Errno> {
    let file = file(context, fd)?;
    if file.is_path_only() { Err(Errno::EBADF) } else { Ok(file) }
}

pub(super) fn epoll_ctl(context: Context<'_>, epfd: u64, operation: u64, fd: u64, address: u64) -> Result {
    let has_event = operation != EPOLL_CTL_DEL;
    let mut event = EpollEvent::default();
    if has_event {
        let mut bytes = [0u8; EpollEvent::SIZE_BYTES];
        User::new(context.machine).read_into(address, &mut bytes)?;
        event = EpollEvent::decode(&bytes);
    }
    let epoll_file = open_file(context, epfd)?;
    let file = open_file(context, fd)?;
    if !file.is_pollable() {
        return Err(Errno::EPERM.into());
    }
    let epoll = epoll_of(&epoll_file).filter(|_| !Arc::ptr_eq(&epoll_file, &file)).ok_or(Errno::EINVAL)?;
    if has_event && event.events & epoll_flags::EPOLLEXCLUSIVE != 0 {
        let is_refused = operation == EPOLL_CTL_MOD
            || (operation == EPOLL_CTL_ADD
                && (epoll_of(&file).is_some() || event.events & !EXCLUSIVE_ALLOWED != 0));
        if is_refused {
            return Err(Errno::EINVAL.into());
        }
    }
    let operation = match operation {
        EPOLL_CTL_ADD => Operation::Add,
        EPOLL_CTL_MOD => Operation::Modify,
        EPOLL_CTL_DEL => Operation::Delete,
        _ => return Err(Errno::EINVAL.into()),
    };
    epoll.control(operation, fd as i32, &file, event)?;
    Ok(0)
}

/// Waits for events of instance `epfd` until the monotonic `deadline_ns`
/// and stores up to `count` of them at `address`.
fn wait(context: Context<'_>, epfd: u64, address: u64, count: u64, deadline_ns: Option<u64>) -> Result {
    let count = u64::try_from(count as i32).ok().filter(|count| (1..=EVENTS_MAX).contains(count));
    let count = count.ok_or(Errno::EINVAL)? as usize;
    let end = address.checked_add((count * EpollEvent::SIZE_BYTES) as u64);
    if end.is_none_or(|end| end > APPLICATION_END) {
        return Err(Errno::EFAULT.into());
    }
    let epoll_file = open_file(context, epfd)?;
    let epoll = epoll_of(&epoll_file).ok_or(Errno::EINVAL)?;
    let mut ready: Vec<EpollEvent> = Vec::new();
    wait_until_ready(context, core::slice::from_ref(&epoll_file), deadline_ns, || {
        ready = epoll.take_ready(count);
        Ok(ready.len() as u64)
    })?;
    // Like Linux, hand back the events stored before a fault; the events
    // taken but not stored are lost (edge-triggered and one-shot reports).
    let user = User::new(context.machine);
    for (index, event) in ready.iter().enumerate() {
        let at = address + (index * EpollEvent::SIZE_BYTES) as u64;
        if user.write_bytes(at, &event.encode()).is_err() {
            return if index == 0 { Err(Errno::EFAULT.into()) } else { Ok(index as u64) };
        }
    }
    Ok(ready.len() as u64)
}

pub(super) fn epoll_wait(
    context: Context<'_>,
    epfd: u64,
    address: u64,
    count: u64,
    timeout_ms: u64,
) -> Result {
    wait(context, epfd, address, count, milliseconds_deadline(context, i64::from(timeout_ms as i32)))
}

pub(super) fn epoll_pwait(
    context: Context<'_>,
    epfd: u64,
    address: u64,
    count: u64,
    timeout_ms: u64,
    mask: [u64; 2],
) -> Result {
    with_wait_mask(context, mask[0], mask[1], || epoll_wait(context, epfd, address, count, timeout_ms))
}

/// `epoll_pwait2`: the timeout is a `struct timespec` (none: for ever).
pub(super) fn epoll_pwait2(
    context: Context<'_>,
    epfd: u64,
    address: u64,
    count: u64,
    timeout: u64,
    mask: [u64; 2],
) -> Result {
    let deadline = timespec_deadline(context, timeout)?;
    with_wait_mask(context, mask[0], mask[1], || wait(context, epfd, address, count, deadline))
}
