//! UDP: a datagram socket gets its smoltcp socket when it is bound,
//! explicitly or by its first send.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint};

use super::options::{SO_TIMESTAMPNS, Timestamps};
use super::{Datagram, Received, Socket, State, endpoint_address, ip_address, listen_endpoint, resolve_any};
use crate::errno::Errno;
use crate::net::abi::{ControlMessage, message, option};
use crate::net::stack::Protocol;
use crate::vfs::node::Caller;

/// Datagrams a UDP socket queues each way.
pub(super) const DATAGRAM_SLOTS: usize = 64;
/// The largest UDP payload over IPv4.
pub(super) const MAX_DATAGRAM: usize = 65_507;
impl Socket {
    /// Gives a datagram socket its smoltcp socket, bound to `local` (whose
    /// port is reserved).
    pub(super) fn open_datagram(
        &self,
        caller: &Caller<'_>,
        datagram: &mut Datagram,
        local: SocketAddr,
    ) -> Result<(), Errno> {
        let (receive, send) = self.buffer_sizes();
        let waiters = self.waiters.clone();
        let sources = self.options.lock().group_sources();
        let handle = self.stack(caller, |stack| {
            let handle = match stack.add_udp(DATAGRAM_SLOTS, receive.max(send)) {
                Ok(handle) => handle,
                Err(error) => {
                    stack.release_port(Protocol::Udp, local.port());
                    return Err(error);
                }
            };
            if stack.udp(handle).bind(listen_endpoint(local)).is_err() {
                stack.remove(handle);
                stack.release_port(Protocol::Udp, local.port());
                return Err(Errno::EINVAL);
            }
            stack.watch(handle, Protocol::Udp, &waiters);
            stack.set_group_sources(handle, &sources);
            Ok(handle)
        })?;
        datagram.handle = Some(handle);
        datagram.local = Some(local);
        Ok(())
    }

    /// Binds a datagram socket to an ephemeral port if it is not bound.
    pub(super) fn ensure_datagram_bound(
        &self,
        caller: &Caller<'_>,
        datagram: &mut Datagram,
    ) -> Result<SocketHandle, Errno> {
        if let Some(handle) = datagram.handle {
            return Ok(handle);
        }
        let port = self.stack(caller, |stack| stack.reserve_port(Protocol::Udp, 0, false))?;
        self.open_datagram(caller, datagram, self.unspecified(port))?;
        datagram.handle.ok_or(Errno::EINVAL)
    }

