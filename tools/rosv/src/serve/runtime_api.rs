//! The Lambda Runtime API, served to the runtime in one VM.
//!
//! A Lambda function's runtime (a custom `bootstrap`, or the runtime
//! interface clients `awslambdaric` and `aws-lambda-ric`) asks the host
//! for work at `AWS_LAMBDA_RUNTIME_API`, which is `10.0.2.2:PORT`: QEMU's
//! user network takes the guest's connections to 10.0.2.2 to the host's
//! loopback, where each instance's [`RuntimeApi`] listens on its own port,
//! so the port says which VM asks. The paths and headers are those of the
//! 2018-06-01 API:
//!
//! - `GET /2018-06-01/runtime/invocation/next` waits for an invocation and
//!   answers with its event and the `Lambda-Runtime-*` headers; the first
//!   such request says the runtime is ready;
//! - `POST /2018-06-01/runtime/invocation/ID/response` and `.../ID/error`
//!   give the invocation's outcome;
//! - `POST /2018-06-01/runtime/init/error` says the runtime cannot start.
//!
//! The function host hands invocations over with [`RuntimeApi::invoke`].
//!
//! On the built-in monitor and Firecracker, which have no user network,
//! the runtime finds the API at `127.0.0.1:PORT` in the guest, where the
//! kernel listens (`--vsock-listen`) and joins each connection to a vsock
//! connection to the host, which the VM's vsock device turns into a
//! connection to the Unix socket `<device socket>_PORT`
//! ([`RuntimeApi::start_on_vsock`]): one Unix connection per TCP
//! connection, served like the loopback's.
//!
//! A function started from a snapshot on QEMU reaches its Runtime API
//! another way
//! ([`RuntimeApi::start_on_socket`]): QEMU's `guestfwd` takes the guest's
//! connections to one address into a character device, a Unix socket the
//! host listens on, whose one stream carries them in turn. Unlike
//! connections to the host's loopback, the guest's connection there is
//! part of the state QEMU saves and restores; a VM restored from a snapshot
//! taken while its runtime waited for an invocation still waits on that
//! connection, so the host answers that pending request first.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::http::{self, Header, Reader, request_framing};

/// The API's version prefix.
const PREFIX: &str = "/2018-06-01/runtime/";
/// The largest response or error a runtime may post: Lambda's limit on
/// synchronous payloads.
pub const PAYLOAD_LIMIT: u64 = 6 * 1024 * 1024;
/// How often a waiting invocation checks that its VM still runs.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(50);
/// The most connections one VM's runtime may hold open at once (a thread
/// each); more are closed at once.
const CONNECTION_LIMIT: usize = 32;

/// One invocation as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// The event, JSON.
    pub payload: Vec<u8>,
    /// `Lambda-Runtime-Deadline-Ms`: milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
}

/// What the runtime posted for an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The function's result.
    Response(Vec<u8>),
    /// The function failed: the error document and its type, if given in
    /// `Lambda-Runtime-Function-Error-Type`.
    Error {
        /// The error document (`{"errorMessage": ..., "errorType": ...}`).
        body: Vec<u8>,
        /// The header's value.
        error_type: Option<String>,
    },
}

/// Why no outcome came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoOutcome {
    /// The deadline passed.
    TimedOut,
    /// The VM ended (or the instance was stopped).
    Ended,
    /// The runtime reported that it cannot start, with its document.
    InitError(String),
}

#[derive(Debug, Default)]
struct State {
    /// The runtime has asked for an invocation at least once.
    is_ready: bool,
    /// The next invocation, until the runtime takes it.
    pending: Option<Invocation>,
    /// The request id the runtime works on.
    current: Option<String>,
    /// The outcome of the latest invocation, with its request id.
    outcome: Option<(String, Outcome)>,
    init_error: Option<String>,
    is_closed: bool,
}

