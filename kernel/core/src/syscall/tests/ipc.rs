//! System V message queues and semaphore sets (private keys: the tables
//! are global and tests run side by side).

use super::*;

const IPC_CREAT: u64 = 0o1000;
const IPC_EXCL: u64 = 0o2000;
const IPC_NOWAIT: u64 = 0o4000;
const MESSAGE: u64 = BUFFER + 0x1000;

fn send(machine: &FakeMachine, process: &Process, queue: u64, kind: i64, text: &[u8], flags: u64) -> i64 {
    machine.write_memory(MESSAGE, &kind.to_le_bytes()).unwrap();
    machine.write_memory(MESSAGE + 8, text).unwrap();
    call(machine, process, nr::MSGSND, [queue, MESSAGE, text.len() as u64, flags, 0, 0])
}

/// Receives into a buffer of `size` bytes: the result and (kind, text).
fn receive(
    machine: &FakeMachine,
    process: &Process,
    queue: u64,
    size: u64,
    kind: i64,
    flags: u64,
) -> (i64, i64, Vec<u8>) {
    let result = call(machine, process, nr::MSGRCV, [queue, MESSAGE, size, kind as u64, flags, 0]);
    let length = result.max(0) as usize;
    let mut text = alloc::vec![0u8; length];
    machine.read_memory(MESSAGE + 8, &mut text).unwrap();
    (result, read_u64(machine, MESSAGE) as i64, text)
}

#[test]
fn messages_are_received_by_type_and_size() {
    let (machine, process) = setup();
    let queue = call(&machine, &process, nr::MSGGET, [0, IPC_CREAT | 0o600, 0, 0, 0, 0]) as u64;
    for (kind, text) in [(3i64, &b"three"[..]), (1, b"one"), (2, b"two"), (1, b"uno")] {
        assert_eq!(send(&machine, &process, queue, kind, text, 0), 0);
    }
    assert_eq!(send(&machine, &process, queue, 0, b"x", 0), Errno::EINVAL.to_return(), "type 0");
    assert_eq!(receive(&machine, &process, queue, 64, 2, 0), (3, 2, b"two".to_vec()));
    assert_eq!(receive(&machine, &process, queue, 64, -2, 0), (3, 1, b"one".to_vec()), "lowest type up to 2");
    assert_eq!(receive(&machine, &process, queue, 64, 1, 0o20000), (5, 3, b"three".to_vec()), "MSG_EXCEPT");
    assert_eq!(receive(&machine, &process, queue, 2, 0, 0).0, Errno::E2BIG.to_return());
    assert_eq!(receive(&machine, &process, queue, 2, 0, 0o10000), (2, 1, b"un".to_vec()), "MSG_NOERROR cuts");
    assert_eq!(receive(&machine, &process, queue, 64, 0, IPC_NOWAIT).0, Errno::ENOMSG.to_return());
    // IPC_STAT, then a queue too small for a message.
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 2, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 80), 0, "msg_qnum");
    assert_eq!(read_u64(&machine, BUFFER + 88), 16384, "msg_qbytes");
    machine.write_memory(BUFFER + 88, &4u64.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 1, BUFFER, 0, 0, 0]), 0);
    assert_eq!(send(&machine, &process, queue, 1, b"fits", IPC_NOWAIT), 0);
    assert_eq!(send(&machine, &process, queue, 1, b"full", IPC_NOWAIT), Errno::EAGAIN.to_return());
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 0, 0, 0, 0, 0]), 0);
    assert_eq!(send(&machine, &process, queue, 1, b"gone", IPC_NOWAIT), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
}

#[test]
fn message_queue_keys_are_found_or_refused() {
    let (machine, process) = setup();
    let key = 0x5eed_0001;
    assert_eq!(call(&machine, &process, nr::MSGGET, [key, 0, 0, 0, 0, 0]), Errno::ENOENT.to_return());
    let queue = call(&machine, &process, nr::MSGGET, [key, IPC_CREAT | 0o644, 0, 0, 0, 0]);
    assert!(queue >= 0);
    assert_eq!(call(&machine, &process, nr::MSGGET, [key, 0, 0, 0, 0, 0]), queue);
    assert_eq!(
        call(&machine, &process, nr::MSGGET, [key, IPC_CREAT | IPC_EXCL, 0, 0, 0, 0]),
        Errno::EEXIST.to_return()
    );
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue as u64, 0, 0, 0, 0, 0]), 0);
    // Removed, the key names nothing; made again, the new queue.
    assert_eq!(call(&machine, &process, nr::MSGGET, [key, 0, 0, 0, 0, 0]), Errno::ENOENT.to_return());
    let again = call(&machine, &process, nr::MSGGET, [key, IPC_CREAT | 0o644, 0, 0, 0, 0]);
    assert!(again >= 0 && again != queue);
    assert_eq!(call(&machine, &process, nr::MSGGET, [key, 0, 0, 0, 0, 0]), again);
    assert_eq!(call(&machine, &process, nr::MSGCTL, [again as u64, 0, 0, 0, 0, 0]), 0);
}

