//! Open files that are neither nodes nor pipes: eventfds, epoll instances,
//! and the sockets to come.
//!
//! Such an object lives only as long as the open file descriptions that
//! refer to it ([`super::FileObject::Special`]); it has no name in the
//! tree. It implements [`SpecialFile`]: reads and writes (which may block),
//! its readiness for `poll`, `select` and epoll, and a [`WaiterList`] it
//! notifies whenever that readiness may have changed.

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use super::FsError;
use super::node::{Caller, FileType, Metadata};
use super::waiters::WaiterList;
use crate::machine::ThreadControl;

/// The inode number every anonymous object shows: Linux gives them all
/// one inode of its `anon_inodefs`.
pub const ANONYMOUS_INODE: u64 = 1;

/// An object behind an open file that is not a node.
///
/// Readiness is reported through [`SpecialFile::poll`]; every change that
/// may alter it must end with [`WaiterList::notify`] on the object's list,
/// after the change is visible, so that waiters check again and
/// edge-triggered epoll interests see a new generation.
pub trait SpecialFile: Send + Sync + Any {
    /// What `/proc/self/fd` shows, such as `anon_inode:[eventfd]`.
    fn name(&self) -> String;

    /// Reads into `buffer`, waiting for data unless `is_nonblocking`
    /// (then `WouldBlock`). Objects without data refuse (`EINVAL`).
    fn read(
        &self,
        _caller: &Caller<'_>,
        _buffer: &mut [u8],
        _is_nonblocking: bool,
    ) -> Result<usize, FsError> {
        Err(FsError::InvalidArgument)
    }

    /// Writes `bytes`, waiting for room unless `is_nonblocking`.
    fn write(&self, _caller: &Caller<'_>, _bytes: &[u8], _is_nonblocking: bool) -> Result<usize, FsError> {
        Err(FsError::InvalidArgument)
    }

    /// The readiness bits ([`super::waiters::events`]) that hold now.
    fn poll(&self) -> u16;

    /// The threads to wake when the readiness may have changed.
    fn waiters(&self) -> &WaiterList;

    /// Wakes `thread` at the object's next change. Objects that depend on
    /// others (epoll instances) add it to those too.
    fn add_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.waiters().add(thread);
    }

    /// Undoes [`SpecialFile::add_waiter`].
    fn remove_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.waiters().remove(thread);
    }

    /// A number that grows at every change (for edge-triggered epoll).
    fn generation(&self) -> u64 {
        self.waiters().generation()
    }

    /// What `fstat` reports: by default an anonymous inode, readable and
    /// writable by its owner, without a file type, as on Linux.
    fn metadata(&self) -> Metadata {
        Metadata::new(ANONYMOUS_INODE, FileType::Anonymous, 0o600)
    }

    /// Whether opening `/proc/PID/fd/N` reaches this object again, as it
    /// reaches a pipe (a stream standing for one); the others, like
    /// Linux's sockets and anonymous inodes, refuse with `ENXIO`.
    fn reopens(&self) -> bool {
        false
    }

    /// The lines `/proc/PID/fdinfo/N` adds for the object, in Linux's
    /// format (`eventfd-count:`, `tfd:`, ...), each ending in a newline;
    /// `owner` is the process whose descriptor it is.
    fn descriptor_info(&self, _caller: &Caller<'_>, _owner: &crate::process::Process) -> String {
        String::new()
    }

    /// The object itself, for system calls that need its concrete type
    /// (`epoll_ctl` on an epoll instance).
    fn as_any(&self) -> &dyn Any;
}

impl core::fmt::Debug for dyn SpecialFile {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_tuple("SpecialFile").field(&self.name()).finish()
    }
}
