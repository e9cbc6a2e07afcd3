use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Mutex;

use super::abi::{message, option, shut};
use super::address::Address;
use super::link::{self, LOOP_ONLY_MAC, NetworkDevice};
use super::socket::{Kind, Socket};
use super::{Network, Settings};
use crate::errno::Errno;
use crate::fake::FakeMachine;
use crate::machine::Machine;
use crate::vfs::SpecialFile;
use crate::vfs::node::Caller;
use crate::vfs::waiters::events::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP};

fn loop_only() -> Arc<Network> {
    Network::new(None, &Settings::default(), 7, 0)
}

fn v4(address: SocketAddr) -> SocketAddrV4 {
    match address {
        SocketAddr::V4(address) => address,
        SocketAddr::V6(_) => panic!("an IPv4 address"),
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// A listener on `port` and a client connected to it, with the accepted
/// connection.
fn connected_pair(
    network: &Arc<Network>,
    caller: &Caller<'_>,
    port: u16,
) -> (Arc<Socket>, Arc<Socket>, Arc<Socket>) {
    let listener = Socket::new(network.clone(), Kind::Stream);
    listener.bind(caller, local(port)).unwrap();
    listener.listen(caller, 8).unwrap();
    let client = Socket::new(network.clone(), Kind::Stream);
    assert_eq!(client.connect(caller, Address::Ipv4(v4(local(port))), true), Err(Errno::EINPROGRESS));
    let (server, peer) = listener.accept(caller, true).expect("the handshake completes over the loop");
    assert_eq!(peer, client.local_address(caller));
    (listener, client, server)
}

#[test]
fn the_loop_carries_a_tcp_conversation() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let (listener, client, server) = connected_pair(&network, &caller, 8080);
    assert_eq!(client.peer_address(&caller), Ok(local(8080)));
    assert_eq!(server.local_address(&caller), local(8080));
    assert_eq!(listener.local_address(&caller), local(8080));

    assert_eq!(client.send(&caller, b"hello, server", 0, None, true), Ok(13));
    assert_ne!(server.poll() & POLLIN, 0);
    let mut buffer = [0u8; 64];
    let peeked = server.receive(&caller, &mut buffer, message::PEEK, true).unwrap();
    assert_eq!(&buffer[..peeked.length], b"hello, server");
    let received = server.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"hello, server");
    assert_eq!(server.receive(&caller, &mut buffer, 0, true), Err(Errno::EAGAIN));

    assert_eq!(server.send(&caller, b"hello, client", 0, None, true), Ok(13));
    let received = client.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"hello, client");

    client.shutdown(&caller, shut::WRITE).unwrap();
    network.poll(machine.monotonic_ns());
    let ready = server.poll();
    assert_eq!(ready & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP, "{ready:#x}");
    assert_eq!(server.receive(&caller, &mut buffer, 0, true).map(|received| received.length), Ok(0));
    // The other direction still works after a half close.
    assert_eq!(server.send(&caller, b"bye", 0, None, true), Ok(3));
    let received = client.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"bye");
    assert_eq!(client.send(&caller, b"more", 0, None, true), Err(Errno::EPIPE));
}

