//! The NFSv3, MOUNT v3 and portmap messages (RFC 1813, RFC 1833): their
//! numbers, the types they share (file handles, attributes, settable
//! attributes) and the status codes as errno values.

use alloc::vec::Vec;

use super::rpc::{Procedure, Reply, RpcError};
use super::xdr::{Decoder, Encoder, XdrError};
use crate::errno::Errno;
use crate::vfs::{FileType, FsError, Metadata};

/// The portmap program, version 2, and its `GETPORT` procedure.
pub const PORTMAP_GETPORT: Procedure = Procedure { program: 100_000, version: 2, procedure: 3 };
/// The port portmap (rpcbind) listens on.
pub const PORTMAP_PORT: u16 = 111;
/// `IPPROTO_TCP` as portmap names it.
pub const PROTOCOL_TCP: u32 = 6;

/// MOUNT version 3.
pub const MOUNT_PROGRAM: u32 = 100_005;
/// NFS.
pub const NFS_PROGRAM: u32 = 100_003;

/// MOUNT v3 procedures.
pub mod mount {
    /// `MNT`: the root file handle of an export.
    pub const MNT: u32 = 1;
    /// `UMNT`: the client no longer uses the export.
    pub const UMNT: u32 = 3;
}

/// NFSv3 procedures (RFC 1813 §3.3).
#[allow(missing_docs)]
pub mod procedure {
    pub const NULL: u32 = 0;
    pub const GETATTR: u32 = 1;
    pub const SETATTR: u32 = 2;
    pub const LOOKUP: u32 = 3;
    pub const ACCESS: u32 = 4;
    pub const READLINK: u32 = 5;
    pub const READ: u32 = 6;
    pub const WRITE: u32 = 7;
    pub const CREATE: u32 = 8;
    pub const MKDIR: u32 = 9;
    pub const SYMLINK: u32 = 10;
    pub const MKNOD: u32 = 11;
    pub const REMOVE: u32 = 12;
    pub const RMDIR: u32 = 13;
    pub const RENAME: u32 = 14;
    pub const LINK: u32 = 15;
    pub const READDIR: u32 = 16;
    pub const READDIRPLUS: u32 = 17;
    pub const FSSTAT: u32 = 18;
    pub const FSINFO: u32 = 19;
    pub const PATHCONF: u32 = 20;
    pub const COMMIT: u32 = 21;
}

/// The NFSv3 procedure `number`.
pub fn nfs(number: u32) -> Procedure {
    Procedure { program: NFS_PROGRAM, version: 3, procedure: number }
}

/// The MOUNT v3 procedure `number`.
pub fn mount_procedure(number: u32) -> Procedure {
    Procedure { program: MOUNT_PROGRAM, version: 3, procedure: number }
}

/// The longest file handle (`NFS3_FHSIZE`).
pub const HANDLE_BYTES_MAX: usize = 64;
/// The longest name or path the decoder accepts.
pub const PATH_BYTES_MAX: usize = 4096;

/// `stable_how` of a `WRITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stability {
    /// The server may keep the data in memory until a `COMMIT`.
    Unstable = 0,
    /// The data (not all metadata) is on stable storage at the reply.
    DataSync = 1,
    /// Data and metadata are on stable storage at the reply.
    FileSync = 2,
}

/// `NFS3ERR_JUKEBOX`: the server is busy; try again later.
pub const STATUS_JUKEBOX: u32 = 10008;
/// `NFS3ERR_NOTSUPP`.
pub const STATUS_NOT_SUPPORTED: u32 = 10004;

/// Errors Linux has for NFS that the C library does not name; Linux's
/// client lets some reach applications (`include/linux/errno.h`).
const EREMOTE: Errno = Errno(66);
const EREMOTEIO: Errno = Errno(121);
const EBADHANDLE: Errno = Errno(521);
const ENOTSYNC: Errno = Errno(522);
const EBADCOOKIE: Errno = Errno(523);
const ETOOSMALL: Errno = Errno(525);
const EBADTYPE: Errno = Errno(527);
const EJUKEBOX: Errno = Errno(528);

