//! `ioctl` on block devices and loop devices: the `BLK*` requests any
//! disk answers, the `LOOP_*` requests of `/dev/loopN` and the
//! `LOOP_CTL_*` requests of `/dev/loop-control` (Linux
//! `include/uapi/linux/fs.h` and `include/uapi/linux/loop.h`).

use alloc::sync::Arc;

use super::files::{caller, file};
use super::{Context, Result};
use crate::credentials::capability;
use crate::device::loopback::{self, Backing, KEY_BYTES, LoopDevice, LoopError, NAME_BYTES, Settings};
use crate::device::{BlockDevice, SECTOR_SIZE};
use crate::errno::Errno;
use crate::fs::devfs::{self, LoopControl};
use crate::user::User;
use crate::vfs::{FileType, OpenFile};

/// Block device requests.
mod request {
    pub const BLKROGET: u64 = 0x125e;
    pub const BLKRRPART: u64 = 0x125f;
    pub const BLKGETSIZE: u64 = 0x1260;
    pub const BLKFLSBUF: u64 = 0x1261;
    pub const BLKSSZGET: u64 = 0x1268;
    pub const BLKDISCARD: u64 = 0x1277;
    pub const BLKIOMIN: u64 = 0x1278;
    pub const BLKIOOPT: u64 = 0x1279;
    pub const BLKALIGNOFF: u64 = 0x127a;
    pub const BLKPBSZGET: u64 = 0x127b;
    pub const BLKDISCARDZEROES: u64 = 0x127c;
    pub const BLKZEROOUT: u64 = 0x127f;
    pub const BLKBSZGET: u64 = 0x8008_1270;
    pub const BLKBSZSET: u64 = 0x4008_1271;
    pub const BLKGETSIZE64: u64 = 0x8008_1272;
}

/// Loop device requests.
mod loop_request {
    pub const SET_FD: u64 = 0x4c00;
    pub const CLR_FD: u64 = 0x4c01;
    pub const SET_STATUS: u64 = 0x4c02;
    pub const GET_STATUS: u64 = 0x4c03;
    pub const SET_STATUS64: u64 = 0x4c04;
    pub const GET_STATUS64: u64 = 0x4c05;
    pub const CHANGE_FD: u64 = 0x4c06;
    pub const SET_CAPACITY: u64 = 0x4c07;
    pub const SET_DIRECT_IO: u64 = 0x4c08;
    pub const SET_BLOCK_SIZE: u64 = 0x4c09;
    pub const CONFIGURE: u64 = 0x4c0a;
    pub const CTL_ADD: u64 = 0x4c80;
    pub const CTL_REMOVE: u64 = 0x4c81;
    pub const CTL_GET_FREE: u64 = 0x4c82;
}

/// `sizeof(struct loop_info64)`.
const INFO64_BYTES: usize = 232;
/// `sizeof(struct loop_info)` on x86-64.
const INFO_BYTES: usize = 168;
/// `sizeof(struct loop_config)`: fd, block size, the info, 8 reserved words.
const CONFIG_BYTES: usize = 8 + INFO64_BYTES + 64;
/// The soft block size Linux reports for a disk (`BLKBSZGET`).
const SOFT_BLOCK_BYTES: u32 = 4096;

/// Answers `command` if `file` is a block device, a loop device or
/// `/dev/loop-control`; `None` for any other file.
pub(super) fn ioctl(
    context: Context<'_>,
    file: &Arc<OpenFile>,
    command: u64,
    argument: u64,
) -> Option<Result> {
    let node = file.data()?;
    if let Some(control) = devfs::loop_control_of(&**node) {
        return Some(control_ioctl(&control, command, argument));
    }
    let loop_device = devfs::loop_device_of(&**node);
    if let Some(device) = &loop_device
        && let Some(result) = loop_ioctl(context, file, device, command, argument)
    {
        return Some(result);
    }
    if !devfs::is_block_device(&**node) {
        return None;
    }
    let disk = devfs::block_device_of(&**node);
    let backing = loop_device.and_then(|device| device.backing());
    Some(block_ioctl(context, disk.as_deref(), backing.as_deref(), command, argument))
}

