//! Advisory locks: `fcntl`'s record locks (POSIX and open file description
//! ones) and `flock`, over [`crate::vfs::locks`]'s table, with Linux's
//! validation of `struct flock`.

use super::files::caller;
use super::{Context, Result};
use crate::errno::Errno;
use crate::user::User;
use crate::vfs::locks::{self, LockKind, Owner, RecordLock};
use crate::vfs::{FsError, OpenFile};

/// `fcntl` lock commands (`F_SETLK` and `F_OFD_SETLK` are the rest).
mod command {
    pub const F_GETLK: u64 = 5;
    pub const F_SETLKW: u64 = 7;
    pub const F_OFD_GETLK: u64 = 36;
    pub const F_OFD_SETLK: u64 = 37;
    pub const F_OFD_SETLKW: u64 = 38;
}

/// `struct flock` lock types.
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
/// Size of `struct flock`.
const FLOCK_SIZE: usize = 32;
/// The largest offset (`OFFSET_MAX`): a lock to it covers all growth.
const OFFSET_MAX: u64 = i64::MAX as u64;

/// `flock` operations.
const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;
const LOCK_NB: u64 = 4;
const LOCK_UN: u64 = 8;

/// The owner of the calling process's POSIX locks.
fn process_owner(pid: u64) -> Owner {
    Owner::Process(pid)
}

/// Releases the calling process's POSIX locks on `file`'s file: Linux does
/// so when a process closes any descriptor of the file.
pub(super) fn closed(context: Context<'_>, file: &OpenFile) {
    locks::table().release_owner(file.lock_key(), process_owner(context.process.pid));
}

/// The kind a `struct flock` type asks for; `None` for `F_UNLCK`.
fn kind_of(lock_type: i16) -> core::result::Result<Option<LockKind>, Errno> {
    match lock_type {
        F_RDLCK => Ok(Some(LockKind::Shared)),
        F_WRLCK => Ok(Some(LockKind::Exclusive)),
        F_UNLCK => Ok(None),
        _ => Err(Errno::EINVAL),
    }
}

/// The byte range `start..=end` a `struct flock` names from `whence`.
fn range(
    context: Context<'_>,
    file: &OpenFile,
    whence: i16,
    start: i64,
    length: i64,
) -> core::result::Result<(u64, u64), Errno> {
    let base = match whence {
        0 => 0,
        1 => file.offset() as i64,
        2 => file.metadata(&caller(context))?.size_bytes as i64,
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match length {
        0 => (start, OFFSET_MAX as i64),
        1.. => (start, start.checked_add(length - 1).ok_or(Errno::EOVERFLOW)?),
        _ => (start.checked_add(length).ok_or(Errno::EOVERFLOW)?, start - 1),
    };
    if start < 0 || end < start {
        return Err(Errno::EINVAL);
    }
    Ok((start as u64, end as u64))
}

/// `fcntl(fd, F_GETLK/F_SETLK/F_SETLKW/F_OFD_*, struct flock *)`.
pub(super) fn record_lock(context: Context<'_>, file: &OpenFile, command: u64, address: u64) -> Result {
    let user = User::new(context.machine);
    let mut bytes = user.read_bytes(address, FLOCK_SIZE)?;
    let word = |at: usize| i16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let long = |at: usize| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[at..at + 8]);
        i64::from_le_bytes(raw)
    };
    let (lock_type, whence, start, length) = (word(0), word(2), long(8), long(16));
    let pid = i32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let is_description_lock =
        matches!(command, command::F_OFD_GETLK | command::F_OFD_SETLK | command::F_OFD_SETLKW);
    if is_description_lock && pid != 0 {
        return Err(Errno::EINVAL.into());
    }
    let kind = kind_of(lock_type)?;
    let (start, end) = range(context, file, whence, start, length)?;
    let owner = if is_description_lock {
        Owner::Description(file.lock_owner())
    } else {
        process_owner(context.process.pid)
    };
    let key = file.lock_key();
    if matches!(command, command::F_GETLK | command::F_OFD_GETLK) {
        let kind = kind.ok_or(Errno::EINVAL)?;
        let wanted = RecordLock { owner, kind, start, end };
        match locks::table().conflict(key, &wanted) {
            None => bytes[..2].copy_from_slice(&F_UNLCK.to_le_bytes()),
            Some(held) => {
                let held_type = if held.kind == LockKind::Shared { F_RDLCK } else { F_WRLCK };
                let held_length = if held.end == OFFSET_MAX { 0 } else { held.end - held.start + 1 };
                let held_pid = match held.owner {
                    Owner::Process(pid) => pid as i32,
                    Owner::Description(_) => -1,
                };
                bytes[..2].copy_from_slice(&held_type.to_le_bytes());
                bytes[2..4].copy_from_slice(&0i16.to_le_bytes());
                bytes[8..16].copy_from_slice(&held.start.to_le_bytes());
                bytes[16..24].copy_from_slice(&held_length.to_le_bytes());
                bytes[24..28].copy_from_slice(&held_pid.to_le_bytes());
            }
        }
        user.write_bytes(address, &bytes)?;
        return Ok(0);
    }
    match kind {
        Some(LockKind::Shared) if !file.is_readable() => return Err(Errno::EBADF.into()),
        Some(LockKind::Exclusive) if !file.is_writable() => return Err(Errno::EBADF.into()),
        _ => {}
    }
    if is_description_lock {
        file.note_locked();
    }
    let wait = matches!(command, command::F_SETLKW | command::F_OFD_SETLKW);
    let wanted = RecordLock { owner, kind: kind.unwrap_or(LockKind::Shared), start, end };
    match locks::table().set_record(&caller(context), key, wanted, kind.is_none(), wait) {
        Ok(()) => Ok(0),
        Err(FsError::WouldBlock) => Err(Errno::EAGAIN.into()),
        Err(error) => Err(error.into()),
    }
}

/// `flock(fd, operation)`.
pub(super) fn flock(context: Context<'_>, file: &OpenFile, operation: u64) -> Result {
    let kind = match operation & !LOCK_NB {
        LOCK_SH => Some(LockKind::Shared),
        LOCK_EX => Some(LockKind::Exclusive),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL.into()),
    };
    file.note_locked();
    let wait = operation & LOCK_NB == 0;
    match locks::table().set_whole(&caller(context), file.lock_key(), file.lock_owner(), kind, wait) {
        Ok(()) => Ok(0),
        Err(FsError::WouldBlock) => Err(Errno::EAGAIN.into()),
        Err(error) => Err(error.into()),
    }
}
