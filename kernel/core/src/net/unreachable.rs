//! ICMP "destination unreachable" messages about UDP datagrams the machine
//! sent, kept for the socket that sent them (`ip(7)`: `IP_RECVERR`, the
//! error queue, and the error a connected socket's next call returns).
//!
//! smoltcp reads these messages and drops them; the link copies each one
//! it receives ([`is_unreachable`]) and the stack finds the UDP socket
//! bound to the port the datagram inside came from.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

use smoltcp::iface::SocketHandle;

use crate::errno::Errno;

/// Errors a socket keeps; later ones are dropped, as a full error queue
/// drops them.
const QUEUE_LIMIT: usize = 16;
/// ICMP's "destination unreachable" type.
const DESTINATION_UNREACHABLE: u8 = 3;

/// One ICMP error about a datagram a socket sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The error it means (`ECONNREFUSED` for an unreachable port).
    pub errno: Errno,
    /// The ICMP type and code.
    pub kind: u8,
    pub code: u8,
    /// Who sent the ICMP message.
    pub offender: Ipv4Addr,
    /// Where the datagram went, and as much of its payload as came back.
    pub destination: SocketAddrV4,
    pub payload: Vec<u8>,
}

impl Unreachable {
    /// `struct sock_extended_err` (`linux/errqueue.h`) followed by the
    /// offender's `struct sockaddr_in`, as `IP_RECVERR` delivers them.
    pub fn extended_error(&self) -> Vec<u8> {
        /// `SO_EE_ORIGIN_ICMP`, and `AF_INET`.
        const ORIGIN_ICMP: u8 = 2;
        const FAMILY_INET: u16 = 2;
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&(self.errno.0 as u32).to_ne_bytes());
        bytes.extend_from_slice(&[ORIGIN_ICMP, self.kind, self.code, 0]);
        // `ee_info` and `ee_data`.
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&FAMILY_INET.to_ne_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&self.offender.octets());
        bytes.extend_from_slice(&[0; 8]);
        bytes
    }
}

/// The errors each UDP socket has not collected.
#[derive(Debug, Default)]
pub struct Errors {
    queues: BTreeMap<SocketHandle, Queue>,
}

/// A socket's errors: the queue, and the last one not yet reported by a
/// call.
#[derive(Debug, Default)]
struct Queue {
    entries: VecDeque<Unreachable>,
    pending: Option<Errno>,
}

impl Errors {
    /// Keeps `error` for the socket behind `handle`.
    pub fn record(&mut self, handle: SocketHandle, error: Unreachable) {
        let queue = self.queues.entry(handle).or_default();
        queue.pending = Some(error.errno);
        if queue.entries.len() < QUEUE_LIMIT {
            queue.entries.push_back(error);
        }
    }

    /// Takes the next queued error of `handle` (`MSG_ERRQUEUE`).
    pub fn take(&mut self, handle: SocketHandle) -> Option<Unreachable> {
        let queue = self.queues.get_mut(&handle)?;
        let entry = queue.entries.pop_front();
        if queue.entries.is_empty() {
            // Reading the queue reports the error.
            self.queues.remove(&handle);
        }
        entry
    }

    /// Takes the error `handle`'s next call reports.
    pub fn take_pending(&mut self, handle: SocketHandle) -> Option<Errno> {
        let queue = self.queues.get_mut(&handle)?;
        let pending = queue.pending.take();
        if queue.entries.is_empty() {
            self.queues.remove(&handle);
        }
        pending
    }

    /// Forgets every error of `handle`, reported or not (its socket no
    /// longer collects them).
    pub fn clear(&mut self, handle: SocketHandle) {
        self.queues.remove(&handle);
    }

    /// Whether `handle` has an error to report or collect.
    pub fn has_error(&self, handle: SocketHandle) -> bool {
        self.queues.contains_key(&handle)
    }
}

/// Whether the Ethernet `frame` holds an ICMP "destination unreachable"
/// message.
pub fn is_unreachable(frame: &[u8]) -> bool {
    const ICMP: u8 = 1;
    let header_length = frame.get(14).map_or(0, |first| usize::from(first & 0x0f) * 4);
    frame.get(12..14) == Some(&[0x08, 0x00])
        && frame.get(23) == Some(&ICMP)
        && frame.get(14 + header_length) == Some(&DESTINATION_UNREACHABLE)
}

