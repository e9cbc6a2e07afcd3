//! The virtio socket device (device id 19, virtio 1.2 §5.10): stream
//! connections between the guest and its host, addressed by context id
//! (CID) and port.
//!
//! Three queues: the device fills the receive queue's buffers with
//! packets, the driver sends packets through the transmit queue, and the
//! event queue carries transport resets. Every packet starts with the
//! 44-byte [`Header`]; `RW` packets carry data after it. Each side tells
//! the other how much it may send with [`Credit`]: the bytes of its
//! receive buffer (`buf_alloc`) and the bytes it has taken out of that
//! buffer so far (`fwd_cnt`), so a sender never sends what the receiver
//! has no room for (§5.10.6.3). Both the kernel's driver and the built-in
//! monitor's device keep their accounts with it.

/// The index of the receive queue (device to driver).
pub const RECEIVE_QUEUE: u16 = 0;
/// The index of the transmit queue (driver to device).
pub const TRANSMIT_QUEUE: u16 = 1;
/// The index of the event queue.
pub const EVENT_QUEUE: u16 = 2;

/// The virtio device id.
pub const DEVICE_ID: u32 = 19;

/// Offsets in the device configuration.
pub mod config {
    /// `guest_cid: le64`, the guest's context id.
    pub const GUEST_CID: usize = 0;
}

/// Well-known context ids (Linux `uapi/linux/vm_sockets.h`).
pub mod cid {
    /// Any address (`VMADDR_CID_ANY`, for `bind`).
    pub const ANY: u32 = u32::MAX;
    /// The hypervisor (`VMADDR_CID_HYPERVISOR`).
    pub const HYPERVISOR: u32 = 0;
    /// Local communication (`VMADDR_CID_LOCAL`).
    pub const LOCAL: u32 = 1;
    /// The host (`VMADDR_CID_HOST`).
    pub const HOST: u32 = 2;
}

/// Any port (`VMADDR_PORT_ANY`).
pub const PORT_ANY: u32 = u32::MAX;

/// The socket type of a stream packet (`VIRTIO_VSOCK_TYPE_STREAM`).
pub const TYPE_STREAM: u16 = 1;

/// Packet operations (§5.10.6).
pub mod op {
    /// Not a valid operation.
    pub const INVALID: u16 = 0;
    /// Asks for a connection.
    pub const REQUEST: u16 = 1;
    /// Accepts a connection.
    pub const RESPONSE: u16 = 2;
    /// Refuses or ends a connection at once.
    pub const RST: u16 = 3;
    /// Announces that a side receives or sends no more (`flags`).
    pub const SHUTDOWN: u16 = 4;
    /// Carries data.
    pub const RW: u16 = 5;
    /// Tells the peer the sender's credit.
    pub const CREDIT_UPDATE: u16 = 6;
    /// Asks the peer for its credit.
    pub const CREDIT_REQUEST: u16 = 7;
}

/// `flags` of a `SHUTDOWN` packet.
pub mod shutdown {
    /// The sender receives no more.
    pub const RECEIVE: u32 = 1;
    /// The sender sends no more.
    pub const SEND: u32 = 2;
}

/// Bytes of a packet header.
pub const HEADER_SIZE: usize = 44;

