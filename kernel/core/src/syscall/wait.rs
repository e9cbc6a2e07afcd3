//! Waiting for children: `wait4` and `waitid`, with the zombies, stop
//! and continue events they report.

use alloc::sync::Arc;

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::machine::Wakeup;
use crate::process::{Process, Termination};
use crate::user::User;

/// `wait4`/`waitid` options.
mod option {
    pub const WNOHANG: u64 = 1;
    pub const WUNTRACED: u64 = 2;
    pub const WEXITED: u64 = 4;
    pub const WCONTINUED: u64 = 8;
    pub const WNOWAIT: u64 = 0x0100_0000;
    pub const WNOTHREAD: u64 = 0x2000_0000;
    pub const WALL: u64 = 0x4000_0000;
    pub const WCLONE: u64 = 0x8000_0000;
}

/// Which children a wait is for.
#[derive(Clone, Copy)]
enum Selector {
    Any,
    Process(u64),
    Group(u64),
}

impl Selector {
    fn matches(self, child: &Process) -> bool {
        match self {
            Selector::Any => true,
            Selector::Process(pid) => child.pid == pid,
            Selector::Group(group) => child.group_id() == group,
        }
    }

    /// Whether it picks a traced thread `tid` of process `pid` (a traced
    /// thread is waited for by its own id).
    fn matches_thread(self, tid: u64, pid: u64) -> bool {
        match self {
            Selector::Any => true,
            Selector::Process(wanted) => wanted == tid,
            Selector::Group(group) => {
                crate::process::find(pid).is_some_and(|process| process.group_id() == group)
            }
        }
    }
}

/// What a wait found: a child that ended, stopped or continued, or a
/// tracee that stopped or ended.
enum Found {
    Ended(Arc<Process>),
    Job(Arc<Process>, crate::signal::JobEvent),
    Traced(crate::ptrace::Report),
}

impl Found {
    /// The child, unless this is a tracee's report.
    fn child(&self) -> Option<&Arc<Process>> {
        match self {
            Found::Ended(child) | Found::Job(child, _) => Some(child),
            Found::Traced(_) => None,
        }
    }

    /// The id `wait` returns.
    fn id(&self) -> u64 {
        match self {
            Found::Ended(child) | Found::Job(child, _) => child.pid,
            Found::Traced(report) => report.tid,
        }
    }

    /// The status word `wait4` stores (Linux's encoding: `0x7f` with the
    /// signal above it for a stop, `0xffff` for a continue).
    fn wait_status(&self) -> u32 {
        match self {
            Found::Ended(child) => child.termination().map_or(0, Termination::wait_status),
            Found::Job(_, crate::signal::JobEvent::Stopped(signal)) => u32::from(*signal) << 8 | 0x7f,
            Found::Job(_, crate::signal::JobEvent::Continued) => 0xffff,
            Found::Traced(report) => report.status,
        }
    }

    /// `si_code` and `si_status` for `waitid`.
    fn child_code(&self) -> (i32, i32) {
        use crate::signal::{JobEvent, SIGCONT, code};
        match self {
            Found::Ended(child) => match child.termination() {
                Some(Termination::Killed(signal)) => (code::CHILD_KILLED, i32::from(signal)),
                Some(Termination::Exited(status)) => (code::CHILD_EXITED, i32::from(status)),
                None => (code::CHILD_EXITED, 0),
            },
            Found::Job(_, JobEvent::Stopped(signal)) => (code::CHILD_STOPPED, i32::from(*signal)),
            Found::Job(_, JobEvent::Continued) => (code::CHILD_CONTINUED, i32::from(SIGCONT)),
            Found::Traced(report) if !report.is_end => {
                (crate::ptrace::stops::CLD_TRAPPED, (report.status >> 8) as i32)
            }
            Found::Traced(report) if report.status & 0x7f != 0 => {
                (code::CHILD_KILLED, (report.status & 0x7f) as i32)
            }
            Found::Traced(report) => (code::CHILD_EXITED, ((report.status >> 8) & 0xff) as i32),
        }
    }
}

