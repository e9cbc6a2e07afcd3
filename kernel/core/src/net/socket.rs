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
use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};
use spin::Mutex;

use super::Network;
use super::stack::{Protocol, Stack};
use crate::errno::Errno;
use crate::vfs::node::{Caller, FileType, Metadata};
use crate::vfs::waiters::events;
use crate::vfs::{FsError, SpecialFile, WaiterList};

/// Socket types (`SOCK_*`).
pub mod kind {
    /// A byte stream (TCP).
    pub const STREAM: u32 = 1;
    /// Datagrams (UDP).
    pub const DATAGRAM: u32 = 2;
    /// Raw packets.
    pub const RAW: u32 = 3;
    /// Sequenced packets.
    pub const SEQPACKET: u32 = 5;
}

/// Flags of `send` and `recv` (`MSG_*`).
pub mod message {
    /// Out-of-band data.
    pub const OOB: u32 = 0x1;
    /// Look without taking.
    pub const PEEK: u32 = 0x2;
    /// The datagram was longer than the buffer (reported in `msg_flags`).
    pub const TRUNC: u32 = 0x20;
    /// Do not wait.
    pub const DONTWAIT: u32 = 0x40;
    /// Wait for the whole buffer.
    pub const WAITALL: u32 = 0x100;
    /// No `SIGPIPE` on a broken connection.
    pub const NOSIGNAL: u32 = 0x4000;
    /// More data follows (a hint).
    pub const MORE: u32 = 0x8000;
}

/// Option levels and names (`SOL_SOCKET`, `IPPROTO_TCP`, `IPPROTO_IP`).
pub mod option {
    /// Socket-level options.
    pub const SOL_SOCKET: i32 = 1;
    /// IP options.
    pub const IPPROTO_IP: i32 = 0;
    /// TCP options.
    pub const IPPROTO_TCP: i32 = 6;
    /// UDP options.
    pub const IPPROTO_UDP: i32 = 17;
    /// IPv6 options.
    pub const IPPROTO_IPV6: i32 = 41;

    /// `SO_REUSEADDR`.
    pub const SO_REUSEADDR: i32 = 2;
    /// `SO_TYPE`.
    pub const SO_TYPE: i32 = 3;
    /// `SO_ERROR`.
    pub const SO_ERROR: i32 = 4;
    /// `SO_DONTROUTE`.
    pub const SO_DONTROUTE: i32 = 5;
    /// `SO_BROADCAST`.
    pub const SO_BROADCAST: i32 = 6;
    /// `SO_SNDBUF`.
    pub const SO_SNDBUF: i32 = 7;
    /// `SO_RCVBUF`.
    pub const SO_RCVBUF: i32 = 8;
    /// `SO_KEEPALIVE`.
    pub const SO_KEEPALIVE: i32 = 9;
    /// `SO_OOBINLINE`.
    pub const SO_OOBINLINE: i32 = 10;
    /// `SO_PRIORITY`.
    pub const SO_PRIORITY: i32 = 12;
    /// `SO_LINGER`.
    pub const SO_LINGER: i32 = 13;
    /// `SO_REUSEPORT`.
    pub const SO_REUSEPORT: i32 = 15;
    /// `SO_RCVLOWAT`.
    pub const SO_RCVLOWAT: i32 = 18;
    /// `SO_SNDLOWAT`.
    pub const SO_SNDLOWAT: i32 = 19;
    /// `SO_RCVTIMEO` (the `timeval` form).
    pub const SO_RCVTIMEO: i32 = 20;
    /// `SO_SNDTIMEO` (the `timeval` form).
    pub const SO_SNDTIMEO: i32 = 21;
    /// `SO_TIMESTAMP`.
    pub const SO_TIMESTAMP: i32 = 29;
    /// `SO_ACCEPTCONN`.
    pub const SO_ACCEPTCONN: i32 = 30;
    /// `SO_SNDBUFFORCE`.
    pub const SO_SNDBUFFORCE: i32 = 32;
    /// `SO_RCVBUFFORCE`.
    pub const SO_RCVBUFFORCE: i32 = 33;
    /// `SO_PROTOCOL`.
    pub const SO_PROTOCOL: i32 = 38;
    /// `SO_DOMAIN`.
    pub const SO_DOMAIN: i32 = 39;

    /// `TCP_NODELAY`.
    pub const TCP_NODELAY: i32 = 1;
    /// `TCP_MAXSEG`.
    pub const TCP_MAXSEG: i32 = 2;
    /// `TCP_CORK`.
    pub const TCP_CORK: i32 = 3;
    /// `TCP_KEEPIDLE`.
    pub const TCP_KEEPIDLE: i32 = 4;
    /// `TCP_KEEPINTVL`.
    pub const TCP_KEEPINTVL: i32 = 5;
    /// `TCP_KEEPCNT`.
    pub const TCP_KEEPCNT: i32 = 6;
    /// `TCP_DEFER_ACCEPT`.
    pub const TCP_DEFER_ACCEPT: i32 = 9;
    /// `TCP_QUICKACK`.
    pub const TCP_QUICKACK: i32 = 12;
    /// `TCP_USER_TIMEOUT`.
    pub const TCP_USER_TIMEOUT: i32 = 18;
    /// `TCP_FASTOPEN`.
    pub const TCP_FASTOPEN: i32 = 23;

