//! The wall clock's discipline, `adjtimex` and `clock_adjtime`: the values
//! an NTP daemon sets and reads back (offset, frequency, error estimates,
//! status, time constant, tick), checked and clamped as Linux checks them,
//! and `ADJ_SETOFFSET`, which steps the wall clock.
//!
//! The kernel keeps the values but does not slew the clock by them: the
//! host keeps the virtual machine's clock, and a guest that wants another
//! time steps it (`ADJ_SETOFFSET`, `clock_settime`).

use spin::Mutex;

use super::time::{clock, named_clock};
use super::{Context, Result};
use crate::credentials::capability;
use crate::errno::Errno;
use crate::timers::Clock;
use crate::user::User;

/// Size of `struct timex`.
const TIMEX_SIZE: usize = 208;

/// `modes` bits.
mod mode {
    pub const OFFSET: u32 = 0x0001;
    pub const FREQUENCY: u32 = 0x0002;
    pub const MAXERROR: u32 = 0x0004;
    pub const ESTERROR: u32 = 0x0008;
    pub const STATUS: u32 = 0x0010;
    pub const TIMECONST: u32 = 0x0020;
    pub const TAI: u32 = 0x0080;
    pub const SETOFFSET: u32 = 0x0100;
    pub const MICRO: u32 = 0x1000;
    pub const NANO: u32 = 0x2000;
    pub const TICK: u32 = 0x4000;
    /// The old `adjtime` interface: with [`OFFSET`], `ADJ_OFFSET_SINGLESHOT`.
    pub const ADJTIME: u32 = 0x8000;
    /// With `ADJTIME | OFFSET`, `ADJ_OFFSET_SS_READ`: reads only.
    pub const READONLY: u32 = 0x2000;
}

/// `status` bits.
mod status {
    pub const PLL: i32 = 0x0001;
    pub const UNSYNC: i32 = 0x0040;
    pub const CLOCKERR: i32 = 0x1000;
    pub const NANO: i32 = 0x2000;
    /// The bits only the kernel sets.
    pub const READ_ONLY: i32 = 0xff00;
}

/// `TIME_OK` and `TIME_ERROR`, the clock states `adjtimex` returns.
const TIME_OK: u64 = 0;
const TIME_ERROR: u64 = 5;

/// Clock ticks per second (`USER_HZ`), which bounds `tick`.
const USER_HZ: i64 = 100;
/// Frequencies are parts per million scaled by 2^16.
const FREQUENCY_SCALE: i64 = 1 << 16;
/// The largest frequency correction: 500 ppm.
const MAXIMUM_FREQUENCY: i64 = 500 * FREQUENCY_SCALE;
/// The largest phase offset: 0.5 s, in nanoseconds.
const MAXIMUM_PHASE_NS: i64 = 500_000_000;
/// The largest error estimate: 16 s, in microseconds.
const PHASE_LIMIT_US: i64 = 16_000_000;
/// The largest time constant.
const MAXIMUM_TIME_CONSTANT: i64 = 10;

/// The discipline's values, as the last `adjtimex` left them.
struct Discipline {
    offset_ns: i64,
    /// Scaled parts per million.
    frequency: i64,
    maximum_error_us: i64,
    estimated_error_us: i64,
    status: i32,
    time_constant: i64,
    tick_us: i64,
    tai_offset: i32,
    /// The pending `adjtime` offset, in microseconds.
    single_shot_us: i64,
}

static DISCIPLINE: Mutex<Discipline> = Mutex::new(Discipline {
    offset_ns: 0,
    frequency: 0,
    maximum_error_us: PHASE_LIMIT_US,
    estimated_error_us: PHASE_LIMIT_US,
    status: status::UNSYNC,
    time_constant: 2,
    tick_us: 1_000_000 / USER_HZ,
    tai_offset: 0,
    single_shot_us: 0,
});

fn long_at(bytes: &[u8; TIMEX_SIZE], offset: usize) -> i64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[offset..offset + 8]);
    i64::from_le_bytes(field)
}

fn int_at(bytes: &[u8; TIMEX_SIZE], offset: usize) -> i32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    i32::from_le_bytes(field)
}

