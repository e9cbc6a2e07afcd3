//! procfs, mounted at `/proc`: a directory per process (`/proc/PID`, and
//! `/proc/self` linking to the caller's: `exe`, `cwd`, `fd/`, `task/`,
//! `maps`, `smaps`, `mounts`, `mountinfo`, `status`, `stat`, `limits`,
//! `cmdline`, `environ`, `auxv`, `cgroup`, `oom_score_adj`, `fdinfo/`,
//! `smaps_rollup`, `loginuid`, `sessionid`, `io`, `mem`), the machine (`cpuinfo`, `meminfo`,
//! `mounts`, `uptime`, `version`, `filesystems`, `config.gz`), the System V
//! IPC objects (`sysvipc/msg`, `sem`, `shm`) and the
//! kernel's settings (`sys/`, a generated tree: [`settings`]).
//!
//! Files are generated when opened ([`contents`]) and read from that
//! snapshot, so one `read` loop sees consistent text. Another process's
//! links, descriptors, environment and memory map are shown only to a
//! caller with its user id or root, as Linux's ptrace read check does for
//! one user.

mod contents;
mod descriptor_info;
mod memory_file;
mod namespaces;
mod process_files;
mod reopened;
mod settings;

pub(crate) use settings::MAX_MAP_COUNT;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::generated::{GeneratedNode, Snapshot};
use crate::process::{PROCESS_ID, Process};
use crate::vfs::{
    Caller, DirectoryEntry, FileSystem, FileType, FsError, LinkTarget, Metadata, Node, Statistics,
};

/// `PROC_SUPER_MAGIC`.
const MAGIC: u64 = 0x9fa0;
/// Inode numbers of `/proc/self/fd/N` start here.
const DESCRIPTOR_INODES: u64 = 1000;
/// Inode numbers of `/proc/self/fdinfo/N` start here.
const DESCRIPTOR_INFO_INODES: u64 = 1 << 31;

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
    VirtualMemoryStatistics,
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
    SysvMessages,
    SysvSemaphores,
    SysvSharedMemory,
    SharedMapsRollup,
    LoginUser,
    Session,
    InputOutput,
    Memory,
    UserMap,
    GroupMap,
    SetGroups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    SelfLink,
    ProcessDirectory,
    DescriptorDirectory,
    NetDirectory,
    SysvIpcDirectory,
    Executable,
    WorkingDirectory,
    RootLink,
    Descriptor(u64),
    DescriptorInfoDirectory,
    DescriptorInfo(u64),
    File(Generated, u64),
    Settings,
    TaskDirectory,
    NamespaceDirectory,
    /// An entry of [`namespaces::LINKS`].
    NamespaceLink(usize),
}

const ROOT_ENTRIES: [(&str, Kind); 16] = [
    ("self", Kind::SelfLink),
    ("cpuinfo", Kind::File(Generated::Cpuinfo, 3)),
    ("meminfo", Kind::File(Generated::Meminfo, 4)),
    ("vmstat", Kind::File(Generated::VirtualMemoryStatistics, 42)),
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
    ("sysvipc", Kind::SysvIpcDirectory),
    ("thread-self", Kind::SelfLink),
];

const NET_ENTRIES: [(&str, Kind); 2] =
    [("dev", Kind::File(Generated::NetDevices, 18)), ("route", Kind::File(Generated::NetRoutes, 19))];

const SYSVIPC_ENTRIES: [(&str, Kind); 3] = [
    ("msg", Kind::File(Generated::SysvMessages, 26)),
    ("sem", Kind::File(Generated::SysvSemaphores, 27)),
    ("shm", Kind::File(Generated::SysvSharedMemory, 28)),
];

