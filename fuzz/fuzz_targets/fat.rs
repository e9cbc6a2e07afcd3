//! The FAT reader on arbitrary disks: opening, the label and a root file
//! read are errors or values, never panics or hangs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosv_fat::{Disk, DiskError, Volume};

struct Bytes<'a>(&'a [u8]);

impl Disk for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let end = start.checked_add(buffer.len()).ok_or(DiskError)?;
        buffer.copy_from_slice(self.0.get(start..end).ok_or(DiskError)?);
        Ok(())
    }
}

fuzz_target!(|bytes: &[u8]| {
    let disk = Bytes(bytes);
    if let Some(volume) = Volume::open(&disk) {
        let _ = volume.label(&disk);
        let _ = volume.read_root_file(&disk, "user-data");
    }
});
