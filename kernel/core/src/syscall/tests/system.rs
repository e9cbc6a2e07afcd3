//! Names, personality, membarrier, process_vm_readv/writev, kcmp, rseq.

use super::*;

#[test]
fn host_and_domain_names_reach_uname() {
    let (machine, process) = setup();
    machine.write_memory(BUFFER + 0x800, b"example.test").unwrap();
    assert_eq!(call(&machine, &process, nr::SETDOMAINNAME, [BUFFER + 0x800, 12, 0, 0, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::SETDOMAINNAME, [BUFFER + 0x800, 65, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
    assert_eq!(call(&machine, &process, nr::UNAME, [BUFFER, 0, 0, 0, 0, 0]), 0);
    let mut domain = [0u8; 13];
    machine.read_memory(BUFFER + 5 * 65, &mut domain).unwrap();
    assert_eq!(&domain, b"example.test\0");
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(
        call(&machine, &process, nr::SETHOSTNAME, [BUFFER + 0x800, 4, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    assert_eq!(process.namespaces().uts.names().unwrap().host_name(), "rosv");
}

#[test]
fn personality_is_reported_back() {
    let (machine, process) = setup();
    const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
    assert_eq!(call(&machine, &process, nr::PERSONALITY, [0xffff_ffff, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::PERSONALITY, [ADDR_NO_RANDOMIZE, 0, 0, 0, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::PERSONALITY, [0xffff_ffff, 0, 0, 0, 0, 0]),
        ADDR_NO_RANDOMIZE as i64
    );
}

#[test]
fn membarrier_answers_and_checks_registration() {
    let (machine, process) = setup();
    let supported = call(&machine, &process, nr::MEMBARRIER, [0, 0, 0, 0, 0, 0]);
    assert_eq!(supported & 0b1_1111, 0b1_1111, "global, expedited and private expedited");
    assert_eq!(call(&machine, &process, nr::MEMBARRIER, [1, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MEMBARRIER, [1, 1, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(
        call(&machine, &process, nr::MEMBARRIER, [1 << 7, 0, 0, 0, 0, 0]),
        Errno::EINVAL.to_return(),
        "no rseq"
    );
    assert_eq!(call(&machine, &process, nr::MEMBARRIER, [1 << 5, 0, 0, 0, 0, 0]), Errno::EPERM.to_return());
    assert_eq!(call(&machine, &process, nr::MEMBARRIER, [1 << 6, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::MEMBARRIER, [1 << 5, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::RSEQ, [0, 0, 0, 0, 0, 0]), Errno::ENOSYS.to_return());
}

fn iovec(machine: &FakeMachine, at: u64, vectors: &[(u64, u64)]) {
    let bytes: Vec<u8> = vectors
        .iter()
        .flat_map(|(base, length)| [base.to_le_bytes(), length.to_le_bytes()].concat())
        .collect();
    machine.write_memory(at, &bytes).unwrap();
}

#[test]
fn process_vm_moves_bytes_within_the_process() {
    let (machine, process) = setup();
    machine.write_memory(BUFFER, b"abcdefgh").unwrap();
    iovec(&machine, BUFFER + 0x100, &[(BUFFER + 0x200, 3), (BUFFER + 0x300, 5)]);
    iovec(&machine, BUFFER + 0x180, &[(BUFFER, 8)]);
    let args = |pid: u64, flags: u64| [pid, BUFFER + 0x100, 2, BUFFER + 0x180, 1, flags];
    assert_eq!(call(&machine, &process, nr::PROCESS_VM_READV, args(process.pid, 0)), 8);
    let mut first = [0u8; 3];
    machine.read_memory(BUFFER + 0x200, &mut first).unwrap();
    let mut second = [0u8; 5];
    machine.read_memory(BUFFER + 0x300, &mut second).unwrap();
    assert_eq!((&first, &second), (b"abc", b"defgh"));
    assert_eq!(call(&machine, &process, nr::PROCESS_VM_READV, args(2, 0)), Errno::ESRCH.to_return());
    assert_eq!(
        call(&machine, &process, nr::PROCESS_VM_READV, args(process.pid, 1)),
        Errno::EINVAL.to_return()
    );
    iovec(&machine, BUFFER + 0x180, &[(0x9000_0000, 8)]);
    assert_eq!(
        call(&machine, &process, nr::PROCESS_VM_WRITEV, args(process.pid, 0)),
        Errno::EFAULT.to_return()
    );
}

#[test]
fn kcmp_compares_open_files_of_the_process() {
    let (machine, process) = setup();
    let copy = call(&machine, &process, nr::DUP, [1, 0, 0, 0, 0, 0]) as u64;
    let other = call(&machine, &process, nr::EVENTFD2, [0, 0, 0, 0, 0, 0]) as u64;
    assert_eq!(call(&machine, &process, nr::KCMP, [process.pid, process.pid, 0, 1, copy, 0]), 0);
    let forward = call(&machine, &process, nr::KCMP, [process.pid, process.pid, 0, 1, other, 0]);
    let backward = call(&machine, &process, nr::KCMP, [process.pid, process.pid, 0, other, 1, 0]);
    assert!(forward == 1 && backward == 2 || forward == 2 && backward == 1, "{forward} {backward}");
    assert_eq!(
        call(&machine, &process, nr::KCMP, [process.pid, process.pid, 1, 0, 0, 0]),
        0,
        "one address space"
    );
    assert_eq!(call(&machine, &process, nr::KCMP, [1, 77, 1, 0, 0, 0]), Errno::ESRCH.to_return());
    assert_eq!(
        call(&machine, &process, nr::KCMP, [process.pid, process.pid, 0, 1, 99, 0]),
        Errno::EBADF.to_return()
    );
}

#[test]
fn keys_are_added_read_described_and_revoked() {
    let (machine, process) = setup();
    let text = |at: u64, value: &[u8]| machine.write_memory(at, value).unwrap();
    text(BUFFER, b"user\0");
    text(BUFFER + 0x10, b"rosv:syscall-test\0");
    text(BUFFER + 0x40, b"payload");
    let session = -3i64 as u64;
    let key = call(&machine, &process, nr::ADD_KEY, [BUFFER, BUFFER + 0x10, BUFFER + 0x40, 7, session, 0]);
    assert!(key > 0);
    let key = key as u64;
    assert_eq!(call(&machine, &process, nr::KEYCTL, [11, key, BUFFER + 0x100, 64, 0, 0]), 7);
    assert_eq!(call(&machine, &process, nr::KEYCTL, [6, key, BUFFER + 0x200, 64, 0, 0]), 36);
    let mut described = [0u8; 36];
    machine.read_memory(BUFFER + 0x200, &mut described).unwrap();
    assert_eq!(&described, b"user;0;0;3f010000;rosv:syscall-test\0");
    assert_eq!(call(&machine, &process, nr::REQUEST_KEY, [BUFFER, BUFFER + 0x10, 0, 0, 0, 0]), key as i64);
    text(BUFFER + 0x300, b"bogus\0");
    assert_eq!(
        call(&machine, &process, nr::ADD_KEY, [BUFFER + 0x300, BUFFER + 0x10, BUFFER + 0x40, 7, session, 0]),
        Errno::ENODEV.to_return()
    );
    assert_eq!(call(&machine, &process, nr::KEYCTL, [3, key, 0, 0, 0, 0]), 0);
    assert_eq!(
        call(&machine, &process, nr::KEYCTL, [11, key, BUFFER + 0x100, 64, 0, 0]),
        Errno::EKEYREVOKED.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::REQUEST_KEY, [BUFFER, BUFFER + 0x10, 0, 0, 0, 0]),
        Errno::EKEYREVOKED.to_return(),
        "found, but revoked"
    );
    assert_eq!(
        call(&machine, &process, nr::REQUEST_KEY, [BUFFER + 0x300, 0x9000_0000, 0, 0, 0, 0]),
        Errno::EFAULT.to_return(),
        "the description is read before the type is looked up"
    );
    text(BUFFER + 0x380, b"keyring\0");
    text(BUFFER + 0x3c0, b".builtin_trusted_keys\0");
    assert_eq!(
        call(&machine, &process, nr::REQUEST_KEY, [BUFFER + 0x380, BUFFER + 0x3c0, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::KEYCTL, [1, BUFFER + 0x3c0, 0, 0, 0, 0]),
        Errno::EPERM.to_return()
    );
    assert_eq!(
        call(&machine, &process, nr::REQUEST_KEY, [BUFFER, BUFFER + 0x10, 0x9000_0000, 0, 0, 0]),
        Errno::EFAULT.to_return(),
        "the callout information is read too"
    );
    assert_eq!(call(&machine, &process, nr::KEYCTL, [14, 3, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::KEYCTL, [14, u64::from(u32::MAX), 0, 0, 0, 0]), 3);
    assert_eq!(call(&machine, &process, nr::KEYCTL, [99, 0, 0, 0, 0, 0]), Errno::EOPNOTSUPP.to_return());
    assert_eq!(
        call(&machine, &process, nr::KEYCTL, [0, -9i64 as u64, 0, 0, 0, 0]),
        Errno::EINVAL.to_return()
    );
}

#[test]
fn syslog_reports_its_ring_and_checks_its_arguments() {
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::SYSLOG, [10, 0, 0, 0, 0, 0]), 16384);
    assert_eq!(
        call(&machine, &process, nr::SYSLOG, [3, BUFFER, 100, 0, 0, 0]),
        0,
        "the fake machine logs nothing"
    );
    assert_eq!(call(&machine, &process, nr::SYSLOG, [3, 0, 100, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::SYSLOG, [8, 0, 9, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::SYSLOG, [11, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(call(&machine, &process, nr::SYSLOG, [5, 0, 0, 0, 0, 0]), Errno::EPERM.to_return());
    assert_eq!(call(&machine, &process, nr::SYSLOG, [10, 0, 0, 0, 0, 0]), 16384);
}

#[test]
fn sticky_timeouts_keep_select_from_writing_back_the_time_left() {
    let (machine, process) = setup();
    let timeout = BUFFER + 0x500;
    let timeval = |seconds: u64, microseconds: u64| {
        machine.write_memory(timeout, &[seconds.to_le_bytes(), microseconds.to_le_bytes()].concat()).unwrap();
    };
    timeval(0, 10);
    assert_eq!(call(&machine, &process, nr::SELECT, [0, 0, 0, 0, timeout, 0]), 0);
    assert_eq!(read_u64(&machine, timeout + 8), 0, "the time left: none");
    const STICKY_TIMEOUTS: u64 = 0x400_0000;
    assert_eq!(call(&machine, &process, nr::PERSONALITY, [STICKY_TIMEOUTS, 0, 0, 0, 0, 0]), 0);
    timeval(0, 10);
    assert_eq!(call(&machine, &process, nr::SELECT, [0, 0, 0, 0, timeout, 0]), 0);
    assert_eq!(read_u64(&machine, timeout + 8), 10, "left as given");
}

#[test]
fn a_key_request_that_would_make_a_key_needs_write_permission() {
    let (machine, process) = setup();
    let text = |at: u64, value: &[u8]| machine.write_memory(at, value).unwrap();
    text(BUFFER, b"user\0");
    text(BUFFER + 0x10, b"rosv:never-made\0");
    text(BUFFER + 0x40, b"callout\0");
    text(BUFFER + 0x80, b"keyring\0");
    text(BUFFER + 0xc0, b"rosv-request-destination\0");
    let process_keyring = -2i64 as u64;
    let ring =
        call(&machine, &process, nr::ADD_KEY, [BUFFER + 0x80, BUFFER + 0xc0, 0, 0, process_keyring, 0]);
    assert!(ring > 0);
    let ring = ring as u64;
    let request = [BUFFER, BUFFER + 0x10, BUFFER + 0x40, ring, 0, 0];
    assert_eq!(call(&machine, &process, nr::REQUEST_KEY, request), Errno::ENOKEY.to_return());
    let search_read_view = 0x0b00_0000;
    assert_eq!(call(&machine, &process, nr::KEYCTL, [5, ring, search_read_view, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::REQUEST_KEY, request), Errno::EACCES.to_return());
    assert_eq!(
        call(&machine, &process, nr::REQUEST_KEY, [BUFFER, BUFFER + 0x10, 0, ring, 0, 0]),
        Errno::ENOKEY.to_return()
    );
}

#[test]
fn unshare_makes_namespaces_with_privilege() {
    let (machine, process) = setup();
    const NEWUTS: u64 = crate::namespace::flag::NEWUTS;
    const NEWPID: u64 = crate::namespace::flag::NEWPID;
    const NEWUSER: u64 = crate::namespace::flag::NEWUSER;
    let before = process.namespaces().uts.inode();
    assert_eq!(call(&machine, &process, nr::UNSHARE, [NEWPID, 0, 0, 0, 0, 0]), Errno::EINVAL.to_return());
    assert_eq!(call(&machine, &process, nr::UNSHARE, [NEWUTS, 0, 0, 0, 0, 0]), 0);
    assert_ne!(process.namespaces().uts.inode(), before);
    machine.write_memory(BUFFER, b"inner").unwrap();
    assert_eq!(call(&machine, &process, nr::SETHOSTNAME, [BUFFER, 5, 0, 0, 0, 0]), 0);
    assert_eq!(process.namespaces().uts.names().unwrap().host_name(), "inner");
    assert_ne!(crate::namespace::initial_uts().names().unwrap().host_name(), "inner");
    process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(call(&machine, &process, nr::UNSHARE, [NEWUTS, 0, 0, 0, 0, 0]), Errno::EPERM.to_return());
    assert_eq!(call(&machine, &process, nr::UNSHARE, [NEWUSER | NEWUTS, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::GETUID, [0; 6]), 65534);
}
