//! Memory shared through files the application never names: `memfd_create`
//! and its seals, and System V shared memory (`shmget`, `shmat`, `shmdt`,
//! `shmctl`).
//!
//! Both are ramfs files without a name, so their pages are frames that
//! every mapping shares, as `MAP_SHARED` of any ramfs file. A memfd is a
//! file created in `/dev/shm` and unlinked at once; a System V segment is a
//! file of a ramfs that is never mounted, kept in [`SEGMENTS`] by id.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::sync::Arc;

use spin::{Mutex, Once};

use super::ipc_limits::{SHMALL, SHMMAX, SHMMNI};
use super::{Context, Result};
use crate::errno::Errno;
use crate::fs::ramfs::{self, RamFs};
use crate::machine::Rights;
use crate::memory::{FileArea, PAGE_SIZE, map};
use crate::user::User;
use crate::vfs::file::flags;
use crate::vfs::{Caller, FileSystem, FsError, NewNode, Node};

/// `memfd_create` flags.
const MFD_CLOEXEC: u64 = 0x1;
const MFD_ALLOW_SEALING: u64 = 0x2;
const MFD_HUGETLB: u64 = 0x4;
const MFD_NOEXEC_SEAL: u64 = 0x8;
const MFD_EXEC: u64 = 0x10;
/// The longest memfd name: `NAME_MAX` less the `memfd:` prefix.
const MEMFD_NAME_MAX: usize = 249;

static NEXT_MEMFD: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

pub(super) fn memfd_create(context: Context<'_>, name: u64, memfd_flags: u64) -> Result {
    if memfd_flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC) != 0
        || memfd_flags & (MFD_NOEXEC_SEAL | MFD_EXEC) == MFD_NOEXEC_SEAL | MFD_EXEC
    {
        return Err(Errno::EINVAL.into());
    }
    if memfd_flags & MFD_HUGETLB != 0 {
        // No huge pages to back it with.
        return Err(Errno::EINVAL.into());
    }
    let name = User::new(context.machine).read_path(name)?;
    if name.len() > MEMFD_NAME_MAX || name.contains('/') {
        return Err(Errno::EINVAL.into());
    }
    let caller = super::files::caller(context);
    let vfs = &context.process.vfs;
    let root = vfs.root();
    // A name in /dev/shm no program uses, unlinked as soon as it is open.
    let path =
        format!("/dev/shm/memfd:{name}.{}", NEXT_MEMFD.fetch_add(1, core::sync::atomic::Ordering::Relaxed));
    let open_flags = flags::O_RDWR | flags::O_CREAT | flags::O_EXCL;
    let file = vfs.open(&caller, &root, &path, open_flags, 0o777).map_err(Errno::from)?;
    vfs.unlink(&caller, &root, &path).map_err(Errno::from)?;
    let node = file.data().ok_or(Errno::EINVAL)?;
    if memfd_flags & MFD_ALLOW_SEALING != 0 || memfd_flags & MFD_NOEXEC_SEAL != 0 {
        ramfs::allow_sealing(node.as_ref());
    }
    super::paths::install(context, file, memfd_flags & MFD_CLOEXEC != 0)
}

/// `F_ADD_SEALS` and `F_GET_SEALS`.
pub(super) const F_ADD_SEALS: u64 = 1033;
pub(super) const F_GET_SEALS: u64 = 1034;

/// A fresh unnamed file of `size` bytes behind a shared anonymous mapping
/// (`MAP_SHARED | MAP_ANONYMOUS`): processes forked after the mapping was
/// made share its pages, as Linux's shmem does.
pub(super) fn anonymous_shared_file(
    context: Context<'_>,
    size: u64,
) -> core::result::Result<Arc<dyn Node>, Errno> {
    static NEXT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
    let files = SEGMENT_FILES.call_once(|| RamFs::new(0o777));
    let caller = Caller::kernel(context.machine);
    let name = format!("zero.{}", NEXT.fetch_add(1, core::sync::atomic::Ordering::Relaxed));
    let node = files.root().create(&caller, &name, NewNode::File, 0o600)?;
    files.root().remove(&caller, &name, false)?;
    node.truncate(&caller, size)?;
    Ok(node)
}

