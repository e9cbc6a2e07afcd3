//! PCI: finding functions, decoding their BARs and capabilities.
//!
//! Enumeration walks bus 0 and every bus behind a PCI-to-PCI bridge, so a
//! machine with one bus costs 32 vendor-id reads (PCI Local Bus 3.0 §6.1,
//! PCI-to-PCI Bridge 1.2 §3.2). Each function found is described by a
//! [`Function`]: ids, class, BARs (sized by the all-ones probe), interrupt
//! line and pin, and the capability list.

mod msix;

use alloc::vec::Vec;

pub use msix::{Msix, MsixError};

use crate::hardware::Hardware;

/// Configuration-space offsets of a type-0 header.
mod offset {
    pub const VENDOR_DEVICE: u8 = 0x00;
    pub const COMMAND_STATUS: u8 = 0x04;
    pub const CLASS: u8 = 0x08;
    pub const HEADER_TYPE: u8 = 0x0c;
    pub const BAR0: u8 = 0x10;
    pub const SUBSYSTEM: u8 = 0x2c;
    pub const CAPABILITIES: u8 = 0x34;
    pub const INTERRUPT: u8 = 0x3c;
    pub const BRIDGE_BUSES: u8 = 0x18;
}

/// Command register bits.
const COMMAND_IO_SPACE: u32 = 1 << 0;
const COMMAND_MEMORY_SPACE: u32 = 1 << 1;
const COMMAND_BUS_MASTER: u32 = 1 << 2;
/// Status register bit: the capability list exists.
const STATUS_CAPABILITIES: u32 = 1 << 4;

/// A function's bus, device and function numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device number (0–31).
    pub device: u8,
    /// Function number (0–7).
    pub function: u8,
}

impl core::fmt::Display for PciAddress {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(formatter, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// A base address register, decoded and sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented, or not assigned by the firmware.
    None,
    /// Memory-mapped registers.
    Memory {
        /// Physical address.
        address: u64,
        /// Size in bytes.
        size: u64,
    },
    /// I/O ports.
    Io {
        /// First port.
        port: u16,
        /// Number of ports.
        size: u16,
    },
}

/// One capability in a function's capability list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Its id (0x09 vendor-specific, 0x11 MSI-X, ...).
    pub id: u8,
    /// Its offset in configuration space.
    pub offset: u8,
}

/// Capability id of MSI-X.
pub const CAPABILITY_MSIX: u8 = 0x11;
/// Capability id of vendor-specific capabilities (virtio's structures).
pub const CAPABILITY_VENDOR: u8 = 0x09;

/// A PCI function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Where it is.
    pub address: PciAddress,
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Subsystem id (virtio's legacy device type).
    pub subsystem_id: u16,
    /// Class, subclass and programming interface.
    pub class: [u8; 3],
    /// Its BARs.
    pub bars: [Bar; 6],
    /// The interrupt line the firmware assigned (an I/O APIC input).
    pub interrupt_line: u8,
    /// The interrupt pin (0: none, 1–4: INTA–INTD).
    pub interrupt_pin: u8,
    /// Its capabilities, in list order.
    pub capabilities: Vec<Capability>,
}

impl Function {
    /// The first capability with `id`.
    pub fn capability(&self, id: u8) -> Option<Capability> {
        self.capabilities.iter().copied().find(|capability| capability.id == id)
    }

    /// Lets the function decode its BARs and master the bus (DMA).
    pub fn enable(&self, hardware: &dyn Hardware) {
        let command = hardware.read_pci_config(self.address, offset::COMMAND_STATUS) & 0xffff;
        let wanted = COMMAND_IO_SPACE | COMMAND_MEMORY_SPACE | COMMAND_BUS_MASTER;
        if command & wanted != wanted {
            hardware.write_pci_config(self.address, offset::COMMAND_STATUS, command | wanted);
        }
    }
}

/// Reads a byte of configuration space.
pub fn read_config_u8(hardware: &dyn Hardware, function: PciAddress, offset: u8) -> u8 {
    (hardware.read_pci_config(function, offset & !3) >> (8 * (offset & 3))) as u8
}

/// Reads a 16-bit value of configuration space (`offset` even).
pub fn read_config_u16(hardware: &dyn Hardware, function: PciAddress, offset: u8) -> u16 {
    (hardware.read_pci_config(function, offset & !3) >> (8 * (offset & 2))) as u16
}

/// Writes a 16-bit value of configuration space (`offset` even), keeping
/// the other half of its register.
pub fn write_config_u16(hardware: &dyn Hardware, function: PciAddress, offset: u8, value: u16) {
    let register = hardware.read_pci_config(function, offset & !3);
    let shift = 8 * u32::from(offset & 2);
    let updated = (register & !(0xffff << shift)) | u32::from(value) << shift;
    hardware.write_pci_config(function, offset & !3, updated);
}

