//! The driver side of a split virtqueue (virtio 1.2 §2.7).
//!
//! Buffers go in as descriptor chains ([`SplitQueue::add`]); the device
//! returns them through the used ring ([`SplitQueue::pop_used`]). Chains of
//! several buffers take a single ring descriptor when indirect descriptors
//! were negotiated. The free list and each chain's shape live here, not in
//! shared memory, so a device that scribbles over the rings cannot make the
//! driver free the wrong descriptors.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{Ordering, fence};

use crate::layout::{DESCRIPTOR_SIZE, INDIRECT_TABLE_LENGTH, QueueLayout};
use crate::memory::SharedMemory;
use crate::spec::{descriptor_flags, needs_event};

/// One buffer of a chain, by physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// Physical address of the first byte.
    pub address: u64,
    /// Length in bytes (not zero).
    pub length: u32,
    /// Whether the device writes it (otherwise it reads it).
    pub is_device_writable: bool,
}

/// A chain the device has finished with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// The token [`SplitQueue::add`] returned for the chain.
    pub token: u16,
    /// Bytes the device wrote into the chain's writable buffers.
    pub written_bytes: u32,
}

/// What went wrong with a queue operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// A chain needs at least one buffer, each at least one byte long.
    EmptyBuffer,
    /// A device-readable buffer follows a device-writable one.
    ReadableAfterWritable,
    /// Not enough free descriptors for the chain: wait for completions.
    Full,
    /// The chain is longer than the queue can ever hold.
    ChainTooLong,
    /// The device returned a descriptor that is not the head of a chain in
    /// flight.
    UnknownUsedToken(u32),
    /// The device claims to have written more bytes than the chain offered.
    UsedLengthTooLarge {
        /// The chain.
        token: u16,
        /// What the device reported.
        written_bytes: u32,
    },
}

impl core::fmt::Display for QueueError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QueueError::EmptyBuffer => formatter.write_str("empty buffer or chain"),
            QueueError::ReadableAfterWritable => {
                formatter.write_str("device-readable buffer after a writable one")
            }
            QueueError::Full => formatter.write_str("no free descriptors"),
            QueueError::ChainTooLong => formatter.write_str("chain longer than the queue"),
            QueueError::UnknownUsedToken(id) => write!(formatter, "device returned unknown descriptor {id}"),
            QueueError::UsedLengthTooLarge { token, written_bytes } => {
                write!(
                    formatter,
                    "device wrote {written_bytes} bytes into chain {token}, more than it offered"
                )
            }
        }
    }
}

impl core::error::Error for QueueError {}

/// What the driver remembers of a chain in flight.
#[derive(Debug, Clone, Copy, Default)]
struct InFlight {
    /// Ring descriptors the chain holds (0: the head is not in flight).
    descriptor_count: u16,
    /// Bytes the device may write.
    writable_bytes: u64,
}

/// The driver side of one split virtqueue.
#[derive(Debug)]
pub struct SplitQueue<M> {
    memory: M,
    layout: QueueLayout,
    is_indirect: bool,
    is_event_index: bool,
    /// The next descriptor of each free or chained descriptor, as the driver
    /// wrote it (the device's copy is not trusted).
    next: Vec<u16>,
    free_head: u16,
    free_count: u16,
    in_flight: Vec<InFlight>,
    available_index: u16,
    notified_available_index: u16,
    last_used_index: u16,
    /// Whether the driver wants an interrupt when the device uses a chain.
    wants_interrupts: bool,
}

/// How far ahead of the used index `used_event` points while interrupts
/// are suppressed with event indices: more than a queue ever holds, so
/// the device never reaches it.
const SUPPRESSED_EVENT_DISTANCE: u16 = 0x8000;

impl<M: SharedMemory> SplitQueue<M> {
    /// A queue over `memory` (at least `layout.total_size` bytes, zeroed)
    /// laid out as `layout`; `is_indirect` and `is_event_index` say whether
    /// those features were negotiated.
    pub fn new(memory: M, layout: QueueLayout, is_indirect: bool, is_event_index: bool) -> Self {
        let size = layout.size;
        let next = (0..size).map(|index| index.wrapping_add(1)).collect();
        SplitQueue {
            memory,
            layout,
            is_indirect,
            is_event_index,
            next,
            free_head: 0,
            free_count: size,
            in_flight: vec![InFlight::default(); usize::from(size)],
            available_index: 0,
            notified_available_index: 0,
            last_used_index: 0,
            wants_interrupts: true,
        }
    }

