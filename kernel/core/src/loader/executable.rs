//! An executable in the filesystem tree, read piece by piece as the loader
//! asks, and mapped from its pages when its filesystem allows.

use alloc::sync::Arc;

use super::ExecutableFile;
use crate::errno::Errno;
use crate::machine::Machine;
use crate::vfs::{Caller, Node, OpenFile};

/// An open executable file.
pub struct OpenExecutable<'a> {
    /// The open file.
    pub file: Arc<OpenFile>,
    /// Its size in bytes.
    pub size: u64,
    /// The path it was opened by (`/proc/PID/maps` shows it).
    pub path: Arc<str>,
    /// The machine its reads run on.
    pub machine: &'a dyn Machine,
}

impl core::fmt::Debug for OpenExecutable<'_> {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("OpenExecutable").field("path", &self.path).field("size", &self.size).finish()
    }
}

impl OpenExecutable<'_> {
    /// The file's path from the root of `vfs` with every symbolic link
    /// resolved, as `/proc/PID/exe` names it; the path it was opened by
    /// when that cannot be told.
    pub fn resolved_path(&self, vfs: &crate::vfs::Vfs) -> alloc::string::String {
        let caller = Caller::kernel(self.machine);
        self.file
            .location()
            .and_then(|location| vfs.path_of(&caller, location).ok())
            .unwrap_or_else(|| alloc::string::String::from(&*self.path))
    }
}

impl ExecutableFile for OpenExecutable<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        let caller = Caller::kernel(self.machine);
        let mut filled = 0;
        while filled < buffer.len() {
            let length = self
                .file
                .read_at(&caller, offset + filled as u64, &mut buffer[filled..])
                .map_err(Errno::from)?;
            if length == 0 {
                return Err(Errno::EIO);
            }
            filled += length;
        }
        Ok(())
    }

    fn mappable(&self) -> Option<(Arc<dyn Node>, Arc<str>)> {
        let node = self.file.data()?;
        node.is_mappable().then(|| (node.clone(), self.path.clone()))
    }
}
