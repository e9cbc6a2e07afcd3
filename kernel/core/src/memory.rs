//! The application's address space: areas, `mmap`, `brk`, demand paging.
//!
//! An [`AddressSpace`] records which ranges of the application half are in
//! use (areas, page-aligned, never overlapping) and with which rights. Pages
//! are mapped lazily: a fault inside an area whose rights allow the access
//! maps a zeroed page ([`AddressSpace::resolve_fault`]); the page tables
//! themselves are the record of which pages exist.

use alloc::collections::BTreeMap;

use alloc::sync::Arc;

use crate::errno::Errno;
use crate::machine::{Machine, MapFailure, PageTables, Rights};
use crate::pages::Page;
use crate::vfs::{FsError, Node};

mod count;
mod file;
mod gaps;
mod ranges;
mod resize;

pub use file::FileArea;
use gaps::Gaps;
pub use resize::flags as remap;

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
    /// A file's `mmap`.
    File,
    /// The vDSO's code.
    Vdso,
    /// The vDSO's data page.
    VdsoData,
}

/// A range of the address space in use.
#[derive(Debug, Clone)]
pub struct Area {
    /// One past the last byte (page-aligned).
    pub end: u64,
    /// What accesses are allowed.
    pub rights: Rights,
    /// What the area holds.
    pub kind: AreaKind,
    /// The file whose pages it maps, if any (else its pages start zeroed).
    pub file: Option<FileArea>,
    /// `mlock` locked it (Linux's `VM_LOCKED`): its pages may not be
    /// dropped (`madvise`, `msync(MS_INVALIDATE)`).
    pub is_locked: bool,
}

impl Area {
    /// An area of zero-filled pages.
    pub fn anonymous(end: u64, rights: Rights, kind: AreaKind) -> Self {
        Area { end, rights, kind, file: None, is_locked: false }
    }
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
    /// The page lies past the end of the file the area maps, or the file
    /// could not be read: a bus error.
    BusError,
}

/// Whether a mapping of `length` bytes could ever be backed, by Linux's
/// default overcommit heuristic: no single mapping larger than all RAM.
fn is_committable(length: u64) -> bool {
    let total = crate::pages::figures().total_bytes;
    total == 0 || length <= total
}

/// How far [`AddressSpace::begin_fault`] got.
#[derive(Debug)]
pub enum FaultStep {
    /// The fault is dealt with.
    Resolved(FaultResolution),
    /// A file's page is needed first.
    NeedsFilePage(FilePageRequest),
}

/// A file page a fault needs.
pub struct FilePageRequest {
    /// The file.
    pub node: Arc<dyn Node>,
    /// The page's index in it.
    pub index: u64,
}

impl core::fmt::Debug for FilePageRequest {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("FilePageRequest").field("index", &self.index).finish()
    }
}

impl FilePageRequest {
    /// Gets the page from the file (which may read a disk).
    pub fn read(&self, machine: &dyn Machine) -> Result<Option<Page>, FsError> {
        self.node.page(&crate::vfs::Caller::kernel(machine), self.index)
    }
}

/// Resolves a fault at `address` in the address space behind `lock`,
/// holding it only while no file is read: `lock` gives the space (or
/// `None` if it cannot), and the second value says whether mappings were
/// replaced, which other processors must forget (`synchronize_mappings`,
/// once the lock is released).
pub fn resolve_fault<'a>(
    lock: &dyn Fn() -> Option<spin::MutexGuard<'a, AddressSpace>>,
    machine: &dyn Machine,
    address: u64,
    access: Access,
) -> (FaultResolution, bool) {
    let Some(mut memory) = lock() else {
        return (FaultResolution::Invalid, false);
    };
    let request = match memory.begin_fault(address, access) {
        FaultStep::Resolved(resolution) => return (resolution, memory.take_shootdown()),
        FaultStep::NeedsFilePage(request) => request,
    };
    drop(memory);
    let page = request.read(machine);
    let Some(mut memory) = lock() else {
        return (FaultResolution::Invalid, false);
    };
    let resolution = memory.finish_file_fault(address, access, &request, page);
    (resolution, memory.take_shootdown())
}