    /// Asks the device for an interrupt whenever it uses a chain, or for
    /// none (§2.7.7): a driver that collects used chains when it next adds
    /// some, as a transmit queue can, spares the device an interrupt per
    /// chain. A hint only; the device may interrupt anyway. Returns whether
    /// chains were used meanwhile, which an interrupt asked for now would
    /// not announce.
    pub fn set_interrupts(&mut self, wanted: bool) -> bool {
        self.wants_interrupts = wanted;
        self.publish_interrupt_wish();
        // The wish must be visible before the used index is read again.
        fence(Ordering::SeqCst);
        self.has_used()
    }

    fn publish_interrupt_wish(&self) {
        if self.is_event_index {
            let event = if self.wants_interrupts {
                self.last_used_index
            } else {
                self.last_used_index.wrapping_add(SUPPRESSED_EVENT_DISTANCE)
            };
            self.memory.write_u16(self.layout.used_event(), event);
        } else {
            let flags = if self.wants_interrupts { 0 } else { crate::spec::AVAIL_F_NO_INTERRUPT };
            self.memory.write_u16(self.layout.available_ring, flags);
        }
    }

    /// The queue's layout.
    pub fn layout(&self) -> &QueueLayout {
        &self.layout
    }

    /// Physical address of the descriptor table.
    pub fn descriptor_table_address(&self) -> u64 {
        self.memory.physical_address() + self.layout.descriptor_table as u64
    }

    /// Physical address of the available ring (the driver area).
    pub fn driver_area_address(&self) -> u64 {
        self.memory.physical_address() + self.layout.available_ring as u64
    }

    /// Physical address of the used ring (the device area).
    pub fn device_area_address(&self) -> u64 {
        self.memory.physical_address() + self.layout.used_ring as u64
    }

    /// Free descriptors.
    pub fn free_descriptors(&self) -> u16 {
        self.free_count
    }

    /// Whether a chain of `buffer_count` buffers fits now.
    pub fn can_add(&self, buffer_count: usize) -> bool {
        self.descriptors_needed(buffer_count) <= usize::from(self.free_count)
    }

    fn descriptors_needed(&self, buffer_count: usize) -> usize {
        if self.is_indirect && buffer_count > 1 && buffer_count <= INDIRECT_TABLE_LENGTH {
            1
        } else {
            buffer_count
        }
    }

    /// Offers `buffers` (device-readable ones first) to the device as one
    /// chain and returns its token. The device sees it once the available
    /// index is published here; call [`SplitQueue::should_notify`] after a
    /// batch of adds.
    pub fn add(&mut self, buffers: &[Buffer]) -> Result<u16, QueueError> {
        if buffers.is_empty() || buffers.iter().any(|buffer| buffer.length == 0) {
            return Err(QueueError::EmptyBuffer);
        }
        if buffers.windows(2).any(|pair| pair[0].is_device_writable && !pair[1].is_device_writable) {
            return Err(QueueError::ReadableAfterWritable);
        }
        let needed = self.descriptors_needed(buffers.len());
        if needed > usize::from(self.layout.size) {
            return Err(QueueError::ChainTooLong);
        }
        if needed > usize::from(self.free_count) {
            return Err(QueueError::Full);
        }
        let head = self.free_head;
        if needed == 1 && buffers.len() > 1 {
            self.write_indirect_chain(head, buffers);
            self.take_free(1);
        } else {
            let mut index = head;
            for (position, buffer) in buffers.iter().enumerate() {
                let is_last = position + 1 == buffers.len();
                let next = self.next[usize::from(index)];
                let flags = flags_of(buffer) | if is_last { 0 } else { descriptor_flags::NEXT };
                self.write_descriptor(
                    self.layout.descriptor(index),
                    buffer.address,
                    buffer.length,
                    flags,
                    next,
                );
                if !is_last {
                    index = next;
                }
            }
            self.take_free(buffers.len() as u16);
        }
        let writable_bytes = buffers
            .iter()
            .filter(|buffer| buffer.is_device_writable)
            .map(|buffer| u64::from(buffer.length))
            .sum();
        self.in_flight[usize::from(head)] = InFlight { descriptor_count: needed as u16, writable_bytes };
        self.memory.write_u16(self.layout.available_slot(self.available_index), head);
        // The descriptors and the slot must be visible before the index that
        // publishes them (§2.7.13).
        fence(Ordering::Release);
        self.available_index = self.available_index.wrapping_add(1);
        self.memory.write_u16(self.layout.available_ring + 2, self.available_index);
        Ok(head)
    }

