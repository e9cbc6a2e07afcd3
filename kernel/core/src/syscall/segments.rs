//! System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`.
//!
//! A segment is a file without a name in the ramfs of unnamed files
//! (`shared::unnamed_files`), so its pages are frames that every mapping
//! shares. Segments are kept by id per IPC namespace ([`SegmentTable`]), with the
//! owner, creator and permission bits the other System V objects keep
//! (`ipc::Permissions`). Each mapping of a segment holds a reference to
//! its file, so the number of attaches is the number of references less
//! the table's own: mappings inherited at `fork`, split by `munmap` or
//! `mprotect`, and dropped at `exit` or `execve` count as Linux counts
//! them. A removed segment stays, keyless, until its last mapping goes.

use alloc::format;
use alloc::sync::Arc;

use spin::{Mutex, MutexGuard};

use super::ipc::{self, IPC_64, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, Permissions, Table};
use super::ipc_limits::{SHMALL, SHMMAX, SHMMNI};
use super::{Context, Result};
use crate::errno::Errno;
use crate::machine::Rights;
use crate::memory::{FileArea, PAGE_SIZE, map};
use crate::process::limit;
use crate::user::User;
use crate::vfs::{Caller, FileSystem, NewNode, Node};

/// `shmctl` commands of their own.
const SHM_LOCK: u64 = 11;
const SHM_UNLOCK: u64 = 12;
const SHM_STAT: u64 = 13;
const SHM_INFO: u64 = 14;
const SHM_STAT_ANY: u64 = 15;
/// `shmget` flag for huge pages, which rosv has none of.
const SHM_HUGETLB: u64 = 0o4000;
/// `shmat` flags.
const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;
/// Bits of `shm_perm.mode` besides the permissions: removed, waiting for
/// its last detach (`SHM_DEST`), and locked in memory (`SHM_LOCKED`).
const SHM_DEST: u32 = 0o1000;
const SHM_LOCKED: u32 = 0o2000;
/// `CAP_IPC_LOCK`.
const CAP_IPC_LOCK: u32 = 14;
/// Execute permission, as `ipc::Permissions::check` takes it.
const EXECUTE: u32 = 0o1;

/// A System V shared memory segment.
struct Segment {
    permissions: Permissions,
    node: Arc<dyn Node>,
    size_bytes: u64,
    is_removed: bool,
    is_locked: bool,
    attach_time: u64,
    detach_time: u64,
    change_time: u64,
    creator_pid: u32,
    last_pid: u32,
}

impl Segment {
    /// How many mappings hold the segment: the references to its file
    /// besides the table's.
    fn attaches(&self) -> u64 {
        Arc::strong_count(&self.node).saturating_sub(1) as u64
    }

    fn mode(&self) -> u32 {
        (if self.is_removed { SHM_DEST } else { 0 }) | if self.is_locked { SHM_LOCKED } else { 0 }
    }
}

#[derive(Default)]
struct Segments {
    table: Table<Segment>,
    /// How many removed segments wait for their last detach.
    removed: usize,
}

/// The segments of one IPC namespace.
#[derive(Default)]
struct SegmentTable(Mutex<Segments>);

/// The segments of the caller's IPC namespace.
fn table_of(context: Context<'_>) -> Arc<SegmentTable> {
    context.process.namespaces().ipc.objects().get()
}

impl SegmentTable {
    /// The segments, with those removed and no longer attached taken out.
    fn lock(&self) -> MutexGuard<'_, Segments> {
        segments_cleaned(self.0.lock())
    }
}

fn segments_cleaned(mut segments: MutexGuard<'_, Segments>) -> MutexGuard<'_, Segments> {
    if segments.removed > 0 {
        let gone: alloc::vec::Vec<i32> = segments
            .table
            .by_id
            .iter()
            .filter(|(_, segment)| segment.is_removed && segment.attaches() == 0)
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            segments.table.by_id.remove(&id);
            segments.removed = segments.removed.saturating_sub(1);
        }
    }
    segments
}

/// The pages all segments take.
fn total_pages(segments: &Segments) -> u64 {
    segments.table.by_id.values().map(|segment| segment.size_bytes.div_ceil(PAGE_SIZE)).sum()
}

