//! The free ranges of the `mmap` window, indexed by start and by size, so
//! that finding room for a mapping takes O(log n) whatever the number of
//! areas.

use alloc::collections::{BTreeMap, BTreeSet};

/// Free ranges `[start, end)` within a window, never adjacent to each other.
#[derive(Debug, Clone)]
pub struct Gaps {
    window_start: u64,
    window_end: u64,
    by_start: BTreeMap<u64, u64>,
    by_size: BTreeSet<(u64, u64)>,
}

impl Gaps {
    /// The window `[start, end)`, all free.
    pub fn new(start: u64, end: u64) -> Self {
        let mut gaps = Gaps {
            window_start: start,
            window_end: end,
            by_start: BTreeMap::new(),
            by_size: BTreeSet::new(),
        };
        gaps.insert(start, end);
        gaps
    }

    fn insert(&mut self, start: u64, end: u64) {
        if start < end {
            self.by_start.insert(start, end);
            self.by_size.insert((end - start, start));
        }
    }

    fn remove(&mut self, start: u64) -> Option<u64> {
        let end = self.by_start.remove(&start)?;
        self.by_size.remove(&(end - start, start));
        Some(end)
    }

    /// `[start, end)` is now in use (it was free, where it meets the window).
    pub fn take(&mut self, start: u64, end: u64) {
        let (start, end) = (start.max(self.window_start), end.min(self.window_end));
        if start >= end {
            return;
        }
        let Some((&gap_start, &gap_end)) = self.by_start.range(..=start).next_back() else {
            return;
        };
        if gap_end < end {
            return;
        }
        self.remove(gap_start);
        self.insert(gap_start, start);
        self.insert(end, gap_end);
    }

    /// `[start, end)` is free again (it was in use, where it meets the
    /// window); it joins the gaps on either side.
    pub fn give_back(&mut self, start: u64, end: u64) {
        let (mut start, mut end) = (start.max(self.window_start), end.min(self.window_end));
        if start >= end {
            return;
        }
        if let Some((&before_start, &before_end)) = self.by_start.range(..start).next_back()
            && before_end == start
        {
            self.remove(before_start);
            start = before_start;
        }
        if let Some(after_end) = self.remove(end) {
            end = after_end;
        }
        self.insert(start, end);
    }

    /// The highest start of `length` free bytes at or above `floor`, taken
    /// from the smallest gap that holds them (best fit keeps large gaps
    /// whole; placing at the gap's top keeps mappings growing downwards).
    pub fn find(&self, length: u64, floor: u64) -> Option<u64> {
        if length == 0 {
            return None;
        }
        // Only the gap that straddles the floor shrinks when clipped, so at
        // most one candidate is passed over.
        self.by_size.range((length, 0)..).find_map(|&(_, start)| {
            let end = *self.by_start.get(&start)?;
            let usable_start = start.max(floor);
            (end > usable_start && end - usable_start >= length).then(|| end - length)
        })
    }

    /// How many gaps there are.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.by_start.len()
    }

    /// The gaps, lowest first.
    #[cfg(test)]
    pub fn ranges(&self) -> alloc::vec::Vec<(u64, u64)> {
        self.by_start.iter().map(|(start, end)| (*start, *end)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_and_giving_back_keeps_gaps_merged() {
        let mut gaps = Gaps::new(0x1000, 0x10_0000);
        gaps.take(0x8000, 0xa000);
        assert_eq!(gaps.count(), 2);
        assert_eq!(gaps.find(0x1000, 0), Some(0x7000), "the smaller gap fits best");
        gaps.take(0x2000, 0x3000);
        gaps.give_back(0x8000, 0xa000);
        assert_eq!(gaps.count(), 2);
        gaps.give_back(0x2000, 0x3000);
        assert_eq!(gaps.count(), 1);
        assert_eq!(gaps.find(0xf_f000, 0), Some(0x1000));
        assert_eq!(gaps.find(0xf_f001, 0), None);
    }

    #[test]
    fn the_smallest_fitting_gap_wins_above_the_floor() {
        let mut gaps = Gaps::new(0x1000, 0x100_0000);
        gaps.take(0x3000, 0x80_0000);
        gaps.take(0x80_4000, 0xff_0000);
        // Gaps: [0x1000, 0x3000), [0x80_0000, 0x80_4000), [0xff_0000, 0x100_0000).
        assert_eq!(gaps.find(0x2000, 0), Some(0x1000));
        assert_eq!(gaps.find(0x2000, 0x2000), Some(0x80_2000), "the floor clips the lowest gap");
        assert_eq!(gaps.find(0x8000, 0), Some(0xff_8000));
        assert_eq!(gaps.find(0x10_0000, 0), None);
        assert_eq!(gaps.find(0, 0), None);
    }

    #[test]
    fn ranges_outside_the_window_are_ignored() {
        let mut gaps = Gaps::new(0x1000, 0x2000);
        gaps.take(0, 0x1800);
        gaps.give_back(0x3000, 0x4000);
        assert_eq!(gaps.find(0x800, 0), Some(0x1800));
        assert_eq!(gaps.count(), 1);
    }
}