/// The header in front of every packet (`struct virtio_vsock_hdr`, all
/// fields little-endian).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// The sender's context id.
    pub source_cid: u64,
    /// The receiver's context id.
    pub destination_cid: u64,
    /// The sender's port.
    pub source_port: u32,
    /// The receiver's port.
    pub destination_port: u32,
    /// Bytes of data after the header.
    pub length: u32,
    /// The socket type ([`TYPE_STREAM`]).
    pub socket_type: u16,
    /// The operation ([`op`]).
    pub op: u16,
    /// Operation flags ([`shutdown`] for `SHUTDOWN`).
    pub flags: u32,
    /// The sender's receive buffer, in bytes.
    pub buffer_allocation: u32,
    /// Bytes the sender has taken out of its receive buffer so far.
    pub forwarded_count: u32,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0u8; HEADER_SIZE];
        bytes[0..8].copy_from_slice(&self.source_cid.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.destination_cid.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.source_port.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.destination_port.to_le_bytes());
        bytes[24..28].copy_from_slice(&self.length.to_le_bytes());
        bytes[28..30].copy_from_slice(&self.socket_type.to_le_bytes());
        bytes[30..32].copy_from_slice(&self.op.to_le_bytes());
        bytes[32..36].copy_from_slice(&self.flags.to_le_bytes());
        bytes[36..40].copy_from_slice(&self.buffer_allocation.to_le_bytes());
        bytes[40..44].copy_from_slice(&self.forwarded_count.to_le_bytes());
        bytes
    }

    /// The header at the start of `bytes`; `None` when they are too few.
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let bytes: &[u8; HEADER_SIZE] = bytes.get(..HEADER_SIZE)?.try_into().ok()?;
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap_or_default());
        Some(Header {
            source_cid: u64_at(0),
            destination_cid: u64_at(8),
            source_port: u32_at(16),
            destination_port: u32_at(20),
            length: u32_at(24),
            socket_type: u16_at(28),
            op: u16_at(30),
            flags: u32_at(32),
            buffer_allocation: u32_at(36),
            forwarded_count: u32_at(40),
        })
    }

    /// The header of a packet answering this one: addresses swapped, the
    /// given operation, no data.
    pub fn reply(&self, op: u16) -> Header {
        Header {
            source_cid: self.destination_cid,
            destination_cid: self.source_cid,
            source_port: self.destination_port,
            destination_port: self.source_port,
            length: 0,
            socket_type: TYPE_STREAM,
            op,
            flags: 0,
            buffer_allocation: 0,
            forwarded_count: 0,
        }
    }
}

/// One connection's flow-control accounts (§5.10.6.3): what this side may
/// still send, and when it should tell the peer about room it made.
///
/// Counters wrap at 2^32, as the header's fields do; differences are taken
/// modulo 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    /// This side's receive buffer, in bytes (its `buf_alloc`).
    pub buffer_bytes: u32,
    /// Bytes taken out of this side's receive buffer so far (`fwd_cnt`).
    pub forwarded: u32,
    /// `forwarded` as the peer last heard it.
    reported_forwarded: u32,
    /// Bytes received and not yet taken out.
    pub queued: u32,
    /// The peer's receive buffer, as it last said.
    peer_buffer_bytes: u32,
    /// Bytes the peer has taken out of its buffer, as it last said.
    peer_forwarded: u32,
    /// Bytes this side has sent so far (`tx_cnt`).
    sent: u32,
}

impl Credit {
    /// The accounts of a new connection with a receive buffer of
    /// `buffer_bytes`; the peer's buffer is unknown (none) until its first
    /// packet.
    pub fn new(buffer_bytes: u32) -> Credit {
        Credit {
            buffer_bytes,
            forwarded: 0,
            reported_forwarded: 0,
            queued: 0,
            peer_buffer_bytes: 0,
            peer_forwarded: 0,
            sent: 0,
        }
    }

    /// Takes the peer's credit from a packet it sent.
    pub fn update_from(&mut self, header: &Header) {
        self.peer_buffer_bytes = header.buffer_allocation;
        self.peer_forwarded = header.forwarded_count;
    }

    /// Writes this side's credit into a packet about to go out; the peer
    /// then knows of all the room made so far.
    pub fn stamp(&mut self, header: &mut Header) {
        header.buffer_allocation = self.buffer_bytes;
        header.forwarded_count = self.forwarded;
        self.reported_forwarded = self.forwarded;
    }

    /// Bytes the peer has room for: its buffer less what is in flight.
    /// A peer that forwarded more than was sent (a broken one) gets none.
    pub fn peer_room(&self) -> u32 {
        let in_flight = self.sent.wrapping_sub(self.peer_forwarded);
        self.peer_buffer_bytes.saturating_sub(in_flight)
    }

