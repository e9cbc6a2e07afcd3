//! Scheduling policies and priorities: `sched_setscheduler` and the other
//! `sched_*` calls, `setpriority`/`getpriority`, `ioprio_set`/`ioprio_get`.
//!
//! `SCHED_FIFO` and `SCHED_RR` reach the scheduler (through
//! [`crate::machine::ThreadControl::set_real_time`]), which runs real-time
//! threads before normal ones. Nice values, `SCHED_BATCH`, `SCHED_IDLE`
//! and I/O priorities are recorded and reported as Linux does, with no
//! effect on time slices. Each thread keeps its settings in its state.

use alloc::sync::Arc;

use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::process::{Process, Thread, limit};
use crate::scheduling::{Settings, policy};
use crate::user::User;

/// `SCHED_RESET_ON_FORK`, or-ed into a policy.
const RESET_ON_FORK: u32 = 0x4000_0000;
/// `SCHED_FLAG_RESET_ON_FORK` in `sched_attr.sched_flags`.
const FLAG_RESET_ON_FORK: u64 = 0x1;
/// The round-robin slice `sched_rr_get_interval` reports (Linux's 100 ms).
const ROUND_ROBIN_SLICE_NS: u64 = 100_000_000;
/// The slice of normal threads.
const NORMAL_SLICE_NS: u64 = 10_000_000;
/// `struct sched_attr` sizes: the first version, and the one written.
const SCHED_ATTR_SIZE_VER0: u64 = 48;
const SCHED_ATTR_SIZE: usize = 56;

fn settings_of(thread: &Thread) -> Settings {
    thread.state.lock().scheduling
}

fn store(thread: &Thread, settings: Settings) {
    thread.state.lock().scheduling = settings;
}

/// Gives `child`, just made by `parent`, its parent's settings, as Linux
/// does (unless the parent asked for a reset on fork: then a normal policy
/// and a nice value no better than 0).
pub(super) fn inherit(parent: &Thread, child: &Thread, control: &dyn crate::machine::ThreadControl) {
    let mut settings = settings_of(parent);
    if settings.resets_on_fork {
        settings =
            Settings { nice: settings.nice.max(0), io_priority: settings.io_priority, ..Settings::default() };
    }
    store(child, settings);
    if is_real_time(settings.policy) {
        control.set_real_time(settings.priority as u8, settings.policy == policy::FIFO);
    }
}

/// The thread `pid` names (0: the caller) in any process, with its
/// process; `EINVAL` for a negative id, `ESRCH` for an unknown one.
fn target_with_process(
    context: Context<'_>,
    pid: u64,
) -> core::result::Result<(Arc<Thread>, Arc<Process>), Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 {
        let process = context.process.shared().ok_or(Errno::ESRCH)?;
        return Ok((context.thread.clone(), process));
    }
    let pid = pid as u64;
    if let Some(thread) = context.process.thread(pid) {
        let process = context.process.shared().ok_or(Errno::ESRCH)?;
        return Ok((thread, process));
    }
    // A process's id names its first thread; another thread's id is found
    // among every process's threads.
    crate::process::find(pid)
        .filter(|process| !process.has_ended())
        .and_then(|process| process.thread(pid).map(|thread| (thread, process)))
        .or_else(|| {
            crate::process::all()
                .into_iter()
                .filter(|process| !process.has_ended())
                .find_map(|process| process.thread(pid).map(|thread| (thread, process)))
        })
        .ok_or(Errno::ESRCH)
}

/// The thread `pid` names, for reading its settings.
pub(super) fn target(context: Context<'_>, pid: u64) -> core::result::Result<Arc<Thread>, Errno> {
    target_with_process(context, pid).map(|(thread, _)| thread)
}

/// The thread `pid` names, for changing its settings: the caller's own,
/// or another process's whose real or effective user is the caller's
/// effective one, unless the caller has `CAP_SYS_NICE` (`EPERM`).
pub(super) fn changeable(context: Context<'_>, pid: u64) -> core::result::Result<Arc<Thread>, Errno> {
    let (thread, process) = target_with_process(context, pid)?;
    if process.pid == context.process.pid || is_privileged(context) {
        return Ok(thread);
    }
    let caller = context.process.state.lock().credentials.effective_user;
    let owner = {
        let state = process.state.lock();
        (state.credentials.real_user, state.credentials.effective_user)
    };
    if caller == owner.0 || caller == owner.1 { Ok(thread) } else { Err(Errno::EPERM) }
}

