//! `ptrace`: the tracer's requests (attaching, resuming, registers,
//! memory, what a stop saw). The tracee's side is `crate::ptrace::stops`.

use alloc::sync::Arc;

use super::{Context, Result};
use crate::errno::Errno;
use crate::process::{Process, Thread};
use crate::ptrace::{self as tracing, Resume, StopKind, Tracee, layout, option};
use crate::user::User;

/// `PTRACE_*` requests.
mod request {
    pub const TRACEME: u64 = 0;
    pub const PEEKTEXT: u64 = 1;
    pub const PEEKDATA: u64 = 2;
    pub const PEEKUSER: u64 = 3;
    pub const POKETEXT: u64 = 4;
    pub const POKEDATA: u64 = 5;
    pub const POKEUSER: u64 = 6;
    pub const CONT: u64 = 7;
    pub const KILL: u64 = 8;
    pub const SINGLESTEP: u64 = 9;
    pub const GETREGS: u64 = 12;
    pub const SETREGS: u64 = 13;
    pub const GETFPREGS: u64 = 14;
    pub const SETFPREGS: u64 = 15;
    pub const ATTACH: u64 = 16;
    pub const DETACH: u64 = 17;
    pub const SYSCALL: u64 = 24;
    pub const SETOPTIONS: u64 = 0x4200;
    pub const GETEVENTMSG: u64 = 0x4201;
    pub const GETSIGINFO: u64 = 0x4202;
    pub const SETSIGINFO: u64 = 0x4203;
    pub const GETREGSET: u64 = 0x4204;
    pub const SETREGSET: u64 = 0x4205;
    pub const SEIZE: u64 = 0x4206;
    pub const INTERRUPT: u64 = 0x4207;
    pub const LISTEN: u64 = 0x4208;
    pub const GET_SYSCALL_INFO: u64 = 0x420e;
}

/// `NT_*` register sets of `PTRACE_GETREGSET`.
const NT_PRSTATUS: u64 = 1;
const NT_PRFPREG: u64 = 2;

/// `CAP_SYS_PTRACE`.
const CAP_SYS_PTRACE: u32 = 19;

