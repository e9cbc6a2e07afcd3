//! Where the kernel image lies, from the symbols of the linker script.

use crate::memory::{KERNEL_VIRTUAL_OFFSET, PHYSICAL_MAP_OFFSET, PhysicalRange};

unsafe extern "C" {
    static __kernel_physical_start: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __kernel_end: u8;
}

/// The kernel's virtual section boundaries.
#[derive(Debug, Clone, Copy)]
pub struct KernelSections {
    /// Physical address of the first byte of the image (the `.boot` section).
    pub physical_start: u64,
    /// Start of `.text`.
    pub text_start: u64,
    /// End of `.text`.
    pub text_end: u64,
    /// Start of the read-only data.
    pub rodata_start: u64,
    /// Start of `.data` and `.bss`.
    pub data_start: u64,
    /// End of the image, page-aligned.
    pub end: u64,
}

/// The kernel's sections.
pub fn kernel_sections() -> KernelSections {
    KernelSections {
        physical_start: &raw const __kernel_physical_start as u64,
        text_start: &raw const __text_start as u64,
        text_end: &raw const __text_end as u64,
        rodata_start: &raw const __rodata_start as u64,
        data_start: &raw const __data_start as u64,
        end: &raw const __kernel_end as u64,
    }
}

/// The physical memory the kernel image occupies, `.boot` included.
pub fn kernel_physical_range() -> PhysicalRange {
    let sections = kernel_sections();
    let end = sections.end - KERNEL_VIRTUAL_OFFSET;
    PhysicalRange { start: sections.physical_start, size: end - sections.physical_start }
}

/// Whether `address` is in the kernel's code.
pub fn is_kernel_text(address: u64) -> bool {
    let sections = kernel_sections();
    (sections.text_start..sections.text_end).contains(&address)
}

/// Whether `[address, address + size)` lies in memory the kernel always maps:
/// its image, or the physical map of RAM.
pub fn is_kernel_data(address: u64, size: u64) -> bool {
    let Some(end) = address.checked_add(size) else {
        return false;
    };
    let sections = kernel_sections();
    let in_image = address >= sections.text_start && end <= sections.end;
    let ram_end = crate::paging::physical_map_end();
    let in_physical_map = address >= PHYSICAL_MAP_OFFSET && end <= PHYSICAL_MAP_OFFSET + ram_end;
    in_image || in_physical_map
}
