//! PCI enumeration and virtio-pci devices, legacy and modern.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::spec::DeviceType;
use spin::Mutex;

use super::fake::{FakeHardware, disk};
use super::model::{Device, LegacyPciModel, ModernPciModel};
use super::virtio::exercise_block;
use crate::pci::{Bar, PciAddress, enumerate};
use crate::virtio::block::VirtioBlock;
use crate::virtio::pci::{InterruptRoute, device_type, open};

const STATUS_CAPABILITIES: u32 = 1 << 20;
const MODERN_BAR: u64 = 0xfe00_0000;

fn address(bus: u8, device: u8, function: u8) -> PciAddress {
    PciAddress { bus, device, function }
}

/// A configuration space: ids, class, header type, BARs, subsystem,
/// capability pointer, interrupt.
fn header(ids: u32, class: u32, header_type: u8, bars: [u32; 6], subsystem: u32) -> Vec<u32> {
    let mut space = vec![0u32; 64];
    space[0] = ids;
    space[2] = class << 8;
    space[3] = u32::from(header_type) << 16;
    space[4..10].copy_from_slice(&bars);
    space[11] = subsystem;
    space[15] = 0x0000_010b;
    space
}

#[test]
fn enumeration_follows_bridges_and_functions() {
    let hardware = FakeHardware::new();
    hardware.add_function(address(0, 0, 0), header(0x1237_8086, 0x06_00_00, 0, [0; 6], 0));
    // A multifunction device: function 0 and 2 exist.
    hardware.add_function(address(0, 3, 0), header(0x0001_1234, 0x02_00_00, 0x80, [0; 6], 0));
    hardware.add_function(address(0, 3, 2), header(0x0002_1234, 0x02_00_00, 0, [0; 6], 0));
    // A bridge to bus 1, where one device lives.
    let mut bridge = header(0x0001_1b36, 0x06_04_00, 1, [0; 6], 0);
    bridge[6] = 0x0001_0100;
    hardware.add_function(address(0, 5, 0), bridge);
    hardware.add_function(
        address(1, 0, 0),
        header(0x1001_1af4, 0x01_00_00, 0, [0xc001, 0, 0, 0, 0, 0], 0x0002_1af4),
    );
    let functions = enumerate(hardware);
    let found: Vec<PciAddress> = functions.iter().map(|function| function.address).collect();
    assert_eq!(found, [address(0, 0, 0), address(0, 3, 0), address(0, 3, 2), address(1, 0, 0)]);
    let virtio = &functions[3];
    assert_eq!(virtio.bars[0], Bar::Io { port: 0xc000, size: 64 });
    assert_eq!(device_type(virtio), Some(DeviceType::Block));
    assert_eq!((virtio.interrupt_line, virtio.interrupt_pin), (11, 1));
}

#[test]
fn legacy_block_device_over_io_ports() {
    let hardware = FakeHardware::new();
    let disk = disk(128);
    hardware.add_function(
        address(0, 4, 0),
        header(0x1001_1af4, 0x01_00_00, 0, [0xc001, 0, 0, 0, 0, 0], 0x0002_1af4),
    );
    let device = Device::block(hardware.memory.clone(), disk.clone(), 0);
    hardware.add_ports(0xc000, 64, Arc::new(Mutex::new(LegacyPciModel { device, is_msix_enabled: false })));
    let functions = enumerate(hardware);
    let (transport, route) = open(&functions[0], hardware, Some((0xfee0_0000, 0x41))).expect("opens");
    assert!(transport.is_legacy());
    assert!(matches!(route, InterruptRoute::Intx(11)), "no MSI-X capability: INTx");
    let command = crate::Hardware::read_pci_config(hardware, address(0, 4, 0), 4);
    assert_eq!(command & 0b111, 0b111, "I/O, memory and bus mastering on");
    let block = VirtioBlock::new(Arc::from(transport), hardware).expect("starts");
    exercise_block(&block, &disk);
}

/// A modern virtio-blk function: vendor capabilities for the common,
/// notify, ISR and device structures in BAR 4, and MSI-X with its table
/// there too.
fn modern_function(hardware: &FakeHardware) -> Arc<Mutex<ModernPciModel>> {
    let mut space = header(0x1042_1af4, 0x01_00_00, 0, [0, 0, 0, 0, 0xfe00_0004, 0], 0x0002_1af4);
    space[1] = STATUS_CAPABILITIES;
    space[13] = 0x40;
    // Vendor capabilities: id, next, length, type; BAR; offset; length.
    let structures = [(1u32, 0x0000, 0x38), (3, 0x1000, 1), (4, 0x2000, 0x40), (2, 0x3000, 0x100)];
    for (index, (kind, offset, length)) in structures.iter().enumerate() {
        let at = 0x40 + 0x14 * index;
        let next = if index + 1 == structures.len() { 0x90 } else { at + 0x14 };
        space[at / 4] = 0x09 | (next as u32) << 8 | 0x14 << 16 | kind << 24;
        space[at / 4 + 1] = 4;
        space[at / 4 + 2] = *offset;
        space[at / 4 + 3] = *length;
        space[at / 4 + 4] = 4;
    }
    // MSI-X: 2 entries, table in BAR 4 at 0x4000.
    space[0x90 / 4] = 0x11 | 1 << 16;
    space[0x94 / 4] = 0x4000 | 4;
    hardware.add_function(address(0, 2, 0), space);
    let device = Device::block(hardware.memory.clone(), disk(256), 0);
    let model = Arc::new(Mutex::new(ModernPciModel { device, config_vector: 0, msix_table: vec![0; 8] }));
    hardware.add_mmio(MODERN_BAR, 0x5000, model.clone());
    model
}