/// The error an NFSv3 (or MOUNT v3) status stands for, as Linux's client
/// maps them (`nfs_stat_to_errno`).
pub fn status_error(status: u32) -> FsError {
    match status {
        1 => FsError::NotPermitted,
        2 => FsError::NotFound,
        5 => FsError::Io,
        6 => FsError::Errno(Errno::ENXIO),
        13 => FsError::AccessDenied,
        17 => FsError::Exists,
        18 => FsError::CrossDevice,
        19 => FsError::Errno(Errno::ENODEV),
        20 => FsError::NotDirectory,
        21 => FsError::IsDirectory,
        22 => FsError::InvalidArgument,
        27 => FsError::Errno(Errno::EFBIG),
        28 => FsError::NoSpace,
        30 => FsError::ReadOnly,
        31 => FsError::TooManyLinks,
        63 => FsError::NameTooLong,
        66 => FsError::NotEmpty,
        69 => FsError::Errno(Errno::EDQUOT),
        70 => FsError::Errno(Errno::ESTALE),
        71 => FsError::Errno(EREMOTE),
        // BADHANDLE, NOT_SYNC, BAD_COOKIE, TOOSMALL, BADTYPE: Linux's
        // kernel-internal codes; applications see them as these.
        10001 => FsError::Errno(EBADHANDLE),
        10002 => FsError::Errno(ENOTSYNC),
        10003 => FsError::Errno(EBADCOOKIE),
        STATUS_NOT_SUPPORTED => FsError::NotSupported,
        10005 => FsError::Errno(ETOOSMALL),
        10006 => FsError::Errno(EREMOTEIO),
        10007 => FsError::Errno(EBADTYPE),
        STATUS_JUKEBOX => FsError::Errno(EJUKEBOX),
        _ => FsError::Io,
    }
}

/// A reply's results, or `Io` for a reply the server refused or garbled.
pub fn results(message: &[u8]) -> Result<Decoder<'_>, FsError> {
    match Reply::parse(message) {
        Ok(reply) => Ok(reply.results),
        Err(error) => {
            log::warn!("nfs: the server's reply is not a result: {error:?}");
            Err(match error {
                RpcError::ProgramUnavailable | RpcError::VersionMismatch | RpcError::ProcedureUnavailable => {
                    FsError::NotSupported
                }
                RpcError::Denied => FsError::AccessDenied,
                _ => FsError::Io,
            })
        }
    }
}

/// A result that does not decode is an I/O error.
pub fn malformed(error: XdrError) -> FsError {
    log::warn!("nfs: a malformed reply: {error:?}");
    FsError::Io
}

/// The status a result starts with: `Ok` for `NFS3_OK`.
pub fn status(decoder: &mut Decoder<'_>) -> Result<(), FsError> {
    match decoder.u32().map_err(malformed)? {
        0 => Ok(()),
        status => Err(status_error(status)),
    }
}

/// An NFSv3 file handle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileHandle(pub Vec<u8>);

impl FileHandle {
    /// Reads one (`nfs_fh3`).
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<FileHandle, XdrError> {
        Ok(FileHandle(decoder.opaque(HANDLE_BYTES_MAX)?.to_vec()))
    }

    /// Writes it.
    pub fn encode(&self, encoder: &mut Encoder) {
        encoder.opaque(&self.0);
    }
}

/// `fattr3`: a file's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    /// The type.
    pub file_type: FileType,
    /// The mode's permission bits.
    pub mode: u32,
    /// Names.
    pub link_count: u32,
    /// The owner.
    pub user: u32,
    /// The group.
    pub group: u32,
    /// Bytes.
    pub size: u64,
    /// Bytes of storage.
    pub used: u64,
    /// A device node's device, as major and minor.
    pub device: (u32, u32),
    /// The filesystem.
    pub filesystem_id: u64,
    /// The inode number.
    pub file_id: u64,
    /// Times in nanoseconds.
    pub access_time_ns: u64,
    /// Last change of the contents.
    pub modify_time_ns: u64,
    /// Last change of anything.
    pub change_time_ns: u64,
}

fn time(decoder: &mut Decoder<'_>) -> Result<u64, XdrError> {
    let seconds = u64::from(decoder.u32()?);
    let nanoseconds = u64::from(decoder.u32()?);
    Ok(seconds * 1_000_000_000 + nanoseconds.min(999_999_999))
}

fn encode_time(encoder: &mut Encoder, time_ns: u64) {
    let seconds = u32::try_from(time_ns / 1_000_000_000).unwrap_or(u32::MAX);
    encoder.u32(seconds).u32((time_ns % 1_000_000_000) as u32);
}

/// The VFS type of an `ftype3`.
fn file_type(value: u32) -> Result<FileType, XdrError> {
    Ok(match value {
        1 => FileType::Regular,
        2 => FileType::Directory,
        3 => FileType::BlockDevice,
        4 => FileType::CharacterDevice,
        5 => FileType::Symlink,
        6 => FileType::Socket,
        7 => FileType::Fifo,
        _ => return Err(XdrError::BadValue),
    })
}

/// The `ftype3` of a VFS type.
pub fn file_type_value(file_type: FileType) -> u32 {
    match file_type {
        FileType::Regular | FileType::Anonymous => 1,
        FileType::Directory => 2,
        FileType::BlockDevice => 3,
        FileType::CharacterDevice => 4,
        FileType::Symlink => 5,
        FileType::Socket => 6,
        FileType::Fifo => 7,
    }
}

