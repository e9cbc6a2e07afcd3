//! The `IPPROTO_IP` and `IPPROTO_IPV6` levels of socket options: type of
//! service, time to live, packet information, error queues and multicast
//! memberships.

use super::*;

pub(super) fn set_ip_option(
    options: &mut Options,
    socket_kind: Kind,
    name: i32,
    value: &[u8],
) -> Result<(), Errno> {
    match name {
        option::IP_TOS => {
            let mut type_of_service = integer_or_byte(value)? as u8;
            if socket_kind == Kind::Stream {
                // TCP keeps the ECN bits its own.
                type_of_service = (type_of_service & !3) | (options.type_of_service & 3);
            }
            options.type_of_service = type_of_service;
        }
        option::IP_TTL => {
            let ttl = integer_or_byte(value)?;
            options.time_to_live = match ttl {
                -1 => None,
                1..=255 => Some(ttl as u8),
                _ => return Err(Errno::EINVAL),
            };
        }
        number::IP_RECVTOS => options.receives_type_of_service = integer_or_byte(value)? != 0,
        option::IP_PKTINFO => options.packet_information = integer_or_byte(value)? != 0,
        option::IP_RECVERR => options.receives_errors = integer_or_byte(value)? != 0,
        option::IP_MTU_DISCOVER => {
            if !(0..=5).contains(&integer_or_byte(value)?) {
                return Err(Errno::EINVAL);
            }
        }
        number::IP_MULTICAST_TTL => {
            let ttl = integer_or_byte(value)?;
            options.multicast_time_to_live = match ttl {
                -1 => 1,
                0..=255 => ttl as u8,
                _ => return Err(Errno::EINVAL),
            };
        }
        number::IP_MULTICAST_LOOP => options.multicast_loop = integer_or_byte(value)? != 0,
        number::IP_MULTICAST_IF => {
            // `struct in_addr`, `struct ip_mreq` or `struct ip_mreqn`: the
            // interface's address comes second in the longer two.
            let at = if value.len() >= 8 { 4 } else { 0 };
            let address = value.get(at..at + 4).ok_or(Errno::EINVAL)?;
            options.multicast_interface.copy_from_slice(address);
        }
        number::IP_ADD_MEMBERSHIP | number::IP_DROP_MEMBERSHIP => {
            if socket_kind == Kind::Stream {
                return Err(Errno::EPROTO);
            }
            // `struct ip_mreq` or `struct ip_mreqn`: the group first.
            let group: [u8; 4] =
                value.get(..4).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
            if value.len() < 8 {
                return Err(Errno::EINVAL);
            }
            change_membership(options, name == number::IP_ADD_MEMBERSHIP, group)?;
        }
        number::IP_ADD_SOURCE_MEMBERSHIP | number::IP_DROP_SOURCE_MEMBERSHIP => {
            if socket_kind == Kind::Stream {
                return Err(Errno::EPROTO);
            }
            // `struct ip_mreq_source`: the group, the interface, the source.
            let group: [u8; 4] =
                value.get(..4).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
            let source: [u8; 4] =
                value.get(8..12).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
            change_source_membership(options, name == number::IP_ADD_SOURCE_MEMBERSHIP, group, source)?;
        }
        number::MCAST_JOIN_GROUP | number::MCAST_LEAVE_GROUP => {
            // `struct group_req`: the interface index, then at 8 a
            // `struct sockaddr_storage` holding an IPv4 group. Linux takes
            // these on TCP sockets too.
            if value.len() < GROUP_REQUEST_SIZE || value[8..10] != FAMILY_INET.to_ne_bytes() {
                return Err(Errno::EINVAL);
            }
            let group: [u8; 4] = value[12..16].try_into().map_err(|_| Errno::EINVAL)?;
            change_membership(options, name == number::MCAST_JOIN_GROUP, group)?;
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

/// `sizeof(struct group_req)`.
const GROUP_REQUEST_SIZE: usize = 136;
/// `AF_INET`, as a `sockaddr`'s family field holds it.
const FAMILY_INET: u16 = 2;

/// Joins (`is_join`) or leaves the multicast `group`, as
/// `IP_ADD_MEMBERSHIP` and `MCAST_JOIN_GROUP` or their opposites do.
fn change_membership(options: &mut Options, is_join: bool, group: [u8; 4]) -> Result<(), Errno> {
    if group[0] & 0xf0 != 0xe0 {
        return Err(Errno::EINVAL);
    }
    let position = options.memberships.iter().position(|joined| joined.group == group);
    match (is_join, position) {
        (true, None) => options.memberships.push(Membership { group, sources: Vec::new() }),
        (true, Some(_)) => return Err(Errno::EADDRINUSE),
        (false, Some(position)) => {
            options.memberships.remove(position);
        }
        (false, None) => return Err(Errno::EADDRNOTAVAIL),
    }
    Ok(())
}

/// Adds (`is_join`) or drops the source `source` of the multicast `group`,
/// as `IP_ADD_SOURCE_MEMBERSHIP` and `IP_DROP_SOURCE_MEMBERSHIP` do: the
/// group is joined with its first source and left with its last.
fn change_source_membership(
    options: &mut Options,
    is_join: bool,
    group: [u8; 4],
    source: [u8; 4],
) -> Result<(), Errno> {
    if group[0] & 0xf0 != 0xe0 {
        return Err(Errno::EINVAL);
    }
    let position = options.memberships.iter().position(|joined| joined.group == group);
    match (is_join, position) {
        (true, None) => options.memberships.push(Membership { group, sources: alloc::vec![source] }),
        (true, Some(position)) => {
            let membership = &mut options.memberships[position];
            if membership.sources.is_empty() {
                // Already joined from every source.
                return Err(Errno::EINVAL);
            }
            if membership.sources.contains(&source) {
                return Err(Errno::EADDRNOTAVAIL);
            }
            membership.sources.push(source);
        }
        (false, Some(position)) => {
            let membership = &mut options.memberships[position];
            let at =
                membership.sources.iter().position(|listed| *listed == source).ok_or(Errno::EADDRNOTAVAIL)?;
            membership.sources.remove(at);
            if membership.sources.is_empty() {
                options.memberships.remove(position);
            }
        }
        (false, None) => return Err(Errno::EADDRNOTAVAIL),
    }
    Ok(())
}

/// The groups a socket's options have it belong to.
pub(in crate::net::socket) fn joined_groups(options: &Options) -> Vec<[u8; 4]> {
    options.memberships.iter().map(|membership| membership.group).collect()
}

impl Options {
    /// The groups joined for listed sources only, and those sources.
    pub(in crate::net::socket) fn group_sources(&self) -> Vec<(Ipv4Addr, Vec<Ipv4Addr>)> {
        self.memberships
            .iter()
            .filter(|membership| !membership.sources.is_empty())
            .map(|membership| {
                let sources = membership.sources.iter().map(|source| Ipv4Addr::from(*source)).collect();
                (Ipv4Addr::from(membership.group), sources)
            })
            .collect()
    }

    /// The options a connection accepted by a listener with these starts
    /// with: the same, but in no multicast group (Linux copies no
    /// memberships).
    pub(in crate::net::socket) fn for_accepted(&self) -> Options {
        Options { memberships: Vec::new(), ..self.clone() }
    }
}

pub(super) fn ip_option(options: &Options, name: i32) -> Result<Vec<u8>, Errno> {
    let integer = |value: i32| value.to_ne_bytes().to_vec();
    Ok(match name {
        option::IP_TOS => integer(i32::from(options.type_of_service)),
        option::IP_TTL => integer(i32::from(options.time_to_live.unwrap_or(DEFAULT_TTL))),
        number::IP_RECVTOS => integer(i32::from(options.receives_type_of_service)),
        option::IP_PKTINFO => integer(i32::from(options.packet_information)),
        option::IP_RECVERR => integer(i32::from(options.receives_errors)),
        option::IP_MTU_DISCOVER => integer(0),
        number::IP_MULTICAST_TTL => integer(i32::from(options.multicast_time_to_live)),
        number::IP_MULTICAST_LOOP => integer(i32::from(options.multicast_loop)),
        number::IP_MULTICAST_IF => options.multicast_interface.to_vec(),
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

pub(super) fn set_ipv6_option(options: &mut Options, name: i32, value: &[u8]) -> Result<(), Errno> {
    let value = integer(value)?;
    match name {
        number::IPV6_UNICAST_HOPS => {
            options.time_to_live = match value {
                -1 => None,
                0..=255 => Some(value as u8),
                _ => return Err(Errno::EINVAL),
            };
        }
        number::IPV6_MULTICAST_HOPS => {
            options.multicast_time_to_live = match value {
                -1 => 1,
                0..=255 => value as u8,
                _ => return Err(Errno::EINVAL),
            };
        }
        number::IPV6_MULTICAST_LOOP => {
            if !(0..=1).contains(&value) {
                return Err(Errno::EINVAL);
            }
            options.multicast_loop = value == 1;
        }
        number::IPV6_TCLASS => {
            options.traffic_class = match value {
                -1 => 0,
                0..=255 => value as u8,
                _ => return Err(Errno::EINVAL),
            };
        }
        number::IPV6_RECVPKTINFO => options.receives_packet_information_v6 = value != 0,
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

pub(super) fn ipv6_option(options: &Options, name: i32) -> Result<Vec<u8>, Errno> {
    let integer = |value: i32| value.to_ne_bytes().to_vec();
    Ok(match name {
        number::IPV6_V6ONLY => integer(i32::from(options.is_v6_only)),
        number::IPV6_UNICAST_HOPS => integer(i32::from(options.time_to_live.unwrap_or(DEFAULT_TTL))),
        number::IPV6_MULTICAST_HOPS => integer(i32::from(options.multicast_time_to_live)),
        number::IPV6_MULTICAST_LOOP => integer(i32::from(options.multicast_loop)),
        number::IPV6_TCLASS => integer(i32::from(options.traffic_class)),
        number::IPV6_RECVPKTINFO => integer(i32::from(options.receives_packet_information_v6)),
        _ => return Err(Errno::ENOPROTOOPT),
    })
}
