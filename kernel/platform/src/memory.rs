//! Physical memory: the address-space layout, the memory map, start-up.
//!
//! The kernel maps all RAM at [`PHYSICAL_MAP_OFFSET`] and its own image at
//! [`KERNEL_VIRTUAL_OFFSET`]; the lower half of the address space belongs to
//! the application. The frame allocator (`crate::frames`) owns every free
//! frame of RAM; the kernel heap grows from it.

use rosv_abi::memory::{MemoryKind, MemoryRegion};

/// Where all of physical memory is mapped (the first higher-half address).
pub const PHYSICAL_MAP_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image is mapped: its physical address plus this.
pub const KERNEL_VIRTUAL_OFFSET: u64 = 0xffff_ffff_8000_0000;
/// One past the highest application (lower-half) address.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// Physical memory below this holds firmware and boot structures while the
/// kernel starts; its usable part joins the free RAM once boot is done.
pub const LOW_MEMORY_END: u64 = 0x10_0000;
/// Physical memory below this is never used: the real-mode interrupt
/// table, the BIOS data area and the processors' start-up trampoline.
pub const LOW_MEMORY_KEPT: u64 = 0x1_0000;
/// Capacity of a [`MemoryMap`].
pub const MEMORY_MAP_CAPACITY: usize = 128;

/// A range of physical addresses `[start, start + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysicalRange {
    /// First physical address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl PhysicalRange {
    /// One past the last address, saturating.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// The virtual address at which `paddr` is mapped.
pub fn physical_to_virtual(paddr: u64) -> u64 {
    PHYSICAL_MAP_OFFSET + paddr
}

/// The physical address behind a physical-map address.
pub fn virtual_to_physical(vaddr: u64) -> u64 {
    vaddr - PHYSICAL_MAP_OFFSET
}

/// A view of physical memory through the physical map.
///
/// # Safety
/// The range must be mapped (the boot tables map the first GiB; the kernel's
/// tables map all RAM) and nothing may write it while the slice is alive.
pub unsafe fn physical_bytes(range: PhysicalRange) -> &'static [u8] {
    let start = physical_to_virtual(range.start) as *const u8;
    // SAFETY: mapped and unaliased by the caller's contract.
    unsafe { core::slice::from_raw_parts(start, range.size as usize) }
}

/// A fixed-capacity list of memory regions, usable before the heap exists.
#[derive(Debug, Clone)]
pub struct MemoryMap {
    regions: [MemoryRegion; MEMORY_MAP_CAPACITY],
    len: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    /// An empty map.
    pub const fn new() -> Self {
        const EMPTY: MemoryRegion = MemoryRegion { start: 0, size: 0, kind: MemoryKind::Reserved };
        MemoryMap { regions: [EMPTY; MEMORY_MAP_CAPACITY], len: 0 }
    }

    /// Adds a region; `false` when the map is full.
    pub fn try_push(&mut self, region: MemoryRegion) -> bool {
        if self.len == MEMORY_MAP_CAPACITY {
            return false;
        }
        self.regions[self.len] = region;
        self.len += 1;
        true
    }

    /// Adds a region reported by the loader, ignoring empty ones; regions
    /// past the capacity are dropped with a warning.
    pub fn push(&mut self, region: MemoryRegion) {
        if region.size == 0 {
            return;
        }
        if !self.try_push(region) {
            log::warn!("memory map: dropping region {region:?}, table full");
        }
    }

    /// The regions, in the order they were added.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.len]
    }

    /// Total bytes of usable RAM.
    pub fn usable_bytes(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|region| region.kind == MemoryKind::Usable)
            .map(|region| region.size)
            .sum()
    }

    /// One past the highest RAM address (usable or reclaimable).
    pub fn ram_end(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|region| region.kind != MemoryKind::Reserved)
            .map(MemoryRegion::end)
            .max()
            .unwrap_or(0)
    }

    /// The usable RAM that remains once `reserved` ranges and low memory are
    /// taken out, each piece page-aligned, as a new map of usable regions.
    pub fn free_regions(&self, reserved: &[PhysicalRange]) -> MemoryMap {
        self.free_regions_within(LOW_MEMORY_END, u64::MAX, reserved)
    }

    /// The usable RAM of low memory (from [`LOW_MEMORY_KEPT`] to
    /// [`LOW_MEMORY_END`]) without the `reserved` ranges, page-aligned.
    pub fn free_low_regions(&self, reserved: &[PhysicalRange]) -> MemoryMap {
        self.free_regions_within(LOW_MEMORY_KEPT, LOW_MEMORY_END, reserved)
    }

    fn free_regions_within(&self, low: u64, high: u64, reserved: &[PhysicalRange]) -> MemoryMap {
        let mut free = MemoryMap::new();
        for region in self.regions().iter().filter(|region| region.kind == MemoryKind::Usable) {
            let mut pieces = MemoryMap::new();
            let start = region.start.max(low);
            pieces.try_push(MemoryRegion {
                start,
                size: region.end().min(high).saturating_sub(start),
                kind: MemoryKind::Usable,
            });
            for hole in reserved {
                pieces = pieces.without(hole);
            }
            for piece in pieces.regions() {
                let start = align_up(piece.start, PAGE_SIZE);
                let end = piece.end() & !(PAGE_SIZE - 1);
                if end > start {
                    free.push(MemoryRegion { start, size: end - start, kind: MemoryKind::Usable });
                }
            }
        }
        free
    }

    fn without(&self, hole: &PhysicalRange) -> MemoryMap {
        let mut result = MemoryMap::new();
        for piece in self.regions() {
            if hole.end() <= piece.start || hole.start >= piece.end() {
                result.push(*piece);
                continue;
            }
            if hole.start > piece.start {
                result.push(MemoryRegion { size: hole.start - piece.start, ..*piece });
            }
            if hole.end() < piece.end() {
                result.push(MemoryRegion { start: hole.end(), size: piece.end() - hole.end(), ..*piece });
            }
        }
        result
    }
}

