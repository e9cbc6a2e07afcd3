//! POSIX timers, interval timers, `alarm` and timerfds.

use alloc::sync::Arc;

use super::time::{clock, named_clock};
use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::process::limit;
use crate::signal::SignalInfo;
use crate::timers::timerfd::TimerFile;
use crate::timers::{Clock, IntervalTimer, Notification, Setting, Timer};
use crate::user::User;

/// `sigev_notify` values (Linux `include/uapi/asm-generic/siginfo.h`).
mod notify {
    pub const SIGNAL: u32 = 0;
    pub const NONE: u32 = 1;
    /// The C library's own (a thread it starts); the kernel sends a signal.
    pub const THREAD: u32 = 2;
    pub const THREAD_ID: u32 = 4;
}

/// `TIMER_ABSTIME` and `TFD_TIMER_ABSTIME`.
const TIMER_ABSTIME: u64 = 1;
/// `TFD_TIMER_CANCEL_ON_SET`: an absolute wall-clock timerfd is cancelled
/// when the wall clock is set.
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;
/// `SIGALRM`: what a timer created without a `sigevent` sends.
const SIGALRM: u8 = 14;
/// Size of `struct sigevent`.
const SIGEVENT_SIZE: usize = 64;

const NS_PER_SECOND: u64 = 1_000_000_000;

/// Reads a `struct itimerspec`: (value, interval) in nanoseconds.
fn read_itimerspec(context: Context<'_>, address: u64) -> core::result::Result<(u64, u64), Errno> {
    let mut bytes = [0u8; 32];
    User::new(context.machine).read_into(address, &mut bytes)?;
    let decode = |half: &[u8]| half.try_into().ok().and_then(Timespec::decode).ok_or(Errno::EINVAL);
    let interval = decode(&bytes[..16])?.to_ns();
    let value = decode(&bytes[16..])?.to_ns();
    Ok((value, interval))
}

fn write_itimerspec(context: Context<'_>, address: u64, setting: Setting) -> core::result::Result<(), Errno> {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&Timespec::from_ns(setting.interval_ns).encode());
    bytes[16..].copy_from_slice(&Timespec::from_ns(setting.value_ns).encode());
    User::new(context.machine).write_bytes(address, &bytes)
}

/// `timer_create`: a timer on clock `clock_id` that notifies as the
/// `struct sigevent` at `event` says (`SIGALRM` with the timer's id for
/// none); writes its id at `id_address`.
pub(super) fn timer_create(context: Context<'_>, clock_id: u64, event: u64, id_address: u64) -> Result {
    let named = named_clock(context, clock_id)?;
    if !named.has_timers {
        return Err(Errno::EOPNOTSUPP.into());
    }
    let requested = if event == 0 {
        None
    } else {
        let mut bytes = [0u8; SIGEVENT_SIZE];
        User::new(context.machine).read_into(event, &mut bytes)?;
        let word = |offset: usize| {
            u32::from_le_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
        };
        let value = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| Errno::EINVAL)?);
        Some((value, word(8), word(12), word(16)))
    };
    let notification = |id: i32| match requested {
        None => Ok(Notification::Signal {
            signal: SIGALRM,
            thread: None,
            info: SignalInfo::timer(id, 0, id as u32 as u64),
            counts_overruns: true,
        }),
        Some((_, _, notify::NONE, _)) => Ok(Notification::None),
        Some((value, signal, how @ (notify::SIGNAL | notify::THREAD | notify::THREAD_ID), tid)) => {
            let signal = u8::try_from(signal)
                .ok()
                .filter(|signal| (1..=crate::process::SIGNAL_COUNT as u8).contains(signal))
                .ok_or(Errno::EINVAL)?;
            let thread = if how == notify::THREAD_ID {
                let tid = u64::from(tid);
                context.process.thread(tid).ok_or(Errno::EINVAL)?;
                Some(tid)
            } else {
                None
            };
            Ok(Notification::Signal {
                signal,
                thread,
                info: SignalInfo::timer(id, 0, value),
                counts_overruns: true,
            })
        }
        Some(_) => Err(Errno::EINVAL),
    };
    notification(0)?;
    let limit = context.process.state.lock().limits[limit::SIGPENDING].current;
    let timers = &context.process.timers;
    let clock = named.clock;
    let id =
        timers.add_posix(|id| Timer::new(clock, notification(id).unwrap_or(Notification::None)), limit)?;
    if let Err(errno) = User::new(context.machine).write_u32(id_address, id as u32) {
        let _ = timers.delete_posix(id);
        return Err(errno.into());
    }
    Ok(0)
}