const PROCESS_ENTRIES: [(&str, Kind); 30] = [
    ("exe", Kind::Executable),
    ("task", Kind::TaskDirectory),
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
    ("fdinfo", Kind::DescriptorInfoDirectory),
    ("smaps_rollup", Kind::File(Generated::SharedMapsRollup, 44)),
    ("loginuid", Kind::File(Generated::LoginUser, 45)),
    ("sessionid", Kind::File(Generated::Session, 46)),
    ("io", Kind::File(Generated::InputOutput, 47)),
    ("mem", Kind::File(Generated::Memory, 48)),
    ("ns", Kind::NamespaceDirectory),
    ("uid_map", Kind::File(Generated::UserMap, 61)),
    ("gid_map", Kind::File(Generated::GroupMap, 62)),
    ("setgroups", Kind::File(Generated::SetGroups, 63)),
];

/// The entries of `/proc/PID/ns`.
const NAMESPACE_ENTRIES: [(&str, Kind); 10] = {
    let mut entries = [("", Kind::NamespaceLink(0)); 10];
    let mut index = 0;
    while index < entries.len() {
        entries[index] = (namespaces::LINKS[index].0, Kind::NamespaceLink(index));
        index += 1;
    }
    entries
};

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
        let root =
            Arc::new(ProcNode { kind: Kind::Root, pid: 0, tid: 0, system, settings: settings.clone() });
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

/// The process whose directory (`/proc/PID`) `node` is, if it is one.
///
/// Linux lets a descriptor open on such a directory stand for a pidfd in
/// `pidfd_send_signal`, the interface's way of signalling a process
/// without racing a reused pid.
pub fn process_directory_pid(node: &dyn Node) -> Option<u64> {
    let node = node.as_any().downcast_ref::<ProcNode>()?;
    (node.kind == Kind::ProcessDirectory).then_some(node.pid)
}

/// A directory, link or file of procfs.
struct ProcNode {
    kind: Kind,
    /// The process a process directory or file is about (0 for the
    /// machine's files).
    pid: u64,
    /// The thread a `task/TID` directory or file is about (0 for the
    /// process's own).
    tid: u64,
    system: SystemInformation,
    /// `/proc/sys`.
    settings: Arc<GeneratedNode>,
}

/// Whether `kind` shows what only [`crate::process::may_inspect`] callers may see.
fn is_private(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Executable
            | Kind::WorkingDirectory
            | Kind::RootLink
            | Kind::DescriptorDirectory
            | Kind::Descriptor(_)
            | Kind::DescriptorInfoDirectory
            | Kind::DescriptorInfo(_)
            | Kind::NamespaceLink(_)
            | Kind::File(
                Generated::Environment
                    | Generated::AuxiliaryVector
                    | Generated::Maps
                    | Generated::SharedMaps
                    | Generated::SharedMapsRollup
                    | Generated::InputOutput
                    | Generated::Memory,
                _
            )
    )
}

/// Whether `kind` belongs to a process directory.
fn is_process_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::ProcessDirectory
            | Kind::DescriptorDirectory
            | Kind::Descriptor(_)
            | Kind::DescriptorInfoDirectory
            | Kind::DescriptorInfo(_)
            | Kind::TaskDirectory
            | Kind::NamespaceLink(_)
    ) || PROCESS_ENTRIES.iter().any(|(_, entry)| *entry == kind)
}

impl ProcNode {
    fn child(&self, kind: Kind) -> Arc<dyn Node> {
        self.child_of(kind, self.pid)
    }

    fn child_of(&self, kind: Kind, pid: u64) -> Arc<dyn Node> {
        if kind == Kind::Settings {
            return self.settings.clone();
        }
        Arc::new(ProcNode { kind, pid, tid: self.tid, system: self.system, settings: self.settings.clone() })
    }

    /// The directory of thread `tid` of the process, `task/TID`.
    fn thread_directory(&self, tid: u64) -> Arc<dyn Node> {
        Arc::new(ProcNode {
            kind: Kind::ProcessDirectory,
            pid: self.pid,
            tid,
            system: self.system,
            settings: self.settings.clone(),
        })
    }

