//! The names of local sockets: addresses as `struct sockaddr_un` carries
//! them, and the namespace that maps a path's socket node or an abstract
//! name to the socket bound there.

use alloc::format;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::LocalSocket;
use crate::errno::Errno;
use crate::net::address::family;
use crate::vfs::node::Node;

/// The bytes of `sun_path` (`struct sockaddr_un` is 110 bytes).
pub const PATH_MAX: usize = 108;
/// A local socket's address, as `struct sockaddr_un` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalName {
    /// No name (only the family).
    Unnamed,
    /// A filesystem path.
    Path(Vec<u8>),
    /// An abstract name: the bytes after the leading NUL.
    Abstract(Vec<u8>),
}

impl LocalName {
    /// Reads a `struct sockaddr_un` of `bytes` (family included).
    pub fn parse(bytes: &[u8]) -> Result<LocalName, Errno> {
        if bytes.len() < 2 || bytes.len() > 2 + PATH_MAX {
            return Err(Errno::EINVAL);
        }
        let path = &bytes[2..];
        Ok(match path.first() {
            None => LocalName::Unnamed,
            Some(0) => LocalName::Abstract(path[1..].to_vec()),
            Some(_) => {
                let end = path.iter().position(|&byte| byte == 0).unwrap_or(path.len());
                LocalName::Path(path[..end].to_vec())
            }
        })
    }

    /// The `struct sockaddr_un` bytes for this name, as long as Linux
    /// reports them: the family alone, the path with its NUL, or the NUL
    /// and the abstract name.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = family::UNIX.to_ne_bytes().to_vec();
        match self {
            LocalName::Unnamed => {}
            LocalName::Path(path) => {
                bytes.extend_from_slice(path);
                // A path that fills `sun_path` has no room for its NUL.
                if path.len() < PATH_MAX {
                    bytes.push(0);
                }
            }
            LocalName::Abstract(name) => {
                bytes.push(0);
                bytes.extend_from_slice(name);
            }
        }
        bytes
    }
}

/// Where a name leads: the socket node a path names, or an abstract name.
#[derive(Clone)]
pub enum Key {
    /// The socket node of a path.
    Node(Arc<dyn Node>),
    /// An abstract name.
    Abstract(Vec<u8>),
}

impl core::fmt::Debug for Key {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Key::Node(node) => formatter.debug_tuple("Node").field(&node.inode()).finish(),
            Key::Abstract(name) => formatter.debug_tuple("Abstract").field(name).finish(),
        }
    }
}

impl Key {
    fn matches(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::Node(a), Key::Node(b)) => Arc::ptr_eq(a, b),
            (Key::Abstract(a), Key::Abstract(b)) => a == b,
            _ => false,
        }
    }
}

/// The names local sockets are bound to.
#[derive(Default)]
pub struct Names {
    entries: Mutex<Vec<(Key, Weak<LocalSocket>)>>,
    /// The last automatic name handed out.
    last_automatic: AtomicU64,
}

impl core::fmt::Debug for Names {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Names").field("entries", &self.entries.lock().len()).finish()
    }
}

impl Names {
    /// An empty namespace.
    pub fn new() -> Arc<Names> {
        Arc::new(Names::default())
    }

    /// The socket bound to `key`, if it still exists.
    pub fn find(&self, key: &Key) -> Option<Arc<LocalSocket>> {
        let entries = self.entries.lock();
        entries.iter().find(|(bound, _)| bound.matches(key)).and_then(|(_, socket)| socket.upgrade())
    }

    /// Binds `key` to `socket`; `EADDRINUSE` if it is taken.
    pub(super) fn insert(&self, key: Key, socket: Weak<LocalSocket>) -> Result<(), Errno> {
        let mut entries = self.entries.lock();
        entries.retain(|(_, socket)| socket.strong_count() > 0);
        if entries.iter().any(|(bound, _)| bound.matches(&key)) {
            return Err(Errno::EADDRINUSE);
        }
        entries.push((key, socket));
        Ok(())
    }

    pub(super) fn remove(&self, key: &Key) {
        self.entries.lock().retain(|(bound, _)| !bound.matches(key));
    }

    /// A free abstract name of five hexadecimal digits, as Linux's
    /// automatic binding gives.
    pub(super) fn automatic(&self) -> Vec<u8> {
        loop {
            let number = self.last_automatic.fetch_add(1, Ordering::Relaxed) & 0xf_ffff;
            let name = format!("{number:05x}").into_bytes();
            if self.find(&Key::Abstract(name.clone())).is_none() {
                return name;
            }
        }
    }
}
