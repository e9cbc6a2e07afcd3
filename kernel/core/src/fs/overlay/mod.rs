//! overlay: a writable filesystem (upper, a ramfs) over a read-only one
//! (lower, the image's ROFS), as Linux's overlayfs joins them.
//!
//! A name is looked up in the upper directory first, then in the lower one.
//! Nothing of the lower layer ever changes: the first change to a lower
//! node (its contents, mode, owner, times, extended attributes) copies it
//! up, with its directories, into the upper layer ([`OverlayNode::copy_up`]).
//! Removing a name the lower layer has leaves a whiteout in the upper
//! directory (a character device 0/0, as on Linux), and a directory made
//! where one was removed is opaque (the extended attribute
//! `trusted.overlay.opaque`): the lower directory no longer shows through.
//! Directories merge both listings ([`node`]).
//!
//! Renaming a directory that has a lower part fails with `EXDEV`, as Linux's
//! overlayfs without `redirect_dir` does: programs (`mv`) then copy.
//!
//! Each name's node is one [`OverlayNode`], kept (weakly) by its directory,
//! so that every descriptor of a file sees it move to the upper layer. Its
//! inode number is the lower node's for anything that came from the lower
//! layer, before and after copy-up, so `stat` and inotify watches do not
//! see the copy; upper-only nodes get theirs with [`UPPER_INODES`] added.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;

use crate::vfs::{AttributeChanges, Caller, FileSystem, FileType, FsError, NewNode, Node, Statistics};

mod node;

/// `OVERLAYFS_SUPER_MAGIC`.
const MAGIC: u64 = 0x794c_7630;
/// Added to the inode numbers of upper-only nodes, which must not meet the
/// lower layer's.
const UPPER_INODES: u64 = 1 << 48;
/// The extended attribute that marks an upper directory opaque.
const OPAQUE: &str = "trusted.overlay.opaque";
/// The overlay's own extended attributes, which programs do not see.
const PRIVATE_ATTRIBUTES: &str = "trusted.overlay.";
/// How much a copy-up reads at a time.
const COPY_CHUNK_BYTES: usize = 64 * 1024;

struct Shared {
    /// Held by every change to the tree (create, remove, rename, link) and
    /// by copy-up, so that one name is copied up once.
    namespace: Mutex<()>,
    /// The inode number of each copied-up node, by its upper node's: a
    /// hard link made after copy-up reports the same number.
    origins: Mutex<BTreeMap<u64, u64>>,
    /// The upper filesystem's root, which makes unnamed files.
    upper_root: Arc<dyn Node>,
}

/// An overlay of `upper` over `lower`.
pub struct OverlayFs {
    root: Arc<OverlayNode>,
    upper: Arc<dyn FileSystem>,
}

impl core::fmt::Debug for OverlayFs {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("OverlayFs")
    }
}

impl OverlayFs {
    /// Joins `upper` (writable, and empty: its root takes the lower
    /// root's attributes) over `lower`.
    pub fn new(
        caller: &Caller<'_>,
        upper: Arc<dyn FileSystem>,
        lower: &dyn FileSystem,
    ) -> Result<Arc<OverlayFs>, FsError> {
        let upper_root = upper.root();
        copy_attributes(caller, &*lower.root(), &*upper_root)?;
        let shared = Arc::new(Shared {
            namespace: Mutex::new(()),
            origins: Mutex::new(BTreeMap::new()),
            upper_root: upper_root.clone(),
        });
        let lower_root = lower.root();
        let root = OverlayNode::new(&shared, FileType::Directory, Some(lower_root), Some(upper_root), None);
        Ok(Arc::new(OverlayFs { root, upper }))
    }
}

impl FileSystem for OverlayFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "overlay"
    }

    /// The upper layer's room, which is what writes use.
    fn statistics(&self) -> Statistics {
        Statistics { magic: MAGIC, ..self.upper.statistics() }
    }
}

/// A directory's nodes looked up so far.
#[derive(Default)]
struct Children {
    nodes: BTreeMap<String, Weak<OverlayNode>>,
    /// Counts changes of names: a lookup that began before one does not
    /// keep its node.
    generation: u64,
}

