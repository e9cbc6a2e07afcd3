//! What the firmware or hypervisor left in low memory: the ACPI RSDP, and
//! who the hypervisor is.

use crate::acpi::{self, Fadt, InterruptTopology, Rsdp, SoftOff, TABLE_HEADER_SIZE, TableHeader};
use crate::memory::{PhysicalRange, physical_bytes};
use crate::paging;

/// Firecracker's boot-timer device: a byte write of 123 at this address makes
/// it log `Guest-boot-time` (when started with `--boot-timer`).
const FIRECRACKER_BOOT_TIMER: u64 = 0xc000_0000;
const FIRECRACKER_BOOT_COMPLETE: u8 = 123;
/// The BIOS read-only area the RSDP is searched in (ACPI 6.5 §5.2.5.1).
const BIOS_AREA: PhysicalRange = PhysicalRange { start: 0xe_0000, size: 0x2_0000 };

/// The RSDP the loader handed over, as a copy (Multiboot2) or an address,
/// else the one in the BIOS area.
pub fn boot_rsdp(info: &crate::boot::BootInfo) -> Option<Rsdp> {
    info.rsdp_copy.as_ref().and_then(|copy| Rsdp::decode(0, copy)).or_else(|| find_rsdp(info.rsdp_paddr))
}

/// Finds the RSDP at `hint` (from the boot loader) or in the BIOS area.
pub fn find_rsdp(hint: Option<u64>) -> Option<Rsdp> {
    if let Some(paddr) = hint
        && paddr < paging::physical_map_end()
    {
        // SAFETY: below the end of the physical map, so mapped; firmware
        // tables are never written after boot.
        let bytes = unsafe { physical_bytes(PhysicalRange { start: paddr, size: 36 }) };
        if let Some(rsdp) = Rsdp::decode(paddr, bytes) {
            return Some(rsdp);
        }
    }
    // SAFETY: the kernel maps the first 2 MiB of physical memory, which
    // holds the BIOS area, and nothing writes it.
    let area = unsafe { physical_bytes(BIOS_AREA) };
    (0..area.len() - 36)
        .step_by(16)
        .find_map(|offset| Rsdp::decode(BIOS_AREA.start + offset as u64, &area[offset..offset + 36]))
}

/// The longest ACPI table the kernel reads.
const TABLE_SIZE_MAX: u32 = 1 << 20;

/// The ACPI table at `paddr`, checked against its checksum; the pages are
/// mapped (uncached) first if RAM's mapping does not cover them.
fn read_table(paddr: u64) -> Option<&'static [u8]> {
    paging::map_device(paddr, TABLE_HEADER_SIZE as u64)?;
    // SAFETY: the header's pages are mapped just above; firmware tables are
    // never written after boot.
    let header = unsafe { physical_bytes(PhysicalRange { start: paddr, size: TABLE_HEADER_SIZE as u64 }) };
    let length = TableHeader::decode(header)?.length;
    if !(TABLE_HEADER_SIZE as u32..=TABLE_SIZE_MAX).contains(&length) {
        return None;
    }
    paging::map_device(paddr, u64::from(length))?;
    // SAFETY: as above, for the whole table.
    let table = unsafe { physical_bytes(PhysicalRange { start: paddr, size: u64::from(length) }) };
    acpi::is_checksum_valid(table).then_some(table)
}

/// The ACPI table with `signature`, found through the RSDT or XSDT.
pub fn find_table(rsdp: &Rsdp, signature: &[u8; 4]) -> Option<&'static [u8]> {
    let (root, is_extended) = if rsdp.xsdt_paddr != 0 {
        (read_table(rsdp.xsdt_paddr)?, true)
    } else {
        (read_table(u64::from(rsdp.rsdt_paddr))?, false)
    };
    acpi::table_addresses(root, is_extended)
        .filter_map(read_table)
        .find(|table| TableHeader::decode(table).is_some_and(|header| &header.signature == signature))
}

