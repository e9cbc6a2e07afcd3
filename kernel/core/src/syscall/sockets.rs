//! The socket calls: socket, bind, listen, accept, accept4, connect,
//! getsockname, getpeername, sendto, recvfrom, sendmsg, recvmsg, sendmmsg,
//! recvmmsg, shutdown, setsockopt, getsockopt, socketpair.
//!
//! The sockets themselves live in [`crate::net::socket`] (network) and
//! [`crate::net::local`] (`AF_UNIX`); here are the
//! argument checks and the copying of addresses, buffers and message
//! headers between the application and the kernel. Waits a signal
//! interrupts restart after the handler when it asks for that, as Linux
//! does for sockets without a timeout.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddrV4;

use super::descriptors::install_pair;
use super::files::{caller, file};
use super::paths::install;
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::AT_FDCWD;
use crate::net::abi::{kind, message, option};
use crate::net::address::{self, Address, SOCKADDR_IN_SIZE, family};
use crate::net::local::{Key, LocalKind, LocalName, LocalSocket, Rights};
use crate::net::netlink::{self, NETLINK_ROUTE, NetlinkSocket};
use crate::net::socket::{Kind, Socket};
use crate::process::PROCESS_ID;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, FileType, FsError, OpenFile, SpecialFile};

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
const CHUNK: usize = 256 * 1024;
/// Bytes of `struct msghdr` and `struct mmsghdr`.
const MSGHDR_SIZE: usize = 56;
const MMSGHDR_SIZE: u64 = 64;
/// The most messages one `sendmmsg` or `recvmmsg` handles (`UIO_MAXIOV`).
const MMSG_MAX: u64 = 1024;
/// The largest option value read or written.
const OPTION_MAX: u64 = 256;

/// An error from a socket: a wait a signal interrupted restarts.
fn failure(error: Errno) -> Failure {
    if error == Errno::EINTR { Failure::Restart } else { Failure::Error(error) }
}

/// The socket behind an open file: a network or a local one.
#[derive(Clone, Copy)]
enum Endpoint<'a> {
    Inet(&'a Socket),
    Local(&'a LocalSocket),
    Netlink(&'a NetlinkSocket),
}

impl Endpoint<'_> {
    /// Whether each send is one message, which goes whole.
    fn keeps_messages(self) -> bool {
        match self {
            Endpoint::Inet(socket) => socket.kind() == Kind::Datagram,
            Endpoint::Local(socket) => socket.kind() != LocalKind::Stream,
            Endpoint::Netlink(_) => true,
        }
    }
}

/// The socket behind an open file, if it is one.
fn endpoint(file: &OpenFile) -> Option<Endpoint<'_>> {
    let object = file.special()?.as_any();
    if let Some(socket) = object.downcast_ref::<Socket>() {
        return Some(Endpoint::Inet(socket));
    }
    if let Some(socket) = object.downcast_ref::<LocalSocket>() {
        return Some(Endpoint::Local(socket));
    }
    object.downcast_ref::<NetlinkSocket>().map(Endpoint::Netlink)
}

