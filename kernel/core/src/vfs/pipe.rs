//! Pipes: a 64 KiB buffer between threads, with blocking reads and writes.
//!
//! Readers wait while the pipe is empty and has writers; writers wait while
//! it is full and has readers. Every change wakes all waiting threads
//! (readers, writers, pollers and epoll waiters alike), which then check
//! again: pipes seldom have more than one waiter. A thread adds itself to
//! the pipe's [`WaiterList`] before it blocks, while it still holds the
//! pipe's lock, so a wake-up between the check and the block makes the
//! block return at once ([`crate::machine::ThreadControl::wake`]).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::FsError;
use super::node::Caller;
use super::waiters::{WaiterList, events};

/// Bytes a pipe holds at first (Linux's default, `F_GETPIPE_SZ`).
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// The most an unprivileged `F_SETPIPE_SZ` may ask for at first
/// (`/proc/sys/fs/pipe-max-size`, which root may change).
pub const PIPE_MAX_SIZE: usize = 1024 * 1024;
/// The largest size a pipe may be given (Linux's `round_pipe_size` limit).
const PIPE_SIZE_LIMIT: u64 = 1 << 31;

static MAX_SIZE: AtomicU64 = AtomicU64::new(PIPE_MAX_SIZE as u64);

/// What an unprivileged `F_SETPIPE_SZ` may ask for now.
pub fn max_size() -> u64 {
    MAX_SIZE.load(Ordering::Relaxed)
}

/// Sets [`max_size`] (a write to `pipe-max-size`): rounded up as a pipe's
/// size is, a power of two of at least a page; `InvalidArgument` past
/// 2 GiB.
pub fn set_max_size(bytes: u64) -> Result<(), FsError> {
    if bytes > PIPE_SIZE_LIMIT {
        return Err(FsError::InvalidArgument);
    }
    MAX_SIZE.store(bytes.max(4096).next_power_of_two(), Ordering::Relaxed);
    Ok(())
}
/// Writes up to this size are never interleaved with others (`PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;

static NEXT_INODE: AtomicU64 = AtomicU64::new(1);

struct PipeState {
    buffer: VecDeque<u8>,
    readers: usize,
    writers: usize,
    /// Opens of a named pipe's reading and writing ends so far, which
    /// an open waiting for the other side watches.
    reader_opens: u64,
    writer_opens: u64,
    /// Bytes the pipe holds at most (`F_SETPIPE_SZ`).
    capacity: usize,
}

/// A pipe: its buffer and its two kinds of ends.
pub struct Pipe {
    inode: u64,
    state: Mutex<PipeState>,
    waiters: WaiterList,
}

impl core::fmt::Debug for Pipe {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Pipe").field("inode", &self.inode).finish()
    }
}

impl Pipe {
    /// A new pipe with one reading and one writing end.
    pub fn open() -> (PipeEnd, PipeEnd) {
        let pipe = Arc::new(Pipe {
            inode: NEXT_INODE.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(PipeState {
                buffer: VecDeque::new(),
                readers: 1,
                writers: 1,
                reader_opens: 1,
                writer_opens: 1,
                capacity: PIPE_CAPACITY,
            }),
            waiters: WaiterList::new(),
        });
        let reader = PipeEnd { pipe: pipe.clone(), is_reader: true, is_writer: false };
        (reader, PipeEnd { pipe, is_reader: false, is_writer: true })
    }

    /// A named pipe's (a FIFO's) buffer, without open ends.
    pub fn named() -> Arc<Pipe> {
        Arc::new(Pipe {
            inode: NEXT_INODE.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(PipeState {
                buffer: VecDeque::new(),
                readers: 0,
                writers: 0,
                reader_opens: 0,
                writer_opens: 0,
                capacity: PIPE_CAPACITY,
            }),
            waiters: WaiterList::new(),
        })
    }

