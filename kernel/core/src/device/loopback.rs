//! Loop devices: a file of any filesystem seen as a disk (`/dev/loopN`).
//!
//! [`LoopDevice`] is one `/dev/loopN`: unbound, or bound to an open file
//! through a [`Backing`], which is the [`BlockDevice`] that reads and
//! writes and filesystems mounted from the device use. [`LoopDevices`] is
//! the set `/dev/loop-control` adds to and takes from. The ioctls that
//! drive them are in `syscall::block`; devfs holds the nodes.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use spin::Mutex;

use super::{BlockDevice, DeviceError, IoStatistics, SECTOR_SIZE};
use crate::machine::Machine;
use crate::vfs::file::OpenFile;
use crate::vfs::{Caller, FsError, Node};

/// `LO_FLAGS_*`: the flags `loop_info64.lo_flags` reports.
pub mod flag {
    /// Writes are refused.
    pub const READ_ONLY: u32 = 1;
    /// Unbound when the last user closes it.
    pub const AUTOCLEAR: u32 = 4;
    /// The kernel scans the device for partitions.
    pub const PARTSCAN: u32 = 8;
    /// Transfers bypass the backing file's page cache.
    pub const DIRECT_IO: u32 = 16;
    /// What `LOOP_SET_STATUS` may set.
    pub const SETTABLE: u32 = AUTOCLEAR | PARTSCAN;
    /// What `LOOP_SET_STATUS` may clear.
    pub const CLEARABLE: u32 = AUTOCLEAR;
    /// What `LOOP_CONFIGURE` accepts.
    pub const CONFIGURABLE: u32 = READ_ONLY | AUTOCLEAR | PARTSCAN | DIRECT_IO;
}

/// The length of the name fields of `loop_info64`.
pub const NAME_BYTES: usize = 64;
/// The length of the key field of `loop_info64`.
pub const KEY_BYTES: usize = 32;

/// Why a loop request failed; the ioctl layer maps these to errno values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopError {
    /// The device is not bound (`ENXIO`).
    NotBound,
    /// The device is bound already, or in use (`EBUSY`).
    Busy,
    /// A value is out of range, or the file cannot back a device
    /// (`EINVAL`).
    Invalid,
    /// No such loop device (`ENODEV`).
    NoDevice,
    /// A device of that number exists already (`EEXIST`).
    Exists,
    /// The backing file failed.
    File(FsError),
}

/// The settings of a bound device that `LOOP_SET_STATUS64` changes and
/// `LOOP_GET_STATUS64` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The byte of the file where the device starts.
    pub offset_bytes: u64,
    /// The most bytes of the file the device shows (0: up to its end).
    pub size_limit_bytes: u64,
    /// `LO_FLAGS_*`.
    pub flags: u32,
    /// The name a program recorded (`lo_file_name`).
    pub file_name: [u8; NAME_BYTES],
    /// `lo_crypt_name`, kept and reported as given.
    pub crypt_name: [u8; NAME_BYTES],
    /// The logical block size the device reports.
    pub block_size_bytes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            offset_bytes: 0,
            size_limit_bytes: 0,
            flags: 0,
            file_name: [0; NAME_BYTES],
            crypt_name: [0; NAME_BYTES],
            block_size_bytes: SECTOR_SIZE as u32,
        }
    }
}

/// What a bound device reads and writes: a window of an open file.
pub struct Backing {
    file: Arc<OpenFile>,
    node: Arc<dyn Node>,
    machine: &'static dyn Machine,
    settings: Mutex<Settings>,
    /// The device's size, fixed at binding and at `LOOP_SET_CAPACITY`.
    size_bytes: Mutex<u64>,
    /// Transfers so far, with their time in nanoseconds.
    statistics: Mutex<(IoStatistics, u64, u64)>,
}

impl core::fmt::Debug for Backing {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Backing").field("size_bytes", &*self.size_bytes.lock()).finish()
    }
}

impl Backing {
    /// The file bound, open as the program that bound it opened it.
    pub fn file(&self) -> &Arc<OpenFile> {
        &self.file
    }

    /// The current settings.
    pub fn settings(&self) -> Settings {
        *self.settings.lock()
    }

    /// The device's size in bytes.
    pub fn size_bytes(&self) -> u64 {
        *self.size_bytes.lock()
    }

