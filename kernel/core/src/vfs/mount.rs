//! The mount table: which filesystem answers for which directory.
//!
//! A mount point is a name in a directory, not a node: looking up that name
//! in that directory enters the mounted filesystem, whether or not the
//! directory has such an entry itself. This lets `/dev`, `/proc` and `/tmp`
//! appear over a read-only root image that lacks those directories; a
//! directory's listing shows such mount points after its own entries.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

mod copy;

use super::FsError;
use super::node::{Caller, DirectoryEntry, FileSystem, FileType, Metadata, Node};

/// Directory offsets from here on list mount points the directory itself
/// lacks; filesystems' own offsets stay below.
const MOUNT_POINT_OFFSETS: u64 = 1 << 62;
/// Offsets the VFS uses for `.` and `..` before the filesystem's entries.
const DOT_ENTRIES: u64 = 2;

/// What a mount allows besides writing (`MOUNT_ATTR_*` values, which
/// `fsmount` and `mount_setattr` take; `mount(2)`'s `MS_*` flags map to
/// them): kept per mount and shown in `/proc/mounts`.
pub mod attribute {
    /// Read-only (`MOUNT_ATTR_RDONLY`; the mount keeps it apart).
    pub const RDONLY: u32 = 0x1;
    /// Set-user-ID and set-group-ID bits are ignored.
    pub const NOSUID: u32 = 0x2;
    /// Device nodes cannot be opened.
    pub const NODEV: u32 = 0x4;
    /// Programs cannot be run.
    pub const NOEXEC: u32 = 0x8;
    /// The access-time policy field: relative (0), none, or strict.
    pub const ATIME: u32 = 0x70;
    /// Access times are updated when older than the last change (the
    /// default).
    pub const RELATIME: u32 = 0;
    /// Access times are never updated.
    pub const NOATIME: u32 = 0x10;
    /// Access times are updated on every access.
    pub const STRICTATIME: u32 = 0x20;
    /// Directories' access times are never updated.
    pub const NODIRATIME: u32 = 0x80;
    /// Symbolic links are not followed.
    pub const NOSYMFOLLOW: u32 = 0x20_0000;
    /// Every attribute but read-only (`MOUNT_ATTR_RDONLY`, which the
    /// mount keeps apart).
    pub const ALL: u32 = NOSUID | NODEV | NOEXEC | ATIME | NODIRATIME | NOSYMFOLLOW;

    /// The options `/proc/mounts` shows for `attributes`, after `rw` or
    /// `ro`, in Linux's order.
    pub fn options(attributes: u32) -> alloc::string::String {
        let mut text = alloc::string::String::new();
        for (bit, name) in [(NOSUID, ",nosuid"), (NODEV, ",nodev"), (NOEXEC, ",noexec")] {
            if attributes & bit != 0 {
                text.push_str(name);
            }
        }
        if attributes & ATIME == NOATIME {
            text.push_str(",noatime");
        }
        if attributes & NODIRATIME != 0 {
            text.push_str(",nodiratime");
        }
        if attributes & ATIME == RELATIME {
            text.push_str(",relatime");
        }
        if attributes & NOSYMFOLLOW != 0 {
            text.push_str(",nosymfollow");
        }
        text
    }
}

/// A mounted filesystem.
pub struct Mount {
    device: u64,
    filesystem: Arc<dyn FileSystem>,
    root: Arc<dyn Node>,
    source: String,
    /// The type it was mounted as (`tmpfs` for a ramfs mounted so).
    type_name: String,
    mount_point: Option<(Location, String)>,
    /// Changes refused through this mount (`MS_RDONLY`), whatever the
    /// filesystem allows.
    read_only: AtomicBool,
    /// [`attribute`] bits.
    attributes: AtomicU32,
}

impl core::fmt::Debug for Mount {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Mount").field("device", &self.device).field("type", &self.type_name).finish()
    }
}

impl Mount {
    /// The device number files of this mount report (`st_dev`).
    pub fn device(&self) -> u64 {
        self.device
    }

    /// Whether this mount sits in a directory of `other`.
    fn is_inside(&self, other: &Arc<Mount>) -> bool {
        self.mount_point.as_ref().is_some_and(|(directory, _)| Arc::ptr_eq(&directory.mount, other))
    }

    /// The mounted filesystem.
    pub fn filesystem(&self) -> &Arc<dyn FileSystem> {
        &self.filesystem
    }

