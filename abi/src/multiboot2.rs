//! The Multiboot2 boot protocol, as GRUB boots the kernel from a disk.
//!
//! The kernel carries a Multiboot2 header in the first 32 KiB of its file;
//! GRUB's `multiboot2` command loads its ELF segments, `module2` loads
//! files beside it, and GRUB enters the header's entry address in 32-bit
//! protected mode, paging off, with EAX = [`BOOTLOADER_MAGIC`] and EBX the
//! physical address of the boot information: a `u32` total size, a `u32`
//! reserved, then tags, each 8-byte aligned (Multiboot2 specification 2.0,
//! §3.1 "OS image format" and §3.6 "Boot information format"). On UEFI,
//! GRUB exits the firmware's boot services first and lists the memory map
//! in the same tag as on BIOS; the ACPI tags hold a copy of the RSDP, the
//! only way to find it there.
//!
//! [`Tags`] walks the information without trusting a byte of it; the kernel
//! picks the tags it needs; [`find_header`] checks a kernel file's header.

use crate::bytes::{u32_at, u64_at};
use crate::memory::{MemoryKind, MemoryRegion};

/// The first word of the header in the kernel file.
pub const HEADER_MAGIC: u32 = 0xe852_50d6;
/// The header's architecture field: 32-bit protected mode i386.
pub const ARCHITECTURE_I386: u32 = 0;
/// What a Multiboot2 loader puts in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x36d7_6289;
/// The header must lie within this many bytes from the file's start.
pub const HEADER_SEARCH_LIMIT: usize = 32 * 1024;
/// Header tag: the entry address (used instead of the ELF entry).
pub const HEADER_TAG_ENTRY_ADDRESS: u16 = 3;
/// Header tag that ends the list.
pub const HEADER_TAG_END: u16 = 0;

/// Information tag that ends the list.
pub const TAG_END: u32 = 0;
/// Information tag: the command line, NUL-terminated.
pub const TAG_COMMAND_LINE: u32 = 1;
/// Information tag: one module (`mod_start`, `mod_end`, its string).
pub const TAG_MODULE: u32 = 3;
/// Information tag: the memory map (e820 type numbers).
pub const TAG_MEMORY_MAP: u32 = 6;
/// Information tag: a copy of an ACPI 1.0 RSDP.
pub const TAG_ACPI_OLD: u32 = 14;
/// Information tag: a copy of an ACPI 2.0+ RSDP.
pub const TAG_ACPI_NEW: u32 = 15;

/// Size of the information's fixed part (total size, reserved).
const INFORMATION_HEADER_SIZE: usize = 8;
/// Size of a tag's fixed part (type, size).
const TAG_HEADER_SIZE: usize = 8;

/// Why boot information was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InformationError {
    /// Its total size is smaller than its fixed part or larger than given.
    BadSize(u32),
}

/// One information tag: its type and the bytes after its fixed part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The tag type (`TAG_*`).
    pub kind: u32,
    /// The tag's bytes after its type and size fields.
    pub body: &'a [u8],
}

/// The total size the information's first word claims, or `None` if
/// fewer than four bytes are given.
pub fn total_size(bytes: &[u8]) -> Option<u32> {
    u32_at(bytes, 0)
}

/// The tags of boot information, in order, up to the end tag or the first
/// tag that does not fit.
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Tags<'a> {
    /// Walks the information in `bytes`, which must hold its total size.
    pub fn new(bytes: &'a [u8]) -> Result<Self, InformationError> {
        let total = total_size(bytes).ok_or(InformationError::BadSize(0))?;
        if (total as usize) < INFORMATION_HEADER_SIZE || total as usize > bytes.len() {
            return Err(InformationError::BadSize(total));
        }
        Ok(Tags { bytes: &bytes[..total as usize], offset: INFORMATION_HEADER_SIZE })
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        let kind = u32_at(self.bytes, self.offset)?;
        let size = u32_at(self.bytes, self.offset + 4)? as usize;
        if kind == TAG_END || size < TAG_HEADER_SIZE {
            return None;
        }
        let end = self.offset.checked_add(size)?;
        let body = self.bytes.get(self.offset + TAG_HEADER_SIZE..end)?;
        // The next tag starts at the next multiple of 8.
        self.offset = end.checked_add(7)? & !7;
        Some(Tag { kind, body })
    }
}

/// A module tag's range and string (GRUB gives the `module2` words after
/// the file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    /// Physical address of the module's first byte.
    pub start: u64,
    /// Physical address one past its last byte.
    pub end: u64,
    /// The module's string, without its NUL.
    pub string: &'a [u8],
}

/// Decodes a [`TAG_MODULE`] body; `None` if too short or `end < start`.
pub fn decode_module(body: &[u8]) -> Option<Module<'_>> {
    let start = u64::from(u32_at(body, 0)?);
    let end = u64::from(u32_at(body, 4)?);
    (end >= start).then_some(Module { start, end, string: until_nul(body.get(8..)?) })
}

/// The bytes of a NUL-terminated string body, without the NUL (all of them
/// if there is none).
pub fn until_nul(body: &[u8]) -> &[u8] {
    let length = body.iter().position(|&byte| byte == 0).unwrap_or(body.len());
    &body[..length]
}

/// The regions of a [`TAG_MEMORY_MAP`] body (its entries use e820 type
/// numbers); empty if the entry size is too small.
pub fn memory_regions(body: &[u8]) -> impl Iterator<Item = MemoryRegion> + '_ {
    let entry_size = u32_at(body, 0).unwrap_or(0) as usize;
    let entries = body.get(8..).unwrap_or(&[]);
    let count = if entry_size >= 24 { entries.len() / entry_size } else { 0 };
    (0..count).filter_map(move |index| {
        let entry = &entries[index * entry_size..(index + 1) * entry_size];
        Some(MemoryRegion {
            start: u64_at(entry, 0)?,
            size: u64_at(entry, 8)?,
            kind: MemoryKind::from_e820(u32_at(entry, 16)?),
        })
    })
}

