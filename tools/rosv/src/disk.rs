//! Bootable disk images: `rosv build --format raw|qcow2|vmdk|vdi|gce`.
//!
//! One GPT disk boots by itself with BIOS and with UEFI:
//!
//! | sectors | what |
//! |---|---|
//! | 0 | protective MBR, GRUB's `boot.img` as its boot code |
//! | 1–33 | GPT header and entries |
//! | 1 MiB | BIOS boot partition: GRUB's i386-pc core image |
//! | 2 MiB | EFI system partition (FAT32, label `ROSV`): `/EFI/BOOT/BOOTX64.EFI`, `/boot/grub/grub.cfg`, `/boot/kernel.elf`, `/boot/root.rofs`, `/boot/boot-config` |
//! | end | backup GPT |
//!
//! GRUB (`grub`) loads the kernel through Multiboot2 with the ROFS root and
//! the boot configuration (commands, environment) as modules, so the root
//! is held in memory as an initrd: the kernel needs no driver for the disk
//! itself, which is IDE, AHCI or SCSI on VirtualBox and VMware. The GPT is
//! `gpt`; the FAT volume is written by mtools on an image file (`esp`);
//! other formats are `qemu-img convert`s of the raw disk, and GCE's is the
//! raw disk, padded to whole GiB, as `disk.raw` in a gzip'd tar (`formats`).
//! [`inspect`] checks a disk given to `rosv run` before it boots.

mod esp;
mod formats;
mod gpt;
mod grub;

use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::boot_config;
use crate::image::Image;

pub use formats::{DiskFormat, inspect};

/// The kernel options every disk's kernel gets before the image's own: the
/// exit record, and the ROFS root under a writable overlay.
const BASE_OPTIONS: &[&str] = &[rosv_abi::exit::RECORD_OPTION, "--rootfs=overlay"];

/// How `rosv run` boots a disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Firmware {
    /// SeaBIOS, QEMU's own BIOS.
    Bios,
    /// OVMF, the UEFI firmware of Debian's `ovmf` package.
    Uefi,
}

/// A disk image `rosv run` boots through the firmware.
#[derive(Debug, Clone)]
pub struct BootDisk {
    /// The disk's file.
    pub path: PathBuf,
    /// Its format as QEMU names it (`raw`, `qcow2`, `vmdk`, `vdi`).
    pub format: String,
    /// The firmware that boots it.
    pub firmware: Firmware,
}

/// Writes the image directory `image` as a bootable disk of `format` at
/// `output`.
pub fn write(image: &Path, format: DiskFormat, output: &Path) -> Result<()> {
    let image = Image::open(image)?;
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (command_line, boot_config) = kernel_arguments(&image)?;
    let kernel =
        std::fs::read(&image.kernel).with_context(|| format!("cannot read {}", image.kernel.display()))?;
    if rosv_abi::multiboot2::find_header(&kernel).is_none() {
        bail!(
            "{} has no Multiboot2 header, which GRUB boots it through; use the kernel rosv carries",
            image.kernel.display()
        );
    }
    let seed = content_seed(&kernel, &image.root, &command_line)?;
    // GRUB finds the EFI system partition by its FAT volume serial.
    let volume_serial = (seed >> 32) as u32;
    let volume_id = format!("{:04x}-{:04x}", volume_serial >> 16, volume_serial & 0xffff);
    let loader = grub::Images::make(scratch.path(), &volume_id)?;
    let configuration = grub::configuration(&command_line, boot_config.is_some());
    let grub_cfg = scratch.path().join("grub.cfg");
    std::fs::write(&grub_cfg, configuration)
        .with_context(|| format!("cannot write {}", grub_cfg.display()))?;
    let mut files = vec![
        (loader.efi_image.clone(), "/EFI/BOOT/BOOTX64.EFI"),
        (grub_cfg, "/boot/grub/grub.cfg"),
        (image.kernel.clone(), "/boot/kernel.elf"),
        (image.root.clone(), "/boot/root.rofs"),
    ];
    if let Some(config) = &boot_config {
        files.push((config.path().to_path_buf(), "/boot/boot-config"));
    }
    let partition = esp::write(&scratch.path().join("esp.img"), volume_serial, &files)?;

    let layout = gpt::Layout::new(
        &[
            (gpt::BIOS_BOOT, "BIOS boot", grub::CORE_IMAGE_MAX),
            (gpt::EFI_SYSTEM, "EFI system", partition.size_bytes),
        ],
        seed,
    );
    let core_sector = layout.partitions[0].first_sector;
    let raw = match format {
        DiskFormat::Raw => output.to_path_buf(),
        _ => scratch.path().join("disk.raw"),
    };
    let mut disk = File::create(&raw).with_context(|| format!("cannot create {}", raw.display()))?;
    disk.set_len(layout.size_bytes()).with_context(|| format!("cannot size {}", raw.display()))?;
    let write_at = |bytes: &[u8], offset: u64| {
        disk.write_all_at(bytes, offset).with_context(|| format!("cannot write {}", raw.display()))
    };
    for (offset, bytes) in layout.tables(&grub::bios_boot_code(&loader.boot_image, core_sector)) {
        write_at(&bytes, offset)?;
    }
    write_at(&grub::place_core_image(&loader.core_image, core_sector), layout.partitions[0].offset())?;
    copy_into(&partition.path, &mut disk, layout.partitions[1].offset())?;
    disk.sync_all().with_context(|| format!("cannot write {}", raw.display()))?;
    drop(disk);
    formats::convert(&raw, format, output)
}

/// The kernel command line the disk's `grub.cfg` passes, and the boot
/// configuration module (the image's commands and environment).
fn kernel_arguments(image: &Image) -> Result<(String, Option<boot_config::BootConfigFile>)> {
    let split = boot_config::split_options(&image.options)?;
    let mut words: Vec<String> = BASE_OPTIONS.iter().map(|word| word.to_string()).collect();
    for word in split.options.split_whitespace() {
        if !grub::passes_unchanged(word) {
            bail!(
                "the image's kernel option {word} would be changed by GRUB's command line (quotes, spaces \
                 and $ are its syntax); give the value without them"
            );
        }
        words.push(word.to_string());
    }
    let command_line = words.join(" ");
    boot_config::check_command_line(&command_line)?;
    let commands = boot_config::parse_commands(&image.command)?;
    if commands.is_empty() {
        bail!("the image has no default command; a disk boots without one given to rosv run");
    }
    Ok((command_line, Some(boot_config::write(&split.environment, &commands)?)))
}

/// Seeds the disk's GUIDs and volume serial from what the disk holds.
fn content_seed(kernel: &[u8], root: &Path, command_line: &str) -> Result<u64> {
    let mut hasher = DefaultHasher::new();
    kernel.hash(&mut hasher);
    command_line.hash(&mut hasher);
    let mut file = File::open(root).with_context(|| format!("cannot read {}", root.display()))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let length = file.read(&mut buffer).with_context(|| format!("cannot read {}", root.display()))?;
        if length == 0 {
            break;
        }
        buffer[..length].hash(&mut hasher);
    }
    Ok(hasher.finish())
}

/// Copies the file at `source` into `disk` at byte `offset`.
fn copy_into(source: &Path, disk: &mut File, offset: u64) -> Result<()> {
    let mut input = File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
    disk.seek(SeekFrom::Start(offset)).context("cannot seek in the disk")?;
    std::io::copy(&mut input, disk).context("cannot copy the EFI system partition into the disk")?;
    disk.flush().context("cannot write the disk")?;
    Ok(())
}
