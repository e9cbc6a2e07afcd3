//! Advisory file locks: POSIX record locks (`fcntl` `F_SETLK`), open file
//! description record locks (`F_OFD_SETLK`) and whole-file `flock` locks.
//!
//! One table holds the locks of every file, keyed by the file's identity
//! ([`LockKey`]: its device and inode, so two opens of one file meet). A
//! record lock covers a byte range and is shared (read) or exclusive
//! (write); it belongs to a process (POSIX locks, released when the process
//! closes any descriptor of the file) or to an open file description (OFD
//! locks, released when the description is closed for good). `flock`
//! locks belong to descriptions too, and are separate from record locks,
//! as on Linux. Locks of one owner never conflict with each other: setting
//! one over the owner's own replaces, splits or merges them. Waiting
//! (`F_SETLKW`, `flock` without `LOCK_NB`) blocks on one list for the whole
//! table and checks again at every release; a signal ends it (`EINTR`).
//! A process about to wait for a POSIX lock whose holder waits, directly or
//! through others, for one of its own locks gets `EDEADLK` instead, as on
//! Linux (OFD and `flock` locks are not checked, there as here).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use spin::Mutex;

use super::FsError;
use super::node::Caller;
use super::waiters::WaiterList;

/// A file's identity: its device and inode numbers.
pub type LockKey = (u64, u64);

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A process (POSIX record locks), by process id.
    Process(u64),
    /// An open file description (OFD record locks and `flock`), by its
    /// address while it lives.
    Description(usize),
}

/// How a lock shares its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Read lock: others may hold read locks over the same range.
    Shared,
    /// Write lock: nobody else may lock the range.
    Exclusive,
}

/// A record lock over bytes `start..=end` (`end` is `u64::MAX` for "to the
/// end of the file, however far it grows").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLock {
    /// Who holds it.
    pub owner: Owner,
    /// Shared or exclusive.
    pub kind: LockKind,
    /// First byte.
    pub start: u64,
    /// Last byte.
    pub end: u64,
}

impl RecordLock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    fn conflicts_with(&self, other: &RecordLock) -> bool {
        self.owner != other.owner
            && self.overlaps(other.start, other.end)
            && (self.kind == LockKind::Exclusive || other.kind == LockKind::Exclusive)
    }
}

/// The locks of one file.
#[derive(Debug, Default)]
struct FileLocks {
    records: Vec<RecordLock>,
    /// `flock` locks: the holding description and how.
    whole: Vec<(usize, LockKind)>,
}

impl FileLocks {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.whole.is_empty()
    }

    /// Removes `owner`'s locks over `start..=end`, keeping the parts
    /// outside it.
    fn cut(&mut self, owner: Owner, start: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.records.len() + 1);
        for lock in self.records.drain(..) {
            if lock.owner != owner || !lock.overlaps(start, end) {
                kept.push(lock);
                continue;
            }
            if lock.start < start {
                kept.push(RecordLock { end: start - 1, ..lock });
            }
            if lock.end > end {
                kept.push(RecordLock { start: end + 1, ..lock });
            }
        }
        self.records = kept;
    }

    /// Adds `lock` (its owner's locks over its range already cut), merging
    /// it with the owner's touching locks of the same kind.
    fn insert(&mut self, mut lock: RecordLock) {
        self.records.retain(|other| {
            let touches = other.owner == lock.owner
                && other.kind == lock.kind
                && other.start <= lock.end.saturating_add(1)
                && lock.start <= other.end.saturating_add(1);
            if touches {
                lock.start = lock.start.min(other.start);
                lock.end = lock.end.max(other.end);
            }
            !touches
        });
        self.records.push(lock);
    }
}

/// Every file's locks.
#[derive(Debug, Default)]
pub struct LockTable {
    files: Mutex<BTreeMap<LockKey, FileLocks>>,
    /// The POSIX lock each waiting process waits to set, by process id
    /// (taken after `files`, never before).
    blocked: Mutex<BTreeMap<u64, (LockKey, RecordLock)>>,
    waiters: WaiterList,
}

/// The machine's lock table.
static TABLE: LockTable = LockTable {
    files: Mutex::new(BTreeMap::new()),
    blocked: Mutex::new(BTreeMap::new()),
    waiters: WaiterList::new(),
};

/// How many waiting processes a deadlock search follows (Linux's
/// `MAX_DEADLK_ITERATIONS`).
const DEADLOCK_SEARCH_LIMIT: usize = 10;

/// Whether `wanted`, which conflicts with locks of `key`, would wait in a
/// cycle: a holder of a conflicting lock waits, directly or through other
/// waiting processes, for a lock `wanted`'s process holds.
fn would_deadlock(
    files: &BTreeMap<LockKey, FileLocks>,
    blocked: &BTreeMap<u64, (LockKey, RecordLock)>,
    key: LockKey,
    wanted: &RecordLock,
) -> bool {
    let Owner::Process(me) = wanted.owner else {
        return false;
    };
    let holders = |key: LockKey, lock: &RecordLock| -> Vec<u64> {
        let Some(locks) = files.get(&key) else {
            return Vec::new();
        };
        locks
            .records
            .iter()
            .filter(|other| other.conflicts_with(lock))
            .filter_map(|other| match other.owner {
                Owner::Process(pid) => Some(pid),
                Owner::Description(_) => None,
            })
            .collect()
    };
    let mut frontier = holders(key, wanted);
    let mut visited: Vec<u64> = Vec::new();
    while let Some(holder) = frontier.pop() {
        if holder == me {
            return true;
        }
        if visited.contains(&holder) || visited.len() >= DEADLOCK_SEARCH_LIMIT {
            continue;
        }
        visited.push(holder);
        if let Some((waited_key, waited)) = blocked.get(&holder) {
            frontier.extend(holders(*waited_key, waited));
        }
    }
    false
}

