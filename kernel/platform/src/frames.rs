//! Page frames: every free frame of RAM, the kernel heap grown from them.
//!
//! One buddy allocator (`rosv_frames::Buddy`) owns all free RAM. Its tables
//! (a link and a reference count per frame) are carved out of the first
//! free region large enough at boot. The kernel heap (talc) starts empty
//! and takes blocks from the frames as it needs them ([`HeapSource`]);
//! page tables, application pages, file pages and thread stacks are frames
//! directly.
//!
//! Frames for applications ([`Purpose::Application`]) are refused once
//! fewer than the reserve would remain free, so the kernel can always grow
//! its heap and page tables, whatever an application does; the kernel's
//! own allocations ([`Purpose::Kernel`]) may use the reserve.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rosv_frames::{Buddy, FRAME_SIZE, Link, ORDER_COUNT, ReferenceCounts};

use crate::memory::{MemoryMap, PhysicalRange, physical_to_virtual};
use crate::percpu::MAX_CPUS;
use crate::sync::SpinMutex;

/// Who a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The kernel itself: its heap, page tables. May use the reserve.
    Kernel,
    /// Memory an application asked for, directly or not: its pages, file
    /// pages. Leaves the reserve alone.
    Application,
    /// The stacks of a process's further threads: refused while the
    /// application still has a little room left (1/64 of RAM, between
    /// 128 KiB and 16 MiB), so that a program starting threads until it cannot gets
    /// `EAGAIN` with memory to spare for the threads it has, rather than
    /// running out on their first touch of a stack page.
    ApplicationThread,
}

/// A free-memory figure, for `/proc/meminfo` and `sysinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Frames the allocator manages (all free RAM at boot).
    pub total_frames: u64,
    /// Frames free now.
    pub free_frames: u64,
    /// Frames kept for the kernel.
    pub reserve_frames: u64,
    /// Frames the kernel heap holds.
    pub heap_frames: u64,
}

static BUDDY: SpinMutex<Option<Buddy<'static>>> = SpinMutex::new(None);
static REFERENCES: spin::Once<ReferenceCounts<'static>> = spin::Once::new();
static RESERVE_FRAMES: AtomicU64 = AtomicU64::new(0);
static HEAP_FRAMES: AtomicU64 = AtomicU64::new(0);
static THREAD_MARGIN_FRAMES: AtomicU64 = AtomicU64::new(0);

/// The reserve: 1/32 of RAM, at least 256 KiB and at most 32 MiB.
fn reserve_for(total_frames: u64) -> u64 {
    (total_frames / 32).clamp(64, 8192)
}

/// Places the frame tables and gives the allocator the free RAM below
/// `mapped_limit` (what the boot page tables reach). Returns the free
/// regions, for [`add_above`].
///
/// # Safety
/// `free` must be RAM that nothing else uses, below `mapped_limit` reachable
/// through the physical map; called once.
pub(crate) unsafe fn init(free: &MemoryMap, ram_end: u64, mapped_limit: u64) -> Result<(), ()> {
    let frame_count = ram_end.div_ceil(FRAME_SIZE);
    let per_frame = (core::mem::size_of::<Link>() + core::mem::size_of::<AtomicU32>()) as u64;
    // The tables go at the start of the largest free region below the
    // boot-mapped limit, covering as many frames as fit there.
    let home = free
        .regions()
        .iter()
        .filter(|region| region.start < mapped_limit)
        .max_by_key(|region| region.end().min(mapped_limit) - region.start)
        .ok_or(())?;
    let room = home.end().min(mapped_limit) - home.start;
    let covered = frame_count.min(room / per_frame / 2).min(u64::from(u32::MAX - 1));
    let links_bytes = covered * core::mem::size_of::<Link>() as u64;
    let counts_start = (home.start + links_bytes).next_multiple_of(8);
    let tables_end = (counts_start + covered * 4).next_multiple_of(FRAME_SIZE);
    // SAFETY: (1) both tables lie in free RAM below the mapped limit that
    // nothing else uses (the caller's contract), in the region's first
    // `tables_end - start` bytes, which the allocator never hands out
    // below; (2) each is written whole before a reference is made.
    let (links, counts) = unsafe {
        let links_pointer = physical_to_virtual(home.start) as *mut Link;
        for index in 0..covered as usize {
            links_pointer.add(index).write(Link::default());
        }
        let counts_pointer = physical_to_virtual(counts_start) as *mut AtomicU32;
        for index in 0..covered as usize {
            counts_pointer.add(index).write(AtomicU32::new(0));
        }
        (
            core::slice::from_raw_parts_mut(links_pointer, covered as usize),
            core::slice::from_raw_parts(counts_pointer, covered as usize),
        )
    };
    REFERENCES.call_once(|| ReferenceCounts::new(counts, 0));
    let mut buddy = Buddy::new(links, 0);
    let tables = PhysicalRange { start: home.start, size: tables_end - home.start };
    for region in free.regions() {
        let start = if region.start == home.start { tables.end() } else { region.start };
        let end = region.end().min(mapped_limit);
        if end > start {
            buddy.add_free_range(start / FRAME_SIZE, (end - start) / FRAME_SIZE);
        }
    }
    if covered < frame_count {
        log::warn!("frames: tables cover {} of {} MiB of RAM", covered >> 8, frame_count >> 8);
    }
    *BUDDY.lock() = Some(buddy);
    Ok(())
}

