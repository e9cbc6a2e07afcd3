//! Namespaces: the `CLONE_NEW*` flags of `unshare` and `clone`, `setns`,
//! and the `NS_GET_*` requests on a namespace file. The namespaces
//! themselves are [`crate::namespace`].
//!
//! Privilege follows Linux: a new user namespace needs none (past the
//! nesting limit it is `EUSERS`; from a `chroot`, `EPERM`) and gives its
//! maker every capability inside; any other kind needs `CAP_SYS_ADMIN` in
//! the caller's user namespace (a new one counts, as `CLONE_NEWUSER` is
//! done first). New pid namespaces are not made here: asking for one is
//! `EINVAL`.

use alloc::sync::Arc;

use super::files::file;
use super::{Context, Result};
use crate::credentials::{Credentials, capability};
use crate::errno::Errno;
use crate::namespace::file::{Handle, NamespaceFile};
use crate::namespace::user::UserNamespace;
use crate::namespace::{Kind, Namespaces, flag};
use crate::process::Process;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, OpenFile};

/// The kinds this kernel makes new namespaces of.
const SUPPORTED: u64 = flag::NEWUSER
    | flag::NEWUTS
    | flag::NEWIPC
    | flag::NEWNS
    | flag::NEWNET
    | flag::NEWCGROUP
    | flag::NEWTIME;

/// What a process is to be in after a `clone` or `unshare`.
pub(super) struct Entered {
    /// The credentials, in a new user namespace if one was asked for.
    pub credentials: Credentials,
    /// The namespaces (as the caller holds them, new pid and time
    /// namespaces being for children).
    pub namespaces: Namespaces,
    /// Whether a new mount namespace was made.
    pub has_new_mounts: bool,
}

