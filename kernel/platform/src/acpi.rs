//! ACPI table decoding (ACPI 6.5 §5.2): pure functions over bytes.
//!
//! The RSDP leads to the RSDT or XSDT, which lists the other tables; the
//! FADT names the registers that put the machine to sleep, and the DSDT's
//! `\_S5_` object the value that means "soft off".

use rosv_abi::bytes::{u16_at, u32_at, u64_at};

const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";

/// The ACPI Root System Description Pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rsdp {
    /// Where it was found.
    pub paddr: u64,
    /// The OEM that built the tables.
    pub oem_id: [u8; 6],
    /// 0 for ACPI 1.0 (RSDT only), 2 and up for an XSDT.
    pub revision: u8,
    /// Physical address of the RSDT.
    pub rsdt_paddr: u32,
    /// Physical address of the XSDT (revision 2 and up), or 0.
    pub xsdt_paddr: u64,
}

impl Rsdp {
    /// Decodes an RSDP, checking its signature and checksum.
    pub fn decode(paddr: u64, bytes: &[u8]) -> Option<Self> {
        let first = bytes.get(..20)?;
        if &first[..8] != RSDP_SIGNATURE || checksum(first) != 0 {
            return None;
        }
        let revision = first[15];
        let xsdt_paddr = if revision >= 2 {
            let extended = bytes.get(..36)?;
            if checksum(extended) != 0 {
                return None;
            }
            rosv_abi::bytes::u64_at(extended, 24)?
        } else {
            0
        };
        let mut oem_id = [0u8; 6];
        oem_id.copy_from_slice(&first[9..15]);
        Some(Rsdp { paddr, oem_id, revision, rsdt_paddr: rosv_abi::bytes::u32_at(first, 16)?, xsdt_paddr })
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte))
}

/// Size of the header every system description table starts with.
pub const TABLE_HEADER_SIZE: usize = 36;

/// The header of a system description table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableHeader {
    /// Four ASCII characters, e.g. `FACP` for the FADT.
    pub signature: [u8; 4],
    /// Length of the whole table, header included.
    pub length: u32,
}

impl TableHeader {
    /// Decodes a table header; `None` if `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut signature = [0u8; 4];
        signature.copy_from_slice(bytes.get(..4)?);
        Some(TableHeader { signature, length: u32_at(bytes, 4)? })
    }
}

/// Whether a whole table's bytes sum to zero, as ACPI requires.
pub fn is_checksum_valid(table: &[u8]) -> bool {
    checksum(table) == 0
}

/// The table addresses an RSDT (4-byte entries) or XSDT (8-byte entries)
/// lists.
pub fn table_addresses(root: &[u8], is_extended: bool) -> impl Iterator<Item = u64> + '_ {
    let entry_size = if is_extended { 8 } else { 4 };
    let entries = root.get(TABLE_HEADER_SIZE..).unwrap_or(&[]);
    entries.chunks_exact(entry_size).map(move |entry| {
        if is_extended { u64_at(entry, 0).unwrap_or(0) } else { u64::from(u32_at(entry, 0).unwrap_or(0)) }
    })
}

/// The FADT flag that marks a hardware-reduced ACPI platform.
const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// `SLP_EN` in a PM1 control register.
const PM1_SLEEP_ENABLE: u16 = 1 << 13;
/// `SLP_EN` in a hardware-reduced sleep control register.
const SLEEP_CONTROL_ENABLE: u8 = 1 << 5;
/// Generic address structure: system memory and system I/O spaces.
const ADDRESS_SPACE_MEMORY: u8 = 0;
const ADDRESS_SPACE_IO: u8 = 1;

/// Where and what to write to enter the S5 (soft off) sleep state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftOff {
    /// Write a 16-bit value to the PM1a (and PM1b) control port.
    Pm1Control {
        /// The PM1a control block port.
        port_a: u16,
        /// The PM1b control block port, if any.
        port_b: Option<u16>,
        /// `SLP_TYPx | SLP_EN`.
        value: u16,
    },
    /// Write a byte to the sleep control register (hardware-reduced ACPI).
    SleepControl {
        /// Whether the register is an I/O port (else memory).
        is_port: bool,
        /// Its address.
        address: u64,
        /// `SLP_TYP | SLP_EN`.
        value: u8,
    },
}

