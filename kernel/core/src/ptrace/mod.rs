//! Process tracing (`ptrace`): who traces which thread, and its stops.
//!
//! A tracer (a process) traces threads of other processes, each a
//! [`Tracee`] in one table keyed by thread id. A tracee stops where Linux
//! stops it (before a signal is delivered, at a group-stop, at system-call
//! entry and exit, at events such as `fork` and `execve`), saves its
//! registers and floating-point state in its [`Tracee`], tells its tracer
//! (a wake-up of `child_events`, `SIGCHLD` with `CLD_TRAPPED`), and sleeps
//! until the tracer resumes it, detaches, or a `SIGKILL` comes. The tracer
//! reads and changes the saved state meanwhile; the tracee takes it back
//! when it resumes.
//!
//! Untraced threads pay one atomic load per system call and signal
//! delivery ([`tracee`] answers `None` at once while the table is empty).
//!
//! Neighbours: [`stops`] holds the tracee's side (the hooks the system-call
//! dispatcher, signal delivery and thread creation call); `layout` the
//! binary shapes tracers read; `syscall::ptrace` the requests; `syscall::wait`
//! reports stops and ends to the tracer.

pub mod layout;
pub mod stops;

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use crate::machine::Registers;
use crate::process::{Process, Thread};
use crate::signal::SignalInfo;

/// `SIGTRAP`: what breakpoints, single steps and tracing stops report.
pub const SIGTRAP: u8 = 5;

/// `PTRACE_O_*` options.
pub mod option {
    /// System-call stops report `SIGTRAP | 0x80`.
    pub const TRACESYSGOOD: u32 = 0x1;
    /// Stop at `fork` and trace the child.
    pub const TRACEFORK: u32 = 0x2;
    /// Stop at `vfork` and trace the child.
    pub const TRACEVFORK: u32 = 0x4;
    /// Stop at `clone` and trace the new thread or process.
    pub const TRACECLONE: u32 = 0x8;
    /// Stop at a successful `execve`.
    pub const TRACEEXEC: u32 = 0x10;
    /// Stop when a `vfork` child released its parent.
    pub const TRACEVFORKDONE: u32 = 0x20;
    /// Stop before the thread exits.
    pub const TRACEEXIT: u32 = 0x40;
    /// Stop at seccomp's `SECCOMP_RET_TRACE` (never happens: no filters).
    pub const TRACESECCOMP: u32 = 0x80;
    /// The tracee is killed when its tracer ends.
    pub const EXITKILL: u32 = 0x10_0000;
    /// Suspend seccomp filters (accepted; there are none).
    pub const SUSPEND_SECCOMP: u32 = 0x20_0000;
    /// Every option Linux knows.
    pub const ALL: u32 = 0xff | EXITKILL | SUSPEND_SECCOMP;
}

/// `PTRACE_EVENT_*`: why an event stop happened.
pub mod event {
    /// The tracee forked (message: the child's id).
    pub const FORK: u8 = 1;
    /// The tracee called `vfork` (message: the child's id).
    pub const VFORK: u8 = 2;
    /// The tracee cloned (message: the new thread's id).
    pub const CLONE: u8 = 3;
    /// The tracee's `execve` succeeded (message: its former thread id).
    pub const EXEC: u8 = 4;
    /// The `vfork` child released the tracee (message: the child's id).
    pub const VFORK_DONE: u8 = 5;
    /// The tracee is about to exit (message: its wait status).
    pub const EXIT: u8 = 6;
    /// A `PTRACE_SEIZE`d tracee stopped for `PTRACE_INTERRUPT`, a
    /// group-stop, or its start as an automatically traced child.
    pub const STOP: u8 = 128;
}

/// Why a tracee is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// Before `signal` is delivered: the tracer chooses what to deliver.
    Signal(u8),
    /// The process stopped (job control) with `signal`.
    Group(u8),
    /// Before a system call runs.
    SyscallEntry,
    /// After a system call ran.
    SyscallExit,
    /// A `PTRACE_EVENT_*`.
    Event(u8),
}

