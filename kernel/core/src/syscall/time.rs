//! Clocks and sleeping.

use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::user::User;

/// Clock ids (Linux `include/uapi/linux/time.h`).
mod clock {
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

/// The time on clock `id` in nanoseconds.
fn now_ns(context: Context<'_>, id: u64) -> core::result::Result<u64, Errno> {
    let machine = context.machine;
    match id {
        clock::REALTIME | clock::REALTIME_COARSE | clock::REALTIME_ALARM | clock::TAI => {
            Ok(machine.realtime_ns())
        }
        clock::MONOTONIC
        | clock::MONOTONIC_RAW
        | clock::MONOTONIC_COARSE
        | clock::BOOTTIME
        | clock::BOOTTIME_ALARM => Ok(machine.monotonic_ns()),
        clock::PROCESS_CPUTIME_ID | clock::THREAD_CPUTIME_ID => {
            Ok(machine.monotonic_ns().saturating_sub(context.process.start_ns))
        }
        _ => Err(Errno::EINVAL),
    }
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

pub(super) fn nanosleep(context: Context<'_>, request: u64) -> Result {
    let duration = read_timespec(context, request)?;
    let deadline = context.machine.monotonic_ns().saturating_add(duration.to_ns());
    super::threads::sleep_until(context, deadline)?;
    Ok(0)
}

pub(super) fn clock_nanosleep(context: Context<'_>, id: u64, flags: u64, request: u64) -> Result {
    const TIMER_ABSTIME: u64 = 1;
    if id == clock::THREAD_CPUTIME_ID {
        return Err(Errno::EINVAL.into());
    }
    let time = read_timespec(context, request)?.to_ns();
    let now = now_ns(context, id)?;
    let remaining = if flags & TIMER_ABSTIME != 0 { time.saturating_sub(now) } else { time };
    let deadline = context.machine.monotonic_ns().saturating_add(remaining);
    super::threads::sleep_until(context, deadline)?;
    Ok(0)
}
