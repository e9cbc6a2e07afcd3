use alloc::vec;

use super::*;
use crate::fake::{FakeMachine, FakeThread};
use crate::vfs::file::flags::O_RDWR;
use crate::vfs::node::Caller;
use crate::vfs::{EventCounter, FileObject, Pipe};

const IN: u32 = events::POLLIN as u32;
const OUT: u32 = events::POLLOUT as u32;

fn event_counter(initial: u64) -> Arc<OpenFile> {
    OpenFile::new(FileObject::Special(EventCounter::new(initial, false)), O_RDWR)
}

fn instance() -> (Arc<Epoll>, Arc<OpenFile>) {
    let epoll = Epoll::new();
    let file = OpenFile::new(FileObject::Special(epoll.clone()), O_RDWR);
    (epoll, file)
}

fn watch(epoll: &Epoll, fd: i32, file: &Arc<OpenFile>, events: u32) -> Result<(), FsError> {
    epoll.control(Operation::Add, fd, file, EpollEvent { events, data: fd as u64 })
}

fn signal(file: &OpenFile, machine: &FakeMachine) {
    assert_eq!(file.write(&Caller::kernel(machine), &1u64.to_le_bytes()), Ok(8));
}

fn drain(file: &OpenFile, machine: &FakeMachine) {
    assert_eq!(file.read(&Caller::kernel(machine), &mut [0u8; 8]), Ok(8));
}

