//! A virtio socket device (vsock) on virtio-mmio whose host side speaks
//! Firecracker's hybrid protocol on Unix sockets.
//!
//! The device (virtio 1.2 §5.10) offers `VERSION_1` and gives the guest
//! the CID it was told. Its host side is a Unix socket at `uds_path`: a
//! host program connects there and writes `CONNECT <port>\n` to reach the
//! guest's vsock port, and reads `OK <host port>\n` once the guest
//! accepts; a guest that connects to the host (CID 2) on port P reaches
//! the program listening at `<uds_path>_P`. So the same host code talks to
//! Firecracker's device and to this one.
//!
//! One thread ([`VirtioVsock::start`]) does all the work: it waits (epoll)
//! on the listening socket, on every connection's stream, on the driver's
//! notifications (which the vCPU threads pass on through an eventfd) and
//! on a stop eventfd; it takes the guest's packets from the transmit
//! queue, moves bytes between streams and packets as each side's credit
//! allows ([`connection::Connection`]), and puts packets for the guest in
//! the receive queue as it offers buffers.

pub mod connection;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use connection::{Connection, Phase, parse_connect};
use rosv_virtio::spec::feature;
use rosv_virtio::vsock::{DEVICE_ID, HEADER_SIZE, Header, RECEIVE_QUEUE, TRANSMIT_QUEUE, cid, op};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::virtio_mmio::{Ram, Transport};

/// The largest queue the device takes.
const QUEUE_SIZE_MAX: u16 = 256;
/// The queues: receive, transmit, event.
const QUEUE_COUNT: usize = 3;
/// The most data the device puts in one packet for the guest.
const PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Packets for the guest held at most before the device stops reading
/// host streams; control packets are always held.
const OUTBOX_DATA_MAX: usize = 64;
/// The first port the device gives host-initiated connections, as
/// Firecracker does (2^30), far from the ports programs pick.
const FIRST_HOST_PORT: u32 = 1 << 30;
/// How long a host program may take to send its `CONNECT` line.
const CONNECT_LINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The epoll tokens of the thread's fixed descriptors; streams have
/// tokens from [`FIRST_STREAM_TOKEN`].
const TOKEN_STOP: u64 = 0;
const TOKEN_NOTIFY: u64 = 1;
const TOKEN_LISTENER: u64 = 2;
const FIRST_STREAM_TOKEN: u64 = 16;

/// The state the vCPU threads and the device's thread share.
struct Device {
    transport: Transport,
    config: [u8; 8],
}

/// One virtio socket device: the handle the MMIO exits go through.
pub struct VirtioVsock {
    device: Arc<Mutex<Device>>,
    guest_cid: u64,
    uds_path: PathBuf,
    memory: Arc<GuestMemoryMmap>,
    /// Written when the driver notifies a queue.
    notify: EventFd,
}

impl std::fmt::Debug for VirtioVsock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("VirtioVsock").field("guest_cid", &self.guest_cid).finish_non_exhaustive()
    }
}

fn lock(device: &Mutex<Device>) -> MutexGuard<'_, Device> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VirtioVsock {
    /// A device giving the guest `guest_cid`, its host side at `uds_path`,
    /// reaching the guest's `memory` and raising `interrupt`.
    pub fn new(
        guest_cid: u32,
        uds_path: &Path,
        memory: Arc<GuestMemoryMmap>,
        interrupt: EventFd,
    ) -> io::Result<Self> {
        let transport = Transport::new(DEVICE_ID, feature::VERSION_1, QUEUE_COUNT, QUEUE_SIZE_MAX, interrupt);
        let config = u64::from(guest_cid).to_le_bytes();
        Ok(VirtioVsock {
            device: Arc::new(Mutex::new(Device { transport, config })),
            guest_cid: u64::from(guest_cid),
            uds_path: uds_path.to_path_buf(),
            memory,
            notify: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    /// A read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        let device = lock(&self.device);
        device.transport.read(offset, data, &device.config);
    }

    /// A write of `data` at `offset` in the window.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut device = lock(&self.device);
        if device.transport.write(offset, data).is_some() {
            // A full counter already wakes the thread.
            let _ = self.notify.write(1);
        }
    }

    /// Listens at the Unix socket path (replacing a stale socket file) and
    /// starts the device's thread; it runs until the [`Worker`] is dropped.
    pub fn start(&self) -> io::Result<Worker> {
        match std::fs::remove_file(&self.uds_path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        let listener = UnixListener::bind(&self.uds_path)?;
        listener.set_nonblocking(true)?;
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let mut host = Host {
            device: self.device.clone(),
            memory: self.memory.clone(),
            guest_cid: self.guest_cid,
            uds_path: self.uds_path.clone(),
            listener,
            notify: self.notify.try_clone()?,
            stop: stop.try_clone()?,
            epoll: Epoll::new()?,
            connections: HashMap::new(),
            greetings: HashMap::new(),
            interests: HashMap::new(),
            outbox: VecDeque::new(),
            next_host_port: FIRST_HOST_PORT,
            next_token: FIRST_STREAM_TOKEN,
        };
        let thread = std::thread::Builder::new().name("virtio-vsock".into()).spawn(move || {
            // The thread ends on an error of the host's: the guest's
            // connections then go silent.
            let _ = host.run();
        })?;
        Ok(Worker { stop, thread: Some(thread), uds_path: self.uds_path.clone() })
    }
}

/// The device's thread; dropping it stops the thread, waits for it and
/// removes the socket file.
#[derive(Debug)]
pub struct Worker {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
    uds_path: PathBuf,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.uds_path);
    }
}

