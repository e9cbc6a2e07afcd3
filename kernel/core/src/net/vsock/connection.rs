//! One vsock stream connection: its phase, what arrived, its credit.
//!
//! A [`Connection`] is shared by the transport ([`super::Vsock`]), which
//! hands it the peer's packets, and its user (a socket or the forwarder),
//! which reads and writes it without waiting.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use rosv_virtio::vsock::{Credit, Header, TYPE_STREAM, op, shutdown};
use spin::Mutex;

use super::{BUFFER_BYTES, Vsock, VsockAddress};
use crate::errno::Errno;
use crate::vfs::WaiterList;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A request went out; no answer yet.
    Connecting,
    /// Data may flow.
    Established,
    /// Over: reset by either side, or both sides shut down.
    Closed,
}

/// What a connection holds, under its lock.
#[derive(Debug)]
pub(super) struct ConnectionState {
    pub(super) phase: Phase,
    pub(super) credit: Credit,
    /// Bytes received and not yet read.
    received: VecDeque<u8>,
    /// The peer sends no more: reads end once `received` is empty.
    is_peer_done_sending: bool,
    /// The peer reads no more: sends fail with `EPIPE`.
    is_peer_done_receiving: bool,
    /// This side shut its sending or receiving down.
    is_done_sending: bool,
    is_done_receiving: bool,
    /// Why the connection failed, until `SO_ERROR` or an operation takes it.
    pub(super) error: Option<Errno>,
}

/// One stream connection between a local and a peer address.
#[derive(Debug)]
pub struct Connection {
    pub(super) local: VsockAddress,
    pub(super) peer: VsockAddress,
    pub(super) state: Mutex<ConnectionState>,
    pub(super) waiters: Arc<WaiterList>,
}

impl Connection {
    pub(super) fn new(
        local: VsockAddress,
        peer: VsockAddress,
        phase: Phase,
        waiters: Arc<WaiterList>,
    ) -> Arc<Self> {
        Arc::new(Connection {
            local,
            peer,
            state: Mutex::new(ConnectionState {
                phase,
                credit: Credit::new(BUFFER_BYTES),
                received: VecDeque::new(),
                is_peer_done_sending: false,
                is_peer_done_receiving: false,
                is_done_sending: false,
                is_done_receiving: false,
                error: None,
            }),
            waiters,
        })
    }

    /// This end's address.
    pub fn local(&self) -> VsockAddress {
        self.local
    }

    /// The other end's address.
    pub fn peer(&self) -> VsockAddress {
        self.peer
    }

    /// The threads to wake when the connection moves.
    pub fn waiters(&self) -> &Arc<WaiterList> {
        &self.waiters
    }

    /// A packet header from this end to the peer.
    pub(super) fn header(&self, op: u16, length: u32, flags: u32) -> Header {
        Header {
            source_cid: u64::from(self.local.cid),
            destination_cid: u64::from(self.peer.cid),
            source_port: self.local.port,
            destination_port: self.peer.port,
            length,
            socket_type: TYPE_STREAM,
            op,
            flags,
            buffer_allocation: 0,
            forwarded_count: 0,
        }
    }

    /// Whether the connection is established (or was, and ended).
    pub fn is_established(&self) -> bool {
        let state = self.state.lock();
        state.phase == Phase::Established || (state.phase == Phase::Closed && state.error.is_none())
    }

    /// Whether the peer reads no more (it shut its receiving side down, or
    /// the connection ended).
    pub fn is_peer_gone(&self) -> bool {
        let state = self.state.lock();
        state.is_peer_done_receiving || state.phase == Phase::Closed
    }

    /// Whether a connect still waits for the peer's answer.
    pub fn is_connecting(&self) -> bool {
        self.state.lock().phase == Phase::Connecting
    }

    /// Takes the pending error (`SO_ERROR`).
    pub fn take_error(&self) -> Option<Errno> {
        self.state.lock().error.take()
    }