#[test]
fn events_encode_packed() {
    let event = EpollEvent { events: 0x8000_0001, data: 0x1122_3344_5566_7788 };
    let bytes = event.encode();
    assert_eq!(bytes, [1, 0, 0, 0x80, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    assert_eq!(EpollEvent::decode(&bytes), event);
}

#[test]
fn level_triggered_interests_report_while_ready() {
    let machine = FakeMachine::new();
    let (epoll, _file) = instance();
    let counter = event_counter(0);
    watch(&epoll, 4, &counter, IN).unwrap();
    assert!(epoll.take_ready(8).is_empty());
    assert!(!epoll.is_ready());
    signal(&counter, &machine);
    assert!(epoll.is_ready());
    for _ in 0..2 {
        assert_eq!(epoll.take_ready(8), vec![EpollEvent { events: IN, data: 4 }]);
    }
    drain(&counter, &machine);
    assert!(epoll.take_ready(8).is_empty());
}

#[test]
fn edge_triggered_interests_report_each_change_once() {
    let machine = FakeMachine::new();
    let (epoll, _file) = instance();
    let counter = event_counter(1);
    watch(&epoll, 4, &counter, IN | OUT | flags::EPOLLET).unwrap();
    assert_eq!(epoll.take_ready(8), vec![EpollEvent { events: IN | OUT, data: 4 }], "ready when added");
    assert!(epoll.take_ready(8).is_empty(), "nothing changed");
    signal(&counter, &machine);
    assert_eq!(epoll.take_ready(8).len(), 1, "a write is a change");
    assert!(epoll.take_ready(8).is_empty());
    let rearm = EpollEvent { events: IN | flags::EPOLLET, data: 9 };
    epoll.control(Operation::Modify, 4, &counter, rearm).unwrap();
    assert_eq!(epoll.take_ready(8), vec![EpollEvent { events: IN, data: 9 }], "EPOLL_CTL_MOD re-arms");
}

#[test]
fn one_shot_interests_report_once_until_modified() {
    let machine = FakeMachine::new();
    let (epoll, _file) = instance();
    let counter = event_counter(1);
    watch(&epoll, 4, &counter, IN | flags::EPOLLONESHOT).unwrap();
    assert_eq!(epoll.take_ready(8).len(), 1);
    signal(&counter, &machine);
    assert!(epoll.take_ready(8).is_empty(), "disabled after its report");
    assert!(!epoll.is_ready());
    epoll.control(Operation::Modify, 4, &counter, EpollEvent { events: IN, data: 4 }).unwrap();
    assert_eq!(epoll.take_ready(8).len(), 1);
}

#[test]
fn control_fails_as_linux_does() {
    let (epoll, file) = instance();
    let counter = event_counter(0);
    let event = EpollEvent { events: IN, data: 0 };
    assert_eq!(epoll.control(Operation::Modify, 4, &counter, event), Err(FsError::NotFound));
    assert_eq!(epoll.control(Operation::Delete, 4, &counter, event), Err(FsError::NotFound));
    watch(&epoll, 4, &counter, IN).unwrap();
    assert_eq!(watch(&epoll, 4, &counter, IN), Err(FsError::Exists));
    assert_eq!(watch(&epoll, 5, &counter, IN), Ok(()), "another descriptor of the same description");
    assert_eq!(watch(&epoll, 3, &file, IN), Err(FsError::InvalidArgument), "itself");
    let exclusive = event_counter(0);
    watch(&epoll, 6, &exclusive, IN | flags::EPOLLEXCLUSIVE).unwrap();
    assert_eq!(epoll.control(Operation::Modify, 6, &exclusive, event), Err(FsError::InvalidArgument));
    assert_eq!(epoll.control(Operation::Delete, 4, &counter, event), Ok(()));
    assert_eq!(epoll.control(Operation::Delete, 4, &counter, event), Err(FsError::NotFound));
}

#[test]
fn errors_and_hang_ups_are_always_reported() {
    let (epoll, _file) = instance();
    let (reader, writer) = Pipe::open();
    let reader = OpenFile::new(FileObject::Pipe(reader), 0);
    watch(&epoll, 4, &reader, 0).unwrap();
    assert!(epoll.take_ready(8).is_empty());
    drop(OpenFile::new(FileObject::Pipe(writer), 1));
    let hang_up = u32::from(events::POLLHUP);
    assert_eq!(epoll.take_ready(8), vec![EpollEvent { events: hang_up, data: 4 }]);
}

#[test]
fn interests_end_with_their_description() {
    let (epoll, _file) = instance();
    let counter = event_counter(1);
    watch(&epoll, 4, &counter, IN).unwrap();
    let before = epoll.generation();
    drop(counter);
    assert!(epoll.take_ready(8).is_empty());
    assert_eq!(epoll.state.lock().interests.len(), 0);
    assert!(epoll.generation() > before, "the generation never goes back");
}

#[test]
fn a_few_events_at_a_time_reach_every_ready_interest() {
    let (epoll, _file) = instance();
    let counters = [event_counter(1), event_counter(1), event_counter(1)];
    for (fd, counter) in counters.iter().enumerate() {
        watch(&epoll, fd as i32, counter, IN).unwrap();
    }
    let taken: Vec<u64> = (0..3).flat_map(|_| epoll.take_ready(2)).map(|event| event.data).collect();
    assert_eq!(taken, [0, 1, 2, 0, 1, 2]);
}

#[test]
fn waiting_on_an_instance_is_waiting_on_what_it_watches() {
    let machine = FakeMachine::new();
    let (epoll, file) = instance();
    let counter = event_counter(0);
    watch(&epoll, 4, &counter, IN).unwrap();
    let waiter = Arc::new(FakeThread::default());
    let thread: Arc<dyn ThreadControl> = waiter.clone();
    let before = file.generation();
    file.add_waiter(&thread);
    signal(&counter, &machine);
    assert_eq!(waiter.wakes.load(core::sync::atomic::Ordering::Relaxed), 1);
    assert!(file.generation() > before);
    assert_eq!(file.poll() & events::POLLIN, events::POLLIN);
    file.remove_waiter(&thread);
    assert!(counter.special().is_some_and(|special| special.waiters().is_empty()));
    assert!(epoll.waiters().is_empty());
    assert_eq!(epoll.name(), "anon_inode:[eventpoll]");
}

#[test]
fn nested_instances_report_and_refuse_loops() {
    let machine = FakeMachine::new();
    let (outer, outer_file) = instance();
    let (inner, inner_file) = instance();
    let counter = event_counter(0);
    watch(&inner, 4, &counter, IN).unwrap();
    watch(&outer, 3, &inner_file, IN).unwrap();
    assert!(outer.take_ready(8).is_empty());
    signal(&counter, &machine);
    assert_eq!(outer.take_ready(8), vec![EpollEvent { events: IN, data: 3 }]);
    assert_eq!(watch(&inner, 5, &outer_file, IN), Err(FsError::Loop));
    outer.control(Operation::Delete, 3, &inner_file, EpollEvent::default()).unwrap();
    assert_eq!(watch(&inner, 5, &outer_file, IN), Ok(()), "no loop once the link is gone");
}

#[test]
fn chains_stop_at_five_instances() {
    let chain: Vec<_> = (0..6).map(|_| instance()).collect();
    for link in 0..4 {
        watch(&chain[link].0, 3, &chain[link + 1].1, IN).unwrap();
    }
    assert_eq!(watch(&chain[4].0, 3, &chain[5].1, IN), Err(FsError::Loop), "a sixth level below");
    let (top, _top_file) = instance();
    assert_eq!(watch(&top, 3, &chain[0].1, IN), Err(FsError::Loop), "a sixth level above");
    drop(chain);
}
