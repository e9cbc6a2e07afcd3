//! A ROFS image written byte by byte from the format rules, and broken copies.
//!
//! The fixture does not come from the writer, so it checks the reader
//! against the format itself. Its tree:
//!
//! ```text
//! /               inode 1  directory, entries 0..4
//! /bin            inode 2  directory, entries 4..6
//! /empty          inode 3  file, 0 bytes (points at the next free block, 4)
//! /hello.txt      inode 4  file, 13 bytes in block 1
//! /link           inode 5  symlink 0: "hello.txt"
//! /bin/data       inode 6  file, 600 bytes in blocks 2 and 3
//! /bin/up         inode 7  symlink 1: "../hello.txt"
//! ```
//!
//! Block 4 is the structure region: six entries (87 bytes), two symlinks
//! (25 bytes), seven inodes (224 bytes).

use crate::{FileType, Rofs, RofsError};

const HELLO: &[u8] = b"Hello, ROFS!\n";
const DIRECTORY: u64 = 0o040000;
const REGULAR: u64 = 0o100000;
const SYMLINK: u64 = 0o120000;
const STRUCTURE_BLOCK: usize = 4;
const ENTRIES: [(u64, &str); 6] =
    [(2, "bin"), (3, "empty"), (4, "hello.txt"), (5, "link"), (6, "data"), (7, "up")];
const SYMLINKS: [&str; 2] = ["hello.txt", "../hello.txt"];
/// Inodes 1 to 7: mode, data_offset, count.
const INODES: [(u64, u64, u64); 7] = [
    (DIRECTORY, 0, 4),
    (DIRECTORY, 4, 2),
    (REGULAR, 4, 0),
    (REGULAR | 0o644, 1, 13),
    (SYMLINK, 0, 1),
    (REGULAR | 0o755, 2, 600),
    (SYMLINK, 1, 1),
];

/// Byte offsets of the superblock's fields.
mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const BLOCK_SIZE: usize = 16;
    pub const STRUCTURE_FIRST_BLOCK: usize = 24;
    pub const STRUCTURE_BLOCKS: usize = 32;
    pub const ENTRIES: usize = 40;
    pub const SYMLINKS: usize = 48;
    pub const INODES: usize = 56;
}

/// Byte offsets of an inode's fields.
mod inode_field {
    pub const MODE: usize = 0;
    pub const NUMBER: usize = 8;
    pub const DATA_OFFSET: usize = 16;
    pub const COUNT: usize = 24;
}

fn data_byte(index: usize) -> u8 {
    (index * 7 % 251) as u8
}

/// The fixture image and where its tables are.
struct Fixture {
    bytes: Vec<u8>,
    entry_offsets: Vec<usize>,
    symlink_offsets: Vec<usize>,
    inodes_offset: usize,
}

impl Fixture {
    fn new() -> Fixture {
        let mut bytes = vec![0u8; 5 * 512];
        let words = [0xDEAD_BEAD, 1, 512, STRUCTURE_BLOCK as u64, 1, 6, 2, 7];
        for (index, word) in words.iter().enumerate() {
            bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        bytes[512..512 + HELLO.len()].copy_from_slice(HELLO);
        for index in 0..600 {
            bytes[1024 + index] = data_byte(index);
        }
        let mut offset = STRUCTURE_BLOCK * 512;
        let mut put = |data: &[u8]| {
            let start = offset;
            bytes[start..start + data.len()].copy_from_slice(data);
            offset += data.len();
            start
        };
        let mut entry_offsets = Vec::new();
        for (inode, name) in ENTRIES {
            entry_offsets.push(put(&inode.to_le_bytes()));
            put(&(name.len() as u16).to_le_bytes());
            put(name.as_bytes());
        }
        let mut symlink_offsets = Vec::new();
        for target in SYMLINKS {
            symlink_offsets.push(put(&(target.len() as u16).to_le_bytes()));
            put(target.as_bytes());
        }
        let inodes_offset = put(&[]);
        for (index, (mode, data_offset, count)) in INODES.iter().enumerate() {
            for word in [*mode, index as u64 + 1, *data_offset, *count] {
                put(&word.to_le_bytes());
            }
        }
        let end = put(&[]);
        assert_eq!(end - STRUCTURE_BLOCK * 512, 87 + 25 + 224);
        Fixture { bytes, entry_offsets, symlink_offsets, inodes_offset }
    }

    fn inode(&self, number: usize, field: usize) -> usize {
        self.inodes_offset + (number - 1) * 32 + field
    }

    /// A copy with the u64 at `offset` set to `value`.
    fn with_u64(&self, offset: usize, value: u64) -> Vec<u8> {
        self.with_bytes(offset, &value.to_le_bytes())
    }

    /// A copy with `data` at `offset`.
    fn with_bytes(&self, offset: usize, data: &[u8]) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        bytes[offset..offset + data.len()].copy_from_slice(data);
        bytes
    }
}

