//! Opening a virtio PCI function: which interface, which interrupt.
//!
//! Vendor 0x1af4 device ids 0x1000–0x103f are legacy or transitional
//! devices (their type in the subsystem id), 0x1040–0x107f modern ones
//! (type = id − 0x1040) (virtio 1.2 §4.1.2). A function with the modern
//! capabilities is driven through them, even when transitional; otherwise
//! through the legacy I/O BAR. Interrupts use MSI-X entry 0 when the
//! function has MSI-X and the caller supplies a message, else INTx.

use alloc::boxed::Box;

use rosv_virtio::spec::DeviceType;

use super::Transport;
use super::pci_legacy::PciLegacyTransport;
use super::pci_modern::{COMMON_CONFIG_SIZE, ModernWindows, PciModernTransport};
use crate::hardware::{Hardware, RegisterWindow};
use crate::pci::{Bar, CAPABILITY_VENDOR, Function, Msix, read_config_u8};

/// The PCI vendor id of virtio devices.
pub const VENDOR_ID: u16 = 0x1af4;

/// Structure types of the virtio vendor capabilities (§4.1.4).
mod structure {
    pub const COMMON: u8 = 1;
    pub const NOTIFY: u8 = 2;
    pub const ISR: u8 = 3;
    pub const DEVICE: u8 = 4;
}

/// How an opened device interrupts.
#[derive(Debug)]
pub enum InterruptRoute {
    /// Through MSI-X entry 0, already pointed at the caller's message.
    Msix(Msix),
    /// Through its INTx pin, wired to this I/O APIC input (level-triggered).
    Intx(u8),
    /// It has no interrupt the kernel can use: the driver must poll.
    None,
}

/// Why a function could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not a virtio function.
    NotVirtio,
    /// A modern structure's BAR is missing or too small.
    BadStructure(u8),
    /// A register window could not be mapped.
    Unmapped,
    /// A legacy device without an I/O BAR 0.
    NoLegacyPorts,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::NotVirtio => formatter.write_str("not a virtio device"),
            OpenError::BadStructure(kind) => {
                write!(formatter, "virtio structure {kind} lies outside its BAR")
            }
            OpenError::Unmapped => formatter.write_str("cannot map its registers"),
            OpenError::NoLegacyPorts => formatter.write_str("legacy device without an I/O BAR"),
        }
    }
}

/// The device type of a virtio function, if it is one.
pub fn device_type(function: &Function) -> Option<DeviceType> {
    if function.vendor_id != VENDOR_ID {
        return None;
    }
    match function.device_id {
        0x1000..=0x103f => Some(DeviceType::from_id(u32::from(function.subsystem_id))),
        0x1040..=0x107f => Some(DeviceType::from_id(u32::from(function.device_id - 0x1040))),
        _ => None,
    }
}

/// A virtio structure named by a vendor capability.
#[derive(Debug, Clone, Copy)]
struct Structure {
    bar: u8,
    offset: u32,
    length: u32,
    capability_offset: u8,
}

fn find_structure(function: &Function, hardware: &dyn Hardware, kind: u8) -> Option<Structure> {
    function.capabilities.iter().filter(|capability| capability.id == CAPABILITY_VENDOR).find_map(
        |capability| {
            let at = capability.offset;
            (read_config_u8(hardware, function.address, at + 3) == kind).then(|| Structure {
                bar: read_config_u8(hardware, function.address, at + 4),
                offset: hardware.read_pci_config(function.address, at + 8),
                length: hardware.read_pci_config(function.address, at + 12),
                capability_offset: at,
            })
        },
    )
}

fn map_structure(
    function: &Function,
    hardware: &dyn Hardware,
    structure: Structure,
    kind: u8,
    minimum: usize,
) -> Result<Box<dyn RegisterWindow>, OpenError> {
    let length = structure.length as usize;
    if length < minimum {
        return Err(OpenError::BadStructure(kind));
    }
    let bar = function.bars.get(usize::from(structure.bar)).copied().filter(Bar::is_assigned);
    match bar.unwrap_or(Bar::None) {
        Bar::Memory { address, size, .. } if u64::from(structure.offset) + length as u64 <= size => {
            hardware.map_registers(address + u64::from(structure.offset), length).ok_or(OpenError::Unmapped)
        }
        Bar::Io { port, size } if structure.offset as usize + length <= usize::from(size) => {
            hardware.io_ports(port + structure.offset as u16, length as u16).ok_or(OpenError::Unmapped)
        }
        _ => Err(OpenError::BadStructure(kind)),
    }
}

fn modern_windows(function: &Function, hardware: &dyn Hardware) -> Result<Option<ModernWindows>, OpenError> {
    let Some(common) = find_structure(function, hardware, structure::COMMON) else {
        return Ok(None);
    };
    let notify = find_structure(function, hardware, structure::NOTIFY).ok_or(OpenError::BadStructure(2))?;
    let isr = find_structure(function, hardware, structure::ISR).ok_or(OpenError::BadStructure(3))?;
    let device = find_structure(function, hardware, structure::DEVICE);
    let notify_multiplier = hardware.read_pci_config(function.address, notify.capability_offset + 16);
    Ok(Some(ModernWindows {
        common: map_structure(function, hardware, common, structure::COMMON, COMMON_CONFIG_SIZE)?,
        notify: map_structure(function, hardware, notify, structure::NOTIFY, 2)?,
        notify_size: notify.length as usize,
        notify_multiplier,
        isr: map_structure(function, hardware, isr, structure::ISR, 1)?,
        device: device
            .map(|device| map_structure(function, hardware, device, structure::DEVICE, 1))
            .transpose()?,
    }))
}

/// Opens `function`: turns on its decoding and bus mastering, points MSI-X
/// entry 0 at `message` (address, data) when it has MSI-X, and returns its
/// transport and interrupt route.
pub fn open(
    function: &Function,
    hardware: &dyn Hardware,
    message: Option<(u64, u32)>,
) -> Result<(Box<dyn Transport>, InterruptRoute), OpenError> {
    let device_type = device_type(function).ok_or(OpenError::NotVirtio)?;
    function.enable(hardware);
    let windows = modern_windows(function, hardware)?;
    let msix = message.and_then(|(address, data)| {
        let msix = Msix::new(function, hardware).ok()?;
        msix.set_entry(0, address, data);
        msix.enable(hardware);
        Some(msix)
    });
    let queue_vector = msix.as_ref().map(|_| 0);
    let transport: Box<dyn Transport> = match windows {
        Some(windows) => Box::new(PciModernTransport::new(windows, device_type, queue_vector)),
        None => {
            let Bar::Io { port, size } = function.bars[0] else {
                return Err(OpenError::NoLegacyPorts);
            };
            if port == 0 {
                return Err(OpenError::NoLegacyPorts);
            }
            let registers = hardware.io_ports(port, size).ok_or(OpenError::Unmapped)?;
            Box::new(PciLegacyTransport::new(registers, device_type, queue_vector))
        }
    };
    let route = match msix {
        Some(msix) => InterruptRoute::Msix(msix),
        None if function.interrupt_pin != 0 && function.interrupt_line != 0xff => {
            InterruptRoute::Intx(function.interrupt_line)
        }
        None => InterruptRoute::None,
    };
    Ok((transport, route))
}
