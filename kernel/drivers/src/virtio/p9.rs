//! The virtio 9P transport driver: one chain per 9P request and its reply.
//!
//! A request is a chain of the request's parts (device-readable) and the
//! reply's parts (device-writable); the device answers every chain with
//! one reply, so chains, not 9P tags, match replies to requests and as
//! many requests as the queue holds can be in flight from any number of
//! threads. Parts the device cannot reach where they are go through
//! bounce buffers. The configuration's mount tag names the share.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_virtio::p9::{REQUEST_QUEUE, TAG_BYTES_MAX, config, feature};
use rosv_virtio::{Buffer, SharedMemory};

use super::{DeviceError, Transport, Virtqueue, finish_initialization, initialize};
use crate::hardware::{DmaRegion, Hardware};

/// Descriptors the driver asks for.
const QUEUE_SIZE: u16 = 128;
/// Parts of one request and its reply together, at most.
pub const PARTS_MAX: usize = 8;

/// A virtio 9P transport.
pub struct Virtio9p {
    transport: Arc<dyn Transport>,
    queue: Virtqueue,
    hardware: &'static dyn Hardware,
    tag: String,
}

impl core::fmt::Debug for Virtio9p {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Virtio9p").field("tag", &self.tag).finish()
    }
}

impl Virtio9p {
    /// Starts the 9P transport behind `transport`.
    pub fn new(transport: Arc<dyn Transport>, hardware: &'static dyn Hardware) -> Result<Self, DeviceError> {
        let features = initialize(&*transport, feature::MOUNT_TAG)?;
        let queue = Virtqueue::new(transport.clone(), REQUEST_QUEUE, features, hardware, QUEUE_SIZE)?;
        let tag = if features & feature::MOUNT_TAG != 0 {
            let length = usize::from(transport.read_config_u16(config::TAG_LENGTH)).min(TAG_BYTES_MAX);
            let bytes: Vec<u8> =
                (0..length).map(|index| transport.read_config_u8(config::TAG + index)).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            String::new()
        };
        finish_initialization(&*transport);
        Ok(Virtio9p { transport, queue, hardware, tag })
    }

    /// The mount tag that names the share (empty when the device has
    /// none).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The queue, for drivers that poll.
    pub fn queue(&self) -> &Virtqueue {
        &self.queue
    }

    /// Collects finished requests; the device's interrupt handler calls it.
    pub fn handle_interrupt(&self) {
        if self.transport.acknowledge_interrupt() {
            self.queue.handle_interrupt();
        }
    }

    /// Sends the request made of `request`'s parts and waits for the
    /// reply, which fills `reply`'s parts in order; returns the bytes the
    /// device wrote (never more than the parts hold).
    pub fn exchange(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> Result<usize, DeviceError> {
        let parts = request.iter().filter(|part| !part.is_empty()).count()
            + reply.iter().filter(|part| !part.is_empty()).count();
        if parts > PARTS_MAX || reply.iter().all(|part| part.is_empty()) {
            return Err(DeviceError::Unsupported);
        }
        let mut buffers: Vec<Buffer> = Vec::with_capacity(parts);
        // Bounce buffers of the reply's parts, by part.
        let mut bounces: Vec<(usize, Option<alloc::boxed::Box<dyn DmaRegion>>)> = Vec::new();
        let mut held: Vec<alloc::boxed::Box<dyn DmaRegion>> = Vec::new();
        for part in request.iter().filter(|part| !part.is_empty()) {
            let address = match self.hardware.physical_address(part) {
                Some(address) => address,
                None => {
                    let bounce = self.hardware.allocate_dma(part.len()).ok_or(DeviceError::OutOfMemory)?;
                    bounce.write_bytes(0, part);
                    let address = bounce.physical_address();
                    held.push(bounce);
                    address
                }
            };
            buffers.push(Buffer { address, length: part.len() as u32, is_device_writable: false });
        }
        for (index, part) in reply.iter().enumerate().filter(|(_, part)| !part.is_empty()) {
            let (address, bounce) = match self.hardware.physical_address(part) {
                Some(address) => (address, None),
                None => {
                    let bounce = self.hardware.allocate_dma(part.len()).ok_or(DeviceError::OutOfMemory)?;
                    (bounce.physical_address(), Some(bounce))
                }
            };
            buffers.push(Buffer { address, length: part.len() as u32, is_device_writable: true });
            bounces.push((index, bounce));
        }
        let written = self.queue.submit(&buffers)? as usize;
        let mut left = written;
        for (index, bounce) in bounces {
            let part = &mut reply[index];
            let count = left.min(part.len());
            if let Some(bounce) = bounce {
                bounce.read_bytes(0, &mut part[..count]);
            }
            left -= count;
        }
        Ok(written)
    }
}
