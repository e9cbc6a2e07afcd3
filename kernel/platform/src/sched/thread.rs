//! Threads: their stacks, saved context and per-thread processor state.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use super::fpu::FpuState;
use crate::frames::{self, Purpose};
use crate::memory;
use crate::scheduling_policy::Schedulable;
use crate::sync::SpinMutex;
use crate::syscall::SyscallFrame;

/// Size of a guard page: unmapped, under each stack of a normal thread.
const GUARD_SIZE: usize = 4096;
/// Size of an application or kernel thread's kernel stack: the rest of its
/// 128 KiB block.
const KERNEL_STACK_SIZE: usize = 128 * 1024 - 2 * TRAP_STACK_SIZE - 3 * GUARD_SIZE;
/// Size of each of a thread's exception and interrupt stacks.
const TRAP_STACK_SIZE: usize = 16 * 1024;
/// Stack sizes of an idle thread, which has no guard pages.
const IDLE_KERNEL_STACK_SIZE: usize = 16 * 1024;
const IDLE_TRAP_STACK_SIZE: usize = 8 * 1024;

/// Which of a thread's stacks a guard page sits under.
const GUARDED_STACKS: [&str; 3] = ["exception", "interrupt", "kernel"];

/// A thread's stacks: one block of frames, given back when the thread is
/// freed. From its lowest address: the exception stack, the interrupt
/// stack, the kernel stack, each with a guard page under it unless the
/// thread is an idle loop.
struct Stacks {
    paddr: u64,
    /// The guarded pages' physical addresses (0: none).
    guards: [u64; 3],
}

impl Stacks {
    /// A block of at least `size` bytes for `purpose`.
    fn allocate(size: usize, purpose: Purpose) -> Option<Self> {
        let order = rosv_frames::order_for_bytes(size as u64)?;
        frames::allocate_block(order, purpose).map(|paddr| Stacks { paddr, guards: [0; 3] })
    }

    /// Guards the page at `offset` from the block's start as the one under
    /// stack number `which`.
    fn guard(&mut self, which: usize, offset: usize) {
        let paddr = self.paddr + offset as u64;
        if crate::paging::guard_physical_page(paddr) {
            self.guards[which] = paddr;
        }
    }

    /// The lowest address of the block, in the physical map.
    fn base(&self) -> u64 {
        memory::physical_to_virtual(self.paddr)
    }

    /// The stack whose guard page holds `vaddr` (a physical-map address).
    fn guarded_stack_at(&self, vaddr: u64) -> Option<&'static str> {
        if vaddr < memory::PHYSICAL_MAP_OFFSET {
            return None;
        }
        let paddr = memory::virtual_to_physical(vaddr);
        let page = paddr & !(GUARD_SIZE as u64 - 1);
        self.guards.iter().position(|&guard| guard != 0 && guard == page).map(|which| GUARDED_STACKS[which])
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        for &guard in self.guards.iter().filter(|&&guard| guard != 0) {
            crate::paging::unguard_physical_page(guard);
        }
        // SAFETY: the block was allocated for these stacks alone, and a
        // thread is freed only once no processor runs on its stacks.
        unsafe { frames::release(self.paddr) };
    }
}

/// Thread states.
pub(super) const RUNNING: u8 = 0;
pub(super) const RUNNABLE: u8 = 1;
pub(super) const BLOCKED: u8 = 2;
pub(super) const EXITED: u8 = 3;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Every thread that exists, by id: the address of its `Thread` (inside its
/// `Arc`), entered when it is made and removed when it is dropped, so that
/// a report of a stuck machine can list them all without holding a
/// reference (dropping the last one in an NMI handler would free memory
/// there). Holding the lock keeps every listed thread alive.
pub(super) static REGISTRY: SpinMutex<BTreeMap<u64, usize>> = SpinMutex::new(BTreeMap::new());

/// Enters `thread` in the [`REGISTRY`].
fn registered(thread: Thread) -> Arc<Thread> {
    let thread = Arc::new(thread);
    REGISTRY.lock().insert(thread.id, Arc::as_ptr(&thread) as usize);
    thread
}

/// What a thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// Kernel code.
    Kernel,
    /// Application code (has floating-point state and an FS base).
    Application,
    /// A processor's idle loop.
    Idle,
}

