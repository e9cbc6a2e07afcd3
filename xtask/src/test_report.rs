//! The closing summary of `cargo xtask test`: counts over every test binary.
//!
//! `cargo test` prints one `test result:` line per test binary; tests that
//! cannot run on this host return early and say so on the standard error
//! (`SKIPPED <test>: <reason>`), which the harness counts as passed. This
//! module reads both from the output as it streams past, and reports
//! passed, failed and skipped tests across all binaries, with each skipped
//! test and why.

/// What the output of a `cargo test` run said, so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// Tests the harness counted as passed (skipped ones included).
    pub harness_passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests marked `#[ignore]`.
    pub ignored: u64,
    /// Test binaries that reported a result.
    pub binaries: u64,
    /// Each skipped test with its first reason, in the order seen.
    pub skipped: Vec<(String, String)>,
    /// Failed tests by name, from the harness's `test NAME ... FAILED` lines.
    pub failed_names: Vec<String>,
}

impl TestReport {
    /// Takes note of one line of output.
    pub fn read_line(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("SKIPPED ") {
            let (test, reason) = rest.split_once(": ").unwrap_or((rest, "no reason given"));
            if !self.skipped.iter().any(|(known, _)| known == test) {
                self.skipped.push((test.to_string(), reason.to_string()));
            }
        } else if let Some(counts) = line.strip_prefix("test result: ") {
            self.binaries += 1;
            self.harness_passed += count_before(counts, " passed");
            self.failed += count_before(counts, " failed");
            self.ignored += count_before(counts, " ignored");
        } else if let Some(test) =
            line.strip_prefix("test ").and_then(|rest| rest.strip_suffix(" ... FAILED"))
        {
            self.failed_names.push(test.to_string());
        }
    }

    /// Tests that ran and passed: the harness's passed, less the skipped
    /// ones it counted among them.
    pub fn passed(&self) -> u64 {
        self.harness_passed.saturating_sub(self.skipped.len() as u64)
    }

    /// Skipped tests: those that said so, and ignored ones.
    pub fn skipped_count(&self) -> u64 {
        self.skipped.len() as u64 + self.ignored
    }

    /// The closing summary: the skipped tests with their reasons, the
    /// failed ones, then one line of counts.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for (test, reason) in &self.skipped {
            text.push_str(&format!("skipped {test}: {reason}\n"));
        }
        if self.ignored > 0 {
            text.push_str(&format!("skipped {} tests marked #[ignore]\n", self.ignored));
        }
        for test in &self.failed_names {
            text.push_str(&format!("failed {test}\n"));
        }
        text.push_str(&format!(
            "tests: {} passed, {} failed, {} skipped\n",
            self.passed(),
            self.failed,
            self.skipped_count()
        ));
        text
    }
}

/// The number just before `label` in `text` (`"3 passed"` → 3), or 0.
fn count_before(text: &str, label: &str) -> u64 {
    let Some(end) = text.find(label) else {
        return 0;
    };
    let digits = text[..end].rsplit(|c: char| !c.is_ascii_digit()).next().unwrap_or("");
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(output: &str) -> TestReport {
        let mut report = TestReport::default();
        for line in output.lines() {
            report.read_line(line);
        }
        report
    }

    #[test]
    fn adds_up_every_binary() {
        let report = report(
            "running 3 tests\ntest result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s\n\nrunning 5 tests\ntest a ... FAILED\ntest result: FAILED. 4 passed; 1 failed; \
             2 ignored; 0 measured; 0 filtered out; finished in 1.00s\n",
        );
        assert_eq!(report.binaries, 2);
        assert_eq!(report.harness_passed, 7);
        assert_eq!(report.failed, 1);
        assert_eq!(report.ignored, 2);
        assert_eq!(report.failed_names, ["a"]);
    }

    #[test]
    fn skipped_tests_are_not_counted_as_passed() {
        let report = report(
            "SKIPPED firecracker_boots: firecracker is not on PATH\nSKIPPED firecracker_boots: again\n\
             SKIPPED nginx_serves: /usr/sbin/nginx is missing\n\
             test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2s\n",
        );
        assert_eq!(report.passed(), 8);
        assert_eq!(report.skipped_count(), 2);
        assert_eq!(
            report.summary(),
            "skipped firecracker_boots: firecracker is not on PATH\nskipped nginx_serves: /usr/sbin/nginx is \
             missing\ntests: 8 passed, 0 failed, 2 skipped\n"
        );
    }

    #[test]
    fn ignores_lines_that_only_look_alike() {
        let report = report("the test result: was fine\nSKIPPED\ntest x ... ok\n");
        assert_eq!(report.binaries, 0);
        assert!(report.skipped.is_empty());
        assert_eq!(count_before("no numbers passed", " passed"), 0);
    }
}