/// The `BLK*` requests, for a disk (`None`: an unbound loop device, which
/// has no sectors) and, for a bound loop device, its file.
fn block_ioctl(
    context: Context<'_>,
    disk: Option<&dyn BlockDevice>,
    backing: Option<&Backing>,
    command: u64,
    argument: u64,
) -> Result {
    let user = User::new(context.machine);
    let block_size = backing.map_or(SECTOR_SIZE as u32, |backing| backing.settings().block_size_bytes);
    let size_bytes = disk.map_or(0, |disk| disk.sector_count() * SECTOR_SIZE as u64);
    match command {
        request::BLKGETSIZE64 => user.write_u64(argument, size_bytes)?,
        request::BLKGETSIZE => user.write_u64(argument, size_bytes / SECTOR_SIZE as u64)?,
        request::BLKSSZGET | request::BLKPBSZGET | request::BLKIOMIN => {
            user.write_u32(argument, block_size)?
        }
        request::BLKBSZGET => user.write_u32(argument, SOFT_BLOCK_BYTES)?,
        request::BLKBSZSET => {
            let requested = u64::from(read_u32(user, argument)?);
            if !loopback::is_valid_block_size(requested) || requested < u64::from(block_size) {
                return Err(Errno::EINVAL.into());
            }
        }
        request::BLKIOOPT | request::BLKALIGNOFF | request::BLKDISCARDZEROES => {
            user.write_u32(argument, 0)?
        }
        request::BLKROGET => {
            user.write_u32(argument, u32::from(disk.is_some_and(|disk| disk.is_read_only())))?
        }
        request::BLKFLSBUF => {
            if !context.process.state.lock().credentials.has_capability(capability::SYS_ADMIN) {
                return Err(Errno::EACCES.into());
            }
            if let Some(disk) = disk {
                disk.flush().map_err(|_| Errno::EIO)?;
            }
        }
        request::BLKRRPART => return Err(Errno::EINVAL.into()),
        request::BLKDISCARD | request::BLKZEROOUT => {
            let range = user.read_bytes(argument, 16)?;
            let start = u64::from_le_bytes(range[..8].try_into().map_err(|_| Errno::EFAULT)?);
            let length = u64::from_le_bytes(range[8..].try_into().map_err(|_| Errno::EFAULT)?);
            let end = start.checked_add(length).ok_or(Errno::EINVAL)?;
            let sector = SECTOR_SIZE as u64;
            if start % sector != 0 || length % sector != 0 || end > size_bytes {
                return Err(Errno::EINVAL.into());
            }
            let disk = disk.ok_or(Errno::EINVAL)?;
            if disk.is_read_only() {
                return Err(Errno::EPERM.into());
            }
            let is_discard = command == request::BLKDISCARD;
            zero_range(disk, backing, start, length, is_discard)?;
        }
        _ => return Err(Errno::ENOTTY.into()),
    }
    Ok(0)
}

/// Zeroes `length` bytes of `disk` from `start`: a loop device lets its
/// file forget them (a hole); another disk is written with zeros, and
/// refuses a discard it cannot do.
fn zero_range(
    disk: &dyn BlockDevice,
    backing: Option<&Backing>,
    start: u64,
    length: u64,
    is_discard: bool,
) -> core::result::Result<(), Errno> {
    if let Some(backing) = backing {
        let node = backing.file().data().ok_or(Errno::EINVAL)?;
        let offset = backing.settings().offset_bytes;
        let machine = crate::machine::installed().ok_or(Errno::EIO)?;
        let caller = crate::vfs::Caller::kernel(machine);
        return match node.punch_hole(&caller, offset + start, length) {
            Ok(()) => Ok(()),
            Err(_) if is_discard => Err(Errno::EOPNOTSUPP),
            Err(_) => write_zeros(disk, start, length),
        };
    }
    if is_discard {
        return Err(Errno::EOPNOTSUPP);
    }
    write_zeros(disk, start, length)
}

