//! Sending and receiving on local sockets, and the byte streams and
//! packets of connected stream and sequenced-packet sockets: what was
//! sent, the files and credentials that came with it, peeks and their
//! offset.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{
    Ancillary, Channel, Direction, LocalKind, LocalReceived, LocalSocket, PeerCredentials, Rights, State,
};
use crate::errno::Errno;
use crate::net::abi::message;
use crate::net::wait_for;
use crate::vfs::node::Caller;
use crate::vfs::pipe::copy_front;

impl LocalSocket {
    /// The connection of a stream or packet socket, and its side.
    fn channel(&self) -> Result<(Arc<Channel>, usize), Errno> {
        match &self.inner.lock().state {
            State::Connected { channel, side, .. } => Ok((channel.clone(), *side)),
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Sends `bytes` with the open files `rights`, to `destination` (the
    /// socket bound to the name given) if a datagram socket names one.
    pub fn send(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        destination: Option<Arc<LocalSocket>>,
        rights: Rights,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        let ancillary = Ancillary { rights, credentials: None };
        self.send_with(caller, bytes, flags, destination, ancillary, is_nonblocking)
    }

    /// Sends `bytes` with what `ancillary` holds (the sender's own
    /// credentials unless it states others).
    pub fn send_with(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        flags: u32,
        destination: Option<Arc<LocalSocket>>,
        ancillary: Ancillary,
        is_nonblocking: bool,
    ) -> Result<usize, Errno> {
        if flags & message::OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let timeout = self.options.lock().send_timeout_ns;
        // Credentials the sender states always go; its own only while
        // either end passes credentials, checked where the data is queued.
        let stated = ancillary.credentials.is_some();
        let credentials = ancillary.credentials.unwrap_or_else(|| PeerCredentials::of(caller, false));
        let credentials = (credentials, stated);
        match self.kind {
            LocalKind::Datagram => self.send_datagram(
                caller,
                bytes,
                destination,
                (ancillary.rights, credentials),
                is_nonblocking,
                timeout,
            ),
            LocalKind::Stream | LocalKind::SeqPacket => {
                if destination.is_some() {
                    return Err(if self.is_connected() { Errno::EISCONN } else { Errno::EOPNOTSUPP });
                }
                let outgoing = Outgoing { bytes, rights: ancillary.rights, credentials };
                self.send_connected(caller, outgoing, is_nonblocking, timeout)
            }
        }
    }

    fn send_connected(
        &self,
        caller: &Caller<'_>,
        outgoing: Outgoing<'_>,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        let Outgoing { bytes, rights, credentials: (credentials, stated) } = outgoing;
        let (channel, side) = self.channel()?;
        let credentials =
            if stated || channel.carries_credentials() { credentials } else { PeerCredentials::NONE };
        let is_packet = self.kind == LocalKind::SeqPacket;
        let mut rights = Some(rights).filter(|rights| !rights.is_empty());
        let mut written = 0;
        let result = wait_for(caller, &self.waiters, is_nonblocking, timeout, || {
            let mut directions = channel.directions.lock();
            let direction = &mut directions[1 - side];
            if direction.is_finished || direction.is_abandoned {
                return Some(Err(Errno::EPIPE));
            }
            let room = channel.capacity.saturating_sub(direction.bytes.len());
            let step = if is_packet {
                // A message larger than the queue goes when the queue is
                // empty: the sender's buffer bounds it, as on Linux.
                if room < bytes.len() && !direction.bytes.is_empty() {
                    return None;
                }
                direction.messages.push_back(bytes.len());
                bytes.len()
            } else {
                let step = room.min(bytes.len() - written);
                if step == 0 && !bytes.is_empty() {
                    return None;
                }
                step
            };
            // The files go with the first byte (or the message), and a
            // stream read stops after the bytes sent with them.
            if let Some(rights) = rights.take() {
                direction.rights.push_back((direction.queued_total, rights));
                if !is_packet {
                    direction.rights_ends.push_back(direction.queued_total + step as u64);
                }
            }
            if direction.senders.back().is_none_or(|(_, last)| *last != credentials) {
                direction.senders.push_back((direction.queued_total, credentials));
            }
            direction.bytes.extend(&bytes[written..written + step]);
            direction.queued_total += step as u64;
            written += step;
            drop(directions);
            channel.notify();
            (written == bytes.len()).then_some(Ok(written))
        });
        match result {
            Err(_) if written > 0 => Ok(written),
            other => other,
        }
    }

    /// Receives into `buffer`.
    pub fn receive(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
    ) -> Result<LocalReceived, Errno> {
        if flags & message::OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let is_nonblocking = is_nonblocking || flags & message::DONTWAIT != 0;
        let (timeout, passes_credentials) = {
            let options = self.options.lock();
            (options.receive_timeout_ns, options.pass_credentials)
        };
        let mut received = match self.kind {
            LocalKind::Datagram => self.receive_datagram(caller, buffer, flags, is_nonblocking, timeout),
            LocalKind::Stream | LocalKind::SeqPacket => {
                self.receive_connected(caller, buffer, flags, is_nonblocking, timeout)
            }
        }?;
        if !passes_credentials {
            received.credentials = None;
        }
        Ok(received)
    }

    /// Where a peek starts (`SO_PEEK_OFF`), for a receive with `flags`.
    pub(super) fn peek_start(&self, flags: u32) -> usize {
        if flags & message::PEEK == 0 {
            return 0;
        }
        self.options.lock().peek_offset.unwrap_or(0)
    }

    /// Moves the peek offset past `length` bytes peeked, or back by
    /// `length` bytes read.
    pub(super) fn move_peek_offset(&self, flags: u32, length: usize) {
        let mut options = self.options.lock();
        if let Some(offset) = &mut options.peek_offset {
            *offset = if flags & message::PEEK != 0 {
                offset.saturating_add(length)
            } else {
                offset.saturating_sub(length)
            };
        }
    }

    fn receive_connected(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<LocalReceived, Errno> {
        let (channel, side) = match self.channel() {
            Ok(connection) => connection,
            Err(_) if self.is_listening() => return Err(Errno::EINVAL),
            Err(error) => return Err(error),
        };
        let is_peek = flags & message::PEEK != 0;
        let is_packet = self.kind == LocalKind::SeqPacket;
        let passes_credentials = self.options.lock().pass_credentials;
        let wants_all = flags & message::WAITALL != 0 && !is_peek && !is_packet;
        let peek_start = if is_packet { 0 } else { self.peek_start(flags) };
        let mut received =
            LocalReceived { length: 0, full_length: 0, source: None, rights: Vec::new(), credentials: None };
        let result = wait_for(caller, &self.waiters, is_nonblocking, timeout, || {
            let mut directions = channel.directions.lock();
            let incoming = &mut directions[side];
            if is_packet && let Some(&length) = incoming.messages.front() {
                let stored = length.min(buffer.len());
                copy_front(&incoming.bytes, &mut buffer[..stored]);
                received.length = stored;
                received.full_length = length;
                received.credentials = sender_at(incoming, incoming.taken_total);
                if is_peek {
                    received.rights = rights_at(incoming, incoming.taken_total);
                } else {
                    received.rights = take_rights(incoming, length);
                    incoming.messages.pop_front();
                    incoming.bytes.drain(..length);
                    drop(directions);
                    channel.notify();
                }
                return Some(Ok(()));
            }
            let filled = received.length;
            let start = if is_peek { peek_start } else { 0 };
            if !is_packet && incoming.bytes.len() > start && filled < buffer.len() {
                // A read goes on through the bytes that came with files
                // and stops after them; for a receiver of credentials, it
                // also stops where another sender's bytes begin (Linux
                // glues no writes of different senders together).
                let position = incoming.taken_total + start as u64;
                if passes_credentials && filled > 0 && sender_at(incoming, position) != received.credentials {
                    return Some(Ok(()));
                }
                let mut step = (incoming.bytes.len() - start).min(buffer.len() - filled);
                let mut boundary = incoming.rights_ends.iter().copied().find(|end| *end > position);
                if passes_credentials
                    && let Some(change) = incoming.senders.iter().map(|(at, _)| *at).find(|at| *at > position)
                {
                    boundary = Some(boundary.map_or(change, |end| end.min(change)));
                }
                if let Some(boundary) = boundary {
                    step = step.min((boundary - position) as usize);
                }
                let reaches_boundary = boundary == Some(position + step as u64);
                if start == 0 {
                    copy_front(&incoming.bytes, &mut buffer[filled..filled + step]);
                } else {
                    copy_range(&incoming.bytes, start, &mut buffer[filled..filled + step]);
                }
                if received.credentials.is_none() {
                    received.credentials = sender_at(incoming, position);
                }
                received.length += step;
                received.full_length = received.length;
                if is_peek {
                    received.rights.extend(rights_within(incoming, position, step));
                } else {
                    received.rights.extend(take_rights(incoming, step));
                    incoming.bytes.drain(..step);
                }
                let is_done = !wants_all || received.length == buffer.len() || reaches_boundary;
                let is_finished = incoming.is_finished;
                drop(directions);
                if !is_peek {
                    channel.notify();
                }
                return (is_done || is_finished).then_some(Ok(()));
            }
            if buffer.is_empty() && !is_packet {
                // A read of nothing still takes the files that came with
                // the next byte.
                if !is_peek && !incoming.bytes.is_empty() {
                    received.rights = take_rights(incoming, 0);
                }
                return Some(Ok(()));
            }
            if incoming.is_reset {
                incoming.is_reset = false;
                return Some(Err(Errno::ECONNRESET));
            }
            if incoming.is_finished || incoming.is_abandoned {
                return Some(Ok(()));
            }
            None
        });
        let result = match result {
            Ok(()) => Ok(received),
            Err(_) if received.length > 0 => Ok(received),
            Err(error) => Err(error),
        };
        if let Ok(received) = &result
            && !is_packet
        {
            self.move_peek_offset(flags, received.length);
        }
        result
    }
}

/// Takes `length` bytes' worth of positions from `direction`: the files
/// that came with them, all of them if several batches did.
fn take_rights(direction: &mut Direction, length: usize) -> Rights {
    let end = direction.taken_total + length as u64;
    let mut taken = Vec::new();
    // A zero-length message still carries its files.
    while let Some((at, _)) = direction.rights.front() {
        if *at > end || (*at == end && length > 0) {
            break;
        }
        if let Some((_, rights)) = direction.rights.pop_front() {
            taken.extend(rights);
        }
    }
    direction.taken_total = end;
    while direction.rights_ends.front().is_some_and(|at| *at <= end) {
        direction.rights_ends.pop_front();
    }
    // Who sent what is read is no longer needed.
    while direction.senders.get(1).is_some_and(|(at, _)| *at <= end) {
        direction.senders.pop_front();
    }
    taken
}

/// Copies of the files that came with the byte at stream position
/// `position`: what a peek passes on, leaving them queued.
fn rights_at(direction: &Direction, position: u64) -> Rights {
    direction
        .rights
        .iter()
        .filter(|(at, _)| *at == position)
        .flat_map(|(_, rights)| rights.iter().cloned())
        .collect()
}

/// Copies of the files that came with the `length` bytes from stream
/// position `position` on: what a stream peek passes on.
fn rights_within(direction: &Direction, position: u64, length: usize) -> Rights {
    let end = position + length.max(1) as u64;
    direction
        .rights
        .iter()
        .filter(|(at, _)| (position..end).contains(at))
        .flat_map(|(_, rights)| rights.iter().cloned())
        .collect()
}

/// Who sent the byte at stream position `position`.
fn sender_at(direction: &Direction, position: u64) -> Option<PeerCredentials> {
    direction.senders.iter().rev().find(|(at, _)| *at <= position).map(|(_, credentials)| *credentials)
}

/// Copies `buffer.len()` bytes of `bytes` from `start` on into `buffer`.
fn copy_range(bytes: &VecDeque<u8>, start: usize, buffer: &mut [u8]) {
    for (slot, byte) in buffer.iter_mut().zip(bytes.range(start..)) {
        *slot = *byte;
    }
}

/// A send on a connection: the bytes and what goes with them.
struct Outgoing<'a> {
    bytes: &'a [u8],
    rights: Rights,
    /// The sender's credentials, and whether it stated them.
    credentials: (PeerCredentials, bool),
}
