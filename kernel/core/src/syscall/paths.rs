//! System calls that name files by path: open, creat, close, mkdir, rmdir,
//! unlink, rename, link, symlink, readlink, chdir, getcwd, umask, access,
//! chmod, chown, utimensat, truncate.

use alloc::string::String;
use alloc::sync::Arc;

use super::files::{caller, descriptor_number, file};
use super::{Context, Result};
use crate::credentials::capability;
use crate::errno::Errno;
use crate::linux::{
    AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, Timespec,
};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::operations::TimesChange;
use crate::vfs::{Descriptor, FileType, Location, NewNode, OpenFile, RenameMode};
use crate::vfs::{extended, notify, permission};

/// A path argument.
pub(super) fn read_path(context: Context<'_>, address: u64) -> core::result::Result<String, Errno> {
    User::new(context.machine).read_path(address)
}

/// Where a relative `path` starts: the working directory for `AT_FDCWD`,
/// else the directory open as `dirfd`.
pub(super) fn start(context: Context<'_>, dirfd: u64, path: &str) -> core::result::Result<Location, Errno> {
    if path.starts_with('/') {
        return Ok(context.process.vfs().root_for(&caller(context)));
    }
    if dirfd as i32 == AT_FDCWD {
        return Ok(context.fs().working_directory());
    }
    let file = file(context, dirfd)?;
    let location = file.location().ok_or(Errno::ENOTDIR)?;
    if !location.is_directory() && !path.is_empty() {
        return Err(Errno::ENOTDIR);
    }
    Ok(location.clone())
}

/// What `dirfd` and `path` name, honouring `AT_EMPTY_PATH` (the
/// descriptor itself) and `follow` for a final symlink.
pub(super) fn locate(
    context: Context<'_>,
    dirfd: u64,
    path: &str,
    at_flags: u64,
    follow: bool,
) -> core::result::Result<Location, Errno> {
    if path.is_empty() && at_flags & AT_EMPTY_PATH != 0 {
        if dirfd as i32 == AT_FDCWD {
            return Ok(context.fs().working_directory());
        }
        return file(context, dirfd)?.location().cloned().ok_or(Errno::EBADF);
    }
    let start = start(context, dirfd, path)?;
    Ok(context.process.vfs().resolve(&caller(context), &start, path, follow)?)
}

/// Installs `file` at the lowest free descriptor.
pub(super) fn install(context: Context<'_>, file: Arc<OpenFile>, close_on_exec: bool) -> Result {
    let limit = context.process.descriptor_limit();
    let number =
        context.descriptors().with(|table| table.install(Descriptor { file, close_on_exec }, 0, limit))?;
    Ok(number as u64)
}

pub(super) fn openat(context: Context<'_>, dirfd: u64, path: u64, open_flags: u64, mode: u64) -> Result {
    let path = read_path(context, path)?;
    let start = start(context, dirfd, &path)?;
    // 64-bit Linux opens every file with O_LARGEFILE (F_GETFL shows it).
    let open_flags = open_flags as u32 | flags::O_LARGEFILE;
    let permissions = mode as u32 & 0o7777 & !context.fs().umask();
    let file = context.process.vfs().open(&caller(context), &start, &path, open_flags, permissions)?;
    install(context, file, open_flags & flags::O_CLOEXEC != 0)
}

pub(super) fn creat(context: Context<'_>, path: u64, mode: u64) -> Result {
    let open_flags = flags::O_CREAT | flags::O_WRONLY | flags::O_TRUNC;
    openat(context, AT_FDCWD as u64, path, u64::from(open_flags), mode)
}

pub(super) fn close(context: Context<'_>, fd: u64) -> Result {
    let number = descriptor_number(fd)?;
    let removed = context.descriptors().with(|table| table.remove(number))?;
    super::locks::closed(context, &removed.file);
    drop(removed);
    Ok(0)
}

/// `CLOSE_RANGE_CLOEXEC`: mark instead of closing.
const CLOSE_RANGE_CLOEXEC: u64 = 4;
/// `CLOSE_RANGE_UNSHARE`: give the calling thread a table of its own
/// first.
const CLOSE_RANGE_UNSHARE: u64 = 2;

