//! The files a process starts with: its tree, working directory and
//! standard descriptors.

use alloc::sync::Arc;

use crate::machine::Machine;
use crate::vfs::file::flags;
use crate::vfs::{Caller, Descriptor, DescriptorTable, FsError, Location, OpenFile, Vfs};

/// The files a process starts with: the tree, the working directory and
/// the descriptors.
#[derive(Debug, Clone)]
pub struct ProcessFiles {
    /// The filesystem tree.
    pub vfs: Arc<Vfs>,
    /// The working directory.
    pub working_directory: Location,
    /// The descriptor table.
    pub descriptors: DescriptorTable,
}

impl ProcessFiles {
    /// Working directory `working_directory` (an absolute path to a
    /// directory) and the console (`/dev/console`) as descriptors 0, 1, 2.
    pub fn open(vfs: Arc<Vfs>, machine: &dyn Machine, working_directory: &str) -> Result<Self, FsError> {
        let console = Self::console(&vfs, machine)?;
        Self::with_standard_files(
            vfs,
            machine,
            working_directory,
            [console.clone(), console.clone(), console],
        )
    }

    /// The console (`/dev/console`), opened for reading and writing.
    pub fn console(vfs: &Vfs, machine: &dyn Machine) -> Result<Arc<OpenFile>, FsError> {
        vfs.open(&Caller::kernel(machine), &vfs.root(), "/dev/console", flags::O_RDWR, 0)
    }

    /// Working directory `working_directory` (an absolute path to a
    /// directory) and `standard` as descriptors 0, 1, 2.
    pub fn with_standard_files(
        vfs: Arc<Vfs>,
        machine: &dyn Machine,
        working_directory: &str,
        standard: [Arc<OpenFile>; 3],
    ) -> Result<Self, FsError> {
        let caller = Caller::kernel(machine);
        if !working_directory.starts_with('/') {
            return Err(FsError::NotFound);
        }
        let directory = vfs.resolve(&caller, &vfs.root(), working_directory, true)?;
        if !directory.is_directory() {
            return Err(FsError::NotDirectory);
        }
        let mut descriptors = DescriptorTable::new();
        for file in standard {
            descriptors.install(Descriptor { file, close_on_exec: false }, 0, 3).map_err(FsError::Errno)?;
        }
        Ok(ProcessFiles { vfs, working_directory: directory, descriptors })
    }
}
