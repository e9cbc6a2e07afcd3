//! Signal system calls: dispositions, masks, sending, returning from
//! handlers; and delivery on the way back to application code.

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::machine::Registers;
use crate::process::{PROCESS_ID, SIG_DFL, SIG_IGN, SIGNAL_COUNT, SignalAction, Thread};
use crate::signal::{self, SS_DISABLE, SignalInfo, code};
use crate::user::User;

const SIGKILL: u64 = 9;
const SIGSTOP: u64 = 19;
/// Signals no mask blocks.
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
/// Size of a signal set in the kernel ABI.
pub(super) const SIGSET_SIZE: u64 = 8;
/// The smallest alternate signal stack (`MINSIGSTKSZ`).
const MINIMUM_ALTERNATE_STACK: u64 = 2048;

fn signal_index(signal: u64) -> core::result::Result<usize, Errno> {
    if (1..=SIGNAL_COUNT as u64).contains(&signal) { Ok(signal as usize - 1) } else { Err(Errno::EINVAL) }
}

pub(super) fn rt_sigaction(
    context: Context<'_>,
    signal: u64,
    action: u64,
    old: u64,
    set_size: u64,
) -> Result {
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let index = signal_index(signal)?;
    let user = User::new(context.machine);
    let replacement = if action != 0 {
        if signal == SIGKILL || signal == SIGSTOP {
            return Err(Errno::EINVAL.into());
        }
        Some(SignalAction {
            handler: user.read_u64(action)?,
            flags: user.read_u64(action + 8)?,
            restorer: user.read_u64(action + 16)?,
            mask: user.read_u64(action + 24)? & !UNBLOCKABLE,
        })
    } else {
        None
    };
    let previous = {
        let mut state = context.process.state.lock();
        let previous = state.signal_actions[index];
        if let Some(action) = replacement {
            state.signal_actions[index] = action;
        }
        previous
    };
    if old != 0 {
        let words = [previous.handler, previous.flags, previous.restorer, previous.mask];
        for (offset, value) in words.into_iter().enumerate() {
            user.write_u64(old + offset as u64 * 8, value)?;
        }
    }
    Ok(0)
}

pub(super) fn rt_sigprocmask(context: Context<'_>, how: u64, set: u64, old: u64, set_size: u64) -> Result {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let user = User::new(context.machine);
    let change = if set != 0 { Some(user.read_u64(set)?) } else { None };
    let previous = {
        let mut state = context.thread.state.lock();
        let previous = state.signal_mask;
        if let Some(change) = change {
            let mask = match how {
                SIG_BLOCK => previous | change,
                SIG_UNBLOCK => previous & !change,
                SIG_SETMASK => change,
                _ => return Err(Errno::EINVAL.into()),
            };
            state.signal_mask = mask & !UNBLOCKABLE;
        }
        previous
    };
    if old != 0 {
        user.write_u64(old, previous)?;
    }
    Ok(0)
}

pub(super) fn rt_sigpending(context: Context<'_>, set: u64, set_size: u64) -> Result {
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let pending = context.thread.state.lock().pending_signals;
    User::new(context.machine).write_u64(set, pending)?;
    Ok(0)
}

pub(super) fn sigaltstack(context: Context<'_>, stack: u64, old: u64) -> Result {
    let user = User::new(context.machine);
    let replacement = if stack != 0 {
        let base = user.read_u64(stack)?;
        let flags = user.read_u64(stack + 8)? as u32;
        let size = user.read_u64(stack + 16)?;
        if flags & !SS_DISABLE != 0 {
            return Err(Errno::EINVAL.into());
        }
        if flags & SS_DISABLE == 0 && size < MINIMUM_ALTERNATE_STACK {
            return Err(Errno::ENOMEM.into());
        }
        Some((base, flags, size))
    } else {
        None
    };
    let previous = {
        let mut state = context.thread.state.lock();
        let previous = state.alternate_stack;
        if let Some(replacement) = replacement {
            state.alternate_stack = replacement;
        }
        previous
    };
    if old != 0 {
        let (base, flags, size) = previous;
        let flags = if size == 0 { SS_DISABLE } else { flags };
        user.write_u64(old, base)?;
        user.write_u64(old + 8, u64::from(flags))?;
        user.write_u64(old + 16, size)?;
    }
    Ok(0)
}

