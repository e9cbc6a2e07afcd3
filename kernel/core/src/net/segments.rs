//! What each TCP connection's segments say, counted as they cross the
//! link: the figures `TCP_INFO` reports and smoltcp keeps to itself or
//! does not keep (segments and bytes each way, retransmissions, the round
//! trip time in microseconds, the options and segment sizes the handshake
//! agreed, the windows, and the congestion window its Reno controller
//! holds, followed from the acknowledgements as it follows them).
//!
//! Every frame the stack sends or receives passes [`Ledger::note`]: a
//! frame sent counts for the connection from its source to its
//! destination, a frame received for the one from its destination to its
//! source, so both ends of a connection over the loop have their figures.
//! A connection's entry starts with its first SYN and is forgotten when
//! its socket is (or, for one refused at once, at the reset).

use alloc::collections::BTreeMap;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::time::Instant;

/// Connections followed at once; past that, the one quiet longest is
/// forgotten.
const CAPACITY: usize = 4096;
/// smoltcp's Reno controller: the segment size it assumes until the
/// handshake tells it (and its first window, two of those), and the
/// receive window it assumes the peer has.
const RENO_INITIAL_MSS: u32 = 1024;
const RENO_INITIAL_PEER_WINDOW: u32 = 64 * 1024;
/// smoltcp's retransmission timeout: at least a second, at most a minute,
/// and the round trip plus four times its variation (at least 5 ms).
const RTO_MIN_US: u32 = 1_000_000;
const RTO_MAX_US: u32 = 60_000_000;
const RTO_MIN_MARGIN_US: u32 = 5_000;

/// TCP header flags.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
/// TCP options.
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_MSS: u8 = 2;
const OPTION_WINDOW_SCALE: u8 = 3;
const OPTION_SACK_PERMITTED: u8 = 4;
const OPTION_TIMESTAMPS: u8 = 8;

/// `tcpi_options` bits (`TCPI_OPT_*`).
pub const INFO_TIMESTAMPS: u8 = 1;
pub const INFO_SACK: u8 = 2;
pub const INFO_WINDOW_SCALE: u8 = 4;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The stack sent it.
    Out,
    /// The stack received it.
    In,
}

/// What one end's SYN offered.
#[derive(Debug, Clone, Copy, Default)]
struct Offer {
    mss: Option<u16>,
    window_scale: Option<u8>,
    sack: bool,
    timestamps: bool,
}

/// A connection's figures, from one end: "sent" is what that end sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// Segments sent and received, and those of them carrying data.
    pub segments_out: u32,
    pub segments_in: u32,
    pub data_segments_out: u32,
    pub data_segments_in: u32,
    /// Data bytes sent, retransmissions included, and those retransmitted.
    pub bytes_sent: u64,
    pub bytes_retransmitted: u64,
    /// Segments sent again, in all and since data was last acknowledged.
    pub retransmissions: u32,
    pub recent_retransmissions: u8,
    /// Segments that arrived beyond a gap.
    pub out_of_order: u32,
    /// The largest data segment received.
    pub largest_received: u32,
    /// Smoothed round trip time and its variation (RFC 6298), and the
    /// smallest sample, in microseconds; `None` before the first sample.
    pub smoothed_rtt_us: Option<u32>,
    pub rtt_variation_us: u32,
    pub min_rtt_us: Option<u32>,
    /// The window the peer last advertised and the one this end did, in
    /// bytes (scaled).
    pub peer_window: u32,
    pub own_window: u32,
    /// When data was last sent and received and an acknowledgement of new
    /// data last came, as smoltcp times (µs since boot).
    pub last_data_sent: Option<Instant>,
    pub last_data_received: Option<Instant>,
    pub last_acknowledgement: Option<Instant>,
    /// The congestion window and slow-start threshold, in bytes (`None`:
    /// no threshold yet).
    pub congestion_window: u32,
    pub slow_start_threshold: Option<u32>,
    /// The end that sent the first SYN.
    pub is_active_opener: bool,
    own: Offer,
    peer: Offer,
    /// This end's initial sequence number, and how far past it the
    /// highest sequence sent and acknowledged reach (the SYN is 1).
    own_initial: Option<u32>,
    highest_sent: u64,
    acknowledged: u64,
    /// How far past the data the FIN, if sent, sits (0 or 1).
    fin_sent: u64,
    /// The peer's initial sequence number and how far past it the highest
    /// sequence received reaches.
    peer_initial: Option<u32>,
    highest_received: u64,
    /// The segment being timed: where it ends, and when it left.
    timing: Option<(u64, Instant)>,
    duplicate_acknowledgements: u8,
    in_fast_recovery: bool,
    in_timeout_recovery: bool,
    /// Whether the handshake finished (a SYN acknowledged each way), and
    /// whether the connection ended (a reset, or both FINs acknowledged).
    is_synchronized: bool,
    is_finished: bool,
    /// Whether the peer's FIN arrived.
    fin_received: bool,
    /// When a segment of this connection last went by (µs since boot).
    last_seen: i64,
}

