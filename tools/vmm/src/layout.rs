//! Where the monitor puts things in guest physical memory.
//!
//! Low memory follows what PVH loaders commonly do (Firecracker's choices):
//! the boot GDT at 0x500, `hvm_start_info` and its tables in page 6, the
//! command line at 0x20000, the MP table in the last KiB of base memory.
//! Page 8 stays free because the kernel copies its processor start-up
//! trampoline there. RAM runs from 0 up to the memory-mapped I/O hole at
//! 3 GiB and continues at 4 GiB; the initrd goes at the top of low RAM.

use rosv_abi::memory::{MemoryKind, MemoryRegion};

/// The size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// The boot GDT, whose descriptors match the segment state of the PVH entry.
pub const GDT_PADDR: u64 = 0x500;
/// `struct hvm_start_info`.
pub const START_INFO_PADDR: u64 = 0x6000;
/// The module list (one `hvm_modlist_entry`: the initrd).
pub const MODLIST_PADDR: u64 = START_INFO_PADDR + 0x40;
/// The memory map (`hvm_memmap_table_entry` array).
pub const MEMMAP_PADDR: u64 = START_INFO_PADDR + 0x80;
/// How many memory map entries fit before page 7.
pub const MEMMAP_CAPACITY: usize =
    ((START_INFO_PADDR + PAGE_SIZE - MEMMAP_PADDR) as usize) / rosv_abi::pvh::MEMMAP_ENTRY_SIZE;
/// The NUL-terminated kernel command line.
pub const COMMAND_LINE_PADDR: u64 = 0x2_0000;
/// The longest command line the kernel reads, terminating NUL included.
pub const COMMAND_LINE_CAPACITY: usize = 4096;
/// The MP floating pointer, followed by the MP configuration table; the
/// last KiB of base memory is where the MP specification (§4) has the
/// operating system search.
pub const MP_TABLE_PADDR: u64 = 0x9_fc00;
/// The ACPI tables (RSDP first), at the start of the BIOS area, where the
/// ACPI specification (§5.2.5.1) has the operating system search.
pub const ACPI_PADDR: u64 = 0xe_0000;
/// The end of usable base memory: the MP table and the legacy video and
/// BIOS areas above it are reserved.
pub const BASE_MEMORY_END: u64 = MP_TABLE_PADDR;
/// The first byte above the legacy areas.
pub const HIGH_MEMORY_START: u64 = 0x10_0000;
/// The start of the hole below 4 GiB kept free of RAM for devices (I/O
/// APIC, local APICs, virtio-mmio windows).
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// Where RAM continues above the hole.
pub const FOUR_GIB: u64 = 1 << 32;
/// The first virtio-mmio window; each device takes the next 4 KiB.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// The interrupt (I/O APIC input) of the first virtio-mmio device; the
/// others take the next ones.
pub const VIRTIO_FIRST_GSI: u32 = 5;
/// How many virtio-mmio devices fit on the I/O APIC's 24 inputs.
pub const VIRTIO_DEVICES_MAX: usize = 24 - VIRTIO_FIRST_GSI as usize;
/// The I/O APIC of KVM's in-kernel irqchip.
pub const IO_APIC_PADDR: u64 = 0xfec0_0000;
/// The local APICs' registers.
pub const LOCAL_APIC_PADDR: u64 = 0xfee0_0000;
/// The address KVM needs for the task state segment it uses to run real
/// mode on Intel processors (three pages, inside the hole).
pub const KVM_TSS_PADDR: u64 = 0xfffb_d000;

// The boot structures stay clear of each other, of page 8 (the kernel's
// trampoline) and of the MP table.
const _: () = {
    assert!(MODLIST_PADDR >= START_INFO_PADDR + rosv_abi::pvh::START_INFO_SIZE as u64);
    assert!(MEMMAP_PADDR >= MODLIST_PADDR + rosv_abi::pvh::MODLIST_ENTRY_SIZE as u64);
    assert!(MEMMAP_CAPACITY >= 4);
    assert!(MEMMAP_PADDR + (MEMMAP_CAPACITY * rosv_abi::pvh::MEMMAP_ENTRY_SIZE) as u64 <= 0x7000);
    assert!(COMMAND_LINE_PADDR >= 0x9000);
    assert!(COMMAND_LINE_PADDR + COMMAND_LINE_CAPACITY as u64 <= MP_TABLE_PADDR);
};

