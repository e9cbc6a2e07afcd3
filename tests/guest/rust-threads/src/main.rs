//! Checks Rust's threads and synchronisation: spawning and joining, named
//! threads, channels, `Arc<Mutex>`, `RwLock`, `Condvar`, `Barrier`,
//! `OnceLock`, parking, thread-locals, scoped threads and sleeping. The
//! optional argument is the number of CPUs the machine has. Prints one line
//! per check ("ok <name>" or "FAIL <name>: <why>"; timing checks append the
//! measured value) and exits with the number of failed checks.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

/// How late a timed wait or sleep may end: generous for slow emulation.
const TOLERANCE: Duration = Duration::from_millis(500);

struct Checks {
    failures: i32,
}

impl Checks {
    fn check(&mut self, passed: bool, name: &str, why: impl FnOnce() -> String) {
        if passed {
            println!("ok {name}");
        } else {
            println!("FAIL {name}: {}", why());
            self.failures += 1;
        }
    }

    /// Like `check`, but also prints the measurement when the check passes.
    fn measured(&mut self, passed: bool, name: &str, measurement: String) {
        println!(
            "{} {name}: {measurement}",
            if passed { "ok" } else { "FAIL" }
        );
        if !passed {
            self.failures += 1;
        }
    }

    /// Checks that a wait of `timeout` ended on time.
    fn timed(&mut self, passed: bool, name: &str, timeout: Duration, elapsed: Duration) {
        let on_time = elapsed >= timeout && elapsed < timeout + TOLERANCE;
        self.measured(
            passed && on_time,
            name,
            format!("waited {:.1} ms", milliseconds(elapsed)),
        );
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn spawn_and_join(checks: &mut Checks) {
    let handles: Vec<_> = (0..8u64)
        .map(|i| thread::spawn(move || (1..=i * 1000).sum::<u64>()))
        .collect();
    let results: Vec<u64> = handles
        .into_iter()
        .map(|handle| handle.join().unwrap_or(0))
        .collect();
    let expected: Vec<u64> = (0..8u64).map(|i| i * 1000 * (i * 1000 + 1) / 2).collect();
    checks.check(
        results == expected,
        "join returns each thread's result",
        || format!("{results:?}"),
    );

    let main_id = thread::current().id();
    let ids: Vec<_> = (0..8)
        .map(|_| thread::spawn(|| thread::current().id()))
        .collect();
    let ids: Vec<_> = ids
        .into_iter()
        .filter_map(|handle| handle.join().ok())
        .collect();
    let distinct = ids
        .iter()
        .enumerate()
        .all(|(i, id)| *id != main_id && !ids[..i].contains(id));
    checks.check(
        ids.len() == 8 && distinct,
        "threads have distinct ids",
        || "two threads share an id".into(),
    );

    let named = thread::Builder::new()
        .name("worker-3".into())
        .stack_size(256 * 1024)
        .spawn(|| {
            // Use some of the requested stack.
            let buffer = std::hint::black_box([7u8; 64 * 1024]);
            (
                thread::current().name().map(String::from),
                buffer.iter().map(|&b| b as u32).sum::<u32>(),
            )
        })
        .map(|handle| handle.join());
    let passed = matches!(&named, Ok(Ok((Some(name), 458752))) if name == "worker-3");
    checks.check(passed, "a named thread with a 256 KiB stack", || {
        format!("{named:?}")
    });
}

fn channels(checks: &mut Checks) {
    const PRODUCERS: usize = 4;
    const ITEMS: usize = 1000;
    let (sender, receiver) = mpsc::channel();
    for producer in 0..PRODUCERS {
        let sender = sender.clone();
        thread::spawn(move || {
            for item in 0..ITEMS {
                sender.send(producer * ITEMS + item).unwrap();
            }
        });
    }
    drop(sender);
    let mut seen = vec![0u32; PRODUCERS * ITEMS];
    // Ends when every producer has dropped its sender.
    for item in receiver.iter() {
        seen[item] += 1;
    }
    let once = seen.iter().filter(|&&count| count == 1).count();
    checks.check(
        once == PRODUCERS * ITEMS,
        "mpsc channel: 4 senders, every item received once",
        || {
            format!(
                "{once} of {} items received exactly once",
                PRODUCERS * ITEMS
            )
        },
    );

    let (sender, receiver) = mpsc::sync_channel(2);
    let producer = thread::spawn(move || {
        for item in 0..500u32 {
            sender.send(item).unwrap();
        }
    });
    let received: Vec<u32> = receiver.iter().collect();
    let joined = producer.join().is_ok();
    checks.check(
        joined && received == (0..500).collect::<Vec<_>>(),
        "sync_channel of 2 keeps the order",
        || format!("received {} items", received.len()),
    );

    let (_sender, receiver) = mpsc::channel::<u32>();
    let start = Instant::now();
    let result = receiver.recv_timeout(Duration::from_millis(50));
    let elapsed = start.elapsed();
    checks.timed(
        result == Err(RecvTimeoutError::Timeout),
        "recv_timeout on an empty channel times out after 50 ms",
        Duration::from_millis(50),
        elapsed,
    );
}

fn locks(checks: &mut Checks) {
    const THREADS: usize = 16;
    const ROUNDS: u64 = 2000;
    let counter = Arc::new(Mutex::new(0u64));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (counter, barrier) = (Arc::clone(&counter), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for i in 0..ROUNDS {
                    let mut guard = counter.lock().unwrap();
                    let value = *guard;
                    if i % 64 == 0 {
                        thread::yield_now(); // let others find it held
                    }
                    *guard = value + 1;
                }
            })
        })
        .collect();
    let joined = handles.into_iter().all(|handle| handle.join().is_ok());
    let total = *counter.lock().unwrap();
    checks.check(
        joined && total == THREADS as u64 * ROUNDS,
        "Arc<Mutex> counter incremented by 16 threads",
        || format!("counter is {total}, expected {}", THREADS as u64 * ROUNDS),
    );

    // Writers keep both halves equal; readers must never see them differ.
    let pair = Arc::new(RwLock::new((0u64, 0u64)));
    let torn = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (pair, torn) = (Arc::clone(&pair), Arc::clone(&torn));
            thread::spawn(move || {
                for _ in 0..1000 {
                    if i % 2 == 0 {
                        let mut guard = pair.write().unwrap();
                        guard.0 += 1;
                        thread::yield_now();
                        guard.1 += 1;
                    } else {
                        let guard = pair.read().unwrap();
                        if guard.0 != guard.1 {
                            torn.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let joined = handles.into_iter().all(|handle| handle.join().is_ok());
    let final_pair = *pair.read().unwrap();
    checks.check(
        joined && torn.load(Ordering::Relaxed) == 0 && final_pair == (4000, 4000),
        "RwLock with 4 writers and 4 readers",
        || {
            format!(
                "{} torn reads, final {final_pair:?}",
                torn.load(Ordering::Relaxed)
            )
        },
    );

    let initialisations = Arc::new(AtomicUsize::new(0));
    let cell = Arc::new(OnceLock::new());
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (initialisations, cell, barrier) =
                (initialisations.clone(), cell.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                *cell.get_or_init(|| {
                    initialisations.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(5));
                    i
                })
            })
        })
        .collect();
    let values: Vec<_> = handles
        .into_iter()
        .filter_map(|handle| handle.join().ok())
        .collect();
    let once = initialisations.load(Ordering::SeqCst) == 1 && values.len() == 8;
    checks.check(
        once && values.iter().all(|value| Some(value) == cell.get()),
        "OnceLock initialised once",
        || {
            format!(
                "{} initialisations, values {values:?}",
                initialisations.load(Ordering::SeqCst)
            )
        },
    );
}

