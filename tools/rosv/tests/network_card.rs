//! Boot tests of the guest's network card (`rosv run --net`).
//!
//! On QEMU's user-mode network the guest must get 10.0.2.15/24 by DHCP (on
//! microvm with virtio-mmio, and on pc with legacy and modern virtio-pci),
//! serve a connection that `--forward` brings from a host port, and reach a
//! server on the host's loopback at 10.0.2.2, and over IPv6 (its address
//! from the router's advertisements) at fec0::2. The guest side is
//! `tests/guest/netpeer.c`. With a tap device, which needs root, QEMU and
//! Firecracker are tried too; those tests say when they were skipped.

mod guests;
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use guests::Variant;
use support::{
    Guest, TIMEOUT_SECONDS, TapDevice, connect_with_retries, firecracker_available, free_port, path, rosv,
    rosv_run, serve_once, skip, text, unused_network,
};

/// What the kernel logs with `--verbose` once DHCP configured the card on
/// QEMU's user-mode network.
const DHCP_DESCRIPTION: &str = "eth0 52:54:00:12:34:56 10.0.2.15/24 gateway 10.0.2.2 nameserver 10.0.2.3";

/// How long a guest may take to boot and start listening under TCG.
const LISTENING_TIMEOUT: Duration = Duration::from_secs(120);

fn netpeer(variant: Variant) -> PathBuf {
    guests::c_program("netpeer", variant)
}

/// Boots `exit` (status 3) with `--net user --kernel-args=--verbose` on
/// `board` and checks the DHCP outcome.
fn assert_dhcp_configures_the_card(board: &[&str]) {
    let exit = guests::c_program("exit", Variant::MuslStatic);
    let mut arguments = board.to_vec();
    arguments.extend(["--net", "user", "--kernel-args=--verbose", "--exec", path(&exit)]);
    let output = rosv_run(&arguments);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("eth0: virtio network card at "), "{board:?}: {stderr}");
    assert!(stderr.contains(DHCP_DESCRIPTION), "{board:?}: {stderr}");
    assert_eq!(text(&output.stdout), "exiting with status 3\n", "{board:?}");
    assert_eq!(output.status.code(), Some(3), "{board:?}");
}

#[test]
fn dhcp_configures_the_card_on_microvm() {
    assert_dhcp_configures_the_card(&[]);
    assert_dhcp_configures_the_card(&["--acpi", "off"]);
}

#[test]
fn dhcp_configures_the_card_on_pc_with_legacy_virtio_pci() {
    assert_dhcp_configures_the_card(&["--machine", "pc", "--virtio", "legacy"]);
}

#[test]
fn dhcp_configures_the_card_on_pc_with_modern_virtio_pci() {
    assert_dhcp_configures_the_card(&["--machine", "pc", "--virtio", "modern"]);
}

#[test]
fn without_net_the_guest_has_no_card() {
    let exit = guests::c_program("exit", Variant::MuslStatic);
    let output = rosv_run(&["--kernel-args=--verbose", "--exec", path(&exit)]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("virtio block device"), "the kernel's messages are there: {stderr}");
    assert!(!stderr.contains("eth0"), "{stderr}");
}

