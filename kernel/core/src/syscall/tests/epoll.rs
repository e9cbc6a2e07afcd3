//! The epoll calls: their errors, and level-triggered, edge-triggered and
//! one-shot reports over pipes and eventfds.

use alloc::vec::Vec;

use super::files::{Harness, errno};
use super::*;
use crate::errno::Errno;
use crate::vfs::file::flags::{O_CLOEXEC, O_CREAT, O_NONBLOCK, O_RDONLY, O_RDWR};

const EPOLLIN: u32 = 0x1;
const EPOLLOUT: u32 = 0x4;
const EPOLLHUP: u32 = 0x10;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;
const ADD: u64 = 1;
const DEL: u64 = 2;
const MOD: u64 = 3;
/// Where `struct epoll_event`s go.
const EVENTS: u64 = BUFFER + 0x1000;
/// Where the `struct epoll_event` for `epoll_ctl` goes.
const EVENT: u64 = BUFFER + 0xf00;

impl Harness {
    fn epoll(&self) -> i64 {
        self.call(nr::EPOLL_CREATE1, [0; 6])
    }

    fn control(&self, epfd: i64, operation: u64, fd: i64, events: u32, data: u64) -> i64 {
        let bytes = [events.to_le_bytes().to_vec(), data.to_le_bytes().to_vec()].concat();
        self.machine.write_memory(EVENT, &bytes).unwrap();
        self.call(nr::EPOLL_CTL, [epfd as u64, operation, fd as u64, EVENT, 0, 0])
    }

    /// `epoll_wait` for up to `count` events; the (events, data) pairs.
    fn wait(&self, epfd: i64, count: u64, timeout_ms: i32) -> core::result::Result<Vec<(u32, u64)>, i64> {
        let result = self.call(nr::EPOLL_WAIT, [epfd as u64, EVENTS, count, timeout_ms as u64, 0, 0]);
        if result < 0 {
            return Err(result);
        }
        let mut bytes = alloc::vec![0u8; result as usize * 12];
        self.machine.read_memory(EVENTS, &mut bytes).unwrap();
        Ok(bytes
            .chunks(12)
            .map(|event| {
                let events = u32::from_le_bytes(event[..4].try_into().unwrap());
                (events, u64::from_le_bytes(event[4..].try_into().unwrap()))
            })
            .collect())
    }

    /// A pipe's (reader, writer).
    fn pipe(&self) -> (i64, i64) {
        assert_eq!(self.call(nr::PIPE2, [BUFFER + 0x2000, u64::from(O_NONBLOCK), 0, 0, 0, 0]), 0);
        let ends = self.stat_word(0);
        ((ends & 0xffff_ffff) as i64, (ends >> 32) as i64)
    }
}

