//! From the boot loader's handoff to a decoded [`BootInfo`].
//!
//! The assembly entries in [`crate::entry`] call [`rust_entry`], which hands a
//! [`BootHandoff`] to the kernel's main function (registered with
//! [`crate::kernel_entry!`]). The kernel then calls [`BootInfo::read`] while
//! the boot page tables still map the first GiB of physical memory.

use rosv_abi::linux_boot::{self, BootParams};
use rosv_abi::multiboot2;
use rosv_abi::pvh::{self, StartInfo};

use crate::memory::{MemoryMap, PhysicalRange, physical_bytes};

/// Size of the stack the boot CPU runs the kernel's main function on.
pub const BOOT_STACK_SIZE: usize = 128 * 1024;
/// The command line buffer: the longest line the kernel accepts
/// (`rosv_abi::boot_config::KERNEL_COMMAND_LINE_MAX`) and its NUL.
pub const COMMAND_LINE_MAX: usize = rosv_abi::boot_config::KERNEL_COMMAND_LINE_MAX + 1;
/// The bytes of an ACPI 2.0 RSDP, the longest the kernel reads.
pub const RSDP_COPY_SIZE: usize = 36;
/// Physical memory the boot page tables map; boot structures must lie below.
const BOOT_MAPPED_LIMIT: u64 = 1 << 30;

/// Which boot protocol started the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootProtocol {
    /// PVH: 32-bit entry from the ELF note, `hvm_start_info` in EBX.
    Pvh,
    /// Linux 64-bit boot protocol: ELF entry, `boot_params` in RSI.
    Linux,
    /// Multiboot2 (GRUB from a disk): 32-bit entry from the header, the
    /// boot information in EBX.
    Multiboot2,
}

/// What the boot loader handed over, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct BootHandoff {
    /// The protocol that entered the kernel.
    pub protocol: BootProtocol,
    /// Physical address of `hvm_start_info`, `boot_params` or the
    /// Multiboot2 boot information.
    pub info_paddr: u64,
    /// The time stamp counter at the kernel's first instruction.
    pub entry_tsc: u64,
}

unsafe extern "Rust" {
    /// The kernel's main function, defined by [`crate::kernel_entry!`].
    fn rosv_kernel_main(handoff: BootHandoff) -> !;
}

unsafe extern "C" {
    static rosv_boot_entry_tsc: u64;
}

/// The first Rust code: called by the assembly entry on the boot stack.
pub(crate) extern "C" fn rust_entry(info_paddr: u64, protocol: u64) -> ! {
    let protocol = match protocol {
        crate::entry::PROTOCOL_PVH => BootProtocol::Pvh,
        crate::entry::PROTOCOL_MULTIBOOT2 => BootProtocol::Multiboot2,
        _ => BootProtocol::Linux,
    };
    // SAFETY: the entry code wrote the counter before jumping here and nothing
    // writes it afterwards; `.boot.data` is still mapped by the boot tables.
    let entry_tsc = unsafe { core::ptr::read_volatile(&raw const rosv_boot_entry_tsc) };
    let handoff = BootHandoff { protocol, info_paddr, entry_tsc };
    // SAFETY: `kernel_entry!` defines the symbol with exactly this signature.
    unsafe { rosv_kernel_main(handoff) }
}

/// Declares the kernel's main function, which receives the boot handoff.
///
/// ```ignore
/// rosv_platform::kernel_entry!(main);
/// fn main(handoff: rosv_platform::boot::BootHandoff) -> ! { ... }
/// ```
#[macro_export]
macro_rules! kernel_entry {
    ($main:path) => {
        #[allow(unsafe_code)]
        #[unsafe(export_name = "rosv_kernel_main")]
        fn __rosv_kernel_main(handoff: $crate::boot::BootHandoff) -> ! {
            let main: fn($crate::boot::BootHandoff) -> ! = $main;
            main(handoff)
        }
    };
}

/// Why the boot information could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootError {
    /// The `hvm_start_info` is malformed.
    StartInfo(pvh::StartInfoError),
    /// The `boot_params` page is malformed.
    BootParams(linux_boot::BootParamsError),
    /// The Multiboot2 boot information is malformed.
    Multiboot2(multiboot2::InformationError),
    /// A boot structure lies where the boot page tables do not reach.
    OutOfReach(u64),
    /// The memory map lists no usable RAM.
    NoMemory,
    /// The command line is not UTF-8.
    CommandLineEncoding,
    /// The command line has no NUL within the kernel's buffer: it is
    /// longer than the kernel accepts.
    CommandLineTooLong,
}

