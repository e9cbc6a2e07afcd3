//! `process_vm_readv` and `process_vm_writev`, for the caller's own process
//! (the only one whose memory the kernel can name).

use alloc::vec::Vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::user::User;

/// The most vectors a call takes (`UIO_MAXIOV`).
const MAX_VECTORS: u64 = 1024;
/// Bytes moved at a time.
const CHUNK: usize = 4096;

/// Copies between the caller's `local` vectors and the `remote` ones of
/// process `pid` (reading the remote ones with `is_read`); returns the
/// bytes moved, stopping at the first remote fault (`EFAULT` if nothing
/// was moved) as Linux does.
pub(super) fn process_vm(
    context: Context<'_>,
    pid: u64,
    local: (u64, u64),
    remote: (u64, u64),
    flags: u64,
    is_read: bool,
) -> Result {
    if flags != 0 || local.1 > MAX_VECTORS || remote.1 > MAX_VECTORS {
        return Err(Errno::EINVAL.into());
    }
    let pid = pid as i32;
    let is_own =
        pid > 0 && (pid as u64 == context.process.pid || context.process.thread(pid as u64).is_some());
    let user = User::new(context.machine);
    let local = user.read_iovecs(local.0, local.1)?;
    let remote = user.read_iovecs(remote.0, remote.1)?;
    if !is_own {
        return Err(Errno::ESRCH.into());
    }
    let mut local_place = Places::new(&local);
    let mut moved = 0u64;
    for &(base, length) in &remote {
        let mut offset = 0;
        while offset < length {
            let Some((local_address, room)) = local_place.next(length - offset) else {
                return Ok(moved);
            };
            let amount = room.min(CHUNK as u64) as usize;
            let mut buffer: Vec<u8> = alloc::vec![0u8; amount];
            let (from, to) =
                if is_read { (base + offset, local_address) } else { (local_address, base + offset) };
            let copied = user.read_into(from, &mut buffer).and_then(|()| user.write_bytes(to, &buffer));
            if copied.is_err() {
                return if moved == 0 { Err(Errno::EFAULT.into()) } else { Ok(moved) };
            }
            local_place.advance(amount as u64);
            offset += amount as u64;
            moved += amount as u64;
        }
    }
    Ok(moved)
}

/// A walk through the local vectors.
struct Places<'a> {
    vectors: &'a [(u64, u64)],
    index: usize,
    offset: u64,
}

impl<'a> Places<'a> {
    fn new(vectors: &'a [(u64, u64)]) -> Self {
        Places { vectors, index: 0, offset: 0 }
    }

    /// The next local place and how much fits there (at most `wanted`).
    fn next(&mut self, wanted: u64) -> Option<(u64, u64)> {
        while let Some(&(base, length)) = self.vectors.get(self.index) {
            if self.offset < length {
                return Some((base + self.offset, (length - self.offset).min(wanted)));
            }
            self.index += 1;
            self.offset = 0;
        }
        None
    }

    fn advance(&mut self, amount: u64) {
        self.offset += amount;
    }
}
