//! The binary buddy allocator over frame numbers.
//!
//! A block of order k is 2^k frames whose first frame number is a multiple
//! of 2^k; its buddy is the block whose number differs in bit k alone. Only
//! a block's first frame carries meaning in the [`Link`] table: whether the
//! block is free or allocated, its order, and (when free) its neighbours on
//! the free list of its order.

/// Number of orders: blocks of 1 frame (order 0) up to 2^15 frames
/// (128 MiB).
pub const ORDER_COUNT: usize = 16;

/// No frame: the end of a free list.
const NIL: u32 = u32::MAX;

/// What the first frame of a block says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Not the first frame of a block, or not managed at all.
    #[default]
    Inside,
    /// The first frame of a free block on its order's list.
    Free,
    /// The first frame of an allocated block.
    Allocated,
}

/// The allocator's record of one frame.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    next: u32,
    previous: u32,
    order: u8,
    state: State,
}

impl Default for Link {
    fn default() -> Self {
        Link { next: NIL, previous: NIL, order: 0, state: State::Inside }
    }
}

/// Why a block could not be freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is not the first frame of an allocated block.
    NotAllocated,
}

/// A buddy allocator of the frames `first_frame .. first_frame + links.len()`.
#[derive(Debug)]
pub struct Buddy<'a> {
    links: &'a mut [Link],
    first_frame: u64,
    heads: [u32; ORDER_COUNT],
    free_blocks: [u64; ORDER_COUNT],
    free_frames: u64,
    managed_frames: u64,
}

impl<'a> Buddy<'a> {
    /// An allocator with no free frame yet, recording frame `first_frame + i`
    /// in `links[i]`; [`Buddy::add_free_range`] gives it frames. At most
    /// 2^32 - 1 frames (16 TiB) are covered; links beyond are ignored.
    pub fn new(links: &'a mut [Link], first_frame: u64) -> Self {
        let covered = links.len().min(NIL as usize);
        let links = &mut links[..covered];
        links.fill(Link::default());
        Buddy {
            links,
            first_frame,
            heads: [NIL; ORDER_COUNT],
            free_blocks: [0; ORDER_COUNT],
            free_frames: 0,
            managed_frames: 0,
        }
    }

    /// Frames free now.
    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames ever given by [`Buddy::add_free_range`].
    pub fn managed_frames(&self) -> u64 {
        self.managed_frames
    }

    /// Free blocks of each order.
    pub fn free_blocks(&self) -> [u64; ORDER_COUNT] {
        self.free_blocks
    }

    /// The order of the allocated block starting at `frame`, if one does.
    pub fn allocated_order(&self, frame: u64) -> Option<usize> {
        let index = self.index(frame)?;
        let link = &self.links[index as usize];
        (link.state == State::Allocated).then_some(link.order as usize)
    }

    /// Gives the allocator the frames `[start, start + count)`, which must
    /// not have been given before; frames outside its table are ignored.
    /// Returns how many frames it took.
    pub fn add_free_range(&mut self, start: u64, count: u64) -> u64 {
        let table_end = self.first_frame + self.links.len() as u64;
        let start = start.max(self.first_frame);
        let end = start.saturating_add(count).min(table_end);
        let mut frame = start;
        let mut taken = 0;
        while frame < end {
            let mut order = 0;
            while order + 1 < ORDER_COUNT {
                let size = 1u64 << (order + 1);
                if !(frame - self.first_frame).is_multiple_of(size) || frame + size > end {
                    break;
                }
                order += 1;
            }
            let index = (frame - self.first_frame) as u32;
            if self.links[index as usize].state == State::Inside {
                self.links[index as usize].state = State::Allocated;
                self.links[index as usize].order = order as u8;
                self.managed_frames += 1 << order;
                taken += 1 << order;
                // The block is marked allocated, so freeing it succeeds.
                let _ = self.free(frame);
            }
            frame += 1 << order;
        }
        taken
    }

    /// Takes a block of 2^`order` frames and returns its first frame, unless
    /// that would leave fewer than `keep_free` frames free.
    pub fn allocate(&mut self, order: usize, keep_free: u64) -> Option<u64> {
        if order >= ORDER_COUNT || self.free_frames < (1u64 << order).saturating_add(keep_free) {
            return None;
        }
        let found = (order..ORDER_COUNT).find(|&candidate| self.heads[candidate] != NIL)?;
        let index = self.heads[found];
        self.unlink(index, found);
        // Split: the upper halves go back on the lower lists.
        let mut current = found;
        while current > order {
            current -= 1;
            let upper = index + (1u32 << current);
            self.push(upper, current);
        }
        let link = &mut self.links[index as usize];
        link.state = State::Allocated;
        link.order = order as u8;
        self.free_frames -= 1 << order;
        Some(self.first_frame + u64::from(index))
    }

    /// Returns the allocated block starting at `frame`, merging it with free
    /// buddies. Returns the order the block had.
    pub fn free(&mut self, frame: u64) -> Result<usize, FreeError> {
        let mut index = self.index(frame).ok_or(FreeError::NotAllocated)?;
        let link = self.links[index as usize];
        if link.state != State::Allocated {
            return Err(FreeError::NotAllocated);
        }
        let freed_order = link.order as usize;
        self.links[index as usize].state = State::Inside;
        self.free_frames += 1 << freed_order;
        let mut order = freed_order;
        while order + 1 < ORDER_COUNT {
            let buddy = index ^ (1u32 << order);
            let is_free_buddy = self
                .links
                .get(buddy as usize)
                .is_some_and(|link| link.state == State::Free && link.order as usize == order);
            if !is_free_buddy {
                break;
            }
            self.unlink(buddy, order);
            self.links[buddy as usize].state = State::Inside;
            index = index.min(buddy);
            order += 1;
        }
        self.push(index, order);
        Ok(freed_order)
    }

    fn index(&self, frame: u64) -> Option<u32> {
        let index = frame.checked_sub(self.first_frame)?;
        (index < self.links.len() as u64).then_some(index as u32)
    }

    fn push(&mut self, index: u32, order: usize) {
        let head = self.heads[order];
        self.links[index as usize] =
            Link { next: head, previous: NIL, order: order as u8, state: State::Free };
        if head != NIL {
            self.links[head as usize].previous = index;
        }
        self.heads[order] = index;
        self.free_blocks[order] += 1;
    }

    fn unlink(&mut self, index: u32, order: usize) {
        let Link { next, previous, .. } = self.links[index as usize];
        if previous == NIL {
            self.heads[order] = next;
        } else {
            self.links[previous as usize].next = next;
        }
        if next != NIL {
            self.links[next as usize].previous = previous;
        }
        self.free_blocks[order] -= 1;
    }
}

#[cfg(test)]
mod tests;