    /// What was mounted (`/dev/vda`, `none`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The type it was mounted as, which `/proc/mounts` shows.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Whether changes are refused.
    pub fn is_read_only(&self) -> bool {
        self.filesystem.is_read_only() || self.read_only.load(Ordering::Relaxed)
    }

    /// Refuses changes through this mount, or allows them again where the
    /// filesystem does (`mount -o remount,ro`).
    pub fn set_read_only(&self, read_only: bool) -> Result<(), FsError> {
        if !read_only && self.filesystem.is_read_only() {
            return Err(FsError::ReadOnly);
        }
        self.read_only.store(read_only, Ordering::Relaxed);
        Ok(())
    }

    /// The directory and name it is mounted on; `None` for the root and
    /// for a mount not attached to the tree.
    pub fn mount_point(&self) -> Option<&(Location, String)> {
        self.mount_point.as_ref()
    }

    /// The mount's [`attribute`] bits.
    pub fn attributes(&self) -> u32 {
        self.attributes.load(Ordering::Relaxed)
    }

    /// Replaces the mount's [`attribute`] bits.
    pub fn set_attributes(&self, attributes: u32) {
        self.attributes.store(attributes & attribute::ALL, Ordering::Relaxed);
    }

    /// The options `/proc/mounts` shows: `rw` or `ro`, then the
    /// attributes.
    pub fn options(&self) -> String {
        let mut text = String::from(if self.is_read_only() { "ro" } else { "rw" });
        text.push_str(&attribute::options(self.attributes()));
        text
    }

    /// The `f_flags` `statfs` reports for the mount (`ST_*`).
    pub fn statfs_flags(&self) -> u64 {
        /// `ST_VALID`: the flags are meaningful.
        const VALID: u64 = 0x20;
        let attributes = self.attributes();
        let mut flags = VALID | u64::from(self.is_read_only());
        for (bit, flag) in [
            (attribute::NOSUID, 0x2),
            (attribute::NODEV, 0x4),
            (attribute::NOEXEC, 0x8),
            (attribute::NODIRATIME, 0x800),
            (attribute::NOSYMFOLLOW, 0x2000),
        ] {
            if attributes & bit != 0 {
                flags |= flag;
            }
        }
        flags |= match attributes & attribute::ATIME {
            attribute::NOATIME => 0x400,
            attribute::RELATIME => 0x1000,
            _ => 0,
        };
        flags
    }

    /// What mounting this again (a move, a bind) starts from.
    fn as_new(&self) -> NewMount<'_> {
        NewMount {
            filesystem: self.filesystem.clone(),
            root: self.root.clone(),
            source: &self.source,
            type_name: &self.type_name,
            read_only: self.read_only.load(Ordering::Relaxed),
            attributes: self.attributes(),
            device: Some(self.device),
        }
    }
}

/// What [`Vfs::mount_on`] mounts.
pub struct NewMount<'a> {
    /// The filesystem.
    pub filesystem: Arc<dyn FileSystem>,
    /// The directory of it that the mount shows: its root, or any
    /// directory for a bind mount.
    pub root: Arc<dyn Node>,
    /// What `/proc/mounts` names as mounted.
    pub source: &'a str,
    /// The type it is mounted as.
    pub type_name: &'a str,
    /// Whether changes are refused through the mount.
    pub read_only: bool,
    /// [`attribute`] bits.
    pub attributes: u32,
    /// The device number its files report: a bind mount keeps the one of
    /// the mount it shows; `None` takes a new one.
    pub device: Option<u64>,
}

impl core::fmt::Debug for NewMount<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("NewMount")
            .field("type", &self.type_name)
            .field("source", &self.source)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// A node as reached through the mount table: which mount, which node.
#[derive(Clone)]
pub struct Location {
    /// The mount the node was reached through.
    pub mount: Arc<Mount>,
    /// The node.
    pub node: Arc<dyn Node>,
}

impl core::fmt::Debug for Location {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Location")
            .field("device", &self.mount.device)
            .field("inode", &self.node.inode())
            .finish()
    }
}

impl Location {
    /// The root of `mount`.
    pub fn root_of(mount: &Arc<Mount>) -> Self {
        Location { mount: mount.clone(), node: mount.root.clone() }
    }

    /// Whether both name the same node of the same mount.
    pub fn is_same(&self, other: &Location) -> bool {
        Arc::ptr_eq(&self.mount, &other.mount) && self.node.inode() == other.node.inode()
    }

