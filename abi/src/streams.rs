//! How the application's standard streams travel between host and guest.
//!
//! On QEMU each stream has its own virtio-console port, named
//! [`STDIN_PORT`], [`STDOUT_PORT`] and [`STDERR_PORT`]; a fourth,
//! [`CONTROL_PORT`], carries [`ControlMessage`]s from the host (signals to
//! deliver, the terminal's new size, a [`RestoreNotice`]). The serial port
//! stays the kernel's.
//!
//! Where the machine has a single serial port (Firecracker, the built-in
//! monitor), the kernel option [`SERIAL_STREAMS_OPTION`] makes both
//! directions of that port carry framed streams:
//!
//! - guest to host: the application's output goes in *output records*, an
//!   ECMA-48 application program command naming the stream and a length,
//!   followed by that many raw bytes (`ESC _ rosv-out=1;5 ESC \ hello`);
//!   whatever is outside a record is the kernel's own text.
//!   [`Demultiplexer`] takes the records apart again.
//! - host to guest: every byte travels in an *input frame* (a kind byte,
//!   a little-endian `u16` length, the payload): standard input, its end,
//!   or a control message. [`InputDeframer`] reads them.
//!
//! Both framings carry any byte unchanged.

/// The virtio-console port that carries the application's standard input.
pub const STDIN_PORT: &str = "rosv.stdin";
/// The port that carries its standard output.
pub const STDOUT_PORT: &str = "rosv.stdout";
/// The port that carries its standard error.
pub const STDERR_PORT: &str = "rosv.stderr";
/// The port that carries [`ControlMessage`]s from the host.
pub const CONTROL_PORT: &str = "rosv.control";

/// The port of standard stream `descriptor` (0, 1 or 2).
pub const fn port_name(descriptor: u8) -> Option<&'static str> {
    match descriptor {
        0 => Some(STDIN_PORT),
        1 => Some(STDOUT_PORT),
        2 => Some(STDERR_PORT),
        _ => None,
    }
}

/// Kernel option: frame the standard streams on the serial port.
pub const SERIAL_STREAMS_OPTION: &str = "--serial-streams";

/// What the host tells the guest outside the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage {
    /// Deliver this signal to the application (the host received it).
    Signal(u8),
    /// The terminal now has this size.
    Resize {
        /// Columns.
        columns: u16,
        /// Rows.
        rows: u16,
    },
    /// The VM was started from a snapshot: what must differ per instance.
    Restore(RestoreNotice),
}

/// What the host tells a VM it started from a snapshot of another: the
/// guest took its memory, clock and generator state from the snapshot, and
/// refreshes them from this (`restore NS ENTROPY INSTANCE`, the last two in
/// hexadecimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreNotice {
    /// The host's wall-clock time when it sent the notice, in nanoseconds
    /// since the Unix epoch.
    pub realtime_ns: u64,
    /// Fresh random bytes for the guest's generators.
    pub entropy: [u8; 32],
    /// The instance's identity, which the guest reports as its `boot_id`.
    pub instance_id: [u8; 16],
}

/// What the kernel prints on its console, followed by the instance id in
/// hexadecimal, once it has applied a [`RestoreNotice`] (when asked to
/// report its boot).
pub const RESTORED_LINE: &str = "Restored as instance ";

/// The longest encoded control message (a [`RestoreNotice`]).
pub const CONTROL_MESSAGE_MAX: usize = 128;

impl ControlMessage {
    /// The message as one line of text (`signal 15`, `resize 80 24`,
    /// `restore 1700000000000000000 0f1e... 5a4b...`).
    pub fn encode(self, buffer: &mut [u8; CONTROL_MESSAGE_MAX]) -> &[u8] {
        let mut writer = Writer { buffer, length: 0 };
        match self {
            ControlMessage::Signal(signal) => {
                writer.push(b"signal ");
                writer.number(u64::from(signal));
            }
            ControlMessage::Resize { columns, rows } => {
                writer.push(b"resize ");
                writer.number(u64::from(columns));
                writer.push(b" ");
                writer.number(u64::from(rows));
            }
            ControlMessage::Restore(notice) => {
                writer.push(b"restore ");
                writer.number(notice.realtime_ns);
                writer.push(b" ");
                writer.hex(&notice.entropy);
                writer.push(b" ");
                writer.hex(&notice.instance_id);
            }
        }
        writer.push(b"\n");
        let length = writer.length;
        &buffer[..length]
    }

    /// Reads one line (without its newline); `None` if it is no message.
    pub fn decode(line: &[u8]) -> Option<ControlMessage> {
        let line = core::str::from_utf8(line).ok()?;
        let mut words = line.split(' ');
        let message = match (words.next()?, words.next(), words.next()) {
            ("signal", Some(signal), None) => ControlMessage::Signal(signal.parse().ok()?),
            ("resize", Some(columns), Some(rows)) => {
                ControlMessage::Resize { columns: columns.parse().ok()?, rows: rows.parse().ok()? }
            }
            ("restore", Some(realtime_ns), Some(entropy)) => ControlMessage::Restore(RestoreNotice {
                realtime_ns: realtime_ns.parse().ok()?,
                entropy: parse_hex(entropy)?,
                instance_id: parse_hex(words.next()?)?,
            }),
            _ => return None,
        };
        if words.next().is_some() { None } else { Some(message) }
    }
}

