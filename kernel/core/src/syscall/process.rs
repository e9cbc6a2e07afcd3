//! Process and thread identity, limits, signal dispositions, arch_prctl.

use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::encode_utsname;
use crate::memory::APPLICATION_END;
use crate::process::{self, LIMIT_COUNT, Limit};
use crate::user::User;

use crate::linux::UTSNAME;

pub(super) fn uname(context: Context<'_>, address: u64) -> Result {
    let uts = context.process.namespaces().uts;
    let names = uts.names().ok_or(Errno::EINVAL)?;
    let (host, domain) = (names.host_name(), names.domain_name());
    let [system, _, release, version, machine, _] = UTSNAME;
    let fields = [system, host.as_str(), release, version, machine, domain.as_str()];
    User::new(context.machine).write_bytes(address, &encode_utsname(fields))?;
    Ok(0)
}

/// `sethostname` (or, with `is_domain`, `setdomainname`): with
/// `CAP_SYS_ADMIN` over the caller's UTS namespace only, at most 64
/// bytes, not necessarily NUL-terminated.
pub(super) fn set_name(context: Context<'_>, address: u64, length: u64, is_domain: bool) -> Result {
    let uts = context.process.namespaces().uts;
    let credentials = context.process.state.lock().credentials.clone();
    if !credentials.has_capability_in(uts.owner(), crate::credentials::capability::SYS_ADMIN) {
        return Err(Errno::EPERM.into());
    }
    if length > crate::uts::NAME_MAX as u64 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = User::new(context.machine).read_bytes(address, length as usize)?;
    let name = alloc::string::String::from_utf8_lossy(&bytes);
    let names = uts.names().ok_or(Errno::EINVAL)?;
    let set = if is_domain { names.set_domain_name(&name) } else { names.set_host_name(&name) };
    set.map_err(|_| Errno::EINVAL)?;
    Ok(0)
}

/// `personality`: the execution domain and its flags, kept per thread as
/// Linux keeps them; 0xffffffff only asks. Only `PER_LINUX` behaviour
/// exists: the flags (`ADDR_NO_RANDOMIZE`, ...) are reported back.
pub(super) fn personality(context: Context<'_>, persona: u64) -> Result {
    const QUERY: u32 = 0xffff_ffff;
    let persona = persona as u32;
    let mut state = context.thread.state.lock();
    let old = state.personality;
    if persona != QUERY {
        state.personality = persona;
    }
    Ok(u64::from(old))
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
    Ok(context.thread.tid)
}

pub(super) fn getresuid(context: Context<'_>, real: u64, effective: u64, saved: u64) -> Result {
    let credentials = context.process.state.lock().credentials.clone();
    write_ids(
        context,
        [real, effective, saved],
        [credentials.real_user, credentials.effective_user, credentials.saved_user]
            .map(|user| credentials.user_seen(user)),
    )
}

pub(super) fn getresgid(context: Context<'_>, real: u64, effective: u64, saved: u64) -> Result {
    let credentials = context.process.state.lock().credentials.clone();
    write_ids(
        context,
        [real, effective, saved],
        [credentials.real_group, credentials.effective_group, credentials.saved_group]
            .map(|group| credentials.group_seen(group)),
    )
}

fn write_ids(context: Context<'_>, addresses: [u64; 3], ids: [u32; 3]) -> Result {
    let user = User::new(context.machine);
    for (address, id) in addresses.into_iter().zip(ids) {
        user.write_u32(address, id)?;
    }
    Ok(0)
}

/// The most supplementary groups a process has (`NGROUPS_MAX`).
const GROUPS_MAX: u64 = 65536;

pub(super) fn getgroups(context: Context<'_>, size: u64, list: u64) -> Result {
    let groups: alloc::vec::Vec<u32> = {
        let credentials = &context.process.state.lock().credentials;
        credentials.groups.iter().map(|group| credentials.group_seen(*group)).collect()
    };
    let count = groups.len() as u64;
    let size = size as i32;
    if size < 0 || size as u64 > GROUPS_MAX {
        return Err(Errno::EINVAL.into());
    }
    if size == 0 {
        return Ok(count);
    }
    if (size as u64) < count {
        return Err(Errno::EINVAL.into());
    }
    let bytes: alloc::vec::Vec<u8> = groups.iter().flat_map(|group| group.to_le_bytes()).collect();
    User::new(context.machine).write_bytes(list, &bytes)?;
    Ok(count)
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
    let target = if thread == 0 { Some(context.thread.tid) } else { Some(thread) };
    let thread = target.and_then(|tid| context.process.thread(tid)).ok_or(Errno::ESRCH)?;
    let (list, list_length) = thread.state.lock().robust_list;
    let user = User::new(context.machine);
    user.write_u64(head, list)?;
    user.write_u64(length, list_length)?;
    Ok(0)
}