fn posix_timer(context: Context<'_>, id: u64) -> core::result::Result<Arc<Timer>, Errno> {
    context.process.timers.posix(i32::try_from(id as i64).map_err(|_| Errno::EINVAL)?)
}

pub(super) fn timer_settime(context: Context<'_>, id: u64, flags: u64, new: u64, old: u64) -> Result {
    if new == 0 {
        return Err(Errno::EINVAL.into());
    }
    let (value, interval) = read_itimerspec(context, new)?;
    let timer = posix_timer(context, id)?;
    let previous = context.process.timers.arm(
        context.machine,
        context.process,
        &timer,
        value,
        flags & TIMER_ABSTIME != 0,
        interval,
    );
    if old != 0 {
        write_itimerspec(context, old, previous)?;
    }
    Ok(0)
}

pub(super) fn timer_gettime(context: Context<'_>, id: u64, address: u64) -> Result {
    let timer = posix_timer(context, id)?;
    write_itimerspec(context, address, timer.setting(context.machine, context.process))?;
    Ok(0)
}

pub(super) fn timer_getoverrun(context: Context<'_>, id: u64) -> Result {
    Ok(posix_timer(context, id)?.last_overrun() as u64)
}

pub(super) fn timer_delete(context: Context<'_>, id: u64) -> Result {
    context.process.timers.delete_posix(i32::try_from(id as i64).map_err(|_| Errno::EINVAL)?)?;
    Ok(0)
}

fn interval_timer(which: u64) -> core::result::Result<IntervalTimer, Errno> {
    match which {
        0 => Ok(IntervalTimer::Real),
        1 => Ok(IntervalTimer::Virtual),
        2 => Ok(IntervalTimer::Profiling),
        _ => Err(Errno::EINVAL),
    }
}