    /// Bytes waiting to be read.
    pub fn available_bytes(&self) -> usize {
        self.state.lock().received.len()
    }

    /// The readiness bits (`vfs::waiters::events`) of the connection.
    pub fn readiness(&self) -> u16 {
        use crate::vfs::waiters::events::*;
        let state = self.state.lock();
        let mut ready = 0;
        let is_closed = state.phase == Phase::Closed;
        if !state.received.is_empty() || state.is_peer_done_sending || is_closed || state.is_done_receiving {
            ready |= POLLIN | POLLRDNORM;
        }
        if state.is_peer_done_sending || is_closed {
            ready |= POLLRDHUP;
        }
        if state.phase == Phase::Established
            && !state.is_done_sending
            && !state.is_peer_done_receiving
            && state.credit.peer_room() > 0
        {
            ready |= POLLOUT | POLLWRNORM;
        }
        if state.error.is_some() {
            ready |= POLLERR | POLLOUT;
        }
        if is_closed || (state.is_peer_done_sending && state.is_done_sending) {
            ready |= POLLHUP;
        }
        ready
    }

    /// Takes what arrived into `buffer` without waiting (`peek`: leaves it
    /// there). `Ok(Some(0))` at the end of the stream, `Ok(None)` when
    /// nothing waits yet.
    pub fn try_receive(
        &self,
        vsock: &Vsock,
        buffer: &mut [u8],
        is_peek: bool,
    ) -> Result<Option<usize>, Errno> {
        let mut state = self.state.lock();
        if state.received.is_empty() {
            if let Some(error) = state.error.take() {
                return Err(error);
            }
            return match state.phase {
                Phase::Connecting => Err(Errno::ENOTCONN),
                _ if state.is_peer_done_sending || state.is_done_receiving => Ok(Some(0)),
                Phase::Closed => Ok(Some(0)),
                Phase::Established => Ok(None),
            };
        }
        let count = buffer.len().min(state.received.len());
        for (slot, byte) in buffer.iter_mut().zip(state.received.iter()) {
            *slot = *byte;
        }
        if is_peek {
            return Ok(Some(count));
        }
        state.received.drain(..count);
        state.credit.record_forwarded(count as u32);
        if state.phase == Phase::Established && state.credit.should_update() {
            let mut header = self.header(op::CREDIT_UPDATE, 0, 0);
            state.credit.stamp(&mut header);
            drop(state);
            vsock.send_control(header);
        }
        Ok(Some(count))
    }

    /// Sends as much of `bytes` as the peer has room for and the device
    /// takes, without waiting; `Ok(0)` when neither has room now.
    pub fn try_send(&self, vsock: &Vsock, bytes: &[u8]) -> Result<usize, Errno> {
        let mut sent = 0;
        let mut state = self.state.lock();
        loop {
            if let Some(error) = state.error.take() {
                return if sent > 0 { Ok(sent) } else { Err(error) };
            }
            match state.phase {
                Phase::Connecting => return Err(Errno::ENOTCONN),
                Phase::Closed => return if sent > 0 { Ok(sent) } else { Err(Errno::EPIPE) },
                Phase::Established => {}
            }
            if state.is_done_sending || state.is_peer_done_receiving {
                return if sent > 0 { Ok(sent) } else { Err(Errno::EPIPE) };
            }
            if sent == bytes.len() {
                return Ok(sent);
            }
            let room = (state.credit.peer_room() as usize).min(vsock.device.payload_max());
            let count = room.min(bytes.len() - sent);
            if count == 0 {
                return Ok(sent);
            }
            let mut header = self.header(op::RW, count as u32, 0);
            state.credit.stamp(&mut header);
            if !vsock.device.send(&header.encode(), &bytes[sent..sent + count]) {
                return Ok(sent);
            }
            state.credit.record_sent(count as u32);
            sent += count;
        }
    }