/// The tops of a thread's stacks.
#[derive(Debug, Clone, Copy)]
pub(super) struct StackTops {
    pub kernel: u64,
    pub exception: u64,
    pub interrupt: u64,
    /// The size of the kernel stack, and of each trap stack.
    pub kernel_size: u64,
    pub trap_size: u64,
}

/// A kernel-scheduled thread.
pub struct Thread {
    id: u64,
    name: String,
    kind: ThreadKind,
    pub(super) state: AtomicU8,
    pub(super) wake_token: AtomicBool,
    /// Set while a processor runs the thread or is still switching away from
    /// it; another processor must wait for it to clear before running it.
    pub(super) on_cpu: AtomicBool,
    pub(super) last_cpu: AtomicUsize,
    affinity: AtomicU64,
    /// Real-time priority (0: a normal thread).
    real_time_priority: AtomicU8,
    /// Whether a real-time thread is `SCHED_FIFO` (else round-robin).
    is_fifo: AtomicBool,
    pub(super) saved_rsp: UnsafeCell<u64>,
    stacks: Stacks,
    pub(super) stack_tops: StackTops,
    pub(super) fpu: Option<UnsafeCell<FpuState>>,
    pub(super) fs_base: AtomicU64,
    cpu_time_ns: AtomicU64,
    /// The part of its processor time spent in the kernel (see
    /// [`super::accounting`]).
    pub(super) system_time_ns: AtomicU64,
    /// It was switched away inside the kernel (or has not run its own code
    /// yet): its stint there goes on when it runs again.
    pub(super) is_in_kernel: AtomicBool,
    /// Switches away from it because it blocked, and because it was
    /// preempted or yielded.
    switches: [AtomicU64; 2],
    pub(super) switched_in_tsc: AtomicU64,
    pub(super) timer: SpinMutex<Option<(usize, u64, u64)>>,
    pub(super) entry: SpinMutex<Option<Box<dyn FnOnce() + Send>>>,
    is_stop_requested: AtomicBool,
    pub(super) needs_attention: AtomicBool,
    attachment: spin::Once<Arc<dyn Any + Send + Sync>>,
    /// The id of the process it belongs to (0: none, a kernel thread), for
    /// reports.
    process_id: AtomicU64,
    /// What it last waited for, as its waiting code named it (null: not
    /// named), and the address of that (a futex word, a queue).
    pub(super) wait_name: AtomicPtr<&'static str>,
    pub(super) wait_address: AtomicU64,
    /// The TSC when it last blocked, was queued or was switched in.
    pub(super) state_since_tsc: AtomicU64,
    /// The page tables the thread runs on: their root (what CR3 holds; 0
    /// for the kernel's own), and what keeps them alive while it may.
    page_tables: SpinMutex<(u64, Option<Arc<dyn Any + Send + Sync>>)>,
}

// SAFETY: the `UnsafeCell` fields (saved stack pointer, FPU state) are
// touched only by the processor that switches the thread in or out, while
// `on_cpu` hands the thread from one processor to the next with
// release/acquire ordering; everything else is atomic or locked.
unsafe impl Sync for Thread {}
// SAFETY: as above; a thread is moved between processors only through the
// scheduler's hand-over.
unsafe impl Send for Thread {}

impl core::fmt::Debug for Thread {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Thread")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

/// The registers `rosv_context_switch` pops, lowest address first, then its
/// return address.
#[repr(C)]
struct InitialFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    rbx: u64,
    rbp: u64,
    return_address: u64,
}

unsafe extern "C" {
    fn rosv_thread_start();
    static rosv_boot_stack_top: u8;
}

