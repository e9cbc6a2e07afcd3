//! One inode of a mounted ext4 filesystem as a VFS [`Node`].

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::Ordering;

use rsext4::{
    DeviceNumber, DirectoryCursor, Ext4Error, Ext4ErrorKind, Ext4Timestamp, FileName, FilePermissions,
    InodeMetadataUpdate, InodeNumber, MutationContext, PreallocationOptions, RangeOperation, RenameOptions,
    SpecialInodeKind, XattrNamespace, XattrSetMode,
};

use super::mapped::MappedPages;
use super::{Shared, Volume, error};
use crate::errno::Errno;
use crate::vfs::permission;
use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileType, FsError, LinkTarget, Listing, Metadata, NewNode,
    Node, RenameMode,
};

/// Directory records fetched per engine call while listing.
const LISTING_BATCH: usize = 256;

/// An inode. There is at most one live node per inode, so the last one
/// to go can free an inode whose names are all gone.
pub(super) struct Ext4Node {
    shared: Arc<Shared>,
    number: InodeNumber,
    serial: u64,
    file_type: FileType,
    /// A directory's entries as listed from offset 0: offsets index it,
    /// so they stay valid while entries come and go.
    listing: Listing,
    /// A regular file's pages that `mmap` mapped.
    mapped: MappedPages,
}

/// The VFS type of an inode's mode.
fn file_type(mode: u16) -> FileType {
    match mode & 0o170000 {
        0o040000 => FileType::Directory,
        0o120000 => FileType::Symlink,
        0o020000 => FileType::CharacterDevice,
        0o060000 => FileType::BlockDevice,
        0o010000 => FileType::Fifo,
        0o140000 => FileType::Socket,
        _ => FileType::Regular,
    }
}

/// A name as the engine takes it: `NameTooLong` past 255 bytes.
fn file_name(name: &str) -> Result<FileName<'_>, FsError> {
    if name.len() > 255 {
        return Err(FsError::NameTooLong);
    }
    FileName::new(name.as_bytes()).map_err(error)
}

fn nanoseconds(seconds: u32) -> u64 {
    u64::from(seconds) * 1_000_000_000
}

fn timestamp(time_ns: u64) -> Ext4Timestamp {
    let seconds = i64::try_from(time_ns / 1_000_000_000).unwrap_or(i64::MAX);
    Ext4Timestamp::new(seconds, (time_ns % 1_000_000_000) as u32)
}

/// Linux's `dev_t` encoding of a device number.
fn linux_device(device: DeviceNumber) -> u64 {
    let (major, minor) = (u64::from(device.major()), u64::from(device.minor()));
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

/// The device number a Linux `dev_t` names.
fn device_number(device: u64) -> Result<DeviceNumber, FsError> {
    let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
    let minor = (device & 0xff) | ((device >> 12) & !0xff);
    let major = u32::try_from(major).map_err(|_| FsError::InvalidArgument)?;
    let minor = u32::try_from(minor).map_err(|_| FsError::InvalidArgument)?;
    DeviceNumber::new(major, minor).map_err(error)
}

/// An extended attribute's namespace and the name within it.
fn attribute_name(name: &str) -> Result<(XattrNamespace, &[u8]), FsError> {
    let (prefix, rest) = name.split_once('.').ok_or(FsError::NotSupported)?;
    let namespace = match prefix {
        "user" => XattrNamespace::User,
        "trusted" => XattrNamespace::Trusted,
        "security" => XattrNamespace::Security,
        _ => return Err(FsError::NotSupported),
    };
    Ok((namespace, rest.as_bytes()))
}

fn attribute_prefix(namespace: XattrNamespace) -> Option<&'static str> {
    match namespace {
        XattrNamespace::User => Some("user."),
        XattrNamespace::Trusted => Some("trusted."),
        XattrNamespace::Security => Some("security."),
        _ => None,
    }
}

/// A missing attribute is `ENODATA`.
fn attribute_error(failure: Ext4Error) -> FsError {
    match failure.kind() {
        Ext4ErrorKind::NotFound => FsError::Errno(Errno::ENODATA),
        _ => error(failure),
    }
}

