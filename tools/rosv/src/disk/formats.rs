//! Disk formats: converting the raw disk, and recognizing a disk to boot.
//!
//! qcow2 (QEMU, OpenStack), VMDK (VMware) and VDI (VirtualBox) come from
//! `qemu-img convert`; Google Compute Engine imports a gzip'd tar holding
//! one file, `disk.raw`, whose size is a whole number of GiB.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use super::gpt;
use super::{BootDisk, Firmware};

/// A bootable disk's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiskFormat {
    /// A raw disk image (QEMU, and `dd` to a real disk).
    Raw,
    /// QEMU's copy-on-write format (QEMU, OpenStack).
    Qcow2,
    /// VMware's format (monolithic sparse).
    Vmdk,
    /// VirtualBox's format (dynamically allocated).
    Vdi,
    /// Google Compute Engine's import format: `disk.raw` in a `.tar.gz`.
    Gce,
}

/// GCE wants the raw disk's size in whole GiB.
const GCE_SIZE_UNIT: u64 = 1 << 30;
/// What `qemu-img` comes in.
const QEMU_IMG_PACKAGE: &str = "qemu-utils";

/// Turns the raw disk at `raw` into `format` at `output` (nothing to do
/// for [`DiskFormat::Raw`], which was written there).
pub fn convert(raw: &Path, format: DiskFormat, output: &Path) -> Result<()> {
    let name = match format {
        DiskFormat::Raw => return Ok(()),
        DiskFormat::Gce => return write_gce(raw, output),
        DiskFormat::Qcow2 => "qcow2",
        DiskFormat::Vmdk => "vmdk",
        DiskFormat::Vdi => "vdi",
    };
    let mut command = qemu_img()?;
    command.args(["convert", "-f", "raw", "-O", name]).arg(raw).arg(output);
    run(&mut command, "qemu-img convert")?;
    Ok(())
}

/// Writes `raw`, padded to whole GiB, as `disk.raw` in a gzip'd tar in
/// GNU format at `output`.
fn write_gce(raw: &Path, output: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(raw)
        .with_context(|| format!("cannot open {}", raw.display()))?;
    let size = file.metadata().with_context(|| format!("cannot read {}", raw.display()))?.len();
    file.set_len(size.div_ceil(GCE_SIZE_UNIT) * GCE_SIZE_UNIT)
        .with_context(|| format!("cannot pad {}", raw.display()))?;
    drop(file);
    let target = File::create(output).with_context(|| format!("cannot create {}", output.display()))?;
    let encoder = flate2::write::GzEncoder::new(target, flate2::Compression::fast());
    let mut archive = tar::Builder::new(encoder);
    let mut input = File::open(raw).with_context(|| format!("cannot read {}", raw.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(input.metadata().with_context(|| format!("cannot read {}", raw.display()))?.len());
    header.set_mode(0o644);
    header.set_mtime(0);
    archive
        .append_data(&mut header, "disk.raw", &mut input)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let encoder = archive.into_inner().with_context(|| format!("cannot write {}", output.display()))?;
    encoder.finish().with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}

/// Checks that `path` is a disk `firmware` can boot and names its format:
/// a format QEMU reads (told by its first bytes; `qemu-img info` checks the
/// others' structure) whose first sector carries the BIOS boot signature,
/// or, for UEFI, whose GPT lists an EFI system partition.
pub fn inspect(path: &Path, firmware: Firmware) -> Result<BootDisk> {
    let mut head = [0u8; 512];
    let mut file = File::open(path).with_context(|| format!("cannot open the disk {}", path.display()))?;
    let length =
        read_up_to(&mut file, &mut head).with_context(|| format!("cannot read {}", path.display()))?;
    let format = match &head[..length] {
        [0x1f, 0x8b, ..] => {
            bail!("{} is compressed (a GCE disk tarball?); extract its disk.raw and run that", path.display())
        }
        [b'Q', b'F', b'I', 0xfb, ..] => "qcow2",
        [b'K', b'D', b'M', b'V', ..] => "vmdk",
        bytes if bytes.starts_with(b"# Disk DescriptorFile") => "vmdk",
        bytes if bytes.get(0x40..0x44) == Some(&0xbeda_107fu32.to_le_bytes()) => "vdi",
        _ => "raw",
    };
    let sectors = if format == "raw" {
        let mut sectors = vec![0u8; 34 * gpt::SECTOR_SIZE as usize];
        let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let length =
            read_up_to(&mut file, &mut sectors).with_context(|| format!("cannot read {}", path.display()))?;
        if length < gpt::SECTOR_SIZE as usize {
            bail!("{} is {length} bytes, less than one sector: not a disk image", path.display());
        }
        sectors.truncate(length);
        sectors
    } else {
        first_sectors(path, format)?
    };
    let found = gpt::inspect(&sectors);
    let name = path.display();
    match firmware {
        Firmware::Bios if !found.has_boot_signature => bail!(
            "{name} ({format}) cannot boot with BIOS: its first sector lacks the boot signature 0x55AA; \
             write a bootable disk with rosv build --format raw|qcow2|vmdk|vdi"
        ),
        Firmware::Uefi if !found.has_efi_system_partition => bail!(
            "{name} ({format}) cannot boot with UEFI: it has no valid GPT listing an EFI system partition; \
             write a bootable disk with rosv build --format raw|qcow2|vmdk|vdi"
        ),
        _ => Ok(BootDisk { path: path.to_path_buf(), format: format.to_string(), firmware }),
    }
}

/// The first 34 sectors of a disk in `format`, read through `qemu-img`
/// (whose `info` also refuses a damaged file).
fn first_sectors(path: &Path, format: &str) -> Result<Vec<u8>> {
    let mut info = qemu_img()?;
    info.args(["info", "-f", format]).arg(path);
    run(&mut info, "qemu-img info")
        .with_context(|| format!("{} is not a readable {format} disk", path.display()))?;
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let sectors = scratch.path().join("sectors");
    let mut dd = qemu_img()?;
    dd.args(["dd", "-f", format, "-O", "raw", "bs=512", "count=34"])
        .arg(format!("if={}", path.display()))
        .arg(format!("of={}", sectors.display()));
    run(&mut dd, "qemu-img dd")
        .with_context(|| format!("cannot read the first sectors of {}", path.display()))?;
    std::fs::read(&sectors).with_context(|| format!("cannot read {}", sectors.display()))
}

fn read_up_to(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            length => filled += length,
        }
    }
    Ok(filled)
}

fn qemu_img() -> Result<Command> {
    match crate::host::find_program("qemu-img") {
        Some(path) => Ok(Command::new(path)),
        None => bail!("qemu-img was not found; install it (on Debian: apt-get install {QEMU_IMG_PACKAGE})"),
    }
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}