fn is_real_time(policy: u32) -> bool {
    matches!(policy, policy::FIFO | policy::RR)
}

/// `CAP_SYS_NICE`.
const CAP_SYS_NICE: u32 = 23;

fn is_privileged(context: Context<'_>) -> bool {
    context.process.state.lock().credentials.has_capability(CAP_SYS_NICE)
}

/// Applies `policy` with `priority` (and `nice`, if given) to `thread`,
/// checked as Linux checks them.
fn apply(
    context: Context<'_>,
    thread: &Thread,
    policy: u32,
    priority: u32,
    nice: Option<i32>,
    resets_on_fork: bool,
) -> Result {
    match policy {
        policy::FIFO | policy::RR if (1..=99).contains(&priority) => {}
        policy::OTHER | policy::BATCH | policy::IDLE if priority == 0 => {}
        // No deadline scheduling: its parameters are never admitted.
        policy::DEADLINE => return Err(Errno::EINVAL.into()),
        _ => return Err(Errno::EINVAL.into()),
    }
    let current = settings_of(thread);
    if is_real_time(policy) && !is_privileged(context) {
        let allowed = context.process.state.lock().limits[limit::RTPRIO].current;
        if u64::from(priority) > allowed && priority > current.priority {
            return Err(Errno::EPERM.into());
        }
    }
    let nice = match nice {
        Some(nice) => check_nice(context, current.nice, nice)?,
        None => current.nice,
    };
    let updated = Settings { policy, priority, nice, resets_on_fork, io_priority: current.io_priority };
    store(thread, updated);
    if let Some(control) = thread.control() {
        let real_time = if is_real_time(policy) { priority as u8 } else { 0 };
        control.set_real_time(real_time, policy == policy::FIFO);
    }
    Ok(0)
}

/// `nice` clamped to Linux's range, refused (`EACCES`) if it raises the
/// priority past what `RLIMIT_NICE` allows an unprivileged caller.
fn check_nice(context: Context<'_>, current: i32, nice: i32) -> core::result::Result<i32, Errno> {
    let nice = nice.clamp(-20, 19);
    if nice < current && !is_privileged(context) {
        let limit = context.process.state.lock().limits[limit::NICE].current;
        // RLIMIT_NICE is 20 - the lowest nice allowed.
        if i64::from(20 - nice) > i64::try_from(limit).unwrap_or(i64::MAX) {
            return Err(Errno::EACCES);
        }
    }
    Ok(nice)
}