impl Attributes {
    /// Reads a `fattr3`.
    pub fn decode(decoder: &mut Decoder<'_>) -> Result<Attributes, XdrError> {
        Ok(Attributes {
            file_type: file_type(decoder.u32()?)?,
            mode: decoder.u32()? & 0o7777,
            link_count: decoder.u32()?,
            user: decoder.u32()?,
            group: decoder.u32()?,
            size: decoder.u64()?,
            used: decoder.u64()?,
            device: (decoder.u32()?, decoder.u32()?),
            filesystem_id: decoder.u64()?,
            file_id: decoder.u64()?,
            access_time_ns: time(decoder)?,
            modify_time_ns: time(decoder)?,
            change_time_ns: time(decoder)?,
        })
    }

    /// Reads a `post_op_attr` (attributes the server may leave out).
    pub fn decode_optional(decoder: &mut Decoder<'_>) -> Result<Option<Attributes>, XdrError> {
        if decoder.bool()? { Ok(Some(Attributes::decode(decoder)?)) } else { Ok(None) }
    }

    /// What `stat` shows.
    pub fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::new(self.file_id, self.file_type, self.mode);
        metadata.link_count = u64::from(self.link_count);
        metadata.owner_user = self.user;
        metadata.owner_group = self.group;
        metadata.size_bytes = self.size;
        metadata.blocks = self.used.div_ceil(512);
        let (major, minor) = (u64::from(self.device.0), u64::from(self.device.1));
        metadata.represented_device =
            (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32);
        metadata.access_time_ns = self.access_time_ns;
        metadata.modify_time_ns = self.modify_time_ns;
        metadata.change_time_ns = self.change_time_ns;
        metadata
    }
}

/// Skips a `pre_op_attr`.
pub fn skip_pre_operation(decoder: &mut Decoder<'_>) -> Result<(), XdrError> {
    if decoder.bool()? {
        decoder.u64()?;
        time(decoder)?;
        time(decoder)?;
    }
    Ok(())
}

/// Reads a `wcc_data`: the attributes after the change.
pub fn decode_wcc(decoder: &mut Decoder<'_>) -> Result<Option<Attributes>, XdrError> {
    skip_pre_operation(decoder)?;
    Attributes::decode_optional(decoder)
}

/// `sattr3`: attributes to set; `None` leaves one alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttributes {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub user: Option<u32>,
    /// Group.
    pub group: Option<u32>,
    /// Size.
    pub size: Option<u64>,
    /// Access time.
    pub access_time_ns: Option<u64>,
    /// Modification time.
    pub modify_time_ns: Option<u64>,
}

impl SetAttributes {
    /// Writes it; times are the client's.
    pub fn encode(&self, encoder: &mut Encoder) {
        for value in [self.mode, self.user, self.group] {
            match value {
                Some(value) => encoder.bool(true).u32(value),
                None => encoder.bool(false),
            };
        }
        match self.size {
            Some(size) => encoder.bool(true).u64(size),
            None => encoder.bool(false),
        };
        for time in [self.access_time_ns, self.modify_time_ns] {
            match time {
                Some(time_ns) => {
                    encoder.u32(2);
                    encode_time(encoder, time_ns);
                }
                None => {
                    encoder.u32(0);
                }
            }
        }
    }
}

/// Writes a `diropargs3`.
pub fn encode_where(encoder: &mut Encoder, directory: &FileHandle, name: &str) {
    directory.encode(encoder);
    encoder.string(name);
}

/// What `CREATE`, `MKDIR`, `SYMLINK` and `MKNOD` answer: the new object's
/// handle and attributes when the server sent them.
pub fn decode_created(
    decoder: &mut Decoder<'_>,
) -> Result<(Option<FileHandle>, Option<Attributes>), XdrError> {
    let handle = if decoder.bool()? { Some(FileHandle::decode(decoder)?) } else { None };
    let attributes = Attributes::decode_optional(decoder)?;
    Ok((handle, attributes))
}

/// One entry of a `READDIRPLUS` (or `READDIR`) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    /// The inode number.
    pub file_id: u64,
    /// The name, as bytes.
    pub name: Vec<u8>,
    /// Where the listing goes on after it.
    pub cookie: u64,
    /// Its attributes, if sent.
    pub attributes: Option<Attributes>,
    /// Its handle, if sent.
    pub handle: Option<FileHandle>,
}

/// A page of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPage {
    /// The verifier to send with the next page's request.
    pub verifier: [u8; 8],
    /// The entries.
    pub entries: Vec<ListedEntry>,
    /// Whether the listing ends here.
    pub is_end: bool,
}

