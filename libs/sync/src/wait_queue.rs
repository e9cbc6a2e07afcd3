//! Wait queues: threads waiting for a condition, in arrival order.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::{Waker, scheduler};

struct Waiter {
    thread: Arc<dyn Waker>,
    is_woken: AtomicBool,
}

/// Threads waiting for something another thread will announce.
#[derive(Default)]
pub struct WaitQueue {
    waiters: spin::Mutex<VecDeque<Arc<Waiter>>>,
}

impl core::fmt::Debug for WaitQueue {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(formatter, "WaitQueue({} waiting)", self.waiters.lock().len())
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        WaitQueue { waiters: spin::Mutex::new(VecDeque::new()) }
    }

    /// Blocks until `condition` returns `Some`, and returns its value.
    /// `condition` runs before each park, after the thread joined the queue,
    /// so a wake that follows any change it looks at is never missed.
    pub fn wait_until<T>(&self, mut condition: impl FnMut() -> Option<T>) -> T {
        loop {
            if let Some(value) = condition() {
                return value;
            }
            let waiter = Arc::new(Waiter { thread: scheduler().current(), is_woken: AtomicBool::new(false) });
            self.waiters.lock().push_back(waiter.clone());
            if let Some(value) = condition() {
                self.remove(&waiter);
                return value;
            }
            while !waiter.is_woken.load(Ordering::Acquire) {
                scheduler().park_on(self.address());
            }
        }
    }

    /// Blocks once: joins the queue, runs `release` (typically unlocking
    /// what the waker needs), and parks until woken.
    pub(crate) fn sleep_after(&self, release: impl FnOnce()) {
        let waiter = Arc::new(Waiter { thread: scheduler().current(), is_woken: AtomicBool::new(false) });
        self.waiters.lock().push_back(waiter.clone());
        release();
        while !waiter.is_woken.load(Ordering::Acquire) {
            scheduler().park_on(self.address());
        }
    }

    /// The queue's address, which names it in reports.
    fn address(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    fn remove(&self, waiter: &Arc<Waiter>) {
        self.waiters.lock().retain(|queued| !Arc::ptr_eq(queued, waiter));
    }

    /// Wakes the longest-waiting thread; `false` if none waited.
    pub fn wake_one(&self) -> bool {
        let waiter = self.waiters.lock().pop_front();
        match waiter {
            Some(waiter) => {
                waiter.is_woken.store(true, Ordering::Release);
                waiter.thread.wake();
                true
            }
            None => false,
        }
    }

    /// Wakes every waiting thread; returns how many.
    pub fn wake_all(&self) -> usize {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        let count = waiters.len();
        for waiter in waiters {
            waiter.is_woken.store(true, Ordering::Release);
            waiter.thread.wake();
        }
        count
    }
}
