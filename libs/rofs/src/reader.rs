//! The reader: mount-time validation, path lookup, file reads.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use rosv_abi::rofs::{
    self, BLOCK_SIZE, EXTENSION_MAGIC, EXTENSION_OFFSET, EXTENSION_SIZE, EXTENSION_VERSION, Extension,
    INODE_SIZE, INODE_TIMES_SIZE, Inode, InodeTimes, MODE_DIRECTORY, MODE_REGULAR, MODE_SYMLINK,
    MODE_TYPE_MASK, ROOT_INODE, SuperBlock,
};

/// Symlinks followed in one lookup before giving up (Linux's limit).
const SYMLINK_HOPS_MAX: usize = 40;
/// The structure region is read into memory; refuse absurd sizes.
const STRUCTURE_BYTES_MAX: u64 = 256 << 20;

/// A device or buffer holding an image.
pub trait BlockSource {
    /// Fills `buffer` from byte `offset` of the image.
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), SourceError>;
    /// The image size in bytes.
    fn size(&self) -> u64;
}

/// The source could not deliver the bytes asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceError;

impl BlockSource for &[u8] {
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), SourceError> {
        let start = usize::try_from(offset).map_err(|_| SourceError)?;
        let bytes =
            start.checked_add(buffer.len()).and_then(|end| self.get(start..end)).ok_or(SourceError)?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// Why an image could not be mounted or a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RofsError {
    /// The superblock's magic, version or block size is wrong.
    NotRofs,
    /// The image is shorter than its structures say.
    Truncated,
    /// An inode, entry or symlink is inconsistent; holds the inode number or
    /// 0 for the tables themselves.
    Corrupt(u64),
    /// Reading the source failed.
    Io,
    /// No such file or directory.
    NotFound,
    /// A path component is not a directory.
    NotDirectory,
    /// The operation needs a regular file or symlink.
    WrongType,
    /// Too many symlinks.
    TooManySymlinks,
}

impl core::error::Error for RofsError {}

impl fmt::Display for RofsError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RofsError::NotRofs => write!(formatter, "the superblock's magic, version or block size is wrong"),
            RofsError::Truncated => write!(formatter, "the image is truncated"),
            RofsError::Corrupt(0) => write!(formatter, "the image's tables are corrupt"),
            RofsError::Corrupt(inode) => write!(formatter, "inode {inode} is corrupt"),
            RofsError::Io => write!(formatter, "the image could not be read"),
            RofsError::NotFound => write!(formatter, "no such file or directory"),
            RofsError::NotDirectory => write!(formatter, "not a directory"),
            RofsError::WrongType => write!(formatter, "wrong file type"),
            RofsError::TooManySymlinks => write!(formatter, "too many levels of symbolic links"),
        }
    }
}

/// The type of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
}

/// What `stat` needs to know of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// The inode number.
    pub inode: u64,
    /// The file type.
    pub file_type: FileType,
    /// Size in bytes (entries for a directory, target length for a symlink).
    pub size: u64,
    /// The permission bits of the inode's mode (`0o7777`); images written
    /// without them hold 0.
    pub permissions: u32,
    /// The modification time, from rosv's extension; `None` in images
    /// without it (OSv's).
    pub modify_time: Option<InodeTimes>,
    /// Links to the inode: 1 for a file or symlink, 2 plus the number of
    /// subdirectories for a directory.
    pub link_count: u64,
}

/// One entry of a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectoryEntry<'a> {
    /// The entry's name.
    pub name: &'a str,
    /// The inode it names.
    pub inode: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    inode: u64,
    name_start: usize,
    name_len: usize,
}

