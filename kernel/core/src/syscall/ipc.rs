//! What System V message queues and semaphore sets share: keys and ids,
//! the permission block `struct ipc64_perm`, and waiting for a change.
//!
//! Objects are kept globally by id (as Linux keeps them per IPC
//! namespace, of which there is one), so that every process sees them.

use alloc::collections::BTreeMap;

use super::{Context, Failure};
use crate::errno::Errno;
use crate::machine::Wakeup;
use crate::vfs::waiters::WaiterList;

/// `IPC_*` flags and commands (Linux `include/uapi/linux/ipc.h`).
pub(super) const IPC_PRIVATE: i32 = 0;
pub(super) const IPC_CREAT: u64 = 0o1000;
pub(super) const IPC_EXCL: u64 = 0o2000;
pub(super) const IPC_NOWAIT: u64 = 0o4000;
pub(super) const IPC_RMID: u64 = 0;
pub(super) const IPC_SET: u64 = 1;
pub(super) const IPC_STAT: u64 = 2;
pub(super) const IPC_INFO: u64 = 3;
/// `IPC_64`, which C libraries or into commands.
pub(super) const IPC_64: u64 = 0x100;

/// Permission to read and to write, as [`Permissions::check`] takes them.
pub(super) const READ: u32 = 0o4;
pub(super) const WRITE: u32 = 0o2;
/// `CAP_IPC_OWNER`.
const CAP_IPC_OWNER: u32 = 15;

/// Who owns an object and may use it (`struct ipc64_perm`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Permissions {
    pub key: i32,
    pub owner: (u32, u32),
    pub creator: (u32, u32),
    pub mode: u32,
}

impl Permissions {
    /// An object made now by the caller with the mode in `flags`.
    pub fn new(context: Context<'_>, key: i32, flags: u64) -> Self {
        let credentials = &context.process.state.lock().credentials;
        let id = (credentials.effective_user, credentials.effective_group);
        Permissions { key, owner: id, creator: id, mode: (flags & 0o777) as u32 }
    }

