//! System V message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.
//!
//! A queue holds typed messages in the order sent, up to `msg_qbytes`
//! bytes of text (and as many messages). Senders wait for room and
//! receivers for a message of the type they ask for; a removed queue
//! fails its waiters with `EIDRM`. Queues are kept globally by id.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use super::ipc::{self, IPC_64, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, Permissions, Table};
use super::ipc_limits::{MSGMAX, MSGMNB, MSGMNI};
use super::{Context, Result};
use crate::errno::Errno;
use crate::user::User;
use crate::vfs::waiters::WaiterList;

/// `msgrcv` flags.
const MSG_NOERROR: u64 = 0o10000;
const MSG_EXCEPT: u64 = 0o20000;
const MSG_COPY: u64 = 0o40000;
/// `msgctl` commands beyond the common ones.
const MSG_STAT: u64 = 11;
const MSG_INFO: u64 = 12;
const MSG_STAT_ANY: u64 = 13;

struct Message {
    kind: i64,
    text: Vec<u8>,
}

struct Queue {
    permissions: Permissions,
    messages: VecDeque<Message>,
    bytes: u64,
    capacity_bytes: u64,
    send_time: u64,
    receive_time: u64,
    change_time: u64,
    last_sender: u32,
    last_receiver: u32,
    waiters: Arc<WaiterList>,
}

/// The queues of one IPC namespace.
#[derive(Default)]
struct QueueTable(Mutex<Table<Queue>>);

impl QueueTable {
    fn lock(&self) -> spin::MutexGuard<'_, Table<Queue>> {
        self.0.lock()
    }
}

/// The queues of the caller's IPC namespace.
fn table_of(context: Context<'_>) -> Arc<QueueTable> {
    context.process.namespaces().ipc.objects().get()
}

pub(super) fn msgget(context: Context<'_>, key: u64, flags: u64) -> Result {
    let key = key as i32;
    let table = table_of(context);
    let mut queues = table.lock();
    if let Some(id) = ipc::look_up(context, &queues, key, flags, |queue| &queue.permissions, |_| Ok(()))? {
        return Ok(id as u64);
    }
    if queues.by_id.len() as u64 >= MSGMNI.get() {
        return Err(Errno::ENOSPC.into());
    }
    let id = queues.allocate_id()?;
    let queue = Queue {
        permissions: Permissions::new(context, key, flags),
        messages: VecDeque::new(),
        bytes: 0,
        capacity_bytes: MSGMNB.get(),
        send_time: 0,
        receive_time: 0,
        change_time: ipc::now_seconds(context),
        last_sender: 0,
        last_receiver: 0,
        waiters: Arc::new(WaiterList::new()),
    };
    queues.insert(id, key, queue);
    Ok(id as u64)
}

fn queue_id(id: u64) -> core::result::Result<i32, Errno> {
    i32::try_from(id as i64).ok().filter(|&id| id >= 0).ok_or(Errno::EINVAL)
}

/// The waiters of queue `id` (`EINVAL` if there is none; `EIDRM` once a
/// queue waited on is gone).
fn waiters_of(context: Context<'_>, id: i32, requested: u32) -> core::result::Result<Arc<WaiterList>, Errno> {
    let table = table_of(context);
    let queues = table.lock();
    let queue = queues.by_id.get(&id).ok_or(Errno::EINVAL)?;
    queue.permissions.check(context, requested)?;
    Ok(queue.waiters.clone())
}

