//! The object behind `signalfd`: reading it takes pending signals.
//!
//! A read takes the reading thread's pending signals in the descriptor's
//! mask (its own, then its process's), blocked or not, as `struct
//! signalfd_siginfo` records of 128 bytes, as many as fit; it waits while
//! none is pending. Every send wakes the process's signal waiters, which
//! readers and pollers join. Readiness (`poll`, epoll) looks at the
//! process's pending signals and those of the thread that made the
//! descriptor: `poll` is not told who asks, so a signal sent to another
//! thread alone does not make it readable, as it would on Linux for that
//! thread.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::any::Any;

use spin::Mutex;

use super::info::SIGINFO_SIZE;
use super::{ProcessSignals, UNBLOCKABLE};
use crate::process::Thread;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FsError, SpecialFile};

/// A signalfd: the signals it takes.
pub struct SignalFile {
    mask: Mutex<u64>,
    signals: Arc<ProcessSignals>,
    creator: Weak<Thread>,
}

impl core::fmt::Debug for SignalFile {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("SignalFile").field("mask", &*self.mask.lock()).finish()
    }
}

impl SignalFile {
    /// A signalfd of `creator`'s process taking the signals in `mask`.
    pub fn new(creator: &Arc<Thread>, mask: u64) -> Arc<SignalFile> {
        Arc::new(SignalFile {
            mask: Mutex::new(mask & !UNBLOCKABLE),
            signals: creator.signals.clone(),
            creator: Arc::downgrade(creator),
        })
    }

    /// Takes the signals in `mask` from now on (`signalfd` on an existing
    /// descriptor).
    pub fn set_mask(&self, mask: u64) {
        *self.mask.lock() = mask & !UNBLOCKABLE;
        self.signals.waiters.notify();
    }

    /// The signals it takes.
    pub fn mask(&self) -> u64 {
        *self.mask.lock()
    }
}

impl SpecialFile for SignalFile {
    fn name(&self) -> String {
        String::from("anon_inode:[signalfd]")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if buffer.len() < SIGINFO_SIZE {
            return Err(FsError::InvalidArgument);
        }
        // Kernel callers have no signals to take.
        let thread = caller.thread.ok_or(FsError::InvalidArgument)?;
        let me = caller.machine.current_thread();
        loop {
            let mut filled = 0;
            while filled + SIGINFO_SIZE <= buffer.len() {
                let Some((signal, info)) = super::take_from(thread, self.mask()) else {
                    break;
                };
                buffer[filled..filled + SIGINFO_SIZE].copy_from_slice(&info.encode_for_signalfd(signal));
                filled += SIGINFO_SIZE;
            }
            if filled > 0 {
                return Ok(filled);
            }
            if is_nonblocking {
                return Err(FsError::WouldBlock);
            }
            self.signals.waiters.add(&me);
            if super::pending_set(thread) & self.mask() != 0 {
                self.signals.waiters.remove(&me);
                continue;
            }
            self.signals.waiters.block(caller, &me)?;
        }
    }

    fn poll(&self) -> u16 {
        let mask = self.mask();
        let mut pending = self.signals.pending.lock().set();
        if let Some(creator) = self.creator.upgrade() {
            pending |= creator.state.lock().pending.set();
        }
        if pending & mask != 0 { events::POLLIN } else { 0 }
    }

    fn waiters(&self) -> &WaiterList {
        &self.signals.waiters
    }

    /// The signals it takes, signal N as bit N - 1, in 16 hexadecimal
    /// digits.
    fn descriptor_info(&self, _caller: &Caller<'_>, _owner: &crate::process::Process) -> String {
        alloc::format!("sigmask:\t{:016x}\n", self.mask())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