/// `fcntl(F_ADD_SEALS)` / `fcntl(F_GET_SEALS)` on the file behind `node`.
pub(super) fn seals(node: &dyn Node, command: u64, argument: u64, is_writable: bool) -> Result {
    if command == F_GET_SEALS {
        return Ok(u64::from(node.seals()?));
    }
    let seals = u32::try_from(argument).map_err(|_| Errno::EINVAL)?;
    if !is_writable {
        return Err(Errno::EPERM.into());
    }
    node.add_seals(seals).map_err(|error| match error {
        FsError::NotPermitted => Errno::EPERM,
        other => Errno::from(other),
    })?;
    Ok(0)
}

/// `IPC_*` flags and commands.
const IPC_PRIVATE: i32 = 0;
const IPC_CREAT: u64 = 0o1000;
const IPC_EXCL: u64 = 0o2000;
const IPC_RMID: u64 = 0;
const IPC_SET: u64 = 1;
const IPC_STAT: u64 = 2;
const IPC_INFO: u64 = 3;
const SHM_STAT: u64 = 13;
const SHM_INFO: u64 = 14;
const SHM_STAT_ANY: u64 = 15;
/// `IPC_64`, which glibc ors into commands.
const IPC_64: u64 = 0x100;
/// `shmat` flags.
const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;
/// `SHM_DEST` in `shm_perm.mode`: removed, waiting for its last detach.
const SHM_DEST: u32 = 0o1000;

/// A System V shared memory segment.
struct Segment {
    key: i32,
    node: Arc<dyn Node>,
    size_bytes: u64,
    mode: u32,
    attaches: u64,
    is_removed: bool,
    attach_time: u64,
    detach_time: u64,
    change_time: u64,
    creator: u64,
    last: u64,
    owner: (u32, u32),
}

/// The segments by id, and the filesystem their files live in.
struct Segments {
    by_id: BTreeMap<i32, Segment>,
    next_id: i32,
}

static SEGMENTS: Mutex<Segments> = Mutex::new(Segments { by_id: BTreeMap::new(), next_id: 0 });
static SEGMENT_FILES: Once<Arc<RamFs>> = Once::new();

fn now_seconds(context: Context<'_>) -> u64 {
    context.machine.realtime_ns() / 1_000_000_000
}

pub(super) fn shmget(context: Context<'_>, key: u64, size: u64, shm_flags: u64) -> Result {
    let key = key as i32;
    let mut segments = SEGMENTS.lock();
    if key != IPC_PRIVATE
        && let Some((&id, segment)) =
            segments.by_id.iter().find(|(_, segment)| segment.key == key && !segment.is_removed)
    {
        if shm_flags & IPC_CREAT != 0 && shm_flags & IPC_EXCL != 0 {
            return Err(Errno::EEXIST.into());
        }
        if size > segment.size_bytes {
            return Err(Errno::EINVAL.into());
        }
        return Ok(id as u64);
    }
    if key != IPC_PRIVATE && shm_flags & IPC_CREAT == 0 {
        return Err(Errno::ENOENT.into());
    }
    if size == 0 || size > SHMMAX.get() {
        return Err(Errno::EINVAL.into());
    }
    if segments.by_id.len() as u64 >= SHMMNI.get() {
        return Err(Errno::ENOSPC.into());
    }
    let pages: u64 = segments.by_id.values().map(|segment| segment.size_bytes.div_ceil(PAGE_SIZE)).sum();
    if pages.checked_add(size.div_ceil(PAGE_SIZE)).is_none_or(|total| total > SHMALL.get()) {
        return Err(Errno::ENOSPC.into());
    }
    let files = SEGMENT_FILES.call_once(|| RamFs::new(0o777));
    let caller = Caller::kernel(context.machine);
    let id = segments.next_id;
    let node = files.root().create(&caller, &format!("SYSV{key:08x}.{id}"), NewNode::File, 0o600)?;
    files.root().remove(&caller, &format!("SYSV{key:08x}.{id}"), false)?;
    node.truncate(&caller, size)?;
    segments.next_id = segments.next_id.checked_add(1).ok_or(Errno::ENOSPC)?;
    let now = now_seconds(context);
    segments.by_id.insert(
        id,
        Segment {
            key,
            node,
            size_bytes: size,
            mode: (shm_flags & 0o777) as u32,
            attaches: 0,
            is_removed: false,
            attach_time: 0,
            detach_time: 0,
            change_time: now,
            creator: context.process.pid,
            last: 0,
            owner: (0, 0),
        },
    );
    Ok(id as u64)
}

