//! The time stamp counter and its frequency.
//!
//! The frequency comes from the first source that gives it: kvmclock (the
//! pvclock scale factors, KVM's `MSR_KVM_SYSTEM_TIME_NEW`), CPUID leaf 0x15
//! (crystal clock and ratio), the hypervisor timing leaf 0x40000010 (TSC kHz),
//! or, as a last resort, a measurement against PIT channel 2.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use crate::calibration::{self, CountReading};
use crate::cpu::{cpuid, read_tsc};
use crate::memory;
use rosv_abi::vdso::TSC_TO_NS_SHIFT;

const MSR_KVM_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;
const PIT_FREQUENCY_HZ: u64 = 1_193_182;
const PIT_CALIBRATION_MS: u64 = 2;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, scaled by 2^32 (`rosv_abi::vdso`'s formula,
/// which the vDSO repeats in the application).
static TSC_TO_NS_MULTIPLIER: AtomicU64 = AtomicU64::new(1 << TSC_TO_NS_SHIFT);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static REALTIME_AT_BOOT_NS: AtomicU64 = AtomicU64::new(0);

/// Where the TSC frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSource {
    /// kvmclock's scale factors.
    Kvmclock,
    /// CPUID leaf 0x15.
    CpuidCrystal,
    /// CPUID leaf 0x40000010.
    HypervisorLeaf,
    /// Counted against the PIT.
    Pit,
}

/// The pvclock structure KVM fills (Linux `struct pvclock_vcpu_time_info`).
#[repr(C, align(64))]
#[derive(Debug, Default)]
struct PvclockTimeInfo {
    version: u32,
    pad0: u32,
    tsc_timestamp: u64,
    system_time: u64,
    tsc_to_system_mul: u32,
    tsc_shift: i8,
    flags: u8,
    pad: [u8; 2],
}

/// The pvclock wall clock (Linux `struct pvclock_wall_clock`): the time of
/// day at which kvmclock's system time was zero.
#[repr(C, align(16))]
#[derive(Debug, Default)]
struct PvclockWallClock {
    version: u32,
    seconds: u32,
    nanoseconds: u32,
}

/// What kvmclock tells: the TSC frequency and the wall-clock time now.
struct Kvmclock {
    tsc_hz: u64,
    realtime_ns: u64,
    tsc: u64,
}

/// Calibrates the TSC, records `boot_tsc` as time zero, and reads the wall
/// clock (kvmclock's, else the CMOS clock's).
pub fn init(boot_tsc: u64) -> (ClockSource, u64) {
    BOOT_TSC.store(boot_tsc, Ordering::Relaxed);
    let kvmclock = read_kvmclock();
    let (source, hz) = kvmclock
        .as_ref()
        .map(|clock| (ClockSource::Kvmclock, clock.tsc_hz))
        .or_else(|| cpuid_crystal_hz().map(|hz| (ClockSource::CpuidCrystal, hz)))
        .or_else(|| hypervisor_leaf_hz().map(|hz| (ClockSource::HypervisorLeaf, hz)))
        .unwrap_or_else(|| (ClockSource::Pit, pit_hz()));
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    let multiplier = (1_000_000_000u128 << TSC_TO_NS_SHIFT) / u128::from(hz.max(1));
    TSC_TO_NS_MULTIPLIER.store(multiplier.min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    let realtime_at_boot = match kvmclock {
        Some(clock) => clock.realtime_ns.saturating_sub(boot_tsc_to_ns(clock.tsc)),
        None => crate::rtc::read_cmos_clock()
            .and_then(|time| time.to_unix_seconds())
            .map_or(0, |seconds| (seconds * 1_000_000_000).saturating_sub(since_boot_ns())),
    };
    REALTIME_AT_BOOT_NS.store(realtime_at_boot, Ordering::Relaxed);
    (source, hz)
}

/// Nanoseconds since the Unix epoch (0 plus uptime if no clock was found).
pub fn realtime_ns() -> u64 {
    REALTIME_AT_BOOT_NS.load(Ordering::Relaxed) + since_boot_ns()
}

/// Steps the wall clock so that [`realtime_ns`] reads `realtime_ns` now;
/// time since boot goes on unchanged.
pub fn set_realtime_ns(realtime_ns: u64) {
    REALTIME_AT_BOOT_NS.store(realtime_ns.saturating_sub(since_boot_ns()), Ordering::Relaxed);
}

/// The TSC frequency in Hz (1 before [`init`]).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed).max(1)
}

