//! An interrupt-safe spinlock, the kernel's lowest-level lock.
//!
//! Taking the lock disables interrupts on this CPU and releasing it restores
//! them, so an interrupt handler can never spin on a lock its own CPU holds.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::cpu;

/// The raw lock behind [`SpinMutex`].
#[derive(Debug)]
pub struct RawSpinlock {
    is_locked: AtomicBool,
    interrupts_were_enabled: AtomicBool,
}

/// A mutex that spins with interrupts disabled.
pub type SpinMutex<T> = lock_api::Mutex<RawSpinlock, T>;
/// The guard of a [`SpinMutex`].
pub type SpinMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawSpinlock, T>;

// SAFETY: `lock` returns only once `is_locked` went from false to true with
// acquire ordering, and `unlock` releases it with release ordering, so at most
// one holder exists at a time and its writes are visible to the next.
unsafe impl lock_api::RawMutex for RawSpinlock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self =
        RawSpinlock { is_locked: AtomicBool::new(false), interrupts_were_enabled: AtomicBool::new(false) };
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        let were_enabled = cpu::disable_interrupts();
        while self.is_locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            core::hint::spin_loop();
        }
        self.interrupts_were_enabled.store(were_enabled, Ordering::Relaxed);
    }

    fn try_lock(&self) -> bool {
        let were_enabled = cpu::disable_interrupts();
        let acquired =
            self.is_locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok();
        if acquired {
            self.interrupts_were_enabled.store(were_enabled, Ordering::Relaxed);
        } else {
            cpu::restore_interrupts(were_enabled);
        }
        acquired
    }

    unsafe fn unlock(&self) {
        let were_enabled = self.interrupts_were_enabled.load(Ordering::Relaxed);
        self.is_locked.store(false, Ordering::Release);
        cpu::restore_interrupts(were_enabled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_a_second_holder() {
        let mutex = SpinMutex::new(5);
        let guard = mutex.lock();
        assert!(mutex.try_lock().is_none());
        drop(guard);
        *mutex.lock() += 1;
        assert_eq!(*mutex.lock(), 6);
    }
}
