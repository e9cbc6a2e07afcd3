//! Virtual sockets (`AF_VSOCK`): stream connections between the guest and
//! its host over a virtio socket device, as `vsock(7)` describes them.
//!
//! [`Vsock`] is the transport (virtio 1.2 §5.10): it owns the
//! [`VsockDevice`] (the driver, behind a trait so tests can fake it), the
//! table of [`Connection`]s by their addresses and the listeners by port,
//! and turns each received packet into a change of one connection. A
//! connection keeps what arrived and its [`Credit`] accounts; sockets
//! ([`socket::VsockSocket`]) and the kernel's own forwarder
//! ([`forward`], which joins vsock connections on one port to a TCP port
//! of the loop) read and write connections without waiting, and wait on
//! their waiter lists, which every change notifies.
//!
//! The device's thread ([`Vsock::run_worker`]) takes received packets;
//! packets that find every transmit buffer busy wait in an outbox that
//! each poll sends first. Only control packets go there: data waits in the
//! application until the device has room.

mod connection;
pub mod forward;
pub mod socket;

pub use connection::Connection;
use connection::Phase;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_virtio::vsock::{HEADER_SIZE, Header, TYPE_STREAM, cid, op};
use spin::{Mutex, Once};

use crate::errno::Errno;
use crate::machine::{Machine, ThreadControl};
use crate::vfs::WaiterList;

/// `AF_VSOCK`.
pub const FAMILY: u16 = 40;
/// Bytes of a `struct sockaddr_vm`.
pub const ADDRESS_SIZE: usize = 16;
/// `IOCTL_VM_SOCKETS_GET_LOCAL_CID` (`_IO(7, 0xb9)`).
pub const IOCTL_GET_LOCAL_CID: u64 = 0x7b9;
/// Each connection's receive buffer (Linux's default
/// `SO_VM_SOCKETS_BUFFER_SIZE`).
pub const BUFFER_BYTES: u32 = 256 * 1024;
/// How long a released connection waits for the peer's reset before it is
/// reset and forgotten (Linux's `VSOCK_CLOSE_TIMEOUT`).
pub const CLOSE_TIMEOUT_NS: u64 = 8_000_000_000;
/// The most connections the table holds; requests beyond are refused.
pub const CONNECTION_LIMIT: usize = 1024;
/// Ports below this are reserved; automatic ports start here.
const FIRST_AUTOMATIC_PORT: u32 = 1024;

/// The packet device under the transport: the virtio driver in the
/// kernel, a fake in tests. Nothing here waits.
pub trait VsockDevice: Send + Sync {
    /// The guest's context id.
    fn guest_cid(&self) -> u32;
    /// The most data one packet carries.
    fn payload_max(&self) -> usize;
    /// Sends one packet; false when every transmit buffer is busy.
    fn send(&self, header: &[u8; HEADER_SIZE], payload: &[u8]) -> bool;
    /// Hands the next received packet (header and data) to `consume`;
    /// false when none waits.
    fn receive(&self, consume: &mut dyn FnMut(&[u8])) -> bool;
    /// Whether the host reset the transport since the last call (it then
    /// forgot every connection).
    fn take_reset(&self) -> bool {
        false
    }
}

/// One end of a vsock address: a context id and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VsockAddress {
    /// The context id.
    pub cid: u32,
    /// The port.
    pub port: u32,
}

impl VsockAddress {
    /// The bytes of a `struct sockaddr_vm`.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = alloc::vec![0u8; ADDRESS_SIZE];
        bytes[0..2].copy_from_slice(&FAMILY.to_ne_bytes());
        bytes[4..8].copy_from_slice(&self.port.to_ne_bytes());
        bytes[8..12].copy_from_slice(&self.cid.to_ne_bytes());
        bytes
    }

    /// A `struct sockaddr_vm`'s address; `EINVAL` when too short,
    /// `EAFNOSUPPORT` for another family.
    pub fn parse(bytes: &[u8]) -> Result<VsockAddress, Errno> {
        if bytes.len() < ADDRESS_SIZE {
            return Err(Errno::EINVAL);
        }
        if u16::from_ne_bytes([bytes[0], bytes[1]]) != FAMILY {
            return Err(Errno::EAFNOSUPPORT);
        }
        let word = |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        Ok(VsockAddress { port: word(4), cid: word(8) })
    }
}

/// Connections waiting on a listening port.
#[derive(Debug)]
pub struct Listener {
    port: u32,
    backlog: Mutex<usize>,
    pending: Mutex<VecDeque<Arc<Connection>>>,
    waiters: Arc<WaiterList>,
}