fn semop(
    machine: &FakeMachine,
    process: &Process,
    set: u64,
    operations: &[(u16, i16, i16)],
    timeout: u64,
) -> i64 {
    let bytes: Vec<u8> = operations
        .iter()
        .flat_map(|(number, change, flags)| {
            let mut entry = number.to_le_bytes().to_vec();
            entry.extend_from_slice(&change.to_le_bytes());
            entry.extend_from_slice(&flags.to_le_bytes());
            entry
        })
        .collect();
    machine.write_memory(BUFFER + 0x800, &bytes).unwrap();
    call(machine, process, nr::SEMTIMEDOP, [set, BUFFER + 0x800, operations.len() as u64, timeout, 0, 0])
}

#[test]
fn semaphore_operations_apply_together_or_not_at_all() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::SEMGET, [0, 0, IPC_CREAT, 0, 0, 0]), Errno::EINVAL.to_return());
    let set = call(&machine, &process, nr::SEMGET, [0, 2, IPC_CREAT | 0o600, 0, 0, 0]) as u64;
    const NOWAIT: i16 = 0o4000;
    assert_eq!(semop(&machine, &process, set, &[(0, 2, 0), (1, 1, 0)], 0), 0);
    // The second cannot: neither applies.
    assert_eq!(semop(&machine, &process, set, &[(0, -1, 0), (1, -2, NOWAIT)], 0), Errno::EAGAIN.to_return());
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 12, 0, 0, 0]), 2, "GETVAL");
    assert_eq!(semop(&machine, &process, set, &[(2, 1, 0)], 0), Errno::EFBIG.to_return());
    assert_eq!(semop(&machine, &process, set, &[(0, 0, NOWAIT)], 0), Errno::EAGAIN.to_return(), "not zero");
    // A timed wait that nothing ends.
    machine.write_memory(BUFFER + 0x900, &Timespec::from_ns(10_000_000).encode()).unwrap();
    assert_eq!(semop(&machine, &process, set, &[(1, -5, 0)], BUFFER + 0x900), Errno::EAGAIN.to_return());
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 1, 14, 0, 0, 0]), 0, "GETNCNT after the wait");
    // SETALL / GETALL, SETVAL's range, GETPID, IPC_STAT.
    machine.write_memory(BUFFER, &[7, 0, 9, 0]).unwrap();
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 17, BUFFER, 0, 0]), 0);
    machine.write_memory(BUFFER, &[0; 4]).unwrap();
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 13, BUFFER, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER) as u32, 7 | 9 << 16);
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 16, 40000, 0, 0]), Errno::ERANGE.to_return());
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 11, 0, 0, 0]), process.pid as i64);
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 2, BUFFER, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 80), 2, "sem_nsems");
    assert_eq!(semop(&machine, &process, set, &[(0, 32767, 0)], 0), Errno::ERANGE.to_return());
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 0, 0, 0, 0]), 0);
    assert_eq!(semop(&machine, &process, set, &[(0, 1, 0)], 0), Errno::EINVAL.to_return());
}

#[test]
fn sem_undo_is_undone_when_the_process_ends() {
    let (machine, process) = setup();
    let set = call(&machine, &process, nr::SEMGET, [0, 1, IPC_CREAT | 0o600, 0, 0, 0]) as u64;
    assert_eq!(semop(&machine, &process, set, &[(0, 5, 0x1000)], 0), 0);
    assert_eq!(semop(&machine, &process, set, &[(0, -2, 0x1000)], 0), 0);
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 12, 0, 0, 0]), 3);
    super::super::semaphores::undo_all(&process.namespaces().ipc, process.pid);
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 12, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 0, 0, 0, 0]), 0);
}

