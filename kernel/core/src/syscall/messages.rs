//! The message calls of sockets: sendmsg, recvmsg, sendmmsg, recvmmsg,
//! with their scatter-gather vectors, addresses and control messages
//! (`SCM_RIGHTS` and `SCM_CREDENTIALS` on local sockets, the IP and TCP
//! ones network sockets deliver).

use alloc::vec::Vec;

use super::paths::install;
use super::sockets::{
    Endpoint, destination, endpoint, failure, receive_buffer, receive_bytes, send_pieces, socket_file,
};
use super::{Context, Failure, Result};
use crate::credentials::capability;
use crate::errno::Errno;
use crate::net::abi::{message, option};
use crate::net::local::{Ancillary, PeerCredentials, Rights};
use crate::net::wait_for;
use crate::user::User;
use crate::vfs::OpenFile;
use crate::vfs::node::Caller;
use crate::vfs::waiters::events;

/// The most messages one `sendmmsg` or `recvmmsg` handles, and the most
/// vectors of one message (`UIO_MAXIOV`).
const MMSG_MAX: u64 = 1024;
/// Bytes of `struct msghdr` and `struct mmsghdr`.
const MSGHDR_SIZE: usize = 56;
const MMSGHDR_SIZE: u64 = 64;
/// `MSG_WAITFORONE`: only the first receive of `recvmmsg` waits.
const MSG_WAITFORONE: u32 = 0x10000;
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
    // More vectors than `UIO_MAXIOV`: the message is too long.
    if word(24) > MMSG_MAX {
        return Err(Errno::EMSGSIZE);
    }
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
    let ancillary = control_ancillary(context, &file, &header)?;
    send_pieces(context, &file, &header.vectors, send_flags, destination.as_ref(), ancillary)
}

/// `struct cmsghdr`: length (8 bytes), level, type; then the data.
const CMSGHDR_SIZE: usize = 16;
/// `SCM_RIGHTS` and `SCM_CREDENTIALS` at `SOL_SOCKET`.
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// The most descriptors one message passes (`SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;
/// `MSG_CTRUNC` and `MSG_CMSG_CLOEXEC`.
const MSG_CTRUNC: u32 = 0x8;
const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// What a sender's control messages pass: open files (`SCM_RIGHTS`, every
/// message's together) and stated credentials (`SCM_CREDENTIALS`), local
/// sockets only.
fn control_ancillary(
    context: Context<'_>,
    file: &OpenFile,
    header: &MessageHeader,
) -> core::result::Result<Ancillary, Errno> {
    let mut ancillary = Ancillary::default();
    if header.control == 0 || header.control_length < CMSGHDR_SIZE as u64 {
        return Ok(ancillary);
    }
    let user = User::new(context.machine);
    let length = header.control_length.min(64 * 1024) as usize;
    let bytes = user.read_bytes(header.control, length)?;
    let is_local = matches!(endpoint(file), Some(Endpoint::Local(_)));
    let mut offset = 0;
    while offset + CMSGHDR_SIZE <= bytes.len() {
        let field = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let entry_length = u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap_or([0; 8]));
        let (level, entry_type) = (field(offset + 8), field(offset + 12));
        if entry_length < CMSGHDR_SIZE as u64 || entry_length > (bytes.len() - offset) as u64 {
            return Err(Errno::EINVAL);
        }
        let data = &bytes[offset + CMSGHDR_SIZE..offset + entry_length as usize];
        match (level, entry_type) {
            (option::SOL_SOCKET, SCM_RIGHTS) if is_local => {
                let rights = &mut ancillary.rights;
                if rights.len() + data.len() / 4 > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
                for number in data.chunks_exact(4) {
                    let number = i32::from_le_bytes(number.try_into().unwrap_or([0xff; 4]));
                    rights.push(super::files::file(context, number as u32 as u64).map_err(|_| Errno::EBADF)?);
                }
            }
            (option::SOL_SOCKET, SCM_CREDENTIALS) if is_local => {
                ancillary.credentials = Some(stated_credentials(context, data)?);
            }
            // Network sockets pass neither files nor credentials: Linux
            // ignores those there.
            (option::SOL_SOCKET, SCM_RIGHTS | SCM_CREDENTIALS) if !is_local => {}
            (option::SOL_SOCKET, _) => return Err(Errno::EINVAL),
            // Other levels' messages (IP options) are accepted and unused.
            _ => {}
        }
        offset += (entry_length as usize).next_multiple_of(8);
    }
    Ok(ancillary)
}