impl Figures {
    fn new(now: Instant) -> Self {
        Figures {
            congestion_window: 2 * RENO_INITIAL_MSS,
            last_seen: now.total_micros(),
            ..Figures::default()
        }
    }

    /// Bytes the peer acknowledged: every sequence number, counting the
    /// SYN only for the end that connected (as Linux counts them).
    pub fn bytes_acknowledged(&self) -> u64 {
        let syn = u64::from(!self.is_active_opener);
        self.acknowledged.saturating_sub(syn)
    }

    /// Whether the peer's FIN arrived: a connection that closes without
    /// one was reset (or given up on).
    pub fn fin_received(&self) -> bool {
        self.fin_received
    }

    /// Bytes received in order, the FIN included, the SYN not.
    pub fn bytes_received(&self) -> u64 {
        self.highest_received.saturating_sub(1)
    }

    /// Bytes sent and not yet acknowledged.
    pub fn bytes_in_flight(&self) -> u64 {
        self.highest_sent.saturating_sub(self.acknowledged)
    }

    /// The segment size the peer takes (its SYN's MSS, or 536 without
    /// one), and the one this end offered, if the handshake said.
    pub fn peer_mss(&self) -> Option<u32> {
        self.peer_initial?;
        Some(u32::from(self.peer.mss.unwrap_or(536)))
    }

    pub fn own_mss(&self) -> Option<u32> {
        self.own.mss.map(u32::from)
    }

    /// The options both SYNs offered, as `tcpi_options` bits.
    pub fn options(&self) -> u8 {
        let mut bits = 0;
        if self.own.timestamps && self.peer.timestamps {
            bits |= INFO_TIMESTAMPS;
        }
        if self.own.sack && self.peer.sack {
            bits |= INFO_SACK;
        }
        if self.own.window_scale.is_some() && self.peer.window_scale.is_some() {
            bits |= INFO_WINDOW_SCALE;
        }
        bits
    }

    /// The window scales in use: the peer's (for what it advertises) and
    /// this end's; 0 unless both SYNs offered scaling.
    pub fn window_scales(&self) -> (u8, u8) {
        match (self.peer.window_scale, self.own.window_scale) {
            (Some(peer), Some(own)) => (peer, own),
            _ => (0, 0),
        }
    }

    /// The retransmission timeout smoltcp derives from the round trip,
    /// in microseconds (a second until the first sample).
    pub fn retransmission_timeout_us(&self) -> u32 {
        let Some(smoothed) = self.smoothed_rtt_us else { return RTO_MIN_US };
        let margin = RTO_MIN_MARGIN_US.max(self.rtt_variation_us.saturating_mul(4));
        smoothed.saturating_add(margin).clamp(RTO_MIN_US, RTO_MAX_US)
    }

    /// Whether three duplicate acknowledgements started a fast
    /// retransmission not yet over.
    pub fn is_in_fast_recovery(&self) -> bool {
        self.in_fast_recovery
    }

    /// The segment size smoltcp's congestion control counts in.
    fn reno_mss(&self) -> u32 {
        self.peer_mss().unwrap_or(RENO_INITIAL_MSS)
    }

    fn sample_rtt(&mut self, sample_us: u32) {
        match self.smoothed_rtt_us {
            None => {
                self.smoothed_rtt_us = Some(sample_us);
                self.rtt_variation_us = sample_us / 2;
            }
            Some(smoothed) => {
                let difference = smoothed.abs_diff(sample_us);
                self.rtt_variation_us = (self.rtt_variation_us.saturating_mul(3) + difference).div_ceil(4);
                self.smoothed_rtt_us = Some((smoothed.saturating_mul(7) + sample_us).div_ceil(8));
            }
        }
        self.min_rtt_us = Some(self.min_rtt_us.map_or(sample_us, |least| least.min(sample_us)));
    }

