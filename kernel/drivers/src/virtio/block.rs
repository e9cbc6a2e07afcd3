//! The virtio block device driver (virtio 1.2 §5.2).
//!
//! A request is a chain of three buffers: the 16-byte header (type and
//! sector), the data, and a status byte the device writes. Headers and
//! status bytes live in a DMA region with one slot per queue descriptor, so
//! as many requests as the queue holds can be in flight, from any number of
//! threads. Data goes to or from the caller's buffer directly when a device
//! can reach it, else through a bounce buffer.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_sync::WaitQueue;
use rosv_virtio::block::{HEADER_SIZE, RequestType, SECTOR_SIZE, Status, config, encode_header, feature};
use rosv_virtio::{Buffer, SharedMemory};

use super::{DeviceError, Transport, Virtqueue, finish_initialization, initialize};
use crate::hardware::{DmaRegion, Hardware};

/// Bytes of one request slot: the header, then the status byte.
const SLOT_SIZE: usize = 32;
/// The largest transfer one request carries.
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Descriptors the driver asks for.
const QUEUE_SIZE: u16 = 128;

/// A virtio block device.
pub struct VirtioBlock {
    transport: Arc<dyn Transport>,
    queue: Virtqueue,
    hardware: &'static dyn Hardware,
    sector_count: u64,
    is_read_only: bool,
    can_flush: bool,
    max_request_bytes: usize,
    slots: Box<dyn DmaRegion>,
    free_slots: spin::Mutex<Vec<u16>>,
    slot_waiters: WaitQueue,
}

impl core::fmt::Debug for VirtioBlock {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("VirtioBlock")
            .field("sector_count", &self.sector_count)
            .field("is_read_only", &self.is_read_only)
            .finish()
    }
}

/// Where a request's data is.
enum Data<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
    None,
}

impl VirtioBlock {
    /// Starts the block device behind `transport`.
    pub fn new(transport: Arc<dyn Transport>, hardware: &'static dyn Hardware) -> Result<Self, DeviceError> {
        let features =
            initialize(&*transport, feature::RO | feature::FLUSH | feature::SIZE_MAX | feature::BLK_SIZE)?;
        let queue = Virtqueue::new(transport.clone(), 0, features, hardware, QUEUE_SIZE)?;
        let sector_count = transport.read_config_u64(config::CAPACITY);
        let size_max = transport.read_config_u32(config::SIZE_MAX) as usize;
        let max_request_bytes = if features & feature::SIZE_MAX != 0 && size_max >= SECTOR_SIZE {
            MAX_REQUEST_BYTES.min(size_max / SECTOR_SIZE * SECTOR_SIZE)
        } else {
            MAX_REQUEST_BYTES
        };
        let slot_count = queue.size();
        let slots =
            hardware.allocate_dma(usize::from(slot_count) * SLOT_SIZE).ok_or(DeviceError::OutOfMemory)?;
        finish_initialization(&*transport);
        Ok(VirtioBlock {
            transport,
            queue,
            hardware,
            sector_count,
            is_read_only: features & feature::RO != 0,
            can_flush: features & feature::FLUSH != 0,
            max_request_bytes,
            slots,
            free_slots: spin::Mutex::new((0..slot_count).rev().collect()),
            slot_waiters: WaitQueue::new(),
        })
    }

    /// Size in 512-byte sectors.
    pub fn sector_count(&self) -> u64 {
        self.sector_count
    }

    /// Whether the device refuses writes.
    pub fn is_read_only(&self) -> bool {
        self.is_read_only
    }

    /// Reads `buffer.len() / 512` sectors from `sector`.
    pub fn read_sectors(&self, sector: u64, buffer: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(sector, buffer.len())?;
        let mut done = 0;
        for chunk in buffer.chunks_mut(self.max_request_bytes) {
            let length = chunk.len();
            self.request(RequestType::In, sector + (done / SECTOR_SIZE) as u64, Data::Read(chunk))?;
            done += length;
        }
        Ok(())
    }