/// The FADT fields this kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fadt {
    /// Physical address of the DSDT.
    pub dsdt_paddr: u64,
    is_hardware_reduced: bool,
    pm1a_control: Option<u16>,
    pm1b_control: Option<u16>,
    sleep_control: Option<(u8, u64)>,
}

impl Fadt {
    /// Decodes a FADT (ACPI 6.5 §5.2.9); `None` if it is too short.
    pub fn decode(table: &[u8]) -> Option<Self> {
        let length = table.len();
        let dsdt = u64::from(u32_at(table, 40)?);
        let extended_dsdt = if length >= 148 { u64_at(table, 140).unwrap_or(0) } else { 0 };
        let port = |offset: usize| {
            u32_at(table, offset).and_then(|port| u16::try_from(port).ok()).filter(|&port| port != 0)
        };
        let sleep_control = if length >= 256 {
            let space = table[244];
            let address = u64_at(table, 248)?;
            (address != 0 && (space == ADDRESS_SPACE_MEMORY || space == ADDRESS_SPACE_IO))
                .then_some((space, address))
        } else {
            None
        };
        Some(Fadt {
            dsdt_paddr: if extended_dsdt != 0 { extended_dsdt } else { dsdt },
            is_hardware_reduced: u32_at(table, 112).unwrap_or(0) & FADT_HW_REDUCED_ACPI != 0,
            pm1a_control: port(64),
            pm1b_control: port(68),
            sleep_control,
        })
    }

    /// How to enter S5 with sleep type `sleep_type` (from `\_S5_`).
    pub fn soft_off(&self, sleep_type: u8) -> Option<SoftOff> {
        if self.is_hardware_reduced {
            let (space, address) = self.sleep_control?;
            return Some(SoftOff::SleepControl {
                is_port: space == ADDRESS_SPACE_IO,
                address,
                value: ((sleep_type & 0x7) << 2) | SLEEP_CONTROL_ENABLE,
            });
        }
        Some(SoftOff::Pm1Control {
            port_a: self.pm1a_control?,
            port_b: self.pm1b_control,
            value: (u16::from(sleep_type & 0x7) << 10) | PM1_SLEEP_ENABLE,
        })
    }
}

/// A virtio-mmio device the DSDT describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioDevice {
    /// Physical address of its registers.
    pub base: u64,
    /// Bytes of registers.
    pub size: u64,
    /// Its interrupt (a GSI).
    pub gsi: u32,
    /// Whether the interrupt is level-triggered.
    pub is_level_triggered: bool,
}

/// The virtio-mmio devices in a DSDT: devices whose `_HID` is "LNRO0005",
/// with the `Memory32Fixed` and `Interrupt` descriptors of their `_CRS`.
///
/// Like [`s5_sleep_type`] this reads the AML's bytes rather than running it:
/// hypervisors (QEMU microvm, Firecracker) describe these devices with
/// constant resource templates that follow the `_HID` closely.
pub fn virtio_mmio_devices(dsdt: &[u8]) -> alloc::vec::Vec<MmioDevice> {
    const HID: &[u8] = b"LNRO0005";
    const MEMORY32_FIXED: [u8; 3] = [0x86, 0x09, 0x00];
    const EXTENDED_INTERRUPT: u8 = 0x89;
    const SEARCH_WINDOW: usize = 160;
    let starts: alloc::vec::Vec<usize> =
        dsdt.windows(HID.len()).enumerate().filter(|(_, window)| *window == HID).map(|(at, _)| at).collect();
    let mut devices = alloc::vec::Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(dsdt.len()).min(start + SEARCH_WINDOW);
        let scope = &dsdt[start..end];
        let memory = scope
            .windows(3)
            .position(|window| window == MEMORY32_FIXED)
            .and_then(|at| Some((u32_at(scope, at + 4)?, u32_at(scope, at + 8)?)));
        let interrupt = scope.iter().enumerate().find_map(|(at, &byte)| {
            // 0x89, length (u16), flags, count, then the interrupts (u32).
            if byte != EXTENDED_INTERRUPT || *scope.get(at + 4)? == 0 {
                return None;
            }
            let flags = *scope.get(at + 3)?;
            Some((u32_at(scope, at + 5)?, flags & 0b10 == 0))
        });
        if let (Some((base, size)), Some((gsi, is_level_triggered))) = (memory, interrupt)
            && size > 0
        {
            devices.push(MmioDevice {
                base: u64::from(base),
                size: u64::from(size),
                gsi,
                is_level_triggered,
            });
        }
    }
    devices
}

