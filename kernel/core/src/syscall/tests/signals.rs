//! Queued and waited-for signals, signalfd, alternate stacks, sigsuspend.

use super::*;
use crate::signal::code;

const SIGUSR1: u64 = 10;
const SIGALRM: u64 = 14;
const SIGRTMIN: u64 = 34;
/// Where the tests keep signal sets and `siginfo_t`s (below the stack the
/// handlers' frames take).
const DATA: u64 = BUFFER + 0x1000;
/// The top of a stack in mapped memory.
const STACK: u64 = BUFFER + 4 * 4096 - 64;

fn block(machine: &FakeMachine, process: &Process, set: u64) {
    machine.write_memory(DATA, &set.to_le_bytes()).unwrap();
    assert_eq!(call(machine, process, nr::RT_SIGPROCMASK, [0, DATA, 0, 8, 0, 0]), 0);
}

/// Queues `signal` with `value` through `rt_sigqueueinfo`.
fn queue(machine: &FakeMachine, process: &Process, signal: u64, value: u64) -> i64 {
    let info = crate::signal::SignalInfo::queued(code::QUEUE, 1, 0, value).encode(signal as u8);
    machine.write_memory(DATA + 0x100, &info).unwrap();
    call(machine, process, nr::RT_SIGQUEUEINFO, [process.pid, signal, DATA + 0x100, 0, 0, 0])
}

/// `rt_sigtimedwait` for `set` with a zero timeout; the signal, and the
/// `si_value` it carried.
fn take(machine: &FakeMachine, process: &Process, set: u64) -> (i64, u64) {
    machine.write_memory(DATA, &set.to_le_bytes()).unwrap();
    machine.write_memory(DATA + 0x80, &[0u8; 16]).unwrap();
    let signal = call(machine, process, nr::RT_SIGTIMEDWAIT, [DATA, DATA + 0x200, DATA + 0x80, 8, 0, 0]);
    (signal, read_u64(machine, DATA + 0x200 + 24))
}

#[test]
fn real_time_signals_queue_in_order_and_standard_ones_merge() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGRTMIN) | bit(SIGUSR1));
    for value in 1..=5 {
        assert_eq!(queue(&machine, &process, SIGRTMIN, value * 100), 0);
    }
    for _ in 0..3 {
        assert_eq!(call(&machine, &process, nr::KILL, [process.pid, SIGUSR1, 0, 0, 0, 0]), 0);
    }
    let set = bit(SIGRTMIN) | bit(SIGUSR1);
    assert_eq!(take(&machine, &process, set).0, SIGUSR1 as i64, "the lowest signal comes first");
    for value in 1..=5 {
        assert_eq!(take(&machine, &process, set), (SIGRTMIN as i64, value * 100));
    }
    assert_eq!(take(&machine, &process, set).0, Errno::EAGAIN.to_return(), "SIGUSR1 merged into one");
}

fn bit(signal: u64) -> u64 {
    1 << (signal - 1)
}

#[test]
fn queued_signals_stop_at_rlimit_sigpending() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGRTMIN));
    process.state.lock().limits[crate::process::limit::SIGPENDING].current = 2;
    assert_eq!(queue(&machine, &process, SIGRTMIN, 1), 0);
    assert_eq!(queue(&machine, &process, SIGRTMIN, 2), 0);
    assert_eq!(queue(&machine, &process, SIGRTMIN, 3), Errno::EAGAIN.to_return());
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)), (SIGRTMIN as i64, 1));
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)), (SIGRTMIN as i64, 2));
    // With no room left, kill still sends it, without its information.
    process.state.lock().limits[crate::process::limit::SIGPENDING].current = 0;
    assert_eq!(queue(&machine, &process, SIGRTMIN, 4), Errno::EAGAIN.to_return());
    assert_eq!(call(&machine, &process, nr::KILL, [process.pid, SIGRTMIN, 0, 0, 0, 0]), 0);
    assert_eq!(take(&machine, &process, bit(SIGRTMIN)), (SIGRTMIN as i64, 0));
    assert_eq!(read_u64(&machine, DATA + 0x200 + 8) as u32 as i32, code::USER);
    assert_eq!(process.signals.queued(), 0);
}

