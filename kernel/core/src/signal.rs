//! Signals: sending, what is pending, and taking the next one to deliver.
//!
//! A signal is sent to a thread (`tkill`, `tgkill`, a fault, a timer with
//! `SIGEV_THREAD_ID`) or to the process (`kill`, `sigqueue`, `alarm`, a
//! timer, the terminal). It becomes pending in the thread's or the
//! process's [`Pending`] set, and a thread that may take it is woken (and
//! interrupted, if it runs application code). A thread takes the lowest
//! pending signal its mask does not block, its own before its process's,
//! when it returns to application code ([`take_deliverable`]), or the
//! signals it waits for in `sigtimedwait` and `signalfd` ([`take_from`]).
//! The handler's frame is [`frame`]'s business.
//!
//! Neighbours: `process` holds dispositions, masks and the pending sets;
//! `syscall::signals` has the system calls and delivery.

pub mod frame;
pub mod info;
pub mod job;
pub mod pending;
pub mod signalfd;

use alloc::sync::Arc;

pub use frame::{AlternateStack, restore_frame, setup_frame};
pub use info::{SignalInfo, code};
pub use job::{JobEvent, SIGCONT, is_stop_signal};
pub use pending::{Added, Pending, ProcessSignals, SignalSource, bit};

use crate::errno::Errno;
use crate::process::{Process, SIG_DFL, SIG_IGN, SignalAction, Thread, limit};

/// `SIGKILL` and `SIGSTOP`, which no mask blocks and no handler catches.
pub const SIGKILL: u8 = 9;
/// See [`SIGKILL`].
pub const SIGSTOP: u8 = 19;
/// Sent to a parent when its child ends.
pub const SIGCHLD: u8 = 17;
/// Signals no mask blocks.
pub const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

/// `sa_flags` bits.
pub mod flag {
    /// `SIGCHLD` only: no signal when a child stops or continues.
    pub const NOCLDSTOP: u64 = 0x1;
    /// `SIGCHLD` only: ended children are reaped at once, never zombies.
    pub const NOCLDWAIT: u64 = 0x2;
    /// The handler takes three arguments.
    pub const SIGINFO: u64 = 0x4;
    /// `sa_restorer` is set.
    pub const RESTORER: u64 = 0x0400_0000;
    /// Run the handler on the alternate stack.
    pub const ONSTACK: u64 = 0x0800_0000;
    /// Restart interrupted system calls.
    pub const RESTART: u64 = 0x1000_0000;
    /// Do not block the signal while its handler runs.
    pub const NODEFER: u64 = 0x4000_0000;
    /// Reset the disposition to the default once delivered.
    pub const RESETHAND: u64 = 0x8000_0000;
}

/// `sigaltstack` flag: the thread runs on the alternate stack.
pub const SS_ONSTACK: u32 = 1;
/// `sigaltstack` flag: the alternate stack is disabled.
pub const SS_DISABLE: u32 = 2;
/// `sigaltstack` flag: the alternate stack is disabled while a handler
/// runs on it, and restored when the handler returns.
pub const SS_AUTODISARM: u32 = 1 << 31;

/// The smallest alternate signal stack (`MINSIGSTKSZ`).
pub const MINIMUM_ALTERNATE_STACK: u64 = 2048;

/// Whether `action` for `signal` is the default action that ends the process.
pub fn terminates(action: &SignalAction, signal: u8) -> bool {
    action.handler == SIG_DFL && !is_ignored_by_default(signal) && !is_stop_signal(signal)
}

/// Whether `action` for `signal` is the default action that stops the
/// process.
pub fn stops(action: &SignalAction, signal: u8) -> bool {
    action.handler == SIG_DFL && is_stop_signal(signal)
}

/// Whether the default action of `signal` leaves the process alone:
/// `SIGCHLD`, `SIGCONT` (which continues it when sent, whatever its
/// action), `SIGURG`, `SIGWINCH`.
fn is_ignored_by_default(signal: u8) -> bool {
    matches!(signal, 17 | 18 | 23 | 28)
}

/// Whether `action` makes the kernel drop `signal` when it is sent.
pub fn is_ignored(action: &SignalAction, signal: u8) -> bool {
    action.handler == SIG_IGN || (action.handler == SIG_DFL && is_ignored_by_default(signal))
}

/// Whom a signal is sent to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One thread.
    Thread(&'a Thread),
    /// The process: any thread that does not block it may take it.
    Process {
        /// The thread that sends it, which takes it first if it may (so
        /// that a signal a process sends itself is delivered before the
        /// call returns, as POSIX asks).
        sender: Option<&'a Thread>,
    },
}

