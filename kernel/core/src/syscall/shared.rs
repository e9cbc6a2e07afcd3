//! Memory shared through files the application never names: `memfd_create`
//! and its seals, and the files behind shared anonymous mappings.
//!
//! Both are ramfs files without a name, so their pages are frames that
//! every mapping shares, as `MAP_SHARED` of any ramfs file. A memfd is a
//! file created in `/dev/shm` and unlinked at once; the others are files
//! of a ramfs that is never mounted ([`unnamed_files`]), as are System V
//! shared memory segments (`segments.rs`).

use alloc::format;
use alloc::sync::Arc;

use spin::Once;

use super::{Context, Result};
use crate::errno::Errno;
use crate::fs::ramfs::{self, RamFs};
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
    let vfs = &context.process.vfs();
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
    let files = unnamed_files();
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

static UNNAMED_FILES: Once<Arc<RamFs>> = Once::new();

/// The ramfs, never mounted, that holds files no path names.
pub(super) fn unnamed_files() -> &'static Arc<RamFs> {
    UNNAMED_FILES.call_once(|| RamFs::new(0o777))
}
