//! The files `/proc/PID/ns/*` lead to (Linux's nsfs): one per namespace,
//! whose inode number is the namespace's. Opening one gives a descriptor
//! that `setns` and the `NS_GET_*` requests of `ioctl` take.

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use super::user::UserNamespace;
use super::{Kind, Namespace};
use crate::vfs::{Caller, FileType, FsError, Metadata, Node};

/// A namespace of any kind.
#[derive(Debug, Clone)]
pub enum Handle {
    /// A user namespace.
    User(Arc<UserNamespace>),
    /// Any other.
    Other(Arc<Namespace>),
}

impl Handle {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Handle::User(_) => Kind::User,
            Handle::Other(namespace) => namespace.kind(),
        }
    }

    /// Its inode number.
    pub fn inode(&self) -> u64 {
        match self {
            Handle::User(namespace) => namespace.inode(),
            Handle::Other(namespace) => namespace.inode(),
        }
    }

    /// The user namespace that owns it (a user namespace's parent; none
    /// for the initial user namespace).
    pub fn owner(&self) -> Option<Arc<UserNamespace>> {
        match self {
            Handle::User(namespace) => namespace.parent().cloned(),
            Handle::Other(namespace) => Some(namespace.owner().clone()),
        }
    }

    /// What a `/proc/PID/ns` link shows: `uts:[4026531838]`.
    pub fn link_text(&self) -> String {
        alloc::format!("{}:[{}]", self.kind().name(), self.inode())
    }
}

/// The file of one namespace.
#[derive(Debug)]
pub struct NamespaceFile {
    handle: Handle,
}

impl NamespaceFile {
    /// The file of `handle` (its device number is that of the mount it
    /// is reached through).
    pub fn new(handle: Handle) -> Self {
        NamespaceFile { handle }
    }

    /// The namespace.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Node for NamespaceFile {
    fn inode(&self) -> u64 {
        self.handle.inode()
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        Ok(Metadata::new(self.inode(), FileType::Regular, 0o444))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, _caller: &Caller<'_>, _offset: u64, _buffer: &mut [u8]) -> Result<usize, FsError> {
        Err(FsError::InvalidArgument)
    }
}
