//! Changes to the tree by path: mkdir, rmdir, unlink, rename, link,
//! symlink, and readlink, truncate and attribute changes, with Linux's
//! errors for `.`, `..`, `/`, mount points, trailing slashes and read-only
//! mounts.

use alloc::string::String;
use alloc::sync::Arc;

use super::FsError;
use super::mount::{Location, Vfs};
use super::node::{AttributeChanges, Caller, FileType, NewNode, Node, RenameMode};
use super::path::{LastComponent, ParentAndName};

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
        parent.directory.check_writable()?;
        parent.directory.node.create(caller, &parent.name, NewNode::Directory, permissions)?;
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
        parent.directory.check_writable()?;
        parent.directory.node.create(caller, &parent.name, NewNode::Symlink(target), 0o777)?;
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
        parent.directory.check_writable()?;
        parent.directory.node.create(caller, &parent.name, NewNode::Socket, permissions)
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
        parent.directory.check_writable()?;
        parent.directory.node.remove(caller, &parent.name, true)
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
        parent.directory.check_writable()?;
        parent.directory.node.remove(caller, &parent.name, false)
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
        old.directory.check_writable()?;
        old.directory.node.rename(caller, &old.name, &*new.directory.node, &new.name, mode)
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
        parent.directory.check_writable()?;
        parent.directory.node.link(caller, &parent.name, &*target.node)
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
        location.node.truncate(caller, size_bytes)
    }

    /// `chmod` and `utimensat` of `location`.
    pub fn set_attributes(
        &self,
        caller: &Caller<'_>,
        location: &Location,
        changes: AttributeChanges,
    ) -> Result<(), FsError> {
        location.check_writable()?;
        location.node.set_attributes(caller, changes)
    }
}
