//! Modern virtio over PCI: structures found through vendor capabilities
//! (virtio 1.2 §4.1.4).
//!
//! The common configuration holds features, status and per-queue
//! registers behind a queue selector; notifications go to
//! `notify base + queue_notify_off × multiplier`; reading the ISR byte
//! acknowledges an INTx interrupt; the device configuration has its own
//! window. With MSI-X, each queue names the table entry it signals.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicUsize, Ordering};

use rosv_virtio::QueueLayout;
use rosv_virtio::spec::DeviceType;

use super::{DeviceError, QueueAddresses, Transport};
use crate::hardware::RegisterWindow;

mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0c;
    pub const CONFIG_MSIX_VECTOR: usize = 0x10;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
    pub const QUEUE_ENABLE: usize = 0x1c;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    pub const QUEUE_DESCRIPTOR: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// Bytes of the structure up to `queue_device`'s end.
    pub const SIZE: usize = 0x38;
}

/// "No vector" for the vector registers.
const NO_VECTOR: u16 = 0xffff;
/// Queues whose notification offsets are remembered.
const MAX_QUEUES: usize = 16;
/// A queue not activated yet.
const NOT_ACTIVE: usize = usize::MAX;

/// The mapped structures of a modern virtio-pci device.
pub struct ModernWindows {
    /// The common configuration (`VIRTIO_PCI_CAP_COMMON_CFG`).
    pub common: Box<dyn RegisterWindow>,
    /// The notification area (`VIRTIO_PCI_CAP_NOTIFY_CFG`).
    pub notify: Box<dyn RegisterWindow>,
    /// Bytes of the notification area.
    pub notify_size: usize,
    /// `notify_off_multiplier`.
    pub notify_multiplier: u32,
    /// The ISR byte (`VIRTIO_PCI_CAP_ISR_CFG`).
    pub isr: Box<dyn RegisterWindow>,
    /// The device configuration (`VIRTIO_PCI_CAP_DEVICE_CFG`), if any.
    pub device: Option<Box<dyn RegisterWindow>>,
}

impl core::fmt::Debug for ModernWindows {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("ModernWindows")
            .field("notify_size", &self.notify_size)
            .field("notify_multiplier", &self.notify_multiplier)
            .finish()
    }
}

/// A modern virtio-pci device.
pub struct PciModernTransport {
    windows: ModernWindows,
    device_type: DeviceType,
    queue_vector: Option<u16>,
    /// Each active queue's offset in the notification area, read once at
    /// activation (reading it again would race with other queue selects).
    notify_offsets: [AtomicUsize; MAX_QUEUES],
}

impl core::fmt::Debug for PciModernTransport {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("PciModernTransport")
            .field("device_type", &self.device_type)
            .field("queue_vector", &self.queue_vector)
            .finish()
    }
}

impl PciModernTransport {
    /// A device reached through `windows`; `queue_vector` is the MSI-X entry
    /// for queue interrupts if MSI-X is enabled.
    pub fn new(windows: ModernWindows, device_type: DeviceType, queue_vector: Option<u16>) -> Self {
        if queue_vector.is_some() {
            windows.common.write_u16(common::CONFIG_MSIX_VECTOR, NO_VECTOR);
        }
        let notify_offsets = [const { AtomicUsize::new(NOT_ACTIVE) }; MAX_QUEUES];
        PciModernTransport { windows, device_type, queue_vector, notify_offsets }
    }

    fn write_u64(&self, offset: usize, value: u64) {
        self.windows.common.write_u32(offset, value as u32);
        self.windows.common.write_u32(offset + 4, (value >> 32) as u32);
    }
}

impl Transport for PciModernTransport {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn is_legacy(&self) -> bool {
        false
    }

    fn device_features(&self) -> u64 {
        let common = &self.windows.common;
        common.write_u32(common::DEVICE_FEATURE_SELECT, 0);
        let low = common.read_u32(common::DEVICE_FEATURE);
        common.write_u32(common::DEVICE_FEATURE_SELECT, 1);
        let high = common.read_u32(common::DEVICE_FEATURE);
        u64::from(high) << 32 | u64::from(low)
    }

    fn set_driver_features(&self, features: u64) {
        let common = &self.windows.common;
        common.write_u32(common::DRIVER_FEATURE_SELECT, 0);
        common.write_u32(common::DRIVER_FEATURE, features as u32);
        common.write_u32(common::DRIVER_FEATURE_SELECT, 1);
        common.write_u32(common::DRIVER_FEATURE, (features >> 32) as u32);
    }

    fn status(&self) -> u8 {
        self.windows.common.read_u8(common::DEVICE_STATUS)
    }

    fn set_status(&self, status: u8) {
        self.windows.common.write_u8(common::DEVICE_STATUS, status);
    }

    fn max_queue_size(&self, queue: u16) -> u16 {
        self.windows.common.write_u16(common::QUEUE_SELECT, queue);
        self.windows.common.read_u16(common::QUEUE_SIZE)
    }

    fn is_queue_size_fixed(&self) -> bool {
        false
    }

    fn activate_queue(
        &self,
        queue: u16,
        layout: &QueueLayout,
        addresses: QueueAddresses,
    ) -> Result<(), DeviceError> {
        let common = &self.windows.common;
        let slot = self.notify_offsets.get(usize::from(queue)).ok_or(DeviceError::NoQueue(queue))?;
        common.write_u16(common::QUEUE_SELECT, queue);
        common.write_u16(common::QUEUE_SIZE, layout.size);
        if let Some(vector) = self.queue_vector {
            common.write_u16(common::QUEUE_MSIX_VECTOR, vector);
            if common.read_u16(common::QUEUE_MSIX_VECTOR) != vector {
                return Err(DeviceError::VectorRefused);
            }
        }
        self.write_u64(common::QUEUE_DESCRIPTOR, addresses.descriptor_table);
        self.write_u64(common::QUEUE_DRIVER, addresses.driver_area);
        self.write_u64(common::QUEUE_DEVICE, addresses.device_area);
        let offset =
            usize::from(common.read_u16(common::QUEUE_NOTIFY_OFF)) * self.windows.notify_multiplier as usize;
        if offset + 2 > self.windows.notify_size {
            return Err(DeviceError::NoQueue(queue));
        }
        slot.store(offset, Ordering::Relaxed);
        common.write_u16(common::QUEUE_ENABLE, 1);
        Ok(())
    }

    fn notify(&self, queue: u16) {
        let offset = self
            .notify_offsets
            .get(usize::from(queue))
            .map_or(NOT_ACTIVE, |slot| slot.load(Ordering::Relaxed));
        if offset != NOT_ACTIVE {
            self.windows.notify.write_u16(offset, queue);
        }
    }

    fn acknowledge_interrupt(&self) -> bool {
        self.queue_vector.is_some() || self.windows.isr.read_u8(0) != 0
    }

    fn read_config_u8(&self, offset: usize) -> u8 {
        self.windows.device.as_ref().map_or(0, |device| device.read_u8(offset))
    }

    fn read_config_u16(&self, offset: usize) -> u16 {
        self.windows.device.as_ref().map_or(0, |device| device.read_u16(offset))
    }

    fn read_config_u32(&self, offset: usize) -> u32 {
        self.windows.device.as_ref().map_or(0, |device| device.read_u32(offset))
    }
}

/// Bytes of the common configuration a driver needs.
pub const COMMON_CONFIG_SIZE: usize = common::SIZE;
