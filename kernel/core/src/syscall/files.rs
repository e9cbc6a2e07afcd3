//! Reading and writing descriptors: read, write and their vector and
//! positioned forms, lseek, sendfile, getdents64, truncation and syncs.
//!
//! Data moves between application memory and files through a kernel
//! buffer of at most [`CHUNK_BYTES`]. Regular files are read chunk after
//! chunk until the request is met or a chunk comes back short; streams
//! (pipes, the console) transfer one chunk, so that a read returns what is
//! there instead of waiting for more.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::files::push_directory_entry;
use crate::memory::APPLICATION_END;
use crate::user::User;
use crate::vfs::file::whence;
use crate::vfs::{Caller, FileType, FsError, OpenFile};

/// Bytes moved per step between application memory and a file.
pub(super) const CHUNK_BYTES: usize = 64 * 1024;
/// The most one call transfers (Linux's `MAX_RW_COUNT`).
const TRANSFER_MAX: u64 = 0x7fff_f000;

/// The caller a system call's filesystem operations run for.
pub(super) fn caller<'a>(context: Context<'a>) -> Caller<'a> {
    Caller::thread(context.machine, context.process, context.thread)
}

/// A descriptor argument (a C `int`).
pub(super) fn descriptor_number(raw: u64) -> core::result::Result<u64, Errno> {
    u64::try_from(raw as i32).map_err(|_| Errno::EBADF)
}

/// The open file of descriptor `raw`.
pub(super) fn file(context: Context<'_>, raw: u64) -> core::result::Result<Arc<OpenFile>, Errno> {
    let number = descriptor_number(raw)?;
    Ok(context.descriptors().with(|table| table.file(number))?)
}

/// The open file of `raw`, which must not be an `O_PATH` descriptor.
fn usable_file(context: Context<'_>, raw: u64) -> core::result::Result<Arc<OpenFile>, Errno> {
    let file = file(context, raw)?;
    if file.is_path_only() { Err(Errno::EBADF) } else { Ok(file) }
}

/// Whether transfers on `file` stop after one chunk.
fn is_stream(file: &OpenFile) -> bool {
    file.data().is_none_or(|data| !data.is_seekable())
}

/// Copies `bytes` into the vectors from byte `position` of their
/// concatenation; returns how many bytes landed before a fault.
fn scatter(user: User<'_>, vectors: &[(u64, u64)], position: u64, bytes: &[u8]) -> usize {
    let (mut skipped, mut done) = (0u64, 0usize);
    for &(base, length) in vectors {
        if done == bytes.len() {
            break;
        }
        if skipped + length <= position {
            skipped += length;
            continue;
        }
        let within = position.saturating_sub(skipped);
        let count = ((length - within) as usize).min(bytes.len() - done);
        let written = user.write_until_fault(base + within, &bytes[done..done + count]);
        done += written;
        if written < count {
            break;
        }
        skipped += length;
    }
    done
}

/// Fills `buffer` from the vectors from byte `position`; returns how many
/// bytes were read before a fault.
fn gather(user: User<'_>, vectors: &[(u64, u64)], position: u64, buffer: &mut [u8]) -> usize {
    let (mut skipped, mut done) = (0u64, 0usize);
    for &(base, length) in vectors {
        if done == buffer.len() {
            break;
        }
        if skipped + length <= position {
            skipped += length;
            continue;
        }
        let within = position.saturating_sub(skipped);
        let count = ((length - within) as usize).min(buffer.len() - done);
        let read = user.read_until_fault(base + within, &mut buffer[done..done + count]);
        done += read;
        if read < count {
            break;
        }
        skipped += length;
    }
    done
}

fn check_vectors(vectors: &[(u64, u64)]) -> core::result::Result<u64, Errno> {
    let mut total = 0u64;
    for &(base, length) in vectors {
        if length != 0 && base.checked_add(length).is_none_or(|end| end > APPLICATION_END) {
            return Err(Errno::EFAULT);
        }
        total += length;
    }
    Ok(total.min(TRANSFER_MAX))
}

/// Reads into `vectors` through `step` (which reads at a position in the
/// request); returns the bytes delivered.
pub(super) fn read_to_vectors(
    context: Context<'_>,
    vectors: &[(u64, u64)],
    is_stream: bool,
    mut step: impl FnMut(u64, &mut [u8]) -> core::result::Result<usize, FsError>,
) -> Result {
    let total = check_vectors(vectors)?;
    if total == 0 {
        // Nothing to read, but the object's own errors still apply.
        return Ok(step(0, &mut [])? as u64);
    }
    let user = User::new(context.machine);
    let mut done = 0u64;
    let mut buffer = vec![0u8; (total as usize).min(CHUNK_BYTES)];
    while done < total {
        let chunk = ((total - done) as usize).min(CHUNK_BYTES);
        let length = match step(done, &mut buffer[..chunk]) {
            Ok(length) => length,
            Err(_) if done > 0 => break,
            Err(error) => return Err(error.into()),
        };
        let delivered = scatter(user, vectors, done, &buffer[..length]);
        done += delivered as u64;
        if delivered < length {
            if done == 0 {
                return Err(Errno::EFAULT.into());
            }
            break;
        }
        if length < chunk || is_stream {
            break;
        }
    }
    Ok(done)
}

