//! A read-only virtio block device on the virtio-mmio transport (version 2).
//!
//! The registers are `virtio_mmio::Transport`'s, the requests follow
//! virtio 1.2 §5.2.6. The queue is walked with
//! `rosv_virtio::device::DeviceQueue`, the device side of the split
//! virtqueue the kernel's drivers are tested against, which treats
//! everything the driver wrote as untrusted. Requests are carried
//! out on the vCPU thread that notifies the queue, synchronously: reads
//! from the image file, `GET_ID`; writes fail (the device is read-only)
//! and other requests are unsupported.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rosv_virtio::block::{HEADER_SIZE, SECTOR_SIZE};
use rosv_virtio::device::{Chain, GuestMemory};
use rosv_virtio::spec::feature;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::virtio_mmio::{Ram, Transport};

pub use crate::virtio_mmio::WINDOW_SIZE;

/// Device type 2: block (virtio 1.2 §5).
const DEVICE_ID_BLOCK: u32 = 2;
/// The largest queue the device takes.
const QUEUE_SIZE_MAX: u16 = 256;
/// The largest transfer one request may ask for.
const REQUEST_BYTES_MAX: u64 = 16 << 20;
/// `VIRTIO_BLK_T_*` (§5.2.6).
const REQUEST_IN: u32 = 0;
const REQUEST_OUT: u32 = 1;
const REQUEST_GET_ID: u32 = 8;
/// `VIRTIO_BLK_S_*`.
const STATUS_OK: u8 = 0;
const STATUS_IO_ERROR: u8 = 1;
const STATUS_UNSUPPORTED: u8 = 2;
/// Bytes of the identification string `GET_ID` returns.
const ID_BYTES: usize = 20;
/// `VIRTIO_BLK_F_RO`.
const FEATURE_READ_ONLY: u64 = rosv_virtio::block::feature::RO;
/// What the device offers.
const DEVICE_FEATURES: u64 =
    feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX | FEATURE_READ_ONLY;

/// One read-only virtio block device.
#[derive(Debug)]
pub struct VirtioBlock {
    image: File,
    capacity_sectors: u64,
    id: [u8; ID_BYTES],
    memory: Arc<GuestMemoryMmap>,
    transport: Transport,
}

impl VirtioBlock {
    /// A device serving `image` (its size rounded down to whole sectors),
    /// named `id` for `GET_ID`, over `memory`, raising `interrupt`.
    pub fn new(
        image: File,
        id: &str,
        memory: Arc<GuestMemoryMmap>,
        interrupt: EventFd,
    ) -> std::io::Result<Self> {
        let capacity_sectors = image.metadata()?.len() / SECTOR_SIZE as u64;
        let mut id_bytes = [0u8; ID_BYTES];
        let length = id.len().min(ID_BYTES);
        id_bytes[..length].copy_from_slice(&id.as_bytes()[..length]);
        Ok(VirtioBlock {
            image,
            capacity_sectors,
            id: id_bytes,
            memory,
            transport: Transport::new(DEVICE_ID_BLOCK, DEVICE_FEATURES, 1, QUEUE_SIZE_MAX, interrupt),
        })
    }

