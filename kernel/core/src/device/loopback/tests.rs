//! Loop devices over ramfs files: sizes, windows, transfers, the set.

use alloc::boxed::Box;
use alloc::sync::Arc;

use super::*;
use crate::fake::FakeMachine;
use crate::fs::ramfs::RamFs;
use crate::vfs::file::flags;
use crate::vfs::{FileSystem, Vfs};

fn machine() -> &'static FakeMachine {
    let machine: &'static FakeMachine = Box::leak(Box::new(FakeMachine::new()));
    crate::machine::install(machine);
    machine
}

/// A file of `size` bytes, each its offset modulo 251, open with `open_flags`.
fn file(machine: &'static FakeMachine, size: usize, open_flags: u32) -> Arc<OpenFile> {
    let vfs = Vfs::new(RamFs::new(0o755), "rootfs");
    let caller = Caller::kernel(machine);
    let writer = vfs.open(&caller, &vfs.root(), "/disk", flags::O_RDWR | flags::O_CREAT, 0o600).unwrap();
    let bytes: alloc::vec::Vec<u8> = (0..size).map(|index| (index % 251) as u8).collect();
    writer.write(&caller, &bytes).unwrap();
    vfs.open(&caller, &vfs.root(), "/disk", open_flags, 0).unwrap()
}

#[test]
fn a_bound_device_reads_and_writes_its_file_in_whole_sectors() {
    let machine = machine();
    let device = LoopDevice::new(0);
    let file = file(machine, 4096 + 100, flags::O_RDWR);
    let backing = device.bind(file.clone(), true, Settings::default()).unwrap();
    assert_eq!(backing.sector_count(), 8, "the partial last sector is left out");
    let mut sector = [0u8; SECTOR_SIZE];
    backing.read_sectors(1, &mut sector).unwrap();
    assert_eq!(sector[0], (512 % 251) as u8);
    backing.write_sectors(2, &[9u8; SECTOR_SIZE]).unwrap();
    let mut read_back = [0u8; 4];
    file.read_at(&Caller::kernel(machine), 1024, &mut read_back).unwrap();
    assert_eq!(read_back, [9; 4]);
    assert_eq!(backing.read_sectors(8, &mut sector), Err(DeviceError::OutOfRange));
    assert_eq!(device.bind(file, true, Settings::default()).err(), Some(LoopError::Busy));
    device.unbind().unwrap();
    assert_eq!(device.unbind(), Err(LoopError::NotBound));
    assert!(!device.is_bound());
}

#[test]
fn offsets_and_size_limits_make_a_window_of_the_file() {
    let machine = machine();
    let device = LoopDevice::new(1);
    let backing = device.bind(file(machine, 8192, flags::O_RDWR), true, Settings::default()).unwrap();
    let window = Settings {
        offset_bytes: 1024,
        size_limit_bytes: 2048,
        flags: flag::READ_ONLY,
        ..Settings::default()
    };
    backing.set_status(window).unwrap();
    assert_eq!(backing.size_bytes(), 2048);
    assert!(!backing.is_read_only(), "LOOP_SET_STATUS cannot make a device read-only");
    let mut sector = [0u8; SECTOR_SIZE];
    backing.read_sectors(0, &mut sector).unwrap();
    assert_eq!(sector[0], (1024 % 251) as u8);
    backing.set_status(Settings { offset_bytes: 8000, ..Settings::default() }).unwrap();
    assert_eq!(backing.size_bytes(), 0, "less than a sector past the offset");
    assert_eq!(backing.set_block_size(1000), Err(LoopError::Invalid));
    backing.set_block_size(4096).unwrap();
    assert_eq!(backing.settings().block_size_bytes, 4096);
}

#[test]
fn a_read_only_file_or_descriptor_makes_a_read_only_device() {
    let machine = machine();
    let device = LoopDevice::new(2);
    let backing = device.bind(file(machine, 4096, flags::O_RDONLY), true, Settings::default()).unwrap();
    assert!(backing.is_read_only());
    assert_eq!(backing.write_sectors(0, &[0u8; SECTOR_SIZE]), Err(DeviceError::ReadOnly));
    device.unbind().unwrap();
    let backing = device.bind(file(machine, 4096, flags::O_RDWR), false, Settings::default()).unwrap();
    assert_eq!(backing.settings().flags & flag::READ_ONLY, flag::READ_ONLY);
}

#[test]
fn the_set_adds_removes_and_finds_free_devices() {
    let machine = machine();
    let devices = LoopDevices::new();
    assert_eq!(devices.free().unwrap().number(), 0, "an empty set makes loop0");
    assert_eq!(devices.add(Some(0)).err(), Some(LoopError::Exists));
    assert_eq!(devices.add(Some(5)).unwrap().number(), 5);
    assert_eq!(devices.add(None).unwrap().number(), 1);
    devices.get(0).unwrap().bind(file(machine, 4096, flags::O_RDWR), true, Settings::default()).unwrap();
    assert_eq!(devices.free().unwrap().number(), 1);
    assert_eq!(devices.remove(0, |_| false).err(), Some(LoopError::Busy));
    assert_eq!(devices.remove(1, |_| true).err(), Some(LoopError::Busy));
    assert_eq!(devices.remove(7, |_| false).err(), Some(LoopError::NoDevice));
    assert_eq!(devices.remove(5, |_| false).unwrap().number(), 5);
    assert_eq!(devices.add(Some(MAXIMUM_NUMBER)).err(), Some(LoopError::Invalid));
}

#[test]
fn loop_control_keeps_dev_in_step_with_the_devices() {
    use crate::fs::devfs::{self, DevFs};
    let machine = machine();
    let caller = Caller::kernel(machine);
    let devfs = DevFs::new();
    let root = devfs.root();
    let control = devfs::loop_control_of(&*root.lookup(&caller, "loop-control").unwrap()).unwrap();
    assert_eq!(control.devices().len(), INITIAL_COUNT as usize);
    assert_eq!(control.add(Some(12)), Ok(12));
    let node = root.lookup(&caller, "loop12").unwrap();
    assert_eq!(node.metadata(&caller).unwrap().represented_device, (7 << 8) | 12);
    assert!(devfs::is_block_device(&*node));
    assert!(devfs::block_device_of(&*node).is_none(), "unbound: no disk yet");
    assert_eq!(control.remove(12), Err(LoopError::Busy), "the node is held");
    drop(node);
    assert_eq!(control.remove(12), Ok(12));
    assert!(root.lookup(&caller, "loop12").is_err());
    let device = devfs::loop_device_of(&*root.lookup(&caller, "loop0").unwrap()).unwrap();
    device.bind(file(machine, 4096, flags::O_RDWR), true, Settings::default()).unwrap();
    assert_eq!(control.free(), Ok(1));
    let bound = root.lookup(&caller, "loop0").unwrap();
    assert_eq!(devfs::block_device_of(&*bound).map(|disk| disk.sector_count()), Some(8));
}
