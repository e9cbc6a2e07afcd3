//! ROFS over a disk, read-only: OSv's image format through
//! [`rosv_rofs::Rofs`], with its disk behind a small block cache
//! ([`cache`]).

pub mod cache;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;

use rosv_rofs::{Rofs, RofsError};

use self::cache::CachedDisk;
use crate::device::BlockDevice;
use crate::pages::cache::{CacheError, PageCache};
use crate::vfs::{
    Caller, DirectoryEntry, FileSystem, FileType, FsError, LinkTarget, Metadata, Node, Statistics,
};

/// What `statfs` reports as the type: ROFS's own magic number.
const MAGIC: u64 = rosv_abi::rofs::MAGIC;

struct Shared {
    rofs: Rofs<CachedDisk>,
    /// The parent of each directory, by inode number minus one.
    parents: Vec<u64>,
    /// Pages of files that were mapped.
    pages: Arc<PageCache>,
}

/// A mounted ROFS image.
pub struct RofsFileSystem {
    shared: Arc<Shared>,
    root: Arc<RofsNode>,
}

impl core::fmt::Debug for RofsFileSystem {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("RofsFileSystem")
    }
}

fn file_type(file_type: rosv_rofs::FileType) -> FileType {
    match file_type {
        rosv_rofs::FileType::Regular => FileType::Regular,
        rosv_rofs::FileType::Directory => FileType::Directory,
        rosv_rofs::FileType::Symlink => FileType::Symlink,
    }
}

fn error(error: RofsError) -> FsError {
    match error {
        RofsError::NotFound => FsError::NotFound,
        RofsError::NotDirectory => FsError::NotDirectory,
        RofsError::WrongType => FsError::InvalidArgument,
        RofsError::TooManySymlinks => FsError::TooManyLinks,
        _ => FsError::Io,
    }
}

impl RofsFileSystem {
    /// Reads and checks the image on `disk`.
    pub fn mount(disk: Arc<dyn BlockDevice>) -> Result<Arc<RofsFileSystem>, RofsError> {
        let rofs = Rofs::mount(CachedDisk::new(disk))?;
        let mut parents = Vec::new();
        let mut directories = vec![rofs.root()];
        while let Some(directory) = directories.pop() {
            for entry in rofs.read_dir(directory)? {
                if rofs.metadata(entry.inode)?.file_type != rosv_rofs::FileType::Directory {
                    continue;
                }
                let slot = (entry.inode - 1) as usize;
                if slot >= parents.len() {
                    parents.resize(slot + 1, 0);
                }
                // A directory listed twice keeps its first parent; one
                // listed in its own subtree is not walked again.
                if parents[slot] == 0 && entry.inode != rofs.root() {
                    parents[slot] = directory;
                    directories.push(entry.inode);
                }
            }
        }
        let shared = Arc::new(Shared { rofs, parents, pages: PageCache::new() });
        let root = RofsNode::new(&shared, shared.rofs.root()).map_err(|_| RofsError::Corrupt(0))?;
        Ok(Arc::new(RofsFileSystem { shared, root }))
    }

    /// The disk and its cache.
    pub fn disk(&self) -> &CachedDisk {
        self.shared.rofs.source()
    }
}

impl FileSystem for RofsFileSystem {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "rofs"
    }

    fn is_storage_backed(&self) -> bool {
        true
    }

    fn is_read_only(&self) -> bool {
        true
    }

    fn statistics(&self) -> Statistics {
        let blocks = rosv_rofs::BlockSource::size(self.disk()) / 512;
        Statistics { magic: MAGIC, block_size_bytes: 512, blocks, ..Statistics::default() }
    }
}

/// A file, directory or symlink of a ROFS image.
struct RofsNode {
    shared: Arc<Shared>,
    inode: u64,
    metadata: rosv_rofs::Metadata,
}

impl RofsNode {
    fn new(shared: &Arc<Shared>, inode: u64) -> Result<Arc<RofsNode>, FsError> {
        let metadata = shared.rofs.metadata(inode).map_err(error)?;
        Ok(Arc::new(RofsNode { shared: shared.clone(), inode, metadata }))
    }
}