#[test]
fn network_options_rosv_cannot_honour_are_refused_before_booting() {
    let exit = guests::c_program("exit", Variant::MuslStatic);
    let exit = path(&exit);
    for (arguments, message) in [
        (
            vec!["--net", "none", "--forward", "8080:80"],
            "--forward needs a network card on QEMU's user-mode network",
        ),
        (vec!["--net", "tap:lo", "--forward", "8080:80"], "--forward works with --net user only"),
        (vec!["--net", "user", "--forward", "8080:80", "--forward", "8080:81"], "forwarded twice"),
        (vec!["--hypervisor", "firecracker", "--net", "user"], "Firecracker lacks"),
        (vec!["--net", "tap:rosv-absent0"], "the host has no network interface rosv-absent0"),
    ] {
        let mut all = arguments.clone();
        all.extend(["--exec", exit]);
        let output = rosv_run(&all);
        assert_eq!(output.status.code(), Some(125), "{arguments:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(message), "{arguments:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
    for (forward, message) in [
        ("0:80", "host port \"0\" is not a number from 1 to 65535"),
        ("8080:65536", "guest port \"65536\" is not a number from 1 to 65535"),
        ("sctp:127.0.0.1:8080:80", "unknown protocol \"sctp\"; use tcp or udp"),
        ("8080", "is not [tcp:|udp:][HOSTADDR:]HOSTPORT:GUESTPORT"),
        ("8080:", "the guest port is missing"),
    ] {
        let output = rosv_run(&["--net", "user", "--forward", forward, "--exec", exit]);
        assert_eq!(output.status.code(), Some(2), "{forward}: clap's usage status");
        assert!(text(&output.stderr).contains(message), "{forward}: {}", text(&output.stderr));
    }
}

/// Sends `message` and a newline on `stream` and returns the line that
/// comes back, without its newline.
fn exchange(stream: TcpStream, message: &str) -> std::io::Result<String> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    (&stream).write_all(format!("{message}\n").as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    Ok(answer.trim_end().to_string())
}

/// Starts `netpeer serve 7000` in a guest with `network_arguments`, waits
/// until it listens, and checks that `address` reaches it.
fn assert_host_reaches_guest_server(network_arguments: &[&str], address: SocketAddr) {
    let program = netpeer(Variant::MuslStatic);
    let mut arguments = network_arguments.to_vec();
    arguments.extend(["--exec", path(&program), "--", "serve", "7000"]);
    let mut guest = Guest::start(&arguments);
    if !guest.wait_for("listening on 7000", LISTENING_TIMEOUT) {
        guest.abandon("the guest did not start listening");
    }
    let answer = match connect_with_retries(address).and_then(|stream| exchange(stream, "ping from the host"))
    {
        Ok(answer) => answer,
        Err(error) => guest.abandon(&format!("talking to the guest through {address}: {error}")),
    };
    let (status, console) = guest.finish();
    assert_eq!(answer, "echo: ping from the host", "{console}");
    assert!(console.contains("received: ping from the host"), "{console}");
    assert_eq!(status, Some(0), "{console}");
}

#[test]
fn a_forwarded_host_port_reaches_a_server_in_the_guest() {
    let port = free_port();
    let forward = format!("{port}:7000");
    assert_host_reaches_guest_server(
        &["--net", "user", "--forward", &forward],
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    );
}

#[test]
fn the_guest_reaches_a_server_on_the_host_loopback() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    let port = listener.local_addr().expect("the listener's address").port().to_string();
    let limit = Duration::from_secs(TIMEOUT_SECONDS.parse().expect("a number of seconds"));
    let served = serve_once(listener, limit);
    let program = netpeer(Variant::GlibcStaticPie);
    // QEMU's user-mode network passes connections to 10.0.2.2 on to the
    // host's 127.0.0.1.
    let output =
        rosv_run(&["--net", "user", "--exec", path(&program), "--", "connect", "10.0.2.2", &port, "hello"]);
    let stdout = text(&output.stdout);
    let received = served.recv_timeout(Duration::from_secs(5));
    assert!(matches!(&received, Ok(Ok(line)) if line == "hello"), "the host received {received:?}: {stdout}");
    assert!(stdout.contains("received: welcome, hello"), "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn the_guest_reaches_a_server_on_the_host_loopback_over_ipv6() {
    let test = "the_guest_reaches_a_server_on_the_host_loopback_over_ipv6";
    let Ok(listener) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) else {
        skip(test, "this host has no ::1");
        return;
    };
    let port = listener.local_addr().expect("the listener's address").port().to_string();
    let limit = Duration::from_secs(TIMEOUT_SECONDS.parse().expect("a number of seconds"));
    let served = serve_once(listener, limit);
    let program = netpeer(Variant::MuslStatic);
    // The card gets an address in fec0::/64 by SLAAC; QEMU's user-mode
    // network passes connections to fec0::2 on to the host's ::1.
    let output =
        rosv_run(&["--net", "user", "--exec", path(&program), "--", "connect", "fec0::2", &port, "hello"]);
    let stdout = text(&output.stdout);
    let received = served.recv_timeout(Duration::from_secs(5));
    assert!(matches!(&received, Ok(Ok(line)) if line == "hello"), "the host received {received:?}: {stdout}");
    assert!(stdout.contains("received: welcome, hello"), "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{stdout}");
}

#[test]
fn a_tap_device_carries_a_connection_into_a_qemu_guest() {
    let test = "a_tap_device_carries_a_connection_into_a_qemu_guest";
    let Some(network_number) = unused_network() else {
        return skip(test, "no free 192.168.N.0/24 network for the tap device");
    };
    let name = format!("rosvq{}", std::process::id());
    let _tap = match TapDevice::create(&name, Some(&format!("192.168.{network_number}.1/24"))) {
        Ok(tap) => tap,
        Err(why) => return skip(test, &format!("cannot create a tap device ({why})")),
    };
    let network = format!("tap:{name}");
    // No DHCP server on the tap device: the guest gets a static address.
    let guest_address = format!("--kernel-args=--ip=eth0,192.168.{network_number}.2,255.255.255.0");
    assert_host_reaches_guest_server(
        &["--net", &network, &guest_address],
        SocketAddr::from(([192, 168, network_number, 2], 7000)),
    );
}

#[test]
fn firecracker_attaches_the_card_to_a_tap_device() {
    let test = "firecracker_attaches_the_card_to_a_tap_device";
    if !firecracker_available(test) {
        return;
    }
    let name = format!("rosvf{}", std::process::id());
    let _tap = match TapDevice::create(&name, None) {
        Ok(tap) => tap,
        Err(why) => return skip(test, &format!("cannot create a tap device ({why})")),
    };
    let network = format!("tap:{name}");
    // The program makes system calls only, so it runs on any KVM, even
    // kvm_pvm, which cannot run a C library's SSE code in ring 0.
    let output = rosv_run(&[
        "--hypervisor",
        "firecracker",
        "--net",
        &network,
        "--kernel-args=--verbose --ip=eth0,192.168.214.2,255.255.255.0",
        "--exec",
        path(&guests::syscall_exit()),
    ]);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("eth0: virtio network card at mmio 0xc000"), "{stderr}");
    assert!(stderr.contains("eth0 52:54:00:12:34:56 192.168.214.2/24"), "{stderr}");
    assert_eq!(output.status.code(), Some(3), "{stderr}");
}

#[test]
fn rosv_help_describes_the_network_options() {
    let output = rosv(&["run", "--help"]);
    let help = text(&output.stdout);
    assert!(help.contains("--net <NETWORK>") && help.contains("tap:IFNAME"), "{help}");
    assert!(help.contains("--forward <[tcp:|udp:][HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]>"), "{help}");
}

#[test]
fn a_forwarded_port_brings_the_user_mode_network_along() {
    let exit = guests::c_program("exit", Variant::MuslStatic);
    let port = support::free_port().to_string();
    let output = rosv_run(&["-p", &format!("{port}:80"), "--kernel-args=--verbose", "--exec", path(&exit)]);
    assert_eq!(output.status.code(), Some(3));
    assert!(text(&output.stderr).contains(DHCP_DESCRIPTION), "{}", text(&output.stderr));
}

/// Debian's busybox sees the card as Linux tools do: through netlink
/// (`ip`), the `SIOCGIF*` requests and `/proc/net` (`ifconfig`, `route`).
#[test]
fn busybox_network_tools_see_the_card() {
    for (applet, wanted) in [
        (&["ip", "route"][..], "default via 10.0.2.2 dev eth0"),
        (&["ip", "addr"][..], "inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0"),
        (&["ifconfig", "eth0"][..], "inet addr:10.0.2.15  Bcast:10.0.2.255  Mask:255.255.255.0"),
        (&["route", "-n"][..], "0.0.0.0         10.0.2.2        0.0.0.0         UG"),
    ] {
        let mut arguments = vec!["--net", "user", "--exec", "/usr/bin/busybox", "--"];
        arguments.extend_from_slice(applet);
        let output = rosv_run(&arguments);
        let stdout = text(&output.stdout);
        assert!(stdout.contains(wanted), "busybox {applet:?}:\n{stdout}");
        assert_eq!(output.status.code(), Some(0), "busybox {applet:?}");
    }
}

/// A connection to a port nobody listens on in the guest is refused at
/// once: the guest learns the gateway's MAC address when it gets its own
/// address, rather than when it first needs it (and drops the reset).
#[test]
fn a_closed_guest_port_is_refused_at_once() {
    let sleeper = guests::c_program("sleeper", Variant::MuslStatic);
    let port = free_port();
    let forward = format!("{port}:8080");
    let mut guest = Guest::start(&["--net", "user", "--forward", &forward, "--exec", path(&sleeper)]);
    if !guest.wait_for("sleeping", LISTENING_TIMEOUT) {
        guest.abandon("the guest did not start");
    }
    let started = Instant::now();
    let outcome = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).and_then(|mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        std::io::Read::read(&mut stream, &mut [0u8; 16])
    });
    let waited = started.elapsed();
    guest.terminate();
    // QEMU accepted the connection and closes it when the guest resets its
    // own; before, that took a retransmission (about 6 s).
    assert!(matches!(outcome, Ok(0) | Err(_)), "{outcome:?}");
    assert!(waited < Duration::from_secs(5), "the refusal took {waited:?}");
}