/// Rounds `value` up to a multiple of `alignment` (a power of two).
pub const fn align_up(value: u64, alignment: u64) -> u64 {
    (value + alignment - 1) & !(alignment - 1)
}

/// Hands all free RAM to the frame allocator and switches to the kernel's
/// page tables.
///
/// Free RAM is the loader's usable memory minus low memory, the kernel image,
/// the initrd and a separate boot configuration. The boot page tables reach only the first GiB, so the
/// allocator starts with what lies below it, the real tables are built from
/// that, and the rest follows.
#[cfg(target_os = "none")]
pub fn init(info: &crate::boot::BootInfo) -> Result<(), crate::paging::PagingError> {
    const BOOT_MAPPED_LIMIT: u64 = 1 << 30;
    let kernel = crate::layout::kernel_physical_range();
    let initrd = info.initrd.unwrap_or(PhysicalRange { start: 0, size: 0 });
    let boot_config = info.boot_config.unwrap_or(PhysicalRange { start: 0, size: 0 });
    let free = info.memory_map.free_regions(&[kernel, initrd, boot_config]);
    // SAFETY: free RAM (not the kernel, the initrd, or low memory), whose
    // part below 1 GiB the boot tables map; handed over once.
    unsafe { crate::frames::init(&free, info.memory_map.ram_end(), BOOT_MAPPED_LIMIT) }
        .map_err(|()| crate::paging::PagingError::OutOfMemory)?;
    crate::paging::init(&info.memory_map)?;
    crate::frames::add_above(&free, BOOT_MAPPED_LIMIT);
    Ok(())
}

/// Gives the allocator the usable part of low memory, once nothing from
/// the boot (the loader's structures, firmware tables read at start, the
/// processors' trampoline) is needed any more.
#[cfg(target_os = "none")]
pub fn add_low_memory(info: &crate::boot::BootInfo) {
    let kernel = crate::layout::kernel_physical_range();
    let initrd = info.initrd.unwrap_or(PhysicalRange { start: 0, size: 0 });
    let boot_config = info.boot_config.unwrap_or(PhysicalRange { start: 0, size: 0 });
    crate::frames::add_free(&info.memory_map.free_low_regions(&[kernel, initrd, boot_config]));
}

/// Allocates a zeroed frame for the kernel (page tables, device rings) and
/// returns its physical address.
#[cfg(target_os = "none")]
pub fn allocate_frame() -> Option<u64> {
    crate::frames::allocate_zeroed(crate::frames::Purpose::Kernel)
}

/// Drops this user of a frame from [`allocate_frame`] (or one shared with
/// [`crate::frames::share`]), freeing it when no user is left.
///
/// # Safety
/// The caller must hold a reference to the frame and must no longer map or
/// use it.
#[cfg(target_os = "none")]
pub unsafe fn free_frame(paddr: u64) {
    // SAFETY: forwarded under the caller's contract.
    unsafe { crate::frames::release(paddr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usable(start: u64, size: u64) -> MemoryRegion {
        MemoryRegion { start, size, kind: MemoryKind::Usable }
    }

    #[test]
    fn free_regions_skip_low_memory_and_holes() {
        let mut map = MemoryMap::new();
        map.push(usable(0, 0x9fc00));
        map.push(MemoryRegion { start: 0x9fc00, size: 0x400, kind: MemoryKind::Reserved });
        map.push(usable(0x10_0000, 0x7f0_0000));
        let kernel = PhysicalRange { start: 0x20_0000, size: 0x10_0800 };
        let initrd = PhysicalRange { start: 0x700_0000, size: 0x1234 };
        let free = map.free_regions(&[kernel, initrd]);
        let ranges: Vec<(u64, u64)> = free.regions().iter().map(|r| (r.start, r.end())).collect();
        assert_eq!(ranges, vec![(0x10_0000, 0x20_0000), (0x30_1000, 0x700_0000), (0x700_2000, 0x800_0000)]);
        assert_eq!(map.usable_bytes(), 0x9fc00 + 0x7f0_0000);
        assert_eq!(map.ram_end(), 0x800_0000);
    }

    #[test]
    fn a_hole_covering_a_region_removes_it() {
        let mut map = MemoryMap::new();
        map.push(usable(0x100_0000, 0x1000));
        let free = map.free_regions(&[PhysicalRange { start: 0, size: 0x200_0000 }]);
        assert!(free.regions().is_empty());
    }

    #[test]
    fn the_map_has_a_fixed_capacity() {
        let mut map = MemoryMap::new();
        for index in 0..MEMORY_MAP_CAPACITY as u64 {
            assert!(map.try_push(usable(index * 0x1000, 0x1000)));
        }
        assert!(!map.try_push(usable(0, 0x1000)));
    }
}