    /// The peer acknowledged `length` more bytes (RFC 5681 as smoltcp's
    /// Reno has it: a segment's worth per acknowledgement in slow start,
    /// about one per round trip after).
    fn grow_window(&mut self, length: u32, peer_window: u32) {
        self.in_timeout_recovery = false;
        let mss = self.reno_mss();
        let limit = peer_window.max(RENO_INITIAL_PEER_WINDOW);
        if self.in_fast_recovery {
            self.in_fast_recovery = false;
            self.congestion_window = self.slow_start_threshold.unwrap_or(self.congestion_window);
            return;
        }
        let increase = if self.slow_start_threshold.is_none_or(|threshold| self.congestion_window < threshold)
        {
            length.min(mss)
        } else {
            (mss.saturating_mul(mss) / self.congestion_window.max(1)).max(1)
        };
        self.congestion_window = self.congestion_window.saturating_add(increase).min(limit).max(mss);
    }

    /// A retransmission: after three duplicate acknowledgements a fast one
    /// (half the flight, plus three segments), otherwise the timer's (one
    /// segment, slow start again).
    fn shrink_window(&mut self) {
        let mss = self.reno_mss();
        let half_flight = (self.bytes_in_flight().min(u64::from(u32::MAX)) as u32 / 2).max(2 * mss);
        if self.duplicate_acknowledgements >= 3 {
            if !self.in_fast_recovery {
                self.slow_start_threshold = Some(half_flight);
                self.congestion_window = half_flight.saturating_add(3 * mss);
                self.in_fast_recovery = true;
            }
        } else {
            if !self.in_timeout_recovery {
                self.slow_start_threshold = Some(half_flight);
                self.in_timeout_recovery = true;
            }
            self.congestion_window = mss;
            self.in_fast_recovery = false;
        }
    }
}

/// A TCP segment's header fields the ledger follows.
#[derive(Debug, Clone, Copy)]
struct Segment {
    source: SocketAddr,
    destination: SocketAddr,
    sequence: u32,
    acknowledgement: u32,
    flags: u8,
    window: u16,
    payload: u32,
    offer: Offer,
}

/// The figures of every connection followed, by (local, remote) end.
#[derive(Debug, Default)]
pub struct Ledger {
    connections: BTreeMap<(SocketAddr, SocketAddr), Figures>,
}

/// The 64-bit position of the 32-bit sequence offset `offset` nearest
/// `reference`.
fn unwrap(reference: u64, offset: u32) -> u64 {
    let candidate = (reference & !0xffff_ffff) | u64::from(offset);
    if candidate > reference && candidate - reference > 1 << 31 && candidate >= 1 << 32 {
        candidate - (1 << 32)
    } else if candidate < reference && reference - candidate > 1 << 31 {
        candidate + (1 << 32)
    } else {
        candidate
    }
}

impl Ledger {
    /// The figures of the connection from `local` to `remote`.
    pub fn figures(&self, local: SocketAddr, remote: SocketAddr) -> Option<&Figures> {
        self.connections.get(&(local, remote))
    }

    /// Forgets the connection from `local` to `remote`.
    pub fn forget(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.connections.remove(&(local, remote));
    }

    /// How many connections are followed.
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// Whether no connection is followed.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// Counts the Ethernet `frame` that went `direction` at `now`, if it
    /// holds a TCP segment.
    pub fn note(&mut self, frame: &[u8], direction: Direction, now: Instant) {
        let Some(segment) = parse(frame) else { return };
        let key = match direction {
            Direction::Out => (segment.source, segment.destination),
            Direction::In => (segment.destination, segment.source),
        };
        let is_opening = segment.flags & (SYN | RST) == SYN;
        let is_fresh_connect = is_opening && segment.flags & ACK == 0;
        if is_fresh_connect && self.connections.get(&key).is_some_and(|figures| figures.is_synchronized) {
            // The same ends again: a new connection.
            self.connections.remove(&key);
        }
        if !self.connections.contains_key(&key) {
            if !is_opening {
                return;
            }
            if self.connections.len() >= CAPACITY {
                self.forget_quietest();
            }
            let mut figures = Figures::new(now);
            figures.is_active_opener = (segment.flags & ACK == 0) == (direction == Direction::Out);
            self.connections.insert(key, figures);
        }
        let Some(figures) = self.connections.get_mut(&key) else { return };
        figures.last_seen = now.total_micros();
        match direction {
            Direction::Out => note_sent(figures, &segment, now),
            Direction::In => note_received(figures, &segment, now),
        }
        if segment.flags & RST != 0 {
            if !figures.is_synchronized {
                // Refused or abandoned before it was ever a connection.
                self.connections.remove(&key);
                return;
            }
            figures.is_finished = true;
        }
        let is_fin_acknowledged = figures.fin_sent == 1 && figures.acknowledged == figures.highest_sent;
        if is_fin_acknowledged && figures.fin_received {
            figures.is_finished = true;
        }
    }

