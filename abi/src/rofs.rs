//! The on-disk layout of ROFS, OSv's read-only filesystem image.
//!
//! All integers are little-endian; the image is a sequence of 512-byte
//! blocks:
//!
//! 1. block 0: the [`SuperBlock`];
//! 2. file contents, each file starting on a block boundary;
//! 3. from `structure_info_first_block`: the directory entry table
//!    (`u64 inode_no, u16 name_len, name`), then the symlink table
//!    (`u16 path_len, path`), then the inode table ([`Inode`], 32 bytes each,
//!    in inode-number order starting at inode 1, the root directory).
//!
//! An inode's `data_offset` and `count` mean, by type: for a regular file,
//! its first block and its size in bytes; for a directory, the index of its
//! first entry in the directory entry table and its number of entries; for a
//! symlink, its index in the symlink table (and a count of 1).
//!
//! rosv's extension, which OSv's reader ignores: bytes 64..96 of block 0
//! (after the superblock, zero in OSv's images) may hold an [`Extension`]
//! header naming a table of [`InodeTimes`], one per inode in inode order,
//! placed in the structure region after the inode table (OSv reads only as
//! many entries, symlinks and inodes as the superblock counts, so it never
//! looks there). The format version stays 1.

use crate::bytes::{u16_at, u64_at};

/// Size of a ROFS block in bytes.
pub const BLOCK_SIZE: u64 = 512;
/// `SuperBlock::magic`.
pub const MAGIC: u64 = 0xDEAD_BEAD;
/// The only format version.
pub const VERSION: u64 = 1;
/// Size of an encoded superblock.
pub const SUPER_BLOCK_SIZE: usize = 64;
/// Size of an encoded inode.
pub const INODE_SIZE: usize = 32;
/// Inode number of the root directory.
pub const ROOT_INODE: u64 = 1;
/// Mode of a directory inode (`S_IFDIR`).
pub const MODE_DIRECTORY: u64 = 0o040000;
/// Mode of a regular file inode (`S_IFREG`).
pub const MODE_REGULAR: u64 = 0o100000;
/// Mode of a symlink inode (`S_IFLNK`).
pub const MODE_SYMLINK: u64 = 0o120000;
/// The bits of a mode that hold the file type.
pub const MODE_TYPE_MASK: u64 = 0o170000;

/// Block 0 of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SuperBlock {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// Always [`VERSION`].
    pub version: u64,
    /// Always [`BLOCK_SIZE`].
    pub block_size: u64,
    /// First block of the structure region (entries, symlinks, inodes).
    pub structure_info_first_block: u64,
    /// Number of blocks in the structure region.
    pub structure_info_blocks_count: u64,
    /// Number of directory entries.
    pub directory_entries_count: u64,
    /// Number of symlinks.
    pub symlinks_count: u64,
    /// Number of inodes.
    pub inodes_count: u64,
}

impl SuperBlock {
    /// Decodes a superblock; `None` if `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        Some(SuperBlock {
            magic: u64_at(bytes, 0)?,
            version: u64_at(bytes, 8)?,
            block_size: u64_at(bytes, 16)?,
            structure_info_first_block: u64_at(bytes, 24)?,
            structure_info_blocks_count: u64_at(bytes, 32)?,
            directory_entries_count: u64_at(bytes, 40)?,
            symlinks_count: u64_at(bytes, 48)?,
            inodes_count: u64_at(bytes, 56)?,
        })
    }

    /// Encodes the superblock.
    pub fn encode(&self) -> [u8; SUPER_BLOCK_SIZE] {
        encode_words([
            self.magic,
            self.version,
            self.block_size,
            self.structure_info_first_block,
            self.structure_info_blocks_count,
            self.directory_entries_count,
            self.symlinks_count,
            self.inodes_count,
        ])
    }
}

/// One entry of the inode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inode {
    /// File type bits (`MODE_*`); OSv's writer stores no permission bits.
    pub mode: u64,
    /// This inode's number (its index in the table plus one).
    pub inode_no: u64,
    /// First block, first directory entry index, or symlink index.
    pub data_offset: u64,
    /// File size in bytes, number of directory entries, or 1.
    pub count: u64,
}

impl Inode {
    /// Decodes an inode; `None` if `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Inode {
            mode: u64_at(bytes, 0)?,
            inode_no: u64_at(bytes, 8)?,
            data_offset: u64_at(bytes, 16)?,
            count: u64_at(bytes, 24)?,
        })
    }

    /// Encodes the inode.
    pub fn encode(&self) -> [u8; INODE_SIZE] {
        encode_words([self.mode, self.inode_no, self.data_offset, self.count])
    }
}

/// Where the [`Extension`] header lies in block 0.
pub const EXTENSION_OFFSET: usize = 64;
/// Size of an encoded [`Extension`].
pub const EXTENSION_SIZE: usize = 32;
/// `Extension::magic`: "ROSVMETA" in ASCII, read as a little-endian word.
pub const EXTENSION_MAGIC: u64 = u64::from_le_bytes(*b"ROSVMETA");
/// The only version of the extension.
pub const EXTENSION_VERSION: u64 = 1;
/// Size of an encoded [`InodeTimes`].
pub const INODE_TIMES_SIZE: usize = 16;