/// The checks Linux makes before changing anything, in its order.
fn validate(request: &[u8; TIMEX_SIZE], modes: u32, may_set: bool) -> core::result::Result<(), Errno> {
    if modes & mode::ADJTIME != 0 {
        if modes & mode::OFFSET == 0 {
            return Err(Errno::EINVAL);
        }
        if modes & mode::READONLY == 0 && !may_set {
            return Err(Errno::EPERM);
        }
    } else {
        if modes != 0 && !may_set {
            return Err(Errno::EPERM);
        }
        let tick = long_at(request, 88);
        if modes & mode::TICK != 0 && !(900_000 / USER_HZ..=1_100_000 / USER_HZ).contains(&tick) {
            return Err(Errno::EINVAL);
        }
    }
    if modes & mode::SETOFFSET != 0 {
        if !may_set {
            return Err(Errno::EPERM);
        }
        let fraction = long_at(request, 80);
        let limit = if modes & mode::NANO != 0 { 1_000_000_000 } else { 1_000_000 };
        if !(0..limit).contains(&fraction) {
            return Err(Errno::EINVAL);
        }
    }
    // The frequency is scaled further inside; Linux refuses what would
    // overflow there.
    let frequency = long_at(request, 16);
    let inner_scale = 1000 * (1 << 16);
    if modes & mode::FREQUENCY != 0 && !(i64::MIN / inner_scale..=i64::MAX / inner_scale).contains(&frequency)
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `adjtimex`: applies the changes `modes` asks for (with `CAP_SYS_TIME`),
/// then reads the discipline back; returns the clock's state
/// (`TIME_ERROR` while `STA_UNSYNC` is set).
pub(super) fn adjtimex(context: Context<'_>, address: u64) -> Result {
    let user = User::new(context.machine);
    let mut request = [0u8; TIMEX_SIZE];
    user.read_into(address, &mut request)?;
    let modes = int_at(&request, 0) as u32;
    let may_set = context.process.state.lock().credentials.has_capability(capability::SYS_TIME);
    validate(&request, modes, may_set)?;
    if modes & mode::SETOFFSET != 0 {
        let scale = if modes & mode::NANO != 0 { 1 } else { 1000 };
        let delta_ns =
            i128::from(long_at(&request, 72)) * 1_000_000_000 + i128::from(long_at(&request, 80) * scale);
        let target = i128::from(context.machine.realtime_ns()) + delta_ns;
        // The wall clock may not go back before the machine started.
        let target = u64::try_from(target).ok().filter(|&ns| ns >= context.machine.monotonic_ns());
        let Some(target) = target else {
            return Err(Errno::EINVAL.into());
        };
        crate::restore::step_realtime_clock(context.machine, target);
    }
    let mut discipline = DISCIPLINE.lock();
    let previous_single_shot_us = discipline.single_shot_us;
    if modes & mode::ADJTIME != 0 {
        if modes & mode::READONLY == 0 {
            discipline.single_shot_us = long_at(&request, 8);
        }
    } else {
        apply(&mut discipline, &request, modes);
    }
    let is_nano = discipline.status & status::NANO != 0;
    let mut reply = [0u8; TIMEX_SIZE];
    let mut long =
        |offset: usize, value: i64| reply[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    let offset = if modes & mode::ADJTIME != 0 {
        previous_single_shot_us
    } else if is_nano {
        discipline.offset_ns
    } else {
        discipline.offset_ns / 1000
    };
    long(8, offset);
    long(16, discipline.frequency);
    long(24, discipline.maximum_error_us);
    long(32, discipline.estimated_error_us);
    long(48, discipline.time_constant);
    long(56, 1);
    long(64, MAXIMUM_FREQUENCY);
    let now = context.machine.realtime_ns();
    long(72, (now / 1_000_000_000) as i64);
    let fraction = now % 1_000_000_000;
    long(80, if is_nano { fraction as i64 } else { (fraction / 1000) as i64 });
    long(88, discipline.tick_us);
    reply[..4].copy_from_slice(&modes.to_le_bytes());
    reply[40..44].copy_from_slice(&discipline.status.to_le_bytes());
    reply[160..164].copy_from_slice(&discipline.tai_offset.to_le_bytes());
    let state =
        if discipline.status & (status::UNSYNC | status::CLOCKERR) != 0 { TIME_ERROR } else { TIME_OK };
    drop(discipline);
    user.write_bytes(address, &reply)?;
    Ok(state)
}

/// The changes of a (checked) request other than the old `adjtime` one,
/// clamped to Linux's ranges.
fn apply(discipline: &mut Discipline, request: &[u8; TIMEX_SIZE], modes: u32) {
    if modes & mode::STATUS != 0 {
        let wanted = int_at(request, 40);
        if discipline.status & status::PLL != 0 && wanted & status::PLL == 0 {
            discipline.offset_ns = 0;
        }
        discipline.status = (discipline.status & status::READ_ONLY) | (wanted & !status::READ_ONLY);
    }
    if modes & mode::NANO != 0 {
        discipline.status |= status::NANO;
    }
    if modes & mode::MICRO != 0 {
        discipline.status &= !status::NANO;
    }
    if modes & mode::FREQUENCY != 0 {
        discipline.frequency = long_at(request, 16).clamp(-MAXIMUM_FREQUENCY, MAXIMUM_FREQUENCY);
    }
    if modes & mode::MAXERROR != 0 {
        discipline.maximum_error_us = long_at(request, 24).clamp(0, PHASE_LIMIT_US);
    }
    if modes & mode::ESTERROR != 0 {
        discipline.estimated_error_us = long_at(request, 32).clamp(0, PHASE_LIMIT_US);
    }
    if modes & mode::TIMECONST != 0 {
        let mut constant = long_at(request, 48).clamp(0, MAXIMUM_TIME_CONSTANT);
        // In microsecond mode the constant counts from 4 (RFC 1589).
        if discipline.status & status::NANO == 0 {
            constant += 4;
        }
        discipline.time_constant = constant.clamp(0, MAXIMUM_TIME_CONSTANT);
    }
    if modes & mode::TAI != 0 {
        let constant = long_at(request, 48);
        if constant >= 0 {
            discipline.tai_offset = i32::try_from(constant).unwrap_or(i32::MAX);
        }
    }
    // An offset counts only while the phase-locked loop runs.
    if modes & mode::OFFSET != 0 && discipline.status & status::PLL != 0 {
        let offset = long_at(request, 8);
        let offset_ns =
            if discipline.status & status::NANO != 0 { offset } else { offset.saturating_mul(1000) };
        discipline.offset_ns = offset_ns.clamp(-MAXIMUM_PHASE_NS, MAXIMUM_PHASE_NS);
    }
    if modes & mode::TICK != 0 {
        discipline.tick_us = long_at(request, 88);
    }
}

/// `clock_adjtime`: `adjtimex` for the wall clock; other clocks have no
/// discipline (`EOPNOTSUPP`).
pub(super) fn clock_adjtime(context: Context<'_>, id: u64, address: u64) -> Result {
    let named = named_clock(context, id)?;
    match named.clock {
        Clock::Realtime if id == clock::REALTIME => adjtimex(context, address),
        _ => Err(Errno::EOPNOTSUPP.into()),
    }
}
