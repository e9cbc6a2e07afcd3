use alloc::vec;
use alloc::vec::Vec;

use super::{NetlinkSocket, header_flags, message_type};
use crate::errno::Errno;
use crate::fake::FakeMachine;
use crate::net::{Network, Settings};
use crate::vfs::node::Caller;

/// A request of `kind` with `flags` and sequence number `sequence`.
fn request(kind: u16, flags: u16, sequence: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    super::push_message(&mut bytes, kind, flags | header_flags::REQUEST, sequence, 0, body);
    bytes
}

/// The messages of a datagram: type, sequence, port and body.
fn messages(datagram: &[u8]) -> Vec<(u16, u32, u32, Vec<u8>)> {
    let mut found = Vec::new();
    let mut offset = 0;
    while offset + 16 <= datagram.len() {
        let length = u32::from_ne_bytes(datagram[offset..offset + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(datagram[offset + 4..offset + 6].try_into().unwrap());
        let sequence = u32::from_ne_bytes(datagram[offset + 8..offset + 12].try_into().unwrap());
        let port = u32::from_ne_bytes(datagram[offset + 12..offset + 16].try_into().unwrap());
        found.push((kind, sequence, port, datagram[offset + 16..offset + length].to_vec()));
        offset += length.next_multiple_of(4);
    }
    found
}

/// The attribute `kind` of a message body whose fixed part is `skip` bytes.
fn attribute(body: &[u8], skip: usize, kind: u16) -> Option<Vec<u8>> {
    let mut offset = skip;
    while offset + 4 <= body.len() {
        let length = u16::from_ne_bytes(body[offset..offset + 2].try_into().unwrap()) as usize;
        let found = u16::from_ne_bytes(body[offset + 2..offset + 4].try_into().unwrap());
        if found == kind {
            return Some(body[offset + 4..offset + length].to_vec());
        }
        offset += length.next_multiple_of(4);
    }
    None
}

fn receive(socket: &NetlinkSocket, caller: &Caller<'_>) -> Vec<u8> {
    let mut buffer = vec![0u8; 8192];
    let received = socket.receive(caller, &mut buffer, 0, true).expect("an answer");
    buffer.truncate(received.length);
    buffer
}

#[test]
fn a_link_dump_lists_the_loop_and_ends() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = Network::new(None, &Settings::default(), 1, 0);
    let socket = NetlinkSocket::new(network, 3);
    socket.bind(0, 0).unwrap();
    let port = socket.port();
    assert_ne!(port, 0);
    socket.send(&caller, &request(message_type::GET_LINK, header_flags::DUMP, 7, &[0; 16]), 0).unwrap();
    let answer = messages(&receive(&socket, &caller));
    assert_eq!(answer.len(), 2, "{answer:?}");
    let (kind, sequence, answer_port, body) = &answer[0];
    assert_eq!((*kind, *sequence, *answer_port), (message_type::NEW_LINK, 7, port));
    assert_eq!(attribute(body, 16, super::attribute::IFLA_IFNAME), Some(b"lo\0".to_vec()));
    assert_eq!(i32::from_ne_bytes(body[4..8].try_into().unwrap()), 1, "lo is interface 1");
    assert_eq!(answer[1].0, message_type::DONE);
    assert_eq!(socket.receive(&caller, &mut [0u8; 16], 0, true), Err(Errno::EAGAIN));
}

#[test]
fn an_address_dump_gives_each_address() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = Network::new(None, &Settings::default(), 1, 0);
    let socket = NetlinkSocket::new(network, 3);
    socket
        .send(
            &caller,
            &request(message_type::GET_ADDRESS, header_flags::DUMP, 1, &[2, 0, 0, 0, 0, 0, 0, 0]),
            0,
        )
        .unwrap();
    let answer = messages(&receive(&socket, &caller));
    let (kind, _, _, body) = &answer[0];
    assert_eq!(*kind, message_type::NEW_ADDRESS);
    assert_eq!(body[1], 8, "the prefix length");
    assert_eq!(attribute(body, 8, super::attribute::IFA_LOCAL), Some(vec![127, 0, 0, 1]));
    assert_eq!(answer.last().unwrap().0, message_type::DONE);

    // IPv6 addresses: the loop's `::1/128`, of host scope.
    socket
        .send(
            &caller,
            &request(message_type::GET_ADDRESS, header_flags::DUMP, 2, &[10, 0, 0, 0, 0, 0, 0, 0]),
            0,
        )
        .unwrap();
    let answer = messages(&receive(&socket, &caller));
    assert_eq!(answer.len(), 2);
    let (kind, _, _, body) = &answer[0];
    assert_eq!(*kind, message_type::NEW_ADDRESS);
    assert_eq!(&body[..4], &[10, 128, super::IFA_F_PERMANENT, super::RT_SCOPE_HOST]);
    let mut loopback = [0u8; 16];
    loopback[15] = 1;
    assert_eq!(attribute(body, 8, super::attribute::IFA_ADDRESS), Some(loopback.to_vec()));
    assert_eq!(answer[1].0, message_type::DONE);
}