    /// The thread a `task/TID` node is about, if it still runs.
    fn thread(&self, process: &Process) -> Result<Option<Arc<crate::process::Thread>>, FsError> {
        match self.tid {
            0 => Ok(None),
            tid => process.thread(tid).map(Some).ok_or(FsError::NotFound),
        }
    }

    /// The entries of a directory with fixed contents.
    fn fixed_entries(&self) -> &'static [(&'static str, Kind)] {
        match self.kind {
            Kind::Root => &ROOT_ENTRIES,
            Kind::ProcessDirectory => &PROCESS_ENTRIES,
            Kind::NetDirectory => &NET_ENTRIES,
            Kind::SysvIpcDirectory => &SYSVIPC_ENTRIES,
            Kind::NamespaceDirectory => &NAMESPACE_ENTRIES,
            _ => &[],
        }
    }

    /// The process this node is about, if the caller may see this node of
    /// it.
    fn process(&self, caller: &Caller<'_>) -> Result<Arc<Process>, FsError> {
        if self.pid == 0 {
            // The machine's files that show the caller's view (`mounts`,
            // `net/`).
            return caller.process.and_then(Process::shared).ok_or(FsError::NotFound);
        }
        let process = crate::process::find(self.pid).ok_or(FsError::NotFound)?;
        if is_private(self.kind) && !crate::process::may_inspect(caller, &process) {
            return Err(FsError::AccessDenied);
        }
        Ok(process)
    }

    /// The open descriptors of the process.
    fn descriptors(&self, caller: &Caller<'_>) -> Result<Vec<u64>, FsError> {
        let process = self.process(caller)?;
        let numbers =
            process.descriptors.with(|table| table.iter().map(|(number, _)| number as u64).collect());
        Ok(numbers)
    }
}

/// The IPC namespace whose objects `caller` sees (the kernel: the initial
/// one).
fn ipc_of(caller: &Caller<'_>) -> Arc<crate::namespace::Namespace> {
    caller.process.map_or_else(crate::namespace::initial_ipc, |process| process.namespaces().ipc)
}

/// The process ids `/proc` lists, in order.
fn process_ids() -> Vec<u64> {
    crate::process::all().iter().map(|process| process.pid).collect()
}

fn inode(kind: Kind, pid: u64) -> u64 {
    let base = match kind {
        Kind::Root => 1,
        Kind::SelfLink => 2,
        Kind::ProcessDirectory => 10,
        Kind::Executable => 11,
        Kind::WorkingDirectory => 12,
        Kind::DescriptorDirectory => 16,
        Kind::NetDirectory => 17,
        Kind::SysvIpcDirectory => 25,
        Kind::File(_, inode) => inode,
        Kind::Descriptor(number) => DESCRIPTOR_INODES + number,
        Kind::DescriptorInfoDirectory => 43,
        Kind::DescriptorInfo(number) => DESCRIPTOR_INFO_INODES + (number & (DESCRIPTOR_INFO_INODES - 1)),
        Kind::RootLink => 23,
        Kind::TaskDirectory => 24,
        Kind::NamespaceDirectory => 50,
        Kind::NamespaceLink(index) => 51 + index as u64,
        Kind::Settings => settings::FIRST_INODE,
    };
    // Each process's files have numbers of their own.
    if is_process_kind(kind) { base | pid << 32 } else { base }
}

impl Node for ProcNode {
    fn inode(&self) -> u64 {
        inode(self.kind, self.pid)
    }

