//! Pending signals: a set and a queue of what each instance carries.
//!
//! A standard signal (1 to 31) is pending at most once: a second one sent
//! before the first is taken merges with it. A real-time signal (32 to 64)
//! is queued once per send, each with its own information, and taken in
//! the order sent. Each thread has a [`Pending`] of its own, and its
//! process one that every thread may take from ([`ProcessSignals`]).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use super::info::SignalInfo;
use crate::vfs::waiters::WaiterList;

/// The first real-time signal (`SIGRTMIN` as the kernel counts; C
/// libraries keep the first two or three for themselves).
pub const FIRST_REAL_TIME: u8 = 32;

/// The bit of `signal` in a signal set.
pub const fn bit(signal: u8) -> u64 {
    1 << (signal - 1)
}

/// What sent a queued signal and wants a word when it is taken: a POSIX
/// timer counts overruns until its signal is delivered.
pub trait SignalSource: Send + Sync {
    /// The signal is being taken: completes `info` (a timer's overrun
    /// count); `false` drops it instead (its source is gone).
    fn take(&self, info: &mut SignalInfo) -> bool;

    /// The signal was discarded without being taken (its action became
    /// "ignore").
    fn discard(&self) {}
}

/// One queued instance.
struct Queued {
    signal: u8,
    info: SignalInfo,
    source: Option<Arc<dyn SignalSource>>,
}

/// A set of pending signals with what each carries.
#[derive(Default)]
pub struct Pending {
    set: u64,
    queue: VecDeque<Queued>,
}

impl core::fmt::Debug for Pending {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Pending").field("set", &self.set).field("queued", &self.queue.len()).finish()
    }
}

impl Clone for Pending {
    fn clone(&self) -> Self {
        let queue = self
            .queue
            .iter()
            .map(|queued| Queued { signal: queued.signal, info: queued.info, source: queued.source.clone() })
            .collect();
        Pending { set: self.set, queue }
    }
}

/// An instance [`Pending::take`] took.
pub struct Taken {
    /// What it carries.
    pub info: SignalInfo,
    /// Who wants a word when it is taken.
    pub source: Option<Arc<dyn SignalSource>>,
    /// Whether it was queued (and so counted against the limit).
    pub was_queued: bool,
}

impl core::fmt::Debug for Taken {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Taken")
            .field("info", &self.info)
            .field("was_queued", &self.was_queued)
            .finish()
    }
}

/// What [`Pending::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new instance, with its information.
    Queued,
    /// A standard signal that was pending already: nothing changed.
    Merged,
    /// Pending, but its information was lost (no room to queue it).
    WithoutInformation,
}

impl Pending {
    /// Nothing pending.
    pub const fn new() -> Self {
        Pending { set: 0, queue: VecDeque::new() }
    }

    /// The pending signals, one bit each.
    pub fn set(&self) -> u64 {
        self.set
    }

    /// Whether `signal` is pending.
    pub fn contains(&self, signal: u8) -> bool {
        self.set & bit(signal) != 0
    }

    /// Number of queued instances.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Makes `signal` pending with `info`; `may_queue` says whether there
    /// is room for one more queued instance.
    pub fn add(
        &mut self,
        signal: u8,
        info: SignalInfo,
        source: Option<Arc<dyn SignalSource>>,
        may_queue: bool,
    ) -> Added {
        if signal < FIRST_REAL_TIME && self.contains(signal) {
            return Added::Merged;
        }
        self.set |= bit(signal);
        if !may_queue {
            return Added::WithoutInformation;
        }
        self.queue.push_back(Queued { signal, info, source });
        Added::Queued
    }

    /// Takes the first instance of `signal`. A signal whose information
    /// was lost reads as sent by `kill` from nobody.
    pub fn take(&mut self, signal: u8) -> Option<Taken> {
        if !self.contains(signal) {
            return None;
        }
        let position = self.queue.iter().position(|queued| queued.signal == signal);
        let taken = position.and_then(|position| self.queue.remove(position));
        if !self.queue.iter().any(|queued| queued.signal == signal) {
            self.set &= !bit(signal);
        }
        Some(match taken {
            Some(queued) => Taken { info: queued.info, source: queued.source, was_queued: true },
            None => Taken { info: SignalInfo::default(), source: None, was_queued: false },
        })
    }

