//! The [`Node`] operations of ramfs: lookups and listings, changes to the
//! tree under the namespace lock, file data, attributes.

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::Ordering;

use spin::Mutex;

use super::data::FileData;
use super::{Content, RamNode, seal};
use crate::vfs::permission;
use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileType, FsError, LinkTarget, Metadata, NewNode, Node,
    RenameMode,
};

/// The ramfs node behind `node`, which must belong to the same instance.
fn same_filesystem<'a>(this: &RamNode, node: &'a dyn Node) -> Result<&'a RamNode, FsError> {
    node.as_any()
        .downcast_ref::<RamNode>()
        .filter(|other| Arc::ptr_eq(&other.shared, &this.shared))
        .ok_or(FsError::CrossDevice)
}

impl Node for RamNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        match self.content {
            Content::File(_) => FileType::Regular,
            Content::Directory(_) => FileType::Directory,
            Content::Symlink(_) => FileType::Symlink,
            Content::Socket => FileType::Socket,
            Content::Fifo(_) => FileType::Fifo,
            Content::Device(file_type, _) => file_type,
        }
    }

    fn named_pipe(&self) -> Option<Arc<crate::vfs::Pipe>> {
        match &self.content {
            Content::Fifo(pipe) => Some(pipe.clone()),
            _ => None,
        }
    }

    fn names_device(&self) -> Option<u64> {
        match self.content {
            Content::Device(_, number) => Some(number),
            _ => None,
        }
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut blocks = None;
        let size_bytes = match &self.content {
            Content::File(data) => {
                let data = data.lock();
                blocks = Some(data.page_count() * 8);
                data.size_bytes()
            }
            Content::Directory(directory) => (directory.lock().entries.len() as u64 + 2) * 32,
            Content::Symlink(target) => target.len() as u64,
            Content::Socket | Content::Fifo(_) | Content::Device(..) => 0,
        };
        let attributes = self.attributes.lock();
        let mut metadata = Metadata::new(self.inode, self.file_type(), attributes.permissions);
        metadata.link_count = attributes.link_count;
        metadata.owner_user = attributes.owner_user;
        metadata.owner_group = attributes.owner_group;
        metadata.size_bytes = size_bytes;
        metadata.blocks = blocks.unwrap_or(size_bytes.div_ceil(4096) * 8);
        metadata.access_time_ns = attributes.access_time_ns;
        metadata.modify_time_ns = attributes.modify_time_ns;
        metadata.change_time_ns = attributes.change_time_ns;
        if let Content::Device(_, number) = self.content {
            metadata.represented_device = number;
        }
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn get_extended(&self, _caller: &Caller<'_>, name: &str) -> Result<alloc::vec::Vec<u8>, FsError> {
        self.extended.lock().get(name).cloned().ok_or(FsError::Errno(crate::errno::Errno::ENODATA))
    }

    fn set_extended(
        &self,
        caller: &Caller<'_>,
        name: &str,
        value: &[u8],
        must_exist: Option<bool>,
    ) -> Result<(), FsError> {
        {
            let mut extended = self.extended.lock();
            match (must_exist, extended.contains_key(name)) {
                (Some(true), false) => return Err(FsError::Errno(crate::errno::Errno::ENODATA)),
                (Some(false), true) => return Err(FsError::Exists),
                _ => {}
            }
            extended.insert(String::from(name), value.to_vec());
        }
        self.attributes.lock().change_time_ns = caller.now_ns();
        Ok(())
    }

    fn list_extended(&self, _caller: &Caller<'_>) -> Result<alloc::vec::Vec<String>, FsError> {
        Ok(self.extended.lock().keys().cloned().collect())
    }

    fn remove_extended(&self, caller: &Caller<'_>, name: &str) -> Result<(), FsError> {
        self.extended.lock().remove(name).ok_or(FsError::Errno(crate::errno::Errno::ENODATA))?;
        self.attributes.lock().change_time_ns = caller.now_ns();
        Ok(())
    }

    fn lookup(&self, _caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        let node = self.directory()?.lock().get(name).cloned().ok_or(FsError::NotFound)?;
        Ok(node)
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        let parent = self.directory().ok()?.lock().parent.upgrade()?;
        Some(parent)
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let directory = self.directory()?.lock();
        Ok(directory.entries.range(offset..).next().map(|(offset, (name, node))| DirectoryEntry {
            name: name.clone(),
            inode: node.inode,
            file_type: node.file_type(),
            next_offset: offset + 1,
        }))
    }

    fn create(
        &self,
        caller: &Caller<'_>,
        name: &str,
        kind: NewNode<'_>,
        permissions: u32,
    ) -> Result<Arc<dyn Node>, FsError> {
        let _namespace = self.shared.namespace.lock();
        let directory = self.directory()?;
        if directory.lock().get(name).is_some() {
            return Err(FsError::Exists);
        }
        let now_ns = caller.now_ns();
        let content = match kind {
            NewNode::File => Content::File(Mutex::new(FileData::default())),
            NewNode::Directory => Content::directory(self.this.clone()),
            NewNode::Symlink(target) => Content::Symlink(String::from(target)),
            NewNode::Socket => Content::Socket,
            NewNode::Fifo => Content::Fifo(crate::vfs::Pipe::named()),
            NewNode::Device(file_type, number) => Content::Device(file_type, number),
        };
        let is_directory = kind == NewNode::Directory;
        let (owner_user, owner_group, permissions) =
            permission::new_owner(caller, &self.metadata(caller)?, is_directory, permissions);
        let inode = self.shared.next_inode.fetch_add(1, Ordering::Relaxed);
        let node = RamNode::new(&self.shared, inode, content, permissions, now_ns);
        {
            let mut attributes = node.attributes.lock();
            attributes.owner_user = owner_user;
            attributes.owner_group = owner_group;
        }
        if kind == NewNode::Directory {
            self.adjust_links(1, now_ns);
        }
        directory.lock().insert(name, node.clone());
        self.touch(now_ns);
        Ok(node)
    }

    fn remove(&self, caller: &Caller<'_>, name: &str, is_directory: bool) -> Result<(), FsError> {
        let _namespace = self.shared.namespace.lock();
        let mut directory = self.directory()?.lock();
        let child = directory.get(name).ok_or(FsError::NotFound)?;
        match (is_directory, child.is_directory()) {
            (true, false) => return Err(FsError::NotDirectory),
            (false, true) => return Err(FsError::IsDirectory),
            (true, true) if !child.is_empty_directory() => return Err(FsError::NotEmpty),
            _ => {}
        }
        let now_ns = caller.now_ns();
        let child = directory.take(name).ok_or(FsError::NotFound)?;
        drop(directory);
        if is_directory {
            child.adjust_links(-2, now_ns);
            self.adjust_links(-1, now_ns);
        } else {
            child.adjust_links(-1, now_ns);
        }
        self.touch(now_ns);
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
        let new_parent = same_filesystem(self, new_parent)?;
        let _namespace = self.shared.namespace.lock();
        let now_ns = caller.now_ns();
        let is_same_directory = core::ptr::eq(self, new_parent);
        let source = self.directory()?.lock().get(name).cloned().ok_or(FsError::NotFound)?;
        let target = new_parent.directory()?.lock().get(new_name).cloned();
        if let Some(target) = &target {
            if Arc::ptr_eq(target, &source) {
                return Ok(());
            }
            if mode == RenameMode::NoReplace {
                return Err(FsError::Exists);
            }
        }
        if mode == RenameMode::Exchange {
            let target = target.ok_or(FsError::NotFound)?;
            self.directory()?.lock().swap(name, target.clone());
            new_parent.directory()?.lock().swap(new_name, source.clone());
            if !is_same_directory {
                let links = i64::from(source.is_directory()) - i64::from(target.is_directory());
                self.adjust_links(-links, now_ns);
                new_parent.adjust_links(links, now_ns);
                source.set_parent(new_parent);
                target.set_parent(self);
            }
        } else {
            if let Some(target) = &target {
                match (source.is_directory(), target.is_directory()) {
                    (true, false) => return Err(FsError::NotDirectory),
                    (false, true) => return Err(FsError::IsDirectory),
                    (true, true) if !target.is_empty_directory() => return Err(FsError::NotEmpty),
                    _ => {}
                }
                new_parent.directory()?.lock().take(new_name);
                if target.is_directory() {
                    target.adjust_links(-2, now_ns);
                    new_parent.adjust_links(-1, now_ns);
                } else {
                    target.adjust_links(-1, now_ns);
                }
            }
            self.directory()?.lock().take(name);
            new_parent.directory()?.lock().insert(new_name, source.clone());
            if source.is_directory() && !is_same_directory {
                self.adjust_links(-1, now_ns);
                new_parent.adjust_links(1, now_ns);
                source.set_parent(new_parent);
            }
        }
        source.attributes.lock().change_time_ns = now_ns;
        self.touch(now_ns);
        new_parent.touch(now_ns);
        Ok(())
    }

    fn create_temporary(
        &self,
        caller: &Caller<'_>,
        permissions: u32,
        is_linkable: bool,
    ) -> Result<Arc<dyn Node>, FsError> {
        self.directory()?;
        let (owner_user, owner_group, permissions) =
            permission::new_owner(caller, &self.metadata(caller)?, false, permissions);
        let inode = self.shared.next_inode.fetch_add(1, Ordering::Relaxed);
        let content = Content::File(Mutex::new(FileData::default()));
        let node = RamNode::new(&self.shared, inode, content, permissions, caller.now_ns());
        {
            let mut attributes = node.attributes.lock();
            attributes.owner_user = owner_user;
            attributes.owner_group = owner_group;
            attributes.link_count = 0;
        }
        node.is_linkable.store(is_linkable, Ordering::Release);
        Ok(node)
    }

    fn link(&self, caller: &Caller<'_>, name: &str, target: &dyn Node) -> Result<(), FsError> {
        let target = same_filesystem(self, target)?;
        let target = target.this.upgrade().ok_or(FsError::NotFound)?;
        if target.is_directory() {
            return Err(FsError::NotPermitted);
        }
        let _namespace = self.shared.namespace.lock();
        let mut directory = self.directory()?.lock();
        if directory.get(name).is_some() {
            return Err(FsError::Exists);
        }
        if target.attributes.lock().link_count == 0 && !target.is_linkable.swap(false, Ordering::AcqRel) {
            // An unlinked file cannot get a name back (Linux's ENOENT).
            return Err(FsError::NotFound);
        }
        let now_ns = caller.now_ns();
        directory.insert(name, target.clone());
        drop(directory);
        target.adjust_links(1, now_ns);
        self.touch(now_ns);
        Ok(())
    }

    fn read_link(&self, _caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        match &self.content {
            Content::Symlink(target) => Ok(LinkTarget::Path(target.clone())),
            _ => Err(FsError::InvalidArgument),
        }
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        Ok(self.file()?.lock().read_at(offset, buffer))
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let mut data = self.file()?.lock();
        self.check_write_seals(data.size_bytes(), offset, bytes.len())?;
        let written = data.write_at(offset, bytes)?;
        drop(data);
        self.touch(caller.now_ns());
        Ok(written)
    }

    fn append(&self, caller: &Caller<'_>, bytes: &[u8]) -> Result<(usize, u64), FsError> {
        let mut data = self.file()?.lock();
        let end = data.size_bytes();
        self.check_write_seals(end, end, bytes.len())?;
        let written = data.write_at(end, bytes)?;
        drop(data);
        self.touch(caller.now_ns());
        Ok((written, end + written as u64))
    }

    fn is_mappable(&self) -> bool {
        matches!(self.content, Content::File(_))
    }

    fn seals(&self) -> Result<u32, FsError> {
        self.file()?;
        Ok(self.seals.load(Ordering::Relaxed))
    }

    fn add_seals(&self, seals: u32) -> Result<(), FsError> {
        if seals & !seal::ALL != 0 {
            return Err(FsError::InvalidArgument);
        }
        let _data = self.file()?.lock();
        self.seals
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current & seal::SEAL == 0).then_some(current | seals)
            })
            .map(|_| ())
            .map_err(|_| FsError::NotPermitted)
    }

    fn is_page_cached(&self, index: u64) -> bool {
        self.file().is_ok_and(|data| data.lock().has_page(index))
    }

    fn page(&self, _caller: &Caller<'_>, index: u64) -> Result<Option<crate::pages::Page>, FsError> {
        self.file()?.lock().page(index)
    }

    fn truncate(&self, caller: &Caller<'_>, size_bytes: u64) -> Result<(), FsError> {
        let mut data = self.file()?.lock();
        let seals = self.seals.load(Ordering::Relaxed);
        let current = data.size_bytes();
        if (size_bytes < current && seals & seal::SHRINK != 0)
            || (size_bytes > current && seals & seal::GROW != 0)
        {
            return Err(FsError::NotPermitted);
        }
        data.truncate(size_bytes)?;
        drop(data);
        self.touch(caller.now_ns());
        Ok(())
    }

    fn set_attributes(&self, caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        let mut attributes = self.attributes.lock();
        if let Some(permissions) = changes.permissions {
            attributes.permissions = permissions & 0o7777;
        }
        if let Some(user) = changes.owner_user {
            attributes.owner_user = user;
        }
        if let Some(group) = changes.owner_group {
            attributes.owner_group = group;
        }
        if let Some(time) = changes.access_time_ns {
            attributes.access_time_ns = time;
        }
        if let Some(time) = changes.modify_time_ns {
            attributes.modify_time_ns = time;
        }
        if !changes.keeps_change_time {
            attributes.change_time_ns = caller.now_ns();
        }
        Ok(())
    }
}