    fn file_type(&self) -> FileType {
        match self.kind {
            Kind::Root
            | Kind::ProcessDirectory
            | Kind::DescriptorDirectory
            | Kind::NetDirectory
            | Kind::SysvIpcDirectory
            | Kind::DescriptorInfoDirectory
            | Kind::TaskDirectory
            | Kind::NamespaceDirectory => FileType::Directory,
            Kind::NamespaceLink(_)
            | Kind::SelfLink
            | Kind::Executable
            | Kind::WorkingDirectory
            | Kind::RootLink
            | Kind::Descriptor(_) => FileType::Symlink,
            Kind::File(..) | Kind::DescriptorInfo(_) => FileType::Regular,
            Kind::Settings => FileType::Directory,
        }
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let permissions = match self.file_type() {
            FileType::Directory => 0o555,
            FileType::Symlink => 0o777,
            _ if self.kind == Kind::File(Generated::Memory, 48) => 0o600,
            _ if matches!(
                self.kind,
                Kind::File(
                    Generated::OomScoreAdjustment
                        | Generated::UserMap
                        | Generated::GroupMap
                        | Generated::SetGroups,
                    _
                )
            ) =>
            {
                0o644
            }
            _ => 0o444,
        };
        let mut metadata = Metadata::new(self.inode(), self.file_type(), permissions);
        // A process's files belong to it (its effective ids).
        let process = if is_process_kind(self.kind) {
            Some(crate::process::find(self.pid).ok_or(FsError::NotFound)?)
        } else {
            None
        };
        if let Some(process) = &process {
            let credentials = &process.state.lock().credentials;
            (metadata.owner_user, metadata.owner_group) =
                (credentials.effective_user, credentials.effective_group);
        }
        if self.file_type() == FileType::Directory {
            metadata.link_count = 2;
        }
        let start_ns = process.as_deref().or(caller.process).map_or(0, |process| process.start_ns);
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
        let number = name.parse::<u64>().ok().filter(|number| name == alloc::format!("{number}"));
        match self.kind {
            Kind::DescriptorDirectory | Kind::DescriptorInfoDirectory => {
                let number = number.ok_or(FsError::NotFound)?;
                if !self.descriptors(caller)?.contains(&number) {
                    return Err(FsError::NotFound);
                }
                return Ok(self.child(if self.kind == Kind::DescriptorDirectory {
                    Kind::Descriptor(number)
                } else {
                    Kind::DescriptorInfo(number)
                }));
            }
            Kind::TaskDirectory => {
                // A thread's directory shows its process.
                let tid = number.ok_or(FsError::NotFound)?;
                self.process(caller)?.thread(tid).ok_or(FsError::NotFound)?;
                return Ok(self.thread_directory(tid));
            }
            Kind::Root => {
                if let Some(pid) = number {
                    // The first process's directory is there for the
                    // kernel's `/proc/self` even before it starts.
                    if pid != PROCESS_ID || caller.process.is_some() {
                        crate::process::find(pid).ok_or(FsError::NotFound)?;
                    }
                    return Ok(self.child_of(Kind::ProcessDirectory, pid));
                }
            }
            _ => {}
        }
        let (_, kind) =
            self.fixed_entries().iter().find(|(entry, _)| *entry == name).ok_or(FsError::NotFound)?;
        Ok(self.child(*kind))
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        match self.kind {
            Kind::ProcessDirectory | Kind::NetDirectory | Kind::SysvIpcDirectory => {
                Some(self.child(Kind::Root))
            }
            Kind::DescriptorDirectory
            | Kind::DescriptorInfoDirectory
            | Kind::TaskDirectory
            | Kind::NamespaceDirectory => Some(self.child(Kind::ProcessDirectory)),
            _ => None,
        }
    }

