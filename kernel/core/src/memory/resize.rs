//! `mremap`: growing, shrinking and moving a mapping; moved pages keep
//! their frames, so nothing is copied.

use super::{
    APPLICATION_END, AddressSpace, Area, AreaKind, MAPPABLE_START, PAGE_SIZE, is_committable, page_align_up,
};
use crate::errno::Errno;

/// `MREMAP_*` bits.
pub mod flags {
    /// The mapping may move.
    pub const MAYMOVE: u64 = 1;
    /// Move it to the given address.
    pub const FIXED: u64 = 2;
    /// Leave the old range mapped (and empty).
    pub const DONTUNMAP: u64 = 4;
}

impl AddressSpace {
    /// `mremap`: resizes the mapping at `old` of `old_length` bytes, in
    /// place if it can, else (with `MREMAP_MAYMOVE`) by moving its pages,
    /// never copying them.
    pub fn remap(
        &mut self,
        old: u64,
        old_length: u64,
        new_length: u64,
        flags: u64,
        new_address: u64,
    ) -> Result<u64, Errno> {
        let is_moving = flags & flags::MAYMOVE != 0;
        let is_fixed = flags & flags::FIXED != 0;
        let keeps_old = flags & flags::DONTUNMAP != 0;
        if flags & !(flags::MAYMOVE | flags::FIXED | flags::DONTUNMAP) != 0
            || ((is_fixed || keeps_old) && !is_moving)
            || !old.is_multiple_of(PAGE_SIZE)
        {
            return Err(Errno::EINVAL);
        }
        let old_length = page_align_up(old_length).ok_or(Errno::EINVAL)?;
        let new_length = page_align_up(new_length).ok_or(Errno::EINVAL)?;
        if new_length == 0 || (keeps_old && old_length != new_length) {
            return Err(Errno::EINVAL);
        }
        // The old range must lie within one area.
        let (area_start, area) =
            self.area_at(old).map(|(start, area)| (start, area.clone())).ok_or(Errno::EFAULT)?;
        let old_end = old.checked_add(old_length).ok_or(Errno::EINVAL)?;
        if old_length == 0 || old_end > area.end {
            // A zero length would duplicate a shared mapping on Linux.
            return Err(if old_length == 0 { Errno::EINVAL } else { Errno::EFAULT });
        }
        if keeps_old && (area.file.is_some() || area.kind != AreaKind::Anonymous) {
            return Err(Errno::EINVAL);
        }
        let is_counted = area.rights.write && !area.file.as_ref().is_some_and(|file| file.is_shared);
        if new_length > old_length && is_counted && !is_committable(new_length) {
            return Err(Errno::ENOMEM);
        }
        if is_fixed {
            let new_end = new_address.checked_add(new_length).filter(|&end| end <= APPLICATION_END);
            let new_end = new_end.ok_or(Errno::EINVAL)?;
            if !new_address.is_multiple_of(PAGE_SIZE)
                || new_address < MAPPABLE_START
                || (new_address < old_end && old < new_end)
            {
                return Err(Errno::EINVAL);
            }
            self.remove_range(new_address, new_end);
        } else if !keeps_old {
            if new_length <= old_length {
                if new_length < old_length {
                    self.remove_range(old + new_length, old_end);
                }
                return Ok(old);
            }
            // Growing in place: the area must end where the range does, and
            // the addresses after it be free.
            let grown_end = old.checked_add(new_length).filter(|&end| end <= APPLICATION_END);
            if let Some(grown_end) = grown_end
                && area.end == old_end
                && !self.overlaps(old_end, grown_end)
            {
                self.gaps.take(old_end, grown_end);
                if let Some(area) = self.areas.get_mut(&area_start) {
                    area.end = grown_end;
                }
                self.merge_at(grown_end);
                return Ok(old);
            }
            if !is_moving {
                return Err(Errno::ENOMEM);
            }
        }
        let target =
            if is_fixed { new_address } else { self.find_free(new_length, 0).ok_or(Errno::ENOMEM)? };
        let moved_length = old_length.min(new_length);
        let file = area.file.as_ref().map(|file| file.advanced(old - area_start));
        let moved = Area {
            end: target + new_length,
            rights: area.rights,
            kind: area.kind,
            file,
            is_locked: area.is_locked,
        };
        self.insert_area(target, moved);
        if self.tables.move_range(old, target, moved_length).is_err() {
            self.remove_range(target, target + new_length);
            return Err(Errno::ENOMEM);
        }
        self.needs_shootdown = true;
        if keeps_old {
            // The old range stays, empty: its pages fault in afresh.
        } else {
            self.remove_range(old, old_end);
        }
        self.merge_at(target);
        self.merge_at(target + new_length);
        Ok(target)
    }
}