/// The Runtime API of one VM.
#[derive(Debug)]
pub struct RuntimeApi {
    /// The loopback port it listens on (0 on a Unix socket).
    pub port: u16,
    /// The Unix socket it listens on, for QEMU's `guestfwd`.
    pub socket: Option<PathBuf>,
    function_arn: String,
    connections: std::sync::atomic::AtomicUsize,
    state: Mutex<State>,
    changed: Condvar,
}

impl RuntimeApi {
    /// Listens on a free loopback port for the runtime of the function
    /// `function_arn` names.
    pub fn start(function_arn: String) -> io::Result<Arc<RuntimeApi>> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let api = Arc::new(RuntimeApi {
            port,
            socket: None,
            function_arn,
            connections: std::sync::atomic::AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let server = api.clone();
        std::thread::Builder::new().name("runtime-api".into()).spawn(move || server.accept(listener))?;
        Ok(api)
    }

    /// Listens on the Unix socket `path`, where a VM's vsock device
    /// connects once for each connection its runtime makes.
    pub fn start_on_vsock(function_arn: String, path: &Path) -> io::Result<Arc<RuntimeApi>> {
        let listener = UnixListener::bind(path)?;
        let api = Arc::new(RuntimeApi {
            port: 0,
            socket: Some(path.to_path_buf()),
            function_arn,
            connections: std::sync::atomic::AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let server = api.clone();
        std::thread::Builder::new().name("runtime-api".into()).spawn(move || server.accept(listener))?;
        Ok(api)
    }

    /// Listens on the Unix socket `path` for QEMU's `guestfwd` stream.
    /// With `is_restored`, the VM comes from a snapshot taken while its
    /// runtime waited for an invocation: the stream's first answer is to
    /// that request, and the runtime counts as ready.
    pub fn start_on_socket(
        function_arn: String,
        path: &Path,
        is_restored: bool,
    ) -> io::Result<Arc<RuntimeApi>> {
        let listener = UnixListener::bind(path)?;
        let api = Arc::new(RuntimeApi {
            port: 0,
            socket: Some(path.to_path_buf()),
            function_arn,
            connections: std::sync::atomic::AtomicUsize::new(0),
            state: Mutex::new(State { is_ready: is_restored, ..State::default() }),
            changed: Condvar::new(),
        });
        let server = api.clone();
        std::thread::Builder::new().name("runtime-api".into()).spawn(move || {
            let mut is_pending = is_restored;
            for stream in listener.incoming() {
                if server.lock().is_closed {
                    return;
                }
                let Ok(stream) = stream else { continue };
                // One stream at a time: QEMU connects once.
                let _ = server.serve_stream(stream, is_pending);
                is_pending = false;
            }
        })?;
        Ok(api)
    }

    /// Serves QEMU's `guestfwd` stream, which carries the guest's
    /// connections one after another, so it is read on after a request
    /// that closes its connection. With `is_pending`, a request for the
    /// next invocation is answered first.
    fn serve_stream(&self, stream: UnixStream, is_pending: bool) -> Result<(), http::HttpError> {
        let mut writer = stream.try_clone()?;
        if is_pending {
            self.next(&mut writer)?;
        }
        let mut reader = Reader::new(stream);
        loop {
            self.serve_request(&mut reader, &mut writer)?;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>, timeout: Duration) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(state, timeout)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0)
    }

    /// Whether the runtime has asked for its first invocation.
    pub fn is_ready(&self) -> bool {
        self.lock().is_ready
    }

    /// Waits until the runtime is ready, its VM ends (`is_alive` false) or
    /// `deadline` passes.
    pub fn wait_until_ready(&self, deadline: Instant, is_alive: impl Fn() -> bool) -> Result<(), NoOutcome> {
        let mut state = self.lock();
        loop {
            if let Some(error) = &state.init_error {
                return Err(NoOutcome::InitError(error.clone()));
            }
            if state.is_ready {
                return Ok(());
            }
            if state.is_closed || !is_alive() {
                return Err(NoOutcome::Ended);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NoOutcome::TimedOut);
            }
            state = self.wait(state, (deadline - now).min(LIVENESS_INTERVAL));
        }
    }

    /// Hands `invocation` to the runtime and waits for its outcome until
    /// `deadline`, or until the VM ends (`is_alive` false).
    pub fn invoke(
        &self,
        invocation: Invocation,
        deadline: Instant,
        is_alive: impl Fn() -> bool,
    ) -> Result<Outcome, NoOutcome> {
        let request_id = invocation.request_id.clone();
        let mut state = self.lock();
        state.pending = Some(invocation);
        self.changed.notify_all();
        loop {
            if let Some((id, _)) = &state.outcome
                && *id == request_id
                && let Some((_, outcome)) = state.outcome.take()
            {
                return Ok(outcome);
            }
            if let Some(error) = &state.init_error {
                return Err(NoOutcome::InitError(error.clone()));
            }
            if state.is_closed || !is_alive() {
                return Err(NoOutcome::Ended);
            }
            let now = Instant::now();
            if now >= deadline {
                // The runtime may take it still; this VM is replaced anyway.
                state.pending = None;
                return Err(NoOutcome::TimedOut);
            }
            state = self.wait(state, (deadline - now).min(LIVENESS_INTERVAL));
        }
    }

    /// Stops listening and ends the runtime's waiting requests.
    pub fn close(&self) {
        self.lock().is_closed = true;
        self.changed.notify_all();
        // Wake the accepting thread, which then sees the flag.
        match &self.socket {
            Some(path) => {
                let _ = UnixStream::connect(path);
                let _ = std::fs::remove_file(path);
            }
            None => {
                let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
            }
        }
    }

    fn accept<L: Listener>(self: Arc<Self>, listener: L) {
        loop {
            let stream = listener.accept_stream();
            if self.lock().is_closed {
                return;
            }
            let Ok(stream) = stream else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            use std::sync::atomic::Ordering;
            if self.connections.fetch_add(1, Ordering::SeqCst) >= CONNECTION_LIMIT {
                self.connections.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let api = self.clone();
            let spawned =
                std::thread::Builder::new().name("runtime-api-connection".into()).spawn(move || {
                    let _ = api.serve_connection(stream);
                    api.connections.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                self.connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Serves one connection from the runtime (HTTP/1.1, kept alive).
    fn serve_connection(&self, stream: impl Connection) -> Result<(), http::HttpError> {
        let mut writer = stream.duplicate()?;
        let mut reader = Reader::new(stream);
        while self.serve_request(&mut reader, &mut writer)? {}
        Ok(())
    }

    /// Reads and answers one request; returns whether the connection
    /// stays open.
    fn serve_request(
        &self,
        reader: &mut Reader<impl Read>,
        writer: &mut impl Write,
    ) -> Result<bool, http::HttpError> {
        {
            let head = reader.read_request_head()?;
            let body = match request_framing(&head.headers)
                .and_then(|framing| reader.read_body(framing, PAYLOAD_LIMIT))
            {
                Ok(body) => body,
                Err(http::HttpError::BodyTooLarge(limit)) => {
                    let text = format!("the payload is larger than {limit} bytes");
                    error_response(writer, 413, "RequestEntityTooLarge", &text)?;
                    return Ok(false);
                }
                Err(error) => return Err(error),
            };
            let keep_alive = head.wants_keep_alive();
            let error_type =
                http::values(&head.headers, "lambda-runtime-function-error-type").next().map(str::to_string);
            let path = head.target.split('?').next().unwrap_or_default().to_string();
            self.answer(writer, &head.method, &path, body, error_type)?;
            Ok(keep_alive)
        }
    }

    /// Answers one request of the runtime.
    fn answer(
        &self,
        writer: &mut impl Write,
        method: &str,
        path: &str,
        body: Vec<u8>,
        error_type: Option<String>,
    ) -> io::Result<()> {
        let route = path.strip_prefix(PREFIX).unwrap_or(path);
        let is_get = method.eq_ignore_ascii_case("GET");
        let is_post = method.eq_ignore_ascii_case("POST");
        match route.split('/').collect::<Vec<_>>().as_slice() {
            ["invocation", "next"] if is_get => self.next(writer),
            ["invocation", id, "response"] if is_post => self.post(writer, id, Outcome::Response(body)),
            ["invocation", id, "error"] if is_post => {
                self.post(writer, id, Outcome::Error { body, error_type })
            }
            ["init", "error"] if is_post => {
                let mut state = self.lock();
                state.init_error = Some(String::from_utf8_lossy(&body).into_owned());
                self.changed.notify_all();
                drop(state);
                accepted(writer)
            }
            _ if path.starts_with(PREFIX) => {
                error_response(writer, 404, "NotFound", &format!("the Runtime API has no {method} {path}"))
            }
            _ => error_response(writer, 404, "NotFound", "the Runtime API is under /2018-06-01/runtime/"),
        }
    }

    /// `GET .../invocation/next`: waits for an invocation.
    fn next(&self, writer: &mut impl Write) -> io::Result<()> {
        let mut state = self.lock();
        state.is_ready = true;
        self.changed.notify_all();
        let invocation = loop {
            if state.is_closed {
                return error_response(writer, 410, "Closed", "this VM is stopping");
            }
            if let Some(invocation) = state.pending.take() {
                state.current = Some(invocation.request_id.clone());
                break invocation;
            }
            state = self.wait(state, Duration::from_secs(1));
        };
        drop(state);
        let headers = [
            Header::new("Content-Type", "application/json"),
            Header::new("Lambda-Runtime-Aws-Request-Id", invocation.request_id.as_str()),
            Header::new("Lambda-Runtime-Deadline-Ms", invocation.deadline_ms.to_string()),
            Header::new("Lambda-Runtime-Invoked-Function-Arn", self.function_arn.as_str()),
            Header::new("Lambda-Runtime-Trace-Id", invocation.trace_id.as_str()),
        ];
        http::write_message(writer, 200, &headers, &invocation.payload)
    }

    /// `POST .../invocation/ID/response` or `.../error`.
    fn post(&self, writer: &mut impl Write, id: &str, outcome: Outcome) -> io::Result<()> {
        let mut state = self.lock();
        if state.current.as_deref() != Some(id) {
            drop(state);
            let text = format!("no invocation {id} is in progress");
            return error_response(writer, 400, "InvalidRequestID", &text);
        }
        state.current = None;
        state.outcome = Some((id.to_string(), outcome));
        self.changed.notify_all();
        drop(state);
        accepted(writer)
    }
}

/// 202 with the body Lambda's Runtime API sends.
/// Where the runtime's connections arrive: the loopback, or the Unix
/// socket a vsock device connects to.
trait Listener {
    /// The connection to serve next.
    type Stream: Connection;
    /// Waits for the next connection.
    fn accept_stream(&self) -> io::Result<Self::Stream>;
}

/// One connection of the runtime's.
trait Connection: Read + Write + Send + 'static {
    /// A second handle on the connection, to write while reading.
    fn duplicate(&self) -> io::Result<Self>
    where
        Self: Sized;
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    fn accept_stream(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.accept()?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

impl Connection for TcpStream {
    fn duplicate(&self) -> io::Result<TcpStream> {
        self.try_clone()
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    fn accept_stream(&self) -> io::Result<UnixStream> {
        self.accept().map(|(stream, _)| stream)
    }
}

impl Connection for UnixStream {
    fn duplicate(&self) -> io::Result<UnixStream> {
        self.try_clone()
    }
}

fn accepted(writer: &mut impl Write) -> io::Result<()> {
    let headers = [Header::new("Content-Type", "application/json")];
    http::write_message(writer, 202, &headers, br#"{"status":"OK"}"#)
}

/// An error in Lambda's shape.
pub fn error_response(
    writer: &mut impl Write,
    status: u16,
    error_type: &str,
    message: &str,
) -> io::Result<()> {
    let body = error_document(error_type, message);
    let headers =
        [Header::new("Content-Type", "application/json"), Header::new("X-Amzn-ErrorType", error_type)];
    http::write_message(writer, status, &headers, body.as_bytes())
}

/// `{"errorMessage": message, "errorType": error_type}`.
pub fn error_document(error_type: &str, message: &str) -> String {
    serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn request(port: u16, text: &str) -> String {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        stream.write_all(text.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    fn invocation(id: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            payload: br#"{"n":1}"#.to_vec(),
            deadline_ms: 1_700_000_000_000,
            trace_id: "Root=1-0-0".into(),
        }
    }

    #[test]
    fn a_runtime_takes_invocations_and_posts_their_outcomes() {
        let api = RuntimeApi::start("arn:aws:lambda:us-east-1:000000000000:function:f".into()).unwrap();
        assert!(!api.is_ready());
        let port = api.port;
        let runtime = std::thread::spawn(move || {
            let next = request(
                port,
                "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            );
            let wrong = request(
                port,
                "POST /2018-06-01/runtime/invocation/other/response HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
            let posted = request(
                port,
                "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\"ok\"",
            );
            (next, wrong, posted)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        api.wait_until_ready(deadline, || true).unwrap();
        let outcome = api.invoke(invocation("id-1"), deadline, || true).unwrap();
        assert_eq!(outcome, Outcome::Response(b"\"ok\"".to_vec()));
        let (next, wrong, posted) = runtime.join().unwrap();
        assert!(next.starts_with("HTTP/1.1 200 OK\r\n"), "{next}");
        for header in [
            "Lambda-Runtime-Aws-Request-Id: id-1\r\n",
            "Lambda-Runtime-Deadline-Ms: 1700000000000\r\n",
            "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n",
            "Lambda-Runtime-Trace-Id: Root=1-0-0\r\n",
        ] {
            assert!(next.contains(header), "{header:?} in {next}");
        }
        assert!(next.ends_with("\r\n\r\n{\"n\":1}"), "{next}");
        assert!(
            wrong.starts_with("HTTP/1.1 400 ") && wrong.contains("\"errorType\":\"InvalidRequestID\""),
            "{wrong}"
        );
        assert!(
            posted.starts_with("HTTP/1.1 202 Accepted\r\n") && posted.ends_with("{\"status\":\"OK\"}"),
            "{posted}"
        );
        api.close();
    }

    #[test]
    fn errors_timeouts_and_init_errors_are_reported() {
        let api = RuntimeApi::start("arn".into()).unwrap();
        let port = api.port;
        let runtime = std::thread::spawn(move || {
            request(
                port,
                "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            );
            request(
                port,
                "POST /2018-06-01/runtime/invocation/e/error HTTP/1.1\r\nHost: h\r\nLambda-Runtime-Function-Error-Type: Unhandled\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            )
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let outcome = api.invoke(invocation("e"), deadline, || true).unwrap();
        assert_eq!(outcome, Outcome::Error { body: b"{}".to_vec(), error_type: Some("Unhandled".into()) });
        runtime.join().unwrap();
        let soon = Instant::now() + Duration::from_millis(100);
        assert_eq!(api.invoke(invocation("t"), soon, || true), Err(NoOutcome::TimedOut));
        assert_eq!(api.invoke(invocation("d"), deadline, || false), Err(NoOutcome::Ended));
        let answer = request(
            port,
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbad!",
        );
        assert!(answer.starts_with("HTTP/1.1 202 "), "{answer}");
        assert_eq!(api.wait_until_ready(deadline, || true), Err(NoOutcome::InitError("bad!".into())));
        let unknown =
            request(port, "GET /2018-06-01/runtime/nothing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert!(unknown.starts_with("HTTP/1.1 404 ") && unknown.contains("errorMessage"), "{unknown}");
        api.close();
    }
}