/// How a sent signal may use the queue that `RLIMIT_SIGPENDING` bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queueing {
    /// Past the limit, a real-time signal fails with `EAGAIN` (`sigqueue`,
    /// timers, message queues).
    Bounded,
    /// Past the limit, the signal is still sent, without its information
    /// (`kill` and the kernel's own signals).
    Always,
}

/// Sends `signal` (1 to 64) to `target` of `process`. A signal the process
/// ignores (and the thread it would go to does not block) vanishes;
/// otherwise it becomes pending and a thread that may take it is woken.
pub fn send(
    process: &Process,
    target: Target<'_>,
    signal: u8,
    info: SignalInfo,
    source: Option<Arc<dyn SignalSource>>,
    queueing: Queueing,
) -> Result<(), Errno> {
    if !(1..=crate::process::SIGNAL_COUNT as u8).contains(&signal) {
        return Err(Errno::EINVAL);
    }
    let action = process.signal_action(signal);
    let limit = process.state.lock().limits[limit::SIGPENDING].current;
    // Stop and continue signals cancel each other when sent, and SIGCONT
    // continues the process whatever its action (POSIX).
    if signal == SIGCONT {
        discard(process, job::STOP_SIGNALS);
        continue_process(process);
    } else if is_stop_signal(signal) {
        discard(process, bit(SIGCONT));
    }
    let leader = match target {
        Target::Thread(_) => None,
        Target::Process { .. } => {
            process.thread(process.pid).or_else(|| process.threads().into_iter().next())
        }
    };
    let checked = match target {
        Target::Thread(thread) => Some(thread),
        Target::Process { .. } => leader.as_deref(),
    };
    let is_blocked = checked.is_some_and(|thread| {
        let state = thread.state.lock();
        (state.signal_mask | state.awaited_signals) & bit(signal) != 0
    });
    // A tracer sees even ignored signals (but for SIGKILL).
    if is_ignored(&action, signal) && !is_blocked && !crate::ptrace::is_process_traced(process.pid) {
        if let Some(source) = source {
            source.discard();
        }
        return Ok(());
    }
    let signals = &process.signals;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let may_queue = signals.reserve(if queueing == Queueing::Always && signal < pending::FIRST_REAL_TIME {
        usize::MAX
    } else {
        limit
    });
    if !may_queue && queueing == Queueing::Bounded && signal >= pending::FIRST_REAL_TIME {
        if let Some(source) = source {
            source.discard();
        }
        return Err(Errno::EAGAIN);
    }
    let kept = source.clone();
    let added = match target {
        Target::Thread(thread) => thread.state.lock().pending.add(signal, info, source, may_queue),
        Target::Process { .. } => signals.pending.lock().add(signal, info, source, may_queue),
    };
    if added != Added::Queued {
        if may_queue {
            signals.release(1);
        }
        // The instance pending already, or this one without information,
        // is not the source's: it is not told when that is taken.
        if let Some(source) = kept {
            source.discard();
        }
    }
    if added == Added::Merged {
        return Ok(());
    }
    let woken = match target {
        Target::Thread(thread) => Some(thread),
        Target::Process { sender } => {
            let wants = |thread: &Thread| thread.state.lock().signal_mask & bit(signal) == 0;
            match sender.filter(|sender| wants(sender)) {
                Some(sender) => Some(sender),
                None => {
                    let chosen = leader
                        .clone()
                        .filter(|leader| wants(leader))
                        .or_else(|| process.threads().into_iter().find(|thread| wants(thread)));
                    if let Some(chosen) = chosen {
                        notify(&chosen);
                    }
                    None
                }
            }
        }
    };
    if let Some(thread) = woken {
        notify(thread);
    }
    signals.waiters.notify();
    Ok(())
}

/// Tells `parent` that `child` ended, with `signal` (its exit signal).
pub fn notify_child_ended(parent: &Process, child: &Process, signal: u8) {
    let Some(termination) = child.termination() else {
        return;
    };
    let (code, status) = match termination {
        crate::process::Termination::Exited(status) => (code::CHILD_EXITED, i32::from(status)),
        crate::process::Termination::Killed(signal) => (code::CHILD_KILLED, i32::from(signal)),
    };
    let uid = child.state.lock().credentials.real_user;
    let info = SignalInfo::child(code, child.pid as u32, uid, status);
    let _ = send(parent, Target::Process { sender: None }, signal, info, None, Queueing::Always);
}