#[test]
fn modern_block_device_with_msix() {
    let hardware = FakeHardware::new();
    let model = modern_function(hardware);
    let functions = enumerate(hardware);
    assert_eq!(functions[0].bars[4], Bar::Memory { address: MODERN_BAR, size: 4096, is_64_bit: true });
    // The model's BAR is larger than the 4 KiB the probe reports; widen it.
    let mut function = functions[0].clone();
    function.bars[4] = Bar::Memory { address: MODERN_BAR, size: 0x5000, is_64_bit: true };
    let (transport, route) = open(&function, hardware, Some((0xfee0_1000, 0x42))).expect("opens");
    assert!(!transport.is_legacy());
    assert!(matches!(route, InterruptRoute::Msix(_)));
    {
        let model = model.lock();
        assert_eq!(
            &model.msix_table[..4],
            &[0xfee0_1000, 0, 0x42, 0],
            "entry 0 points at the message, unmasked"
        );
        assert_eq!(model.config_vector, 0xffff, "no configuration interrupts");
    }
    let control = crate::Hardware::read_pci_config(hardware, address(0, 2, 0), 0x90);
    assert_ne!(control & 1 << 31, 0, "MSI-X enabled");
    let block = VirtioBlock::new(Arc::from(transport), hardware).expect("starts");
    assert_eq!(model.lock().device.queues[0].vector, 0, "the queue signals entry 0");
    let disk = match &model.lock().device.backend {
        super::model::Backend::Block { disk } => disk.clone(),
        _ => unreachable!("a block device"),
    };
    exercise_block(&block, &disk);
}

#[test]
fn unassigned_bars_get_aligned_addresses() {
    use crate::pci::{ResourceWindows, assign_resources};
    let hardware = FakeHardware::new();
    // An I/O BAR and a 64-bit memory BAR left at 0, next to a function the
    // firmware did assign.
    hardware.add_function(address(0, 1, 0), header(0x1001_1af4, 0x01_00_00, 0, [0x1, 0, 0, 0, 0xc, 0], 0));
    hardware
        .add_function(address(0, 2, 0), header(0x0001_1234, 0x02_00_00, 0, [0xe000_0000, 0, 0, 0, 0, 0], 0));
    let mut functions = enumerate(hardware);
    assert_eq!(functions[0].bars[0], Bar::Io { port: 0, size: 64 });
    assert!(!functions[0].bars[4].is_assigned());
    let windows = ResourceWindows { io: 0xc000..0x1_0000, memory: 0xe000_0000..0xfec0_0000 };
    assign_resources(hardware, &mut functions, &windows);
    assert_eq!(functions[0].bars[0], Bar::Io { port: 0xc000, size: 64 });
    assert_eq!(functions[0].bars[4], Bar::Memory { address: 0xe000_1000, size: 4096, is_64_bit: true });
    assert_eq!(functions[1].bars[0], Bar::Memory { address: 0xe000_0000, size: 4096, is_64_bit: false });
    let read = |offset| crate::Hardware::read_pci_config(hardware, address(0, 1, 0), offset);
    assert_eq!((read(0x10), read(0x20), read(0x24)), (0xc001, 0xe000_100c, 0));
    // Enumerating again finds the addresses in the registers.
    assert_eq!(enumerate(hardware)[0].bars, functions[0].bars);
}

#[test]
fn intx_follows_the_piix_pirq_routing() {
    use crate::pci::piix_intx_irq;
    let hardware = FakeHardware::new();
    // PIIX3 at 00:01.0 routes PIRQA..D to IRQs 10, 10, 11, 11.
    let mut isa = header(0x7000_8086, 0x06_01_00, 0x80, [0; 6], 0);
    isa[0x60 / 4] = 0x0b0b_0a0a;
    hardware.add_function(address(0, 1, 0), isa);
    // Slot 2, INTA: PIRQB, so IRQ 10, whatever the line register says (11).
    hardware.add_function(
        address(0, 2, 0),
        header(0x1001_1af4, 0x01_00_00, 0, [0xc001, 0, 0, 0, 0, 0], 0x0002_1af4),
    );
    // Slot 4, INTA: PIRQD, IRQ 11.
    hardware.add_function(
        address(0, 4, 0),
        header(0x1001_1af4, 0x01_00_00, 0, [0xc041, 0, 0, 0, 0, 0], 0x0002_1af4),
    );
    let functions = enumerate(hardware);
    assert_eq!(piix_intx_irq(hardware, &functions, &functions[1]), Some(10));
    assert_eq!(piix_intx_irq(hardware, &functions, &functions[2]), Some(11));
    // Without the bridge the line register is all there is.
    assert_eq!(piix_intx_irq(hardware, &functions[1..], &functions[1]), None);
}
