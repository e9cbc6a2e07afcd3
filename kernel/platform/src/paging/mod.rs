//! The kernel's page tables, and the mapping of application pages.
//!
//! One set of tables serves the whole machine (a single address space):
//! - the lower half is the application's, mapped page by page on demand;
//! - all RAM is mapped at `PHYSICAL_MAP_OFFSET` with 2 MiB pages, no-execute;
//! - the kernel image is mapped at `KERNEL_VIRTUAL_OFFSET` with 4 KiB pages
//!   whose rights follow its sections (code read-execute, read-only data,
//!   writable data no-execute).

use core::sync::atomic::{AtomicU64, Ordering};

use rosv_abi::memory::MemoryKind;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size2MiB,
    Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::layout;
use crate::memory::{
    self, KERNEL_VIRTUAL_OFFSET, MemoryMap, PAGE_SIZE, PHYSICAL_MAP_OFFSET, USER_END, align_up,
};
use crate::sync::SpinMutex;

mod application;

pub use application::ApplicationTables;

const HUGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;
/// Physical memory beyond this is not mapped (and not used).
const PHYSICAL_MAP_LIMIT: u64 = 1 << 40;

/// Physical address of the kernel's level-4 table, once built.
static LEVEL_4_TABLE: SpinMutex<Option<u64>> = SpinMutex::new(None);
static PHYSICAL_MAP_END: AtomicU64 = AtomicU64::new(1 << 30);

/// One past the highest physical address the physical map covers.
pub fn physical_map_end() -> u64 {
    PHYSICAL_MAP_END.load(Ordering::Relaxed)
}

/// Why the kernel's page tables could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingError {
    /// No frame was left for a page table.
    OutOfMemory,
}

pub(super) struct HeapFrames;

// SAFETY: every frame comes from `memory::allocate_frame`, which returns
// zeroed frames that nothing else uses.
unsafe impl FrameAllocator<Size4KiB> for HeapFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        memory::allocate_frame().map(|paddr| PhysFrame::containing_address(PhysAddr::new(paddr)))
    }
}

/// A view of the tables rooted at `level_4` through the physical map.
///
/// # Safety
/// `level_4` must be a level-4 table built by this module, and the caller
/// must hold `LEVEL_4_TABLE`'s lock (or be the only CPU, during `init`).
pub(super) unsafe fn tables(level_4: u64) -> OffsetPageTable<'static> {
    let table = memory::physical_to_virtual(level_4) as *mut PageTable;
    // SAFETY: by the contract, the table exists, is mapped, and no other
    // reference to it is alive.
    unsafe { OffsetPageTable::new(&mut *table, VirtAddr::new(PHYSICAL_MAP_OFFSET)) }
}

/// Builds the kernel's page tables and switches the boot CPU to them.
pub fn init(memory_map: &MemoryMap) -> Result<(), PagingError> {
    let level_4 = memory::allocate_frame().ok_or(PagingError::OutOfMemory)?;
    // SAFETY: the frame is fresh and zeroed; this is the only view.
    let mut mapper = unsafe { tables(level_4) };
    let ram_end = map_physical_memory(&mut mapper, memory_map)?;
    map_kernel_image(&mut mapper)?;
    reserve_kernel_entries(level_4)?;
    let frame = PhysFrame::containing_address(PhysAddr::new(level_4));
    // SAFETY: the new tables map the kernel image at the addresses it runs
    // at, the stack (in `.bss`) and the physical map the heap lives in, so
    // execution continues unchanged after the switch.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    PHYSICAL_MAP_END.store(ram_end, Ordering::Relaxed);
    *LEVEL_4_TABLE.lock() = Some(level_4);
    Ok(())
}

