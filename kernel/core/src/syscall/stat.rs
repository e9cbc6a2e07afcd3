//! File status: stat, lstat, fstat, newfstatat, statx, statfs, fstatfs.

use super::files::{caller, file};
use super::paths::{locate, read_path};
use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::files::{STATX_BASIC_STATS, Statfs, Statx};
use crate::linux::{
    AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT, AT_STATX_SYNC_TYPE, AT_SYMLINK_NOFOLLOW, Stat, Timespec,
};
use crate::user::User;
use crate::vfs::{Metadata, Statistics};

/// `PIPEFS_MAGIC`, what `fstatfs` reports for a pipe.
const PIPEFS_MAGIC: u64 = 0x5049_5045;
/// `ANON_INODE_FS_MAGIC`, what it reports for an eventfd or epoll instance.
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;
/// The longest name (`NAME_MAX`).
const NAME_LENGTH_MAX: u64 = 255;

fn encode_stat(metadata: &Metadata) -> alloc::vec::Vec<u8> {
    Stat {
        device: metadata.device,
        inode: metadata.inode,
        link_count: metadata.link_count,
        mode: metadata.mode(),
        uid: metadata.owner_user,
        gid: metadata.owner_group,
        rdev: metadata.represented_device,
        size: metadata.size_bytes as i64,
        block_size: metadata.block_size_bytes as i64,
        blocks: metadata.blocks as i64,
        access_time: Timespec::from_ns(metadata.access_time_ns),
        modify_time: Timespec::from_ns(metadata.modify_time_ns),
        change_time: Timespec::from_ns(metadata.change_time_ns),
    }
    .encode()
}

/// The metadata of what `dirfd` and `path` name (the descriptor itself,
/// pipes included, for an empty path with `AT_EMPTY_PATH`).
fn metadata_at(
    context: Context<'_>,
    dirfd: u64,
    path: &str,
    at_flags: u64,
) -> core::result::Result<Metadata, Errno> {
    let caller = caller(context);
    if path.is_empty() && at_flags & AT_EMPTY_PATH != 0 && dirfd as i32 != AT_FDCWD {
        return Ok(as_seen(context, file(context, dirfd)?.metadata(&caller)?));
    }
    let location = locate(context, dirfd, path, at_flags, at_flags & AT_SYMLINK_NOFOLLOW == 0)?;
    Ok(as_seen(context, location.metadata(&caller)?))
}

/// `metadata` with its owner as the caller's user namespace sees it.
fn as_seen(context: Context<'_>, mut metadata: Metadata) -> Metadata {
    let namespace = context.process.state.lock().credentials.user_namespace.clone();
    if namespace.parent().is_some() {
        metadata.owner_user = namespace.user_seen(metadata.owner_user);
        metadata.owner_group = namespace.group_seen(metadata.owner_group);
    }
    metadata
}

pub(super) fn stat(context: Context<'_>, path: u64, address: u64, follow: bool) -> Result {
    let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
    newfstatat(context, AT_FDCWD as u64, path, address, flags)
}

pub(super) fn fstat(context: Context<'_>, fd: u64, address: u64) -> Result {
    let metadata = as_seen(context, file(context, fd)?.metadata(&caller(context))?);
    User::new(context.machine).write_bytes(address, &encode_stat(&metadata))?;
    Ok(0)
}

pub(super) fn newfstatat(context: Context<'_>, dirfd: u64, path: u64, address: u64, at_flags: u64) -> Result {
    if at_flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    let metadata = metadata_at(context, dirfd, &path, at_flags)?;
    User::new(context.machine).write_bytes(address, &encode_stat(&metadata))?;
    Ok(0)
}

/// Splits a device number into major and minor as Linux encodes them.
fn split_device(device: u64) -> (u32, u32) {
    (((device >> 8) & 0xfff) as u32, ((device & 0xff) | ((device >> 12) & !0xff)) as u32)
}

pub(super) fn statx(
    context: Context<'_>,
    dirfd: u64,
    path: u64,
    at_flags: u64,
    mask: u64,
    address: u64,
) -> Result {
    let known = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE;
    if at_flags & !known != 0 || at_flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE || mask & (1 << 31) != 0
    {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    let metadata = metadata_at(context, dirfd, &path, at_flags)?;
    let (rdev_major, rdev_minor) = split_device(metadata.represented_device);
    let (device_major, device_minor) = split_device(metadata.device);
    let statx = Statx {
        mask: STATX_BASIC_STATS,
        block_size: metadata.block_size_bytes as u32,
        link_count: metadata.link_count as u32,
        uid: metadata.owner_user,
        gid: metadata.owner_group,
        mode: metadata.mode() as u16,
        inode: metadata.inode,
        size: metadata.size_bytes,
        blocks: metadata.blocks,
        access_time: Timespec::from_ns(metadata.access_time_ns),
        birth_time: Timespec::default(),
        change_time: Timespec::from_ns(metadata.change_time_ns),
        modify_time: Timespec::from_ns(metadata.modify_time_ns),
        rdev_major,
        rdev_minor,
        device_major,
        device_minor,
    };
    User::new(context.machine).write_bytes(address, &statx.encode())?;
    Ok(0)
}

fn encode_statfs(statistics: Statistics, device: u64, flags: u64) -> alloc::vec::Vec<u8> {
    Statfs {
        magic: statistics.magic,
        block_size: statistics.block_size_bytes,
        blocks: statistics.blocks,
        free_blocks: statistics.free_blocks,
        available_blocks: statistics.free_blocks,
        files: statistics.files,
        free_files: statistics.free_files,
        filesystem_id: device,
        name_length_max: NAME_LENGTH_MAX,
        fragment_size: statistics.block_size_bytes,
        flags,
    }
    .encode()
}

pub(super) fn statfs(context: Context<'_>, path: u64, address: u64) -> Result {
    let path = read_path(context, path)?;
    let location = locate(context, AT_FDCWD as u64, &path, 0, true)?;
    let mount = &location.mount;
    let bytes = encode_statfs(mount.filesystem().statistics(), mount.device(), mount.statfs_flags());
    User::new(context.machine).write_bytes(address, &bytes)?;
    Ok(0)
}

pub(super) fn fstatfs(context: Context<'_>, fd: u64, address: u64) -> Result {
    let file = file(context, fd)?;
    let bytes = match file.location() {
        Some(location) => {
            let mount = &location.mount;
            encode_statfs(mount.filesystem().statistics(), mount.device(), mount.statfs_flags())
        }
        None => {
            let magic = if file.pipe_end().is_some() { PIPEFS_MAGIC } else { ANON_INODE_FS_MAGIC };
            let statistics = Statistics { magic, block_size_bytes: 4096, ..Statistics::default() };
            encode_statfs(statistics, 0, 0)
        }
    };
    User::new(context.machine).write_bytes(address, &bytes)?;
    Ok(0)
}
