//! `/sys/devices/system/cpu` and `/sys/devices/system/node`: the
//! processors, their topology and caches (`lscpu`, hwloc, OpenMP and .NET
//! runtimes read them), and the one NUMA node.
//!
//! Every processor is a core of its own in one package (the VM's vCPUs
//! carry no thread siblings); caches of levels 1 and 2 are each
//! processor's own, a level 3 cache is shared by all, as CPUID describes
//! them ([`crate::processor`]).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;

use crate::fs::generated::{Entry, Listing, Snapshot};
use crate::processor::{self, Cache};
use crate::vfs::{Caller, DirectoryEntry, FileType, FsError, Metadata, Node};

/// Inode numbers of the processors' directories start here, 256 each.
const CPU_INODES: u64 = 2 << 32;
/// Inode numbers of `cpu`'s own files.
const CPU_FILE_INODES: u64 = CPU_INODES - 16;

/// The files of `cpu` beside the processors' directories.
const CPU_FILES: [&str; 6] = ["isolated", "kernel_max", "offline", "online", "possible", "present"];

/// `/sys/devices/system/cpu`.
pub struct Processors;

pub static PROCESSORS: Processors = Processors;

impl Listing for Processors {
    fn names(&self, caller: &Caller<'_>) -> Vec<String> {
        let mut names: Vec<String> = CPU_FILES.iter().map(|name| String::from(*name)).collect();
        names.extend((0..count(caller)).map(|index| format!("cpu{index}")));
        names
    }

    fn lookup(
        &self,
        caller: &Caller<'_>,
        name: &str,
        parent: Arc<dyn Node>,
    ) -> Result<Arc<dyn Node>, FsError> {
        let count = count(caller);
        if let Some(position) = CPU_FILES.iter().position(|file| *file == name) {
            let text = match name {
                "kernel_max" => String::from("8191\n"),
                "isolated" | "offline" => String::from("\n"),
                _ => format!("{}\n", processor::list(0, count - 1)),
            };
            return Ok(Arc::new(Snapshot {
                inode: CPU_FILE_INODES + position as u64,
                bytes: text.into_bytes(),
            }));
        }
        let index = name
            .strip_prefix("cpu")
            .filter(|digits| {
                !digits.is_empty()
                    && !digits.starts_with('+')
                    && (digits.len() == 1 || !digits.starts_with('0'))
            })
            .and_then(|digits| digits.parse::<usize>().ok())
            .filter(|&index| index < count)
            .ok_or(FsError::NotFound)?;
        Ok(Arc::new(TreeDirectory {
            inode: CPU_INODES + ((index as u64) << 8),
            parent,
            entries: processor_tree(index, count),
        }))
    }
}

/// The machine's processor count (at least one).
fn count(caller: &Caller<'_>) -> usize {
    caller.machine.cpu_count().max(1)
}

/// `cpuN`'s entries.
fn processor_tree(index: usize, count: usize) -> Vec<(String, Tree)> {
    let own_list = processor::list(index, index);
    let own_mask = processor::mask(count, |cpu| cpu == index);
    let all_list = processor::list(0, count - 1);
    let all_mask = processor::mask(count, |_| true);
    let file = |text: &str| Tree::File(format!("{text}\n"));
    let topology = vec![
        (String::from("cluster_cpus"), file(&own_mask)),
        (String::from("cluster_cpus_list"), file(&own_list)),
        (String::from("cluster_id"), file(&format!("{index}"))),
        (String::from("core_cpus"), file(&own_mask)),
        (String::from("core_cpus_list"), file(&own_list)),
        (String::from("core_id"), file(&format!("{index}"))),
        (String::from("core_siblings"), file(&all_mask)),
        (String::from("core_siblings_list"), file(&all_list)),
        (String::from("die_cpus"), file(&all_mask)),
        (String::from("die_cpus_list"), file(&all_list)),
        (String::from("die_id"), file("0")),
        (String::from("package_cpus"), file(&all_mask)),
        (String::from("package_cpus_list"), file(&all_list)),
        (String::from("physical_package_id"), file("0")),
        (String::from("thread_siblings"), file(&own_mask)),
        (String::from("thread_siblings_list"), file(&own_list)),
    ];
    let caches = processor::description()
        .caches
        .iter()
        .enumerate()
        .map(|(number, cache)| (format!("index{number}"), Tree::Directory(cache_files(cache, index, count))))
        .collect();
    let mut entries = vec![(String::from("cache"), Tree::Directory(caches))];
    // Linux gives the boot processor no `online` file: it cannot go
    // offline.
    if index > 0 {
        entries.push((String::from("online"), file("1")));
    }
    entries.push((String::from("topology"), Tree::Directory(topology)));
    entries
}