    /// `shutdown`: this side receives (`SHUT_RD`) or sends (`SHUT_WR`) no
    /// more; the peer is told.
    pub fn shut_down(&self, vsock: &Vsock, flags: u32) {
        let mut state = self.state.lock();
        if flags & shutdown::RECEIVE != 0 {
            state.is_done_receiving = true;
        }
        if flags & shutdown::SEND != 0 {
            state.is_done_sending = true;
        }
        let is_open = state.phase == Phase::Established;
        let mut header = self.header(op::SHUTDOWN, 0, flags);
        state.credit.stamp(&mut header);
        drop(state);
        if is_open {
            vsock.send_control(header);
        }
        self.waiters.notify();
    }

    /// Ends the connection because its last user closed it: the peer is
    /// told that this side neither sends nor receives, and answers with a
    /// reset, which removes the connection from the table; a peer that
    /// does not answer within the close timeout is reset.
    pub fn release(&self, vsock: &Vsock) {
        let phase = self.state.lock().phase;
        match phase {
            Phase::Established => {
                self.shut_down(vsock, shutdown::RECEIVE | shutdown::SEND);
                vsock.await_reset(self);
            }
            Phase::Connecting => {
                vsock.send_control(self.header(op::RST, 0, 0));
                vsock.forget(self);
            }
            Phase::Closed => vsock.forget(self),
        }
    }

    /// Handles a packet the peer sent on this connection; returns the
    /// answer to send, if any, and whether the connection is over.
    pub(super) fn handle(&self, header: &Header, payload: &[u8]) -> (Option<Header>, bool) {
        let mut state = self.state.lock();
        state.credit.update_from(header);
        let answer = match (header.op, state.phase) {
            (op::RESPONSE, Phase::Connecting) => {
                state.phase = Phase::Established;
                None
            }
            (op::RW, Phase::Established) => {
                if state.is_done_receiving {
                    // Linux drops data a socket will never read, but counts
                    // it taken so the peer's credit does not run dry.
                    state.credit.record_received(payload.len() as u32);
                    state.credit.record_forwarded(payload.len() as u32);
                    None
                } else if state.credit.record_received(payload.len() as u32) {
                    state.received.extend(payload);
                    None
                } else {
                    // The peer ignored the credit: end the connection.
                    state.phase = Phase::Closed;
                    state.error = Some(Errno::ECONNRESET);
                    Some(self.header(op::RST, 0, 0))
                }
            }
            (op::CREDIT_UPDATE, _) => None,
            (op::CREDIT_REQUEST, Phase::Established) => {
                let mut answer = self.header(op::CREDIT_UPDATE, 0, 0);
                state.credit.stamp(&mut answer);
                Some(answer)
            }
            (op::SHUTDOWN, Phase::Established) => {
                state.is_peer_done_receiving |= header.flags & shutdown::RECEIVE != 0;
                state.is_peer_done_sending |= header.flags & shutdown::SEND != 0;
                if state.is_peer_done_receiving && state.is_peer_done_sending {
                    // Both directions are over: the peer waits for a reset.
                    state.phase = Phase::Closed;
                    Some(self.header(op::RST, 0, 0))
                } else {
                    None
                }
            }
            (op::RST, phase) => {
                if phase == Phase::Connecting {
                    state.error = Some(Errno::ECONNREFUSED);
                } else if phase == Phase::Established && !state.is_done_sending {
                    state.error = Some(Errno::ECONNRESET);
                }
                state.phase = Phase::Closed;
                None
            }
            (_, Phase::Closed) => None,
            _ => {
                state.phase = Phase::Closed;
                state.error = Some(Errno::ECONNRESET);
                Some(self.header(op::RST, 0, 0))
            }
        };
        let is_closed = state.phase == Phase::Closed;
        drop(state);
        self.waiters.notify();
        (answer, is_closed)
    }
}
