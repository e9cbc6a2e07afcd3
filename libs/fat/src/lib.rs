//! A read-only FAT12/16/32 reader: the volume label and the root
//! directory's files.
//!
//! [`Volume::open`] decodes the boot sector (FAT specification 1.03 §3)
//! from a [`Disk`]; [`Volume::read_root_file`] finds a file of the root
//! directory by its long or short name (§6, §7) and follows its cluster
//! chain through the FAT (§4).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod directory;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// The largest file read.
pub const FILE_LIMIT_BYTES: u32 = 1 << 20;

/// A disk to read from.
pub trait Disk {
    /// Fills `buffer` from byte `offset` of the disk.
    fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError>;
}

/// A disk read that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskError;

/// Why a FAT volume cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatError {
    /// The disk could not be read.
    Read,
    /// A cluster chain is broken: it loops, leaves the volume or ends
    /// before the file does.
    BadChain,
    /// A file or directory is larger than [`FILE_LIMIT_BYTES`].
    TooLarge,
}

impl core::fmt::Display for FatError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(match self {
            FatError::Read => "the disk cannot be read",
            FatError::BadChain => "a cluster chain of the FAT volume is damaged",
            FatError::TooLarge => "a file is over 1 MiB",
        })
    }
}

/// The FAT variant, told by the volume's cluster count (§3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    /// Fewer than 4085 clusters: 12-bit entries.
    Fat12,
    /// Fewer than 65525 clusters: 16-bit entries.
    Fat16,
    /// More: 28-bit entries in 32-bit words, the root directory a chain.
    Fat32,
}

/// A FAT volume's geometry, label and root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    fat_type: FatType,
    bytes_per_cluster: u32,
    fat_offset: u64,
    /// FAT12/16: the fixed root directory region (offset, bytes).
    root_region: Option<(u64, u32)>,
    /// FAT32: the root directory's first cluster.
    root_cluster: u32,
    data_offset: u64,
    /// Clusters 2 to `cluster_count + 1` exist.
    cluster_count: u32,
    boot_sector_label: String,
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
}

impl Volume {
    /// Reads and checks the boot sector; `None` if `disk` holds no FAT
    /// volume (or one whose parameters make no sense).
    pub fn open(disk: &dyn Disk) -> Option<Self> {
        let mut sector = [0u8; 512];
        disk.read(0, &mut sector).ok()?;
        if sector[510..512] != [0x55, 0xaa] || !matches!(sector[0], 0xeb | 0xe9) {
            return None;
        }
        let bytes_per_sector = u32::from(u16_at(&sector, 11));
        let sectors_per_cluster = u32::from(sector[13]);
        let reserved_sectors = u32::from(u16_at(&sector, 14));
        let fat_count = u32::from(sector[16]);
        let root_entry_count = u32::from(u16_at(&sector, 17));
        let total_sectors = match u16_at(&sector, 19) {
            0 => u32_at(&sector, 32),
            count => u32::from(count),
        };
        let fat_sectors = match u16_at(&sector, 22) {
            0 => u32_at(&sector, 36),
            count => u32::from(count),
        };
        if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
            || !sectors_per_cluster.is_power_of_two()
            || sectors_per_cluster > 128
            || reserved_sectors == 0
            || fat_count == 0
            || fat_sectors == 0
        {
            return None;
        }
        let root_sectors = (root_entry_count * 32).div_ceil(bytes_per_sector);
        let data_start = u64::from(reserved_sectors)
            + u64::from(fat_count) * u64::from(fat_sectors)
            + u64::from(root_sectors);
        let data_sectors = u64::from(total_sectors).checked_sub(data_start)?;
        let cluster_count = u32::try_from(data_sectors / u64::from(sectors_per_cluster)).ok()?;
        let fat_type = match cluster_count {
            0..4085 => FatType::Fat12,
            4085..65525 => FatType::Fat16,
            _ => FatType::Fat32,
        };
        // The FAT must have an entry for every cluster.
        let entry_bits: u64 = match fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        if u64::from(fat_sectors) * u64::from(bytes_per_sector) * 8
            < (u64::from(cluster_count) + 2) * entry_bits
        {
            return None;
        }
        let sector_bytes = u64::from(bytes_per_sector);
        let (root_region, root_cluster, label_offset) = match fat_type {
            FatType::Fat32 => {
                if root_entry_count != 0 {
                    return None;
                }
                (None, u32_at(&sector, 44), 71)
            }
            _ => {
                let offset = (u64::from(reserved_sectors) + u64::from(fat_count) * u64::from(fat_sectors))
                    * sector_bytes;
                (Some((offset, root_entry_count * 32)), 0, 43)
            }
        };
        // The label field is valid when the extended boot signature is.
        let signature_offset = label_offset - 5;
        let boot_sector_label = if sector[signature_offset] == 0x29 {
            directory::trim_name(&sector[label_offset..label_offset + 11])
        } else {
            String::new()
        };
        Some(Volume {
            fat_type,
            bytes_per_cluster: bytes_per_sector * sectors_per_cluster,
            fat_offset: u64::from(reserved_sectors) * sector_bytes,
            root_region,
            root_cluster,
            data_offset: data_start * sector_bytes,
            cluster_count,
            boot_sector_label,
        })
    }