/// Gives every level-4 entry the physical map may use a table now, so
/// that the kernel never adds a level-4 entry after boot: application
/// tables copy the kernel's upper half once, when they are made.
fn reserve_kernel_entries(level_4: u64) -> Result<(), PagingError> {
    let first = (PHYSICAL_MAP_OFFSET >> 39) as usize & 511;
    let last = ((PHYSICAL_MAP_OFFSET + PHYSICAL_MAP_LIMIT - 1) >> 39) as usize & 511;
    // SAFETY: the level-4 table is fresh and not live yet: this is its only
    // view.
    let table = unsafe { &mut *(memory::physical_to_virtual(level_4) as *mut PageTable) };
    for index in first..=last {
        if table[index].is_unused() {
            let frame = memory::allocate_frame().ok_or(PagingError::OutOfMemory)?;
            table[index].set_addr(PhysAddr::new(frame), Flags::PRESENT | Flags::WRITABLE);
        }
    }
    Ok(())
}

/// Whether the page holding application address `vaddr` allows `access` in
/// the tables this processor has loaded (a fault on it then came from a
/// stale TLB entry). Reads the tables without their lock: a translation
/// changing meanwhile only makes the fault be taken again.
pub fn loaded_tables_allow(vaddr: u64, access: crate::interrupts::Access) -> bool {
    if vaddr >= USER_END {
        return false;
    }
    let (root, _) = Cr3::read();
    let mut table = root.start_address().as_u64();
    for level in (1..=4u32).rev() {
        let index = ((vaddr >> (12 + 9 * (level - 1))) & 511) as usize;
        // SAFETY: the loaded tables stay alive while this thread runs on
        // them; entries are read whole.
        let tables: &PageTable = unsafe { &*(memory::physical_to_virtual(table) as *const PageTable) };
        let entry = &tables[index];
        let flags = entry.flags();
        if !flags.contains(Flags::PRESENT) {
            return false;
        }
        if level == 1 {
            return match access {
                crate::interrupts::Access::Read => true,
                crate::interrupts::Access::Write => flags.contains(Flags::WRITABLE),
                crate::interrupts::Access::Execute => !flags.contains(Flags::NO_EXECUTE),
            };
        }
        if flags.contains(Flags::HUGE_PAGE) {
            return false;
        }
        table = entry.addr().as_u64();
    }
    false
}

fn map_physical_memory(
    mapper: &mut OffsetPageTable<'static>,
    memory_map: &MemoryMap,
) -> Result<u64, PagingError> {
    let mut ram_end = HUGE_PAGE_SIZE;
    // Low memory holds firmware tables (MP table, RSDP) the kernel reads.
    map_huge_range(mapper, 0, HUGE_PAGE_SIZE, Flags::empty())?;
    for region in memory_map.regions() {
        let start = region.start & !(HUGE_PAGE_SIZE - 1);
        let end = align_up(region.end().min(PHYSICAL_MAP_LIMIT), HUGE_PAGE_SIZE);
        let cache_flags = match region.kind {
            MemoryKind::Reserved => Flags::NO_CACHE | Flags::WRITE_THROUGH,
            _ => {
                ram_end = ram_end.max(end);
                Flags::empty()
            }
        };
        map_huge_range(mapper, start, end, cache_flags)?;
    }
    Ok(ram_end)
}

fn map_huge_range(
    mapper: &mut OffsetPageTable<'static>,
    start: u64,
    end: u64,
    extra_flags: Flags,
) -> Result<(), PagingError> {
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL | extra_flags;
    let mut paddr = start;
    while paddr < end {
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(PHYSICAL_MAP_OFFSET + paddr));
        let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(paddr));
        // SAFETY: the physical map aliases RAM at a fixed offset that nothing
        // else uses; the new tables are not live yet, so no flush is needed.
        match unsafe { mapper.map_to(page, frame, flags, &mut HeapFrames) } {
            Ok(flush) => flush.ignore(),
            Err(MapToError::PageAlreadyMapped(_)) => {}
            Err(_) => return Err(PagingError::OutOfMemory),
        }
        paddr += HUGE_PAGE_SIZE;
    }
    Ok(())
}

