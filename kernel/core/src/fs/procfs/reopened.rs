//! Where `/proc/PID/fd/N` leads for a nameless pipe, stream or object.
//!
//! Linux follows such a link to the file's inode itself: opening a pipe's
//! inode opens that pipe again, as a FIFO opens (`/dev/stdin` in a
//! pipeline, bash's `<(...)` as `/dev/fd/63`), while sockets and
//! anonymous inodes (eventfd, epoll, ...) refuse with `ENXIO`. The
//! standard streams from the host stand for pipes and reopen as one.

use alloc::sync::Arc;
use core::any::Any;

use crate::vfs::{Caller, FileObject, FileType, FsError, Metadata, Node, OpenFile, Pipe, SpecialFile};

/// The object an open file without a name reaches.
enum Object {
    Pipe(Arc<Pipe>),
    Special(Arc<dyn SpecialFile>),
}

/// A nameless open file's object, seen through `/proc/PID/fd/N`.
pub(super) struct ReopenedNode {
    object: Object,
    /// The owner a pipe's inode has: the ids of the process holding it.
    owner: (u32, u32),
}

impl ReopenedNode {
    /// The node for `file`, or `None` for a file with a path of its own,
    /// which the link shows and leads to instead.
    pub(super) fn of(file: &OpenFile, owner: (u32, u32)) -> Option<Self> {
        let object = match file.object() {
            FileObject::Pipe(end) => Object::Pipe(end.pipe().clone()),
            FileObject::Special(special) if !special.name().starts_with('/') => {
                Object::Special(special.clone())
            }
            _ => return None,
        };
        Some(ReopenedNode { object, owner })
    }
}

impl Node for ReopenedNode {
    fn inode(&self) -> u64 {
        match &self.object {
            Object::Pipe(pipe) => pipe.inode(),
            Object::Special(special) => special.metadata().inode,
        }
    }

    fn file_type(&self) -> FileType {
        match &self.object {
            Object::Pipe(_) => FileType::Fifo,
            Object::Special(special) => special.metadata().file_type,
        }
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = match &self.object {
            Object::Pipe(pipe) => Metadata::new(pipe.inode(), FileType::Fifo, 0o600),
            Object::Special(special) => special.metadata(),
        };
        (metadata.owner_user, metadata.owner_group) = self.owner;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn named_pipe(&self) -> Option<Arc<Pipe>> {
        match &self.object {
            Object::Pipe(pipe) => Some(pipe.clone()),
            Object::Special(_) => None,
        }
    }

    fn open_device(
        &self,
        _caller: &Caller<'_>,
        _open_flags: u32,
    ) -> Result<Option<Arc<dyn SpecialFile>>, FsError> {
        match &self.object {
            Object::Special(special) if special.reopens() => Ok(Some(special.clone())),
            _ => Err(FsError::NoSuchPosition),
        }
    }

    fn open(&self, _caller: &Caller<'_>) -> Result<Option<Arc<dyn Node>>, FsError> {
        // Sockets and anonymous inodes cannot be opened by a path.
        Err(FsError::NoSuchPosition)
    }
}
