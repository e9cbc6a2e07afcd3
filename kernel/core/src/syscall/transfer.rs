//! Moving data between descriptors without the application's memory:
//! `splice`, `tee`, `vmsplice`, `copy_file_range`, and the calls that
//! shape or flush a file's space: `fallocate`, `sync_file_range`,
//! `syncfs`, and the file handle calls.
//!
//! A pipe's bytes are first copied out without being taken
//! ([`crate::vfs::Pipe::peek`]), written to the other side, and then only
//! as many as were written are taken, so a write that stops short never
//! loses data. Like Linux, a call waits for data in an input pipe and for
//! room in an output pipe, then moves what is there and what fits (at most
//! one chunk of [`CHUNK_BYTES`]) and returns; it never waits with
//! `SPLICE_F_NONBLOCK` or `O_NONBLOCK`. Objects Linux cannot splice
//! (directories, eventfds, epoll instances) are refused before any wait.

use alloc::sync::Arc;
use alloc::vec;

use super::files::{CHUNK_BYTES, caller, file};
use super::paths::{locate, read_path};
use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::AT_EMPTY_PATH;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{Caller, FileType, FsError, OpenFile, Pipe};

/// `SPLICE_F_MOVE`, `SPLICE_F_NONBLOCK`, `SPLICE_F_MORE`, `SPLICE_F_GIFT`.
const SPLICE_FLAGS: u64 = 0xf;
const SPLICE_F_NONBLOCK: u64 = 0x2;
/// The most one call moves (Linux's `MAX_RW_COUNT`).
const TRANSFER_MAX: u64 = 0x7fff_f000;
/// The largest file offset (`MAX_LFS_FILESIZE`).
const OFFSET_MAX: u64 = i64::MAX as u64;

/// Whether Linux can splice to or from `file`: pipes, sockets and the
/// files of filesystems, not directories or other anonymous objects.
fn is_spliceable(file: &OpenFile) -> bool {
    if file.pipe_end().is_some() {
        return true;
    }
    if let Some(special) = file.special() {
        return matches!(special.metadata().file_type, FileType::Socket | FileType::Fifo);
    }
    file.data().is_some_and(|data| data.file_type() != FileType::Directory)
}

/// Waits for room in pipe `to` and writes as much of `bytes` as fits.
fn write_what_fits(
    caller: &Caller<'_>,
    to: &Pipe,
    bytes: &[u8],
    is_nonblocking: bool,
) -> core::result::Result<usize, FsError> {
    let room = to.wait_for_room(caller, is_nonblocking)?;
    to.write(caller, &bytes[..bytes.len().min(room)], true)
}

/// The pipe behind `file`, if it is one.
fn pipe_of(file: &OpenFile) -> Option<&Arc<Pipe>> {
    file.pipe_end().map(|end| end.pipe())
}

/// An optional `loff_t *` argument: its value, which must not be negative.
fn read_offset(context: Context<'_>, address: u64) -> core::result::Result<Option<u64>, Errno> {
    if address == 0 {
        return Ok(None);
    }
    let value = User::new(context.machine).read_u64(address)?;
    if value > OFFSET_MAX {
        return Err(Errno::EINVAL);
    }
    Ok(Some(value))
}

/// Maps a failed write: a pipe without readers also raises `SIGPIPE`.
fn write_error(context: Context<'_>, error: FsError) -> super::Failure {
    match error {
        FsError::BrokenPipe => super::signals::broken_pipe(context),
        error => Errno::from(error).into(),
    }
}

/// Writes `bytes` to `output` at `offset` (advancing it) or at the file
/// offset.
fn write_side(
    caller: &Caller<'_>,
    output: &OpenFile,
    offset: &mut Option<u64>,
    bytes: &[u8],
) -> core::result::Result<usize, FsError> {
    match offset {
        Some(at) => {
            let written = output.write_at(caller, *at, bytes)?;
            *at += written as u64;
            Ok(written)
        }
        None => output.write(caller, bytes),
    }
}