/// A `struct timeval` in nanoseconds; `EINVAL` for a negative time or
/// microseconds out of range.
fn timeval_ns(bytes: &[u8]) -> core::result::Result<u64, Errno> {
    let seconds = i64::from_le_bytes(bytes[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let microseconds = i64::from_le_bytes(bytes[8..16].try_into().map_err(|_| Errno::EINVAL)?);
    if seconds < 0 || !(0..1_000_000).contains(&microseconds) {
        return Err(Errno::EINVAL);
    }
    Ok((seconds as u64).saturating_mul(NS_PER_SECOND).saturating_add(microseconds as u64 * 1000))
}

/// Nanoseconds as a `struct timeval`: a time left below a microsecond
/// reads as one, so that an armed timer never reads as disarmed.
fn timeval_bytes(ns: u64) -> [u8; 16] {
    let mut microseconds = ns / 1000;
    if ns > 0 && microseconds == 0 {
        microseconds = 1;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(microseconds / 1_000_000).to_le_bytes());
    bytes[8..].copy_from_slice(&(microseconds % 1_000_000).to_le_bytes());
    bytes
}

fn write_itimerval(context: Context<'_>, address: u64, setting: Setting) -> core::result::Result<(), Errno> {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&timeval_bytes(setting.interval_ns));
    bytes[16..].copy_from_slice(&timeval_bytes(setting.value_ns));
    User::new(context.machine).write_bytes(address, &bytes)
}

pub(super) fn getitimer(context: Context<'_>, which: u64, address: u64) -> Result {
    let timer = context.process.timers.interval(interval_timer(which)?);
    write_itimerval(context, address, timer.setting(context.machine, context.process))?;
    Ok(0)
}

/// `setitimer`; no new value disarms the timer, as Linux allows.
pub(super) fn setitimer(context: Context<'_>, which: u64, new: u64, old: u64) -> Result {
    let which = interval_timer(which)?;
    let (value, interval) = if new == 0 {
        (0, 0)
    } else {
        let mut bytes = [0u8; 32];
        User::new(context.machine).read_into(new, &mut bytes)?;
        (timeval_ns(&bytes[16..])?, timeval_ns(&bytes[..16])?)
    };
    let timers = &context.process.timers;
    let timer = timers.interval(which);
    let previous = timers.arm(context.machine, context.process, &timer, value, false, interval);
    if old != 0 {
        write_itimerval(context, old, previous)?;
    }
    Ok(0)
}

/// `alarm`: `ITIMER_REAL` once after `seconds`; returns the seconds the
/// previous alarm had left, rounded to the nearest (and at least one).
pub(super) fn alarm(context: Context<'_>, seconds: u64) -> Result {
    let seconds = seconds & u64::from(u32::MAX);
    let timers = &context.process.timers;
    let timer = timers.interval(IntervalTimer::Real);
    let previous =
        timers.arm(context.machine, context.process, &timer, seconds * NS_PER_SECOND, false, 0).value_ns;
    let (whole, microseconds) = (previous / NS_PER_SECOND, previous % NS_PER_SECOND / 1000);
    let rounds_up = (whole == 0 && previous > 0) || microseconds >= 500_000;
    Ok(whole + u64::from(rounds_up))
}

/// `timerfd_create` flags.
const TFD_NONBLOCK: u64 = crate::vfs::file::flags::O_NONBLOCK as u64;
const TFD_CLOEXEC: u64 = crate::vfs::file::flags::O_CLOEXEC as u64;

/// `timerfd_create`: on the wall clock or the monotonic one (with their
/// alarm and boot-time variants), as Linux allows.
pub(super) fn timerfd_create(context: Context<'_>, clock_id: u64, flags: u64) -> Result {
    use crate::vfs::{FileObject, OpenFile};
    if flags & !(TFD_NONBLOCK | TFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let clock = match clock_id {
        clock::REALTIME | clock::REALTIME_ALARM => Clock::Realtime,
        clock::MONOTONIC | clock::BOOTTIME | clock::BOOTTIME_ALARM => Clock::Monotonic,
        _ => return Err(Errno::EINVAL.into()),
    };
    let file = Arc::new(TimerFile::new(Timer::new(clock, Notification::None), clock_id as u32));
    let status = crate::vfs::file::flags::O_RDWR | (flags & TFD_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(file), status);
    super::paths::install(context, file, flags & TFD_CLOEXEC != 0)
}

/// The timer of timerfd `fd` (`EINVAL` for another kind of file).
fn timer_file(context: Context<'_>, fd: u64) -> core::result::Result<Arc<Timer>, Errno> {
    with_timer_file(context, fd, |file| file.timer.clone())
}

/// Runs `action` on the timerfd `fd`; `EINVAL` if it is none.
fn with_timer_file<T>(
    context: Context<'_>,
    fd: u64,
    action: impl FnOnce(&TimerFile) -> T,
) -> core::result::Result<T, Errno> {
    let file = super::files::file(context, fd)?;
    file.special()
        .and_then(|special| special.as_any().downcast_ref::<TimerFile>())
        .map(action)
        .ok_or(Errno::EINVAL)
}

pub(super) fn timerfd_settime(context: Context<'_>, fd: u64, flags: u64, new: u64, old: u64) -> Result {
    if flags & !(TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (value, interval) = read_itimerspec(context, new)?;
    let timer = timer_file(context, fd)?;
    let previous = context.process.timers.arm(
        context.machine,
        context.process,
        &timer,
        value,
        flags & TIMER_ABSTIME != 0,
        interval,
    );
    timer.set_cancel_on_set(flags & TFD_TIMER_CANCEL_ON_SET != 0);
    with_timer_file(context, fd, |file| {
        file.settime_flags.store(flags as u32, core::sync::atomic::Ordering::Relaxed);
    })?;
    if old != 0 {
        write_itimerspec(context, old, previous)?;
    }
    timer.waiters.notify();
    Ok(0)
}

pub(super) fn timerfd_gettime(context: Context<'_>, fd: u64, address: u64) -> Result {
    let timer = timer_file(context, fd)?;
    write_itimerspec(context, address, timer.setting(context.machine, context.process))?;
    Ok(0)
}
