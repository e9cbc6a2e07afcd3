//! Socket addresses as applications pass them: `struct sockaddr_in`,
//! `struct sockaddr_in6` and `struct sockaddr_un`.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::local::LocalName;

use crate::errno::Errno;

/// Address families (`AF_*`).
pub mod family {
    /// No address (`connect` with it dissolves a datagram association).
    pub const UNSPEC: u16 = 0;
    /// Local sockets.
    pub const UNIX: u16 = 1;
    /// IPv4.
    pub const INET: u16 = 2;
    /// IPv6.
    pub const INET6: u16 = 10;
    /// Kernel messages (`getifaddrs`).
    pub const NETLINK: u16 = 16;
}

/// Bytes of a `struct sockaddr_in`.
pub const SOCKADDR_IN_SIZE: usize = 16;
/// Bytes of a `struct sockaddr_in6`.
pub const SOCKADDR_IN6_SIZE: usize = 28;
/// The least of a `struct sockaddr_in6` Linux takes (RFC 2133's, without
/// the scope).
pub const SOCKADDR_IN6_MIN: usize = 24;

/// What an application's address was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `AF_UNSPEC`.
    Unspecified,
    /// An IPv4 address and port.
    Ipv4(SocketAddrV4),
    /// An IPv6 address and port, with its flow label and scope.
    Ipv6(SocketAddrV6),
    /// A local socket's name.
    Local(LocalName),
    /// A netlink port (0: the kernel) and multicast groups.
    Netlink {
        /// `nl_pid`.
        port: u32,
        /// `nl_groups`.
        groups: u32,
    },
}

/// Reads a socket address of `bytes` (as long as the application said).
pub fn parse(bytes: &[u8]) -> Result<Address, Errno> {
    if bytes.len() < 2 {
        return Err(Errno::EINVAL);
    }
    // Linux checks the length before the family, except for AF_UNSPEC.
    match u16::from_ne_bytes([bytes[0], bytes[1]]) {
        family::UNSPEC => Ok(Address::Unspecified),
        family::UNIX => Ok(Address::Local(LocalName::parse(bytes)?)),
        family::NETLINK if bytes.len() < super::netlink::SOCKADDR_NL_SIZE => Err(Errno::EINVAL),
        family::NETLINK => {
            let word =
                |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            Ok(Address::Netlink { port: word(4), groups: word(8) })
        }
        _ if bytes.len() < SOCKADDR_IN_SIZE => Err(Errno::EINVAL),
        family::INET => {
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let address = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Ok(Address::Ipv4(SocketAddrV4::new(address, port)))
        }
        family::INET6 if bytes.len() < SOCKADDR_IN6_MIN => Err(Errno::EINVAL),
        family::INET6 => {
            let word =
                |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let port = u16::from_be_bytes([bytes[2], bytes[3]]);
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes[8..24]);
            let scope = if bytes.len() >= SOCKADDR_IN6_SIZE { word(24) } else { 0 };
            let flow = u32::from_be(word(4));
            Ok(Address::Ipv6(SocketAddrV6::new(Ipv6Addr::from(octets), port, flow, scope)))
        }
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// The bytes of `address` as the application gets them.
pub fn encode_any(address: &Address) -> Vec<u8> {
    match address {
        Address::Unspecified => family::UNSPEC.to_ne_bytes().to_vec(),
        Address::Ipv4(address) => encode(*address).to_vec(),
        Address::Ipv6(address) => encode_ipv6(*address).to_vec(),
        Address::Local(name) => name.encode(),
        Address::Netlink { port, .. } => super::netlink::encode_address(*port),
    }
}

/// The netmask of a prefix length (`/24`: 255.255.255.0).
pub fn netmask(prefix_length: u8) -> Ipv4Addr {
    let length = u32::from(prefix_length.min(32));
    Ipv4Addr::from(if length == 0 { 0 } else { u32::MAX << (32 - length) })
}

/// The network `address` lies in.
pub fn network_of(address: Ipv4Addr, prefix_length: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) & u32::from(netmask(prefix_length)))
}

/// The broadcast address of `address`'s network.
pub fn broadcast_of(address: Ipv4Addr, prefix_length: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(address) | !u32::from(netmask(prefix_length)))
}

