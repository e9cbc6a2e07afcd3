//! `mount` and `umount2`: filesystems added to and taken out of the tree
//! while programs run, with Linux's flags and errors.
//!
//! Each mount namespace has its own copy of the tree and nothing
//! propagates between them: every mount acts as private, and propagation
//! changes (`MS_SHARED`, `MS_PRIVATE`, ...) only check their target. The filesystems that exist once per machine
//! (proc, sysfs, devtmpfs, cgroup2) are mounted again as the same tree,
//! as Linux shows the same one within one namespace.

use alloc::string::String;
use alloc::sync::Arc;

use super::files::caller;
use super::paths::{locate, read_path};
use super::{Context, Result};
use crate::credentials::capability;
use crate::errno::Errno;
use crate::fs::{self, MountError};
use crate::linux::AT_FDCWD;
use crate::user::User;
use crate::vfs::mount::attribute;
use crate::vfs::{FileSystem, Location, NewMount};

/// `mount(2)` flags.
mod flag {
    pub const RDONLY: u64 = 1;
    pub const NOSUID: u64 = 2;
    pub const NODEV: u64 = 4;
    pub const NOEXEC: u64 = 8;
    pub const NOSYMFOLLOW: u64 = 256;
    pub const NOATIME: u64 = 1024;
    pub const NODIRATIME: u64 = 2048;
    pub const STRICTATIME: u64 = 1 << 24;
    pub const REMOUNT: u64 = 32;
    pub const BIND: u64 = 4096;
    pub const MOVE: u64 = 8192;
    pub const REC: u64 = 16384;
    pub const UNBINDABLE: u64 = 1 << 17;
    pub const PRIVATE: u64 = 1 << 18;
    pub const SLAVE: u64 = 1 << 19;
    pub const SHARED: u64 = 1 << 20;
    /// Flags that change propagation only.
    pub const PROPAGATION: u64 = UNBINDABLE | PRIVATE | SLAVE | SHARED;
    /// `MS_MGC_VAL`: the magic number old programs put in the top half.
    pub const MAGIC: u64 = 0xc0ed_0000;
    pub const MAGIC_MASK: u64 = 0xffff_0000;
}

/// `umount2` flags.
mod unmount_flag {
    pub const FORCE: u64 = 1;
    pub const DETACH: u64 = 2;
    pub const EXPIRE: u64 = 4;
    pub const NOFOLLOW: u64 = 8;
}

/// Filesystems a machine has one of, by the name `mount` takes.
pub(super) const SINGLE_INSTANCE: [&str; 5] = ["proc", "sysfs", "devtmpfs", "devpts", "cgroup2"];

/// The longest filesystem type name or option string read.
const PAGE: usize = 4096;

/// `mount(source, target, type, flags, data)`.
pub(super) fn mount(
    context: Context<'_>,
    source: u64,
    target: u64,
    type_name: u64,
    flags: u64,
    data: u64,
) -> Result {
    let mounts = context.process.namespaces().mount;
    if !context.process.state.lock().credentials.has_capability_in(mounts.owner(), capability::SYS_ADMIN) {
        return Err(Errno::EPERM.into());
    }
    let flags = if flags & flag::MAGIC_MASK == flag::MAGIC { flags & !flag::MAGIC_MASK } else { flags };
    let target_path = read_path(context, target)?;
    let target = locate(context, AT_FDCWD as u64, &target_path, 0, true)?;
    let caller = caller(context);
    let vfs = &context.process.vfs();
    if flags & flag::REMOUNT != 0 {
        // New flags for a mount (with MS_BIND: for this mount alone).
        if !target.is_mount_root() {
            return Err(Errno::EINVAL.into());
        }
        target.mount.set_read_only(flags & flag::RDONLY != 0)?;
        target.mount.set_attributes(attributes_of(flags));
        return Ok(0);
    }
    if flags & flag::BIND != 0 {
        // The directory shown again at the target (what is mounted inside
        // it is not, even with MS_REC). Linux also binds a file onto a
        // file; rosv's mount points are directories.
        let source_path = read_path(context, source)?;
        let shown = locate(context, AT_FDCWD as u64, &source_path, 0, true)?;
        if !shown.is_directory() || !target.is_directory() {
            return Err(Errno::ENOTDIR.into());
        }
        let source_name = String::from(shown.mount.source());
        let type_name = String::from(shown.mount.type_name());
        let new = NewMount {
            filesystem: shown.mount.filesystem().clone(),
            root: shown.node.clone(),
            source: &source_name,
            type_name: &type_name,
            read_only: false,
            attributes: shown.mount.attributes(),
            device: Some(shown.mount.device()),
        };
        vfs.mount_on(&caller, &target, new)?;
        return Ok(0);
    }
    if flags & flag::MOVE != 0 {
        let source_path = read_path(context, source)?;
        let moved = locate(context, AT_FDCWD as u64, &source_path, 0, true)?;
        vfs.move_mount(&caller, &moved, &target)?;
        return Ok(0);
    }
    if flags & flag::PROPAGATION != 0 {
        let kinds = (flags & flag::PROPAGATION).count_ones();
        if kinds != 1 || flags & !(flag::PROPAGATION | flag::REC | 0x8000) != 0 {
            return Err(Errno::EINVAL.into());
        }
        return Ok(0);
    }
    if !target.is_directory() {
        return Err(Errno::ENOTDIR.into());
    }
    let type_name = read_text(context, type_name)?;
    let source_path = if source == 0 { String::from("none") } else { read_path(context, source)? };
    let options = if data == 0 { String::new() } else { read_text(context, data)? };
    let (filesystem, source_name) = new_filesystem(context, &type_name, source_path, &options)?;
    let root = filesystem.root();
    let new = NewMount {
        filesystem,
        root,
        source: &source_name,
        type_name: &type_name,
        read_only: flags & flag::RDONLY != 0,
        attributes: attributes_of(flags),
        device: None,
    };
    vfs.mount_on(&caller, &target, new)?;
    Ok(0)
}

