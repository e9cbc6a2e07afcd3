//! POSIX message queues: `mq_open`, `mq_unlink`, `mq_timedsend`,
//! `mq_timedreceive`, `mq_notify`, `mq_getsetattr`.

use alloc::sync::Arc;

use super::ipc::{self, Interruption};
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::linux::Timespec;
use crate::mqueue::{self, NameError, Notification, Queue, QueueFile, Refusal, Shape};
use crate::signal::{SignalInfo, code};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{FileObject, OpenFile};

/// Linux's defaults and the bounds root may go to (`fs.mqueue.*`).
const DEFAULT_CAPACITY: usize = 10;
const DEFAULT_MESSAGE_SIZE: usize = 8192;
const HARD_CAPACITY: u64 = 65536;
const HARD_MESSAGE_SIZE: u64 = 16 << 20;
/// The longest name (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// `sigev_notify` values.
const SIGEV_SIGNAL: u32 = 0;
const SIGEV_NONE: u32 = 1;

fn read_name(context: Context<'_>, address: u64) -> core::result::Result<alloc::string::String, Errno> {
    let name = User::new(context.machine).read_path(address)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.contains('/') || name == "." || name == ".." {
        return Err(Errno::EACCES);
    }
    Ok(name)
}

fn name_error(error: NameError) -> Errno {
    match error {
        NameError::NotFound => Errno::ENOENT,
        NameError::Exists => Errno::EEXIST,
        NameError::Denied => Errno::EACCES,
    }
}

pub(super) fn mq_open(
    context: Context<'_>,
    name: u64,
    open_flags: u64,
    mode: u64,
    attributes: u64,
) -> Result {
    let name = read_name(context, name)?;
    let open_flags = open_flags as u32;
    let access = open_flags & flags::O_ACCMODE;
    if access == flags::O_ACCMODE {
        return Err(Errno::EINVAL.into());
    }
    let may_create = open_flags & flags::O_CREAT != 0;
    let shape = if may_create && attributes != 0 {
        let user = User::new(context.machine);
        let capacity = user.read_u64(attributes + 8)? as i64;
        let message_size = user.read_u64(attributes + 16)? as i64;
        if capacity <= 0
            || message_size <= 0
            || capacity as u64 > HARD_CAPACITY
            || message_size as u64 > HARD_MESSAGE_SIZE
        {
            return Err(Errno::EINVAL.into());
        }
        Shape { capacity: capacity as usize, message_size: message_size as usize }
    } else {
        Shape { capacity: DEFAULT_CAPACITY, message_size: DEFAULT_MESSAGE_SIZE }
    };
    let umask = context.fs().umask();
    let credentials = context.process.state.lock().credentials.clone();
    let owner = (credentials.effective_user, credentials.effective_group);
    let names = context.process.namespaces().ipc.objects().get::<mqueue::QueueNames>();
    let queue = mqueue::open(&names, &name, may_create, open_flags & flags::O_EXCL != 0, || {
        Queue::new(shape, (mode as u32) & 0o777 & !umask, owner)
    })
    .map_err(name_error)?;
    // The queue's permission bits, as a file's (CAP_DAC_OVERRIDE aside).
    let wanted = match access {
        flags::O_RDONLY => 0o4,
        flags::O_WRONLY => 0o2,
        _ => 0o6,
    };
    let granted = if credentials.effective_user == queue.owner.0 {
        queue.mode >> 6
    } else if credentials.is_in_group(queue.owner.1) {
        queue.mode >> 3
    } else {
        queue.mode
    };
    if wanted & !granted & 0o7 != 0
        && !credentials.has_capability(crate::credentials::capability::DAC_OVERRIDE)
    {
        return Err(Errno::EACCES.into());
    }
    let status = access | (open_flags & flags::O_NONBLOCK);
    let file = OpenFile::new(FileObject::Special(Arc::new(QueueFile { queue })), status);
    super::paths::install(context, file, open_flags & flags::O_CLOEXEC != 0)
}

pub(super) fn mq_unlink(context: Context<'_>, name: u64) -> Result {
    let name = read_name(context, name)?;
    // /dev/mqueue is sticky: only a queue's owner (or one with
    // CAP_FOWNER) removes it.
    let credentials = context.process.state.lock().credentials.clone();
    let names = context.process.namespaces().ipc.objects().get::<mqueue::QueueNames>();
    mqueue::unlink(&names, &name, |queue| {
        queue.owner.0 == credentials.effective_user
            || credentials.has_capability(crate::credentials::capability::FOWNER)
    })
    .map_err(name_error)?;
    Ok(0)
}

/// The queue of descriptor `fd` with its open file (`EBADF` for another
/// kind of file, as Linux).
fn queue_of(context: Context<'_>, fd: u64) -> core::result::Result<(Arc<OpenFile>, Arc<Queue>), Errno> {
    let file = super::files::file(context, fd)?;
    let queue = file
        .special()
        .and_then(|special| special.as_any().downcast_ref::<QueueFile>())
        .map(|file| file.queue.clone())
        .ok_or(Errno::EBADF)?;
    Ok((file, queue))
}

/// The monotonic deadline of the absolute wall-clock time at `address`.
fn deadline(context: Context<'_>, address: u64) -> core::result::Result<Option<u64>, Errno> {
    if address == 0 {
        return Ok(None);
    }
    let mut bytes = [0u8; 16];
    User::new(context.machine).read_into(address, &mut bytes)?;
    let time = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?.to_ns();
    let left = time.saturating_sub(context.machine.realtime_ns());
    Ok(Some(context.machine.monotonic_ns().saturating_add(left)))
}

