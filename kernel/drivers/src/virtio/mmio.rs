//! The virtio-mmio transport, versions 1 (legacy) and 2 (virtio 1.2 §4.2).
//!
//! Devices sit at fixed physical addresses announced on the kernel command
//! line (`virtio_mmio.device=`) or in the ACPI DSDT. Version 2 takes the
//! three ring addresses and a ready bit; version 1 takes the guest page
//! size, an alignment and one page frame number for the whole legacy ring
//! area (§4.2.4).

use alloc::boxed::Box;

use rosv_virtio::QueueLayout;
use rosv_virtio::spec::DeviceType;

use super::{DeviceError, QueueAddresses, Transport};
use crate::hardware::RegisterWindow;

/// "virt", little-endian.
const MAGIC: u32 = 0x7472_6976;
/// Bytes of the register block before the device configuration.
pub const REGISTERS_SIZE: usize = 0x100;

mod register {
    pub const MAGIC: usize = 0x000;
    pub const VERSION: usize = 0x004;
    pub const DEVICE_ID: usize = 0x008;
    pub const DEVICE_FEATURES: usize = 0x010;
    pub const DEVICE_FEATURES_SELECT: usize = 0x014;
    pub const DRIVER_FEATURES: usize = 0x020;
    pub const DRIVER_FEATURES_SELECT: usize = 0x024;
    pub const GUEST_PAGE_SIZE: usize = 0x028;
    pub const QUEUE_SELECT: usize = 0x030;
    pub const QUEUE_SIZE_MAX: usize = 0x034;
    pub const QUEUE_SIZE: usize = 0x038;
    pub const QUEUE_ALIGN: usize = 0x03c;
    pub const QUEUE_PFN: usize = 0x040;
    pub const QUEUE_READY: usize = 0x044;
    pub const QUEUE_NOTIFY: usize = 0x050;
    pub const INTERRUPT_STATUS: usize = 0x060;
    pub const INTERRUPT_ACK: usize = 0x064;
    pub const STATUS: usize = 0x070;
    pub const QUEUE_DESCRIPTOR_LOW: usize = 0x080;
    pub const QUEUE_DESCRIPTOR_HIGH: usize = 0x084;
    pub const QUEUE_DRIVER_LOW: usize = 0x090;
    pub const QUEUE_DRIVER_HIGH: usize = 0x094;
    pub const QUEUE_DEVICE_LOW: usize = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: usize = 0x0a4;
    pub const CONFIG: usize = 0x100;
}

/// Why a window is not a usable virtio-mmio device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeError {
    /// No "virt" magic value: not a virtio-mmio device.
    NotVirtio(u32),
    /// A version other than 1 or 2.
    UnsupportedVersion(u32),
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::NotVirtio(magic) => write!(formatter, "no virtio-mmio device (magic {magic:#x})"),
            ProbeError::UnsupportedVersion(version) => {
                write!(formatter, "unsupported virtio-mmio version {version}")
            }
        }
    }
}

/// A virtio-mmio device.
pub struct MmioTransport {
    registers: Box<dyn RegisterWindow>,
    version: u32,
    device_type: DeviceType,
}

impl core::fmt::Debug for MmioTransport {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("MmioTransport")
            .field("version", &self.version)
            .field("device_type", &self.device_type)
            .finish()
    }
}

impl MmioTransport {
    /// Checks the registers in `registers`; `Ok(None)` for an empty slot
    /// (device id 0, as QEMU's unused transports read).
    pub fn probe(registers: Box<dyn RegisterWindow>) -> Result<Option<Self>, ProbeError> {
        let magic = registers.read_u32(register::MAGIC);
        if magic != MAGIC {
            return Err(ProbeError::NotVirtio(magic));
        }
        let version = registers.read_u32(register::VERSION);
        if !(1..=2).contains(&version) {
            return Err(ProbeError::UnsupportedVersion(version));
        }
        let device_id = registers.read_u32(register::DEVICE_ID);
        if device_id == 0 {
            return Ok(None);
        }
        Ok(Some(MmioTransport { registers, version, device_type: DeviceType::from_id(device_id) }))
    }