/// The machine's lock table.
pub fn table() -> &'static LockTable {
    &TABLE
}

impl LockTable {
    /// The lock that would keep `wanted` from being set (`F_GETLK`): of
    /// several, the one that starts first, as Linux, which keeps each
    /// owner's locks in order, reports it.
    pub fn conflict(&self, key: LockKey, wanted: &RecordLock) -> Option<RecordLock> {
        let files = self.files.lock();
        files
            .get(&key)?
            .records
            .iter()
            .filter(|lock| lock.conflicts_with(wanted))
            .min_by_key(|lock| lock.start)
            .copied()
    }

    /// Sets `wanted` (or, with `kind` `None`, unlocks its range for its
    /// owner), waiting while another owner's lock conflicts if `wait`.
    pub fn set_record(
        &self,
        caller: &Caller<'_>,
        key: LockKey,
        wanted: RecordLock,
        is_unlock: bool,
        wait: bool,
    ) -> Result<(), FsError> {
        let me = caller.machine.current_thread();
        let result = loop {
            {
                let mut files = self.files.lock();
                let locks = files.entry(key).or_default();
                let is_blocked = !is_unlock && locks.records.iter().any(|lock| lock.conflicts_with(&wanted));
                if !is_blocked {
                    locks.cut(wanted.owner, wanted.start, wanted.end);
                    if !is_unlock {
                        locks.insert(wanted);
                    }
                    if locks.is_empty() {
                        files.remove(&key);
                    }
                    drop(files);
                    self.waiters.remove(&me);
                    self.waiters.notify();
                    break Ok(());
                }
                if locks.is_empty() {
                    files.remove(&key);
                }
                if !wait {
                    break Err(FsError::WouldBlock);
                }
                let mut blocked = self.blocked.lock();
                if would_deadlock(&files, &blocked, key, &wanted) {
                    break Err(FsError::Errno(crate::errno::Errno::EDEADLK));
                }
                if let Owner::Process(pid) = wanted.owner {
                    blocked.insert(pid, (key, wanted));
                }
                self.waiters.add(&me);
            }
            if let Err(error) = self.waiters.block(caller, &me) {
                break Err(error);
            }
        };
        if let Owner::Process(pid) = wanted.owner {
            self.blocked.lock().remove(&pid);
        }
        result
    }

    /// `flock`: takes a whole-file lock for `description` (converting one
    /// it holds), or releases it when `kind` is `None`.
    pub fn set_whole(
        &self,
        caller: &Caller<'_>,
        key: LockKey,
        description: usize,
        kind: Option<LockKind>,
        wait: bool,
    ) -> Result<(), FsError> {
        let me = caller.machine.current_thread();
        let mut has_released = false;
        loop {
            {
                let mut files = self.files.lock();
                let locks = files.entry(key).or_default();
                let Some(kind) = kind else {
                    locks.whole.retain(|&(holder, _)| holder != description);
                    if locks.is_empty() {
                        files.remove(&key);
                    }
                    drop(files);
                    self.waiters.notify();
                    return Ok(());
                };
                // A conversion gives up the old lock first, as Linux does.
                if !has_released {
                    locks.whole.retain(|&(holder, _)| holder != description);
                    has_released = true;
                    self.waiters.notify();
                }
                let is_blocked = locks.whole.iter().any(|&(holder, held)| {
                    holder != description && (held == LockKind::Exclusive || kind == LockKind::Exclusive)
                });
                if !is_blocked {
                    locks.whole.push((description, kind));
                    drop(files);
                    self.waiters.remove(&me);
                    return Ok(());
                }
                if locks.is_empty() {
                    files.remove(&key);
                }
                if !wait {
                    return Err(FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            self.waiters.block(caller, &me)?;
        }
    }

    /// Releases every record lock `owner` holds on the file (a process
    /// closing one of its descriptors of it).
    pub fn release_owner(&self, key: LockKey, owner: Owner) {
        let mut files = self.files.lock();
        let Some(locks) = files.get_mut(&key) else {
            return;
        };
        let before = locks.records.len();
        locks.records.retain(|lock| lock.owner != owner);
        let changed = locks.records.len() != before;
        if locks.is_empty() {
            files.remove(&key);
        }
        drop(files);
        if changed {
            self.waiters.notify();
        }
    }

    /// Releases every record lock `owner` holds on any file (a process
    /// that ended).
    pub fn release_everywhere(&self, owner: Owner) {
        let mut files = self.files.lock();
        let mut changed = false;
        files.retain(|_, locks| {
            let before = locks.records.len();
            locks.records.retain(|lock| lock.owner != owner);
            changed |= locks.records.len() != before;
            !locks.is_empty()
        });
        drop(files);
        if changed {
            self.waiters.notify();
        }
    }

    /// Releases the locks of an open file description closed for good.
    pub fn release_description(&self, key: LockKey, description: usize) {
        let mut files = self.files.lock();
        let Some(locks) = files.get_mut(&key) else {
            return;
        };
        locks.records.retain(|lock| lock.owner != Owner::Description(description));
        locks.whole.retain(|&(holder, _)| holder != description);
        if locks.is_empty() {
            files.remove(&key);
        }
        drop(files);
        self.waiters.notify();
    }
}

#[cfg(test)]
mod tests;
