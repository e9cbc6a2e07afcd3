//! The socket calls: socket, bind, listen, accept, accept4, connect,
//! getsockname, getpeername, sendto, recvfrom, shutdown, setsockopt,
//! getsockopt, socketpair (the message calls are in `messages`, the
//! interface requests in `interfaces`).
//!
//! The sockets themselves live in [`crate::net::socket`] (TCP, UDP),
//! [`crate::net::local`] (`AF_UNIX`), [`crate::net::netlink`] and
//! [`crate::net::vsock`] (`AF_VSOCK`); here are
//! the argument checks and the copying of addresses and buffers between the
//! application and the kernel. Waits a signal
//! interrupts restart after the handler when it asks for that, as Linux
//! does for sockets without a timeout.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::descriptors::install_pair;
use super::files::{caller, file};
use super::paths::install;
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::AT_FDCWD;
use crate::net::abi::{ControlMessage, kind, message, option};
use crate::net::address::{self, Address, SOCKADDR_IN_SIZE, SOCKADDR_IN6_MIN, family};
use crate::net::local::{Ancillary, Key, LocalKind, LocalName, LocalSocket, PeerCredentials};
use crate::net::netlink::{self, NETLINK_ROUTE, NetlinkSocket};
use crate::net::socket::{Kind, Socket};
use crate::net::vsock::socket::VsockSocket;
use crate::net::vsock::{self, VsockAddress};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, FileType, FsError, OpenFile, SpecialFile, permission};

/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC`, which `socket` and `accept4` take
/// with the type.
const SOCK_NONBLOCK: u64 = flags::O_NONBLOCK as u64;
const SOCK_CLOEXEC: u64 = flags::O_CLOEXEC as u64;
/// The longest address an application may pass (`sizeof(struct
/// sockaddr_storage)`).
const ADDRESS_MAX: u64 = 128;
/// The largest backlog (`net.core.somaxconn`).
const BACKLOG_MAX: usize = 4096;
/// Bytes copied through the kernel per step of a large send or receive.
pub(super) const CHUNK: usize = 256 * 1024;
/// The largest option value read or written.
const OPTION_MAX: u64 = 256;
/// Ports below this one need `CAP_NET_BIND_SERVICE`
/// (`net.ipv4.ip_unprivileged_port_start`).
const UNPRIVILEGED_PORT_START: u16 = 1024;
/// `CAP_NET_BIND_SERVICE`, `CAP_NET_ADMIN` (`SO_PRIORITY` above 6) and
/// `CAP_NET_RAW`.
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;

/// Whether the calling process has capability `number`.
fn has_capability(context: Context<'_>, number: u32) -> bool {
    context.process.state.lock().credentials.has_capability(number)
}

/// An error from a socket: a wait a signal interrupted restarts.
pub(super) fn failure(error: Errno) -> Failure {
    if error == Errno::EINTR { Failure::Restart } else { Failure::Error(error) }
}

/// The socket behind an open file: a network or a local one.
#[derive(Clone, Copy)]
pub(super) enum Endpoint<'a> {
    Inet(&'a Socket),
    Local(&'a LocalSocket),
    Netlink(&'a NetlinkSocket),
    Vsock(&'a VsockSocket),
}

impl Endpoint<'_> {
    /// The largest message one send may carry, for sockets whose sends
    /// each go whole as one message; `None` for streams. Linux refuses a
    /// larger one with `EMSGSIZE` before copying anything, so the length
    /// an application gives never sizes a kernel buffer beyond this.
    pub(super) fn largest_message(self) -> Option<usize> {
        match self {
            Endpoint::Inet(socket) => socket.largest_message(),
            Endpoint::Local(socket) => socket.largest_message(),
            Endpoint::Netlink(_) => Some(NetlinkSocket::LARGEST_MESSAGE),
            Endpoint::Vsock(_) => None,
        }
    }

    /// The largest message one receive may find; `None` for streams.
    pub(super) fn largest_incoming(self) -> Option<usize> {
        match self {
            Endpoint::Local(socket) => socket.largest_incoming(),
            other => other.largest_message(),
        }
    }
}

/// The socket behind an open file, if it is one.
pub(super) fn endpoint(file: &OpenFile) -> Option<Endpoint<'_>> {
    let object = file.special()?.as_any();
    if let Some(socket) = object.downcast_ref::<Socket>() {
        return Some(Endpoint::Inet(socket));
    }
    if let Some(socket) = object.downcast_ref::<LocalSocket>() {
        return Some(Endpoint::Local(socket));
    }
    if let Some(socket) = object.downcast_ref::<VsockSocket>() {
        return Some(Endpoint::Vsock(socket));
    }
    object.downcast_ref::<NetlinkSocket>().map(Endpoint::Netlink)
}

/// The open file of `fd`, which must be a socket (`ENOTSOCK`).
pub(super) fn socket_file(context: Context<'_>, fd: u64) -> core::result::Result<Arc<OpenFile>, Errno> {
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF);
    }
    if endpoint(&file).is_none() {
        return Err(Errno::ENOTSOCK);
    }
    Ok(file)
}

