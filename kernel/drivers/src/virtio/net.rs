//! The virtio network device driver (virtio 1.2 §5.1).
//!
//! [`VirtioNet`] drives the first receive queue and the first transmit
//! queue without offloads: the network stack computes checksums and hands
//! over whole Ethernet frames of at most MTU + 14 bytes. Each queue owns
//! one DMA region cut into equal buffers, each a `virtio_net_hdr` followed
//! by room for one frame. Receive buffers are all offered at start and
//! offered again as soon as a frame has been copied out of one; transmit
//! buffers wait on a list and return to it once the device has sent them,
//! which every transmission checks first. Frames queued for transmission
//! reach the device with one notification per batch ([`VirtioNet::flush`]),
//! and the transmit queue asks for no interrupts unless it is full.
//!
//! Nothing here sleeps or waits for the device. The kernel's network
//! thread polls [`VirtioNet::receive`] and [`VirtioNet::transmit`]; the
//! interrupt handler only acknowledges the device and wakes that thread.
//! A device that breaks the virtqueue protocol loses the queue it broke:
//! the error is logged once, and the queue delivers no more frames
//! (receive) or refuses them (transmit).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use rosv_virtio::net::{Header, RECEIVE_QUEUE, TRANSMIT_QUEUE, config, feature, header_size, status};
use rosv_virtio::spec::feature::{ANY_LAYOUT, INDIRECT_DESC};
use rosv_virtio::{Buffer, QueueError, SharedMemory, SplitQueue};

use super::queue::set_up_queue;
use super::{DeviceError, Transport, fail, finish_initialization, initialize};
use crate::hardware::{DmaRegion, Hardware};

/// Bytes of an Ethernet header (two addresses and the type), which the
/// MTU does not count.
const ETHERNET_HEADER_SIZE: usize = 14;
/// The MTU of a device that reports none: Ethernet's.
const DEFAULT_MTU: usize = 1500;
/// The smallest MTU a device may report (§5.1.4.1).
const MIN_MTU: usize = 68;
/// Buffers per queue, at most.
const MAX_BUFFER_COUNT: usize = 128;
/// DMA memory for one queue's buffers, at most: with a large MTU, fewer
/// buffers. Either way this leaves well over 64 KiB of receive buffers, which
/// Firecracker wants offered before it takes a frame from its tap.
const MAX_BUFFER_MEMORY: usize = 256 * 1024;
/// Buffers start on this boundary (a cache line).
const BUFFER_ALIGNMENT: usize = 64;

/// How frames sit in the buffers of both queues.
#[derive(Debug, Clone, Copy)]
struct Framing {
    /// Bytes of the `virtio_net_hdr` in front of each frame.
    header_size: usize,
    /// Whether the header takes a descriptor of its own: legacy devices
    /// without `ANY_LAYOUT` expect that (§5.1.6, legacy interface notes).
    is_header_separate: bool,
    /// Bytes of the longest frame a buffer holds.
    frame_capacity: usize,
    /// Bytes from the start of one buffer to the next.
    stride: usize,
}

impl Framing {
    fn new(header_size: usize, is_header_separate: bool, mtu: usize) -> Self {
        // Even below the standard MTU a buffer holds a standard frame:
        // Firecracker, for one, refuses receive buffers shorter than that
        // when mergeable receive buffers are not negotiated.
        let frame_capacity = mtu.max(DEFAULT_MTU) + ETHERNET_HEADER_SIZE;
        let stride = (header_size + frame_capacity).next_multiple_of(BUFFER_ALIGNMENT);
        Framing { header_size, is_header_separate, frame_capacity, stride }
    }

    /// Bytes a receive buffer offers the device: a header and a frame.
    fn receive_length(&self) -> usize {
        self.header_size + self.frame_capacity
    }
}

