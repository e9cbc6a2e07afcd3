//! 9P2000.L messages: their numbers, encoding and decoding.
//!
//! Every message is `size[4] type[1] tag[2]` and its fields, little-endian;
//! strings are `length[2]` and bytes, a qid `type[1] version[4] path[8]`.
//! A reply that does not decode is an error value ([`Malformed`]), never
//! a panic; [`error_of`] turns an `Rlerror`'s Linux error number into the
//! VFS's error.

use alloc::vec::Vec;

use crate::errno::Errno;
use crate::vfs::{FileType, FsError};

/// Message types (a request's reply is its number plus one).
pub mod kind {
    /// `Rlerror ecode[4]`.
    pub const RLERROR: u8 = 7;
    /// `Tstatfs fid[4]`.
    pub const TSTATFS: u8 = 8;
    /// `Tlopen fid[4] flags[4]`.
    pub const TLOPEN: u8 = 12;
    /// `Tlcreate fid[4] name[s] flags[4] mode[4] gid[4]`.
    pub const TLCREATE: u8 = 14;
    /// `Tsymlink fid[4] name[s] target[s] gid[4]`.
    pub const TSYMLINK: u8 = 16;
    /// `Tmknod dfid[4] name[s] mode[4] major[4] minor[4] gid[4]`.
    pub const TMKNOD: u8 = 18;
    /// `Treadlink fid[4]`.
    pub const TREADLINK: u8 = 22;
    /// `Tgetattr fid[4] request_mask[8]`.
    pub const TGETATTR: u8 = 24;
    /// `Tsetattr fid[4] valid[4] mode[4] uid[4] gid[4] size[8] atime[8+8]
    /// mtime[8+8]`.
    pub const TSETATTR: u8 = 26;
    /// `Treaddir fid[4] offset[8] count[4]`.
    pub const TREADDIR: u8 = 40;
    /// `Tfsync fid[4] datasync[4]`.
    pub const TFSYNC: u8 = 50;
    /// `Tlink dfid[4] fid[4] name[s]`.
    pub const TLINK: u8 = 70;
    /// `Tmkdir dfid[4] name[s] mode[4] gid[4]`.
    pub const TMKDIR: u8 = 72;
    /// `Trenameat olddirfid[4] oldname[s] newdirfid[4] newname[s]`.
    pub const TRENAMEAT: u8 = 74;
    /// `Tunlinkat dirfid[4] name[s] flags[4]`.
    pub const TUNLINKAT: u8 = 76;
    /// `Tversion msize[4] version[s]`.
    pub const TVERSION: u8 = 100;
    /// `Tattach fid[4] afid[4] uname[s] aname[s] n_uname[4]`.
    pub const TATTACH: u8 = 104;
    /// `Twalk fid[4] newfid[4] nwname[2] nwname*(wname[s])`.
    pub const TWALK: u8 = 110;
    /// `Tread fid[4] offset[8] count[4]`.
    pub const TREAD: u8 = 116;
    /// `Twrite fid[4] offset[8] count[4] data[count]`.
    pub const TWRITE: u8 = 118;
    /// `Tclunk fid[4]`.
    pub const TCLUNK: u8 = 120;
}

/// The protocol version spoken.
pub const VERSION: &str = "9P2000.L";
/// The tag of `Tversion`.
pub const NO_TAG: u16 = 0xffff;
/// No fid (`Tattach`'s `afid`).
pub const NO_FID: u32 = 0xffff_ffff;
/// Bytes of `size[4] type[1] tag[2]`.
pub const HEADER_BYTES: usize = 7;
/// Bytes of a `Tread` or `Twrite`'s header (up to `count[4]`), which
/// `msize` must leave room for beside the data.
pub const IO_HEADER_BYTES: usize = HEADER_BYTES + 4 + 8 + 4;
/// The smallest `msize` the client accepts.
pub const MESSAGE_BYTES_MIN: usize = 4096;

/// `Tgetattr` request mask: every basic field (mode to blocks).
pub const GETATTR_BASIC: u64 = 0x7ff;