    /// Whether this is the root of its mount.
    pub fn is_mount_root(&self) -> bool {
        self.node.inode() == self.mount.root.inode()
    }

    /// The node's type.
    pub fn file_type(&self) -> FileType {
        self.node.file_type()
    }

    /// Whether the node is a directory.
    pub fn is_directory(&self) -> bool {
        self.file_type() == FileType::Directory
    }

    /// The node's metadata, with its mount's device number.
    pub fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = self.node.metadata(caller)?;
        metadata.device = self.mount.device;
        Ok(metadata)
    }

    /// Whether `mount` is this location's mount or one it sits in.
    fn mount_chain_holds(&self, mount: &Arc<Mount>) -> bool {
        let mut current = self.mount.clone();
        loop {
            if Arc::ptr_eq(&current, mount) {
                return true;
            }
            let Some((directory, _)) = current.mount_point.as_ref() else {
                return false;
            };
            let next = directory.mount.clone();
            current = next;
        }
    }

    /// Fails with `ReadOnly` if the mount refuses changes.
    pub fn check_writable(&self) -> Result<(), FsError> {
        if self.mount.is_read_only() { Err(FsError::ReadOnly) } else { Ok(()) }
    }
}

/// The virtual filesystem: the mount table and path resolution over it.
pub struct Vfs {
    mounts: Mutex<Vec<Arc<Mount>>>,
    root: Arc<Mount>,
    /// Shared with the copies made for mount namespaces, so that no two
    /// mounts anywhere get one device number.
    next_device: Arc<AtomicU64>,
    /// The machine's message channels (shared host directories), which
    /// mounts name by tag.
    channels: Mutex<Vec<Arc<dyn crate::device::MessageChannel>>>,
}

impl core::fmt::Debug for Vfs {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Vfs").field("mounts", &self.mounts.lock().len()).finish()
    }
}

/// The first device number of a mount: major 0, as Linux numbers
/// filesystems without a disk.
const FIRST_DEVICE: u64 = 0x10;

impl Vfs {
    /// A tree with `root` mounted at `/`, from `source`.
    pub fn new(root: Arc<dyn FileSystem>, source: &str) -> Arc<Vfs> {
        let mount = Arc::new(Mount {
            device: FIRST_DEVICE,
            root: root.root(),
            type_name: String::from(root.type_name()),
            filesystem: root,
            source: String::from(source),
            mount_point: None,
            read_only: AtomicBool::new(false),
            attributes: AtomicU32::new(attribute::RELATIME),
        });
        Arc::new(Vfs {
            mounts: Mutex::new(alloc::vec![mount.clone()]),
            root: mount,
            next_device: Arc::new(AtomicU64::new(FIRST_DEVICE + 1)),
            channels: Mutex::new(Vec::new()),
        })
    }

    /// Makes `channel` one that mounts can name by its tag.
    pub fn add_channel(&self, channel: Arc<dyn crate::device::MessageChannel>) {
        self.channels.lock().push(channel);
    }

    /// The message channel whose tag is `tag`.
    pub fn channel(&self, tag: &str) -> Option<Arc<dyn crate::device::MessageChannel>> {
        self.channels.lock().iter().find(|channel| channel.tag() == tag).cloned()
    }

    /// The root directory.
    pub fn root(&self) -> Location {
        Location::root_of(&self.root)
    }

    /// Mounts `filesystem` (from `source`) at the absolute `path`, whose
    /// parent must exist; the last component need not.
    pub fn mount(
        &self,
        caller: &Caller<'_>,
        path: &str,
        filesystem: Arc<dyn FileSystem>,
        source: &str,
    ) -> Result<(), FsError> {
        let type_name = String::from(filesystem.type_name());
        self.mount_as(caller, path, filesystem, source, &type_name)
    }

    /// [`Vfs::mount`], shown in `/proc/mounts` as of type `type_name`.
    pub fn mount_as(
        &self,
        caller: &Caller<'_>,
        path: &str,
        filesystem: Arc<dyn FileSystem>,
        source: &str,
        type_name: &str,
    ) -> Result<(), FsError> {
        if !path.starts_with('/') {
            return Err(FsError::InvalidArgument);
        }
        let parent = self.resolve_parent(caller, &self.root(), path)?;
        if !parent.is_normal_name() {
            return Err(FsError::Busy);
        }
        match self.child(caller, &parent.directory, &parent.name) {
            Ok(existing) if !existing.is_directory() => return Err(FsError::NotDirectory),
            Ok(_) | Err(FsError::NotFound) => {}
            Err(error) => return Err(error),
        }
        let root = filesystem.root();
        let new = NewMount {
            filesystem,
            root,
            source,
            type_name,
            read_only: false,
            attributes: attribute::RELATIME,
            device: None,
        };
        self.attach(new, parent.directory, parent.name);
        Ok(())
    }

