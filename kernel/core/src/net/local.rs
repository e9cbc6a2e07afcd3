//! Local sockets (`AF_UNIX`): byte streams, datagrams and sequenced packets
//! between the application's threads, as `unix(7)` describes them.
//!
//! A socket is named by a filesystem path (a socket node that `bind`
//! creates), by an abstract name (a leading NUL byte, no file), or not at
//! all; [`Names`] maps names to the sockets bound to them. A connected
//! stream or packet socket shares a [`Channel`] with its peer: two bounded
//! queues, one each way. A datagram socket keeps its own inbox, which
//! senders fill.
//!
//! Locks nest in one order only: a socket's state, then another socket's
//! state (only `connect` does this, the caller's then the listener's), then
//! a channel. A sender never holds its own state while it fills another
//! socket's inbox, so two sockets sending to each other cannot deadlock.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Mutex;

use super::abi::{kind, shut};
use super::wait_for;
use crate::errno::Errno;
use crate::vfs::node::{Caller, FileType, Metadata};
use crate::vfs::waiters::events;
use crate::vfs::{FsError, OpenFile, SpecialFile, WaiterList};

mod connection;
mod datagram;
mod names;
mod options;

use datagram::INBOX_SLOTS;
pub use names::{Key, LocalName, Names, PATH_MAX};
use options::Options;

/// The default size of each queue (Linux's `net.core.wmem_default`).
const DEFAULT_BUFFER: usize = 212_992;
static NEXT_INODE: AtomicU64 = AtomicU64::new(1);

/// What kind of local socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKind {
    /// `SOCK_STREAM`: a byte stream.
    Stream,
    /// `SOCK_DGRAM`: datagrams, connected or addressed each time.
    Datagram,
    /// `SOCK_SEQPACKET`: a connection carrying whole messages.
    SeqPacket,
}

impl LocalKind {
    /// The kind for a `SOCK_*` type.
    pub fn from_type(socket_type: u32) -> Option<LocalKind> {
        match socket_type {
            kind::STREAM => Some(LocalKind::Stream),
            kind::DATAGRAM => Some(LocalKind::Datagram),
            kind::SEQPACKET => Some(LocalKind::SeqPacket),
            _ => None,
        }
    }

    fn socket_type(self) -> u32 {
        match self {
            LocalKind::Stream => kind::STREAM,
            LocalKind::Datagram => kind::DATAGRAM,
            LocalKind::SeqPacket => kind::SEQPACKET,
        }
    }

    fn is_connection(self) -> bool {
        self != LocalKind::Datagram
    }
}

/// Open files passed with data (`SCM_RIGHTS`).
pub type Rights = Vec<Arc<OpenFile>>;

/// Who sent data, as `struct ucred` tells it (`SCM_CREDENTIALS`,
/// `SO_PEERCRED`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The process id.
    pub process_id: u32,
    /// The user id.
    pub user_id: u32,
    /// The group id.
    pub group_id: u32,
}

impl PeerCredentials {
    /// What a receiver passing credentials sees for data sent while
    /// neither end passed them: no process, and the overflow user and group
    /// that stand for ids without a mapping.
    pub const NONE: PeerCredentials = PeerCredentials { process_id: 0, user_id: 65534, group_id: 65534 };

    /// The calling process's: its real ids, which Linux attaches to what
    /// it sends (`is_effective`: its effective ids, which `SO_PEERCRED`
    /// reports). The kernel itself is process 0, root.
    pub fn of(caller: &Caller<'_>, is_effective: bool) -> PeerCredentials {
        let Some(process) = caller.process else { return PeerCredentials::default() };
        let credentials = &process.state.lock().credentials;
        let (user_id, group_id) = if is_effective {
            (credentials.effective_user, credentials.effective_group)
        } else {
            (credentials.real_user, credentials.real_group)
        };
        PeerCredentials { process_id: process.pid as u32, user_id, group_id }
    }

    /// The bytes of a `struct ucred`.
    pub fn encode(&self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&self.process_id.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.user_id.to_ne_bytes());
        bytes[8..].copy_from_slice(&self.group_id.to_ne_bytes());
        bytes
    }
}

