use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::{Key, LocalKind, LocalName, LocalSocket, Names};
use crate::errno::Errno;
use crate::fake::FakeMachine;
use crate::net::abi::{message, shut};
use crate::vfs::file::flags;
use crate::vfs::node::Caller;
use crate::vfs::waiters::events::{POLLHUP, POLLIN, POLLOUT, POLLRDHUP};
use crate::vfs::{FileObject, OpenFile, SpecialFile};

fn abstract_name(name: &str) -> LocalName {
    LocalName::Abstract(name.as_bytes().to_vec())
}

fn key(name: &str) -> Key {
    Key::Abstract(name.as_bytes().to_vec())
}

#[test]
fn a_stream_pair_carries_bytes_both_ways_until_shut_down() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let (a, b) = LocalSocket::pair(&names, LocalKind::Stream);
    assert_eq!(a.poll() & (POLLIN | POLLOUT), POLLOUT);
    assert_eq!(a.send(&caller, b"hello", 0, None, Vec::new(), true), Ok(5));
    assert_eq!(a.send(&caller, b", world", 0, None, Vec::new(), true), Ok(7));
    assert_ne!(b.poll() & POLLIN, 0);
    assert_eq!(b.available_bytes(), 12);
    let mut buffer = [0u8; 64];
    let peeked = b.receive(&caller, &mut buffer[..5], message::PEEK, true).unwrap();
    assert_eq!(&buffer[..peeked.length], b"hello");
    let received = b.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"hello, world", "a stream joins what was sent");
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).err(), Some(Errno::EAGAIN));

    assert_eq!(b.send(&caller, b"back", 0, None, Vec::new(), true), Ok(4));
    assert_eq!(a.receive(&caller, &mut buffer, 0, true).unwrap().length, 4);

    a.shutdown(shut::WRITE).unwrap();
    assert_eq!(a.send(&caller, b"x", 0, None, Vec::new(), true), Err(Errno::EPIPE));
    assert_eq!(b.poll() & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).unwrap().length, 0, "the end of the stream");
    assert_eq!(b.send(&caller, b"still", 0, None, Vec::new(), true), Ok(5), "the other way stays open");
    drop(a);
    assert_ne!(b.poll() & POLLHUP, 0);
    assert_eq!(b.send(&caller, b"x", 0, None, Vec::new(), true), Err(Errno::EPIPE));
}

#[test]
fn a_full_stream_refuses_more_and_takes_a_partial_write() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let (a, b) = LocalSocket::pair(&names, LocalKind::Stream);
    let big = vec![7u8; 300 * 1024];
    let sent = a.send(&caller, &big, 0, None, Vec::new(), true).unwrap();
    assert!(sent < big.len() && sent > 0, "{sent} bytes of a write larger than the buffer");
    assert_eq!(a.poll() & POLLOUT, 0);
    assert_eq!(a.send(&caller, b"x", 0, None, Vec::new(), true), Err(Errno::EAGAIN));
    let mut buffer = vec![0u8; 4096];
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).unwrap().length, 4096);
    assert_ne!(a.poll() & POLLOUT, 0, "reading made room");
}

#[test]
fn closing_with_unread_data_resets_the_peer() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let (a, b) = LocalSocket::pair(&names, LocalKind::Stream);
    b.send(&caller, b"never read", 0, None, Vec::new(), true).unwrap();
    drop(a);
    let mut buffer = [0u8; 16];
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).err(), Some(Errno::ECONNRESET));
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).unwrap().length, 0);
}

#[test]
fn packets_keep_their_boundaries() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let (a, b) = LocalSocket::pair(&names, LocalKind::SeqPacket);
    a.send(&caller, b"first", 0, None, Vec::new(), true).unwrap();
    a.send(&caller, b"", 0, None, Vec::new(), true).unwrap();
    a.send(&caller, b"third message", 0, None, Vec::new(), true).unwrap();
    let mut buffer = [0u8; 64];
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).unwrap().length, 5);
    let empty = b.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!((empty.length, empty.full_length), (0, 0));
    let truncated = b.receive(&caller, &mut buffer[..5], 0, true).unwrap();
    assert_eq!((truncated.length, truncated.full_length), (5, 13), "the rest of the message is gone");
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).err(), Some(Errno::EAGAIN));
    drop(a);
    assert_eq!(b.receive(&caller, &mut buffer, 0, true).unwrap().length, 0);
}

