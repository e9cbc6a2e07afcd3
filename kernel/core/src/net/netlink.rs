//! Route netlink sockets (`AF_NETLINK`, `NETLINK_ROUTE`), read-only: the
//! requests C libraries send to list interfaces, addresses and routes
//! (`getifaddrs`, `if_nameindex`, `getaddrinfo`'s `AI_ADDRCONFIG`), as
//! `rtnetlink(7)` describes them.
//!
//! A request sent to the kernel is answered at once: the answer is queued
//! on the socket as one datagram (all the messages of a dump and its
//! `NLMSG_DONE`), which the next receive takes. Requests to change the
//! network are refused with `EOPNOTSUPP`; there are no multicast groups.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU32, Ordering};

use spin::Mutex;

use super::abi::{kind, message, option};
use super::address::family;
use super::address::{broadcast_of, network_of};
use super::{Interface, Network, interface_flags};
use crate::errno::Errno;
use crate::vfs::node::Caller;
use crate::vfs::waiters::events;
use crate::vfs::{FsError, SpecialFile, WaiterList};

/// `NETLINK_ROUTE`, the one protocol served.
pub const NETLINK_ROUTE: i32 = 0;
/// Bytes of `struct sockaddr_nl`.
pub const SOCKADDR_NL_SIZE: usize = 12;
/// The `SOL_NETLINK` option level.
const SOL_NETLINK: i32 = 270;

/// Bytes of `struct nlmsghdr`.
const HEADER_SIZE: usize = 16;

/// Message types (`uapi/linux/netlink.h`, `uapi/linux/rtnetlink.h`).
mod message_type {
    pub const NOOP: u16 = 1;
    pub const ERROR: u16 = 2;
    pub const DONE: u16 = 3;
    pub const NEW_LINK: u16 = 16;
    pub const GET_LINK: u16 = 18;
    pub const NEW_ADDRESS: u16 = 20;
    pub const GET_ADDRESS: u16 = 22;
    pub const NEW_ROUTE: u16 = 24;
    pub const GET_ROUTE: u16 = 26;
}

/// Header flags.
mod header_flags {
    pub const REQUEST: u16 = 0x1;
    pub const MULTI: u16 = 0x2;
    pub const ACK: u16 = 0x4;
    pub const DUMP: u16 = 0x300;
}

/// Attribute types.
mod attribute {
    pub const IFLA_ADDRESS: u16 = 1;
    pub const IFLA_BROADCAST: u16 = 2;
    pub const IFLA_IFNAME: u16 = 3;
    pub const IFLA_MTU: u16 = 4;
    pub const IFLA_TXQLEN: u16 = 13;
    pub const IFLA_OPERSTATE: u16 = 16;
    pub const IFA_ADDRESS: u16 = 1;
    pub const IFA_LOCAL: u16 = 2;
    pub const IFA_LABEL: u16 = 3;
    pub const IFA_BROADCAST: u16 = 4;
    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_GATEWAY: u16 = 5;
    pub const RTA_PREFSRC: u16 = 7;
    pub const RTA_TABLE: u16 = 15;
}

/// `ARPHRD_*` hardware types.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
/// `IF_OPER_*` states.
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;
/// `IFA_F_PERMANENT`.
const IFA_F_PERMANENT: u8 = 0x80;
/// Route scopes, table, protocols and type.
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_HOST: u8 = 254;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_KERNEL: u8 = 2;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// Port numbers for sockets that do not choose one: the first is the
/// process's, as on Linux.
static NEXT_PORT: AtomicU32 = AtomicU32::new(crate::process::PROCESS_ID as u32);