/// How the tracer lets a stopped tracee go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// `PTRACE_CONT` with a signal (0: none).
    Continue(u8),
    /// `PTRACE_SYSCALL`: on to the next system-call stop.
    Syscall(u8),
    /// `PTRACE_SINGLESTEP`: one instruction, then a `SIGTRAP`.
    SingleStep(u8),
    /// `PTRACE_LISTEN`: stay stopped with the group, unreported.
    Listen,
    /// `PTRACE_DETACH` with a signal.
    Detach(u8),
}

impl Resume {
    /// The signal the tracer passed.
    pub fn signal(self) -> u8 {
        match self {
            Resume::Continue(signal)
            | Resume::Syscall(signal)
            | Resume::SingleStep(signal)
            | Resume::Detach(signal) => signal,
            Resume::Listen => 0,
        }
    }
}

/// What the last system-call stop saw, for `PTRACE_GET_SYSCALL_INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyscallRecord {
    /// The call's number.
    pub number: u64,
    /// Its six arguments.
    pub arguments: [u64; 6],
    /// Its result (at the exit stop).
    pub result: u64,
}

/// A tracee's state, under its lock.
#[derive(Debug)]
pub struct TraceState {
    /// The tracing process's id.
    pub tracer: u64,
    /// `PTRACE_O_*`.
    pub options: u32,
    /// Attached with `PTRACE_SEIZE` (or inherited from such a tracee).
    pub is_seized: bool,
    /// Why it is stopped, while it is.
    pub stop: Option<StopKind>,
    /// The status `wait` reports for the stop.
    pub stop_status: u32,
    /// The tracer's wait has reported the stop.
    pub is_reported: bool,
    /// The tracer's decision, until the tracee takes it.
    pub resume: Option<Resume>,
    /// It stops at system calls (`PTRACE_SYSCALL`).
    pub is_syscall_traced: bool,
    /// It runs one instruction at a time (`PTRACE_SINGLESTEP`).
    pub is_single_stepping: bool,
    /// `PTRACE_INTERRUPT` (or a seized start) asks for a stop.
    pub is_interrupt_requested: bool,
    /// The current group-stop was reported (it is not reported again).
    pub is_group_stop_reported: bool,
    /// The tracer let it run on in the current group-stop.
    pub runs_in_group_stop: bool,
    /// The registers at the stop, as the tracer sees and sets them.
    pub registers: Registers,
    /// `orig_rax`: the system call's number (`u64::MAX`: none).
    pub original_rax: u64,
    /// The FS base at the stop.
    pub thread_pointer: u64,
    /// The floating-point state at the stop (the machine's save format).
    pub fpu: Vec<u8>,
    /// The tracer changed the registers, the FS base or the FPU state.
    pub is_changed: (bool, bool, bool),
    /// The signal and `siginfo_t` of the stop (`PTRACE_GETSIGINFO`).
    pub signal: (u8, SignalInfo),
    /// `PTRACE_GETEVENTMSG`.
    pub event_message: u64,
    /// The last system-call stop's call.
    pub syscall: SyscallRecord,
    /// The thread ended with this wait status, not yet reported.
    pub ended: Option<u32>,
}

impl TraceState {
    /// A tracee of `tracer` with `options`, not stopped.
    pub fn new(tracer: u64, options: u32, is_seized: bool) -> Self {
        TraceState {
            tracer,
            options,
            is_seized,
            stop: None,
            stop_status: 0,
            is_reported: false,
            resume: None,
            is_syscall_traced: false,
            is_single_stepping: false,
            is_interrupt_requested: false,
            is_group_stop_reported: false,
            runs_in_group_stop: false,
            registers: Registers::default(),
            original_rax: u64::MAX,
            thread_pointer: 0,
            fpu: Vec::new(),
            is_changed: (false, false, false),
            signal: (0, SignalInfo::default()),
            event_message: 0,
            syscall: SyscallRecord::default(),
            ended: None,
        }
    }
}

/// A traced thread.
#[derive(Debug)]
pub struct Tracee {
    /// The thread's id.
    pub tid: u64,
    /// Its process's id.
    pub pid: u64,
    /// The thread, while it lives.
    pub thread: Weak<Thread>,
    /// The state tracer and tracee share.
    pub state: Mutex<TraceState>,
}

