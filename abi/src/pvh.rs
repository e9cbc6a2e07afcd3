//! The PVH direct boot protocol (Xen's x86/HVM direct boot ABI).
//!
//! A PVH loader enters the kernel in 32-bit protected mode at the address in
//! the `XEN_ELFNOTE_PHYS32_ENTRY` note, with EBX holding the physical address
//! of an [`StartInfo`] (`struct hvm_start_info`, version 0 or 1).
//!
//! The kernel decodes these structures; loaders (the tools' built-in
//! monitor) encode them with the same offsets.

use crate::bytes::{u32_at, u64_at};
use crate::memory::{MemoryKind, MemoryRegion};

/// The value of `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// The ELF note type of the 32-bit physical entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The owner name of Xen ELF notes, without its terminating NUL.
pub const XEN_ELFNOTE_OWNER: &[u8] = b"Xen";
/// Size of `struct hvm_start_info` version 1 in bytes.
pub const START_INFO_SIZE: usize = 56;
/// Size of `struct hvm_memmap_table_entry` in bytes.
pub const MEMMAP_ENTRY_SIZE: usize = 24;
/// Size of `struct hvm_modlist_entry` in bytes.
pub const MODLIST_ENTRY_SIZE: usize = 32;

/// The fields of `struct hvm_start_info` the kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version: 0 has no memory map, 1 adds it.
    pub version: u32,
    /// Number of entries in the module list.
    pub module_count: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map (version 1 only), or 0.
    pub memmap_paddr: u64,
    /// Number of memory map entries (version 1 only).
    pub memmap_entries: u32,
}

/// Why a `hvm_start_info` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// The magic field is not [`START_INFO_MAGIC`]; holds what was found.
    BadMagic(u32),
}

impl StartInfo {
    /// Decodes a `hvm_start_info` from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, StartInfoError> {
        let magic = u32_at(bytes, 0).ok_or(StartInfoError::Truncated)?;
        if magic != START_INFO_MAGIC {
            return Err(StartInfoError::BadMagic(magic));
        }
        let field32 = |offset| u32_at(bytes, offset).ok_or(StartInfoError::Truncated);
        let field64 = |offset| u64_at(bytes, offset).ok_or(StartInfoError::Truncated);
        let version = field32(4)?;
        let (memmap_paddr, memmap_entries) = if version >= 1 { (field64(40)?, field32(48)?) } else { (0, 0) };
        Ok(StartInfo {
            version,
            module_count: field32(12)?,
            modlist_paddr: field64(16)?,
            cmdline_paddr: field64(24)?,
            rsdp_paddr: field64(32)?,
            memmap_paddr,
            memmap_entries,
        })
    }
}

impl StartInfo {
    /// Encodes the structure as version 1 lays it out (flags 0).
    pub fn encode(&self) -> [u8; START_INFO_SIZE] {
        let mut bytes = [0u8; START_INFO_SIZE];
        put(&mut bytes, 0, &START_INFO_MAGIC.to_le_bytes());
        put(&mut bytes, 4, &self.version.to_le_bytes());
        put(&mut bytes, 12, &self.module_count.to_le_bytes());
        put(&mut bytes, 16, &self.modlist_paddr.to_le_bytes());
        put(&mut bytes, 24, &self.cmdline_paddr.to_le_bytes());
        put(&mut bytes, 32, &self.rsdp_paddr.to_le_bytes());
        put(&mut bytes, 40, &self.memmap_paddr.to_le_bytes());
        put(&mut bytes, 48, &self.memmap_entries.to_le_bytes());
        bytes
    }
}

fn put(bytes: &mut [u8], offset: usize, field: &[u8]) {
    bytes[offset..offset + field.len()].copy_from_slice(field);
}

/// Encodes one `hvm_memmap_table_entry`: address, size, e820 type.
pub fn encode_memmap_entry(region: &MemoryRegion) -> [u8; MEMMAP_ENTRY_SIZE] {
    let mut bytes = [0u8; MEMMAP_ENTRY_SIZE];
    put(&mut bytes, 0, &region.start.to_le_bytes());
    put(&mut bytes, 8, &region.size.to_le_bytes());
    put(&mut bytes, 16, &region.kind.to_e820().to_le_bytes());
    bytes
}

