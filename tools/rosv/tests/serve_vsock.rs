//! The function host on the built-in monitor and Firecracker, where
//! functions are reached over vsock: the kernel forwards the function's
//! vsock port to its TCP port on the guest's loopback, and the host
//! connects to each VM's vsock socket.
//!
//! A Lambda function's runtime connects out the other way: to
//! `127.0.0.1:9001` in the guest, which the kernel forwards to the host's
//! vsock port 9001 (`--vsock-listen`), the Runtime API's Unix socket.
//!
//! The functions are `tests/guest/vsock-free.c`'s HTTP server and Lambda
//! runtime, which need no C library, so the built-in monitor runs them
//! even where KVM emulates ring 0. The tests need a usable `/dev/kvm` (and
//! Firecracker on PATH for its own) and say that they were skipped
//! otherwise.

mod guests;
mod serve_host;
mod support;

use serve_host::{Host, echo_function, get, image, post, stats};
use support::{firecracker_available, skip};

fn kvm_available(test: &str) -> bool {
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        skip(test, "/dev/kvm cannot be opened");
        return false;
    }
    true
}

/// Serves a libc-free HTTP function on `backend` and checks a cold and
/// warm request, the counters, and that SIGTERM ends everything.
fn serve_on(backend: &str) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let hello = image(directory.path(), "hello", &guests::vsock_free(), &["http", "8080"]);
    let broken = image(directory.path(), "broken", &guests::syscall_exit(), &[]);
    let configuration = echo_function("hello", &hello, "") + &echo_function("broken", &broken, "");
    let mut host = Host::start_with(directory, &configuration, &["--backend", backend]);
    let cold = get(host.port, "/hello/x");
    assert_eq!(cold.status, 200, "{cold:?}\n{}", host.log());
    assert_eq!(cold.body, "hello from vsock-free 1\n", "{}", host.log());
    let warm = get(host.port, "/hello/y");
    assert_eq!(warm.status, 200, "{warm:?}\n{}", host.log());
    assert_eq!(warm.body, "hello from vsock-free 2\n", "the same VM answers");
    // A function whose program exits before it listens: its VM ends.
    let failed = get(host.port, "/broken/");
    assert_eq!(failed.status, 502, "{failed:?}\n{}", host.log());
    assert!(failed.body.contains("ended before it answered: its monitor "), "{}", failed.body);
    if backend == "builtin" {
        // The monitor is a `rosv run` child: its status is the program's.
        assert!(failed.body.contains("exited with status 3"), "{}", failed.body);
    }
    let missing = get(host.port, "/nothing");
    assert_eq!(missing.status, 404);
    let counters = stats(host.port, "hello");
    assert_eq!((counters["boots"].as_u64(), counters["requests"].as_u64()), (Some(1), Some(2)), "{counters}");
    assert_eq!(host.terminate(), Some(0));
    let log = host.log();
    assert!(log.contains("functions reached over vsock"), "{log}");
    assert!(log.contains("hello#1 answered ") && log.contains(" (cold start)"), "{log}");
}

#[test]
fn http_functions_run_on_the_builtin_monitor_over_vsock() {
    if kvm_available("http_functions_run_on_the_builtin_monitor_over_vsock") {
        serve_on("builtin");
    }
}

#[test]
fn http_functions_run_on_firecracker_over_vsock() {
    if firecracker_available("http_functions_run_on_firecracker_over_vsock") {
        serve_on("firecracker");
    }
}

/// The Invoke API's path for `function`.
fn invoke_path(function: &str) -> String {
    format!("/2015-03-31/functions/{function}/invocations")
}

/// Serves `vsock-free lambda`, a libc-free Lambda runtime, on `backend`
/// and invokes it: a response, an error, and a warm response from the same
/// VM.
fn serve_lambda_on(backend: &str) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let runtime = image(directory.path(), "runtime", &guests::vsock_free(), &["lambda"]);
    let configuration = format!(
        "[[function]]\nname = \"echo\"\nruntime = \"{}\"\nhandler = \"unused.handler\"\n",
        runtime.display()
    );
    let mut host = Host::start_with(directory, &configuration, &["--backend", backend]);
    let first = post(host.port, &invoke_path("echo"), "", br#"{"n":1}"#);
    assert_eq!(first.status, 200, "{first:?}\n{}", host.log());
    assert_eq!(first.body, r#"{"echo":{"n":1},"count":1}"#, "{}", host.log());
    assert_eq!(first.header("x-amz-function-error"), None);
    let failed = post(host.port, &invoke_path("echo"), "", br#"{"please":"fail"}"#);
    assert_eq!(failed.status, 200, "{failed:?}\n{}", host.log());
    assert_eq!(failed.header("x-amz-function-error"), Some("Unhandled"), "{failed:?}");
    let document: serde_json::Value = serde_json::from_str(&failed.body).expect("an error document");
    assert_eq!(document["errorMessage"], "asked to fail", "{document}");
    assert_eq!(document["errorType"], "Asked", "{document}");
    let warm = post(host.port, &invoke_path("echo"), "", br#""again""#);
    assert_eq!(warm.status, 200, "{warm:?}\n{}", host.log());
    assert_eq!(warm.body, r#"{"echo":"again","count":3}"#, "the same VM answers");
    let malformed = post(host.port, &invoke_path("echo"), "", b"not json");
    assert_eq!(malformed.status, 400, "{malformed:?}");
    let counters = stats(host.port, "echo");
    assert_eq!(counters["boots"].as_u64(), Some(1), "{counters}");
    assert_eq!(host.terminate(), Some(0));
    let log = host.log();
    assert!(log.contains("echo#1 booting") && log.contains("(vsock "), "{log}");
}

#[test]
fn lambda_functions_run_on_the_builtin_monitor_over_vsock() {
    if kvm_available("lambda_functions_run_on_the_builtin_monitor_over_vsock") {
        serve_lambda_on("builtin");
    }
}

#[test]
fn lambda_functions_run_on_firecracker_over_vsock() {
    if firecracker_available("lambda_functions_run_on_firecracker_over_vsock") {
        serve_lambda_on("firecracker");
    }
}