/// The error in a frame [`is_unreachable`] accepted, and the port its
/// datagram came from, if the datagram was UDP.
pub fn parse(frame: &[u8]) -> Option<(SocketAddrV4, Unreachable)> {
    const UDP: u8 = 17;
    let packet = frame.get(14..)?;
    let header_length = usize::from(packet.first()? & 0x0f) * 4;
    let offender: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let icmp = packet.get(header_length..)?;
    let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
    // The datagram's IP header, then its UDP header and payload.
    let original = icmp.get(8..)?;
    let original_header = usize::from(original.first()? & 0x0f) * 4;
    if *original.get(9)? != UDP || original_header < 20 {
        return None;
    }
    let source: [u8; 4] = original.get(12..16)?.try_into().ok()?;
    let destination: [u8; 4] = original.get(16..20)?.try_into().ok()?;
    let udp = original.get(original_header..)?;
    let source_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let destination_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let payload = udp.get(8..length.max(8).min(udp.len()))?.to_vec();
    let error = Unreachable {
        errno: errno_of(code),
        kind,
        code,
        offender: Ipv4Addr::from(offender),
        destination: SocketAddrV4::new(Ipv4Addr::from(destination), destination_port),
        payload,
    };
    Some((SocketAddrV4::new(Ipv4Addr::from(source), source_port), error))
}

/// The error a "destination unreachable" code means, much as Linux
/// converts them (`icmp_err_convert`).
fn errno_of(code: u8) -> Errno {
    match code {
        0 | 6 | 9 | 11 => Errno::ENETUNREACH,
        2 => Errno::ENOPROTOOPT,
        3 => Errno::ECONNREFUSED,
        4 => Errno::EMSGSIZE,
        5 => Errno::EOPNOTSUPP,
        // Linux says `EHOSTDOWN` and `ENONET` for 7 and 8.
        _ => Errno::EHOSTUNREACH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "port unreachable" from 127.0.0.1 about a datagram 10.0.2.15:4000
    /// sent to 127.0.0.1:9 carrying "hello".
    fn port_unreachable() -> Vec<u8> {
        let mut original = alloc::vec![0x45, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 127, 0, 0, 1];
        original.extend_from_slice(&4000u16.to_be_bytes());
        original.extend_from_slice(&9u16.to_be_bytes());
        original.extend_from_slice(&13u16.to_be_bytes());
        original.extend_from_slice(&[0, 0]);
        original.extend_from_slice(b"hello");
        let mut frame = alloc::vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        frame.extend_from_slice(&((28 + original.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 10, 0, 2, 15]);
        frame.extend_from_slice(&[DESTINATION_UNREACHABLE, 3, 0, 0, 0, 0, 0, 0]);
        frame.extend_from_slice(&original);
        frame
    }

    #[test]
    fn a_port_unreachable_names_the_sender_and_the_datagram() {
        let frame = port_unreachable();
        assert!(is_unreachable(&frame));
        let (sender, error) = parse(&frame).expect("an error about a UDP datagram");
        assert_eq!(sender, "10.0.2.15:4000".parse::<SocketAddrV4>().expect("an address"));
        assert_eq!(error.errno, Errno::ECONNREFUSED);
        assert_eq!((error.kind, error.code), (3, 3));
        assert_eq!(error.destination, "127.0.0.1:9".parse::<SocketAddrV4>().expect("an address"));
        assert_eq!(error.payload, b"hello");
        let extended = error.extended_error();
        assert_eq!(extended.len(), 32);
        assert_eq!(extended[..4], 111u32.to_ne_bytes());
        assert_eq!(extended[4..8], [2, 3, 3, 0]);
        assert_eq!(extended[20..24], [127, 0, 0, 1]);
        // Cut short, it is nothing.
        assert!(parse(&frame[..40]).is_none());
    }

    #[test]
    fn errors_are_queued_reported_once_and_cleared() {
        let (_, error) = parse(&port_unreachable()).expect("an error");
        let mut errors = Errors::default();
        let handle = SocketHandle::default();
        errors.record(handle, error.clone());
        assert!(errors.has_error(handle));
        assert_eq!(errors.take_pending(handle), Some(Errno::ECONNREFUSED));
        assert_eq!(errors.take_pending(handle), None);
        assert_eq!(errors.take(handle), Some(error.clone()));
        assert!(!errors.has_error(handle));
        for _ in 0..QUEUE_LIMIT + 3 {
            errors.record(handle, error.clone());
        }
        let mut queued = 0;
        while errors.take(handle).is_some() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE_LIMIT);
        errors.record(handle, error);
        errors.clear(handle);
        assert!(!errors.has_error(handle));
    }
}
