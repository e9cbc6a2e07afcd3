//! One file of an NFS mount as a VFS [`Node`]: its handle, its cached
//! attributes, a directory's cached names and listing, and a regular
//! file's read-ahead window.
//!
//! Attributes are kept for a time that starts at the mount's minimum and
//! doubles up to its maximum while they do not change (Linux's `acregmin`
//! and `acregmax`); opening a file always asks the server again
//! (close-to-open consistency), and a change of size or modification time
//! drops what was cached of the contents. Writes reach the server before
//! `write` returns (`UNSTABLE`, several `WRITE`s in flight), and `fsync`,
//! `sync` and the unmount `COMMIT` them.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::Ordering;

use super::Shared;
use super::client::Ticket;
use super::protocol::{self, Attributes, FileHandle, SetAttributes, Stability, procedure};
use super::xdr::{Decoder, Encoder, XdrError};
use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileType, FsError, LinkTarget, Listing, Metadata, NewNode,
    Node, RenameMode,
};

mod transfer;

/// Calls of one transfer in flight at once.
const CALLS_IN_FLIGHT: usize = 8;
/// How far ahead of a small read the file is fetched.
const READ_AHEAD_BYTES: usize = 1 << 20;
/// A `READ`'s size when reading ahead: smaller than `rsize`, so that the
/// window arrives in several calls at once.
const READ_AHEAD_CALL_BYTES: usize = 256 * 1024;
/// A `READDIRPLUS` reply's size.
const LISTING_BYTES: u32 = 64 * 1024;

/// Cached attributes and how long they hold.
struct Cached {
    attributes: Attributes,
    fetched_ns: u64,
    timeout_ns: u64,
}

/// Bytes of a file read ahead.
#[derive(Clone)]
struct Window {
    start: u64,
    data: Arc<Vec<u8>>,
    /// The file ended within the window.
    reaches_end: bool,
}

impl Window {
    /// Whether it holds what a read of `length` bytes at `offset` gets.
    fn covers(&self, offset: u64, length: usize) -> bool {
        let end = self.start + self.data.len() as u64;
        offset >= self.start && (offset.saturating_add(length as u64) <= end || self.reaches_end)
    }
}

/// A name of a directory as last seen.
struct Name {
    handle: FileHandle,
    attributes: Attributes,
    expires_ns: u64,
}

/// One file, directory or symlink of the export.
pub(super) struct NfsNode {
    shared: Arc<Shared>,
    handle: FileHandle,
    serial: u64,
    file_type: FileType,
    inode: u64,
    cached: spin::Mutex<Cached>,
    /// A directory's parent (`None` for the root), for `..`.
    parent: spin::Mutex<Option<Arc<NfsNode>>>,
    /// A directory's names looked up or listed.
    names: spin::Mutex<BTreeMap<String, Name>>,
    /// A directory's entries as listed from offset 0 (offsets index it).
    listing: Listing,
    /// A regular file's bytes from an offset, read ahead.
    window: spin::Mutex<Option<Window>>,
    /// The write verifier of writes not yet committed.
    uncommitted: spin::Mutex<Option<[u8; 8]>>,
}

/// Decodes a result with `decode`, a malformed one being `Io`.
fn decode<'a, T>(
    decoder: &mut Decoder<'a>,
    decode: impl FnOnce(&mut Decoder<'a>) -> Result<T, XdrError>,
) -> Result<T, FsError> {
    decode(decoder).map_err(protocol::malformed)
}

/// `GETATTR`.
pub(super) fn get_attributes(
    shared: &Shared,
    caller: &Caller<'_>,
    handle: &FileHandle,
) -> Result<Attributes, FsError> {
    let reply = shared
        .client
        .call(caller, protocol::nfs(procedure::GETATTR), |arguments| handle.encode(arguments))?;
    let mut results = protocol::results(&reply)?;
    protocol::status(&mut results)?;
    decode(&mut results, Attributes::decode)
}