/// The open file of `fd`, which must be a socket (`ENOTSOCK`).
fn socket_file(context: Context<'_>, fd: u64) -> core::result::Result<Arc<OpenFile>, Errno> {
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

/// An IPv4 address an application passed, for calls that need one.
fn read_ipv4(context: Context<'_>, pointer: u64, length: u64) -> core::result::Result<SocketAddrV4, Errno> {
    if length < SOCKADDR_IN_SIZE as u64 {
        return Err(Errno::EINVAL);
    }
    match read_address(context, pointer, length)? {
        Address::Ipv4(address) => Ok(address),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// The local socket bound to `name`: `ECONNREFUSED` when none is, the
/// path's own error when it leads nowhere.
fn find_local(context: Context<'_>, name: &LocalName) -> core::result::Result<Arc<LocalSocket>, Errno> {
    let names = context.process.network.local_names();
    let key = match name {
        LocalName::Unnamed => return Err(Errno::EINVAL),
        LocalName::Abstract(bytes) => Key::Abstract(bytes.clone()),
        LocalName::Path(bytes) => {
            let path = core::str::from_utf8(bytes).map_err(|_| Errno::ENOENT)?;
            let location = super::paths::locate(context, AT_FDCWD as u64, path, 0, true)?;
            if location.node.file_type() != FileType::Socket {
                return Err(Errno::ECONNREFUSED);
            }
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
    let object: Arc<dyn SpecialFile> = match create_kind(domain, socket_type, protocol)? {
        NewSocket::Inet(kind) => Socket::new(context.process.network.clone(), kind),
        NewSocket::Local(kind) => LocalSocket::new(context.process.network.local_names(), kind),
        NewSocket::Netlink(socket_type) => NetlinkSocket::new(context.process.network.clone(), socket_type),
    };
    let status = flags::O_RDWR | (socket_type & SOCK_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(object), status);
    install(context, file, socket_type & SOCK_CLOEXEC != 0)
}

/// What `socket` or `socketpair` makes.
enum NewSocket {
    Inet(Kind),
    Local(LocalKind),
    Netlink(u32),
}

/// The socket kind `socket` asks for, checked as Linux does.
fn create_kind(domain: u64, socket_type: u64, protocol: u64) -> core::result::Result<NewSocket, Errno> {
    if socket_type & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let protocol = protocol as i32;
    let base_type = (socket_type & 0xf) as u32;
    if domain > u64::from(u16::MAX) {
        return Err(Errno::EAFNOSUPPORT);
    }
    match domain as u16 {
        family::INET => {}
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
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    match base_type {
        kind::STREAM if protocol == 0 || protocol == option::IPPROTO_TCP => Ok(NewSocket::Inet(Kind::Stream)),
        kind::DATAGRAM if protocol == 0 || protocol == option::IPPROTO_UDP => {
            Ok(NewSocket::Inet(Kind::Datagram))
        }
        kind::STREAM | kind::DATAGRAM => Err(Errno::EPROTONOSUPPORT),
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
    let kind = match create_kind(domain, socket_type, protocol)? {
        NewSocket::Local(kind) => kind,
        NewSocket::Inet(_) | NewSocket::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
    };
    let (first, second) = LocalSocket::pair(context.process.network.local_names(), kind);
    let status = flags::O_RDWR | (socket_type & SOCK_NONBLOCK) as u32;
    let first = OpenFile::new(FileObject::Special(first as Arc<_>), status);
    let second = OpenFile::new(FileObject::Special(second as Arc<_>), status);
    install_pair(context, first, second, socket_type & SOCK_CLOEXEC != 0, address)
}

pub(super) fn bind(context: Context<'_>, fd: u64, pointer: u64, length: u64) -> Result {
    let file = socket_file(context, fd)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            let address = read_ipv4(context, pointer, length)?;
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
    let permissions = 0o777 & !context.process.state.lock().umask;
    let vfs = &context.process.vfs;
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
        Endpoint::Local(socket) => socket.listen(backlog)?,
        Endpoint::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
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
            (connection, address::encode(peer).to_vec())
        }
        Endpoint::Local(socket) => {
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
    }
    Ok(0)
}

pub(super) fn getsockname(context: Context<'_>, fd: u64, pointer: u64, length_pointer: u64) -> Result {
    let file = socket_file(context, fd)?;
    let bytes = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => address::encode(socket.local_address(&caller(context))).to_vec(),
        Endpoint::Local(socket) => socket.local_name().encode(),
        Endpoint::Netlink(socket) => netlink::encode_address(socket.port()),
    };
    write_address(context, pointer, length_pointer, &bytes)?;
    Ok(0)
}

pub(super) fn getpeername(context: Context<'_>, fd: u64, pointer: u64, length_pointer: u64) -> Result {
    let file = socket_file(context, fd)?;
    let bytes = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => address::encode(socket.peer_address(&caller(context))?).to_vec(),
        Endpoint::Local(socket) => socket.peer_name()?.encode(),
        Endpoint::Netlink(_) => netlink::encode_address(0),
    };
    write_address(context, pointer, length_pointer, &bytes)?;
    Ok(0)
}

pub(super) fn shutdown(context: Context<'_>, fd: u64, how: u64) -> Result {
    let file = socket_file(context, fd)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.shutdown(&caller(context), how as u32)?,
        Endpoint::Local(socket) => socket.shutdown(how as u32)?,
        Endpoint::Netlink(_) => return Err(Errno::EOPNOTSUPP.into()),
    }
    Ok(0)
}

/// Sends `bytes`, to `destination` if given; a broken connection raises
/// `SIGPIPE` unless `MSG_NOSIGNAL`.
fn send_bytes(
    context: Context<'_>,
    file: &OpenFile,
    bytes: &[u8],
    send_flags: u32,
    destination: Option<&Address>,
    rights: Rights,
) -> core::result::Result<usize, Failure> {
    let caller = caller(context);
    let is_nonblocking = file.is_nonblocking();
    let result = match endpoint(file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => {
            let destination = match destination {
                None | Some(Address::Unspecified) => None,
                Some(Address::Ipv4(address)) => Some(*address),
                Some(_) => return Err(Errno::EAFNOSUPPORT.into()),
            };
            socket.send(&caller, bytes, send_flags, destination, is_nonblocking)
        }
        Endpoint::Local(socket) => {
            let target = match destination {
                None => None,
                // Connections take no address (Linux: `EISCONN` once
                // connected, `EOPNOTSUPP` before).
                Some(_) if socket.kind() != LocalKind::Datagram => {
                    let error = if socket.is_connected() { Errno::EISCONN } else { Errno::EOPNOTSUPP };
                    return Err(error.into());
                }
                Some(Address::Local(name)) => Some(find_local(context, name)?),
                Some(Address::Unspecified) => None,
                Some(_) => return Err(Errno::EINVAL.into()),
            };
            socket.send(&caller, bytes, send_flags, target, rights, is_nonblocking)
        }
        Endpoint::Netlink(socket) => {
            let port = match destination {
                None | Some(Address::Unspecified) => 0,
                Some(Address::Netlink { port, .. }) => *port,
                Some(_) => return Err(Errno::EINVAL.into()),
            };
            socket.send(bytes, port)
        }
    };
    match result {
        Ok(sent) => Ok(sent),
        Err(Errno::EPIPE) if send_flags & message::NOSIGNAL == 0 => Err(super::signals::broken_pipe(context)),
        Err(error) => Err(failure(error)),
    }
}

/// The destination of `sendto` or `sendmsg`, if one was given.
fn destination(
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
    let user = User::new(context.machine);
    let length = usize::try_from(length).map_err(|_| Errno::EINVAL)?;
    let file = socket_file(context, fd)?;
    let send_flags = send_flags as u32;
    // A message goes whole; a stream goes a chunk at a time.
    if endpoint(&file).is_some_and(Endpoint::keeps_messages) || length <= CHUNK {
        let bytes = user.read_bytes(buffer, length)?;
        return Ok(send_bytes(context, &file, &bytes, send_flags, destination.as_ref(), Vec::new())? as u64);
    }
    let mut sent = 0;
    while sent < length {
        let step = (length - sent).min(CHUNK);
        let bytes = user.read_bytes(buffer + sent as u64, step)?;
        match send_bytes(context, &file, &bytes, send_flags, destination.as_ref(), Vec::new()) {
            Ok(count) => {
                sent += count;
                if count < step {
                    break;
                }
            }
            Err(_) if sent > 0 => break,
            Err(failure) => return Err(failure),
        }
    }
    Ok(sent as u64)
}

/// What one receive got, whichever the socket.
struct Got {
    length: usize,
    full_length: usize,
    /// The sender's address bytes (empty: an unnamed local sender), for
    /// datagrams.
    source: Option<Vec<u8>>,
    /// Files passed with the data (local sockets).
    rights: Rights,
}

fn receive_bytes(
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
                source: received.source.map(|source| address::encode(source).to_vec()),
                rights: Vec::new(),
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
            })
        }
        Endpoint::Netlink(socket) => {
            let received = socket.receive(&caller, buffer, receive_flags, is_nonblocking).map_err(failure)?;
            Ok(Got {
                length: received.length,
                full_length: received.full_length,
                source: Some(netlink::encode_address(0)),
                rights: Vec::new(),
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
    let length = usize::try_from(length).map_err(|_| Errno::EINVAL)?.min(CHUNK);
    let mut bytes = vec![0u8; length];
    let received = receive_bytes(context, &file, &mut bytes, receive_flags as u32)?;
    User::new(context.machine).write_bytes(buffer, &bytes[..received.length])?;
    if let Some(source) = received.source {
        write_address(context, pointer, length_pointer, &source)?;
    }
    if receive_flags as u32 & message::TRUNC != 0 {
        // The message's real length, even when it did not fit.
        return Ok(received.full_length as u64);
    }
    Ok(received.length as u64)
}

/// A `struct msghdr`.
struct MessageHeader {
    name: u64,
    name_length: u64,
    vectors: Vec<(u64, u64)>,
    control: u64,
    control_length: u64,
}

fn read_message_header(context: Context<'_>, address: u64) -> core::result::Result<MessageHeader, Errno> {
    let user = User::new(context.machine);
    let bytes = user.read_bytes(address, MSGHDR_SIZE)?;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let name = word(0);
    let name_length = u64::from(u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4])));
    let vectors = user.read_iovecs(word(16), word(24))?;
    Ok(MessageHeader { name, name_length, vectors, control: word(32), control_length: word(40) })
}