    fn read_directory(&self, caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        // Fixed entries are indexed; numbered ones (descriptors, threads,
        // processes) use their number as the offset, as Linux's do, so
        // that closing descriptors or ending processes while a reader is
        // part-way through skips none of the others: a child closing
        // every descriptor it finds in `/proc/self/fd` relies on it.
        let entry = |name: String, kind: Kind, pid: u64, next_offset: u64| DirectoryEntry {
            name,
            inode: inode(kind, pid),
            file_type: self.child_of(kind, pid).file_type(),
            next_offset,
        };
        let numbered =
            |numbers: Vec<u64>, from: u64| numbers.into_iter().filter(|&number| number >= from).min();
        match self.kind {
            Kind::DescriptorDirectory => Ok(numbered(self.descriptors(caller)?, offset).map(|number| {
                entry(alloc::format!("{number}"), Kind::Descriptor(number), self.pid, number + 1)
            })),
            Kind::DescriptorInfoDirectory => Ok(numbered(self.descriptors(caller)?, offset).map(|number| {
                entry(alloc::format!("{number}"), Kind::DescriptorInfo(number), self.pid, number + 1)
            })),
            Kind::TaskDirectory => {
                let threads = self.process(caller)?.threads().iter().map(|thread| thread.tid).collect();
                Ok(numbered(threads, offset)
                    .map(|tid| entry(alloc::format!("{tid}"), Kind::ProcessDirectory, self.pid, tid + 1)))
            }
            Kind::Root => {
                // The fixed entries, then one directory per process.
                let fixed = self.fixed_entries();
                let index = usize::try_from(offset).unwrap_or(usize::MAX);
                if let Some((name, kind)) = fixed.get(index) {
                    return Ok(Some(entry(String::from(*name), *kind, 0, offset + 1)));
                }
                let first = fixed.len() as u64;
                Ok(numbered(process_ids(), offset - first)
                    .map(|pid| entry(alloc::format!("{pid}"), Kind::ProcessDirectory, pid, first + pid + 1)))
            }
            Kind::ProcessDirectory
            | Kind::NetDirectory
            | Kind::SysvIpcDirectory
            | Kind::NamespaceDirectory => {
                let index = usize::try_from(offset).unwrap_or(usize::MAX);
                Ok(self
                    .fixed_entries()
                    .get(index)
                    .map(|(name, kind)| entry(String::from(*name), *kind, self.pid, offset + 1)))
            }
            _ => Err(FsError::NotDirectory),
        }
    }

