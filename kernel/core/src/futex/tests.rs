use super::*;
use crate::fake::FakeMachine;
use crate::machine::Rights;

const WORD: u64 = 0x10_0000;

fn machine() -> FakeMachine {
    let machine = FakeMachine::new();
    machine.map_page(WORD, Rights::READ_WRITE).unwrap();
    machine
}

#[test]
fn wait_checks_the_value_and_times_out() {
    let machine = machine();
    let table = FutexTable::new();
    machine.write_memory(WORD, &5u32.to_le_bytes()).unwrap();
    assert_eq!(table.wait(&machine, WORD, 4, MATCH_ANY, None, &|| false), Err(Errno::EAGAIN));
    assert_eq!(table.wait(&machine, WORD, 5, MATCH_ANY, Some(1_000), &|| false), Err(Errno::ETIMEDOUT));
    assert_eq!(table.wait(&machine, WORD + 1, 5, MATCH_ANY, None, &|| false), Err(Errno::EINVAL));
    assert_eq!(table.wait(&machine, 0x9000_0000, 5, MATCH_ANY, None, &|| false), Err(Errno::EFAULT));
    assert!(table.waiters.lock().is_empty(), "timed-out waiters leave the table");
}

#[test]
fn a_stop_request_interrupts_a_wait() {
    let machine = machine();
    machine.current.request_exit();
    let table = FutexTable::new();
    assert_eq!(table.wait(&machine, WORD, 0, MATCH_ANY, None, &|| false), Err(Errno::EINTR));
}

fn waiter(bitset: u32) -> (Arc<FakeThreadHandle>, Arc<Waiter>) {
    let thread = Arc::new(FakeThreadHandle::default());
    let waiter = Arc::new(Waiter { thread: thread.clone(), bitset, is_woken: AtomicBool::new(false) });
    (thread, waiter)
}

type FakeThreadHandle = crate::fake::FakeThread;

#[test]
fn wake_takes_waiters_in_order_and_honours_bitsets() {
    let table = FutexTable::new();
    let (first, first_waiter) = waiter(0b01);
    let (second, second_waiter) = waiter(0b10);
    let (third, third_waiter) = waiter(MATCH_ANY);
    table.waiters.lock().entry(WORD).or_default().extend([first_waiter.clone(), second_waiter, third_waiter]);
    assert_eq!(table.wake(WORD, 10, 0b10).unwrap(), 2);
    assert_eq!(second.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(third.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(first.wakes.load(Ordering::Relaxed), 0);
    assert_eq!(table.wake(WORD, 1, MATCH_ANY).unwrap(), 1);
    assert!(first_waiter.is_woken.load(Ordering::Relaxed));
    assert_eq!(table.wake(WORD, 1, MATCH_ANY).unwrap(), 0);
    assert_eq!(table.wake(WORD, 1, 0), Err(Errno::EINVAL));
}

#[test]
fn a_wake_of_zero_waiters_wakes_one_as_on_linux() {
    let table = FutexTable::new();
    assert_eq!(table.wake(WORD, 0, MATCH_ANY).unwrap(), 0);
    let waiters: Vec<_> = (0..2).map(|_| waiter(MATCH_ANY)).collect();
    table.waiters.lock().entry(WORD).or_default().extend(waiters.iter().map(|(_, waiter)| waiter.clone()));
    assert_eq!(table.wake(WORD, 0, MATCH_ANY).unwrap(), 1);
    assert_eq!(waiters[0].0.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(waiters[1].0.wakes.load(Ordering::Relaxed), 0);
}

#[test]
fn requeue_moves_the_rest_after_checking_the_value() {
    let machine = machine();
    let table = FutexTable::new();
    let waiters: Vec<_> = (0..4).map(|_| waiter(MATCH_ANY)).collect();
    table.waiters.lock().entry(WORD).or_default().extend(waiters.iter().map(|(_, waiter)| waiter.clone()));
    machine.write_memory(WORD, &7u32.to_le_bytes()).unwrap();
    assert_eq!(table.requeue(&machine, WORD, WORD + 4, 1, 2, Some(8)), Err(Errno::EAGAIN));
    assert_eq!(table.requeue(&machine, WORD, WORD + 4, 1, 2, Some(7)).unwrap(), 3);
    assert_eq!(waiters[0].0.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(table.waiters.lock().get(&(WORD + 4)).map(VecDeque::len), Some(2));
    assert_eq!(table.waiters.lock().get(&WORD).map(VecDeque::len), Some(1));
}

#[test]
fn wake_op_applies_the_operation_and_compares_the_old_value() {
    let machine = machine();
    let table = FutexTable::new();
    let (first, first_waiter) = waiter(MATCH_ANY);
    let (second, second_waiter) = waiter(MATCH_ANY);
    table.waiters.lock().entry(WORD).or_default().push_back(first_waiter);
    table.waiters.lock().entry(WORD + 4).or_default().push_back(second_waiter);
    machine.write_memory(WORD + 4, &1u32.to_le_bytes()).unwrap();
    // FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_GT, 0): old 1 > 0 holds.
    let operation = (1 << 28) | (4 << 24) | (2 << 12);
    assert_eq!(table.wake_op(&machine, WORD, WORD + 4, 1, 1, operation).unwrap(), 2);
    assert_eq!(machine.load_u32(WORD + 4).unwrap(), 3);
    assert_eq!(first.wakes.load(Ordering::Relaxed), 1);
    assert_eq!(second.wakes.load(Ordering::Relaxed), 1);
    // FUTEX_OP(FUTEX_OP_SET with shift, 4, FUTEX_OP_CMP_EQ, 0): 1 << 4, old 3 == 0 fails.
    let shifted = (1 << 31) | (4 << 12);
    assert_eq!(table.wake_op(&machine, WORD, WORD + 4, 1, 1, shifted).unwrap(), 0);
    assert_eq!(machine.load_u32(WORD + 4).unwrap(), 16);
}