/// A cache's directory as processor `index` of `count` sees it.
fn cache_files(cache: &Cache, index: usize, count: usize) -> Vec<(String, Tree)> {
    let is_shared = cache.level >= 3 && cache.shared_by > 1;
    let (list, mask, id) = if is_shared {
        (processor::list(0, count - 1), processor::mask(count, |_| true), 0)
    } else {
        (processor::list(index, index), processor::mask(count, |cpu| cpu == index), index)
    };
    let file = |text: String| Tree::File(format!("{text}\n"));
    vec![
        (String::from("coherency_line_size"), file(format!("{}", cache.line_bytes))),
        (String::from("id"), file(format!("{id}"))),
        (String::from("level"), file(format!("{}", cache.level))),
        (String::from("number_of_sets"), file(format!("{}", cache.sets))),
        (String::from("physical_line_partition"), file(format!("{}", cache.partitions))),
        (String::from("shared_cpu_list"), file(list)),
        (String::from("shared_cpu_map"), file(mask)),
        (String::from("size"), file(format!("{}K", cache.size_bytes() / 1024))),
        (String::from("type"), file(String::from(cache.kind.name()))),
        (String::from("ways_of_associativity"), file(format!("{}", cache.ways))),
    ]
}

/// `/sys/devices/system/node`: one node with every processor and all the
/// memory.
pub const NODE: &[(&str, Entry)] = &[
    ("has_cpu", Entry::File(first_node)),
    ("has_memory", Entry::File(first_node)),
    ("has_normal_memory", Entry::File(first_node)),
    ("node0", Entry::Directory(NODE0)),
    ("online", Entry::File(first_node)),
    ("possible", Entry::File(first_node)),
];

const NODE0: &[(&str, Entry)] = &[
    ("cpulist", Entry::File(node_cpu_list)),
    ("cpumap", Entry::File(node_cpu_map)),
    ("distance", Entry::File(|_| String::from("10\n"))),
    ("meminfo", Entry::File(node_memory)),
];

fn first_node(_caller: &Caller<'_>) -> String {
    String::from("0\n")
}

fn node_cpu_list(caller: &Caller<'_>) -> String {
    format!("{}\n", processor::list(0, count(caller) - 1))
}

fn node_cpu_map(caller: &Caller<'_>) -> String {
    format!("{}\n", processor::mask(count(caller), |_| true))
}

/// The node's `meminfo`, in the layout libnuma parses.
fn node_memory(_caller: &Caller<'_>) -> String {
    let figures = crate::pages::figures();
    let total = figures.total_bytes / 1024;
    let free = figures.free_bytes / 1024;
    format!(
        "Node 0 MemTotal:       {total:8} kB\nNode 0 MemFree:        {free:8} kB\nNode 0 MemUsed:        {:8} kB\n",
        total.saturating_sub(free)
    )
}

/// A small tree of texts, made whole when its directory is looked up.
#[derive(Clone)]
enum Tree {
    File(String),
    Directory(Vec<(String, Tree)>),
}

impl Tree {
    /// Nodes in it, itself included: its share of inode numbers.
    fn size(&self) -> u64 {
        match self {
            Tree::File(_) => 1,
            Tree::Directory(entries) => 1 + entries.iter().map(|(_, tree)| tree.size()).sum::<u64>(),
        }
    }
}

/// A directory of a [`Tree`]; its entries take the inode numbers after its
/// own, in order.
struct TreeDirectory {
    inode: u64,
    parent: Arc<dyn Node>,
    entries: Vec<(String, Tree)>,
}

impl core::fmt::Debug for TreeDirectory {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("TreeDirectory").field("inode", &self.inode).finish()
    }
}

impl TreeDirectory {
    /// The inode number of entry `position`.
    fn inode_of(&self, position: usize) -> u64 {
        self.inode + 1 + self.entries[..position].iter().map(|(_, tree)| tree.size()).sum::<u64>()
    }
}

