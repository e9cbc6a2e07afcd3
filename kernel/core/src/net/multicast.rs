//! IPv4 multicast for UDP sockets: the groups the machine belongs to, and
//! the datagrams sent to them, queued for every socket bound to their
//! port.
//!
//! smoltcp joins and leaves groups (IGMP reports on the card) but hands a
//! datagram to one socket only, so UDP datagrams to a group never reach
//! it: the link sets them aside ([`is_udp_to_group`]) and the stack queues
//! a copy for each UDP socket bound to the port (on the any-address or the
//! group's), as Linux does while any socket belongs to the group
//! (`IP_MULTICAST_ALL`, on by default). A socket's own sends to a group
//! come back the same way when `IP_MULTICAST_LOOP` is on.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use smoltcp::iface::SocketHandle;

/// Datagrams a socket's multicast queue holds; more are dropped.
const QUEUE_LIMIT: usize = 64;

/// A datagram sent to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Its payload.
    pub payload: Vec<u8>,
    /// Who sent it.
    pub source: SocketAddr,
    /// The group and port it went to.
    pub destination: SocketAddrV4,
}

/// The groups joined and the datagrams waiting for each socket.
#[derive(Debug, Default)]
pub struct Multicast {
    /// How many memberships each group has.
    groups: BTreeMap<Ipv4Addr, usize>,
    queues: BTreeMap<SocketHandle, VecDeque<Arrival>>,
    /// The sources each socket takes a group's datagrams from, for the
    /// groups it joined for some sources only.
    sources: BTreeMap<(SocketHandle, Ipv4Addr), Vec<Ipv4Addr>>,
}

impl Multicast {
    /// Counts a membership of `group`; true if it is the first.
    pub fn join(&mut self, group: Ipv4Addr) -> bool {
        let count = self.groups.entry(group).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// Drops a membership of `group`; true if it was the last.
    pub fn leave(&mut self, group: Ipv4Addr) -> bool {
        let Some(count) = self.groups.get_mut(&group) else { return false };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        self.groups.remove(&group);
        true
    }

    /// Whether the machine belongs to `group`.
    pub fn is_member(&self, group: Ipv4Addr) -> bool {
        self.groups.contains_key(&group)
    }

    /// Sets the groups `handle`'s socket takes from listed sources only,
    /// and those sources.
    pub fn set_sources(&mut self, handle: SocketHandle, groups: &[(Ipv4Addr, Vec<Ipv4Addr>)]) {
        self.sources.retain(|(owner, _), _| *owner != handle);
        for (group, sources) in groups.iter().filter(|(_, sources)| !sources.is_empty()) {
            self.sources.insert((handle, *group), sources.clone());
        }
    }

    /// Whether `handle`'s socket takes datagrams to `group` from `source`.
    pub fn admits(&self, handle: SocketHandle, group: Ipv4Addr, source: IpAddr) -> bool {
        match (self.sources.get(&(handle, group)), source) {
            (None, _) => true,
            (Some(sources), IpAddr::V4(source)) => sources.contains(&source),
            (Some(_), IpAddr::V6(_)) => false,
        }
    }

    /// Queues `arrival` for the socket behind `handle`; false if its queue
    /// is full.
    pub fn queue(&mut self, handle: SocketHandle, arrival: Arrival) -> bool {
        let queue = self.queues.entry(handle).or_default();
        if queue.len() >= QUEUE_LIMIT {
            return false;
        }
        queue.push_back(arrival);
        true
    }

    /// The next datagram for `handle`, taken or (`is_peek`) left.
    pub fn take(&mut self, handle: SocketHandle, is_peek: bool) -> Option<Arrival> {
        let queue = self.queues.get_mut(&handle)?;
        let arrival = if is_peek { queue.front().cloned() } else { queue.pop_front() };
        if queue.is_empty() {
            self.queues.remove(&handle);
        }
        arrival
    }

    /// The size of the next datagram waiting for `handle`.
    pub fn next_length(&self, handle: SocketHandle) -> Option<usize> {
        self.queues.get(&handle)?.front().map(|arrival| arrival.payload.len())
    }

    /// Forgets what waits for `handle` (its socket is gone).
    pub fn forget(&mut self, handle: SocketHandle) {
        self.queues.remove(&handle);
        self.set_sources(handle, &[]);
    }
}

/// Whether the Ethernet `frame` holds a UDP datagram (or its first
/// fragment) sent to an IPv4 multicast group.
pub fn is_udp_to_group(frame: &[u8]) -> bool {
    const UDP: u8 = 17;
    frame.get(12..14) == Some(&[0x08, 0x00])
        && frame.get(23) == Some(&UDP)
        && frame.get(30).is_some_and(|first| first & 0xf0 == 0xe0)
}

/// The datagram in a frame [`is_udp_to_group`] accepted: its source, its
/// destination and its payload. Fragmented datagrams are not taken.
pub fn parse(frame: &[u8]) -> Option<(SocketAddr, SocketAddrV4, &[u8])> {
    const ETHERNET_HEADER: usize = 14;
    let packet = frame.get(ETHERNET_HEADER..)?;
    let header_length = usize::from(packet.first()? & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let fragment = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]);
    // More fragments, or a fragment offset: not a whole datagram.
    if fragment & 0x3fff != 0 || header_length < 20 || total_length > packet.len() {
        return None;
    }
    let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let destination: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    let udp = packet.get(header_length..total_length)?;
    let source_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let destination_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let payload = udp.get(8..length.min(udp.len()))?;
    Some((
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(source)), source_port),
        SocketAddrV4::new(Ipv4Addr::from(destination), destination_port),
        payload,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with a UDP datagram from 127.0.0.1:5000 to
    /// `destination`:6000 carrying `payload`, fragmented if `fragment`.
    fn frame(destination: [u8; 4], payload: &[u8], fragment: u16) -> Vec<u8> {
        let mut frame = alloc::vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        frame.extend_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&fragment.to_be_bytes());
        frame.extend_from_slice(&[1, 17, 0, 0, 127, 0, 0, 1]);
        frame.extend_from_slice(&destination);
        frame.extend_from_slice(&5000u16.to_be_bytes());
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn datagrams_to_groups_are_recognized_and_read() {
        let to_group = frame([239, 1, 2, 3], b"hi", 0);
        assert!(is_udp_to_group(&to_group));
        let (source, destination, payload) = parse(&to_group).expect("a datagram");
        assert_eq!(source, "127.0.0.1:5000".parse::<SocketAddr>().expect("an address"));
        assert_eq!(destination, "239.1.2.3:6000".parse::<SocketAddrV4>().expect("an address"));
        assert_eq!(payload, b"hi");
        assert!(!is_udp_to_group(&frame([10, 0, 0, 1], b"hi", 0)));
        // A fragment is not a whole datagram; a short frame is nothing.
        assert!(parse(&frame([239, 1, 2, 3], b"hi", 0x2000)).is_none());
        assert!(!is_udp_to_group(&to_group[..20]));
        assert!(parse(&to_group[..30]).is_none());
    }

