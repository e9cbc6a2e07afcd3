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
//! proof that the timer is unmasked ([`after_interrupt`]). Pure logic,
//! tested on the host.

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
    fn deadlines_never_collide_with_the_states() {
        assert_eq!(plan(DISARMED, Some(0)).0, DISARMED + 1);
        assert_eq!(plan(DISARMED, Some(u64::MAX)).0, FIRED - 1);
    }
}
