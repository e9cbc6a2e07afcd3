//! The object behind `eventfd`: a 64-bit counter threads signal through.
//!
//! A write of 8 bytes adds their value to the counter; a read of 8 bytes
//! takes the whole count and resets it to zero, or, in semaphore mode,
//! takes one. Reads wait while the counter is zero; writes wait while the
//! sum would pass [`COUNTER_MAX`]. The semantics and errors are Linux's
//! (`eventfd(2)`); waiting follows the pipe's pattern (see [`super::pipe`]).

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use spin::Mutex;

use super::FsError;
use super::node::Caller;
use super::special::SpecialFile;
use super::waiters::{WaiterList, events};

/// The largest value the counter holds (2^64 - 2): a write of 2^64 - 1
/// could never complete.
pub const COUNTER_MAX: u64 = u64::MAX - 1;
/// Bytes a read or write transfers: one `u64`.
const VALUE_BYTES: usize = 8;

/// An eventfd: its counter and the threads waiting on it.
#[derive(Debug)]
pub struct EventCounter {
    count: Mutex<u64>,
    is_semaphore: bool,
    /// A number no other eventfd has (`eventfd-id` in fdinfo).
    id: u64,
    waiters: WaiterList,
}

/// The next eventfd's [`EventCounter::id`].
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

impl EventCounter {
    /// A counter starting at `initial`; `is_semaphore` makes reads take
    /// one at a time (`EFD_SEMAPHORE`).
    pub fn new(initial: u64, is_semaphore: bool) -> Arc<EventCounter> {
        let id = NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        Arc::new(EventCounter { count: Mutex::new(initial), is_semaphore, id, waiters: WaiterList::new() })
    }

    /// The current count.
    pub fn count(&self) -> u64 {
        *self.count.lock()
    }

    /// Runs `attempt` on the counter until it gives a value, waiting for a
    /// change in between unless `is_nonblocking`. A successful attempt
    /// changed the counter: every waiter is woken.
    fn transfer(
        &self,
        caller: &Caller<'_>,
        is_nonblocking: bool,
        mut attempt: impl FnMut(&mut u64) -> Option<u64>,
    ) -> Result<u64, FsError> {
        let me = caller.machine.current_thread();
        loop {
            {
                let mut count = self.count.lock();
                if let Some(value) = attempt(&mut count) {
                    drop(count);
                    self.waiters.remove(&me);
                    self.waiters.notify();
                    return Ok(value);
                }
                if is_nonblocking {
                    return Err(FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            self.waiters.block(caller, &me)?;
        }
    }
}

impl SpecialFile for EventCounter {
    fn name(&self) -> String {
        String::from("anon_inode:[eventfd]")
    }

    /// Takes the count (or one, as a semaphore) into the first 8 bytes of
    /// `buffer`; `InvalidArgument` for a buffer shorter than that.
    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if buffer.len() < VALUE_BYTES {
            return Err(FsError::InvalidArgument);
        }
        let value = self.transfer(caller, is_nonblocking, |count| {
            if *count == 0 {
                return None;
            }
            let taken = if self.is_semaphore { 1 } else { *count };
            *count -= taken;
            Some(taken)
        })?;
        buffer[..VALUE_BYTES].copy_from_slice(&value.to_le_bytes());
        Ok(VALUE_BYTES)
    }

    /// Adds the value in the first 8 bytes of `bytes`; `InvalidArgument`
    /// for fewer bytes or the value 2^64 - 1.
    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        let value = bytes
            .get(..VALUE_BYTES)
            .and_then(|value| value.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(FsError::InvalidArgument)?;
        if value == u64::MAX {
            return Err(FsError::InvalidArgument);
        }
        self.transfer(caller, is_nonblocking, |count| {
            if COUNTER_MAX - *count < value {
                return None;
            }
            *count += value;
            Some(value)
        })?;
        Ok(VALUE_BYTES)
    }

    /// Readable while the count is not zero; writable while at least 1
    /// can be added without waiting.
    fn poll(&self) -> u16 {
        let count = self.count();
        let mut ready = 0;
        if count > 0 {
            ready |= events::POLLIN;
        }
        if count < COUNTER_MAX {
            ready |= events::POLLOUT;
        }
        ready
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    /// The count in hexadecimal, right-aligned in 16 columns, the id and
    /// the mode, as Linux shows them.
    fn descriptor_info(&self, _caller: &Caller<'_>, _owner: &crate::process::Process) -> String {
        alloc::format!(
            "eventfd-count: {:16x}\neventfd-id: {}\neventfd-semaphore: {}\n",
            self.count(),
            self.id,
            u8::from(self.is_semaphore)
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;
