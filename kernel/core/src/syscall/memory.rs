//! Memory system calls: brk, mmap, munmap, mprotect, madvise, the
//! protection-key calls; getrandom.

use alloc::vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::machine::Rights;
use crate::memory::{PAGE_SIZE, map, prot, rights_from_prot};
use crate::user::User;
use crate::vfs::FileType;

/// Runs `change` on the address space; if it removed mappings or took
/// rights away, makes every processor drop what it cached of them (after
/// the lock is released, as `synchronize_mappings` requires). New mappings
/// need no such round: no processor can have cached an absent page.
fn change_mappings<T>(context: Context<'_>, change: impl FnOnce(&mut crate::memory::AddressSpace) -> T) -> T {
    let (result, needs_shootdown) = {
        let mut memory = context.process.memory.lock();
        let result = change(&mut memory);
        (result, memory.take_shootdown())
    };
    if needs_shootdown {
        context.machine.synchronize_mappings();
    }
    result
}

pub(super) fn brk(context: Context<'_>, requested: u64) -> Result {
    Ok(change_mappings(context, |memory| memory.brk(context.machine, requested)))
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
    if flags & map::ANONYMOUS == 0 {
        return map_file(context, address, length, rights, flags, fd, offset);
    }
    // A fixed mapping may replace pages.
    Ok(change_mappings(context, |memory| {
        memory.map_anonymous(context.machine, address, length, rights, flags)
    })?)
}

/// `mmap` of a regular file: private mappings (and read-only shared ones)
/// get a copy of the file's bytes, read when the mapping is made; a
/// writable shared mapping, whose stores would have to reach the file, is
/// refused with `ENODEV`.
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
    let is_regular = file.data().is_some_and(|data| data.file_type() == FileType::Regular);
    let is_shared_write = flags & map::TYPE != map::PRIVATE && rights.write;
    if !is_regular || is_shared_write {
        return Err(Errno::ENODEV.into());
    }
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
                change_mappings(context, |memory| memory.unmap(context.machine, start, length))?;
                return Err(error.into());
            }
        };
        user.write_bytes(start + done, &buffer[..count])?;
        done += count as u64;
        if count < chunk {
            break;
        }
    }
    change_mappings(context, |memory| memory.protect(context.machine, start, length, rights))?;
    Ok(start)
}

pub(super) fn munmap(context: Context<'_>, address: u64, length: u64) -> Result {
    change_mappings(context, |memory| memory.unmap(context.machine, address, length))?;
    Ok(0)
}

pub(super) fn mprotect(context: Context<'_>, address: u64, length: u64, protection: u64) -> Result {
    let rights = rights_from_prot(protection & !(prot::GROWSDOWN | prot::GROWSUP)).ok_or(Errno::EINVAL)?;
    if length == 0 && address.is_multiple_of(crate::memory::PAGE_SIZE) {
        return Ok(0);
    }
    change_mappings(context, |memory| memory.protect(context.machine, address, length, rights))?;
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

/// `madvise` advice values that drop pages.
const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;

pub(super) fn madvise(context: Context<'_>, address: u64, length: u64, advice: u64) -> Result {
    if !address.is_multiple_of(crate::memory::PAGE_SIZE) {
        return Err(Errno::EINVAL.into());
    }
    if length == 0 {
        return Ok(0);
    }
    match advice {
        MADV_DONTNEED | MADV_FREE => {
            change_mappings(context, |memory| memory.discard(context.machine, address, length))?;
        }
        // Everything else is a hint the kernel may ignore.
        _ => {}
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