/// Converts a TSC difference to nanoseconds (multiplying by a scaled
/// reciprocal rather than dividing, as the vDSO does too).
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ((u128::from(ticks) * u128::from(TSC_TO_NS_MULTIPLIER.load(Ordering::Relaxed))) >> TSC_TO_NS_SHIFT) as u64
}

/// What the vDSO needs to tell the time as the kernel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockParameters {
    /// The TSC value at time zero.
    pub tsc_base: u64,
    /// Nanoseconds per tick, scaled by 2^[`TSC_TO_NS_SHIFT`].
    pub tsc_to_ns_multiplier: u64,
    /// Wall-clock time at time zero, in nanoseconds since the epoch.
    pub realtime_offset_ns: u64,
}

/// The clock, as the vDSO reads it.
pub fn clock_parameters() -> ClockParameters {
    ClockParameters {
        tsc_base: BOOT_TSC.load(Ordering::Relaxed),
        tsc_to_ns_multiplier: TSC_TO_NS_MULTIPLIER.load(Ordering::Relaxed),
        realtime_offset_ns: REALTIME_AT_BOOT_NS.load(Ordering::Relaxed),
    }
}

/// Nanoseconds since the kernel's first instruction.
pub fn since_boot_ns() -> u64 {
    ticks_to_ns(read_tsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)))
}

/// The TSC value `ns` nanoseconds after the kernel's first instruction.
pub fn boot_ns_to_tsc(ns: u64) -> u64 {
    let ticks = (u128::from(ns) * u128::from(tsc_hz()) / 1_000_000_000).min(u128::from(u64::MAX / 2)) as u64;
    BOOT_TSC.load(Ordering::Relaxed).saturating_add(ticks)
}

/// Nanoseconds from the kernel's first instruction to TSC value `tsc`.
pub fn boot_tsc_to_ns(tsc: u64) -> u64 {
    ticks_to_ns(tsc.saturating_sub(BOOT_TSC.load(Ordering::Relaxed)))
}

fn hypervisor_max_leaf(signature: &[u8; 12]) -> Option<u32> {
    if !crate::cpu::features().is_virtualized {
        return None;
    }
    let [max, ebx, ecx, edx] = cpuid(0x4000_0000, 0);
    let mut found = [0u8; 12];
    found[0..4].copy_from_slice(&ebx.to_le_bytes());
    found[4..8].copy_from_slice(&ecx.to_le_bytes());
    found[8..12].copy_from_slice(&edx.to_le_bytes());
    (&found == signature).then_some(max)
}

fn read_kvmclock() -> Option<Kvmclock> {
    hypervisor_max_leaf(b"KVMKVMKVM\0\0\0")?;
    let [features, ..] = cpuid(0x4000_0001, 0);
    if features & KVM_FEATURE_CLOCKSOURCE2 == 0 {
        return None;
    }
    let mut info = alloc::boxed::Box::new(PvclockTimeInfo::default());
    let mut wall = alloc::boxed::Box::new(PvclockWallClock::default());
    let info_paddr = memory::virtual_to_physical(&mut *info as *mut PvclockTimeInfo as u64);
    let wall_paddr = memory::virtual_to_physical(&mut *wall as *mut PvclockWallClock as u64);
    let mut system_time_msr = Msr::new(MSR_KVM_SYSTEM_TIME_NEW);
    let mut wall_clock_msr = Msr::new(MSR_KVM_WALL_CLOCK_NEW);
    // SAFETY: (1) both structures are heap memory in the physical map,
    // aligned as the pvclock ABI wants, and outlive their registration, which
    // ends below; (2) KVM writes them only during these MSR writes and, for
    // the time info, while its enable bit is set.
    unsafe {
        system_time_msr.write(info_paddr | 1);
        wall_clock_msr.write(wall_paddr);
    }
    let tsc = read_tsc();
    // SAFETY: KVM wrote the structures during the MSR writes above; volatile
    // reads because the hypervisor, not Rust, wrote them.
    let (multiplier, shift, tsc_timestamp, system_time, wall_seconds, wall_nanoseconds) = unsafe {
        (
            core::ptr::read_volatile(&raw const info.tsc_to_system_mul),
            core::ptr::read_volatile(&raw const info.tsc_shift),
            core::ptr::read_volatile(&raw const info.tsc_timestamp),
            core::ptr::read_volatile(&raw const info.system_time),
            core::ptr::read_volatile(&raw const wall.seconds),
            core::ptr::read_volatile(&raw const wall.nanoseconds),
        )
    };
    // SAFETY: clearing the enable bit stops KVM from writing the structure.
    unsafe { system_time_msr.write(0) };
    if multiplier == 0 {
        return None;
    }
    // ns = ((ticks << shift) * multiplier) >> 32 (a negative shift divides).
    let scale = |ticks: u64| -> u64 {
        let shifted = if shift >= 0 { u128::from(ticks) << shift } else { u128::from(ticks) >> (-shift) };
        ((shifted * u128::from(multiplier)) >> 32) as u64
    };
    let divisor =
        if shift >= 0 { u128::from(multiplier) << shift } else { u128::from(multiplier) >> (-shift) };
    if divisor == 0 {
        return None;
    }
    let tsc_hz = ((1_000_000_000u128 << 32) / divisor) as u64;
    let system_time_now = system_time + scale(tsc.saturating_sub(tsc_timestamp));
    let wall_ns = u64::from(wall_seconds) * 1_000_000_000 + u64::from(wall_nanoseconds);
    Some(Kvmclock { tsc_hz, realtime_ns: wall_ns + system_time_now, tsc })
}