    /// The FAT variant.
    pub fn fat_type(&self) -> FatType {
        self.fat_type
    }

    /// The volume label: the root directory's label entry, else the boot
    /// sector's field, without padding ("NO NAME" counts as none).
    pub fn label(&self, disk: &dyn Disk) -> Result<String, FatError> {
        let root = self.root_directory(disk)?;
        let label = directory::entries(&root)
            .find(|entry| entry.is_volume_label)
            .map(|entry| entry.short_name)
            .unwrap_or_else(|| self.boot_sector_label.clone());
        Ok(if label == "NO NAME" { String::new() } else { label })
    }

    /// The contents of the file `name` of the root directory (matched
    /// without regard to ASCII case against its long and short names), if
    /// it is there.
    pub fn read_root_file(&self, disk: &dyn Disk, name: &str) -> Result<Option<Vec<u8>>, FatError> {
        let root = self.root_directory(disk)?;
        let Some(entry) = directory::entries(&root).find(|entry| entry.is_file() && entry.has_name(name))
        else {
            return Ok(None);
        };
        if entry.size_bytes > FILE_LIMIT_BYTES {
            return Err(FatError::TooLarge);
        }
        let mut contents = self.read_chain(disk, entry.first_cluster, Some(entry.size_bytes))?;
        contents.truncate(entry.size_bytes as usize);
        Ok(Some(contents))
    }

    fn root_directory(&self, disk: &dyn Disk) -> Result<Vec<u8>, FatError> {
        match self.root_region {
            Some((offset, size_bytes)) => {
                if size_bytes > FILE_LIMIT_BYTES {
                    return Err(FatError::TooLarge);
                }
                let mut bytes = vec![0u8; size_bytes as usize];
                disk.read(offset, &mut bytes).map_err(|_| FatError::Read)?;
                Ok(bytes)
            }
            None => self.read_chain(disk, self.root_cluster, None),
        }
    }

    /// The clusters of the chain from `first`, read in order: `size_bytes`
    /// of them for a file (an empty file has cluster 0), up to the end
    /// mark for a directory.
    fn read_chain(&self, disk: &dyn Disk, first: u32, size_bytes: Option<u32>) -> Result<Vec<u8>, FatError> {
        let mut contents = Vec::new();
        if size_bytes == Some(0) {
            return Ok(contents);
        }
        let wanted = size_bytes.map(|size| size.div_ceil(self.bytes_per_cluster));
        let mut cluster = first;
        let mut count = 0u32;
        loop {
            if cluster < 2 || cluster - 2 >= self.cluster_count {
                return Err(FatError::BadChain);
            }
            if contents.len() >= FILE_LIMIT_BYTES as usize {
                return Err(FatError::TooLarge);
            }
            let offset = self.data_offset + u64::from(cluster - 2) * u64::from(self.bytes_per_cluster);
            let start = contents.len();
            contents.resize(start + self.bytes_per_cluster as usize, 0);
            disk.read(offset, &mut contents[start..]).map_err(|_| FatError::Read)?;
            count += 1;
            if wanted == Some(count) {
                return Ok(contents);
            }
            match self.next_cluster(disk, cluster)? {
                Some(next) => cluster = next,
                None if wanted.is_none() => return Ok(contents),
                None => return Err(FatError::BadChain),
            }
            // A chain longer than the volume loops.
            if count > self.cluster_count {
                return Err(FatError::BadChain);
            }
        }
    }

    /// The cluster after `cluster`, or `None` at the end of the chain.
    fn next_cluster(&self, disk: &dyn Disk, cluster: u32) -> Result<Option<u32>, FatError> {
        let (offset, end_mark) = match self.fat_type {
            FatType::Fat12 => (u64::from(cluster) * 3 / 2, 0xff8),
            FatType::Fat16 => (u64::from(cluster) * 2, 0xfff8),
            FatType::Fat32 => (u64::from(cluster) * 4, 0x0fff_fff8),
        };
        let mut raw = [0u8; 4];
        let width = if self.fat_type == FatType::Fat32 { 4 } else { 2 };
        // A FAT12 entry may straddle two sectors: read both bytes at once.
        disk.read(self.fat_offset + offset, &mut raw[..width]).map_err(|_| FatError::Read)?;
        let word = u32::from_le_bytes(raw);
        let entry = match self.fat_type {
            FatType::Fat12 if cluster % 2 == 1 => word >> 4,
            FatType::Fat12 => word & 0xfff,
            FatType::Fat16 => word & 0xffff,
            FatType::Fat32 => word & 0x0fff_ffff,
        };
        Ok(if entry >= end_mark { None } else { Some(entry) })
    }
}

#[cfg(test)]
mod tests;
