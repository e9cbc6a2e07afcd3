//! Sockets: TCP streams and UDP datagrams over the stack, as open files.
//!
//! A [`Socket`] is what a socket descriptor's open file description holds
//! ([`crate::vfs::SpecialFile`]). A stream socket gets its smoltcp socket
//! when it connects or is accepted; until then it only holds the port it is
//! bound to. A listening socket is a listener in the stack, which keeps
//! smoltcp sockets listening and queues the connections they make. A
//! datagram socket gets its smoltcp socket when it is bound, explicitly or
//! by its first send.
//!
//! Waiting follows the rest of the kernel: a thread adds itself to the
//! socket's [`WaiterList`], tries, and blocks if it must; the stack notifies
//! the list whenever the smoltcp socket moves. Errors and edge cases follow
//! Linux (`tcp(7)`, `udp(7)`, `socket(7)`).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};
use spin::Mutex;

use super::Network;
use super::abi::{ControlMessage, message, shut};
use super::stack::{Protocol, Stack};
use crate::errno::Errno;
use crate::vfs::node::{Caller, FileType, Metadata};
use crate::vfs::waiters::events;
use crate::vfs::{FsError, SpecialFile, WaiterList};
use options::Options;
use stream::ConnectionState;

mod datagram;
mod options;
mod stream;

/// How long a connection attempt lasts without an answer (Linux gives up
/// after about two minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(127);
/// What kind of socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TCP.
    Stream,
    /// UDP.
    Datagram,
}

#[derive(Debug)]
struct Stream {
    handle: SocketHandle,
    /// The port this socket reserved (none when accepted).
    owned_port: Option<u16>,
    /// Whether the connection was ever established.
    was_connected: bool,
    /// Where `connect` stands, beside the TCP state.
    attempt: Attempt,
    /// The address `bind` gave before the connection, and whether it named
    /// the port (see [`State::Unconnected`]).
    bound: Option<SocketAddr>,
    keeps_port: bool,
    /// When a connection attempt started (ns).
    connect_started_ns: u64,
    /// An error not yet reported (`SO_ERROR`, or the next call).
    error: Option<Errno>,
    read_shut: bool,
    write_shut: bool,
    /// The connection's end (refused, reset, or closed) was noted.
    has_ended: bool,
    /// The connection's two ends, kept for its segments' figures after
    /// smoltcp forgets them.
    ends: Option<(SocketAddr, SocketAddr)>,
}

/// Where `connect` stands on a stream socket: Linux keeps this socket
/// state (`SS_CONNECTING`, `SS_CONNECTED`, `SS_UNCONNECTED`) beside the
/// TCP state, and a repeated `connect` answers from both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    /// Started and not yet seen to end by a `connect` call.
    Connecting,
    /// Seen established by `connect`, or accepted.
    Connected,
    /// Seen to fail: the next `connect` starts a new connection.
    Failed,
}

#[derive(Debug, Default)]
struct Datagram {
    handle: Option<SocketHandle>,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    read_shut: bool,
    write_shut: bool,
    /// A datagram being gathered (`MSG_MORE`, `UDP_CORK`) and where it
    /// goes.
    pending: Option<(Vec<u8>, SocketAddr)>,
    /// `IP_RECVERR`: ICMP errors are queued and reported.
    receives_errors: bool,
}

impl Datagram {
    /// Whether ICMP errors about its datagrams fail the socket's next
    /// call: it is connected, or collects errors (`udp(7)`).
    fn reports_errors(&self) -> bool {
        self.peer.is_some() || self.receives_errors
    }
}

