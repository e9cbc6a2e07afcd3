//! The kernel's log ring: the last messages logged, as `syslog` and `dmesg`
//! read them (`<level>message` lines, Linux's console levels).
//!
//! Bytes are counted from boot: a reader names the count it has read up
//! to and gets what followed, or, if the ring has wrapped since, what it
//! still holds.

use alloc::vec::Vec;
use core::fmt::{self, Write};

use crate::sync::SpinMutex;

/// Bytes the ring keeps (`CONFIG_LOG_BUF_SHIFT` 14).
pub const CAPACITY: usize = 16 * 1024;

/// A ring of the last [`CAPACITY`] bytes written.
#[derive(Debug)]
pub struct LogRing {
    bytes: [u8; CAPACITY],
    /// Bytes written since the start.
    total: u64,
}

impl LogRing {
    /// An empty ring.
    pub const fn new() -> Self {
        LogRing { bytes: [0; CAPACITY], total: 0 }
    }

    /// Appends `text`.
    pub fn push(&mut self, text: &[u8]) {
        for &byte in text {
            self.bytes[(self.total % CAPACITY as u64) as usize] = byte;
            self.total += 1;
        }
    }

    /// The bytes written after count `since` that the ring still holds, and
    /// the count written so far.
    pub fn read_since(&self, since: u64) -> (Vec<u8>, u64) {
        let start = since.max(self.total.saturating_sub(CAPACITY as u64)).min(self.total);
        let bytes =
            (start..self.total).map(|position| self.bytes[(position % CAPACITY as u64) as usize]).collect();
        (bytes, self.total)
    }
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LogRing {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.push(text.as_bytes());
        Ok(())
    }
}

static RING: SpinMutex<LogRing> = SpinMutex::new(LogRing::new());

/// Records a message logged at `level` as a `<level>` line.
pub fn record(level: log::Level, message: &fmt::Arguments<'_>) {
    let priority = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    let _ = writeln!(RING.lock(), "<{priority}>{message}");
}

/// What followed byte count `since`, and the count so far.
pub fn read_since(since: u64) -> (Vec<u8>, u64) {
    RING.lock().read_since(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_get_what_followed_or_what_is_left() {
        let mut ring = LogRing::new();
        ring.push(b"<6>one\n");
        let (all, total) = ring.read_since(0);
        assert_eq!((all.as_slice(), total), (&b"<6>one\n"[..], 7));
        ring.push(b"<4>two\n");
        assert_eq!(ring.read_since(total).0, b"<4>two\n");
        let long = alloc::vec![b'x'; CAPACITY + 10];
        ring.push(&long);
        let (kept, total) = ring.read_since(0);
        assert_eq!(kept.len(), CAPACITY);
        assert_eq!(total, 14 + CAPACITY as u64 + 10);
        assert!(ring.read_since(total).0.is_empty());
    }
}