    /// Forgets a connection to make room: one that ended if there is one,
    /// else the one quiet longest.
    fn forget_quietest(&mut self) {
        let quietest = self
            .connections
            .iter()
            .min_by_key(|(_, figures)| (!figures.is_finished, figures.last_seen))
            .map(|(key, _)| *key);
        if let Some(key) = quietest {
            self.connections.remove(&key);
        }
    }
}

fn note_sent(figures: &mut Figures, segment: &Segment, now: Instant) {
    figures.segments_out = figures.segments_out.wrapping_add(1);
    if segment.flags & SYN != 0 {
        figures.own = segment.offer;
        if figures.own_initial.is_none() {
            figures.own_initial = Some(segment.sequence);
        }
    }
    let Some(initial) = figures.own_initial else { return };
    if segment.flags & SYN == 0 {
        let (_, own_scale) = figures.window_scales();
        figures.own_window = u32::from(segment.window) << own_scale;
    }
    let start = unwrap(figures.highest_sent, segment.sequence.wrapping_sub(initial));
    let syn = u64::from(segment.flags & SYN != 0);
    let fin = u64::from(segment.flags & FIN != 0);
    let end = start + syn + u64::from(segment.payload) + fin;
    if segment.payload > 0 {
        figures.data_segments_out = figures.data_segments_out.wrapping_add(1);
        figures.bytes_sent += u64::from(segment.payload);
        figures.last_data_sent = Some(now);
    }
    if end == start {
        return;
    }
    if start < figures.highest_sent {
        // Sent before: Karn's rule, no timing through a retransmission.
        let again = figures.highest_sent.min(end) - start;
        figures.retransmissions = figures.retransmissions.wrapping_add(1);
        figures.recent_retransmissions = figures.recent_retransmissions.saturating_add(1);
        figures.bytes_retransmitted += again.min(u64::from(segment.payload));
        figures.timing = None;
        if start == figures.acknowledged {
            figures.shrink_window();
        }
    } else if figures.timing.is_none() {
        figures.timing = Some((end, now));
    }
    if fin != 0 {
        figures.fin_sent = 1;
    }
    figures.highest_sent = figures.highest_sent.max(end);
}

fn note_received(figures: &mut Figures, segment: &Segment, now: Instant) {
    figures.segments_in = figures.segments_in.wrapping_add(1);
    if segment.flags & SYN != 0 {
        figures.peer = segment.offer;
        if figures.peer_initial.is_none() {
            figures.peer_initial = Some(segment.sequence);
            figures.highest_received = 1;
        }
    }
    if let Some(initial) = figures.peer_initial {
        let start = unwrap(figures.highest_received, segment.sequence.wrapping_sub(initial));
        if segment.payload > 0 {
            figures.data_segments_in = figures.data_segments_in.wrapping_add(1);
            figures.largest_received = figures.largest_received.max(segment.payload);
            figures.last_data_received = Some(now);
            if start > figures.highest_received {
                figures.out_of_order = figures.out_of_order.wrapping_add(1);
            }
        }
        let fin = segment.flags & FIN != 0;
        let end = start + u64::from(segment.payload) + u64::from(fin);
        if start <= figures.highest_received {
            figures.highest_received = figures.highest_received.max(end);
            figures.fin_received |= fin;
        }
    }
    let (Some(initial), true) = (figures.own_initial, segment.flags & ACK != 0) else { return };
    let (peer_scale, _) = figures.window_scales();
    let scale = if segment.flags & SYN != 0 { 0 } else { peer_scale };
    let window = u32::from(segment.window) << scale;
    let window_changed = window != figures.peer_window;
    figures.peer_window = window;
    let acknowledged = unwrap(figures.acknowledged, segment.acknowledgement.wrapping_sub(initial));
    if acknowledged > figures.acknowledged && acknowledged <= figures.highest_sent {
        let newly = acknowledged - figures.acknowledged;
        figures.acknowledged = acknowledged;
        figures.is_synchronized |= acknowledged >= 1 && figures.peer_initial.is_some();
        figures.last_acknowledgement = Some(now);
        figures.recent_retransmissions = 0;
        figures.duplicate_acknowledgements = 0;
        if let Some((end, sent)) = figures.timing
            && acknowledged >= end
        {
            let sample = (now - sent).total_micros().clamp(1, u64::from(u32::MAX));
            figures.sample_rtt(sample as u32);
            figures.timing = None;
        }
        figures.grow_window(newly.min(u64::from(u32::MAX)) as u32, window);
    } else if acknowledged == figures.acknowledged
        && segment.payload == 0
        && segment.flags & (SYN | FIN) == 0
        && acknowledged < figures.highest_sent
        && !window_changed
    {
        figures.duplicate_acknowledgements = figures.duplicate_acknowledgements.saturating_add(1);
        if figures.in_fast_recovery {
            let mss = figures.reno_mss();
            figures.congestion_window = figures.congestion_window.saturating_add(mss);
        }
    }
}

