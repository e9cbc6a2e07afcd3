//! The 9P client of one share: tags, fids and checked round trips.
//!
//! Calls from any number of threads go out at once: each takes a tag of
//! its own and waits on the channel for its reply, with no lock held
//! across the round trip. A reply is checked before anything is read
//! from it (its size against what arrived and what was offered, its tag,
//! its type); one that fails a check is an I/O error. Fids are numbers the
//! client hands out; a fid let go while a lock may be held is clunked by
//! the next call ([`Client::release`]), never from inside a drop.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::protocol::{self, Decoder, Encoder, HEADER_BYTES, Malformed, Qid, kind};
use crate::device::MessageChannel;
use crate::vfs::FsError;

/// Room for the reply of a call that carries no file data.
const SMALL_REPLY_BYTES: usize = 8192;

/// Hands out numbers (tags or fids) not in use.
#[derive(Debug)]
struct Numbers {
    in_use: BTreeSet<u32>,
    next: u32,
    /// The first number past the range.
    end: u32,
}

impl Numbers {
    fn new(end: u32) -> Self {
        Numbers { in_use: BTreeSet::new(), next: 0, end }
    }

    fn take(&mut self) -> Option<u32> {
        if self.in_use.len() >= self.end as usize {
            return None;
        }
        loop {
            let number = self.next;
            self.next = if self.next + 1 >= self.end { 0 } else { self.next + 1 };
            if self.in_use.insert(number) {
                return Some(number);
            }
        }
    }

    fn give_back(&mut self, number: u32) {
        self.in_use.remove(&number);
    }
}

/// The 9P client of one share.
pub struct Client {
    channel: Arc<dyn MessageChannel>,
    /// The negotiated `msize`.
    message_bytes: usize,
    tags: spin::Mutex<Numbers>,
    fids: spin::Mutex<Numbers>,
    /// Fids let go, to clunk before the next call.
    released: spin::Mutex<Vec<u32>>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Client").field("message_bytes", &self.message_bytes).finish()
    }
}

/// A reply's type and fields (after the header).
struct Reply {
    bytes: Vec<u8>,
    length: usize,
}

impl Reply {
    fn fields(&self) -> Decoder<'_> {
        Decoder::new(&self.bytes[HEADER_BYTES..self.length])
    }
}

impl Client {
    /// Negotiates the protocol and `msize` (at most `message_bytes_max`)
    /// over `channel`.
    pub fn connect(channel: Arc<dyn MessageChannel>, message_bytes_max: usize) -> Result<Client, FsError> {
        let asked = message_bytes_max.max(protocol::MESSAGE_BYTES_MIN) as u32;
        let mut request = Encoder::new(kind::TVERSION, protocol::NO_TAG);
        request.u32(asked).string(protocol::VERSION);
        let request = request.finish(0);
        let mut reply = vec![0u8; SMALL_REPLY_BYTES];
        let written = channel.exchange(&[&request], &mut [&mut reply]).map_err(|_| FsError::Io)?;
        let length = check(&reply[..HEADER_BYTES.min(reply.len())], written, reply.len(), protocol::NO_TAG)?;
        let reply = Reply { bytes: reply, length };
        let reply_kind = reply.bytes[4];
        if reply_kind != kind::TVERSION + 1 {
            return Err(FsError::Io);
        }
        let mut fields = reply.fields();
        let message_bytes = fields.u32()?;
        let version = fields.string()?;
        if version != protocol::VERSION.as_bytes() {
            log::warn!(
                "9p: the server speaks {}, not 9P2000.L",
                alloc::string::String::from_utf8_lossy(version)
            );
            return Err(FsError::NotSupported);
        }
        if message_bytes > asked || (message_bytes as usize) < protocol::MESSAGE_BYTES_MIN {
            return Err(FsError::Io);
        }
        Ok(Client {
            channel,
            message_bytes: message_bytes as usize,
            tags: spin::Mutex::new(Numbers::new(u32::from(protocol::NO_TAG))),
            fids: spin::Mutex::new(Numbers::new(protocol::NO_FID)),
            released: spin::Mutex::new(Vec::new()),
        })
    }

    /// The negotiated `msize`.
    pub fn message_bytes(&self) -> usize {
        self.message_bytes
    }

    /// The most file data one `Tread` or `Twrite` carries.
    pub fn io_bytes(&self) -> usize {
        self.message_bytes - protocol::IO_HEADER_BYTES - 8
    }

    /// A fid not in use.
    pub fn new_fid(&self) -> Result<u32, FsError> {
        // ENFILE: every fid number is taken.
        self.fids.lock().take().ok_or(FsError::Errno(crate::errno::Errno(23)))
    }

