//! The RPC client against a fake server: replies matched by XID in any
//! order, calls from many threads at once, retransmission on a new
//! connection, and the deadline of a call nobody answers.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::client::{Client, Connection, Connector};
use super::rpc::{Procedure, RecordReader};
use super::xdr::{Decoder, Encoder};
use crate::errno::Errno;
use crate::fake::FakeMachine;
use crate::machine::Machine;
use crate::vfs::{Caller, FsError, WaiterList};

/// What the fake server does with calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Answers each at once.
    Answer,
    /// Holds replies until this many calls came, then sends them in
    /// reverse order.
    HoldFor(usize),
    /// Never answers.
    Silent,
    /// Takes the first call, then breaks.
    Break,
}

#[derive(Default)]
struct Wire {
    calls: Option<RecordReader>,
    held: Vec<Vec<u8>>,
    replies: VecDeque<u8>,
    xids: Vec<u32>,
    is_broken: bool,
}

/// One connection to the fake server.
struct FakeConnection {
    behaviour: Behaviour,
    wire: Mutex<Wire>,
    waiters: WaiterList,
}

impl FakeConnection {
    fn new(behaviour: Behaviour) -> Arc<FakeConnection> {
        Arc::new(FakeConnection { behaviour, wire: Mutex::new(Wire::default()), waiters: WaiterList::new() })
    }

    fn xids(&self) -> Vec<u32> {
        self.wire.lock().unwrap().xids.clone()
    }
}

/// The reply to a call: its procedure number and first argument.
fn reply_to(call: &[u8]) -> (u32, Vec<u8>) {
    let mut decoder = Decoder::new(call);
    let xid = decoder.u32().unwrap();
    let _call_type = decoder.u32().unwrap();
    let (_rpc_version, _program, _version) = (decoder.u32(), decoder.u32(), decoder.u32());
    let procedure = decoder.u32().unwrap();
    let (_flavor, _credentials) = (decoder.u32(), decoder.opaque(400).unwrap());
    let (_flavor, _verifier) = (decoder.u32(), decoder.opaque(400).unwrap());
    let argument = decoder.u32().unwrap();
    let mut reply = Encoder::new();
    reply.u32(0).u32(xid).u32(1).u32(0).u32(0).u32(0).u32(0);
    reply.u32(procedure).u32(argument);
    let length = reply.len() as u32 - 4;
    reply.patch_u32(0, 1 << 31 | length);
    (xid, reply.into_bytes())
}

impl Connection for FakeConnection {
    fn send(&self, bytes: &[u8]) -> Result<usize, Errno> {
        let mut wire = self.wire.lock().unwrap();
        if wire.is_broken {
            return Err(Errno::EPIPE);
        }
        let calls = wire.calls.get_or_insert_with(|| RecordReader::new(1 << 20));
        calls.push(bytes);
        let mut messages = Vec::new();
        while let Some(message) = calls.next_message().unwrap() {
            messages.push(message);
        }
        for message in messages {
            let (xid, reply) = reply_to(&message);
            wire.xids.push(xid);
            match self.behaviour {
                Behaviour::Answer => wire.replies.extend(reply),
                Behaviour::HoldFor(count) => {
                    wire.held.push(reply);
                    if wire.held.len() == count {
                        while let Some(reply) = wire.held.pop() {
                            wire.replies.extend(reply);
                        }
                    }
                }
                Behaviour::Silent => {}
                Behaviour::Break => wire.is_broken = true,
            }
        }
        Ok(bytes.len())
    }

    fn receive(&self, buffer: &mut [u8]) -> Result<usize, Errno> {
        let mut wire = self.wire.lock().unwrap();
        if wire.is_broken {
            return Err(Errno::ECONNRESET);
        }
        let count = buffer.len().min(wire.replies.len());
        for (slot, byte) in buffer.iter_mut().zip(wire.replies.drain(..count)) {
            *slot = byte;
        }
        Ok(count)
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }
}

/// Hands out its connections in order; refuses when none is left.
struct FakeConnector {
    connections: Mutex<VecDeque<Arc<FakeConnection>>>,
    attempts: Arc<AtomicUsize>,
}

impl Connector for FakeConnector {
    fn connect(
        &self,
        _machine: &'static dyn Machine,
        _deadline_ns: u64,
    ) -> Result<Arc<dyn Connection>, Errno> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let connection = self.connections.lock().unwrap().pop_front().ok_or(Errno::ECONNREFUSED)?;
        Ok(connection)
    }
}