/// The S5 sleep type (`SLP_TYPa`) from the DSDT's `\_S5_` package.
///
/// This reads the AML directly rather than interpreting it: `_S5_` is always
/// a `Name` whose value is a package of integers.
pub fn s5_sleep_type(dsdt: &[u8]) -> Option<u8> {
    const PACKAGE_OP: u8 = 0x12;
    let at = dsdt.windows(4).position(|window| window == b"_S5_")?;
    let mut cursor = at + 4;
    if *dsdt.get(cursor)? != PACKAGE_OP {
        return None;
    }
    cursor += 1;
    // PkgLength: the top two bits of the lead byte count the bytes after it.
    let extra_length_bytes = usize::from(dsdt.get(cursor)? >> 6);
    cursor += 1 + extra_length_bytes;
    cursor += 1; // NumElements
    match *dsdt.get(cursor)? {
        0x00 => Some(0),                                           // ZeroOp
        0x01 => Some(1),                                           // OneOp
        0x0a => dsdt.get(cursor + 1).copied(),                     // BytePrefix
        0x0b => u16_at(dsdt, cursor + 1).map(|value| value as u8), // WordPrefix
        _ => None,
    }
}

/// A processor the firmware lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processor {
    /// Its local APIC id.
    pub apic_id: u32,
    /// Whether it can be started (enabled, or online-capable).
    pub is_usable: bool,
}

/// An I/O APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    /// Its id.
    pub id: u8,
    /// Physical address of its registers.
    pub address: u64,
    /// The first global system interrupt it serves.
    pub gsi_base: u32,
}

/// A legacy IRQ that arrives on another global system interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptOverride {
    /// The ISA IRQ.
    pub irq: u8,
    /// The global system interrupt it is wired to.
    pub gsi: u32,
    /// MPS INTI flags: polarity (bits 0-1) and trigger mode (bits 2-3).
    pub flags: u16,
}

/// What the MADT (ACPI 6.5 §5.2.12) or the MP table says about interrupts
/// and processors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterruptTopology {
    /// Physical address of the local APICs' registers.
    pub local_apic_address: u64,
    /// The processors, in table order.
    pub processors: alloc::vec::Vec<Processor>,
    /// The I/O APICs.
    pub io_apics: alloc::vec::Vec<IoApic>,
    /// Interrupt source overrides.
    pub overrides: alloc::vec::Vec<InterruptOverride>,
}

/// Decodes a MADT; `None` if it is too short to have its fixed fields.
pub fn decode_madt(table: &[u8]) -> Option<InterruptTopology> {
    const PROCESSOR_LOCAL_APIC: u8 = 0;
    const IO_APIC: u8 = 1;
    const INTERRUPT_SOURCE_OVERRIDE: u8 = 2;
    const LOCAL_APIC_ADDRESS_OVERRIDE: u8 = 5;
    const PROCESSOR_LOCAL_X2APIC: u8 = 9;
    const ENABLED: u32 = 1;
    const ONLINE_CAPABLE: u32 = 2;
    let mut topology = InterruptTopology {
        local_apic_address: u64::from(u32_at(table, 36)?),
        ..InterruptTopology::default()
    };
    let mut offset = 44;
    while let (Some(&kind), Some(&length)) = (table.get(offset), table.get(offset + 1)) {
        let length = usize::from(length);
        let Some(entry) = table.get(offset..offset + length).filter(|_| length >= 2) else {
            break;
        };
        let usable = |flags: u32| flags & (ENABLED | ONLINE_CAPABLE) != 0;
        match kind {
            PROCESSOR_LOCAL_APIC if length >= 8 => topology.processors.push(Processor {
                apic_id: u32::from(entry[3]),
                is_usable: usable(u32_at(entry, 4).unwrap_or(0)),
            }),
            PROCESSOR_LOCAL_X2APIC if length >= 16 => topology.processors.push(Processor {
                apic_id: u32_at(entry, 4).unwrap_or(0),
                is_usable: usable(u32_at(entry, 8).unwrap_or(0)),
            }),
            IO_APIC if length >= 12 => topology.io_apics.push(IoApic {
                id: entry[2],
                address: u64::from(u32_at(entry, 4).unwrap_or(0)),
                gsi_base: u32_at(entry, 8).unwrap_or(0),
            }),
            INTERRUPT_SOURCE_OVERRIDE if length >= 10 => topology.overrides.push(InterruptOverride {
                irq: entry[3],
                gsi: u32_at(entry, 4).unwrap_or(0),
                flags: u16_at(entry, 8).unwrap_or(0),
            }),
            LOCAL_APIC_ADDRESS_OVERRIDE if length >= 12 => {
                topology.local_apic_address = u64_at(entry, 4).unwrap_or(topology.local_apic_address);
            }
            _ => {}
        }
        offset += length;
    }
    Some(topology)
}