/// Appends an attribute (`struct rtattr` and its data, padded to 4 bytes).
fn push_attribute(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let length = 4 + data.len();
    out.extend_from_slice(&(length as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Appends a message with `body` (padded to 4 bytes).
fn push_message(out: &mut Vec<u8>, kind: u16, flags: u16, sequence: u32, port: u32, body: &[u8]) {
    let length = HEADER_SIZE + body.len();
    out.extend_from_slice(&(length as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&sequence.to_ne_bytes());
    out.extend_from_slice(&port.to_ne_bytes());
    out.extend_from_slice(body);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Whether a link request's body (`struct ifinfomsg` and attributes)
/// names `interface`: by its index, or with index 0 by its name
/// (`IFLA_IFNAME`), as `ip link show lo` asks.
fn is_named_link(body: &[u8], interface: &Interface) -> bool {
    const IFLA_IFNAME: u16 = 3;
    let index = body.get(4..8).map_or(0, |bytes| u32::from_ne_bytes(bytes.try_into().unwrap_or([0; 4])));
    if index != 0 {
        return index == interface.index;
    }
    let mut offset = 16;
    while let Some(header) = body.get(offset..offset + 4) {
        let length = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]);
        let Some(data) = body.get(offset + 4..offset + length.max(4)) else { return false };
        if length < 4 {
            return false;
        }
        if kind == IFLA_IFNAME {
            let end = data.iter().position(|&byte| byte == 0).unwrap_or(data.len());
            return &data[..end] == interface.name.as_bytes();
        }
        offset += length.next_multiple_of(4);
    }
    false
}

/// `RTM_NEWLINK`'s body for `interface`.
fn link_body(interface: &Interface) -> Vec<u8> {
    let is_loop = interface.flags & interface_flags::LOOPBACK != 0;
    let mut body = Vec::new();
    body.push(family::UNSPEC as u8);
    body.push(0);
    body.extend_from_slice(&(if is_loop { ARPHRD_LOOPBACK } else { ARPHRD_ETHER }).to_ne_bytes());
    body.extend_from_slice(&(interface.index as i32).to_ne_bytes());
    body.extend_from_slice(&interface.flags.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    let mut name = interface.name.as_bytes().to_vec();
    name.push(0);
    push_attribute(&mut body, attribute::IFLA_IFNAME, &name);
    push_attribute(&mut body, attribute::IFLA_MTU, &interface.mtu.to_ne_bytes());
    push_attribute(&mut body, attribute::IFLA_TXQLEN, &1000u32.to_ne_bytes());
    push_attribute(
        &mut body,
        attribute::IFLA_OPERSTATE,
        &[if is_loop { IF_OPER_UNKNOWN } else { IF_OPER_UP }],
    );
    let (address, broadcast) = match interface.mac_address {
        Some(mac) => (mac, [0xff; 6]),
        None => ([0; 6], [0; 6]),
    };
    push_attribute(&mut body, attribute::IFLA_ADDRESS, &address);
    push_attribute(&mut body, attribute::IFLA_BROADCAST, &broadcast);
    body
}

/// `RTM_NEWADDR`'s body for `interface`'s address.
fn address_body(interface: &Interface, address: Ipv4Addr, prefix_length: u8) -> Vec<u8> {
    let is_loop = interface.flags & interface_flags::LOOPBACK != 0;
    let mut body = Vec::new();
    body.push(family::INET as u8);
    body.push(prefix_length);
    body.push(IFA_F_PERMANENT);
    body.push(if is_loop { RT_SCOPE_HOST } else { RT_SCOPE_UNIVERSE });
    body.extend_from_slice(&interface.index.to_ne_bytes());
    push_attribute(&mut body, attribute::IFA_ADDRESS, &address.octets());
    push_attribute(&mut body, attribute::IFA_LOCAL, &address.octets());
    if !is_loop {
        push_attribute(&mut body, attribute::IFA_BROADCAST, &broadcast_of(address, prefix_length).octets());
    }
    let mut label = interface.name.as_bytes().to_vec();
    label.push(0);
    push_attribute(&mut body, attribute::IFA_LABEL, &label);
    body
}

/// `RTM_NEWADDR`'s body for one of `interface`'s IPv6 addresses: the
/// loop's has host scope, link-local ones link scope.
fn ipv6_address_body(interface: &Interface, address: core::net::Ipv6Addr, prefix_length: u8) -> Vec<u8> {
    let scope = if address.is_loopback() {
        RT_SCOPE_HOST
    } else if address.is_unicast_link_local() {
        RT_SCOPE_LINK
    } else {
        RT_SCOPE_UNIVERSE
    };
    let mut body = vec![family::INET6 as u8, prefix_length, IFA_F_PERMANENT, scope];
    body.extend_from_slice(&interface.index.to_ne_bytes());
    push_attribute(&mut body, attribute::IFA_ADDRESS, &address.octets());
    body
}

/// `RTM_NEWROUTE`'s body (`struct rtmsg` and attributes).
fn route_body(
    destination: Option<(Ipv4Addr, u8)>,
    gateway: Option<Ipv4Addr>,
    source: Option<Ipv4Addr>,
    index: u32,
    scope: u8,
    protocol: u8,
) -> Vec<u8> {
    // `struct rtmsg`: family, destination and source prefix lengths, TOS,
    // table, protocol, scope, type, flags.
    let mut body = vec![
        family::INET as u8,
        destination.map_or(0, |(_, length)| length),
        0,
        0,
        RT_TABLE_MAIN,
        protocol,
        scope,
        RTN_UNICAST,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes());
    push_attribute(&mut body, attribute::RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
    if let Some((network, _)) = destination {
        push_attribute(&mut body, attribute::RTA_DST, &network.octets());
    }
    if let Some(gateway) = gateway {
        push_attribute(&mut body, attribute::RTA_GATEWAY, &gateway.octets());
    }
    if let Some(source) = source {
        push_attribute(&mut body, attribute::RTA_PREFSRC, &source.octets());
    }
    push_attribute(&mut body, attribute::RTA_OIF, &index.to_ne_bytes());
    body
}

/// One request a socket sent.
#[derive(Clone, Copy)]
struct Request<'a> {
    kind: u16,
    flags: u16,
    sequence: u32,
    /// What follows the header.
    body: &'a [u8],
    /// The header itself, which error answers quote.
    header: &'a [u8],
}

/// A route netlink socket.
pub struct NetlinkSocket {
    network: Arc<Network>,
    socket_type: u32,
    /// The port (`nl_pid`); 0 until bound, explicitly or by the first send.
    port: AtomicU32,
    /// Answers not yet received.
    inbox: Mutex<VecDeque<Vec<u8>>>,
    waiters: WaiterList,
}

impl core::fmt::Debug for NetlinkSocket {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("NetlinkSocket").field("port", &self.port.load(Ordering::Relaxed)).finish()
    }
}

/// What a receive got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetlinkReceived {
    /// Bytes stored.
    pub length: usize,
    /// The datagram's length.
    pub full_length: usize,
}

impl NetlinkSocket {
    /// A new socket on `network`; `socket_type` is `SOCK_RAW` or
    /// `SOCK_DGRAM` (the same here).
    pub fn new(network: Arc<Network>, socket_type: u32) -> Arc<NetlinkSocket> {
        Arc::new(NetlinkSocket {
            network,
            socket_type,
            port: AtomicU32::new(0),
            inbox: Mutex::new(VecDeque::new()),
            waiters: WaiterList::new(),
        })
    }

    /// The socket's port, choosing one if it has none.
    pub fn port(&self) -> u32 {
        let current = self.port.load(Ordering::Acquire);
        if current != 0 {
            return current;
        }
        let chosen = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        match self.port.compare_exchange(0, chosen, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => chosen,
            Err(other) => other,
        }
    }

    /// `bind` to `port` (0: the kernel chooses); multicast groups are not
    /// offered.
    pub fn bind(&self, port: u32, groups: u32) -> Result<(), Errno> {
        if groups != 0 {
            return Err(Errno::EPERM);
        }
        if port == 0 {
            self.port();
            return Ok(());
        }
        match self.port.compare_exchange(0, port, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(current) if current == port => Ok(()),
            Err(_) => Err(Errno::EINVAL),
        }
    }

    /// The largest message one send may carry: Linux's default send buffer
    /// (212992 bytes, as `SO_SNDBUF` reports) less 32 bytes.
    pub const LARGEST_MESSAGE: usize = 212_992 - 32;

    /// Sends requests to `destination_port` (0: the kernel, the only
    /// destination there is) and queues the answers.
    /// Changes (`RTM_NEWLINK`) need `CAP_NET_ADMIN` of `caller`.
    pub fn send(&self, caller: &Caller<'_>, bytes: &[u8], destination_port: u32) -> Result<usize, Errno> {
        let is_privileged = caller
            .credentials()
            .is_none_or(|credentials| credentials.has_capability(crate::credentials::capability::NET_ADMIN));
        if destination_port != 0 {
            return Err(Errno::ECONNREFUSED);
        }
        let port = self.port();
        let mut answer = Vec::new();
        let mut offset = 0;
        while offset + HEADER_SIZE <= bytes.len() {
            let field32 = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
            let field16 = |at: usize| u16::from_ne_bytes(bytes[at..at + 2].try_into().unwrap_or([0; 2]));
            let length = field32(offset) as usize;
            if length < HEADER_SIZE || length > bytes.len() - offset {
                break;
            }
            let (kind, flags, sequence) = (field16(offset + 4), field16(offset + 6), field32(offset + 8));
            let body = &bytes[offset + HEADER_SIZE..offset + length];
            if flags & header_flags::REQUEST != 0 {
                let header = &bytes[offset..offset + HEADER_SIZE];
                let request = Request { kind, flags, sequence, body, header };
                self.answer(&mut answer, &request, port, is_privileged);
            }
            offset += length.next_multiple_of(4);
        }
        if !answer.is_empty() {
            self.inbox.lock().push_back(answer);
            self.waiters.notify();
        }
        Ok(bytes.len())
    }

    /// Appends the answer to one request.
    fn answer(&self, out: &mut Vec<u8>, request: &Request<'_>, port: u32, is_privileged: bool) {
        let Request { kind, flags, sequence, body, header: request_header } = *request;
        let is_dump = flags & header_flags::DUMP == header_flags::DUMP;
        let interfaces = self.network.interfaces();
        let multi = header_flags::MULTI;
        // An error (or, with 0, an acknowledgement): the errno, negated,
        // and the request's header.
        let error = |out: &mut Vec<u8>, errno: i32| {
            let mut payload = (-errno).to_ne_bytes().to_vec();
            payload.extend_from_slice(request_header);
            push_message(out, message_type::ERROR, 0, sequence, port, &payload);
        };
        let done = |out: &mut Vec<u8>| {
            push_message(out, message_type::DONE, multi, sequence, port, &0i32.to_ne_bytes())
        };
        let mut is_error = false;
        match kind {
            message_type::NOOP => {}
            message_type::GET_LINK if is_dump => {
                for interface in &interfaces {
                    push_message(out, message_type::NEW_LINK, multi, sequence, port, &link_body(interface));
                }
                done(out);
            }
            message_type::GET_LINK => {
                match interfaces.iter().find(|interface| is_named_link(body, interface)) {
                    Some(interface) => {
                        push_message(out, message_type::NEW_LINK, 0, sequence, port, &link_body(interface));
                    }
                    None => {
                        error(out, Errno::ENODEV.0);
                        is_error = true;
                    }
                }
            }
            message_type::GET_ADDRESS if is_dump => {
                let wanted = body.first().copied().unwrap_or(0);
                if wanted == family::UNSPEC as u8 || wanted == family::INET as u8 {
                    for interface in &interfaces {
                        if let Some((address, prefix_length)) = interface.address {
                            let body = address_body(interface, address, prefix_length);
                            push_message(out, message_type::NEW_ADDRESS, multi, sequence, port, &body);
                        }
                    }
                }
                if wanted == family::UNSPEC as u8 || wanted == family::INET6 as u8 {
                    for interface in &interfaces {
                        for (address, prefix_length) in &interface.ipv6_addresses {
                            let body = ipv6_address_body(interface, *address, *prefix_length);
                            push_message(out, message_type::NEW_ADDRESS, multi, sequence, port, &body);
                        }
                    }
                }
                done(out);
            }
            message_type::NEW_LINK if !is_privileged => {
                error(out, Errno::EPERM.0);
                is_error = true;
            }
            message_type::NEW_LINK => {
                // `ip link set IF up|down`: `struct ifinfomsg`'s index,
                // flags and change mask. The loop goes up or down; the card
                // stays up.
                let word = |at: usize| {
                    body.get(at..at + 4)
                        .map_or(0, |bytes| u32::from_ne_bytes(bytes.try_into().unwrap_or([0; 4])))
                };
                let (wanted, change) = (word(8), word(12));
                let change = if change == 0 { u32::MAX } else { change };
                match interfaces.iter().find(|interface| is_named_link(body, interface)) {
                    None => {
                        error(out, Errno::ENODEV.0);
                        is_error = true;
                    }
                    Some(_) if change & interface_flags::UP == 0 => {}
                    Some(interface) if interface.flags & interface_flags::LOOPBACK != 0 => {
                        self.network.set_loop_up(wanted & interface_flags::UP != 0);
                    }
                    Some(interface) if (wanted ^ interface.flags) & interface_flags::UP == 0 => {}
                    Some(_) => {
                        error(out, Errno::EOPNOTSUPP.0);
                        is_error = true;
                    }
                }
            }
            message_type::GET_ROUTE if is_dump => {
                let wanted = body.first().copied().unwrap_or(0);
                if wanted == family::UNSPEC as u8 || wanted == family::INET as u8 {
                    self.push_routes(out, &interfaces, sequence, port);
                }
                done(out);
            }
            _ => {
                error(out, Errno::EOPNOTSUPP.0);
                is_error = true;
            }
        }
        if flags & header_flags::ACK != 0 && !is_dump && !is_error {
            error(out, 0);
        }
    }

    /// The routes of the card's network and of the default gateway.
    fn push_routes(&self, out: &mut Vec<u8>, interfaces: &[Interface], sequence: u32, port: u32) {
        let Some(card) = interfaces.iter().find(|interface| interface.flags & interface_flags::LOOPBACK == 0)
        else {
            return;
        };
        let Some((address, prefix_length)) = card.address else {
            return;
        };
        let multi = header_flags::MULTI;
        if let Some(gateway) = self.network.configuration().gateway {
            let body = route_body(None, Some(gateway), None, card.index, RT_SCOPE_UNIVERSE, RTPROT_BOOT);
            push_message(out, message_type::NEW_ROUTE, multi, sequence, port, &body);
        }
        let network = (network_of(address, prefix_length), prefix_length);
        let body = route_body(Some(network), None, Some(address), card.index, RT_SCOPE_LINK, RTPROT_KERNEL);
        push_message(out, message_type::NEW_ROUTE, multi, sequence, port, &body);
    }

    /// Receives the next answer, waiting unless `is_nonblocking`.
    pub fn receive(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
    ) -> Result<NetlinkReceived, Errno> {
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        super::wait_for(caller, &self.waiters, is_nonblocking, None, || {
            let mut inbox = self.inbox.lock();
            let datagram = inbox.front()?;
            let length = datagram.len().min(buffer.len());
            buffer[..length].copy_from_slice(&datagram[..length]);
            let full_length = datagram.len();
            if flags & message::PEEK == 0 {
                inbox.pop_front();
            }
            Some(Ok(NetlinkReceived { length, full_length }))
        })
    }

    /// The next answer's length (`FIONREAD`).
    pub fn available_bytes(&self) -> usize {
        self.inbox.lock().front().map_or(0, Vec::len)
    }

    /// Sets an option: buffer sizes and the netlink-level flags are
    /// accepted and make no difference here.
    pub fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        if value.len() < 4 {
            return Err(Errno::EINVAL);
        }
        match (level, name) {
            (
                option::SOL_SOCKET,
                option::SO_RCVBUF | option::SO_SNDBUF | option::SO_RCVBUFFORCE | option::SO_SNDBUFFORCE,
            )
            | (SOL_NETLINK, _) => Ok(()),
            (option::SOL_SOCKET, option::SO_RCVTIMEO | option::SO_SNDTIMEO) => Ok(()),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    /// Reads an option.
    pub fn option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let integer = |value: i32| value.to_ne_bytes().to_vec();
        match (level, name) {
            (option::SOL_SOCKET, option::SO_TYPE) => Ok(integer(self.socket_type as i32)),
            (option::SOL_SOCKET, option::SO_DOMAIN) => Ok(integer(i32::from(family::NETLINK))),
            (option::SOL_SOCKET, option::SO_PROTOCOL) => Ok(integer(NETLINK_ROUTE)),
            (option::SOL_SOCKET, option::SO_ERROR | option::SO_ACCEPTCONN) => Ok(integer(0)),
            (option::SOL_SOCKET, option::SO_RCVBUF | option::SO_SNDBUF) => Ok(integer(212_992)),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    /// Whether `socket_type` may be a route netlink socket's.
    pub fn accepts_type(socket_type: u32) -> bool {
        socket_type == kind::RAW || socket_type == kind::DATAGRAM
    }
}

/// Encodes a `struct sockaddr_nl` for `port`.
pub fn encode_address(port: u32) -> Vec<u8> {
    let mut bytes = family::NETLINK.to_ne_bytes().to_vec();
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&port.to_ne_bytes());
    bytes.extend_from_slice(&0u32.to_ne_bytes());
    bytes
}

impl SpecialFile for NetlinkSocket {
    fn name(&self) -> String {
        String::from("socket:[netlink]")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.receive(caller, buffer, 0, is_nonblocking)
            .map(|received| received.length)
            .map_err(super::file_error)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], _is_nonblocking: bool) -> Result<usize, FsError> {
        self.send(caller, bytes, 0).map_err(FsError::Errno)
    }

    fn poll(&self) -> u16 {
        let readable = if self.inbox.lock().is_empty() { 0 } else { events::POLLIN };
        readable | events::POLLOUT
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    fn metadata(&self) -> crate::vfs::node::Metadata {
        crate::vfs::node::Metadata::new(
            crate::vfs::special::ANONYMOUS_INODE,
            crate::vfs::node::FileType::Socket,
            0o777,
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;