    /// The 48 bytes of `struct ipc64_perm` (the mode is a 16-bit field
    /// followed by padding).
    pub fn encode(&self, extra_mode: u32) -> [u8; 48] {
        let mut bytes = [0u8; 48];
        let words = [
            self.key as u32,
            self.owner.0,
            self.owner.1,
            self.creator.0,
            self.creator.1,
            self.mode | extra_mode,
        ];
        for (index, word) in words.iter().enumerate() {
            bytes[index * 4..index * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// Whether the caller may read (`READ`) or write (`WRITE`) the object,
    /// by its permission bits for the owner, the group or others, as
    /// Linux's `ipcperms` decides; `EACCES` if not (`CAP_IPC_OWNER`
    /// overrides).
    pub fn check(&self, context: Context<'_>, requested: u32) -> core::result::Result<(), Errno> {
        let credentials = &context.process.state.lock().credentials;
        let user = credentials.effective_user;
        let granted = if user == self.owner.0 || user == self.creator.0 {
            self.mode >> 6
        } else if credentials.is_in_group(self.owner.1) || credentials.is_in_group(self.creator.1) {
            self.mode >> 3
        } else {
            self.mode
        };
        if requested & !granted & 0o7 != 0 && !credentials.has_capability(CAP_IPC_OWNER) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    /// Whether the caller may change or remove the object: its owner, its
    /// creator, or `CAP_SYS_ADMIN`; `EPERM` if not.
    pub fn check_owner(&self, context: Context<'_>) -> core::result::Result<(), Errno> {
        let credentials = &context.process.state.lock().credentials;
        let user = credentials.effective_user;
        if user == self.owner.0
            || user == self.creator.0
            || credentials.has_capability(crate::credentials::capability::SYS_ADMIN)
        {
            return Ok(());
        }
        Err(Errno::EPERM)
    }

    /// Takes the owner and the permission bits from an `ipc64_perm` the
    /// application wrote (`IPC_SET`).
    pub fn update_from(&mut self, bytes: &[u8]) {
        let word = |index: usize| {
            bytes
                .get(index * 4..index * 4 + 4)
                .map_or(0, |word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
        };
        self.owner = (word(1), word(2));
        self.mode = word(5) & 0o777;
    }
}

/// A table of objects of one kind, by id, with the ids of those made
/// with a key (not `IPC_PRIVATE`) by key, so that finding a key does not
/// look at every object.
pub(super) struct Table<T> {
    pub by_id: BTreeMap<i32, T>,
    by_key: BTreeMap<i32, i32>,
    pub next_id: i32,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Table<T> {
    pub const fn new() -> Self {
        Table { by_id: BTreeMap::new(), by_key: BTreeMap::new(), next_id: 0 }
    }

    /// Adds `object`, made with `key`, as `id`.
    pub fn insert(&mut self, id: i32, key: i32, object: T) {
        if key != IPC_PRIVATE {
            self.by_key.insert(key, id);
        }
        self.by_id.insert(id, object);
    }

    /// Takes out object `id`, made with `key`.
    pub fn remove(&mut self, id: i32, key: i32) -> Option<T> {
        if self.by_key.get(&key) == Some(&id) {
            self.by_key.remove(&key);
        }
        self.by_id.remove(&id)
    }

    /// A new id.
    pub fn allocate_id(&mut self) -> core::result::Result<i32, Errno> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).ok_or(Errno::ENOSPC)?;
        Ok(id)
    }

    /// The object in slot `index` (`MSG_STAT`, `SEM_STAT`, `SHM_STAT`):
    /// rosv's ids are their own slots, so the index is the id, and the
    /// highest id `IPC_INFO` reports bounds the slots a program walks.
    pub fn nth(&self, index: u64) -> core::result::Result<(i32, &T), Errno> {
        let id = i32::try_from(index).map_err(|_| Errno::EINVAL)?;
        self.by_id.get(&id).map(|object| (id, object)).ok_or(Errno::EINVAL)
    }

    /// Stops finding object `id` by `key` (a removed object that lives on
    /// until its last user goes).
    pub fn forget_key(&mut self, id: i32, key: i32) {
        if self.by_key.get(&key) == Some(&id) {
            self.by_key.remove(&key);
        }
    }
}

/// How `msgget` / `semget` find an object: `Ok(Some(id))` for an existing
/// one with `key` (checked by `fits`), `Ok(None)` if one is to be made.
pub(super) fn look_up<T>(
    context: Context<'_>,
    table: &Table<T>,
    key: i32,
    flags: u64,
    permissions_of: impl Fn(&T) -> &Permissions,
    fits: impl Fn(&T) -> core::result::Result<(), Errno>,
) -> core::result::Result<Option<i32>, Errno> {
    if key == IPC_PRIVATE {
        return Ok(None);
    }
    let found = table.by_key.get(&key).and_then(|&id| Some((id, table.by_id.get(&id)?)));
    match found {
        Some((id, object)) => {
            if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            // As Linux: the object's own checks (size, count) first, then
            // the permissions asked for, in any of the three classes.
            fits(object)?;
            let asked = (flags & 0o777) as u32;
            permissions_of(object).check(context, (asked >> 6 | asked >> 3 | asked) & 0o7)?;
            Ok(Some(id))
        }
        None if flags & IPC_CREAT == 0 => Err(Errno::ENOENT),
        None => Ok(None),
    }
}

/// Why [`wait`] stopped waiting.
pub(super) enum Interruption {
    /// A signal is to be handled.
    Signal,
    /// The deadline passed.
    TimedOut,
}

/// Waits for `attempt` to succeed (`Some`): tries it, and while it fails,
/// sleeps until `waiters` change, a signal comes or `deadline_ns` (on the
/// monotonic clock) passes.
pub(super) fn wait<T>(
    context: Context<'_>,
    waiters: &WaiterList,
    deadline_ns: Option<u64>,
    mut attempt: impl FnMut() -> core::result::Result<Option<T>, Errno>,
) -> core::result::Result<core::result::Result<T, Interruption>, Errno> {
    let me = context.machine.current_thread();
    loop {
        waiters.add(&me);
        let outcome = attempt();
        if !matches!(outcome, Ok(None)) {
            waiters.remove(&me);
        }
        if let Some(value) = outcome? {
            return Ok(Ok(value));
        }
        if context.thread.has_deliverable_signal() {
            waiters.remove(&me);
            return Ok(Err(Interruption::Signal));
        }
        if deadline_ns.is_some_and(|deadline| context.machine.monotonic_ns() >= deadline) {
            waiters.remove(&me);
            return Ok(Err(Interruption::TimedOut));
        }
        if context.machine.block(deadline_ns) == Wakeup::Stop {
            waiters.remove(&me);
            return Ok(Err(Interruption::Signal));
        }
    }
}

/// The seconds of the wall clock (the times objects record).
pub(super) fn now_seconds(context: Context<'_>) -> u64 {
    context.machine.realtime_ns() / 1_000_000_000
}

/// The caller's process id, as objects record it.
pub(super) fn caller_pid(context: Context<'_>) -> u32 {
    context.process.pid as u32
}

impl From<Interruption> for Failure {
    fn from(interruption: Interruption) -> Self {
        match interruption {
            Interruption::Signal => Failure::RestartUnlessHandled,
            Interruption::TimedOut => Failure::Error(Errno::EAGAIN),
        }
    }
}
