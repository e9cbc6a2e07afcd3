//! The EFI system partition: a FAT32 volume written by mtools on a file.
//!
//! mtools' `mformat` and `mcopy` work on an image file directly, without
//! root, a loop device or a mount. FAT32 is what the UEFI specification
//! asks of a system partition on a disk (UEFI 2.10 §13.3.1.1), so the
//! volume is at least 64 MiB, which FAT32's minimum cluster count needs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The smallest volume: FAT32 needs 65525 clusters, 32 MiB of 512-byte ones.
const MINIMUM_SIZE: u64 = 64 << 20;
/// Room besides the files: FATs, directories, and space to edit `grub.cfg`
/// or add a file later.
const SLACK: u64 = 16 << 20;
/// The volume label.
const LABEL: &str = "ROSV";

/// A written FAT volume.
#[derive(Debug)]
pub struct Volume {
    /// Its image file.
    pub path: PathBuf,
    /// Its size in bytes (a whole number of MiB).
    pub size_bytes: u64,
}

/// Writes a FAT32 volume with serial number `serial` at `path`, holding
/// `files` (host file, absolute path in the volume); directories are made
/// as needed.
pub fn write(path: &Path, serial: u32, files: &[(PathBuf, &str)]) -> Result<Volume> {
    let mut contents = 0u64;
    for (host, _) in files {
        let metadata = std::fs::metadata(host).with_context(|| format!("cannot read {}", host.display()))?;
        contents += metadata.len().div_ceil(4096) * 4096;
    }
    let size_bytes = (contents + contents / 16 + SLACK).max(MINIMUM_SIZE).div_ceil(1 << 20) << 20;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(size_bytes).with_context(|| format!("cannot size {}", path.display()))?;
    drop(file);
    let image = path.as_os_str();
    mtools("mformat", |command| {
        command.arg("-i").arg(image).args(["-F", "-v", LABEL, "-N", &format!("{serial:08x}"), "::"]);
    })?;
    let mut directories: Vec<String> = Vec::new();
    for (_, target) in files {
        let mut prefix = String::new();
        let parents: Vec<&str> = target.trim_start_matches('/').split('/').collect();
        for part in &parents[..parents.len().saturating_sub(1)] {
            prefix.push('/');
            prefix.push_str(part);
            if !directories.contains(&prefix) {
                directories.push(prefix.clone());
            }
        }
    }
    for directory in &directories {
        mtools("mmd", |command| {
            command.arg("-i").arg(image).arg(format!("::{directory}"));
        })?;
    }
    for (host, target) in files {
        mtools("mcopy", |command| {
            command.arg("-i").arg(image).arg(host).arg(format!("::{target}"));
        })?;
    }
    Ok(Volume { path: path.to_path_buf(), size_bytes })
}

/// Runs one mtools program, set up by `arguments`.
fn mtools(program: &str, arguments: impl FnOnce(&mut Command)) -> Result<()> {
    let Some(path) = crate::host::find_program(program) else {
        bail!("{program} was not found; install mtools (on Debian: apt-get install mtools)");
    };
    let mut command = Command::new(path);
    arguments(&mut command);
    // mtools reads ~/.mtoolsrc and /etc/mtools.conf; skip the check that
    // refuses volumes whose geometry does not match a floppy.
    command.env("MTOOLS_SKIP_CHECK", "1");
    let output = command.output().with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!("{program} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}
