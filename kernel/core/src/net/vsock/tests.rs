use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::vsock::{HEADER_SIZE, Header, TYPE_STREAM, op, shutdown};
use spin::Mutex;

use super::socket::VsockSocket;
use super::{BUFFER_BYTES, Vsock, VsockAddress, VsockDevice};
use crate::errno::Errno;
use crate::fake::FakeMachine;
use crate::net::abi::shut;
use crate::vfs::SpecialFile;
use crate::vfs::node::Caller;
use crate::vfs::waiters::events::{POLLIN, POLLOUT};

const GUEST: u32 = 3;
const HOST: u32 = 2;

/// A device that records what the guest sends and hands over what a test
/// queued; it refuses to send while `is_full`.
#[derive(Default)]
struct FakeDevice {
    sent: Mutex<Vec<(Header, Vec<u8>)>>,
    incoming: Mutex<VecDeque<Vec<u8>>>,
    is_full: Mutex<bool>,
}

impl VsockDevice for FakeDevice {
    fn guest_cid(&self) -> u32 {
        GUEST
    }

    fn payload_max(&self) -> usize {
        4052
    }

    fn send(&self, header: &[u8; HEADER_SIZE], payload: &[u8]) -> bool {
        if *self.is_full.lock() {
            return false;
        }
        let header = Header::decode(header).expect("a whole header");
        assert_eq!(header.length as usize, payload.len(), "the length matches the data");
        self.sent.lock().push((header, payload.to_vec()));
        true
    }

    fn receive(&self, consume: &mut dyn FnMut(&[u8])) -> bool {
        let packet = self.incoming.lock().pop_front();
        match packet {
            Some(bytes) => {
                consume(&bytes);
                true
            }
            None => false,
        }
    }
}

impl FakeDevice {
    fn take_sent(&self) -> Vec<(Header, Vec<u8>)> {
        core::mem::take(&mut *self.sent.lock())
    }
}

/// A packet from the host's `port` to the guest's `guest_port`.
fn from_host(port: u32, guest_port: u32, op: u16, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        source_cid: u64::from(HOST),
        destination_cid: u64::from(GUEST),
        source_port: port,
        destination_port: guest_port,
        length: payload.len() as u32,
        socket_type: TYPE_STREAM,
        op,
        flags: 0,
        buffer_allocation: 64 * 1024,
        forwarded_count: 0,
    };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn with_flags(mut bytes: Vec<u8>, flags: u32) -> Vec<u8> {
    bytes[32..36].copy_from_slice(&flags.to_le_bytes());
    bytes
}

fn setup() -> (Arc<FakeDevice>, Arc<Vsock>) {
    let device = Arc::new(FakeDevice::default());
    let vsock = Vsock::new(device.clone(), 7);
    (device, vsock)
}

#[test]
fn an_address_survives_encoding() {
    let address = VsockAddress { cid: 2, port: 8080 };
    let bytes = address.encode();
    assert_eq!(bytes.len(), 16);
    assert_eq!(VsockAddress::parse(&bytes), Ok(address));
    assert_eq!(VsockAddress::parse(&bytes[..10]), Err(Errno::EINVAL));
    let mut other = bytes.clone();
    other[0] = 2;
    assert_eq!(VsockAddress::parse(&other), Err(Errno::EAFNOSUPPORT));
}