/// What a send carries besides its bytes.
#[derive(Debug, Default)]
pub struct Ancillary {
    /// Open files (`SCM_RIGHTS`).
    pub rights: Rights,
    /// Credentials the sender stated (`SCM_CREDENTIALS`), checked by the
    /// caller; without them the sender's own go along.
    pub credentials: Option<PeerCredentials>,
}

/// Data flowing one way through a connection.
#[derive(Default)]
struct Direction {
    bytes: VecDeque<u8>,
    /// For packet sockets, the lengths of the messages in `bytes`.
    messages: VecDeque<usize>,
    /// Bytes ever queued and ever taken: stream positions.
    queued_total: u64,
    taken_total: u64,
    /// Files passed along, each batch with the stream position of the
    /// first byte it came with (for packets, the message's start).
    rights: VecDeque<(u64, Rights)>,
    /// Where the bytes that came with files end: a stream read stops
    /// there, as Linux's stops after the buffer that carried them.
    rights_ends: VecDeque<u64>,
    /// Who sent the bytes from each position on.
    senders: VecDeque<(u64, PeerCredentials)>,
    /// The sender will send no more (closed or shut down).
    is_finished: bool,
    /// The receiver will read no more: sending fails with `EPIPE`.
    is_abandoned: bool,
    /// The sender closed with data of ours unread: the next read that
    /// finds nothing fails with `ECONNRESET`.
    is_reset: bool,
}

/// A connection between two stream or packet sockets: `directions[side]`
/// carries data to that side.
struct Channel {
    directions: Mutex<[Direction; 2]>,
    /// Each side's waiters, both notified at every change.
    waiters: [Arc<WaiterList>; 2],
    /// Bytes each direction holds at most.
    capacity: usize,
    /// Whether each side passes credentials (`SO_PASSCRED`): data sent
    /// while either does carries its sender's.
    passes_credentials: [AtomicBool; 2],
}

impl Channel {
    fn new(waiters: [Arc<WaiterList>; 2], passes_credentials: [bool; 2]) -> Channel {
        Channel {
            directions: Mutex::new(Default::default()),
            waiters,
            capacity: DEFAULT_BUFFER,
            passes_credentials: passes_credentials.map(AtomicBool::new),
        }
    }

    /// Whether data sent now carries its sender's credentials.
    fn carries_credentials(&self) -> bool {
        self.passes_credentials.iter().any(|passes| passes.load(Ordering::Relaxed))
    }

    fn notify(&self) {
        self.waiters[0].notify();
        self.waiters[1].notify();
    }
}

/// A datagram in an inbox.
struct Packet {
    bytes: Vec<u8>,
    sender: LocalName,
    rights: Rights,
    credentials: PeerCredentials,
}

enum State {
    /// Neither listening nor connected.
    Idle,
    /// Waiting for connections; `pending` holds those not yet accepted.
    /// `credentials` are the listener's, which its clients see as their
    /// peer's.
    Listening { backlog: usize, pending: VecDeque<Arc<LocalSocket>>, credentials: PeerCredentials },
    /// One end of a stream or packet connection.
    Connected { channel: Arc<Channel>, side: usize, peer: LocalName },
    /// A datagram socket and its inbox; `peer` is its default destination.
    Datagram { peer: Option<Weak<LocalSocket>>, inbox: VecDeque<Packet>, inbox_bytes: usize },
}

struct Inner {
    /// The name getsockname shows.
    name: LocalName,
    /// What this socket bound in [`Names`] (accepted sockets show their
    /// listener's name without owning it).
    key: Option<Key>,
    state: State,
    /// A datagram socket shut its reading or writing side down.
    is_read_shut: bool,
    is_write_shut: bool,
    /// Who the peer was when the connection was made (`SO_PEERCRED`).
    peer_credentials: Option<PeerCredentials>,
}

