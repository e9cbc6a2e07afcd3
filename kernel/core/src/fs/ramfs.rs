//! ramfs: a read-write filesystem in memory (the root without an image,
//! `/tmp`, `/dev/shm`).
//!
//! Directories keep their entries in insertion order under a sequence
//! number, which is also the entry's `readdir` offset: offsets stay valid
//! while other entries come and go. Changes to the tree (create, remove,
//! rename, link) hold the filesystem's namespace lock, so they may lock
//! several directories in any order; lookups lock one directory at a time.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::sync::atomic::AtomicU64;

use spin::Mutex;

use crate::vfs::{FileSystem, FsError, Node, Statistics};

/// `RAMFS_MAGIC`.
const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// `TMPFS_MAGIC`: what `statfs` reports for a tmpfs, which rosv keeps as a
/// ramfs under another name (both hold their files in RAM).
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// What `statfs` reports as the inode count: ramfs has no limit on files.
const REPORTED_FILES: u64 = 1 << 20;

struct Shared {
    namespace: Mutex<()>,
    next_inode: AtomicU64,
}

/// A ramfs instance.
pub struct RamFs {
    root: Arc<RamNode>,
    /// `"ramfs"` or `"tmpfs"`, with the matching `statfs` magic.
    type_name: &'static str,
    magic: u64,
}

impl core::fmt::Debug for RamFs {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("RamFs")
    }
}

impl RamFs {
    /// An empty filesystem whose root has `permissions` (`0o755`, or
    /// `0o1777` for `/tmp`).
    pub fn new(permissions: u32) -> Arc<RamFs> {
        Self::named(permissions, "ramfs", RAMFS_MAGIC)
    }

    /// An empty filesystem that calls itself tmpfs (in `statfs` and the
    /// mount table), as `/tmp`, `/run` and `/dev/shm` are on Linux.
    pub fn tmpfs(permissions: u32) -> Arc<RamFs> {
        Self::named(permissions, "tmpfs", TMPFS_MAGIC)
    }

    fn named(permissions: u32, type_name: &'static str, magic: u64) -> Arc<RamFs> {
        let shared = Arc::new(Shared { namespace: Mutex::new(()), next_inode: AtomicU64::new(2) });
        let root = RamNode::new(&shared, 1, Content::directory(Weak::new()), permissions, 0);
        Arc::new(RamFs { root, type_name, magic })
    }
}

impl FileSystem for RamFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Its size is the RAM applications may use: files take their pages
    /// from it.
    fn statistics(&self) -> Statistics {
        let memory = crate::pages::figures();
        Statistics {
            magic: self.magic,
            block_size_bytes: 4096,
            blocks: memory.total_bytes / 4096,
            free_blocks: memory.available_bytes() / 4096,
            files: REPORTED_FILES,
            free_files: REPORTED_FILES,
        }
    }
}

struct Directory {
    entries: BTreeMap<u64, (String, Arc<RamNode>)>,
    index: BTreeMap<String, u64>,
    next_offset: u64,
    parent: Weak<RamNode>,
}

impl Directory {
    fn get(&self, name: &str) -> Option<&Arc<RamNode>> {
        self.index.get(name).and_then(|offset| self.entries.get(offset)).map(|(_, node)| node)
    }

    fn insert(&mut self, name: &str, node: Arc<RamNode>) {
        let offset = self.next_offset;
        self.next_offset += 1;
        self.entries.insert(offset, (String::from(name), node));
        self.index.insert(String::from(name), offset);
    }

    fn take(&mut self, name: &str) -> Option<Arc<RamNode>> {
        let offset = self.index.remove(name)?;
        self.entries.remove(&offset).map(|(_, node)| node)
    }

    /// Replaces the node under an existing `name`, keeping its offset.
    fn swap(&mut self, name: &str, node: Arc<RamNode>) -> Option<Arc<RamNode>> {
        let offset = *self.index.get(name)?;
        self.entries.get_mut(&offset).map(|entry| core::mem::replace(&mut entry.1, node))
    }
}

enum Content {
    File(Mutex<FileData>),
    Directory(Mutex<Directory>),
    Symlink(String),
    /// A socket node: a name local sockets bind to, without data.
    Socket,
    /// A named pipe and its buffer.
    Fifo(Arc<crate::vfs::Pipe>),
    /// A device node: the kind and the device number it names.
    Device(crate::vfs::FileType, u64),
}

impl Content {
    fn directory(parent: Weak<RamNode>) -> Self {
        Content::Directory(Mutex::new(Directory {
            entries: BTreeMap::new(),
            index: BTreeMap::new(),
            next_offset: 0,
            parent,
        }))
    }
}

struct Attributes {
    permissions: u32,
    owner_user: u32,
    owner_group: u32,
    link_count: u64,
    access_time_ns: u64,
    modify_time_ns: u64,
    change_time_ns: u64,
}

