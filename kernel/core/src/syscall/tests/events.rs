//! eventfd and epoll through the system calls.

use alloc::vec::Vec;

use super::files::{Harness, errno};
use super::*;
use crate::errno::Errno;
use crate::vfs::file::flags::{O_CLOEXEC, O_NONBLOCK};

const EFD_SEMAPHORE: u64 = 1;

impl Harness {
    /// Writes the counter value `value` to eventfd `fd`.
    fn signal(&self, fd: i64, value: u64) -> i64 {
        self.write(fd, &value.to_le_bytes())
    }

    /// Reads an eventfd's value, or the error.
    fn take(&self, fd: i64) -> core::result::Result<u64, i64> {
        let bytes = self.read(fd, 8)?;
        Ok(u64::from_le_bytes(bytes[..8].try_into().unwrap()))
    }

    fn eventfd(&self, initial: u64, event_flags: u64) -> i64 {
        self.call(nr::EVENTFD2, [initial, event_flags, 0, 0, 0, 0])
    }
}

#[test]
fn eventfd_counts_and_checks_its_arguments() {
    let harness = Harness::new();
    let fd = harness.eventfd(5, u64::from(O_NONBLOCK | O_CLOEXEC));
    assert_eq!(fd, 3);
    assert_eq!(harness.call(nr::FCNTL, [3, 1, 0, 0, 0, 0]), 1, "EFD_CLOEXEC");
    assert_eq!(harness.call(nr::FCNTL, [3, 3, 0, 0, 0, 0]) as u32, O_NONBLOCK | 2, "O_RDWR | O_NONBLOCK");
    assert_eq!(harness.signal(fd, 2), 8);
    assert_eq!(harness.take(fd), Ok(7));
    assert_eq!(harness.take(fd), Err(errno(Errno::EAGAIN)));
    assert_eq!(harness.read(fd, 4), Err(errno(Errno::EINVAL)), "reads need 8 bytes");
    assert_eq!(harness.write(fd, &[1, 0, 0, 0]), errno(Errno::EINVAL), "writes need 8 bytes");
    assert_eq!(harness.write(fd, &[]), errno(Errno::EINVAL));
    assert_eq!(harness.signal(fd, u64::MAX), errno(Errno::EINVAL));
    assert_eq!(harness.signal(fd, u64::MAX - 1), 8);
    assert_eq!(harness.signal(fd, 1), errno(Errno::EAGAIN), "the count stops at 2^64 - 2");
    assert_eq!(harness.eventfd(0, 0x80), errno(Errno::EINVAL));
    // The old call takes no flags: it blocks and stays open across exec.
    let plain = harness.call(nr::EVENTFD, [1, u64::MAX, 0, 0, 0, 0]);
    assert_eq!(harness.call(nr::FCNTL, [plain as u64, 1, 0, 0, 0, 0]), 0);
    assert_eq!(harness.take(plain), Ok(1));
}

#[test]
fn eventfd_semaphores_hand_out_ones() {
    let harness = Harness::new();
    let fd = harness.eventfd(2, EFD_SEMAPHORE | u64::from(O_NONBLOCK));
    assert_eq!(harness.take(fd), Ok(1));
    assert_eq!(harness.take(fd), Ok(1));
    assert_eq!(harness.take(fd), Err(errno(Errno::EAGAIN)));
}

#[test]
fn eventfds_look_like_anonymous_inodes() {
    let harness = Harness::new();
    let fd = harness.eventfd(0, 0);
    let link = harness.text(&alloc::format!("/proc/self/fd/{fd}"));
    let length = harness.call(nr::READLINK, [link, BUFFER + 0x800, 100, 0, 0, 0]);
    let mut name = alloc::vec![0u8; length.max(0) as usize];
    harness.machine.read_memory(BUFFER + 0x800, &mut name).unwrap();
    assert_eq!(name, b"anon_inode:[eventfd]");
    assert_eq!(harness.call(nr::FSTAT, [fd as u64, BUFFER + 0x2000, 0, 0, 0, 0]), 0);
    assert_eq!(harness.stat_word(24) as u32, 0o600, "no file type bits");
    assert_eq!(harness.call(nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), errno(Errno::ESPIPE));
    assert_eq!(harness.call(nr::IOCTL, [fd as u64, 0x541b, BUFFER, 0, 0, 0]), errno(Errno::ENOTTY));
}

/// A `struct pollfd` for `fd` asking for `events`.
pub(super) fn poll_entry(fd: i64, events: u16) -> Vec<u8> {
    [(fd as i32).to_le_bytes().to_vec(), events.to_le_bytes().to_vec(), alloc::vec![0, 0]].concat()
}

#[test]
fn poll_sees_eventfd_readiness() {
    let harness = Harness::new();
    let fd = harness.eventfd(0, 0);
    harness.machine.write_memory(BUFFER + 0x400, &poll_entry(fd, 5)).unwrap();
    assert_eq!(harness.call(nr::POLL, [BUFFER + 0x400, 1, 0, 0, 0, 0]), 1);
    assert_eq!(read_u64(&harness.machine, BUFFER + 0x400) >> 48, 4, "writable only");
    assert_eq!(harness.signal(fd, 1), 8);
    assert_eq!(harness.call(nr::POLL, [BUFFER + 0x400, 1, 0, 0, 0, 0]), 1);
    assert_eq!(read_u64(&harness.machine, BUFFER + 0x400) >> 48, 5, "readable too");
}
