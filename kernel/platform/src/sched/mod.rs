//! The scheduler: preemptive threads on every processor.
//!
//! Each processor runs threads from its own run queue ([`policy`]) for at
//! most [`TIME_SLICE_NS`] while others wait, halts in its idle thread when
//! there is nothing to run, and is woken by an IPI when a thread is queued
//! for it. Threads block with [`park`] / [`park_until`] and are made
//! runnable with [`unpark`] (a wake token makes an early unpark count), the
//! primitive beneath wait queues, futexes and sleeps. The kernel runs with
//! interrupts disabled (system calls included), so preemption happens only
//! in application code and in idle loops, at the end of an interrupt.

mod accounting;
mod fpu;
mod report;
mod stops;
mod thread;
mod timer;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub use crate::scheduling_policy as policy;
pub use accounting::{CpuTimes, cpu_times};
pub(crate) use accounting::{enter_kernel, enter_kernel_by_system_call, leave_kernel};
pub use fpu::{FpuState, init as init_fpu};
pub use report::{CpuReport, report_cpus_briefly, report_this_cpu, report_threads};
pub(crate) use stops::take_attention;
pub use stops::{
    StopHandler, notice_attention_point, request_attention, request_stop, set_stop_handler, stop_point,
};
pub use thread::{Thread, ThreadKind};

use self::thread::{BLOCKED, EXITED, RUNNABLE, RUNNING};
use self::timer::TimerQueue;
use crate::percpu::{self, MAX_CPUS};
use crate::scheduling_policy::{CpuLoad, RunQueue, Schedulable};
use crate::sync::SpinMutex;
use crate::syscall::SyscallFrame;
use crate::timer_arming::{self, TimerWrite};
use crate::{apic, cpu, time};

/// How long a thread runs while others wait.
pub const TIME_SLICE_NS: u64 = 10_000_000;
/// The vector of the reschedule IPI.
pub const RESCHEDULE_VECTOR: u8 = 0xf1;

/// A processor's scheduling state.
struct CpuState {
    queue: SpinMutex<RunQueue<Arc<Thread>>>,
    queued: AtomicUsize,
    current: UnsafeCell<Option<Arc<Thread>>>,
    previous: UnsafeCell<Option<Arc<Thread>>>,
    /// The previous thread was preempted or yielded: it is queued again once
    /// the switch away from it has completed.
    requeue_previous: UnsafeCell<bool>,
    idle: spin::Once<Arc<Thread>>,
    timers: SpinMutex<TimerQueue>,
    need_resched: AtomicBool,
    is_idle: AtomicBool,
    is_online: AtomicBool,
    apic_id: AtomicU32,
    slice_end: AtomicU64,
    /// The deadline the local timer is armed for ([`timer_arming::DISARMED`],
    /// [`timer_arming::FIRED`] or a TSC value), so that arming it again for
    /// the same deadline costs nothing: each write to the timer is an exit
    /// to the hypervisor, and most switches keep the earliest deadline.
    armed_deadline: AtomicU64,
    /// Its user, system and idle time.
    accounts: accounting::CpuAccounts,
}

// SAFETY: `current`, `previous` and `requeue_previous` are read and written
// only by the processor that owns this state, with interrupts disabled; the
// rest is atomic or locked.
unsafe impl Sync for CpuState {}

static CPUS: [CpuState; MAX_CPUS] = [const {
    CpuState {
        queue: SpinMutex::new(RunQueue::new()),
        queued: AtomicUsize::new(0),
        current: UnsafeCell::new(None),
        previous: UnsafeCell::new(None),
        requeue_previous: UnsafeCell::new(false),
        idle: spin::Once::new(),
        timers: SpinMutex::new(TimerQueue::new()),
        need_resched: AtomicBool::new(false),
        is_idle: AtomicBool::new(false),
        is_online: AtomicBool::new(false),
        apic_id: AtomicU32::new(0),
        slice_end: AtomicU64::new(0),
        armed_deadline: AtomicU64::new(timer_arming::DISARMED),
        accounts: accounting::CpuAccounts::new(),
    }
}; MAX_CPUS];