#[test]
fn a_listener_accepts_a_host_connection_and_carries_data_both_ways() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (device, vsock) = setup();
    let socket = VsockSocket::new(&vsock);
    socket.bind(VsockAddress { cid: u32::MAX, port: 5000 }).unwrap();
    socket.listen(4).unwrap();
    assert_eq!(socket.poll() & POLLIN, 0);

    vsock.receive_packet(&from_host(1_000_000, 5000, op::REQUEST, &[]));
    let sent = device.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.op, op::RESPONSE);
    assert_eq!((sent[0].0.destination_port, sent[0].0.source_port), (1_000_000, 5000));
    assert_eq!(sent[0].0.buffer_allocation, BUFFER_BYTES, "the answer carries the credit");
    assert_ne!(socket.poll() & POLLIN, 0);

    let (connection, peer) = socket.accept(&caller, true).unwrap();
    assert_eq!(peer, VsockAddress { cid: HOST, port: 1_000_000 });
    assert_eq!(connection.local_address(), VsockAddress { cid: GUEST, port: 5000 });
    assert_ne!(connection.poll() & POLLOUT, 0, "the request gave the host's credit");

    vsock.receive_packet(&from_host(1_000_000, 5000, op::RW, b"GET / HTTP/1.0\r\n\r\n"));
    let mut buffer = [0u8; 64];
    let count = connection.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..count], b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(connection.receive(&caller, &mut buffer, 0, true), Err(Errno::EAGAIN));

    assert_eq!(connection.send(&caller, b"HTTP/1.0 200 OK\r\n", 0, true), Ok(17));
    let sent = device.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0.op, sent[0].1.as_slice()), (op::RW, &b"HTTP/1.0 200 OK\r\n"[..]));

    // The host ends the connection: the guest reads the end, then answers
    // the full shutdown with a reset.
    vsock.receive_packet(&with_flags(
        from_host(1_000_000, 5000, op::SHUTDOWN, &[]),
        shutdown::SEND | shutdown::RECEIVE,
    ));
    assert_eq!(connection.receive(&caller, &mut buffer, 0, true), Ok(0));
    assert_eq!(device.take_sent()[0].0.op, op::RST);
    assert_eq!(connection.send(&caller, b"late", 0, true), Err(Errno::EPIPE));
}

#[test]
fn sends_stop_at_the_hosts_credit_and_go_on_after_an_update() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (device, vsock) = setup();
    let listener = VsockSocket::new(&vsock);
    listener.bind(VsockAddress { cid: GUEST, port: 80 }).unwrap();
    listener.listen(1).unwrap();
    let mut request = from_host(9, 80, op::REQUEST, &[]);
    request[36..40].copy_from_slice(&10_000u32.to_le_bytes());
    vsock.receive_packet(&request);
    let (connection, _) = listener.accept(&caller, true).unwrap();
    device.take_sent();

    let data = vec![7u8; 25_000];
    assert_eq!(connection.send(&caller, &data, 0, true), Ok(10_000));
    let sent = device.take_sent();
    assert!(sent.iter().all(|(header, payload)| header.op == op::RW && payload.len() <= 4052));
    assert_eq!(sent.iter().map(|(_, payload)| payload.len()).sum::<usize>(), 10_000);
    assert_eq!(connection.send(&caller, &data, 0, true), Err(Errno::EAGAIN));
    assert_eq!(connection.poll() & POLLOUT, 0);

    let mut update = from_host(9, 80, op::CREDIT_UPDATE, &[]);
    update[36..40].copy_from_slice(&10_000u32.to_le_bytes());
    update[40..44].copy_from_slice(&4_000u32.to_le_bytes());
    vsock.receive_packet(&update);
    assert_ne!(connection.poll() & POLLOUT, 0);
    assert_eq!(connection.send(&caller, &data, 0, true), Ok(4_000));
}

#[test]
fn reading_a_quarter_of_the_buffer_tells_the_host() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (device, vsock) = setup();
    let listener = VsockSocket::new(&vsock);
    listener.bind(VsockAddress { cid: GUEST, port: 80 }).unwrap();
    listener.listen(1).unwrap();
    vsock.receive_packet(&from_host(9, 80, op::REQUEST, &[]));
    let (connection, _) = listener.accept(&caller, true).unwrap();
    device.take_sent();
    let chunk = vec![1u8; 4000];
    let chunks = (BUFFER_BYTES as usize / 4) / chunk.len() + 1;
    for _ in 0..chunks {
        vsock.receive_packet(&from_host(9, 80, op::RW, &chunk));
    }
    assert!(device.take_sent().is_empty(), "nothing to say before the guest reads");
    let mut buffer = vec![0u8; chunks * chunk.len()];
    assert_eq!(connection.receive(&caller, &mut buffer, 0, true), Ok(buffer.len()));
    let sent = device.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.op, op::CREDIT_UPDATE);
    assert_eq!(sent[0].0.forwarded_count as usize, buffer.len());
}

