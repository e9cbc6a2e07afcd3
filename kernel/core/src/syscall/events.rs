//! Event notification: eventfd, eventfd2.

use alloc::sync::Arc;

use super::paths::install;
use super::{Context, Result};
use crate::errno::Errno;
use crate::vfs::file::flags;
use crate::vfs::{EventCounter, FileObject, OpenFile};

/// `eventfd2` flags (Linux `include/linux/eventfd.h`).
const EFD_SEMAPHORE: u64 = 1;
const EFD_NONBLOCK: u64 = flags::O_NONBLOCK as u64;
const EFD_CLOEXEC: u64 = flags::O_CLOEXEC as u64;

/// `eventfd2` (and `eventfd`, which passes no flags): a counter starting
/// at the `unsigned int` `initial`.
pub(super) fn eventfd2(context: Context<'_>, initial: u64, event_flags: u64) -> Result {
    if event_flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let counter = EventCounter::new(u64::from(initial as u32), event_flags & EFD_SEMAPHORE != 0);
    let status = flags::O_RDWR | (event_flags & EFD_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(counter as Arc<_>), status);
    install(context, file, event_flags & EFD_CLOEXEC != 0)
}
