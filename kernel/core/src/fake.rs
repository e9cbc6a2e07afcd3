//! A fake machine for host tests: pages in a map, a settable clock, a
//! captured console.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::vec::Vec;

use std::sync::Arc;

use crate::machine::{BadAddress, Machine, MapFailure, Registers, Rights, ThreadControl, Wakeup};
use crate::memory::{APPLICATION_END, PAGE_SIZE};

/// A thread that records what was asked of it.
#[derive(Default)]
pub struct FakeThread {
    pub wakes: std::sync::atomic::AtomicUsize,
    pub exit_requests: std::sync::atomic::AtomicUsize,
    pub affinity: AtomicU64,
}

impl ThreadControl for FakeThread {
    fn wake(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
    }

    fn request_exit(&self) {
        self.exit_requests.fetch_add(1, Ordering::Relaxed);
    }

    fn notify_signal(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
    }

    fn cpu_time_ns(&self) -> u64 {
        1000
    }

    fn set_affinity(&self, mask: u64) {
        self.affinity.store(mask, Ordering::Relaxed);
    }

    fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct FakeMachine {
    pub fpu: Mutex<Vec<u8>>,
    pub current: Arc<FakeThread>,
    pub spawned: Mutex<Vec<(Registers, u64, u64)>>,
    pub pages: Mutex<BTreeMap<u64, (Rights, Vec<u8>)>>,
    pub console: Mutex<Vec<u8>>,
    pub now_ns: AtomicU64,
    pub thread_pointer: AtomicU64,
    pub vdso: Option<crate::machine::Vdso>,
    /// How many more pages `map_page` may map (`None`: no bound).
    pub pages_left: Mutex<Option<usize>>,
}

impl FakeMachine {
    pub fn new() -> Self {
        let machine = Self::default();
        *machine.fpu.lock().unwrap() = vec![0x11; 512];
        machine
    }

    pub fn rights(&self, page: u64) -> Option<Rights> {
        self.pages.lock().unwrap().get(&page).map(|(rights, _)| *rights)
    }

    /// Lets `map_page` map only `pages` more pages.
    pub fn limit_pages(&self, pages: Option<usize>) {
        *self.pages_left.lock().unwrap() = pages;
    }

    pub fn mapped_pages(&self) -> usize {
        self.pages.lock().unwrap().len()
    }

    pub fn console_text(&self) -> String {
        String::from_utf8_lossy(&self.console.lock().unwrap()).into_owned()
    }

    fn access(
        &self,
        address: u64,
        length: usize,
        mut each: impl FnMut(&mut [u8], usize, usize),
    ) -> Result<(), BadAddress> {
        let end = address.checked_add(length as u64).ok_or(BadAddress)?;
        if end > APPLICATION_END {
            return Err(BadAddress);
        }
        let mut pages = self.pages.lock().unwrap();
        let mut cursor = address;
        while cursor < end {
            let page = cursor & !(PAGE_SIZE - 1);
            let (_, bytes) = pages.get_mut(&page).ok_or(BadAddress)?;
            let offset = (cursor - page) as usize;
            let chunk = ((page + PAGE_SIZE).min(end) - cursor) as usize;
            each(&mut bytes[offset..offset + chunk], (cursor - address) as usize, chunk);
            cursor += chunk as u64;
        }
        Ok(())
    }
}

impl Machine for FakeMachine {
    fn console_write(&self, bytes: &[u8]) {
        self.console.lock().unwrap().extend_from_slice(bytes);
    }

    fn read_memory(&self, address: u64, buffer: &mut [u8]) -> Result<(), BadAddress> {
        self.access(address, buffer.len(), |page, at, length| buffer[at..at + length].copy_from_slice(page))
    }

    fn write_memory(&self, address: u64, bytes: &[u8]) -> Result<(), BadAddress> {
        self.access(address, bytes.len(), |page, at, length| page.copy_from_slice(&bytes[at..at + length]))
    }

    fn map_page(&self, page: u64, rights: Rights) -> Result<(), MapFailure> {
        assert_eq!(page % PAGE_SIZE, 0);
        let mut pages = self.pages.lock().unwrap();
        if pages.contains_key(&page) {
            return Err(MapFailure::AlreadyMapped);
        }
        if let Some(left) = self.pages_left.lock().unwrap().as_mut() {
            if *left == 0 {
                return Err(MapFailure::OutOfMemory);
            }
            *left -= 1;
        }
        pages.insert(page, (rights, vec![0; PAGE_SIZE as usize]));
        Ok(())
    }

    fn unmap_range(&self, start: u64, end: u64) {
        self.pages.lock().unwrap().retain(|page, _| *page < start || *page >= end);
    }

    fn protect_range(&self, start: u64, end: u64, rights: Rights) {
        for (_, (page_rights, _)) in self.pages.lock().unwrap().range_mut(start..end) {
            *page_rights = rights;
        }
    }

    fn monotonic_ns(&self) -> u64 {
        self.now_ns.load(Ordering::Relaxed)
    }

    fn realtime_ns(&self) -> u64 {
        1_700_000_000_000_000_000 + self.monotonic_ns()
    }

    fn set_thread_pointer(&self, address: u64) {
        self.thread_pointer.store(address, Ordering::Relaxed);
    }

