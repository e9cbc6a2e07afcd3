//! The platform's services, offered to the kernel's logic.

use alloc::sync::Arc;

use rosv_core::machine::{
    BadAddress, Machine, MapFailure, PageTables, ProcessorTimes, Registers, Rights, ThreadControl, Wakeup,
};
use rosv_core::process::Thread as ApplicationThreadState;
use rosv_platform::interrupts::InterruptFrame;
use rosv_platform::paging::{ApplicationTables, MapError, PageRights};
use rosv_platform::sched::{self, FpuState, Thread};
use rosv_platform::syscall::SyscallFrame;
use rosv_platform::{console, cpu, frames, time, tlb, user};

use crate::application::ApplicationThread;

/// The machine the kernel runs on.
pub struct PlatformMachine {
    /// `AT_HWCAP`.
    pub hardware_capabilities: u64,
}

/// A scheduler thread, as the kernel's logic controls it.
pub struct KernelThread(pub Arc<Thread>);

impl ThreadControl for KernelThread {
    fn wake(&self) {
        sched::unpark(&self.0);
    }

    fn request_exit(&self) {
        sched::request_stop(&self.0);
    }

    fn notify_signal(&self) {
        sched::request_attention(&self.0);
        sched::unpark(&self.0);
    }

    fn cpu_time_ns(&self) -> u64 {
        self.0.cpu_time_ns()
    }

    fn system_time_ns(&self) -> u64 {
        self.0.system_time_ns()
    }

    fn is_blocked(&self) -> bool {
        self.0.is_blocked()
    }

    fn context_switches(&self) -> (u64, u64) {
        self.0.context_switches()
    }

    fn set_affinity(&self, mask: u64) {
        self.0.set_affinity(mask);
    }

    fn affinity(&self) -> u64 {
        self.0.affinity()
    }

    fn set_real_time(&self, priority: u8, is_fifo: bool) {
        self.0.set_real_time(priority, is_fifo);
    }
}

fn page_rights(rights: Rights) -> PageRights {
    PageRights {
        is_accessible: rights.is_accessible(),
        is_writable: rights.write,
        is_executable: rights.execute,
    }
}

/// The registers of a system call frame.
pub fn registers(frame: &SyscallFrame) -> Registers {
    Registers {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rip,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        rsp: frame.rsp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.rflags,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rflags: frame.rflags,
    }
}

/// A system call frame that resumes `registers`.
pub fn frame(registers: &Registers) -> SyscallFrame {
    let mut frame = SyscallFrame::default();
    write_frame(&mut frame, registers);
    frame
}

/// Makes `frame` resume `registers`.
pub fn write_frame(frame: &mut SyscallFrame, registers: &Registers) {
    *frame = SyscallFrame {
        r15: registers.r15,
        r14: registers.r14,
        r13: registers.r13,
        r12: registers.r12,
        rbp: registers.rbp,
        rbx: registers.rbx,
        r9: registers.r9,
        r8: registers.r8,
        r10: registers.r10,
        rdx: registers.rdx,
        rsi: registers.rsi,
        rdi: registers.rdi,
        rax: registers.rax,
        rflags: registers.rflags,
        rip: registers.rip,
        rsp: registers.rsp,
    };
}

impl Machine for PlatformMachine {
    fn console_write(&self, bytes: &[u8]) {
        console::write_bytes(bytes);
    }

    fn read_memory(&self, address: u64, buffer: &mut [u8]) -> Result<(), BadAddress> {
        user::read(address, buffer).map_err(|_| BadAddress)
    }

    fn write_memory(&self, address: u64, bytes: &[u8]) -> Result<(), BadAddress> {
        user::write(address, bytes).map_err(|_| BadAddress)
    }

    fn new_page_tables(&self) -> Result<Arc<dyn PageTables>, MapFailure> {
        let tables = ApplicationTables::new().ok_or(MapFailure::OutOfMemory)?;
        Ok(Arc::new(PlatformTables(tables)))
    }

    fn use_page_tables(&self, tables: &Arc<dyn PageTables>) {
        if let Some(tables) = platform_tables(tables) {
            let root = tables.0.root();
            sched::load_page_tables(root, Some(tables));
        }
    }

    fn monotonic_ns(&self) -> u64 {
        time::since_boot_ns()
    }

    fn realtime_ns(&self) -> u64 {
        time::realtime_ns()
    }

    fn set_realtime_ns(&self, realtime_ns: u64) {
        time::set_realtime_ns(realtime_ns);
    }

    fn vdso(&self) -> Option<rosv_core::machine::Vdso> {
        let clock = time::clock_parameters();
        Some(rosv_core::machine::Vdso {
            image: rosv_platform::vdso::image(),
            tsc_base: clock.tsc_base,
            tsc_to_ns_multiplier: clock.tsc_to_ns_multiplier,
            realtime_offset_ns: clock.realtime_offset_ns,
        })
    }

    fn set_thread_pointer(&self, address: u64) {
        cpu::set_fs_base(address);
    }

