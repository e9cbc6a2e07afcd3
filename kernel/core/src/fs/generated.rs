//! Trees of generated files: the shape of `/sys`, `/sys/fs/cgroup` and
//! `/proc/sys`.
//!
//! A tree is described statically ([`Entry`]): directories with fixed
//! entries, and files whose text a function makes from the [`Caller`]
//! when the file is opened (the text is then read from that snapshot, as
//! procfs does), and settings, which root may also write ([`Setter`]).
//! [`tree`] turns a description into nodes with inode numbers from a
//! given start. [`GeneratedFs`] mounts one.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use crate::vfs::{Caller, DirectoryEntry, FileSystem, FileType, FsError, Metadata, Node, Statistics};

/// What a file's text is made from.
pub type Generator = fn(&Caller<'_>) -> String;

/// What a write to a setting does with the text written: applies it, or
/// says why not (`InvalidArgument` for text that is no valid value).
pub type Setter = fn(&Caller<'_>, &str) -> Result<(), FsError>;

/// A directory whose entries change while the machine runs (the block
/// devices of `/sys/block`) or depend on the machine (its processors):
/// listed and looked up when asked.
pub trait Listing: Sync {
    /// The names it holds now.
    fn names(&self, caller: &Caller<'_>) -> Vec<String>;

    /// The entry `name`, whose `..` is `parent`.
    fn lookup(
        &self,
        caller: &Caller<'_>,
        name: &str,
        parent: Arc<dyn Node>,
    ) -> Result<Arc<dyn Node>, FsError>;
}

/// One entry of a tree's description.
#[derive(Clone, Copy)]
pub enum Entry {
    /// A directory and its entries.
    Directory(&'static [(&'static str, Entry)]),
    /// A read-only file.
    File(Generator),
    /// A file that root may also write (mode 0644).
    Setting(Generator, Setter),
    /// A directory of changing entries.
    Listing(&'static dyn Listing),
}

impl core::fmt::Debug for Entry {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(match self {
            Entry::Directory(_) => "Directory",
            Entry::File(_) => "File",
            Entry::Setting(..) => "Setting",
            Entry::Listing(_) => "Listing",
        })
    }
}

/// A node of a generated tree.
pub struct GeneratedNode {
    inode: u64,
    entry: Entry,
    children: Vec<(&'static str, Arc<GeneratedNode>)>,
    parent: spin::Mutex<Option<Weak<dyn Node>>>,
    /// The node itself, which a listing's entries name as their parent.
    this: spin::Mutex<Option<Weak<dyn Node>>>,
}

impl core::fmt::Debug for GeneratedNode {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("GeneratedNode").field("inode", &self.inode).finish()
    }
}

/// The nodes of `entry`, numbered from `first_inode` in pre-order.
pub fn tree(entry: Entry, first_inode: u64) -> Arc<GeneratedNode> {
    let mut next = first_inode;
    build(entry, &mut next)
}

fn build(entry: Entry, next: &mut u64) -> Arc<GeneratedNode> {
    let inode = *next;
    *next += 1;
    let children = match entry {
        Entry::Directory(entries) => {
            entries.iter().map(|(name, child)| (*name, build(*child, next))).collect()
        }
        Entry::File(_) | Entry::Setting(..) | Entry::Listing(_) => Vec::new(),
    };
    let node = Arc::new(GeneratedNode {
        inode,
        entry,
        children,
        parent: spin::Mutex::new(None),
        this: spin::Mutex::new(None),
    });
    let as_node: Arc<dyn Node> = node.clone();
    *node.this.lock() = Some(Arc::downgrade(&as_node));
    for (_, child) in &node.children {
        *child.parent.lock() = Some(Arc::downgrade(&as_node));
    }
    node
}

impl GeneratedNode {
    /// Makes `parent` the parent of this tree's root (a subtree of another
    /// filesystem, such as `/proc/sys`).
    pub fn set_parent(&self, parent: Weak<dyn Node>) {
        *self.parent.lock() = Some(parent);
    }
}

impl Node for GeneratedNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        match self.entry {
            Entry::Directory(_) | Entry::Listing(_) => FileType::Directory,
            Entry::File(_) | Entry::Setting(..) => FileType::Regular,
        }
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let permissions = match self.entry {
            Entry::Directory(_) | Entry::Listing(_) => 0o555,
            Entry::File(_) => 0o444,
            Entry::Setting(..) => 0o644,
        };
        let mut metadata = Metadata::new(self.inode, self.file_type(), permissions);
        if self.file_type() == FileType::Directory {
            metadata.link_count =
                2 + self.children.iter().filter(|(_, child)| child.children_count().is_some()).count() as u64;
        }
        let boot_ns = caller.machine.realtime_ns().saturating_sub(caller.machine.monotonic_ns());
        (metadata.access_time_ns, metadata.modify_time_ns, metadata.change_time_ns) =
            (boot_ns, boot_ns, boot_ns);
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        if self.file_type() != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
        if let Entry::Listing(listing) = self.entry {
            let this: Arc<dyn Node> =
                self.this.lock().as_ref().and_then(Weak::upgrade).ok_or(FsError::NotFound)?;
            return listing.lookup(caller, name, this);
        }
        let (_, child) = self.children.iter().find(|(entry, _)| *entry == name).ok_or(FsError::NotFound)?;
        Ok(child.clone())
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        self.parent.lock().as_ref().and_then(Weak::upgrade)
    }

    fn read_directory(&self, caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        if self.file_type() != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
        if let Entry::Listing(listing) = self.entry {
            let Some(name) = listing.names(caller).into_iter().nth(offset as usize) else {
                return Ok(None);
            };
            let node = self.lookup(caller, &name)?;
            return Ok(Some(DirectoryEntry {
                name,
                inode: node.inode(),
                file_type: node.file_type(),
                next_offset: offset + 1,
            }));
        }
        Ok(self.children.get(offset as usize).map(|(name, child)| DirectoryEntry {
            name: String::from(*name),
            inode: child.inode,
            file_type: child.file_type(),
            next_offset: offset + 1,
        }))
    }

    fn read_at(&self, _caller: &Caller<'_>, _offset: u64, _buffer: &mut [u8]) -> Result<usize, FsError> {
        // Reads go to the snapshot `open` made.
        Err(if self.file_type() == FileType::Directory {
            FsError::IsDirectory
        } else {
            FsError::InvalidArgument
        })
    }

    fn prepare_for_write(&self, _caller: &Caller<'_>, _is_truncating: bool) -> Result<(), FsError> {
        // Linux checks a setting's mode even for root: a read-only one
        // refuses every writer.
        match self.entry {
            Entry::Setting(..) => Ok(()),
            Entry::Directory(_) | Entry::File(_) | Entry::Listing(_) => Err(FsError::AccessDenied),
        }
    }

    fn open(&self, caller: &Caller<'_>) -> Result<Option<Arc<dyn Node>>, FsError> {
        match self.entry {
            Entry::Directory(_) | Entry::Listing(_) => Ok(None),
            Entry::File(generate) => {
                Ok(Some(Arc::new(Snapshot { inode: self.inode, bytes: generate(caller).into_bytes() })))
            }
            Entry::Setting(generate, set) => {
                let bytes = generate(caller).into_bytes();
                Ok(Some(Arc::new(SettingFile { text: Snapshot { inode: self.inode, bytes }, set })))
            }
        }
    }
}

