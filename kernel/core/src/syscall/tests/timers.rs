//! POSIX timers, interval timers, alarm and timerfds, with the fake clock
//! moved by hand and the due timers expired as the service thread would.

use super::*;

const SIGALRM: u64 = 14;
const SIGRTMIN: u64 = 34;
const DATA: u64 = BUFFER + 0x1000;
const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

fn bit(signal: u64) -> u64 {
    1 << (signal - 1)
}

fn block(machine: &FakeMachine, process: &Process, set: u64) {
    machine.write_memory(DATA, &set.to_le_bytes()).unwrap();
    assert_eq!(call(machine, process, nr::RT_SIGPROCMASK, [0, DATA, 0, 8, 0, 0]), 0);
}

/// Moves the clock by `ns` and expires what is due.
fn advance(machine: &FakeMachine, process: &Process, ns: u64) {
    machine.now_ns.fetch_add(ns, core::sync::atomic::Ordering::Relaxed);
    process.timers.run_due(machine, process);
}

/// Takes a pending signal in `set`: (signal, si_overrun, si_value).
fn take(machine: &FakeMachine, process: &Process, set: u64) -> (i64, i32, u64) {
    machine.write_memory(DATA, &set.to_le_bytes()).unwrap();
    machine.write_memory(DATA + 0x80, &[0u8; 16]).unwrap();
    let signal = call(machine, process, nr::RT_SIGTIMEDWAIT, [DATA, DATA + 0x200, DATA + 0x80, 8, 0, 0]);
    let overrun = read_u64(machine, DATA + 0x200 + 16) >> 32;
    (signal, overrun as u32 as i32, read_u64(machine, DATA + 0x200 + 24))
}

fn itimerspec(machine: &FakeMachine, address: u64, interval_ns: u64, value_ns: u64) {
    let mut bytes = alloc::vec::Vec::new();
    for ns in [interval_ns, value_ns] {
        bytes.extend_from_slice(&(ns / SECOND).to_le_bytes());
        bytes.extend_from_slice(&(ns % SECOND).to_le_bytes());
    }
    machine.write_memory(address, &bytes).unwrap();
}

/// The (interval, value) of the `itimerspec` at `address`, in nanoseconds.
fn read_itimerspec(machine: &FakeMachine, address: u64) -> (u64, u64) {
    let ns = |at: u64| read_u64(machine, at) * SECOND + read_u64(machine, at + 8);
    (ns(address), ns(address + 16))
}

/// A timer on `clock` sending `signal` with value `value`; its id.
fn create(machine: &FakeMachine, process: &Process, clock: u64, signal: u64, value: u64) -> i64 {
    let mut event = [0u8; 64];
    event[..8].copy_from_slice(&value.to_le_bytes());
    event[8..12].copy_from_slice(&(signal as u32).to_le_bytes());
    machine.write_memory(DATA + 0x300, &event).unwrap();
    assert_eq!(call(machine, process, nr::TIMER_CREATE, [clock, DATA + 0x300, DATA + 0x380, 0, 0, 0]), 0);
    read_u64(machine, DATA + 0x380) as u32 as i64
}

