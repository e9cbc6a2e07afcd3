//! A host channel for tests: bytes the test queues, bytes the guest sent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::vec::Vec;

use super::{ChannelClosed, HostChannel, Received};
use crate::vfs::waiters::WaiterList;

/// One direction of a stream, played by the test.
#[derive(Default)]
pub struct FakeChannel {
    /// Bytes the host sent, not yet taken.
    pub incoming: Mutex<VecDeque<u8>>,
    /// Whether the host closed its side.
    pub is_closed: Mutex<bool>,
    /// Bytes the guest sent.
    pub outgoing: Mutex<Vec<u8>>,
    /// Most bytes one send takes (0: unlimited).
    pub send_limit: Mutex<usize>,
    /// Whether sends take nothing (the host does not read).
    pub is_full: Mutex<bool>,
    pub waiters: WaiterList,
}

impl FakeChannel {
    /// The host sends `bytes`.
    pub fn push(&self, bytes: &[u8]) {
        self.incoming.lock().unwrap().extend(bytes);
        self.waiters.notify();
    }

    /// The host closes its side.
    pub fn close(&self) {
        *self.is_closed.lock().unwrap() = true;
        self.waiters.notify();
    }

    /// What the guest sent, as text.
    pub fn sent_text(&self) -> std::string::String {
        std::string::String::from_utf8_lossy(&self.outgoing.lock().unwrap()).into_owned()
    }
}

impl HostChannel for FakeChannel {
    fn receive(&self, buffer: &mut [u8]) -> Received {
        let mut incoming = self.incoming.lock().unwrap();
        if incoming.is_empty() {
            return if *self.is_closed.lock().unwrap() { Received::Closed } else { Received::Nothing };
        }
        let length = buffer.len().min(incoming.len());
        for (slot, byte) in buffer.iter_mut().zip(incoming.drain(..length)) {
            *slot = byte;
        }
        Received::Bytes(length)
    }

    fn peek(&self) -> Received {
        let incoming = self.incoming.lock().unwrap();
        match (incoming.len(), *self.is_closed.lock().unwrap()) {
            (0, true) => Received::Closed,
            (0, false) => Received::Nothing,
            (length, _) => Received::Bytes(length),
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<usize, ChannelClosed> {
        if *self.is_closed.lock().unwrap() {
            return Err(ChannelClosed);
        }
        if *self.is_full.lock().unwrap() {
            return Ok(0);
        }
        let limit = *self.send_limit.lock().unwrap();
        let length = if limit == 0 { bytes.len() } else { bytes.len().min(limit) };
        self.outgoing.lock().unwrap().extend_from_slice(&bytes[..length]);
        Ok(length)
    }

    fn can_send(&self) -> bool {
        !*self.is_full.lock().unwrap()
    }

    fn is_sent(&self) -> bool {
        true
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }
}
