//! vsock between the host and guests on the built-in monitor and
//! Firecracker: the host side is a Unix socket speaking Firecracker's
//! hybrid protocol (`CONNECT <port>\n`, `OK <port>\n`; the guest's
//! connections to host port P reach `<socket>_P`).
//!
//! The guest is `tests/guest/vsock-free.c`, which needs no C library, so
//! these tests run where KVM emulates ring 0 too. They need a usable
//! `/dev/kvm` (and Firecracker on PATH for its own test) and say that they
//! were skipped otherwise.

mod guests;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Guest, firecracker_available, path, skip};

/// Whether `/dev/kvm` can be used here; says why not otherwise.
fn kvm_available(test: &str) -> bool {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(test, "/dev/kvm cannot be opened");
        return false;
    }
    true
}

/// Connects to the guest's vsock `port` through the device's socket,
/// trying again while the guest does not listen yet (the device then
/// closes the stream without an `OK`). Returns the stream after the `OK`
/// line, and the host port it names.
fn connect_vsock(socket: &Path, port: u32, limit: Duration) -> (UnixStream, u32) {
    let deadline = Instant::now() + limit;
    loop {
        let attempt = UnixStream::connect(socket).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            stream.write_all(format!("CONNECT {port}\n").as_bytes())?;
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while byte[0] != b'\n' {
                if stream.read(&mut byte)? == 0 {
                    return Err(std::io::ErrorKind::ConnectionRefused.into());
                }
                line.push(byte[0]);
            }
            Ok((stream, String::from_utf8_lossy(&line).into_owned()))
        });
        match attempt {
            Ok((stream, line)) => {
                let host_port = line.strip_prefix("OK ").and_then(|port| port.trim().parse().ok());
                let host_port = host_port.unwrap_or_else(|| panic!("the device answered {line:?}"));
                return (stream, host_port);
            }
            Err(error) if Instant::now() > deadline => panic!("no vsock connection to port {port}: {error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Boots the echo guest on `hypervisor` with a vsock device, sends it a
/// line over vsock and checks the answer; returns the host port the
/// device gave the connection, whether its socket file is left after the
/// VM ended, the guest's exit status and its console.
fn echo_over_vsock(hypervisor: &str) -> (u32, bool, Option<i32>, String) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let program = guests::vsock_free();
    let mut guest = Guest::start(&[
        "--hypervisor",
        hypervisor,
        "--vsock",
        path(&socket),
        "--exec",
        path(&program),
        "--",
        "serve",
        "5000",
    ]);
    if !guest.wait_for("listening", Duration::from_secs(120)) {
        guest.abandon("the guest never listened");
    }
    let (mut stream, host_port) = connect_vsock(&socket, 5000, Duration::from_secs(30));
    stream.write_all(b"ping over vsock\n").expect("send a line");
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).expect("read the answer");
    assert_eq!(answer, "echo: ping over vsock\n");
    drop(stream);
    let (status, console) = guest.finish();
    (host_port, socket.exists(), status, console)
}

#[test]
fn a_guest_serves_the_host_over_vsock_on_the_builtin_monitor() {
    let test = "a_guest_serves_the_host_over_vsock_on_the_builtin_monitor";
    if !kvm_available(test) {
        return;
    }
    let (host_port, socket_remains, status, console) = echo_over_vsock("builtin");
    assert!(host_port >= 1 << 30, "host ports start at 2^30, as Firecracker's: {host_port}");
    assert!(console.contains("cid 3\n"), "the guest learnt its CID: {console}");
    assert!(console.contains("served\n"), "the guest saw the stream end: {console}");
    assert_eq!(status, Some(0), "{console}");
    assert!(!socket_remains, "the device removes its socket when the VM ends");
}

#[test]
fn a_guest_connects_to_the_host_over_vsock_on_the_builtin_monitor() {
    let test = "a_guest_connects_to_the_host_over_vsock_on_the_builtin_monitor";
    if !kvm_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let listener = UnixListener::bind(directory.path().join("v.sock_6000")).expect("listen for the guest");
    let host = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the guest connects");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("a timeout");
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).expect("read the guest's line");
        (&stream).write_all(format!("back at you, {line}").as_bytes()).expect("answer");
        line
    });
    let program = guests::vsock_free();
    let mut guest = Guest::start(&[
        "--hypervisor",
        "builtin",
        "--vsock",
        path(&socket),
        "--exec",
        path(&program),
        "--",
        "connect",
        "6000",
        "hello host",
    ]);
    if !guest.wait_for("received: ", Duration::from_secs(120)) {
        guest.abandon("the guest received nothing");
    }
    let (status, console) = guest.finish();
    assert_eq!(host.join().expect("the host thread"), "hello host\n");
    assert!(console.contains("received: back at you, hello host\n"), "{console}");
    assert_eq!(status, Some(0), "{console}");
}

#[test]
fn a_connection_to_a_port_nobody_listens_on_is_refused() {
    let test = "a_connection_to_a_port_nobody_listens_on_is_refused";
    if !kvm_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let program = guests::vsock_free();
    // Nobody listens at v.sock_7000: the guest's connect is refused.
    let mut guest = Guest::start(&[
        "--hypervisor",
        "builtin",
        "--vsock",
        path(&socket),
        "--exec",
        path(&program),
        "--",
        "connect",
        "7000",
        "anyone?",
    ]);
    if !guest.wait_for("vsock-free: connect failed: 111", Duration::from_secs(120)) {
        guest.abandon("the connect was not refused with ECONNREFUSED");
    }
    let (status, _) = guest.finish();
    assert_eq!(status, Some(1));
}