/// What a receive got.
#[derive(Debug)]
pub struct LocalReceived {
    /// Bytes stored.
    pub length: usize,
    /// The message's whole length (for streams, `length`).
    pub full_length: usize,
    /// The sender of a datagram.
    pub source: Option<LocalName>,
    /// Files passed with the data.
    pub rights: Rights,
    /// Who sent the data, when the socket passes credentials
    /// (`SO_PASSCRED`).
    pub credentials: Option<PeerCredentials>,
}

/// A local socket.
pub struct LocalSocket {
    kind: LocalKind,
    names: Arc<Names>,
    inode: u64,
    this: Weak<LocalSocket>,
    inner: Mutex<Inner>,
    options: Mutex<Options>,
    waiters: Arc<WaiterList>,
}

impl core::fmt::Debug for LocalSocket {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("LocalSocket").field("kind", &self.kind).field("inode", &self.inode).finish()
    }
}

impl LocalSocket {
    /// A new unnamed, unconnected socket of `kind` in `names`.
    pub fn new(names: &Arc<Names>, kind: LocalKind) -> Arc<LocalSocket> {
        let state = if kind.is_connection() {
            State::Idle
        } else {
            State::Datagram { peer: None, inbox: VecDeque::new(), inbox_bytes: 0 }
        };
        Arc::new_cyclic(|this| LocalSocket {
            kind,
            names: names.clone(),
            inode: NEXT_INODE.fetch_add(1, Ordering::Relaxed),
            this: this.clone(),
            inner: Mutex::new(Inner {
                name: LocalName::Unnamed,
                key: None,
                state,
                is_read_shut: false,
                is_write_shut: false,
                peer_credentials: None,
            }),
            options: Mutex::new(Options::default()),
            waiters: Arc::new(WaiterList::new()),
        })
    }

    /// Two sockets of `kind` connected to each other (`socketpair`), made
    /// by the kernel itself.
    pub fn pair(names: &Arc<Names>, kind: LocalKind) -> (Arc<LocalSocket>, Arc<LocalSocket>) {
        LocalSocket::pair_for(names, kind, PeerCredentials::default())
    }

    /// Two sockets of `kind` connected to each other, made by the process
    /// with `credentials` (each end's peer).
    pub fn pair_for(
        names: &Arc<Names>,
        kind: LocalKind,
        credentials: PeerCredentials,
    ) -> (Arc<LocalSocket>, Arc<LocalSocket>) {
        let first = LocalSocket::new(names, kind);
        let second = LocalSocket::new(names, kind);
        first.inner.lock().peer_credentials = Some(credentials);
        second.inner.lock().peer_credentials = Some(credentials);
        if kind.is_connection() {
            let channel = Arc::new(Channel::new([first.waiters.clone(), second.waiters.clone()], [false; 2]));
            first.inner.lock().state =
                State::Connected { channel: channel.clone(), side: 0, peer: LocalName::Unnamed };
            second.inner.lock().state = State::Connected { channel, side: 1, peer: LocalName::Unnamed };
        } else {
            if let State::Datagram { peer, .. } = &mut first.inner.lock().state {
                *peer = Some(Arc::downgrade(&second));
            }
            if let State::Datagram { peer, .. } = &mut second.inner.lock().state {
                *peer = Some(Arc::downgrade(&first));
            }
        }
        (first, second)
    }

    /// What kind of socket this is.
    pub fn kind(&self) -> LocalKind {
        self.kind
    }

    /// The largest message one receive may find: what the largest send
    /// buffer allows; `None` for a stream.
    pub fn largest_incoming(&self) -> Option<usize> {
        (self.kind != LocalKind::Stream).then_some(options::BUFFER_LIMITS.1 - 32)
    }

    /// The largest message one send may carry (Linux: the send buffer less
    /// 32 bytes); `None` for a stream, which takes what fits.
    pub fn largest_message(&self) -> Option<usize> {
        match self.kind {
            LocalKind::Stream => None,
            LocalKind::Datagram | LocalKind::SeqPacket => {
                Some(self.options.lock().send_buffer.saturating_sub(32))
            }
        }
    }