impl Listener {
    /// The port.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Takes the next connection made to the port, if any.
    pub fn take(&self) -> Option<Arc<Connection>> {
        self.pending.lock().pop_front()
    }

    /// Whether a connection waits.
    pub fn has_pending(&self) -> bool {
        !self.pending.lock().is_empty()
    }

    /// The threads to wake when a connection arrives.
    pub fn waiters(&self) -> &Arc<WaiterList> {
        &self.waiters
    }

    /// Sets the most connections waiting at once.
    pub fn set_backlog(&self, backlog: usize) {
        *self.backlog.lock() = backlog.max(1);
    }
}

/// The addresses of a connection: (local port, peer CID, peer port).
type ConnectionKey = (u32, u32, u32);

#[derive(Debug, Default)]
struct Table {
    connections: BTreeMap<ConnectionKey, Arc<Connection>>,
    listeners: BTreeMap<u32, Arc<Listener>>,
    /// Ports bound without listening, and how many sockets hold each.
    bound: BTreeMap<u32, usize>,
    next_port: u32,
}

impl Table {
    fn is_port_used(&self, port: u32) -> bool {
        self.listeners.contains_key(&port)
            || self.bound.contains_key(&port)
            || self.connections.keys().any(|key| key.0 == port)
    }
}

/// The vsock transport over one device.
pub struct Vsock {
    device: Arc<dyn VsockDevice>,
    table: Mutex<Table>,
    /// Control packets that found the device busy.
    outbox: Mutex<VecDeque<Header>>,
    /// Released connections waiting for the peer's reset, and since when
    /// (stamped by the first sweep that sees them).
    closing: Mutex<BTreeMap<ConnectionKey, Option<u64>>>,
    worker: Once<Arc<dyn ThreadControl>>,
}

impl core::fmt::Debug for Vsock {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Vsock").field("guest_cid", &self.device.guest_cid()).finish()
    }
}

static INSTALLED: Once<Arc<Vsock>> = Once::new();

/// Makes `vsock` the transport `AF_VSOCK` sockets use; the first one stays.
pub fn install(vsock: Arc<Vsock>) {
    INSTALLED.call_once(|| vsock);
}

/// The transport `AF_VSOCK` sockets use, if the machine has one.
pub fn installed() -> Option<&'static Arc<Vsock>> {
    INSTALLED.get()
}

impl Vsock {
    /// The transport over `device`; `seed` varies the first automatic port.
    pub fn new(device: Arc<dyn VsockDevice>, seed: u32) -> Arc<Self> {
        let table = Table { next_port: FIRST_AUTOMATIC_PORT + seed % 0x4000_0000, ..Table::default() };
        Arc::new(Vsock {
            device,
            table: Mutex::new(table),
            outbox: Mutex::new(VecDeque::new()),
            closing: Mutex::new(BTreeMap::new()),
            worker: Once::new(),
        })
    }

    /// The guest's context id.
    pub fn local_cid(&self) -> u32 {
        self.device.guest_cid()
    }

    /// Sends a control packet now, or as soon as the device has room.
    fn send_control(&self, header: Header) {
        let mut outbox = self.outbox.lock();
        if outbox.is_empty() && self.device.send(&header.encode(), &[]) {
            return;
        }
        outbox.push_back(header);
        drop(outbox);
        self.wake_worker();
    }

    /// Sends what waits in the outbox, as far as the device takes it.
    fn flush_outbox(&self) {
        let mut outbox = self.outbox.lock();
        while let Some(header) = outbox.front() {
            if !self.device.send(&header.encode(), &[]) {
                return;
            }
            outbox.pop_front();
        }
    }

    /// Reserves `port` (any free one when [`rosv_virtio::vsock::PORT_ANY`])
    /// for a bound socket; `EADDRINUSE` when taken.
    pub fn bind(&self, port: u32) -> Result<u32, Errno> {
        let mut table = self.table.lock();
        let port = if port == rosv_virtio::vsock::PORT_ANY {
            Self::free_port(&mut table)?
        } else if table.is_port_used(port) {
            return Err(Errno::EADDRINUSE);
        } else {
            port
        };
        *table.bound.entry(port).or_default() += 1;
        Ok(port)
    }

    /// Gives back a port [`Vsock::bind`] reserved.
    pub fn unbind(&self, port: u32) {
        let mut table = self.table.lock();
        if let Some(count) = table.bound.get_mut(&port) {
            *count -= 1;
            if *count == 0 {
                table.bound.remove(&port);
            }
        }
    }

