use super::*;
use crate::fake::FakeMachine;

const READ_ONLY: Rights = Rights { read: true, write: false, execute: false };

#[test]
fn anonymous_mappings_go_top_down_and_fault_in() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let first =
        space.map_anonymous(&machine, 0, 10_000, Rights::READ_WRITE, map::PRIVATE | map::ANONYMOUS).unwrap();
    let second = space
        .map_anonymous(&machine, 0, PAGE_SIZE, Rights::READ_WRITE, map::PRIVATE | map::ANONYMOUS)
        .unwrap();
    assert_eq!(first, MMAP_TOP - 3 * PAGE_SIZE);
    assert_eq!(second, first - PAGE_SIZE);
    assert_eq!(machine.mapped_pages(), 0);
    assert_eq!(
        space.resolve_fault(&machine, first + 5000, Access::Write),
        crate::memory::FaultResolution::Mapped
    );
    assert_eq!(machine.rights(first + PAGE_SIZE), Some(Rights::READ_WRITE));
    assert_eq!(
        space.resolve_fault(&machine, first + 5000, Access::Execute),
        crate::memory::FaultResolution::Invalid
    );
    assert_eq!(
        space.resolve_fault(&machine, first + 3 * PAGE_SIZE, Access::Read),
        crate::memory::FaultResolution::Invalid
    );
}

#[test]
fn populate_maps_eagerly() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let flags = map::PRIVATE | map::ANONYMOUS | map::POPULATE;
    space.map_anonymous(&machine, 0, 3 * PAGE_SIZE, Rights::READ_WRITE, flags).unwrap();
    assert_eq!(machine.mapped_pages(), 3);
}

#[test]
fn fixed_mappings_replace_and_noreplace_refuses() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let flags = map::PRIVATE | map::ANONYMOUS;
    space
        .map_anonymous(
            &machine,
            0x10_0000,
            4 * PAGE_SIZE,
            Rights::READ_WRITE,
            flags | map::FIXED | map::POPULATE,
        )
        .unwrap();
    let at = 0x10_0000 + PAGE_SIZE;
    assert_eq!(
        space.map_anonymous(&machine, at, PAGE_SIZE, READ_ONLY, flags | map::FIXED_NOREPLACE),
        Err(Errno::EEXIST)
    );
    assert_eq!(space.map_anonymous(&machine, at, PAGE_SIZE, READ_ONLY, flags | map::FIXED), Ok(at));
    assert_eq!(machine.mapped_pages(), 3, "the replaced page was unmapped");
    assert_eq!(space.area_at(at).unwrap().1.rights, READ_ONLY);
    assert_eq!(space.area_at(at + PAGE_SIZE).unwrap().1.rights, Rights::READ_WRITE);
    assert_eq!(
        space.map_anonymous(&machine, 0x1000, PAGE_SIZE, READ_ONLY, flags | map::FIXED),
        Err(Errno::EPERM)
    );
    assert_eq!(
        space.map_anonymous(&machine, 0x10_0001, PAGE_SIZE, READ_ONLY, flags | map::FIXED),
        Err(Errno::EINVAL)
    );
    assert_eq!(space.map_anonymous(&machine, 0, 0, READ_ONLY, flags), Err(Errno::EINVAL));
}

#[test]
fn unmap_splits_areas() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let flags = map::PRIVATE | map::ANONYMOUS | map::POPULATE;
    let start = space.map_anonymous(&machine, 0, 5 * PAGE_SIZE, Rights::READ_WRITE, flags).unwrap();
    space.unmap(start + PAGE_SIZE, 2 * PAGE_SIZE).unwrap();
    assert_eq!(machine.mapped_pages(), 3);
    assert!(space.area_at(start).is_some());
    assert!(space.area_at(start + PAGE_SIZE).is_none());
    assert!(space.area_at(start + 3 * PAGE_SIZE).is_some());
    assert_eq!(space.unmap(start + 1, PAGE_SIZE), Err(Errno::EINVAL));
    assert_eq!(space.unmap(start, 0), Err(Errno::EINVAL));
    // The hole is reused by the next mapping that fits.
    let again = space.map_anonymous(&machine, 0, 2 * PAGE_SIZE, Rights::READ_WRITE, flags).unwrap();
    assert_eq!(again, start + PAGE_SIZE);
}