/// One queue and the buffers it carries.
struct BufferQueue {
    index: u16,
    queue: SplitQueue<Box<dyn DmaRegion>>,
    buffers: Box<dyn DmaRegion>,
    framing: Framing,
    /// The buffer each token in flight carries.
    buffer_of_token: Vec<Option<u16>>,
    /// Buffers the device does not hold.
    idle: Vec<u16>,
    is_broken: bool,
    /// Whether interrupts were asked for because no buffer was idle.
    is_waiting_for_room: bool,
}

impl BufferQueue {
    /// Sets up queue `index` with as many buffers as it can hold, within
    /// [`MAX_BUFFER_COUNT`] and [`MAX_BUFFER_MEMORY`]; all of them idle.
    fn new(
        transport: &Arc<dyn Transport>,
        index: u16,
        features: u64,
        hardware: &dyn Hardware,
        framing: Framing,
    ) -> Result<Self, DeviceError> {
        // Without indirect descriptors, a separate header costs a second
        // ring descriptor.
        let descriptors_per_buffer =
            if framing.is_header_separate && features & INDIRECT_DESC == 0 { 2 } else { 1 };
        let max_size = (MAX_BUFFER_COUNT * descriptors_per_buffer) as u16;
        let queue = set_up_queue(transport, index, features, hardware, max_size)?;
        let size = usize::from(queue.layout().size);
        let count =
            (size / descriptors_per_buffer).min(MAX_BUFFER_COUNT).min(MAX_BUFFER_MEMORY / framing.stride);
        if count == 0 {
            return Err(DeviceError::NoQueue(index));
        }
        let buffers = hardware.allocate_dma(count * framing.stride).ok_or(DeviceError::OutOfMemory)?;
        Ok(BufferQueue {
            index,
            queue,
            buffers,
            framing,
            buffer_of_token: vec![None; size],
            idle: (0..count as u16).rev().collect(),
            is_broken: false,
            is_waiting_for_room: false,
        })
    }

    /// Where buffer `buffer` starts in the region.
    fn offset(&self, buffer: u16) -> usize {
        usize::from(buffer) * self.framing.stride
    }

    /// Offers the first `length` bytes of `buffer` (header included) to
    /// the device. Should that fail, the buffer stays idle.
    fn offer(&mut self, buffer: u16, length: usize, is_device_writable: bool) -> Result<(), DeviceError> {
        let address = self.buffers.physical_address() + self.offset(buffer) as u64;
        let whole = Buffer { address, length: length as u32, is_device_writable };
        let added = if self.framing.is_header_separate {
            let header_size = self.framing.header_size;
            let header = Buffer { length: header_size as u32, ..whole };
            let frame = Buffer {
                address: address + header_size as u64,
                length: (length - header_size) as u32,
                is_device_writable,
            };
            self.queue.add(&[header, frame])
        } else {
            self.queue.add(&[whole])
        };
        match added {
            Ok(token) => {
                self.buffer_of_token[usize::from(token)] = Some(buffer);
                Ok(())
            }
            Err(error) => {
                // Not expected: every buffer the device holds keeps its own
                // descriptors, and there are enough for all of them.
                log::error!("virtio-net: queue {}: {error}", self.index);
                self.idle.push(buffer);
                Err(DeviceError::Broken)
            }
        }
    }

    /// Tells the device about the buffers offered since the last call, if
    /// it asks for that; returns whether it did.
    fn notify(&mut self, transport: &dyn Transport) -> bool {
        let should = self.queue.should_notify();
        if should {
            transport.notify(self.index);
        }
        should
    }

    /// Whether the device has returned buffers not yet taken.
    fn has_used(&self) -> bool {
        !self.is_broken && self.queue.has_used()
    }

    /// The next buffer the device has finished with, and the bytes it
    /// wrote there (no more than it was offered, which the queue checks).
    fn take_used(&mut self) -> Option<(u16, usize)> {
        if self.is_broken {
            return None;
        }
        let used = match self.queue.pop_used() {
            Ok(used) => used?,
            Err(error) => {
                self.abandon(error);
                return None;
            }
        };
        match self.buffer_of_token[usize::from(used.token)].take() {
            Some(buffer) => Some((buffer, used.written_bytes as usize)),
            None => {
                self.abandon(QueueError::UnknownUsedToken(u32::from(used.token)));
                None
            }
        }
    }

