//! A virtio network card on virtio-mmio, its frames on a host tap device.
//!
//! The device (virtio 1.2 §5.1) offers `VERSION_1` and `MAC` alone: no
//! offloads, no merged receive buffers, no control queue. Queue 0 receives
//! and queue 1 transmits; every frame in either is preceded by the 12-byte
//! `virtio_net_hdr`. The [`Backend`] (a [`Tap`](crate::host::tap::Tap), or a
//! socket in tests) carries bare Ethernet frames, so the device strips the
//! header from what the driver sends and puts a header without offloads in
//! front of what it receives.
//!
//! Transmission happens on the vCPU thread that notifies queue 1. Reception
//! has its own thread ([`VirtioNet::start_receiving`]), woken by the
//! backend, by the driver notifying queue 0 (new buffers), or by the
//! monitor stopping it. A frame that finds no receive buffer waits, alone,
//! for the driver to add some; the next ones wait in the host's tap queue
//! meanwhile, and the host drops what overflows it. Frames that arrive
//! before the driver is ready, or that do not fit a buffer, are dropped and
//! counted.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rosv_virtio::device::{Chain, DeviceQueue};
use rosv_virtio::net::{HEADER_SIZE, Header, RECEIVE_QUEUE, TRANSMIT_QUEUE, feature as net_feature};
use rosv_virtio::spec::feature;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::virtio_mmio::{Ram, Transport};

/// Device type 1: network card (virtio 1.2 §5).
const DEVICE_ID_NET: u32 = 1;
/// The largest queue the device takes.
const QUEUE_SIZE_MAX: u16 = 256;
/// What the device offers.
const DEVICE_FEATURES: u64 = feature::VERSION_1 | net_feature::MAC;
/// The largest frame taken from either side: an IPv4 packet of 64 KiB and
/// its Ethernet header, more than any host MTU gives a tap device.
pub const FRAME_BYTES_MAX: usize = 65_536 + 14;

/// Where the card's frames go to and come from.
pub trait Backend: AsRawFd + Send + Sync {
    /// Sends one Ethernet frame.
    fn send(&self, frame: &[u8]) -> io::Result<()>;
    /// Takes one waiting frame into `buffer` and returns its length;
    /// `WouldBlock` when none waits. Never blocks.
    fn receive(&self, buffer: &mut [u8]) -> io::Result<usize>;
}

/// Frames the card could not pass on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Received frames dropped: the driver was not ready, or the frame did
    /// not fit the buffer.
    pub receive_dropped: u64,
    /// Transmitted frames dropped: malformed, too large, or refused by the
    /// backend.
    pub transmit_dropped: u64,
}

/// What became of a received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// It is in a receive buffer.
    Delivered,
    /// The driver has no receive buffer available: try again later.
    NoBuffer,
    /// It was dropped (and counted).
    Dropped,
}

/// The state the vCPU threads and the receiving thread share.
struct Card {
    transport: Transport,
    mac_address: [u8; 6],
    memory: Arc<GuestMemoryMmap>,
    backend: Arc<dyn Backend>,
    counters: Counters,
}

/// One virtio network card: the handle the MMIO exits go through.
pub struct VirtioNet {
    card: Arc<Mutex<Card>>,
    backend: Arc<dyn Backend>,
    /// Written when the driver adds receive buffers.
    receive_wakeup: EventFd,
}

impl std::fmt::Debug for VirtioNet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("VirtioNet").finish_non_exhaustive()
    }
}

impl VirtioNet {
    /// A card with `mac_address` whose frames go over `backend`, reaching
    /// the guest's `memory` and raising `interrupt`.
    pub fn new(
        mac_address: [u8; 6],
        memory: Arc<GuestMemoryMmap>,
        interrupt: EventFd,
        backend: Arc<dyn Backend>,
    ) -> io::Result<Self> {
        let transport = Transport::new(DEVICE_ID_NET, DEVICE_FEATURES, 2, QUEUE_SIZE_MAX, interrupt);
        let card =
            Card { transport, mac_address, memory, backend: backend.clone(), counters: Counters::default() };
        Ok(VirtioNet {
            card: Arc::new(Mutex::new(card)),
            backend,
            receive_wakeup: EventFd::new(EFD_NONBLOCK)?,
        })
    }

