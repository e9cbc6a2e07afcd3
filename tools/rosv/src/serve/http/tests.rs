use super::*;

/// A reader over `bytes` delivered a few at a time, as a network would.
struct Trickle {
    bytes: Vec<u8>,
    position: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.step.min(buffer.len()).min(self.bytes.len() - self.position);
        buffer[..count].copy_from_slice(&self.bytes[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}

fn reader(bytes: &[u8], step: usize) -> Reader<Trickle> {
    Reader::new(Trickle { bytes: bytes.to_vec(), position: 0, step })
}

#[test]
fn pipelined_requests_are_read_one_after_another_whatever_the_pieces() {
    let bytes = b"\r\nGET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n\
                  POST /p HTTP/1.0\r\ncontent-length: 5\r\n\r\nhello\
                  PUT /c HTTP/1.1\r\nHost: y\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n";
    for step in [1, 2, 7, 4096] {
        let mut reader = reader(bytes, step);
        let first = reader.read_request_head().unwrap();
        assert_eq!((first.method.as_str(), first.target.as_str(), first.minor_version), ("GET", "/a?b=c", 1));
        assert_eq!(first.headers, [Header::new("Host", "x")]);
        assert_eq!(request_framing(&first.headers).unwrap(), Framing::Empty);
        let second = reader.read_request_head().unwrap();
        assert_eq!(second.minor_version, 0);
        let framing = request_framing(&second.headers).unwrap();
        assert_eq!(framing, Framing::Length(5));
        assert_eq!(reader.read_body(framing, 100).unwrap(), b"hello");
        let third = reader.read_request_head().unwrap();
        let framing = request_framing(&third.headers).unwrap();
        assert_eq!(framing, Framing::Chunked);
        assert_eq!(reader.read_body(framing, 100).unwrap(), b"abc0123456789");
        assert!(matches!(reader.read_request_head(), Err(HttpError::Closed)), "step {step}");
    }
}

#[test]
fn keep_alive_follows_the_version_and_the_connection_header() {
    let head = |minor_version: u8, connection: Option<&str>| RequestHead {
        method: "GET".into(),
        target: "/".into(),
        minor_version,
        headers: connection.map(|value| Header::new("Connection", value)).into_iter().collect(),
    };
    assert!(head(1, None).wants_keep_alive());
    assert!(!head(1, Some("close")).wants_keep_alive());
    assert!(!head(1, Some("TE, Close")).wants_keep_alive());
    assert!(!head(0, None).wants_keep_alive());
    assert!(head(0, Some("Keep-Alive")).wants_keep_alive());
}

#[test]
fn heads_that_are_too_large_or_malformed_are_errors() {
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(HEAD_LIMIT));
    assert!(matches!(reader(long.as_bytes(), 1000).read_request_head(), Err(HttpError::HeadTooLarge)));
    let many: String = (0..=HEADER_COUNT_LIMIT).map(|index| format!("X-{index}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert!(matches!(reader(many.as_bytes(), 1000).read_request_head(), Err(HttpError::HeadTooLarge)));
    for bad in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / FOO\r\n\r\n",
    ] {
        assert!(matches!(reader(bad, 3).read_request_head(), Err(HttpError::Malformed(_))), "{bad:?}");
    }
    assert!(matches!(reader(b"GET / HT", 3).read_request_head(), Err(HttpError::Malformed(_))));
    assert!(matches!(reader(b"", 3).read_request_head(), Err(HttpError::Closed)));
}

#[test]
fn request_framing_refuses_what_could_smuggle_a_request() {
    let framing = |headers: &[(&str, &str)]| {
        let headers: Vec<Header> = headers.iter().map(|(name, value)| Header::new(name, *value)).collect();
        request_framing(&headers)
    };
    assert_eq!(framing(&[("Content-Length", "0")]).unwrap(), Framing::Empty);
    assert_eq!(framing(&[("Content-Length", "12"), ("content-length", "12")]).unwrap(), Framing::Length(12));
    assert_eq!(framing(&[("Content-Length", "12, 12")]).unwrap(), Framing::Length(12));
    for bad in [
        vec![("Content-Length", "12"), ("Content-Length", "13")],
        vec![("Content-Length", "-1")],
        vec![("Content-Length", "+5")],
        vec![("Content-Length", "")],
        vec![("Content-Length", "99999999999999999999999")],
        vec![("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
    ] {
        assert!(matches!(framing(&bad), Err(HttpError::Malformed(_))), "{bad:?}");
    }
    assert!(matches!(framing(&[("Transfer-Encoding", "gzip, chunked")]), Err(HttpError::UnsupportedCoding)));
    assert_eq!(framing(&[("Transfer-Encoding", "Chunked")]).unwrap(), Framing::Chunked);
}

#[test]
fn bodies_are_bounded_and_must_be_complete() {
    assert!(matches!(
        reader(b"0123456789", 3).read_body(Framing::Length(10), 9),
        Err(HttpError::BodyTooLarge(9))
    ));
    // A declared length beyond the limit is refused before any byte of it.
    assert!(matches!(reader(b"", 3).read_body(Framing::Length(10), 9), Err(HttpError::BodyTooLarge(9))));
    assert!(matches!(reader(b"0123", 3).read_body(Framing::Length(10), 100), Err(HttpError::Malformed(_))));
    let chunked = |bytes: &[u8]| reader(bytes, 5).read_body(Framing::Chunked, 8);
    assert!(matches!(chunked(b"9\r\n012345678\r\n0\r\n\r\n"), Err(HttpError::BodyTooLarge(8))));
    assert!(matches!(chunked(b"zz\r\n"), Err(HttpError::Malformed(_))));
    assert!(matches!(chunked(b"\r\n"), Err(HttpError::Malformed(_))));
    assert!(matches!(chunked(b"ffffffffffffffffff\r\n"), Err(HttpError::Malformed(_))));
    assert!(matches!(chunked(b"2\r\nabc\r\n0\r\n\r\n"), Err(HttpError::Malformed(_))));
    assert!(matches!(chunked(b"2\r\nab"), Err(HttpError::Malformed(_))));
    let endless_line = vec![b'1'; CHUNK_LINE_LIMIT + 10];
    assert!(matches!(chunked(&endless_line), Err(HttpError::Malformed(_))));
    assert_eq!(chunked(b"2\r\nab\r\n0\r\n\r\n").unwrap(), b"ab");
    // LF alone ends lines too, as RFC 9112 §2.2 allows a recipient to accept.
    assert_eq!(chunked(b"2\nab\n0\n\n").unwrap(), b"ab");
}

#[test]
fn response_bodies_are_framed_by_method_status_and_headers() {
    let response = |status: u16, headers: &[(&str, &str)]| ResponseHead {
        status,
        reason: String::new(),
        headers: headers.iter().map(|(name, value)| Header::new(name, *value)).collect(),
    };
    let length = [("Content-Length", "3")];
    assert_eq!(response_framing("GET", &response(200, &length)).unwrap(), Framing::Length(3));
    assert_eq!(response_framing("HEAD", &response(200, &length)).unwrap(), Framing::Empty);
    assert_eq!(response_framing("GET", &response(204, &[])).unwrap(), Framing::Empty);
    assert_eq!(response_framing("GET", &response(304, &length)).unwrap(), Framing::Empty);
    assert_eq!(response_framing("GET", &response(200, &[])).unwrap(), Framing::UntilClose);
    let chunked = [("Transfer-Encoding", "chunked"), ("Content-Length", "3")];
    assert_eq!(response_framing("GET", &response(200, &chunked)).unwrap(), Framing::Chunked);
    assert_eq!(
        response_framing("GET", &response(200, &[("Transfer-Encoding", "gzip")])).unwrap(),
        Framing::UntilClose
    );
}

#[test]
fn interim_responses_are_skipped() {
    let bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
                  HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let mut reader = reader(bytes, 10);
    let head = reader.read_response_head().unwrap();
    assert_eq!((head.status, head.reason.as_str()), (201, "Created"));
    let framing = response_framing("POST", &head).unwrap();
    assert_eq!(reader.read_body(framing, 10).unwrap(), b"ok");
    let mut until_close = super::Reader::new(&b"HTTP/1.0 200 OK\r\n\r\nall of it"[..]);
    let head = until_close.read_response_head().unwrap();
    let framing = response_framing("GET", &head).unwrap();
    assert_eq!(until_close.read_body(framing, 100).unwrap(), b"all of it");
}

#[test]
fn responses_are_written_whole() {
    let mut out = Vec::new();
    write_response(&mut out, 404, "text/plain", b"no\n", false).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nServer: rosv\r\n\
         Connection: close\r\n\r\nno\n"
    );
    let mut chunks = Vec::new();
    write_chunk(&mut chunks, b"").unwrap();
    write_chunk(&mut chunks, &[b'x'; 26]).unwrap();
    write_last_chunk(&mut chunks).unwrap();
    let mut expected = b"1a\r\n".to_vec();
    expected.extend_from_slice(&[b'x'; 26]);
    expected.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(chunks, expected);
    let mut decoded = super::Reader::new(&chunks[..]);
    assert_eq!(decoded.read_body(Framing::Chunked, 100).unwrap(), [b'x'; 26]);
}
