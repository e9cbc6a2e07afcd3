//! The filesystems: ramfs, devfs, procfs and ROFS over a disk, and the
//! standard tree the kernel boots with ([`standard_tree`]).

pub mod devfs;
pub mod procfs;
pub mod ramfs;
pub mod rofs;

use alloc::sync::Arc;
use core::fmt;

use rosv_rofs::RofsError;

use self::devfs::DevFs;
use self::procfs::{ProcFs, SystemInformation};
use self::ramfs::RamFs;
use self::rofs::RofsFileSystem;
use crate::device::BlockDevice;
use crate::machine::Machine;
use crate::vfs::{Caller, FileSystem, FsError, Vfs};

/// Why the standard tree could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeError {
    /// The root image is not a valid ROFS image.
    RootImage(RofsError),
    /// A filesystem could not be mounted.
    Mount(&'static str, FsError),
}

impl fmt::Display for TreeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::RootImage(error) => {
                write!(formatter, "the root image cannot be mounted as ROFS: {error}")
            }
            TreeError::Mount(path, error) => write!(formatter, "cannot mount {path}: {error:?}"),
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

/// The tree a process runs in: `root_image` (a ROFS disk, such as the
/// initrd) at `/`, or an empty ramfs without one; devfs at `/dev` with
/// `disks` as `/dev/vda`, `/dev/vdb`, ...; ramfs at `/dev/shm`; procfs at
/// `/proc`; ramfs at `/tmp`.
pub fn standard_tree(
    machine: &dyn Machine,
    root_image: Option<Arc<dyn BlockDevice>>,
    disks: &[Arc<dyn BlockDevice>],
    system: SystemInformation,
) -> Result<Arc<Vfs>, TreeError> {
    let vfs = match root_image {
        Some(disk) => {
            let root = RofsFileSystem::mount(disk).map_err(TreeError::RootImage)?;
            Vfs::new(root, "/dev/root")
        }
        None => Vfs::new(RamFs::new(0o755), "rootfs"),
    };
    let devfs = DevFs::new();
    for (index, disk) in disks.iter().enumerate() {
        devfs.register_block_device(&disk_name(index), disk.clone());
    }
    let caller = Caller::kernel(machine);
    let mounts: [(&'static str, Arc<dyn FileSystem>, &str); 4] = [
        ("/dev", devfs, "devtmpfs"),
        ("/dev/shm", RamFs::new(0o1777), "shm"),
        ("/proc", ProcFs::new(system), "proc"),
        ("/tmp", RamFs::new(0o1777), "tmpfs"),
    ];
    for (path, filesystem, source) in mounts {
        vfs.mount(&caller, path, filesystem, source).map_err(|error| TreeError::Mount(path, error))?;
    }
    Ok(vfs)
}

#[cfg(test)]
pub(crate) mod testing;
