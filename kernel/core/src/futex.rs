//! Futexes: threads waiting on application memory words.
//!
//! A waiter records itself under the word's address after checking, under
//! the table's lock, that the word still holds the value it expects; a
//! waker takes waiters off the address under the same lock. A waiter is
//! done when a waker marked it woken, when its deadline passes, or when its
//! thread must stop (`Wakeup::Stop`).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;

use crate::errno::Errno;
use crate::machine::{Machine, ThreadControl, Wakeup};

/// `FUTEX_BITSET_MATCH_ANY`.
pub const MATCH_ANY: u32 = u32::MAX;

struct Waiter {
    thread: Arc<dyn ThreadControl>,
    bitset: u32,
    is_woken: AtomicBool,
}

/// The waiters of one process, by address; or of words in memory that
/// processes share, by the word's physical address ([`shared_table`]).
#[derive(Default)]
pub struct FutexTable {
    waiters: Mutex<BTreeMap<u64, VecDeque<Arc<Waiter>>>>,
}

impl core::fmt::Debug for FutexTable {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("FutexTable")
    }
}

fn check_address(address: u64) -> Result<(), Errno> {
    if address.is_multiple_of(4) { Ok(()) } else { Err(Errno::EINVAL) }
}

/// The table of futexes in shared memory (a `MAP_SHARED` mapping used
/// without `FUTEX_PRIVATE_FLAG`), which every process reaches by the
/// word's physical address.
pub fn shared_table() -> &'static FutexTable {
    static SHARED: FutexTable = FutexTable::new();
    &SHARED
}

impl FutexTable {
    /// An empty table.
    pub const fn new() -> Self {
        FutexTable { waiters: Mutex::new(BTreeMap::new()) }
    }

    /// `FUTEX_WAIT`: blocks while the word at `address` holds `expected`,
    /// until a matching wake, the monotonic `deadline_ns`, a stop, or
    /// `is_interrupted` (a signal) turns true (then `EINTR`).
    pub fn wait(
        &self,
        machine: &dyn Machine,
        address: u64,
        expected: u32,
        bitset: u32,
        deadline_ns: Option<u64>,
        is_interrupted: &dyn Fn() -> bool,
    ) -> Result<(), Errno> {
        self.wait_keyed(machine, address, address, expected, bitset, deadline_ns, is_interrupted)
    }

    /// [`FutexTable::wait`] for the word at `address`, queued under `key`
    /// (its physical address in the shared table).
    #[allow(clippy::too_many_arguments)]
    pub fn wait_keyed(
        &self,
        machine: &dyn Machine,
        address: u64,
        key: u64,
        expected: u32,
        bitset: u32,
        deadline_ns: Option<u64>,
        is_interrupted: &dyn Fn() -> bool,
    ) -> Result<(), Errno> {
        check_address(address)?;
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let waiter =
            Arc::new(Waiter { thread: machine.current_thread(), bitset, is_woken: AtomicBool::new(false) });
        {
            let mut waiters = self.waiters.lock();
            let value = machine.load_u32(address).map_err(|_| Errno::EFAULT)?;
            if value != expected {
                return Err(Errno::EAGAIN);
            }
            waiters.entry(key).or_default().push_back(waiter.clone());
        }
        loop {
            if waiter.is_woken.load(Ordering::Acquire) {
                return Ok(());
            }
            let timed_out = deadline_ns.is_some_and(|deadline| machine.monotonic_ns() >= deadline);
            machine.note_wait(&"futex", address);
            if timed_out || is_interrupted() || machine.block(deadline_ns) == Wakeup::Stop {
                return match self.remove(key, &waiter) {
                    true if timed_out => Err(Errno::ETIMEDOUT),
                    true => Err(Errno::EINTR),
                    // A waker took it off the queue first: it was woken.
                    false => Ok(()),
                };
            }
        }
    }

    /// Whether any thread waits on `address`.
    pub fn has_waiters(&self, address: u64) -> bool {
        self.waiters.lock().get(&address).is_some_and(|queue| !queue.is_empty())
    }

    /// Takes `waiter` off `address`'s queue; `false` if it was not there.
    fn remove(&self, address: u64, waiter: &Arc<Waiter>) -> bool {
        let mut waiters = self.waiters.lock();
        let Some(queue) = waiters.get_mut(&address) else {
            return false;
        };
        let before = queue.len();
        queue.retain(|queued| !Arc::ptr_eq(queued, waiter));
        let removed = queue.len() != before;
        if queue.is_empty() {
            waiters.remove(&address);
        }
        removed
    }

    /// `FUTEX_WAKE`: wakes up to `count` waiters on `address` whose bitset
    /// meets `bitset` (at least one, as Linux counts after waking: a count
    /// of 0 wakes one); returns how many.
    pub fn wake(&self, address: u64, count: u32, bitset: u32) -> Result<u32, Errno> {
        check_address(address)?;
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let woken = {
            let mut waiters = self.waiters.lock();
            take(&mut waiters, address, count.max(1), bitset)
        };
        Ok(wake_all(woken))
    }

