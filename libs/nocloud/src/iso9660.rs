//! Just enough of ISO9660 (ECMA-119) to read a NoCloud disk: the volume
//! label and the files of the root directory, named by the Joliet
//! supplementary descriptor when there is one, else by the primary one.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// ISO9660's logical block size.
const BLOCK_SIZE: u64 = 2048;
/// Where the volume descriptors start (ECMA-119 §6.2.1: after 16 system
/// blocks).
const FIRST_DESCRIPTOR: u64 = 16;
/// How many descriptors are looked at before giving up.
const DESCRIPTOR_LIMIT: u64 = 16;
/// The largest file read (meta-data and user-data are small).
const FILE_LIMIT_BYTES: u32 = 1 << 20;

/// A disk to read from.
pub trait Disk {
    /// Fills `buffer` from byte `offset` of the disk.
    fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError>;
}

/// A disk read that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskError;

/// Why a file of the volume cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iso9660Error {
    /// The disk could not be read.
    Read,
    /// A directory record is malformed.
    BadRecord,
    /// A file is larger than a settings file may be.
    TooLarge,
}

impl core::fmt::Display for Iso9660Error {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(match self {
            Iso9660Error::Read => "the disk cannot be read",
            Iso9660Error::BadRecord => "a directory record of the ISO9660 volume is damaged",
            Iso9660Error::TooLarge => "a file is over 1 MiB",
        })
    }
}

/// A directory record's extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    block: u32,
    size_bytes: u32,
}

/// An ISO9660 volume: its label and root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    label: String,
    root: Extent,
    is_joliet: bool,
}

impl Volume {
    /// Reads the volume descriptors; `None` if `disk` holds no ISO9660
    /// volume.
    pub fn open(disk: &dyn Disk) -> Option<Self> {
        let mut primary = None;
        let mut joliet = None;
        let mut block = vec![0u8; BLOCK_SIZE as usize];
        for index in FIRST_DESCRIPTOR..FIRST_DESCRIPTOR + DESCRIPTOR_LIMIT {
            disk.read(index * BLOCK_SIZE, &mut block).ok()?;
            if &block[1..6] != b"CD001" {
                return None;
            }
            match block[0] {
                1 => primary = Some((trim(&block[40..72]), root_extent(&block)?)),
                // ECMA-119 §8.5 with the Joliet escape sequences for UCS-2
                // levels 1 to 3.
                2 if matches!(&block[88..91], b"%/@" | b"%/C" | b"%/E") => joliet = root_extent(&block),
                255 => break,
                _ => {}
            }
        }
        let (label, primary_root) = primary?;
        Some(match joliet {
            Some(root) => Volume { label, root, is_joliet: true },
            None => Volume { label, root: primary_root, is_joliet: false },
        })
    }

    /// The volume identifier, without its padding.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The contents of the file `name` in the root directory, if it is
    /// there.
    pub fn read_root_file(&self, disk: &dyn Disk, name: &str) -> Result<Option<Vec<u8>>, Iso9660Error> {
        if self.root.size_bytes > FILE_LIMIT_BYTES {
            return Err(Iso9660Error::TooLarge);
        }
        let mut directory = vec![0u8; self.root.size_bytes as usize];
        disk.read(u64::from(self.root.block) * BLOCK_SIZE, &mut directory).map_err(|_| Iso9660Error::Read)?;
        // Plain ISO9660 names have no `-`: writers put `_` for it.
        let wanted = if self.is_joliet { String::from(name) } else { name.replace('-', "_") };
        let mut offset = 0;
        while offset < directory.len() {
            let length = usize::from(directory[offset]);
            if length == 0 {
                // Records do not cross block boundaries: the rest of this
                // block is padding.
                offset = (offset / BLOCK_SIZE as usize + 1) * BLOCK_SIZE as usize;
                continue;
            }
            let record = directory.get(offset..offset + length).ok_or(Iso9660Error::BadRecord)?;
            offset += length;
            let name_length = usize::from(*record.get(32).ok_or(Iso9660Error::BadRecord)?);
            let raw_name = record.get(33..33 + name_length).ok_or(Iso9660Error::BadRecord)?;
            let is_directory = record[25] & 2 != 0;
            if is_directory || raw_name == [0] || raw_name == [1] {
                continue;
            }
            if self.file_name(raw_name) != wanted {
                continue;
            }
            let extent = extent(record).ok_or(Iso9660Error::BadRecord)?;
            if extent.size_bytes > FILE_LIMIT_BYTES {
                return Err(Iso9660Error::TooLarge);
            }
            let mut contents = vec![0u8; extent.size_bytes as usize];
            disk.read(u64::from(extent.block) * BLOCK_SIZE, &mut contents).map_err(|_| Iso9660Error::Read)?;
            return Ok(Some(contents));
        }
        Ok(None)
    }