/// How to put the machine in S5 (soft off), if its ACPI tables say.
pub fn soft_off(rsdp: &Rsdp) -> Option<SoftOff> {
    /// The S5 sleep type hardware-reduced platforms use when the DSDT does
    /// not say otherwise (QEMU's and the ACPI specification's example).
    const DEFAULT_HARDWARE_REDUCED_S5: u8 = 5;
    let fadt = Fadt::decode(find_table(rsdp, b"FACP")?)?;
    let sleep_type = read_table(fadt.dsdt_paddr).and_then(acpi::s5_sleep_type);
    match sleep_type {
        Some(sleep_type) => fadt.soft_off(sleep_type),
        None => fadt
            .soft_off(DEFAULT_HARDWARE_REDUCED_S5)
            .filter(|off| matches!(off, SoftOff::SleepControl { .. })),
    }
}

/// The DSDT, through the FADT.
pub fn dsdt(rsdp: &Rsdp) -> Option<&'static [u8]> {
    let fadt = Fadt::decode(find_table(rsdp, b"FACP")?)?;
    read_table(fadt.dsdt_paddr)
}

/// Where the processor and interrupt-controller list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologySource {
    /// The ACPI MADT.
    Madt,
    /// The Intel MP table.
    MpTable,
    /// Neither: one processor, default APIC address.
    Default,
}

/// The xAPIC's architectural default address.
const DEFAULT_LOCAL_APIC: u64 = 0xfee0_0000;

/// Processors and interrupt controllers: from the MADT when ACPI is there,
/// else from the MP table, else the boot processor alone.
pub fn interrupt_topology(rsdp: Option<&Rsdp>) -> (InterruptTopology, TopologySource) {
    if let Some(madt) = rsdp.and_then(|rsdp| find_table(rsdp, b"APIC")).and_then(acpi::decode_madt) {
        return (madt, TopologySource::Madt);
    }
    if let Some(table) = find_mp_table() {
        return (table, TopologySource::MpTable);
    }
    let topology =
        InterruptTopology { local_apic_address: DEFAULT_LOCAL_APIC, ..InterruptTopology::default() };
    (topology, TopologySource::Default)
}

/// Searches the MP floating pointer where the MP specification (§4) puts
/// it: the first KiB of the EBDA, the last KiB of base memory, the BIOS
/// ROM; then reads the configuration table it points at.
fn find_mp_table() -> Option<InterruptTopology> {
    // SAFETY: the BIOS data area word at 0x40e lies in low memory, which the
    // kernel maps; nothing writes it.
    let ebda_segment = unsafe { physical_bytes(PhysicalRange { start: 0x40e, size: 2 }) };
    let ebda = u64::from(u16::from_le_bytes([ebda_segment[0], ebda_segment[1]])) << 4;
    let areas = [
        PhysicalRange { start: ebda, size: 1024 },
        PhysicalRange { start: 0x9_fc00, size: 1024 },
        PhysicalRange { start: 0xf_0000, size: 0x1_0000 },
    ];
    for area in areas.iter().filter(|area| area.start >= 0x400 && area.end() <= 0x10_0000) {
        // SAFETY: below 1 MiB, which the kernel maps, and never written.
        let bytes = unsafe { physical_bytes(*area) };
        let pointer = (0..bytes.len().saturating_sub(15))
            .step_by(16)
            .find_map(|offset| acpi::decode_mp_floating_pointer(&bytes[offset..offset + 16]));
        if let Some(table) = pointer {
            let table = u64::from(table);
            paging::map_device(table, 44)?;
            // SAFETY: mapped just above; firmware tables are never written.
            let header = unsafe { physical_bytes(PhysicalRange { start: table, size: 44 }) };
            let length = u64::from(u16::from_le_bytes([header[4], header[5]])).max(44);
            paging::map_device(table, length)?;
            // SAFETY: as above, for the whole base table.
            let bytes = unsafe { physical_bytes(PhysicalRange { start: table, size: length }) };
            return acpi::decode_mp_configuration(bytes);
        }
    }
    None
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
