//! A GUID partition table and its protective MBR (UEFI 2.10 §5.2, §5.3).
//!
//! [`Layout`] places the partitions on 1 MiB boundaries; [`Layout::tables`]
//! encodes sector 0 (the protective MBR, whose first 440 bytes are the
//! BIOS boot code), the primary header and entries, and their backup copies
//! at the end of the disk.

use std::hash::{DefaultHasher, Hash, Hasher};

/// Bytes per sector.
pub const SECTOR_SIZE: u64 = 512;
/// Partitions start on 1 MiB boundaries, as every current tool places them.
pub const ALIGNMENT_SECTORS: u64 = 2048;
/// Entries in the partition entry array, the minimum the specification
/// reserves room for.
const ENTRY_COUNT: u32 = 128;
/// Bytes per partition entry.
const ENTRY_SIZE: u32 = 128;
/// Sectors the entry array takes.
const ENTRY_SECTORS: u64 = (ENTRY_COUNT as u64 * ENTRY_SIZE as u64) / SECTOR_SIZE;
/// Bytes of the header the CRC covers.
const HEADER_SIZE: u32 = 92;
/// Bytes of boot code before the MBR's disk signature.
pub const MBR_BOOT_CODE_SIZE: usize = 440;

/// A partition type GUID, in its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionType(pub &'static str);

/// Where GRUB's BIOS core image lives when the disk is partitioned with GPT.
pub const BIOS_BOOT: PartitionType = PartitionType("21686148-6449-6E6F-744E-656564454649");
/// The EFI system partition.
pub const EFI_SYSTEM: PartitionType = PartitionType("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");

/// One partition of a [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its type.
    pub kind: PartitionType,
    /// Its name (at most 36 UTF-16 units).
    pub name: &'static str,
    /// Its first sector.
    pub first_sector: u64,
    /// Its length in sectors.
    pub sectors: u64,
}

impl Partition {
    /// Its byte offset on the disk.
    pub fn offset(&self) -> u64 {
        self.first_sector * SECTOR_SIZE
    }
}

/// The partitions of a disk and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The partitions, in order.
    pub partitions: Vec<Partition>,
    /// The disk's size in sectors.
    pub total_sectors: u64,
    /// Seeds the disk and partition GUIDs, so the same contents give the
    /// same disk.
    pub seed: u64,
}

