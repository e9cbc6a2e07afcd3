//! The guest console on its way to the user: exit records are taken out,
//! kernel backtraces get function names.

use std::io::Write;

use rosv_abi::exit::RecordScanner;

use crate::kernel_symbols::Symbols;

/// The beginning of a backtrace line the kernel prints.
const BACKTRACE_PREFIX: &[u8] = b"    at 0x";
/// A backtrace line: the prefix and 16 hex digits.
const BACKTRACE_LINE_LEN: usize = BACKTRACE_PREFIX.len() + 16;

/// Filters a guest console byte stream.
pub struct ConsoleFilter {
    scanner: RecordScanner,
    line: Vec<u8>,
    is_holding: bool,
    is_at_line_start: bool,
    symbols: Option<Symbols>,
}

impl ConsoleFilter {
    /// A filter that names backtrace addresses with `symbols`, if given.
    pub fn new(symbols: Option<Symbols>) -> Self {
        ConsoleFilter {
            scanner: RecordScanner::new(),
            line: Vec::new(),
            is_holding: false,
            is_at_line_start: true,
            symbols,
        }
    }

    /// The exit status the guest reported, if any.
    pub fn status(&self) -> Option<u8> {
        self.scanner.status()
    }

    /// Passes console bytes to `sink`.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut impl Write) -> std::io::Result<()> {
        let mut plain = Vec::with_capacity(bytes.len());
        self.scanner.feed(bytes, &mut |chunk| plain.extend_from_slice(chunk));
        self.annotate(&plain, sink)
    }

    /// Passes on whatever is still held back.
    pub fn finish(&mut self, sink: &mut impl Write) -> std::io::Result<()> {
        let mut rest = Vec::new();
        self.scanner.finish(&mut |chunk| rest.extend_from_slice(chunk));
        self.annotate(&rest, sink)?;
        sink.write_all(&std::mem::take(&mut self.line))?;
        self.is_holding = false;
        sink.flush()
    }

    /// Holds back only a line that may be a backtrace line, until it ends,
    /// so that every other byte reaches the user at once.
    fn annotate(&mut self, bytes: &[u8], sink: &mut impl Write) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(bytes.len() + 64);
        for &byte in bytes {
            if self.is_holding {
                if byte == b'\n' {
                    let line = std::mem::take(&mut self.line);
                    out.extend_from_slice(&line);
                    self.write_symbol(&line, &mut out)?;
                    out.push(b'\n');
                    self.is_holding = false;
                    self.is_at_line_start = true;
                    continue;
                }
                self.line.push(byte);
                if !may_be_backtrace(&self.line) {
                    out.append(&mut self.line);
                    self.is_holding = false;
                }
                continue;
            }
            if self.is_at_line_start && byte == BACKTRACE_PREFIX[0] {
                self.is_holding = true;
                self.is_at_line_start = false;
                self.line.push(byte);
                continue;
            }
            out.push(byte);
            self.is_at_line_start = byte == b'\n';
        }
        sink.write_all(&out)?;
        sink.flush()
    }

    fn write_symbol(&self, line: &[u8], sink: &mut impl Write) -> std::io::Result<()> {
        let (Some(symbols), Some(hex)) = (&self.symbols, line.strip_prefix(BACKTRACE_PREFIX)) else {
            return Ok(());
        };
        let Some(address) = std::str::from_utf8(hex).ok().and_then(|hex| u64::from_str_radix(hex, 16).ok())
        else {
            return Ok(());
        };
        if let Some(name) = symbols.describe(address) {
            write!(sink, " in {name}")?;
        }
        Ok(())
    }
}

/// Whether a partial line can still become a backtrace line.
fn may_be_backtrace(line: &[u8]) -> bool {
    let prefix_len = line.len().min(BACKTRACE_PREFIX.len());
    line.len() <= BACKTRACE_LINE_LEN
        && line[..prefix_len] == BACKTRACE_PREFIX[..prefix_len]
        && line[prefix_len..].iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(chunks: &[&[u8]]) -> (String, Option<u8>) {
        let mut filter = ConsoleFilter::new(None);
        let mut out = Vec::new();
        for chunk in chunks {
            filter.feed(chunk, &mut out).unwrap();
        }
        filter.finish(&mut out).unwrap();
        (String::from_utf8(out).unwrap(), filter.status())
    }

    #[test]
    fn passes_output_and_takes_the_record() {
        let (text, status) = filter(&[
            b"hello\n    indented\n",
            b"    at 0xfff",
            b"fffff80200000\n",
            b"\x1b_rosv-exit=3\x1b\\",
        ]);
        assert_eq!(text, "hello\n    indented\n    at 0xffffffff80200000\n");
        assert_eq!(status, Some(3));
    }

    #[test]
    fn releases_held_bytes_at_the_end() {
        let (text, status) = filter(&[b"x\n    at 0x12"]);
        assert_eq!(text, "x\n    at 0x12");
        assert_eq!(status, None);
    }
}