impl GeneratedNode {
    fn children_count(&self) -> Option<usize> {
        matches!(self.entry, Entry::Directory(_) | Entry::Listing(_)).then_some(self.children.len())
    }
}

/// The text of a generated file as it was when opened.
#[derive(Debug)]
pub struct Snapshot {
    /// The file's inode number.
    pub inode: u64,
    /// The text.
    pub bytes: Vec<u8>,
}

impl Node for Snapshot {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        // Linux reports these files as empty; readers read to the end.
        Ok(Metadata::new(self.inode, FileType::Regular, 0o444))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        let length = buffer.len().min(self.bytes.len() - start);
        buffer[..length].copy_from_slice(&self.bytes[start..start + length]);
        Ok(length)
    }
}

/// A mountable generated tree.
pub struct GeneratedFs {
    root: Arc<GeneratedNode>,
    type_name: &'static str,
    magic: u64,
}

impl core::fmt::Debug for GeneratedFs {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("GeneratedFs").field("type_name", &self.type_name).finish()
    }
}

impl GeneratedFs {
    /// A filesystem of type `type_name` (with `statfs` magic `magic`) whose
    /// tree `root` describes.
    pub fn new(root: Entry, type_name: &'static str, magic: u64) -> Arc<GeneratedFs> {
        Arc::new(GeneratedFs { root: tree(root, 1), type_name, magic })
    }
}

impl FileSystem for GeneratedFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn statistics(&self) -> Statistics {
        Statistics { magic: self.magic, block_size_bytes: 4096, ..Statistics::default() }
    }
}

/// A setting as it was when opened: reads give that text, a write at the
/// start applies the text written (Linux's strict sysctl writes: what is
/// written further on is ignored).
struct SettingFile {
    text: Snapshot,
    set: Setter,
}

impl core::fmt::Debug for SettingFile {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("SettingFile").field("inode", &self.text.inode).finish()
    }
}

impl Node for SettingFile {
    fn inode(&self) -> u64 {
        self.text.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        Ok(Metadata::new(self.text.inode, FileType::Regular, 0o644))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        self.text.read_at(caller, offset, buffer)
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        if offset == 0 {
            let text = core::str::from_utf8(bytes).map_err(|_| FsError::InvalidArgument)?;
            (self.set)(caller, text)?;
        }
        Ok(bytes.len())
    }

    fn truncate(&self, _caller: &Caller<'_>, _size_bytes: u64) -> Result<(), FsError> {
        Ok(())
    }
}
