//! `AF_VSOCK` stream sockets: what applications hold of the transport.
//!
//! A [`VsockSocket`] is unbound, bound to a port, listening (a
//! [`Listener`]) or connected (a [`Connection`]); every call waits, when it
//! must, on the socket's waiter list, which the connection or listener
//! shares, so readiness (`poll`, `epoll`) follows each packet.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use rosv_virtio::vsock::{PORT_ANY, cid, shutdown};
use spin::Mutex;

use super::{Connection, Listener, Vsock, VsockAddress};
use crate::errno::Errno;
use crate::net::abi::{message, option, shut, timeval_bytes, timeval_ns};
use crate::net::{file_error, wait_for};
use crate::vfs::node::{Caller, FileType, Metadata};
use crate::vfs::waiters::events;
use crate::vfs::{FsError, SpecialFile, WaiterList};

/// How long a connect waits for the peer (Linux's default
/// `SO_VM_SOCKETS_CONNECT_TIMEOUT`: 2 s).
const CONNECT_TIMEOUT_NS: u64 = 2_000_000_000;
/// `SOCK_STREAM`.
const SOCK_STREAM: u32 = 1;
static NEXT_INODE: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
enum State {
    /// Neither bound nor connected.
    Idle,
    /// Holding a port.
    Bound(u32),
    /// Taking connections on a port.
    Listening(Arc<Listener>),
    /// One end of a connection (the port is the connection's own).
    Connected { connection: Arc<Connection>, bound_port: Option<u32> },
}

#[derive(Debug, Default)]
struct Options {
    receive_timeout_ns: Option<u64>,
    send_timeout_ns: Option<u64>,
}

/// One `AF_VSOCK` stream socket.
pub struct VsockSocket {
    vsock: Arc<Vsock>,
    inode: u64,
    state: Mutex<State>,
    options: Mutex<Options>,
    waiters: Arc<WaiterList>,
}

impl core::fmt::Debug for VsockSocket {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("VsockSocket").field("inode", &self.inode).finish()
    }
}

impl VsockSocket {
    /// A new unbound socket on `vsock`.
    pub fn new(vsock: &Arc<Vsock>) -> Arc<Self> {
        Self::with_state(vsock, State::Idle, Arc::new(WaiterList::new()))
    }

    fn with_state(vsock: &Arc<Vsock>, state: State, waiters: Arc<WaiterList>) -> Arc<Self> {
        Arc::new(VsockSocket {
            vsock: vsock.clone(),
            inode: NEXT_INODE.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(state),
            options: Mutex::new(Options::default()),
            waiters,
        })
    }

    fn connection(&self) -> Option<Arc<Connection>> {
        match &*self.state.lock() {
            State::Connected { connection, .. } => Some(connection.clone()),
            _ => None,
        }
    }