impl core::fmt::Display for BootError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootError::StartInfo(error) => write!(formatter, "bad hvm_start_info: {error:?}"),
            BootError::BootParams(error) => write!(formatter, "bad boot_params: {error:?}"),
            BootError::Multiboot2(error) => write!(formatter, "bad Multiboot2 boot information: {error:?}"),
            BootError::OutOfReach(paddr) => {
                write!(formatter, "a boot structure at {paddr:#x} lies beyond the first GiB")
            }
            BootError::NoMemory => write!(formatter, "the memory map lists no usable RAM"),
            BootError::CommandLineEncoding => write!(formatter, "the command line is not UTF-8"),
            BootError::CommandLineTooLong => write!(
                formatter,
                "the command line is longer than {} bytes; pass the command and its environment in a boot \
                 configuration (the initrd) instead",
                COMMAND_LINE_MAX - 1
            ),
        }
    }
}

/// Everything the kernel needs from the boot loader.
#[derive(Debug)]
pub struct BootInfo {
    /// The protocol that entered the kernel.
    pub protocol: BootProtocol,
    /// Physical memory, as the loader described it.
    pub memory_map: MemoryMap,
    /// The initial RAM disk, if one was loaded.
    pub initrd: Option<PhysicalRange>,
    /// A boot configuration loaded beside a ROFS initrd (a Multiboot2
    /// module of its own); with one initrd, the kernel tells the two
    /// apart by the initrd's first bytes instead.
    pub boot_config: Option<PhysicalRange>,
    /// Physical address of the ACPI RSDP, when the loader gave one.
    pub rsdp_paddr: Option<u64>,
    /// A copy of the RSDP, when the loader gave one rather than its
    /// address (Multiboot2's ACPI tags; on UEFI nothing else finds it).
    pub rsdp_copy: Option<[u8; RSDP_COPY_SIZE]>,
    command_line: [u8; COMMAND_LINE_MAX],
    command_line_len: usize,
}

impl BootInfo {
    /// Decodes the loader's boot structures.
    pub fn read(handoff: &BootHandoff) -> Result<Self, BootError> {
        let mut info = BootInfo {
            protocol: handoff.protocol,
            memory_map: MemoryMap::new(),
            initrd: None,
            boot_config: None,
            rsdp_paddr: None,
            rsdp_copy: None,
            command_line: [0; COMMAND_LINE_MAX],
            command_line_len: 0,
        };
        let command_line_paddr = match handoff.protocol {
            BootProtocol::Pvh => info.read_pvh(handoff.info_paddr)?,
            BootProtocol::Linux => info.read_linux(handoff.info_paddr)?,
            BootProtocol::Multiboot2 => info.read_multiboot2(handoff.info_paddr)?,
        };
        if command_line_paddr != 0 {
            info.copy_command_line(command_line_paddr)?;
        }
        if info.memory_map.usable_bytes() == 0 {
            return Err(BootError::NoMemory);
        }
        Ok(info)
    }

