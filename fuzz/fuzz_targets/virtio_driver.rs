//! The driver side of a virtqueue against a device that writes arbitrary
//! used rings: popping must fail cleanly, never panic or lose descriptors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosv_virtio::device::GuestMemory;
use rosv_virtio::testing::FakeMemory;
use rosv_virtio::{Buffer, LayoutKind, QueueLayout, SplitQueue};

fuzz_target!(|bytes: &[u8]| {
    let memory = FakeMemory::new(0x1_0000, 1 << 16);
    let Some(layout) = QueueLayout::new(8, LayoutKind::Modern) else {
        return;
    };
    let region = memory.allocate(layout.total_size);
    let mut queue = SplitQueue::new(region, layout, bytes.first().is_some_and(|byte| byte & 1 != 0), true);
    let buffer = Buffer { address: 0x1_8000, length: 64, is_device_writable: true };
    for count in 1..4 {
        let _ = queue.add(&vec![buffer; count]);
    }
    // The device "writes" the used ring: flags, index and elements.
    let used_ring = queue.device_area_address();
    let ring_bytes = &bytes[bytes.len().min(1)..];
    let _ = memory.write(used_ring, &ring_bytes[..ring_bytes.len().min(4 + 8 * 8)]);
    for _ in 0..16 {
        match queue.pop_used() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert!(queue.free_descriptors() <= 8);
});
