//! What a range of the address space holds: the files its shared mappings
//! map (`msync`, `mlock`), which of its pages are in memory (`mincore`).

use alloc::sync::Arc;

use super::{APPLICATION_END, AddressSpace, PAGE_SIZE, page_align_up};
use crate::errno::Errno;
use crate::vfs::Node;

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
}
