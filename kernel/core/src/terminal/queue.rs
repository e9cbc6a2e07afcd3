//! A bounded byte queue inside the kernel: what a pseudo-terminal's slave
//! side shows, waiting for the master side to read it.
//!
//! It is a [`HostChannel`] seen from the slave's [`super::Terminal`]:
//! output and echo are sent into it, and the master takes them out with
//! [`ByteQueue::take`]. Once the reader is gone ([`ByteQueue::close`]),
//! sends fail as to a host that stopped listening. While the terminal's
//! output is stopped ([`ByteQueue::set_stopped`]) nothing is sent, as
//! Linux's pty refuses writes to a stopped side.

use alloc::collections::VecDeque;

use spin::Mutex;

use crate::streams::{ChannelClosed, HostChannel, Received};
use crate::vfs::waiters::WaiterList;

struct QueueState {
    bytes: VecDeque<u8>,
    is_closed: bool,
    is_stopped: bool,
}

/// Bytes on their way from a terminal to the reader of its screen.
pub struct ByteQueue {
    state: Mutex<QueueState>,
    capacity: usize,
    /// Notified when bytes arrive, room frees up or the reader goes.
    waiters: WaiterList,
}

impl core::fmt::Debug for ByteQueue {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("ByteQueue").field("capacity", &self.capacity).finish()
    }
}

impl ByteQueue {
    /// An empty queue holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> ByteQueue {
        ByteQueue {
            state: Mutex::new(QueueState { bytes: VecDeque::new(), is_closed: false, is_stopped: false }),
            capacity,
            waiters: WaiterList::new(),
        }
    }

    /// Moves queued bytes into `buffer`; returns how many.
    pub fn take(&self, buffer: &mut [u8]) -> usize {
        let length = {
            let mut state = self.state.lock();
            let length = buffer.len().min(state.bytes.len());
            for (slot, byte) in buffer.iter_mut().zip(state.bytes.drain(..length)) {
                *slot = byte;
            }
            length
        };
        if length > 0 {
            self.waiters.notify();
        }
        length
    }

    /// Bytes waiting to be taken.
    pub fn len(&self) -> usize {
        self.state.lock().bytes.len()
    }

    /// Whether no byte waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every waiting byte.
    pub fn clear(&self) {
        self.state.lock().bytes.clear();
        self.waiters.notify();
    }

    /// Stops or starts sends (the terminal's output flow); starting wakes
    /// the senders.
    pub fn set_stopped(&self, is_stopped: bool) {
        self.state.lock().is_stopped = is_stopped;
        if !is_stopped {
            self.waiters.notify();
        }
    }

    /// Queues one byte even while stopped, if there is room (a flow control
    /// character the terminal sends, `TCIOFF`/`TCION`); returns whether it
    /// was queued.
    pub fn send_urgent(&self, byte: u8) -> bool {
        {
            let mut state = self.state.lock();
            if state.is_closed || state.bytes.len() >= self.capacity {
                return false;
            }
            state.bytes.push_back(byte);
        }
        self.waiters.notify();
        true
    }

    /// The reader is gone: waiting bytes are dropped and sends fail.
    pub fn close(&self) {
        {
            let mut state = self.state.lock();
            state.is_closed = true;
            state.bytes.clear();
        }
        self.waiters.notify();
    }
}

impl HostChannel for ByteQueue {
    /// Nothing ever comes the other way.
    fn receive(&self, _buffer: &mut [u8]) -> Received {
        Received::Nothing
    }

    fn peek(&self) -> Received {
        Received::Nothing
    }

    fn send(&self, bytes: &[u8]) -> Result<usize, ChannelClosed> {
        let length = {
            let mut state = self.state.lock();
            if state.is_closed {
                return Err(ChannelClosed);
            }
            if state.is_stopped {
                return Ok(0);
            }
            let length = bytes.len().min(self.capacity.saturating_sub(state.bytes.len()));
            state.bytes.extend(&bytes[..length]);
            length
        };
        if length > 0 {
            self.waiters.notify();
        }
        Ok(length)
    }

    fn can_send(&self) -> bool {
        let state = self.state.lock();
        state.is_closed || (!state.is_stopped && state.bytes.len() < self.capacity)
    }

    fn is_sent(&self) -> bool {
        let state = self.state.lock();
        state.is_closed || state.bytes.is_empty()
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }
}
