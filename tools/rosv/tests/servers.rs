//! Real servers, unmodified, in rosv: nginx, Redis, a Node.js and a Java HTTP
//! server, each booted with a card on QEMU's user-mode network and reached
//! from the host through a forwarded port, then stopped as a user would:
//! SIGTERM to `rosv`, which passes it to the server (which may shut down
//! cleanly) and takes the VM down with it. Each test is skipped, visibly,
//! when the host lacks the server's package.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Guest, free_port, path, skip};

/// How long a server may take to boot and answer under TCG.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The status of a server SIGTERM ended (it has no handler for it).
const STOPPED_BY_SIGTERM: i32 = 128 + 15;
/// The status of a server that shut down cleanly on SIGTERM.
const SHUT_DOWN: i32 = 0;

/// Sends `request` to the host's `port` and reads the whole answer, trying
/// again until the server in the guest answers at all (QEMU accepts the
/// connection before the guest listens, then drops it).
fn ask(port: u16, request: &[u8]) -> Result<String, String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            stream.write_all(request)?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer)?;
            Ok(String::from_utf8_lossy(&answer).into_owned())
        })();
        match attempt {
            Ok(answer) if !answer.is_empty() => return Ok(answer),
            Ok(_) => last_error = String::from("the connection closed without an answer"),
            Err(error) => last_error = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(last_error)
}

/// An HTTP/1.0 GET of `target`.
fn get(port: u16, target: &str) -> Result<String, String> {
    ask(port, format!("GET {target} HTTP/1.0\r\nHost: rosv\r\n\r\n").as_bytes())
}

/// Stops the guest with SIGTERM to `rosv`, which passes it to the server;
/// checks that rosv ended with the server's `status`. Returns what the
/// server printed.
fn stop(guest: Guest, status: i32) -> String {
    let (ended, console) = guest.terminate();
    assert_eq!(ended, Some(status), "rosv did not end with the server on SIGTERM; console:\n{console}");
    console
}

/// Whether `program` exists on the host; says why the test is skipped
/// otherwise.
fn available(test: &str, program: &str, package: &str) -> bool {
    if Path::new(program).is_file() {
        return true;
    }
    skip(test, &format!("{program} is missing (apt-get install {package})"));
    false
}