    /// A record's name as a file name: UCS-2 for Joliet, else the plain
    /// name in lower case; without the `;1` version or a trailing dot.
    /// (`read_root_file` looks a `-` up as `_` in plain names.)
    fn file_name(&self, raw: &[u8]) -> String {
        let mut name: String = if self.is_joliet {
            let units = raw.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units).map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
        } else {
            raw.iter().map(|&byte| char::from(byte).to_ascii_lowercase()).collect()
        };
        if let Some(position) = name.rfind(';') {
            name.truncate(position);
        }
        if name.ends_with('.') {
            name.pop();
        }
        name
    }
}

/// The root directory record of a volume descriptor (at byte 156).
fn root_extent(descriptor: &[u8]) -> Option<Extent> {
    extent(descriptor.get(156..156 + 34)?)
}

/// A directory record's extent: both-endian numbers, little-endian half.
fn extent(record: &[u8]) -> Option<Extent> {
    let word = |at: usize| {
        record.get(at..at + 4).map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    Some(Extent { block: word(2)?, size_bytes: word(10)? })
}

/// Text without its space padding.
fn trim(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end_matches([' ', '\0']).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A volume in memory: a primary descriptor labelled `label`, an
    /// optional Joliet one, and one root directory holding `files`.
    pub(crate) fn volume(label: &str, is_joliet: bool, files: &[(&str, &[u8])]) -> Vec<u8> {
        let block = BLOCK_SIZE as usize;
        let root_block = 20;
        let mut image = vec![0u8; block * (21 + files.len())];
        let record = |name: &[u8], extent_block: u32, size: u32, is_directory: bool| {
            let mut record = vec![0u8; 33 + name.len() + (name.len() + 1) % 2];
            record[0] = record.len() as u8;
            record[2..6].copy_from_slice(&extent_block.to_le_bytes());
            record[10..14].copy_from_slice(&size.to_le_bytes());
            record[25] = if is_directory { 2 } else { 0 };
            record[32] = name.len() as u8;
            record[33..33 + name.len()].copy_from_slice(name);
            record
        };
        let mut directory = Vec::new();
        directory.extend(record(&[0], root_block, block as u32, true));
        directory.extend(record(&[1], root_block, block as u32, true));
        for (index, (name, contents)) in files.iter().enumerate() {
            let extent_block = 21 + index;
            image[extent_block * block..extent_block * block + contents.len()].copy_from_slice(contents);
            let raw: Vec<u8> = if is_joliet {
                alloc::format!("{name};1").encode_utf16().flat_map(u16::to_be_bytes).collect()
            } else {
                alloc::format!("{}.;1", name.to_ascii_uppercase().replace('-', "_")).into_bytes()
            };
            directory.extend(record(&raw, extent_block as u32, contents.len() as u32, false));
        }
        image[root_block as usize * block..root_block as usize * block + directory.len()]
            .copy_from_slice(&directory);
        let root = record(&[0], root_block, block as u32, true);
        let mut descriptor = |index: usize, kind: u8| {
            let start = index * block;
            image[start] = kind;
            image[start + 1..start + 6].copy_from_slice(b"CD001");
            image[start + 40..start + 72].fill(b' ');
            image[start + 40..start + 40 + label.len()].copy_from_slice(label.as_bytes());
            image[start + 156..start + 156 + root.len()].copy_from_slice(&root);
            if kind == 2 {
                image[start + 88..start + 91].copy_from_slice(b"%/E");
            }
        };
        descriptor(16, 1);
        if is_joliet {
            descriptor(17, 2);
            descriptor(18, 255);
        } else {
            descriptor(17, 255);
        }
        image
    }

    impl Disk for Vec<u8> {
        fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
            let start = usize::try_from(offset).map_err(|_| DiskError)?;
            let bytes = self.get(start..start + buffer.len()).ok_or(DiskError)?;
            buffer.copy_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn joliet_and_plain_names_are_found() {
        for is_joliet in [true, false] {
            let image =
                volume("cidata", is_joliet, &[("meta-data", b"id: 1\n"), ("user-data", b"#cloud-config\n")]);
            let volume = Volume::open(&image).unwrap();
            assert_eq!(volume.label(), "cidata");
            assert_eq!(volume.read_root_file(&image, "meta-data").unwrap().unwrap(), b"id: 1\n");
            assert_eq!(volume.read_root_file(&image, "missing").unwrap(), None);
            assert_eq!(volume.read_root_file(&image, "user-data").unwrap().unwrap(), b"#cloud-config\n");
        }
    }

    #[test]
    fn other_disks_are_no_volume() {
        assert_eq!(Volume::open(&vec![0u8; 64 * 1024]), None);
        assert_eq!(Volume::open(&vec![0u8; 100]), None, "too small to read");
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let mut image = volume("cidata", false, &[("meta-data", b"x")]);
        let root = 20 * BLOCK_SIZE as usize;
        // The third record (the file) claims a name longer than itself.
        let third = root + usize::from(image[root]) + usize::from(image[root + usize::from(image[root])]);
        image[third + 32] = 200;
        let volume = Volume::open(&image).unwrap();
        assert_eq!(volume.read_root_file(&image, "meta-data"), Err(Iso9660Error::BadRecord));
    }
}