pub(super) fn close_range(context: Context<'_>, first: u64, last: u64, range_flags: u64) -> Result {
    let (first, last) = (first as u32 as u64, last as u32 as u64);
    if range_flags & !(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE) != 0 || first > last {
        return Err(Errno::EINVAL.into());
    }
    if range_flags & CLOSE_RANGE_UNSHARE != 0 {
        context.process.unshare_descriptors(context.thread);
    }
    let mut closed = alloc::vec::Vec::new();
    context.descriptors().with(|table| {
        let open: alloc::vec::Vec<u64> = table
            .iter()
            .map(|(number, _)| number as u64)
            .filter(|number| (first..=last).contains(number))
            .collect();
        for number in open {
            if range_flags & CLOSE_RANGE_CLOEXEC != 0 {
                table.set_close_on_exec(number, true)?;
            } else {
                closed.push(table.remove(number)?);
            }
        }
        Ok::<(), crate::vfs::FsError>(())
    })?;
    for descriptor in &closed {
        super::locks::closed(context, &descriptor.file);
    }
    drop(closed);
    Ok(0)
}

fn creation_permissions(context: Context<'_>, mode: u64) -> u32 {
    mode as u32 & 0o7777 & !context.fs().umask()
}

/// `chroot(path)`: the directory becomes the process's root for every
/// path it resolves (`..` stops there); needs search permission on it and
/// `CAP_SYS_CHROOT`.
pub(super) fn chroot(context: Context<'_>, path: u64) -> Result {
    let path = read_path(context, path)?;
    let location = locate(context, AT_FDCWD as u64, &path, 0, true)?;
    if !location.is_directory() {
        return Err(Errno::ENOTDIR.into());
    }
    let caller = caller(context);
    permission::check_caller(&caller, &location.metadata(&caller)?, permission::EXECUTE)?;
    if !context.process.state.lock().credentials.has_capability(capability::SYS_CHROOT) {
        return Err(Errno::EPERM.into());
    }
    context.fs().with(|fs| fs.root_directory = Some(location));
    Ok(0)
}

/// The file types of a mode (`S_IFMT`) that `mknod` looks at.
mod file_type {
    pub const MASK: u64 = 0o170000;
    pub const SOCKET: u64 = 0o140000;
    pub const REGULAR: u64 = 0o100000;
    pub const BLOCK: u64 = 0o060000;
    pub const DIRECTORY: u64 = 0o040000;
    pub const CHARACTER: u64 = 0o020000;
    pub const FIFO: u64 = 0o010000;
}

/// `mknod` and `mknodat`: a regular file, a named pipe, a socket node or
/// (with `CAP_MKNOD`) a device node naming device `device`.
pub(super) fn mknodat(context: Context<'_>, dirfd: u64, path: u64, mode: u64, device: u64) -> Result {
    let mode = mode & 0xffff;
    let device = device & 0xffff_ffff;
    let kind = match mode & file_type::MASK {
        0 | file_type::REGULAR => NewNode::File,
        file_type::CHARACTER => NewNode::Device(FileType::CharacterDevice, device),
        file_type::BLOCK => NewNode::Device(FileType::BlockDevice, device),
        file_type::FIFO => NewNode::Fifo,
        file_type::SOCKET => NewNode::Socket,
        file_type::DIRECTORY => return Err(Errno::EPERM.into()),
        _ => return Err(Errno::EINVAL.into()),
    };
    let path = read_path(context, path)?;
    let start = start(context, dirfd, &path)?;
    let permissions = creation_permissions(context, mode);
    let caller = caller(context);
    if matches!(kind, NewNode::Device(..)) {
        let parent = context.process.vfs().resolve_parent(&caller, &start, &path)?;
        let may_make = context.process.state.lock().credentials.has_capability(capability::MKNOD);
        if !may_make && context.process.vfs().child(&caller, &parent.directory, &parent.name).is_err() {
            // Linux checks the directory first, then the capability.
            permission::check_caller(
                &caller,
                &parent.directory.metadata(&caller)?,
                permission::WRITE | permission::EXECUTE,
            )?;
            return Err(Errno::EPERM.into());
        }
    }
    context.process.vfs().make_node(&caller, &start, &path, kind, permissions)?;
    Ok(0)
}

pub(super) fn mkdirat(context: Context<'_>, dirfd: u64, path: u64, mode: u64) -> Result {
    let path = read_path(context, path)?;
    let start = start(context, dirfd, &path)?;
    let permissions = creation_permissions(context, mode) & 0o1777;
    context.process.vfs().make_directory(&caller(context), &start, &path, permissions)?;
    Ok(0)
}

