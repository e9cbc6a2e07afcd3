//! `process_vm_readv` and `process_vm_writev`: the caller's own memory
//! through its loaded tables, another process's through the frames its
//! tables map (faulted in first, as Linux's `access_remote_vm`), when the
//! caller may inspect it (root or the same user).

use alloc::vec::Vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::machine::Machine;
use crate::memory::{Access, FaultResolution, PAGE_SIZE};
use crate::process::{Memory, Process};
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
    let target = if is_own { None } else { Some(other_process(context, pid)?) };
    // Another process's memory, unless it is the caller's own (CLONE_VM).
    let memory = target
        .as_ref()
        .map(|target| target.memory())
        .filter(|memory| !alloc::sync::Arc::ptr_eq(memory, &context.process.memory()));
    let mut local_place = Places::new(&local);
    let mut moved = 0u64;
    let mut chunk: Vec<u8> = alloc::vec![0u8; CHUNK];
    for &(base, length) in &remote {
        let mut offset = 0;
        while offset < length {
            let Some((local_address, room)) = local_place.next(length - offset) else {
                return Ok(moved);
            };
            let remote_address = base + offset;
            // Within one remote page, so that another process's is one frame.
            let page_room = PAGE_SIZE - remote_address % PAGE_SIZE;
            let amount = room.min(CHUNK as u64).min(page_room) as usize;
            let buffer = &mut chunk[..amount];
            let copied = match (&memory, is_read) {
                (None, true) => user
                    .read_into(remote_address, buffer)
                    .and_then(|()| user.write_bytes(local_address, buffer)),
                (None, false) => user
                    .read_into(local_address, buffer)
                    .and_then(|()| user.write_bytes(remote_address, buffer)),
                // The remote space is locked only while its frame is used:
                // the local copy may fault.
                (Some(memory), true) => {
                    remote_copy(context.machine, memory, remote_address, Copy::Read(buffer))
                        .and_then(|()| user.write_bytes(local_address, buffer))
                }
                (Some(memory), false) => user
                    .read_into(local_address, buffer)
                    .and_then(|()| remote_copy(context.machine, memory, remote_address, Copy::Write(buffer))),
            };
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

/// The process (or the process of the thread) `pid` names, which the
/// caller may inspect: `ESRCH` if there is none, `EPERM` if it may not.
fn other_process(context: Context<'_>, pid: i32) -> core::result::Result<alloc::sync::Arc<Process>, Errno> {
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    let pid = pid as u64;
    let target = crate::process::find(pid)
        .or_else(|| crate::process::all().into_iter().find(|process| process.thread(pid).is_some()))
        .filter(|process| !process.has_ended())
        .ok_or(Errno::ESRCH)?;
    if !crate::process::may_inspect(&super::files::caller(context), &target) {
        return Err(Errno::EPERM);
    }
    Ok(target)
}

/// Which way a remote copy goes.
enum Copy<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// Copies within the one page of another process's memory at `address`,
/// faulting it in first (for writing, a private copy), as the process's
/// own access would: `EFAULT` where that access would fault.
fn remote_copy(
    machine: &dyn Machine,
    memory: &Memory,
    address: u64,
    copy: Copy<'_>,
) -> core::result::Result<(), Errno> {
    let page = address & !(PAGE_SIZE - 1);
    let offset = (address - page) as usize;
    let is_read = matches!(copy, Copy::Read(_));
    let needs_shootdown = {
        let mut space = memory.space.lock();
        let is_readable = space.area_at(page).is_some_and(|(_, area)| area.rights.is_accessible());
        // A page there is read as it is (a fault would map a private file
        // mapping's file page over the process's copy); one missing, or a
        // store, is faulted in as the process's own access would be.
        let is_present = is_read && is_readable && space.tables().mapped_frame(page).is_some();
        if !is_present {
            let access = if is_read { Access::Read } else { Access::Write };
            if space.resolve_fault(machine, address, access) != FaultResolution::Mapped {
                return Err(Errno::EFAULT);
            }
        }
        let frame = space.tables().mapped_frame(page).ok_or(Errno::EFAULT)?;
        match copy {
            Copy::Read(buffer) => crate::pages::read_frame(frame, offset, buffer),
            Copy::Write(bytes) => crate::pages::write_frame(frame, offset, bytes),
        }
        space.take_shootdown()
    };
    if needs_shootdown {
        machine.synchronize_mappings();
    }
    Ok(())
}

/// Reads `buffer.len()` bytes at `address` of `target`'s memory, as
/// `process_vm_readv` would (`ptrace`'s peeks).
pub(super) fn read_from(
    context: Context<'_>,
    target: &Process,
    address: u64,
    buffer: &mut [u8],
) -> core::result::Result<(), Errno> {
    let memory = target.memory();
    if alloc::sync::Arc::ptr_eq(&memory, &context.process.memory()) {
        return User::new(context.machine).read_into(address, buffer);
    }
    let mut done = 0;
    while done < buffer.len() {
        let at = address.checked_add(done as u64).ok_or(Errno::EFAULT)?;
        let amount = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buffer.len() - done);
        remote_copy(context.machine, &memory, at, Copy::Read(&mut buffer[done..done + amount]))?;
        done += amount;
    }
    Ok(())
}

/// Writes `bytes` at `address` of `target`'s memory, as a debugger does
/// (`ptrace`'s pokes): where the mapping refuses stores but allows
/// access (program text), the page gets a private copy that takes the
/// bytes while the mapping stays as it was (Linux's `FOLL_FORCE`).
pub(super) fn write_to(
    context: Context<'_>,
    target: &Process,
    address: u64,
    bytes: &[u8],
) -> core::result::Result<(), Errno> {
    let memory = target.memory();
    let is_own = alloc::sync::Arc::ptr_eq(&memory, &context.process.memory());
    let mut done = 0;
    while done < bytes.len() {
        let at = address.checked_add(done as u64).ok_or(Errno::EFAULT)?;
        let amount = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(bytes.len() - done);
        let part = &bytes[done..done + amount];
        let is_writable = memory.space.lock().area_at(at).is_some_and(|(_, area)| area.rights.write);
        if is_writable && is_own {
            User::new(context.machine).write_bytes(at, part)?;
        } else if is_writable {
            remote_copy(context.machine, &memory, at, Copy::Write(part))?;
        } else {
            force_write(context.machine, &memory, at, part)?;
        }
        done += amount;
    }
    Ok(())
}

/// Stores `bytes` (within one page) at `address` of a mapping that
/// refuses stores, through a private copy of its page.
fn force_write(
    machine: &dyn Machine,
    memory: &Memory,
    address: u64,
    bytes: &[u8],
) -> core::result::Result<(), Errno> {
    let page = address & !(PAGE_SIZE - 1);
    let offset = (address - page) as usize;
    let needs_shootdown = {
        let mut space = memory.space.lock();
        let rights = match space.area_at(page) {
            Some((_, area)) if area.rights.is_accessible() => area.rights,
            _ => return Err(Errno::EFAULT),
        };
        if space.tables().mapped_frame(page).is_none()
            && space.resolve_fault(machine, address, Access::Read) != FaultResolution::Mapped
        {
            return Err(Errno::EFAULT);
        }
        let replaced = space.tables().make_private(page, rights).map_err(|_| Errno::ENOMEM)?;
        let frame = space.tables().mapped_frame(page).ok_or(Errno::EFAULT)?;
        crate::pages::write_frame(frame, offset, bytes);
        replaced | space.take_shootdown()
    };
    if needs_shootdown {
        machine.synchronize_mappings();
    }
    Ok(())
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

/// Reads what `target`'s memory holds at `address` into `buffer`, page by
/// page, for `caller_process` (`/proc/PID/mem`): the bytes read up to the
/// first address the process could not read itself, `EIO` if none.
pub(crate) fn read_memory_of(
    machine: &dyn Machine,
    caller_process: Option<&Process>,
    target: &Process,
    address: u64,
    buffer: &mut [u8],
) -> core::result::Result<usize, Errno> {
    let memory = target.memory();
    let is_own = caller_process.is_some_and(|own| alloc::sync::Arc::ptr_eq(&memory, &own.memory()));
    let mut done = 0;
    while done < buffer.len() {
        let Some(at) = address.checked_add(done as u64) else { break };
        let amount = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(buffer.len() - done);
        let part = &mut buffer[done..done + amount];
        let copied = if is_own {
            User::new(machine).read_into(at, part)
        } else {
            remote_copy(machine, &memory, at, Copy::Read(part))
        };
        if copied.is_err() {
            break;
        }
        done += amount;
    }
    if done == 0 && !buffer.is_empty() { Err(Errno::EIO) } else { Ok(done) }
}

/// Writes `bytes` at `address` of `target`'s memory for `caller_process`
/// (`/proc/PID/mem`), as a debugger's poke does (read-only text gets a
/// private copy): the bytes written up to the first address that is in no
/// accessible mapping, `EIO` if none.
pub(crate) fn write_memory_of(
    machine: &dyn Machine,
    caller_process: Option<&Process>,
    target: &Process,
    address: u64,
    bytes: &[u8],
) -> core::result::Result<usize, Errno> {
    let memory = target.memory();
    let is_own = caller_process.is_some_and(|own| alloc::sync::Arc::ptr_eq(&memory, &own.memory()));
    let mut done = 0;
    while done < bytes.len() {
        let Some(at) = address.checked_add(done as u64) else { break };
        let amount = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(bytes.len() - done);
        let part = &bytes[done..done + amount];
        let is_writable = memory.space.lock().area_at(at).is_some_and(|(_, area)| area.rights.write);
        let copied = if is_writable && is_own {
            User::new(machine).write_bytes(at, part)
        } else if is_writable {
            remote_copy(machine, &memory, at, Copy::Write(part))
        } else {
            force_write(machine, &memory, at, part)
        };
        if copied.is_err() {
            break;
        }
        done += amount;
    }
    if done == 0 && !bytes.is_empty() { Err(Errno::EIO) } else { Ok(done) }
}
