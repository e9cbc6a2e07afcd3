//! Descriptors and the console: read, write, stat, ioctl, poll, fcntl.
//!
//! Until the filesystem exists, descriptors 0 to 2 are the console and no
//! path names a file, except `/proc/self/exe` for `readlink`.

use alloc::vec;

use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::{AT_EMPTY_PATH, Stat, Timespec, console_termios, mode};
use crate::process::{Descriptor, OpenFile};
use crate::user::User;

/// Bytes copied per step when moving data between the application and the
/// console.
const CHUNK: usize = 4096;
/// `O_CLOEXEC` for `dup3`.
const O_CLOEXEC: u64 = 0o2000000;
/// The console's `st_rdev`: major 4, minor 64 (`/dev/ttyS0`).
const CONSOLE_DEVICE: u64 = (4 << 8) | 64;

fn descriptor(context: Context<'_>, number: u64) -> core::result::Result<Descriptor, Errno> {
    context.process.state.lock().descriptor(number).ok_or(Errno::EBADF)
}

pub(super) fn read(context: Context<'_>, fd: u64, _buffer: u64, _length: u64) -> Result {
    match descriptor(context, fd)?.file {
        // The console has no input yet: it reads as end of file.
        OpenFile::Console => Ok(0),
    }
}

pub(super) fn readv(context: Context<'_>, fd: u64, vectors: u64, count: u64) -> Result {
    User::new(context.machine).read_iovecs(vectors, count)?;
    read(context, fd, 0, 0)
}

/// Writes application memory `[address, address + length)` to the console;
/// returns the bytes written (fewer if a later part of the buffer faults).
fn write_console(context: Context<'_>, address: u64, length: u64) -> core::result::Result<u64, Errno> {
    let user = User::new(context.machine);
    let mut buffer = vec![0u8; CHUNK.min(length as usize)];
    let mut written = 0u64;
    while written < length {
        let chunk = CHUNK.min((length - written) as usize);
        if let Err(error) = user.read_into(address + written, &mut buffer[..chunk]) {
            return if written == 0 { Err(error) } else { Ok(written) };
        }
        context.machine.console_write(&buffer[..chunk]);
        written += chunk as u64;
    }
    Ok(written)
}

pub(super) fn write(context: Context<'_>, fd: u64, address: u64, length: u64) -> Result {
    match descriptor(context, fd)?.file {
        OpenFile::Console => Ok(write_console(context, address, length)?),
    }
}

pub(super) fn writev(context: Context<'_>, fd: u64, vectors: u64, count: u64) -> Result {
    let target = descriptor(context, fd)?;
    let vectors = User::new(context.machine).read_iovecs(vectors, count)?;
    let mut total = 0;
    for (base, length) in vectors {
        let written = match target.file {
            OpenFile::Console => match write_console(context, base, length) {
                Ok(written) => written,
                Err(error) if total == 0 => return Err(error.into()),
                Err(_) => return Ok(total),
            },
        };
        total += written;
        if written < length {
            break;
        }
    }
    Ok(total)
}

pub(super) fn open(context: Context<'_>, path: u64) -> Result {
    User::new(context.machine).read_path(path)?;
    Err(Errno::ENOENT.into())
}

pub(super) fn access(context: Context<'_>, path: u64) -> Result {
    open(context, path)
}

pub(super) fn close(context: Context<'_>, fd: u64) -> Result {
    let mut state = context.process.state.lock();
    let slot =
        usize::try_from(fd).ok().and_then(|index| state.descriptors.get_mut(index)).ok_or(Errno::EBADF)?;
    slot.take().ok_or(Errno::EBADF)?;
    Ok(0)
}

fn console_stat() -> Stat {
    Stat {
        device: 5,
        inode: 3,
        link_count: 1,
        mode: mode::S_IFCHR | 0o620,
        rdev: CONSOLE_DEVICE,
        block_size: 1024,
        access_time: Timespec::default(),
        ..Stat::default()
    }
}

pub(super) fn fstat(context: Context<'_>, fd: u64, address: u64) -> Result {
    let stat = match descriptor(context, fd)?.file {
        OpenFile::Console => console_stat(),
    };
    User::new(context.machine).write_bytes(address, &stat.encode())?;
    Ok(0)
}

pub(super) fn stat_path(context: Context<'_>, path: u64) -> Result {
    open(context, path)
}