    /// The initrd's bytes, once [`crate::memory::init`] has mapped all RAM;
    /// `None` without an initrd or if it lies outside the mapped RAM.
    pub fn initrd_bytes(&self) -> Option<&'static [u8]> {
        let initrd = self.initrd?;
        let is_ram = self.memory_map.regions().iter().any(|region| {
            region.kind == rosv_abi::memory::MemoryKind::Usable
                && region.start <= initrd.start
                && initrd.end() <= region.end()
        });
        if !is_ram || initrd.end() > crate::paging::physical_map_end() {
            return None;
        }
        // SAFETY: the initrd is RAM the heap never receives (`memory::init`
        // reserves it), mapped by the physical map, and nothing writes it.
        Some(unsafe { physical_bytes(initrd) })
    }

    /// The separate boot configuration's bytes (see [`BootInfo::boot_config`]),
    /// under the same conditions as [`BootInfo::initrd_bytes`].
    pub fn boot_config_bytes(&self) -> Option<&'static [u8]> {
        let range = self.boot_config?;
        let is_ram = self.memory_map.regions().iter().any(|region| {
            region.kind == rosv_abi::memory::MemoryKind::Usable
                && region.start <= range.start
                && range.end() <= region.end()
        });
        if !is_ram || range.end() > crate::paging::physical_map_end() {
            return None;
        }
        // SAFETY: as for the initrd: RAM `memory::init` keeps from the
        // allocator, mapped by the physical map, never written.
        Some(unsafe { physical_bytes(range) })
    }

    /// The command line as the loader passed it.
    pub fn command_line(&self) -> &str {
        core::str::from_utf8(&self.command_line[..self.command_line_len]).unwrap_or("")
    }

    fn read_pvh(&mut self, paddr: u64) -> Result<u64, BootError> {
        let start_info =
            StartInfo::decode(boot_bytes(paddr, pvh::START_INFO_SIZE)?).map_err(BootError::StartInfo)?;
        for index in 0..u64::from(start_info.memmap_entries) {
            let entry_paddr = start_info.memmap_paddr + index * pvh::MEMMAP_ENTRY_SIZE as u64;
            let entry = boot_bytes(entry_paddr, pvh::MEMMAP_ENTRY_SIZE)?;
            if let Some(region) = pvh::decode_memmap_entry(entry) {
                self.memory_map.push(region);
            }
        }
        if start_info.module_count > 0 {
            let module = boot_bytes(start_info.modlist_paddr, pvh::MODLIST_ENTRY_SIZE)?;
            self.initrd = pvh::decode_module(module)
                .filter(|module| module.size > 0)
                .map(|module| PhysicalRange { start: module.paddr, size: module.size });
        }
        self.rsdp_paddr = (start_info.rsdp_paddr != 0).then_some(start_info.rsdp_paddr);
        Ok(start_info.cmdline_paddr)
    }

    fn read_linux(&mut self, paddr: u64) -> Result<u64, BootError> {
        let page = boot_bytes(paddr, linux_boot::BOOT_PARAMS_SIZE)?;
        let params = BootParams::decode(page).map_err(BootError::BootParams)?;
        for index in 0..params.e820_entries {
            if let Some(region) = params.e820_entry(page, index) {
                self.memory_map.push(region);
            }
        }
        if params.ramdisk_paddr != 0 && params.ramdisk_size != 0 {
            self.initrd = Some(PhysicalRange { start: params.ramdisk_paddr, size: params.ramdisk_size });
        }
        Ok(params.cmdline_paddr)
    }

    /// Reads GRUB's Multiboot2 information: the memory map, the modules
    /// (the one holding a boot configuration becomes [`BootInfo::boot_config`],
    /// the first other one the initrd), a copy of the RSDP and the command
    /// line, which is copied here as the information's memory is free RAM.
    fn read_multiboot2(&mut self, paddr: u64) -> Result<u64, BootError> {
        let total = multiboot2::total_size(boot_bytes(paddr, 8)?).unwrap_or(0);
        let bytes = boot_bytes(paddr, total as usize)?;
        let tags = multiboot2::Tags::new(bytes).map_err(BootError::Multiboot2)?;
        let mut command_line: &[u8] = &[];
        for tag in tags {
            match tag.kind {
                multiboot2::TAG_COMMAND_LINE => command_line = multiboot2::until_nul(tag.body),
                multiboot2::TAG_MEMORY_MAP => {
                    for region in multiboot2::memory_regions(tag.body) {
                        self.memory_map.push(region);
                    }
                }
                multiboot2::TAG_MODULE => {
                    let Some(module) = multiboot2::decode_module(tag.body) else { continue };
                    let range = PhysicalRange { start: module.start, size: module.end - module.start };
                    let head = boot_bytes(range.start, range.size.min(16) as usize).unwrap_or(&[]);
                    if range.size == 0 {
                        continue;
                    } else if rosv_abi::boot_config::is_boot_config(head) {
                        self.boot_config.get_or_insert(range);
                    } else {
                        self.initrd.get_or_insert(range);
                    }
                }
                // The newer tag wins; a 1.0 RSDP is 20 bytes.
                multiboot2::TAG_ACPI_OLD | multiboot2::TAG_ACPI_NEW
                    if self.rsdp_copy.is_none() || tag.kind == multiboot2::TAG_ACPI_NEW =>
                {
                    let mut copy = [0u8; RSDP_COPY_SIZE];
                    let length = tag.body.len().min(RSDP_COPY_SIZE);
                    copy[..length].copy_from_slice(&tag.body[..length]);
                    self.rsdp_copy = Some(copy);
                }
                _ => {}
            }
        }
        if command_line.len() >= COMMAND_LINE_MAX {
            return Err(BootError::CommandLineTooLong);
        }
        core::str::from_utf8(command_line).map_err(|_| BootError::CommandLineEncoding)?;
        self.command_line[..command_line.len()].copy_from_slice(command_line);
        self.command_line_len = command_line.len();
        Ok(0)
    }

    fn copy_command_line(&mut self, paddr: u64) -> Result<(), BootError> {
        let available = BOOT_MAPPED_LIMIT.saturating_sub(paddr).min(COMMAND_LINE_MAX as u64);
        let bytes = boot_bytes(paddr, available as usize)?;
        // A line without its NUL in the buffer would be cut: refuse it.
        let length = bytes.iter().position(|&byte| byte == 0).ok_or(BootError::CommandLineTooLong)?;
        core::str::from_utf8(&bytes[..length]).map_err(|_| BootError::CommandLineEncoding)?;
        self.command_line[..length].copy_from_slice(&bytes[..length]);
        self.command_line_len = length;
        Ok(())
    }
}

/// The regions of a boot structure, checked to be reachable.
fn boot_bytes(paddr: u64, length: usize) -> Result<&'static [u8], BootError> {
    let end = paddr.checked_add(length as u64).ok_or(BootError::OutOfReach(paddr))?;
    if paddr == 0 || end > BOOT_MAPPED_LIMIT {
        return Err(BootError::OutOfReach(paddr));
    }
    // SAFETY: the boot page tables map all of the first GiB at the physical
    // map offset, the range lies below it, and the slice is only read while
    // the boot structures are decoded, before any of that memory is reused.
    Ok(unsafe { physical_bytes(PhysicalRange { start: paddr, size: length as u64 }) })
}
