//! System V semaphore sets: `semget`, `semop`, `semtimedop`, `semctl`.
//!
//! A call's operations apply all at once or not at all: while one of them
//! cannot (a decrement below zero, a wait for zero on a non-zero value),
//! the caller waits for the set to change, counted in `GETNCNT` or
//! `GETZCNT`. `SEM_UNDO` operations are remembered per process and undone
//! when it exits ([`undo_all`]). Sets are kept globally by id.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use super::ipc::{self, IPC_64, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, Permissions, Table};
use super::ipc_limits::{SEMMNI, SEMMNS, SEMMSL, SEMOPM};
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::user::User;
use crate::vfs::waiters::WaiterList;

/// `sem_flg`: undo at exit.
const SEM_UNDO: i16 = 0x1000;
/// `semctl` commands beyond the common ones.
const GETPID: u64 = 11;
const GETVAL: u64 = 12;
const GETALL: u64 = 13;
const GETNCNT: u64 = 14;
const GETZCNT: u64 = 15;
const SETVAL: u64 = 16;
const SETALL: u64 = 17;
const SEM_STAT: u64 = 18;
const SEM_INFO: u64 = 19;
const SEM_STAT_ANY: u64 = 20;
/// The largest value, the largest undo adjustment.
const SEMVMX: i32 = 32767;
const SEMAEM: i32 = 16384;

#[derive(Debug, Clone, Copy, Default)]
struct Semaphore {
    value: i32,
    last_pid: u32,
    waiting_for_increase: u32,
    waiting_for_zero: u32,
}

struct Set {
    permissions: Permissions,
    semaphores: Vec<Semaphore>,
    operation_time: u64,
    change_time: u64,
    waiters: Arc<WaiterList>,
}

/// The semaphore sets of one IPC namespace.
#[derive(Default)]
pub(crate) struct Semaphores {
    sets: Mutex<Table<Set>>,
    /// The semaphores of all sets (SEMMNS bounds them), kept with `sets`
    /// held.
    in_use: core::sync::atomic::AtomicU64,
    /// `SEM_UNDO` adjustments: by (process, set, semaphore).
    undo: Mutex<BTreeMap<(u64, i32, u16), i32>>,
}

/// The semaphore sets of the caller's IPC namespace.
fn semaphores_of(context: Context<'_>) -> Arc<Semaphores> {
    context.process.namespaces().ipc.objects().get()
}

pub(super) fn semget(context: Context<'_>, key: u64, count: u64, flags: u64) -> Result {
    let key = key as i32;
    let count = count as i32;
    if !(0..=SEMMSL.get().min(i32::MAX as u64) as i32).contains(&count) {
        return Err(Errno::EINVAL.into());
    }
    let all = semaphores_of(context);
    let mut sets = all.sets.lock();
    let fits = |set: &Set| if count as usize > set.semaphores.len() { Err(Errno::EINVAL) } else { Ok(()) };
    if let Some(id) = ipc::look_up(context, &sets, key, flags, |set| &set.permissions, fits)? {
        return Ok(id as u64);
    }
    if count == 0 {
        return Err(Errno::EINVAL.into());
    }
    let semaphores = all.in_use.load(core::sync::atomic::Ordering::Relaxed);
    if sets.by_id.len() as u64 >= SEMMNI.get() || semaphores + count as u64 > SEMMNS.get() {
        return Err(Errno::ENOSPC.into());
    }
    let id = sets.allocate_id()?;
    let set = Set {
        permissions: Permissions::new(context, key, flags),
        semaphores: alloc::vec![Semaphore::default(); count as usize],
        operation_time: 0,
        change_time: ipc::now_seconds(context),
        waiters: Arc::new(WaiterList::new()),
    };
    sets.insert(id, key, set);
    all.in_use.fetch_add(count as u64, core::sync::atomic::Ordering::Relaxed);
    Ok(id as u64)
}

fn set_id(id: u64) -> core::result::Result<i32, Errno> {
    i32::try_from(id as i64).ok().filter(|&id| id >= 0).ok_or(Errno::EINVAL)
}