/// Reads the results of a successful `READDIR` or (`is_plus`)
/// `READDIRPLUS` after the status and the directory's attributes.
pub fn decode_listing(decoder: &mut Decoder<'_>, is_plus: bool) -> Result<ListedPage, XdrError> {
    let mut verifier = [0u8; 8];
    verifier.copy_from_slice(decoder.fixed(8)?);
    let mut entries = Vec::new();
    while decoder.bool()? {
        let file_id = decoder.u64()?;
        let name = decoder.opaque(PATH_BYTES_MAX)?.to_vec();
        let cookie = decoder.u64()?;
        let (attributes, handle) = if is_plus {
            let attributes = Attributes::decode_optional(decoder)?;
            let handle = if decoder.bool()? { Some(FileHandle::decode(decoder)?) } else { None };
            (attributes, handle)
        } else {
            (None, None)
        };
        entries.push(ListedEntry { file_id, name, cookie, attributes, handle });
    }
    Ok(ListedPage { verifier, entries, is_end: decoder.bool()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_attributes(encoder: &mut Encoder) {
        encoder.u32(2).u32(0o40755).u32(3).u32(1000).u32(100);
        encoder.u64(4096).u64(8192).u32(0).u32(0).u64(7).u64(42);
        encoder.u32(1).u32(5).u32(2).u32(6).u32(3).u32(7);
    }

    #[test]
    fn attributes_decode_into_metadata() {
        let mut encoder = Encoder::new();
        encoder.bool(true);
        sample_attributes(&mut encoder);
        let bytes = encoder.into_bytes();
        let attributes = Attributes::decode_optional(&mut Decoder::new(&bytes)).unwrap().unwrap();
        let metadata = attributes.metadata();
        assert_eq!(metadata.file_type, FileType::Directory);
        assert_eq!(metadata.permissions, 0o755);
        assert_eq!((metadata.inode, metadata.link_count), (42, 3));
        assert_eq!((metadata.owner_user, metadata.owner_group), (1000, 100));
        assert_eq!((metadata.size_bytes, metadata.blocks), (4096, 16));
        assert_eq!(metadata.modify_time_ns, 2_000_000_006);
        assert_eq!(Attributes::decode_optional(&mut Decoder::new(&[0, 0, 0, 0])), Ok(None));
        assert!(Attributes::decode(&mut Decoder::new(&bytes[4..40])).is_err(), "cut short");
    }

    #[test]
    fn statuses_map_as_linux_maps_them() {
        assert_eq!(status_error(2), FsError::NotFound);
        assert_eq!(status_error(13), FsError::AccessDenied);
        assert_eq!(status_error(66), FsError::NotEmpty);
        assert_eq!(status_error(70), FsError::Errno(Errno::ESTALE));
        assert_eq!(status_error(10006), FsError::Errno(EREMOTEIO));
        assert_eq!(status_error(9999), FsError::Io);
        let mut decoder = Decoder::new(&[0, 0, 0, 0]);
        assert_eq!(status(&mut decoder), Ok(()));
        assert_eq!(status(&mut Decoder::new(&[0, 0, 0, 28])), Err(FsError::NoSpace));
        assert_eq!(status(&mut Decoder::new(&[0, 0])), Err(FsError::Io));
    }

    #[test]
    fn set_attributes_encode_only_what_changes() {
        let mut encoder = Encoder::new();
        SetAttributes {
            mode: Some(0o600),
            size: Some(5),
            modify_time_ns: Some(3_000_000_001),
            ..Default::default()
        }
        .encode(&mut encoder);
        let bytes = encoder.into_bytes();
        let mut decoder = Decoder::new(&bytes);
        let words: Vec<u32> = core::iter::from_fn(|| decoder.u32().ok()).collect();
        assert_eq!(words, [1, 0o600, 0, 0, 1, 0, 5, 0, 2, 3, 1]);
    }

    #[test]
    fn listings_decode_with_handles_and_attributes() {
        let mut encoder = Encoder::new();
        encoder.fixed(&[9; 8]);
        encoder.bool(true).u64(42).string("a").u64(1).bool(true);
        sample_attributes(&mut encoder);
        encoder.bool(true).opaque(&[1, 2, 3]);
        encoder.bool(true).u64(43).string("b").u64(2).bool(false).bool(false);
        encoder.bool(false).bool(true);
        let bytes = encoder.into_bytes();
        let page = decode_listing(&mut Decoder::new(&bytes), true).unwrap();
        assert_eq!(page.verifier, [9; 8]);
        assert!(page.is_end);
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.entries[0].name, b"a");
        assert_eq!(page.entries[0].handle, Some(FileHandle(alloc::vec![1, 2, 3])));
        assert_eq!(page.entries[0].attributes.map(|attributes| attributes.file_id), Some(42));
        assert_eq!((page.entries[1].cookie, page.entries[1].attributes), (2, None));
        assert!(decode_listing(&mut Decoder::new(&bytes[..30]), true).is_err());
    }
}