/// Waits for a child that `selector` names to end (with `WEXITED`), stop
/// (`WUNTRACED`) or continue (`WCONTINUED`), as `options` ask; an ended
/// child is reaped and a change marked reported unless `keep`. `None`
/// with `WNOHANG` when nothing happened yet.
fn wait_for_child(
    context: Context<'_>,
    selector: Selector,
    options: u64,
    keep: bool,
) -> core::result::Result<Option<Found>, Failure> {
    let machine = context.machine;
    let process = context.process;
    let me = machine.current_thread();
    let wants_ends = options & option::WEXITED != 0;
    let wants_stops = options & option::WUNTRACED != 0;
    let wants_continues = options & option::WCONTINUED != 0;
    let selects_tracee = |tid, pid| selector.matches_thread(tid, pid);
    loop {
        process.child_events.add(&me);
        // A tracer sees its tracees' stops and ends first.
        if let Some(report) = crate::ptrace::take_report(process.pid, selects_tracee, keep) {
            process.child_events.remove(&me);
            return Ok(Some(Found::Traced(report)));
        }
        let is_tracing = !crate::ptrace::tracees_of(process.pid, selects_tracee).is_empty();
        let found = {
            let mut family = process.family.lock();
            if !is_tracing && !family.children.iter().any(|child| selector.matches(child)) {
                drop(family);
                process.child_events.remove(&me);
                return Err(Errno::ECHILD.into());
            }
            let mut found = None;
            for (index, child) in family.children.iter().enumerate() {
                if !selector.matches(child) {
                    continue;
                }
                if child.has_ended() {
                    if wants_ends && !crate::ptrace::holds_end(child.pid) {
                        found = Some((index, None));
                        break;
                    }
                    continue;
                }
                if let Some(event) = child.signals.job.peek(wants_stops, wants_continues) {
                    found = Some((index, Some(event)));
                    break;
                }
            }
            found.map(|(index, event)| match event {
                Some(event) => {
                    let child = family.children[index].clone();
                    if !keep {
                        child.signals.job.take(event);
                    }
                    Found::Job(child, event)
                }
                None if keep => Found::Ended(family.children[index].clone()),
                None => {
                    let child = family.children.remove(index);
                    child.forget_reaped();
                    process.accounts.add_reaped_child(child.usage_for_parent());
                    Found::Ended(child)
                }
            })
        };
        if let Some(found) = found {
            process.child_events.remove(&me);
            return Ok(Some(found));
        }
        if options & option::WNOHANG != 0 {
            process.child_events.remove(&me);
            return Ok(None);
        }
        if context.thread.has_deliverable_signal() || machine.block(None) == Wakeup::Stop {
            process.child_events.remove(&me);
            // Linux's do_wait answers ERESTARTSYS: a handler installed with
            // SA_RESTART (signal() in glibc) resumes the wait.
            return Err(Failure::Restart);
        }
    }
}

pub(super) fn wait4(context: Context<'_>, pid: u64, status: u64, options: u64, usage: u64) -> Result {
    let known = option::WNOHANG
        | option::WUNTRACED
        | option::WCONTINUED
        | option::WNOTHREAD
        | option::WALL
        | option::WCLONE;
    if options & !known != 0 {
        return Err(Errno::EINVAL.into());
    }
    let pid = pid as i32;
    // The group -INT_MIN names cannot exist (Linux answers ESRCH).
    if pid == i32::MIN {
        return Err(Errno::ESRCH.into());
    }
    let selector = match pid {
        -1 => Selector::Any,
        0 => Selector::Group(context.process.group_id()),
        pid if pid < 0 => Selector::Group(u64::from(pid.unsigned_abs())),
        pid => Selector::Process(pid as u64),
    };
    let Some(found) = wait_for_child(context, selector, options | option::WEXITED, false)? else {
        return Ok(0);
    };
    let user = User::new(context.machine);
    if status != 0 {
        user.write_u32(status, found.wait_status())?;
    }
    if usage != 0 {
        write_usage(context, usage, found.child())?;
    }
    Ok(found.id())
}

/// Fills a `struct rusage` with what `child` used, its reaped children
/// included (as `getrusage` would for both).
fn write_usage(
    context: Context<'_>,
    address: u64,
    child: Option<&Arc<Process>>,
) -> core::result::Result<(), Errno> {
    let usage = child.map(|child| child.usage_for_parent()).unwrap_or_default();
    let bytes = super::resources::encode_usage(usage.cpu, usage.io, (0, 0));
    User::new(context.machine).write_bytes(address, &bytes)
}

/// `waitid` id types.
mod id_type {
    pub const P_ALL: u64 = 0;
    pub const P_PID: u64 = 1;
    pub const P_PGID: u64 = 2;
    pub const P_PIDFD: u64 = 3;
}

pub(super) fn waitid(
    context: Context<'_>,
    id_type: u64,
    id: u64,
    info: u64,
    mut options: u64,
    usage: u64,
) -> Result {
    let known = option::WNOHANG
        | option::WUNTRACED
        | option::WEXITED
        | option::WCONTINUED
        | option::WNOWAIT
        | option::WNOTHREAD
        | option::WALL
        | option::WCLONE;
    if options & !known != 0 || options & (option::WEXITED | option::WUNTRACED | option::WCONTINUED) == 0 {
        return Err(Errno::EINVAL.into());
    }
    let selector = match id_type {
        id_type::P_ALL => Selector::Any,
        id_type::P_PID if id as i32 > 0 => Selector::Process(id),
        id_type::P_PGID if id as i32 >= 0 => {
            Selector::Group(if id == 0 { context.process.group_id() } else { id })
        }
        id_type::P_PIDFD => {
            let (file, pid) = super::pidfd::pid_file(context, id)?;
            // A non-blocking pidfd does not wait (Linux 5.10).
            if file.status_flags() & crate::vfs::file::flags::O_NONBLOCK != 0 {
                options |= option::WNOHANG;
            }
            Selector::Process(pid)
        }
        _ => return Err(Errno::EINVAL.into()),
    };
    let keep = options & option::WNOWAIT != 0;
    let user = User::new(context.machine);
    let Some(found) = wait_for_child(context, selector, options, keep)? else {
        if info != 0 {
            user.write_bytes(info, &[0u8; crate::signal::info::SIGINFO_SIZE])?;
        }
        return Ok(0);
    };
    let child = found.child();
    if info != 0 {
        let (code, status) = found.child_code();
        let uid = child.map_or(0, |child| child.state.lock().credentials.real_user);
        let encoded = crate::signal::SignalInfo::child(code, found.id() as u32, uid, status)
            .encode(crate::signal::SIGCHLD);
        user.write_bytes(info, &encoded)?;
    }
    if usage != 0 {
        write_usage(context, usage, child)?;
    }
    Ok(0)
}
