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
        3000
    }

    fn system_time_ns(&self) -> u64 {
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
    /// The page tables user copies go through (those the running thread
    /// uses); the machine starts with one set, which `new_page_tables`
    /// hands out again unless `separate_tables` is set.
    pub tables: Mutex<Arc<FakeTables>>,
    /// Whether `new_page_tables` makes new tables rather than handing out
    /// the current ones.
    pub separate_tables: std::sync::atomic::AtomicBool,
    pub console: Mutex<Vec<u8>>,
    pub now_ns: AtomicU64,
    /// The wall-clock time at monotonic time zero.
    pub realtime_at_zero_ns: AtomicU64,
    pub thread_pointer: AtomicU64,
    pub vdso: Option<crate::machine::Vdso>,
    /// The hardware generator's next word, counting up (0: no generator).
    pub hardware_random: AtomicU64,
}

/// Fake page tables: mapped pages, their rights and their frame in
/// [`FAKE_FRAMES`].
#[derive(Default)]
pub struct FakeTables {
    pub pages: Mutex<BTreeMap<u64, (Rights, u64)>>,
    /// How many more pages `map_page` may map (`None`: no bound).
    pub pages_left: Mutex<Option<usize>>,
}

impl crate::machine::PageTables for FakeTables {
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
        let frame = crate::pages::PageFrames::allocate(&FAKE_FRAMES).ok_or(MapFailure::OutOfMemory)?;
        pages.insert(page, (rights, frame));
        Ok(())
    }

    fn map_frame(&self, page: u64, frame: u64, rights: Rights) -> Result<bool, MapFailure> {
        use crate::pages::PageFrames;
        assert_eq!(page % PAGE_SIZE, 0);
        let mut pages = self.pages.lock().unwrap();
        if let Some((old_rights, old_frame)) = pages.get_mut(&page)
            && *old_frame == frame
        {
            *old_rights = rights;
            return Ok(false);
        }
        if !FAKE_FRAMES.share(frame) {
            return Err(MapFailure::OutOfMemory);
        }
        let old = pages.insert(page, (rights, frame));
        if let Some((_, old_frame)) = old {
            FAKE_FRAMES.release(old_frame);
        }
        Ok(old.is_some())
    }

    fn mapped_frame(&self, page: u64) -> Option<u64> {
        self.pages.lock().unwrap().get(&page).map(|(_, frame)| *frame)
    }

    fn move_range(&self, from: u64, to: u64, length: u64) -> Result<(), MapFailure> {
        let mut pages = self.pages.lock().unwrap();
        let moved: Vec<(u64, (Rights, u64))> =
            pages.range(from..from + length).map(|(page, entry)| (*page, *entry)).collect();
        for (page, entry) in moved {
            pages.remove(&page);
            pages.insert(to + (page - from), entry);
        }
        Ok(())
    }

    fn unmap_range(&self, start: u64, end: u64) {
        use crate::pages::PageFrames;
        self.pages.lock().unwrap().retain(|page, (_, frame)| {
            let is_kept = *page < start || *page >= end;
            if !is_kept {
                FAKE_FRAMES.release(*frame);
            }
            is_kept
        });
    }

    fn protect_range(&self, start: u64, end: u64, rights: Rights) {
        for (_, (page_rights, _)) in self.pages.lock().unwrap().range_mut(start..end) {
            *page_rights = rights;
        }
    }

    fn protect_private_range(&self, start: u64, end: u64, rights: Rights) {
        use crate::pages::PageFrames;
        for (_, (page_rights, frame)) in self.pages.lock().unwrap().range_mut(start..end) {
            *page_rights = rights;
            if FAKE_FRAMES.users(*frame) > 1 {
                page_rights.write = false;
            }
        }
    }

    fn make_private(&self, page: u64, rights: Rights) -> Result<bool, MapFailure> {
        use crate::pages::PageFrames;
        let mut pages = self.pages.lock().unwrap();
        let Some((page_rights, frame)) = pages.get_mut(&page) else {
            return Err(MapFailure::OutOfMemory);
        };
        *page_rights = rights;
        if FAKE_FRAMES.users(*frame) <= 1 {
            return Ok(false);
        }
        let copy = FAKE_FRAMES.allocate().ok_or(MapFailure::OutOfMemory)?;
        FAKE_FRAMES.copy(*frame, copy);
        FAKE_FRAMES.release(*frame);
        *frame = copy;
        Ok(true)
    }

    fn copy_into(
        &self,
        child: &dyn crate::machine::PageTables,
        start: u64,
        end: u64,
        copy_on_write: bool,
    ) -> Result<bool, MapFailure> {
        use crate::pages::PageFrames;
        let child = child.as_any().downcast_ref::<FakeTables>().ok_or(MapFailure::OutOfMemory)?;
        let mut is_restricted = false;
        let mut pages = self.pages.lock().unwrap();
        let mut child_pages = child.pages.lock().unwrap();
        for (page, (rights, frame)) in pages.range_mut(start..end) {
            if copy_on_write && rights.write {
                rights.write = false;
                is_restricted = true;
            }
            FAKE_FRAMES.share(*frame);
            child_pages.insert(*page, (*rights, *frame));
        }
        Ok(is_restricted)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn core::any::Any + Send + Sync> {
        self
    }
}