fn mount(bytes: &[u8]) -> Result<Rofs<&[u8]>, RofsError> {
    Rofs::mount(bytes)
}

#[test]
fn the_reader_mounts_the_hand_written_image() {
    let fixture = Fixture::new();
    let rofs = mount(&fixture.bytes).unwrap();
    let root: Vec<(u64, &str)> =
        rofs.read_dir(rofs.root()).unwrap().map(|entry| (entry.inode, entry.name)).collect();
    assert_eq!(root, ENTRIES[..4]);
    let bin: Vec<(u64, &str)> = rofs.read_dir(2).unwrap().map(|entry| (entry.inode, entry.name)).collect();
    assert_eq!(bin, ENTRIES[4..]);
    let kinds: Vec<(FileType, u64)> = (1..=7)
        .map(|inode| rofs.metadata(inode).unwrap())
        .map(|metadata| (metadata.file_type, metadata.size))
        .collect();
    assert_eq!(
        kinds,
        [
            (FileType::Directory, 4),
            (FileType::Directory, 2),
            (FileType::Regular, 0),
            (FileType::Regular, 13),
            (FileType::Symlink, 9),
            (FileType::Regular, 600),
            (FileType::Symlink, 12),
        ]
    );
    let mut buffer = [0u8; 1000];
    assert_eq!(rofs.read(4, 0, &mut buffer), Ok(13));
    assert_eq!(&buffer[..13], HELLO);
    assert_eq!(rofs.read(3, 0, &mut buffer), Ok(0));
    // A read across the block boundary of /bin/data, and one past its end.
    assert_eq!(rofs.read(6, 500, &mut buffer[..50]), Ok(50));
    assert!(buffer[..50].iter().enumerate().all(|(index, &byte)| byte == data_byte(500 + index)));
    assert_eq!(rofs.read(6, 590, &mut buffer), Ok(10));
    assert_eq!(rofs.read(6, 600, &mut buffer), Ok(0));
    assert_eq!(rofs.read_link(5), Ok("hello.txt"));
    assert_eq!(rofs.read_link(7), Ok("../hello.txt"));
    for path in ["/hello.txt", "/link", "/bin/up", "/bin/../link", "//bin/./up"] {
        assert_eq!(rofs.resolve(path), Ok(4), "{path}");
    }
    assert_eq!(rofs.resolve("/bin/data"), Ok(6));
    assert_eq!(rofs.resolve("/bin/nothing"), Err(RofsError::NotFound));
    assert_eq!(rofs.resolve("/empty/x"), Err(RofsError::NotDirectory));
    assert_eq!(rofs.read(2, 0, &mut buffer), Err(RofsError::WrongType));
    assert_eq!(rofs.read_link(4), Err(RofsError::WrongType));
}

#[test]
fn every_truncation_is_an_error() {
    let fixture = Fixture::new();
    for length in 0..fixture.bytes.len() {
        assert_eq!(mount(&fixture.bytes[..length]).err(), Some(RofsError::Truncated), "{length} bytes");
    }
}