fn send_message(
    context: Context<'_>,
    fd: u64,
    header_address: u64,
    send_flags: u32,
) -> core::result::Result<usize, Failure> {
    let header = read_message_header(context, header_address)?;
    let file = socket_file(context, fd)?;
    let destination = destination(context, header.name, header.name_length)?;
    let user = User::new(context.machine);
    let rights = control_rights(context, &file, &header)?;
    let mut bytes = Vec::new();
    for (base, length) in &header.vectors {
        let length = usize::try_from(*length).map_err(|_| Errno::EINVAL)?;
        if bytes.len() + length > 64 * 1024 * 1024 {
            return Err(Errno::EMSGSIZE.into());
        }
        bytes.extend_from_slice(&user.read_bytes(*base, length)?);
    }
    send_bytes(context, &file, &bytes, send_flags, destination.as_ref(), rights)
}

/// `struct cmsghdr`: length (8 bytes), level, type; then the data.
const CMSGHDR_SIZE: usize = 16;
/// `SCM_RIGHTS` and `SCM_CREDENTIALS` at `SOL_SOCKET`.
const SCM_RIGHTS: u32 = 1;
const SCM_CREDENTIALS: u32 = 2;
/// The most descriptors one message passes (`SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;
/// `MSG_CTRUNC` and `MSG_CMSG_CLOEXEC`.
const MSG_CTRUNC: u32 = 0x8;
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// The open files a sender's `SCM_RIGHTS` control messages pass (local
/// sockets only). Credentials are accepted and dropped: every peer is the
/// application itself.
fn control_rights(
    context: Context<'_>,
    file: &OpenFile,
    header: &MessageHeader,
) -> core::result::Result<Rights, Errno> {
    let mut rights = Vec::new();
    if header.control == 0 || header.control_length < CMSGHDR_SIZE as u64 {
        return Ok(rights);
    }
    let user = User::new(context.machine);
    let length = header.control_length.min(64 * 1024) as usize;
    let bytes = user.read_bytes(header.control, length)?;
    let is_local = matches!(endpoint(file), Some(Endpoint::Local(_)));
    let mut offset = 0;
    while offset + CMSGHDR_SIZE <= bytes.len() {
        let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let entry_length = u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap_or([0; 8]));
        let (level, entry_type) = (field(offset + 8), field(offset + 12));
        if entry_length < CMSGHDR_SIZE as u64 || entry_length > (bytes.len() - offset) as u64 {
            return Err(Errno::EINVAL);
        }
        let data = &bytes[offset + CMSGHDR_SIZE..offset + entry_length as usize];
        match (level, entry_type) {
            (level, SCM_RIGHTS) if level == option::SOL_SOCKET as u32 && is_local => {
                if rights.len() + data.len() / 4 > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
                for number in data.chunks_exact(4) {
                    let number = i32::from_le_bytes(number.try_into().unwrap_or([0xff; 4]));
                    rights.push(super::files::file(context, number as u32 as u64).map_err(|_| Errno::EBADF)?);
                }
            }
            (level, SCM_CREDENTIALS) if level == option::SOL_SOCKET as u32 && is_local => {}
            (level, _) if level == option::SOL_SOCKET as u32 => return Err(Errno::EINVAL),
            // Other levels' messages (IP options) are accepted and unused.
            _ => {}
        }
        offset += (entry_length as usize).next_multiple_of(8);
    }
    Ok(rights)
}

