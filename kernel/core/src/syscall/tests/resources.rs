//! times, getrusage, sysinfo and adjtimex.

use super::*;

#[test]
fn usage_calls_check_their_targets_and_report_processor_time() {
    let (machine, process) = setup();
    machine.now_ns.store(2_500_000_000, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(call(&machine, &process, nr::TIMES, [BUFFER, 0, 0, 0, 0, 0]), 250);
    assert_eq!(call(&machine, &process, nr::TIMES, [0, 0, 0, 0, 0, 0]), 250);
    assert_eq!(call(&machine, &process, nr::GETRUSAGE, [0, BUFFER, 0, 0, 0, 0]), 0);
    let thread = process.thread(process.pid).unwrap();
    thread.set_control(Arc::new(crate::fake::FakeThread::default()));
    assert_eq!(call(&machine, &process, nr::GETRUSAGE, [1, BUFFER, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 8), 2, "the fake thread's 2000 ns of user time, in microseconds");
    assert_eq!(read_u64(&machine, BUFFER + 24), 1, "its 1000 ns of system time");
    assert_eq!(call(&machine, &process, nr::GETRUSAGE, [0, BUFFER, 0, 0, 0, 0]), 0);
    assert_eq!((read_u64(&machine, BUFFER + 8), read_u64(&machine, BUFFER + 24)), (2, 1), "the process's");
    assert_eq!(call(&machine, &process, nr::GETRUSAGE, [u64::MAX, BUFFER, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER + 8), 0, "no children");
    assert_eq!(call(&machine, &process, nr::GETRUSAGE, [2, BUFFER, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(
        call(&machine, &process, nr::GETRUSAGE, [0, 0x9000_0000, 0, 0, 0, 0]),
        Errno::EFAULT.to_return()
    );
    assert_eq!(call(&machine, &process, nr::SYSINFO, [BUFFER, 0, 0, 0, 0, 0]), 0);
    assert_eq!(read_u64(&machine, BUFFER), 2, "uptime in seconds");
    assert_eq!(read_u64(&machine, BUFFER + 104) as u32, 1, "mem_unit");
}

#[test]
fn adjtimex_keeps_the_discipline_checks_it_and_refuses_others() {
    let (machine, process) = setup();
    machine.write_memory(BUFFER, &[0u8; 208]).unwrap();
    assert_eq!(call(&machine, &process, nr::ADJTIMEX, [BUFFER, 0, 0, 0, 0, 0]), 5, "TIME_ERROR");
    assert_eq!(read_u64(&machine, BUFFER + 40) as u32, 0x40, "STA_UNSYNC");
    assert_eq!(read_u64(&machine, BUFFER + 72), machine.realtime_ns() / 1_000_000_000);
    // Root sets a frequency past the limit (clamped) and a tick out of
    // range (refused).
    machine.write_memory(BUFFER, &2u32.to_le_bytes()).unwrap();
    machine.write_memory(BUFFER + 16, &(600i64 << 16).to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::ADJTIMEX, [BUFFER, 0, 0, 0, 0, 0]), 5);
    assert_eq!(read_u64(&machine, BUFFER + 16), 500 << 16, "clamped to 500 ppm");
    machine.write_memory(BUFFER, &0x4000u32.to_le_bytes()).unwrap();
    machine.write_memory(BUFFER + 88, &8999i64.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::ADJTIMEX, [BUFFER, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    // ADJ_SETOFFSET steps the wall clock by a second.
    let before = machine.realtime_ns();
    let mut request = [0u8; 208];
    request[..4].copy_from_slice(&0x0100u32.to_le_bytes());
    request[72..80].copy_from_slice(&1i64.to_le_bytes());
    machine.write_memory(BUFFER, &request).unwrap();
    assert_eq!(call(&machine, &process, nr::ADJTIMEX, [BUFFER, 0, 0, 0, 0, 0]), 5);
    assert_eq!(machine.realtime_ns(), before + 1_000_000_000);
    request[80..88].copy_from_slice(&1_000_000i64.to_le_bytes());
    machine.write_memory(BUFFER, &request).unwrap();
    assert_eq!(call(&machine, &process, nr::ADJTIMEX, [BUFFER, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    // Without CAP_SYS_TIME a change is refused, a read is not.
    process.state.lock().credentials = crate::credentials::Credentials::of(1000, 1000);
    machine.write_memory(BUFFER, &2u32.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::ADJTIMEX, [BUFFER, 0, 0, 0, 0, 0]), Errno::EPERM.to_return());
    machine.write_memory(BUFFER, &0u32.to_le_bytes()).unwrap();
    assert_eq!(call(&machine, &process, nr::CLOCK_ADJTIME, [0, BUFFER, 0, 0, 0, 0]), 5);
    assert_eq!(
        call(&machine, &process, nr::CLOCK_ADJTIME, [1, BUFFER, 0, 0, 0, 0]),
        Errno::EOPNOTSUPP.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::CLOCK_ADJTIME, [77, BUFFER, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
}
