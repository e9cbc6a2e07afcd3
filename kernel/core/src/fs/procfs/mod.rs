//! procfs, mounted at `/proc`: the process (`/proc/self` links to
//! `/proc/1`: `exe`, `cwd`, `fd/`, `maps`, `smaps`, `mounts`,
//! `mountinfo`, `status`, `stat`, `limits`, `cmdline`, `environ`, `auxv`,
//! `cgroup`, `oom_score_adj`), the machine (`cpuinfo`, `meminfo`,
//! `mounts`, `uptime`, `version`, `filesystems`, `config.gz`) and the
//! kernel's settings (`sys/`, a generated tree: [`settings`]).
//!
//! Files are generated when opened ([`contents`]) and read from that
//! snapshot, so one `read` loop sees consistent text.

mod contents;
mod process_files;
mod settings;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::generated::{GeneratedNode, Snapshot};
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
    Version,
    Filesystems,
    Configuration,
    Swaps,
    Limits,
    MountInformation,
    SharedMaps,
    CommandLine,
    Environment,
    AuxiliaryVector,
    Cgroup,
    OomScoreAdjustment,
    OomScore,
    Command,
    ProcessStat,
    MemoryStatistics,
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
    RootLink,
    Descriptor(u64),
    File(Generated, u64),
    Settings,
}

const ROOT_ENTRIES: [(&str, Kind); 15] = [
    ("self", Kind::SelfLink),
    ("1", Kind::ProcessDirectory),
    ("cpuinfo", Kind::File(Generated::Cpuinfo, 3)),
    ("meminfo", Kind::File(Generated::Meminfo, 4)),
    ("mounts", Kind::File(Generated::Mounts, 5)),
    ("uptime", Kind::File(Generated::Uptime, 6)),
    ("net", Kind::NetDirectory),
    ("stat", Kind::File(Generated::Stat, 7)),
    ("loadavg", Kind::File(Generated::LoadAverage, 8)),
    ("version", Kind::File(Generated::Version, 9)),
    ("filesystems", Kind::File(Generated::Filesystems, 20)),
    ("config.gz", Kind::File(Generated::Configuration, 21)),
    ("swaps", Kind::File(Generated::Swaps, 22)),
    ("sys", Kind::Settings),
    ("thread-self", Kind::SelfLink),
];

const NET_ENTRIES: [(&str, Kind); 2] =
    [("dev", Kind::File(Generated::NetDevices, 18)), ("route", Kind::File(Generated::NetRoutes, 19))];

const PROCESS_ENTRIES: [(&str, Kind); 19] = [
    ("exe", Kind::Executable),
    ("cwd", Kind::WorkingDirectory),
    ("fd", Kind::DescriptorDirectory),
    ("maps", Kind::File(Generated::Maps, 13)),
    ("mounts", Kind::File(Generated::Mounts, 14)),
    ("status", Kind::File(Generated::Status, 15)),
    ("limits", Kind::File(Generated::Limits, 30)),
    ("mountinfo", Kind::File(Generated::MountInformation, 31)),
    ("smaps", Kind::File(Generated::SharedMaps, 32)),
    ("cmdline", Kind::File(Generated::CommandLine, 33)),
    ("environ", Kind::File(Generated::Environment, 34)),
    ("auxv", Kind::File(Generated::AuxiliaryVector, 35)),
    ("cgroup", Kind::File(Generated::Cgroup, 36)),
    ("oom_score_adj", Kind::File(Generated::OomScoreAdjustment, 37)),
    ("oom_score", Kind::File(Generated::OomScore, 38)),
    ("comm", Kind::File(Generated::Command, 39)),
    ("stat", Kind::File(Generated::ProcessStat, 40)),
    ("statm", Kind::File(Generated::MemoryStatistics, 41)),
    ("root", Kind::RootLink),
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
        let settings = settings::tree();
        let root = Arc::new(ProcNode { kind: Kind::Root, system, settings: settings.clone() });
        let root_node: Arc<dyn Node> = root.clone();
        settings.set_parent(Arc::downgrade(&root_node));
        Arc::new(ProcFs { root })
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
    /// `/proc/sys`.
    settings: Arc<GeneratedNode>,
}