    /// `bind`: to the guest's CID or `VMADDR_CID_ANY`, and a port or
    /// `VMADDR_PORT_ANY`.
    pub fn bind(&self, address: VsockAddress) -> Result<(), Errno> {
        if address.cid != cid::ANY && address.cid != self.vsock.local_cid() {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let mut state = self.state.lock();
        if !matches!(*state, State::Idle) {
            return Err(Errno::EINVAL);
        }
        *state = State::Bound(self.vsock.bind(address.port)?);
        Ok(())
    }

    /// `listen`: an unbound socket gets a port of its own first.
    pub fn listen(&self, backlog: usize) -> Result<(), Errno> {
        let mut state = self.state.lock();
        let port = match &*state {
            State::Idle => self.vsock.bind(PORT_ANY)?,
            State::Bound(port) => *port,
            State::Listening(listener) => {
                listener.set_backlog(backlog);
                return Ok(());
            }
            State::Connected { .. } => return Err(Errno::EINVAL),
        };
        let listener = self.vsock.listen(port, backlog, self.waiters.clone())?;
        self.vsock.unbind(port);
        *state = State::Listening(listener);
        drop(state);
        self.waiters.notify();
        Ok(())
    }

    /// `accept`: the next connection, and its peer's address.
    pub fn accept(
        &self,
        caller: &Caller<'_>,
        is_nonblocking: bool,
    ) -> Result<(Arc<VsockSocket>, VsockAddress), Errno> {
        let State::Listening(listener) = &*self.state.lock() else {
            return Err(Errno::EINVAL);
        };
        let listener = listener.clone();
        let timeout = self.options.lock().receive_timeout_ns;
        let connection =
            wait_for(caller, &self.waiters, is_nonblocking, timeout, || listener.take().map(Ok))?;
        let peer = connection.peer();
        let waiters = connection.waiters().clone();
        let socket =
            Self::with_state(&self.vsock, State::Connected { connection, bound_port: None }, waiters);
        Ok((socket, peer))
    }

    /// `connect` to `peer`, waiting for its answer unless `is_nonblocking`
    /// (then `EINPROGRESS`, and `SO_ERROR` tells the outcome).
    pub fn connect(
        &self,
        caller: &Caller<'_>,
        peer: VsockAddress,
        is_nonblocking: bool,
    ) -> Result<(), Errno> {
        let connection = {
            let mut state = self.state.lock();
            let bound_port = match &*state {
                State::Idle => None,
                State::Bound(port) => Some(*port),
                State::Listening(_) => return Err(Errno::EINVAL),
                State::Connected { connection, .. } => {
                    return Err(if connection.is_connecting() { Errno::EALREADY } else { Errno::EISCONN });
                }
            };
            let port = match bound_port {
                Some(port) => port,
                None => self.vsock.bind(PORT_ANY)?,
            };
            let connection = match self.vsock.connect(port, peer, self.waiters.clone()) {
                Ok(connection) => connection,
                Err(error) => {
                    if bound_port.is_none() {
                        self.vsock.unbind(port);
                    }
                    return Err(error);
                }
            };
            *state = State::Connected { connection: connection.clone(), bound_port: Some(port) };
            connection
        };
        if is_nonblocking {
            return Err(Errno::EINPROGRESS);
        }
        self.finish_connect(caller, &connection)
    }

    fn finish_connect(&self, caller: &Caller<'_>, connection: &Arc<Connection>) -> Result<(), Errno> {
        let result = wait_for(caller, &self.waiters, false, Some(CONNECT_TIMEOUT_NS), || {
            if connection.is_connecting() {
                return None;
            }
            Some(match connection.take_error() {
                Some(error) => Err(error),
                None => Ok(()),
            })
        });
        match result {
            Err(Errno::EAGAIN) => {
                self.vsock.abandon(connection);
                Err(Errno::ETIMEDOUT)
            }
            other => other,
        }
    }

    /// This end's address.
    pub fn local_address(&self) -> VsockAddress {
        let local_cid = self.vsock.local_cid();
        match &*self.state.lock() {
            State::Idle => VsockAddress { cid: cid::ANY, port: PORT_ANY },
            State::Bound(port) => VsockAddress { cid: local_cid, port: *port },
            State::Listening(listener) => VsockAddress { cid: local_cid, port: listener.port() },
            State::Connected { connection, .. } => connection.local(),
        }
    }

    /// The peer's address; `ENOTCONN` unless connected.
    pub fn peer_address(&self) -> Result<VsockAddress, Errno> {
        match self.connection() {
            Some(connection) if !connection.is_connecting() => Ok(connection.peer()),
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Sends `bytes`: all of them unless `is_nonblocking` (then what fits,
    /// `EAGAIN` if nothing does) or a signal or timeout comes after some.
    pub fn send(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        let connection = self.connection().ok_or(Errno::ENOTCONN)?;
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let timeout = self.options.lock().send_timeout_ns;
        let mut sent = 0;
        loop {
            let result = wait_for(caller, &self.waiters, is_nonblocking, timeout, || {
                match connection.try_send(&self.vsock, &bytes[sent..]) {
                    Ok(0) if !bytes.is_empty() => None,
                    other => Some(other),
                }
            });
            match result {
                Ok(count) => {
                    sent += count;
                    if sent == bytes.len() || is_nonblocking {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(error) => return Err(error),
            }
        }
    }

    /// Receives into `buffer`, waiting for data unless `is_nonblocking`;
    /// 0 at the end of the stream.
    pub fn receive(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        let connection = self.connection().ok_or(Errno::ENOTCONN)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let is_peek = flags & message::PEEK != 0;
        let timeout = self.options.lock().receive_timeout_ns;
        wait_for(caller, &self.waiters, is_nonblocking, timeout, || {
            connection.try_receive(&self.vsock, buffer, is_peek).transpose()
        })
    }

    /// `shutdown`.
    pub fn shutdown(&self, how: u32) -> Result<(), Errno> {
        let flags = match how {
            shut::READ => shutdown::RECEIVE,
            shut::WRITE => shutdown::SEND,
            shut::BOTH => shutdown::RECEIVE | shutdown::SEND,
            _ => return Err(Errno::EINVAL),
        };
        let connection = self.connection().ok_or(Errno::ENOTCONN)?;
        connection.shut_down(&self.vsock, flags);
        Ok(())
    }

    /// Bytes waiting to be read.
    pub fn available_bytes(&self) -> usize {
        self.connection().map_or(0, |connection| connection.available_bytes())
    }

    /// `setsockopt`: timeouts; buffer sizes are taken and ignored.
    pub fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        if level != option::SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        match name {
            option::SO_RCVTIMEO => {
                self.options.lock().receive_timeout_ns = timeval_ns(value)?;
            }
            option::SO_SNDTIMEO => {
                self.options.lock().send_timeout_ns = timeval_ns(value)?;
            }
            option::SO_SNDBUF | option::SO_RCVBUF | option::SO_KEEPALIVE | option::SO_REUSEADDR => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    /// `getsockopt`.
    pub fn option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != option::SOL_SOCKET {
            return Err(Errno::ENOPROTOOPT);
        }
        let int = |value: i32| value.to_ne_bytes().to_vec();
        Ok(match name {
            option::SO_TYPE => int(SOCK_STREAM as i32),
            option::SO_DOMAIN => int(i32::from(super::FAMILY)),
            option::SO_ERROR => {
                let error = self.connection().and_then(|connection| connection.take_error());
                int(error.map_or(0, |error| -error.to_return() as i32))
            }
            option::SO_ACCEPTCONN => int(i32::from(matches!(*self.state.lock(), State::Listening(_)))),
            option::SO_SNDBUF | option::SO_RCVBUF => int(super::BUFFER_BYTES as i32),
            option::SO_RCVTIMEO => timeval_bytes(self.options.lock().receive_timeout_ns),
            option::SO_SNDTIMEO => timeval_bytes(self.options.lock().send_timeout_ns),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// The readiness bits that hold now.
    pub fn readiness(&self) -> u16 {
        match &*self.state.lock() {
            State::Idle | State::Bound(_) => events::POLLOUT | events::POLLHUP,
            State::Listening(listener) => {
                if listener.has_pending() {
                    events::POLLIN | events::POLLRDNORM
                } else {
                    0
                }
            }
            State::Connected { connection, .. } => connection.readiness(),
        }
    }
}

impl Drop for VsockSocket {
    fn drop(&mut self) {
        match &*self.state.lock() {
            State::Idle => {}
            State::Bound(port) => self.vsock.unbind(*port),
            State::Listening(listener) => self.vsock.close_listener(listener),
            State::Connected { connection, bound_port } => {
                connection.release(&self.vsock);
                if let Some(port) = bound_port {
                    self.vsock.unbind(*port);
                }
            }
        }
    }
}

impl SpecialFile for VsockSocket {
    fn name(&self) -> String {
        format!("socket:[{}]", self.inode)
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.receive(caller, buffer, 0, is_nonblocking).map_err(file_error)
    }

    fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.send(caller, bytes, 0, is_nonblocking).map_err(file_error)
    }

    fn poll(&self) -> u16 {
        self.readiness()
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    fn metadata(&self) -> Metadata {
        Metadata::new(self.inode, FileType::Socket, 0o777)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