/// A host program that connected and has not finished its `CONNECT` line.
struct Greeting {
    stream: UnixStream,
    bytes: Vec<u8>,
    since: std::time::Instant,
}

/// The readiness a stream is watched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interest {
    is_reading: bool,
    is_writing: bool,
}

/// Watching a stream for nothing.
const NOTHING: Interest = Interest { is_reading: false, is_writing: false };

/// A connection's addresses: (host port, guest port).
type Key = (u32, u32);

/// What the device's thread holds.
struct Host {
    device: Arc<Mutex<Device>>,
    memory: Arc<GuestMemoryMmap>,
    guest_cid: u64,
    uds_path: PathBuf,
    listener: UnixListener,
    notify: EventFd,
    stop: EventFd,
    epoll: Epoll,
    /// Connections by key, with their streams' epoll tokens.
    connections: HashMap<u64, (Key, Connection)>,
    /// Host programs still sending their `CONNECT` line, by token.
    greetings: HashMap<u64, Greeting>,
    /// What each stream's token is watched for now.
    interests: HashMap<u64, Interest>,
    /// Packets for the guest, waiting for receive buffers.
    outbox: VecDeque<(Header, Vec<u8>)>,
    next_host_port: u32,
    next_token: u64,
}

impl Host {
    fn run(&mut self) -> io::Result<()> {
        let watch = |epoll: &Epoll, fd: RawFd, token| {
            epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, token))
        };
        watch(&self.epoll, self.stop.as_raw_fd(), TOKEN_STOP)?;
        watch(&self.epoll, self.notify.as_raw_fd(), TOKEN_NOTIFY)?;
        watch(&self.epoll, self.listener.as_raw_fd(), TOKEN_LISTENER)?;
        let mut events = vec![EpollEvent::default(); 64];
        loop {
            self.serve_guest();
            self.accept_host_connections();
            self.read_greetings();
            self.pump();
            self.deliver();
            self.update_interests()?;
            // Greetings time out, so wake at least once a second.
            let timeout_ms = if self.greetings.is_empty() { -1 } else { 1000 };
            let count = match self.epoll.wait(timeout_ms, &mut events) {
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => 0,
                Err(error) => return Err(error),
            };
            for event in &events[..count] {
                match event.data() {
                    TOKEN_STOP => return Ok(()),
                    TOKEN_NOTIFY => {
                        let _ = self.notify.read();
                    }
                    _ => {}
                }
            }
        }
    }

    fn add_stream(&mut self, fd: RawFd) -> io::Result<u64> {
        let token = self.next_token;
        self.next_token += 1;
        self.epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, token))?;
        self.interests.insert(token, Interest { is_reading: true, is_writing: false });
        Ok(token)
    }

    fn remove_stream(&mut self, token: u64, fd: RawFd) {
        if self.interests.remove(&token).is_some_and(|interest| interest != NOTHING) {
            let _ = self.epoll.ctl(ControlOperation::Delete, fd, EpollEvent::default());
        }
    }

    fn token_of(&self, key: Key) -> Option<u64> {
        self.connections.iter().find_map(|(token, (known, _))| (*known == key).then_some(*token))
    }

    /// Takes every packet the guest sent.
    fn serve_guest(&mut self) {
        let mut packets = Vec::new();
        {
            let mut device = lock(&self.device);
            if !device.transport.is_driver_ok() {
                return;
            }
            let Some(mut queue) = device.transport.take_queue(TRANSMIT_QUEUE) else {
                return;
            };
            let ram = Ram(&self.memory);
            let is_sound = loop {
                match queue.pop_available(&ram) {
                    Ok(Some(chain)) => {
                        if let Ok(bytes) = chain.read_all(&ram) {
                            packets.push(bytes);
                        }
                        if queue.push_used(&ram, chain.head, 0).is_err() {
                            break false;
                        }
                    }
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            };
            device.transport.signal_used(&mut queue, &ram);
            if is_sound {
                device.transport.return_queue(TRANSMIT_QUEUE, queue);
            }
        }
        for bytes in packets {
            self.handle_guest_packet(&bytes);
        }
    }

    fn handle_guest_packet(&mut self, bytes: &[u8]) {
        let Some(header) = Header::decode(bytes) else {
            return;
        };
        let payload = &bytes[HEADER_SIZE..];
        let payload = &payload[..(header.length as usize).min(payload.len())];
        if header.source_cid != self.guest_cid || header.destination_cid != u64::from(cid::HOST) {
            return;
        }
        let key = (header.destination_port, header.source_port);
        if let Some(token) = self.token_of(key) {
            let Some((_, connection)) = self.connections.get_mut(&token) else {
                return;
            };
            if let Some(answer) = connection.handle(&header, payload) {
                self.outbox.push_back((answer, Vec::new()));
            }
            if connection.phase == Phase::Closed && header.op == op::RST {
                self.close(token);
            }
            return;
        }
        match header.op {
            op::REQUEST => self.connect_guest(&header),
            op::RST => {}
            _ => self.outbox.push_back((header.reply(op::RST), Vec::new())),
        }
    }

    /// The guest connects to the host: the program listening at
    /// `<uds_path>_<port>` takes it, or the guest is refused.
    fn connect_guest(&mut self, header: &Header) {
        let mut path = self.uds_path.clone().into_os_string();
        path.push(format!("_{}", header.destination_port));
        let stream = UnixStream::connect(&path).and_then(|stream| {
            stream.set_nonblocking(true)?;
            Ok(stream)
        });
        let Ok(stream) = stream else {
            self.outbox.push_back((header.reply(op::RST), Vec::new()));
            return;
        };
        let Ok(token) = self.add_stream(stream.as_raw_fd()) else {
            self.outbox.push_back((header.reply(op::RST), Vec::new()));
            return;
        };
        let mut connection = Connection::new(
            self.guest_cid,
            header.source_port,
            header.destination_port,
            stream,
            Phase::Established,
        );
        connection.credit.update_from(header);
        let answer = connection.header(op::RESPONSE, 0, 0);
        self.outbox.push_back((answer, Vec::new()));
        self.connections.insert(token, ((header.destination_port, header.source_port), connection));
    }

    /// Takes the host programs waiting at the Unix socket.
    fn accept_host_connections(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if let Ok(token) = self.add_stream(stream.as_raw_fd()) {
                let greeting = Greeting { stream, bytes: Vec::new(), since: std::time::Instant::now() };
                self.greetings.insert(token, greeting);
            }
        }
    }

    /// Reads `CONNECT` lines; a whole one asks the guest for a connection.
    fn read_greetings(&mut self) {
        let tokens: Vec<u64> = self.greetings.keys().copied().collect();
        for token in tokens {
            let Some(greeting) = self.greetings.get_mut(&token) else {
                continue;
            };
            // One byte at a time: what follows the line is the program's
            // data, for the guest once it accepts.
            let mut byte = [0u8; 1];
            let outcome = loop {
                match greeting.stream.read(&mut byte) {
                    Ok(0) => break Some(Err(())),
                    Ok(_) => {
                        greeting.bytes.push(byte[0]);
                        if let Some(outcome) = parse_connect(&greeting.bytes) {
                            break Some(outcome);
                        }
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        break (greeting.since.elapsed() > CONNECT_LINE_TIMEOUT).then_some(Err(()));
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break Some(Err(())),
                }
            };
            let Some(outcome) = outcome else {
                continue;
            };
            let Some(greeting) = self.greetings.remove(&token) else {
                continue;
            };
            match outcome {
                Ok(guest_port) => {
                    let host_port = self.next_host_port;
                    self.next_host_port = self.next_host_port.checked_add(1).unwrap_or(FIRST_HOST_PORT);
                    let mut connection = Connection::new(
                        self.guest_cid,
                        guest_port,
                        host_port,
                        greeting.stream,
                        Phase::Connecting,
                    );
                    let request = connection.header(op::REQUEST, 0, 0);
                    self.outbox.push_back((request, Vec::new()));
                    self.connections.insert(token, ((host_port, guest_port), connection));
                }
                Err(()) => self.remove_stream(token, greeting.stream.as_raw_fd()),
            }
        }
    }

    /// Moves bytes between the streams and the guest's packets.
    fn pump(&mut self) {
        let tokens: Vec<u64> = self.connections.keys().copied().collect();
        for token in tokens {
            let Some((_, connection)) = self.connections.get_mut(&token) else {
                continue;
            };
            let mut is_over = false;
            match connection.flush_to_host() {
                Ok(Some(update)) => self.outbox.push_back((update, Vec::new())),
                Ok(None) => {}
                Err(_) => {
                    connection.phase = Phase::Closed;
                    let reset = connection.header(op::RST, 0, 0);
                    self.outbox.push_back((reset, Vec::new()));
                    is_over = true;
                }
            }
            while !is_over && self.outbox.len() < OUTBOX_DATA_MAX {
                match connection.read_host(PAYLOAD_BYTES_MAX) {
                    Some((header, data)) => {
                        is_over |= header.op == op::RST;
                        self.outbox.push_back((header, data));
                    }
                    None => break,
                }
            }
            // A connection the guest ended goes once its bytes are out.
            if connection.phase == Phase::Closed && connection.to_host.is_empty() {
                is_over = true;
            }
            if is_over {
                self.close(token);
            }
        }
        let expired: Vec<u64> = self
            .greetings
            .iter()
            .filter(|(_, greeting)| greeting.since.elapsed() > CONNECT_LINE_TIMEOUT)
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            if let Some(greeting) = self.greetings.remove(&token) {
                self.remove_stream(token, greeting.stream.as_raw_fd());
            }
        }
    }

    fn close(&mut self, token: u64) {
        if let Some((_, connection)) = self.connections.remove(&token) {
            self.remove_stream(token, connection.stream.as_raw_fd());
        }
    }

    /// Puts packets for the guest into its receive buffers, as many as it
    /// offered; data larger than a buffer goes on in the next ones.
    fn deliver(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let mut device = lock(&self.device);
        if !device.transport.is_driver_ok() {
            return;
        }
        let Some(mut queue) = device.transport.take_queue(RECEIVE_QUEUE) else {
            return;
        };
        let ram = Ram(&self.memory);
        let mut is_sound = true;
        let mut has_delivered = false;
        while let Some((header, data)) = self.outbox.pop_front() {
            let chain = match queue.pop_available(&ram) {
                Ok(Some(chain)) => chain,
                Ok(None) => {
                    self.outbox.push_front((header, data));
                    break;
                }
                Err(_) => {
                    is_sound = false;
                    break;
                }
            };
            let room = (chain.writable_bytes() as usize).saturating_sub(HEADER_SIZE);
            let (header, data) = if data.len() > room {
                // Split the data over as many buffers as it takes.
                let rest = data[room..].to_vec();
                let mut rest_header = header;
                rest_header.length = rest.len() as u32;
                self.outbox.push_front((rest_header, rest));
                let mut first = header;
                first.length = room as u32;
                (first, data[..room].to_vec())
            } else {
                (header, data)
            };
            let mut bytes = header.encode().to_vec();
            bytes.extend_from_slice(&data);
            let written = chain.write_all(&ram, &bytes).unwrap_or(0);
            if queue.push_used(&ram, chain.head, written).is_err() {
                is_sound = false;
                break;
            }
            has_delivered = true;
        }
        if has_delivered || !is_sound {
            device.transport.signal_used(&mut queue, &ram);
        }
        if is_sound {
            device.transport.return_queue(RECEIVE_QUEUE, queue);
        }
    }

    /// Watches each stream for what its connection can do now: reading
    /// while the guest has room, writing while bytes wait for the program.
    fn update_interests(&mut self) -> io::Result<()> {
        let outbox_has_room = self.outbox.len() < OUTBOX_DATA_MAX;
        let wanted: Vec<(u64, RawFd, Interest)> = self
            .connections
            .iter()
            .map(|(token, (_, connection))| {
                let interest = Interest {
                    is_reading: outbox_has_room && connection.may_read_host(),
                    is_writing: !connection.to_host.is_empty(),
                };
                (*token, connection.stream.as_raw_fd(), interest)
            })
            .collect();
        for (token, fd, interest) in wanted {
            let known = self.interests.get(&token).copied();
            if known == Some(interest) {
                continue;
            }
            let mut events = EventSet::empty();
            if interest.is_reading {
                events |= EventSet::IN;
            }
            if interest.is_writing {
                events |= EventSet::OUT;
            }
            // A stream watched for nothing leaves the epoll set: a closed
            // one would report a hang-up at every wait otherwise.
            let is_watched =
                |interest: Option<Interest>| interest.is_some_and(|interest| interest != NOTHING);
            let operation = match (is_watched(known), interest != NOTHING) {
                (true, true) => ControlOperation::Modify,
                (false, true) => ControlOperation::Add,
                (true, false) => ControlOperation::Delete,
                (false, false) => {
                    self.interests.insert(token, interest);
                    continue;
                }
            };
            self.epoll.ctl(operation, fd, EpollEvent::new(events, token))?;
            self.interests.insert(token, interest);
        }
        Ok(())
    }
}