pub(super) fn prlimit(context: Context<'_>, pid: u64, resource: u64, new: u64, old: u64) -> Result {
    if pid != 0 && pid != context.process.pid {
        return Err(Errno::ESRCH.into());
    }
    let index = usize::try_from(resource).ok().filter(|&index| index < LIMIT_COUNT).ok_or(Errno::EINVAL)?;
    let user = User::new(context.machine);
    let replacement = if new != 0 {
        let limit = Limit { current: user.read_u64(new)?, maximum: user.read_u64(new + 8)? };
        if limit.current > limit.maximum {
            return Err(Errno::EINVAL.into());
        }
        // Descriptor tables stop at Linux's `nr_open`, even for root.
        if index == process::limit::NOFILE && limit.maximum > process::NR_OPEN {
            return Err(Errno::EPERM.into());
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

/// `prctl` options.
const PR_SET_PDEATHSIG: u64 = 1;
const PR_GET_PDEATHSIG: u64 = 2;
const PR_GET_DUMPABLE: u64 = 3;
const PR_SET_DUMPABLE: u64 = 4;
const PR_SET_NAME: u64 = 15;
const PR_GET_NAME: u64 = 16;

pub(super) fn prctl(context: Context<'_>, option: u64, argument: u64) -> Result {
    let user = User::new(context.machine);
    match option {
        PR_SET_NAME => {
            let name = user.read_c_string(argument, 4096)?;
            let mut stored = [0u8; 16];
            let length = name.len().min(15);
            stored[..length].copy_from_slice(&name[..length]);
            context.thread.state.lock().name = stored;
            Ok(0)
        }
        PR_GET_NAME => {
            let name = context.thread.state.lock().name;
            user.write_bytes(argument, &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG if argument <= process::SIGNAL_COUNT as u64 => {
            context.process.family.lock().parent_death_signal = argument as u8;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let signal = context.process.family.lock().parent_death_signal;
            user.write_u32(argument, u32::from(signal))?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(u64::from(context.process.state.lock().is_dumpable)),
        // 0 (`SUID_DUMP_DISABLE`) or 1 (`SUID_DUMP_USER`); 2 is for the
        // administrator's setting alone.
        PR_SET_DUMPABLE if argument <= 1 => {
            context.process.state.lock().is_dumpable = argument == 1;
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// `kcmp` types.
mod kcmp_type {
    pub const FILE: u64 = 0;
    pub const VM: u64 = 1;
    pub const FILES: u64 = 2;
    pub const FS: u64 = 3;
    pub const SIGHAND: u64 = 4;
    pub const IO: u64 = 5;
    pub const SYSVSEM: u64 = 6;
}

/// `kcmp` for threads of the caller's process: they share everything but
/// their descriptors' open files, which compare by identity (0 for the
/// same, 1 or 2 ordered by a value that says nothing of the kernel's
/// addresses). `KCMP_EPOLL_TFD` is not offered (`EINVAL`).
pub(super) fn kcmp(context: Context<'_>, pids: (u64, u64), kind: u64, first: u64, second: u64) -> Result {
    for pid in [pids.0, pids.1] {
        let pid = pid as i32;
        if pid <= 0 || (pid as u64 != context.process.pid && context.process.thread(pid as u64).is_none()) {
            return Err(Errno::ESRCH.into());
        }
    }
    match kind {
        kcmp_type::FILE => {
            let first = super::files::file(context, first)?;
            let second = super::files::file(context, second)?;
            if alloc::sync::Arc::ptr_eq(&first, &second) {
                return Ok(0);
            }
            // Ordered by a digest of the identities, so that the order is
            // stable but reveals nothing.
            let digest = |file: &alloc::sync::Arc<crate::vfs::OpenFile>| {
                (alloc::sync::Arc::as_ptr(file) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            };
            Ok(if digest(&first) < digest(&second) { 1 } else { 2 })
        }
        kcmp_type::VM
        | kcmp_type::FILES
        | kcmp_type::FS
        | kcmp_type::SIGHAND
        | kcmp_type::IO
        | kcmp_type::SYSVSEM => Ok(0),
        _ => Err(Errno::EINVAL.into()),
    }
}
