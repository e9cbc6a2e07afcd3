//! procfs, mounted at `/proc`: the process (`/proc/self` links to
//! `/proc/1`: `exe`, `cwd`, `fd/`, `maps`, `mounts`, `status`) and the
//! machine (`cpuinfo`, `meminfo`, `mounts`, `uptime`).
//!
//! Files are generated when opened ([`contents`]) and read from that
//! snapshot, so one `read` loop sees consistent text.

mod contents;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use crate::process::PROCESS_ID;
use crate::vfs::{
    Caller, DirectoryEntry, FileSystem, FileType, FsError, LinkTarget, Metadata, Node, Statistics,
};

/// `PROC_SUPER_MAGIC`.
const MAGIC: u64 = 0x9fa0;
/// Inode numbers of `/proc/self/fd/N` start here.
const DESCRIPTOR_INODES: u64 = 1000;

/// What the kernel tells procfs about the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemInformation {
    /// Usable RAM.
    pub memory_total_bytes: u64,
}

/// A generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Generated {
    Cpuinfo,
    Meminfo,
    Mounts,
    Uptime,
    Maps,
    Status,
    NetDevices,
    NetRoutes,
    Stat,
    LoadAverage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    SelfLink,
    ProcessDirectory,
    DescriptorDirectory,
    NetDirectory,
    Executable,
    WorkingDirectory,
    Descriptor(u64),
    File(Generated, u64),
}

const ROOT_ENTRIES: [(&str, Kind); 9] = [
    ("self", Kind::SelfLink),
    ("1", Kind::ProcessDirectory),
    ("cpuinfo", Kind::File(Generated::Cpuinfo, 3)),
    ("meminfo", Kind::File(Generated::Meminfo, 4)),
    ("mounts", Kind::File(Generated::Mounts, 5)),
    ("uptime", Kind::File(Generated::Uptime, 6)),
    ("net", Kind::NetDirectory),
    ("stat", Kind::File(Generated::Stat, 7)),
    ("loadavg", Kind::File(Generated::LoadAverage, 8)),
];

const NET_ENTRIES: [(&str, Kind); 2] =
    [("dev", Kind::File(Generated::NetDevices, 18)), ("route", Kind::File(Generated::NetRoutes, 19))];

const PROCESS_ENTRIES: [(&str, Kind); 6] = [
    ("exe", Kind::Executable),
    ("cwd", Kind::WorkingDirectory),
    ("fd", Kind::DescriptorDirectory),
    ("maps", Kind::File(Generated::Maps, 13)),
    ("mounts", Kind::File(Generated::Mounts, 14)),
    ("status", Kind::File(Generated::Status, 15)),
];

/// A procfs instance.
pub struct ProcFs {
    root: Arc<ProcNode>,
}

impl core::fmt::Debug for ProcFs {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("ProcFs")
    }
}

impl ProcFs {
    /// A `/proc` describing a machine with `system`.
    pub fn new(system: SystemInformation) -> Arc<ProcFs> {
        Arc::new(ProcFs { root: Arc::new(ProcNode { kind: Kind::Root, system }) })
    }
}

impl FileSystem for ProcFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "proc"
    }

    fn statistics(&self) -> Statistics {
        Statistics { magic: MAGIC, block_size_bytes: 4096, ..Statistics::default() }
    }
}

/// A directory, link or file of procfs.
struct ProcNode {
    kind: Kind,
    system: SystemInformation,
}

impl ProcNode {
    fn child(&self, kind: Kind) -> Arc<dyn Node> {
        Arc::new(ProcNode { kind, system: self.system })
    }

    /// The entries of a directory with fixed contents.
    fn fixed_entries(&self) -> &'static [(&'static str, Kind)] {
        match self.kind {
            Kind::Root => &ROOT_ENTRIES,
            Kind::ProcessDirectory => &PROCESS_ENTRIES,
            Kind::NetDirectory => &NET_ENTRIES,
            _ => &[],
        }
    }

    /// The open descriptors of the calling process.
    fn descriptors(caller: &Caller<'_>) -> Vec<u64> {
        caller.process.map_or_else(Vec::new, |process| {
            process.state.lock().descriptors.iter().map(|(number, _)| number as u64).collect()
        })
    }
}

fn inode(kind: Kind) -> u64 {
    match kind {
        Kind::Root => 1,
        Kind::SelfLink => 2,
        Kind::ProcessDirectory => 10,
        Kind::Executable => 11,
        Kind::WorkingDirectory => 12,
        Kind::DescriptorDirectory => 16,
        Kind::NetDirectory => 17,
        Kind::File(_, inode) => inode,
        Kind::Descriptor(number) => DESCRIPTOR_INODES + number,
    }
}

impl Node for ProcNode {
    fn inode(&self) -> u64 {
        inode(self.kind)
    }