    /// Lets go of `fid`: the next call clunks it.
    pub fn release(&self, fid: u32) {
        self.released.lock().push(fid);
    }

    /// Clunks the fids let go since the last call.
    fn clunk_released(&self) {
        let released = core::mem::take(&mut *self.released.lock());
        for fid in released {
            self.clunk(fid);
        }
    }

    /// `Tclunk`: the fid is free whatever the server answers.
    pub fn clunk(&self, fid: u32) {
        if let Err(error) = self.exchange_small(kind::TCLUNK, |request| {
            request.u32(fid);
        }) {
            log::debug!("9p: Tclunk {fid}: {error}");
        }
        self.fids.lock().give_back(fid);
    }

    /// One round trip: a request of `request_kind` with the fields `build`
    /// adds and `trailing` bytes after them, its reply's header and fields
    /// into `reply_head` and the rest into `reply_tail`. Returns the
    /// reply's length, checked.
    fn round_trip(
        &self,
        request_kind: u8,
        build: impl FnOnce(&mut Encoder),
        trailing: &[u8],
        reply_head: &mut [u8],
        reply_tail: &mut [u8],
    ) -> Result<usize, FsError> {
        self.clunk_released();
        let tag = self.tags.lock().take().ok_or(FsError::Io)? as u16;
        let mut request = Encoder::new(request_kind, tag);
        build(&mut request);
        let request = request.finish(trailing.len());
        let capacity = reply_head.len() + reply_tail.len();
        let result = if request.len() + trailing.len() > self.message_bytes {
            Err(FsError::InvalidArgument)
        } else {
            self.channel.exchange(&[&request, trailing], &mut [&mut *reply_head, &mut *reply_tail]).map_err(
                |error| {
                    log::warn!("9p: the transport failed: {error:?}");
                    FsError::Io
                },
            )
        };
        self.tags.lock().give_back(u32::from(tag));
        let written = result?;
        let length = check(reply_head, written, capacity.min(self.message_bytes), tag)?;
        let reply_kind = reply_head[4];
        if reply_kind == kind::RLERROR {
            let mut fields = Decoder::new(&reply_head[HEADER_BYTES..length.min(reply_head.len())]);
            return Err(protocol::error_of(fields.u32()?));
        }
        if reply_kind != request_kind + 1 {
            log::warn!("9p: a reply of type {reply_kind} to a request of type {request_kind}");
            return Err(FsError::Io);
        }
        Ok(length)
    }

    /// A call whose reply fits in a small buffer.
    fn exchange_small(&self, request_kind: u8, build: impl FnOnce(&mut Encoder)) -> Result<Reply, FsError> {
        let mut bytes = vec![0u8; SMALL_REPLY_BYTES];
        let length = self.round_trip(request_kind, build, &[], &mut bytes, &mut [])?;
        Ok(Reply { bytes, length })
    }

    /// A call whose reply may take up to `msize`.
    fn exchange_large(&self, request_kind: u8, build: impl FnOnce(&mut Encoder)) -> Result<Reply, FsError> {
        let mut bytes = vec![0u8; self.message_bytes];
        let length = self.round_trip(request_kind, build, &[], &mut bytes, &mut [])?;
        Ok(Reply { bytes, length })
    }

    /// `Tattach` of the share's root to a new fid, as `user`.
    pub fn attach(&self, user: u32) -> Result<(u32, Qid), FsError> {
        let fid = self.new_fid()?;
        let reply = self.exchange_small(protocol::kind::TATTACH, |request| {
            request.u32(fid).u32(protocol::NO_FID).string("root").string("").u32(user);
        });
        match reply.and_then(|reply| Ok(reply.fields().qid()?)) {
            Ok(qid) => Ok((fid, qid)),
            Err(error) => {
                self.fids.lock().give_back(fid);
                Err(error)
            }
        }
    }

    /// `Twalk` from `fid` through `names` (none: a copy of `fid`) to a new
    /// fid; the qid of the last name.
    pub fn walk(&self, fid: u32, names: &[&str]) -> Result<(u32, Option<Qid>), FsError> {
        let new_fid = self.new_fid()?;
        let reply = self.exchange_small(kind::TWALK, |request| {
            request.u32(fid).u32(new_fid).u16(names.len() as u16);
            for name in names {
                request.string(name);
            }
        });
        let result = reply.and_then(|reply| {
            let mut fields = reply.fields();
            let count = usize::from(fields.u16()?);
            let mut last = None;
            for _ in 0..count {
                last = Some(fields.qid()?);
            }
            // A walk that stops early made no fid.
            if count != names.len() {
                return Err(FsError::NotFound);
            }
            Ok(last)
        });
        match result {
            Ok(qid) => Ok((new_fid, qid)),
            Err(error) => {
                self.fids.lock().give_back(new_fid);
                Err(error)
            }
        }
    }