/// Reads the address an application passed.
fn read_address(context: Context<'_>, pointer: u64, length: u64) -> core::result::Result<Address, Errno> {
    if length > ADDRESS_MAX || (length as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = User::new(context.machine).read_bytes(pointer, length as usize)?;
    address::parse(&bytes)
}

/// The address an application passed to a vsock socket.
fn read_vsock(context: Context<'_>, pointer: u64, length: u64) -> core::result::Result<VsockAddress, Errno> {
    if length > ADDRESS_MAX || (length as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    VsockAddress::parse(&User::new(context.machine).read_bytes(pointer, length as usize)?)
}

/// The address an application passed to an IP socket, in the stack's
/// terms (an `AF_INET6` socket's IPv4-mapped addresses become IPv4 ones).
fn read_ip(
    context: Context<'_>,
    socket: &Socket,
    pointer: u64,
    length: u64,
) -> core::result::Result<SocketAddr, Errno> {
    let least = if socket.is_ipv6() { SOCKADDR_IN6_MIN } else { SOCKADDR_IN_SIZE };
    if length < least as u64 {
        return Err(Errno::EINVAL);
    }
    socket.stack_address(&read_address(context, pointer, length)?)
}

/// An IP socket's address as the application sees it.
fn ip_bytes(socket: &Socket, address: SocketAddr) -> Vec<u8> {
    address::encode_any(&socket.application_address(address))
}

/// The local socket bound to `name`: `ECONNREFUSED` when none is, the
/// path's own error when it leads nowhere, `EACCES` when the caller may
/// not write to its node.
fn find_local(context: Context<'_>, name: &LocalName) -> core::result::Result<Arc<LocalSocket>, Errno> {
    let names = context.process.network().local_names().clone();
    let key = match name {
        LocalName::Unnamed => return Err(Errno::EINVAL),
        LocalName::Abstract(bytes) => Key::Abstract(bytes.clone()),
        LocalName::Path(bytes) => {
            let path = core::str::from_utf8(bytes).map_err(|_| Errno::ENOENT)?;
            let location = super::paths::locate(context, AT_FDCWD as u64, path, 0, true)?;
            if location.node.file_type() != FileType::Socket {
                return Err(Errno::ECONNREFUSED);
            }
            // Connecting or sending to a socket node is writing to it.
            let caller = caller(context);
            permission::check_caller(&caller, &location.metadata(&caller)?, permission::WRITE)?;
            Key::Node(location.node)
        }
    };
    names.find(&key).ok_or(Errno::ECONNREFUSED)
}

/// Writes an address's bytes to an application's `(address, length)`
/// pair: as much as fits, and the full length.
fn write_address(
    context: Context<'_>,
    pointer: u64,
    length_pointer: u64,
    bytes: &[u8],
) -> core::result::Result<(), Errno> {
    if pointer == 0 {
        return Ok(());
    }
    let user = User::new(context.machine);
    let room = i32::from_ne_bytes(user.read_bytes(length_pointer, 4)?.try_into().map_err(|_| Errno::EFAULT)?);
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let written = (room as usize).min(bytes.len());
    user.write_bytes(pointer, &bytes[..written])?;
    user.write_u32(length_pointer, bytes.len() as u32)
}

pub(super) fn socket(context: Context<'_>, domain: u64, socket_type: u64, protocol: u64) -> Result {
    let may_use_raw = has_capability(context, CAP_NET_RAW);
    let object: Arc<dyn SpecialFile> = match create_kind(domain, socket_type, protocol, may_use_raw)? {
        NewSocket::Inet(kind, is_ipv6) => Socket::new_in(context.process.network().clone(), kind, is_ipv6),
        NewSocket::Local(kind) => LocalSocket::new(context.process.network().local_names(), kind),
        NewSocket::Netlink(socket_type) => NetlinkSocket::new(context.process.network().clone(), socket_type),
        NewSocket::Vsock => VsockSocket::new(vsock::installed().ok_or(Errno::EAFNOSUPPORT)?),
    };
    let status = flags::O_RDWR | (socket_type & SOCK_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(object), status);
    install(context, file, socket_type & SOCK_CLOEXEC != 0)
}

/// What `socket` or `socketpair` makes.
enum NewSocket {
    /// An IP socket: its kind, and whether it is `AF_INET6`.
    Inet(Kind, bool),
    Local(LocalKind),
    Netlink(u32),
    /// An `AF_VSOCK` stream socket.
    Vsock,
}

/// The socket kind `socket` asks for, checked as Linux does;
/// `may_use_raw`: whether the caller has `CAP_NET_RAW`.
fn create_kind(
    domain: u64,
    socket_type: u64,
    protocol: u64,
    may_use_raw: bool,
) -> core::result::Result<NewSocket, Errno> {
    if socket_type & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let protocol = protocol as i32;
    let base_type = (socket_type & 0xf) as u32;
    if domain > u64::from(u16::MAX) {
        return Err(Errno::EAFNOSUPPORT);
    }
    let is_ipv6 = domain as u16 == family::INET6;
    match domain as u16 {
        family::INET | family::INET6 => {}
        family::UNIX => {
            // `PF_UNIX` as the protocol means the same as 0.
            if protocol != 0 && protocol != i32::from(family::UNIX) {
                return Err(Errno::EPROTONOSUPPORT);
            }
            // Raw local sockets are datagram sockets, as on Linux.
            let base_type = if base_type == kind::RAW { kind::DATAGRAM } else { base_type };
            return match LocalKind::from_type(base_type) {
                Some(kind) => Ok(NewSocket::Local(kind)),
                None if base_type == 0 || base_type > 10 => Err(Errno::EINVAL),
                None => Err(Errno::ESOCKTNOSUPPORT),
            };
        }
        family::NETLINK => {
            if protocol != NETLINK_ROUTE {
                return Err(Errno::EPROTONOSUPPORT);
            }
            if !NetlinkSocket::accepts_type(base_type) {
                return Err(Errno::ESOCKTNOSUPPORT);
            }
            return Ok(NewSocket::Netlink(base_type));
        }
        vsock::FAMILY => {
            return match base_type {
                kind::STREAM if protocol == 0 => Ok(NewSocket::Vsock),
                kind::STREAM => Err(Errno::EPROTONOSUPPORT),
                _ => Err(Errno::ESOCKTNOSUPPORT),
            };
        }
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    match base_type {
        kind::STREAM if protocol == 0 || protocol == option::IPPROTO_TCP => {
            Ok(NewSocket::Inet(Kind::Stream, is_ipv6))
        }
        kind::DATAGRAM if protocol == 0 || protocol == option::IPPROTO_UDP => {
            Ok(NewSocket::Inet(Kind::Datagram, is_ipv6))
        }
        kind::STREAM | kind::DATAGRAM => Err(Errno::EPROTONOSUPPORT),
        // A raw socket names its protocol, and needs CAP_NET_RAW; there
        // are none here even then.
        kind::RAW if protocol == 0 => Err(Errno::EPROTONOSUPPORT),
        kind::RAW if !may_use_raw => Err(Errno::EPERM),
        kind::RAW | kind::SEQPACKET => Err(Errno::ESOCKTNOSUPPORT),
        _ => Err(Errno::EINVAL),
    }
}

/// `socketpair`: two local sockets connected to each other.
pub(super) fn socketpair(
    context: Context<'_>,
    domain: u64,
    socket_type: u64,
    protocol: u64,
    address: u64,
) -> Result {
    let kind = match create_kind(domain, socket_type, protocol, has_capability(context, CAP_NET_RAW))? {
        NewSocket::Local(kind) => kind,
        NewSocket::Inet(..) | NewSocket::Netlink(_) | NewSocket::Vsock => {
            return Err(Errno::EOPNOTSUPP.into());
        }
    };
    let credentials = PeerCredentials::of(&caller(context), true);
    let (first, second) = LocalSocket::pair_for(context.process.network().local_names(), kind, credentials);
    let status = flags::O_RDWR | (socket_type & SOCK_NONBLOCK) as u32;
    let first = OpenFile::new(FileObject::Special(first as Arc<_>), status);
    let second = OpenFile::new(FileObject::Special(second as Arc<_>), status);
    install_pair(context, first, second, socket_type & SOCK_CLOEXEC != 0, address)
}

pub(super) fn bind(context: Context<'_>, fd: u64, pointer: u64, length: u64) -> Result {
    let file = socket_file(context, fd)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            let address = read_ip(context, socket, pointer, length)?;
            let port = address.port();
            if port != 0 && port < UNPRIVILEGED_PORT_START && !has_capability(context, CAP_NET_BIND_SERVICE) {
                return Err(Errno::EACCES.into());
            }
            socket.bind(&caller(context), address)?;
        }
        Endpoint::Local(socket) => {
            let Address::Local(name) = read_address(context, pointer, length)? else {
                return Err(Errno::EINVAL.into());
            };
            bind_local(context, socket, name)?;
        }
        Endpoint::Netlink(socket) => {
            let Address::Netlink { port, groups } = read_address(context, pointer, length)? else {
                return Err(Errno::EINVAL.into());
            };
            socket.bind(port, groups)?;
        }
        Endpoint::Vsock(socket) => socket.bind(read_vsock(context, pointer, length)?)?,
    }
    Ok(0)
}

/// Binds a local socket; a path name gets its socket node first.
fn bind_local(
    context: Context<'_>,
    socket: &LocalSocket,
    name: LocalName,
) -> core::result::Result<(), Errno> {
    if socket.local_name() != LocalName::Unnamed {
        return Err(Errno::EINVAL);
    }
    let LocalName::Path(bytes) = &name else {
        return socket.bind(name, None);
    };
    let path = core::str::from_utf8(bytes).map_err(|_| Errno::EINVAL)?;
    let start = super::paths::start(context, AT_FDCWD as u64, path)?;
    let permissions = 0o777 & !context.fs().umask();
    let vfs = &context.process.vfs();
    let node = match vfs.make_socket(&caller(context), &start, path, permissions) {
        Ok(node) => node,
        Err(FsError::Exists) => return Err(Errno::EADDRINUSE),
        Err(error) => return Err(error.into()),
    };
    socket.bind(name, Some(Key::Node(node)))
}

pub(super) fn listen(context: Context<'_>, fd: u64, backlog: u64) -> Result {
    let file = socket_file(context, fd)?;
    let backlog = usize::try_from(backlog as i32).unwrap_or(BACKLOG_MAX).min(BACKLOG_MAX);
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.listen(&caller(context), backlog)?,
        Endpoint::Local(socket) => socket.listen(backlog, PeerCredentials::of(&caller(context), true))?,
        Endpoint::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
        Endpoint::Vsock(socket) => socket.listen(backlog)?,
    }
    Ok(0)
}