#[test]
fn data_beyond_the_credit_resets_the_connection() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (device, vsock) = setup();
    let listener = VsockSocket::new(&vsock);
    listener.bind(VsockAddress { cid: GUEST, port: 80 }).unwrap();
    listener.listen(1).unwrap();
    vsock.receive_packet(&from_host(9, 80, op::REQUEST, &[]));
    let (connection, _) = listener.accept(&caller, true).unwrap();
    device.take_sent();
    let chunk = vec![1u8; 4000];
    for _ in 0..=(BUFFER_BYTES as usize / chunk.len()) {
        vsock.receive_packet(&from_host(9, 80, op::RW, &chunk));
    }
    assert_eq!(device.take_sent().last().map(|(header, _)| header.op), Some(op::RST));
    let mut buffer = vec![0u8; BUFFER_BYTES as usize];
    assert!(connection.receive(&caller, &mut buffer, 0, true).is_ok(), "what fitted is still read");
}

#[test]
fn a_connect_to_the_host_is_answered_or_refused() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (device, vsock) = setup();
    let socket = VsockSocket::new(&vsock);
    let host = VsockAddress { cid: HOST, port: 9000 };
    assert_eq!(socket.connect(&caller, host, true), Err(Errno::EINPROGRESS));
    let sent = device.take_sent();
    assert_eq!(sent[0].0.op, op::REQUEST);
    let port = sent[0].0.source_port;
    assert!(port >= 1024);
    assert_eq!(socket.poll() & POLLOUT, 0);
    vsock.receive_packet(&from_host(9000, port, op::RESPONSE, &[]));
    assert_ne!(socket.poll() & POLLOUT, 0);
    assert_eq!(socket.peer_address(), Ok(host));
    assert_eq!(socket.option(1, 4).unwrap(), 0i32.to_ne_bytes().to_vec(), "SO_ERROR is clear");
    socket.shutdown(shut::WRITE).unwrap();
    let sent = device.take_sent();
    assert_eq!((sent[0].0.op, sent[0].0.flags), (op::SHUTDOWN, shutdown::SEND));

    let refused = VsockSocket::new(&vsock);
    assert_eq!(refused.connect(&caller, host, true), Err(Errno::EINPROGRESS));
    let port = device.take_sent()[0].0.source_port;
    vsock.receive_packet(&from_host(9000, port, op::RST, &[]));
    assert!(device.take_sent().is_empty(), "a reset is never answered");
    let error = refused.option(1, 4).unwrap();
    assert_eq!(error, (-Errno::ECONNREFUSED.to_return() as i32).to_ne_bytes().to_vec());
}

#[test]
fn packets_for_nobody_are_refused_and_busy_devices_delay_control_packets() {
    let (device, vsock) = setup();
    vsock.receive_packet(&from_host(5, 6, op::REQUEST, &[]));
    assert_eq!(device.take_sent()[0].0.op, op::RST, "no listener on port 6");
    vsock.receive_packet(&from_host(5, 6, op::RW, b"x"));
    assert_eq!(device.take_sent()[0].0.op, op::RST);
    vsock.receive_packet(&[0u8; 10]);
    assert!(device.take_sent().is_empty(), "a runt packet is dropped");

    *device.is_full.lock() = true;
    vsock.receive_packet(&from_host(5, 6, op::REQUEST, &[]));
    assert!(device.take_sent().is_empty());
    *device.is_full.lock() = false;
    vsock.poll();
    assert_eq!(device.take_sent()[0].0.op, op::RST, "the outbox goes out at the next poll");
}

