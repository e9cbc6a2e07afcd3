//! Scheduling policies, nice values and I/O priorities.

use super::*;

const FIFO: u64 = 1;
const RR: u64 = 2;

fn set_priority_word(machine: &FakeMachine, priority: u32) {
    machine.write_memory(BUFFER, &priority.to_le_bytes()).unwrap();
}

#[test]
fn real_time_policies_are_checked_recorded_and_reported() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::SCHED_GET_PRIORITY_MAX, [FIFO, 0, 0, 0, 0, 0]), 99);
    assert_eq!(call(&machine, &process, nr::SCHED_GET_PRIORITY_MIN, [RR, 0, 0, 0, 0, 0]), 1);
    assert_eq!(call(&machine, &process, nr::SCHED_GET_PRIORITY_MAX, [0, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::SCHED_GET_PRIORITY_MAX, [4, 0, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    set_priority_word(&machine, 0);
    assert_eq!(
        call(&machine, &process, nr::SCHED_SETSCHEDULER, [0, FIFO, BUFFER, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    set_priority_word(&machine, 30);
    assert_eq!(
        call(&machine, &process, nr::SCHED_SETSCHEDULER, [0, 0, BUFFER, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::SCHED_SETSCHEDULER, [99_999, FIFO, BUFFER, 0, 0, 0]),
        Errno::ESRCH.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::SCHED_SETSCHEDULER, [u64::MAX, FIFO, BUFFER, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(call(&machine, &process, nr::SCHED_SETSCHEDULER, [0, RR | 0x4000_0000, BUFFER, 0, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::SCHED_GETSCHEDULER, [0, 0, 0, 0, 0, 0]),
        (RR | 0x4000_0000) as i64
    );
    assert_eq!(call(&machine, &process, nr::SCHED_GETPARAM, [process.pid, BUFFER + 8, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 8) as u32, 30);
    assert_eq!(call(&machine, &process, nr::SCHED_RR_GET_INTERVAL, [0, BUFFER + 16, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 24), 100_000_000);
    // Unprivileged, with RLIMIT_RTPRIO 0: refused.
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    set_priority_word(&machine, 50);
    assert_eq!(
        call(&machine, &process, nr::SCHED_SETPARAM, [0, BUFFER, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
}

#[test]
fn sched_attr_and_nice_values_round_trip() {
    let (machine, process) = setup();
    let mut attributes = [0u8; 56];
    attributes[..4].copy_from_slice(&48u32.to_le_bytes());
    attributes[16..20].copy_from_slice(&7i32.to_le_bytes());
    machine.write_memory(BUFFER, &attributes).unwrap();
    assert_eq!(call(&machine, &process, nr::SCHED_SETATTR, [0, BUFFER, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::GETPRIORITY, [0, 0, 0, 0, 0, 0]), 20 - 7);
    assert_eq!(call(&machine, &process, nr::SCHED_GETATTR, [0, BUFFER + 0x100, 56, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 0x100) as u32, 56);
    assert_eq!(read_u64(&machine, BUFFER + 0x110) as u32, 7, "sched_nice");
    assert_eq!(
        call(&machine, &process, nr::SCHED_GETATTR, [0, BUFFER + 0x100, 20, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    attributes[..4].copy_from_slice(&40u32.to_le_bytes());
    machine.write_memory(BUFFER, &attributes).unwrap();
    assert_eq!(
        call(&machine, &process, nr::SCHED_SETATTR, [0, BUFFER, 0, 0, 0, 0]),
        Errno::E2BIG.to_return()
    );
    assert_eq!(read_u64(&machine, BUFFER) as u32, 56, "the size it knows");
    assert_eq!(call(&machine, &process, nr::SETPRIORITY, [0, 0, -5i64 as u64, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::GETPRIORITY, [0, 0, 0, 0, 0, 0]), 25);
    assert_eq!(call(&machine, &process, nr::GETPRIORITY, [9, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(
        call(&machine, &process, nr::SETPRIORITY, [0, 0, -10i64 as u64, 0, 0, 0]),
        Errno::EACCES.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::SETPRIORITY, [0, 0, 3, 0, 0, 0]),
        0,
        "lowering is always allowed"
    );
}

#[test]
fn io_priorities_are_checked_and_recorded() {
    let (machine, process) = setup();
    let best_effort_4 = (2 << 13) | 4;
    assert_eq!(call(&machine, &process, nr::IOPRIO_SET, [1, 0, best_effort_4, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::IOPRIO_GET, [1, 0, 0, 0, 0, 0]), best_effort_4 as i64);
    assert_eq!(
        call(&machine, &process, nr::IOPRIO_SET, [1, 0, (2 << 13) | 9, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::IOPRIO_SET, [7, 0, best_effort_4, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
}