impl ProcNode {
    fn child(&self, kind: Kind) -> Arc<dyn Node> {
        if kind == Kind::Settings {
            return self.settings.clone();
        }
        Arc::new(ProcNode { kind, system: self.system, settings: self.settings.clone() })
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
        Kind::RootLink => 23,
        Kind::Settings => settings::FIRST_INODE,
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
            Kind::SelfLink
            | Kind::Executable
            | Kind::WorkingDirectory
            | Kind::RootLink
            | Kind::Descriptor(_) => FileType::Symlink,
            Kind::File(..) => FileType::Regular,
            Kind::Settings => FileType::Directory,
        }
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let permissions = match self.file_type() {
            FileType::Directory => 0o555,
            FileType::Symlink => 0o777,
            _ if self.kind == Kind::File(Generated::OomScoreAdjustment, 37) => 0o644,
            _ => 0o444,
        };
        let mut metadata = Metadata::new(self.inode(), self.file_type(), permissions);
        // A process's files belong to it (its effective ids).
        let is_process_file =
            matches!(self.kind, Kind::ProcessDirectory | Kind::DescriptorDirectory | Kind::Descriptor(_))
                || PROCESS_ENTRIES.iter().any(|(_, kind)| *kind == self.kind);
        if is_process_file && let Some(process) = caller.process {
            let credentials = &process.state.lock().credentials;
            (metadata.owner_user, metadata.owner_group) =
                (credentials.effective_user, credentials.effective_group);
        }
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
        if self.kind == Kind::Root
            && let Some(process) = caller.process
            && name == alloc::format!("{}", process.pid)
        {
            // The caller's own directory (other processes' are not shown).
            return Ok(self.child(Kind::ProcessDirectory));
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
            let pid = caller.process.map_or(PROCESS_ID, |process| process.pid);
            return Ok(LinkTarget::Path(alloc::format!("{pid}")));
        }
        let process = caller.process.ok_or(FsError::NotFound)?;
        match self.kind {
            Kind::Executable => Ok(LinkTarget::Path(process.executable_path())),
            Kind::RootLink => Ok(LinkTarget::Path(String::from("/"))),
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
        let bytes = match generated {
            Generated::Cpuinfo => contents::cpuinfo(caller).into_bytes(),
            Generated::Meminfo => contents::meminfo(&self.system).into_bytes(),
            Generated::Uptime => contents::uptime(caller).into_bytes(),
            Generated::Stat => contents::stat(caller).into_bytes(),
            Generated::LoadAverage => contents::load_average(caller).into_bytes(),
            Generated::Version => contents::version().into_bytes(),
            Generated::Filesystems => contents::filesystems().into_bytes(),
            Generated::Configuration => contents::configuration_gzip(),
            Generated::Swaps => contents::swaps().into_bytes(),
            _ => {
                let process = caller.process.ok_or(FsError::NotFound)?;
                match generated {
                    Generated::Mounts => contents::mounts(caller, process).into_bytes(),
                    Generated::Maps => contents::maps(process).into_bytes(),
                    Generated::NetDevices => contents::net_devices(&process.network).into_bytes(),
                    Generated::NetRoutes => contents::net_routes(&process.network).into_bytes(),
                    Generated::Limits => process_files::limits(process).into_bytes(),
                    Generated::MountInformation => {
                        process_files::mount_information(caller, process).into_bytes()
                    }
                    Generated::SharedMaps => process_files::shared_maps(process).into_bytes(),
                    Generated::CommandLine => {
                        process_files::stack_range(caller, process, |layout| layout.arguments)
                    }
                    Generated::Environment => {
                        process_files::stack_range(caller, process, |layout| layout.environment)
                    }
                    Generated::AuxiliaryVector => {
                        process_files::stack_range(caller, process, |layout| layout.auxiliary_vector)
                    }
                    Generated::Cgroup => String::from("0::/\n").into_bytes(),
                    Generated::OomScoreAdjustment => {
                        return Ok(Some(Arc::new(process_files::OomScoreAdjustment { inode })));
                    }
                    Generated::OomScore => process_files::oom_score(process).into_bytes(),
                    Generated::Command => process_files::command(caller, process).into_bytes(),
                    Generated::ProcessStat => process_files::stat(caller, process).into_bytes(),
                    Generated::MemoryStatistics => process_files::memory_statistics(process).into_bytes(),
                    _ => contents::status(caller, process).into_bytes(),
                }
            }
        };
        Ok(Some(Arc::new(Snapshot { inode, bytes })))
    }
}

#[cfg(test)]
mod tests;
