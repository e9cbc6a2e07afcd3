//! The tracee's side of tracing: where a traced thread stops, and what it
//! does with its tracer's decision.
//!
//! Each hook starts with [`super::tracee`], one atomic load while nothing
//! is traced. A stop saves the registers (with `orig_rax`), the FS base and
//! the floating-point state in the [`Tracee`], tells the tracer, and sleeps
//! until the tracer resumes or detaches it, a `SIGKILL` comes, or the
//! thread must end; it then takes back what the tracer changed.

use alloc::sync::Arc;

use super::{Resume, SIGTRAP, StopKind, SyscallRecord, Tracee, event, option, tracee};
use crate::errno::Errno;
use crate::machine::{Registers, Wakeup};
use crate::signal::{Queueing, SignalInfo, Target};
use crate::syscall::Context;

/// `CLD_TRAPPED`: `si_code` of the `SIGCHLD` a tracer gets for a stop.
pub const CLD_TRAPPED: i32 = 4;
/// RFLAGS.TF: trap after each instruction.
pub const TRAP_FLAG: u64 = 1 << 8;

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The tracer resumed it (or detached it) so.
    Resumed(Resume),
    /// A `SIGKILL`, or the thread must end: nothing the tracer said applies.
    Killed,
}

/// The status word `wait` reports for a stop of `kind`.
fn stop_status(kind: StopKind, options: u32, is_seized: bool) -> u32 {
    let signal = match kind {
        StopKind::Signal(signal) => u32::from(signal),
        StopKind::Group(signal) if is_seized => u32::from(signal) | u32::from(event::STOP) << 8,
        StopKind::Group(signal) => u32::from(signal),
        StopKind::SyscallEntry | StopKind::SyscallExit if options & option::TRACESYSGOOD != 0 => {
            u32::from(SIGTRAP) | 0x80
        }
        StopKind::SyscallEntry | StopKind::SyscallExit => u32::from(SIGTRAP),
        StopKind::Event(number) => u32::from(SIGTRAP) | u32::from(number) << 8,
    };
    signal << 8 | 0x7f
}

/// Stops the calling thread, traced as `tracee`, for `kind` with
/// `registers` (and `original_rax`) and `info` shown to the tracer.
fn stop(
    context: Context<'_>,
    tracee: &Tracee,
    registers: &mut Registers,
    original_rax: u64,
    kind: StopKind,
    info: (u8, SignalInfo),
) -> Ending {
    let machine = context.machine;
    let fpu = machine.save_fpu();
    let thread_pointer = machine.thread_pointer();
    let (tracer, status) = {
        let mut state = tracee.state.lock();
        state.registers = *registers;
        state.original_rax = original_rax;
        state.thread_pointer = thread_pointer;
        state.fpu = fpu;
        state.is_changed = (false, false, false);
        state.signal = info;
        state.stop_status = stop_status(kind, state.options, state.is_seized);
        state.stop = Some(kind);
        state.is_reported = false;
        state.resume = None;
        (state.tracer, state.stop_status)
    };
    notify_tracer(tracer, tracee.tid, status);
    let ending = loop {
        if let Some(resume) = tracee.state.lock().resume.take() {
            break Ending::Resumed(resume);
        }
        if crate::signal::is_kill_pending(context.thread) || machine.block(None) == Wakeup::Stop {
            break Ending::Killed;
        }
    };
    let mut state = tracee.state.lock();
    state.stop = None;
    let (registers_changed, pointer_changed, fpu_changed) = state.is_changed;
    if registers_changed {
        *registers = state.registers;
    }
    if pointer_changed {
        machine.set_thread_pointer(state.thread_pointer);
    }
    if fpu_changed {
        machine.restore_fpu(&state.fpu);
    }
    if let Ending::Resumed(resume) = ending {
        state.is_syscall_traced = matches!(resume, Resume::Syscall(_));
        state.is_single_stepping = matches!(resume, Resume::SingleStep(_));
        if state.is_single_stepping {
            registers.rflags |= TRAP_FLAG;
        } else {
            registers.rflags &= !TRAP_FLAG;
        }
    }
    ending
}