    /// Puts the buffers the device has finished with on the idle list;
    /// once some are idle, interrupts asked for by
    /// [`BufferQueue::ask_for_room`] are no longer wanted.
    fn reclaim(&mut self) {
        let mut has_reclaimed = false;
        while let Some((buffer, _)) = self.take_used() {
            self.idle.push(buffer);
            has_reclaimed = true;
        }
        if has_reclaimed && self.is_waiting_for_room {
            self.is_waiting_for_room = false;
            let _ = self.queue.set_interrupts(false);
        }
    }

    /// Asks for an interrupt when the device next finishes with a buffer
    /// of this (transmit) queue, which has none idle; collects at once the
    /// buffers it finished with before the request could be seen.
    fn ask_for_room(&mut self) {
        if !self.is_waiting_for_room {
            self.is_waiting_for_room = true;
            if self.queue.set_interrupts(true) {
                self.reclaim();
            }
        }
    }

    /// Stops using the queue after the device broke the protocol: the used
    /// element it wrote stays in the ring, so nothing after it can be
    /// trusted either.
    fn abandon(&mut self, error: QueueError) {
        log::error!("virtio-net: queue {}: {error}; the queue is abandoned", self.index);
        self.is_broken = true;
    }
}

/// What a card has done since it started, for finding where the time of
/// a network exchange goes: each notification is an exit to the
/// hypervisor, each interrupt a wakeup of the network thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CardActivity {
    /// Interrupts taken.
    pub interrupts: u64,
    /// Frames received.
    pub received_frames: u64,
    /// Frames handed to the device.
    pub sent_frames: u64,
    /// Notifications of the receive queue (new buffers).
    pub receive_notifications: u64,
    /// Notifications of the transmit queue (new frames).
    pub transmit_notifications: u64,
}

/// [`CardActivity`] as it is counted.
#[derive(Debug, Default)]
struct ActivityCounters {
    interrupts: AtomicU64,
    received_frames: AtomicU64,
    sent_frames: AtomicU64,
    receive_notifications: AtomicU64,
    transmit_notifications: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A virtio network card.
pub struct VirtioNet {
    transport: Arc<dyn Transport>,
    mac_address: [u8; 6],
    mtu: usize,
    is_status_reported: bool,
    framing: Framing,
    receive: spin::Mutex<BufferQueue>,
    transmit: spin::Mutex<BufferQueue>,
    /// Where a received frame is copied for [`VirtioNet::receive`]'s
    /// consumer, so that its buffer can go back to the device at once.
    received_frame: spin::Mutex<Vec<u8>>,
    /// Where [`VirtioNet::transmit`]'s filler writes, header included,
    /// before the bytes go to DMA memory in one copy.
    outgoing_frame: spin::Mutex<Vec<u8>>,
    activity: ActivityCounters,
}

impl core::fmt::Debug for VirtioNet {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("VirtioNet")
            .field("mac_address", &self.mac_address)
            .field("mtu", &self.mtu)
            .finish()
    }
}

impl VirtioNet {
    /// Starts the network card behind `transport`: negotiates its MAC
    /// address, link status and MTU (no offloads), sets up the receive and
    /// transmit queues and offers the device every receive buffer.
    pub fn new(transport: Arc<dyn Transport>, hardware: &'static dyn Hardware) -> Result<Self, DeviceError> {
        let wanted = feature::MAC | feature::STATUS | feature::MTU | ANY_LAYOUT;
        let features = initialize(&*transport, wanted)?;
        Self::start(transport.clone(), hardware, features).inspect_err(|_| fail(&*transport))
    }

