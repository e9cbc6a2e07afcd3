//! The virtio entropy device driver (virtio 1.2 §5.4): the device fills
//! writable buffers with random bytes.

use alloc::sync::Arc;

use rosv_virtio::Buffer;
use rosv_virtio::entropy::REQUEST_QUEUE;

use super::{DeviceError, Transport, Virtqueue, finish_initialization, initialize};
use crate::hardware::Hardware;

/// Bytes asked for per request.
const REQUEST_BYTES: usize = 256;

/// A virtio entropy source.
pub struct VirtioEntropy {
    transport: Arc<dyn Transport>,
    queue: Virtqueue,
    hardware: &'static dyn Hardware,
}

impl core::fmt::Debug for VirtioEntropy {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("VirtioEntropy").finish()
    }
}

impl VirtioEntropy {
    /// Starts the entropy device behind `transport`.
    pub fn new(transport: Arc<dyn Transport>, hardware: &'static dyn Hardware) -> Result<Self, DeviceError> {
        let features = initialize(&*transport, 0)?;
        let queue = Virtqueue::new(transport.clone(), REQUEST_QUEUE, features, hardware, 8)?;
        finish_initialization(&*transport);
        Ok(VirtioEntropy { transport, queue, hardware })
    }

    /// Fills `buffer` with bytes from the device.
    pub fn fill(&self, buffer: &mut [u8]) -> Result<(), DeviceError> {
        let bounce = self.hardware.allocate_dma(REQUEST_BYTES).ok_or(DeviceError::OutOfMemory)?;
        let mut filled = 0;
        let mut empty_answers = 0;
        while filled < buffer.len() {
            let wanted = (buffer.len() - filled).min(REQUEST_BYTES);
            let request = Buffer {
                address: bounce.physical_address(),
                length: wanted as u32,
                is_device_writable: true,
            };
            let written = (self.queue.submit(&[request])? as usize).min(wanted);
            if written == 0 {
                empty_answers += 1;
                if empty_answers > 16 {
                    return Err(DeviceError::IoError);
                }
                continue;
            }
            bounce.read_bytes(0, &mut buffer[filled..filled + written]);
            filled += written;
        }
        Ok(())
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
}
