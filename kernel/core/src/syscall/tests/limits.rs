//! Sizes and numbers past every limit: Linux's errors, never a kernel
//! buffer as large as the application asked.

use super::*;

const NOFILE: u64 = crate::process::limit::NOFILE as u64;
const AF_UNIX: u64 = 1;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const MSG_DONTWAIT: u64 = 0x40;

/// A socket pair of `kind`; its two descriptors.
fn socket_pair(machine: &FakeMachine, process: &Process, kind: u64) -> (u64, u64) {
    let numbers = BUFFER + 0x3000;
    assert_eq!(call(machine, process, nr::SOCKETPAIR, [AF_UNIX, kind, 0, numbers, 0, 0]), 0);
    let word = read_u64(machine, numbers);
    (word & 0xffff_ffff, word >> 32)
}

#[test]
fn the_descriptor_limit_stops_at_nr_open() {
    let (machine, process) = setup();
    let limit = BUFFER + 0x2000;
    machine.write_memory(limit, &[u64::MAX.to_le_bytes(), u64::MAX.to_le_bytes()].concat()).unwrap();
    assert_eq!(
        call(&machine, &process, nr::PRLIMIT64, [0, NOFILE, limit, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::SETRLIMIT, [NOFILE, limit, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    let most = crate::process::NR_OPEN;
    machine.write_memory(limit, &[most.to_le_bytes(), most.to_le_bytes()].concat()).unwrap();
    assert_eq!(call(&machine, &process, nr::PRLIMIT64, [0, NOFILE, limit, 0, 0, 0]), 0);
    // Even a limit set around the system call is cut to nr_open.
    process.state.lock().limits[crate::process::limit::NOFILE].current = u64::MAX;
    assert_eq!(process.state.lock().descriptor_limit() as u64, most);
    assert_eq!(call(&machine, &process, nr::DUP2, [0, 1 << 30, 0, 0, 0, 0]), Errno::EBADF.to_return());
    assert_eq!(call(&machine, &process, nr::POLL, [BUFFER, 1 << 30, 0, 0, 0, 0]), Errno::EINVAL.to_return());
}

#[test]
fn select_cuts_a_huge_count_to_the_table() {
    let (machine, process) = setup();
    // Empty sets, a zero timeout: Linux looks at its table's size only.
    let sets = BUFFER + 0x1000;
    machine.write_memory(sets, &[0u8; 256]).unwrap();
    let timeout = BUFFER + 0x2000;
    machine.write_memory(timeout, &[0u8; 16]).unwrap();
    assert_eq!(call(&machine, &process, nr::SELECT, [1 << 30, sets, 0, 0, timeout, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::SELECT, [u64::MAX, sets, 0, 0, timeout, 0]),
        Errno::EINVAL.to_return()
    );
}

#[test]
fn datagrams_past_their_limit_fail_before_anything_is_copied() {
    let (machine, process) = setup();
    let (first, _) = socket_pair(&machine, &process, SOCK_DGRAM);
    let huge = 1u64 << 40;
    let result = call(&machine, &process, nr::SENDTO, [first, BUFFER, huge, MSG_DONTWAIT, 0, 0]);
    assert_eq!(result, Errno::EMSGSIZE.to_return());
    // sendmsg with one vector of 32 MiB.
    let vector = BUFFER + 0x1000;
    machine.write_memory(vector, &[BUFFER.to_le_bytes(), (32u64 << 20).to_le_bytes()].concat()).unwrap();
    let header = BUFFER + 0x1100;
    let mut fields = [0u64; 7];
    fields[2] = vector;
    fields[3] = 1;
    machine.write_memory(header, &fields.map(u64::to_le_bytes).concat()).unwrap();
    let result = call(&machine, &process, nr::SENDMSG, [first, header, MSG_DONTWAIT, 0, 0, 0]);
    assert_eq!(result, Errno::EMSGSIZE.to_return());
}

#[test]
fn streams_take_what_fits_of_a_huge_send() {
    let (machine, process) = setup();
    let (first, _) = socket_pair(&machine, &process, SOCK_STREAM);
    // Four pages are mapped at BUFFER: the send stops where they end, with
    // what went before the fault or EFAULT; it never buffers 1 TiB.
    let sent = call(&machine, &process, nr::SENDTO, [first, BUFFER, 1 << 40, MSG_DONTWAIT, 0, 0]);
    assert!(sent == Errno::EFAULT.to_return() || (sent > 0 && sent <= 4 * 4096), "sent {sent}");
    let sent = call(&machine, &process, nr::SENDTO, [first, BUFFER, 4096, MSG_DONTWAIT, 0, 0]);
    assert_eq!(sent, 4096);
}

#[test]
fn a_transfer_that_faults_partway_is_a_short_count() {
    let (machine, process) = setup();
    // Four pages are mapped at BUFFER: half a page is left from here.
    let near_end = BUFFER + 4 * 4096 - 0x800;
    machine.write_memory(near_end, &[b'x'; 0x800]).unwrap();
    assert_eq!(call(&machine, &process, nr::WRITE, [1, near_end, 0x1000, 0, 0, 0]), 0x800);
    assert_eq!(machine.console_text().len(), 0x800);
    assert_eq!(
        call(&machine, &process, nr::WRITE, [1, BUFFER + 4 * 4096, 16, 0, 0, 0]),
        Errno::EFAULT.to_return()
    );
}

#[test]
fn an_empty_send_on_an_unconnected_stream_is_refused() {
    let (machine, process) = setup();
    let fd = call(&machine, &process, nr::SOCKET, [AF_UNIX, SOCK_STREAM, 0, 0, 0, 0]);
    assert!(fd >= 0);
    let result = call(&machine, &process, nr::SENDTO, [fd as u64, BUFFER, 0, MSG_DONTWAIT, 0, 0]);
    assert_eq!(result, Errno::ENOTCONN.to_return());
}

#[test]
fn writes_past_rlimit_fsize_are_cut_then_refused_with_sigxfsz() {
    use crate::vfs::file::flags::{O_CREAT, O_RDWR};
    let harness = super::files::Harness::new();
    let (machine, process) = (&harness.machine, &harness.process);
    let fd = harness.open("/tmp/limited", O_CREAT | O_RDWR, 0o644) as u64;
    process.state.lock().limits[crate::process::limit::FSIZE].current = 10;
    // SIGXFSZ blocked, to see it pending.
    machine.write_memory(BUFFER + 0x2000, &(1u64 << 24).to_le_bytes()).unwrap();
    assert_eq!(call(machine, process, nr::RT_SIGPROCMASK, [0, BUFFER + 0x2000, 0, 8, 0, 0]), 0);
    assert_eq!(call(machine, process, nr::WRITE, [fd, BUFFER, 6, 0, 0, 0]), 6);
    assert_eq!(call(machine, process, nr::WRITE, [fd, BUFFER, 6, 0, 0, 0]), 4, "cut at the limit");
    let thread = process.thread(process.pid).unwrap();
    assert_eq!(crate::signal::pending_set(&thread), 0);
    assert_eq!(call(machine, process, nr::WRITE, [fd, BUFFER, 6, 0, 0, 0]), Errno::EFBIG.to_return());
    assert_eq!(crate::signal::pending_set(&thread), 1 << 24, "SIGXFSZ");
    assert_eq!(call(machine, process, nr::PWRITE64, [fd, BUFFER, 6, 20, 0, 0]), Errno::EFBIG.to_return());
    assert_eq!(call(machine, process, nr::FTRUNCATE, [fd, 11, 0, 0, 0, 0]), Errno::EFBIG.to_return());
    assert_eq!(call(machine, process, nr::FTRUNCATE, [fd, 5, 0, 0, 0, 0]), 0);
}

#[test]
fn mappings_and_the_break_stop_at_rlimit_as_and_rlimit_data() {
    let (machine, process) = setup();
    let limit = |which: usize, value: u64| process.state.lock().limits[which].current = value;
    let used: u64 = process.memory().space.lock().areas().map(|(start, area)| area.end - start).sum();
    limit(crate::process::limit::AS, used + (1 << 20));
    assert!(call(&machine, &process, nr::MMAP, [0, 1 << 19, 3, 0x22, u64::MAX, 0]) > 0);
    assert_eq!(
        call(&machine, &process, nr::MMAP, [0, 1 << 20, 3, 0x22, u64::MAX, 0]),
        Errno::ENOMEM.to_return()
    );
    limit(crate::process::limit::AS, u64::MAX);
    limit(crate::process::limit::DATA, 1 << 20);
    assert_eq!(
        call(&machine, &process, nr::MMAP, [0, 2 << 20, 3, 0x22, u64::MAX, 0]),
        Errno::ENOMEM.to_return()
    );
    assert!(
        call(&machine, &process, nr::MMAP, [0, 2 << 20, 1, 0x22, u64::MAX, 0]) > 0,
        "read-only is not data"
    );
}

#[test]
fn threads_stop_at_rlimit_nproc_except_for_root() {
    let (machine, process) = setup();
    let thread_flags = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000;
    process.state.lock().limits[crate::process::limit::NPROC].current = 1;
    assert!(call(&machine, &process, nr::CLONE, [thread_flags, 0, 0, 0, 0, 0]) > 1, "root is not held to it");
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(call(&machine, &process, nr::CLONE, [thread_flags, 0, 0, 0, 0, 0]), Errno::EAGAIN.to_return());
    process.state.lock().limits[crate::process::limit::NPROC].current = 3;
    assert!(call(&machine, &process, nr::CLONE, [thread_flags, 0, 0, 0, 0, 0]) > 1);
}