/// `FSSTAT`: total and available bytes, total and free files.
pub(super) fn file_system_statistics(
    shared: &Shared,
    caller: &Caller<'_>,
    handle: &FileHandle,
) -> Result<(u64, u64, u64, u64), FsError> {
    let reply =
        shared.client.call(caller, protocol::nfs(procedure::FSSTAT), |arguments| handle.encode(arguments))?;
    let mut results = protocol::results(&reply)?;
    protocol::status(&mut results)?;
    decode(&mut results, |results| {
        Attributes::decode_optional(results)?;
        let total_bytes = results.u64()?;
        let _free_bytes = results.u64()?;
        let available_bytes = results.u64()?;
        let total_files = results.u64()?;
        let free_files = results.u64()?;
        Ok((total_bytes, available_bytes, total_files, free_files))
    })
}

impl NfsNode {
    /// The node of `handle`, the live one if there is one (its attributes
    /// then refreshed).
    pub(super) fn get(
        shared: &Arc<Shared>,
        handle: FileHandle,
        attributes: Attributes,
        parent: Option<Arc<NfsNode>>,
    ) -> Arc<NfsNode> {
        let now = shared.client.machine().monotonic_ns();
        // Taken out of the map's lock first: dropping a node takes it.
        let live = shared.nodes.lock().get(&handle).and_then(|(_, node)| node.upgrade());
        if let Some(node) = live
            && node.file_type == attributes.file_type
        {
            node.note(attributes, now);
            if parent.is_some() && node.file_type == FileType::Directory {
                *node.parent.lock() = parent;
            }
            return node;
        }
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let node = Arc::new(NfsNode {
            shared: shared.clone(),
            handle: handle.clone(),
            serial,
            file_type: attributes.file_type,
            inode: attributes.file_id,
            cached: spin::Mutex::new(Cached {
                attributes,
                fetched_ns: now,
                timeout_ns: shared.cache_times(attributes.file_type).minimum_ns,
            }),
            parent: spin::Mutex::new(parent.filter(|_| attributes.file_type == FileType::Directory)),
            names: spin::Mutex::new(BTreeMap::new()),
            listing: Listing::default(),
            window: spin::Mutex::new(None),
            uncommitted: spin::Mutex::new(None),
        });
        shared.nodes.lock().insert(handle, (serial, Arc::downgrade(&node)));
        node
    }

    /// The file handle.
    pub(super) fn handle(&self) -> &FileHandle {
        &self.handle
    }

    fn now(&self) -> u64 {
        self.shared.client.machine().monotonic_ns()
    }

    /// Takes attributes the server sent: the contents cached go if the
    /// file changed, and the cache time grows while it does not.
    fn note(&self, attributes: Attributes, now: u64) {
        let times = self.shared.cache_times(self.file_type);
        let is_changed = {
            let mut cached = self.cached.lock();
            let old = cached.attributes;
            let is_changed = old.modify_time_ns != attributes.modify_time_ns || old.size != attributes.size;
            cached.timeout_ns = if is_changed || old.change_time_ns != attributes.change_time_ns {
                times.minimum_ns
            } else {
                cached.timeout_ns.saturating_mul(2).clamp(times.minimum_ns, times.maximum_ns)
            };
            cached.attributes = attributes;
            cached.fetched_ns = now;
            is_changed
        };
        if is_changed {
            self.forget_contents();
        }
    }

    /// Attributes learned from a reply that may be absent.
    fn note_optional(&self, attributes: Option<Attributes>) {
        match attributes {
            Some(attributes) => self.note(attributes, self.now()),
            None => self.expire(),
        }
    }

    /// The attributes must be asked for again.
    fn expire(&self) {
        self.cached.lock().fetched_ns = 0;
    }

    /// Forgets the contents cached: read-ahead, names, listing.
    fn forget_contents(&self) {
        *self.window.lock() = None;
        self.names.lock().clear();
    }

    /// Fresh attributes: the cached ones while they hold, else the
    /// server's (`is_forced`: always the server's).
    fn attributes(&self, caller: &Caller<'_>, is_forced: bool) -> Result<Attributes, FsError> {
        let now = self.now();
        if !is_forced {
            let cached = self.cached.lock();
            if now.saturating_sub(cached.fetched_ns) < cached.timeout_ns && cached.fetched_ns != 0 {
                return Ok(cached.attributes);
            }
        }
        let attributes = get_attributes(&self.shared, caller, &self.handle)?;
        self.note(attributes, now);
        Ok(attributes)
    }

