//! The Intel MP table: how a guest without ACPI finds its processors.
//!
//! [`encode`] writes an MP floating pointer (MP specification 1.4 §4.1)
//! immediately followed by an MP configuration table (§4.2): one processor
//! entry per vCPU (local APIC id = vCPU index, the first one the bootstrap
//! processor), an ISA bus, the I/O APIC of KVM's in-kernel irqchip, ISA
//! IRQs 0-15 wired to the same-numbered I/O APIC inputs, and the local
//! interrupts of virtual-wire mode (LINT0 ExtINT, LINT1 NMI).

/// Size of the MP floating pointer structure.
pub const FLOATING_POINTER_SIZE: usize = 16;
/// Size of the configuration table header.
pub const HEADER_SIZE: usize = 44;
/// Size of a processor entry.
pub const PROCESSOR_ENTRY_SIZE: usize = 20;
/// Size of every other base-table entry.
pub const ENTRY_SIZE: usize = 8;
/// ISA interrupts wired to the I/O APIC.
pub const ISA_IRQS: u8 = 16;

/// Specification revision 1.4.
const SPEC_REVISION: u8 = 4;
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IO_APIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
const PROCESSOR_ENABLED: u8 = 1;
const PROCESSOR_BOOTSTRAP: u8 = 2;
const IO_APIC_ENABLED: u8 = 1;
/// Local APIC version of an integrated APIC (as KVM reports it).
const LOCAL_APIC_VERSION: u8 = 0x14;
/// I/O APIC version of the 82093AA that KVM models.
const IO_APIC_VERSION: u8 = 0x11;
/// CPU signature: family 6 (an assumed P6-class processor).
const CPU_SIGNATURE: u32 = 0x600;
/// CPUID.1:EDX feature flags: FPU (bit 0) and on-chip APIC (bit 9).
const CPU_FEATURES: u32 = (1 << 9) | 1;
const INTERRUPT_VECTORED: u8 = 0;
const INTERRUPT_NMI: u8 = 1;
const INTERRUPT_EXTINT: u8 = 3;
/// Polarity and trigger "conform to the bus".
const INTERRUPT_FLAGS_CONFORMING: u16 = 0;
const ISA_BUS_ID: u8 = 0;
/// Destination "every local APIC" of a local interrupt entry.
const ALL_LOCAL_APICS: u8 = 0xff;

/// What the table describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpConfiguration {
    /// Number of processors (local APIC ids 0 to `cpus - 1`).
    pub cpus: u8,
    /// Physical address of the local APICs.
    pub local_apic_paddr: u32,
    /// Physical address of the I/O APIC.
    pub io_apic_paddr: u32,
}

impl MpConfiguration {
    /// The I/O APIC's id: the first one after the processors'.
    pub fn io_apic_id(&self) -> u8 {
        self.cpus
    }
}

/// The floating pointer and configuration table, as they go at `paddr`.
pub fn encode(configuration: &MpConfiguration, paddr: u32) -> Vec<u8> {
    let table_paddr = paddr + FLOATING_POINTER_SIZE as u32;
    let mut bytes = floating_pointer(table_paddr).to_vec();
    bytes.extend_from_slice(&configuration_table(configuration));
    bytes
}

fn floating_pointer(table_paddr: u32) -> [u8; FLOATING_POINTER_SIZE] {
    let mut pointer = [0u8; FLOATING_POINTER_SIZE];
    pointer[0..4].copy_from_slice(b"_MP_");
    pointer[4..8].copy_from_slice(&table_paddr.to_le_bytes());
    pointer[8] = 1; // length in 16-byte paragraphs
    pointer[9] = SPEC_REVISION;
    // Feature bytes 1 and 2 stay 0: a configuration table is present, and
    // the IMCR is absent (virtual-wire mode).
    pointer[10] = checksum_complement(&pointer);
    pointer
}

fn configuration_table(configuration: &MpConfiguration) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut entry_count: u16 = 0;
    for apic_id in 0..configuration.cpus {
        let flags = if apic_id == 0 { PROCESSOR_ENABLED | PROCESSOR_BOOTSTRAP } else { PROCESSOR_ENABLED };
        let mut entry = [0u8; PROCESSOR_ENTRY_SIZE];
        entry[0] = ENTRY_PROCESSOR;
        entry[1] = apic_id;
        entry[2] = LOCAL_APIC_VERSION;
        entry[3] = flags;
        entry[4..8].copy_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entry[8..12].copy_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&entry);
        entry_count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, ISA_BUS_ID, b'I', b'S', b'A', b' ', b' ', b' ']);
    entry_count += 1;
    let io_apic_id = configuration.io_apic_id();
    entries.extend_from_slice(&[ENTRY_IO_APIC, io_apic_id, IO_APIC_VERSION, IO_APIC_ENABLED]);
    entries.extend_from_slice(&configuration.io_apic_paddr.to_le_bytes());
    entry_count += 1;
    for irq in 0..ISA_IRQS {
        entries.extend_from_slice(&interrupt_entry(
            ENTRY_IO_INTERRUPT,
            INTERRUPT_VECTORED,
            irq,
            io_apic_id,
            irq,
        ));
        entry_count += 1;
    }
    entries.extend_from_slice(&interrupt_entry(
        ENTRY_LOCAL_INTERRUPT,
        INTERRUPT_EXTINT,
        0,
        ALL_LOCAL_APICS,
        0,
    ));
    entries.extend_from_slice(&interrupt_entry(ENTRY_LOCAL_INTERRUPT, INTERRUPT_NMI, 0, ALL_LOCAL_APICS, 1));
    entry_count += 2;

    let length = u16::try_from(HEADER_SIZE + entries.len()).expect("at most 255 processors fit in 64 KiB");
    let mut table = vec![0u8; HEADER_SIZE];
    table[0..4].copy_from_slice(b"PCMP");
    table[4..6].copy_from_slice(&length.to_le_bytes());
    table[6] = SPEC_REVISION;
    table[8..16].copy_from_slice(b"ROSV    ");
    table[16..28].copy_from_slice(b"BUILTIN KVM ");
    table[34..36].copy_from_slice(&entry_count.to_le_bytes());
    table[36..40].copy_from_slice(&configuration.local_apic_paddr.to_le_bytes());
    table.extend_from_slice(&entries);
    table[7] = checksum_complement(&table);
    table
}

