//! Making sockets: socket and socketpair, with Linux's checks of the
//! family, type and protocol.

use alloc::sync::Arc;

use super::{CAP_NET_RAW, SOCK_CLOEXEC, SOCK_NONBLOCK, has_capability};
use crate::errno::Errno;
use crate::net::abi::{kind, option};
use crate::net::address::family;
use crate::net::local::{LocalKind, LocalSocket, PeerCredentials};
use crate::net::netlink::{NETLINK_ROUTE, NetlinkSocket};
use crate::net::raw::RawSocket;
use crate::net::socket::{Kind, Socket};
use crate::net::vsock;
use crate::net::vsock::socket::VsockSocket;
use crate::syscall::descriptors::install_pair;
use crate::syscall::files::caller;
use crate::syscall::paths::install;
use crate::syscall::{Context, Result};
use crate::vfs::file::flags;
use crate::vfs::{FileObject, OpenFile, SpecialFile};

pub(in crate::syscall) fn socket(
    context: Context<'_>,
    domain: u64,
    socket_type: u64,
    protocol: u64,
) -> Result {
    let may_use_raw = has_capability(context, CAP_NET_RAW);
    let object: Arc<dyn SpecialFile> = match create_kind(domain, socket_type, protocol, may_use_raw)? {
        NewSocket::Inet(kind, is_ipv6) => Socket::new_in(context.process.network().clone(), kind, is_ipv6),
        NewSocket::Local(kind) => LocalSocket::new(context.process.network().local_names(), kind),
        NewSocket::Netlink(socket_type) => NetlinkSocket::new(context.process.network().clone(), socket_type),
        NewSocket::Vsock => VsockSocket::new(vsock::installed().ok_or(Errno::EAFNOSUPPORT)?),
        NewSocket::Raw(protocol) => {
            RawSocket::new(&caller(context), context.process.network().clone(), protocol)?
        }
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
    /// A raw IPv4 socket of an IP protocol.
    Raw(u8),
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
        // are IPv4 ones only.
        kind::RAW if !(0..=255).contains(&protocol) => Err(Errno::EINVAL),
        kind::RAW if protocol == 0 => Err(Errno::EPROTONOSUPPORT),
        kind::RAW if !may_use_raw => Err(Errno::EPERM),
        kind::RAW if !is_ipv6 => Ok(NewSocket::Raw(protocol as u8)),
        kind::RAW | kind::SEQPACKET => Err(Errno::ESOCKTNOSUPPORT),
        _ => Err(Errno::EINVAL),
    }
}

/// `socketpair`: two local sockets connected to each other.
pub(in crate::syscall) fn socketpair(
    context: Context<'_>,
    domain: u64,
    socket_type: u64,
    protocol: u64,
    address: u64,
) -> Result {
    let kind = match create_kind(domain, socket_type, protocol, has_capability(context, CAP_NET_RAW))? {
        NewSocket::Local(kind) => kind,
        NewSocket::Inet(..) | NewSocket::Netlink(_) | NewSocket::Vsock | NewSocket::Raw(_) => {
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
