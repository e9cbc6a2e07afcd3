//! The message calls of sockets: sendmsg, recvmsg, sendmmsg, recvmmsg,
//! with their scatter-gather vectors, addresses and control messages
//! (`SCM_RIGHTS` on local sockets).

use alloc::vec;
use alloc::vec::Vec;

use super::paths::install;
use super::sockets::{CHUNK, Endpoint, destination, endpoint, receive_bytes, send_pieces, socket_file};
use super::{Context, Failure, Result};
use crate::errno::Errno;
use crate::net::abi::{message, option};
use crate::net::local::Rights;
use crate::user::User;
use crate::vfs::OpenFile;

/// The most messages one `sendmmsg` or `recvmmsg` handles (`UIO_MAXIOV`).
const MMSG_MAX: u64 = 1024;
/// Bytes of `struct msghdr` and `struct mmsghdr`.
const MSGHDR_SIZE: usize = 56;
const MMSGHDR_SIZE: u64 = 64;
/// A `struct msghdr`.
struct MessageHeader {
    name: u64,
    name_length: u64,
    vectors: Vec<(u64, u64)>,
    control: u64,
    control_length: u64,
}

fn read_message_header(context: Context<'_>, address: u64) -> core::result::Result<MessageHeader, Errno> {
    let user = User::new(context.machine);
    let bytes = user.read_bytes(address, MSGHDR_SIZE)?;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let name = word(0);
    let name_length = u64::from(u32::from_le_bytes(bytes[8..12].try_into().unwrap_or([0; 4])));
    let vectors = user.read_iovecs(word(16), word(24))?;
    Ok(MessageHeader { name, name_length, vectors, control: word(32), control_length: word(40) })
}

fn send_message(
    context: Context<'_>,
    fd: u64,
    header_address: u64,
    send_flags: u32,
) -> core::result::Result<usize, Failure> {
    let header = read_message_header(context, header_address)?;
    let file = socket_file(context, fd)?;
    let destination = destination(context, header.name, header.name_length)?;
    let rights = control_rights(context, &file, &header)?;
    send_pieces(context, &file, &header.vectors, send_flags, destination.as_ref(), rights)
}

/// `struct cmsghdr`: length (8 bytes), level, type; then the data.
const CMSGHDR_SIZE: usize = 16;
/// `SCM_RIGHTS` and `SCM_CREDENTIALS` at `SOL_SOCKET`.
const SCM_RIGHTS: u32 = 1;
const SCM_CREDENTIALS: u32 = 2;
/// The most descriptors one message passes (`SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;
/// `MSG_CTRUNC` and `MSG_CMSG_CLOEXEC`.
const MSG_CTRUNC: u32 = 0x8;
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// The open files a sender's `SCM_RIGHTS` control messages pass (local
/// sockets only). Credentials are accepted and dropped: every peer is the
/// application itself.
fn control_rights(
    context: Context<'_>,
    file: &OpenFile,
    header: &MessageHeader,
) -> core::result::Result<Rights, Errno> {
    let mut rights = Vec::new();
    if header.control == 0 || header.control_length < CMSGHDR_SIZE as u64 {
        return Ok(rights);
    }
    let user = User::new(context.machine);
    let length = header.control_length.min(64 * 1024) as usize;
    let bytes = user.read_bytes(header.control, length)?;
    let is_local = matches!(endpoint(file), Some(Endpoint::Local(_)));
    let mut offset = 0;
    while offset + CMSGHDR_SIZE <= bytes.len() {
        let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let entry_length = u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap_or([0; 8]));
        let (level, entry_type) = (field(offset + 8), field(offset + 12));
        if entry_length < CMSGHDR_SIZE as u64 || entry_length > (bytes.len() - offset) as u64 {
            return Err(Errno::EINVAL);
        }
        let data = &bytes[offset + CMSGHDR_SIZE..offset + entry_length as usize];
        match (level, entry_type) {
            (level, SCM_RIGHTS) if level == option::SOL_SOCKET as u32 && is_local => {
                if rights.len() + data.len() / 4 > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
                for number in data.chunks_exact(4) {
                    let number = i32::from_le_bytes(number.try_into().unwrap_or([0xff; 4]));
                    rights.push(super::files::file(context, number as u32 as u64).map_err(|_| Errno::EBADF)?);
                }
            }
            (level, SCM_CREDENTIALS) if level == option::SOL_SOCKET as u32 && is_local => {}
            (level, _) if level == option::SOL_SOCKET as u32 => return Err(Errno::EINVAL),
            // Other levels' messages (IP options) are accepted and unused.
            _ => {}
        }
        offset += (entry_length as usize).next_multiple_of(8);
    }
    Ok(rights)
}

