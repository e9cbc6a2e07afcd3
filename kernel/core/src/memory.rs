//! The application's address space: areas, `mmap`, `brk`, demand paging.
//!
//! An [`AddressSpace`] records which ranges of the application half are in
//! use (areas, page-aligned, never overlapping) and with which rights. Pages
//! are mapped lazily: a fault inside an area whose rights allow the access
//! maps a zeroed page ([`AddressSpace::resolve_fault`]); the page tables
//! themselves are the record of which pages exist.

use alloc::collections::BTreeMap;

use crate::errno::Errno;
use crate::machine::{Machine, MapFailure, Rights};

mod gaps;

use gaps::Gaps;

/// The size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// The lowest address an application may map (Linux's `mmap_min_addr`).
pub const MAPPABLE_START: u64 = 0x1_0000;
/// One past the highest application address.
pub const APPLICATION_END: u64 = 0x0000_8000_0000_0000;
/// One past the top of the main thread's stack.
pub const STACK_TOP: u64 = 0x0000_7fff_ffff_f000;
/// The main thread's stack size (`RLIMIT_STACK`).
pub const STACK_SIZE: u64 = 8 << 20;
/// `mmap` places mappings below this address, top down.
pub const MMAP_TOP: u64 = STACK_TOP - STACK_SIZE - (1 << 30);
/// Where a position-independent executable is loaded (Linux's
/// `ELF_ET_DYN_BASE` on x86-64).
pub const PIE_BASE: u64 = 0x5555_5555_4000;

/// `PROT_*` bits.
pub mod prot {
    /// Readable.
    pub const READ: u64 = 0x1;
    /// Writable.
    pub const WRITE: u64 = 0x2;
    /// Executable.
    pub const EXEC: u64 = 0x4;
    /// `mprotect` only: extend to the start of a grows-down area.
    pub const GROWSDOWN: u64 = 0x0100_0000;
    /// `mprotect` only: extend to the end of a grows-up area.
    pub const GROWSUP: u64 = 0x0200_0000;
}

/// `MAP_*` bits.
pub mod map {
    /// Shared with other mappings of the same object.
    pub const SHARED: u64 = 0x01;
    /// Copy on write.
    pub const PRIVATE: u64 = 0x02;
    /// Shared, with unknown flags refused.
    pub const SHARED_VALIDATE: u64 = 0x03;
    /// The sharing type bits.
    pub const TYPE: u64 = 0x0f;
    /// Place exactly at the address, replacing what is there.
    pub const FIXED: u64 = 0x10;
    /// Not backed by a file.
    pub const ANONYMOUS: u64 = 0x20;
    /// Do not count the mapping against the memory that can be committed.
    pub const NORESERVE: u64 = 0x4000;
    /// Map every page now.
    pub const POPULATE: u64 = 0x8000;
    /// Place exactly at the address, failing if something is there.
    pub const FIXED_NOREPLACE: u64 = 0x10_0000;
}

/// What an area holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    /// A segment of the executable.
    Image,
    /// The `brk` heap.
    Heap,
    /// The main thread's stack.
    Stack,
    /// An anonymous `mmap`.
    Anonymous,
    /// The vDSO's code.
    Vdso,
    /// The vDSO's data page.
    VdsoData,
}

/// A range of the address space in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// What accesses are allowed.
    pub rights: Rights,
    /// What the area holds.
    pub kind: AreaKind,
}

/// What became of a page fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultResolution {
    /// The page is mapped now (or was already): retry the access.
    Mapped,
    /// No area allows the access: a segmentation fault.
    Invalid,
    /// The access was allowed but no memory was left for the page.
    OutOfMemory,
}

/// Whether a mapping of `length` bytes could ever be backed, by Linux's
/// default overcommit heuristic: no single mapping larger than all RAM.
fn is_committable(length: u64) -> bool {
    let total = crate::pages::figures().total_bytes;
    total == 0 || length <= total
}

/// The kind of access that faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// The application half of the address space.
#[derive(Debug)]
pub struct AddressSpace {
    areas: BTreeMap<u64, Area>,
    /// The free ranges of the `mmap` window, `[MAPPABLE_START, MMAP_TOP)`.
    gaps: Gaps,
    heap_start: u64,
    heap_break: u64,
    /// Mappings were removed or lost rights since the last
    /// [`AddressSpace::take_shootdown`]: other processors may hold stale
    /// translations.
    needs_shootdown: bool,
}

