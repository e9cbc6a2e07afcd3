//! Socket options (setsockopt, getsockopt) and the bytes a socket holds
//! for `FIONREAD`.

use super::{CAP_NET_ADMIN, Endpoint, endpoint, has_capability, socket_file};
use crate::errno::Errno;
use crate::syscall::files::caller;
use crate::syscall::{Context, Result};
use crate::user::User;
use crate::vfs::OpenFile;

/// The largest option value read or written.
const OPTION_MAX: u64 = 256;

pub(in crate::syscall) fn setsockopt(
    context: Context<'_>,
    fd: u64,
    level: u64,
    name: u64,
    value: u64,
    length: u64,
) -> Result {
    let file = socket_file(context, fd)?;
    if (length as i32) < 0 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = User::new(context.machine).read_bytes(value, length.min(OPTION_MAX) as usize)?;
    match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.set_option(&caller(context), level as i32, name as i32, &bytes)?,
        Endpoint::Local(socket) => {
            socket.set_option(level as i32, name as i32, &bytes, has_capability(context, CAP_NET_ADMIN))?
        }
        Endpoint::Netlink(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
        Endpoint::Raw(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
        Endpoint::Vsock(socket) => socket.set_option(level as i32, name as i32, &bytes)?,
    }
    Ok(0)
}

pub(in crate::syscall) fn getsockopt(
    context: Context<'_>,
    fd: u64,
    level: u64,
    name: u64,
    value: u64,
    length_pointer: u64,
) -> Result {
    let file = socket_file(context, fd)?;
    let user = User::new(context.machine);
    let room = i32::from_ne_bytes(user.read_bytes(length_pointer, 4)?.try_into().map_err(|_| Errno::EFAULT)?);
    if room < 0 {
        return Err(Errno::EINVAL.into());
    }
    let bytes = match endpoint(&file).ok_or(Errno::ENOTSOCK)? {
        Endpoint::Inet(socket) => socket.option(&caller(context), level as i32, name as i32)?,
        Endpoint::Local(socket) => socket.option(level as i32, name as i32)?,
        Endpoint::Netlink(socket) => socket.option(level as i32, name as i32)?,
        Endpoint::Raw(socket) => socket.option(level as i32, name as i32)?,
        Endpoint::Vsock(socket) => socket.option(level as i32, name as i32)?,
    };
    let written = (room as usize).min(bytes.len());
    user.write_bytes(value, &bytes[..written])?;
    user.write_u32(length_pointer, written as u32)?;
    Ok(0)
}

/// Bytes waiting on a socket, for `FIONREAD`.
pub(in crate::syscall) fn available_bytes(context: Context<'_>, file: &OpenFile) -> Option<u64> {
    Some(match endpoint(file)? {
        Endpoint::Inet(socket) => socket.available_bytes(&caller(context)) as u64,
        Endpoint::Local(socket) => socket.available_bytes() as u64,
        Endpoint::Netlink(socket) => socket.available_bytes() as u64,
        Endpoint::Raw(socket) => socket.available_bytes() as u64,
        Endpoint::Vsock(socket) => socket.available_bytes() as u64,
    })
}