/// Finds a valid Multiboot2 header (magic, i386 architecture, checksum)
/// within the first 32 KiB of `file`; returns its offset and its entry
/// address tag's address, if it has one.
pub fn find_header(file: &[u8]) -> Option<(usize, Option<u32>)> {
    let limit = file.len().min(HEADER_SEARCH_LIMIT);
    (0..limit).step_by(8).find_map(|offset| {
        if u32_at(file, offset)? != HEADER_MAGIC {
            return None;
        }
        let architecture = u32_at(file, offset + 4)?;
        let length = u32_at(file, offset + 8)?;
        let checksum = u32_at(file, offset + 12)?;
        let sum = HEADER_MAGIC.wrapping_add(architecture).wrapping_add(length).wrapping_add(checksum);
        if sum != 0 || architecture != ARCHITECTURE_I386 || length < 24 {
            return None;
        }
        let header = file.get(offset..offset.checked_add(length as usize)?)?;
        let mut entry = None;
        let mut tag_offset = 16;
        while let (Some(kind), Some(size)) =
            (crate::bytes::u16_at(header, tag_offset), u32_at(header, tag_offset + 4))
        {
            if kind == HEADER_TAG_END || size < 8 {
                break;
            }
            if kind == HEADER_TAG_ENTRY_ADDRESS {
                entry = u32_at(header, tag_offset + 8);
            }
            tag_offset = (tag_offset.checked_add(size as usize)?.checked_add(7)?) & !7;
        }
        Some((offset, entry))
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn tag(kind: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&kind.to_le_bytes());
        bytes.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
        bytes.extend_from_slice(body);
        while bytes.len() % 8 != 0 {
            bytes.push(0);
        }
        bytes
    }

    fn information(tags: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = std::vec![0u8; 8];
        for tag in tags {
            bytes.extend_from_slice(tag);
        }
        bytes.extend_from_slice(&tag(TAG_END, &[]));
        let total = bytes.len() as u32;
        bytes[..4].copy_from_slice(&total.to_le_bytes());
        bytes
    }

    #[test]
    fn walks_tags_in_order() {
        let mut module = Vec::new();
        module.extend_from_slice(&0x10_0000u32.to_le_bytes());
        module.extend_from_slice(&0x10_2000u32.to_le_bytes());
        module.extend_from_slice(b"root\0");
        let bytes = information(&[tag(TAG_COMMAND_LINE, b"--verbose\0"), tag(TAG_MODULE, &module)]);
        let tags: Vec<Tag<'_>> = Tags::new(&bytes).unwrap().collect();
        assert_eq!(tags.len(), 2);
        assert_eq!(until_nul(tags[0].body), b"--verbose");
        let module = decode_module(tags[1].body).unwrap();
        assert_eq!((module.start, module.end, module.string), (0x10_0000, 0x10_2000, &b"root"[..]));
    }

    #[test]
    fn decodes_the_memory_map() {
        let mut body = Vec::new();
        body.extend_from_slice(&24u32.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        for (start, size, kind) in
            [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x700_0000, 1), (0xfffc_0000, 0x4_0000, 2)]
        {
            body.extend_from_slice(&start.to_le_bytes());
            body.extend_from_slice(&size.to_le_bytes());
            body.extend_from_slice(&kind.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
        }
        let regions: Vec<MemoryRegion> = memory_regions(&body).collect();
        assert_eq!(regions.len(), 3);
        assert_eq!(regions[1], MemoryRegion { start: 0x10_0000, size: 0x700_0000, kind: MemoryKind::Usable });
        assert_eq!(regions[2].kind, MemoryKind::Reserved);
    }

    #[test]
    fn refuses_sizes_that_do_not_fit() {
        let mut bytes = information(&[]);
        assert!(Tags::new(&bytes[..4]).is_err());
        bytes[..4].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(Tags::new(&bytes).unwrap_err(), InformationError::BadSize(4));
        bytes[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(Tags::new(&bytes).is_err());
    }

    #[test]
    fn stops_at_a_tag_that_overruns() {
        let mut bytes = information(&[tag(TAG_COMMAND_LINE, b"x\0")]);
        // The tag claims more bytes than the information holds.
        bytes[12..16].copy_from_slice(&4096u32.to_le_bytes());
        assert_eq!(Tags::new(&bytes).unwrap().count(), 0);
        // A module ending before it starts is refused.
        let mut module = Vec::new();
        module.extend_from_slice(&0x2000u32.to_le_bytes());
        module.extend_from_slice(&0x1000u32.to_le_bytes());
        assert_eq!(decode_module(&module), None);
    }

    #[test]
    fn finds_a_header_and_its_entry() {
        let mut file = std::vec![0u8; 0x1000];
        let header: [u32; 10] = [
            HEADER_MAGIC,
            ARCHITECTURE_I386,
            40,
            0u32.wrapping_sub(HEADER_MAGIC + 40),
            u32::from(HEADER_TAG_ENTRY_ADDRESS),
            12,
            0x20_0040,
            0,
            0,
            8,
        ];
        for (index, word) in header.iter().enumerate() {
            file[0x800 + index * 4..0x800 + index * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        assert_eq!(find_header(&file), Some((0x800, Some(0x20_0040))));
        file[0x80c] ^= 1;
        assert_eq!(find_header(&file), None);
    }
}