/// An I/O or local interrupt assignment entry (§4.3.4, §4.3.5).
fn interrupt_entry(kind: u8, interrupt_type: u8, source_irq: u8, destination: u8, input: u8) -> [u8; 8] {
    let flags = INTERRUPT_FLAGS_CONFORMING.to_le_bytes();
    [kind, interrupt_type, flags[0], flags[1], ISA_BUS_ID, source_irq, destination, input]
}

/// The byte that makes `bytes` sum to zero (its checksum field being 0).
fn checksum_complement(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte))
    }

    fn configuration(cpus: u8) -> MpConfiguration {
        MpConfiguration { cpus, local_apic_paddr: 0xfee0_0000, io_apic_paddr: 0xfec0_0000 }
    }

    #[test]
    fn the_floating_pointer_points_at_the_table_and_sums_to_zero() {
        let bytes = encode(&configuration(2), 0x9_fc00);
        let pointer = &bytes[..FLOATING_POINTER_SIZE];
        assert_eq!(&pointer[..4], b"_MP_");
        assert_eq!(u32::from_le_bytes(pointer[4..8].try_into().unwrap()), 0x9_fc10);
        assert_eq!((pointer[8], pointer[9], pointer[11]), (1, 4, 0));
        assert_eq!(sum(pointer), 0);
    }

    #[test]
    fn the_table_lists_every_processor_the_bus_and_the_io_apic() {
        let bytes = encode(&configuration(3), 0x9_fc00);
        let table = &bytes[FLOATING_POINTER_SIZE..];
        assert_eq!(&table[..4], b"PCMP");
        let length = usize::from(u16::from_le_bytes([table[4], table[5]]));
        assert_eq!(length, table.len());
        assert_eq!(length, HEADER_SIZE + 3 * PROCESSOR_ENTRY_SIZE + (2 + 16 + 2) * ENTRY_SIZE);
        assert_eq!(sum(table), 0);
        assert_eq!(u16::from_le_bytes([table[34], table[35]]), 3 + 2 + 16 + 2);
        assert_eq!(u32::from_le_bytes(table[36..40].try_into().unwrap()), 0xfee0_0000);
        let processors: Vec<(u8, u8)> = table[HEADER_SIZE..]
            .chunks(PROCESSOR_ENTRY_SIZE)
            .take(3)
            .map(|entry| {
                assert_eq!(entry[0], ENTRY_PROCESSOR);
                (entry[1], entry[3])
            })
            .collect();
        assert_eq!(processors, [(0, 3), (1, 1), (2, 1)]);
        let rest = &table[HEADER_SIZE + 3 * PROCESSOR_ENTRY_SIZE..];
        assert_eq!(&rest[..8], &[ENTRY_BUS, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
        assert_eq!(&rest[8..12], &[ENTRY_IO_APIC, 3, IO_APIC_VERSION, 1]);
        assert_eq!(u32::from_le_bytes(rest[12..16].try_into().unwrap()), 0xfec0_0000);
        // IRQ 4 (the serial port) reaches I/O APIC input 4.
        let irq_4 = &rest[16 + 4 * ENTRY_SIZE..16 + 5 * ENTRY_SIZE];
        assert_eq!(irq_4, &[ENTRY_IO_INTERRUPT, INTERRUPT_VECTORED, 0, 0, 0, 4, 3, 4]);
        let local = &rest[16 + 16 * ENTRY_SIZE..];
        assert_eq!(local[0..2], [ENTRY_LOCAL_INTERRUPT, INTERRUPT_EXTINT]);
        assert_eq!(local[8..10], [ENTRY_LOCAL_INTERRUPT, INTERRUPT_NMI]);
        assert_eq!(local[15], 1, "NMI arrives on LINT1");
    }

    #[test]
    fn sixty_four_processors_fit() {
        let bytes = encode(&configuration(64), 0x9_fc00);
        let table = &bytes[FLOATING_POINTER_SIZE..];
        assert_eq!(sum(table), 0);
        assert_eq!(table[HEADER_SIZE + 63 * PROCESSOR_ENTRY_SIZE + 1], 63);
    }
}