/// Lets `process` run again if it is stopped, and tells its parent.
pub fn continue_process(process: &Process) {
    let job = &process.signals.job;
    if !job.is_stopped() {
        return;
    }
    let was_complete = job.resume();
    for thread in process.threads() {
        if let Some(control) = thread.control() {
            control.wake();
        }
    }
    if was_complete {
        notify_parent_of_job(process, JobEvent::Continued);
    }
}

/// Stops `process` by `signal` (a thread took a stop signal); its other
/// threads stop when they next look at their signals, and the last to
/// stop tells the parent. Returns whether it was running.
pub fn stop_process(process: &Process, signal: u8) -> bool {
    let job = &process.signals.job;
    if !job.stop(signal) {
        return false;
    }
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    for thread in process.threads() {
        // A thread asleep in a blocking call counts as stopped where it
        // sleeps; it stops in delivery on its way out. Others are told.
        if thread.is_asleep_in_call.load(core::sync::atomic::Ordering::SeqCst) {
            if let Some(signal) = job.enter(&thread.is_counted_stopped) {
                notify_parent_of_job(process, JobEvent::Stopped(signal));
            }
        } else {
            notify(&thread);
        }
    }
    true
}

/// Tells the parent of `child` that it stopped or continued: `SIGCHLD`
/// with `CLD_STOPPED` or `CLD_CONTINUED` unless the parent's action has
/// `SA_NOCLDSTOP`, and a wake-up of its waits.
pub fn notify_parent_of_job(child: &Process, event: JobEvent) {
    let Some(parent) = child.family.lock().parent.upgrade() else {
        return;
    };
    let action = parent.signal_action(SIGCHLD);
    if action.flags & flag::NOCLDSTOP == 0 {
        let (code, status) = match event {
            JobEvent::Stopped(signal) => (code::CHILD_STOPPED, i32::from(signal)),
            JobEvent::Continued => (code::CHILD_CONTINUED, i32::from(SIGCONT)),
        };
        let uid = child.state.lock().credentials.real_user;
        let info = SignalInfo::child(code, child.pid as u32, uid, status);
        let _ = send(&parent, Target::Process { sender: None }, SIGCHLD, info, None, Queueing::Always);
    }
    parent.child_events.notify();
}

/// Whether `thread` has a `SIGKILL` pending (which ends a stopped process).
pub fn is_kill_pending(thread: &Thread) -> bool {
    pending_set(thread) & bit(SIGKILL) != 0
}

/// Wakes `thread` to look at its signals.
fn notify(thread: &Thread) {
    if let Some(control) = thread.control() {
        control.notify_signal();
    }
}

/// The lowest signal in `ready`.
fn lowest(ready: u64) -> Option<u8> {
    (ready != 0).then(|| ready.trailing_zeros() as u8 + 1)
}

/// Takes the lowest pending signal of `thread` in `set` (its own before
/// its process's), with its information. Signals whose source withdrew
/// them are skipped.
fn take_lowest(thread: &Thread, set: impl Fn(u64) -> u64) -> Option<(u8, SignalInfo)> {
    loop {
        let (signal, taken) = {
            let mut state = thread.state.lock();
            let mut shared = thread.signals.pending.lock();
            let wanted = set(state.signal_mask);
            let signal = lowest((state.pending.set() | shared.set()) & wanted)?;
            let taken =
                if state.pending.contains(signal) { state.pending.take(signal) } else { shared.take(signal) };
            (signal, taken?)
        };
        let pending::Taken { mut info, source, was_queued } = taken;
        if was_queued {
            thread.signals.release(1);
        }
        if source.is_none_or(|source| source.take(&mut info)) {
            return Some((signal, info));
        }
    }
}

/// Takes the signal `thread` should handle next: the lowest pending one
/// its mask does not block.
pub fn take_deliverable(thread: &Thread) -> Option<(u8, SignalInfo)> {
    take_lowest(thread, |mask| !mask)
}

/// Takes the lowest pending signal of `thread` in `set`, blocked or not
/// (`sigtimedwait`, `signalfd`).
pub fn take_from(thread: &Thread, set: u64) -> Option<(u8, SignalInfo)> {
    take_lowest(thread, |_| set)
}

/// The signals pending for `thread`: its own and its process's.
pub fn pending_set(thread: &Thread) -> u64 {
    let own = thread.state.lock().pending.set();
    own | thread.signals.pending.lock().set()
}

/// Drops every pending instance of the signals in `set`, in the process
/// and each of its threads (their action became "ignore").
pub fn discard(process: &Process, set: u64) {
    let mut dropped = process.signals.pending.lock().discard(set);
    for thread in process.threads() {
        dropped += thread.state.lock().pending.discard(set);
    }
    process.signals.release(dropped);
}

