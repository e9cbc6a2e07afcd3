//! The device side of a split virtqueue, over guest physical memory.
//!
//! Everything read here comes from the driver and may be wrong: a chain
//! that loops, points outside memory, nests indirect tables or puts a
//! readable buffer after a writable one is a [`ChainError`]. Tests use this
//! side to play the device for the drivers; fuzzing feeds it arbitrary
//! memory.

use alloc::vec;
use alloc::vec::Vec;

use crate::layout::{DESCRIPTOR_SIZE, USED_ELEMENT_SIZE};
use crate::spec::{descriptor_flags, needs_event};

/// An address range that is not guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

/// Guest physical memory as a device reaches it.
pub trait GuestMemory {
    /// Copies the bytes at `address` into `buffer`.
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), OutOfRange>;
    /// Copies `bytes` to `address`.
    fn write(&self, address: u64, bytes: &[u8]) -> Result<(), OutOfRange>;
}

/// Why a chain cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// A ring, descriptor or table lies outside guest memory.
    OutOfRange,
    /// The available ring names a descriptor past the table.
    HeadOutOfRange(u16),
    /// The chain visits more descriptors than the table holds (a loop).
    TooLong,
    /// An indirect table's length is zero or not a multiple of 16.
    BadIndirectLength(u32),
    /// An indirect table contains an indirect descriptor, or an indirect
    /// descriptor also has `NEXT`.
    BadIndirect,
    /// A readable buffer follows a writable one.
    ReadableAfterWritable,
}

impl From<OutOfRange> for ChainError {
    fn from(_: OutOfRange) -> Self {
        ChainError::OutOfRange
    }
}

/// One buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address.
    pub address: u64,
    /// Bytes.
    pub length: u32,
    /// Whether the device may write it.
    pub is_writable: bool,
}

/// A chain taken from the available ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its head descriptor: what goes back in the used ring.
    pub head: u16,
    /// Its buffers, readable ones first.
    pub segments: Vec<Segment>,
}

impl Chain {
    /// Concatenates the readable buffers. Reads a page at a time, so that a
    /// bogus length fails at the end of memory rather than allocating it.
    pub fn read_all(&self, memory: &dyn GuestMemory) -> Result<Vec<u8>, OutOfRange> {
        const STEP: u64 = 4096;
        let mut bytes = Vec::new();
        for segment in self.segments.iter().filter(|segment| !segment.is_writable) {
            let mut offset = 0u64;
            while offset < u64::from(segment.length) {
                let count = STEP.min(u64::from(segment.length) - offset) as usize;
                let start = bytes.len();
                bytes.resize(start + count, 0);
                let address = segment.address.checked_add(offset).ok_or(OutOfRange)?;
                memory.read(address, &mut bytes[start..])?;
                offset += count as u64;
            }
        }
        Ok(bytes)
    }

    /// Writes `bytes` across the writable buffers, in order; returns how many
    /// fit.
    pub fn write_all(&self, memory: &dyn GuestMemory, mut bytes: &[u8]) -> Result<u32, OutOfRange> {
        let mut written = 0u32;
        for segment in self.segments.iter().filter(|segment| segment.is_writable) {
            let count = bytes.len().min(segment.length as usize);
            memory.write(segment.address, &bytes[..count])?;
            bytes = &bytes[count..];
            written += count as u32;
        }
        Ok(written)
    }

    /// Total bytes of the writable buffers.
    pub fn writable_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter(|segment| segment.is_writable)
            .map(|segment| u64::from(segment.length))
            .sum()
    }
}

/// The device's view of one queue: where its parts are and how far it got.
#[derive(Debug, Clone)]
pub struct DeviceQueue {
    size: u16,
    descriptor_table: u64,
    driver_area: u64,
    device_area: u64,
    is_event_index: bool,
    next_available: u16,
    used_index: u16,
    signalled_used_index: u16,
}

struct Descriptor {
    address: u64,
    length: u32,
    flags: u16,
    next: u16,
}

fn read_descriptor(memory: &dyn GuestMemory, address: u64) -> Result<Descriptor, OutOfRange> {
    let mut bytes = [0u8; DESCRIPTOR_SIZE];
    memory.read(address, &mut bytes)?;
    let field = |range: core::ops::Range<usize>| {
        let mut value = [0u8; 8];
        value[..range.len()].copy_from_slice(&bytes[range]);
        u64::from_le_bytes(value)
    };
    Ok(Descriptor {
        address: field(0..8),
        length: field(8..12) as u32,
        flags: field(12..14) as u16,
        next: field(14..16) as u16,
    })
}

fn read_u16(memory: &dyn GuestMemory, address: u64) -> Result<u16, OutOfRange> {
    let mut bytes = [0u8; 2];
    memory.read(address, &mut bytes)?;
    Ok(u16::from_le_bytes(bytes))
}

impl DeviceQueue {
    /// A queue of `size` descriptors whose parts the driver placed at these
    /// guest physical addresses.
    pub fn new(
        size: u16,
        descriptor_table: u64,
        driver_area: u64,
        device_area: u64,
        is_event_index: bool,
    ) -> Self {
        DeviceQueue {
            size,
            descriptor_table,
            driver_area,
            device_area,
            is_event_index,
            next_available: 0,
            used_index: 0,
            signalled_used_index: 0,
        }
    }