/// Installs received files and describes them in the receiver's control
/// buffer as one `SCM_RIGHTS` message; returns the control bytes used and
/// whether some files did not fit (`MSG_CTRUNC`).
fn deliver_rights(
    context: Context<'_>,
    header: &MessageHeader,
    rights: Rights,
    receive_flags: u32,
) -> core::result::Result<(u64, bool), Failure> {
    if rights.is_empty() {
        return Ok((0, false));
    }
    let room = (header.control_length as usize).saturating_sub(CMSGHDR_SIZE) / 4;
    if header.control == 0 || room == 0 {
        return Ok((0, true));
    }
    let is_truncated = rights.len() > room;
    let close_on_exec = receive_flags & MSG_CMSG_CLOEXEC != 0;
    let mut numbers = Vec::new();
    for file in rights.into_iter().take(room) {
        match install(context, file, close_on_exec) {
            Ok(number) => numbers.extend_from_slice(&(number as i32).to_le_bytes()),
            Err(_) => break,
        }
    }
    let data_length = CMSGHDR_SIZE + numbers.len();
    let mut message = (data_length as u64).to_le_bytes().to_vec();
    message.extend_from_slice(&(option::SOL_SOCKET as u32).to_le_bytes());
    message.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
    message.extend_from_slice(&numbers);
    User::new(context.machine).write_bytes(header.control, &message)?;
    let used = data_length.next_multiple_of(8).min(header.control_length as usize);
    Ok((used as u64, is_truncated))
}