pub(super) fn msgsnd(context: Context<'_>, id: u64, message: u64, size: u64, flags: u64) -> Result {
    let id = queue_id(id)?;
    if size > MSGMAX.get() {
        return Err(Errno::EINVAL.into());
    }
    let user = User::new(context.machine);
    let kind = user.read_u64(message)? as i64;
    if kind < 1 {
        return Err(Errno::EINVAL.into());
    }
    let waiters = waiters_of(context, id, ipc::WRITE)?;
    let text = user.read_bytes(message + 8, size as usize)?;
    let mut text = Some(text);
    let sent = ipc::wait(context, &waiters, None, || {
        let table = table_of(context);
        let mut queues = table.lock();
        let queue = queues.by_id.get_mut(&id).ok_or(Errno::EIDRM)?;
        let has_room = queue.bytes + size <= queue.capacity_bytes
            && (queue.messages.len() as u64) < queue.capacity_bytes.max(1);
        if !has_room {
            return if flags & IPC_NOWAIT != 0 { Err(Errno::EAGAIN) } else { Ok(None) };
        }
        queue.messages.push_back(Message { kind, text: text.take().unwrap_or_default() });
        queue.bytes += size;
        queue.send_time = ipc::now_seconds(context);
        queue.last_sender = ipc::caller_pid(context);
        Ok(Some(()))
    })?;
    sent?;
    waiters.notify();
    Ok(0)
}

/// The position of the message `msgrcv` takes for `wanted` and `flags`.
fn select(messages: &VecDeque<Message>, wanted: i64, flags: u64) -> Option<usize> {
    if flags & MSG_COPY != 0 {
        return usize::try_from(wanted).ok().filter(|&index| index < messages.len());
    }
    match wanted {
        0 => (!messages.is_empty()).then_some(0),
        wanted if wanted > 0 && flags & MSG_EXCEPT != 0 => messages.iter().position(|m| m.kind != wanted),
        wanted if wanted > 0 => messages.iter().position(|m| m.kind == wanted),
        wanted => {
            let limit = wanted.checked_neg().unwrap_or(i64::MAX);
            let lowest = messages.iter().map(|message| message.kind).filter(|&kind| kind <= limit).min()?;
            messages.iter().position(|message| message.kind == lowest)
        }
    }
}

