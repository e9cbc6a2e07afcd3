//! TCP: listening, accepting, connecting, and a connection's sends and
//! receives, with the errors Linux gives as the connection moves.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use smoltcp::socket::tcp;
use smoltcp::wire::IpEndpoint;
use spin::Mutex;

use super::options::{apply_tcp_options, established_timeout};
use super::{
    Attempt, CONNECT_TIMEOUT, Kind, Received, Socket, State, Stream, endpoint_address, ip_address,
    is_synchronized, listen_endpoint, resolve_any,
};
use crate::errno::Errno;
use crate::net::abi::message;
use crate::net::stack::Protocol;
use crate::vfs::WaiterList;
use crate::vfs::node::Caller;

/// What a repeated `connect` does.
enum Again {
    /// Answers at once.
    Answer(Result<(), Errno>),
    /// Waits for the attempt under way to end.
    Wait,
    /// Starts a new connection from an unconnected socket bound to `bound`.
    Start { bound: Option<SocketAddr>, keeps_port: bool },
}

impl Socket {
    /// `listen`.
    pub fn listen(&self, caller: &Caller<'_>, backlog: usize) -> Result<(), Errno> {
        if self.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut state = self.state.lock();
        let (bound, keeps_port) = match &*state {
            State::Listening { listener, .. } => {
                let listener = *listener;
                self.stack(caller, |stack| stack.set_backlog(listener, backlog));
                return Ok(());
            }
            State::Unconnected { bound, keeps_port, .. } => (*bound, *keeps_port),
            State::Stream(_) | State::Datagram(_) => return Err(Errno::EINVAL),
        };
        let local = match bound {
            Some(local) => local,
            None => {
                let port = self.stack(caller, |stack| stack.reserve_port(Protocol::Tcp, 0, false))?;
                self.unspecified(port)
            }
        };
        let sizes = self.buffer_sizes();
        let waiters = self.waiters.clone();
        let (shares_port, defer_seconds) = {
            let options = self.options.lock();
            (options.reuse_port, options.defer_accept_seconds as u32)
        };
        let listener = self.stack(caller, |stack| {
            let listener = stack.listen(listen_endpoint(local), backlog, sizes, &waiters, shares_port);
            stack.set_defer_accept(listener, defer_seconds);
            listener
        });
        *state = State::Listening { listener, local, keeps_port: keeps_port && bound.is_some() };
        Ok(())
    }

    /// `accept`: the next connection and its peer's address.
    pub fn accept(
        &self,
        caller: &Caller<'_>,
        is_nonblocking: bool,
    ) -> Result<(Arc<Socket>, SocketAddr), Errno> {
        if self.kind == Kind::Datagram {
            return Err(Errno::EOPNOTSUPP);
        }
        let timeout = self.options.lock().receive_timeout_ns;
        // Each try looks at the state afresh: a `shutdown` that stops the
        // listener fails the accepts waiting on it.
        let handle = self.wait_for(caller, is_nonblocking, timeout, || {
            let state = self.state.lock();
            let State::Listening { listener, .. } = &*state else {
                return Some(Err(Errno::EINVAL));
            };
            let listener = *listener;
            self.stack(caller, |stack| stack.accept(listener)).map(Ok)
        })?;
        let options = self.options.lock().for_accepted();
        let socket = Arc::new(Socket {
            network: self.network.clone(),
            kind: Kind::Stream,
            is_ipv6: self.is_ipv6,
            state: Mutex::new(State::Stream(Stream {
                handle,
                owned_port: None,
                was_connected: true,
                attempt: Attempt::Connected,
                bound: None,
                keeps_port: false,
                connect_started_ns: 0,
                error: None,
                read_shut: false,
                write_shut: false,
                has_ended: false,
                ends: None,
            })),
            options: Mutex::new(options.clone()),
            waiters: Arc::new(WaiterList::new()),
        });
        let waiters = socket.waiters.clone();
        let peer = self.stack(caller, |stack| {
            stack.watch(handle, Protocol::Tcp, &waiters);
            apply_tcp_options(stack, handle, &options);
            stack.tcp(handle).remote_endpoint().map(endpoint_address)
        });
        Ok((socket, peer.unwrap_or(self.unspecified(0))))
    }

