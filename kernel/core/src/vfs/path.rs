//! Path resolution (Linux `path_resolution(7)`): components, `.` and `..`
//! across mount points, symlinks up to [`SYMLINK_HOPS_MAX`], trailing
//! slashes, name and path length limits, and the limits `openat2` may set
//! on a walk ([`Scope`]).

use alloc::string::String;
use alloc::sync::Arc;
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

/// `openat2`'s `RESOLVE_*` limits on a walk.
pub mod resolve {
    /// Never leave the starting directory's mount.
    pub const NO_XDEV: u32 = 0x01;
    /// Follow no `/proc` link to an object (`/proc/self/exe`, `fd/N`).
    pub const NO_MAGICLINKS: u32 = 0x02;
    /// Follow no symlink at all.
    pub const NO_SYMLINKS: u32 = 0x04;
    /// Stay beneath the starting directory: absolute paths and `..` above
    /// it fail.
    pub const BENEATH: u32 = 0x08;
    /// Take the starting directory as the root.
    pub const IN_ROOT: u32 = 0x10;
    /// Only what needs no filesystem to answer (`RESOLVE_CACHED`).
    pub const CACHED: u32 = 0x20;
    /// Every flag.
    pub const ALL: u32 = NO_XDEV | NO_MAGICLINKS | NO_SYMLINKS | BENEATH | IN_ROOT | CACHED;
}

/// Limits a walk keeps to, and the directory (`openat2`'s `dirfd`) they
/// are relative to. Breaking one fails the walk: `ELOOP` for a symlink
/// that may not be followed, `EXDEV` for leaving the mount or the scope.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `resolve::*` bits.
    pub restrictions: u32,
    /// The directory the walk starts from.
    pub start: Location,
}

impl Scope {
    fn has(&self, restriction: u32) -> bool {
        self.restrictions & restriction != 0
    }

    /// Whether the walk may be at `location` (`NO_XDEV`).
    pub(super) fn allows(&self, location: &Location) -> Result<(), FsError> {
        if self.has(resolve::NO_XDEV) && !Arc::ptr_eq(&location.mount, &self.start.mount) {
            return Err(FsError::CrossDevice);
        }
        Ok(())
    }

    /// Whether the walk may follow the symlink `link` to `target`.
    pub(super) fn may_follow(&self, link: &Location, target: &LinkTarget) -> Result<(), FsError> {
        if self.has(resolve::NO_SYMLINKS) {
            return Err(FsError::TooManyLinks);
        }
        if is_magic(link, target) {
            if self.has(resolve::NO_MAGICLINKS) {
                return Err(FsError::TooManyLinks);
            }
            if let LinkTarget::Object { location, .. } = target {
                self.allows(location)?;
            }
            if self.has(resolve::BENEATH | resolve::IN_ROOT) {
                return Err(FsError::CrossDevice);
            }
        }
        match target {
            LinkTarget::Path(path) if path.starts_with('/') && self.has(resolve::BENEATH) => {
                Err(FsError::CrossDevice)
            }
            _ => Ok(()),
        }
    }
}

/// Whether following `link` jumps to an object rather than walking a
/// path: procfs's links to what a process has (`/proc/PID/exe`, `cwd`,
/// `root`, `fd/N`), which name their objects by absolute path or by kind
/// (`pipe:[N]`); its plain links (`/proc/self`, `/proc/mounts`) are
/// relative paths.
fn is_magic(link: &Location, target: &LinkTarget) -> bool {
    match target {
        LinkTarget::Object { .. } => true,
        LinkTarget::Path(path) => link.mount.filesystem().type_name() == "proc" && !is_relative(path),
    }
}

fn is_relative(path: &str) -> bool {
    !path.starts_with('/') && !path.contains(":[")
}

/// Whether `caller`'s walks may follow the symlink `link` to `target`.
pub(super) fn may_follow(caller: &Caller<'_>, link: &Location, target: &LinkTarget) -> Result<(), FsError> {
    caller.scope.map_or(Ok(()), |scope| scope.may_follow(link, target))
}

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
        let scope = caller.scope;
        let root = self.walk_root(caller);
        if path.starts_with('/') && scope.is_some_and(|scope| scope.has(resolve::BENEATH)) {
            return Err(FsError::CrossDevice);
        }
        let mut current = if path.starts_with('/') { root.clone() } else { start.clone() };
        let mut found_as: Option<(Location, String)> = None;
        let mut pending: Vec<String> = components(path).into_iter().map(String::from).collect();
        let credentials = caller.credentials();
        while let Some(name) = pending.pop() {
            if let Some(scope) = scope {
                scope.allows(&current)?;
            }
            if !current.is_directory() {
                return Err(FsError::NotDirectory);
            }
            if name.len() > NAME_MAX {
                return Err(FsError::NameTooLong);
            }
            permission::check_search(caller, credentials.as_ref(), &current)?;
            let child = if name == ".." && scope.is_some() && current.is_same(&root) {
                // `..` never leaves a scope's root; nor, under
                // `RESOLVE_BENEATH`, the starting directory.
                if scope.is_some_and(|scope| scope.has(resolve::BENEATH)) {
                    return Err(FsError::CrossDevice);
                }
                current.clone()
            } else {
                self.child(caller, &current, &name)?
            };
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
            let target = child.node.read_link(caller)?;
            may_follow(caller, &child, &target)?;
            match target {
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
        if let Some(scope) = scope {
            scope.allows(&current)?;
        }
        Ok((current, found_as))
    }

    /// The directory an absolute path starts from: the caller's root, or
    /// the scope's starting directory under `RESOLVE_IN_ROOT` or
    /// `RESOLVE_BENEATH` (whose `..` stops there).
    fn walk_root(&self, caller: &Caller<'_>) -> Location {
        match caller.scope {
            Some(scope) if scope.has(resolve::IN_ROOT | resolve::BENEATH) => scope.start.clone(),
            _ => self.root_for(caller),
        }
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
            if caller.scope.is_some_and(|scope| scope.has(resolve::BENEATH)) {
                return Err(FsError::CrossDevice);
            }
            return Ok(ParentAndName {
                directory: self.walk_root(caller),
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
