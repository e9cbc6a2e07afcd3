//! The pages of an ext4 file that `mmap` has mapped.
//!
//! A mapped page is the authority for its bytes: stores through a shared
//! mapping land in it, so reads overlay it on what the disk holds and
//! writes update it as well as the disk. `fsync`, `msync` and the end of
//! the node write the pages back. Pages stay until the file shrinks past
//! them or its node goes.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::pages::{PAGE_SIZE, Page};

/// The mapped pages of one file, by page index.
#[derive(Default)]
pub(super) struct MappedPages {
    pages: spin::Mutex<BTreeMap<u64, Page>>,
}

/// The pages `[offset, offset + length)` touches.
fn page_range(offset: u64, length: usize) -> core::ops::Range<u64> {
    let first = offset / PAGE_SIZE as u64;
    let end = (offset + length as u64).div_ceil(PAGE_SIZE as u64);
    first..end.max(first)
}

impl MappedPages {
    /// Whether page `index` is held.
    pub(super) fn contains(&self, index: u64) -> bool {
        self.pages.lock().contains_key(&index)
    }

    /// Another reference to page `index`, if held.
    pub(super) fn get(&self, index: u64) -> Option<Page> {
        self.pages.lock().get(&index).and_then(|page| page.share().ok())
    }

    /// Keeps `page` as page `index` (unless one is held already) and
    /// returns a reference to the one kept.
    pub(super) fn insert(&self, index: u64, page: Page) -> Option<Page> {
        let mut pages = self.pages.lock();
        pages.entry(index).or_insert(page).share().ok()
    }

    /// Copies the held pages' bytes over `buffer`, which holds the file's
    /// bytes from `offset`.
    pub(super) fn overlay(&self, offset: u64, buffer: &mut [u8]) {
        let pages = self.pages.lock();
        for (&index, page) in pages.range(page_range(offset, buffer.len())) {
            let page_start = index * PAGE_SIZE as u64;
            let start = page_start.max(offset);
            let end = (page_start + PAGE_SIZE as u64).min(offset + buffer.len() as u64);
            let target = &mut buffer[(start - offset) as usize..(end - offset) as usize];
            page.read((start - page_start) as usize, target);
        }
    }

    /// Copies `bytes`, written at `offset`, into the held pages.
    pub(super) fn update(&self, offset: u64, bytes: &[u8]) {
        let pages = self.pages.lock();
        for (&index, page) in pages.range(page_range(offset, bytes.len())) {
            let page_start = index * PAGE_SIZE as u64;
            let start = page_start.max(offset);
            let end = (page_start + PAGE_SIZE as u64).min(offset + bytes.len() as u64);
            page.write(
                (start - page_start) as usize,
                &bytes[(start - offset) as usize..(end - offset) as usize],
            );
        }
    }

    /// Zeroes `length` bytes from `offset` in the held pages (a punched
    /// hole).
    pub(super) fn zero(&self, offset: u64, length: u64) {
        let end = offset.saturating_add(length);
        let zeros = [0u8; PAGE_SIZE];
        let pages = self.pages.lock();
        let last = end.div_ceil(PAGE_SIZE as u64);
        for (&index, page) in pages.range(offset / PAGE_SIZE as u64..last) {
            let page_start = index * PAGE_SIZE as u64;
            let start = page_start.max(offset);
            let stop = (page_start + PAGE_SIZE as u64).min(end);
            page.write((start - page_start) as usize, &zeros[..(stop - start) as usize]);
        }
    }

    /// Forgets what lies past `size_bytes`: pages wholly beyond go, the
    /// last one is zeroed past the end.
    pub(super) fn truncate(&self, size_bytes: u64) {
        let mut pages = self.pages.lock();
        let kept = size_bytes.div_ceil(PAGE_SIZE as u64);
        pages.retain(|&index, _| index < kept);
        if !size_bytes.is_multiple_of(PAGE_SIZE as u64)
            && let Some(page) = pages.get(&(size_bytes / PAGE_SIZE as u64))
        {
            page.zero_from((size_bytes % PAGE_SIZE as u64) as usize);
        }
    }

    /// The held pages' bytes within a file of `size_bytes`, by offset, to
    /// write back.
    pub(super) fn contents(&self, size_bytes: u64) -> Vec<(u64, Vec<u8>)> {
        let pages = self.pages.lock();
        pages
            .iter()
            .filter_map(|(&index, page)| {
                let start = index * PAGE_SIZE as u64;
                let length = size_bytes.checked_sub(start).filter(|&length| length > 0)?;
                let mut bytes = alloc::vec![0u8; (length as usize).min(PAGE_SIZE)];
                page.read(0, &mut bytes);
                Some((start, bytes))
            })
            .collect()
    }
}
