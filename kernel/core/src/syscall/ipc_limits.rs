//! The System V IPC limits the calls enforce, which `/proc/sys/kernel`
//! reports and root changes (`msgmax`, `msgmnb`, `msgmni`, `sem`,
//! `shmmax`, `shmall`, `shmmni`), with Linux's defaults and ranges.

use core::sync::atomic::{AtomicU64, Ordering};

/// One limit: its value and the largest value a write may give it.
#[derive(Debug)]
pub(crate) struct Limit {
    value: AtomicU64,
    maximum: u64,
}

impl Limit {
    const fn new(value: u64, maximum: u64) -> Self {
        Limit { value: AtomicU64::new(value), maximum }
    }

    /// The value now.
    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// Sets the value; `false` (and no change) when it is out of range.
    pub(crate) fn set(&self, value: u64) -> bool {
        if value > self.maximum {
            return false;
        }
        self.value.store(value, Ordering::Relaxed);
        true
    }

    /// The largest value a write may give.
    pub(crate) fn maximum(&self) -> u64 {
        self.maximum
    }
}

/// How many ids of one kind exist at most (`IPCMNI`).
const IDS_MAX: u64 = 32768;
/// `INT_MAX`: the bound of limits Linux keeps in an `int`.
const INT_MAX: u64 = i32::MAX as u64;

/// The longest message.
pub(crate) static MSGMAX: Limit = Limit::new(8192, INT_MAX);
/// A new queue's capacity in bytes.
pub(crate) static MSGMNB: Limit = Limit::new(16384, INT_MAX);
/// Message queues.
pub(crate) static MSGMNI: Limit = Limit::new(32000, IDS_MAX);
/// Semaphores per set.
pub(crate) static SEMMSL: Limit = Limit::new(32000, INT_MAX);
/// Semaphores in all sets.
pub(crate) static SEMMNS: Limit = Limit::new(1_024_000_000, INT_MAX);
/// Operations per `semop` call.
pub(crate) static SEMOPM: Limit = Limit::new(500, INT_MAX);
/// Semaphore sets.
pub(crate) static SEMMNI: Limit = Limit::new(32000, IDS_MAX);
/// The largest shared memory segment.
pub(crate) static SHMMAX: Limit = Limit::new(u64::MAX - (1 << 24), u64::MAX);
/// Pages of all shared memory segments.
pub(crate) static SHMALL: Limit = Limit::new(u64::MAX - (1 << 24), u64::MAX);
/// Shared memory segments.
pub(crate) static SHMMNI: Limit = Limit::new(4096, IDS_MAX);
