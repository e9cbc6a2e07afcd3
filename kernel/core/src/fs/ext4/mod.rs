//! ext4 over a disk, read-write, through the `rsext4` engine.
//!
//! The engine (a crate) knows the on-disk format: extents and block maps,
//! linear and hashed directories, the jbd2 journal (written for every
//! change, replayed at mount), metadata checksums, extended attributes.
//! This module makes it a [`FileSystem`]: [`Ext4FileSystem`] holds the
//! mounted engine behind a sleeping lock (disk transfers block the
//! thread), and [`node::Ext4Node`] is one inode, shared by everyone who
//! looked it up, so that an inode whose last name goes is freed when its
//! last user lets go, as on Linux.

mod disk;
mod mapped;
mod node;

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use core::fmt;

use rsext4::{Ext4, Ext4ErrorKind, InodeNumber, MountOptions, MountServices, MountedServices, NoopObserver};

use self::disk::{Disk, Entropy, OperationClock};
use self::node::Ext4Node;
use crate::device::BlockDevice;
use crate::errno::Errno;
use crate::vfs::{FileSystem, FsError, Node, Statistics};

/// `EXT4_SUPER_MAGIC`, what `statfs` reports as the type.
const MAGIC: u64 = 0xef53;

/// The mounted engine.
type Volume = Ext4<Disk, MountedServices<Entropy, NoopObserver>>;

/// Why an ext4 filesystem could not be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4MountError(Ext4ErrorKind);

impl fmt::Display for Ext4MountError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "not a usable ext4 filesystem: {}", self.0)
    }
}

/// What every node of one mount shares.
struct Shared {
    volume: rosv_sync::Mutex<Volume>,
    clock: OperationClock,
    /// The live node of each inode, with the serial number that tells a
    /// node from a later one of the same inode.
    nodes: spin::Mutex<BTreeMap<u32, (u64, Weak<Ext4Node>)>>,
    next_serial: core::sync::atomic::AtomicU64,
    is_read_only: bool,
}

impl Shared {
    /// Locks the engine for an operation at `now_ns`.
    fn lock(&self, now_ns: u64) -> rosv_sync::MutexGuard<'_, Volume> {
        let volume = self.volume.lock();
        self.clock.set(now_ns);
        volume
    }

    /// Whether a node of `inode` is alive.
    fn has_live_node(&self, inode: u32) -> bool {
        self.nodes.lock().get(&inode).is_some_and(|(_, node)| node.strong_count() > 0)
    }

    /// Frees `inode`, whose last link went, unless someone still uses it:
    /// then its node frees it when it goes.
    fn release_if_unused(&self, volume: &mut Volume, inode: InodeNumber) -> Result<(), FsError> {
        if self.has_live_node(inode.raw()) {
            return Ok(());
        }
        volume.reap_unlinked_inode(inode).map_err(error)
    }
}

/// A mounted ext4 filesystem.
pub struct Ext4FileSystem {
    shared: Arc<Shared>,
    root: Arc<Ext4Node>,
}

impl fmt::Debug for Ext4FileSystem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Ext4FileSystem").field("is_read_only", &self.shared.is_read_only).finish()
    }
}

impl Ext4FileSystem {
    /// Mounts the filesystem on `device` at wall-clock time `now_ns`,
    /// replaying its journal; read-only when the disk is, and then without
    /// replaying (the host's `e2fsck` does that).
    pub fn mount(device: Arc<dyn BlockDevice>, now_ns: u64) -> Result<Arc<Ext4FileSystem>, Ext4MountError> {
        let is_read_only = device.is_read_only();
        let clock = OperationClock::default();
        clock.set(now_ns);
        let services = MountServices::new(clock.clone(), Entropy::new(now_ns), NoopObserver);
        let options = if is_read_only {
            MountOptions::read_only_no_journal_replay()
        } else {
            MountOptions::read_write()
        };
        let mut volume = Ext4::mount(Disk::new(device), services, options)
            .map_err(|failure| Ext4MountError(failure.kind()))?;
        let root_number = volume.root_inode();
        let root_information = volume.inode(root_number).map_err(|failure| Ext4MountError(failure.kind()))?;
        if !root_information.is_directory() {
            return Err(Ext4MountError(Ext4ErrorKind::Corrupted));
        }
        let shared = Arc::new(Shared {
            volume: rosv_sync::Mutex::new(volume),
            clock,
            nodes: spin::Mutex::new(BTreeMap::new()),
            next_serial: core::sync::atomic::AtomicU64::new(1),
            is_read_only,
        });
        let root = Ext4Node::get(&shared, root_number, root_information.mode);
        Ok(Arc::new(Ext4FileSystem { shared, root }))
    }

