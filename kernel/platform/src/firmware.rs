//! What the firmware or hypervisor left in low memory: the ACPI RSDP, and
//! who the hypervisor is.

use crate::acpi::Rsdp;
use crate::memory::{PhysicalRange, physical_bytes};
use crate::paging;

/// Firecracker's boot-timer device: a byte write of 123 at this address makes
/// it log `Guest-boot-time` (when started with `--boot-timer`).
const FIRECRACKER_BOOT_TIMER: u64 = 0xc000_0000;
const FIRECRACKER_BOOT_COMPLETE: u8 = 123;
/// The BIOS read-only area the RSDP is searched in (ACPI 6.5 §5.2.5.1).
const BIOS_AREA: PhysicalRange = PhysicalRange {
    start: 0xe_0000,
    size: 0x2_0000,
};

/// Finds the RSDP at `hint` (from the boot loader) or in the BIOS area.
pub fn find_rsdp(hint: Option<u64>) -> Option<Rsdp> {
    if let Some(paddr) = hint
        && paddr < paging::physical_map_end()
    {
        // SAFETY: below the end of the physical map, so mapped; firmware
        // tables are never written after boot.
        let bytes = unsafe {
            physical_bytes(PhysicalRange {
                start: paddr,
                size: 36,
            })
        };
        if let Some(rsdp) = Rsdp::decode(paddr, bytes) {
            return Some(rsdp);
        }
    }
    // SAFETY: the kernel maps the first 2 MiB of physical memory, which
    // holds the BIOS area, and nothing writes it.
    let area = unsafe { physical_bytes(BIOS_AREA) };
    (0..area.len() - 36).step_by(16).find_map(|offset| {
        Rsdp::decode(BIOS_AREA.start + offset as u64, &area[offset..offset + 36])
    })
}

/// The hypervisor the kernel runs on, as far as it matters to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// Firecracker (its ACPI tables carry the OEM id "FIRECK").
    Firecracker,
    /// Any other.
    Other,
}

/// Identifies the hypervisor from its ACPI tables.
pub fn hypervisor(rsdp: Option<&Rsdp>) -> Hypervisor {
    match rsdp {
        Some(rsdp) if &rsdp.oem_id == b"FIRECK" => Hypervisor::Firecracker,
        _ => Hypervisor::Other,
    }
}

/// Tells the hypervisor that boot is complete, where it listens for that.
pub fn signal_boot_complete(hypervisor: Hypervisor) {
    if hypervisor != Hypervisor::Firecracker {
        return;
    }
    let Some(register) = paging::map_device(FIRECRACKER_BOOT_TIMER, 1) else {
        return;
    };
    // SAFETY: the page is mapped uncached onto Firecracker's boot-timer
    // device, whose only effect is to log the boot time.
    unsafe { core::ptr::write_volatile(register as *mut u8, FIRECRACKER_BOOT_COMPLETE) };
}
