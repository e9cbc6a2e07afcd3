//! The link under the TCP/IP stack: a network card, and a loop for the
//! frames the machine sends to itself.
//!
//! The stack has one Ethernet interface. It holds the card's address and
//! `127.0.0.1/8`, so traffic to the machine's own addresses would go out on
//! the wire; [`Link`] turns it around instead. A frame addressed to the
//! card's own MAC address comes back as received, and so does an ARP
//! request for one of the machine's own addresses (its sender and target
//! addresses are equal), which teaches the stack that its own addresses
//! live at its own MAC. Without a card the link is only that loop.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::multicast::is_udp_to_group;
use super::segments::{Direction, Ledger};
use super::unreachable::is_unreachable;

/// A network card, as the stack uses it. Every method returns at once: the
/// card's interrupt wakes the network thread, which polls again.
pub trait NetworkDevice: Send + Sync {
    /// The card's MAC address.
    fn mac_address(&self) -> [u8; 6];

    /// The largest IP packet a frame carries (1500 on Ethernet).
    fn mtu(&self) -> usize;

    /// Calls `consume` with the next received Ethernet frame, if there is
    /// one; false if there was none.
    fn receive(&self, consume: &mut dyn FnMut(&[u8])) -> bool;

    /// Sends a frame of `length` bytes that `fill` writes; false if the card
    /// has no room now (the frame is dropped).
    fn transmit(&self, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool;

    /// Whether [`NetworkDevice::transmit`] would find room.
    fn can_transmit(&self) -> bool;

    /// Hands the frames [`NetworkDevice::transmit`] took since the last
    /// call to the wire; until then they may wait, so that a batch costs
    /// the card one notification.
    fn flush(&self);

    /// What the card has done so far (interrupts, notifications, ...), as
    /// one line for the activity report; empty if it does not count.
    fn describe_activity(&self) -> alloc::string::String {
        alloc::string::String::new()
    }
}

/// Bytes of an Ethernet header.
const ETHERNET_HEADER: usize = 14;
/// The IP packet size when there is no card: only the loop carries frames.
const LOOP_ONLY_MTU: usize = 65_000;
/// Frames the loop holds; more are dropped, as a full card would.
const LOOP_CAPACITY: usize = 256;
/// A locally administered address for a machine without a card.
pub const LOOP_ONLY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

/// The stack's device: a card (or none) plus the loop.
pub struct Link {
    card: Option<Arc<dyn NetworkDevice>>,
    mac: [u8; 6],
    mtu: usize,
    looped: VecDeque<Vec<u8>>,
    received: Vec<u8>,
    scratch: Vec<u8>,
    spare: Vec<Vec<u8>>,
    counters: [Counters; 2],
    ledger: Ledger,
    /// Received UDP datagrams to multicast groups, set aside for the
    /// stack to share out (`net::multicast`).
    to_groups: VecDeque<Vec<u8>>,
    /// Copies of received ICMP "destination unreachable" messages, for
    /// the stack to give the sockets they concern (`net::unreachable`).
    unreachable: VecDeque<Vec<u8>>,
    /// TCP ports whose listeners have no room: SYNs to them are dropped.
    full_ports: BTreeSet<u16>,
}

impl core::fmt::Debug for Link {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Link")
            .field("has_card", &self.card.is_some())
            .field("mtu", &self.mtu)
            .field("looped", &self.looped.len())
            .finish()
    }
}

impl Link {
    /// The link over `card`, or the loop alone.
    pub fn new(card: Option<Arc<dyn NetworkDevice>>) -> Self {
        let (mac, mtu) = match &card {
            Some(card) => (card.mac_address(), card.mtu()),
            None => (LOOP_ONLY_MAC, LOOP_ONLY_MTU),
        };
        Link {
            card,
            mac,
            mtu,
            looped: VecDeque::new(),
            received: Vec::new(),
            scratch: Vec::new(),
            spare: Vec::new(),
            counters: [Counters::default(); 2],
            ledger: Ledger::default(),
            to_groups: VecDeque::new(),
            unreachable: VecDeque::new(),
            full_ports: BTreeSet::new(),
        }
    }

    /// Sets the TCP ports whose SYNs are dropped: their listeners' backlogs
    /// are full.
    pub fn set_full_ports(&mut self, ports: BTreeSet<u16>) {
        self.full_ports = ports;
    }