impl Default for AddressSpace {
    fn default() -> Self {
        AddressSpace {
            areas: BTreeMap::new(),
            gaps: Gaps::new(MAPPABLE_START, MMAP_TOP),
            heap_start: 0,
            heap_break: 0,
            needs_shootdown: false,
        }
    }
}

/// Rounds up to a page boundary; `None` on overflow.
pub fn page_align_up(value: u64) -> Option<u64> {
    value.checked_add(PAGE_SIZE - 1).map(|value| value & !(PAGE_SIZE - 1))
}

/// Rights from `PROT_*` bits; `None` if unknown bits are set.
pub fn rights_from_prot(bits: u64) -> Option<Rights> {
    if bits & !(prot::READ | prot::WRITE | prot::EXEC) != 0 {
        return None;
    }
    Some(Rights {
        read: bits & prot::READ != 0,
        write: bits & prot::WRITE != 0,
        execute: bits & prot::EXEC != 0,
    })
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        Self::default()
    }

    /// The areas, by start address.
    pub fn areas(&self) -> impl Iterator<Item = (u64, &Area)> {
        self.areas.iter().map(|(start, area)| (*start, area))
    }

    /// The area containing `address`, with its start.
    pub fn area_at(&self, address: u64) -> Option<(u64, &Area)> {
        self.areas
            .range(..=address)
            .next_back()
            .filter(|(_, area)| address < area.end)
            .map(|(start, area)| (*start, area))
    }

    /// Records an area over free addresses.
    fn insert_area(&mut self, start: u64, area: Area) {
        self.gaps.take(start, area.end);
        self.areas.insert(start, area);
    }

    /// The free ranges of the `mmap` window, as the gap index has them.
    #[cfg(test)]
    fn gap_ranges(&self) -> alloc::vec::Vec<(u64, u64)> {
        self.gaps.ranges()
    }

    /// Whether mappings were removed or restricted since the last call:
    /// then other processors must drop their stale translations.
    pub fn take_shootdown(&mut self) -> bool {
        core::mem::take(&mut self.needs_shootdown)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        if self.areas.range(start..end).next().is_some() {
            return true;
        }
        self.areas.range(..start).next_back().is_some_and(|(_, area)| area.end > start)
    }

    /// Adds an area over `[start, end)`, which must be free and page-aligned;
    /// `populate` maps its pages now.
    pub fn add_area(
        &mut self,
        machine: &dyn Machine,
        start: u64,
        end: u64,
        rights: Rights,
        kind: AreaKind,
        populate: bool,
    ) -> Result<(), Errno> {
        if !start.is_multiple_of(PAGE_SIZE)
            || !end.is_multiple_of(PAGE_SIZE)
            || start >= end
            || end > APPLICATION_END
        {
            return Err(Errno::EINVAL);
        }
        if self.overlaps(start, end) {
            return Err(Errno::EEXIST);
        }
        self.insert_area(start, Area { end, rights, kind });
        if populate && let Err(error) = self.populate(machine, start, end) {
            self.remove_range(machine, start, end);
            return Err(error);
        }
        self.merge_at(start);
        self.merge_at(end);
        Ok(())
    }

    /// Maps every not-yet-mapped page of `[start, end)` with its area's
    /// rights.
    pub fn populate(&mut self, machine: &dyn Machine, start: u64, end: u64) -> Result<(), Errno> {
        let mut page = start;
        while page < end {
            let rights = self.area_at(page).map(|(_, area)| area.rights).ok_or(Errno::ENOMEM)?;
            match machine.map_page(page, rights) {
                Ok(()) | Err(MapFailure::AlreadyMapped) => {}
                Err(MapFailure::OutOfMemory) => return Err(Errno::ENOMEM),
            }
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Splits areas so that `start` and `end` fall on area boundaries.
    fn split_at(&mut self, address: u64) {
        let Some((start, area)) = self.area_at(address).map(|(start, area)| (start, *area)) else {
            return;
        };
        if start == address {
            return;
        }
        self.areas.insert(start, Area { end: address, ..area });
        self.areas.insert(address, area);
    }

    /// Joins the areas that end and start at `address` if they are
    /// anonymous memory with the same rights, as Linux merges them: fewer
    /// areas to search and to list in `/proc/self/maps`.
    fn merge_at(&mut self, address: u64) {
        let Some(&right) = self.areas.get(&address) else {
            return;
        };
        let Some((&left_start, &left)) = self.areas.range(..address).next_back() else {
            return;
        };
        if left.end == address
            && left.kind == AreaKind::Anonymous
            && right.kind == AreaKind::Anonymous
            && left.rights == right.rights
        {
            self.areas.remove(&address);
            self.areas.insert(left_start, Area { end: right.end, ..left });
        }
    }

    /// Removes `[start, end)` from the areas and unmaps its pages.
    fn remove_range(&mut self, machine: &dyn Machine, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let starts: alloc::vec::Vec<u64> = self.areas.range(start..end).map(|(start, _)| *start).collect();
        for area_start in starts {
            if let Some(area) = self.areas.remove(&area_start) {
                self.gaps.give_back(area_start, area.end);
            }
        }
        machine.unmap_range(start, end);
        self.needs_shootdown = true;
    }

    /// Finds a free range of `length` bytes, preferring `hint`, else the
    /// top of the smallest gap below [`MMAP_TOP`] (and above the `brk`
    /// heap) that holds it.
    pub fn find_free(&self, length: u64, hint: u64) -> Option<u64> {
        if hint >= MAPPABLE_START
            && hint.is_multiple_of(PAGE_SIZE)
            && hint.checked_add(length).is_some_and(|end| end <= APPLICATION_END)
            && !self.overlaps(hint, hint + length)
        {
            return Some(hint);
        }
        let floor = page_align_up(self.heap_break).unwrap_or(u64::MAX).max(MAPPABLE_START);
        self.gaps.find(length, floor)
    }

    /// `mmap` of anonymous memory.
    pub fn map_anonymous(
        &mut self,
        machine: &dyn Machine,
        address: u64,
        length: u64,
        rights: Rights,
        flags: u64,
    ) -> Result<u64, Errno> {
        if length == 0 {
            return Err(Errno::EINVAL);
        }
        let length = page_align_up(length).ok_or(Errno::ENOMEM)?;
        if flags & map::NORESERVE == 0 && rights.write && !is_committable(length) {
            return Err(Errno::ENOMEM);
        }
        let start = if flags & (map::FIXED | map::FIXED_NOREPLACE) != 0 {
            if !address.is_multiple_of(PAGE_SIZE) {
                return Err(Errno::EINVAL);
            }
            let end =
                address.checked_add(length).filter(|&end| end <= APPLICATION_END).ok_or(Errno::ENOMEM)?;
            if address < MAPPABLE_START {
                return Err(Errno::EPERM);
            }
            if self.overlaps(address, end) {
                if flags & map::FIXED_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                self.remove_range(machine, address, end);
            }
            address
        } else {
            self.find_free(length, address & !(PAGE_SIZE - 1)).ok_or(Errno::ENOMEM)?
        };
        self.add_area(
            machine,
            start,
            start + length,
            rights,
            AreaKind::Anonymous,
            flags & map::POPULATE != 0,
        )?;
        Ok(start)
    }

    /// `munmap`.
    pub fn unmap(&mut self, machine: &dyn Machine, address: u64, length: u64) -> Result<(), Errno> {
        let end = checked_range(address, length)?;
        self.remove_range(machine, address, end);
        Ok(())
    }

    /// `mprotect`: every page of the range must belong to an area.
    pub fn protect(
        &mut self,
        machine: &dyn Machine,
        address: u64,
        length: u64,
        rights: Rights,
    ) -> Result<(), Errno> {
        let end = checked_range(address, length)?;
        let mut cursor = address;
        while cursor < end {
            let (_, area) = self.area_at(cursor).ok_or(Errno::ENOMEM)?;
            cursor = area.end;
        }
        self.split_at(address);
        self.split_at(end);
        let mut is_restricted = false;
        for (_, area) in self.areas.range_mut(address..end) {
            let old = area.rights;
            is_restricted |= (old.read && !rights.read)
                || (old.write && !rights.write)
                || (old.execute && !rights.execute);
            area.rights = rights;
        }
        machine.protect_range(address, end, rights);
        self.merge_at(address);
        self.merge_at(end);
        // Widened rights need no round: a fault on a stale, narrower
        // translation finds the page allowed and just flushes it.
        self.needs_shootdown |= is_restricted;
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)`: drops the pages so they read as zero again.
    pub fn discard(&mut self, machine: &dyn Machine, address: u64, length: u64) -> Result<(), Errno> {
        let end = checked_range(address, length)?;
        machine.unmap_range(address, end);
        self.needs_shootdown = true;
        Ok(())
    }

    /// Sets where the `brk` heap starts: the page just past the executable.
    pub fn set_heap_start(&mut self, address: u64) {
        self.heap_start = address;
        self.heap_break = address;
    }

    /// `brk`: moves the program break if it can, and returns the break.
    pub fn brk(&mut self, machine: &dyn Machine, requested: u64) -> u64 {
        if requested < self.heap_start || requested > MMAP_TOP {
            return self.heap_break;
        }
        let (Some(old_end), Some(new_end)) = (page_align_up(self.heap_break), page_align_up(requested))
        else {
            return self.heap_break;
        };
        if new_end > old_end {
            if self.overlaps(old_end, new_end) || !is_committable(new_end - heap_start_page(self.heap_start))
            {
                return self.heap_break;
            }
            self.insert_area(
                old_end,
                Area { end: new_end, rights: Rights::READ_WRITE, kind: AreaKind::Heap },
            );
            self.merge_heap_areas();
        } else if new_end < old_end {
            self.remove_range(machine, new_end, old_end);
        }
        self.heap_break = requested;
        self.heap_break
    }

    fn merge_heap_areas(&mut self) {
        let heap_start = self.heap_start & !(PAGE_SIZE - 1);
        let Some((&first, _)) = self.areas.range(heap_start..).next() else {
            return;
        };
        let mut end = first;
        let mut merged = alloc::vec::Vec::new();
        for (start, area) in self.areas.range(first..) {
            if *start != end || area.kind != AreaKind::Heap {
                break;
            }
            merged.push(*start);
            end = area.end;
        }
        if merged.len() > 1 {
            for start in &merged {
                self.areas.remove(start);
            }
            self.areas.insert(first, Area { end, rights: Rights::READ_WRITE, kind: AreaKind::Heap });
        }
    }

    /// Maps the page behind a fault if an area allows the access.
    pub fn resolve_fault(&mut self, machine: &dyn Machine, address: u64, access: Access) -> FaultResolution {
        let Some((_, area)) = self.area_at(address) else {
            return FaultResolution::Invalid;
        };
        let rights = area.rights;
        let is_allowed = match access {
            Access::Read => rights.is_accessible(),
            Access::Write => rights.write,
            Access::Execute => rights.execute,
        };
        if !is_allowed {
            return FaultResolution::Invalid;
        }
        match machine.map_page(address & !(PAGE_SIZE - 1), rights) {
            // Another processor faulted the page in first: retry the access.
            Ok(()) | Err(MapFailure::AlreadyMapped) => FaultResolution::Mapped,
            Err(MapFailure::OutOfMemory) => FaultResolution::OutOfMemory,
        }
    }

    /// Unmaps everything, at application exit.
    pub fn release_all(&mut self, machine: &dyn Machine) {
        for (start, area) in core::mem::take(&mut self.areas) {
            machine.unmap_range(start, area.end);
        }
        self.gaps = Gaps::new(MAPPABLE_START, MMAP_TOP);
        self.needs_shootdown = true;
    }
}

/// The page the `brk` heap starts on.
fn heap_start_page(heap_start: u64) -> u64 {
    heap_start & !(PAGE_SIZE - 1)
}

/// Checks an `munmap`/`mprotect`-style range and returns its aligned end.
fn checked_range(address: u64, length: u64) -> Result<u64, Errno> {
    if !address.is_multiple_of(PAGE_SIZE) || length == 0 {
        return Err(Errno::EINVAL);
    }
    let length = page_align_up(length).ok_or(Errno::EINVAL)?;
    address.checked_add(length).filter(|&end| end <= APPLICATION_END).ok_or(Errno::EINVAL)
}

#[cfg(test)]
mod tests;
