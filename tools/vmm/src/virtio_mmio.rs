//! The virtio-mmio transport (version 2) the monitor's devices share.
//!
//! [`Transport`] holds the registers of virtio 1.2 §4.2.2: feature
//! negotiation, the device status, each queue's addresses and its
//! `rosv_virtio::device::DeviceQueue` once the driver makes it ready, and
//! the interrupt status. A device (`virtio_block`, `virtio_net`) owns one,
//! supplies its device id, features and configuration space, and serves
//! the queues the driver notifies.

use rosv_virtio::device::{DeviceQueue, GuestMemory, OutOfRange};
use rosv_virtio::spec::feature;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// The size of a device's register window.
pub const WINDOW_SIZE: u64 = 0x1000;
/// "virt", little-endian.
const MAGIC: u32 = 0x7472_6976;
/// The modern virtio-mmio interface.
const VERSION: u32 = 2;
/// "rosv", little-endian, as the vendor id.
const VENDOR_ID: u32 = 0x7673_6f72;
/// InterruptStatus bit: the device used buffers.
const INTERRUPT_USED_BUFFER: u32 = 1;
/// The device status value `FEATURES_OK`.
const STATUS_FEATURES_OK: u32 = 8;
/// The device status value `DRIVER_OK`.
const STATUS_DRIVER_OK: u32 = 4;

/// Register offsets in the window (§4.2.2).
pub mod register {
    #![allow(missing_docs)]
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SELECT: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SELECT: u64 = 0x024;
    pub const QUEUE_SELECT: u64 = 0x030;
    pub const QUEUE_SIZE_MAX: u64 = 0x034;
    pub const QUEUE_SIZE: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESCRIPTOR_LOW: u64 = 0x080;
    pub const QUEUE_DESCRIPTOR_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// Guest RAM as the virtqueue's device side reads it.
#[derive(Debug)]
pub struct Ram<'a>(pub &'a GuestMemoryMmap);

impl GuestMemory for Ram<'_> {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), OutOfRange> {
        self.0.read_slice(buffer, GuestAddress(address)).map_err(|_| OutOfRange)
    }

    fn write(&self, address: u64, bytes: &[u8]) -> Result<(), OutOfRange> {
        self.0.write_slice(bytes, GuestAddress(address)).map_err(|_| OutOfRange)
    }
}

/// Where the driver put one queue, and the queue once it is live.
#[derive(Debug, Default, Clone)]
struct Queue {
    size: u16,
    descriptor_table: u64,
    driver_area: u64,
    device_area: u64,
    is_ready: bool,
    live: Option<DeviceQueue>,
}

/// The registers of one virtio-mmio device.
#[derive(Debug)]
pub struct Transport {
    device_id: u32,
    device_features: u64,
    queue_size_max: u16,
    interrupt: EventFd,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    status: u32,
    queue_select: u32,
    queues: Vec<Queue>,
    interrupt_status: u32,
}

impl Transport {
    /// The transport of a device of type `device_id` (virtio 1.2 §5)
    /// offering `device_features`, with `queue_count` queues of at most
    /// `queue_size_max` entries, raising `interrupt`.
    pub fn new(
        device_id: u32,
        device_features: u64,
        queue_count: usize,
        queue_size_max: u16,
        interrupt: EventFd,
    ) -> Self {
        Transport {
            device_id,
            device_features,
            queue_size_max,
            interrupt,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            status: 0,
            queue_select: 0,
            queues: vec![Queue::default(); queue_count],
            interrupt_status: 0,
        }
    }

    /// The features the driver accepted.
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Whether the driver said it is ready (`DRIVER_OK`): before, the
    /// device must not use buffers (§3.1.1).
    pub fn is_driver_ok(&self) -> bool {
        self.status & STATUS_DRIVER_OK != 0
    }

