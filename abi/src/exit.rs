//! How the application's exit status travels from the kernel to the host.
//!
//! Two channels carry it. On QEMU the kernel writes the status to the
//! `isa-debug-exit` device, which makes QEMU exit with `(status << 1) | 1`;
//! that keeps only seven bits and exists only on QEMU. So, when asked with
//! the kernel option [`RECORD_OPTION`], the kernel also prints an *exit
//! record* as the last bytes on the console: an ECMA-48 application program
//! command (`ESC _ rosv-exit=<status> ESC \`), which terminals do not display.
//! The host tools strip the record from the output with [`RecordScanner`].

/// Kernel option that asks for an exit record on the console.
pub const RECORD_OPTION: &str = "--exit-record";
/// The I/O port the tools give QEMU's `isa-debug-exit` device.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Bytes that open an exit record.
pub const RECORD_PREFIX: &[u8] = b"\x1b_rosv-exit=";
/// Bytes that close an exit record.
pub const RECORD_SUFFIX: &[u8] = b"\x1b\\";
/// The longest record: prefix, three digits, suffix.
pub const RECORD_MAX_LEN: usize = RECORD_PREFIX.len() + 3 + RECORD_SUFFIX.len();

/// Exit statuses the kernel itself reports when the application could not
/// run to its end. An application killed by signal `n` reports `128 + n`.
pub mod status {
    /// The kernel command line was malformed or named an unknown option.
    pub const USAGE: u8 = 2;
    /// The kernel failed: a panic or a CPU exception in kernel code.
    pub const KERNEL_FAILURE: u8 = 125;
    /// The application exists but cannot be executed (not a loadable ELF).
    pub const CANNOT_EXECUTE: u8 = 126;
    /// The application was not found in the image.
    pub const NOT_FOUND: u8 = 127;
    /// Signal number of SIGILL.
    pub const SIGILL: u8 = 4;
    /// Signal number of SIGTRAP.
    pub const SIGTRAP: u8 = 5;
    /// Signal number of SIGABRT.
    pub const SIGABRT: u8 = 6;
    /// Signal number of SIGBUS.
    pub const SIGBUS: u8 = 7;
    /// Signal number of SIGFPE.
    pub const SIGFPE: u8 = 8;
    /// Signal number of SIGKILL.
    pub const SIGKILL: u8 = 9;
    /// Signal number of SIGSEGV.
    pub const SIGSEGV: u8 = 11;

    /// The status of a process killed by `signal`.
    pub const fn killed_by(signal: u8) -> u8 {
        128 + signal
    }
}

/// Formats the exit record of `status` into `buffer` and returns its bytes.
pub fn format_record(status: u8, buffer: &mut [u8; RECORD_MAX_LEN]) -> &[u8] {
    let mut length = 0;
    let mut push = |bytes: &[u8]| {
        buffer[length..length + bytes.len()].copy_from_slice(bytes);
        length += bytes.len();
    };
    push(RECORD_PREFIX);
    let digits = [status / 100, status / 10 % 10, status % 10];
    let first = digits.iter().position(|&digit| digit != 0).unwrap_or(2);
    for digit in &digits[first..] {
        push(&[b'0' + digit]);
    }
    push(RECORD_SUFFIX);
    &buffer[..length]
}

/// Decodes QEMU's exit code after a write of `status` to `isa-debug-exit`.
///
/// Returns `None` for even codes, which QEMU uses for its own exits.
pub fn status_from_debug_exit(code: i32) -> Option<u8> {
    if code & 1 == 1 && (1..=255).contains(&code) { u8::try_from(code >> 1).ok() } else { None }
}

/// Finds exit records in a console byte stream and passes the rest through.
///
/// Bytes that might begin a record are held back until the record completes
/// or turns out to be ordinary output, so the record never reaches the user
/// and no output is lost or reordered.
#[derive(Debug, Default)]
pub struct RecordScanner {
    held: [u8; RECORD_MAX_LEN],
    held_len: usize,
    status: Option<u8>,
}

impl RecordScanner {
    /// A scanner that has seen no bytes yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The status of the last complete record seen, if any.
    pub fn status(&self) -> Option<u8> {
        self.status
    }