pub(super) fn unlinkat(context: Context<'_>, dirfd: u64, path: u64, at_flags: u64) -> Result {
    if at_flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    let start = start(context, dirfd, &path)?;
    let vfs = &context.process.vfs();
    if at_flags & AT_REMOVEDIR != 0 {
        vfs.remove_directory(&caller(context), &start, &path)?;
    } else {
        vfs.unlink(&caller(context), &start, &path)?;
    }
    Ok(0)
}

/// `renameat2` flags.
const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;

pub(super) fn renameat2(
    context: Context<'_>,
    (old_dirfd, old_path): (u64, u64),
    (new_dirfd, new_path): (u64, u64),
    rename_flags: u64,
) -> Result {
    let mode = match rename_flags {
        0 => RenameMode::Replace,
        RENAME_NOREPLACE => RenameMode::NoReplace,
        RENAME_EXCHANGE => RenameMode::Exchange,
        _ => return Err(Errno::EINVAL.into()),
    };
    let old_path = read_path(context, old_path)?;
    let new_path = read_path(context, new_path)?;
    let old_start = start(context, old_dirfd, &old_path)?;
    let new_start = start(context, new_dirfd, &new_path)?;
    context.process.vfs().rename(&caller(context), (&old_start, &old_path), (&new_start, &new_path), mode)?;
    Ok(0)
}

pub(super) fn linkat(
    context: Context<'_>,
    (old_dirfd, old_path): (u64, u64),
    (new_dirfd, new_path): (u64, u64),
    at_flags: u64,
) -> Result {
    if at_flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let old_path = read_path(context, old_path)?;
    let new_path = read_path(context, new_path)?;
    let target = locate(context, old_dirfd, &old_path, at_flags, at_flags & AT_SYMLINK_FOLLOW != 0)?;
    let new_start = start(context, new_dirfd, &new_path)?;
    context.process.vfs().link(&caller(context), &target, (&new_start, &new_path))?;
    Ok(0)
}

pub(super) fn symlinkat(context: Context<'_>, target: u64, dirfd: u64, path: u64) -> Result {
    let target = read_path(context, target)?;
    let path = read_path(context, path)?;
    let start = start(context, dirfd, &path)?;
    context.process.vfs().make_symlink(&caller(context), &target, &start, &path)?;
    Ok(0)
}

pub(super) fn readlinkat(context: Context<'_>, dirfd: u64, path: u64, address: u64, size: u64) -> Result {
    let path = read_path(context, path)?;
    if size as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    // An empty path names the descriptor itself, never the working
    // directory.
    if path.is_empty() && dirfd as i32 == AT_FDCWD {
        return Err(Errno::ENOENT.into());
    }
    let location = locate(context, dirfd, &path, AT_EMPTY_PATH, false)?;
    let target = context.process.vfs().read_link(&caller(context), &location)?;
    let length = target.len().min(size as u32 as usize);
    User::new(context.machine).write_bytes(address, &target.as_bytes()[..length])?;
    Ok(length as u64)
}

pub(super) fn chdir(context: Context<'_>, path: u64) -> Result {
    let path = read_path(context, path)?;
    let location = locate(context, AT_FDCWD as u64, &path, 0, true)?;
    set_working_directory(context, location)
}

pub(super) fn fchdir(context: Context<'_>, fd: u64) -> Result {
    let location = file(context, fd)?.location().cloned().ok_or(Errno::ENOTDIR)?;
    set_working_directory(context, location)
}

/// `chdir` and `fchdir`: the directory needs search permission.
fn set_working_directory(context: Context<'_>, location: Location) -> Result {
    if !location.is_directory() {
        return Err(Errno::ENOTDIR.into());
    }
    let caller = caller(context);
    permission::check_caller(&caller, &location.metadata(&caller)?, permission::EXECUTE)?;
    context.fs().with(|fs| fs.working_directory = location);
    Ok(0)
}

pub(super) fn getcwd(context: Context<'_>, address: u64, size: u64) -> Result {
    let location = context.fs().working_directory();
    let mut path = context.process.vfs().path_of(&caller(context), &location)?.into_bytes();
    path.push(0);
    if (size as usize) < path.len() {
        return Err(Errno::ERANGE.into());
    }
    User::new(context.machine).write_bytes(address, &path)?;
    Ok(path.len() as u64)
}

pub(super) fn umask(context: Context<'_>, mask: u64) -> Result {
    let previous = context.fs().with(|fs| core::mem::replace(&mut fs.umask, mask as u32 & 0o777));
    Ok(u64::from(previous))
}

