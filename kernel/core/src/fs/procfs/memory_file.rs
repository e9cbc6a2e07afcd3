//! `/proc/PID/mem`: the process's memory, read and written at its virtual
//! addresses (the file offset is the address), as debuggers use it.
//!
//! Opening it takes the same right as the process's other private files
//! ([`crate::process::may_inspect`]: the process itself, root, or its
//! user). A read or write moves the bytes up to the first address the
//! process could not access itself and fails with `EIO` when that is the
//! first; a write reaches read-only mappings too (program text gets a
//! private copy), as a debugger's breakpoints need.

use alloc::sync::Arc;
use core::any::Any;

use crate::process::Process;
use crate::vfs::{Caller, FileType, FsError, Metadata, Node};

/// An open `/proc/PID/mem`.
#[derive(Debug)]
pub struct MemoryFile {
    /// The file's inode number.
    pub inode: u64,
    /// The process whose memory it is.
    pub pid: u64,
}

impl MemoryFile {
    /// The process, while it has memory (not once it ended).
    fn process(&self) -> Result<Arc<Process>, FsError> {
        crate::process::find(self.pid).filter(|process| !process.has_ended()).ok_or(FsError::Io)
    }
}

impl Node for MemoryFile {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        Ok(Metadata::new(self.inode, FileType::Regular, 0o600))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let process = self.process()?;
        crate::syscall::remote_memory::read_memory_of(
            caller.machine,
            caller.process,
            &process,
            offset,
            buffer,
        )
        .map_err(FsError::Errno)
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let process = self.process()?;
        crate::syscall::remote_memory::write_memory_of(
            caller.machine,
            caller.process,
            &process,
            offset,
            bytes,
        )
        .map_err(FsError::Errno)
    }
}