fn condition_variables(checks: &mut Checks) {
    const PRODUCERS: usize = 3;
    const CONSUMERS: usize = 3;
    const ITEMS: usize = 1000;
    const CAPACITY: usize = 4;
    struct Queue {
        items: VecDeque<usize>,
        closed: bool,
    }
    let state = Arc::new((
        Mutex::new(Queue {
            items: VecDeque::new(),
            closed: false,
        }),
        Condvar::new(),
        Condvar::new(),
    ));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let (lock, not_empty, not_full) = &*state;
                for item in 0..ITEMS {
                    let mut queue = not_full
                        .wait_while(lock.lock().unwrap(), |q| q.items.len() == CAPACITY)
                        .unwrap();
                    queue.items.push_back(producer * ITEMS + item);
                    not_empty.notify_one();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let (lock, not_empty, not_full) = &*state;
                let mut taken = Vec::new();
                loop {
                    let mut queue = not_empty
                        .wait_while(lock.lock().unwrap(), |q| q.items.is_empty() && !q.closed)
                        .unwrap();
                    match queue.items.pop_front() {
                        Some(item) => taken.push(item),
                        None => return taken,
                    }
                    not_full.notify_one();
                }
            })
        })
        .collect();
    let produced = producers.into_iter().all(|handle| handle.join().is_ok());
    state.0.lock().unwrap().closed = true;
    state.1.notify_all();
    let mut seen = vec![0u32; PRODUCERS * ITEMS];
    for consumer in consumers {
        for item in consumer.join().unwrap_or_default() {
            seen[item] += 1;
        }
    }
    let once = seen.iter().filter(|&&count| count == 1).count();
    checks.check(
        produced && once == PRODUCERS * ITEMS,
        "Condvar: 3 producers, 3 consumers, every item consumed once",
        || {
            format!(
                "{once} of {} items consumed exactly once",
                PRODUCERS * ITEMS
            )
        },
    );

    let pair = (Mutex::new(()), Condvar::new());
    let start = Instant::now();
    let (_guard, result) = pair
        .1
        .wait_timeout_while(pair.0.lock().unwrap(), Duration::from_millis(50), |_| true)
        .unwrap();
    let elapsed = start.elapsed();
    checks.timed(
        result.timed_out(),
        "Condvar wait_timeout times out after 50 ms",
        Duration::from_millis(50),
        elapsed,
    );
}

