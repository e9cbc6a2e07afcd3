//! One file of a 9P share as a VFS [`Node`]: its fid, cached attributes
//! and the fids opened for its data.
//!
//! A node holds the fid its walk made (a name on the server, never
//! opened), and opens copies of it for reading or for reading and writing
//! the first time its data moves; the node's last holder lets every one
//! go. Attributes are kept for [`ATTRIBUTE_TIMEOUT_NS`], asked for again at
//! every open (so that what the host changed before an open is seen), and
//! read through an opened fid when there is one, which keeps working for
//! a file whose name went.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::Ordering;

use super::Shared;
use super::client::SetAttributes;
use super::protocol::{self, Attributes, open, set};
use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileType, FsError, LinkTarget, Listing, Metadata, NewNode,
    Node, RenameMode,
};

/// How long attributes hold without asking the server.
pub const ATTRIBUTE_TIMEOUT_NS: u64 = 1_000_000_000;

/// The most entries a listing holds before the server is taken for
/// broken.
const LISTING_ENTRIES_MAX: usize = 1 << 22;

/// Cached attributes and when they came.
#[derive(Clone, Copy)]
struct Cached {
    attributes: Attributes,
    /// Monotonic time of the answer; 0 once stale.
    fetched_ns: u64,
}

/// A fid opened for the node's data.
#[derive(Clone, Copy)]
struct Opened {
    fid: u32,
    can_read: bool,
}

/// One file, directory, symlink or special file of the share.
pub(super) struct P9Node {
    shared: Arc<Shared>,
    /// The walked fid, never opened.
    fid: u32,
    /// The server's identity of the file (`qid.path`).
    identity: u64,
    serial: u64,
    file_type: FileType,
    cached: spin::Mutex<Cached>,
    /// A directory's parent (`None` for the root), for `..`.
    parent: spin::Mutex<Option<Arc<P9Node>>>,
    /// A directory's names as last looked up, to the identities they
    /// named (to find the node a removal affects).
    names: spin::Mutex<BTreeMap<String, u64>>,
    /// A directory's entries as listed from offset 0 (offsets index it).
    listing: Listing,
    /// Opened for reading.
    reader: spin::Mutex<Option<Opened>>,
    /// Opened for writing (and reading, where the server let it).
    writer: spin::Mutex<Option<Opened>>,
    /// A named pipe's buffer: its data never goes to the host, as with
    /// Linux's 9p client.
    pipe: Option<Arc<crate::vfs::Pipe>>,
}

impl P9Node {
    /// The node of `identity` with the walked `fid`: the live one if there
    /// is one (its attributes then refreshed, and `fid` let go).
    pub(super) fn get(
        shared: &Arc<Shared>,
        fid: u32,
        attributes: Attributes,
        parent: Option<Arc<P9Node>>,
        now_ns: u64,
    ) -> Result<Arc<P9Node>, FsError> {
        let file_type = attributes.file_type().ok_or(FsError::Io)?;
        let identity = attributes.qid.path;
        // Taken out of the map's lock first: dropping a node takes it.
        let live = shared.nodes.lock().get(&identity).and_then(|(_, node)| node.upgrade());
        if let Some(node) = live
            && node.file_type == file_type
        {
            shared.client.release(fid);
            *node.cached.lock() = Cached { attributes, fetched_ns: now_ns.max(1) };
            if parent.is_some() && file_type == FileType::Directory {
                let old = core::mem::replace(&mut *node.parent.lock(), parent);
                drop(old);
            }
            return Ok(node);
        }
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let node = Arc::new(P9Node {
            shared: shared.clone(),
            fid,
            identity,
            serial,
            file_type,
            cached: spin::Mutex::new(Cached { attributes, fetched_ns: now_ns.max(1) }),
            parent: spin::Mutex::new(parent.filter(|_| file_type == FileType::Directory)),
            names: spin::Mutex::new(BTreeMap::new()),
            listing: Listing::default(),
            reader: spin::Mutex::new(None),
            writer: spin::Mutex::new(None),
            pipe: (file_type == FileType::Fifo).then(crate::vfs::Pipe::named),
        });
        let replaced = shared.nodes.lock().insert(identity, (serial, Arc::downgrade(&node)));
        drop(replaced);
        Ok(node)
    }

    /// The walked fid.
    pub(super) fn fid(&self) -> u32 {
        self.fid
    }