#[test]
fn ipv6_sockets_talk_over_the_loop_and_see_ipv4_peers_mapped() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let loopback = |port: u16| SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0);
    // A dual-stack listener on `::`.
    let listener = Socket::new_in(network.clone(), Kind::Stream, true);
    listener.bind(&caller, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8086)).unwrap();
    listener.listen(&caller, 8).unwrap();
    // An IPv6 client over `::1`.
    let client = Socket::new_in(network.clone(), Kind::Stream, true);
    assert_eq!(client.connect(&caller, Address::Ipv6(loopback(8086)), true), Err(Errno::EINPROGRESS));
    let (server, peer) = listener.accept(&caller, true).expect("the handshake completes over ::1");
    assert_eq!(peer, client.local_address(&caller));
    assert_eq!(peer.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(client.send(&caller, b"over six", 0, None, true), Ok(8));
    let mut buffer = [0u8; 16];
    let received = server.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"over six");
    // An IPv4 client reaches the same listener, which sees it mapped.
    let old = Socket::new(network.clone(), Kind::Stream);
    assert_eq!(old.connect(&caller, Address::Ipv4(v4(local(8086))), true), Err(Errno::EINPROGRESS));
    let (_, peer) = listener.accept(&caller, true).expect("an IPv4 connection to a dual-stack listener");
    let Address::Ipv6(mapped) = listener.application_address(peer) else { panic!("an IPv6 address") };
    assert_eq!(mapped.ip().to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
    // A mapped destination means the IPv4 address, unless IPV6_V6ONLY.
    let mapped_destination = SocketAddrV6::new(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 8086, 0, 0);
    let via_mapped = Socket::new_in(network.clone(), Kind::Stream, true);
    assert_eq!(via_mapped.stack_address(&Address::Ipv6(mapped_destination)), Ok(local(8086)));
    let one = 1i32.to_ne_bytes();
    via_mapped.set_option(&caller, 41, 26, &one).unwrap();
    assert_eq!(via_mapped.stack_address(&Address::Ipv6(mapped_destination)), Err(Errno::ENETUNREACH));
    assert_eq!(via_mapped.stack_address(&Address::Ipv4(v4(local(8086)))), Err(Errno::EAFNOSUPPORT));
    // UDP over ::1.
    let receiver = Socket::new_in(network.clone(), Kind::Datagram, true);
    receiver.bind(&caller, SocketAddr::V6(loopback(5353))).unwrap();
    let sender = Socket::new_in(network.clone(), Kind::Datagram, true);
    assert_eq!(sender.send(&caller, b"datagram", 0, Some(SocketAddr::V6(loopback(5353))), true), Ok(8));
    let received = receiver.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"datagram");
    assert_eq!(received.source.map(|source| source.ip()), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
}

#[test]
fn large_transfers_fill_and_drain_the_buffers() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let (_listener, client, server) = connected_pair(&network, &caller, 9000);
    let data: Vec<u8> = (0..1_000_000u32).map(|index| (index * 7 % 251) as u8).collect();
    let mut sent = 0;
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 10_000];
    while received.len() < data.len() {
        if sent < data.len() {
            match client.send(&caller, &data[sent..], 0, None, true) {
                Ok(count) => sent += count,
                Err(Errno::EAGAIN) => assert_eq!(client.poll() & POLLOUT, 0, "EAGAIN only when not writable"),
                Err(error) => panic!("send: {error:?}"),
            }
        }
        match server.receive(&caller, &mut buffer, 0, true) {
            Ok(got) => received.extend_from_slice(&buffer[..got.length]),
            Err(Errno::EAGAIN) => {}
            Err(error) => panic!("receive: {error:?}"),
        }
        machine.now_ns.fetch_add(1_000_000, core::sync::atomic::Ordering::Relaxed);
        network.poll(machine.monotonic_ns());
    }
    assert!(received == data, "the bytes arrive intact and in order");
}

#[test]
fn a_port_without_listener_refuses() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let client = Socket::new(network.clone(), Kind::Stream);
    assert_eq!(client.connect(&caller, Address::Ipv4(v4(local(1))), true), Err(Errno::EINPROGRESS));
    network.poll(0);
    assert_eq!(client.poll() & (POLLERR | POLLHUP), POLLERR | POLLHUP);
    assert_eq!(client.take_error(&caller), Some(Errno::ECONNREFUSED));
    assert_eq!(client.take_error(&caller), None, "the error is reported once");

    let blocking = Socket::new(network, Kind::Stream);
    assert_eq!(blocking.connect(&caller, Address::Ipv4(v4(local(2))), false), Err(Errno::ECONNREFUSED));
}

#[test]
fn a_backlog_queues_connections_in_order() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let listener = Socket::new(network.clone(), Kind::Stream);
    listener.bind(&caller, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7000)).unwrap();
    listener.listen(&caller, 16).unwrap();
    assert_eq!(listener.poll() & POLLIN, 0);
    let clients: Vec<Arc<Socket>> = (0..10)
        .map(|_| {
            let client = Socket::new(network.clone(), Kind::Stream);
            assert_eq!(
                client.connect(&caller, Address::Ipv4(v4(local(7000))), true),
                Err(Errno::EINPROGRESS)
            );
            client
        })
        .collect();
    assert_ne!(listener.poll() & POLLIN, 0);
    for client in &clients {
        let (_, peer) = listener.accept(&caller, true).unwrap();
        assert_eq!(peer, client.local_address(&caller));
    }
    assert_eq!(listener.accept(&caller, true).map(|_| ()), Err(Errno::EAGAIN));
}