    /// Takes the next chain the driver made available, if any.
    pub fn pop_available(&mut self, memory: &dyn GuestMemory) -> Result<Option<Chain>, ChainError> {
        if self.size == 0 {
            return Ok(None);
        }
        let available_index = read_u16(memory, self.driver_area + 2)?;
        if available_index == self.next_available {
            return Ok(None);
        }
        let slot = self.driver_area + 4 + 2 * u64::from(self.next_available % self.size);
        let head = read_u16(memory, slot)?;
        self.next_available = self.next_available.wrapping_add(1);
        if self.is_event_index {
            // Ask to be notified again only for chains after this one.
            let event = self.device_area + 4 + (USED_ELEMENT_SIZE as u64) * u64::from(self.size);
            memory.write(event, &self.next_available.to_le_bytes())?;
        }
        if head >= self.size {
            return Err(ChainError::HeadOutOfRange(head));
        }
        self.walk(memory, head).map(Some)
    }

    fn walk(&self, memory: &dyn GuestMemory, head: u16) -> Result<Chain, ChainError> {
        let mut segments = Vec::new();
        let mut index = head;
        let mut visited = 0usize;
        loop {
            visited += 1;
            if visited > usize::from(self.size) {
                return Err(ChainError::TooLong);
            }
            let address = self.descriptor_table + (DESCRIPTOR_SIZE as u64) * u64::from(index);
            let descriptor = read_descriptor(memory, address)?;
            if descriptor.flags & descriptor_flags::INDIRECT != 0 {
                if descriptor.flags & descriptor_flags::NEXT != 0 {
                    return Err(ChainError::BadIndirect);
                }
                walk_indirect(memory, &descriptor, &mut segments)?;
                break;
            }
            push_segment(&mut segments, &descriptor)?;
            if descriptor.flags & descriptor_flags::NEXT == 0 {
                break;
            }
            index = descriptor.next;
            if index >= self.size {
                return Err(ChainError::HeadOutOfRange(index));
            }
        }
        Ok(Chain { head, segments })
    }

    /// Returns chain `head` to the driver, with `written_bytes` written.
    pub fn push_used(
        &mut self,
        memory: &dyn GuestMemory,
        head: u16,
        written_bytes: u32,
    ) -> Result<(), OutOfRange> {
        let element =
            self.device_area + 4 + (USED_ELEMENT_SIZE as u64) * u64::from(self.used_index % self.size);
        let mut bytes = [0u8; USED_ELEMENT_SIZE];
        bytes[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        bytes[4..].copy_from_slice(&written_bytes.to_le_bytes());
        memory.write(element, &bytes)?;
        self.used_index = self.used_index.wrapping_add(1);
        memory.write(self.device_area + 2, &self.used_index.to_le_bytes())
    }

    /// Whether the driver wants an interrupt for the chains used since the
    /// last call (its `used_event`, or the `NO_INTERRUPT` flag).
    pub fn should_interrupt(&mut self, memory: &dyn GuestMemory) -> Result<bool, OutOfRange> {
        let previous = self.signalled_used_index;
        self.signalled_used_index = self.used_index;
        if previous == self.used_index {
            return Ok(false);
        }
        if self.is_event_index {
            let event = read_u16(memory, self.driver_area + 4 + 2 * u64::from(self.size))?;
            Ok(needs_event(event, self.used_index, previous))
        } else {
            Ok(read_u16(memory, self.driver_area)? & crate::spec::AVAIL_F_NO_INTERRUPT == 0)
        }
    }
}

fn walk_indirect(
    memory: &dyn GuestMemory,
    table: &Descriptor,
    segments: &mut Vec<Segment>,
) -> Result<(), ChainError> {
    if table.length == 0 || !(table.length as usize).is_multiple_of(DESCRIPTOR_SIZE) {
        return Err(ChainError::BadIndirectLength(table.length));
    }
    let count = table.length as usize / DESCRIPTOR_SIZE;
    let mut visited = vec![false; count];
    let mut index = 0usize;
    loop {
        if visited[index] {
            return Err(ChainError::TooLong);
        }
        visited[index] = true;
        let address = table.address.checked_add((DESCRIPTOR_SIZE * index) as u64).ok_or(OutOfRange)?;
        let descriptor = read_descriptor(memory, address)?;
        if descriptor.flags & descriptor_flags::INDIRECT != 0 {
            return Err(ChainError::BadIndirect);
        }
        push_segment(segments, &descriptor)?;
        if descriptor.flags & descriptor_flags::NEXT == 0 {
            return Ok(());
        }
        index = usize::from(descriptor.next);
        if index >= count {
            return Err(ChainError::OutOfRange);
        }
    }
}

fn push_segment(segments: &mut Vec<Segment>, descriptor: &Descriptor) -> Result<(), ChainError> {
    let is_writable = descriptor.flags & descriptor_flags::WRITE != 0;
    if !is_writable && segments.last().is_some_and(|last| last.is_writable) {
        return Err(ChainError::ReadableAfterWritable);
    }
    segments.push(Segment { address: descriptor.address, length: descriptor.length, is_writable });
    Ok(())
}
