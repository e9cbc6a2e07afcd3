//! The kernel ELF that `rosv` carries (built by `build.rs`).

use anyhow::{Result, bail};
use rosv_abi::pvh::{XEN_ELFNOTE_OWNER, XEN_ELFNOTE_PHYS32_ENTRY};

/// The kernel ELF, with its PVH note.
pub static ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rosv-kernel.elf"));

/// `p_type` of an unused program header.
const PT_NULL: u32 = 0;

/// The kernel with its PVH note hidden from loaders (its `PT_NOTE` program
/// header turned into `PT_NULL`), so that Firecracker and other Linux
/// loaders enter it through the Linux 64-bit boot protocol.
pub fn without_pvh_note() -> Result<Vec<u8>> {
    strip_pvh_note(ELF)
}

/// Hides the PVH note of the kernel ELF `kernel`.
pub fn strip_pvh_note(kernel: &[u8]) -> Result<Vec<u8>> {
    let Some(offset) = rosv_elf::find_note_header(kernel, XEN_ELFNOTE_OWNER, XEN_ELFNOTE_PHYS32_ENTRY)?
    else {
        bail!("the kernel has no PVH note to remove");
    };
    let mut stripped = kernel.to_vec();
    stripped[offset..offset + 4].copy_from_slice(&PT_NULL.to_le_bytes());
    Ok(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_kernel_has_a_pvh_note_that_can_be_stripped() {
        let note = rosv_elf::find_note_header(ELF, XEN_ELFNOTE_OWNER, XEN_ELFNOTE_PHYS32_ENTRY).unwrap();
        assert!(note.is_some());
        let stripped = without_pvh_note().unwrap();
        assert_eq!(stripped.len(), ELF.len());
        let after =
            rosv_elf::find_note_header(&stripped, XEN_ELFNOTE_OWNER, XEN_ELFNOTE_PHYS32_ENTRY).unwrap();
        assert_eq!(after, None);
        assert!(strip_pvh_note(&stripped).is_err());
    }
}