#[test]
fn sigtimedwait_times_out_and_checks_its_arguments() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGALRM));
    let timeout = crate::linux::Timespec { seconds: 0, nanoseconds: 5_000_000 }.encode();
    machine.write_memory(DATA + 0x80, &timeout).unwrap();
    machine.write_memory(DATA, &bit(SIGALRM).to_le_bytes()).unwrap();
    let before = machine.monotonic_ns();
    let waited = call(&machine, &process, nr::RT_SIGTIMEDWAIT, [DATA, 0, DATA + 0x80, 8, 0, 0]);
    assert_eq!(waited, Errno::EAGAIN.to_return());
    assert!(machine.monotonic_ns() >= before + 5_000_000);
    assert_eq!(
        call(&machine, &process, nr::RT_SIGTIMEDWAIT, [DATA, 0, 0, 4, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        process.thread(process.pid).unwrap().state.lock().signal_mask,
        bit(SIGALRM),
        "the mask comes back"
    );
}

#[test]
fn ignoring_a_signal_discards_it_where_it_is_pending() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGUSR1));
    assert_eq!(call(&machine, &process, nr::KILL, [process.pid, SIGUSR1, 0, 0, 0, 0]), 0);
    machine.write_memory(DATA + 0x40, &[0u8; 32]).unwrap();
    machine.write_memory(DATA + 0x40, &crate::process::SIG_IGN.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::RT_SIGACTION, [SIGUSR1, DATA + 0x40, 0, 8, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::RT_SIGPENDING, [DATA, 8, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, DATA), 0);
}