pub(super) fn newfstatat(
    context: Context<'_>,
    directory: u64,
    path: u64,
    address: u64,
    flags: u64,
) -> Result {
    let name = User::new(context.machine).read_path(path)?;
    if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT.into());
        }
        return fstat(context, directory, address);
    }
    Err(Errno::ENOENT.into())
}

/// `poll` events.
const POLLIN: u16 = 0x1;
const POLLOUT: u16 = 0x4;
const POLLNVAL: u16 = 0x20;

/// Fills in `revents` of each `struct pollfd`; returns how many are ready.
fn poll_once(context: Context<'_>, address: u64, count: u64) -> core::result::Result<u64, Errno> {
    let user = User::new(context.machine);
    let limit = context.process.state.lock().limits[crate::process::limit::NOFILE].current;
    if count > limit {
        return Err(Errno::EINVAL);
    }
    let mut table = user.read_bytes(address, count as usize * 8)?;
    let mut ready = 0;
    for entry in table.chunks_exact_mut(8) {
        let fd = i32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let events = u16::from_le_bytes([entry[4], entry[5]]);
        let revents = if fd < 0 {
            0
        } else {
            match context.process.state.lock().descriptor(fd as u64) {
                None => POLLNVAL,
                // Input reads as end of file at once; output never blocks.
                Some(Descriptor { file: OpenFile::Console, .. }) => events & (POLLIN | POLLOUT),
            }
        };
        entry[6..8].copy_from_slice(&revents.to_le_bytes());
        if revents != 0 {
            ready += 1;
        }
    }
    user.write_bytes(address, &table)?;
    Ok(ready)
}

fn poll_until(context: Context<'_>, address: u64, count: u64, deadline_ns: Option<u64>) -> Result {
    let ready = poll_once(context, address, count)?;
    if ready > 0 {
        return Ok(ready);
    }
    // Nothing can become ready while the application waits: no device
    // delivers input yet. Sleep out the timeout (forever without one).
    super::threads::sleep_until(context, deadline_ns.unwrap_or(u64::MAX))?;
    Ok(0)
}

pub(super) fn poll(context: Context<'_>, address: u64, count: u64, timeout_ms: i64) -> Result {
    let deadline = (timeout_ms >= 0).then(|| context.machine.monotonic_ns() + timeout_ms as u64 * 1_000_000);
    poll_until(context, address, count, deadline)
}

pub(super) fn ppoll(context: Context<'_>, address: u64, count: u64, timeout: u64) -> Result {
    let deadline = if timeout == 0 {
        None
    } else {
        let mut bytes = [0u8; 16];
        User::new(context.machine).read_into(timeout, &mut bytes)?;
        let timeout = Timespec::decode(&bytes).ok_or(Errno::EINVAL)?;
        Some(context.machine.monotonic_ns().saturating_add(timeout.to_ns()))
    };
    poll_until(context, address, count, deadline)
}

pub(super) fn lseek(context: Context<'_>, fd: u64) -> Result {
    match descriptor(context, fd)?.file {
        OpenFile::Console => Err(Errno::ESPIPE.into()),
    }
}

/// Terminal `ioctl` requests (Linux `include/uapi/asm-generic/ioctls.h`).
mod request {
    pub const TCGETS: u64 = 0x5401;
    pub const TCSETS: u64 = 0x5402;
    pub const TCSETSW: u64 = 0x5403;
    pub const TCSETSF: u64 = 0x5404;
    pub const TIOCGPGRP: u64 = 0x540f;
    pub const TIOCSPGRP: u64 = 0x5410;
    pub const TIOCGWINSZ: u64 = 0x5413;
    pub const TIOCSWINSZ: u64 = 0x5414;
    pub const FIONREAD: u64 = 0x541b;
    pub const FIONBIO: u64 = 0x5421;
}