/// Decodes an Intel MP configuration table ("PCMP", MP specification 1.4
/// §4.2). Entries are read up to the table's base length rather than its
/// entry count, which some hypervisors leave at zero.
pub fn decode_mp_configuration(table: &[u8]) -> Option<InterruptTopology> {
    const PROCESSOR: u8 = 0;
    const BUS: u8 = 1;
    const IO_APIC: u8 = 2;
    const IO_INTERRUPT: u8 = 3;
    const LOCAL_INTERRUPT: u8 = 4;
    if table.get(..4)? != b"PCMP" {
        return None;
    }
    let base_length = usize::from(u16_at(table, 4)?).min(table.len());
    let mut topology = InterruptTopology {
        local_apic_address: u64::from(u32_at(table, 36)?),
        ..InterruptTopology::default()
    };
    let mut offset = 44;
    while offset < base_length {
        let kind = table[offset];
        let length = match kind {
            PROCESSOR => 20,
            BUS | IO_APIC | IO_INTERRUPT | LOCAL_INTERRUPT => 8,
            _ => break,
        };
        let Some(entry) = table.get(offset..offset + length) else {
            break;
        };
        match kind {
            PROCESSOR => topology
                .processors
                .push(Processor { apic_id: u32::from(entry[1]), is_usable: entry[3] & 1 != 0 }),
            IO_APIC if entry[3] & 1 != 0 => topology.io_apics.push(IoApic {
                id: entry[1],
                address: u64::from(u32_at(entry, 4).unwrap_or(0)),
                gsi_base: 0,
            }),
            _ => {}
        }
        offset += length;
    }
    Some(topology)
}