    /// Drops every instance of the signals in `set`; returns how many
    /// queued instances went.
    pub fn discard(&mut self, set: u64) -> usize {
        self.set &= !set;
        let before = self.queue.len();
        self.queue.retain(|queued| {
            let is_kept = set & bit(queued.signal) == 0;
            if !is_kept && let Some(source) = &queued.source {
                source.discard();
            }
            is_kept
        });
        before - self.queue.len()
    }
}

/// The signals sent to a process rather than one of its threads, and the
/// count of instances queued on it and its threads (what
/// `RLIMIT_SIGPENDING` bounds).
#[derive(Default)]
pub struct ProcessSignals {
    /// Pending for the process: any thread that does not block one may
    /// take it.
    pub pending: Mutex<Pending>,
    queued: AtomicUsize,
    /// Threads to wake whenever a signal becomes pending anywhere in the
    /// process (`signalfd` readers).
    pub waiters: WaiterList,
    /// Whether the process is stopped (job control).
    pub job: super::job::JobControl,
}

impl core::fmt::Debug for ProcessSignals {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("ProcessSignals").field("queued", &self.queued()).finish()
    }
}

impl ProcessSignals {
    /// Nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Nothing pending, for the process `pid`.
    pub fn for_process(pid: u64) -> Self {
        let signals = Self::default();
        signals.job.set_process_id(pid);
        signals
    }

    /// Instances queued on the process and its threads.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Counts one more queued instance if fewer than `limit` are; returns
    /// whether it did.
    pub fn reserve(&self, limit: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < limit).then_some(queued + 1)
            })
            .is_ok()
    }

    /// Gives back `count` reservations (instances taken or dropped).
    pub fn release(&self, count: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| Some(queued.saturating_sub(count)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::info::code;

    #[test]
    fn standard_signals_merge_and_real_time_signals_queue_in_order() {
        let mut pending = Pending::new();
        assert_eq!(pending.add(10, SignalInfo::sender(code::USER, 1, 0), None, true), Added::Queued);
        assert_eq!(pending.add(10, SignalInfo::sender(code::USER, 2, 0), None, true), Added::Merged);
        for value in 1..=5 {
            let info = SignalInfo::queued(code::QUEUE, 1, 0, value);
            assert_eq!(pending.add(34, info, None, true), Added::Queued);
        }
        assert_eq!(pending.set(), bit(10) | bit(34));
        assert_eq!(pending.take(10).map(|taken| taken.info.pid()), Some(1));
        assert!(pending.take(10).is_none());
        let values: Vec<u64> =
            core::iter::from_fn(|| pending.take(34)).map(|taken| taken.info.value()).collect();
        assert_eq!(values, [1, 2, 3, 4, 5]);
        assert_eq!(pending.set(), 0);
    }

    #[test]
    fn signals_without_room_stay_pending_without_information() {
        let mut pending = Pending::new();
        assert_eq!(
            pending.add(40, SignalInfo::queued(code::QUEUE, 1, 0, 9), None, false),
            Added::WithoutInformation
        );
        let taken = pending.take(40).expect("pending");
        assert!(!taken.was_queued);
        assert_eq!(taken.info.code, code::USER);
        assert_eq!(pending.set(), 0);
    }

    #[test]
    fn discarding_tells_the_sources() {
        struct Source(core::sync::atomic::AtomicBool);
        impl SignalSource for Source {
            fn take(&self, _info: &mut SignalInfo) -> bool {
                true
            }
            fn discard(&self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let source = Arc::new(Source(core::sync::atomic::AtomicBool::new(false)));
        let mut pending = Pending::new();
        pending.add(14, SignalInfo::timer(0, 0, 0), Some(source.clone()), true);
        pending.add(33, SignalInfo::kernel(), None, true);
        assert_eq!(pending.discard(bit(14)), 1);
        assert!(source.0.load(Ordering::Relaxed));
        assert_eq!(pending.set(), bit(33));
    }

    #[test]
    fn reservations_stop_at_the_limit() {
        let signals = ProcessSignals::new();
        assert!(signals.reserve(2));
        assert!(signals.reserve(2));
        assert!(!signals.reserve(2));
        signals.release(1);
        assert!(signals.reserve(2));
        assert_eq!(signals.queued(), 2);
    }
}