    fn card(&self) -> MutexGuard<'_, Card> {
        lock(&self.card)
    }

    /// What the card dropped so far.
    pub fn counters(&self) -> Counters {
        self.card().counters
    }

    /// A read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        let card = self.card();
        // The configuration space starts with the MAC address (§5.1.4).
        card.transport.read(offset, data, &card.mac_address);
    }

    /// A write of `data` at `offset` in the window.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut card = self.card();
        match card.transport.write(offset, data) {
            Some(TRANSMIT_QUEUE) => card.transmit(),
            Some(RECEIVE_QUEUE) => {
                // A full counter already wakes the thread.
                let _ = self.receive_wakeup.write(1);
            }
            _ => {}
        }
    }

    /// Starts the thread that moves frames from the backend into the
    /// driver's receive buffers; it runs until the [`Receiver`] is dropped.
    pub fn start_receiving(&self) -> io::Result<Receiver> {
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let worker = ReceiveWorker {
            card: self.card.clone(),
            backend: self.backend.clone(),
            wakeup: self.receive_wakeup.try_clone()?,
            stop: stop.try_clone()?,
        };
        let thread = std::thread::Builder::new().name("virtio-net-rx".into()).spawn(move || worker.run())?;
        Ok(Receiver { stop, thread: Some(thread) })
    }

    /// Moves one frame into the next receive buffer, as the receiving
    /// thread does.
    #[cfg(test)]
    fn deliver(&self, frame: &[u8]) -> Delivery {
        self.card().deliver(frame)
    }
}

