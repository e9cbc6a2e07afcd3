//! Legacy virtio over PCI: registers in I/O BAR 0 (virtio 1.2 §4.1.4.8).
//!
//! Features are 32 bits, queues have the size the device fixes and one
//! page frame number for the whole ring area. With MSI-X enabled, two
//! vector registers follow the ISR and the device configuration moves from
//! offset 20 to 24.

use alloc::boxed::Box;

use rosv_virtio::QueueLayout;
use rosv_virtio::spec::DeviceType;

use super::{DeviceError, QueueAddresses, Transport};
use crate::hardware::RegisterWindow;

mod register {
    pub const DEVICE_FEATURES: usize = 0x00;
    pub const DRIVER_FEATURES: usize = 0x04;
    pub const QUEUE_PFN: usize = 0x08;
    pub const QUEUE_SIZE: usize = 0x0c;
    pub const QUEUE_SELECT: usize = 0x0e;
    pub const QUEUE_NOTIFY: usize = 0x10;
    pub const STATUS: usize = 0x12;
    pub const ISR: usize = 0x13;
    pub const CONFIG_VECTOR: usize = 0x14;
    pub const QUEUE_VECTOR: usize = 0x16;
    pub const CONFIG_WITHOUT_MSIX: usize = 0x14;
    pub const CONFIG_WITH_MSIX: usize = 0x18;
}

/// "No vector" for the vector registers.
const NO_VECTOR: u16 = 0xffff;

/// A legacy (or transitional, driven the legacy way) virtio-pci device.
pub struct PciLegacyTransport {
    registers: Box<dyn RegisterWindow>,
    device_type: DeviceType,
    /// The MSI-X entry queue interrupts go to, when MSI-X is enabled.
    queue_vector: Option<u16>,
}

impl core::fmt::Debug for PciLegacyTransport {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("PciLegacyTransport")
            .field("device_type", &self.device_type)
            .field("queue_vector", &self.queue_vector)
            .finish()
    }
}

impl PciLegacyTransport {
    /// A device whose registers are `registers` (BAR 0); `queue_vector` is
    /// the MSI-X entry for queue interrupts if MSI-X is enabled (it must be
    /// enabled before this, since it moves the configuration).
    pub fn new(
        registers: Box<dyn RegisterWindow>,
        device_type: DeviceType,
        queue_vector: Option<u16>,
    ) -> Self {
        if queue_vector.is_some() {
            registers.write_u16(register::CONFIG_VECTOR, NO_VECTOR);
        }
        PciLegacyTransport { registers, device_type, queue_vector }
    }

    fn config_base(&self) -> usize {
        if self.queue_vector.is_some() { register::CONFIG_WITH_MSIX } else { register::CONFIG_WITHOUT_MSIX }
    }
}

impl Transport for PciLegacyTransport {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn is_legacy(&self) -> bool {
        true
    }

    fn device_features(&self) -> u64 {
        u64::from(self.registers.read_u32(register::DEVICE_FEATURES))
    }

    fn set_driver_features(&self, features: u64) {
        self.registers.write_u32(register::DRIVER_FEATURES, features as u32);
    }

    fn status(&self) -> u8 {
        self.registers.read_u8(register::STATUS)
    }

    fn set_status(&self, status: u8) {
        self.registers.write_u8(register::STATUS, status);
    }

    fn max_queue_size(&self, queue: u16) -> u16 {
        self.registers.write_u16(register::QUEUE_SELECT, queue);
        self.registers.read_u16(register::QUEUE_SIZE)
    }

    fn is_queue_size_fixed(&self) -> bool {
        true
    }

    fn activate_queue(
        &self,
        queue: u16,
        _layout: &QueueLayout,
        addresses: QueueAddresses,
    ) -> Result<(), DeviceError> {
        self.registers.write_u16(register::QUEUE_SELECT, queue);
        if let Some(vector) = self.queue_vector {
            self.registers.write_u16(register::QUEUE_VECTOR, vector);
            if self.registers.read_u16(register::QUEUE_VECTOR) != vector {
                return Err(DeviceError::VectorRefused);
            }
        }
        let frame = u32::try_from(addresses.descriptor_table / 4096).map_err(|_| DeviceError::OutOfMemory)?;
        self.registers.write_u32(register::QUEUE_PFN, frame);
        Ok(())
    }

    fn notify(&self, queue: u16) {
        self.registers.write_u16(register::QUEUE_NOTIFY, queue);
    }

    fn acknowledge_interrupt(&self) -> bool {
        // Reading the ISR acknowledges it; with MSI-X it is not used.
        self.queue_vector.is_some() || self.registers.read_u8(register::ISR) != 0
    }

    fn read_config_u8(&self, offset: usize) -> u8 {
        self.registers.read_u8(self.config_base() + offset)
    }

    fn read_config_u16(&self, offset: usize) -> u16 {
        self.registers.read_u16(self.config_base() + offset)
    }

    fn read_config_u32(&self, offset: usize) -> u32 {
        self.registers.read_u32(self.config_base() + offset)
    }
}
