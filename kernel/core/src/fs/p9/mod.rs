//! The 9P2000.L client: a host's shared directory as a VFS filesystem.
//!
//! The layers, bottom up: a [`MessageChannel`] (the virtio-9p device,
//! which the kernel finds by its mount tag), the messages ([`protocol`]),
//! the client of one share that multiplexes calls from many threads and
//! checks every reply ([`client`]), and the filesystem: [`P9FileSystem`]
//! and its nodes (`node`), one per file the server knows (by `qid.path`),
//! each with the fid its walk made. [`mount`] negotiates `msize` and
//! attaches to the share's root.

pub mod client;
mod node;
pub mod protocol;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::fmt;
use core::sync::atomic::AtomicU64;

use self::client::Client;
use self::node::P9Node;
use crate::device::MessageChannel;
use crate::vfs::{Caller, FileSystem, FsError, Node, Statistics};

/// `V9FS_MAGIC`, what `statfs` reports as the type.
const V9FS_MAGIC: u64 = 0x0102_1997;
/// The `msize` asked for: 512 KiB of file data per message, in one
/// descriptor of the caller's memory (the queue's size does not limit
/// it), beside the message's header.
pub const MESSAGE_BYTES_DEFAULT: usize = 512 * 1024 + 4096;

/// How a share is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Every change is refused (`ro`).
    pub is_read_only: bool,
    /// The largest message (`msize=`).
    pub message_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { is_read_only: false, message_bytes: MESSAGE_BYTES_DEFAULT }
    }
}

impl Options {
    /// Parses Linux's 9p mount options (`ro`, `rw`, `msize=`, and
    /// `trans=virtio`, `version=9p2000.L`, `cache=`, `access=`, `posixacl`,
    /// which describe what rosv does anyway).
    pub fn parse(text: &str) -> Result<Options, P9MountError> {
        let mut options = Options::default();
        for option in text.split(',').filter(|option| !option.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            match key {
                "ro" => options.is_read_only = true,
                "rw" => options.is_read_only = false,
                "msize" => {
                    options.message_bytes = value
                        .parse::<usize>()
                        .ok()
                        .filter(|bytes| *bytes >= protocol::MESSAGE_BYTES_MIN && *bytes <= 16 << 20)
                        .ok_or_else(|| P9MountError::Option(String::from(option)))?;
                }
                "trans" if value == "virtio" => {}
                "version" if value.eq_ignore_ascii_case(protocol::VERSION) => {}
                "cache" | "access" | "posixacl" | "noextend" | "dfltuid" | "dfltgid" | "uname" | "aname" => {}
                _ => return Err(P9MountError::Option(String::from(option))),
            }
        }
        Ok(options)
    }
}

/// Why a share could not be mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum P9MountError {
    /// No 9P device has this mount tag.
    NoSuchTag(String),
    /// An option is unknown or its value wrong.
    Option(String),
    /// The server did not answer as it should.
    Server(FsError),
}

impl fmt::Display for P9MountError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            P9MountError::NoSuchTag(tag) => {
                write!(formatter, "no virtio-9p device has the mount tag {tag:?}")
            }
            P9MountError::Option(option) => write!(formatter, "unknown or invalid 9p option {option:?}"),
            P9MountError::Server(error) => write!(formatter, "the 9P server failed: {error}"),
        }
    }
}

/// What every node of a mount shares.
pub(crate) struct Shared {
    client: Client,
    is_read_only: bool,
    /// The live nodes by `qid.path`, each with its serial number.
    nodes: spin::Mutex<BTreeMap<u64, (u64, Weak<P9Node>)>>,
    next_serial: AtomicU64,
}

/// A mounted share.
pub struct P9FileSystem {
    shared: Arc<Shared>,
    root: Arc<P9Node>,
    tag: String,
}

impl fmt::Debug for P9FileSystem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("P9FileSystem").field("tag", &self.tag).finish()
    }
}

/// Mounts the share behind `channel` with `options` (Linux's 9p option
/// syntax).
pub fn mount(
    channel: Arc<dyn MessageChannel>,
    caller: &Caller<'_>,
    options: &str,
) -> Result<Arc<P9FileSystem>, P9MountError> {
    let options = Options::parse(options)?;
    let tag = String::from(channel.tag());
    let client = Client::connect(channel, options.message_bytes).map_err(P9MountError::Server)?;
    let (fid, _) = client.attach(0).map_err(P9MountError::Server)?;
    let attributes = match client.get_attributes(fid) {
        Ok(attributes) => attributes,
        Err(error) => {
            client.clunk(fid);
            return Err(P9MountError::Server(error));
        }
    };
    let shared = Arc::new(Shared {
        client,
        is_read_only: options.is_read_only,
        nodes: spin::Mutex::new(BTreeMap::new()),
        next_serial: AtomicU64::new(0),
    });
    let root = P9Node::get(&shared, fid, attributes, None, caller.machine.monotonic_ns())
        .map_err(P9MountError::Server)?;
    log::info!("9p: mounted {tag} (msize {})", shared.client.message_bytes());
    Ok(Arc::new(P9FileSystem { shared, root, tag }))
}

/// Mounts the share whose tag is `tag` among `vfs`'s channels.
pub fn mount_tag(
    vfs: &crate::vfs::Vfs,
    caller: &Caller<'_>,
    tag: &str,
    options: &str,
) -> Result<Arc<P9FileSystem>, P9MountError> {
    let channel = vfs.channel(tag).ok_or_else(|| P9MountError::NoSuchTag(String::from(tag)))?;
    mount(channel, caller, options)
}

impl FileSystem for P9FileSystem {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "9p"
    }

    fn is_storage_backed(&self) -> bool {
        true
    }

    fn is_read_only(&self) -> bool {
        self.shared.is_read_only
    }

    fn statistics(&self) -> Statistics {
        let mut statistics = Statistics { magic: V9FS_MAGIC, block_size_bytes: 4096, ..Default::default() };
        match self.shared.client.statfs(self.root.fid()) {
            Ok([block_size, blocks, available, files, free_files]) => {
                statistics.block_size_bytes = block_size.max(1);
                statistics.blocks = blocks;
                statistics.free_blocks = available;
                statistics.files = files;
                statistics.free_files = free_files;
            }
            Err(error) => log::warn!("9p: Tstatfs failed: {error}"),
        }
        statistics
    }

    fn sync(&self) -> Result<(), FsError> {
        let nodes: alloc::vec::Vec<Arc<P9Node>> =
            self.shared.nodes.lock().values().filter_map(|(_, node)| node.upgrade()).collect();
        let mut result = Ok(());
        for node in nodes {
            if let Err(error) = node.flush() {
                result = Err(error);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests;