#[test]
fn ports_are_exclusive_until_released() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let first = Socket::new(network.clone(), Kind::Stream);
    first.bind(&caller, local(5000)).unwrap();
    let second = Socket::new(network.clone(), Kind::Stream);
    assert_eq!(second.bind(&caller, local(5000)), Err(Errno::EADDRINUSE));
    assert_eq!(first.bind(&caller, local(5001)), Err(Errno::EINVAL), "bound already");
    let elsewhere = Socket::new(network.clone(), Kind::Stream);
    assert_eq!(
        elsewhere.bind(&caller, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7)), 80)),
        Err(Errno::EADDRNOTAVAIL)
    );
    drop(first);
    second.bind(&caller, local(5000)).unwrap();
    let datagram = Socket::new(network, Kind::Datagram);
    datagram.bind(&caller, local(5000)).expect("UDP ports are separate from TCP ports");
}

#[test]
fn the_loop_carries_datagrams() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let server = Socket::new(network.clone(), Kind::Datagram);
    server.bind(&caller, local(5353)).unwrap();
    let client = Socket::new(network.clone(), Kind::Datagram);
    assert_eq!(client.send(&caller, b"question", 0, None, true), Err(Errno::EDESTADDRREQ));
    assert_eq!(client.send(&caller, b"question", 0, Some(local(5353)), true), Ok(8));
    let client_address = client.local_address(&caller);
    assert_ne!(client_address.port(), 0, "the first send binds an ephemeral port");

    let mut buffer = [0u8; 4];
    let received = server.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!((received.length, received.is_truncated, received.full_length), (4, true, 8));
    assert_eq!(&buffer, b"ques");
    assert_eq!(received.source.map(|source| source.port()), Some(client_address.port()));

    assert_eq!(server.send(&caller, b"answer", 0, received.source, true), Ok(6));
    let mut buffer = [0u8; 64];
    let received = client.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"answer");
    assert_eq!(received.source, Some(local(5353)));

    // An associated socket hears only its peer.
    let stranger = Socket::new(network.clone(), Kind::Datagram);
    client.connect(&caller, Address::Ipv4(v4(local(5353))), true).unwrap();
    stranger.send(&caller, b"noise", 0, Some(client.local_address(&caller)), true).unwrap();
    server.send(&caller, b"signal", 0, Some(client.local_address(&caller)), true).unwrap();
    let received = client.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"signal");
    assert_eq!(client.receive(&caller, &mut buffer, 0, true), Err(Errno::EAGAIN));
    assert_eq!(client.send(&caller, &vec![0u8; 70_000], 0, None, true), Err(Errno::EMSGSIZE));
}

#[test]
fn options_read_back_what_was_set() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let socket = Socket::new(network.clone(), Kind::Stream);
    let one = 1i32.to_ne_bytes();
    socket.set_option(&caller, option::SOL_SOCKET, option::SO_REUSEADDR, &one).unwrap();
    socket.set_option(&caller, option::IPPROTO_TCP, option::TCP_NODELAY, &one).unwrap();
    socket.set_option(&caller, option::SOL_SOCKET, option::SO_RCVBUF, &(1i32 << 20).to_ne_bytes()).unwrap();
    let integer = |level, name| {
        i32::from_ne_bytes(socket.option(&caller, level, name).unwrap()[..4].try_into().unwrap())
    };
    assert_eq!(integer(option::SOL_SOCKET, option::SO_REUSEADDR), 1);
    assert_eq!(integer(option::IPPROTO_TCP, option::TCP_NODELAY), 1);
    // Doubled, and no larger than twice `net.core.rmem_max`, as on Linux.
    assert_eq!(integer(option::SOL_SOCKET, option::SO_RCVBUF), 2 * 212_992);
    socket.set_option(&caller, option::SOL_SOCKET, option::SO_SNDBUF, &10_000i32.to_ne_bytes()).unwrap();
    assert_eq!(integer(option::SOL_SOCKET, option::SO_SNDBUF), 20_000);
    assert_eq!(integer(option::SOL_SOCKET, option::SO_TYPE), 1);
    assert_eq!(integer(option::SOL_SOCKET, option::SO_ERROR), 0);
    assert_eq!(socket.set_option(&caller, 999, 1, &one), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        socket.set_option(&caller, option::SOL_SOCKET, option::SO_KEEPALIVE, &[1]),
        Err(Errno::EINVAL)
    );
    let udp = Socket::new(network, Kind::Datagram);
    assert_eq!(
        udp.set_option(&caller, option::IPPROTO_TCP, option::TCP_NODELAY, &one),
        Err(Errno::ENOPROTOOPT)
    );
}

