//! The descriptor-based mount calls: `fsopen`, `fsconfig`, `fsmount`,
//! `fspick`, `open_tree` and `move_mount`.
//!
//! `fsopen` gives a filesystem context ([`FsContext`]), a descriptor that
//! collects a new filesystem's source and options (`fsconfig`) until
//! `FSCONFIG_CMD_CREATE` makes the filesystem; `fsmount` then makes a
//! mount of it that is attached nowhere, named by a descriptor, which
//! `move_mount` puts on a directory. `fspick` gives a context for a
//! mounted filesystem, whose flags `FSCONFIG_CMD_RECONFIGURE` changes.
//! `open_tree` names a directory, or (`OPEN_TREE_CLONE`) makes a detached
//! bind mount of it. Options other than the source and the generic
//! superblock flags are kept as the comma-joined text `mount(2)` would
//! pass, with Linux's limits for filesystems that take options as text.

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use spin::Mutex;

use super::files::{caller, file};
use super::mounts::{new_filesystem, read_text};
use super::paths::{install, locate, read_path};
use super::{Context, Result};
use crate::credentials::capability;
use crate::errno::Errno;
use crate::linux::{AT_EMPTY_PATH, AT_NO_AUTOMOUNT, AT_SYMLINK_NOFOLLOW};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::mount::attribute;
use crate::vfs::special::SpecialFile;
use crate::vfs::waiters::WaiterList;
use crate::vfs::{FileObject, FileSystem, Location, Mount, NewMount, OpenFile};

/// `FSOPEN_CLOEXEC`, `FSMOUNT_CLOEXEC`, `FSPICK_CLOEXEC`.
const CLOEXEC: u64 = 1;
/// `FSPICK_SYMLINK_NOFOLLOW`.
const FSPICK_SYMLINK_NOFOLLOW: u64 = 2;
/// `FSPICK_NO_AUTOMOUNT`.
const FSPICK_NO_AUTOMOUNT: u64 = 4;
/// `FSPICK_EMPTY_PATH`.
const FSPICK_EMPTY_PATH: u64 = 8;
/// `OPEN_TREE_CLONE`.
const OPEN_TREE_CLONE: u64 = 1;
/// `AT_RECURSIVE`: with `OPEN_TREE_CLONE`, the mounts inside too.
const AT_RECURSIVE: u64 = 0x8000;

/// `move_mount` flags.
mod move_flag {
    pub const F_SYMLINKS: u64 = 0x1;
    pub const F_AUTOMOUNTS: u64 = 0x2;
    pub const F_EMPTY_PATH: u64 = 0x4;
    pub const T_SYMLINKS: u64 = 0x10;
    pub const T_AUTOMOUNTS: u64 = 0x20;
    pub const T_EMPTY_PATH: u64 = 0x40;
    pub const SET_GROUP: u64 = 0x100;
    pub const BENEATH: u64 = 0x200;
    pub const KNOWN: u64 = F_SYMLINKS
        | F_AUTOMOUNTS
        | F_EMPTY_PATH
        | T_SYMLINKS
        | T_AUTOMOUNTS
        | T_EMPTY_PATH
        | SET_GROUP
        | BENEATH;
}

/// `fsconfig` commands.
mod command {
    pub const SET_FLAG: u64 = 0;
    pub const SET_STRING: u64 = 1;
    pub const SET_BINARY: u64 = 2;
    pub const SET_PATH: u64 = 3;
    pub const SET_PATH_EMPTY: u64 = 4;
    pub const SET_FD: u64 = 5;
    pub const CREATE: u64 = 6;
    pub const RECONFIGURE: u64 = 7;
    pub const CREATE_EXCL: u64 = 8;
}

/// The longest key or string value `fsconfig` reads, NUL included.
const PARAMETER_BYTES: usize = 256;
/// The largest binary value.
const BINARY_BYTES: u64 = 1024 * 1024;
/// The most option text a context collects (a page, less the two bytes
/// Linux keeps for a separator and the NUL).
const OPTION_TEXT_BYTES: usize = 4096 - 2;

