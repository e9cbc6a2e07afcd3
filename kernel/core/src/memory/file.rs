//! Areas that map a file: their pages are the file's own pages (shared
//! mappings) or start as them and are copied on the first store (private
//! mappings), so every mapping of a file, and `read` and `write`, meet in
//! one set of frames.

use alloc::sync::Arc;

use super::{Access, FaultResolution, PAGE_SIZE};
use crate::machine::{MapFailure, PageTables, Rights};
use crate::pages::Page;
use crate::vfs::Node;

/// The file an area maps.
#[derive(Clone)]
pub struct FileArea {
    /// The file.
    pub node: Arc<dyn Node>,
    /// The file offset the area's first byte maps (page-aligned).
    pub offset: u64,
    /// Stores reach the file (`MAP_SHARED`) rather than a private copy.
    pub is_shared: bool,
    /// Stores may be allowed (Linux's `VM_MAYWRITE`): false for a shared
    /// mapping of a file opened without write access, which `mprotect`
    /// may not make writable.
    pub may_write: bool,
    /// The path the file was opened by, for `/proc/self/maps`.
    pub path: Arc<str>,
}

impl core::fmt::Debug for FileArea {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("FileArea")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .field("is_shared", &self.is_shared)
            .finish()
    }
}

impl FileArea {
    /// The same file from `bytes` further into the area.
    pub fn advanced(&self, bytes: u64) -> FileArea {
        FileArea { offset: self.offset.saturating_add(bytes), ..self.clone() }
    }

    /// The index of the file page `within` bytes into the area.
    pub fn index(&self, within: u64) -> Option<u64> {
        self.offset.checked_add(within).map(|offset| offset / PAGE_SIZE)
    }

    /// Maps `file_page` (this area's page) at `page` for `access`; also
    /// says whether a frame was replaced (a private copy taking the file's
    /// page's place), which other processors must forget.
    pub fn map_page(
        &self,
        tables: &dyn PageTables,
        page: u64,
        file_page: &Page,
        rights: Rights,
        access: Access,
    ) -> (FaultResolution, bool) {
        if self.is_shared {
            return mapped(tables.map_frame(page, file_page.frame(), rights));
        }
        if access != Access::Write {
            let read_only = Rights { write: false, ..rights };
            if let Some(frame) = tables.mapped_frame(page)
                && frame != file_page.frame()
            {
                // A private copy made while this fault read the file (a
                // store by another thread): it keeps the stores, so it
                // stays, readable.
                return mapped(tables.map_frame(page, frame, read_only));
            }
            // The file's page itself, until a store copies it.
            return mapped(tables.map_frame(page, file_page.frame(), read_only));
        }
        if let Some(frame) = tables.mapped_frame(page)
            && frame != file_page.frame()
        {
            // A private copy made before, read-only since an mprotect or
            // shared with a forked process: copied again if it is shared.
            return mapped(tables.make_private(page, rights));
        }
        let Ok(copy) = file_page.duplicate() else {
            return (FaultResolution::OutOfMemory, false);
        };
        mapped(tables.map_frame(page, copy.frame(), rights))
    }
}

fn mapped(result: Result<bool, MapFailure>) -> (FaultResolution, bool) {
    match result {
        Ok(replaced) => (FaultResolution::Mapped, replaced),
        Err(MapFailure::AlreadyMapped) => (FaultResolution::Mapped, false),
        Err(MapFailure::OutOfMemory) => (FaultResolution::OutOfMemory, false),
    }
}