fn attributes(machine: &FakeMachine, capacity: u64, message_size: u64) -> u64 {
    let mut bytes = [0u8; 64];
    bytes[8..16].copy_from_slice(&capacity.to_le_bytes());
    bytes[16..24].copy_from_slice(&message_size.to_le_bytes());
    machine.write_memory(BUFFER + 0xa00, &bytes).unwrap();
    BUFFER + 0xa00
}

#[test]
fn posix_queues_order_by_priority_and_check_sizes() {
    let (machine, process) = setup();
    let name = BUFFER + 0xb00;
    machine.write_memory(name, b"rosv-test-queue\0").unwrap();
    let o_rdwr_creat_excl_nonblock = 0o2 | 0o100 | 0o200 | 0o4000;
    let attributes = attributes(&machine, 2, 16);
    let fd =
        call(&machine, &process, nr::MQ_OPEN, [name, o_rdwr_creat_excl_nonblock, 0o600, attributes, 0, 0]);
    assert!(fd >= 0);
    let fd = fd as u64;
    assert_eq!(
        call(&machine, &process, nr::MQ_OPEN, [name, 0o2 | 0o100 | 0o200, 0o600, 0, 0, 0]),
        Errno::EEXIST.to_return()
    );
    machine.write_memory(MESSAGE, b"low-high").unwrap();
    assert_eq!(call(&machine, &process, nr::MQ_TIMEDSEND, [fd, MESSAGE, 3, 1, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MQ_TIMEDSEND, [fd, MESSAGE + 4, 4, 9, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDSEND, [fd, MESSAGE, 3, 1, 0, 0]),
        Errno::EAGAIN.to_return(),
        "full"
    );
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDSEND, [fd, MESSAGE, 17, 1, 0, 0]),
        Errno::EMSGSIZE.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDSEND, [fd, MESSAGE, 1, 32768, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDRECEIVE, [fd, BUFFER, 8, 0, 0, 0]),
        Errno::EMSGSIZE.to_return()
    );
    assert_eq!(call(&machine, &process, nr::MQ_TIMEDRECEIVE, [fd, BUFFER, 16, BUFFER + 0x40, 0, 0]), 4);
    assert_eq!(read_u64(&machine, BUFFER + 0x40) as u32, 9);
    // mq_getsetattr: the flags, the shape and one message left.
    assert_eq!(call(&machine, &process, nr::MQ_GETSETATTR, [fd, 0, BUFFER + 0x100, 0, 0, 0]), 0);
    assert_eq!(
        [
            read_u64(&machine, BUFFER + 0x100),
            read_u64(&machine, BUFFER + 0x108),
            read_u64(&machine, BUFFER + 0x110),
            read_u64(&machine, BUFFER + 0x118)
        ],
        [0o4000, 2, 16, 1]
    );
    assert_eq!(call(&machine, &process, nr::MQ_TIMEDRECEIVE, [fd, BUFFER, 16, 0, 0, 0]), 3);
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDRECEIVE, [fd, BUFFER, 16, 0, 0, 0]),
        Errno::EAGAIN.to_return()
    );
    // Blocking, with a deadline already past on the wall clock.
    machine.write_memory(BUFFER + 0x100, &[0u8; 8]).unwrap();
    assert_eq!(call(&machine, &process, nr::MQ_GETSETATTR, [fd, BUFFER + 0x100, 0, 0, 0, 0]), 0);
    machine.write_memory(BUFFER + 0x200, &Timespec::from_ns(1).encode()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDRECEIVE, [fd, BUFFER, 16, 0, BUFFER + 0x200, 0]),
        Errno::ETIMEDOUT.to_return()
    );
    assert_eq!(call(&machine, &process, nr::MQ_UNLINK, [name, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MQ_UNLINK, [name, 0, 0, 0, 0, 0]), Errno::ENOENT.to_return());
    assert_eq!(
        call(&machine, &process, nr::MQ_TIMEDRECEIVE, [1, BUFFER, 16, 0, 0, 0]),
        Errno::EBADF.to_return()
    );
    machine.write_memory(name, b"a/b\0").unwrap();
    assert_eq!(call(&machine, &process, nr::MQ_OPEN, [name, 0, 0, 0, 0, 0]), Errno::EACCES.to_return());
}

