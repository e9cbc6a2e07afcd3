//! The network driver against a network card model.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::net::feature;
use rosv_virtio::spec::{self, DeviceType};
use spin::Mutex;

use super::fake::{FakeHardware, ModelWindow};
use super::model::{Backend, Device, LegacyPciModel, MmioModel, NetworkBackend};
use crate::virtio::mmio::MmioTransport;
use crate::virtio::net::VirtioNet;
use crate::virtio::pci_legacy::PciLegacyTransport;
use crate::virtio::{DeviceError, Transport};

const MMIO_BASE: u64 = 0xfeb0_0000;
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// What the model writes where a received frame's virtio header goes, so
/// that a header left in front of the frame shows.
const HEADER_FILL: u8 = 0xee;
/// Descriptors per queue in the model.
const QUEUE_SIZE: usize = 64;

/// A network card's configuration: MAC address, status, MTU.
fn config(status: u16, mtu: u16) -> Vec<u8> {
    let mut config = vec![0u8; 16];
    config[..6].copy_from_slice(&MAC);
    config[6..8].copy_from_slice(&status.to_le_bytes());
    config[10..12].copy_from_slice(&mtu.to_le_bytes());
    config
}

/// A network card offering `features` (and the model's common ones).
fn card(hardware: &FakeHardware, features: u64, config: Vec<u8>) -> Device {
    Device::new(hardware.memory.clone(), 1, features, config, Backend::Network(NetworkBackend::default()))
}

