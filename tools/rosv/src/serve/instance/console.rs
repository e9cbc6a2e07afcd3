//! The last bytes of a VM's console, and what the kernel reported there.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many bytes of console output an instance keeps.
const CONSOLE_TAIL_BYTES: usize = 8 * 1024;
/// What the kernel prints once it has booted, right before it starts the
/// application; its network is configured by then.
const BOOTED_LINE: &[u8] = b"Booted in ";
/// How much of each console line is kept to recognise the kernel's
/// reports: the restored line and a 32-digit instance id.
const LINE_START_BYTES: usize = 64;

/// The last bytes of a VM's console, and whether the kernel has booted.
#[derive(Debug, Default)]
pub struct ConsoleTail {
    state: Mutex<TailState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct TailState {
    bytes: VecDeque<u8>,
    /// The current line's beginning, enough to match the kernel's reports.
    line_start: Vec<u8>,
    has_booted: bool,
    /// The instance ids the kernel said it was restored as (hexadecimal).
    restored_as: Vec<String>,
    /// Bytes pushed since the start.
    total: u64,
    /// When bytes were last pushed.
    last_output: Option<Instant>,
    /// Both output streams have ended.
    streams_ended: u8,
    /// The exit status the kernel wrote on its console as it powered off.
    reported_status: Option<u8>,
}

impl ConsoleTail {
    fn lock(&self) -> MutexGuard<'_, TailState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds console bytes.
    pub fn push(&self, bytes: &[u8]) {
        let mut state = self.lock();
        state.total += bytes.len() as u64;
        state.last_output = Some(Instant::now());
        self.changed.notify_all();
        for &byte in bytes {
            if state.bytes.len() == CONSOLE_TAIL_BYTES {
                state.bytes.pop_front();
            }
            state.bytes.push_back(byte);
            if byte == b'\n' {
                let line = std::mem::take(&mut state.line_start);
                let restored = rosv_abi::streams::RESTORED_LINE.as_bytes();
                if let Some(id) = line.strip_prefix(restored) {
                    let id = String::from_utf8_lossy(id).trim_end().to_string();
                    state.restored_as.push(id);
                    self.changed.notify_all();
                }
            } else if state.line_start.len() < LINE_START_BYTES {
                state.line_start.push(byte);
                if state.line_start == BOOTED_LINE {
                    state.has_booted = true;
                    self.changed.notify_all();
                }
            }
        }
    }

    pub(super) fn set_reported_status(&self, status: Option<u8>) {
        self.lock().reported_status = status;
    }

    /// The exit status the kernel reported on the console, once the
    /// console's stream has ended.
    pub fn reported_status(&self) -> Option<u8> {
        self.lock().reported_status
    }

    pub(super) fn end_stream(&self) {
        self.lock().streams_ended += 1;
        self.changed.notify_all();
    }

    /// Waits until the kernel reports it has booted; false if the output
    /// ended or `deadline` passed first.
    pub fn wait_for_boot(&self, deadline: Instant) -> bool {
        self.wait_until(deadline, |state| state.has_booted)
    }

    /// Waits until the kernel says it was restored as instance `id`
    /// (hexadecimal); false if the output ended or `deadline` passed first.
    pub fn wait_for_restore(&self, id: &str, deadline: Instant) -> bool {
        self.wait_until(deadline, |state| state.restored_as.iter().any(|restored| restored == id))
    }

