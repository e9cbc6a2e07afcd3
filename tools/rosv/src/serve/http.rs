//! HTTP/1.1 messages as the function host reads and writes them.
//!
//! [`Reader`] buffers a connection and yields request or response heads
//! (parsed by `httparse`) and bodies in either framing: `Content-Length`
//! or chunked (RFC 9112 §6 and §7.1). Everything read from a peer is
//! bounded: heads by [`HEAD_LIMIT`], chunk-size lines by
//! [`CHUNK_LINE_LIMIT`], request bodies by the caller's limit; malformed
//! input is an [`HttpError`], never a panic. `proxy` uses these to relay
//! requests to the guests.

use std::io::{self, Read, Write};

/// The longest request or response head (request line and headers) read.
pub const HEAD_LIMIT: usize = 16 * 1024;
/// The most headers one head may carry.
pub const HEADER_COUNT_LIMIT: usize = 100;
/// The longest chunk-size or trailer line.
const CHUNK_LINE_LIMIT: usize = 4096;

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The peer closed the connection before sending a byte of the head.
    #[error("the connection closed")]
    Closed,
    /// The head exceeds [`HEAD_LIMIT`] or [`HEADER_COUNT_LIMIT`].
    #[error("the head is larger than {HEAD_LIMIT} bytes or has more than {HEADER_COUNT_LIMIT} headers")]
    HeadTooLarge,
    /// The bytes are not HTTP/1.x.
    #[error("malformed HTTP: {0}")]
    Malformed(&'static str),
    /// The body is longer than the caller allows.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(u64),
    /// A transfer coding other than chunked.
    #[error("unsupported transfer coding")]
    UnsupportedCoding,
    /// Reading or writing failed (including timeouts).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl HttpError {
    /// Whether a read timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpError::Io(error)
            if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

/// One header, its value kept as bytes: HTTP allows non-UTF-8 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as sent.
    pub name: String,
    /// The value without surrounding whitespace.
    pub value: Vec<u8>,
}

impl Header {
    /// A header from text.
    pub fn new(name: &str, value: impl Into<Vec<u8>>) -> Self {
        Header { name: name.to_string(), value: value.into() }
    }

    /// Whether the header is called `name` (names are case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The values of the headers called `name`, as text.
pub fn values<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |header| header.is(name))
        .filter_map(|header| std::str::from_utf8(&header.value).ok())
}

/// The comma-separated elements of every header called `name`, trimmed
/// and lower-cased (for `Connection` and `Transfer-Encoding`).
pub fn tokens(headers: &[Header], name: &str) -> Vec<String> {
    values(headers, name)
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// A request line and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (`/path?query`, or absolute-form).
    pub target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The headers in their order.
    pub headers: Vec<Header>,
}