/// `Tsetattr` valid bits.
pub mod set {
    /// Set the mode.
    pub const MODE: u32 = 0x1;
    /// Set the owner.
    pub const UID: u32 = 0x2;
    /// Set the group.
    pub const GID: u32 = 0x4;
    /// Set the size.
    pub const SIZE: u32 = 0x8;
    /// Set the access time (to now, unless `ATIME_SET`).
    pub const ATIME: u32 = 0x10;
    /// Set the modification time (to now, unless `MTIME_SET`).
    pub const MTIME: u32 = 0x20;
    /// Update the change time.
    pub const CTIME: u32 = 0x40;
    /// The access time is the one given.
    pub const ATIME_SET: u32 = 0x80;
    /// The modification time is the one given.
    pub const MTIME_SET: u32 = 0x100;
}

/// `Tunlinkat` flag: the name is a directory.
pub const AT_REMOVEDIR: u32 = 0x200;

/// `Tlopen` and `Tlcreate` flags (Linux's `open` flags on x86).
pub mod open {
    /// Read only.
    pub const READ_ONLY: u32 = 0;
    /// Write only.
    pub const WRITE_ONLY: u32 = 1;
    /// Read and write.
    pub const READ_WRITE: u32 = 2;
    /// Create.
    pub const CREATE: u32 = 0o100;
    /// Fail if it exists.
    pub const EXCLUSIVE: u32 = 0o200;
    /// Only a directory.
    pub const DIRECTORY: u32 = 0o200000;
}

/// A reply that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl From<Malformed> for FsError {
    fn from(_: Malformed) -> FsError {
        log::warn!("9p: a malformed reply");
        FsError::Io
    }
}

/// The server's identity of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qid {
    /// `QTDIR`, `QTSYMLINK`, ... bits.
    pub kind: u8,
    /// Changes with the file's contents.
    pub version: u32,
    /// Unique per file on the server (its inode number).
    pub path: u64,
}

/// `QTDIR`.
const QID_DIRECTORY: u8 = 0x80;

impl Qid {
    /// Whether the qid names a directory.
    pub fn is_directory(&self) -> bool {
        self.kind & QID_DIRECTORY != 0
    }
}

