//! The virtqueue's waiting, with submitters on real threads.

extern crate std;

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use core::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rosv_virtio::spec::DeviceType;
use rosv_virtio::{Buffer, SharedMemory};
use spin::Mutex;

use super::fake::{FakeHardware, ModelWindow};
use super::model::{Backend, Device, MmioModel};
use crate::virtio::mmio::MmioTransport;
use crate::virtio::{Transport, Virtqueue, finish_initialization, initialize};

/// Blocks host threads for `rosv_sync`: park and unpark.
struct StdScheduler;

struct StdWaker(thread::Thread);

impl rosv_sync::Waker for StdWaker {
    fn wake(&self) {
        self.0.unpark();
    }
}

impl rosv_sync::Scheduler for StdScheduler {
    fn current(&self) -> Arc<dyn rosv_sync::Waker> {
        Arc::new(StdWaker(thread::current()))
    }

    fn park(&self) {
        thread::park();
    }
}

static SCHEDULER: StdScheduler = StdScheduler;

/// A one-descriptor queue to a device that completes chains only when told.
fn deferred_queue() -> (&'static FakeHardware, Arc<Mutex<MmioModel>>, Arc<Virtqueue>) {
    rosv_sync::install(&SCHEDULER);
    let hardware = FakeHardware::new();
    let device = Device::new(hardware.memory.clone(), 4, 0, vec![], Backend::Deferred { pending: vec![] });
    let model = Arc::new(Mutex::new(MmioModel { device, version: 2, magic: 0x7472_6976 }));
    hardware.add_mmio(0xfeb0_0000, 0x200, model.clone());
    let window = Box::new(ModelWindow { model: model.clone(), base: 0 });
    let transport: Arc<dyn Transport> =
        Arc::new(MmioTransport::probe(window).expect("virtio").expect("a device"));
    assert_eq!(transport.device_type(), DeviceType::Entropy);
    let features = initialize(&*transport, 0).expect("negotiates");
    let queue = Virtqueue::new(transport.clone(), 0, features, hardware, 1).expect("a queue");
    finish_initialization(&*transport);
    assert_eq!(queue.size(), 1);
    (hardware, model, Arc::new(queue))
}

#[test]
fn a_reused_descriptor_never_hands_one_request_another_requests_result() {
    let (hardware, model, queue) = deferred_queue();
    let first_buffer = hardware.memory.allocate(8);
    let second_buffer = hardware.memory.allocate(16);
    let first = Buffer { address: first_buffer.physical_address(), length: 8, is_device_writable: true };
    let second = Buffer { address: second_buffer.physical_address(), length: 16, is_device_writable: true };

    let first_queue = queue.clone();
    let first_done = Arc::new(AtomicBool::new(false));
    let first_flag = first_done.clone();
    let first_thread = thread::spawn(move || {
        let written = first_queue.submit(&[first]);
        first_flag.store(true, Ordering::SeqCst);
        written
    });
    while model.lock().device.pending_count() == 0 {
        thread::yield_now();
    }
    // The device finishes the first chain without interrupting; the second
    // submitter finds the queue full, collects it, and takes the same
    // descriptor for its own chain.
    model.lock().device.complete(0);
    let second_queue = queue.clone();
    let second_done = Arc::new(AtomicBool::new(false));
    let second_flag = second_done.clone();
    let second_thread = thread::spawn(move || {
        let written = second_queue.submit(&[second]);
        second_flag.store(true, Ordering::SeqCst);
        written
    });
    while model.lock().device.pending_count() == 0 {
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(200));
    assert!(!second_done.load(Ordering::SeqCst), "the second request returned before the device finished it");
    model.lock().device.complete(0);
    queue.handle_interrupt();
    assert_eq!(second_thread.join().expect("no panic"), Ok(16));
    assert_eq!(first_thread.join().expect("no panic"), Ok(8));
    assert!(first_done.load(Ordering::SeqCst));
}
