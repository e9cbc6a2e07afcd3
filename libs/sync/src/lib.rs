//! Wait queues, sleeping mutexes and condition variables.
//!
//! All blocking goes through the [`Scheduler`] given to [`install`]: a
//! waiter registers itself in a [`WaitQueue`], re-checks its condition, and
//! parks; a waker takes waiters off the queue and unparks them. Because a
//! park returns at once when an unpark came first (a wake token), a wake
//! between the re-check and the park is never lost.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod mutex;
mod wait_queue;

pub use mutex::{Condvar, Mutex, MutexGuard};
pub use wait_queue::WaitQueue;

use alloc::sync::Arc;

/// A thread that can be woken.
pub trait Waker: Send + Sync {
    /// Makes the thread runnable (or its next park return at once).
    fn wake(&self);
}

/// The scheduler the primitives block through.
pub trait Scheduler: Sync {
    /// The calling thread.
    fn current(&self) -> Arc<dyn Waker>;
    /// Blocks the calling thread until it is woken (or spuriously).
    fn park(&self);
    /// [`Scheduler::park`], waiting in the queue at `queue_address` (a
    /// scheduler may record it for reports of a stuck machine).
    fn park_on(&self, queue_address: usize) {
        let _ = queue_address;
        self.park();
    }
}

static SCHEDULER: spin::Once<&'static dyn Scheduler> = spin::Once::new();

/// Installs the scheduler (the first call wins).
pub fn install(scheduler: &'static dyn Scheduler) {
    SCHEDULER.call_once(|| scheduler);
}

fn scheduler() -> &'static dyn Scheduler {
    *SCHEDULER.get().expect("rosv_sync::install runs before anything blocks")
}

#[cfg(test)]
mod tests;
