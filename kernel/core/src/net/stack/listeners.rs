//! Listening sockets and ports: the smoltcp sockets kept listening for a
//! listener, the queue of its connections, and the ports sockets hold.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpListenEndpoint;

use super::{Protocol, Stack, new_tcp_socket};
use crate::errno::Errno;
use crate::net::settings;
use crate::vfs::WaiterList;

/// Sockets kept listening beyond the ones already taken by a handshake, so
/// that connections arriving together all find one.
const SPARE_LISTENERS: usize = 2;

/// A listening socket: smoltcp sockets listening on its endpoint, and the
/// connections they made that nobody accepted yet.
pub(super) struct Listener {
    endpoint: IpListenEndpoint,
    /// As `listen` gave it: Linux queues one connection more than this,
    /// counting those in a handshake, and drops further SYNs.
    backlog: usize,
    /// `TCP_DEFER_ACCEPT`: a connection waits this long for its first data
    /// before it may be accepted without any.
    defer_accept: Option<Duration>,
    /// Connected sockets still waiting for data (`defer_accept`), and
    /// since when.
    deferred: BTreeMap<SocketHandle, Instant>,
    buffer_sizes: (usize, usize),
    /// Listening, or in a handshake.
    waiting: Vec<SocketHandle>,
    /// Connected, in the order they connected.
    ready: VecDeque<SocketHandle>,
    waiters: Weak<WaiterList>,
    /// Shares its endpoint with other listeners (`SO_REUSEPORT`), which
    /// take its connections in turn.
    shares_port: bool,
}

impl Stack {
    /// Moves connected sockets to their listener's ready queue and keeps
    /// enough sockets listening.
    pub(super) fn tend_listeners(&mut self) {
        let mut arrivals = Vec::new();
        for (id, listener) in self.listeners.iter_mut() {
            let mut is_ready = false;
            let mut index = 0;
            while index < listener.waiting.len() {
                let handle = listener.waiting[index];
                let socket = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
                match socket.state() {
                    tcp::State::Listen | tcp::State::SynReceived => index += 1,
                    tcp::State::Closed | tcp::State::TimeWait => {
                        // A handshake that failed: listen again.
                        socket.abort();
                        let _ = socket.listen(listener.endpoint);
                        index += 1;
                    }
                    tcp::State::Established
                        if socket.recv_queue() == 0
                            && listener.defer_accept.is_some_and(|wait| {
                                let since = *listener.deferred.entry(handle).or_insert(self.now);
                                self.now < since + wait
                            }) =>
                    {
                        // No data yet: not acceptable before its time.
                        index += 1;
                    }
                    _ => {
                        listener.deferred.remove(&handle);
                        listener.waiting.swap_remove(index);
                        if listener.shares_port {
                            arrivals.push((*id, handle));
                        } else {
                            listener.ready.push_back(handle);
                            is_ready = true;
                        }
                    }
                }
            }
            let listening = listening_count(&self.sockets, &listener.waiting);
            // Handshakes under way and connections not yet accepted fill
            // the backlog; the rest of it may listen, a few sockets at a
            // time.
            let taken = listener.waiting.len() - listening + listener.ready.len();
            let wanted = (listener.backlog + 1).saturating_sub(taken).min(SPARE_LISTENERS);
            for _ in wanted..listening {
                let Some(index) = listener.waiting.iter().position(|handle| {
                    self.sockets.get::<tcp::Socket<'_>>(*handle).state() == tcp::State::Listen
                }) else {
                    break;
                };
                self.sockets.remove(listener.waiting.swap_remove(index));
            }
            for _ in listening..wanted {
                // Without memory for one more, the backlog waits for the
                // next round.
                let Some(mut socket) = new_tcp_socket(listener.buffer_sizes) else { break };
                if socket.listen(listener.endpoint).is_ok() {
                    listener.waiting.push(self.sockets.add(socket));
                }
            }
            if is_ready && let Some(waiters) = listener.waiters.upgrade() {
                waiters.notify();
            }
        }
        self.share_arrivals(arrivals);
        self.mark_full_ports();
    }

    /// Tells the link which ports have listeners with no socket listening
    /// (a full backlog): a SYN to one is dropped, as Linux drops it, and
    /// the connecting side sends it again later; smoltcp would answer it
    /// with a reset.
    fn mark_full_ports(&mut self) {
        let mut ports: BTreeMap<u16, bool> = BTreeMap::new();
        for listener in self.listeners.values() {
            let is_full = listening_count(&self.sockets, &listener.waiting) == 0;
            let entry = ports.entry(listener.endpoint.port).or_insert(true);
            *entry &= is_full;
        }
        let full: BTreeSet<u16> =
            ports.into_iter().filter(|(_, is_full)| *is_full).map(|(port, _)| port).collect();
        self.link.set_full_ports(full);
    }

    /// When the earliest deferred connection may be accepted without data.
    pub(super) fn next_deferred_due(&self) -> Option<Instant> {
        self.listeners
            .values()
            .filter_map(|listener| {
                let wait = listener.defer_accept?;
                listener.deferred.values().min().map(|since| *since + wait)
            })
            .min()
    }

