//! Volumes: ext4 disk images and host directories mounted in the guest
//! (`rosv run --volume SOURCE:/data[:ro]`), and `rosv volume create`.
//!
//! A volume file becomes one more virtio disk after the `--disk` ones,
//! writable unless `:ro`, and the kernel mounts it with
//! `--mount-fs=ext4,/dev/vdX,TARGET`. A directory is shared over 9P
//! (QEMU's virtio-9p with `security_model=none`: the guest's changes are
//! made by the QEMU process, so files keep the invoking user's ownership
//! on the host, and the guest sees the host's owners and modes as they
//! are); the kernel mounts it with `--mount-fs=9p,TAG,TARGET[,ro]`. Only
//! QEMU has a 9P device: the built-in monitor and Firecracker refuse
//! directories.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::vm::{Hypervisor, VmConfig};

/// A `--volume` argument: what to mount where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host file (an ext4 image).
    pub source: PathBuf,
    /// The absolute guest path it appears at.
    pub target: String,
    /// Whether the guest may only read it (`:ro`).
    pub is_read_only: bool,
}

/// A disk that carries a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDisk {
    /// The image file.
    pub path: PathBuf,
    /// Whether the guest may only read it.
    pub is_read_only: bool,
}

/// A host directory shared with the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDirectory {
    /// The host directory.
    pub path: PathBuf,
    /// The virtio-9p mount tag the kernel finds it by.
    pub tag: String,
    /// Whether the guest may only read it.
    pub is_read_only: bool,
}

/// Parses `SOURCE:TARGET[:ro|:rw]`.
pub fn parse_volume(text: &str) -> Result<Volume, String> {
    let (rest, is_read_only) = match text.rsplit_once(':') {
        Some((rest, "ro")) => (rest, true),
        Some((rest, "rw")) => (rest, false),
        _ => (text, false),
    };
    let Some((source, target)) = rest.rsplit_once(':') else {
        return Err(format!("\"{text}\" is not SOURCE:TARGET[:ro], e.g. data.ext4:/data"));
    };
    if source.is_empty() {
        return Err(format!("\"{text}\": the source (a file before the colon) is empty"));
    }
    if !target.starts_with('/') || target == "/" {
        return Err(format!("\"{text}\": give the guest path as an absolute path other than /, e.g. /data"));
    }
    if target.contains([',', ' ', '\t', '\n', '"', '\'', '\\']) {
        return Err(format!("\"{text}\": the guest path may not hold commas, blanks, quotes or backslashes"));
    }
    Ok(Volume { source: PathBuf::from(source), target: target.to_string(), is_read_only })
}

/// The guest's name of disk `index` (0 is the root disk, `vda`), as the
/// kernel names virtio disks.
fn disk_name(index: usize) -> String {
    let letter = char::from(b'a' + (index % 26) as u8);
    if index < 26 {
        format!("vd{letter}")
    } else {
        format!("vd{}{letter}", char::from(b'a' + (index / 26 - 1) as u8))
    }
}

/// The ext4 magic number's offset (in the superblock at byte 1024).
const MAGIC_OFFSET: usize = 1024 + 0x38;

/// Whether `path` starts like an ext4 (or ext2/3) filesystem.
fn is_ext4(path: &Path) -> Result<bool> {
    let mut start = [0u8; MAGIC_OFFSET + 2];
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if file.read_exact(&mut start).is_err() {
        return Ok(false);
    }
    Ok(start[MAGIC_OFFSET..] == [0x53, 0xef])
}