impl Tracee {
    /// Wakes the tracee's thread (it sleeps in a stop, or should look at
    /// its signals).
    pub fn wake(&self, is_signal: bool) {
        if let Some(control) = self.thread.upgrade().and_then(|thread| thread.control()) {
            if is_signal { control.notify_signal() } else { control.wake() }
        }
    }

    /// Whether it sits in a stop its tracer has not resumed it from.
    pub fn is_stopped(&self) -> bool {
        let state = self.state.lock();
        state.stop.is_some() && state.resume.is_none() && state.ended.is_none()
    }
}

/// Every traced thread (and ended ones not yet reported), by thread id.
static TRACEES: Mutex<BTreeMap<u64, Arc<Tracee>>> = Mutex::new(BTreeMap::new());
/// Entries in [`TRACEES`]: zero keeps the hooks to one load.
static TRACEE_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Whether any thread is traced at all: the hooks' first, cheap check.
pub fn is_active() -> bool {
    TRACEE_COUNT.load(Ordering::Acquire) != 0
}

/// The tracee record of thread `tid`, if it is traced.
pub fn tracee(tid: u64) -> Option<Arc<Tracee>> {
    if !is_active() {
        return None;
    }
    TRACEES.lock().get(&tid).filter(|tracee| tracee.state.lock().ended.is_none()).cloned()
}

/// Whether any thread of process `pid` is traced (its ignored signals
/// still reach the tracer).
pub fn is_process_traced(pid: u64) -> bool {
    if !is_active() {
        return false;
    }
    TRACEES.lock().values().any(|tracee| tracee.pid == pid)
}

/// The id of the process tracing thread `tid` (0: none), for
/// `/proc/PID/status`.
pub fn tracer_of(tid: u64) -> u64 {
    tracee(tid).map_or(0, |tracee| tracee.state.lock().tracer)
}

/// Whether thread `tid` sits in a tracing stop (`/proc` state `t`).
pub fn is_in_trace_stop(tid: u64) -> bool {
    tracee(tid).is_some_and(|tracee| tracee.is_stopped())
}

/// Whether a stop was asked of thread `tid` (`PTRACE_INTERRUPT`, or its
/// start as a seized child): its blocking calls return to let it stop.
pub fn is_interrupt_requested(tid: u64) -> bool {
    tracee(tid).is_some_and(|tracee| tracee.state.lock().is_interrupt_requested)
}

/// Starts tracing `thread` of `process` for tracer `tracer`. `EPERM` if
/// it is traced already.
pub fn attach(
    process: &Process,
    thread: &Arc<Thread>,
    tracer: u64,
    options: u32,
    is_seized: bool,
) -> Result<Arc<Tracee>, crate::errno::Errno> {
    let tracee = Arc::new(Tracee {
        tid: thread.tid,
        pid: process.pid,
        thread: Arc::downgrade(thread),
        state: Mutex::new(TraceState::new(tracer, options, is_seized)),
    });
    let mut table = TRACEES.lock();
    // Threads that never ran (their start failed) leave no record behind.
    table.retain(|_, entry| entry.thread.strong_count() > 0 || entry.state.lock().ended.is_some());
    if table.contains_key(&thread.tid) {
        return Err(crate::errno::Errno::EPERM);
    }
    table.insert(thread.tid, tracee.clone());
    TRACEE_COUNT.store(table.len(), Ordering::Release);
    Ok(tracee)
}

/// Stops tracing `tracee` (detach, or its end reported): it leaves the
/// table, and a stop it sits in ends with `resume`.
pub fn release(tracee: &Tracee, resume: Resume) {
    {
        let mut table = TRACEES.lock();
        if table.get(&tracee.tid).is_some_and(|entry| core::ptr::eq(entry.as_ref(), tracee)) {
            table.remove(&tracee.tid);
        }
        TRACEE_COUNT.store(table.len(), Ordering::Release);
    }
    let tracer = {
        let mut state = tracee.state.lock();
        state.is_syscall_traced = false;
        state.is_single_stepping = false;
        state.is_interrupt_requested = false;
        if state.stop.is_some() && state.resume.is_none() {
            state.resume = Some(resume);
        }
        state.tracer
    };
    tracee.wake(false);
    // A wait of the tracer's that counted this tracee looks again (it may
    // have nothing left to wait for: ECHILD).
    if let Some(tracer) = crate::process::find(tracer) {
        tracer.child_events.notify();
    }
    // The real parent may reap an end the tracer no longer holds.
    let parent = crate::process::find(tracee.pid).and_then(|process| process.family.lock().parent.upgrade());
    if let Some(parent) = parent {
        parent.child_events.notify();
    }
}

