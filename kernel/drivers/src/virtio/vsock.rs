//! The virtio socket device driver (virtio 1.2 §5.10): packets to and from
//! the host, for the kernel's `AF_VSOCK` sockets.
//!
//! [`VirtioVsock`] keeps the receive queue full of 4 KiB buffers (a packet
//! header and up to 4052 bytes of data each, as Linux offers them), sends
//! packets through transmit buffers of the same size, and keeps buffers on
//! the event queue for the device's transport-reset events. The protocol
//! itself (connections, credit) is `rosv_core::net::vsock`'s; this driver
//! only moves packets and never waits. The interrupt handler acknowledges
//! the device and wakes the thread that polls [`VirtioVsock::receive`].

use alloc::sync::Arc;
use alloc::vec;

use rosv_virtio::vsock::{EVENT_QUEUE, HEADER_SIZE, RECEIVE_QUEUE, TRANSMIT_QUEUE, config};

use super::buffers::BufferRing;
use super::queue::set_up_queue;
use super::{DeviceError, Transport, fail, finish_initialization, initialize};
use crate::hardware::Hardware;

/// Bytes of one packet buffer, header included.
pub const PACKET_BYTES: usize = 4096;
/// The most data one packet carries.
pub const PAYLOAD_BYTES_MAX: usize = PACKET_BYTES - HEADER_SIZE;
/// Buffers on each of the receive and transmit queues, at most.
const PACKET_SLOTS: usize = 64;
/// Bytes of one event (`struct virtio_vsock_event`: a `le32` id).
const EVENT_BYTES: usize = 4;
/// Buffers on the event queue.
const EVENT_SLOTS: usize = 4;
/// The event id of a transport reset (§5.10.6.7).
const EVENT_TRANSPORT_RESET: u32 = 0;

/// A virtio socket device.
pub struct VirtioVsock {
    transport: Arc<dyn Transport>,
    guest_cid: u64,
    receive: spin::Mutex<BufferRing>,
    transmit: spin::Mutex<BufferRing>,
    events: spin::Mutex<BufferRing>,
}

impl core::fmt::Debug for VirtioVsock {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("VirtioVsock").field("guest_cid", &self.guest_cid).finish()
    }
}

impl VirtioVsock {
    /// Starts the device behind `transport`: reads the guest's CID, sets up
    /// the three queues and offers the device every receive and event
    /// buffer.
    pub fn new(transport: Arc<dyn Transport>, hardware: &'static dyn Hardware) -> Result<Self, DeviceError> {
        let features = initialize(&*transport, 0)?;
        Self::start(transport.clone(), hardware, features).inspect_err(|_| fail(&*transport))
    }

    fn start(
        transport: Arc<dyn Transport>,
        hardware: &'static dyn Hardware,
        features: u64,
    ) -> Result<Self, DeviceError> {
        // The upper half of the CID is reserved and must be zero (§5.10.4).
        let guest_cid = transport.read_config_u64(config::GUEST_CID) & u64::from(u32::MAX);
        let queue = |index| set_up_queue(&transport, index, features, hardware, PACKET_SLOTS as u16);
        let mut receive =
            BufferRing::new(RECEIVE_QUEUE, queue(RECEIVE_QUEUE)?, hardware, PACKET_BYTES, PACKET_SLOTS)?;
        let transmit =
            BufferRing::new(TRANSMIT_QUEUE, queue(TRANSMIT_QUEUE)?, hardware, PACKET_BYTES, PACKET_SLOTS)?;
        let mut events = BufferRing::new(
            EVENT_QUEUE,
            set_up_queue(&transport, EVENT_QUEUE, features, hardware, EVENT_SLOTS as u16)?,
            hardware,
            EVENT_BYTES,
            EVENT_SLOTS,
        )?;
        while let Some(slot) = receive.take_idle() {
            receive.offer(slot, PACKET_BYTES, true)?;
        }
        while let Some(slot) = events.take_idle() {
            events.offer(slot, EVENT_BYTES, true)?;
        }
        finish_initialization(&*transport);
        receive.notify(&*transport);
        events.notify(&*transport);
        Ok(VirtioVsock {
            transport,
            guest_cid,
            receive: spin::Mutex::new(receive),
            transmit: spin::Mutex::new(transmit),
            events: spin::Mutex::new(events),
        })
    }

    /// The guest's context id, as the device gives it.
    pub fn guest_cid(&self) -> u64 {
        self.guest_cid
    }

    /// Takes the next received packet, if one waits: hands its bytes
    /// (header and data) to `consume`, then gives the buffer back to the
    /// device. Returns false when none waits. Never waits itself.
    pub fn receive(&self, consume: impl FnOnce(&[u8])) -> bool {
        let mut packet = vec![0u8; PACKET_BYTES];
        let mut receive = self.receive.lock();
        let Some((slot, written_bytes)) = receive.take_used() else {
            return false;
        };
        let length = written_bytes.min(PACKET_BYTES);
        receive.read_slot(slot, 0, &mut packet[..length]);
        // A failure was logged, and the queue is abandoned.
        let _ = receive.offer(slot, PACKET_BYTES, true);
        receive.notify(&*self.transport);
        drop(receive);
        consume(&packet[..length]);
        true
    }

    /// Sends one packet: `header` (the encoded header) followed by
    /// `payload` (at most [`PAYLOAD_BYTES_MAX`]). Fails with
    /// [`DeviceError::QueueFull`] while every transmit buffer is with the
    /// device; its interrupt then says when one returns.
    pub fn transmit(&self, header: &[u8; HEADER_SIZE], payload: &[u8]) -> Result<(), DeviceError> {
        if payload.len() > PAYLOAD_BYTES_MAX {
            return Err(DeviceError::InvalidFrameLength);
        }
        let mut transmit = self.transmit.lock();
        transmit.reclaim();
        if transmit.is_broken() {
            return Err(DeviceError::Broken);
        }
        let slot = transmit.take_idle().ok_or(DeviceError::QueueFull)?;
        let mut bytes = vec![0u8; HEADER_SIZE + payload.len()];
        bytes[..HEADER_SIZE].copy_from_slice(header);
        bytes[HEADER_SIZE..].copy_from_slice(payload);
        transmit.write_slot(slot, &bytes);
        transmit.offer(slot, HEADER_SIZE + payload.len(), false)?;
        transmit.notify(&*self.transport);
        Ok(())
    }

    /// Whether a transmit buffer is free, after collecting those the device
    /// has finished with.
    pub fn can_transmit(&self) -> bool {
        let mut transmit = self.transmit.lock();
        transmit.reclaim();
        transmit.has_idle()
    }

    /// Takes the events the device sent; true if one was a transport reset
    /// (the host forgot every connection, §5.10.6.7).
    pub fn take_reset(&self) -> bool {
        let mut events = self.events.lock();
        let mut is_reset = false;
        while let Some((slot, written_bytes)) = events.take_used() {
            let mut id = [0u8; EVENT_BYTES];
            if written_bytes >= EVENT_BYTES {
                events.read_slot(slot, 0, &mut id);
                is_reset |= u32::from_le_bytes(id) == EVENT_TRANSPORT_RESET;
            }
            let _ = events.offer(slot, EVENT_BYTES, true);
        }
        events.notify(&*self.transport);
        is_reset
    }

    /// Acknowledges the device's interrupt; the kernel's handler then wakes
    /// the polling thread. Takes no lock.
    pub fn handle_interrupt(&self) {
        self.transport.acknowledge_interrupt();
    }
}