impl Thread {
    /// A thread with fresh stacks taken for `purpose`, unless no memory is
    /// left for them.
    fn allocate(name: &str, kind: ThreadKind, fpu: Option<FpuState>, purpose: Purpose) -> Option<Self> {
        let (kernel_size, trap_size, guard_size) = match kind {
            ThreadKind::Idle => (IDLE_KERNEL_STACK_SIZE, IDLE_TRAP_STACK_SIZE, 0),
            _ => (KERNEL_STACK_SIZE, TRAP_STACK_SIZE, GUARD_SIZE),
        };
        let mut stacks = Stacks::allocate(kernel_size + 2 * trap_size + 3 * guard_size, purpose)?;
        if guard_size != 0 {
            for which in 0..3 {
                stacks.guard(which, which * (guard_size + trap_size));
            }
        }
        let base = stacks.base();
        let exception = base + (guard_size + trap_size) as u64;
        let interrupt = exception + (guard_size + trap_size) as u64;
        let stack_tops = StackTops {
            exception,
            interrupt,
            kernel: interrupt + (guard_size + kernel_size) as u64,
            kernel_size: kernel_size as u64,
            trap_size: trap_size as u64,
        };
        Some(Thread {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: String::from(name),
            kind,
            state: AtomicU8::new(RUNNABLE),
            wake_token: AtomicBool::new(false),
            on_cpu: AtomicBool::new(false),
            last_cpu: AtomicUsize::new(0),
            affinity: AtomicU64::new(u64::MAX),
            real_time_priority: AtomicU8::new(0),
            is_fifo: AtomicBool::new(false),
            saved_rsp: UnsafeCell::new(0),
            stacks,
            stack_tops,
            fpu: fpu.map(UnsafeCell::new),
            fs_base: AtomicU64::new(0),
            cpu_time_ns: AtomicU64::new(0),
            system_time_ns: AtomicU64::new(0),
            // An application thread starts in the kernel, on its way to
            // its first return to its code.
            is_in_kernel: AtomicBool::new(kind == ThreadKind::Application),
            switches: [AtomicU64::new(0), AtomicU64::new(0)],
            switched_in_tsc: AtomicU64::new(0),
            timer: SpinMutex::new(None),
            entry: SpinMutex::new(None),
            is_stop_requested: AtomicBool::new(false),
            needs_attention: AtomicBool::new(false),
            attachment: spin::Once::new(),
            process_id: AtomicU64::new(0),
            wait_name: AtomicPtr::new(core::ptr::null_mut()),
            wait_address: AtomicU64::new(0),
            state_since_tsc: AtomicU64::new(0),
            page_tables: SpinMutex::new((0, None)),
        })
    }

    /// Writes the frame `rosv_context_switch` resumes a new thread from.
    fn prepare_first_switch(&self, below: u64) {
        let frame_address = below - core::mem::size_of::<InitialFrame>() as u64 - 8;
        let frame = InitialFrame {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            rbx: 0,
            rbp: 0,
            return_address: rosv_thread_start as *const () as u64,
        };
        // SAFETY: the frame lies in this thread's own, unused kernel stack;
        // the address is 8-byte aligned and leaves RSP 16-byte aligned when
        // the trampoline calls into Rust.
        unsafe {
            (frame_address as *mut InitialFrame).write(frame);
            *self.saved_rsp.get() = frame_address;
        }
    }

    /// A kernel thread that runs `entry`.
    pub(super) fn new_kernel(name: &str, entry: Box<dyn FnOnce() + Send>) -> Option<Arc<Self>> {
        let thread = Thread::allocate(name, ThreadKind::Kernel, None, Purpose::Kernel)?;
        *thread.entry.lock() = Some(entry);
        thread.prepare_first_switch(thread.stack_tops.kernel);
        Some(registered(thread))
    }

    /// A processor's idle thread, which runs `entry`.
    pub(super) fn new_idle(cpu: usize, entry: Box<dyn FnOnce() + Send>) -> Option<Arc<Self>> {
        let thread = Thread::allocate(&alloc::format!("idle{cpu}"), ThreadKind::Idle, None, Purpose::Kernel)?;
        thread.affinity.store(1 << cpu, Ordering::Relaxed);
        *thread.entry.lock() = Some(entry);
        thread.prepare_first_switch(thread.stack_tops.kernel);
        Some(registered(thread))
    }