fn write_zeros(disk: &dyn BlockDevice, start: u64, length: u64) -> core::result::Result<(), Errno> {
    const CHUNK_BYTES: u64 = 64 * 1024;
    let zeros = alloc::vec![0u8; CHUNK_BYTES as usize];
    let mut done = 0;
    while done < length {
        let chunk = (length - done).min(CHUNK_BYTES);
        let sector = (start + done) / SECTOR_SIZE as u64;
        disk.write_sectors(sector, &zeros[..chunk as usize]).map_err(|_| Errno::EIO)?;
        done += chunk;
    }
    Ok(())
}

/// The `LOOP_*` requests of a loop device; `None` for others, which the
/// block requests answer.
fn loop_ioctl(
    context: Context<'_>,
    file: &Arc<OpenFile>,
    device: &Arc<LoopDevice>,
    command: u64,
    argument: u64,
) -> Option<Result> {
    let user = User::new(context.machine);
    let may_change =
        file.is_writable() || context.process.state.lock().credentials.has_capability(capability::SYS_ADMIN);
    let bound = || device.backing().ok_or(Errno::ENXIO);
    let result: Result = (|| match command {
        loop_request::SET_FD => {
            bind(context, file, device, argument, Settings::default())?;
            Ok(0)
        }
        loop_request::CONFIGURE => {
            let bytes = user.read_bytes(argument, CONFIG_BYTES)?;
            let fd = u64::from(u32_at(&bytes, 0));
            let block_size = u64::from(u32_at(&bytes, 4));
            let (mut settings, _) = settings_from_info64(&bytes[8..8 + INFO64_BYTES])?;
            if settings.flags & !loopback::flag::CONFIGURABLE != 0 {
                return Err(Errno::EINVAL.into());
            }
            if block_size != 0 {
                if !loopback::is_valid_block_size(block_size) {
                    return Err(Errno::EINVAL.into());
                }
                settings.block_size_bytes = block_size as u32;
            }
            bind(context, file, device, fd, settings)?;
            Ok(0)
        }
        loop_request::CLR_FD => {
            device.unbind().map_err(loop_errno)?;
            Ok(0)
        }
        loop_request::CHANGE_FD => {
            // Linux swaps the file only under a read-only device, for a
            // file of the same size (a live CD's media change).
            let backing = bound()?;
            if !backing.is_read_only() {
                return Err(Errno::EINVAL.into());
            }
            let settings = backing.settings();
            check_replacement(context, &backing, argument)?;
            device.unbind().map_err(loop_errno)?;
            bind(context, file, device, argument, settings)?;
            Ok(0)
        }
        loop_request::SET_STATUS64 | loop_request::SET_STATUS => {
            if !may_change {
                return Err(Errno::EPERM.into());
            }
            let backing = bound()?;
            let settings = if command == loop_request::SET_STATUS64 {
                settings_from_info64(&user.read_bytes(argument, INFO64_BYTES)?)?.0
            } else {
                settings_from_info(&user.read_bytes(argument, INFO_BYTES)?)?
            };
            backing.set_status(settings).map_err(loop_errno)?;
            Ok(0)
        }
        loop_request::GET_STATUS64 | loop_request::GET_STATUS => {
            if argument == 0 {
                return Err(Errno::EINVAL.into());
            }
            let backing = bound()?;
            let status = Status::of(context, device, &backing)?;
            let bytes =
                if command == loop_request::GET_STATUS64 { status.info64() } else { status.info()? };
            user.write_bytes(argument, &bytes)?;
            Ok(0)
        }
        loop_request::SET_CAPACITY | loop_request::SET_DIRECT_IO | loop_request::SET_BLOCK_SIZE => {
            if !may_change {
                return Err(Errno::EPERM.into());
            }
            let backing = bound()?;
            match command {
                loop_request::SET_CAPACITY => backing.update_size().map_err(loop_errno)?,
                loop_request::SET_DIRECT_IO => backing.set_direct_io(argument != 0),
                _ => backing.set_block_size(argument).map_err(loop_errno)?,
            }
            Ok(0)
        }
        _ => Err(Errno::ENOTTY.into()),
    })();
    match result {
        Err(error) if error == Errno::ENOTTY.into() => None,
        result => Some(result),
    }
}

