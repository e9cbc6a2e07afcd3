use super::*;
use crate::fake::FakeMachine;
use crate::linux::Timespec;
use crate::machine::Registers;
use crate::machine::Rights;
use alloc::vec::Vec;

mod epoll;
mod events;
mod files;
mod ipc;
mod limits;
mod mounts;
mod paths;
mod resources;
mod scheduling;
mod signals;
mod system;
mod terminal;
mod timers;

const BUFFER: u64 = 0x10_0000;

fn setup() -> (FakeMachine, Arc<Process>) {
    let machine = FakeMachine::new();
    for page in 0..4 {
        machine.map_page(BUFFER + page * 4096, Rights::READ_WRITE).unwrap();
    }
    let process = crate::fs::testing::process(&machine);
    (machine, process)
}

fn registers(number: u64, arguments: [u64; 6]) -> Registers {
    let [rdi, rsi, rdx, r10, r8, r9] = arguments;
    Registers {
        rax: number,
        rdi,
        rsi,
        rdx,
        r10,
        r8,
        r9,
        rip: 0x40_1000,
        rsp: 0x7000_0000,
        ..Registers::default()
    }
}

/// Runs a system call on the process's first thread (created on demand).
fn outcome(machine: &FakeMachine, process: &Process, number: u64, arguments: [u64; 6]) -> Outcome {
    run(machine, process, &mut registers(number, arguments))
}

/// Runs the system call in `registers` on the process's first thread.
fn run(machine: &FakeMachine, process: &Process, registers: &mut Registers) -> Outcome {
    let thread = process.thread(process.pid).unwrap_or_else(|| process.new_thread());
    handle(machine, process, &thread, registers)
}

fn call(machine: &FakeMachine, process: &Process, number: u64, arguments: [u64; 6]) -> i64 {
    let mut registers = registers(number, arguments);
    match run(machine, process, &mut registers) {
        Outcome::Resume | Outcome::ResumeExactly => registers.rax as i64,
        Outcome::ExitThread => panic!("unexpected exit"),
    }
}

fn read_u64(machine: &FakeMachine, address: u64) -> u64 {
    let mut bytes = [0u8; 8];
    machine.read_memory(address, &mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

#[test]
fn write_and_writev_reach_the_console() {
    let (machine, process) = setup();
    machine.write_memory(BUFFER, b"hello, world\n").unwrap();
    assert_eq!(call(&machine, &process, nr::WRITE, [1, BUFFER, 13, 0, 0, 0]), 13);
    let mut vectors = alloc::vec::Vec::new();
    for (base, length) in [(BUFFER, 5u64), (BUFFER + 12, 1)] {
        vectors.extend_from_slice(&base.to_le_bytes());
        vectors.extend_from_slice(&length.to_le_bytes());
    }
    machine.write_memory(BUFFER + 0x100, &vectors).unwrap();
    assert_eq!(call(&machine, &process, nr::WRITEV, [2, BUFFER + 0x100, 2, 0, 0, 0]), 6);
    assert_eq!(machine.console_text(), "hello, world\nhello\n");
    assert_eq!(call(&machine, &process, nr::WRITE, [7, BUFFER, 1, 0, 0, 0]), Errno::EBADF.to_return());
    assert_eq!(call(&machine, &process, nr::WRITE, [1, 0x9000_0000, 1, 0, 0, 0]), Errno::EFAULT.to_return());
}

#[test]
fn stdin_reads_end_of_file() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::READ, [0, BUFFER, 10, 0, 0, 0]), 0);
}