pub(super) fn accept4(
    context: Context<'_>,
    fd: u64,
    pointer: u64,
    length_pointer: u64,
    accept_flags: u64,
) -> Result {
    if accept_flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let file = socket_file(context, fd)?;
    let caller = caller(context);
    let (connection, peer): (Arc<dyn SpecialFile>, Vec<u8>) = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            let (connection, peer) = socket.accept(&caller, file.is_nonblocking()).map_err(failure)?;
            (connection, ip_bytes(socket, peer))
        }
        Endpoint::Local(socket) => {
            let (connection, peer) = socket.accept(&caller, file.is_nonblocking()).map_err(failure)?;
            (connection, peer.encode())
        }
        Endpoint::Vsock(socket) => {
            let (connection, peer) = socket.accept(&caller, file.is_nonblocking()).map_err(failure)?;
            (connection, peer.encode())
        }
        Endpoint::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
    };
    write_address(context, pointer, length_pointer, &peer)?;
    let status = flags::O_RDWR | (accept_flags & SOCK_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(connection), status);
    install(context, file, accept_flags & SOCK_CLOEXEC != 0)
}

pub(super) fn connect(context: Context<'_>, fd: u64, pointer: u64, length: u64) -> Result {
    let file = socket_file(context, fd)?;
    if let Some(Endpoint::Vsock(socket)) = endpoint(&file) {
        let peer = read_vsock(context, pointer, length)?;
        socket.connect(&caller(context), peer, file.is_nonblocking()).map_err(failure)?;
        return Ok(0);
    }
    let address = read_address(context, pointer, length)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            socket.connect(&caller(context), address, file.is_nonblocking()).map_err(failure)?;
        }
        Endpoint::Local(socket) => match address {
            Address::Unspecified => socket.disconnect()?,
            Address::Local(name) => {
                let target = find_local(context, &name)?;
                socket.connect(&caller(context), target, file.is_nonblocking()).map_err(failure)?;
            }
            _ => return Err(Errno::EINVAL.into()),
        },
        Endpoint::Netlink(_) => match address {
            Address::Unspecified | Address::Netlink { port: 0, .. } => {}
            Address::Netlink { .. } => return Err(Errno::ECONNREFUSED.into()),
            _ => return Err(Errno::EINVAL.into()),
        },
        Endpoint::Vsock(_) => return Err(Errno::EINVAL.into()),
    }
    Ok(0)
}

