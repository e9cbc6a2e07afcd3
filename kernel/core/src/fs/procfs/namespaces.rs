//! A process's namespace files: the `ns/` links and the user namespace's
//! `uid_map`, `gid_map` and `setgroups` ([`crate::namespace`]).

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use crate::credentials::capability;
use crate::namespace::file::Handle;
use crate::namespace::user::{MapError, SetGroups, UserNamespace, parse_map};
use crate::namespace::{Kind, Namespaces};
use crate::process::Process;
use crate::vfs::{Caller, FileType, FsError, Metadata, Node};

/// The entries of `/proc/PID/ns`: a name, the kind, and whether it is the
/// namespace for children.
pub(super) const LINKS: [(&str, Kind, bool); 10] = [
    ("cgroup", Kind::Cgroup, false),
    ("ipc", Kind::Ipc, false),
    ("mnt", Kind::Mount, false),
    ("net", Kind::Network, false),
    ("pid", Kind::Pid, false),
    ("pid_for_children", Kind::Pid, true),
    ("time", Kind::Time, false),
    ("time_for_children", Kind::Time, true),
    ("user", Kind::User, false),
    ("uts", Kind::Uts, false),
];

/// The namespace link `index` of [`LINKS`] names for `process`.
pub(super) fn handle(process: &Process, index: usize) -> Option<Handle> {
    let (_, kind, for_children) = LINKS.get(index)?;
    if *kind == Kind::User {
        return Some(Handle::User(process.state.lock().credentials.user_namespace.clone()));
    }
    let namespaces: Namespaces = process.namespaces();
    namespaces.of_kind(*kind, *for_children).map(|namespace| Handle::Other(namespace.clone()))
}

impl From<MapError> for FsError {
    fn from(error: MapError) -> Self {
        match error {
            MapError::Invalid => FsError::InvalidArgument,
            MapError::NotPermitted => FsError::NotPermitted,
        }
    }
}

/// Which file of a user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MapKind {
    Users,
    Groups,
    SetGroups,
}

/// `uid_map`, `gid_map` or `setgroups` of a process's user namespace.
pub(super) struct UserNamespaceFile {
    pub inode: u64,
    pub pid: u64,
    pub kind: MapKind,
}

impl UserNamespaceFile {
    fn namespace(&self) -> Result<Arc<UserNamespace>, FsError> {
        let process = crate::process::find(self.pid).ok_or(FsError::NotFound)?;
        Ok(process.state.lock().credentials.user_namespace.clone())
    }

    fn text(&self, caller: &Caller<'_>) -> Result<String, FsError> {
        let namespace = self.namespace()?;
        let reader = caller.process.map_or_else(UserNamespace::initial, |process| {
            process.state.lock().credentials.user_namespace.clone()
        });
        Ok(match self.kind {
            MapKind::Users => namespace.map_text(false, &reader),
            MapKind::Groups => namespace.map_text(true, &reader),
            MapKind::SetGroups => String::from(match namespace.setgroups() {
                SetGroups::Allow => "allow\n",
                SetGroups::Deny => "deny\n",
            }),
        })
    }

    /// Writes a map under Linux's rules: once, by a process in the
    /// namespace or its parent with `CAP_SYS_ADMIN` over it; any map with
    /// `CAP_SETUID` (`CAP_SETGID`) in the parent, else one line mapping the
    /// writer's own effective id, from the namespace's owner (for groups,
    /// once `setgroups` says `deny`).
    fn write_map(&self, caller: &Caller<'_>, text: &str) -> Result<(), FsError> {
        let namespace = self.namespace()?;
        let parent = namespace.parent().cloned().ok_or(FsError::NotPermitted)?;
        let credentials = caller.credentials().unwrap_or_default();
        let writer = &credentials.user_namespace;
        if **writer != *namespace && **writer != *parent {
            return Err(FsError::NotPermitted);
        }
        if !credentials.has_capability_in(&namespace, capability::SYS_ADMIN) {
            return Err(FsError::NotPermitted);
        }
        let is_group = self.kind == MapKind::Groups;
        let outer = if is_group { parent.group_map() } else { parent.user_map() };
        let map = parse_map(text, &outer)?;
        let setid = if is_group { capability::SETGID } else { capability::SETUID };
        let is_privileged = credentials.has_capability_in(&parent, setid);
        let own_id = if is_group { credentials.effective_group } else { credentials.effective_user };
        let is_own_id = match map.extents() {
            [extent] => extent.count == 1 && extent.outside == own_id,
            _ => false,
        };
        let may_map_own = namespace.owner().0 == credentials.effective_user
            && is_own_id
            && (!is_group || namespace.setgroups() == SetGroups::Deny);
        if !is_privileged && !may_map_own {
            return Err(FsError::NotPermitted);
        }
        namespace.set_map(is_group, map)?;
        Ok(())
    }
}

impl Node for UserNamespaceFile {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        Ok(Metadata::new(self.inode, FileType::Regular, 0o644))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let text = self.text(caller)?;
        let bytes = text.as_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
        let length = buffer.len().min(bytes.len() - start);
        buffer[..length].copy_from_slice(&bytes[start..start + length]);
        Ok(length)
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        // One write from the start, of at most a page (Linux's rule).
        if offset != 0 || bytes.len() > crate::namespace::user::MAP_WRITE_MAX {
            return Err(FsError::InvalidArgument);
        }
        let text = core::str::from_utf8(bytes).map_err(|_| FsError::InvalidArgument)?;
        match self.kind {
            MapKind::SetGroups => {
                let namespace = self.namespace()?;
                let credentials = caller.credentials().unwrap_or_default();
                if !credentials.has_capability_in(&namespace, capability::SYS_ADMIN) {
                    return Err(FsError::NotPermitted);
                }
                namespace.set_setgroups(text)?;
            }
            _ => self.write_map(caller, text)?,
        }
        Ok(bytes.len())
    }
}
