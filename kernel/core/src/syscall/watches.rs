//! inotify's calls: `inotify_init`, `inotify_init1`, `inotify_add_watch`
//! and `inotify_rm_watch`, over [`crate::vfs::notify`].

use alloc::sync::Arc;

use super::files::{caller, file};
use super::paths::{install, locate, read_path};
use super::{Context, Result};
use crate::errno::Errno;
use crate::vfs::file::flags;
use crate::vfs::notify::{self, Inotify, mask};
use crate::vfs::{FileObject, OpenFile, permission};

/// `IN_NONBLOCK` and `IN_CLOEXEC` (`O_NONBLOCK`, `O_CLOEXEC`).
const IN_NONBLOCK: u64 = flags::O_NONBLOCK as u64;
const IN_CLOEXEC: u64 = flags::O_CLOEXEC as u64;

/// `inotify_init1(flags)`: a new instance.
pub(super) fn inotify_init1(context: Context<'_>, init_flags: u64) -> Result {
    if init_flags & !(IN_NONBLOCK | IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let instance = Inotify::new();
    let status = flags::O_RDONLY | (init_flags & IN_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(instance as Arc<_>), status);
    install(context, file, init_flags & IN_CLOEXEC != 0)
}

/// Runs `action` on the instance open as `fd`: `EBADF` if nothing is open
/// there, `EINVAL` for another object.
fn with_instance(context: Context<'_>, fd: u64, action: impl FnOnce(&Inotify) -> Result) -> Result {
    let file = file(context, fd)?;
    let instance = file.special().and_then(|special| special.as_any().downcast_ref::<Inotify>());
    match instance {
        Some(instance) => action(instance),
        None => Err(Errno::EINVAL.into()),
    }
}

/// `inotify_add_watch(fd, path, mask)`: needs read permission on the
/// file; returns the watch descriptor.
pub(super) fn inotify_add_watch(context: Context<'_>, fd: u64, path: u64, requested: u64) -> Result {
    let requested = requested as u32;
    with_instance(context, fd, |instance| {
        let path = read_path(context, path)?;
        let follow = requested & mask::DONT_FOLLOW == 0;
        let location = locate(context, crate::linux::AT_FDCWD as u64, &path, 0, follow)?;
        if requested & mask::ONLYDIR != 0 && !location.is_directory() {
            return Err(Errno::ENOTDIR.into());
        }
        let caller = caller(context);
        permission::check_caller(&caller, &location.metadata(&caller)?, permission::READ)?;
        Ok(instance.add_watch(notify::key_of(&location), requested)? as u64)
    })
}

/// `inotify_rm_watch(fd, wd)`.
pub(super) fn inotify_rm_watch(context: Context<'_>, fd: u64, watch: u64) -> Result {
    with_instance(context, fd, |instance| {
        instance.remove_watch(watch as i32)?;
        Ok(0)
    })
}