pub(super) fn getsockname(context: Context<'_>, fd: u64, pointer: u64, length_pointer: u64) -> Result {
    let file = socket_file(context, fd)?;
    let bytes = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => ip_bytes(socket, socket.local_address(&caller(context))),
        Endpoint::Local(socket) => socket.local_name().encode(),
        Endpoint::Netlink(socket) => netlink::encode_address(socket.port()),
        Endpoint::Vsock(socket) => socket.local_address().encode(),
    };
    write_address(context, pointer, length_pointer, &bytes)?;
    Ok(0)
}

pub(super) fn getpeername(context: Context<'_>, fd: u64, pointer: u64, length_pointer: u64) -> Result {
    let file = socket_file(context, fd)?;
    let bytes = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => ip_bytes(socket, socket.peer_address(&caller(context))?),
        Endpoint::Local(socket) => socket.peer_name()?.encode(),
        Endpoint::Netlink(_) => netlink::encode_address(0),
        Endpoint::Vsock(socket) => socket.peer_address()?.encode(),
    };
    write_address(context, pointer, length_pointer, &bytes)?;
    Ok(0)
}

pub(super) fn shutdown(context: Context<'_>, fd: u64, how: u64) -> Result {
    let file = socket_file(context, fd)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.shutdown(&caller(context), how as u32)?,
        Endpoint::Local(socket) => socket.shutdown(how as u32)?,
        Endpoint::Vsock(socket) => socket.shutdown(how as u32)?,
        Endpoint::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
    }
    Ok(0)
}

