//! Priority-inheritance futexes: locks whose word holds the owner's thread
//! id, which the kernel takes and hands back for contended callers
//! (`FUTEX_LOCK_PI`, `FUTEX_LOCK_PI2`, `FUTEX_TRYLOCK_PI`,
//! `FUTEX_UNLOCK_PI`, `FUTEX_WAIT_REQUEUE_PI`, `FUTEX_CMP_REQUEUE_PI`).
//!
//! The word is the owner's id (low 30 bits), `FUTEX_WAITERS` while threads
//! wait in the kernel (so that the owner's unlock comes here), and
//! `FUTEX_OWNER_DIED` once a robust owner ended. Waiters sleep in the
//! process's futex table under the word's address; an unlock frees the
//! word and wakes them, and the first to look takes it (setting
//! `FUTEX_WAITERS` again if others still wait) while the rest wait again. The owner's priority is not raised: with threads of one
//! priority (the common case) inheritance changes nothing. A requeue to a
//! lock wakes the waiters, which then take the lock in turn.

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::futex::MATCH_ANY;

/// Word bits.
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

fn load(context: Context<'_>, address: u64) -> core::result::Result<u32, Errno> {
    if !address.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    context.machine.load_u32(address).map_err(|_| Errno::EFAULT)
}

/// Replaces `current` at `address` with `new`: `Ok(true)` if it did.
fn exchange(context: Context<'_>, address: u64, current: u32, new: u32) -> core::result::Result<bool, Errno> {
    let outcome = context.machine.compare_exchange_u32(address, current, new).map_err(|_| Errno::EFAULT)?;
    Ok(outcome.is_ok())
}

/// What one look at the lock word found.
enum Attempt {
    /// The caller holds the lock now.
    Taken,
    /// Another thread holds it; the word (with `FUTEX_WAITERS` set) to
    /// wait on.
    Held(u32),
}

/// Tries once to take the lock at `address` for the caller.
fn attempt(context: Context<'_>, address: u64) -> core::result::Result<Attempt, Errno> {
    let me = context.thread.tid as u32 & FUTEX_TID_MASK;
    loop {
        let word = load(context, address)?;
        let owner = word & FUTEX_TID_MASK;
        if owner == 0 {
            let others = context.process.memory().futexes.has_waiters(address);
            let taken = me | (word & FUTEX_OWNER_DIED) | if others { FUTEX_WAITERS } else { 0 };
            if exchange(context, address, word, taken)? {
                return Ok(Attempt::Taken);
            }
            continue;
        }
        if owner == me {
            return Err(Errno::EDEADLK);
        }
        if context.process.thread(u64::from(owner)).is_none() && word & FUTEX_OWNER_DIED == 0 {
            // The word names no thread that exists.
            return Err(Errno::ESRCH);
        }
        if word & FUTEX_WAITERS != 0 || exchange(context, address, word, word | FUTEX_WAITERS)? {
            return Ok(Attempt::Held(word | FUTEX_WAITERS));
        }
    }
}

/// `FUTEX_LOCK_PI` / `FUTEX_LOCK_PI2`: takes the lock, waiting until the
/// monotonic `deadline_ns`.
pub(super) fn lock(context: Context<'_>, address: u64, deadline_ns: Option<u64>) -> Result {
    loop {
        let expected = match attempt(context, address)? {
            Attempt::Taken => return Ok(0),
            Attempt::Held(expected) => expected,
        };
        let is_interrupted = || context.thread.has_deliverable_signal();
        let memory = context.process.memory();
        let table = &memory.futexes;
        match table.wait(context.machine, address, expected, MATCH_ANY, deadline_ns, &is_interrupted) {
            // Woken, or the word changed before the wait: look again.
            Ok(()) | Err(Errno::EAGAIN) => {}
            // The deadline is absolute: the call may start over.
            Err(Errno::EINTR) => return Err(Failure::Restart),
            Err(error) => return Err(error.into()),
        }
    }
}

/// `FUTEX_TRYLOCK_PI`: takes the lock if it is free (`EAGAIN` if not).
pub(super) fn try_lock(context: Context<'_>, address: u64) -> Result {
    let me = context.thread.tid as u32 & FUTEX_TID_MASK;
    let word = load(context, address)?;
    match word & FUTEX_TID_MASK {
        0 => match attempt(context, address)? {
            Attempt::Taken => Ok(0),
            Attempt::Held(_) => Err(Errno::EAGAIN.into()),
        },
        owner if owner == me => Err(Errno::EDEADLK.into()),
        _ => Err(Errno::EAGAIN.into()),
    }
}

/// `FUTEX_UNLOCK_PI`: frees the caller's lock and wakes its waiters.
pub(super) fn unlock(context: Context<'_>, address: u64) -> Result {
    let me = context.thread.tid as u32 & FUTEX_TID_MASK;
    loop {
        let word = load(context, address)?;
        if word & FUTEX_TID_MASK != me {
            return Err(Errno::EPERM.into());
        }
        if exchange(context, address, word, 0)? {
            break;
        }
    }
    // All of them: one that was woken but timed out or was interrupted
    // before it took the word would otherwise leave the rest asleep with
    // nothing in the word to send its next owner here.
    context.process.memory().futexes.wake(address, u32::MAX, MATCH_ANY)?;
    Ok(0)
}

/// `FUTEX_WAIT_REQUEUE_PI`: waits on `address` while it holds `expected`,
/// then takes the lock at `lock_address`.
pub(super) fn wait_requeue(
    context: Context<'_>,
    address: u64,
    expected: u32,
    deadline_ns: Option<u64>,
    lock_address: u64,
) -> Result {
    if address == lock_address {
        return Err(Errno::EINVAL.into());
    }
    let is_interrupted = || context.thread.has_deliverable_signal();
    let memory = context.process.memory();
    let table = &memory.futexes;
    match table.wait(context.machine, address, expected, MATCH_ANY, deadline_ns, &is_interrupted) {
        Ok(()) => lock(context, lock_address, deadline_ns),
        Err(Errno::EINTR) => Err(Failure::Restart),
        Err(error) => Err(error.into()),
    }
}

/// `FUTEX_CMP_REQUEUE_PI`: if `address` still holds `expected`, wakes
/// its waiters (one, and up to `requeue_count` more), which then take the
/// lock at `lock_address` in turn; returns how many.
pub(super) fn compare_requeue(
    context: Context<'_>,
    address: u64,
    wake_count: u32,
    requeue_count: u32,
    lock_address: u64,
    expected: u32,
) -> Result {
    if wake_count != 1 || address == lock_address {
        return Err(Errno::EINVAL.into());
    }
    load(context, lock_address)?;
    if load(context, address)? != expected {
        return Err(Errno::EAGAIN.into());
    }
    let woken = context.process.memory().futexes.wake(address, requeue_count.saturating_add(1), MATCH_ANY)?;
    Ok(u64::from(woken))
}