    fn check_writable(&self) -> Result<(), FsError> {
        if self.shared.options.is_read_only { Err(FsError::ReadOnly) } else { Ok(()) }
    }

    fn check_directory(&self) -> Result<(), FsError> {
        if self.file_type == FileType::Directory { Ok(()) } else { Err(FsError::NotDirectory) }
    }

    /// The node behind another VFS node of this mount.
    fn same_mount<'a>(&self, other: &'a dyn Node) -> Result<&'a NfsNode, FsError> {
        let other = other.as_any().downcast_ref::<NfsNode>().ok_or(FsError::CrossDevice)?;
        if !Arc::ptr_eq(&self.shared, &other.shared) {
            return Err(FsError::CrossDevice);
        }
        Ok(other)
    }

    /// This node as an `Arc`, through the live-node map.
    fn this(&self) -> Option<Arc<NfsNode>> {
        self.shared.nodes.lock().get(&self.handle).and_then(|(_, node)| node.upgrade())
    }

    /// The node a directory entry names, made from what the server said.
    fn child(&self, handle: FileHandle, attributes: Attributes) -> Arc<NfsNode> {
        NfsNode::get(&self.shared, handle, attributes, self.this())
    }

    /// Remembers `name` as naming `handle` for as long as this
    /// directory's attributes hold.
    fn remember(&self, name: &str, handle: FileHandle, attributes: Attributes) {
        let expires_ns = {
            let cached = self.cached.lock();
            cached.fetched_ns.saturating_add(cached.timeout_ns)
        };
        self.names.lock().insert(String::from(name), Name { handle, attributes, expires_ns });
    }

    /// After a change of this directory: its attributes and listing are
    /// stale, and `name` no longer means what it did.
    fn changed(&self, name: &str) {
        self.names.lock().remove(name);
        self.expire();
    }

    /// The live node of the object `name` named, if any.
    fn live_child(&self, name: &str) -> Option<Arc<NfsNode>> {
        let handle = self.names.lock().get(name).map(|entry| entry.handle.clone())?;
        self.shared.nodes.lock().get(&handle).and_then(|(_, node)| node.upgrade())
    }

    /// `LOOKUP`: the handle and attributes `name` names.
    fn look_up(&self, caller: &Caller<'_>, name: &str) -> Result<(FileHandle, Attributes), FsError> {
        let reply = self.shared.client.call(caller, protocol::nfs(procedure::LOOKUP), |arguments| {
            protocol::encode_where(arguments, &self.handle, name);
        })?;
        let mut results = protocol::results(&reply)?;
        protocol::status(&mut results)?;
        let (handle, attributes, directory) = decode(&mut results, |results| {
            let handle = FileHandle::decode(results)?;
            let attributes = Attributes::decode_optional(results)?;
            let directory = Attributes::decode_optional(results)?;
            Ok((handle, attributes, directory))
        })?;
        if let Some(directory) = directory {
            self.note(directory, self.now());
        }
        let attributes = match attributes {
            Some(attributes) => attributes,
            None => get_attributes(&self.shared, caller, &handle)?,
        };
        self.remember(name, handle.clone(), attributes);
        Ok((handle, attributes))
    }

    /// Reads the whole listing, with `READDIRPLUS` or, where the server
    /// has none, `READDIR`.
    fn list(&self, caller: &Caller<'_>) -> Result<Vec<DirectoryEntry>, FsError> {
        match self.list_with(caller, true) {
            Err(FsError::NotSupported) => self.list_with(caller, false),
            other => other,
        }
    }

    fn list_with(&self, caller: &Caller<'_>, is_plus: bool) -> Result<Vec<DirectoryEntry>, FsError> {
        let mut entries = Vec::new();
        let (mut cookie, mut verifier) = (0u64, [0u8; 8]);
        loop {
            let number = if is_plus { procedure::READDIRPLUS } else { procedure::READDIR };
            let reply = self.shared.client.call(caller, protocol::nfs(number), |arguments| {
                self.handle.encode(arguments);
                arguments.u64(cookie).fixed(&verifier);
                if is_plus {
                    arguments.u32(LISTING_BYTES / 2);
                }
                arguments.u32(LISTING_BYTES);
            })?;
            let mut results = protocol::results(&reply)?;
            protocol::status(&mut results)?;
            let (directory, page) = decode(&mut results, |results| {
                let directory = Attributes::decode_optional(results)?;
                Ok((directory, protocol::decode_listing(results, is_plus)?))
            })?;
            if let Some(directory) = directory {
                self.note(directory, self.now());
            }
            for entry in &page.entries {
                if entry.name == b"." || entry.name == b".." {
                    continue;
                }
                let Ok(name) = String::from_utf8(entry.name.clone()) else {
                    // Names the VFS cannot carry are left out.
                    continue;
                };
                let file_type = entry.attributes.map_or(FileType::Regular, |attributes| attributes.file_type);
                if let (Some(handle), Some(attributes)) = (&entry.handle, entry.attributes) {
                    self.remember(&name, handle.clone(), attributes);
                }
                let next_offset = entries.len() as u64 + 1;
                entries.push(DirectoryEntry { name, inode: entry.file_id, file_type, next_offset });
            }
            match page.entries.last() {
                Some(last) if !page.is_end => {
                    cookie = last.cookie;
                    verifier = page.verifier;
                }
                _ => return Ok(entries),
            }
        }
    }

    /// `CREATE`, `MKDIR`, `SYMLINK` or `MKNOD` of `name`.
    fn make(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<NfsNode>, FsError> {
        let mode = SetAttributes { mode: Some(permissions & 0o7777), ..Default::default() };
        let (number, arguments): (u32, Vec<u8>) = {
            let mut arguments = Encoder::new();
            protocol::encode_where(&mut arguments, &self.handle, name);
            let number = match kind {
                NewNode::File => {
                    // GUARDED: an existing file is an error, never truncated.
                    arguments.u32(1);
                    mode.encode(&mut arguments);
                    procedure::CREATE
                }
                NewNode::Directory => {
                    mode.encode(&mut arguments);
                    procedure::MKDIR
                }
                NewNode::Symlink(target) => {
                    mode.encode(&mut arguments);
                    arguments.string(target);
                    procedure::SYMLINK
                }
                NewNode::Fifo | NewNode::Socket => {
                    let file_type = if kind == NewNode::Fifo { FileType::Fifo } else { FileType::Socket };
                    arguments.u32(protocol::file_type_value(file_type));
                    mode.encode(&mut arguments);
                    procedure::MKNOD
                }
                NewNode::Device(file_type, device) => {
                    arguments.u32(protocol::file_type_value(file_type));
                    mode.encode(&mut arguments);
                    let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
                    let minor = (device & 0xff) | ((device >> 12) & !0xff);
                    arguments.u32(major as u32).u32(minor as u32);
                    procedure::MKNOD
                }
            };
            (number, arguments.into_bytes())
        };
        let reply = self.shared.client.call(caller, protocol::nfs(number), |encoder| {
            encoder.fixed(&arguments);
        });
        self.changed(name);
        let reply = reply?;
        let mut results = protocol::results(&reply)?;
        protocol::status(&mut results)?;
        let (handle, attributes, directory) = decode(&mut results, |results| {
            let (handle, attributes) = protocol::decode_created(results)?;
            Ok((handle, attributes, protocol::decode_wcc(results)?))
        })?;
        self.note_optional(directory);
        let (handle, attributes) = match (handle, attributes) {
            (Some(handle), Some(attributes)) => (handle, attributes),
            (Some(handle), None) => {
                let attributes = get_attributes(&self.shared, caller, &handle)?;
                (handle, attributes)
            }
            (None, _) => self.look_up(caller, name)?,
        };
        self.remember(name, handle.clone(), attributes);
        Ok(self.child(handle, attributes))
    }

    /// `SETATTR`.
    fn set(&self, caller: &Caller<'_>, changes: SetAttributes) -> Result<(), FsError> {
        self.check_writable()?;
        let reply = self.shared.client.call(caller, protocol::nfs(procedure::SETATTR), |arguments| {
            self.handle.encode(arguments);
            changes.encode(arguments);
            arguments.bool(false);
        });
        self.expire();
        let reply = reply?;
        let mut results = protocol::results(&reply)?;
        let status = protocol::status(&mut results);
        let attributes = decode(&mut results, protocol::decode_wcc)?;
        status?;
        self.note_optional(attributes);
        Ok(())
    }

    /// Calls `number` with `arguments` and checks the status of the
    /// reply, which ends with `wcc_data` of this directory (and of
    /// `other`, when given).
    fn change(
        &self,
        caller: &Caller<'_>,
        number: u32,
        other: Option<&NfsNode>,
        arguments: impl FnOnce(&mut Encoder),
    ) -> Result<(), FsError> {
        self.check_writable()?;
        let reply = self.shared.client.call(caller, protocol::nfs(number), arguments)?;
        let mut results = protocol::results(&reply)?;
        let status = protocol::status(&mut results);
        if let Ok(attributes) = protocol::decode_wcc(&mut results) {
            self.note_optional(attributes);
        }
        if let Some(other) = other
            && let Ok(attributes) = protocol::decode_wcc(&mut results)
        {
            other.note_optional(attributes);
        }
        status
    }
}