/// Sends `bytes`, to `destination` if given; a broken connection raises
/// `SIGPIPE` unless `MSG_NOSIGNAL`.
pub(super) fn send_bytes(
    context: Context<'_>,
    file: &OpenFile,
    bytes: &[u8],
    send_flags: u32,
    destination: Option<&Address>,
    ancillary: Ancillary,
) -> core::result::Result<usize, Failure> {
    let caller = caller(context);
    let is_nonblocking = file.is_nonblocking();
    let result = match endpoint(file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            let destination = match destination {
                None | Some(Address::Unspecified) => None,
                Some(address) => Some(socket.stack_address(address)?),
            };
            socket.send(&caller, bytes, send_flags, destination, is_nonblocking)
        }
        Endpoint::Local(socket) => {
            let target = match destination {
                None => None,
                // A packet socket must be connected and then ignores an
                // address; a stream socket refuses one.
                Some(_) if socket.kind() != LocalKind::Datagram => {
                    match (socket.kind(), socket.is_connected()) {
                        (LocalKind::SeqPacket, true) => None,
                        (LocalKind::SeqPacket, false) => return Err(Errno::ENOTCONN.into()),
                        (_, true) => return Err(Errno::EISCONN.into()),
                        (_, false) => return Err(Errno::EOPNOTSUPP.into()),
                    }
                }
                Some(Address::Local(name)) => Some(find_local(context, name)?),
                Some(Address::Unspecified) => None,
                Some(_) => return Err(Errno::EINVAL.into()),
            };
            socket.send_with(&caller, bytes, send_flags, target, ancillary, is_nonblocking)
        }
        Endpoint::Netlink(socket) => {
            let port = match destination {
                None | Some(Address::Unspecified) => 0,
                Some(Address::Netlink { port, .. }) => *port,
                Some(_) => return Err(Errno::EINVAL.into()),
            };
            socket.send(&caller, bytes, port)
        }
        Endpoint::Vsock(socket) => match destination {
            // A connection takes no address, as on Linux.
            None => socket.send(&caller, bytes, send_flags, is_nonblocking),
            Some(_) => {
                let error = if socket.peer_address().is_ok() { Errno::EISCONN } else { Errno::EOPNOTSUPP };
                return Err(error.into());
            }
        },
    };
    match result {
        Ok(sent) => Ok(sent),
        Err(Errno::EPIPE) if send_flags & message::NOSIGNAL == 0 => Err(super::signals::broken_pipe(context)),
        Err(error) => Err(failure(error)),
    }
}

