//! The file descriptor table: numbers to open file descriptions.
//!
//! Removing or replacing an entry hands the old description back, so that
//! the caller drops it (which may close a pipe end and wake threads) after
//! releasing the process's lock.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::FsError;
use super::file::OpenFile;

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
    /// `minimum..limit`; `None` if every one is taken.
    pub fn install(&mut self, descriptor: Descriptor, minimum: usize, limit: usize) -> Option<usize> {
        let free = (minimum..limit).find(|&index| self.slots.get(index).is_none_or(Option::is_none))?;
        if free >= self.slots.len() {
            self.slots.resize(free + 1, None);
        }
        self.slots[free] = Some(descriptor);
        Some(free)
    }

    /// Puts `descriptor` at `number`; returns what was there.
    pub fn replace(&mut self, number: usize, descriptor: Descriptor) -> Option<Descriptor> {
        if number >= self.slots.len() {
            self.slots.resize(number + 1, None);
        }
        self.slots[number].replace(descriptor)
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