/// Reads from `input` at `offset` (advancing it) or at the file offset.
fn read_side(
    caller: &Caller<'_>,
    input: &OpenFile,
    offset: &mut Option<u64>,
    buffer: &mut [u8],
) -> core::result::Result<usize, FsError> {
    match offset {
        Some(at) => {
            let read = input.read_at(caller, *at, buffer)?;
            *at += read as u64;
            Ok(read)
        }
        None => input.read(caller, buffer),
    }
}

/// `splice(fd_in, off_in, fd_out, off_out, len, flags)`.
pub(super) fn splice(
    context: Context<'_>,
    (fd_in, offset_in_address): (u64, u64),
    (fd_out, offset_out_address): (u64, u64),
    length: u64,
    splice_flags: u64,
) -> Result {
    if length == 0 {
        return Ok(0);
    }
    if splice_flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let input = file(context, fd_in)?;
    let output = file(context, fd_out)?;
    let (input_pipe, output_pipe) = (pipe_of(&input), pipe_of(&output));
    if (input_pipe.is_some() && offset_in_address != 0) || (output_pipe.is_some() && offset_out_address != 0)
    {
        return Err(Errno::ESPIPE.into());
    }
    let mut offset_in = read_offset(context, offset_in_address)?;
    let mut offset_out = read_offset(context, offset_out_address)?;
    if !input.is_readable() || !output.is_writable() || input.is_path_only() || output.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    if !is_spliceable(&input) || !is_spliceable(&output) {
        return Err(Errno::EINVAL.into());
    }
    let is_nonblocking = splice_flags & SPLICE_F_NONBLOCK != 0;
    let caller = caller(context);
    let length = length.min(TRANSFER_MAX) as usize;
    let moved = match (input_pipe, output_pipe) {
        (Some(from), Some(to)) => {
            if Arc::ptr_eq(from, to) {
                return Err(Errno::EINVAL.into());
            }
            let is_nonblocking = is_nonblocking || input.is_nonblocking() || output.is_nonblocking();
            from_pipe(context, from, is_nonblocking, length, true, |bytes| {
                write_what_fits(&caller, to, bytes, is_nonblocking)
            })?
        }
        (Some(from), None) => {
            if output.status_flags() & flags::O_APPEND != 0 {
                return Err(Errno::EINVAL.into());
            }
            if offset_out.is_some() && output.data().is_none_or(|data| !data.is_seekable()) {
                return Err(Errno::EINVAL.into());
            }
            let is_nonblocking = is_nonblocking || input.is_nonblocking();
            from_pipe(context, from, is_nonblocking, length, true, |bytes| {
                write_side(&caller, &output, &mut offset_out, bytes)
            })?
        }
        (None, Some(to)) => {
            if offset_in.is_some() && input.data().is_none_or(|data| !data.is_seekable()) {
                return Err(Errno::EINVAL.into());
            }
            let is_nonblocking = is_nonblocking || output.is_nonblocking();
            to_pipe(context, &input, &mut offset_in, to, is_nonblocking, length)?
        }
        (None, None) => return Err(Errno::EINVAL.into()),
    };
    let user = User::new(context.machine);
    if let Some(offset) = offset_in.filter(|_| offset_in_address != 0) {
        user.write_u64(offset_in_address, offset)?;
    }
    if let Some(offset) = offset_out.filter(|_| offset_out_address != 0) {
        user.write_u64(offset_out_address, offset)?;
    }
    Ok(moved as u64)
}

