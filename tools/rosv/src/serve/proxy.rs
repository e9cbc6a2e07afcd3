//! The front end: HTTP/1.1 connections from clients, routed to functions.
//!
//! Each connection has its own thread ([`handle_connection`]). A request
//! for `/NAME/rest?query` is read whole (body included, up to
//! [`BODY_LIMIT`]), sent to function NAME as `/rest?query` on a fresh
//! connection to one of its instances, and the answer is relayed back as
//! it arrives. `/_rosv/stats` is the host's own, and so is Lambda's Invoke
//! API (`invoke`). Clients that are slow,
//! send too much or speak something else get an answer (408, 413, 431,
//! 400) and the connection is closed.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Host;
use super::config::Kind;
use super::http::{
    self, Framing, Header, HttpError, Reader, RequestHead, ResponseHead, request_framing, response_framing,
    write_chunk, write_head, write_last_chunk, write_response,
};
use super::instance::Failure;
use super::pool::Pool;

/// The largest request body the host accepts (413 beyond).
pub const BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// How long a client may take to send a request's head, counted from the
/// end of the previous answer (the keep-alive idle time included).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one write to a client may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The host's own path.
const STATS_PATH: &str = "/_rosv/stats";

/// Headers that concern one connection only (RFC 9110 §7.6.1), never
/// passed on, and those the host sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
];

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// The host's counters.
    Stats,
    /// Lambda's Invoke API for function `name`.
    Invoke {
        /// The function's name.
        name: String,
    },
    /// Function `name`, with the path (and query) it sees.
    Function {
        /// The function's name.
        name: &'a str,
        /// The path and query to send it.
        path: String,
    },
    /// Nothing: no function name, or a target that is not a path.
    Nowhere,
}

/// Routes a request target: `/NAME/rest?query` to function NAME with
/// `/rest?query`; `/NAME` and `/NAME?query` get `/` and `/?query`.
/// Absolute-form targets (`http://host/NAME/...`) are routed by their path.
pub fn route(target: &str) -> Route<'_> {
    let target = match target.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            match rest.find(['/', '?']) {
                Some(index) if rest[index..].starts_with('/') => &rest[index..],
                _ => "/",
            }
        }
        _ => target,
    };
    let Some(after_slash) = target.strip_prefix('/') else { return Route::Nowhere };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    if path == STATS_PATH {
        return Route::Stats;
    }
    if let Some(name) = super::invoke::function_name(target) {
        return Route::Invoke { name };
    }
    let name_end = after_slash.find(['/', '?']).unwrap_or(after_slash.len());
    let name = &after_slash[..name_end];
    if name.is_empty() {
        return Route::Nowhere;
    }
    let rest = &path[1 + name.len()..];
    let mut forwarded = if rest.is_empty() { String::from("/") } else { rest.to_string() };
    if let Some(query) = query {
        forwarded.push('?');
        forwarded.push_str(query);
    }
    Route::Function { name, path: forwarded }
}

/// The request to send a function: `path` instead of the target, HTTP/1.1,
/// the end-to-end headers, `X-Forwarded-For` with `client` appended, the
/// body with its length, and `Connection: close`.
pub fn upstream_request(head: &RequestHead, path: &str, body: &[u8], client: IpAddr) -> Vec<u8> {
    let listed = http::tokens(&head.headers, "connection");
    let mut headers: Vec<Header> = Vec::with_capacity(head.headers.len() + 4);
    let mut forwarded_for: Vec<String> = Vec::new();
    for header in &head.headers {
        let name = header.name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&name.as_str()) || listed.contains(&name) {
            continue;
        }
        if name == "x-forwarded-for" {
            forwarded_for.push(String::from_utf8_lossy(&header.value).trim().to_string());
            continue;
        }
        headers.push(header.clone());
    }
    if !headers.iter().any(|header| header.is("host")) {
        headers.insert(0, Header::new("Host", "localhost"));
    }
    forwarded_for.retain(|value| !value.is_empty());
    forwarded_for.push(client.to_string());
    headers.push(Header::new("X-Forwarded-For", forwarded_for.join(", ")));
    let method_has_body =
        ["POST", "PUT", "PATCH"].iter().any(|method| head.method.eq_ignore_ascii_case(method));
    if !body.is_empty() || method_has_body {
        headers.push(Header::new("Content-Length", body.len().to_string()));
    }
    headers.push(Header::new("Connection", "close"));
    let mut request = Vec::with_capacity(512 + body.len());
    let _ = write_head(&mut request, &format!("{} {path} HTTP/1.1", head.method), &headers);
    request.extend_from_slice(body);
    request
}

/// A client connection's read side, whose reads end at a deadline.
#[derive(Debug)]
struct Client {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for Client {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the client is too slow"));
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buffer)
    }
}

/// How long a closing connection's unread input is drained at most.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// How many bytes of a closing connection's input are drained at most.
const LINGER_BYTES: u64 = 1024 * 1024;

