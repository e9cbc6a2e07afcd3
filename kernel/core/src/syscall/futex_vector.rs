//! `futex_waitv`: wait on up to 128 futex words at once, until one is
//! woken (its index is the answer), an absolute timeout on the monotonic
//! or the wall clock, or a signal.

use alloc::vec::Vec;

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::futex::vector::{self, Word};
use crate::linux::Timespec;
use crate::user::User;

/// The most words one call waits on (`FUTEX_WAITV_MAX`).
const WAITV_MAX: u64 = 128;
/// `struct futex_waitv`: value, address, flags, reserved.
const WAITV_SIZE: usize = 24;
/// `FUTEX2_SIZE_U32`, the only word size Linux waits on here, within
/// `FUTEX2_SIZE_MASK`, and `FUTEX2_PRIVATE`.
const SIZE_U32: u32 = 0x02;
const SIZE_MASK: u32 = 0x03;
const PRIVATE: u32 = 0x80;
/// The clocks a timeout may be on.
const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;

/// One `struct futex_waitv`, checked.
struct Entry {
    value: u32,
    address: u64,
    is_private: bool,
}

fn parse(bytes: &[u8]) -> core::result::Result<Entry, Errno> {
    let field = |start: usize, length: usize| {
        let mut word = [0u8; 8];
        word[..length].copy_from_slice(&bytes[start..start + length]);
        u64::from_le_bytes(word)
    };
    let (value, address, flags, reserved) = (field(0, 8), field(8, 8), field(16, 4) as u32, field(20, 4));
    if reserved != 0 || flags & !(SIZE_MASK | PRIVATE) != 0 || flags & SIZE_MASK != SIZE_U32 {
        return Err(Errno::EINVAL);
    }
    let value = u32::try_from(value).map_err(|_| Errno::EINVAL)?;
    if !address.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    Ok(Entry { value, address, is_private: flags & PRIVATE != 0 })
}

pub(super) fn futex_waitv(
    context: Context<'_>,
    waiters: u64,
    count: u64,
    flags: u64,
    timeout: u64,
    clock: u64,
) -> Result {
    if flags != 0 || count == 0 || count > WAITV_MAX || waiters == 0 {
        return Err(Errno::EINVAL.into());
    }
    let machine = context.machine;
    let deadline = if timeout == 0 {
        None
    } else {
        if clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME {
            return Err(Errno::EINVAL.into());
        }
        let mut bytes = [0u8; 16];
        User::new(machine).read_into(timeout, &mut bytes)?;
        let time = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?.to_ns();
        Some(if clock == CLOCK_REALTIME {
            machine.monotonic_ns().saturating_add(time.saturating_sub(machine.realtime_ns()))
        } else {
            time
        })
    };
    // At most 128 entries of 24 bytes.
    let bytes = User::new(machine).read_bytes(waiters, count as usize * WAITV_SIZE)?;
    let entries = bytes.chunks_exact(WAITV_SIZE).map(parse).collect::<core::result::Result<Vec<_>, _>>()?;
    let memory = context.process.memory();
    let words: Vec<Word<'_>> = entries
        .iter()
        .map(|entry| {
            let shared = if entry.is_private {
                None
            } else {
                super::threads::shared_futex_key(context, entry.address)
            };
            match shared {
                Some(key) => Word {
                    table: crate::futex::shared_table(),
                    address: entry.address,
                    key,
                    expected: entry.value,
                },
                None => Word {
                    table: &memory.futexes,
                    address: entry.address,
                    key: entry.address,
                    expected: entry.value,
                },
            }
        })
        .collect();
    let is_interrupted = || context.thread.has_deliverable_signal();
    match vector::wait_any(machine, &words, deadline, &is_interrupted) {
        Ok(index) => Ok(index as u64),
        Err(Errno::EINTR) => Err(Failure::Restart),
        Err(error) => Err(error.into()),
    }
}
