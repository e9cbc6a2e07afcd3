//! What the ext4 engine needs from the kernel: the disk, a clock and
//! entropy, as `rsext4`'s capability traits.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use rsext4::{
    BlockIo, Clock, DeviceCapabilities, DeviceGeometry, EntropySource, Ext4Error, Ext4Result, Ext4Timestamp,
    SectorId,
};

use crate::device::{BlockDevice, DeviceError, SECTOR_SIZE};

/// A kernel disk as the engine's block device, in 512-byte sectors.
pub struct Disk {
    device: Arc<dyn BlockDevice>,
}

impl Disk {
    /// `device`, whole.
    pub fn new(device: Arc<dyn BlockDevice>) -> Self {
        Disk { device }
    }
}

fn device_error(error: DeviceError) -> Ext4Error {
    match error {
        DeviceError::ReadOnly => Ext4Error::read_only(),
        DeviceError::OutOfRange | DeviceError::Io => Ext4Error::io(),
    }
}

/// The byte length of `count` sectors, which must be `buffer_length`.
fn checked_length(buffer_length: usize, count: u32) -> Ext4Result<()> {
    let wanted = (count as usize).checked_mul(SECTOR_SIZE).ok_or_else(Ext4Error::overflow)?;
    if wanted != buffer_length {
        return Err(Ext4Error::invalid_input());
    }
    Ok(())
}

impl BlockIo for Disk {
    fn write(&mut self, buffer: &[u8], sector: SectorId, count: u32) -> Ext4Result<()> {
        checked_length(buffer.len(), count)?;
        self.device.write_sectors(sector.raw(), buffer).map_err(device_error)
    }

    fn read(&mut self, buffer: &mut [u8], sector: SectorId, count: u32) -> Ext4Result<()> {
        checked_length(buffer.len(), count)?;
        self.device.read_sectors(sector.raw(), buffer).map_err(device_error)
    }

    fn geometry(&self) -> DeviceGeometry {
        DeviceGeometry::new(SECTOR_SIZE as u32, self.device.sector_count())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            read_only: self.device.is_read_only(),
            flush: true,
            barrier: false,
            fua: false,
            discard: false,
        }
    }

    fn flush(&mut self) -> Ext4Result<()> {
        self.device.flush().map_err(device_error)
    }
}

/// The wall-clock time of the operation under way: each operation stores
/// its caller's time first, so the engine's inode times are the caller's.
#[derive(Debug, Clone, Default)]
pub struct OperationClock {
    now_ns: Arc<AtomicU64>,
}

impl OperationClock {
    /// Sets the time operations from now on see.
    pub fn set(&self, now_ns: u64) {
        self.now_ns.store(now_ns, Ordering::Relaxed);
    }
}

impl Clock for OperationClock {
    fn now(&self) -> Ext4Result<Ext4Timestamp> {
        let now_ns = self.now_ns.load(Ordering::Relaxed);
        let seconds = i64::try_from(now_ns / 1_000_000_000).map_err(|_| Ext4Error::overflow())?;
        Ok(Ext4Timestamp::new(seconds, (now_ns % 1_000_000_000) as u32))
    }
}

/// Bytes for the engine's hash seeds and generation numbers: xorshift over
/// a seed from the mount time. They need to differ between filesystems, not
/// to be secret.
#[derive(Debug)]
pub struct Entropy {
    state: u64,
}

impl Entropy {
    /// A generator seeded from `seed` (never zero).
    pub fn new(seed: u64) -> Self {
        Entropy { state: seed | 1 }
    }
}

impl EntropySource for Entropy {
    fn fill_bytes(&mut self, output: &mut [u8]) -> Ext4Result<()> {
        for chunk in output.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}
