//! devfs, mounted at `/dev`: null, zero, full, random, urandom, the console
//! (`console`, `tty`, `ttyS0`), `ptmx`, the directory `pts` devpts is
//! mounted on, the disks the kernel registers (`vda`, ...), the loop
//! devices (`loop-control`, `loop0`, ...) and the `fd`, `stdin`, `stdout`,
//! `stderr` links into `/proc/self/fd`.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::device::loopback::{self, LoopDevice, LoopDevices, LoopError};
use crate::device::{self, BlockDevice, DeviceError, SECTOR_SIZE};
use crate::process::ControllingTerminal;
use crate::terminal::TerminalFile;
use crate::vfs::special::SpecialFile;
use crate::vfs::{
    Caller, DirectoryEntry, FileSystem, FileType, FsError, LinkTarget, Metadata, Node, Statistics,
};

/// `TMPFS_MAGIC`, which Linux's devtmpfs reports.
const MAGIC: u64 = 0x0102_1994;
/// The major number of the first disk (Linux gives virtio disks a dynamic
/// major; 254 is what it usually picks).
const DISK_MAJOR: u64 = 254;
/// The major number of loop devices.
const LOOP_MAJOR: u64 = 7;
/// `/dev/loop-control`'s number: misc device 237.
const LOOP_CONTROL_NUMBER: u64 = device_number(10, 237);