/// Reads rosv's times table that `extension` describes from `structure`:
/// one record per inode, inside the structure region, each time valid.
fn read_times(
    structure: &[u8],
    extension: &Extension,
    inode_count: u64,
) -> Result<Vec<InodeTimes>, RofsError> {
    if extension.version != EXTENSION_VERSION || extension.times_count != inode_count {
        return Err(RofsError::Corrupt(0));
    }
    let start = usize::try_from(extension.times_offset).map_err(|_| RofsError::Corrupt(0))?;
    let length = usize::try_from(inode_count)
        .ok()
        .and_then(|count| count.checked_mul(INODE_TIMES_SIZE))
        .ok_or(RofsError::Corrupt(0))?;
    let table =
        start.checked_add(length).and_then(|end| structure.get(start..end)).ok_or(RofsError::Corrupt(0))?;
    table
        .chunks_exact(INODE_TIMES_SIZE)
        .map(|record| {
            InodeTimes::decode(record)
                .filter(|times| times.modify_nanoseconds < 1_000_000_000)
                .ok_or(RofsError::Corrupt(0))
        })
        .collect()
}

/// A mounted, validated ROFS image.
#[derive(Debug)]
pub struct Rofs<S> {
    source: S,
    inodes: Vec<Inode>,
    entries: Vec<Entry>,
    names: String,
    symlinks: Vec<String>,
    times: Vec<InodeTimes>,
}

