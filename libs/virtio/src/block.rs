//! The virtio block device's features, configuration and requests (§5.2).

/// Bytes of a sector, the unit of `capacity` and of request offsets.
pub const SECTOR_SIZE: usize = 512;

/// Block device feature bits (§5.2.3).
pub mod feature {
    /// `size_max` limits a buffer's length.
    pub const SIZE_MAX: u64 = 1 << 1;
    /// `seg_max` limits the buffers of one request.
    pub const SEG_MAX: u64 = 1 << 2;
    /// The device is read-only.
    pub const RO: u64 = 1 << 5;
    /// `blk_size` gives the optimal block size.
    pub const BLK_SIZE: u64 = 1 << 6;
    /// Flush requests are supported.
    pub const FLUSH: u64 = 1 << 9;
}

/// Offsets in the device configuration (§5.2.4).
pub mod config {
    /// `capacity: u64`, in sectors.
    pub const CAPACITY: usize = 0;
    /// `size_max: u32`.
    pub const SIZE_MAX: usize = 8;
    /// `seg_max: u32`.
    pub const SEG_MAX: usize = 12;
    /// `blk_size: u32`.
    pub const BLK_SIZE: usize = 20;
}

/// Request types (§5.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum RequestType {
    /// Read sectors into the writable buffers.
    In = 0,
    /// Write sectors from the readable buffers.
    Out = 1,
    /// Make earlier writes durable.
    Flush = 4,
    /// Read the device's id string (20 bytes).
    GetId = 8,
}

/// Bytes of the request header (`type`, `reserved`, `sector`).
pub const HEADER_SIZE: usize = 16;

/// The request header, as the device reads it.
pub fn encode_header(request: RequestType, sector: u64) -> [u8; HEADER_SIZE] {
    let mut header = [0u8; HEADER_SIZE];
    header[..4].copy_from_slice(&(request as u32).to_le_bytes());
    header[8..].copy_from_slice(&sector.to_le_bytes());
    header
}

/// What the device wrote into the status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The request succeeded.
    Ok,
    /// The device failed to carry it out.
    IoError,
    /// The device does not support the request.
    Unsupported,
    /// A value the specification does not define.
    Unknown(u8),
}

impl Status {
    /// Decodes the status byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            0 => Status::Ok,
            1 => Status::IoError,
            2 => Status::Unsupported,
            other => Status::Unknown(other),
        }
    }
}