    fn read_link(&self, caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        if self.kind == Kind::SelfLink {
            let pid = caller.process.map_or(PROCESS_ID, |process| process.pid);
            return Ok(LinkTarget::Path(alloc::format!("{pid}")));
        }
        let process = self.process(caller)?;
        if process.has_ended() {
            // A zombie has no files any more.
            return Err(FsError::NotFound);
        }
        match self.kind {
            Kind::NamespaceLink(index) => {
                let handle = namespaces::handle(&process, index).ok_or(FsError::NotFound)?;
                let text = handle.link_text();
                let node = Arc::new(crate::namespace::file::NamespaceFile::new(handle));
                let mount = caller.process.map_or_else(|| process.vfs(), |caller| caller.vfs()).root().mount;
                Ok(LinkTarget::Object { location: crate::vfs::Location { mount, node }, text })
            }
            Kind::Executable => Ok(LinkTarget::Path(process.executable_path())),
            Kind::RootLink => Ok(LinkTarget::Path(String::from("/"))),
            Kind::WorkingDirectory => {
                let location = process.working_directory();
                let text = process.vfs().path_of(caller, &location)?;
                Ok(LinkTarget::Object { location, text })
            }
            Kind::Descriptor(number) => {
                let file =
                    process.descriptors.with(|table| table.file(number)).map_err(|_| FsError::NotFound)?;
                let text = process.vfs().describe(caller, &file);
                if let Some(location) = file.location() {
                    return Ok(LinkTarget::Object { location: location.clone(), text });
                }
                let owner = {
                    let credentials = &process.state.lock().credentials;
                    (credentials.effective_user, credentials.effective_group)
                };
                Ok(match reopened::ReopenedNode::of(&file, owner) {
                    // A pipe is on no mounted filesystem (Linux's pipefs is
                    // internal); the root's mount stands in.
                    Some(node) => LinkTarget::Object {
                        location: crate::vfs::Location {
                            mount: process.vfs().root().mount,
                            node: Arc::new(node),
                        },
                        text,
                    },
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
        if let Kind::DescriptorInfo(number) = self.kind {
            let process = self.process(caller)?;
            let text = descriptor_info::descriptor_info(caller, &process, number).ok_or(FsError::NotFound)?;
            return Ok(Some(Arc::new(Snapshot { inode: self.inode(), bytes: text.into_bytes() })));
        }
        let Kind::File(generated, inode) = self.kind else {
            return Ok(None);
        };
        let bytes = match generated {
            Generated::Cpuinfo => contents::cpuinfo(caller).into_bytes(),
            Generated::Meminfo => contents::meminfo(&self.system).into_bytes(),
            Generated::VirtualMemoryStatistics => contents::vmstat().into_bytes(),
            Generated::Uptime => contents::uptime(caller).into_bytes(),
            Generated::Stat => contents::stat(caller).into_bytes(),
            Generated::LoadAverage => contents::load_average(caller).into_bytes(),
            Generated::Version => contents::version().into_bytes(),
            Generated::Filesystems => contents::filesystems().into_bytes(),
            Generated::Configuration => contents::configuration_gzip(),
            Generated::Swaps => contents::swaps().into_bytes(),
            Generated::SysvMessages => crate::syscall::ipc_listing::messages(&ipc_of(caller)).into_bytes(),
            Generated::SysvSemaphores => {
                crate::syscall::ipc_listing::semaphores(&ipc_of(caller)).into_bytes()
            }
            Generated::SysvSharedMemory => {
                crate::syscall::ipc_listing::shared_memory(&ipc_of(caller)).into_bytes()
            }
            _ => {
                let process = self.process(caller)?;
                let process = process.as_ref();
                match generated {
                    Generated::Mounts => contents::mounts(caller, process).into_bytes(),
                    Generated::Maps => contents::maps(process).into_bytes(),
                    Generated::NetDevices => contents::net_devices(&process.network()).into_bytes(),
                    Generated::NetRoutes => contents::net_routes(&process.network()).into_bytes(),
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
                    Generated::UserMap | Generated::GroupMap | Generated::SetGroups => {
                        let kind = match generated {
                            Generated::UserMap => namespaces::MapKind::Users,
                            Generated::GroupMap => namespaces::MapKind::Groups,
                            _ => namespaces::MapKind::SetGroups,
                        };
                        let file = namespaces::UserNamespaceFile { inode, pid: process.pid, kind };
                        return Ok(Some(Arc::new(file)));
                    }
                    Generated::OomScoreAdjustment => {
                        let pid = process.pid;
                        return Ok(Some(Arc::new(process_files::OomScoreAdjustment { inode, pid })));
                    }
                    Generated::Memory => {
                        let pid = process.pid;
                        return Ok(Some(Arc::new(memory_file::MemoryFile { inode, pid })));
                    }
                    Generated::OomScore => process_files::oom_score(process).into_bytes(),
                    Generated::Command => process_files::command(caller, process).into_bytes(),
                    Generated::ProcessStat => {
                        let thread = self.thread(process)?;
                        process_files::stat(caller, process, thread.as_deref()).into_bytes()
                    }
                    Generated::InputOutput => match self.thread(process)? {
                        Some(thread) => thread.io.snapshot().render().into_bytes(),
                        None => process.io_counters().render().into_bytes(),
                    },
                    Generated::MemoryStatistics => process_files::memory_statistics(process).into_bytes(),
                    Generated::SharedMapsRollup => descriptor_info::shared_maps_rollup(process).into_bytes(),
                    Generated::LoginUser | Generated::Session => {
                        descriptor_info::unset_audit_id().into_bytes()
                    }
                    _ => contents::status(caller, process).into_bytes(),
                }
            }
        };
        Ok(Some(Arc::new(Snapshot { inode, bytes })))
    }
}

#[cfg(test)]
mod tests;