/// A file, directory or symlink of a ramfs.
struct RamNode {
    inode: u64,
    shared: Arc<Shared>,
    this: Weak<RamNode>,
    attributes: Mutex<Attributes>,
    content: Content,
    /// `F_SEAL_*` bits: a file starts sealed against seals unless
    /// `memfd_create` allowed sealing.
    seals: core::sync::atomic::AtomicU32,
    /// A file made without a name (`O_TMPFILE`) that `link` may still
    /// name, although it has no links.
    is_linkable: core::sync::atomic::AtomicBool,
    /// Extended attributes, by full name.
    extended: Mutex<alloc::collections::BTreeMap<String, alloc::vec::Vec<u8>>>,
}

/// `F_SEAL_*` bits.
pub mod seal {
    /// No more seals may be added.
    pub const SEAL: u32 = 0x1;
    /// The file may not shrink.
    pub const SHRINK: u32 = 0x2;
    /// The file may not grow.
    pub const GROW: u32 = 0x4;
    /// The contents may not change.
    pub const WRITE: u32 = 0x8;
    /// No new writable mapping or write, existing mappings go on.
    pub const FUTURE_WRITE: u32 = 0x10;
    /// Every seal.
    pub const ALL: u32 = SEAL | SHRINK | GROW | WRITE | FUTURE_WRITE;
}

/// Lets seals be added to `node`, a ramfs file (`MFD_ALLOW_SEALING`);
/// `false` for any other node.
pub fn allow_sealing(node: &dyn Node) -> bool {
    match node.as_any().downcast_ref::<RamNode>() {
        Some(file) if matches!(file.content, Content::File(_)) => {
            file.seals.fetch_and(!seal::SEAL, core::sync::atomic::Ordering::Relaxed);
            true
        }
        _ => false,
    }
}

impl RamNode {
    fn new(
        shared: &Arc<Shared>,
        inode: u64,
        content: Content,
        permissions: u32,
        now_ns: u64,
    ) -> Arc<RamNode> {
        let link_count = if matches!(content, Content::Directory(_)) { 2 } else { 1 };
        Arc::new_cyclic(|this| RamNode {
            inode,
            shared: shared.clone(),
            this: this.clone(),
            attributes: Mutex::new(Attributes {
                permissions: permissions & 0o7777,
                owner_user: 0,
                owner_group: 0,
                link_count,
                access_time_ns: now_ns,
                modify_time_ns: now_ns,
                change_time_ns: now_ns,
            }),
            content,
            seals: core::sync::atomic::AtomicU32::new(seal::SEAL),
            is_linkable: core::sync::atomic::AtomicBool::new(false),
            extended: Mutex::new(alloc::collections::BTreeMap::new()),
        })
    }

    fn directory(&self) -> Result<&Mutex<Directory>, FsError> {
        match &self.content {
            Content::Directory(directory) => Ok(directory),
            _ => Err(FsError::NotDirectory),
        }
    }

    fn file(&self) -> Result<&Mutex<FileData>, FsError> {
        match &self.content {
            Content::File(bytes) => Ok(bytes),
            Content::Directory(_) => Err(FsError::IsDirectory),
            Content::Symlink(_) | Content::Socket | Content::Fifo(_) | Content::Device(..) => {
                Err(FsError::InvalidArgument)
            }
        }
    }

    /// Refuses a write of `length` bytes at `offset` to a file of
    /// `size_bytes` that its seals forbid.
    fn check_write_seals(&self, size_bytes: u64, offset: u64, length: usize) -> Result<(), FsError> {
        let seals = self.seals.load(core::sync::atomic::Ordering::Relaxed);
        let grows = offset.saturating_add(length as u64) > size_bytes;
        if length > 0
            && (seals & (seal::WRITE | seal::FUTURE_WRITE) != 0 || (grows && seals & seal::GROW != 0))
        {
            return Err(FsError::NotPermitted);
        }
        Ok(())
    }

    fn is_directory(&self) -> bool {
        matches!(self.content, Content::Directory(_))
    }

    fn adjust_links(&self, change: i64, now_ns: u64) {
        let mut attributes = self.attributes.lock();
        attributes.link_count = attributes.link_count.saturating_add_signed(change);
        attributes.change_time_ns = now_ns;
    }

    fn touch(&self, now_ns: u64) {
        let mut attributes = self.attributes.lock();
        attributes.modify_time_ns = now_ns;
        attributes.change_time_ns = now_ns;
    }

    fn is_empty_directory(&self) -> bool {
        self.directory().is_ok_and(|directory| directory.lock().entries.is_empty())
    }

    fn set_parent(&self, parent: &RamNode) {
        if let Ok(directory) = self.directory() {
            directory.lock().parent = parent.this.clone();
        }
    }
}

mod data;
mod node;

use data::FileData;

#[cfg(test)]
mod tests;