#[test]
fn a_periodic_timer_signals_once_and_counts_overruns_while_pending() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGRTMIN));
    let id = create(&machine, &process, 1, SIGRTMIN, 77);
    itimerspec(&machine, DATA + 0x400, 10 * MS, 10 * MS);
    assert_eq!(call(&machine, &process, nr::TIMER_SETTIME, [id as u64, 0, DATA + 0x400, 0, 0, 0]), 0);
    advance(&machine, &process, 5 * MS);
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)).0, Errno::EAGAIN.to_return(), "not due yet");
    advance(&machine, &process, 6 * MS);
    // Three more expirations, one of them missed in one step, while pending.
    advance(&machine, &process, 10 * MS);
    advance(&machine, &process, 20 * MS);
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)), (SIGRTMIN as i64, 3, 77));
    assert_eq!(call(&machine, &process, nr::TIMER_GETOVERRUN, [id as u64, 0, 0, 0, 0, 0]), 3);
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)).0, Errno::EAGAIN.to_return(), "one instance only");
    assert_eq!(call(&machine, &process, nr::TIMER_GETTIME, [id as u64, DATA + 0x400, 0, 0, 0, 0]), 0);
    assert_eq!(read_itimerspec(&machine, DATA + 0x400), (10 * MS, 9 * MS));
    advance(&machine, &process, 9 * MS);
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)), (SIGRTMIN as i64, 0, 77));
    // Deleted, it sends no more and its id is gone.
    advance(&machine, &process, 10 * MS);
    assert_eq!(call(&machine, &process, nr::TIMER_DELETE, [id as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        take(&machine, &process, bit(SIGRTMIN)).0,
        Errno::EAGAIN.to_return(),
        "dropped with its timer"
    );
    assert_eq!(
        call(&machine, &process, nr::TIMER_DELETE, [id as u64, 0, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(process.timers.armed(), 0);
}

#[test]
fn timers_check_clocks_events_and_settings() {
    let (machine, process) = setup();
    let create_on = |clock: u64, event: u64| {
        call(&machine, &process, nr::TIMER_CREATE, [clock, event, DATA + 0x380, 0, 0, 0])
    };
    assert_eq!(create_on(4, 0), Errno::EOPNOTSUPP.to_return(), "CLOCK_MONOTONIC_RAW has no timers");
    assert_eq!(create_on(10, 0), Errno::EINVAL.to_return());
    let mut event = [0u8; 64];
    event[8..12].copy_from_slice(&65u32.to_le_bytes());
    machine.write_memory(DATA + 0x300, &event).unwrap();
    assert_eq!(create_on(0, DATA + 0x300), Errno::EINVAL.to_return(), "signal 65");
    event[8..12].copy_from_slice(&10u32.to_le_bytes());
    event[12..16].copy_from_slice(&4u32.to_le_bytes());
    event[16..20].copy_from_slice(&999u32.to_le_bytes());
    machine.write_memory(DATA + 0x300, &event).unwrap();
    assert_eq!(create_on(0, DATA + 0x300), Errno::EINVAL.to_return(), "no thread 999");
    // Without an event: SIGALRM with the timer's id as its value.
    block(&machine, &process, bit(SIGALRM));
    assert_eq!(create_on(2, 0), 0);
    let first = read_u64(&machine, DATA + 0x380) as u32;
    assert_eq!(create_on(0, 0), 0);
    let id = read_u64(&machine, DATA + 0x380) as u32;
    assert_ne!(first, id);
    itimerspec(&machine, DATA + 0x400, 0, SECOND);
    machine.write_memory(DATA + 0x408, &SECOND.to_le_bytes()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::TIMER_SETTIME, [u64::from(id), 0, DATA + 0x400, 0, 0, 0]),
        Errno::EINVAL.to_return(),
        "nanoseconds out of range"
    );
    // An absolute expiry on the wall clock, the previous setting written back.
    let wall = machine.realtime_ns();
    itimerspec(&machine, DATA + 0x400, 0, wall + 2 * SECOND);
    assert_eq!(
        call(&machine, &process, nr::TIMER_SETTIME, [u64::from(id), 1, DATA + 0x400, DATA + 0x440, 0, 0]),
        0
    );
    assert_eq!(read_itimerspec(&machine, DATA + 0x440), (0, 0));
    advance(&machine, &process, SECOND);
    assert_eq!(take(&machine, &process, bit(SIGALRM)).0, Errno::EAGAIN.to_return());
    advance(&machine, &process, SECOND);
    assert_eq!(take(&machine, &process, bit(SIGALRM)), (SIGALRM as i64, 0, u64::from(id)));
    assert_eq!(call(&machine, &process, nr::TIMER_GETTIME, [u64::from(id), DATA + 0x400, 0, 0, 0, 0]), 0);
    assert_eq!(read_itimerspec(&machine, DATA + 0x400), (0, 0), "a one-shot timer that expired is disarmed");
}

#[test]
fn alarm_and_interval_timers_report_what_was_left() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGALRM));
    assert_eq!(call(&machine, &process, nr::ALARM, [5, 0, 0, 0, 0, 0]), 0);
    advance(&machine, &process, 1_400 * MS);
    assert_eq!(call(&machine, &process, nr::ALARM, [10, 0, 0, 0, 0, 0]), 4, "3.6 s rounds to 4");
    assert_eq!(call(&machine, &process, nr::GETITIMER, [0, DATA + 0x400, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, DATA + 0x400 + 16), 10);
    advance(&machine, &process, 10 * SECOND);
    assert_eq!(take(&machine, &process, bit(SIGALRM)).0, SIGALRM as i64);
    assert_eq!(call(&machine, &process, nr::ALARM, [0, 0, 0, 0, 0, 0]), 0, "nothing left");
    // setitimer: microseconds out of range, and an unknown timer.
    let timeval = [0u64, 0, 1, 1_000_000];
    let bytes: alloc::vec::Vec<u8> = timeval.iter().flat_map(|word| word.to_le_bytes()).collect();
    machine.write_memory(DATA + 0x400, &bytes).unwrap();
    assert_eq!(
        call(&machine, &process, nr::SETITIMER, [0, DATA + 0x400, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(call(&machine, &process, nr::SETITIMER, [3, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    // A periodic ITIMER_REAL: the interval is kept; disarming writes it back.
    let timeval = [0u64, 250_000, 0, 250_000];
    let bytes: alloc::vec::Vec<u8> = timeval.iter().flat_map(|word| word.to_le_bytes()).collect();
    machine.write_memory(DATA + 0x400, &bytes).unwrap();
    assert_eq!(call(&machine, &process, nr::SETITIMER, [0, DATA + 0x400, 0, 0, 0, 0]), 0);
    advance(&machine, &process, 300 * MS);
    assert_eq!(take(&machine, &process, bit(SIGALRM)).0, SIGALRM as i64);
    assert_eq!(call(&machine, &process, nr::SETITIMER, [0, 0, DATA + 0x440, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, DATA + 0x448), 250_000);
    assert_eq!(read_u64(&machine, DATA + 0x458), 200_000);
    assert_eq!(process.timers.armed(), 0);
}

#[test]
fn a_timerfd_counts_expirations_for_its_readers() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::TIMERFD_CREATE, [2, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::TIMERFD_CREATE, [1, 1, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    let fd = call(&machine, &process, nr::TIMERFD_CREATE, [1, 0o4000, 0, 0, 0, 0]) as u64;
    itimerspec(&machine, DATA + 0x400, 100 * MS, 100 * MS);
    assert_eq!(
        call(&machine, &process, nr::TIMERFD_SETTIME, [fd, 4, DATA + 0x400, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::TIMERFD_SETTIME, [1, 0, DATA + 0x400, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(call(&machine, &process, nr::TIMERFD_SETTIME, [fd, 0, DATA + 0x400, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::READ, [fd, DATA, 8, 0, 0, 0]), Errno::EAGAIN.to_return());
    advance(&machine, &process, 350 * MS);
    let mut table = [0u8; 8];
    table[..4].copy_from_slice(&(fd as i32).to_le_bytes());
    table[4..6].copy_from_slice(&1u16.to_le_bytes());
    machine.write_memory(DATA + 0x500, &table).unwrap();
    assert_eq!(call(&machine, &process, nr::POLL, [DATA + 0x500, 1, 0, 0, 0, 0]), 1);
    assert_eq!(call(&machine, &process, nr::READ, [fd, DATA, 4, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::READ, [fd, DATA, 8, 0, 0, 0]), 8);
    assert_eq!(read_u64(&machine, DATA), 3);
    assert_eq!(call(&machine, &process, nr::TIMERFD_GETTIME, [fd, DATA + 0x400, 0, 0, 0, 0]), 0);
    assert_eq!(read_itimerspec(&machine, DATA + 0x400), (100 * MS, 50 * MS));
    // Setting it again clears what was not read.
    advance(&machine, &process, 100 * MS);
    itimerspec(&machine, DATA + 0x400, 0, 0);
    assert_eq!(call(&machine, &process, nr::TIMERFD_SETTIME, [fd, 0, DATA + 0x400, DATA + 0x440, 0, 0]), 0);
    assert_eq!(read_itimerspec(&machine, DATA + 0x440), (100 * MS, 50 * MS));
    assert_eq!(call(&machine, &process, nr::READ, [fd, DATA, 8, 0, 0, 0]), Errno::EAGAIN.to_return());
    assert_eq!(process.timers.armed(), 0);
}

#[test]
fn clock_nanosleep_refuses_clocks_without_timers() {
    let (machine, process) = setup();
    machine.write_memory(DATA, &[0u8; 16]).unwrap();
    assert_eq!(
        call(&machine, &process, nr::CLOCK_NANOSLEEP, [4, 0, DATA, 0, 0, 0]),
        Errno::EOPNOTSUPP.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::CLOCK_NANOSLEEP, [3, 0, DATA, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::CLOCK_NANOSLEEP, [99, 0, DATA, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    // An absolute time already past on the wall clock returns at once.
    assert_eq!(call(&machine, &process, nr::CLOCK_NANOSLEEP, [0, 1, DATA, 0, 0, 0]), 0);
    // The process's processor-time clock, as clock_getcpuclockid names it.
    let process_clock = ((!(process.pid as i32)) << 3 | 2) as u32 as u64;
    assert_eq!(call(&machine, &process, nr::CLOCK_GETTIME, [process_clock, DATA, 0, 0, 0, 0]), 0);
    let invalid_kind = ((!(process.pid as i32)) << 3 | 3) as u32 as u64;
    assert_eq!(
        call(&machine, &process, nr::CLOCK_GETTIME, [invalid_kind, DATA, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
}

#[test]
fn a_timer_of_a_tiny_interval_counts_overruns_without_keeping_the_service_busy() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGRTMIN));
    let id = create(&machine, &process, 1, SIGRTMIN, 1);
    assert_eq!(
        call(&machine, &process, nr::TIMER_SETTIME, [id as u64, 0, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    itimerspec(&machine, DATA + 0x400, 1, 1);
    assert_eq!(call(&machine, &process, nr::TIMER_SETTIME, [id as u64, 0, DATA + 0x400, 0, 0, 0]), 0);
    // One pass expires it once and arms it no sooner than 50 us on.
    advance(&machine, &process, 1_000);
    let next = process.timers.run_due(&machine, &process).unwrap();
    assert!(next >= machine.monotonic_ns() + 50_000);
    advance(&machine, &process, 100_000);
    // 999 expirations after the first, then 100 000 more.
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)), (SIGRTMIN as i64, 100_999, 1));
}

/// Writes a `timespec` of `seconds` and `nanoseconds` at `address`.
fn timespec(machine: &FakeMachine, address: u64, seconds: i64, nanoseconds: i64) {
    let mut bytes = seconds.to_le_bytes().to_vec();
    bytes.extend_from_slice(&nanoseconds.to_le_bytes());
    machine.write_memory(address, &bytes).unwrap();
}

#[test]
fn root_sets_the_wall_clock_and_no_other() {
    let (machine, process) = setup();
    machine.now_ns.store(5 * SECOND, core::sync::atomic::Ordering::Relaxed);
    timespec(&machine, DATA, 1_800_000_000, 500);
    assert_eq!(call(&machine, &process, nr::CLOCK_SETTIME, [0, DATA, 0, 0, 0, 0]), 0);
    assert_eq!(machine.realtime_ns(), 1_800_000_000 * SECOND + 500);
    assert_eq!(machine.monotonic_ns(), 5 * SECOND, "the monotonic clock goes on unchanged");
    // Only the wall clock is settable; processor-time clocks refuse with
    // EPERM, unknown ones with EINVAL.
    for (clock, errno) in
        [(1, Errno::EINVAL), (4, Errno::EINVAL), (7, Errno::EINVAL), (2, Errno::EPERM), (99, Errno::EINVAL)]
    {
        assert_eq!(
            call(&machine, &process, nr::CLOCK_SETTIME, [clock, DATA, 0, 0, 0, 0]),
            errno.to_return(),
            "{clock}"
        );
    }
    // Bad times: nanoseconds past a second, before 1970, before the boot,
    // past Linux's range; a bad address.
    for (seconds, nanoseconds) in [(10, 1_000_000_000), (-1, 0), (1, 0), (9_000_000_000, 0)] {
        timespec(&machine, DATA, seconds, nanoseconds);
        assert_eq!(
            call(&machine, &process, nr::CLOCK_SETTIME, [0, DATA, 0, 0, 0, 0]),
            Errno::EINVAL.to_return(),
            "{seconds}.{nanoseconds}"
        );
    }
    assert_eq!(call(&machine, &process, nr::CLOCK_SETTIME, [0, 8, 0, 0, 0, 0]), Errno::EFAULT.to_return());
    // settimeofday takes microseconds and checks the zone.
    machine.write_memory(DATA, &[1_900_000_000u64.to_le_bytes(), 7u64.to_le_bytes()].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::SETTIMEOFDAY, [DATA, 0, 0, 0, 0, 0]), 0);
    assert_eq!(machine.realtime_ns(), 1_900_000_000 * SECOND + 7_000);
    machine.write_memory(DATA + 0x40, &[(-60i32).to_le_bytes(), 0i32.to_le_bytes()].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::SETTIMEOFDAY, [0, DATA + 0x40, 0, 0, 0, 0]), 0);
    machine.write_memory(DATA + 0x40, &[(16 * 60i32).to_le_bytes(), 0i32.to_le_bytes()].concat()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::SETTIMEOFDAY, [0, DATA + 0x40, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    machine.write_memory(DATA + 8, &1_000_000u64.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::SETTIMEOFDAY, [DATA, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    // Without CAP_SYS_TIME, nothing changes.
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    timespec(&machine, DATA, 1_700_000_000, 0);
    assert_eq!(call(&machine, &process, nr::CLOCK_SETTIME, [0, DATA, 0, 0, 0, 0]), Errno::EPERM.to_return());
    // The permission is checked before the zone, as on Linux.
    assert_eq!(
        call(&machine, &process, nr::SETTIMEOFDAY, [0, DATA + 0x40, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    assert_eq!(machine.realtime_ns(), 1_900_000_000 * SECOND + 7_000);
}
