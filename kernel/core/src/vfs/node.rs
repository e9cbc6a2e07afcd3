//! What a filesystem implements: [`FileSystem`] and its [`Node`]s.
//!
//! A node is one file, directory, symlink or device, shared as
//! `Arc<dyn Node>`. Every operation has a default that fails the way Linux
//! does for an object that lacks it, so a filesystem implements only what
//! its nodes support. Operations receive the [`Caller`]: the clock and the
//! console come from its machine, `/proc/self` and `/dev/urandom` from its
//! process.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::FsError;
use super::mount::Location;
use crate::machine::Machine;
use crate::process::{Process, Thread};

/// Who asks for a filesystem operation.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The hardware.
    pub machine: &'a dyn Machine,
    /// The calling process; `None` for the kernel itself.
    pub process: Option<&'a Process>,
    /// The calling thread, whose signals interrupt blocking operations.
    pub thread: Option<&'a Thread>,
    /// Credentials that permission checks use instead of the process's
    /// (`access` checks with the real ids).
    pub acting_as: Option<&'a crate::credentials::Credentials>,
    /// Limits the path walks made for this caller keep to (`openat2`).
    pub scope: Option<&'a super::path::Scope>,
}

impl core::fmt::Debug for Caller<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Caller").field("has_process", &self.process.is_some()).finish()
    }
}

impl<'a> Caller<'a> {
    /// The kernel, outside any process.
    pub fn kernel(machine: &'a dyn Machine) -> Self {
        Caller { machine, process: None, thread: None, acting_as: None, scope: None }
    }

    /// `thread` of `process`, calling through `machine`.
    pub fn thread(machine: &'a dyn Machine, process: &'a Process, thread: &'a Thread) -> Self {
        Caller { machine, process: Some(process), thread: Some(thread), acting_as: None, scope: None }
    }

    /// Whether a signal waits for the calling thread: blocking operations
    /// return `Interrupted`.
    pub fn is_interrupted(&self) -> bool {
        self.thread.is_some_and(Thread::has_deliverable_signal)
    }

    /// The wall-clock time, for file times.
    pub fn now_ns(&self) -> u64 {
        self.machine.realtime_ns()
    }
}

/// The type of a node (the `S_IFMT` bits of its mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharacterDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// An anonymous object (eventfd, epoll instance): Linux's anonymous
    /// inodes carry no type bits.
    Anonymous,
}

impl FileType {
    /// The `S_IFMT` bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Fifo => 0o010000,
            FileType::CharacterDevice => 0o020000,
            FileType::Directory => 0o040000,
            FileType::BlockDevice => 0o060000,
            FileType::Regular => 0o100000,
            FileType::Symlink => 0o120000,
            FileType::Socket => 0o140000,
            FileType::Anonymous => 0,
        }
    }

    /// The `d_type` of a directory entry.
    pub fn directory_entry_type(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharacterDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
            FileType::Anonymous => 0,
        }
    }
}

/// What `stat` reports of a node. The VFS fills in `device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// The inode number.
    pub inode: u64,
    /// The type.
    pub file_type: FileType,
    /// Permission bits (`0o7777`).
    pub permissions: u32,
    /// Number of names (hard links).
    pub link_count: u64,
    /// The owning user (`st_uid`).
    pub owner_user: u32,
    /// The owning group (`st_gid`).
    pub owner_group: u32,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The preferred I/O size.
    pub block_size_bytes: u64,
    /// Storage used, in 512-byte units.
    pub blocks: u64,
    /// The device the node lives on (`st_dev`), as `major << 8 | minor`.
    pub device: u64,
    /// The device a device node stands for (`st_rdev`).
    pub represented_device: u64,
    /// Last access, nanoseconds since the epoch.
    pub access_time_ns: u64,
    /// Last change of the contents.
    pub modify_time_ns: u64,
    /// Last change of the contents or metadata.
    pub change_time_ns: u64,
}

