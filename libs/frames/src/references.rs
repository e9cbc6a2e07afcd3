//! Reference counts of allocated blocks, one atomic counter per frame.

use core::sync::atomic::{AtomicU32, Ordering};

/// The users of each frame `first_frame + i`, counted in `counts[i]`.
///
/// Only a block's first frame is counted. The counts change without the
/// allocator's lock; the caller frees a block when [`release`] says its
/// last user is gone.
///
/// [`release`]: ReferenceCounts::release
#[derive(Debug)]
pub struct ReferenceCounts<'a> {
    counts: &'a [AtomicU32],
    first_frame: u64,
}

impl<'a> ReferenceCounts<'a> {
    /// Counters for the frames from `first_frame` on.
    pub fn new(counts: &'a [AtomicU32], first_frame: u64) -> Self {
        ReferenceCounts { counts, first_frame }
    }

    fn counter(&self, frame: u64) -> Option<&AtomicU32> {
        let index = usize::try_from(frame.checked_sub(self.first_frame)?).ok()?;
        self.counts.get(index)
    }

    /// Starts counting a freshly allocated block at one user.
    pub fn start(&self, frame: u64) {
        if let Some(counter) = self.counter(frame) {
            counter.store(1, Ordering::Release);
        }
    }

    /// Adds a user; `false` if the frame had none (it is not allocated) or
    /// the count would overflow, and then nothing changed.
    pub fn share(&self, frame: u64) -> bool {
        let Some(counter) = self.counter(frame) else {
            return false;
        };
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count != 0 && count != u32::MAX).then(|| count + 1)
            })
            .is_ok()
    }

    /// Removes a user; `Some(true)` when it was the last one (the caller
    /// frees the block), `None` if the frame had no user.
    pub fn release(&self, frame: u64) -> Option<bool> {
        let counter = self.counter(frame)?;
        let previous =
            counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| count.checked_sub(1)).ok()?;
        Some(previous == 1)
    }

    /// The users of `frame` now.
    pub fn count(&self, frame: u64) -> u32 {
        self.counter(frame).map_or(0, |counter| counter.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_release_says_so() {
        let counts: [AtomicU32; 4] = Default::default();
        let references = ReferenceCounts::new(&counts, 100);
        references.start(101);
        assert!(references.share(101));
        assert_eq!(references.count(101), 2);
        assert_eq!(references.release(101), Some(false));
        assert_eq!(references.release(101), Some(true));
        assert_eq!(references.release(101), None);
        assert!(!references.share(101), "a freed frame cannot gain users");
        assert!(!references.share(99) && !references.share(104));
        assert_eq!(references.release(7), None);
    }
}
