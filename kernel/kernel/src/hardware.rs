//! The platform's device handles, as the drivers' `Hardware` trait.

use alloc::boxed::Box;

use rosv_drivers::pci::PciAddress;
use rosv_drivers::{DmaRegion, Hardware, RegisterWindow};
use rosv_platform::device::{self, MmioRegion, PortRange};
use rosv_platform::pci;
use rosv_virtio::SharedMemory;

/// The machine the drivers run on.
#[derive(Debug)]
pub struct PlatformHardware;

/// The drivers' hardware: one for the whole kernel.
pub static HARDWARE: PlatformHardware = PlatformHardware;

struct Mmio(MmioRegion);

impl RegisterWindow for Mmio {
    fn read_u8(&self, offset: usize) -> u8 {
        self.0.read(offset)
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.0.read(offset)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.0.read(offset)
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.0.write(offset, value)
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.0.write(offset, value)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.0.write(offset, value)
    }
}

struct Ports(PortRange);

impl RegisterWindow for Ports {
    fn read_u8(&self, offset: usize) -> u8 {
        self.0.read_u8(offset)
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.0.read_u16(offset)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.0.read_u32(offset)
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.0.write_u8(offset, value)
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.0.write_u16(offset, value)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.0.write_u32(offset, value)
    }
}

struct Dma(device::DmaRegion);

impl SharedMemory for Dma {
    fn physical_address(&self) -> u64 {
        self.0.physical_address()
    }
    fn read_u16(&self, offset: usize) -> u16 {
        u16::from_le(self.0.read(offset))
    }
    fn read_u32(&self, offset: usize) -> u32 {
        u32::from_le(self.0.read(offset))
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.0.write(offset, value.to_le())
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.0.write(offset, value.to_le())
    }
    fn write_u64(&self, offset: usize, value: u64) {
        self.0.write(offset, value.to_le())
    }
}

impl DmaRegion for Dma {
    fn size(&self) -> usize {
        self.0.size()
    }
    fn read_bytes(&self, offset: usize, buffer: &mut [u8]) {
        self.0.read_bytes(offset, buffer)
    }
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        self.0.write_bytes(offset, bytes)
    }
}

impl Hardware for PlatformHardware {
    fn map_registers(&self, physical_address: u64, size: usize) -> Option<Box<dyn RegisterWindow>> {
        Some(Box::new(Mmio(MmioRegion::map(physical_address, size)?)))
    }

    fn io_ports(&self, base: u16, count: u16) -> Option<Box<dyn RegisterWindow>> {
        Some(Box::new(Ports(PortRange::new(base, count)?)))
    }

    fn allocate_dma(&self, size: usize) -> Option<Box<dyn DmaRegion>> {
        Some(Box::new(Dma(device::DmaRegion::allocate(size)?)))
    }

    fn physical_address(&self, bytes: &[u8]) -> Option<u64> {
        device::physical_address_of(bytes)
    }

    fn read_pci_config(&self, function: PciAddress, offset: u8) -> u32 {
        pci::read_config(function.bus, function.device, function.function, offset)
    }

    fn write_pci_config(&self, function: PciAddress, offset: u8, value: u32) {
        pci::write_config(function.bus, function.device, function.function, offset, value)
    }
}
