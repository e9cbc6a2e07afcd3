//! Waiting on several futex words at once (`futex_waitv`).
//!
//! The waiting thread queues one waiter per word, each under its word's
//! key in its word's table (the process's own, or the shared one), after
//! checking under that table's lock that the word holds the value
//! expected. A wake of any word marks that word's waiter; the thread then
//! takes all of them off their queues and answers with the first word
//! woken.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{FutexTable, MATCH_ANY, Waiter, check_address};
use crate::errno::Errno;
use crate::machine::{Machine, Wakeup};

/// One word [`wait_any`] waits on.
#[derive(Debug)]
pub struct Word<'a> {
    /// The table its waiters are queued in.
    pub table: &'a FutexTable,
    /// Its address in the caller's memory.
    pub address: u64,
    /// The key it is queued under (its address, or its physical address
    /// in the shared table).
    pub key: u64,
    /// The value it must hold for the wait to begin.
    pub expected: u32,
}

/// Blocks until a wake reaches any of `words` and answers its index; or
/// fails: `EAGAIN` if a word does not hold its expected value, `EFAULT`
/// if one cannot be read, `ETIMEDOUT` once the monotonic `deadline_ns`
/// passes, `EINTR` when the thread must stop or `is_interrupted` turns
/// true. A word woken before the wait gave up still wins.
pub fn wait_any(
    machine: &dyn Machine,
    words: &[Word<'_>],
    deadline_ns: Option<u64>,
    is_interrupted: &dyn Fn() -> bool,
) -> Result<usize, Errno> {
    for word in words {
        check_address(word.address)?;
    }
    let thread = machine.current_thread();
    let mut queued: Vec<Arc<Waiter>> = Vec::new();
    queued.try_reserve_exact(words.len()).map_err(|_| Errno::ENOMEM)?;
    for word in words {
        let waiter =
            Arc::new(Waiter { thread: thread.clone(), bitset: MATCH_ANY, is_woken: AtomicBool::new(false) });
        let mut waiters = word.table.waiters.lock();
        let refusal = match machine.load_u32(word.address) {
            Ok(value) if value == word.expected => None,
            Ok(_) => Some(Errno::EAGAIN),
            Err(_) => Some(Errno::EFAULT),
        };
        if let Some(error) = refusal {
            drop(waiters);
            return leave(words, &queued).ok_or(error);
        }
        waiters.entry(word.key).or_default().push_back(waiter.clone());
        queued.push(waiter);
    }
    loop {
        if queued.iter().any(|waiter| waiter.is_woken.load(Ordering::Acquire)) {
            return leave(words, &queued).ok_or(Errno::EINTR);
        }
        let timed_out = deadline_ns.is_some_and(|deadline| machine.monotonic_ns() >= deadline);
        if timed_out || is_interrupted() || machine.block(deadline_ns) == Wakeup::Stop {
            let error = if timed_out { Errno::ETIMEDOUT } else { Errno::EINTR };
            return leave(words, &queued).ok_or(error);
        }
    }
}

/// Takes the waiters in `queued` (one per word, in order) off their
/// queues; the index of the first a waker had already taken off, if any.
fn leave(words: &[Word<'_>], queued: &[Arc<Waiter>]) -> Option<usize> {
    let mut first_woken = None;
    for (index, (word, waiter)) in words.iter().zip(queued).enumerate() {
        if !word.table.remove(word.key, waiter) && first_woken.is_none() {
            first_woken = Some(index);
        }
    }
    first_woken
}