    /// `IP_TOS`.
    pub const IP_TOS: i32 = 1;
    /// `IP_TTL`.
    pub const IP_TTL: i32 = 2;
    /// `IP_PKTINFO`.
    pub const IP_PKTINFO: i32 = 8;
    /// `IP_MTU_DISCOVER`.
    pub const IP_MTU_DISCOVER: i32 = 10;
    /// `IP_RECVERR`.
    pub const IP_RECVERR: i32 = 11;
}

/// `shutdown` directions.
pub mod shut {
    /// No more receiving.
    pub const READ: u32 = 0;
    /// No more sending.
    pub const WRITE: u32 = 1;
    /// Neither.
    pub const BOTH: u32 = 2;
}

/// The default size of each of a TCP socket's two buffers.
const DEFAULT_BUFFER: usize = 64 * 1024;
/// The smallest and largest buffer `SO_RCVBUF` and `SO_SNDBUF` give.
const BUFFER_LIMITS: (usize, usize) = (4 * 1024, 4 * 1024 * 1024);
/// Datagrams a UDP socket queues each way.
const DATAGRAM_SLOTS: usize = 64;
/// The largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;
/// How long a connection attempt lasts without an answer (Linux gives up
/// after about two minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(127);
/// The default idle time before keep-alive probes (`TCP_KEEPIDLE`).
const KEEPALIVE_IDLE_SECONDS: u32 = 7200;

/// What kind of socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TCP.
    Stream,
    /// UDP.
    Datagram,
}

#[derive(Debug, Clone, Copy)]
struct Options {
    reuse_address: bool,
    keep_alive: bool,
    keepalive_idle_seconds: u32,
    no_delay: bool,
    receive_buffer: usize,
    send_buffer: usize,
    linger: Option<u32>,
    receive_timeout_ns: Option<u64>,
    send_timeout_ns: Option<u64>,
    broadcast: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reuse_address: false,
            keep_alive: false,
            keepalive_idle_seconds: KEEPALIVE_IDLE_SECONDS,
            no_delay: false,
            receive_buffer: DEFAULT_BUFFER,
            send_buffer: DEFAULT_BUFFER,
            linger: None,
            receive_timeout_ns: None,
            send_timeout_ns: None,
            broadcast: false,
        }
    }
}

#[derive(Debug)]
struct Stream {
    handle: SocketHandle,
    /// The port this socket reserved (none when accepted).
    owned_port: Option<u16>,
    /// Whether the connection was ever established.
    was_connected: bool,
    /// When a connection attempt started (ns).
    connect_started_ns: u64,
    /// An error not yet reported (`SO_ERROR`, or the next call).
    error: Option<Errno>,
    read_shut: bool,
    write_shut: bool,
}

#[derive(Debug, Default)]
struct Datagram {
    handle: Option<SocketHandle>,
    local: Option<SocketAddrV4>,
    peer: Option<SocketAddrV4>,
    read_shut: bool,
    write_shut: bool,
}

#[derive(Debug)]
enum State {
    /// A stream socket neither listening nor connected.
    Unconnected { bound: Option<SocketAddrV4> },
    /// A listening stream socket.
    Listening { listener: u64, local: SocketAddrV4 },
    /// A stream socket connecting, connected, or done.
    Stream(Stream),
    /// A datagram socket.
    Datagram(Datagram),
}

/// A socket.
pub struct Socket {
    network: Arc<Network>,
    kind: Kind,
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

fn ipv4(address: IpAddress) -> Ipv4Addr {
    match address {
        IpAddress::Ipv4(address) => address,
    }
}

fn endpoint_address(endpoint: IpEndpoint) -> SocketAddrV4 {
    SocketAddrV4::new(ipv4(endpoint.addr), endpoint.port)
}

fn listen_endpoint(address: SocketAddrV4) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: (!address.ip().is_unspecified()).then_some(IpAddress::Ipv4(*address.ip())),
        port: address.port(),
    }
}

impl Socket {
    /// A new socket of `kind` on `network`.
    pub fn new(network: Arc<Network>, kind: Kind) -> Arc<Socket> {
        let state = match kind {
            Kind::Stream => State::Unconnected { bound: None },
            Kind::Datagram => State::Datagram(Datagram::default()),
        };
        Arc::new(Socket {
            network,
            kind,
            state: Mutex::new(state),
            options: Mutex::new(Options::default()),
            waiters: Arc::new(WaiterList::new()),
        })
    }