/// Sends `signal` to `target` (a thread of the calling process). A default
/// action that ends the process ends it now; ignored signals vanish;
/// others become pending on the thread, which is woken to take them.
fn send(context: Context<'_>, target: &Thread, signal: u64, info: SignalInfo) -> Result {
    if signal == 0 {
        return Ok(0);
    }
    let index = signal_index(signal)?;
    let action = context.process.state.lock().signal_actions[index];
    let is_ignored = action.handler == SIG_IGN
        || (action.handler == SIG_DFL && !signal::terminates(&action, signal as u8));
    if is_ignored {
        return Ok(0);
    }
    let mut state = target.state.lock();
    let is_blocked = state.signal_mask & (1 << index) != 0;
    if signal::terminates(&action, signal as u8) && (!is_blocked || signal == SIGKILL) {
        drop(state);
        return Err(Failure::Exit(128 + signal as u8));
    }
    state.pending_signals |= 1 << index;
    state.pending_info.insert(signal as u8, info);
    drop(state);
    if let Some(control) = target.control() {
        control.notify_signal();
    }
    Ok(0)
}

/// Sends `signal` to `process` from outside it (a terminal's interrupt
/// character, the host): it becomes pending on a thread that does not
/// block it (else the first), which is woken to take it. A signal the
/// process ignores, by its disposition or by default, vanishes.
pub fn signal_process(process: &crate::process::Process, signal: u8) {
    let Ok(index) = signal_index(u64::from(signal)) else { return };
    let action = process.state.lock().signal_actions[index];
    let is_ignored =
        action.handler == SIG_IGN || (action.handler == SIG_DFL && !signal::terminates(&action, signal));
    if is_ignored {
        return;
    }
    let threads = process.threads();
    let bit = 1u64 << index;
    let target = threads.iter().find(|thread| thread.state.lock().signal_mask & bit == 0).or(threads.first());
    let Some(target) = target else { return };
    let mut state = target.state.lock();
    state.pending_signals |= bit;
    state.pending_info.insert(signal, SignalInfo { code: code::KERNEL, ..SignalInfo::default() });
    drop(state);
    if let Some(control) = target.control() {
        control.notify_signal();
    }
}

/// Sends `signal` to `thread` from the kernel (a file's `SIGIO`): it
/// becomes pending on the thread, which is woken to take it; delivery
/// then applies the process's disposition.
pub(super) fn signal_thread(thread: &crate::process::Thread, signal: u8) {
    let Ok(index) = signal_index(u64::from(signal)) else { return };
    let mut state = thread.state.lock();
    state.pending_signals |= 1 << index;
    state.pending_info.insert(signal, SignalInfo { code: code::KERNEL, ..SignalInfo::default() });
    drop(state);
    if let Some(control) = thread.control() {
        control.notify_signal();
    }
}

/// `SIGPIPE`.
const SIGPIPE: u64 = 13;

/// A write found no reader: sends `SIGPIPE` to the calling thread (which
/// ends the process unless it is handled, ignored or blocked) and fails
/// with `EPIPE`.
pub(super) fn broken_pipe(context: Context<'_>) -> Failure {
    let info = SignalInfo { code: code::KERNEL, ..SignalInfo::default() };
    match send(context, context.thread, SIGPIPE, info) {
        Err(failure) => failure,
        Ok(_) => Failure::Error(Errno::EPIPE),
    }
}

fn sender(code: i32) -> SignalInfo {
    SignalInfo { code, pid: PROCESS_ID as u32, ..SignalInfo::default() }
}

pub(super) fn kill(context: Context<'_>, pid: u64, signal: u64) -> Result {
    let pid = pid as i64;
    if pid != PROCESS_ID as i64 && pid != 0 && pid != -1 && pid != -(PROCESS_ID as i64) {
        return Err(Errno::ESRCH.into());
    }
    signal_index(signal).or(if signal == 0 { Ok(0) } else { Err(Errno::EINVAL) })?;
    // A process-directed signal goes to a thread that does not block it,
    // preferably the caller.
    let bit = 1u64.checked_shl(signal.saturating_sub(1) as u32).unwrap_or(0);
    let target = if context.thread.state.lock().signal_mask & bit == 0 {
        context.thread.clone()
    } else {
        context
            .process
            .threads()
            .into_iter()
            .find(|thread| thread.state.lock().signal_mask & bit == 0)
            .unwrap_or_else(|| context.thread.clone())
    };
    send(context, &target, signal, sender(code::USER))
}

pub(super) fn tgkill(context: Context<'_>, group: u64, tid: u64, signal: u64) -> Result {
    if group != PROCESS_ID {
        return Err(Errno::ESRCH.into());
    }
    tkill(context, tid, signal)
}

