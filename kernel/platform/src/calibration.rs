//! Measuring a clock's rate against the TSC, robust to a preempted vCPU.
//!
//! The TSC's frequency (against the PIT, when no hypervisor tells it) and
//! the one-shot local APIC timer's rate are measured at boot over a short
//! window: read the TSC and the other counter, wait, read both again. A
//! vCPU that the host stops between a TSC read and the counter's read (a
//! busy host preempts vCPUs for milliseconds) pairs a count with a TSC
//! value from another moment, and with a window of a few milliseconds the
//! rate comes out many times wrong: once the guest's clock ran twenty times
//! slow and every timer fired that much late. So each end of the window is
//! the tightest of several readings of the counter bracketed by two TSC
//! reads ([`tightest`]). Pure logic, tested on the host.

/// One reading of a counter that counts down (the PIT's, the one-shot
/// local APIC timer's), between two TSC reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountReading {
    /// The TSC just before the count was read.
    pub tsc_before: u64,
    /// The counter's value.
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

/// The TSC's rate, in Hz, from a counter running at `counter_hz` that
/// counted down from `start` to `end` (each a TSC value and a count);
/// `None` if no time passed or the count did not go down.
pub fn tsc_rate_hz(start: (u64, u32), end: (u64, u32), counter_hz: u64) -> Option<u64> {
    let ticks = end.0.checked_sub(start.0).filter(|&ticks| ticks > 0)?;
    let counted = start.1.checked_sub(end.1).filter(|&counted| counted > 0)?;
    u64::try_from(u128::from(ticks) * u128::from(counter_hz) / u128::from(counted)).ok().filter(|&hz| hz > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_tsc_rate_follows_from_a_known_counter() {
        // The PIT counts 2386 down in 2 ms; a 2.6 GHz TSC advances 5.2 million.
        let hz = tsc_rate_hz((100, 60_000), (100 + 5_200_000, 60_000 - 2_386), 1_193_182).unwrap();
        assert!(hz.abs_diff(2_600_000_000) < 2_000_000, "{hz}");
        assert_eq!(tsc_rate_hz((5, 10), (5, 1), 1_000), None);
    }
}