    fn thread_pointer(&self) -> u64 {
        self.thread_pointer.load(Ordering::Relaxed)
    }

    fn hardware_random(&self) -> Option<u64> {
        None
    }

    fn hardware_capabilities(&self) -> u64 {
        0x178b_fbff
    }

    fn load_u32(&self, address: u64) -> Result<u32, BadAddress> {
        let mut bytes = [0u8; 4];
        self.read_memory(address, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn compare_exchange_u32(
        &self,
        address: u64,
        expected: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, BadAddress> {
        let old = self.load_u32(address)?;
        if old != expected {
            return Ok(Err(old));
        }
        self.write_memory(address, &new.to_le_bytes())?;
        Ok(Ok(old))
    }

    fn synchronize_mappings(&self) {}

    fn current_thread(&self) -> Arc<dyn ThreadControl> {
        self.current.clone()
    }

    /// A block returns at once (a spurious wake-up), with the clock moved
    /// to the deadline if there is one; tests that run several host threads
    /// against one machine see their waits spin.
    fn block(&self, deadline_ns: Option<u64>) -> Wakeup {
        std::thread::yield_now();
        if let Some(deadline) = deadline_ns {
            self.now_ns.fetch_max(deadline, Ordering::Relaxed);
        }
        if self.current.exit_requests.load(Ordering::Relaxed) > 0 { Wakeup::Stop } else { Wakeup::Normal }
    }

    fn yield_now(&self) {}

    fn spawn_thread(
        &self,
        registers: &Registers,
        thread_pointer: u64,
        thread: Arc<crate::process::Thread>,
    ) -> Result<Arc<dyn ThreadControl>, MapFailure> {
        self.spawned.lock().unwrap().push((*registers, thread_pointer, thread.tid));
        Ok(Arc::new(FakeThread::default()))
    }

    fn save_fpu(&self) -> Vec<u8> {
        self.fpu.lock().unwrap().clone()
    }

    fn restore_fpu(&self, state: &[u8]) {
        *self.fpu.lock().unwrap() = state.to_vec();
    }

    fn cpu_count(&self) -> usize {
        4
    }

    fn current_cpu(&self) -> usize {
        2
    }

    fn vdso(&self) -> Option<crate::machine::Vdso> {
        self.vdso
    }
}

/// Page frames made of host memory, shared by every test (frames are
/// numbered, not real addresses). A test thread can bound how many more
/// it may take, to exercise running out of memory.
pub struct FakeFrames {
    frames: Mutex<BTreeMap<u64, (u32, Vec<u8>)>>,
    next: AtomicU64,
}

pub static FAKE_FRAMES: FakeFrames =
    FakeFrames { frames: Mutex::new(BTreeMap::new()), next: AtomicU64::new(1) };

std::thread_local! {
    static PAGES_LEFT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Lets the calling test thread allocate only `pages` more pages (`None`:
/// no bound).
pub fn limit_pages(pages: Option<u64>) {
    PAGES_LEFT.with(|left| left.set(pages));
}

impl FakeFrames {
    fn with_frame(&self, frame: u64, each: impl FnOnce(&mut Vec<u8>)) {
        if let Some((_, bytes)) = self.frames.lock().unwrap().get_mut(&frame) {
            each(bytes);
        }
    }

    /// Frames held now, by every test.
    pub fn held(&self) -> usize {
        self.frames.lock().unwrap().len()
    }
}

impl crate::pages::PageFrames for FakeFrames {
    fn allocate(&self) -> Option<u64> {
        let is_allowed = PAGES_LEFT.with(|left| match left.get() {
            Some(0) => false,
            Some(count) => {
                left.set(Some(count - 1));
                true
            }
            None => true,
        });
        if !is_allowed {
            return None;
        }
        let frame = self.next.fetch_add(1, Ordering::Relaxed) * PAGE_SIZE;
        self.frames.lock().unwrap().insert(frame, (1, vec![0; PAGE_SIZE as usize]));
        Some(frame)
    }

    fn share(&self, frame: u64) -> bool {
        match self.frames.lock().unwrap().get_mut(&frame) {
            Some((count, _)) => {
                *count += 1;
                true
            }
            None => false,
        }
    }

    fn release(&self, frame: u64) {
        let mut frames = self.frames.lock().unwrap();
        if let Some((count, _)) = frames.get_mut(&frame) {
            *count -= 1;
            if *count == 0 {
                frames.remove(&frame);
            }
        }
    }

    fn read(&self, frame: u64, offset: usize, buffer: &mut [u8]) {
        self.with_frame(frame, |bytes| buffer.copy_from_slice(&bytes[offset..offset + buffer.len()]));
    }

    fn write(&self, frame: u64, offset: usize, bytes: &[u8]) {
        self.with_frame(frame, |page| page[offset..offset + bytes.len()].copy_from_slice(bytes));
    }

    fn zero(&self, frame: u64, offset: usize, length: usize) {
        self.with_frame(frame, |page| page[offset..offset + length].fill(0));
    }

    fn figures(&self) -> crate::pages::MemoryFigures {
        let total_bytes = 128 << 20;
        let used = self.held() as u64 * PAGE_SIZE;
        crate::pages::MemoryFigures {
            total_bytes,
            free_bytes: total_bytes.saturating_sub(used),
            reserve_bytes: 4 << 20,
            heap_bytes: 0,
        }
    }
}