    /// `connect`.
    pub fn connect(
        &self,
        caller: &Caller<'_>,
        address: crate::net::address::Address,
        is_nonblocking: bool,
    ) -> Result<(), Errno> {
        let remote = match address {
            crate::net::address::Address::Unspecified => None,
            address => Some(self.stack_address(&address)?),
        };
        if remote.is_some_and(|remote| remote.ip().is_loopback()) && !self.network.is_loop_up() {
            return Err(Errno::ENETUNREACH);
        }
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
            let (bound, keeps_port) = match &mut *state {
                State::Unconnected { bound, keeps_port, .. } => (*bound, *keeps_port),
                State::Listening { .. } => return Err(Errno::EINVAL),
                State::Stream(stream) => match self.connect_again(caller, stream, is_nonblocking) {
                    Again::Answer(result) => return result,
                    Again::Wait => {
                        drop(state);
                        return self.wait_connected(caller);
                    }
                    Again::Start { bound, keeps_port } => (bound, keeps_port),
                },
                State::Datagram(_) => unreachable!("stream sockets stay streams"),
            };
            // A failed attempt's connection is gone: the socket is
            // unconnected until the new one exists.
            *state = State::unconnected(bound, keeps_port);
            let options = self.options.lock().clone();
            let waiters = self.waiters.clone();
            let now = caller.machine.monotonic_ns();
            let stream = self.stack(caller, |stack| {
                let (local, owned_port) = match bound {
                    Some(local) => (local, None),
                    None => {
                        let port = stack.reserve_port(Protocol::Tcp, 0, false)?;
                        (self.unspecified(port), Some(port))
                    }
                };
                let handle = match stack.add_tcp((options.receive_buffer, options.send_buffer)) {
                    Ok(handle) => handle,
                    Err(error) => {
                        if let Some(port) = owned_port {
                            stack.release_port(Protocol::Tcp, port);
                        }
                        return Err(error);
                    }
                };
                apply_tcp_options(stack, handle, &options);
                let (tcp, context) = stack.tcp_and_context(handle);
                tcp.set_timeout(Some(CONNECT_TIMEOUT));
                let remote_endpoint = IpEndpoint::new(ip_address(remote.ip()), remote.port());
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
                stack.choose_ack_delay(handle);
                stack.watch(handle, Protocol::Tcp, &waiters);
                Ok(Stream {
                    handle,
                    // A bound socket's port was reserved by bind: it keeps it.
                    owned_port: owned_port.or(bound.map(|local| local.port())),
                    was_connected: false,
                    attempt: Attempt::Connecting,
                    bound,
                    keeps_port,
                    connect_started_ns: now,
                    error: None,
                    read_shut: false,
                    write_shut: false,
                    has_ended: false,
                    ends: None,
                })
            })?;
            *state = State::Stream(stream);
        }
        if is_nonblocking {
            return Err(Errno::EINPROGRESS);
        }
        self.wait_connected(caller)
    }

    /// A `connect` on a socket that already made one, answered as Linux
    /// answers from its socket state and the TCP state.
    fn connect_again(&self, caller: &Caller<'_>, stream: &mut Stream, is_nonblocking: bool) -> Again {
        let handle = stream.handle;
        let ends = &mut stream.ends;
        let (tcp_state, peer_finished) =
            self.stack(caller, |stack| (stack.tcp(handle).state(), stack.peer_finished(handle, ends)));
        note_progress(stream, tcp_state, peer_finished, caller.machine.monotonic_ns());
        match stream.attempt {
            Attempt::Connected => Again::Answer(Err(Errno::EISCONN)),
            Attempt::Connecting if matches!(tcp_state, tcp::State::SynSent | tcp::State::SynReceived) => {
                if is_nonblocking {
                    Again::Answer(Err(Errno::EALREADY))
                } else {
                    Again::Wait
                }
            }
            Attempt::Connecting if tcp_state != tcp::State::Closed => {
                stream.attempt = Attempt::Connected;
                Again::Answer(Ok(()))
            }
            // Refused, reset or timed out: the error not yet reported, or
            // that the attempt was aborted.
            Attempt::Connecting => {
                self.end_attempt(caller, stream);
                Again::Answer(Err(stream.error.take().unwrap_or(Errno::ECONNABORTED)))
            }
            // The attempt failed: a new one starts from the same socket.
            Attempt::Failed => {
                self.end_attempt(caller, stream);
                let keeps_port = stream.keeps_port;
                let bound = stream.bound.filter(|_| keeps_port);
                self.stack(caller, |stack| stack.close_tcp(handle));
                Again::Start { bound, keeps_port }
            }
        }
    }

    /// Marks a connection attempt failed and gives back a port the stack
    /// chose for it, as Linux does when the connection closes.
    fn end_attempt(&self, caller: &Caller<'_>, stream: &mut Stream) {
        stream.attempt = Attempt::Failed;
        if !stream.keeps_port
            && let Some(port) = stream.owned_port.take()
        {
            self.stack(caller, |stack| stack.release_port(Protocol::Tcp, port));
        }
    }

    /// Waits for a connection attempt to end (`connect` without
    /// `O_NONBLOCK`), bounded by `SO_SNDTIMEO`.
    fn wait_connected(&self, caller: &Caller<'_>) -> Result<(), Errno> {
        let timeout = self.options.lock().send_timeout_ns;
        let result = self.wait_for(caller, false, timeout, || match self.connection_state(caller) {
            ConnectionState::Connecting => None,
            ConnectionState::Connected => Some(Ok(())),
            ConnectionState::Failed(error) => Some(Err(error)),
        });
        let mut state = self.state.lock();
        if let State::Stream(stream) = &mut *state {
            match result {
                Ok(()) => stream.attempt = Attempt::Connected,
                // Interrupted or out of time: still connecting.
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => self.end_attempt(caller, stream),
            }
        }
        drop(state);
        result.map_err(|error| if error == Errno::EAGAIN { Errno::EINPROGRESS } else { error })
    }

    /// Where a stream socket's connection stands, noting the moment it is
    /// established and the error it ended with.
    pub(super) fn connection_state(&self, caller: &Caller<'_>) -> ConnectionState {
        let mut state = self.state.lock();
        let State::Stream(stream) = &mut *state else { return ConnectionState::Failed(Errno::ENOTCONN) };
        let handle = stream.handle;
        let timeout = established_timeout(&self.options.lock());
        let ends = &mut stream.ends;
        let (tcp_state, peer_finished) = self.stack(caller, |stack| {
            let tcp = stack.tcp(handle);
            let tcp_state = tcp.state();
            if is_synchronized(tcp_state) && tcp.timeout() == Some(CONNECT_TIMEOUT) {
                tcp.set_timeout(timeout);
            }
            (tcp_state, stack.peer_finished(handle, ends))
        });
        note_progress(stream, tcp_state, peer_finished, caller.machine.monotonic_ns());
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

    pub(super) fn send_stream(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        // `MSG_MORE` or the cork: what is left of a segment waits.
        let hold = flags & message::MORE != 0 || self.options.lock().cork;
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
            let moment = smoltcp::time::Instant::from_micros((now / 1000) as i64);
            let ends = &mut stream.ends;
            let (tcp_state, written, peer_finished) = self.stack(caller, |stack| {
                let written = stack.send_gathered(handle, &bytes[sent..], hold, moment);
                (stack.tcp(handle).state(), written, stack.peer_finished(handle, ends))
            });
            note_progress(stream, tcp_state, peer_finished, now);
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

    pub(super) fn receive_stream(
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
            let ends = &mut stream.ends;
            let (tcp_state, taken, may_receive, peer_finished) = self.stack(caller, |stack| {
                let tcp = stack.tcp(handle);
                let taken = if !tcp.can_recv() {
                    0
                } else if is_peek {
                    tcp.peek_slice(&mut buffer[filled..]).unwrap_or(0)
                } else {
                    tcp.recv_slice(&mut buffer[filled..]).unwrap_or(0)
                };
                let (tcp_state, may_receive) = (tcp.state(), tcp.may_recv());
                (tcp_state, taken, may_receive, stack.peer_finished(handle, ends))
            });
            note_progress(stream, tcp_state, peer_finished, now);
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
            Err(_) if filled > 0 => Ok(Received {
                length: filled,
                source: None,
                is_truncated: false,
                full_length: filled,
                control: Vec::new(),
            }),
            other => other.map(|length| Received {
                length,
                source: None,
                is_truncated: false,
                full_length: length,
                control: Vec::new(),
            }),
        }
    }
}