#[test]
fn posix_queue_notification_signals_a_message_in_the_empty_queue() {
    let (machine, process) = setup();
    let name = BUFFER + 0xb00;
    machine.write_memory(name, b"rosv-test-notify\0").unwrap();
    let fd = call(&machine, &process, nr::MQ_OPEN, [name, 0o2 | 0o100 | 0o4000, 0o600, 0, 0, 0]) as u64;
    let mut event = [0u8; 64];
    event[..8].copy_from_slice(&1234u64.to_le_bytes());
    event[8..12].copy_from_slice(&10u32.to_le_bytes());
    machine.write_memory(BUFFER + 0x300, &event).unwrap();
    machine.write_memory(BUFFER + 0x400, &(1u64 << 9).to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::RT_SIGPROCMASK, [0, BUFFER + 0x400, 0, 8, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MQ_NOTIFY, [fd, BUFFER + 0x300, 0, 0, 0, 0]), 0);
    machine.write_memory(MESSAGE, b"hi").unwrap();
    assert_eq!(call(&machine, &process, nr::MQ_TIMEDSEND, [fd, MESSAGE, 2, 0, 0, 0]), 0);
    assert_eq!(crate::signal::pending_set(&process.thread(process.pid).unwrap()), 1 << 9, "SIGUSR1 pending");
    assert_eq!(call(&machine, &process, nr::MQ_NOTIFY, [fd, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MQ_UNLINK, [name, 0, 0, 0, 0, 0]), 0);
}

#[test]
fn priority_inheritance_futexes_take_hand_back_and_check_owners() {
    let (machine, process) = setup();
    const LOCK_PI: u64 = 6;
    const UNLOCK_PI: u64 = 7;
    const TRYLOCK_PI: u64 = 8;
    const CMP_REQUEUE_PI: u64 = 12;
    let word = BUFFER + 0x600;
    let me = call(&machine, &process, nr::GETTID, [0; 6]) as u64;
    machine.write_memory(word, &0u32.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, LOCK_PI, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, word) as u32, me as u32);
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, LOCK_PI, 0, 0, 0, 0]), Errno::EDEADLK.to_return());
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, UNLOCK_PI, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, word) as u32, 0);
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, UNLOCK_PI, 0, 0, 0, 0]), Errno::EPERM.to_return());
    // Held by another thread: trylock fails, a timed lock marks the word
    // and times out.
    let other = process.new_thread();
    machine.write_memory(word, &(other.tid as u32).to_le_bytes()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::FUTEX, [word, TRYLOCK_PI, 0, 0, 0, 0]),
        Errno::EAGAIN.to_return()
    );
    let deadline = machine.realtime_ns() + 1_000_000;
    machine.write_memory(BUFFER + 0x700, &Timespec::from_ns(deadline).encode()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::FUTEX, [word, LOCK_PI, 0, BUFFER + 0x700, 0, 0]),
        Errno::ETIMEDOUT.to_return()
    );
    assert_eq!(read_u64(&machine, word) as u32, other.tid as u32 | 0x8000_0000);
    // A word naming no thread.
    machine.write_memory(word, &4000u32.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, LOCK_PI, 0, 0, 0, 0]), Errno::ESRCH.to_return());
    // A robust owner died: the word is taken with the mark kept.
    machine.write_memory(word, &0x4000_0000u32.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, LOCK_PI, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, word) as u32, me as u32 | 0x4000_0000);
    let condition = BUFFER + 0x680;
    machine.write_memory(condition, &5u32.to_le_bytes()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::FUTEX, [condition, CMP_REQUEUE_PI, 2, 1, word, 5]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::FUTEX, [condition, CMP_REQUEUE_PI, 1, 1, word, 6]),
        Errno::EAGAIN.to_return()
    );
    assert_eq!(call(&machine, &process, nr::FUTEX, [condition, CMP_REQUEUE_PI, 1, 1, word, 5]), 0);
}