/// Moves up to `length` bytes out of pipe `from` through `write`, taking
/// from the pipe only what `write` accepted (or nothing, when `consume` is
/// false, for `tee`); 0 when the pipe is empty and has no writers left.
fn from_pipe(
    context: Context<'_>,
    from: &Pipe,
    is_nonblocking: bool,
    length: usize,
    consume: bool,
    mut write: impl FnMut(&[u8]) -> core::result::Result<usize, FsError>,
) -> core::result::Result<usize, super::Failure> {
    let caller = caller(context);
    let mut buffer = vec![0u8; length.min(CHUNK_BYTES)];
    let available = from.peek(&caller, &mut buffer, is_nonblocking)?;
    if available == 0 {
        return Ok(0);
    }
    let written = write(&buffer[..available]).map_err(|error| write_error(context, error))?;
    if consume && written > 0 {
        // The bytes are still at the pipe's front: nobody else reads it in
        // between but another reader of the same pipe.
        let mut taken = vec![0u8; written];
        from.read(&caller, &mut taken, true)?;
    }
    Ok(written)
}

/// Moves up to `length` bytes from `input` (at `offset`, or its file
/// offset) into pipe `to`.
fn to_pipe(
    context: Context<'_>,
    input: &OpenFile,
    offset: &mut Option<u64>,
    to: &Pipe,
    is_nonblocking: bool,
    length: usize,
) -> core::result::Result<usize, super::Failure> {
    let caller = caller(context);
    let room = to.wait_for_room(&caller, is_nonblocking).map_err(|error| write_error(context, error))?;
    // Read no more than fits, so that nothing read from a stream is left
    // over.
    let chunk = length.min(room).min(CHUNK_BYTES);
    let mut buffer = vec![0u8; chunk];
    let is_positioned = input.data().is_some_and(|data| data.is_seekable());
    let start = if is_positioned { Some(offset.unwrap_or_else(|| input.offset())) } else { None };
    let mut at = start;
    let read = if is_positioned {
        read_side(&caller, input, &mut at, &mut buffer)?
    } else {
        read_side(&caller, input, offset, &mut buffer)?
    };
    if read == 0 {
        return Ok(0);
    }
    let written = to.write(&caller, &buffer[..read], true).map_err(|error| write_error(context, error))?;
    if let Some(start) = start {
        let end = start + written as u64;
        if offset.is_some() {
            *offset = Some(end);
        } else {
            input.set_offset(end);
        }
    }
    Ok(written)
}

/// `tee(fd_in, fd_out, len, flags)`: copies bytes from one pipe to another
/// without taking them.
pub(super) fn tee(context: Context<'_>, fd_in: u64, fd_out: u64, length: u64, splice_flags: u64) -> Result {
    if splice_flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    if length == 0 {
        return Ok(0);
    }
    let input = file(context, fd_in)?;
    let output = file(context, fd_out)?;
    let (Some(from), Some(to)) = (pipe_of(&input), pipe_of(&output)) else {
        return Err(Errno::EINVAL.into());
    };
    if !input.is_readable() || !output.is_writable() {
        return Err(Errno::EBADF.into());
    }
    if Arc::ptr_eq(from, to) {
        return Err(Errno::EINVAL.into());
    }
    let is_nonblocking =
        splice_flags & SPLICE_F_NONBLOCK != 0 || input.is_nonblocking() || output.is_nonblocking();
    let caller = caller(context);
    let length = length.min(TRANSFER_MAX) as usize;
    let copied = from_pipe(context, from, is_nonblocking, length, false, |bytes| {
        write_what_fits(&caller, to, bytes, is_nonblocking)
    })?;
    Ok(copied as u64)
}

/// `vmsplice(fd, iov, nr_segs, flags)`: `writev` into a pipe's writing end,
/// `readv` from its reading end.
pub(super) fn vmsplice(context: Context<'_>, fd: u64, vectors: u64, count: u64, splice_flags: u64) -> Result {
    if splice_flags & !SPLICE_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let file = file(context, fd)?;
    let Some(end) = file.pipe_end() else {
        return Err(Errno::EBADF.into());
    };
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    let is_nonblocking = splice_flags & SPLICE_F_NONBLOCK != 0 || file.is_nonblocking();
    let caller = caller(context);
    if end.is_writer() {
        if !file.is_writable() {
            return Err(Errno::EBADF.into());
        }
        // Like Linux, wait for room once, then fill what fits.
        super::files::write_from_vectors(context, &vectors, |done, bytes| {
            write_what_fits(&caller, end.pipe(), bytes, is_nonblocking || done > 0)
        })
    } else {
        if !file.is_readable() {
            return Err(Errno::EBADF.into());
        }
        super::files::read_to_vectors(context, &vectors, true, |_, buffer| {
            end.pipe().read(&caller, buffer, is_nonblocking)
        })
    }
}

