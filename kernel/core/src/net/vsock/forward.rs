//! Forwarding vsock connections to TCP on the loop: `--vsock-forward=
//! VPORT:TCPPORT` makes a program listening on `127.0.0.1:TCPPORT` (or
//! any address) reachable from the host through vsock port VPORT, with no
//! network card in the guest.
//!
//! One kernel thread ([`run`]) listens on the vsock port; for each
//! connection it opens a [`KernelStream`] to the TCP port and moves bytes
//! both ways until both directions end. It never waits on one side: it
//! moves what it can on every pair, then sleeps on every waiter list at
//! once (the listener's, each connection's, each stream's).

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddr};

use rosv_virtio::vsock::shutdown;

use super::{Connection, Vsock};
use crate::errno::Errno;
use crate::machine::Machine;
use crate::net::Network;
use crate::net::kernel_stream::KernelStream;

/// Bytes each TCP connection buffers each way.
const STREAM_BUFFER_BYTES: usize = 64 * 1024;
/// How long the TCP connect may take.
const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
/// Bytes moved per step.
const STEP_BYTES: usize = 16 * 1024;
/// The most connections forwarded at once; more wait in the backlog.
const BACKLOG: usize = 64;

/// One vsock connection and the TCP connection it is joined to.
struct Pair {
    connection: Arc<Connection>,
    stream: KernelStream,
    /// Bytes read from one side and not yet taken by the other.
    to_stream: Vec<u8>,
    to_vsock: Vec<u8>,
    is_vsock_done: bool,
    is_stream_done: bool,
}

impl Pair {
    /// Moves what each side can take; true once both directions ended.
    fn pump(&mut self, vsock: &Vsock, buffer: &mut [u8]) -> bool {
        // vsock to TCP.
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
                    break;
                }
            }
        }
        // A host that closed its end reads no answer: close the program's
        // connection too. One that only shut its sending side still does.
        if self.is_vsock_done && self.to_stream.is_empty() && self.connection.is_peer_gone() {
            self.is_stream_done = true;
            self.to_vsock.clear();
        }
        // TCP to vsock.
        loop {
            if self.to_vsock.is_empty() && !self.is_stream_done {
                match self.stream.receive(buffer) {
                    Ok(0) => {}
                    Ok(count) => self.to_vsock.extend_from_slice(&buffer[..count]),
                    Err(_) => {
                        self.is_stream_done = true;
                        // The program closed: the host reads to the end.
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
        self.is_vsock_done && self.is_stream_done
    }
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
    let waiters = Arc::new(crate::vfs::WaiterList::new());
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
            pair.connection.waiters().add(&me);
            pair.stream.waiters().add(&me);
        }
        while let Some(connection) = listener.take() {
            let deadline = machine.monotonic_ns().saturating_add(CONNECT_TIMEOUT_NS);
            match KernelStream::connect(network, machine, target, STREAM_BUFFER_BYTES, deadline) {
                Ok(stream) => {
                    stream.waiters().add(&me);
                    connection.waiters().add(&me);
                    pairs.push(Pair {
                        connection,
                        stream,
                        to_stream: Vec::new(),
                        to_vsock: Vec::new(),
                        is_vsock_done: false,
                        is_stream_done: false,
                    });
                }
                Err(error) => {
                    log::debug!("vsock port {vsock_port}: 127.0.0.1:{tcp_port}: {error:?}");
                    connection.release(vsock);
                }
            }
        }
        pairs.retain_mut(|pair| {
            let is_done = pair.pump(vsock, &mut buffer);
            if is_done {
                pair.connection.waiters().remove(&me);
                pair.stream.waiters().remove(&me);
                pair.connection.release(vsock);
            }
            !is_done
        });
        machine.block(None);
    }
}