    /// Writes everything out and marks the filesystem clean; changes after
    /// this fail.
    pub fn unmount(&self, now_ns: u64) -> Result<(), FsError> {
        if self.shared.is_read_only {
            return Ok(());
        }
        self.shared.lock(now_ns).unmount().map_err(error)
    }
}

impl FileSystem for Ext4FileSystem {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "ext4"
    }

    fn is_storage_backed(&self) -> bool {
        true
    }

    fn is_read_only(&self) -> bool {
        self.shared.is_read_only
    }

    fn statistics(&self) -> Statistics {
        let statistics = self.shared.volume.lock().statfs();
        Statistics {
            magic: MAGIC,
            block_size_bytes: statistics.block_size,
            blocks: statistics.total_blocks,
            free_blocks: statistics.free_blocks,
            files: u64::from(statistics.total_inodes),
            free_files: u64::from(statistics.free_inodes),
        }
    }

    fn sync(&self) -> Result<(), FsError> {
        if self.shared.is_read_only {
            return Ok(());
        }
        self.shared.volume.lock().sync().map_err(error)
    }

    fn unmount(&self, now_ns: u64) -> Result<(), FsError> {
        Ext4FileSystem::unmount(self, now_ns)
    }
}

/// The VFS error for an engine error: damage is `EUCLEAN` (Linux's
/// `EFSCORRUPTED`), a failed disk `EIO`.
fn error(error: rsext4::Ext4Error) -> FsError {
    match error.kind() {
        Ext4ErrorKind::NotFound => FsError::NotFound,
        Ext4ErrorKind::AlreadyExists => FsError::Exists,
        Ext4ErrorKind::NotDirectory => FsError::NotDirectory,
        Ext4ErrorKind::IsDirectory => FsError::IsDirectory,
        Ext4ErrorKind::NotEmpty => FsError::NotEmpty,
        Ext4ErrorKind::ReadOnly => FsError::ReadOnly,
        Ext4ErrorKind::NoSpace => FsError::NoSpace,
        Ext4ErrorKind::NoMemory => FsError::Errno(Errno::ENOMEM),
        Ext4ErrorKind::QuotaExceeded => FsError::Errno(Errno::EDQUOT),
        Ext4ErrorKind::TooManyLinks => FsError::Errno(Errno::EMLINK),
        Ext4ErrorKind::PermissionDenied => FsError::NotPermitted,
        Ext4ErrorKind::Busy => FsError::Busy,
        Ext4ErrorKind::BadFileDescriptor => FsError::BadDescriptor,
        Ext4ErrorKind::InvalidInput => FsError::InvalidArgument,
        Ext4ErrorKind::FileTooLarge | Ext4ErrorKind::Overflow => FsError::TooLarge,
        Ext4ErrorKind::Unsupported
        | Ext4ErrorKind::UnsupportedFeature
        | Ext4ErrorKind::UnsupportedCapability => FsError::NotSupported,
        Ext4ErrorKind::Corrupted
        | Ext4ErrorKind::ChecksumMismatch
        | Ext4ErrorKind::BadSuperblock
        | Ext4ErrorKind::InvalidMagic => FsError::Errno(Errno::EUCLEAN),
        Ext4ErrorKind::Io | Ext4ErrorKind::JournalAborted | Ext4ErrorKind::Timeout => FsError::Io,
    }
}

#[cfg(test)]
mod tests;
