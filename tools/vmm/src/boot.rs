//! What the monitor writes into guest memory before the first instruction,
//! and the processor state the PVH entry expects.
//!
//! [`boot_structures`] lays out `hvm_start_info`, its module list and memory
//! map, the command line, the boot GDT, the MP table and the ACPI tables
//! (when asked for) at the addresses
//! `layout` gives; [`ENTRY_SEGMENTS`] are the flat 32-bit segments the PVH
//! boot ABI ("x86/HVM direct boot ABI", Xen docs/misc/pvh.pandoc) requires,
//! both as GDT descriptors and as the hidden parts KVM loads.

use rosv_abi::memory::MemoryRegion;
use rosv_abi::pvh::{self, Module, StartInfo};

use crate::acpi::{self, AcpiConfiguration};
use crate::layout::{self, COMMAND_LINE_CAPACITY};
use crate::mptable::{self, MpConfiguration};

/// A piece of guest memory content: physical address and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Where the bytes go.
    pub paddr: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What the boot structures describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParameters<'a> {
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// Number of vCPUs.
    pub cpus: u8,
    /// The kernel command line (without the terminating NUL).
    pub command_line: &'a str,
    /// The initrd, already placed in guest memory.
    pub initrd: Option<Module>,
    /// Whether the guest gets ACPI tables (besides the MP table).
    pub has_acpi: bool,
}

/// Why the boot structures could not be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootError {
    /// The command line does not fit where the kernel reads it.
    #[error(
        "the kernel command line has {0} bytes; the kernel reads at most {max}",
        max = COMMAND_LINE_CAPACITY - 1
    )]
    CommandLineTooLong(usize),
    /// The command line holds a NUL byte, which would cut it short.
    #[error("the kernel command line contains a NUL byte")]
    CommandLineNul,
    /// More memory regions than fit in page 6.
    #[error("the memory map has {0} regions, more than the boot page holds")]
    MemoryMapTooLong(usize),
}

/// The boot structures for `parameters`, each at its physical address.
pub fn boot_structures(parameters: &BootParameters<'_>) -> Result<Vec<Piece>, BootError> {
    let memory_map = layout::memory_map(parameters.memory_bytes);
    if memory_map.len() > layout::MEMMAP_CAPACITY {
        return Err(BootError::MemoryMapTooLong(memory_map.len()));
    }
    let start_info = StartInfo {
        version: 1,
        module_count: u32::from(parameters.initrd.is_some()),
        modlist_paddr: if parameters.initrd.is_some() { layout::MODLIST_PADDR } else { 0 },
        cmdline_paddr: layout::COMMAND_LINE_PADDR,
        rsdp_paddr: if parameters.has_acpi { layout::ACPI_PADDR } else { 0 },
        memmap_paddr: layout::MEMMAP_PADDR,
        memmap_entries: memory_map.len() as u32,
    };
    let mut pieces = vec![
        Piece { paddr: layout::GDT_PADDR, bytes: gdt() },
        Piece { paddr: layout::START_INFO_PADDR, bytes: start_info.encode().to_vec() },
        Piece { paddr: layout::MEMMAP_PADDR, bytes: encode_memory_map(&memory_map) },
        Piece { paddr: layout::COMMAND_LINE_PADDR, bytes: command_line_bytes(parameters.command_line)? },
    ];
    let mp_configuration = MpConfiguration {
        cpus: parameters.cpus,
        local_apic_paddr: layout::LOCAL_APIC_PADDR as u32,
        io_apic_paddr: layout::IO_APIC_PADDR as u32,
    };
    pieces.push(Piece {
        paddr: layout::MP_TABLE_PADDR,
        bytes: mptable::encode(&mp_configuration, layout::MP_TABLE_PADDR as u32),
    });
    if parameters.has_acpi {
        let configuration = AcpiConfiguration {
            cpus: parameters.cpus,
            local_apic_paddr: mp_configuration.local_apic_paddr,
            io_apic_paddr: mp_configuration.io_apic_paddr,
            io_apic_id: mp_configuration.io_apic_id(),
        };
        pieces.push(Piece {
            paddr: layout::ACPI_PADDR,
            bytes: acpi::encode(&configuration, layout::ACPI_PADDR),
        });
    }
    if let Some(initrd) = parameters.initrd {
        pieces.push(Piece { paddr: layout::MODLIST_PADDR, bytes: initrd.encode().to_vec() });
    }
    Ok(pieces)
}

fn encode_memory_map(map: &[MemoryRegion]) -> Vec<u8> {
    map.iter().flat_map(pvh::encode_memmap_entry).collect()
}

/// The command line as the kernel reads it: NUL-terminated.
fn command_line_bytes(command_line: &str) -> Result<Vec<u8>, BootError> {
    if command_line.len() >= COMMAND_LINE_CAPACITY {
        return Err(BootError::CommandLineTooLong(command_line.len()));
    }
    if command_line.contains('\0') {
        return Err(BootError::CommandLineNul);
    }
    let mut bytes = command_line.as_bytes().to_vec();
    bytes.push(0);
    Ok(bytes)
}

