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
    /// The clock id it was created with.
    pub clock_id: u32,
    /// The flags of its last `timerfd_settime` (`TFD_TIMER_ABSTIME`,
    /// `TFD_TIMER_CANCEL_ON_SET`).
    pub settime_flags: core::sync::atomic::AtomicU32,
}

impl TimerFile {
    /// A timerfd of clock `clock_id` with `timer`, not yet set.
    pub fn new(timer: Arc<Timer>, clock_id: u32) -> TimerFile {
        TimerFile { timer, clock_id, settime_flags: core::sync::atomic::AtomicU32::new(0) }
    }
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

    /// The clock, the unread expirations, the last setting's flags (in
    /// octal) and the time left and interval as (seconds, nanoseconds).
    fn descriptor_info(&self, caller: &Caller<'_>, owner: &crate::process::Process) -> String {
        let setting = self.timer.setting(caller.machine, owner);
        let split = |ns: u64| (ns / 1_000_000_000, ns % 1_000_000_000);
        let (value, interval) = (split(setting.value_ns), split(setting.interval_ns));
        alloc::format!(
            "clockid: {}\nticks: {}\nsettime flags: 0{:o}\nit_value: ({}, {})\nit_interval: ({}, {})\n",
            self.clock_id,
            self.timer.expirations(),
            self.settime_flags.load(core::sync::atomic::Ordering::Relaxed),
            value.0,
            value.1,
            interval.0,
            interval.1,
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
