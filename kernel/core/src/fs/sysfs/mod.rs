//! sysfs at `/sys` and the cgroup (version 2) filesystem at
//! `/sys/fs/cgroup`: what runtimes read to size their thread pools and
//! heaps.
//!
//! `/sys/block` has a directory per block device of `/dev` (disks and
//! loop devices: `dev`, `size`, `ro`, `stat`, `uevent`, and for a bound
//! loop device `loop/` with its backing file, offset, size limit and
//! flags); `/sys/dev/block/MAJOR:MINOR` shows the same directories by
//! number (Linux makes those symlinks into `/sys/devices`).
//!
//! `/sys/devices/system/cpu` and `node` describe the processors
//! (`cpu.rs`).
//!
//! The machine is one cgroup: `cpu.max` allows as many processors' worth of
//! time as the VM has, `memory.max` is the RAM the frame allocator holds,
//! and the process is its only member (`/proc/self/cgroup` says `0::/`).

mod cpu;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::devfs;
use super::generated::{Entry, GeneratedFs, Listing, Snapshot};
use crate::device::loopback::flag as loop_flag;
use crate::vfs::{Caller, DirectoryEntry, FileType, FsError, Location, Metadata, Node};

/// `SYSFS_MAGIC`.
const SYSFS_MAGIC: u64 = 0x6265_6572;
/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_MAGIC: u64 = 0x6367_7270;
/// The period `cpu.max` states its quota in, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// The processors, as Linux lists CPU sets (`0-1`).
fn processor_list(caller: &Caller<'_>) -> String {
    match caller.machine.cpu_count() {
        0 | 1 => String::from("0\n"),
        count => format!("0-{}\n", count - 1),
    }
}

const SYSTEM: &[(&str, Entry)] =
    &[("cpu", Entry::Listing(&cpu::PROCESSORS)), ("node", Entry::Directory(cpu::NODE))];
const DEVICES: &[(&str, Entry)] = &[("system", Entry::Directory(SYSTEM))];
/// `/sys/fs`: `cgroup` is a mount point over it.
const FILESYSTEMS: &[(&str, Entry)] = &[];
const DEV: &[(&str, Entry)] = &[("block", Entry::Listing(&BlockListing { by_number: true }))];
const ROOT: &[(&str, Entry)] = &[
    ("block", Entry::Listing(&BlockListing { by_number: false })),
    ("bus", Entry::Directory(&[])),
    ("class", Entry::Directory(&[])),
    ("dev", Entry::Directory(DEV)),
    ("devices", Entry::Directory(DEVICES)),
    ("firmware", Entry::Directory(&[])),
    ("fs", Entry::Directory(FILESYSTEMS)),
    ("kernel", Entry::Directory(&[])),
    ("module", Entry::Directory(&[])),
];

/// Inode numbers of the block devices' directories and files start here.
const BLOCK_INODES: u64 = 1 << 32;

/// The block devices of `/dev`: their names and nodes.
fn block_devices(caller: &Caller<'_>) -> Vec<(String, Arc<dyn Node>)> {
    let mut devices = Vec::new();
    let Some(process) = caller.process else {
        return devices;
    };
    let Some(mount) =
        process.vfs().mounts().into_iter().find(|mount| mount.filesystem().type_name() == "devtmpfs")
    else {
        return devices;
    };
    let root = Location::root_of(&mount);
    let mut offset = 0;
    while let Ok(Some(entry)) = root.node.read_directory(caller, offset) {
        offset = entry.next_offset;
        if entry.file_type == FileType::BlockDevice
            && let Ok(node) = root.node.lookup(caller, &entry.name)
        {
            devices.push((entry.name, node));
        }
    }
    devices
}

/// A device number's major and minor numbers (Linux's `new_decode_dev`).
fn split_number(number: u64) -> (u64, u64) {
    ((number >> 8) & 0xfff, (number & 0xff) | ((number >> 12) & !0xff))
}

fn represented(caller: &Caller<'_>, node: &Arc<dyn Node>) -> u64 {
    node.metadata(caller).map_or(0, |metadata| metadata.represented_device)
}

/// `/sys/block` (by name) or `/sys/dev/block` (by `MAJOR:MINOR`).
struct BlockListing {
    by_number: bool,
}

