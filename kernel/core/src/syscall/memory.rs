//! Memory system calls: brk, mmap, munmap, mprotect, madvise, the
//! protection-key calls; getrandom.

use alloc::vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::machine::Rights;
use crate::memory::{FileArea, PAGE_SIZE, map, prot, rights_from_prot};
use crate::user::User;
use crate::vfs::FileType;

/// Runs `change` on the address space; if it removed mappings or took
/// rights away, makes every processor drop what it cached of them (after
/// the lock is released, as `synchronize_mappings` requires). New mappings
/// need no such round: no processor can have cached an absent page.
pub(super) fn change_mappings<T>(
    context: Context<'_>,
    change: impl FnOnce(&mut crate::memory::AddressSpace) -> T,
) -> T {
    let (result, needs_shootdown) = {
        let held = context.process.memory();
        let mut memory = held.space.lock();
        let result = change(&mut memory);
        (result, memory.take_shootdown())
    };
    if needs_shootdown {
        context.machine.synchronize_mappings();
    }
    result
}

pub(super) fn brk(context: Context<'_>, requested: u64) -> Result {
    let current = context.process.memory().space.lock().brk(0);
    let growth = crate::memory::page_align_up(requested)
        .zip(crate::memory::page_align_up(current))
        .map_or(0, |(new, old)| new.saturating_sub(old));
    if growth > 0 && check_limits(context, growth, true).is_err() {
        return Ok(current);
    }
    Ok(change_mappings(context, |memory| memory.brk(requested)))
}

