//! Boot tests of the function host (`rosv serve`).
//!
//! Each test writes a configuration naming images of guest programs
//! (mostly `tests/guest/http-echo.c`, which answers with what it
//! received), starts `rosv serve` on a free loopback port, and talks
//! HTTP to it: cold and warm requests, what reaches the function, errors,
//! idle VMs stopped, dead ones replaced, and no QEMU left after SIGTERM.

mod guests;
mod serve_host;
mod support;

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use guests::Variant;
use serve_host::{Client, Host, echo_function, get, http_echo, image, stats};
use support::{path, rosv, text};

#[test]
fn a_cold_request_boots_a_vm_and_later_ones_are_served_by_it() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let mut host = Host::start(directory, &echo_function("echo", &echo, ""));

    let mut client = Client::connect(host.port);
    let cold = client.send(
        b"POST /echo/a/b?x=1&y=two HTTP/1.1\r\nHost: example.com\r\nX-Custom: yes\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(cold.status, 200, "{cold:?}\n{}", host.log());
    assert_eq!(cold.header("X-Echo"), Some("rosv"), "{cold:?}");
    for line in [
        "method: POST\n",
        "path: /a/b?x=1&y=two\n",
        "header: Host: example.com\n",
        "header: X-Custom: yes\n",
        "header: X-Forwarded-For: 127.0.0.1\n",
        "header: Content-Length: 5\n",
        "body: hello\n",
    ] {
        assert!(cold.body.contains(line), "{line:?} in {}", cold.body);
    }
    // The same client connection, a chunked body this time.
    let warm = client.send(
        b"PUT /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
    );
    assert_eq!(warm.status, 200, "{warm:?}");
    assert!(warm.body.contains("path: /\n") && warm.body.contains("body: abcdefg\n"), "{}", warm.body);
    assert!(warm.body.contains("header: Content-Length: 7\n"), "{}", warm.body);
    assert!(!warm.body.contains("Transfer-Encoding"), "{}", warm.body);

    let missing = get(host.port, "/nothing/here");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "no function is named \"nothing\"\n");

    let counters = stats(host.port, "echo");
    assert_eq!(counters["boots"], 1, "{counters}");
    assert_eq!(counters["requests"], 2, "{counters}");
    assert_eq!(counters["running"], 1, "{counters}");
    assert_eq!(counters["errors"], 0, "{counters}");
    assert!(counters["cold_start_ms"]["last"].as_f64().is_some_and(|time| time > 0.0), "{counters}");
    assert_eq!(host.terminate(), Some(0));
    let log = host.log();
    assert!(log.contains("echo#1 answered ") && log.contains(" (cold start)"), "{log}");
    assert!(log.contains("echo#1 stopped: rosv serve received signal 15"), "{log}");
}

#[test]
fn functions_that_cannot_answer_get_502_or_504_and_the_others_still_work() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let exit = image(directory.path(), "exit", &guests::c_program("exit", Variant::MuslStatic), &[]);
    let sleeper = image(directory.path(), "sleeper", &guests::c_program("sleeper", Variant::MuslStatic), &[]);
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let configuration = echo_function("broken", &exit, "")
        + &echo_function("silent", &sleeper, "boot_timeout = 3")
        + &echo_function("echo", &echo, "");
    let mut host = Host::start(directory, &configuration);

    let broken = get(host.port, "/broken/x");
    assert_eq!(broken.status, 502, "{broken:?}");
    assert!(
        broken.body.contains("the VM of function broken ended before it answered")
            && broken.body.contains("exited with status 3"),
        "{}",
        broken.body
    );
    let silent = get(host.port, "/silent/x");
    assert_eq!(silent.status, 504, "{silent:?}");
    assert_eq!(silent.body, "function silent did not answer within 3 s of starting its VM\n");
    assert_eq!(get(host.port, "/echo/x").status, 200);
    assert_eq!(stats(host.port, "silent")["running"], 0, "the VM that did not answer was stopped");
    let counters = stats(host.port, "broken");
    assert_eq!(
        (counters["boot_failures"].as_u64(), counters["errors"].as_u64()),
        (Some(1), Some(1)),
        "{counters}"
    );
    assert_eq!(counters["running"], 0, "{counters}");
    assert_eq!(host.terminate(), Some(0));
    // The console's tail is in the log, for whoever investigates.
    let log = host.log();
    assert!(log.contains("broken#1 failed: ") && log.contains("| exiting with status 3"), "{log}");
}

