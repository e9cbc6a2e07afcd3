//! The socket calls: socket, bind, listen, accept, accept4, connect,
//! getsockname, getpeername, sendto, recvfrom, sendmsg, recvmsg, sendmmsg,
//! recvmmsg, shutdown, setsockopt, getsockopt, socketpair.
//!
//! The sockets themselves live in [`crate::net::socket`]; here are the
//! argument checks and the copying of addresses, buffers and message
//! headers between the application and the kernel. Waits a signal
//! interrupts restart after the handler when it asks for that, as Linux
//! does for sockets without a timeout.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddrV4;

use super::files::{caller, file};
use super::paths::install;
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::net::address::{self, Address, SOCKADDR_IN_SIZE, family};
use crate::net::socket::{Kind, Socket, kind, message};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, OpenFile};

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

/// The socket behind an open file, if it is one.
fn as_socket(file: &OpenFile) -> Option<&Socket> {
    file.special()?.as_any().downcast_ref::<Socket>()
}

/// The open file of `fd`, which must be a socket (`ENOTSOCK`).
fn socket_file(context: Context<'_>, fd: u64) -> core::result::Result<Arc<OpenFile>, Errno> {
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF);
    }
    if as_socket(&file).is_none() {
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
        Address::Unspecified => Err(Errno::EAFNOSUPPORT),
    }
}

/// Writes `address` to an application's `(address, length)` pair: as much
/// as fits, and the full length.
fn write_address(
    context: Context<'_>,
    pointer: u64,
    length_pointer: u64,
    address: SocketAddrV4,
) -> core::result::Result<(), Errno> {
    if pointer == 0 {
        return Ok(());
    }
    let user = User::new(context.machine);
    let room = i32::from_ne_bytes(user.read_bytes(length_pointer, 4)?.try_into().map_err(|_| Errno::EFAULT)?);
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = address::encode(address);
    let written = (room as usize).min(SOCKADDR_IN_SIZE);
    user.write_bytes(pointer, &bytes[..written])?;
    user.write_u32(length_pointer, SOCKADDR_IN_SIZE as u32)
}

pub(super) fn socket(context: Context<'_>, domain: u64, socket_type: u64, protocol: u64) -> Result {
    let kind = create_kind(domain, socket_type, protocol)?;
    let socket = Socket::new(context.process.network.clone(), kind);
    let status = flags::O_RDWR | (socket_type & SOCK_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(socket as Arc<_>), status);
    install(context, file, socket_type & SOCK_CLOEXEC != 0)
}