fn machine() -> &'static FakeMachine {
    Box::leak(Box::new(FakeMachine::new()))
}

/// A client whose connections are `connections`, in order.
fn client(
    machine: &'static FakeMachine,
    connections: &[Arc<FakeConnection>],
    timeout_ns: Option<u64>,
) -> (Client, Arc<AtomicUsize>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let connector = FakeConnector {
        connections: Mutex::new(connections.iter().cloned().collect()),
        attempts: attempts.clone(),
    };
    (Client::new(machine, Box::new(connector), timeout_ns, 1 << 20, "test"), attempts)
}

const ECHO: Procedure = Procedure { program: 100_003, version: 3, procedure: 9 };

/// The (procedure, argument) a fake reply carries.
fn echoed(reply: &[u8]) -> (u32, u32) {
    let mut results = super::protocol::results(reply).unwrap();
    (results.u32().unwrap(), results.u32().unwrap())
}

#[test]
fn replies_find_their_callers_in_any_order() {
    let machine = machine();
    let caller = Caller::kernel(machine);
    let connection = FakeConnection::new(Behaviour::HoldFor(3));
    let (client, _) = client(machine, core::slice::from_ref(&connection), None);
    let warm_up = client.start(&caller, ECHO, |arguments| {
        arguments.u32(0);
    });
    let tickets: Vec<_> = (1..3u32)
        .map(|value| {
            client.start(&caller, ECHO, |arguments| {
                arguments.u32(value);
            })
        })
        .collect();
    assert_eq!(echoed(&client.wait(warm_up).unwrap()), (9, 0));
    for (value, ticket) in (1..3u32).zip(tickets) {
        assert_eq!(echoed(&client.wait(ticket).unwrap()), (9, value));
    }
    assert_eq!(connection.xids().len(), 3);
}

#[test]
fn many_threads_call_at_once_on_one_connection() {
    let machine = machine();
    let connection = FakeConnection::new(Behaviour::Answer);
    let (client, attempts) = client(machine, core::slice::from_ref(&connection), None);
    let client = Arc::new(client);
    let threads: Vec<_> = (0..8u32)
        .map(|thread| {
            let client = client.clone();
            std::thread::spawn(move || {
                let caller = Caller::kernel(machine);
                for call in 0..50u32 {
                    let value = thread * 1000 + call;
                    let reply = client.call(&caller, ECHO, |arguments| {
                        arguments.u32(value);
                    });
                    assert_eq!(echoed(&reply.unwrap()), (9, value));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(attempts.load(Ordering::Relaxed), 1, "one connection for all");
    let mut xids = connection.xids();
    xids.sort_unstable();
    xids.dedup();
    assert_eq!(xids.len(), 400, "every call had its own XID");
}

#[test]
fn calls_in_flight_go_again_on_a_new_connection() {
    let machine = machine();
    let broken = FakeConnection::new(Behaviour::Break);
    let good = FakeConnection::new(Behaviour::Answer);
    let (client, attempts) = client(machine, &[broken.clone(), good.clone()], Some(60_000_000_000));
    let caller = Caller::kernel(machine);
    let reply = client.call(&caller, ECHO, |arguments| {
        arguments.u32(77);
    });
    assert_eq!(echoed(&reply.unwrap()), (9, 77));
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(broken.xids(), good.xids(), "the same XID went again");
}

#[test]
fn an_unanswered_call_fails_with_eio_at_its_deadline() {
    let machine = machine();
    let silent = FakeConnection::new(Behaviour::Silent);
    let (client, _) = client(machine, &[silent], Some(5_000_000_000));
    let caller = Caller::kernel(machine);
    let start = machine.monotonic_ns();
    let reply = client.call(&caller, ECHO, |arguments| {
        arguments.u32(1);
    });
    assert_eq!(reply.err(), Some(FsError::Io));
    assert!(machine.monotonic_ns() - start >= 5_000_000_000, "not before the deadline");
    // A server that cannot be reached at all: the same.
    let (unreachable, attempts) = self::client(machine, &[], Some(5_000_000_000));
    let reply = unreachable.call(&caller, ECHO, |arguments| {
        arguments.u32(1);
    });
    assert_eq!(reply.err(), Some(FsError::Io));
    assert!(attempts.load(Ordering::Relaxed) >= 2, "it kept trying to connect");
}