/// A fault in application code, as a signal: what the kernel delivers when
/// demand paging cannot resolve it (Linux's `force_sig_fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The signal (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`).
    pub signal: u8,
    /// `si_code` (`SEGV_MAPERR`, `FPE_INTDIV`, ...).
    pub code: i32,
    /// `si_addr`: the faulting data address, or the instruction's.
    pub address: u64,
}

/// The `si_code` of a floating-point exception: the first unmasked
/// exception flagged in the saved state `fpu` (the processor's save image,
/// x87 control and status words at 0 and 2, MXCSR at 24) for an x87 fault
/// (`#MF`) or, with `is_simd`, an SSE one (`#XM`), as Linux decides it.
pub fn floating_point_code(fpu: &[u8], is_simd: bool) -> i32 {
    let half = |offset: usize| {
        fpu.get(offset..offset + 2).map_or(0, |bytes| u16::from_le_bytes([bytes[0], bytes[1]]))
    };
    let raised = if is_simd {
        let mxcsr = u32::from(half(24)) | u32::from(half(26)) << 16;
        !(mxcsr >> 7) & mxcsr
    } else {
        u32::from(half(2) & !half(0))
    };
    if raised & 0x01 != 0 {
        fault_code::FPE_FLTINV
    } else if raised & 0x04 != 0 {
        fault_code::FPE_FLTDIV
    } else if raised & 0x08 != 0 {
        fault_code::FPE_FLTOVF
    } else if raised & 0x12 != 0 {
        fault_code::FPE_FLTUND
    } else if raised & 0x20 != 0 {
        fault_code::FPE_FLTRES
    } else {
        // Nothing unmasked is flagged (a spurious fault): say so vaguely.
        fault_code::FPE_FLTINV
    }
}

/// `si_code` values of faults.
pub mod fault_code {
    /// `SEGV_MAPERR`: nothing is mapped there.
    pub const SEGV_MAPERR: i32 = 1;
    /// `SEGV_ACCERR`: mapped, but the access is not allowed.
    pub const SEGV_ACCERR: i32 = 2;
    /// `BUS_ADRALN`: misaligned access.
    pub const BUS_ADRALN: i32 = 1;
    /// `BUS_ADRERR`: no such place in the object (past a mapped file's end).
    pub const BUS_ADRERR: i32 = 2;
    /// `ILL_ILLOPN`: illegal operand (an undefined instruction).
    pub const ILL_ILLOPN: i32 = 2;
    /// `FPE_INTDIV`: integer division by zero.
    pub const FPE_INTDIV: i32 = 1;
    /// `FPE_INTOVF`: integer overflow.
    pub const FPE_INTOVF: i32 = 2;
    /// `FPE_FLTDIV`: floating-point division by zero.
    pub const FPE_FLTDIV: i32 = 3;
    /// `FPE_FLTOVF`: floating-point overflow.
    pub const FPE_FLTOVF: i32 = 4;
    /// `FPE_FLTUND`: floating-point underflow.
    pub const FPE_FLTUND: i32 = 5;
    /// `FPE_FLTRES`: inexact floating-point result.
    pub const FPE_FLTRES: i32 = 6;
    /// `FPE_FLTINV`: invalid floating-point operation.
    pub const FPE_FLTINV: i32 = 7;
    /// `TRAP_BRKPT`: a breakpoint.
    pub const TRAP_BRKPT: i32 = 1;
    /// `SI_KERNEL`: raised by the kernel without a more precise reason.
    pub const KERNEL: i32 = 0x80;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_point_codes_name_the_unmasked_exception() {
        let mut fpu = [0u8; 512];
        // MXCSR: division by zero flagged (bit 2) and unmasked (bit 9 clear).
        fpu[24..28].copy_from_slice(&((0x1f80u32 & !(1 << 9)) | 0x04).to_le_bytes());
        assert_eq!(floating_point_code(&fpu, true), fault_code::FPE_FLTDIV);
        // Flagged but masked: not the cause.
        fpu[24..28].copy_from_slice(&(0x1f80u32 | 0x20).to_le_bytes());
        assert_eq!(floating_point_code(&fpu, true), fault_code::FPE_FLTINV);
        // x87: overflow unmasked in the control word and flagged in the status.
        fpu[0..2].copy_from_slice(&(0x037fu16 & !0x08).to_le_bytes());
        fpu[2..4].copy_from_slice(&0x0088u16.to_le_bytes());
        assert_eq!(floating_point_code(&fpu, false), fault_code::FPE_FLTOVF);
    }
}