pub(super) enum ConnectionState {
    Connecting,
    Connected,
    Failed(Errno),
}

/// Notes what a stream's TCP state says about the connection: that it was
/// established, or how it ended; `peer_finished`: the peer's FIN came
/// (a connection closed without it after our own FIN was reset).
pub(super) fn note_progress(stream: &mut Stream, tcp_state: tcp::State, peer_finished: bool, now_ns: u64) {
    if is_synchronized(tcp_state) {
        stream.was_connected = true;
        return;
    }
    if tcp_state != tcp::State::Closed || stream.error.is_some() || stream.has_ended {
        return;
    }
    stream.has_ended = true;
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
    } else if !stream.write_shut || !peer_finished {
        // Closed without our goodbye, or without the peer's: it reset the
        // connection.
        stream.error = Some(Errno::ECONNRESET);
        stream.write_shut = true;
    }
}

/// The time `TCP_DEFER_ACCEPT` keeps, from the seconds asked for: Linux
/// keeps a count of SYN-ACK retransmissions instead (the fewest whose
/// timeouts, from one second doubling up to 120, add up to the time, at
/// most 255), and reads back their total.
pub(super) fn defer_accept_seconds(asked: i32) -> i32 {
    const FIRST_TIMEOUT: i32 = 1;
    const LONGEST_TIMEOUT: i32 = 120;
    const MOST_RETRANSMISSIONS: u32 = 255;
    if asked <= 0 {
        return 0;
    }
    let (mut timeout, mut total, mut retransmissions) = (FIRST_TIMEOUT, FIRST_TIMEOUT, 1);
    while asked > total && retransmissions < MOST_RETRANSMISSIONS {
        retransmissions += 1;
        timeout = (timeout * 2).min(LONGEST_TIMEOUT);
        total += timeout;
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn defer_accept_is_rounded_to_whole_retransmissions() {
        let pairs =
            [(-5, 0), (0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (100, 127), (1000, 1087), (i32::MAX, 29887)];
        for (asked, kept) in pairs {
            assert_eq!(super::defer_accept_seconds(asked), kept, "{asked}");
        }
    }
}
