//! Pages of RAM that the kernel's logic owns: file contents, for now.
//!
//! A [`Page`] is one reference to a 4 KiB frame of the machine's frame
//! allocator; dropping it gives the reference back, and the frame is freed
//! with its last reference. The frames come through [`PageFrames`],
//! installed once at boot ([`install`]) by the kernel binary, and by the
//! tests with a fake made of host memory. Pages are memory taken on an
//! application's behalf: when RAM runs short, [`Page::new`] fails before
//! the kernel's own reserve is touched.

use spin::Once;

pub mod cache;

/// The size of a page.
pub const PAGE_SIZE: usize = 4096;

/// RAM as the frame allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryFigures {
    /// Bytes of RAM the allocator manages (all RAM the kernel image and
    /// firmware leave).
    pub total_bytes: u64,
    /// Bytes free now.
    pub free_bytes: u64,
    /// Bytes kept free for the kernel's own use.
    pub reserve_bytes: u64,
    /// Bytes the kernel heap holds.
    pub heap_bytes: u64,
}

impl MemoryFigures {
    /// Bytes an application could still get.
    pub fn available_bytes(&self) -> u64 {
        self.free_bytes.saturating_sub(self.reserve_bytes)
    }
}

/// The machine's page frames.
///
/// `frame` arguments are physical addresses of frames the caller holds a
/// reference to (from [`PageFrames::allocate`] or [`PageFrames::share`]);
/// implementations check them and do nothing for others.
pub trait PageFrames: Sync {
    /// A zeroed frame with one reference, unless RAM is short.
    fn allocate(&self) -> Option<u64>;

    /// Adds a reference to `frame`; `false` if that is not possible.
    fn share(&self, frame: u64) -> bool;

    /// Drops a reference to `frame`, freeing it with the last one.
    fn release(&self, frame: u64);

    /// How many references `frame` has (0 if it is not allocated).
    fn users(&self, frame: u64) -> u32;

    /// Copies bytes of `frame` from `offset` into `buffer`.
    fn read(&self, frame: u64, offset: usize, buffer: &mut [u8]);

    /// Copies `bytes` into `frame` at `offset`.
    fn write(&self, frame: u64, offset: usize, bytes: &[u8]);

    /// Copies all of frame `from` into frame `to`.
    fn copy(&self, from: u64, to: u64);

    /// Fills `length` bytes of `frame` from `offset` with zeroes.
    fn zero(&self, frame: u64, offset: usize, length: usize);

    /// What the allocator holds now.
    fn figures(&self) -> MemoryFigures;
}

static FRAMES: Once<&'static dyn PageFrames> = Once::new();

/// Installs the machine's frames; later calls keep the first.
pub fn install(frames: &'static dyn PageFrames) {
    FRAMES.call_once(|| frames);
}

fn frames() -> Option<&'static dyn PageFrames> {
    #[cfg(test)]
    install(&crate::fake::FAKE_FRAMES);
    FRAMES.get().copied()
}

/// Writes `bytes` into the frame at `frame` from `offset` (a frame some
/// page table maps: the writer holds its address space).
pub fn write_frame(frame: u64, offset: usize, bytes: &[u8]) {
    if let Some(frames) = frames() {
        frames.write(frame, offset, bytes);
    }
}

/// Reads bytes of the frame at `frame` from `offset` into `buffer` (a
/// frame some page table maps: the reader holds its address space).
pub fn read_frame(frame: u64, offset: usize, buffer: &mut [u8]) {
    if let Some(frames) = frames() {
        frames.read(frame, offset, buffer);
    }
}

/// The machine's memory figures (all zero before [`install`]).
pub fn figures() -> MemoryFigures {
    frames().map(|frames| frames.figures()).unwrap_or_default()
}

/// Something that holds pages it can give back when RAM runs short: a
/// page cache, whose clean pages nobody else uses can be read again later.
pub trait Reclaim: Send + Sync {
    /// Gives back pages only it holds; returns how many.
    fn reclaim(&self) -> usize;
}

static RECLAIMERS: spin::Mutex<alloc::vec::Vec<alloc::sync::Weak<dyn Reclaim>>> =
    spin::Mutex::new(alloc::vec::Vec::new());

