//! Descriptor management: dup, dup2, dup3, fcntl, flock, pipe, pipe2,
//! ioctl.

use alloc::sync::Arc;

use super::files::{caller, descriptor_number, file};
use super::paths::install;
use super::{Context, Result};
use crate::errno::Errno;
use crate::linux::console_termios;
use crate::streams::InputStream;
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{Descriptor, FileObject, FileType, OpenFile, Pipe};

pub(super) fn dup(context: Context<'_>, fd: u64) -> Result {
    let file = file(context, fd)?;
    install(context, file, false)
}

pub(super) fn dup2(context: Context<'_>, fd: u64, target: u64) -> Result {
    if fd as i32 == target as i32 {
        file(context, fd)?;
        return Ok(descriptor_number(target)?);
    }
    dup3(context, fd, target, 0)
}

pub(super) fn dup3(context: Context<'_>, fd: u64, target: u64, dup_flags: u64) -> Result {
    if dup_flags & !u64::from(flags::O_CLOEXEC) != 0 || fd as i32 == target as i32 {
        return Err(Errno::EINVAL.into());
    }
    let file = file(context, fd)?;
    let target = descriptor_number(target)?;
    if target >= context.process.descriptor_limit() as u64 {
        return Err(Errno::EBADF.into());
    }
    let close_on_exec = dup_flags & u64::from(flags::O_CLOEXEC) != 0;
    let replaced = context
        .descriptors()
        .with(|table| table.replace(target as usize, Descriptor { file, close_on_exec }))?;
    if let Some(replaced) = &replaced {
        super::locks::closed(context, &replaced.file);
    }
    drop(replaced);
    Ok(target)
}

/// `fcntl` commands.
mod command {
    pub const F_DUPFD: u64 = 0;
    pub const F_GETFD: u64 = 1;
    pub const F_SETFD: u64 = 2;
    pub const F_GETFL: u64 = 3;
    pub const F_SETFL: u64 = 4;
    pub const F_GETLK: u64 = 5;
    pub const F_SETLK: u64 = 6;
    pub const F_SETLKW: u64 = 7;
    pub const F_OFD_GETLK: u64 = 36;
    pub const F_OFD_SETLK: u64 = 37;
    pub const F_OFD_SETLKW: u64 = 38;
    pub const F_DUPFD_CLOEXEC: u64 = 1030;
    pub const F_SETPIPE_SZ: u64 = 1031;
    pub const F_GETPIPE_SZ: u64 = 1032;
}

