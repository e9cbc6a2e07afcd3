//! Sizes and numbers past every limit: Linux's errors, never a kernel
//! buffer as large as the application asked.

use super::*;

const NOFILE: u64 = crate::process::limit::NOFILE as u64;

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