/// Faults in every page of the file mappings in `[start, end)`, for
/// `MAP_POPULATE`, without holding `memory`'s lock while files are read.
/// Pages that cannot be had are left to fault later, as on Linux.
pub fn populate_files(
    memory: &spin::Mutex<AddressSpace>,
    machine: &dyn Machine,
    start: u64,
    end: u64,
) -> bool {
    let mut needs_shootdown = false;
    let mut page = start & !(PAGE_SIZE - 1);
    while page < end {
        let access = {
            let space = memory.lock();
            match space.area_at(page) {
                Some((_, area))
                    if area.file.as_ref().is_some_and(|file| file.is_shared) && area.rights.write =>
                {
                    Some(Access::Write)
                }
                Some((_, area)) if area.file.is_some() && area.rights.is_accessible() => Some(Access::Read),
                _ => None,
            }
        };
        if let Some(access) = access {
            let (_, replaced) = resolve_fault(&|| Some(memory.lock()), machine, page, access);
            needs_shootdown |= replaced;
        }
        page += PAGE_SIZE;
    }
    needs_shootdown
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
pub struct AddressSpace {
    /// The page tables behind it.
    tables: Arc<dyn PageTables>,
    areas: BTreeMap<u64, Area>,
    /// The free ranges of the `mmap` window, `[MAPPABLE_START, MMAP_TOP)`.
    gaps: Gaps,
    heap_start: u64,
    heap_break: u64,
    /// Mappings were removed or lost rights since the last
    /// [`AddressSpace::take_shootdown`]: other processors may hold stale
    /// translations.
    needs_shootdown: bool,
    /// Where the initial stack holds the arguments, environment and
    /// auxiliary vector.
    pub stack_layout: crate::initial_stack::StackLayout,
}

impl core::fmt::Debug for AddressSpace {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("AddressSpace").field("areas", &self.areas.len()).finish()
    }
}

