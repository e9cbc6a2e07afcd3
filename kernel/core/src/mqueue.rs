//! POSIX message queues: named queues of prioritised messages.
//!
//! A queue holds up to `maxmsg` messages of at most `msgsize` bytes, the
//! highest priority first and, within a priority, in the order sent. Names
//! live in one global table (Linux's mqueue filesystem of the one IPC
//! namespace); an unlinked queue lives on while descriptors name it. A
//! descriptor is a [`QueueFile`]: readable while a message waits, writable
//! while there is room, and its reads give the queue's description as
//! `/dev/mqueue` files do on Linux. A process may ask to be told with a
//! signal when a message arrives in an empty queue (`mq_notify`).
//!
//! Neighbours: `syscall::posix_queues` has the system calls.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use spin::Mutex;

use crate::signal::SignalInfo;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{Caller, FsError, SpecialFile};

/// The number of priorities (`MQ_PRIO_MAX`).
pub const PRIORITY_COUNT: u32 = 32768;

/// A queue's shape (`struct mq_attr` without the flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The most messages it holds.
    pub capacity: usize,
    /// The longest message, in bytes.
    pub message_size: usize,
}

/// Who is told when a message arrives in the empty queue.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    /// The process that asked.
    pub pid: u64,
    /// The signal sent, or `None` (`SIGEV_NONE`: the registration only).
    pub signal: Option<u8>,
    /// What the signal carries.
    pub info: SignalInfo,
}

#[derive(Debug)]
struct Contents {
    /// Messages by priority, each priority's in the order sent.
    messages: BTreeMap<u32, VecDeque<Vec<u8>>>,
    count: usize,
    bytes: usize,
    notification: Option<Notification>,
}

/// A message queue.
#[derive(Debug)]
pub struct Queue {
    /// Its shape.
    pub shape: Shape,
    /// The permission bits it was made with.
    pub mode: u32,
    /// Its owner's user and group.
    pub owner: (u32, u32),
    contents: Mutex<Contents>,
    /// Senders, receivers and pollers waiting for a change.
    pub waiters: WaiterList,
}

/// Why a send or receive could not happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Full (send) or empty (receive): try again after a change.
    WouldBlock,
    /// The message is longer than the queue takes, or the buffer shorter
    /// than its messages may be.
    Size,
}

impl Queue {
    /// An empty queue.
    pub fn new(shape: Shape, mode: u32, owner: (u32, u32)) -> Arc<Queue> {
        Arc::new(Queue {
            shape,
            mode,
            owner,
            contents: Mutex::new(Contents {
                messages: BTreeMap::new(),
                count: 0,
                bytes: 0,
                notification: None,
            }),
            waiters: WaiterList::new(),
        })
    }

    /// Messages waiting.
    pub fn count(&self) -> usize {
        self.contents.lock().count
    }

    /// Adds `message` with `priority`; when it arrives in an empty queue
    /// whose notification is registered, returns that notification (now
    /// unregistered) for the caller to send.
    pub fn send(&self, message: &[u8], priority: u32) -> Result<Option<Notification>, Refusal> {
        if message.len() > self.shape.message_size {
            return Err(Refusal::Size);
        }
        let notification = {
            let mut contents = self.contents.lock();
            if contents.count >= self.shape.capacity {
                return Err(Refusal::WouldBlock);
            }
            let was_empty = contents.count == 0;
            contents.messages.entry(priority).or_default().push_back(message.to_vec());
            contents.count += 1;
            contents.bytes += message.len();
            // Linux tells only when no receiver is waiting to take it.
            if was_empty && self.waiters.is_empty() { contents.notification.take() } else { None }
        };
        self.waiters.notify();
        Ok(notification)
    }

    /// Takes the oldest message of the highest priority, if it fits in
    /// `capacity` bytes: (message, priority).
    pub fn receive(&self, capacity: usize) -> Result<(Vec<u8>, u32), Refusal> {
        if capacity < self.shape.message_size {
            return Err(Refusal::Size);
        }
        let taken = {
            let mut contents = self.contents.lock();
            let Some(mut highest) = contents.messages.last_entry() else {
                return Err(Refusal::WouldBlock);
            };
            let priority = *highest.key();
            let message = highest.get_mut().pop_front().unwrap_or_default();
            if highest.get().is_empty() {
                highest.remove();
            }
            contents.count -= 1;
            contents.bytes -= message.len();
            (message, priority)
        };
        self.waiters.notify();
        Ok(taken)
    }

    /// Registers `notification`; `false` if one is registered already
    /// (even the same process's, as on Linux).
    pub fn register(&self, notification: Notification) -> bool {
        let mut contents = self.contents.lock();
        if contents.notification.is_some() {
            return false;
        }
        contents.notification = Some(notification);
        true
    }

    /// Removes the registration of process `pid`; `false` if it had none.
    pub fn unregister(&self, pid: u64) -> bool {
        let mut contents = self.contents.lock();
        let is_registered = contents.notification.is_some_and(|registered| registered.pid == pid);
        if is_registered {
            contents.notification = None;
        }
        is_registered
    }