    /// The fid that reaches the file best: an opened one (which survives
    /// the file's names), else the walked one.
    fn best_fid(&self) -> u32 {
        if let Some(opened) = *self.writer.lock() {
            return opened.fid;
        }
        if let Some(opened) = *self.reader.lock() {
            return opened.fid;
        }
        self.fid
    }

    /// Fresh attributes: the cached ones while they hold, else the
    /// server's (`is_forced`: always the server's).
    fn attributes(&self, caller: &Caller<'_>, is_forced: bool) -> Result<Attributes, FsError> {
        let now = caller.machine.monotonic_ns();
        if !is_forced {
            let cached = *self.cached.lock();
            if cached.fetched_ns != 0 && now.saturating_sub(cached.fetched_ns) < ATTRIBUTE_TIMEOUT_NS {
                return Ok(cached.attributes);
            }
        }
        let attributes = self.shared.client.get_attributes(self.best_fid())?;
        *self.cached.lock() = Cached { attributes, fetched_ns: now.max(1) };
        Ok(attributes)
    }

    /// The attributes must be asked for again.
    fn expire(&self) {
        self.cached.lock().fetched_ns = 0;
    }

    fn check_writable(&self) -> Result<(), FsError> {
        if self.shared.is_read_only { Err(FsError::ReadOnly) } else { Ok(()) }
    }

    fn check_directory(&self) -> Result<(), FsError> {
        if self.file_type == FileType::Directory { Ok(()) } else { Err(FsError::NotDirectory) }
    }

    fn check_regular(&self) -> Result<(), FsError> {
        match self.file_type {
            FileType::Regular => Ok(()),
            FileType::Directory => Err(FsError::IsDirectory),
            _ => Err(FsError::InvalidArgument),
        }
    }

