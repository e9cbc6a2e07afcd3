//! XDR (RFC 4506): the big-endian, four-byte-aligned encoding of ONC RPC
//! and NFS messages.
//!
//! [`Encoder`] appends to a byte vector; [`Decoder`] reads a received
//! message and fails with an [`XdrError`], never a panic, on bytes that
//! end early or claim more than they hold.

use alloc::string::String;
use alloc::vec::Vec;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdrError {
    /// The message ends before the item.
    Truncated,
    /// A length is over the limit its item allows.
    TooLong,
    /// A value no variant of its type has (a boolean of 2, a string that
    /// is not UTF-8).
    BadValue,
}

/// Bytes of padding after `length` bytes of opaque data.
fn padding(length: usize) -> usize {
    (4 - length % 4) % 4
}

/// Builds a message.
#[derive(Debug, Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// An empty message.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// The message so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Its length so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing was encoded.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// An `unsigned int` (or an enum's value).
    pub fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// An `unsigned hyper`.
    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A `bool`.
    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.u32(u32::from(value))
    }

    /// Fixed-length opaque data, padded to four bytes.
    pub fn fixed(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self.bytes.resize(self.bytes.len() + padding(bytes.len()), 0);
        self
    }

    /// Variable-length opaque data: its length, then the bytes, padded.
    /// Lengths past `u32::MAX` cannot be sent; callers bound them first.
    pub fn opaque(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.fixed(bytes)
    }

    /// A `string`.
    pub fn string(&mut self, text: &str) -> &mut Self {
        self.opaque(text.as_bytes())
    }

    /// Overwrites the `unsigned int` at byte `offset` (a length known only
    /// later); nothing if the message is shorter.
    pub fn patch_u32(&mut self, offset: usize, value: u32) {
        if let Some(slot) = self.bytes.get_mut(offset..offset + 4) {
            slot.copy_from_slice(&value.to_be_bytes());
        }
    }
}

/// Reads a message.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes }
    }

    /// What is left.
    pub fn remaining(&self) -> &'a [u8] {
        self.bytes
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], XdrError> {
        if length > self.bytes.len() {
            return Err(XdrError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    /// An `unsigned int`.
    pub fn u32(&mut self) -> Result<u32, XdrError> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An `unsigned hyper`.
    pub fn u64(&mut self) -> Result<u64, XdrError> {
        Ok(u64::from(self.u32()?) << 32 | u64::from(self.u32()?))
    }

    /// A `bool`.
    pub fn bool(&mut self) -> Result<bool, XdrError> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(XdrError::BadValue),
        }
    }

    /// `length` bytes of fixed-length opaque data and their padding.
    pub fn fixed(&mut self, length: usize) -> Result<&'a [u8], XdrError> {
        let bytes = self.take(length)?;
        self.take(padding(length))?;
        Ok(bytes)
    }

    /// Variable-length opaque data of at most `limit` bytes.
    pub fn opaque(&mut self, limit: usize) -> Result<&'a [u8], XdrError> {
        let length = self.u32()? as usize;
        if length > limit {
            return Err(XdrError::TooLong);
        }
        self.fixed(length)
    }

    /// A `string` of at most `limit` bytes.
    pub fn string(&mut self, limit: usize) -> Result<String, XdrError> {
        let bytes = self.opaque(limit)?;
        core::str::from_utf8(bytes).map(String::from).map_err(|_| XdrError::BadValue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_with_padding() {
        let mut encoder = Encoder::new();
        encoder.u32(7).u64(0x0102_0304_0506_0708).bool(true).opaque(b"abcde").string("nfs").fixed(&[9, 9]);
        let bytes = encoder.into_bytes();
        assert_eq!(bytes.len(), 4 + 8 + 4 + (4 + 8) + (4 + 4) + 4);
        assert_eq!(&bytes[16..28], &[0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]);
        let mut decoder = Decoder::new(&bytes);
        assert_eq!(decoder.u32(), Ok(7));
        assert_eq!(decoder.u64(), Ok(0x0102_0304_0506_0708));
        assert_eq!(decoder.bool(), Ok(true));
        assert_eq!(decoder.opaque(64), Ok(&b"abcde"[..]));
        assert_eq!(decoder.string(64).as_deref(), Ok("nfs"));
        assert_eq!(decoder.fixed(2), Ok(&[9u8, 9][..]));
        assert!(decoder.remaining().is_empty());
    }

    #[test]
    fn bad_messages_are_errors() {
        assert_eq!(Decoder::new(&[0, 0, 1]).u32(), Err(XdrError::Truncated));
        assert_eq!(Decoder::new(&[0, 0, 0, 2]).bool(), Err(XdrError::BadValue));
        assert_eq!(Decoder::new(&[0xff, 0xff, 0xff, 0xff]).opaque(usize::MAX), Err(XdrError::Truncated));
        assert_eq!(Decoder::new(&[0, 0, 0, 9]).opaque(8), Err(XdrError::TooLong));
        assert_eq!(Decoder::new(&[0, 0, 0, 1, 0xc3, 0, 0, 0]).string(8), Err(XdrError::BadValue));
        assert_eq!(Decoder::new(&[0, 0, 0, 1, b'a']).opaque(8), Err(XdrError::Truncated), "padding missing");
    }

    #[test]
    fn a_length_is_patched_in_place() {
        let mut encoder = Encoder::new();
        encoder.u32(0).u32(5);
        encoder.patch_u32(0, 3);
        encoder.patch_u32(8, 1);
        assert_eq!(encoder.into_bytes(), [0, 0, 0, 3, 0, 0, 0, 5]);
    }
}