    /// Takes the copies of received "destination unreachable" messages.
    pub fn take_unreachable(&mut self) -> VecDeque<Vec<u8>> {
        core::mem::take(&mut self.unreachable)
    }

    /// Takes the received datagrams to multicast groups.
    pub fn take_group_datagrams(&mut self) -> VecDeque<Vec<u8>> {
        core::mem::take(&mut self.to_groups)
    }

    /// What the TCP segments through the link said of each connection.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The same, to forget connections.
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The MAC address the interface uses.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// The largest IP packet the link carries.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// What went through the loop ([`LOOP_SIDE`]) and the card
    /// ([`CARD_SIDE`]).
    pub fn counters(&self) -> [Counters; 2] {
        self.counters
    }

    /// Tells the stack, through the loop, that `address` is its own: an ARP
    /// request for it, as the stack itself would send, which fills the
    /// stack's neighbor cache without the wait its rate limit on requests
    /// could impose.
    pub fn announce(&mut self, address: core::net::Ipv4Addr) {
        let mut frame = Vec::with_capacity(ETHERNET_HEADER + 28);
        frame.extend_from_slice(&[0xff; 6]);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&address.octets());
        frame.extend_from_slice(&[0; 6]);
        frame.extend_from_slice(&address.octets());
        if self.looped.len() < LOOP_CAPACITY {
            self.counters[LOOP_SIDE].count_sent(frame.len());
            self.looped.push_back(frame);
        }
    }

    /// Tells the stack, through the loop, that the IPv6 `address` is its
    /// own: a neighbor advertisement from it (RFC 4861 §4.4) with the
    /// machine's MAC address, which fills the stack's neighbor cache as the
    /// ARP request of [`Link::announce`] does for IPv4.
    pub fn announce_ipv6(&mut self, address: core::net::Ipv6Addr) {
        let frame = neighbor_advertisement(&self.mac, address);
        if self.looped.len() < LOOP_CAPACITY {
            self.counters[LOOP_SIDE].count_sent(frame.len());
            self.looped.push_back(frame);
        }
    }

    /// Asks the wire, with an ARP request from `sender`, for `target`'s
    /// MAC address (the gateway's), so that the stack knows it before its
    /// first packet there: smoltcp drops a packet whose next hop it must
    /// first look up, and a connection reset is never sent again.
    pub fn solicit(&mut self, sender: core::net::Ipv4Addr, target: core::net::Ipv4Addr) {
        let Some(card) = &self.card else { return };
        let mut frame = Vec::with_capacity(ETHERNET_HEADER + 28);
        frame.extend_from_slice(&[0xff; 6]);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        frame.extend_from_slice(&self.mac);
        frame.extend_from_slice(&sender.octets());
        frame.extend_from_slice(&[0; 6]);
        frame.extend_from_slice(&target.octets());
        if card.transmit(frame.len(), &mut |buffer| buffer.copy_from_slice(&frame)) {
            self.counters[CARD_SIDE].count_sent(frame.len());
        } else {
            self.counters[CARD_SIDE].dropped += 1;
        }
    }

    /// Sends the frames queued on the card.
    pub fn flush(&self) {
        if let Some(card) = &self.card {
            card.flush();
        }
    }

    /// Whether frames wait in the loop.
    pub fn has_looped(&self) -> bool {
        !self.looped.is_empty()
    }
}

