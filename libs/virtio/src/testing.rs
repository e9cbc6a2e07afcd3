//! A model of guest physical memory for tests and fuzzing: one byte vector
//! at a base address, from which queue regions and buffers are allocated.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use crate::device::{GuestMemory, OutOfRange};
use crate::memory::SharedMemory;

/// Guest physical memory: `size` bytes starting at `base`. Clones share
/// the bytes.
#[derive(Debug, Clone)]
pub struct FakeMemory {
    base: u64,
    bytes: Arc<Mutex<Vec<u8>>>,
    next_free: Arc<Mutex<u64>>,
}

impl FakeMemory {
    /// Zeroed memory of `size` bytes at physical address `base`.
    pub fn new(base: u64, size: usize) -> Self {
        FakeMemory { base, bytes: Arc::new(Mutex::new(vec![0; size])), next_free: Arc::new(Mutex::new(base)) }
    }

    /// Memory holding `bytes` at `base`, with nothing allocated.
    pub fn from_bytes(base: u64, bytes: Vec<u8>) -> Self {
        let end = base + bytes.len() as u64;
        FakeMemory { base, bytes: Arc::new(Mutex::new(bytes)), next_free: Arc::new(Mutex::new(end)) }
    }

    /// Allocates `size` zeroed bytes aligned to 4096 and returns their
    /// region. Panics when memory runs out: tests size it.
    pub fn allocate(&self, size: usize) -> FakeRegion {
        let mut next_free = self.next_free.lock();
        let start = next_free.div_ceil(4096) * 4096;
        let end = start + size as u64;
        assert!(end <= self.base + self.bytes.lock().len() as u64, "fake memory exhausted");
        *next_free = end;
        FakeRegion { memory: self.clone(), address: start, size }
    }

    /// Copies `length` bytes at physical `address`.
    pub fn read_bytes(&self, address: u64, length: usize) -> Vec<u8> {
        let mut buffer = vec![0; length];
        self.read(address, &mut buffer).expect("the test reads memory it allocated");
        buffer
    }

    fn range(&self, address: u64, length: usize) -> Result<core::ops::Range<usize>, OutOfRange> {
        let start = address.checked_sub(self.base).ok_or(OutOfRange)?;
        let start = usize::try_from(start).map_err(|_| OutOfRange)?;
        let end = start.checked_add(length).ok_or(OutOfRange)?;
        if end > self.bytes.lock().len() {
            return Err(OutOfRange);
        }
        Ok(start..end)
    }
}

impl GuestMemory for FakeMemory {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), OutOfRange> {
        let range = self.range(address, buffer.len())?;
        buffer.copy_from_slice(&self.bytes.lock()[range]);
        Ok(())
    }

    fn write(&self, address: u64, bytes: &[u8]) -> Result<(), OutOfRange> {
        let range = self.range(address, bytes.len())?;
        self.bytes.lock()[range].copy_from_slice(bytes);
        Ok(())
    }
}

/// A region of [`FakeMemory`], shared with the device model.
#[derive(Debug, Clone)]
pub struct FakeRegion {
    memory: FakeMemory,
    address: u64,
    size: usize,
}

impl FakeRegion {
    /// Bytes in the region.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The memory the region belongs to.
    pub fn memory(&self) -> &FakeMemory {
        &self.memory
    }

    fn load<const N: usize>(&self, offset: usize) -> [u8; N] {
        assert!(offset + N <= self.size, "access past the region");
        let mut bytes = [0; N];
        self.memory.read(self.address + offset as u64, &mut bytes).expect("the region lies in memory");
        bytes
    }

    fn store(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.size, "access past the region");
        self.memory.write(self.address + offset as u64, bytes).expect("the region lies in memory");
    }
}

impl SharedMemory for FakeRegion {
    fn physical_address(&self) -> u64 {
        self.address
    }

    fn read_u16(&self, offset: usize) -> u16 {
        u16::from_le_bytes(self.load(offset))
    }

    fn read_u32(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.load(offset))
    }

    fn write_u16(&self, offset: usize, value: u16) {
        self.store(offset, &value.to_le_bytes());
    }

    fn write_u32(&self, offset: usize, value: u32) {
        self.store(offset, &value.to_le_bytes());
    }

    fn write_u64(&self, offset: usize, value: u64) {
        self.store(offset, &value.to_le_bytes());
    }
}