fn cpuid_crystal_hz() -> Option<u64> {
    let [max_leaf, ..] = cpuid(0, 0);
    if max_leaf < 0x15 {
        return None;
    }
    let [denominator, numerator, crystal_hz, _] = cpuid(0x15, 0);
    if denominator == 0 || numerator == 0 || crystal_hz == 0 {
        return None;
    }
    Some(u64::from(crystal_hz) * u64::from(numerator) / u64::from(denominator))
}

fn hypervisor_leaf_hz() -> Option<u64> {
    let max = hypervisor_max_leaf(b"KVMKVMKVM\0\0\0").or_else(|| hypervisor_max_leaf(b"VMwareVMware"))?;
    if max < 0x4000_0010 {
        return None;
    }
    let [khz, ..] = cpuid(0x4000_0010, 0);
    (khz != 0).then_some(u64::from(khz) * 1000)
}

/// Counts TSC ticks while PIT channel 0 counts down `PIT_CALIBRATION_MS`.
///
/// Channel 0 is used because its counter can be read back (a latch command,
/// Intel 8254 datasheet) on every machine with a PIT; channel 2's gate and
/// output live in port 0x61, which QEMU's microvm lacks. The legacy PIC is
/// masked, so the channel's interrupt goes nowhere.
fn pit_hz() -> u64 {
    /// Readings taken at each end of the window; the tightest counts.
    const READINGS: usize = 8;
    /// Windows measured; the median counts.
    const WINDOWS: usize = 3;
    let ticks = PIT_FREQUENCY_HZ * PIT_CALIBRATION_MS / 1000;
    let read_count = || -> u32 {
        // SAFETY: latching and reading channel 0's counter has no effect
        // beyond the latch.
        unsafe {
            Port::<u8>::new(0x43).write(0b0000_0000);
            let low = Port::<u8>::new(0x40).read();
            let high = Port::<u8>::new(0x40).read();
            u32::from(u16::from_le_bytes([low, high]))
        }
    };
    // A count paired with the TSC of its moment (see `calibration`).
    let paired_reading = || {
        let readings: [CountReading; READINGS] = core::array::from_fn(|_| {
            let tsc_before = read_tsc();
            let count = read_count();
            CountReading { tsc_before, count, tsc_after: read_tsc() }
        });
        calibration::tightest(&readings).expect("there are readings")
    };
    let mut rates = [0u64; WINDOWS];
    for rate in &mut rates {
        // SAFETY: programs channel 0 (mode 0, binary, low then high byte)
        // with the largest count; the kernel uses the PIT for nothing else.
        unsafe {
            Port::<u8>::new(0x43).write(0b0011_0000);
            Port::<u8>::new(0x40).write(0xff);
            Port::<u8>::new(0x40).write(0xff);
        }
        let start = paired_reading();
        let mut spins = 0u64;
        let mut current = start.1;
        while u64::from(start.1.saturating_sub(current)) < ticks && spins < 10_000_000 {
            current = read_count();
            spins += 1;
        }
        let end = paired_reading();
        *rate = (u64::from(start.1.saturating_sub(end.1)) >= ticks)
            .then(|| calibration::tsc_rate_hz(start, end, PIT_FREQUENCY_HZ))
            .flatten()
            .unwrap_or(0);
    }
    // The counter is 16 bits wide: a vCPU preempted for longer than its
    // period (55 ms) sees it wrap and counts a window many times too long.
    // Such a window is an outlier; the median is not.
    rates.sort_unstable();
    let hz = Some(rates[WINDOWS / 2]).filter(|&hz| hz > 0);
    hz.unwrap_or_else(|| {
        log::warn!("time: the PIT did not count, assuming a 1 GHz TSC");
        1_000_000_000
    })
}