pub(super) fn ptrace(context: Context<'_>, request: u64, pid: u64, address: u64, data: u64) -> Result {
    match request {
        request::TRACEME => return trace_me(context),
        request::ATTACH => return attach(context, pid, None),
        request::SEIZE => {
            if address != 0 {
                return Err(Errno::EIO.into());
            }
            let options = u32::try_from(data).map_err(|_| Errno::EINVAL)?;
            if options & !option::ALL != 0 {
                return Err(Errno::EINVAL.into());
            }
            return attach(context, pid, Some(options));
        }
        _ => {}
    }
    let tracee = tracing::tracee(pid)
        .filter(|tracee| tracee.state.lock().tracer == context.process.pid)
        .ok_or(Errno::ESRCH)?;
    match request {
        request::KILL => {
            if let Some(process) = crate::process::find(tracee.pid) {
                super::signal_process(&process, crate::signal::SIGKILL);
            }
            return Ok(0);
        }
        request::INTERRUPT => {
            let mut state = tracee.state.lock();
            if !state.is_seized {
                return Err(Errno::EIO.into());
            }
            if state.stop.is_none() || state.resume.is_some() {
                state.is_interrupt_requested = true;
            }
            drop(state);
            tracee.wake(true);
            return Ok(0);
        }
        _ => {}
    }
    if !tracee.is_stopped() {
        return Err(Errno::ESRCH.into());
    }
    let user = User::new(context.machine);
    match request {
        request::PEEKTEXT | request::PEEKDATA => {
            let process = process_of(&tracee)?;
            let mut word = [0u8; 8];
            super::remote_memory::read_from(context, &process, address, &mut word).map_err(|_| Errno::EIO)?;
            user.write_bytes(data, &word)?;
            Ok(0)
        }
        request::POKETEXT | request::POKEDATA => {
            let process = process_of(&tracee)?;
            super::remote_memory::write_to(context, &process, address, &data.to_le_bytes())
                .map_err(|_| Errno::EIO)?;
            Ok(0)
        }
        request::PEEKUSER => {
            let word = layout::peek_user(&tracee.state.lock(), address)?;
            user.write_u64(data, word)?;
            Ok(0)
        }
        request::POKEUSER => {
            layout::poke_user(&mut tracee.state.lock(), address, data)?;
            Ok(0)
        }
        request::GETREGS => {
            let bytes = layout::encode_registers(&tracee.state.lock());
            user.write_bytes(data, &bytes)?;
            Ok(0)
        }
        request::SETREGS => {
            let mut bytes = [0u8; layout::REGISTERS_SIZE];
            user.read_into(data, &mut bytes)?;
            layout::decode_registers(&mut tracee.state.lock(), &bytes)?;
            Ok(0)
        }
        request::GETFPREGS => {
            let bytes = layout::encode_fp_registers(&tracee.state.lock());
            user.write_bytes(data, &bytes)?;
            Ok(0)
        }
        request::SETFPREGS => {
            let mut bytes = [0u8; layout::FP_REGISTERS_SIZE];
            user.read_into(data, &mut bytes)?;
            layout::decode_fp_registers(&mut tracee.state.lock(), &bytes);
            Ok(0)
        }
        request::GETREGSET => register_set(context, &tracee, address, data, false),
        request::SETREGSET => register_set(context, &tracee, address, data, true),
        request::CONT => resume(&tracee, Resume::Continue(signal_of(data)?)),
        request::SYSCALL => resume(&tracee, Resume::Syscall(signal_of(data)?)),
        request::SINGLESTEP => resume(&tracee, Resume::SingleStep(signal_of(data)?)),
        request::LISTEN => {
            let state = tracee.state.lock();
            let is_group_stop =
                matches!(state.stop, Some(StopKind::Group(_)) | Some(StopKind::Event(tracing::event::STOP)));
            if !state.is_seized || !is_group_stop {
                return Err(Errno::EIO.into());
            }
            drop(state);
            resume(&tracee, Resume::Listen)
        }
        request::DETACH => {
            tracing::release(&tracee, Resume::Detach(signal_of(data)?));
            Ok(0)
        }
        request::SETOPTIONS => {
            let options = u32::try_from(data).map_err(|_| Errno::EINVAL)?;
            if options & !option::ALL != 0 {
                return Err(Errno::EINVAL.into());
            }
            tracee.state.lock().options = options;
            Ok(0)
        }
        request::GETEVENTMSG => {
            let message = tracee.state.lock().event_message;
            user.write_u64(data, message)?;
            Ok(0)
        }
        request::GETSIGINFO => {
            let (signal, info) = tracee.state.lock().signal;
            user.write_bytes(data, &info.encode(signal))?;
            Ok(0)
        }
        request::SETSIGINFO => {
            let mut bytes = [0u8; crate::signal::info::SIGINFO_SIZE];
            user.read_into(data, &mut bytes)?;
            let info = crate::signal::SignalInfo::decode(&bytes);
            tracee.state.lock().signal.1 = info;
            Ok(0)
        }
        request::GET_SYSCALL_INFO => {
            let (bytes, size) = layout::syscall_info(&tracee.state.lock());
            let wanted = usize::try_from(address).unwrap_or(usize::MAX).min(size);
            user.write_bytes(data, &bytes[..wanted])?;
            Ok(size as u64)
        }
        _ => Err(Errno::EIO.into()),
    }
}

/// A signal a tracer passes (0: none); `EIO` past the last.
fn signal_of(data: u64) -> core::result::Result<u8, Errno> {
    if data > crate::process::SIGNAL_COUNT as u64 { Err(Errno::EIO) } else { Ok(data as u8) }
}

/// The process of a tracee that has not ended.
fn process_of(tracee: &Tracee) -> core::result::Result<Arc<Process>, Errno> {
    crate::process::find(tracee.pid).filter(|process| !process.has_ended()).ok_or(Errno::ESRCH)
}

/// Lets a stopped tracee go on as `how` says.
fn resume(tracee: &Tracee, how: Resume) -> Result {
    tracee.state.lock().resume = Some(how);
    tracee.wake(false);
    Ok(0)
}

