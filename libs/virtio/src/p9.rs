//! The virtio 9P transport (device id 9): 9P messages to a host's files.
//!
//! One request queue: each chain carries a 9P request (device-readable)
//! and room for its reply (device-writable). The configuration names the
//! share with a mount tag (`VIRTIO_9P_MOUNT_TAG`).

/// The index of the request queue.
pub const REQUEST_QUEUE: u16 = 0;

/// 9P transport feature bits.
pub mod feature {
    /// The configuration holds a mount tag.
    pub const MOUNT_TAG: u64 = 1 << 0;
}

/// Offsets in the device configuration.
pub mod config {
    /// `tag_len: u16`, the mount tag's length in bytes.
    pub const TAG_LENGTH: usize = 0;
    /// `tag: [u8; tag_len]`, without a terminating NUL.
    pub const TAG: usize = 2;
}

/// The longest mount tag the driver reads.
pub const TAG_BYTES_MAX: usize = 255;