/// Blocks kept free for the extent-tree blocks a write may add.
const SPARE_BLOCKS: u64 = 16;

/// How much of a write of `length` bytes at `offset` to attempt: all of
/// it while space is plentiful, what the free blocks can hold when it is
/// short (a short write, as on Linux), `NoSpace` when nothing fits. A
/// write that fails inside the engine could leave blocks allocated.
fn writable_length(
    statistics: rsext4::ext4::FileSystemStats,
    offset: u64,
    length: usize,
) -> Result<usize, FsError> {
    let block_size = statistics.block_size.max(1);
    let usable_blocks = statistics.free_blocks.saturating_sub(SPARE_BLOCKS);
    let needed_blocks = (length as u64).div_ceil(block_size) + 1;
    if needed_blocks <= usable_blocks {
        return Ok(length);
    }
    // Whole blocks from the end of the block `offset` falls in.
    let first_block_room = block_size - offset % block_size;
    let room = first_block_room + usable_blocks.saturating_sub(1) * block_size;
    match usable_blocks {
        0 => Err(FsError::NoSpace),
        _ => Ok(length.min(usize::try_from(room).unwrap_or(usize::MAX))),
    }
}

impl Ext4Node {
    /// The node of inode `number` (of `mode`), the live one if there is one.
    pub(super) fn get(shared: &Arc<Shared>, number: InodeNumber, mode: u16) -> Arc<Ext4Node> {
        let mut nodes = shared.nodes.lock();
        if let Some(node) = nodes.get(&number.raw()).and_then(|(_, node)| node.upgrade()) {
            return node;
        }
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let node = Arc::new(Ext4Node {
            shared: shared.clone(),
            number,
            serial,
            file_type: file_type(mode),
            listing: Listing::default(),
            mapped: MappedPages::default(),
        });
        nodes.insert(number.raw(), (serial, Arc::downgrade(&node)));
        node
    }

    /// The node behind a VFS node of the same mount.
    fn same_mount<'a>(&self, other: &'a dyn Node) -> Result<&'a Ext4Node, FsError> {
        let other = other.as_any().downcast_ref::<Ext4Node>().ok_or(FsError::CrossDevice)?;
        if !Arc::ptr_eq(&self.shared, &other.shared) {
            return Err(FsError::CrossDevice);
        }
        Ok(other)
    }

    fn check_writable(&self) -> Result<(), FsError> {
        if self.shared.is_read_only { Err(FsError::ReadOnly) } else { Ok(()) }
    }

    /// Lists the whole directory.
    fn list(&self, caller: &Caller<'_>) -> Result<Vec<DirectoryEntry>, FsError> {
        let mut volume = self.shared.lock(caller.now_ns());
        let mut reader = volume.open_directory_reader(self.number).map_err(error)?;
        let mut cursor = DirectoryCursor::Start;
        let mut entries = Vec::new();
        while cursor != DirectoryCursor::End {
            let batch =
                volume.read_directory_with_reader(&mut reader, cursor, LISTING_BATCH).map_err(error)?;
            let Some(last) = batch.last() else {
                break;
            };
            cursor = last.next_cursor;
            for record in batch {
                if record.name == b"." || record.name == b".." {
                    continue;
                }
                let Ok(name) = String::from_utf8(record.name) else {
                    // Names the VFS cannot carry are left out of listings.
                    continue;
                };
                let file_type = match record.file_type {
                    rsext4::DirectoryEntryType::Directory => FileType::Directory,
                    rsext4::DirectoryEntryType::Symlink => FileType::Symlink,
                    rsext4::DirectoryEntryType::CharacterDevice => FileType::CharacterDevice,
                    rsext4::DirectoryEntryType::BlockDevice => FileType::BlockDevice,
                    rsext4::DirectoryEntryType::Fifo => FileType::Fifo,
                    rsext4::DirectoryEntryType::Socket => FileType::Socket,
                    _ => FileType::Regular,
                };
                let next_offset = entries.len() as u64 + 1;
                entries.push(DirectoryEntry {
                    name,
                    inode: u64::from(record.inode.raw()),
                    file_type,
                    next_offset,
                });
            }
        }
        Ok(entries)
    }

    /// Writes the mapped pages to the disk.
    fn write_back(&self, volume: &mut Volume) -> Result<(), FsError> {
        let size_bytes = volume.inode(self.number).map_err(error)?.size;
        for (offset, bytes) in self.mapped.contents(size_bytes) {
            volume.write_inode(self.number, offset, &bytes).map_err(error)?;
        }
        Ok(())
    }

    /// Frees inode `number` after its last name went, unless it is in use.
    fn released(&self, caller: &Caller<'_>, outcome: Option<rsext4::UnlinkOutcome>) -> Result<(), FsError> {
        match outcome {
            Some(outcome) if outcome.requires_reap() => {
                let mut volume = self.shared.lock(caller.now_ns());
                self.shared.release_if_unused(&mut volume, outcome.inode)
            }
            _ => Ok(()),
        }
    }
}