pub(super) fn msgrcv(
    context: Context<'_>,
    id: u64,
    message: u64,
    size: u64,
    wanted: u64,
    flags: u64,
) -> Result {
    let id = queue_id(id)?;
    if (size as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    if flags & MSG_COPY != 0 && (flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0) {
        return Err(Errno::EINVAL.into());
    }
    let wanted = wanted as i64;
    let waiters = waiters_of(context, id, ipc::READ)?;
    let taken = ipc::wait(context, &waiters, None, || {
        let table = table_of(context);
        let mut queues = table.lock();
        let queue = queues.by_id.get_mut(&id).ok_or(Errno::EIDRM)?;
        let Some(position) = select(&queue.messages, wanted, flags) else {
            return if flags & IPC_NOWAIT != 0 { Err(Errno::ENOMSG) } else { Ok(None) };
        };
        let length = queue.messages[position].text.len() as u64;
        if length > size && flags & MSG_NOERROR == 0 {
            return Err(Errno::E2BIG);
        }
        if flags & MSG_COPY != 0 {
            let copy = &queue.messages[position];
            return Ok(Some(Message { kind: copy.kind, text: copy.text.clone() }));
        }
        let taken = queue.messages.remove(position).ok_or(Errno::EIDRM)?;
        queue.bytes -= length;
        queue.receive_time = ipc::now_seconds(context);
        queue.last_receiver = ipc::caller_pid(context);
        Ok(Some(taken))
    })?;
    let taken = taken?;
    waiters.notify();
    let length = taken.text.len().min(size as usize);
    let user = User::new(context.machine);
    user.write_u64(message, taken.kind as u64)?;
    user.write_bytes(message + 8, &taken.text[..length])?;
    Ok(length as u64)
}

/// `struct msqid64_ds` of `queue`.
fn status(queue: &Queue) -> [u8; 120] {
    let mut bytes = [0u8; 120];
    bytes[..48].copy_from_slice(&queue.permissions.encode(0));
    let words = [
        (48, queue.send_time),
        (56, queue.receive_time),
        (64, queue.change_time),
        (72, queue.bytes),
        (80, queue.messages.len() as u64),
        (88, queue.capacity_bytes),
    ];
    for (offset, word) in words {
        bytes[offset..offset + 8].copy_from_slice(&word.to_le_bytes());
    }
    bytes[96..100].copy_from_slice(&queue.last_sender.to_le_bytes());
    bytes[100..104].copy_from_slice(&queue.last_receiver.to_le_bytes());
    bytes
}

pub(super) fn msgctl(context: Context<'_>, id: u64, command: u64, buffer: u64) -> Result {
    let command = command & !IPC_64;
    let user = User::new(context.machine);
    let table = table_of(context);
    let mut queues = table.lock();
    match command {
        IPC_INFO | MSG_INFO => {
            // struct msginfo: msgpool, msgmap, msgmax, msgmnb, msgmni,
            // msgssz, msgtql (ints), msgseg (a short).
            let (pool, map, total) = if command == IPC_INFO {
                (MSGMNI.get() * MSGMNB.get() / 1024, MSGMNB.get(), MSGMNB.get())
            } else {
                let messages: usize = queues.by_id.values().map(|queue| queue.messages.len()).sum();
                let bytes: u64 = queues.by_id.values().map(|queue| queue.bytes).sum();
                (queues.by_id.len() as u64, messages as u64, bytes)
            };
            let words = [pool, map, MSGMAX.get(), MSGMNB.get(), MSGMNI.get(), 16, total];
            let mut bytes = [0u8; 32];
            for (index, word) in words.iter().enumerate() {
                bytes[index * 4..index * 4 + 4].copy_from_slice(&(*word as u32).to_le_bytes());
            }
            bytes[28..30].copy_from_slice(&0xffffu16.to_le_bytes());
            user.write_bytes(buffer, &bytes)?;
            Ok(queues.by_id.keys().next_back().map_or(0, |&id| id as u64))
        }
        MSG_STAT | MSG_STAT_ANY => {
            let (found, queue) = queues.nth(id)?;
            if command == MSG_STAT {
                queue.permissions.check(context, ipc::READ)?;
            }
            user.write_bytes(buffer, &status(queue))?;
            Ok(found as u64)
        }
        IPC_STAT | IPC_SET | IPC_RMID => {
            let id = queue_id(id)?;
            let queue = queues.by_id.get_mut(&id).ok_or(Errno::EINVAL)?;
            if command == IPC_STAT {
                queue.permissions.check(context, ipc::READ)?;
            } else {
                queue.permissions.check_owner(context)?;
            }
            match command {
                IPC_STAT => user.write_bytes(buffer, &status(queue))?,
                IPC_SET => {
                    let mut bytes = [0u8; 120];
                    user.read_into(buffer, &mut bytes)?;
                    queue.permissions.update_from(&bytes[..48]);
                    let capacity = u64::from_le_bytes(bytes[88..96].try_into().map_err(|_| Errno::EINVAL)?);
                    queue.capacity_bytes = capacity;
                    queue.change_time = ipc::now_seconds(context);
                    let waiters = queue.waiters.clone();
                    drop(queues);
                    waiters.notify();
                }
                _ => {
                    let key = queue.permissions.key;
                    let removed = queues.remove(id, key);
                    drop(queues);
                    if let Some(removed) = removed {
                        removed.waiters.notify();
                    }
                }
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// `/proc/sysvipc/msg`: one line per queue, in Linux's columns.
pub(crate) fn proc_listing(ipc: &crate::namespace::Namespace) -> alloc::string::String {
    use core::fmt::Write;
    let mut text = alloc::string::String::from(
        "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
    );
    let table = ipc.objects().get::<QueueTable>();
    for (id, queue) in &table.lock().by_id {
        let permissions = &queue.permissions;
        let _ = writeln!(
            text,
            "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}",
            permissions.key,
            id,
            permissions.mode,
            queue.bytes,
            queue.messages.len(),
            queue.last_sender,
            queue.last_receiver,
            permissions.owner.0,
            permissions.owner.1,
            permissions.creator.0,
            permissions.creator.1,
            queue.send_time,
            queue.receive_time,
            queue.change_time,
        );
    }
    text
}