    /// What kind of socket this is.
    pub fn kind(&self) -> Kind {
        self.kind
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
    pub fn bind(&self, caller: &Caller<'_>, address: SocketAddrV4) -> Result<(), Errno> {
        let reuse = self.options.lock().reuse_address;
        let mut state = self.state.lock();
        let is_unbound = match &*state {
            State::Unconnected { bound } => bound.is_none(),
            State::Datagram(datagram) => datagram.local.is_none(),
            State::Listening { .. } | State::Stream(_) => false,
        };
        if !is_unbound {
            return Err(Errno::EINVAL);
        }
        let protocol = self.protocol();
        let port = self.stack(caller, |stack| {
            if !stack.is_local_address(*address.ip()) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            stack.reserve_port(protocol, address.port(), reuse)
        })?;
        let local = SocketAddrV4::new(*address.ip(), port);
        match &mut *state {
            State::Unconnected { bound } => *bound = Some(local),
            State::Datagram(datagram) => self.open_datagram(caller, datagram, local)?,
            State::Listening { .. } | State::Stream(_) => unreachable!("checked above"),
        }
        Ok(())
    }

    /// Gives a datagram socket its smoltcp socket, bound to `local` (whose
    /// port is reserved).
    fn open_datagram(
        &self,
        caller: &Caller<'_>,
        datagram: &mut Datagram,
        local: SocketAddrV4,
    ) -> Result<(), Errno> {
        let (receive, send) = self.buffer_sizes();
        let waiters = self.waiters.clone();
        let handle = self.stack(caller, |stack| {
            let handle = stack.add_udp(DATAGRAM_SLOTS, receive.max(send));
            if stack.udp(handle).bind(listen_endpoint(local)).is_err() {
                stack.remove(handle);
                stack.release_port(Protocol::Udp, local.port());
                return Err(Errno::EINVAL);
            }
            stack.watch(handle, Protocol::Udp, &waiters);
            Ok(handle)
        })?;
        datagram.handle = Some(handle);
        datagram.local = Some(local);
        Ok(())
    }

    /// Binds a datagram socket to an ephemeral port if it is not bound.
    fn ensure_datagram_bound(
        &self,
        caller: &Caller<'_>,
        datagram: &mut Datagram,
    ) -> Result<SocketHandle, Errno> {
        if let Some(handle) = datagram.handle {
            return Ok(handle);
        }
        let port = self.stack(caller, |stack| stack.reserve_port(Protocol::Udp, 0, false))?;
        self.open_datagram(caller, datagram, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
        datagram.handle.ok_or(Errno::EINVAL)
    }

    /// `listen`.
    pub fn listen(&self, caller: &Caller<'_>, backlog: usize) -> Result<(), Errno> {
        if self.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut state = self.state.lock();
        let bound = match &*state {
            State::Listening { listener, .. } => {
                let listener = *listener;
                self.stack(caller, |stack| stack.set_backlog(listener, backlog));
                return Ok(());
            }
            State::Unconnected { bound } => *bound,
            State::Stream(_) | State::Datagram(_) => return Err(Errno::EINVAL),
        };
        let local = match bound {
            Some(local) => local,
            None => {
                let port = self.stack(caller, |stack| stack.reserve_port(Protocol::Tcp, 0, false))?;
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
            }
        };
        let sizes = self.buffer_sizes();
        let waiters = self.waiters.clone();
        let listener =
            self.stack(caller, |stack| stack.listen(listen_endpoint(local), backlog, sizes, &waiters));
        *state = State::Listening { listener, local };
        Ok(())
    }

    /// `accept`: the next connection and its peer's address.
    pub fn accept(
        &self,
        caller: &Caller<'_>,
        is_nonblocking: bool,
    ) -> Result<(Arc<Socket>, SocketAddrV4), Errno> {
        let listener = match &*self.state.lock() {
            State::Listening { listener, .. } => *listener,
            _ => return Err(Errno::EINVAL),
        };
        let timeout = self.options.lock().receive_timeout_ns;
        let handle = self.wait_for(caller, is_nonblocking, timeout, || {
            self.stack(caller, |stack| stack.accept(listener)).map(Ok)
        })?;
        let options = *self.options.lock();
        let socket = Arc::new(Socket {
            network: self.network.clone(),
            kind: Kind::Stream,
            state: Mutex::new(State::Stream(Stream {
                handle,
                owned_port: None,
                was_connected: true,
                connect_started_ns: 0,
                error: None,
                read_shut: false,
                write_shut: false,
            })),
            options: Mutex::new(options),
            waiters: Arc::new(WaiterList::new()),
        });
        let waiters = socket.waiters.clone();
        let peer = self.stack(caller, |stack| {
            stack.watch(handle, Protocol::Tcp, &waiters);
            let tcp = stack.tcp(handle);
            apply_tcp_options(tcp, &options);
            tcp.remote_endpoint().map(endpoint_address)
        });
        Ok((socket, peer.unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))))
    }

