//! cloud-init's NoCloud data source: a `cidata` disk's settings.
//!
//! [`read`] checks a disk's ISO9660 label (see [`iso9660`]), reads its
//! `meta-data` and `user-data` files and returns the [`Settings`] they
//! give (see [`settings`], which parses them with [`yaml`]).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod iso9660;
pub mod settings;
pub mod yaml;

use alloc::string::String;

pub use iso9660::{Disk, DiskError};
pub use settings::{Settings, WriteFile};

/// The volume label of a NoCloud disk.
pub const LABEL: &str = "cidata";

/// Why a `cidata` disk's settings cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The disk's structures are damaged.
    Iso9660(iso9660::Iso9660Error),
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
            Error::Settings { file, what } => write!(formatter, "{file}: {what}"),
        }
    }
}

/// The settings of `disk` if it is an ISO9660 disk labelled `cidata`;
/// `None` for any other disk.
pub fn read(disk: &dyn Disk) -> Result<Option<Settings>, Error> {
    let Some(volume) = iso9660::Volume::open(disk) else {
        return Ok(None);
    };
    if !volume.label().eq_ignore_ascii_case(LABEL) {
        return Ok(None);
    }
    let read_file = |name: &'static str| -> Result<String, Error> {
        let bytes = volume.read_root_file(disk, name).map_err(Error::Iso9660)?.unwrap_or_default();
        String::from_utf8(bytes).map_err(|_| Error::Settings { file: name, what: "not UTF-8".into() })
    };
    let meta_data = read_file("meta-data")?;
    let user_data = read_file("user-data")?;
    Settings::parse(&meta_data, &user_data).map(Some)
}
