//! The time stamp counter and its frequency.
//!
//! The frequency comes from the first source that gives it: kvmclock (the
//! pvclock scale factors, KVM's `MSR_KVM_SYSTEM_TIME_NEW`), CPUID leaf 0x15
//! (crystal clock and ratio), the hypervisor timing leaf 0x40000010 (TSC kHz),
//! or, as a last resort, a measurement against PIT channel 2.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use crate::cpu::{cpuid, read_tsc};
use crate::memory;

const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;
const PIT_FREQUENCY_HZ: u64 = 1_193_182;
const PIT_CALIBRATION_MS: u64 = 10;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

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

/// Calibrates the TSC and records `boot_tsc` as time zero.
pub fn init(boot_tsc: u64) -> (ClockSource, u64) {
    BOOT_TSC.store(boot_tsc, Ordering::Relaxed);
    let (source, hz) = kvmclock_hz()
        .map(|hz| (ClockSource::Kvmclock, hz))
        .or_else(|| cpuid_crystal_hz().map(|hz| (ClockSource::CpuidCrystal, hz)))
        .or_else(|| hypervisor_leaf_hz().map(|hz| (ClockSource::HypervisorLeaf, hz)))
        .unwrap_or_else(|| (ClockSource::Pit, pit_hz()));
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    (source, hz)
}

/// The TSC frequency in Hz (1 before [`init`]).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed).max(1)
}

/// Converts a TSC difference to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(tsc_hz())) as u64
}

/// Nanoseconds since the kernel's first instruction.
pub fn since_boot_ns() -> u64 {
    ticks_to_ns(read_tsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)))
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

fn kvmclock_hz() -> Option<u64> {
    hypervisor_max_leaf(b"KVMKVMKVM\0\0\0")?;
    let [features, ..] = cpuid(0x4000_0001, 0);
    if features & KVM_FEATURE_CLOCKSOURCE2 == 0 {
        return None;
    }
    let mut info = alloc::boxed::Box::new(PvclockTimeInfo::default());
    let address = &mut *info as *mut PvclockTimeInfo as u64;
    let paddr = memory::virtual_to_physical(address);
    let mut msr = Msr::new(MSR_KVM_SYSTEM_TIME_NEW);
    // SAFETY: (1) the structure is heap memory in the physical map, aligned
    // as the pvclock ABI wants, and lives until the MSR is cleared below; (2)
    // KVM only writes the structure while the enable bit is set.
    unsafe { msr.write(paddr | 1) };
    // SAFETY: KVM wrote the structure during the MSR write; volatile reads
    // because the hypervisor, not Rust, wrote it.
    let (multiplier, shift) = unsafe {
        (
            core::ptr::read_volatile(&raw const info.tsc_to_system_mul),
            core::ptr::read_volatile(&raw const info.tsc_shift),
        )
    };
    // SAFETY: disabling kvmclock stops KVM from writing the structure.
    unsafe { msr.write(0) };
    if multiplier == 0 {
        return None;
    }
    // ns = ((tsc << shift) * multiplier) >> 32, so hz = 1e9 * 2^32 / (multiplier << shift).
    let scaled = 1_000_000_000u128 << 32;
    let divisor = if shift >= 0 {
        u128::from(multiplier) << shift
    } else {
        u128::from(multiplier) >> (-shift)
    };
    (divisor != 0).then(|| (scaled / divisor) as u64)
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
    let max = hypervisor_max_leaf(b"KVMKVMKVM\0\0\0")
        .or_else(|| hypervisor_max_leaf(b"VMwareVMware"))?;
    if max < 0x4000_0010 {
        return None;
    }
    let [khz, ..] = cpuid(0x4000_0010, 0);
    (khz != 0).then_some(u64::from(khz) * 1000)
}

/// Counts TSC ticks while PIT channel 2 counts down `PIT_CALIBRATION_MS`.
fn pit_hz() -> u64 {
    let count = PIT_FREQUENCY_HZ * PIT_CALIBRATION_MS / 1000;
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel_2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x42, 0x43 and 0x61 drive PIT channel 2 and its gate,
    // which only the speaker uses; the kernel drives no speaker.
    unsafe {
        let control = gate.read();
        gate.write((control & !0x02) | 0x01);
        command.write(0b1011_0000);
        channel_2.write((count & 0xff) as u8);
        channel_2.write((count >> 8) as u8);
        let start = read_tsc();
        let mut spins = 0u64;
        while gate.read() & 0x20 == 0 && spins < 100_000_000 {
            spins += 1;
        }
        let end = read_tsc();
        gate.write(control);
        let hz = (end - start) * 1000 / PIT_CALIBRATION_MS;
        if spins == 100_000_000 || hz == 0 {
            log::warn!("time: no PIT answered, assuming a 1 GHz TSC");
            return 1_000_000_000;
        }
        hz
    }
}
