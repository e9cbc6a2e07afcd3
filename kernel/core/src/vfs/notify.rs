//! inotify: watches on files and directories, and the events that changes
//! made inside the machine queue for them.
//!
//! One registry maps each watched file (its [`LockKey`]: device and inode)
//! to the watches on it: an instance and a watch descriptor. The VFS
//! reports every change to [`notify`] with the file it concerns and, for a
//! change to a directory's entry, the entry's name; a directory's watches
//! also see the events of the files in it, with their names, as Linux's
//! do. An instance is a [`SpecialFile`]: `read` gives `struct
//! inotify_event` records, `poll` and epoll see it readable while events
//! wait. The same reports reach dnotify's directory watches
//! ([`directory`]). Nothing is looked up while no watch exists.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use spin::Mutex;

use super::FsError;
use super::locks::LockKey;
use super::node::Caller;
use super::special::SpecialFile;
use super::waiters::{WaiterList, events};

/// Event and watch bits (`<sys/inotify.h>`).
pub mod mask {
    /// A file was read.
    pub const ACCESS: u32 = 0x1;
    /// A file was written or truncated.
    pub const MODIFY: u32 = 0x2;
    /// Metadata changed (mode, owner, times, links, attributes).
    pub const ATTRIB: u32 = 0x4;
    /// A description open for writing was closed.
    pub const CLOSE_WRITE: u32 = 0x8;
    /// A read-only description was closed.
    pub const CLOSE_NOWRITE: u32 = 0x10;
    /// A file was opened.
    pub const OPEN: u32 = 0x20;
    /// An entry was renamed away from a watched directory.
    pub const MOVED_FROM: u32 = 0x40;
    /// An entry was renamed into a watched directory.
    pub const MOVED_TO: u32 = 0x80;
    /// An entry was made in a watched directory.
    pub const CREATE: u32 = 0x100;
    /// An entry was removed from a watched directory.
    pub const DELETE: u32 = 0x200;
    /// The watched file itself is gone.
    pub const DELETE_SELF: u32 = 0x400;
    /// The watched file itself was renamed.
    pub const MOVE_SELF: u32 = 0x800;
    /// Events were lost: the queue was full.
    pub const Q_OVERFLOW: u32 = 0x4000;
    /// The watch ended.
    pub const IGNORED: u32 = 0x8000;
    /// Watch only a directory.
    pub const ONLYDIR: u32 = 0x0100_0000;
    /// Do not follow a final symlink.
    pub const DONT_FOLLOW: u32 = 0x0200_0000;
    /// No events for unlinked children.
    pub const EXCL_UNLINK: u32 = 0x0400_0000;
    /// Only make a new watch (`EEXIST` for a watched file).
    pub const MASK_CREATE: u32 = 0x1000_0000;
    /// Add to an existing watch's events.
    pub const MASK_ADD: u32 = 0x2000_0000;
    /// The event's subject is a directory.
    pub const ISDIR: u32 = 0x4000_0000;
    /// End the watch after one event.
    pub const ONESHOT: u32 = 0x8000_0000;
    /// Every event a watch can ask for.
    pub const ALL_EVENTS: u32 = 0xfff;
}

/// Events an instance queues at most before it reports an overflow
/// (`/proc/sys/fs/inotify/max_queued_events`).
pub const QUEUE_MAX: usize = 16384;
/// Size of `struct inotify_event` without its name.
const EVENT_HEADER: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    watch: i32,
    mask: u32,
    cookie: u32,
    name: Option<String>,
}

impl Event {
    /// The record's size: the header and the name with its NUL, padded to
    /// a multiple of the header's size.
    fn size(&self) -> usize {
        EVENT_HEADER + self.name.as_ref().map_or(0, |name| (name.len() + 1).next_multiple_of(EVENT_HEADER))
    }
}

#[derive(Debug, Default)]
struct InstanceState {
    queue: VecDeque<Event>,
    /// Watch descriptor to the file and the mask.
    watches: BTreeMap<i32, (LockKey, u32)>,
    next_watch: i32,
}

/// What an instance's watches refer to: its queue and its watches.
#[derive(Debug, Default)]
struct Core {
    state: Mutex<InstanceState>,
    waiters: WaiterList,
}

/// An inotify instance.
#[derive(Debug)]
pub struct Inotify {
    core: Arc<Core>,
}

/// The watches on each watched file: instance and watch descriptor.
type Registry = BTreeMap<LockKey, Vec<(Weak<Core>, i32)>>;

/// Watched files and their watches; the number of watched files.
static REGISTRY: Mutex<Registry> = Mutex::new(BTreeMap::new());
static WATCHED_FILES: AtomicUsize = AtomicUsize::new(0);
/// The next cookie joining a rename's two events.
static NEXT_COOKIE: AtomicU32 = AtomicU32::new(1);

/// A new cookie for a rename.
pub fn cookie() -> u32 {
    NEXT_COOKIE.fetch_add(1, Ordering::Relaxed)
}

/// Whether any watch exists, inotify's or dnotify's (so changes need not
/// be reported).
pub fn is_watching() -> bool {
    WATCHED_FILES.load(Ordering::Relaxed) != 0 || directory::is_watching()
}

