//! The most areas an address space holds (`vm.max_map_count`), checked as
//! Linux checks it: a new mapping fails with `ENOMEM` once the count is
//! past the limit, and so does an `munmap` or `mprotect` that would have
//! to split areas when the count has reached it.

use super::AddressSpace;
use crate::errno::Errno;
use crate::fs::procfs::MAX_MAP_COUNT;

fn limit() -> usize {
    usize::try_from(MAX_MAP_COUNT.get()).unwrap_or(usize::MAX)
}

impl AddressSpace {
    /// Whether `address` falls inside an area, not on its start.
    fn is_inside_area(&self, address: u64) -> bool {
        self.area_at(address).is_some_and(|(start, _)| start != address)
    }

    /// Before a new mapping (`mmap`, `shmat`).
    pub(super) fn check_room_for_mapping(&self) -> Result<(), Errno> {
        if self.areas.len() > limit() { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// Before `munmap` of `[start, end)`: cutting a hole inside one area
    /// makes one more.
    pub(super) fn check_room_for_hole(&self, start: u64, end: u64) -> Result<(), Errno> {
        let is_hole = self.is_inside_area(start)
            && self.area_at(start).is_some_and(|(_, area)| end < area.end)
            && self.areas.len() >= limit();
        if is_hole { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// Before `mprotect` of `[start, end)`: each boundary inside an area
    /// splits it, and each split needs the count below the limit.
    pub(super) fn check_room_for_splits(&self, start: u64, end: u64) -> Result<(), Errno> {
        let splits = usize::from(self.is_inside_area(start)) + usize::from(self.is_inside_area(end));
        if splits > 0 && self.areas.len() + splits > limit() { Err(Errno::ENOMEM) } else { Ok(()) }
    }
}
