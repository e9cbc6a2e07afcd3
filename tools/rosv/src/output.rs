//! The guest console on its way to the user: exit records are taken out,
//! kernel backtraces get function names, and the application's output
//! framed on the serial port goes to its own stream.

use std::io::Write;

use rosv_abi::exit::RecordScanner;
use rosv_abi::streams::{Demultiplexer, Stream};

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

/// The serial console split for the user: the kernel's text, filtered,
/// to one sink; the application's output records to standard output and
/// error (or to the same sink, when capturing).
pub struct SerialOutput {
    demultiplexer: Demultiplexer,
    filter: ConsoleFilter,
    kernel: Box<dyn Write + Send>,
    application: Option<[Box<dyn Write + Send>; 2]>,
}

impl SerialOutput {
    /// The kernel's text to rosv's standard error (with CR LF line ends
    /// while the terminal is raw), the application's streams to rosv's
    /// standard output and error.
    pub fn to_standard_streams(symbols: Option<Symbols>, is_raw: bool) -> Self {
        SerialOutput {
            demultiplexer: Demultiplexer::new(),
            filter: ConsoleFilter::new(symbols),
            kernel: Box::new(KernelText { is_raw }),
            application: Some([Box::new(std::io::stdout()), Box::new(std::io::stderr())]),
        }
    }

    /// Everything, the application's output included, to `sink`.
    pub fn to_one_sink(symbols: Option<Symbols>, sink: Box<dyn Write + Send>) -> Self {
        SerialOutput {
            demultiplexer: Demultiplexer::new(),
            filter: ConsoleFilter::new(symbols),
            kernel: sink,
            application: None,
        }
    }

    /// Passes serial bytes on.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut kernel_text = Vec::new();
        let application = &mut self.application;
        self.demultiplexer.feed(bytes, &mut |stream, bytes| match (stream, application.as_mut()) {
            (Stream::Application(descriptor), Some(sinks)) => {
                let sink = &mut sinks[usize::from(descriptor == 2)];
                let _ = sink.write_all(bytes).and_then(|()| sink.flush());
            }
            _ => kernel_text.extend_from_slice(bytes),
        });
        let _ = self.filter.feed(&kernel_text, &mut self.kernel);
    }

    /// Releases what is held back; returns the reported exit status.
    pub fn finish(&mut self) -> Option<u8> {
        let mut kernel_text = Vec::new();
        self.demultiplexer.finish(&mut |_, bytes| kernel_text.extend_from_slice(bytes));
        let _ = self.filter.feed(&kernel_text, &mut self.kernel);
        let _ = self.filter.finish(&mut self.kernel);
        self.filter.status()
    }
}

/// A buffer the console is captured into.
pub struct CaptureSink(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for CaptureSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("console buffer poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// rosv's standard error, for the kernel's text.
struct KernelText {
    /// Whether the terminal is in raw mode (no output processing).
    is_raw: bool,
}

impl Write for KernelText {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        if self.is_raw {
            for line in bytes.split_inclusive(|&byte| byte == b'\n') {
                match line.strip_suffix(b"\n") {
                    Some(text) => {
                        stderr.write_all(text)?;
                        stderr.write_all(b"\r\n")?;
                    }
                    None => stderr.write_all(line)?,
                }
            }
        } else {
            stderr.write_all(bytes)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
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
