//! The filesystems: ramfs, devfs, procfs, sysfs (with the cgroup tree),
//! ROFS over a disk and the overlay of a ramfs over it, and the standard
//! tree the kernel boots with ([`standard_tree`]).

pub mod devfs;
pub mod devpts;
pub mod ext4;
pub mod generated;
pub mod nfs;
pub mod overlay;
pub mod p9;
pub mod procfs;
pub mod ramfs;
pub mod rofs;
pub mod sysfs;

use alloc::sync::Arc;
use core::fmt;

use rosv_rofs::RofsError;

use self::devfs::DevFs;
use self::overlay::OverlayFs;
use self::procfs::{ProcFs, SystemInformation};
use self::ramfs::RamFs;
use self::rofs::RofsFileSystem;
use crate::device::BlockDevice;
use crate::machine::Machine;
use crate::vfs::{Caller, FileSystem, FsError, Vfs};

/// Why a filesystem could not be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountError {
    /// The disk does not hold a valid ROFS image.
    Image(RofsError),
    /// The disk does not hold an ext4 filesystem rosv can mount.
    Ext4(ext4::Ext4MountError),
    /// The mount point or the device path could not be used.
    Path(FsError),
    /// No filesystem has this type name.
    UnknownType,
    /// The source is not a disk.
    NotBlockDevice,
}

impl fmt::Display for MountError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::Image(error) => write!(formatter, "not a ROFS image: {error}"),
            MountError::Ext4(error) => write!(formatter, "{error}"),
            MountError::Path(error) => write!(formatter, "{error}"),
            MountError::UnknownType => {
                write!(formatter, "unknown filesystem type (rosv mounts rofs, ext4 and ramfs)")
            }
            MountError::NotBlockDevice => write!(formatter, "not a block device"),
        }
    }
}

/// The name of the `index`th disk: `vda`, `vdb`, ... (as Linux names
/// virtio disks).
pub fn disk_name(index: usize) -> alloc::string::String {
    let letter = char::from(b'a' + (index % 26) as u8);
    if index < 26 {
        alloc::format!("vd{letter}")
    } else {
        alloc::format!("vd{}{letter}", char::from(b'a' + (index / 26 - 1) as u8))
    }
}

/// What `/` is.
#[derive(Clone)]
pub enum Root {
    /// An empty ramfs.
    Ramfs,
    /// A ROFS image, read-only.
    Rofs(Arc<dyn BlockDevice>),
    /// A ROFS image under a ramfs that takes every change ([`overlay`]).
    Overlay(Arc<dyn BlockDevice>),
}

impl core::fmt::Debug for Root {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Root::Ramfs => "Ramfs",
            Root::Rofs(_) => "Rofs",
            Root::Overlay(_) => "Overlay",
        })
    }
}