fn barrier(checks: &mut Checks) {
    const THREADS: usize = 8;
    const ROUNDS: usize = 20;
    let barrier = Arc::new(Barrier::new(THREADS));
    let slots: Arc<Vec<AtomicUsize>> =
        Arc::new((0..THREADS).map(|_| AtomicUsize::new(usize::MAX)).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|index| {
            let (barrier, slots) = (Arc::clone(&barrier), Arc::clone(&slots));
            thread::spawn(move || {
                let (mut leaders, mut errors) = (vec![0usize; ROUNDS], 0);
                for (round, leader) in leaders.iter_mut().enumerate() {
                    slots[index].store(round, Ordering::Relaxed);
                    if barrier.wait().is_leader() {
                        *leader += 1;
                    }
                    errors += slots
                        .iter()
                        .filter(|slot| slot.load(Ordering::Relaxed) != round)
                        .count();
                    barrier.wait(); // nobody starts the next round before everyone has looked
                }
                (leaders, errors)
            })
        })
        .collect();
    let (mut leaders, mut errors, mut joined) = (vec![0usize; ROUNDS], 0, 0);
    for handle in handles {
        if let Ok((thread_leaders, thread_errors)) = handle.join() {
            joined += 1;
            errors += thread_errors;
            leaders
                .iter_mut()
                .zip(thread_leaders)
                .for_each(|(total, count)| *total += count);
        }
    }
    checks.check(
        joined == THREADS && errors == 0,
        "Barrier keeps 8 threads in step for 20 rounds",
        || format!("{errors} threads passed early"),
    );
    checks.check(
        leaders.iter().all(|&count| count == 1),
        "Barrier names one leader per round",
        || format!("leaders per round {leaders:?}"),
    );
}

fn parking(checks: &mut Checks) {
    let flag = Arc::new(AtomicBool::new(false));
    let parker = {
        let flag = Arc::clone(&flag);
        thread::spawn(move || {
            let start = Instant::now();
            while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(5) {
                thread::park_timeout(Duration::from_secs(5));
            }
            flag.load(Ordering::Acquire)
        })
    };
    thread::sleep(Duration::from_millis(20));
    let start = Instant::now();
    flag.store(true, Ordering::Release);
    parker.thread().unpark();
    let woke = parker.join().unwrap_or(false);
    let elapsed = start.elapsed();
    checks.check(
        woke && elapsed < TOLERANCE,
        "unpark wakes a parked thread",
        || format!("woke {woke} after {:.1} ms", milliseconds(elapsed)),
    );
}

