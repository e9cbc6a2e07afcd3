//! Byte layouts of the file system calls' structures: `struct statx`,
//! `struct statfs`, `struct linux_dirent64`.

use alloc::vec;
use alloc::vec::Vec;

use super::Timespec;

/// `struct statx` (256 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Statx {
    pub mask: u32,
    pub block_size: u32,
    pub link_count: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub inode: u64,
    pub size: u64,
    pub blocks: u64,
    pub access_time: Timespec,
    pub birth_time: Timespec,
    pub change_time: Timespec,
    pub modify_time: Timespec,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub device_major: u32,
    pub device_minor: u32,
}

/// `STATX_BASIC_STATS`: type, mode, links, ids, times, inode, size, blocks.
pub const STATX_BASIC_STATS: u32 = 0x7ff;

/// A `struct statx_timestamp`: seconds, then 32-bit nanoseconds.
fn statx_timestamp(time: Timespec) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&time.seconds.to_le_bytes());
    bytes[8..12].copy_from_slice(&(time.nanoseconds as u32).to_le_bytes());
    bytes
}

impl Statx {
    /// The structure's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; 256];
        let mut put = |at: usize, field: &[u8]| bytes[at..at + field.len()].copy_from_slice(field);
        put(0, &self.mask.to_le_bytes());
        put(4, &self.block_size.to_le_bytes());
        put(16, &self.link_count.to_le_bytes());
        put(20, &self.uid.to_le_bytes());
        put(24, &self.gid.to_le_bytes());
        put(28, &self.mode.to_le_bytes());
        put(32, &self.inode.to_le_bytes());
        put(40, &self.size.to_le_bytes());
        put(48, &self.blocks.to_le_bytes());
        put(64, &statx_timestamp(self.access_time));
        put(80, &statx_timestamp(self.birth_time));
        put(96, &statx_timestamp(self.change_time));
        put(112, &statx_timestamp(self.modify_time));
        put(128, &self.rdev_major.to_le_bytes());
        put(132, &self.rdev_minor.to_le_bytes());
        put(136, &self.device_major.to_le_bytes());
        put(140, &self.device_minor.to_le_bytes());
        bytes
    }
}

/// `struct statfs` (120 bytes on x86-64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Statfs {
    pub magic: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub free_blocks: u64,
    pub available_blocks: u64,
    pub files: u64,
    pub free_files: u64,
    pub filesystem_id: u64,
    pub name_length_max: u64,
    pub fragment_size: u64,
    pub flags: u64,
}

/// `ST_RDONLY` in `f_flags`.
pub const ST_RDONLY: u64 = 1;

impl Statfs {
    /// The structure's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let words = [
            self.magic,
            self.block_size,
            self.blocks,
            self.free_blocks,
            self.available_blocks,
            self.files,
            self.free_files,
            self.filesystem_id,
            self.name_length_max,
            self.fragment_size,
            self.flags,
        ];
        let mut bytes = vec![0u8; 120];
        for (index, word) in words.iter().enumerate() {
            bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }
}

/// Appends one `struct linux_dirent64` to `buffer` if it fits in
/// `capacity` bytes; returns whether it did.
pub fn push_directory_entry(
    buffer: &mut Vec<u8>,
    capacity: usize,
    inode: u64,
    next_offset: u64,
    entry_type: u8,
    name: &str,
) -> bool {
    // d_ino, d_off, d_reclen, d_type, the name and its NUL, padded to 8.
    let length = (19 + name.len() + 1).next_multiple_of(8);
    if buffer.len() + length > capacity {
        return false;
    }
    let start = buffer.len();
    buffer.resize(start + length, 0);
    buffer[start..start + 8].copy_from_slice(&inode.to_le_bytes());
    buffer[start + 8..start + 16].copy_from_slice(&next_offset.to_le_bytes());
    buffer[start + 16..start + 18].copy_from_slice(&(length as u16).to_le_bytes());
    buffer[start + 18] = entry_type;
    buffer[start + 19..start + 19 + name.len()].copy_from_slice(name.as_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entries_are_padded_and_stop_when_full() {
        let mut buffer = Vec::new();
        assert!(push_directory_entry(&mut buffer, 64, 7, 3, 8, "hello"));
        assert_eq!(buffer.len(), 32);
        assert_eq!(u16::from_le_bytes([buffer[16], buffer[17]]), 32);
        assert_eq!(&buffer[19..25], b"hello\0");
        assert!(!push_directory_entry(&mut buffer, 64, 8, 4, 8, "a-longer-name-here"));
        assert_eq!(buffer.len(), 32);
    }

    #[test]
    fn statx_and_statfs_fields_land_at_their_offsets() {
        let statx = Statx {
            mode: 0o100644,
            size: 5,
            modify_time: Timespec { seconds: 9, nanoseconds: 8 },
            ..Statx::default()
        };
        let bytes = statx.encode();
        assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]), 0o100644);
        assert_eq!(bytes[40], 5);
        assert_eq!((bytes[112], bytes[120]), (9, 8));
        let statfs = Statfs { magic: 0x9fa0, flags: ST_RDONLY, ..Statfs::default() };
        let bytes = statfs.encode();
        assert_eq!(bytes.len(), 120);
        assert_eq!(bytes[80], 1);
    }
}
