//! What a processor's local timer was last told, and what to write to it.
//!
//! Each write to the local APIC timer is an exit to the hypervisor, so the
//! scheduler remembers the deadline the timer is armed for and skips a
//! write that would change nothing ([`plan`]). The remembered state must
//! match the hardware's, in particular whether the timer's LVT entry is
//! masked: arming a masked timer programs a deadline that never
//! interrupts. A timer interrupt can be delivered after the timer was
//! masked (it fired while interrupts were disabled, and masking does not
//! withdraw a request already made), so the interrupt must not be taken as
//! proof that the timer is unmasked ([`after_interrupt`]). Without a
//! TSC-deadline timer, the one-shot timer's rate is measured against the
//! TSC at boot ([`tightest`], [`counting_rate_hz`]). Pure logic, tested on
//! the host.

/// The state of a masked timer (LVT masked, no deadline).
pub const DISARMED: u64 = 0;
/// The state of an unmasked timer that fired and was not armed again.
pub const FIRED: u64 = u64::MAX;

/// What to write to the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerWrite {
    /// It is already as wanted.
    Nothing,
    /// Mask it.
    Disarm,
    /// Program `deadline` (a TSC value); with `sets_mode`, also unmask it
    /// and set its mode and vector first.
    Arm {
        /// The TSC value to interrupt at.
        deadline: u64,
        /// Whether the LVT entry is to be written (the timer was masked).
        sets_mode: bool,
    },
}

/// The new state and the write that take a timer in state `armed` to the
/// `wanted` deadline (`None`: no interrupt wanted).
pub fn plan(armed: u64, wanted: Option<u64>) -> (u64, TimerWrite) {
    let wanted = wanted.map_or(DISARMED, |deadline| deadline.clamp(DISARMED + 1, FIRED - 1));
    if wanted == armed {
        return (armed, TimerWrite::Nothing);
    }
    if wanted == DISARMED {
        return (DISARMED, TimerWrite::Disarm);
    }
    (wanted, TimerWrite::Arm { deadline: wanted, sets_mode: armed == DISARMED })
}

/// The state after a timer interrupt was taken in state `armed`. A masked
/// timer stays masked: its interrupt was requested before the mask and
/// delivered only now, once interrupts were enabled again.
pub fn after_interrupt(armed: u64) -> u64 {
    if armed == DISARMED { DISARMED } else { FIRED }
}

/// One reading of the one-shot timer's count, between two TSC reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountReading {
    /// The TSC just before the count was read.
    pub tsc_before: u64,
    /// The timer's current count.
    pub count: u32,
    /// The TSC just after.
    pub tsc_after: u64,
}

/// Of several readings, the one whose TSC reads lie closest together, as
/// (the TSC midway between them, the count): a hypervisor that stopped
/// the processor between a TSC read and the count's read (a busy host
/// preempts vCPUs for milliseconds) would otherwise pair a count with a
/// TSC value from another moment.
pub fn tightest(readings: &[CountReading]) -> Option<(u64, u32)> {
    readings.iter().min_by_key(|reading| reading.tsc_after.saturating_sub(reading.tsc_before)).map(
        |reading| {
            (reading.tsc_before + reading.tsc_after.saturating_sub(reading.tsc_before) / 2, reading.count)
        },
    )
}