impl Metadata {
    /// Metadata of a node of `file_type` with `permissions`, all else zero
    /// or one.
    pub fn new(inode: u64, file_type: FileType, permissions: u32) -> Self {
        Metadata {
            inode,
            file_type,
            permissions,
            link_count: 1,
            owner_user: 0,
            owner_group: 0,
            size_bytes: 0,
            block_size_bytes: 4096,
            blocks: 0,
            device: 0,
            represented_device: 0,
            access_time_ns: 0,
            modify_time_ns: 0,
            change_time_ns: 0,
        }
    }

    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.file_type.mode_bits() | self.permissions
    }
}

/// One entry a directory lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The name.
    pub name: String,
    /// The inode it names.
    pub inode: u64,
    /// Its type.
    pub file_type: FileType,
    /// The offset that continues after this entry.
    pub next_offset: u64,
}

/// A directory's listing as read when a reader started at offset 0, which
/// later offsets index (for filesystems that read a whole directory at
/// once: ext4, NFS, 9P).
#[derive(Debug, Default)]
pub struct Listing {
    entries: spin::Mutex<Vec<DirectoryEntry>>,
}

impl Listing {
    /// The entry at `offset`; at offset 0, `read` lists the directory
    /// anew first.
    pub fn entry(
        &self,
        offset: u64,
        read: impl FnOnce() -> Result<Vec<DirectoryEntry>, FsError>,
    ) -> Result<Option<DirectoryEntry>, FsError> {
        if offset == 0 {
            let entries = read()?;
            *self.entries.lock() = entries;
        }
        let entries = self.entries.lock();
        Ok(usize::try_from(offset).ok().and_then(|index| entries.get(index)).cloned())
    }
}

/// What `create` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewNode<'a> {
    /// An empty regular file.
    File,
    /// An empty directory.
    Directory,
    /// A symlink to this target.
    Symlink(&'a str),
    /// A socket node, which a local socket's `bind` makes.
    Socket,
    /// A named pipe (`mkfifo`).
    Fifo,
    /// A character or block device node naming device `number` (in
    /// Linux's `dev_t` encoding).
    Device(FileType, u64),
}

/// How `rename` treats an existing target (`renameat2` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace it.
    Replace,
    /// Fail with `Exists` (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap the two (`RENAME_EXCHANGE`); the target must exist.
    Exchange,
}

/// Attribute changes (`chmod`, `chown`, `utimensat`); `None` leaves one
/// alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttributeChanges {
    /// New permission bits.
    pub permissions: Option<u32>,
    /// New owning user.
    pub owner_user: Option<u32>,
    /// New owning group.
    pub owner_group: Option<u32>,
    /// New access time.
    pub access_time_ns: Option<u64>,
    /// New modification time.
    pub modify_time_ns: Option<u64>,
    /// The change is an access the kernel records (a read), which leaves
    /// the change time as it is; `utimensat` and the others update it.
    pub keeps_change_time: bool,
}

/// Where a symlink leads.
#[derive(Debug, Clone)]
pub enum LinkTarget {
    /// A path, resolved from the link's directory.
    Path(String),
    /// An object already found (`/proc/self/fd/N`, `/proc/self/cwd`), which
    /// following the link reaches even if its path changed; `readlink`
    /// shows `text`.
    Object {
        /// The object.
        location: Location,
        /// Its path when the link was read.
        text: String,
    },
}

impl LinkTarget {
    /// What `readlink` shows.
    pub fn text(&self) -> &str {
        match self {
            LinkTarget::Path(path) => path,
            LinkTarget::Object { text, .. } => text,
        }
    }
}

/// One file, directory, symlink or device of a filesystem.
pub trait Node: Send + Sync + Any {
    /// The inode number, unique within the filesystem.
    fn inode(&self) -> u64;

    /// The type.
    fn file_type(&self) -> FileType;