#[test]
fn robust_futexes_marked_for_priority_inheritance_are_released_at_exit() {
    let (machine, process) = setup();
    let head = BUFFER + 0x800;
    let (plain, inheriting) = (BUFFER + 0x840, BUFFER + 0x880);
    let offset = 16u64;
    let me = call(&machine, &process, nr::GETTID, [0; 6]) as u32;
    // head -> plain -> inheriting (marked with the low bit) -> head.
    machine
        .write_memory(head, &[plain.to_le_bytes(), offset.to_le_bytes(), 0u64.to_le_bytes()].concat())
        .unwrap();
    machine.write_memory(plain, &(inheriting | 1).to_le_bytes()).unwrap();
    machine.write_memory(inheriting, &head.to_le_bytes()).unwrap();
    machine.write_memory(plain + offset, &me.to_le_bytes()).unwrap();
    machine.write_memory(inheriting + offset, &(me | 0x8000_0000).to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::SET_ROBUST_LIST, [head, 24, 0, 0, 0, 0]), 0);
    assert_eq!(outcome(&machine, &process, nr::EXIT, [0; 6]), Outcome::ExitThread);
    assert_eq!(read_u64(&machine, plain + offset) as u32, 0x4000_0000);
    assert_eq!(read_u64(&machine, inheriting + offset) as u32, 0xc000_0000, "found through the marked entry");
}

#[test]
fn system_v_objects_check_their_permissions() {
    let (machine, process) = setup();
    let queue = call(&machine, &process, nr::MSGGET, [0, IPC_CREAT | 0o600, 0, 0, 0, 0]) as u64;
    let set = call(&machine, &process, nr::SEMGET, [0, 1, IPC_CREAT | 0o640, 0, 0, 0]) as u64;
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(send(&machine, &process, queue, 1, b"x", IPC_NOWAIT), Errno::EACCES.to_return());
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 2, BUFFER, 0, 0, 0]), Errno::EACCES.to_return());
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 0, 0, 0, 0, 0]), Errno::EPERM.to_return());
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 12, 0, 0, 0]), Errno::EACCES.to_return());
    assert_eq!(semop(&machine, &process, set, &[(0, 1, 0)], 0), Errno::EACCES.to_return());
    process.state.lock().credentials = crate::process::Credentials::root();
    assert_eq!(call(&machine, &process, nr::MSGCTL, [queue, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::SEMCTL, [set, 0, 0, 0, 0, 0]), 0);
}

#[test]
fn shared_futexes_must_be_mapped_and_requeue_counts_not_negative() {
    let (machine, process) = setup();
    const WAKE: u64 = 1;
    const CMP_REQUEUE: u64 = 4;
    const PRIVATE: u64 = 128;
    let unmapped = 0x9000_0000;
    assert_eq!(call(&machine, &process, nr::FUTEX, [unmapped, WAKE, 1, 0, 0, 0]), Errno::EFAULT.to_return());
    assert_eq!(call(&machine, &process, nr::FUTEX, [unmapped, WAKE | PRIVATE, 1, 0, 0, 0]), 0);
    let word = BUFFER + 0x900;
    assert_eq!(
        call(&machine, &process, nr::FUTEX, [word, CMP_REQUEUE, 1, 1, unmapped, 0]),
        Errno::EFAULT.to_return()
    );
    let minus_one = u64::from(u32::MAX);
    assert_eq!(
        call(&machine, &process, nr::FUTEX, [word, CMP_REQUEUE, minus_one, 1, word + 4, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(call(&machine, &process, nr::FUTEX, [word, CMP_REQUEUE, 1, 1, word + 4, 0]), 0);
}

#[test]
fn posix_queues_check_who_opens_and_removes_them() {
    let (machine, process) = setup();
    let name = BUFFER + 0xb00;
    machine.write_memory(name, b"rosv-test-private\0").unwrap();
    let fd = call(&machine, &process, nr::MQ_OPEN, [name, 0o2 | 0o100, 0o600, 0, 0, 0]);
    assert!(fd >= 0);
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(call(&machine, &process, nr::MQ_OPEN, [name, 0, 0, 0, 0, 0]), Errno::EACCES.to_return());
    assert_eq!(call(&machine, &process, nr::MQ_UNLINK, [name, 0, 0, 0, 0, 0]), Errno::EACCES.to_return());
    // An invalid event is refused before the descriptor is looked at.
    let mut event = [0u8; 64];
    event[12..16].copy_from_slice(&9u32.to_le_bytes());
    machine.write_memory(BUFFER + 0x300, &event).unwrap();
    assert_eq!(
        call(&machine, &process, nr::MQ_NOTIFY, [999, BUFFER + 0x300, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    process.state.lock().credentials = crate::process::Credentials::root();
    assert_eq!(call(&machine, &process, nr::MQ_UNLINK, [name, 0, 0, 0, 0, 0]), 0);
}