/// The command line the guest gets: `base`, then what Linux-style guests
/// expect of a machine without PCI (the kernel sets trailing tokens of this
/// kind aside), then one `virtio_mmio.device=` token per device window.
pub fn command_line(base: &str, virtio_mmio_devices: &[VirtioMmioWindow]) -> String {
    let mut line = String::from(base.trim_end());
    for device in virtio_mmio_devices {
        line.push_str(&format!(
            " virtio_mmio.device={}K@{:#x}:{}",
            device.size_bytes / 1024,
            device.paddr,
            device.irq
        ));
    }
    line.push_str(" pci=off");
    line
}

/// A virtio-mmio device's register window and interrupt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioMmioWindow {
    /// Physical address of the registers.
    pub paddr: u64,
    /// Size of the window in bytes.
    pub size_bytes: u64,
    /// The I/O APIC input (GSI) of its interrupt.
    pub irq: u32,
}

/// A segment of the entry state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Its selector: the offset of its descriptor in the boot GDT.
    pub selector: u16,
    /// The descriptor type (Intel SDM vol. 3A §3.4.5.1 and §3.5).
    pub kind: u8,
    /// Code or data (rather than a system segment such as the TSS).
    pub is_code_or_data: bool,
    /// Limit in bytes, minus one.
    pub limit: u32,
}

/// Execute/read code, accessed.
const TYPE_CODE: u8 = 0xb;
/// Read/write data, accessed.
const TYPE_DATA: u8 = 0x3;
/// Busy 32-bit TSS.
const TYPE_TSS_BUSY: u8 = 0xb;

/// The segments of the PVH entry: flat 4 GiB code and data, and a task
/// register (which VMX requires to be usable).
pub const ENTRY_SEGMENTS: EntrySegments = EntrySegments {
    code: Segment { selector: 0x08, kind: TYPE_CODE, is_code_or_data: true, limit: 0xffff_ffff },
    data: Segment { selector: 0x10, kind: TYPE_DATA, is_code_or_data: true, limit: 0xffff_ffff },
    task: Segment { selector: 0x18, kind: TYPE_TSS_BUSY, is_code_or_data: false, limit: 0x67 },
};

/// The segments the boot processor starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySegments {
    /// CS.
    pub code: Segment,
    /// DS, ES, FS, GS and SS.
    pub data: Segment,
    /// TR.
    pub task: Segment,
}

impl Segment {
    /// Whether the limit counts 4 KiB pages (needed past 1 MiB).
    pub fn is_granular(&self) -> bool {
        self.limit > 0xf_ffff
    }

    /// The 8-byte GDT descriptor: base 0, present, ring 0, 32-bit.
    pub fn descriptor(&self) -> u64 {
        let limit = if self.is_granular() { self.limit >> 12 } else { self.limit };
        let access = u64::from(self.kind) | (u64::from(self.is_code_or_data) << 4) | (1 << 7);
        let flags =
            if self.is_code_or_data { 1 << 2 } else { 0 } | if self.is_granular() { 1 << 3 } else { 0 };
        u64::from(limit & 0xffff) | (access << 40) | (u64::from(limit >> 16 & 0xf) << 48) | (flags << 52)
    }
}

/// The boot GDT: the null descriptor, then the entry segments in selector
/// order.
fn gdt() -> Vec<u8> {
    let segments = ENTRY_SEGMENTS;
    [0, segments.code.descriptor(), segments.data.descriptor(), segments.task.descriptor()]
        .iter()
        .flat_map(|descriptor| descriptor.to_le_bytes())
        .collect()
}

/// The boot GDT's limit (its size minus one).
pub const GDT_LIMIT: u16 = 4 * 8 - 1;

#[cfg(test)]
mod tests {
    use super::*;
    use rosv_abi::memory::MemoryKind;

    fn piece(pieces: &[Piece], paddr: u64) -> &[u8] {
        &pieces.iter().find(|piece| piece.paddr == paddr).expect("a piece at this address").bytes
    }