/// Whether the end of process `pid` waits for its tracer's `wait` first:
/// until then its parent may not reap it, as on Linux.
pub fn holds_end(pid: u64) -> bool {
    if TRACEE_COUNT.load(Ordering::Acquire) == 0 {
        return false;
    }
    TRACEES.lock().get(&pid).is_some_and(|tracee| tracee.state.lock().ended.is_some())
}

/// The tracees of `tracer` (ended ones too) that `selects` picks by
/// thread id and process id.
pub fn tracees_of(tracer: u64, selects: impl Fn(u64, u64) -> bool) -> Vec<Arc<Tracee>> {
    if TRACEE_COUNT.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    TRACEES
        .lock()
        .values()
        .filter(|tracee| selects(tracee.tid, tracee.pid) && tracee.state.lock().tracer == tracer)
        .cloned()
        .collect()
}

/// What a tracer's `wait` finds of a tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The thread's id.
    pub tid: u64,
    /// The status word (a stop's `0x7f` form, or an end's).
    pub status: u32,
    /// Whether this is the thread's end rather than a stop.
    pub is_end: bool,
}

/// The next unreported stop or end among `tracer`'s tracees that
/// `selects` picks; marked reported (an end forgotten) unless `keep`.
pub fn take_report(tracer: u64, selects: impl Fn(u64, u64) -> bool, keep: bool) -> Option<Report> {
    for tracee in tracees_of(tracer, selects) {
        let report = {
            let mut state = tracee.state.lock();
            if let Some(status) = state.ended {
                Some(Report { tid: tracee.tid, status, is_end: true })
            } else if state.stop.is_some() && state.resume.is_none() && !state.is_reported {
                if !keep {
                    state.is_reported = true;
                }
                Some(Report { tid: tracee.tid, status: state.stop_status, is_end: false })
            } else {
                None
            }
        };
        if let Some(report) = report {
            if report.is_end && !keep {
                release(&tracee, Resume::Continue(0));
            }
            return Some(report);
        }
    }
    None
}

/// Thread `tid` of `process` ended (`is_last`: the process's last, called
/// before the process is seen ended): a tracer that is not the process's
/// parent (or traced a thread other than the first) is told of the end
/// and reports it; otherwise the tracing just ends, and the parent's wait
/// reports the process.
pub fn thread_ended(process: &Process, tid: u64, status: u8, is_last: bool) {
    let Some(tracee) = tracee(tid) else {
        return;
    };
    let tracer = tracee.state.lock().tracer;
    let is_parent_told = tid == process.pid && process.parent_id() == tracer && is_last;
    if is_parent_told {
        release(&tracee, Resume::Continue(0));
        return;
    }
    let termination = process.termination().unwrap_or(crate::process::Termination::Exited(status));
    tracee.state.lock().ended = Some(termination.wait_status());
    if let Some(tracer) = crate::process::find(tracer) {
        tracer.child_events.notify();
    }
}

/// Process `pid` ended: tracees it traced are detached, or killed when
/// they asked for `PTRACE_O_EXITKILL`; ends it did not report are
/// forgotten.
pub fn tracer_ended(pid: u64) {
    for tracee in tracees_of(pid, |_, _| true) {
        let (options, is_ended) = {
            let state = tracee.state.lock();
            (state.options, state.ended.is_some())
        };
        release(&tracee, Resume::Detach(0));
        if options & option::EXITKILL != 0
            && !is_ended
            && let Some(process) = crate::process::find(tracee.pid)
        {
            crate::syscall::signal_process(&process, crate::signal::SIGKILL);
        }
    }
}