    /// `FUTEX_REQUEUE` / `FUTEX_CMP_REQUEUE`: wakes up to `wake_count`
    /// waiters on `from` and moves up to `move_count` more to `to`, after
    /// checking (with `expected`) that `from` still holds the value.
    pub fn requeue(
        &self,
        machine: &dyn Machine,
        from: u64,
        to: u64,
        wake_count: u32,
        move_count: u32,
        expected: Option<u32>,
    ) -> Result<u32, Errno> {
        check_address(from)?;
        check_address(to)?;
        let (woken, moved) = {
            let mut waiters = self.waiters.lock();
            if let Some(expected) = expected {
                let value = machine.load_u32(from).map_err(|_| Errno::EFAULT)?;
                if value != expected {
                    return Err(Errno::EAGAIN);
                }
            }
            let woken = take(&mut waiters, from, wake_count, MATCH_ANY);
            let moved = take(&mut waiters, from, move_count, MATCH_ANY);
            let moved_count = moved.len() as u32;
            if !moved.is_empty() {
                waiters.entry(to).or_default().extend(moved);
            }
            (woken, moved_count)
        };
        Ok(wake_all(woken) + moved)
    }

    /// `FUTEX_WAKE_OP`: applies `operation` to the word at `second`, wakes
    /// up to `count` waiters on `first` and, if the operation's comparison of
    /// the old value holds, up to `second_count` on `second` (a count of 0
    /// wakes one, as for `FUTEX_WAKE`).
    pub fn wake_op(
        &self,
        machine: &dyn Machine,
        first: u64,
        second: u64,
        count: u32,
        second_count: u32,
        operation: u32,
    ) -> Result<u32, Errno> {
        check_address(first)?;
        check_address(second)?;
        let (woken, second_woken) = {
            let mut waiters = self.waiters.lock();
            let old = apply_operation(machine, second, operation)?;
            let woken = take(&mut waiters, first, count.max(1), MATCH_ANY);
            let second_woken = if compare(old, operation)? {
                take(&mut waiters, second, second_count.max(1), MATCH_ANY)
            } else {
                Vec::new()
            };
            (woken, second_woken)
        };
        Ok(wake_all(woken) + wake_all(second_woken))
    }
}

/// Takes up to `count` waiters matching `bitset` off `address`'s queue.
fn take(
    waiters: &mut BTreeMap<u64, VecDeque<Arc<Waiter>>>,
    address: u64,
    count: u32,
    bitset: u32,
) -> Vec<Arc<Waiter>> {
    let mut taken = Vec::new();
    let Some(queue) = waiters.get_mut(&address) else {
        return taken;
    };
    let mut index = 0;
    while index < queue.len() && (taken.len() as u32) < count {
        if queue[index].bitset & bitset != 0 {
            if let Some(waiter) = queue.remove(index) {
                taken.push(waiter);
            }
        } else {
            index += 1;
        }
    }
    if queue.is_empty() {
        waiters.remove(&address);
    }
    taken
}

fn wake_all(waiters: Vec<Arc<Waiter>>) -> u32 {
    let count = waiters.len() as u32;
    for waiter in waiters {
        waiter.is_woken.store(true, Ordering::Release);
        waiter.thread.wake();
    }
    count
}

/// Applies the arithmetic of a `FUTEX_WAKE_OP` operation atomically to the
/// word at `address`; returns the old value.
fn apply_operation(machine: &dyn Machine, address: u64, operation: u32) -> Result<u32, Errno> {
    let kind = (operation >> 28) & 0x7;
    let is_shift = operation & (1 << 31) != 0;
    // The operand is a signed 12-bit field; shifts use its low five bits.
    let mut argument = (((operation << 8) as i32) >> 20) as u32;
    if is_shift {
        argument = 1u32 << (argument & 31);
    }
    let mut old = machine.load_u32(address).map_err(|_| Errno::EFAULT)?;
    loop {
        let new = match kind {
            0 => argument,
            1 => old.wrapping_add(argument),
            2 => old | argument,
            3 => old & !argument,
            4 => old ^ argument,
            _ => return Err(Errno::ENOSYS),
        };
        match machine.compare_exchange_u32(address, old, new).map_err(|_| Errno::EFAULT)? {
            Ok(_) => return Ok(old),
            Err(current) => old = current,
        }
    }
}

/// The comparison of a `FUTEX_WAKE_OP` operation on the old value.
fn compare(old: u32, operation: u32) -> Result<bool, Errno> {
    // The comparison operand is a signed 12-bit field.
    let argument = ((operation << 20) as i32) >> 20;
    let old = old as i32;
    Ok(match (operation >> 24) & 0xf {
        0 => old == argument,
        1 => old != argument,
        2 => old < argument,
        3 => old <= argument,
        4 => old > argument,
        5 => old >= argument,
        _ => return Err(Errno::ENOSYS),
    })
}

#[cfg(test)]
mod tests;
pub mod vector;
