//! MSI-X: a function's table of message-signalled interrupts (PCI Local
//! Bus 3.0 §6.8.2).
//!
//! The capability names the BAR and offset of the table; each 16-byte
//! entry holds a message address, data and a mask bit. Enabling MSI-X
//! switches the function from its INTx pin to these messages.

use alloc::boxed::Box;

use super::{Bar, CAPABILITY_MSIX, Function, read_config_u16, write_config_u16};
use crate::hardware::{Hardware, RegisterWindow};

const CONTROL_ENABLE: u16 = 1 << 15;
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
const ENTRY_SIZE: usize = 16;
const VECTOR_CONTROL_MASKED: u32 = 1;

/// Why MSI-X cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsixError {
    /// The function has no MSI-X capability.
    Absent,
    /// The table's BAR is not an assigned memory BAR, or too small.
    BadTable,
    /// The table could not be mapped.
    Unmapped,
}

/// A function's MSI-X table, mapped.
pub struct Msix {
    function: super::PciAddress,
    capability_offset: u8,
    table: Box<dyn RegisterWindow>,
    entries: u16,
}

impl core::fmt::Debug for Msix {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Msix")
            .field("function", &self.function)
            .field("entries", &self.entries)
            .finish()
    }
}

impl Msix {
    /// Finds and maps the table of `function`, with every entry masked.
    pub fn new(function: &Function, hardware: &dyn Hardware) -> Result<Self, MsixError> {
        let capability = function.capability(CAPABILITY_MSIX).ok_or(MsixError::Absent)?;
        let control = read_config_u16(hardware, function.address, capability.offset + 2);
        let entries = (control & 0x7ff) + 1;
        let location = hardware.read_pci_config(function.address, capability.offset + 4);
        let Some(Bar::Memory { address, size, .. }) =
            function.bars.get(location as usize & 0x7).copied().filter(Bar::is_assigned)
        else {
            return Err(MsixError::BadTable);
        };
        let table_offset = u64::from(location & !0x7);
        let table_size = usize::from(entries) * ENTRY_SIZE;
        if table_offset + table_size as u64 > size {
            return Err(MsixError::BadTable);
        }
        let table = hardware.map_registers(address + table_offset, table_size).ok_or(MsixError::Unmapped)?;
        let msix = Msix { function: function.address, capability_offset: capability.offset, table, entries };
        for entry in 0..entries {
            msix.table.write_u32(usize::from(entry) * ENTRY_SIZE + 12, VECTOR_CONTROL_MASKED);
        }
        Ok(msix)
    }

    /// Number of entries in the table.
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Points entry `entry` at a message (`address`, `data`) and unmasks it.
    pub fn set_entry(&self, entry: u16, address: u64, data: u32) {
        assert!(entry < self.entries, "MSI-X entry {entry} past a table of {}", self.entries);
        let base = usize::from(entry) * ENTRY_SIZE;
        self.table.write_u32(base, address as u32);
        self.table.write_u32(base + 4, (address >> 32) as u32);
        self.table.write_u32(base + 8, data);
        self.table.write_u32(base + 12, 0);
    }

    /// Switches the function from INTx to MSI-X.
    pub fn enable(&self, hardware: &dyn Hardware) {
        let offset = self.capability_offset + 2;
        let control = read_config_u16(hardware, self.function, offset);
        write_config_u16(
            hardware,
            self.function,
            offset,
            (control | CONTROL_ENABLE) & !CONTROL_FUNCTION_MASK,
        );
    }
}