/// Collects control messages from a byte stream, a line each; lines that
/// are too long or not messages are skipped.
#[derive(Debug, Clone)]
pub struct ControlReader {
    line: [u8; CONTROL_MESSAGE_MAX],
    length: usize,
    is_overlong: bool,
}

impl Default for ControlReader {
    fn default() -> Self {
        ControlReader { line: [0; CONTROL_MESSAGE_MAX], length: 0, is_overlong: false }
    }
}

impl ControlReader {
    /// A reader that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; `deliver` receives each complete message.
    pub fn feed(&mut self, bytes: &[u8], deliver: &mut impl FnMut(ControlMessage)) {
        for &byte in bytes {
            if byte == b'\n' {
                if !self.is_overlong
                    && let Some(message) = ControlMessage::decode(&self.line[..self.length])
                {
                    deliver(message);
                }
                self.length = 0;
                self.is_overlong = false;
            } else if self.length < self.line.len() {
                self.line[self.length] = byte;
                self.length += 1;
            } else {
                self.is_overlong = true;
            }
        }
    }
}

/// Bytes that open an output record.
pub const OUTPUT_PREFIX: &[u8] = b"\x1b_rosv-out=";
/// Bytes that close an output record's header.
pub const OUTPUT_SUFFIX: &[u8] = b"\x1b\\";
/// The most bytes one output record carries.
pub const OUTPUT_RECORD_MAX: usize = 4096;
/// The longest output record header: prefix, stream digit, `;`, four
/// length digits, suffix.
pub const OUTPUT_HEADER_MAX: usize = OUTPUT_PREFIX.len() + 2 + 4 + OUTPUT_SUFFIX.len();

/// Formats the header of an output record carrying `length` bytes (at
/// most [`OUTPUT_RECORD_MAX`]) of stream `descriptor` (1 or 2).
pub fn format_output_header(descriptor: u8, length: usize, buffer: &mut [u8; OUTPUT_HEADER_MAX]) -> &[u8] {
    let mut writer = Writer { buffer, length: 0 };
    writer.push(OUTPUT_PREFIX);
    writer.number(u64::from(descriptor % 10));
    writer.push(b";");
    writer.number(length.min(OUTPUT_RECORD_MAX) as u64);
    writer.push(OUTPUT_SUFFIX);
    let length = writer.length;
    &buffer[..length]
}

/// Where a demultiplexed byte belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The kernel's own text (exit records included).
    Kernel,
    /// The application's stream with this descriptor (1 or 2).
    Application(u8),
}

/// Splits a serial byte stream into the kernel's text and the
/// application's output records.
///
/// Bytes that might begin a record header are held back until the header
/// completes or turns out to be kernel text, so nothing is lost or
/// reordered; a record's payload is passed on as it arrives.
#[derive(Debug, Clone, Default)]
pub struct Demultiplexer {
    held: [u8; OUTPUT_HEADER_MAX],
    held_len: usize,
    /// The stream and bytes left of the record being passed on.
    payload: Option<(u8, usize)>,
}

impl Demultiplexer {
    /// A demultiplexer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds serial bytes; `output` receives each piece with its stream,
    /// in order.
    pub fn feed(&mut self, mut bytes: &[u8], output: &mut impl FnMut(Stream, &[u8])) {
        while !bytes.is_empty() {
            if let Some((descriptor, left)) = self.payload {
                let length = left.min(bytes.len());
                output(Stream::Application(descriptor), &bytes[..length]);
                self.payload = if left > length { Some((descriptor, left - length)) } else { None };
                bytes = &bytes[length..];
                continue;
            }
            if self.held_len == 0 {
                let plain = bytes.iter().position(|&byte| byte == OUTPUT_PREFIX[0]).unwrap_or(bytes.len());
                if plain > 0 {
                    output(Stream::Kernel, &bytes[..plain]);
                    bytes = &bytes[plain..];
                    continue;
                }
            }
            self.held[self.held_len] = bytes[0];
            self.held_len += 1;
            bytes = &bytes[1..];
            match classify_header(&self.held[..self.held_len]) {
                Header::Partial => {}
                Header::Complete { descriptor, length } => {
                    self.held_len = 0;
                    if length > 0 {
                        self.payload = Some((descriptor, length));
                    }
                }
                Header::Plain => {
                    // Not a header: release the first held byte and look at
                    // the rest again, which may itself start one.
                    let mut pending = [0u8; OUTPUT_HEADER_MAX];
                    let pending_len = self.held_len - 1;
                    pending[..pending_len].copy_from_slice(&self.held[1..self.held_len]);
                    output(Stream::Kernel, &self.held[..1]);
                    self.held_len = 0;
                    self.feed(&pending[..pending_len], output);
                }
            }
        }
    }

    /// Releases bytes still held at the end of the stream (as kernel text).
    pub fn finish(&mut self, output: &mut impl FnMut(Stream, &[u8])) {
        output(Stream::Kernel, &self.held[..self.held_len]);
        self.held_len = 0;
    }
}