fn read_priority(context: Context<'_>, address: u64) -> core::result::Result<u32, Errno> {
    if address == 0 {
        return Err(Errno::EINVAL);
    }
    let mut bytes = [0u8; 4];
    User::new(context.machine).read_into(address, &mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

pub(super) fn sched_setscheduler(context: Context<'_>, pid: u64, requested: u64, parameters: u64) -> Result {
    let requested = requested as i32;
    if requested < 0 {
        return Err(Errno::EINVAL.into());
    }
    let priority = read_priority(context, parameters)?;
    let thread = changeable(context, pid)?;
    let requested = requested as u32;
    apply(context, &thread, requested & !RESET_ON_FORK, priority, None, requested & RESET_ON_FORK != 0)
}

pub(super) fn sched_setparam(context: Context<'_>, pid: u64, parameters: u64) -> Result {
    let priority = read_priority(context, parameters)?;
    let thread = changeable(context, pid)?;
    let current = settings_of(&thread);
    apply(context, &thread, current.policy, priority, None, current.resets_on_fork)
}

pub(super) fn sched_getscheduler(context: Context<'_>, pid: u64) -> Result {
    let settings = settings_of(&*target(context, pid)?);
    Ok(u64::from(settings.policy | if settings.resets_on_fork { RESET_ON_FORK } else { 0 }))
}

pub(super) fn sched_getparam(context: Context<'_>, pid: u64, parameters: u64) -> Result {
    if parameters == 0 {
        return Err(Errno::EINVAL.into());
    }
    let settings = settings_of(&*target(context, pid)?);
    User::new(context.machine).write_u32(parameters, settings.priority)?;
    Ok(0)
}

pub(super) fn sched_get_priority_max(requested: u64) -> Result {
    match requested as u32 {
        policy::FIFO | policy::RR => Ok(99),
        policy::OTHER | policy::BATCH | policy::IDLE | policy::DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}

pub(super) fn sched_get_priority_min(requested: u64) -> Result {
    match requested as u32 {
        policy::FIFO | policy::RR => Ok(1),
        policy::OTHER | policy::BATCH | policy::IDLE | policy::DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}

pub(super) fn sched_rr_get_interval(context: Context<'_>, pid: u64, address: u64) -> Result {
    let settings = settings_of(&*target(context, pid)?);
    let slice = match settings.policy {
        policy::FIFO => 0,
        policy::RR => ROUND_ROBIN_SLICE_NS,
        _ => NORMAL_SLICE_NS,
    };
    User::new(context.machine).write_bytes(address, &Timespec::from_ns(slice).encode())?;
    Ok(0)
}

/// `sched_setattr`: policy, flags, nice and priority from `struct
/// sched_attr`; a size Linux does not know is answered with the size it
/// knows (`E2BIG`), and deadline parameters are not admitted.
pub(super) fn sched_setattr(context: Context<'_>, pid: u64, address: u64, flags: u64) -> Result {
    if flags != 0 || address == 0 {
        return Err(Errno::EINVAL.into());
    }
    let user = User::new(context.machine);
    let mut size = u64::from(
        user.read_bytes(address, 4)
            .map(|bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))?,
    );
    if size == 0 {
        size = SCHED_ATTR_SIZE_VER0;
    }
    if !(SCHED_ATTR_SIZE_VER0..=4096).contains(&size) {
        user.write_u32(address, SCHED_ATTR_SIZE as u32)?;
        return Err(Errno::E2BIG.into());
    }
    let bytes = user.read_bytes(address, size as usize)?;
    if bytes.iter().skip(SCHED_ATTR_SIZE).any(|&byte| byte != 0) {
        user.write_u32(address, SCHED_ATTR_SIZE as u32)?;
        return Err(Errno::E2BIG.into());
    }
    let word = |offset: usize| {
        u32::from_le_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
    };
    let requested = word(4);
    let attribute_flags = u64::from(word(8)) | u64::from(word(12)) << 32;
    let nice = word(16) as i32;
    let priority = word(20);
    if attribute_flags & !FLAG_RESET_ON_FORK != 0 {
        return Err(Errno::EINVAL.into());
    }
    let thread = changeable(context, pid)?;
    let nice = (!is_real_time(requested)).then_some(nice);
    apply(context, &thread, requested, priority, nice, attribute_flags & FLAG_RESET_ON_FORK != 0)
}

pub(super) fn sched_getattr(context: Context<'_>, pid: u64, address: u64, size: u64, flags: u64) -> Result {
    if flags != 0 || address == 0 || !(SCHED_ATTR_SIZE_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL.into());
    }
    let settings = settings_of(&*target(context, pid)?);
    let mut bytes = [0u8; SCHED_ATTR_SIZE];
    let length = (size as usize).min(SCHED_ATTR_SIZE);
    bytes[..4].copy_from_slice(&(length as u32).to_le_bytes());
    bytes[4..8].copy_from_slice(&settings.policy.to_le_bytes());
    let attribute_flags = if settings.resets_on_fork { FLAG_RESET_ON_FORK } else { 0 };
    bytes[8..16].copy_from_slice(&attribute_flags.to_le_bytes());
    let nice = if is_real_time(settings.policy) { 0 } else { settings.nice };
    bytes[16..20].copy_from_slice(&nice.to_le_bytes());
    bytes[20..24].copy_from_slice(&settings.priority.to_le_bytes());
    // Utilisation clamps: the full range.
    bytes[52..56].copy_from_slice(&1024u32.to_le_bytes());
    User::new(context.machine).write_bytes(address, &bytes[..length])?;
    Ok(0)
}

/// `setpriority` / `getpriority` targets.
const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;

/// The threads `which` and `who` name: one thread (`PRIO_PROCESS`, as
/// Linux applies it), or every thread of every process in a process group
/// or of a real user (0: the caller's). For a change (`is_change`), a
/// process the caller may not change ([`changeable`]'s rule) is left out
/// and the call ends with `EPERM`, as Linux's `set_one_prio` does.
fn named(
    context: Context<'_>,
    which: u64,
    who: u64,
    is_change: bool,
) -> core::result::Result<(alloc::vec::Vec<Arc<Thread>>, bool), Errno> {
    let who = who as i32;
    let processes: alloc::vec::Vec<Arc<Process>> = match which {
        PRIO_PROCESS => {
            let thread = if is_change {
                changeable(context, who as u32 as u64)
            } else {
                target(context, who as u32 as u64)
            };
            return match thread {
                Ok(thread) => Ok((alloc::vec![thread], false)),
                Err(Errno::EINVAL) => Err(Errno::ESRCH),
                Err(error) => Err(error),
            };
        }
        PRIO_PGRP => {
            let group = if who == 0 { context.process.group_id() } else { who as u32 as u64 };
            crate::process::all()
                .into_iter()
                .filter(|process| !process.has_ended() && process.group_id() == group)
                .collect()
        }
        PRIO_USER => {
            let user = if who == 0 { context.process.state.lock().credentials.real_user } else { who as u32 };
            crate::process::all()
                .into_iter()
                .filter(|process| !process.has_ended() && process.state.lock().credentials.real_user == user)
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    if processes.is_empty() {
        return Err(Errno::ESRCH);
    }
    let mut threads = alloc::vec::Vec::new();
    let mut is_refused = false;
    for process in processes {
        if is_change && changeable(context, process.pid).is_err() {
            is_refused = true;
            continue;
        }
        threads.extend(process.threads());
    }
    Ok((threads, is_refused))
}

/// `getpriority`: 20 minus the lowest nice value among the threads named
/// (the kernel's form; the C library turns it back).
pub(super) fn getpriority(context: Context<'_>, which: u64, who: u64) -> Result {
    let (threads, _) = named(context, which, who, false)?;
    let lowest = threads.iter().map(|thread| settings_of(thread).nice).min().ok_or(Errno::ESRCH)?;
    Ok((20 - lowest) as u64)
}

pub(super) fn setpriority(context: Context<'_>, which: u64, who: u64, nice: u64) -> Result {
    let (threads, is_refused) = named(context, which, who, true)?;
    for thread in threads {
        let current = settings_of(&thread);
        let nice = check_nice(context, current.nice, nice as i32)?;
        store(&thread, Settings { nice, ..current });
    }
    if is_refused {
        return Err(Errno::EPERM.into());
    }
    Ok(0)
}

/// `ioprio_*` targets and classes.
const IOPRIO_WHO_PROCESS: u64 = 1;
const IOPRIO_WHO_PGRP: u64 = 2;
const IOPRIO_WHO_USER: u64 = 3;
const IOPRIO_CLASS_NONE: u16 = 0;
const IOPRIO_CLASS_RT: u16 = 1;
const IOPRIO_CLASS_IDLE: u16 = 3;

fn io_named(
    context: Context<'_>,
    which: u64,
    who: u64,
) -> core::result::Result<alloc::vec::Vec<Arc<Thread>>, Errno> {
    match which {
        IOPRIO_WHO_PROCESS => named(context, PRIO_PROCESS, who, false).map(|(threads, _)| threads),
        IOPRIO_WHO_PGRP => named(context, PRIO_PGRP, who, false).map(|(threads, _)| threads),
        IOPRIO_WHO_USER => named(context, PRIO_USER, who, false).map(|(threads, _)| threads),
        _ => Err(Errno::EINVAL),
    }
}

/// `ioprio_get`: the highest I/O priority among the threads named (none
/// set reads as Linux's default for a nice value, class none).
pub(super) fn ioprio_get(context: Context<'_>, which: u64, who: u64) -> Result {
    let threads = io_named(context, which, who)?;
    Ok(u64::from(threads.iter().map(|thread| settings_of(thread).io_priority).max().unwrap_or(0)))
}

/// `ioprio_set`: recorded (the block layer has one queue per device and
/// no I/O scheduler to honour it). The real-time class needs privilege.
pub(super) fn ioprio_set(context: Context<'_>, which: u64, who: u64, io_priority: u64) -> Result {
    let io_priority = u16::try_from(io_priority).map_err(|_| Errno::EINVAL)?;
    let class = io_priority >> 13;
    let level = io_priority & 0x1fff;
    match class {
        IOPRIO_CLASS_NONE if level == 0 => {}
        IOPRIO_CLASS_NONE => return Err(Errno::EINVAL.into()),
        IOPRIO_CLASS_RT..IOPRIO_CLASS_IDLE if level < 8 => {}
        IOPRIO_CLASS_IDLE => {}
        _ => return Err(Errno::EINVAL.into()),
    }
    if class == IOPRIO_CLASS_RT && !is_privileged(context) {
        return Err(Errno::EPERM.into());
    }
    for thread in io_named(context, which, who)? {
        let current = settings_of(&thread);
        store(&thread, Settings { io_priority, ..current });
    }
    Ok(0)
}
