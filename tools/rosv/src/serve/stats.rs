//! Counters of each function, served as JSON at `/_rosv/stats`.

use std::time::Duration;

use serde_json::{Value, json};

use super::billing::Totals;

/// How many cold-start times are kept for the median.
const COLD_START_SAMPLES: usize = 1000;

/// What happened to one function since the host started.
#[derive(Debug, Default, Clone)]
pub struct FunctionStats {
    /// VMs started.
    pub boots: u64,
    /// VMs that never answered.
    pub boot_failures: u64,
    /// Time from starting a VM to its first answer, the latest last.
    cold_starts: Vec<Duration>,
    /// Requests the function answered (any status it chose).
    pub requests: u64,
    /// Requests the host answered for it because it could not (502, 503,
    /// 504), or whose answer broke off.
    pub errors: u64,
    /// What the invocations cost.
    pub billing: Totals,
}

impl FunctionStats {
    /// Records a cold start.
    pub fn record_cold_start(&mut self, time: Duration) {
        if self.cold_starts.len() == COLD_START_SAMPLES {
            self.cold_starts.remove(0);
        }
        self.cold_starts.push(time);
    }

    /// The JSON object for this function, with `running` and `booting`
    /// instances as the pool counts them now.
    pub fn to_json(&self, running: usize, booting: usize) -> Value {
        let cold_start = if self.cold_starts.is_empty() {
            Value::Null
        } else {
            let mut sorted = self.cold_starts.clone();
            sorted.sort();
            let milliseconds = |duration: Duration| (duration.as_secs_f64() * 1e6).round() / 1e3;
            json!({
                "last": milliseconds(self.cold_starts[self.cold_starts.len() - 1]),
                "min": milliseconds(sorted[0]),
                "median": milliseconds(sorted[sorted.len() / 2]),
                "max": milliseconds(sorted[sorted.len() - 1]),
            })
        };
        json!({
            "running": running,
            "booting": booting,
            "boots": self.boots,
            "boot_failures": self.boot_failures,
            "cold_start_ms": cold_start,
            "requests": self.requests,
            "errors": self.errors,
            "billing": self.billing.to_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_starts_are_summarized_in_milliseconds() {
        let mut stats = FunctionStats { boots: 3, requests: 5, ..FunctionStats::default() };
        assert_eq!(stats.to_json(0, 0)["cold_start_ms"], Value::Null);
        for milliseconds in [300, 100, 200] {
            stats.record_cold_start(Duration::from_millis(milliseconds));
        }
        let json = stats.to_json(1, 0);
        assert_eq!(
            json["cold_start_ms"],
            json!({"last": 200.0, "min": 100.0, "median": 200.0, "max": 300.0})
        );
        assert_eq!(json["running"], 1);
        assert_eq!(json["boots"], 3);
        assert_eq!(json["requests"], 5);
    }

    #[test]
    fn only_the_latest_cold_starts_are_kept() {
        let mut stats = FunctionStats::default();
        for milliseconds in 0..(COLD_START_SAMPLES as u64 + 10) {
            stats.record_cold_start(Duration::from_millis(milliseconds));
        }
        assert_eq!(stats.cold_starts.len(), COLD_START_SAMPLES);
        assert_eq!(stats.to_json(0, 0)["cold_start_ms"]["min"], 10.0);
    }
}
