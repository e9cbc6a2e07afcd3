//! Moving data through sockets: sendto and recvfrom, and the sends and
//! receives the message calls (`messages`) build on.

use alloc::vec::Vec;

use super::{Endpoint, endpoint, failure, find_local, ip_bytes, read_address, socket_file, write_address};
use crate::errno::Errno;
use crate::net::abi::{ControlMessage, message};
use core::net::SocketAddrV4;

use crate::net::address::{self, Address};
use crate::net::local::{Ancillary, LocalKind, LocalName, PeerCredentials};
use crate::net::netlink;
use crate::syscall::files::caller;
use crate::syscall::{Context, Failure, Result};
use crate::user::User;
use crate::vfs::OpenFile;

/// Bytes copied through the kernel per step of a large send or receive.
pub(in crate::syscall) const CHUNK: usize = 256 * 1024;

/// Sends `bytes`, to `destination` if given; a broken connection raises
/// `SIGPIPE` unless `MSG_NOSIGNAL`.
pub(in crate::syscall) fn send_bytes(
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
        Endpoint::Raw(socket) => {
            let destination = match destination {
                None | Some(Address::Unspecified) => None,
                Some(Address::Ipv4(address)) => Some(*address.ip()),
                Some(_) => return Err(Errno::EAFNOSUPPORT.into()),
            };
            socket.send(&caller, bytes, send_flags, destination, is_nonblocking)
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
        Err(Errno::EPIPE) if send_flags & message::NOSIGNAL == 0 => {
            Err(crate::syscall::signals::broken_pipe(context))
        }
        Err(error) => Err(failure(error)),
    }
}

/// The destination of `sendto` or `sendmsg`, if one was given.
pub(in crate::syscall) fn destination(
    context: Context<'_>,
    pointer: u64,
    length: u64,
) -> core::result::Result<Option<Address>, Errno> {
    if pointer == 0 {
        return Ok(None);
    }
    read_address(context, pointer, length).map(Some)
}

pub(in crate::syscall) fn sendto(
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
pub(in crate::syscall) fn send_pieces(
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
pub(in crate::syscall) struct Got {
    pub(in crate::syscall) length: usize,
    pub(in crate::syscall) full_length: usize,
    /// The sender's address bytes (empty: an unnamed local sender), for
    /// datagrams.
    pub(in crate::syscall) source: Option<Vec<u8>>,
    /// Files passed with the data (local sockets).
    pub(in crate::syscall) rights: crate::net::local::Rights,
    /// Who sent the data (local sockets that pass credentials).
    pub(in crate::syscall) credentials: Option<PeerCredentials>,
    /// Other control messages the socket delivers with the data.
    pub(in crate::syscall) control: Vec<ControlMessage>,
    /// Whether the socket keeps message boundaries (`MSG_TRUNC` then
    /// returns a message's real length).
    pub(in crate::syscall) is_message: bool,
}

/// A kernel buffer for a receive of `length` bytes: no larger than the
/// largest message the socket can hold, or a chunk of a stream.
pub(in crate::syscall) fn receive_buffer(
    file: &OpenFile,
    length: u64,
) -> core::result::Result<Vec<u8>, Errno> {
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

pub(in crate::syscall) fn receive_bytes(
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
        Endpoint::Raw(socket) => {
            let received = socket.receive(&caller, buffer, receive_flags, is_nonblocking).map_err(failure)?;
            Ok(Got {
                length: received.length,
                full_length: received.full_length,
                source: Some(address::encode(SocketAddrV4::new(received.source, 0)).to_vec()),
                rights: Vec::new(),
                credentials: None,
                control: Vec::new(),
                is_message: true,
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

pub(in crate::syscall) fn recvfrom(
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
