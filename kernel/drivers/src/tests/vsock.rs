//! The socket (vsock) driver against a device model: the guest's CID, a
//! packet each way, and a full transmit queue.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rosv_virtio::spec::DeviceType;
use rosv_virtio::vsock::{HEADER_SIZE, Header, TYPE_STREAM, op};
use spin::Mutex;

use super::fake::FakeHardware;
use super::model::{Backend, Device, MmioModel, NetworkBackend, QueueRegisters};
use crate::virtio::mmio::MmioTransport;
use crate::virtio::vsock::{PACKET_BYTES, PAYLOAD_BYTES_MAX, VirtioVsock};
use crate::virtio::{DeviceError, Transport};

const MMIO_BASE: u64 = 0xfeb1_0000;

/// A socket device giving the guest CID 3. The network card model serves
/// it: chains on queue 0 wait for packets the test injects, the others
/// (transmit and event) are recorded and returned.
fn start() -> (Arc<Mutex<MmioModel>>, VirtioVsock) {
    let hardware = FakeHardware::new();
    let config = 3u64.to_le_bytes().to_vec();
    let mut device =
        Device::new(hardware.memory.clone(), 19, 0, config, Backend::Network(NetworkBackend::default()));
    device.queues.push(QueueRegisters { max_size: 64, vector: 0xffff, ..Default::default() });
    let model = Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 }));
    hardware.add_mmio(MMIO_BASE, 0x200, model.clone());
    let window = crate::Hardware::map_registers(hardware, MMIO_BASE, 0x200).expect("mapped");
    let transport = MmioTransport::probe(window).expect("virtio").expect("a device");
    assert_eq!(transport.device_type(), DeviceType::Socket);
    let transport: Arc<dyn Transport> = Arc::new(transport);
    (model, VirtioVsock::new(transport, hardware).expect("starts"))
}

fn header(op: u16, length: u32) -> Header {
    Header {
        source_cid: 3,
        destination_cid: 2,
        source_port: 1024,
        destination_port: 80,
        length,
        socket_type: TYPE_STREAM,
        op,
        flags: 0,
        buffer_allocation: 4096,
        forwarded_count: 0,
    }
}

/// What the driver sent, without the event buffers (writable only).
fn sent(model: &Arc<Mutex<MmioModel>>) -> Vec<Vec<u8>> {
    let mut model = model.lock();
    let sent = core::mem::take(&mut model.device.network().sent);
    sent.into_iter().map(|sent| sent.bytes).filter(|bytes| !bytes.is_empty()).collect()
}

#[test]
fn the_driver_reads_its_cid_and_moves_packets_both_ways() {
    let (model, vsock) = start();
    assert_eq!(vsock.guest_cid(), 3);
    assert_eq!(model.lock().device.network().receive_chains.len(), 64, "every receive buffer offered");
    assert!(
        model
            .lock()
            .device
            .network()
            .receive_chains
            .iter()
            .all(|chain| chain.writable_bytes() == PACKET_BYTES as u64)
    );

    vsock.transmit(&header(op::RW, 5).encode(), b"hello").expect("sent");
    let sent = sent(&model);
    assert_eq!(sent.len(), 1);
    assert_eq!(Header::decode(&sent[0]), Some(header(op::RW, 5)));
    assert_eq!(&sent[0][HEADER_SIZE..], b"hello");

    let incoming = header(op::RESPONSE, 0).reply(op::RW);
    let incoming = Header { length: 3, ..incoming };
    assert!(model.lock().device.inject_frame(&incoming.encode(), b"abc"));
    let mut received = None;
    assert!(vsock.receive(|bytes| received = Some(bytes.to_vec())));
    let received = received.expect("a packet");
    assert_eq!(Header::decode(&received), Some(incoming));
    assert_eq!(&received[HEADER_SIZE..], b"abc");
    assert!(!vsock.receive(|_| panic!("nothing more")));
    assert_eq!(model.lock().device.network().receive_chains.len(), 64, "the buffer went back");
    assert!(!vsock.take_reset());
}

#[test]
fn a_full_transmit_queue_and_oversized_data_are_refused() {
    let (model, vsock) = start();
    assert_eq!(
        vsock.transmit(&header(op::RW, 0).encode(), &vec![0u8; PAYLOAD_BYTES_MAX + 1]),
        Err(DeviceError::InvalidFrameLength)
    );
    model.lock().device.network().is_transmit_deferred = true;
    for _ in 0..64 {
        vsock.transmit(&header(op::CREDIT_UPDATE, 0).encode(), &[]).expect("room");
    }
    assert!(!vsock.can_transmit());
    assert_eq!(vsock.transmit(&header(op::CREDIT_UPDATE, 0).encode(), &[]), Err(DeviceError::QueueFull));
    model.lock().device.complete_transmits();
    assert!(vsock.can_transmit(), "returned buffers are taken back");
}
