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

/// A base address register, decoded and sized. An address of 0 means the
/// firmware left it unassigned (see [`assign_resources`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented.
    None,
    /// Memory-mapped registers.
    Memory {
        /// Physical address.
        address: u64,
        /// Size in bytes.
        size: u64,
        /// Whether it takes two registers (a 64-bit address).
        is_64_bit: bool,
    },
    /// I/O ports.
    Io {
        /// First port.
        port: u16,
        /// Number of ports.
        size: u16,
    },
}

impl Bar {
    /// Whether it is implemented and has an address.
    pub fn is_assigned(&self) -> bool {
        match *self {
            Bar::None => false,
            Bar::Memory { address, .. } => address != 0,
            Bar::Io { port, .. } => port != 0,
        }
    }
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

/// Address ranges from which unassigned BARs get addresses.
#[derive(Debug, Clone)]
pub struct ResourceWindows {
    /// I/O ports.
    pub io: core::ops::Range<u32>,
    /// Memory addresses below 4 GiB.
    pub memory: core::ops::Range<u64>,
}

/// Gives every unassigned BAR an address, the way firmware would: each
/// naturally aligned, past the BARs already assigned in the window,
/// largest first. Minimal firmware (qboot) leaves this to the kernel.
/// BARs that do not fit stay unassigned, with a warning.
pub fn assign_resources(hardware: &dyn Hardware, functions: &mut [Function], windows: &ResourceWindows) {
    let assigned_end = |in_window: &dyn Fn(&Bar) -> Option<u64>| {
        functions.iter().flat_map(|function| function.bars.iter()).filter_map(in_window).max()
    };
    let mut next_io = assigned_end(&|bar| match *bar {
        Bar::Io { port, size } if port != 0 && windows.io.contains(&u32::from(port)) => {
            Some(u64::from(port) + u64::from(size))
        }
        _ => None,
    })
    .map_or(u64::from(windows.io.start), |end| end.max(u64::from(windows.io.start)));
    let mut next_memory = assigned_end(&|bar| match *bar {
        Bar::Memory { address, size, .. } if address != 0 && windows.memory.contains(&address) => {
            Some(address + size)
        }
        _ => None,
    })
    .map_or(windows.memory.start, |end| end.max(windows.memory.start));
    let mut pending: Vec<(usize, usize, Bar)> = functions
        .iter()
        .enumerate()
        .flat_map(|(which, function)| {
            function.bars.iter().enumerate().map(move |(index, bar)| (which, index, *bar))
        })
        .filter(|(_, _, bar)| *bar != Bar::None && !bar.is_assigned())
        .collect();
    pending.sort_by_key(|(_, _, bar)| core::cmp::Reverse(bar_size(bar)));
    for (which, index, bar) in pending {
        let function = &mut functions[which];
        let size = bar_size(&bar);
        let register = offset::BAR0 + 4 * index as u8;
        match bar {
            Bar::Io { size: count, .. } => {
                let start = next_io.div_ceil(size) * size;
                if start + size > u64::from(windows.io.end) {
                    log::warn!("pci {}: no room for BAR {index} ({size} ports)", function.address);
                    continue;
                }
                hardware.write_pci_config(function.address, register, start as u32 | 1);
                function.bars[index] = Bar::Io { port: start as u16, size: count };
                next_io = start + size;
            }
            Bar::Memory { is_64_bit, .. } => {
                let start = next_memory.div_ceil(size) * size;
                if start + size > windows.memory.end {
                    log::warn!("pci {}: no room for BAR {index} ({size:#x} bytes)", function.address);
                    continue;
                }
                let low = hardware.read_pci_config(function.address, register) & 0xf;
                hardware.write_pci_config(function.address, register, start as u32 | low);
                if is_64_bit {
                    hardware.write_pci_config(function.address, register + 4, (start >> 32) as u32);
                }
                function.bars[index] = Bar::Memory { address: start, size, is_64_bit };
                next_memory = start + size;
            }
            Bar::None => {}
        }
    }
}

fn bar_size(bar: &Bar) -> u64 {
    match *bar {
        Bar::None => 0,
        Bar::Memory { size, .. } => size.max(16),
        Bar::Io { size, .. } => u64::from(size).max(4),
    }
}

/// The ISA interrupt a function's INTx pin reaches through a PIIX3/PIIX4
/// PCI-to-ISA bridge (QEMU's `pc` machine), read from the bridge's PIRQ
/// route control registers (0x60–0x63). The interrupt-line register is
/// only what firmware wrote and may disagree (qboot's does). On bus 0,
/// device `d`'s pin `p` (1 = INTA) drives PIRQ `(d − 1 + p − 1) mod 4`,
/// as QEMU wires the slots. `None` without such a bridge, on other buses,
/// or with the PIRQ disabled.
pub fn piix_intx_irq(hardware: &dyn Hardware, functions: &[Function], function: &Function) -> Option<u8> {
    const INTEL: u16 = 0x8086;
    const PIIX3_ISA: u16 = 0x7000;
    const PIIX4_ISA: u16 = 0x7110;
    const PIRQ_ROUTE_CONTROL: u8 = 0x60;
    const PIRQ_DISABLED: u8 = 0x80;
    let bridge = functions.iter().find(|candidate| {
        candidate.vendor_id == INTEL && matches!(candidate.device_id, PIIX3_ISA | PIIX4_ISA)
    })?;
    if function.address.bus != 0 || function.interrupt_pin == 0 {
        return None;
    }
    let pirq = (function.address.device + function.interrupt_pin + 2) % 4;
    let route = read_config_u8(hardware, bridge.address, PIRQ_ROUTE_CONTROL + pirq);
    (route & PIRQ_DISABLED == 0 && route & 0x0f != 0).then_some(route & 0x0f)
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
            if mask != 0 {
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
        if mask != 0xffff_ffff_0000_0000 && mask != 0 {
            bars[index] = Bar::Memory { address, size: (!mask).wrapping_add(1), is_64_bit };
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