    fn thread_pointer(&self) -> u64 {
        cpu::fs_base()
    }

    fn hardware_random(&self) -> Option<u64> {
        cpu::hardware_random()
    }

    fn hardware_capabilities(&self) -> u64 {
        self.hardware_capabilities
    }

    fn load_u32(&self, address: u64) -> Result<u32, BadAddress> {
        user::load_u32(address).map_err(|_| BadAddress)
    }

    fn compare_exchange_u32(
        &self,
        address: u64,
        expected: u32,
        new: u32,
    ) -> Result<Result<u32, u32>, BadAddress> {
        user::compare_exchange_u32(address, expected, new).map_err(|_| BadAddress)
    }

    fn synchronize_mappings(&self) {
        tlb::synchronize();
    }

    fn current_thread(&self) -> Arc<dyn ThreadControl> {
        Arc::new(KernelThread(sched::current()))
    }

    fn block(&self, deadline_ns: Option<u64>) -> Wakeup {
        sched::park_until(deadline_ns.map(time::boot_ns_to_tsc));
        if sched::current().is_stop_requested() { Wakeup::Stop } else { Wakeup::Normal }
    }

    fn note_wait(&self, name: &'static &'static str, address: u64) {
        sched::note_wait(name, address);
    }

    fn yield_now(&self) {
        sched::yield_now();
    }

    fn spawn_thread(
        &self,
        registers: &Registers,
        thread_pointer: u64,
        process: &Arc<rosv_core::process::Process>,
        thread: Arc<ApplicationThreadState>,
        tables: &Arc<dyn PageTables>,
    ) -> Result<Arc<dyn ThreadControl>, MapFailure> {
        let tables = platform_tables(tables).ok_or(MapFailure::OutOfMemory)?;
        let name = alloc::format!("thread {}", thread.tid);
        let application = Arc::new(ApplicationThread::new(process.clone(), thread.clone()));
        // The caller's floating-point registers are live: the kernel never
        // touches them.
        let spawned = sched::spawn_application(
            &name,
            &frame(registers),
            thread_pointer,
            FpuState::capture(),
            frames::Purpose::ApplicationThread,
            |new| {
                new.set_process_id(process.pid);
                new.attach(application);
                new.set_page_tables(tables.0.root(), Some(tables.clone()));
                thread.set_control(Arc::new(KernelThread(new.clone())));
            },
        )
        .ok_or(MapFailure::OutOfMemory)?;
        Ok(Arc::new(KernelThread(spawned)))
    }

    fn save_fpu(&self) -> alloc::vec::Vec<u8> {
        FpuState::capture_bytes()
    }

    fn restore_fpu(&self, state: &[u8]) {
        FpuState::restore_bytes(state);
    }

    fn spawn_service(&self, name: &str, entry: rosv_core::machine::ServiceEntry) -> bool {
        let machine = PlatformMachine { hardware_capabilities: self.hardware_capabilities };
        sched::spawn_kernel(name, move || entry(&machine)).is_some()
    }

    fn barrier_all_processors(&self) {
        // A shootdown interrupts every other processor and waits until each
        // has handled it: each has passed a serialising event since.
        tlb::synchronize();
    }

    fn kernel_log(&self, since: u64) -> (alloc::vec::Vec<u8>, u64) {
        rosv_platform::kernel_log::read_since(since)
    }

    fn cpu_count(&self) -> usize {
        sched::cpu_count()
    }

    fn processor_times(&self, cpu: usize) -> ProcessorTimes {
        let times = sched::cpu_times(cpu);
        ProcessorTimes { user_ns: times.user_ns, system_ns: times.system_ns, idle_ns: times.idle_ns }
    }

    fn current_cpu(&self) -> usize {
        sched::current_cpu()
    }
}

/// The registers of interrupted application code.
pub fn interrupted_registers(frame: &InterruptFrame) -> Registers {
    Registers {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        rsp: frame.rsp,
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: frame.rip,
        rflags: frame.rflags,
    }
}

/// Makes `frame` resume `registers` (its vector, error code and segments
/// stay as they are).
pub fn write_interrupt_frame(frame: &mut InterruptFrame, registers: &Registers) {
    frame.rax = registers.rax;
    frame.rbx = registers.rbx;
    frame.rcx = registers.rcx;
    frame.rdx = registers.rdx;
    frame.rsi = registers.rsi;
    frame.rdi = registers.rdi;
    frame.rbp = registers.rbp;
    frame.rsp = registers.rsp;
    frame.r8 = registers.r8;
    frame.r9 = registers.r9;
    frame.r10 = registers.r10;
    frame.r11 = registers.r11;
    frame.r12 = registers.r12;
    frame.r13 = registers.r13;
    frame.r14 = registers.r14;
    frame.r15 = registers.r15;
    frame.rip = registers.rip;
    frame.rflags = registers.rflags;
}

