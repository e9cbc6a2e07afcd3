//! A mutex whose waiters sleep, and a condition variable to go with it.

use core::ops::{Deref, DerefMut};

use crate::WaitQueue;

/// A mutual-exclusion lock that blocks waiting threads instead of spinning.
#[derive(Debug, Default)]
pub struct Mutex<T> {
    value: spin::Mutex<T>,
    waiters: WaitQueue,
}

/// Access to the value of a locked [`Mutex`]; unlocking wakes a waiter.
pub struct MutexGuard<'a, T> {
    guard: Option<spin::MutexGuard<'a, T>>,
    mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// A mutex holding `value`.
    pub const fn new(value: T) -> Self {
        Mutex { value: spin::Mutex::new(value), waiters: WaitQueue::new() }
    }

    /// Locks, sleeping while another thread holds the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let guard = self.waiters.wait_until(|| self.value.try_lock());
        MutexGuard { guard: Some(guard), mutex: self }
    }

    /// Locks if nobody holds the lock.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.value.try_lock().map(|guard| MutexGuard { guard: Some(guard), mutex: self })
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.guard.as_ref().expect("a guard holds the lock until dropped")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("a guard holds the lock until dropped")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.mutex.waiters.wake_one();
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        (**self).fmt(formatter)
    }
}

/// A condition variable: threads wait, with a [`Mutex`] held, for another
/// thread to announce a change.
#[derive(Debug, Default)]
pub struct Condvar {
    waiters: WaitQueue,
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Self {
        Condvar { waiters: WaitQueue::new() }
    }

    /// Unlocks `guard`, sleeps until notified (or spuriously), and locks
    /// again.
    pub fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        let mutex = guard.mutex;
        self.waiters.sleep_after(|| {
            drop(guard.guard.take());
            mutex.waiters.wake_one();
        });
        drop(guard);
        mutex.lock()
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.waiters.wake_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.waiters.wake_all();
    }
}
