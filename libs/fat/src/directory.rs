//! Directory entries: 8.3 short entries and the long-name (VFAT) entries
//! that precede them (FAT specification 1.03 §6 and §7).

use alloc::string::String;
use alloc::vec::Vec;

/// Bytes per directory entry.
const ENTRY_SIZE: usize = 32;
/// Attribute bits.
const ATTRIBUTE_VOLUME_ID: u8 = 0x08;
const ATTRIBUTE_DIRECTORY: u8 = 0x10;
/// The attribute value that marks a long-name entry.
const ATTRIBUTE_LONG_NAME: u8 = 0x0f;
/// The first name byte of a deleted entry.
const DELETED: u8 = 0xe5;
/// Offsets of a long-name entry's 13 UCS-2 characters.
const LONG_NAME_CHARACTERS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// One short entry, with the long name that came before it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The 8.3 name as `NAME.EXT` (or the label, for a label entry).
    pub short_name: String,
    /// The long name, when long-name entries with a matching checksum
    /// precede the short one.
    pub long_name: Option<String>,
    /// Whether this is the volume label.
    pub is_volume_label: bool,
    is_directory: bool,
    /// The first cluster of the contents (0 for an empty file).
    pub first_cluster: u32,
    /// The file's size.
    pub size_bytes: u32,
}

impl Entry {
    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        !self.is_volume_label && !self.is_directory
    }

    /// Whether `name` is its long or short name, ignoring ASCII case as
    /// FAT does.
    pub fn has_name(&self, name: &str) -> bool {
        self.long_name.as_deref().is_some_and(|long| long.eq_ignore_ascii_case(name))
            || self.short_name.eq_ignore_ascii_case(name)
    }
}

/// The characters of an 11-byte name field, trailing spaces removed.
pub fn trim_name(field: &[u8]) -> String {
    let text: String = field.iter().map(|&byte| byte as char).collect();
    String::from(text.trim_end())
}

/// The short-name checksum a long-name entry carries (§7.2).
fn checksum(name: &[u8]) -> u8 {
    name.iter().fold(0u8, |sum, &byte| sum.rotate_right(1).wrapping_add(byte))
}

/// The entries of a directory's bytes, up to its end mark.
pub fn entries(directory: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    let mut long_parts: Vec<(u8, [u16; 13])> = Vec::new();
    let mut long_checksum = 0u8;
    directory.chunks_exact(ENTRY_SIZE).take_while(|entry| entry[0] != 0).filter_map(move |entry| {
        let attributes = entry[11];
        if entry[0] == DELETED {
            long_parts.clear();
            return None;
        }
        if attributes & 0x3f == ATTRIBUTE_LONG_NAME {
            if entry[0] & 0x40 != 0 {
                long_parts.clear();
                long_checksum = entry[13];
            }
            let mut units = [0u16; 13];
            for (unit, &offset) in units.iter_mut().zip(LONG_NAME_CHARACTERS.iter()) {
                *unit = u16::from_le_bytes([entry[offset], entry[offset + 1]]);
            }
            long_parts.push((entry[0] & 0x1f, units));
            return None;
        }
        let name = &entry[0..11];
        let long_name = (!long_parts.is_empty() && long_checksum == checksum(name))
            .then(|| assemble(&mut long_parts))
            .flatten();
        long_parts.clear();
        let is_volume_label = attributes & ATTRIBUTE_VOLUME_ID != 0;
        let short_name = if is_volume_label {
            trim_name(name)
        } else {
            let base = trim_name(&name[0..8]);
            let extension = trim_name(&name[8..11]);
            if extension.is_empty() { base } else { alloc::format!("{base}.{extension}") }
        };
        let high = u32::from(u16::from_le_bytes([entry[20], entry[21]]));
        let low = u32::from(u16::from_le_bytes([entry[26], entry[27]]));
        Some(Entry {
            short_name,
            long_name,
            is_volume_label,
            is_directory: attributes & ATTRIBUTE_DIRECTORY != 0,
            first_cluster: (high << 16) | low,
            size_bytes: u32::from_le_bytes([entry[28], entry[29], entry[30], entry[31]]),
        })
    })
}

/// The long name of the parts (stored last part first), in order of their
/// sequence numbers 1, 2, ...; `None` if one is missing or the name is not
/// valid UTF-16.
fn assemble(parts: &mut [(u8, [u16; 13])]) -> Option<String> {
    parts.sort_by_key(|(sequence, _)| *sequence);
    let mut units = Vec::new();
    for (index, (sequence, part)) in parts.iter().enumerate() {
        if usize::from(*sequence) != index + 1 {
            return None;
        }
        units.extend_from_slice(part);
    }
    // The name ends at a NUL, padding after it is 0xFFFF.
    let length = units.iter().position(|&unit| unit == 0 || unit == 0xffff).unwrap_or(units.len());
    char::decode_utf16(units[..length].iter().copied()).collect::<Result<String, _>>().ok()
}
