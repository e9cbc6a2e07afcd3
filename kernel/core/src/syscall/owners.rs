//! Signal-driven I/O: a file's owner (`F_SETOWN`, `F_SETOWN_EX`), the
//! signal it gets (`F_SETSIG`), and `SIGIO` while `O_ASYNC` is set.
//!
//! The owner and signal live in the open file's [`Owner`]; while the file
//! has `O_ASYNC` and an owner, a [`SignalOnChange`] listens to the
//! object's waiter list and signals the owner at every change, as Linux's
//! `kill_fasync` does at every wake-up of a socket. Only objects with a
//! waiter list (sockets, eventfds, epoll) can signal; for others the
//! settings are kept and read back. A directory's description signals its
//! owner through dnotify (`F_NOTIFY`) instead: [`notify_directory`].

use alloc::sync::{Arc, Weak};

use super::files::file;
use super::signals::signal_owner;
use super::{Context, Result};
use crate::errno::Errno;
use crate::process::Thread;
use crate::signal::SignalInfo;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::waiters::{ChangeListener, events};
use crate::vfs::{OpenFile, SpecialFile};

/// `fcntl` commands of this module.
pub(super) mod command {
    pub const F_SETOWN: u64 = 8;
    pub const F_GETOWN: u64 = 9;
    pub const F_SETSIG: u64 = 10;
    pub const F_GETSIG: u64 = 11;
    pub const F_SETOWN_EX: u64 = 15;
    pub const F_GETOWN_EX: u64 = 16;
    pub const F_NOTIFY: u64 = 1026;
}

/// `struct f_owner_ex` types.
const F_OWNER_TID: i32 = 0;
const F_OWNER_PID: i32 = 1;
const F_OWNER_PGRP: i32 = 2;
/// `SIGIO`, sent unless `F_SETSIG` names another signal.
const SIGIO: u8 = 29;
/// The last signal number (`_NSIG`).
const SIGNAL_MAX: u64 = 64;

/// Sends the owner's signal at every change: to its thread, or to its
/// process through one of the process's threads.
struct SignalOnChange {
    thread: Weak<Thread>,
    signal: u8,
    is_thread_directed: bool,
    /// The object, whose readiness says what changed, and the descriptor
    /// that asked: what a signal chosen with `F_SETSIG` tells.
    object: Weak<dyn SpecialFile>,
    fd: i32,
}

impl ChangeListener for SignalOnChange {
    fn changed(&self) {
        let Some(thread) = self.thread.upgrade() else { return };
        // `SIGIO` itself says nothing more; a chosen signal carries the
        // event (`si_code` `POLL_IN` or `POLL_OUT`), its poll bits
        // (`si_band`) and the descriptor (`si_fd`), as Linux's
        // `send_sigio_to_task` fills them.
        let info = match self.object.upgrade() {
            Some(object) if self.signal != SIGIO => {
                let readiness = object.poll();
                if readiness & events::POLLIN != 0 {
                    SignalInfo::poll(POLL_IN, BAND_IN, self.fd)
                } else {
                    SignalInfo::poll(POLL_OUT, BAND_OUT, self.fd)
                }
            }
            _ => SignalInfo::kernel(),
        };
        signal_owner(&thread, self.signal, self.is_thread_directed, info);
    }
}

/// `si_code` of a signal chosen with `F_SETSIG`: input or output possible.
const POLL_IN: i32 = 1;
const POLL_OUT: i32 = 2;
/// Its `si_band`: `POLLIN | POLLRDNORM | POLLMSG` and `POLLOUT |
/// POLLWRNORM | POLLWRBAND`.
const BAND_IN: i64 = 0x1 | 0x40 | 0x400;
const BAND_OUT: i64 = 0x4 | 0x100 | 0x200;

/// `si_code` of a dnotify signal chosen with `F_SETSIG` (`POLL_MSG`), and
/// its `si_band` (`POLLIN | POLLRDNORM | POLLMSG`).
const POLL_MSG: i32 = 3;
const BAND_MESSAGE: i64 = 0x1 | 0x40 | 0x400;

/// Signals a directory description's owning process when the directory
/// changes: `SIGIO`, or the `F_SETSIG` signal (read at each change) with
/// the descriptor that asked.
struct SignalOnDirectoryChange {
    process: Weak<crate::process::Process>,
    file: Weak<OpenFile>,
    fd: i32,
}

impl ChangeListener for SignalOnDirectoryChange {
    fn changed(&self) {
        let (Some(process), Some(file)) = (self.process.upgrade(), self.file.upgrade()) else { return };
        let chosen = file.owner().signal;
        let (signal, info) = if chosen == 0 {
            (SIGIO, SignalInfo::kernel())
        } else {
            (chosen, SignalInfo::poll(POLL_MSG, BAND_MESSAGE, self.fd))
        };
        let target = crate::signal::Target::Process { sender: None };
        let _ = crate::signal::send(&process, target, signal, info, None, crate::signal::Queueing::Always);
    }
}