/// The destination of `sendto` or `sendmsg`, if one was given.
pub(super) fn destination(
    context: Context<'_>,
    pointer: u64,
    length: u64,
) -> core::result::Result<Option<Address>, Errno> {
    if pointer == 0 {
        return Ok(None);
    }
    read_address(context, pointer, length).map(Some)
}

pub(super) fn sendto(
    context: Context<'_>,
    fd: u64,
    buffer: u64,
    length: u64,
    send_flags: u64,
    pointer: u64,
    address_length: u64,
) -> Result {
    let destination = destination(context, pointer, address_length)?;
    let file = socket_file(context, fd)?;
    let pieces = [(buffer, length)];
    Ok(send_pieces(context, &file, &pieces, send_flags as u32, destination.as_ref(), Ancillary::default())?
        as u64)
}

/// Sends the bytes of `pieces` (address and length in application memory,
/// as `iovec`s give them): as one message that goes whole, no larger than
/// the socket allows, or on a stream a chunk at a time, until the stream
/// takes less than a chunk. What `ancillary` holds goes with the first
/// chunk.
pub(super) fn send_pieces(
    context: Context<'_>,
    file: &OpenFile,
    pieces: &[(u64, u64)],
    send_flags: u32,
    destination: Option<&Address>,
    ancillary: Ancillary,
) -> core::result::Result<usize, Failure> {
    let user = User::new(context.machine);
    let total = pieces.iter().try_fold(0u64, |total, (_, length)| total.checked_add(*length));
    let total = total.and_then(|total| usize::try_from(total).ok()).ok_or(Errno::EINVAL)?;
    if let Some(largest) = endpoint(file).and_then(Endpoint::largest_message) {
        if total > largest {
            return Err(Errno::EMSGSIZE.into());
        }
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(total).map_err(|_| Errno::ENOBUFS)?;
        for &(base, length) in pieces {
            let start = bytes.len();
            bytes.resize(start + length as usize, 0);
            user.read_into(base, &mut bytes[start..])?;
        }
        return send_bytes(context, file, &bytes, send_flags, destination, ancillary);
    }
    if total == 0 {
        // The socket still judges an empty send (not connected, shut down).
        return send_bytes(context, file, &[], send_flags, destination, ancillary);
    }
    let mut ancillary = Some(ancillary);
    let mut sent = 0;
    for &(base, length) in pieces {
        let mut offset = 0;
        while offset < length {
            let step = (length - offset).min(CHUNK as u64) as usize;
            let bytes =
                base.checked_add(offset).ok_or(Errno::EFAULT).and_then(|at| user.read_bytes(at, step));
            let result = bytes.map_err(Failure::from).and_then(|bytes| {
                send_bytes(
                    context,
                    file,
                    &bytes,
                    send_flags,
                    destination,
                    ancillary.take().unwrap_or_default(),
                )
            });
            match result {
                Ok(count) => {
                    sent += count;
                    if count < step {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(failure) => return Err(failure),
            }
            offset += step as u64;
        }
    }
    Ok(sent)
}

/// What one receive got, whichever the socket.
pub(super) struct Got {
    pub(super) length: usize,
    pub(super) full_length: usize,
    /// The sender's address bytes (empty: an unnamed local sender), for
    /// datagrams.
    pub(super) source: Option<Vec<u8>>,
    /// Files passed with the data (local sockets).
    pub(super) rights: crate::net::local::Rights,
    /// Who sent the data (local sockets that pass credentials).
    pub(super) credentials: Option<PeerCredentials>,
    /// Other control messages the socket delivers with the data.
    pub(super) control: Vec<ControlMessage>,
    /// Whether the socket keeps message boundaries (`MSG_TRUNC` then
    /// returns a message's real length).
    pub(super) is_message: bool,
}

/// A kernel buffer for a receive of `length` bytes: no larger than the
/// largest message the socket can hold, or a chunk of a stream.
pub(super) fn receive_buffer(file: &OpenFile, length: u64) -> core::result::Result<Vec<u8>, Errno> {
    let limit = match endpoint(file).and_then(Endpoint::largest_incoming) {
        Some(largest) => largest.max(CHUNK),
        None => CHUNK,
    };
    let size = usize::try_from(length).unwrap_or(usize::MAX).min(limit);
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(size).map_err(|_| Errno::ENOBUFS)?;
    bytes.resize(size, 0);
    Ok(bytes)
}

pub(super) fn receive_bytes(
    context: Context<'_>,
    file: &OpenFile,
    buffer: &mut [u8],
    receive_flags: u32,
) -> core::result::Result<Got, Failure> {
    let caller = caller(context);
    let is_nonblocking = file.is_nonblocking();
    match endpoint(file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            let received = socket.receive(&caller, buffer, receive_flags, is_nonblocking).map_err(failure)?;
            Ok(Got {
                length: received.length,
                full_length: received.full_length,
                source: received.source.map(|source| ip_bytes(socket, source)),
                rights: Vec::new(),
                credentials: None,
                control: received.control,
                is_message: socket.largest_message().is_some(),
            })
        }
        Endpoint::Local(socket) => {
            let received = socket.receive(&caller, buffer, receive_flags, is_nonblocking).map_err(failure)?;
            Ok(Got {
                length: received.length,
                full_length: received.full_length,
                source: received.source.map(|source| match source {
                    // Linux reports an unnamed sender with no address at all.
                    LocalName::Unnamed => Vec::new(),
                    name => name.encode(),
                }),
                rights: received.rights,
                credentials: received.credentials,
                control: Vec::new(),
                is_message: socket.kind() != LocalKind::Stream,
            })
        }
        Endpoint::Netlink(socket) => {
            let received = socket.receive(&caller, buffer, receive_flags, is_nonblocking).map_err(failure)?;
            Ok(Got {
                length: received.length,
                full_length: received.full_length,
                source: Some(netlink::encode_address(0)),
                rights: Vec::new(),
                credentials: None,
                control: Vec::new(),
                is_message: true,
            })
        }
        Endpoint::Vsock(socket) => {
            let length = socket.receive(&caller, buffer, receive_flags, is_nonblocking).map_err(failure)?;
            Ok(Got {
                length,
                full_length: length,
                source: None,
                rights: Vec::new(),
                credentials: None,
                control: Vec::new(),
                is_message: false,
            })
        }
    }
}

pub(super) fn recvfrom(
    context: Context<'_>,
    fd: u64,
    buffer: u64,
    length: u64,
    receive_flags: u64,
    pointer: u64,
    length_pointer: u64,
) -> Result {
    let file = socket_file(context, fd)?;
    let mut bytes = receive_buffer(&file, length)?;
    let received = receive_bytes(context, &file, &mut bytes, receive_flags as u32)?;
    User::new(context.machine).write_bytes(buffer, &bytes[..received.length])?;
    // A connection's receive has no source: its length reads 0.
    write_address(context, pointer, length_pointer, &received.source.unwrap_or_default())?;
    if receive_flags as u32 & message::TRUNC != 0 && received.is_message {
        // The message's real length, even when it did not fit.
        return Ok(received.full_length as u64);
    }
    Ok(received.length as u64)
}

pub(super) fn setsockopt(
    context: Context<'_>,
    fd: u64,
    level: u64,
    name: u64,
    value: u64,
    length: u64,
) -> Result {
    let file = socket_file(context, fd)?;
    if (length as i32) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = User::new(context.machine).read_bytes(value, length.min(OPTION_MAX) as usize)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.set_option(&caller(context), level as i32, name as i32, &bytes)?,
        Endpoint::Local(socket) => {
            socket.set_option(level as i32, name as i32, &bytes, has_capability(context, CAP_NET_ADMIN))?
        }
        Endpoint::Netlink(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
        Endpoint::Vsock(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
    }
    Ok(0)
}

pub(super) fn getsockopt(
    context: Context<'_>,
    fd: u64,
    level: u64,
    name: u64,
    value: u64,
    length_pointer: u64,
) -> Result {
    let file = socket_file(context, fd)?;
    let user = User::new(context.machine);
    let room = i32::from_ne_bytes(user.read_bytes(length_pointer, 4)?.try_into().map_err(|_| Errno::EFAULT)?);
    if room < 0 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.option(&caller(context), level as i32, name as i32)?,
        Endpoint::Local(socket) => socket.option(level as i32, name as i32)?,
        Endpoint::Netlink(socket) => socket.option(level as i32, name as i32)?,
        Endpoint::Vsock(socket) => socket.option(level as i32, name as i32)?,
    };
    let written = (room as usize).min(bytes.len());
    user.write_bytes(value, &bytes[..written])?;
    user.write_u32(length_pointer, written as u32)?;
    Ok(0)
}

/// Bytes waiting on a socket, for `FIONREAD`.
pub(super) fn available_bytes(context: Context<'_>, file: &OpenFile) -> Option<u64> {
    Some(match endpoint(file)? {
        Endpoint::Inet(socket) => socket.available_bytes(&caller(context)) as u64,
        Endpoint::Local(socket) => socket.available_bytes() as u64,
        Endpoint::Netlink(socket) => socket.available_bytes() as u64,
        Endpoint::Vsock(socket) => socket.available_bytes() as u64,
    })
}