pub(super) fn shmat(context: Context<'_>, id: u64, address: u64, shm_flags: u64) -> Result {
    let id = i32::try_from(id).map_err(|_| Errno::EINVAL)?;
    let (node, size, key) = {
        let segments = SEGMENTS.lock();
        let segment = segments.by_id.get(&id).ok_or(Errno::EINVAL)?;
        (segment.node.clone(), segment.size_bytes, segment.key)
    };
    let mut address = address;
    if shm_flags & SHM_RND != 0 {
        address &= !(PAGE_SIZE - 1);
    }
    if !address.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL.into());
    }
    let rights =
        Rights { read: true, write: shm_flags & SHM_RDONLY == 0, execute: shm_flags & SHM_EXEC != 0 };
    let mut mapping_flags = map::SHARED;
    if address != 0 {
        mapping_flags |= if shm_flags & SHM_REMAP != 0 { map::FIXED } else { map::FIXED_NOREPLACE };
    }
    let area =
        FileArea { node, offset: 0, is_shared: true, path: format!("/SYSV{key:08x} (deleted)").into() };
    let start = super::memory::change_mappings(context, |memory| {
        memory.map(context.machine, address, size, rights, mapping_flags, Some(area))
    })
    .map_err(|error| if error == Errno::EEXIST { Errno::EINVAL } else { error })?;
    let mut segments = SEGMENTS.lock();
    if let Some(segment) = segments.by_id.get_mut(&id) {
        segment.attaches += 1;
        segment.attach_time = now_seconds(context);
        segment.last = context.process.pid;
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
    let mut segments = SEGMENTS.lock();
    let (&id, segment) = segments
        .by_id
        .iter_mut()
        .find(|(_, segment)| Arc::ptr_eq(&segment.node, &node))
        .ok_or(Errno::EINVAL)?;
    let size = segment.size_bytes;
    segment.attaches = segment.attaches.saturating_sub(1);
    segment.detach_time = now_seconds(context);
    segment.last = context.process.pid;
    if segment.is_removed && segment.attaches == 0 {
        segments.by_id.remove(&id);
    }
    drop(segments);
    super::memory::change_mappings(context, |memory| memory.unmap(address, size))?;
    Ok(0)
}

