//! Raw IPv4 sockets (`SOCK_RAW`, `raw(7)`) over smoltcp's raw sockets, for
//! programs such as ping; making one needs `CAP_NET_RAW`.
//!
//! A socket of protocol P receives every IPv4 packet of protocol P the
//! machine receives (what it sends itself included), IP header first, as
//! Linux's do, and sends its data as the payload of a packet it heads; with
//! `IP_HDRINCL` (always, for `IPPROTO_RAW`) the application heads the
//! packet. `IPPROTO_RAW` sockets receive nothing. ICMP sockets take
//! Linux's `ICMP_FILTER`. The smoltcp socket that sends another protocol's
//! packets (`IP_HDRINCL`) is made when first needed and receives nothing.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::{IpAddr, Ipv4Addr};

use smoltcp::iface::SocketHandle;
use spin::Mutex;

use super::Network;
use super::abi::{message, option, shut, timeval_bytes, timeval_ns};
use super::settings;
use super::stack::{Protocol, Stack};
use crate::errno::Errno;
use crate::vfs::node::{Caller, FileType, Metadata};
use crate::vfs::waiters::events;
use crate::vfs::{FsError, SpecialFile, WaiterList};

/// `IPPROTO_ICMP`.
pub const IPPROTO_ICMP: u8 = 1;
/// `IPPROTO_RAW`: the application heads every packet; nothing comes in.
pub const IPPROTO_RAW: u8 = 255;
/// `SOL_RAW` and its `ICMP_FILTER` option.
const SOL_RAW: i32 = 255;
const ICMP_FILTER: i32 = 1;
/// `IP_HDRINCL`, and the options kept and read back only.
const IP_HDRINCL: i32 = 3;
const IP_MULTICAST_TTL: i32 = 33;
const IP_MULTICAST_LOOP: i32 = 34;
const SO_DEBUG: i32 = 1;
const SO_MARK: i32 = 36;
/// Bytes of an IPv4 header without options, and the largest packet.
const HEADER_SIZE: usize = 20;
const PACKET_MAX: usize = 65_535;
/// Packets and bytes a receiving socket holds.
const RECEIVE_SLOTS: usize = 64;
const RECEIVE_BYTES: usize = 256 * 1024;
/// The time to live of packets, unless set.
const DEFAULT_TTL: u8 = 64;
/// The send and receive buffers, as `SO_SNDBUF` and `SO_RCVBUF` report
/// them until set.
const DEFAULT_BUFFER: usize = 212_992;

/// What a raw socket was told.
#[derive(Debug, Clone)]
struct RawState {
    /// `connect`: packets go there, and only its packets come in.
    peer: Option<Ipv4Addr>,
    /// `bind`: packets leave from there, and only those to it come in.
    local: Option<Ipv4Addr>,
    header_included: bool,
    time_to_live: u8,
    type_of_service: u8,
    /// ICMP types dropped on arrival (`ICMP_FILTER`), a bit each.
    icmp_filter: u32,
    receive_timeout_ns: Option<u64>,
    send_timeout_ns: Option<u64>,
    receive_buffer: usize,
    send_buffer: usize,
    /// Options kept and read back: (level, name) to value.
    kept: BTreeMap<(i32, i32), i32>,
    read_shut: bool,
    write_shut: bool,
}

/// A raw IPv4 socket.
pub struct RawSocket {
    network: Arc<Network>,
    protocol: u8,
    /// The smoltcp raw sockets, by the protocol they carry; the socket's
    /// own protocol's receives.
    handles: Mutex<BTreeMap<u8, SocketHandle>>,
    state: Mutex<RawState>,
    waiters: Arc<WaiterList>,
}

impl core::fmt::Debug for RawSocket {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("RawSocket").field("protocol", &self.protocol).finish()
    }
}