/// Makes the namespaces `flags` asks for on behalf of `process`, checking
/// privilege; `None` when `flags` names none.
pub(super) fn enter(
    context: Context<'_>,
    process: &Process,
    flags: u64,
) -> core::result::Result<Option<Entered>, Errno> {
    let flags = flags & flag::ALL;
    if flags == 0 {
        return Ok(None);
    }
    if flags & !SUPPORTED != 0 {
        return Err(Errno::EINVAL);
    }
    let mut credentials = process.state.lock().credentials.clone();
    if flags & flag::NEWUSER != 0 {
        if is_chrooted(context) {
            return Err(Errno::EPERM);
        }
        let owner = (credentials.effective_user, credentials.effective_group);
        let namespace = UserNamespace::new_child(&credentials.user_namespace, owner).ok_or(Errno::EUSERS)?;
        credentials.enter_user_namespace(namespace);
    }
    let others = flags & !flag::NEWUSER;
    if others != 0 && !credentials.has_capability(capability::SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let mut seed = [0u8; 8];
    process.random.lock().fill(&mut seed);
    let seed = u64::from_le_bytes(seed);
    let namespaces =
        process.namespaces().with_new(others, &credentials.user_namespace, context.machine, seed);
    Ok(Some(Entered { credentials, namespaces, has_new_mounts: others & flag::NEWNS != 0 }))
}

/// Whether the caller's root is not the machine's (`chroot`).
fn is_chrooted(context: Context<'_>) -> bool {
    context.fs().with(|fs| fs.root_directory.is_some())
}

/// Moves `process` into `entered`; `with_fs` runs a closure on the
/// filesystem context it uses, which a new mount namespace takes along:
/// the working and root directories move to its own mounts.
pub(super) fn apply(
    process: &Process,
    with_fs: impl FnOnce(&mut dyn FnMut(&mut crate::process::FsContext)),
    entered: Entered,
) {
    if entered.has_new_mounts {
        let vfs = entered.namespaces.vfs().clone();
        with_fs(&mut |fs| {
            fs.working_directory = vfs.translate(&fs.working_directory);
            if let Some(root) = &fs.root_directory {
                fs.root_directory = Some(vfs.translate(root));
            }
        });
    }
    process.state.lock().credentials = entered.credentials;
    process.set_namespaces(entered.namespaces);
}

/// The namespace an open file is the file of.
fn namespace_of(file: &OpenFile) -> Option<Handle> {
    let location = file.location()?;
    Some(location.node.as_any().downcast_ref::<NamespaceFile>()?.handle().clone())
}

/// `setns(fd, nstype)`: joins the namespace `fd` is the file of, which
/// must be of kind `nstype` unless that is 0. Joining needs
/// `CAP_SYS_ADMIN` over the namespace's owner and in the caller's own
/// user namespace (over the joined one, for a user namespace); a pid or
/// time namespace is for the caller's children.
pub(super) fn setns(context: Context<'_>, fd: u64, nstype: u64) -> Result {
    let file = file(context, fd)?;
    let handle = namespace_of(&file).ok_or(Errno::EINVAL)?;
    if nstype != 0 && nstype != handle.kind().clone_flag() {
        return Err(Errno::EINVAL.into());
    }
    let process = context.process;
    let mut credentials = process.state.lock().credentials.clone();
    let target = match handle {
        Handle::User(target) => {
            if *target == *credentials.user_namespace || process.thread_count() > 1 {
                return Err(Errno::EINVAL.into());
            }
            if is_chrooted(context) || !credentials.has_capability_in(&target, capability::SYS_ADMIN) {
                return Err(Errno::EPERM.into());
            }
            credentials.enter_user_namespace(target);
            process.state.lock().credentials = credentials;
            return Ok(0);
        }
        Handle::Other(target) => target,
    };
    if !credentials.has_capability_in(target.owner(), capability::SYS_ADMIN)
        || !credentials.has_capability(capability::SYS_ADMIN)
    {
        return Err(Errno::EPERM.into());
    }
    let mut namespaces = process.namespaces();
    match target.kind() {
        Kind::Mount => {
            if !credentials.has_capability(capability::SYS_CHROOT) {
                return Err(Errno::EPERM.into());
            }
            let vfs = target.vfs().ok_or(Errno::EINVAL)?.clone();
            context.fs().with(|fs| {
                fs.working_directory = vfs.root();
                fs.root_directory = None;
            });
            namespaces.mount = target;
        }
        Kind::Pid => {
            // Only the caller's own pid namespace or one below it.
            let mut current = Some(&target);
            while let Some(namespace) = current {
                if Arc::ptr_eq(namespace, &namespaces.pid) {
                    break;
                }
                current = namespace.parent();
            }
            if current.is_none() {
                return Err(Errno::EINVAL.into());
            }
            namespaces.pid_for_children = target;
        }
        Kind::Time => namespaces.time_for_children = target,
        Kind::Cgroup => namespaces.cgroup = target,
        Kind::Ipc => {
            super::semaphores::undo_all(&namespaces.ipc, process.pid);
            namespaces.ipc = target;
        }
        Kind::Network => namespaces.network = target,
        Kind::Uts => namespaces.uts = target,
        Kind::User => return Err(Errno::EINVAL.into()),
    }
    process.set_namespaces(namespaces);
    Ok(0)
}

/// `ioctl` requests on a namespace file (`linux/nsfs.h`).
mod request {
    pub const NS_GET_USERNS: u64 = 0xb701;
    pub const NS_GET_PARENT: u64 = 0xb702;
    pub const NS_GET_NSTYPE: u64 = 0xb703;
    pub const NS_GET_OWNER_UID: u64 = 0xb704;
}

/// The `NS_GET_*` requests on a namespace file; `None` for another file.
pub(super) fn ioctl(
    context: Context<'_>,
    file: &Arc<OpenFile>,
    command: u64,
    argument: u64,
) -> Option<Result> {
    let handle = namespace_of(file)?;
    let credentials = context.process.state.lock().credentials.clone();
    // A namespace is shown only if it lies within the caller's user
    // namespace.
    let open_user = |namespace: Option<Arc<UserNamespace>>| -> Result {
        let namespace = namespace.ok_or(Errno::EPERM)?;
        if !namespace.is_within(&credentials.user_namespace) {
            return Err(Errno::EPERM.into());
        }
        install(context, Handle::User(namespace))
    };
    Some(match command {
        request::NS_GET_NSTYPE => Ok(handle.kind().clone_flag()),
        request::NS_GET_USERNS => open_user(handle.owner()),
        request::NS_GET_PARENT => match &handle {
            Handle::User(namespace) => open_user(namespace.parent().cloned()),
            Handle::Other(namespace) if namespace.kind() == Kind::Pid => match namespace.parent() {
                Some(parent) => install(context, Handle::Other(parent.clone())),
                None => Err(Errno::EPERM.into()),
            },
            Handle::Other(_) => Err(Errno::EINVAL.into()),
        },
        request::NS_GET_OWNER_UID => match &handle {
            Handle::User(namespace) => {
                let owner = credentials.user_seen(namespace.owner().0);
                User::new(context.machine).write_u32(argument, owner).map(|()| 0).map_err(Into::into)
            }
            Handle::Other(_) => Err(Errno::EINVAL.into()),
        },
        _ => Err(Errno::ENOTTY.into()),
    })
}

/// A new close-on-exec descriptor of `handle`'s file.
fn install(context: Context<'_>, handle: Handle) -> Result {
    let location = crate::vfs::Location {
        mount: context.process.vfs().root().mount,
        node: Arc::new(NamespaceFile::new(handle)),
    };
    let data = location.node.clone();
    let object = FileObject::Node { location, data, name: None };
    super::paths::install(context, OpenFile::new(object, flags::O_RDONLY), true)
}