/// Writes from `vectors` through `step`; returns the bytes written.
pub(super) fn write_from_vectors(
    context: Context<'_>,
    vectors: &[(u64, u64)],
    mut step: impl FnMut(u64, &[u8]) -> core::result::Result<usize, FsError>,
) -> Result {
    let total = check_vectors(vectors)?;
    let user = User::new(context.machine);
    let mut done = 0u64;
    let mut buffer = vec![0u8; (total as usize).min(CHUNK_BYTES)];
    while done < total {
        let chunk = ((total - done) as usize).min(CHUNK_BYTES);
        let gathered = gather(user, vectors, done, &mut buffer[..chunk]);
        if gathered == 0 {
            return if done == 0 { Err(Errno::EFAULT.into()) } else { Ok(done) };
        }
        let length = match step(done, &buffer[..gathered]) {
            Ok(length) => length,
            Err(_) if done > 0 => break,
            Err(FsError::BrokenPipe) => return Err(super::signals::broken_pipe(context)),
            Err(error) => return Err(error.into()),
        };
        done += length as u64;
        if length < chunk {
            break;
        }
    }
    Ok(done)
}

pub(super) fn read(context: Context<'_>, fd: u64, address: u64, length: u64) -> Result {
    readv_from(context, fd, &[(address, length)], None)
}

pub(super) fn write(context: Context<'_>, fd: u64, address: u64, length: u64) -> Result {
    writev_to(context, fd, &[(address, length)], None)
}