    fn caller(&self) -> Caller<'static> {
        Caller::kernel(self.machine)
    }

    /// Counts a transfer of `bytes` that started at `started_ns`.
    fn account(&self, is_write: bool, bytes: usize, started_ns: u64) {
        let elapsed_ns = self.machine.monotonic_ns().saturating_sub(started_ns).max(1);
        let sectors = (bytes / SECTOR_SIZE) as u64;
        let mut statistics = self.statistics.lock();
        let (counts, read_ns, write_ns) = &mut *statistics;
        if is_write {
            counts.writes += 1;
            counts.sectors_written += sectors;
            *write_ns += elapsed_ns;
            counts.write_ms = write_ns.div_ceil(1_000_000);
        } else {
            counts.reads += 1;
            counts.sectors_read += sectors;
            *read_ns += elapsed_ns;
            counts.read_ms = read_ns.div_ceil(1_000_000);
        }
    }

    /// Reads the size again from the file and the settings: the file's
    /// bytes past the offset, at most the size limit, in whole sectors.
    pub fn update_size(&self) -> Result<(), LoopError> {
        let file_bytes = self.node.metadata(&self.caller()).map_err(LoopError::File)?.size_bytes;
        let settings = self.settings();
        let mut size = file_bytes.saturating_sub(settings.offset_bytes);
        if settings.size_limit_bytes != 0 {
            size = size.min(settings.size_limit_bytes);
        }
        *self.size_bytes.lock() = size - size % SECTOR_SIZE as u64;
        Ok(())
    }

    /// Applies new settings (`LOOP_SET_STATUS64`): the offset, the size
    /// limit, the names and the flags programs may change.
    pub fn set_status(&self, requested: Settings) -> Result<(), LoopError> {
        {
            let mut settings = self.settings.lock();
            let flags = (settings.flags & !flag::CLEARABLE) | (requested.flags & flag::SETTABLE);
            *settings = Settings { flags, block_size_bytes: settings.block_size_bytes, ..requested };
        }
        self.update_size()
    }

    /// `LOOP_SET_BLOCK_SIZE`: a power of two from 512 bytes to a page.
    pub fn set_block_size(&self, block_size_bytes: u64) -> Result<(), LoopError> {
        if !is_valid_block_size(block_size_bytes) {
            return Err(LoopError::Invalid);
        }
        self.settings.lock().block_size_bytes = block_size_bytes as u32;
        Ok(())
    }

    /// `LOOP_SET_DIRECT_IO`: rosv's files have one copy of their bytes,
    /// so the mark only changes what the flags report.
    pub fn set_direct_io(&self, is_direct: bool) {
        let mut settings = self.settings.lock();
        if is_direct {
            settings.flags |= flag::DIRECT_IO;
        } else {
            settings.flags &= !flag::DIRECT_IO;
        }
    }

    /// The byte of the file where `sector` starts, checked against the
    /// device's size for `length` bytes.
    fn file_offset(&self, sector: u64, length: usize) -> Result<u64, DeviceError> {
        if !length.is_multiple_of(SECTOR_SIZE) {
            return Err(DeviceError::OutOfRange);
        }
        let start = sector.checked_mul(SECTOR_SIZE as u64).ok_or(DeviceError::OutOfRange)?;
        let end = start.checked_add(length as u64).ok_or(DeviceError::OutOfRange)?;
        if end > self.size_bytes() {
            return Err(DeviceError::OutOfRange);
        }
        Ok(start + self.settings.lock().offset_bytes)
    }
}

/// Whether `bytes` is a block size a loop device takes.
pub fn is_valid_block_size(bytes: u64) -> bool {
    bytes.is_power_of_two() && (SECTOR_SIZE as u64..=4096).contains(&bytes)
}

fn file_error(error: FsError) -> DeviceError {
    match error {
        FsError::ReadOnly => DeviceError::ReadOnly,
        _ => DeviceError::Io,
    }
}

impl BlockDevice for Backing {
    fn sector_count(&self) -> u64 {
        self.size_bytes() / SECTOR_SIZE as u64
    }

    fn is_read_only(&self) -> bool {
        self.settings.lock().flags & flag::READ_ONLY != 0
    }

    fn read_sectors(&self, sector: u64, buffer: &mut [u8]) -> Result<(), DeviceError> {
        let started_ns = self.machine.monotonic_ns();
        let mut position = self.file_offset(sector, buffer.len())?;
        let caller = self.caller();
        let mut done = 0;
        while done < buffer.len() {
            let length = self.node.read_at(&caller, position, &mut buffer[done..]).map_err(file_error)?;
            if length == 0 {
                // The file shrank under the device: what is gone reads as
                // zeros, as a hole would.
                buffer[done..].fill(0);
                break;
            }
            done += length;
            position += length as u64;
        }
        self.account(false, buffer.len(), started_ns);
        Ok(())
    }

    fn write_sectors(&self, sector: u64, buffer: &[u8]) -> Result<(), DeviceError> {
        if self.is_read_only() {
            return Err(DeviceError::ReadOnly);
        }
        let started_ns = self.machine.monotonic_ns();
        let mut position = self.file_offset(sector, buffer.len())?;
        let caller = self.caller();
        let mut done = 0;
        while done < buffer.len() {
            let length = self.node.write_at(&caller, position, &buffer[done..]).map_err(file_error)?;
            if length == 0 {
                return Err(DeviceError::Io);
            }
            done += length;
            position += length as u64;
        }
        self.account(true, buffer.len(), started_ns);
        Ok(())
    }

    fn flush(&self) -> Result<(), DeviceError> {
        self.node.sync(&self.caller()).map_err(file_error)?;
        self.statistics.lock().0.flushes += 1;
        Ok(())
    }

    fn statistics(&self) -> IoStatistics {
        self.statistics.lock().0
    }
}