#[test]
fn a_wrong_superblock_is_an_error() {
    let fixture = Fixture::new();
    let structure_start_is = |block: u64| fixture.with_u64(field::STRUCTURE_FIRST_BLOCK, block);
    let cases: Vec<(Vec<u8>, RofsError)> = vec![
        (fixture.with_u64(field::MAGIC, 0xDEAD_BEEF), RofsError::NotRofs),
        (fixture.with_u64(field::VERSION, 2), RofsError::NotRofs),
        (fixture.with_u64(field::BLOCK_SIZE, 4096), RofsError::NotRofs),
        (structure_start_is(0), RofsError::Corrupt(0)),
        (structure_start_is(5), RofsError::Truncated),
        (structure_start_is(u64::MAX), RofsError::Corrupt(0)),
        (fixture.with_u64(field::STRUCTURE_BLOCKS, 2), RofsError::Truncated),
        (fixture.with_u64(field::STRUCTURE_BLOCKS, 0), RofsError::Corrupt(0)),
        (fixture.with_u64(field::STRUCTURE_BLOCKS, u64::MAX), RofsError::Corrupt(0)),
        (fixture.with_u64(field::ENTRIES, u64::MAX), RofsError::Corrupt(0)),
        (fixture.with_u64(field::SYMLINKS, u64::MAX), RofsError::Corrupt(0)),
        (fixture.with_u64(field::INODES, u64::MAX), RofsError::Corrupt(0)),
        (fixture.with_u64(field::INODES, 0), RofsError::Corrupt(1)),
        (fixture.with_u64(field::INODES, 6), RofsError::Corrupt(0)),
        (fixture.with_u64(field::INODES, 8), RofsError::Corrupt(8)),
    ];
    for (index, (bytes, expected)) in cases.into_iter().enumerate() {
        assert_eq!(mount(&bytes).err(), Some(expected), "case {index}");
    }
    // A count off by one shifts every table after it: some error, never a
    // mount of garbage.
    // So does a structure region that starts one block early, in file data.
    for (offset, value) in [
        (field::ENTRIES, 5),
        (field::ENTRIES, 7),
        (field::SYMLINKS, 1),
        (field::SYMLINKS, 3),
        (field::STRUCTURE_FIRST_BLOCK, 3),
    ] {
        assert!(matches!(mount(&fixture.with_u64(offset, value)), Err(RofsError::Corrupt(_))), "{offset}");
    }
}

#[test]
fn a_wrong_entry_or_symlink_is_an_error() {
    let fixture = Fixture::new();
    let entry = |index: usize| fixture.entry_offsets[index];
    let cases: Vec<(Vec<u8>, RofsError)> = vec![
        // Inode numbers: none, past the table, the root, one named twice.
        (fixture.with_u64(entry(0), 0), RofsError::Corrupt(0)),
        (fixture.with_u64(entry(0), 8), RofsError::Corrupt(0)),
        (fixture.with_u64(entry(5), 1), RofsError::Corrupt(1)),
        (fixture.with_u64(entry(5), 4), RofsError::Corrupt(4)),
        // Name lengths: empty, past the tables.
        (fixture.with_bytes(entry(0) + 8, &0u16.to_le_bytes()), RofsError::Corrupt(0)),
        (fixture.with_bytes(entry(5) + 8, &u16::MAX.to_le_bytes()), RofsError::Corrupt(0)),
        // Names: a slash, NUL, not UTF-8, dot-dot.
        (fixture.with_bytes(entry(0) + 10, b"b/n"), RofsError::Corrupt(0)),
        (fixture.with_bytes(entry(0) + 10, b"b\0n"), RofsError::Corrupt(0)),
        (fixture.with_bytes(entry(0) + 10, b"b\xffn"), RofsError::Corrupt(0)),
        (fixture.with_bytes(entry(5) + 10, b".."), RofsError::Corrupt(0)),
        // Symlinks: a length past the tables, a target that is not UTF-8.
        (fixture.with_bytes(fixture.symlink_offsets[1], &u16::MAX.to_le_bytes()), RofsError::Corrupt(0)),
        (fixture.with_bytes(fixture.symlink_offsets[0] + 2, b"\xc3("), RofsError::Corrupt(0)),
    ];
    for (index, (bytes, expected)) in cases.into_iter().enumerate() {
        assert_eq!(mount(&bytes).err(), Some(expected), "case {index}");
    }
}