    fn start(
        transport: Arc<dyn Transport>,
        hardware: &'static dyn Hardware,
        features: u64,
    ) -> Result<Self, DeviceError> {
        let mtu = if features & feature::MTU != 0 {
            usize::from(transport.read_config_u16(config::MTU))
        } else {
            DEFAULT_MTU
        };
        let mtu = if mtu < MIN_MTU {
            log::warn!("virtio-net: the device reports an MTU of {mtu}; using {DEFAULT_MTU}");
            DEFAULT_MTU
        } else {
            mtu
        };
        let is_legacy = transport.is_legacy();
        let framing =
            Framing::new(header_size(features, is_legacy), is_legacy && features & ANY_LAYOUT == 0, mtu);
        let mut receive = BufferQueue::new(&transport, RECEIVE_QUEUE, features, hardware, framing)?;
        let mut transmit = BufferQueue::new(&transport, TRANSMIT_QUEUE, features, hardware, framing)?;
        // Sent frames are collected when the next one goes out: an
        // interrupt per frame would wake the network thread for nothing.
        // Only a full queue asks for one (see `transmit`).
        let _ = transmit.queue.set_interrupts(false);
        let mac_address = if features & feature::MAC != 0 {
            core::array::from_fn(|index| transport.read_config_u8(config::MAC + index))
        } else {
            local_mac_address(receive.buffers.physical_address())
        };
        for buffer in core::mem::take(&mut receive.idle) {
            // A failure was logged, and the buffer stays idle.
            let _ = receive.offer(buffer, framing.receive_length(), true);
        }
        finish_initialization(&*transport);
        let _ = receive.notify(&*transport);
        Ok(VirtioNet {
            transport,
            mac_address,
            mtu,
            is_status_reported: features & feature::STATUS != 0,
            framing,
            receive: spin::Mutex::new(receive),
            transmit: spin::Mutex::new(transmit),
            received_frame: spin::Mutex::new(vec![0; framing.frame_capacity]),
            outgoing_frame: spin::Mutex::new(vec![0; framing.header_size + framing.frame_capacity]),
            activity: ActivityCounters::default(),
        })
    }

