//! What the function host's boot tests share: a client, a running
//! `rosv serve`, images of guest programs.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::guests::{self, Variant};
use crate::support::{free_port, path, rosv, text};

/// How long any one answer may take (a cold start under TCG included).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// An answer from the host.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// A client connection to the host, kept alive between requests.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream =
            TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).expect("connect to the host");
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).expect("set a read timeout");
        Client { writer: stream.try_clone().expect("clone the stream"), reader: BufReader::new(stream) }
    }

    /// Sends `request` as it is and reads one answer.
    pub fn send(&mut self, request: &[u8]) -> Answer {
        self.writer.write_all(request).expect("send the request");
        self.read_answer(request.starts_with(b"HEAD "))
    }

    /// Reads an answer, which has no body after a HEAD request.
    pub fn read_answer(&mut self, is_after_head: bool) -> Answer {
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).expect("read the status line");
        let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| {
            panic!("not an HTTP status line: {status_line:?}");
        });
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read a header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(key, _): &&(String, String)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let mut body = Vec::new();
        if is_after_head {
            // The length is that of what a GET would have returned.
        } else if let Some(length) = find("content-length") {
            body.resize(length.parse().expect("a length"), 0);
            self.reader.read_exact(&mut body).expect("read the body");
        } else if find("transfer-encoding").is_some() {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).expect("read a chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).expect("read a chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            self.reader.read_to_end(&mut body).expect("read the body");
        }
        Answer { status, headers, body: text(&body) }
    }
}

/// A GET of `target` on a fresh connection.
pub fn get(port: u16, target: &str) -> Answer {
    Client::connect(port)
        .send(format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes())
}

/// A POST of `body` to `target` with `headers` (each ending in CRLF), on
/// a fresh connection.
pub fn post(port: u16, target: &str, headers: &str, body: &[u8]) -> Answer {
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    Client::connect(port).send(&request)
}

/// The host's counters of `function`.
pub fn stats(port: u16, function: &str) -> serde_json::Value {
    let answer = get(port, "/_rosv/stats");
    assert_eq!(answer.status, 200, "{answer:?}");
    let all: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON statistics");
    all["functions"][function].clone()
}

/// An image of `program` in `directory`, run with `arguments`.
pub fn image(directory: &Path, name: &str, program: &Path, arguments: &[&str]) -> PathBuf {
    let image = directory.join(name);
    let mut all = vec!["build", "--exec", path(program), "-o", path(&image), "--"];
    all.extend_from_slice(arguments);
    assert!(rosv(&all).status.success(), "rosv build");
    image
}

pub fn http_echo() -> PathBuf {
    guests::c_program("http-echo", Variant::MuslStatic)
}

/// A running `rosv serve`, stopped with SIGTERM when dropped.
pub struct Host {
    pub child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
    _directory: tempfile::TempDir,
}

impl Host {
    /// Starts `rosv serve` with `configuration` (written next to the
    /// images in `directory`) and waits until it accepts connections.
    pub fn start(directory: tempfile::TempDir, configuration: &str) -> Host {
        Host::start_with(directory, configuration, &[])
    }

    /// Like [`Host::start`], with more options for `rosv serve`.
    pub fn start_with(directory: tempfile::TempDir, configuration: &str, options: &[&str]) -> Host {
        let file = directory.path().join("functions.toml");
        std::fs::write(&file, configuration).expect("write the configuration");
        let log = directory.path().join("host.log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_rosv"))
            .args(["serve", "--config", path(&file), "--listen", &format!("127.0.0.1:{port}")])
            .args(options)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("start rosv serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "rosv serve does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Host { child: Some(child), port, log, _directory: directory }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the host to exit; returns its status.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait for rosv serve") {
                println!("--- host log\n{}", self.log());
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rosv serve did not exit on SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The configuration of one http-echo function, with `extra` lines.
pub fn echo_function(name: &str, image: &Path, extra: &str) -> String {
    format!("[[function]]\nname = \"{name}\"\nimage = \"{}\"\nport = 8080\n{extra}\n", image.display())
}