/// Credentials a sender states (`struct ucred`), checked as Linux's
/// `scm_check_creds` does: its own process unless it has
/// `CAP_SYS_ADMIN` (and then one that exists), ids it has unless it has
/// `CAP_SETUID` or `CAP_SETGID`, and never the invalid id -1.
fn stated_credentials(context: Context<'_>, data: &[u8]) -> core::result::Result<PeerCredentials, Errno> {
    if data.len() < 12 {
        return Err(Errno::EINVAL);
    }
    let field = |at: usize| u32::from_ne_bytes(data[at..at + 4].try_into().unwrap_or([0xff; 4]));
    let stated = PeerCredentials { process_id: field(0), user_id: field(4), group_id: field(8) };
    let credentials = context.process.state.lock().credentials.clone();
    let is_own_process = u64::from(stated.process_id) == context.process.pid;
    let may_name_process = is_own_process || credentials.has_capability(capability::SYS_ADMIN);
    let may_name_user = [credentials.real_user, credentials.effective_user, credentials.saved_user]
        .contains(&stated.user_id)
        || credentials.has_capability(capability::SETUID);
    let may_name_group = [credentials.real_group, credentials.effective_group, credentials.saved_group]
        .contains(&stated.group_id)
        || credentials.has_capability(capability::SETGID);
    if !(may_name_process && may_name_user && may_name_group) {
        return Err(Errno::EPERM);
    }
    if !is_own_process && crate::process::find(u64::from(stated.process_id)).is_none() {
        return Err(Errno::ESRCH);
    }
    if stated.user_id == u32::MAX || stated.group_id == u32::MAX {
        return Err(Errno::EINVAL);
    }
    Ok(stated)
}

/// A receiver's control buffer, filled as Linux's `put_cmsg` and
/// `scm_detach_fds` fill it: each message padded to 8 bytes, a message
/// that does not fit cut short (or left out, when not even its header
/// fits) and `MSG_CTRUNC` raised.
struct ControlBuffer {
    bytes: Vec<u8>,
    room: usize,
    is_truncated: bool,
}

impl ControlBuffer {
    fn new(room: usize) -> ControlBuffer {
        ControlBuffer { bytes: Vec::new(), room, is_truncated: false }
    }

    fn remaining(&self) -> usize {
        self.room - self.bytes.len()
    }

    fn header(&mut self, length: usize, level: i32, kind: i32) {
        self.bytes.extend_from_slice(&(length as u64).to_le_bytes());
        self.bytes.extend_from_slice(&level.to_le_bytes());
        self.bytes.extend_from_slice(&kind.to_le_bytes());
    }

    /// Pads the message just written to its 8-byte boundary, as far as
    /// the buffer goes.
    fn pad(&mut self, start: usize, data_length: usize) {
        let space = (CMSGHDR_SIZE + data_length).next_multiple_of(8);
        let end = (start + space).min(self.room);
        self.bytes.resize(end.max(self.bytes.len()), 0);
    }

    fn put(&mut self, level: i32, kind: i32, data: &[u8]) {
        if self.remaining() < CMSGHDR_SIZE {
            self.is_truncated = true;
            return;
        }
        let full = CMSGHDR_SIZE + data.len();
        let length = full.min(self.remaining());
        self.is_truncated |= length < full;
        let start = self.bytes.len();
        self.header(length, level, kind);
        self.bytes.extend_from_slice(&data[..length - CMSGHDR_SIZE]);
        self.pad(start, data.len());
    }

