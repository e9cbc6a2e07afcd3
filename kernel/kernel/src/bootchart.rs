//! The bootchart: the time of each boot phase since the first instruction.

use rosv_platform::{cpu, time};

const PHASES_MAX: usize = 24;

/// Boot phases and the TSC value at which each ended.
pub struct Bootchart {
    phases: [(&'static str, u64); PHASES_MAX],
    len: usize,
}

impl Bootchart {
    /// A chart whose time zero is `entry_tsc`.
    pub fn new(entry_tsc: u64) -> Self {
        let mut chart = Bootchart { phases: [("", 0); PHASES_MAX], len: 0 };
        chart.phases[0] = ("kernel entered", entry_tsc);
        chart.len = 1;
        chart
    }

    /// Records that `phase` has just ended.
    pub fn mark(&mut self, phase: &'static str) {
        if self.len < PHASES_MAX {
            self.phases[self.len] = (phase, cpu::read_tsc());
            self.len += 1;
        }
    }

    /// Nanoseconds from the first instruction to the last mark.
    pub fn total_ns(&self) -> u64 {
        time::boot_tsc_to_ns(self.phases[self.len - 1].1)
    }

    /// Prints every phase: time since boot and since the previous phase.
    pub fn print(&self) {
        let mut previous_ns = 0;
        rosv_platform::console::write_bytes(b"bootchart (ms since the first kernel instruction):\n");
        for &(phase, tsc) in &self.phases[..self.len] {
            let ns = time::boot_tsc_to_ns(tsc);
            let line = alloc::format!(
                "{:>10} (+{}) {}\n",
                milliseconds(ns),
                milliseconds(ns.saturating_sub(previous_ns)),
                phase
            );
            rosv_platform::console::write_bytes(line.as_bytes());
            previous_ns = ns;
        }
    }
}

/// Formats nanoseconds as milliseconds with three decimals.
pub fn milliseconds(ns: u64) -> alloc::string::String {
    let microseconds = ns / 1000;
    alloc::format!("{}.{:03}", microseconds / 1000, microseconds % 1000)
}
