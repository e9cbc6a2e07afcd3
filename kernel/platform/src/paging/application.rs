//! The page tables of one application address space.
//!
//! Each process has a level-4 table of its own. Its lower half (entries
//! 0-255) holds the process's pages; its upper half repeats the kernel's
//! level-4 entries, which point at tables every address space shares, so
//! the kernel reaches its own memory whatever table is loaded. The kernel
//! never adds a level-4 entry after boot (`paging::init` creates every one
//! the physical map may need), so the copies never go stale.
//!
//! Tables above application pages always allow every access
//! ([`APPLICATION_TABLE_FLAGS`]): the last level alone decides.

use alloc::sync::Arc;
use alloc::vec::Vec;

use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{Mapper, PageTable, PageTableFlags as Flags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use super::{APPLICATION_TABLE_FLAGS, HeapFrames, MapError, PageRights, application_page, tables, walk};
use crate::memory::{self, PAGE_SIZE, USER_END};
use crate::sync::SpinMutex;

/// One address space's page tables.
#[derive(Debug)]
pub struct ApplicationTables {
    level_4: u64,
    lock: SpinMutex<()>,
}

impl ApplicationTables {
    /// Tables with no application page, unless no frame is left.
    pub fn new() -> Option<Arc<ApplicationTables>> {
        let kernel = super::level_4_table_paddr();
        if kernel == 0 {
            return None;
        }
        let level_4 = memory::allocate_frame()?;
        // SAFETY: both tables are whole, mapped frames: the new one is
        // fresh and unshared, and the kernel's upper half is read only to be
        // copied (its entries are set once, at boot).
        unsafe {
            let source = &*(memory::physical_to_virtual(kernel) as *const PageTable);
            let target = &mut *(memory::physical_to_virtual(level_4) as *mut PageTable);
            for index in 256..512 {
                target[index] = source[index].clone();
            }
        }
        Some(Arc::new(ApplicationTables { level_4, lock: SpinMutex::new(()) }))
    }

    /// The physical address of the level-4 table (what CR3 holds).
    pub fn root(&self) -> u64 {
        self.level_4
    }

    fn with_mapper<T>(
        &self,
        operation: impl FnOnce(&mut x86_64::structures::paging::OffsetPageTable<'static>) -> T,
    ) -> T {
        let _guard = self.lock.lock();
        // SAFETY: the level-4 table was built by `new`, and the lock is held.
        let mut mapper = unsafe { tables(self.level_4) };
        operation(&mut mapper)
    }

    fn walk(&self, start: u64, end: u64, visit: &mut dyn FnMut(&mut PageTableEntry, u64)) {
        if start >= end || end > USER_END {
            return;
        }
        let _guard = self.lock.lock();
        // SAFETY: the level-4 table was built by `new`; the lock is held.
        unsafe { walk(self.level_4, 4, 0, start, end, visit) };
    }

    /// Maps a fresh zeroed page at application address `vaddr`.
    pub fn map_page(&self, vaddr: u64, rights: PageRights) -> Result<(), MapError> {
        application_page(vaddr)?;
        let paddr = crate::frames::allocate_zeroed(crate::frames::Purpose::Application)
            .ok_or(MapError::OutOfMemory)?;
        let result = self.map_owned(vaddr, paddr, rights);
        if result.is_err() {
            // SAFETY: the frame was never mapped; this code is its only user.
            unsafe { memory::free_frame(paddr) };
        }
        result
    }

    /// Maps the frame at `paddr`, which the caller holds a reference to, at
    /// application address `vaddr`; the mapping becomes one more user of
    /// it. A different frame mapped there before is unmapped (and freed by
    /// the next [`crate::tlb::synchronize`], which the caller must run:
    /// other processors may cache the old translation); returns whether
    /// there was one. The same frame mapped there only gets `rights`.
    pub fn map_frame(&self, vaddr: u64, paddr: u64, rights: PageRights) -> Result<bool, MapError> {
        application_page(vaddr)?;
        if !paddr.is_multiple_of(PAGE_SIZE) {
            return Err(MapError::OutOfMemory);
        }
        let mut outcome: Option<Result<bool, MapError>> = None;
        self.walk(vaddr, vaddr + PAGE_SIZE, &mut |entry, address| {
            let old = entry.addr().as_u64();
            if old == paddr {
                entry.set_addr(PhysAddr::new(paddr), rights.flags());
                outcome = Some(Ok(false));
            } else if crate::frames::share(paddr) {
                entry.set_addr(PhysAddr::new(paddr), rights.flags());
                crate::tlb::free_after_synchronize(old);
                outcome = Some(Ok(true));
            } else {
                outcome = Some(Err(MapError::OutOfMemory));
            }
            x86_64::instructions::tlb::flush(VirtAddr::new(address));
        });
        if let Some(outcome) = outcome {
            return outcome;
        }
        if !crate::frames::share(paddr) {
            return Err(MapError::OutOfMemory);
        }
        let result = self.map_owned(vaddr, paddr, rights);
        if result.is_err() {
            // SAFETY: the reference taken above was never mapped.
            unsafe { memory::free_frame(paddr) };
        }
        result.map(|()| false)
    }

    /// Maps `paddr` at `vaddr`, handing the caller's reference to the
    /// mapping.
    fn map_owned(&self, vaddr: u64, paddr: u64, rights: PageRights) -> Result<(), MapError> {
        let page = application_page(vaddr)?;
        let frame = PhysFrame::containing_address(PhysAddr::new(paddr));
        self.with_mapper(|mapper| {
            // SAFETY: the page is in the application half, which holds no
            // kernel data; the frame is a whole page the caller holds a
            // reference to.
            match unsafe {
                mapper.map_to_with_table_flags(
                    page,
                    frame,
                    rights.flags(),
                    APPLICATION_TABLE_FLAGS,
                    &mut HeapFrames,
                )
            } {
                Ok(flush) => {
                    flush.flush();
                    Ok(())
                }
                Err(MapToError::PageAlreadyMapped(_)) => Err(MapError::AlreadyMapped),
                Err(_) => Err(MapError::OutOfMemory),
            }
        })
    }

    /// The frame mapped at application page `vaddr` (accessible or not).
    pub fn frame_at(&self, vaddr: u64) -> Option<u64> {
        let page = vaddr & !(PAGE_SIZE - 1);
        let mut frame = None;
        self.walk(page, page + PAGE_SIZE, &mut |entry, _| frame = Some(entry.addr().as_u64()));
        frame
    }

    /// Unmaps every application page in `[start, end)`; their frames are
    /// freed by the next [`crate::tlb::synchronize`].
    pub fn unmap_range(&self, start: u64, end: u64) {
        self.walk(start, end, &mut |entry, address| {
            let frame = entry.addr().as_u64();
            entry.set_unused();
            x86_64::instructions::tlb::flush(VirtAddr::new(address));
            crate::tlb::free_after_synchronize(frame);
        });
    }

    /// Sets the rights of every mapped application page in `[start, end)`;
    /// other processors see the change after the next
    /// [`crate::tlb::synchronize`].
    pub fn protect_range(&self, start: u64, end: u64, rights: PageRights) {
        self.walk(start, end, &mut |entry, address| {
            let frame = entry.addr();
            entry.set_addr(frame, rights.flags());
            x86_64::instructions::tlb::flush(VirtAddr::new(address));
        });
    }

    /// Like [`ApplicationTables::protect_range`] for a private mapping:
    /// a page whose frame has other users (a process forked from this one,
    /// or a file's cache) does not get the right to write; a store to it
    /// faults and [`ApplicationTables::make_private`] gives it its own copy.
    pub fn protect_private_range(&self, start: u64, end: u64, rights: PageRights) {
        self.walk(start, end, &mut |entry, address| {
            let frame = entry.addr();
            let mut flags = rights.flags();
            if crate::frames::users(frame.as_u64()) > 1 {
                flags.remove(Flags::WRITABLE);
            }
            entry.set_addr(frame, flags);
            x86_64::instructions::tlb::flush(VirtAddr::new(address));
        });
    }

    /// Gives the page at `vaddr` (which must be mapped) a frame this
    /// mapping alone uses, with `rights`: the frame itself if nobody else
    /// uses it, else a copy of it (copy on write). Returns whether the
    /// frame was replaced (other processors must forget the old one).
    pub fn make_private(&self, vaddr: u64, rights: PageRights) -> Result<bool, MapError> {
        application_page(vaddr)?;
        let frame = self.frame_at(vaddr).ok_or(MapError::NotApplicationPage)?;
        let copy = if crate::frames::users(frame) > 1 {
            let copy = crate::frames::allocate_block(0, crate::frames::Purpose::Application)
                .ok_or(MapError::OutOfMemory)?;
            crate::frames::copy(frame, copy);
            Some(copy)
        } else {
            None
        };
        let mut is_replaced = false;
        let mut is_used = false;
        self.walk(vaddr, vaddr + PAGE_SIZE, &mut |entry, address| {
            if entry.addr().as_u64() != frame {
                // Replaced meanwhile: the access is retried.
                return;
            }
            match copy {
                Some(copy) => {
                    entry.set_addr(PhysAddr::new(copy), rights.flags());
                    crate::tlb::free_after_synchronize(frame);
                    is_replaced = true;
                    is_used = true;
                }
                None => entry.set_addr(PhysAddr::new(frame), rights.flags()),
            }
            x86_64::instructions::tlb::flush(VirtAddr::new(address));
        });
        if let Some(copy) = copy
            && !is_used
        {
            // SAFETY: the copy was never mapped; this is its only reference.
            unsafe { memory::free_frame(copy) };
        }
        Ok(is_replaced)
    }

    /// Moves every mapped application page of `[from, from + length)` to
    /// the same place in `[to, to + length)`, which must hold no mapping,
    /// with its frame and rights: `mremap`. The old addresses are left
    /// unmapped; other processors forget them at the next
    /// [`crate::tlb::synchronize`]. On failure (no frame for a page table)
    /// nothing has moved.
    pub fn move_range(&self, from: u64, to: u64, length: u64) -> Result<(), MapError> {
        let (Some(from_end), Some(to_end)) = (from.checked_add(length), to.checked_add(length)) else {
            return Err(MapError::NotApplicationPage);
        };
        if from_end > USER_END || to_end > USER_END {
            return Err(MapError::NotApplicationPage);
        }
        let mut entries: Vec<(u64, u64, Flags)> = Vec::new();
        self.walk(from, from_end, &mut |entry, address| {
            entries.push((address, entry.addr().as_u64(), entry.flags()));
        });
        for (moved, &(address, frame, flags)) in entries.iter().enumerate() {
            let page = application_page(to + (address - from))?;
            let frame = PhysFrame::containing_address(PhysAddr::new(frame));
            let is_mapped = self.with_mapper(|mapper| {
                // SAFETY: the new page is in the application half and free;
                // the frame keeps the one reference its old entry held,
                // which is cleared below once every page has its new entry.
                match unsafe {
                    mapper.map_to_with_table_flags(
                        page,
                        frame,
                        flags,
                        APPLICATION_TABLE_FLAGS,
                        &mut HeapFrames,
                    )
                } {
                    Ok(flush) => {
                        flush.flush();
                        true
                    }
                    Err(_) => false,
                }
            });
            if !is_mapped {
                // Undo: the new entries go, the old ones still hold the frames.
                for &(address, _, _) in &entries[..moved] {
                    let new = to + (address - from);
                    self.walk(new, new + PAGE_SIZE, &mut |entry, address| {
                        entry.set_unused();
                        x86_64::instructions::tlb::flush(VirtAddr::new(address));
                    });
                }
                return Err(MapError::OutOfMemory);
            }
        }
        self.walk(from, from_end, &mut |entry, address| {
            entry.set_unused();
            x86_64::instructions::tlb::flush(VirtAddr::new(address));
        });
        Ok(())
    }

    /// Gives `child` the pages of `[start, end)`, each one more user of its
    /// frame: for `fork`. With `copy_on_write`, both lose the right to
    /// write (a store then copies the page, or takes it back alone once the
    /// other side is gone); without, both keep their rights (shared
    /// mappings). Returns whether this side lost rights (other processors
    /// must then forget their translations).
    pub fn copy_into(
        &self,
        child: &ApplicationTables,
        start: u64,
        end: u64,
        copy_on_write: bool,
    ) -> Result<bool, MapError> {
        let mut entries: Vec<(u64, u64, Flags)> = Vec::new();
        let mut is_restricted = false;
        self.walk(start, end, &mut |entry, address| {
            let mut flags = entry.flags();
            if copy_on_write && flags.contains(Flags::WRITABLE) {
                flags.remove(Flags::WRITABLE);
                entry.set_flags(flags);
                x86_64::instructions::tlb::flush(VirtAddr::new(address));
                is_restricted = true;
            }
            entries.push((address, entry.addr().as_u64(), flags));
        });
        for &(address, frame, flags) in &entries {
            if !crate::frames::share(frame) {
                return Err(MapError::OutOfMemory);
            }
            let page = application_page(address)?;
            let result = child.with_mapper(|mapper| {
                // SAFETY: the child's page is in its application half and
                // free (a new address space); the reference just taken goes
                // to its entry.
                match unsafe {
                    mapper.map_to_with_table_flags(
                        page,
                        PhysFrame::containing_address(PhysAddr::new(frame)),
                        flags,
                        APPLICATION_TABLE_FLAGS,
                        &mut HeapFrames,
                    )
                } {
                    Ok(flush) => {
                        flush.ignore();
                        Ok(())
                    }
                    Err(_) => Err(MapError::OutOfMemory),
                }
            });
            if let Err(error) = result {
                // SAFETY: the reference taken above was never mapped.
                unsafe { memory::free_frame(frame) };
                return Err(error);
            }
        }
        Ok(is_restricted)
    }

    /// How many pages are mapped in `[start, end)` (empty tables are
    /// skipped whole).
    pub fn count_mapped(&self, start: u64, end: u64) -> u64 {
        let mut count = 0;
        self.walk(start, end, &mut |_, _| count += 1);
        count
    }

    /// Whether the page holding `vaddr` allows `access` here.
    pub fn allows(&self, vaddr: u64, access: crate::interrupts::Access) -> bool {
        let page = vaddr & !(PAGE_SIZE - 1);
        let mut is_allowed = false;
        self.walk(page, page + PAGE_SIZE, &mut |entry, _| {
            let flags = entry.flags();
            is_allowed = flags.contains(Flags::PRESENT)
                && match access {
                    crate::interrupts::Access::Read => true,
                    crate::interrupts::Access::Write => flags.contains(Flags::WRITABLE),
                    crate::interrupts::Access::Execute => !flags.contains(Flags::NO_EXECUTE),
                };
        });
        is_allowed
    }
}

impl Drop for ApplicationTables {
    /// Frees the tables, and gives back any page still mapped (the address
    /// space normally unmapped everything first).
    fn drop(&mut self) {
        // SAFETY: nothing uses the tables any more (the last reference is
        // gone, and no processor has them loaded: a thread keeps its tables
        // alive while it may run on them); every table below the lower half
        // of the level-4 table was allocated by `HeapFrames` for these
        // tables alone.
        unsafe { free_below(self.level_4, 4, 0..256) };
        // SAFETY: as above; the level-4 table came from `allocate_frame`.
        unsafe { memory::free_frame(self.level_4) };
    }
}

/// Frees the tables below `table` (at `level`) for its entries in `range`,
/// and releases the frames level 1 maps.
///
/// # Safety
/// The tables must belong to one address space that nothing uses any more.
unsafe fn free_below(table: u64, level: u32, range: core::ops::Range<usize>) {
    // SAFETY: the caller's contract: a live table, no other user.
    let entries = unsafe { &mut *(memory::physical_to_virtual(table) as *mut PageTable) };
    for index in range {
        let entry = &mut entries[index];
        if entry.is_unused() {
            continue;
        }
        let next = entry.addr().as_u64();
        if level > 1 {
            // SAFETY: a used entry above level 1 points at the next table.
            unsafe { free_below(next, level - 1, 0..512) };
        }
        // SAFETY: the next-level table (or the mapped frame, which this
        // entry held a reference to) has no other user.
        unsafe { memory::free_frame(next) };
        entry.set_unused();
    }
}