fn update_count(registry: &Registry) {
    WATCHED_FILES.store(registry.len(), Ordering::Relaxed);
}

impl Inotify {
    /// A new instance without watches.
    pub fn new() -> Arc<Inotify> {
        let core = Core {
            state: Mutex::new(InstanceState { next_watch: 1, ..InstanceState::default() }),
            waiters: WaiterList::new(),
        };
        Arc::new(Inotify { core: Arc::new(core) })
    }

    /// `inotify_add_watch`: watches `key` for `requested` (events and
    /// flags); returns the watch descriptor (the same one again for a
    /// file already watched).
    pub fn add_watch(&self, key: LockKey, requested: u32) -> Result<i32, FsError> {
        self.core.add_watch(key, requested)
    }

    /// `inotify_rm_watch`: ends watch `watch`, which queues `IN_IGNORED`.
    pub fn remove_watch(&self, watch: i32) -> Result<(), FsError> {
        self.core.remove_watch(watch)
    }

    /// Bytes a read would return at once (`FIONREAD`).
    pub fn available_bytes(&self) -> usize {
        self.core.state.lock().queue.iter().map(Event::size).sum()
    }
}

impl Core {
    /// Queues `event`, merging it with an identical last one as Linux does.
    fn queue(&self, state: &mut InstanceState, event: Event) {
        if state.queue.back() == Some(&event) {
            return;
        }
        if state.queue.len() >= QUEUE_MAX {
            let overflow = Event { watch: -1, mask: mask::Q_OVERFLOW, cookie: 0, name: None };
            if state.queue.back() != Some(&overflow) {
                state.queue.push_back(overflow);
            }
            return;
        }
        state.queue.push_back(event);
        self.waiters.notify();
    }

    fn add_watch(self: &Arc<Self>, key: LockKey, requested: u32) -> Result<i32, FsError> {
        if requested & mask::ALL_EVENTS == 0
            || requested & (mask::MASK_ADD | mask::MASK_CREATE) == mask::MASK_ADD | mask::MASK_CREATE
        {
            return Err(FsError::InvalidArgument);
        }
        let kept = requested & (mask::ALL_EVENTS | mask::ONESHOT | mask::EXCL_UNLINK);
        let mut registry = REGISTRY.lock();
        let mut state = self.state.lock();
        let existing =
            state.watches.iter().find(|(_, (watched, _))| *watched == key).map(|(&watch, _)| watch);
        if let Some(watch) = existing {
            if requested & mask::MASK_CREATE != 0 {
                return Err(FsError::Exists);
            }
            if let Some((_, old)) = state.watches.get_mut(&watch) {
                *old = if requested & mask::MASK_ADD != 0 { *old | kept } else { kept };
            }
            return Ok(watch);
        }
        let watch = state.next_watch;
        state.next_watch = state.next_watch.checked_add(1).ok_or(FsError::NoSpace)?;
        state.watches.insert(watch, (key, kept));
        registry.entry(key).or_default().push((Arc::downgrade(self), watch));
        update_count(&registry);
        Ok(watch)
    }

    fn remove_watch(self: &Arc<Self>, watch: i32) -> Result<(), FsError> {
        let mut registry = REGISTRY.lock();
        let mut state = self.state.lock();
        let (key, _) = state.watches.remove(&watch).ok_or(FsError::InvalidArgument)?;
        unregister(&mut registry, key, self, watch);
        self.queue(&mut state, Event { watch, mask: mask::IGNORED, cookie: 0, name: None });
        Ok(())
    }
}

/// Removes watch `watch` of `instance` on `key` from the registry.
fn unregister(registry: &mut Registry, key: LockKey, instance: &Core, watch: i32) {
    if let Some(watches) = registry.get_mut(&key) {
        watches.retain(|(other, number)| {
            !(*number == watch && core::ptr::eq(other.as_ptr(), instance)) && other.strong_count() > 0
        });
        if watches.is_empty() {
            registry.remove(&key);
        }
    }
    update_count(registry);
}

/// Reports `event` (event bits, with `ISDIR` for a directory) on file
/// `key`, with the entry's `name` when the file is a directory and the
/// event concerns one of its entries; `cookie` joins a rename's events.
pub fn notify(key: LockKey, event: u32, name: Option<&str>, cookie: u32) {
    if !is_watching() {
        return;
    }
    directory::observe(key, event);
    // Instances are dropped only after the registry's lock is released
    // (dropping the last one takes it).
    let mut instances = Vec::new();
    let mut registry = REGISTRY.lock();
    let Some(watches) = registry.get(&key).cloned() else {
        return;
    };
    for (instance, watch) in watches {
        let Some(instance) = instance.upgrade() else {
            continue;
        };
        instances.push(instance.clone());
        let mut state = instance.state.lock();
        let Some(&(_, wanted)) = state.watches.get(&watch) else {
            continue;
        };
        let always = mask::IGNORED | mask::Q_OVERFLOW;
        if wanted & event & (mask::ALL_EVENTS | always) == 0 {
            continue;
        }
        let reported = event & (wanted | always | mask::ISDIR);
        instance.queue(&mut state, Event { watch, mask: reported, cookie, name: name.map(String::from) });
        if wanted & mask::ONESHOT != 0 {
            state.watches.remove(&watch);
            instance.queue(&mut state, Event { watch, mask: mask::IGNORED, cookie: 0, name: None });
            drop(state);
            unregister(&mut registry, key, &instance, watch);
        }
    }
}