pub(super) fn shmget(context: Context<'_>, key: u64, size: u64, shm_flags: u64) -> Result {
    let key = key as i32;
    let table = table_of(context);
    let mut segments = table.lock();
    let fits = |segment: &Segment| if size > segment.size_bytes { Err(Errno::EINVAL) } else { Ok(()) };
    if let Some(id) =
        ipc::look_up(context, &segments.table, key, shm_flags, |segment| &segment.permissions, fits)?
    {
        return Ok(id as u64);
    }
    if size < 1 || size > SHMMAX.get() {
        return Err(Errno::EINVAL.into());
    }
    if segments.table.by_id.len() as u64 >= SHMMNI.get() {
        return Err(Errno::ENOSPC.into());
    }
    if total_pages(&segments).checked_add(size.div_ceil(PAGE_SIZE)).is_none_or(|total| total > SHMALL.get()) {
        return Err(Errno::ENOSPC.into());
    }
    if shm_flags & SHM_HUGETLB != 0 {
        // No huge pages to back it with.
        return Err(Errno::EINVAL.into());
    }
    let files = super::shared::unnamed_files();
    let caller = Caller::kernel(context.machine);
    let id = segments.table.allocate_id()?;
    let name = format!("SYSV{key:08x}.{id}");
    let node = files.root().create(&caller, &name, NewNode::File, 0o600)?;
    files.root().remove(&caller, &name, false)?;
    node.truncate(&caller, size)?;
    let segment = Segment {
        permissions: Permissions::new(context, key, shm_flags),
        node,
        size_bytes: size,
        is_removed: false,
        is_locked: false,
        attach_time: 0,
        detach_time: 0,
        change_time: ipc::now_seconds(context),
        creator_pid: ipc::caller_pid(context),
        last_pid: 0,
    };
    segments.table.insert(id, key, segment);
    Ok(id as u64)
}

pub(super) fn shmat(context: Context<'_>, id: u64, address: u64, shm_flags: u64) -> Result {
    let id = i32::try_from(id).map_err(|_| Errno::EINVAL)?;
    let mut address = address;
    if address != 0 && !address.is_multiple_of(PAGE_SIZE) {
        if shm_flags & SHM_RND == 0 {
            return Err(Errno::EINVAL.into());
        }
        address &= !(PAGE_SIZE - 1);
        if address == 0 && shm_flags & SHM_REMAP != 0 {
            return Err(Errno::EINVAL.into());
        }
    } else if address == 0 && shm_flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL.into());
    }
    let rights =
        Rights { read: true, write: shm_flags & SHM_RDONLY == 0, execute: shm_flags & SHM_EXEC != 0 };
    let wanted =
        ipc::READ | if rights.write { ipc::WRITE } else { 0 } | if rights.execute { EXECUTE } else { 0 };
    let (node, size, key) = {
        let table = table_of(context);
        let segments = table.lock();
        let segment = segments.table.by_id.get(&id).ok_or(Errno::EINVAL)?;
        segment.permissions.check(context, wanted)?;
        (segment.node.clone(), segment.size_bytes, segment.permissions.key)
    };
    let mut mapping_flags = map::SHARED;
    if address != 0 {
        mapping_flags |= if shm_flags & SHM_REMAP != 0 { map::FIXED } else { map::FIXED_NOREPLACE };
    }
    let area = FileArea {
        node,
        offset: 0,
        is_shared: true,
        may_write: true,
        path: format!("/SYSV{key:08x} (deleted)").into(),
    };
    let start = super::memory::change_mappings(context, |memory| {
        memory.map(context.machine, address, size, rights, mapping_flags, Some(area))
    })
    .map_err(|error| if error == Errno::EEXIST { Errno::EINVAL } else { error })?;
    if let Some(segment) = table_of(context).lock().table.by_id.get_mut(&id) {
        segment.attach_time = ipc::now_seconds(context);
        segment.last_pid = ipc::caller_pid(context);
    }
    Ok(start)
}

pub(super) fn shmdt(context: Context<'_>, address: u64) -> Result {
    if !address.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL.into());
    }
    // The segment attached at `address`: an area there that maps one of
    // the segments' files from its start.
    let node = {
        let held = context.process.memory();
        let memory = held.space.lock();
        let (start, area) = memory.area_at(address).ok_or(Errno::EINVAL)?;
        let file = area.file.as_ref().filter(|file| file.is_shared && start == address && file.offset == 0);
        file.ok_or(Errno::EINVAL)?.node.clone()
    };
    let size = {
        let table = table_of(context);
        let mut segments = table.lock();
        let segment = segments
            .table
            .by_id
            .values_mut()
            .find(|segment| Arc::ptr_eq(&segment.node, &node))
            .ok_or(Errno::EINVAL)?;
        segment.detach_time = ipc::now_seconds(context);
        segment.last_pid = ipc::caller_pid(context);
        segment.size_bytes
    };
    drop(node);
    super::memory::change_mappings(context, |memory| memory.unmap(address, size))?;
    Ok(0)
}

/// `struct shmid64_ds` for `segment`.
fn status(segment: &Segment) -> [u8; 112] {
    let mut bytes = [0u8; 112];
    bytes[..48].copy_from_slice(&segment.permissions.encode(segment.mode()));
    let words64 = [
        (48, segment.size_bytes),
        (56, segment.attach_time),
        (64, segment.detach_time),
        (72, segment.change_time),
        (88, segment.attaches()),
    ];
    for (offset, word) in words64 {
        bytes[offset..offset + 8].copy_from_slice(&word.to_le_bytes());
    }
    bytes[80..84].copy_from_slice(&segment.creator_pid.to_le_bytes());
    bytes[84..88].copy_from_slice(&segment.last_pid.to_le_bytes());
    bytes
}