/// `copy_file_range(fd_in, off_in, fd_out, off_out, len, flags)` between
/// regular files.
pub(super) fn copy_file_range(
    context: Context<'_>,
    (fd_in, offset_in_address): (u64, u64),
    (fd_out, offset_out_address): (u64, u64),
    length: u64,
    copy_flags: u64,
) -> Result {
    if copy_flags != 0 {
        return Err(Errno::EINVAL.into());
    }
    let input = file(context, fd_in)?;
    let output = file(context, fd_out)?;
    let offset_in = read_offset(context, offset_in_address)?;
    let offset_out = read_offset(context, offset_out_address)?;
    let caller = caller(context);
    let (Some(source), Some(target)) = (input.data(), output.data()) else {
        return Err(Errno::EINVAL.into());
    };
    let (source_type, target_type) = (source.file_type(), target.file_type());
    if source_type == FileType::Directory || target_type == FileType::Directory {
        return Err(Errno::EISDIR.into());
    }
    if source_type != FileType::Regular || target_type != FileType::Regular {
        return Err(Errno::EINVAL.into());
    }
    if input.is_path_only()
        || output.is_path_only()
        || !input.is_readable()
        || !output.is_writable()
        || output.status_flags() & flags::O_APPEND != 0
    {
        return Err(Errno::EBADF.into());
    }
    let start_in = offset_in.unwrap_or_else(|| input.offset());
    let start_out = offset_out.unwrap_or_else(|| output.offset());
    let length = length.min(TRANSFER_MAX);
    if start_in.checked_add(length).is_none_or(|end| end > OFFSET_MAX)
        || start_out.checked_add(length).is_none_or(|end| end > OFFSET_MAX)
    {
        return Err(Errno::EOVERFLOW.into());
    }
    let size_in = source.metadata(&caller)?.size_bytes;
    let length = length.min(size_in.saturating_sub(start_in));
    let is_same_file = Arc::ptr_eq(source, target) || {
        let (a, b) = (source.metadata(&caller)?, target.metadata(&caller)?);
        (a.inode, a.device) == (b.inode, b.device)
    };
    if is_same_file && start_out < start_in + length && start_in < start_out + length {
        return Err(Errno::EINVAL.into());
    }
    let mut done = 0u64;
    let mut buffer = vec![0u8; (length as usize).min(CHUNK_BYTES)];
    while done < length {
        let chunk = ((length - done) as usize).min(CHUNK_BYTES);
        let read = match input.read_at(&caller, start_in + done, &mut buffer[..chunk]) {
            Ok(read) => read,
            Err(_) if done > 0 => break,
            Err(error) => return Err(error.into()),
        };
        if read == 0 {
            break;
        }
        let written = match output.write_at(&caller, start_out + done, &buffer[..read]) {
            Ok(written) => written,
            Err(_) if done > 0 => break,
            Err(error) => return Err(error.into()),
        };
        done += written as u64;
        if written < read {
            break;
        }
    }
    let user = User::new(context.machine);
    match offset_in {
        Some(start) => user.write_u64(offset_in_address, start + done)?,
        None => input.set_offset(start_in + done),
    }
    match offset_out {
        Some(start) => user.write_u64(offset_out_address, start + done)?,
        None => output.set_offset(start_out + done),
    }
    Ok(done)
}

