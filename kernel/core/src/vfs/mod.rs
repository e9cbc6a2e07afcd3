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

/// A device number as applications see it (`st_dev`: the minor's low byte,
/// the major, then the minor's other bits) as the kernel numbers it inside,
/// major << 20 | minor, which `/proc` files such as fdinfo show.
pub fn internal_device_number(device: u64) -> u64 {
    let major = ((device >> 8) & 0xfff) | ((device >> 32) & !0xfff);
    let minor = (device & 0xff) | ((device >> 12) & !0xff);
    (major << 20) | (minor & 0xf_ffff)
}