impl Drop for FakeTables {
    fn drop(&mut self) {
        use crate::pages::PageFrames;
        for (_, (_, frame)) in self.pages.lock().unwrap().iter() {
            FAKE_FRAMES.release(*frame);
        }
    }
}

impl FakeMachine {
    pub fn new() -> Self {
        let machine = Self::default();
        *machine.fpu.lock().unwrap() = vec![0x11; 512];
        machine.realtime_at_zero_ns.store(1_700_000_000_000_000_000, Ordering::Relaxed);
        machine
    }

    /// The tables user copies go through now.
    pub fn current_tables(&self) -> Arc<FakeTables> {
        self.tables.lock().unwrap().clone()
    }

    /// Maps a fresh page in the current tables.
    pub fn map_page(&self, page: u64, rights: Rights) -> Result<(), MapFailure> {
        crate::machine::PageTables::map_page(self.current_tables().as_ref(), page, rights)
    }

    pub fn rights(&self, page: u64) -> Option<Rights> {
        self.current_tables().pages.lock().unwrap().get(&page).map(|(rights, _)| *rights)
    }

    /// Lets `map_page` map only `pages` more pages.
    pub fn limit_pages(&self, pages: Option<usize>) {
        *self.current_tables().pages_left.lock().unwrap() = pages;
    }

    pub fn mapped_pages(&self) -> usize {
        self.current_tables().pages.lock().unwrap().len()
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
        let tables = self.current_tables();
        let pages = tables.pages.lock().unwrap();
        let mut cursor = address;
        while cursor < end {
            let page = cursor & !(PAGE_SIZE - 1);
            let (_, frame) = pages.get(&page).ok_or(BadAddress)?;
            let offset = (cursor - page) as usize;
            let chunk = ((page + PAGE_SIZE).min(end) - cursor) as usize;
            FAKE_FRAMES.with_frame(*frame, |bytes| {
                each(&mut bytes[offset..offset + chunk], (cursor - address) as usize, chunk)
            });
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

    fn new_page_tables(&self) -> Result<Arc<dyn crate::machine::PageTables>, MapFailure> {
        if self.separate_tables.load(Ordering::Relaxed) {
            return Ok(Arc::new(FakeTables::default()));
        }
        Ok(self.current_tables())
    }

    fn use_page_tables(&self, tables: &Arc<dyn crate::machine::PageTables>) {
        if let Ok(tables) = tables.clone().into_any().downcast::<FakeTables>() {
            *self.tables.lock().unwrap() = tables;
        }
    }

    fn monotonic_ns(&self) -> u64 {
        self.now_ns.load(Ordering::Relaxed)
    }

    fn realtime_ns(&self) -> u64 {
        self.realtime_at_zero_ns.load(Ordering::Relaxed).wrapping_add(self.monotonic_ns())
    }

    fn set_realtime_ns(&self, realtime_ns: u64) {
        self.realtime_at_zero_ns.store(realtime_ns.wrapping_sub(self.monotonic_ns()), Ordering::Relaxed);
    }

    fn set_thread_pointer(&self, address: u64) {
        self.thread_pointer.store(address, Ordering::Relaxed);
    }

    fn thread_pointer(&self) -> u64 {
        self.thread_pointer.load(Ordering::Relaxed)
    }

    fn hardware_random(&self) -> Option<u64> {
        match self.hardware_random.load(Ordering::Relaxed) {
            0 => None,
            _ => Some(self.hardware_random.fetch_add(1, Ordering::Relaxed)),
        }
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
        _process: &Arc<crate::process::Process>,
        thread: Arc<crate::process::Thread>,
        _tables: &Arc<dyn crate::machine::PageTables>,
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
    pub fn with_frame(&self, frame: u64, each: impl FnOnce(&mut Vec<u8>)) {
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

    fn users(&self, frame: u64) -> u32 {
        self.frames.lock().unwrap().get(&frame).map_or(0, |(count, _)| *count)
    }

    fn read(&self, frame: u64, offset: usize, buffer: &mut [u8]) {
        self.with_frame(frame, |bytes| buffer.copy_from_slice(&bytes[offset..offset + buffer.len()]));
    }

    fn write(&self, frame: u64, offset: usize, bytes: &[u8]) {
        self.with_frame(frame, |page| page[offset..offset + bytes.len()].copy_from_slice(bytes));
    }

    fn copy(&self, from: u64, to: u64) {
        let mut bytes = vec![0; PAGE_SIZE as usize];
        self.with_frame(from, |page| bytes.copy_from_slice(page));
        self.with_frame(to, |page| page.copy_from_slice(&bytes));
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

/// An empty address space on `machine`'s tables.
pub fn address_space(machine: &FakeMachine) -> crate::memory::AddressSpace {
    crate::memory::AddressSpace::new(machine.new_page_tables().unwrap())
}