/// `fallocate` modes.
mod falloc {
    pub const KEEP_SIZE: u64 = 0x01;
    pub const PUNCH_HOLE: u64 = 0x02;
    pub const NO_HIDE_STALE: u64 = 0x04;
    pub const COLLAPSE_RANGE: u64 = 0x08;
    pub const ZERO_RANGE: u64 = 0x10;
    pub const INSERT_RANGE: u64 = 0x20;
    pub const UNSHARE_RANGE: u64 = 0x40;
    /// The bits naming an operation (none: reserve space).
    pub const OPERATIONS: u64 = PUNCH_HOLE | COLLAPSE_RANGE | ZERO_RANGE | INSERT_RANGE | UNSHARE_RANGE;
    /// Every mode bit Linux knows.
    pub const KNOWN: u64 = OPERATIONS | KEEP_SIZE | NO_HIDE_STALE;
}

/// `fallocate(fd, mode, offset, len)`: what Linux's tmpfs supports, which
/// is reserving space (with or without growing the file) and punching
/// holes; other modes are `EOPNOTSUPP`.
pub(super) fn fallocate(context: Context<'_>, fd: u64, mode: u64, offset: u64, length: u64) -> Result {
    let (offset, length) = (offset as i64, length as i64);
    if offset < 0 || length <= 0 {
        return Err(Errno::EINVAL.into());
    }
    let mode = mode & 0xffff_ffff;
    if mode & !falloc::KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP.into());
    }
    // One operation at most, FALLOC_FL_KEEP_SIZE only where it means
    // something (Linux 6.12's rules).
    let is_valid = match mode & falloc::OPERATIONS {
        0 | falloc::UNSHARE_RANGE | falloc::ZERO_RANGE => true,
        falloc::PUNCH_HOLE => mode & falloc::KEEP_SIZE != 0,
        falloc::COLLAPSE_RANGE | falloc::INSERT_RANGE => mode & falloc::KEEP_SIZE == 0,
        _ => false,
    };
    if !is_valid {
        return Err(Errno::EOPNOTSUPP.into());
    }
    let punches = mode & falloc::PUNCH_HOLE != 0;
    let file = file(context, fd)?;
    if file.is_path_only() || !file.is_writable() {
        return Err(Errno::EBADF.into());
    }
    if file.pipe_end().is_some() {
        return Err(Errno::ESPIPE.into());
    }
    let Some(data) = file.data() else {
        return Err(Errno::ENODEV.into());
    };
    match data.file_type() {
        FileType::Directory => return Err(Errno::EISDIR.into()),
        FileType::Regular => {}
        FileType::Fifo => return Err(Errno::ESPIPE.into()),
        _ => return Err(Errno::ENODEV.into()),
    }
    let (offset, length) = (offset as u64, length as u64);
    let end = offset.checked_add(length).filter(|&end| end <= OFFSET_MAX).ok_or(Errno::EFBIG)?;
    if mode & !(falloc::KEEP_SIZE | falloc::PUNCH_HOLE) != 0 {
        return Err(Errno::EOPNOTSUPP.into());
    }
    let caller = caller(context);
    let size = data.metadata(&caller)?.size_bytes;
    if punches {
        // The range reads as zeros afterwards; the size stays. Filesystems
        // that can free the storage do; others get zeros written.
        let end = end.min(size);
        match data.punch_hole(&caller, offset, end.saturating_sub(offset)) {
            Err(FsError::NotSupported) => {}
            result => return result.map(|()| 0).map_err(Into::into),
        }
        let zeros = vec![0u8; ((end.saturating_sub(offset)) as usize).min(CHUNK_BYTES)];
        let mut at = offset;
        while at < end {
            let chunk = ((end - at) as usize).min(zeros.len());
            at += data.write_at(&caller, at, &zeros[..chunk])? as u64;
        }
    } else {
        match data.allocate(&caller, offset, length, mode & falloc::KEEP_SIZE != 0) {
            Err(FsError::NotSupported) if mode & falloc::KEEP_SIZE == 0 && end > size => {
                data.truncate(&caller, end)?;
            }
            Err(FsError::NotSupported) => {}
            result => result?,
        }
    }
    Ok(0)
}