/// Refuses (`ENOMEM`) `growth` more bytes of address space past
/// `RLIMIT_AS`, or, for private writable memory (`is_data`), past
/// `RLIMIT_DATA`, which counts such areas other than the stack as Linux
/// does. Without limits (the usual case) the areas are not counted.
fn check_limits(context: Context<'_>, growth: u64, is_data: bool) -> core::result::Result<(), Errno> {
    use crate::process::{RLIM_INFINITY, limit};
    let (address_space, data) = {
        let state = context.process.state.lock();
        (state.limits[limit::AS].current, state.limits[limit::DATA].current)
    };
    let counts_data = is_data && data != RLIM_INFINITY;
    if address_space == RLIM_INFINITY && !counts_data {
        return Ok(());
    }
    let (total, private_writable) = context.process.memory().space.lock().areas().fold(
        (0u64, 0u64),
        |(total, private), (start, area)| {
            let length = area.end - start;
            let is_private_writable = area.rights.write
                && area.kind != crate::memory::AreaKind::Stack
                && area.file.as_ref().is_none_or(|file| !file.is_shared);
            (total + length, private + if is_private_writable { length } else { 0 })
        },
    );
    if total.saturating_add(growth) > address_space
        || counts_data && private_writable.saturating_add(growth) > data
    {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// Flags `mmap` accepts; others are refused with `MAP_SHARED_VALIDATE`.
const KNOWN_MAP_FLAGS: u64 = map::TYPE
    | map::FIXED
    | map::ANONYMOUS
    | 0x0100 // MAP_GROWSDOWN
    | 0x0800 // MAP_DENYWRITE
    | 0x1000 // MAP_EXECUTABLE
    | 0x2000 // MAP_LOCKED
    | 0x4000 // MAP_NORESERVE
    | map::POPULATE
    | 0x1_0000 // MAP_NONBLOCK
    | 0x2_0000 // MAP_STACK
    | map::FIXED_NOREPLACE;

pub(super) fn mmap(
    context: Context<'_>,
    address: u64,
    length: u64,
    protection: u64,
    flags: u64,
    fd: u64,
    offset: u64,
) -> Result {
    let rights = rights_from_prot(protection).ok_or(Errno::EINVAL)?;
    match flags & map::TYPE {
        map::SHARED | map::PRIVATE => {}
        map::SHARED_VALIDATE if flags & !KNOWN_MAP_FLAGS == 0 => {}
        map::SHARED_VALIDATE => return Err(Errno::EOPNOTSUPP.into()),
        _ => return Err(Errno::EINVAL.into()),
    }
    let is_private_writable = rights.write && flags & map::TYPE == map::PRIVATE;
    check_limits(context, crate::memory::page_align_up(length).unwrap_or(u64::MAX), is_private_writable)?;
    if flags & map::ANONYMOUS == 0 {
        return map_file(context, address, length, rights, flags, fd, offset);
    }
    if flags & map::TYPE != map::PRIVATE {
        // Shared anonymous memory is an unnamed file's pages, so that
        // processes forked later share it.
        let size = crate::memory::page_align_up(length).filter(|&size| size > 0).ok_or(Errno::EINVAL)?;
        let node = super::shared::anonymous_shared_file(context, size)?;
        let area = FileArea {
            node,
            offset: 0,
            is_shared: true,
            may_write: true,
            path: "/dev/zero (deleted)".into(),
        };
        return Ok(change_mappings(context, |memory| {
            memory.map(context.machine, address, length, rights, flags, Some(area))
        })?);
    }
    // A fixed mapping may replace pages.
    Ok(change_mappings(context, |memory| {
        memory.map_anonymous(context.machine, address, length, rights, flags)
    })?)
}

/// `mmap` of a regular file. Where the filesystem keeps the file in pages
/// (ramfs, ROFS), the area maps those pages: shared mappings store into
/// the file, private ones copy a page at its first store. Otherwise a
/// private mapping gets a copy of the file's bytes, read now, and a
/// writable shared one is refused with `ENODEV`.
fn map_file(
    context: Context<'_>,
    address: u64,
    length: u64,
    rights: Rights,
    flags: u64,
    fd: u64,
    offset: u64,
) -> Result {
    let file = super::files::file(context, fd)?;
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL.into());
    }
    if !file.is_readable() {
        return Err(Errno::EACCES.into());
    }
    let node = match file.data() {
        Some(node) if node.file_type() == FileType::Regular => node.clone(),
        _ => return Err(Errno::ENODEV.into()),
    };
    let is_shared = flags & map::TYPE != map::PRIVATE;
    if is_shared && rights.write && !file.is_writable() {
        return Err(Errno::EACCES.into());
    }
    let write_seals = crate::fs::ramfs::seal::WRITE | crate::fs::ramfs::seal::FUTURE_WRITE;
    if is_shared && rights.write && node.seals().is_ok_and(|seals| seals & write_seals != 0) {
        return Err(Errno::EPERM.into());
    }
    // The mapping's end must be a file offset (at most Linux's largest
    // file size, 2^63 - 1).
    if offset.checked_add(length).is_none_or(|end| end > i64::MAX as u64) {
        return Err(Errno::EOVERFLOW.into());
    }
    if !node.is_mappable() {
        if is_shared && rights.write {
            return Err(Errno::ENODEV.into());
        }
        return copy_file(context, address, length, rights, flags, &file, offset);
    }
    let caller = super::files::caller(context);
    let path = file.location().and_then(|location| context.process.vfs().path_of(&caller, location).ok());
    let may_write = !is_shared || file.is_writable();
    let area = FileArea { node, offset, is_shared, may_write, path: path.unwrap_or_default().into() };
    let start = change_mappings(context, |memory| {
        memory.map(context.machine, address, length, rights, flags, Some(area))
    })?;
    // Mapping a file is an access to it, as a read is.
    file.accessed(&caller);
    if flags & map::POPULATE != 0
        && crate::memory::populate_files(
            &context.process.memory().space,
            context.machine,
            start,
            start.saturating_add(length),
        )
    {
        context.machine.synchronize_mappings();
    }
    Ok(start)
}

/// A private mapping of a file whose contents are not kept in pages: a
/// copy of its bytes, read when the mapping is made.
fn copy_file(
    context: Context<'_>,
    address: u64,
    length: u64,
    rights: Rights,
    flags: u64,
    file: &crate::vfs::OpenFile,
    offset: u64,
) -> Result {
    let start = change_mappings(context, |memory| {
        memory.map_anonymous(context.machine, address, length, Rights::READ_WRITE, flags | map::POPULATE)
    })?;
    let caller = super::files::caller(context);
    let user = User::new(context.machine);
    let mut buffer = vec![0u8; (length as usize).min(super::files::CHUNK_BYTES)];
    let mut done = 0u64;
    while done < length {
        let chunk = ((length - done) as usize).min(buffer.len());
        let read = file.read_at(&caller, offset + done, &mut buffer[..chunk]);
        let count = match read {
            Ok(count) => count,
            Err(error) => {
                change_mappings(context, |memory| memory.unmap(start, length))?;
                return Err(error.into());
            }
        };
        user.write_bytes(start + done, &buffer[..count])?;
        done += count as u64;
        if count < chunk {
            break;
        }
    }
    change_mappings(context, |memory| memory.protect(start, length, rights))?;
    Ok(start)
}