pub(super) fn ioctl(context: Context<'_>, fd: u64, command: u64, argument: u64) -> Result {
    let OpenFile::Console = descriptor(context, fd)?.file;
    let user = User::new(context.machine);
    match command {
        request::TCGETS => user.write_bytes(argument, &console_termios())?,
        request::TCSETS | request::TCSETSW | request::TCSETSF => {
            user.read_bytes(argument, 36)?;
        }
        request::TIOCGWINSZ => {
            let (rows, columns) = (24u16, 80u16);
            let mut size = [0u8; 8];
            size[..2].copy_from_slice(&rows.to_le_bytes());
            size[2..4].copy_from_slice(&columns.to_le_bytes());
            user.write_bytes(argument, &size)?;
        }
        request::TIOCSWINSZ => {
            user.read_bytes(argument, 8)?;
        }
        request::TIOCGPGRP => user.write_u32(argument, crate::process::PROCESS_ID as u32)?,
        request::TIOCSPGRP => {
            user.read_bytes(argument, 4)?;
        }
        request::FIONREAD => user.write_u32(argument, 0)?,
        request::FIONBIO => {
            user.read_bytes(argument, 4)?;
        }
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}

/// `fcntl` commands.
mod command {
    pub const F_DUPFD: u64 = 0;
    pub const F_GETFD: u64 = 1;
    pub const F_SETFD: u64 = 2;
    pub const F_GETFL: u64 = 3;
    pub const F_SETFL: u64 = 4;
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
}

/// File status flags `F_SETFL` may change: `O_APPEND`, `O_ASYNC`,
/// `O_DIRECT`, `O_NOATIME`, `O_NONBLOCK`.
const SETTABLE_STATUS_FLAGS: u32 = 0o2000 | 0o20000 | 0o40000 | 0o1000000 | 0o4000;

pub(super) fn fcntl(context: Context<'_>, fd: u64, command: u64, argument: u64) -> Result {
    let mut state = context.process.state.lock();
    let current = state.descriptor(fd).ok_or(Errno::EBADF)?;
    match command {
        command::F_DUPFD | command::F_DUPFD_CLOEXEC => {
            let copy = Descriptor { close_on_exec: command == command::F_DUPFD_CLOEXEC, ..current };
            let minimum = usize::try_from(argument).map_err(|_| Errno::EINVAL)?;
            Ok(state.install(copy, minimum).ok_or(Errno::EINVAL)? as u64)
        }
        command::F_GETFD => Ok(u64::from(current.close_on_exec)),
        command::F_SETFD => {
            state.descriptors[fd as usize] = Some(Descriptor { close_on_exec: argument & 1 != 0, ..current });
            Ok(0)
        }
        command::F_GETFL => Ok(u64::from(current.status_flags)),
        command::F_SETFL => {
            let flags =
                (current.status_flags & !SETTABLE_STATUS_FLAGS) | (argument as u32 & SETTABLE_STATUS_FLAGS);
            state.descriptors[fd as usize] = Some(Descriptor { status_flags: flags, ..current });
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

pub(super) fn dup(context: Context<'_>, fd: u64) -> Result {
    let mut state = context.process.state.lock();
    let current = state.descriptor(fd).ok_or(Errno::EBADF)?;
    let copy = Descriptor { close_on_exec: false, ..current };
    Ok(state.install(copy, 0).ok_or(Errno::EMFILE)? as u64)
}

pub(super) fn dup2(context: Context<'_>, fd: u64, target: u64) -> Result {
    if fd == target {
        descriptor(context, fd)?;
        return Ok(target);
    }
    dup3(context, fd, target, 0)
}

pub(super) fn dup3(context: Context<'_>, fd: u64, target: u64, flags: u64) -> Result {
    if flags & !O_CLOEXEC != 0 || fd == target {
        return Err(Errno::EINVAL.into());
    }
    let mut state = context.process.state.lock();
    let current = state.descriptor(fd).ok_or(Errno::EBADF)?;
    let limit = state.limits[crate::process::limit::NOFILE].current;
    if target >= limit {
        return Err(Errno::EBADF.into());
    }
    let index = target as usize;
    if index >= state.descriptors.len() {
        state.descriptors.resize(index + 1, None);
    }
    state.descriptors[index] = Some(Descriptor { close_on_exec: flags & O_CLOEXEC != 0, ..current });
    Ok(target)
}

pub(super) fn getcwd(context: Context<'_>, address: u64, size: u64) -> Result {
    let mut path = context.process.state.lock().working_directory.clone().into_bytes();
    path.push(0);
    if (size as usize) < path.len() {
        return Err(Errno::ERANGE.into());
    }
    User::new(context.machine).write_bytes(address, &path)?;
    Ok(path.len() as u64)
}

pub(super) fn readlink(context: Context<'_>, path: u64, address: u64, size: u64) -> Result {
    let user = User::new(context.machine);
    let path = user.read_path(path)?;
    if size as i64 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    if path != "/proc/self/exe" {
        return Err(Errno::ENOENT.into());
    }
    let target = context.process.executable_path.as_bytes();
    let length = target.len().min(size as usize);
    user.write_bytes(address, &target[..length])?;
    Ok(length as u64)
}