/// Gives the allocator the free RAM at and above `mapped_limit`, once the
/// kernel's page tables map it; then sets the reserve.
pub(crate) fn add_above(free: &MemoryMap, mapped_limit: u64) {
    let mut guard = BUDDY.lock();
    let Some(buddy) = guard.as_mut() else {
        return;
    };
    for region in free.regions() {
        let start = region.start.max(mapped_limit);
        if region.end() > start {
            buddy.add_free_range(start / FRAME_SIZE, (region.end() - start) / FRAME_SIZE);
        }
    }
    set_margins(buddy);
}

/// Gives the allocator more free RAM, mapped already and used by nothing
/// (low memory once boot is done).
pub(crate) fn add_free(free: &MemoryMap) {
    let mut guard = BUDDY.lock();
    let Some(buddy) = guard.as_mut() else {
        return;
    };
    for region in free.regions() {
        buddy.add_free_range(region.start / FRAME_SIZE, region.size / FRAME_SIZE);
    }
    set_margins(buddy);
}

fn set_margins(buddy: &Buddy<'static>) {
    BUDDY_FREE_FRAMES.store(buddy.free_frames(), Ordering::Relaxed);
    RESERVE_FRAMES.store(reserve_for(buddy.managed_frames()), Ordering::Relaxed);
    THREAD_MARGIN_FRAMES.store((buddy.managed_frames() / 64).clamp(32, 4096), Ordering::Relaxed);
}

/// The free frames `purpose` must leave.
fn keep_free_for(purpose: Purpose) -> u64 {
    let reserve = RESERVE_FRAMES.load(Ordering::Relaxed);
    match purpose {
        Purpose::Kernel => 0,
        Purpose::Application => reserve,
        Purpose::ApplicationThread => reserve + THREAD_MARGIN_FRAMES.load(Ordering::Relaxed),
    }
}

/// Takes a block of 2^`order` frames for `purpose`; its physical address.
/// The block starts with one user and is not zeroed.
pub fn allocate_block(order: usize, purpose: Purpose) -> Option<u64> {
    let keep_free = keep_free_for(purpose);
    let frame = if order == 0 {
        allocate_single(keep_free)?
    } else {
        // Cached single frames may be what a larger block lacks: give them
        // back and try again before failing.
        match allocate_from_buddy(order, keep_free) {
            Some(frame) => frame,
            None if CACHED_FRAMES.load(Ordering::Relaxed) > 0 => {
                drain_caches();
                allocate_from_buddy(order, keep_free)?
            }
            None => return None,
        }
    };
    if let Some(references) = REFERENCES.get() {
        references.start(frame, order == 0);
    }
    Some(frame * FRAME_SIZE)
}

/// Takes a block of 2^`order` frames from the buddy allocator, leaving
/// `keep_free` frames free, counting the cached ones.
fn allocate_from_buddy(order: usize, keep_free: u64) -> Option<u64> {
    let mut guard = BUDDY.lock();
    let buddy = guard.as_mut()?;
    let cached = CACHED_FRAMES.load(Ordering::Relaxed);
    let frame = buddy.allocate(order, keep_free.saturating_sub(cached));
    BUDDY_FREE_FRAMES.store(buddy.free_frames(), Ordering::Relaxed);
    frame
}

/// Frames a processor's cache holds at most.
const CACHE_CAPACITY: usize = 64;
/// Frames moved between a cache and the buddy allocator at a time.
const CACHE_BATCH: usize = 32;