    /// `Tgetattr` of the basic fields.
    pub fn get_attributes(&self, fid: u32) -> Result<protocol::Attributes, FsError> {
        let reply = self.exchange_small(kind::TGETATTR, |request| {
            request.u32(fid).u64(protocol::GETATTR_BASIC);
        })?;
        Ok(protocol::Attributes::decode(&mut reply.fields())?)
    }

    /// `Tsetattr`: the fields `valid` names.
    pub fn set_attributes(&self, fid: u32, change: &SetAttributes) -> Result<(), FsError> {
        self.exchange_small(kind::TSETATTR, |request| {
            request.u32(fid).u32(change.valid).u32(change.mode).u32(change.user).u32(change.group);
            request.u64(change.size);
            request.u64(change.access_time_ns / 1_000_000_000).u64(change.access_time_ns % 1_000_000_000);
            request.u64(change.modify_time_ns / 1_000_000_000).u64(change.modify_time_ns % 1_000_000_000);
        })?;
        Ok(())
    }

    /// `Tlopen` of `fid` with `flags`; the server's `iounit`.
    pub fn open(&self, fid: u32, flags: u32) -> Result<u32, FsError> {
        let reply = self.exchange_small(kind::TLOPEN, |request| {
            request.u32(fid).u32(flags);
        })?;
        let mut fields = reply.fields();
        fields.qid()?;
        Ok(fields.u32()?)
    }

    /// `Tlcreate` of `name` in the directory `fid`, which becomes the new
    /// file opened with `flags`.
    pub fn create(&self, fid: u32, name: &str, flags: u32, mode: u32, group: u32) -> Result<Qid, FsError> {
        let reply = self.exchange_small(kind::TLCREATE, |request| {
            request.u32(fid).string(name).u32(flags).u32(mode).u32(group);
        })?;
        Ok(reply.fields().qid()?)
    }

    /// `Tmkdir`.
    pub fn make_directory(&self, fid: u32, name: &str, mode: u32, group: u32) -> Result<Qid, FsError> {
        let reply = self.exchange_small(kind::TMKDIR, |request| {
            request.u32(fid).string(name).u32(mode).u32(group);
        })?;
        Ok(reply.fields().qid()?)
    }

    /// `Tsymlink`.
    pub fn symlink(&self, fid: u32, name: &str, target: &str, group: u32) -> Result<Qid, FsError> {
        let reply = self.exchange_small(kind::TSYMLINK, |request| {
            request.u32(fid).string(name).string(target).u32(group);
        })?;
        Ok(reply.fields().qid()?)
    }

    /// `Tmknod` (`mode` with its type bits).
    pub fn make_node(
        &self,
        fid: u32,
        name: &str,
        mode: u32,
        device: (u32, u32),
        group: u32,
    ) -> Result<Qid, FsError> {
        let reply = self.exchange_small(kind::TMKNOD, |request| {
            request.u32(fid).string(name).u32(mode).u32(device.0).u32(device.1).u32(group);
        })?;
        Ok(reply.fields().qid()?)
    }

    /// `Treadlink`.
    pub fn read_link(&self, fid: u32) -> Result<Vec<u8>, FsError> {
        let reply = self.exchange_small(kind::TREADLINK, |request| {
            request.u32(fid);
        })?;
        Ok(reply.fields().string()?.to_vec())
    }

    /// `Tlink`: `name` in directory `directory` for the file `fid`.
    pub fn link(&self, directory: u32, fid: u32, name: &str) -> Result<(), FsError> {
        self.exchange_small(kind::TLINK, |request| {
            request.u32(directory).u32(fid).string(name);
        })?;
        Ok(())
    }

    /// `Trenameat`.
    pub fn rename(&self, from: u32, name: &str, to: u32, new_name: &str) -> Result<(), FsError> {
        self.exchange_small(kind::TRENAMEAT, |request| {
            request.u32(from).string(name).u32(to).string(new_name);
        })?;
        Ok(())
    }

    /// `Tunlinkat`.
    pub fn unlink(&self, directory: u32, name: &str, flags: u32) -> Result<(), FsError> {
        self.exchange_small(kind::TUNLINKAT, |request| {
            request.u32(directory).string(name).u32(flags);
        })?;
        Ok(())
    }

    /// `Tfsync`.
    pub fn fsync(&self, fid: u32) -> Result<(), FsError> {
        self.exchange_small(kind::TFSYNC, |request| {
            request.u32(fid).u32(0);
        })?;
        Ok(())
    }