/// Serves one client connection until it closes or errs.
pub fn handle_connection(host: &Arc<Host>, stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else { return };
    let Ok(mut writer) = stream.try_clone() else { return };
    let _ = stream.set_nodelay(true);
    let _ = writer.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut reader = Reader::new(Client { stream, deadline: Instant::now() + HEAD_TIMEOUT });
    serve_requests(host, &mut reader, &mut writer, peer.ip());
    // Closing a socket with unread input resets the connection, which can
    // destroy the answer before the client reads it (a 413 or 431 sent
    // while the client still sends): finish sending, then drain a little.
    let _ = writer.shutdown(std::net::Shutdown::Write);
    reader.get_mut().deadline = Instant::now() + LINGER_TIME;
    let _ = io::copy(&mut reader.get_mut().take(LINGER_BYTES), &mut io::sink());
}

/// Serves requests from one client until one of them ends the connection.
fn serve_requests(host: &Arc<Host>, reader: &mut Reader<Client>, writer: &mut TcpStream, client: IpAddr) {
    loop {
        reader.get_mut().deadline = Instant::now() + HEAD_TIMEOUT;
        let head = match reader.read_request_head() {
            Ok(head) => head,
            Err(error) => {
                let answer = match error {
                    HttpError::HeadTooLarge => Some((431, "the request head is too large\n")),
                    HttpError::Malformed(_) => Some((400, "this is not an HTTP/1.x request\n")),
                    HttpError::Io(_) if error.is_timeout() && !reader.buffered().is_empty() => {
                        Some((408, "the request took too long to arrive\n"))
                    }
                    _ => None,
                };
                if let Some((status, body)) = answer {
                    let _ = write_response(writer, status, "text/plain", body.as_bytes(), false);
                }
                return;
            }
        };
        match serve_request(host, reader, writer, &head, client) {
            Ok(true) => continue,
            Ok(false) | Err(_) => return,
        }
    }
}