    #[test]
    fn groups_count_memberships_and_queues_are_bounded() {
        let mut multicast = Multicast::default();
        let group = Ipv4Addr::new(239, 1, 2, 3);
        assert!(multicast.join(group));
        assert!(!multicast.join(group));
        assert!(!multicast.leave(group));
        assert!(multicast.is_member(group));
        assert!(multicast.leave(group));
        assert!(!multicast.is_member(group));
        assert!(!multicast.leave(group));
        let handle = SocketHandle::default();
        let arrival = Arrival {
            payload: alloc::vec![1, 2],
            source: "127.0.0.1:5000".parse().expect("an address"),
            destination: SocketAddrV4::new(group, 6000),
        };
        for _ in 0..QUEUE_LIMIT {
            assert!(multicast.queue(handle, arrival.clone()));
        }
        assert!(!multicast.queue(handle, arrival.clone()));
        assert_eq!(multicast.next_length(handle), Some(2));
        assert_eq!(multicast.take(handle, true), Some(arrival.clone()));
        assert_eq!(multicast.take(handle, false), Some(arrival));
        multicast.forget(handle);
        assert_eq!(multicast.take(handle, false), None);
        let source = Ipv4Addr::new(10, 0, 0, 1);
        multicast.set_sources(handle, &[(group, alloc::vec![source])]);
        assert!(multicast.admits(handle, group, IpAddr::V4(source)));
        assert!(!multicast.admits(handle, group, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(multicast.admits(handle, Ipv4Addr::new(239, 9, 9, 9), IpAddr::V4(Ipv4Addr::LOCALHOST)));
        multicast.forget(handle);
        assert!(multicast.admits(handle, group, IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