/// An Ethernet frame from and to `mac` holding an unsolicited neighbor
/// advertisement of `address` at `mac`, from `address` to itself.
fn neighbor_advertisement(mac: &[u8; 6], address: core::net::Ipv6Addr) -> Vec<u8> {
    /// ICMPv6 (the IPv6 next header), and a neighbor advertisement's type.
    const ICMPV6: u8 = 58;
    const NEIGHBOR_ADVERTISEMENT: u8 = 136;
    /// The override flag, and the target link-layer address option.
    const OVERRIDE: u8 = 0x20;
    const TARGET_LINK_LAYER_ADDRESS: u8 = 2;
    let mut message = vec![NEIGHBOR_ADVERTISEMENT, 0, 0, 0, OVERRIDE, 0, 0, 0];
    message.extend_from_slice(&address.octets());
    message.extend_from_slice(&[TARGET_LINK_LAYER_ADDRESS, 1]);
    message.extend_from_slice(mac);
    // The checksum covers the pseudo-header (RFC 8200 §8.1) and the message.
    let mut pseudo_header = Vec::with_capacity(40 + message.len());
    pseudo_header.extend_from_slice(&address.octets());
    pseudo_header.extend_from_slice(&address.octets());
    pseudo_header.extend_from_slice(&(message.len() as u32).to_be_bytes());
    pseudo_header.extend_from_slice(&[0, 0, 0, ICMPV6]);
    pseudo_header.extend_from_slice(&message);
    let checksum = internet_checksum(&pseudo_header);
    message[2..4].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = Vec::with_capacity(ETHERNET_HEADER + 40 + message.len());
    frame.extend_from_slice(mac);
    frame.extend_from_slice(mac);
    frame.extend_from_slice(&[0x86, 0xdd]);
    // Version 6, no traffic class or flow label; hop limit 255, as
    // neighbor discovery requires.
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[ICMPV6, 255]);
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&message);
    frame
}

/// The ones' complement of the ones' complement sum of `bytes` as 16-bit
/// words (RFC 1071).
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum = bytes.chunks(2).fold(0u32, |sum, pair| {
        let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        sum + u32::from(word)
    });
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether a frame a machine with MAC address `mac` sends must come back
/// instead of going out: it is addressed to `mac`, or it asks for one of the
/// machine's own IP addresses (an ARP request whose sender and target
/// addresses match).
pub fn stays_home(mac: &[u8; 6], frame: &[u8]) -> bool {
    if frame.len() < ETHERNET_HEADER {
        return false;
    }
    if frame[..6] == *mac {
        return true;
    }
    let is_arp = frame[12..14] == [0x08, 0x06];
    let arp = &frame[ETHERNET_HEADER..];
    // htype 1, ptype IPv4, hlen 6, plen 4, operation 1 (request); the
    // sender's IP address at 14..18, the target's at 24..28.
    is_arp && arp.len() >= 28 && arp[..8] == [0, 1, 8, 0, 6, 4, 0, 1] && arp[14..18] == arp[24..28]
}

/// The destination port of a frame that opens a TCP connection (SYN
/// without ACK), over IPv4 or IPv6 (without extension headers).
fn syn_port(frame: &[u8]) -> Option<u16> {
    const TCP: u8 = 6;
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    let packet = frame.get(ETHERNET_HEADER..)?;
    let segment = match frame.get(12..14)? {
        [0x08, 0x00] if *packet.get(9)? == TCP => packet.get(usize::from(packet.first()? & 0x0f) * 4..)?,
        [0x86, 0xdd] if *packet.get(6)? == TCP => packet.get(40..)?,
        _ => return None,
    };
    let flags = *segment.get(13)?;
    (flags & (SYN | ACK) == SYN).then(|| u16::from_be_bytes([segment[2], segment[3]]))
}

/// A received frame, lent to the stack.
#[derive(Debug)]
pub struct Received<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for Received<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, consume: F) -> R {
        consume(self.frame)
    }
}

/// Frames and bytes through one side of the link, as `/proc/net/dev` and
/// `ifconfig` show them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub received_packets: u64,
    /// Bytes received.
    pub received_bytes: u64,
    /// Frames sent.
    pub sent_packets: u64,
    /// Bytes sent.
    pub sent_bytes: u64,
    /// Frames dropped on the way out (no room).
    pub dropped: u64,
}

impl Counters {
    fn count_received(&mut self, length: usize) {
        self.received_packets += 1;
        self.received_bytes += length as u64;
    }

    fn count_sent(&mut self, length: usize) {
        self.sent_packets += 1;
        self.sent_bytes += length as u64;
    }
}

/// Which side of the link a frame used.
pub const LOOP_SIDE: usize = 0;
/// The card's side.
pub const CARD_SIDE: usize = 1;

/// Room for one frame to send.
pub struct Sending<'a> {
    card: Option<&'a dyn NetworkDevice>,
    mac: [u8; 6],
    looped: &'a mut VecDeque<Vec<u8>>,
    scratch: &'a mut Vec<u8>,
    spare: &'a mut Vec<Vec<u8>>,
    counters: &'a mut [Counters; 2],
    ledger: &'a mut Ledger,
    now: Instant,
}

