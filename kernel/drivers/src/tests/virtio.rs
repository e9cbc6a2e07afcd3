//! Block and entropy drivers over each transport.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;

use rosv_virtio::spec::DeviceType;
use spin::Mutex;

use super::fake::{Disk, FakeHardware, ModelWindow, disk};
use super::model::{Backend, Device, MmioModel, read_only};
use crate::virtio::block::VirtioBlock;
use crate::virtio::entropy::VirtioEntropy;
use crate::virtio::mmio::{MmioTransport, ProbeError};
use crate::virtio::p9::Virtio9p;
use crate::virtio::{DeviceError, Transport};

const MMIO_BASE: u64 = 0xfeb0_0000;

fn mmio_block(version: u32, disk: Disk, features: u64) -> (&'static FakeHardware, Arc<dyn Transport>) {
    let hardware = FakeHardware::new();
    let device = Device::block(hardware.memory.clone(), disk, features);
    let model = Arc::new(Mutex::new(MmioModel { device, version, magic: 0x7472_6976 }));
    hardware.add_mmio(MMIO_BASE, 0x200, model);
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(transport.device_type(), DeviceType::Block);
    (hardware, Arc::new(transport))
}

pub fn exercise_block(block: &VirtioBlock, disk: &Disk) {
    let mut buffer = vec![0u8; 3 * 512];
    block.read_sectors(5, &mut buffer).expect("read");
    assert_eq!(&buffer[..], &disk.lock()[5 * 512..8 * 512]);
    let pattern: alloc::vec::Vec<u8> = (0..1024).map(|index| (index % 251) as u8).collect();
    block.write_sectors(100, &pattern).expect("write");
    assert_eq!(&disk.lock()[100 * 512..102 * 512], &pattern[..]);
    block.flush().expect("flush");
    let mut back = vec![0u8; 1024];
    block.read_sectors(100, &mut back).expect("read back");
    assert_eq!(back, pattern);
    let last = block.sector_count() - 1;
    assert_eq!(block.read_sectors(last, &mut buffer[..1024]), Err(DeviceError::OutOfRange));
    assert_eq!(block.read_sectors(0, &mut buffer[..100]), Err(DeviceError::Unaligned));
    assert_eq!(block.read_sectors(u64::MAX, &mut buffer[..512]), Err(DeviceError::OutOfRange));
}

#[test]
fn block_device_over_mmio_version_2() {
    let disk = disk(256);
    let (hardware, transport) = mmio_block(2, disk.clone(), 0);
    let block = VirtioBlock::new(transport, hardware).expect("starts");
    assert_eq!(block.sector_count(), 256);
    assert!(!block.is_read_only());
    exercise_block(&block, &disk);
}

#[test]
fn block_device_over_legacy_mmio() {
    let disk = disk(256);
    let (hardware, transport) = mmio_block(1, disk.clone(), 0);
    assert!(transport.is_legacy());
    let block = VirtioBlock::new(transport, hardware).expect("starts");
    exercise_block(&block, &disk);
}

#[test]
fn reads_larger_than_one_request_are_split() {
    let disk = disk(2048);
    let (hardware, transport) = mmio_block(2, disk.clone(), 0);
    let block = VirtioBlock::new(transport, hardware).expect("starts");
    let mut buffer = vec![0u8; 600 * 1024];
    block.read_sectors(3, &mut buffer).expect("read");
    assert_eq!(&buffer[..], &disk.lock()[3 * 512..3 * 512 + 600 * 1024]);
}

#[test]
fn read_only_devices_refuse_writes() {
    let disk = disk(16);
    let (hardware, transport) = mmio_block(2, disk.clone(), read_only());
    let block = VirtioBlock::new(transport, hardware).expect("starts");
    assert!(block.is_read_only());
    assert_eq!(block.write_sectors(0, &[1; 512]), Err(DeviceError::ReadOnly));
    assert!(disk.lock()[..512].iter().any(|&byte| byte != 1));
}

#[test]
fn a_device_that_breaks_the_protocol_is_abandoned() {
    let hardware = FakeHardware::new();
    let mut config = vec![0u8; 64];
    config[0] = 16;
    let device = Device::new(hardware.memory.clone(), 2, 0, config, Backend::Faulty);
    hardware.add_mmio(
        MMIO_BASE,
        0x200,
        Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 })),
    );
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    let block = VirtioBlock::new(Arc::new(transport), hardware).expect("starts");
    let mut buffer = vec![0u8; 512];
    assert_eq!(block.read_sectors(0, &mut buffer), Err(DeviceError::Broken));
    assert_eq!(block.read_sectors(0, &mut buffer), Err(DeviceError::Broken));
}

#[test]
fn entropy_device_fills_buffers() {
    let hardware = FakeHardware::new();
    let device = Device::new(hardware.memory.clone(), 4, 0, vec![], Backend::Entropy);
    hardware.add_mmio(
        MMIO_BASE,
        0x200,
        Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 })),
    );
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(transport.device_type(), DeviceType::Entropy);
    let entropy = VirtioEntropy::new(Arc::new(transport), hardware).expect("starts");
    let mut buffer = vec![0u8; 700];
    entropy.fill(&mut buffer).expect("filled");
    assert_eq!(buffer[0], 0x5a);
    assert_eq!(buffer[300], (44u8) ^ 0x5a, "the second request starts over at 0");
}

#[test]
fn nine_p_transport_reads_its_tag_and_exchanges_scattered_messages() {
    let hardware = FakeHardware::new();
    // tag_len 5, then the tag.
    let config = [&[5u8, 0][..], b"share"].concat();
    let device = Device::new(hardware.memory.clone(), 9, 1, config, Backend::Reverse);
    hardware.add_mmio(
        MMIO_BASE,
        0x200,
        Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 })),
    );
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(transport.device_type(), DeviceType::NinePTransport);
    let share = Virtio9p::new(Arc::new(transport), hardware).expect("starts");
    assert_eq!(share.tag(), "share");
    let (mut head, mut tail) = ([0u8; 3], [0u8; 8]);
    let written = share.exchange(&[b"abc", b"defgh"], &mut [&mut head, &mut tail]).expect("answered");
    assert_eq!(written, 8);
    assert_eq!(&head, b"hgf");
    assert_eq!(&tail[..5], b"edcba");
    // A reply with nowhere to go is refused before anything is sent.
    assert_eq!(share.exchange(&[b"abc"], &mut []), Err(DeviceError::Unsupported));
}

#[test]
fn probing_tells_empty_slots_from_other_devices() {
    let hardware = FakeHardware::new();
    let probe = |version: u32, magic: u32, device_id: u32| {
        let device = Device::new(hardware.memory.clone(), device_id, 0, vec![], Backend::Entropy);
        let model = Arc::new(Mutex::new(MmioModel { device, version, magic }));
        MmioTransport::probe(Box::new(ModelWindow { model, base: 0 })).map(|found| found.is_some())
    };
    assert_eq!(probe(2, 0x7472_6976, 2), Ok(true));
    assert_eq!(probe(2, 0x7472_6976, 0), Ok(false));
    assert_eq!(probe(2, 0x1234_5678, 2), Err(ProbeError::NotVirtio(0x1234_5678)));
    assert_eq!(probe(3, 0x7472_6976, 2), Err(ProbeError::UnsupportedVersion(3)));
}
