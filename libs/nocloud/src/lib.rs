//! cloud-init's NoCloud data source: a `cidata` disk's settings.
//!
//! [`read`] checks a disk's label, ISO9660 (see [`iso9660`]) or FAT (vfat,
//! read by `rosv_fat`), the two forms cloud-init's NoCloud source
//! accepts, reads its `meta-data` and `user-data` files and returns the
//! [`Settings`] they give (see [`settings`], which parses them with
//! [`yaml`]).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod iso9660;
pub mod settings;
pub mod yaml;

use alloc::string::String;
use alloc::vec::Vec;

pub use iso9660::{Disk, DiskError};
pub use settings::{Settings, WriteFile};

/// The volume label of a NoCloud disk.
pub const LABEL: &str = "cidata";

/// Why a `cidata` disk's settings cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The disk's structures are damaged.
    Iso9660(iso9660::Iso9660Error),
    /// The FAT volume's structures are damaged.
    Fat(rosv_fat::FatError),
    /// `meta-data` or `user-data` is not the YAML expected.
    Settings {
        /// The file.
        file: &'static str,
        /// What is wrong.
        what: String,
    },
}

impl core::fmt::Display for Error {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Iso9660(error) => write!(formatter, "{error}"),
            Error::Fat(error) => write!(formatter, "{error}"),
            Error::Settings { file, what } => write!(formatter, "{file}: {what}"),
        }
    }
}

/// The settings of `disk` if it is an ISO9660 or FAT disk labelled
/// `cidata` (in any case, as cloud-init compares it); `None` for any other
/// disk.
pub fn read(disk: &dyn Disk) -> Result<Option<Settings>, Error> {
    if let Some(volume) = iso9660::Volume::open(disk) {
        if !volume.label().eq_ignore_ascii_case(LABEL) {
            return Ok(None);
        }
        return settings(|name| volume.read_root_file(disk, name).map_err(Error::Iso9660)).map(Some);
    }
    let fat_disk = FatDisk(disk);
    let Some(volume) = rosv_fat::Volume::open(&fat_disk) else {
        return Ok(None);
    };
    if !volume.label(&fat_disk).map_err(Error::Fat)?.eq_ignore_ascii_case(LABEL) {
        return Ok(None);
    }
    settings(|name| volume.read_root_file(&fat_disk, name).map_err(Error::Fat)).map(Some)
}

/// The settings of the files `read_file` gives (a missing one is empty).
fn settings(read_file: impl Fn(&'static str) -> Result<Option<Vec<u8>>, Error>) -> Result<Settings, Error> {
    let text = |name: &'static str| -> Result<String, Error> {
        let bytes = read_file(name)?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| Error::Settings { file: name, what: "not UTF-8".into() })
    };
    let meta_data = text("meta-data")?;
    let user_data = text("user-data")?;
    Settings::parse(&meta_data, &user_data)
}

/// A [`Disk`] as the FAT reader reads it.
struct FatDisk<'a>(&'a dyn Disk);

impl rosv_fat::Disk for FatDisk<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), rosv_fat::DiskError> {
        self.0.read(offset, buffer).map_err(|_| rosv_fat::DiskError)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::process::Command;
    use std::vec::Vec;

    use super::*;

    struct Bytes(Vec<u8>);

    impl Disk for Bytes {
        fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
            let start = usize::try_from(offset).map_err(|_| DiskError)?;
            buffer.copy_from_slice(self.0.get(start..start + buffer.len()).ok_or(DiskError)?);
            Ok(())
        }
    }

    /// A vfat volume labelled `label` holding `meta-data` and `user-data`,
    /// written as `cloud-localds --filesystem=vfat` does (mkfs.vfat, mcopy).
    fn vfat_disk(test: &str, label: &str) -> Option<Vec<u8>> {
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let image = scratch.path().join("cidata.img");
        let made = Command::new("mkfs.vfat").args(["-C", "-n", label]).arg(&image).arg("1024").output();
        if !made.as_ref().is_ok_and(|output| output.status.success()) {
            std::println!("SKIPPED {test}: mkfs.vfat (dosfstools) is not installed");
            return None;
        }
        for (name, text) in [
            ("meta-data", "local-hostname: from-vfat\n"),
            ("user-data", "#cloud-config\nwrite_files:\n  - path: /tmp/a\n    content: b\n"),
        ] {
            let host = scratch.path().join(name);
            std::fs::write(&host, text).expect("write a settings file");
            let copied = Command::new("mcopy")
                .arg("-i")
                .arg(&image)
                .arg(&host)
                .arg(std::format!("::{name}"))
                .env("MTOOLS_SKIP_CHECK", "1")
                .output();
            if !copied.as_ref().is_ok_and(|output| output.status.success()) {
                std::println!("SKIPPED {test}: mcopy (mtools) is not installed");
                return None;
            }
        }
        Some(std::fs::read(&image).expect("read the volume"))
    }

    #[test]
    fn reads_a_vfat_cidata_disk() {
        let Some(bytes) = vfat_disk("reads_a_vfat_cidata_disk", "CIDATA") else { return };
        let settings = read(&Bytes(bytes)).unwrap().expect("a cidata disk");
        assert_eq!(settings.hostname.as_deref(), Some("from-vfat"));
        assert_eq!(settings.files.len(), 1);
    }

    #[test]
    fn a_vfat_disk_with_another_label_is_not_cidata() {
        let Some(bytes) = vfat_disk("a_vfat_disk_with_another_label_is_not_cidata", "DATA") else { return };
        assert_eq!(read(&Bytes(bytes)).unwrap(), None);
    }
}
