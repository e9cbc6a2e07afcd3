//! TCP connections the kernel makes or accepts for itself (the NFS
//! client's, the vsock forwarders'), without a socket object or a file
//! descriptor.
//!
//! A [`KernelStream`] owns one smoltcp socket and the port it connects
//! from (none when a [`KernelListener`] accepted it). Sending and
//! receiving never block: they move what fits and say so, and the owner
//! waits on [`KernelStream::waiters`], which the stack notifies whenever
//! the connection moves (data arrived, room to send, the connection
//! ended).

use alloc::sync::Arc;
use core::net::{IpAddr, SocketAddr};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::Network;
use super::stack::Protocol;
use crate::errno::Errno;
use crate::machine::{Machine, Wakeup};
use crate::vfs::WaiterList;

/// A connection that is not established after this long has failed.
const HANDSHAKE_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(30);

/// One TCP connection of the kernel's.
pub struct KernelStream {
    network: Arc<Network>,
    machine: &'static dyn Machine,
    handle: SocketHandle,
    /// The port it holds, if it made the connection.
    port: Option<u16>,
    waiters: Arc<WaiterList>,
}

impl core::fmt::Debug for KernelStream {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("KernelStream").field("port", &self.port).finish()
    }
}

impl KernelStream {
    /// Connects to `remote` with buffers of `buffer_bytes` each way,
    /// waiting until the connection is made, refused, or `deadline_ns`
    /// (monotonic) passes (`ETIMEDOUT`). A stopping thread gets `EINTR`.
    pub fn connect(
        network: &Arc<Network>,
        machine: &'static dyn Machine,
        remote: SocketAddr,
        buffer_bytes: usize,
        deadline_ns: u64,
    ) -> Result<KernelStream, Errno> {
        let waiters = Arc::new(WaiterList::new());
        let (handle, port) = network.with_stack(machine.monotonic_ns(), |stack| {
            let port = stack.reserve_port(Protocol::Tcp, 0, false)?;
            let handle = match stack.add_tcp((buffer_bytes, buffer_bytes)) {
                Ok(handle) => handle,
                Err(error) => {
                    stack.release_port(Protocol::Tcp, port);
                    return Err(error);
                }
            };
            let (socket, context) = stack.tcp_and_context(handle);
            socket.set_timeout(Some(HANDSHAKE_TIMEOUT));
            let address = match remote.ip() {
                IpAddr::V4(address) => IpAddress::Ipv4(address),
                IpAddr::V6(address) => IpAddress::Ipv6(address),
            };
            let local = IpListenEndpoint { addr: None, port };
            if socket.connect(context, IpEndpoint::new(address, remote.port()), local).is_err() {
                stack.remove(handle);
                stack.release_port(Protocol::Tcp, port);
                return Err(Errno::ENETUNREACH);
            }
            stack.watch(handle, Protocol::Tcp, &waiters);
            Ok((handle, port))
        })?;
        let stream = KernelStream { network: network.clone(), machine, handle, port: Some(port), waiters };
        let me = machine.current_thread();
        loop {
            stream.waiters.add(&me);
            let state = stream.network.with_stack(machine.monotonic_ns(), |stack| {
                let socket = stack.tcp(handle);
                let state = socket.state();
                if state == tcp::State::Established {
                    // From now on the owner bounds its waits itself.
                    socket.set_timeout(None);
                }
                state
            });
            let outcome = match state {
                tcp::State::Established => Some(Ok(())),
                tcp::State::SynSent | tcp::State::SynReceived => None,
                _ => Some(Err(Errno::ECONNREFUSED)),
            };
            let outcome = outcome.or_else(|| {
                if machine.monotonic_ns() >= deadline_ns {
                    Some(Err(Errno::ETIMEDOUT))
                } else if machine.block(Some(deadline_ns)) == Wakeup::Stop {
                    Some(Err(Errno::EINTR))
                } else {
                    None
                }
            });
            if let Some(result) = outcome {
                stream.waiters.remove(&me);
                return result.map(|()| stream);
            }
        }
    }

    /// The threads to wake when the connection moves.
    pub fn waiters(&self) -> &Arc<WaiterList> {
        &self.waiters
    }