    /// `connect`.
    pub fn connect(
        &self,
        caller: &Caller<'_>,
        address: super::address::Address,
        is_nonblocking: bool,
    ) -> Result<(), Errno> {
        let remote = match address {
            super::address::Address::Ipv4(remote) => Some(remote),
            super::address::Address::Unspecified => None,
            super::address::Address::Local(_) | super::address::Address::Netlink { .. } => {
                return Err(Errno::EAFNOSUPPORT);
            }
        };
        if self.kind == Kind::Datagram {
            let mut state = self.state.lock();
            let State::Datagram(datagram) = &mut *state else {
                unreachable!("datagram sockets stay datagrams")
            };
            datagram.peer = match remote {
                None => None,
                Some(remote) => {
                    self.ensure_datagram_bound(caller, datagram)?;
                    Some(resolve_any(remote))
                }
            };
            return Ok(());
        }
        let remote = resolve_any(remote.ok_or(Errno::EAFNOSUPPORT)?);
        {
            let mut state = self.state.lock();
            let bound = match &mut *state {
                State::Unconnected { bound } => *bound,
                State::Listening { .. } => return Err(Errno::EINVAL),
                State::Stream(stream) => {
                    let tcp_state = self.stack(caller, |stack| stack.tcp(stream.handle).state());
                    return Err(match tcp_state {
                        tcp::State::SynSent | tcp::State::SynReceived => Errno::EALREADY,
                        _ => Errno::EISCONN,
                    });
                }
                State::Datagram(_) => unreachable!("stream sockets stay streams"),
            };
            let options = *self.options.lock();
            let waiters = self.waiters.clone();
            let now = caller.machine.monotonic_ns();
            let stream = self.stack(caller, |stack| {
                let (local, owned_port) = match bound {
                    Some(local) => (local, None),
                    None => {
                        let port = stack.reserve_port(Protocol::Tcp, 0, false)?;
                        (SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), Some(port))
                    }
                };
                let handle = stack.add_tcp((options.receive_buffer, options.send_buffer));
                let (tcp, context) = stack.tcp_and_context(handle);
                apply_tcp_options(tcp, &options);
                tcp.set_timeout(Some(CONNECT_TIMEOUT));
                let remote_endpoint = IpEndpoint::new(IpAddress::Ipv4(*remote.ip()), remote.port());
                if let Err(error) = tcp.connect(context, remote_endpoint, listen_endpoint(local)) {
                    stack.remove(handle);
                    if let Some(port) = owned_port {
                        stack.release_port(Protocol::Tcp, port);
                    }
                    return Err(match error {
                        tcp::ConnectError::Unaddressable => Errno::ENETUNREACH,
                        tcp::ConnectError::InvalidState => Errno::EISCONN,
                    });
                }
                stack.watch(handle, Protocol::Tcp, &waiters);
                Ok(Stream {
                    handle,
                    // A bound socket's port was reserved by bind: it keeps it.
                    owned_port: owned_port.or(bound.map(|local| local.port())),
                    was_connected: false,
                    connect_started_ns: now,
                    error: None,
                    read_shut: false,
                    write_shut: false,
                })
            })?;
            *state = State::Stream(stream);
        }
        if is_nonblocking {
            return Err(Errno::EINPROGRESS);
        }
        let timeout = self.options.lock().send_timeout_ns;
        self.wait_for(caller, false, timeout, || match self.connection_state(caller) {
            ConnectionState::Connecting => None,
            ConnectionState::Connected => Some(Ok(())),
            ConnectionState::Failed(error) => Some(Err(error)),
        })
        .map_err(|error| if error == Errno::EAGAIN { Errno::EINPROGRESS } else { error })
    }

    /// Where a stream socket's connection stands, noting the moment it is
    /// established and the error it ended with.
    fn connection_state(&self, caller: &Caller<'_>) -> ConnectionState {
        let mut state = self.state.lock();
        let State::Stream(stream) = &mut *state else { return ConnectionState::Failed(Errno::ENOTCONN) };
        let handle = stream.handle;
        let tcp_state = self.stack(caller, |stack| {
            let tcp = stack.tcp(handle);
            let tcp_state = tcp.state();
            if is_synchronized(tcp_state) && tcp.timeout() == Some(CONNECT_TIMEOUT) {
                tcp.set_timeout(None);
            }
            tcp_state
        });
        note_progress(stream, tcp_state, caller.machine.monotonic_ns());
        if let Some(error) = stream.error.take() {
            return ConnectionState::Failed(error);
        }
        if stream.was_connected {
            ConnectionState::Connected
        } else if tcp_state == tcp::State::Closed {
            ConnectionState::Failed(Errno::ECONNREFUSED)
        } else {
            ConnectionState::Connecting
        }
    }

    /// `send`, `sendto`, `write`: sends `bytes` (to `destination`, for
    /// datagrams). `EPIPE` means the caller gets `SIGPIPE` unless it said
    /// `MSG_NOSIGNAL`.
    pub fn send(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        destination: Option<SocketAddrV4>,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let timeout = self.options.lock().send_timeout_ns;
        match self.kind {
            Kind::Stream => self.send_stream(caller, bytes, is_nonblocking, timeout),
            Kind::Datagram => self.send_datagram(caller, bytes, destination, is_nonblocking, timeout),
        }
    }

    fn send_stream(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        let mut sent = 0;
        let result = self.wait_for(caller, is_nonblocking, timeout, || {
            let mut state = self.state.lock();
            let stream = match &mut *state {
                State::Stream(stream) => stream,
                State::Unconnected { .. } | State::Listening { .. } => return Some(Err(Errno::EPIPE)),
                State::Datagram(_) => unreachable!("stream sockets stay streams"),
            };
            if stream.write_shut {
                return Some(Err(Errno::EPIPE));
            }
            let handle = stream.handle;
            let now = caller.machine.monotonic_ns();
            let (tcp_state, written) = self.stack(caller, |stack| {
                let tcp = stack.tcp(handle);
                let written = if tcp.can_send() { tcp.send_slice(&bytes[sent..]).unwrap_or(0) } else { 0 };
                (tcp.state(), written)
            });
            note_progress(stream, tcp_state, now);
            sent += written;
            if sent == bytes.len() {
                return Some(Ok(sent));
            }
            if let Some(error) = stream.error.take() {
                return Some(Err(error));
            }
            let may_send = matches!(tcp_state, tcp::State::Established | tcp::State::CloseWait);
            let is_connecting = matches!(tcp_state, tcp::State::SynSent | tcp::State::SynReceived);
            if !may_send && !is_connecting {
                return Some(Err(Errno::EPIPE));
            }
            None
        });
        match result {
            Err(_) if sent > 0 => Ok(sent),
            other => other,
        }
    }

    fn send_datagram(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        destination: Option<SocketAddrV4>,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(Errno::EMSGSIZE);
        }
        let broadcast_allowed = self.options.lock().broadcast;
        let handle = {
            let mut state = self.state.lock();
            let State::Datagram(datagram) = &mut *state else {
                unreachable!("datagram sockets stay datagrams")
            };
            if datagram.write_shut {
                return Err(Errno::EPIPE);
            }
            if destination.is_none() && datagram.peer.is_none() {
                return Err(Errno::EDESTADDRREQ);
            }
            self.ensure_datagram_bound(caller, datagram)?
        };
        let destination = match destination {
            Some(destination) => resolve_any(destination),
            None => match &*self.state.lock() {
                State::Datagram(Datagram { peer: Some(peer), .. }) => *peer,
                _ => return Err(Errno::EDESTADDRREQ),
            },
        };
        if destination.ip().is_broadcast() && !broadcast_allowed {
            return Err(Errno::EACCES);
        }
        if destination.port() == 0 {
            return Err(Errno::EINVAL);
        }
        let endpoint = IpEndpoint::new(IpAddress::Ipv4(*destination.ip()), destination.port());
        self.wait_for(caller, is_nonblocking, timeout, || {
            self.stack(caller, |stack| {
                let udp = stack.udp(handle);
                if bytes.len() > udp.payload_send_capacity() {
                    return Some(Err(Errno::EMSGSIZE));
                }
                match udp.send_slice(bytes, endpoint) {
                    Ok(()) => Some(Ok(bytes.len())),
                    Err(udp::SendError::BufferFull) => None,
                    Err(udp::SendError::Unaddressable) => Some(Err(Errno::ENETUNREACH)),
                }
            })
        })
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
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let timeout = self.options.lock().receive_timeout_ns;
        match self.kind {
            Kind::Stream => self.receive_stream(caller, buffer, flags, is_nonblocking, timeout),
            Kind::Datagram => self.receive_datagram(caller, buffer, flags, is_nonblocking, timeout),
        }
    }

    fn receive_stream(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<Received, Errno> {
        let is_peek = flags & message::PEEK != 0;
        let wants_all = flags & message::WAITALL != 0 && !is_peek;
        let mut filled = 0;
        let result = self.wait_for(caller, is_nonblocking, timeout, || {
            let mut state = self.state.lock();
            let stream = match &mut *state {
                State::Stream(stream) => stream,
                State::Unconnected { .. } | State::Listening { .. } => return Some(Err(Errno::ENOTCONN)),
                State::Datagram(_) => unreachable!("stream sockets stay streams"),
            };
            if stream.read_shut {
                return Some(Ok(filled));
            }
            let handle = stream.handle;
            let now = caller.machine.monotonic_ns();
            let (tcp_state, taken, may_receive) = self.stack(caller, |stack| {
                let tcp = stack.tcp(handle);
                let taken = if !tcp.can_recv() {
                    0
                } else if is_peek {
                    tcp.peek_slice(&mut buffer[filled..]).unwrap_or(0)
                } else {
                    tcp.recv_slice(&mut buffer[filled..]).unwrap_or(0)
                };
                (tcp.state(), taken, tcp.may_recv())
            });
            note_progress(stream, tcp_state, now);
            filled += taken;
            if filled == buffer.len() || (filled > 0 && !wants_all) {
                return Some(Ok(filled));
            }
            if let Some(error) = stream.error.take() {
                return Some(if filled > 0 { Ok(filled) } else { Err(error) });
            }
            let is_connecting = matches!(tcp_state, tcp::State::SynSent | tcp::State::SynReceived);
            if !may_receive && !is_connecting {
                // The peer finished sending.
                return Some(Ok(filled));
            }
            None
        });
        match result {
            Err(_) if filled > 0 => {
                Ok(Received { length: filled, source: None, is_truncated: false, full_length: filled })
            }
            other => other.map(|length| Received {
                length,
                source: None,
                is_truncated: false,
                full_length: length,
            }),
        }
    }

    fn receive_datagram(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<Received, Errno> {
        let is_peek = flags & message::PEEK != 0;
        self.wait_for(caller, is_nonblocking, timeout, || {
            let (handle, peer) = match &*self.state.lock() {
                State::Datagram(datagram) if datagram.read_shut => {
                    return Some(Ok(Received {
                        length: 0,
                        source: None,
                        is_truncated: false,
                        full_length: 0,
                    }));
                }
                State::Datagram(datagram) => (datagram.handle?, datagram.peer),
                _ => unreachable!("datagram sockets stay datagrams"),
            };
            self.stack(caller, |stack| {
                let udp = stack.udp(handle);
                loop {
                    let (payload, metadata) = if is_peek {
                        let (payload, metadata) = udp.peek().ok()?;
                        (payload, *metadata)
                    } else {
                        udp.recv().ok()?
                    };
                    let source = endpoint_address(metadata.endpoint);
                    if peer.is_some_and(|peer| peer != source) {
                        // Not from the associated peer: Linux never
                        // delivers it.
                        if is_peek {
                            let _ = udp.recv();
                        }
                        continue;
                    }
                    let length = payload.len().min(buffer.len());
                    buffer[..length].copy_from_slice(&payload[..length]);
                    return Some(Ok(Received {
                        length,
                        source: Some(source),
                        is_truncated: payload.len() > buffer.len(),
                        full_length: payload.len(),
                    }));
                }
            })
        })
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
                        self.stack(caller, |stack| stack.tcp(handle).close());
                    }
                }
                State::Datagram(datagram) => {
                    datagram.read_shut |= reads;
                    datagram.write_shut |= writes;
                }
                State::Unconnected { .. } | State::Listening { .. } => return Err(Errno::ENOTCONN),
            }
        }
        self.waiters.notify();
        Ok(())
    }

    /// `getsockname`.
    pub fn local_address(&self, caller: &Caller<'_>) -> SocketAddrV4 {
        let unspecified = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        match &*self.state.lock() {
            State::Unconnected { bound } => bound.unwrap_or(unspecified),
            State::Listening { local, .. } => *local,
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
    pub fn peer_address(&self, caller: &Caller<'_>) -> Result<SocketAddrV4, Errno> {
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
                    stack.udp(handle).peek().map(|(payload, _)| payload.len()).unwrap_or(0)
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
        if let State::Stream(stream) = &*self.state.lock()
            && stream.was_connected
            && stream.error.is_none()
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
            Kind::Datagram => None,
        }
    }

    /// Sets an option (`setsockopt`); `value` holds the application's
    /// bytes.
    pub fn set_option(&self, caller: &Caller<'_>, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        let integer = || -> Result<i32, Errno> {
            let bytes: [u8; 4] =
                value.get(..4).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
            Ok(i32::from_ne_bytes(bytes))
        };
        let mut options = self.options.lock();
        match (level, name) {
            (option::SOL_SOCKET, option::SO_REUSEADDR) => options.reuse_address = integer()? != 0,
            (option::SOL_SOCKET, option::SO_KEEPALIVE) => options.keep_alive = integer()? != 0,
            (option::SOL_SOCKET, option::SO_BROADCAST) => options.broadcast = integer()? != 0,
            (option::SOL_SOCKET, option::SO_RCVBUF | option::SO_RCVBUFFORCE) => {
                options.receive_buffer = (integer()?.max(0) as usize).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            (option::SOL_SOCKET, option::SO_SNDBUF | option::SO_SNDBUFFORCE) => {
                options.send_buffer = (integer()?.max(0) as usize).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            (option::SOL_SOCKET, option::SO_LINGER) => {
                if value.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_ne_bytes(value[..4].try_into().map_err(|_| Errno::EINVAL)?);
                let seconds = i32::from_ne_bytes(value[4..8].try_into().map_err(|_| Errno::EINVAL)?);
                options.linger = (on != 0).then_some(seconds.max(0) as u32);
            }
            (option::SOL_SOCKET, option::SO_RCVTIMEO | option::SO_SNDTIMEO) => {
                let timeout = timeval_ns(value)?;
                if name == option::SO_RCVTIMEO {
                    options.receive_timeout_ns = timeout;
                } else {
                    options.send_timeout_ns = timeout;
                }
            }
            (
                option::SOL_SOCKET,
                option::SO_REUSEPORT
                | option::SO_DONTROUTE
                | option::SO_OOBINLINE
                | option::SO_PRIORITY
                | option::SO_RCVLOWAT
                | option::SO_SNDLOWAT
                | option::SO_TIMESTAMP,
            ) => {
                integer()?;
            }
            (option::IPPROTO_TCP, _) if self.kind != Kind::Stream => return Err(Errno::ENOPROTOOPT),
            (option::IPPROTO_TCP, option::TCP_NODELAY) => options.no_delay = integer()? != 0,
            (option::IPPROTO_TCP, option::TCP_KEEPIDLE) => {
                let seconds = integer()?;
                if !(1..=32767).contains(&seconds) {
                    return Err(Errno::EINVAL);
                }
                options.keepalive_idle_seconds = seconds as u32;
            }
            (
                option::IPPROTO_TCP,
                option::TCP_MAXSEG
                | option::TCP_CORK
                | option::TCP_KEEPINTVL
                | option::TCP_KEEPCNT
                | option::TCP_DEFER_ACCEPT
                | option::TCP_QUICKACK
                | option::TCP_USER_TIMEOUT
                | option::TCP_FASTOPEN,
            ) => {
                integer()?;
            }
            (
                option::IPPROTO_IP,
                option::IP_TOS
                | option::IP_TTL
                | option::IP_PKTINFO
                | option::IP_MTU_DISCOVER
                | option::IP_RECVERR,
            ) => {
                integer()?;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        let options = *options;
        if let State::Stream(stream) = &*self.state.lock() {
            let handle = stream.handle;
            self.stack(caller, |stack| apply_tcp_options(stack.tcp(handle), &options));
        }
        Ok(())
    }

    /// Reads an option (`getsockopt`) as the bytes the application gets.
    pub fn option(&self, caller: &Caller<'_>, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let integer = |value: i32| value.to_ne_bytes().to_vec();
        let options = *self.options.lock();
        Ok(match (level, name) {
            (option::SOL_SOCKET, option::SO_TYPE) => integer(match self.kind {
                Kind::Stream => kind::STREAM as i32,
                Kind::Datagram => kind::DATAGRAM as i32,
            }),
            (option::SOL_SOCKET, option::SO_PROTOCOL) => integer(match self.kind {
                Kind::Stream => option::IPPROTO_TCP,
                Kind::Datagram => option::IPPROTO_UDP,
            }),
            (option::SOL_SOCKET, option::SO_DOMAIN) => integer(i32::from(super::address::family::INET)),
            (option::SOL_SOCKET, option::SO_ERROR) => {
                integer(self.take_error(caller).map_or(0, |error| error.0))
            }
            (option::SOL_SOCKET, option::SO_ACCEPTCONN) => integer(i32::from(self.is_listening())),
            (option::SOL_SOCKET, option::SO_REUSEADDR) => integer(i32::from(options.reuse_address)),
            (option::SOL_SOCKET, option::SO_KEEPALIVE) => integer(i32::from(options.keep_alive)),
            (option::SOL_SOCKET, option::SO_BROADCAST) => integer(i32::from(options.broadcast)),
            (option::SOL_SOCKET, option::SO_RCVBUF) => integer(options.receive_buffer as i32),
            (option::SOL_SOCKET, option::SO_SNDBUF) => integer(options.send_buffer as i32),
            (option::SOL_SOCKET, option::SO_REUSEPORT | option::SO_OOBINLINE | option::SO_DONTROUTE) => {
                integer(0)
            }
            (option::SOL_SOCKET, option::SO_RCVLOWAT | option::SO_SNDLOWAT) => integer(1),
            (option::SOL_SOCKET, option::SO_LINGER) => {
                let mut bytes = integer(i32::from(options.linger.is_some()));
                bytes.extend_from_slice(&(options.linger.unwrap_or(0) as i32).to_ne_bytes());
                bytes
            }
            (option::SOL_SOCKET, option::SO_RCVTIMEO) => timeval_bytes(options.receive_timeout_ns),
            (option::SOL_SOCKET, option::SO_SNDTIMEO) => timeval_bytes(options.send_timeout_ns),
            (option::IPPROTO_TCP, _) if self.kind != Kind::Stream => return Err(Errno::ENOPROTOOPT),
            (option::IPPROTO_TCP, option::TCP_NODELAY) => integer(i32::from(options.no_delay)),
            (option::IPPROTO_TCP, option::TCP_KEEPIDLE) => integer(options.keepalive_idle_seconds as i32),
            (option::IPPROTO_TCP, option::TCP_MAXSEG) => integer(1460),
            (option::IPPROTO_TCP, option::TCP_KEEPINTVL) => integer(75),
            (option::IPPROTO_TCP, option::TCP_KEEPCNT) => integer(9),
            (option::IPPROTO_TCP, option::TCP_CORK | option::TCP_DEFER_ACCEPT | option::TCP_QUICKACK) => {
                integer(0)
            }
            (option::IPPROTO_IP, option::IP_TTL) => integer(64),
            (option::IPPROTO_IP, option::IP_TOS) => integer(0),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// The readiness bits that hold now.
    fn readiness(&self) -> u16 {
        let state = self.state.lock();
        let mut stack = self.network.stack.lock();
        match &*state {
            // An unconnected stream socket is writable and hung up, as on
            // Linux; a listening one is readable when a connection waits.
            State::Unconnected { .. } => events::POLLOUT | events::POLLHUP,
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
                    // Refused, reset, or finished: Linux reports all three.
                    ready |= events::POLLIN | events::POLLOUT | events::POLLHUP;
                    if !stream.was_connected || !stream.write_shut {
                        ready |= events::POLLERR;
                    }
                }
                ready
            }
            State::Datagram(datagram) => {
                let mut ready = 0;
                match datagram.handle {
                    Some(handle) => {
                        let udp = stack.udp(handle);
                        if udp.can_recv() || datagram.read_shut {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes stored.
    pub length: usize,
    /// The sender, for datagrams.
    pub source: Option<SocketAddrV4>,
    /// Whether the datagram was longer than the buffer.
    pub is_truncated: bool,
    /// The datagram's length (for streams, [`Received::length`]).
    pub full_length: usize,
}

enum ConnectionState {
    Connecting,
    Connected,
    Failed(Errno),
}

/// Notes what a stream's TCP state says about the connection: that it was
/// established, or how it ended.
fn note_progress(stream: &mut Stream, tcp_state: tcp::State, now_ns: u64) {
    if is_synchronized(tcp_state) {
        stream.was_connected = true;
        return;
    }
    if tcp_state != tcp::State::Closed || stream.error.is_some() {
        return;
    }
    if !stream.was_connected {
        let waited = now_ns.saturating_sub(stream.connect_started_ns);
        stream.error = Some(if waited >= CONNECT_TIMEOUT.total_micros() * 1000 {
            Errno::ETIMEDOUT
        } else {
            Errno::ECONNREFUSED
        });
        // Reported once; the socket stays closed.
        stream.was_connected = true;
        stream.write_shut = true;
    } else if !stream.write_shut {
        // Closed without our goodbye: the peer reset the connection.
        stream.error = Some(Errno::ECONNRESET);
        stream.write_shut = true;
    }
}

/// `INADDR_ANY` as a destination means this machine.
fn resolve_any(address: SocketAddrV4) -> SocketAddrV4 {
    if address.ip().is_unspecified() {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, address.port())
    } else {
        address
    }
}

fn apply_tcp_options(tcp: &mut tcp::Socket<'static>, options: &Options) {
    tcp.set_nagle_enabled(!options.no_delay);
    tcp.set_keep_alive(
        options.keep_alive.then(|| Duration::from_secs(u64::from(options.keepalive_idle_seconds))),
    );
}

/// Reads a `struct timeval` as a timeout (zero: none).
pub(super) fn timeval_ns(value: &[u8]) -> Result<Option<u64>, Errno> {
    if value.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let seconds = i64::from_ne_bytes(value[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let microseconds = i64::from_ne_bytes(value[8..16].try_into().map_err(|_| Errno::EINVAL)?);
    if seconds < 0 || !(0..1_000_000).contains(&microseconds) {
        return Err(Errno::EDOM);
    }
    let total = (seconds as u64).saturating_mul(1_000_000_000).saturating_add(microseconds as u64 * 1000);
    Ok((total > 0).then_some(total))
}

pub(super) fn timeval_bytes(timeout_ns: Option<u64>) -> Vec<u8> {
    let total = timeout_ns.unwrap_or(0);
    let mut bytes = ((total / 1_000_000_000) as i64).to_ne_bytes().to_vec();
    bytes.extend_from_slice(&(((total % 1_000_000_000) / 1000) as i64).to_ne_bytes());
    bytes
}

impl Drop for Socket {
    fn drop(&mut self) {
        let state = core::mem::replace(self.state.get_mut(), State::Unconnected { bound: None });
        let protocol = self.protocol();
        let linger_abort = self.options.get_mut().linger == Some(0);
        let mut stack = self.network.stack.lock();
        match state {
            State::Unconnected { bound } => {
                if let Some(local) = bound {
                    stack.release_port(protocol, local.port());
                }
            }
            State::Listening { listener, local } => {
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