    /// `bind` to `name`, whose `key` the caller made: the socket node it
    /// created for a path, or the abstract name. `LocalName::Unnamed` asks
    /// for an automatic abstract name.
    pub fn bind(&self, name: LocalName, key: Option<Key>) -> Result<(), Errno> {
        let mut inner = self.inner.lock();
        if inner.key.is_some() || inner.name != LocalName::Unnamed {
            return Err(Errno::EINVAL);
        }
        let (name, key) = match (name, key) {
            (LocalName::Unnamed, _) => {
                let automatic = self.names.automatic();
                (LocalName::Abstract(automatic.clone()), Key::Abstract(automatic))
            }
            (name, Some(key)) => (name, key),
            (LocalName::Abstract(bytes), None) => (LocalName::Abstract(bytes.clone()), Key::Abstract(bytes)),
            (LocalName::Path(_), None) => return Err(Errno::EINVAL),
        };
        self.names.insert(key.clone(), self.this.clone())?;
        inner.name = name;
        inner.key = Some(key);
        Ok(())
    }

    /// `listen`: stream and packet sockets only, bound or not (an unbound
    /// one gets an automatic name). Its clients see `credentials` as their
    /// peer's.
    pub fn listen(&self, backlog: usize, credentials: PeerCredentials) -> Result<(), Errno> {
        if !self.kind.is_connection() {
            return Err(Errno::EOPNOTSUPP);
        }
        if self.inner.lock().key.is_none() {
            self.bind(LocalName::Unnamed, None)?;
        }
        let mut inner = self.inner.lock();
        match &mut inner.state {
            State::Idle => {
                inner.state = State::Listening { backlog, pending: VecDeque::new(), credentials };
            }
            State::Listening { backlog: current, .. } => *current = backlog,
            State::Connected { .. } => return Err(Errno::EINVAL),
            State::Datagram { .. } => return Err(Errno::EOPNOTSUPP),
        }
        drop(inner);
        self.waiters.notify();
        Ok(())
    }

    /// `accept`: the next connection, and its peer's name.
    pub fn accept(
        &self,
        caller: &Caller<'_>,
        is_nonblocking: bool,
    ) -> Result<(Arc<LocalSocket>, LocalName), Errno> {
        if !self.kind.is_connection() {
            return Err(Errno::EOPNOTSUPP);
        }
        let timeout = self.options.lock().receive_timeout_ns;
        let accepted = wait_for(caller, &self.waiters, is_nonblocking, timeout, || {
            let mut inner = self.inner.lock();
            match &mut inner.state {
                State::Listening { pending, .. } => pending.pop_front().map(Ok),
                _ => Some(Err(Errno::EINVAL)),
            }
        })?;
        // Room in the backlog: a waiting connect may go on.
        self.waiters.notify();
        let peer = match &accepted.inner.lock().state {
            State::Connected { peer, .. } => peer.clone(),
            _ => LocalName::Unnamed,
        };
        Ok((accepted, peer))
    }

    /// `connect` with `AF_UNSPEC`: a datagram socket forgets its peer.
    pub fn disconnect(&self) -> Result<(), Errno> {
        let mut inner = self.inner.lock();
        match &mut inner.state {
            State::Datagram { peer, .. } => *peer = None,
            _ => return Err(Errno::EINVAL),
        }
        drop(inner);
        self.waiters.notify();
        Ok(())
    }