    fn file_type(&self) -> FileType {
        match self.kind {
            Kind::Root | Kind::ProcessDirectory | Kind::DescriptorDirectory | Kind::NetDirectory => {
                FileType::Directory
            }
            Kind::SelfLink | Kind::Executable | Kind::WorkingDirectory | Kind::Descriptor(_) => {
                FileType::Symlink
            }
            Kind::File(..) => FileType::Regular,
        }
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let permissions = match self.file_type() {
            FileType::Directory => 0o555,
            FileType::Symlink => 0o777,
            _ => 0o444,
        };
        let mut metadata = Metadata::new(self.inode(), self.file_type(), permissions);
        if self.file_type() == FileType::Directory {
            metadata.link_count = 2;
        }
        let start_ns = caller.process.map_or(0, |process| process.start_ns);
        let boot_ns = caller.machine.realtime_ns().saturating_sub(caller.machine.monotonic_ns());
        let time_ns = boot_ns + start_ns;
        (metadata.access_time_ns, metadata.modify_time_ns, metadata.change_time_ns) =
            (time_ns, time_ns, time_ns);
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        if self.file_type() != FileType::Directory {
            return Err(FsError::NotDirectory);
        }
        if self.kind == Kind::DescriptorDirectory {
            let number: u64 = name.parse().map_err(|_| FsError::NotFound)?;
            if !ProcNode::descriptors(caller).contains(&number) || name != alloc::format!("{number}") {
                return Err(FsError::NotFound);
            }
            return Ok(self.child(Kind::Descriptor(number)));
        }
        let (_, kind) =
            self.fixed_entries().iter().find(|(entry, _)| *entry == name).ok_or(FsError::NotFound)?;
        Ok(self.child(*kind))
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        match self.kind {
            Kind::ProcessDirectory | Kind::NetDirectory => Some(self.child(Kind::Root)),
            Kind::DescriptorDirectory => Some(self.child(Kind::ProcessDirectory)),
            _ => None,
        }
    }

    fn read_directory(&self, caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let entry = |name: String, kind: Kind| DirectoryEntry {
            name,
            inode: inode(kind),
            file_type: self.child(kind).file_type(),
            next_offset: offset + 1,
        };
        match self.kind {
            Kind::DescriptorDirectory => Ok(ProcNode::descriptors(caller)
                .get(offset as usize)
                .map(|number| entry(alloc::format!("{number}"), Kind::Descriptor(*number)))),
            Kind::Root | Kind::ProcessDirectory | Kind::NetDirectory => Ok(self
                .fixed_entries()
                .get(offset as usize)
                .map(|(name, kind)| entry(String::from(*name), *kind))),
            _ => Err(FsError::NotDirectory),
        }
    }

    fn read_link(&self, caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        if self.kind == Kind::SelfLink {
            return Ok(LinkTarget::Path(alloc::format!("{PROCESS_ID}")));
        }
        let process = caller.process.ok_or(FsError::NotFound)?;
        match self.kind {
            Kind::Executable => Ok(LinkTarget::Path(process.executable_path.clone())),
            Kind::WorkingDirectory => {
                let location = process.state.lock().working_directory.clone();
                let text = process.vfs.path_of(caller, &location)?;
                Ok(LinkTarget::Object { location, text })
            }
            Kind::Descriptor(number) => {
                let file = process.state.lock().descriptors.file(number).map_err(|_| FsError::NotFound)?;
                let text = process.vfs.describe(caller, &file);
                Ok(match file.location() {
                    Some(location) => LinkTarget::Object { location: location.clone(), text },
                    None => LinkTarget::Path(text),
                })
            }
            _ => Err(FsError::InvalidArgument),
        }
    }

    fn read_at(&self, _caller: &Caller<'_>, _offset: u64, _buffer: &mut [u8]) -> Result<usize, FsError> {
        // Reads go to the snapshot `open` made.
        Err(if self.file_type() == FileType::Directory {
            FsError::IsDirectory
        } else {
            FsError::InvalidArgument
        })
    }

    fn open(&self, caller: &Caller<'_>) -> Result<Option<Arc<dyn Node>>, FsError> {
        let Kind::File(generated, inode) = self.kind else {
            return Ok(None);
        };
        let text = match generated {
            Generated::Cpuinfo => contents::cpuinfo(caller),
            Generated::Meminfo => contents::meminfo(&self.system),
            Generated::Uptime => contents::uptime(caller),
            Generated::Stat => contents::stat(caller),
            Generated::LoadAverage => contents::load_average(caller),
            Generated::Mounts
            | Generated::Maps
            | Generated::Status
            | Generated::NetDevices
            | Generated::NetRoutes => {
                let process = caller.process.ok_or(FsError::NotFound)?;
                match generated {
                    Generated::Mounts => contents::mounts(caller, process),
                    Generated::Maps => contents::maps(process),
                    Generated::NetDevices => contents::net_devices(&process.network),
                    Generated::NetRoutes => contents::net_routes(&process.network),
                    _ => contents::status(process),
                }
            }
        };
        Ok(Some(Arc::new(Snapshot { inode, bytes: text.into_bytes() })))
    }
}

/// The text of a procfs file as it was when opened.
struct Snapshot {
    inode: u64,
    bytes: Vec<u8>,
}

impl Node for Snapshot {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        // Linux reports procfs files as empty; readers read to the end.
        Ok(Metadata::new(self.inode, FileType::Regular, 0o444))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, _caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        let length = buffer.len().min(self.bytes.len() - start);
        buffer[..length].copy_from_slice(&self.bytes[start..start + length]);
        Ok(length)
    }
}

#[cfg(test)]
mod tests;