thread_local! {
    static LOCAL: Cell<u32> = const { Cell::new(42) };
}

fn thread_locals(checks: &mut Checks) {
    LOCAL.with(|local| local.set(7));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8u32)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let initial = LOCAL.with(Cell::get);
                LOCAL.with(|local| local.set(1000 + i));
                barrier.wait(); // every thread has written its own value
                thread::sleep(Duration::from_millis(1));
                (initial, LOCAL.with(Cell::get) == 1000 + i)
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .filter_map(|handle| handle.join().ok())
        .collect();
    checks.check(
        results.len() == 8 && results.iter().all(|&(initial, _)| initial == 42),
        "thread_local starts at its initial value",
        || format!("{results:?}"),
    );
    checks.check(
        results.iter().all(|&(_, kept)| kept),
        "thread_local values are per thread",
        || format!("{results:?}"),
    );
    let main_value = LOCAL.with(Cell::get);
    checks.check(
        main_value == 7,
        "the main thread's thread_local value is untouched",
        || format!("it is {main_value}"),
    );
}

fn scoped(checks: &mut Checks) {
    let mut numbers: Vec<u64> = (1..=100_000).collect();
    let chunk = numbers.len() / 8;
    let sums: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = numbers
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().sum::<u64>()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(0))
            .collect()
    });
    let total: u64 = sums.iter().sum();
    checks.check(
        total == 5_000_050_000,
        "scoped threads sum borrowed chunks",
        || format!("sum is {total}"),
    );

    thread::scope(|scope| {
        for part in numbers.chunks_mut(chunk) {
            scope.spawn(move || part.iter_mut().for_each(|number| *number *= 2));
        }
    });
    let doubled = numbers
        .iter()
        .enumerate()
        .all(|(i, &number)| number == 2 * (i as u64 + 1));
    checks.check(doubled, "scoped threads modify borrowed chunks", || {
        "wrong values".into()
    });
}

fn sleeping(checks: &mut Checks) {
    let start = Instant::now();
    thread::sleep(Duration::from_millis(20));
    let elapsed = start.elapsed();
    checks.timed(
        true,
        "thread::sleep 20 ms",
        Duration::from_millis(20),
        elapsed,
    );

    // A spinning thread must not keep the sleeping main thread from waking.
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut spins = 0u64;
            while !stop.load(Ordering::Relaxed) && spins < 1 << 32 {
                spins = std::hint::black_box(spins + 1);
            }
            spins
        })
    };
    let start = Instant::now();
    thread::sleep(Duration::from_millis(50));
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let spins = spinner.join().unwrap_or(0);
    checks.timed(
        spins > 0 && spins < 1 << 32,
        "thread::sleep 50 ms beside a spinning thread",
        Duration::from_millis(50),
        elapsed,
    );
}

fn parallelism(checks: &mut Checks, ncpu: Option<usize>) {
    let available = thread::available_parallelism().map(usize::from);
    match ncpu {
        Some(ncpu) => checks.check(
            available.as_ref().ok() == Some(&ncpu),
            &format!("available_parallelism reports {ncpu} CPUs"),
            || format!("{available:?}"),
        ),
        None => checks.check(available.is_ok(), "available_parallelism", || {
            format!("{available:?}")
        }),
    }
}

fn main() {
    let ncpu = std::env::args()
        .nth(1)
        .and_then(|argument| argument.parse().ok());
    let mut checks = Checks { failures: 0 };
    spawn_and_join(&mut checks);
    channels(&mut checks);
    locks(&mut checks);
    condition_variables(&mut checks);
    barrier(&mut checks);
    parking(&mut checks);
    thread_locals(&mut checks);
    scoped(&mut checks);
    sleeping(&mut checks);
    parallelism(&mut checks, ncpu);
    println!("{} checks failed", checks.failures);
    std::process::exit(checks.failures);
}