/// Whether `bytes` start an MP floating pointer ("_MP_", 16 bytes, summing
/// to zero); returns the configuration table's address.
pub fn decode_mp_floating_pointer(bytes: &[u8]) -> Option<u32> {
    let pointer = bytes.get(..16)?;
    if &pointer[..4] != b"_MP_" || checksum(pointer) != 0 {
        return None;
    }
    u32_at(pointer, 4).filter(|&address| address != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsdp(revision: u8) -> [u8; 36] {
        let mut bytes = [0u8; 36];
        bytes[..8].copy_from_slice(RSDP_SIGNATURE);
        bytes[9..15].copy_from_slice(b"FIRECK");
        bytes[15] = revision;
        bytes[16..20].copy_from_slice(&0x1234u32.to_le_bytes());
        bytes[24..32].copy_from_slice(&0xe0100u64.to_le_bytes());
        bytes[8] = 0u8.wrapping_sub(checksum(&bytes[..20]));
        bytes[32] = 0u8.wrapping_sub(checksum(&bytes[..36]));
        bytes
    }

    #[test]
    fn decodes_version_two() {
        let found = Rsdp::decode(0xe0000, &rsdp(2)).unwrap();
        assert_eq!(found.xsdt_paddr, 0xe0100);
        assert_eq!(found.rsdt_paddr, 0x1234);
        assert_eq!(&found.oem_id, b"FIRECK");
    }

    fn fadt_bytes(length: usize, flags: u32) -> alloc::vec::Vec<u8> {
        let mut table = alloc::vec![0u8; length];
        table[..4].copy_from_slice(b"FACP");
        table[4..8].copy_from_slice(&(length as u32).to_le_bytes());
        table[40..44].copy_from_slice(&0x1000u32.to_le_bytes());
        table[64..68].copy_from_slice(&0x604u32.to_le_bytes());
        table[112..116].copy_from_slice(&flags.to_le_bytes());
        if length >= 256 {
            table[244] = 1;
            table[248..256].copy_from_slice(&0x3c0u64.to_le_bytes());
        }
        table
    }

    #[test]
    fn legacy_fadt_uses_the_pm1_control_port() {
        let fadt = Fadt::decode(&fadt_bytes(244, 0)).unwrap();
        assert_eq!(fadt.dsdt_paddr, 0x1000);
        assert_eq!(
            fadt.soft_off(5),
            Some(SoftOff::Pm1Control { port_a: 0x604, port_b: None, value: 0x3400 })
        );
    }

    #[test]
    fn hardware_reduced_fadt_uses_the_sleep_control_register() {
        let fadt = Fadt::decode(&fadt_bytes(276, FADT_HW_REDUCED_ACPI)).unwrap();
        assert_eq!(
            fadt.soft_off(5),
            Some(SoftOff::SleepControl { is_port: true, address: 0x3c0, value: 0x34 })
        );
        let without_register = Fadt::decode(&fadt_bytes(244, FADT_HW_REDUCED_ACPI)).unwrap();
        assert_eq!(without_register.soft_off(5), None);
    }

    #[test]
    fn finds_the_s5_sleep_type_in_aml() {
        // Name (_S5_, Package (4) { 5, 0, 0, 0 }) as compilers emit it.
        let aml = [0x10, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00];
        assert_eq!(s5_sleep_type(&aml), Some(5));
        let zero = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(s5_sleep_type(&zero), Some(0));
        assert_eq!(s5_sleep_type(b"no such object"), None);
        assert_eq!(s5_sleep_type(b"_S5_"), None);
    }

    #[test]
    fn finds_virtio_mmio_devices_in_aml() {
        // Device (VR00) { Name (_HID, "LNRO0005") ... Name (_CRS,
        // ResourceTemplate () { Memory32Fixed (ReadWrite, 0xFEB00000, 0x200)
        // Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) {16} }) }
        let device = |base: u32, gsi: u32, flags: u8| {
            let mut aml =
                alloc::vec![0x5b, 0x82, 0x3a, b'V', b'R', b'0', b'0', 0x08, b'_', b'H', b'I', b'D', 0x0d];
            aml.extend_from_slice(b"LNRO0005\0");
            aml.extend_from_slice(&[0x08, b'_', b'C', b'R', b'S', 0x11, 0x1a, 0x0a, 0x17]);
            aml.extend_from_slice(&[0x86, 0x09, 0x00, 0x01]);
            aml.extend_from_slice(&base.to_le_bytes());
            aml.extend_from_slice(&0x200u32.to_le_bytes());
            aml.extend_from_slice(&[0x89, 0x06, 0x00, flags, 0x01]);
            aml.extend_from_slice(&gsi.to_le_bytes());
            aml.extend_from_slice(&[0x79, 0x00]);
            aml
        };
        let mut dsdt = device(0xfeb0_0000, 16, 0x01);
        dsdt.extend(device(0xfeb0_0200, 17, 0x03));
        let devices = virtio_mmio_devices(&dsdt);
        assert_eq!(
            devices,
            [
                MmioDevice { base: 0xfeb0_0000, size: 0x200, gsi: 16, is_level_triggered: true },
                MmioDevice { base: 0xfeb0_0200, size: 0x200, gsi: 17, is_level_triggered: false },
            ]
        );
        assert!(virtio_mmio_devices(b"LNRO0005 without resources").is_empty());
        assert!(virtio_mmio_devices(&dsdt[..dsdt.len() - 8]).len() == 1, "a cut-off device is skipped");
    }

    #[test]
    fn lists_root_table_entries() {
        let mut xsdt = alloc::vec![0u8; TABLE_HEADER_SIZE + 16];
        xsdt[TABLE_HEADER_SIZE..TABLE_HEADER_SIZE + 8].copy_from_slice(&0xe1000u64.to_le_bytes());
        xsdt[TABLE_HEADER_SIZE + 8..].copy_from_slice(&0xe2000u64.to_le_bytes());
        let addresses: alloc::vec::Vec<u64> = table_addresses(&xsdt, true).collect();
        assert_eq!(addresses, [0xe1000, 0xe2000]);
        assert_eq!(table_addresses(&xsdt, false).count(), 4);
    }

    #[test]
    fn decodes_a_madt() {
        let mut table = alloc::vec![0u8; 44];
        table[36..40].copy_from_slice(&0xfee0_0000u32.to_le_bytes());
        // Two local APICs (the second disabled), an x2APIC, an I/O APIC and
        // an override of IRQ 0 to GSI 2.
        table.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
        table.extend_from_slice(&[0, 8, 1, 1, 0, 0, 0, 0]);
        table.extend_from_slice(&[9, 16, 0, 0, 0x00, 0x01, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        table.extend_from_slice(&[1, 12, 5, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0]);
        table.extend_from_slice(&[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
        table.extend_from_slice(&[0, 0]);
        let topology = decode_madt(&table).unwrap();
        assert_eq!(topology.local_apic_address, 0xfee0_0000);
        let processors: alloc::vec::Vec<(u32, bool)> =
            topology.processors.iter().map(|cpu| (cpu.apic_id, cpu.is_usable)).collect();
        assert_eq!(processors, [(0, true), (1, false), (256, true)]);
        assert_eq!(topology.io_apics, [IoApic { id: 5, address: 0xfec0_0000, gsi_base: 0 }]);
        assert_eq!(topology.overrides, [InterruptOverride { irq: 0, gsi: 2, flags: 0 }]);
    }

    #[test]
    fn decodes_an_mp_table_by_length_not_count() {
        let mut table = alloc::vec![0u8; 44];
        table[..4].copy_from_slice(b"PCMP");
        table[36..40].copy_from_slice(&0xfee0_0000u32.to_le_bytes());
        let mut processor = [0u8; 20];
        processor[1] = 0;
        processor[3] = 3;
        table.extend_from_slice(&processor);
        processor[1] = 1;
        processor[3] = 1;
        table.extend_from_slice(&processor);
        table.extend_from_slice(&[2, 2, 0x11, 1, 0x00, 0x00, 0xc0, 0xfe]);
        table.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        let length = table.len() as u16;
        table[4..6].copy_from_slice(&length.to_le_bytes());
        // The entry count (offset 34) stays 0, as QEMU's microvm writes it.
        let topology = decode_mp_configuration(&table).unwrap();
        assert_eq!(topology.processors.len(), 2);
        assert_eq!(topology.processors[1].apic_id, 1);
        assert_eq!(topology.io_apics, [IoApic { id: 2, address: 0xfec0_0000, gsi_base: 0 }]);
        assert_eq!(decode_mp_configuration(b"XXXX"), None);
    }

    #[test]
    fn finds_the_mp_floating_pointer() {
        let mut pointer = [0u8; 16];
        pointer[..4].copy_from_slice(b"_MP_");
        pointer[4..8].copy_from_slice(&0x9fc10u32.to_le_bytes());
        pointer[8] = 1;
        pointer[10] = 0u8.wrapping_sub(checksum(&pointer));
        assert_eq!(decode_mp_floating_pointer(&pointer), Some(0x9fc10));
        pointer[9] ^= 1;
        assert_eq!(decode_mp_floating_pointer(&pointer), None);
    }

    #[test]
    fn refuses_bad_checksums() {
        let mut bytes = rsdp(0);
        bytes[10] ^= 1;
        assert_eq!(Rsdp::decode(0, &bytes), None);
        let mut bytes = rsdp(2);
        bytes[30] ^= 1;
        assert_eq!(Rsdp::decode(0, &bytes), None);
    }
}