/// What one receive got.
#[derive(Debug)]
pub struct RawReceived {
    /// Bytes stored.
    pub length: usize,
    /// The packet's length, stored or not.
    pub full_length: usize,
    /// Who sent it.
    pub source: Ipv4Addr,
}

/// The source and destination addresses of an IPv4 packet.
fn addresses(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let destination: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    Some((Ipv4Addr::from(source), Ipv4Addr::from(destination)))
}

impl RawSocket {
    /// A raw socket of IP protocol `protocol` (0 is refused before).
    pub fn new(caller: &Caller<'_>, network: Arc<Network>, protocol: u8) -> Result<Arc<RawSocket>, Errno> {
        let waiters = Arc::new(WaiterList::new());
        let mut handles = BTreeMap::new();
        if protocol != IPPROTO_RAW {
            let handle = network.with_stack(caller.machine.monotonic_ns(), |stack| {
                let handle = stack.add_raw(protocol, RECEIVE_SLOTS, RECEIVE_BYTES)?;
                stack.watch(handle, Protocol::Raw, &waiters);
                Ok::<_, Errno>(handle)
            })?;
            handles.insert(protocol, handle);
        }
        Ok(Arc::new(RawSocket {
            network,
            protocol,
            handles: Mutex::new(handles),
            state: Mutex::new(RawState {
                peer: None,
                local: None,
                header_included: protocol == IPPROTO_RAW,
                time_to_live: DEFAULT_TTL,
                type_of_service: 0,
                icmp_filter: 0,
                receive_timeout_ns: None,
                send_timeout_ns: None,
                receive_buffer: DEFAULT_BUFFER,
                send_buffer: DEFAULT_BUFFER,
                kept: BTreeMap::new(),
                read_shut: false,
                write_shut: false,
            }),
            waiters,
        }))
    }

