//! Path resolution (Linux `path_resolution(7)`): components, `.` and `..`
//! across mount points, symlinks up to [`SYMLINK_HOPS_MAX`], trailing
//! slashes, name and path length limits.

use alloc::string::String;
use alloc::vec::Vec;

use super::FsError;
use super::mount::{Location, Vfs};
use super::node::{Caller, FileType, LinkTarget};
use super::permission;

/// Symlinks one resolution follows before failing with `TooManyLinks`.
pub const SYMLINK_HOPS_MAX: u32 = 40;
/// The longest name of one component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// The longest path, terminating NUL included (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// What the last component of a path is, for calls that create or remove
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastComponent {
    /// An ordinary name.
    Normal,
    /// `.`.
    Dot,
    /// `..`.
    DotDot,
    /// The path is `/` (or only slashes).
    Root,
}

/// A path split into the directory that holds its last component and that
/// component.
#[derive(Debug, Clone)]
pub struct ParentAndName {
    /// The directory, found and followed.
    pub directory: Location,
    /// The last component (empty for `/`).
    pub name: String,
    /// Its kind.
    pub last: LastComponent,
    /// Whether the path ended in `/` (the last component must then be a
    /// directory).
    pub has_trailing_slash: bool,
}

impl ParentAndName {
    /// Whether the last component is an ordinary name.
    pub fn is_normal_name(&self) -> bool {
        self.last == LastComponent::Normal
    }
}

/// The components of `path` to walk, last first (a stack). A trailing
/// slash becomes a final `.`, which requires a directory and makes a final
/// symlink be followed.
fn components(path: &str) -> Vec<&str> {
    let mut stack: Vec<&str> = Vec::new();
    if path.ends_with('/') && !path.trim_matches('/').is_empty() {
        stack.push(".");
    }
    stack.extend(path.split('/').filter(|component| !component.is_empty()).rev());
    stack
}

fn check_length(path: &str) -> Result<(), FsError> {
    if path.is_empty() {
        return Err(FsError::NotFound);
    }
    if path.len() >= PATH_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

impl Vfs {
    /// Resolves `path` from `start` (the working directory or a `dirfd`;
    /// ignored for an absolute path). A final symlink is followed if
    /// `follow_last`.
    pub fn resolve(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        follow_last: bool,
    ) -> Result<Location, FsError> {
        let mut hops = 0;
        self.walk(caller, start, path, follow_last, &mut hops)
    }

    /// Resolves `path` like [`Vfs::resolve`], counting symlinks in `hops`
    /// (shared with an enclosing resolution).
    pub fn walk(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        follow_last: bool,
        hops: &mut u32,
    ) -> Result<Location, FsError> {
        Ok(self.walk_named(caller, start, path, follow_last, hops)?.0)
    }

    /// Resolves `path` and also returns the directory and name the result
    /// was found under, when it was found by name (not through `.`, `..`
    /// or a `/proc` link).
    pub fn walk_named(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        follow_last: bool,
        hops: &mut u32,
    ) -> Result<(Location, Option<(Location, String)>), FsError> {
        check_length(path)?;
        let root = self.root_for(caller);
        let mut current = if path.starts_with('/') { root.clone() } else { start.clone() };
        let mut found_as: Option<(Location, String)> = None;
        let mut pending: Vec<String> = components(path).into_iter().map(String::from).collect();
        let credentials = caller.credentials();
        while let Some(name) = pending.pop() {
            if !current.is_directory() {
                return Err(FsError::NotDirectory);
            }
            if name.len() > NAME_MAX {
                return Err(FsError::NameTooLong);
            }
            permission::check_search(caller, credentials.as_ref(), &current)?;
            let child = self.child(caller, &current, &name)?;
            let is_last = pending.is_empty();
            if child.file_type() != FileType::Symlink || (is_last && !follow_last) {
                found_as = (name != "." && name != "..").then(|| (current.clone(), name));
                current = child;
                continue;
            }
            *hops += 1;
            // A mount may refuse to have its symlinks followed
            // (`nosymfollow`); they can still be read.
            if *hops > SYMLINK_HOPS_MAX
                || child.mount.attributes() & super::mount::attribute::NOSYMFOLLOW != 0
            {
                return Err(FsError::TooManyLinks);
            }
            match child.node.read_link(caller)? {
                LinkTarget::Object { location, .. } => {
                    found_as = None;
                    current = location;
                }
                LinkTarget::Path(target) => {
                    check_length(&target)?;
                    if target.starts_with('/') {
                        current = root.clone();
                    }
                    pending.extend(components(&target).into_iter().map(String::from));
                }
            }
        }
        Ok((current, found_as))
    }

    /// Resolves all but the last component of `path` (following symlinks)
    /// and returns that directory with the last component.
    pub fn resolve_parent(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
    ) -> Result<ParentAndName, FsError> {
        let mut hops = 0;
        self.walk_parent(caller, start, path, &mut hops)
    }

    /// [`Vfs::resolve_parent`] with a shared symlink count.
    pub fn walk_parent(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        hops: &mut u32,
    ) -> Result<ParentAndName, FsError> {
        check_length(path)?;
        let trimmed = path.trim_end_matches('/');
        let has_trailing_slash = trimmed.len() != path.len();
        if trimmed.is_empty() {
            return Ok(ParentAndName {
                directory: self.root_for(caller),
                name: String::new(),
                last: LastComponent::Root,
                has_trailing_slash,
            });
        }
        let (directory_path, name) = match trimmed.rfind('/') {
            Some(index) => (&trimmed[..=index], &trimmed[index + 1..]),
            None => ("", trimmed),
        };
        let directory = if directory_path.is_empty() {
            start.clone()
        } else {
            self.walk(caller, start, directory_path, true, hops)?
        };
        if !directory.is_directory() {
            return Err(FsError::NotDirectory);
        }
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        permission::check_search(caller, caller.credentials().as_ref(), &directory)?;
        let last = match name {
            "." => LastComponent::Dot,
            ".." => LastComponent::DotDot,
            _ => LastComponent::Normal,
        };
        Ok(ParentAndName { directory, name: String::from(name), last, has_trailing_slash })
    }
}

#[cfg(test)]
mod tests;