/// Tells tracer `tracer` that thread `tid` stopped with wait status
/// `status`: a wake-up of its waits, and `SIGCHLD` (`CLD_TRAPPED`).
fn notify_tracer(tracer: u64, tid: u64, status: u32) {
    let Some(tracer) = crate::process::find(tracer) else {
        return;
    };
    let action = tracer.signal_action(crate::signal::SIGCHLD);
    if action.flags & crate::signal::flag::NOCLDSTOP == 0 {
        let info = SignalInfo::child(CLD_TRAPPED, tid as u32, 0, ((status >> 8) & 0x7f) as i32);
        let target = Target::Process { sender: None };
        let _ = crate::signal::send(&tracer, target, crate::signal::SIGCHLD, info, None, Queueing::Always);
    }
    tracer.child_events.notify();
}

/// The `siginfo_t` of a stop the tracer causes (system call, event):
/// `SIGTRAP` with `code`, from the tracee.
fn trap_info(context: Context<'_>, code: i32) -> (u8, SignalInfo) {
    let uid = context.process.state.lock().credentials.real_user;
    (SIGTRAP, SignalInfo::sender(code, context.thread.tid as u32, uid))
}

/// A signal the tracer passed when resuming from a system-call stop is
/// sent to the tracee (Linux's `ptrace_report_syscall`).
fn send_passed_signal(context: Context<'_>, signal: u8) {
    if signal == 0 {
        return;
    }
    let info = SignalInfo::kernel();
    let target = Target::Thread(context.thread);
    let _ = crate::signal::send(context.process, target, signal, info, None, Queueing::Always);
}

/// An event stop (`PTRACE_EVENT_*` numbered `number`) with `message`, if
/// the tracee asked for it with `wanted` (an option).
fn event_stop(context: Context<'_>, tracee: &Tracee, registers: &mut Registers, number: u8, message: u64) {
    tracee.state.lock().event_message = message;
    let info = trap_info(context, i32::from(SIGTRAP) | i32::from(number) << 8);
    let _ = stop(context, tracee, registers, context.registers.rax, StopKind::Event(number), info);
}

/// Before a system call runs (`registers.rax` its number): the entry stop
/// under `PTRACE_SYSCALL`, where the tracer may change the number (in
/// `orig_rax`) and the arguments; and the exit event. Returns the value
/// to return instead of running the call when the tracer skipped it (the
/// number set to -1) or a `SIGKILL` came.
pub fn syscall_entry(context: Context<'_>, registers: &mut Registers) -> Option<u64> {
    let tracee = tracee(context.thread.tid)?;
    let (is_syscall_traced, options) = {
        let state = tracee.state.lock();
        (state.is_syscall_traced, state.options)
    };
    if is_syscall_traced {
        let number = registers.rax;
        let arguments =
            [registers.rdi, registers.rsi, registers.rdx, registers.r10, registers.r8, registers.r9];
        tracee.state.lock().syscall = SyscallRecord { number, arguments, result: 0 };
        registers.rax = Errno::ENOSYS.to_return() as u64;
        let info = trap_info(
            context,
            i32::from(SIGTRAP) | if options & option::TRACESYSGOOD != 0 { 0x80 } else { 0 },
        );
        let ending = stop(context, &tracee, registers, number, StopKind::SyscallEntry, info);
        let number = tracee.state.lock().original_rax;
        match ending {
            Ending::Killed => return Some(registers.rax),
            Ending::Resumed(resume) => send_passed_signal(context, resume.signal()),
        }
        if number == u64::MAX || number as i64 == -1 {
            return Some(registers.rax);
        }
        registers.rax = number;
    }
    let number = registers.rax;
    let is_exit = number == crate::linux::number::EXIT || number == crate::linux::number::EXIT_GROUP;
    if is_exit && options & option::TRACEEXIT != 0 {
        let status = u64::from(registers.rdi as u8) << 8;
        let mut copy = *registers;
        event_stop(context, &tracee, &mut copy, event::EXIT, status);
    }
    None
}

