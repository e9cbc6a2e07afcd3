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

/// The bit of a counter that marks a single-frame block.
const SINGLE: u32 = 1 << 31;
/// The bits of a counter that count users.
const USERS: u32 = SINGLE - 1;

impl<'a> ReferenceCounts<'a> {
    /// Counters for the frames from `first_frame` on.
    pub fn new(counts: &'a [AtomicU32], first_frame: u64) -> Self {
        ReferenceCounts { counts, first_frame }
    }

    fn counter(&self, frame: u64) -> Option<&AtomicU32> {
        let index = usize::try_from(frame.checked_sub(self.first_frame)?).ok()?;
        self.counts.get(index)
    }

    /// Starts counting a freshly allocated block at one user; `is_single`
    /// marks a block of one frame, which [`was_single`] reports.
    ///
    /// [`was_single`]: ReferenceCounts::was_single
    pub fn start(&self, frame: u64, is_single: bool) {
        if let Some(counter) = self.counter(frame) {
            counter.store(if is_single { SINGLE | 1 } else { 1 }, Ordering::Release);
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
                let users = count & USERS;
                (users != 0 && users != USERS).then_some(count + 1)
            })
            .is_ok()
    }

    /// Removes a user; `Some(true)` when it was the last one (the caller
    /// frees the block), `None` if the frame had no user.
    pub fn release(&self, frame: u64) -> Option<bool> {
        let counter = self.counter(frame)?;
        let previous = counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count & USERS).checked_sub(1).map(|users| (count & SINGLE) | users)
            })
            .ok()?;
        Some(previous & USERS == 1)
    }

    /// Whether the block at `frame` was started as a single frame: valid
    /// from its start until it is started again, so its last user may ask
    /// after the release that freed it.
    pub fn was_single(&self, frame: u64) -> bool {
        self.counter(frame).is_some_and(|counter| counter.load(Ordering::Acquire) & SINGLE != 0)
    }

    /// The users of `frame` now.
    pub fn count(&self, frame: u64) -> u32 {
        self.counter(frame).map_or(0, |counter| counter.load(Ordering::Acquire) & USERS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_release_says_so() {
        let counts: [AtomicU32; 4] = Default::default();
        let references = ReferenceCounts::new(&counts, 100);
        references.start(101, false);
        assert!(references.share(101));
        assert_eq!(references.count(101), 2);
        assert_eq!(references.release(101), Some(false));
        assert_eq!(references.release(101), Some(true));
        assert_eq!(references.release(101), None);
        assert!(!references.share(101), "a freed frame cannot gain users");
        assert!(!references.share(99) && !references.share(104));
        assert_eq!(references.release(7), None);
        assert!(!references.was_single(101));
    }

    #[test]
    fn a_single_frame_is_marked_through_its_last_release() {
        let counts: [AtomicU32; 2] = Default::default();
        let references = ReferenceCounts::new(&counts, 0);
        references.start(1, true);
        assert!(references.share(1));
        assert_eq!(references.count(1), 2, "the mark is not a user");
        assert_eq!(references.release(1), Some(false));
        assert_eq!(references.release(1), Some(true));
        assert!(references.was_single(1));
        assert_eq!(references.count(1), 0);
        assert!(!references.share(1), "a freed frame cannot gain users");
        references.start(1, false);
        assert!(!references.was_single(1));
    }
}
