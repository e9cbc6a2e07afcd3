//! Forwarding between vsock and TCP on the loop, both ways:
//!
//! - `--vsock-forward=VPORT:TCPPORT` ([`run`]) makes a program listening
//!   on `127.0.0.1:TCPPORT` (or any address) reachable from the host
//!   through vsock port VPORT, with no network card in the guest;
//! - `--vsock-listen=TCPPORT:CID:VPORT` ([`run_listen`]) is the reverse: the
//!   kernel listens on `127.0.0.1:TCPPORT`, and each connection a program
//!   makes there goes on as a vsock connection to CID's port VPORT (the
//!   host's, for CID 2), so a program reaches a host service by TCP.
//!
//! One kernel thread per option accepts on its side, opens the other, and
//! moves bytes both ways until both directions end. It never waits on one
//! side: it moves what it can on every [`Pair`], then sleeps on every
//! waiter list at once. Half-closes go through: a side that stops sending
//! (`shutdown(SHUT_WR)`, or a vsock `SHUTDOWN` with the send flag) makes
//! the other side's sending stop too, once what came before was written.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};

use rosv_virtio::vsock::shutdown;

use super::{Connection, Vsock, VsockAddress};
use crate::errno::Errno;
use crate::machine::Machine;
use crate::net::Network;
use crate::net::kernel_stream::{KernelListener, KernelStream};
use crate::vfs::WaiterList;

/// Bytes each TCP connection buffers each way.
const STREAM_BUFFER_BYTES: usize = 64 * 1024;
/// How long a connect (TCP, or vsock to the peer) may take.
const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
/// Bytes moved per step.
const STEP_BYTES: usize = 16 * 1024;
/// The most connections forwarded at once; more wait in the backlog.
const BACKLOG: usize = 64;

/// One vsock connection and the TCP connection it is joined to.
struct Pair {
    connection: Arc<Connection>,
    stream: KernelStream,
    /// Until when the vsock connection may wait for the peer's answer
    /// (connections the kernel asked for).
    connect_deadline_ns: Option<u64>,
    /// Bytes read from one side and not yet taken by the other.
    to_stream: Vec<u8>,
    to_vsock: Vec<u8>,
    /// The vsock side sends no more; the TCP side was told once empty.
    is_vsock_done: bool,
    is_stream_shut: bool,
    /// The TCP side sends no more; the vsock side was told.
    is_stream_done: bool,
}

impl Pair {
    fn new(connection: Arc<Connection>, stream: KernelStream, connect_deadline_ns: Option<u64>) -> Pair {
        Pair {
            connection,
            stream,
            connect_deadline_ns,
            to_stream: Vec::new(),
            to_vsock: Vec::new(),
            is_vsock_done: false,
            is_stream_shut: false,
            is_stream_done: false,
        }
    }

    fn add_waiter(&self, me: &Arc<dyn crate::machine::ThreadControl>) {
        self.connection.waiters().add(me);
        self.stream.waiters().add(me);
    }

    fn remove_waiter(&self, me: &Arc<dyn crate::machine::ThreadControl>) {
        self.connection.waiters().remove(me);
        self.stream.waiters().remove(me);
    }

    /// Moves what each side can take; true once both directions ended.
    fn pump(&mut self, vsock: &Vsock, buffer: &mut [u8], now_ns: u64) -> bool {
        if let Some(deadline_ns) = self.connect_deadline_ns {
            if self.connection.is_connecting() {
                if now_ns < deadline_ns {
                    return false;
                }
                log::debug!("vsock: {:?} did not answer in time", self.connection.peer());
                vsock.abandon(&self.connection);
                self.stream.abort();
                return true;
            }
            self.connect_deadline_ns = None;
            if let Some(error) = self.connection.take_error() {
                // Refused: the program's connection is reset, as a proxy
                // that cannot reach its server does.
                log::debug!("vsock: {:?}: {error:?}", self.connection.peer());
                self.stream.abort();
                return true;
            }
        }
        self.pump_to_stream(vsock, buffer);
        // A peer that closed its end reads no answer: close the program's
        // connection too. One that only shut its sending side still does.
        if self.is_vsock_done && self.to_stream.is_empty() && self.connection.is_peer_gone() {
            self.is_stream_done = true;
            self.to_vsock.clear();
        }
        self.pump_to_vsock(vsock, buffer);
        self.is_vsock_done && self.is_stream_done && self.to_stream.is_empty()
    }

    /// vsock to TCP; the TCP side's sending ends after the vsock side's.
    fn pump_to_stream(&mut self, vsock: &Vsock, buffer: &mut [u8]) {
        loop {
            if self.to_stream.is_empty() && !self.is_vsock_done {
                match self.connection.try_receive(vsock, buffer, false) {
                    Ok(Some(0)) | Err(_) => self.is_vsock_done = true,
                    Ok(Some(count)) => self.to_stream.extend_from_slice(&buffer[..count]),
                    Ok(None) => {}
                }
            }
            if self.to_stream.is_empty() {
                break;
            }
            match self.stream.send(&self.to_stream) {
                Ok(0) => break,
                Ok(count) => {
                    self.to_stream.drain(..count);
                }
                Err(_) => {
                    self.to_stream.clear();
                    self.is_vsock_done = true;
                    self.is_stream_shut = true;
                    break;
                }
            }
        }
        if self.is_vsock_done && self.to_stream.is_empty() && !self.is_stream_shut {
            self.is_stream_shut = true;
            self.stream.shut_down_sending();
        }
    }

