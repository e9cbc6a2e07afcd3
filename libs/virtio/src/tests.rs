//! The driver side against the device model, in one process.

use alloc::vec::Vec;

use proptest::prelude::*;

use crate::device::{ChainError, DeviceQueue, GuestMemory, Segment};
use crate::testing::{FakeMemory, FakeRegion};
use crate::{Buffer, LayoutKind, QueueError, QueueLayout, SharedMemory, SplitQueue, Used};

const BASE: u64 = 0x10_0000;

struct Pair {
    memory: FakeMemory,
    driver: SplitQueue<FakeRegion>,
    device: DeviceQueue,
}

fn pair(size: u16, is_indirect: bool, is_event_index: bool) -> Pair {
    let memory = FakeMemory::new(BASE, 1 << 20);
    let layout = QueueLayout::new(size, LayoutKind::Modern).expect("a power of two");
    let region = memory.allocate(layout.total_size);
    let driver = SplitQueue::new(region, layout, is_indirect, is_event_index);
    let device = DeviceQueue::new(
        size,
        driver.descriptor_table_address(),
        driver.driver_area_address(),
        driver.device_area_address(),
        is_event_index,
    );
    Pair { memory, driver, device }
}

fn readable(region: &FakeRegion) -> Buffer {
    Buffer { address: region.physical_address(), length: region.size() as u32, is_device_writable: false }
}

fn writable(region: &FakeRegion) -> Buffer {
    Buffer { address: region.physical_address(), length: region.size() as u32, is_device_writable: true }
}

#[test]
fn layouts_follow_the_alignment_rules() {
    let modern = QueueLayout::new(256, LayoutKind::Modern).expect("valid");
    assert_eq!((modern.available_ring, modern.used_ring), (4096, 4096 + 518 + 2));
    let legacy = QueueLayout::new(256, LayoutKind::Legacy).expect("valid");
    assert_eq!((legacy.available_ring, legacy.used_ring), (4096, 8192));
    assert!(legacy.indirect_tables >= legacy.used_ring + 6 + 8 * 256);
    assert_eq!(QueueLayout::new(100, LayoutKind::Modern), None);
    assert_eq!(QueueLayout::new(0, LayoutKind::Modern), None);
}

#[test]
fn a_request_goes_to_the_device_and_comes_back() {
    let mut pair = pair(8, false, false);
    let request = pair.memory.allocate(16);
    request.memory().write(request.physical_address(), b"read sector 7...").expect("in memory");
    let response = pair.memory.allocate(32);
    let token = pair.driver.add(&[readable(&request), writable(&response)]).expect("room");
    assert_eq!(pair.driver.free_descriptors(), 6);
    assert!(pair.driver.should_notify());
    assert!(!pair.driver.should_notify(), "nothing new since the last notification");

    let chain = pair.device.pop_available(&pair.memory).expect("valid chain").expect("a chain");
    assert_eq!(chain.head, token);
    assert_eq!(chain.read_all(&pair.memory).expect("in memory"), b"read sector 7...");
    let written = chain.write_all(&pair.memory, b"sector seven").expect("in memory");
    pair.device.push_used(&pair.memory, chain.head, written).expect("in memory");
    assert!(pair.device.should_interrupt(&pair.memory).expect("in memory"));

    assert!(pair.driver.has_used());
    assert_eq!(pair.driver.pop_used(), Ok(Some(Used { token, written_bytes: 12 })));
    assert_eq!(pair.driver.pop_used(), Ok(None));
    assert_eq!(pair.driver.free_descriptors(), 8);
    assert_eq!(pair.memory.read_bytes(response.physical_address(), 12), b"sector seven");
}

#[test]
fn indirect_chains_take_one_descriptor() {
    let mut pair = pair(4, true, false);
    let parts: Vec<FakeRegion> = (0..5).map(|_| pair.memory.allocate(8)).collect();
    let mut buffers: Vec<Buffer> = parts[..2].iter().map(readable).collect();
    buffers.extend(parts[2..].iter().map(writable));
    let first = pair.driver.add(&buffers).expect("room");
    let second = pair.driver.add(&buffers).expect("room");
    assert_eq!(pair.driver.free_descriptors(), 2);
    for token in [first, second] {
        let chain = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
        assert_eq!(chain.head, token);
        assert_eq!(chain.segments.len(), 5);
        assert_eq!(
            chain.segments[2],
            Segment { address: parts[2].physical_address(), length: 8, is_writable: true }
        );
        pair.device.push_used(&pair.memory, chain.head, 24).expect("in memory");
    }
    assert_eq!(pair.driver.pop_used().expect("valid").map(|used| used.token), Some(first));
    assert_eq!(pair.driver.pop_used().expect("valid").map(|used| used.token), Some(second));
    assert_eq!(pair.driver.free_descriptors(), 4);
}