/// After a system call `number` ran (its result in `registers.rax`;
/// `has_executed` after a successful `execve`): the exec event or
/// `SIGTRAP`, and the exit stop under `PTRACE_SYSCALL`.
pub fn syscall_exit(context: Context<'_>, registers: &mut Registers, number: u64, has_executed: bool) {
    let Some(tracee) = tracee(context.thread.tid) else {
        return;
    };
    let (options, is_seized) = {
        let state = tracee.state.lock();
        (state.options, state.is_seized)
    };
    if has_executed {
        if options & option::TRACEEXEC != 0 {
            event_stop(context, &tracee, registers, event::EXEC, context.thread.tid);
        } else if !is_seized {
            let uid = context.process.state.lock().credentials.real_user;
            let info = SignalInfo::sender(0, context.process.pid as u32, uid);
            let target = Target::Thread(context.thread);
            let _ = crate::signal::send(context.process, target, SIGTRAP, info, None, Queueing::Always);
        }
    }
    if tracee.state.lock().is_syscall_traced {
        {
            let mut state = tracee.state.lock();
            state.syscall.number = number;
            state.syscall.result = registers.rax;
        }
        let code = i32::from(SIGTRAP) | if options & option::TRACESYSGOOD != 0 { 0x80 } else { 0 };
        let info = trap_info(context, code);
        if let Ending::Resumed(resume) =
            stop(context, &tracee, registers, number, StopKind::SyscallExit, info)
        {
            send_passed_signal(context, resume.signal());
        }
    }
}

/// Before `signal` (with `info`) is delivered to a traced thread: the
/// signal-delivery stop, where the tracer sees it first. Returns what is
/// delivered instead (`None`: nothing; the tracer suppressed it, or a
/// signal it injected is blocked and stays pending).
pub fn deliver_signal(
    context: Context<'_>,
    registers: &mut Registers,
    signal: u8,
    info: SignalInfo,
) -> Option<(u8, SignalInfo)> {
    if signal == crate::signal::SIGKILL {
        return Some((signal, info));
    }
    let Some(tracee) = tracee(context.thread.tid) else {
        return Some((signal, info));
    };
    let ending = stop(context, &tracee, registers, u64::MAX, StopKind::Signal(signal), (signal, info));
    let Ending::Resumed(resume) = ending else {
        return None;
    };
    let chosen = resume.signal();
    if chosen == 0 || usize::from(chosen) > crate::process::SIGNAL_COUNT {
        return None;
    }
    // The tracer's siginfo (PTRACE_SETSIGINFO) goes with the signal; a
    // different signal than the one stopped for comes from the tracer.
    let (stopped_signal, stopped_info) = tracee.state.lock().signal;
    let info = if chosen == stopped_signal {
        stopped_info
    } else {
        let tracer = tracee.state.lock().tracer;
        SignalInfo::sender(crate::signal::code::USER, tracer as u32, 0)
    };
    let is_blocked = context.thread.state.lock().signal_mask & crate::signal::bit(chosen) != 0;
    if is_blocked {
        let target = Target::Thread(context.thread);
        let _ = crate::signal::send(context.process, target, chosen, info, None, Queueing::Always);
        return None;
    }
    Some((chosen, info))
}

/// The calling thread's process is stopped with `signal` (job control):
/// a traced thread reports the group-stop once. Returns whether it runs
/// on although the group is stopped (the tracer resumed it; `PTRACE_LISTEN`
/// keeps it stopped with the group).
pub fn group_stop(context: Context<'_>, registers: &mut Registers, signal: u8) -> bool {
    let Some(tracee) = tracee(context.thread.tid) else {
        return false;
    };
    {
        let mut state = tracee.state.lock();
        if state.is_group_stop_reported {
            return state.runs_in_group_stop;
        }
        state.is_group_stop_reported = true;
    }
    let info = (signal, SignalInfo::kernel());
    let ending = stop(context, &tracee, registers, u64::MAX, StopKind::Group(signal), info);
    let runs = matches!(ending, Ending::Resumed(resume) if resume != Resume::Listen);
    // Remembered for the next look while the group stays stopped.
    tracee.state.lock().runs_in_group_stop = runs;
    runs
}

/// The calling thread's process is not stopped: a later group-stop is
/// reported anew.
pub fn group_running(context: Context<'_>) {
    if let Some(tracee) = tracee(context.thread.tid) {
        let mut state = tracee.state.lock();
        state.is_group_stop_reported = false;
        state.runs_in_group_stop = false;
    }
}