fn waited<T>(outcome: core::result::Result<T, Interruption>) -> core::result::Result<T, Failure> {
    outcome.map_err(|interruption| match interruption {
        Interruption::Signal => Failure::Error(Errno::EINTR),
        Interruption::TimedOut => Failure::Error(Errno::ETIMEDOUT),
    })
}

pub(super) fn mq_timedsend(
    context: Context<'_>,
    fd: u64,
    message: u64,
    length: u64,
    priority: u64,
    timeout: u64,
) -> Result {
    let (file, queue) = queue_of(context, fd)?;
    if !file.is_writable() {
        return Err(Errno::EBADF.into());
    }
    if priority >= u64::from(mqueue::PRIORITY_COUNT) {
        return Err(Errno::EINVAL.into());
    }
    if length > queue.shape.message_size as u64 {
        return Err(Errno::EMSGSIZE.into());
    }
    let bytes = User::new(context.machine).read_bytes(message, length as usize)?;
    let deadline = deadline(context, timeout)?;
    let is_nonblocking = file.is_nonblocking();
    let attempt = || match queue.send(&bytes, priority as u32) {
        Ok(notification) => Ok(Some(notification)),
        Err(Refusal::Size) => Err(Errno::EMSGSIZE),
        Err(Refusal::WouldBlock) if is_nonblocking => Err(Errno::EAGAIN),
        Err(Refusal::WouldBlock) => Ok(None),
    };
    // Once before joining the waiters: a sender among them would count as
    // a receiver waiting, which stops the notification.
    let notification = match attempt()? {
        Some(notification) => notification,
        None => waited(ipc::wait(context, &queue.waiters, deadline, attempt)?)?,
    };
    if let Some(Notification { signal: Some(signal), info, .. }) = notification {
        let _ = crate::signal::send(
            context.process,
            crate::signal::Target::Process { sender: None },
            signal,
            info,
            None,
            crate::signal::Queueing::Always,
        );
    }
    Ok(0)
}

pub(super) fn mq_timedreceive(
    context: Context<'_>,
    fd: u64,
    buffer: u64,
    length: u64,
    priority: u64,
    timeout: u64,
) -> Result {
    let (file, queue) = queue_of(context, fd)?;
    if !file.is_readable() {
        return Err(Errno::EBADF.into());
    }
    if length < queue.shape.message_size as u64 {
        return Err(Errno::EMSGSIZE.into());
    }
    let deadline = deadline(context, timeout)?;
    let is_nonblocking = file.is_nonblocking();
    let (message, message_priority) =
        waited(ipc::wait(context, &queue.waiters, deadline, || match queue.receive(length as usize) {
            Ok(taken) => Ok(Some(taken)),
            Err(Refusal::Size) => Err(Errno::EMSGSIZE),
            Err(Refusal::WouldBlock) if is_nonblocking => Err(Errno::EAGAIN),
            Err(Refusal::WouldBlock) => Ok(None),
        })?)?;
    let user = User::new(context.machine);
    user.write_bytes(buffer, &message)?;
    if priority != 0 {
        user.write_u32(priority, message_priority)?;
    }
    Ok(message.len() as u64)
}

/// `mq_notify`: a signal (or nothing, `SIGEV_NONE`) when a message arrives
/// in the empty queue; no event removes the caller's registration. The C
/// libraries' `SIGEV_THREAD` needs a netlink socket to be told through,
/// which is not offered (`EINVAL`).
pub(super) fn mq_notify(context: Context<'_>, fd: u64, event: u64) -> Result {
    let pid = context.process.pid;
    if event == 0 {
        queue_of(context, fd)?.1.unregister(pid);
        return Ok(0);
    }
    let mut bytes = [0u8; 64];
    User::new(context.machine).read_into(event, &mut bytes)?;
    let word = |offset: usize| {
        u32::from_le_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
    };
    let value = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let signal = match word(12) {
        SIGEV_NONE => None,
        SIGEV_SIGNAL => Some(
            u8::try_from(word(8))
                .ok()
                .filter(|signal| (1..=crate::process::SIGNAL_COUNT as u8).contains(signal))
                .ok_or(Errno::EINVAL)?,
        ),
        _ => return Err(Errno::EINVAL.into()),
    };
    // The event is checked before the descriptor, as on Linux.
    let (_, queue) = queue_of(context, fd)?;
    let uid = context.process.state.lock().credentials.real_user;
    let info = SignalInfo::queued(code::MESSAGE_QUEUE, pid as u32, uid, value);
    if !queue.register(Notification { pid, signal, info }) {
        return Err(Errno::EBUSY.into());
    }
    Ok(0)
}

pub(super) fn mq_getsetattr(context: Context<'_>, fd: u64, new: u64, old: u64) -> Result {
    let (file, queue) = queue_of(context, fd)?;
    let user = User::new(context.machine);
    let new_flags = if new != 0 {
        let requested = user.read_u64(new)?;
        if requested & !u64::from(flags::O_NONBLOCK) != 0 {
            return Err(Errno::EINVAL.into());
        }
        Some(requested as u32)
    } else {
        None
    };
    if old != 0 {
        let mut bytes = [0u8; 64];
        let words = [
            u64::from(file.status_flags() & flags::O_NONBLOCK),
            queue.shape.capacity as u64,
            queue.shape.message_size as u64,
            queue.count() as u64,
        ];
        for (index, word) in words.iter().enumerate() {
            bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        user.write_bytes(old, &bytes)?;
    }
    if let Some(requested) = new_flags {
        file.set_status_flags((file.status_flags() & !flags::O_NONBLOCK) | requested);
    }
    Ok(0)
}