#[test]
fn closing_an_accepted_socket_shuts_both_ways_and_a_reset_forgets_it() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (device, vsock) = setup();
    let listener = VsockSocket::new(&vsock);
    listener.bind(VsockAddress { cid: GUEST, port: 80 }).unwrap();
    listener.listen(1).unwrap();
    vsock.receive_packet(&from_host(9, 80, op::REQUEST, &[]));
    vsock.receive_packet(&from_host(10, 80, op::REQUEST, &[]));
    assert_eq!(device.take_sent()[1].0.op, op::RST, "the backlog of one is full");
    let (connection, _) = listener.accept(&caller, true).unwrap();
    drop(connection);
    let sent = device.take_sent();
    assert_eq!((sent[0].0.op, sent[0].0.flags), (op::SHUTDOWN, shutdown::SEND | shutdown::RECEIVE));
    vsock.receive_packet(&from_host(9, 80, op::RST, &[]));
    vsock.receive_packet(&from_host(9, 80, op::RW, b"stale"));
    assert_eq!(device.take_sent()[0].0.op, op::RST, "the connection is gone");
    assert!(vsock.table.lock().connections.is_empty());
}

#[test]
fn a_released_connection_the_host_never_resets_is_forgotten_after_the_close_timeout() {
    let (device, vsock) = setup();
    let port = vsock.bind(6000).unwrap();
    let listener = vsock.listen(port, 4, Arc::new(crate::vfs::WaiterList::new())).unwrap();
    for host_port in [10, 11] {
        vsock.receive_packet(&from_host(host_port, 6000, op::REQUEST, &[]));
    }
    let first = listener.take().unwrap();
    let second = listener.take().unwrap();
    device.take_sent();
    assert_eq!(vsock.connection_count(), 2);

    first.release(&vsock);
    second.release(&vsock);
    let sent = device.take_sent();
    assert!(sent.iter().all(|(header, _)| header.op == op::SHUTDOWN), "{sent:?}");
    // The host answers one of them; the other never.
    vsock.receive_packet(&from_host(11, 6000, op::RST, &[]));
    assert_eq!(vsock.connection_count(), 1);

    let released_ns = 1_000;
    let deadline = vsock.expire_closing(released_ns);
    assert_eq!(deadline, Some(released_ns + super::CLOSE_TIMEOUT_NS), "one waits");
    assert_eq!(vsock.expire_closing(released_ns + super::CLOSE_TIMEOUT_NS - 1), deadline);
    assert_eq!(vsock.connection_count(), 1, "still waiting for the reset");
    assert!(device.take_sent().is_empty());

    assert_eq!(vsock.expire_closing(released_ns + super::CLOSE_TIMEOUT_NS), None, "nothing waits");
    assert_eq!(vsock.connection_count(), 0, "the table does not keep it");
    let sent = device.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].0.op, sent[0].0.destination_port), (op::RST, 10), "the host is told");
    // The port is free again for a new connection from the same host port.
    vsock.receive_packet(&from_host(10, 6000, op::REQUEST, &[]));
    assert_eq!(device.take_sent()[0].0.op, op::RESPONSE);
}

#[test]
fn requests_beyond_the_connection_limit_are_refused() {
    let (device, vsock) = setup();
    let port = vsock.bind(6001).unwrap();
    let listener =
        vsock.listen(port, super::CONNECTION_LIMIT + 8, Arc::new(crate::vfs::WaiterList::new())).unwrap();
    for host_port in 0..super::CONNECTION_LIMIT as u32 + 3 {
        vsock.receive_packet(&from_host(host_port, 6001, op::REQUEST, &[]));
    }
    let sent = device.take_sent();
    let refused = sent.iter().filter(|(header, _)| header.op == op::RST).count();
    assert_eq!(refused, 3, "the last three are refused");
    assert_eq!(vsock.connection_count(), super::CONNECTION_LIMIT);
    drop(listener);
}
