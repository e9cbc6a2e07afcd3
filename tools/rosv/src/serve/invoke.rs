//! Lambda's Invoke API, outside: `POST /2015-03-31/functions/NAME/invocations`.
//!
//! The body is the event (JSON; empty means `{}`). `X-Amz-Invocation-Type`
//! chooses `RequestResponse` (the default: the answer is the function's
//! result), `Event` (202 at once, the invocation runs on) or `DryRun`
//! (204). A function error is a 200 with `X-Amz-Function-Error: Unhandled`
//! and the runtime's error document; `X-Amz-Log-Type: Tail` adds
//! `X-Amz-Log-Result`, the base64 of the last 4 KiB the VM printed during
//! the invocation. The host's own errors have Lambda's shape,
//! `{"errorMessage": ..., "errorType": ...}`: 404 for an unknown function,
//! 400 for a body that is not JSON, 502 when the VM crashed, 504 when it
//! hung (the VM is replaced in both cases). The runtime's side is
//! `runtime_api`.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Host;
use super::config::Kind;
use super::http::{self, Header, RequestHead};
use super::instance::Failure;
use super::pool::Pool;
use super::runtime_api::{Invocation, Outcome, error_document};

/// The Invoke API's path before the function's name.
const PREFIX: &str = "/2015-03-31/functions/";
/// How much of the invocation's output `X-Amz-Log-Result` carries.
const LOG_TAIL_BYTES: usize = 4 * 1024;
/// How long the console must be quiet before the log's tail is taken.
const LOG_QUIET: Duration = Duration::from_millis(100);
/// How long the log's tail is waited for at most.
const LOG_WAIT_LIMIT: Duration = Duration::from_secs(1);

/// The function named by an Invoke API path, if `target` is one: a name,
/// `NAME:QUALIFIER`, or an ARN, percent-encoded or not.
pub fn function_name(target: &str) -> Option<String> {
    let path = target.split('?').next()?;
    let encoded = path.strip_prefix(PREFIX)?.strip_suffix("/invocations")?;
    let decoded = percent_decode(encoded)?;
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    let name = match decoded.split_once(":function:") {
        Some((_, rest)) => rest.to_string(),
        None => decoded,
    };
    let name = name.split(':').next().unwrap_or_default().to_string();
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// How the client asked to invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// An answer to write.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<Header>,
    body: Vec<u8>,
}

impl Answer {
    fn error(status: u16, error_type: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![
                Header::new("Content-Type", "application/json"),
                Header::new("X-Amzn-ErrorType", error_type),
            ],
            body: error_document(error_type, message).into_bytes(),
        }
    }

    fn from_failure(failure: &Failure) -> Answer {
        let error_type = match failure.status {
            502 => "Runtime.ExitError",
            503 => "TooManyRequestsException",
            504 => "Sandbox.Timedout",
            _ => "ServiceException",
        };
        Answer::error(failure.status, error_type, &failure.message)
    }
}

/// Answers an Invoke request for function `name`; returns whether the
/// client connection may carry another request.
pub fn serve(
    host: &Arc<Host>,
    writer: &mut TcpStream,
    head: &RequestHead,
    body: &[u8],
    name: &str,
) -> io::Result<bool> {
    let keep_alive = head.wants_keep_alive();
    let answer = answer(host, head, body, name);
    let mut headers = answer.headers;
    if !keep_alive {
        headers.push(Header::new("Connection", "close"));
    }
    http::write_message(writer, answer.status, &headers, &answer.body)?;
    Ok(keep_alive)
}

fn answer(host: &Arc<Host>, head: &RequestHead, body: &[u8], name: &str) -> Answer {
    if !head.method.eq_ignore_ascii_case("POST") {
        return Answer::error(405, "InvalidRequestContentException", "invoke a function with POST");
    }
    let Some(pool) = host.pool(name) else {
        let arn = super::pool::arn(name);
        return Answer::error(404, "ResourceNotFoundException", &format!("Function not found: {arn}"));
    };
    if matches!(pool.function.kind, Kind::Http { .. }) {
        return Answer::error(
            400,
            "InvalidParameterValueException",
            &format!("function {name} is an HTTP function: send its requests to /{name}/..."),
        );
    }
    let payload = if body.iter().all(u8::is_ascii_whitespace) { b"{}".to_vec() } else { body.to_vec() };
    if let Err(error) = serde_json::from_slice::<serde_json::Value>(&payload) {
        return Answer::error(
            400,
            "InvalidRequestContentException",
            &format!("Could not parse request body into json: {error}"),
        );
    }
    let invocation_type = match http::values(&head.headers, "x-amz-invocation-type").next() {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return Answer::error(
                400,
                "InvalidParameterValueException",
                &format!("X-Amz-Invocation-Type {other} is not RequestResponse, Event or DryRun"),
            );
        }
    };
    let wants_tail = http::values(&head.headers, "x-amz-log-type").any(|value| value == "Tail");
    let request_id = request_id();
    match invocation_type {
        InvocationType::DryRun => {
            Answer { status: 204, headers: request_headers(&request_id), body: Vec::new() }
        }
        InvocationType::Event => {
            let host = host.clone();
            let (name, id) = (name.to_string(), request_id.clone());
            let spawned = std::thread::Builder::new().name("event".into()).spawn(move || {
                if let Some(pool) = host.pool(&name) {
                    let answer = invoke(pool, payload, &id, false);
                    if answer.status != 200 {
                        super::log(&format!(
                            "event {id} of function {name}: {} {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body)
                        ));
                    }
                }
            });
            match spawned {
                Ok(_) => Answer { status: 202, headers: request_headers(&request_id), body: Vec::new() },
                Err(error) => {
                    Answer::error(503, "ServiceException", &format!("cannot start the invocation: {error}"))
                }
            }
        }
        InvocationType::RequestResponse => invoke(pool, payload, &request_id, wants_tail),
    }
}