/// Guest RAM as (guest physical address, size in bytes) pieces: up to the
/// hole, then above 4 GiB.
pub fn ram_ranges(memory_bytes: u64) -> Vec<(u64, u64)> {
    let low = memory_bytes.min(MMIO_HOLE_START);
    let mut ranges = vec![(0, low)];
    if memory_bytes > low {
        ranges.push((FOUR_GIB, memory_bytes - low));
    }
    ranges
}

/// The memory map handed to the guest for `memory_bytes` of RAM (e820
/// types, sorted by address).
pub fn memory_map(memory_bytes: u64) -> Vec<MemoryRegion> {
    let mut map = vec![
        MemoryRegion { start: 0, size: BASE_MEMORY_END, kind: MemoryKind::Usable },
        MemoryRegion {
            start: BASE_MEMORY_END,
            size: HIGH_MEMORY_START - BASE_MEMORY_END,
            kind: MemoryKind::Reserved,
        },
    ];
    for (start, size) in ram_ranges(memory_bytes) {
        let end = start + size;
        let start = start.max(HIGH_MEMORY_START);
        if end > start {
            map.push(MemoryRegion { start, size: end - start, kind: MemoryKind::Usable });
        }
    }
    map
}

/// Where an initrd of `size` bytes goes: page-aligned at the top of the
/// RAM below the hole, above `kernel_end`. `None` if it does not fit.
pub fn initrd_address(memory_bytes: u64, kernel_end: u64, size: u64) -> Option<u64> {
    let top = memory_bytes.min(MMIO_HOLE_START);
    let start = top.checked_sub(size)? & !(PAGE_SIZE - 1);
    (start >= kernel_end.max(HIGH_MEMORY_START)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn small_guests_have_base_memory_and_one_high_region() {
        let map = memory_map(128 * MIB);
        assert_eq!(
            map,
            [
                MemoryRegion { start: 0, size: 0x9_fc00, kind: MemoryKind::Usable },
                MemoryRegion { start: 0x9_fc00, size: 0x6_0400, kind: MemoryKind::Reserved },
                MemoryRegion { start: MIB, size: 127 * MIB, kind: MemoryKind::Usable },
            ]
        );
        assert_eq!(ram_ranges(128 * MIB), [(0, 128 * MIB)]);
    }

    #[test]
    fn large_guests_continue_above_the_hole() {
        let memory = 4096 * MIB;
        assert_eq!(ram_ranges(memory), [(0, 3072 * MIB), (FOUR_GIB, 1024 * MIB)]);
        let map = memory_map(memory);
        assert_eq!(map[2], MemoryRegion { start: MIB, size: 3071 * MIB, kind: MemoryKind::Usable });
        assert_eq!(map[3], MemoryRegion { start: FOUR_GIB, size: 1024 * MIB, kind: MemoryKind::Usable });
        let usable: u64 =
            map.iter().filter(|region| region.kind == MemoryKind::Usable).map(|region| region.size).sum();
        assert_eq!(usable, memory - HIGH_MEMORY_START + BASE_MEMORY_END);
    }

    #[test]
    fn the_initrd_goes_on_top_of_low_ram_above_the_kernel() {
        assert_eq!(initrd_address(128 * MIB, 4 * MIB, 5000), Some(128 * MIB - 2 * PAGE_SIZE));
        assert_eq!(initrd_address(8192 * MIB, 4 * MIB, MIB), Some(MMIO_HOLE_START - MIB));
        assert_eq!(initrd_address(8 * MIB, 4 * MIB, 4 * MIB), Some(4 * MIB));
        assert_eq!(initrd_address(8 * MIB, 4 * MIB, 4 * MIB + 1), None);
        assert_eq!(initrd_address(8 * MIB, 4 * MIB, 9 * MIB), None);
    }
}
