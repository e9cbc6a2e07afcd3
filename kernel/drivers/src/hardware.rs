//! What drivers need from the machine, as traits the kernel implements.

use alloc::boxed::Box;

use rosv_virtio::SharedMemory;

use crate::pci::PciAddress;

/// A device's registers: memory-mapped or a range of I/O ports. Offsets are
/// relative to the window; an access outside it is a driver bug and panics.
pub trait RegisterWindow: Send + Sync {
    /// Reads the byte at `offset`.
    fn read_u8(&self, offset: usize) -> u8;
    /// Reads the `u16` at `offset`.
    fn read_u16(&self, offset: usize) -> u16;
    /// Reads the `u32` at `offset`.
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes the byte at `offset`.
    fn write_u8(&self, offset: usize, value: u8);
    /// Writes the `u16` at `offset`.
    fn write_u16(&self, offset: usize, value: u16);
    /// Writes the `u32` at `offset`.
    fn write_u32(&self, offset: usize, value: u32);
}

/// Memory a device reaches by physical address (rings, request headers,
/// bounce buffers): zeroed when allocated, physically contiguous.
pub trait DmaRegion: SharedMemory + Send + Sync {
    /// Bytes in the region.
    fn size(&self) -> usize;
    /// Copies bytes out of the region from `offset`.
    fn read_bytes(&self, offset: usize, buffer: &mut [u8]);
    /// Copies `bytes` into the region at `offset`.
    fn write_bytes(&self, offset: usize, bytes: &[u8]);
}

/// The machine, as drivers see it.
pub trait Hardware: Send + Sync {
    /// Maps `size` bytes of memory-mapped registers at `physical_address`.
    fn map_registers(&self, physical_address: u64, size: usize) -> Option<Box<dyn RegisterWindow>>;
    /// The I/O ports `[base, base + count)`.
    fn io_ports(&self, base: u16, count: u16) -> Option<Box<dyn RegisterWindow>>;
    /// Allocates DMA memory.
    fn allocate_dma(&self, size: usize) -> Option<Box<dyn DmaRegion>>;
    /// The physical address of `bytes`, if a device can reach them where
    /// they are (otherwise drivers copy through DMA memory).
    fn physical_address(&self, bytes: &[u8]) -> Option<u64>;
    /// Reads the 32-bit PCI configuration register at `offset` (a multiple
    /// of 4).
    fn read_pci_config(&self, function: PciAddress, offset: u8) -> u32;
    /// Writes the 32-bit PCI configuration register at `offset`.
    fn write_pci_config(&self, function: PciAddress, offset: u8, value: u32);
}
