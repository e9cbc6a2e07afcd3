//! Opening paths: `O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_DIRECTORY`,
//! `O_NOFOLLOW` and `O_PATH`, with Linux's errors.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::FsError;
use super::file::{FileObject, OpenFile, flags};
use super::mount::{Location, Vfs};
use super::node::{Caller, FileType, LinkTarget, NewNode};
use super::path::{LastComponent, SYMLINK_HOPS_MAX};
use super::permission;

/// A node found or made by `open`, with the directory and name it has.
type Opened = (Location, Option<(Location, String)>);

/// What `open` wants of a node: read permission, write permission or
/// both, by the access mode; write too for `O_TRUNC`.
fn wanted_permissions(open_flags: u32) -> u32 {
    let mut wanted = match open_flags & flags::O_ACCMODE {
        flags::O_RDONLY => permission::READ,
        flags::O_WRONLY => permission::WRITE,
        _ => permission::READ | permission::WRITE,
    };
    if open_flags & flags::O_TRUNC != 0 {
        wanted |= permission::WRITE;
    }
    wanted
}

impl Vfs {
    /// Opens `path` (from `start`) with the `open` flags `open_flags`;
    /// `permissions` (the umask applied) are those of a file it creates.
    pub fn open(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        open_flags: u32,
        permissions: u32,
    ) -> Result<Arc<OpenFile>, FsError> {
        let is_path_only = open_flags & flags::O_PATH != 0;
        let access = open_flags & flags::O_ACCMODE;
        if open_flags & flags::O_TMPFILE == flags::O_TMPFILE {
            return self.open_temporary(caller, start, path, open_flags, permissions);
        }
        if access == flags::O_ACCMODE && !is_path_only {
            return Err(FsError::InvalidArgument);
        }
        let is_creating = open_flags & flags::O_CREAT != 0 && !is_path_only;
        if is_creating && open_flags & flags::O_DIRECTORY != 0 {
            return Err(FsError::InvalidArgument);
        }
        let follow = open_flags & flags::O_NOFOLLOW == 0;
        let mut hops = 0;
        let mut is_created = false;
        let (location, name) = if is_creating {
            let is_exclusive = open_flags & flags::O_EXCL != 0;
            self.open_or_create(
                caller,
                start,
                path,
                follow && !is_exclusive,
                is_exclusive,
                permissions,
                &mut hops,
                &mut is_created,
            )?
        } else {
            self.walk_named(caller, start, path, follow, &mut hops)?
        };
        let file_type = location.file_type();
        if file_type == FileType::Symlink && !is_path_only {
            return Err(FsError::TooManyLinks);
        }
        if open_flags & flags::O_DIRECTORY != 0 && file_type != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
        if file_type == FileType::Socket && !is_path_only {
            return Err(FsError::Errno(crate::errno::Errno::ENXIO));
        }
        if is_path_only {
            let data = location.node.clone();
            return Ok(OpenFile::new(FileObject::Node { location, data, name }, open_flags));
        }
        let is_writing = access != flags::O_RDONLY;
        let is_truncating = open_flags & flags::O_TRUNC != 0;
        if file_type == FileType::Directory && (is_writing || is_truncating) {
            return Err(FsError::IsDirectory);
        }
        // Device nodes are not the filesystem's contents: writing one on a
        // read-only mount is allowed.
        let is_content = matches!(file_type, FileType::Regular | FileType::Directory);
        if (is_writing || is_truncating) && is_content {
            location.check_writable()?;
        }
        // A file this open made is opened whatever its permissions say.
        if !is_created {
            permission::check_caller(caller, &location.metadata(caller)?, wanted_permissions(open_flags))?;
        }
        // O_NOATIME only for the file's owner (or CAP_FOWNER).
        if open_flags & flags::O_NOATIME != 0
            && let Some(credentials) = caller.credentials()
            && !permission::is_owner(&credentials, &location.metadata(caller)?)
            && !credentials.has_capability(crate::credentials::capability::FOWNER)
        {
            return Err(FsError::NotPermitted);
        }
        if (is_writing || is_truncating) && file_type == FileType::Regular && !is_created {
            location.node.prepare_for_write(caller, is_truncating)?;
        }
        if file_type == FileType::Fifo {
            let Some(pipe) = location.node.named_pipe() else {
                // A stream standing for a pipe, reached through
                // `/proc/PID/fd/N`.
                let special =
                    location.node.open_device(caller, open_flags)?.ok_or(FsError::NoSuchPosition)?;
                return Ok(OpenFile::new(FileObject::Special(special), open_flags));
            };
            let is_nonblocking = open_flags & flags::O_NONBLOCK != 0;
            let end = pipe.open_named(caller, access != flags::O_WRONLY, is_writing, is_nonblocking)?;
            return Ok(OpenFile::new(FileObject::Pipe(end), open_flags));
        }
        // A mount may refuse its device nodes (`nodev`).
        if matches!(file_type, FileType::CharacterDevice | FileType::BlockDevice)
            && location.mount.attributes() & super::mount::attribute::NODEV != 0
        {
            return Err(FsError::AccessDenied);
        }
        let device = match location.node.names_device() {
            Some(number) => Some(self.find_device(caller, file_type, number)?),
            None => None,
        };
        if file_type == FileType::CharacterDevice {
            let node = device.as_ref().unwrap_or(&location.node);
            if let Some(special) = node.open_device(caller, open_flags)? {
                return Ok(OpenFile::new(FileObject::Special(special), open_flags));
            }
        }
        let data = match device {
            Some(device) => device.open(caller)?.unwrap_or(device),
            None => location.node.open(caller)?.unwrap_or_else(|| location.node.clone()),
        };
        // What the open made is truncated: a generated file (procfs's
        // writable ones) is its own object.
        if is_truncating
            && file_type == FileType::Regular
            && !is_created
            && location.node.names_device().is_none()
        {
            data.truncate(caller, 0)?;
            super::notify::at(
                &location,
                name.as_ref().map(|(directory, name)| (directory, name.as_str())),
                super::notify::mask::MODIFY,
            );
        }
        let file = OpenFile::new(FileObject::Node { location, data, name }, open_flags);
        file.notify(super::notify::mask::OPEN);
        Ok(file)
    }