    /// An application thread that starts by returning from a system call
    /// with `frame`, with FS base `fs_base` and floating-point state `fpu`,
    /// its stacks taken for `purpose`.
    pub(super) fn new_application(
        name: &str,
        frame: &SyscallFrame,
        fs_base: u64,
        fpu: FpuState,
        purpose: Purpose,
    ) -> Option<Arc<Self>> {
        let thread = Thread::allocate(name, ThreadKind::Application, Some(fpu), purpose)?;
        let frame_address = thread.stack_tops.kernel - core::mem::size_of::<SyscallFrame>() as u64;
        // SAFETY: the frame lies at the top of the thread's unused kernel
        // stack, where the system call entry would have saved it.
        unsafe { (frame_address as *mut SyscallFrame).write(frame.clone()) };
        thread.fs_base.store(fs_base, Ordering::Relaxed);
        thread.prepare_first_switch(frame_address);
        Some(registered(thread))
    }

    /// The thread that is already running the boot code, on the boot stack.
    pub(super) fn adopt_boot_thread() -> Option<Arc<Self>> {
        let mut thread = Thread::allocate("boot", ThreadKind::Kernel, None, Purpose::Kernel)?;
        thread.state.store(RUNNING, Ordering::Relaxed);
        thread.on_cpu.store(true, Ordering::Relaxed);
        // Its kernel stack is the boot stack it runs on; only the trap
        // stacks of the allocation are used.
        thread.stack_tops.kernel = &raw const rosv_boot_stack_top as u64;
        Some(registered(thread))
    }

    /// Makes the thread run on the page tables whose root is `root` (0: the
    /// kernel's), kept alive by `owner` as long as the thread may use them.
    /// Takes effect at its next switch in (see [`super::load_page_tables`]
    /// for the running thread).
    pub fn set_page_tables(&self, root: u64, owner: Option<Arc<dyn Any + Send + Sync>>) {
        // The old owner is dropped after the lock is released.
        let _old = core::mem::replace(&mut *self.page_tables.lock(), (root, owner));
    }

