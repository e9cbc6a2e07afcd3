//! Process and thread identity, limits, signal dispositions, arch_prctl.

use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::encode_utsname;
use crate::memory::APPLICATION_END;
use crate::process::{
    LIMIT_COUNT, Limit, PROCESS_ID, SIG_DFL, SIG_IGN, SIGNAL_COUNT, SignalAction,
};
use crate::user::User;

/// What `uname` reports: a Linux system, so that C libraries accept it.
const UTSNAME: [&str; 6] = [
    "Linux",
    "rosv",
    "6.1.0-rosv",
    "#1 SMP rosv",
    "x86_64",
    "(none)",
];

pub(super) fn uname(context: Context<'_>, address: u64) -> Result {
    User::new(context.machine).write_bytes(address, &encode_utsname(UTSNAME))?;
    Ok(0)
}

/// `arch_prctl` codes.
mod code {
    pub const ARCH_SET_GS: u64 = 0x1001;
    pub const ARCH_SET_FS: u64 = 0x1002;
    pub const ARCH_GET_FS: u64 = 0x1003;
    pub const ARCH_GET_GS: u64 = 0x1004;
    pub const ARCH_GET_CPUID: u64 = 0x1011;
}

pub(super) fn arch_prctl(context: Context<'_>, code: u64, address: u64) -> Result {
    match code {
        code::ARCH_SET_FS => {
            if address >= APPLICATION_END {
                return Err(Errno::EPERM.into());
            }
            context.machine.set_thread_pointer(address);
            Ok(0)
        }
        code::ARCH_GET_FS => {
            User::new(context.machine).write_u64(address, context.machine.thread_pointer())?;
            Ok(0)
        }
        // GS belongs to the kernel (it points at per-CPU data).
        code::ARCH_SET_GS => {
            log::warn!("arch_prctl(ARCH_SET_GS) refused: GS belongs to the kernel");
            Err(Errno::EPERM.into())
        }
        code::ARCH_GET_GS => {
            User::new(context.machine).write_u64(address, 0)?;
            Ok(0)
        }
        code::ARCH_GET_CPUID => Ok(1),
        _ => Err(Errno::EINVAL.into()),
    }
}

pub(super) fn set_tid_address(context: Context<'_>, address: u64) -> Result {
    context.thread.state.lock().clear_child_tid = address;
    Ok(PROCESS_ID)
}

/// Size of `struct robust_list_head`.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

pub(super) fn set_robust_list(context: Context<'_>, head: u64, length: u64) -> Result {
    if length != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL.into());
    }
    context.thread.state.lock().robust_list = (head, length);
    Ok(0)
}

pub(super) fn get_robust_list(context: Context<'_>, thread: u64, head: u64, length: u64) -> Result {
    let target = if thread == 0 {
        Some(context.thread.tid)
    } else {
        Some(thread)
    };
    let thread = target
        .and_then(|tid| context.process.thread(tid))
        .ok_or(Errno::ESRCH)?;
    let (list, list_length) = thread.state.lock().robust_list;
    let user = User::new(context.machine);
    user.write_u64(head, list)?;
    user.write_u64(length, list_length)?;
    Ok(0)
}

pub(super) fn prlimit(context: Context<'_>, pid: u64, resource: u64, new: u64, old: u64) -> Result {
    if pid != 0 && pid != PROCESS_ID {
        return Err(Errno::ESRCH.into());
    }
    let index = usize::try_from(resource)
        .ok()
        .filter(|&index| index < LIMIT_COUNT)
        .ok_or(Errno::EINVAL)?;
    let user = User::new(context.machine);
    let replacement = if new != 0 {
        let limit = Limit {
            current: user.read_u64(new)?,
            maximum: user.read_u64(new + 8)?,
        };
        if limit.current > limit.maximum {
            return Err(Errno::EINVAL.into());
        }
        Some(limit)
    } else {
        None
    };
    let previous = {
        let mut state = context.process.state.lock();
        let previous = state.limits[index];
        if let Some(limit) = replacement {
            state.limits[index] = limit;
        }
        previous
    };
    if old != 0 {
        user.write_u64(old, previous.current)?;
        user.write_u64(old + 8, previous.maximum)?;
    }
    Ok(0)
}

const SIGKILL: u64 = 9;
const SIGSTOP: u64 = 19;
/// Size of a signal set in the kernel ABI.
const SIGSET_SIZE: u64 = 8;

fn signal_index(signal: u64) -> core::result::Result<usize, Errno> {
    if (1..=SIGNAL_COUNT as u64).contains(&signal) {
        Ok(signal as usize - 1)
    } else {
        Err(Errno::EINVAL)
    }
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
            mask: user.read_u64(action + 24)?,
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
        for (offset, value) in [
            previous.handler,
            previous.flags,
            previous.restorer,
            previous.mask,
        ]
        .into_iter()
        .enumerate()
        {
            user.write_u64(old + offset as u64 * 8, value)?;
        }
    }
    Ok(0)
}

pub(super) fn rt_sigprocmask(
    context: Context<'_>,
    how: u64,
    set: u64,
    old: u64,
    set_size: u64,
) -> Result {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));
    if set_size != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let user = User::new(context.machine);
    let change = if set != 0 {
        Some(user.read_u64(set)?)
    } else {
        None
    };
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

pub(super) fn sigaltstack(context: Context<'_>, stack: u64, old: u64) -> Result {
    const SS_DISABLE: u32 = 2;
    const MINIMUM_SIZE: u64 = 2048;
    let user = User::new(context.machine);
    let replacement = if stack != 0 {
        let base = user.read_u64(stack)?;
        let flags = user.read_u64(stack + 8)? as u32;
        let size = user.read_u64(stack + 16)?;
        if flags & !SS_DISABLE != 0 {
            return Err(Errno::EINVAL.into());
        }
        if flags & SS_DISABLE == 0 && size < MINIMUM_SIZE {
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

/// Signals whose default action is to do nothing: SIGCHLD, SIGCONT, SIGURG,
/// SIGWINCH; and the stop signals, since there is no job control.
fn is_ignored_by_default(signal: u64) -> bool {
    matches!(signal, 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28)
}

/// Sends `signal` to the process itself.
fn raise(context: Context<'_>, signal: u64) -> Result {
    if signal == 0 {
        return Ok(0);
    }
    let index = signal_index(signal)?;
    let action = context.process.state.lock().signal_actions[index];
    let mask = context.thread.state.lock().signal_mask;
    if action.handler == SIG_IGN || (action.handler == SIG_DFL && is_ignored_by_default(signal)) {
        return Ok(0);
    }
    if mask & (1 << index) != 0 && signal != SIGKILL {
        // Blocked: it would stay pending; nothing delivers it later yet.
        return Ok(0);
    }
    if action.handler != SIG_DFL {
        log::warn!("signal {signal} has a handler, but handlers are not run yet; terminating");
    }
    Err(Failure::Exit(128 + signal as u8))
}

pub(super) fn kill(context: Context<'_>, pid: u64, signal: u64) -> Result {
    let pid = pid as i64;
    if pid != PROCESS_ID as i64 && pid != 0 && pid != -1 && pid != -(PROCESS_ID as i64) {
        return Err(Errno::ESRCH.into());
    }
    raise(context, signal)
}

pub(super) fn tgkill(context: Context<'_>, group: u64, thread: u64, signal: u64) -> Result {
    if group != PROCESS_ID || thread != PROCESS_ID {
        return Err(Errno::ESRCH.into());
    }
    raise(context, signal)
}