    /// The node's metadata.
    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError>;

    /// The node itself, for filesystems that downcast their own nodes
    /// (`rename`, `link`).
    fn as_any(&self) -> &dyn Any;

    /// Directory: the child called `name` (never `.` or `..`).
    fn lookup(&self, _caller: &Caller<'_>, _name: &str) -> Result<Arc<dyn Node>, FsError> {
        Err(FsError::NotDirectory)
    }

    /// Directory: its parent, or `None` at the filesystem's root.
    fn parent(&self) -> Option<Arc<dyn Node>> {
        None
    }

    /// Directory: the entry at `offset` or the first after it, `None` at
    /// the end. Offsets are the filesystem's cookies, stable while entries
    /// come and go; 0 is the first entry (the VFS adds `.` and `..`).
    fn read_directory(&self, _caller: &Caller<'_>, _offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        Err(FsError::NotDirectory)
    }

    /// Directory: makes `name`.
    fn create(
        &self,
        _caller: &Caller<'_>,
        _name: &str,
        _kind: NewNode<'_>,
        _permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        Err(refusal(self.file_type()))
    }

    /// Directory: makes a regular file without a name (`O_TMPFILE`), which
    /// `link` may name later if `is_linkable`; filesystems without such
    /// files refuse (`EOPNOTSUPP`, as Linux's).
    fn create_temporary(
        &self,
        _caller: &Caller<'_>,
        _permissions: u32,
        _is_linkable: bool,
    ) -> Result<Arc<dyn Node>, FsError> {
        match self.file_type() {
            FileType::Directory => Err(FsError::NotSupported),
            _ => Err(FsError::NotDirectory),
        }
    }

    /// Directory: removes `name`, a directory (which must be empty) if
    /// `is_directory`, else anything but a directory.
    fn remove(&self, _caller: &Caller<'_>, _name: &str, _is_directory: bool) -> Result<(), FsError> {
        Err(refusal(self.file_type()))
    }

    /// Directory: moves `name` to `new_name` in `new_parent` (a directory
    /// of the same filesystem). The VFS has checked that a directory does
    /// not move into itself.
    fn rename(
        &self,
        _caller: &Caller<'_>,
        _name: &str,
        _new_parent: &dyn Node,
        _new_name: &str,
        _mode: RenameMode,
    ) -> Result<(), FsError> {
        Err(refusal(self.file_type()))
    }

    /// Directory: adds `name` for `target`, a non-directory node of the
    /// same filesystem.
    fn link(&self, _caller: &Caller<'_>, _name: &str, _target: &dyn Node) -> Result<(), FsError> {
        Err(refusal(self.file_type()))
    }

    /// Symlink: where it leads.
    fn read_link(&self, _caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        Err(FsError::InvalidArgument)
    }

    /// Reads at byte `offset`; returns the bytes read (0 at the end).
    fn read_at(&self, _caller: &Caller<'_>, _offset: u64, _buffer: &mut [u8]) -> Result<usize, FsError> {
        Err(no_data(self.file_type()))
    }

    /// Writes at byte `offset`; returns the bytes written.
    fn write_at(&self, _caller: &Caller<'_>, _offset: u64, _bytes: &[u8]) -> Result<usize, FsError> {
        Err(no_data(self.file_type()))
    }