/// One `/dev/loopN`.
#[derive(Debug)]
pub struct LoopDevice {
    number: u32,
    backing: Mutex<Option<Arc<Backing>>>,
}

impl LoopDevice {
    /// An unbound `/dev/loop<number>`.
    pub fn new(number: u32) -> Arc<LoopDevice> {
        Arc::new(LoopDevice { number, backing: Mutex::new(None) })
    }

    /// N of `/dev/loopN`.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The file the device is bound to, if any.
    pub fn backing(&self) -> Option<Arc<Backing>> {
        self.backing.lock().clone()
    }

    /// Whether the device is bound.
    pub fn is_bound(&self) -> bool {
        self.backing.lock().is_some()
    }

    /// Binds the device to `file` (`LOOP_SET_FD`, `LOOP_CONFIGURE`):
    /// read-only when the file or the device's descriptor is, or when
    /// `settings` asks. `EBUSY` if bound already.
    pub fn bind(
        &self,
        file: Arc<OpenFile>,
        is_device_writable: bool,
        mut settings: Settings,
    ) -> Result<Arc<Backing>, LoopError> {
        let machine = crate::machine::installed().ok_or(LoopError::Invalid)?;
        let node = file.data().cloned().ok_or(LoopError::Invalid)?;
        let mut slot = self.backing.lock();
        if slot.is_some() {
            return Err(LoopError::Busy);
        }
        if !file.is_writable() || !is_device_writable {
            settings.flags |= flag::READ_ONLY;
        }
        let backing = Arc::new(Backing {
            file,
            node,
            machine,
            settings: Mutex::new(settings),
            size_bytes: Mutex::new(0),
            statistics: Mutex::new((IoStatistics::default(), 0, 0)),
        });
        backing.update_size()?;
        *slot = Some(backing.clone());
        Ok(backing)
    }

    /// Unbinds the device (`LOOP_CLR_FD`). A filesystem mounted from it
    /// keeps the file until it is unmounted. `ENXIO` if unbound.
    pub fn unbind(&self) -> Result<(), LoopError> {
        let backing = self.backing.lock().take().ok_or(LoopError::NotBound)?;
        // Make what was written durable in the file before letting go.
        let _ = backing.flush();
        Ok(())
    }
}

/// Every loop device, by number: what `/dev/loop-control` manages.
#[derive(Debug, Default)]
pub struct LoopDevices {
    devices: Mutex<BTreeMap<u32, Arc<LoopDevice>>>,
}

/// The loop devices Linux makes at boot (`CONFIG_BLK_DEV_LOOP_MIN_COUNT`).
pub const INITIAL_COUNT: u32 = 8;
/// The most loop devices (minor numbers 0 to 1 << 20).
pub const MAXIMUM_NUMBER: u32 = 1 << 20;

impl LoopDevices {
    /// An empty set.
    pub fn new() -> Self {
        LoopDevices::default()
    }

    /// The device numbered `number`.
    pub fn get(&self, number: u32) -> Option<Arc<LoopDevice>> {
        self.devices.lock().get(&number).cloned()
    }

    /// Every device, by number.
    pub fn all(&self) -> alloc::vec::Vec<Arc<LoopDevice>> {
        self.devices.lock().values().cloned().collect()
    }

    /// `LOOP_CTL_ADD`: a new device numbered `number`, or the lowest free
    /// number when `None`.
    pub fn add(&self, number: Option<u32>) -> Result<Arc<LoopDevice>, LoopError> {
        let mut devices = self.devices.lock();
        let number = match number {
            Some(number) if number >= MAXIMUM_NUMBER => return Err(LoopError::Invalid),
            Some(number) if devices.contains_key(&number) => return Err(LoopError::Exists),
            Some(number) => number,
            None => {
                (0..MAXIMUM_NUMBER).find(|number| !devices.contains_key(number)).ok_or(LoopError::Busy)?
            }
        };
        let device = LoopDevice::new(number);
        devices.insert(number, device.clone());
        Ok(device)
    }

    /// `LOOP_CTL_REMOVE`: `ENODEV` if there is no such device, `EBUSY` if
    /// it is bound or `is_in_use` says someone holds it.
    pub fn remove(
        &self,
        number: u32,
        is_in_use: impl Fn(&Arc<LoopDevice>) -> bool,
    ) -> Result<Arc<LoopDevice>, LoopError> {
        let mut devices = self.devices.lock();
        let device = devices.get(&number).ok_or(LoopError::NoDevice)?;
        if device.is_bound() || is_in_use(device) {
            return Err(LoopError::Busy);
        }
        devices.remove(&number).ok_or(LoopError::NoDevice)
    }

    /// `LOOP_CTL_GET_FREE`: the lowest-numbered unbound device, made if
    /// every one is bound.
    pub fn free(&self) -> Result<Arc<LoopDevice>, LoopError> {
        if let Some(device) = self.devices.lock().values().find(|device| !device.is_bound()) {
            return Ok(device.clone());
        }
        self.add(None)
    }
}

#[cfg(test)]
mod tests;