/// Writes `address` as a `struct sockaddr_in`.
pub fn encode(address: SocketAddrV4) -> [u8; SOCKADDR_IN_SIZE] {
    let mut bytes = [0u8; SOCKADDR_IN_SIZE];
    bytes[..2].copy_from_slice(&family::INET.to_ne_bytes());
    bytes[2..4].copy_from_slice(&address.port().to_be_bytes());
    bytes[4..8].copy_from_slice(&address.ip().octets());
    bytes
}

/// Writes `address` as a `struct sockaddr_in6`.
pub fn encode_ipv6(address: SocketAddrV6) -> [u8; SOCKADDR_IN6_SIZE] {
    let mut bytes = [0u8; SOCKADDR_IN6_SIZE];
    bytes[..2].copy_from_slice(&family::INET6.to_ne_bytes());
    bytes[2..4].copy_from_slice(&address.port().to_be_bytes());
    bytes[4..8].copy_from_slice(&address.flowinfo().to_be_bytes());
    bytes[8..24].copy_from_slice(&address.ip().octets());
    bytes[24..].copy_from_slice(&address.scope_id().to_ne_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        let address = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 15), 8080);
        let bytes = encode(address);
        assert_eq!(&bytes[2..4], &[0x1f, 0x90], "the port is big-endian");
        assert_eq!(parse(&bytes), Ok(Address::Ipv4(address)));
    }

    #[test]
    fn ipv6_addresses_round_trip() {
        let address = SocketAddrV6::new("fec0::15".parse().unwrap(), 80, 0x12345, 3);
        let bytes = encode_ipv6(address);
        assert_eq!(&bytes[2..4], &[0, 80], "the port is big-endian");
        assert_eq!(&bytes[4..8], &[0, 1, 0x23, 0x45], "so is the flow label");
        assert_eq!(parse(&bytes), Ok(Address::Ipv6(address)));
        let short = SocketAddrV6::new(*address.ip(), 80, 0x12345, 0);
        assert_eq!(parse(&bytes[..24]), Ok(Address::Ipv6(short)), "RFC 2133's size has no scope");
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert_eq!(parse(&[2]), Err(Errno::EINVAL));
        assert_eq!(parse(&encode(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1))[..8]), Err(Errno::EINVAL));
        let ipv6 = encode_ipv6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 0));
        assert_eq!(parse(&ipv6[..20]), Err(Errno::EINVAL), "shorter than RFC 2133's sockaddr_in6");
        let mut other = ipv6;
        other[..2].copy_from_slice(&3u16.to_ne_bytes());
        assert_eq!(parse(&other), Err(Errno::EAFNOSUPPORT));
        assert_eq!(parse(&[0, 0]), Ok(Address::Unspecified));
        assert_eq!(parse(&[10, 0, 1, 2]), Err(Errno::EINVAL), "the length counts before the family");
    }

    #[test]
    fn prefixes_give_masks_networks_and_broadcasts() {
        let address = Ipv4Addr::new(10, 0, 2, 15);
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!((netmask(0), netmask(32)), (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST));
        assert_eq!(network_of(address, 24), Ipv4Addr::new(10, 0, 2, 0));
        assert_eq!(broadcast_of(address, 24), Ipv4Addr::new(10, 0, 2, 255));
    }

    #[test]
    fn local_names_round_trip() {
        let unix = family::UNIX.to_ne_bytes();
        let mut path = unix.to_vec();
        path.extend_from_slice(b"/tmp/socket\0garbage");
        assert_eq!(parse(&path), Ok(Address::Local(LocalName::Path(b"/tmp/socket".to_vec()))));
        assert_eq!(LocalName::Path(b"/tmp/socket".to_vec()).encode().len(), 2 + 11 + 1);
        let mut abstract_name = unix.to_vec();
        abstract_name.extend_from_slice(b"\0name\0x");
        let name = LocalName::Abstract(b"name\0x".to_vec());
        assert_eq!(parse(&abstract_name), Ok(Address::Local(name.clone())));
        assert_eq!(name.encode(), abstract_name, "abstract names keep every byte");
        assert_eq!(parse(&unix), Ok(Address::Local(LocalName::Unnamed)));
        assert_eq!(encode_any(&Address::Local(LocalName::Unnamed)), unix.to_vec());
        let mut long = unix.to_vec();
        long.resize(111, b'a');
        assert_eq!(parse(&long), Err(Errno::EINVAL), "longer than sockaddr_un");
    }
}