    /// Opens the regular file at `location` to run it (`execve`, and the
    /// interpreter a program names): as Linux, this asks execute
    /// permission, not read permission, so a program of mode 0111 runs
    /// although nobody may read it.
    pub fn open_to_execute(&self, caller: &Caller<'_>, location: Location) -> Result<Arc<OpenFile>, FsError> {
        if location.file_type() != FileType::Regular {
            return Err(FsError::AccessDenied);
        }
        permission::check_caller(caller, &location.metadata(caller)?, permission::EXECUTE)?;
        let data = location.node.open(caller)?.unwrap_or_else(|| location.node.clone());
        let file = OpenFile::new(FileObject::Node { location, data, name: None }, flags::O_RDONLY);
        file.notify(super::notify::mask::OPEN);
        Ok(file)
    }

    /// `O_TMPFILE`: a new regular file without a name in the filesystem of
    /// the directory `path`, opened for writing. Unless `O_EXCL` was given,
    /// `linkat` may name it later.
    fn open_temporary(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        open_flags: u32,
        permissions: u32,
    ) -> Result<Arc<OpenFile>, FsError> {
        if open_flags & flags::O_ACCMODE == flags::O_RDONLY
            || open_flags & flags::O_ACCMODE == flags::O_ACCMODE
        {
            return Err(FsError::InvalidArgument);
        }
        let mut hops = 0;
        let (directory, _) = self.walk_named(caller, start, path, true, &mut hops)?;
        if !directory.is_directory() {
            return Err(FsError::NotDirectory);
        }
        directory.check_writable()?;
        permission::check_caller(
            caller,
            &directory.metadata(caller)?,
            permission::WRITE | permission::EXECUTE,
        )?;
        let node = directory.node.create_temporary(caller, permissions, open_flags & flags::O_EXCL == 0)?;
        let location = Location { mount: directory.mount.clone(), node: node.clone() };
        let file = OpenFile::new(FileObject::Node { location, data: node, name: None }, open_flags);
        file.notify(super::notify::mask::OPEN);
        Ok(file)
    }

    /// The device `number` of type `file_type` among devfs's nodes, which a
    /// device node made by `mknod` names; `NoSuchPosition` (`ENXIO`) when
    /// no driver has it.
    fn find_device(
        &self,
        caller: &Caller<'_>,
        file_type: FileType,
        number: u64,
    ) -> Result<alloc::sync::Arc<dyn super::Node>, FsError> {
        for mount in self.mounts() {
            if mount.filesystem().type_name() != "devtmpfs" {
                continue;
            }
            let root = Location::root_of(&mount);
            let mut offset = 0;
            while let Some(entry) = root.node.read_directory(caller, offset)? {
                offset = entry.next_offset;
                if entry.file_type != file_type {
                    continue;
                }
                let node = root.node.lookup(caller, &entry.name)?;
                if node.metadata(caller)?.represented_device == number {
                    return Ok(node);
                }
            }
        }
        Err(FsError::NoSuchPosition)
    }