pub(super) fn sendmsg(context: Context<'_>, fd: u64, header: u64, send_flags: u64) -> Result {
    Ok(send_message(context, fd, header, send_flags as u32)? as u64)
}

fn receive_message(
    context: Context<'_>,
    fd: u64,
    header_address: u64,
    receive_flags: u32,
) -> core::result::Result<usize, Failure> {
    let header = read_message_header(context, header_address)?;
    let file = socket_file(context, fd)?;
    let total: u64 = header.vectors.iter().map(|(_, length)| *length).sum();
    let mut bytes = vec![0u8; usize::try_from(total).unwrap_or(CHUNK).min(CHUNK)];
    let received = receive_bytes(context, &file, &mut bytes, receive_flags)?;
    let user = User::new(context.machine);
    let mut offset = 0;
    for (base, length) in &header.vectors {
        if offset >= received.length {
            break;
        }
        let step = (*length as usize).min(received.length - offset);
        user.write_bytes(*base, &bytes[offset..offset + step])?;
        offset += step;
    }
    // The source address, no control messages, and the flags.
    if header.name != 0 {
        match received.source {
            Some(source) => {
                let written = (header.name_length as usize).min(source.len());
                user.write_bytes(header.name, &source[..written])?;
                user.write_u32(header_address + 8, source.len() as u32)?;
            }
            None => user.write_u32(header_address + 8, 0)?,
        }
    }
    let (control_used, is_control_truncated) =
        deliver_rights(context, &header, received.rights, receive_flags)?;
    user.write_u64(header_address + 40, control_used)?;
    let mut message_flags = if received.full_length > received.length { message::TRUNC } else { 0 };
    if is_control_truncated {
        message_flags |= MSG_CTRUNC;
    }
    user.write_u32(header_address + 48, message_flags)?;
    Ok(received.length)
}