#[test]
fn nginx_serves_files_and_answers_requests() {
    let test = "nginx_serves_files_and_answers_requests";
    if !available(test, "/usr/sbin/nginx", "nginx-light") {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let body: String =
        (0..2000).map(|line| format!("line {line} of a page nginx reads from ROFS\n")).collect();
    let image = support::nginx_image(directory.path(), &body);

    let port = free_port();
    let forward = format!("{port}:8080");
    let guest = Guest::start(&["--memory", "256M", "--net", "user", "--forward", &forward, path(&image)]);
    let hello = get(port, "/hello");
    let page_answer = get(port, "/index.html");
    let missing = get(port, "/missing");
    // nginx shuts down cleanly on SIGTERM.
    stop(guest, SHUT_DOWN);
    let hello = hello.expect("nginx answers");
    assert!(hello.starts_with("HTTP/1.1 200 OK\r\n") && hello.ends_with("hello from nginx\n"), "{hello}");
    let page_answer = page_answer.expect("nginx serves the page");
    assert!(page_answer.starts_with("HTTP/1.1 200 OK\r\n"), "{page_answer}");
    assert!(page_answer.ends_with(&body), "the page arrives whole ({} bytes)", page_answer.len());
    let missing = missing.expect("nginx answers for a missing file");
    assert!(missing.starts_with("HTTP/1.1 404 Not Found\r\n"), "{missing}");
}

#[test]
fn redis_stores_and_returns_values() {
    let test = "redis_stores_and_returns_values";
    if !available(test, "/usr/bin/redis-server", "redis-server") {
        return;
    }
    let port = free_port();
    let forward = format!("{port}:6379");
    let mut guest = Guest::start(&[
        "--memory",
        "256M",
        "--net",
        "user",
        "--forward",
        &forward,
        "--exec",
        "/usr/bin/redis-server",
        "--",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ]);
    if !guest.wait_for("Ready to accept connections", ANSWER_TIMEOUT) {
        guest.abandon("Redis did not start");
    }
    // One connection, several commands in the inline protocol; QUIT ends it.
    let answer =
        ask(port, b"PING\r\nSET greeting rosv\r\nINCR counter\r\nINCR counter\r\nGET greeting\r\nQUIT\r\n");
    let console = stop(guest, SHUT_DOWN);
    assert!(console.contains("Received SIGTERM"), "Redis saw the signal itself: {console}");
    let answer = answer.expect("Redis answers");
    assert_eq!(answer, "+PONG\r\n+OK\r\n:1\r\n:2\r\n$4\r\nrosv\r\n+OK\r\n");
}

/// A Node.js server that names its interfaces' addresses and answers each
/// request with the address, its URL and the processors Node.js counts.
const NODE_SERVER: &str = "
const http = require('http');
const os = require('os');
const address = (os.networkInterfaces().eth0 || []).find((entry) => entry.family === 'IPv4');
const server = http.createServer((request, response) => {
  response.end(JSON.stringify({ url: request.url, address: address && address.address, cpus: os.cpus().length }) + '\\n');
});
server.listen(3000, '0.0.0.0', () => console.log('listening on 3000'));
";

#[test]
fn a_node_http_server_answers() {
    let test = "a_node_http_server_answers";
    let Some(node) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|directory| directory.join("node")).find(|node| node.is_file())
    }) else {
        skip(test, "node is not on PATH");
        return;
    };
    let port = free_port();
    let forward = format!("{port}:3000");
    let mut guest = Guest::start(&[
        "--memory",
        "512M",
        "--net",
        "user",
        "--forward",
        &forward,
        "--exec",
        path(&node),
        "--",
        "-e",
        NODE_SERVER,
    ]);
    if !guest.wait_for("listening on 3000", ANSWER_TIMEOUT) {
        guest.abandon("the Node.js server did not start");
    }
    let answers: Vec<_> = (0..3).map(|index| get(port, &format!("/request/{index}"))).collect();
    // Node.js has no SIGTERM handler here: the signal ends it.
    stop(guest, STOPPED_BY_SIGTERM);
    for (index, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("node answers");
        let expected = format!("{{\"url\":\"/request/{index}\",\"address\":\"10.0.2.15\",\"cpus\":1}}\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with(&expected), "{answer}");
    }
}

#[test]
fn node_starts_in_a_small_guest() {
    // Node.js's executable is about 100 MB; it is paged in on demand, so a
    // guest much smaller than the file runs it.
    let test = "node_starts_in_a_small_guest";
    let Some(node) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|directory| directory.join("node")).find(|node| node.is_file())
    }) else {
        skip(test, "node is not on PATH");
        return;
    };
    let size = std::fs::metadata(&node).map(|metadata| metadata.len()).unwrap_or(0);
    let output = support::rosv_run(&[
        "--memory",
        "96M",
        "--exec",
        path(&node),
        "--",
        "-e",
        "console.log('node ran', 6 * 7)",
    ]);
    let stdout = support::text(&output.stdout);
    assert_eq!(stdout, "node ran 42\n", "{}", support::text(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
    println!("node's executable: {} MiB, the guest: 96 MiB", size >> 20);
}

/// A Java HTTP server (the JDK's own `com.sun.net.httpserver`).
const JAVA_SERVER: &str = r#"
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
public class Server {
    public static void main(String[] args) throws Exception {
        HttpServer server = HttpServer.create(new InetSocketAddress(8000), 0);
        server.createContext("/", exchange -> {
            byte[] body = ("java saw " + exchange.getRequestURI() + "\n").getBytes();
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        System.out.println("listening on 8000");
    }
}
"#;

#[test]
fn a_java_http_server_answers() {
    let Some((_directory, image)) = support::java_image("a_java_http_server_answers", "Server", JAVA_SERVER)
    else {
        return;
    };
    let port = free_port();
    let forward = format!("{port}:8000");
    let mut guest = Guest::start(&[
        "--cpus",
        "2",
        "--memory",
        "1G",
        "--net",
        "user",
        "--forward",
        &forward,
        path(&image),
    ]);
    if !guest.wait_for("listening on 8000", ANSWER_TIMEOUT) {
        guest.abandon("the Java server did not start");
    }
    let answer = get(port, "/from/the/host");
    // The JVM runs its shutdown hooks, then ends with SIGTERM's status.
    stop(guest, STOPPED_BY_SIGTERM);
    let answer = answer.expect("java answers");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("java saw /from/the/host\n"),
        "{answer}"
    );
}
