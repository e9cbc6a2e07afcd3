//! Descriptors over files, pipes and devices, through the system calls.

use super::*;
use crate::errno::Errno;

/// Where test strings go: the last mapped page, 256 bytes each.
const STRINGS: u64 = BUFFER + 0x3000;

pub(super) struct Harness {
    pub(super) machine: FakeMachine,
    pub(super) process: Arc<Process>,
    next_string: core::cell::Cell<u64>,
}

impl Harness {
    pub(super) fn new() -> Self {
        let (machine, process) = setup();
        Harness { machine, process, next_string: core::cell::Cell::new(STRINGS) }
    }

    pub(super) fn call(&self, number: u64, arguments: [u64; 6]) -> i64 {
        call(&self.machine, &self.process, number, arguments)
    }

    /// A NUL-terminated copy of `text` in application memory.
    pub(super) fn text(&self, text: &str) -> u64 {
        let address = self.next_string.get();
        self.next_string.set(if address + 512 >= BUFFER + 0x4000 { STRINGS } else { address + 256 });
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        self.machine.write_memory(address, &bytes).unwrap();
        address
    }

    pub(super) fn open(&self, path: &str, flags: u32, mode: u64) -> i64 {
        self.call(nr::OPEN, [self.text(path), u64::from(flags), mode, 0, 0, 0])
    }

    pub(super) fn write(&self, fd: i64, bytes: &[u8]) -> i64 {
        self.machine.write_memory(BUFFER, bytes).unwrap();
        self.call(nr::WRITE, [fd as u64, BUFFER, bytes.len() as u64, 0, 0, 0])
    }

    pub(super) fn read(&self, fd: i64, length: usize) -> core::result::Result<Vec<u8>, i64> {
        let result = self.call(nr::READ, [fd as u64, BUFFER, length as u64, 0, 0, 0]);
        if result < 0 {
            return Err(result);
        }
        let mut bytes = vec![0u8; result as usize];
        self.machine.read_memory(BUFFER, &mut bytes).unwrap();
        Ok(bytes)
    }

    pub(super) fn stat_word(&self, offset: u64) -> u64 {
        read_u64(&self.machine, BUFFER + 0x2000 + offset)
    }
}

use alloc::vec;
use alloc::vec::Vec;

use crate::vfs::file::flags::{
    O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDONLY, O_RDWR,
    O_TRUNC, O_WRONLY,
};

pub(super) fn errno(error: Errno) -> i64 {
    error.to_return()
}