pub(super) fn munmap(context: Context<'_>, address: u64, length: u64) -> Result {
    change_mappings(context, |memory| memory.unmap(address, length))?;
    Ok(0)
}

pub(super) fn mprotect(context: Context<'_>, address: u64, length: u64, protection: u64) -> Result {
    let rights = rights_from_prot(protection & !(prot::GROWSDOWN | prot::GROWSUP)).ok_or(Errno::EINVAL)?;
    if length == 0 && address.is_multiple_of(crate::memory::PAGE_SIZE) {
        return Ok(0);
    }
    change_mappings(context, |memory| memory.protect(address, length, rights))?;
    Ok(0)
}

/// The access rights `pkey_alloc` knows: `PKEY_DISABLE_ACCESS`,
/// `PKEY_DISABLE_WRITE`.
const PKEY_ACCESS_MASK: u64 = 0x3;

/// `pkey_alloc`: rosv has no memory protection keys and answers as Linux
/// does on a processor without them, with `ENOSPC`, which is how callers
/// (V8's code space, for one) detect that keys are missing.
pub(super) fn pkey_alloc(flags: u64, access_rights: u64) -> Result {
    if flags != 0 || access_rights & !PKEY_ACCESS_MASK != 0 {
        return Err(Errno::EINVAL.into());
    }
    Err(Errno::ENOSPC.into())
}

/// `pkey_free`: no key was ever handed out.
pub(super) fn pkey_free() -> Result {
    Err(Errno::EINVAL.into())
}

/// `pkey_mprotect`: `mprotect` with the default key (-1), the only one.
pub(super) fn pkey_mprotect(
    context: Context<'_>,
    address: u64,
    length: u64,
    protection: u64,
    key: u64,
) -> Result {
    if key as i32 != -1 {
        return Err(Errno::EINVAL.into());
    }
    mprotect(context, address, length, protection)
}

/// `madvise` advice values the checks tell apart.
mod advice {
    pub const DONTNEED: u64 = 4;
    pub const FREE: u64 = 8;
    pub const REMOVE: u64 = 9;
    /// The highest value Linux 6 knows below its memory-failure ones
    /// (`MADV_COLLAPSE`); 5 to 7 are unused.
    pub const LAST: u64 = 25;
    /// `MADV_DONTNEED_LOCKED`: drops pages even of locked areas.
    pub const DONTNEED_LOCKED: u64 = 24;
}

/// `madvise`: checks the advice and the range as Linux does (`EINVAL`
/// for an unknown advice, for dropping pages of a locked area, for
/// `MADV_FREE` on a file mapping and `MADV_REMOVE` on a private one;
/// `ENOMEM` when part of the range is in no area, after advising the
/// rest), drops pages for `MADV_DONTNEED` and `MADV_FREE`, and takes
/// everything else as a hint it may ignore.
pub(super) fn madvise(context: Context<'_>, address: u64, length: u64, advice: u64) -> Result {
    if !address.is_multiple_of(crate::memory::PAGE_SIZE) || advice > advice::LAST || (5..=7).contains(&advice)
    {
        return Err(Errno::EINVAL.into());
    }
    if length == 0 {
        return Ok(0);
    }
    let has_hole = {
        let held = context.process.memory();
        let memory = held.space.lock();
        let (areas, has_hole) = memory.areas_in(address, length)?;
        if areas.is_empty() {
            return Err(Errno::ENOMEM.into());
        }
        for (_, area) in areas {
            let is_refused = match advice {
                advice::DONTNEED | advice::FREE if area.is_locked => true,
                advice::FREE => area.file.is_some(),
                advice::REMOVE => !area.file.as_ref().is_some_and(|file| file.is_shared),
                _ => false,
            };
            if is_refused {
                return Err(Errno::EINVAL.into());
            }
        }
        has_hole
    };
    if matches!(advice, advice::DONTNEED | advice::FREE | advice::DONTNEED_LOCKED) {
        change_mappings(context, |memory| memory.discard(address, length))?;
    }
    if has_hole {
        return Err(Errno::ENOMEM.into());
    }
    Ok(0)
}