    /// Opens an end of a named pipe as Linux's FIFOs open: reading and
    /// writing at once never waits; otherwise, unless `is_nonblocking`,
    /// the open waits until the other side is open too. A nonblocking
    /// open for writing with no reader is `NoSuchPosition` (`ENXIO`).
    pub fn open_named(
        self: &Arc<Self>,
        caller: &Caller<'_>,
        is_reader: bool,
        is_writer: bool,
        is_nonblocking: bool,
    ) -> Result<PipeEnd, FsError> {
        let end = {
            let mut state = self.state.lock();
            if is_writer && !is_reader && is_nonblocking && state.readers == 0 {
                return Err(FsError::NoSuchPosition);
            }
            if is_reader {
                state.readers += 1;
                state.reader_opens += 1;
            }
            if is_writer {
                state.writers += 1;
                state.writer_opens += 1;
            }
            PipeEnd { pipe: self.clone(), is_reader, is_writer }
        };
        self.waiters.notify();
        if is_nonblocking || (is_reader && is_writer) {
            return Ok(end);
        }
        let me = caller.machine.current_thread();
        let opens = |state: &PipeState| if is_reader { state.writer_opens } else { state.reader_opens };
        let start = opens(&self.state.lock());
        loop {
            {
                let state = self.state.lock();
                let other_side = if is_reader { state.writers } else { state.readers };
                if other_side > 0 || opens(&state) != start {
                    drop(state);
                    self.waiters.remove(&me);
                    return Ok(end);
                }
                self.waiters.add(&me);
            }
            // Interrupted, the end is dropped and closes again.
            self.waiters.block(caller, &me)?;
        }
    }

    /// The pipe's inode number (`pipe:[N]`).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Bytes waiting to be read (`FIONREAD`).
    pub fn available_bytes(&self) -> usize {
        self.state.lock().buffer.len()
    }

