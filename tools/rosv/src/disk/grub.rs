//! GRUB as the disk's boot loader, for BIOS and for UEFI.
//!
//! Debian's `grub-mkimage` builds both core images from the modules
//! `grub-pc-bin` and `grub-efi-amd64-bin` install, each with the same small
//! embedded configuration: find the EFI system partition by its FAT
//! volume serial and read `/boot/grub/grub.cfg` there. For BIOS, GRUB's
//! `boot.img` goes in the MBR and the i386-pc core image in the BIOS boot
//! partition; [`bios_boot_code`] and [`place_core_image`] set the fields
//! `grub-install` would (the core image's sector, the blocklist of its
//! remaining sectors). For UEFI, the x86_64-efi image is the removable
//! media path `/EFI/BOOT/BOOTX64.EFI`, which firmware boots without any
//! boot entry in its variables.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Where Debian installs GRUB's platform directories.
const GRUB_LIBRARY: &str = "/usr/lib/grub";
/// The modules both images carry: the partition table, the filesystem,
/// the search, the configuration file, the Multiboot2 loader and a serial
/// terminal to report a failure on.
const MODULES: &[&str] = &[
    "part_gpt",
    "fat",
    "search",
    "search_fs_uuid",
    "configfile",
    "normal",
    "multiboot2",
    "echo",
    "serial",
    "terminal",
];
/// The BIOS image also needs the BIOS disk driver.
const BIOS_MODULES: &[&str] = &["biosdisk"];
/// Offset of the core image's first sector (a 64-bit LBA) in `boot.img`.
const KERNEL_SECTOR_OFFSET: usize = 0x5c;
/// Offset of the two bytes that skip `boot.img`'s boot drive check; a hard
/// disk gets two NOPs instead, as `grub-install` writes for one.
const DRIVE_CHECK_OFFSET: usize = 0x66;
/// The first blocklist entry of the core image's first sector (`diskboot`):
/// the 64-bit LBA of the rest of the core image, its length and segment.
const BLOCKLIST_START_OFFSET: usize = 0x200 - 12;
/// The largest core image the BIOS boot partition takes.
pub const CORE_IMAGE_MAX: u64 = 1 << 20;

/// The Debian packages that hold what [`Images::make`] runs and reads.
pub const PACKAGES: &str = "grub-pc-bin grub-efi-amd64-bin grub-common";

/// The boot loader's files, made in a scratch directory.
#[derive(Debug)]
pub struct Images {
    /// GRUB's `boot.img` for the MBR.
    pub boot_image: Vec<u8>,
    /// The i386-pc core image for the BIOS boot partition.
    pub core_image: Vec<u8>,
    /// The x86_64-efi image, `/EFI/BOOT/BOOTX64.EFI`.
    pub efi_image: PathBuf,
}

impl Images {
    /// Builds both images in `scratch`; they find the partition whose FAT
    /// volume serial is `volume_id` (as GRUB writes it, `XXXX-XXXX`).
    pub fn make(scratch: &Path, volume_id: &str) -> Result<Self> {
        let Some(mkimage) = crate::host::find_program("grub-mkimage") else {
            bail!(
                "grub-mkimage was not found; install GRUB's images (on Debian: apt-get install {PACKAGES})"
            );
        };
        let library = Path::new(GRUB_LIBRARY);
        for platform in ["i386-pc", "x86_64-efi"] {
            if !library.join(platform).join("moddep.lst").is_file() {
                bail!(
                    "{} is missing: GRUB's {platform} modules are not installed (on Debian: apt-get install {PACKAGES})",
                    library.join(platform).display()
                );
            }
        }
        let early = scratch.join("early.cfg");
        std::fs::write(&early, early_configuration(volume_id))
            .with_context(|| format!("cannot write {}", early.display()))?;
        let core = scratch.join("core.img");
        let efi = scratch.join("BOOTX64.EFI");
        for (format, output, extra) in [("i386-pc", &core, BIOS_MODULES), ("x86_64-efi", &efi, &[][..])] {
            let mut command = Command::new(&mkimage);
            command
                .args(["-O", format, "-d"])
                .arg(library.join(format))
                .arg("-o")
                .arg(output)
                .arg("-c")
                .arg(&early)
                .args(["-p", "/boot/grub"])
                .args(MODULES)
                .args(extra);
            let result = command.output().context("cannot run grub-mkimage")?;
            if !result.status.success() {
                bail!("grub-mkimage -O {format} failed: {}", String::from_utf8_lossy(&result.stderr).trim());
            }
        }
        let boot_path = library.join("i386-pc/boot.img");
        let boot_image =
            std::fs::read(&boot_path).with_context(|| format!("cannot read {}", boot_path.display()))?;
        let core_image = std::fs::read(&core).with_context(|| format!("cannot read {}", core.display()))?;
        if boot_image.len() != 512 {
            bail!("{} is {} bytes, not one sector", boot_path.display(), boot_image.len());
        }
        if core_image.len() < 512 || core_image.len() as u64 > CORE_IMAGE_MAX {
            bail!(
                "GRUB's core image is {} bytes; it must fit the 1 MiB BIOS boot partition",
                core_image.len()
            );
        }
        Ok(Images { boot_image, core_image, efi_image: efi })
    }
}