/// Binds `device` to the file of descriptor `fd`: a regular file or a
/// disk, never the device itself or a loop device bound, through others,
/// to it.
fn bind(
    context: Context<'_>,
    device_file: &OpenFile,
    device: &Arc<LoopDevice>,
    fd: u64,
    settings: Settings,
) -> core::result::Result<(), Errno> {
    let backing_file = file(context, fd)?;
    if backing_file.is_path_only() {
        return Err(Errno::EBADF);
    }
    // Linux looks at the device's state before the file.
    if device.is_bound() {
        return Err(Errno::EBUSY);
    }
    let node = backing_file.data().ok_or(Errno::EINVAL)?;
    match node.file_type() {
        FileType::Regular => {}
        FileType::BlockDevice => {
            let mut next = devfs::loop_device_of(&**node);
            while let Some(inner) = next {
                if Arc::ptr_eq(&inner, device) {
                    return Err(Errno::EINVAL);
                }
                next = inner.backing().and_then(|backing| devfs::loop_device_of(&**backing.file().data()?));
            }
        }
        _ => return Err(Errno::EINVAL),
    }
    device.bind(backing_file, device_file.is_writable(), settings).map_err(loop_errno)?;
    Ok(())
}

/// Whether the file open as `fd` may replace `backing`'s (`LOOP_CHANGE_FD`):
/// a regular file or a block device that, under the device's offset and
/// size limit, gives as many sectors as the file it replaces; `EINVAL` if
/// not, before anything changes.
fn check_replacement(context: Context<'_>, backing: &Backing, fd: u64) -> core::result::Result<(), Errno> {
    let replacement = file(context, fd)?;
    if replacement.is_path_only() {
        return Err(Errno::EBADF);
    }
    let node = replacement.data().ok_or(Errno::EINVAL)?;
    if !matches!(node.file_type(), FileType::Regular | FileType::BlockDevice) {
        return Err(Errno::EINVAL);
    }
    let settings = backing.settings();
    let caller = caller(context);
    let sectors = |bytes: u64| {
        let mut size = bytes.saturating_sub(settings.offset_bytes);
        if settings.size_limit_bytes != 0 {
            size = size.min(settings.size_limit_bytes);
        }
        size / SECTOR_SIZE as u64
    };
    let current = backing.file().data().ok_or(Errno::EINVAL)?.metadata(&caller)?.size_bytes;
    if sectors(node.metadata(&caller)?.size_bytes) != sectors(current) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// The `LOOP_CTL_*` requests of `/dev/loop-control`.
fn control_ioctl(control: &LoopControl, command: u64, argument: u64) -> Result {
    // Linux reads the number as an `int`.
    let number = argument as u32 as i32;
    let answer = match command {
        loop_request::CTL_ADD => control.add(u32::try_from(number).ok()),
        loop_request::CTL_REMOVE => {
            let number = u32::try_from(number).map_err(|_| Errno::EINVAL)?;
            control.remove(number)
        }
        loop_request::CTL_GET_FREE => control.free(),
        _ => return Err(Errno::ENOSYS.into()),
    };
    Ok(u64::from(answer.map_err(loop_errno)?))
}

fn loop_errno(error: LoopError) -> Errno {
    match error {
        LoopError::NotBound => Errno::ENXIO,
        LoopError::Busy => Errno::EBUSY,
        LoopError::Invalid => Errno::EINVAL,
        LoopError::NoDevice => Errno::ENODEV,
        LoopError::Exists => Errno::EEXIST,
        LoopError::File(error) => error.into(),
    }
}

fn read_u32(user: User<'_>, address: u64) -> core::result::Result<u32, Errno> {
    let bytes = user.read_bytes(address, 4)?;
    Ok(u32_at(&bytes, 0))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn name_at(bytes: &[u8], at: usize) -> [u8; NAME_BYTES] {
    let mut name = [0u8; NAME_BYTES];
    name.copy_from_slice(&bytes[at..at + NAME_BYTES]);
    // The kernel keeps the names NUL-terminated.
    name[NAME_BYTES - 1] = 0;
    name
}

/// The settings a `struct loop_info64` asks for, and its encryption type:
/// rosv has no transforms, so anything but none is `EINVAL`, as on Linux
/// since they were removed.
fn settings_from_info64(bytes: &[u8]) -> core::result::Result<(Settings, u32), Errno> {
    let encrypt_type = u32_at(bytes, 44);
    let key_size = u32_at(bytes, 48);
    if key_size as usize > KEY_BYTES || encrypt_type != 0 {
        return Err(Errno::EINVAL);
    }
    let offset_bytes = u64_at(bytes, 24);
    let size_limit_bytes = u64_at(bytes, 32);
    if offset_bytes > i64::MAX as u64 || size_limit_bytes > i64::MAX as u64 {
        return Err(Errno::EOVERFLOW);
    }
    let settings = Settings {
        offset_bytes,
        size_limit_bytes,
        flags: u32_at(bytes, 52),
        file_name: name_at(bytes, 56),
        crypt_name: name_at(bytes, 120),
        ..Settings::default()
    };
    Ok((settings, encrypt_type))
}

/// The settings an old `struct loop_info` asks for.
fn settings_from_info(bytes: &[u8]) -> core::result::Result<Settings, Errno> {
    let encrypt_type = u32_at(bytes, 36);
    let key_size = u32_at(bytes, 40);
    if key_size as usize > KEY_BYTES || encrypt_type != 0 {
        return Err(Errno::EINVAL);
    }
    let offset = u32_at(bytes, 32) as i32;
    Ok(Settings {
        offset_bytes: u64::try_from(offset).map_err(|_| Errno::EINVAL)?,
        flags: u32_at(bytes, 44),
        file_name: name_at(bytes, 48),
        ..Settings::default()
    })
}

/// What `LOOP_GET_STATUS64` and `LOOP_GET_STATUS` report.
struct Status {
    device: u64,
    inode: u64,
    represented_device: u64,
    number: u32,
    settings: Settings,
}

impl Status {
    fn of(
        context: Context<'_>,
        device: &LoopDevice,
        backing: &Backing,
    ) -> core::result::Result<Status, Errno> {
        let metadata = backing.file().metadata(&caller(context))?;
        Ok(Status {
            device: metadata.device,
            inode: metadata.inode,
            represented_device: metadata.represented_device,
            number: device.number(),
            settings: backing.settings(),
        })
    }

    fn info64(&self) -> alloc::vec::Vec<u8> {
        let mut bytes = alloc::vec![0u8; INFO64_BYTES];
        bytes[0..8].copy_from_slice(&self.device.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.inode.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.represented_device.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.settings.offset_bytes.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.settings.size_limit_bytes.to_le_bytes());
        bytes[40..44].copy_from_slice(&self.number.to_le_bytes());
        bytes[52..56].copy_from_slice(&self.settings.flags.to_le_bytes());
        bytes[56..120].copy_from_slice(&self.settings.file_name);
        bytes[120..184].copy_from_slice(&self.settings.crypt_name);
        bytes
    }

    /// The old structure, whose 32-bit offset cannot hold every value
    /// (`EOVERFLOW`).
    fn info(&self) -> core::result::Result<alloc::vec::Vec<u8>, Errno> {
        let offset = i32::try_from(self.settings.offset_bytes).map_err(|_| Errno::EOVERFLOW)?;
        let mut bytes = alloc::vec![0u8; INFO_BYTES];
        bytes[0..4].copy_from_slice(&self.number.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.device.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.inode.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.represented_device.to_le_bytes());
        bytes[32..36].copy_from_slice(&offset.to_le_bytes());
        bytes[44..48].copy_from_slice(&self.settings.flags.to_le_bytes());
        bytes[48..112].copy_from_slice(&self.settings.file_name);
        Ok(bytes)
    }
}
