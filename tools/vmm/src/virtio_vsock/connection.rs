//! One vsock connection as the host side of the device sees it: a guest
//! port, a host port, the Unix stream the host's program holds, and the
//! flow-control accounts of both directions.
//!
//! [`Connection`] decides what each guest packet means for the stream and
//! what the guest should hear next; it does no I/O on guest memory, so the
//! packet and credit logic is tested here without a VM.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use rosv_virtio::vsock::{Credit, Header, TYPE_STREAM, cid, op, shutdown};

/// The host side's receive buffer: bytes from the guest not yet written
/// to the Unix stream.
pub const BUFFER_BYTES: u32 = 256 * 1024;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The host asked (`CONNECT`); the guest has not answered.
    Connecting,
    /// Data flows.
    Established,
    /// Over; the connection is removed once its last bytes are written.
    Closed,
}

/// One connection between a guest port and a host Unix stream.
#[derive(Debug)]
pub struct Connection {
    /// The guest's CID.
    pub guest_cid: u64,
    /// The guest's port.
    pub guest_port: u32,
    /// The host's port (a number the device picked for host-initiated
    /// connections, the port the guest asked for otherwise).
    pub host_port: u32,
    /// The host program's end.
    pub stream: UnixStream,
    /// Where it stands.
    pub phase: Phase,
    /// Both directions' accounts.
    pub credit: Credit,
    /// Bytes from the guest not yet written to the stream.
    pub to_host: VecDeque<u8>,
    /// Bytes at the front of `to_host` that the device wrote itself (the
    /// `OK` line), which the guest's credit does not count.
    own_bytes: usize,
    /// The guest sends no more: shut the stream's writing side once
    /// `to_host` is empty.
    pub is_guest_done_sending: bool,
    /// The host program closed its writing side (the stream read 0).
    pub is_host_done_sending: bool,
}

impl Connection {
    /// A connection over `stream` in `phase`.
    pub fn new(guest_cid: u64, guest_port: u32, host_port: u32, stream: UnixStream, phase: Phase) -> Self {
        Connection {
            guest_cid,
            guest_port,
            host_port,
            stream,
            phase,
            credit: Credit::new(BUFFER_BYTES),
            to_host: VecDeque::new(),
            own_bytes: 0,
            is_guest_done_sending: false,
            is_host_done_sending: false,
        }
    }

    /// A packet header from the host to the guest, with the host's credit.
    pub fn header(&mut self, op: u16, length: u32, flags: u32) -> Header {
        let mut header = Header {
            source_cid: u64::from(cid::HOST),
            destination_cid: self.guest_cid,
            source_port: self.host_port,
            destination_port: self.guest_port,
            length,
            socket_type: TYPE_STREAM,
            op,
            flags,
            buffer_allocation: 0,
            forwarded_count: 0,
        };
        self.credit.stamp(&mut header);
        header
    }

    /// Handles a packet the guest sent on this connection; returns the
    /// answer for the guest, if any.
    pub fn handle(&mut self, header: &Header, payload: &[u8]) -> Option<Header> {
        self.credit.update_from(header);
        match (header.op, self.phase) {
            (op::RESPONSE, Phase::Connecting) => {
                self.phase = Phase::Established;
                // The host program learns that the guest accepted, and
                // which port its side has (Firecracker's acknowledgement).
                let line = format!("OK {}\n", self.host_port);
                self.own_bytes += line.len();
                self.to_host.extend(line.bytes());
                None
            }
            (op::RW, Phase::Established) if self.credit.record_received(payload.len() as u32) => {
                self.to_host.extend(payload);
                None
            }
            (op::CREDIT_UPDATE, _) => None,
            (op::CREDIT_REQUEST, Phase::Established) => Some(self.header(op::CREDIT_UPDATE, 0, 0)),
            (op::SHUTDOWN, Phase::Established) => {
                self.is_guest_done_sending |= header.flags & shutdown::SEND != 0;
                if header.flags & shutdown::RECEIVE != 0 && header.flags & shutdown::SEND != 0 {
                    self.phase = Phase::Closed;
                    Some(self.header(op::RST, 0, 0))
                } else {
                    None
                }
            }
            (op::RST, _) => {
                self.phase = Phase::Closed;
                None
            }
            (_, Phase::Closed) => None,
            _ => {
                self.phase = Phase::Closed;
                Some(self.header(op::RST, 0, 0))
            }
        }
    }