/// An interrupt frame that resumes `registers`.
pub fn interrupt_frame(registers: &Registers) -> InterruptFrame {
    let mut frame = InterruptFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: 0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error_code: 0,
        rip: 0,
        cs: 0,
        rflags: 0,
        rsp: 0,
        ss: 0,
    };
    write_interrupt_frame(&mut frame, registers);
    frame
}

/// Says once that guest memory ran out, which the application's own error
/// (a failed `mmap`, a loader message) does not.
fn report_memory_exhausted() {
    static IS_REPORTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !IS_REPORTED.swap(true, core::sync::atomic::Ordering::Relaxed) {
        log::warn!(
            "guest memory is exhausted: the application asked for more; give the VM more memory (--memory)"
        );
    }
}

/// An address space's page tables, as the kernel's logic drives them.
pub struct PlatformTables(pub Arc<ApplicationTables>);

/// Makes `thread` run on `tables` (made by this machine) from its next
/// switch in.
pub fn set_thread_tables(thread: &Thread, tables: &Arc<dyn PageTables>) {
    if let Some(tables) = platform_tables(tables) {
        thread.set_page_tables(tables.0.root(), Some(tables));
    }
}

/// The platform's tables behind `tables` (made by this machine).
fn platform_tables(tables: &Arc<dyn PageTables>) -> Option<Arc<PlatformTables>> {
    tables.clone().into_any().downcast::<PlatformTables>().ok()
}

fn map_failure(error: MapError) -> MapFailure {
    match error {
        MapError::AlreadyMapped => MapFailure::AlreadyMapped,
        MapError::OutOfMemory => {
            report_memory_exhausted();
            MapFailure::OutOfMemory
        }
        MapError::NotApplicationPage => MapFailure::OutOfMemory,
    }
}

impl PageTables for PlatformTables {
    fn map_page(&self, page: u64, rights: Rights) -> Result<(), MapFailure> {
        self.0.map_page(page, page_rights(rights)).map_err(map_failure)
    }

    fn map_frame(&self, page: u64, frame: u64, rights: Rights) -> Result<bool, MapFailure> {
        self.0.map_frame(page, frame, page_rights(rights)).map_err(map_failure)
    }

    fn mapped_frame(&self, page: u64) -> Option<u64> {
        self.0.frame_at(page)
    }

    fn count_mapped(&self, start: u64, end: u64) -> u64 {
        self.0.count_mapped(start, end)
    }

    fn unmap_range(&self, start: u64, end: u64) {
        self.0.unmap_range(start, end);
    }

    fn protect_range(&self, start: u64, end: u64, rights: Rights) {
        self.0.protect_range(start, end, page_rights(rights));
    }

    fn protect_private_range(&self, start: u64, end: u64, rights: Rights) {
        self.0.protect_private_range(start, end, page_rights(rights));
    }

    fn make_private(&self, page: u64, rights: Rights) -> Result<bool, MapFailure> {
        self.0.make_private(page, page_rights(rights)).map_err(map_failure)
    }

    fn move_range(&self, from: u64, to: u64, length: u64) -> Result<(), MapFailure> {
        self.0.move_range(from, to, length).map_err(map_failure)
    }

    fn copy_into(
        &self,
        child: &dyn PageTables,
        start: u64,
        end: u64,
        copy_on_write: bool,
    ) -> Result<bool, MapFailure> {
        let child = child.as_any().downcast_ref::<PlatformTables>().ok_or(MapFailure::OutOfMemory)?;
        self.0.copy_into(&child.0, start, end, copy_on_write).map_err(map_failure)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn core::any::Any + Send + Sync> {
        self
    }
}

/// The platform's frame allocator, as the kernel's logic uses it for the
/// pages it owns (file contents).
pub struct PlatformFrames;

impl rosv_core::pages::PageFrames for PlatformFrames {
    fn allocate(&self) -> Option<u64> {
        frames::allocate_zeroed(frames::Purpose::Application)
    }

    fn share(&self, frame: u64) -> bool {
        frames::share(frame)
    }

    fn release(&self, frame: u64) {
        frames::release_held(frame);
    }

    fn users(&self, frame: u64) -> u32 {
        frames::users(frame)
    }

    fn read(&self, frame: u64, offset: usize, buffer: &mut [u8]) {
        frames::read(frame, offset, buffer);
    }

    fn write(&self, frame: u64, offset: usize, bytes: &[u8]) {
        frames::write(frame, offset, bytes);
    }

    fn zero(&self, frame: u64, offset: usize, length: usize) {
        frames::zero(frame, offset, length);
    }

    fn copy(&self, from: u64, to: u64) {
        frames::copy(from, to);
    }

    fn figures(&self) -> rosv_core::pages::MemoryFigures {
        let usage = frames::usage();
        let bytes = |frames: u64| frames * rosv_platform::memory::PAGE_SIZE;
        rosv_core::pages::MemoryFigures {
            total_bytes: bytes(usage.total_frames),
            free_bytes: bytes(usage.free_frames),
            reserve_bytes: bytes(usage.reserve_frames),
            heap_bytes: bytes(usage.heap_frames),
        }
    }
}