    /// `connect` to `target`, the socket bound to the name given.
    pub fn connect(
        &self,
        caller: &Caller<'_>,
        target: Arc<LocalSocket>,
        is_nonblocking: bool,
    ) -> Result<(), Errno> {
        if target.kind != self.kind {
            return Err(Errno::EPROTOTYPE);
        }
        if !self.kind.is_connection() {
            let mut inner = self.inner.lock();
            let State::Datagram { peer, .. } = &mut inner.state else {
                unreachable!("datagram sockets stay so")
            };
            *peer = Some(Arc::downgrade(&target));
            drop(inner);
            self.waiters.notify();
            return Ok(());
        }
        if core::ptr::eq(Arc::as_ptr(&target), self) {
            return Err(Errno::ECONNREFUSED);
        }
        let timeout = self.options.lock().send_timeout_ns;
        let own_credentials = PeerCredentials::of(caller, true);
        wait_for(caller, &target.waiters, is_nonblocking, timeout, || {
            let mut inner = self.inner.lock();
            match inner.state {
                State::Idle => {}
                State::Connected { .. } => return Some(Err(Errno::EISCONN)),
                State::Listening { .. } => return Some(Err(Errno::EINVAL)),
                State::Datagram { .. } => unreachable!("connection sockets never hold datagrams"),
            }
            let mut listener = target.inner.lock();
            let listener_name = listener.name.clone();
            let State::Listening { backlog, pending, credentials } = &mut listener.state else {
                return Some(Err(Errno::ECONNREFUSED));
            };
            if pending.len() > *backlog {
                return None;
            }
            let accepted = LocalSocket::new(&self.names, self.kind);
            *accepted.options.lock() = *target.options.lock();
            let passes = [self.options.lock().pass_credentials, accepted.options.lock().pass_credentials];
            let channel = Arc::new(Channel::new([self.waiters.clone(), accepted.waiters.clone()], passes));
            {
                let mut accepted_inner = accepted.inner.lock();
                accepted_inner.name = listener_name.clone();
                accepted_inner.peer_credentials = Some(own_credentials);
                accepted_inner.state =
                    State::Connected { channel: channel.clone(), side: 1, peer: inner.name.clone() };
            }
            inner.peer_credentials = Some(*credentials);
            pending.push_back(accepted);
            inner.state = State::Connected { channel, side: 0, peer: listener_name };
            Some(Ok(()))
        })?;
        target.waiters.notify();
        self.waiters.notify();
        Ok(())
    }

    /// `shutdown`.
    pub fn shutdown(&self, how: u32) -> Result<(), Errno> {
        if how > shut::BOTH {
            return Err(Errno::EINVAL);
        }
        let reads = how != shut::WRITE;
        let writes = how != shut::READ;
        let mut inner = self.inner.lock();
        match &inner.state {
            State::Connected { channel, side, .. } => {
                let (channel, side) = (channel.clone(), *side);
                drop(inner);
                let mut directions = channel.directions.lock();
                if reads {
                    directions[side].is_abandoned = true;
                }
                if writes {
                    directions[1 - side].is_finished = true;
                }
                drop(directions);
                channel.notify();
                Ok(())
            }
            State::Datagram { .. } => {
                inner.is_read_shut |= reads;
                inner.is_write_shut |= writes;
                drop(inner);
                self.waiters.notify();
                Ok(())
            }
            State::Idle | State::Listening { .. } => Err(Errno::ENOTCONN),
        }
    }

    /// The socket's own name (`getsockname`).
    pub fn local_name(&self) -> LocalName {
        self.inner.lock().name.clone()
    }

    /// The peer's name (`getpeername`).
    pub fn peer_name(&self) -> Result<LocalName, Errno> {
        let peer = match &self.inner.lock().state {
            State::Connected { peer, .. } => return Ok(peer.clone()),
            State::Datagram { peer: Some(peer), .. } => peer.clone(),
            _ => return Err(Errno::ENOTCONN),
        };
        let peer = peer.upgrade().ok_or(Errno::ENOTCONN)?;
        Ok(peer.local_name())
    }

    /// Bytes ready to read (`FIONREAD`): the stream's bytes, or the next
    /// message's length.
    pub fn available_bytes(&self) -> usize {
        let inner = self.inner.lock();
        match &inner.state {
            State::Connected { channel, side, .. } => {
                let directions = channel.directions.lock();
                let incoming = &directions[*side];
                if self.kind == LocalKind::SeqPacket {
                    incoming.messages.front().copied().unwrap_or(0)
                } else {
                    incoming.bytes.len()
                }
            }
            State::Datagram { inbox, .. } => inbox.front().map_or(0, |packet| packet.bytes.len()),
            State::Idle | State::Listening { .. } => 0,
        }
    }

