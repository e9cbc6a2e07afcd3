//! File permission checks, as Linux's `generic_permission` makes them.
//!
//! A caller's filesystem user id picks the owner's bits when it owns the
//! node, its groups the group's bits, everyone else the other bits; the
//! capabilities `CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH` bypass them
//! (execution of a regular file still needs one execute bit). Ownership
//! rules (`chmod`, `chown`, times, sticky directories) take `CAP_FOWNER`
//! and `CAP_CHOWN`. New nodes belong to their creator's filesystem ids, or
//! to the directory's group when the directory has the set-group-id bit.
//! The kernel itself (a caller without a process) passes every check.

use super::FsError;
use super::node::{Caller, FileType, Metadata};
use crate::credentials::{Credentials, capability};

/// Read permission.
pub const READ: u32 = 4;
/// Write permission.
pub const WRITE: u32 = 2;
/// Execute permission, or search for a directory.
pub const EXECUTE: u32 = 1;

/// `S_ISUID`.
pub const SET_USER_ID: u32 = 0o4000;
/// `S_ISGID`.
pub const SET_GROUP_ID: u32 = 0o2000;
/// `S_ISVTX`: in a directory, only owners may remove or rename entries.
pub const STICKY: u32 = 0o1000;

impl Caller<'_> {
    /// The calling process's credentials; `None` for the kernel.
    pub fn credentials(&self) -> Option<Credentials> {
        if let Some(credentials) = self.acting_as {
            return Some(credentials.clone());
        }
        self.process.map(|process| process.state.lock().credentials.clone())
    }
}

/// Whether `credentials` may access a node of `metadata` as `wanted`
/// (`READ | WRITE | EXECUTE` bits); `AccessDenied` if not.
pub fn check(credentials: &Credentials, metadata: &Metadata, wanted: u32) -> Result<(), FsError> {
    let mode = metadata.permissions;
    let granted = if credentials.filesystem_user == metadata.owner_user {
        mode >> 6
    } else if credentials.is_in_group(metadata.owner_group) {
        mode >> 3
    } else {
        mode
    } & 0o7;
    if wanted & !granted == 0 {
        return Ok(());
    }
    let is_directory = metadata.file_type == FileType::Directory;
    let owner = (metadata.owner_user, metadata.owner_group);
    if credentials.has_capability_over(owner, capability::DAC_OVERRIDE)
        && (is_directory || wanted & EXECUTE == 0 || mode & 0o111 != 0)
    {
        return Ok(());
    }
    let reads_only = wanted & !(READ | if is_directory { EXECUTE } else { 0 }) == 0;
    if reads_only && credentials.has_capability_over(owner, capability::DAC_READ_SEARCH) {
        return Ok(());
    }
    Err(FsError::AccessDenied)
}

/// [`check`] for `caller`, whose node has `metadata`.
pub fn check_caller(caller: &Caller<'_>, metadata: &Metadata, wanted: u32) -> Result<(), FsError> {
    match caller.credentials() {
        Some(credentials) => check(&credentials, metadata, wanted),
        None => Ok(()),
    }
}

/// Whether `credentials` (of a process; `None` for the kernel) may search
/// the directory at `location`. Checks no metadata when a capability
/// grants the search anyway.
pub fn check_search(
    caller: &Caller<'_>,
    credentials: Option<&Credentials>,
    location: &super::Location,
) -> Result<(), FsError> {
    let Some(credentials) = credentials else {
        return Ok(());
    };
    // Outside the initial user namespace the capabilities hold only over
    // files whose owners are mapped: `check` looks.
    let is_initial = credentials.user_namespace.parent().is_none();
    if is_initial
        && (credentials.has_capability(capability::DAC_READ_SEARCH)
            || credentials.has_capability(capability::DAC_OVERRIDE))
    {
        return Ok(());
    }
    check(credentials, &location.node.metadata(caller)?, EXECUTE)
}

/// Whether `credentials` count as the owner of a node of `metadata`
/// (`inode_owner_or_capable`).
pub fn is_owner(credentials: &Credentials, metadata: &Metadata) -> bool {
    credentials.filesystem_user == metadata.owner_user
        || credentials.has_capability_over((metadata.owner_user, metadata.owner_group), capability::FOWNER)
}

/// Whether `credentials` may remove or rename `child` from `directory`:
/// in a sticky directory only the owner of either (or `CAP_FOWNER`) may.
pub fn check_sticky(
    credentials: &Credentials,
    directory: &Metadata,
    child: &Metadata,
) -> Result<(), FsError> {
    if directory.permissions & STICKY == 0
        || credentials.filesystem_user == directory.owner_user
        || is_owner(credentials, child)
    {
        return Ok(());
    }
    Err(FsError::NotPermitted)
}

/// The owner, group and permissions of a node `caller` creates in a
/// directory of `directory` metadata (`inode_init_owner`): the caller's
/// filesystem ids, except that a set-group-id directory gives its group
/// (and, to a new directory, its set-group-id bit); a file may keep its
/// set-group-id bit only in a group its creator is in, or with
/// `CAP_FSETID`.
pub fn new_owner(
    caller: &Caller<'_>,
    directory: &Metadata,
    is_directory: bool,
    permissions: u32,
) -> (u32, u32, u32) {
    let Some(credentials) = caller.credentials() else {
        return (0, 0, permissions);
    };
    let mut permissions = permissions;
    let group = if directory.permissions & SET_GROUP_ID != 0 {
        if is_directory {
            permissions |= SET_GROUP_ID;
        }
        directory.owner_group
    } else {
        credentials.filesystem_group
    };
    if !is_directory
        && permissions & SET_GROUP_ID != 0
        && !credentials.is_in_group(group)
        && !credentials.has_capability(capability::FSETID)
    {
        permissions &= !SET_GROUP_ID;
    }
    (credentials.filesystem_user, group, permissions)
}

/// The permission bits a write or truncation by `credentials` leaves on a
/// regular file (`file_remove_privs`): set-user-id goes, and set-group-id
/// with group execute, unless the writer has `CAP_FSETID`. `None` when
/// nothing changes.
pub fn after_write(credentials: &Credentials, metadata: &Metadata) -> Option<u32> {
    if metadata.file_type != FileType::Regular
        || credentials.has_capability_over((metadata.owner_user, metadata.owner_group), capability::FSETID)
    {
        return None;
    }
    let mut permissions = metadata.permissions & !SET_USER_ID;
    if permissions & 0o010 != 0 {
        permissions &= !SET_GROUP_ID;
    }
    (permissions != metadata.permissions).then_some(permissions)
}

#[cfg(test)]
mod tests;