/// Decodes one `hvm_memmap_table_entry`.
pub fn decode_memmap_entry(bytes: &[u8]) -> Option<MemoryRegion> {
    Some(MemoryRegion {
        start: u64_at(bytes, 0)?,
        size: u64_at(bytes, 8)?,
        kind: MemoryKind::from_e820(u32_at(bytes, 16)?),
    })
}

/// A boot module (for example an initrd) handed over by the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    /// Physical address of the module's first byte.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Module {
    /// Encodes the module as a `hvm_modlist_entry` (no command line).
    pub fn encode(&self) -> [u8; MODLIST_ENTRY_SIZE] {
        let mut bytes = [0u8; MODLIST_ENTRY_SIZE];
        put(&mut bytes, 0, &self.paddr.to_le_bytes());
        put(&mut bytes, 8, &self.size.to_le_bytes());
        bytes
    }
}

/// Decodes one `hvm_modlist_entry`.
pub fn decode_module(bytes: &[u8]) -> Option<Module> {
    Some(Module { paddr: u64_at(bytes, 0)?, size: u64_at(bytes, 8)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_info(version: u32) -> [u8; START_INFO_SIZE] {
        let mut bytes = [0u8; START_INFO_SIZE];
        bytes[0..4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        bytes[4..8].copy_from_slice(&version.to_le_bytes());
        bytes[12..16].copy_from_slice(&1u32.to_le_bytes());
        bytes[16..24].copy_from_slice(&0x7000u64.to_le_bytes());
        bytes[24..32].copy_from_slice(&0x20000u64.to_le_bytes());
        bytes[40..48].copy_from_slice(&0x8000u64.to_le_bytes());
        bytes[48..52].copy_from_slice(&3u32.to_le_bytes());
        bytes
    }

    #[test]
    fn decodes_version_one() {
        let info = StartInfo::decode(&start_info(1)).unwrap();
        assert_eq!(info.module_count, 1);
        assert_eq!(info.modlist_paddr, 0x7000);
        assert_eq!(info.cmdline_paddr, 0x20000);
        assert_eq!(info.memmap_paddr, 0x8000);
        assert_eq!(info.memmap_entries, 3);
    }

    #[test]
    fn version_zero_has_no_memory_map() {
        let info = StartInfo::decode(&start_info(0)).unwrap();
        assert_eq!(info.memmap_entries, 0);
        assert_eq!(info.memmap_paddr, 0);
    }

    #[test]
    fn refuses_bad_magic_and_short_input() {
        let mut bytes = start_info(1);
        bytes[0] ^= 1;
        assert!(matches!(StartInfo::decode(&bytes), Err(StartInfoError::BadMagic(_))));
        let good = start_info(1);
        assert_eq!(StartInfo::decode(&good[..30]), Err(StartInfoError::Truncated));
    }

    #[test]
    fn encoding_round_trips_through_the_decoders() {
        let info = StartInfo {
            version: 1,
            module_count: 1,
            modlist_paddr: 0x6040,
            cmdline_paddr: 0x2_0000,
            rsdp_paddr: 0,
            memmap_paddr: 0x6080,
            memmap_entries: 4,
        };
        assert_eq!(StartInfo::decode(&info.encode()), Ok(info));
        for kind in [MemoryKind::Usable, MemoryKind::Reserved, MemoryKind::AcpiReclaimable] {
            let region = MemoryRegion { start: 0x10_0000, size: 0x7f0_0000, kind };
            assert_eq!(decode_memmap_entry(&encode_memmap_entry(&region)), Some(region));
        }
        let module = Module { paddr: 0x7e0_0000, size: 0x1_2345 };
        assert_eq!(decode_module(&module.encode()), Some(module));
    }

    #[test]
    fn decodes_memmap_entry() {
        let mut bytes = [0u8; MEMMAP_ENTRY_SIZE];
        bytes[0..8].copy_from_slice(&0x10_0000u64.to_le_bytes());
        bytes[8..16].copy_from_slice(&0x200_0000u64.to_le_bytes());
        bytes[16..20].copy_from_slice(&1u32.to_le_bytes());
        let region = decode_memmap_entry(&bytes).unwrap();
        assert_eq!(region.start, 0x10_0000);
        assert_eq!(region.end(), 0x210_0000);
        assert_eq!(region.kind, MemoryKind::Usable);
    }
}