#[test]
fn changes_are_refused_and_acknowledgements_given() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let network = Network::new(None, &Settings::default(), 1, 0);
    let socket = NetlinkSocket::new(network, 3);
    socket.send(&caller, &request(message_type::NEW_ADDRESS, header_flags::ACK, 5, &[0; 8]), 0).unwrap();
    let answer = messages(&receive(&socket, &caller));
    assert_eq!(answer.len(), 1);
    assert_eq!(answer[0].0, message_type::ERROR);
    assert_eq!(i32::from_ne_bytes(answer[0].3[..4].try_into().unwrap()), -Errno::EOPNOTSUPP.0);

    let mut link_request = vec![0u8; 16];
    link_request[4..8].copy_from_slice(&1i32.to_ne_bytes());
    socket.send(&caller, &request(message_type::GET_LINK, header_flags::ACK, 6, &link_request), 0).unwrap();
    let answer = messages(&receive(&socket, &caller));
    assert_eq!(
        answer.iter().map(|message| message.0).collect::<Vec<_>>(),
        [message_type::NEW_LINK, message_type::ERROR]
    );
    assert_eq!(i32::from_ne_bytes(answer[1].3[..4].try_into().unwrap()), 0, "an acknowledgement");
    assert_eq!(socket.send(&caller, b"", 5), Err(Errno::ECONNREFUSED), "only the kernel listens");

    // `ip link set lo down`: index 1, IFF_UP cleared in the change mask.
    let mut down = vec![0u8; 16];
    down[4..8].copy_from_slice(&1i32.to_ne_bytes());
    down[12..16].copy_from_slice(&1u32.to_ne_bytes());
    socket.send(&caller, &request(message_type::NEW_LINK, header_flags::ACK, 7, &down), 0).unwrap();
    let answer = messages(&receive(&socket, &caller));
    assert_eq!(i32::from_ne_bytes(answer[0].3[..4].try_into().unwrap()), 0, "acknowledged");
    let mut by_name = vec![0u8; 16];
    by_name.extend_from_slice(&[7, 0, 3, 0, b'l', b'o', 0, 0]);
    socket.send(&caller, &request(message_type::GET_LINK, 0, 8, &by_name), 0).unwrap();
    let answer = messages(&receive(&socket, &caller));
    assert_eq!(answer[0].0, message_type::NEW_LINK, "found by name");
    assert_eq!(u32::from_ne_bytes(answer[0].3[8..12].try_into().unwrap()) & 1, 0, "the loop is down");
}

proptest::proptest! {
    /// Whatever bytes an application sends, the socket answers or ignores
    /// them without panicking, and every answer is a whole series of
    /// well-formed messages.
    #[test]
    fn any_bytes_are_answered_or_ignored(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
        let machine = FakeMachine::new();
        let caller = Caller::kernel(&machine);
        let socket = NetlinkSocket::new(Network::new(None, &Settings::default(), 1, 0), 3);
        proptest::prop_assert_eq!(socket.send(&caller, &bytes, 0), Ok(bytes.len()));
        let mut buffer = vec![0u8; 65536];
        while let Ok(received) = socket.receive(&caller, &mut buffer, 0, true) {
            let mut offset = 0;
            while offset < received.length {
                let length = u32::from_ne_bytes(buffer[offset..offset + 4].try_into().unwrap()) as usize;
                proptest::prop_assert!(length >= 16 && offset + length <= received.length);
                offset += length.next_multiple_of(4);
            }
        }
    }
}