/// Makes a rename within one directory to a name not taken yet replace a
/// placeholder instead: the engine finds the old name's record, adds the
/// new one, then removes the old record where it found it, and adding a
/// name can move records (the split of a hashed directory's block, or a
/// full first block becoming a hash index), which leaves the old record
/// elsewhere. Replacing an existing name adds nothing. The placeholder, an
/// empty file or directory like the source, is freed by the rename. Gives
/// the options the rename then needs, or `None` when nothing was made.
fn hold_new_name(
    volume: &mut Volume,
    directory: InodeNumber,
    name: FileName<'_>,
    new_name: FileName<'_>,
) -> Result<Option<RenameOptions>, FsError> {
    let Some(source) = volume.lookup_child(directory, name).map_err(error)? else {
        return Ok(None);
    };
    if volume.lookup_child(directory, new_name).map_err(error)?.is_some() {
        return Ok(None);
    }
    let context = MutationContext::new(0, 0, 0, 0);
    let bits = FilePermissions::new(0).map_err(error)?;
    if file_type(source.mode) == FileType::Directory {
        volume.create_directory(context, directory, new_name, bits).map_err(error)?;
    } else {
        volume.create_regular_file(context, directory, new_name, bits).map_err(error)?;
    }
    Ok(Some(RenameOptions::REPLACE))
}

impl Drop for Ext4Node {
    fn drop(&mut self) {
        {
            let mut nodes = self.shared.nodes.lock();
            match nodes.get(&self.number.raw()) {
                Some((serial, _)) if *serial == self.serial => {
                    nodes.remove(&self.number.raw());
                }
                _ => return,
            }
        }
        if self.shared.is_read_only {
            return;
        }
        let mut volume = self.shared.volume.lock();
        if let Err(failure) = self.write_back(&mut volume) {
            log::warn!("ext4: cannot write back the mapped pages of inode {}: {failure}", self.number.raw());
        }
        if volume.inode(self.number).is_ok_and(|information| information.links == 0)
            && let Err(failure) = volume.reap_unlinked_inode(self.number)
        {
            log::warn!("ext4: cannot free inode {}: {failure}", self.number.raw());
        }
    }
}

