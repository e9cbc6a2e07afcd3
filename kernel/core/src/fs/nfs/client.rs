//! The RPC client of one server: many calls in flight on one connection,
//! each reply matched to its caller by XID, reconnection with the calls
//! in flight sent again, and a deadline per call.
//!
//! No lock is held across a round trip. A call queues its record and
//! waits; every waiting thread moves bytes when it wakes ([`State::pump`]:
//! queued records out as far as the connection takes them, received
//! records to the calls they answer), so whichever thread the connection
//! wakes delivers the replies of all. A broken connection is dropped; the
//! next thread to wait makes a new one ([`Connector`]) and queues every
//! call still unanswered on it, with its old XID, as a retransmission.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::rpc::{self, Credentials, Procedure, RecordReader};
use super::xdr::Encoder;
use crate::errno::Errno;
use crate::machine::{Machine, Wakeup};
use crate::vfs::{Caller, FsError, WaiterList};

/// How long one attempt to connect may take.
const CONNECT_WAIT_NS: u64 = 10_000_000_000;
/// How long after a failed attempt the next one starts.
const RECONNECT_DELAY_NS: u64 = 1_000_000_000;
/// Bytes taken from the connection per receive.
const RECEIVE_CHUNK: usize = 64 * 1024;

/// A byte stream to the server that never blocks.
pub trait Connection: Send + Sync {
    /// Queues what fits of `bytes`; 0 when nothing does now. An error
    /// means the connection is over.
    fn send(&self, bytes: &[u8]) -> Result<usize, Errno>;

    /// Takes what arrived; 0 when nothing did. An error means the
    /// connection is over.
    fn receive(&self, buffer: &mut [u8]) -> Result<usize, Errno>;

    /// Notified whenever the connection can send or receive more.
    fn waiters(&self) -> &WaiterList;
}

/// Makes connections to one server.
pub trait Connector: Send + Sync {
    /// A new connection, made before `deadline_ns` or not at all.
    fn connect(&self, machine: &'static dyn Machine, deadline_ns: u64) -> Result<Arc<dyn Connection>, Errno>;
}

impl Connection for crate::net::kernel_stream::KernelStream {
    fn send(&self, bytes: &[u8]) -> Result<usize, Errno> {
        crate::net::kernel_stream::KernelStream::send(self, bytes)
    }

    fn receive(&self, buffer: &mut [u8]) -> Result<usize, Errno> {
        crate::net::kernel_stream::KernelStream::receive(self, buffer)
    }

    fn waiters(&self) -> &WaiterList {
        crate::net::kernel_stream::KernelStream::waiters(self)
    }
}

/// A call in flight.
struct Pending {
    /// The framed call, kept to send again on a new connection.
    record: Arc<Vec<u8>>,
    /// The reply message, once it came.
    reply: Option<Vec<u8>>,
}

struct State {
    connection: Option<Arc<dyn Connection>>,
    reader: RecordReader,
    /// Records (and how much of each went) still to send, in order.
    outgoing: VecDeque<(Arc<Vec<u8>>, usize)>,
    pending: BTreeMap<u32, Pending>,
    next_xid: u32,
    /// A thread is making a connection.
    is_connecting: bool,
    /// No new attempt before this time (monotonic ns).
    retry_at_ns: u64,
    record_bytes_max: usize,
}

impl State {
    /// Moves bytes both ways without waiting; `true` if a reply came.
    /// A broken connection is dropped.
    fn pump(&mut self) -> bool {
        let Some(connection) = self.connection.clone() else { return false };
        match self.exchange(&*connection) {
            Ok(is_answered) => is_answered,
            Err(error) => {
                log::debug!("nfs: the connection broke ({error:?}); reconnecting");
                self.disconnect();
                true
            }
        }
    }