    /// Feeds console bytes; `output` receives every byte that is not part of
    /// a record, in order.
    pub fn feed(&mut self, bytes: &[u8], output: &mut impl FnMut(&[u8])) {
        let mut plain_start = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if self.held_len == 0 && byte != RECORD_PREFIX[0] {
                continue;
            }
            if self.held_len == 0 {
                output(&bytes[plain_start..index]);
            }
            self.held[self.held_len] = byte;
            self.held_len += 1;
            match self.classify_held() {
                Held::Partial => {}
                Held::Record(status) => {
                    self.status = Some(status);
                    self.held_len = 0;
                }
                Held::Plain => {
                    // Not a record: release the first held byte and rescan the
                    // rest, which may itself start a record.
                    let mut pending = [0u8; RECORD_MAX_LEN];
                    let pending_len = self.held_len - 1;
                    pending[..pending_len].copy_from_slice(&self.held[1..self.held_len]);
                    output(&self.held[..1]);
                    self.held_len = 0;
                    self.feed(&pending[..pending_len], output);
                }
            }
            plain_start = index + 1;
        }
        if self.held_len == 0 {
            output(&bytes[plain_start..]);
        }
    }

    /// Releases bytes still held at the end of the stream.
    pub fn finish(&mut self, output: &mut impl FnMut(&[u8])) {
        output(&self.held[..self.held_len]);
        self.held_len = 0;
    }

    fn classify_held(&self) -> Held {
        let held = &self.held[..self.held_len];
        let prefix_len = held.len().min(RECORD_PREFIX.len());
        if held[..prefix_len] != RECORD_PREFIX[..prefix_len] {
            return Held::Plain;
        }
        if held.len() <= RECORD_PREFIX.len() {
            return Held::Partial;
        }
        let body = &held[RECORD_PREFIX.len()..];
        let digits_len = body.iter().take_while(|byte| byte.is_ascii_digit()).count();
        let rest = &body[digits_len..];
        if digits_len == 0 && !rest.is_empty() || digits_len > 3 {
            return Held::Plain;
        }
        let suffix_len = rest.len().min(RECORD_SUFFIX.len());
        if rest[..suffix_len] != RECORD_SUFFIX[..suffix_len] {
            return Held::Plain;
        }
        if rest.len() < RECORD_SUFFIX.len() {
            return Held::Partial;
        }
        let value = body[..digits_len].iter().fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
        match u8::try_from(value) {
            Ok(status) => Held::Record(status),
            Err(_) => Held::Plain,
        }
    }
}

enum Held {
    Partial,
    Record(u8),
    Plain,
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn scan(chunks: &[&[u8]]) -> (Vec<u8>, Option<u8>) {
        let mut scanner = RecordScanner::new();
        let mut output = Vec::new();
        for chunk in chunks {
            scanner.feed(chunk, &mut |bytes| output.extend_from_slice(bytes));
        }
        scanner.finish(&mut |bytes| output.extend_from_slice(bytes));
        (output, scanner.status())
    }

    #[test]
    fn formats_records() {
        let mut buffer = [0u8; RECORD_MAX_LEN];
        assert_eq!(format_record(0, &mut buffer), b"\x1b_rosv-exit=0\x1b\\");
        assert_eq!(format_record(3, &mut buffer), b"\x1b_rosv-exit=3\x1b\\");
        assert_eq!(format_record(40, &mut buffer), b"\x1b_rosv-exit=40\x1b\\");
        assert_eq!(format_record(255, &mut buffer), b"\x1b_rosv-exit=255\x1b\\");
    }

    #[test]
    fn strips_a_record_and_reports_its_status() {
        let (output, status) = scan(&[b"hello\n\x1b_rosv-exit=42\x1b\\"]);
        assert_eq!(output, b"hello\n");
        assert_eq!(status, Some(42));
    }

    #[test]
    fn finds_records_split_across_chunks() {
        let stream = b"out\x1b[1mbold\x1b_rosv-exit=200\x1b\\";
        for split in 0..stream.len() {
            let (output, status) = scan(&[&stream[..split], &stream[split..]]);
            assert_eq!(output, b"out\x1b[1mbold", "split at {split}");
            assert_eq!(status, Some(200));
        }
    }

    #[test]
    fn passes_lookalikes_through() {
        let inputs: [&[u8]; 5] = [
            b"\x1b_rosv-exit=\x1b\\",
            b"\x1b_rosv-exit=1234\x1b\\",
            b"\x1b_rosv-exit=999\x1b\\",
            b"\x1b_rosv-exi",
            b"\x1b\x1b_rosv-exit=7x",
        ];
        for input in inputs {
            let (output, status) = scan(&[input]);
            assert_eq!(output, input);
            assert_eq!(status, None);
        }
    }

    #[test]
    fn a_lookalike_may_hide_a_real_record() {
        let (output, status) = scan(&[b"\x1b_ros\x1b_rosv-exit=9\x1b\\!"]);
        assert_eq!(output, b"\x1b_ros!");
        assert_eq!(status, Some(9));
    }

    #[test]
    fn decodes_debug_exit_codes() {
        assert_eq!(status_from_debug_exit(1), Some(0));
        assert_eq!(status_from_debug_exit(7), Some(3));
        assert_eq!(status_from_debug_exit(255), Some(127));
        assert_eq!(status_from_debug_exit(0), None);
        assert_eq!(status_from_debug_exit(2), None);
        assert_eq!(status_from_debug_exit(-1), None);
    }
}