/// Writes `struct shmid64_ds` for `segment` at `address`.
fn write_status(user: &User<'_>, address: u64, segment: &Segment) -> core::result::Result<(), Errno> {
    let mut bytes = [0u8; 112];
    let mode = segment.mode | if segment.is_removed { SHM_DEST } else { 0 };
    let words32 =
        [segment.key as u32, segment.owner.0, segment.owner.1, segment.owner.0, segment.owner.1, mode];
    for (index, word) in words32.iter().enumerate() {
        bytes[index * 4..index * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    let words64 = [
        (48, segment.size_bytes),
        (56, segment.attach_time),
        (64, segment.detach_time),
        (72, segment.change_time),
        (88, segment.attaches),
    ];
    for (offset, word) in words64 {
        bytes[offset..offset + 8].copy_from_slice(&word.to_le_bytes());
    }
    bytes[80..84].copy_from_slice(&(segment.creator as u32).to_le_bytes());
    bytes[84..88].copy_from_slice(&(segment.last as u32).to_le_bytes());
    user.write_bytes(address, &bytes).map_err(|_| Errno::EFAULT)
}

pub(super) fn shmctl(context: Context<'_>, id: u64, command: u64, buffer: u64) -> Result {
    let command = command & !IPC_64;
    let user = User::new(context.machine);
    let mut segments = SEGMENTS.lock();
    match command {
        IPC_INFO | SHM_INFO => {
            // struct shminfo64: shmmax, shmmin, shmmni, shmseg, shmall.
            let mut bytes = [0u8; 80];
            if command == IPC_INFO {
                for (index, word) in
                    [SHMMAX.get(), 1, SHMMNI.get(), SHMMNI.get(), SHMALL.get()].iter().enumerate()
                {
                    bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
                }
            } else {
                // struct shm_info: used_ids, then page counts.
                let used = segments.by_id.len() as u32;
                let pages: u64 =
                    segments.by_id.values().map(|segment| segment.size_bytes.div_ceil(PAGE_SIZE)).sum();
                bytes[..4].copy_from_slice(&used.to_le_bytes());
                bytes[8..16].copy_from_slice(&pages.to_le_bytes());
            }
            let length = if command == IPC_INFO { 72 } else { 56 };
            user.write_bytes(buffer, &bytes[..length])?;
            Ok(segments.by_id.keys().next_back().map_or(0, |&id| id as u64))
        }
        SHM_STAT | SHM_STAT_ANY => {
            // The id is an index into the table of segments.
            let (&found, segment) = segments.by_id.iter().nth(id as usize).ok_or(Errno::EINVAL)?;
            write_status(&user, buffer, segment)?;
            Ok(found as u64)
        }
        IPC_STAT | IPC_SET | IPC_RMID => {
            let id = i32::try_from(id).map_err(|_| Errno::EINVAL)?;
            let segment = segments.by_id.get_mut(&id).ok_or(Errno::EINVAL)?;
            match command {
                IPC_STAT => write_status(&user, buffer, segment)?,
                IPC_SET => {
                    let mut permissions = [0u8; 24];
                    user.read_into(buffer, &mut permissions)?;
                    let word = |index: usize| {
                        u32::from_le_bytes([
                            permissions[index * 4],
                            permissions[index * 4 + 1],
                            permissions[index * 4 + 2],
                            permissions[index * 4 + 3],
                        ])
                    };
                    segment.owner = (word(1), word(2));
                    segment.mode = word(5) & 0o777;
                    segment.change_time = now_seconds(context);
                }
                _ => {
                    segment.is_removed = true;
                    if segment.attaches == 0 {
                        segments.by_id.remove(&id);
                    }
                }
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// `/proc/sysvipc/shm`: one line per segment, in Linux's columns (rosv
/// keeps the owner as the creator; resident pages are the whole size, and
/// nothing is swapped).
pub(crate) fn proc_listing() -> alloc::string::String {
    use core::fmt::Write;
    let mut text = alloc::string::String::from(
        "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
    );
    for (id, segment) in &SEGMENTS.lock().by_id {
        let mode = segment.mode | if segment.is_removed { SHM_DEST } else { 0 };
        let _ = writeln!(
            text,
            "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}",
            segment.key,
            id,
            mode,
            segment.size_bytes,
            segment.creator,
            segment.last,
            segment.attaches,
            segment.owner.0,
            segment.owner.1,
            segment.owner.0,
            segment.owner.1,
            segment.attach_time,
            segment.detach_time,
            segment.change_time,
            segment.size_bytes.next_multiple_of(PAGE_SIZE),
            0,
        );
    }
    text
}
