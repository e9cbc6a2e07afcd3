//! A queue with its own buffers: equal slots of one DMA region, offered to
//! the device one chain each, for drivers that never wait.
//!
//! The console's ports and its control queues move bytes through such
//! rings. A slot is either idle (the driver may fill it) or with the
//! device; [`BufferRing::take_used`] hands back the slots the device has
//! finished with, checked against what was offered.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::{Buffer, QueueError, SharedMemory, SplitQueue};

use super::{DeviceError, Transport};
use crate::hardware::{DmaRegion, Hardware};

/// One queue and the slots it carries.
pub(crate) struct BufferRing {
    index: u16,
    queue: SplitQueue<Box<dyn DmaRegion>>,
    region: Box<dyn DmaRegion>,
    slot_size: usize,
    /// The slot each token in flight carries.
    slot_of_token: Vec<Option<u16>>,
    /// Slots the device does not hold.
    idle: Vec<u16>,
    slot_count: usize,
    is_broken: bool,
}

impl BufferRing {
    /// Gives `queue` (the device's queue `index`) as many slots of
    /// `slot_size` bytes as it holds, at most `max_slots`; all idle.
    pub(crate) fn new(
        index: u16,
        queue: SplitQueue<Box<dyn DmaRegion>>,
        hardware: &dyn Hardware,
        slot_size: usize,
        max_slots: usize,
    ) -> Result<Self, DeviceError> {
        let size = usize::from(queue.layout().size);
        let slot_count = size.min(max_slots);
        if slot_count == 0 {
            return Err(DeviceError::NoQueue(index));
        }
        let region = hardware.allocate_dma(slot_count * slot_size).ok_or(DeviceError::OutOfMemory)?;
        Ok(BufferRing {
            index,
            queue,
            region,
            slot_size,
            slot_of_token: vec![None; size],
            idle: (0..slot_count as u16).rev().collect(),
            slot_count,
            is_broken: false,
        })
    }

    /// Bytes a slot holds.
    pub(crate) fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Whether the device broke the queue (nothing more moves on it).
    pub(crate) fn is_broken(&self) -> bool {
        self.is_broken
    }

    /// An idle slot, if any, for the caller to fill and offer.
    pub(crate) fn take_idle(&mut self) -> Option<u16> {
        if self.is_broken { None } else { self.idle.pop() }
    }

    /// Whether a slot is idle.
    pub(crate) fn has_idle(&self) -> bool {
        !self.is_broken && !self.idle.is_empty()
    }

    /// Whether every slot is idle (nothing is with the device).
    pub(crate) fn is_all_idle(&self) -> bool {
        self.idle.len() == self.slot_count
    }

    /// Copies `bytes` into `slot` from its start.
    pub(crate) fn write_slot(&self, slot: u16, bytes: &[u8]) {
        self.region.write_bytes(usize::from(slot) * self.slot_size, bytes);
    }

    /// Copies bytes of `slot` from `offset` into `buffer`.
    pub(crate) fn read_slot(&self, slot: u16, offset: usize, buffer: &mut [u8]) {
        self.region.read_bytes(usize::from(slot) * self.slot_size + offset, buffer);
    }

    /// Offers the first `length` bytes of `slot` to the device, to read
    /// them or (`is_device_writable`) to fill them. Should that fail, the
    /// slot stays idle and the queue is abandoned.
    pub(crate) fn offer(
        &mut self,
        slot: u16,
        length: usize,
        is_device_writable: bool,
    ) -> Result<(), DeviceError> {
        let address = self.region.physical_address() + (usize::from(slot) * self.slot_size) as u64;
        let buffer = Buffer { address, length: length as u32, is_device_writable };
        match self.queue.add(&[buffer]) {
            Ok(token) => {
                self.slot_of_token[usize::from(token)] = Some(slot);
                Ok(())
            }
            Err(error) => {
                // Not expected: a slot takes one descriptor, and there are
                // no more slots than descriptors.
                self.idle.push(slot);
                self.abandon(error);
                Err(DeviceError::Broken)
            }
        }
    }

    /// Tells the device about the slots offered since the last call, if it
    /// asks for that.
    pub(crate) fn notify(&mut self, transport: &dyn Transport) {
        if self.queue.should_notify() {
            transport.notify(self.index);
        }
    }

    /// The next slot the device has finished with, and the bytes it wrote
    /// there (never more than it was offered: the queue checks).
    pub(crate) fn take_used(&mut self) -> Option<(u16, usize)> {
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
        match self.slot_of_token[usize::from(used.token)].take() {
            Some(slot) => Some((slot, used.written_bytes as usize)),
            None => {
                self.abandon(QueueError::UnknownUsedToken(u32::from(used.token)));
                None
            }
        }
    }

    /// Puts the slots the device has finished with on the idle list.
    pub(crate) fn reclaim(&mut self) {
        while let Some((slot, _)) = self.take_used() {
            self.idle.push(slot);
        }
    }

    fn abandon(&mut self, error: QueueError) {
        log::error!("virtio: queue {}: {error}; the queue is abandoned", self.index);
        self.is_broken = true;
    }
}