/// The filesystem a new mount of type `type_name` shows, made from
/// `source_path` and `options` (or the machine's one of its type), and
/// the source `/proc/mounts` names.
pub(super) fn new_filesystem(
    context: Context<'_>,
    type_name: &str,
    source_path: String,
    options: &str,
) -> core::result::Result<(Arc<dyn FileSystem>, String), Errno> {
    let caller = caller(context);
    let vfs = &context.process.vfs();
    if SINGLE_INSTANCE.contains(&type_name) {
        let existing =
            vfs.mounts().into_iter().find(|mount| mount.source() == type_name).ok_or(Errno::ENODEV)?;
        return Ok((existing.filesystem().clone(), String::from(type_name)));
    }
    let filesystem = if type_name == "9p" {
        // The source is a virtio-9p device's mount tag.
        let share = fs::p9::mount_tag(vfs, &caller, &source_path, options).map_err(share_errno)?;
        share as Arc<dyn FileSystem>
    } else {
        let permissions = root_permissions(type_name, options)?;
        fs::new_filesystem(vfs, &caller, type_name, &source_path, permissions).map_err(mount_errno)?
    };
    Ok((filesystem, source_path))
}

/// The mount attributes `mount(2)`'s flags ask for.
fn attributes_of(flags: u64) -> u32 {
    let mut attributes = 0;
    for (bit, value) in [
        (flag::NOSUID, attribute::NOSUID),
        (flag::NODEV, attribute::NODEV),
        (flag::NOEXEC, attribute::NOEXEC),
        (flag::NODIRATIME, attribute::NODIRATIME),
        (flag::NOSYMFOLLOW, attribute::NOSYMFOLLOW),
    ] {
        if flags & bit != 0 {
            attributes |= value;
        }
    }
    attributes |= if flags & flag::NOATIME != 0 {
        attribute::NOATIME
    } else if flags & flag::STRICTATIME != 0 {
        attribute::STRICTATIME
    } else {
        attribute::RELATIME
    };
    attributes
}

/// `umount2(target, flags)` (and `umount`, which is `umount2` with 0).
pub(super) fn umount2(context: Context<'_>, target: u64, flags: u64) -> Result {
    let known = unmount_flag::FORCE | unmount_flag::DETACH | unmount_flag::EXPIRE | unmount_flag::NOFOLLOW;
    if flags & !known != 0
        || (flags & unmount_flag::EXPIRE != 0 && flags & (unmount_flag::FORCE | unmount_flag::DETACH) != 0)
    {
        return Err(Errno::EINVAL.into());
    }
    let mounts = context.process.namespaces().mount;
    if !context.process.state.lock().credentials.has_capability_in(mounts.owner(), capability::SYS_ADMIN) {
        return Err(Errno::EPERM.into());
    }
    let path = read_path(context, target)?;
    let follow = flags & unmount_flag::NOFOLLOW == 0;
    let target: Location = locate(context, AT_FDCWD as u64, &path, 0, follow)?;
    if flags & unmount_flag::EXPIRE != 0 {
        // A mount is marked the first time and taken out the second if no
        // one used it in between; rosv keeps no such marks, so the first
        // call reports the mark, as Linux does for an unmarked mount.
        context.process.vfs().mount_rooted_at(&target)?;
        return Err(Errno::EAGAIN.into());
    }
    let now_ns = caller(context).now_ns();
    context.process.vfs().unmount(target, flags & unmount_flag::DETACH != 0, now_ns)?;
    Ok(0)
}

/// A NUL-terminated string argument of at most a page.
pub(super) fn read_text(context: Context<'_>, address: u64) -> core::result::Result<String, Errno> {
    let bytes = User::new(context.machine).read_c_string(address, PAGE)?;
    String::from_utf8(bytes).map_err(|_| Errno::EINVAL)
}

/// The root's permissions a new ramfs or tmpfs gets from its options
/// (`mode=`); tmpfs refuses options it does not know, ramfs ignores them.
fn root_permissions(type_name: &str, options: &str) -> core::result::Result<u32, Errno> {
    let mut permissions = if type_name == "tmpfs" { 0o1777 } else { 0o755 };
    for option in options.split(',').filter(|option| !option.is_empty()) {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        match key {
            "mode" => {
                permissions =
                    u32::from_str_radix(value, 8).ok().filter(|mode| *mode <= 0o7777).ok_or(Errno::EINVAL)?;
            }
            "size" | "nr_blocks" | "nr_inodes" | "uid" | "gid" | "huge" | "mpol" | "inode32" | "inode64"
            | "noswap" => {}
            _ if type_name == "tmpfs" => return Err(Errno::EINVAL),
            _ => {}
        }
    }
    Ok(permissions)
}

/// Linux's error for a share that cannot be mounted: `ENOENT` for a tag no
/// device has, as Linux's virtio transport answers.
fn share_errno(error: fs::p9::P9MountError) -> Errno {
    match error {
        fs::p9::P9MountError::NoSuchTag(_) => Errno::ENOENT,
        fs::p9::P9MountError::Option(_) => Errno::EINVAL,
        fs::p9::P9MountError::Server(error) => error.into(),
    }
}

/// Linux's error for a filesystem that cannot be mounted.
fn mount_errno(error: MountError) -> Errno {
    match error {
        MountError::UnknownType => Errno::ENODEV,
        MountError::NotBlockDevice => Errno::ENOTBLK,
        MountError::Path(error) => error.into(),
        MountError::Image(_) | MountError::Ext4(_) => Errno::EINVAL,
    }
}
