//! ONC RPC version 2 (RFC 5531) over a byte stream: calls with `AUTH_SYS`
//! credentials, replies matched by their transaction id (XID), and the
//! record marking that frames messages on TCP (§11).
//!
//! [`call`] builds one framed call; [`RecordReader`] cuts the bytes a
//! connection receives into whole messages (joining fragments), and
//! [`Reply::parse`] checks a reply's header and hands out its results.

use alloc::vec::Vec;

use super::xdr::{Decoder, Encoder, XdrError};

/// `msg_type` CALL and REPLY.
const CALL: u32 = 0;
const REPLY: u32 = 1;
/// The RPC protocol version.
const RPC_VERSION: u32 = 2;
/// Authentication flavors.
const AUTH_NONE: u32 = 0;
const AUTH_SYS: u32 = 1;
/// The largest authentication body (`MAX_AUTH_BYTES`).
const AUTH_BYTES_MAX: usize = 400;
/// The record-marking bit of a message's last fragment.
const LAST_FRAGMENT: u32 = 1 << 31;

/// Why a reply was not a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcError {
    /// The bytes are no valid message.
    Malformed(XdrError),
    /// A message of another kind than expected (a call where a reply
    /// belongs).
    NotReply,
    /// A record is larger than the connection allows.
    TooLarge,
    /// The server has no such program (`PROG_UNAVAIL`).
    ProgramUnavailable,
    /// The server has the program, not in this version (`PROG_MISMATCH`).
    VersionMismatch,
    /// The program has no such procedure (`PROC_UNAVAIL`).
    ProcedureUnavailable,
    /// The server could not decode the arguments (`GARBAGE_ARGS`).
    GarbageArguments,
    /// The server failed (`SYSTEM_ERR`, or an accept status RFC 5531 does
    /// not know).
    SystemError,
    /// The server refused the call: a wrong RPC version or credentials
    /// (`MSG_DENIED`).
    Denied,
}

impl From<XdrError> for RpcError {
    fn from(error: XdrError) -> Self {
        RpcError::Malformed(error)
    }
}

/// The caller's identity (`AUTH_SYS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The client's name.
    pub machine_name: &'a str,
    /// The effective user.
    pub user: u32,
    /// The effective group.
    pub group: u32,
    /// Supplementary groups (at most 16 travel).
    pub groups: &'a [u32],
}

/// A call's procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Procedure {
    /// The program number (100003 for NFS, 100005 for MOUNT).
    pub program: u32,
    /// Its version.
    pub version: u32,
    /// The procedure number.
    pub procedure: u32,
}

/// The framed call `xid` of `procedure` as `credentials`, whose arguments
/// `arguments` encodes: one record of one fragment.
pub fn call(
    xid: u32,
    procedure: Procedure,
    credentials: &Credentials<'_>,
    arguments: impl FnOnce(&mut Encoder),
) -> Vec<u8> {
    let mut message = Encoder::new();
    message.u32(0).u32(xid).u32(CALL).u32(RPC_VERSION);
    message.u32(procedure.program).u32(procedure.version).u32(procedure.procedure);
    let mut body = Encoder::new();
    body.u32(0).string(credentials.machine_name).u32(credentials.user).u32(credentials.group);
    let groups = &credentials.groups[..credentials.groups.len().min(16)];
    body.u32(groups.len() as u32);
    for group in groups {
        body.u32(*group);
    }
    message.u32(AUTH_SYS).opaque(&body.into_bytes());
    message.u32(AUTH_NONE).u32(0);
    arguments(&mut message);
    let length = (message.len() - 4) as u32;
    message.patch_u32(0, LAST_FRAGMENT | length);
    message.into_bytes()
}

/// The transaction id a message starts with.
pub fn xid_of(message: &[u8]) -> Result<u32, RpcError> {
    Ok(Decoder::new(message).u32()?)
}

/// An accepted, successful reply.
#[derive(Debug)]
pub struct Reply<'a> {
    /// Its transaction id.
    pub xid: u32,
    /// The procedure's results.
    pub results: Decoder<'a>,
}

