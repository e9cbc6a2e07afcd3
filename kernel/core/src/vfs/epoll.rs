//! epoll instances: sets of interests in open files, and what is ready.
//!
//! An [`Epoll`] holds one interest per (descriptor number, open file
//! description) pair, as Linux keys them. An interest refers to its
//! description weakly: it disappears once the description is closed for
//! good, whatever descriptor numbers were involved. Nothing is queued when
//! an object changes: a wait asks every interest's object for its
//! readiness ([`super::OpenFile::poll`]), and registers the waiting thread
//! with each of them ([`SpecialFile::add_waiter`]), so an instance watching
//! another (nesting, see [`nesting`]) is waited on like any other object.
//!
//! Level-triggered interests are reported while their object is ready.
//! Edge-triggered ones (`EPOLLET`) are reported once per change: when the
//! object's generation differs from the one last reported. One-shot ones
//! (`EPOLLONESHOT`) are disabled after a report until `EPOLL_CTL_MOD`.

mod event;
mod nesting;

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use spin::Mutex;

use super::FsError;
use super::file::OpenFile;
use super::special::SpecialFile;
use super::waiters::{WaiterList, events};
use crate::machine::ThreadControl;
pub use event::{EpollEvent, Operation, flags};

/// Errors and hang-ups are always reported, asked for or not.
const ALWAYS_REPORTED: u32 = (events::POLLERR | events::POLLHUP) as u32;

/// One watched (descriptor, description) pair.
struct Interest {
    fd: i32,
    file: Weak<OpenFile>,
    event: EpollEvent,
    /// False after a one-shot report, until `EPOLL_CTL_MOD`.
    is_enabled: bool,
    /// The object's generation at the last report (edge-triggered).
    reported_generation: Option<u64>,
    /// The largest generation of the object read so far.
    seen_generation: u64,
}

impl Interest {
    fn is_for(&self, fd: i32, file: &Arc<OpenFile>) -> bool {
        self.fd == fd && core::ptr::eq(self.file.as_ptr(), Arc::as_ptr(file))
    }
}

#[derive(Default)]
struct EpollState {
    interests: Vec<Interest>,
    /// The instances watching this one (for the nesting depth).
    parents: Vec<Weak<Epoll>>,
    /// What interests gone since contributed to the generation, so that
    /// it never goes back.
    retired_generations: u64,
}

impl EpollState {
    /// Forgets interests whose description is closed.
    fn remove_closed(&mut self) {
        let mut retired = 0u64;
        self.interests.retain(|interest| {
            let is_open = interest.file.strong_count() > 0;
            if !is_open {
                retired = retired.wrapping_add(interest.seen_generation.wrapping_add(1));
            }
            is_open
        });
        self.retired_generations = self.retired_generations.wrapping_add(retired);
    }
}

/// An epoll instance.
pub struct Epoll {
    this: Weak<Epoll>,
    state: Mutex<EpollState>,
    waiters: WaiterList,
}

impl core::fmt::Debug for Epoll {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Epoll").field("interests", &self.state.lock().interests.len()).finish()
    }
}

/// The epoll instance behind `file`, if it is one.
pub fn epoll_of(file: &OpenFile) -> Option<&Epoll> {
    file.special().and_then(|special| special.as_any().downcast_ref::<Epoll>())
}

impl Epoll {
    /// An instance watching nothing.
    pub fn new() -> Arc<Epoll> {
        Arc::new_cyclic(|this| Epoll {
            this: this.clone(),
            state: Mutex::new(EpollState::default()),
            waiters: WaiterList::new(),
        })
    }