/// Locks the card; a vCPU thread that panicked holding it left the card in
/// the state of some whole access, still usable.
fn lock(card: &Mutex<Card>) -> MutexGuard<'_, Card> {
    card.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Card {
    /// Sends every frame the driver made available on queue 1.
    fn transmit(&mut self) {
        if !self.transport.is_driver_ok() {
            return;
        }
        let Some(mut queue) = self.transport.take_queue(TRANSMIT_QUEUE) else {
            return;
        };
        let memory = self.memory.clone();
        let ram = Ram(&memory);
        let is_sound = loop {
            match queue.pop_available(&ram) {
                Ok(Some(chain)) => {
                    if self.send(&ram, &chain).is_none() {
                        self.counters.transmit_dropped += 1;
                    }
                    // The device writes nothing into transmit buffers.
                    if queue.push_used(&ram, chain.head, 0).is_err() {
                        break false;
                    }
                }
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        self.finish(TRANSMIT_QUEUE, queue, &ram, is_sound);
    }

    /// Sends the frame after the header in `chain`; `None` if it was not
    /// sent.
    fn send(&self, ram: &Ram<'_>, chain: &Chain) -> Option<()> {
        let readable: u64 = chain
            .segments
            .iter()
            .filter(|segment| !segment.is_writable)
            .map(|segment| u64::from(segment.length))
            .sum();
        if readable <= HEADER_SIZE as u64 || readable > (HEADER_SIZE + FRAME_BYTES_MAX) as u64 {
            return None;
        }
        let bytes = chain.read_all(ram).ok()?;
        self.backend.send(&bytes[HEADER_SIZE..]).ok()
    }

    /// Puts `frame` into the next receive buffer and interrupts the driver
    /// if it wants to be.
    fn deliver(&mut self, frame: &[u8]) -> Delivery {
        let queue = self.transport.is_driver_ok().then(|| self.transport.take_queue(RECEIVE_QUEUE));
        let Some(Some(mut queue)) = queue else {
            self.counters.receive_dropped += 1;
            return Delivery::Dropped;
        };
        let memory = self.memory.clone();
        let ram = Ram(&memory);
        let chain = match queue.pop_available(&ram) {
            Ok(Some(chain)) => chain,
            Ok(None) => {
                self.transport.return_queue(RECEIVE_QUEUE, queue);
                return Delivery::NoBuffer;
            }
            Err(_) => {
                self.counters.receive_dropped += 1;
                return Delivery::Dropped;
            }
        };
        // Without merged buffers a frame takes one chain, which the header
        // counts (`num_buffers`, §5.1.6.4).
        let header = Header { buffer_count: 1, ..Header::NO_OFFLOAD };
        let mut bytes = Vec::with_capacity(HEADER_SIZE + frame.len());
        bytes.extend_from_slice(&header.encode());
        bytes.extend_from_slice(frame);
        let written = if chain.writable_bytes() >= bytes.len() as u64 {
            chain.write_all(&ram, &bytes).ok()
        } else {
            None
        };
        // A frame that did not fit leaves the buffer empty (written 0),
        // which the driver offers again.
        let delivery = if written.is_some() { Delivery::Delivered } else { Delivery::Dropped };
        if delivery == Delivery::Dropped {
            self.counters.receive_dropped += 1;
        }
        let is_sound = queue.push_used(&ram, chain.head, written.unwrap_or(0)).is_ok();
        self.finish(RECEIVE_QUEUE, queue, &ram, is_sound);
        delivery
    }

    /// Interrupts the driver about used buffers and gives `queue` back,
    /// unless the driver broke it.
    fn finish(&mut self, index: u16, mut queue: DeviceQueue, ram: &Ram<'_>, is_sound: bool) {
        self.transport.signal_used(&mut queue, ram);
        if is_sound {
            self.transport.return_queue(index, queue);
        }
    }
}

/// The receiving thread; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub struct Receiver {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // The thread sees the counter at its next wait, at the latest.
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the receiving thread holds.
struct ReceiveWorker {
    card: Arc<Mutex<Card>>,
    backend: Arc<dyn Backend>,
    wakeup: EventFd,
    stop: EventFd,
}

/// The epoll tokens of the receiving thread's descriptors.
const TOKEN_STOP: u64 = 0;
const TOKEN_WAKEUP: u64 = 1;
const TOKEN_BACKEND: u64 = 2;

impl ReceiveWorker {
    fn run(self) {
        // The thread ends on an error of the host's: the card then receives
        // nothing more, and the guest sees a silent network.
        let _ = self.receive_until_stopped();
    }

    fn receive_until_stopped(&self) -> io::Result<()> {
        let epoll = Epoll::new()?;
        let watch =
            |operation, fd: RawFd, events, token| epoll.ctl(operation, fd, EpollEvent::new(events, token));
        watch(ControlOperation::Add, self.stop.as_raw_fd(), EventSet::IN, TOKEN_STOP)?;
        watch(ControlOperation::Add, self.wakeup.as_raw_fd(), EventSet::IN, TOKEN_WAKEUP)?;
        watch(ControlOperation::Add, self.backend.as_raw_fd(), EventSet::IN, TOKEN_BACKEND)?;
        let mut frame = vec![0u8; FRAME_BYTES_MAX];
        // The length of the frame in `frame` that waits for a buffer.
        let mut held: Option<usize> = None;
        let mut events = [EpollEvent::default(); 3];
        loop {
            while let Some(length) =
                held.take().map_or_else(|| self.next_frame(&mut frame), |length| Ok(Some(length)))?
            {
                if lock(&self.card).deliver(&frame[..length]) == Delivery::NoBuffer {
                    held = Some(length);
                    break;
                }
            }
            // While a frame waits for a buffer, the backend's readiness
            // would only spin the loop: wait for the driver instead.
            let backend_events = if held.is_some() { EventSet::empty() } else { EventSet::IN };
            watch(ControlOperation::Modify, self.backend.as_raw_fd(), backend_events, TOKEN_BACKEND)?;
            let count = match epoll.wait(-1, &mut events) {
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            for event in &events[..count] {
                match event.data() {
                    TOKEN_STOP => return Ok(()),
                    TOKEN_WAKEUP => {
                        let _ = self.wakeup.read();
                    }
                    _ => {}
                }
            }
        }
    }

    /// The length of the next frame from the backend, read into `frame`;
    /// `None` when none waits.
    fn next_frame(&self, frame: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match self.backend.receive(frame) {
                Ok(length) => return Ok(Some(length)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio_mmio::register;
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    use vm_memory::{Bytes, GuestAddress};

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const QUEUE_SIZE: u16 = 8;
    /// Each queue's descriptor table, driver area and device area.
    const QUEUES: [(u64, u64, u64); 2] = [(0x1000, 0x2000, 0x3000), (0x4000, 0x5000, 0x6000)];
    const BUFFERS: u64 = 0x1_0000;

    impl Backend for UnixDatagram {
        fn send(&self, frame: &[u8]) -> io::Result<()> {
            UnixDatagram::send(self, frame).map(|_| ())
        }

        fn receive(&self, buffer: &mut [u8]) -> io::Result<usize> {
            self.recv(buffer)
        }
    }

    struct Fixture {
        device: VirtioNet,
        memory: Arc<GuestMemoryMmap>,
        interrupt: EventFd,
        /// The host's end of the link.
        host: UnixDatagram,
    }

    fn fixture() -> Fixture {
        let memory = Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap());
        let interrupt = EventFd::new(EFD_NONBLOCK).unwrap();
        let (guest_side, host) = UnixDatagram::pair().unwrap();
        guest_side.set_nonblocking(true).unwrap();
        host.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let device =
            VirtioNet::new(MAC, memory.clone(), interrupt.try_clone().unwrap(), Arc::new(guest_side))
                .unwrap();
        Fixture { device, memory, interrupt, host }
    }

    fn read32(device: &mut VirtioNet, offset: u64) -> u32 {
        let mut bytes = [0u8; 4];
        device.read(offset, &mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn write32(device: &mut VirtioNet, offset: u64, value: u32) {
        device.write(offset, &value.to_le_bytes());
    }

    /// Negotiates `VERSION_1` and `MAC` and sets up both queues, as the
    /// kernel's driver does.
    fn set_up(device: &mut VirtioNet) {
        write32(device, register::STATUS, 0);
        write32(device, register::STATUS, 3);
        write32(device, register::DRIVER_FEATURES_SELECT, 1);
        write32(device, register::DRIVER_FEATURES, 1);
        write32(device, register::DRIVER_FEATURES_SELECT, 0);
        write32(device, register::DRIVER_FEATURES, net_feature::MAC as u32);
        write32(device, register::STATUS, 3 | 8);
        assert_eq!(read32(device, register::STATUS), 3 | 8, "FEATURES_OK stays");
        for (index, (descriptors, driver_area, device_area)) in QUEUES.into_iter().enumerate() {
            write32(device, register::QUEUE_SELECT, index as u32);
            write32(device, register::QUEUE_SIZE, u32::from(QUEUE_SIZE));
            write32(device, register::QUEUE_DESCRIPTOR_LOW, descriptors as u32);
            write32(device, register::QUEUE_DRIVER_LOW, driver_area as u32);
            write32(device, register::QUEUE_DEVICE_LOW, device_area as u32);
            write32(device, register::QUEUE_READY, 1);
        }
        write32(device, register::STATUS, 3 | 8 | 4);
    }

    /// Makes the chain of `buffers` (address, length, is_writable)
    /// available on `queue`, its descriptors from `first` on.
    fn offer(fixture: &Fixture, queue: u16, first: u16, buffers: &[(u64, u32, bool)]) {
        let (descriptors, driver_area, _) = QUEUES[usize::from(queue)];
        for (position, &(address, length, is_writable)) in buffers.iter().enumerate() {
            let index = first + position as u16;
            let is_last = position + 1 == buffers.len();
            let flags = u16::from(!is_last) | (u16::from(is_writable) << 1);
            let mut bytes = [0u8; 16];
            bytes[0..8].copy_from_slice(&address.to_le_bytes());
            bytes[8..12].copy_from_slice(&length.to_le_bytes());
            bytes[12..14].copy_from_slice(&flags.to_le_bytes());
            bytes[14..16].copy_from_slice(&(index + 1).to_le_bytes());
            fixture.memory.write_slice(&bytes, GuestAddress(descriptors + 16 * u64::from(index))).unwrap();
        }
        let available: u16 = fixture.memory.read_obj(GuestAddress(driver_area + 2)).unwrap();
        let slot = driver_area + 4 + 2 * u64::from(available % QUEUE_SIZE);
        fixture.memory.write_obj(first, GuestAddress(slot)).unwrap();
        fixture.memory.write_obj(available + 1, GuestAddress(driver_area + 2)).unwrap();
    }

    /// The used ring's index and its first entry's length.
    fn used(fixture: &Fixture, queue: u16) -> (u16, u32) {
        let (_, _, device_area) = QUEUES[usize::from(queue)];
        let index: u16 = fixture.memory.read_obj(GuestAddress(device_area + 2)).unwrap();
        let length: u32 = fixture.memory.read_obj(GuestAddress(device_area + 8)).unwrap();
        (index, length)
    }

    fn frame(length: usize) -> Vec<u8> {
        (0..length).map(|index| index as u8).collect()
    }

    #[test]
    fn offers_version_1_and_the_mac_address_only() {
        let mut fixture = fixture();
        let device = &mut fixture.device;
        assert_eq!(read32(device, register::DEVICE_ID), 1);
        assert_eq!(read32(device, register::VERSION), 2);
        assert_eq!(read32(device, register::DEVICE_FEATURES), 1 << 5, "MAC");
        write32(device, register::DEVICE_FEATURES_SELECT, 1);
        assert_eq!(read32(device, register::DEVICE_FEATURES), 1, "VERSION_1");
        let mut config = [0xffu8; 8];
        device.read(register::CONFIG, &mut config);
        assert_eq!(config, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0, 0]);
        for (queue, size_max) in [(0, 256), (1, 256), (2, 0)] {
            write32(device, register::QUEUE_SELECT, queue);
            assert_eq!(read32(device, register::QUEUE_SIZE_MAX), size_max, "queue {queue}");
        }
        write32(device, register::DRIVER_FEATURES, 1 << 16); // STATUS, not offered
        write32(device, register::STATUS, 3 | 8);
        assert_eq!(read32(device, register::STATUS) & 8, 0);
    }

    #[test]
    fn a_transmitted_frame_reaches_the_backend_without_its_header() {
        let mut fixture = fixture();
        set_up(&mut fixture.device);
        let sent = frame(60);
        fixture.memory.write_slice(&[0xaa; HEADER_SIZE], GuestAddress(BUFFERS)).unwrap();
        fixture.memory.write_slice(&sent, GuestAddress(BUFFERS + 0x1000)).unwrap();
        // The header and the frame in separate buffers: any layout goes.
        offer(&fixture, TRANSMIT_QUEUE, 0, &[(BUFFERS, 12, false), (BUFFERS + 0x1000, 60, false)]);
        write32(&mut fixture.device, register::QUEUE_NOTIFY, 1);
        let mut received = [0u8; 100];
        let length = fixture.host.recv(&mut received).unwrap();
        assert_eq!(&received[..length], &sent[..]);
        assert_eq!(used(&fixture, TRANSMIT_QUEUE), (1, 0));
        assert_eq!(fixture.interrupt.read().unwrap(), 1);
        assert_eq!(read32(&mut fixture.device, register::INTERRUPT_STATUS), 1);

        // A chain holding nothing but part of a header is dropped.
        offer(&fixture, TRANSMIT_QUEUE, 2, &[(BUFFERS, 10, false)]);
        write32(&mut fixture.device, register::QUEUE_NOTIFY, 1);
        assert_eq!(used(&fixture, TRANSMIT_QUEUE).0, 2);
        assert_eq!(fixture.device.counters().transmit_dropped, 1);
    }

    #[test]
    fn a_received_frame_follows_a_header_without_offloads() {
        let mut fixture = fixture();
        set_up(&mut fixture.device);
        offer(&fixture, RECEIVE_QUEUE, 0, &[(BUFFERS, 12 + 1514, true)]);
        let arrived = frame(98);
        assert_eq!(fixture.device.deliver(&arrived), Delivery::Delivered);
        let mut bytes = [0u8; 12 + 98];
        fixture.memory.read_slice(&mut bytes, GuestAddress(BUFFERS)).unwrap();
        // Everything zero but `num_buffers`, which is 1.
        assert_eq!(bytes[..12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(&bytes[12..], &arrived[..]);
        assert_eq!(used(&fixture, RECEIVE_QUEUE), (1, 12 + 98));
        assert_eq!(fixture.interrupt.read().unwrap(), 1);
        assert_eq!(fixture.device.counters(), Counters::default());
    }

    #[test]
    fn frames_without_a_ready_driver_or_a_large_enough_buffer_are_dropped() {
        let mut fixture = fixture();
        assert_eq!(fixture.device.deliver(&frame(60)), Delivery::Dropped, "before DRIVER_OK");
        set_up(&mut fixture.device);
        assert_eq!(fixture.device.deliver(&frame(60)), Delivery::NoBuffer);
        offer(&fixture, RECEIVE_QUEUE, 0, &[(BUFFERS, 12 + 50, true)]);
        assert_eq!(fixture.device.deliver(&frame(60)), Delivery::Dropped, "too large");
        assert_eq!(used(&fixture, RECEIVE_QUEUE), (1, 0), "the buffer comes back empty");
        assert_eq!(fixture.device.counters().receive_dropped, 2);
    }

    /// Waits for the used index of `queue` to reach `index`.
    fn wait_for_used(fixture: &Fixture, queue: u16, index: u16) {
        let start = Instant::now();
        while used(fixture, queue).0 != index {
            assert!(start.elapsed() < Duration::from_secs(5), "no used buffer {index}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_receiving_thread_holds_a_frame_until_the_driver_adds_a_buffer() {
        let mut fixture = fixture();
        set_up(&mut fixture.device);
        let receiver = fixture.device.start_receiving().unwrap();
        offer(&fixture, RECEIVE_QUEUE, 0, &[(BUFFERS, 12 + 1514, true)]);
        fixture.host.send(&frame(64)).unwrap();
        wait_for_used(&fixture, RECEIVE_QUEUE, 1);
        assert_eq!(used(&fixture, RECEIVE_QUEUE).1, 12 + 64);

        fixture.host.send(&frame(70)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(used(&fixture, RECEIVE_QUEUE).0, 1, "no buffer yet");
        offer(&fixture, RECEIVE_QUEUE, 1, &[(BUFFERS + 0x1000, 12 + 1514, true)]);
        write32(&mut fixture.device, register::QUEUE_NOTIFY, 0);
        wait_for_used(&fixture, RECEIVE_QUEUE, 2);
        let mut bytes = [0u8; 70];
        fixture.memory.read_slice(&mut bytes, GuestAddress(BUFFERS + 0x1000 + 12)).unwrap();
        assert_eq!(&bytes[..], &frame(70)[..]);
        assert_eq!(fixture.device.counters(), Counters::default());
        drop(receiver);
    }
}