/// The configuration built into both images: the partition with the
/// volume serial `volume_id`, then its `grub.cfg`. GRUB stays off the
/// serial console unless that fails (its serial terminal clears the screen
/// of whoever reads the console); then it says so there.
fn early_configuration(volume_id: &str) -> String {
    format!(
        "search --no-floppy --fs-uuid --set=root {volume_id}\n\
         set prefix=($root)/boot/grub\n\
         configfile $prefix/grub.cfg\n\
         serial --unit=0 --speed=115200\n\
         terminal_output serial\n\
         echo \"rosv: GRUB could not boot the kernel named in /boot/grub/grub.cfg \
         of the FAT volume {volume_id}\"\n"
    )
}

/// The MBR's boot code: `boot.img` told that the core image starts at
/// `core_sector` and that it boots from a hard disk.
pub fn bios_boot_code(boot_image: &[u8], core_sector: u64) -> Vec<u8> {
    let mut code = boot_image.to_vec();
    code[KERNEL_SECTOR_OFFSET..KERNEL_SECTOR_OFFSET + 8].copy_from_slice(&core_sector.to_le_bytes());
    code[DRIVE_CHECK_OFFSET] = 0x90;
    code[DRIVE_CHECK_OFFSET + 1] = 0x90;
    code
}

/// The core image as placed at `core_sector`: its first sector loads the
/// rest, which follows directly (grub-mkimage already set the length).
pub fn place_core_image(core_image: &[u8], core_sector: u64) -> Vec<u8> {
    let mut placed = core_image.to_vec();
    let start = core_sector + 1;
    placed[BLOCKLIST_START_OFFSET..BLOCKLIST_START_OFFSET + 8].copy_from_slice(&start.to_le_bytes());
    placed
}

/// The `grub.cfg` that boots the kernel through Multiboot2 with the ROFS
/// root and the boot configuration as modules, passing `command_line`.
pub fn configuration(command_line: &str, has_boot_config: bool) -> String {
    let mut text = String::from("# Written by rosv build: boots the rosv kernel through Multiboot2.\n");
    text.push_str(&format!("multiboot2 /boot/kernel.elf {command_line}\n"));
    text.push_str("module2 /boot/root.rofs root\n");
    if has_boot_config {
        text.push_str("module2 /boot/boot-config boot-config\n");
    }
    text.push_str("boot\n");
    text
}

/// Whether GRUB's script parser hands `word` to the kernel unchanged:
/// no quoting, variable, escape or command separator characters.
pub fn passes_unchanged(word: &str) -> bool {
    !word.is_empty()
        && word.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_=./:,+@%^~".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_the_fields_grub_install_sets() {
        let code = bios_boot_code(&[0u8; 512], 2048);
        assert_eq!(&code[0x5c..0x64], &2048u64.to_le_bytes());
        assert_eq!(&code[0x66..0x68], &[0x90, 0x90]);
        let mut core = vec![0u8; 1024];
        core[0x1fc..0x1fe].copy_from_slice(&1u16.to_le_bytes());
        let placed = place_core_image(&core, 2048);
        assert_eq!(&placed[0x1f4..0x1fc], &2049u64.to_le_bytes());
        assert_eq!(&placed[0x1fc..0x1fe], &1u16.to_le_bytes());
    }

    #[test]
    fn writes_a_configuration_with_both_modules() {
        let text = configuration("--exit-record --rootfs=overlay", true);
        assert!(text.contains("multiboot2 /boot/kernel.elf --exit-record --rootfs=overlay\n"));
        assert!(text.contains("module2 /boot/root.rofs root\n"));
        assert!(text.contains("module2 /boot/boot-config boot-config\n"));
        assert!(text.ends_with("boot\n"));
    }

    #[test]
    fn knows_which_words_grub_leaves_alone() {
        assert!(passes_unchanged("--cwd=/srv/data"));
        assert!(passes_unchanged("--user=1000:1000"));
        assert!(!passes_unchanged("--cwd=/a b"));
        assert!(!passes_unchanged("$HOME"));
        assert!(!passes_unchanged("'quoted'"));
        assert!(!passes_unchanged("a;b"));
        assert!(!passes_unchanged(""));
    }
}