/// Puts `device` behind virtio-mmio `version` at `base`.
fn mmio(
    hardware: &'static FakeHardware,
    base: u64,
    version: u32,
    device: Device,
) -> (Arc<Mutex<MmioModel>>, Arc<dyn Transport>) {
    let model = Arc::new(Mutex::new(MmioModel { device, version, magic: 0x7472_6976 }));
    hardware.add_mmio(base, 0x200, model.clone());
    let window = crate::Hardware::map_registers(hardware, base, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(transport.device_type(), DeviceType::Network);
    (model, Arc::new(transport))
}

/// A started card over virtio-mmio `version` offering `features`.
fn start(version: u32, features: u64, config: Vec<u8>) -> (Arc<Mutex<MmioModel>>, VirtioNet) {
    let hardware = FakeHardware::new();
    let (model, transport) = mmio(hardware, MMIO_BASE, version, card(hardware, features, config));
    (model, VirtioNet::new(transport, hardware).expect("starts"))
}

/// A frame of `length` bytes that differs from frames of other lengths and
/// other `seed`s.
fn frame(length: usize, seed: u8) -> Vec<u8> {
    (0..length).map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn take_frame(net: &VirtioNet) -> Option<Vec<u8>> {
    let mut received = None;
    let found = net.receive(|bytes| received = Some(bytes.to_vec()));
    assert_eq!(found, received.is_some(), "consume runs exactly when a frame is returned");
    received
}

fn send(net: &VirtioNet, bytes: &[u8]) -> Result<(), DeviceError> {
    net.transmit(bytes.len(), |buffer| buffer.copy_from_slice(bytes))?;
    net.flush();
    Ok(())
}

/// Transmits distinct frames until the driver refuses; returns how many
/// went out.
fn fill_transmit_queue(net: &VirtioNet) -> usize {
    let mut count = 0;
    loop {
        match send(net, &frame(60, count as u8)) {
            Ok(()) => count += 1,
            Err(DeviceError::QueueFull) => return count,
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(count <= 256, "the transmit queue never fills");
    }
}

#[test]
fn negotiates_what_it_drives_and_reads_the_configuration() {
    let offloads = feature::CSUM
        | feature::GUEST_CSUM
        | feature::GUEST_TSO4
        | feature::HOST_TSO4
        | feature::MRG_RXBUF
        | feature::CTRL_VQ
        | feature::MQ;
    let (model, net) =
        start(2, feature::MAC | feature::STATUS | feature::MTU | offloads, config(1 /* LINK_UP */, 1400));
    {
        let device = &mut model.lock().device;
        let common = spec::feature::VERSION_1 | spec::feature::INDIRECT_DESC | spec::feature::EVENT_IDX;
        assert_eq!(device.accepted, common | feature::MAC | feature::STATUS | feature::MTU);
        assert_ne!(device.status & spec::status::DRIVER_OK, 0);
        let chains = &device.network().receive_chains;
        assert_eq!(chains.len(), QUEUE_SIZE, "one receive buffer per descriptor");
        // A standard frame fits even below the standard MTU.
        assert!(chains.iter().all(|chain| chain.writable_bytes() == 12 + 1514));
    }
    assert_eq!(net.mac_address(), MAC);
    assert_eq!(net.mtu(), 1400);
    assert!(net.is_link_up());
    model.lock().device.config[6] = 0;
    assert!(!net.is_link_up());
}

#[test]
fn a_card_without_an_address_gets_a_stable_local_one() {
    let (model, net) = start(2, 0, config(0, 9000));
    let address = net.mac_address();
    assert_ne!(address, MAC, "the configuration's address is not valid without the MAC feature");
    assert_eq!(address[0], 0x02, "locally administered, unicast");
    assert_eq!(net.mtu(), 1500, "the configuration's MTU is not valid without the MTU feature");
    assert!(net.is_link_up(), "no status feature: the link counts as up");
    assert_eq!(model.lock().device.accepted & (feature::MAC | feature::MTU | feature::STATUS), 0);

    let (_, again) = start(2, 0, config(0, 9000));
    assert_eq!(again.mac_address(), address, "the same machine gets the same address");

    let hardware = FakeHardware::new();
    let (_, first) = mmio(hardware, MMIO_BASE, 2, card(hardware, 0, config(0, 0)));
    let (_, second) = mmio(hardware, MMIO_BASE + 0x1000, 2, card(hardware, 0, config(0, 0)));
    let first = VirtioNet::new(first, hardware).expect("starts");
    let second = VirtioNet::new(second, hardware).expect("starts");
    assert_ne!(first.mac_address(), second.mac_address(), "two cards of one machine differ");
}

#[test]
fn received_frames_arrive_without_the_header_again_and_again() {
    let (model, net) = start(2, feature::MAC, config(0, 0));
    assert!(!net.has_received());
    assert_eq!(take_frame(&net), None);
    let sizes = [60, 1, 1514, 14, 1000, 64, 1513];
    // Three times as many frames as the queue has buffers: each buffer must
    // come back to the device.
    for round in 0..3 * QUEUE_SIZE {
        let sent = frame(sizes[round % sizes.len()], round as u8);
        assert!(model.lock().device.inject_frame(&[HEADER_FILL; 12], &sent), "a buffer is offered");
        assert!(net.has_received());
        assert_eq!(take_frame(&net), Some(sent), "frame {round}");
        assert!(!net.has_received());
    }
    assert_eq!(model.lock().device.network().receive_chains.len(), QUEUE_SIZE);
}

#[test]
fn frames_received_together_come_out_in_order() {
    let (model, net) = start(2, 0, config(0, 0));
    let frames: Vec<Vec<u8>> = (0..QUEUE_SIZE).map(|index| frame(60 + index, index as u8)).collect();
    for sent in &frames {
        assert!(model.lock().device.inject_frame(&[HEADER_FILL; 12], sent));
    }
    assert!(!model.lock().device.inject_frame(&[0; 12], &[1]), "every buffer is full");
    for sent in &frames {
        assert_eq!(take_frame(&net).as_ref(), Some(sent));
    }
    assert_eq!(take_frame(&net), None);
}

#[test]
fn a_modern_card_sends_a_twelve_byte_zero_header() {
    let (model, net) = start(2, feature::MAC, config(0, 0));
    let frames = [frame(60, 1), frame(1514, 2), frame(1, 3)];
    for sent in &frames {
        send(&net, sent).expect("sent");
    }
    let mut was_zeroed = false;
    net.transmit(1514, |buffer| was_zeroed = buffer.iter().all(|&byte| byte == 0)).expect("sent");
    assert!(was_zeroed, "the filler starts from zeros, not from the previous frame");
    net.flush();
    let device = &mut model.lock().device;
    let network = device.network();
    assert_eq!(network.sent.len(), frames.len() + 1);
    for (sent, captured) in frames.iter().zip(&network.sent) {
        assert_eq!(&captured.bytes[..12], &[0; 12]);
        assert_eq!(&captured.bytes[12..], &sent[..]);
        assert_eq!(captured.buffer_lengths, [12 + sent.len() as u32], "one buffer");
    }
}

#[test]
fn a_legacy_card_takes_a_ten_byte_header_in_a_buffer_of_its_own() {
    let (model, net) = start(1, feature::MAC, config(0, 0));
    assert!(model.lock().device.network().receive_chains.iter().all(|chain| {
        chain.segments.iter().map(|segment| segment.length).collect::<Vec<_>>() == [10, 1514]
    }));
    let sent = frame(342, 9);
    send(&net, &sent).expect("sent");
    {
        let device = &mut model.lock().device;
        let captured = &device.network().sent[0];
        assert_eq!(captured.bytes, [&[0; 10][..], &sent].concat());
        assert_eq!(captured.buffer_lengths, [10, 342]);
    }
    let incoming = frame(1514, 4);
    assert!(model.lock().device.inject_frame(&[HEADER_FILL; 10], &incoming));
    assert_eq!(take_frame(&net), Some(incoming));
}

#[test]
fn a_legacy_card_with_any_layout_takes_header_and_frame_together() {
    let (model, net) = start(1, spec::feature::ANY_LAYOUT, config(0, 0));
    assert_ne!(model.lock().device.accepted & spec::feature::ANY_LAYOUT, 0);
    let sent = frame(100, 5);
    send(&net, &sent).expect("sent");
    {
        let device = &mut model.lock().device;
        let captured = &device.network().sent[0];
        assert_eq!(captured.bytes, [&[0; 10][..], &sent].concat());
        assert_eq!(captured.buffer_lengths, [110]);
    }
    let incoming = frame(77, 6);
    assert!(model.lock().device.inject_frame(&[HEADER_FILL; 10], &incoming));
    assert_eq!(take_frame(&net), Some(incoming));
}

#[test]
fn without_indirect_descriptors_separate_headers_halve_the_buffers() {
    let hardware = FakeHardware::new();
    let mut device = card(hardware, 0, config(0, 0));
    device.offered &= !spec::feature::INDIRECT_DESC;
    device.network().is_transmit_deferred = true;
    let (model, transport) = mmio(hardware, MMIO_BASE, 1, device);
    let net = VirtioNet::new(transport, hardware).expect("starts");
    assert_eq!(model.lock().device.network().receive_chains.len(), QUEUE_SIZE / 2);
    assert_eq!(fill_transmit_queue(&net), QUEUE_SIZE / 2);
}

#[test]
fn frames_reach_the_device_in_batches_and_sent_ones_do_not_interrupt() {
    let hardware = FakeHardware::new();
    let device = card(hardware, 0, config(0, 0));
    let (model, transport) = mmio(hardware, MMIO_BASE, 2, device);
    let net = VirtioNet::new(transport, hardware).expect("starts");
    model.lock().device.interrupt_status = 0;
    for seed in 0..3 {
        net.transmit(60, |buffer| buffer.copy_from_slice(&frame(60, seed))).expect("room");
    }
    assert!(model.lock().device.network().sent.is_empty(), "nothing announced before the flush");
    net.flush();
    assert_eq!(model.lock().device.network().sent.len(), 3, "one notification took the batch");
    assert_eq!(model.lock().device.interrupt_status, 0, "sent frames raise no interrupt");
    assert_eq!(net.activity().transmit_notifications, 1);
    assert_eq!(net.activity().sent_frames, 3);
}

#[test]
fn a_full_transmit_queue_asks_for_an_interrupt_when_room_returns() {
    let hardware = FakeHardware::new();
    let mut device = card(hardware, 0, config(0, 0));
    device.network().is_transmit_deferred = true;
    let (model, transport) = mmio(hardware, MMIO_BASE, 2, device);
    let net = VirtioNet::new(transport, hardware).expect("starts");
    assert_eq!(fill_transmit_queue(&net), QUEUE_SIZE);
    model.lock().device.interrupt_status = 0;
    assert!(!net.can_transmit());
    model.lock().device.complete_transmits();
    assert_ne!(model.lock().device.interrupt_status, 0, "the full queue asked for an interrupt");
    assert!(net.can_transmit());
    model.lock().device.interrupt_status = 0;
    send(&net, &frame(60, 1)).expect("room");
    model.lock().device.complete_transmits();
    assert_eq!(model.lock().device.interrupt_status, 0, "with room again, no more interrupts");
}

#[test]
fn a_full_transmit_queue_refuses_frames_until_the_device_catches_up() {
    let hardware = FakeHardware::new();
    let mut device = card(hardware, 0, config(0, 0));
    device.network().is_transmit_deferred = true;
    let (model, transport) = mmio(hardware, MMIO_BASE, 2, device);
    let net = VirtioNet::new(transport, hardware).expect("starts");
    assert!(net.can_transmit());
    assert_eq!(fill_transmit_queue(&net), QUEUE_SIZE);
    assert!(!net.can_transmit());
    let mut was_filled = false;
    assert_eq!(net.transmit(60, |_| was_filled = true), Err(DeviceError::QueueFull));
    assert!(!was_filled, "nothing to fill without a buffer");
    assert_eq!(model.lock().device.network().pending_transmits.len(), QUEUE_SIZE);

    model.lock().device.complete_transmits();
    assert!(net.can_transmit());
    send(&net, &frame(60, 200)).expect("a buffer is free again");
    let device = &mut model.lock().device;
    let sent = &device.network().sent;
    assert_eq!(sent.len(), QUEUE_SIZE + 1);
    for (index, captured) in sent.iter().enumerate().take(QUEUE_SIZE) {
        assert_eq!(&captured.bytes[12..], &frame(60, index as u8)[..], "frame {index}");
    }
    assert_eq!(&sent[QUEUE_SIZE].bytes[12..], &frame(60, 200)[..]);
}

#[test]
fn frames_must_be_neither_empty_nor_longer_than_the_mtu_allows() {
    let (model, net) = start(2, feature::MTU, config(0, 1400));
    assert_eq!(send(&net, &[]), Err(DeviceError::InvalidFrameLength));
    assert_eq!(send(&net, &frame(1415, 0)), Err(DeviceError::InvalidFrameLength));
    assert!(model.lock().device.network().sent.is_empty());
    send(&net, &frame(1414, 0)).expect("MTU + 14 bytes fit");
    assert_eq!(model.lock().device.network().sent.len(), 1);
}

#[test]
fn a_large_mtu_means_large_but_fewer_buffers() {
    let hardware = FakeHardware::new();
    let mut device = card(hardware, feature::MTU, config(0, 9000));
    device.network().is_transmit_deferred = true;
    let (model, transport) = mmio(hardware, MMIO_BASE, 2, device);
    let net = VirtioNet::new(transport, hardware).expect("starts");
    assert_eq!(net.mtu(), 9000);
    // 256 KiB of 9088-byte buffers.
    assert_eq!(model.lock().device.network().receive_chains.len(), 28);
    let incoming = frame(9014, 3);
    assert!(model.lock().device.inject_frame(&[HEADER_FILL; 12], &incoming));
    assert_eq!(take_frame(&net), Some(incoming));
    let outgoing = frame(9014, 8);
    send(&net, &outgoing).expect("sent");
    assert_eq!(model.lock().device.network().sent[0].bytes[12..], outgoing[..]);
    assert_eq!(fill_transmit_queue(&net), 27);
}

#[test]
fn a_receive_buffer_without_a_frame_is_skipped_and_offered_again() {
    let (model, net) = start(2, 0, config(0, 0));
    {
        let device = &mut model.lock().device;
        let chain = device.network().receive_chains.pop_front().expect("offered");
        device.push_used(0, chain.head, 5);
    }
    let sent = frame(70, 1);
    assert!(model.lock().device.inject_frame(&[HEADER_FILL; 12], &sent));
    assert_eq!(take_frame(&net), Some(sent));
    assert_eq!(model.lock().device.network().receive_chains.len(), QUEUE_SIZE, "both buffers are back");
}

#[test]
fn a_device_returning_an_unknown_buffer_loses_its_receive_queue_only() {
    let (model, net) = start(2, 0, config(0, 0));
    model.lock().device.push_used(0, 1000, 0);
    assert!(net.has_received(), "something is in the used ring");
    assert_eq!(take_frame(&net), None);
    assert!(!net.has_received(), "the queue is abandoned");
    assert!(model.lock().device.inject_frame(&[HEADER_FILL; 12], &frame(60, 0)));
    assert_eq!(take_frame(&net), None, "nothing after the bad element is trusted");
    send(&net, &frame(60, 1)).expect("the transmit queue still works");
    assert_eq!(model.lock().device.network().sent.len(), 1);
}

#[test]
fn a_device_claiming_more_than_the_buffer_holds_loses_its_receive_queue() {
    let (model, net) = start(2, 0, config(0, 0));
    {
        let device = &mut model.lock().device;
        let chain = device.network().receive_chains.pop_front().expect("offered");
        device.push_used(0, chain.head, 12 + 1514 + 1);
    }
    assert_eq!(take_frame(&net), None);
    assert!(!net.has_received());
}

#[test]
fn a_device_returning_an_unknown_transmit_buffer_loses_its_transmit_queue() {
    let (model, net) = start(2, 0, config(0, 0));
    model.lock().device.push_used(1, 7, 0);
    assert_eq!(send(&net, &frame(60, 0)), Err(DeviceError::Broken));
    assert!(!net.can_transmit());
    assert!(model.lock().device.network().sent.is_empty());
}

#[test]
fn the_interrupt_is_acknowledged() {
    let (model, net) = start(2, 0, config(0, 0));
    assert!(model.lock().device.inject_frame(&[HEADER_FILL; 12], &frame(60, 0)));
    assert_ne!(model.lock().device.interrupt_status, 0, "the device interrupts for a frame");
    net.handle_interrupt();
    assert_eq!(model.lock().device.interrupt_status, 0);
    assert!(net.has_received(), "acknowledging takes no frame");
}

#[test]
fn a_legacy_pci_card_reads_its_configuration_after_the_registers() {
    let hardware = FakeHardware::new();
    let mut device = card(hardware, feature::MAC | feature::MTU | feature::STATUS, config(0, 1280));
    device.config[6] = 1;
    let model = Arc::new(Mutex::new(LegacyPciModel { device, is_msix_enabled: false }));
    hardware.add_ports(0xc000, 64, model.clone());
    let window = Box::new(ModelWindow { model: model.clone(), base: 0 });
    let transport = Arc::new(PciLegacyTransport::new(window, DeviceType::Network, None));
    let net = VirtioNet::new(transport, hardware).expect("starts");
    assert_eq!((net.mac_address(), net.mtu(), net.is_link_up()), (MAC, 1280, true));
    let sent = frame(1294, 2);
    send(&net, &sent).expect("sent");
    let device = &mut model.lock().device;
    assert_eq!(device.network().sent[0].bytes, [&[0; 10][..], &sent].concat());
}