#[test]
fn files_open_read_write_seek_and_close() {
    let harness = Harness::new();
    let fd = harness.open("/tmp/file", O_CREAT | O_RDWR, 0o644);
    assert_eq!(fd, 3);
    assert_eq!(harness.write(fd, b"hello world"), 11);
    assert_eq!(harness.call(nr::LSEEK, [3, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.read(fd, 5).unwrap(), b"hello");
    assert_eq!(harness.call(nr::LSEEK, [3, 1, 1, 0, 0, 0]), 6);
    assert_eq!(harness.read(fd, 100).unwrap(), b"world");
    assert_eq!(harness.read(fd, 100).unwrap(), b"");
    assert_eq!(harness.call(nr::LSEEK, [3, (-5i64) as u64, 2, 0, 0, 0]), 6);
    assert_eq!(harness.call(nr::LSEEK, [3, (-50i64) as u64, 2, 0, 0, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::LSEEK, [3, 0, 9, 0, 0, 0]), errno(Errno::EINVAL));
    // pread and pwrite leave the offset alone.
    harness.machine.write_memory(BUFFER, b"HELLO").unwrap();
    assert_eq!(harness.call(nr::PWRITE64, [3, BUFFER, 5, 0, 0, 0]), 5);
    assert_eq!(harness.call(nr::PREAD64, [3, BUFFER + 100, 11, 0, 0, 0]), 11);
    let mut bytes = [0u8; 11];
    harness.machine.read_memory(BUFFER + 100, &mut bytes).unwrap();
    assert_eq!(&bytes, b"HELLO world");
    assert_eq!(harness.call(nr::PREAD64, [3, BUFFER, 1, u64::MAX, 0, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::CLOSE, [3, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::CLOSE, [3, 0, 0, 0, 0, 0]), errno(Errno::EBADF));
    // O_APPEND writes at the end; O_TRUNC empties; O_EXCL refuses.
    let fd = harness.open("/tmp/file", O_WRONLY | O_APPEND, 0);
    assert_eq!(harness.write(fd, b"!"), 1);
    assert_eq!(harness.call(nr::LSEEK, [fd as u64, 0, 1, 0, 0, 0]), 12);
    assert_eq!(harness.read(fd, 1), Err(errno(Errno::EBADF)));
    assert_eq!(harness.open("/tmp/file", O_CREAT | O_EXCL | O_WRONLY, 0o644), errno(Errno::EEXIST));
    let fd = harness.open("/tmp/file", O_RDONLY | O_TRUNC, 0);
    assert_eq!(harness.write(fd, b"x"), errno(Errno::EBADF));
    assert_eq!(harness.read(fd, 10).unwrap(), b"");
}

#[test]
fn opens_fail_with_linux_errors() {
    let harness = Harness::new();
    assert_eq!(harness.open("/tmp/missing", O_RDONLY, 0), errno(Errno::ENOENT));
    assert_eq!(harness.open("/tmp/missing/x", O_CREAT | O_RDWR, 0o644), errno(Errno::ENOENT));
    assert_eq!(harness.open("/etc/motd/x", O_RDONLY, 0), errno(Errno::ENOTDIR));
    assert_eq!(harness.open("/etc/motd", O_RDONLY | O_DIRECTORY, 0), errno(Errno::ENOTDIR));
    assert_eq!(harness.open("/tmp", O_WRONLY, 0), errno(Errno::EISDIR));
    assert_eq!(harness.open("/tmp", O_CREAT | O_RDONLY, 0o644), errno(Errno::EISDIR));
    assert_eq!(harness.open("/tmp/new/", O_CREAT | O_RDWR, 0o644), errno(Errno::EISDIR));
    assert_eq!(harness.open("/etc/link", O_RDONLY | O_NOFOLLOW, 0), errno(Errno::ELOOP));
    assert_eq!(harness.open("/etc/motd", O_RDWR, 0), errno(Errno::EROFS));
    assert_eq!(harness.open("/etc/new", O_CREAT | O_RDWR, 0o644), errno(Errno::EROFS));
    assert_eq!(harness.open("/etc/motd", 3, 0), errno(Errno::EINVAL));
    assert_eq!(harness.open("/etc/motd/", O_RDONLY, 0), errno(Errno::ENOTDIR));
    assert_eq!(harness.call(nr::OPEN, [0x9000_0000, 0, 0, 0, 0, 0]), errno(Errno::EFAULT));
    let directory = harness.open("/tmp", O_RDONLY | O_DIRECTORY, 0);
    assert_eq!(harness.read(directory, 10), Err(errno(Errno::EISDIR)));
    // O_PATH names without opening: fstat works, read does not.
    let path_only = harness.open("/etc/link", O_PATH | O_NOFOLLOW, 0);
    assert_eq!(harness.read(path_only, 1), Err(errno(Errno::EBADF)));
    assert_eq!(harness.call(nr::FSTAT, [path_only as u64, BUFFER + 0x2000, 0, 0, 0, 0]), 0);
    assert_eq!(harness.stat_word(24) as u32 & 0o170000, 0o120000);
    // A dangling symlink with O_CREAT creates its target.
    assert_eq!(
        harness.call(nr::SYMLINK, [harness.text("made"), harness.text("/tmp/dangling"), 0, 0, 0, 0]),
        0
    );
    let created = harness.open("/tmp/dangling", O_CREAT | O_WRONLY, 0o600);
    assert!(created > 0);
    assert!(harness.open("/tmp/made", O_RDONLY, 0) > 0);
}

#[test]
fn duplicates_share_the_offset_and_flags() {
    let harness = Harness::new();
    let fd = harness.open("/etc/motd", O_RDONLY, 0);
    let copy = harness.call(nr::DUP, [fd as u64, 0, 0, 0, 0, 0]);
    assert_eq!(copy, fd + 1);
    assert_eq!(harness.read(fd, 100).unwrap().len(), 100);
    assert_eq!(harness.call(nr::LSEEK, [copy as u64, 0, 1, 0, 0, 0]), 100);
    assert_eq!(harness.call(nr::FCNTL, [copy as u64, 4, u64::from(O_NONBLOCK), 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 3, 0, 0, 0, 0]) as u32 & O_NONBLOCK, O_NONBLOCK);
    assert_eq!(harness.call(nr::DUP3, [fd as u64, 10, u64::from(O_CLOEXEC), 0, 0, 0]), 10);
    assert_eq!(harness.call(nr::FCNTL, [10, 1, 0, 0, 0, 0]), 1);
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 1, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 0, 7, 0, 0, 0]), 7);
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 0, 5000, 0, 0, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::DUP2, [fd as u64, 5000, 0, 0, 0, 0]), errno(Errno::EBADF));
    assert_eq!(harness.call(nr::DUP2, [99, 4, 0, 0, 0, 0]), errno(Errno::EBADF));
    assert_eq!(harness.call(nr::DUP3, [fd as u64, 10, 1, 0, 0, 0]), errno(Errno::EINVAL));
    // dup2 over an open descriptor replaces it.
    assert_eq!(harness.call(nr::DUP2, [0, 10, 0, 0, 0, 0]), 10);
    assert_eq!(harness.call(nr::IOCTL, [10, 0x5401, BUFFER, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::IOCTL, [fd as u64, 0x5401, BUFFER, 0, 0, 0]), errno(Errno::ENOTTY));
    // A read lock over the whole file (struct flock: F_RDLCK from 0, length
    // 0); the process's own lock does not conflict with F_GETLK's probe,
    // and a write lock needs a writable descriptor.
    harness.machine.write_memory(BUFFER, &[0u8; 32]).unwrap();
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 6, BUFFER, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 5, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&harness.machine, BUFFER) & 0xffff, 2);
    harness.machine.write_memory(BUFFER, &[1u8, 0]).unwrap();
    assert_eq!(harness.call(nr::FCNTL, [fd as u64, 6, BUFFER, 0, 0, 0]), errno(Errno::EBADF));
    assert_eq!(harness.call(nr::FLOCK, [fd as u64, 2, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::FLOCK, [fd as u64, 3, 0, 0, 0, 0]), errno(Errno::EINVAL));
    // FIONREAD on a regular file counts what is left.
    assert_eq!(harness.call(nr::IOCTL, [fd as u64, 0x541b, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&harness.machine, BUFFER) & 0xffff_ffff, 1200);
}

#[test]
fn pipes_carry_data_and_report_their_ends() {
    let harness = Harness::new();
    assert_eq!(harness.call(nr::PIPE2, [BUFFER + 0x2000, u64::from(O_NONBLOCK), 0, 0, 0, 0]), 0);
    let ends = harness.stat_word(0);
    let (reader, writer) = ((ends & 0xffff_ffff) as i64, (ends >> 32) as i64);
    assert_eq!((reader, writer), (3, 4));
    assert_eq!(harness.read(reader, 10), Err(errno(Errno::EAGAIN)));
    assert_eq!(harness.write(writer, b"through"), 7);
    assert_eq!(harness.call(nr::IOCTL, [reader as u64, 0x541b, BUFFER + 0x100, 0, 0, 0]), 0);
    assert_eq!(read_u64(&harness.machine, BUFFER + 0x100) & 0xffff_ffff, 7);
    assert_eq!(harness.call(nr::LSEEK, [reader as u64, 0, 0, 0, 0, 0]), errno(Errno::ESPIPE));
    assert_eq!(harness.call(nr::PREAD64, [reader as u64, BUFFER, 1, 0, 0, 0]), errno(Errno::ESPIPE));
    assert_eq!(harness.read(writer, 1), Err(errno(Errno::EBADF)));
    assert_eq!(harness.read(reader, 100).unwrap(), b"through");
    assert_eq!(harness.call(nr::CLOSE, [writer as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.read(reader, 100).unwrap(), b"", "end of file once the writer is gone");
    assert_eq!(harness.call(nr::FSTAT, [reader as u64, BUFFER + 0x2000, 0, 0, 0, 0]), 0);
    assert_eq!(harness.stat_word(24) as u32 & 0o170000, 0o010000);
    assert_eq!(harness.call(nr::PIPE2, [BUFFER, 1, 0, 0, 0, 0]), errno(Errno::EINVAL));
}

#[test]
fn writing_to_a_pipe_without_readers_raises_sigpipe() {
    let harness = Harness::new();
    assert_eq!(harness.call(nr::PIPE, [BUFFER + 0x2000, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::CLOSE, [3, 0, 0, 0, 0, 0]), 0);
    // SIGPIPE ignored: the write fails with EPIPE.
    harness
        .machine
        .write_memory(BUFFER + 0x200, &[1u64.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat())
        .unwrap();
    assert_eq!(harness.call(nr::RT_SIGACTION, [13, BUFFER + 0x200, 0, 8, 0, 0]), 0);
    assert_eq!(harness.write(4, b"x"), errno(Errno::EPIPE));
    // By default SIGPIPE ends the process with 128 + 13.
    let (machine, process) = setup();
    assert_eq!(call(&machine, &process, nr::PIPE, [BUFFER, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&machine, &process, nr::CLOSE, [3, 0, 0, 0, 0, 0]), 0);
    assert_eq!(outcome(&machine, &process, nr::WRITE, [4, BUFFER, 1, 0, 0, 0]), Outcome::ExitThread);
    assert_eq!(process.exit_status(), Some(141));
}

#[test]
fn poll_and_select_see_pipe_readiness() {
    let harness = Harness::new();
    assert_eq!(harness.call(nr::PIPE, [BUFFER + 0x2000, 0, 0, 0, 0, 0]), 0);
    let poll_entry = |fd: i32, events: u16| {
        [fd.to_le_bytes().to_vec(), events.to_le_bytes().to_vec(), vec![0, 0]].concat()
    };
    harness.machine.write_memory(BUFFER, &[poll_entry(3, 1), poll_entry(4, 4)].concat()).unwrap();
    assert_eq!(harness.call(nr::POLL, [BUFFER, 2, 0, 0, 0, 0]), 1, "only the writer is ready");
    assert_eq!(read_u64(&harness.machine, BUFFER) >> 48, 0);
    assert_eq!(read_u64(&harness.machine, BUFFER + 8) >> 48, 4);
    assert_eq!(harness.write(4, b"x"), 1);
    harness.machine.write_memory(BUFFER, &[poll_entry(3, 1)].concat()).unwrap();
    assert_eq!(harness.call(nr::POLL, [BUFFER, 1, 1000, 0, 0, 0]), 1);
    // select: read set {3}, write set {4}.
    harness.machine.write_memory(BUFFER + 0x100, &(1u64 << 3).to_le_bytes()).unwrap();
    harness.machine.write_memory(BUFFER + 0x108, &(1u64 << 4).to_le_bytes()).unwrap();
    assert_eq!(harness.call(nr::SELECT, [5, BUFFER + 0x100, BUFFER + 0x108, 0, 0, 0]), 2);
    assert_eq!(harness.call(nr::SELECT, [5, BUFFER + 0x100, 0, 0, 0, 0]), 1);
    harness.machine.write_memory(BUFFER + 0x100, &(1u64 << 9).to_le_bytes()).unwrap();
    assert_eq!(harness.call(nr::SELECT, [10, BUFFER + 0x100, 0, 0, 0, 0]), errno(Errno::EBADF));
}

#[test]
fn devices_behave_like_linux_devices() {
    let harness = Harness::new();
    let null = harness.open("/dev/null", O_RDWR, 0);
    assert_eq!(harness.write(null, b"gone"), 4);
    assert_eq!(harness.read(null, 10).unwrap(), b"");
    let zero = harness.open("/dev/zero", O_RDONLY, 0);
    harness.machine.write_memory(BUFFER, &[9u8; 8]).unwrap();
    assert_eq!(harness.read(zero, 8).unwrap(), [0u8; 8]);
    let random = harness.open("/dev/urandom", O_RDONLY, 0);
    let first = harness.read(random, 32).unwrap();
    assert_ne!(first, harness.read(random, 32).unwrap());
    let full = harness.open("/dev/full", O_WRONLY, 0);
    assert_eq!(harness.write(full, b"x"), errno(Errno::ENOSPC));
    let tty = harness.open("/dev/tty", O_RDWR, 0);
    assert_eq!(harness.write(tty, b"to the console\n"), 15);
    assert!(harness.machine.console_text().contains("to the console"));
    assert_eq!(harness.call(nr::IOCTL, [tty as u64, 0x5401, BUFFER, 0, 0, 0]), 0);
    let disk = harness.open("/dev/vda", O_RDWR, 0);
    assert_eq!(harness.call(nr::LSEEK, [disk as u64, 1000, 0, 0, 0, 0]), 1000);
    assert_eq!(harness.write(disk, b"on the disk"), 11);
    assert_eq!(harness.call(nr::PREAD64, [disk as u64, BUFFER + 0x100, 11, 1000, 0, 0]), 11);
    assert_eq!(harness.call(nr::LSEEK, [disk as u64, 0, 2, 0, 0, 0]), 64 * 1024);
}

#[test]
fn vectors_and_sendfile_move_data() {
    let harness = Harness::new();
    let fd = harness.open("/tmp/vectors", O_CREAT | O_RDWR, 0o644);
    harness.machine.write_memory(BUFFER + 0x100, b"abcdef").unwrap();
    let mut vectors = Vec::new();
    for (base, length) in [(BUFFER + 0x100, 2u64), (BUFFER + 0x104, 2)] {
        vectors.extend_from_slice(&base.to_le_bytes());
        vectors.extend_from_slice(&length.to_le_bytes());
    }
    harness.machine.write_memory(BUFFER + 0x200, &vectors).unwrap();
    assert_eq!(harness.call(nr::WRITEV, [fd as u64, BUFFER + 0x200, 2, 0, 0, 0]), 4);
    assert_eq!(harness.call(nr::PREADV, [fd as u64, BUFFER + 0x200, 2, 1, 0, 0]), 3);
    let mut bytes = [0u8; 6];
    harness.machine.read_memory(BUFFER + 0x100, &mut bytes).unwrap();
    assert_eq!(&bytes, b"becdff");
    assert_eq!(harness.call(nr::LSEEK, [fd as u64, 2, 0, 0, 0, 0]), 2);
    assert_eq!(harness.call(nr::PREADV2, [fd as u64, BUFFER + 0x200, 2, u64::MAX, 0, 0]), 2);
    assert_eq!(harness.call(nr::LSEEK, [fd as u64, 0, 1, 0, 0, 0]), 4, "-1 reads at the file offset");
    assert_eq!(harness.call(nr::PWRITEV2, [fd as u64, BUFFER + 0x200, 2, 0, 0, 8]), errno(Errno::EOPNOTSUPP));
    let motd = harness.open("/etc/motd", O_RDONLY, 0);
    let copy = harness.open("/tmp/copy", O_CREAT | O_WRONLY, 0o644);
    harness.machine.write_memory(BUFFER + 0x300, &100u64.to_le_bytes()).unwrap();
    assert_eq!(harness.call(nr::SENDFILE, [copy as u64, motd as u64, BUFFER + 0x300, 5000, 0, 0]), 1200);
    assert_eq!(read_u64(&harness.machine, BUFFER + 0x300), 1300);
    assert_eq!(
        harness.call(nr::LSEEK, [motd as u64, 0, 1, 0, 0, 0]),
        0,
        "the offset argument leaves the file's alone"
    );
    assert_eq!(harness.call(nr::FSTAT, [copy as u64, BUFFER + 0x2000, 0, 0, 0, 0]), 0);
    assert_eq!(harness.stat_word(48), 1200);
    assert_eq!(harness.call(nr::FTRUNCATE, [copy as u64, 10, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::FTRUNCATE, [motd as u64, 10, 0, 0, 0, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::FSYNC, [copy as u64, 0, 0, 0, 0, 0]), 0);
}

impl Harness {
    /// Faults in the page holding `address` as `access` would.
    fn touch(&self, address: u64, access: crate::memory::Access) -> crate::memory::FaultResolution {
        self.process.memory().space.lock().resolve_fault(&self.machine, address, access)
    }
}

#[test]
fn files_map_their_own_pages() {
    use crate::memory::{Access, FaultResolution};
    let harness = Harness::new();
    let motd = harness.open("/etc/motd", O_RDONLY, 0);
    let address = harness.call(nr::MMAP, [0, 8192, 1, 0x02, motd as u64, 0]) as u64;
    assert!(address as i64 > 0, "mmap: {address}");
    assert_eq!(harness.touch(address, Access::Read), FaultResolution::Mapped);
    let mut bytes = [0u8; 1301];
    harness.machine.read_memory(address, &mut bytes).unwrap();
    assert!(bytes[..1300].iter().all(|&byte| byte == 7) && bytes[1300] == 0);
    assert_eq!(harness.machine.rights(address), Some(Rights { read: true, write: false, execute: false }));
    assert_eq!(
        harness.touch(address + 4096, Access::Read),
        FaultResolution::BusError,
        "past the end of the file"
    );
    assert_eq!(harness.call(nr::MMAP, [0, 4096, 1, 0x02, motd as u64, 100]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::MMAP, [0, 4096, 3, 0x01, motd as u64, 0]), errno(Errno::EACCES));
    let writer = harness.open("/tmp/out", O_CREAT | O_WRONLY, 0o644);
    assert_eq!(harness.call(nr::MMAP, [0, 4096, 1, 0x02, writer as u64, 0]), errno(Errno::EACCES));
    let directory = harness.open("/tmp", O_RDONLY, 0);
    assert_eq!(harness.call(nr::MMAP, [0, 4096, 1, 0x02, directory as u64, 0]), errno(Errno::ENODEV));
}

#[test]
fn shared_file_mappings_meet_read_and_write() {
    use crate::memory::{Access, FaultResolution};
    let harness = Harness::new();
    let fd = harness.open("/tmp/shared", O_CREAT | O_RDWR, 0o644);
    assert_eq!(harness.write(fd, b"hello, pages"), 12);
    let first = harness.call(nr::MMAP, [0, 4096, 3, 0x01, fd as u64, 0]) as u64;
    let second = harness.call(nr::MMAP, [0, 4096, 3, 0x01, fd as u64, 0]) as u64;
    assert_eq!(harness.touch(first, Access::Write), FaultResolution::Mapped);
    assert_eq!(harness.touch(second, Access::Read), FaultResolution::Mapped);
    harness.machine.write_memory(first, b"HELLO").unwrap();
    let mut seen = [0u8; 12];
    harness.machine.read_memory(second, &mut seen).unwrap();
    assert_eq!(&seen, b"HELLO, pages", "one mapping sees the other's stores");
    assert_eq!(harness.call(nr::PREAD64, [fd as u64, BUFFER, 5, 0, 0, 0]), 5);
    let mut read_back = [0u8; 5];
    harness.machine.read_memory(BUFFER, &mut read_back).unwrap();
    assert_eq!(&read_back, b"HELLO", "read sees the stores");
    harness.machine.write_memory(BUFFER, b"pwrite").unwrap();
    assert_eq!(harness.call(nr::PWRITE64, [fd as u64, BUFFER, 6, 7, 0, 0]), 6);
    harness.machine.read_memory(first, &mut seen).unwrap();
    assert_eq!(&seen, b"HELLO, pwrit", "the mapping sees writes");
}

#[test]
fn private_file_mappings_copy_on_the_first_store() {
    use crate::memory::{Access, FaultResolution};
    let harness = Harness::new();
    let fd = harness.open("/tmp/private", O_CREAT | O_RDWR, 0o644);
    assert_eq!(harness.write(fd, b"original"), 8);
    let address = harness.call(nr::MMAP, [0, 4096, 3, 0x02, fd as u64, 0]) as u64;
    assert_eq!(harness.touch(address, Access::Read), FaultResolution::Mapped);
    assert_eq!(harness.machine.rights(address).map(|rights| rights.write), Some(false), "not yet copied");
    assert_eq!(harness.touch(address, Access::Write), FaultResolution::Mapped);
    assert_eq!(harness.machine.rights(address).map(|rights| rights.write), Some(true));
    harness.machine.write_memory(address, b"CHANGED!").unwrap();
    assert_eq!(harness.call(nr::PREAD64, [fd as u64, BUFFER, 8, 0, 0, 0]), 8);
    let mut file = [0u8; 8];
    harness.machine.read_memory(BUFFER, &mut file).unwrap();
    assert_eq!(&file, b"original", "the file keeps its bytes");
    // MADV_DONTNEED gives the file's bytes back.
    assert_eq!(harness.call(nr::MADVISE, [address, 4096, 4, 0, 0, 0]), 0);
    assert_eq!(harness.touch(address, Access::Read), FaultResolution::Mapped);
    let mut again = [0u8; 8];
    harness.machine.read_memory(address, &mut again).unwrap();
    assert_eq!(&again, b"original");
}

#[test]
fn disks_answer_block_requests_given_as_a_sign_extended_int() {
    // Loop devices reach their files as the kernel: through the machine
    // installed at start.
    crate::machine::install(alloc::boxed::Box::leak(alloc::boxed::Box::new(crate::fake::FakeMachine::new())));
    let harness = Harness::new();
    let disk = harness.open("/dev/vda", O_RDWR, 0);
    // BLKGETSIZE64 as musl passes it: an int whose top bit is set.
    let request = 0x8008_1272u32 as i32 as i64 as u64;
    assert_eq!(harness.call(nr::IOCTL, [disk as u64, request, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&harness.machine, BUFFER), 64 * 1024);
    assert_eq!(harness.call(nr::IOCTL, [disk as u64, 0x1268, BUFFER, 0, 0, 0]), 0, "BLKSSZGET");
    assert_eq!(read_u64(&harness.machine, BUFFER) & 0xffff_ffff, 512);
    assert_eq!(harness.call(nr::IOCTL, [disk as u64, 0x4c05, BUFFER, 0, 0, 0]), errno(Errno::ENOTTY));
    let control = harness.open("/dev/loop-control", O_RDWR, 0);
    assert_eq!(harness.call(nr::IOCTL, [control as u64, 0x4c82, 0, 0, 0, 0]), 0, "loop0 is free");
    assert_eq!(
        harness.call(nr::IOCTL, [control as u64, 0x4c81, u64::from(u32::MAX), 0, 0, 0]),
        errno(Errno::EINVAL)
    );
    let unbound = harness.open("/dev/loop0", O_RDWR, 0);
    assert_eq!(harness.call(nr::IOCTL, [unbound as u64, 0x4c05, BUFFER, 0, 0, 0]), errno(Errno::ENXIO));
    assert_eq!(
        harness.call(nr::IOCTL, [unbound as u64, 0x4c00, disk as u64, 0, 0, 0]),
        0,
        "LOOP_SET_FD on a disk"
    );
    assert_eq!(harness.call(nr::IOCTL, [unbound as u64, request, BUFFER, 0, 0, 0]), 0);
    assert_eq!(read_u64(&harness.machine, BUFFER), 64 * 1024);
    assert_eq!(
        harness.call(nr::IOCTL, [unbound as u64, 0x4c00, unbound as u64, 0, 0, 0]),
        errno(Errno::EBUSY)
    );
    assert_eq!(harness.call(nr::IOCTL, [unbound as u64, 0x4c01, 0, 0, 0, 0]), 0);
}