    fn attach(&self, new: NewMount<'_>, directory: Location, name: String) {
        let mount = self.make_mount(new, Some((directory, name)));
        self.mounts.lock().push(mount);
    }

    fn make_mount(&self, new: NewMount<'_>, mount_point: Option<(Location, String)>) -> Arc<Mount> {
        Arc::new(Mount {
            device: new
                .device
                .or_else(|| new.filesystem.device_number())
                .unwrap_or_else(|| self.next_device.fetch_add(1, Ordering::Relaxed)),
            root: new.root,
            filesystem: new.filesystem,
            source: String::from(new.source),
            type_name: String::from(new.type_name),
            mount_point,
            read_only: AtomicBool::new(new.read_only),
            attributes: AtomicU32::new(new.attributes & attribute::ALL),
        })
    }

    /// A mount of `new` outside the tree (`fsmount`, `open_tree` with
    /// `OPEN_TREE_CLONE`): reachable only through descriptors until
    /// [`Vfs::attach_detached`] puts it somewhere; gone with its last
    /// descriptor.
    pub fn detached(&self, new: NewMount<'_>) -> Arc<Mount> {
        self.make_mount(new, None)
    }

    /// Whether `mount` is one of the tree's (not a detached one).
    pub fn is_attached(&self, mount: &Arc<Mount>) -> bool {
        Arc::ptr_eq(mount, &self.root) || self.mounts.lock().iter().any(|other| Arc::ptr_eq(other, mount))
    }

    /// Whether `mount` sits, at any depth, inside `outer`.
    pub fn is_beneath(&self, mount: &Arc<Mount>, outer: &Arc<Mount>) -> bool {
        mount.mount_point.as_ref().is_some_and(|(directory, _)| directory.mount_chain_holds(outer))
    }

    /// Mounts what the detached `mount` shows on the directory `target`
    /// (`move_mount` of an `fsmount` descriptor).
    pub fn attach_detached(
        &self,
        caller: &Caller<'_>,
        mount: &Arc<Mount>,
        target: &Location,
    ) -> Result<(), FsError> {
        if self.is_attached(mount) {
            return Err(FsError::InvalidArgument);
        }
        let (directory, name) = self.place_of(caller, target)?;
        self.attach(mount.as_new(), directory, name);
        Ok(())
    }

    /// Mounts `new` on the directory `target` (`mount(2)`): on top of
    /// what is mounted there already, as Linux stacks mounts.
    pub fn mount_on(&self, caller: &Caller<'_>, target: &Location, new: NewMount<'_>) -> Result<(), FsError> {
        let (directory, name) = self.place_of(caller, target)?;
        self.attach(new, directory, name);
        Ok(())
    }

    /// The directory and name through which `target` is reached: the
    /// mount point of a mount's root, else the entry in its parent.
    fn place_of(&self, caller: &Caller<'_>, target: &Location) -> Result<(Location, String), FsError> {
        if !target.is_directory() {
            return Err(FsError::NotDirectory);
        }
        if target.is_mount_root() {
            return target.mount.mount_point.clone().ok_or(FsError::Busy);
        }
        let parent = self.parent_of(target);
        if parent.is_same(target) {
            return Err(FsError::NotFound);
        }
        let name = self.name_in(caller, &parent, target.node.inode())?;
        Ok((parent, name))
    }

    /// Moves the mount whose root is `source` onto `target` (`MS_MOVE`).
    /// Open files keep working through the old place; a mount with mounts
    /// inside it stays (`EBUSY`), as does the root.
    pub fn move_mount(
        &self,
        caller: &Caller<'_>,
        source: &Location,
        target: &Location,
    ) -> Result<(), FsError> {
        let mount = self.mount_rooted_at(source)?;
        if self.mounts().iter().any(|other| other.is_inside(&mount)) {
            return Err(FsError::Busy);
        }
        let (directory, name) = self.place_of(caller, target)?;
        if Location::root_of(&mount).is_same(&directory) || directory.mount_chain_holds(&mount) {
            return Err(FsError::InvalidArgument);
        }
        let moved = mount.as_new();
        self.mounts.lock().retain(|other| !Arc::ptr_eq(other, &mount));
        self.attach(moved, directory, name);
        Ok(())
    }

