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
//!
//! `create` makes sockets (socket, socketpair), `transfer` moves data
//! (sendto, recvfrom and the sends and receives beneath the message
//! calls), `options` holds setsockopt and getsockopt; this file keeps the
//! connection calls and the helpers they share.

mod create;
mod options;
mod transfer;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::files::{caller, file};
use super::paths::install;
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::AT_FDCWD;
use crate::net::address::{self, Address, SOCKADDR_IN_SIZE, SOCKADDR_IN6_MIN};
use crate::net::local::{Key, LocalName, LocalSocket, PeerCredentials};
use crate::net::netlink::{self, NetlinkSocket};
use crate::net::raw::RawSocket;
use crate::net::socket::Socket;
use crate::net::vsock::VsockAddress;
use crate::net::vsock::socket::VsockSocket;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, FileType, FsError, OpenFile, SpecialFile, permission};

pub(super) use create::{socket, socketpair};
pub(super) use options::{available_bytes, getsockopt, setsockopt};
pub(super) use transfer::{destination, receive_buffer, receive_bytes, recvfrom, send_pieces, sendto};

/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC`, which `socket` and `accept4` take
/// with the type.
const SOCK_NONBLOCK: u64 = flags::O_NONBLOCK as u64;
const SOCK_CLOEXEC: u64 = flags::O_CLOEXEC as u64;
/// The longest address an application may pass (`sizeof(struct
/// sockaddr_storage)`).
const ADDRESS_MAX: u64 = 128;
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
    Raw(&'a RawSocket),
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
            Endpoint::Raw(socket) => Some(socket.largest_message()),
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
    if let Some(socket) = object.downcast_ref::<RawSocket>() {
        return Some(Endpoint::Raw(socket));
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

/// The IPv4 address an application passed to a raw socket (its port means
/// nothing).
fn raw_address(context: Context<'_>, pointer: u64, length: u64) -> core::result::Result<Ipv4Addr, Errno> {
    if length < SOCKADDR_IN_SIZE as u64 {
        return Err(Errno::EINVAL);
    }
    match read_address(context, pointer, length)? {
        Address::Ipv4(address) => Ok(*address.ip()),
        _ => Err(Errno::EAFNOSUPPORT),
    }
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
        Endpoint::Raw(socket) => socket.bind(&caller(context), raw_address(context, pointer, length)?)?,
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
    // Bounded by `net.core.somaxconn`, which a negative backlog means.
    let most = crate::net::settings::SOMAXCONN.get() as usize;
    let backlog = usize::try_from(backlog as i32).unwrap_or(most).min(most);
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.listen(&caller(context), backlog)?,
        Endpoint::Local(socket) => socket.listen(backlog, PeerCredentials::of(&caller(context), true))?,
        Endpoint::Netlink(_) | Endpoint::Raw(_) => return Err(Errno::EOPNOTSUPP.into()),
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
        Endpoint::Netlink(_) | Endpoint::Raw(_) => return Err(Errno::EOPNOTSUPP.into()),
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
        Endpoint::Raw(socket) => match address {
            Address::Unspecified => socket.connect(None),
            Address::Ipv4(address) => socket.connect(Some(*address.ip())),
            _ => return Err(Errno::EAFNOSUPPORT.into()),
        },
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
        Endpoint::Raw(socket) => address::encode(SocketAddrV4::new(socket.local_address(), 0)).to_vec(),
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
        Endpoint::Raw(socket) => address::encode(SocketAddrV4::new(socket.peer_address()?, 0)).to_vec(),
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
        Endpoint::Raw(socket) => socket.shutdown(how as u32)?,
        Endpoint::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
    }
    Ok(0)
}