/// A processor's free single frames, taken and given back without the
/// buddy allocator's lock. The buddy allocator counts them as allocated;
/// [`CACHED_FRAMES`] counts them as free.
struct FrameCache {
    frames: [u64; CACHE_CAPACITY],
    count: usize,
}

static CACHES: [SpinMutex<FrameCache>; MAX_CPUS] =
    [const { SpinMutex::new(FrameCache { frames: [0; CACHE_CAPACITY], count: 0 }) }; MAX_CPUS];
/// Frames in all processors' caches.
static CACHED_FRAMES: AtomicU64 = AtomicU64::new(0);
/// The buddy allocator's free frames after its last change.
static BUDDY_FREE_FRAMES: AtomicU64 = AtomicU64::new(0);

/// Takes one frame, leaving `keep_free` frames free: from this processor's
/// cache, refilled from the buddy allocator when empty; when both are
/// empty, every cache is given back first so that no frame is missed.
fn allocate_single(keep_free: u64) -> Option<u64> {
    let free = BUDDY_FREE_FRAMES.load(Ordering::Relaxed) + CACHED_FRAMES.load(Ordering::Relaxed);
    if free < keep_free + 1 {
        return allocate_single_exactly(keep_free);
    }
    {
        let mut cache = CACHES[crate::percpu::current_index()].lock();
        if cache.count == 0 {
            let mut guard = BUDDY.lock();
            let buddy = guard.as_mut()?;
            while cache.count < CACHE_BATCH
                && let Some(frame) = buddy.allocate(0, 0)
            {
                let slot = cache.count;
                cache.frames[slot] = frame;
                cache.count += 1;
            }
            CACHED_FRAMES.fetch_add(cache.count as u64, Ordering::Relaxed);
            BUDDY_FREE_FRAMES.store(buddy.free_frames(), Ordering::Relaxed);
        }
        if cache.count > 0 {
            cache.count -= 1;
            CACHED_FRAMES.fetch_sub(1, Ordering::Relaxed);
            return Some(cache.frames[cache.count]);
        }
    }
    allocate_single_exactly(keep_free)
}

/// Gives every cache back, then takes one frame from the buddy allocator
/// with its exact count.
fn allocate_single_exactly(keep_free: u64) -> Option<u64> {
    drain_caches();
    let mut guard = BUDDY.lock();
    let buddy = guard.as_mut()?;
    let frame = buddy.allocate(0, keep_free);
    BUDDY_FREE_FRAMES.store(buddy.free_frames(), Ordering::Relaxed);
    frame
}

/// Gives every processor's cached frames back to the buddy allocator.
fn drain_caches() {
    for cache in &CACHES {
        let mut cache = cache.lock();
        let count = cache.count;
        give_back(&cache.frames[..count]);
        cache.count = 0;
    }
}

/// Frees `frames`, taken from a cache, in the buddy allocator.
fn give_back(frames: &[u64]) {
    if frames.is_empty() {
        return;
    }
    let mut guard = BUDDY.lock();
    if let Some(buddy) = guard.as_mut() {
        for &frame in frames {
            if buddy.free(frame).is_err() {
                log::error!("frames: a cached frame {frame:#x} was not allocated");
            }
        }
        BUDDY_FREE_FRAMES.store(buddy.free_frames(), Ordering::Relaxed);
    }
    CACHED_FRAMES.fetch_sub(frames.len() as u64, Ordering::Relaxed);
}

/// Frees a single frame into this processor's cache, moving a batch to the
/// buddy allocator when the cache is full.
fn free_single(frame: u64) {
    let mut cache = CACHES[crate::percpu::current_index()].lock();
    if cache.count == CACHE_CAPACITY {
        let start = CACHE_CAPACITY - CACHE_BATCH;
        give_back(&cache.frames[start..]);
        cache.count = start;
    }
    let slot = cache.count;
    cache.frames[slot] = frame;
    cache.count += 1;
    CACHED_FRAMES.fetch_add(1, Ordering::Relaxed);
}

/// Takes one zeroed frame for `purpose`; its physical address.
pub fn allocate_zeroed(purpose: Purpose) -> Option<u64> {
    let paddr = allocate_block(0, purpose)?;
    // SAFETY: the frame was just allocated, so nothing else uses it, and
    // all frames the allocator hands out are reachable through the
    // physical map.
    unsafe { core::ptr::write_bytes(physical_to_virtual(paddr) as *mut u8, 0, FRAME_SIZE as usize) };
    Some(paddr)
}