/// rosv's extension header, after the superblock in block 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extension {
    /// Always [`EXTENSION_MAGIC`]; anything else means no extension.
    pub magic: u64,
    /// Always [`EXTENSION_VERSION`].
    pub version: u64,
    /// Byte offset of the times table from the start of the structure
    /// region.
    pub times_offset: u64,
    /// Number of [`InodeTimes`] records: the superblock's inode count.
    pub times_count: u64,
}

impl Extension {
    /// Decodes the header; `None` if `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Extension {
            magic: u64_at(bytes, 0)?,
            version: u64_at(bytes, 8)?,
            times_offset: u64_at(bytes, 16)?,
            times_count: u64_at(bytes, 24)?,
        })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; EXTENSION_SIZE] {
        encode_words([self.magic, self.version, self.times_offset, self.times_count])
    }
}

/// An inode's modification time (`st_mtim`): seconds since the epoch and
/// nanoseconds, as the host file had it when the image was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InodeTimes {
    /// Whole seconds since 1970-01-01 UTC (negative before).
    pub modify_seconds: i64,
    /// Nanoseconds, below 1 000 000 000.
    pub modify_nanoseconds: u32,
}

impl InodeTimes {
    /// Decodes a record; `None` if `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let nanoseconds = u64_at(bytes, 8)?;
        Some(InodeTimes { modify_seconds: u64_at(bytes, 0)? as i64, modify_nanoseconds: nanoseconds as u32 })
    }

    /// Encodes the record (the last four bytes are zero, reserved).
    pub fn encode(&self) -> [u8; INODE_TIMES_SIZE] {
        encode_words([self.modify_seconds as u64, u64::from(self.modify_nanoseconds)])
    }
}

/// A directory entry decoded in place from the entry table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryEntry<'a> {
    /// The inode the entry names.
    pub inode_no: u64,
    /// The entry's name (no NUL, no slash in valid images).
    pub name: &'a [u8],
}

/// Decodes the directory entry at `offset`; returns it and the offset of the
/// next entry, or `None` if the table ends early.
pub fn decode_directory_entry(bytes: &[u8], offset: usize) -> Option<(DirectoryEntry<'_>, usize)> {
    let inode_no = u64_at(bytes, offset)?;
    let name_len = usize::from(u16_at(bytes, offset.checked_add(8)?)?);
    let name_start = offset + 10;
    let name = bytes.get(name_start..name_start.checked_add(name_len)?)?;
    Some((DirectoryEntry { inode_no, name }, name_start + name_len))
}

/// Decodes the symlink target at `offset`; returns it and the offset of the
/// next symlink, or `None` if the table ends early.
pub fn decode_symlink(bytes: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let path_len = usize::from(u16_at(bytes, offset)?);
    let path_start = offset.checked_add(2)?;
    let path = bytes.get(path_start..path_start.checked_add(path_len)?)?;
    Some((path, path_start + path_len))
}

fn encode_words<const WORDS: usize, const BYTES: usize>(words: [u64; WORDS]) -> [u8; BYTES] {
    let mut bytes = [0u8; BYTES];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_round_trips() {
        let block = SuperBlock {
            magic: MAGIC,
            version: VERSION,
            block_size: BLOCK_SIZE,
            structure_info_first_block: 5,
            structure_info_blocks_count: 2,
            directory_entries_count: 7,
            symlinks_count: 1,
            inodes_count: 8,
        };
        let bytes = block.encode();
        assert_eq!(&bytes[..8], &0xDEAD_BEADu64.to_le_bytes());
        assert_eq!(SuperBlock::decode(&bytes), Some(block));
        assert_eq!(SuperBlock::decode(&bytes[..63]), None);
    }

    #[test]
    fn extension_and_times_round_trip() {
        let extension = Extension { magic: EXTENSION_MAGIC, version: 1, times_offset: 96, times_count: 3 };
        assert_eq!(&extension.encode()[..8], b"ROSVMETA");
        assert_eq!(Extension::decode(&extension.encode()), Some(extension));
        let times = InodeTimes { modify_seconds: -5, modify_nanoseconds: 999_999_999 };
        assert_eq!(InodeTimes::decode(&times.encode()), Some(times));
    }

    #[test]
    fn inode_round_trips() {
        let inode = Inode { mode: MODE_REGULAR, inode_no: 3, data_offset: 9, count: 1000 };
        assert_eq!(Inode::decode(&inode.encode()), Some(inode));
    }

    #[test]
    fn decodes_entry_tables() {
        let mut table = [0u8; 32];
        table[0] = 2;
        table[8] = 3;
        table[10..13].copy_from_slice(b"bin");
        table[13] = 4;
        let (entry, next) = decode_directory_entry(&table, 0).unwrap();
        assert_eq!((entry.inode_no, entry.name, next), (2, &b"bin"[..], 13));
        let (path, next) = decode_symlink(&[2, 0, b'/', b'x'], 0).unwrap();
        assert_eq!((path, next), (&b"/x"[..], 4));
        assert_eq!(decode_symlink(&[9, 0, b'/'], 0), None);
        assert_eq!(decode_directory_entry(&table, 30), None);
    }
}