#[test]
fn protect_changes_rights_of_areas_and_pages() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let flags = map::PRIVATE | map::ANONYMOUS | map::POPULATE;
    let start = space.map_anonymous(&machine, 0, 4 * PAGE_SIZE, Rights::READ_WRITE, flags).unwrap();
    space.protect(start + PAGE_SIZE, PAGE_SIZE, Rights::NONE).unwrap();
    assert_eq!(machine.rights(start + PAGE_SIZE), Some(Rights::NONE));
    assert_eq!(machine.rights(start), Some(Rights::READ_WRITE));
    assert_eq!(
        space.resolve_fault(&machine, start + PAGE_SIZE, Access::Read),
        crate::memory::FaultResolution::Invalid
    );
    assert_eq!(space.protect(start, 8 * PAGE_SIZE, READ_ONLY), Err(Errno::ENOMEM));
}

#[test]
fn brk_grows_and_shrinks() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    space.set_heap_start(0x60_1000);
    assert_eq!(space.brk(0), 0x60_1000);
    assert_eq!(space.brk(0x60_4321), 0x60_4321);
    assert_eq!(
        space.resolve_fault(&machine, 0x60_1000, Access::Write),
        crate::memory::FaultResolution::Mapped
    );
    assert_eq!(
        space.resolve_fault(&machine, 0x60_4fff, Access::Write),
        crate::memory::FaultResolution::Mapped
    );
    assert_eq!(
        space.resolve_fault(&machine, 0x60_5000, Access::Write),
        crate::memory::FaultResolution::Invalid
    );
    assert_eq!(space.brk(0x70_0000), 0x70_0000);
    assert_eq!(space.areas().filter(|(_, area)| area.kind == AreaKind::Heap).count(), 1);
    assert_eq!(space.brk(0x60_2000), 0x60_2000);
    assert_eq!(machine.mapped_pages(), 1, "pages above the new break are gone");
    assert_eq!(
        space.resolve_fault(&machine, 0x60_3000, Access::Read),
        crate::memory::FaultResolution::Invalid
    );
    // A mapping in the way stops the heap.
    let flags = map::PRIVATE | map::ANONYMOUS | map::FIXED;
    space.map_anonymous(&machine, 0x80_0000, PAGE_SIZE, Rights::READ_WRITE, flags).unwrap();
    assert_eq!(space.brk(0x90_0000), 0x60_2000);
}

#[test]
fn release_all_unmaps_everything() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let flags = map::PRIVATE | map::ANONYMOUS | map::POPULATE;
    space.map_anonymous(&machine, 0, 3 * PAGE_SIZE, Rights::READ_WRITE, flags).unwrap();
    space.release_all();
    assert_eq!(machine.mapped_pages(), 0);
    assert_eq!(space.areas().count(), 0);
}

#[test]
fn a_mapping_larger_than_ram_is_refused_at_once() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let total = crate::pages::figures().total_bytes;
    assert_eq!(
        space.map_anonymous(&machine, 0, total + PAGE_SIZE, Rights::READ_WRITE, map::PRIVATE),
        Err(Errno::ENOMEM)
    );
    assert!(space.map_anonymous(&machine, 0, total, Rights::READ_WRITE, map::PRIVATE).is_ok());
    let reserved =
        space.map_anonymous(&machine, 0, 4 * total, Rights::READ_WRITE, map::PRIVATE | map::NORESERVE);
    assert!(reserved.is_ok(), "MAP_NORESERVE is not counted");
    let inaccessible = space.map_anonymous(&machine, 0, 4 * total, Rights::NONE, map::PRIVATE);
    assert!(inaccessible.is_ok(), "a reservation without access is not counted");
}

