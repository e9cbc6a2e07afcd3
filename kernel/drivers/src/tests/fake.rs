//! Fake hardware: DMA memory from `rosv-virtio`'s memory model, register
//! windows backed by device models, a PCI configuration space.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::SharedMemory;
use rosv_virtio::testing::{FakeMemory, FakeRegion};
use spin::Mutex;

use crate::hardware::{DmaRegion, Hardware, RegisterWindow};
use crate::pci::PciAddress;

/// A DMA region of the memory model.
pub struct FakeDma(pub FakeRegion);

impl SharedMemory for FakeDma {
    fn physical_address(&self) -> u64 {
        self.0.physical_address()
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.0.read_u16(offset)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.0.read_u32(offset)
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.0.write_u16(offset, value)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.0.write_u32(offset, value)
    }
    fn write_u64(&self, offset: usize, value: u64) {
        self.0.write_u64(offset, value)
    }
}

impl DmaRegion for FakeDma {
    fn size(&self) -> usize {
        self.0.size()
    }
    fn read_bytes(&self, offset: usize, buffer: &mut [u8]) {
        buffer.copy_from_slice(
            &self.0.memory().read_bytes(self.0.physical_address() + offset as u64, buffer.len()),
        );
    }
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        use rosv_virtio::device::GuestMemory;
        self.0.memory().write(self.0.physical_address() + offset as u64, bytes).expect("inside the region");
    }
}

/// Registers a device model answers.
pub trait RegisterModel: Send {
    fn read(&mut self, offset: usize, width: usize) -> u32;
    fn write(&mut self, offset: usize, width: usize, value: u32);
}

/// A register model several windows reach.
pub type SharedModel = Arc<Mutex<dyn RegisterModel>>;

/// A window onto a shared register model, starting at `base` within it.
pub struct ModelWindow {
    pub model: SharedModel,
    pub base: usize,
}

impl RegisterWindow for ModelWindow {
    fn read_u8(&self, offset: usize) -> u8 {
        self.model.lock().read(self.base + offset, 1) as u8
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.model.lock().read(self.base + offset, 2) as u16
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.model.lock().read(self.base + offset, 4)
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.model.lock().write(self.base + offset, 1, u32::from(value))
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.model.lock().write(self.base + offset, 2, u32::from(value))
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.model.lock().write(self.base + offset, 4, value)
    }
}

/// A machine with models at physical addresses and I/O ports, and PCI
/// configuration spaces.
pub struct FakeHardware {
    pub memory: FakeMemory,
    pub mmio: Mutex<Vec<(u64, usize, SharedModel)>>,
    pub ports: Mutex<Vec<(u16, u16, SharedModel)>>,
    pub pci: Mutex<BTreeMap<PciAddress, Vec<u32>>>,
}

impl FakeHardware {
    pub fn new() -> &'static FakeHardware {
        Box::leak(Box::new(FakeHardware {
            memory: FakeMemory::new(0x100_0000, 8 << 20),
            mmio: Mutex::new(Vec::new()),
            ports: Mutex::new(Vec::new()),
            pci: Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn add_mmio(&self, address: u64, size: usize, model: SharedModel) {
        self.mmio.lock().push((address, size, model));
    }

    pub fn add_ports(&self, port: u16, count: u16, model: SharedModel) {
        self.ports.lock().push((port, count, model));
    }

    /// Adds a function with a 256-byte configuration space.
    pub fn add_function(&self, address: PciAddress, config: Vec<u32>) {
        let mut space = config;
        space.resize(64, 0);
        self.pci.lock().insert(address, space);
    }
}

impl Hardware for FakeHardware {
    fn map_registers(&self, physical_address: u64, size: usize) -> Option<Box<dyn RegisterWindow>> {
        self.mmio.lock().iter().find_map(|(start, length, model)| {
            let offset = physical_address.checked_sub(*start)? as usize;
            (offset + size <= *length)
                .then(|| Box::new(ModelWindow { model: model.clone(), base: offset }) as _)
        })
    }

    fn io_ports(&self, base: u16, count: u16) -> Option<Box<dyn RegisterWindow>> {
        self.ports.lock().iter().find_map(|(start, length, model)| {
            let offset = base.checked_sub(*start)?;
            (offset + count <= *length)
                .then(|| Box::new(ModelWindow { model: model.clone(), base: usize::from(offset) }) as _)
        })
    }

    fn allocate_dma(&self, size: usize) -> Option<Box<dyn DmaRegion>> {
        Some(Box::new(FakeDma(self.memory.allocate(size))))
    }

    fn physical_address(&self, _bytes: &[u8]) -> Option<u64> {
        None
    }

    fn read_pci_config(&self, function: PciAddress, offset: u8) -> u32 {
        self.pci.lock().get(&function).map_or(u32::MAX, |space| space[usize::from(offset / 4)])
    }

    fn write_pci_config(&self, function: PciAddress, offset: u8, value: u32) {
        if let Some(space) = self.pci.lock().get_mut(&function) {
            let register = usize::from(offset / 4);
            // BARs answer the all-ones probe with their size mask.
            let is_upper_half = register > 4 && space[register - 1] & 0b111 == 0b100;
            space[register] = match register {
                4..=9 if value == u32::MAX && is_upper_half => u32::MAX,
                4..=9 if value == u32::MAX => bar_probe(space[register]),
                // Status bits are cleared by writing ones, never set.
                1 => (space[1] & 0xffff_0000 & !(value & 0xffff_0000)) | (value & 0xffff),
                _ => value,
            };
        }
    }
}

/// What a BAR returns after all ones were written: 4 KiB memory BARs, 64
/// I/O ports.
fn bar_probe(original: u32) -> u32 {
    if original & 1 == 1 {
        0xffff_ffc1
    } else if original == 0 {
        0
    } else {
        0xffff_f000 | (original & 0xf)
    }
}

/// A disk the block model serves.
pub type Disk = Arc<Mutex<Vec<u8>>>;

pub fn disk(sectors: usize) -> Disk {
    let mut bytes = vec![0u8; sectors * 512];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = (index * 7 + index / 512) as u8;
    }
    Arc::new(Mutex::new(bytes))
}