    /// The slot holding the thread's page tables, for the scheduler.
    pub(super) fn page_tables_slot(
        &self,
    ) -> crate::sync::SpinMutexGuard<'_, (u64, Option<Arc<dyn Any + Send + Sync>>)> {
        self.page_tables.lock()
    }

    /// The root of the thread's page tables (0: the kernel's).
    pub fn page_table_root(&self) -> u64 {
        self.page_tables.lock().0
    }

    /// Whether `[address, address + size)` lies within one of the thread's
    /// own stacks (never in a guard page), so that reading it cannot fault.
    pub(crate) fn holds_stack_bytes(&self, address: u64, size: u64) -> bool {
        let Some(end) = address.checked_add(size) else {
            return false;
        };
        let tops = &self.stack_tops;
        let within = |top: u64, stack_size: u64| address >= top.saturating_sub(stack_size) && end <= top;
        // The boot thread's kernel stack is the boot stack in the kernel's
        // image: the last check keeps that case within mapped memory.
        (within(tops.kernel, tops.kernel_size)
            || within(tops.exception, tops.trap_size)
            || within(tops.interrupt, tops.trap_size))
            && crate::layout::is_kernel_data(address, size)
    }

    /// The thread's unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Which of the thread's stacks `vaddr` lies just under, in its guard
    /// page: the thread ran off that stack.
    pub fn overflowed_stack_at(&self, vaddr: u64) -> Option<&'static str> {
        self.stacks.guarded_stack_at(vaddr)
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the thread runs.
    pub fn kind(&self) -> ThreadKind {
        self.kind
    }

    /// The processors it may run on, one bit each.
    pub fn affinity(&self) -> u64 {
        self.affinity.load(Ordering::Relaxed)
    }

    /// Restricts it to the processors in `mask` (at least one online one).
    pub fn set_affinity(&self, mask: u64) {
        self.affinity.store(mask, Ordering::Relaxed);
    }

    /// Makes it a real-time thread of `priority` (1 to 99; 0 makes it
    /// normal again), `SCHED_FIFO` with `is_fifo`, else round-robin. It
    /// takes effect when the thread is next queued.
    pub fn set_real_time(&self, priority: u8, is_fifo: bool) {
        self.is_fifo.store(is_fifo, Ordering::Relaxed);
        self.real_time_priority.store(priority.min(99), Ordering::Relaxed);
    }

    /// Whether it is a FIFO real-time thread.
    pub fn is_fifo(&self) -> bool {
        self.is_fifo.load(Ordering::Relaxed)
    }

    /// The processor it last ran on.
    pub fn last_cpu(&self) -> usize {
        self.last_cpu.load(Ordering::Relaxed)
    }

    /// Whether it waits (parked) rather than runs or waits for a
    /// processor: `/proc/PID/stat`'s `S` against `R`.
    pub fn is_blocked(&self) -> bool {
        self.state.load(Ordering::Acquire) == BLOCKED
    }

    /// Processor time it has used, in nanoseconds, its current run
    /// included.
    pub fn cpu_time_ns(&self) -> u64 {
        let used = self.cpu_time_ns.load(Ordering::Relaxed);
        if !self.on_cpu.load(Ordering::Acquire) {
            return used;
        }
        let running_since = self.switched_in_tsc.load(Ordering::Relaxed);
        used + crate::time::ticks_to_ns(crate::cpu::read_tsc().saturating_sub(running_since))
    }

    /// The part of [`Self::cpu_time_ns`] spent in the kernel, in
    /// nanoseconds: all of it for a kernel or idle thread.
    pub fn system_time_ns(&self) -> u64 {
        if self.kind != ThreadKind::Application {
            return self.cpu_time_ns();
        }
        super::accounting::system_time_ns(self)
    }

    /// Context switches away from it: (voluntary, because it blocked;
    /// involuntary, because it was preempted or yielded).
    pub fn context_switches(&self) -> (u64, u64) {
        (self.switches[0].load(Ordering::Relaxed), self.switches[1].load(Ordering::Relaxed))
    }

    pub(super) fn count_switch(&self, is_voluntary: bool) {
        self.switches[usize::from(!is_voluntary)].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn add_cpu_time(&self, ns: u64) {
        self.cpu_time_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Whether it has exited.
    pub fn has_exited(&self) -> bool {
        self.state.load(Ordering::Acquire) == EXITED
    }

    /// Whether the thread was asked to stop (see [`super::request_stop`]).
    pub fn is_stop_requested(&self) -> bool {
        self.is_stop_requested.load(Ordering::Acquire)
    }

    pub(super) fn mark_needs_attention(&self) {
        self.needs_attention.store(true, Ordering::Release);
    }

    pub(super) fn take_needs_attention(&self) -> bool {
        self.needs_attention.load(Ordering::Relaxed) && self.needs_attention.swap(false, Ordering::AcqRel)
    }

    pub(super) fn mark_stop_requested(&self) {
        self.is_stop_requested.store(true, Ordering::Release);
    }

    /// Attaches kernel data (set once).
    pub fn attach(&self, data: Arc<dyn Any + Send + Sync>) {
        self.attachment.call_once(|| data);
    }

    /// Records the id of the process the thread belongs to, for reports.
    pub fn set_process_id(&self, process_id: u64) {
        self.process_id.store(process_id, Ordering::Relaxed);
    }

    /// The id of the process it belongs to (0: none).
    pub fn process_id(&self) -> u64 {
        self.process_id.load(Ordering::Relaxed)
    }

    /// The attached data, if it is a `T`.
    pub fn attachment<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.attachment.get().cloned().and_then(|data| data.downcast::<T>().ok())
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        REGISTRY.lock().remove(&self.id);
    }
}

impl Schedulable for Arc<Thread> {
    fn affinity(&self) -> u64 {
        Thread::affinity(self)
    }

    fn priority(&self) -> u8 {
        match self.kind {
            ThreadKind::Kernel => crate::scheduling_policy::KERNEL_PRIORITY,
            ThreadKind::Application => self.real_time_priority.load(Ordering::Relaxed),
            ThreadKind::Idle => 0,
        }
    }
}
