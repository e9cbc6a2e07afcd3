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
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileSystem, FileType, FsError, LinkTarget, Metadata, NewNode,
    Node, RenameMode, Statistics,
};

/// `RAMFS_MAGIC`.
const MAGIC: u64 = 0x8584_58f6;
/// The largest file (Linux's `MAX_LFS_FILESIZE`).
const FILE_SIZE_MAX: u64 = i64::MAX as u64;
/// What `statfs` reports as the size: ramfs has no limit but memory, which
/// it does not know; programs that check for room find 4 GiB free.
const REPORTED_BLOCKS: u64 = 1 << 20;

struct Shared {
    namespace: Mutex<()>,
    next_inode: AtomicU64,
}

/// A ramfs instance.
pub struct RamFs {
    root: Arc<RamNode>,
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
        let shared = Arc::new(Shared { namespace: Mutex::new(()), next_inode: AtomicU64::new(2) });
        let root = RamNode::new(&shared, 1, Content::directory(Weak::new()), permissions, 0);
        Arc::new(RamFs { root })
    }
}

impl FileSystem for RamFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "ramfs"
    }

    fn statistics(&self) -> Statistics {
        Statistics {
            magic: MAGIC,
            block_size_bytes: 4096,
            blocks: REPORTED_BLOCKS,
            free_blocks: REPORTED_BLOCKS,
            files: REPORTED_BLOCKS,
            free_files: REPORTED_BLOCKS,
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
    File(Mutex<Vec<u8>>),
    Directory(Mutex<Directory>),
    Symlink(String),
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
                link_count,
                access_time_ns: now_ns,
                modify_time_ns: now_ns,
                change_time_ns: now_ns,
            }),
            content,
        })
    }

    fn directory(&self) -> Result<&Mutex<Directory>, FsError> {
        match &self.content {
            Content::Directory(directory) => Ok(directory),
            _ => Err(FsError::NotDirectory),
        }
    }

    fn file(&self) -> Result<&Mutex<Vec<u8>>, FsError> {
        match &self.content {
            Content::File(bytes) => Ok(bytes),
            Content::Directory(_) => Err(FsError::IsDirectory),
            Content::Symlink(_) => Err(FsError::InvalidArgument),
        }
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

    /// Writes `bytes` at `offset` of `contents`, growing it.
    fn store(contents: &mut Vec<u8>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let end = offset
            .checked_add(bytes.len() as u64)
            .filter(|end| *end <= FILE_SIZE_MAX)
            .ok_or(FsError::TooLarge)?;
        let (start, end) = (offset as usize, end as usize);
        let current = contents.len();
        if end > current {
            contents.try_reserve(end - current).map_err(|_| FsError::NoSpace)?;
            contents.resize(end, 0);
        }
        contents[start..end].copy_from_slice(bytes);
        Ok(bytes.len())
    }
}

/// The ramfs node behind `node`, which must belong to the same instance.
fn same_filesystem<'a>(this: &RamNode, node: &'a dyn Node) -> Result<&'a RamNode, FsError> {
    node.as_any()
        .downcast_ref::<RamNode>()
        .filter(|other| Arc::ptr_eq(&other.shared, &this.shared))
        .ok_or(FsError::CrossDevice)
}

