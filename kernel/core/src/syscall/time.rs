//! Clocks and sleeping.

use alloc::sync::Arc;

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::machine::Wakeup;
use crate::timers::Clock;
use crate::user::User;

/// Clock ids (Linux `include/uapi/linux/time.h`).
pub(super) mod clock {
    pub const REALTIME: u64 = 0;
    pub const MONOTONIC: u64 = 1;
    pub const PROCESS_CPUTIME_ID: u64 = 2;
    pub const THREAD_CPUTIME_ID: u64 = 3;
    pub const MONOTONIC_RAW: u64 = 4;
    pub const REALTIME_COARSE: u64 = 5;
    pub const MONOTONIC_COARSE: u64 = 6;
    pub const BOOTTIME: u64 = 7;
    pub const REALTIME_ALARM: u64 = 8;
    pub const BOOTTIME_ALARM: u64 = 9;
    pub const TAI: u64 = 11;
}

/// What a clock id names.
pub(super) struct NamedClock {
    /// The clock.
    pub clock: Clock,
    /// Whether timers and `clock_nanosleep` may use it (Linux offers no
    /// timers on the raw and coarse clocks: `EOPNOTSUPP`).
    pub has_timers: bool,
}

/// The clock `id` names: one of Linux's fixed ids, or a processor-time
/// clock of a process or thread (`clock_getcpuclockid`,
/// `pthread_getcpuclockid`: the complement of the id shifted left by
/// three, bit 2 for a thread, the low bits the kind, of which 3 is invalid).
pub(super) fn named_clock(context: Context<'_>, id: u64) -> core::result::Result<NamedClock, Errno> {
    let id = id as i32;
    let clock = match id as u64 {
        _ if id < 0 => return cpu_clock(context, id),
        clock::REALTIME | clock::REALTIME_ALARM | clock::TAI => Clock::Realtime,
        clock::REALTIME_COARSE => return Ok(NamedClock { clock: Clock::Realtime, has_timers: false }),
        clock::MONOTONIC | clock::BOOTTIME | clock::BOOTTIME_ALARM => Clock::Monotonic,
        clock::MONOTONIC_RAW | clock::MONOTONIC_COARSE => {
            return Ok(NamedClock { clock: Clock::Monotonic, has_timers: false });
        }
        clock::PROCESS_CPUTIME_ID => Clock::ProcessCpu,
        clock::THREAD_CPUTIME_ID => Clock::ThreadCpu(Arc::downgrade(context.thread)),
        _ => return Err(Errno::EINVAL),
    };
    Ok(NamedClock { clock, has_timers: true })
}

fn cpu_clock(context: Context<'_>, id: i32) -> core::result::Result<NamedClock, Errno> {
    const PER_THREAD: i32 = 4;
    const KIND_MASK: i32 = 3;
    const INVALID_KIND: i32 = 3;
    if id & KIND_MASK == INVALID_KIND {
        return Err(Errno::EINVAL);
    }
    let owner = u64::from(!(id >> 3) as u32);
    let clock = if id & PER_THREAD != 0 {
        let thread = if owner == 0 { Some(context.thread.clone()) } else { context.process.thread(owner) };
        Clock::ThreadCpu(Arc::downgrade(&thread.ok_or(Errno::EINVAL)?))
    } else if owner == 0 || owner == context.process.pid {
        Clock::ProcessCpu
    } else {
        return Err(Errno::EINVAL);
    };
    Ok(NamedClock { clock, has_timers: true })
}

/// The time on clock `id` in nanoseconds.
fn now_ns(context: Context<'_>, id: u64) -> core::result::Result<u64, Errno> {
    named_clock(context, id)?.clock.now_ns(context.machine, context.process).ok_or(Errno::EINVAL)
}

pub(super) fn clock_gettime(context: Context<'_>, id: u64, address: u64) -> Result {
    let now = Timespec::from_ns(now_ns(context, id)?);
    User::new(context.machine).write_bytes(address, &now.encode())?;
    Ok(0)
}