#[test]
fn epoll_create_checks_its_arguments() {
    let harness = Harness::new();
    assert_eq!(harness.call(nr::EPOLL_CREATE, [0; 6]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::EPOLL_CREATE, [u64::MAX, 0, 0, 0, 0, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::EPOLL_CREATE, [1, 0, 0, 0, 0, 0]), 3);
    assert_eq!(harness.call(nr::FCNTL, [3, 1, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::EPOLL_CREATE1, [1, 0, 0, 0, 0, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.call(nr::EPOLL_CREATE1, [u64::from(O_CLOEXEC), 0, 0, 0, 0, 0]), 4);
    assert_eq!(harness.call(nr::FCNTL, [4, 1, 0, 0, 0, 0]), 1);
    assert_eq!(harness.read(4, 16), Err(errno(Errno::EINVAL)), "an instance has nothing to read");
}

#[test]
fn epoll_ctl_fails_as_linux_does() {
    let harness = Harness::new();
    let epfd = harness.epoll();
    let (reader, _writer) = harness.pipe();
    let file = harness.open("/tmp/plain", O_CREAT | O_RDWR, 0o644);
    let directory = harness.open("/tmp", O_RDONLY, 0);
    assert_eq!(harness.control(42, ADD, reader, EPOLLIN, 0), errno(Errno::EBADF));
    assert_eq!(harness.control(epfd, ADD, 42, EPOLLIN, 0), errno(Errno::EBADF));
    assert_eq!(harness.control(epfd, ADD, -1, EPOLLIN, 0), errno(Errno::EBADF));
    assert_eq!(harness.control(epfd, ADD, file, EPOLLIN, 0), errno(Errno::EPERM));
    assert_eq!(harness.control(epfd, ADD, directory, EPOLLIN, 0), errno(Errno::EPERM));
    assert_eq!(harness.control(epfd, ADD, epfd, EPOLLIN, 0), errno(Errno::EINVAL), "itself");
    assert_eq!(harness.control(reader, ADD, epfd, EPOLLIN, 0), errno(Errno::EINVAL), "not an instance");
    assert_eq!(harness.control(epfd, 7, reader, EPOLLIN, 0), errno(Errno::EINVAL), "no such operation");
    assert_eq!(harness.control(epfd, MOD, reader, EPOLLIN, 0), errno(Errno::ENOENT));
    assert_eq!(harness.control(epfd, DEL, reader, EPOLLIN, 0), errno(Errno::ENOENT));
    let bad_pointer = harness.call(nr::EPOLL_CTL, [epfd as u64, ADD, reader as u64, 0x9000_0000, 0, 0]);
    assert_eq!(bad_pointer, errno(Errno::EFAULT));
    let no_event = harness.call(nr::EPOLL_CTL, [epfd as u64, DEL, reader as u64, 0x9000_0000, 0, 0]);
    assert_eq!(no_event, errno(Errno::ENOENT), "DEL reads no event");
    assert_eq!(harness.control(epfd, ADD, reader, EPOLLIN, 0), 0);
    assert_eq!(harness.control(epfd, ADD, reader, EPOLLIN, 0), errno(Errno::EEXIST));
    assert_eq!(harness.control(epfd, MOD, reader, EPOLLIN | EPOLLEXCLUSIVE, 0), errno(Errno::EINVAL));
    assert_eq!(harness.control(epfd, DEL, reader, 0, 0), 0);
    // Exclusive interests: only in, out, errors, hang-ups and edges.
    assert_eq!(
        harness.control(epfd, ADD, reader, EPOLLIN | EPOLLONESHOT | EPOLLEXCLUSIVE, 0),
        errno(Errno::EINVAL)
    );
    assert_eq!(harness.control(epfd, ADD, reader, EPOLLIN | EPOLLET | EPOLLEXCLUSIVE, 0), 0);
    assert_eq!(harness.control(epfd, MOD, reader, EPOLLIN, 0), errno(Errno::EINVAL));
    let other = harness.epoll();
    assert_eq!(harness.control(other, ADD, epfd, EPOLLIN | EPOLLEXCLUSIVE, 0), errno(Errno::EINVAL));
    assert_eq!(harness.control(other, ADD, epfd, EPOLLIN, 0), 0);
    assert_eq!(harness.control(epfd, ADD, other, EPOLLIN, 0), errno(Errno::ELOOP));
}

#[test]
fn epoll_wait_checks_its_arguments() {
    let harness = Harness::new();
    let epfd = harness.epoll();
    let counter = harness.call(nr::EVENTFD2, [1, 0, 0, 0, 0, 0]);
    assert_eq!(harness.wait(epfd, 0, 0), Err(errno(Errno::EINVAL)));
    assert_eq!(harness.wait(epfd, u64::MAX, 0), Err(errno(Errno::EINVAL)));
    assert_eq!(harness.wait(epfd, 1 << 28, 0), Err(errno(Errno::EINVAL)), "more than INT_MAX bytes");
    assert_eq!(harness.wait(42, 1, 0), Err(errno(Errno::EBADF)));
    assert_eq!(harness.wait(counter, 1, 0), Err(errno(Errno::EINVAL)));
    let kernel = 0xffff_8000_0000_0000u64;
    assert_eq!(harness.call(nr::EPOLL_WAIT, [epfd as u64, kernel, 1, 0, 0, 0]), errno(Errno::EFAULT));
    assert_eq!(harness.wait(epfd, 1, 0), Ok(Vec::new()), "nothing watched, no waiting");
    harness.machine.now_ns.store(1_000, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(harness.wait(epfd, 1, 25), Ok(Vec::new()));
    assert!(harness.machine.monotonic_ns() >= 25_001_000, "waited out the timeout");
    // A ready event and a buffer that cannot be written: EFAULT, and the
    // level-triggered event is still there.
    assert_eq!(harness.control(epfd, ADD, counter, EPOLLIN, 7), 0);
    assert_eq!(harness.call(nr::EPOLL_WAIT, [epfd as u64, 0x9000_0000, 1, 0, 0, 0]), errno(Errno::EFAULT));
    assert_eq!(harness.wait(epfd, 1, -1), Ok(alloc::vec![(EPOLLIN, 7)]));
    // epoll_pwait checks its mask's size; epoll_pwait2 its timespec.
    let pwait = |mask: u64, size: u64| harness.call(nr::EPOLL_PWAIT, [epfd as u64, EVENTS, 1, 0, mask, size]);
    assert_eq!(pwait(BUFFER, 4), errno(Errno::EINVAL));
    assert_eq!(pwait(0x9000_0000, 8), errno(Errno::EFAULT));
    assert_eq!(pwait(BUFFER, 8), 1);
    assert_eq!(pwait(0, 0), 1);
    let timespec = |seconds: i64, nanoseconds: i64| {
        let bytes = [seconds.to_le_bytes(), nanoseconds.to_le_bytes()].concat();
        harness.machine.write_memory(BUFFER + 0x300, &bytes).unwrap();
        harness.call(nr::EPOLL_PWAIT2, [epfd as u64, EVENTS, 1, BUFFER + 0x300, 0, 0])
    };
    assert_eq!(timespec(0, 1_000_000_000), errno(Errno::EINVAL));
    assert_eq!(timespec(-1, 0), errno(Errno::EINVAL));
    assert_eq!(timespec(0, 0), 1);
    assert_eq!(harness.call(nr::EPOLL_PWAIT2, [epfd as u64, EVENTS, 1, 0, 0, 0]), 1, "no timeout");
}

#[test]
fn level_edge_and_one_shot_over_pipes_and_eventfds() {
    let harness = Harness::new();
    let epfd = harness.epoll();
    let (reader, writer) = harness.pipe();
    let counter = harness.call(nr::EVENTFD2, [0, u64::from(O_NONBLOCK), 0, 0, 0, 0]);
    assert_eq!(harness.control(epfd, ADD, reader, EPOLLIN, 1), 0);
    assert_eq!(harness.control(epfd, ADD, counter, EPOLLIN | EPOLLET, 2), 0);
    assert_eq!(harness.control(epfd, ADD, writer, EPOLLOUT | EPOLLONESHOT, 3), 0);
    assert_eq!(harness.wait(epfd, 8, 0), Ok(alloc::vec![(EPOLLOUT, 3)]), "the writer, once");
    assert_eq!(harness.wait(epfd, 8, 0), Ok(Vec::new()));
    assert_eq!(harness.write(writer, b"ab"), 2);
    assert_eq!(harness.write(counter, &1u64.to_le_bytes()), 8);
    assert_eq!(harness.wait(epfd, 8, 0), Ok(alloc::vec![(EPOLLIN, 1), (EPOLLIN, 2)]));
    assert_eq!(harness.wait(epfd, 8, 0), Ok(alloc::vec![(EPOLLIN, 1)]), "level: again; edge: not");
    assert_eq!(harness.control(epfd, MOD, writer, EPOLLOUT, 3), 0);
    assert_eq!(harness.wait(epfd, 8, 0).map(|events| events.len()), Ok(2), "re-armed writer");
    assert_eq!(harness.read(reader, 10).unwrap(), b"ab");
    assert_eq!(harness.write(counter, &1u64.to_le_bytes()), 8);
    assert_eq!(harness.wait(epfd, 8, 0), Ok(alloc::vec![(EPOLLIN, 2), (EPOLLOUT, 3)]));
    // Closing the writer: the reader hangs up; the writer's interest ends
    // with its description.
    assert_eq!(harness.call(nr::CLOSE, [writer as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.wait(epfd, 8, 0), Ok(alloc::vec![(EPOLLHUP, 1)]));
    assert_eq!(harness.control(epfd, DEL, writer, 0, 0), errno(Errno::EBADF));
}

#[test]
fn interests_follow_the_description_not_the_number() {
    let harness = Harness::new();
    let epfd = harness.epoll();
    let counter = harness.call(nr::EVENTFD2, [1, 0, 0, 0, 0, 0]);
    let copy = harness.call(nr::DUP, [counter as u64, 0, 0, 0, 0, 0]);
    assert_eq!(harness.control(epfd, ADD, counter, EPOLLIN, 5), 0);
    assert_eq!(harness.call(nr::CLOSE, [counter as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.wait(epfd, 8, 0), Ok(alloc::vec![(EPOLLIN, 5)]), "the copy keeps it open");
    assert_eq!(harness.control(epfd, DEL, copy, 0, 0), errno(Errno::ENOENT), "keyed by the old number");
    assert_eq!(harness.call(nr::CLOSE, [copy as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.wait(epfd, 8, 0), Ok(Vec::new()), "closed for good");
}

#[test]
fn instances_nest_and_poll() {
    let harness = Harness::new();
    let outer = harness.epoll();
    let inner = harness.epoll();
    let counter = harness.call(nr::EVENTFD2, [0, 0, 0, 0, 0, 0]);
    assert_eq!(harness.control(inner, ADD, counter, EPOLLIN, 1), 0);
    assert_eq!(harness.control(outer, ADD, inner, EPOLLIN, 2), 0);
    assert_eq!(harness.wait(outer, 8, 0), Ok(Vec::new()));
    assert_eq!(harness.write(counter, &1u64.to_le_bytes()), 8);
    assert_eq!(harness.wait(outer, 8, 0), Ok(alloc::vec![(EPOLLIN, 2)]));
    harness.machine.write_memory(BUFFER + 0x400, &super::events::poll_entry(inner, 1)).unwrap();
    assert_eq!(harness.call(nr::POLL, [BUFFER + 0x400, 1, 0, 0, 0, 0]), 1, "poll sees the instance");
    let link = harness.text(&alloc::format!("/proc/self/fd/{inner}"));
    let length = harness.call(nr::READLINK, [link, BUFFER + 0x800, 100, 0, 0, 0]);
    let mut name = alloc::vec![0u8; length.max(0) as usize];
    harness.machine.read_memory(BUFFER + 0x800, &mut name).unwrap();
    assert_eq!(name, b"anon_inode:[eventpoll]");
}

#[test]
fn a_signal_interrupts_a_wait() {
    let harness = Harness::new();
    let epfd = harness.epoll();
    let thread = harness.process.thread(harness.process.pid).unwrap_or_else(|| harness.process.new_thread());
    // SIGCHLD, ignored by default, still interrupts the wait.
    thread.state.lock().pending.add(17, crate::signal::SignalInfo::kernel(), None, true);
    assert_eq!(harness.wait(epfd, 1, -1), Err(errno(Errno::EINTR)));
    assert_eq!(thread.state.lock().pending.set(), 0);
}

#[test]
fn a_write_from_another_thread_ends_a_wait() {
    let (machine, process) = setup();
    let epfd = call(&machine, &process, nr::EPOLL_CREATE1, [0; 6]);
    let counter = call(&machine, &process, nr::EVENTFD2, [0, 0, 0, 0, 0, 0]);
    let event = [EPOLLIN.to_le_bytes().to_vec(), 9u64.to_le_bytes().to_vec()].concat();
    machine.write_memory(EVENT, &event).unwrap();
    assert_eq!(call(&machine, &process, nr::EPOLL_CTL, [epfd as u64, ADD, counter as u64, EVENT, 0, 0]), 0);
    let waited = std::thread::scope(|scope| {
        let waiter = scope
            .spawn(|| call(&machine, &process, nr::EPOLL_WAIT, [epfd as u64, EVENTS, 4, u64::MAX, 0, 0]));
        let file = process.descriptors.with(|table| table.file(counter as u64)).unwrap();
        while file.special().is_some_and(|special| special.waiters().is_empty()) {
            std::thread::yield_now();
        }
        machine.write_memory(BUFFER, &1u64.to_le_bytes()).unwrap();
        assert_eq!(call(&machine, &process, nr::WRITE, [counter as u64, BUFFER, 8, 0, 0, 0]), 8);
        waiter.join().unwrap()
    });
    assert_eq!(waited, 1);
    assert_eq!(read_u64(&machine, EVENTS + 4), 9);
}