impl Layout {
    /// Partitions of `sizes` (type, name, bytes) one after another from
    /// 1 MiB, each rounded up to whole MiB, and room for the backup table.
    pub fn new(sizes: &[(PartitionType, &'static str, u64)], seed: u64) -> Self {
        let mut next = ALIGNMENT_SECTORS;
        let mut partitions = Vec::new();
        for &(kind, name, bytes) in sizes {
            let sectors = bytes.div_ceil(SECTOR_SIZE).div_ceil(ALIGNMENT_SECTORS) * ALIGNMENT_SECTORS;
            partitions.push(Partition { kind, name, first_sector: next, sectors });
            next += sectors;
        }
        // The backup entries and header follow the last partition, within
        // one more MiB, so the disk stays a whole number of MiB.
        Layout { partitions, total_sectors: next + ALIGNMENT_SECTORS, seed }
    }

    /// The disk's size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.total_sectors * SECTOR_SIZE
    }

    /// The byte ranges to write: (offset, bytes) for the MBR with
    /// `boot_code` (at most 440 bytes), the primary header and entries, and
    /// the backup entries and header.
    pub fn tables(&self, boot_code: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let entries = self.entries();
        let entries_crc = crc32fast::hash(&entries);
        let last_sector = self.total_sectors - 1;
        let backup_entries = last_sector - ENTRY_SECTORS;
        vec![
            (0, self.protective_mbr(boot_code)),
            (SECTOR_SIZE, self.header(1, last_sector, 2, entries_crc)),
            (2 * SECTOR_SIZE, entries.clone()),
            (backup_entries * SECTOR_SIZE, entries),
            (last_sector * SECTOR_SIZE, self.header(last_sector, 1, backup_entries, entries_crc)),
        ]
    }

    fn protective_mbr(&self, boot_code: &[u8]) -> Vec<u8> {
        let mut sector = vec![0u8; SECTOR_SIZE as usize];
        let code = &boot_code[..boot_code.len().min(MBR_BOOT_CODE_SIZE)];
        sector[..code.len()].copy_from_slice(code);
        // One partition of type 0xEE covering the disk from sector 1 (or as
        // much as 32 bits count), CHS fields as the specification gives.
        let entry = &mut sector[0x1be..0x1ce];
        entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        entry[4] = 0xee;
        entry[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        let covered = u32::try_from(self.total_sectors - 1).unwrap_or(u32::MAX);
        entry[12..16].copy_from_slice(&covered.to_le_bytes());
        sector[0x1fe] = 0x55;
        sector[0x1ff] = 0xaa;
        sector
    }

    fn header(&self, own: u64, alternate: u64, entries_start: u64, entries_crc: u32) -> Vec<u8> {
        let mut header = vec![0u8; SECTOR_SIZE as usize];
        header[0..8].copy_from_slice(b"EFI PART");
        header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        header[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        header[24..32].copy_from_slice(&own.to_le_bytes());
        header[32..40].copy_from_slice(&alternate.to_le_bytes());
        let first_usable = 2 + ENTRY_SECTORS;
        let last_usable = self.total_sectors - 2 - ENTRY_SECTORS;
        header[40..48].copy_from_slice(&first_usable.to_le_bytes());
        header[48..56].copy_from_slice(&last_usable.to_le_bytes());
        header[56..72].copy_from_slice(&self.guid(u64::MAX));
        header[72..80].copy_from_slice(&entries_start.to_le_bytes());
        header[80..84].copy_from_slice(&ENTRY_COUNT.to_le_bytes());
        header[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&header[..HEADER_SIZE as usize]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    }

    fn entries(&self) -> Vec<u8> {
        let mut entries = vec![0u8; (ENTRY_COUNT * ENTRY_SIZE) as usize];
        for (index, partition) in self.partitions.iter().enumerate() {
            let entry = &mut entries[index * ENTRY_SIZE as usize..(index + 1) * ENTRY_SIZE as usize];
            entry[0..16].copy_from_slice(&guid_bytes(partition.kind.0));
            entry[16..32].copy_from_slice(&self.guid(index as u64));
            entry[32..40].copy_from_slice(&partition.first_sector.to_le_bytes());
            let last = partition.first_sector + partition.sectors - 1;
            entry[40..48].copy_from_slice(&last.to_le_bytes());
            for (unit, bytes) in partition.name.encode_utf16().take(36).zip(entry[56..128].chunks_mut(2)) {
                bytes.copy_from_slice(&unit.to_le_bytes());
            }
        }
        entries
    }

    /// A version 4 (random) GUID derived from the seed and `which`.
    fn guid(&self, which: u64) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        for (half, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = DefaultHasher::new();
            (self.seed, which, half).hash(&mut hasher);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
        // Stored mixed-endian: byte 7 holds the version, byte 8 the variant.
        bytes[7] = (bytes[7] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        bytes
    }
}

/// The on-disk bytes of a GUID in its text form: the first three fields
/// little-endian, the last two as written.
pub fn guid_bytes(text: &str) -> [u8; 16] {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| *byte != b'-')
        .map(|byte| (byte as char).to_digit(16).unwrap_or(0) as u8)
        .collect();
    let mut raw = [0u8; 16];
    for (index, pair) in digits.chunks(2).take(16).enumerate() {
        raw[index] = (pair[0] << 4) | pair.get(1).copied().unwrap_or(0);
    }
    let mut bytes = raw;
    bytes[0..4].copy_from_slice(&[raw[3], raw[2], raw[1], raw[0]]);
    bytes[4..6].copy_from_slice(&[raw[5], raw[4]]);
    bytes[6..8].copy_from_slice(&[raw[7], raw[6]]);
    bytes
}

/// What the first sectors of a disk show about how it boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootSectors {
    /// Sector 0 ends with the boot signature 0x55 0xAA (BIOS boots it).
    pub has_boot_signature: bool,
    /// Sector 1 holds a GPT header whose CRC matches.
    pub has_gpt: bool,
    /// The GPT lists an EFI system partition (UEFI boots it).
    pub has_efi_system_partition: bool,
}

/// Reads the boot signature and the GPT from the disk's first 34 sectors.
pub fn inspect(first_sectors: &[u8]) -> BootSectors {
    let has_boot_signature = first_sectors.get(0x1fe..0x200) == Some(&[0x55, 0xaa]);
    let header = first_sectors.get(SECTOR_SIZE as usize..SECTOR_SIZE as usize + HEADER_SIZE as usize);
    let has_gpt = header.is_some_and(|header| {
        let mut copy = header.to_vec();
        let stored = u32::from_le_bytes([copy[16], copy[17], copy[18], copy[19]]);
        copy[16..20].fill(0);
        &header[0..8] == b"EFI PART" && crc32fast::hash(&copy) == stored
    });
    let efi_type = guid_bytes(EFI_SYSTEM.0);
    let entries = first_sectors.get(2 * SECTOR_SIZE as usize..).unwrap_or(&[]);
    let has_efi_system_partition =
        has_gpt && entries.chunks_exact(ENTRY_SIZE as usize).any(|entry| entry[0..16] == efi_type);
    BootSectors { has_boot_signature, has_gpt, has_efi_system_partition }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(layout: &Layout) -> Vec<u8> {
        let mut bytes = vec![0u8; layout.size_bytes() as usize];
        for (offset, data) in layout.tables(&[0xeb; 600]) {
            bytes[offset as usize..offset as usize + data.len()].copy_from_slice(&data);
        }
        bytes
    }

    #[test]
    fn places_partitions_on_mebibyte_boundaries() {
        let layout = Layout::new(&[(BIOS_BOOT, "BIOS boot", 1), (EFI_SYSTEM, "EFI system", 3 << 20)], 1);
        assert_eq!(layout.partitions[0].first_sector, 2048);
        assert_eq!(layout.partitions[0].sectors, 2048);
        assert_eq!(layout.partitions[1].first_sector, 4096);
        assert_eq!(layout.partitions[1].sectors, 3 * 2048);
        assert_eq!(layout.total_sectors, 4096 + 3 * 2048 + 2048);
    }

    #[test]
    fn writes_tables_a_reader_accepts() {
        let layout =
            Layout::new(&[(BIOS_BOOT, "BIOS boot", 1 << 20), (EFI_SYSTEM, "EFI system", 1 << 20)], 7);
        let bytes = disk(&layout);
        let found = inspect(&bytes[..34 * 512]);
        assert_eq!(
            found,
            BootSectors { has_boot_signature: true, has_gpt: true, has_efi_system_partition: true }
        );
        // Boot code stops at the disk signature; the protective entry
        // follows.
        assert_eq!(bytes[439], 0xeb);
        assert_eq!(bytes[440], 0);
        assert_eq!(bytes[0x1c2], 0xee);
        // The backup header points back at the primary one.
        let last = (layout.total_sectors - 1) as usize * 512;
        assert_eq!(&bytes[last..last + 8], b"EFI PART");
        assert_eq!(u64::from_le_bytes(bytes[last + 32..last + 40].try_into().unwrap()), 1);
    }

    #[test]
    fn notices_a_damaged_header() {
        let layout = Layout::new(&[(EFI_SYSTEM, "EFI system", 1 << 20)], 7);
        let mut bytes = disk(&layout);
        bytes[512 + 40] ^= 1;
        let found = inspect(&bytes[..34 * 512]);
        assert!(found.has_boot_signature);
        assert!(!found.has_gpt);
        assert!(!found.has_efi_system_partition);
        assert_eq!(inspect(&[0u8; 100]), BootSectors::default_none());
    }

    #[test]
    fn encodes_guids_mixed_endian() {
        assert_eq!(
            guid_bytes("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
            [0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b]
        );
    }

    impl BootSectors {
        fn default_none() -> Self {
            BootSectors { has_boot_signature: false, has_gpt: false, has_efi_system_partition: false }
        }
    }
}
