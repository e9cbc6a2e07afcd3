//! Minimal ACPI tables: where a guest with ACPI finds its processors.
//!
//! [`encode`] writes an RSDP (ACPI 6.5 §5.2.5), an XSDT (§5.2.8) listing
//! one table, and a MADT (§5.2.12) with a local APIC per vCPU and the I/O
//! APIC. There is no FADT and so no DSDT: the machine has no ACPI power
//! management, and the kernel powers off through the debug-exit port. The
//! RSDP goes at the start of the BIOS area, where a guest that is not told
//! its address finds it with its first probe.

/// Size of the RSDP (revision 2).
const RSDP_SIZE: usize = 36;
/// Where the XSDT starts, after the RSDP (16-byte aligned).
const XSDT_OFFSET: usize = 48;
/// Size of a system description table header.
const HEADER_SIZE: usize = 36;
const OEM_ID: &[u8; 6] = b"ROSV  ";
const OEM_TABLE_ID: &[u8; 8] = b"BUILTIN ";
const CREATOR_ID: &[u8; 4] = b"ROSV";
/// MADT entry types and sizes.
const MADT_LOCAL_APIC: u8 = 0;
const MADT_LOCAL_APIC_SIZE: u8 = 8;
const MADT_IO_APIC: u8 = 1;
const MADT_IO_APIC_SIZE: u8 = 12;
/// Local APIC flag: enabled.
const LOCAL_APIC_ENABLED: u32 = 1;

/// What the tables describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcpiConfiguration {
    /// Number of processors (local APIC ids 0 to `cpus - 1`).
    pub cpus: u8,
    /// Physical address of the local APICs.
    pub local_apic_paddr: u32,
    /// Physical address of the I/O APIC.
    pub io_apic_paddr: u32,
    /// The I/O APIC's id.
    pub io_apic_id: u8,
}

/// The RSDP, XSDT and MADT, as they go at `paddr` (the RSDP first).
pub fn encode(configuration: &AcpiConfiguration, paddr: u64) -> Vec<u8> {
    let madt = madt(configuration);
    let xsdt_paddr = paddr + XSDT_OFFSET as u64;
    let madt_offset = (XSDT_OFFSET + HEADER_SIZE + 8).next_multiple_of(16);
    let xsdt = table(b"XSDT", 1, &(paddr + madt_offset as u64).to_le_bytes());
    let mut bytes = rsdp(xsdt_paddr).to_vec();
    bytes.resize(XSDT_OFFSET, 0);
    bytes.extend_from_slice(&xsdt);
    bytes.resize(madt_offset, 0);
    bytes.extend_from_slice(&madt);
    bytes
}

fn rsdp(xsdt_paddr: u64) -> [u8; RSDP_SIZE] {
    let mut rsdp = [0u8; RSDP_SIZE];
    rsdp[0..8].copy_from_slice(b"RSD PTR ");
    rsdp[9..15].copy_from_slice(OEM_ID);
    rsdp[15] = 2; // revision: ACPI 2.0 and later, with an XSDT
    rsdp[20..24].copy_from_slice(&(RSDP_SIZE as u32).to_le_bytes());
    rsdp[24..32].copy_from_slice(&xsdt_paddr.to_le_bytes());
    rsdp[8] = checksum_complement(&rsdp[..20]);
    rsdp[32] = checksum_complement(&rsdp);
    rsdp
}

fn madt(configuration: &AcpiConfiguration) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&configuration.local_apic_paddr.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // flags: no legacy PICs to mask
    for apic_id in 0..configuration.cpus {
        body.extend_from_slice(&[MADT_LOCAL_APIC, MADT_LOCAL_APIC_SIZE, apic_id, apic_id]);
        body.extend_from_slice(&LOCAL_APIC_ENABLED.to_le_bytes());
    }
    body.extend_from_slice(&[MADT_IO_APIC, MADT_IO_APIC_SIZE, configuration.io_apic_id, 0]);
    body.extend_from_slice(&configuration.io_apic_paddr.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // global system interrupt base
    table(b"APIC", 4, &body)
}

/// A system description table: the header, then `body`.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(HEADER_SIZE + body.len()).expect("the tables are small");
    let mut table = Vec::with_capacity(HEADER_SIZE + body.len());
    table.extend_from_slice(signature);
    table.extend_from_slice(&length.to_le_bytes());
    table.push(revision);
    table.push(0); // checksum, below
    table.extend_from_slice(OEM_ID);
    table.extend_from_slice(OEM_TABLE_ID);
    table.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    table.extend_from_slice(CREATOR_ID);
    table.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    table.extend_from_slice(body);
    table[9] = checksum_complement(&table);
    table
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

    fn u32_at(bytes: &[u8], offset: usize) -> u32 {
        u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
    }

    fn u64_at(bytes: &[u8], offset: usize) -> u64 {
        u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
    }

    const BASE: u64 = 0xe_0000;

    fn tables(cpus: u8) -> Vec<u8> {
        let configuration = AcpiConfiguration {
            cpus,
            local_apic_paddr: 0xfee0_0000,
            io_apic_paddr: 0xfec0_0000,
            io_apic_id: cpus,
        };
        encode(&configuration, BASE)
    }

    /// The table at physical address `paddr`, by its length field.
    fn table_at(bytes: &[u8], paddr: u64) -> &[u8] {
        let offset = (paddr - BASE) as usize;
        let length = u32_at(bytes, offset + 4) as usize;
        &bytes[offset..offset + length]
    }

    #[test]
    fn the_rsdp_leads_to_the_xsdt_and_both_sum_to_zero() {
        let bytes = tables(2);
        assert_eq!(&bytes[..8], b"RSD PTR ");
        assert_eq!(sum(&bytes[..20]), 0);
        assert_eq!(sum(&bytes[..RSDP_SIZE]), 0);
        assert_eq!(bytes[15], 2);
        let xsdt = table_at(&bytes, u64_at(&bytes, 24));
        assert_eq!(&xsdt[..4], b"XSDT");
        assert_eq!(xsdt.len(), HEADER_SIZE + 8);
        assert_eq!(sum(xsdt), 0);
        let madt = table_at(&bytes, u64_at(xsdt, HEADER_SIZE));
        assert_eq!(&madt[..4], b"APIC");
        assert_eq!(sum(madt), 0);
    }

    #[test]
    fn the_madt_lists_each_processor_and_the_io_apic() {
        let bytes = tables(3);
        let xsdt = table_at(&bytes, u64_at(&bytes, 24));
        let madt = table_at(&bytes, u64_at(xsdt, HEADER_SIZE));
        assert_eq!(u32_at(madt, HEADER_SIZE), 0xfee0_0000);
        let entries = &madt[HEADER_SIZE + 8..];
        assert_eq!(entries.len(), 3 * 8 + 12);
        for apic_id in 0..3u8 {
            let entry = &entries[usize::from(apic_id) * 8..][..8];
            assert_eq!(entry[..4], [MADT_LOCAL_APIC, 8, apic_id, apic_id]);
            assert_eq!(u32_at(entry, 4), LOCAL_APIC_ENABLED);
        }
        let io_apic = &entries[24..];
        assert_eq!(io_apic[..3], [MADT_IO_APIC, 12, 3]);
        assert_eq!((u32_at(io_apic, 4), u32_at(io_apic, 8)), (0xfec0_0000, 0));
    }
}
