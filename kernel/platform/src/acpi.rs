//! ACPI table decoding (ACPI 6.5 §5.2): pure functions over bytes.

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
        Some(Rsdp {
            paddr,
            oem_id,
            revision,
            rsdt_paddr: rosv_abi::bytes::u32_at(first, 16)?,
            xsdt_paddr,
        })
    }
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte))
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