impl Node for RofsNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        file_type(self.metadata.file_type)
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        // Images written without permission bits get the usual ones.
        let permissions = match (self.metadata.permissions, self.file_type()) {
            (0, FileType::Symlink) => 0o777,
            (0, _) => 0o755,
            (permissions, _) => permissions,
        };
        let mut metadata = Metadata::new(self.inode, self.file_type(), permissions);
        metadata.size_bytes = self.metadata.size;
        metadata.link_count = self.metadata.link_count;
        // What a filesystem of 4 KiB blocks (ext4) reports, so `du` agrees
        // with the host's; a directory takes one block.
        metadata.blocks = match self.file_type() {
            FileType::Directory => 8,
            FileType::Symlink => 0,
            _ => self.metadata.size.div_ceil(4096) * 8,
        };
        if self.file_type() == FileType::Directory {
            metadata.size_bytes = 4096;
        }
        // Images without rosv's times (OSv's) show the epoch, as before.
        let time_ns = self.metadata.modify_time.map_or(0, |times| {
            u64::try_from(times.modify_seconds).map_or(0, |seconds| {
                seconds.saturating_mul(1_000_000_000).saturating_add(u64::from(times.modify_nanoseconds))
            })
        });
        (metadata.access_time_ns, metadata.modify_time_ns, metadata.change_time_ns) =
            (time_ns, time_ns, time_ns);
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        let inode = self.shared.rofs.lookup(self.inode, name).map_err(error)?;
        let node = RofsNode::new(&self.shared, inode)?;
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        let parent = *self.shared.parents.get((self.inode - 1) as usize)?;
        if parent == 0 {
            return None;
        }
        let node = RofsNode::new(&self.shared, parent).ok()?;
        Some(node)
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let Some(entry) = self.shared.rofs.directory_entry(self.inode, offset).map_err(error)? else {
            return Ok(None);
        };
        let metadata = self.shared.rofs.metadata(entry.inode).map_err(error)?;
        Ok(Some(DirectoryEntry {
            name: String::from(entry.name),
            inode: entry.inode,
            file_type: file_type(metadata.file_type),
            next_offset: offset + 1,
        }))
    }

    fn read_link(&self, _caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        let target = self.shared.rofs.read_link(self.inode).map_err(error)?;
        Ok(LinkTarget::Path(String::from(target)))
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        match self.file_type() {
            FileType::Directory => Err(FsError::IsDirectory),
            _ => self.shared.rofs.read(self.inode, offset, buffer).map_err(error),
        }
    }

    fn write_at(&self, _caller: &Caller<'_>, _offset: u64, _bytes: &[u8]) -> Result<usize, FsError> {
        Err(FsError::ReadOnly)
    }

    fn is_mappable(&self) -> bool {
        self.file_type() == FileType::Regular
    }

    fn is_page_cached(&self, index: u64) -> bool {
        self.shared.pages.contains(self.inode, index)
    }

    fn page(&self, _caller: &Caller<'_>, index: u64) -> Result<Option<crate::pages::Page>, FsError> {
        if self.file_type() != FileType::Regular {
            return Err(FsError::NotSupported);
        }
        let offset = index.checked_mul(crate::pages::PAGE_SIZE as u64).ok_or(FsError::InvalidArgument)?;
        if offset >= self.metadata.size {
            return Ok(None);
        }
        let page = self.shared.pages.page(self.inode, index, |bytes| {
            self.shared.rofs.read(self.inode, offset, bytes).map(|_| ()).map_err(error)
        });
        match page {
            Ok(page) => Ok(Some(page)),
            Err(CacheError::Fill(error)) => Err(error),
            Err(CacheError::OutOfMemory) => Err(FsError::Errno(crate::errno::Errno::ENOMEM)),
        }
    }

    fn truncate(&self, _caller: &Caller<'_>, _size_bytes: u64) -> Result<(), FsError> {
        Err(FsError::ReadOnly)
    }
}

#[cfg(test)]
mod tests;
