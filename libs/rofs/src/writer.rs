//! Writing ROFS images from a tree of files.
//!
//! File contents are streamed into the image one after another, each from a
//! block boundary; the structure region (directory entries, symlinks,
//! inodes) follows them and the superblock is written last, as in OSv.
//!
//! Unlike OSv's writer, a file copied from the host keeps its permission
//! bits in the low bits of its inode's mode. Readers that look only at the
//! file type bits (OSv's among them) are not affected; other inodes, and
//! files given as bytes, hold none. Every inode also gets a modification
//! time in rosv's extension (`rosv_abi::rofs::Extension`), which OSv's
//! reader does not look at: a host file's or directory's own, else the
//! time the image is written.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rosv_abi::rofs::{
    BLOCK_SIZE, EXTENSION_MAGIC, EXTENSION_OFFSET, EXTENSION_VERSION, Extension, Inode, InodeTimes, MAGIC,
    MODE_DIRECTORY, MODE_REGULAR, MODE_SYMLINK, SuperBlock, VERSION,
};

/// The bits of a mode below the file type: permissions, set-id and sticky.
const PERMISSION_BITS: u64 = 0o7777;

/// Where a file's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// A file on the host, read while the image is written.
    HostFile(PathBuf),
}

/// A node of the tree to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File(Contents),
    /// A symbolic link to the given path.
    Symlink(String),
    /// A directory.
    Directory(Directory),
}

/// A directory: its entries by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// The entries, sorted by name.
    pub entries: BTreeMap<String, Node>,
    /// Its modification time (a host directory's); `None` takes the time
    /// the image is written.
    pub modify_time: Option<InodeTimes>,
}

/// A host file's or directory's modification time.
pub fn host_modify_time(metadata: &std::fs::Metadata) -> InodeTimes {
    use std::os::unix::fs::MetadataExt;
    InodeTimes { modify_seconds: metadata.mtime(), modify_nanoseconds: metadata.mtime_nsec() as u32 }
}

/// Why a tree could not be added to or written.
#[derive(Debug)]
pub enum WriteError {
    /// A path or name cannot be stored (empty, `.`/`..`, over 65535 bytes).
    BadName(String),
    /// A path goes through something that is not a directory.
    NotDirectory(String),
    /// Reading a host file or writing the image failed.
    Io(io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::BadName(name) => {
                write!(formatter, "cannot store the name {name:?} in a ROFS image")
            }
            WriteError::NotDirectory(path) => {
                write!(formatter, "{path} is not a directory in the image")
            }
            WriteError::Io(error) => write!(formatter, "{error}"),
        }
    }
}

impl std::error::Error for WriteError {}

impl From<io::Error> for WriteError {
    fn from(error: io::Error) -> Self {
        WriteError::Io(error)
    }
}