/// Adds a user to the allocated block at `paddr`; `false` if it has none.
pub fn share(paddr: u64) -> bool {
    REFERENCES.get().is_some_and(|references| references.share(paddr / FRAME_SIZE))
}

/// The users of the block at `paddr`.
pub fn users(paddr: u64) -> u32 {
    REFERENCES.get().map_or(0, |references| references.count(paddr / FRAME_SIZE))
}

/// Drops a user of the block at `paddr`, freeing it when it was the last.
///
/// # Safety
/// The caller must be a user of the block (it allocated or shared it) and
/// must not touch it afterwards.
pub unsafe fn release(paddr: u64) {
    let frame = paddr / FRAME_SIZE;
    let Some(references) = REFERENCES.get() else {
        return;
    };
    if references.release(frame) != Some(true) {
        return;
    }
    if references.was_single(frame) {
        free_single(frame);
        return;
    }
    let mut guard = BUDDY.lock();
    if let Some(buddy) = guard.as_mut() {
        if buddy.free(frame).is_err() {
            log::error!("frames: release of {paddr:#x}, which is not an allocated block");
        }
        BUDDY_FREE_FRAMES.store(buddy.free_frames(), Ordering::Relaxed);
    }
}

/// Drops a reference the kernel's logic holds to an allocated frame (a
/// page it got from [`allocate_zeroed`] or [`share`]); nothing happens for
/// a frame without users. Giving up a reference one does not hold takes it
/// from another user, which then reads a frame that may be reused: the
/// logic's page type (`rosv_core::pages::Page`) releases each reference it
/// holds exactly once, on drop.
pub fn release_held(paddr: u64) {
    if users(paddr) > 0 {
        // SAFETY: the frame is allocated, and the caller gives up a
        // reference it holds (the contract above).
        unsafe { release(paddr) };
    }
}

/// What the allocator holds now.
pub fn usage() -> Usage {
    let guard = BUDDY.lock();
    let (total_frames, free_frames) =
        guard.as_ref().map_or((0, 0), |buddy| (buddy.managed_frames(), buddy.free_frames()));
    Usage {
        total_frames,
        free_frames: free_frames + CACHED_FRAMES.load(Ordering::Relaxed),
        reserve_frames: RESERVE_FRAMES.load(Ordering::Relaxed),
        heap_frames: HEAP_FRAMES.load(Ordering::Relaxed),
    }
}

/// Free blocks per order, for `/proc/buddyinfo`.
pub fn free_blocks() -> [u64; ORDER_COUNT] {
    let mut blocks = BUDDY.lock().as_ref().map_or([0; ORDER_COUNT], |buddy| buddy.free_blocks());
    blocks[0] += CACHED_FRAMES.load(Ordering::Relaxed);
    blocks
}

/// The largest allocation the heap serves: its blocks are at most half the
/// largest order (the rest leaves room for talc's own bookkeeping).
const HEAP_ALLOCATION_MAX: usize = (FRAME_SIZE as usize) << (ORDER_COUNT - 2);
/// The smallest block the heap takes at a time.
const HEAP_GROWTH_MIN_ORDER: usize = 6;

/// Grows the heap by claiming blocks of frames.
#[derive(Debug)]
pub(crate) struct HeapSource;

// SAFETY: `acquire` only takes frames from the buddy allocator (its own
// lock, never the heap's) and claims them for talc through the `talc`
// reference it is given; nothing here allocates.
unsafe impl talc::source::Source for HeapSource {
    fn acquire<B: talc::base::binning::Binning>(
        talc: &mut talc::base::Talc<Self, B>,
        layout: Layout,
    ) -> Result<(), ()> {
        let needed = (layout.size() as u64).saturating_add(layout.align() as u64).saturating_add(256);
        let smallest = rosv_frames::order_for_bytes(needed).ok_or(())?;
        // Grow by a generous block when one is free, by just enough if not.
        for order in [smallest.max(HEAP_GROWTH_MIN_ORDER), smallest] {
            let Some(paddr) = allocate_block(order, Purpose::Kernel) else {
                continue;
            };
            let size = (FRAME_SIZE as usize) << order;
            let base = physical_to_virtual(paddr) as *mut u8;
            // SAFETY: the block was just allocated for the heap alone, is
            // mapped through the physical map, and is never released.
            if unsafe { talc.claim(base, size) }.is_some() {
                HEAP_FRAMES.fetch_add(1 << order, Ordering::Relaxed);
                return Ok(());
            }
            // SAFETY: talc did not take the block; this code is its only user.
            unsafe { release(paddr) };
        }
        Err(())
    }
}