impl Node for Ext4Node {
    fn inode(&self) -> u64 {
        u64::from(self.number.raw())
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let (information, block_size) = {
            let mut volume = self.shared.lock(caller.now_ns());
            let information = volume.inode(self.number).map_err(error)?;
            (information, volume.statfs().block_size)
        };
        let mut metadata = Metadata::new(self.inode(), self.file_type, u32::from(information.mode) & 0o7777);
        metadata.link_count = u64::from(information.links);
        metadata.owner_user = information.uid;
        metadata.owner_group = information.gid;
        metadata.size_bytes = information.size;
        metadata.block_size_bytes = block_size;
        metadata.blocks = information.blocks;
        metadata.represented_device = information.device_number.map_or(0, linux_device);
        metadata.access_time_ns = nanoseconds(information.atime);
        metadata.modify_time_ns = nanoseconds(information.mtime);
        metadata.change_time_ns = nanoseconds(information.ctime);
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        if self.file_type != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
        let name = file_name(name)?;
        let information = self.shared.lock(caller.now_ns()).lookup_child(self.number, name).map_err(error)?;
        let information = information.ok_or(FsError::NotFound)?;
        let node: Arc<dyn Node> = Ext4Node::get(&self.shared, information.number, information.mode);
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        if self.file_type != FileType::Directory {
            return None;
        }
        let name = FileName::new(b"..").ok()?;
        let information = self.shared.volume.lock().lookup_child(self.number, name).ok()??;
        if information.number == self.number {
            return None;
        }
        let node: Arc<dyn Node> = Ext4Node::get(&self.shared, information.number, information.mode);
        Some(node)
    }

    fn read_directory(&self, caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        if self.file_type != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
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
        if self.file_type != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
        let name = file_name(name)?;
        let is_directory = kind == NewNode::Directory;
        let (owner_user, owner_group, permissions) =
            permission::new_owner(caller, &self.metadata(caller)?, is_directory, permissions);
        let context = MutationContext::new(owner_user, owner_group, 0, 0);
        let bits = FilePermissions::new((permissions & 0o7777) as u16).map_err(error)?;
        let information = {
            let mut volume = self.shared.lock(caller.now_ns());
            if volume.lookup_child(self.number, name).map_err(error)?.is_some() {
                return Err(FsError::Exists);
            }
            match kind {
                NewNode::File => volume.create_regular_file(context, self.number, name, bits),
                NewNode::Directory => volume.create_directory(context, self.number, name, bits),
                NewNode::Symlink(target) => {
                    volume.create_symlink(context, self.number, name, target.as_bytes())
                }
                NewNode::Fifo => {
                    volume.create_special_inode(context, self.number, name, bits, SpecialInodeKind::Fifo)
                }
                NewNode::Socket => {
                    volume.create_special_inode(context, self.number, name, bits, SpecialInodeKind::Socket)
                }
                NewNode::Device(FileType::BlockDevice, number) => {
                    let kind = SpecialInodeKind::BlockDevice(device_number(number)?);
                    volume.create_special_inode(context, self.number, name, bits, kind)
                }
                NewNode::Device(_, number) => {
                    let kind = SpecialInodeKind::CharacterDevice(device_number(number)?);
                    volume.create_special_inode(context, self.number, name, bits, kind)
                }
            }
            .map_err(error)?
        };
        let node: Arc<dyn Node> = Ext4Node::get(&self.shared, information.number, information.mode);
        Ok(node)
    }

    fn remove(&self, caller: &Caller<'_>, name: &str, is_directory: bool) -> Result<(), FsError> {
        self.check_writable()?;
        let name = file_name(name)?;
        let outcome = {
            let mut volume = self.shared.lock(caller.now_ns());
            let child = volume.lookup_child(self.number, name).map_err(error)?.ok_or(FsError::NotFound)?;
            match (is_directory, child.is_directory()) {
                (true, false) => return Err(FsError::NotDirectory),
                (false, true) => return Err(FsError::IsDirectory),
                (true, true) => volume.remove_empty_directory(self.number, name),
                (false, false) => volume.unlink(self.number, name),
            }
            .map_err(error)?
        };
        self.released(caller, Some(outcome))
    }