impl Directory {
    /// Adds `node` at the absolute or relative `path`, creating directories
    /// on the way and replacing whatever was there.
    pub fn insert(&mut self, path: &str, node: Node) -> Result<(), WriteError> {
        let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
        let Some((last, parents)) = components.split_last() else {
            return Err(WriteError::BadName(path.to_string()));
        };
        let mut directory = self;
        for component in parents {
            check_name(component)?;
            let child = directory
                .entries
                .entry(component.to_string())
                .or_insert_with(|| Node::Directory(Directory::default()));
            directory = match child {
                Node::Directory(inner) => inner,
                _ => return Err(WriteError::NotDirectory(path.to_string())),
            };
        }
        check_name(last)?;
        if let (Some(Node::Directory(existing)), Node::Directory(new)) =
            (directory.entries.get_mut(*last), &node)
        {
            // Merge rather than drop what an earlier insert put below.
            for (name, child) in &new.entries {
                existing.entries.insert(name.clone(), child.clone());
            }
            if new.modify_time.is_some() {
                existing.modify_time = new.modify_time;
            }
            return Ok(());
        }
        directory.entries.insert(last.to_string(), node);
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), WriteError> {
    if name.is_empty() || name == "." || name == ".." || name.len() > usize::from(u16::MAX) {
        return Err(WriteError::BadName(name.to_string()));
    }
    Ok(())
}

struct Image<W> {
    sink: W,
    next_block: u64,
    inodes: Vec<Inode>,
    times: Vec<InodeTimes>,
    now: InodeTimes,
    entries: Vec<u8>,
    entry_count: u64,
    symlinks: Vec<u8>,
    symlink_count: u64,
}

/// Writes `root` as a ROFS image into `sink` and returns the image size.
pub fn write_image<W: Write + Seek>(root: &Directory, sink: W) -> Result<u64, WriteError> {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let now = InodeTimes {
        modify_seconds: since_epoch.as_secs() as i64,
        modify_nanoseconds: since_epoch.subsec_nanos(),
    };
    let mut image = Image {
        sink,
        next_block: 1,
        inodes: vec![Inode { mode: MODE_DIRECTORY, inode_no: 1, data_offset: 0, count: 0 }],
        times: vec![root.modify_time.unwrap_or(now)],
        now,
        entries: Vec::new(),
        entry_count: 0,
        symlinks: Vec::new(),
        symlink_count: 0,
    };
    image.sink.seek(SeekFrom::Start(BLOCK_SIZE))?;
    image.write_directory(root, 0)?;

    let structure_first_block = image.next_block;
    let mut structure = std::mem::take(&mut image.entries);
    structure.extend_from_slice(&image.symlinks);
    for inode in &image.inodes {
        structure.extend_from_slice(&inode.encode());
    }
    let extension = Extension {
        magic: EXTENSION_MAGIC,
        version: EXTENSION_VERSION,
        times_offset: structure.len() as u64,
        times_count: image.times.len() as u64,
    };
    for times in &image.times {
        structure.extend_from_slice(&times.encode());
    }
    let structure_blocks = (structure.len() as u64).div_ceil(BLOCK_SIZE);
    structure.resize((structure_blocks * BLOCK_SIZE) as usize, 0);
    image.sink.write_all(&structure)?;

    let super_block = SuperBlock {
        magic: MAGIC,
        version: VERSION,
        block_size: BLOCK_SIZE,
        structure_info_first_block: structure_first_block,
        structure_info_blocks_count: structure_blocks,
        directory_entries_count: image.entry_count,
        symlinks_count: image.symlink_count,
        inodes_count: image.inodes.len() as u64,
    };
    let mut first_block = vec![0u8; BLOCK_SIZE as usize];
    first_block[..super_block.encode().len()].copy_from_slice(&super_block.encode());
    first_block[EXTENSION_OFFSET..EXTENSION_OFFSET + extension.encode().len()]
        .copy_from_slice(&extension.encode());
    image.sink.seek(SeekFrom::Start(0))?;
    image.sink.write_all(&first_block)?;
    image.sink.flush()?;
    Ok((structure_first_block + structure_blocks) * BLOCK_SIZE)
}

impl<W: Write + Seek> Image<W> {
    /// Writes the directory whose inode is at `index`, and everything below.
    fn write_directory(&mut self, directory: &Directory, index: usize) -> Result<(), WriteError> {
        let first_child = self.inodes.len();
        for _ in &directory.entries {
            let inode_no = self.inodes.len() as u64 + 1;
            self.inodes.push(Inode { inode_no, ..Inode::default() });
            self.times.push(self.now);
        }
        for (offset, node) in directory.entries.values().enumerate() {
            let child = first_child + offset;
            match node {
                Node::File(contents) => {
                    let first_block = self.next_block;
                    let (size, permissions, modify_time) = self.write_contents(contents)?;
                    self.inodes[child].mode = MODE_REGULAR | permissions;
                    if let Some(modify_time) = modify_time {
                        self.times[child] = modify_time;
                    }
                    self.inodes[child].data_offset = first_block;
                    self.inodes[child].count = size;
                }
                Node::Symlink(target) => {
                    let length =
                        u16::try_from(target.len()).map_err(|_| WriteError::BadName(target.clone()))?;
                    self.symlinks.extend_from_slice(&length.to_le_bytes());
                    self.symlinks.extend_from_slice(target.as_bytes());
                    self.inodes[child].mode = MODE_SYMLINK;
                    self.inodes[child].data_offset = self.symlink_count;
                    self.inodes[child].count = 1;
                    self.symlink_count += 1;
                }
                Node::Directory(inner) => {
                    self.inodes[child].mode = MODE_DIRECTORY;
                    if let Some(modify_time) = inner.modify_time {
                        self.times[child] = modify_time;
                    }
                    self.write_directory(inner, child)?;
                }
            }
        }
        self.inodes[index].data_offset = self.entry_count;
        self.inodes[index].count = directory.entries.len() as u64;
        for (offset, name) in directory.entries.keys().enumerate() {
            let inode_no = (first_child + offset) as u64 + 1;
            self.entries.extend_from_slice(&inode_no.to_le_bytes());
            self.entries.extend_from_slice(&(name.len() as u16).to_le_bytes());
            self.entries.extend_from_slice(name.as_bytes());
            self.entry_count += 1;
        }
        Ok(())
    }

    /// Streams a file's contents from the next free block; returns its size,
    /// permission bits and modification time (a host file's; none and no
    /// time for bytes).
    fn write_contents(&mut self, contents: &Contents) -> Result<(u64, u64, Option<InodeTimes>), WriteError> {
        let (size, permissions, modify_time) = match contents {
            Contents::Bytes(bytes) => {
                self.sink.write_all(bytes)?;
                (bytes.len() as u64, 0, None)
            }
            Contents::HostFile(path) => {
                let with_path =
                    |error: io::Error| io::Error::new(error.kind(), format!("{}: {error}", path.display()));
                let mut file = File::open(path).map_err(with_path)?;
                let metadata = file.metadata().map_err(with_path)?;
                let mode = metadata.permissions().mode();
                let size = io::copy(&mut file, &mut self.sink)?;
                (size, u64::from(mode) & PERMISSION_BITS, Some(host_modify_time(&metadata)))
            }
        };
        let blocks = size.div_ceil(BLOCK_SIZE);
        let padding = blocks * BLOCK_SIZE - size;
        self.sink.write_all(&vec![0u8; padding as usize])?;
        self.next_block += blocks;
        Ok((size, permissions, modify_time))
    }
}
