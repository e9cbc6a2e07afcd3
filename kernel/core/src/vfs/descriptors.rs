//! The file descriptor table: numbers to open file descriptions.
//!
//! Removing or replacing an entry hands the old description back, so that
//! the caller drops it (which may close a pipe end and wake threads) after
//! releasing the process's lock.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::FsError;
use super::file::OpenFile;
use crate::errno::Errno;

/// One entry: an open file description and the descriptor's own flag.
#[derive(Debug, Clone)]
pub struct Descriptor {
    /// The open file description (shared by duplicates).
    pub file: Arc<OpenFile>,
    /// `FD_CLOEXEC`.
    pub close_on_exec: bool,
}

/// A process's descriptors.
#[derive(Debug, Clone, Default)]
pub struct DescriptorTable {
    slots: Vec<Option<Descriptor>>,
}

impl DescriptorTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The descriptor `number`.
    pub fn get(&self, number: u64) -> Result<&Descriptor, FsError> {
        usize::try_from(number)
            .ok()
            .and_then(|index| self.slots.get(index))
            .and_then(Option::as_ref)
            .ok_or(FsError::BadDescriptor)
    }

    /// The open file of descriptor `number`.
    pub fn file(&self, number: u64) -> Result<Arc<OpenFile>, FsError> {
        self.get(number).map(|descriptor| descriptor.file.clone())
    }

    /// Installs `descriptor` at the lowest free number in
    /// `minimum..limit`: `EMFILE` if every one is taken, `ENOMEM` if the
    /// table cannot grow to hold it.
    pub fn install(&mut self, descriptor: Descriptor, minimum: usize, limit: usize) -> Result<usize, Errno> {
        let free = (minimum..limit)
            .find(|&index| self.slots.get(index).is_none_or(Option::is_none))
            .ok_or(Errno::EMFILE)?;
        self.grow_to_hold(free)?;
        self.slots[free] = Some(descriptor);
        Ok(free)
    }

    /// Puts `descriptor` at `number`; returns what was there, or `ENOMEM`
    /// if the table cannot grow to hold it.
    pub fn replace(&mut self, number: usize, descriptor: Descriptor) -> Result<Option<Descriptor>, Errno> {
        self.grow_to_hold(number)?;
        Ok(self.slots[number].replace(descriptor))
    }

    /// Makes room for descriptor `number`. The application chooses it (up
    /// to its `RLIMIT_NOFILE`), so failing to allocate is an error, not a
    /// panic.
    fn grow_to_hold(&mut self, number: usize) -> Result<(), Errno> {
        if number < self.slots.len() {
            return Ok(());
        }
        let wanted = number.checked_add(1).ok_or(Errno::EMFILE)?;
        self.slots.try_reserve_exact(wanted - self.slots.len()).map_err(|_| Errno::ENOMEM)?;
        self.slots.resize(wanted, None);
        Ok(())
    }

    /// One past the highest descriptor number the table has room for
    /// (what `select` looks at, as Linux's `max_fds`).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Removes descriptor `number`.
    pub fn remove(&mut self, number: u64) -> Result<Descriptor, FsError> {
        usize::try_from(number)
            .ok()
            .and_then(|index| self.slots.get_mut(index))
            .and_then(Option::take)
            .ok_or(FsError::BadDescriptor)
    }

    /// Sets `FD_CLOEXEC` of descriptor `number`.
    pub fn set_close_on_exec(&mut self, number: u64, close_on_exec: bool) -> Result<(), FsError> {
        let index = usize::try_from(number).map_err(|_| FsError::BadDescriptor)?;
        let descriptor = self.slots.get_mut(index).and_then(Option::as_mut).ok_or(FsError::BadDescriptor)?;
        descriptor.close_on_exec = close_on_exec;
        Ok(())
    }

    /// The open descriptors, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Descriptor)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| slot.as_ref().map(|descriptor| (index, descriptor)))
    }

    /// Removes every descriptor (at process end); returns them to drop.
    pub fn take_all(&mut self) -> Vec<Descriptor> {
        core::mem::take(&mut self.slots).into_iter().flatten().collect()
    }
}
