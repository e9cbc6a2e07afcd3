//! The [`Node`] operations of the overlay: merged listings, changes to the
//! tree (with whiteouts and opaque directories), and data and attributes
//! passed to the layer that holds them.
//!
//! A merged directory lists its upper entries first, at the upper
//! directory's own offsets, then the lower entries that no upper entry
//! (whiteouts included) hides, at [`LOWER_OFFSETS`] plus the lower
//! directory's offsets.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::{OPAQUE, OverlayNode, PRIVATE_ATTRIBUTES, found, is_opaque, is_whiteout, set_opaque};
use crate::errno::Errno;
use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileType, FsError, LinkTarget, Metadata, NewNode, Node,
    RenameMode,
};

/// Offsets of a merged directory from here on list the lower directory.
const LOWER_OFFSETS: u64 = 1 << 48;

impl OverlayNode {
    /// Directory: the merged entry at `offset` or the first after it.
    pub(super) fn read_merged(
        &self,
        caller: &Caller<'_>,
        offset: u64,
    ) -> Result<Option<DirectoryEntry>, FsError> {
        if !self.is_directory() {
            return Err(FsError::NotDirectory);
        }
        let upper = self.upper();
        if offset < LOWER_OFFSETS
            && let Some(directory) = &upper
        {
            let mut offset = offset;
            while let Some(mut entry) = directory.read_directory(caller, offset)? {
                offset = entry.next_offset;
                if entry.file_type == FileType::CharacterDevice
                    && found(directory.lookup(caller, &entry.name))?.is_some_and(|node| is_whiteout(&*node))
                {
                    continue;
                }
                if entry.next_offset >= LOWER_OFFSETS {
                    return Err(FsError::Io);
                }
                if entry.file_type == FileType::Directory {
                    // A merged directory reports the lower one's number.
                    entry.inode = match found(self.child(caller, &entry.name))? {
                        Some(node) => node.inode,
                        None => continue,
                    };
                } else {
                    entry.inode = self.upper_inode(entry.inode);
                }
                return Ok(Some(entry));
            }
        }
        let Some(lower) = &self.lower else {
            return Ok(None);
        };
        let mut offset = offset.saturating_sub(LOWER_OFFSETS);
        while let Some(mut entry) = lower.read_directory(caller, offset)? {
            offset = entry.next_offset;
            if let Some(directory) = &upper
                && found(directory.lookup(caller, &entry.name))?.is_some()
            {
                continue;
            }
            entry.next_offset = entry.next_offset.saturating_add(LOWER_OFFSETS);
            return Ok(Some(entry));
        }
        Ok(None)
    }

    /// The number an upper-only node with upper inode `inode` reports.
    fn upper_inode(&self, inode: u64) -> u64 {
        self.shared.origins.lock().get(&inode).copied().unwrap_or(inode | super::UPPER_INODES)
    }
}

/// Hides the overlay's own attributes from programs.
fn check_attribute_name(name: &str) -> Result<(), FsError> {
    if name.starts_with(PRIVATE_ATTRIBUTES) { Err(FsError::NotPermitted) } else { Ok(()) }
}

