//! The primitives under real concurrency: host threads, parked and
//! unparked through `std::thread`.

extern crate std;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::*;

struct HostThread(thread::Thread);

impl Waker for HostThread {
    fn wake(&self) {
        self.0.unpark();
    }
}

struct HostScheduler;

impl Scheduler for HostScheduler {
    fn current(&self) -> Arc<dyn Waker> {
        Arc::new(HostThread(thread::current()))
    }

    fn park(&self) {
        thread::park();
    }
}

static HOST: HostScheduler = HostScheduler;

fn setup() {
    install(&HOST);
}

#[test]
fn a_mutex_excludes_and_wakes_waiters() {
    setup();
    let counter = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || {
                for _ in 0..2_000 {
                    let mut value = counter.lock();
                    let read = *value;
                    thread::yield_now();
                    *value = read + 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(*counter.lock(), 16_000);
}

#[test]
fn a_condition_variable_hands_items_over() {
    setup();
    let queue = Arc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
    let consumed = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (queue, consumed) = (queue.clone(), consumed.clone());
            thread::spawn(move || {
                loop {
                    let (items, ready) = &*queue;
                    let mut items = items.lock();
                    while items.is_empty() {
                        items = ready.wait(items);
                    }
                    let item = items.pop().unwrap();
                    if item == u32::MAX {
                        return;
                    }
                    consumed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for item in 0..1_000 {
        queue.0.lock().push(item);
        queue.1.notify_one();
    }
    while consumed.load(Ordering::Relaxed) < 1_000 {
        thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..3 {
        queue.0.lock().push(u32::MAX);
        queue.1.notify_all();
    }
    for consumer in consumers {
        consumer.join().unwrap();
    }
    assert_eq!(consumed.load(Ordering::Relaxed), 1_000);
}

#[test]
fn a_wait_queue_wakes_everyone_waiting_for_a_change() {
    setup();
    let queue = Arc::new(WaitQueue::new());
    let flag = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (queue, flag) = (queue.clone(), flag.clone());
            thread::spawn(move || queue.wait_until(|| (flag.load(Ordering::Acquire) == 1).then_some(7)))
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    flag.store(1, Ordering::Release);
    queue.wake_all();
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap(), 7);
    }
    assert!(!queue.wake_one(), "nobody waits any more");
}
