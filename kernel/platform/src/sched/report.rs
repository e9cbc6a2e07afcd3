//! What the scheduler holds, printed for a stuck machine (an NMI asks).
//!
//! Everything here runs in an NMI handler, which may have interrupted any
//! code holding any lock: it reads atomics, takes locks only with
//! `try_lock` (saying so when one is held), allocates nothing and drops no
//! thread. [`report_this_cpu`] describes the interrupted processor;
//! [`report_threads`] lists every thread from the registry in `thread`.

use core::fmt::Write;
use core::sync::atomic::Ordering;

use super::thread::{BLOCKED, EXITED, REGISTRY, RUNNABLE, RUNNING, Thread};
use super::{CPUS, cpu_count, this_cpu};
use crate::timer_arming;
use crate::{cpu, time};

/// Return addresses printed for each thread that is off every processor.
const THREAD_BACKTRACE_DEPTH: usize = 12;
/// Threads listed at most (the rest are counted).
const LISTED_THREADS: usize = 512;
/// How long the registry's lock is tried before the list is given up, in
/// fractions of a second: its holders keep it for a moment only, unless
/// the NMI interrupted one on this processor.
const REGISTRY_PATIENCE_DIVISOR: u64 = 5;

/// What this processor's scheduler holds, for reports of a stuck machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuReport {
    /// Threads in its run queue.
    pub queued: usize,
    /// Threads waiting for a deadline here, and the earliest deadline (TSC);
    /// `None` if the queue's lock was held.
    pub timers: Option<(usize, Option<u64>)>,
    /// The end of the running thread's time slice (TSC).
    pub slice_end: u64,
    /// Whether the scheduler is to run at the next preemption point.
    pub needs_reschedule: bool,
    /// Whether the running thread was asked for attention.
    pub current_needs_attention: bool,
    /// Whether the processor is in its idle loop (halted, or about to).
    pub is_idle: bool,
    /// The deadline its local timer is armed for (TSC), `None` when the
    /// timer is masked, `Some(u64::MAX)` when it fired and was not armed
    /// again.
    pub armed_deadline: Option<u64>,
}

/// Reports this processor's scheduling state without waiting for any lock,
/// so that an NMI handler may call it.
pub fn report_this_cpu() -> CpuReport {
    let cpu = this_cpu();
    let armed = cpu.armed_deadline.load(Ordering::Relaxed);
    CpuReport {
        queued: cpu.queued.load(Ordering::Relaxed),
        timers: cpu.timers.try_lock().map(|timers| (timers.len(), timers.first_deadline())),
        slice_end: cpu.slice_end.load(Ordering::Relaxed),
        needs_reschedule: cpu.need_resched.load(Ordering::Relaxed),
        current_needs_attention: cpu.current().needs_attention.load(Ordering::Relaxed),
        is_idle: cpu.is_idle.load(Ordering::Relaxed),
        armed_deadline: (armed != timer_arming::DISARMED).then_some(armed),
    }
}

/// Milliseconds from the TSC value `now` to `tsc` (negative: past).
fn ms_from(now: u64, tsc: u64) -> f64 {
    let ms = time::ticks_to_ns(tsc.abs_diff(now)) as f64 / 1e6;
    if tsc >= now { ms } else { -ms }
}

/// Prints every thread the kernel has: its id, name and process, its state
/// and since when, what it waits for (the name its waiting code gave, a
/// deadline and the processor whose timer holds it), the processor it last
/// ran on, and for a thread off every processor the return addresses on
/// its saved stack.
pub fn report_threads(out: &mut impl Write) {
    let now = cpu::read_tsc();
    let patience = time::tsc_hz() / REGISTRY_PATIENCE_DIVISOR;
    let registry = loop {
        if let Some(registry) = REGISTRY.try_lock() {
            break registry;
        }
        if cpu::read_tsc().saturating_sub(now) > patience {
            let _ = writeln!(out, "rosv: threads: the thread registry stayed locked; no list");
            return;
        }
        core::hint::spin_loop();
    };
    let _ = writeln!(out, "rosv: threads: {} (state for ms, waits on, last cpu)", registry.len());
    for (listed, &address) in registry.values().enumerate() {
        if listed == LISTED_THREADS {
            let _ = writeln!(out, "rosv: ... {} more threads not listed", registry.len() - listed);
            break;
        }
        // SAFETY: a thread is in the registry from when its `Arc` is made
        // until its `Drop` removes it, which waits for the lock held here;
        // so the address is that of a live `Thread`.
        let thread = unsafe { &*(address as *const Thread) };
        report_thread(out, thread, cpu::read_tsc());
    }
}

