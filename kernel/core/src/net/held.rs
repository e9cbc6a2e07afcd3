//! Data a TCP connection holds back before it reaches smoltcp, as Linux
//! corks it: `MSG_MORE` says more follows, `TCP_CORK` says so until it is
//! taken off. Full segments go at once; what is left of one (always less
//! than a segment) waits for the next send that does not hold, for the
//! cork to come off, or at most 200 ms, as on Linux.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

/// How long held data waits at most (Linux's ceiling for a cork).
pub const HOLD_LIMIT: Duration = Duration::from_millis(200);

/// A connection's held bytes and when they must go.
#[derive(Debug)]
struct Holding {
    bytes: Vec<u8>,
    due: Instant,
}

/// The held bytes of every connection holding some.
#[derive(Debug, Default)]
pub struct Held {
    connections: BTreeMap<SocketHandle, Holding>,
}

impl Held {
    /// Sends `bytes` on `tcp` after what the connection holds: everything
    /// if `hold` is false, else the whole segments of `segment` bytes,
    /// keeping the rest back. Returns how many of `bytes` were taken (held
    /// or queued); fewer when smoltcp's buffer is full, none while held
    /// bytes that must go first do not fit.
    pub fn send(
        &mut self,
        handle: SocketHandle,
        tcp: &mut tcp::Socket<'_>,
        bytes: &[u8],
        hold: bool,
        segment: usize,
        now: Instant,
    ) -> usize {
        let held_length = self.connections.get(&handle).map_or(0, |holding| holding.bytes.len());
        let total = held_length + bytes.len();
        let to_send = if hold { total / segment.max(1) * segment.max(1) } else { total };
        if to_send > 0 && held_length > 0 && !self.flush(handle, tcp) {
            return 0;
        }
        let from_bytes = to_send.saturating_sub(held_length);
        let queued = if from_bytes > 0 { tcp.send_slice(&bytes[..from_bytes]).unwrap_or(0) } else { 0 };
        if queued < from_bytes || from_bytes == bytes.len() {
            return queued;
        }
        let holding = self
            .connections
            .entry(handle)
            .or_insert_with(|| Holding { bytes: Vec::new(), due: now + HOLD_LIMIT });
        if holding.bytes.is_empty() {
            holding.due = now + HOLD_LIMIT;
        }
        if holding.bytes.try_reserve(bytes.len() - from_bytes).is_err() {
            return queued;
        }
        holding.bytes.extend_from_slice(&bytes[from_bytes..]);
        bytes.len()
    }

    /// Queues what `handle` holds on `tcp`; whether all of it fit.
    pub fn flush(&mut self, handle: SocketHandle, tcp: &mut tcp::Socket<'_>) -> bool {
        let Some(holding) = self.connections.get_mut(&handle) else { return true };
        let queued = tcp.send_slice(&holding.bytes).unwrap_or(0);
        holding.bytes.drain(..queued);
        let is_empty = holding.bytes.is_empty();
        if is_empty {
            self.connections.remove(&handle);
        }
        is_empty
    }

    /// How many bytes `handle` holds.
    pub fn length(&self, handle: SocketHandle) -> usize {
        self.connections.get(&handle).map_or(0, |holding| holding.bytes.len())
    }

    /// Queues the held bytes that are due at `now`; those that do not fit
    /// in their socket's buffer try again a little later.
    pub fn flush_due(&mut self, now: Instant, sockets: &mut SocketSet<'_>) {
        /// How long bytes due that did not fit wait before the next try.
        const RETRY: Duration = Duration::from_millis(10);
        let due: Vec<SocketHandle> = self
            .connections
            .iter()
            .filter(|(_, holding)| holding.due <= now)
            .map(|(handle, _)| *handle)
            .collect();
        for handle in due {
            if !self.flush(handle, sockets.get_mut::<tcp::Socket<'_>>(handle))
                && let Some(holding) = self.connections.get_mut(&handle)
            {
                holding.due = now + RETRY;
            }
        }
    }

    /// When held bytes are next due.
    pub fn next_due(&self) -> Option<Instant> {
        self.connections.values().map(|holding| holding.due).min()
    }

    /// Forgets what `handle` holds (its socket is gone).
    pub fn forget(&mut self, handle: SocketHandle) {
        self.connections.remove(&handle);
    }
}
