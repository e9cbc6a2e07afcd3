//! Safe handles on device hardware: register windows and DMA memory.
//!
//! Drivers get registers as an [`MmioRegion`] (memory-mapped, uncached) or
//! a [`PortRange`] (x86 I/O ports), each bounds-checked so a driver can only
//! reach the window the firmware or the command line gave it. Memory a
//! device reads and writes by physical address is a [`DmaRegion`]: zeroed,
//! page-aligned, physically contiguous (it comes from the heap, which lives
//! in the linear physical map) and accessed with volatile loads and stores.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::NonNull;

use x86_64::instructions::port::Port;

use crate::memory::{KERNEL_VIRTUAL_OFFSET, PHYSICAL_MAP_OFFSET, virtual_to_physical};
use crate::paging;

/// Memory-mapped device registers.
#[derive(Debug)]
pub struct MmioRegion {
    base: u64,
    size: usize,
}

impl MmioRegion {
    /// Maps `size` bytes of registers at physical `address` (uncached);
    /// `None` if they cannot be mapped.
    pub fn map(address: u64, size: usize) -> Option<Self> {
        if size == 0 {
            return None;
        }
        let base = paging::map_device(address, size as u64)?;
        Some(MmioRegion { base, size })
    }

    /// Bytes in the window.
    pub fn size(&self) -> usize {
        self.size
    }

    fn pointer<T>(&self, offset: usize) -> *mut T {
        let width = core::mem::size_of::<T>();
        assert!(
            offset.is_multiple_of(width) && offset.checked_add(width).is_some_and(|end| end <= self.size),
            "register access at {offset:#x} outside a {:#x}-byte window",
            self.size
        );
        (self.base + offset as u64) as *mut T
    }

    /// Reads the register of type `T` at `offset` (panics outside the window
    /// or misaligned: a driver bug, not a device one).
    pub fn read<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: `map` mapped the whole window uncached and `pointer`
        // checked bounds and alignment; device registers tolerate reads.
        unsafe { core::ptr::read_volatile(self.pointer::<T>(offset)) }
    }

    /// Writes the register of type `T` at `offset`.
    pub fn write<T: Copy>(&self, offset: usize, value: T) {
        // SAFETY: as in `read`; the window holds device registers, not RAM
        // the kernel uses.
        unsafe { core::ptr::write_volatile(self.pointer::<T>(offset), value) }
    }
}

/// A range of x86 I/O ports.
#[derive(Debug)]
pub struct PortRange {
    base: u16,
    count: u16,
}

impl PortRange {
    /// The ports `[base, base + count)`; `None` if the range wraps or
    /// includes the PCI configuration ports or the console.
    pub fn new(base: u16, count: u16) -> Option<Self> {
        let end = u32::from(base) + u32::from(count);
        let overlaps = |start: u32, length: u32| u32::from(base) < start + length && start < end;
        if count == 0 || end > 0x1_0000 || overlaps(0xcf8, 8) || overlaps(0x3f8, 8) {
            return None;
        }
        Some(PortRange { base, count })
    }

    fn port(&self, offset: usize, width: usize) -> u16 {
        assert!(
            offset.checked_add(width).is_some_and(|end| end <= usize::from(self.count)),
            "port access at {offset:#x} outside a {}-port range",
            self.count
        );
        self.base + offset as u16
    }

    /// Reads the byte port at `offset`.
    pub fn read_u8(&self, offset: usize) -> u8 {
        // SAFETY: the port lies in a range the firmware assigned to a device.
        unsafe { Port::<u8>::new(self.port(offset, 1)).read() }
    }

    /// Reads the 16-bit port at `offset`.
    pub fn read_u16(&self, offset: usize) -> u16 {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u16>::new(self.port(offset, 2)).read() }
    }

    /// Reads the 32-bit port at `offset`.
    pub fn read_u32(&self, offset: usize) -> u32 {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u32>::new(self.port(offset, 4)).read() }
    }

    /// Writes the byte port at `offset`.
    pub fn write_u8(&self, offset: usize, value: u8) {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u8>::new(self.port(offset, 1)).write(value) }
    }

    /// Writes the 16-bit port at `offset`.
    pub fn write_u16(&self, offset: usize, value: u16) {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u16>::new(self.port(offset, 2)).write(value) }
    }

    /// Writes the 32-bit port at `offset`.
    pub fn write_u32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u32>::new(self.port(offset, 4)).write(value) }
    }
}