#[test]
fn frames_to_the_machine_itself_stay_home() {
    let mac = [2, 0, 0, 0, 0, 9];
    let mut to_self = vec![0u8; 60];
    to_self[..6].copy_from_slice(&mac);
    assert!(link::stays_home(&mac, &to_self));
    let mut elsewhere = to_self.clone();
    elsewhere[..6].copy_from_slice(&[2, 0, 0, 0, 0, 10]);
    assert!(!link::stays_home(&mac, &elsewhere));
    // An ARP request for the sender's own address.
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&mac);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&mac);
    arp.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1]);
    assert!(link::stays_home(&mac, &arp));
    let mut other = arp.clone();
    other[41] = 2;
    assert!(!link::stays_home(&mac, &other), "a request for another machine goes out");
    assert!(!link::stays_home(&LOOP_ONLY_MAC, &[0u8; 10]));
}

/// One end of a wire between two cards.
struct WireEnd {
    mac: [u8; 6],
    incoming: Arc<Mutex<VecDeque<Vec<u8>>>>,
    outgoing: Arc<Mutex<VecDeque<Vec<u8>>>>,
}

impl NetworkDevice for WireEnd {
    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn mtu(&self) -> usize {
        1500
    }

    fn receive(&self, consume: &mut dyn FnMut(&[u8])) -> bool {
        let frame = self.incoming.lock().unwrap().pop_front();
        frame.map(|frame| consume(&frame)).is_some()
    }

    fn transmit(&self, length: usize, fill: &mut dyn FnMut(&mut [u8])) -> bool {
        let mut frame = vec![0u8; length];
        fill(&mut frame);
        self.outgoing.lock().unwrap().push_back(frame);
        true
    }

    fn can_transmit(&self) -> bool {
        true
    }

    fn flush(&self) {}
}

fn wired_pair() -> (Arc<Network>, Arc<Network>) {
    let left = Arc::new(Mutex::new(VecDeque::new()));
    let right = Arc::new(Mutex::new(VecDeque::new()));
    let a = WireEnd { mac: [2, 0, 0, 0, 0, 1], incoming: left.clone(), outgoing: right.clone() };
    let b = WireEnd { mac: [2, 0, 0, 0, 0, 2], incoming: right, outgoing: left };
    let settings = |last| Settings {
        address: Some((Ipv4Addr::new(192, 168, 7, last), 24)),
        gateway: None,
        nameservers: vec![],
        reports_activity: false,
    };
    (Network::new(Some(Arc::new(a)), &settings(1), 1, 0), Network::new(Some(Arc::new(b)), &settings(2), 2, 0))
}

#[test]
fn two_machines_talk_over_a_wire() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (a, b) = wired_pair();
    assert_eq!(a.configuration().address, Some((Ipv4Addr::new(192, 168, 7, 1), 24)));
    let pump = || {
        for _ in 0..20 {
            a.poll(machine.monotonic_ns());
            b.poll(machine.monotonic_ns());
        }
    };
    let listener = Socket::new(b.clone(), Kind::Stream);
    listener.bind(&caller, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80)).unwrap();
    listener.listen(&caller, 4).unwrap();
    let client = Socket::new(a.clone(), Kind::Stream);
    let server_address = SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 2), 80);
    assert_eq!(client.connect(&caller, Address::Ipv4(server_address), true), Err(Errno::EINPROGRESS));
    pump();
    let (server, peer) = listener.accept(&caller, true).expect("connected over the wire");
    assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(192, 168, 7, 1)));
    assert_eq!(client.send(&caller, b"GET /", 0, None, true), Ok(5));
    pump();
    let mut buffer = [0u8; 16];
    let received = server.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"GET /");
    // Each machine still reaches itself through its own address.
    let own = Socket::new(a.clone(), Kind::Datagram);
    own.bind(&caller, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 7, 1)), 99)).unwrap();
    let sender = Socket::new(a, Kind::Datagram);
    sender
        .send(&caller, b"self", 0, Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 7, 1)), 99)), true)
        .unwrap();
    let received = own.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"self");
}