    /// Reads what is there, waiting for data unless `is_nonblocking`; 0 at
    /// the end (no writers left).
    pub fn read(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        is_nonblocking: bool,
    ) -> Result<usize, FsError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let me = caller.machine.current_thread();
        loop {
            {
                let mut state = self.state.lock();
                if !state.buffer.is_empty() {
                    let length = buffer.len().min(state.buffer.len());
                    copy_front(&state.buffer, &mut buffer[..length]);
                    state.buffer.drain(..length);
                    drop(state);
                    self.waiters.remove(&me);
                    self.waiters.notify();
                    return Ok(length);
                }
                if state.writers == 0 {
                    drop(state);
                    self.waiters.remove(&me);
                    return Ok(0);
                }
                if is_nonblocking {
                    return Err(FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            self.waiters.block(caller, &me)?;
        }
    }

    /// The bytes the pipe holds at most (`F_GETPIPE_SZ`).
    pub fn capacity(&self) -> usize {
        self.state.lock().capacity
    }

    /// `F_SETPIPE_SZ`: makes the pipe hold `requested` bytes, rounded up to
    /// a power of two of at least a page; returns the new capacity. Past
    /// [`max_size`] only if `is_privileged`; never below what it holds.
    pub fn set_capacity(&self, requested: u64, is_privileged: bool) -> Result<usize, FsError> {
        if requested > PIPE_SIZE_LIMIT {
            return Err(FsError::InvalidArgument);
        }
        let capacity = (requested as usize).max(4096).next_power_of_two();
        let mut state = self.state.lock();
        if capacity > state.capacity && capacity as u64 > max_size() && !is_privileged {
            return Err(FsError::NotPermitted);
        }
        if capacity < state.buffer.len() {
            return Err(FsError::Busy);
        }
        state.capacity = capacity;
        drop(state);
        self.waiters.notify();
        Ok(capacity)
    }

    /// Waits until the pipe has room (unless `is_nonblocking`) and returns
    /// how much; `BrokenPipe` when no reader is left.
    pub fn wait_for_room(&self, caller: &Caller<'_>, is_nonblocking: bool) -> Result<usize, FsError> {
        let me = caller.machine.current_thread();
        loop {
            {
                let state = self.state.lock();
                if state.readers == 0 {
                    drop(state);
                    self.waiters.remove(&me);
                    return Err(FsError::BrokenPipe);
                }
                let room = state.capacity.saturating_sub(state.buffer.len());
                if room > 0 {
                    drop(state);
                    self.waiters.remove(&me);
                    return Ok(room);
                }
                if is_nonblocking {
                    return Err(FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            self.waiters.block(caller, &me)?;
        }
    }

    /// Copies the bytes at the front into `buffer` without taking them
    /// (`tee`), waiting for data as [`Pipe::read`] does; 0 at the end.
    pub fn peek(
        &self,
        caller: &Caller<'_>,
        buffer: &mut [u8],
        is_nonblocking: bool,
    ) -> Result<usize, FsError> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let me = caller.machine.current_thread();
        loop {
            {
                let state = self.state.lock();
                if !state.buffer.is_empty() || state.writers == 0 {
                    let length = buffer.len().min(state.buffer.len());
                    copy_front(&state.buffer, &mut buffer[..length]);
                    drop(state);
                    self.waiters.remove(&me);
                    return Ok(length);
                }
                if is_nonblocking {
                    return Err(FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            self.waiters.block(caller, &me)?;
        }
    }

    /// Writes all of `bytes`, waiting for room unless `is_nonblocking`;
    /// writes of at most [`PIPE_BUF`] bytes are never split. `BrokenPipe`
    /// when no reader is left and nothing was written.
    pub fn write(&self, caller: &Caller<'_>, bytes: &[u8], is_nonblocking: bool) -> Result<usize, FsError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let me = caller.machine.current_thread();
        let mut written = 0;
        let partial = |written: usize, error: FsError| if written > 0 { Ok(written) } else { Err(error) };
        loop {
            {
                let mut state = self.state.lock();
                if state.readers == 0 {
                    drop(state);
                    self.waiters.remove(&me);
                    return partial(written, FsError::BrokenPipe);
                }
                let room = state.capacity.saturating_sub(state.buffer.len());
                let remaining = bytes.len() - written;
                let must_stay_whole = bytes.len() <= PIPE_BUF && room < remaining;
                if room > 0 && !must_stay_whole {
                    let length = room.min(remaining);
                    state.buffer.extend(&bytes[written..written + length]);
                    written += length;
                    drop(state);
                    self.waiters.notify();
                    if written == bytes.len() {
                        return Ok(written);
                    }
                    continue;
                }
                if is_nonblocking {
                    return partial(written, FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            if let Err(error) = self.waiters.block(caller, &me) {
                return partial(written, error);
            }
        }
    }

    /// Readiness of one end, as `poll` events.
    pub fn poll(&self, is_writer: bool) -> u16 {
        let state = self.state.lock();
        let mut ready = 0;
        if is_writer {
            if state.readers == 0 {
                ready |= events::POLLERR;
            } else if state.buffer.len() < state.capacity {
                ready |= events::POLLOUT;
            }
        } else {
            if !state.buffer.is_empty() {
                ready |= events::POLLIN;
            }
            if state.writers == 0 {
                ready |= events::POLLHUP;
            }
        }
        ready
    }

    /// The threads waiting for the pipe to change, and its change count.
    pub fn waiters(&self) -> &WaiterList {
        &self.waiters
    }
}

/// Copies the first `destination.len()` bytes of `queue` (which holds at
/// least that many) into `destination`, a slice at a time.
pub fn copy_front(queue: &VecDeque<u8>, destination: &mut [u8]) {
    let (first, second) = queue.as_slices();
    let from_first = first.len().min(destination.len());
    destination[..from_first].copy_from_slice(&first[..from_first]);
    let rest = destination.len() - from_first;
    destination[from_first..].copy_from_slice(&second[..rest]);
}

/// One end of a pipe; dropping the last reference to an open file closes
/// it, which wakes the other side.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    is_reader: bool,
    is_writer: bool,
}

impl core::fmt::Debug for PipeEnd {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("PipeEnd").field("is_writer", &self.is_writer).finish()
    }
}

impl PipeEnd {
    /// The pipe.
    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
    }

    /// Whether this end writes (a named pipe opened for reading and
    /// writing also reads).
    pub fn is_writer(&self) -> bool {
        self.is_writer
    }

    /// Readiness of this end, as `poll` events.
    pub fn poll(&self) -> u16 {
        match (self.is_reader, self.is_writer) {
            // A FIFO open both ways has a writer and a reader: itself.
            (true, true) => self.pipe.poll(false) | self.pipe.poll(true),
            (_, is_writer) => self.pipe.poll(is_writer),
        }
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut state = self.pipe.state.lock();
            if self.is_writer {
                state.writers -= 1;
            }
            if self.is_reader {
                state.readers -= 1;
            }
            // A named pipe forgets its data when its last end closes.
            if state.readers == 0 && state.writers == 0 {
                state.buffer.clear();
            }
        }
        self.pipe.waiters.notify();
    }
}

#[cfg(test)]
mod tests;