fn map_kernel_image(mapper: &mut OffsetPageTable<'static>) -> Result<(), PagingError> {
    let sections = layout::kernel_sections();
    let ranges = [
        (sections.text_start, sections.text_end, Flags::empty()),
        (align_up(sections.text_end, PAGE_SIZE), sections.data_start, Flags::NO_EXECUTE),
        (sections.data_start, sections.end, Flags::WRITABLE | Flags::NO_EXECUTE),
    ];
    for (start, end, rights) in ranges {
        let mut vaddr = start & !(PAGE_SIZE - 1);
        while vaddr < end {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(vaddr));
            let frame = PhysFrame::containing_address(PhysAddr::new(vaddr - KERNEL_VIRTUAL_OFFSET));
            let flags = Flags::PRESENT | Flags::GLOBAL | rights;
            // SAFETY: maps the image onto its own physical pages at the
            // address it was linked for; the tables are not live yet.
            match unsafe { mapper.map_to(page, frame, flags, &mut HeapFrames) } {
                Ok(flush) => flush.ignore(),
                Err(_) => return Err(PagingError::OutOfMemory),
            }
            vaddr += PAGE_SIZE;
        }
    }
    Ok(())
}

/// Access rights of an application page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRights {
    /// Any access is allowed (x86 pages cannot be write- or execute-only).
    pub is_accessible: bool,
    /// Writes are allowed.
    pub is_writable: bool,
    /// Instruction fetches are allowed.
    pub is_executable: bool,
}

/// The flags of the page tables above application pages: every access
/// allowed, so that the last level alone decides (its entries change in
/// place, by `mprotect` or a copy on write, without visiting the levels
/// above, and a level that refused writes would make a writable page fault
/// for ever).
pub(super) const APPLICATION_TABLE_FLAGS: Flags = Flags::PRESENT.union(Flags::WRITABLE);

/// Marks an entry that keeps its frame but allows no access (`PROT_NONE`):
/// not present, so every access faults, and not zero, so it is not free.
const INACCESSIBLE: Flags = Flags::BIT_9;

impl PageRights {
    pub(super) fn flags(self) -> Flags {
        if !self.is_accessible {
            return INACCESSIBLE | Flags::NO_EXECUTE;
        }
        let mut flags = Flags::PRESENT;
        if self.is_writable {
            flags |= Flags::WRITABLE;
        }
        if !self.is_executable {
            flags |= Flags::NO_EXECUTE;
        }
        flags
    }
}

/// Why an application page could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The address is not a page-aligned application address.
    NotApplicationPage,
    /// The page is already mapped.
    AlreadyMapped,
    /// No memory is left.
    OutOfMemory,
}

pub(super) fn application_page(vaddr: u64) -> Result<Page<Size4KiB>, MapError> {
    if !vaddr.is_multiple_of(PAGE_SIZE) || vaddr == 0 || vaddr >= USER_END {
        return Err(MapError::NotApplicationPage);
    }
    Ok(Page::containing_address(VirtAddr::new(vaddr)))
}