pub(super) fn recvmsg(context: Context<'_>, fd: u64, header: u64, receive_flags: u64) -> Result {
    Ok(receive_message(context, fd, header, receive_flags as u32)? as u64)
}

pub(super) fn sendmmsg(context: Context<'_>, fd: u64, vector: u64, count: u64, send_flags: u64) -> Result {
    socket_file(context, fd)?;
    let count = count.min(MMSG_MAX);
    let user = User::new(context.machine);
    let mut sent = 0;
    while sent < count {
        let entry = vector + sent * MMSGHDR_SIZE;
        match send_message(context, fd, entry, send_flags as u32) {
            Ok(length) => user.write_u32(entry + MSGHDR_SIZE as u64, length as u32)?,
            Err(_) if sent > 0 => break,
            Err(failure) => return Err(failure),
        }
        sent += 1;
    }
    Ok(sent)
}

pub(super) fn recvmmsg(context: Context<'_>, fd: u64, vector: u64, count: u64, receive_flags: u64) -> Result {
    socket_file(context, fd)?;
    let count = count.min(MMSG_MAX);
    let user = User::new(context.machine);
    let mut received = 0;
    let mut receive_flags = receive_flags as u32;
    while received < count {
        let entry = vector + received * MMSGHDR_SIZE;
        match receive_message(context, fd, entry, receive_flags) {
            Ok(length) => user.write_u32(entry + MSGHDR_SIZE as u64, length as u32)?,
            Err(_) if received > 0 => break,
            Err(failure) => return Err(failure),
        }
        received += 1;
        // `MSG_WAITFORONE`: only the first receive waits.
        if receive_flags & 0x10000 != 0 {
            receive_flags |= message::DONTWAIT;
        }
    }
    Ok(received)
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
        Endpoint::Local(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
        Endpoint::Netlink(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
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
        Endpoint::Local(socket) => socket.option(level as i32, name as i32, PROCESS_ID as u32)?,
        Endpoint::Netlink(socket) => socket.option(level as i32, name as i32)?,
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
    })
}

/// Interface requests (`SIOCGIF*`, `uapi/linux/sockios.h`).
mod interface_request {
    pub const SIOCGIFNAME: u64 = 0x8910;
    pub const SIOCGIFCONF: u64 = 0x8912;
    pub const SIOCGIFFLAGS: u64 = 0x8913;
    pub const SIOCGIFADDR: u64 = 0x8915;
    pub const SIOCGIFBRDADDR: u64 = 0x8919;
    pub const SIOCGIFNETMASK: u64 = 0x891b;
    pub const SIOCGIFMTU: u64 = 0x8921;
    pub const SIOCGIFHWADDR: u64 = 0x8927;
    pub const SIOCGIFINDEX: u64 = 0x8933;
    pub const SIOCGIFTXQLEN: u64 = 0x8942;
}

/// Bytes of `struct ifreq` (a 16-byte name, then a 24-byte union) and of
/// `struct ifconf`.
const IFREQ_SIZE: usize = 40;
const IFCONF_SIZE: usize = 16;

/// The interface requests a socket answers: what `if_nametoindex`,
/// `ifconfig` and friends ask. `None` for other requests or files.
pub(super) fn interface_ioctl(
    context: Context<'_>,
    file: &OpenFile,
    command: u64,
    argument: u64,
) -> Option<Result> {
    use interface_request::*;
    endpoint(file)?;
    let known = [
        SIOCGIFNAME,
        SIOCGIFCONF,
        SIOCGIFFLAGS,
        SIOCGIFADDR,
        SIOCGIFBRDADDR,
        SIOCGIFNETMASK,
        SIOCGIFMTU,
        SIOCGIFHWADDR,
        SIOCGIFINDEX,
        SIOCGIFTXQLEN,
    ];
    if !known.contains(&command) {
        return None;
    }
    Some(answer_interface_request(context, command, argument))
}