#[test]
fn a_populated_mapping_that_runs_out_leaves_nothing_behind() {
    let machine = FakeMachine::new();
    machine.limit_pages(Some(3));
    let mut space = crate::fake::address_space(&machine);
    let result =
        space.map_anonymous(&machine, 0, 8 * PAGE_SIZE, Rights::READ_WRITE, map::PRIVATE | map::POPULATE);
    assert_eq!(result, Err(Errno::ENOMEM));
    assert_eq!(space.areas().count(), 0);
    assert_eq!(machine.mapped_pages(), 0);
}

#[test]
fn a_fault_without_memory_says_so() {
    let machine = FakeMachine::new();
    machine.limit_pages(Some(0));
    let mut space = crate::fake::address_space(&machine);
    let start = space.map_anonymous(&machine, 0, PAGE_SIZE, Rights::READ_WRITE, map::PRIVATE).unwrap();
    assert_eq!(space.resolve_fault(&machine, start, Access::Write), FaultResolution::OutOfMemory);
    assert_eq!(space.resolve_fault(&machine, start - PAGE_SIZE, Access::Write), FaultResolution::Invalid);
}

/// The free ranges of the mmap window, computed from the areas.
fn gaps_from_areas(space: &AddressSpace) -> Vec<(u64, u64)> {
    let mut gaps = Vec::new();
    let mut cursor = MAPPABLE_START;
    for (start, area) in space.areas() {
        let (start, end) = (start.clamp(MAPPABLE_START, MMAP_TOP), area.end.clamp(MAPPABLE_START, MMAP_TOP));
        if start > cursor {
            gaps.push((cursor, start));
        }
        cursor = cursor.max(end);
    }
    if cursor < MMAP_TOP {
        gaps.push((cursor, MMAP_TOP));
    }
    gaps
}

proptest::proptest! {
    /// Whatever is mapped, unmapped or moved, the gap index agrees with
    /// the areas, and mappings land in free space.
    #[test]
    fn the_gap_index_follows_the_areas(
        operations in proptest::collection::vec((0u8..4, 1u64..64, 0u64..4096), 1..60)
    ) {
        let machine = FakeMachine::new();
        let mut space = crate::fake::address_space(&machine);
        space.set_heap_start(0x60_0000);
        let mut mapped: Vec<(u64, u64)> = Vec::new();
        for (operation, pages, place) in operations {
            let length = pages * PAGE_SIZE;
            match operation {
                0 | 1 => {
                    if let Ok(start) = space.map_anonymous(&machine, 0, length, Rights::READ_WRITE, map::PRIVATE) {
                        proptest::prop_assert!(mapped.iter().all(|&(s, e)| start + length <= s || start >= e));
                        mapped.push((start, start + length));
                    }
                }
                2 if !mapped.is_empty() => {
                    let (start, end) = mapped.swap_remove(place as usize % mapped.len());
                    space.unmap(start, end - start).unwrap();
                }
                _ => {
                    let fixed = 0x7000_0000_0000 + place * PAGE_SIZE;
                    space.map_anonymous(&machine, fixed, length, Rights::READ_WRITE, map::PRIVATE | map::FIXED).unwrap();
                    mapped.retain(|&(s, e)| fixed + length <= s || fixed >= e);
                }
            }
            proptest::prop_assert_eq!(space.gap_ranges(), gaps_from_areas(&space));
        }
    }
}