    /// The mount whose root `location` is: not the machine's root
    /// (`EBUSY`), and `EINVAL` for a directory that is no mount's root.
    pub fn mount_rooted_at(&self, location: &Location) -> Result<Arc<Mount>, FsError> {
        if !location.is_mount_root() {
            return Err(FsError::InvalidArgument);
        }
        if Arc::ptr_eq(&location.mount, &self.root) {
            return Err(FsError::Busy);
        }
        let mounts = self.mounts.lock();
        mounts
            .iter()
            .find(|mount| Arc::ptr_eq(mount, &location.mount))
            .cloned()
            .ok_or(FsError::InvalidArgument)
    }

    /// Takes the mount whose root is `target` out of the tree (`umount2`).
    /// A mount that other mounts sit in, or that an open file, a working
    /// directory or a root directory still uses, is busy, unless
    /// `detach` (`MNT_DETACH`) takes it and everything inside it out now
    /// and leaves its filesystem to its last user. The filesystem is
    /// written out and let go once no mount shows it any more.
    pub fn unmount(&self, target: Location, detach: bool, now_ns: u64) -> Result<(), FsError> {
        let mount = self.mount_rooted_at(&target)?;
        drop(target);
        let mut mounts = self.mounts.lock();
        let mut gone: Vec<Arc<Mount>> = alloc::vec![mount.clone()];
        let mut index = 0;
        while index < gone.len() {
            let inside: Vec<Arc<Mount>> =
                mounts.iter().filter(|other| other.is_inside(&gone[index])).cloned().collect();
            gone.extend(inside);
            index += 1;
        }
        // The table, `mount` here, and `gone`'s first entry hold it.
        let is_busy = gone.len() > 1 || Arc::strong_count(&mount) > 3;
        if is_busy && !detach {
            return Err(FsError::Busy);
        }
        mounts.retain(|other| !gone.iter().any(|going| Arc::ptr_eq(other, going)));
        let mut still_shown: Vec<Arc<dyn FileSystem>> =
            mounts.iter().map(|other| other.filesystem.clone()).collect();
        drop(mounts);
        still_shown.extend(self.shown_elsewhere());
        for going in gone.iter().rev() {
            if still_shown.iter().any(|shown| Arc::ptr_eq(shown, &going.filesystem)) {
                continue;
            }
            if is_busy {
                going.filesystem.sync()?;
            } else {
                going.filesystem.unmount(now_ns)?;
            }
        }
        Ok(())
    }