/// `struct shminfo64` (`IPC_INFO`) or `struct shm_info` (`SHM_INFO`).
fn information(segments: &Segments, command: u64) -> alloc::vec::Vec<u8> {
    if command == IPC_INFO {
        // shmmax, shmmin, shmmni, shmseg, shmall, then four unused words.
        let words = [SHMMAX.get(), 1, SHMMNI.get(), SHMMNI.get(), SHMALL.get(), 0, 0, 0, 0];
        return words.iter().flat_map(|word| word.to_le_bytes()).collect();
    }
    // used_ids (an int, padded), then shm_tot, shm_rss, shm_swp,
    // swap_attempts and swap_successes.
    let pages = total_pages(segments);
    let mut bytes = alloc::vec![0u8; 56];
    bytes[..4].copy_from_slice(&(segments.table.by_id.len() as u32).to_le_bytes());
    bytes[8..16].copy_from_slice(&pages.to_le_bytes());
    bytes[16..24].copy_from_slice(&pages.to_le_bytes());
    bytes
}

pub(super) fn shmctl(context: Context<'_>, id: u64, command: u64, buffer: u64) -> Result {
    let command = command & !IPC_64;
    let user = User::new(context.machine);
    let table = table_of(context);
    let mut segments = table.lock();
    match command {
        IPC_INFO | SHM_INFO => {
            user.write_bytes(buffer, &information(&segments, command))?;
            return Ok(segments.table.by_id.keys().next_back().map_or(0, |&id| id as u64));
        }
        SHM_STAT | SHM_STAT_ANY => {
            let (found, segment) = segments.table.nth(id)?;
            if command == SHM_STAT {
                segment.permissions.check(context, ipc::READ)?;
            }
            user.write_bytes(buffer, &status(segment))?;
            return Ok(found as u64);
        }
        IPC_STAT | IPC_SET | IPC_RMID | SHM_LOCK | SHM_UNLOCK => {}
        _ => return Err(Errno::EINVAL.into()),
    }
    let id = i32::try_from(id).map_err(|_| Errno::EINVAL)?;
    let new_permissions = if command == IPC_SET {
        let mut bytes = [0u8; 48];
        user.read_into(buffer, &mut bytes)?;
        Some(bytes)
    } else {
        None
    };
    let segment = segments.table.by_id.get_mut(&id).ok_or(Errno::EINVAL)?;
    match command {
        IPC_STAT => {
            segment.permissions.check(context, ipc::READ)?;
            user.write_bytes(buffer, &status(segment))?;
        }
        IPC_SET => {
            segment.permissions.check_owner(context)?;
            if let Some(bytes) = new_permissions {
                segment.permissions.update_from(&bytes);
            }
            segment.change_time = ipc::now_seconds(context);
        }
        IPC_RMID => {
            segment.permissions.check_owner(context)?;
            if !segment.is_removed {
                let key = segment.permissions.key;
                segment.is_removed = true;
                // A removed segment is found by no key.
                segment.permissions.key = ipc::IPC_PRIVATE;
                segments.table.forget_key(id, key);
                segments.removed += 1;
            }
        }
        _ => {
            may_lock(context, &segment.permissions, command)?;
            segment.is_locked = command == SHM_LOCK;
            segment.change_time = ipc::now_seconds(context);
        }
    }
    Ok(0)
}

/// Whether the caller may `SHM_LOCK` or `SHM_UNLOCK` a segment: with
/// `CAP_IPC_LOCK`, or as its owner or creator (and, to lock, with a
/// nonzero `RLIMIT_MEMLOCK`); `EPERM` if not.
fn may_lock(
    context: Context<'_>,
    permissions: &Permissions,
    command: u64,
) -> core::result::Result<(), Errno> {
    let state = context.process.state.lock();
    let credentials = &state.credentials;
    if credentials.has_capability(CAP_IPC_LOCK) {
        return Ok(());
    }
    let user = credentials.effective_user;
    if user != permissions.owner.0 && user != permissions.creator.0 {
        return Err(Errno::EPERM);
    }
    if command == SHM_LOCK && state.limits[limit::MEMLOCK].current == 0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// `/proc/sysvipc/shm`: one line per segment, in Linux's columns
/// (resident pages are the whole size, and nothing is swapped).
pub(crate) fn proc_listing(ipc: &crate::namespace::Namespace) -> alloc::string::String {
    use core::fmt::Write;
    let mut text = alloc::string::String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    let table = ipc.objects().get::<SegmentTable>();
    for (id, segment) in &table.lock().table.by_id {
        let permissions = &segment.permissions;
        let _ = writeln!(
            text,
            "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}",
            permissions.key,
            id,
            permissions.mode | segment.mode(),
            segment.size_bytes,
            segment.creator_pid,
            segment.last_pid,
            segment.attaches(),
            permissions.owner.0,
            permissions.owner.1,
            permissions.creator.0,
            permissions.creator.1,
            segment.attach_time,
            segment.detach_time,
            segment.change_time,
            segment.size_bytes.next_multiple_of(PAGE_SIZE),
            0,
        );
    }
    text
}