impl RequestHead {
    /// Whether the client wants the connection kept after the answer:
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive` (RFC 9112 §9.3).
    pub fn wants_keep_alive(&self) -> bool {
        let connection = tokens(&self.headers, "connection");
        if connection.iter().any(|token| token == "close") {
            return false;
        }
        self.minor_version >= 1 || connection.iter().any(|token| token == "keep-alive")
    }

    /// Whether the client sent `Expect: 100-continue`.
    pub fn expects_continue(&self) -> bool {
        tokens(&self.headers, "expect").iter().any(|token| token == "100-continue")
    }
}

/// A status line and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The reason phrase as sent.
    pub reason: String,
    /// The headers in their order.
    pub headers: Vec<Header>,
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the peer closes (responses only).
    UntilClose,
}

/// The framing of a request body (RFC 9112 §6.3): chunked, a length, or
/// none. A request with both, with conflicting lengths or with another
/// coding is refused: such requests are how proxies get confused.
pub fn request_framing(headers: &[Header]) -> Result<Framing, HttpError> {
    let codings = tokens(headers, "transfer-encoding");
    let has_length = headers.iter().any(|header| header.is("content-length"));
    if !codings.is_empty() {
        if has_length {
            return Err(HttpError::Malformed("both Content-Length and Transfer-Encoding"));
        }
        return if codings == ["chunked"] { Ok(Framing::Chunked) } else { Err(HttpError::UnsupportedCoding) };
    }
    match content_length(headers)? {
        Some(0) | None => Ok(Framing::Empty),
        Some(length) => Ok(Framing::Length(length)),
    }
}

/// The framing of a response to a `method` request (RFC 9112 §6.3): none
/// after HEAD and for 1xx, 204 and 304; else chunked, a length, or until
/// the server closes.
pub fn response_framing(method: &str, head: &ResponseHead) -> Result<Framing, HttpError> {
    if method.eq_ignore_ascii_case("HEAD") || head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    let codings = tokens(&head.headers, "transfer-encoding");
    if !codings.is_empty() {
        return if codings.last().map(String::as_str) == Some("chunked") {
            Ok(Framing::Chunked)
        } else {
            Ok(Framing::UntilClose)
        };
    }
    Ok(content_length(&head.headers)?.map_or(Framing::UntilClose, Framing::Length))
}

/// The `Content-Length`, if any; several headers must agree.
fn content_length(headers: &[Header]) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for header in headers.iter().filter(|header| header.is("content-length")) {
        for part in header.value.split(|&byte| byte == b',') {
            let text = std::str::from_utf8(part).map_err(|_| HttpError::Malformed("Content-Length"))?.trim();
            if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(HttpError::Malformed("Content-Length is not a number"));
            }
            let value: u64 = text.parse().map_err(|_| HttpError::Malformed("Content-Length is too large"))?;
            if length.is_some_and(|length| length != value) {
                return Err(HttpError::Malformed("conflicting Content-Length headers"));
            }
            length = Some(value);
        }
    }
    Ok(length)
}

/// A connection's read side with a buffer, so that bytes read past one
/// message (pipelined requests) are kept for the next.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    buffer: Vec<u8>,
    start: usize,
}

impl<R: Read> Reader<R> {
    /// A reader of `inner`.
    pub fn new(inner: R) -> Self {
        Reader { inner, buffer: Vec::with_capacity(8192), start: 0 }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream, to change its settings.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    fn consume(&mut self, count: usize) {
        self.start += count;
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer; returns how many (0 at the end).
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        } else if self.start > 0 && self.buffer.len() > 64 * 1024 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let count = loop {
            match self.inner.read(&mut chunk) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        self.buffer.extend_from_slice(&chunk[..count]);
        Ok(count)
    }

    /// Reads a request head. [`HttpError::Closed`] if the peer closed
    /// before its first byte.
    pub fn read_request_head(&mut self) -> Result<RequestHead, HttpError> {
        self.read_head(|bytes| {
            let mut headers = [httparse::EMPTY_HEADER; HEADER_COUNT_LIMIT];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(bytes) {
                Ok(httparse::Status::Complete(length)) => Ok(Some((
                    RequestHead {
                        method: request.method.unwrap_or_default().to_string(),
                        target: request.path.unwrap_or_default().to_string(),
                        minor_version: request.version.unwrap_or(1),
                        headers: copy_headers(request.headers),
                    },
                    length,
                ))),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeadTooLarge),
                Err(_) => Err(HttpError::Malformed("not an HTTP/1.x request")),
            }
        })
    }

    /// Reads a response head, skipping interim (1xx) responses other than
    /// 101.
    pub fn read_response_head(&mut self) -> Result<ResponseHead, HttpError> {
        loop {
            let head = self.read_head(|bytes| {
                let mut headers = [httparse::EMPTY_HEADER; HEADER_COUNT_LIMIT];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(bytes) {
                    Ok(httparse::Status::Complete(length)) => Ok(Some((
                        ResponseHead {
                            status: response.code.unwrap_or_default(),
                            reason: response.reason.unwrap_or_default().to_string(),
                            headers: copy_headers(response.headers),
                        },
                        length,
                    ))),
                    Ok(httparse::Status::Partial) => Ok(None),
                    Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeadTooLarge),
                    Err(_) => Err(HttpError::Malformed("not an HTTP/1.x response")),
                }
            })?;
            if !(100..200).contains(&head.status) || head.status == 101 {
                return Ok(head);
            }
        }
    }

    fn read_head<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, HttpError>,
    ) -> Result<T, HttpError> {
        // Empty lines before a request are to be ignored (RFC 9112 §2.2).
        loop {
            while let Some(skip) = leading_line_ends(self.buffered()) {
                self.consume(skip);
            }
            if !self.buffered().is_empty() {
                if let Some((head, length)) = parse(self.buffered())? {
                    if length > HEAD_LIMIT {
                        return Err(HttpError::HeadTooLarge);
                    }
                    self.consume(length);
                    return Ok(head);
                }
                if self.buffered().len() >= HEAD_LIMIT {
                    return Err(HttpError::HeadTooLarge);
                }
            }
            let was_empty = self.buffered().is_empty();
            if self.fill()? == 0 {
                return Err(if was_empty {
                    HttpError::Closed
                } else {
                    HttpError::Malformed("the connection closed in the middle of a head")
                });
            }
        }
    }

    /// Reads a whole body framed by `framing`, refusing more than `limit`
    /// bytes. Trailers of a chunked body are dropped.
    pub fn read_body(&mut self, framing: Framing, limit: u64) -> Result<Vec<u8>, HttpError> {
        if let Framing::Length(length) = framing
            && length > limit
        {
            return Err(HttpError::BodyTooLarge(limit));
        }
        let mut body = Vec::new();
        self.copy_body(framing, &mut |piece| {
            if body.len() as u64 + piece.len() as u64 > limit {
                return Err(HttpError::BodyTooLarge(limit));
            }
            body.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(body)
    }

    /// Passes the body framed by `framing` to `sink` piece by piece, as it
    /// arrives (chunked bodies decoded).
    pub fn copy_body(
        &mut self,
        framing: Framing,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<(), HttpError> {
        match framing {
            Framing::Empty => Ok(()),
            Framing::Length(length) => self.copy_exactly(length, sink),
            Framing::UntilClose => loop {
                if !self.buffered().is_empty() {
                    let length = self.buffered().len();
                    sink(self.buffered())?;
                    self.consume(length);
                }
                if self.fill()? == 0 {
                    return Ok(());
                }
            },
            Framing::Chunked => loop {
                let line = self.read_line()?;
                let size_text = line.split(|&byte| byte == b';').next().unwrap_or_default();
                let size_text = std::str::from_utf8(size_text)
                    .map_err(|_| HttpError::Malformed("chunk size"))?
                    .trim_matches([' ', '\t']);
                if size_text.is_empty() || size_text.len() > 15 {
                    return Err(HttpError::Malformed("chunk size"));
                }
                let size =
                    u64::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed("chunk size"))?;
                if size == 0 {
                    // Trailer fields, then the final empty line.
                    while !self.read_line()?.is_empty() {}
                    return Ok(());
                }
                self.copy_exactly(size, sink)?;
                if !self.read_line()?.is_empty() {
                    return Err(HttpError::Malformed("chunk data longer than its size"));
                }
            },
        }
    }

    fn copy_exactly(
        &mut self,
        mut left: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<(), HttpError> {
        while left > 0 {
            if self.buffered().is_empty() && self.fill()? == 0 {
                return Err(HttpError::Malformed("the connection closed in the middle of a body"));
            }
            let length = self.buffered().len().min(usize::try_from(left).unwrap_or(usize::MAX));
            sink(&self.buffered()[..length])?;
            self.consume(length);
            left -= length as u64;
        }
        Ok(())
    }

    /// Reads one line ending in CRLF (or LF), without its end.
    fn read_line(&mut self) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(end) = self.buffered().iter().position(|&byte| byte == b'\n') {
                let mut line = self.buffered()[..end].to_vec();
                self.consume(end + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buffered().len() > CHUNK_LINE_LIMIT {
                return Err(HttpError::Malformed("a chunk line is too long"));
            }
            if self.fill()? == 0 {
                return Err(HttpError::Malformed("the connection closed in the middle of a chunked body"));
            }
        }
    }
}

/// The length of a CRLF or LF at the start of `bytes`, if there is one.
fn leading_line_ends(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [b'\r', b'\n', ..] => Some(2),
        [b'\n', ..] => Some(1),
        _ => None,
    }
}

fn copy_headers(headers: &[httparse::Header<'_>]) -> Vec<Header> {
    headers
        .iter()
        .map(|header| Header { name: header.name.to_string(), value: header.value.to_vec() })
        .collect()
}

/// The reason phrase of the status codes the host itself answers with.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes a head: the start line, then `headers`, then the empty line.
pub fn write_head(sink: &mut impl Write, start_line: &str, headers: &[Header]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(start_line.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    for header in headers {
        bytes.extend_from_slice(header.name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(&header.value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    sink.write_all(&bytes)
}

/// Writes a complete response of the host's own: `status`, a body of
/// `content_type`, and `Connection: close` unless `keep_alive`.
pub fn write_response(
    sink: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let mut headers = vec![
        Header::new("Content-Type", content_type),
        Header::new("Content-Length", body.len().to_string()),
        Header::new("Server", "rosv"),
    ];
    if !keep_alive {
        headers.push(Header::new("Connection", "close"));
    }
    write_head(sink, &format!("HTTP/1.1 {status} {}", reason(status)), &headers)?;
    sink.write_all(body)?;
    sink.flush()
}

/// Writes a complete response: `status`, `headers`, and `body` framed by
/// its length.
pub fn write_message(sink: &mut impl Write, status: u16, headers: &[Header], body: &[u8]) -> io::Result<()> {
    let mut all = headers.to_vec();
    all.push(Header::new("Content-Length", body.len().to_string()));
    write_head(sink, &format!("HTTP/1.1 {status} {}", reason(status)), &all)?;
    sink.write_all(body)?;
    sink.flush()
}

/// Writes `piece` as one chunk of a chunked body (nothing if it is empty:
/// an empty chunk would end the body).
pub fn write_chunk(sink: &mut impl Write, piece: &[u8]) -> io::Result<()> {
    if piece.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(piece.len() + 20);
    bytes.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
    bytes.extend_from_slice(piece);
    bytes.extend_from_slice(b"\r\n");
    sink.write_all(&bytes)
}

/// Ends a chunked body.
pub fn write_last_chunk(sink: &mut impl Write) -> io::Result<()> {
    sink.write_all(b"0\r\n\r\n")
}

#[cfg(test)]
mod tests;