    /// Installs as many of `rights` as fit and describes them in one
    /// `SCM_RIGHTS` message; the others are dropped, which closes them.
    fn put_rights(
        &mut self,
        context: Context<'_>,
        rights: Rights,
        close_on_exec: bool,
    ) -> core::result::Result<(), Failure> {
        if rights.is_empty() {
            return Ok(());
        }
        let fits = self.remaining().saturating_sub(CMSGHDR_SIZE) / 4;
        let count = rights.len();
        let mut numbers = Vec::new();
        for file in rights.into_iter().take(fits) {
            match install(context, file, close_on_exec) {
                Ok(number) => numbers.extend_from_slice(&(number as i32).to_le_bytes()),
                Err(_) => break,
            }
        }
        if numbers.len() / 4 < count {
            self.is_truncated = true;
        }
        if numbers.is_empty() {
            return Ok(());
        }
        let start = self.bytes.len();
        self.header(CMSGHDR_SIZE + numbers.len(), option::SOL_SOCKET, SCM_RIGHTS);
        self.bytes.extend_from_slice(&numbers);
        self.pad(start, numbers.len());
        Ok(())
    }
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
    let mut bytes = receive_buffer(&file, total)?;
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
    if header.name != 0 {
        match &received.source {
            Some(source) => {
                let written = (header.name_length as usize).min(source.len());
                user.write_bytes(header.name, &source[..written])?;
                user.write_u32(header_address + 8, source.len() as u32)?;
            }
            None => user.write_u32(header_address + 8, 0)?,
        }
    }
    let room = if header.control == 0 { 0 } else { header.control_length.min(64 * 1024) as usize };
    let mut control = ControlBuffer::new(room);
    if let Some(credentials) = received.credentials {
        control.put(option::SOL_SOCKET, SCM_CREDENTIALS, &credentials.encode());
    }
    for entry in &received.control {
        control.put(entry.level, entry.kind, &entry.data);
    }
    control.put_rights(context, received.rights, receive_flags & MSG_CMSG_CLOEXEC != 0)?;
    if !control.bytes.is_empty() {
        user.write_bytes(header.control, &control.bytes)?;
    }
    user.write_u64(header_address + 40, control.bytes.len() as u64)?;
    let mut message_flags = if received.full_length > received.length { message::TRUNC } else { 0 };
    if control.is_truncated {
        message_flags |= MSG_CTRUNC;
    }
    // What the error queue gives says where it came from.
    message_flags |= receive_flags & message::ERRQUEUE;
    user.write_u32(header_address + 48, message_flags)?;
    if receive_flags & message::TRUNC != 0 && received.is_message {
        // The message's real length, even when it did not fit.
        return Ok(received.full_length);
    }
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

/// Waits until `file` has something to read or `deadline_ns` passes;
/// whether it has.
fn wait_readable(
    context: Context<'_>,
    file: &OpenFile,
    deadline_ns: u64,
) -> core::result::Result<bool, Failure> {
    let Some(special) = file.special() else { return Ok(true) };
    let caller = Caller::thread(context.machine, context.process, context.thread);
    let timeout = deadline_ns.saturating_sub(context.machine.monotonic_ns());
    let ready = wait_for(&caller, special.waiters(), false, Some(timeout), || {
        (special.poll() & (events::POLLIN | events::POLLERR | events::POLLHUP) != 0).then_some(Ok(()))
    });
    match ready {
        Ok(()) => Ok(true),
        Err(Errno::EAGAIN) => Ok(false),
        Err(error) => Err(failure(error)),
    }
}

/// `recvmmsg`: up to `count` messages. The timeout (a `struct timespec`,
/// none for a null pointer) bounds the whole call, waits included, and
/// what is left of it is written back.
pub(super) fn recvmmsg(
    context: Context<'_>,
    fd: u64,
    vector: u64,
    count: u64,
    receive_flags: u64,
    timeout: u64,
) -> Result {
    let file = socket_file(context, fd)?;
    let deadline = super::poll::timespec_deadline(context, timeout)?;
    let count = count.min(MMSG_MAX);
    let user = User::new(context.machine);
    let mut received = 0;
    let mut receive_flags = receive_flags as u32;
    while received < count {
        if let Some(deadline) = deadline
            && receive_flags & message::DONTWAIT == 0
            && !file.is_nonblocking()
            && !wait_readable(context, &file, deadline)?
        {
            if received == 0 {
                return Err(Errno::EAGAIN.into());
            }
            break;
        }
        let entry = vector + received * MMSGHDR_SIZE;
        match receive_message(context, fd, entry, receive_flags) {
            Ok(length) => user.write_u32(entry + MSGHDR_SIZE as u64, length as u32)?,
            Err(_) if received > 0 => break,
            Err(failure) => return Err(failure),
        }
        received += 1;
        if receive_flags & MSG_WAITFORONE != 0 {
            receive_flags |= message::DONTWAIT;
        }
        if deadline.is_some_and(|deadline| context.machine.monotonic_ns() >= deadline) {
            break;
        }
    }
    if let Some(deadline) = deadline {
        let left = deadline.saturating_sub(context.machine.monotonic_ns());
        let mut bytes = (left / 1_000_000_000).to_le_bytes().to_vec();
        bytes.extend_from_slice(&(left % 1_000_000_000).to_le_bytes());
        user.write_bytes(timeout, &bytes)?;
    }
    Ok(received)
}
