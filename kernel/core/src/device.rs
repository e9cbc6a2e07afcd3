//! Devices filesystems use: disks, a disk in memory, and message channels.
//!
//! The kernel wires its virtio disks to [`BlockDevice`]; the initrd and the
//! tests use [`MemoryDisk`]. A host's shared directory is reached through
//! a [`MessageChannel`] (virtio-9p), which [`crate::fs::p9`] speaks 9P over. Filesystems read disks through
//! [`crate::fs::rofs`]'s sector cache rather than one sector at a time.

pub mod loopback;

use alloc::vec::Vec;

use spin::Mutex;

/// The size of a sector, the unit of disk transfers.
pub const SECTOR_SIZE: usize = 512;

/// Why a disk transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The sectors lie past the end of the disk, or the buffer is not a
    /// whole number of sectors.
    OutOfRange,
    /// The disk refuses writes.
    ReadOnly,
    /// The device reported an error.
    Io,
}

/// A disk, addressed in sectors of [`SECTOR_SIZE`] bytes.
pub trait BlockDevice: Send + Sync {
    /// The number of sectors.
    fn sector_count(&self) -> u64;

    /// Whether writes are refused.
    fn is_read_only(&self) -> bool;

    /// Reads `buffer.len() / SECTOR_SIZE` sectors starting at `sector`; the
    /// buffer's length is a multiple of [`SECTOR_SIZE`].
    fn read_sectors(&self, sector: u64, buffer: &mut [u8]) -> Result<(), DeviceError>;

    /// Writes `buffer.len() / SECTOR_SIZE` sectors starting at `sector`.
    fn write_sectors(&self, sector: u64, buffer: &[u8]) -> Result<(), DeviceError>;

    /// Makes every completed write durable.
    fn flush(&self) -> Result<(), DeviceError>;

    /// What the disk has done so far (`/sys/block/NAME/stat`); a disk that
    /// keeps no account reports nothing.
    fn statistics(&self) -> IoStatistics {
        IoStatistics::default()
    }
}

/// A disk's transfers since it appeared, as `/sys/block/NAME/stat` counts
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStatistics {
    /// Read requests completed.
    pub reads: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Milliseconds spent reading.
    pub read_ms: u64,
    /// Write requests completed.
    pub writes: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Milliseconds spent writing.
    pub write_ms: u64,
    /// Flush requests completed.
    pub flushes: u64,
}

/// A channel to a file server outside the machine: each request gets
/// one reply, and any number of threads may have requests in flight.
pub trait MessageChannel: Send + Sync {
    /// The name that identifies the share (a virtio-9p mount tag).
    fn tag(&self) -> &str;

    /// Sends the request made of `request`'s parts and waits for its reply,
    /// which fills `reply`'s parts in order; returns the reply's length
    /// (at most what the parts hold).
    fn exchange(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> Result<usize, DeviceError>;
}

/// The byte range of `count` sectors from `sector` within a disk of
/// `size_bytes`, checked.
fn byte_range(sector: u64, length: usize, size_bytes: usize) -> Result<(usize, usize), DeviceError> {
    if !length.is_multiple_of(SECTOR_SIZE) {
        return Err(DeviceError::OutOfRange);
    }
    let start = usize::try_from(sector)
        .ok()
        .and_then(|sector| sector.checked_mul(SECTOR_SIZE))
        .ok_or(DeviceError::OutOfRange)?;
    let end = start.checked_add(length).ok_or(DeviceError::OutOfRange)?;
    if end > size_bytes.next_multiple_of(SECTOR_SIZE) {
        return Err(DeviceError::OutOfRange);
    }
    Ok((start, end))
}

enum Storage {
    Borrowed(&'static [u8]),
    Owned(Mutex<Vec<u8>>),
}

/// A disk held in memory: read-only over borrowed bytes (the initrd), or
/// read-write over its own. A last partial sector reads as zero-padded.
pub struct MemoryDisk {
    storage: Storage,
}

impl core::fmt::Debug for MemoryDisk {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("MemoryDisk").field("sector_count", &self.sector_count()).finish()
    }
}

impl MemoryDisk {
    /// A read-only disk over `bytes`.
    pub fn read_only(bytes: &'static [u8]) -> Self {
        MemoryDisk { storage: Storage::Borrowed(bytes) }
    }

    /// A writable disk holding `bytes`.
    pub fn writable(bytes: Vec<u8>) -> Self {
        MemoryDisk { storage: Storage::Owned(Mutex::new(bytes)) }
    }

    fn size_bytes(&self) -> usize {
        match &self.storage {
            Storage::Borrowed(bytes) => bytes.len(),
            Storage::Owned(bytes) => bytes.lock().len(),
        }
    }
}

/// Copies `source[start..end]` into `buffer`, zero-filling past the source.
fn copy_padded(source: &[u8], start: usize, end: usize, buffer: &mut [u8]) {
    let available = source.len().min(end).max(start);
    buffer[..available - start].copy_from_slice(&source[start..available]);
    buffer[available - start..].fill(0);
}

impl BlockDevice for MemoryDisk {
    fn sector_count(&self) -> u64 {
        self.size_bytes().div_ceil(SECTOR_SIZE) as u64
    }

    fn is_read_only(&self) -> bool {
        matches!(self.storage, Storage::Borrowed(_))
    }