    /// Writes what waits for the host program, as far as the stream takes
    /// it without blocking; returns a credit update for the guest once a
    /// quarter of the buffer was freed. Shuts the stream's writing side
    /// once the guest is done and everything is written.
    pub fn flush_to_host(&mut self) -> io::Result<Option<Header>> {
        while !self.to_host.is_empty() {
            let (front, _) = self.to_host.as_slices();
            match self.stream.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => {
                    self.to_host.drain(..count);
                    // The OK line is not guest data: only payload counts.
                    let own = count.min(self.own_bytes);
                    self.own_bytes -= own;
                    self.credit.record_forwarded((count - own) as u32);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        if self.to_host.is_empty() && self.is_guest_done_sending {
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
        }
        let is_open = self.phase == Phase::Established;
        Ok((is_open && self.credit.should_update()).then(|| self.header(op::CREDIT_UPDATE, 0, 0)))
    }

    /// Whether the host program's bytes may be read now: the guest has
    /// room for them.
    pub fn may_read_host(&self) -> bool {
        self.phase == Phase::Established && !self.is_host_done_sending && self.credit.peer_room() > 0
    }

    /// Reads what the host program sent, at most what the guest has room
    /// for and `limit`; returns the packet for the guest: data, or a
    /// shutdown once the program closed its side. `None`: nothing now.
    pub fn read_host(&mut self, limit: usize) -> Option<(Header, Vec<u8>)> {
        if !self.may_read_host() {
            return None;
        }
        let room = (self.credit.peer_room() as usize).min(limit);
        let mut buffer = vec![0u8; room];
        match self.stream.read(&mut buffer) {
            Ok(0) => {
                self.is_host_done_sending = true;
                // A program that closed its end gets the guest a full
                // shutdown, which the guest answers with a reset; one that
                // only shut its writing side (`shutdown(SHUT_WR)`) still
                // reads, so the guest hears that the host sends no more.
                let flags = if is_hung_up(&self.stream) {
                    shutdown::SEND | shutdown::RECEIVE
                } else {
                    shutdown::SEND
                };
                Some((self.header(op::SHUTDOWN, 0, flags), Vec::new()))
            }
            Ok(count) => {
                buffer.truncate(count);
                let header = self.header(op::RW, count as u32, 0);
                self.credit.record_sent(count as u32);
                Some((header, buffer))
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => None,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => None,
            Err(_) => {
                self.is_host_done_sending = true;
                self.phase = Phase::Closed;
                Some((self.header(op::RST, 0, 0), Vec::new()))
            }
        }
    }
}

/// Whether the other end of `stream` closed it whole, rather than only
/// shut its writing side: the stream then reports a hang-up, not only the
/// end of its input (Linux's `unix_poll`).
fn is_hung_up(stream: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
    let Ok(epoll) = Epoll::new() else { return true };
    if epoll.ctl(ControlOperation::Add, stream.as_raw_fd(), EpollEvent::new(EventSet::IN, 0)).is_err() {
        return true;
    }
    let mut events = [EpollEvent::default()];
    match epoll.wait(0, &mut events) {
        Ok(1) => events[0].event_set().contains(EventSet::HANG_UP),
        Ok(_) => false,
        Err(_) => true,
    }
}

/// Reads a host program's `CONNECT <port>\n` request from the bytes so
/// far: `Some(Ok(port))` when whole, `Some(Err(()))` when it cannot be
/// one, `None` while more must come.
pub fn parse_connect(bytes: &[u8]) -> Option<Result<u32, ()>> {
    const LONGEST: usize = "CONNECT 4294967295\n".len();
    let Some(end) = bytes.iter().position(|&byte| byte == b'\n') else {
        return (bytes.len() > LONGEST).then_some(Err(()));
    };
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| ());
    Some(line.and_then(|line| {
        let port = line.strip_prefix("CONNECT ").ok_or(())?;
        port.trim().parse().map_err(|_| ())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest_packet(op: u16, payload_length: u32, flags: u32, buffer: u32, forwarded: u32) -> Header {
        Header {
            source_cid: 3,
            destination_cid: 2,
            source_port: 8080,
            destination_port: 1 << 30,
            length: payload_length,
            socket_type: TYPE_STREAM,
            op,
            flags,
            buffer_allocation: buffer,
            forwarded_count: forwarded,
        }
    }

    fn pair(phase: Phase) -> (Connection, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Connection::new(3, 8080, 1 << 30, ours, phase), theirs)
    }

    #[test]
    fn connect_requests_are_parsed() {
        assert_eq!(parse_connect(b"CONNECT 8080\n"), Some(Ok(8080)));
        assert_eq!(parse_connect(b"CONNECT 80"), None);
        assert_eq!(parse_connect(b"CONNECT x\n"), Some(Err(())));
        assert_eq!(parse_connect(b"HELLO 1\n"), Some(Err(())));
        assert_eq!(parse_connect(&[b'C'; 40]), Some(Err(())));
    }

    #[test]
    fn an_accepted_connection_says_ok_and_carries_data_both_ways() {
        let (mut connection, mut host) = pair(Phase::Connecting);
        assert!(connection.handle(&guest_packet(op::RESPONSE, 0, 0, 1000, 0), &[]).is_none());
        assert_eq!(connection.phase, Phase::Established);
        connection.handle(&guest_packet(op::RW, 5, 0, 1000, 0), b"hello");
        assert_eq!(connection.flush_to_host().unwrap(), None);
        let mut text = [0u8; 64];
        let count = host.read(&mut text).unwrap();
        assert_eq!(&text[..count], format!("OK {}\nhello", 1 << 30).as_bytes());

        host.write_all(&[9u8; 1500]).unwrap();
        let (header, data) = connection.read_host(4052).unwrap();
        assert_eq!((header.op, header.length, data.len()), (op::RW, 1000, 1000), "the guest's room");
        assert!(!connection.may_read_host(), "no more until the guest makes room");
        connection.handle(&guest_packet(op::CREDIT_UPDATE, 0, 0, 1000, 1000), &[]);
        let (_, data) = connection.read_host(4052).unwrap();
        assert_eq!(data.len(), 500);
    }

    #[test]
    fn a_guest_beyond_its_credit_is_reset_and_a_closed_host_shuts_down() {
        let (mut connection, host) = pair(Phase::Established);
        let big = vec![0u8; BUFFER_BYTES as usize + 1];
        let answer = connection.handle(&guest_packet(op::RW, big.len() as u32, 0, 1000, 0), &big);
        assert_eq!(answer.map(|header| header.op), Some(op::RST));
        assert_eq!(connection.phase, Phase::Closed);

        let (mut connection, host_two) = pair(Phase::Established);
        connection.handle(&guest_packet(op::CREDIT_UPDATE, 0, 0, 1000, 0), &[]);
        drop(host_two);
        let (header, _) = connection.read_host(4052).unwrap();
        assert_eq!((header.op, header.flags), (op::SHUTDOWN, shutdown::SEND | shutdown::RECEIVE));
        drop(host);
    }

    #[test]
    fn a_host_that_shuts_its_writing_side_still_reads() {
        let (mut connection, host) = pair(Phase::Established);
        connection.handle(&guest_packet(op::CREDIT_UPDATE, 0, 0, 1000, 0), &[]);
        host.shutdown(std::net::Shutdown::Write).unwrap();
        let (header, _) = connection.read_host(4052).unwrap();
        assert_eq!((header.op, header.flags), (op::SHUTDOWN, shutdown::SEND), "the guest may still send");
        assert_eq!(connection.phase, Phase::Established);
        connection.handle(&guest_packet(op::RW, 6, 0, 1000, 0), b"answer");
        assert_eq!(connection.flush_to_host().unwrap(), None);
        let mut answer = [0u8; 6];
        (&host).read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"answer");
    }

    #[test]
    fn writing_a_quarter_of_the_buffer_to_the_host_tells_the_guest() {
        let (mut connection, mut host) = pair(Phase::Established);
        let chunk = vec![1u8; 4000];
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0u8; 1 << 20];
            let mut total = 0;
            while total < 68_000 {
                total += host.read(&mut sink).unwrap();
            }
            total
        });
        let mut updates = Vec::new();
        for _ in 0..17 {
            connection.handle(&guest_packet(op::RW, 4000, 0, 1000, 0), &chunk);
            while !connection.to_host.is_empty() {
                if let Some(update) = connection.flush_to_host().unwrap() {
                    updates.push(update);
                }
            }
        }
        assert_eq!(reader.join().unwrap(), 68_000);
        assert_eq!(updates.len(), 1, "68000 bytes free one quarter of 256 KiB once");
        assert_eq!(updates[0].forwarded_count, 68_000);
    }

    #[test]
    fn a_full_shutdown_from_the_guest_is_answered_with_a_reset() {
        let (mut connection, _host) = pair(Phase::Established);
        let answer = connection.handle(&guest_packet(op::SHUTDOWN, 0, shutdown::SEND, 1000, 0), &[]);
        assert!(answer.is_none());
        assert!(connection.is_guest_done_sending);
        let flags = shutdown::SEND | shutdown::RECEIVE;
        let answer = connection.handle(&guest_packet(op::SHUTDOWN, 0, flags, 1000, 0), &[]);
        assert_eq!(answer.map(|header| header.op), Some(op::RST));
    }
}