    /// Writes at the end, atomically with respect to other appends; returns
    /// the bytes written and the offset after them.
    fn append(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<(usize, u64), FsError> {
        let end = self.metadata(caller)?.size_bytes;
        let written = self.write_at(caller, end, bytes)?;
        Ok((written, end + written as u64))
    }

    /// Regular file: whether its contents are kept in pages that
    /// [`Node::page`] hands out, so that `mmap` can map them.
    fn is_mappable(&self) -> bool {
        false
    }

    /// Regular file: its `F_SEAL_*` seals (`F_GET_SEALS`);
    /// `InvalidArgument` where files cannot be sealed.
    fn seals(&self) -> Result<u32, FsError> {
        Err(FsError::InvalidArgument)
    }

    /// Regular file: adds seals (`F_ADD_SEALS`); `NotPermitted` once it is
    /// sealed against more.
    fn add_seals(&self, _seals: u32) -> Result<(), FsError> {
        Err(FsError::InvalidArgument)
    }

    /// Regular file: whether page `index` of its contents is in memory now
    /// (`mincore`).
    fn is_page_cached(&self, _index: u64) -> bool {
        false
    }

    /// Regular file: a reference to the page of its contents that holds
    /// bytes `[index * 4096, (index + 1) * 4096)`, for mapping it: a store
    /// through a shared mapping is a store to the file, and every mapping
    /// of the page uses one frame. `None` past the end of the file;
    /// `NotSupported` when the contents are not kept in pages (`mmap` then
    /// copies them). Bytes past the end of the file read as zeroes.
    fn page(&self, _caller: &Caller<'_>, _index: u64) -> Result<Option<crate::pages::Page>, FsError> {
        Err(FsError::NotSupported)
    }

    /// Regular file: sets the size, zero-filling growth.
    fn truncate(&self, _caller: &Caller<'_>, _size_bytes: u64) -> Result<(), FsError> {
        Err(no_data(self.file_type()))
    }

    /// Regular file: it is about to be opened for writing (and truncated
    /// to nothing if `is_truncating`); a filesystem that keeps its
    /// contents elsewhere until written (an overlay's lower layer) makes
    /// them writable now, so that every mapping and descriptor of the open
    /// reaches the writable copy.
    fn prepare_for_write(&self, _caller: &Caller<'_>, _is_truncating: bool) -> Result<(), FsError> {
        Ok(())
    }

    /// Regular file: reserves storage for `length` bytes from `offset`
    /// (`fallocate`), growing the file unless `keeps_size`. `NotSupported`
    /// where storage is not reserved ahead (the VFS then only grows the
    /// file).
    fn allocate(
        &self,
        _caller: &Caller<'_>,
        _offset: u64,
        _length: u64,
        _keeps_size: bool,
    ) -> Result<(), FsError> {
        Err(FsError::NotSupported)
    }

    /// Regular file: frees the storage of `length` bytes from `offset`,
    /// which then read as zeros (`FALLOC_FL_PUNCH_HOLE`). `NotSupported`
    /// where storage cannot be freed (the VFS then writes zeros).
    fn punch_hole(&self, _caller: &Caller<'_>, _offset: u64, _length: u64) -> Result<(), FsError> {
        Err(FsError::NotSupported)
    }

    /// Changes permissions or times.
    fn set_attributes(&self, _caller: &Caller<'_>, _changes: AttributeChanges) -> Result<(), FsError> {
        Err(FsError::NotPermitted)
    }

    /// Makes written data durable.
    fn sync(&self, _caller: &Caller<'_>) -> Result<(), FsError> {
        Ok(())
    }

    /// A named pipe's buffer, which every open of the node shares.
    fn named_pipe(&self) -> Option<Arc<super::Pipe>> {
        None
    }

    /// For a device node that only names a device (made by `mknod`), the
    /// device's number: opening it opens that device of devfs.
    fn names_device(&self) -> Option<u64> {
        None
    }

    /// The value of extended attribute `name` (with its namespace);
    /// filesystems that store none have none (`ENODATA`).
    fn get_extended(&self, _caller: &Caller<'_>, _name: &str) -> Result<alloc::vec::Vec<u8>, FsError> {
        Err(FsError::Errno(crate::errno::Errno::ENODATA))
    }

    /// Sets extended attribute `name` to `value`: only if it exists with
    /// `must_exist` `Some(true)` (`XATTR_REPLACE`), only if it does not with
    /// `Some(false)` (`XATTR_CREATE`). The caller has checked the name and
    /// the permissions.
    fn set_extended(
        &self,
        _caller: &Caller<'_>,
        _name: &str,
        _value: &[u8],
        _must_exist: Option<bool>,
    ) -> Result<(), FsError> {
        Err(FsError::NotSupported)
    }

    /// The names of the extended attributes.
    fn list_extended(&self, _caller: &Caller<'_>) -> Result<alloc::vec::Vec<String>, FsError> {
        Ok(alloc::vec::Vec::new())
    }

    /// Removes extended attribute `name`.
    fn remove_extended(&self, _caller: &Caller<'_>, _name: &str) -> Result<(), FsError> {
        Err(FsError::Errno(crate::errno::Errno::ENODATA))
    }

    /// What an open of this node reads and writes, if not the node itself:
    /// procfs files are generated when they are opened.
    fn open(&self, _caller: &Caller<'_>) -> Result<Option<Arc<dyn Node>>, FsError> {
        Ok(None)
    }

    /// For a character device: the object an open by `caller` with
    /// `open_flags` reaches instead of the node (`/dev/tty`: the caller's
    /// controlling terminal), and the open's effect on the caller (a
    /// session leader acquires a terminal it opens).
    fn open_device(
        &self,
        _caller: &Caller<'_>,
        _open_flags: u32,
    ) -> Result<Option<Arc<dyn super::special::SpecialFile>>, FsError> {
        Ok(None)
    }

    /// Whether offsets mean anything (`lseek` on a terminal fails).
    fn is_seekable(&self) -> bool {
        true
    }

    /// Whether the node is a terminal (answers `TCGETS`).
    fn is_terminal(&self) -> bool {
        false
    }
}

/// The error a node without a directory operation gives: a directory that
/// refuses changes (procfs, devfs) says so, anything else is no directory.
fn refusal(file_type: FileType) -> FsError {
    if file_type == FileType::Directory { FsError::NotPermitted } else { FsError::NotDirectory }
}

/// The error a node without data operations gives.
fn no_data(file_type: FileType) -> FsError {
    if file_type == FileType::Directory { FsError::IsDirectory } else { FsError::InvalidArgument }
}

/// A mountable filesystem.
pub trait FileSystem: Send + Sync {
    /// The root directory.
    fn root(&self) -> Arc<dyn Node>;