/// One `struct sembuf`.
#[derive(Debug, Clone, Copy)]
struct Operation {
    number: u16,
    change: i16,
    flags: i16,
}

/// Applies `operations` to `set` if all can be; otherwise changes nothing
/// and returns the one that must wait.
fn try_apply(
    set: &mut Set,
    operations: &[Operation],
    pid: u32,
) -> core::result::Result<Option<Operation>, Errno> {
    let mut values: Vec<i32> = set.semaphores.iter().map(|semaphore| semaphore.value).collect();
    for operation in operations {
        let value = &mut values[usize::from(operation.number)];
        let change = i32::from(operation.change);
        if change == 0 && *value != 0 || *value + change < 0 {
            return Ok(Some(*operation));
        }
        if *value + change > SEMVMX {
            return Err(Errno::ERANGE);
        }
        *value += change;
    }
    for (semaphore, value) in set.semaphores.iter_mut().zip(values) {
        semaphore.value = value;
    }
    for operation in operations {
        set.semaphores[usize::from(operation.number)].last_pid = pid;
    }
    Ok(None)
}

pub(super) fn semtimedop(context: Context<'_>, id: u64, address: u64, count: u64, timeout: u64) -> Result {
    let id = set_id(id)?;
    if count == 0 {
        return Err(Errno::EINVAL.into());
    }
    if count > SEMOPM.get() {
        return Err(Errno::E2BIG.into());
    }
    let user = User::new(context.machine);
    let bytes = user.read_bytes(address, count as usize * 6)?;
    let operations: Vec<Operation> = bytes
        .chunks_exact(6)
        .map(|chunk| Operation {
            number: u16::from_le_bytes([chunk[0], chunk[1]]),
            change: i16::from_le_bytes([chunk[2], chunk[3]]),
            flags: i16::from_le_bytes([chunk[4], chunk[5]]),
        })
        .collect();
    let deadline = if timeout == 0 {
        None
    } else {
        let mut time = [0u8; 16];
        user.read_into(timeout, &mut time)?;
        let time = Timespec::decode(&time).ok_or(Errno::EINVAL)?;
        Some(context.machine.monotonic_ns().saturating_add(time.to_ns()))
    };
    let waiters = {
        let all = semaphores_of(context);
        let sets = all.sets.lock();
        let set = sets.by_id.get(&id).ok_or(Errno::EINVAL)?;
        if operations.iter().any(|operation| usize::from(operation.number) >= set.semaphores.len()) {
            return Err(Errno::EFBIG.into());
        }
        let alters = operations.iter().any(|operation| operation.change != 0);
        set.permissions.check(context, if alters { ipc::WRITE } else { ipc::READ })?;
        set.waiters.clone()
    };
    // The operation this caller is counted as waiting on, if any.
    let mut counted: Option<Operation> = None;
    let all = semaphores_of(context);
    let uncount = |counted: &mut Option<Operation>| {
        if let Some(operation) = counted.take()
            && let Some(set) = all.sets.lock().by_id.get_mut(&id)
            && let Some(semaphore) = set.semaphores.get_mut(usize::from(operation.number))
        {
            let counter = if operation.change == 0 {
                &mut semaphore.waiting_for_zero
            } else {
                &mut semaphore.waiting_for_increase
            };
            *counter = counter.saturating_sub(1);
        }
    };
    let outcome = ipc::wait(context, &waiters, deadline, || {
        uncount(&mut counted);
        let all = semaphores_of(context);
        let mut sets = all.sets.lock();
        let set = sets.by_id.get_mut(&id).ok_or(Errno::EIDRM)?;
        match try_apply(set, &operations, ipc::caller_pid(context))? {
            None => {
                set.operation_time = ipc::now_seconds(context);
                Ok(Some(()))
            }
            Some(blocked) if i32::from(blocked.flags) & IPC_NOWAIT as i32 != 0 => Err(Errno::EAGAIN),
            Some(blocked) => {
                let semaphore = &mut set.semaphores[usize::from(blocked.number)];
                if blocked.change == 0 {
                    semaphore.waiting_for_zero += 1;
                } else {
                    semaphore.waiting_for_increase += 1;
                }
                counted = Some(blocked);
                Ok(None)
            }
        }
    });
    uncount(&mut counted);
    match outcome? {
        Ok(()) => {}
        Err(ipc::Interruption::Signal) => return Err(Errno::EINTR.into()),
        Err(timed_out) => return Err(Failure::from(timed_out)),
    }
    let mut undo = all.undo.lock();
    for operation in operations.iter().filter(|operation| operation.flags & SEM_UNDO != 0) {
        let adjustment = undo.entry((context.process.pid, id, operation.number)).or_insert(0);
        *adjustment = (*adjustment - i32::from(operation.change)).clamp(-SEMAEM, SEMAEM);
    }
    drop(undo);
    waiters.notify();
    Ok(0)
}