/// Zeroed, page-aligned, physically contiguous memory shared with devices.
#[derive(Debug)]
pub struct DmaRegion {
    pointer: NonNull<u8>,
    size: usize,
}

// SAFETY: the region is plain memory owned by this value; every access is a
// volatile load or store of a naturally aligned integer or a byte copy, and
// the drivers that share it serialize their own use.
unsafe impl Send for DmaRegion {}
// SAFETY: as above.
unsafe impl Sync for DmaRegion {}

impl DmaRegion {
    /// Allocates `size` zeroed bytes; `None` when memory runs out.
    pub fn allocate(size: usize) -> Option<Self> {
        let layout = Layout::from_size_align(size.max(1), 4096).ok()?;
        // SAFETY: the layout has a non-zero size.
        let pointer = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(DmaRegion { pointer, size })
    }

    /// The physical address of the first byte.
    pub fn physical_address(&self) -> u64 {
        virtual_to_physical(self.pointer.as_ptr() as u64)
    }

    /// Bytes in the region.
    pub fn size(&self) -> usize {
        self.size
    }

    fn at<T>(&self, offset: usize) -> *mut T {
        let width = core::mem::size_of::<T>();
        assert!(
            offset.is_multiple_of(width) && offset.checked_add(width).is_some_and(|end| end <= self.size),
            "DMA access at {offset:#x} outside a {:#x}-byte region",
            self.size
        );
        // SAFETY: in bounds, as just checked.
        unsafe { self.pointer.as_ptr().add(offset).cast() }
    }

    /// Reads the integer of type `T` at `offset`.
    pub fn read<T: Copy>(&self, offset: usize) -> T {
        // SAFETY: in bounds and aligned (`at`); the device may change the
        // memory at any time, hence volatile.
        unsafe { core::ptr::read_volatile(self.at::<T>(offset)) }
    }

    /// Writes the integer of type `T` at `offset`.
    pub fn write<T: Copy>(&self, offset: usize, value: T) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(self.at::<T>(offset), value) }
    }

    /// The address of `length` bytes at `offset`, checked to lie inside.
    fn span(&self, offset: usize, length: usize) -> *mut u8 {
        assert!(
            offset.checked_add(length).is_some_and(|end| end <= self.size),
            "DMA copy of {length:#x} bytes at {offset:#x} outside a {:#x}-byte region",
            self.size
        );
        // SAFETY: in bounds, as just checked.
        unsafe { self.pointer.as_ptr().add(offset) }
    }

    /// Copies bytes out of the region, starting at `offset`. Drivers copy
    /// only what the device has finished with (it returned the buffer), so
    /// a plain copy after an acquire fence sees all of the device's writes.
    pub fn read_bytes(&self, offset: usize, buffer: &mut [u8]) {
        let source = self.span(offset, buffer.len());
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        // SAFETY: `source` is in bounds (`span`); `buffer` is kernel memory
        // that cannot overlap the region, which nothing else borrows.
        unsafe { core::ptr::copy_nonoverlapping(source, buffer.as_mut_ptr(), buffer.len()) }
    }

    /// Copies `bytes` into the region at `offset`, before the driver hands
    /// that part to the device (a release fence orders the copy first).
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        let destination = self.span(offset, bytes.len());
        // SAFETY: as in `read_bytes`; the device does not use this part
        // until the driver publishes it after the fence.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), destination, bytes.len()) }
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    }
}

impl Drop for DmaRegion {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.size.max(1), 4096).expect("valid when allocated");
        // SAFETY: allocated in `allocate` with this layout; the driver has
        // reset the device or stopped using the memory before dropping it.
        unsafe { dealloc(self.pointer.as_ptr(), layout) }
    }
}

/// The physical address of kernel memory a device may read or write, if
/// `bytes` lie in the physical map (the heap, thread stacks) or the kernel
/// image; both are physically contiguous.
pub fn physical_address_of(bytes: &[u8]) -> Option<u64> {
    let start = bytes.as_ptr() as u64;
    let end = start.checked_add(bytes.len() as u64)?;
    if start >= KERNEL_VIRTUAL_OFFSET {
        Some(start - KERNEL_VIRTUAL_OFFSET)
    } else if start >= PHYSICAL_MAP_OFFSET && end <= PHYSICAL_MAP_OFFSET + paging::physical_map_end() {
        Some(virtual_to_physical(start))
    } else {
        None
    }
}