#[test]
fn a_full_queue_says_so_and_recovers() {
    let mut pair = pair(4, false, false);
    let buffer = pair.memory.allocate(8);
    let chain = [readable(&buffer), writable(&buffer)];
    pair.driver.add(&chain).expect("room");
    pair.driver.add(&chain).expect("room");
    assert_eq!(pair.driver.add(&chain), Err(QueueError::Full));
    assert!(!pair.driver.can_add(2));
    assert_eq!(pair.driver.add(&[readable(&buffer); 5]), Err(QueueError::ChainTooLong));
    let used = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
    pair.device.push_used(&pair.memory, used.head, 0).expect("in memory");
    pair.driver.pop_used().expect("valid").expect("one used");
    assert!(pair.driver.can_add(2));
    pair.driver.add(&chain).expect("room again");
}

#[test]
fn malformed_chains_are_refused_before_reaching_the_device() {
    let mut pair = pair(4, false, false);
    let buffer = pair.memory.allocate(8);
    assert_eq!(pair.driver.add(&[]), Err(QueueError::EmptyBuffer));
    let empty = Buffer { address: buffer.physical_address(), length: 0, is_device_writable: false };
    assert_eq!(pair.driver.add(&[empty]), Err(QueueError::EmptyBuffer));
    assert_eq!(
        pair.driver.add(&[writable(&buffer), readable(&buffer)]),
        Err(QueueError::ReadableAfterWritable)
    );
    assert_eq!(pair.driver.free_descriptors(), 4);
}

#[test]
fn event_indices_suppress_and_request_notifications() {
    let mut pair = pair(8, false, true);
    let buffer = pair.memory.allocate(8);
    pair.driver.add(&[writable(&buffer)]).expect("room");
    assert!(pair.driver.should_notify(), "the device asked for the first chain");
    pair.driver.add(&[writable(&buffer)]).expect("room");
    assert!(!pair.driver.should_notify(), "the device has not caught up yet");
    let first = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
    let second = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
    pair.driver.add(&[writable(&buffer)]).expect("room");
    assert!(pair.driver.should_notify(), "the device caught up and asked for the next one");

    pair.device.push_used(&pair.memory, first.head, 0).expect("in memory");
    assert!(pair.device.should_interrupt(&pair.memory).expect("in memory"));
    pair.device.push_used(&pair.memory, second.head, 0).expect("in memory");
    assert!(!pair.device.should_interrupt(&pair.memory).expect("in memory"), "the driver has not popped yet");
    pair.driver.pop_used().expect("valid").expect("one");
    pair.driver.pop_used().expect("valid").expect("two");
    let third = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
    pair.device.push_used(&pair.memory, third.head, 0).expect("in memory");
    assert!(pair.device.should_interrupt(&pair.memory).expect("in memory"));
}

#[test]
fn interrupts_can_be_suppressed_and_asked_for_again() {
    for is_event_index in [false, true] {
        let mut pair = pair(8, false, is_event_index);
        let buffer = pair.memory.allocate(8);
        assert!(!pair.driver.set_interrupts(false), "nothing used yet");
        for _ in 0..3 {
            pair.driver.add(&[readable(&buffer)]).expect("room");
            let chain = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
            pair.device.push_used(&pair.memory, chain.head, 0).expect("in memory");
            assert!(!pair.device.should_interrupt(&pair.memory).expect("in memory"), "suppressed");
            pair.driver.pop_used().expect("valid").expect("used");
        }
        pair.driver.add(&[readable(&buffer)]).expect("room");
        let chain = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
        pair.device.push_used(&pair.memory, chain.head, 0).expect("in memory");
        assert!(!pair.device.should_interrupt(&pair.memory).expect("in memory"), "still suppressed");
        assert!(pair.driver.set_interrupts(true), "a chain was used meanwhile, without an interrupt");
        pair.driver.pop_used().expect("valid").expect("used");
        pair.driver.add(&[readable(&buffer)]).expect("room");
        let chain = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
        pair.device.push_used(&pair.memory, chain.head, 0).expect("in memory");
        assert!(pair.device.should_interrupt(&pair.memory).expect("in memory"), "asked for again");
    }
}

/// Writes a used element straight into the ring, as a faulty device would.
fn forge_used(pair: &Pair, id: u32, written_bytes: u32) {
    let ring = pair.driver.device_area_address();
    let mut element = [0u8; 8];
    element[..4].copy_from_slice(&id.to_le_bytes());
    element[4..].copy_from_slice(&written_bytes.to_le_bytes());
    pair.memory.write(ring + 4, &element).expect("in memory");
    pair.memory.write(ring + 2, &1u16.to_le_bytes()).expect("in memory");
}

#[test]
fn a_faulty_device_cannot_corrupt_the_driver() {
    let mut pair = pair(4, false, false);
    forge_used(&pair, 2, 0);
    assert_eq!(pair.driver.pop_used(), Err(QueueError::UnknownUsedToken(2)));
    forge_used(&pair, 70_000, 0);
    assert_eq!(pair.driver.pop_used(), Err(QueueError::UnknownUsedToken(70_000)));

    let mut pair = self::pair(4, false, false);
    let buffer = pair.memory.allocate(8);
    let token = pair.driver.add(&[writable(&buffer)]).expect("room");
    forge_used(&pair, u32::from(token), 9);
    assert_eq!(pair.driver.pop_used(), Err(QueueError::UsedLengthTooLarge { token, written_bytes: 9 }));
    assert_eq!(pair.driver.free_descriptors(), 3, "nothing was freed");
}