#[test]
fn datagrams_carry_their_sender() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let server = LocalSocket::new(&names, LocalKind::Datagram);
    server.bind(abstract_name("server"), None).unwrap();
    let client = LocalSocket::new(&names, LocalKind::Datagram);
    client.bind(abstract_name("client"), None).unwrap();
    let found = names.find(&key("server")).expect("the server's name");
    assert!(Arc::ptr_eq(&found, &server));
    assert_eq!(client.send(&caller, b"ping", 0, None, Vec::new(), true), Err(Errno::ENOTCONN));
    client.send(&caller, b"ping", 0, Some(found), Vec::new(), true).unwrap();
    let mut buffer = [0u8; 16];
    let received = server.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"ping");
    assert_eq!(received.source, Some(abstract_name("client")));

    // A connected socket takes datagrams from its peer only.
    let other = LocalSocket::new(&names, LocalKind::Datagram);
    server.connect(&caller, client.clone(), true).unwrap();
    assert_eq!(other.send(&caller, b"x", 0, Some(server.clone()), Vec::new(), true), Err(Errno::EPERM));
    assert_eq!(server.peer_name(), Ok(abstract_name("client")));
    server.disconnect().unwrap();
    assert_eq!(server.peer_name(), Err(Errno::ENOTCONN));
    other.send(&caller, b"anonymous", 0, Some(server.clone()), Vec::new(), true).unwrap();
    assert_eq!(server.receive(&caller, &mut buffer, 0, true).unwrap().source, Some(LocalName::Unnamed));
}

#[test]
fn a_datagram_inbox_fills_up() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let (a, b) = LocalSocket::pair(&names, LocalKind::Datagram);
    let datagram = vec![1u8; 50 * 1024];
    let mut sent = 0;
    while a.send(&caller, &datagram, 0, None, Vec::new(), true).is_ok() {
        sent += 1;
        assert!(sent < 100, "the inbox never fills");
    }
    assert_eq!(a.send(&caller, &datagram, 0, None, Vec::new(), true), Err(Errno::EAGAIN));
    assert_eq!(a.poll() & POLLOUT, 0);
    let mut buffer = vec![0u8; 64 * 1024];
    b.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_ne!(a.poll() & POLLOUT, 0, "taking a datagram made room");
    assert_eq!(a.send(&caller, &vec![0u8; 300 * 1024], 0, None, Vec::new(), true), Err(Errno::EMSGSIZE));
    drop(b);
    assert_eq!(a.send(&caller, b"x", 0, None, Vec::new(), true), Err(Errno::ECONNREFUSED));
}

#[test]
fn listeners_queue_connections_up_to_their_backlog() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let listener = LocalSocket::new(&names, LocalKind::Stream);
    listener.bind(abstract_name("listener"), None).unwrap();
    let client = LocalSocket::new(&names, LocalKind::Stream);
    assert_eq!(
        client.connect(&caller, listener.clone(), true),
        Err(Errno::ECONNREFUSED),
        "not listening yet"
    );
    listener.listen(1, super::PeerCredentials::default()).unwrap();
    assert_eq!(listener.poll() & POLLIN, 0);
    client.connect(&caller, listener.clone(), true).unwrap();
    assert_eq!(client.connect(&caller, listener.clone(), true), Err(Errno::EISCONN));
    let second = LocalSocket::new(&names, LocalKind::Stream);
    second.connect(&caller, listener.clone(), true).unwrap();
    let third = LocalSocket::new(&names, LocalKind::Stream);
    assert_eq!(third.connect(&caller, listener.clone(), true), Err(Errno::EAGAIN), "the backlog is full");
    let datagram = LocalSocket::new(&names, LocalKind::Datagram);
    assert_eq!(datagram.connect(&caller, listener.clone(), true), Err(Errno::EPROTOTYPE));

    assert_ne!(listener.poll() & POLLIN, 0);
    client.send(&caller, b"before accept", 0, None, Vec::new(), true).unwrap();
    let (server, peer) = listener.accept(&caller, true).unwrap();
    assert_eq!(peer, LocalName::Unnamed);
    assert_eq!(server.local_name(), abstract_name("listener"));
    assert_eq!(client.peer_name(), Ok(abstract_name("listener")));
    let mut buffer = [0u8; 32];
    let received = server.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..received.length], b"before accept");
    third.connect(&caller, listener.clone(), true).expect("accepting made room");
    listener.accept(&caller, true).unwrap();
    listener.accept(&caller, true).unwrap();
    assert_eq!(listener.accept(&caller, true).err(), Some(Errno::EAGAIN));
}

