//! Readiness: the events an object reports, and the threads waiting for it.
//!
//! Every object a thread can wait on (pipes, eventfds, epoll instances,
//! later sockets) keeps a [`WaiterList`]. A waiting thread adds itself to
//! the lists of the objects it waits on, checks their readiness once more
//! and blocks; a change to an object wakes every thread on its list, which
//! checks again. [`crate::machine::ThreadControl::wake`] lets a block that
//! has not started yet return at once, so a change between the check and
//! the block is never lost. The list also counts changes (its generation),
//! which is what edge-triggered epoll interests compare. A
//! [`ChangeListener`] hears of every change for as long as it lives (the
//! owner signal of a file with `O_ASYNC`).

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;

use super::FsError;
use super::node::Caller;
use crate::machine::{ThreadControl, Wakeup};

/// Readiness bits, as `poll` reports them (Linux `uapi/asm-generic/poll.h`;
/// epoll uses the same values).
pub mod events {
    /// Data can be read (or the end of the data was reached).
    pub const POLLIN: u16 = 0x1;
    /// Urgent data can be read.
    pub const POLLPRI: u16 = 0x2;
    /// Data can be written.
    pub const POLLOUT: u16 = 0x4;
    /// The other end is gone and nothing can be written.
    pub const POLLERR: u16 = 0x8;
    /// The writers are gone.
    pub const POLLHUP: u16 = 0x10;
    /// The descriptor is not open (`poll` only).
    pub const POLLNVAL: u16 = 0x20;
    /// Normal data can be read (implied by `POLLIN`).
    pub const POLLRDNORM: u16 = 0x40;
    /// Normal data can be written (implied by `POLLOUT`).
    pub const POLLWRNORM: u16 = 0x100;
    /// The peer shut its writing side down (sockets).
    pub const POLLRDHUP: u16 = 0x2000;
}

/// Told of every change of an object it listens to, from whichever thread
/// made the change, with no lock of the object held: it must not wait.
pub trait ChangeListener: Send + Sync {
    /// The object changed.
    fn changed(&self);
}

#[derive(Default)]
struct WaiterState {
    threads: Vec<Arc<dyn ThreadControl>>,
    generation: u64,
    listeners: Vec<Weak<dyn ChangeListener>>,
}

/// The threads waiting for one object to change, and its change count.
#[derive(Default)]
pub struct WaiterList {
    state: Mutex<WaiterState>,
}

impl core::fmt::Debug for WaiterList {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("WaiterList").field("generation", &self.generation()).finish()
    }
}

impl WaiterList {
    /// An empty list.
    pub const fn new() -> Self {
        WaiterList {
            state: Mutex::new(WaiterState { threads: Vec::new(), generation: 0, listeners: Vec::new() }),
        }
    }

    /// Wakes `thread` at the object's next change (once).
    pub fn add(&self, thread: &Arc<dyn ThreadControl>) {
        let mut state = self.state.lock();
        if !state.threads.iter().any(|waiter| Arc::ptr_eq(waiter, thread)) {
            state.threads.push(thread.clone());
        }
    }

    /// Forgets `thread` (it stopped waiting for another reason).
    pub fn remove(&self, thread: &Arc<dyn ThreadControl>) {
        self.state.lock().threads.retain(|waiter| !Arc::ptr_eq(waiter, thread));
    }

    /// Tells `listener` of every change until it is dropped.
    pub fn listen(&self, listener: Weak<dyn ChangeListener>) {
        let mut state = self.state.lock();
        state.listeners.retain(|listener| listener.strong_count() > 0);
        state.listeners.push(listener);
    }

    /// Whether no thread waits.
    pub fn is_empty(&self) -> bool {
        self.state.lock().threads.is_empty()
    }

    /// How many changes the object has seen.
    pub fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Counts a change and wakes every waiter. Call it after the change is
    /// visible: a thread that reads the generation before it looks at the
    /// object then never misses the change.
    pub fn notify(&self) {
        let (threads, listeners) = {
            let mut state = self.state.lock();
            state.generation += 1;
            let listeners: Vec<Arc<dyn ChangeListener>> = if state.listeners.is_empty() {
                Vec::new()
            } else {
                state.listeners.retain(|listener| listener.strong_count() > 0);
                state.listeners.iter().filter_map(Weak::upgrade).collect()
            };
            (core::mem::take(&mut state.threads), listeners)
        };
        for thread in threads {
            thread.wake();
        }
        for listener in listeners {
            listener.changed();
        }
    }

    /// Blocks `thread`, added to the list beforehand, until a change, a
    /// spurious wake-up or a signal. `Interrupted` (and off the list) for a
    /// signal or when the thread must stop.
    pub fn block(&self, caller: &Caller<'_>, thread: &Arc<dyn ThreadControl>) -> Result<(), FsError> {
        let is_stopped = caller.is_interrupted() || caller.machine.block(None) == Wakeup::Stop;
        if is_stopped {
            self.remove(thread);
            return Err(FsError::Interrupted);
        }
        Ok(())
    }
}