#[test]
fn a_wrong_inode_is_an_error() {
    let fixture = Fixture::new();
    let set = |number: usize, field: usize, value: u64| fixture.with_u64(fixture.inode(number, field), value);
    let cases: Vec<(Vec<u8>, RofsError)> = vec![
        // Modes: the root not a directory, no type, a named pipe.
        (set(1, inode_field::MODE, REGULAR), RofsError::Corrupt(1)),
        (set(4, inode_field::MODE, 0), RofsError::Corrupt(4)),
        (set(4, inode_field::MODE, 0o010644), RofsError::Corrupt(4)),
        // A number that is not the inode's place in the table.
        (set(3, inode_field::NUMBER, 4), RofsError::Corrupt(3)),
        // Files: data in the superblock, past the data region, overflowing.
        (set(4, inode_field::DATA_OFFSET, 0), RofsError::Corrupt(4)),
        (set(6, inode_field::DATA_OFFSET, 3), RofsError::Corrupt(6)),
        (set(6, inode_field::COUNT, 1200), RofsError::Corrupt(6)),
        (set(6, inode_field::DATA_OFFSET, u64::MAX), RofsError::Corrupt(6)),
        (set(6, inode_field::COUNT, u64::MAX), RofsError::Corrupt(6)),
        (set(3, inode_field::DATA_OFFSET, 5), RofsError::Corrupt(3)),
        // Directories: entries past the table, overflowing, shared.
        (set(2, inode_field::COUNT, 3), RofsError::Corrupt(2)),
        (set(2, inode_field::DATA_OFFSET, u64::MAX), RofsError::Corrupt(2)),
        (set(2, inode_field::DATA_OFFSET, 0), RofsError::Corrupt(2)),
        // Symlinks: past the symlink table.
        (set(7, inode_field::DATA_OFFSET, 2), RofsError::Corrupt(7)),
    ];
    for (index, (bytes, expected)) in cases.into_iter().enumerate() {
        assert_eq!(mount(&bytes).err(), Some(expected), "case {index}");
    }
}

#[test]
fn the_writer_stores_the_same_tree() {
    use crate::writer::{Contents, Directory, Node, write_image};
    let fixture = Fixture::new();
    let mut root = Directory::default();
    root.insert("/hello.txt", Node::File(Contents::Bytes(HELLO.to_vec()))).unwrap();
    root.insert("/empty", Node::File(Contents::Bytes(Vec::new()))).unwrap();
    root.insert("/link", Node::Symlink("hello.txt".into())).unwrap();
    let data: Vec<u8> = (0..600).map(data_byte).collect();
    root.insert("/bin/data", Node::File(Contents::Bytes(data))).unwrap();
    root.insert("/bin/up", Node::Symlink("../hello.txt".into())).unwrap();
    let mut written = std::io::Cursor::new(Vec::new());
    write_image(&root, &mut written).unwrap();
    let written = written.into_inner();
    // The same superblock and size; the writer orders blocks and inodes its
    // own way.
    assert_eq!(written.len(), fixture.bytes.len());
    assert_eq!(written[..64], fixture.bytes[..64]);
    let (expected, found) = (mount(&fixture.bytes).unwrap(), mount(&written).unwrap());
    let mut buffer = [0u8; 700];
    for path in ["/hello.txt", "/bin/data", "/link", "/bin/up", "/empty"] {
        let (expected_inode, found_inode) = (expected.resolve(path).unwrap(), found.resolve(path).unwrap());
        let length = found.read(found_inode, 0, &mut buffer).unwrap();
        let mut expected_buffer = [0u8; 700];
        assert_eq!(expected.read(expected_inode, 0, &mut expected_buffer), Ok(length), "{path}");
        assert_eq!(buffer[..length], expected_buffer[..length], "{path}");
    }
}