    pub(super) fn send_datagram(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        destination: Option<SocketAddr>,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        if bytes.len() > MAX_DATAGRAM {
            return Err(Errno::EMSGSIZE);
        }
        let (broadcast_allowed, is_corked) = {
            let options = self.options.lock();
            (options.broadcast, options.udp_cork)
        };
        let more = flags & message::MORE != 0 || is_corked;
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
            let handle = self.ensure_datagram_bound(caller, datagram)?;
            let reports = datagram.reports_errors();
            if let Some(error) = self.stack(caller, |stack| stack.take_pending_error(handle, reports)) {
                // An ICMP error about an earlier datagram.
                return Err(error);
            }
            handle
        };
        let destination = match destination {
            Some(destination) => resolve_any(destination),
            None => match &*self.state.lock() {
                State::Datagram(Datagram { peer: Some(peer), .. }) => *peer,
                _ => return Err(Errno::EDESTADDRREQ),
            },
        };
        let is_broadcast = matches!(destination.ip(), IpAddr::V4(ip) if ip.is_broadcast());
        if is_broadcast && !broadcast_allowed {
            return Err(Errno::EACCES);
        }
        if destination.port() == 0 {
            return Err(Errno::EINVAL);
        }
        // Gathering: later sends add to the first one's datagram, which
        // goes where the first one said, once a send does not hold it.
        let gathered = {
            let mut state = self.state.lock();
            let State::Datagram(datagram) = &mut *state else {
                unreachable!("datagram sockets stay datagrams")
            };
            match datagram.pending.take() {
                Some((mut pending, to)) => {
                    if pending.len() + bytes.len() > MAX_DATAGRAM {
                        datagram.pending = Some((pending, to));
                        return Err(Errno::EMSGSIZE);
                    }
                    pending.extend_from_slice(bytes);
                    if more {
                        datagram.pending = Some((pending, to));
                        return Ok(bytes.len());
                    }
                    Some((pending, to))
                }
                None if more => {
                    datagram.pending = Some((bytes.to_vec(), destination));
                    return Ok(bytes.len());
                }
                None => None,
            }
        };
        let (payload, destination) = match &gathered {
            Some((pending, to)) => (pending.as_slice(), *to),
            None => (bytes, destination),
        };
        self.send_one(caller, handle, payload, destination, is_nonblocking, timeout).map(|_| bytes.len())
    }

    /// Takes the next error from the error queue (`MSG_ERRQUEUE`): the
    /// payload of the datagram it concerns, where that went, and the error
    /// as `IP_RECVERR` gives it; `EAGAIN` when there is none.
    pub(super) fn receive_error(&self, caller: &Caller<'_>, buffer: &mut [u8]) -> Result<Received, Errno> {
        let handle = match &*self.state.lock() {
            State::Datagram(Datagram { handle: Some(handle), receives_errors: true, .. }) => *handle,
            _ => return Err(Errno::EAGAIN),
        };
        let error = self.stack(caller, |stack| stack.take_queued_error(handle)).ok_or(Errno::EAGAIN)?;
        let length = error.payload.len().min(buffer.len());
        buffer[..length].copy_from_slice(&error.payload[..length]);
        Ok(Received {
            length,
            source: Some(SocketAddr::V4(error.destination)),
            is_truncated: error.payload.len() > buffer.len(),
            full_length: error.payload.len(),
            control: alloc::vec![ControlMessage {
                level: option::IPPROTO_IP,
                kind: option::IP_RECVERR,
                data: error.extended_error(),
            }],
        })
    }

    /// Sends what a gathering socket holds (`UDP_CORK` came off).
    pub(super) fn send_pending(&self, caller: &Caller<'_>) -> Result<(), Errno> {
        let (handle, pending) = match &mut *self.state.lock() {
            State::Datagram(datagram) => (datagram.handle, datagram.pending.take()),
            _ => return Ok(()),
        };
        let (Some(handle), Some((payload, to))) = (handle, pending) else { return Ok(()) };
        self.send_one(caller, handle, &payload, to, true, None).map(|_| ())
    }

    /// Sends one datagram of `bytes` to `destination` through `handle`.
    fn send_one(
        &self,
        caller: &Caller<'_>,
        handle: SocketHandle,
        bytes: &[u8],
        destination: SocketAddr,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        let endpoint = IpEndpoint::new(ip_address(destination.ip()), destination.port());
        // A send to a group comes back to its members here, unless
        // `IP_MULTICAST_LOOP` is off.
        let looped = match destination {
            SocketAddr::V4(group) if group.ip().is_multicast() => {
                let options = self.options.lock();
                options.multicast_loop.then(|| (group, Ipv4Addr::from(options.multicast_interface)))
            }
            _ => None,
        };
        let local = match &*self.state.lock() {
            State::Datagram(datagram) => datagram.local,
            _ => None,
        };
        self.wait_for(caller, is_nonblocking, timeout, || {
            self.stack(caller, |stack| {
                let udp = stack.udp(handle);
                if bytes.len() > udp.payload_send_capacity() {
                    return Some(Err(Errno::EMSGSIZE));
                }
                match udp.send_slice(bytes, endpoint) {
                    Ok(()) => {
                        if let (Some((group, interface)), Some(local)) = (looped, local) {
                            let address = match local.ip() {
                                IpAddr::V4(address) if !address.is_unspecified() => address,
                                _ if !interface.is_unspecified() => interface,
                                _ => match stack.source_address(IpAddr::V4(*group.ip())) {
                                    Some(IpAddr::V4(address)) => address,
                                    _ => Ipv4Addr::LOCALHOST,
                                },
                            };
                            stack.deliver_to_group(
                                SocketAddr::new(IpAddr::V4(address), local.port()),
                                group,
                                bytes,
                            );
                        }
                        Some(Ok(bytes.len()))
                    }
                    Err(udp::SendError::BufferFull) => None,
                    Err(udp::SendError::Unaddressable) => Some(Err(Errno::ENETUNREACH)),
                }
            })
        })
    }

    pub(super) fn receive_datagram(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<Received, Errno> {
        let is_peek = flags & message::PEEK != 0;
        let mut received = self.wait_for(caller, is_nonblocking, timeout, || {
            let (handle, peer, reports) = match &*self.state.lock() {
                State::Datagram(datagram) if datagram.read_shut => {
                    let nothing = Received {
                        length: 0,
                        source: None,
                        is_truncated: false,
                        full_length: 0,
                        control: Vec::new(),
                    };
                    return Some(Ok((nothing, None)));
                }
                State::Datagram(datagram) => (datagram.handle?, datagram.peer, datagram.reports_errors()),
                _ => unreachable!("datagram sockets stay datagrams"),
            };
            self.stack(caller, |stack| {
                if let Some(error) = stack.take_pending_error(handle, reports) {
                    return Some(Err(error));
                }
                // Datagrams to a group first: they are the older.
                while let Some(arrival) = stack.take_group_datagram(handle, is_peek) {
                    if peer.is_some_and(|peer| peer != arrival.source) {
                        if is_peek {
                            stack.take_group_datagram(handle, false);
                        }
                        continue;
                    }
                    let length = arrival.payload.len().min(buffer.len());
                    buffer[..length].copy_from_slice(&arrival.payload[..length]);
                    return Some(Ok((
                        Received {
                            length,
                            source: Some(arrival.source),
                            is_truncated: arrival.payload.len() > buffer.len(),
                            full_length: arrival.payload.len(),
                            control: Vec::new(),
                        },
                        Some(*arrival.destination.ip()),
                    )));
                }
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
                    // `IP_PKTINFO` tells IPv4 destinations only.
                    let destination = metadata.local_address.and_then(|address| match address {
                        IpAddress::Ipv4(address) => Some(address),
                        IpAddress::Ipv6(_) => None,
                    });
                    return Some(Ok((
                        Received {
                            length,
                            source: Some(source),
                            is_truncated: payload.len() > buffer.len(),
                            full_length: payload.len(),
                            control: Vec::new(),
                        },
                        destination,
                    )));
                }
            })
        })?;
        self.add_control_messages(caller, &mut received);
        Ok(received.0)
    }

    /// The control messages the socket's options ask for with a datagram
    /// sent to `destination`: its time (`SO_TIMESTAMP`, `SO_TIMESTAMPNS`;
    /// the time it is taken, as the stack does not stamp arrivals), its
    /// destination and interface (`IP_PKTINFO`) and its type of service
    /// (`IP_RECVTOS`; the stack sends none but 0), in Linux's order.
    fn add_control_messages(
        &self,
        caller: &Caller<'_>,
        (received, destination): &mut (Received, Option<Ipv4Addr>),
    ) {
        let options = self.options.lock().clone();
        let control = &mut received.control;
        let now_ns = caller.machine.realtime_ns();
        let seconds = (now_ns / 1_000_000_000).to_le_bytes();
        match options.timestamps {
            Timestamps::Off => {}
            Timestamps::Microseconds => {
                let mut data = seconds.to_vec();
                data.extend_from_slice(&((now_ns % 1_000_000_000) / 1000).to_le_bytes());
                control.push(ControlMessage { level: option::SOL_SOCKET, kind: option::SO_TIMESTAMP, data });
            }
            Timestamps::Nanoseconds => {
                let mut data = seconds.to_vec();
                data.extend_from_slice(&(now_ns % 1_000_000_000).to_le_bytes());
                control.push(ControlMessage { level: option::SOL_SOCKET, kind: SO_TIMESTAMPNS, data });
            }
        }
        if options.packet_information
            && let Some(destination) = destination
        {
            // `struct in_pktinfo`: the interface, the local address the
            // reply would come from, and the datagram's destination. A
            // reply to a datagram sent to a group or broadcast comes from
            // the address that reaches its sender.
            let local = if destination.is_multicast() || destination.is_broadcast() {
                let reply_from = received
                    .source
                    .and_then(|source| self.stack(caller, |stack| stack.source_address(source.ip())));
                match reply_from {
                    Some(IpAddr::V4(address)) => address,
                    _ => Ipv4Addr::LOCALHOST,
                }
            } else {
                *destination
            };
            let index: u32 = if local.is_loopback() { 1 } else { 2 };
            let mut data = index.to_ne_bytes().to_vec();
            data.extend_from_slice(&local.octets());
            data.extend_from_slice(&destination.octets());
            control.push(ControlMessage { level: option::IPPROTO_IP, kind: option::IP_PKTINFO, data });
        }
        if options.receives_type_of_service {
            control.push(ControlMessage {
                level: option::IPPROTO_IP,
                kind: option::IP_TOS,
                data: alloc::vec![0],
            });
        }
    }
}