impl Node for TreeDirectory {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        FileType::Directory
    }

    fn metadata(&self, _caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = Metadata::new(self.inode, FileType::Directory, 0o555);
        metadata.link_count =
            2 + self.entries.iter().filter(|(_, tree)| matches!(tree, Tree::Directory(_))).count() as u64;
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn parent(&self) -> Option<Arc<dyn Node>> {
        Some(self.parent.clone())
    }

    fn lookup(&self, _caller: &Caller<'_>, name: &str) -> Result<Arc<dyn Node>, FsError> {
        let position = self.entries.iter().position(|(entry, _)| entry == name).ok_or(FsError::NotFound)?;
        let inode = self.inode_of(position);
        Ok(match &self.entries[position].1 {
            Tree::File(text) => Arc::new(Snapshot { inode, bytes: text.clone().into_bytes() }),
            Tree::Directory(entries) => {
                let this: Arc<dyn Node> = Arc::new(TreeDirectory {
                    inode: self.inode,
                    parent: self.parent.clone(),
                    entries: self.entries.clone(),
                });
                Arc::new(TreeDirectory { inode, parent: this, entries: entries.clone() })
            }
        })
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let position = usize::try_from(offset).unwrap_or(usize::MAX);
        Ok(self.entries.get(position).map(|(name, tree)| DirectoryEntry {
            name: name.clone(),
            inode: self.inode_of(position),
            file_type: match tree {
                Tree::File(_) => FileType::Regular,
                Tree::Directory(_) => FileType::Directory,
            },
            next_offset: offset + 1,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeMachine;
    use crate::fs::testing;

    fn text(caller: &Caller<'_>, node: &Arc<dyn Node>) -> String {
        let mut buffer = [0u8; 256];
        let length = node.read_at(caller, 0, &mut buffer).unwrap();
        String::from_utf8(buffer[..length].to_vec()).unwrap()
    }

    fn entries(caller: &Caller<'_>, node: &Arc<dyn Node>) -> Vec<(String, FileType)> {
        let mut found = Vec::new();
        let mut offset = 0;
        while let Some(entry) = node.read_directory(caller, offset).unwrap() {
            offset = entry.next_offset;
            found.push((entry.name, entry.file_type));
        }
        found
    }

    #[test]
    fn each_processor_has_its_topology() {
        let machine = FakeMachine::new();
        let process = testing::process(&machine);
        let thread = process.new_thread();
        let caller = Caller::thread(&machine, &process, &thread);
        let root = process.vfs().root();
        let cpu = process.vfs().resolve(&caller, &root, "/sys/devices/system/cpu", true).unwrap().node;
        let listed = entries(&caller, &cpu);
        assert!(listed.contains(&(String::from("online"), FileType::Regular)), "{listed:?}");
        assert!(listed.contains(&(String::from("cpu3"), FileType::Directory)), "{listed:?}");
        assert!(!listed.iter().any(|(name, _)| name == "cpu4"), "{listed:?}");
        assert_eq!(text(&caller, &cpu.lookup(&caller, "online").unwrap()), "0-3\n");
        assert!(cpu.lookup(&caller, "cpu4").is_err() && cpu.lookup(&caller, "cpu01").is_err());
        let second = cpu.lookup(&caller, "cpu1").unwrap();
        let topology = second.lookup(&caller, "topology").unwrap();
        assert_eq!(text(&caller, &topology.lookup(&caller, "core_id").unwrap()), "1\n");
        assert_eq!(text(&caller, &topology.lookup(&caller, "thread_siblings").unwrap()), "2\n");
        assert_eq!(text(&caller, &topology.lookup(&caller, "core_siblings_list").unwrap()), "0-3\n");
        assert_eq!(text(&caller, &topology.lookup(&caller, "physical_package_id").unwrap()), "0\n");
        assert_eq!(topology.parent().unwrap().parent().unwrap().inode(), cpu.inode());
        // Inode numbers differ within a processor's tree and between trees.
        let first_topology = cpu.lookup(&caller, "cpu0").unwrap().lookup(&caller, "topology").unwrap();
        assert_ne!(first_topology.inode(), topology.inode());
        assert_ne!(topology.lookup(&caller, "core_id").unwrap().inode(), topology.inode());
        assert!(cpu.lookup(&caller, "cpu0").unwrap().lookup(&caller, "online").is_err());
        let node =
            process.vfs().resolve(&caller, &root, "/sys/devices/system/node/node0/cpulist", true).unwrap();
        assert_eq!(
            String::from_utf8(process.vfs().read_file(&caller, "/sys/devices/system/node/online").unwrap())
                .unwrap(),
            "0\n"
        );
        assert!(node.node.inode() != 0);
    }
}