/// File `key` is gone (its last link removed): its watches see
/// `IN_DELETE_SELF`, then `IN_IGNORED`, and end.
pub fn forget(key: LockKey) {
    if !is_watching() {
        return;
    }
    notify(key, mask::DELETE_SELF, None, 0);
    let mut instances = Vec::new();
    let mut registry = REGISTRY.lock();
    let Some(watches) = registry.remove(&key) else {
        return;
    };
    update_count(&registry);
    for (instance, watch) in watches {
        if let Some(instance) = instance.upgrade() {
            instances.push(instance.clone());
            let mut state = instance.state.lock();
            state.watches.remove(&watch);
            instance.queue(&mut state, Event { watch, mask: mask::IGNORED, cookie: 0, name: None });
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let mut registry = REGISTRY.lock();
        let watches: Vec<(i32, LockKey)> =
            self.state.get_mut().watches.iter().map(|(&watch, &(key, _))| (watch, key)).collect();
        for (watch, key) in watches {
            unregister(&mut registry, key, self, watch);
        }
    }
}

impl SpecialFile for Inotify {
    fn name(&self) -> String {
        String::from("anon_inode:inotify")
    }

    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        self.core.read(caller, buffer, is_nonblocking)
    }

    fn poll(&self) -> u16 {
        if self.core.state.lock().queue.is_empty() { 0 } else { events::POLLIN | events::POLLRDNORM }
    }

    fn waiters(&self) -> &WaiterList {
        &self.core.waiters
    }

    /// A line per watch: its number, the watched inode, its device as the
    /// kernel numbers devices inside (major << 20 | minor) and the events
    /// it asks for, in hexadecimal.
    fn descriptor_info(&self, _caller: &Caller<'_>, _owner: &crate::process::Process) -> String {
        let state = self.core.state.lock();
        let mut text = String::new();
        for (watch, ((device, inode), mask)) in &state.watches {
            let _ = core::fmt::Write::write_fmt(
                &mut text,
                format_args!(
                    "inotify wd:{watch:x} ino:{inode:x} sdev:{:x} mask:{mask:x} ignored_mask:0\n",
                    super::internal_device_number(*device)
                ),
            );
        }
        text
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Core {
    /// Reads whole event records into `buffer`, waiting for one unless
    /// `is_nonblocking`; `InvalidArgument` when the first does not fit.
    fn read(&self, caller: &Caller<'_>, buffer: &mut [u8], is_nonblocking: bool) -> Result<usize, FsError> {
        let me = caller.machine.current_thread();
        loop {
            {
                let mut state = self.state.lock();
                if let Some(first) = state.queue.front() {
                    if first.size() > buffer.len() {
                        return Err(FsError::InvalidArgument);
                    }
                    let mut written = 0;
                    while let Some(event) = state.queue.front() {
                        let size = event.size();
                        if written + size > buffer.len() {
                            break;
                        }
                        let record = &mut buffer[written..written + size];
                        record.fill(0);
                        record[0..4].copy_from_slice(&event.watch.to_le_bytes());
                        record[4..8].copy_from_slice(&event.mask.to_le_bytes());
                        record[8..12].copy_from_slice(&event.cookie.to_le_bytes());
                        record[12..16].copy_from_slice(&((size - EVENT_HEADER) as u32).to_le_bytes());
                        if let Some(name) = &event.name {
                            record[16..16 + name.len()].copy_from_slice(name.as_bytes());
                        }
                        written += size;
                        state.queue.pop_front();
                    }
                    drop(state);
                    self.waiters.remove(&me);
                    return Ok(written);
                }
                if is_nonblocking {
                    return Err(FsError::WouldBlock);
                }
                self.waiters.add(&me);
            }
            self.waiters.block(caller, &me)?;
        }
    }
}

pub mod directory;
#[cfg(test)]
mod tests;

/// The registry's key of `location`.
pub fn key_of(location: &super::Location) -> LockKey {
    (location.mount.device(), location.node.inode())
}

/// Reports `event` on `location` (with `ISDIR` for a directory) and, when
/// it is known by a name in a directory, on that directory with the name.
pub fn at(location: &super::Location, named: Option<(&super::Location, &str)>, event: u32) {
    if !is_watching() {
        return;
    }
    let event = if location.is_directory() { event | mask::ISDIR } else { event };
    notify(key_of(location), event, None, 0);
    if let Some((directory, name)) = named {
        notify(key_of(directory), event, Some(name), 0);
    }
}

/// Reports a new entry `name` in `directory`.
pub fn created(directory: &super::Location, name: &str, is_directory: bool) {
    if is_watching() {
        notify(key_of(directory), mask::CREATE | if is_directory { mask::ISDIR } else { 0 }, Some(name), 0);
    }
}
