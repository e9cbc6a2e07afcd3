//! devpts, mounted at `/dev/pts`: a node `N` for each pseudo-terminal
//! slave whose master is open (and the host's terminal, when a standard
//! stream is one), and `ptmx`, which makes a new pair as `/dev/ptmx` does.
//!
//! The machine has one instance ([`crate::terminal::pseudo::table`]); every
//! mount of `devpts` shows it.

use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;

use crate::terminal::TerminalFile;
use crate::terminal::file::{slave_inode, slave_metadata};
use crate::terminal::pseudo::{self, MULTIPLEXER_DEVICE, Slave};
use crate::vfs::special::SpecialFile;
use crate::vfs::{
    AttributeChanges, Caller, DirectoryEntry, FileSystem, FileType, FsError, Metadata, Node, Statistics,
};

/// `DEVPTS_SUPER_MAGIC`.
pub const MAGIC: u64 = 0x1cd1;
/// The device number its files report (`st_dev`), below the numbers the
/// mount table hands out, so that a slave's open file and its node agree.
pub const DEVICE_NUMBER: u64 = 0x0c;
/// The inode of `ptmx`.
const MULTIPLEXER_INODE: u64 = 2;

/// The devpts filesystem.
#[derive(Debug, Default)]
pub struct DevPts;

impl DevPts {
    /// The machine's devpts.
    pub fn new() -> Arc<DevPts> {
        Arc::new(DevPts)
    }
}

impl FileSystem for DevPts {
    fn root(&self) -> Arc<dyn Node> {
        Arc::new(Root)
    }

    fn type_name(&self) -> &'static str {
        "devpts"
    }

    fn statistics(&self) -> Statistics {
        Statistics { magic: MAGIC, block_size_bytes: 4096, ..Statistics::default() }
    }

    fn device_number(&self) -> Option<u64> {
        Some(DEVICE_NUMBER)
    }
}

/// The directory.
struct Root;

impl Node for Root {
    fn inode(&self) -> u64 {
        1
    }

    fn file_type(&self) -> FileType {
        FileType::Directory
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = Metadata::new(1, FileType::Directory, 0o755);
        metadata.link_count = 2;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, _caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        if name == "ptmx" {
            return Ok(Arc::new(Multiplexer));
        }
        // Only the canonical spelling names a slave ("01" does not).
        let index: u32 = name.parse().map_err(|_| FsError::NotFound)?;
        if alloc::format!("{index}") != name || pseudo::table().slave(index).is_none() {
            return Err(FsError::NotFound);
        }
        Ok(Arc::new(SlaveNode { index }))
    }

    /// Offset 0 is `ptmx`; offset `N + 1` is slave `N` or the next one.
    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        if offset == 0 {
            let name = String::from("ptmx");
            return Ok(Some(DirectoryEntry {
                name,
                inode: MULTIPLEXER_INODE,
                file_type: FileType::CharacterDevice,
                next_offset: 1,
            }));
        }
        let first = offset - 1;
        let next = pseudo::table().names().into_iter().find(|&index| u64::from(index) >= first);
        Ok(next.map(|index| DirectoryEntry {
            name: alloc::format!("{index}"),
            inode: slave_inode(index),
            file_type: FileType::CharacterDevice,
            next_offset: u64::from(index) + 2,
        }))
    }
}

/// `/dev/pts/ptmx`.
struct Multiplexer;

impl Node for Multiplexer {
    fn inode(&self) -> u64 {
        MULTIPLEXER_INODE
    }

    fn file_type(&self) -> FileType {
        FileType::CharacterDevice
    }

    /// Mode 0 as Linux mounts it by default (`ptmxmode=000`): only a
    /// privileged caller opens it.
    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = Metadata::new(MULTIPLEXER_INODE, FileType::CharacterDevice, 0);
        metadata.represented_device = MULTIPLEXER_DEVICE;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn is_terminal(&self) -> bool {
        true
    }

    fn open_device(
        &self,
        caller: &Caller<'_>,
        _open_flags: u32,
    ) -> Result<Option<Arc<dyn SpecialFile>>, FsError> {
        Ok(Some(pseudo::open_multiplexer(caller)? as Arc<dyn SpecialFile>))
    }
}

/// `/dev/pts/N`.
struct SlaveNode {
    index: u32,
}

impl Node for SlaveNode {
    fn inode(&self) -> u64 {
        slave_inode(self.index)
    }

    fn file_type(&self) -> FileType {
        FileType::CharacterDevice
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let slave = pseudo::table().slave(self.index).ok_or(FsError::NotFound)?;
        let mut metadata = slave_metadata(slave.terminal());
        let now_ns = caller.now_ns();
        (metadata.access_time_ns, metadata.modify_time_ns, metadata.change_time_ns) =
            (now_ns, now_ns, now_ns);
        Ok(metadata)
    }

    /// `chmod` and `chown` (the VFS checked the caller may) change the
    /// slave's node for as long as it exists; times are not kept.
    fn set_attributes(&self, _caller: &Caller<'_>, changes: AttributeChanges) -> Result<(), FsError> {
        let slave = pseudo::table().slave(self.index).ok_or(FsError::NotFound)?;
        let terminal = slave.terminal();
        if let Some(permissions) = changes.permissions {
            terminal.set_permissions(permissions);
        }
        terminal.set_owner(changes.owner_user, changes.owner_group);
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn is_terminal(&self) -> bool {
        true
    }

    /// The slave, unless its master closed meanwhile (`EIO`, as Linux's
    /// hung-up terminal).
    fn open_device(
        &self,
        caller: &Caller<'_>,
        open_flags: u32,
    ) -> Result<Option<Arc<dyn SpecialFile>>, FsError> {
        let file: Arc<dyn SpecialFile> = match pseudo::table().slave(self.index).ok_or(FsError::Io)? {
            Slave::Pair(master) => master.open_slave(caller, open_flags)?,
            Slave::Host(terminal) => {
                let output = terminal.output().cloned();
                let file = TerminalFile::new(terminal.clone(), output);
                if let Some(process) = caller.process {
                    pseudo::acquire_on_open(&terminal, process, open_flags);
                }
                file
            }
        };
        Ok(Some(file))
    }
}