/// Runs one invocation on one of `pool`'s VMs and records its cost.
fn invoke(pool: &Pool, payload: Vec<u8>, request_id: &str, wants_tail: bool) -> Answer {
    let timeout = pool.function.request_timeout;
    let lease = match pool.acquire(Instant::now() + timeout + pool.function.boot_timeout) {
        Ok(lease) => lease,
        Err(failure) => {
            pool.update_stats(|stats| stats.errors += 1);
            return Answer::from_failure(&failure);
        }
    };
    let mark = lease.instance.console.mark();
    let deadline = SystemTime::now() + timeout + boot_allowance(&lease.instance, pool);
    let invocation = Invocation {
        request_id: request_id.to_string(),
        payload,
        deadline_ms: deadline.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64),
        trace_id: trace_id(),
    };
    let outcome = pool.invoke(&lease, invocation);
    let mut answer = match outcome {
        Ok(Outcome::Response(body)) => {
            pool.update_stats(|stats| stats.requests += 1);
            let mut headers = request_headers(request_id);
            headers.push(Header::new("Content-Type", "application/json"));
            Answer { status: 200, headers, body }
        }
        Ok(Outcome::Error { body, .. }) => {
            pool.update_stats(|stats| stats.requests += 1);
            let mut headers = request_headers(request_id);
            headers.push(Header::new("Content-Type", "application/json"));
            headers.push(Header::new("X-Amz-Function-Error", "Unhandled"));
            let body = if body.is_empty() {
                error_document("Unhandled", "the function failed without saying why").into_bytes()
            } else {
                body
            };
            Answer { status: 200, headers, body }
        }
        Err(failure) => {
            pool.update_stats(|stats| stats.errors += 1);
            let mut answer = Answer::from_failure(&failure);
            answer.headers.extend(request_headers(request_id));
            answer
        }
    };
    if wants_tail {
        // The runtime's last lines may still be on their way through the
        // serial port.
        lease.instance.console.wait_quiet(LOG_QUIET, Instant::now() + LOG_WAIT_LIMIT);
        let tail = lease.instance.console.since(mark, LOG_TAIL_BYTES);
        answer.headers.push(Header::new("X-Amz-Log-Result", base64(&tail)));
    }
    pool.finish(lease, answer.status, request_id);
    answer
}

/// The time a booting VM still needs, added to a cold invocation's
/// deadline.
fn boot_allowance(instance: &super::instance::Instance, pool: &Pool) -> Duration {
    if instance.readiness() == super::instance::Readiness::Answering {
        Duration::ZERO
    } else {
        (instance.started + pool.function.boot_timeout).saturating_duration_since(Instant::now())
    }
}

fn request_headers(request_id: &str) -> Vec<Header> {
    vec![Header::new("X-Amzn-RequestId", request_id), Header::new("X-Amz-Executed-Version", "$LATEST")]
}

/// Random bytes from the kernel.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
    if read.is_err() {
        // Unique enough without randomness: the time and a counter.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = (now as u64) ^ count.rotate_left(32);
        for (index, byte) in bytes.iter_mut().enumerate() {
            *byte = (seed.rotate_left(index as u32 * 8) & 0xff) as u8;
        }
    }
    bytes
}

/// A new request id: a random (version 4) UUID.
pub fn request_id() -> String {
    let mut bytes: [u8; 16] = random_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An X-Ray style trace header: `Root=1-TIME-RANDOM;Parent=...;Sampled=0`.
fn trace_id() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let random: [u8; 20] = random_bytes();
    let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("Root=1-{seconds:08x}-{};Parent={};Sampled=0", &hex[..24], &hex[24..40])
}

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let value = (u32::from(group[0]) << 16)
            | (u32::from(group.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(group.get(2).copied().unwrap_or(0));
        for index in 0..4 {
            if index <= group.len() {
                text.push(char::from(ALPHABET[(value >> (18 - 6 * index) & 0x3f) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_paths_name_functions_by_name_or_arn() {
        assert_eq!(function_name("/2015-03-31/functions/hello/invocations"), Some("hello".into()));
        assert_eq!(
            function_name("/2015-03-31/functions/hello:prod/invocations?Qualifier=x"),
            Some("hello".into())
        );
        assert_eq!(
            function_name(
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Ahi/invocations"
            ),
            Some("hi".into())
        );
        assert_eq!(function_name("/2015-03-31/functions/a/b/invocations"), None);
        assert_eq!(function_name("/2015-03-31/functions//invocations"), None);
        assert_eq!(function_name("/2015-03-31/functions/%zz/invocations"), None);
        assert_eq!(function_name("/hello/invocations"), None);
    }

    #[test]
    fn base64_follows_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn request_ids_are_version_4_uuids() {
        let (one, two) = (request_id(), request_id());
        assert_ne!(one, two);
        assert_eq!(one.len(), 36);
        assert_eq!(&one[14..15], "4");
        assert!(trace_id().starts_with("Root=1-"));
    }
}