/// Builds a request: the header, then fields, with the size filled in by
/// [`Encoder::finish`].
#[derive(Debug)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// A request of `kind` with `tag`.
    pub fn new(kind: u8, tag: u16) -> Encoder {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0; 4]);
        bytes.push(kind);
        bytes.extend_from_slice(&tag.to_le_bytes());
        Encoder { bytes }
    }

    /// Appends a byte.
    pub fn u8(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    /// Appends a `u16`.
    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a string (at most 65535 bytes: the VFS's names and paths
    /// are far shorter).
    pub fn string(&mut self, text: &str) -> &mut Self {
        let bytes = &text.as_bytes()[..text.len().min(usize::from(u16::MAX))];
        self.u16(bytes.len() as u16);
        self.bytes.extend_from_slice(bytes);
        self
    }

    /// The message, its size counting `trailing_bytes` more sent after it
    /// (a `Twrite`'s data).
    pub fn finish(mut self, trailing_bytes: usize) -> Vec<u8> {
        let size = (self.bytes.len() + trailing_bytes) as u32;
        self.bytes[..4].copy_from_slice(&size.to_le_bytes());
        self.bytes
    }
}

/// Reads a reply's fields in order.
#[derive(Debug)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// Reads `bytes` (a reply's fields, after its header).
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < count {
            return Err(Malformed);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    /// A `u16`.
    pub fn u16(&mut self) -> Result<u16, Malformed> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    /// A `u32`.
    pub fn u32(&mut self) -> Result<u32, Malformed> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(word))
    }

    /// A `u64`.
    pub fn u64(&mut self) -> Result<u64, Malformed> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    /// A string's bytes.
    pub fn string(&mut self) -> Result<&'a [u8], Malformed> {
        let length = usize::from(self.u16()?);
        self.take(length)
    }

    /// `count` bytes.
    pub fn bytes(&mut self, count: usize) -> Result<&'a [u8], Malformed> {
        self.take(count)
    }

    /// A qid.
    pub fn qid(&mut self) -> Result<Qid, Malformed> {
        Ok(Qid { kind: self.u8()?, version: self.u32()?, path: self.u64()? })
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What `Rgetattr` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// The file's qid.
    pub qid: Qid,
    /// `st_mode`.
    pub mode: u32,
    /// `st_uid`.
    pub user: u32,
    /// `st_gid`.
    pub group: u32,
    /// `st_nlink`.
    pub link_count: u64,
    /// `st_rdev`.
    pub represented_device: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_blksize`.
    pub block_size: u64,
    /// `st_blocks`.
    pub blocks: u64,
    /// Times, nanoseconds since the epoch.
    pub access_time_ns: u64,
    /// Last change of the contents.
    pub modify_time_ns: u64,
    /// Last change of the contents or metadata.
    pub change_time_ns: u64,
}

fn time_ns(decoder: &mut Decoder<'_>) -> Result<u64, Malformed> {
    let seconds = decoder.u64()?;
    let nanoseconds = decoder.u64()?;
    Ok(seconds.saturating_mul(1_000_000_000).saturating_add(nanoseconds.min(999_999_999)))
}

impl Attributes {
    /// Decodes `Rgetattr`'s fields.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Attributes, Malformed> {
        let _valid = decoder.u64()?;
        let qid = decoder.qid()?;
        let mode = decoder.u32()?;
        let user = decoder.u32()?;
        let group = decoder.u32()?;
        let link_count = decoder.u64()?;
        let represented_device = decoder.u64()?;
        let size = decoder.u64()?;
        let block_size = decoder.u64()?;
        let blocks = decoder.u64()?;
        let access_time_ns = time_ns(decoder)?;
        let modify_time_ns = time_ns(decoder)?;
        let change_time_ns = time_ns(decoder)?;
        // Birth time, generation and data version follow; unused.
        Ok(Attributes {
            qid,
            mode,
            user,
            group,
            link_count,
            represented_device,
            size,
            block_size,
            blocks,
            access_time_ns,
            modify_time_ns,
            change_time_ns,
        })
    }

    /// The type the mode names; `None` for an unknown one.
    pub fn file_type(&self) -> Option<FileType> {
        file_type_of_mode(self.mode)
    }
}

/// The type `mode`'s `S_IFMT` bits name.
pub fn file_type_of_mode(mode: u32) -> Option<FileType> {
    Some(match mode & 0o170000 {
        0o010000 => FileType::Fifo,
        0o020000 => FileType::CharacterDevice,
        0o040000 => FileType::Directory,
        0o060000 => FileType::BlockDevice,
        0o100000 => FileType::Regular,
        0o120000 => FileType::Symlink,
        0o140000 => FileType::Socket,
        _ => return None,
    })
}

/// The type a directory entry's `d_type` names (regular for unknown).
pub fn file_type_of_entry(entry_type: u8) -> FileType {
    match entry_type {
        1 => FileType::Fifo,
        2 => FileType::CharacterDevice,
        4 => FileType::Directory,
        6 => FileType::BlockDevice,
        10 => FileType::Symlink,
        12 => FileType::Socket,
        _ => FileType::Regular,
    }
}

/// The VFS error for an `Rlerror`'s Linux error number; a number outside
/// Linux's range is an I/O error.
pub fn error_of(code: u32) -> FsError {
    match code {
        1 => FsError::NotPermitted,
        2 => FsError::NotFound,
        5 => FsError::Io,
        13 => FsError::AccessDenied,
        16 => FsError::Busy,
        17 => FsError::Exists,
        18 => FsError::CrossDevice,
        20 => FsError::NotDirectory,
        21 => FsError::IsDirectory,
        22 => FsError::InvalidArgument,
        27 => FsError::TooLarge,
        28 => FsError::NoSpace,
        30 => FsError::ReadOnly,
        36 => FsError::NameTooLong,
        39 => FsError::NotEmpty,
        40 => FsError::TooManyLinks,
        95 => FsError::NotSupported,
        0 => FsError::Io,
        code if code <= 4095 => FsError::Errno(Errno(code as i32)),
        _ => FsError::Io,
    }
}