#[test]
fn vsock_forwarding_reaches_an_http_server_on_the_guests_loopback() {
    let test = "vsock_forwarding_reaches_an_http_server_on_the_guests_loopback";
    if !kvm_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let program = guests::vsock_free();
    let mut guest = Guest::start(&[
        "--hypervisor",
        "builtin",
        "--vsock",
        path(&socket),
        "--kernel-args=--vsock-forward=8080:8081",
        "--exec",
        path(&program),
        "--",
        "http",
        "8081",
    ]);
    if !guest.wait_for("serving http", Duration::from_secs(120)) {
        guest.abandon("the guest's server never started");
    }
    for round in 1..=3 {
        let (mut stream, _) = connect_vsock(&socket, 8080, Duration::from_secs(30));
        stream.write_all(b"GET / HTTP/1.1\r\nHost: guest\r\n\r\n").expect("send the request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read the answer to its end");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with(&format!("hello from vsock-free {round}\n")), "{answer}");
    }
    let _ = guest.terminate();
}

#[test]
fn vsock_forwarding_carries_the_hosts_half_close_to_the_program() {
    let test = "vsock_forwarding_carries_the_hosts_half_close_to_the_program";
    if !kvm_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let program = guests::vsock_free();
    let mut guest = Guest::start(&[
        "--hypervisor",
        "builtin",
        "--vsock",
        path(&socket),
        "--kernel-args=--vsock-forward=8080:8081",
        "--exec",
        path(&program),
        "--",
        "tcp-serve",
        "8081",
    ]);
    if !guest.wait_for("serving tcp", Duration::from_secs(120)) {
        guest.abandon("the guest's server never started");
    }
    let (mut stream, _) = connect_vsock(&socket, 8080, Duration::from_secs(30));
    stream.write_all(b"half a conversation\n").expect("send");
    // The program reads to the end of the stream before it answers.
    stream.shutdown(std::net::Shutdown::Write).expect("shut the sending side");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer to its end");
    assert_eq!(answer, "echo: half a conversation\n");
    let (status, console) = guest.finish();
    assert!(console.contains("served tcp\n"), "{console}");
    assert_eq!(status, Some(0), "{console}");
}

#[test]
fn vsock_listen_carries_a_programs_tcp_connection_to_the_host_and_its_half_close() {
    let test = "vsock_listen_carries_a_programs_tcp_connection_to_the_host_and_its_half_close";
    if !kvm_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let listener = UnixListener::bind(directory.path().join("v.sock_9100")).expect("listen for the guest");
    let host = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("the kernel connects for the program");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("a timeout");
        // The program shut its sending side down: the stream ends here
        // while the other direction stays open.
        let mut received = String::new();
        stream.read_to_string(&mut received).expect("read to the end of the program's stream");
        stream.write_all(format!("back at you, {received}").as_bytes()).expect("answer");
        received
    });
    let program = guests::vsock_free();
    let mut guest = Guest::start(&[
        "--hypervisor",
        "builtin",
        "--vsock",
        path(&socket),
        "--kernel-args=--vsock-listen=9001:2:9100",
        "--exec",
        path(&program),
        "--",
        "tcp-connect",
        "9001",
        "hello host",
    ]);
    if !guest.wait_for("received: ", Duration::from_secs(120)) {
        guest.abandon("the program received nothing");
    }
    let (status, console) = guest.finish();
    assert_eq!(host.join().expect("the host thread"), "hello host\n");
    assert!(
        console.contains("received: back at you, hello host\n"),
        "the host's end reached the program: {console}"
    );
    assert_eq!(status, Some(0), "{console}");
}

#[test]
fn vsock_listen_refuses_a_programs_connection_when_the_host_does_not_listen() {
    let test = "vsock_listen_refuses_a_programs_connection_when_the_host_does_not_listen";
    if !kvm_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let socket = directory.path().join("v.sock");
    let program = guests::vsock_free();
    // Nobody listens at v.sock_9200: the kernel resets the program's
    // connection, which (having shut its sending side) reads the reset, as
    // on Linux.
    let mut guest = Guest::start(&[
        "--hypervisor",
        "builtin",
        "--vsock",
        path(&socket),
        "--kernel-args=--vsock-listen=9001:2:9200",
        "--exec",
        path(&program),
        "--",
        "tcp-connect",
        "9001",
        "anyone?",
    ]);
    if !guest.wait_for("reset by peer", Duration::from_secs(120)) {
        guest.abandon("the program's connection was not reset");
    }
    let (status, console) = guest.finish();
    assert_eq!(status, Some(0), "{console}");
}

#[test]
fn a_guest_serves_the_host_over_vsock_on_firecracker() {
    let test = "a_guest_serves_the_host_over_vsock_on_firecracker";
    if !firecracker_available(test) {
        return;
    }
    let (_, _, status, console) = echo_over_vsock("firecracker");
    assert_eq!(status, Some(0), "{console}");
}