    fn exchange(&mut self, connection: &dyn Connection) -> Result<bool, Errno> {
        while let Some((record, sent)) = self.outgoing.front_mut() {
            let count = connection.send(&record[*sent..])?;
            *sent += count;
            if *sent < record.len() {
                break;
            }
            self.outgoing.pop_front();
        }
        let mut buffer = vec![0u8; RECEIVE_CHUNK];
        loop {
            let count = connection.receive(&mut buffer)?;
            if count == 0 {
                break;
            }
            self.reader.push(&buffer[..count]);
        }
        let mut is_answered = false;
        while let Some(message) = self.reader.next_message().map_err(|_| Errno::EPROTO)? {
            // Replies to calls that gave up are dropped.
            if let Ok(xid) = rpc::xid_of(&message)
                && let Some(pending) = self.pending.get_mut(&xid)
            {
                pending.reply = Some(message);
                is_answered = true;
            }
        }
        Ok(is_answered)
    }

    fn disconnect(&mut self) {
        self.connection = None;
        self.outgoing.clear();
        self.reader = RecordReader::new(self.record_bytes_max);
    }

    /// Takes a new connection and queues every unanswered call on it.
    fn connected(&mut self, connection: Arc<dyn Connection>) {
        self.disconnect();
        self.connection = Some(connection);
        for pending in self.pending.values().filter(|pending| pending.reply.is_none()) {
            self.outgoing.push_back((pending.record.clone(), 0));
        }
    }
}

/// A call sent, whose reply [`Client::wait`] takes.
#[derive(Debug)]
#[must_use = "a call's reply must be waited for"]
pub struct Ticket {
    xid: u32,
    deadline_ns: Option<u64>,
}

/// What a waiting thread does next.
enum Step {
    Connect,
    Block(Option<u64>),
}

/// The RPC client of one server.
pub struct Client {
    machine: &'static dyn Machine,
    connector: Box<dyn Connector>,
    state: spin::Mutex<State>,
    /// Woken when replies arrive or the connection changes.
    events: WaiterList,
    /// How long a call may go unanswered (`None`: for ever).
    timeout_ns: Option<u64>,
    machine_name: String,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Client").field("timeout_ns", &self.timeout_ns).finish()
    }
}

impl Client {
    /// A client that reaches its server through `connector`, giving up on
    /// a call after `timeout_ns`, and accepting replies of up to
    /// `record_bytes_max` bytes. The first connection is made by the
    /// first call.
    pub fn new(
        machine: &'static dyn Machine,
        connector: Box<dyn Connector>,
        timeout_ns: Option<u64>,
        record_bytes_max: usize,
        machine_name: &str,
    ) -> Client {
        let seed = machine.hardware_random().unwrap_or(0) ^ machine.monotonic_ns();
        Client {
            machine,
            connector,
            state: spin::Mutex::new(State {
                connection: None,
                reader: RecordReader::new(record_bytes_max),
                outgoing: VecDeque::new(),
                pending: BTreeMap::new(),
                next_xid: seed as u32,
                is_connecting: false,
                retry_at_ns: 0,
                record_bytes_max,
            }),
            events: WaiterList::new(),
            timeout_ns,
            machine_name: String::from(machine_name),
        }
    }