    /// The node behind another VFS node of this mount.
    fn same_mount<'a>(&self, other: &'a dyn Node) -> Result<&'a P9Node, FsError> {
        let other = other.as_any().downcast_ref::<P9Node>().ok_or(FsError::CrossDevice)?;
        if !Arc::ptr_eq(&self.shared, &other.shared) {
            return Err(FsError::CrossDevice);
        }
        Ok(other)
    }

    /// This node as an `Arc`, through the live-node map.
    fn this(&self) -> Option<Arc<P9Node>> {
        self.shared
            .nodes
            .lock()
            .get(&self.identity)
            .filter(|(serial, _)| *serial == self.serial)
            .and_then(|(_, node)| node.upgrade())
    }

    /// The group new files get: the caller's filesystem group.
    fn group_of(caller: &Caller<'_>) -> u32 {
        caller.credentials().map_or(0, |credentials| credentials.filesystem_group)
    }

    /// Walks to `name` and makes its node.
    fn walk_to(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<P9Node>, FsError> {
        let (fid, _) = self.shared.client.walk(self.fid, &[name])?;
        let attributes = match self.shared.client.get_attributes(fid) {
            Ok(attributes) => attributes,
            Err(error) => {
                self.shared.client.release(fid);
                return Err(error);
            }
        };
        self.names.lock().insert(String::from(name), attributes.qid.path);
        P9Node::get(&self.shared, fid, attributes, self.this(), caller.machine.monotonic_ns())
    }

    /// After `name` went from this directory: a live node it named loses
    /// its place in the map if that was its last name, so that a new file
    /// given the same inode number is not taken for it.
    fn forget(&self, name: &str) {
        self.expire();
        let Some(identity) = self.names.lock().remove(name) else { return };
        let live = self.shared.nodes.lock().get(&identity).and_then(|(_, node)| node.upgrade());
        if let Some(node) = live {
            node.expire();
            let is_last =
                node.cached.lock().attributes.link_count <= 1 || node.file_type == FileType::Directory;
            if is_last {
                let removed = {
                    let mut nodes = self.shared.nodes.lock();
                    if nodes.get(&identity).is_some_and(|(serial, _)| *serial == node.serial) {
                        nodes.remove(&identity)
                    } else {
                        None
                    }
                };
                drop(removed);
            }
        }
    }

    /// A fid opened for reading (`is_writing`: for writing), opened now if
    /// the node has none yet.
    fn opened(&self, is_writing: bool) -> Result<u32, FsError> {
        if let Some(opened) = *self.writer.lock()
            && (is_writing || opened.can_read)
        {
            return Ok(opened.fid);
        }
        if !is_writing && let Some(opened) = *self.reader.lock() {
            return Ok(opened.fid);
        }
        let client = &self.shared.client;
        let (fid, _) = client.walk(self.fid, &[])?;
        let modes: &[(u32, bool)] = if is_writing {
            &[(open::READ_WRITE, true), (open::WRITE_ONLY, false)]
        } else {
            &[(open::READ_ONLY, true)]
        };
        let mut result = Err(FsError::Io);
        for (flags, can_read) in modes {
            result = client.open(fid, *flags).map(|_| Opened { fid, can_read: *can_read });
            if !matches!(result, Err(FsError::AccessDenied)) {
                break;
            }
        }
        let opened = match result {
            Ok(opened) => opened,
            Err(error) => {
                client.release(fid);
                return Err(error);
            }
        };
        let slot = if is_writing { &self.writer } else { &self.reader };
        let mut slot = slot.lock();
        match *slot {
            // Another thread opened one meanwhile.
            Some(other) => {
                client.release(opened.fid);
                Ok(other.fid)
            }
            None => {
                *slot = Some(opened);
                Ok(opened.fid)
            }
        }
    }

    /// Reads the whole listing from a newly opened fid.
    fn list(&self) -> Result<Vec<DirectoryEntry>, FsError> {
        let client = &self.shared.client;
        let (fid, _) = client.walk(self.fid, &[])?;
        let result = client.open(fid, open::READ_ONLY | open::DIRECTORY).and_then(|_| {
            let mut entries = Vec::new();
            let mut offset = 0u64;
            loop {
                let page = client.read_directory(fid, offset)?;
                let Some(last) = page.last() else { return Ok(entries) };
                let next = last.next_offset;
                if next == offset || entries.len() > LISTING_ENTRIES_MAX {
                    // A server that does not move on, or never ends, would
                    // loop for ever.
                    return Err(FsError::Io);
                }
                for entry in page {
                    if entry.name == b"." || entry.name == b".." {
                        continue;
                    }
                    // Names the VFS cannot carry are left out.
                    let Ok(name) = String::from_utf8(entry.name) else { continue };
                    let next_offset = entries.len() as u64 + 1;
                    let file_type = protocol::file_type_of_entry(entry.entry_type);
                    entries.push(DirectoryEntry { name, inode: entry.qid.path, file_type, next_offset });
                }
                offset = next;
            }
        });
        client.release(fid);
        result
    }

    /// Makes `name` of `kind` and its node.
    fn make(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<P9Node>, FsError> {
        let client = &self.shared.client;
        let group = Self::group_of(caller);
        let permissions = permissions & 0o7777;
        self.expire();
        match kind {
            NewNode::File => {
                // Tlcreate turns the fid into the new file, opened: a copy
                // of the directory's fid becomes the node's writer.
                let (opened, _) = client.walk(self.fid, &[])?;
                let flags = open::READ_WRITE | open::CREATE | open::EXCLUSIVE;
                if let Err(error) = client.create(opened, name, flags, permissions, group) {
                    client.release(opened);
                    return Err(error);
                }
                let node = match self.walk_to(caller, name) {
                    Ok(node) => node,
                    Err(error) => {
                        client.release(opened);
                        return Err(error);
                    }
                };
                let mut writer = node.writer.lock();
                if writer.is_none() {
                    *writer = Some(Opened { fid: opened, can_read: true });
                } else {
                    client.release(opened);
                }
                drop(writer);
                return Ok(node);
            }
            NewNode::Directory => {
                client.make_directory(self.fid, name, permissions, group)?;
            }
            NewNode::Symlink(target) => {
                client.symlink(self.fid, name, target, group)?;
            }
            NewNode::Fifo | NewNode::Socket => {
                let file_type = if kind == NewNode::Fifo { FileType::Fifo } else { FileType::Socket };
                client.make_node(self.fid, name, file_type.mode_bits() | permissions, (0, 0), group)?;
            }
            NewNode::Device(file_type, device) => {
                let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
                let minor = (device & 0xff) | ((device >> 12) & !0xff);
                client.make_node(
                    self.fid,
                    name,
                    file_type.mode_bits() | permissions,
                    (major as u32, minor as u32),
                    group,
                )?;
            }
        }
        self.walk_to(caller, name)
    }

    /// `Tsetattr` through the best fid.
    fn set(&self, change: SetAttributes) -> Result<(), FsError> {
        self.check_writable()?;
        let result = self.shared.client.set_attributes(self.best_fid(), &change);
        self.expire();
        result
    }

    /// `Tfsync` of the opened fids.
    pub(super) fn flush(&self) -> Result<(), FsError> {
        let opened = *self.writer.lock();
        match opened {
            Some(opened) => self.shared.client.fsync(opened.fid),
            None => Ok(()),
        }
    }
}

impl Drop for P9Node {
    fn drop(&mut self) {
        let removed = {
            let mut nodes = self.shared.nodes.lock();
            if nodes.get(&self.identity).is_some_and(|(serial, _)| *serial == self.serial) {
                nodes.remove(&self.identity)
            } else {
                None
            }
        };
        drop(removed);
        // Clunked by the next call: a drop may happen where a lock is held.
        let client = &self.shared.client;
        client.release(self.fid);
        for slot in [&self.reader, &self.writer] {
            if let Some(opened) = slot.lock().take() {
                client.release(opened.fid);
            }
        }
    }
}

impl Node for P9Node {
    fn inode(&self) -> u64 {
        self.identity
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let attributes = self.attributes(caller, false)?;
        let mut metadata = Metadata::new(self.identity, self.file_type, attributes.mode & 0o7777);
        metadata.link_count = attributes.link_count;
        metadata.owner_user = attributes.user;
        metadata.owner_group = attributes.group;
        metadata.size_bytes = attributes.size;
        metadata.block_size_bytes = self.shared.client.io_bytes().min(1 << 20) as u64;
        metadata.blocks = attributes.blocks;
        metadata.represented_device = attributes.represented_device;
        metadata.access_time_ns = attributes.access_time_ns;
        metadata.modify_time_ns = attributes.modify_time_ns;
        metadata.change_time_ns = attributes.change_time_ns;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, caller: &Caller<'_>) -> Result<Option<Arc<dyn Node>>, FsError> {
        // What the host changed before this open is seen.
        self.attributes(caller, true)?;
        if self.file_type == FileType::Regular {
            // Opened now, as Linux's client opens its fid at open(2): the
            // descriptor keeps reading after the host removes the name. A
            // file the host user may not read fails at the first read.
            let _ = self.opened(false);
        }
        Ok(None)
    }

    fn prepare_for_write(&self, _caller: &Caller<'_>, _is_truncating: bool) -> Result<(), FsError> {
        if self.file_type != FileType::Regular {
            return Ok(());
        }
        self.check_writable()?;
        self.opened(true).map(|_| ())
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        self.check_directory()?;
        let node: Arc<dyn Node> = self.walk_to(caller, name)?;
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        let parent = self.parent.lock().clone()?;
        Some(parent)
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        self.check_directory()?;
        self.listing.entry(offset, || self.list())
    }

    fn create(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        self.check_directory()?;
        self.check_writable()?;
        let node: Arc<dyn Node> = self.make(caller, name, kind, permissions)?;
        Ok(node)
    }

    fn remove(&self, _caller: &Caller<'_>, name: &str, is_directory: bool) -> Result<(), FsError> {
        self.check_directory()?;
        self.check_writable()?;
        let flags = if is_directory { protocol::AT_REMOVEDIR } else { 0 };
        let result = self.shared.client.unlink(self.fid, name, flags);
        self.forget(name);
        result
    }

    fn rename(
        &self,
        _caller: &Caller<'_>,
        name: &str,
        new_parent: &dyn Node,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<(), FsError> {
        self.check_directory()?;
        self.check_writable()?;
        let target = self.same_mount(new_parent)?;
        match mode {
            RenameMode::Replace => {}
            RenameMode::NoReplace => match self.shared.client.walk(target.fid, &[new_name]) {
                Ok((fid, _)) => {
                    self.shared.client.release(fid);
                    return Err(FsError::Exists);
                }
                Err(FsError::NotFound) => {}
                Err(error) => return Err(error),
            },
            // 9P2000.L cannot swap two names.
            RenameMode::Exchange => return Err(FsError::InvalidArgument),
        }
        let moved = self.names.lock().get(name).copied();
        let result = self.shared.client.rename(self.fid, name, target.fid, new_name);
        target.forget(new_name);
        self.expire();
        self.names.lock().remove(name);
        if result.is_ok()
            && let Some(identity) = moved
        {
            target.names.lock().insert(String::from(new_name), identity);
            let live = self.shared.nodes.lock().get(&identity).and_then(|(_, node)| node.upgrade());
            if let Some(node) = live {
                node.expire();
                if node.file_type == FileType::Directory {
                    let old = core::mem::replace(&mut *node.parent.lock(), target.this());
                    drop(old);
                }
            }
        }
        result
    }

    fn link(&self, _caller: &Caller<'_>, name: &str, target: &dyn Node) -> Result<(), FsError> {
        self.check_directory()?;
        self.check_writable()?;
        let target = self.same_mount(target)?;
        let result = self.shared.client.link(self.fid, target.fid, name);
        self.expire();
        target.expire();
        if result.is_ok() {
            self.names.lock().insert(String::from(name), target.identity);
        }
        result
    }

    fn read_link(&self, _caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        if self.file_type != FileType::Symlink {
            return Err(FsError::InvalidArgument);
        }
        let target = self.shared.client.read_link(self.fid)?;
        let target = String::from_utf8(target).map_err(|_| FsError::Io)?;
        Ok(LinkTarget::Path(target))
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        self.check_regular()?;
        let fid = self.opened(false)?;
        let chunk = self.shared.client.io_bytes();
        let mut done = 0usize;
        while done < buffer.len() {
            let asked = (buffer.len() - done).min(chunk);
            let part = &mut buffer[done..done + asked];
            let got = match self.shared.client.read(fid, offset + done as u64, part) {
                Ok(got) => got,
                Err(error) if done == 0 => return Err(error),
                Err(_) => break,
            };
            done += got;
            if got < asked {
                break;
            }
        }
        Ok(done)
    }

    fn write_at(&self, _caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        self.check_regular()?;
        self.check_writable()?;
        let fid = self.opened(true)?;
        let chunk = self.shared.client.io_bytes();
        let mut done = 0usize;
        while done < bytes.len() {
            let asked = (bytes.len() - done).min(chunk);
            let part = &bytes[done..done + asked];
            let written = match self.shared.client.write(fid, offset + done as u64, part) {
                Ok(written) => written,
                Err(error) if done == 0 => {
                    self.expire();
                    return Err(error);
                }
                Err(_) => break,
            };
            done += written;
            if written < asked {
                break;
            }
        }
        // The size grew here, and no one else's write is known: the cache
        // follows rather than asking.
        {
            let mut cached = self.cached.lock();
            let end = offset + done as u64;
            if end > cached.attributes.size {
                cached.attributes.size = end;
            }
        }
        Ok(done)
    }

    fn append(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<(usize, u64), FsError> {
        let end = self.attributes(caller, true)?.size;
        let written = self.write_at(caller, end, bytes)?;
        Ok((written, end + written as u64))
    }

    fn truncate(&self, _caller: &Caller<'_>, size_bytes: u64) -> Result<(), FsError> {
        self.check_regular()?;
        self.set(SetAttributes { valid: set::SIZE, size: size_bytes, ..Default::default() })
    }

    fn set_attributes(&self, _caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        let mut change = SetAttributes::default();
        if let Some(permissions) = changes.permissions {
            change.valid |= set::MODE;
            change.mode = permissions & 0o7777;
        }
        if let Some(user) = changes.owner_user {
            change.valid |= set::UID;
            change.user = user;
        }
        if let Some(group) = changes.owner_group {
            change.valid |= set::GID;
            change.group = group;
        }
        if let Some(time) = changes.access_time_ns {
            change.valid |= set::ATIME | set::ATIME_SET;
            change.access_time_ns = time;
        }
        if let Some(time) = changes.modify_time_ns {
            change.valid |= set::MTIME | set::MTIME_SET;
            change.modify_time_ns = time;
        }
        if change.valid == 0 {
            return Ok(());
        }
        change.valid |= set::CTIME;
        self.set(change)
    }

    fn sync(&self, _caller: &Caller<'_>) -> Result<(), FsError> {
        self.flush()
    }

    fn named_pipe(&self) -> Option<Arc<crate::vfs::Pipe>> {
        self.pipe.clone()
    }
}
