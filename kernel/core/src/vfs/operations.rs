//! Changes to the tree by path: mkdir, rmdir, unlink, rename, link,
//! symlink, and readlink, truncate and attribute changes, with Linux's
//! errors for `.`, `..`, `/`, mount points, trailing slashes and read-only
//! mounts.

use alloc::string::String;
use alloc::sync::Arc;

use super::FsError;
use super::mount::{Location, Vfs};
use super::node::{AttributeChanges, Caller, FileType, NewNode, Node, RenameMode};
use super::notify::{self, mask};
use super::path::{LastComponent, ParentAndName};
use super::permission::{self, EXECUTE, SET_GROUP_ID, SET_USER_ID, WRITE};
use crate::credentials::capability;

/// What `utimensat` sets, and so which permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimesChange {
    /// Both times to now (a null `times`, or both `UTIME_NOW`): the owner
    /// or anyone who may write the file.
    Touch,
    /// A time given explicitly: the owner only.
    Explicit,
    /// One time to now, the other left alone: no check.
    Other,
}

impl Vfs {
    /// Fails with `Exists` if `parent` names something already.
    fn check_absent(&self, caller: &Caller<'_>, parent: &ParentAndName) -> Result<(), FsError> {
        if !parent.is_normal_name() {
            return Err(FsError::Exists);
        }
        match self.child(caller, &parent.directory, &parent.name) {
            Ok(_) => Err(FsError::Exists),
            Err(FsError::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `mkdir`.
    pub fn make_directory(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        permissions: u32,
    ) -> Result<(), FsError> {
        let parent = self.resolve_parent(caller, start, path)?;
        self.check_absent(caller, &parent)?;
        Self::check_directory_change(caller, &parent.directory)?;
        parent.directory.node.create(caller, &parent.name, NewNode::Directory, permissions)?;
        notify::created(&parent.directory, &parent.name, true);
        Ok(())
    }

    /// `symlink`: makes `path` a link to `target`.
    pub fn make_symlink(
        &self,
        caller: &Caller<'_>,
        target: &str,
        start: &Location,
        path: &str,
    ) -> Result<(), FsError> {
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        let parent = self.resolve_parent(caller, start, path)?;
        self.check_absent(caller, &parent)?;
        if parent.has_trailing_slash {
            return Err(FsError::NotFound);
        }
        Self::check_directory_change(caller, &parent.directory)?;
        parent.directory.node.create(caller, &parent.name, NewNode::Symlink(target), 0o777)?;
        notify::created(&parent.directory, &parent.name, false);
        Ok(())
    }

    /// Makes a socket node at `path` for a local socket's `bind`.
    pub fn make_socket(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        let parent = self.resolve_parent(caller, start, path)?;
        self.check_absent(caller, &parent)?;
        if parent.has_trailing_slash {
            return Err(FsError::NotFound);
        }
        Self::check_directory_change(caller, &parent.directory)?;
        let node = parent.directory.node.create(caller, &parent.name, NewNode::Socket, permissions)?;
        notify::created(&parent.directory, &parent.name, false);
        Ok(node)
    }

    /// `mknod` of a named pipe, a device node or a socket node (`kind`)
    /// at `path`; making device nodes needs `CAP_MKNOD`.
    pub fn make_node(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<(), FsError> {
        let parent = self.resolve_parent(caller, start, path)?;
        self.check_absent(caller, &parent)?;
        if parent.has_trailing_slash {
            return Err(FsError::NotFound);
        }
        Self::check_directory_change(caller, &parent.directory)?;
        parent.directory.node.create(caller, &parent.name, kind, permissions)?;
        notify::created(&parent.directory, &parent.name, false);
        Ok(())
    }

    /// `rmdir`.
    pub fn remove_directory(&self, caller: &Caller<'_>, start: &Location, path: &str) -> Result<(), FsError> {
        let parent = self.resolve_parent(caller, start, path)?;
        match parent.last {
            LastComponent::Normal => {}
            LastComponent::Dot => return Err(FsError::InvalidArgument),
            LastComponent::DotDot => return Err(FsError::NotEmpty),
            LastComponent::Root => return Err(FsError::Busy),
        }
        let child = self.child(caller, &parent.directory, &parent.name)?;
        if !child.is_directory() {
            return Err(FsError::NotDirectory);
        }
        if self.is_mount_point(&parent.directory, &parent.name) {
            return Err(FsError::Busy);
        }
        Self::check_directory_change(caller, &parent.directory)?;
        Self::check_sticky(caller, &parent.directory, &child)?;
        parent.directory.node.remove(caller, &parent.name, true)?;
        // As on Linux, the directory's own watches end before its parent
        // sees the entry go.
        if notify::is_watching() {
            notify::forget(notify::key_of(&child));
            let event = mask::DELETE | mask::ISDIR;
            notify::notify(notify::key_of(&parent.directory), event, Some(&parent.name), 0);
        }
        Ok(())
    }

    /// `unlink`.
    pub fn unlink(&self, caller: &Caller<'_>, start: &Location, path: &str) -> Result<(), FsError> {
        let parent = self.resolve_parent(caller, start, path)?;
        if !parent.is_normal_name() {
            return Err(FsError::IsDirectory);
        }
        let child = self.child(caller, &parent.directory, &parent.name)?;
        if child.is_directory() {
            return Err(FsError::IsDirectory);
        }
        if parent.has_trailing_slash {
            return Err(FsError::NotDirectory);
        }
        Self::check_directory_change(caller, &parent.directory)?;
        Self::check_sticky(caller, &parent.directory, &child)?;
        parent.directory.node.remove(caller, &parent.name, false)?;
        // As on Linux, the file sees its link count change, and its end
        // when that was its last link, before its directory's event.
        if notify::is_watching() {
            notify::notify(notify::key_of(&child), mask::ATTRIB, None, 0);
            if child.metadata(caller).is_ok_and(|metadata| metadata.link_count == 0) {
                notify::forget(notify::key_of(&child));
            }
            notify::notify(notify::key_of(&parent.directory), mask::DELETE, Some(&parent.name), 0);
        }
        Ok(())
    }

    /// Whether `location` is `ancestor` or lies below it.
    fn is_within(&self, location: &Location, ancestor: &Location) -> bool {
        let mut current = location.clone();
        loop {
            if current.is_same(ancestor) {
                return true;
            }
            let parent = self.parent_of(&current);
            if parent.is_same(&current) {
                return false;
            }
            current = parent;
        }
    }

    /// `renameat2`.
    pub fn rename(
        &self,
        caller: &Caller<'_>,
        (old_start, old_path): (&Location, &str),
        (new_start, new_path): (&Location, &str),
        mode: RenameMode,
    ) -> Result<(), FsError> {
        let old = self.resolve_parent(caller, old_start, old_path)?;
        let new = self.resolve_parent(caller, new_start, new_path)?;
        if !old.is_normal_name() || !new.is_normal_name() {
            return Err(FsError::Busy);
        }
        let source = self.child(caller, &old.directory, &old.name)?;
        let target = match self.child(caller, &new.directory, &new.name) {
            Ok(target) => Some(target),
            Err(FsError::NotFound) => None,
            Err(error) => return Err(error),
        };
        if self.is_mount_point(&old.directory, &old.name) || self.is_mount_point(&new.directory, &new.name) {
            return Err(FsError::Busy);
        }
        if !alloc::sync::Arc::ptr_eq(&old.directory.mount, &new.directory.mount) {
            return Err(FsError::CrossDevice);
        }
        let has_trailing_slash = old.has_trailing_slash || new.has_trailing_slash;
        if has_trailing_slash && !source.is_directory() {
            return Err(FsError::NotDirectory);
        }
        match (&target, mode) {
            (None, RenameMode::Exchange) => return Err(FsError::NotFound),
            (Some(_), RenameMode::NoReplace) => return Err(FsError::Exists),
            (Some(target), _) if target.is_same(&source) => return Ok(()),
            (Some(target), RenameMode::Replace) => {
                if source.is_directory() && !target.is_directory() {
                    return Err(FsError::NotDirectory);
                }
                if !source.is_directory() && target.is_directory() {
                    return Err(FsError::IsDirectory);
                }
            }
            _ => {}
        }
        if source.is_directory() && self.is_within(&new.directory, &source) {
            return Err(FsError::InvalidArgument);
        }
        if let Some(target) =
            target.as_ref().filter(|target| mode == RenameMode::Exchange && target.is_directory())
            && self.is_within(&old.directory, target)
        {
            return Err(FsError::InvalidArgument);
        }
        Self::check_directory_change(caller, &old.directory)?;
        Self::check_directory_change(caller, &new.directory)?;
        Self::check_sticky(caller, &old.directory, &source)?;
        if let Some(target) = &target {
            Self::check_sticky(caller, &new.directory, target)?;
        }
        // A directory that changes parent changes its `..` entry.
        if !old.directory.is_same(&new.directory) {
            for moved in
                core::iter::once(&source).chain(target.iter().filter(|_| mode == RenameMode::Exchange))
            {
                if moved.is_directory() {
                    permission::check_caller(caller, &moved.metadata(caller)?, WRITE)?;
                }
            }
        }
        old.directory.node.rename(caller, &old.name, &*new.directory.node, &new.name, mode)?;
        if notify::is_watching() {
            let cookie = notify::cookie();
            let directory = if source.is_directory() { mask::ISDIR } else { 0 };
            notify::notify(
                notify::key_of(&old.directory),
                mask::MOVED_FROM | directory,
                Some(&old.name),
                cookie,
            );
            notify::notify(
                notify::key_of(&new.directory),
                mask::MOVED_TO | directory,
                Some(&new.name),
                cookie,
            );
            notify::notify(notify::key_of(&source), mask::MOVE_SELF, None, 0);
            if let Some(target) = target.filter(|_| mode != RenameMode::Exchange)
                && (target.is_directory()
                    || target.metadata(caller).is_ok_and(|metadata| metadata.link_count == 0))
            {
                notify::forget(notify::key_of(&target));
            }
        }
        Ok(())
    }

    /// `linkat`: gives `target` (found from `old`) the new name `new`.
    pub fn link(
        &self,
        caller: &Caller<'_>,
        target: &Location,
        (new_start, new_path): (&Location, &str),
    ) -> Result<(), FsError> {
        if target.is_directory() {
            return Err(FsError::NotPermitted);
        }
        let parent = self.resolve_parent(caller, new_start, new_path)?;
        self.check_absent(caller, &parent)?;
        if !alloc::sync::Arc::ptr_eq(&target.mount, &parent.directory.mount) {
            return Err(FsError::CrossDevice);
        }
        Self::check_directory_change(caller, &parent.directory)?;
        parent.directory.node.link(caller, &parent.name, &*target.node)?;
        notify::created(&parent.directory, &parent.name, false);
        notify::at(target, None, mask::ATTRIB);
        Ok(())
    }

    /// `readlink`: the target of the symlink `location`.
    pub fn read_link(&self, caller: &Caller<'_>, location: &Location) -> Result<String, FsError> {
        if location.file_type() != FileType::Symlink {
            return Err(FsError::InvalidArgument);
        }
        Ok(String::from(location.node.read_link(caller)?.text()))
    }

    /// `truncate` of the file at `location`.
    pub fn truncate(&self, caller: &Caller<'_>, location: &Location, size_bytes: u64) -> Result<(), FsError> {
        match location.file_type() {
            FileType::Directory => return Err(FsError::IsDirectory),
            FileType::Regular => {}
            _ => return Err(FsError::InvalidArgument),
        }
        location.check_writable()?;
        permission::check_caller(caller, &location.metadata(caller)?, WRITE)?;
        location.node.truncate(caller, size_bytes)?;
        notify::at(location, None, mask::MODIFY);
        Ok(())
    }

    /// Checks that `caller` may add or remove names in `directory`: a
    /// writable mount, and write and search permission.
    fn check_directory_change(caller: &Caller<'_>, directory: &Location) -> Result<(), FsError> {
        directory.check_writable()?;
        permission::check_caller(caller, &directory.metadata(caller)?, WRITE | EXECUTE)
    }

    /// Checks that `caller` may remove or rename `child` from `directory`
    /// (the sticky bit's rule).
    fn check_sticky(caller: &Caller<'_>, directory: &Location, child: &Location) -> Result<(), FsError> {
        let Some(credentials) = caller.credentials() else {
            return Ok(());
        };
        let directory = directory.metadata(caller)?;
        if directory.permissions & permission::STICKY == 0 {
            return Ok(());
        }
        permission::check_sticky(&credentials, &directory, &child.metadata(caller)?)
    }

    /// `chmod`: the owner (or `CAP_FOWNER`) sets the permission bits; the
    /// set-group-id bit stays only for a member of the file's group or
    /// with `CAP_FSETID`.
    pub fn change_mode(
        &self,
        caller: &Caller<'_>,
        location: &Location,
        permissions: u32,
    ) -> Result<(), FsError> {
        location.check_writable()?;
        let mut permissions = permissions & 0o7777;
        if let Some(credentials) = caller.credentials() {
            let metadata = location.metadata(caller)?;
            if !permission::is_owner(&credentials, &metadata) {
                return Err(FsError::NotPermitted);
            }
            if !credentials.is_in_group(metadata.owner_group)
                && !credentials
                    .has_capability_over((metadata.owner_user, metadata.owner_group), capability::FSETID)
            {
                permissions &= !SET_GROUP_ID;
            }
        }
        let changes = AttributeChanges { permissions: Some(permissions), ..AttributeChanges::default() };
        location.node.set_attributes(caller, changes)?;
        notify::at(location, None, mask::ATTRIB);
        Ok(())
    }

    /// `chown`: `CAP_CHOWN` gives a file to anyone; its owner may only
    /// change its group to one of its own. A non-directory loses its
    /// set-user-id bit, and its set-group-id bit where that means
    /// something (group execute) or the caller could not set it.
    pub fn change_owner(
        &self,
        caller: &Caller<'_>,
        location: &Location,
        user: Option<u32>,
        group: Option<u32>,
    ) -> Result<(), FsError> {
        location.check_writable()?;
        let metadata = location.metadata(caller)?;
        let mut changes =
            AttributeChanges { owner_user: user, owner_group: group, ..AttributeChanges::default() };
        let credentials = caller.credentials();
        if let Some(credentials) = &credentials {
            let may_chown = credentials
                .has_capability_over((metadata.owner_user, metadata.owner_group), capability::CHOWN);
            let is_owner = credentials.filesystem_user == metadata.owner_user;
            let user_allowed = user.is_none_or(|user| may_chown || (is_owner && user == metadata.owner_user));
            let group_allowed = group.is_none_or(|group| {
                may_chown || (is_owner && (group == metadata.owner_group || credentials.is_in_group(group)))
            });
            if !user_allowed || !group_allowed {
                return Err(FsError::NotPermitted);
            }
        }
        if metadata.file_type != FileType::Directory {
            let mut permissions = metadata.permissions & !SET_USER_ID;
            let new_group = group.unwrap_or(metadata.owner_group);
            let keeps_group_bit = permissions & 0o010 == 0
                && credentials.as_ref().is_none_or(|credentials| {
                    credentials.is_in_group(new_group) || credentials.has_capability(capability::FSETID)
                });
            if !keeps_group_bit {
                permissions &= !SET_GROUP_ID;
            }
            if permissions != metadata.permissions {
                changes.permissions = Some(permissions);
            }
        }
        location.node.set_attributes(caller, changes)?;
        notify::at(location, None, mask::ATTRIB);
        Ok(())
    }

    /// `utimensat`: `kind` says which permission the change needs.
    pub fn set_times(
        &self,
        caller: &Caller<'_>,
        location: &Location,
        access_time_ns: Option<u64>,
        modify_time_ns: Option<u64>,
        kind: TimesChange,
    ) -> Result<(), FsError> {
        location.check_writable()?;
        if let Some(credentials) = caller.credentials() {
            let metadata = location.metadata(caller)?;
            if !permission::is_owner(&credentials, &metadata) {
                match kind {
                    TimesChange::Explicit => return Err(FsError::NotPermitted),
                    TimesChange::Touch => permission::check(&credentials, &metadata, WRITE)?,
                    TimesChange::Other => {}
                }
            }
        }
        let changes = AttributeChanges { access_time_ns, modify_time_ns, ..AttributeChanges::default() };
        location.node.set_attributes(caller, changes)?;
        notify::at(location, None, mask::ATTRIB);
        Ok(())
    }

    /// Changes attributes of `location` without permission checks (the
    /// kernel's own changes).
    pub fn set_attributes(
        &self,
        caller: &Caller<'_>,
        location: &Location,
        changes: AttributeChanges,
    ) -> Result<(), FsError> {
        location.check_writable()?;
        location.node.set_attributes(caller, changes)?;
        notify::at(location, None, mask::ATTRIB);
        Ok(())
    }
}