    /// TCP to vsock; the vsock side's sending ends after the TCP side's.
    fn pump_to_vsock(&mut self, vsock: &Vsock, buffer: &mut [u8]) {
        loop {
            if self.to_vsock.is_empty() && !self.is_stream_done {
                match self.stream.receive(buffer) {
                    Ok(0) => {}
                    Ok(count) => self.to_vsock.extend_from_slice(&buffer[..count]),
                    Err(_) => {
                        self.is_stream_done = true;
                        // The program stopped sending: the peer reads to
                        // the end.
                        self.connection.shut_down(vsock, shutdown::SEND);
                    }
                }
            }
            if self.to_vsock.is_empty() {
                break;
            }
            match self.connection.try_send(vsock, &self.to_vsock) {
                Ok(0) => break,
                Ok(count) => {
                    self.to_vsock.drain(..count);
                }
                Err(_) => {
                    self.to_vsock.clear();
                    self.is_stream_done = true;
                    break;
                }
            }
        }
    }
}

/// Pumps every pair, drops those that ended (their vsock connection is
/// released and their TCP connection closed), and returns the earliest
/// connect deadline left.
fn pump_all(
    pairs: &mut Vec<Pair>,
    vsock: &Vsock,
    buffer: &mut [u8],
    machine: &dyn Machine,
    me: &Arc<dyn crate::machine::ThreadControl>,
) -> Option<u64> {
    let now_ns = machine.monotonic_ns();
    pairs.retain_mut(|pair| {
        let is_done = pair.pump(vsock, buffer, now_ns);
        if is_done {
            pair.remove_waiter(me);
            pair.connection.release(vsock);
        }
        !is_done
    });
    pairs.iter().filter_map(|pair| pair.connect_deadline_ns).min()
}

/// Forwards connections to vsock port `vsock_port` to TCP port `tcp_port`
/// on the loop, for ever (the thread of `--vsock-forward`). Returns only
/// if the vsock port cannot be had.
pub fn run(
    vsock: &Arc<Vsock>,
    network: &Arc<Network>,
    machine: &'static dyn Machine,
    vsock_port: u32,
    tcp_port: u16,
) -> Errno {
    let port = match vsock.bind(vsock_port) {
        Ok(port) => port,
        Err(error) => return error,
    };
    let waiters = Arc::new(WaiterList::new());
    let listener = match vsock.listen(port, BACKLOG, waiters.clone()) {
        Ok(listener) => listener,
        Err(error) => return error,
    };
    vsock.unbind(port);
    log::info!("vsock port {vsock_port} forwards to 127.0.0.1:{tcp_port}");
    let target = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), tcp_port);
    let me = machine.current_thread();
    let mut pairs: Vec<Pair> = Vec::new();
    let mut buffer = vec![0u8; STEP_BYTES];
    loop {
        waiters.add(&me);
        for pair in &pairs {
            pair.add_waiter(&me);
        }
        while let Some(connection) = listener.take() {
            let deadline = machine.monotonic_ns().saturating_add(CONNECT_TIMEOUT_NS);
            match KernelStream::connect(network, machine, target, STREAM_BUFFER_BYTES, deadline) {
                Ok(stream) => {
                    let pair = Pair::new(connection, stream, None);
                    pair.add_waiter(&me);
                    pairs.push(pair);
                }
                Err(error) => {
                    log::debug!("vsock port {vsock_port}: 127.0.0.1:{tcp_port}: {error:?}");
                    connection.release(vsock);
                }
            }
        }
        pump_all(&mut pairs, vsock, &mut buffer, machine, &me);
        machine.block(None);
    }
}

/// Listens on TCP port `tcp_port` of the loop for [`run_listen`]; done
/// before the application starts, so that its first connect finds it.
pub fn listen(
    network: &Arc<Network>,
    machine: &'static dyn Machine,
    tcp_port: u16,
) -> Result<KernelListener, Errno> {
    let local = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), tcp_port);
    KernelListener::listen(network, machine, local, BACKLOG, STREAM_BUFFER_BYTES)
}

/// Joins each connection made to `listener` to a new vsock connection to
/// `peer`, for ever (the thread of `--vsock-listen`).
pub fn run_listen(
    vsock: &Arc<Vsock>,
    machine: &'static dyn Machine,
    listener: KernelListener,
    peer: VsockAddress,
) -> ! {
    let tcp_port = listener.port();
    log::info!("127.0.0.1:{tcp_port} forwards to vsock {}:{}", peer.cid, peer.port);
    let me = machine.current_thread();
    let mut pairs: Vec<Pair> = Vec::new();
    let mut buffer = vec![0u8; STEP_BYTES];
    loop {
        listener.waiters().add(&me);
        for pair in &pairs {
            pair.add_waiter(&me);
        }
        while let Some(stream) = listener.accept() {
            match connect(vsock, peer) {
                Ok(connection) => {
                    let deadline = machine.monotonic_ns().saturating_add(CONNECT_TIMEOUT_NS);
                    let pair = Pair::new(connection, stream, Some(deadline));
                    pair.add_waiter(&me);
                    pairs.push(pair);
                }
                Err(error) => {
                    log::debug!("127.0.0.1:{tcp_port}: vsock {peer:?}: {error:?}");
                    stream.abort();
                }
            }
        }
        let deadline_ns = pump_all(&mut pairs, vsock, &mut buffer, machine, &me);
        machine.block(deadline_ns);
    }
}

/// Asks `peer` for a connection from a free port.
fn connect(vsock: &Vsock, peer: VsockAddress) -> Result<Arc<Connection>, Errno> {
    let port = vsock.bind(rosv_virtio::vsock::PORT_ANY)?;
    // The connection holds the port from now on.
    let connection = vsock.connect(port, peer, Arc::new(WaiterList::new()));
    vsock.unbind(port);
    connection
}