impl Drop for NfsNode {
    fn drop(&mut self) {
        let mut nodes = self.shared.nodes.lock();
        if nodes.get(&self.handle).is_some_and(|(serial, _)| *serial == self.serial) {
            nodes.remove(&self.handle);
        }
    }
}

impl Node for NfsNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = self.attributes(caller, false)?.metadata();
        metadata.block_size_bytes = self.shared.write_bytes as u64;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, caller: &Caller<'_>) -> Result<Option<Arc<dyn Node>>, FsError> {
        // Close-to-open: what others wrote before this open is seen.
        if matches!(self.file_type, FileType::Regular | FileType::Directory) {
            self.attributes(caller, true)?;
        }
        Ok(None)
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        self.check_directory()?;
        let now = self.now();
        let remembered = {
            let names = self.names.lock();
            names
                .get(name)
                .filter(|entry| now < entry.expires_ns)
                .map(|entry| (entry.handle.clone(), entry.attributes))
        };
        let (handle, attributes) = match remembered {
            Some(found) => found,
            None => self.look_up(caller, name)?,
        };
        let node: Arc<dyn Node> = self.child(handle, attributes);
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        let parent = self.parent.lock().clone()?;
        Some(parent)
    }

    fn read_directory(&self, caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        self.check_directory()?;
        self.listing.entry(offset, || self.list(caller))
    }

    fn create(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        self.check_writable()?;
        self.check_directory()?;
        let node: Arc<dyn Node> = self.make(caller, name, kind, permissions)?;
        Ok(node)
    }

    fn remove(&self, caller: &Caller<'_>, name: &str, is_directory: bool) -> Result<(), FsError> {
        self.check_directory()?;
        let removed = self.live_child(name);
        let number = if is_directory { procedure::RMDIR } else { procedure::REMOVE };
        let result = self.change(caller, number, None, |arguments| {
            protocol::encode_where(arguments, &self.handle, name);
        });
        self.changed(name);
        if let Some(removed) = removed {
            removed.expire();
        }
        result
    }

    fn rename(
        &self,
        caller: &Caller<'_>,
        name: &str,
        new_parent: &dyn Node,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<(), FsError> {
        self.check_directory()?;
        let target = self.same_mount(new_parent)?;
        match mode {
            RenameMode::Replace => {}
            RenameMode::NoReplace => match target.look_up(caller, new_name) {
                Ok(_) => return Err(FsError::Exists),
                Err(FsError::NotFound) => {}
                Err(error) => return Err(error),
            },
            // NFSv3 cannot swap two names.
            RenameMode::Exchange => return Err(FsError::InvalidArgument),
        }
        let moved = self.live_child(name);
        let replaced = target.live_child(new_name);
        let result = self.change(caller, procedure::RENAME, Some(target), |arguments| {
            protocol::encode_where(arguments, &self.handle, name);
            protocol::encode_where(arguments, &target.handle, new_name);
        });
        self.changed(name);
        target.changed(new_name);
        for node in [&moved, &replaced].into_iter().flatten() {
            node.expire();
        }
        if result.is_ok()
            && let Some(moved) = moved
            && moved.file_type == FileType::Directory
        {
            *moved.parent.lock() = target.this();
        }
        result
    }

    fn link(&self, caller: &Caller<'_>, name: &str, target: &dyn Node) -> Result<(), FsError> {
        self.check_directory()?;
        self.check_writable()?;
        let target = self.same_mount(target)?;
        let reply = self.shared.client.call(caller, protocol::nfs(procedure::LINK), |arguments| {
            target.handle.encode(arguments);
            protocol::encode_where(arguments, &self.handle, name);
        });
        self.changed(name);
        target.expire();
        let reply = reply?;
        let mut results = protocol::results(&reply)?;
        let status = protocol::status(&mut results);
        if let Ok(attributes) = Attributes::decode_optional(&mut results) {
            target.note_optional(attributes);
        }
        if let Ok(attributes) = protocol::decode_wcc(&mut results) {
            self.note_optional(attributes);
        }
        status
    }

    fn read_link(&self, caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        if self.file_type != FileType::Symlink {
            return Err(FsError::InvalidArgument);
        }
        let reply = self.shared.client.call(caller, protocol::nfs(procedure::READLINK), |arguments| {
            self.handle.encode(arguments);
        })?;
        let mut results = protocol::results(&reply)?;
        let status = protocol::status(&mut results);
        decode(&mut results, Attributes::decode_optional)?;
        status?;
        let target = decode(&mut results, |results| results.opaque(protocol::PATH_BYTES_MAX))?;
        let target = String::from_utf8(target.to_vec()).map_err(|_| FsError::Io)?;
        Ok(LinkTarget::Path(target))
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(FsError::IsDirectory),
            _ => return Err(FsError::InvalidArgument),
        }
        if buffer.is_empty() {
            return Ok(0);
        }
        // Revalidates (and drops the window of a changed file) once the
        // attributes expire.
        self.attributes(caller, false)?;
        if buffer.len() >= READ_AHEAD_BYTES {
            let data = self.fetch(caller, offset, buffer.len(), self.shared.read_bytes)?;
            buffer[..data.len()].copy_from_slice(&data);
            return Ok(data.len());
        }
        let cached = self.window.lock().clone().filter(|window| window.covers(offset, buffer.len()));
        let window = match cached {
            Some(window) => window,
            None => {
                let call_bytes = READ_AHEAD_CALL_BYTES.min(self.shared.read_bytes);
                let data = self.fetch(caller, offset, READ_AHEAD_BYTES, call_bytes)?;
                let reaches_end = data.len() < READ_AHEAD_BYTES;
                let window = Window { start: offset, data: Arc::new(data), reaches_end };
                *self.window.lock() = Some(window.clone());
                window
            }
        };
        let from = usize::try_from(offset - window.start).unwrap_or(usize::MAX).min(window.data.len());
        let count = buffer.len().min(window.data.len() - from);
        buffer[..count].copy_from_slice(&window.data[from..from + count]);
        Ok(count)
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(FsError::IsDirectory),
            _ => return Err(FsError::InvalidArgument),
        }
        self.check_writable()?;
        *self.window.lock() = None;
        let written = self.store(caller, offset, bytes);
        *self.window.lock() = None;
        written
    }

    fn append(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<(usize, u64), FsError> {
        let end = self.attributes(caller, true)?.size;
        let written = self.write_at(caller, end, bytes)?;
        Ok((written, end + written as u64))
    }

    fn truncate(&self, caller: &Caller<'_>, size_bytes: u64) -> Result<(), FsError> {
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(FsError::IsDirectory),
            _ => return Err(FsError::InvalidArgument),
        }
        *self.window.lock() = None;
        self.set(caller, SetAttributes { size: Some(size_bytes), ..Default::default() })
    }

    fn set_attributes(&self, caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        self.set(
            caller,
            SetAttributes {
                mode: changes.permissions,
                user: changes.owner_user,
                group: changes.owner_group,
                size: None,
                access_time_ns: changes.access_time_ns,
                modify_time_ns: changes.modify_time_ns,
            },
        )
    }

    fn sync(&self, caller: &Caller<'_>) -> Result<(), FsError> {
        self.commit(caller)
    }
}

impl Shared {
    /// The attribute cache times of files of `file_type`.
    fn cache_times(&self, file_type: FileType) -> super::options::CacheTimes {
        if file_type == FileType::Directory {
            self.options.directory_cache
        } else {
            self.options.regular_cache
        }
    }
}
