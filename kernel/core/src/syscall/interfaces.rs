//! The interface requests sockets answer (`SIOCGIF*`, `SIOCSIFFLAGS`):
//! what `if_nametoindex`, `ifconfig` and similar tools ask; and
//! `SIOCATMARK`.

use alloc::vec::Vec;
use core::net::SocketAddrV4;

use super::sockets::{Endpoint, endpoint};
use super::{Context, Result};
use crate::errno::Errno;
use crate::net::address;
use crate::net::socket::Kind;
use crate::user::User;
use crate::vfs::OpenFile;

/// Interface requests (`SIOCGIF*`, `uapi/linux/sockios.h`).
mod interface_request {
    pub const SIOCGIFNAME: u64 = 0x8910;
    pub const SIOCGIFCONF: u64 = 0x8912;
    pub const SIOCGIFFLAGS: u64 = 0x8913;
    pub const SIOCSIFFLAGS: u64 = 0x8914;
    pub const SIOCGIFADDR: u64 = 0x8915;
    pub const SIOCGIFBRDADDR: u64 = 0x8919;
    pub const SIOCGIFNETMASK: u64 = 0x891b;
    pub const SIOCGIFMTU: u64 = 0x8921;
    pub const SIOCGIFHWADDR: u64 = 0x8927;
    pub const SIOCGIFINDEX: u64 = 0x8933;
    pub const SIOCGIFTXQLEN: u64 = 0x8942;
    /// Whether a TCP socket's reading is at the urgent mark.
    pub const SIOCATMARK: u64 = 0x8905;
}

/// `CAP_NET_ADMIN`, which changing an interface needs.
const CAP_NET_ADMIN: u32 = crate::credentials::capability::NET_ADMIN;
/// `IFF_UP`.
const IFF_UP: u16 = 0x1;

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
    let endpoint = endpoint(file)?;
    if command == SIOCATMARK {
        // TCP here takes no urgent data, so a reader is never at its mark.
        return match endpoint {
            Endpoint::Inet(socket) if socket.kind() == Kind::Stream => {
                Some(User::new(context.machine).write_u32(argument, 0).map(|()| 0).map_err(Into::into))
            }
            _ => Some(Err(Errno::ENOTTY.into())),
        };
    }
    let known = [
        SIOCGIFNAME,
        SIOCGIFCONF,
        SIOCGIFFLAGS,
        SIOCSIFFLAGS,
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
    let interfaces = context.process.network().interfaces();
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
    if command == SIOCSIFFLAGS && !context.process.state.lock().credentials.has_capability(CAP_NET_ADMIN) {
        return Err(Errno::EPERM.into());
    }
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
    let (interface_address, prefix_length) =
        interface.address.unwrap_or((core::net::Ipv4Addr::UNSPECIFIED, 0));
    match command {
        SIOCGIFNAME => {
            request[..16].fill(0);
            request[..interface.name.len()].copy_from_slice(interface.name.as_bytes());
            union.copy_from_slice(&request[16..]);
        }
        SIOCGIFFLAGS => union[..2].copy_from_slice(&(interface.flags as u16).to_ne_bytes()),
        SIOCSIFFLAGS => {
            // The loop goes up or down; the card stays up: asking for that
            // changes nothing, taking it down is not offered.
            let wanted = u16::from_ne_bytes([request[16], request[17]]);
            if interface.flags & crate::net::interface_flags::LOOPBACK != 0 {
                context.process.network().set_loop_up(wanted & IFF_UP != 0);
                return Ok(0);
            }
            return if wanted & IFF_UP == (interface.flags as u16) & IFF_UP {
                Ok(0)
            } else {
                Err(Errno::EOPNOTSUPP.into())
            };
        }
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
        SIOCGIFADDR => union[..16].copy_from_slice(&ipv4(interface_address)),
        SIOCGIFNETMASK => union[..16].copy_from_slice(&ipv4(address::netmask(prefix_length))),
        _ => union[..16].copy_from_slice(&ipv4(address::broadcast_of(interface_address, prefix_length))),
    }
    request[16..].copy_from_slice(&union);
    user.write_bytes(argument, &request)?;
    Ok(0)
}