/// A device number as `st_rdev` holds it (Linux's `new_encode_dev`).
const fn device_number(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// What a device node does.
#[derive(Clone)]
enum Device {
    /// Discards writes, reads nothing.
    Null,
    /// Reads zeros.
    Zero,
    /// Reads zeros, refuses writes for lack of room.
    Full,
    /// Reads the process's random numbers; writes add entropy.
    Random,
    /// The serial console, a terminal.
    Console,
    /// `/dev/tty`: the caller's controlling terminal (the console's node
    /// when that is the console).
    ControllingTerminal,
    /// `/dev/ptmx`: each open makes a new pseudo-terminal.
    PseudoTerminalMultiplexer,
    /// A disk.
    Disk(Arc<dyn BlockDevice>),
    /// A loop device: a disk while it is bound to a file.
    Loop(Arc<LoopDevice>),
    /// `/dev/loop-control`, which adds and removes loop devices.
    LoopControl(Arc<LoopControl>),
    /// A symlink.
    Link(&'static str),
    /// An empty directory where a filesystem is mounted (`pts`).
    MountPoint,
}

/// One node of devfs.
struct DeviceNode {
    inode: u64,
    device: Device,
    permissions: u32,
    number: u64,
}

impl DeviceNode {
    /// The disk reads and writes reach: a registered disk, or the file a
    /// loop device is bound to.
    fn disk(&self) -> Option<Arc<dyn BlockDevice>> {
        match &self.device {
            Device::Disk(disk) => Some(disk.clone()),
            Device::Loop(device) => device.backing().map(|backing| backing as Arc<dyn BlockDevice>),
            _ => None,
        }
    }

    /// Whether this node is a disk (bound or not).
    fn is_block_device(&self) -> bool {
        matches!(self.device, Device::Disk(_) | Device::Loop(_))
    }
}

fn device_error(error: DeviceError) -> FsError {
    match error {
        DeviceError::ReadOnly => FsError::ReadOnly,
        DeviceError::OutOfRange => FsError::InvalidArgument,
        DeviceError::Io => FsError::Io,
    }
}

impl Node for DeviceNode {
    fn inode(&self) -> u64 {
        self.inode
    }

    fn file_type(&self) -> FileType {
        match self.device {
            Device::Disk(_) | Device::Loop(_) => FileType::BlockDevice,
            Device::Link(_) => FileType::Symlink,
            Device::MountPoint => FileType::Directory,
            _ => FileType::CharacterDevice,
        }
    }

    fn metadata(&self, caller: &Caller<'_>) -> Result<Metadata, FsError> {
        let mut metadata = Metadata::new(self.inode, self.file_type(), self.permissions);
        metadata.represented_device = self.number;
        let now_ns = caller.now_ns();
        (metadata.access_time_ns, metadata.modify_time_ns, metadata.change_time_ns) =
            (now_ns, now_ns, now_ns);
        match &self.device {
            Device::Disk(_) | Device::Loop(_) => {
                metadata.size_bytes = self.disk().map_or(0, |disk| disk.sector_count() * SECTOR_SIZE as u64);
            }
            Device::Link(target) => metadata.size_bytes = target.len() as u64,
            Device::MountPoint => metadata.link_count = 2,
            Device::Console | Device::ControllingTerminal => metadata.block_size_bytes = 1024,
            _ => {}
        }
        Ok(metadata)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_link(&self, _caller: &Caller<'_>) -> Result<LinkTarget, FsError> {
        match self.device {
            Device::Link(target) => Ok(LinkTarget::Path(String::from(target))),
            _ => Err(FsError::InvalidArgument),
        }
    }

    fn read_at(&self, caller: &Caller<'_>, offset: u64, buffer: &mut [u8]) -> Result<usize, FsError> {
        match &self.device {
            // The console has no input: it reads as the end of the file.
            Device::Null | Device::Console | Device::ControllingTerminal => Ok(0),
            Device::PseudoTerminalMultiplexer => Err(FsError::Io),
            Device::Zero | Device::Full => {
                buffer.fill(0);
                Ok(buffer.len())
            }
            Device::Random => {
                let process = caller.process.ok_or(FsError::Io)?;
                let mut random = process.random.lock();
                random.mix_hardware(caller.machine);
                random.fill(buffer);
                Ok(buffer.len())
            }
            Device::Disk(_) | Device::Loop(_) => {
                // An unbound loop device has no bytes.
                let Some(disk) = self.disk() else {
                    return Ok(0);
                };
                let size = disk.sector_count() * SECTOR_SIZE as u64;
                let length = size.saturating_sub(offset).min(buffer.len() as u64) as usize;
                device::read_bytes(disk.as_ref(), offset, &mut buffer[..length]).map_err(device_error)?;
                Ok(length)
            }
            Device::LoopControl(_) | Device::Link(_) => Err(FsError::InvalidArgument),
            Device::MountPoint => Err(FsError::IsDirectory),
        }
    }

    fn write_at(&self, caller: &Caller<'_>, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        match &self.device {
            Device::Null | Device::Zero => Ok(bytes.len()),
            Device::Full => Err(FsError::NoSpace),
            Device::Random => {
                if let Some(process) = caller.process {
                    process.random.lock().add_entropy(bytes);
                }
                Ok(bytes.len())
            }
            Device::Console | Device::ControllingTerminal => {
                caller.machine.console_write(bytes);
                Ok(bytes.len())
            }
            Device::PseudoTerminalMultiplexer => Err(FsError::Io),
            Device::Disk(_) | Device::Loop(_) => {
                let Some(disk) = self.disk() else {
                    return Err(FsError::NoSpace);
                };
                if disk.is_read_only() {
                    return Err(FsError::ReadOnly);
                }
                let size = disk.sector_count() * SECTOR_SIZE as u64;
                if offset >= size && !bytes.is_empty() {
                    return Err(FsError::NoSpace);
                }
                let length = (size - offset).min(bytes.len() as u64) as usize;
                device::write_bytes(disk.as_ref(), offset, &bytes[..length]).map_err(device_error)?;
                Ok(length)
            }
            Device::LoopControl(_) | Device::Link(_) => Err(FsError::InvalidArgument),
            Device::MountPoint => Err(FsError::IsDirectory),
        }
    }

    fn sync(&self, _caller: &Caller<'_>) -> Result<(), FsError> {
        match self.disk() {
            Some(disk) => disk.flush().map_err(device_error),
            None => Ok(()),
        }
    }

    fn is_seekable(&self) -> bool {
        !matches!(
            self.device,
            Device::Console | Device::ControllingTerminal | Device::PseudoTerminalMultiplexer
        )
    }

    fn is_terminal(&self) -> bool {
        matches!(
            self.device,
            Device::Console | Device::ControllingTerminal | Device::PseudoTerminalMultiplexer
        )
    }

    fn open_device(
        &self,
        caller: &Caller<'_>,
        open_flags: u32,
    ) -> Result<Option<Arc<dyn SpecialFile>>, FsError> {
        let Some(process) = caller.process else {
            return Ok(None);
        };
        match self.device {
            Device::ControllingTerminal => match process.controlling_terminal.lock().clone() {
                None => Err(FsError::NoSuchPosition),
                Some(ControllingTerminal::Console) => Ok(None),
                Some(ControllingTerminal::Terminal(terminal)) => {
                    let output = terminal.output().cloned();
                    Ok(Some(TerminalFile::new(terminal, output) as Arc<dyn SpecialFile>))
                }
            },
            Device::PseudoTerminalMultiplexer => {
                Ok(Some(crate::terminal::pseudo::open_multiplexer(caller)? as Arc<dyn SpecialFile>))
            }
            Device::Console => {
                // A session leader without a controlling terminal acquires
                // the console by opening it (unless O_NOCTTY).
                let is_leader = process.session_id() == process.pid;
                let mut controlling = process.controlling_terminal.lock();
                if open_flags & crate::vfs::file::flags::O_NOCTTY == 0 && is_leader && controlling.is_none() {
                    *controlling = Some(ControllingTerminal::Console);
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}

/// The disk a devfs node stands for, if it is one (for a loop device:
/// the file it is bound to, which stays with a filesystem mounted from it).
pub fn block_device_of(node: &dyn Node) -> Option<Arc<dyn BlockDevice>> {
    node.as_any().downcast_ref::<DeviceNode>().and_then(DeviceNode::disk)
}

/// Whether a devfs node is a disk, bound or not: mounting an unbound loop
/// device finds no filesystem rather than no device.
pub fn is_block_device(node: &dyn Node) -> bool {
    node.as_any().downcast_ref::<DeviceNode>().is_some_and(DeviceNode::is_block_device)
}

/// The loop device a devfs node stands for, if it is one.
pub fn loop_device_of(node: &dyn Node) -> Option<Arc<LoopDevice>> {
    match &node.as_any().downcast_ref::<DeviceNode>()?.device {
        Device::Loop(device) => Some(device.clone()),
        _ => None,
    }
}

/// `/dev/loop-control`'s manager, if the node is that file.
pub fn loop_control_of(node: &dyn Node) -> Option<Arc<LoopControl>> {
    match &node.as_any().downcast_ref::<DeviceNode>()?.device {
        Device::LoopControl(control) => Some(control.clone()),
        _ => None,
    }
}

/// The loop devices and their `/dev/loopN` nodes, kept together: what
/// `/dev/loop-control` adds and removes.
pub struct LoopControl {
    devices: LoopDevices,
    directory: Weak<DeviceDirectory>,
}

impl core::fmt::Debug for LoopControl {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("LoopControl").field("devices", &self.devices).finish()
    }
}

impl LoopControl {
    /// `LOOP_CTL_ADD`: a new `/dev/loop<number>` (the lowest free number
    /// when `None`), whose number it answers.
    pub fn add(&self, number: Option<u32>) -> Result<u32, LoopError> {
        let device = self.devices.add(number)?;
        self.add_node(&device);
        Ok(device.number())
    }

    fn add_node(&self, device: &Arc<LoopDevice>) {
        if let Some(directory) = self.directory.upgrade() {
            let name = alloc::format!("loop{}", device.number());
            let number = device_number(LOOP_MAJOR, u64::from(device.number()));
            directory.add(&name, Device::Loop(device.clone()), 0o660, number);
        }
    }

    /// `LOOP_CTL_REMOVE`: takes out an unbound loop device no one has open.
    pub fn remove(&self, number: u32) -> Result<u32, LoopError> {
        let name = alloc::format!("loop{number}");
        let directory = self.directory.upgrade().ok_or(LoopError::NoDevice)?;
        let is_open = |_: &Arc<LoopDevice>| {
            // The directory holds one reference to the node; an open file
            // or a location being used holds more.
            directory.entry(&name).is_some_and(|node| Arc::strong_count(&node) > 2)
        };
        self.devices.remove(number, is_open)?;
        directory.entries.lock().retain(|(entry, _)| *entry != name);
        Ok(number)
    }

    /// `LOOP_CTL_GET_FREE`: the number of the lowest unbound device,
    /// adding one if all are bound.
    pub fn free(&self) -> Result<u32, LoopError> {
        let before = self.devices.all().len();
        let device = self.devices.free()?;
        if self.devices.all().len() != before {
            self.add_node(&device);
        }
        Ok(device.number())
    }

    /// Every loop device.
    pub fn devices(&self) -> Vec<Arc<LoopDevice>> {
        self.devices.all()
    }
}

/// The `/dev` directory.
struct DeviceDirectory {
    entries: Mutex<Vec<(String, Arc<DeviceNode>)>>,
    next_inode: AtomicU64,
}

impl DeviceDirectory {
    fn add(&self, name: &str, device: Device, permissions: u32, number: u64) {
        let inode = self.next_inode.fetch_add(1, Ordering::Relaxed);
        let node = Arc::new(DeviceNode { inode, device, permissions, number });
        self.entries.lock().push((String::from(name), node));
    }

    fn entry(&self, name: &str) -> Option<Arc<DeviceNode>> {
        let entries = self.entries.lock();
        entries.iter().find(|(entry, _)| entry == name).map(|(_, node)| node.clone())
    }
}

impl Node for DeviceDirectory {
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
        let entries = self.entries.lock();
        let (_, node) = entries.iter().find(|(entry, _)| entry == name).ok_or(FsError::NotFound)?;
        Ok(node.clone())
    }

    fn read_directory(&self, _caller: &Caller<'_>, offset: u64) -> Result<Option<DirectoryEntry>, FsError> {
        let entries = self.entries.lock();
        Ok(entries.get(offset as usize).map(|(name, node)| DirectoryEntry {
            name: name.clone(),
            inode: node.inode,
            file_type: node.file_type(),
            next_offset: offset + 1,
        }))
    }
}

/// A devfs instance.
pub struct DevFs {
    root: Arc<DeviceDirectory>,
    disk_count: AtomicU64,
    loops: Arc<LoopControl>,
}

impl core::fmt::Debug for DevFs {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("DevFs")
    }
}

impl DevFs {
    /// A `/dev` with the standard devices and no disks.
    pub fn new() -> Arc<DevFs> {
        let root =
            Arc::new(DeviceDirectory { entries: Mutex::new(Vec::new()), next_inode: AtomicU64::new(2) });
        let loops = Arc::new(LoopControl { devices: LoopDevices::new(), directory: Arc::downgrade(&root) });
        let devfs = Arc::new(DevFs { root, disk_count: AtomicU64::new(0), loops });
        let standard: [(&str, Device, u32, u64); 14] = [
            ("null", Device::Null, 0o666, device_number(1, 3)),
            ("zero", Device::Zero, 0o666, device_number(1, 5)),
            ("full", Device::Full, 0o666, device_number(1, 7)),
            ("random", Device::Random, 0o666, device_number(1, 8)),
            ("urandom", Device::Random, 0o666, device_number(1, 9)),
            ("tty", Device::ControllingTerminal, 0o666, device_number(5, 0)),
            ("console", Device::Console, 0o600, device_number(5, 1)),
            ("ttyS0", Device::Console, 0o660, device_number(4, 64)),
            ("ptmx", Device::PseudoTerminalMultiplexer, 0o666, device_number(5, 2)),
            ("pts", Device::MountPoint, 0o755, 0),
            ("fd", Device::Link("/proc/self/fd"), 0o777, 0),
            ("stdin", Device::Link("/proc/self/fd/0"), 0o777, 0),
            ("stdout", Device::Link("/proc/self/fd/1"), 0o777, 0),
            ("stderr", Device::Link("/proc/self/fd/2"), 0o777, 0),
        ];
        for (name, device, permissions, number) in standard {
            devfs.root.add(name, device, permissions, number);
        }
        devfs.root.add("loop-control", Device::LoopControl(devfs.loops.clone()), 0o660, LOOP_CONTROL_NUMBER);
        for number in 0..loopback::INITIAL_COUNT {
            // Numbers below the initial count are free in a new set.
            let _ = devfs.loops.add(Some(number));
        }
        devfs
    }

    /// The loop devices and `/dev/loop-control`'s manager.
    pub fn loop_control(&self) -> &Arc<LoopControl> {
        &self.loops
    }

    /// Adds a disk as `/dev/<name>` (`vda`, `vdb`, ...).
    pub fn register_block_device(&self, name: &str, disk: Arc<dyn BlockDevice>) {
        let index = self.disk_count.fetch_add(1, Ordering::Relaxed);
        let permissions = if disk.is_read_only() { 0o440 } else { 0o660 };
        self.root.add(name, Device::Disk(disk), permissions, device_number(DISK_MAJOR, index * 16));
    }

    /// The disk registered as `name`.
    pub fn block_device(&self, name: &str) -> Option<Arc<dyn BlockDevice>> {
        self.root.entry(name).and_then(|node| node.disk())
    }
}

impl FileSystem for DevFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn type_name(&self) -> &'static str {
        "devtmpfs"
    }

    fn statistics(&self) -> Statistics {
        Statistics { magic: MAGIC, block_size_bytes: 4096, ..Statistics::default() }
    }
}