impl BlockListing {
    fn name_of(&self, caller: &Caller<'_>, name: &str, node: &Arc<dyn Node>) -> String {
        if self.by_number {
            let (major, minor) = split_number(represented(caller, node));
            format!("{major}:{minor}")
        } else {
            String::from(name)
        }
    }
}

impl Listing for BlockListing {
    fn names(&self, caller: &Caller<'_>) -> Vec<String> {
        block_devices(caller).iter().map(|(name, node)| self.name_of(caller, name, node)).collect()
    }

    fn lookup(
        &self,
        caller: &Caller<'_>,
        name: &str,
        parent: Arc<dyn Node>,
    ) -> Result<Arc<dyn Node>, FsError> {
        let (device_name, node) = block_devices(caller)
            .into_iter()
            .find(|(device_name, node)| self.name_of(caller, device_name, node) == name)
            .ok_or(FsError::NotFound)?;
        let inode = BLOCK_INODES + (represented(caller, &node) << 5) + u64::from(self.by_number);
        Ok(Arc::new(BlockDirectory { inode, name: device_name, device: node, parent, is_loop_part: false }))
    }
}

/// A block device's directory, or its `loop/` part.
struct BlockDirectory {
    inode: u64,
    name: String,
    device: Arc<dyn Node>,
    parent: Arc<dyn Node>,
    is_loop_part: bool,
}

impl core::fmt::Debug for BlockDirectory {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("BlockDirectory").field("name", &self.name).finish()
    }
}

const DEVICE_FILES: [&str; 7] = ["dev", "removable", "ro", "size", "stat", "uevent", "loop"];
const LOOP_FILES: [&str; 6] = ["autoclear", "backing_file", "dio", "offset", "partscan", "sizelimit"];

impl BlockDirectory {
    /// The entries, in order: `loop/` only while a loop device is bound.
    fn names(&self) -> Vec<&'static str> {
        if self.is_loop_part {
            return LOOP_FILES.to_vec();
        }
        let is_bound = devfs::loop_device_of(&*self.device).is_some_and(|device| device.is_bound());
        DEVICE_FILES.iter().copied().filter(|name| *name != "loop" || is_bound).collect()
    }

    fn text(&self, caller: &Caller<'_>, name: &str) -> Option<String> {
        let disk = devfs::block_device_of(&*self.device);
        let number = represented(caller, &self.device);
        let (major, minor) = split_number(number);
        if self.is_loop_part {
            let backing = devfs::loop_device_of(&*self.device)?.backing()?;
            let settings = backing.settings();
            let flag = |bit: u32| if settings.flags & bit != 0 { "1\n" } else { "0\n" };
            return Some(match name {
                "autoclear" => String::from(flag(loop_flag::AUTOCLEAR)),
                "partscan" => String::from(flag(loop_flag::PARTSCAN)),
                "dio" => String::from(flag(loop_flag::DIRECT_IO)),
                "offset" => format!("{}\n", settings.offset_bytes),
                "sizelimit" => format!("{}\n", settings.size_limit_bytes),
                "backing_file" => {
                    let process = caller.process?;
                    format!("{}\n", process.vfs().describe(caller, backing.file()))
                }
                _ => return None,
            });
        }
        Some(match name {
            "dev" => format!("{major}:{minor}\n"),
            "removable" => String::from("0\n"),
            "ro" => format!("{}\n", u8::from(disk.as_ref().is_some_and(|disk| disk.is_read_only()))),
            "size" => format!("{}\n", disk.as_ref().map_or(0, |disk| disk.sector_count())),
            "stat" => {
                let counts = disk.as_ref().map(|disk| disk.statistics()).unwrap_or_default();
                let busy_ms = counts.read_ms + counts.write_ms;
                format!(
                    "{:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8} {:8}\n",
                    counts.reads,
                    0,
                    counts.sectors_read,
                    counts.read_ms,
                    counts.writes,
                    0,
                    counts.sectors_written,
                    counts.write_ms,
                    0,
                    busy_ms,
                    busy_ms,
                    0,
                    0,
                    0,
                    0,
                    counts.flushes,
                    0
                )
            }
            "uevent" => format!("MAJOR={major}\nMINOR={minor}\nDEVNAME={}\nDEVTYPE=disk\n", self.name),
            _ => return None,
        })
    }
}