    /// Records `count` bytes sent; the caller sent no more than
    /// [`Credit::peer_room`].
    pub fn record_sent(&mut self, count: u32) {
        self.sent = self.sent.wrapping_add(count);
    }

    /// Records `count` bytes received; false (and nothing recorded) when
    /// they do not fit this side's buffer, which a peer that respects the
    /// credit never causes.
    pub fn record_received(&mut self, count: u32) -> bool {
        match self.queued.checked_add(count) {
            Some(queued) if queued <= self.buffer_bytes => {
                self.queued = queued;
                true
            }
            _ => false,
        }
    }

    /// Records `count` queued bytes taken out (read by the application,
    /// or written on by a forwarder).
    pub fn record_forwarded(&mut self, count: u32) {
        let count = count.min(self.queued);
        self.queued -= count;
        self.forwarded = self.forwarded.wrapping_add(count);
    }

    /// Whether the peer should hear of room made since its last news: once
    /// a quarter of the buffer has been freed unannounced, so that a
    /// sender waiting for room goes on while half of the buffer or more is
    /// still free to it.
    pub fn should_update(&self) -> bool {
        self.forwarded.wrapping_sub(self.reported_forwarded) >= (self.buffer_bytes / 4).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_survives_encoding() {
        let header = Header {
            source_cid: 3,
            destination_cid: 2,
            source_port: 1234,
            destination_port: 8080,
            length: 5,
            socket_type: TYPE_STREAM,
            op: op::RW,
            flags: shutdown::SEND,
            buffer_allocation: 65536,
            forwarded_count: 77,
        };
        let bytes = header.encode();
        assert_eq!(&bytes[0..8], &3u64.to_le_bytes());
        assert_eq!(&bytes[30..32], &5u16.to_le_bytes());
        assert_eq!(Header::decode(&bytes), Some(header));
        assert_eq!(Header::decode(&bytes[..43]), None);
        let reply = header.reply(op::RST);
        assert_eq!((reply.source_cid, reply.destination_port, reply.length), (2, 1234, 0));
    }

    #[test]
    fn a_sender_never_exceeds_the_peers_buffer() {
        let mut sender = Credit::new(1000);
        let mut receiver = Credit::new(100);
        let mut header = Header::default();
        assert_eq!(sender.peer_room(), 0, "nothing before the peer speaks");
        receiver.stamp(&mut header);
        sender.update_from(&header);
        assert_eq!(sender.peer_room(), 100);
        sender.record_sent(60);
        assert!(receiver.record_received(60));
        assert_eq!(sender.peer_room(), 40);
        sender.record_sent(40);
        assert!(receiver.record_received(40));
        assert_eq!(sender.peer_room(), 0);
        assert!(!receiver.record_received(1), "a byte beyond the buffer is refused");
        receiver.record_forwarded(20);
        assert!(!receiver.should_update(), "20 of 100 is below a quarter");
        receiver.record_forwarded(10);
        assert!(receiver.should_update());
        receiver.stamp(&mut header);
        assert!(!receiver.should_update());
        sender.update_from(&header);
        assert_eq!(sender.peer_room(), 30);
    }

    #[test]
    fn the_counters_wrap() {
        let mut sender = Credit::new(0);
        sender.sent = u32::MAX - 10;
        let header = Header { buffer_allocation: 100, forwarded_count: u32::MAX - 30, ..Header::default() };
        sender.update_from(&header);
        assert_eq!(sender.peer_room(), 80);
        sender.record_sent(50);
        assert_eq!(sender.peer_room(), 30);
    }

    #[test]
    fn a_peer_claiming_more_than_was_sent_gets_nothing() {
        let mut sender = Credit::new(0);
        sender.record_sent(10);
        let header = Header { buffer_allocation: 100, forwarded_count: 50, ..Header::default() };
        sender.update_from(&header);
        assert_eq!(sender.peer_room(), 0);
    }
}