    /// The card's MAC address: the device's, or a locally administered one
    /// when it has none.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac_address
    }

    /// The largest IP packet a frame carries, in bytes: 1500 unless the
    /// device reports another MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Whether the link is up (always, for a device that does not report
    /// its link status).
    pub fn is_link_up(&self) -> bool {
        !self.is_status_reported || self.transport.read_config_u16(config::STATUS) & status::LINK_UP != 0
    }

    /// Takes the next received frame, if one is waiting: copies it (without
    /// the virtio header) out of its buffer, gives the buffer back to the
    /// device, hands the frame to `consume` and returns true. Returns false
    /// when no frame is waiting, the device broke the receive queue, or
    /// another call is still inside its `consume`. Never waits.
    pub fn receive(&self, consume: impl FnOnce(&[u8])) -> bool {
        let Some(mut frame) = self.received_frame.try_lock() else {
            return false;
        };
        let header_size = self.framing.header_size;
        let mut receive = self.receive.lock();
        let mut length = 0;
        while length == 0 {
            let Some((buffer, written_bytes)) = receive.take_used() else {
                break;
            };
            // At most the buffer's length, which the queue checked, so the
            // frame fits in `frame`.
            length = written_bytes.saturating_sub(header_size);
            if length == 0 {
                log::debug!("virtio-net: the device returned a receive buffer without a frame");
            } else {
                let offset = receive.offset(buffer) + header_size;
                receive.buffers.read_bytes(offset, &mut frame[..length]);
            }
            // A failure was logged, and the buffer stays idle.
            let _ = receive.offer(buffer, self.framing.receive_length(), true);
        }
        if receive.notify(&*self.transport) {
            count(&self.activity.receive_notifications);
        }
        drop(receive);
        if length == 0 {
            return false;
        }
        count(&self.activity.received_frames);
        consume(&frame[..length]);
        true
    }

    /// Whether received frames are waiting, for a polling thread deciding
    /// whether to sleep.
    pub fn has_received(&self) -> bool {
        self.receive.lock().has_used()
    }

    /// Queues a frame of `length` bytes (Ethernet header included, at most
    /// MTU + 14), which `fill` writes into the slice it is given, for
    /// [`VirtioNet::flush`] to announce to the device. Finished
    /// transmissions are collected first; fails with
    /// [`DeviceError::QueueFull`] when every buffer is still with the device
    /// (or another call is still inside its `fill`). Never waits.
    pub fn transmit(&self, length: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), DeviceError> {
        if length == 0 || length > self.mtu + ETHERNET_HEADER_SIZE {
            return Err(DeviceError::InvalidFrameLength);
        }
        let Some(mut frame) = self.outgoing_frame.try_lock() else {
            return Err(DeviceError::QueueFull);
        };
        let buffer = {
            let mut transmit = self.transmit.lock();
            transmit.reclaim();
            if transmit.is_broken {
                return Err(DeviceError::Broken);
            }
            match transmit.idle.pop() {
                Some(buffer) => buffer,
                None => {
                    transmit.ask_for_room();
                    return Err(DeviceError::QueueFull);
                }
            }
        };
        let header_size = self.framing.header_size;
        let bytes = &mut frame[..header_size + length];
        bytes[..header_size].copy_from_slice(&Header::NO_OFFLOAD.encode()[..header_size]);
        bytes[header_size..].fill(0);
        fill(&mut bytes[header_size..]);
        let mut transmit = self.transmit.lock();
        if transmit.is_broken {
            transmit.idle.push(buffer);
            return Err(DeviceError::Broken);
        }
        let offset = transmit.offset(buffer);
        transmit.buffers.write_bytes(offset, bytes);
        transmit.offer(buffer, bytes.len(), false)?;
        count(&self.activity.sent_frames);
        Ok(())
    }

    /// Tells the device about the frames [`VirtioNet::transmit`] queued
    /// since the last call, if it asks for that: one notification (an exit
    /// to the hypervisor) for a whole batch of frames.
    pub fn flush(&self) {
        let mut transmit = self.transmit.lock();
        if !transmit.is_broken && transmit.notify(&*self.transport) {
            count(&self.activity.transmit_notifications);
        }
    }

    /// Whether a transmit buffer is free, after collecting finished
    /// transmissions. When none is, the device is asked to interrupt once
    /// it has sent a frame, which wakes the network thread to send more.
    pub fn can_transmit(&self) -> bool {
        let mut transmit = self.transmit.lock();
        transmit.reclaim();
        if transmit.is_broken {
            return false;
        }
        if transmit.idle.is_empty() {
            transmit.ask_for_room();
        }
        !transmit.idle.is_empty()
    }

    /// Acknowledges the device's interrupt. The kernel's interrupt handler
    /// calls it, then wakes the network thread; it takes no lock.
    pub fn handle_interrupt(&self) {
        count(&self.activity.interrupts);
        self.transport.acknowledge_interrupt();
    }

    /// What the card has done since it started.
    pub fn activity(&self) -> CardActivity {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.activity;
        CardActivity {
            interrupts: read(&counters.interrupts),
            received_frames: read(&counters.received_frames),
            sent_frames: read(&counters.sent_frames),
            receive_notifications: read(&counters.receive_notifications),
            transmit_notifications: read(&counters.transmit_notifications),
        }
    }
}

/// A locally administered unicast address (first byte 0x02) for a device
/// without one, made from the page number of `receive_buffers`, the
/// physical address of its receive buffers: it differs between the devices
/// of one machine and stays the same from boot to boot as long as the same
/// devices start in the same order.
fn local_mac_address(receive_buffers: u64) -> [u8; 6] {
    let [high, upper, lower, low] = ((receive_buffers / 4096) as u32).to_be_bytes();
    [0x02, 0x00, high, upper, lower, low]
}