/// `fcntl(fd, F_NOTIFY, kinds)`: asks for a signal when the directory `fd`
/// is open on changes in the `DN_*` ways of `kinds` (once, or every time
/// with `DN_MULTISHOT`); no kind ends the watch. As on Linux, the caller's
/// process becomes the description's owner.
pub(super) fn notify_directory(context: Context<'_>, fd: u64, file: &Arc<OpenFile>, kinds: u64) -> Result {
    use crate::vfs::notify::{directory, key_of};
    let location = file.location().ok_or(Errno::ENOTDIR)?;
    if !location.is_directory() {
        return Err(Errno::ENOTDIR.into());
    }
    let kinds = kinds as u32 & (directory::kind::ALL | directory::kind::DN_MULTISHOT);
    if kinds & directory::kind::ALL != 0 {
        let mut owner = file.owner();
        owner.kind = F_OWNER_PID;
        owner.id = context.process.pid as i32;
    }
    let process = crate::process::find(context.process.pid).ok_or(Errno::ESRCH)?;
    let listener = Arc::new(SignalOnDirectoryChange {
        process: Arc::downgrade(&process),
        file: Arc::downgrade(file),
        fd: fd as i32,
    });
    directory::watch(key_of(location), file, kinds, listener);
    Ok(0)
}

/// Runs an owner command of `fcntl`.
pub(super) fn fcntl(context: Context<'_>, fd: u64, command: u64, argument: u64) -> Result {
    let file = file(context, fd)?;
    match command {
        command::F_GETOWN => {
            let owner = file.owner();
            // A process group reads as its negated id.
            let id = if owner.kind == F_OWNER_PGRP { -owner.id } else { owner.id };
            Ok(id as i64 as u64)
        }
        command::F_SETOWN => {
            let id = argument as i32;
            if id == i32::MIN {
                return Err(Errno::EINVAL.into());
            }
            let (kind, id) = if id < 0 { (F_OWNER_PGRP, -id) } else { (F_OWNER_PID, id) };
            set_owner(context, fd as i32, &file, kind, id)
        }
        command::F_GETOWN_EX => {
            let (kind, id) = {
                let owner = file.owner();
                (owner.kind, owner.id)
            };
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(&kind.to_le_bytes());
            bytes[4..].copy_from_slice(&id.to_le_bytes());
            User::new(context.machine).write_bytes(argument, &bytes)?;
            Ok(0)
        }
        command::F_SETOWN_EX => {
            let bytes = User::new(context.machine).read_bytes(argument, 8)?;
            let field =
                |at: usize| i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let (kind, id) = (field(0), field(4));
            if !matches!(kind, F_OWNER_TID | F_OWNER_PID | F_OWNER_PGRP) {
                return Err(Errno::EINVAL.into());
            }
            set_owner(context, fd as i32, &file, kind, id)
        }
        command::F_GETSIG => Ok(u64::from(file.owner().signal)),
        command::F_SETSIG => {
            if argument > SIGNAL_MAX {
                return Err(Errno::EINVAL.into());
            }
            file.owner().signal = argument as u8;
            rearm(context, fd as i32, &file);
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// Makes `id` (of `kind`) the owner: a thread of the process, the process
/// or its group; 0 clears it. `ESRCH` for anyone else.
fn set_owner(context: Context<'_>, fd: i32, file: &Arc<OpenFile>, kind: i32, id: i32) -> Result {
    let exists = match kind {
        _ if id == 0 => true,
        F_OWNER_TID => context.process.thread(id as u64).is_some(),
        // `F_SETOWN` also takes a thread's id, as Linux does.
        _ => i64::from(id) == context.process.pid as i64 || context.process.thread(id as u64).is_some(),
    };
    if !exists || id < 0 {
        return Err(Errno::ESRCH.into());
    }
    {
        let mut owner = file.owner();
        owner.kind = if id == 0 && kind != F_OWNER_TID { F_OWNER_PID } else { kind };
        owner.id = id;
    }
    rearm(context, fd, file);
    Ok(0)
}

/// Starts or stops signalling after a change to `O_ASYNC`, the owner or
/// the signal: a file with `O_ASYNC`, an owner and a waiter list signals
/// its owner (a process or group through the caller's thread, whose
/// process's pending signals every thread shares).
pub(super) fn rearm(context: Context<'_>, fd: i32, file: &Arc<OpenFile>) {
    let is_async = file.status_flags() & flags::O_ASYNC != 0;
    let mut owner = file.owner();
    owner.listener = None;
    let Some(special) = file.special() else { return };
    if !is_async || owner.id == 0 {
        return;
    }
    let thread = match owner.kind {
        F_OWNER_TID => context.process.thread(owner.id as u64),
        _ => Some(context.thread.clone()),
    };
    let Some(thread) = thread else { return };
    let signal = if owner.signal == 0 { SIGIO } else { owner.signal };
    let is_thread_directed = owner.kind == F_OWNER_TID;
    let listener: Arc<dyn ChangeListener> = Arc::new(SignalOnChange {
        thread: Arc::downgrade(&thread),
        signal,
        is_thread_directed,
        object: Arc::downgrade(special),
        fd,
    });
    special.waiters().listen(Arc::downgrade(&listener));
    owner.listener = Some(listener);
}