/// The tree a process runs in: `root` at `/`; devfs at `/dev` with
/// `disks` as `/dev/vda`, `/dev/vdb`, ...; ramfs at `/dev/shm`; procfs at
/// `/proc`; sysfs at `/sys` and the cgroup tree at `/sys/fs/cgroup`; ramfs
/// at `/tmp`.
pub fn standard_tree(
    machine: &dyn Machine,
    root: Root,
    disks: &[Arc<dyn BlockDevice>],
    system: SystemInformation,
) -> Result<Arc<Vfs>, MountError> {
    let caller = Caller::kernel(machine);
    let vfs = match root {
        Root::Rofs(disk) => {
            let root = RofsFileSystem::mount(disk).map_err(MountError::Image)?;
            Vfs::new(root, "/dev/root")
        }
        Root::Overlay(disk) => {
            let lower = RofsFileSystem::mount(disk).map_err(MountError::Image)?;
            let overlay = OverlayFs::new(&caller, RamFs::new(0o755), &*lower).map_err(MountError::Path)?;
            Vfs::new(overlay, "overlay")
        }
        Root::Ramfs => Vfs::new(RamFs::new(0o755), "rootfs"),
    };
    let devfs = DevFs::new();
    for (index, disk) in disks.iter().enumerate() {
        devfs.register_block_device(&disk_name(index), disk.clone());
    }
    let mounts: [(&'static str, Arc<dyn FileSystem>, &str, &str); 8] = [
        ("/dev", devfs, "devtmpfs", "devtmpfs"),
        ("/dev/pts", devpts::DevPts::new(), "devpts", "devpts"),
        ("/dev/shm", RamFs::tmpfs(0o1777), "shm", "tmpfs"),
        ("/proc", ProcFs::new(system), "proc", "proc"),
        ("/run", RamFs::tmpfs(0o755), "tmpfs", "tmpfs"),
        ("/sys", sysfs::sysfs(), "sysfs", "sysfs"),
        ("/sys/fs/cgroup", sysfs::cgroupfs(), "cgroup2", "cgroup2"),
        ("/tmp", RamFs::tmpfs(0o1777), "tmpfs", "tmpfs"),
    ];
    for (path, filesystem, source, type_name) in mounts {
        vfs.mount_as(&caller, path, filesystem, source, type_name).map_err(MountError::Path)?;
    }
    Ok(vfs)
}

/// Mounts a filesystem of type `type_name` at `mount_path`, as OSv's
/// `--mount-fs=rofs,/dev/vdb,/data` asks: `rofs` and `ext4` use the disk
/// at `device_path` (a devfs node; ext4 read-only when the disk is),
/// `ramfs` needs none.
pub fn mount_by_type(
    vfs: &Vfs,
    caller: &Caller<'_>,
    type_name: &str,
    device_path: &str,
    mount_path: &str,
) -> Result<(), MountError> {
    let filesystem = new_filesystem(vfs, caller, type_name, device_path, 0o755)?;
    vfs.mount(caller, mount_path, filesystem, device_path).map_err(MountError::Path)
}

/// The filesystem types `mount` and `fsopen` know, and whether each needs
/// no device (`nodev` in `/proc/filesystems`).
pub const TYPES: [(&str, bool); 12] = [
    ("sysfs", true),
    ("tmpfs", true),
    ("ramfs", true),
    ("proc", true),
    ("devtmpfs", true),
    ("devpts", true),
    ("cgroup2", true),
    ("9p", true),
    ("ext2", false),
    ("ext3", false),
    ("ext4", false),
    ("rofs", false),
];

/// Whether `type_name` is a filesystem type the kernel has.
pub fn is_known_type(type_name: &str) -> bool {
    TYPES.iter().any(|(name, _)| *name == type_name)
}

/// A filesystem of type `type_name` to mount: a new ramfs whose root has
/// `permissions`, or the one on the disk at `device_path`.
pub fn new_filesystem(
    vfs: &Vfs,
    caller: &Caller<'_>,
    type_name: &str,
    device_path: &str,
    permissions: u32,
) -> Result<Arc<dyn FileSystem>, MountError> {
    Ok(match type_name {
        "ramfs" => RamFs::new(permissions),
        "tmpfs" => RamFs::tmpfs(permissions),
        "rofs" => {
            let device = vfs.resolve(caller, &vfs.root(), device_path, true).map_err(MountError::Path)?;
            let disk = devfs::block_device_of(&*device.node).ok_or(MountError::NotBlockDevice)?;
            RofsFileSystem::mount(disk).map_err(MountError::Image)?
        }
        "ext4" | "ext3" | "ext2" => {
            let device = vfs.resolve(caller, &vfs.root(), device_path, true).map_err(MountError::Path)?;
            let disk = devfs::block_device_of(&*device.node).ok_or(MountError::NotBlockDevice)?;
            ext4::Ext4FileSystem::mount(disk, caller.now_ns()).map_err(MountError::Ext4)?
        }
        _ => return Err(MountError::UnknownType),
    })
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
