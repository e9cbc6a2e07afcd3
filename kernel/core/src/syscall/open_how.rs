//! `openat2`: `openat` with a `struct open_how` that states its flags,
//! mode and the limits of the path walk (`RESOLVE_*`), validated strictly
//! as Linux does (unknown flags, a mode without `O_CREAT`, a structure of
//! an unknown size with nonzero tail bytes all fail).

use super::files::caller;
use super::paths::{install, read_path, start};
use super::{Context, Result};
use crate::errno::Errno;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::path::{Scope, resolve};

/// The first `struct open_how` (flags, mode, resolve: three `u64`s).
const OPEN_HOW_SIZE_VER0: u64 = 24;
/// The largest structure taken: a page, as Linux.
const OPEN_HOW_SIZE_MAX: u64 = 4096;
/// The open flags Linux knows (`VALID_OPEN_FLAGS`).
const VALID_OPEN_FLAGS: u64 = (flags::O_ACCMODE
    | flags::O_CREAT
    | flags::O_EXCL
    | flags::O_NOCTTY
    | flags::O_TRUNC
    | flags::O_APPEND
    | flags::O_NONBLOCK
    | flags::O_DSYNC
    | flags::O_ASYNC
    | flags::O_DIRECT
    | flags::O_LARGEFILE
    | flags::O_DIRECTORY
    | flags::O_NOFOLLOW
    | flags::O_NOATIME
    | flags::O_CLOEXEC
    | flags::O_SYNC
    | flags::O_PATH
    | flags::O_TMPFILE) as u64;
/// What may accompany `O_PATH`.
const O_PATH_FLAGS: u64 = (flags::O_DIRECTORY | flags::O_NOFOLLOW | flags::O_PATH | flags::O_CLOEXEC) as u64;
/// `__O_TMPFILE`, the bit `O_TMPFILE` adds to `O_DIRECTORY`.
const TMPFILE_BIT: u64 = (flags::O_TMPFILE & !flags::O_DIRECTORY) as u64;

/// The three fields of `struct open_how`.
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Reads a `struct open_how` of `size` bytes: `EINVAL` if shorter than
/// the first version, `E2BIG` if longer than a page or with nonzero bytes
/// past the fields known.
fn read_open_how(context: Context<'_>, address: u64, size: u64) -> core::result::Result<OpenHow, Errno> {
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > OPEN_HOW_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let bytes = User::new(context.machine).read_bytes(address, size as usize)?;
    if bytes[OPEN_HOW_SIZE_VER0 as usize..].iter().any(|&byte| byte != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |index: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
        u64::from_le_bytes(word)
    };
    Ok(OpenHow { flags: word(0), mode: word(1), resolve: word(2) })
}

/// Linux's checks of the flags, mode and resolve bits (`build_open_flags`).
fn validate(how: &OpenHow) -> core::result::Result<(), Errno> {
    if how.flags & !VALID_OPEN_FLAGS != 0 || how.resolve & !u64::from(resolve::ALL) != 0 {
        return Err(Errno::EINVAL);
    }
    let scoped = u64::from(resolve::BENEATH | resolve::IN_ROOT);
    if how.resolve & scoped == scoped {
        return Err(Errno::EINVAL);
    }
    let creates = how.flags & (u64::from(flags::O_CREAT) | TMPFILE_BIT) != 0;
    if (creates && how.mode & !0o7777 != 0) || (!creates && how.mode != 0) {
        return Err(Errno::EINVAL);
    }
    if how.flags & TMPFILE_BIT != 0 {
        let tmpfile = u64::from(flags::O_TMPFILE);
        let access = how.flags & u64::from(flags::O_ACCMODE);
        if how.flags & tmpfile != tmpfile || access == u64::from(flags::O_RDONLY) {
            return Err(Errno::EINVAL);
        }
    }
    if how.flags & u64::from(flags::O_PATH) != 0 && how.flags & !O_PATH_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    // rosv keeps no cache a walk could be answered from without the
    // filesystems: a caller asking for that alone is told to retry without.
    if how.resolve & u64::from(resolve::CACHED) != 0 {
        return Err(Errno::EAGAIN);
    }
    Ok(())
}

pub(super) fn openat2(context: Context<'_>, dirfd: u64, path: u64, how: u64, size: u64) -> Result {
    let how = read_open_how(context, how, size)?;
    validate(&how)?;
    let path = read_path(context, path)?;
    let restrictions = how.resolve as u32;
    // Under RESOLVE_IN_ROOT an absolute path starts from `dirfd` too.
    let start = if restrictions & resolve::IN_ROOT != 0 {
        start(context, dirfd, ".")?
    } else {
        start(context, dirfd, &path)?
    };
    let open_flags = how.flags as u32 | flags::O_LARGEFILE;
    let permissions = how.mode as u32 & !context.fs().umask();
    let scope = Scope { restrictions, start: start.clone() };
    let caller = crate::vfs::Caller { scope: Some(&scope), ..caller(context) };
    let file = context.process.vfs().open(&caller, &start, &path, open_flags, permissions)?;
    install(context, file, open_flags & flags::O_CLOEXEC != 0)
}