static CPU_COUNT: AtomicUsize = AtomicUsize::new(1);

fn this_cpu() -> &'static CpuState {
    &CPUS[percpu::current_index()]
}

impl CpuState {
    /// The running thread. Interrupts must be disabled.
    fn current(&self) -> &Arc<Thread> {
        // SAFETY: only this processor touches `current`, with interrupts
        // disabled, and it is set from `init_bootstrap`/`start_ap` on.
        unsafe { (*self.current.get()).as_ref().expect("the scheduler runs on this processor") }
    }

    fn push(&self, thread: Arc<Thread>) {
        let now = cpu::read_tsc();
        thread.state_since_tsc.store(now, Ordering::Relaxed);
        let mut queue = self.queue.lock();
        queue.push(thread, now);
        self.queued.store(queue.len(), Ordering::Relaxed);
    }

    fn pop(&self) -> Option<Arc<Thread>> {
        let mut queue = self.queue.lock();
        let thread = queue.pop();
        self.queued.store(queue.len(), Ordering::Relaxed);
        thread
    }

    fn load(&self) -> CpuLoad {
        CpuLoad {
            is_online: self.is_online.load(Ordering::Relaxed),
            is_idle: self.is_idle.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

/// A scheduler thread, as `rosv_sync` wakes it.
struct SyncWaker(Arc<Thread>);

impl rosv_sync::Waker for SyncWaker {
    fn wake(&self) {
        unpark(&self.0);
    }
}

/// This scheduler, as `rosv_sync` blocks through it.
struct SyncScheduler;

impl rosv_sync::Scheduler for SyncScheduler {
    fn current(&self) -> Arc<dyn rosv_sync::Waker> {
        Arc::new(SyncWaker(current()))
    }

    fn park(&self) {
        park();
    }

    fn park_on(&self, queue_address: usize) {
        note_wait(&"wait queue", queue_address as u64);
        park();
    }
}

static SYNC_SCHEDULER: SyncScheduler = SyncScheduler;

/// Makes the running boot code the boot processor's first thread, gives
/// the processor an idle thread, and lets `rosv_sync`'s wait queues,
/// mutexes and condition variables block through the scheduler;
/// `cpu_count` processors will exist.
pub fn init_bootstrap(cpu_count: usize, apic_id: u32) {
    rosv_sync::install(&SYNC_SCHEDULER);
    CPU_COUNT.store(cpu_count.clamp(1, MAX_CPUS), Ordering::Relaxed);
    let cpu = &CPUS[0];
    let boot = Thread::adopt_boot_thread().unwrap_or_else(|| no_memory_for("the boot thread"));
    let tops = boot.stack_tops;
    percpu::set_thread_stacks(tops.kernel, tops.exception, tops.interrupt);
    let now = cpu::read_tsc();
    boot.switched_in_tsc.store(now, Ordering::Relaxed);
    cpu.accounts.start_running(&boot, now);
    // SAFETY: the boot processor sets up its own state before any interrupt
    // or other processor can look at it.
    unsafe { *cpu.current.get() = Some(boot) };
    cpu.idle.call_once(|| {
        Thread::new_idle(0, Box::new(|| idle_loop())).unwrap_or_else(|| no_memory_for("an idle thread"))
    });
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    cpu.is_online.store(true, Ordering::Release);
}

/// Stops the boot: RAM is too short for a thread the kernel cannot run
/// without.
fn no_memory_for(what: &str) -> ! {
    let _ = writeln!(crate::console::EmergencyConsole, "rosv: out of memory: no room for {what}'s stacks");
    crate::power::abort(rosv_abi::exit::status::KERNEL_FAILURE)
}

/// Prepares processor `index`'s idle thread; returns the top of the stack
/// the processor should start on (its idle thread's kernel stack).
pub fn prepare_ap(index: usize, apic_id: u32) -> u64 {
    let cpu = &CPUS[index];
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    let idle = cpu.idle.call_once(|| {
        Thread::new_idle(index, Box::new(|| idle_loop())).unwrap_or_else(|| no_memory_for("an idle thread"))
    });
    idle.stack_tops.kernel
}

/// Runs on an application processor once its tables are loaded: becomes
/// its idle thread.
pub fn start_ap(index: usize) -> ! {
    let cpu = &CPUS[index];
    let idle = cpu.idle.get().expect("prepare_ap made the idle thread").clone();
    idle.state.store(RUNNING, Ordering::Relaxed);
    idle.on_cpu.store(true, Ordering::Relaxed);
    idle.last_cpu.store(index, Ordering::Relaxed);
    let now = cpu::read_tsc();
    idle.switched_in_tsc.store(now, Ordering::Relaxed);
    cpu.accounts.start_running(&idle, now);
    let tops = idle.stack_tops;
    percpu::set_thread_stacks(tops.kernel, tops.exception, tops.interrupt);
    // SAFETY: this processor's own state, before it takes any interrupt.
    unsafe { *cpu.current.get() = Some(idle) };
    cpu.is_online.store(true, Ordering::Release);
    idle_loop()
}

/// Number of processors the scheduler uses.
pub fn cpu_count() -> usize {
    CPU_COUNT.load(Ordering::Relaxed)
}

/// The processors that are online, one bit each.
pub fn online_mask() -> u64 {
    (0..cpu_count())
        .filter(|&cpu| CPUS[cpu].is_online.load(Ordering::Acquire))
        .fold(0, |mask, cpu| mask | 1 << cpu)
}

/// The calling processor's index.
pub fn current_cpu() -> usize {
    percpu::current_index()
}

/// The running thread.
pub fn current() -> Arc<Thread> {
    let were_enabled = cpu::disable_interrupts();
    let thread = this_cpu().current().clone();
    cpu::restore_interrupts(were_enabled);
    thread
}

/// The running thread, or `None` before the scheduler runs on this
/// processor (a fault early in boot).
pub fn current_if_any() -> Option<Arc<Thread>> {
    let were_enabled = cpu::disable_interrupts();
    let state = this_cpu();
    // SAFETY: as in `CpuState::current`: only this processor touches its
    // `current`, with interrupts disabled.
    let thread = unsafe { (*state.current.get()).clone() };
    cpu::restore_interrupts(were_enabled);
    thread
}

/// Starts a kernel thread running `entry`.
pub fn spawn_kernel(name: &str, entry: impl FnOnce() + Send + 'static) -> Option<Arc<Thread>> {
    let thread = Thread::new_kernel(name, Box::new(entry))?;
    let were_enabled = cpu::disable_interrupts();
    make_runnable(thread.clone(), current_cpu());
    cpu::restore_interrupts(were_enabled);
    Some(thread)
}

/// Starts an application thread that returns from a system call with
/// `frame` (RIP, RSP and registers), with FS base `fs_base` and
/// floating-point state `fpu`, after `prepare` ran on it; its stacks are
/// taken for `purpose` (a process's first thread, `Application`; more,
/// `ApplicationThread`).
pub fn spawn_application(
    name: &str,
    frame: &SyscallFrame,
    fs_base: u64,
    fpu: FpuState,
    purpose: crate::frames::Purpose,
    prepare: impl FnOnce(&Arc<Thread>),
) -> Option<Arc<Thread>> {
    let thread = Thread::new_application(name, frame, fs_base, fpu, purpose)?;
    prepare(&thread);
    let were_enabled = cpu::disable_interrupts();
    make_runnable(thread.clone(), current_cpu());
    cpu::restore_interrupts(were_enabled);
    Some(thread)
}

/// The APIC id of processor `index`.
pub fn apic_id(index: usize) -> u32 {
    CPUS[index].apic_id.load(Ordering::Relaxed)
}

/// Queues a runnable thread on the processor the policy picks, and tells
/// that processor. Interrupts must be disabled.
fn make_runnable(thread: Arc<Thread>, hint: usize) {
    let count = cpu_count();
    let mut loads = [CpuLoad { is_online: false, is_idle: false, queued: 0 }; MAX_CPUS];
    for (index, load) in loads.iter_mut().enumerate().take(count) {
        *load = CPUS[index].load();
    }
    let last = if thread.switched_in_tsc.load(Ordering::Relaxed) == 0 { hint } else { thread.last_cpu() };
    let target = policy::choose_cpu(last, thread.affinity(), &loads[..count]);
    let cpu = &CPUS[target];
    thread.state.store(RUNNABLE, Ordering::Release);
    let priority = thread.priority();
    cpu.push(thread);
    if target == current_cpu() {
        let this = this_cpu();
        if this.current().kind() == ThreadKind::Idle {
            this.need_resched.store(true, Ordering::Relaxed);
        } else if priority > this.current().priority() {
            // A higher priority preempts at once: the interrupt comes as
            // soon as interrupts are enabled again.
            this.need_resched.store(true, Ordering::Relaxed);
            apic::send_ipi(this.apic_id.load(Ordering::Relaxed), RESCHEDULE_VECTOR);
        } else {
            reprogram_timer(this);
        }
    } else {
        apic::send_ipi(cpu.apic_id.load(Ordering::Relaxed), RESCHEDULE_VECTOR);
    }
}

/// Gives the processor to another runnable thread, if any.
pub fn yield_now() {
    let were_enabled = cpu::disable_interrupts();
    schedule_after(true);
    cpu::restore_interrupts(were_enabled);
}

/// Blocks the running thread until [`unpark`] (returns at once if an
/// unpark came first). Callers re-check their condition: a return can be
/// spurious.
pub fn park() {
    park_until(None);
}

/// Like [`park`], but also returns once the TSC passes `deadline`.
pub fn park_until(deadline: Option<u64>) {
    let were_enabled = cpu::disable_interrupts();
    let cpu = this_cpu();
    let thread = cpu.current().clone();
    if thread.wake_token.swap(false, Ordering::AcqRel) {
        cpu::restore_interrupts(were_enabled);
        return;
    }
    if let Some(deadline) = deadline {
        let key = cpu.timers.lock().insert(deadline, thread.clone());
        *thread.timer.lock() = Some((current_cpu(), key.0, key.1));
        reprogram_timer(cpu);
    }
    thread.state_since_tsc.store(cpu::read_tsc(), Ordering::Relaxed);
    thread.state.store(BLOCKED, Ordering::SeqCst);
    let raced = thread.wake_token.swap(false, Ordering::AcqRel)
        && thread.state.compare_exchange(BLOCKED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok();
    if !raced {
        schedule();
    }
    if let Some((cpu_index, deadline, sequence)) = thread.timer.lock().take() {
        CPUS[cpu_index].timers.lock().remove((deadline, sequence));
    }
    thread.wait_name.store(core::ptr::null_mut(), Ordering::Relaxed);
    cpu::restore_interrupts(were_enabled);
}

/// Names what the running thread's next [`park`] waits for (`name`, e.g.
/// `&"futex"`, and the address of the word or queue), for reports of a
/// stuck machine; the name is forgotten once the park returns.
pub fn note_wait(name: &'static &'static str, address: u64) {
    let thread = current();
    thread.wait_address.store(address, Ordering::Relaxed);
    thread.wait_name.store(core::ptr::from_ref(name).cast_mut(), Ordering::Release);
}

/// Makes a parked thread runnable, or lets its next park return at once.
pub fn unpark(thread: &Arc<Thread>) {
    thread.wake_token.store(true, Ordering::SeqCst);
    if thread.state.compare_exchange(BLOCKED, RUNNABLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // The thread may still be on its processor, between deciding to block
        // and switching away (with interrupts disabled, so never this one).
        // A queued thread must be off every processor: one that picked it
        // would otherwise wait for it while still holding its own previous
        // thread, and two processors doing so for each other's threads would
        // wait forever.
        while thread.on_cpu.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let were_enabled = cpu::disable_interrupts();
        make_runnable(thread.clone(), current_cpu());
        cpu::restore_interrupts(were_enabled);
    }
}

/// Sleeps until the TSC passes `deadline`.
pub fn sleep_until(deadline: u64) {
    while cpu::read_tsc() < deadline {
        park_until(Some(deadline));
    }
}

/// Ends the running thread.
pub fn exit_current() -> ! {
    cpu::disable_interrupts();
    let cpu = this_cpu();
    cpu.current().state.store(EXITED, Ordering::Release);
    schedule();
    unreachable!("an exited thread is never scheduled again")
}

/// Runs the scheduler if an interrupt or wake-up asked for it.
pub fn preempt_point() {
    let were_enabled = cpu::disable_interrupts();
    if this_cpu().need_resched.load(Ordering::Relaxed) {
        schedule();
    }
    cpu::restore_interrupts(were_enabled);
}

/// Picks the next thread for this processor and switches to it. Interrupts
/// must be disabled. A running thread (a yield or preemption) keeps the
/// processor if nothing else may run here, and is queued again after the
/// switch otherwise; one that blocked or exited is left out.
fn schedule() {
    schedule_after(false);
}

/// [`schedule`], at a yield with `is_yield`: a running real-time thread
/// keeps the processor as its policy says ([`policy::keeps_running`]).
fn schedule_after(is_yield: bool) {
    let cpu = this_cpu();
    let index = current_cpu();
    cpu.need_resched.store(false, Ordering::Relaxed);
    let current = cpu.current().clone();
    let is_idle = current.kind() == ThreadKind::Idle;
    let is_running = !is_idle && current.state.load(Ordering::Acquire) == RUNNING;
    let may_stay = is_running && current.affinity() & (1 << index) != 0;
    let first_queued = cpu.queue.lock().first_priority();
    if may_stay && policy::keeps_running(current.priority(), current.is_fifo(), first_queued, is_yield) {
        start_slice(cpu, &current);
        reprogram_timer(cpu);
        return;
    }
    let next = match pop_allowed(cpu, index).or_else(|| steal(index)) {
        Some(next) => next,
        None if may_stay => {
            start_slice(cpu, &current);
            reprogram_timer(cpu);
            return;
        }
        None => {
            let idle = cpu.idle.get().expect("every processor has an idle thread").clone();
            if is_idle {
                reprogram_timer(cpu);
                return;
            }
            idle
        }
    };
    debug_assert!(!Arc::ptr_eq(&next, &current), "the running thread is never queued");
    if is_running || is_idle {
        current.state.store(RUNNABLE, Ordering::Relaxed);
    }
    // SAFETY: this processor's own slot, interrupts disabled.
    unsafe { *cpu.requeue_previous.get() = is_running };
    switch_to(cpu, current, next);
}

/// The next queued thread that may run here; threads whose affinity no
/// longer allows this processor are sent where they may run.
fn pop_allowed(cpu: &CpuState, index: usize) -> Option<Arc<Thread>> {
    while let Some(thread) = cpu.pop() {
        if thread.affinity() & (1 << index) != 0 {
            return Some(thread);
        }
        make_runnable(thread, index);
    }
    None
}

/// Moves one queued thread from this processor to a much less loaded one
/// (see [`policy::balance_target`]).
fn balance(cpu: &CpuState, index: usize) {
    let count = cpu_count();
    let mut loads = [CpuLoad { is_online: false, is_idle: false, queued: 0 }; MAX_CPUS];
    for (other, load) in loads.iter_mut().enumerate().take(count) {
        *load = CPUS[other].load();
    }
    let Some(lightest) = policy::balance_target(index, &loads[..count]) else {
        return;
    };
    let target = &CPUS[lightest];
    let moved = {
        let mut queue = cpu.queue.lock();
        let thread = queue.steal_for(lightest);
        cpu.queued.store(queue.len(), Ordering::Relaxed);
        thread
    };
    if let Some(moved) = moved {
        let mut queue = target.queue.lock();
        queue.push_moved(moved);
        target.queued.store(queue.len(), Ordering::Relaxed);
        drop(queue);
        apic::send_ipi(target.apic_id.load(Ordering::Relaxed), RESCHEDULE_VECTOR);
    }
}

/// Takes a thread from the busiest other processor.
fn steal(index: usize) -> Option<Arc<Thread>> {
    let count = cpu_count();
    let mut loads = [CpuLoad { is_online: false, is_idle: false, queued: 0 }; MAX_CPUS];
    for (cpu, load) in loads.iter_mut().enumerate().take(count) {
        *load = CPUS[cpu].load();
    }
    let victim = &CPUS[policy::busiest(index, &loads[..count])?];
    let mut queue = victim.queue.try_lock()?;
    let stolen = queue.steal_for(index);
    victim.queued.store(queue.len(), Ordering::Relaxed);
    stolen.map(|stolen| stolen.thread)
}

fn start_slice(cpu: &CpuState, thread: &Thread) {
    let slice = TIME_SLICE_NS * time::tsc_hz() / 1_000_000_000;
    let now = cpu::read_tsc();
    cpu.slice_end.store(now + slice, Ordering::Relaxed);
    let _ = thread;
}

/// Arms this processor's timer for its next event: the earliest sleeper,
/// or the end of the time slice if other threads wait.
fn reprogram_timer(cpu: &CpuState) {
    let timer = cpu.timers.lock().first_deadline();
    let slice = (cpu.queued.load(Ordering::Relaxed) > 0 && cpu.current().kind() != ThreadKind::Idle)
        .then(|| cpu.slice_end.load(Ordering::Relaxed));
    let wanted = timer.into_iter().chain(slice).min();
    let (armed, write) = timer_arming::plan(cpu.armed_deadline.load(Ordering::Relaxed), wanted);
    cpu.armed_deadline.store(armed, Ordering::Relaxed);
    match write {
        TimerWrite::Nothing => {}
        TimerWrite::Disarm => apic::disarm_timer(),
        TimerWrite::Arm { deadline, sets_mode } => apic::arm_timer(deadline, sets_mode),
    }
}

fn switch_to(cpu: &CpuState, previous: Arc<Thread>, next: Arc<Thread>) {
    while next.on_cpu.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    next.last_cpu.store(current_cpu(), Ordering::Relaxed);
    next.state.store(RUNNING, Ordering::Relaxed);
    // Pairs with the fence in `request_attention`: once this store is
    // ordered before the thread's later look at its attention flag, a
    // sender either sees the thread on a processor (and interrupts it there,
    // `last_cpu` being already right) or its flag is seen.
    next.on_cpu.store(true, Ordering::SeqCst);
    let now = cpu::read_tsc();
    accounting::account_switch(&cpu.accounts, &previous, &next, now);
    match previous.state.load(Ordering::Relaxed) {
        BLOCKED => previous.count_switch(true),
        RUNNABLE => previous.count_switch(false),
        _ => {}
    }
    next.state_since_tsc.store(now, Ordering::Relaxed);
    if previous.kind() == ThreadKind::Idle {
        // The idle loop was left from an interrupt (a preemption point at
        // its halt), not from its own code, which clears the flag when it
        // runs on: a processor running threads must not look idle, or
        // woken threads would be sent to it and idle ones never steal
        // from it.
        cpu.is_idle.store(false, Ordering::Relaxed);
    }
    if let Some(fpu) = &previous.fpu {
        previous.fs_base.store(cpu::fs_base(), Ordering::Relaxed);
        // SAFETY: the previous thread is still on this processor, which alone
        // touches its FPU area until `on_cpu` clears.
        unsafe { (*fpu.get()).save() };
    }
    if let Some(fpu) = &next.fpu {
        cpu::set_fs_base(next.fs_base.load(Ordering::Relaxed));
        // SAFETY: `on_cpu` is now ours: no other processor touches the area.
        unsafe { (*fpu.get()).restore() };
    }
    let tops = next.stack_tops;
    percpu::set_thread_stacks(tops.kernel, tops.exception, tops.interrupt);
    switch_page_tables(next.page_table_root());
    start_slice(cpu, &next);
    let save_to = previous.saved_rsp.get();
    let on_cpu = previous.on_cpu.as_ptr();
    // SAFETY: `next` is not running anywhere (its `on_cpu` was clear), so
    // its saved stack pointer is stable.
    let resume_from = unsafe { *next.saved_rsp.get() };
    // SAFETY: this processor's own slots, interrupts disabled. `previous`
    // stays alive in `cpu.previous` until the switch has completed.
    unsafe {
        *cpu.current.get() = Some(next);
        *cpu.previous.get() = Some(previous);
    }
    // SAFETY: `save_to` and `on_cpu` belong to the previous thread, kept
    // alive above; `resume_from` was saved by `rosv_context_switch` or
    // prepared by `Thread::prepare_first_switch`.
    unsafe { rosv_context_switch(save_to, resume_from, on_cpu) };
    finish_switch();
}

/// Loads the page tables whose root is `root` (0: the kernel's), unless
/// they are loaded already. Reloading flushes this processor's translations
/// of application pages; the kernel's are global and stay.
fn switch_page_tables(root: u64) {
    let root = if root == 0 { crate::paging::level_4_table_paddr() } else { root };
    let (loaded, flags) = x86_64::registers::control::Cr3::read();
    if root != 0 && loaded.start_address().as_u64() != root {
        let frame = x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(root));
        // SAFETY: `root` is the level-4 table of live tables (the thread
        // about to run keeps them alive) whose upper half is the kernel's,
        // so the kernel's code, data and stacks stay mapped across the load.
        unsafe { x86_64::registers::control::Cr3::write(frame, flags) };
    }
}

/// Makes the running thread use the page tables whose root is `root` (0:
/// the kernel's), kept alive by `owner`, from now on.
pub fn load_page_tables(root: u64, owner: Option<Arc<dyn core::any::Any + Send + Sync>>) {
    let were_enabled = cpu::disable_interrupts();
    let thread = this_cpu().current().clone();
    // The new tables are loaded before the old owner can be dropped.
    let old = core::mem::replace(&mut *thread.page_tables_slot(), (root, owner));
    switch_page_tables(root);
    cpu::restore_interrupts(were_enabled);
    drop(old);
}

/// Runs on the new thread right after a switch, when the previous thread is
/// off this processor: queues it again if it was preempted or yielded, or
/// drops the reference to it (freeing it if it exited); arms the timer.
fn finish_switch() {
    let cpu = this_cpu();
    // SAFETY: this processor's own slots, interrupts disabled.
    let (previous, requeue) =
        unsafe { ((*cpu.previous.get()).take(), core::mem::take(&mut *cpu.requeue_previous.get())) };
    if let Some(previous) = previous
        && requeue
    {
        let index = current_cpu();
        if previous.affinity() & (1 << index) != 0 {
            previous.state.store(RUNNABLE, Ordering::Release);
            cpu.push(previous);
        } else {
            // Its affinity changed: it moves to a processor it may use.
            make_runnable(previous, index);
        }
    }
    reprogram_timer(cpu);
}

/// Where every new thread starts (through `rosv_thread_start`).
extern "C" fn thread_start() -> ! {
    finish_switch();
    let thread = this_cpu().current().clone();
    match thread.kind() {
        ThreadKind::Application => {
            let frame = thread.stack_tops.kernel - core::mem::size_of::<SyscallFrame>() as u64;
            drop(thread);
            notice_attention_point();
            // SAFETY: the frame was written at the top of this thread's kernel
            // stack by `Thread::new_application`.
            unsafe { crate::syscall::return_to_application(frame) }
        }
        ThreadKind::Kernel | ThreadKind::Idle => {
            let entry = thread.entry.lock().take();
            drop(thread);
            if let Some(entry) = entry {
                entry();
            }
            exit_current()
        }
    }
}

/// The idle thread: runs whatever is queued, or steals, or halts.
fn idle_loop() -> ! {
    loop {
        cpu::disable_interrupts();
        let cpu = this_cpu();
        cpu.is_idle.store(true, Ordering::SeqCst);
        if cpu.queued.load(Ordering::SeqCst) > 0 || busiest_other().is_some() {
            cpu.is_idle.store(false, Ordering::Relaxed);
            schedule();
            continue;
        }
        reprogram_timer(cpu);
        // STI takes effect after the next instruction, so an interrupt
        // cannot slip in between the check above and HLT.
        x86_64::instructions::interrupts::enable_and_hlt();
        cpu::disable_interrupts();
        cpu.is_idle.store(false, Ordering::Relaxed);
        if cpu.need_resched.load(Ordering::Relaxed) {
            schedule();
        }
    }
}

fn busiest_other() -> Option<usize> {
    let count = cpu_count();
    let mut loads = [CpuLoad { is_online: false, is_idle: false, queued: 0 }; MAX_CPUS];
    for (cpu, load) in loads.iter_mut().enumerate().take(count) {
        *load = CPUS[cpu].load();
    }
    policy::busiest(current_cpu(), &loads[..count])
        .filter(|&busy| loads[busy].queued > 1 || !loads[busy].is_idle)
}

/// The local timer fired: wake sleepers, end the slice.
pub(crate) fn on_timer_interrupt() {
    let cpu = this_cpu();
    // A timer masked since it fired stays masked (see `timer_arming`).
    let armed = cpu.armed_deadline.load(Ordering::Relaxed);
    cpu.armed_deadline.store(timer_arming::after_interrupt(armed), Ordering::Relaxed);
    let now = cpu::read_tsc();
    let expired = cpu.timers.lock().take_expired(now);
    for thread in &expired {
        *thread.timer.lock() = None;
        unpark(thread);
    }
    let is_idle = cpu.current().kind() == ThreadKind::Idle;
    if cpu.queued.load(Ordering::Relaxed) > 0 && (is_idle || now >= cpu.slice_end.load(Ordering::Relaxed)) {
        balance(cpu, current_cpu());
        cpu.need_resched.store(true, Ordering::Relaxed);
    }
    reprogram_timer(cpu);
}

/// Another processor queued a thread here.
pub(crate) fn on_reschedule_interrupt() {
    let cpu = this_cpu();
    let current = cpu.current();
    let first_queued = cpu.queue.lock().first_priority();
    if current.kind() == ThreadKind::Idle || first_queued.is_some_and(|queued| queued > current.priority()) {
        cpu.need_resched.store(true, Ordering::Relaxed);
    } else {
        reprogram_timer(cpu);
    }
}

unsafe extern "C" {
    fn rosv_context_switch(save_to: *mut u64, resume_from: u64, previous_on_cpu: *mut bool);
}

// Saves the callee-saved registers on the current stack, stores RSP, marks
// the previous thread off this processor, and resumes the next thread's
// stack. A new thread "returns" into `rosv_thread_start`, which aligns the
// stack and calls `thread_start`.
global_asm!(
    r#"
    .section .text.rosv_context_switch, "ax"
    .global rosv_context_switch
rosv_context_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    movb $0, (%rdx)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

    .global rosv_thread_start
rosv_thread_start:
    and $-16, %rsp
    call {thread_start}
    ud2
    "#,
    thread_start = sym thread_start,
    options(att_syntax),
);