    fn free_port(table: &mut Table) -> Result<u32, Errno> {
        for _ in 0..0x1_0000 {
            let port = table.next_port;
            table.next_port = if port >= u32::MAX - 1 { FIRST_AUTOMATIC_PORT } else { port.wrapping_add(1) };
            if !table.is_port_used(port) {
                return Ok(port);
            }
        }
        Err(Errno::EADDRNOTAVAIL)
    }

    /// Starts listening on `port`, which the caller bound; its waiters are
    /// `waiters`.
    pub fn listen(
        &self,
        port: u32,
        backlog: usize,
        waiters: Arc<WaiterList>,
    ) -> Result<Arc<Listener>, Errno> {
        let mut table = self.table.lock();
        if table.listeners.contains_key(&port) {
            return Err(Errno::EADDRINUSE);
        }
        let listener = Arc::new(Listener {
            port,
            backlog: Mutex::new(backlog.max(1)),
            pending: Mutex::new(VecDeque::new()),
            waiters,
        });
        table.listeners.insert(port, listener.clone());
        Ok(listener)
    }

    /// Stops listening: connections not yet accepted are reset.
    pub fn close_listener(&self, listener: &Listener) {
        let mut table = self.table.lock();
        if table.listeners.get(&listener.port).is_some_and(|known| core::ptr::eq(&**known, listener)) {
            table.listeners.remove(&listener.port);
        }
        drop(table);
        while let Some(connection) = listener.take() {
            connection.release(self);
        }
    }

    /// Asks `peer` for a connection from `local_port`; the connection
    /// starts `Connecting` and notifies `waiters` when answered.
    pub fn connect(
        &self,
        local_port: u32,
        peer: VsockAddress,
        waiters: Arc<WaiterList>,
    ) -> Result<Arc<Connection>, Errno> {
        if peer.cid == cid::ANY || peer.port == rosv_virtio::vsock::PORT_ANY {
            return Err(Errno::EINVAL);
        }
        let local = VsockAddress { cid: self.local_cid(), port: local_port };
        if peer.cid == local.cid || peer.cid == cid::LOCAL {
            // No loopback transport.
            return Err(Errno::ENETUNREACH);
        }
        let connection = Connection::new(local, peer, Phase::Connecting, waiters);
        {
            let mut table = self.table.lock();
            let key = (local_port, peer.cid, peer.port);
            if table.connections.contains_key(&key) {
                return Err(Errno::EADDRINUSE);
            }
            table.connections.insert(key, connection.clone());
        }
        let mut header = connection.header(op::REQUEST, 0, 0);
        connection.state.lock().credit.stamp(&mut header);
        self.send_control(header);
        Ok(connection)
    }

    /// Gives up a connect that was not answered in time.
    pub fn abandon(&self, connection: &Connection) {
        {
            let mut state = connection.state.lock();
            if state.phase != Phase::Connecting {
                return;
            }
            state.phase = Phase::Closed;
        }
        self.send_control(connection.header(op::RST, 0, 0));
        self.forget(connection);
    }

    /// Notes that `connection` waits for the peer's reset, which
    /// [`Vsock::expire_closing`] stops waiting for after
    /// [`CLOSE_TIMEOUT_NS`].
    fn await_reset(&self, connection: &Connection) {
        let key = (connection.local.port, connection.peer.cid, connection.peer.port);
        self.closing.lock().entry(key).or_insert(None);
        self.wake_worker();
    }

    /// Resets and forgets the released connections whose peer did not
    /// answer within [`CLOSE_TIMEOUT_NS`] of `now_ns`; returns when the
    /// next one expires, if any waits.
    pub fn expire_closing(&self, now_ns: u64) -> Option<u64> {
        let mut expired = Vec::new();
        let mut next_ns: Option<u64> = None;
        {
            let mut closing = self.closing.lock();
            let table = self.table.lock();
            closing.retain(|key, since_ns| {
                // A connection that left the table was answered.
                let Some(connection) = table.connections.get(key) else { return false };
                let deadline_ns = since_ns.get_or_insert(now_ns).saturating_add(CLOSE_TIMEOUT_NS);
                if now_ns >= deadline_ns {
                    expired.push(connection.clone());
                    return false;
                }
                next_ns = Some(next_ns.map_or(deadline_ns, |next| next.min(deadline_ns)));
                true
            });
        }
        for connection in expired {
            log::debug!("vsock: {:?} did not answer the close; resetting", connection.peer);
            connection.state.lock().phase = Phase::Closed;
            self.send_control(connection.header(op::RST, 0, 0));
            self.forget(&connection);
            connection.waiters.notify();
        }
        next_ns
    }

    /// Connections in the table (established, connecting or closing).
    pub fn connection_count(&self) -> usize {
        self.table.lock().connections.len()
    }