pub(super) fn mremap(
    context: Context<'_>,
    old: u64,
    old_length: u64,
    new_length: u64,
    flags: u64,
    new_address: u64,
) -> Result {
    if new_length > old_length {
        let is_private_writable =
            context.process.memory().space.lock().area_at(old).is_some_and(|(_, area)| {
                area.rights.write && area.file.as_ref().is_none_or(|file| !file.is_shared)
            });
        check_limits(context, new_length - old_length, is_private_writable)?;
    }
    Ok(change_mappings(context, |memory| memory.remap(old, old_length, new_length, flags, new_address))?)
}

/// `msync` flags.
const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

/// `msync`: shared file mappings are the file's own pages, so there is
/// nothing to write back from them; `MS_SYNC` asks the files to make their
/// data durable.
pub(super) fn msync(context: Context<'_>, address: u64, length: u64, flags: u64) -> Result {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
        || !address.is_multiple_of(PAGE_SIZE)
    {
        return Err(Errno::EINVAL.into());
    }
    let files = {
        let held = context.process.memory();
        let memory = held.space.lock();
        let files = memory.files_in(address, length)?;
        // Locked pages cannot be invalidated.
        if flags & MS_INVALIDATE != 0
            && memory
                .areas_in(address, length)
                .is_ok_and(|(areas, _)| areas.iter().any(|(_, area)| area.is_locked))
        {
            return Err(Errno::EBUSY.into());
        }
        files
    };
    if flags & MS_SYNC != 0 {
        let caller = super::files::caller(context);
        for node in files {
            node.sync(&caller)?;
        }
    }
    Ok(0)
}

/// `mincore`: one byte per page, 1 where the page is in memory: mapped, or
/// (in a file mapping) held by the file.
pub(super) fn mincore(context: Context<'_>, address: u64, length: u64, vector: u64) -> Result {
    if !address.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL.into());
    }
    let residency = context.process.memory().space.lock().residency(address, length)?;
    User::new(context.machine).write_bytes(vector, &residency)?;
    Ok(0)
}

/// `MLOCK_ONFAULT`, the one `mlock2` flag.
const MLOCK_ONFAULT: u64 = 1;

/// `mlock`, `mlock2` (with `is_locked`) and `munlock`: pages are never
/// paged out, so a lock only marks the areas, which then refuse to have
/// their pages dropped (`madvise`, `msync(MS_INVALIDATE)`).
pub(super) fn mlock(context: Context<'_>, address: u64, length: u64, flags: u64, is_locked: bool) -> Result {
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL.into());
    }
    let start = address & !(PAGE_SIZE - 1);
    let length = length.checked_add(address - start).ok_or(Errno::ENOMEM)?;
    context.process.memory().space.lock().set_locked(start, length, is_locked)?;
    Ok(0)
}

/// `munlockall`.
pub(super) fn munlockall(context: Context<'_>) -> Result {
    context.process.memory().space.lock().unlock_all();
    Ok(0)
}

/// `mlockall` flags: `MCL_CURRENT`, `MCL_FUTURE`, `MCL_ONFAULT`.
const MCL_FLAGS: u64 = 0x7;

pub(super) fn mlockall(flags: u64) -> Result {
    if flags == 0 || flags & !MCL_FLAGS != 0 || flags == 4 {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}

/// `getrandom` flags: `GRND_NONBLOCK`, `GRND_RANDOM`, `GRND_INSECURE`.
const GETRANDOM_FLAGS: u64 = 0x7;
/// The most bytes one `getrandom` call returns (as Linux).
const GETRANDOM_MAX: u64 = 33_554_431;

pub(super) fn getrandom(context: Context<'_>, address: u64, length: u64, flags: u64) -> Result {
    if flags & !GETRANDOM_FLAGS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let length = length.min(GETRANDOM_MAX);
    let user = User::new(context.machine);
    let mut buffer = vec![0u8; 256.min(length as usize)];
    context.process.random.lock().mix_hardware(context.machine);
    let mut done = 0u64;
    while done < length {
        let chunk = buffer.len().min((length - done) as usize);
        context.process.random.lock().fill(&mut buffer[..chunk]);
        if let Err(error) = user.write_bytes(address + done, &buffer[..chunk]) {
            return if done == 0 { Err(error.into()) } else { Ok(done) };
        }
        done += chunk as u64;
    }
    Ok(done)
}
