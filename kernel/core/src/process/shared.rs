//! Parts of a process that `clone` may share with other processes: the
//! memory (`CLONE_VM`), the descriptor table (`CLONE_FILES`), the
//! filesystem context (`CLONE_FS`) and the signal handlers
//! (`CLONE_SIGHAND`).
//!
//! A process holds each part through a [`Shareable`]: a handle to the part
//! that a child may take too (sharing it), and that `unshare` or `execve`
//! replaces with a private copy. Threads of one process use the process's
//! parts, except a descriptor table or filesystem context a thread split
//! off for itself ([`ThreadPart`]: `unshare` in one thread of several, or
//! a thread made without `CLONE_FILES`/`CLONE_FS`), as Linux keeps them
//! per task.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};

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

    /// Makes `part` the process's; returns the handle it held (to drop
    /// once no lock is held).
    pub fn set(&self, part: Arc<Mutex<T>>) -> Arc<Mutex<T>> {
        core::mem::replace(&mut *self.current.lock(), part)
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

/// A descriptor table or filesystem context one thread holds instead of
/// its process's: set when the thread split it off alone, kept until the
/// thread ends or calls `execve` (which makes it the process's).
#[derive(Debug)]
pub struct ThreadPart<T> {
    /// Whether `part` holds one (read without the lock on every call).
    is_set: AtomicBool,
    part: Mutex<Option<Arc<Mutex<T>>>>,
}

impl<T: Clone> Default for ThreadPart<T> {
    fn default() -> Self {
        ThreadPart { is_set: AtomicBool::new(false), part: Mutex::new(None) }
    }
}

impl<T: Clone> ThreadPart<T> {
    /// The thread's own part, if it has one.
    pub fn get(&self) -> Option<Arc<Mutex<T>>> {
        if !self.is_set.load(Ordering::Acquire) {
            return None;
        }
        self.part.lock().clone()
    }

    /// Makes `part` the thread's own.
    pub fn set(&self, part: Arc<Mutex<T>>) {
        let old = self.part.lock().replace(part);
        self.is_set.store(true, Ordering::Release);
        drop(old);
    }

    /// Sets up a new thread's part from `part`, the one its creator uses:
    /// shared (`is_shared`) or a copy. A new thread that shares its
    /// creator's process part has none of its own.
    pub fn inherit(&self, part: Part<'_, T>, is_shared: bool) {
        match part {
            part if !is_shared => self.set(Arc::new(Mutex::new(part.copy()))),
            Part::Thread(own) => self.set(own),
            Part::Process(_) => {}
        }
    }

    /// Takes the thread's own part away (it ends, or the part becomes the
    /// process's).
    pub fn take(&self) -> Option<Arc<Mutex<T>>> {
        let part = self.part.lock().take();
        self.is_set.store(false, Ordering::Release);
        part
    }

    /// The part a thread uses: its own, or else its process's.
    pub fn or<'a>(&self, process: &'a Shareable<T>) -> Part<'a, T> {
        match self.get() {
            Some(own) => Part::Thread(own),
            None => Part::Process(process),
        }
    }

    /// `unshare` by the thread: it gets a copy of its own unless nobody
    /// else uses what it uses. `is_alone` says whether the process has no
    /// other thread.
    pub fn unshare(&self, process: &Shareable<T>, is_alone: bool) {
        let mut own = self.part.lock();
        match own.as_mut() {
            Some(part) => {
                if Arc::strong_count(part) > 1 {
                    let copy = part.lock().clone();
                    *part = Arc::new(Mutex::new(copy));
                }
            }
            None if is_alone => {
                drop(own);
                process.unshare();
            }
            None => {
                *own = Some(Arc::new(Mutex::new(process.copy())));
                self.is_set.store(true, Ordering::Release);
            }
        }
    }
}

/// The descriptor table or filesystem context a thread uses.
#[derive(Debug)]
pub enum Part<'a, T> {
    /// The process's.
    Process(&'a Shareable<T>),
    /// The thread's own.
    Thread(Arc<Mutex<T>>),
}

impl<T: Clone> Part<'_, T> {
    /// Runs `action` on the part, locked.
    pub fn with<R>(&self, action: impl FnOnce(&mut T) -> R) -> R {
        match self {
            Part::Process(part) => part.with(action),
            Part::Thread(part) => action(&mut part.lock()),
        }
    }

    /// The part itself, for a child that is to share it.
    pub fn share(&self) -> Arc<Mutex<T>> {
        match self {
            Part::Process(part) => part.share(),
            Part::Thread(part) => part.clone(),
        }
    }

    /// A copy of the part, for a child that is to have its own.
    pub fn copy(&self) -> T {
        self.with(|part| part.clone())
    }

    /// The part, shared or copied for a child as `is_shared` says.
    pub fn for_child(&self, is_shared: bool) -> Shareable<T> {
        if is_shared { Shareable::sharing(self.share()) } else { Shareable::new(self.copy()) }
    }
}

impl Part<'_, FsContext> {
    /// The working directory.
    pub fn working_directory(&self) -> Location {
        self.with(|fs| fs.working_directory.clone())
    }

    /// The root directory `chroot` set (`None`: the machine's root).
    pub fn root_directory(&self) -> Option<Location> {
        self.with(|fs| fs.root_directory.clone())
    }

    /// The file mode creation mask.
    pub fn umask(&self) -> u32 {
        self.with(|fs| fs.umask)
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
    fn a_thread_splits_off_alone_and_its_copy_is_shared_with_nobody() {
        let process = Shareable::new(1);
        let thread = ThreadPart::default();
        assert_eq!(thread.or(&process).copy(), 1);
        thread.unshare(&process, false);
        thread.or(&process).with(|value| *value = 2);
        assert_eq!((process.copy(), thread.or(&process).copy()), (1, 2));
        // A second split finds nobody else using the thread's copy.
        let own = thread.get().map(|part| Arc::as_ptr(&part));
        thread.unshare(&process, false);
        assert_eq!(thread.get().map(|part| Arc::as_ptr(&part)), own);
        // Given up, the thread uses the process's part again.
        assert!(thread.take().is_some());
        assert_eq!(thread.or(&process).copy(), 1);
    }

    #[test]
    fn the_one_thread_splits_for_its_process() {
        let process = Shareable::new(1);
        let child = for_child(&process, true);
        let thread = ThreadPart::default();
        thread.unshare(&process, true);
        assert!(thread.get().is_none());
        assert!(!process.is_shared() && !child.is_shared());
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