    /// `Tstatfs`: block size, blocks, available blocks, files, free files.
    pub fn statfs(&self, fid: u32) -> Result<[u64; 5], FsError> {
        let reply = self.exchange_small(kind::TSTATFS, |request| {
            request.u32(fid);
        })?;
        let mut fields = reply.fields();
        let decode = |fields: &mut Decoder<'_>| -> Result<[u64; 5], Malformed> {
            let _type = fields.u32()?;
            let block_size = u64::from(fields.u32()?);
            let blocks = fields.u64()?;
            let _free = fields.u64()?;
            let available = fields.u64()?;
            let files = fields.u64()?;
            let free_files = fields.u64()?;
            Ok([block_size, blocks, available, files, free_files])
        };
        Ok(decode(&mut fields)?)
    }

    /// `Treaddir` from the directory's `offset`: the entries of one reply.
    pub fn read_directory(&self, fid: u32, offset: u64) -> Result<Vec<Entry>, FsError> {
        let count = (self.message_bytes - protocol::IO_HEADER_BYTES) as u32;
        let reply = self.exchange_large(kind::TREADDIR, |request| {
            request.u32(fid).u64(offset).u32(count);
        })?;
        let mut fields = reply.fields();
        let length = fields.u32()? as usize;
        if length > count as usize {
            return Err(FsError::Io);
        }
        let mut entries = Decoder::new(fields.bytes(length)?);
        let mut found = Vec::new();
        while !entries.is_empty() {
            let qid = entries.qid()?;
            let next_offset = entries.u64()?;
            let entry_type = entries.u8()?;
            let name = entries.string()?.to_vec();
            found.push(Entry { qid, next_offset, entry_type, name });
        }
        Ok(found)
    }

    /// `Tread` of up to `buffer.len()` bytes (at most [`Client::io_bytes`])
    /// at `offset` straight into `buffer`.
    pub fn read(&self, fid: u32, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let count = buffer.len().min(self.io_bytes());
        let mut head = [0u8; HEADER_BYTES + 4];
        let length = self.round_trip(
            kind::TREAD,
            |request| {
                request.u32(fid).u64(offset).u32(count as u32);
            },
            &[],
            &mut head,
            &mut buffer[..count],
        )?;
        let mut fields = Decoder::new(&head[HEADER_BYTES..]);
        let got = fields.u32()? as usize;
        if got > count || length != head.len() + got {
            log::warn!("9p: Rread of {got} bytes in a message of {length} for {count} asked");
            return Err(FsError::Io);
        }
        Ok(got)
    }

    /// `Twrite` of `bytes` (at most [`Client::io_bytes`]) at `offset`.
    pub fn write(&self, fid: u32, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let bytes = &bytes[..bytes.len().min(self.io_bytes())];
        let mut head = [0u8; HEADER_BYTES + 4];
        self.round_trip(
            kind::TWRITE,
            |request| {
                request.u32(fid).u64(offset).u32(bytes.len() as u32);
            },
            bytes,
            &mut head,
            &mut [],
        )?;
        let written = Decoder::new(&head[HEADER_BYTES..]).u32()? as usize;
        if written > bytes.len() {
            return Err(FsError::Io);
        }
        Ok(written)
    }
}

/// One entry of an `Rreaddir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file's qid.
    pub qid: Qid,
    /// The offset that continues after it.
    pub next_offset: u64,
    /// Its `d_type`.
    pub entry_type: u8,
    /// Its name.
    pub name: Vec<u8>,
}

/// What `Tsetattr` changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttributes {
    /// Which fields to set ([`protocol::set`]).
    pub valid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub user: u32,
    /// Group.
    pub group: u32,
    /// Size.
    pub size: u64,
    /// Access time (nanoseconds since the epoch).
    pub access_time_ns: u64,
    /// Modification time.
    pub modify_time_ns: u64,
}

/// Checks a reply's header: `written` bytes arrived into room for
/// `capacity`; the size field must lie within both and name at least a
/// header, and the tag must be `tag`. Returns the reply's length.
fn check(head: &[u8], written: usize, capacity: usize, tag: u16) -> Result<usize, FsError> {
    if written < HEADER_BYTES || head.len() < HEADER_BYTES {
        log::warn!("9p: a reply of {written} bytes");
        return Err(FsError::Io);
    }
    let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if size < HEADER_BYTES || size > written || size > capacity {
        log::warn!("9p: a reply whose size is {size} in {written} bytes");
        return Err(FsError::Io);
    }
    let reply_tag = u16::from_le_bytes([head[5], head[6]]);
    if reply_tag != tag {
        log::warn!("9p: a reply with tag {reply_tag} to tag {tag}");
        return Err(FsError::Io);
    }
    Ok(size)
}