/// Undoes the `SEM_UNDO` operations of process `pid` (at its exit) in the
/// IPC namespace `ipc`, as far as the values allow.
pub fn undo_all(ipc: &crate::namespace::Namespace, pid: u64) {
    let all = ipc.objects().get::<Semaphores>();
    let adjustments: Vec<((u64, i32, u16), i32)> = {
        let mut undo = all.undo.lock();
        let mine: Vec<_> =
            undo.range((pid, i32::MIN, 0)..=(pid, i32::MAX, u16::MAX)).map(|(k, v)| (*k, *v)).collect();
        for (key, _) in &mine {
            undo.remove(key);
        }
        mine
    };
    let mut woken = Vec::new();
    let mut sets = all.sets.lock();
    for ((_, id, number), adjustment) in adjustments {
        if let Some(set) = sets.by_id.get_mut(&id)
            && let Some(semaphore) = set.semaphores.get_mut(usize::from(number))
        {
            semaphore.value = (semaphore.value + adjustment).clamp(0, SEMVMX);
            semaphore.last_pid = pid as u32;
            woken.push(set.waiters.clone());
        }
    }
    drop(sets);
    for waiters in woken {
        waiters.notify();
    }
}

/// Forgets every process's adjustments of `set` (semaphore `number`, or
/// all of them): `SETVAL`, `SETALL` and removal reset them.
fn forget_undo(all: &Semaphores, id: i32, number: Option<u16>) {
    all.undo
        .lock()
        .retain(|(_, set, semaphore), _| *set != id || number.is_some_and(|number| number != *semaphore));
}