/// Installs received files and describes them in the receiver's control
/// buffer as one `SCM_RIGHTS` message; returns the control bytes used and
/// whether some files did not fit (`MSG_CTRUNC`).
fn deliver_rights(
    context: Context<'_>,
    header: &MessageHeader,
    rights: Rights,
    receive_flags: u32,
) -> core::result::Result<(u64, bool), Failure> {
    if rights.is_empty() {
        return Ok((0, false));
    }
    let room = (header.control_length as usize).saturating_sub(CMSGHDR_SIZE) / 4;
    if header.control == 0 || room == 0 {
        return Ok((0, true));
    }
    let is_truncated = rights.len() > room;
    let close_on_exec = receive_flags & MSG_CMSG_CLOEXEC != 0;
    let mut numbers = Vec::new();
    for file in rights.into_iter().take(room) {
        match install(context, file, close_on_exec) {
            Ok(number) => numbers.extend_from_slice(&(number as i32).to_le_bytes()),
            Err(_) => break,
        }
    }
    let data_length = CMSGHDR_SIZE + numbers.len();
    let mut message = (data_length as u64).to_le_bytes().to_vec();
    message.extend_from_slice(&(option::SOL_SOCKET as u32).to_le_bytes());
    message.extend_from_slice(&SCM_RIGHTS.to_le_bytes());
    message.extend_from_slice(&numbers);
    User::new(context.machine).write_bytes(header.control, &message)?;
    let used = data_length.next_multiple_of(8).min(header.control_length as usize);
    Ok((used as u64, is_truncated))
}

pub(super) fn sendmsg(context: Context<'_>, fd: u64, header: u64, send_flags: u64) -> Result {
    Ok(send_message(context, fd, header, send_flags as u32)? as u64)
}

fn receive_message(
    context: Context<'_>,
    fd: u64,
    header_address: u64,
    receive_flags: u32,
) -> core::result::Result<usize, Failure> {
    let header = read_message_header(context, header_address)?;
    let file = socket_file(context, fd)?;
    let total: u64 = header.vectors.iter().map(|(_, length)| *length).sum();
    let mut bytes = vec![0u8; usize::try_from(total).unwrap_or(CHUNK).min(CHUNK)];
    let received = receive_bytes(context, &file, &mut bytes, receive_flags)?;
    let user = User::new(context.machine);
    let mut offset = 0;
    for (base, length) in &header.vectors {
        if offset >= received.length {
            break;
        }
        let step = (*length as usize).min(received.length - offset);
        user.write_bytes(*base, &bytes[offset..offset + step])?;
        offset += step;
    }
    // The source address, no control messages, and the flags.
    if header.name != 0 {
        match received.source {
            Some(source) => {
                let written = (header.name_length as usize).min(source.len());
                user.write_bytes(header.name, &source[..written])?;
                user.write_u32(header_address + 8, source.len() as u32)?;
            }
            None => user.write_u32(header_address + 8, 0)?,
        }
    }
    let (control_used, is_control_truncated) =
        deliver_rights(context, &header, received.rights, receive_flags)?;
    user.write_u64(header_address + 40, control_used)?;
    let mut message_flags = if received.full_length > received.length { message::TRUNC } else { 0 };
    if is_control_truncated {
        message_flags |= MSG_CTRUNC;
    }
    user.write_u32(header_address + 48, message_flags)?;
    Ok(received.length)
}

pub(super) fn recvmsg(context: Context<'_>, fd: u64, header: u64, receive_flags: u64) -> Result {
    Ok(receive_message(context, fd, header, receive_flags as u32)? as u64)
}

pub(super) fn sendmmsg(context: Context<'_>, fd: u64, vector: u64, count: u64, send_flags: u64) -> Result {
    socket_file(context, fd)?;
    let count = count.min(MMSG_MAX);
    let user = User::new(context.machine);
    let mut sent = 0;
    while sent < count {
        let entry = vector + sent * MMSGHDR_SIZE;
        match send_message(context, fd, entry, send_flags as u32) {
            Ok(length) => user.write_u32(entry + MSGHDR_SIZE as u64, length as u32)?,
            Err(_) if sent > 0 => break,
            Err(failure) => return Err(failure),
        }
        sent += 1;
    }
    Ok(sent)
}

pub(super) fn recvmmsg(context: Context<'_>, fd: u64, vector: u64, count: u64, receive_flags: u64) -> Result {
    socket_file(context, fd)?;
    let count = count.min(MMSG_MAX);
    let user = User::new(context.machine);
    let mut received = 0;
    let mut receive_flags = receive_flags as u32;
    while received < count {
        let entry = vector + received * MMSGHDR_SIZE;
        match receive_message(context, fd, entry, receive_flags) {
            Ok(length) => user.write_u32(entry + MSGHDR_SIZE as u64, length as u32)?,
            Err(_) if received > 0 => break,
            Err(failure) => return Err(failure),
        }
        received += 1;
        // `MSG_WAITFORONE`: only the first receive waits.
        if receive_flags & 0x10000 != 0 {
            receive_flags |= message::DONTWAIT;
        }
    }
    Ok(received)
}