    /// A read of `data.len()` bytes at `offset` in the window, with
    /// `config` as the device's configuration space.
    pub fn read(&self, offset: u64, data: &mut [u8], config: &[u8]) {
        if offset >= register::CONFIG {
            let start = (offset - register::CONFIG) as usize;
            for (index, byte) in data.iter_mut().enumerate() {
                *byte = config.get(start + index).copied().unwrap_or(0);
            }
            return;
        }
        let queue = self.queues.get(self.queue_select as usize);
        let value = match offset {
            register::MAGIC => MAGIC,
            register::VERSION => VERSION,
            register::DEVICE_ID => self.device_id,
            register::VENDOR_ID => VENDOR_ID,
            register::DEVICE_FEATURES => match self.device_features_select {
                0 => self.device_features as u32,
                1 => (self.device_features >> 32) as u32,
                _ => 0,
            },
            // A queue that does not exist has a maximum size of 0 (§4.2.3.2).
            register::QUEUE_SIZE_MAX => queue.map_or(0, |_| u32::from(self.queue_size_max)),
            register::QUEUE_READY => queue.map_or(0, |queue| u32::from(queue.is_ready)),
            register::INTERRUPT_STATUS => self.interrupt_status,
            register::STATUS => self.status,
            register::CONFIG_GENERATION => 0,
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        for (index, byte) in data.iter_mut().enumerate() {
            *byte = bytes.get(index).copied().unwrap_or(0);
        }
    }

    /// A write of `data` at `offset` in the window; returns the queue the
    /// driver notified, if it did.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Option<u16> {
        let mut bytes = [0u8; 4];
        let length = data.len().min(4);
        bytes[..length].copy_from_slice(&data[..length]);
        let value = u32::from_le_bytes(bytes);
        let set_low = |field: &mut u64| *field = (*field & !0xffff_ffff) | u64::from(value);
        let set_high = |field: &mut u64| *field = (*field & 0xffff_ffff) | (u64::from(value) << 32);
        let queue_size_max = self.queue_size_max;
        let queue = self.queues.get_mut(self.queue_select as usize);
        match (offset, queue) {
            (register::DEVICE_FEATURES_SELECT, _) => self.device_features_select = value,
            (register::DRIVER_FEATURES_SELECT, _) => self.driver_features_select = value,
            (register::DRIVER_FEATURES, _) => match self.driver_features_select {
                0 => set_low(&mut self.driver_features),
                1 => set_high(&mut self.driver_features),
                _ => {}
            },
            (register::QUEUE_SELECT, _) => self.queue_select = value,
            (register::QUEUE_SIZE, Some(queue)) => {
                queue.size = u16::try_from(value).unwrap_or(0).min(queue_size_max)
            }
            (register::QUEUE_DESCRIPTOR_LOW, Some(queue)) => set_low(&mut queue.descriptor_table),
            (register::QUEUE_DESCRIPTOR_HIGH, Some(queue)) => set_high(&mut queue.descriptor_table),
            (register::QUEUE_DRIVER_LOW, Some(queue)) => set_low(&mut queue.driver_area),
            (register::QUEUE_DRIVER_HIGH, Some(queue)) => set_high(&mut queue.driver_area),
            (register::QUEUE_DEVICE_LOW, Some(queue)) => set_low(&mut queue.device_area),
            (register::QUEUE_DEVICE_HIGH, Some(queue)) => set_high(&mut queue.device_area),
            (register::QUEUE_READY, Some(queue)) => {
                let has_event_index = self.driver_features & feature::EVENT_IDX != 0;
                queue.is_ready = value & 1 == 1;
                queue.live = (queue.is_ready && queue.size > 0).then(|| {
                    DeviceQueue::new(
                        queue.size,
                        queue.descriptor_table,
                        queue.driver_area,
                        queue.device_area,
                        has_event_index,
                    )
                });
            }
            (register::QUEUE_NOTIFY, _) => {
                let index = u16::try_from(value).ok()?;
                return (usize::from(index) < self.queues.len()).then_some(index);
            }
            (register::INTERRUPT_ACK, _) => self.interrupt_status &= !value,
            (register::STATUS, _) => self.set_status(value),
            _ => {}
        }
        None
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            // Reset (§4.2.3.1): forget the negotiation and the queues.
            self.driver_features = 0;
            self.queues.fill(Queue::default());
            self.interrupt_status = 0;
            self.status = 0;
            return;
        }
        let mut value = value;
        if value & STATUS_FEATURES_OK != 0 && self.driver_features & !self.device_features != 0 {
            // The driver accepted features the device never offered.
            value &= !STATUS_FEATURES_OK;
        }
        self.status = value;
    }

    /// Lends queue `index` to the device while it serves it; `None` when
    /// the driver has not made it ready (or broke it).
    pub fn take_queue(&mut self, index: u16) -> Option<DeviceQueue> {
        self.queues.get_mut(usize::from(index))?.live.take()
    }

    /// Gives back a queue [`take_queue`](Self::take_queue) lent. A queue
    /// whose driver broke the protocol is not given back: the driver loses
    /// it until it resets the device.
    pub fn return_queue(&mut self, index: u16, queue: DeviceQueue) {
        if let Some(slot) = self.queues.get_mut(usize::from(index))
            && slot.is_ready
        {
            slot.live = Some(queue);
        }
    }

    /// Interrupts the driver about used buffers in `queue`, unless it
    /// asked not to be (§2.7.7, §2.7.10).
    pub fn signal_used(&mut self, queue: &mut DeviceQueue, memory: &dyn GuestMemory) {
        if queue.should_interrupt(memory).unwrap_or(true) {
            self.interrupt_status |= INTERRUPT_USED_BUFFER;
            // A full eventfd counter still leaves the interrupt pending.
            let _ = self.interrupt.write(1);
        }
    }
}
