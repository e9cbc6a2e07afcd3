//! The virtio network device's features, configuration and header (§5.1).
//!
//! Every frame travels behind a `virtio_net_hdr` that asks for, or
//! reports, checksum and segmentation offloads. Its size depends on the
//! interface: [`header_size`]. Queue 0 receives frames, queue 1 transmits
//! them; further pairs exist only with `MQ`.

use crate::spec;

/// The first receive queue (`receiveq1`).
pub const RECEIVE_QUEUE: u16 = 0;
/// The first transmit queue (`transmitq1`).
pub const TRANSMIT_QUEUE: u16 = 1;

/// Network device feature bits (§5.1.3).
pub mod feature {
    /// The device computes checksums of frames the driver sends partly
    /// summed (`NEEDS_CSUM`).
    pub const CSUM: u64 = 1 << 0;
    /// The driver accepts frames whose checksum is left partly summed.
    pub const GUEST_CSUM: u64 = 1 << 1;
    /// Offloads can be switched on the control queue.
    pub const CTRL_GUEST_OFFLOADS: u64 = 1 << 2;
    /// `mtu` in the configuration is valid.
    pub const MTU: u64 = 1 << 3;
    /// `mac` in the configuration is valid.
    pub const MAC: u64 = 1 << 5;
    /// The driver accepts TCP segments larger than the MTU over IPv4.
    pub const GUEST_TSO4: u64 = 1 << 7;
    /// The driver accepts TCP segments larger than the MTU over IPv6.
    pub const GUEST_TSO6: u64 = 1 << 8;
    /// The driver accepts large TCP segments with ECN.
    pub const GUEST_ECN: u64 = 1 << 9;
    /// The driver accepts UDP datagrams larger than the MTU.
    pub const GUEST_UFO: u64 = 1 << 10;
    /// The device splits large TCP segments over IPv4.
    pub const HOST_TSO4: u64 = 1 << 11;
    /// The device splits large TCP segments over IPv6.
    pub const HOST_TSO6: u64 = 1 << 12;
    /// The device splits large TCP segments with ECN.
    pub const HOST_ECN: u64 = 1 << 13;
    /// The device fragments large UDP datagrams.
    pub const HOST_UFO: u64 = 1 << 14;
    /// A received frame may span several buffers (`num_buffers`).
    pub const MRG_RXBUF: u64 = 1 << 15;
    /// `status` in the configuration is valid.
    pub const STATUS: u64 = 1 << 16;
    /// The device has a control queue.
    pub const CTRL_VQ: u64 = 1 << 17;
    /// Receive filtering modes on the control queue.
    pub const CTRL_RX: u64 = 1 << 18;
    /// VLAN filtering on the control queue.
    pub const CTRL_VLAN: u64 = 1 << 19;
    /// The driver can announce itself after a migration.
    pub const GUEST_ANNOUNCE: u64 = 1 << 21;
    /// Several receive/transmit queue pairs.
    pub const MQ: u64 = 1 << 22;
    /// The MAC address can be set on the control queue.
    pub const CTRL_MAC_ADDR: u64 = 1 << 23;
}

/// Offsets in the device configuration (§5.1.4).
pub mod config {
    /// `mac: [u8; 6]`, valid with `MAC`.
    pub const MAC: usize = 0;
    /// `status: u16`, valid with `STATUS`.
    pub const STATUS: usize = 6;
    /// `max_virtqueue_pairs: u16`, valid with `MQ`.
    pub const MAX_VIRTQUEUE_PAIRS: usize = 8;
    /// `mtu: u16`, valid with `MTU`.
    pub const MTU: usize = 10;
}

/// Bits of the configuration's `status` (§5.1.4).
pub mod status {
    /// The link is up.
    pub const LINK_UP: u16 = 1;
    /// The driver is asked to announce itself.
    pub const ANNOUNCE: u16 = 2;
}

/// Bits of the header's `flags` (§5.1.6).
pub mod header_flags {
    /// The checksum at `csum_start + csum_offset` is still to be computed.
    pub const NEEDS_CSUM: u8 = 1;
    /// The device checked the frame's checksum (receive only).
    pub const DATA_VALID: u8 = 2;
    /// The header carries coalescing information (receive only).
    pub const RSC_INFO: u8 = 4;
}

/// Values of the header's `gso_type` (§5.1.6).
pub mod gso_type {
    /// No segmentation: the frame goes out as it is.
    pub const NONE: u8 = 0;
    /// TCP over IPv4.
    pub const TCPV4: u8 = 1;
    /// UDP fragmentation.
    pub const UDP: u8 = 3;
    /// TCP over IPv6.
    pub const TCPV6: u8 = 4;
    /// UDP segmentation.
    pub const UDP_L4: u8 = 5;
    /// Added to the above: the segment has ECN's congestion bit.
    pub const ECN: u8 = 0x80;
}

