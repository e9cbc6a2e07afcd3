//! Parts of a process that `clone` may share with other processes: the
//! memory (`CLONE_VM`), the descriptor table (`CLONE_FILES`), the
//! filesystem context (`CLONE_FS`) and the signal handlers
//! (`CLONE_SIGHAND`).
//!
//! A process holds each part through a [`Shareable`]: a handle to the part
//! that a child may take too (sharing it), and that `unshare` or `execve`
//! replaces with a private copy. Threads of one process always share the
//! process's parts.

use alloc::sync::Arc;

use spin::Mutex;

use crate::futex::FutexTable;
use crate::memory::AddressSpace;
use crate::process::{SIGNAL_COUNT, SignalAction};
use crate::vfs::Location;

/// A part of a process's state that other processes may share.
///
/// Locks in order: the handle, then the part. Only the process itself
/// replaces its handle (`unshare`, `execve`, its end), so the handle's lock
/// is never contended but by `/proc` readers.
#[derive(Debug)]
pub struct Shareable<T> {
    current: Mutex<Arc<Mutex<T>>>,
}

impl<T: Clone> Shareable<T> {
    /// A part of the process's own.
    pub fn new(value: T) -> Self {
        Self::sharing(Arc::new(Mutex::new(value)))
    }

    /// The part `part`, which other processes hold too.
    pub fn sharing(part: Arc<Mutex<T>>) -> Self {
        Shareable { current: Mutex::new(part) }
    }

    /// Runs `action` on the part, locked.
    pub fn with<R>(&self, action: impl FnOnce(&mut T) -> R) -> R {
        let handle = self.current.lock();
        let mut part = handle.lock();
        action(&mut part)
    }

    /// The part itself, for a child that is to share it.
    pub fn share(&self) -> Arc<Mutex<T>> {
        self.current.lock().clone()
    }

    /// A copy of the part, for a child that is to have its own.
    pub fn copy(&self) -> T {
        self.with(|part| part.clone())
    }

    /// Whether another process holds the part too.
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.current.lock()) > 1
    }

    /// Gives the process a copy of its own if another process holds the
    /// part too (`unshare`); returns whether it did.
    pub fn unshare(&self) -> bool {
        let mut handle = self.current.lock();
        if Arc::strong_count(&handle) == 1 {
            return false;
        }
        let copy = handle.lock().clone();
        *handle = Arc::new(Mutex::new(copy));
        true
    }

    /// Makes `value` the process's part; returns the handle it held, for
    /// the caller to drop once no lock is held (closing files may wake
    /// others).
    pub fn replace(&self, value: T) -> Arc<Mutex<T>> {
        core::mem::replace(&mut *self.current.lock(), Arc::new(Mutex::new(value)))
    }
}

/// A process's place in the filesystem tree (Linux's `fs_struct`), which
/// `clone(CLONE_FS)` shares: `chdir`, `chroot` and `umask` by one process
/// are seen by the others.
#[derive(Debug, Clone)]
pub struct FsContext {
    /// The working directory.
    pub working_directory: Location,
    /// The root directory `chroot` set (`None`: the machine's root).
    pub root_directory: Option<Location>,
    /// The file mode creation mask.
    pub umask: u32,
}

/// A process's signal dispositions, indexed by signal number minus one
/// (Linux's `sighand_struct`), which `clone(CLONE_SIGHAND)` shares.
pub type SignalHandlers = [SignalAction; SIGNAL_COUNT];

/// A process's memory (Linux's `mm_struct`): the address space and the
/// futexes keyed by its addresses, which `clone(CLONE_VM)` shares. Its
/// pages are released when the last process holding it lets go (it ends
/// or calls `execve`).
pub struct Memory {
    /// The application half of the address space.
    pub space: Mutex<AddressSpace>,
    /// Threads waiting on private futexes (keyed by address).
    pub futexes: FutexTable,
}

impl Memory {
    /// Memory made of `space`.
    pub fn new(space: AddressSpace) -> Arc<Self> {
        Arc::new(Memory { space: Mutex::new(space), futexes: FutexTable::new() })
    }
}

impl core::fmt::Debug for Memory {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Memory").finish_non_exhaustive()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        self.space.get_mut().release_all();
    }
}

/// Which parts a new process shares with its parent (the rest it copies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sharing {
    /// `CLONE_FILES`: the descriptor table.
    pub descriptors: bool,
    /// `CLONE_FS`: working directory, root and umask.
    pub fs: bool,
    /// `CLONE_SIGHAND`: the signal dispositions.
    pub signal_handlers: bool,
}

/// A part `parent` holds, shared or copied for a child as `is_shared`
/// says.
pub(super) fn for_child<T: Clone>(parent: &Shareable<T>, is_shared: bool) -> Shareable<T> {
    if is_shared { Shareable::sharing(parent.share()) } else { Shareable::new(parent.copy()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_part_is_seen_by_both_until_one_unshares() {
        let parent = Shareable::new(1);
        let child = for_child(&parent, true);
        assert!(parent.is_shared() && child.is_shared());
        child.with(|value| *value = 2);
        assert_eq!(parent.copy(), 2);
        assert!(child.unshare());
        child.with(|value| *value = 3);
        assert_eq!((parent.copy(), child.copy()), (2, 3));
        assert!(!parent.is_shared());
        assert!(!parent.unshare(), "nothing to split");
    }

    #[test]
    fn a_copied_part_is_private_from_the_start() {
        let parent = Shareable::new(1);
        let child = for_child(&parent, false);
        child.with(|value| *value = 5);
        assert_eq!((parent.copy(), child.copy()), (1, 5));
        assert!(!child.is_shared());
    }

    #[test]
    fn replacing_hands_back_the_old_part() {
        let parent = Shareable::new(1);
        let child = for_child(&parent, true);
        let old = child.replace(9);
        assert_eq!(*old.lock(), 1);
        drop(old);
        assert_eq!((parent.copy(), child.copy()), (1, 9));
        assert!(!parent.is_shared());
    }
}