fn with_tables<T>(operation: impl FnOnce(&mut OffsetPageTable<'static>) -> T) -> Option<T> {
    let guard = LEVEL_4_TABLE.lock();
    let level_4 = (*guard)?;
    // SAFETY: the table was built by `init`, and the lock is held.
    let mut mapper = unsafe { tables(level_4) };
    Some(operation(&mut mapper))
}

/// Physical address of the kernel's level-4 table (0 before `init`).
pub fn level_4_table_paddr() -> u64 {
    LEVEL_4_TABLE.lock().unwrap_or(0)
}

/// Makes the page at physical `paddr` unreachable through the physical map:
/// a guard page under a stack, so that running off the stack faults
/// instead of writing into the block below. The 2 MiB page around it is
/// split into 4 KiB pages first (its table is kept). Returns whether the
/// page is guarded.
///
/// Other processors may hold the old translation until their TLBs drop it:
/// the guard takes effect there later, but no address ever reaches a
/// different frame than before, so no shootdown is needed.
pub fn guard_physical_page(paddr: u64) -> bool {
    with_level_1_entry(paddr, |entry| {
        entry.set_unused();
        x86_64::instructions::tlb::flush(VirtAddr::new(PHYSICAL_MAP_OFFSET + paddr));
    })
    .is_some()
}

/// Makes a page [`guard_physical_page`] guarded reachable again (before
/// its frame is freed). Processors do not cache absent entries, so no
/// flush is needed.
pub fn unguard_physical_page(paddr: u64) {
    let page = paddr & !(PAGE_SIZE - 1);
    with_level_1_entry(paddr, |entry| {
        entry.set_addr(PhysAddr::new(page), PHYSICAL_PAGE_FLAGS);
    });
}

/// The rights of a 4 KiB page of RAM in the physical map.
const PHYSICAL_PAGE_FLAGS: Flags =
    Flags::PRESENT.union(Flags::WRITABLE).union(Flags::NO_EXECUTE).union(Flags::GLOBAL);

/// Runs `operation` on the level-1 entry that maps RAM at `paddr` in the
/// physical map, splitting a 2 MiB page into a level-1 table first.
/// `None` when the address is outside the map or no frame is left for the
/// table.
fn with_level_1_entry(
    paddr: u64,
    operation: impl FnOnce(&mut x86_64::structures::paging::page_table::PageTableEntry),
) -> Option<()> {
    if paddr >= physical_map_end() {
        return None;
    }
    let guard = LEVEL_4_TABLE.lock();
    let level_4 = (*guard)?;
    let vaddr = VirtAddr::new(PHYSICAL_MAP_OFFSET + paddr);
    let indexes = [vaddr.p4_index(), vaddr.p3_index(), vaddr.p2_index()];
    let mut table = level_4;
    for (depth, index) in indexes.into_iter().enumerate() {
        // SAFETY: `table` is a live table of the kernel's, reached from its
        // level-4 table through present, non-huge entries; the lock is held.
        let entries = unsafe { &mut *(memory::physical_to_virtual(table) as *mut PageTable) };
        let entry = &mut entries[index];
        if entry.is_unused() || (depth < 2 && entry.flags().contains(Flags::HUGE_PAGE)) {
            return None;
        }
        if depth == 2 && entry.flags().contains(Flags::HUGE_PAGE) {
            let level_1 = memory::allocate_frame()?;
            let huge_start = entry.addr().as_u64();
            let flags = (entry.flags() - Flags::HUGE_PAGE) | Flags::PRESENT;
            // SAFETY: the frame is fresh and zeroed, not yet reachable.
            let pages = unsafe { &mut *(memory::physical_to_virtual(level_1) as *mut PageTable) };
            for (number, page) in pages.iter_mut().enumerate() {
                page.set_addr(PhysAddr::new(huge_start + number as u64 * PAGE_SIZE), flags);
            }
            // The same addresses reach the same frames through the new
            // table: one store swaps the 2 MiB page for it.
            entry.set_addr(PhysAddr::new(level_1), Flags::PRESENT | Flags::WRITABLE);
        }
        table = entry.addr().as_u64();
    }
    // SAFETY: as above, for the level-1 table just reached.
    let entries = unsafe { &mut *(memory::physical_to_virtual(table) as *mut PageTable) };
    operation(&mut entries[vaddr.p1_index()]);
    Some(())
}

/// Maps low physical memory at its own address (below the application's
/// lowest mappable address), for code that runs while paging turns on.
pub fn map_identity(range: crate::memory::PhysicalRange) -> bool {
    let mut address = range.start & !(PAGE_SIZE - 1);
    while address < range.end() {
        if address == 0 || address >= 0x1_0000 {
            return false;
        }
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
        let frame = PhysFrame::containing_address(PhysAddr::new(address));
        let mapped = with_tables(|mapper| {
            // SAFETY: the page is below any address an application may map
            // (64 KiB) and maps memory onto itself for code that expects it.
            match unsafe { mapper.map_to(page, frame, Flags::PRESENT | Flags::WRITABLE, &mut HeapFrames) } {
                Ok(flush) => {
                    flush.flush();
                    true
                }
                Err(_) => false,
            }
        });
        if mapped != Some(true) {
            return false;
        }
        address += PAGE_SIZE;
    }
    true
}

/// Removes mappings made by [`map_identity`] (the frames are not freed).
pub fn unmap_identity(range: crate::memory::PhysicalRange) {
    let mut address = range.start & !(PAGE_SIZE - 1);
    while address < range.end() {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
        with_tables(|mapper| {
            if let Ok((_, flush)) = mapper.unmap(page) {
                flush.flush();
            }
        });
        address += PAGE_SIZE;
    }
}

/// Walks the level-1 entries of the tables below `table` (at `level`) that
/// cover `[start, end)`, skipping absent tables; `base` is the first
/// address `table` covers.
///
/// # Safety
/// `table` must be a page table of the given level built by this module,
/// and the caller must hold the lock of the tables it belongs to.
pub(super) unsafe fn walk(
    table: u64,
    level: u32,
    base: u64,
    start: u64,
    end: u64,
    visit: &mut dyn FnMut(&mut x86_64::structures::paging::page_table::PageTableEntry, u64),
) {
    let span = 1u64 << (12 + 9 * (level - 1));
    // SAFETY: by the contract, `table` is a live page table reachable
    // through the physical map, and the lock excludes other users.
    let entries = unsafe { &mut *(memory::physical_to_virtual(table) as *mut PageTable) };
    let first = ((start.max(base) - base) / span) as usize;
    let last = (((end - 1).min(base + 512 * span - 1) - base) / span) as usize;
    for index in first..=last {
        let entry = &mut entries[index];
        if entry.is_unused() {
            continue;
        }
        let address = base + index as u64 * span;
        if level == 1 {
            visit(entry, address);
        } else if !entry.flags().contains(Flags::HUGE_PAGE) {
            // SAFETY: a present, non-huge entry above level 1 points at the
            // next-level table; the lock is still held.
            unsafe { walk(entry.addr().as_u64(), level - 1, address, start, end, visit) };
        }
    }
}

/// Maps device registers at physical `paddr` (uncached) and returns their
/// virtual address in the physical map, or `None` if tables are missing.
pub fn map_device(paddr: u64, size: u64) -> Option<u64> {
    let end = paddr.checked_add(size)?;
    with_tables(|mapper| {
        let mut page_paddr = paddr & !(PAGE_SIZE - 1);
        while page_paddr < end {
            let vaddr = VirtAddr::new(PHYSICAL_MAP_OFFSET + page_paddr);
            if mapper.translate_addr(vaddr).is_none() {
                let page = Page::<Size4KiB>::containing_address(vaddr);
                let frame = PhysFrame::containing_address(PhysAddr::new(page_paddr));
                let flags = Flags::PRESENT
                    | Flags::WRITABLE
                    | Flags::NO_EXECUTE
                    | Flags::NO_CACHE
                    | Flags::WRITE_THROUGH;
                // SAFETY: device registers get their own page in the physical
                // map, where no RAM aliases them.
                match unsafe { mapper.map_to(page, frame, flags, &mut HeapFrames) } {
                    Ok(flush) => flush.flush(),
                    Err(_) => return None,
                }
            }
            page_paddr += PAGE_SIZE;
        }
        Some(PHYSICAL_MAP_OFFSET + paddr)
    })
    .flatten()
}