/// Writes descriptor `index` of the table at `table`.
fn put_descriptor(
    memory: &FakeMemory,
    table: u64,
    index: u16,
    address: u64,
    length: u32,
    flags: u16,
    next: u16,
) {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&address.to_le_bytes());
    bytes[8..12].copy_from_slice(&length.to_le_bytes());
    bytes[12..14].copy_from_slice(&flags.to_le_bytes());
    bytes[14..].copy_from_slice(&next.to_le_bytes());
    memory.write(table + 16 * u64::from(index), &bytes).expect("in memory");
}

fn publish(memory: &FakeMemory, driver_area: u64, head: u16) {
    memory.write(driver_area + 4, &head.to_le_bytes()).expect("in memory");
    memory.write(driver_area + 2, &1u16.to_le_bytes()).expect("in memory");
}

/// Index, address, length, flags and next of a descriptor.
type DescriptorFields = (u16, u64, u32, u16, u16);

#[test]
fn the_device_side_refuses_malformed_chains() {
    use crate::spec::descriptor_flags::{INDIRECT, NEXT, WRITE};
    let cases: [(&[DescriptorFields], ChainError); 5] = [
        (&[(0, BASE, 8, NEXT, 1), (1, BASE, 8, NEXT, 0)], ChainError::TooLong),
        (&[(0, BASE, 8, WRITE | NEXT, 1), (1, BASE, 8, 0, 0)], ChainError::ReadableAfterWritable),
        (&[(0, BASE, 8, NEXT, 9)], ChainError::HeadOutOfRange(9)),
        (&[(0, u64::MAX - 4, 16, INDIRECT, 0)], ChainError::OutOfRange),
        (&[(0, BASE, 12, INDIRECT, 0)], ChainError::BadIndirectLength(12)),
    ];
    for (descriptors, expected) in cases {
        let memory = FakeMemory::new(BASE, 1 << 16);
        let table = BASE + 0x1000;
        let driver_area = BASE + 0x2000;
        for &(index, address, length, flags, next) in descriptors {
            put_descriptor(&memory, table, index, address, length, flags, next);
        }
        publish(&memory, driver_area, 0);
        let mut queue = DeviceQueue::new(4, table, driver_area, BASE + 0x3000, false);
        assert_eq!(queue.pop_available(&memory), Err(expected));
    }
}

#[test]
fn nested_indirect_tables_are_refused() {
    use crate::spec::descriptor_flags::INDIRECT;
    let memory = FakeMemory::new(BASE, 1 << 16);
    let (table, indirect, driver_area) = (BASE + 0x1000, BASE + 0x4000, BASE + 0x2000);
    put_descriptor(&memory, table, 0, indirect, 16, INDIRECT, 0);
    put_descriptor(&memory, indirect, 0, indirect, 16, INDIRECT, 0);
    publish(&memory, driver_area, 0);
    let mut queue = DeviceQueue::new(4, table, driver_area, BASE + 0x3000, false);
    assert_eq!(queue.pop_available(&memory), Err(ChainError::BadIndirect));
}

proptest! {
    /// Chains added and completed in any order keep the free list whole:
    /// every token comes back once and all descriptors are free at the end.
    #[test]
    fn completions_in_any_order_keep_the_queue_consistent(
        lengths in proptest::collection::vec(1usize..6, 1..40),
        order_seed in any::<u64>(),
        is_indirect in any::<bool>(),
    ) {
        let mut pair = pair(16, is_indirect, true);
        let buffer = pair.memory.allocate(64);
        let mut in_flight: Vec<(u16, Vec<Segment>)> = Vec::new();
        let mut seed = order_seed;
        for length in lengths {
            let buffers: Vec<Buffer> = (0..length)
                .map(|index| Buffer {
                    address: buffer.physical_address() + index as u64,
                    length: 4,
                    is_device_writable: index + 1 == length,
                })
                .collect();
            while !pair.driver.can_add(buffers.len()) {
                let position = (seed % in_flight.len() as u64) as usize;
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let (head, _) = in_flight.swap_remove(position);
                pair.device.push_used(&pair.memory, head, 4).expect("in memory");
                let used = pair.driver.pop_used().expect("valid").expect("one used");
                prop_assert_eq!(used, Used { token: head, written_bytes: 4 });
            }
            let token = pair.driver.add(&buffers).expect("room was made");
            prop_assert!(in_flight.iter().all(|(head, _)| *head != token));
            let chain = pair.device.pop_available(&pair.memory).expect("valid").expect("a chain");
            prop_assert_eq!(chain.head, token);
            prop_assert_eq!(chain.segments.len(), length);
            in_flight.push((chain.head, chain.segments));
        }
        for (head, _) in in_flight.drain(..) {
            pair.device.push_used(&pair.memory, head, 0).expect("in memory");
            pair.driver.pop_used().expect("valid").expect("one used");
        }
        prop_assert_eq!(pair.driver.free_descriptors(), 16);
    }
}
