//! A ramfs file's contents: its size and the pages that hold data.
//!
//! Pages are kept by index and only where something was written, so a file
//! may be sparse: `ftruncate` to an exabyte costs nothing, and holes read
//! as zeroes. Pages come from the frame allocator (`crate::pages`), so a
//! file grows only while RAM an application may use is left.

use alloc::collections::BTreeMap;

use crate::pages::{PAGE_SIZE, Page};
use crate::vfs::FsError;

/// The largest file (Linux's `MAX_LFS_FILESIZE`).
pub const FILE_SIZE_MAX: u64 = i64::MAX as u64;

const PAGE_BYTES: u64 = PAGE_SIZE as u64;

/// The contents of a file.
#[derive(Debug, Default)]
pub struct FileData {
    size_bytes: u64,
    pages: BTreeMap<u64, Page>,
}

impl FileData {
    /// The file's size.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Pages that hold data (not holes).
    pub fn page_count(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Copies bytes from `offset` into `buffer`, up to the end of the file;
    /// returns how many.
    pub fn read_at(&self, offset: u64, buffer: &mut [u8]) -> usize {
        let Some(available) = self.size_bytes.checked_sub(offset) else {
            return 0;
        };
        let length = usize::try_from(available).map_or(buffer.len(), |available| buffer.len().min(available));
        let mut done = 0;
        while done < length {
            let position = offset + done as u64;
            let index = position / PAGE_BYTES;
            let within = (position % PAGE_BYTES) as usize;
            let chunk = (length - done).min(PAGE_SIZE - within);
            let target = &mut buffer[done..done + chunk];
            match self.pages.get(&index) {
                Some(page) => {
                    page.read(within, target);
                }
                None => target.fill(0),
            }
            done += chunk;
        }
        length
    }

    /// Copies `bytes` to `offset`, growing the file. Stops early when no
    /// page is left, returning what was written, or an error if nothing
    /// was: `TooLarge` past the largest file, `NoSpace` without memory.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        if offset >= FILE_SIZE_MAX {
            return Err(FsError::TooLarge);
        }
        let room = FILE_SIZE_MAX - offset;
        let length = usize::try_from(room).map_or(bytes.len(), |room| bytes.len().min(room));
        let mut done = 0;
        while done < length {
            let position = offset + done as u64;
            let index = position / PAGE_BYTES;
            let within = (position % PAGE_BYTES) as usize;
            let chunk = (length - done).min(PAGE_SIZE - within);
            let page = match self.pages.entry(index) {
                alloc::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                alloc::collections::btree_map::Entry::Vacant(entry) => match Page::new() {
                    Ok(page) => entry.insert(page),
                    Err(_) if done > 0 => break,
                    Err(_) => return Err(FsError::NoSpace),
                },
            };
            page.write(within, &bytes[done..done + chunk]);
            done += chunk;
        }
        self.size_bytes = self.size_bytes.max(offset + done as u64);
        Ok(done)
    }

    /// Sets the size: pages past it are freed, the rest of the last page
    /// reads as zeroes, and growing leaves a hole.
    pub fn truncate(&mut self, size_bytes: u64) -> Result<(), FsError> {
        if size_bytes > FILE_SIZE_MAX {
            return Err(FsError::TooLarge);
        }
        if size_bytes < self.size_bytes {
            let first_gone = size_bytes.div_ceil(PAGE_BYTES);
            drop(self.pages.split_off(&first_gone));
            if !size_bytes.is_multiple_of(PAGE_BYTES)
                && let Some(page) = self.pages.get(&(size_bytes / PAGE_BYTES))
            {
                page.zero_from((size_bytes % PAGE_BYTES) as usize);
            }
        }
        self.size_bytes = size_bytes;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::limit_pages;

    #[test]
    fn a_huge_truncate_makes_a_sparse_file() {
        let mut data = FileData::default();
        assert_eq!(data.write_at(0, b"abcd"), Ok(4));
        assert_eq!(data.truncate(0x1927_4d17_b36d_09b4), Ok(()));
        assert_eq!(data.size_bytes(), 0x1927_4d17_b36d_09b4);
        assert_eq!(data.page_count(), 1);
        let mut buffer = [9u8; 6];
        assert_eq!(data.read_at(2, &mut buffer), 6);
        assert_eq!(&buffer, b"cd\0\0\0\0");
        assert_eq!(data.read_at(0x1927_4d17_b36d_09b0, &mut buffer), 4);
        assert_eq!(data.truncate(FILE_SIZE_MAX + 1), Err(FsError::TooLarge));
    }

    #[test]
    fn a_write_far_out_takes_one_page() {
        let mut data = FileData::default();
        assert_eq!(data.write_at(0x1927_4d17_b36d_09b4, b"xyz"), Ok(3));
        assert_eq!(data.page_count(), 1);
        assert_eq!(data.size_bytes(), 0x1927_4d17_b36d_09b7);
        assert_eq!(data.write_at(FILE_SIZE_MAX, b"a"), Err(FsError::TooLarge));
        assert_eq!(data.write_at(FILE_SIZE_MAX - 1, b"ab"), Ok(1), "writes stop at the largest size");
    }

    #[test]
    fn shrinking_frees_pages_and_zeroes_the_tail() {
        let mut data = FileData::default();
        let bytes = [7u8; 3 * PAGE_SIZE];
        assert_eq!(data.write_at(0, &bytes), Ok(bytes.len()));
        assert_eq!(data.truncate(PAGE_BYTES + 10), Ok(()));
        assert_eq!(data.page_count(), 2);
        assert_eq!(data.truncate(3 * PAGE_BYTES), Ok(()));
        let mut buffer = [1u8; 4];
        assert_eq!(data.read_at(PAGE_BYTES + 8, &mut buffer), 4);
        assert_eq!(buffer, [7, 7, 0, 0], "bytes cut off read as zeroes when the file grows again");
    }

    #[test]
    fn running_out_of_pages_stops_a_write() {
        let mut data = FileData::default();
        limit_pages(Some(2));
        let bytes = [1u8; 3 * PAGE_SIZE];
        let first = data.write_at(0, &bytes);
        let second = data.write_at(3 * PAGE_BYTES, b"x");
        limit_pages(None);
        assert_eq!(first, Ok(2 * PAGE_SIZE));
        assert_eq!(second, Err(FsError::NoSpace));
        assert_eq!(data.size_bytes(), 2 * PAGE_BYTES);
    }
}