/// `SYNC_FILE_RANGE_WAIT_BEFORE | _WRITE | _WAIT_AFTER`.
const SYNC_FILE_RANGE_FLAGS: u64 = 0x7;

/// `sync_file_range(fd, offset, nbytes, flags)`: Linux's checks; the data
/// of rosv's filesystems is written when it is written.
pub(super) fn sync_file_range(
    context: Context<'_>,
    fd: u64,
    offset: u64,
    count: u64,
    sync_flags: u64,
) -> Result {
    if sync_flags & !SYNC_FILE_RANGE_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let (offset, count) = (offset as i64, count as i64);
    if offset < 0 || count < 0 || offset.checked_add(count).is_none() {
        return Err(Errno::EINVAL.into());
    }
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    let file_type = match file.data() {
        Some(data) => data.file_type(),
        None => FileType::Fifo,
    };
    if !matches!(
        file_type,
        FileType::Regular | FileType::Directory | FileType::Symlink | FileType::BlockDevice
    ) {
        return Err(Errno::ESPIPE.into());
    }
    Ok(0)
}

/// `syncfs(fd)`: flushes the filesystem `fd` is on.
pub(super) fn syncfs(context: Context<'_>, fd: u64) -> Result {
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    if let Some(data) = file.data() {
        // Filesystems without a cache have nothing to flush.
        data.sync(&caller(context)).or_else(|error| match error {
            FsError::InvalidArgument | FsError::NotSupported => Ok(()),
            error => Err(error),
        })?;
    }
    Ok(0)
}

/// What `name_to_handle_at` accepts: `AT_SYMLINK_FOLLOW`, `AT_EMPTY_PATH`,
/// `AT_HANDLE_FID`, `AT_HANDLE_MNT_ID_UNIQUE` and `AT_HANDLE_CONNECTABLE`.
const HANDLE_AT_FLAGS: u64 = 0x400 | AT_EMPTY_PATH | 0x200 | 0x1 | 0x2;
/// `MAX_HANDLE_SZ`.
const MAX_HANDLE_BYTES: u32 = 128;

/// `name_to_handle_at(dirfd, path, handle, mount_id, flags)`: the path is
/// resolved and the handle checked as Linux does, and then, like Linux on
/// a filesystem without export operations (ramfs, procfs), the answer is
/// `EOPNOTSUPP`: none of rosv's filesystems can reopen a file from a
/// handle.
pub(super) fn name_to_handle_at(
    context: Context<'_>,
    dirfd: u64,
    path: u64,
    handle: u64,
    at_flags: u64,
) -> Result {
    if at_flags & !HANDLE_AT_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    locate(context, dirfd, &path, at_flags, at_flags & 0x400 != 0)?;
    let user = User::new(context.machine);
    let size = u32::try_from(user.read_u64(handle)? & 0xffff_ffff).unwrap_or(u32::MAX);
    if size > MAX_HANDLE_BYTES {
        return Err(Errno::EINVAL.into());
    }
    Err(Errno::EOPNOTSUPP.into())
}

/// `open_by_handle_at(mount_fd, handle, flags)`: needs
/// `CAP_DAC_READ_SEARCH`, like Linux; since no filesystem gives handles,
/// none is valid (`ESTALE`, Linux's answer for a handle it cannot
/// decode).
pub(super) fn open_by_handle_at(context: Context<'_>, mount_fd: u64, handle: u64) -> Result {
    const CAP_DAC_READ_SEARCH: u32 = 2;
    if !context.process.state.lock().credentials.has_capability(CAP_DAC_READ_SEARCH) {
        return Err(Errno::EPERM.into());
    }
    if mount_fd as i32 != crate::linux::AT_FDCWD {
        file(context, mount_fd)?;
    }
    let user = User::new(context.machine);
    let size = user.read_u64(handle)? & 0xffff_ffff;
    if size == 0 || size > u64::from(MAX_HANDLE_BYTES) {
        return Err(Errno::EINVAL.into());
    }
    Err(Errno::ESTALE.into())
}