    /// The machine the client runs on.
    pub fn machine(&self) -> &'static dyn Machine {
        self.machine
    }

    /// Sends a call of `procedure` as `caller` (its filesystem ids and
    /// groups, root for the kernel) with the arguments `arguments` encodes.
    pub fn start(
        &self,
        caller: &Caller<'_>,
        procedure: Procedure,
        arguments: impl FnOnce(&mut Encoder),
    ) -> Ticket {
        let credentials = caller.credentials();
        let (user, group, groups) = match &credentials {
            Some(credentials) => {
                (credentials.filesystem_user, credentials.filesystem_group, credentials.groups.as_slice())
            }
            None => (0, 0, &[][..]),
        };
        let identity = Credentials { machine_name: &self.machine_name, user, group, groups };
        let xid = {
            let mut state = self.state.lock();
            let mut xid = state.next_xid;
            while state.pending.contains_key(&xid) {
                xid = xid.wrapping_add(1);
            }
            state.next_xid = xid.wrapping_add(1);
            // Held until the record is ready, so no one else takes it.
            state.pending.insert(xid, Pending { record: Arc::new(Vec::new()), reply: None });
            xid
        };
        let record = Arc::new(rpc::call(xid, procedure, &identity, arguments));
        let deadline_ns = self.timeout_ns.map(|timeout| self.machine.monotonic_ns().saturating_add(timeout));
        let is_answered = {
            let mut state = self.state.lock();
            if let Some(pending) = state.pending.get_mut(&xid) {
                pending.record = record.clone();
            }
            if state.connection.is_some() {
                state.outgoing.push_back((record, 0));
                state.pump()
            } else {
                false
            }
        };
        if is_answered {
            self.events.notify();
        }
        Ticket { xid, deadline_ns }
    }

    /// The reply message of `ticket`'s call: `Io` once its deadline
    /// passes unanswered, `Interrupted` if the thread must stop.
    pub fn wait(&self, ticket: Ticket) -> Result<Vec<u8>, FsError> {
        let me = self.machine.current_thread();
        let mut joined: Option<Arc<dyn Connection>> = None;
        let result = loop {
            self.events.add(&me);
            if let Some(connection) = &joined {
                connection.waiters().add(&me);
            }
            let now = self.machine.monotonic_ns();
            let (step, is_answered) = {
                let mut state = self.state.lock();
                let is_answered = state.pump();
                if let Some(reply) =
                    state.pending.get_mut(&ticket.xid).and_then(|pending| pending.reply.take())
                {
                    state.pending.remove(&ticket.xid);
                    drop(state);
                    if is_answered {
                        self.events.notify();
                    }
                    break Ok(reply);
                }
                if !state.pending.contains_key(&ticket.xid) {
                    break Err(FsError::Io);
                }
                let step = match &state.connection {
                    Some(connection) => {
                        if !joined.as_ref().is_some_and(|joined| Arc::ptr_eq(joined, connection)) {
                            connection.waiters().add(&me);
                            joined = Some(connection.clone());
                        }
                        Step::Block(ticket.deadline_ns)
                    }
                    None if !state.is_connecting && now >= state.retry_at_ns => {
                        state.is_connecting = true;
                        Step::Connect
                    }
                    None if state.is_connecting => Step::Block(ticket.deadline_ns),
                    None => Step::Block(Some(
                        ticket
                            .deadline_ns
                            .map_or(state.retry_at_ns, |deadline| deadline.min(state.retry_at_ns)),
                    )),
                };
                (step, is_answered)
            };
            if is_answered {
                self.events.notify();
            }
            if ticket.deadline_ns.is_some_and(|deadline| now >= deadline) {
                self.state.lock().pending.remove(&ticket.xid);
                break Err(FsError::Io);
            }
            match step {
                Step::Connect => self.connect(ticket.deadline_ns),
                Step::Block(deadline) => {
                    if self.machine.block(deadline) == Wakeup::Stop {
                        self.state.lock().pending.remove(&ticket.xid);
                        break Err(FsError::Interrupted);
                    }
                }
            }
        };
        self.events.remove(&me);
        if let Some(connection) = joined {
            connection.waiters().remove(&me);
        }
        result
    }

    /// Makes a connection (the caller set `is_connecting`).
    fn connect(&self, deadline_ns: Option<u64>) {
        let now = self.machine.monotonic_ns();
        let attempt_deadline = now.saturating_add(CONNECT_WAIT_NS);
        let deadline = deadline_ns.map_or(attempt_deadline, |deadline| deadline.min(attempt_deadline));
        let result = self.connector.connect(self.machine, deadline);
        {
            let mut state = self.state.lock();
            state.is_connecting = false;
            match result {
                Ok(connection) => {
                    state.connected(connection);
                    state.pump();
                }
                Err(error) => {
                    log::debug!("nfs: cannot connect to the server: {error:?}");
                    state.retry_at_ns = self.machine.monotonic_ns().saturating_add(RECONNECT_DELAY_NS);
                }
            }
        }
        self.events.notify();
    }

    /// One call: sends it and waits for its reply.
    pub fn call(
        &self,
        caller: &Caller<'_>,
        procedure: Procedure,
        arguments: impl FnOnce(&mut Encoder),
    ) -> Result<Vec<u8>, FsError> {
        let ticket = self.start(caller, procedure, arguments);
        self.wait(ticket)
    }

    /// Drops the connection (at unmount).
    pub fn close(&self) {
        self.state.lock().disconnect();
    }
}