pub(super) fn readv(context: Context<'_>, fd: u64, vectors: u64, count: u64) -> Result {
    file(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    readv_from(context, fd, &vectors, None)
}

pub(super) fn writev(context: Context<'_>, fd: u64, vectors: u64, count: u64) -> Result {
    file(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    writev_to(context, fd, &vectors, None)
}

fn position(offset: u64) -> core::result::Result<u64, Errno> {
    if (offset as i64) < 0 { Err(Errno::EINVAL) } else { Ok(offset) }
}

pub(super) fn pread64(context: Context<'_>, fd: u64, address: u64, length: u64, offset: u64) -> Result {
    readv_from(context, fd, &[(address, length)], Some(position(offset)?))
}

pub(super) fn pwrite64(context: Context<'_>, fd: u64, address: u64, length: u64, offset: u64) -> Result {
    writev_to(context, fd, &[(address, length)], Some(position(offset)?))
}

pub(super) fn preadv(context: Context<'_>, fd: u64, vectors: u64, count: u64, offset: u64) -> Result {
    file(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    readv_from(context, fd, &vectors, Some(position(offset)?))
}

pub(super) fn pwritev(context: Context<'_>, fd: u64, vectors: u64, count: u64, offset: u64) -> Result {
    file(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    writev_to(context, fd, &vectors, Some(position(offset)?))
}

/// Per-call flags of `preadv2` / `pwritev2` (`RWF_*`, `<linux/fs.h>`).
mod per_call {
    /// Polled, high-priority I/O: a hint that only direct I/O on a block
    /// device acts on, and that Linux ignores for everything else.
    pub const RWF_HIPRI: u64 = 0x1;
    /// Write the data through to the device before returning (`O_DSYNC`
    /// for this call).
    pub const RWF_DSYNC: u64 = 0x2;
    /// Write the data and metadata through (`O_SYNC` for this call).
    pub const RWF_SYNC: u64 = 0x4;
    /// The flags rosv honours; the others (`RWF_NOWAIT`, `RWF_APPEND`)
    /// are refused with `EOPNOTSUPP`, as Linux refuses unknown ones.
    pub const SUPPORTED: u64 = RWF_HIPRI | RWF_DSYNC | RWF_SYNC;
}

/// The position argument of `preadv2` / `pwritev2`: -1 means the file
/// offset. Of the `RWF_*` flags only those in [`per_call::SUPPORTED`]
/// are accepted.
fn vector_position(offset: u64, flags: u64) -> core::result::Result<Option<u64>, Errno> {
    if flags & !per_call::SUPPORTED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if offset as i64 == -1 { Ok(None) } else { position(offset).map(Some) }
}

pub(super) fn preadv2(
    context: Context<'_>,
    fd: u64,
    vectors: u64,
    count: u64,
    offset: u64,
    flags: u64,
) -> Result {
    file(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    readv_from(context, fd, &vectors, vector_position(offset, flags)?)
}

pub(super) fn pwritev2(
    context: Context<'_>,
    fd: u64,
    vectors: u64,
    count: u64,
    offset: u64,
    flags: u64,
) -> Result {
    file(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    let written = writev_to(context, fd, &vectors, vector_position(offset, flags)?)?;
    if flags & (per_call::RWF_DSYNC | per_call::RWF_SYNC) != 0 && written > 0 {
        // Like a write on an O_SYNC description: flush what the call
        // wrote; objects without a backing store have nothing to flush.
        let file = file(context, fd)?;
        if let Some(data) = file.data()
            && data.file_type() == FileType::Regular
        {
            data.sync(&caller(context))?;
        }
    }
    Ok(written)
}

/// Reads `fd` into `vectors`, at `offset` or the file offset.
fn readv_from(context: Context<'_>, fd: u64, vectors: &[(u64, u64)], offset: Option<u64>) -> Result {
    let file = file(context, fd)?;
    let caller = caller(context);
    if !file.is_readable() {
        return Err(Errno::EBADF.into());
    }
    let result = if let Some(offset) = offset {
        // Positioned reads need an object with offsets.
        file.read_at(&caller, offset, &mut [])?;
        read_to_vectors(context, vectors, false, |done, buffer| file.read_at(&caller, offset + done, buffer))
    } else {
        read_to_vectors(context, vectors, is_stream(&file), |_, buffer| file.read(&caller, buffer))
    };
    count_read(context, &file, result.as_ref().map_or(0, |&bytes| bytes));
    result
}

/// Whether `file` keeps its data on storage (a disk, a host directory, a
/// server) rather than in memory or a device: what `/proc/PID/io` counts
/// as `read_bytes` and `write_bytes`.
fn is_on_storage(file: &OpenFile) -> bool {
    file.location().is_some_and(|location| {
        location.node.file_type() == crate::vfs::FileType::Regular
            && location.mount.filesystem().is_storage_backed()
    })
}

/// Counts a call of the read family on `file` that returned `bytes`.
pub(super) fn count_read(context: Context<'_>, file: &OpenFile, bytes: u64) {
    let storage_bytes = if bytes != 0 && is_on_storage(file) { bytes } else { 0 };
    context.thread.io.count_read(bytes, storage_bytes);
}

/// Counts a call of the write family on `file` that accepted `bytes`.
pub(super) fn count_write(context: Context<'_>, file: &OpenFile, bytes: u64) {
    let storage_bytes = if bytes != 0 && is_on_storage(file) { bytes } else { 0 };
    context.thread.io.count_write(bytes, storage_bytes);
}

/// Writes `vectors` to `fd`, at `offset` or the file offset.
fn writev_to(context: Context<'_>, fd: u64, vectors: &[(u64, u64)], offset: Option<u64>) -> Result {
    let file = file(context, fd)?;
    let caller = caller(context);
    if !file.is_writable() {
        return Err(Errno::EBADF.into());
    }
    let wanted = vectors.iter().fold(0u64, |total, &(_, length)| total.saturating_add(length));
    let room = super::resources::file_size_room(context, &file, offset, wanted)?;
    let cut;
    let vectors = if room < wanted {
        cut = super::resources::cut_vectors(vectors, room);
        &cut[..]
    } else {
        vectors
    };
    let result = if let Some(offset) = offset {
        file.write_at(&caller, offset, &[])?;
        write_from_vectors(context, vectors, |done, bytes| file.write_at(&caller, offset + done, bytes))
    } else if file.special().is_some() && vectors.iter().all(|&(_, length)| length == 0) {
        // Special files judge an empty write themselves: an eventfd
        // refuses anything shorter than 8 bytes.
        file.write(&caller, &[]).map(|bytes| bytes as u64).map_err(Into::into)
    } else {
        write_from_vectors(context, vectors, |_, bytes| file.write(&caller, bytes))
    };
    count_write(context, &file, result.as_ref().map_or(0, |&bytes| bytes));
    result
}

pub(super) fn lseek(context: Context<'_>, fd: u64, offset: u64, origin: u64) -> Result {
    let file = file(context, fd)?;
    let origin = u32::try_from(origin).map_err(|_| Errno::EINVAL)?;
    if origin > whence::SEEK_HOLE {
        return Err(Errno::EINVAL.into());
    }
    Ok(file.seek(&caller(context), offset as i64, origin)?)
}

pub(super) fn sendfile(
    context: Context<'_>,
    out_fd: u64,
    in_fd: u64,
    offset_address: u64,
    count: u64,
) -> Result {
    let output = usable_file(context, out_fd)?;
    let input = usable_file(context, in_fd)?;
    if !input.is_readable() || !output.is_writable() {
        return Err(Errno::EBADF.into());
    }
    let caller = caller(context);
    let user = User::new(context.machine);
    let mut offset = if offset_address != 0 { Some(position(user.read_u64(offset_address)?)?) } else { None };
    let total = count.min(TRANSFER_MAX);
    let mut done = 0u64;
    let mut buffer = vec![0u8; (total as usize).min(CHUNK_BYTES)];
    while done < total {
        let chunk = ((total - done) as usize).min(CHUNK_BYTES);
        let read = match offset {
            Some(at) => input.read_at(&caller, at, &mut buffer[..chunk]),
            None => input.read(&caller, &mut buffer[..chunk]),
        };
        let length = match read {
            Ok(length) => length,
            Err(_) if done > 0 => break,
            Err(error) => return Err(error.into()),
        };
        if length == 0 {
            break;
        }
        let written = match output.write(&caller, &buffer[..length]) {
            Ok(written) => written,
            Err(_) if done > 0 => break,
            Err(FsError::BrokenPipe) => return Err(super::signals::broken_pipe(context)),
            Err(error) => return Err(error.into()),
        };
        done += written as u64;
        if let Some(at) = offset.as_mut() {
            *at += written as u64;
        }
        if written < length || length < chunk {
            break;
        }
    }
    count_read(context, &input, done);
    count_write(context, &output, done);
    if let Some(offset) = offset {
        user.write_u64(offset_address, offset)?;
    }
    Ok(done)
}

pub(super) fn getdents64(context: Context<'_>, fd: u64, address: u64, capacity: u64) -> Result {
    let file = usable_file(context, fd)?;
    let location = file.location().filter(|location| location.is_directory()).ok_or(Errno::ENOTDIR)?;
    let caller = caller(context);
    let capacity = capacity.min(TRANSFER_MAX) as usize;
    let mut buffer = Vec::new();
    let mut offset = file.offset();
    let vfs = context.process.vfs();
    while let Some(entry) = vfs.read_directory(&caller, location, offset)? {
        let entry_type = entry.file_type.directory_entry_type();
        if !push_directory_entry(
            &mut buffer,
            capacity,
            entry.inode,
            entry.next_offset,
            entry_type,
            &entry.name,
        ) {
            if buffer.is_empty() {
                return Err(Errno::EINVAL.into());
            }
            break;
        }
        offset = entry.next_offset;
    }
    User::new(context.machine).write_bytes(address, &buffer)?;
    file.set_offset(offset);
    file.accessed(&caller);
    Ok(buffer.len() as u64)
}

pub(super) fn ftruncate(context: Context<'_>, fd: u64, length: u64) -> Result {
    let file = usable_file(context, fd)?;
    let length = position(length)?;
    let location = file.location().ok_or(Errno::EINVAL)?;
    if !file.is_writable() || location.file_type() != FileType::Regular {
        return Err(Errno::EINVAL.into());
    }
    if length > context.process.state.lock().limits[crate::process::limit::FSIZE].current {
        super::resources::exceeded(context);
        return Err(Errno::EFBIG.into());
    }
    Ok(context.process.vfs().truncate(&caller(context), location, length).map(|()| 0)?)
}

/// `sync()`: every filesystem writes out what it holds; like Linux's, it
/// cannot fail.
pub(super) fn sync(context: Context<'_>) -> Result {
    if let Err(error) = context.process.vfs().sync_all() {
        log::warn!("sync: {error}");
    }
    Ok(0)
}

pub(super) fn fsync(context: Context<'_>, fd: u64) -> Result {
    let file = usable_file(context, fd)?;
    let data = file.data().ok_or(Errno::EINVAL)?;
    // Character devices, like pipes and sockets, have nothing to flush:
    // Linux answers EINVAL.
    if data.file_type() == FileType::CharacterDevice {
        return Err(Errno::EINVAL.into());
    }
    data.sync(&caller(context))?;
    Ok(0)
}

pub(super) fn fadvise64(context: Context<'_>, fd: u64, advice: u64) -> Result {
    let file = usable_file(context, fd)?;
    if file.pipe_end().is_some() {
        return Err(Errno::ESPIPE.into());
    }
    // POSIX_FADV_NORMAL .. POSIX_FADV_NOREUSE: hints rosv has no use for.
    if advice > 5 {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}