#[test]
fn growing_needs_no_shootdown_and_shrinking_does() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let start = space.map_anonymous(&machine, 0, 4 * PAGE_SIZE, Rights::READ_WRITE, map::PRIVATE).unwrap();
    assert!(!space.take_shootdown(), "a new mapping");
    space.protect(start, PAGE_SIZE, Rights::READ).unwrap();
    assert!(space.take_shootdown(), "rights taken away");
    space.unmap(start, PAGE_SIZE).unwrap();
    assert!(space.take_shootdown(), "a mapping removed");
    assert!(!space.take_shootdown());
}

#[test]
fn widening_rights_needs_no_shootdown() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let start = space.map_anonymous(&machine, 0, PAGE_SIZE, Rights::READ, map::PRIVATE).unwrap();
    space.protect(start, PAGE_SIZE, Rights::READ_WRITE).unwrap();
    assert!(!space.take_shootdown());
}

#[test]
fn neighbouring_anonymous_areas_with_equal_rights_merge() {
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let base = 0x7000_0000_0000;
    for index in 0..4 {
        let flags = map::PRIVATE | map::FIXED;
        space
            .map_anonymous(&machine, base + index * PAGE_SIZE, PAGE_SIZE, Rights::READ_WRITE, flags)
            .unwrap();
    }
    assert_eq!(space.areas().count(), 1);
    space.protect(base + PAGE_SIZE, PAGE_SIZE, Rights::READ).unwrap();
    assert_eq!(space.areas().count(), 3);
    space.protect(base + PAGE_SIZE, PAGE_SIZE, Rights::READ_WRITE).unwrap();
    assert_eq!(space.areas().count(), 1);
}

/// A file of one page, for file mappings.
struct OnePageFile {
    page: crate::pages::Page,
}

impl crate::vfs::Node for OnePageFile {
    fn inode(&self) -> u64 {
        7
    }

    fn file_type(&self) -> crate::vfs::FileType {
        crate::vfs::FileType::Regular
    }

    fn metadata(
        &self,
        _caller: &crate::vfs::Caller<'_>,
    ) -> Result<crate::vfs::Metadata, crate::vfs::FsError> {
        Ok(crate::vfs::Metadata::new(7, crate::vfs::FileType::Regular, 0o644))
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn page(
        &self,
        _caller: &crate::vfs::Caller<'_>,
        index: u64,
    ) -> Result<Option<crate::pages::Page>, crate::vfs::FsError> {
        Ok(if index == 0 { self.page.share().ok() } else { None })
    }
}

#[test]
fn a_read_fault_finishing_late_keeps_the_private_copy_a_store_made() {
    use crate::machine::PageTables as _;
    let machine = FakeMachine::new();
    let mut space = crate::fake::address_space(&machine);
    let file = OnePageFile { page: crate::pages::Page::new().unwrap() };
    file.page.write(0, b"file");
    let node: alloc::sync::Arc<dyn crate::vfs::Node> = alloc::sync::Arc::new(file);
    let area = FileArea { node, offset: 0, is_shared: false, may_write: true, path: "/data".into() };
    let start = space.map(&machine, 0, PAGE_SIZE, Rights::READ_WRITE, map::PRIVATE, Some(area)).unwrap();
    // One thread's read fault reads the file without the lock...
    let FaultStep::NeedsFilePage(request) = space.begin_fault(start, Access::Read) else {
        panic!("a file mapping needs the file's page");
    };
    let late_page = request.read(&machine);
    // ...while another thread's store makes the page private.
    assert_eq!(space.resolve_fault(&machine, start, Access::Write), FaultResolution::Mapped);
    let copy = machine.current_tables().mapped_frame(start).unwrap();
    crate::pages::write_frame(copy, 0, b"mine");
    // The read fault ends last: the private copy, with the store, stays.
    assert_eq!(space.finish_file_fault(start, Access::Read, &request, late_page), FaultResolution::Mapped);
    assert_eq!(machine.current_tables().mapped_frame(start), Some(copy));
    let mut bytes = [0; 4];
    crate::pages::read_frame(copy, 0, &mut bytes);
    assert_eq!(&bytes, b"mine");
}