    /// Writes `buffer.len() / 512` sectors at `sector`.
    pub fn write_sectors(&self, sector: u64, buffer: &[u8]) -> Result<(), DeviceError> {
        if self.is_read_only {
            return Err(DeviceError::ReadOnly);
        }
        self.check_range(sector, buffer.len())?;
        for (index, chunk) in buffer.chunks(self.max_request_bytes).enumerate() {
            let offset = index * self.max_request_bytes;
            self.request(RequestType::Out, sector + (offset / SECTOR_SIZE) as u64, Data::Write(chunk))?;
        }
        Ok(())
    }

    /// Makes earlier writes durable (a no-op when the device has no write
    /// cache to flush).
    pub fn flush(&self) -> Result<(), DeviceError> {
        if !self.can_flush {
            return Ok(());
        }
        self.request(RequestType::Flush, 0, Data::None)
    }

    /// Collects finished requests; the device's interrupt handler calls it.
    pub fn handle_interrupt(&self) {
        if self.transport.acknowledge_interrupt() {
            self.queue.handle_interrupt();
        }
    }

    /// The queue, for drivers that poll.
    pub fn queue(&self) -> &Virtqueue {
        &self.queue
    }

    fn check_range(&self, sector: u64, length: usize) -> Result<(), DeviceError> {
        if !length.is_multiple_of(SECTOR_SIZE) {
            return Err(DeviceError::Unaligned);
        }
        let end = sector.checked_add((length / SECTOR_SIZE) as u64).ok_or(DeviceError::OutOfRange)?;
        if end > self.sector_count { Err(DeviceError::OutOfRange) } else { Ok(()) }
    }

    fn request(&self, kind: RequestType, sector: u64, data: Data<'_>) -> Result<(), DeviceError> {
        let slot = self.slot_waiters.wait_until(|| self.free_slots.lock().pop());
        let result = self.request_in_slot(slot, kind, sector, data);
        self.free_slots.lock().push(slot);
        self.slot_waiters.wake_one();
        result
    }

    fn request_in_slot(
        &self,
        slot: u16,
        kind: RequestType,
        sector: u64,
        data: Data<'_>,
    ) -> Result<(), DeviceError> {
        let header_offset = usize::from(slot) * SLOT_SIZE;
        let status_offset = header_offset + HEADER_SIZE;
        self.slots.write_bytes(header_offset, &encode_header(kind, sector));
        self.slots.write_bytes(status_offset, &[0xff]);
        let base = self.slots.physical_address();
        let header = Buffer {
            address: base + header_offset as u64,
            length: HEADER_SIZE as u32,
            is_device_writable: false,
        };
        let status = Buffer { address: base + status_offset as u64, length: 1, is_device_writable: true };
        let (bytes, is_device_writable): (&[u8], bool) = match &data {
            Data::Read(buffer) => (buffer, true),
            Data::Write(buffer) => (buffer, false),
            Data::None => (&[], false),
        };
        let direct = self.hardware.physical_address(bytes);
        let bounce = match (bytes.is_empty(), direct) {
            (false, None) => {
                let bounce = self.hardware.allocate_dma(bytes.len()).ok_or(DeviceError::OutOfMemory)?;
                if !is_device_writable {
                    bounce.write_bytes(0, bytes);
                }
                Some(bounce)
            }
            _ => None,
        };
        let address = bounce.as_ref().map(|bounce| bounce.physical_address()).or(direct).unwrap_or(0);
        let length = bytes.len() as u32;
        let data_buffer = Buffer { address, length, is_device_writable };
        let chain: &[Buffer] =
            if bytes.is_empty() { &[header, status] } else { &[header, data_buffer, status] };
        self.queue.submit(chain)?;
        let mut status_byte = [0u8];
        self.slots.read_bytes(status_offset, &mut status_byte);
        match Status::from_byte(status_byte[0]) {
            Status::Ok => {}
            Status::Unsupported => return Err(DeviceError::Unsupported),
            Status::IoError | Status::Unknown(_) => return Err(DeviceError::IoError),
        }
        if let (Data::Read(buffer), Some(bounce)) = (data, bounce) {
            bounce.read_bytes(0, buffer);
        }
        Ok(())
    }
}