impl Node for RamNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        match self.content {
            Content::File(_) => FileType::Regular,
            Content::Directory(_) => FileType::Directory,
            Content::Symlink(_) => FileType::Symlink,
        }
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let size_bytes = match &self.content {
            Content::File(bytes) => bytes.lock().len() as u64,
            Content::Directory(directory) => (directory.lock().entries.len() as u64 + 2) * 32,
            Content::Symlink(target) => target.len() as u64,
        };
        let attributes = self.attributes.lock();
        let mut metadata = Metadata::new(self.inode, self.file_type(), attributes.permissions);
        metadata.link_count = attributes.link_count;
        metadata.size_bytes = size_bytes;
        metadata.blocks = size_bytes.div_ceil(4096) * 8;
        metadata.access_time_ns = attributes.access_time_ns;
        metadata.modify_time_ns = attributes.modify_time_ns;
        metadata.change_time_ns = attributes.change_time_ns;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        let node = self.directory()?.lock().get(name).cloned().ok_or(FsError::NotFound)?;
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        let parent = self.directory().ok()?.lock().parent.upgrade()?;
        Some(parent)
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let directory = self.directory()?.lock();
        Ok(directory.entries.range(offset..).next().map(|(offset, (name, node))| DirectoryEntry {
            name: name.clone(),
            inode: node.inode,
            file_type: node.file_type(),
            next_offset: offset + 1,
        }))
    }

    fn create(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        let _namespace = self.shared.namespace.lock();
        let directory = self.directory()?;
        if directory.lock().get(name).is_some() {
            return Err(FsError::Exists);
        }
        let now_ns = caller.now_ns();
        let content = match kind {
            NewNode::File => Content::File(Mutex::new(Vec::new())),
            NewNode::Directory => Content::directory(self.this.clone()),
            NewNode::Symlink(target) => Content::Symlink(String::from(target)),
        };
        let inode = self.shared.next_inode.fetch_add(1, Ordering::Relaxed);
        let node = RamNode::new(&self.shared, inode, content, permissions, now_ns);
        if kind == NewNode::Directory {
            self.adjust_links(1, now_ns);
        }
        directory.lock().insert(name, node.clone());
        self.touch(now_ns);
        Ok(node)
    }

    fn remove(&self, caller: &Caller<'_>, name: &str, is_directory: bool) -> Result<(), FsError> {
        let _namespace = self.shared.namespace.lock();
        let mut directory = self.directory()?.lock();
        let child = directory.get(name).ok_or(FsError::NotFound)?;
        match (is_directory, child.is_directory()) {
            (true, false) => return Err(FsError::NotDirectory),
            (false, true) => return Err(FsError::IsDirectory),
            (true, true) if !child.is_empty_directory() => return Err(FsError::NotEmpty),
            _ => {}
        }
        let now_ns = caller.now_ns();
        let child = directory.take(name).ok_or(FsError::NotFound)?;
        drop(directory);
        if is_directory {
            child.adjust_links(-2, now_ns);
            self.adjust_links(-1, now_ns);
        } else {
            child.adjust_links(-1, now_ns);
        }
        self.touch(now_ns);
        Ok(())
    }

    fn rename(
        &self,
        caller: &Caller<'_>,
        name: &str,
        new_parent: &dyn Node,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<(), FsError> {
        let new_parent = same_filesystem(self, new_parent)?;
        let _namespace = self.shared.namespace.lock();
        let now_ns = caller.now_ns();
        let is_same_directory = core::ptr::eq(self, new_parent);
        let source = self.directory()?.lock().get(name).cloned().ok_or(FsError::NotFound)?;
        let target = new_parent.directory()?.lock().get(new_name).cloned();
        if let Some(target) = &target {
            if Arc::ptr_eq(target, &source) {
                return Ok(());
            }
            if mode == RenameMode::NoReplace {
                return Err(FsError::Exists);
            }
        }
        if mode == RenameMode::Exchange {
            let target = target.ok_or(FsError::NotFound)?;
            self.directory()?.lock().swap(name, target.clone());
            new_parent.directory()?.lock().swap(new_name, source.clone());
            if !is_same_directory {
                let links = i64::from(source.is_directory()) - i64::from(target.is_directory());
                self.adjust_links(-links, now_ns);
                new_parent.adjust_links(links, now_ns);
                source.set_parent(new_parent);
                target.set_parent(self);
            }
        } else {
            if let Some(target) = &target {
                match (source.is_directory(), target.is_directory()) {
                    (true, false) => return Err(FsError::NotDirectory),
                    (false, true) => return Err(FsError::IsDirectory),
                    (true, true) if !target.is_empty_directory() => return Err(FsError::NotEmpty),
                    _ => {}
                }
                new_parent.directory()?.lock().take(new_name);
                if target.is_directory() {
                    target.adjust_links(-2, now_ns);
                    new_parent.adjust_links(-1, now_ns);
                } else {
                    target.adjust_links(-1, now_ns);
                }
            }
            self.directory()?.lock().take(name);
            new_parent.directory()?.lock().insert(new_name, source.clone());
            if source.is_directory() && !is_same_directory {
                self.adjust_links(-1, now_ns);
                new_parent.adjust_links(1, now_ns);
                source.set_parent(new_parent);
            }
        }
        source.attributes.lock().change_time_ns = now_ns;
        self.touch(now_ns);
        new_parent.touch(now_ns);
        Ok(())
    }

    fn link(&self, caller: &Caller<'_>, name: &str, target: &dyn Node) -> Result<(), FsError> {
        let target = same_filesystem(self, target)?;
        let target = target.this.upgrade().ok_or(FsError::NotFound)?;
        if target.is_directory() {
            return Err(FsError::NotPermitted);
        }
        let _namespace = self.shared.namespace.lock();
        let mut directory = self.directory()?.lock();
        if directory.get(name).is_some() {
            return Err(FsError::Exists);
        }
        if target.attributes.lock().link_count == 0 {
            // An unlinked file cannot get a name back (Linux's ENOENT).
            return Err(FsError::NotFound);
        }
        let now_ns = caller.now_ns();
        directory.insert(name, target.clone());
        drop(directory);
        target.adjust_links(1, now_ns);
        self.touch(now_ns);
        Ok(())
    }

    fn read_link(&self, _caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        match &self.content {
            Content::Symlink(target) => Ok(LinkTarget::Path(target.clone())),
            _ => Err(FsError::InvalidArgument),
        }
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let contents = self.file()?.lock();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(contents.len());
        let length = buffer.len().min(contents.len() - start);
        buffer[..length].copy_from_slice(&contents[start..start + length]);
        Ok(length)
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let written = RamNode::store(&mut self.file()?.lock(), offset, bytes)?;
        self.touch(caller.now_ns());
        Ok(written)
    }

    fn append(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<(usize, u64), FsError> {
        let mut contents = self.file()?.lock();
        let end = contents.len() as u64;
        let written = RamNode::store(&mut contents, end, bytes)?;
        drop(contents);
        self.touch(caller.now_ns());
        Ok((written, end + written as u64))
    }

    fn truncate(&self, caller: &Caller<'_>, size_bytes: u64) -> Result<(), FsError> {
        if size_bytes > FILE_SIZE_MAX {
            return Err(FsError::TooLarge);
        }
        let mut contents = self.file()?.lock();
        let size = size_bytes as usize;
        let current = contents.len();
        if size > current {
            contents.try_reserve(size - current).map_err(|_| FsError::NoSpace)?;
        }
        contents.resize(size, 0);
        drop(contents);
        self.touch(caller.now_ns());
        Ok(())
    }

    fn set_attributes(&self, caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        let mut attributes = self.attributes.lock();
        if let Some(permissions) = changes.permissions {
            attributes.permissions = permissions & 0o7777;
        }
        if let Some(time) = changes.access_time_ns {
            attributes.access_time_ns = time;
        }
        if let Some(time) = changes.modify_time_ns {
            attributes.modify_time_ns = time;
        }
        attributes.change_time_ns = caller.now_ns();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