    fn rename(
        &self,
        caller: &Caller<'_>,
        name: &str,
        new_parent: &dyn Node,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<(), FsError> {
        self.check_writable()?;
        let new_parent = self.same_mount(new_parent)?;
        let (name, new_name) = (file_name(name)?, file_name(new_name)?);
        let options = match mode {
            RenameMode::Replace => RenameOptions::REPLACE,
            RenameMode::NoReplace => RenameOptions::NO_REPLACE,
            RenameMode::Exchange => RenameOptions::EXCHANGE,
        };
        let outcome = {
            let mut volume = self.shared.lock(caller.now_ns());
            let options = if self.number == new_parent.number && mode != RenameMode::Exchange {
                hold_new_name(&mut volume, self.number, name, new_name)?.unwrap_or(options)
            } else {
                options
            };
            volume.rename(self.number, name, new_parent.number, new_name, options).map_err(error)?
        };
        self.released(caller, outcome.replaced)
    }

    fn link(&self, caller: &Caller<'_>, name: &str, target: &dyn Node) -> Result<(), FsError> {
        self.check_writable()?;
        let target = self.same_mount(target)?;
        let name = file_name(name)?;
        let mut volume = self.shared.lock(caller.now_ns());
        if volume.lookup_child(self.number, name).map_err(error)?.is_some() {
            return Err(FsError::Exists);
        }
        volume.hard_link(target.number, self.number, name).map(|_| ()).map_err(error)
    }

    fn read_link(&self, caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        if self.file_type != FileType::Symlink {
            return Err(FsError::InvalidArgument);
        }
        let mut volume = self.shared.lock(caller.now_ns());
        let size = volume.inode(self.number).map_err(error)?.size;
        let size =
            usize::try_from(size).ok().filter(|&size| size <= 4096).ok_or(FsError::Errno(Errno::EUCLEAN))?;
        let mut target = alloc::vec![0u8; size];
        let read = volume.read_inode(self.number, 0, &mut target).map_err(error)?;
        target.truncate(read);
        String::from_utf8(target).map(LinkTarget::Path).map_err(|_| FsError::Errno(Errno::EUCLEAN))
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        match self.file_type {
            FileType::Directory => Err(FsError::IsDirectory),
            FileType::Regular => {
                let read = self
                    .shared
                    .lock(caller.now_ns())
                    .read_inode(self.number, offset, buffer)
                    .map_err(error)?;
                self.mapped.overlay(offset, &mut buffer[..read]);
                Ok(read)
            }
            _ => Err(FsError::InvalidArgument),
        }
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        match self.file_type {
            FileType::Directory => return Err(FsError::IsDirectory),
            FileType::Regular => {}
            _ => return Err(FsError::InvalidArgument),
        }
        self.check_writable()?;
        if bytes.is_empty() {
            return Ok(0);
        }
        let mut volume = self.shared.lock(caller.now_ns());
        let length = writable_length(volume.statfs(), offset, bytes.len())?;
        volume.write_inode(self.number, offset, &bytes[..length]).map_err(error)?;
        self.mapped.update(offset, &bytes[..length]);
        Ok(length)
    }

    fn truncate(&self, caller: &Caller<'_>, size_bytes: u64) -> Result<(), FsError> {
        match self.file_type {
            FileType::Directory => return Err(FsError::IsDirectory),
            FileType::Regular => {}
            _ => return Err(FsError::InvalidArgument),
        }
        self.check_writable()?;
        self.shared.lock(caller.now_ns()).truncate_inode(self.number, size_bytes).map_err(error)?;
        self.mapped.truncate(size_bytes);
        Ok(())
    }

    fn is_mappable(&self) -> bool {
        self.file_type == FileType::Regular
    }

    fn is_page_cached(&self, index: u64) -> bool {
        self.mapped.contains(index)
    }

    fn page(&self, caller: &Caller<'_>, index: u64) -> Result<Option<crate::pages::Page>, FsError> {
        if self.file_type != FileType::Regular {
            return Err(FsError::NotSupported);
        }
        let offset = index.checked_mul(crate::pages::PAGE_SIZE as u64).ok_or(FsError::InvalidArgument)?;
        let mut volume = self.shared.lock(caller.now_ns());
        if offset >= volume.inode(self.number).map_err(error)?.size {
            return Ok(None);
        }
        if let Some(page) = self.mapped.get(index) {
            return Ok(Some(page));
        }
        let mut bytes = alloc::vec![0u8; crate::pages::PAGE_SIZE];
        volume.read_inode(self.number, offset, &mut bytes).map_err(error)?;
        let page = crate::pages::Page::new().map_err(|_| FsError::Errno(Errno::ENOMEM))?;
        page.write(0, &bytes);
        Ok(self.mapped.insert(index, page))
    }

    fn allocate(
        &self,
        caller: &Caller<'_>,
        offset: u64,
        length: u64,
        keeps_size: bool,
    ) -> Result<(), FsError> {
        if self.file_type != FileType::Regular {
            return Err(FsError::NotSupported);
        }
        self.check_writable()?;
        let options =
            if keeps_size { PreallocationOptions::KEEP_SIZE } else { PreallocationOptions::EXTEND_SIZE };
        self.shared
            .lock(caller.now_ns())
            .operate_inode_range(self.number, offset, length, RangeOperation::Allocate(options))
            .map_err(error)
    }

    fn punch_hole(&self, caller: &Caller<'_>, offset: u64, length: u64) -> Result<(), FsError> {
        if self.file_type != FileType::Regular {
            return Err(FsError::NotSupported);
        }
        self.check_writable()?;
        self.shared
            .lock(caller.now_ns())
            .operate_inode_range(self.number, offset, length, RangeOperation::PunchHole)
            .map_err(error)?;
        self.mapped.zero(offset, length);
        Ok(())
    }

    fn set_attributes(&self, caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        self.check_writable()?;
        let mut volume = self.shared.lock(caller.now_ns());
        let owner = match (changes.owner_user, changes.owner_group) {
            (None, None) => None,
            (user, group) => {
                let current = volume.inode(self.number).map_err(error)?;
                Some((user.unwrap_or(current.uid), group.unwrap_or(current.gid)))
            }
        };
        let permissions = match changes.permissions {
            Some(bits) => Some(FilePermissions::new((bits & 0o7777) as u16).map_err(error)?),
            None => None,
        };
        let update = InodeMetadataUpdate {
            permissions,
            owner,
            atime: changes.access_time_ns.map(timestamp),
            mtime: changes.modify_time_ns.map(timestamp),
            ..InodeMetadataUpdate::default()
        };
        volume.update_inode_metadata(self.number, update).map(|_| ()).map_err(error)
    }

    fn sync(&self, caller: &Caller<'_>) -> Result<(), FsError> {
        if self.shared.is_read_only {
            return Ok(());
        }
        let mut volume = self.shared.lock(caller.now_ns());
        self.write_back(&mut volume)?;
        volume.sync().map_err(error)
    }

    fn get_extended(&self, caller: &Caller<'_>, name: &str) -> Result<Vec<u8>, FsError> {
        let (namespace, name) = attribute_name(name)?;
        self.shared.lock(caller.now_ns()).get_xattr(self.number, namespace, name).map_err(attribute_error)
    }

    fn set_extended(
        &self,
        caller: &Caller<'_>,
        name: &str,
        value: &[u8],
        must_exist: Option<bool>,
    ) -> Result<(), FsError> {
        self.check_writable()?;
        let (namespace, name) = attribute_name(name)?;
        let mode = match must_exist {
            Some(true) => XattrSetMode::Replace,
            Some(false) => XattrSetMode::Create,
            None => XattrSetMode::Upsert,
        };
        self.shared
            .lock(caller.now_ns())
            .set_xattr(self.number, namespace, name, value, mode)
            .map_err(attribute_error)
    }

    fn list_extended(&self, caller: &Caller<'_>) -> Result<Vec<String>, FsError> {
        let names = self.shared.lock(caller.now_ns()).list_xattrs(self.number).map_err(error)?;
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let prefix = attribute_prefix(name.namespace)?;
                let rest = core::str::from_utf8(&name.name).ok()?;
                Some(alloc::format!("{prefix}{rest}"))
            })
            .collect())
    }

    fn remove_extended(&self, caller: &Caller<'_>, name: &str) -> Result<(), FsError> {
        self.check_writable()?;
        let (namespace, name) = attribute_name(name)?;
        self.shared.lock(caller.now_ns()).remove_xattr(self.number, namespace, name).map_err(attribute_error)
    }
}