    /// A read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        // The configuration space starts with the capacity (§5.2.4).
        self.transport.read(offset, data, &self.capacity_sectors.to_le_bytes());
    }

    /// A write of `data` at `offset` in the window.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if self.transport.write(offset, data) == Some(0) {
            self.process_queue();
        }
    }

    /// Serves every request the driver made available, then interrupts it
    /// if it asked to be.
    fn process_queue(&mut self) {
        let Some(mut queue) = self.transport.take_queue(0) else {
            return;
        };
        let memory = self.memory.clone();
        let ram = Ram(&memory);
        let mut is_broken = false;
        loop {
            match queue.pop_available(&ram) {
                Ok(Some(chain)) => {
                    let written = self.serve(&ram, &chain);
                    if queue.push_used(&ram, chain.head, written).is_err() {
                        is_broken = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    is_broken = true;
                    break;
                }
            }
        }
        self.transport.signal_used(&mut queue, &ram);
        // A driver that broke the queue protocol loses the queue (it can
        // reset the device to start again).
        if !is_broken {
            self.transport.return_queue(0, queue);
        }
    }

    /// Carries out one request; returns the bytes written into the chain.
    fn serve(&self, ram: &Ram<'_>, chain: &Chain) -> u32 {
        let writable = chain.writable_bytes();
        if writable == 0 {
            return 0;
        }
        let data_bytes = writable - 1;
        let (status, data) = match read_header(ram, chain) {
            Some((REQUEST_IN, sector)) => self.read_sectors(sector, data_bytes),
            Some((REQUEST_GET_ID, _)) => (STATUS_OK, self.id.to_vec()),
            // A read-only device fails writes with an I/O error (§5.2.6.2).
            Some((REQUEST_OUT, _)) => (STATUS_IO_ERROR, Vec::new()),
            Some(_) => (STATUS_UNSUPPORTED, Vec::new()),
            None => (STATUS_IO_ERROR, Vec::new()),
        };
        // The status byte is the last writable byte, after the data.
        let mut reply = data;
        reply.resize(data_bytes as usize, 0);
        reply.push(status);
        chain.write_all(ram, &reply).unwrap_or(0)
    }

    /// Reads `length` bytes from `sector` on; an I/O error past the end
    /// or for a length that is not whole sectors.
    fn read_sectors(&self, sector: u64, length: u64) -> (u8, Vec<u8>) {
        let sectors = length / SECTOR_SIZE as u64;
        let is_in_range = sector.checked_add(sectors).is_some_and(|end| end <= self.capacity_sectors);
        if !length.is_multiple_of(SECTOR_SIZE as u64) || length > REQUEST_BYTES_MAX || !is_in_range {
            return (STATUS_IO_ERROR, Vec::new());
        }
        let mut data = vec![0u8; length as usize];
        match self.image.read_exact_at(&mut data, sector * SECTOR_SIZE as u64) {
            Ok(()) => (STATUS_OK, data),
            Err(_) => (STATUS_IO_ERROR, Vec::new()),
        }
    }
}

