//! The Linux x86-64 boot protocol's `boot_params` ("zero page").
//!
//! A 64-bit Linux loader (Firecracker without a PVH note, for example) enters
//! the ELF entry point in long mode with RSI holding the physical address of
//! this 4 KiB structure. Offsets are from Linux's
//! Documentation/arch/x86/zero-page.rst and boot.rst.

use crate::bytes::{u32_at, u64_at};
use crate::memory::{MemoryKind, MemoryRegion};

/// Size of `struct boot_params`.
pub const BOOT_PARAMS_SIZE: usize = 4096;
/// Offset of `ext_ramdisk_image` (high 32 bits of the initrd address).
pub const EXT_RAMDISK_IMAGE: usize = 0x0c0;
/// Offset of `ext_ramdisk_size` (high 32 bits of the initrd size).
pub const EXT_RAMDISK_SIZE: usize = 0x0c4;
/// Offset of `ext_cmd_line_ptr` (high 32 bits of the command line address).
pub const EXT_CMD_LINE_PTR: usize = 0x0c8;
/// Offset of `e820_entries` (u8).
pub const E820_ENTRIES: usize = 0x1e8;
/// Offset of `hdr.header`, which holds [`HEADER_MAGIC`].
pub const HEADER: usize = 0x202;
/// Offset of `hdr.ramdisk_image`.
pub const RAMDISK_IMAGE: usize = 0x218;
/// Offset of `hdr.ramdisk_size`.
pub const RAMDISK_SIZE: usize = 0x21c;
/// Offset of `hdr.cmd_line_ptr`.
pub const CMD_LINE_PTR: usize = 0x228;
/// Offset of `hdr.cmdline_size`.
pub const CMDLINE_SIZE: usize = 0x238;
/// Offset of `e820_table`.
pub const E820_TABLE: usize = 0x2d0;
/// Capacity of `e820_table`.
pub const E820_MAX_ENTRIES: usize = 128;
/// Size of one `struct boot_e820_entry` (packed: addr, size, type).
pub const E820_ENTRY_SIZE: usize = 20;
/// "HdrS", little-endian.
pub const HEADER_MAGIC: u32 = 0x5372_6448;

/// The fields of `boot_params` the kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootParams {
    /// Physical address of the NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Physical address of the initrd, or 0.
    pub ramdisk_paddr: u64,
    /// Size of the initrd in bytes.
    pub ramdisk_size: u64,
    /// Number of valid e820 entries (at most [`E820_MAX_ENTRIES`]).
    pub e820_entries: usize,
}

/// Why a `boot_params` page was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootParamsError {
    /// Fewer than [`BOOT_PARAMS_SIZE`] bytes.
    Truncated,
    /// The setup header does not carry "HdrS"; holds what was found.
    BadMagic(u32),
}

impl BootParams {
    /// Decodes the fields of a `boot_params` page.
    pub fn decode(bytes: &[u8]) -> Result<Self, BootParamsError> {
        if bytes.len() < BOOT_PARAMS_SIZE {
            return Err(BootParamsError::Truncated);
        }
        let field32 = |offset| u64::from(u32_at(bytes, offset).unwrap_or(0));
        let magic = u32_at(bytes, HEADER).unwrap_or(0);
        if magic != HEADER_MAGIC {
            return Err(BootParamsError::BadMagic(magic));
        }
        let split = |low: usize, high: usize| field32(low) | (field32(high) << 32);
        Ok(BootParams {
            cmdline_paddr: split(CMD_LINE_PTR, EXT_CMD_LINE_PTR),
            ramdisk_paddr: split(RAMDISK_IMAGE, EXT_RAMDISK_IMAGE),
            ramdisk_size: split(RAMDISK_SIZE, EXT_RAMDISK_SIZE),
            e820_entries: usize::from(bytes[E820_ENTRIES]).min(E820_MAX_ENTRIES),
        })
    }

    /// The `index`th e820 entry of the page, if it exists.
    pub fn e820_entry(&self, bytes: &[u8], index: usize) -> Option<MemoryRegion> {
        if index >= self.e820_entries {
            return None;
        }
        let offset = E820_TABLE + index * E820_ENTRY_SIZE;
        Some(MemoryRegion {
            start: u64_at(bytes, offset)?,
            size: u64_at(bytes, offset + 8)?,
            kind: MemoryKind::from_e820(u32_at(bytes, offset + 16)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> [u8; BOOT_PARAMS_SIZE] {
        let mut bytes = [0u8; BOOT_PARAMS_SIZE];
        bytes[HEADER..HEADER + 4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        bytes[CMD_LINE_PTR..CMD_LINE_PTR + 4].copy_from_slice(&0x20000u32.to_le_bytes());
        bytes[RAMDISK_IMAGE..RAMDISK_IMAGE + 4].copy_from_slice(&0x800_0000u32.to_le_bytes());
        bytes[RAMDISK_SIZE..RAMDISK_SIZE + 4].copy_from_slice(&0x1234u32.to_le_bytes());
        bytes[E820_ENTRIES] = 2;
        let second = E820_TABLE + E820_ENTRY_SIZE;
        bytes[second..second + 8].copy_from_slice(&0x10_0000u64.to_le_bytes());
        bytes[second + 8..second + 16].copy_from_slice(&0x400_0000u64.to_le_bytes());
        bytes[second + 16..second + 20].copy_from_slice(&1u32.to_le_bytes());
        bytes
    }

    #[test]
    fn decodes_header_fields() {
        let bytes = page();
        let params = BootParams::decode(&bytes).unwrap();
        assert_eq!(params.cmdline_paddr, 0x20000);
        assert_eq!(params.ramdisk_paddr, 0x800_0000);
        assert_eq!(params.ramdisk_size, 0x1234);
        assert_eq!(params.e820_entries, 2);
        let region = params.e820_entry(&bytes, 1).unwrap();
        assert_eq!((region.start, region.size), (0x10_0000, 0x400_0000));
        assert_eq!(region.kind, MemoryKind::Usable);
        assert_eq!(params.e820_entry(&bytes, 2), None);
    }

    #[test]
    fn refuses_pages_without_header_magic() {
        let mut bytes = page();
        bytes[HEADER] = 0;
        assert!(matches!(BootParams::decode(&bytes), Err(BootParamsError::BadMagic(_))));
        assert_eq!(BootParams::decode(&bytes[..100]), Err(BootParamsError::Truncated));
    }

    #[test]
    fn entry_count_is_capped() {
        let mut bytes = page();
        bytes[E820_ENTRIES] = 255;
        let params = BootParams::decode(&bytes).unwrap();
        assert_eq!(params.e820_entries, E820_MAX_ENTRIES);
        assert!(params.e820_entry(&bytes, E820_MAX_ENTRIES - 1).is_some());
    }
}