    /// The transport version (1: legacy).
    pub fn version(&self) -> u32 {
        self.version
    }
}

impl Transport for MmioTransport {
    fn device_type(&self) -> DeviceType {
        self.device_type
    }

    fn is_legacy(&self) -> bool {
        self.version == 1
    }

    fn device_features(&self) -> u64 {
        self.registers.write_u32(register::DEVICE_FEATURES_SELECT, 0);
        let low = self.registers.read_u32(register::DEVICE_FEATURES);
        self.registers.write_u32(register::DEVICE_FEATURES_SELECT, 1);
        let high = self.registers.read_u32(register::DEVICE_FEATURES);
        u64::from(high) << 32 | u64::from(low)
    }

    fn set_driver_features(&self, features: u64) {
        self.registers.write_u32(register::DRIVER_FEATURES_SELECT, 0);
        self.registers.write_u32(register::DRIVER_FEATURES, features as u32);
        self.registers.write_u32(register::DRIVER_FEATURES_SELECT, 1);
        self.registers.write_u32(register::DRIVER_FEATURES, (features >> 32) as u32);
    }

    fn status(&self) -> u8 {
        self.registers.read_u32(register::STATUS) as u8
    }

    fn set_status(&self, status: u8) {
        self.registers.write_u32(register::STATUS, u32::from(status));
    }

    fn max_queue_size(&self, queue: u16) -> u16 {
        self.registers.write_u32(register::QUEUE_SELECT, u32::from(queue));
        self.registers.read_u32(register::QUEUE_SIZE_MAX).min(u32::from(u16::MAX)) as u16
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
        self.registers.write_u32(register::QUEUE_SELECT, u32::from(queue));
        self.registers.write_u32(register::QUEUE_SIZE, u32::from(layout.size));
        if self.version == 1 {
            self.registers.write_u32(register::GUEST_PAGE_SIZE, 4096);
            self.registers.write_u32(register::QUEUE_ALIGN, 4096);
            let frame = addresses.descriptor_table / 4096;
            let frame = u32::try_from(frame).map_err(|_| DeviceError::OutOfMemory)?;
            self.registers.write_u32(register::QUEUE_PFN, frame);
            return Ok(());
        }
        let write_address = |low: usize, high: usize, address: u64| {
            self.registers.write_u32(low, address as u32);
            self.registers.write_u32(high, (address >> 32) as u32);
        };
        write_address(
            register::QUEUE_DESCRIPTOR_LOW,
            register::QUEUE_DESCRIPTOR_HIGH,
            addresses.descriptor_table,
        );
        write_address(register::QUEUE_DRIVER_LOW, register::QUEUE_DRIVER_HIGH, addresses.driver_area);
        write_address(register::QUEUE_DEVICE_LOW, register::QUEUE_DEVICE_HIGH, addresses.device_area);
        self.registers.write_u32(register::QUEUE_READY, 1);
        Ok(())
    }

    fn notify(&self, queue: u16) {
        self.registers.write_u32(register::QUEUE_NOTIFY, u32::from(queue));
    }

    fn acknowledge_interrupt(&self) -> bool {
        let pending = self.registers.read_u32(register::INTERRUPT_STATUS);
        if pending != 0 {
            self.registers.write_u32(register::INTERRUPT_ACK, pending);
        }
        pending != 0
    }

    fn read_config_u8(&self, offset: usize) -> u8 {
        self.registers.read_u8(register::CONFIG + offset)
    }

    fn read_config_u16(&self, offset: usize) -> u16 {
        self.registers.read_u16(register::CONFIG + offset)
    }

    fn read_config_u32(&self, offset: usize) -> u32 {
        self.registers.read_u32(register::CONFIG + offset)
    }
}
