//! Process descriptors (pidfds): `pidfd_open`, `CLONE_PIDFD`,
//! `pidfd_send_signal`, `pidfd_getfd`, and `waitid(P_PIDFD)`.
//!
//! A [`PidFile`] names one process for as long as it is open, without
//! keeping it from being reaped: it holds the process weakly, so once the
//! process is gone its id can never reach another by mistake (calls give
//! `ESRCH`). It polls readable once the process has ended.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::any::Any;

use super::{Context, Result};
use crate::errno::Errno;
use crate::process::Process;
use crate::signal::{self, Queueing, Target, code};
use crate::vfs::file::flags;
use crate::vfs::special::SpecialFile;
use crate::vfs::waiters::{WaiterList, events};
use crate::vfs::{FileObject, OpenFile};

/// `PIDFD_NONBLOCK`: the descriptor is non-blocking (`waitid` on it does
/// not wait).
const PIDFD_NONBLOCK: u64 = flags::O_NONBLOCK as u64;

/// An open process descriptor.
pub struct PidFile {
    process: Weak<Process>,
    pid: u64,
    /// The process's end waiters, kept past its reaping.
    end_waiters: Arc<WaiterList>,
}

impl PidFile {
    /// A descriptor of `process`.
    pub fn new(process: &Arc<Process>) -> Arc<PidFile> {
        Arc::new(PidFile {
            process: Arc::downgrade(process),
            pid: process.pid,
            end_waiters: process.end_waiters.clone(),
        })
    }

    /// The process, unless it has been reaped.
    pub fn process(&self) -> Option<Arc<Process>> {
        self.process.upgrade()
    }

    /// The process's id.
    pub fn pid(&self) -> u64 {
        self.pid
    }
}

impl SpecialFile for PidFile {
    fn name(&self) -> String {
        String::from("anon_inode:[pidfd]")
    }

    fn poll(&self) -> u16 {
        match self.process() {
            Some(process) if !process.has_ended() => 0,
            Some(_) => events::POLLIN,
            None => events::POLLIN | events::POLLHUP,
        }
    }

    fn waiters(&self) -> &WaiterList {
        &self.end_waiters
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Makes a pidfd of `process` a descriptor of the caller (always
/// close-on-exec, as on Linux).
pub(super) fn install(context: Context<'_>, process: &Arc<Process>, is_nonblocking: bool) -> Result {
    let status = flags::O_RDWR | if is_nonblocking { flags::O_NONBLOCK } else { 0 };
    let file = OpenFile::new(FileObject::Special(PidFile::new(process) as Arc<dyn SpecialFile>), status);
    super::paths::install(context, file, true)
}

/// The pidfd that descriptor `raw` is (`EBADF` for no descriptor or
/// another kind of file, as on Linux), and its process's id.
pub(super) fn pid_file(context: Context<'_>, raw: u64) -> core::result::Result<(Arc<OpenFile>, u64), Errno> {
    let file = super::files::file(context, raw)?;
    let pid = file
        .special()
        .and_then(|special| special.as_any().downcast_ref::<PidFile>().map(PidFile::pid))
        .ok_or(Errno::EBADF)?;
    Ok((file, pid))
}

/// The live-or-zombie process that pidfd `raw` names.
fn named_process(context: Context<'_>, raw: u64) -> core::result::Result<Arc<Process>, Errno> {
    let (file, _) = pid_file(context, raw)?;
    let special = file.special().ok_or(Errno::EBADF)?;
    let pid_file = special.as_any().downcast_ref::<PidFile>().ok_or(Errno::EBADF)?;
    pid_file.process().ok_or(Errno::ESRCH)
}

/// The process whose `/proc/PID` directory descriptor `raw` is open on:
/// `pidfd_send_signal` takes one in place of a pidfd (`EBADF` for any
/// other file, `ESRCH` once the process is gone).
fn process_directory(context: Context<'_>, raw: u64) -> core::result::Result<Arc<Process>, Errno> {
    let file = super::files::file(context, raw)?;
    let location = file.location().ok_or(Errno::EBADF)?;
    let pid = crate::fs::procfs::process_directory_pid(location.node.as_ref()).ok_or(Errno::EBADF)?;
    crate::process::find(pid).ok_or(Errno::ESRCH)
}

pub(super) fn pidfd_open(context: Context<'_>, pid: u64, open_flags: u64) -> Result {
    if open_flags & !PIDFD_NONBLOCK != 0 || pid as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    // Only a process (its first thread's id) has a pidfd.
    let process = crate::process::find(pid).ok_or(Errno::ESRCH)?;
    install(context, &process, open_flags & PIDFD_NONBLOCK != 0)
}

pub(super) fn pidfd_send_signal(
    context: Context<'_>,
    raw: u64,
    number: u64,
    info: u64,
    call_flags: u64,
) -> Result {
    if call_flags != 0 {
        return Err(Errno::EINVAL.into());
    }
    if number > crate::process::SIGNAL_COUNT as u64 {
        return Err(Errno::EINVAL.into());
    }
    let process = match named_process(context, raw) {
        Err(Errno::EBADF) => process_directory(context, raw)?,
        named => named?,
    };
    if process.has_ended() {
        return Err(Errno::ESRCH.into());
    }
    let is_self = process.pid == context.process.pid;
    if !super::signals::may_signal(context, &process, number) {
        return Err(Errno::EPERM.into());
    }
    let info = if info == 0 {
        super::signals::sender(context, code::USER)
    } else {
        let info = super::signals::queued_info(context, info)?;
        // Only to itself may a process claim to be `kill` or the kernel.
        if !is_self && (info.code >= 0 || info.code == code::TKILL) {
            return Err(Errno::EPERM.into());
        }
        info
    };
    if number == 0 {
        return Ok(0);
    }
    let target = Target::Process { sender: is_self.then_some(context.thread.as_ref()) };
    signal::send(&process, target, number as u8, info, None, Queueing::Always)?;
    Ok(0)
}

pub(super) fn pidfd_getfd(context: Context<'_>, raw: u64, target: u64, call_flags: u64) -> Result {
    if call_flags != 0 {
        return Err(Errno::EINVAL.into());
    }
    let process = named_process(context, raw)?;
    if process.has_ended() {
        return Err(Errno::ESRCH.into());
    }
    // Taking another process's descriptor needs the right to inspect it
    // (Linux's ptrace attach check, here for one user: root or the same
    // user).
    let caller = super::files::caller(context);
    if !crate::process::may_inspect(&caller, &process) {
        return Err(Errno::EPERM.into());
    }
    let number = usize::try_from(target).map_err(|_| Errno::EBADF)?;
    let file = process.descriptors.with(|table| table.file(number as u64)).map_err(|_| Errno::EBADF)?;
    super::paths::install(context, file, true)
}