/// The socket kind `socket` asks for, checked as Linux does.
fn create_kind(domain: u64, socket_type: u64, protocol: u64) -> core::result::Result<Kind, Errno> {
    if socket_type & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    match domain as u16 {
        family::INET if domain <= u64::from(u16::MAX) => {}
        family::INET6 | family::UNIX | family::NETLINK => return Err(Errno::EAFNOSUPPORT),
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    let protocol = protocol as i32;
    match (socket_type & 0xf) as u32 {
        kind::STREAM if protocol == 0 || protocol == crate::net::socket::option::IPPROTO_TCP => {
            Ok(Kind::Stream)
        }
        kind::DATAGRAM if protocol == 0 || protocol == crate::net::socket::option::IPPROTO_UDP => {
            Ok(Kind::Datagram)
        }
        kind::STREAM | kind::DATAGRAM => Err(Errno::EPROTONOSUPPORT),
        kind::RAW | kind::SEQPACKET => Err(Errno::ESOCKTNOSUPPORT),
        _ => Err(Errno::EINVAL),
    }
}

/// `socketpair`: only local sockets come in pairs, and there are none yet.
pub(super) fn socketpair(domain: u64, socket_type: u64, protocol: u64) -> Result {
    if domain as u16 == family::INET {
        create_kind(domain, socket_type, protocol)?;
        return Err(Errno::EOPNOTSUPP.into());
    }
    Err(Errno::EAFNOSUPPORT.into())
}

pub(super) fn bind(context: Context<'_>, fd: u64, pointer: u64, length: u64) -> Result {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let address = read_ipv4(context, pointer, length)?;
    socket.bind(&caller(context), address)?;
    Ok(0)
}

pub(super) fn listen(context: Context<'_>, fd: u64, backlog: u64) -> Result {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let backlog = usize::try_from(backlog as i32).unwrap_or(BACKLOG_MAX).min(BACKLOG_MAX);
    socket.listen(&caller(context), backlog)?;
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
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let (connection, peer) = socket.accept(&caller(context), file.is_nonblocking()).map_err(failure)?;
    write_address(context, pointer, length_pointer, peer)?;
    let status = flags::O_RDWR | (accept_flags & SOCK_NONBLOCK) as u32;
    let file = OpenFile::new(FileObject::Special(connection as Arc<_>), status);
    install(context, file, accept_flags & SOCK_CLOEXEC != 0)
}

pub(super) fn connect(context: Context<'_>, fd: u64, pointer: u64, length: u64) -> Result {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let address = read_address(context, pointer, length)?;
    socket.connect(&caller(context), address, file.is_nonblocking()).map_err(failure)?;
    Ok(0)
}

pub(super) fn getsockname(context: Context<'_>, fd: u64, pointer: u64, length_pointer: u64) -> Result {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let address = socket.local_address(&caller(context));
    write_address(context, pointer, length_pointer, address)?;
    Ok(0)
}

pub(super) fn getpeername(context: Context<'_>, fd: u64, pointer: u64, length_pointer: u64) -> Result {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let address = socket.peer_address(&caller(context))?;
    write_address(context, pointer, length_pointer, address)?;
    Ok(0)
}

pub(super) fn shutdown(context: Context<'_>, fd: u64, how: u64) -> Result {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    socket.shutdown(&caller(context), how as u32)?;
    Ok(0)
}

/// Sends `bytes`; a broken connection raises `SIGPIPE` unless
/// `MSG_NOSIGNAL`.
fn send_bytes(
    context: Context<'_>,
    fd: u64,
    bytes: &[u8],
    send_flags: u32,
    destination: Option<SocketAddrV4>,
) -> core::result::Result<usize, Failure> {
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    match socket.send(&caller(context), bytes, send_flags, destination, file.is_nonblocking()) {
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
) -> core::result::Result<Option<SocketAddrV4>, Errno> {
    if pointer == 0 {
        return Ok(None);
    }
    match read_address(context, pointer, length)? {
        Address::Ipv4(address) => Ok(Some(address)),
        Address::Unspecified => Ok(None),
    }
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
    // A datagram goes whole; a stream goes a chunk at a time.
    let file = socket_file(context, fd)?;
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    if socket.kind() == Kind::Datagram || length <= CHUNK {
        let bytes = user.read_bytes(buffer, length)?;
        return Ok(send_bytes(context, fd, &bytes, send_flags as u32, destination)? as u64);
    }
    let mut sent = 0;
    while sent < length {
        let step = (length - sent).min(CHUNK);
        let bytes = user.read_bytes(buffer + sent as u64, step)?;
        match send_bytes(context, fd, &bytes, send_flags as u32, destination) {
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
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let length = usize::try_from(length).map_err(|_| Errno::EINVAL)?.min(CHUNK);
    let mut bytes = vec![0u8; length];
    let received = socket
        .receive(&caller(context), &mut bytes, receive_flags as u32, file.is_nonblocking())
        .map_err(failure)?;
    User::new(context.machine).write_bytes(buffer, &bytes[..received.length])?;
    if let Some(source) = received.source {
        write_address(context, pointer, length_pointer, source)?;
    }
    if receive_flags as u32 & message::TRUNC != 0 {
        // The datagram's real length, even when it did not fit.
        return Ok(received.full_length as u64);
    }
    Ok(received.length as u64)
}

/// A `struct msghdr`.
struct MessageHeader {
    name: u64,
    name_length: u64,
    vectors: Vec<(u64, u64)>,
}

fn read_message_header(context: Context<'_>, address: u64) -> core::result::Result<MessageHeader, Errno> {
    let user = User::new(context.machine);
    let bytes = user.read_bytes(address, MSGHDR_SIZE)?;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let name = word(0);
    let name_length = u64::from(u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4])));
    let vectors = user.read_iovecs(word(16), word(24))?;
    Ok(MessageHeader { name, name_length, vectors })
}

fn send_message(
    context: Context<'_>,
    fd: u64,
    header_address: u64,
    send_flags: u32,
) -> core::result::Result<usize, Failure> {
    let header = read_message_header(context, header_address)?;
    let destination = destination(context, header.name, header.name_length)?;
    let user = User::new(context.machine);
    let mut bytes = Vec::new();
    for (base, length) in &header.vectors {
        let length = usize::try_from(*length).map_err(|_| Errno::EINVAL)?;
        if bytes.len() + length > 64 * 1024 * 1024 {
            return Err(Errno::EMSGSIZE.into());
        }
        bytes.extend_from_slice(&user.read_bytes(*base, length)?);
    }
    send_bytes(context, fd, &bytes, send_flags, destination)
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
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let total: u64 = header.vectors.iter().map(|(_, length)| *length).sum();
    let mut bytes = vec![0u8; usize::try_from(total).unwrap_or(CHUNK).min(CHUNK)];
    let received = socket
        .receive(&caller(context), &mut bytes, receive_flags, file.is_nonblocking())
        .map_err(failure)?;
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
                let encoded = address::encode(source);
                let written = (header.name_length as usize).min(SOCKADDR_IN_SIZE);
                user.write_bytes(header.name, &encoded[..written])?;
                user.write_u32(header_address + 8, SOCKADDR_IN_SIZE as u32)?;
            }
            None => user.write_u32(header_address + 8, 0)?,
        }
    }
    user.write_u64(header_address + 40, 0)?;
    let message_flags = if received.is_truncated { message::TRUNC } else { 0 };
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
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    if (length as i32) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = User::new(context.machine).read_bytes(value, length.min(OPTION_MAX) as usize)?;
    socket.set_option(&caller(context), level as i32, name as i32, &bytes)?;
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
    let socket = as_socket(&file).ok_or(Errno::ENOTSOCK)?;
    let user = User::new(context.machine);
    let room = i32::from_ne_bytes(user.read_bytes(length_pointer, 4)?.try_into().map_err(|_| Errno::EFAULT)?);
    if room < 0 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = socket.option(&caller(context), level as i32, name as i32)?;
    let written = (room as usize).min(bytes.len());
    user.write_bytes(value, &bytes[..written])?;
    user.write_u32(length_pointer, written as u32)?;
    Ok(0)
}

/// Bytes waiting on a socket, for `FIONREAD`.
pub(super) fn available_bytes(context: Context<'_>, file: &OpenFile) -> Option<u64> {
    let socket = file.special()?.as_any().downcast_ref::<Socket>()?;
    Some(socket.available_bytes(&caller(context)) as u64)
}
