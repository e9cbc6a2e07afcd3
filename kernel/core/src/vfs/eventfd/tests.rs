use super::*;
use crate::fake::FakeMachine;
use crate::process::Thread;

fn value(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

#[test]
fn reads_take_the_whole_count_and_writes_add_to_it() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let counter = EventCounter::new(3, false);
    assert_eq!(counter.poll(), events::POLLIN | events::POLLOUT);
    assert_eq!(counter.write(&caller, &4u64.to_le_bytes(), true), Ok(8));
    let mut buffer = [0u8; 16];
    assert_eq!(counter.read(&caller, &mut buffer, true), Ok(8), "at most 8 bytes, whatever the buffer");
    assert_eq!(value(&buffer), 7);
    assert_eq!(counter.poll(), events::POLLOUT);
    assert_eq!(counter.read(&caller, &mut buffer, true), Err(FsError::WouldBlock));
    assert_eq!(counter.write(&caller, &0u64.to_le_bytes(), true), Ok(8), "adding zero is a write");
    assert_eq!(counter.read(&caller, &mut buffer, true), Err(FsError::WouldBlock));
    assert_eq!(counter.name(), "anon_inode:[eventfd]");
}

#[test]
fn semaphores_hand_out_one_at_a_time() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let counter = EventCounter::new(2, true);
    let mut buffer = [0u8; 8];
    for _ in 0..2 {
        assert_eq!(counter.read(&caller, &mut buffer, true), Ok(8));
        assert_eq!(value(&buffer), 1);
    }
    assert_eq!(counter.read(&caller, &mut buffer, true), Err(FsError::WouldBlock));
}

#[test]
fn short_buffers_and_the_largest_value_are_refused() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let counter = EventCounter::new(1, false);
    assert_eq!(counter.read(&caller, &mut [0u8; 7], true), Err(FsError::InvalidArgument));
    assert_eq!(counter.read(&caller, &mut [], false), Err(FsError::InvalidArgument));
    assert_eq!(counter.write(&caller, &[1u8; 4], true), Err(FsError::InvalidArgument));
    assert_eq!(counter.write(&caller, &u64::MAX.to_le_bytes(), true), Err(FsError::InvalidArgument));
    assert_eq!(counter.count(), 1);
}

#[test]
fn writes_stop_below_the_largest_count() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let counter = EventCounter::new(0, false);
    assert_eq!(counter.write(&caller, &(COUNTER_MAX - 1).to_le_bytes(), true), Ok(8));
    assert_eq!(counter.poll(), events::POLLIN | events::POLLOUT, "one more fits");
    assert_eq!(counter.write(&caller, &2u64.to_le_bytes(), true), Err(FsError::WouldBlock));
    assert_eq!(counter.write(&caller, &1u64.to_le_bytes(), true), Ok(8));
    assert_eq!(counter.count(), COUNTER_MAX);
    assert_eq!(counter.poll(), events::POLLIN, "full: not writable");
    assert_eq!(counter.write(&caller, &1u64.to_le_bytes(), true), Err(FsError::WouldBlock));
}

#[test]
fn a_blocked_read_waits_for_a_write_from_another_thread() {
    let machine = FakeMachine::new();
    let counter = EventCounter::new(0, false);
    let before = counter.generation();
    let received = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let caller = Caller::kernel(&machine);
            let mut buffer = [0u8; 8];
            counter.read(&caller, &mut buffer, false).map(|_| value(&buffer))
        });
        while counter.waiters().is_empty() {
            std::thread::yield_now();
        }
        let caller = Caller::kernel(&machine);
        assert_eq!(counter.write(&caller, &42u64.to_le_bytes(), false), Ok(8));
        reader.join().unwrap()
    });
    assert_eq!(received, Ok(42));
    assert!(counter.generation() >= before + 2, "the write and the read are changes");
    assert!(counter.waiters().is_empty(), "the reader left the list");
}

#[test]
fn a_signal_interrupts_a_blocked_read() {
    let machine = FakeMachine::new();
    let thread = Thread::new(7);
    thread.state.lock().pending.add(10, crate::signal::SignalInfo::kernel(), None, true);
    let caller =
        Caller { machine: &machine, process: None, thread: Some(&thread), acting_as: None, scope: None };
    let counter = EventCounter::new(0, false);
    assert_eq!(counter.read(&caller, &mut [0u8; 8], false), Err(FsError::Interrupted));
    assert!(counter.waiters().is_empty());
    let full = EventCounter::new(COUNTER_MAX, false);
    assert_eq!(full.write(&caller, &1u64.to_le_bytes(), false), Err(FsError::Interrupted));
}