    /// `epoll_ctl` once the descriptors are found: `operation` on the
    /// interest in `file` under descriptor number `fd`. `Exists`,
    /// `NotFound`, `InvalidArgument` (the instance itself, or a change to
    /// an exclusive interest) and `Loop` (nesting) as Linux fails them.
    pub fn control(
        &self,
        operation: Operation,
        fd: i32,
        file: &Arc<OpenFile>,
        event: EpollEvent,
    ) -> Result<(), FsError> {
        let target = epoll_of(file);
        if target.is_some_and(|target| core::ptr::eq(target, self)) {
            return Err(FsError::InvalidArgument);
        }
        let event = EpollEvent { events: event.events | ALWAYS_REPORTED, data: event.data };
        match operation {
            Operation::Add => self.add(fd, file, event, target)?,
            Operation::Modify => {
                let mut state = self.state.lock();
                state.remove_closed();
                let interest = state
                    .interests
                    .iter_mut()
                    .find(|interest| interest.is_for(fd, file))
                    .ok_or(FsError::NotFound)?;
                if interest.event.events & flags::EPOLLEXCLUSIVE != 0 {
                    return Err(FsError::InvalidArgument);
                }
                interest.event = event;
                interest.is_enabled = true;
                interest.reported_generation = None;
            }
            Operation::Delete => {
                let generation = file.generation();
                {
                    let mut state = self.state.lock();
                    state.remove_closed();
                    let index = state
                        .interests
                        .iter()
                        .position(|interest| interest.is_for(fd, file))
                        .ok_or(FsError::NotFound)?;
                    let removed = state.interests.remove(index);
                    let retired = removed.seen_generation.max(generation).wrapping_add(1);
                    state.retired_generations = state.retired_generations.wrapping_add(retired);
                }
                if let Some(target) = target {
                    target.forget_parent(self);
                }
            }
        }
        // Waiters look again (and watch the new set).
        self.waiters.notify();
        Ok(())
    }

    fn add(
        &self,
        fd: i32,
        file: &Arc<OpenFile>,
        event: EpollEvent,
        target: Option<&Epoll>,
    ) -> Result<(), FsError> {
        // Nesting checks and the change they allow happen as one.
        let _nesting = target.map(|target| nesting::check(self, target)).transpose()?;
        {
            let mut state = self.state.lock();
            state.remove_closed();
            if state.interests.iter().any(|interest| interest.is_for(fd, file)) {
                return Err(FsError::Exists);
            }
            state.interests.push(Interest {
                fd,
                file: Arc::downgrade(file),
                event,
                is_enabled: true,
                reported_generation: None,
                seen_generation: 0,
            });
        }
        if let Some(target) = target {
            target.state.lock().parents.push(self.this.clone());
        }
        Ok(())
    }

    /// Takes back one parent link to `parent` (its interest is gone).
    fn forget_parent(&self, parent: &Epoll) {
        let mut state = self.state.lock();
        if let Some(index) =
            state.parents.iter().position(|link| core::ptr::eq(link.as_ptr(), parent as *const Epoll))
        {
            state.parents.remove(index);
        }
    }

    /// Up to `limit` events ready now. They count as reported: edge-
    /// triggered interests wait for the next change, one-shot ones are
    /// disabled, and all move behind the others, so that a caller taking
    /// few events at a time sees every ready interest in turn (Linux
    /// queues them again at the tail).
    pub fn take_ready(&self, limit: usize) -> Vec<EpollEvent> {
        self.scan(limit, true)
    }

    /// Whether an event is ready (the instance's own readiness).
    pub fn is_ready(&self) -> bool {
        !self.scan(1, false).is_empty()
    }