pub(super) fn clock_getres(context: Context<'_>, id: u64, address: u64) -> Result {
    now_ns(context, id)?;
    if address != 0 {
        let resolution = Timespec { seconds: 0, nanoseconds: 1 };
        User::new(context.machine).write_bytes(address, &resolution.encode())?;
    }
    Ok(0)
}

pub(super) fn gettimeofday(context: Context<'_>, time: u64, zone: u64) -> Result {
    let user = User::new(context.machine);
    if time != 0 {
        let now = context.machine.realtime_ns();
        user.write_u64(time, now / 1_000_000_000)?;
        user.write_u64(time + 8, now % 1_000_000_000 / 1000)?;
    }
    if zone != 0 {
        user.write_u64(zone, 0)?;
    }
    Ok(0)
}

/// The latest wall-clock second Linux lets a program set: 30 years of
/// uptime short of where nanoseconds since 1970 overflow 63 bits
/// (`TIME_SETTOD_SEC_MAX`).
const LATEST_SETTABLE_SECONDS: i64 = 9_223_372_036 - 30 * 365 * 86_400;

/// `clock_settime`: only `CLOCK_REALTIME` can be set (other clocks give
/// `EINVAL`, processor-time clocks `EPERM`, as on Linux), by a caller
/// with `CAP_SYS_TIME`, to a time within Linux's range and not before
/// the machine started.
pub(super) fn clock_settime(context: Context<'_>, id: u64, address: u64) -> Result {
    let named = named_clock(context, id)?;
    if id != clock::REALTIME {
        return Err(match named.clock {
            Clock::ProcessCpu | Clock::ThreadCpu(_) => Errno::EPERM,
            _ => Errno::EINVAL,
        }
        .into());
    }
    let time = read_timespec(context, address)?;
    set_wall_clock(context, Some(time), None)
}

/// `settimeofday`: the wall clock from a `timeval`, and the time zone
/// (which Linux only keeps for old programs: checked, then ignored).
pub(super) fn settimeofday(context: Context<'_>, time: u64, zone: u64) -> Result {
    let user = User::new(context.machine);
    let time = if time == 0 {
        None
    } else {
        let seconds = user.read_u64(time)? as i64;
        let microseconds = user.read_u64(time + 8)? as i64;
        if !(0..1_000_000).contains(&microseconds) {
            return Err(Errno::EINVAL.into());
        }
        Some(Timespec { seconds, nanoseconds: microseconds * 1000 })
    };
    let minutes_west = if zone == 0 {
        None
    } else {
        let mut bytes = [0u8; 4];
        user.read_into(zone, &mut bytes)?;
        Some(i32::from_le_bytes(bytes))
    };
    set_wall_clock(context, time, minutes_west)
}

/// Steps the wall clock to `time` (none: leaves it), checking a time
/// zone's offset too, in Linux's order of errors.
fn set_wall_clock(context: Context<'_>, time: Option<Timespec>, minutes_west: Option<i32>) -> Result {
    if let Some(time) = &time
        && !(0..LATEST_SETTABLE_SECONDS).contains(&time.seconds)
    {
        return Err(Errno::EINVAL.into());
    }
    let may_set =
        context.process.state.lock().credentials.has_capability(crate::credentials::capability::SYS_TIME);
    if !may_set {
        return Err(Errno::EPERM.into());
    }
    if minutes_west.is_some_and(|minutes| !(-15 * 60..=15 * 60).contains(&minutes)) {
        return Err(Errno::EINVAL.into());
    }
    if let Some(time) = time {
        let realtime_ns = time.to_ns();
        // The wall clock may not go back before the machine started.
        if realtime_ns < context.machine.monotonic_ns() {
            return Err(Errno::EINVAL.into());
        }
        crate::restore::step_realtime_clock(context.machine, realtime_ns);
    }
    Ok(0)
}

pub(super) fn time(context: Context<'_>, address: u64) -> Result {
    let seconds = context.machine.realtime_ns() / 1_000_000_000;
    if address != 0 {
        User::new(context.machine).write_u64(address, seconds)?;
    }
    Ok(seconds)
}

fn read_timespec(context: Context<'_>, address: u64) -> core::result::Result<Timespec, Errno> {
    let mut bytes = [0u8; 16];
    User::new(context.machine).read_into(address, &mut bytes)?;
    Timespec::decode(&bytes).ok_or(Errno::EINVAL)
}