enum Header {
    Partial,
    Complete { descriptor: u8, length: usize },
    Plain,
}

fn classify_header(held: &[u8]) -> Header {
    let prefix_len = held.len().min(OUTPUT_PREFIX.len());
    if held[..prefix_len] != OUTPUT_PREFIX[..prefix_len] {
        return Header::Plain;
    }
    let body = &held[prefix_len..];
    if held.len() <= OUTPUT_PREFIX.len() {
        return Header::Partial;
    }
    let descriptor = match body[0] {
        b'1' => 1,
        b'2' => 2,
        _ => return Header::Plain,
    };
    let Some(rest) = body.get(1..) else { return Header::Partial };
    match rest.first() {
        None => return Header::Partial,
        Some(b';') => {}
        Some(_) => return Header::Plain,
    }
    let digits = &rest[1..];
    let digits_len = digits.iter().take_while(|byte| byte.is_ascii_digit()).count();
    if digits_len > 4 {
        return Header::Plain;
    }
    let after = &digits[digits_len..];
    let suffix_len = after.len().min(OUTPUT_SUFFIX.len());
    if after[..suffix_len] != OUTPUT_SUFFIX[..suffix_len] || (digits_len == 0 && !after.is_empty()) {
        return Header::Plain;
    }
    if after.len() < OUTPUT_SUFFIX.len() {
        return Header::Partial;
    }
    let length =
        digits[..digits_len].iter().fold(0usize, |value, digit| value * 10 + usize::from(digit - b'0'));
    if length > OUTPUT_RECORD_MAX {
        return Header::Plain;
    }
    Header::Complete { descriptor, length }
}

/// Kinds of input frames.
pub mod input_kind {
    /// Bytes of standard input.
    pub const DATA: u8 = 0;
    /// Standard input ended (no payload).
    pub const END: u8 = 1;
    /// A control message, one line (see `ControlMessage::encode`).
    pub const CONTROL: u8 = 2;
}

/// Bytes of an input frame's header.
pub const INPUT_HEADER_SIZE: usize = 3;

/// The header of an input frame of `kind` carrying `length` bytes.
pub fn input_frame_header(kind: u8, length: u16) -> [u8; INPUT_HEADER_SIZE] {
    let [low, high] = length.to_le_bytes();
    [kind, low, high]
}

/// What an input frame carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Bytes of standard input.
    Data(&'a [u8]),
    /// The end of standard input.
    End,
    /// A control message.
    Control(ControlMessage),
}

/// Reads input frames from a byte stream that may split them anywhere.
#[derive(Debug, Clone, Default)]
pub struct InputDeframer {
    header: [u8; INPUT_HEADER_SIZE],
    header_len: usize,
    /// The kind and bytes left of the frame being read.
    body: Option<(u8, usize)>,
    control: ControlReader,
}

impl InputDeframer {
    /// A reader that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; `deliver` receives what the frames carry, in order.
    /// Frames of unknown kinds are skipped.
    pub fn feed(&mut self, mut bytes: &[u8], deliver: &mut impl FnMut(Input<'_>)) {
        while !bytes.is_empty() {
            if let Some((kind, left)) = self.body {
                let length = left.min(bytes.len());
                let (chunk, rest) = bytes.split_at(length);
                match kind {
                    input_kind::DATA => deliver(Input::Data(chunk)),
                    input_kind::CONTROL => {
                        self.control.feed(chunk, &mut |message| deliver(Input::Control(message)))
                    }
                    _ => {}
                }
                self.body = if left > length { Some((kind, left - length)) } else { None };
                bytes = rest;
                continue;
            }
            self.header[self.header_len] = bytes[0];
            self.header_len += 1;
            bytes = &bytes[1..];
            if self.header_len < INPUT_HEADER_SIZE {
                continue;
            }
            self.header_len = 0;
            let [kind, low, high] = self.header;
            let length = usize::from(u16::from_le_bytes([low, high]));
            if kind == input_kind::END {
                deliver(Input::End);
            }
            if length > 0 {
                self.body = Some((kind, length));
            }
        }
    }
}

/// Writes into a fixed buffer too large for what is written.
struct Writer<'a, const N: usize> {
    buffer: &'a mut [u8; N],
    length: usize,
}

impl<const N: usize> Writer<'_, N> {
    fn push(&mut self, bytes: &[u8]) {
        let room = N - self.length;
        let length = bytes.len().min(room);
        self.buffer[self.length..self.length + length].copy_from_slice(&bytes[..length]);
        self.length += length;
    }

    fn hex(&mut self, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for byte in bytes {
            self.push(&[DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 0xf)]]);
        }
    }

    fn number(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        let mut count = 0;
        let mut value = value;
        loop {
            digits[count] = b'0' + (value % 10) as u8;
            count += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        digits[..count].reverse();
        self.push(&digits[..count]);
    }
}

/// `N` bytes written as `2 * N` hexadecimal digits.
fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let value = |digit: u8| char::from(digit).to_digit(16).map(|value| value as u8);
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests;