/// `struct semid64_ds` of `set`.
fn status(set: &Set) -> [u8; 104] {
    let mut bytes = [0u8; 104];
    bytes[..48].copy_from_slice(&set.permissions.encode(0));
    for (offset, word) in [(48, set.operation_time), (64, set.change_time), (80, set.semaphores.len() as u64)]
    {
        bytes[offset..offset + 8].copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

pub(super) fn semctl(context: Context<'_>, id: u64, number: u64, command: u64, argument: u64) -> Result {
    let command = command & !IPC_64;
    let user = User::new(context.machine);
    let all = semaphores_of(context);
    let mut sets = all.sets.lock();
    if command == IPC_INFO || command == SEM_INFO {
        // struct seminfo: semmap, semmni, semmns, semmnu, semmsl, semopm,
        // semume, semusz, semvmx, semaem.
        let mut words = [
            32000u32,
            SEMMNI.get() as u32,
            SEMMNS.get() as u32,
            SEMMNS.get() as u32,
            SEMMSL.get() as u32,
            SEMOPM.get() as u32,
            500,
            20,
            SEMVMX as u32,
            SEMAEM as u32,
        ];
        if command == SEM_INFO {
            words[7] = sets.by_id.len() as u32;
            words[9] = sets.by_id.values().map(|set| set.semaphores.len() as u32).sum();
        }
        let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        user.write_bytes(argument, &bytes)?;
        return Ok(sets.by_id.keys().next_back().map_or(0, |&id| id as u64));
    }
    if command == SEM_STAT || command == SEM_STAT_ANY {
        let (found, set) = sets.nth(id)?;
        if command == SEM_STAT {
            set.permissions.check(context, ipc::READ)?;
        }
        user.write_bytes(argument, &status(set))?;
        return Ok(found as u64);
    }
    let id = set_id(id)?;
    let set = sets.by_id.get_mut(&id).ok_or(Errno::EINVAL)?;
    match command {
        IPC_SET | IPC_RMID => set.permissions.check_owner(context)?,
        SETVAL | SETALL => set.permissions.check(context, ipc::WRITE)?,
        _ => set.permissions.check(context, ipc::READ)?,
    }
    let semaphore_at = |set: &Set| set.semaphores.get(number as usize).copied().ok_or(Errno::EINVAL);
    match command {
        IPC_STAT => user.write_bytes(argument, &status(set))?,
        IPC_SET => {
            let mut bytes = [0u8; 48];
            user.read_into(argument, &mut bytes)?;
            set.permissions.update_from(&bytes);
            set.change_time = ipc::now_seconds(context);
        }
        IPC_RMID => {
            let key = set.permissions.key;
            let removed = sets.remove(id, key);
            if let Some(removed) = &removed {
                all.in_use.fetch_sub(removed.semaphores.len() as u64, core::sync::atomic::Ordering::Relaxed);
            }
            drop(sets);
            forget_undo(&all, id, None);
            if let Some(removed) = removed {
                removed.waiters.notify();
            }
        }
        GETVAL => return Ok(semaphore_at(set)?.value as u64),
        GETPID => return Ok(u64::from(semaphore_at(set)?.last_pid)),
        GETNCNT => return Ok(u64::from(semaphore_at(set)?.waiting_for_increase)),
        GETZCNT => return Ok(u64::from(semaphore_at(set)?.waiting_for_zero)),
        GETALL => {
            let bytes: Vec<u8> =
                set.semaphores.iter().flat_map(|semaphore| (semaphore.value as u16).to_le_bytes()).collect();
            user.write_bytes(argument, &bytes)?;
        }
        SETVAL => {
            semaphore_at(set)?;
            let value = argument as i32;
            if !(0..=SEMVMX).contains(&value) {
                return Err(Errno::ERANGE.into());
            }
            let semaphore = &mut set.semaphores[number as usize];
            semaphore.value = value;
            semaphore.last_pid = ipc::caller_pid(context);
            set.change_time = ipc::now_seconds(context);
            let waiters = set.waiters.clone();
            drop(sets);
            forget_undo(&all, id, Some(number as u16));
            waiters.notify();
        }
        SETALL => {
            let bytes = user.read_bytes(argument, set.semaphores.len() * 2)?;
            let values: Vec<i32> =
                bytes.chunks_exact(2).map(|pair| i32::from(u16::from_le_bytes([pair[0], pair[1]]))).collect();
            if values.iter().any(|&value| value > SEMVMX) {
                return Err(Errno::ERANGE.into());
            }
            for (semaphore, value) in set.semaphores.iter_mut().zip(values) {
                semaphore.value = value;
                semaphore.last_pid = ipc::caller_pid(context);
            }
            set.change_time = ipc::now_seconds(context);
            let waiters = set.waiters.clone();
            drop(sets);
            forget_undo(&all, id, None);
            waiters.notify();
        }
        _ => return Err(Errno::EINVAL.into()),
    }
    Ok(0)
}

/// `/proc/sysvipc/sem`: one line per set, in Linux's columns.
pub(crate) fn proc_listing(ipc: &crate::namespace::Namespace) -> alloc::string::String {
    use core::fmt::Write;
    let mut text = alloc::string::String::from(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    );
    let all = ipc.objects().get::<Semaphores>();
    for (id, set) in &all.sets.lock().by_id {
        let permissions = &set.permissions;
        let _ = writeln!(
            text,
            "{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}",
            permissions.key,
            id,
            permissions.mode,
            set.semaphores.len(),
            permissions.owner.0,
            permissions.owner.1,
            permissions.creator.0,
            permissions.creator.1,
            set.operation_time,
            set.change_time,
        );
    }
    text
}