impl AddressSpace {
    /// An empty address space over `tables`, which map nothing yet.
    pub fn new(tables: Arc<dyn PageTables>) -> Self {
        AddressSpace {
            tables,
            areas: BTreeMap::new(),
            gaps: Gaps::new(MAPPABLE_START, MMAP_TOP),
            heap_start: 0,
            heap_break: 0,
            needs_shootdown: false,
            stack_layout: crate::initial_stack::StackLayout::default(),
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
    /// The page tables behind the address space.
    pub fn tables(&self) -> &Arc<dyn PageTables> {
        &self.tables
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
        self.add(machine, start, Area::anonymous(end, rights, kind), populate)
    }

    /// Adds `area` at `start`, over free, page-aligned addresses;
    /// `populate` maps its pages now.
    pub fn add(
        &mut self,
        machine: &dyn Machine,
        start: u64,
        area: Area,
        populate: bool,
    ) -> Result<(), Errno> {
        let end = area.end;
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
        self.insert_area(start, area);
        if populate && let Err(error) = self.populate(machine, start, end) {
            self.remove_range(start, end);
            return Err(error);
        }
        self.merge_at(start);
        self.merge_at(end);
        Ok(())
    }

    /// Maps every not-yet-mapped page of `[start, end)`, as a read (or, in
    /// a writable shared file mapping, a write) would.
    pub fn populate(&mut self, machine: &dyn Machine, start: u64, end: u64) -> Result<(), Errno> {
        let mut page = start;
        while page < end {
            let (_, area) = self.area_at(page).ok_or(Errno::ENOMEM)?;
            let access = match &area.file {
                Some(file) if file.is_shared && area.rights.write => Access::Write,
                _ => Access::Read,
            };
            if !area.rights.is_accessible() || area.file.is_some() {
                // PROT_NONE pages get nothing until their rights change; a
                // file's pages are read without the address space's lock
                // (`populate_files`).
                page += PAGE_SIZE;
                continue;
            }
            match self.fault_in(machine, page, access) {
                // Pages past the end of a file stay unmapped, as on Linux.
                FaultResolution::Mapped | FaultResolution::BusError => {}
                FaultResolution::Invalid | FaultResolution::OutOfMemory => return Err(Errno::ENOMEM),
            }
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Splits areas so that `start` and `end` fall on area boundaries.
    fn split_at(&mut self, address: u64) {
        let Some((start, area)) = self.area_at(address).map(|(start, area)| (start, area.clone())) else {
            return;
        };
        if start == address {
            return;
        }
        let right_file = area.file.as_ref().map(|file| file.advanced(address - start));
        self.areas.insert(start, Area { end: address, ..area.clone() });
        self.areas.insert(address, Area { file: right_file, ..area });
    }

    /// Joins the areas that end and start at `address` if they are
    /// anonymous memory with the same rights, as Linux merges them: fewer
    /// areas to search and to list in `/proc/self/maps`.
    fn merge_at(&mut self, address: u64) {
        let Some(right) = self.areas.get(&address) else {
            return;
        };
        let Some((&left_start, left)) = self.areas.range(..address).next_back() else {
            return;
        };
        let is_mergeable = |area: &Area| area.kind == AreaKind::Anonymous && area.file.is_none();
        if left.end == address
            && is_mergeable(left)
            && is_mergeable(right)
            && left.rights == right.rights
            && left.is_locked == right.is_locked
        {
            let end = right.end;
            self.areas.remove(&address);
            if let Some(left) = self.areas.get_mut(&left_start) {
                left.end = end;
            }
        }
    }

    /// Removes `[start, end)` from the areas and unmaps its pages.
    fn remove_range(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let starts: alloc::vec::Vec<u64> = self.areas.range(start..end).map(|(start, _)| *start).collect();
        for area_start in starts {
            if let Some(area) = self.areas.remove(&area_start) {
                self.gaps.give_back(area_start, area.end);
            }
        }
        self.tables.unmap_range(start, end);
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
        self.map(machine, address, length, rights, flags, None)
    }

    /// `mmap`: of `file` if given (from its offset), else of anonymous
    /// memory.
    pub fn map(
        &mut self,
        machine: &dyn Machine,
        address: u64,
        length: u64,
        rights: Rights,
        flags: u64,
        file: Option<FileArea>,
    ) -> Result<u64, Errno> {
        if length == 0 {
            return Err(Errno::EINVAL);
        }
        let length = page_align_up(length).ok_or(Errno::ENOMEM)?;
        self.check_room_for_mapping()?;
        // Linux counts private writable memory; a shared file mapping's
        // pages are the file's.
        let is_counted = rights.write && !file.as_ref().is_some_and(|file| file.is_shared);
        if flags & map::NORESERVE == 0 && is_counted && !is_committable(length) {
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
                self.remove_range(address, end);
            }
            address
        } else {
            self.find_free(length, address & !(PAGE_SIZE - 1)).ok_or(Errno::ENOMEM)?
        };
        let kind = if file.is_some() { AreaKind::File } else { AreaKind::Anonymous };
        let area = Area { end: start + length, rights, kind, file, is_locked: false };
        self.add(machine, start, area, flags & map::POPULATE != 0)?;
        Ok(start)
    }

    /// `munmap`.
    pub fn unmap(&mut self, address: u64, length: u64) -> Result<(), Errno> {
        let end = checked_range(address, length)?;
        self.check_room_for_hole(address, end)?;
        self.remove_range(address, end);
        Ok(())
    }

    /// `mprotect`: every page of the range must belong to an area.
    pub fn protect(&mut self, address: u64, length: u64, rights: Rights) -> Result<(), Errno> {
        let end = checked_range(address, length)?;
        let mut cursor = address;
        while cursor < end {
            let (_, area) = self.area_at(cursor).ok_or(Errno::ENOMEM)?;
            if rights.write && area.file.as_ref().is_some_and(|file| !file.may_write) {
                return Err(Errno::EACCES);
            }
            cursor = area.end;
        }
        self.check_room_for_splits(address, end)?;
        self.split_at(address);
        self.split_at(end);
        let mut is_restricted = false;
        for (&area_start, area) in self.areas.range_mut(address..end) {
            let old = area.rights;
            is_restricted |= (old.read && !rights.read)
                || (old.write && !rights.write)
                || (old.execute && !rights.execute);
            area.rights = rights;
            // A private mapping's pages may be shared still (the file's
            // own, or a forked process's): those stay read-only, and a
            // store copies them first.
            match &area.file {
                Some(file) if file.is_shared => self.tables.protect_range(area_start, area.end, rights),
                _ => self.tables.protect_private_range(area_start, area.end, rights),
            }
        }
        self.merge_at(address);
        self.merge_at(end);
        // Widened rights need no round: a fault on a stale, narrower
        // translation finds the page allowed and just flushes it.
        self.needs_shootdown |= is_restricted;
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)`: drops the pages, so that they read as zero
    /// again in anonymous memory and as the file in a file mapping.
    pub fn discard(&mut self, address: u64, length: u64) -> Result<(), Errno> {
        let end = checked_range(address, length)?;
        self.tables.unmap_range(address, end);
        self.needs_shootdown = true;
        Ok(())
    }

    /// Sets where the `brk` heap starts: the page just past the executable.
    pub fn set_heap_start(&mut self, address: u64) {
        self.heap_start = address;
        self.heap_break = address;
    }

    /// `brk`: moves the program break if it can, and returns the break.
    pub fn brk(&mut self, requested: u64) -> u64 {
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
            self.insert_area(old_end, Area::anonymous(new_end, Rights::READ_WRITE, AreaKind::Heap));
            self.merge_heap_areas();
        } else if new_end < old_end {
            self.remove_range(new_end, old_end);
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
            self.areas.insert(first, Area::anonymous(end, Rights::READ_WRITE, AreaKind::Heap));
        }
    }

    /// Maps the page behind a fault if an area allows the access, reading a
    /// mapped file's page with the address space at hand: only for callers
    /// whose files never block (tests). The kernel uses [`resolve_fault`],
    /// which reads files without the address space's lock.
    pub fn resolve_fault(&mut self, machine: &dyn Machine, address: u64, access: Access) -> FaultResolution {
        match self.begin_fault(address, access) {
            FaultStep::Resolved(resolution) => resolution,
            FaultStep::NeedsFilePage(request) => {
                let page = request.read(machine);
                self.finish_file_fault(address, access, &request, page)
            }
        }
    }

    /// The first half of a fault: maps an anonymous page at once, or says
    /// which file page a file mapping needs, to be had without the address
    /// space's lock (it may be read from a disk) and handed to
    /// [`AddressSpace::finish_file_fault`].
    pub fn begin_fault(&mut self, address: u64, access: Access) -> FaultStep {
        let page = address & !(PAGE_SIZE - 1);
        let Some((start, area)) = self.area_at(page) else {
            return FaultStep::Resolved(FaultResolution::Invalid);
        };
        let rights = area.rights;
        let is_allowed = match access {
            Access::Read => rights.is_accessible(),
            Access::Write => rights.write,
            Access::Execute => rights.execute,
        };
        if !is_allowed {
            return FaultStep::Resolved(FaultResolution::Invalid);
        }
        let Some(file) = &area.file else {
            if access == Access::Write && self.tables.mapped_frame(page).is_some() {
                // A page shared since a fork: copy on write.
                let result = self.tables.make_private(page, rights);
                return FaultStep::Resolved(match result {
                    Ok(replaced) => {
                        self.needs_shootdown |= replaced;
                        FaultResolution::Mapped
                    }
                    Err(MapFailure::AlreadyMapped) => FaultResolution::Mapped,
                    Err(MapFailure::OutOfMemory) => FaultResolution::OutOfMemory,
                });
            }
            return FaultStep::Resolved(match self.tables.map_page(page, rights) {
                // Another processor faulted the page in first: retry the access.
                Ok(()) | Err(MapFailure::AlreadyMapped) => FaultResolution::Mapped,
                Err(MapFailure::OutOfMemory) => FaultResolution::OutOfMemory,
            });
        };
        match file.index(page - start) {
            Some(index) => FaultStep::NeedsFilePage(FilePageRequest { node: file.node.clone(), index }),
            None => FaultStep::Resolved(FaultResolution::BusError),
        }
    }

    /// The second half of a fault in a file mapping: maps `page`, the file
    /// page `request` asked for, if the area still maps it (else the access
    /// is retried, finding whatever is there now).
    pub fn finish_file_fault(
        &mut self,
        address: u64,
        access: Access,
        request: &FilePageRequest,
        page: Result<Option<Page>, FsError>,
    ) -> FaultResolution {
        let page_address = address & !(PAGE_SIZE - 1);
        let Some((start, area)) = self.area_at(page_address) else {
            return FaultResolution::Mapped;
        };
        let Some(file) = area.file.as_ref().filter(|file| {
            Arc::ptr_eq(&file.node, &request.node) && file.index(page_address - start) == Some(request.index)
        }) else {
            return FaultResolution::Mapped;
        };
        let file_page = match page {
            Ok(Some(file_page)) => file_page,
            Ok(None) => return FaultResolution::BusError,
            Err(FsError::Errno(Errno::ENOMEM)) => return FaultResolution::OutOfMemory,
            Err(_) => return FaultResolution::BusError,
        };
        let (resolution, replaced) =
            file.map_page(self.tables.as_ref(), page_address, &file_page, area.rights, access);
        self.needs_shootdown |= replaced;
        resolution
    }

    fn fault_in(&mut self, machine: &dyn Machine, page: u64, access: Access) -> FaultResolution {
        self.resolve_fault(machine, page, access)
    }

    /// A copy of the address space over `tables` (empty), for `fork`:
    /// the same areas, with the pages shared. Pages of private mappings
    /// become read-only on both sides and are copied at the first store
    /// (copy on write); shared mappings stay shared. `Err` when no memory
    /// is left for the new tables (nothing changed here but rights).
    pub fn fork(&mut self, tables: Arc<dyn PageTables>) -> Result<AddressSpace, MapFailure> {
        let mut child = AddressSpace {
            tables,
            // A child does not inherit memory locks.
            areas: self
                .areas
                .iter()
                .map(|(&start, area)| (start, Area { is_locked: false, ..area.clone() }))
                .collect(),
            gaps: self.gaps.clone(),
            heap_start: self.heap_start,
            heap_break: self.heap_break,
            needs_shootdown: false,
            stack_layout: self.stack_layout,
        };
        for (&start, area) in &self.areas {
            let is_shared = area.file.as_ref().is_some_and(|file| file.is_shared);
            match self.tables.copy_into(child.tables.as_ref(), start, area.end, !is_shared) {
                Ok(restricted) => self.needs_shootdown |= restricted,
                Err(failure) => {
                    child.release_all();
                    return Err(failure);
                }
            }
        }
        Ok(child)
    }

    /// Unmaps everything, at application exit.
    pub fn release_all(&mut self) {
        for (start, area) in core::mem::take(&mut self.areas) {
            self.tables.unmap_range(start, area.end);
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
