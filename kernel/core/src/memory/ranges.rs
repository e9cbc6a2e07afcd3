//! What a range of the address space holds: the files its shared mappings
//! map (`msync`, `mlock`), which of its pages are in memory (`mincore`),
//! which areas it spans (`madvise`); and memory locks (`mlock`).

use alloc::sync::Arc;

use super::{APPLICATION_END, AddressSpace, Area, PAGE_SIZE, page_align_up};
use crate::errno::Errno;
use crate::vfs::Node;

/// The areas a range overlaps, each with its start, and whether some page
/// of the range lies in no area.
pub type AreasInRange<'a> = (alloc::vec::Vec<(u64, &'a Area)>, bool);

impl AddressSpace {
    /// The files the shared mappings of `[address, address + length)` map;
    /// `ENOMEM` unless every page of the range is in an area.
    pub fn files_in(&self, address: u64, length: u64) -> Result<alloc::vec::Vec<Arc<dyn Node>>, Errno> {
        let end =
            page_align_up(length).and_then(|length| address.checked_add(length)).ok_or(Errno::ENOMEM)?;
        let mut files: alloc::vec::Vec<Arc<dyn Node>> = alloc::vec::Vec::new();
        let mut cursor = address;
        while cursor < end {
            let (_, area) = self.area_at(cursor).ok_or(Errno::ENOMEM)?;
            if let Some(file) = area.file.as_ref().filter(|file| file.is_shared)
                && !files.iter().any(|known| Arc::ptr_eq(known, &file.node))
            {
                files.push(file.node.clone());
            }
            cursor = area.end;
        }
        Ok(files)
    }

    /// `mincore`: for each page of `[address, address + length)`, whether
    /// it is in memory; `ENOMEM` unless every page is in an area.
    pub fn residency(&self, address: u64, length: u64) -> Result<alloc::vec::Vec<u8>, Errno> {
        let pages = page_align_up(length).ok_or(Errno::ENOMEM)? / PAGE_SIZE;
        address.checked_add(pages * PAGE_SIZE).filter(|&end| end <= APPLICATION_END).ok_or(Errno::ENOMEM)?;
        let mut residency = alloc::vec::Vec::new();
        residency.try_reserve_exact(pages as usize).map_err(|_| Errno::ENOMEM)?;
        for index in 0..pages {
            let page = address + index * PAGE_SIZE;
            let (start, area) = self.area_at(page).ok_or(Errno::ENOMEM)?;
            let is_resident = self.tables.mapped_frame(page).is_some()
                || area
                    .file
                    .as_ref()
                    .is_some_and(|file| file.node.is_page_cached((file.offset + (page - start)) / PAGE_SIZE));
            residency.push(u8::from(is_resident));
        }
        Ok(residency)
    }

    /// The areas `[address, address + length)` overlaps, each with its
    /// start, and whether some page of the range lies in no area.
    pub fn areas_in(&self, address: u64, length: u64) -> Result<AreasInRange<'_>, Errno> {
        let end =
            page_align_up(length).and_then(|length| address.checked_add(length)).ok_or(Errno::EINVAL)?;
        let mut found = alloc::vec::Vec::new();
        let mut has_hole = false;
        let mut cursor = address;
        while cursor < end {
            match self.area_at(cursor) {
                Some((start, area)) => {
                    found.push((start, area));
                    cursor = area.end;
                }
                None => {
                    has_hole = true;
                    match self.areas.range(cursor..end).next() {
                        Some((&next, _)) => cursor = next,
                        None => break,
                    }
                }
            }
        }
        Ok((found, has_hole))
    }

    /// `mlock` (with `is_locked`) and `munlock`: marks every area of the
    /// range, split at its ends; `ENOMEM` unless every page is in an area.
    pub fn set_locked(&mut self, address: u64, length: u64, is_locked: bool) -> Result<(), Errno> {
        let end =
            page_align_up(length).and_then(|length| address.checked_add(length)).ok_or(Errno::ENOMEM)?;
        let (_, has_hole) = self.areas_in(address, end - address).map_err(|_| Errno::ENOMEM)?;
        if has_hole {
            return Err(Errno::ENOMEM);
        }
        if end == address {
            return Ok(());
        }
        self.check_room_for_splits(address, end)?;
        self.split_at(address);
        self.split_at(end);
        for (_, area) in self.areas.range_mut(address..end) {
            area.is_locked = is_locked;
        }
        self.merge_at(address);
        self.merge_at(end);
        Ok(())
    }

    /// `munlockall`: no area stays locked.
    pub fn unlock_all(&mut self) {
        for area in self.areas.values_mut() {
            area.is_locked = false;
        }
    }
}
