//! Local datagram sockets: each keeps an inbox that senders fill, and a
//! connected one takes datagrams from its peer alone.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::{LocalKind, LocalReceived, LocalSocket, Packet, PeerCredentials, Rights, State};
use crate::errno::Errno;
use crate::net::abi::message;
use crate::net::wait_for;
use crate::vfs::node::Caller;

/// Datagrams an inbox holds at most (`net.unix.max_dgram_qlen`).
pub(super) const INBOX_SLOTS: usize = 512;

impl LocalSocket {
    pub(super) fn send_datagram(
        &self,
        caller: &Caller<'_>,
        bytes: &[u8],
        destination: Option<Arc<LocalSocket>>,
        (rights, (credentials, stated)): (Rights, (PeerCredentials, bool)),
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<usize, Errno> {
        let (sender, connected_peer, is_write_shut) = {
            let inner = self.inner.lock();
            let peer = match &inner.state {
                State::Datagram { peer, .. } => peer.clone(),
                _ => None,
            };
            (inner.name.clone(), peer, inner.is_write_shut)
        };
        if is_write_shut {
            return Err(Errno::EPIPE);
        }
        let target = match destination {
            Some(target) => target,
            None => match connected_peer {
                None => return Err(Errno::ENOTCONN),
                Some(peer) => peer.upgrade().ok_or(Errno::ECONNREFUSED)?,
            },
        };
        if target.kind != LocalKind::Datagram {
            return Err(Errno::EPROTOTYPE);
        }
        let limit = self.options.lock().send_buffer;
        if bytes.len() > limit.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        let (capacity, target_passes) = {
            let options = target.options.lock();
            (options.receive_buffer, options.pass_credentials)
        };
        let carries = stated || target_passes || self.options.lock().pass_credentials;
        let credentials = if carries { credentials } else { PeerCredentials::NONE };
        let mut rights = Some(rights);
        wait_for(caller, &target.waiters, is_nonblocking, timeout, || {
            let mut inner = target.inner.lock();
            let is_read_shut = inner.is_read_shut;
            let State::Datagram { peer, inbox, inbox_bytes } = &mut inner.state else {
                return Some(Err(Errno::EPROTOTYPE));
            };
            // A connected socket takes datagrams from its peer alone.
            if let Some(peer) = peer
                && !core::ptr::eq(peer.as_ptr(), self)
            {
                return Some(Err(Errno::EPERM));
            }
            if is_read_shut {
                return Some(Err(Errno::EPIPE));
            }
            // Full at the limit; the last datagram in may pass it (so that
            // `poll` can tell without knowing the next one's size).
            let is_full = inbox.len() >= INBOX_SLOTS || *inbox_bytes >= capacity;
            if is_full {
                return None;
            }
            let rights = rights.take().unwrap_or_default();
            inbox.push_back(Packet { bytes: bytes.to_vec(), sender: sender.clone(), rights, credentials });
            *inbox_bytes += bytes.len();
            Some(Ok(bytes.len()))
        })?;
        target.waiters.notify();
        Ok(bytes.len())
    }

    pub(super) fn receive_datagram(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        flags: u32,
        is_nonblocking: bool,
        timeout: Option<u64>,
    ) -> Result<LocalReceived, Errno> {
        let is_peek = flags & message::PEEK != 0;
        let peek_start = self.peek_start(flags);
        let mut peer_to_notify = None;
        let received = wait_for(caller, &self.waiters, is_nonblocking, timeout, || {
            let mut inner = self.inner.lock();
            let is_read_shut = inner.is_read_shut;
            let State::Datagram { inbox, inbox_bytes, peer } = &mut inner.state else {
                unreachable!("datagram sockets stay so")
            };
            // A peek at an offset (`SO_PEEK_OFF`) passes over the
            // datagrams it covers whole.
            let mut skip = peek_start;
            let found = inbox.iter().find(|packet| {
                if skip < packet.bytes.len() || (skip == 0 && packet.bytes.is_empty()) {
                    return true;
                }
                skip -= packet.bytes.len();
                false
            });
            let Some(packet) = found else {
                return is_read_shut.then(|| {
                    Ok(LocalReceived {
                        length: 0,
                        full_length: 0,
                        source: None,
                        rights: Vec::new(),
                        credentials: None,
                    })
                });
            };
            let rest = &packet.bytes[skip..];
            let stored = rest.len().min(buffer.len());
            buffer[..stored].copy_from_slice(&rest[..stored]);
            let mut received = LocalReceived {
                length: stored,
                full_length: rest.len(),
                source: Some(packet.sender.clone()),
                // A peek passes on copies of the files, which stay queued.
                rights: if is_peek && skip == 0 { packet.rights.clone() } else { Vec::new() },
                credentials: Some(packet.credentials),
            };
            if !is_peek && let Some(packet) = inbox.pop_front() {
                *inbox_bytes -= packet.bytes.len();
                received.rights = packet.rights;
                peer_to_notify = peer.as_ref().and_then(Weak::upgrade);
            }
            Some(Ok(received))
        })?;
        self.move_peek_offset(flags, if is_peek { received.length } else { received.full_length });
        if !is_peek {
            // Room in the inbox: wake blocked senders and the peer's
            // pollers.
            self.waiters.notify();
            if let Some(peer) = peer_to_notify {
                peer.waiters.notify();
            }
        }
        Ok(received)
    }
}