    /// Finds the last component of `path` or creates it as a regular file,
    /// following a final symlink (a dangling one creates its target).
    #[allow(clippy::too_many_arguments)]
    fn open_or_create(
        &self,
        caller: &Caller<'_>,
        start: &Location,
        path: &str,
        follow: bool,
        is_exclusive: bool,
        permissions: u32,
        hops: &mut u32,
        is_created: &mut bool,
    ) -> Result<Opened, FsError> {
        let mut start = start.clone();
        let mut path = String::from(path);
        loop {
            let parent = self.walk_parent(caller, &start, &path, hops)?;
            if parent.last != LastComponent::Normal {
                return Err(if is_exclusive { FsError::Exists } else { FsError::IsDirectory });
            }
            let existing = match self.child(caller, &parent.directory, &parent.name) {
                Ok(existing) => existing,
                Err(FsError::NotFound) => {
                    if parent.has_trailing_slash {
                        return Err(FsError::IsDirectory);
                    }
                    parent.directory.check_writable()?;
                    permission::check_caller(
                        caller,
                        &parent.directory.metadata(caller)?,
                        permission::WRITE | permission::EXECUTE,
                    )?;
                    let node =
                        parent.directory.node.create(caller, &parent.name, NewNode::File, permissions)?;
                    *is_created = true;
                    super::notify::created(&parent.directory, &parent.name, false);
                    let location = Location { mount: parent.directory.mount.clone(), node };
                    return Ok((location, Some((parent.directory, parent.name))));
                }
                Err(error) => return Err(error),
            };
            if is_exclusive {
                return Err(FsError::Exists);
            }
            if existing.file_type() == FileType::Symlink && follow {
                *hops += 1;
                if *hops > SYMLINK_HOPS_MAX
                    || existing.mount.attributes() & super::mount::attribute::NOSYMFOLLOW != 0
                {
                    return Err(FsError::TooManyLinks);
                }
                let target = existing.node.read_link(caller)?;
                super::path::may_follow(caller, &existing, &target)?;
                match target {
                    LinkTarget::Path(target) => {
                        path = target;
                        start = parent.directory;
                        continue;
                    }
                    LinkTarget::Object { location, .. } => {
                        if let Some(scope) = caller.scope {
                            scope.allows(&location)?;
                        }
                        return Ok((location, None));
                    }
                }
            }
            if existing.is_directory() {
                return Err(FsError::IsDirectory);
            }
            if parent.has_trailing_slash {
                return Err(FsError::NotDirectory);
            }
            return Ok((existing, Some((parent.directory, parent.name))));
        }
    }

    /// Reads a whole file (the loader reads executables this way).
    pub fn read_file(&self, caller: &Caller<'_>, path: &str) -> Result<Vec<u8>, FsError> {
        let file = self.open(caller, &self.root(), path, flags::O_RDONLY, 0)?;
        if file.location().is_some_and(Location::is_directory) {
            return Err(FsError::IsDirectory);
        }
        let size = file.metadata(caller)?.size_bytes;
        let mut contents = Vec::new();
        contents.try_reserve_exact(size as usize).map_err(|_| FsError::NoSpace)?;
        contents.resize(size as usize, 0);
        let mut filled = 0;
        while filled < contents.len() {
            let length = file.read(caller, &mut contents[filled..])?;
            if length == 0 {
                contents.truncate(filled);
                return Ok(contents);
            }
            filled += length;
        }
        // Generated files (procfs) report no size: read until the end.
        let mut chunk = [0u8; 512];
        loop {
            let length = file.read(caller, &mut chunk)?;
            if length == 0 {
                return Ok(contents);
            }
            contents.extend_from_slice(&chunk[..length]);
        }
    }

    /// The path `/proc/self/fd` shows for `file`.
    pub fn describe(&self, caller: &Caller<'_>, file: &OpenFile) -> String {
        match file.object() {
            FileObject::Pipe(end) => alloc::format!("pipe:[{}]", end.pipe().inode()),
            FileObject::Special(special) => special.name(),
            FileObject::Node { location, name, .. } => {
                let path = match name {
                    Some((directory, name)) if !location.is_directory() => {
                        let mut path = self.path_of(caller, directory).unwrap_or_default();
                        if !path.ends_with('/') {
                            path.push('/');
                        }
                        path.push_str(name);
                        let is_present =
                            self.child(caller, directory, name).is_ok_and(|found| found.is_same(location));
                        if !is_present {
                            path.push_str(" (deleted)");
                        }
                        Some(path)
                    }
                    _ => self.path_of(caller, location).ok(),
                };
                path.unwrap_or_else(|| alloc::format!("anon_inode:[{}]", location.node.inode()))
            }
        }
    }
}
