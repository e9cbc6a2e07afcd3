//! Per-processor timer queues: threads waiting for a TSC deadline.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::thread::Thread;

/// Threads waiting for deadlines, earliest first. Keys are (deadline, a
/// sequence number that keeps equal deadlines apart).
#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    timers: BTreeMap<(u64, u64), Arc<Thread>>,
    next_sequence: u64,
}

impl TimerQueue {
    pub(super) const fn new() -> Self {
        TimerQueue { timers: BTreeMap::new(), next_sequence: 0 }
    }

    /// Adds `thread`'s timer; returns its key.
    pub(super) fn insert(&mut self, deadline: u64, thread: Arc<Thread>) -> (u64, u64) {
        let key = (deadline, self.next_sequence);
        self.next_sequence += 1;
        self.timers.insert(key, thread);
        key
    }

    /// Cancels a timer that has not fired.
    pub(super) fn remove(&mut self, key: (u64, u64)) {
        self.timers.remove(&key);
    }

    /// The number of waiting threads.
    pub(super) fn len(&self) -> usize {
        self.timers.len()
    }

    /// The earliest deadline.
    pub(super) fn first_deadline(&self) -> Option<u64> {
        self.timers.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns the threads whose deadline is at or before `now`.
    pub(super) fn take_expired(&mut self, now: u64) -> Vec<Arc<Thread>> {
        let later = self.timers.split_off(&(now.saturating_add(1), 0));
        let expired = core::mem::replace(&mut self.timers, later);
        expired.into_values().collect()
    }
}