/// `PTRACE_GETREGSET`/`SETREGSET`: the set `kind` through the `iovec` at
/// `vector`, whose length becomes the size moved.
fn register_set(context: Context<'_>, tracee: &Tracee, kind: u64, vector: u64, is_set: bool) -> Result {
    let user = User::new(context.machine);
    let base = user.read_u64(vector)?;
    let length = user.read_u64(vector + 8)?;
    let mut bytes = [0u8; layout::FP_REGISTERS_SIZE];
    let size = match kind {
        NT_PRSTATUS => layout::REGISTERS_SIZE,
        NT_PRFPREG => layout::FP_REGISTERS_SIZE,
        _ => return Err(Errno::EINVAL.into()),
    };
    let size = size.min(usize::try_from(length).unwrap_or(usize::MAX));
    if is_set {
        user.read_into(base, &mut bytes[..size])?;
        let mut state = tracee.state.lock();
        match kind {
            NT_PRSTATUS => layout::decode_registers(&mut state, &bytes[..size])?,
            _ => layout::decode_fp_registers(&mut state, &bytes[..size]),
        }
    } else {
        let state = tracee.state.lock();
        match kind {
            NT_PRSTATUS => bytes[..layout::REGISTERS_SIZE].copy_from_slice(&layout::encode_registers(&state)),
            _ => bytes.copy_from_slice(&layout::encode_fp_registers(&state)),
        }
        drop(state);
        user.write_bytes(base, &bytes[..size])?;
    }
    user.write_u64(vector + 8, size as u64)?;
    Ok(0)
}

/// `PTRACE_TRACEME`: the caller's parent traces it.
fn trace_me(context: Context<'_>) -> Result {
    let parent = context.process.parent_id();
    if parent == 0 {
        return Err(Errno::EPERM.into());
    }
    tracing::attach(context.process, context.thread, parent, 0, false)?;
    Ok(0)
}

/// Whether the caller may trace `target` (Linux's `ptrace_may_access`
/// for attaching, on real credentials): `CAP_SYS_PTRACE`, or its real
/// user and group are each of the target's and the target is dumpable.
fn may_trace(context: Context<'_>, target: &Process) -> bool {
    let caller = context.process.state.lock().credentials.clone();
    if caller.has_capability(CAP_SYS_PTRACE) {
        return true;
    }
    let state = target.state.lock();
    let credentials = &state.credentials;
    let same_user = [credentials.real_user, credentials.effective_user, credentials.saved_user]
        .iter()
        .all(|&user| user == caller.real_user);
    let same_group = [credentials.real_group, credentials.effective_group, credentials.saved_group]
        .iter()
        .all(|&group| group == caller.real_group);
    same_user && same_group && state.is_dumpable
}

/// The thread `tid` names and its process.
fn thread_named(tid: u64) -> core::result::Result<(Arc<Process>, Arc<Thread>), Errno> {
    if tid == 0 || tid > i32::MAX as u64 {
        return Err(Errno::ESRCH);
    }
    let process = crate::process::find(tid)
        .filter(|process| process.thread(tid).is_some())
        .or_else(|| crate::process::all().into_iter().find(|process| process.thread(tid).is_some()))
        .filter(|process| !process.has_ended())
        .ok_or(Errno::ESRCH)?;
    let thread = process.thread(tid).ok_or(Errno::ESRCH)?;
    Ok((process, thread))
}

/// `PTRACE_ATTACH` (`seized` is `None`: the tracee gets a `SIGSTOP`) or
/// `PTRACE_SEIZE` with its options.
fn attach(context: Context<'_>, tid: u64, seized: Option<u32>) -> Result {
    let (process, thread) = thread_named(tid)?;
    if process.pid == context.process.pid || !may_trace(context, &process) {
        return Err(Errno::EPERM.into());
    }
    let tracee =
        tracing::attach(&process, &thread, context.process.pid, seized.unwrap_or(0), seized.is_some())?;
    match seized {
        None => {
            let info = crate::signal::SignalInfo::kernel();
            let target = crate::signal::Target::Thread(&thread);
            let queueing = crate::signal::Queueing::Always;
            crate::signal::send(&process, target, crate::signal::SIGSTOP, info, None, queueing)?;
        }
        // A tracee stopped already reports its group-stop.
        Some(_) if process.signals.job.is_stopped() => tracee.wake(true),
        Some(_) => {}
    }
    Ok(0)
}