fn answer_interface_request(context: Context<'_>, command: u64, argument: u64) -> Result {
    use interface_request::*;
    let user = User::new(context.machine);
    let interfaces = context.process.network.interfaces();
    if command == SIOCGIFCONF {
        let header = user.read_bytes(argument, IFCONF_SIZE)?;
        let room = i32::from_ne_bytes(header[..4].try_into().map_err(|_| Errno::EFAULT)?);
        let buffer = u64::from_ne_bytes(header[8..16].try_into().map_err(|_| Errno::EFAULT)?);
        let addressed: Vec<_> = interfaces.iter().filter(|interface| interface.address.is_some()).collect();
        if buffer == 0 {
            user.write_u32(argument, (addressed.len() * IFREQ_SIZE) as u32)?;
            return Ok(0);
        }
        let fitting = (room.max(0) as usize / IFREQ_SIZE).min(addressed.len());
        for (slot, interface) in addressed.iter().take(fitting).enumerate() {
            let mut request = [0u8; IFREQ_SIZE];
            request[..interface.name.len()].copy_from_slice(interface.name.as_bytes());
            if let Some((address, _)) = interface.address {
                let encoded = address::encode(SocketAddrV4::new(address, 0));
                request[16..32].copy_from_slice(&encoded);
            }
            user.write_bytes(buffer + (slot * IFREQ_SIZE) as u64, &request)?;
        }
        user.write_u32(argument, (fitting * IFREQ_SIZE) as u32)?;
        return Ok(0);
    }
    let mut request: [u8; IFREQ_SIZE] =
        user.read_bytes(argument, IFREQ_SIZE)?.try_into().map_err(|_| Errno::EFAULT)?;
    let interface = if command == SIOCGIFNAME {
        let index = i32::from_ne_bytes(request[16..20].try_into().map_err(|_| Errno::EFAULT)?);
        interfaces.iter().find(|interface| interface.index as i32 == index).ok_or(Errno::ENODEV)?
    } else {
        let end = request[..16].iter().position(|&byte| byte == 0).unwrap_or(16);
        let name = &request[..end];
        interfaces.iter().find(|interface| interface.name.as_bytes() == name).ok_or(Errno::ENODEV)?
    };
    let mut union = [0u8; 24];
    let ipv4 = |address: core::net::Ipv4Addr| address::encode(SocketAddrV4::new(address, 0));
    let (address, prefix_length) = interface.address.unwrap_or((core::net::Ipv4Addr::UNSPECIFIED, 0));
    let mask = if prefix_length == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_length)) };
    match command {
        SIOCGIFNAME => {
            request[..16].fill(0);
            request[..interface.name.len()].copy_from_slice(interface.name.as_bytes());
            union.copy_from_slice(&request[16..]);
        }
        SIOCGIFFLAGS => union[..2].copy_from_slice(&(interface.flags as u16).to_ne_bytes()),
        SIOCGIFINDEX => union[..4].copy_from_slice(&(interface.index as i32).to_ne_bytes()),
        SIOCGIFMTU => union[..4].copy_from_slice(&(interface.mtu as i32).to_ne_bytes()),
        SIOCGIFTXQLEN => union[..4].copy_from_slice(&1000i32.to_ne_bytes()),
        SIOCGIFHWADDR => {
            let (kind, mac) = match interface.mac_address {
                Some(mac) => (1u16, mac),
                None => (772, [0; 6]),
            };
            union[..2].copy_from_slice(&kind.to_ne_bytes());
            union[2..8].copy_from_slice(&mac);
        }
        _ if interface.address.is_none() => return Err(Errno::EADDRNOTAVAIL.into()),
        SIOCGIFADDR => union[..16].copy_from_slice(&ipv4(address)),
        SIOCGIFNETMASK => union[..16].copy_from_slice(&ipv4(core::net::Ipv4Addr::from(mask))),
        _ => union[..16].copy_from_slice(&ipv4(core::net::Ipv4Addr::from(u32::from(address) | !mask))),
    }
    request[16..].copy_from_slice(&union);
    user.write_bytes(argument, &request)?;
    Ok(0)
}
