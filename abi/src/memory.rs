//! Physical memory regions as reported by the boot protocols.
//!
//! Both PVH's memory map and Linux's e820 table use the e820 type numbers, so
//! one region type serves both.

/// What a physical memory region may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Ordinary RAM, free for the kernel to use (e820 type 1).
    Usable,
    /// ACPI tables that may be reclaimed once read (e820 type 3).
    AcpiReclaimable,
    /// Anything else: reserved, ACPI NVS, unusable, persistent memory.
    Reserved,
}

impl MemoryKind {
    /// Translates an e820 type number.
    pub fn from_e820(kind: u32) -> Self {
        match kind {
            1 => MemoryKind::Usable,
            3 => MemoryKind::AcpiReclaimable,
            _ => MemoryKind::Reserved,
        }
    }

    /// The e820 type number a loader writes for this kind (2 for reserved).
    pub fn to_e820(self) -> u32 {
        match self {
            MemoryKind::Usable => 1,
            MemoryKind::Reserved => 2,
            MemoryKind::AcpiReclaimable => 3,
        }
    }
}

/// A physical address range `[start, start + size)` and its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Physical address of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// What the region may be used for.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// Physical address one past the last byte, saturating at the top of the
    /// address space.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}