/// Answers one request; returns whether the connection may carry another.
fn serve_request(
    host: &Arc<Host>,
    reader: &mut Reader<Client>,
    writer: &mut TcpStream,
    head: &RequestHead,
    client: IpAddr,
) -> io::Result<bool> {
    let keep_alive = head.wants_keep_alive();
    let plain = |writer: &mut TcpStream, status: u16, body: &str, keep: bool| -> io::Result<bool> {
        write_response(writer, status, "text/plain; charset=utf-8", body.as_bytes(), keep)?;
        Ok(keep)
    };
    if head.minor_version >= 1 && !head.headers.iter().any(|header| header.is("host")) {
        return plain(writer, 400, "an HTTP/1.1 request needs a Host header\n", false);
    }
    let framing = match request_framing(&head.headers) {
        Ok(framing) => framing,
        Err(HttpError::UnsupportedCoding) => {
            return plain(writer, 501, "only the chunked transfer coding is supported\n", false);
        }
        Err(_) => return plain(writer, 400, "the request's body framing is invalid\n", false),
    };
    let route = route(&head.target);
    let pool = match &route {
        Route::Function { name, .. } => host.pool(name),
        Route::Invoke { name } => host.pool(name),
        _ => None,
    };
    if framing != Framing::Empty && head.expects_continue() {
        if pool.is_none() && !matches!(route, Route::Invoke { .. }) {
            return plain(writer, 404, &not_found(&route), false);
        }
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    reader.get_mut().deadline = Instant::now() + BODY_TIMEOUT;
    let body = match reader.read_body(framing, BODY_LIMIT) {
        Ok(body) => body,
        Err(HttpError::BodyTooLarge(limit)) => {
            return plain(writer, 413, &format!("the request body is larger than {limit} bytes\n"), false);
        }
        Err(error) if error.is_timeout() => {
            return plain(writer, 408, "the request body took too long\n", false);
        }
        Err(_) => return plain(writer, 400, "the request body is malformed or incomplete\n", false),
    };
    match (route, pool) {
        (Route::Stats, _) => {
            if !head.method.eq_ignore_ascii_case("GET") && !head.method.eq_ignore_ascii_case("HEAD") {
                return plain(writer, 405, "the statistics are read with GET\n", keep_alive);
            }
            let text = serde_json::to_string_pretty(&host.stats_json()).unwrap_or_default() + "\n";
            write_response(writer, 200, "application/json", text.as_bytes(), keep_alive)?;
            Ok(keep_alive)
        }
        (Route::Invoke { name }, _) => super::invoke::serve(host, writer, head, &body, &name),
        (Route::Function { name, .. }, Some(pool)) if matches!(pool.function.kind, Kind::Lambda { .. }) => {
            let text = format!(
                "function {name} is a Lambda function: invoke it with POST /2015-03-31/functions/{name}/invocations\n"
            );
            plain(writer, 400, &text, keep_alive)
        }
        (route @ Route::Function { .. }, Some(pool)) => {
            let Route::Function { path, .. } = route else { return Ok(false) };
            let request = upstream_request(head, &path, &body, client);
            forward(pool, writer, head, &request, keep_alive)
        }
        (route, _) => plain(writer, 404, &not_found(&route), keep_alive),
    }
}

fn not_found(route: &Route<'_>) -> String {
    match route {
        Route::Function { name, .. } => format!("no function is named \"{name}\"\n"),
        _ => String::from("no function here; ask for /NAME/... with a function's name\n"),
    }
}

/// Sends `request` to the function of `pool` and relays its answer;
/// returns whether the client connection may carry another request.
fn forward(
    pool: &Pool,
    writer: &mut TcpStream,
    head: &RequestHead,
    request: &[u8],
    keep_alive: bool,
) -> io::Result<bool> {
    let deadline = Instant::now() + pool.function.boot_timeout + pool.function.request_timeout;
    let request_id = super::invoke::request_id();
    let lease = match pool.acquire(deadline) {
        Ok(lease) => lease,
        Err(Failure { status, message }) => {
            pool.update_stats(|stats| stats.errors += 1);
            let body = format!("{message}\n");
            write_response(writer, status, "text/plain; charset=utf-8", body.as_bytes(), keep_alive)?;
            return Ok(keep_alive);
        }
    };
    let answer = pool.send(&lease, request);
    let (mut upstream, response) = match answer {
        Ok(answer) => answer,
        Err(Failure { status, message }) => {
            pool.update_stats(|stats| stats.errors += 1);
            pool.finish(lease, status, &request_id);
            write_response(
                writer,
                status,
                "text/plain; charset=utf-8",
                format!("{message}\n").as_bytes(),
                keep_alive,
            )?;
            return Ok(keep_alive);
        }
    };
    let framing = match response_framing(&head.method, &response) {
        Ok(framing) => framing,
        Err(_) => {
            pool.update_stats(|stats| stats.errors += 1);
            let message = format!("function {} answered with an invalid body length\n", pool.function.name);
            pool.finish(lease, 502, &request_id);
            write_response(writer, 502, "text/plain; charset=utf-8", message.as_bytes(), keep_alive)?;
            return Ok(keep_alive);
        }
    };
    pool.update_stats(|stats| stats.requests += 1);
    let relayed = relay(&mut upstream, writer, &response, framing, head.minor_version, keep_alive);
    pool.finish(lease, response.status, &request_id);
    match relayed {
        Ok(keep) => Ok(keep),
        Err(error) => {
            pool.update_stats(|stats| stats.errors += 1);
            Err(io::Error::other(error.to_string()))
        }
    }
}

/// Relays the answer `response`, whose body is framed by `framing`, to the
/// client; returns whether the client connection stays open.
fn relay(
    upstream: &mut Reader<crate::serve::guest_stream::GuestStream>,
    writer: &mut TcpStream,
    response: &ResponseHead,
    framing: Framing,
    client_minor_version: u8,
    client_keep_alive: bool,
) -> Result<bool, HttpError> {
    // A body that ends when the function closes is re-framed as chunks for
    // HTTP/1.1 clients, so their connection survives it.
    let (framing_out, keep) = match framing {
        Framing::Empty | Framing::Length(_) => (framing, client_keep_alive),
        Framing::Chunked | Framing::UntilClose if client_minor_version >= 1 => {
            (Framing::Chunked, client_keep_alive)
        }
        Framing::Chunked | Framing::UntilClose => (Framing::UntilClose, false),
    };
    let listed = http::tokens(&response.headers, "connection");
    let mut headers: Vec<Header> = response
        .headers
        .iter()
        .filter(|header| {
            let name = header.name.to_ascii_lowercase();
            let is_own = HOP_BY_HOP.contains(&name.as_str()) || listed.contains(&name);
            // Without a body, Content-Length still tells the size of what
            // a GET would have returned (HEAD, 304).
            !is_own || (framing_out == Framing::Empty && name == "content-length")
        })
        .cloned()
        .collect();
    match framing_out {
        Framing::Length(length) => headers.push(Header::new("Content-Length", length.to_string())),
        Framing::Chunked => headers.push(Header::new("Transfer-Encoding", "chunked")),
        Framing::Empty | Framing::UntilClose => {}
    }
    if !keep {
        headers.push(Header::new("Connection", "close"));
    } else if client_minor_version == 0 {
        headers.push(Header::new("Connection", "keep-alive"));
    }
    let reason = if response.reason.is_empty() { http::reason(response.status) } else { &response.reason };
    write_head(writer, &format!("HTTP/1.1 {} {reason}", response.status), &headers)?;
    upstream.copy_body(framing, &mut |piece| {
        match framing_out {
            Framing::Chunked => write_chunk(writer, piece)?,
            _ => writer.write_all(piece)?,
        }
        Ok(())
    })?;
    if framing_out == Framing::Chunked {
        write_last_chunk(writer)?;
    }
    writer.flush()?;
    Ok(keep)
}

#[cfg(test)]
mod tests;