/// Every function on bus 0 and the buses behind its bridges.
pub fn enumerate(hardware: &dyn Hardware) -> Vec<Function> {
    let mut functions = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut visited = [false; 256];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut visited[usize::from(bus)], true) {
            continue;
        }
        for device in 0..32 {
            scan_device(hardware, bus, device, &mut functions, &mut buses);
        }
    }
    functions.sort_by_key(|function| function.address);
    functions
}

fn scan_device(hardware: &dyn Hardware, bus: u8, device: u8, found: &mut Vec<Function>, buses: &mut Vec<u8>) {
    let first = PciAddress { bus, device, function: 0 };
    if hardware.read_pci_config(first, offset::VENDOR_DEVICE) & 0xffff == 0xffff {
        return;
    }
    let is_multifunction = read_config_u8(hardware, first, offset::HEADER_TYPE + 2) & 0x80 != 0;
    let count = if is_multifunction { 8 } else { 1 };
    for function in 0..count {
        let address = PciAddress { bus, device, function };
        let ids = hardware.read_pci_config(address, offset::VENDOR_DEVICE);
        if ids & 0xffff == 0xffff {
            continue;
        }
        let header_type = read_config_u8(hardware, address, offset::HEADER_TYPE + 2) & 0x7f;
        if header_type == 1 {
            // A PCI-to-PCI bridge: its secondary bus is scanned next.
            buses.push(read_config_u8(hardware, address, offset::BRIDGE_BUSES + 1));
            continue;
        }
        if header_type != 0 {
            continue;
        }
        found.push(describe(hardware, address, ids));
    }
}

fn describe(hardware: &dyn Hardware, address: PciAddress, ids: u32) -> Function {
    let class = hardware.read_pci_config(address, offset::CLASS);
    let interrupt = hardware.read_pci_config(address, offset::INTERRUPT);
    Function {
        address,
        vendor_id: ids as u16,
        device_id: (ids >> 16) as u16,
        subsystem_id: (hardware.read_pci_config(address, offset::SUBSYSTEM) >> 16) as u16,
        class: [(class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8],
        bars: read_bars(hardware, address),
        interrupt_line: interrupt as u8,
        interrupt_pin: (interrupt >> 8) as u8,
        capabilities: read_capabilities(hardware, address),
    }
}

/// Decodes and sizes the six BARs; decoding is off while they are probed.
fn read_bars(hardware: &dyn Hardware, function: PciAddress) -> [Bar; 6] {
    let command = hardware.read_pci_config(function, offset::COMMAND_STATUS) & 0xffff;
    hardware.write_pci_config(
        function,
        offset::COMMAND_STATUS,
        command & !(COMMAND_IO_SPACE | COMMAND_MEMORY_SPACE),
    );
    let mut bars = [Bar::None; 6];
    let mut index = 0;
    while index < 6 {
        let register = offset::BAR0 + 4 * index as u8;
        let original = hardware.read_pci_config(function, register);
        hardware.write_pci_config(function, register, u32::MAX);
        let probe = hardware.read_pci_config(function, register);
        hardware.write_pci_config(function, register, original);
        if original & 1 == 1 {
            let mask = probe & !0x3 & 0xffff;
            let size = (!mask).wrapping_add(1) & 0xffff;
            if mask != 0 && original & !0x3 != 0 {
                bars[index] = Bar::Io { port: (original & !0x3) as u16, size: size as u16 };
            }
            index += 1;
            continue;
        }
        let is_64_bit = (original >> 1) & 0b11 == 0b10;
        let (address, mask) = if is_64_bit && index < 5 {
            let high_register = register + 4;
            let high = hardware.read_pci_config(function, high_register);
            hardware.write_pci_config(function, high_register, u32::MAX);
            let high_probe = hardware.read_pci_config(function, high_register);
            hardware.write_pci_config(function, high_register, high);
            (
                u64::from(high) << 32 | u64::from(original & !0xf),
                u64::from(high_probe) << 32 | u64::from(probe & !0xf),
            )
        } else {
            (u64::from(original & !0xf), u64::from(probe & !0xf) | 0xffff_ffff_0000_0000)
        };
        if mask != 0xffff_ffff_0000_0000 && address != 0 {
            bars[index] = Bar::Memory { address, size: (!mask).wrapping_add(1) };
        }
        index += if is_64_bit { 2 } else { 1 };
    }
    hardware.write_pci_config(function, offset::COMMAND_STATUS, command);
    bars
}

/// Follows the capability list, refusing loops and pointers into the
/// header.
fn read_capabilities(hardware: &dyn Hardware, function: PciAddress) -> Vec<Capability> {
    let mut capabilities = Vec::new();
    if hardware.read_pci_config(function, offset::COMMAND_STATUS) >> 16 & STATUS_CAPABILITIES == 0 {
        return capabilities;
    }
    let mut pointer = read_config_u8(hardware, function, offset::CAPABILITIES) & !0x3;
    while pointer >= 0x40 && capabilities.len() < 48 {
        let header = hardware.read_pci_config(function, pointer);
        capabilities.push(Capability { id: header as u8, offset: pointer });
        pointer = (header >> 8) as u8 & !0x3;
    }
    capabilities
}