/// Lets `reclaimer` give pages back when RAM runs short, as long as it
/// lives.
pub fn register_reclaimer(reclaimer: alloc::sync::Weak<dyn Reclaim>) {
    let mut reclaimers = RECLAIMERS.lock();
    reclaimers.retain(|registered| registered.strong_count() > 0);
    reclaimers.push(reclaimer);
}

/// Asks every registered reclaimer for pages; returns how many came back.
pub fn reclaim() -> usize {
    let live: alloc::vec::Vec<_> = RECLAIMERS.lock().iter().filter_map(alloc::sync::Weak::upgrade).collect();
    live.iter().map(|reclaimer| reclaimer.reclaim()).sum()
}

/// No page could be had: RAM is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// One reference to a frame of RAM.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    frame: u64,
}

impl Page {
    /// A zeroed page; when RAM is short, caches give back what they can
    /// first.
    pub fn new() -> Result<Page, OutOfMemory> {
        let frames = frames().ok_or(OutOfMemory)?;
        let frame = match frames.allocate() {
            Some(frame) => frame,
            None if reclaim() > 0 => frames.allocate().ok_or(OutOfMemory)?,
            None => return Err(OutOfMemory),
        };
        Ok(Page { frame })
    }

    /// How many references the page's frame has, this one included
    /// (mappings hold one each).
    pub fn users(&self) -> u32 {
        frames().map_or(0, |frames| frames.users(self.frame))
    }

    /// The frame's physical address (for mapping it).
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Another reference to the same frame.
    pub fn share(&self) -> Result<Page, OutOfMemory> {
        let frames = frames().ok_or(OutOfMemory)?;
        if frames.share(self.frame) { Ok(Page { frame: self.frame }) } else { Err(OutOfMemory) }
    }

    /// A new page with the same bytes.
    pub fn duplicate(&self) -> Result<Page, OutOfMemory> {
        let copy = Page::new()?;
        if let Some(frames) = frames() {
            frames.copy(self.frame, copy.frame);
        }
        Ok(copy)
    }

    /// Copies bytes from `offset` into `buffer`, as many as the page holds
    /// past `offset`; returns how many.
    pub fn read(&self, offset: usize, buffer: &mut [u8]) -> usize {
        let length = buffer.len().min(PAGE_SIZE.saturating_sub(offset));
        if let Some(frames) = frames()
            && length > 0
        {
            frames.read(self.frame, offset, &mut buffer[..length]);
        }
        length
    }

    /// Copies `bytes` to `offset`, as many as fit; returns how many.
    pub fn write(&self, offset: usize, bytes: &[u8]) -> usize {
        let length = bytes.len().min(PAGE_SIZE.saturating_sub(offset));
        if let Some(frames) = frames()
            && length > 0
        {
            frames.write(self.frame, offset, &bytes[..length]);
        }
        length
    }

    /// Zeroes the page from `offset` to its end.
    pub fn zero_from(&self, offset: usize) {
        if let Some(frames) = frames()
            && offset < PAGE_SIZE
        {
            frames.zero(self.frame, offset, PAGE_SIZE - offset);
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if let Some(frames) = frames() {
            frames.release(self.frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_start_zeroed_and_keep_what_is_written() {
        let page = Page::new().expect("a page");
        let mut buffer = [1u8; 8];
        assert_eq!(page.read(100, &mut buffer), 8);
        assert_eq!(buffer, [0; 8]);
        assert_eq!(page.write(4090, b"abcdefgh"), 6, "writes stop at the page's end");
        let shared = page.share().expect("another reference");
        drop(page);
        let mut tail = [0u8; 10];
        assert_eq!(shared.read(4090, &mut tail), 6);
        assert_eq!(&tail[..6], b"abcdef");
        assert_eq!(shared.read(PAGE_SIZE + 5, &mut tail), 0);
        shared.zero_from(4092);
        assert_eq!(shared.read(4090, &mut tail), 6);
        assert_eq!(&tail[..6], b"ab\0\0\0\0");
    }
}