    /// Waits until `is_reached` holds; false if the output ended or
    /// `deadline` passed first.
    fn wait_until(&self, deadline: Instant, is_reached: impl Fn(&TailState) -> bool) -> bool {
        let mut state = self.lock();
        loop {
            if is_reached(&state) {
                return true;
            }
            let now = Instant::now();
            if state.streams_ended >= 2 || now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// How many bytes have been pushed so far: a mark for [`Self::since`].
    pub fn mark(&self) -> u64 {
        self.lock().total
    }

    /// The bytes pushed after `mark` that are still kept, at most the last
    /// `limit`.
    pub fn since(&self, mark: u64, limit: usize) -> Vec<u8> {
        let state = self.lock();
        let new = usize::try_from(state.total.saturating_sub(mark)).unwrap_or(usize::MAX);
        let count = new.min(state.bytes.len()).min(limit);
        state.bytes.iter().skip(state.bytes.len() - count).copied().collect()
    }

    /// Waits until no output has come for `quiet` (counted from the call
    /// at the earliest), at most until `deadline`: a guest's output through
    /// its serial port can arrive after what it sent on the network
    /// afterwards.
    pub fn wait_quiet(&self, quiet: Duration, deadline: Instant) {
        let called = Instant::now();
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let last = state.last_output.map_or(called, |last| last.max(called));
            let quiet_since = now.duration_since(last);
            if quiet_since >= quiet || now >= deadline || state.streams_ended >= 2 {
                return;
            }
            let wait = (quiet - quiet_since).min(deadline - now);
            state = self
                .changed
                .wait_timeout(state, wait)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// Whether the kernel has printed its boot line.
    pub fn has_booted(&self) -> bool {
        self.lock().has_booted
    }

    /// The kept bytes as text, each line indented, for the host's log.
    pub fn text(&self) -> String {
        let state = self.lock();
        let bytes: Vec<u8> = state.bytes.iter().copied().collect();
        String::from_utf8_lossy(&bytes).lines().map(|line| format!("    | {line}\n")).collect()
    }
}

/// A writer into a [`ConsoleTail`], for the console filter.
pub(super) struct TailWriter(pub(super) Arc<ConsoleTail>);

impl Write for TailWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_bytes_and_sees_the_boot_line() {
        let tail = ConsoleTail::default();
        tail.push(b"early line\nBooted");
        assert!(!tail.wait_for_boot(Instant::now()));
        tail.push(b" in 12.5 ms\nhello\n");
        assert!(tail.wait_for_boot(Instant::now()));
        assert_eq!(tail.text(), "    | early line\n    | Booted in 12.5 ms\n    | hello\n");
        tail.push(&vec![b'x'; CONSOLE_TAIL_BYTES * 2]);
        assert_eq!(tail.text().len(), "    | ".len() + CONSOLE_TAIL_BYTES + 1);
    }

    #[test]
    fn output_since_a_mark_is_what_came_after_it_within_the_limits() {
        let tail = ConsoleTail::default();
        tail.push(b"before\n");
        let mark = tail.mark();
        assert_eq!(tail.since(mark, 100), b"");
        tail.push(b"during one\nduring two\n");
        assert_eq!(tail.since(mark, 100), b"during one\nduring two\n");
        assert_eq!(tail.since(mark, 4), b"two\n");
        // Output beyond what the tail keeps is gone: the newest is given.
        tail.push(&vec![b'y'; CONSOLE_TAIL_BYTES]);
        assert_eq!(tail.since(mark, usize::MAX), vec![b'y'; CONSOLE_TAIL_BYTES]);
        assert_eq!(tail.since(tail.mark(), 10), b"");
    }

    #[test]
    fn waiting_for_quiet_ends_once_output_pauses_or_at_the_deadline() {
        let tail = Arc::new(ConsoleTail::default());
        let started = Instant::now();
        tail.wait_quiet(Duration::from_millis(50), started + Duration::from_secs(10));
        assert!(started.elapsed() >= Duration::from_millis(50), "output may still come");
        assert!(started.elapsed() < Duration::from_secs(5), "no output: quiet once the time passed");
        let writer = tail.clone();
        let chatter = std::thread::spawn(move || {
            for _ in 0..10 {
                writer.push(b"line\n");
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        std::thread::sleep(Duration::from_millis(5));
        tail.wait_quiet(Duration::from_millis(150), Instant::now() + Duration::from_secs(10));
        chatter.join().unwrap();
        assert_eq!(tail.since(0, usize::MAX).len(), 50, "waited for all the output");
        tail.push(b"x");
        let started = Instant::now();
        tail.wait_quiet(Duration::from_secs(5), started + Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(2), "the deadline bounds the wait");
    }

    #[test]
    fn the_tail_notes_the_instances_the_kernel_was_restored_as() {
        let tail = ConsoleTail::default();
        let deadline = Instant::now() + Duration::from_millis(20);
        tail.push(b"Restored as instance 00ff");
        assert!(!tail.wait_for_restore("00ff", deadline), "the line is not complete");
        tail.push(b"\nsaid: Restored as instance 11\nRestored as instance 22\r\n");
        assert!(tail.wait_for_restore("00ff", deadline));
        assert!(tail.wait_for_restore("22", deadline));
        assert!(!tail.wait_for_restore("11", deadline), "a report must start a line");
    }

    #[test]
    fn a_boot_line_must_start_a_line() {
        let tail = ConsoleTail::default();
        tail.push(b"said: Booted in 3 ms\n");
        tail.end_stream();
        tail.end_stream();
        assert!(!tail.wait_for_boot(Instant::now() + Duration::from_secs(5)));
    }
}