/// Superblock flags every filesystem takes by name: whether each sets
/// (`true`) or clears its flag, and whether it is read-only's.
const SUPERBLOCK_FLAGS: [(&str, bool); 9] = [
    ("dirsync", true),
    ("lazytime", true),
    ("mand", true),
    ("ro", true),
    ("sync", true),
    ("async", false),
    ("nolazytime", false),
    ("nomand", false),
    ("rw", false),
];

/// Where a context is in its life.
enum Phase {
    /// Taking parameters for a new filesystem.
    Creating,
    /// The filesystem is made; `fsmount` can mount it.
    Created(Arc<dyn FileSystem>, String),
    /// Making it failed: the context is good for nothing more.
    Failed,
    /// Taking parameters for a mounted filesystem (`fspick`).
    Reconfiguring(Arc<Mount>),
}

struct State {
    phase: Phase,
    source: Option<String>,
    options: String,
    /// Read-only asked for (`ro`) or against (`rw`); none: not said.
    read_only: Option<bool>,
}

/// A filesystem context: what `fsopen` and `fspick` return.
pub struct FsContext {
    type_name: String,
    state: Mutex<State>,
    waiters: WaiterList,
}

impl FsContext {
    fn new(type_name: String, phase: Phase) -> Arc<FsContext> {
        let state = State { phase, source: None, options: String::new(), read_only: None };
        Arc::new(FsContext { type_name, state: Mutex::new(state), waiters: WaiterList::new() })
    }
}

impl SpecialFile for FsContext {
    fn name(&self) -> String {
        String::from("anon_inode:[fscontext]")
    }