impl<S: BlockSource> Rofs<S> {
    /// Reads and checks the image's superblock and structure region.
    pub fn mount(source: S) -> Result<Self, RofsError> {
        let mut block = [0u8; EXTENSION_OFFSET + EXTENSION_SIZE];
        source.read_at(0, &mut block).map_err(|_| RofsError::Truncated)?;
        let super_block = SuperBlock::decode(&block).ok_or(RofsError::Truncated)?;
        let extension = Extension::decode(&block[EXTENSION_OFFSET..]).ok_or(RofsError::Truncated)?;
        if super_block.magic != rofs::MAGIC
            || super_block.version != rofs::VERSION
            || super_block.block_size != BLOCK_SIZE
        {
            return Err(RofsError::NotRofs);
        }
        let structure_start =
            super_block.structure_info_first_block.checked_mul(BLOCK_SIZE).ok_or(RofsError::Corrupt(0))?;
        let structure_size = super_block
            .structure_info_blocks_count
            .checked_mul(BLOCK_SIZE)
            .filter(|&size| size <= STRUCTURE_BYTES_MAX)
            .ok_or(RofsError::Corrupt(0))?;
        let structure_end = structure_start.checked_add(structure_size).ok_or(RofsError::Corrupt(0))?;
        if structure_start < BLOCK_SIZE {
            return Err(RofsError::Corrupt(0));
        }
        if structure_end > source.size() {
            return Err(RofsError::Truncated);
        }
        let mut structure = vec![0u8; structure_size as usize];
        source.read_at(structure_start, &mut structure).map_err(|_| RofsError::Io)?;

        let mut rofs = Rofs {
            source,
            inodes: Vec::new(),
            entries: Vec::new(),
            names: String::new(),
            symlinks: Vec::new(),
            times: Vec::new(),
        };
        let mut offset = 0;
        for _ in 0..super_block.directory_entries_count {
            let (entry, next) =
                rofs::decode_directory_entry(&structure, offset).ok_or(RofsError::Corrupt(0))?;
            let name = core::str::from_utf8(entry.name).map_err(|_| RofsError::Corrupt(0))?;
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                return Err(RofsError::Corrupt(0));
            }
            rofs.entries.push(Entry {
                inode: entry.inode_no,
                name_start: rofs.names.len(),
                name_len: name.len(),
            });
            rofs.names.push_str(name);
            offset = next;
        }
        for _ in 0..super_block.symlinks_count {
            let (path, next) = rofs::decode_symlink(&structure, offset).ok_or(RofsError::Corrupt(0))?;
            let path = core::str::from_utf8(path).map_err(|_| RofsError::Corrupt(0))?;
            rofs.symlinks.push(String::from(path));
            offset = next;
        }
        for _ in 0..super_block.inodes_count {
            let bytes = structure.get(offset..offset + INODE_SIZE).ok_or(RofsError::Corrupt(0))?;
            rofs.inodes.push(Inode::decode(bytes).ok_or(RofsError::Corrupt(0))?);
            offset += INODE_SIZE;
        }
        if extension.magic == EXTENSION_MAGIC {
            rofs.times = read_times(&structure, &extension, super_block.inodes_count)?;
        }
        rofs.check(structure_start)?;
        Ok(rofs)
    }

    /// Checks every inode and entry against the tables and the file data
    /// region (between the superblock and `structure_start`), and that what
    /// the root reaches is a tree: each entry belongs to one directory at
    /// most, each inode is named by one entry at most and the root by none.
    /// Walking the tree therefore always ends.
    fn check(&self, structure_start: u64) -> Result<(), RofsError> {
        let inode_count = self.inodes.len() as u64;
        if self.inode(ROOT_INODE).map(|inode| inode.mode & MODE_TYPE_MASK) != Ok(MODE_DIRECTORY) {
            return Err(RofsError::Corrupt(ROOT_INODE));
        }
        let mut is_named = vec![false; self.inodes.len()];
        for entry in &self.entries {
            if entry.inode == 0 || entry.inode > inode_count {
                return Err(RofsError::Corrupt(0));
            }
            let index = (entry.inode - 1) as usize;
            if entry.inode == ROOT_INODE || is_named[index] {
                return Err(RofsError::Corrupt(entry.inode));
            }
            is_named[index] = true;
        }
        let mut is_listed = vec![false; self.entries.len()];
        for (index, inode) in self.inodes.iter().enumerate() {
            let number = index as u64 + 1;
            let is_consistent = inode.inode_no == number
                && match inode.mode & MODE_TYPE_MASK {
                    MODE_DIRECTORY => inode
                        .data_offset
                        .checked_add(inode.count)
                        .filter(|&end| end <= self.entries.len() as u64)
                        .is_some_and(|end| {
                            let listed = &mut is_listed[inode.data_offset as usize..end as usize];
                            let is_shared = listed.contains(&true);
                            listed.fill(true);
                            !is_shared
                        }),
                    MODE_REGULAR => inode
                        .data_offset
                        .checked_mul(BLOCK_SIZE)
                        .filter(|&start| start >= BLOCK_SIZE)
                        .and_then(|start| start.checked_add(inode.count))
                        .is_some_and(|end| end <= structure_start),
                    MODE_SYMLINK => inode.data_offset < self.symlinks.len() as u64,
                    _ => false,
                };
            if !is_consistent {
                return Err(RofsError::Corrupt(number));
            }
        }
        Ok(())
    }

    fn inode(&self, number: u64) -> Result<&Inode, RofsError> {
        number.checked_sub(1).and_then(|index| self.inodes.get(index as usize)).ok_or(RofsError::NotFound)
    }

    /// The source the image is read from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The root directory's inode number.
    pub fn root(&self) -> u64 {
        ROOT_INODE
    }

    /// The metadata of inode `number`.
    pub fn metadata(&self, number: u64) -> Result<Metadata, RofsError> {
        let inode = self.inode(number)?;
        let (file_type, size) = match inode.mode & MODE_TYPE_MASK {
            MODE_DIRECTORY => (FileType::Directory, inode.count),
            MODE_SYMLINK => (FileType::Symlink, self.symlinks[inode.data_offset as usize].len() as u64),
            _ => (FileType::Regular, inode.count),
        };
        let permissions = (inode.mode & 0o7777) as u32;
        let link_count = if file_type == FileType::Directory {
            let first = inode.data_offset as usize;
            let subdirectories = self
                .entries
                .get(first..first + inode.count as usize)
                .unwrap_or_default()
                .iter()
                .filter(|entry| {
                    self.inode(entry.inode).is_ok_and(|child| child.mode & MODE_TYPE_MASK == MODE_DIRECTORY)
                })
                .count();
            2 + subdirectories as u64
        } else {
            1
        };
        let modify_time = number.checked_sub(1).and_then(|index| self.times.get(index as usize)).copied();
        Ok(Metadata { inode: number, file_type, size, permissions, modify_time, link_count })
    }

    /// The entries of directory `number`.
    pub fn read_dir(&self, number: u64) -> Result<impl Iterator<Item = DirectoryEntry<'_>>, RofsError> {
        let inode = self.inode(number)?;
        if inode.mode & MODE_TYPE_MASK != MODE_DIRECTORY {
            return Err(RofsError::NotDirectory);
        }
        let first = inode.data_offset as usize;
        let entries = &self.entries[first..first + inode.count as usize];
        Ok(entries.iter().map(|entry| DirectoryEntry {
            name: &self.names[entry.name_start..entry.name_start + entry.name_len],
            inode: entry.inode,
        }))
    }

    /// Entry `index` of directory `number`, `None` past the last.
    pub fn directory_entry(&self, number: u64, index: u64) -> Result<Option<DirectoryEntry<'_>>, RofsError> {
        let inode = self.inode(number)?;
        if inode.mode & MODE_TYPE_MASK != MODE_DIRECTORY {
            return Err(RofsError::NotDirectory);
        }
        if index >= inode.count {
            return Ok(None);
        }
        let entry = &self.entries[(inode.data_offset + index) as usize];
        Ok(Some(DirectoryEntry {
            name: &self.names[entry.name_start..entry.name_start + entry.name_len],
            inode: entry.inode,
        }))
    }

    /// Looks `name` up in directory `directory`.
    pub fn lookup(&self, directory: u64, name: &str) -> Result<u64, RofsError> {
        self.read_dir(directory)?
            .find(|entry| entry.name == name)
            .map(|entry| entry.inode)
            .ok_or(RofsError::NotFound)
    }

    /// The target of symlink `number`.
    pub fn read_link(&self, number: u64) -> Result<&str, RofsError> {
        let inode = self.inode(number)?;
        if inode.mode & MODE_TYPE_MASK != MODE_SYMLINK {
            return Err(RofsError::WrongType);
        }
        Ok(&self.symlinks[inode.data_offset as usize])
    }

    /// Resolves an absolute path, following symlinks (also in the last
    /// component) and `..`.
    pub fn resolve(&self, path: &str) -> Result<u64, RofsError> {
        let mut hops = 0;
        self.resolve_from(&mut Vec::new(), path, &mut hops)
    }

    fn resolve_from(&self, parents: &mut Vec<u64>, path: &str, hops: &mut usize) -> Result<u64, RofsError> {
        let mut current = if path.starts_with('/') {
            parents.clear();
            ROOT_INODE
        } else {
            parents.pop().unwrap_or(ROOT_INODE)
        };
        for component in path.split('/').filter(|component| !component.is_empty() && *component != ".") {
            if component == ".." {
                current = parents.pop().unwrap_or(ROOT_INODE);
                continue;
            }
            let child = self.lookup(current, component)?;
            if self.metadata(child)?.file_type == FileType::Symlink {
                *hops += 1;
                if *hops > SYMLINK_HOPS_MAX {
                    return Err(RofsError::TooManySymlinks);
                }
                parents.push(current);
                let target = String::from(self.read_link(child)?);
                current = self.resolve_from(parents, &target, hops)?;
            } else {
                parents.push(current);
                current = child;
            }
        }
        Ok(current)
    }

    /// Reads from regular file `number` at `offset`; returns the bytes read
    /// (0 at or past the end).
    pub fn read(&self, number: u64, offset: u64, buffer: &mut [u8]) -> Result<usize, RofsError> {
        let inode = self.inode(number)?;
        if inode.mode & MODE_TYPE_MASK != MODE_REGULAR {
            return Err(RofsError::WrongType);
        }
        if offset >= inode.count {
            return Ok(0);
        }
        let length = (inode.count - offset).min(buffer.len() as u64) as usize;
        let start = inode.data_offset * BLOCK_SIZE + offset;
        self.source.read_at(start, &mut buffer[..length]).map_err(|_| RofsError::Io)?;
        Ok(length)
    }
}
