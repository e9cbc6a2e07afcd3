use alloc::vec::Vec;

use super::*;
use crate::fake::FakeMachine;
use crate::process::Thread;

#[test]
fn data_flows_until_the_writers_are_gone() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (reader, writer) = Pipe::open();
    let pipe = reader.pipe().clone();
    let mut buffer = [0u8; 16];
    assert_eq!(pipe.read(&caller, &mut buffer, true), Err(FsError::WouldBlock));
    assert_eq!(pipe.poll(false), 0);
    assert_eq!(pipe.poll(true), events::POLLOUT);
    assert_eq!(pipe.write(&caller, b"hello", false), Ok(5));
    assert_eq!(pipe.available_bytes(), 5);
    assert_eq!(pipe.poll(false), events::POLLIN);
    assert_eq!(pipe.read(&caller, &mut buffer[..3], false), Ok(3));
    assert_eq!(&buffer[..3], b"hel");
    drop(writer);
    assert_eq!(pipe.poll(false), events::POLLIN | events::POLLHUP);
    assert_eq!(pipe.read(&caller, &mut buffer, false), Ok(2));
    assert_eq!(pipe.read(&caller, &mut buffer, false), Ok(0), "end of file without writers");
    drop(reader);
}

#[test]
fn writes_without_readers_break_the_pipe() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (reader, writer) = Pipe::open();
    drop(reader);
    assert_eq!(writer.pipe().write(&caller, b"x", false), Err(FsError::BrokenPipe));
    assert_eq!(writer.pipe().poll(true), events::POLLERR);
}

#[test]
fn small_writes_are_never_split_and_full_pipes_refuse_more() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let (reader, writer) = Pipe::open();
    let pipe = writer.pipe();
    let filler = alloc::vec![1u8; PIPE_CAPACITY - 100];
    assert_eq!(pipe.write(&caller, &filler, true), Ok(PIPE_CAPACITY - 100));
    assert_eq!(pipe.write(&caller, &[2u8; 200], true), Err(FsError::WouldBlock), "200 bytes stay whole");
    assert_eq!(pipe.write(&caller, &[2u8; PIPE_BUF + 1], true), Ok(100), "large writes may be split");
    assert_eq!(pipe.poll(true), 0);
    drop(reader);
}

#[test]
fn a_signal_interrupts_a_blocked_read() {
    let machine = FakeMachine::new();
    let thread = Thread::new(7);
    thread.state.lock().pending.add(10, crate::signal::SignalInfo::kernel(), None, true);
    let caller =
        Caller { machine: &machine, process: None, thread: Some(&thread), acting_as: None, scope: None };
    let (reader, _writer) = Pipe::open();
    let mut buffer = [0u8; 4];
    assert_eq!(reader.pipe().read(&caller, &mut buffer, false), Err(FsError::Interrupted));
    assert!(reader.pipe().waiters().is_empty(), "the interrupted reader leaves");
}

#[test]
fn threads_stream_more_than_the_capacity_through_a_pipe() {
    let machine = FakeMachine::new();
    let (reader, writer) = Pipe::open();
    let sent: Vec<u8> = (0..200_000u32).map(|value| (value % 251) as u8).collect();
    let received = std::thread::scope(|scope| {
        let machine = &machine;
        let sent = &sent;
        scope.spawn(move || {
            let caller = Caller::kernel(machine);
            for chunk in sent.chunks(7000) {
                assert_eq!(writer.pipe().write(&caller, chunk, false), Ok(chunk.len()));
            }
            drop(writer);
        });
        let caller = Caller::kernel(machine);
        let mut received = Vec::new();
        let mut buffer = [0u8; 5000];
        loop {
            match reader.pipe().read(&caller, &mut buffer, false).unwrap() {
                0 => break received,
                length => received.extend_from_slice(&buffer[..length]),
            }
        }
    });
    assert_eq!(received.len(), sent.len());
    assert!(received == sent);
}

#[test]
fn bytes_are_copied_out_across_the_queue_wrapping_around() {
    let mut queue: VecDeque<u8> = VecDeque::with_capacity(8);
    queue.extend(0..6u8);
    queue.drain(..4);
    queue.extend(6..12u8);
    assert!(!queue.as_slices().1.is_empty(), "the queue wraps around");
    let mut destination = [0u8; 7];
    copy_front(&queue, &mut destination);
    assert_eq!(destination, [4, 5, 6, 7, 8, 9, 10]);
}