/// Attaches `volumes` to `config` and has the kernel mount them.
pub fn attach(config: &mut VmConfig, volumes: &[Volume], hypervisor: Hypervisor) -> Result<()> {
    let mut options = Vec::new();
    for volume in volumes {
        let source = &volume.source;
        let metadata = std::fs::metadata(source)
            .with_context(|| format!("--volume {}: no such file", source.display()))?;
        if metadata.is_dir() {
            let monitor = match hypervisor {
                Hypervisor::Qemu => None,
                Hypervisor::Builtin => Some("the built-in monitor"),
                Hypervisor::Firecracker => Some("Firecracker"),
            };
            if let Some(monitor) = monitor {
                bail!(
                    "--volume {}: {monitor} cannot share host directories (it has no virtio-9p device); run with \
                     --hypervisor qemu, or give an ext4 image (rosv volume create FILE --size 1G makes one)",
                    source.display()
                );
            }
            let tag = format!("rosv{}", config.shared_directories.len());
            let read_only = if volume.is_read_only { ",ro" } else { "" };
            options.push(format!("--mount-fs=9p,{tag},{}{read_only}", volume.target));
            let path = source.canonicalize().with_context(|| format!("--volume {}", source.display()))?;
            config.shared_directories.push(SharedDirectory { path, tag, is_read_only: volume.is_read_only });
            continue;
        }
        if !is_ext4(source)? {
            bail!(
                "--volume {}: not an ext4 filesystem; make one with rosv volume create FILE --size 1G (or mkfs.ext4)",
                source.display()
            );
        }
        if hypervisor == Hypervisor::Builtin && !volume.is_read_only {
            bail!(
                "--volume {}:{}: the built-in monitor's disks are read-only; add :ro, or run with --hypervisor qemu \
                 or firecracker",
                source.display(),
                volume.target
            );
        }
        let index = 1 + config.disks.len() + config.volume_disks.len();
        config.volume_disks.push(VolumeDisk { path: source.clone(), is_read_only: volume.is_read_only });
        options.push(format!("--mount-fs=ext4,/dev/{},{}", disk_name(index), volume.target));
    }
    config.add_kernel_options(&options);
    Ok(())
}

/// Parses a size in bytes: a number with an optional K, M, G or T suffix
/// (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((index, 'K' | 'k')) => (&text[..index], 10),
        Some((index, 'M' | 'm')) => (&text[..index], 20),
        Some((index, 'G' | 'g')) => (&text[..index], 30),
        Some((index, 'T' | 't')) => (&text[..index], 40),
        _ => (text, 0),
    };
    let value: u64 = digits.parse().map_err(|_| format!("\"{text}\" is not a size like 512M or 1G"))?;
    let bytes =
        value.checked_shl(shift).filter(|bytes| bytes >> shift == value).ok_or("the size is too large")?;
    if bytes < 1 << 20 {
        return Err(format!("{text} is too small for an ext4 filesystem; give at least 1M"));
    }
    Ok(bytes)
}

/// The host's `mkfs.ext4`, found on the path or in the system directories.
fn mkfs() -> Option<PathBuf> {
    let directories: Vec<PathBuf> =
        std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default();
    directories
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|directory: PathBuf| directory.join("mkfs.ext4"))
        .find(|candidate| candidate.is_file())
}

/// Makes `path` an empty ext4 filesystem of `size_bytes` with the host's
/// `mkfs.ext4`; an existing file is left alone.
pub fn create(path: &Path, size_bytes: u64) -> Result<()> {
    let Some(mkfs) = mkfs() else {
        bail!("mkfs.ext4 is not installed; install e2fsprogs (e.g. apt-get install e2fsprogs)");
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (rosv never overwrites a volume)", path.display()))?;
    let made =
        file.set_len(size_bytes).with_context(|| format!("cannot size {}", path.display())).and_then(|()| {
            let output = Command::new(&mkfs)
                .args(["-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
                .arg(path)
                .output()
                .with_context(|| format!("cannot run {}", mkfs.display()))?;
            if !output.status.success() {
                bail!("mkfs.ext4 failed: {}", String::from_utf8_lossy(&output.stderr).trim());
            }
            Ok(())
        });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_parse_with_and_without_read_only() {
        assert_eq!(
            parse_volume("data.ext4:/data").unwrap(),
            Volume { source: "data.ext4".into(), target: "/data".into(), is_read_only: false }
        );
        assert_eq!(
            parse_volume("/images/a:b.ext4:/srv/db:ro").unwrap(),
            Volume { source: "/images/a:b.ext4".into(), target: "/srv/db".into(), is_read_only: true }
        );
        assert!(!parse_volume("x:/y:rw").unwrap().is_read_only);
        assert!(parse_volume("data.ext4").is_err());
        assert!(parse_volume("data.ext4:relative").is_err());
        assert!(parse_volume("data.ext4:/").is_err());
        assert!(parse_volume(":/data").is_err());
        assert!(parse_volume("data.ext4:/a,b").is_err());
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        assert!(parse_size("12K").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn disks_are_named_as_the_kernel_names_them() {
        assert_eq!(disk_name(0), "vda");
        assert_eq!(disk_name(1), "vdb");
        assert_eq!(disk_name(26), "vdaa");
    }
}