    fn read_sectors(&self, sector: u64, buffer: &mut [u8]) -> Result<(), DeviceError> {
        let (start, end) = byte_range(sector, buffer.len(), self.size_bytes())?;
        match &self.storage {
            Storage::Borrowed(bytes) => copy_padded(bytes, start, end, buffer),
            Storage::Owned(bytes) => copy_padded(&bytes.lock(), start, end, buffer),
        }
        Ok(())
    }

    fn write_sectors(&self, sector: u64, buffer: &[u8]) -> Result<(), DeviceError> {
        let Storage::Owned(bytes) = &self.storage else {
            return Err(DeviceError::ReadOnly);
        };
        let mut bytes = bytes.lock();
        let (start, end) = byte_range(sector, buffer.len(), bytes.len())?;
        let kept = bytes.len().min(end) - start;
        bytes[start..start + kept].copy_from_slice(&buffer[..kept]);
        Ok(())
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// Bytes moved per device request when a transfer needs a bounce buffer.
const BOUNCE_BYTES: usize = 64 * 1024;

/// Reads `buffer.len()` bytes from byte `offset` of `device`, whatever
/// their alignment: whole sectors go straight into `buffer`, partial ones
/// through a bounce buffer.
pub fn read_bytes(device: &dyn BlockDevice, offset: u64, buffer: &mut [u8]) -> Result<(), DeviceError> {
    let sector_bytes = SECTOR_SIZE as u64;
    let mut done = 0usize;
    while done < buffer.len() {
        let position = offset + done as u64;
        let within = (position % sector_bytes) as usize;
        let remaining = buffer.len() - done;
        if within == 0 && remaining >= SECTOR_SIZE {
            let length = remaining - remaining % SECTOR_SIZE;
            device.read_sectors(position / sector_bytes, &mut buffer[done..done + length])?;
            done += length;
            continue;
        }
        let span = (within + remaining).next_multiple_of(SECTOR_SIZE).min(BOUNCE_BYTES);
        let mut bounce = alloc::vec![0u8; span];
        device.read_sectors(position / sector_bytes, &mut bounce)?;
        let length = (span - within).min(remaining);
        buffer[done..done + length].copy_from_slice(&bounce[within..within + length]);
        done += length;
    }
    Ok(())
}

/// Writes `bytes` at byte `offset` of `device`, reading and rewriting the
/// sectors it covers only partly.
pub fn write_bytes(device: &dyn BlockDevice, offset: u64, bytes: &[u8]) -> Result<(), DeviceError> {
    let sector_bytes = SECTOR_SIZE as u64;
    let mut done = 0usize;
    while done < bytes.len() {
        let position = offset + done as u64;
        let within = (position % sector_bytes) as usize;
        let remaining = bytes.len() - done;
        if within == 0 && remaining >= SECTOR_SIZE {
            let length = remaining - remaining % SECTOR_SIZE;
            device.write_sectors(position / sector_bytes, &bytes[done..done + length])?;
            done += length;
            continue;
        }
        let mut sector = [0u8; SECTOR_SIZE];
        device.read_sectors(position / sector_bytes, &mut sector)?;
        let length = (SECTOR_SIZE - within).min(remaining);
        sector[within..within + length].copy_from_slice(&bytes[done..done + length]);
        device.write_sectors(position / sector_bytes, &sector)?;
        done += length;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_disks_read_whole_sectors_and_pad_the_last() {
        let bytes: &'static [u8] = alloc::vec![7u8; 700].leak();
        let disk = MemoryDisk::read_only(bytes);
        assert_eq!(disk.sector_count(), 2);
        assert!(disk.is_read_only());
        let mut buffer = [1u8; 1024];
        disk.read_sectors(0, &mut buffer).unwrap();
        assert_eq!(buffer[699], 7);
        assert_eq!(buffer[700], 0);
        assert_eq!(disk.read_sectors(1, &mut buffer), Err(DeviceError::OutOfRange));
        assert_eq!(disk.read_sectors(0, &mut buffer[..100]), Err(DeviceError::OutOfRange));
        assert_eq!(disk.write_sectors(0, &buffer[..512]), Err(DeviceError::ReadOnly));
    }

    #[test]
    fn writable_disks_keep_what_is_written() {
        let disk = MemoryDisk::writable(alloc::vec![0u8; 2048]);
        disk.write_sectors(2, &[9u8; 512]).unwrap();
        let mut buffer = [0u8; 1024];
        disk.read_sectors(2, &mut buffer).unwrap();
        assert_eq!((buffer[0], buffer[511], buffer[512]), (9, 9, 0));
        assert_eq!(disk.write_sectors(4, &[0u8; 512]), Err(DeviceError::OutOfRange));
        assert_eq!(disk.flush(), Ok(()));
    }

    #[test]
    fn unaligned_transfers_touch_only_their_bytes() {
        let disk = MemoryDisk::writable((0..4096u32).map(|value| value as u8).collect());
        write_bytes(&disk, 500, &[0xee; 600]).unwrap();
        let mut buffer = [0u8; 1000];
        read_bytes(&disk, 300, &mut buffer).unwrap();
        assert_eq!(buffer[199], (499 % 256) as u8);
        assert!(buffer[200..800].iter().all(|&byte| byte == 0xee));
        assert_eq!(buffer[800], (1100 % 256) as u8);
        let mut whole = [0u8; 1024];
        read_bytes(&disk, 2048, &mut whole).unwrap();
        assert_eq!(whole[0], 0);
        assert_eq!(read_bytes(&disk, 4000, &mut whole), Err(DeviceError::OutOfRange));
    }
}