    fn poll(&self) -> u16 {
        0
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A parameter's value, as `fsconfig` passes it.
enum Value {
    Flag,
    Text(String),
    Other,
}

fn may_mount(context: Context<'_>) -> core::result::Result<(), Errno> {
    let mounts = context.process.namespaces().mount;
    if context.process.state.lock().credentials.has_capability_in(mounts.owner(), capability::SYS_ADMIN) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The filesystem context descriptor `raw` is (`EINVAL` for another
/// kind of file, as Linux answers).
fn context_of(context: Context<'_>, raw: u64) -> core::result::Result<Arc<FsContext>, Errno> {
    let file = file(context, raw)?;
    let special = file.special().ok_or(Errno::EINVAL)?.clone();
    let any: Arc<dyn Any + Send + Sync> = special;
    any.downcast::<FsContext>().map_err(|_| Errno::EINVAL)
}

fn install_context(context: Context<'_>, fs_context: Arc<FsContext>, close_on_exec: bool) -> Result {
    let file = OpenFile::new(FileObject::Special(fs_context), flags::O_RDWR);
    install(context, file, close_on_exec)
}

/// An `O_PATH` descriptor of `location`.
fn install_path(context: Context<'_>, location: Location, close_on_exec: bool) -> Result {
    let data = location.node.clone();
    let object = FileObject::Node { location, data, name: None };
    install(context, OpenFile::new(object, flags::O_PATH), close_on_exec)
}

/// `fsopen(type, flags)`.
pub(super) fn fsopen(context: Context<'_>, type_name: u64, open_flags: u64) -> Result {
    may_mount(context)?;
    if open_flags & !CLOEXEC != 0 {
        return Err(Errno::EINVAL.into());
    }
    let type_name = read_text(context, type_name)?;
    if !crate::fs::is_known_type(&type_name) {
        return Err(Errno::ENODEV.into());
    }
    install_context(context, FsContext::new(type_name, Phase::Creating), open_flags & CLOEXEC != 0)
}

/// `fspick(dirfd, path, flags)`: a context for the filesystem mounted at
/// the path.
pub(super) fn fspick(context: Context<'_>, dirfd: u64, path: u64, pick_flags: u64) -> Result {
    may_mount(context)?;
    if pick_flags & !(CLOEXEC | FSPICK_SYMLINK_NOFOLLOW | FSPICK_NO_AUTOMOUNT | FSPICK_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let path = read_path(context, path)?;
    let at_flags = if pick_flags & FSPICK_EMPTY_PATH != 0 { AT_EMPTY_PATH } else { 0 };
    let follow = pick_flags & FSPICK_SYMLINK_NOFOLLOW == 0;
    let location = locate(context, dirfd, &path, at_flags, follow)?;
    if !location.is_mount_root() {
        return Err(Errno::EINVAL.into());
    }
    let type_name = String::from(location.mount.type_name());
    let fs_context = FsContext::new(type_name, Phase::Reconfiguring(location.mount.clone()));
    install_context(context, fs_context, pick_flags & CLOEXEC != 0)
}

/// `fsconfig(fd, command, key, value, aux)`.
pub(super) fn fsconfig(
    context: Context<'_>,
    fd: u64,
    command: u64,
    key: u64,
    value: u64,
    aux: u64,
) -> Result {
    let aux = aux as i32;
    if fd as i32 >= 0 {
        check_arguments(command, key, value, aux)?;
    } else {
        return Err(Errno::EINVAL.into());
    }
    let fs_context = context_of(context, fd)?;
    match command {
        command::CREATE | command::CREATE_EXCL => return create(context, &fs_context),
        command::RECONFIGURE => return reconfigure(&fs_context),
        _ => {}
    }
    let user = User::new(context.machine);
    let key_bytes = user.read_c_string(key, PARAMETER_BYTES).map_err(too_long_is_invalid)?;
    let key = String::from_utf8(key_bytes).map_err(|_| Errno::EINVAL)?;
    let value = match command {
        command::SET_FLAG => Value::Flag,
        command::SET_STRING => {
            let bytes = user.read_c_string(value, PARAMETER_BYTES).map_err(too_long_is_invalid)?;
            Value::Text(String::from_utf8(bytes).map_err(|_| Errno::EINVAL)?)
        }
        command::SET_BINARY => {
            let mut bytes = alloc::vec![0; aux as usize];
            user.read_into(value, &mut bytes)?;
            Value::Other
        }
        command::SET_PATH | command::SET_PATH_EMPTY => {
            read_path(context, value)?;
            Value::Other
        }
        _ => {
            // SET_FD: the descriptor must be open.
            file(context, aux as u32 as u64)?;
            Value::Other
        }
    };
    set_parameter(&fs_context, &key, value)
}

/// The checks of `fsconfig`'s arguments Linux makes before it looks at
/// the descriptor.
fn check_arguments(command: u64, key: u64, value: u64, aux: i32) -> core::result::Result<(), Errno> {
    let is_valid = match command {
        command::SET_FLAG => key != 0 && value == 0 && aux == 0,
        command::SET_STRING => key != 0 && value != 0 && aux == 0,
        command::SET_BINARY => key != 0 && value != 0 && aux > 0 && aux as u64 <= BINARY_BYTES,
        command::SET_PATH | command::SET_PATH_EMPTY => {
            key != 0 && value != 0 && (aux == crate::linux::AT_FDCWD || aux >= 0)
        }
        command::SET_FD => key != 0 && value == 0 && aux >= 0,
        command::CREATE | command::CREATE_EXCL | command::RECONFIGURE => key == 0 && value == 0 && aux == 0,
        _ => return Err(Errno::EOPNOTSUPP),
    };
    if is_valid { Ok(()) } else { Err(Errno::EINVAL) }
}

fn too_long_is_invalid(errno: Errno) -> Errno {
    if errno == Errno::ENAMETOOLONG { Errno::EINVAL } else { errno }
}

/// Applies one parameter: a superblock flag, the source, or an option
/// of the filesystem's text.
fn set_parameter(fs_context: &FsContext, key: &str, value: Value) -> Result {
    let mut state = fs_context.state.lock();
    if !matches!(state.phase, Phase::Creating | Phase::Reconfiguring(_)) {
        return Err(Errno::EBUSY.into());
    }
    if let Some((name, sets)) = SUPERBLOCK_FLAGS.iter().find(|(name, _)| *name == key) {
        if matches!(*name, "ro" | "rw") {
            state.read_only = Some(*sets);
        }
        return Ok(0);
    }
    let Value::Text(text) = value else {
        // Only flags and strings go into option text.
        return if matches!(value, Value::Flag) {
            append_option(&mut state, key, None)
        } else {
            Err(Errno::EINVAL.into())
        };
    };
    if key == "source" {
        if state.source.is_some() {
            return Err(Errno::EINVAL.into());
        }
        state.source = Some(text);
        return Ok(0);
    }
    append_option(&mut state, key, Some(&text))
}

fn append_option(state: &mut State, key: &str, value: Option<&str>) -> Result {
    if key.contains(',') || value.is_some_and(|value| value.contains(',')) {
        return Err(Errno::EINVAL.into());
    }
    let length = key.len() + value.map_or(0, |value| value.len() + 1);
    let separator = usize::from(!state.options.is_empty());
    if state.options.len() + separator + length > OPTION_TEXT_BYTES {
        return Err(Errno::EINVAL.into());
    }
    if separator != 0 {
        state.options.push(',');
    }
    state.options.push_str(key);
    if let Some(value) = value {
        state.options.push('=');
        state.options.push_str(value);
    }
    Ok(0)
}

/// `FSCONFIG_CMD_CREATE`: makes the filesystem from the parameters.
fn create(context: Context<'_>, fs_context: &FsContext) -> Result {
    let (source, options) = {
        let state = fs_context.state.lock();
        if !matches!(state.phase, Phase::Creating) {
            return Err(Errno::EBUSY.into());
        }
        (state.source.clone().unwrap_or_else(|| String::from("none")), state.options.clone())
    };
    may_mount(context)?;
    let made = new_filesystem(context, &fs_context.type_name, source, &options);
    let mut state = fs_context.state.lock();
    match made {
        Ok((filesystem, source)) => {
            state.phase = Phase::Created(filesystem, source);
            Ok(0)
        }
        Err(errno) => {
            state.phase = Phase::Failed;
            Err(errno.into())
        }
    }
}

/// `FSCONFIG_CMD_RECONFIGURE`: applies the parameters to the mounted
/// filesystem, then takes new ones.
fn reconfigure(fs_context: &FsContext) -> Result {
    let mut state = fs_context.state.lock();
    let Phase::Reconfiguring(mount) = &state.phase else {
        return Err(Errno::EBUSY.into());
    };
    if let Some(read_only) = state.read_only {
        mount.set_read_only(read_only)?;
    }
    state.read_only = None;
    state.options.clear();
    Ok(0)
}

/// `fsmount(fd, flags, attributes)`: a detached mount of the context's
/// filesystem, as an `O_PATH` descriptor of its root.
pub(super) fn fsmount(context: Context<'_>, fd: u64, mount_flags: u64, attributes: u64) -> Result {
    may_mount(context)?;
    let attributes = u32::try_from(attributes).map_err(|_| Errno::EINVAL)?;
    if mount_flags & !CLOEXEC != 0 || attributes & !(attribute::ALL | attribute::RDONLY) != 0 {
        return Err(Errno::EINVAL.into());
    }
    if !matches!(
        attributes & attribute::ATIME,
        attribute::RELATIME | attribute::NOATIME | attribute::STRICTATIME
    ) {
        return Err(Errno::EINVAL.into());
    }
    let raw = fd as i32;
    if raw < 0 {
        return Err(Errno::EBADF.into());
    }
    let fs_context = context_of(context, fd)?;
    let state = fs_context.state.lock();
    let (filesystem, source) = match &state.phase {
        Phase::Created(filesystem, source) => (filesystem, source),
        // A context for a mounted filesystem has one, but is not for
        // mounting; the others have none yet.
        Phase::Reconfiguring(_) => return Err(Errno::EBUSY.into()),
        Phase::Creating | Phase::Failed => return Err(Errno::EINVAL.into()),
    };
    let new = NewMount {
        filesystem: filesystem.clone(),
        root: filesystem.root(),
        source,
        type_name: &fs_context.type_name,
        read_only: attributes & attribute::RDONLY != 0 || state.read_only == Some(true),
        attributes: attributes & attribute::ALL,
        device: None,
    };
    let mount = context.process.vfs().detached(new);
    drop(state);
    install_path(context, Location::root_of(&mount), mount_flags & CLOEXEC != 0)
}

/// `open_tree(dirfd, path, flags)`: the directory as an `O_PATH`
/// descriptor or, with `OPEN_TREE_CLONE`, a detached bind mount of it.
pub(super) fn open_tree(context: Context<'_>, dirfd: u64, path: u64, tree_flags: u64) -> Result {
    open_tree_attr(context, dirfd, path, tree_flags, 0, 0)
}

/// `open_tree_attr(dirfd, path, flags, attributes, size)`: `open_tree`,
/// with attributes changed on the clone as `mount_setattr` would.
pub(super) fn open_tree_attr(
    context: Context<'_>,
    dirfd: u64,
    path: u64,
    tree_flags: u64,
    attributes: u64,
    size: u64,
) -> Result {
    let known = AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW | OPEN_TREE_CLONE;
    let close_on_exec = u64::from(flags::O_CLOEXEC);
    if tree_flags & !(known | close_on_exec) != 0
        || (tree_flags & AT_RECURSIVE != 0 && tree_flags & OPEN_TREE_CLONE == 0)
    {
        return Err(Errno::EINVAL.into());
    }
    let is_cloning = tree_flags & OPEN_TREE_CLONE != 0;
    let change = if attributes == 0 {
        None
    } else if is_cloning {
        Some(read_mount_attr(context, attributes, size)?)
    } else {
        return Err(Errno::EINVAL.into());
    };
    if is_cloning {
        may_mount(context)?;
    }
    let path = read_path(context, path)?;
    let follow = tree_flags & AT_SYMLINK_NOFOLLOW == 0;
    let location = locate(context, dirfd, &path, tree_flags & AT_EMPTY_PATH, follow)?;
    let is_close_on_exec = tree_flags & close_on_exec != 0;
    if !is_cloning {
        return install_path(context, location, is_close_on_exec);
    }
    if !location.is_directory() {
        // rosv's mount points are directories.
        return Err(Errno::ENOTDIR.into());
    }
    let shown = &location.mount;
    let new = NewMount {
        filesystem: shown.filesystem().clone(),
        root: location.node.clone(),
        source: shown.source(),
        type_name: shown.type_name(),
        read_only: shown.is_read_only() && !shown.filesystem().is_read_only(),
        attributes: shown.attributes(),
        device: Some(shown.device()),
    };
    let mount = context.process.vfs().detached(new);
    if let Some(change) = change {
        change.apply(&mount);
    }
    install_path(context, Location::root_of(&mount), is_close_on_exec)
}

/// `struct mount_attr`'s first version's size.
const MOUNT_ATTR_SIZE: u64 = 32;
/// `MOUNT_ATTR_IDMAP`: files' owners mapped through a user namespace.
const ATTRIBUTE_IDMAP: u64 = 0x10_0000;
/// The propagation types `mount_attr.propagation` may name (`MS_UNBINDABLE`,
/// `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED`).
const PROPAGATION_TYPES: u64 = (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20);

/// A change of a mount's attributes (`struct mount_attr`), checked.
struct AttributeChange {
    set: u32,
    clear: u32,
}

impl AttributeChange {
    fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    fn apply(&self, mount: &Mount) {
        let attributes = (mount.attributes() & !self.clear) | self.set;
        mount.set_attributes(attributes);
        if self.set & attribute::RDONLY != 0 {
            let _ = mount.set_read_only(true);
        } else if self.clear & attribute::RDONLY != 0 && !mount.filesystem().is_read_only() {
            let _ = mount.set_read_only(false);
        }
    }
}

/// Reads and checks a `struct mount_attr` of `size` bytes: `E2BIG` for
/// more than a page or for unknown fields that are not zero, `EINVAL` for
/// less than the first version or for values Linux refuses.
fn read_mount_attr(
    context: Context<'_>,
    address: u64,
    size: u64,
) -> core::result::Result<AttributeChange, Errno> {
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    if size < MOUNT_ATTR_SIZE {
        return Err(Errno::EINVAL);
    }
    let mut bytes = alloc::vec![0u8; size as usize];
    User::new(context.machine).read_into(address, &mut bytes)?;
    if bytes[MOUNT_ATTR_SIZE as usize..].iter().any(|byte| *byte != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |index: usize| {
        let mut field = [0u8; 8];
        field.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
        u64::from_le_bytes(field)
    };
    let (set, clear, propagation) = (word(0), word(1), word(2));
    if propagation & !PROPAGATION_TYPES != 0 || propagation.count_ones() > 1 {
        return Err(Errno::EINVAL);
    }
    let valid = u64::from(attribute::ALL | attribute::RDONLY) | ATTRIBUTE_IDMAP;
    if (set | clear) & !valid != 0 {
        return Err(Errno::EINVAL);
    }
    if set & ATTRIBUTE_IDMAP != 0 {
        // One user namespace: nothing to map owners through.
        return Err(Errno::EINVAL);
    }
    let atime = u64::from(attribute::ATIME);
    let (set, mut clear) = (set as u32, clear as u32);
    if clear as u64 & atime != 0 {
        // The access-time policy is replaced whole.
        let policy = set & attribute::ATIME;
        if clear as u64 & atime != atime
            || !matches!(policy, attribute::RELATIME | attribute::NOATIME | attribute::STRICTATIME)
        {
            return Err(Errno::EINVAL);
        }
    } else if set as u64 & atime != 0 {
        return Err(Errno::EINVAL);
    }
    clear &= !(ATTRIBUTE_IDMAP as u32);
    Ok(AttributeChange { set, clear })
}

/// `mount_setattr(dirfd, path, flags, attributes, size)`: changes the
/// attributes of the mount whose root the path names (one namespace:
/// propagation changes have nothing to propagate).
pub(super) fn mount_setattr(
    context: Context<'_>,
    dirfd: u64,
    path: u64,
    at_flags: u64,
    attributes: u64,
    size: u64,
) -> Result {
    if at_flags & !(AT_EMPTY_PATH | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let change = read_mount_attr(context, attributes, size)?;
    may_mount(context)?;
    let path = read_path(context, path)?;
    let follow = at_flags & AT_SYMLINK_NOFOLLOW == 0;
    let location = locate(context, dirfd, &path, at_flags & AT_EMPTY_PATH, follow)?;
    if !location.is_mount_root() {
        return Err(Errno::EINVAL.into());
    }
    if change.is_empty() {
        return Ok(0);
    }
    change.apply(&location.mount);
    if at_flags & AT_RECURSIVE != 0 {
        let vfs = &context.process.vfs();
        for mount in vfs.mounts() {
            if !core::ptr::eq(&*mount, &*location.mount) && vfs.is_beneath(&mount, &location.mount) {
                change.apply(&mount);
            }
        }
    }
    Ok(0)
}

/// `move_mount(from_dirfd, from_path, to_dirfd, to_path, flags)`: attaches
/// a detached mount, or moves a mounted one, to a directory.
pub(super) fn move_mount(
    context: Context<'_>,
    from_dirfd: u64,
    from_path: u64,
    to_dirfd: u64,
    to_path: u64,
    move_flags: u64,
) -> Result {
    may_mount(context)?;
    if move_flags & !move_flag::KNOWN != 0 {
        return Err(Errno::EINVAL.into());
    }
    if move_flags & (move_flag::SET_GROUP | move_flag::BENEATH) != 0 {
        // One mount namespace without peer groups; no mount sits beneath
        // another's top in rosv's table.
        return Err(Errno::EINVAL.into());
    }
    let from_path = read_path(context, from_path)?;
    let from_at = if move_flags & move_flag::F_EMPTY_PATH != 0 { AT_EMPTY_PATH } else { 0 };
    let from = locate(context, from_dirfd, &from_path, from_at, move_flags & move_flag::F_SYMLINKS != 0)?;
    let to_path = read_path(context, to_path)?;
    let to_at = if move_flags & move_flag::T_EMPTY_PATH != 0 { AT_EMPTY_PATH } else { 0 };
    let to = locate(context, to_dirfd, &to_path, to_at, move_flags & move_flag::T_SYMLINKS != 0)?;
    let caller = caller(context);
    let vfs = &context.process.vfs();
    if !from.is_mount_root() {
        return Err(Errno::EINVAL.into());
    }
    if vfs.is_attached(&from.mount) {
        vfs.move_mount(&caller, &from, &to)?;
    } else {
        vfs.attach_detached(&caller, &from.mount, &to)?;
    }
    Ok(0)
}
