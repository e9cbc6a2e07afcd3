//! Refreshing a VM started from a snapshot: wall clock, entropy, identity.
//!
//! A VM resumed from a snapshot holds its template's memory: its wall clock
//! goes on from the template's time, its generators hold the template's
//! state, and it has the template's identity. The host says what must
//! differ in a [`RestoreNotice`] on its control channel
//! (`rosv_abi::streams`; `StandardStreams` hands it over), and [`apply`]
//! steps the wall clock ([`step_realtime_clock`]), gives every generator
//! fresh entropy (`random::add_machine_entropy`) and records the instance
//! id, which `/proc/sys/kernel/random/boot_id` reports from then on.
//!
//! Everything here is atomics: the notice is applied in the interrupt
//! handler of the device that carried it.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rosv_abi::streams::RestoreNotice;

use crate::machine::Machine;

/// The instance id, two little-endian halves, once a notice gave one.
static INSTANCE_ID: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static HAS_INSTANCE_ID: AtomicBool = AtomicBool::new(false);

/// Applies what the host says must differ in this instance.
pub fn apply(machine: &dyn Machine, notice: &RestoreNotice) {
    step_realtime_clock(machine, notice.realtime_ns);
    crate::random::add_machine_entropy(&notice.entropy);
    for (half, bytes) in INSTANCE_ID.iter().zip(notice.instance_id.chunks_exact(8)) {
        let mut value = [0u8; 8];
        value.copy_from_slice(bytes);
        half.store(u64::from_le_bytes(value), Ordering::Relaxed);
    }
    HAS_INSTANCE_ID.store(true, Ordering::Release);
}

/// The id the host gave this instance, if it was restored.
pub fn instance_id() -> Option<[u8; 16]> {
    if !HAS_INSTANCE_ID.load(Ordering::Acquire) {
        return None;
    }
    let mut id = [0u8; 16];
    for (bytes, half) in id.chunks_exact_mut(8).zip(&INSTANCE_ID) {
        bytes.copy_from_slice(&half.load(Ordering::Relaxed).to_le_bytes());
    }
    Some(id)
}

/// Steps `CLOCK_REALTIME` to `realtime_ns`, for the kernel and for every
/// process's vDSO; `CLOCK_MONOTONIC` goes on unchanged. Never waits.
///
/// Timers armed at an absolute wall-clock time follow the step, and
/// absolute wall-clock sleeps look again.
pub fn step_realtime_clock(machine: &dyn Machine, realtime_ns: u64) {
    machine.set_realtime_ns(realtime_ns);
    if let Some(vdso) = machine.vdso() {
        crate::loader::vdso_data::set_realtime_offset(vdso.realtime_offset_ns);
    }
    crate::timers::realtime_stepped(machine);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeMachine;
    use core::sync::atomic::Ordering;

    #[test]
    fn a_step_moves_the_wall_clock_and_leaves_the_monotonic_one() {
        let machine = FakeMachine::new();
        machine.now_ns.store(5_000, Ordering::Relaxed);
        let monotonic = machine.monotonic_ns();
        step_realtime_clock(&machine, 1_800_000_000_000_000_000);
        assert_eq!(machine.realtime_ns(), 1_800_000_000_000_000_000);
        assert_eq!(machine.monotonic_ns(), monotonic);
        machine.now_ns.store(6_000, Ordering::Relaxed);
        assert_eq!(machine.realtime_ns(), 1_800_000_000_000_001_000);
        // Backwards too: the wall clock may step back, the monotonic not.
        step_realtime_clock(&machine, 1_000);
        assert_eq!(machine.realtime_ns(), 1_000);
        assert_eq!(machine.monotonic_ns(), 6_000);
    }
}