    /// The IP protocol the socket was made for.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    fn stack<T>(&self, caller: &Caller<'_>, operation: impl FnOnce(&mut Stack) -> T) -> T {
        self.network.with_stack(caller.machine.monotonic_ns(), operation)
    }

    /// `bind`: an address of the machine's (or the any-address).
    pub fn bind(&self, caller: &Caller<'_>, address: Ipv4Addr) -> Result<(), Errno> {
        if !address.is_unspecified()
            && !self.stack(caller, |stack| stack.is_local_address(IpAddr::V4(address)))
        {
            return Err(Errno::EADDRNOTAVAIL);
        }
        self.state.lock().local = (!address.is_unspecified()).then_some(address);
        Ok(())
    }

    /// `connect` (`None`: `AF_UNSPEC`, forget the peer).
    pub fn connect(&self, peer: Option<Ipv4Addr>) {
        self.state.lock().peer = peer;
    }

    /// `getsockname`'s address.
    pub fn local_address(&self) -> Ipv4Addr {
        self.state.lock().local.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// `getpeername`'s address.
    pub fn peer_address(&self) -> Result<Ipv4Addr, Errno> {
        self.state.lock().peer.ok_or(Errno::ENOTCONN)
    }

    /// `shutdown`: only a connected socket has anything to shut.
    pub fn shutdown(&self, how: u32) -> Result<(), Errno> {
        if how > shut::BOTH {
            return Err(Errno::EINVAL);
        }
        let mut state = self.state.lock();
        if state.peer.is_none() {
            return Err(Errno::ENOTCONN);
        }
        state.read_shut |= how != shut::WRITE;
        state.write_shut |= how != shut::READ;
        drop(state);
        self.waiters.notify();
        Ok(())
    }

    /// Sends `bytes` to `destination` (or the peer) as one packet.
    pub fn send(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        destination: Option<Ipv4Addr>,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        let state = self.state.lock().clone();
        if state.write_shut {
            return Err(Errno::EPIPE);
        }
        let destination = destination.or(state.peer).ok_or(Errno::EDESTADDRREQ)?;
        let packet = if state.header_included {
            self.headed_packet(caller, bytes, destination)?
        } else {
            if bytes.len() + HEADER_SIZE > PACKET_MAX {
                return Err(Errno::EMSGSIZE);
            }
            let source = match state.local {
                Some(local) => local,
                None => match self.stack(caller, |stack| stack.source_address(IpAddr::V4(destination))) {
                    Some(IpAddr::V4(source)) => source,
                    _ => return Err(Errno::ENETUNREACH),
                },
            };
            let mut packet = Vec::new();
            packet.try_reserve_exact(bytes.len() + HEADER_SIZE).map_err(|_| Errno::ENOBUFS)?;
            let total = (bytes.len() + HEADER_SIZE) as u16;
            packet.extend_from_slice(&[0x45, state.type_of_service]);
            packet.extend_from_slice(&total.to_be_bytes());
            // No identification; "don't fragment" as Linux sets it with
            // path MTU discovery; the stack fills in the checksum.
            packet.extend_from_slice(&[0, 0, 0x40, 0, state.time_to_live, self.protocol, 0, 0]);
            packet.extend_from_slice(&source.octets());
            packet.extend_from_slice(&destination.octets());
            packet.extend_from_slice(bytes);
            packet
        };
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let protocol = packet[9];
        let handle = self.sender(caller, protocol)?;
        super::wait_for(caller, &self.waiters, is_nonblocking, state.send_timeout_ns, || {
            let sent = self.stack(caller, |stack| stack.raw(handle).send_slice(&packet).is_ok());
            sent.then_some(Ok(bytes.len()))
        })
    }

    /// A packet the application headed (`IP_HDRINCL`): its total length
    /// set to what was given, and a zero source replaced, as Linux does.
    fn headed_packet(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        destination: Ipv4Addr,
    ) -> Result<Vec<u8>, Errno> {
        if bytes.len() > PACKET_MAX {
            return Err(Errno::EMSGSIZE);
        }
        let header_length = usize::from(bytes.first().copied().unwrap_or(0) & 0x0f) * 4;
        if bytes.len() < HEADER_SIZE
            || bytes[0] >> 4 != 4
            || header_length < HEADER_SIZE
            || header_length > bytes.len()
        {
            return Err(Errno::EINVAL);
        }
        let mut packet = Vec::new();
        packet.try_reserve_exact(bytes.len()).map_err(|_| Errno::ENOBUFS)?;
        packet.extend_from_slice(bytes);
        packet[2..4].copy_from_slice(&(bytes.len() as u16).to_be_bytes());
        if packet[12..16] == [0; 4] {
            let source = match self.stack(caller, |stack| stack.source_address(IpAddr::V4(destination))) {
                Some(IpAddr::V4(source)) => source,
                _ => return Err(Errno::ENETUNREACH),
            };
            packet[12..16].copy_from_slice(&source.octets());
        }
        Ok(packet)
    }

    /// The smoltcp socket that sends packets of `protocol`, made when
    /// first needed for another protocol than the socket's own.
    fn sender(&self, caller: &Caller<'_>, protocol: u8) -> Result<SocketHandle, Errno> {
        let mut handles = self.handles.lock();
        if let Some(handle) = handles.get(&protocol) {
            return Ok(*handle);
        }
        let handle = self.stack(caller, |stack| stack.add_raw(protocol, 0, 0))?;
        handles.insert(protocol, handle);
        Ok(handle)
    }

    /// Receives the next packet of the socket's protocol that passes its
    /// filters, IP header first.
    pub fn receive(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
    ) -> Result<RawReceived, Errno> {
        let Some(handle) = self.handles.lock().get(&self.protocol).copied() else {
            // IPPROTO_RAW: nothing ever comes.
            let timeout = self.state.lock().receive_timeout_ns;
            return super::wait_for(caller, &self.waiters, is_nonblocking, timeout, || None);
        };
        let state = self.state.lock().clone();
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        super::wait_for(caller, &self.waiters, is_nonblocking, state.receive_timeout_ns, || {
            self.stack(caller, |stack| {
                loop {
                    let socket = stack.raw(handle);
                    let packet = match socket.peek() {
                        Ok(packet) => packet,
                        Err(_) if state.read_shut => {
                            return Some(Ok(RawReceived {
                                length: 0,
                                full_length: 0,
                                source: Ipv4Addr::UNSPECIFIED,
                            }));
                        }
                        Err(_) => return None,
                    };
                    let Some((source, destination)) = addresses(packet) else {
                        let _ = socket.recv();
                        continue;
                    };
                    if !self.passes(&state, packet, source, destination) {
                        let _ = socket.recv();
                        continue;
                    }
                    let length = packet.len().min(buffer.len());
                    buffer[..length].copy_from_slice(&packet[..length]);
                    let full_length = packet.len();
                    if flags & message::PEEK == 0 {
                        let _ = socket.recv();
                    }
                    return Some(Ok(RawReceived { length, full_length, source }));
                }
            })
        })
    }

    /// Whether a received packet is for this socket: from its peer, to its
    /// address, and of an ICMP type its filter lets through.
    fn passes(&self, state: &RawState, packet: &[u8], source: Ipv4Addr, destination: Ipv4Addr) -> bool {
        if state.peer.is_some_and(|peer| peer != source)
            || state.local.is_some_and(|local| local != destination)
        {
            return false;
        }
        if self.protocol == IPPROTO_ICMP {
            let header_length = usize::from(packet[0] & 0x0f) * 4;
            if let Some(&icmp_type) = packet.get(header_length)
                && icmp_type < 32
                && state.icmp_filter & (1 << icmp_type) != 0
            {
                return false;
            }
        }
        true
    }

    /// Bytes of the next packet (`FIONREAD`).
    pub fn available_bytes(&self) -> usize {
        let Some(handle) = self.handles.lock().get(&self.protocol).copied() else { return 0 };
        self.network.stack.lock().raw(handle).peek().map_or(0, <[u8]>::len)
    }

    /// The largest packet a send takes.
    pub fn largest_message(&self) -> usize {
        PACKET_MAX
    }

    /// `setsockopt`.
    pub fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        let integer = || -> Result<i32, Errno> {
            match value.len() {
                0 => Err(Errno::EINVAL),
                1..=3 => Ok(i32::from(value[0])),
                _ => Ok(i32::from_ne_bytes([value[0], value[1], value[2], value[3]])),
            }
        };
        let mut state = self.state.lock();
        match (level, name) {
            (SOL_RAW, ICMP_FILTER) if self.protocol != IPPROTO_ICMP => return Err(Errno::EOPNOTSUPP),
            (SOL_RAW, ICMP_FILTER) => {
                let bytes: [u8; 4] =
                    value.get(..4).and_then(|bytes| bytes.try_into().ok()).ok_or(Errno::EINVAL)?;
                state.icmp_filter = u32::from_ne_bytes(bytes);
            }
            (option::IPPROTO_IP, IP_HDRINCL) if self.protocol == IPPROTO_RAW => {}
            (option::IPPROTO_IP, IP_HDRINCL) => state.header_included = integer()? != 0,
            (option::IPPROTO_IP, option::IP_TTL) => {
                let ttl = integer()?;
                state.time_to_live = match ttl {
                    -1 => DEFAULT_TTL,
                    1..=255 => ttl as u8,
                    _ => return Err(Errno::EINVAL),
                };
            }
            (option::IPPROTO_IP, option::IP_TOS) => state.type_of_service = integer()? as u8,
            (option::IPPROTO_IP, option::IP_RECVERR | IP_MULTICAST_TTL | IP_MULTICAST_LOOP)
            | (
                option::SOL_SOCKET,
                option::SO_BROADCAST | option::SO_DONTROUTE | SO_DEBUG | option::SO_TIMESTAMP,
            )
            | (option::SOL_SOCKET, option::SO_PRIORITY | SO_MARK) => {
                let value = integer()?;
                state.kept.insert((level, name), value);
            }
            (option::SOL_SOCKET, option::SO_RCVTIMEO) => state.receive_timeout_ns = timeval_ns(value)?,
            (option::SOL_SOCKET, option::SO_SNDTIMEO) => state.send_timeout_ns = timeval_ns(value)?,
            (option::SOL_SOCKET, option::SO_RCVBUF) => {
                let asked = integer()?.max(0) as usize;
                state.receive_buffer =
                    asked.min(settings::RMEM_MAX.get() as usize).saturating_mul(2).max(2304);
            }
            (option::SOL_SOCKET, option::SO_SNDBUF) => {
                let asked = integer()?.max(0) as usize;
                state.send_buffer = asked.min(settings::WMEM_MAX.get() as usize).saturating_mul(2).max(4608);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// `getsockopt`.
    pub fn option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let integer = |value: i32| value.to_ne_bytes().to_vec();
        let state = self.state.lock();
        Ok(match (level, name) {
            (SOL_RAW, ICMP_FILTER) if self.protocol != IPPROTO_ICMP => return Err(Errno::EOPNOTSUPP),
            (SOL_RAW, ICMP_FILTER) => state.icmp_filter.to_ne_bytes().to_vec(),
            (option::IPPROTO_IP, IP_HDRINCL) => integer(i32::from(state.header_included)),
            (option::IPPROTO_IP, option::IP_TTL) => integer(i32::from(state.time_to_live)),
            (option::IPPROTO_IP, option::IP_TOS) => integer(i32::from(state.type_of_service)),
            (option::SOL_SOCKET, option::SO_TYPE) => integer(super::abi::kind::RAW as i32),
            (option::SOL_SOCKET, option::SO_PROTOCOL) => integer(i32::from(self.protocol)),
            (option::SOL_SOCKET, option::SO_DOMAIN) => integer(i32::from(super::address::family::INET)),
            (option::SOL_SOCKET, option::SO_ERROR | option::SO_ACCEPTCONN) => integer(0),
            (option::SOL_SOCKET, option::SO_RCVTIMEO) => timeval_bytes(state.receive_timeout_ns),
            (option::SOL_SOCKET, option::SO_SNDTIMEO) => timeval_bytes(state.send_timeout_ns),
            (option::SOL_SOCKET, option::SO_RCVBUF) => integer(state.receive_buffer as i32),
            (option::SOL_SOCKET, option::SO_SNDBUF) => integer(state.send_buffer as i32),
            (option::IPPROTO_IP, option::IP_RECVERR | IP_MULTICAST_TTL | IP_MULTICAST_LOOP)
            | (
                option::SOL_SOCKET,
                option::SO_BROADCAST | option::SO_DONTROUTE | SO_DEBUG | option::SO_TIMESTAMP,
            )
            | (option::SOL_SOCKET, option::SO_PRIORITY | SO_MARK) => {
                let unset = match name {
                    IP_MULTICAST_TTL | IP_MULTICAST_LOOP if level == option::IPPROTO_IP => 1,
                    _ => 0,
                };
                integer(state.kept.get(&(level, name)).copied().unwrap_or(unset))
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}

impl SpecialFile for RawSocket {
    fn name(&self) -> alloc::string::String {
        alloc::string::String::from("socket:[raw]")
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
        let mut ready = events::POLLOUT;
        if self.available_bytes() > 0 || self.state.lock().read_shut {
            ready |= events::POLLIN;
        }
        ready
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

impl Drop for RawSocket {
    fn drop(&mut self) {
        let handles = core::mem::take(self.handles.get_mut());
        let mut stack = self.network.stack.lock();
        for handle in handles.into_values() {
            stack.remove(handle);
        }
    }
}