#[test]
fn idle_vms_are_stopped_and_dead_ones_replaced() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let host = Host::start(directory, &echo_function("echo", &echo, "idle_timeout = 2"));

    assert_eq!(get(host.port, "/echo/first").status, 200);
    assert_eq!(stats(host.port, "echo")["running"], 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats(host.port, "echo")["running"] != 0 {
        assert!(Instant::now() < deadline, "the idle VM was not stopped; log:\n{}", host.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(host.log().contains("echo#1 stopped: idle for 2 s"), "{}", host.log());
    // The next request boots another VM; /exit makes its program exit
    // after answering, and the one after that gets a third VM.
    assert_eq!(get(host.port, "/echo/exit").status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats(host.port, "echo")["running"] != 0 {
        assert!(Instant::now() < deadline, "the VM's end went unnoticed; log:\n{}", host.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = host.log();
    assert!(
        log.contains("echo#2 stopped: it exited on its own (the application exited with status 7)"),
        "{log}"
    );
    let again = get(host.port, "/echo/again");
    assert_eq!(again.status, 200, "{again:?}");
    let counters = stats(host.port, "echo");
    assert_eq!((counters["boots"].as_u64(), counters["requests"].as_u64()), (Some(3), Some(3)), "{counters}");
}

#[test]
fn concurrent_requests_share_one_boot_and_max_instances_bounds_the_vms() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let configuration = echo_function("one", &echo, "") + &echo_function("two", &echo, "max_instances = 2");
    let host = Host::start(directory, &configuration);
    let port = host.port;
    for (function, boots) in [("one", 1), ("two", 2)] {
        let requests: Vec<_> = (0..3)
            .map(|index| std::thread::spawn(move || get(port, &format!("/{function}/sleep/1500?{index}"))))
            .collect();
        for request in requests {
            let answer = request.join().expect("a client thread");
            assert_eq!(answer.status, 200, "{answer:?}");
        }
        let counters = stats(port, function);
        assert_eq!(counters["boots"], boots, "{function}: {counters}\n{}", host.log());
        assert_eq!(counters["running"], boots, "{function}: {counters}");
        assert_eq!(counters["requests"], 3, "{function}: {counters}");
    }
}

/// The process ids of the QEMU processes whose parent is `parent`.
fn qemu_children(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: the command may hold spaces, so read
        // after its closing parenthesis.
        let Some((command, rest)) = stat.rsplit_once(')') else { continue };
        let ppid = rest.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(parent) && command.contains("qemu-system") {
            children.push(pid);
        }
    }
    children
}

#[test]
fn sigterm_stops_every_vm_before_the_host_exits() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let configuration = echo_function("a", &echo, "") + &echo_function("b", &echo, "");
    let mut host = Host::start(directory, &configuration);
    assert_eq!(get(host.port, "/a/x").status, 200);
    assert_eq!(get(host.port, "/b/x").status, 200);
    let pid = host.child.as_ref().expect("the host runs").id();
    let vms = qemu_children(pid);
    assert_eq!(vms.len(), 2, "two VMs run: {vms:?}");
    assert_eq!(host.terminate(), Some(0));
    for vm in vms {
        assert!(!Path::new(&format!("/proc/{vm}")).exists(), "QEMU {vm} outlived rosv serve");
    }
}

#[test]
fn a_killed_host_takes_its_vms_along() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let mut host = Host::start(directory, &echo_function("echo", &echo, ""));
    assert_eq!(get(host.port, "/echo/x").status, 200);
    let mut child = host.child.take().expect("the host runs");
    let vms = qemu_children(child.id());
    assert_eq!(vms.len(), 1, "one VM runs: {vms:?}");
    child.kill().expect("SIGKILL rosv serve");
    child.wait().expect("wait for rosv serve");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{}", vms[0])).exists() {
        assert!(Instant::now() < deadline, "QEMU {} outlived a killed rosv serve", vms[0]);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn clients_that_break_the_protocol_are_answered_and_the_host_goes_on() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let host = Host::start(directory, &echo_function("echo", &echo, ""));
    let huge = format!("GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(Client::connect(host.port).send(huge.as_bytes()).status, 431);
    assert_eq!(Client::connect(host.port).send(b"\x16\x03\x01 this is TLS\r\n\r\n").status, 400);
    assert_eq!(Client::connect(host.port).send(b"GET /echo HTTP/1.1\r\n\r\n").status, 400, "no Host");
    let smuggling =
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(Client::connect(host.port).send(smuggling).status, 400);
    let too_long = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n";
    assert_eq!(Client::connect(host.port).send(too_long).status, 413);
    // A client that connects and says nothing does not hold up others.
    let _silent = TcpStream::connect((Ipv4Addr::LOCALHOST, host.port)).expect("connect");
    let answer = get(host.port, "/echo/fine");
    assert_eq!(answer.status, 200, "{answer:?}");
    let counters = stats(host.port, "echo");
    assert_eq!((counters["requests"].as_u64(), counters["boots"].as_u64()), (Some(1), Some(1)), "{counters}");
}

#[test]
fn configuration_errors_are_one_line_each_and_exit_2() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let file = directory.path().join("bad.toml");
    let echo_text = echo.display().to_string();
    let cases = [
        (
            format!("[[function]]\nname = \"a\"\nimage = \"{echo_text}\"\nport = 8080\nmemry = \"1G\"\n"),
            vec!["bad.toml:1: function \"a\": unknown field `memry`"],
        ),
        (
            format!(
                "[[function]]\nname = \"a\"\nimage = \"{echo_text}\"\nport = 8080\n\
                 [[function]]\nname = \"a\"\nimage = \"{echo_text}\"\nport = 8081\n\
                 [[function]]\nname = \"b\"\nimage = \"{echo_text}\"\nport = 0\n"
            ),
            vec![
                "bad.toml:5: function \"a\" is defined twice",
                "bad.toml:9: function \"b\": port 0 is not a number",
            ],
        ),
        (
            "[[function]]\nname = \"gone\"\nimage = \"missing-image\"\nport = 8080\n".to_string(),
            vec!["bad.toml: function \"gone\": image "],
        ),
    ];
    for (configuration, messages) in cases {
        std::fs::write(&file, &configuration).expect("write the configuration");
        let output = rosv(&["serve", "--config", path(&file), "--listen", "127.0.0.1:1"]);
        assert_eq!(output.status.code(), Some(2), "{configuration}");
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), messages.len(), "{stderr}");
        for message in messages {
            assert!(stderr.contains(message), "{message:?} in {stderr}");
        }
    }
}