    fn scan(&self, limit: usize, is_taking: bool) -> Vec<EpollEvent> {
        // Descriptions found open are dropped after the lock is released:
        // one closed meanwhile must not be torn down under it.
        let mut held: Vec<Arc<OpenFile>> = Vec::new();
        let mut ready = Vec::new();
        {
            let mut state = self.state.lock();
            state.remove_closed();
            let mut reported = Vec::new();
            for (index, interest) in state.interests.iter_mut().enumerate() {
                if ready.len() >= limit {
                    break;
                }
                if !interest.is_enabled {
                    continue;
                }
                let Some(file) = interest.file.upgrade() else { continue };
                // The generation before the readiness: a change in between
                // is then reported again rather than missed.
                let generation = file.generation();
                let events = u32::from(file.poll()) & interest.event.events;
                held.push(file);
                interest.seen_generation = interest.seen_generation.max(generation);
                let is_edge_triggered = interest.event.events & flags::EPOLLET != 0;
                if events == 0 || (is_edge_triggered && interest.reported_generation == Some(generation)) {
                    continue;
                }
                ready.push(EpollEvent { events, data: interest.event.data });
                if is_taking {
                    interest.reported_generation = Some(generation);
                    interest.is_enabled = interest.event.events & flags::EPOLLONESHOT == 0;
                    reported.push(index);
                }
            }
            if !reported.is_empty() {
                let mut position = 0;
                let moved: Vec<Interest> = state
                    .interests
                    .extract_if(.., |_| {
                        let is_reported = reported.binary_search(&position).is_ok();
                        position += 1;
                        is_reported
                    })
                    .collect();
                state.interests.extend(moved);
            }
        }
        drop(held);
        ready
    }

    /// The open descriptions of the interests (the enabled ones, unless
    /// `include_disabled`).
    fn watched_files(&self, include_disabled: bool) -> Vec<Arc<OpenFile>> {
        let state = self.state.lock();
        state
            .interests
            .iter()
            .filter(|interest| interest.is_enabled || include_disabled)
            .filter_map(|interest| interest.file.upgrade())
            .collect()
    }
}

impl SpecialFile for Epoll {
    fn name(&self) -> String {
        String::from("anon_inode:[eventpoll]")
    }

    /// Readable while an event is ready.
    fn poll(&self) -> u16 {
        if self.is_ready() { events::POLLIN } else { 0 }
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }

    /// Waiting for the instance is waiting for any watched object, and
    /// for a change of the set.
    fn add_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        self.waiters.add(thread);
        for file in self.watched_files(false) {
            file.add_waiter(thread);
        }
    }

    fn remove_waiter(&self, thread: &Arc<dyn ThreadControl>) {
        // Interests disabled since the thread was added still hold it.
        self.waiters.remove(thread);
        for file in self.watched_files(true) {
            file.remove_waiter(thread);
        }
    }

    /// Grows with the set's changes and with every watched object's.
    fn generation(&self) -> u64 {
        let mut held: Vec<Arc<OpenFile>> = Vec::new();
        let generation = {
            let mut state = self.state.lock();
            state.remove_closed();
            let mut sum = state.retired_generations.wrapping_add(self.waiters.generation());
            for interest in &mut state.interests {
                if let Some(file) = interest.file.upgrade() {
                    interest.seen_generation = interest.seen_generation.max(file.generation());
                    held.push(file);
                }
                sum = sum.wrapping_add(interest.seen_generation);
            }
            sum
        };
        drop(held);
        generation
    }

    /// A line per watched descriptor still open: its number, the events
    /// asked for (errors and hang-ups always among them), the data, and
    /// the file's position, inode and device (numbered as the kernel does
    /// inside).
    fn descriptor_info(&self, caller: &super::Caller<'_>, _owner: &crate::process::Process) -> String {
        let watched: Vec<(i32, EpollEvent, Arc<OpenFile>)> = {
            let state = self.state.lock();
            state
                .interests
                .iter()
                .filter_map(|interest| Some((interest.fd, interest.event, interest.file.upgrade()?)))
                .collect()
        };
        let mut text = String::new();
        for (fd, event, file) in watched {
            let (inode, device) =
                file.metadata(caller).map_or((0, 0), |metadata| (metadata.inode, metadata.device));
            let _ = core::fmt::Write::write_fmt(
                &mut text,
                format_args!(
                    "tfd: {fd:8} events: {:8x} data: {:16x}  pos:{} ino:{inode:x} sdev:{:x}\n",
                    event.events | ALWAYS_REPORTED,
                    event.data,
                    file.offset(),
                    super::internal_device_number(device),
                ),
            );
        }
        text
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests;