/// The rate, in Hz, of a timer counting down from `start` to `end` (each a
/// TSC value and a count), the TSC running at `tsc_hz`; `None` if no time
/// passed or the count did not go down.
pub fn counting_rate_hz(start: (u64, u32), end: (u64, u32), tsc_hz: u64) -> Option<u64> {
    let ticks = end.0.checked_sub(start.0).filter(|&ticks| ticks > 0)?;
    let counted = start.1.checked_sub(end.1).filter(|&counted| counted > 0)?;
    u64::try_from(u128::from(counted) * u128::from(tsc_hz) / u128::from(ticks)).ok().filter(|&hz| hz > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of the timer's LVT mask and deadline, fed the writes.
    #[derive(Debug, Default)]
    struct Hardware {
        is_masked: bool,
        deadline: Option<u64>,
    }

    impl Hardware {
        fn apply(&mut self, write: TimerWrite) {
            match write {
                TimerWrite::Nothing => {}
                TimerWrite::Disarm => {
                    self.is_masked = true;
                    self.deadline = None;
                }
                TimerWrite::Arm { deadline, sets_mode } => {
                    if sets_mode {
                        self.is_masked = false;
                    }
                    self.deadline = Some(deadline);
                }
            }
        }

        fn will_interrupt_at(&self) -> Option<u64> {
            self.deadline.filter(|_| !self.is_masked)
        }
    }

    fn step(armed: &mut u64, hardware: &mut Hardware, wanted: Option<u64>) {
        let (next, write) = plan(*armed, wanted);
        *armed = next;
        hardware.apply(write);
    }

    #[test]
    fn arming_the_same_deadline_again_writes_nothing() {
        let (armed, write) = plan(DISARMED, Some(100));
        assert_eq!(write, TimerWrite::Arm { deadline: 100, sets_mode: true });
        assert_eq!(plan(armed, Some(100)), (100, TimerWrite::Nothing));
        assert_eq!(plan(armed, Some(50)), (50, TimerWrite::Arm { deadline: 50, sets_mode: false }));
        assert_eq!(plan(armed, None), (DISARMED, TimerWrite::Disarm));
        assert_eq!(plan(DISARMED, None), (DISARMED, TimerWrite::Nothing));
    }

    #[test]
    fn a_timer_that_fired_is_armed_again_without_its_mode() {
        let mut armed = DISARMED;
        let mut hardware = Hardware { is_masked: true, deadline: None };
        step(&mut armed, &mut hardware, Some(100));
        armed = after_interrupt(armed);
        assert_eq!(armed, FIRED);
        step(&mut armed, &mut hardware, Some(100));
        assert_eq!(hardware.will_interrupt_at(), Some(100), "the same deadline is written again");
    }

    #[test]
    fn an_interrupt_delivered_after_the_mask_leaves_the_timer_masked() {
        // The slice timer fires while a system call runs with interrupts
        // disabled; the thread blocks and the last queued one takes over,
        // so nothing is wanted and the timer is masked; the pending
        // interrupt arrives when the new thread returns to application
        // code, and meanwhile another processor queued a thread here, so
        // the slice timer is wanted again.
        let mut armed = DISARMED;
        let mut hardware = Hardware { is_masked: true, deadline: None };
        step(&mut armed, &mut hardware, Some(100));
        step(&mut armed, &mut hardware, None);
        armed = after_interrupt(armed);
        step(&mut armed, &mut hardware, Some(200));
        assert_eq!(hardware.will_interrupt_at(), Some(200), "the timer was left masked");
        // The reschedule interrupt that follows wants the same deadline.
        step(&mut armed, &mut hardware, Some(200));
        assert_eq!(hardware.will_interrupt_at(), Some(200));
    }

    #[test]
    fn a_reading_the_hypervisor_interrupted_is_left_out() {
        let readings = [
            CountReading { tsc_before: 1_000, count: 900, tsc_after: 8_000_000 },
            CountReading { tsc_before: 8_000_100, count: 500, tsc_after: 8_000_140 },
            CountReading { tsc_before: 8_000_200, count: 480, tsc_after: 8_000_400 },
        ];
        assert_eq!(tightest(&readings), Some((8_000_120, 500)));
        assert_eq!(tightest(&[]), None);
    }

    #[test]
    fn the_rate_is_counts_per_second_of_tsc() {
        // A TSC at 2 GHz; 1 ms passes, the timer counts 1,000,000 down.
        assert_eq!(
            counting_rate_hz((0, 3_000_000), (2_000_000, 2_000_000), 2_000_000_000),
            Some(1_000_000_000)
        );
        assert_eq!(counting_rate_hz((5, 10), (5, 1), 1_000), None, "no time passed");
        assert_eq!(counting_rate_hz((0, 10), (5, 10), 1_000), None, "the count stood still");
    }

    #[test]
    fn deadlines_never_collide_with_the_states() {
        assert_eq!(plan(DISARMED, Some(0)).0, DISARMED + 1);
        assert_eq!(plan(DISARMED, Some(u64::MAX)).0, FIRED - 1);
    }
}