#[test]
fn names_are_unique_and_freed_with_their_socket() {
    let names = Names::new();
    let first = LocalSocket::new(&names, LocalKind::Stream);
    first.bind(abstract_name("name"), None).unwrap();
    assert_eq!(first.bind(abstract_name("other"), None), Err(Errno::EINVAL), "bound already");
    let second = LocalSocket::new(&names, LocalKind::Stream);
    assert_eq!(second.bind(abstract_name("name"), None), Err(Errno::EADDRINUSE));
    drop(first);
    assert!(names.find(&key("name")).is_none());
    second.bind(abstract_name("name"), None).unwrap();

    let automatic = LocalSocket::new(&names, LocalKind::Datagram);
    automatic.bind(LocalName::Unnamed, None).unwrap();
    let LocalName::Abstract(name) = automatic.local_name() else { panic!("an abstract name") };
    assert_eq!(name.len(), 5);
    let listener = LocalSocket::new(&names, LocalKind::SeqPacket);
    listener.listen(4, super::PeerCredentials::default()).unwrap();
    assert!(matches!(listener.local_name(), LocalName::Abstract(_)), "listening binds a name");
}

/// An open file to pass around: one end of another socket pair.
fn some_file(names: &Arc<Names>) -> Arc<OpenFile> {
    let (end, _) = LocalSocket::pair(names, LocalKind::Stream);
    OpenFile::new(FileObject::Special(end as Arc<_>), flags::O_RDWR)
}

#[test]
fn files_travel_with_the_bytes_they_were_sent_with() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let names = Names::new();
    let (a, b) = LocalSocket::pair(&names, LocalKind::Stream);
    let (first, second) = (some_file(&names), some_file(&names));
    a.send(&caller, b"plain", 0, None, Vec::new(), true).unwrap();
    a.send(&caller, b"ab", 0, None, vec![first.clone()], true).unwrap();
    a.send(&caller, b"cd", 0, None, vec![second.clone()], true).unwrap();
    let mut buffer = [0u8; 16];
    let with_first = b.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(
        &buffer[..with_first.length],
        b"plainab",
        "a read goes on through bytes with files, and stops"
    );
    assert!(with_first.rights.len() == 1 && Arc::ptr_eq(&with_first.rights[0], &first));
    let with_second = b.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!(&buffer[..with_second.length], b"cd");
    assert!(with_second.rights.len() == 1 && Arc::ptr_eq(&with_second.rights[0], &second));

    let (c, d) = LocalSocket::pair(&names, LocalKind::Datagram);
    c.send(&caller, b"", 0, None, vec![first.clone(), second.clone()], true).unwrap();
    let datagram = d.receive(&caller, &mut buffer, 0, true).unwrap();
    assert_eq!((datagram.length, datagram.rights.len()), (0, 2), "an empty datagram carries files");

    let (e, f) = LocalSocket::pair(&names, LocalKind::SeqPacket);
    e.send(&caller, b"one", 0, None, Vec::new(), true).unwrap();
    e.send(&caller, b"two", 0, None, vec![first.clone()], true).unwrap();
    assert!(f.receive(&caller, &mut buffer, 0, true).unwrap().rights.is_empty());
    assert_eq!(f.receive(&caller, &mut buffer, 0, true).unwrap().rights.len(), 1);
    drop((with_first, with_second, datagram));
    assert_eq!(Arc::strong_count(&first), 1, "nothing keeps passed files once received");
}

#[test]
fn a_path_that_fills_sun_path_round_trips() {
    let mut address = crate::net::address::family::UNIX.to_ne_bytes().to_vec();
    address.extend_from_slice(&[b'p'; super::PATH_MAX]);
    let name = LocalName::parse(&address).unwrap();
    assert_eq!(name.encode(), address, "no NUL past the end of sun_path");
}

proptest::proptest! {
    /// Any bytes parse as a local name or fail cleanly, and a name that
    /// parses encodes to bytes that parse back to it.
    #[test]
    fn local_names_parse_or_fail_cleanly(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
        let mut address = crate::net::address::family::UNIX.to_ne_bytes().to_vec();
        address.extend_from_slice(&bytes);
        if let Ok(name) = LocalName::parse(&address) {
            proptest::prop_assert_eq!(LocalName::parse(&name.encode()), Ok(name));
        }
    }
}
