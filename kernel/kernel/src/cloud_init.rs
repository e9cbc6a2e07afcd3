//! cloud-init's NoCloud data source at boot: a disk labelled `cidata`.
//!
//! [`apply`] looks at each disk for an ISO9660 or FAT volume labelled `cidata`
//! (`rosv_nocloud` reads its `meta-data` and `user-data`), sets the host
//! name and writes the files it asks for (making missing directories),
//! and hands back the environment variables and the commands to run
//! before the application's. A damaged disk is reported and skipped.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use rosv_core::device::{BlockDevice, SECTOR_SIZE};
use rosv_core::vfs::file::flags::{O_CREAT, O_TRUNC, O_WRONLY};
use rosv_core::vfs::{Caller, Vfs};
use rosv_nocloud::{Disk, DiskError, Settings};

use crate::application;

/// What the boot adds from the disk's settings.
#[derive(Debug, Default)]
pub struct Applied {
    /// `NAME=value` entries for the application's environment.
    pub environment: Vec<Vec<u8>>,
    /// Commands to run before the application's.
    pub commands: Vec<Vec<String>>,
}

/// A block device read at byte offsets.
struct ByteDisk<'a>(&'a dyn BlockDevice);

impl Disk for ByteDisk<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let sector_size = SECTOR_SIZE as u64;
        let first = offset / sector_size;
        let end = offset.checked_add(buffer.len() as u64).ok_or(DiskError)?;
        let last = end.div_ceil(sector_size);
        let count = usize::try_from(last - first).map_err(|_| DiskError)?;
        let mut sectors = vec![0u8; count * SECTOR_SIZE];
        self.0.read_sectors(first, &mut sectors).map_err(|_| DiskError)?;
        let skip = (offset - first * sector_size) as usize;
        buffer.copy_from_slice(&sectors[skip..skip + buffer.len()]);
        Ok(())
    }
}

/// Applies the first `cidata` disk's settings among `disks`; nothing if
/// there is none.
pub fn apply(disks: &[Arc<dyn BlockDevice>], vfs: &Vfs) -> Applied {
    for (index, disk) in disks.iter().enumerate() {
        match rosv_nocloud::read(&ByteDisk(disk.as_ref())) {
            Ok(None) => {}
            Ok(Some(settings)) => return apply_settings(&settings, vfs),
            Err(error) => {
                log::warn!("disk {index}: the cidata disk cannot be read ({error}); its settings are skipped")
            }
        }
    }
    Applied::default()
}

fn apply_settings(settings: &Settings, vfs: &Vfs) -> Applied {
    if let Some(name) = &settings.hostname
        && rosv_core::namespace::initial_uts().names().is_none_or(|names| names.set_host_name(name).is_err())
    {
        log::warn!("cidata: the host name {name} is too long; it is not set");
    }
    let caller = Caller::kernel(application::machine());
    for file in &settings.files {
        make_parents(vfs, &caller, &file.path);
        let written = vfs
            .open(&caller, &vfs.root(), &file.path, O_WRONLY | O_CREAT | O_TRUNC, file.permissions)
            .and_then(|open| open.write(&caller, &file.contents));
        if let Err(error) = written {
            log::warn!("cidata: cannot write {}: {error:?}", file.path);
        }
    }
    Applied {
        environment: settings
            .environment
            .iter()
            .map(|(name, value)| alloc::format!("{name}={value}").into_bytes())
            .collect(),
        commands: settings.commands.clone(),
    }
}

/// Makes the directories above `path` that are missing.
fn make_parents(vfs: &Vfs, caller: &Caller<'_>, path: &str) {
    let mut prefix = String::new();
    let components: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    for component in components.iter().take(components.len().saturating_sub(1)) {
        prefix.push('/');
        prefix.push_str(component);
        if vfs.resolve(caller, &vfs.root(), &prefix, true).is_err() {
            let _ = vfs.make_directory(caller, &vfs.root(), &prefix, 0o755);
        }
    }
}