    /// Whether the socket is connected (to a peer socket).
    pub fn is_connected(&self) -> bool {
        match &self.inner.lock().state {
            State::Connected { .. } => true,
            State::Datagram { peer, .. } => peer.is_some(),
            State::Idle | State::Listening { .. } => false,
        }
    }

    /// Whether the socket listens.
    pub fn is_listening(&self) -> bool {
        matches!(self.inner.lock().state, State::Listening { .. })
    }

    fn readiness(&self) -> u16 {
        let inner = self.inner.lock();
        match &inner.state {
            // An unconnected connection socket is hung up, as on Linux.
            State::Idle => events::POLLOUT | events::POLLHUP,
            State::Listening { pending, .. } => {
                if pending.is_empty() {
                    0
                } else {
                    events::POLLIN
                }
            }
            State::Connected { channel, side, .. } => {
                let directions = channel.directions.lock();
                let incoming = &directions[*side];
                let outgoing = &directions[1 - side];
                let mut ready = 0;
                if !incoming.bytes.is_empty() {
                    ready |= events::POLLIN;
                }
                let read_ended = incoming.is_finished || incoming.is_abandoned;
                if read_ended {
                    ready |= events::POLLIN | events::POLLRDHUP;
                }
                let write_ended = outgoing.is_finished || outgoing.is_abandoned;
                if read_ended && write_ended {
                    ready |= events::POLLHUP;
                }
                if write_ended || outgoing.bytes.len() < channel.capacity {
                    ready |= events::POLLOUT;
                }
                ready
            }
            State::Datagram { inbox, peer, .. } => {
                let mut ready = 0;
                if !inbox.is_empty() || inner.is_read_shut {
                    ready |= events::POLLIN;
                }
                if inner.is_read_shut {
                    ready |= events::POLLRDHUP;
                }
                if inner.is_read_shut && inner.is_write_shut {
                    ready |= events::POLLHUP;
                }
                let peer = peer.as_ref().and_then(Weak::upgrade);
                drop(inner);
                let has_room = match peer {
                    None => true,
                    Some(peer) => match &peer.inner.lock().state {
                        State::Datagram { inbox, inbox_bytes, .. } => {
                            inbox.len() < INBOX_SLOTS && *inbox_bytes < peer.options.lock().receive_buffer
                        }
                        _ => true,
                    },
                };
                if has_room {
                    ready |= events::POLLOUT;
                }
                ready
            }
        }
    }
}

impl Drop for LocalSocket {
    fn drop(&mut self) {
        let inner = self.inner.get_mut();
        if let Some(key) = inner.key.take() {
            self.names.remove(&key);
        }
        match core::mem::replace(&mut inner.state, State::Idle) {
            State::Connected { channel, side, .. } => {
                let mut directions = channel.directions.lock();
                let had_unread = !directions[side].bytes.is_empty();
                directions[side] = Direction { is_abandoned: true, ..Direction::default() };
                let outgoing = &mut directions[1 - side];
                outgoing.is_finished = true;
                if had_unread && self.kind == LocalKind::Stream {
                    outgoing.is_reset = true;
                }
                drop(directions);
                channel.notify();
            }
            State::Listening { pending, .. } => {
                // Connections never accepted end as resets.
                drop(pending);
            }
            State::Datagram { peer, .. } => {
                if let Some(peer) = peer.and_then(|peer| peer.upgrade()) {
                    peer.waiters.notify();
                }
            }
            State::Idle => {}
        }
    }
}

impl SpecialFile for LocalSocket {
    fn name(&self) -> String {
        format!("socket:[{}]", self.inode)
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.receive(caller, buffer, 0, is_nonblocking)
            .map(|received| received.length)
            .map_err(super::file_error)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.send(caller, bytes, 0, None, Vec::new(), is_nonblocking).map_err(super::file_error)
    }

    fn poll(&self) -> u16 {
        self.readiness()
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    fn metadata(&self) -> Metadata {
        Metadata::new(self.inode, FileType::Socket, 0o777)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;
