//! dnotify: `fcntl(F_NOTIFY)` asks for a signal when a directory changes.
//!
//! The older interface inotify replaced, still used to watch a directory
//! without a second descriptor. A watch belongs to an open directory
//! description and names the kinds of change it wants (`DN_*`); the
//! changes come from the same reports inotify's watches see ([`observe`]),
//! and a matching one tells the watch's [`ChangeListener`], which signals
//! the description's owner. A watch without `DN_MULTISHOT` ends after its
//! first signal; one whose description is gone ends at the next change.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use super::mask;
use crate::vfs::OpenFile;
use crate::vfs::locks::LockKey;
use crate::vfs::waiters::ChangeListener;

/// The kinds of change a watch asks for (`<fcntl.h>`).
pub mod kind {
    /// A file in the directory was read.
    pub const DN_ACCESS: u32 = 0x1;
    /// A file in the directory was written or truncated.
    pub const DN_MODIFY: u32 = 0x2;
    /// An entry was made.
    pub const DN_CREATE: u32 = 0x4;
    /// An entry was removed.
    pub const DN_DELETE: u32 = 0x8;
    /// An entry was renamed.
    pub const DN_RENAME: u32 = 0x10;
    /// Attributes of the directory or a file in it changed.
    pub const DN_ATTRIB: u32 = 0x20;
    /// Keep watching after the first signal.
    pub const DN_MULTISHOT: u32 = 0x8000_0000;
    /// Every kind of change.
    pub const ALL: u32 = DN_ACCESS | DN_MODIFY | DN_CREATE | DN_DELETE | DN_RENAME | DN_ATTRIB;
}

/// One description's watch on a directory.
struct Watch {
    /// The description that asked; compared by address, and the watch
    /// ends once it is gone.
    file: Weak<OpenFile>,
    /// The `DN_*` kinds, with `DN_MULTISHOT`.
    kinds: u32,
    listener: Arc<dyn ChangeListener>,
}

/// Watched directories and their watches.
static WATCHES: Mutex<BTreeMap<LockKey, Vec<Watch>>> = Mutex::new(BTreeMap::new());
/// How many directories are watched: nothing is looked up while none is.
static WATCHED_DIRECTORIES: AtomicUsize = AtomicUsize::new(0);

/// Whether any directory is watched.
pub fn is_watching() -> bool {
    WATCHED_DIRECTORIES.load(Ordering::Relaxed) != 0
}

fn update_count(watches: &BTreeMap<LockKey, Vec<Watch>>) {
    WATCHED_DIRECTORIES.store(watches.len(), Ordering::Relaxed);
}

/// `F_NOTIFY` with `kinds` from `file`, open on directory `key`: adds the
/// kinds to the description's watch (a new watch signals through
/// `listener`), or ends the watch when no kind is asked for.
pub fn watch(key: LockKey, file: &Arc<OpenFile>, kinds: u32, listener: Arc<dyn ChangeListener>) {
    let mut watches = WATCHES.lock();
    let list = watches.entry(key).or_default();
    let is_same = |watch: &Watch| core::ptr::eq(watch.file.as_ptr(), Arc::as_ptr(file));
    if kinds & kind::ALL == 0 {
        list.retain(|watch| !is_same(watch));
    } else if let Some(existing) = list.iter_mut().find(|watch| is_same(watch)) {
        existing.kinds |= kinds;
    } else {
        list.push(Watch { file: Arc::downgrade(file), kinds, listener });
    }
    if list.is_empty() {
        watches.remove(&key);
    }
    update_count(&watches);
}

/// The `DN_*` kinds that inotify `event` bits stand for.
fn kinds_of(event: u32) -> u32 {
    let pairs = [
        (mask::ACCESS, kind::DN_ACCESS),
        (mask::MODIFY, kind::DN_MODIFY),
        (mask::CREATE, kind::DN_CREATE),
        (mask::DELETE, kind::DN_DELETE),
        (mask::MOVED_FROM | mask::MOVED_TO, kind::DN_RENAME),
        (mask::ATTRIB, kind::DN_ATTRIB),
    ];
    pairs.iter().filter(|(bits, _)| event & bits != 0).fold(0, |kinds, (_, kind)| kinds | kind)
}

/// A change (inotify `event` bits) was reported on file `key`: the
/// watches on it that want such a change signal their owners.
pub fn observe(key: LockKey, event: u32) {
    if !is_watching() {
        return;
    }
    let kinds = kinds_of(event);
    if kinds == 0 {
        return;
    }
    let mut told = Vec::new();
    {
        let mut watches = WATCHES.lock();
        let Some(list) = watches.get_mut(&key) else {
            return;
        };
        list.retain(|watch| {
            if watch.file.strong_count() == 0 {
                return false;
            }
            if watch.kinds & kinds == 0 {
                return true;
            }
            told.push(watch.listener.clone());
            watch.kinds & kind::DN_MULTISHOT != 0
        });
        if list.is_empty() {
            watches.remove(&key);
        }
        update_count(&watches);
    }
    // Listeners run without the registry's lock: signalling may wake
    // threads that change files in turn.
    for listener in told {
        listener.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::FileObject;
    use crate::vfs::special::SpecialFile;

    /// Counts the changes it is told of.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl ChangeListener for Counter {
        fn changed(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn directory_file() -> Arc<OpenFile> {
        let special: Arc<dyn SpecialFile> = super::super::Inotify::new();
        OpenFile::new(FileObject::Special(special), 0)
    }

    #[test]
    fn a_one_shot_watch_tells_once_and_a_multishot_one_every_time() {
        let key = (0xd1, 1);
        let file = directory_file();
        let counter = Arc::new(Counter::default());
        watch(key, &file, kind::DN_CREATE, counter.clone());
        observe(key, mask::DELETE);
        assert_eq!(counter.0.load(Ordering::Relaxed), 0, "not a change it asked for");
        observe(key, mask::CREATE);
        observe(key, mask::CREATE);
        assert_eq!(counter.0.load(Ordering::Relaxed), 1);
        watch(key, &file, kind::DN_RENAME | kind::DN_MULTISHOT, counter.clone());
        observe(key, mask::MOVED_FROM);
        observe(key, mask::MOVED_TO);
        assert_eq!(counter.0.load(Ordering::Relaxed), 3);
        watch(key, &file, kind::DN_MULTISHOT, counter.clone());
        observe(key, mask::MOVED_TO);
        assert_eq!(counter.0.load(Ordering::Relaxed), 3, "no kind ends the watch");
    }

    #[test]
    fn a_watch_ends_with_its_description() {
        let key = (0xd1, 2);
        let file = directory_file();
        let counter = Arc::new(Counter::default());
        watch(key, &file, kind::ALL | kind::DN_MULTISHOT, counter.clone());
        drop(file);
        observe(key, mask::ATTRIB);
        assert_eq!(counter.0.load(Ordering::Relaxed), 0);
        assert!(WATCHES.lock().get(&key).is_none());
    }
}
