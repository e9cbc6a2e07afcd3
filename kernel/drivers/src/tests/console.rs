//! The console driver against a console model with several ports.

use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_virtio::console::{Control, event};
use rosv_virtio::spec::DeviceType;
use spin::Mutex;

use super::fake::FakeHardware;
use super::model::{Device, MmioModel};
use crate::virtio::console::{MAX_PORTS, Received, VirtioConsole};
use crate::virtio::mmio::MmioTransport;
use crate::virtio::{DeviceError, Transport};

const MMIO_BASE: u64 = 0xfeb0_0000;

/// A started console with `ports` over virtio-mmio version 2, its
/// control messages taken.
fn start(ports: &[(u32, &str)], max_ports: u32) -> (Arc<Mutex<MmioModel>>, VirtioConsole) {
    let hardware = FakeHardware::new();
    let device = Device::console(hardware.memory.clone(), ports, max_ports);
    let model = Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 }));
    hardware.add_mmio(MMIO_BASE, 0x200, model.clone());
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(transport.device_type(), DeviceType::Console);
    let console = VirtioConsole::new(Arc::new(transport), hardware).expect("starts");
    while console.process_control() {}
    (model, console)
}

const STREAMS: &[(u32, &str)] = &[(1, "rosv.stdin"), (2, "rosv.stdout"), (3, "rosv.stderr")];

fn read_all(console: &VirtioConsole, port: u32, chunk: usize) -> (Vec<u8>, Received) {
    let mut bytes = Vec::new();
    let mut buffer = alloc::vec![0u8; chunk];
    loop {
        match console.receive(port, &mut buffer) {
            Received::Bytes(length) => bytes.extend_from_slice(&buffer[..length]),
            other => return (bytes, other),
        }
    }
}

#[test]
fn announces_itself_and_takes_the_named_ports() {
    let (model, console) = start(STREAMS, 4);
    assert_eq!(console.port_named("rosv.stdout"), Some(2));
    assert_eq!(console.port_named("rosv.stdin"), Some(1));
    assert_eq!(console.port_named("rosv.control"), None);
    assert!(console.is_host_open(3));
    let mut model = model.lock();
    let controls = &model.device.console_host().controls;
    assert_eq!(controls[0], Control { port: 0, event: event::DEVICE_READY, value: 1 });
    for port in 1..=3 {
        assert!(controls.contains(&Control { port, event: event::PORT_READY, value: 1 }), "{port}");
        assert!(controls.contains(&Control { port, event: event::PORT_OPEN, value: 1 }), "{port}");
    }
}

#[test]
fn a_port_beyond_the_queues_set_up_is_refused() {
    let (model, console) = start(&[(1, "rosv.stdout"), (MAX_PORTS + 1, "far")], MAX_PORTS + 4);
    assert_eq!(console.port_named("far"), None);
    let mut model = model.lock();
    let controls = &model.device.console_host().controls;
    assert!(controls.contains(&Control { port: MAX_PORTS + 1, event: event::PORT_READY, value: 0 }));
}

#[test]
fn received_bytes_come_out_in_order_and_the_end_after_them() {
    let (model, console) = start(STREAMS, 4);
    let data: Vec<u8> = (0..10_000u32).map(|index| (index * 7 % 251) as u8).collect();
    assert_eq!(console.receive(1, &mut [0u8; 16]), Received::Nothing);
    assert_eq!(model.lock().device.send_to_console_port(1, &data), data.len());
    // The host closes its side while bytes are still unread.
    model.lock().device.send_console_control(Control { port: 1, event: event::PORT_OPEN, value: 0 });
    console.handle_interrupt();
    assert!(!console.is_host_open(1));
    assert!(console.has_received(1));
    let (bytes, end) = read_all(&console, 1, 1000);
    assert_eq!(bytes, data);
    assert_eq!(end, Received::Closed);
}

#[test]
fn read_buffers_go_back_to_the_device() {
    let (model, console) = start(STREAMS, 4);
    assert_eq!(model.lock().device.send_to_console_port(1, b"early"), 0, "no buffers before the first read");
    assert_eq!(console.receive(1, &mut [0u8; 8]), Received::Nothing);
    assert_eq!(model.lock().device.console_host().receive_chains[&1].len(), 8, "offered at the first read");
    assert!(!model.lock().device.console_host().receive_chains.contains_key(&2), "not for a port never read");
    let mut total = Vec::new();
    for round in 0..100u8 {
        let chunk = [round; 3000];
        assert_eq!(model.lock().device.send_to_console_port(1, &chunk), chunk.len(), "round {round}");
        let (bytes, end) = read_all(&console, 1, 512);
        assert_eq!(end, Received::Nothing);
        total.extend_from_slice(&bytes);
    }
    assert_eq!(total.len(), 300_000);
    assert!(total.chunks(3000).enumerate().all(|(round, chunk)| chunk.iter().all(|&b| b == round as u8)));
}

#[test]
fn sent_bytes_reach_the_host_in_order() {
    let (model, console) = start(STREAMS, 4);
    let data: Vec<u8> = (0..50_000u32).map(|index| (index % 253) as u8).collect();
    let mut offset = 0;
    while offset < data.len() {
        let taken = console.send(2, &data[offset..]).expect("open");
        assert!(taken > 0, "the device returns buffers at once");
        offset += taken;
    }
    assert!(console.is_sent(2));
    assert_eq!(model.lock().device.console_host().sent[&2], data);
    assert!(!model.lock().device.console_host().sent.contains_key(&3), "stderr stays apart");
}

#[test]
fn a_full_port_takes_nothing_until_the_device_returns_buffers() {
    let (model, console) = start(STREAMS, 4);
    model.lock().device.console_host().is_transmit_deferred = true;
    let mut sent = 0;
    loop {
        match console.send(2, &[b'x'; 100]) {
            Ok(0) => break,
            Ok(length) => sent += length,
            Err(error) => panic!("{error}"),
        }
        assert!(sent < 100_000, "the port never fills");
    }
    assert!(!console.is_sent(2));
    model.lock().device.complete_console_transmits();
    console.handle_interrupt();
    assert!(console.is_sent(2));
    assert_eq!(console.send(2, b"more"), Ok(4));
}

#[test]
fn a_port_the_host_closed_refuses_bytes() {
    let (model, console) = start(STREAMS, 4);
    model.lock().device.send_console_control(Control { port: 2, event: event::PORT_OPEN, value: 0 });
    console.handle_interrupt();
    assert_eq!(console.send(2, b"lost"), Err(DeviceError::PortClosed));
    assert!(console.is_sent(2), "nothing more can leave");
    assert_eq!(console.send(7, b"x"), Err(DeviceError::PortClosed), "a port never added");
    assert_eq!(console.receive(7, &mut [0; 4]), Received::Closed);
}

#[test]
fn a_console_without_multiport_is_refused() {
    let hardware = FakeHardware::new();
    let mut device = Device::console(hardware.memory.clone(), STREAMS, 4);
    device.offered &= !rosv_virtio::console::feature::MULTIPORT;
    let model = Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 }));
    hardware.add_mmio(MMIO_BASE, 0x200, model.clone());
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(VirtioConsole::new(Arc::new(transport), hardware).unwrap_err(), DeviceError::Unsupported);
}

#[test]
fn a_broken_receive_queue_reads_as_closed_without_a_panic() {
    let (model, console) = start(STREAMS, 4);
    // A used element naming a descriptor the driver never offered.
    model.lock().device.push_used(rosv_virtio::console::receive_queue(1), 63, 10);
    assert_eq!(console.receive(1, &mut [0; 8]), Received::Closed);
}