#[derive(Debug)]
enum State {
    /// A stream socket neither listening nor connected. `keeps_port`:
    /// `bind` named the port, which then outlives a failed connection
    /// attempt (Linux's `SOCK_BINDPORT_LOCK`); a port the stack chose goes
    /// with the attempt. `read_shut` and `write_shut`: a `shutdown` came
    /// (which fails with `ENOTCONN` but still shows in `poll`, as on
    /// Linux).
    Unconnected { bound: Option<SocketAddr>, keeps_port: bool, read_shut: bool, write_shut: bool },
    /// A listening stream socket; `keeps_port` as for
    /// [`State::Unconnected`].
    Listening { listener: u64, local: SocketAddr, keeps_port: bool },
    /// A stream socket connecting, connected, or done.
    Stream(Stream),
    /// A datagram socket.
    Datagram(Datagram),
}

impl State {
    /// An unconnected stream socket bound to `bound`, not shut down.
    fn unconnected(bound: Option<SocketAddr>, keeps_port: bool) -> State {
        State::Unconnected { bound, keeps_port, read_shut: false, write_shut: false }
    }
}

/// A socket.
pub struct Socket {
    network: Arc<Network>,
    kind: Kind,
    /// An `AF_INET6` socket: it takes and gives IPv6 addresses, IPv4 ones
    /// mapped into them (`::ffff:a.b.c.d`).
    is_ipv6: bool,
    state: Mutex<State>,
    options: Mutex<Options>,
    waiters: Arc<WaiterList>,
}

impl core::fmt::Debug for Socket {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Socket").field("kind", &self.kind).finish()
    }
}

/// Whether a TCP state has finished the handshake.
fn is_synchronized(state: tcp::State) -> bool {
    !matches!(state, tcp::State::Closed | tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived)
}

fn ip_address(address: IpAddr) -> IpAddress {
    match address {
        IpAddr::V4(address) => IpAddress::Ipv4(address),
        IpAddr::V6(address) => IpAddress::Ipv6(address),
    }
}

fn endpoint_address(endpoint: IpEndpoint) -> SocketAddr {
    let address = match endpoint.addr {
        IpAddress::Ipv4(address) => IpAddr::V4(address),
        IpAddress::Ipv6(address) => IpAddr::V6(address),
    };
    SocketAddr::new(address, endpoint.port)
}

fn listen_endpoint(address: SocketAddr) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!address.ip().is_unspecified()).then_some(ip_address(address.ip())),
        port: address.port(),
    }
}

impl Socket {
    /// A new `AF_INET` socket of `kind` on `network`.
    pub fn new(network: Arc<Network>, kind: Kind) -> Arc<Socket> {
        Socket::new_in(network, kind, false)
    }

    /// A new socket of `kind` on `network`, `AF_INET6` if `is_ipv6`.
    pub fn new_in(network: Arc<Network>, kind: Kind, is_ipv6: bool) -> Arc<Socket> {
        let state = match kind {
            Kind::Stream => State::unconnected(None, false),
            Kind::Datagram => State::Datagram(Datagram::default()),
        };
        Arc::new(Socket {
            network,
            kind,
            is_ipv6,
            state: Mutex::new(state),
            options: Mutex::new(Options::default()),
            waiters: Arc::new(WaiterList::new()),
        })
    }

    /// What kind of socket this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether this is an `AF_INET6` socket.
    pub fn is_ipv6(&self) -> bool {
        self.is_ipv6
    }

    /// The any-address with `port`, in the socket's family.
    fn unspecified(&self, port: u16) -> SocketAddr {
        let address =
            if self.is_ipv6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
        SocketAddr::new(address, port)
    }

