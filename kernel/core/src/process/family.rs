//! A process's family: how it ended, its parent, children, process group
//! and session, and the orphaned groups POSIX asks to hang up.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Process, all};

/// Whether process group `group` is orphaned: no live member has a parent
/// in another group of the same session, so no shell could continue it
/// (POSIX). `excluding` is left out (a process that is ending).
pub fn is_group_orphaned(group: u64, excluding: u64) -> bool {
    !all().iter().any(|member| {
        if member.pid == excluding || member.has_ended() || member.group_id() != group {
            return false;
        }
        let session = member.session_id();
        // The member's lock is let go before the parent's is taken.
        let parent = member.family.lock().parent.upgrade();
        parent.is_some_and(|parent| {
            parent.pid != excluding
                && !parent.has_ended()
                && parent.group_id() != group
                && parent.session_id() == session
        })
    })
}

/// Sends `SIGHUP` then `SIGCONT` to every member of `group` if it is
/// orphaned (leaving out `excluding`) and one of them is stopped: nobody
/// would ever continue it otherwise (POSIX, on a process's exit).
pub fn hang_up_if_orphaned(group: u64, excluding: u64) {
    const SIGHUP: u8 = 1;
    let members: Vec<Arc<Process>> = all()
        .into_iter()
        .filter(|member| member.pid != excluding && !member.has_ended() && member.group_id() == group)
        .collect();
    let has_stopped = members.iter().any(|member| member.signals.job.is_stopped());
    if !has_stopped || !is_group_orphaned(group, excluding) {
        return;
    }
    for member in members {
        for signal in [SIGHUP, crate::signal::SIGCONT] {
            let info = crate::signal::SignalInfo::kernel();
            let target = crate::signal::Target::Process { sender: None };
            let _ = crate::signal::send(&member, target, signal, info, None, crate::signal::Queueing::Always);
        }
    }
}

/// How a process ended, as `wait` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It called `exit` with this status.
    Exited(u8),
    /// A signal's default action ended it.
    Killed(u8),
}

impl Termination {
    /// The status word `wait4` stores (Linux's encoding).
    pub fn wait_status(self) -> u32 {
        match self {
            Termination::Exited(status) => u32::from(status) << 8,
            Termination::Killed(signal) => u32::from(signal),
        }
    }

    /// The status the VM reports for it (128 plus the signal for a kill,
    /// as shells do).
    pub fn exit_status(self) -> u8 {
        match self {
            Termination::Exited(status) => status,
            Termination::Killed(signal) => 128u8.wrapping_add(signal),
        }
    }
}

/// A process's place among the others.
#[derive(Debug, Default)]
pub struct Family {
    /// The parent (none for the first process, or once it is gone).
    pub parent: alloc::sync::Weak<Process>,
    /// The children that have not been reaped.
    pub children: Vec<Arc<Process>>,
    /// The process group's id.
    pub group: u64,
    /// The session's id.
    pub session: u64,
    /// The signal sent to the parent when the process ends (`SIGCHLD`, or
    /// clone's choice; 0: none).
    pub exit_signal: u8,
    /// The process called `execve` since it was forked (`setpgid` on it
    /// fails then).
    pub has_executed: bool,
    /// `PR_SET_PDEATHSIG`: the signal the process gets when its parent
    /// ends (0: none); a forked child starts without one.
    pub parent_death_signal: u8,
}