#[test]
fn console_looks_like_a_terminal() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, 0x5401, BUFFER, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, 0x5413, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER) & 0xffff_ffff, (80 << 16) | 24);
    assert_eq!(call(&machine, &process, nr::IOCTL, [1, 0x1234, BUFFER, 0, 0, 0]), Errno::ENOTTY.to_return());
    assert_eq!(call(&machine, &process, nr::FSTAT, [1, BUFFER, 0, 0, 0, 0]), 0);
    let mut mode = [0u8; 4];
    machine.read_memory(BUFFER + 24, &mut mode).unwrap();
    assert_eq!(u32::from_le_bytes(mode) & 0o170000, 0o020000);
    machine.write_memory(BUFFER + 0x200, b"\0").unwrap();
    assert_eq!(call(&machine, &process, nr::NEWFSTATAT, [2, BUFFER + 0x200, BUFFER, 0x1000, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::LSEEK, [1, 0, 0, 0, 0, 0]), Errno::ESPIPE.to_return());
}

#[test]
fn descriptors_close_and_duplicate() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::DUP, [1, 0, 0, 0, 0, 0]), 3);
    assert_eq!(call(&machine, &process, nr::CLOSE, [1, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::CLOSE, [1, 0, 0, 0, 0, 0]), Errno::EBADF.to_return());
    assert_eq!(call(&machine, &process, nr::DUP2, [3, 1, 0, 0, 0, 0]), 1);
    assert_eq!(call(&machine, &process, nr::FCNTL, [1, 1, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::FCNTL, [1, 1030, 10, 0, 0, 0]), 10);
    assert_eq!(call(&machine, &process, nr::FCNTL, [10, 1, 0, 0, 0, 0]), 1);
    assert_eq!(call(&machine, &process, nr::DUP3, [1, 1, 0, 0, 0, 0]), Errno::EINVAL.to_return());
}

#[test]
fn poll_reports_console_readiness() {
    let (machine, process) = setup();
    let mut table = alloc::vec::Vec::new();
    for (fd, events) in [(0i32, 1u16), (1, 4), (9, 1), (-1, 1)] {
        table.extend_from_slice(&fd.to_le_bytes());
        table.extend_from_slice(&events.to_le_bytes());
        table.extend_from_slice(&0u16.to_le_bytes());
    }
    machine.write_memory(BUFFER, &table).unwrap();
    assert_eq!(call(&machine, &process, nr::POLL, [BUFFER, 4, 0, 0, 0, 0]), 3);
    let mut result = [0u8; 32];
    machine.read_memory(BUFFER, &mut result).unwrap();
    let revents: alloc::vec::Vec<u16> =
        result.chunks(8).map(|entry| u16::from_le_bytes([entry[6], entry[7]])).collect();
    assert_eq!(revents, [1, 4, 0x20, 0]);
}

#[test]
fn memory_calls_map_and_unmap() {
    let (machine, process) = setup();
    let address = call(&machine, &process, nr::MMAP, [0, 8192, 3, 0x22, u64::MAX, 0]);
    assert!(address > 0);
    assert_eq!(
        process.memory().space.lock().resolve_fault(&machine, address as u64, crate::memory::Access::Write),
        crate::memory::FaultResolution::Mapped
    );
    assert_eq!(call(&machine, &process, nr::MPROTECT, [address as u64, 4096, 1, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MUNMAP, [address as u64, 8192, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MMAP, [0, 4096, 3, 0x02, 1, 0]), Errno::ENODEV.to_return());
    assert_eq!(call(&machine, &process, nr::MMAP, [0, 4096, 3, 0x01, 0, 0]), Errno::ENODEV.to_return());
    assert_eq!(call(&machine, &process, nr::MMAP, [0, 4096, 3, 0x02, 42, 0]), Errno::EBADF.to_return());
    assert_eq!(call(&machine, &process, nr::MMAP, [0, 4096, 8, 0x22, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::MMAP, [0, 4096, 3, 0x20, 0, 0]), Errno::EINVAL.to_return());
    process.memory().space.lock().set_heap_start(0x40_0000);
    assert_eq!(call(&machine, &process, nr::BRK, [0, 0, 0, 0, 0, 0]), 0x40_0000);
    assert_eq!(call(&machine, &process, nr::BRK, [0x40_2000, 0, 0, 0, 0, 0]), 0x40_2000);
}

#[test]
fn protection_keys_are_absent() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::PKEY_ALLOC, [0, 1, 0, 0, 0, 0]), Errno::ENOSPC.to_return());
    assert_eq!(call(&machine, &process, nr::PKEY_ALLOC, [1, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::PKEY_ALLOC, [0, 4, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::PKEY_FREE, [1, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    let address = call(&machine, &process, nr::MMAP, [0, 4096, 3, 0x22, u64::MAX, 0]) as u64;
    assert_eq!(call(&machine, &process, nr::PKEY_MPROTECT, [address, 4096, 1, u64::MAX, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::PKEY_MPROTECT, [address, 4096, 1, 1, 0, 0]),
        Errno::EINVAL.to_return()
    );
}

#[test]
fn identity_and_limits() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::GETPID, [0; 6]), process.pid as i64);
    assert_eq!(call(&machine, &process, nr::SET_TID_ADDRESS, [BUFFER, 0, 0, 0, 0, 0]), process.pid as i64);
    assert_eq!(call(&machine, &process, nr::UNAME, [BUFFER, 0, 0, 0, 0, 0]), 0);
    let mut name = [0u8; 5];
    machine.read_memory(BUFFER, &mut name).unwrap();
    assert_eq!(&name, b"Linux");
    assert_eq!(call(&machine, &process, nr::PRLIMIT64, [0, 3, 0, BUFFER, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER), 8 << 20);
    machine.write_memory(BUFFER, &[5u64.to_le_bytes(), 3u64.to_le_bytes()].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::PRLIMIT64, [0, 7, BUFFER, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::PRLIMIT64, [0, 99, 0, BUFFER, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::PRLIMIT64, [5, 3, 0, BUFFER, 0, 0]), Errno::ESRCH.to_return());
}

#[test]
fn arch_prctl_sets_the_thread_pointer() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::ARCH_PRCTL, [0x1002, 0x7000_1000, 0, 0, 0, 0]), 0);
    assert_eq!(machine.thread_pointer(), 0x7000_1000);
    assert_eq!(call(&machine, &process, nr::ARCH_PRCTL, [0x1003, BUFFER, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER), 0x7000_1000);
    let kernel_address = 0xffff_8000_0000_0000;
    assert_eq!(
        call(&machine, &process, nr::ARCH_PRCTL, [0x1002, kernel_address, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    assert_eq!(call(&machine, &process, nr::ARCH_PRCTL, [0x9999, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
}

#[test]
fn signals_follow_their_dispositions() {
    let (machine, process) = setup();
    // SIGABRT by default terminates with 128 + 6.
    let (other_machine, dying) = setup();
    assert_eq!(
        outcome(&other_machine, &dying, nr::TGKILL, [dying.pid, dying.pid, 6, 0, 0, 0]),
        Outcome::ExitThread
    );
    assert_eq!(dying.exit_status(), Some(134));
    // SIGCHLD is ignored by default; signal 0 only checks.
    assert_eq!(call(&machine, &process, nr::KILL, [process.pid, 17, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::KILL, [process.pid, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::KILL, [999_999_999, 15, 0, 0, 0, 0]), Errno::ESRCH.to_return());
    // SIG_IGN for SIGTERM.
    machine.write_memory(BUFFER, &[1u64.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::RT_SIGACTION, [15, BUFFER, 0, 8, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::KILL, [process.pid, 15, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::RT_SIGACTION, [15, 0, BUFFER + 64, 8, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 64), 1);
    assert_eq!(
        call(&machine, &process, nr::RT_SIGACTION, [9, BUFFER, 0, 8, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::RT_SIGACTION, [15, BUFFER, 0, 16, 0, 0]),
        Errno::EINVAL.to_return()
    );
    // A blocked signal stays pending instead of terminating.
    machine.write_memory(BUFFER, &(1u64 << 5).to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::RT_SIGPROCMASK, [0, BUFFER, BUFFER + 8, 8, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::TGKILL, [process.pid, process.pid, 6, 0, 0, 0]), 0);
}

#[test]
fn clocks_and_sleep() {
    let (machine, process) = setup();
    machine.now_ns.store(5_000_000_123, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(call(&machine, &process, nr::CLOCK_GETTIME, [1, BUFFER, 0, 0, 0, 0]), 0);
    assert_eq!((read_u64(&machine, BUFFER), read_u64(&machine, BUFFER + 8)), (5, 123));
    assert_eq!(
        call(&machine, &process, nr::CLOCK_GETTIME, [99, BUFFER, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    machine.write_memory(BUFFER, &[1u64.to_le_bytes(), 500u64.to_le_bytes()].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::NANOSLEEP, [BUFFER, 0, 0, 0, 0, 0]), 0);
    assert_eq!(machine.monotonic_ns(), 6_000_000_623);
    machine.write_memory(BUFFER, &[0u64.to_le_bytes(), 2_000_000_000u64.to_le_bytes()].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::NANOSLEEP, [BUFFER, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
}

#[test]
fn readlink_proc_self_exe_and_getcwd() {
    let (machine, process) = setup();
    machine.write_memory(BUFFER, b"/proc/self/exe\0").unwrap();
    assert_eq!(call(&machine, &process, nr::READLINK, [BUFFER, BUFFER + 64, 100, 0, 0, 0]), 10);
    let mut path = [0u8; 10];
    machine.read_memory(BUFFER + 64, &mut path).unwrap();
    assert_eq!(&path, b"/bin/hello");
    assert_eq!(call(&machine, &process, nr::READLINK, [BUFFER, BUFFER + 64, 3, 0, 0, 0]), 3);
    assert_eq!(call(&machine, &process, nr::GETCWD, [BUFFER, 100, 0, 0, 0, 0]), 2);
    assert_eq!(call(&machine, &process, nr::GETCWD, [BUFFER, 1, 0, 0, 0, 0]), Errno::ERANGE.to_return());
}

#[test]
fn getrandom_fills_and_checks_flags() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::GETRANDOM, [BUFFER, 600, 0, 0, 0, 0]), 600);
    assert_ne!(read_u64(&machine, BUFFER + 512), 0);
    assert_eq!(
        call(&machine, &process, nr::GETRANDOM, [BUFFER, 8, 0x80, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
}

#[test]
fn exit_and_unknown_calls() {
    let (machine, process) = setup();
    assert_eq!(outcome(&machine, &process, nr::EXIT_GROUP, [259, 0, 0, 0, 0, 0]), Outcome::ExitThread);
    assert_eq!(process.exit_status(), Some(3));
    assert_eq!(process.thread_count(), 0);
    assert_eq!(call(&machine, &process, 999, [0; 6]), Errno::ENOSYS.to_return());
    assert!(!process.first_report_of(999));
}

/// Installs `handler` for `signal` with a restorer (as C libraries do).
fn install_handler(machine: &FakeMachine, process: &Process, signal: u64, handler: u64) {
    let action = [handler, crate::signal::flag::RESTORER, 0x40_2000, 0];
    let bytes: Vec<u8> = action.iter().flat_map(|word| word.to_le_bytes()).collect();
    machine.write_memory(BUFFER, &bytes).unwrap();
    assert_eq!(call(machine, process, nr::RT_SIGACTION, [signal, BUFFER, 0, 8, 0, 0]), 0);
}

#[test]
fn faults_run_the_handler_or_end_the_process() {
    use crate::signal::{Fault, fault_code};
    let (machine, process) = setup();
    let thread = process.thread(process.pid).unwrap_or_else(|| process.new_thread());
    let fault = Fault { signal: 11, code: fault_code::SEGV_MAPERR, address: 0xdead_0000 };
    let stack = BUFFER + 4 * 4096 - 64;
    let interrupted = Registers { rip: 0x40_1234, rsp: stack, rcx: 7, r11: 0x246, ..Registers::default() };
    // Without a handler, SIGSEGV ends the process with 128 + 11.
    let mut registers = interrupted;
    assert_eq!(deliver_fault(&machine, &process, &thread, &mut registers, fault), Err(139));
    // With one, the handler runs with si_signo, si_code and si_addr filled in.
    install_handler(&machine, &process, 11, 0x40_5000);
    let mut registers = interrupted;
    assert_eq!(deliver_fault(&machine, &process, &thread, &mut registers, fault), Ok(()));
    assert_eq!((registers.rip, registers.rdi), (0x40_5000, 11));
    assert_eq!(read_u64(&machine, registers.rsi) as u32, 11);
    assert_eq!(read_u64(&machine, registers.rsi + 8) as i32, fault_code::SEGV_MAPERR);
    assert_eq!(read_u64(&machine, registers.rsi + 16), 0xdead_0000);
    // Returning from the handler restores every register, RCX and R11
    // included, and says so.
    let mut back = Registers { rax: nr::RT_SIGRETURN, rsp: registers.rsp + 8, ..registers };
    assert_eq!(run(&machine, &process, &mut back), Outcome::ResumeExactly);
    assert_eq!((back.rip, back.rsp, back.rcx, back.r11 & 0xfff), (0x40_1234, stack, 7, 0x246 & 0xfff));
    // While the handler runs, SIGSEGV is blocked: a second fault in it ends
    // the process rather than recursing.
    let mut registers = interrupted;
    assert_eq!(deliver_fault(&machine, &process, &thread, &mut registers, fault), Ok(()));
    let mut nested = registers;
    assert_eq!(deliver_fault(&machine, &process, &thread, &mut nested, fault), Err(139));
}

#[test]
fn a_frame_rt_sigreturn_cannot_restore_is_a_sigsegv() {
    let (machine, process) = setup();
    // A frame whose saved instruction pointer is not canonical.
    let frame = BUFFER + 0x2000;
    machine.write_memory(frame, &[0u8; 0x1000]).unwrap();
    // The ucontext follows the return address; its registers, 40 bytes in.
    let saved_rip = frame + 8 + 40 + 16 * 8;
    machine.write_memory(saved_rip, &0x8000_0000_0000_0000u64.to_le_bytes()).unwrap();
    let returning = registers(nr::RT_SIGRETURN, [0; 6]);
    let returning = Registers { rsp: frame + 8, rip: 0x40_1000, ..returning };
    // With a handler for SIGSEGV, it runs (si_code SI_KERNEL).
    install_handler(&machine, &process, 11, 0x40_5000);
    let mut with_handler = returning;
    assert_eq!(run(&machine, &process, &mut with_handler), Outcome::ResumeExactly);
    assert_eq!((with_handler.rip, with_handler.rdi), (0x40_5000, 11));
    assert_eq!(read_u64(&machine, with_handler.rsi + 8) as i32, crate::signal::fault_code::KERNEL);
    // An unreadable frame, without a handler: the process ends with 139.
    install_handler(&machine, &process, 11, 0);
    let mut unreadable = Registers { rsp: 0x9000_0000, ..returning };
    assert_eq!(run(&machine, &process, &mut unreadable), Outcome::ExitThread);
    assert_eq!(process.exit_status(), Some(139));
}

#[test]
fn pending_signals_are_delivered_outside_system_calls() {
    let (machine, process) = setup();
    let thread = process.thread(process.pid).unwrap_or_else(|| process.new_thread());
    install_handler(&machine, &process, 10, 0x40_6000);
    assert_eq!(call(&machine, &process, nr::RT_SIGPROCMASK, [0, 0, 0, 8, 0, 0]), 0);
    // Block SIGUSR1 so that the kill leaves it pending, then unblock it.
    machine.write_memory(BUFFER + 256, &(1u64 << 9).to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::RT_SIGPROCMASK, [0, BUFFER + 256, 0, 8, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::TGKILL, [process.pid, process.pid, 10, 0, 0, 0]), 0);
    thread.state.lock().signal_mask = 0;
    let stack = BUFFER + 4 * 4096 - 64;
    let mut registers = Registers { rip: 0x40_1000, rsp: stack, ..Registers::default() };
    assert_eq!(deliver_pending_signals(&machine, &process, &thread, &mut registers), Outcome::ResumeExactly);
    assert_eq!((registers.rip, registers.rdi), (0x40_6000, 10));
    // Nothing is left to deliver.
    let mut again = Registers { rip: 0x40_1000, rsp: stack, ..Registers::default() };
    assert_eq!(deliver_pending_signals(&machine, &process, &thread, &mut again), Outcome::ResumeExactly);
    assert_eq!(again.rip, 0x40_1000);
}

#[test]
fn a_socket_with_o_async_signals_its_owner_when_data_arrives() {
    let (machine, process) = setup();
    const F_SETFL: u64 = 4;
    const F_GETOWN: u64 = 9;
    const F_SETSIG: u64 = 10;
    const F_GETSIG: u64 = 11;
    const F_SETOWN_EX: u64 = 15;
    const F_GETOWN_EX: u64 = 16;
    const O_ASYNC: u64 = 0o20000;
    const SIGIO_BIT: u64 = 1 << 28;
    const SIGUSR1_BIT: u64 = 1 << 9;
    // socketpair(AF_UNIX, SOCK_STREAM): descriptors 3 and 4.
    assert_eq!(call(&machine, &process, nr::SOCKETPAIR, [1, 1, 0, BUFFER, 0, 0]), 0);
    let thread = process.thread(process.pid).expect("the first thread");
    // Blocked, so that they stay pending for the test to see.
    thread.state.lock().signal_mask = SIGIO_BIT | SIGUSR1_BIT;
    let pending = || crate::signal::pending_set(&thread);
    let clear = || while crate::signal::take_from(&thread, SIGIO_BIT | SIGUSR1_BIT).is_some() {};
    let send = |byte: &[u8]| {
        machine.write_memory(BUFFER + 0x100, byte).unwrap();
        assert_eq!(call(&machine, &process, nr::WRITE, [3, BUFFER + 0x100, 1, 0, 0, 0]), 1);
    };
    // An owner alone, or O_ASYNC alone, signals nobody.
    send(b"a");
    assert_eq!(pending() & SIGIO_BIT, 0);
    machine
        .write_memory(BUFFER + 0x200, &[1i32.to_le_bytes(), (process.pid as i32).to_le_bytes()].concat())
        .unwrap();
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_SETOWN_EX, BUFFER + 0x200, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_GETOWN, 0, 0, 0, 0]), process.pid as i64);
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_GETOWN_EX, BUFFER + 0x300, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 0x300), 1 | (process.pid << 32));
    send(b"b");
    assert_eq!(pending() & SIGIO_BIT, 0);
    // Both: SIGIO when data arrives, or the signal F_SETSIG chose.
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_SETFL, O_ASYNC, 0, 0, 0]), 0);
    send(b"c");
    assert_ne!(pending() & SIGIO_BIT, 0, "SIGIO pending");
    clear();
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_SETSIG, 10, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_GETSIG, 0, 0, 0, 0]), 10);
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_SETSIG, 65, 0, 0, 0]), Errno::EINVAL.to_return());
    send(b"d");
    assert_eq!(pending() & (SIGIO_BIT | SIGUSR1_BIT), SIGUSR1_BIT);
    // O_ASYNC off again: silence.
    clear();
    assert_eq!(call(&machine, &process, nr::FCNTL, [4, F_SETFL, 0, 0, 0, 0]), 0);
    send(b"e");
    assert_eq!(pending(), 0);
    // Owners that do not exist.
    machine.write_memory(BUFFER + 0x200, &[1i32.to_le_bytes(), 999i32.to_le_bytes()].concat()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::FCNTL, [4, F_SETOWN_EX, BUFFER + 0x200, 0, 0, 0]),
        Errno::ESRCH.to_return()
    );
    machine.write_memory(BUFFER + 0x200, &[7i32.to_le_bytes(), 1i32.to_le_bytes()].concat()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::FCNTL, [4, F_SETOWN_EX, BUFFER + 0x200, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
}