    /// The stack's address for an address the application gave: an
    /// `AF_INET6` socket takes IPv6 addresses (an IPv4-mapped one means the
    /// IPv4 address, unless the socket is `IPV6_V6ONLY`) and, unless it is
    /// `IPV6_V6ONLY`, IPv4 ones; an `AF_INET` socket IPv4 ones.
    pub fn stack_address(&self, address: &super::address::Address) -> Result<SocketAddr, Errno> {
        use super::address::Address;
        let is_v6_only = self.options.lock().is_v6_only;
        match address {
            Address::Ipv4(address) if !self.is_ipv6 || !is_v6_only => Ok(SocketAddr::V4(*address)),
            Address::Ipv6(address) if self.is_ipv6 => match address.ip().to_ipv4_mapped() {
                Some(_) if is_v6_only => Err(Errno::ENETUNREACH),
                Some(mapped) => Ok(SocketAddr::new(IpAddr::V4(mapped), address.port())),
                None => Ok(SocketAddr::V6(*address)),
            },
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// How the application sees a stack address: on an `AF_INET6` socket
    /// an IPv4 address is mapped into IPv6.
    pub fn application_address(&self, address: SocketAddr) -> super::address::Address {
        use super::address::Address;
        match address {
            SocketAddr::V4(address) if self.is_ipv6 => {
                Address::Ipv6(SocketAddrV6::new(address.ip().to_ipv6_mapped(), address.port(), 0, 0))
            }
            SocketAddr::V4(address) => Address::Ipv4(address),
            SocketAddr::V6(address) => Address::Ipv6(address),
        }
    }

    /// The largest message one send may carry; `None` for a stream, which
    /// takes what fits.
    pub fn largest_message(&self) -> Option<usize> {
        match self.kind {
            Kind::Stream => None,
            Kind::Datagram => Some(datagram::MAX_DATAGRAM),
        }
    }

    fn protocol(&self) -> Protocol {
        match self.kind {
            Kind::Stream => Protocol::Tcp,
            Kind::Datagram => Protocol::Udp,
        }
    }

    fn buffer_sizes(&self) -> (usize, usize) {
        let options = self.options.lock();
        (options.receive_buffer, options.send_buffer)
    }

    /// Runs `operation` on the stack and polls it.
    fn stack<T>(&self, caller: &Caller<'_>, operation: impl FnOnce(&mut Stack) -> T) -> T {
        self.network.with_stack(caller.machine.monotonic_ns(), operation)
    }

    /// Tries `attempt` until it gives an answer, waiting for the socket to
    /// change in between; `EAGAIN` when `is_nonblocking` or at `timeout_ns`,
    /// `EINTR` for a signal.
    fn wait_for<T>(
        &self,
        caller: &Caller<'_>,
        is_nonblocking: bool,
        timeout_ns: Option<u64>,
        attempt: impl FnMut() -> Option<Result<T, Errno>>,
    ) -> Result<T, Errno> {
        super::wait_for(caller, &self.waiters, is_nonblocking, timeout_ns, attempt)
    }

    /// `bind`.
    pub fn bind(&self, caller: &Caller<'_>, address: SocketAddr) -> Result<(), Errno> {
        let reuse = {
            let options = self.options.lock();
            options.reuse_address || options.reuse_port
        };
        let mut state = self.state.lock();
        let is_unbound = match &*state {
            State::Unconnected { bound, .. } => bound.is_none(),
            State::Datagram(datagram) => datagram.local.is_none(),
            State::Listening { .. } | State::Stream(_) => false,
        };
        if !is_unbound {
            return Err(Errno::EINVAL);
        }
        let protocol = self.protocol();
        let port = self.stack(caller, |stack| {
            if !stack.is_local_address(address.ip()) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            stack.reserve_port(protocol, address.port(), reuse)
        })?;
        let local = SocketAddr::new(address.ip(), port);
        match &mut *state {
            State::Unconnected { bound, keeps_port, .. } => {
                *bound = Some(local);
                *keeps_port = address.port() != 0;
            }
            State::Datagram(datagram) => self.open_datagram(caller, datagram, local)?,
            State::Listening { .. } | State::Stream(_) => unreachable!("checked above"),
        }
        Ok(())
    }

    /// `send`, `sendto`, `write`: sends `bytes` (to `destination`, for
    /// datagrams). `EPIPE` means the caller gets `SIGPIPE` unless it said
    /// `MSG_NOSIGNAL`.
    pub fn send(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        destination: Option<SocketAddr>,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let timeout = self.options.lock().send_timeout_ns;
        match self.kind {
            Kind::Stream => self.send_stream(caller, bytes, flags, is_nonblocking, timeout),
            // Datagrams carry no urgent data.
            Kind::Datagram if flags & message::OOB != 0 => Err(Errno::EOPNOTSUPP),
            Kind::Datagram => self.send_datagram(caller, bytes, flags, destination, is_nonblocking, timeout),
        }
    }

    /// `recv`, `recvfrom`, `read`: fills `buffer`; returns the byte count,
    /// the sender (datagrams) and whether a datagram was cut short.
    pub fn receive(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
    ) -> Result<Received, Errno> {
        if flags & message::OOB != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & message::ERRQUEUE != 0 {
            // Linux never waits on the error queue.
            return self.receive_error(caller, buffer);
        }
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let timeout = self.options.lock().receive_timeout_ns;
        match self.kind {
            Kind::Stream => {
                let mut received = self.receive_stream(caller, buffer, flags, is_nonblocking, timeout)?;
                if self.options.lock().reports_inq {
                    // `TCP_CM_INQ`: the bytes left to read.
                    let left = self.available_bytes(caller) as i32;
                    let data = left.to_ne_bytes().to_vec();
                    received.control.push(ControlMessage {
                        level: super::abi::option::IPPROTO_TCP,
                        kind: options::TCP_INQ,
                        data,
                    });
                }
                Ok(received)
            }
            Kind::Datagram => self.receive_datagram(caller, buffer, flags, is_nonblocking, timeout),
        }
    }

    /// `shutdown`.
    pub fn shutdown(&self, caller: &Caller<'_>, how: u32) -> Result<(), Errno> {
        if how > shut::BOTH {
            return Err(Errno::EINVAL);
        }
        let reads = how == shut::READ || how == shut::BOTH;
        let writes = how == shut::WRITE || how == shut::BOTH;
        {
            let mut state = self.state.lock();
            match &mut *state {
                State::Stream(stream) => {
                    stream.read_shut |= reads;
                    if writes && !stream.write_shut {
                        stream.write_shut = true;
                        let handle = stream.handle;
                        self.stack(caller, |stack| {
                            // Held bytes go before the FIN.
                            stack.release_held(handle);
                            stack.tcp(handle).close();
                        });
                    }
                }
                State::Datagram(datagram) => {
                    datagram.read_shut |= reads;
                    datagram.write_shut |= writes;
                }
                // Shutting a listener's reading stops it listening: its
                // handshakes and unaccepted connections are reset, waiting
                // accepts fail, and it may listen again. Its writing
                // leaves it as it was.
                State::Listening { .. } if !reads => return Ok(()),
                State::Listening { listener, local, keeps_port } => {
                    let (listener, local, keeps_port) = (*listener, *local, *keeps_port);
                    let protocol = self.protocol();
                    self.stack(caller, |stack| {
                        stack.close_listener(listener);
                        if !keeps_port {
                            stack.release_port(protocol, local.port());
                        }
                    });
                    *state = State::unconnected(keeps_port.then_some(local), keeps_port);
                }
                // Nothing to shut down; Linux still notes the shutdown,
                // which poll then reports.
                State::Unconnected { read_shut, write_shut, .. } => {
                    *read_shut |= reads;
                    *write_shut |= writes;
                    drop(state);
                    self.waiters.notify();
                    return Err(Errno::ENOTCONN);
                }
            }
        }
        self.waiters.notify();
        Ok(())
    }

    /// `getsockname`.
    pub fn local_address(&self, caller: &Caller<'_>) -> SocketAddr {
        let unspecified = self.unspecified(0);
        match &*self.state.lock() {
            State::Unconnected { bound, .. } => bound.unwrap_or(unspecified),
            State::Listening { local, .. } => *local,
            // A connected datagram socket bound to the any-address shows
            // the address it sends from (glibc's getaddrinfo sorts its
            // answers by it).
            State::Datagram(Datagram { local: Some(local), peer: Some(peer), .. })
                if local.ip().is_unspecified() =>
            {
                let (local, peer) = (*local, *peer);
                self.stack(caller, |stack| stack.source_address(peer.ip()))
                    .map_or(local, |source| SocketAddr::new(source, local.port()))
            }
            State::Datagram(datagram) => datagram.local.unwrap_or(unspecified),
            State::Stream(stream) => {
                let handle = stream.handle;
                self.stack(caller, |stack| stack.tcp(handle).local_endpoint())
                    .map(endpoint_address)
                    .unwrap_or(unspecified)
            }
        }
    }

    /// `getpeername`.
    pub fn peer_address(&self, caller: &Caller<'_>) -> Result<SocketAddr, Errno> {
        match &*self.state.lock() {
            State::Datagram(datagram) => datagram.peer.ok_or(Errno::ENOTCONN),
            State::Stream(stream) => {
                let handle = stream.handle;
                self.stack(caller, |stack| {
                    let tcp = stack.tcp(handle);
                    if is_synchronized(tcp.state()) { tcp.remote_endpoint() } else { None }
                })
                .map(endpoint_address)
                .ok_or(Errno::ENOTCONN)
            }
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Bytes waiting to be read (`FIONREAD`): for datagrams, the size of
    /// the next one.
    pub fn available_bytes(&self, caller: &Caller<'_>) -> usize {
        match &*self.state.lock() {
            State::Stream(stream) => {
                let handle = stream.handle;
                self.stack(caller, |stack| stack.tcp(handle).recv_queue())
            }
            State::Datagram(Datagram { handle: Some(handle), .. }) => {
                let handle = *handle;
                self.stack(caller, |stack| {
                    stack.next_group_datagram_length(handle).unwrap_or_else(|| {
                        stack.udp(handle).peek().map(|(payload, _)| payload.len()).unwrap_or(0)
                    })
                })
            }
            _ => 0,
        }
    }

    /// Whether this socket listens (`SO_ACCEPTCONN`).
    pub fn is_listening(&self) -> bool {
        matches!(&*self.state.lock(), State::Listening { .. })
    }

    /// Takes the pending error (`SO_ERROR`).
    pub fn take_error(&self, caller: &Caller<'_>) -> Option<Errno> {
        // A connection whose end was noted and reported has nothing more
        // to say; one still open may have been reset since.
        if let State::Stream(stream) = &*self.state.lock()
            && stream.was_connected
            && stream.error.is_none()
            && stream.has_ended
        {
            return None;
        }
        match self.kind {
            Kind::Stream => match self.connection_state(caller) {
                ConnectionState::Failed(Errno::ENOTCONN)
                | ConnectionState::Connected
                | ConnectionState::Connecting => None,
                ConnectionState::Failed(error) => {
                    // Reported once; later calls see a closed connection.
                    Some(error)
                }
            },
            Kind::Datagram => match &*self.state.lock() {
                State::Datagram(Datagram { handle: Some(handle), .. }) => {
                    // `SO_ERROR` reports an ICMP error whoever would.
                    let handle = *handle;
                    self.stack(caller, |stack| stack.take_pending_error(handle, true))
                }
                _ => None,
            },
        }
    }

    /// The readiness bits that hold now.
    fn readiness(&self) -> u16 {
        let state = self.state.lock();
        let mut stack = self.network.stack.lock();
        match &*state {
            // An unconnected stream socket is writable and hung up, as on
            // Linux; a listening one is readable when a connection waits.
            State::Unconnected { read_shut, .. } => {
                let mut ready = events::POLLOUT | events::POLLHUP;
                if *read_shut {
                    ready |= events::POLLIN | events::POLLRDHUP;
                }
                ready
            }
            State::Listening { listener, .. } => {
                if stack.has_connection(*listener) {
                    events::POLLIN
                } else {
                    0
                }
            }
            State::Stream(stream) => {
                let tcp = stack.tcp(stream.handle);
                let tcp_state = tcp.state();
                if matches!(tcp_state, tcp::State::SynSent | tcp::State::SynReceived) {
                    return 0;
                }
                let mut ready = 0;
                // The peer's FIN arrived, whether or not data is left to
                // read before it.
                let peer_finished = matches!(
                    tcp_state,
                    tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing | tcp::State::TimeWait
                );
                if tcp.can_recv() || !tcp.may_recv() || peer_finished || stream.read_shut {
                    ready |= events::POLLIN;
                }
                if peer_finished || (!tcp.may_recv() && stream.was_connected) {
                    ready |= events::POLLRDHUP;
                }
                if tcp.can_send() {
                    ready |= events::POLLOUT;
                }
                if tcp_state == tcp::State::Closed {
                    // Refused, reset, or finished: Linux reports all three,
                    // and an error until it is taken.
                    ready |= events::POLLIN | events::POLLOUT | events::POLLHUP;
                    let mut ends = stream.ends;
                    let was_reset = !stream.has_ended && !stack.peer_finished(stream.handle, &mut ends);
                    if !stream.was_connected || !stream.write_shut || stream.error.is_some() || was_reset {
                        ready |= events::POLLERR;
                    }
                }
                ready
            }
            State::Datagram(datagram) => {
                let mut ready = 0;
                match datagram.handle {
                    Some(handle) => {
                        let has_group_datagram = stack.next_group_datagram_length(handle).is_some();
                        if datagram.reports_errors() && stack.has_error(handle) {
                            ready |= events::POLLERR;
                        }
                        let udp = stack.udp(handle);
                        if udp.can_recv() || has_group_datagram || datagram.read_shut {
                            ready |= events::POLLIN;
                        }
                        if udp.can_send() {
                            ready |= events::POLLOUT;
                        }
                    }
                    None => ready |= events::POLLOUT,
                }
                ready
            }
        }
    }
}

/// What a receive got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes stored.
    pub length: usize,
    /// The sender, for datagrams.
    pub source: Option<SocketAddr>,
    /// Whether the datagram was longer than the buffer.
    pub is_truncated: bool,
    /// The datagram's length (for streams, [`Received::length`]).
    pub full_length: usize,
    /// The control messages the socket's options ask for.
    pub control: Vec<ControlMessage>,
}

/// `INADDR_ANY` (or `::`) as a destination means this machine.
fn resolve_any(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), address.port())
        }
        _ => address,
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let state = core::mem::replace(self.state.get_mut(), State::unconnected(None, false));
        let protocol = self.protocol();
        let linger_abort = self.options.get_mut().linger == Some(0);
        let groups = options::joined_groups(self.options.get_mut());
        let mut stack = self.network.stack.lock();
        for group in groups {
            stack.leave_group(Ipv4Addr::from(group));
        }
        match state {
            State::Unconnected { bound, .. } => {
                if let Some(local) = bound {
                    stack.release_port(protocol, local.port());
                }
            }
            State::Listening { listener, local, .. } => {
                stack.close_listener(listener);
                stack.release_port(protocol, local.port());
            }
            State::Stream(stream) => {
                if linger_abort {
                    stack.tcp(stream.handle).abort();
                }
                stack.close_tcp(stream.handle);
                if let Some(port) = stream.owned_port {
                    stack.release_port(protocol, port);
                }
            }
            State::Datagram(datagram) => {
                if let Some(handle) = datagram.handle {
                    stack.remove(handle);
                }
                if let Some(local) = datagram.local {
                    stack.release_port(protocol, local.port());
                }
            }
        }
        drop(stack);
        // The close's packets go out with the network thread's next poll.
        self.network.wake_worker();
    }
}

impl SpecialFile for Socket {
    fn name(&self) -> String {
        String::from("socket:[socket]")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.receive(caller, buffer, 0, is_nonblocking)
            .map(|received| received.length)
            .map_err(super::file_error)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.send(caller, bytes, 0, None, is_nonblocking).map_err(super::file_error)
    }

    fn poll(&self) -> u16 {
        self.readiness()
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    fn metadata(&self) -> Metadata {
        Metadata::new(crate::vfs::special::ANONYMOUS_INODE, FileType::Socket, 0o777)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