/// The request type and sector from the chain's first readable bytes.
fn read_header(ram: &Ram<'_>, chain: &Chain) -> Option<(u32, u64)> {
    let mut header = [0u8; HEADER_SIZE];
    let mut filled = 0;
    for segment in chain.segments.iter().filter(|segment| !segment.is_writable) {
        let count = (segment.length as usize).min(HEADER_SIZE - filled);
        ram.read(segment.address, &mut header[filled..filled + count]).ok()?;
        filled += count;
        if filled == HEADER_SIZE {
            let request = u32::from_le_bytes(header[0..4].try_into().ok()?);
            let sector = u64::from_le_bytes(header[8..16].try_into().ok()?);
            return Some((request, sector));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio_mmio::register;
    use std::io::Write;
    use vm_memory::{Bytes, GuestAddress};
    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    const STATUS_FEATURES_OK: u32 = 8;
    const DESCRIPTORS: u64 = 0x1000;
    const DRIVER_AREA: u64 = 0x2000;
    const DEVICE_AREA: u64 = 0x3000;
    const HEADER: u64 = 0x4000;
    const DATA: u64 = 0x5000;
    const STATUS: u64 = 0x6000;

    struct Fixture {
        device: VirtioBlock,
        memory: Arc<GuestMemoryMmap>,
        interrupt: EventFd,
        _image: tempfile::NamedTempFile,
    }

    /// A device over an image of four sectors filled with 0, 1, 2, 3.
    fn fixture() -> Fixture {
        let mut image = tempfile::NamedTempFile::new().unwrap();
        for sector in 0..4u8 {
            image.write_all(&[sector; SECTOR_SIZE]).unwrap();
        }
        let memory = Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap());
        let interrupt = EventFd::new(EFD_NONBLOCK).unwrap();
        let device =
            VirtioBlock::new(image.reopen().unwrap(), "root", memory.clone(), interrupt.try_clone().unwrap())
                .unwrap();
        Fixture { device, memory, interrupt, _image: image }
    }

    fn read32(device: &mut VirtioBlock, offset: u64) -> u32 {
        let mut bytes = [0u8; 4];
        device.read(offset, &mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn write32(device: &mut VirtioBlock, offset: u64, value: u32) {
        device.write(offset, &value.to_le_bytes());
    }

    /// Negotiates and sets up queue 0 as the kernel's driver does.
    fn set_up(device: &mut VirtioBlock) {
        write32(device, register::STATUS, 0);
        write32(device, register::STATUS, 3);
        write32(device, register::DEVICE_FEATURES_SELECT, 1);
        assert_eq!(read32(device, register::DEVICE_FEATURES), 1, "VERSION_1");
        write32(device, register::DRIVER_FEATURES_SELECT, 1);
        write32(device, register::DRIVER_FEATURES, 1);
        write32(device, register::DRIVER_FEATURES_SELECT, 0);
        write32(device, register::DRIVER_FEATURES, FEATURE_READ_ONLY as u32);
        write32(device, register::STATUS, 3 | STATUS_FEATURES_OK);
        assert_eq!(read32(device, register::STATUS) & STATUS_FEATURES_OK, STATUS_FEATURES_OK);
        write32(device, register::QUEUE_SELECT, 0);
        assert_eq!(read32(device, register::QUEUE_SIZE_MAX), 256);
        write32(device, register::QUEUE_SIZE, 8);
        write32(device, register::QUEUE_DESCRIPTOR_LOW, DESCRIPTORS as u32);
        write32(device, register::QUEUE_DRIVER_LOW, DRIVER_AREA as u32);
        write32(device, register::QUEUE_DEVICE_LOW, DEVICE_AREA as u32);
        write32(device, register::QUEUE_READY, 1);
        write32(device, register::STATUS, 3 | STATUS_FEATURES_OK | 4);
    }

    fn descriptor(memory: &GuestMemoryMmap, index: u64, address: u64, length: u32, flags: u16, next: u16) {
        let mut bytes = [0u8; 16];
        bytes[0..8].copy_from_slice(&address.to_le_bytes());
        bytes[8..12].copy_from_slice(&length.to_le_bytes());
        bytes[12..14].copy_from_slice(&flags.to_le_bytes());
        bytes[14..16].copy_from_slice(&next.to_le_bytes());
        memory.write_slice(&bytes, GuestAddress(DESCRIPTORS + 16 * index)).unwrap();
    }

    /// Makes one header/data/status request available and notifies.
    fn request(fixture: &mut Fixture, request: u32, sector: u64, data_bytes: u32) -> u8 {
        let memory = &fixture.memory;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&request.to_le_bytes());
        header[8..16].copy_from_slice(&sector.to_le_bytes());
        memory.write_slice(&header, GuestAddress(HEADER)).unwrap();
        descriptor(memory, 0, HEADER, 16, 1, 1);
        descriptor(memory, 1, DATA, data_bytes, 1 | 2, 2);
        descriptor(memory, 2, STATUS, 1, 2, 0);
        let available: u16 = memory.read_obj(GuestAddress(DRIVER_AREA + 2)).unwrap();
        memory.write_obj(0u16, GuestAddress(DRIVER_AREA + 4 + 2 * u64::from(available % 8))).unwrap();
        memory.write_obj(available + 1, GuestAddress(DRIVER_AREA + 2)).unwrap();
        write32(&mut fixture.device, register::QUEUE_NOTIFY, 0);
        memory.read_obj(GuestAddress(STATUS)).unwrap()
    }

    #[test]
    fn identifies_as_a_modern_read_only_block_device() {
        let mut fixture = fixture();
        let device = &mut fixture.device;
        assert_eq!(read32(device, register::MAGIC), 0x7472_6976);
        assert_eq!(read32(device, register::VERSION), 2);
        assert_eq!(read32(device, register::DEVICE_ID), 2);
        assert_ne!(read32(device, register::DEVICE_FEATURES) & (1 << 5), 0, "VIRTIO_BLK_F_RO");
        let mut capacity = [0u8; 8];
        device.read(register::CONFIG, &mut capacity);
        assert_eq!(u64::from_le_bytes(capacity), 4);
        let mut high = [0u8; 4];
        device.read(register::CONFIG + 4, &mut high);
        assert_eq!(high, [0; 4]);
    }

    #[test]
    fn reads_sectors_into_the_drivers_buffers() {
        let mut fixture = fixture();
        set_up(&mut fixture.device);
        assert_eq!(request(&mut fixture, REQUEST_IN, 2, 1024), STATUS_OK);
        let mut data = [0u8; 1024];
        fixture.memory.read_slice(&mut data, GuestAddress(DATA)).unwrap();
        assert!(data[..512].iter().all(|&byte| byte == 2) && data[512..].iter().all(|&byte| byte == 3));
        let used_index: u16 = fixture.memory.read_obj(GuestAddress(DEVICE_AREA + 2)).unwrap();
        let used_length: u32 = fixture.memory.read_obj(GuestAddress(DEVICE_AREA + 8)).unwrap();
        assert_eq!((used_index, used_length), (1, 1025));
        assert_eq!(read32(&mut fixture.device, register::INTERRUPT_STATUS), 1);
        assert_eq!(fixture.interrupt.read().unwrap(), 1);
        write32(&mut fixture.device, register::INTERRUPT_ACK, 1);
        assert_eq!(read32(&mut fixture.device, register::INTERRUPT_STATUS), 0);
    }

    #[test]
    fn refuses_writes_reads_past_the_end_and_unknown_requests() {
        let mut fixture = fixture();
        set_up(&mut fixture.device);
        assert_eq!(request(&mut fixture, REQUEST_OUT, 0, 512), STATUS_IO_ERROR, "write");
        assert_eq!(request(&mut fixture, 4, 0, 0), STATUS_UNSUPPORTED, "flush");
        assert_eq!(request(&mut fixture, REQUEST_IN, 3, 1024), STATUS_IO_ERROR, "past the end");
        assert_eq!(request(&mut fixture, REQUEST_IN, u64::MAX, 512), STATUS_IO_ERROR, "overflow");
        assert_eq!(request(&mut fixture, REQUEST_IN, 0, 100), STATUS_IO_ERROR, "partial sector");
        assert_eq!(request(&mut fixture, REQUEST_GET_ID, 0, 20), STATUS_OK);
        let mut id = [0u8; 4];
        fixture.memory.read_slice(&mut id, GuestAddress(DATA)).unwrap();
        assert_eq!(&id, b"root");
    }

    #[test]
    fn features_never_offered_are_refused_and_reset_forgets_the_queue() {
        let mut fixture = fixture();
        let device = &mut fixture.device;
        write32(device, register::DRIVER_FEATURES_SELECT, 0);
        write32(device, register::DRIVER_FEATURES, 1 << 9); // FLUSH, not offered
        write32(device, register::STATUS, 3 | STATUS_FEATURES_OK);
        assert_eq!(read32(device, register::STATUS) & STATUS_FEATURES_OK, 0);
        set_up(device);
        assert_eq!(read32(device, register::QUEUE_READY), 1);
        write32(device, register::STATUS, 0);
        assert_eq!(read32(device, register::QUEUE_READY), 0);
        assert_eq!(read32(device, register::STATUS), 0);
    }

    #[test]
    fn a_broken_chain_costs_the_driver_its_queue_not_the_monitor() {
        let mut fixture = fixture();
        set_up(&mut fixture.device);
        // A descriptor that loops onto itself.
        descriptor(&fixture.memory, 0, HEADER, 16, 1, 0);
        fixture.memory.write_obj(0u16, GuestAddress(DRIVER_AREA + 4)).unwrap();
        fixture.memory.write_obj(1u16, GuestAddress(DRIVER_AREA + 2)).unwrap();
        write32(&mut fixture.device, register::QUEUE_NOTIFY, 0);
        assert!(fixture.device.transport.take_queue(0).is_none());
        write32(&mut fixture.device, register::QUEUE_NOTIFY, 0);
    }
}