/// Before signals are delivered: a stop `PTRACE_INTERRUPT` (or the start
/// of a seized child) asked for, reported as `PTRACE_EVENT_STOP`.
pub fn interrupt(context: Context<'_>, registers: &mut Registers) {
    let Some(tracee) = tracee(context.thread.tid) else {
        return;
    };
    {
        let mut state = tracee.state.lock();
        if !state.is_interrupt_requested {
            return;
        }
        state.is_interrupt_requested = false;
    }
    let info = trap_info(context, i32::from(SIGTRAP) | i32::from(event::STOP) << 8);
    let _ = stop(context, &tracee, registers, u64::MAX, StopKind::Event(event::STOP), info);
}

/// What made a new thread or process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// `fork`, or `clone` with `SIGCHLD` as exit signal.
    Fork,
    /// `vfork` (`CLONE_VFORK`).
    Vfork,
    /// Any other `clone` (threads included).
    Clone,
}

impl Creation {
    /// The event and the option that asks for it.
    fn event(self) -> (u8, u32) {
        match self {
            Creation::Fork => (event::FORK, option::TRACEFORK),
            Creation::Vfork => (event::VFORK, option::TRACEVFORK),
            Creation::Clone => (event::CLONE, option::TRACECLONE),
        }
    }
}

/// `clone` flags that decide whether a child is traced.
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_UNTRACED: u64 = 0x0080_0000;

/// Before `thread` of `child` (made by the calling thread with `flags`)
/// first runs: traced by the caller's tracer when the caller asked for
/// the event (or `CLONE_PTRACE`), starting with a stop (`SIGSTOP`, or
/// `PTRACE_EVENT_STOP` when seized).
pub fn new_task(
    context: Context<'_>,
    child: &crate::process::Process,
    thread: &Arc<crate::process::Thread>,
    creation: Creation,
    flags: u64,
) {
    let Some(parent) = tracee(context.thread.tid) else {
        return;
    };
    let (tracer, options, is_seized) = {
        let state = parent.state.lock();
        (state.tracer, state.options, state.is_seized)
    };
    let (_, wanted) = creation.event();
    if flags & CLONE_UNTRACED != 0 || (options & wanted == 0 && flags & CLONE_PTRACE == 0) {
        return;
    }
    let Ok(tracee) = super::attach(child, thread, tracer, options, is_seized) else {
        return;
    };
    if is_seized {
        tracee.state.lock().is_interrupt_requested = true;
    } else {
        let info = SignalInfo::kernel();
        let target = Target::Thread(thread);
        let _ = crate::signal::send(child, target, crate::signal::SIGSTOP, info, None, Queueing::Always);
    }
}

/// After the calling thread made `new_id` (and started it): the event
/// stop for `creation`, if asked for.
pub fn created(context: Context<'_>, creation: Creation, new_id: u64) {
    let Some(tracee) = tracee(context.thread.tid) else {
        return;
    };
    let (number, wanted) = creation.event();
    if tracee.state.lock().options & wanted != 0 {
        let mut registers = *context.registers;
        event_stop(context, &tracee, &mut registers, number, new_id);
    }
}

/// After a `vfork` child released the calling thread: the
/// `PTRACE_EVENT_VFORK_DONE` stop, if asked for.
pub fn vfork_done(context: Context<'_>, child_id: u64) {
    let Some(tracee) = tracee(context.thread.tid) else {
        return;
    };
    if tracee.state.lock().options & option::TRACEVFORKDONE != 0 {
        let mut registers = *context.registers;
        event_stop(context, &tracee, &mut registers, event::VFORK_DONE, child_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_statuses_are_linuxs_encodings() {
        let good = option::TRACESYSGOOD;
        assert_eq!(stop_status(StopKind::Signal(10), 0, false), 0x0a7f);
        assert_eq!(stop_status(StopKind::SyscallEntry, good, false), 0x857f);
        assert_eq!(stop_status(StopKind::SyscallExit, 0, false), 0x057f);
        assert_eq!(stop_status(StopKind::Event(event::FORK), 0, false), 0x1_057f);
        assert_eq!(stop_status(StopKind::Event(event::STOP), 0, true), 0x80_057f);
        assert_eq!(stop_status(StopKind::Group(19), 0, true), 0x80_137f);
        assert_eq!(stop_status(StopKind::Group(19), 0, false), 0x137f);
    }
}