impl core::fmt::Debug for Sending<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Sending").finish()
    }
}

impl phy::TxToken for Sending<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, fill: F) -> R {
        self.scratch.clear();
        self.scratch.resize(length, 0);
        let result = fill(self.scratch);
        self.ledger.note(self.scratch, Direction::Out, self.now);
        if stays_home(&self.mac, self.scratch) {
            if self.looped.len() < LOOP_CAPACITY {
                let mut frame = self.spare.pop().unwrap_or_default();
                frame.clear();
                frame.extend_from_slice(self.scratch);
                self.looped.push_back(frame);
                self.counters[LOOP_SIDE].count_sent(length);
            } else {
                self.counters[LOOP_SIDE].dropped += 1;
            }
        } else if let Some(card) = self.card {
            let scratch: &[u8] = self.scratch;
            // A full card drops the frame, as a full wire would.
            if card.transmit(length, &mut |buffer| buffer.copy_from_slice(scratch)) {
                self.counters[CARD_SIDE].count_sent(length);
            } else {
                self.counters[CARD_SIDE].dropped += 1;
            }
        }
        result
    }
}

impl phy::Device for Link {
    type RxToken<'a> = Received<'a>;
    type TxToken<'a> = Sending<'a>;

    fn receive(&mut self, timestamp: Instant) -> Option<(Received<'_>, Sending<'_>)> {
        loop {
            if let Some(frame) = self.looped.pop_front() {
                let old = core::mem::replace(&mut self.received, frame);
                self.spare.push(old);
                self.counters[LOOP_SIDE].count_received(self.received.len());
            } else {
                let card = self.card.as_ref()?;
                let received = &mut self.received;
                received.clear();
                if !card.receive(&mut |frame| received.extend_from_slice(frame)) {
                    return None;
                }
                self.counters[CARD_SIDE].count_received(self.received.len());
            }
            if syn_port(&self.received).is_some_and(|port| self.full_ports.contains(&port)) {
                continue;
            }
            if is_unreachable(&self.received) && self.unreachable.len() < LOOP_CAPACITY {
                self.unreachable.push_back(self.received.clone());
            }
            if !is_udp_to_group(&self.received) {
                break;
            }
            if self.to_groups.len() < LOOP_CAPACITY {
                self.to_groups.push_back(self.received.clone());
            }
        }
        self.ledger.note(&self.received, Direction::In, timestamp);
        let sending = Sending {
            card: self.card.as_deref(),
            mac: self.mac,
            looped: &mut self.looped,
            scratch: &mut self.scratch,
            spare: &mut self.spare,
            counters: &mut self.counters,
            ledger: &mut self.ledger,
            now: timestamp,
        };
        Some((Received { frame: &self.received }, sending))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Sending<'_>> {
        if self.card.as_ref().is_some_and(|card| !card.can_transmit()) {
            return None;
        }
        Some(Sending {
            card: self.card.as_deref(),
            mac: self.mac,
            looped: &mut self.looped,
            scratch: &mut self.scratch,
            spare: &mut self.spare,
            counters: &mut self.counters,
            ledger: &mut self.ledger,
            now: timestamp,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = self.mtu + ETHERNET_HEADER;
        capabilities
    }
}

#[cfg(test)]
mod tests {
    use super::syn_port;

    /// An Ethernet frame carrying an IPv4 TCP segment with `flags` to
    /// port 8080.
    fn tcp_frame(flags: u8) -> Vec<u8> {
        let mut frame = alloc::vec![0u8; 14 + 20 + 20];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[14 + 9] = 6;
        frame[34 + 2..34 + 4].copy_from_slice(&8080u16.to_be_bytes());
        frame[34 + 13] = flags;
        frame
    }

    #[test]
    fn only_connection_openings_name_their_port() {
        assert_eq!(syn_port(&tcp_frame(0x02)), Some(8080));
        assert_eq!(syn_port(&tcp_frame(0x12)), None, "a SYN-ACK answers");
        assert_eq!(syn_port(&tcp_frame(0x10)), None);
        assert_eq!(syn_port(&tcp_frame(0x02)[..40]), None, "cut short");
        assert_eq!(syn_port(&[]), None);
    }
}