    /// Queues as much of `bytes` as the send buffer takes; returns how
    /// much (0 when it is full). `EPIPE` once the connection cannot send.
    pub fn send(&self, bytes: &[u8]) -> Result<usize, Errno> {
        self.network.with_stack(self.machine.monotonic_ns(), |stack| {
            let socket = stack.tcp(self.handle);
            if !socket.may_send() {
                return Err(Errno::EPIPE);
            }
            Ok(if socket.can_send() { socket.send_slice(bytes).unwrap_or(0) } else { 0 })
        })
    }

    /// Sends no more (`shutdown(SHUT_WR)`): a FIN follows what was queued;
    /// the other direction stays open.
    pub fn shut_down_sending(&self) {
        self.network.with_stack(self.machine.monotonic_ns(), |stack| stack.tcp(self.handle).close());
    }

    /// Resets the connection: the other end sees `ECONNRESET`.
    pub fn abort(&self) {
        self.network.with_stack(self.machine.monotonic_ns(), |stack| stack.tcp(self.handle).abort());
    }

    /// Takes what arrived into `buffer`; returns how much (0 when nothing
    /// waits). `ECONNRESET` once the connection can bring nothing more.
    pub fn receive(&self, buffer: &mut [u8]) -> Result<usize, Errno> {
        self.network.with_stack(self.machine.monotonic_ns(), |stack| {
            let socket = stack.tcp(self.handle);
            if socket.can_recv() {
                return Ok(socket.recv_slice(buffer).unwrap_or(0));
            }
            if socket.may_recv() { Ok(0) } else { Err(Errno::ECONNRESET) }
        })
    }
}

impl Drop for KernelStream {
    fn drop(&mut self) {
        let (handle, port) = (self.handle, self.port);
        self.network.with_stack(self.machine.monotonic_ns(), |stack| {
            stack.close_tcp(handle);
            if let Some(port) = port {
                stack.release_port(Protocol::Tcp, port);
            }
        });
    }
}

/// A TCP port the kernel listens on for itself.
pub struct KernelListener {
    network: Arc<Network>,
    machine: &'static dyn Machine,
    listener: u64,
    port: u16,
    waiters: Arc<WaiterList>,
}

impl core::fmt::Debug for KernelListener {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("KernelListener").field("port", &self.port).finish()
    }
}

impl KernelListener {
    /// Listens on `local` with room for `backlog` connections not yet
    /// accepted, each with buffers of `buffer_bytes` each way;
    /// `EADDRINUSE` when the port is taken.
    pub fn listen(
        network: &Arc<Network>,
        machine: &'static dyn Machine,
        local: SocketAddr,
        backlog: usize,
        buffer_bytes: usize,
    ) -> Result<KernelListener, Errno> {
        let waiters = Arc::new(WaiterList::new());
        let (listener, port) = network.with_stack(machine.monotonic_ns(), |stack| {
            let port = stack.reserve_port(Protocol::Tcp, local.port(), false)?;
            let address = match local.ip() {
                IpAddr::V4(address) => IpAddress::Ipv4(address),
                IpAddr::V6(address) => IpAddress::Ipv6(address),
            };
            let endpoint = IpListenEndpoint { addr: Some(address), port };
            let listener = stack.listen(endpoint, backlog, (buffer_bytes, buffer_bytes), &waiters, false);
            Ok::<_, Errno>((listener, port))
        })?;
        Ok(KernelListener { network: network.clone(), machine, listener, port, waiters })
    }

    /// The threads to wake when a connection arrives.
    pub fn waiters(&self) -> &Arc<WaiterList> {
        &self.waiters
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Takes the oldest connection made, without waiting.
    pub fn accept(&self) -> Option<KernelStream> {
        let waiters = Arc::new(WaiterList::new());
        let handle = self.network.with_stack(self.machine.monotonic_ns(), |stack| {
            let handle = stack.accept(self.listener)?;
            stack.watch(handle, Protocol::Tcp, &waiters);
            Some(handle)
        })?;
        Some(KernelStream {
            network: self.network.clone(),
            machine: self.machine,
            handle,
            port: None,
            waiters,
        })
    }
}

impl Drop for KernelListener {
    fn drop(&mut self) {
        let (listener, port) = (self.listener, self.port);
        self.network.with_stack(self.machine.monotonic_ns(), |stack| {
            stack.close_listener(listener);
            stack.release_port(Protocol::Tcp, port);
        });
    }
}