#[test]
fn backends_that_cannot_run_a_function_are_refused_saying_why() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let echo = image(directory.path(), "echo", &http_echo(), &[]);
    let file = directory.path().join("functions.toml");
    let lambda = format!(
        "[[function]]\nname = \"py\"\nruntime = \"{}\"\nhandler = \"app.handler\"\nsnapshot = true\n",
        echo.display()
    );
    std::fs::write(&file, echo_function("echo", &echo, "") + &lambda).expect("write the configuration");
    let has_kvm = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    let has_firecracker = support::has_program("firecracker");
    for (backend, reason) in [
        ("builtin", if has_kvm { "function \"py\" takes snapshots" } else { "no usable /dev/kvm" }),
        (
            "firecracker",
            if has_firecracker { "function \"py\"" } else { "firecracker was not found on PATH" },
        ),
    ] {
        let output =
            rosv(&["serve", "--config", path(&file), "--listen", "127.0.0.1:1", "--backend", backend]);
        assert_eq!(output.status.code(), Some(2), "--backend {backend}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&format!("--backend {backend}: ")) && stderr.contains(reason), "{stderr}");
        assert!(stderr.contains("--backend qemu"), "{stderr}");
    }
}

#[test]
fn nginx_runs_as_a_function() {
    if !Path::new("/usr/sbin/nginx").is_file() {
        support::skip("nginx_runs_as_a_function", "/usr/sbin/nginx is missing (apt-get install nginx-light)");
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let body: String = (0..3000).map(|line| format!("line {line} of a page\n")).collect();
    let image = support::nginx_image(directory.path(), &body);
    let host = Host::start(directory, &echo_function("web", &image, "memory = \"256M\""));

    let mut client = Client::connect(host.port);
    let hello = client.send(b"GET /web/hello HTTP/1.1\r\nHost: rosv\r\n\r\n");
    assert_eq!((hello.status, hello.body.as_str()), (200, "hello from nginx\n"), "{hello:?}\n{}", host.log());
    let whole = client.send(b"GET /web/index.html HTTP/1.1\r\nHost: rosv\r\n\r\n");
    assert_eq!(whole.status, 200, "{whole:?}");
    assert!(whole.body == body, "the page arrives whole ({} bytes)", whole.body.len());
    let head = client.send(b"HEAD /web/index.html HTTP/1.1\r\nHost: rosv\r\nConnection: close\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some(body.len().to_string().as_str()), "{head:?}");
    assert_eq!(get(host.port, "/web/missing").status, 404);
    let counters = stats(host.port, "web");
    assert_eq!((counters["boots"].as_u64(), counters["requests"].as_u64()), (Some(1), Some(4)), "{counters}");
}
