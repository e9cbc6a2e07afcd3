//! Memory shared with a device: the rings of one virtqueue.

/// A region of memory the device reads and writes by physical address, such
/// as a virtqueue's rings (§2.7).
///
/// Accesses are little-endian and naturally aligned; offsets come from the
/// queue's own layout and lie inside the region. Implementations make each
/// access a single load or store the compiler neither merges nor drops
/// (volatile in the kernel); the queue adds the fences the protocol needs.
pub trait SharedMemory {
    /// The physical address of the first byte, as the device sees it.
    fn physical_address(&self) -> u64;
    /// Reads the `u16` at `offset`.
    fn read_u16(&self, offset: usize) -> u16;
    /// Reads the `u32` at `offset`.
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes the `u16` at `offset`.
    fn write_u16(&self, offset: usize, value: u16);
    /// Writes the `u32` at `offset`.
    fn write_u32(&self, offset: usize, value: u32);
    /// Writes the `u64` at `offset`.
    fn write_u64(&self, offset: usize, value: u64);
}

impl<T: SharedMemory + ?Sized> SharedMemory for alloc::boxed::Box<T> {
    fn physical_address(&self) -> u64 {
        (**self).physical_address()
    }

    fn read_u16(&self, offset: usize) -> u16 {
        (**self).read_u16(offset)
    }

    fn read_u32(&self, offset: usize) -> u32 {
        (**self).read_u32(offset)
    }

    fn write_u16(&self, offset: usize, value: u16) {
        (**self).write_u16(offset, value)
    }

    fn write_u32(&self, offset: usize, value: u32) {
        (**self).write_u32(offset, value)
    }

    fn write_u64(&self, offset: usize, value: u64) {
        (**self).write_u64(offset, value)
    }
}