/// Bytes of the header with `num_buffers`.
pub const HEADER_SIZE: usize = 12;
/// Bytes of the header without `num_buffers`, as legacy devices expect it
/// unless `MRG_RXBUF` is negotiated.
pub const LEGACY_HEADER_SIZE: usize = 10;

/// Bytes of the header in front of every frame, given the negotiated
/// `features` and whether the device uses the legacy interface: the
/// `num_buffers` field is there on any virtio 1.0 device, and on a legacy
/// one only with `MRG_RXBUF` (§5.1.6, legacy interface notes).
pub fn header_size(features: u64, is_legacy: bool) -> usize {
    let has_buffer_count = !is_legacy || features & (spec::feature::VERSION_1 | feature::MRG_RXBUF) != 0;
    if has_buffer_count { HEADER_SIZE } else { LEGACY_HEADER_SIZE }
}

/// The `virtio_net_hdr` in front of a frame (§5.1.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    /// [`header_flags`].
    pub flags: u8,
    /// [`gso_type`].
    pub gso_type: u8,
    /// Bytes of the protocol headers, for segmentation (`hdr_len`).
    pub header_length: u16,
    /// Bytes of payload per segment (`gso_size`).
    pub segment_size: u16,
    /// Where checksumming starts (`csum_start`).
    pub checksum_start: u16,
    /// Where the checksum goes, from `checksum_start` (`csum_offset`).
    pub checksum_offset: u16,
    /// Buffers a received frame spans (`num_buffers`); 0 when transmitting.
    pub buffer_count: u16,
}

impl Header {
    /// No offload asked for: the frame is complete, checksums included, and
    /// goes out in one piece. Every field is zero.
    pub const NO_OFFLOAD: Header = Header {
        flags: 0,
        gso_type: gso_type::NONE,
        header_length: 0,
        segment_size: 0,
        checksum_start: 0,
        checksum_offset: 0,
        buffer_count: 0,
    };

    /// The header as the device reads it (little-endian). A driver whose
    /// [`header_size`] is [`LEGACY_HEADER_SIZE`] sends the first 10 bytes,
    /// which leave out `num_buffers`.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0u8; HEADER_SIZE];
        bytes[0] = self.flags;
        bytes[1] = self.gso_type;
        bytes[2..4].copy_from_slice(&self.header_length.to_le_bytes());
        bytes[4..6].copy_from_slice(&self.segment_size.to_le_bytes());
        bytes[6..8].copy_from_slice(&self.checksum_start.to_le_bytes());
        bytes[8..10].copy_from_slice(&self.checksum_offset.to_le_bytes());
        bytes[10..12].copy_from_slice(&self.buffer_count.to_le_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_has_num_buffers_unless_legacy_without_mergeable_buffers() {
        assert_eq!(header_size(0, false), 12);
        assert_eq!(header_size(spec::feature::VERSION_1, false), 12);
        assert_eq!(header_size(0, true), 10);
        assert_eq!(header_size(feature::MAC | feature::STATUS | feature::MTU, true), 10);
        assert_eq!(header_size(feature::MRG_RXBUF, true), 12);
        assert_eq!(header_size(spec::feature::VERSION_1, true), 12);
    }

    #[test]
    fn no_offload_is_all_zeros() {
        assert_eq!(Header::NO_OFFLOAD.encode(), [0; HEADER_SIZE]);
        assert_eq!(Header::default(), Header::NO_OFFLOAD);
    }

    #[test]
    fn fields_are_little_endian_at_their_offsets() {
        let header = Header {
            flags: header_flags::NEEDS_CSUM,
            gso_type: gso_type::TCPV4 | gso_type::ECN,
            header_length: 0x0102,
            segment_size: 0x0304,
            checksum_start: 0x0506,
            checksum_offset: 0x0708,
            buffer_count: 0x090a,
        };
        assert_eq!(header.encode(), [1, 0x81, 2, 1, 4, 3, 6, 5, 8, 7, 0x0a, 0x09]);
    }

    #[test]
    fn numbers_follow_the_specification() {
        assert_eq!((RECEIVE_QUEUE, TRANSMIT_QUEUE), (0, 1));
        let bits = [
            (feature::CSUM, 0),
            (feature::GUEST_CSUM, 1),
            (feature::MTU, 3),
            (feature::MAC, 5),
            (feature::GUEST_TSO4, 7),
            (feature::HOST_TSO4, 11),
            (feature::MRG_RXBUF, 15),
            (feature::STATUS, 16),
            (feature::CTRL_VQ, 17),
            (feature::MQ, 22),
        ];
        for (value, bit) in bits {
            assert_eq!(value, 1 << bit, "feature bit {bit}");
        }
        assert_eq!((config::MAC, config::STATUS, config::MAX_VIRTQUEUE_PAIRS, config::MTU), (0, 6, 8, 10));
        assert_eq!(status::LINK_UP, 1);
    }
}
