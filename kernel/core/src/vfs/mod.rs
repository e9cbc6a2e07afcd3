//! The virtual filesystem: nodes, mounts, paths, open files, descriptors.
//!
//! Filesystems ([`crate::fs`]) implement [`FileSystem`] and [`Node`]. The
//! [`Vfs`] keeps the mount table and resolves paths over it into
//! [`Location`]s (a mount and a node). Opening a location gives an
//! [`OpenFile`] (an open file description: offset and status flags), which
//! a process's [`DescriptorTable`] maps numbers to; pipes and
//! [`SpecialFile`]s are open files without a node, whose changes wake the
//! threads on their [`WaiterList`]. Errors are [`FsError`]s, turned into
//! errno values in one place ([`error`]).

mod access_time;
pub mod descriptors;
pub mod epoll;
pub mod error;
pub mod eventfd;
pub mod extended;
pub mod file;
pub mod locks;
pub mod mount;
pub mod node;
pub mod notify;
mod open;
pub mod operations;
pub mod path;
pub mod permission;
pub mod pipe;
pub mod special;
pub mod waiters;

pub use descriptors::{Descriptor, DescriptorTable};
pub use epoll::Epoll;
pub use error::FsError;
pub use eventfd::EventCounter;
pub use file::{FileObject, OpenFile};
pub use mount::{Location, Mount, NewMount, Vfs};
pub use node::{
    AttributeChanges, Caller, DirectoryEntry, FileSystem, FileType, LinkTarget, Listing, Metadata, NewNode,
    Node, RenameMode, Statistics,
};
pub use pipe::{Pipe, PipeEnd};
pub use special::SpecialFile;
pub use waiters::WaiterList;