/// The TCP segment in an Ethernet frame, if it holds one.
fn parse(frame: &[u8]) -> Option<Segment> {
    const ETHERNET_HEADER: usize = 14;
    const TCP: u8 = 6;
    let ethertype = frame.get(12..14)?;
    let packet = frame.get(ETHERNET_HEADER..)?;
    let (source, destination, transport) = match ethertype {
        [0x08, 0x00] => {
            let header_length = usize::from(packet.first()? & 0x0f) * 4;
            let total_length = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
            // Not a fragment after the first, and TCP.
            let fragment_offset = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
            if *packet.get(9)? != TCP || fragment_offset != 0 || header_length < 20 {
                return None;
            }
            let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
            let destination: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            let transport = packet.get(header_length..total_length.min(packet.len()))?;
            (IpAddr::V4(Ipv4Addr::from(source)), IpAddr::V4(Ipv4Addr::from(destination)), transport)
        }
        [0x86, 0xdd] => {
            // Only segments straight after the fixed header.
            if *packet.get(6)? != TCP {
                return None;
            }
            let payload_length = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
            let source: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
            let destination: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            let transport = packet.get(40..(40 + payload_length).min(packet.len()))?;
            (IpAddr::V6(Ipv6Addr::from(source)), IpAddr::V6(Ipv6Addr::from(destination)), transport)
        }
        _ => return None,
    };
    let word =
        |at: usize| -> Option<u32> { Some(u32::from_be_bytes(transport.get(at..at + 4)?.try_into().ok()?)) };
    let source_port = u16::from_be_bytes([*transport.first()?, *transport.get(1)?]);
    let destination_port = u16::from_be_bytes([*transport.get(2)?, *transport.get(3)?]);
    let header_length = usize::from(transport.get(12)? >> 4) * 4;
    if header_length < 20 || header_length > transport.len() {
        return None;
    }
    let flags = *transport.get(13)?;
    let offer = if flags & SYN != 0 { parse_offer(&transport[20..header_length]) } else { Offer::default() };
    Some(Segment {
        source: SocketAddr::new(source, source_port),
        destination: SocketAddr::new(destination, destination_port),
        sequence: word(4)?,
        acknowledgement: word(8)?,
        flags,
        window: u16::from_be_bytes([*transport.get(14)?, *transport.get(15)?]),
        payload: (transport.len() - header_length) as u32,
        offer,
    })
}

/// What a SYN's options offer.
fn parse_offer(mut options: &[u8]) -> Offer {
    let mut offer = Offer::default();
    while let Some(&kind) = options.first() {
        match kind {
            OPTION_END => break,
            OPTION_NOP => {
                options = &options[1..];
                continue;
            }
            _ => {}
        }
        let Some(&length) = options.get(1) else { break };
        let length = usize::from(length);
        if length < 2 || length > options.len() {
            break;
        }
        let value = &options[2..length];
        match (kind, value) {
            (OPTION_MSS, [high, low]) => offer.mss = Some(u16::from_be_bytes([*high, *low])),
            (OPTION_WINDOW_SCALE, [shift]) => offer.window_scale = Some(core::cmp::min(*shift, 14)),
            (OPTION_SACK_PERMITTED, []) => offer.sack = true,
            (OPTION_TIMESTAMPS, _) => offer.timestamps = true,
            _ => {}
        }
        options = &options[length..];
    }
    offer
}

#[cfg(test)]
mod tests;