/// One name of the overlay: its lower node, its upper node, or both (a
/// directory merging the two, or a file copied up).
struct OverlayNode {
    shared: Arc<Shared>,
    this: Weak<OverlayNode>,
    inode: u64,
    file_type: FileType,
    /// The lower node whose contents show until copy-up; for a directory,
    /// the lower directory merged with the upper one. `None` for nodes
    /// made in the overlay and for opaque directories.
    lower: Option<Arc<dyn Node>>,
    upper: Mutex<Option<Arc<dyn Node>>>,
    /// The directory and name of the node; `None` for the root and for
    /// removed and unnamed nodes.
    place: Mutex<Option<(Arc<OverlayNode>, String)>>,
    children: Mutex<Children>,
}

fn is_whiteout(node: &dyn Node) -> bool {
    node.file_type() == FileType::CharacterDevice && node.names_device() == Some(0)
}

/// Treats `NotFound` as `None`.
fn found<T>(result: Result<T, FsError>) -> Result<Option<T>, FsError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(FsError::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

impl OverlayNode {
    fn new(
        shared: &Arc<Shared>,
        file_type: FileType,
        lower: Option<Arc<dyn Node>>,
        upper: Option<Arc<dyn Node>>,
        place: Option<(Arc<OverlayNode>, String)>,
    ) -> Arc<OverlayNode> {
        let inode = match (&lower, &upper) {
            (Some(lower), _) => lower.inode(),
            (None, Some(upper)) => {
                shared.origins.lock().get(&upper.inode()).copied().unwrap_or(upper.inode() | UPPER_INODES)
            }
            (None, None) => UPPER_INODES,
        };
        Arc::new_cyclic(|this| OverlayNode {
            shared: shared.clone(),
            this: this.clone(),
            inode,
            file_type,
            lower,
            upper: Mutex::new(upper),
            place: Mutex::new(place),
            children: Mutex::new(Children::default()),
        })
    }

    fn upper(&self) -> Option<Arc<dyn Node>> {
        self.upper.lock().clone()
    }

    /// The layer that answers for the node now: the upper one once it has
    /// a copy.
    fn current(&self) -> Result<Arc<dyn Node>, FsError> {
        self.upper().or_else(|| self.lower.clone()).ok_or(FsError::Io)
    }

    fn is_directory(&self) -> bool {
        self.file_type == FileType::Directory
    }

    fn arc(&self) -> Result<Arc<OverlayNode>, FsError> {
        self.this.upgrade().ok_or(FsError::NotFound)
    }

    /// The overlay node behind `node`, which must belong to this overlay.
    fn same_overlay<'a>(&self, node: &'a dyn Node) -> Result<&'a OverlayNode, FsError> {
        node.as_any()
            .downcast_ref::<OverlayNode>()
            .filter(|other| Arc::ptr_eq(&other.shared, &self.shared))
            .ok_or(FsError::CrossDevice)
    }

    /// Directory: whether the lower layer shows `name` here.
    fn lower_has(&self, caller: &Caller<'_>, name: &str) -> Result<bool, FsError> {
        match &self.lower {
            Some(lower) => Ok(found(lower.lookup(caller, name))?.is_some()),
            None => Ok(false),
        }
    }

    /// Directory: the node called `name`, the one already known if any.
    fn child(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<OverlayNode>, FsError> {
        if !self.is_directory() {
            return Err(FsError::NotDirectory);
        }
        loop {
            let generation = {
                let children = self.children.lock();
                if let Some(node) = children.nodes.get(name).and_then(Weak::upgrade) {
                    return Ok(node);
                }
                children.generation
            };
            let node = self.find(caller, name)?;
            let mut children = self.children.lock();
            if children.generation != generation {
                continue;
            }
            if let Some(known) = children.nodes.get(name).and_then(Weak::upgrade) {
                return Ok(known);
            }
            remember(&mut children, name, &node);
            return Ok(node);
        }
    }

    /// Directory: looks `name` up in both layers and makes its node.
    fn find(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<OverlayNode>, FsError> {
        let upper = match self.upper() {
            Some(directory) => found(directory.lookup(caller, name))?,
            None => None,
        };
        let lower = match &upper {
            Some(upper) if is_whiteout(&**upper) => return Err(FsError::NotFound),
            // A file hides whatever the lower layer has.
            Some(upper) if upper.file_type() != FileType::Directory => None,
            Some(upper) if is_opaque(caller, &**upper) => None,
            Some(_) => match &self.lower {
                Some(directory) => found(directory.lookup(caller, name))?
                    .filter(|lower| lower.file_type() == FileType::Directory),
                None => None,
            },
            None => match &self.lower {
                Some(directory) => found(directory.lookup(caller, name))?,
                None => None,
            },
        };
        let file_type = match (&upper, &lower) {
            (Some(node), _) | (None, Some(node)) => node.file_type(),
            (None, None) => return Err(FsError::NotFound),
        };
        Ok(OverlayNode::new(&self.shared, file_type, lower, upper, Some((self.arc()?, String::from(name)))))
    }

    /// Directory: forgets the node of `name`, which changed.
    fn forget(&self, name: &str) -> Option<Arc<OverlayNode>> {
        let mut children = self.children.lock();
        children.generation += 1;
        children.nodes.remove(name).and_then(|node| node.upgrade())
    }

    /// Directory: makes `node` the node of `name`.
    fn adopt(&self, name: &str, node: &Arc<OverlayNode>) {
        let mut children = self.children.lock();
        children.generation += 1;
        remember(&mut children, name, node);
        *node.place.lock() = self.this.upgrade().map(|this| (this, String::from(name)));
    }

    /// Directory: whether the merged listing is empty.
    fn is_empty(&self, caller: &Caller<'_>) -> Result<bool, FsError> {
        Ok(self.read_merged(caller, 0)?.is_none())
    }

    /// The upper node, copying the node (and its directories) up first if
    /// it has none. The namespace lock is held.
    fn copy_up(&self, caller: &Caller<'_>, is_keeping_data: bool) -> Result<Arc<dyn Node>, FsError> {
        if let Some(upper) = self.upper() {
            return Ok(upper);
        }
        let lower = self.lower.clone().ok_or(FsError::Io)?;
        let place = self.place.lock().clone();
        let upper = match place {
            Some((parent, name)) => {
                let directory = parent.copy_up(caller, true)?;
                copy_node(caller, &*lower, &*directory, &name, is_keeping_data)?
            }
            // A removed file that a descriptor still changes: its copy has
            // no name either.
            None if self.file_type == FileType::Regular => {
                let copy = self.shared.upper_root.create_temporary(caller, 0o600, false)?;
                copy_contents(caller, &*lower, &*copy, is_keeping_data)?;
                copy_attributes(caller, &*lower, &*copy)?;
                copy
            }
            None => return Err(FsError::NotSupported),
        };
        self.shared.origins.lock().insert(upper.inode(), self.inode);
        *self.upper.lock() = Some(upper.clone());
        Ok(upper)
    }

    /// [`Self::copy_up`] under the namespace lock, for changes to a node's
    /// contents or attributes.
    fn writable(&self, caller: &Caller<'_>) -> Result<Arc<dyn Node>, FsError> {
        if let Some(upper) = self.upper() {
            return Ok(upper);
        }
        let _namespace = self.shared.namespace.lock();
        self.copy_up(caller, true)
    }

    /// Directory: removes the whiteouts an upper directory holds, which
    /// its merged listing did not show, so that it can be removed or
    /// replaced. `NotEmpty` if it holds anything else.
    fn clear_whiteouts(caller: &Caller<'_>, directory: &dyn Node) -> Result<(), FsError> {
        let mut names = Vec::new();
        let mut offset = 0;
        while let Some(entry) = directory.read_directory(caller, offset)? {
            offset = entry.next_offset;
            let node = directory.lookup(caller, &entry.name)?;
            if !is_whiteout(&*node) {
                return Err(FsError::NotEmpty);
            }
            names.push(entry.name);
        }
        for name in names {
            directory.remove(caller, &name, false)?;
        }
        Ok(())
    }

    /// Directory (upper): removes a whiteout called `name`; whether there
    /// was one.
    fn remove_whiteout(caller: &Caller<'_>, directory: &dyn Node, name: &str) -> Result<bool, FsError> {
        match found(directory.lookup(caller, name))? {
            Some(node) if is_whiteout(&*node) => {
                directory.remove(caller, name, false)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn make_whiteout(caller: &Caller<'_>, directory: &dyn Node, name: &str) -> Result<(), FsError> {
        directory.create(caller, name, NewNode::Device(FileType::CharacterDevice, 0), 0).map(|_| ())
    }
}

/// Keeps `node` as `name`'s, dropping entries whose nodes are gone now and
/// then.
fn remember(children: &mut Children, name: &str, node: &Arc<OverlayNode>) {
    let count = children.nodes.len();
    if count >= 64 && count.is_power_of_two() {
        children.nodes.retain(|_, node| node.strong_count() > 0);
    }
    children.nodes.insert(String::from(name), Arc::downgrade(node));
}

fn is_opaque(caller: &Caller<'_>, directory: &dyn Node) -> bool {
    directory.get_extended(caller, OPAQUE).is_ok_and(|value| value == b"y")
}

fn set_opaque(caller: &Caller<'_>, directory: &dyn Node) -> Result<(), FsError> {
    directory.set_extended(caller, OPAQUE, b"y", None)
}

/// Copies the lower node `lower` into `directory` as `name`: its kind, its
/// contents (a file's bytes unless `is_keeping_data` is false, a symlink's
/// target), its attributes.
fn copy_node(
    caller: &Caller<'_>,
    lower: &dyn Node,
    directory: &dyn Node,
    name: &str,
    is_keeping_data: bool,
) -> Result<Arc<dyn Node>, FsError> {
    let metadata = lower.metadata(caller)?;
    let target;
    let kind = match metadata.file_type {
        FileType::Regular => NewNode::File,
        FileType::Directory => NewNode::Directory,
        FileType::Symlink => {
            target = lower.read_link(caller)?;
            NewNode::Symlink(target.text())
        }
        FileType::Fifo => NewNode::Fifo,
        FileType::Socket => NewNode::Socket,
        FileType::CharacterDevice | FileType::BlockDevice => {
            NewNode::Device(metadata.file_type, metadata.represented_device)
        }
        FileType::Anonymous => return Err(FsError::NotSupported),
    };
    let copy = directory.create(caller, name, kind, metadata.permissions)?;
    let result = copy_contents(caller, lower, &*copy, is_keeping_data)
        .and_then(|()| copy_attributes(caller, lower, &*copy));
    if let Err(error) = result {
        // Leave no half copy behind (the removal's own failure says less).
        let _ = directory.remove(caller, name, metadata.file_type == FileType::Directory);
        return Err(error);
    }
    Ok(copy)
}

/// Copies a regular file's bytes; runs of zeroes stay holes.
fn copy_contents(
    caller: &Caller<'_>,
    lower: &dyn Node,
    copy: &dyn Node,
    is_keeping_data: bool,
) -> Result<(), FsError> {
    if lower.file_type() != FileType::Regular || !is_keeping_data {
        return Ok(());
    }
    let size_bytes = lower.metadata(caller)?.size_bytes;
    let mut buffer = alloc::vec![0u8; COPY_CHUNK_BYTES];
    let mut offset = 0;
    while offset < size_bytes {
        let read = lower.read_at(caller, offset, &mut buffer)?;
        if read == 0 {
            break;
        }
        let bytes = &buffer[..read];
        if bytes.iter().any(|&byte| byte != 0) {
            let mut done = 0;
            while done < read {
                done += copy.write_at(caller, offset + done as u64, &bytes[done..])?;
            }
        }
        offset += read as u64;
    }
    copy.truncate(caller, size_bytes)
}

/// Copies mode, owner, times and extended attributes.
fn copy_attributes(caller: &Caller<'_>, lower: &dyn Node, copy: &dyn Node) -> Result<(), FsError> {
    let metadata = lower.metadata(caller)?;
    for name in lower.list_extended(caller)? {
        let value = lower.get_extended(caller, &name)?;
        copy.set_extended(caller, &name, &value, None)?;
    }
    copy.set_attributes(
        caller,
        AttributeChanges {
            permissions: Some(metadata.permissions),
            owner_user: Some(metadata.owner_user),
            owner_group: Some(metadata.owner_group),
            access_time_ns: Some(metadata.access_time_ns),
            modify_time_ns: Some(metadata.modify_time_ns),
            ..AttributeChanges::default()
        },
    )
}

#[cfg(test)]
mod tests;