impl Node for OverlayNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let upper = self.upper();
        let mut metadata = self.current()?.metadata(caller)?;
        metadata.inode = self.inode;
        if self.is_directory() && self.lower.is_some() && upper.is_some() {
            // Subdirectories of both layers would be counted, some twice:
            // like Linux's overlayfs (and btrfs), say 1, which tells `find`
            // to count nothing.
            metadata.link_count = 1;
        }
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        let node = self.child(caller, name)?;
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        let (parent, _) = self.place.lock().clone()?;
        Some(parent)
    }

    fn read_directory(&self, caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        self.read_merged(caller, offset)
    }

    fn create(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        let _namespace = self.shared.namespace.lock();
        if found(self.child(caller, name))?.is_some() {
            return Err(FsError::Exists);
        }
        let directory = self.copy_up(caller, true)?;
        let had_whiteout = Self::remove_whiteout(caller, &*directory, name)?;
        let upper = directory.create(caller, name, kind, permissions)?;
        if kind == NewNode::Directory && (had_whiteout || self.lower_has(caller, name)?) {
            // The lower directory of that name was removed: it stays hidden.
            set_opaque(caller, &*upper)?;
        }
        let file_type = upper.file_type();
        let node = OverlayNode::new(&self.shared, file_type, None, Some(upper), None);
        self.adopt(name, &node);
        Ok(node)
    }

    fn create_temporary(
        &self,
        caller: &Caller<'_>,
        permissions: u32,
        is_linkable: bool,
    ) -> Result<Arc<dyn Node>, FsError> {
        if !self.is_directory() {
            return Err(FsError::NotDirectory);
        }
        let directory = self.writable(caller)?;
        let upper = directory.create_temporary(caller, permissions, is_linkable)?;
        Ok(OverlayNode::new(&self.shared, FileType::Regular, None, Some(upper), None))
    }

    fn remove(&self, caller: &Caller<'_>, name: &str, is_directory: bool) -> Result<(), FsError> {
        let _namespace = self.shared.namespace.lock();
        let child = self.child(caller, name)?;
        match (is_directory, child.is_directory()) {
            (true, false) => return Err(FsError::NotDirectory),
            (false, true) => return Err(FsError::IsDirectory),
            (true, true) if !child.is_empty(caller)? => return Err(FsError::NotEmpty),
            _ => {}
        }
        let directory = self.copy_up(caller, true)?;
        if let Some(upper) = child.upper() {
            if is_directory {
                Self::clear_whiteouts(caller, &*upper)?;
            }
            directory.remove(caller, name, is_directory)?;
        }
        if self.lower_has(caller, name)? {
            Self::make_whiteout(caller, &*directory, name)?;
        }
        self.forget(name);
        *child.place.lock() = None;
        Ok(())
    }

    fn rename(
        &self,
        caller: &Caller<'_>,
        name: &str,
        new_parent: &dyn Node,
        new_name: &str,
        mode: RenameMode,
    ) -> Result<(), FsError> {
        let new_parent = self.same_overlay(new_parent)?;
        let _namespace = self.shared.namespace.lock();
        let source = self.child(caller, name)?;
        let target = found(new_parent.child(caller, new_name))?;
        if let Some(target) = &target {
            // Two names of one file (hard links report one number): POSIX
            // leaves both.
            if Arc::ptr_eq(target, &source) || (!source.is_directory() && target.inode == source.inode) {
                return Ok(());
            }
            if mode == RenameMode::NoReplace {
                return Err(FsError::Exists);
            }
        }
        // Without redirects, a directory with lower entries cannot move.
        let is_pinned = |node: &OverlayNode| node.is_directory() && node.lower.is_some();
        if mode == RenameMode::Exchange {
            let target = target.ok_or(FsError::NotFound)?;
            if is_pinned(&source) || is_pinned(&target) {
                return Err(FsError::CrossDevice);
            }
            let source_upper = source.copy_up(caller, true)?;
            let target_upper = target.copy_up(caller, true)?;
            let directory = self.copy_up(caller, true)?;
            let new_directory = new_parent.copy_up(caller, true)?;
            directory.rename(caller, name, &*new_directory, new_name, RenameMode::Exchange)?;
            if source.is_directory() && new_parent.lower_has(caller, new_name)? {
                set_opaque(caller, &*source_upper)?;
            }
            if target.is_directory() && self.lower_has(caller, name)? {
                set_opaque(caller, &*target_upper)?;
            }
            self.forget(name);
            new_parent.forget(new_name);
            new_parent.adopt(new_name, &source);
            self.adopt(name, &target);
            return Ok(());
        }
        if let Some(target) = &target {
            match (source.is_directory(), target.is_directory()) {
                (true, false) => return Err(FsError::NotDirectory),
                (false, true) => return Err(FsError::IsDirectory),
                (true, true) if !target.is_empty(caller)? => return Err(FsError::NotEmpty),
                _ => {}
            }
        }
        if is_pinned(&source) {
            return Err(FsError::CrossDevice);
        }
        let source_upper = source.copy_up(caller, true)?;
        let directory = self.copy_up(caller, true)?;
        let new_directory = new_parent.copy_up(caller, true)?;
        if let Some(target) = &target
            && let Some(upper) = target.upper()
            && target.is_directory()
        {
            Self::clear_whiteouts(caller, &*upper)?;
        }
        if source.is_directory() {
            // A directory cannot replace a whiteout, which is a device.
            Self::remove_whiteout(caller, &*new_directory, new_name)?;
        }
        directory.rename(caller, name, &*new_directory, new_name, RenameMode::Replace)?;
        if source.is_directory()
            && new_parent.lower_has(caller, new_name)?
            && !is_opaque(caller, &*source_upper)
        {
            set_opaque(caller, &*source_upper)?;
        }
        if self.lower_has(caller, name)? {
            Self::make_whiteout(caller, &*directory, name)?;
        }
        self.forget(name);
        if let Some(target) = new_parent.forget(new_name) {
            *target.place.lock() = None;
        }
        new_parent.adopt(new_name, &source);
        Ok(())
    }

    fn link(&self, caller: &Caller<'_>, name: &str, target: &dyn Node) -> Result<(), FsError> {
        let target = self.same_overlay(target)?;
        if target.is_directory() {
            return Err(FsError::NotPermitted);
        }
        let _namespace = self.shared.namespace.lock();
        if found(self.child(caller, name))?.is_some() {
            return Err(FsError::Exists);
        }
        let target_upper = target.copy_up(caller, true)?;
        let directory = self.copy_up(caller, true)?;
        Self::remove_whiteout(caller, &*directory, name)?;
        directory.link(caller, name, &*target_upper)?;
        // An unnamed file gets the number of its first name's node.
        self.shared.origins.lock().entry(target_upper.inode()).or_insert(target.inode);
        self.forget(name);
        Ok(())
    }

    fn read_link(&self, caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        self.current()?.read_link(caller)
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        self.current()?.read_at(caller, offset, buffer)
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        self.writable(caller)?.write_at(caller, offset, bytes)
    }

    fn append(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<(usize, u64), FsError> {
        self.writable(caller)?.append(caller, bytes)
    }

    fn is_mappable(&self) -> bool {
        self.current().is_ok_and(|node| node.is_mappable())
    }

    fn seals(&self) -> Result<u32, FsError> {
        self.current()?.seals()
    }

    fn is_page_cached(&self, index: u64) -> bool {
        self.current().is_ok_and(|node| node.is_page_cached(index))
    }

    fn page(&self, caller: &Caller<'_>, index: u64) -> Result<Option<crate::pages::Page>, FsError> {
        self.current()?.page(caller, index)
    }

    fn truncate(&self, caller: &Caller<'_>, size_bytes: u64) -> Result<(), FsError> {
        let upper = match self.upper() {
            Some(upper) => upper,
            None => {
                let _namespace = self.shared.namespace.lock();
                self.copy_up(caller, size_bytes != 0)?
            }
        };
        upper.truncate(caller, size_bytes)
    }

    fn prepare_for_write(&self, caller: &Caller<'_>, is_truncating: bool) -> Result<(), FsError> {
        if self.upper().is_none() {
            let _namespace = self.shared.namespace.lock();
            self.copy_up(caller, !is_truncating)?;
        }
        Ok(())
    }

    fn set_attributes(&self, caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        self.writable(caller)?.set_attributes(caller, changes)
    }

    fn sync(&self, caller: &Caller<'_>) -> Result<(), FsError> {
        self.current()?.sync(caller)
    }

    fn named_pipe(&self) -> Option<Arc<crate::vfs::Pipe>> {
        self.current().ok()?.named_pipe()
    }

    fn names_device(&self) -> Option<u64> {
        self.current().ok()?.names_device()
    }

    fn get_extended(&self, caller: &Caller<'_>, name: &str) -> Result<Vec<u8>, FsError> {
        if name.starts_with(PRIVATE_ATTRIBUTES) {
            return Err(FsError::Errno(Errno::ENODATA));
        }
        self.current()?.get_extended(caller, name)
    }

    fn set_extended(
        &self,
        caller: &Caller<'_>,
        name: &str,
        value: &[u8],
        must_exist: Option<bool>,
    ) -> Result<(), FsError> {
        check_attribute_name(name)?;
        self.writable(caller)?.set_extended(caller, name, value, must_exist)
    }

    fn list_extended(&self, caller: &Caller<'_>) -> Result<Vec<String>, FsError> {
        let mut names = self.current()?.list_extended(caller)?;
        names.retain(|name| !name.starts_with(PRIVATE_ATTRIBUTES) && name != OPAQUE);
        Ok(names)
    }

    fn remove_extended(&self, caller: &Caller<'_>, name: &str) -> Result<(), FsError> {
        check_attribute_name(name)?;
        self.writable(caller)?.remove_extended(caller, name)
    }

    fn is_seekable(&self) -> bool {
        self.current().is_ok_and(|node| node.is_seekable())
    }

    fn is_terminal(&self) -> bool {
        self.current().is_ok_and(|node| node.is_terminal())
    }
}