    #[test]
    fn the_start_info_reads_back_with_the_kernels_decoder() {
        let initrd = Module { paddr: 0x7f0_0000, size: 0x8_0000 };
        let parameters = BootParameters {
            memory_bytes: 128 << 20,
            cpus: 2,
            command_line: "--verbose /hello",
            initrd: Some(initrd),
            has_acpi: false,
        };
        let pieces = boot_structures(&parameters).unwrap();
        let info = StartInfo::decode(piece(&pieces, layout::START_INFO_PADDR)).unwrap();
        assert_eq!(info.version, 1);
        assert_eq!(info.cmdline_paddr, layout::COMMAND_LINE_PADDR);
        assert_eq!(info.rsdp_paddr, 0);
        assert_eq!((info.module_count, info.modlist_paddr), (1, layout::MODLIST_PADDR));
        assert_eq!(pvh::decode_module(piece(&pieces, layout::MODLIST_PADDR)), Some(initrd));
        let memmap = piece(&pieces, layout::MEMMAP_PADDR);
        assert_eq!(memmap.len(), info.memmap_entries as usize * pvh::MEMMAP_ENTRY_SIZE);
        let regions: Vec<MemoryRegion> =
            memmap.chunks(pvh::MEMMAP_ENTRY_SIZE).filter_map(pvh::decode_memmap_entry).collect();
        assert_eq!(regions, layout::memory_map(128 << 20));
        assert_eq!(regions[2].kind, MemoryKind::Usable);
        assert_eq!(piece(&pieces, layout::COMMAND_LINE_PADDR), b"--verbose /hello\0");
        assert_eq!(&piece(&pieces, layout::MP_TABLE_PADDR)[..4], b"_MP_");
        assert!(pieces.iter().all(|piece| piece.paddr != layout::ACPI_PADDR), "ACPI only when asked");
    }

    #[test]
    fn with_acpi_the_start_info_points_at_the_rsdp() {
        let parameters = BootParameters {
            memory_bytes: 64 << 20,
            cpus: 2,
            command_line: "/x",
            initrd: None,
            has_acpi: true,
        };
        let pieces = boot_structures(&parameters).unwrap();
        let info = StartInfo::decode(piece(&pieces, layout::START_INFO_PADDR)).unwrap();
        assert_eq!(info.rsdp_paddr, layout::ACPI_PADDR);
        assert_eq!(&piece(&pieces, layout::ACPI_PADDR)[..8], b"RSD PTR ");
        assert_eq!(&piece(&pieces, layout::MP_TABLE_PADDR)[..4], b"_MP_", "the MP table stays");
    }

    #[test]
    fn without_an_initrd_there_is_no_module() {
        let parameters = BootParameters {
            memory_bytes: 64 << 20,
            cpus: 1,
            command_line: "/x",
            initrd: None,
            has_acpi: false,
        };
        let pieces = boot_structures(&parameters).unwrap();
        let info = StartInfo::decode(piece(&pieces, layout::START_INFO_PADDR)).unwrap();
        assert_eq!((info.module_count, info.modlist_paddr), (0, 0));
        assert!(pieces.iter().all(|piece| piece.paddr != layout::MODLIST_PADDR));
    }

    #[test]
    fn pieces_do_not_overlap() {
        let initrd = Some(Module { paddr: 0x7f0_0000, size: 1 });
        let parameters =
            BootParameters { memory_bytes: 8 << 30, cpus: 64, command_line: "/x", initrd, has_acpi: true };
        let mut pieces = boot_structures(&parameters).unwrap();
        pieces.sort_by_key(|piece| piece.paddr);
        for pair in pieces.windows(2) {
            assert!(pair[0].paddr + pair[0].bytes.len() as u64 <= pair[1].paddr, "{:#x}", pair[1].paddr);
        }
    }

    #[test]
    fn long_or_broken_command_lines_are_refused() {
        let long = "x".repeat(COMMAND_LINE_CAPACITY);
        let parameters = BootParameters {
            memory_bytes: 64 << 20,
            cpus: 1,
            command_line: &long,
            initrd: None,
            has_acpi: false,
        };
        assert_eq!(boot_structures(&parameters), Err(BootError::CommandLineTooLong(4096)));
        let fits = "x".repeat(COMMAND_LINE_CAPACITY - 1);
        assert!(boot_structures(&BootParameters { command_line: &fits, ..parameters.clone() }).is_ok());
        let nul = BootParameters { command_line: "a\0b", ..parameters };
        assert_eq!(boot_structures(&nul), Err(BootError::CommandLineNul));
    }

    #[test]
    fn the_command_line_gets_device_tokens_and_pci_off_after_the_command() {
        assert_eq!(command_line("--exit-record /hello a ", &[]), "--exit-record /hello a pci=off");
        let disk = VirtioMmioWindow { paddr: 0xd000_0000, size_bytes: 4096, irq: 5 };
        assert_eq!(command_line("/hello", &[disk]), "/hello virtio_mmio.device=4K@0xd0000000:5 pci=off");
    }

    #[test]
    fn descriptors_encode_flat_segments() {
        // The classic flat descriptors: 32-bit code and data over 4 GiB.
        assert_eq!(ENTRY_SEGMENTS.code.descriptor(), 0x00cf_9b00_0000_ffff);
        assert_eq!(ENTRY_SEGMENTS.data.descriptor(), 0x00cf_9300_0000_ffff);
        assert_eq!(ENTRY_SEGMENTS.task.descriptor(), 0x0000_8b00_0000_0067);
        assert_eq!(gdt().len(), usize::from(GDT_LIMIT) + 1);
    }
}