mod heap {
    use talc::TalcLock;

    use super::HeapSource;
    use crate::sync::RawSpinlock;

    /// The kernel heap, grown from page frames.
    pub(super) static TALC: TalcLock<RawSpinlock, HeapSource> = TalcLock::new(HeapSource);
}

/// The global allocator: talc, behind a check that refuses sizes no block
/// of frames could hold before they reach it.
struct KernelHeap;

#[global_allocator]
static HEAP: KernelHeap = KernelHeap;

// SAFETY: every call is forwarded to talc's `GlobalAlloc` with the same
// arguments, except that layouts larger than any heap block fail with null
// without reaching it, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HEAP_ALLOCATION_MAX {
            return core::ptr::null_mut();
        }
        // SAFETY: forwarded under the caller's contract.
        unsafe { heap::TALC.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HEAP_ALLOCATION_MAX {
            return core::ptr::null_mut();
        }
        // SAFETY: forwarded under the caller's contract.
        unsafe { heap::TALC.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded under the caller's contract.
        unsafe { heap::TALC.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HEAP_ALLOCATION_MAX {
            return core::ptr::null_mut();
        }
        // SAFETY: forwarded under the caller's contract.
        unsafe { heap::TALC.realloc(pointer, layout, new_size) }
    }
}

/// The address of `length` bytes at `offset` in the frame at `paddr`, if
/// the range lies within the frame and the frame has users.
fn frame_bytes(paddr: u64, offset: usize, length: usize) -> Option<*mut u8> {
    let end = offset.checked_add(length)?;
    if !paddr.is_multiple_of(FRAME_SIZE) || end > FRAME_SIZE as usize || users(paddr) == 0 {
        return None;
    }
    Some((physical_to_virtual(paddr) as usize + offset) as *mut u8)
}

/// Copies bytes of the frame at `paddr` from `offset` into `buffer`; does
/// nothing unless the frame is allocated and the range lies within it.
/// The caller is one of the frame's users.
pub fn read(paddr: u64, offset: usize, buffer: &mut [u8]) {
    if let Some(source) = frame_bytes(paddr, offset, buffer.len()) {
        // SAFETY: the range lies within an allocated frame, reachable
        // through the physical map; its users (the caller among them)
        // serialise their accesses to its bytes.
        unsafe { core::ptr::copy_nonoverlapping(source, buffer.as_mut_ptr(), buffer.len()) };
    }
}

/// Copies `bytes` into the frame at `paddr` at `offset`; does nothing
/// unless the frame is allocated and the range lies within it. Eight
/// bytes at an offset that is a multiple of 8 are one store, so a reader
/// on another processor (the vDSO reading the clock page) never sees half
/// of an old value and half of a new one.
pub fn write(paddr: u64, offset: usize, bytes: &[u8]) {
    if let Ok(word) = <[u8; 8]>::try_from(bytes)
        && offset.is_multiple_of(8)
        && let Some(target) = frame_bytes(paddr, offset, 8)
    {
        // SAFETY: as in `read`; the address is 8-byte aligned (the frame
        // is page aligned and the offset a multiple of 8), as an atomic
        // `u64` must be.
        let word_target = unsafe { core::sync::atomic::AtomicU64::from_ptr(target.cast::<u64>()) };
        word_target.store(u64::from_ne_bytes(word), core::sync::atomic::Ordering::Release);
        return;
    }
    if let Some(target) = frame_bytes(paddr, offset, bytes.len()) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), target, bytes.len()) };
    }
}

/// Copies the frame at `from` into the frame at `to`; does nothing unless
/// both are allocated.
pub fn copy(from: u64, to: u64) {
    let size = FRAME_SIZE as usize;
    if let (Some(source), Some(target)) = (frame_bytes(from, 0, size), frame_bytes(to, 0, size))
        && from != to
    {
        // SAFETY: as in `read`; two distinct frames do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(source, target, size) };
    }
}

/// Zeroes `length` bytes of the frame at `paddr` from `offset`, under the
/// same checks as [`write`].
pub fn zero(paddr: u64, offset: usize, length: usize) {
    if let Some(target) = frame_bytes(paddr, offset, length) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_bytes(target, 0, length) };
    }
}