/// Frames `network` has sent through its card so far.
fn frames_sent(network: &Network) -> u64 {
    network
        .interfaces()
        .iter()
        .find(|interface| interface.name == "eth0")
        .map_or(0, |eth0| eth0.counters.sent_packets)
}

#[test]
fn keep_alive_waits_the_idle_time_before_its_first_probe() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (a, b) = wired_pair();
    let pump = |now_ns: u64| {
        machine.now_ns.store(now_ns, core::sync::atomic::Ordering::Relaxed);
        for _ in 0..20 {
            a.poll(now_ns);
            b.poll(now_ns);
        }
    };
    let listener = Socket::new(b.clone(), Kind::Stream);
    listener.bind(&caller, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80)).unwrap();
    listener.listen(&caller, 4).unwrap();
    let client = Socket::new(a.clone(), Kind::Stream);
    let server_address = SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 2), 80);
    assert_eq!(client.connect(&caller, Address::Ipv4(server_address), true), Err(Errno::EINPROGRESS));
    pump(0);
    let (_server, _) = listener.accept(&caller, true).expect("connected over the wire");
    // The router solicitations of SLAAC (three, four seconds apart) are
    // over by 10 s, when keep-alive is turned on with an idle time of 300 s.
    for seconds in [4, 8, 10] {
        pump(seconds * 1_000_000_000);
    }
    let before = frames_sent(&a);
    let one = 1i32.to_ne_bytes();
    client.set_option(&caller, option::IPPROTO_TCP, option::TCP_KEEPIDLE, &300i32.to_ne_bytes()).unwrap();
    client.set_option(&caller, option::SOL_SOCKET, option::SO_KEEPALIVE, &one).unwrap();
    pump(10_030_000_000);
    assert_eq!(frames_sent(&a), before, "a probe went out as keep-alive was turned on");
    for seconds in [1, 30, 299] {
        pump((10 + seconds) * 1_000_000_000);
        assert_eq!(frames_sent(&a), before, "a probe went out after {seconds} s of 300");
    }
    pump(311 * 1_000_000_000);
    assert!(frames_sent(&a) > before, "no probe after the idle time");
}

#[test]
fn closing_a_connection_with_unread_data_resets_it() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    let (_listener, client, server) = connected_pair(&network, &caller, 6000);
    client.send(&caller, b"unread", 0, None, true).unwrap();
    drop(server);
    network.poll(0);
    let mut buffer = [0u8; 8];
    assert_eq!(
        client.receive(&caller, &mut buffer, 0, true).map(|received| received.length),
        Err(Errno::ECONNRESET)
    );
    assert_eq!(client.send(&caller, b"x", 0, None, true), Err(Errno::EPIPE));
}

#[test]
fn a_connected_datagram_socket_names_the_address_it_sends_from() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = loop_only();
    // As glibc's getaddrinfo asks before sorting its answers: one IPv6
    // socket connected to `::`, then (after AF_UNSPEC) to 0.0.0.0.
    let socket = Socket::new_in(network.clone(), Kind::Datagram, true);
    let any6 = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 5432, 0, 0);
    socket.connect(&caller, Address::Ipv6(any6), true).unwrap();
    assert_eq!(socket.local_address(&caller).ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    socket.connect(&caller, Address::Unspecified, true).unwrap();
    let any4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5432);
    socket.connect(&caller, Address::Ipv4(any4), true).unwrap();
    let Address::Ipv6(seen) = socket.application_address(socket.local_address(&caller)) else {
        panic!("an IPv6 address")
    };
    assert_eq!(seen.ip().to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
    // Unconnected, it shows what it is bound to.
    let unbound = Socket::new(network, Kind::Datagram);
    assert_eq!(unbound.local_address(&caller), SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
}