    /// The type name `/proc/mounts` shows (`ramfs`, `proc`, ...).
    fn type_name(&self) -> &'static str;

    /// Whether every change is refused.
    fn is_read_only(&self) -> bool {
        false
    }

    /// Whether its files' data lives on storage outside memory (a disk, a
    /// host directory, a server): reads and writes of them count as
    /// storage I/O in `/proc/PID/io`.
    fn is_storage_backed(&self) -> bool {
        false
    }

    /// What `statfs` reports.
    fn statistics(&self) -> Statistics;

    /// The device number its files report (`st_dev`) when the filesystem
    /// chooses one (its open files that are no nodes report it too);
    /// `None`: each mount gets the next free one.
    fn device_number(&self) -> Option<u64> {
        None
    }

    /// Makes everything written durable (`sync`, `syncfs`).
    fn sync(&self) -> Result<(), FsError> {
        Ok(())
    }

    /// Writes everything out and leaves the storage consistent, as the
    /// machine stops at `now_ns`.
    fn unmount(&self, _now_ns: u64) -> Result<(), FsError> {
        self.sync()
    }
}

/// What `statfs` reports of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statistics {
    /// `f_type`, the filesystem's magic number.
    pub magic: u64,
    /// `f_bsize`.
    pub block_size_bytes: u64,
    /// `f_blocks`.
    pub blocks: u64,
    /// `f_bfree` and `f_bavail`.
    pub free_blocks: u64,
    /// `f_files`.
    pub files: u64,
    /// `f_ffree`.
    pub free_files: u64,
}