pub(super) fn tkill(context: Context<'_>, tid: u64, signal: u64) -> Result {
    let target = context.process.thread(tid).ok_or(Errno::ESRCH)?;
    send(context, &target, signal, sender(code::TKILL))
}

/// `rt_sigreturn`. A frame that cannot be restored (unreadable, or an
/// instruction or stack pointer outside the application) is a SIGSEGV to
/// the thread, as on Linux, not an error the caller would return into.
pub(super) fn rt_sigreturn(context: Context<'_>, registers: &mut Registers) -> Result {
    if signal::restore_frame(context, registers).is_err() {
        let fault = signal::Fault { signal: 11, code: signal::fault_code::KERNEL, address: 0 };
        deliver_fault(context, registers, fault).map_err(Failure::Exit)?;
    }
    Err(Failure::Resumed)
}

/// What the interrupted system call asked for if a signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interruption {
    /// Nothing: the call completed.
    None,
    /// Restart the call if the handler has `SA_RESTART` (else `EINTR`).
    Restartable,
}

/// Outside a system call: runs the handler of the first deliverable signal
/// (no call to restart or interrupt). `Err` ends the process.
pub(super) fn deliver_asynchronously(
    context: Context<'_>,
    registers: &mut Registers,
) -> core::result::Result<(), u8> {
    deliver(context, registers, 0, Interruption::None)
}

/// Before returning to application code: runs the handler of the first
/// deliverable signal by pointing `registers` at it. `number` is the system
/// call that just ran. `Err` ends the process with that status.
pub(super) fn deliver(
    context: Context<'_>,
    registers: &mut Registers,
    number: u64,
    interruption: Interruption,
) -> core::result::Result<(), u8> {
    let restart = |registers: &mut Registers| {
        registers.rip -= 2;
        registers.rax = number;
    };
    let taken = {
        let mut state = context.thread.state.lock();
        state.deliverable_signal().map(|signal| {
            state.pending_signals &= !(1 << (signal - 1));
            (signal, state.pending_info.remove(&signal).unwrap_or_default())
        })
    };
    let Some((signal, info)) = taken else {
        if interruption == Interruption::Restartable {
            restart(registers);
        }
        return Ok(());
    };
    let action = context.process.state.lock().signal_actions[usize::from(signal - 1)];
    if action.handler == SIG_IGN {
        if interruption == Interruption::Restartable {
            restart(registers);
        }
        return Ok(());
    }
    if action.handler == SIG_DFL {
        return if signal::terminates(&action, signal) { Err(128 + signal) } else { Ok(()) };
    }
    if interruption == Interruption::Restartable {
        if action.flags & signal::flag::RESTART != 0 {
            restart(registers);
        } else {
            registers.rax = Errno::EINTR.to_return() as u64;
        }
    }
    // A frame that cannot be written ends the process as a SIGSEGV would.
    signal::setup_frame(context, registers, signal, info, action).map_err(|_| 128 + 11)
}

/// Runs the handler for a fault in application code, as Linux forces such
/// signals: a handler the application installed runs (with `si_addr`); a
/// fault whose signal is blocked, ignored or left at its default ends the
/// process. `Err` is the exit status.
pub(super) fn deliver_fault(
    context: Context<'_>,
    registers: &mut Registers,
    fault: signal::Fault,
) -> core::result::Result<(), u8> {
    let index = usize::from(fault.signal - 1);
    let action = context.process.state.lock().signal_actions[index];
    let is_blocked = context.thread.state.lock().signal_mask & (1 << index) != 0;
    if is_blocked || action.handler == SIG_DFL || action.handler == SIG_IGN {
        return Err(128 + fault.signal);
    }
    // Whether the address lies in a mapping decides between "nothing there"
    // and "not allowed there", whatever the page tables held.
    const SIGSEGV: u8 = 11;
    let code = match fault.code {
        signal::fault_code::SEGV_MAPERR | signal::fault_code::SEGV_ACCERR if fault.signal == SIGSEGV => {
            if context.process.memory.lock().area_at(fault.address).is_some() {
                signal::fault_code::SEGV_ACCERR
            } else {
                signal::fault_code::SEGV_MAPERR
            }
        }
        code => code,
    };
    let info = SignalInfo { code, address: Some(fault.address), ..SignalInfo::default() };
    // A frame that cannot be written ends the process as a SIGSEGV would.
    signal::setup_frame(context, registers, fault.signal, info, action).map_err(|_| 128 + 11)
}
