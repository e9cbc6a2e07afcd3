//! Signal system calls: dispositions, masks, sending, waiting, returning
//! from handlers; and delivery on the way back to application code.

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::machine::{Registers, Wakeup};
use crate::process::{SIG_DFL, SIG_IGN, SIGNAL_COUNT, SignalAction, Thread};
use crate::signal::{
    self, AlternateStack, MINIMUM_ALTERNATE_STACK, Queueing, SignalInfo, Target, UNBLOCKABLE, bit, code,
};
use crate::user::User;

/// Size of a signal set in the kernel ABI.
pub(super) const SIGSET_SIZE: u64 = 8;

fn signal_number(signal: u64) -> core::result::Result<u8, Errno> {
    if (1..=SIGNAL_COUNT as u64).contains(&signal) { Ok(signal as u8) } else { Err(Errno::EINVAL) }
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
    let signal = signal_number(signal)?;
    let user = User::new(context.machine);
    let replacement = if action != 0 {
        if signal == signal::SIGKILL || signal == signal::SIGSTOP {
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
    let previous = context.process.signal_handlers.with(|handlers| {
        let previous = handlers[usize::from(signal - 1)];
        if let Some(action) = replacement {
            handlers[usize::from(signal - 1)] = action;
        }
        previous
    });
    // A signal whose action becomes "ignore" is discarded where it is
    // pending, blocked or not (POSIX).
    if let Some(action) = replacement
        && signal::is_ignored(&action, signal)
    {
        signal::discard(context.process, bit(signal));
    }
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

/// `rt_sigpending`: the pending signals the thread blocks, its own and
/// its process's.
pub(super) fn rt_sigpending(context: Context<'_>, set: u64, set_size: u64) -> Result {
    if set_size > SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let blocked = context.thread.state.lock().signal_mask;
    let pending = signal::pending_set(context.thread) & blocked;
    User::new(context.machine).write_bytes(set, &pending.to_le_bytes()[..set_size as usize])?;
    Ok(0)
}

pub(super) fn sigaltstack(context: Context<'_>, stack: u64, old: u64) -> Result {
    let user = User::new(context.machine);
    let replacement = if stack != 0 {
        Some(AlternateStack {
            base: user.read_u64(stack)?,
            flags: user.read_u64(stack + 8)? as u32,
            size: user.read_u64(stack + 16)?,
        })
    } else {
        None
    };
    let stack_pointer = context.registers.rsp;
    let previous = {
        let mut state = context.thread.state.lock();
        let previous = state.alternate_stack;
        if let Some(replacement) = replacement {
            state.alternate_stack.replace(replacement, stack_pointer, MINIMUM_ALTERNATE_STACK)?;
        }
        previous
    };
    if old != 0 {
        user.write_u64(old, previous.base)?;
        user.write_u64(old + 8, u64::from(previous.reported_flags(stack_pointer)))?;
        user.write_u64(old + 16, previous.size)?;
    }
    Ok(0)
}

/// Sends `signal` (0 checks the target only) to `target` with `info`.
fn send(
    context: Context<'_>,
    target: Target<'_>,
    signal: u64,
    info: SignalInfo,
    queueing: Queueing,
) -> Result {
    if signal == 0 {
        return Ok(0);
    }
    let signal = signal_number(signal)?;
    signal::send(context.process, target, signal, info, None, queueing)?;
    Ok(0)
}

/// Sends `signal` to `process` from outside it (a terminal's interrupt
/// character, the host): any thread that does not block it takes it.
pub fn signal_process(process: &crate::process::Process, signal: u8) {
    let target = Target::Process { sender: None };
    let _ = signal::send(process, target, signal, SignalInfo::kernel(), None, Queueing::Always);
}

/// Sends `signal` with `info` from the kernel (a file's `SIGIO`) to
/// `thread` alone (`is_thread_directed`) or to its process, where any
/// thread that does not block it may take it; `thread` is woken to look.
/// Delivery then applies the process's disposition.
pub(super) fn signal_owner(
    thread: &crate::process::Thread,
    signal: u8,
    is_thread_directed: bool,
    info: SignalInfo,
) {
    let signals = &thread.signals;
    let may_queue = signals.reserve(usize::MAX);
    let added = if is_thread_directed {
        thread.state.lock().pending.add(signal, info, None, may_queue)
    } else {
        signals.pending.lock().add(signal, info, None, may_queue)
    };
    if may_queue && added != crate::signal::Added::Queued {
        signals.release(1);
    }
    if let Some(control) = thread.control() {
        control.notify_signal();
    }
    signals.waiters.notify();
}

/// `SIGPIPE`.
const SIGPIPE: u64 = 13;

/// A write found no reader: sends `SIGPIPE` to the calling thread (which
/// ends the process unless it is handled, ignored or blocked) and fails
/// with `EPIPE`.
pub(super) fn broken_pipe(context: Context<'_>) -> Failure {
    let info = sender(context, code::USER);
    let _ = send(context, Target::Thread(context.thread), SIGPIPE, info, Queueing::Always);
    Failure::Error(Errno::EPIPE)
}

/// What a signal the caller sends says of it.
pub(super) fn sender(context: Context<'_>, code: i32) -> SignalInfo {
    let uid = context.process.state.lock().credentials.real_user;
    SignalInfo::sender(code, context.process.pid as u32, uid)
}

/// Whether the caller may send `signal` to `target` (Linux's
/// `check_kill_permission`): its own process always; another when the
/// caller has `CAP_KILL`, when the caller's real or effective user is the
/// target's real or saved one, or for `SIGCONT` within the caller's
/// session.
pub(super) fn may_signal(context: Context<'_>, target: &crate::process::Process, signal: u64) -> bool {
    if target.pid == context.process.pid {
        return true;
    }
    if signal == u64::from(signal::SIGCONT) && target.session_id() == context.process.session_id() {
        return true;
    }
    // Copied out first: the two processes' locks are never held together.
    let sender = context.process.state.lock().credentials.clone();
    let receiver = target.state.lock().credentials.clone();
    sender.may_signal(&receiver)
}

pub(super) fn kill(context: Context<'_>, pid: u64, signal: u64) -> Result {
    if signal != 0 {
        signal_number(signal)?;
    }
    let targets = super::processes::kill_targets(context, pid)?;
    let info = sender(context, code::USER);
    // One process fails with EPERM when it may not be signalled; a group
    // when none of it may; -1 skips those it may not signal (Linux).
    let mut result: core::result::Result<(), Errno> = Err(Errno::ESRCH);
    let mut has_succeeded = false;
    for target in targets {
        if !may_signal(context, &target, signal) {
            if pid as i32 == -1 {
                result = result.or(Ok(()));
            } else if !has_succeeded {
                result = Err(Errno::EPERM);
            }
            continue;
        }
        // A process that has ended but is not reaped yet takes the signal
        // and drops it, as on Linux.
        let sent = if signal == 0 || target.has_ended() {
            Ok(())
        } else if target.pid == context.process.pid {
            let target = Target::Process { sender: Some(context.thread) };
            signal::send(context.process, target, signal as u8, info, None, Queueing::Always)
        } else {
            signal::send(
                &target,
                Target::Process { sender: None },
                signal as u8,
                info,
                None,
                Queueing::Always,
            )
        };
        match sent {
            Ok(()) => {
                has_succeeded = true;
                result = Ok(());
            }
            Err(errno) if !has_succeeded => result = Err(errno),
            Err(_) => {}
        }
    }
    result?;
    Ok(0)
}

/// The thread `tid` of this process, for `tkill` and `tgkill`.
fn thread_of(context: Context<'_>, tid: u64) -> core::result::Result<alloc::sync::Arc<Thread>, Errno> {
    let tid = tid as i32;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    context.process.thread(tid as u64).ok_or(Errno::ESRCH)
}

pub(super) fn tgkill(context: Context<'_>, group: u64, tid: u64, signal: u64) -> Result {
    if group as i32 <= 0 || tid as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    if group != context.process.pid {
        let process =
            crate::process::find(group).filter(|process| !process.has_ended()).ok_or(Errno::ESRCH)?;
        let target = process.thread(tid).ok_or(Errno::ESRCH)?;
        if !may_signal(context, &process, signal) {
            return Err(Errno::EPERM.into());
        }
        if signal != 0 {
            let number = signal_number(signal)?;
            let info = sender(context, code::TKILL);
            signal::send(&process, Target::Thread(&target), number, info, None, Queueing::Always)?;
        }
        return Ok(0);
    }
    tkill(context, tid, signal)
}

pub(super) fn tkill(context: Context<'_>, tid: u64, signal: u64) -> Result {
    if signal != 0 {
        signal_number(signal)?;
    }
    let target = thread_of(context, tid)?;
    // Sent with a negative code, a real-time signal counts against
    // RLIMIT_SIGPENDING (EAGAIN past it), as `sigqueue`'s do.
    send(context, Target::Thread(&target), signal, sender(context, code::TKILL), Queueing::Bounded)
}

/// Reads the `siginfo_t` a `rt_sigqueueinfo` caller passes. A process may
/// not pretend to be the kernel or `kill` to another process; to itself it
/// may send any code.
pub(super) fn queued_info(context: Context<'_>, address: u64) -> core::result::Result<SignalInfo, Errno> {
    let mut bytes = [0u8; signal::info::SIGINFO_SIZE];
    User::new(context.machine).read_into(address, &mut bytes)?;
    Ok(SignalInfo::decode(&bytes))
}

pub(super) fn rt_sigqueueinfo(context: Context<'_>, pid: u64, signal: u64, info: u64) -> Result {
    let info = queued_info(context, info)?;
    if signal != 0 {
        signal_number(signal)?;
    }
    if pid != context.process.pid {
        let process = crate::process::find(pid).filter(|process| !process.has_ended()).ok_or(Errno::ESRCH)?;
        if !may_signal(context, &process, signal) {
            return Err(Errno::EPERM.into());
        }
        if signal != 0 {
            let number = signal_number(signal)?;
            signal::send(&process, Target::Process { sender: None }, number, info, None, Queueing::Bounded)?;
        }
        return Ok(0);
    }
    let target = Target::Process { sender: Some(context.thread) };
    send(context, target, signal, info, Queueing::Bounded)
}

pub(super) fn rt_tgsigqueueinfo(
    context: Context<'_>,
    group: u64,
    tid: u64,
    signal: u64,
    info: u64,
) -> Result {
    if group as i32 <= 0 || tid as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    let info = queued_info(context, info)?;
    if signal != 0 {
        signal_number(signal)?;
    }
    if group != context.process.pid {
        return Err(Errno::ESRCH.into());
    }
    let target = thread_of(context, tid)?;
    send(context, Target::Thread(&target), signal, info, Queueing::Bounded)
}

/// Reads a signal set of `set_size` bytes (which must be the kernel's).
pub(super) fn read_signal_set(
    context: Context<'_>,
    address: u64,
    set_size: u64,
) -> core::result::Result<u64, Errno> {
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    User::new(context.machine).read_u64(address)
}

/// Replaces the thread's signal mask with `mask` for the length of a wait
/// (`sigsuspend`, `ppoll`, `pselect6`, `epoll_pwait`); the old one comes
/// back when a handler returns or the call ends ([`finish_wait_mask`]).
pub(super) fn begin_wait_mask(context: Context<'_>, mask: u64) {
    let mut state = context.thread.state.lock();
    if state.saved_mask.is_none() {
        state.saved_mask = Some(state.signal_mask);
    }
    state.signal_mask = mask & !UNBLOCKABLE;
}

/// Ends a wait that replaced the mask: a call a signal interrupted keeps
/// the wait's mask until the signal is delivered (its handler's frame
/// saves the old one); any other outcome restores the old mask at once,
/// so that signals only the wait let through stay pending.
pub(super) fn finish_wait_mask(context: Context<'_>, result: &Result) {
    let is_interrupted = matches!(result, Err(Failure::Error(Errno::EINTR)) | Err(Failure::Restart));
    if !is_interrupted {
        let mut state = context.thread.state.lock();
        if let Some(mask) = state.saved_mask.take() {
            state.signal_mask = mask;
        }
    }
}

/// Runs `wait` (a call that waits) with the signal mask at `mask`, of
/// `set_size` bytes, in place of the thread's, unless `mask` is null.
pub(super) fn with_wait_mask(
    context: Context<'_>,
    mask: u64,
    set_size: u64,
    wait: impl FnOnce() -> Result,
) -> Result {
    if mask == 0 {
        return wait();
    }
    let mask = read_signal_set(context, mask, set_size)?;
    begin_wait_mask(context, mask);
    let result = wait();
    finish_wait_mask(context, &result);
    result
}

/// Blocks until a signal the thread does not block is pending.
fn wait_for_any_signal(context: Context<'_>) {
    while !context.thread.has_deliverable_signal() {
        if context.machine.block(None) == Wakeup::Stop {
            return;
        }
    }
}

/// `rt_sigsuspend`: waits with `mask` until a signal is delivered.
pub(super) fn rt_sigsuspend(context: Context<'_>, mask: u64, set_size: u64) -> Result {
    let mask = read_signal_set(context, mask, set_size)?;
    begin_wait_mask(context, mask);
    wait_for_any_signal(context);
    Err(Failure::RestartUnlessHandled)
}

/// `pause`: waits until a signal is delivered.
pub(super) fn pause(context: Context<'_>) -> Result {
    wait_for_any_signal(context);
    Err(Failure::RestartUnlessHandled)
}

/// `rt_sigtimedwait`: takes a pending signal of `set`, waiting for one up
/// to `timeout` (none: for ever), and writes its `siginfo_t` to `info`.
pub(super) fn rt_sigtimedwait(
    context: Context<'_>,
    set: u64,
    info: u64,
    timeout: u64,
    set_size: u64,
) -> Result {
    let set = read_signal_set(context, set, set_size)? & !UNBLOCKABLE;
    let user = User::new(context.machine);
    let machine = context.machine;
    let deadline = if timeout == 0 {
        None
    } else {
        let mut bytes = [0u8; 16];
        user.read_into(timeout, &mut bytes)?;
        let duration = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?.to_ns();
        Some(machine.monotonic_ns().saturating_add(duration))
    };
    let taken = loop {
        if let Some(taken) = signal::take_from(context.thread, set) {
            break taken;
        }
        if deadline.is_some_and(|deadline| machine.monotonic_ns() >= deadline) {
            return Err(Errno::EAGAIN.into());
        }
        if context.thread.has_deliverable_signal() {
            return Err(Errno::EINTR.into());
        }
        // Senders look for a thread that does not block the signal: for
        // the wait, the awaited ones are let through.
        let real_mask = {
            let mut state = context.thread.state.lock();
            let real_mask = state.signal_mask;
            state.signal_mask &= !set;
            state.awaited_signals = set & real_mask;
            real_mask
        };
        let is_pending = signal::pending_set(context.thread) & set != 0;
        let wakeup = if is_pending || context.thread.has_deliverable_signal() {
            Wakeup::Normal
        } else {
            machine.block(deadline)
        };
        {
            let mut state = context.thread.state.lock();
            state.signal_mask = real_mask;
            state.awaited_signals = 0;
        }
        if wakeup == Wakeup::Stop {
            return Err(Errno::EINTR.into());
        }
    };
    let (signal, signal_info) = taken;
    if info != 0 {
        user.write_bytes(info, &signal_info.encode(signal))?;
    }
    Ok(u64::from(signal))
}

/// `signalfd4` flags.
const SFD_NONBLOCK: u64 = crate::vfs::file::flags::O_NONBLOCK as u64;
const SFD_CLOEXEC: u64 = crate::vfs::file::flags::O_CLOEXEC as u64;

/// `signalfd4` (and `signalfd`, which passes no flags): a new descriptor
/// that reads the signals in the mask at `mask`, or, for `fd` a signalfd,
/// a new mask for it.
pub(super) fn signalfd4(context: Context<'_>, fd: u64, mask: u64, set_size: u64, flags: u64) -> Result {
    use crate::signal::signalfd::SignalFile;
    use crate::vfs::{FileObject, OpenFile};
    if flags & !(SFD_NONBLOCK | SFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mask = read_signal_set(context, mask, set_size)?;
    if fd as i32 != -1 {
        let file = super::files::file(context, fd)?;
        let signal_file = file
            .special()
            .and_then(|special| special.as_any().downcast_ref::<SignalFile>())
            .ok_or(Errno::EINVAL)?;
        signal_file.set_mask(mask);
        return Ok(fd);
    }
    let status = crate::vfs::file::flags::O_RDWR | (flags & SFD_NONBLOCK) as u32;
    let file = OpenFile::new(
        FileObject::Special(SignalFile::new(context.thread, mask) as alloc::sync::Arc<_>),
        status,
    );
    super::paths::install(context, file, flags & SFD_CLOEXEC != 0)
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
    /// Restart the call if the handler has `SA_RESTART`, else `EINTR`
    /// (Linux's `ERESTARTSYS`).
    Restartable,
    /// Restart the call unless a handler runs, then `EINTR` (Linux's
    /// `ERESTARTNOHAND`).
    RestartableUnlessHandled,
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
/// deliverable signal by pointing `registers` at it, skipping signals
/// ignored by then. `number` is the system call that just ran. `Err` ends
/// the process with that status.
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
    loop {
        crate::ptrace::stops::interrupt(context, registers);
        wait_while_stopped(context, registers);
        let Some((signal, info)) = signal::take_deliverable(context.thread) else {
            if interruption != Interruption::None {
                restart(registers);
            }
            // No handler saved the mask a wait replaced: it comes back now.
            let mut state = context.thread.state.lock();
            if let Some(mask) = state.saved_mask.take() {
                state.signal_mask = mask;
            }
            return Ok(());
        };
        // A tracer sees the signal first and chooses what is delivered.
        let Some((signal, info)) = crate::ptrace::stops::deliver_signal(context, registers, signal, info)
        else {
            continue;
        };
        let action = context.process.signal_action(signal);
        if action.handler == SIG_IGN {
            continue;
        }
        if action.handler == SIG_DFL {
            if signal::terminates(&action, signal) {
                return Err(128 + signal);
            }
            // The terminal's stop signals do not stop a group that nobody
            // could continue (POSIX); SIGSTOP always does.
            let may_stop = signal == signal::SIGSTOP
                || !crate::process::is_group_orphaned(context.process.group_id(), 0);
            if signal::stops(&action, signal) && may_stop {
                signal::stop_process(context.process, signal);
            }
            continue;
        }
        match interruption {
            Interruption::None => {}
            Interruption::Restartable if action.flags & signal::flag::RESTART != 0 => restart(registers),
            Interruption::Restartable | Interruption::RestartableUnlessHandled => {
                registers.rax = Errno::EINTR.to_return() as u64;
            }
        }
        // A frame that cannot be written ends the process as a SIGSEGV would.
        return signal::setup_frame(context, registers, signal, info, action).map_err(|_| 128 + 11);
    }
}

/// Waits while the process is stopped (job control), until `SIGCONT`
/// continues it or a `SIGKILL` or the process's end comes. A traced
/// thread reports the stop to its tracer, which may let it run on.
fn wait_while_stopped(context: Context<'_>, registers: &mut Registers) {
    let job = &context.thread.signals.job;
    let mark = &context.thread.is_counted_stopped;
    // On its way out of the kernel, the thread sleeps in no call.
    context.thread.is_asleep_in_call.store(false, core::sync::atomic::Ordering::SeqCst);
    if !job.is_stopped() {
        // Counted while it slept in a call that then completed.
        job.leave(mark);
        crate::ptrace::stops::group_running(context);
        return;
    }
    if let Some(signal) = job.enter(mark) {
        signal::notify_parent_of_job(context.process, signal::JobEvent::Stopped(signal));
    }
    while let Some(signal) = job.stop_signal()
        && !signal::is_kill_pending(context.thread)
    {
        crate::ptrace::stops::interrupt(context, registers);
        if crate::ptrace::stops::group_stop(context, registers, signal) {
            break;
        }
        if context.machine.block(None) == Wakeup::Stop {
            break;
        }
    }
    job.leave(mark);
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
    if crate::ptrace::tracee(context.thread.tid).is_some() {
        return deliver_traced_fault(context, registers, fault);
    }
    let index = usize::from(fault.signal - 1);
    let action = context.process.signal_action(fault.signal);
    let is_blocked = context.thread.state.lock().signal_mask & (1 << index) != 0;
    if is_blocked || action.handler == SIG_DFL || action.handler == SIG_IGN {
        return Err(128 + fault.signal);
    }
    // Whether the address lies in a mapping decides between "nothing there"
    // and "not allowed there", whatever the page tables held.
    const SIGSEGV: u8 = 11;
    let code = match fault.code {
        signal::fault_code::SEGV_MAPERR | signal::fault_code::SEGV_ACCERR if fault.signal == SIGSEGV => {
            if context.process.memory().space.lock().area_at(fault.address).is_some() {
                signal::fault_code::SEGV_ACCERR
            } else {
                signal::fault_code::SEGV_MAPERR
            }
        }
        code => code,
    };
    let info = SignalInfo::fault(code, fault.address);
    // A frame that cannot be written ends the process as a SIGSEGV would.
    signal::setup_frame(context, registers, fault.signal, info, action).map_err(|_| 128 + 11)
}

/// A fault of a traced thread: its signal is forced as Linux's
/// `force_sig_info` does (unblocked; an ignored one back to its default)
/// and delivered, so that the tracer sees it first (a breakpoint's or a
/// single step's `SIGTRAP`).
fn deliver_traced_fault(
    context: Context<'_>,
    registers: &mut Registers,
    fault: signal::Fault,
) -> core::result::Result<(), u8> {
    let index = usize::from(fault.signal - 1);
    let is_blocked = context.thread.state.lock().signal_mask & (1 << index) != 0;
    if is_blocked || context.process.signal_action(fault.signal).handler == SIG_IGN {
        context.thread.state.lock().signal_mask &= !(1 << index);
        context.process.signal_handlers.with(|handlers| handlers[index] = SignalAction::default());
    }
    // Only the trap flag the tracer asked for is taken away.
    registers.rflags &= !crate::ptrace::stops::TRAP_FLAG;
    let info = SignalInfo::fault(fault.code, fault.address);
    let target = Target::Thread(context.thread);
    let _ = signal::send(context.process, target, fault.signal, info, None, Queueing::Always);
    deliver(context, registers, 0, Interruption::None)
}