#[test]
fn signalfd_reads_signalfd_siginfo_records() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGRTMIN) | bit(SIGUSR1));
    machine.write_memory(DATA, &(bit(SIGRTMIN) | bit(SIGUSR1)).to_le_bytes()).unwrap();
    let nonblock = crate::vfs::file::flags::O_NONBLOCK as u64;
    let fd = call(&machine, &process, nr::SIGNALFD4, [u64::MAX, DATA, 8, nonblock, 0, 0]);
    assert!(fd >= 3, "{fd}");
    let buffer = BUFFER + 0x2000;
    assert_eq!(
        call(&machine, &process, nr::READ, [fd as u64, buffer, 256, 0, 0, 0]),
        Errno::EAGAIN.to_return()
    );
    assert_eq!(queue(&machine, &process, SIGRTMIN, 7), 0);
    assert_eq!(queue(&machine, &process, SIGRTMIN, 8), 0);
    assert_eq!(call(&machine, &process, nr::TKILL, [process.pid, SIGUSR1, 0, 0, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::READ, [fd as u64, buffer, 100, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(call(&machine, &process, nr::READ, [fd as u64, buffer, 256, 0, 0, 0]), 256);
    let word = |offset: u64| read_u64(&machine, buffer + offset);
    assert_eq!(word(0) as u32, SIGUSR1 as u32);
    assert_eq!(word(8) as u32 as i32, code::TKILL, "ssi_code");
    assert_eq!(word(128) as u32, SIGRTMIN as u32);
    assert_eq!(word(128 + 48), 7, "ssi_ptr");
    assert_eq!(call(&machine, &process, nr::READ, [fd as u64, buffer, 128, 0, 0, 0]), 128);
    assert_eq!(word(48), 8);
    // A new mask for the same descriptor; a descriptor that is no signalfd.
    assert_eq!(call(&machine, &process, nr::SIGNALFD4, [fd as u64, DATA, 8, 0, 0, 0]), fd);
    assert_eq!(call(&machine, &process, nr::SIGNALFD4, [1, DATA, 8, 0, 0, 0]), Errno::EINVAL.to_return());
}

/// Runs `number` with `arguments` on a thread whose stack is at [`STACK`].
fn call_on_stack(machine: &FakeMachine, process: &Process, number: u64, arguments: [u64; 6]) -> Registers {
    let mut registers = Registers { rsp: STACK, ..registers(number, arguments) };
    assert_eq!(run(machine, process, &mut registers), Outcome::Resume);
    registers
}

#[test]
fn sigsuspend_runs_the_handler_with_the_old_mask_saved() {
    let (machine, process) = setup();
    install_handler(&machine, &process, SIGUSR1, 0x40_6000);
    block(&machine, &process, bit(SIGUSR1));
    assert_eq!(call(&machine, &process, nr::KILL, [process.pid, SIGUSR1, 0, 0, 0, 0]), 0);
    machine.write_memory(DATA, &0u64.to_le_bytes()).unwrap();
    let handler = call_on_stack(&machine, &process, nr::RT_SIGSUSPEND, [DATA, 8, 0, 0, 0, 0]);
    assert_eq!((handler.rip, handler.rdi), (0x40_6000, SIGUSR1));
    // The handler runs with SIGUSR1 blocked (its own signal); its frame
    // keeps the mask sigsuspend replaced, which returning restores.
    let thread = process.thread(process.pid).unwrap();
    assert_eq!(thread.state.lock().signal_mask, bit(SIGUSR1));
    let mut back = Registers { rax: nr::RT_SIGRETURN, rsp: handler.rsp + 8, ..handler };
    assert_eq!(run(&machine, &process, &mut back), Outcome::ResumeExactly);
    assert_eq!(back.rax as i64, Errno::EINTR.to_return());
    assert_eq!(thread.state.lock().signal_mask, bit(SIGUSR1));
}

#[test]
fn the_alternate_stack_is_reported_in_use_and_cannot_change_then() {
    let (machine, process) = setup();
    let (base, size) = (BUFFER + 0x2000, 0x1000u64);
    let stack = [base, 0, size];
    let bytes: Vec<u8> = stack.iter().flat_map(|word| word.to_le_bytes()).collect();
    machine.write_memory(DATA, &bytes).unwrap();
    assert_eq!(call(&machine, &process, nr::SIGALTSTACK, [DATA, 0, 0, 0, 0, 0]), 0);
    // Code running on it sees SS_ONSTACK, and may not change it.
    let on_stack =
        Registers { rsp: base + 0x800, ..registers(nr::SIGALTSTACK, [0, DATA + 0x40, 0, 0, 0, 0]) };
    let mut registers = on_stack;
    run(&machine, &process, &mut registers);
    assert_eq!(registers.rax, 0);
    assert_eq!(read_u64(&machine, DATA + 0x48), u64::from(crate::signal::SS_ONSTACK));
    let mut registers = Registers { rsi: 0, rdi: DATA, ..on_stack };
    run(&machine, &process, &mut registers);
    assert_eq!(registers.rax as i64, Errno::EPERM.to_return());
    // Elsewhere it reads as enabled, and refuses sizes below MINSIGSTKSZ.
    assert_eq!(call(&machine, &process, nr::SIGALTSTACK, [0, DATA + 0x40, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, DATA + 0x48), 0);
    machine.write_memory(DATA + 16, &100u64.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::SIGALTSTACK, [DATA, 0, 0, 0, 0, 0]), Errno::ENOMEM.to_return());
    machine.write_memory(DATA + 8, &7u64.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::SIGALTSTACK, [DATA, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
}

#[test]
fn ppoll_waits_with_its_mask_and_writes_back_the_time_left() {
    let (machine, process) = setup();
    block(&machine, &process, bit(SIGUSR1));
    let timeout = crate::linux::Timespec { seconds: 2, nanoseconds: 0 }.encode();
    machine.write_memory(DATA + 0x80, &timeout).unwrap();
    machine.write_memory(DATA, &bit(SIGALRM).to_le_bytes()).unwrap();
    // No descriptors: the wait ends at its deadline, with no time left,
    // and the mask given for the wait is gone again.
    assert_eq!(call(&machine, &process, nr::PPOLL, [DATA + 0x100, 0, DATA + 0x80, DATA, 8, 0]), 0);
    assert_eq!(read_u64(&machine, DATA + 0x80), 0);
    assert_eq!(read_u64(&machine, DATA + 0x88), 0);
    assert_eq!(process.thread(process.pid).unwrap().state.lock().signal_mask, bit(SIGUSR1));
    assert_eq!(
        call(&machine, &process, nr::PPOLL, [DATA + 0x100, 0, DATA + 0x80, DATA, 4, 0]),
        Errno::EINVAL.to_return()
    );
}

#[test]
fn thread_ids_are_checked_as_c_ints_and_name_their_process() {
    let (machine, process) = setup();
    let minus_one = u64::from(u32::MAX);
    assert_eq!(
        call(&machine, &process, nr::TKILL, [minus_one, SIGUSR1, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::TGKILL, [1, minus_one, SIGUSR1, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::TGKILL, [minus_one, 1, SIGUSR1, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    block(&machine, &process, bit(SIGUSR1) | bit(SIGRTMIN));
    let other = process.new_thread();
    // kill and rt_sigqueueinfo find the process through any thread's id.
    assert_eq!(call(&machine, &process, nr::KILL, [other.tid, SIGUSR1, 0, 0, 0, 0]), 0);
    assert_eq!(queue(&machine, &process, SIGRTMIN, 5), 0);
    // tkill's real-time signals count against RLIMIT_SIGPENDING.
    process.state.lock().limits[crate::process::limit::SIGPENDING].current = 1;
    assert_eq!(
        call(&machine, &process, nr::TKILL, [process.pid, SIGRTMIN, 0, 0, 0, 0]),
        Errno::EAGAIN.to_return()
    );
}
