//! A small cache of disk blocks, so that small reads of a file do not each
//! go to the disk.
//!
//! The cache holds [`BLOCK_COUNT`] blocks of [`BLOCK_BYTES`]; the least
//! recently used one makes room. Reads of at least [`DIRECT_BYTES`] bypass
//! it: they gain nothing from it and would evict what small reads reuse.
//! The lock is never held while the disk works, since a disk read may
//! block the thread.

use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_rofs::{BlockSource, SourceError};
use spin::Mutex;

use crate::device::{self, BlockDevice, SECTOR_SIZE};

/// Bytes per cached block: a miss reads this much, so that a file read in
/// small pieces costs one disk request per block rather than per piece.
pub const BLOCK_BYTES: usize = 32 * 1024;
/// Blocks kept.
pub const BLOCK_COUNT: usize = 32;
/// Reads this large go straight to the disk.
pub const DIRECT_BYTES: usize = 16 * 1024;

struct CachedBlock {
    index: u64,
    last_use: u64,
    bytes: Arc<Vec<u8>>,
}

#[derive(Default)]
struct Blocks {
    blocks: Vec<CachedBlock>,
    clock: u64,
    disk_reads: u64,
}

/// A disk seen through the cache, as the ROFS reader's byte source.
pub struct CachedDisk {
    disk: Arc<dyn BlockDevice>,
    blocks: Mutex<Blocks>,
}

impl core::fmt::Debug for CachedDisk {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("CachedDisk").field("sector_count", &self.disk.sector_count()).finish()
    }
}

impl CachedDisk {
    /// `disk` with an empty cache.
    pub fn new(disk: Arc<dyn BlockDevice>) -> Self {
        CachedDisk { disk, blocks: Mutex::new(Blocks::default()) }
    }

    /// The disk.
    pub fn disk(&self) -> &Arc<dyn BlockDevice> {
        &self.disk
    }

    /// Number of reads that went to the disk.
    pub fn disk_reads(&self) -> u64 {
        self.blocks.lock().disk_reads
    }

    fn size_bytes(&self) -> u64 {
        self.disk.sector_count() * SECTOR_SIZE as u64
    }

    /// Block `index`, from the cache or the disk.
    fn block(&self, index: u64) -> Result<Arc<Vec<u8>>, SourceError> {
        {
            let mut blocks = self.blocks.lock();
            blocks.clock += 1;
            let now = blocks.clock;
            if let Some(block) = blocks.blocks.iter_mut().find(|block| block.index == index) {
                block.last_use = now;
                return Ok(block.bytes.clone());
            }
            blocks.disk_reads += 1;
        }
        let start = index * BLOCK_BYTES as u64;
        let length = (self.size_bytes().saturating_sub(start)).min(BLOCK_BYTES as u64) as usize;
        let mut bytes = alloc::vec![0u8; length];
        self.disk.read_sectors(start / SECTOR_SIZE as u64, &mut bytes).map_err(|_| SourceError)?;
        let bytes = Arc::new(bytes);
        let mut blocks = self.blocks.lock();
        let now = blocks.clock;
        if blocks.blocks.len() >= BLOCK_COUNT
            && let Some(oldest) = (0..blocks.blocks.len()).min_by_key(|&slot| blocks.blocks[slot].last_use)
        {
            blocks.blocks.swap_remove(oldest);
        }
        blocks.blocks.push(CachedBlock { index, last_use: now, bytes: bytes.clone() });
        Ok(bytes)
    }
}

impl BlockSource for CachedDisk {
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), SourceError> {
        let end = offset.checked_add(buffer.len() as u64).ok_or(SourceError)?;
        if end > self.size_bytes() {
            return Err(SourceError);
        }
        if buffer.len() >= DIRECT_BYTES {
            self.blocks.lock().disk_reads += 1;
            return device::read_bytes(self.disk.as_ref(), offset, buffer).map_err(|_| SourceError);
        }
        let mut done = 0;
        while done < buffer.len() {
            let position = offset + done as u64;
            let block = self.block(position / BLOCK_BYTES as u64)?;
            let within = (position % BLOCK_BYTES as u64) as usize;
            let length = (block.len().saturating_sub(within)).min(buffer.len() - done);
            if length == 0 {
                return Err(SourceError);
            }
            buffer[done..done + length].copy_from_slice(&block[within..within + length]);
            done += length;
        }
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size_bytes()
    }
}