    fn write_indirect_chain(&mut self, head: u16, buffers: &[Buffer]) {
        let table = self.layout.indirect_table(head);
        for (position, buffer) in buffers.iter().enumerate() {
            let is_last = position + 1 == buffers.len();
            let flags = flags_of(buffer) | if is_last { 0 } else { descriptor_flags::NEXT };
            let next = if is_last { 0 } else { position as u16 + 1 };
            self.write_descriptor(
                table + position * DESCRIPTOR_SIZE,
                buffer.address,
                buffer.length,
                flags,
                next,
            );
        }
        let table_address = self.memory.physical_address() + table as u64;
        let table_length = (buffers.len() * DESCRIPTOR_SIZE) as u32;
        let next = self.next[usize::from(head)];
        self.write_descriptor(
            self.layout.descriptor(head),
            table_address,
            table_length,
            descriptor_flags::INDIRECT,
            next,
        );
    }

    fn write_descriptor(&self, offset: usize, address: u64, length: u32, flags: u16, next: u16) {
        self.memory.write_u64(offset, address);
        self.memory.write_u32(offset + 8, length);
        self.memory.write_u16(offset + 12, flags);
        self.memory.write_u16(offset + 14, next);
    }

    /// Takes `count` descriptors off the free list (they were just chained
    /// in list order).
    fn take_free(&mut self, count: u16) {
        for _ in 0..count {
            self.free_head = self.next[usize::from(self.free_head)];
        }
        self.free_count -= count;
    }

    /// Whether the device wants a notification for the chains added since
    /// the last call (§2.7.10): with event indices, when the available index
    /// passed the device's `avail_event`; otherwise unless it set
    /// `VIRTQ_USED_F_NO_NOTIFY`.
    pub fn should_notify(&mut self) -> bool {
        // The published index must be visible before reading what the
        // device asked for, or both sides could miss each other.
        fence(Ordering::SeqCst);
        let previous = self.notified_available_index;
        self.notified_available_index = self.available_index;
        if previous == self.available_index {
            return false;
        }
        if self.is_event_index {
            let event = self.memory.read_u16(self.layout.available_event());
            needs_event(event, self.available_index, previous)
        } else {
            self.memory.read_u16(self.layout.used_ring) & crate::spec::USED_F_NO_NOTIFY == 0
        }
    }

    /// Whether the device has returned chains not yet popped.
    pub fn has_used(&self) -> bool {
        self.memory.read_u16(self.layout.used_ring + 2) != self.last_used_index
    }

    /// Takes the next chain the device has finished with, if any, and frees
    /// its descriptors.
    pub fn pop_used(&mut self) -> Result<Option<Used>, QueueError> {
        let used_index = self.memory.read_u16(self.layout.used_ring + 2);
        if used_index == self.last_used_index {
            return Ok(None);
        }
        // The element must be read after the index that published it.
        fence(Ordering::Acquire);
        let element = self.layout.used_element(self.last_used_index);
        let id = self.memory.read_u32(element);
        let written_bytes = self.memory.read_u32(element + 4);
        let token = u16::try_from(id)
            .ok()
            .filter(|&token| token < self.layout.size)
            .filter(|&token| self.in_flight[usize::from(token)].descriptor_count != 0)
            .ok_or(QueueError::UnknownUsedToken(id))?;
        let chain = self.in_flight[usize::from(token)];
        if u64::from(written_bytes) > chain.writable_bytes {
            return Err(QueueError::UsedLengthTooLarge { token, written_bytes });
        }
        self.last_used_index = self.last_used_index.wrapping_add(1);
        self.release(token, chain.descriptor_count);
        if self.is_event_index {
            // Ask for an interrupt as soon as the device uses the next chain
            // (or keep the suppressed event out of its reach).
            self.publish_interrupt_wish();
        }
        Ok(Some(Used { token, written_bytes }))
    }

    /// Returns a chain's descriptors to the free list.
    fn release(&mut self, head: u16, descriptor_count: u16) {
        self.in_flight[usize::from(head)] = InFlight::default();
        let mut last = head;
        for _ in 1..descriptor_count {
            last = self.next[usize::from(last)];
        }
        self.next[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.free_count += descriptor_count;
    }
}

fn flags_of(buffer: &Buffer) -> u16 {
    if buffer.is_device_writable { descriptor_flags::WRITE } else { 0 }
}