impl Node for BlockDirectory {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Directory
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = Metadata::new(self.inode, FileType::Directory, 0o555);
        metadata.link_count =
            if self.is_loop_part { 2 } else { 2 + u64::from(self.names().contains(&"loop")) };
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        Some(self.parent.clone())
    }

    fn lookup(&self, caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        let index = self.names().iter().position(|entry| *entry == name).ok_or(FsError::NotFound)?;
        let inode = self.inode + 2 + index as u64 + if self.is_loop_part { 8 } else { 0 };
        if name == "loop" {
            let parent: Arc<dyn Node> = Arc::new(BlockDirectory {
                inode: self.inode,
                name: self.name.clone(),
                device: self.device.clone(),
                parent: self.parent.clone(),
                is_loop_part: false,
            });
            return Ok(Arc::new(BlockDirectory {
                inode,
                name: self.name.clone(),
                device: self.device.clone(),
                parent,
                is_loop_part: true,
            }));
        }
        let text = self.text(caller, name).ok_or(FsError::NotFound)?;
        Ok(Arc::new(Snapshot { inode, bytes: text.into_bytes() }))
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let names = self.names();
        Ok(names.get(offset as usize).map(|name| DirectoryEntry {
            name: String::from(*name),
            inode: self.inode + 2 + offset + if self.is_loop_part { 8 } else { 0 },
            file_type: if *name == "loop" { FileType::Directory } else { FileType::Regular },
            next_offset: offset + 1,
        }))
    }
}

/// A sysfs instance.
pub fn sysfs() -> Arc<GeneratedFs> {
    GeneratedFs::new(Entry::Directory(ROOT), "sysfs", SYSFS_MAGIC)
}

fn cpu_max(caller: &Caller<'_>) -> String {
    let count = caller.machine.cpu_count().max(1) as u64;
    format!("{} {CPU_PERIOD_US}\n", count * CPU_PERIOD_US)
}

fn memory_max(_caller: &Caller<'_>) -> String {
    format!("{}\n", crate::pages::figures().total_bytes)
}

fn memory_current(_caller: &Caller<'_>) -> String {
    let figures = crate::pages::figures();
    format!("{}\n", figures.total_bytes.saturating_sub(figures.free_bytes))
}

fn members(caller: &Caller<'_>) -> String {
    match caller.process {
        Some(_) => format!("{}\n", crate::process::PROCESS_ID),
        None => String::new(),
    }
}

fn threads(caller: &Caller<'_>) -> String {
    let mut text = String::new();
    if let Some(process) = caller.process {
        for thread in process.threads() {
            text.push_str(&format!("{}\n", thread.tid));
        }
    }
    text
}

fn pids_current(caller: &Caller<'_>) -> String {
    format!("{}\n", caller.process.map_or(0, |process| process.thread_count()))
}

const CGROUP: &[(&str, Entry)] = &[
    ("cgroup.controllers", Entry::File(|_| String::from("cpuset cpu memory pids\n"))),
    ("cgroup.max.depth", Entry::File(|_| String::from("max\n"))),
    ("cgroup.max.descendants", Entry::File(|_| String::from("max\n"))),
    ("cgroup.procs", Entry::File(members)),
    ("cgroup.subtree_control", Entry::File(|_| String::from("\n"))),
    ("cgroup.threads", Entry::File(threads)),
    ("cgroup.type", Entry::File(|_| String::from("domain\n"))),
    ("cpu.max", Entry::File(cpu_max)),
    ("cpu.weight", Entry::File(|_| String::from("100\n"))),
    ("cpuset.cpus.effective", Entry::File(processor_list)),
    ("cpuset.mems.effective", Entry::File(|_| String::from("0\n"))),
    ("memory.current", Entry::File(memory_current)),
    ("memory.high", Entry::File(|_| String::from("max\n"))),
    ("memory.low", Entry::File(|_| String::from("0\n"))),
    ("memory.max", Entry::File(memory_max)),
    ("memory.min", Entry::File(|_| String::from("0\n"))),
    ("memory.swap.current", Entry::File(|_| String::from("0\n"))),
    ("memory.swap.max", Entry::File(|_| String::from("0\n"))),
    ("pids.current", Entry::File(pids_current)),
    ("pids.max", Entry::File(|_| String::from("max\n"))),
];

/// The cgroup filesystem: one group, the machine.
pub fn cgroupfs() -> Arc<GeneratedFs> {
    GeneratedFs::new(Entry::Directory(CGROUP), "cgroup2", CGROUP2_MAGIC)
}