    /// Every mount, in the order they were made.
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.mounts.lock().clone()
    }

    /// Makes everything written to every filesystem durable (`sync`); the
    /// first failure, after trying them all.
    pub fn sync_all(&self) -> Result<(), FsError> {
        let mut result = Ok(());
        for mount in self.mounts() {
            if let Err(error) = mount.filesystem().sync() {
                result = result.and(Err(error));
            }
        }
        result
    }

    /// Leaves every filesystem consistent as the machine stops, newest
    /// mount first; reports each that could not be.
    pub fn unmount_all(&self, now_ns: u64) {
        for mount in self.mounts().iter().rev() {
            if let Err(error) = mount.filesystem().unmount(now_ns) {
                log::warn!(
                    "{} ({}): cannot write it out: {error}",
                    mount.source(),
                    mount.filesystem().type_name()
                );
            }
        }
    }

    /// The newest mount on `name` in `directory`.
    pub fn mount_at(&self, directory: &Location, name: &str) -> Option<Arc<Mount>> {
        self.mounts
            .lock()
            .iter()
            .rev()
            .find(|mount| {
                mount
                    .mount_point
                    .as_ref()
                    .is_some_and(|(parent, mounted_name)| mounted_name == name && parent.is_same(directory))
            })
            .cloned()
    }

    /// `name` in `directory`: `.`, `..`, a mount point, or the directory's
    /// own entry. Symlinks are returned, not followed.
    pub fn child(&self, caller: &Caller<'_>, directory: &Location, name: &str) -> Result<Location, FsError> {
        if !directory.is_directory() {
            return Err(FsError::NotDirectory);
        }
        match name {
            "." => Ok(directory.clone()),
            // `..` never leaves the caller's root (`chroot`).
            ".." if directory.is_same(&self.root_for(caller)) => Ok(directory.clone()),
            ".." => Ok(self.parent_of(directory)),
            _ => {
                if let Some(mount) = self.mount_at(directory, name) {
                    return Ok(Location::root_of(&mount));
                }
                let node = directory.node.lookup(caller, name)?;
                Ok(Location { mount: directory.mount.clone(), node })
            }
        }
    }

    /// The root directory of `caller`: the one its process's `chroot` set,
    /// else the machine's.
    pub fn root_for(&self, caller: &Caller<'_>) -> Location {
        caller
            .process
            .and_then(|process| match caller.thread {
                Some(thread) => process.fs_of(thread).root_directory(),
                None => process.root_directory(),
            })
            .unwrap_or_else(|| self.root())
    }

    /// The directory `..` names: across mount points, and the root for the
    /// root itself.
    pub fn parent_of(&self, location: &Location) -> Location {
        if location.is_mount_root() {
            return match &location.mount.mount_point {
                Some((directory, _)) => directory.clone(),
                None => location.clone(),
            };
        }
        match location.node.parent() {
            Some(node) => Location { mount: location.mount.clone(), node },
            None => location.clone(),
        }
    }

    /// The absolute path of a directory, found by walking up through `..`
    /// and looking for each directory in its parent; `NotFound` if it was
    /// removed.
    pub fn path_of(&self, caller: &Caller<'_>, location: &Location) -> Result<String, FsError> {
        let mut names: Vec<String> = Vec::new();
        let mut current = location.clone();
        let root = self.root_for(caller);
        while !current.is_same(&root) {
            if current.is_mount_root() {
                let Some((directory, name)) = current.mount.mount_point.clone() else {
                    break;
                };
                names.push(name);
                current = directory;
                continue;
            }
            let parent = self.parent_of(&current);
            if parent.is_same(&current) {
                return Err(FsError::NotFound);
            }
            names.push(self.name_in(caller, &parent, current.node.inode())?);
            current = parent;
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(path)
    }

    /// The name under which `directory` lists `inode`.
    fn name_in(&self, caller: &Caller<'_>, directory: &Location, inode: u64) -> Result<String, FsError> {
        let mut offset = 0;
        while let Some(entry) = directory.node.read_directory(caller, offset)? {
            if entry.inode == inode {
                return Ok(entry.name);
            }
            offset = entry.next_offset;
        }
        Err(FsError::NotFound)
    }

    /// The entry of `directory` at `offset` (`.` at 0, `..` at 1, then the
    /// filesystem's entries, then mount points it lacks), or `None`.
    pub fn read_directory(
        &self,
        caller: &Caller<'_>,
        directory: &Location,
        offset: u64,
    ) -> Result<Option<DirectoryEntry>, FsError> {
        if !directory.is_directory() {
            return Err(FsError::NotDirectory);
        }
        let dot = |name: &str, location: &Location, next_offset| DirectoryEntry {
            name: String::from(name),
            inode: location.node.inode(),
            file_type: FileType::Directory,
            next_offset,
        };
        match offset {
            0 => return Ok(Some(dot(".", directory, 1))),
            1 => return Ok(Some(dot("..", &self.parent_of(directory), DOT_ENTRIES))),
            _ => {}
        }
        if offset < MOUNT_POINT_OFFSETS
            && let Some(mut entry) = directory.node.read_directory(caller, offset - DOT_ENTRIES)?
        {
            entry.next_offset = (entry.next_offset + DOT_ENTRIES).min(MOUNT_POINT_OFFSETS);
            return Ok(Some(entry));
        }
        let index = offset.saturating_sub(MOUNT_POINT_OFFSETS) as usize;
        let mut extra: Vec<(String, u64)> = Vec::new();
        for mount in self.mounts() {
            let Some((parent, name)) = &mount.mount_point else {
                continue;
            };
            if parent.is_same(directory)
                && !extra.iter().any(|(known, _)| known == name)
                && directory.node.lookup(caller, name).is_err()
            {
                extra.push((name.clone(), mount.root.inode()));
            }
        }
        Ok(extra.into_iter().nth(index).map(|(name, inode)| DirectoryEntry {
            name,
            inode,
            file_type: FileType::Directory,
            next_offset: MOUNT_POINT_OFFSETS + index as u64 + 1,
        }))
    }

    /// Whether some mount sits on `name` in `directory` (it cannot be
    /// removed or renamed then), or `location` is a mount's root.
    pub fn is_mount_point(&self, directory: &Location, name: &str) -> bool {
        self.mount_at(directory, name).is_some()
    }
}
