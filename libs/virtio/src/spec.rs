//! Transport-independent virtio constants (virtio 1.2 §2, §5, §6).

/// Device status bits (§2.1).
pub mod status {
    /// The driver has noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The driver knows how to drive the device.
    pub const DRIVER: u8 = 2;
    /// The driver is ready: the device may use its queues.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    /// The driver gave up on the device.
    pub const FAILED: u8 = 128;
}

/// Feature bits shared by all device types (§6).
pub mod feature {
    /// Legacy interface only: the device takes a message split across
    /// descriptors in any way, so a request header need not have a
    /// descriptor of its own (§6.3). virtio 1.0 devices always do.
    pub const ANY_LAYOUT: u64 = 1 << 27;
    /// Descriptors may point at tables of descriptors (§2.7.5.3).
    pub const INDIRECT_DESC: u64 = 1 << 28;
    /// The `used_event` and `avail_event` fields suppress notifications
    /// (§2.7.10).
    pub const EVENT_IDX: u64 = 1 << 29;
    /// The device follows virtio 1.0 or later, not the legacy interface.
    pub const VERSION_1: u64 = 1 << 32;
    /// The device reaches memory through an IOMMU or other translation.
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
    /// Packed virtqueues are offered.
    pub const RING_PACKED: u64 = 1 << 34;
}

/// Device types (§5), as the transports report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// Network card (1).
    Network,
    /// Block device (2).
    Block,
    /// Console (3).
    Console,
    /// Entropy source (4).
    Entropy,
    /// 9P transport (9): a host's file server, reached with 9P messages.
    NinePTransport,
    /// Socket device (19): stream connections to the host (vsock).
    Socket,
    /// Any other device type.
    Other(u32),
}

impl DeviceType {
    /// The type with virtio device id `id`.
    pub fn from_id(id: u32) -> Self {
        match id {
            1 => DeviceType::Network,
            2 => DeviceType::Block,
            3 => DeviceType::Console,
            4 => DeviceType::Entropy,
            9 => DeviceType::NinePTransport,
            19 => DeviceType::Socket,
            other => DeviceType::Other(other),
        }
    }

    /// The virtio device id.
    pub fn id(self) -> u32 {
        match self {
            DeviceType::Network => 1,
            DeviceType::Block => 2,
            DeviceType::Console => 3,
            DeviceType::Entropy => 4,
            DeviceType::NinePTransport => 9,
            DeviceType::Socket => 19,
            DeviceType::Other(id) => id,
        }
    }
}

impl core::fmt::Display for DeviceType {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceType::Network => formatter.write_str("network"),
            DeviceType::Block => formatter.write_str("block"),
            DeviceType::Console => formatter.write_str("console"),
            DeviceType::Entropy => formatter.write_str("entropy"),
            DeviceType::NinePTransport => formatter.write_str("9P transport"),
            DeviceType::Socket => formatter.write_str("socket"),
            DeviceType::Other(id) => write!(formatter, "type {id}"),
        }
    }
}

/// Descriptor flags (§2.7.5).
pub mod descriptor_flags {
    /// The chain continues in the `next` field.
    pub const NEXT: u16 = 1;
    /// The device writes the buffer (otherwise it reads it).
    pub const WRITE: u16 = 2;
    /// The buffer is a table of descriptors.
    pub const INDIRECT: u16 = 4;
}

/// `flags` of the available ring: the driver needs no interrupt (§2.7.7).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `flags` of the used ring: the device needs no notification (§2.7.7).
pub const USED_F_NO_NOTIFY: u16 = 1;

/// Whether an event index asks for a notification: the other side wants one
/// once the index passes `event`, and it moved from `old` to `new` (§2.7.10,
/// all arithmetic modulo 2^16).
pub fn needs_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}
