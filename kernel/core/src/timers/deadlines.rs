//! The deadlines of a process's armed timers, earliest first.
//!
//! Each entry names a timer weakly and carries a [`Key`]: the deadline and
//! a sequence number that tells apart entries of equal deadlines and
//! entries of the same timer armed again. A timer remembers the key of
//! its one live entry; an entry whose key the timer no longer holds (it
//! was re-armed or disarmed since) is stale and ignored when it comes due.

use alloc::collections::BTreeMap;
use alloc::sync::Weak;
use alloc::vec::Vec;

/// An entry's place: its deadline on the monotonic clock, in nanoseconds,
/// and its sequence number.
pub type Key = (u64, u64);

/// Timers waiting for their deadlines.
#[derive(Debug)]
pub struct Deadlines<T> {
    entries: BTreeMap<Key, Weak<T>>,
    next_sequence: u64,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines { entries: BTreeMap::new(), next_sequence: 0 }
    }
}

impl<T> Deadlines<T> {
    /// Adds `timer` at `deadline_ns`; returns the entry's key.
    pub fn insert(&mut self, deadline_ns: u64, timer: Weak<T>) -> Key {
        let key = (deadline_ns, self.next_sequence);
        self.next_sequence += 1;
        self.entries.insert(key, timer);
        key
    }

    /// Removes an entry (if it is still there).
    pub fn remove(&mut self, key: Key) {
        self.entries.remove(&key);
    }

    /// The earliest deadline.
    pub fn first_deadline(&self) -> Option<u64> {
        self.entries.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns the entries due at `now_ns`, earliest first.
    pub fn take_due(&mut self, now_ns: u64) -> Vec<(Key, Weak<T>)> {
        let later = self.entries.split_off(&(now_ns.saturating_add(1), 0));
        core::mem::replace(&mut self.entries, later).into_iter().collect()
    }

    /// Every entry, earliest first.
    pub fn entries(&self) -> Vec<(Key, Weak<T>)> {
        self.entries.iter().map(|(key, timer)| (*key, timer.clone())).collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;

    #[test]
    fn entries_come_due_in_deadline_order_and_removed_ones_never() {
        let timers: Vec<Arc<u32>> = (0..4).map(Arc::new).collect();
        let mut deadlines = Deadlines::default();
        let late = deadlines.insert(300, Arc::downgrade(&timers[0]));
        deadlines.insert(100, Arc::downgrade(&timers[1]));
        let removed = deadlines.insert(200, Arc::downgrade(&timers[2]));
        deadlines.insert(100, Arc::downgrade(&timers[3]));
        deadlines.remove(removed);
        assert_eq!(deadlines.first_deadline(), Some(100));
        let due: Vec<u32> = deadlines
            .take_due(250)
            .into_iter()
            .filter_map(|(_, timer)| timer.upgrade())
            .map(|t| *t)
            .collect();
        assert_eq!(due, [1, 3]);
        assert_eq!(deadlines.len(), 1);
        assert_eq!(deadlines.take_due(299).len(), 0);
        let last = deadlines.take_due(300);
        assert_eq!(last.first().map(|(key, _)| *key), Some(late));
        assert!(deadlines.is_empty());
    }
}