/// `access` modes.
const X_OK: u64 = 1;
const W_OK: u64 = 2;
const R_OK: u64 = 4;
const ACCESS_MODES: u64 = 7;

pub(super) fn faccessat2(context: Context<'_>, dirfd: u64, path: u64, mode: u64, at_flags: u64) -> Result {
    if mode & !ACCESS_MODES != 0 || at_flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    // Without AT_EACCESS the check is made with the real ids, and with
    // root's capabilities only when the real user is root (Linux's
    // `access_override_creds`).
    let mut credentials = context.process.state.lock().credentials.clone();
    if at_flags & AT_EACCESS == 0 {
        credentials.filesystem_user = credentials.real_user;
        credentials.filesystem_group = credentials.real_group;
        credentials.capabilities.effective =
            if credentials.real_user == 0 { credentials.capabilities.permitted } else { 0 };
    }
    let caller = crate::vfs::Caller { acting_as: Some(&credentials), ..caller(context) };
    let location = if path.is_empty() && at_flags & AT_EMPTY_PATH != 0 {
        locate(context, dirfd, &path, at_flags, false)?
    } else {
        let start = start(context, dirfd, &path)?;
        context.process.vfs().resolve(&caller, &start, &path, at_flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    let is_content =
        matches!(location.file_type(), FileType::Regular | FileType::Directory | FileType::Symlink);
    if mode & W_OK != 0 && is_content {
        location.check_writable()?;
    }
    let wanted = [(R_OK, permission::READ), (W_OK, permission::WRITE), (X_OK, permission::EXECUTE)]
        .into_iter()
        .filter(|(bit, _)| mode & bit != 0)
        .fold(0, |wanted, (_, permission)| wanted | permission);
    if wanted != 0 {
        permission::check(&credentials, &location.metadata(&caller)?, wanted)?;
    }
    Ok(0)
}

pub(super) fn fchmodat(context: Context<'_>, dirfd: u64, path: u64, mode: u64) -> Result {
    let path = read_path(context, path)?;
    let location = locate(context, dirfd, &path, 0, true)?;
    change_mode(context, &location, mode)?;
    report_to_directory(context, dirfd, &path, true, notify::mask::ATTRIB);
    Ok(0)
}

/// Reports `event` on the file `dirfd` and `path` name to its directory's
/// inotify watches, with its name (the file's own watches have seen it).
fn report_to_directory(context: Context<'_>, dirfd: u64, path: &str, follow: bool, event: u32) {
    if !notify::is_watching() || path.is_empty() {
        return;
    }
    let caller = caller(context);
    let Ok(start) = start(context, dirfd, path) else {
        return;
    };
    if let Ok((location, Some((directory, name)))) =
        context.process.vfs().walk_named(&caller, &start, path, follow, &mut 0)
    {
        let event = if location.is_directory() { event | notify::mask::ISDIR } else { event };
        notify::notify(notify::key_of(&directory), event, Some(&name), 0);
    }
}

pub(super) fn fchmod(context: Context<'_>, fd: u64, mode: u64) -> Result {
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    let Some(location) = file.location() else {
        // A terminal's descriptor changes its node.
        let permissions = Some(mode as u32 & 0o7777);
        return super::terminal::change_node(context, &file, permissions, (None, None))
            .unwrap_or(Err(Errno::EINVAL.into()));
    };
    change_mode(context, location, mode)
}

fn change_mode(context: Context<'_>, location: &Location, mode: u64) -> Result {
    context.process.vfs().change_mode(&caller(context), location, mode as u32 & 0o7777)?;
    Ok(0)
}

/// A `chown` id argument: `-1` leaves the id alone.
fn owner_id(argument: u64) -> Option<u32> {
    Some(argument as u32).filter(|&id| id != u32::MAX)
}

pub(super) fn fchownat(
    context: Context<'_>,
    dirfd: u64,
    path: u64,
    ids: (u64, u64),
    at_flags: u64,
) -> Result {
    if at_flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    let follow = at_flags & AT_SYMLINK_NOFOLLOW == 0;
    let location = locate(context, dirfd, &path, at_flags, follow)?;
    change_owner(context, &location, ids)?;
    report_to_directory(context, dirfd, &path, follow, notify::mask::ATTRIB);
    Ok(0)
}

pub(super) fn fchown(context: Context<'_>, fd: u64, ids: (u64, u64)) -> Result {
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    match file.location() {
        Some(location) => change_owner(context, location, ids),
        // A terminal's descriptor changes its node.
        None => super::terminal::change_node(context, &file, None, (owner_id(ids.0), owner_id(ids.1)))
            .unwrap_or(Ok(0)),
    }
}

fn change_owner(context: Context<'_>, location: &Location, (user, group): (u64, u64)) -> Result {
    // The ids are the caller's user namespace's; files keep kernel ids.
    let credentials = context.process.state.lock().credentials.clone();
    let user =
        owner_id(user).map(|user| credentials.user_from_seen(user)).transpose().map_err(Errno::from)?;
    let group =
        owner_id(group).map(|group| credentials.group_from_seen(group)).transpose().map_err(Errno::from)?;
    context.process.vfs().change_owner(&caller(context), location, user, group)?;
    Ok(0)
}

/// `utimensat` special nanosecond values.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

pub(super) fn utimensat(context: Context<'_>, dirfd: u64, path: u64, times: u64, at_flags: u64) -> Result {
    if at_flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let now_ns = context.machine.realtime_ns();
    let (access, modify, kind) = if times == 0 {
        (Some(now_ns), Some(now_ns), TimesChange::Touch)
    } else {
        let user = User::new(context.machine);
        let decode = |address: u64| -> core::result::Result<(Option<u64>, bool), Errno> {
            let seconds = user.read_u64(address)? as i64;
            let nanoseconds = user.read_u64(address + 8)? as i64;
            match nanoseconds {
                UTIME_NOW => Ok((Some(now_ns), false)),
                UTIME_OMIT => Ok((None, false)),
                0..=999_999_999 => {
                    Ok((Some(Timespec { seconds: seconds.max(0), nanoseconds }.to_ns()), true))
                }
                _ => Err(Errno::EINVAL),
            }
        };
        let ((access, access_given), (modify, modify_given)) = (decode(times)?, decode(times + 16)?);
        let kind = if access_given || modify_given {
            TimesChange::Explicit
        } else if access.is_some() && modify.is_some() {
            TimesChange::Touch
        } else {
            TimesChange::Other
        };
        (access, modify, kind)
    };
    let follow = at_flags & AT_SYMLINK_NOFOLLOW == 0;
    let (location, path) = if path == 0 {
        // Linux's extension: a null path changes the descriptor itself.
        if dirfd as i32 == AT_FDCWD {
            return Err(Errno::EFAULT.into());
        }
        (file(context, dirfd)?.location().cloned().ok_or(Errno::EBADF)?, String::new())
    } else {
        let path = read_path(context, path)?;
        (locate(context, dirfd, &path, at_flags, follow)?, path)
    };
    if access.is_none() && modify.is_none() {
        return Ok(0);
    }
    context.process.vfs().set_times(&caller(context), &location, access, modify, kind)?;
    report_to_directory(context, dirfd, &path, follow, notify::mask::ATTRIB);
    Ok(0)
}

pub(super) fn truncate(context: Context<'_>, path: u64, length: u64) -> Result {
    let path = read_path(context, path)?;
    if (length as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let location = locate(context, AT_FDCWD as u64, &path, 0, true)?;
    context.process.vfs().truncate(&caller(context), &location, length)?;
    Ok(0)
}

/// Where an extended-attribute call finds its file: a path (following a
/// final symlink or not) or a descriptor.
#[derive(Debug, Clone, Copy)]
pub(super) enum AttributeTarget {
    /// `getxattr` and friends: the path, following symlinks.
    Path(u64),
    /// `lgetxattr` and friends: the path, not following a final symlink.
    Link(u64),
    /// `fgetxattr` and friends: an open descriptor.
    Descriptor(u64),
}

/// The node an extended-attribute call works on, and whether its mount is
/// writable; `None` for a descriptor without a node (a pipe, a socket).
fn attribute_target(
    context: Context<'_>,
    target: AttributeTarget,
) -> core::result::Result<Option<Location>, Errno> {
    match target {
        AttributeTarget::Path(path) | AttributeTarget::Link(path) => {
            let follows = matches!(target, AttributeTarget::Path(_));
            let path = read_path(context, path)?;
            Ok(Some(locate(context, AT_FDCWD as u64, &path, 0, follows)?))
        }
        AttributeTarget::Descriptor(fd) => {
            let file = file(context, fd)?;
            if file.is_path_only() {
                return Err(Errno::EBADF);
            }
            Ok(file.location().cloned())
        }
    }
}

/// An attribute name argument.
fn attribute_name(context: Context<'_>, name: u64) -> core::result::Result<String, Errno> {
    let bytes = User::new(context.machine)
        .read_c_string(name, extended::NAME_MAX + 1)
        .map_err(|error| if error == Errno::ENAMETOOLONG { Errno::ERANGE } else { error })?;
    String::from_utf8(bytes).map_err(|_| Errno::EOPNOTSUPP)
}

/// `getxattr`, `lgetxattr`, `fgetxattr`: the value's size with `size` 0,
/// else the value (`ERANGE` if it does not fit).
pub(super) fn getxattr(
    context: Context<'_>,
    target: AttributeTarget,
    name: u64,
    value: u64,
    size: u64,
) -> Result {
    let name = attribute_name(context, name)?;
    let location = attribute_target(context, target)?;
    extended::namespace(&name)?;
    let Some(location) = location else {
        return Err(Errno::EOPNOTSUPP.into());
    };
    let caller = caller(context);
    extended::check_access(&caller, &location.metadata(&caller)?, &name, false)?;
    let bytes = location.node.get_extended(&caller, &name)?;
    if size == 0 {
        return Ok(bytes.len() as u64);
    }
    if bytes.len() as u64 > size.min(extended::VALUE_MAX as u64) {
        return Err(Errno::ERANGE.into());
    }
    User::new(context.machine).write_bytes(value, &bytes)?;
    Ok(bytes.len() as u64)
}

/// `listxattr` and friends: the names, each ended by a NUL byte.
pub(super) fn listxattr(context: Context<'_>, target: AttributeTarget, list: u64, size: u64) -> Result {
    let location = attribute_target(context, target)?;
    let Some(location) = location else {
        return Ok(0);
    };
    let caller = caller(context);
    let mut bytes = alloc::vec::Vec::new();
    for name in location.node.list_extended(&caller)? {
        if extended::is_listed(&caller, &name) {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
        }
    }
    if size == 0 {
        return Ok(bytes.len() as u64);
    }
    if bytes.len() as u64 > size.min(extended::LIST_MAX as u64) {
        return Err(Errno::ERANGE.into());
    }
    User::new(context.machine).write_bytes(list, &bytes)?;
    Ok(bytes.len() as u64)
}

/// `XATTR_CREATE` and `XATTR_REPLACE`.
const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;

/// `setxattr` and friends.
pub(super) fn setxattr(
    context: Context<'_>,
    target: AttributeTarget,
    name: u64,
    value: u64,
    size: u64,
    set_flags: u64,
) -> Result {
    if set_flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let name = attribute_name(context, name)?;
    if size > extended::VALUE_MAX as u64 {
        return Err(Errno::E2BIG.into());
    }
    let bytes = if size == 0 {
        alloc::vec::Vec::new()
    } else {
        User::new(context.machine).read_bytes(value, size as usize)?
    };
    let location = attribute_target(context, target)?;
    extended::namespace(&name)?;
    let Some(location) = location else {
        return Err(Errno::EOPNOTSUPP.into());
    };
    location.check_writable()?;
    let caller = caller(context);
    extended::check_access(&caller, &location.metadata(&caller)?, &name, true)?;
    // With both flags, XATTR_CREATE decides for an existing attribute
    // and XATTR_REPLACE for a missing one.
    let must_exist = match set_flags {
        0 => None,
        XATTR_CREATE => Some(false),
        XATTR_REPLACE => Some(true),
        _ => Some(location.node.get_extended(&caller, &name).is_err()),
    };
    location.node.set_extended(&caller, &name, &bytes, must_exist)?;
    crate::vfs::notify::at(&location, None, crate::vfs::notify::mask::ATTRIB);
    Ok(0)
}

/// `removexattr` and friends.
pub(super) fn removexattr(context: Context<'_>, target: AttributeTarget, name: u64) -> Result {
    let name = attribute_name(context, name)?;
    let location = attribute_target(context, target)?;
    extended::namespace(&name)?;
    let Some(location) = location else {
        return Err(Errno::EOPNOTSUPP.into());
    };
    location.check_writable()?;
    let caller = caller(context);
    extended::check_access(&caller, &location.metadata(&caller)?, &name, true)?;
    location.node.remove_extended(&caller, &name)?;
    crate::vfs::notify::at(&location, None, crate::vfs::notify::mask::ATTRIB);
    Ok(0)
}