pub(super) fn fcntl(context: Context<'_>, fd: u64, command: u64, argument: u64) -> Result {
    let file = file(context, fd)?;
    let number = descriptor_number(fd)?;
    match command {
        command::F_DUPFD | command::F_DUPFD_CLOEXEC => {
            let limit = context.process.descriptor_limit();
            let minimum = usize::try_from(argument as i32)
                .ok()
                .filter(|&minimum| minimum < limit)
                .ok_or(Errno::EINVAL)?;
            let descriptor = Descriptor { file, close_on_exec: command == command::F_DUPFD_CLOEXEC };
            Ok(context.descriptors().with(|table| table.install(descriptor, minimum, limit))? as u64)
        }
        command::F_GETFD => Ok(u64::from(
            context
                .descriptors()
                .with(|table| Ok::<_, crate::vfs::FsError>(table.get(number)?.close_on_exec))?,
        )),
        command::F_SETFD => {
            context.descriptors().with(|table| table.set_close_on_exec(number, argument & 1 != 0))?;
            Ok(0)
        }
        command::F_GETFL => Ok(u64::from(file.status_flags())),
        command::F_SETFL => {
            if file.is_path_only() {
                return Err(Errno::EBADF.into());
            }
            // Adding O_NOATIME needs the file's owner (or CAP_FOWNER).
            let adds_no_atime =
                argument as u32 & flags::O_NOATIME != 0 && file.status_flags() & flags::O_NOATIME == 0;
            if adds_no_atime && let Some(location) = file.location() {
                let caller = caller(context);
                let metadata = location.metadata(&caller)?;
                if let Some(credentials) = caller.credentials()
                    && !crate::vfs::permission::is_owner(&credentials, &metadata)
                    && !credentials.has_capability(crate::credentials::capability::FOWNER)
                {
                    return Err(Errno::EPERM.into());
                }
            }
            file.set_status_flags(argument as u32);
            super::owners::rearm(context, fd as i32, &file);
            Ok(0)
        }
        _ if file.is_path_only() => Err(Errno::EBADF.into()),
        command::F_GETLK
        | command::F_SETLK
        | command::F_SETLKW
        | command::F_OFD_GETLK
        | command::F_OFD_SETLK
        | command::F_OFD_SETLKW => super::locks::record_lock(context, &file, command, argument),
        super::owners::command::F_SETOWN
        | super::owners::command::F_GETOWN
        | super::owners::command::F_SETSIG
        | super::owners::command::F_GETSIG
        | super::owners::command::F_SETOWN_EX
        | super::owners::command::F_GETOWN_EX => super::owners::fcntl(context, fd, command, argument),
        super::owners::command::F_NOTIFY => super::owners::notify_directory(context, fd, &file, argument),
        super::shared::F_ADD_SEALS | super::shared::F_GET_SEALS => {
            let node = file.data().ok_or(Errno::EINVAL)?;
            super::shared::seals(node.as_ref(), command, argument, file.is_writable())
        }
        command::F_GETPIPE_SZ => Ok(file.pipe_end().ok_or(Errno::EBADF)?.pipe().capacity() as u64),
        command::F_SETPIPE_SZ => {
            let pipe = file.pipe_end().ok_or(Errno::EBADF)?.pipe();
            let is_privileged = context
                .process
                .state
                .lock()
                .credentials
                .has_capability(crate::credentials::capability::SYS_RESOURCE);
            Ok(pipe.set_capacity(argument & 0xffff_ffff, is_privileged)? as u64)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

pub(super) fn flock(context: Context<'_>, fd: u64, operation: u64) -> Result {
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    super::locks::flock(context, &file, operation)
}

pub(super) fn pipe2(context: Context<'_>, address: u64, pipe_flags: u64) -> Result {
    let allowed = flags::O_CLOEXEC | flags::O_NONBLOCK | flags::O_DIRECT;
    if pipe_flags & !u64::from(allowed) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let pipe_flags = pipe_flags as u32;
    let (reader, writer) = Pipe::open();
    let reader = OpenFile::new(FileObject::Pipe(reader), flags::O_RDONLY | (pipe_flags & flags::O_NONBLOCK));
    let writer = OpenFile::new(FileObject::Pipe(writer), flags::O_WRONLY | (pipe_flags & flags::O_NONBLOCK));
    install_pair(context, reader, writer, pipe_flags & flags::O_CLOEXEC != 0, address)
}

/// Installs two new open files at the lowest free descriptors and stores
/// their numbers as two `int`s at `address` (`pipe2`, `socketpair`).
pub(super) fn install_pair(
    context: Context<'_>,
    reader: Arc<OpenFile>,
    writer: Arc<OpenFile>,
    close_on_exec: bool,
    address: u64,
) -> Result {
    let limit = context.process.descriptor_limit();
    let installed = context.descriptors().with(|table| {
        let read_end = table
            .install(Descriptor { file: reader, close_on_exec }, 0, limit)
            .map_err(|error| (error, None))?;
        match table.install(Descriptor { file: writer, close_on_exec }, 0, limit) {
            Ok(write_end) => Ok((read_end, write_end)),
            Err(error) => Err((error, table.remove(read_end as u64).ok())),
        }
    });
    let (read_end, write_end) = match installed {
        Ok(ends) => ends,
        Err((error, removed)) => {
            // The read end closes once no lock is held.
            drop(removed);
            return Err(error.into());
        }
    };
    let mut numbers = [0u8; 8];
    numbers[..4].copy_from_slice(&(read_end as u32).to_le_bytes());
    numbers[4..].copy_from_slice(&(write_end as u32).to_le_bytes());
    if let Err(error) = User::new(context.machine).write_bytes(address, &numbers) {
        let removed = context
            .descriptors()
            .with(|table| (table.remove(read_end as u64), table.remove(write_end as u64)));
        drop(removed);
        return Err(error.into());
    }
    Ok(0)
}

/// `ioctl` requests (Linux `include/uapi/asm-generic/ioctls.h`).
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
    pub const FIONCLEX: u64 = 0x5450;
    pub const FIOCLEX: u64 = 0x5451;
    pub const FIOASYNC: u64 = 0x5452;
}

pub(super) fn ioctl(context: Context<'_>, fd: u64, command: u64, argument: u64) -> Result {
    // The request is an `unsigned int`: musl passes it as an `int`, so
    // the upper half holds the sign of requests with the top bit set.
    let command = command & u64::from(u32::MAX);
    let file = file(context, fd)?;
    if file.is_path_only() {
        return Err(Errno::EBADF.into());
    }
    let user = User::new(context.machine);
    let number = descriptor_number(fd)?;
    match command {
        request::FIOCLEX | request::FIONCLEX => {
            context
                .descriptors()
                .with(|table| table.set_close_on_exec(number, command == request::FIOCLEX))?;
            return Ok(0);
        }
        request::FIONBIO => {
            let value = user.read_bytes(argument, 4)?;
            let is_nonblocking = value.iter().any(|&byte| byte != 0);
            let status = file.status_flags();
            let status =
                if is_nonblocking { status | flags::O_NONBLOCK } else { status & !flags::O_NONBLOCK };
            file.set_status_flags(status);
            return Ok(0);
        }
        request::FIOASYNC => {
            user.read_bytes(argument, 4)?;
            return Ok(0);
        }
        crate::net::vsock::IOCTL_GET_LOCAL_CID => {
            if let Some(super::sockets::Endpoint::Vsock(_)) = super::sockets::endpoint(&file)
                && let Some(vsock) = crate::net::vsock::installed()
            {
                user.write_u32(argument, vsock.local_cid())?;
                return Ok(0);
            }
        }
        request::FIONREAD => {
            let available = available_bytes(context, &file)?;
            user.write_u32(argument, available.min(i32::MAX as u64) as u32)?;
            return Ok(0);
        }
        _ => {}
    }
    if let Some(result) = super::namespaces::ioctl(context, &file, command, argument) {
        return result;
    }
    if let Some(result) = super::interfaces::interface_ioctl(context, &file, command, argument) {
        return result;
    }
    if let Some(result) = super::block::ioctl(context, &file, command, argument) {
        return result;
    }
    if let Some(terminal) = super::terminal::terminal_of(&file) {
        return super::terminal::ioctl(context, &terminal, command, argument);
    }
    if let Some(master) = super::terminal::master_of(&file) {
        return super::terminal::master_ioctl(context, master, command, argument);
    }
    if !file.data().is_some_and(|data| data.is_terminal()) {
        return Err(Errno::ENOTTY.into());
    }
    terminal_ioctl(user, command, argument)
}

/// Bytes a read would return at once (`FIONREAD`).
fn available_bytes(context: Context<'_>, file: &Arc<OpenFile>) -> core::result::Result<u64, Errno> {
    if let Some(end) = file.pipe_end() {
        return Ok(end.pipe().available_bytes() as u64);
    }
    if let Some(available) = super::sockets::available_bytes(context, file) {
        return Ok(available);
    }
    if let Some(terminal) = super::terminal::terminal_of(file) {
        return Ok(terminal.readable_bytes() as u64);
    }
    if let Some(master) = super::terminal::master_of(file) {
        return Ok(master.readable_bytes() as u64);
    }
    if let Some(instance) =
        file.special().and_then(|special| special.as_any().downcast_ref::<crate::vfs::notify::Inotify>())
    {
        return Ok(instance.available_bytes() as u64);
    }
    if let Some(stream) = file.special().and_then(|special| special.as_any().downcast_ref::<InputStream>()) {
        return Ok(stream.available_bytes() as u64);
    }
    let data = file.data().ok_or(Errno::ENOTTY)?;
    if data.is_terminal() {
        return Ok(0);
    }
    if data.file_type() != FileType::Regular {
        return Err(Errno::ENOTTY);
    }
    let size = data.metadata(&caller(context))?.size_bytes;
    Ok(size.saturating_sub(file.offset()))
}

/// Requests a terminal answers: the console keeps its settings.
fn terminal_ioctl(user: User<'_>, command: u64, argument: u64) -> Result {
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
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}
