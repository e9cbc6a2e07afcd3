//! Open file descriptions: what descriptors share after `dup`.
//!
//! An [`OpenFile`] holds the object (a node reached through the mount
//! table, a pipe end, or a [`SpecialFile`] such as an eventfd), the file
//! offset and the status flags. A read or
//! write at the offset holds the description's position lock, as Linux
//! does, so that threads sharing a descriptor never read or write the same
//! bytes twice. The lock puts waiters to sleep rather than spinning: its
//! holder may block on a disk.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use super::FsError;
use super::locks::LockKey;
use super::mount::Location;
use super::node::{Caller, FileType, Metadata, Node};
use super::pipe::PipeEnd;
use super::special::SpecialFile;
use super::waiters::{ChangeListener, events};
use crate::machine::{ThreadControl, Wakeup};

/// `open` flags (Linux `include/uapi/asm-generic/fcntl.h`).
#[allow(missing_docs)]
pub mod flags {
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_RDONLY: u32 = 0o0;
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_NOCTTY: u32 = 0o400;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_NONBLOCK: u32 = 0o4000;
    pub const O_DSYNC: u32 = 0o10000;
    pub const O_ASYNC: u32 = 0o20000;
    pub const O_DIRECT: u32 = 0o40000;
    pub const O_LARGEFILE: u32 = 0o100000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
    pub const O_NOATIME: u32 = 0o1000000;
    pub const O_CLOEXEC: u32 = 0o2000000;
    pub const O_SYNC: u32 = 0o4010000;
    pub const O_PATH: u32 = 0o10000000;
    pub const O_TMPFILE: u32 = 0o20200000;
    /// The flags `F_SETFL` may change.
    pub const SETTABLE: u32 = O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME | O_NONBLOCK;
    /// The flags an open description keeps (`F_GETFL`): all but those that
    /// only act at the open (and `O_CLOEXEC`, a descriptor's).
    pub const KEPT: u32 =
        O_ACCMODE | SETTABLE | O_DSYNC | O_SYNC | O_LARGEFILE | O_PATH | O_DIRECTORY | O_NOFOLLOW;
    /// What an `O_PATH` description keeps.
    pub const KEPT_BY_PATH: u32 = O_PATH | O_DIRECTORY | O_NOFOLLOW;
}

/// `lseek` origins.
#[allow(missing_docs)]
pub mod whence {
    pub const SEEK_SET: u32 = 0;
    pub const SEEK_CUR: u32 = 1;
    pub const SEEK_END: u32 = 2;
    pub const SEEK_DATA: u32 = 3;
    pub const SEEK_HOLE: u32 = 4;
}

/// What an open file refers to.
pub enum FileObject {
    /// A node reached through the mount table.
    Node {
        /// Where it was found.
        location: Location,
        /// What reads and writes go to: the node, or the snapshot its
        /// `open` made.
        data: Arc<dyn Node>,
        /// The directory and name it was opened under (for its path).
        name: Option<(Location, String)>,
    },
    /// One end of a pipe.
    Pipe(PipeEnd),
    /// An object without a node: an eventfd, an epoll instance.
    Special(Arc<dyn SpecialFile>),
}

impl core::fmt::Debug for FileObject {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FileObject::Node { location, .. } => formatter.debug_tuple("Node").field(location).finish(),
            FileObject::Pipe(end) => formatter.debug_tuple("Pipe").field(end).finish(),
            FileObject::Special(special) => formatter.debug_tuple("Special").field(special).finish(),
        }
    }
}

/// Who holds an open file's position and who waits for it.
#[derive(Default)]
struct PositionLock {
    is_held: bool,
    waiters: Vec<Arc<dyn ThreadControl>>,
}

/// An open file description.
pub struct OpenFile {
    object: FileObject,
    offset: AtomicU64,
    status_flags: AtomicU32,
    position: Mutex<PositionLock>,
    owner: Mutex<Owner>,
    /// Whether the description ever took an OFD or `flock` lock (which
    /// closing it for good releases).
    has_locked: AtomicBool,
}