    /// Removes a connection from the table.
    fn forget(&self, connection: &Connection) {
        let key = (connection.local.port, connection.peer.cid, connection.peer.port);
        let mut table = self.table.lock();
        if table.connections.get(&key).is_some_and(|known| core::ptr::eq(&**known, connection)) {
            table.connections.remove(&key);
        }
    }

    /// Handles one packet the device received.
    pub fn receive_packet(&self, bytes: &[u8]) {
        let Some(header) = Header::decode(bytes) else {
            log::debug!("vsock: a packet of {} bytes, shorter than a header", bytes.len());
            return;
        };
        let payload = &bytes[HEADER_SIZE..];
        let length = (header.length as usize).min(payload.len());
        let payload = &payload[..length];
        if header.op == op::RST {
            // Never answer a reset, or two sides could trade them forever.
            if let Some(connection) = self.lookup(&header) {
                connection.handle(&header, payload);
                self.forget(&connection);
            }
            return;
        }
        if header.socket_type != TYPE_STREAM || header.destination_cid != u64::from(self.local_cid()) {
            self.send_control(header.reply(op::RST));
            return;
        }
        if let Some(connection) = self.lookup(&header) {
            let (answer, is_closed) = connection.handle(&header, payload);
            if is_closed {
                self.forget(&connection);
            }
            if let Some(answer) = answer {
                self.send_control(answer);
            }
            return;
        }
        if header.op == op::REQUEST {
            self.accept_request(&header);
        } else {
            self.send_control(header.reply(op::RST));
        }
    }

    fn lookup(&self, header: &Header) -> Option<Arc<Connection>> {
        let key = (header.destination_port, header.source_cid as u32, header.source_port);
        self.table.lock().connections.get(&key).cloned()
    }

    /// A peer asks for a connection: a listener with room takes it, and
    /// the peer gets the answer; anything else is refused.
    fn accept_request(&self, header: &Header) {
        let mut table = self.table.lock();
        let listener = table.listeners.get(&header.destination_port).cloned();
        let is_full = table.connections.len() >= CONNECTION_LIMIT;
        let Some(listener) =
            listener.filter(|listener| !is_full && listener.pending.lock().len() < *listener.backlog.lock())
        else {
            drop(table);
            self.send_control(header.reply(op::RST));
            return;
        };
        let local = VsockAddress { cid: self.local_cid(), port: header.destination_port };
        let peer = VsockAddress { cid: header.source_cid as u32, port: header.source_port };
        let connection = Connection::new(local, peer, Phase::Established, Arc::new(WaiterList::new()));
        table.connections.insert((local.port, peer.cid, peer.port), connection.clone());
        drop(table);
        let mut answer = connection.header(op::RESPONSE, 0, 0);
        {
            let mut state = connection.state.lock();
            state.credit.update_from(header);
            state.credit.stamp(&mut answer);
        }
        listener.pending.lock().push_back(connection);
        self.send_control(answer);
        listener.waiters.notify();
    }

    /// Forgets every connection after a transport reset: each ends with
    /// `ECONNRESET`.
    fn reset(&self) {
        let connections = core::mem::take(&mut self.table.lock().connections);
        for connection in connections.values() {
            let mut state = connection.state.lock();
            if state.phase != Phase::Closed {
                state.phase = Phase::Closed;
                state.error = Some(Errno::ECONNRESET);
            }
            drop(state);
            connection.waiters.notify();
        }
    }

    /// Takes every packet the device received, sends what waits in the
    /// outbox, and wakes every connection's waiters (the device may have
    /// room for their data again).
    pub fn poll(&self) {
        if self.device.take_reset() {
            log::info!("vsock: the host reset the transport");
            self.reset();
        }
        while self.device.receive(&mut |bytes| self.receive_packet(bytes)) {}
        self.flush_outbox();
        let connections: Vec<_> = self.table.lock().connections.values().cloned().collect();
        for connection in connections {
            connection.waiters.notify();
        }
    }

    /// Wakes the device's thread: the device interrupted, or a control
    /// packet waits. Safe to call from an interrupt handler.
    pub fn wake_worker(&self) {
        if let Some(worker) = self.worker.get() {
            worker.wake();
        }
    }

    /// The device's thread: polls whenever woken, and resets released
    /// connections whose peer does not answer in time.
    pub fn run_worker(&self, machine: &dyn Machine) -> ! {
        self.worker.call_once(|| machine.current_thread());
        loop {
            self.poll();
            let deadline_ns = self.expire_closing(machine.monotonic_ns());
            machine.block(deadline_ns);
        }
    }
}

#[cfg(test)]
mod tests;