impl<'a> Reply<'a> {
    /// Reads a reply message (without its record marks).
    pub fn parse(message: &'a [u8]) -> Result<Reply<'a>, RpcError> {
        let mut decoder = Decoder::new(message);
        let xid = decoder.u32()?;
        if decoder.u32()? != REPLY {
            return Err(RpcError::NotReply);
        }
        match decoder.u32()? {
            0 => {}
            1 => return Err(RpcError::Denied),
            _ => return Err(RpcError::Malformed(XdrError::BadValue)),
        }
        let _flavor = decoder.u32()?;
        decoder.opaque(AUTH_BYTES_MAX)?;
        match decoder.u32()? {
            0 => Ok(Reply { xid, results: decoder }),
            1 => Err(RpcError::ProgramUnavailable),
            2 => Err(RpcError::VersionMismatch),
            3 => Err(RpcError::ProcedureUnavailable),
            4 => Err(RpcError::GarbageArguments),
            _ => Err(RpcError::SystemError),
        }
    }
}

/// Cuts a received byte stream into messages.
#[derive(Debug)]
pub struct RecordReader {
    /// Received bytes not yet taken, from `start`.
    pending: Vec<u8>,
    start: usize,
    /// Fragments of the message being joined.
    message: Vec<u8>,
    record_bytes_max: usize,
}

impl RecordReader {
    /// A reader that refuses messages over `record_bytes_max` bytes.
    pub fn new(record_bytes_max: usize) -> Self {
        RecordReader { pending: Vec::new(), start: 0, message: Vec::new(), record_bytes_max }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.pending.len() {
            self.pending.clear();
            self.start = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    /// The next whole message, `None` until one is complete. After an
    /// error the stream cannot be followed any more.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, RpcError> {
        loop {
            let pending = &self.pending[self.start..];
            let Some(header) = pending.first_chunk::<4>() else {
                self.compact();
                return Ok(None);
            };
            let header = u32::from_be_bytes(*header);
            let length = (header & !LAST_FRAGMENT) as usize;
            if self.message.len().saturating_add(length) > self.record_bytes_max {
                return Err(RpcError::TooLarge);
            }
            let Some(fragment) = pending.get(4..4 + length) else {
                self.compact();
                return Ok(None);
            };
            self.message.extend_from_slice(fragment);
            self.start += 4 + length;
            if header & LAST_FRAGMENT != 0 {
                return Ok(Some(core::mem::take(&mut self.message)));
            }
        }
    }

    /// Drops the bytes taken, once they are most of the buffer.
    fn compact(&mut self) {
        if self.start > self.pending.len() / 2 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GETATTR: Procedure = Procedure { program: 100003, version: 3, procedure: 1 };

    fn root() -> Credentials<'static> {
        Credentials { machine_name: "rosv", user: 0, group: 0, groups: &[] }
    }

    #[test]
    fn a_call_carries_its_header_credentials_and_arguments() {
        let bytes = call(0x1234, GETATTR, &Credentials { groups: &[5, 6], ..root() }, |arguments| {
            arguments.opaque(&[0xaa; 8]);
        });
        let mut decoder = Decoder::new(&bytes);
        assert_eq!(decoder.u32(), Ok(LAST_FRAGMENT | (bytes.len() as u32 - 4)));
        for expected in [0x1234, CALL, RPC_VERSION, 100003, 3, 1, AUTH_SYS] {
            assert_eq!(decoder.u32(), Ok(expected));
        }
        let credentials = decoder.opaque(AUTH_BYTES_MAX).unwrap();
        let mut body = Decoder::new(credentials);
        assert_eq!(body.u32(), Ok(0), "stamp");
        assert_eq!(body.string(255).as_deref(), Ok("rosv"));
        assert_eq!(
            (body.u32(), body.u32(), body.u32(), body.u32(), body.u32()),
            (Ok(0), Ok(0), Ok(2), Ok(5), Ok(6))
        );
        assert_eq!((decoder.u32(), decoder.u32()), (Ok(AUTH_NONE), Ok(0)));
        assert_eq!(decoder.opaque(8), Ok(&[0xaa; 8][..]));
        assert_eq!(xid_of(&bytes[4..]), Ok(0x1234));
    }

    fn reply(xid: u32, reply_status: u32, accept_status: u32, results: &[u8]) -> Vec<u8> {
        let mut encoder = Encoder::new();
        encoder.u32(xid).u32(REPLY).u32(reply_status).u32(AUTH_NONE).u32(0).u32(accept_status);
        encoder.fixed(results);
        encoder.into_bytes()
    }

    #[test]
    fn replies_give_their_results_or_the_reason() {
        let bytes = reply(9, 0, 0, &[0, 0, 0, 42]);
        let mut parsed = Reply::parse(&bytes).unwrap();
        assert_eq!(parsed.xid, 9);
        assert_eq!(parsed.results.u32(), Ok(42));
        assert_eq!(Reply::parse(&reply(9, 0, 1, &[])).err(), Some(RpcError::ProgramUnavailable));
        assert_eq!(Reply::parse(&reply(9, 0, 3, &[])).err(), Some(RpcError::ProcedureUnavailable));
        assert_eq!(Reply::parse(&reply(9, 1, 0, &[])).err(), Some(RpcError::Denied));
        assert_eq!(Reply::parse(&reply(9, 0, 77, &[])).err(), Some(RpcError::SystemError));
        let call_bytes = call(3, GETATTR, &root(), |_| {});
        assert_eq!(Reply::parse(&call_bytes[4..]).err(), Some(RpcError::NotReply));
        assert_eq!(Reply::parse(&bytes[..10]).err(), Some(RpcError::Malformed(XdrError::Truncated)));
    }

    #[test]
    fn records_are_joined_from_fragments_in_any_slices() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&3u32.to_be_bytes());
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&(LAST_FRAGMENT | 2).to_be_bytes());
        stream.extend_from_slice(b"de");
        stream.extend_from_slice(&(LAST_FRAGMENT | 1).to_be_bytes());
        stream.extend_from_slice(b"f");
        let mut reader = RecordReader::new(16);
        let mut messages = Vec::new();
        for byte in &stream {
            reader.push(core::slice::from_ref(byte));
            while let Some(message) = reader.next_message().unwrap() {
                messages.push(message);
            }
        }
        assert_eq!(messages, [b"abcde".to_vec(), b"f".to_vec()]);
        let mut reader = RecordReader::new(4);
        reader.push(&(LAST_FRAGMENT | 5).to_be_bytes());
        assert_eq!(reader.next_message(), Err(RpcError::TooLarge));
    }
}