    /// Hands the connections made on a shared port to the listeners
    /// sharing it, in turn.
    fn share_arrivals(&mut self, arrivals: Vec<(u64, SocketHandle)>) {
        for (id, handle) in arrivals {
            let Some(endpoint) = self.listeners.get(&id).map(|listener| listener.endpoint) else { continue };
            let sharing: Vec<u64> = self
                .listeners
                .iter()
                .filter(|(_, other)| other.shares_port && other.endpoint == endpoint)
                .map(|(id, _)| *id)
                .collect();
            let chosen = sharing.get(self.next_turn % sharing.len().max(1)).copied().unwrap_or(id);
            self.next_turn = self.next_turn.wrapping_add(1);
            if let Some(listener) = self.listeners.get_mut(&chosen) {
                listener.ready.push_back(handle);
                if let Some(waiters) = listener.waiters.upgrade() {
                    waiters.notify();
                }
            }
        }
    }

    /// Starts listening on `endpoint`; returns the listener's number.
    pub fn listen(
        &mut self,
        endpoint: IpListenEndpoint,
        backlog: usize,
        buffer_sizes: (usize, usize),
        waiters: &Arc<WaiterList>,
        shares_port: bool,
    ) -> u64 {
        let id = self.next_listener;
        self.next_listener += 1;
        self.listeners.insert(
            id,
            Listener {
                endpoint,
                backlog,
                defer_accept: None,
                deferred: BTreeMap::new(),
                buffer_sizes,
                waiting: Vec::new(),
                ready: VecDeque::new(),
                waiters: Arc::downgrade(waiters),
                shares_port,
            },
        );
        self.tend_listeners();
        id
    }

    /// Changes a listener's backlog (a second `listen`).
    pub fn set_backlog(&mut self, listener: u64, backlog: usize) {
        if let Some(listener) = self.listeners.get_mut(&listener) {
            listener.backlog = backlog;
        }
        self.tend_listeners();
    }

    /// Sets how long a listener's connections wait for data before they
    /// may be accepted without it (`TCP_DEFER_ACCEPT`; 0: not at all).
    pub fn set_defer_accept(&mut self, listener: u64, seconds: u32) {
        if let Some(listener) = self.listeners.get_mut(&listener) {
            listener.defer_accept = (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)));
        }
        self.tend_listeners();
    }

    /// Takes the oldest connection a listener made.
    pub fn accept(&mut self, listener: u64) -> Option<SocketHandle> {
        let handle = self.listeners.get_mut(&listener)?.ready.pop_front()?;
        self.tend_listeners();
        Some(handle)
    }

    /// Whether a listener has a connection to accept.
    pub fn has_connection(&self, listener: u64) -> bool {
        self.listeners.get(&listener).is_some_and(|listener| !listener.ready.is_empty())
    }

    /// Stops a listener: its handshakes and unaccepted connections are
    /// reset.
    pub fn close_listener(&mut self, listener: u64) {
        let Some(listener) = self.listeners.remove(&listener) else { return };
        for handle in listener.waiting.into_iter().chain(listener.ready) {
            // The reset goes out at the next poll, and the socket with it.
            self.sockets.get_mut::<tcp::Socket<'_>>(handle).abort();
            self.closing.push((handle, self.now));
        }
        self.mark_full_ports();
    }

    /// Takes port `port` for `protocol` (0: any free ephemeral port); the
    /// port is shared when `may_share`, and with holders that allowed it.
    pub fn reserve_port(&mut self, protocol: Protocol, port: u16, may_share: bool) -> Result<u16, Errno> {
        if port != 0 {
            let holders = self.ports.entry((protocol, port)).or_insert(0);
            if *holders > 0 && !may_share {
                return Err(Errno::EADDRINUSE);
            }
            *holders += 1;
            return Ok(port);
        }
        // The range root set (`ip_local_port_range`), read afresh.
        let ephemeral = settings::local_port_range();
        if !ephemeral.contains(&self.next_ephemeral) {
            self.next_ephemeral = *ephemeral.start();
        }
        let span = u32::from(ephemeral.end() - ephemeral.start()) + 1;
        for _ in 0..span {
            let candidate = self.next_ephemeral;
            self.next_ephemeral =
                if candidate == *ephemeral.end() { *ephemeral.start() } else { candidate + 1 };
            if let alloc::collections::btree_map::Entry::Vacant(entry) =
                self.ports.entry((protocol, candidate))
            {
                entry.insert(1);
                return Ok(candidate);
            }
        }
        Err(Errno::EADDRNOTAVAIL)
    }

    /// Gives back a port [`Stack::reserve_port`] took.
    pub fn release_port(&mut self, protocol: Protocol, port: u16) {
        if let Some(holders) = self.ports.get_mut(&(protocol, port)) {
            *holders -= 1;
            if *holders == 0 {
                self.ports.remove(&(protocol, port));
            }
        }
    }
}

/// How many of `handles` are listening.
fn listening_count(sockets: &smoltcp::iface::SocketSet<'_>, handles: &[SocketHandle]) -> usize {
    handles
        .iter()
        .filter(|handle| sockets.get::<tcp::Socket<'_>>(**handle).state() == tcp::State::Listen)
        .count()
}
