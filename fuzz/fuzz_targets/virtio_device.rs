//! The device side of a virtqueue on arbitrary guest memory: every chain the
//! "driver" offers is walked, read, written and returned.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosv_virtio::device::DeviceQueue;
use rosv_virtio::testing::FakeMemory;

const BASE: u64 = 0x1000;

fuzz_target!(|bytes: &[u8]| {
    let Some((&shape, memory_bytes)) = bytes.split_first() else {
        return;
    };
    let size = 1u16 << (shape % 9);
    let length = memory_bytes.len() as u64;
    let memory = FakeMemory::from_bytes(BASE, memory_bytes.to_vec());
    // Place the rings anywhere in (or past) memory, as a driver could.
    let place = |salt: u64| BASE + (u64::from(shape) * salt) % (length + 64);
    let mut queue = DeviceQueue::new(size, place(7), place(13), place(29), shape & 0x80 != 0);
    for _ in 0..64 {
        match queue.pop_available(&memory) {
            Ok(Some(chain)) => {
                let _ = chain.read_all(&memory);
                let written = chain.write_all(&memory, &[0xa5; 300]).unwrap_or(0);
                let _ = queue.push_used(&memory, chain.head, written);
                let _ = queue.should_interrupt(&memory);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