/// Who is signalled of changes to an open file (`F_SETOWN`, `F_SETSIG`,
/// `O_ASYNC`). The system calls fill it in; the description only keeps it.
#[derive(Default)]
pub struct Owner {
    /// `F_OWNER_TID` (0), `F_OWNER_PID` (1) or `F_OWNER_PGRP` (2).
    pub kind: i32,
    /// The thread, process or group; 0: none.
    pub id: i32,
    /// The signal to send (`F_SETSIG`); 0: `SIGIO`.
    pub signal: u8,
    /// What sends it while `O_ASYNC` is set.
    pub listener: Option<Arc<dyn ChangeListener>>,
}

impl core::fmt::Debug for Owner {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Owner")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("signal", &self.signal)
            .field("is_listening", &self.listener.is_some())
            .finish()
    }
}

/// The device number lock keys give pipes (which have inode numbers of
/// their own).
const PIPE_LOCK_DEVICE: u64 = u64::MAX;
/// The device number lock keys give other objects without a node (keyed
/// by address).
const SPECIAL_LOCK_DEVICE: u64 = u64::MAX - 1;

impl core::fmt::Debug for OpenFile {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("OpenFile").field("status_flags", &self.status_flags()).finish()
    }
}

impl OpenFile {
    /// An open file for `object` with the `open` flags `open_flags`.
    pub fn new(object: FileObject, open_flags: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            object,
            offset: AtomicU64::new(0),
            status_flags: AtomicU32::new(
                open_flags & if open_flags & flags::O_PATH != 0 { flags::KEPT_BY_PATH } else { flags::KEPT },
            ),
            position: Mutex::new(PositionLock::default()),
            owner: Mutex::new(Owner::default()),
            has_locked: AtomicBool::new(false),
        })
    }

    /// The identity of the file for its locks: the same for every open of
    /// one file.
    pub fn lock_key(&self) -> LockKey {
        match &self.object {
            FileObject::Node { location, .. } => (location.mount.device(), location.node.inode()),
            FileObject::Pipe(end) => (PIPE_LOCK_DEVICE, end.pipe().inode()),
            FileObject::Special(special) => {
                (SPECIAL_LOCK_DEVICE, Arc::as_ptr(special) as *const () as usize as u64)
            }
        }
    }

    /// The description's identity as a lock owner.
    pub fn lock_owner(&self) -> usize {
        self as *const OpenFile as usize
    }

    /// Reports `event` on the file and, when it was opened by a name, on
    /// its directory (inotify).
    pub fn notify(&self, event: u32) {
        if let FileObject::Node { location, name, .. } = &self.object {
            let named = name.as_ref().map(|(directory, name)| (directory, name.as_str()));
            super::notify::at(location, named, event);
        }
    }

    /// Notes that the description holds (or held) an OFD or `flock` lock.
    pub fn note_locked(&self) {
        self.has_locked.store(true, Ordering::Relaxed);
    }

    /// Who is signalled of changes (`F_SETOWN`, `F_SETSIG`, `O_ASYNC`).
    pub fn owner(&self) -> spin::MutexGuard<'_, Owner> {
        self.owner.lock()
    }

    /// Runs `transfer` at the file offset with the position lock held and
    /// stores the offset it returns. `Interrupted` if the thread must stop
    /// while it waits for the lock.
    fn at_position<T>(
        &self,
        caller: &Caller<'_>,
        transfer: impl FnOnce(u64) -> Result<(T, u64), FsError>,
    ) -> Result<T, FsError> {
        let mut me: Option<Arc<dyn ThreadControl>> = None;
        loop {
            {
                let mut lock = self.position.lock();
                if !lock.is_held {
                    lock.is_held = true;
                    break;
                }
                let thread = me.get_or_insert_with(|| caller.machine.current_thread());
                if !lock.waiters.iter().any(|waiter| Arc::ptr_eq(waiter, thread)) {
                    lock.waiters.push(thread.clone());
                }
            }
            if caller.machine.block(None) == Wakeup::Stop {
                if let Some(thread) = &me {
                    self.position.lock().waiters.retain(|waiter| !Arc::ptr_eq(waiter, thread));
                }
                return Err(FsError::Interrupted);
            }
        }
        let result = transfer(self.offset()).map(|(value, offset)| {
            self.set_offset(offset);
            value
        });
        let waiters = {
            let mut lock = self.position.lock();
            lock.is_held = false;
            core::mem::take(&mut lock.waiters)
        };
        for waiter in waiters {
            waiter.wake();
        }
        result
    }

    /// What it refers to.
    pub fn object(&self) -> &FileObject {
        &self.object
    }

    /// The node's location, if this is a node.
    pub fn location(&self) -> Option<&Location> {
        match &self.object {
            FileObject::Node { location, .. } => Some(location),
            FileObject::Pipe(_) | FileObject::Special(_) => None,
        }
    }

    /// The pipe end, if this is one.
    pub fn pipe_end(&self) -> Option<&PipeEnd> {
        match &self.object {
            FileObject::Pipe(end) => Some(end),
            FileObject::Node { .. } | FileObject::Special(_) => None,
        }
    }

    /// The special file, if this is one.
    pub fn special(&self) -> Option<&Arc<dyn SpecialFile>> {
        match &self.object {
            FileObject::Special(special) => Some(special),
            FileObject::Node { .. } | FileObject::Pipe(_) => None,
        }
    }

    /// The status flags (`F_GETFL`).
    pub fn status_flags(&self) -> u32 {
        self.status_flags.load(Ordering::Relaxed)
    }

    /// Replaces the flags `F_SETFL` may change.
    pub fn set_status_flags(&self, requested: u32) {
        // Only objects that can signal readiness keep `O_ASYNC` (Linux's
        // files without a `fasync` operation drop it).
        let settable = match &self.object {
            FileObject::Node { data, .. } if !data.is_terminal() => flags::SETTABLE & !flags::O_ASYNC,
            _ => flags::SETTABLE,
        };
        let kept = self.status_flags() & !settable;
        self.status_flags.store(kept | (requested & settable), Ordering::Relaxed);
    }

    /// Whether this is an `O_PATH` descriptor, good only for naming.
    pub fn is_path_only(&self) -> bool {
        self.status_flags() & flags::O_PATH != 0
    }

    /// Whether reads are allowed.
    pub fn is_readable(&self) -> bool {
        !self.is_path_only()
            && matches!(self.status_flags() & flags::O_ACCMODE, flags::O_RDONLY | flags::O_RDWR)
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        !self.is_path_only()
            && matches!(self.status_flags() & flags::O_ACCMODE, flags::O_WRONLY | flags::O_RDWR)
    }

    /// Whether `O_NONBLOCK` is set.
    pub fn is_nonblocking(&self) -> bool {
        self.status_flags() & flags::O_NONBLOCK != 0
    }

    /// The current offset.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::Relaxed)
    }

    /// Sets the offset (`getdents64` keeps its directory cookie here).
    pub fn set_offset(&self, offset: u64) {
        self.offset.store(offset, Ordering::Relaxed);
    }

    /// The metadata `fstat` reports.
    pub fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        match &self.object {
            FileObject::Node { location, data, .. } => {
                let mut metadata = data.metadata(caller)?;
                metadata.device = location.mount.device();
                Ok(metadata)
            }
            FileObject::Pipe(end) => {
                let mut metadata = Metadata::new(end.pipe().inode(), FileType::Fifo, 0o600);
                metadata.block_size_bytes = 4096;
                Ok(metadata)
            }
            FileObject::Special(special) => Ok(special.metadata()),
        }
    }

    /// The node reads and writes go to, if this is a node.
    pub fn data(&self) -> Option<&Arc<dyn Node>> {
        match &self.object {
            FileObject::Node { data, .. } => Some(data),
            FileObject::Pipe(_) | FileObject::Special(_) => None,
        }
    }

    /// Reads at the file offset and advances it; reports
    /// the access to inotify.
    pub fn read(&self, caller: &Caller<'_>, buffer: &mut [u8]) -> Result<usize, FsError> {
        let result = self.read_unreported(caller, buffer);
        if result.as_ref().is_ok_and(|&length| length > 0) {
            self.notify(super::notify::mask::ACCESS);
        }
        if result.is_ok() && !buffer.is_empty() {
            self.accessed(caller);
        }
        result
    }

    /// Records an access (a read, a directory listing) in the access time,
    /// as the mount's policy says, unless opened with `O_NOATIME`.
    pub fn accessed(&self, caller: &Caller<'_>) {
        if self.status_flags() & flags::O_NOATIME != 0 {
            return;
        }
        if let FileObject::Node { location, .. } = &self.object {
            super::access_time::touch(caller, location);
        }
    }

    /// Reads at the file offset and advances it.
    fn read_unreported(&self, caller: &Caller<'_>, buffer: &mut [u8]) -> Result<usize, FsError> {
        if !self.is_readable() {
            return Err(FsError::BadDescriptor);
        }
        match &self.object {
            FileObject::Pipe(end) => end.pipe().read(caller, buffer, self.is_nonblocking()),
            FileObject::Special(special) => special.read(caller, buffer, self.is_nonblocking()),
            FileObject::Node { data, .. } => {
                if data.file_type() == FileType::Directory {
                    return Err(FsError::IsDirectory);
                }
                if !data.is_seekable() {
                    return data.read_at(caller, 0, buffer);
                }
                self.at_position(caller, |offset| {
                    let length = data.read_at(caller, offset, buffer)?;
                    Ok((length, offset + length as u64))
                })
            }
        }
    }

    /// Writes at the file offset (at the end with `O_APPEND`) and advances it; reports
    /// the change to inotify.
    pub fn write(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<usize, FsError> {
        let result = self.write_unreported(caller, bytes);
        if result.as_ref().is_ok_and(|&length| length > 0) {
            self.notify(super::notify::mask::MODIFY);
        }
        result
    }

    /// Writes at the file offset (at the end with `O_APPEND`) and advances
    /// it.
    fn write_unreported(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<usize, FsError> {
        if !self.is_writable() {
            return Err(FsError::BadDescriptor);
        }
        match &self.object {
            FileObject::Pipe(end) => end.pipe().write(caller, bytes, self.is_nonblocking()),
            FileObject::Special(special) => special.write(caller, bytes, self.is_nonblocking()),
            FileObject::Node { data, .. } => {
                if !data.is_seekable() {
                    return data.write_at(caller, 0, bytes);
                }
                let is_append = self.status_flags() & flags::O_APPEND != 0;
                self.at_position(caller, |offset| {
                    if is_append {
                        return data.append(caller, bytes);
                    }
                    let length = data.write_at(caller, offset, bytes)?;
                    Ok((length, offset + length as u64))
                })
            }
        }
    }

    fn positioned_data(&self) -> Result<&Arc<dyn Node>, FsError> {
        match &self.object {
            FileObject::Node { data, .. } if data.is_seekable() => Ok(data),
            _ => Err(FsError::NotSeekable),
        }
    }

    /// Reads at `offset` without moving the file offset (`pread64`);
    /// reports the access to inotify.
    pub fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let result = self.read_at_unreported(caller, offset, buffer);
        if result.as_ref().is_ok_and(|&length| length > 0) {
            self.notify(super::notify::mask::ACCESS);
        }
        if result.is_ok() && !buffer.is_empty() {
            self.accessed(caller);
        }
        result
    }

    /// Reads at `offset` without moving the file offset (`pread64`).
    fn read_at_unreported(
        &self,
        caller: &Caller<'_>,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<usize, FsError> {
        if !self.is_readable() {
            return Err(FsError::BadDescriptor);
        }
        let data = self.positioned_data()?;
        if data.file_type() == FileType::Directory {
            return Err(FsError::IsDirectory);
        }
        data.read_at(caller, offset, buffer)
    }

    /// Writes at `offset` without moving the file offset (`pwrite64`);
    /// reports the change to inotify.
    pub fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let result = self.write_at_unreported(caller, offset, bytes);
        if result.as_ref().is_ok_and(|&length| length > 0) {
            self.notify(super::notify::mask::MODIFY);
        }
        result
    }

    /// Writes at `offset` without moving the file offset (`pwrite64`; with
    /// `O_APPEND` it appends, as Linux does).
    fn write_at_unreported(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        if !self.is_writable() {
            return Err(FsError::BadDescriptor);
        }
        let data = self.positioned_data()?;
        if self.status_flags() & flags::O_APPEND != 0 {
            return Ok(data.append(caller, bytes)?.0);
        }
        data.write_at(caller, offset, bytes)
    }

    /// `lseek`: moves the offset; returns the new one.
    pub fn seek(&self, caller: &Caller<'_>, offset: i64, origin: u32) -> Result<u64, FsError> {
        if self.is_path_only() {
            return Err(FsError::BadDescriptor);
        }
        let data = self.positioned_data()?;
        let is_directory = data.file_type() == FileType::Directory;
        let size = || data.metadata(caller).map(|metadata| metadata.size_bytes as i64);
        let base = match origin {
            whence::SEEK_SET => 0,
            whence::SEEK_CUR if !is_directory => self.offset() as i64,
            whence::SEEK_END if !is_directory => size()?,
            whence::SEEK_DATA | whence::SEEK_HOLE if !is_directory => {
                let size = size()?;
                if offset < 0 || offset >= size {
                    return Err(FsError::NoSuchPosition);
                }
                // Files have no holes: data everywhere, the hole at the end.
                let position = if origin == whence::SEEK_DATA { offset } else { size };
                self.set_offset(position as u64);
                return Ok(position as u64);
            }
            _ => return Err(FsError::InvalidArgument),
        };
        let position =
            base.checked_add(offset).filter(|position| *position >= 0).ok_or(FsError::InvalidArgument)?;
        self.set_offset(position as u64);
        Ok(position as u64)
    }

    /// Readiness for `poll`, `select` and epoll: pipes and special files
    /// report their state; nodes are always ready. `POLLIN` and `POLLOUT`
    /// imply `POLLRDNORM` and `POLLWRNORM`.
    pub fn poll(&self) -> u16 {
        let mut ready = match &self.object {
            FileObject::Pipe(end) => end.poll(),
            FileObject::Special(special) => special.poll(),
            FileObject::Node { .. } => events::POLLIN | events::POLLOUT,
        };
        if ready & events::POLLIN != 0 {
            ready |= events::POLLRDNORM;
        }
        if ready & events::POLLOUT != 0 {
            ready |= events::POLLWRNORM;
        }
        ready
    }

    /// Whether epoll can watch this file. Like Linux, it refuses regular
    /// files and directories, whose readiness never changes.
    pub fn is_pollable(&self) -> bool {
        match &self.object {
            FileObject::Node { data, .. } => {
                !matches!(data.file_type(), FileType::Regular | FileType::Directory)
            }
            FileObject::Pipe(_) | FileObject::Special(_) => true,
        }
    }

    /// Wakes `thread` at the next change of the object's readiness. Nodes
    /// never change: waiting for them is waiting for something else.
    pub fn add_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        match &self.object {
            FileObject::Pipe(end) => end.pipe().waiters().add(thread),
            FileObject::Special(special) => special.add_waiter(thread),
            FileObject::Node { .. } => {}
        }
    }

    /// Undoes [`OpenFile::add_waiter`].
    pub fn remove_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        match &self.object {
            FileObject::Pipe(end) => end.pipe().waiters().remove(thread),
            FileObject::Special(special) => special.remove_waiter(thread),
            FileObject::Node { .. } => {}
        }
    }

    /// A number that grows whenever the object changes (0 for nodes), for
    /// edge-triggered epoll.
    pub fn generation(&self) -> u64 {
        match &self.object {
            FileObject::Pipe(end) => end.pipe().waiters().generation(),
            FileObject::Special(special) => special.generation(),
            FileObject::Node { .. } => 0,
        }
    }
}

#[cfg(test)]
mod tests;

impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.has_locked.load(Ordering::Relaxed) {
            super::locks::table().release_description(self.lock_key(), self.lock_owner());
        }
        if super::notify::is_watching() && !self.is_path_only() {
            let is_writer = self.is_writable();
            self.notify(if is_writer {
                super::notify::mask::CLOSE_WRITE
            } else {
                super::notify::mask::CLOSE_NOWRITE
            });
        }
    }
}
