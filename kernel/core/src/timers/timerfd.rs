//! The object behind `timerfd`: a timer whose expirations are read.
//!
//! A read returns the expirations since the last read (or since the timer
//! was set) as an 8-byte count and clears it, waiting while there are none;
//! the descriptor is readable while the count is not zero. A timer armed
//! with `TFD_TIMER_CANCEL_ON_SET` that a wall-clock step cancelled fails
//! its next read with `ECANCELED` (and is readable until then). The timer is
//! armed through the process's [`super::ProcessTimers`], which wakes the
//! waiters at each expiry.

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use super::Timer;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FsError, SpecialFile};

/// Bytes a read returns: the expiration count.
const COUNT_BYTES: usize = 8;

/// A timerfd.
#[derive(Debug)]
pub struct TimerFile {
    /// Its timer.
    pub timer: Arc<Timer>,
}

impl SpecialFile for TimerFile {
    fn name(&self) -> String {
        String::from("anon_inode:[timerfd]")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if buffer.len() < COUNT_BYTES {
            return Err(FsError::InvalidArgument);
        }
        let me = caller.machine.current_thread();
        loop {
            if self.timer.take_cancellation() {
                return Err(FsError::Errno(crate::errno::Errno::ECANCELED));
            }
            let count = self.timer.take_expirations();
            if count > 0 {
                buffer[..COUNT_BYTES].copy_from_slice(&count.to_le_bytes());
                return Ok(COUNT_BYTES);
            }
            if is_nonblocking {
                return Err(FsError::WouldBlock);
            }
            self.timer.waiters.add(&me);
            if self.timer.expirations() > 0 || self.timer.is_cancelled() {
                self.timer.waiters.remove(&me);
                continue;
            }
            self.timer.waiters.block(caller, &me)?;
        }
    }

    fn poll(&self) -> u16 {
        if self.timer.expirations() > 0 || self.timer.is_cancelled() { events::POLLIN } else { 0 }
    }

    fn waiters(&self) -> &WaiterList {
        &self.timer.waiters
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