pub(super) fn nanosleep(context: Context<'_>, request: u64, remaining: u64) -> Result {
    let duration = read_timespec(context, request)?.to_ns();
    let deadline = context.machine.monotonic_ns().saturating_add(duration);
    sleep_writing_back(context, deadline, remaining)
}

/// Sleeps until the monotonic clock reaches `deadline_ns`; interrupted,
/// writes the time left to `remaining` (if not 0) and fails as Linux
/// does: restarted after a handler only if none runs.
fn sleep_writing_back(context: Context<'_>, deadline_ns: u64, remaining: u64) -> Result {
    match super::threads::sleep_until(context, deadline_ns) {
        Ok(()) => Ok(0),
        Err(errno) if errno == Errno::EINTR => {
            if remaining != 0 {
                let left = Timespec::from_ns(deadline_ns.saturating_sub(context.machine.monotonic_ns()));
                User::new(context.machine).write_bytes(remaining, &left.encode())?;
            }
            Err(Failure::RestartUnlessHandled)
        }
        Err(errno) => Err(errno.into()),
    }
}

/// `clock_nanosleep`: on every clock with timers but a thread's processor
/// time (`EINVAL`, as Linux: the sleeping thread's own clock would not
/// advance); an absolute sleep writes back nothing.
pub(super) fn clock_nanosleep(
    context: Context<'_>,
    id: u64,
    flags: u64,
    request: u64,
    remaining: u64,
) -> Result {
    const TIMER_ABSTIME: u64 = 1;
    let named = named_clock(context, id)?;
    if !named.has_timers {
        return Err(Errno::EOPNOTSUPP.into());
    }
    if matches!(named.clock, Clock::ThreadCpu(_)) {
        return Err(Errno::EINVAL.into());
    }
    let time = read_timespec(context, request)?.to_ns();
    let is_absolute = flags & TIMER_ABSTIME != 0;
    if let Clock::ProcessCpu = named.clock {
        return sleep_for_processor_time(context, time, is_absolute);
    }
    if is_absolute && matches!(named.clock, Clock::Realtime) {
        return sleep_until_wall_clock(context, time);
    }
    let now = named.clock.now_ns(context.machine, context.process).ok_or(Errno::EINVAL)?;
    let left = if is_absolute { time.saturating_sub(now) } else { time };
    let deadline = context.machine.monotonic_ns().saturating_add(left);
    sleep_writing_back(context, deadline, if is_absolute { 0 } else { remaining })
}

/// Sleeps until the wall clock reads `target_ns`, looking again whenever
/// the clock is set.
fn sleep_until_wall_clock(context: Context<'_>, target_ns: u64) -> Result {
    let me = context.machine.current_thread();
    loop {
        crate::timers::REALTIME_STEPS.add(&me);
        let now = context.machine.realtime_ns();
        if now >= target_ns {
            crate::timers::REALTIME_STEPS.remove(&me);
            return Ok(0);
        }
        let deadline = context.machine.monotonic_ns().saturating_add(target_ns - now);
        let is_stopped =
            context.thread.has_deliverable_signal() || context.machine.block(Some(deadline)) == Wakeup::Stop;
        crate::timers::REALTIME_STEPS.remove(&me);
        if is_stopped {
            return Err(Failure::RestartUnlessHandled);
        }
    }
}

/// Sleeps until the process's other threads have used processor time up
/// to `time` (or `time` more): looks again whenever they could have.
fn sleep_for_processor_time(context: Context<'_>, time: u64, is_absolute: bool) -> Result {
    let used = || context.process.cpu_time_ns();
    let target = if is_absolute { time } else { used().saturating_add(time) };
    let processors = context.machine.cpu_count().max(1) as u64;
    loop {
        let now = used();
        if now >= target {
            return Ok(0);
        }
        let wait = ((target - now) / processors).max(100_000);
        let deadline = context.machine.monotonic_ns().saturating_add(wait);
        if super::threads::sleep_until(context, deadline).is_err() {
            return Err(Failure::RestartUnlessHandled);
        }
    }
}