    /// What reading the queue's file gives (Linux's format).
    pub fn describe(&self) -> String {
        let contents = self.contents.lock();
        let (signal, pid, notify) = match contents.notification {
            Some(notification) => {
                (notification.signal.unwrap_or(0), notification.pid, u8::from(notification.signal.is_none()))
            }
            None => (0, 0, 0),
        };
        alloc::format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            contents.bytes,
            notify,
            signal,
            pid
        )
    }
}

/// The queues of one IPC namespace by name (without the leading slash).
#[derive(Debug, Default)]
pub struct QueueNames(Mutex<BTreeMap<String, Arc<Queue>>>);

/// Why a name could not be opened or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// No queue of that name (and no creation asked).
    NotFound,
    /// One exists and exclusive creation was asked.
    Exists,
    /// The caller may not (`EACCES`).
    Denied,
}

/// The queue named `name`, made with `make` if there is none and it may be.
pub fn open(
    names: &QueueNames,
    name: &str,
    may_create: bool,
    is_exclusive: bool,
    make: impl FnOnce() -> Arc<Queue>,
) -> Result<Arc<Queue>, NameError> {
    let mut queues = names.0.lock();
    match queues.get(name) {
        Some(_) if may_create && is_exclusive => Err(NameError::Exists),
        Some(queue) => Ok(queue.clone()),
        None if !may_create => Err(NameError::NotFound),
        None => {
            let queue = make();
            queues.insert(String::from(name), queue.clone());
            Ok(queue)
        }
    }
}

/// Removes the name `name` if `may_remove` allows it for that queue.
pub fn unlink(
    names: &QueueNames,
    name: &str,
    may_remove: impl FnOnce(&Queue) -> bool,
) -> Result<(), NameError> {
    let mut queues = names.0.lock();
    let queue = queues.get(name).ok_or(NameError::NotFound)?;
    if !may_remove(queue) {
        return Err(NameError::Denied);
    }
    queues.remove(name);
    Ok(())
}

/// A descriptor's view of a queue.
#[derive(Debug)]
pub struct QueueFile {
    /// The queue.
    pub queue: Arc<Queue>,
}

impl SpecialFile for QueueFile {
    fn name(&self) -> String {
        String::from("/dev/mqueue")
    }

    fn read(&self, _caller: &Caller<'_>, buffer: &mut [u8], _is_nonblocking: bool) -> Result<usize, FsError> {
        let text = self.queue.describe();
        let length = text.len().min(buffer.len());
        buffer[..length].copy_from_slice(&text.as_bytes()[..length]);
        Ok(length)
    }

    fn poll(&self) -> u16 {
        let count = self.queue.count();
        let mut ready = 0;
        if count > 0 {
            ready |= events::POLLIN | events::POLLRDNORM;
        }
        if count < self.queue.shape.capacity {
            ready |= events::POLLOUT | events::POLLWRNORM;
        }
        ready
    }

    fn waiters(&self) -> &WaiterList {
        &self.queue.waiters
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_by_priority_then_in_order() {
        let queue = Queue::new(Shape { capacity: 3, message_size: 8 }, 0o600, (0, 0));
        assert_eq!(queue.send(b"low", 1).map(|n| n.is_some()), Ok(false));
        assert_eq!(queue.send(b"high", 5).map(|n| n.is_some()), Ok(false));
        assert_eq!(queue.send(b"low2", 1).map(|n| n.is_some()), Ok(false));
        assert_eq!(queue.send(b"x", 1).map(|n| n.is_some()), Err(Refusal::WouldBlock));
        assert_eq!(queue.send(b"too long!", 1).map(|n| n.is_some()), Err(Refusal::Size));
        assert_eq!(queue.receive(4), Err(Refusal::Size));
        assert_eq!(queue.receive(8), Ok((b"high".to_vec(), 5)));
        assert_eq!(queue.receive(8), Ok((b"low".to_vec(), 1)));
        assert_eq!(queue.receive(8), Ok((b"low2".to_vec(), 1)));
        assert_eq!(queue.receive(8), Err(Refusal::WouldBlock));
    }

    #[test]
    fn a_registered_process_is_told_once_of_a_message_in_an_empty_queue() {
        let queue = Queue::new(Shape { capacity: 4, message_size: 8 }, 0o600, (0, 0));
        let notification = Notification { pid: 1, signal: Some(10), info: SignalInfo::default() };
        assert!(queue.register(notification));
        assert!(!queue.register(Notification { pid: 2, ..notification }));
        assert!(!queue.register(notification), "once");
        assert!(queue.send(b"a", 0).is_ok_and(|told| told.is_some()));
        assert!(queue.send(b"b", 0).is_ok_and(|told| told.is_none()));
        assert!(!queue.unregister(1), "telling unregistered it");
        assert!(queue.describe().starts_with("QSIZE:2 "));
    }
}
