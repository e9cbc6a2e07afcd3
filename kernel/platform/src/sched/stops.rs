//! Stopping threads and getting their attention: flags the scheduler's
//! way back to application code looks at, and the interrupt that makes a
//! running thread look now.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use super::{CPUS, RESCHEDULE_VECTOR, Thread, current_cpu, this_cpu, unpark};
use crate::{apic, cpu};

/// What a thread asked to stop runs instead of returning to application
/// code; it never returns.
pub type StopHandler = fn() -> !;

static STOP_HANDLER: spin::Once<StopHandler> = spin::Once::new();

/// Registers what runs when a thread asked to stop reaches application
/// code again (set once).
pub fn set_stop_handler(handler: StopHandler) {
    STOP_HANDLER.call_once(|| handler);
}

/// Asks `thread` to stop before it runs application code again: wakes it if
/// it is parked, and interrupts its processor if it is running.
pub fn request_stop(thread: &Arc<Thread>) {
    thread.mark_stop_requested();
    unpark(thread);
    core::sync::atomic::fence(Ordering::SeqCst);
    interrupt_if_running(thread);
}

/// Asks the kernel to look at `thread` before it runs more application
/// code (a signal is pending): interrupts its processor if it is running
/// there, so that even a thread that never makes a system call notices.
/// Waking a parked thread is the caller's business.
pub fn request_attention(thread: &Arc<Thread>) {
    thread.mark_needs_attention();
    // The flag must be visible before `on_cpu` is read (a store followed by
    // a load, which x86 may otherwise reorder): see `switch_to`.
    core::sync::atomic::fence(Ordering::SeqCst);
    interrupt_if_running(thread);
}

/// Whether the running thread was asked for attention since the last call.
pub(crate) fn take_attention() -> bool {
    let were_enabled = cpu::disable_interrupts();
    let needs_attention = this_cpu().current().take_needs_attention();
    cpu::restore_interrupts(were_enabled);
    needs_attention
}

/// Called on the way back to application code: runs the stop handler if
/// the current thread was asked to stop.
pub fn stop_point() {
    let were_enabled = cpu::disable_interrupts();
    let is_stop_requested = this_cpu().current().is_stop_requested();
    cpu::restore_interrupts(were_enabled);
    if is_stop_requested && let Some(handler) = STOP_HANDLER.get() {
        handler();
    }
}

/// Called last on every way back to application code (a system call's
/// return, a diverted thread's resumption, a new thread's start): if the
/// thread was asked for attention and has not looked yet, interrupts this
/// processor, so that the interrupt arrives as soon as application code
/// runs and diverts it. A request made while the thread was off every
/// processor interrupted none, and a thread that then runs without a
/// system call would otherwise not notice until some other interrupt came.
pub fn notice_attention_point() {
    let were_enabled = cpu::disable_interrupts();
    let cpu = this_cpu();
    if cpu.current().needs_attention.load(Ordering::SeqCst) {
        apic::send_ipi(cpu.apic_id.load(Ordering::Relaxed), RESCHEDULE_VECTOR);
    }
    cpu::restore_interrupts(were_enabled);
}

/// Interrupts the processor `thread` runs on, if it runs on another one.
fn interrupt_if_running(thread: &Thread) {
    if thread.on_cpu.load(Ordering::Acquire) {
        let cpu = thread.last_cpu();
        if cpu != current_cpu() {
            apic::send_ipi(CPUS[cpu].apic_id.load(Ordering::Relaxed), RESCHEDULE_VECTOR);
        }
    }
}