fn report_thread(out: &mut impl Write, thread: &Thread, now: u64) {
    let state = match thread.state.load(Ordering::Acquire) {
        RUNNING => "running",
        RUNNABLE => "runnable",
        BLOCKED => "blocked",
        EXITED => "exited",
        _ => "?",
    };
    let is_on_cpu = thread.on_cpu.load(Ordering::Acquire);
    let since_ms = -ms_from(now, thread.state_since_tsc.load(Ordering::Relaxed));
    let _ = write!(out, "rosv: thread {} \"{}\"", thread.id(), thread.name());
    match thread.process_id() {
        0 => {}
        process => {
            let _ = write!(out, " process {process}");
        }
    }
    let _ = write!(out, ": {state} {since_ms:.1} ms");
    if is_on_cpu {
        let _ = write!(out, ", on cpu {}", thread.last_cpu());
    } else {
        let _ = write!(out, ", last cpu {}", thread.last_cpu());
    }
    let name = thread.wait_name.load(Ordering::Acquire);
    if state == "blocked" && !name.is_null() {
        // SAFETY: `note_wait` stores only references to `&'static str`s.
        let name: &'static str = unsafe { *name };
        let _ = write!(out, ", waits on {name} {:#x}", thread.wait_address.load(Ordering::Relaxed));
    }
    match thread.timer.try_lock() {
        Some(timer) => {
            if let Some((cpu, deadline, _)) = *timer {
                let _ = write!(out, ", deadline in {:.3} ms (cpu {cpu}'s timer)", ms_from(now, deadline));
            }
        }
        None => {
            let _ = write!(out, ", timer locked");
        }
    }
    if thread.wake_token.load(Ordering::Relaxed) {
        let _ = write!(out, ", wake token set");
    }
    if thread.needs_attention.load(Ordering::Relaxed) {
        let _ = write!(out, ", needs attention");
    }
    let _ = writeln!(out);
    if is_on_cpu || state == "exited" {
        // Its processor's own report has its backtrace.
        return;
    }
    // SAFETY: a thread off every processor keeps its saved stack pointer
    // until a processor switches it in; a racing switch makes the value
    // stale, never unreadable (a plain aligned word of a live thread).
    let saved_rsp = unsafe { core::ptr::read_volatile(thread.saved_rsp.get()) };
    // `rosv_context_switch` saved r15, r14, r13, r12, rbx, rbp, then the
    // return address (see `InitialFrame`).
    const SAVED_WORDS: u64 = 7;
    if !saved_rsp.is_multiple_of(8) || !thread.holds_stack_bytes(saved_rsp, SAVED_WORDS * 8) {
        return;
    }
    // SAFETY: the seven words lie within the thread's own stacks, which
    // are mapped while it lives.
    let (frame_pointer, return_address) = unsafe {
        let words = saved_rsp as *const u64;
        (core::ptr::read_volatile(words.add(5)), core::ptr::read_volatile(words.add(6)))
    };
    if crate::layout::is_kernel_text(return_address) {
        let _ = writeln!(out, "    at {:#018x}", return_address.wrapping_sub(1));
        crate::diagnostics::print_frames(frame_pointer, THREAD_BACKTRACE_DEPTH, &|address, size| {
            thread.holds_stack_bytes(address, size)
        });
    }
}

/// The processors' run-queue lengths and armed timers, from any processor
/// (for a report written by one processor about all).
pub fn report_cpus_briefly(out: &mut impl Write) {
    let now = cpu::read_tsc();
    for (index, cpu) in CPUS.iter().enumerate().take(cpu_count()) {
        let armed = cpu.armed_deadline.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "rosv: cpu {index}: {}, {} queued, timer ",
            if cpu.is_idle.load(Ordering::Relaxed) { "idle" } else { "busy" },
            cpu.queued.load(Ordering::Relaxed)
        );
        let _ = match armed {
            timer_arming::DISARMED => write!(out, "masked"),
            timer_arming::FIRED => write!(out, "fired"),
            deadline => write!(out, "in {:.3} ms", ms_from(now, deadline)),
        };
        let _ = writeln!(out);
    }
}
