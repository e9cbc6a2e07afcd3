//! Bootable disks: `rosv build --format` writes a disk that QEMU's pc
//! machine boots with SeaBIOS and with OVMF (no `-kernel`), `rosv run DISK`
//! boots it, the other formats pass `qemu-img check`, and disks that cannot
//! boot are refused with a message saying why.

mod guests;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use guests::Variant;
use support::{path, rosv, rosv_run, skip, text};

/// What building a disk needs on the host, and the Debian package of each.
const BUILD_NEEDS: &[(&str, &str)] = &[
    ("/usr/bin/grub-mkimage", "grub-common"),
    ("/usr/lib/grub/i386-pc/boot.img", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi/moddep.lst", "grub-efi-amd64-bin"),
    ("/usr/bin/mformat", "mtools"),
    ("/usr/bin/qemu-img", "qemu-utils"),
];
/// OVMF's code, for the UEFI boots.
const OVMF: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

/// Whether the host can build disks; says SKIPPED otherwise.
fn can_build(test: &str) -> bool {
    for (file, package) in BUILD_NEEDS {
        if !Path::new(file).exists() {
            skip(test, &format!("{file} is missing (apt-get install {package})"));
            return false;
        }
    }
    true
}

/// Builds the static `exit` program (prints a line, exits 3) as a disk of
/// `format` in `directory`.
fn exit_disk(directory: &Path, format: &str) -> PathBuf {
    let program = guests::c_program("exit", Variant::MuslStatic);
    let disk = directory.join(format!("exit.{format}"));
    let output = rosv(&["build", "--exec", path(&program), "--format", format, "-o", path(&disk)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&format!("wrote disk {}", disk.display())));
    disk
}

/// Boots `disk` with `firmware` and checks the program's output and status.
fn assert_boots(disk: &Path, firmware: &str) {
    let output = rosv_run(&["--firmware", firmware, path(disk)]);
    assert_eq!(
        text(&output.stdout),
        "exiting with status 3\n",
        "{} with {firmware}: {}",
        disk.display(),
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(3), "{} with {firmware}", disk.display());
}

#[test]
fn raw_and_qcow2_disks_boot_with_seabios_and_ovmf() {
    let test = "raw_and_qcow2_disks_boot_with_seabios_and_ovmf";
    if !can_build(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let raw = exit_disk(directory.path(), "raw");
    let qcow2 = exit_disk(directory.path(), "qcow2");
    for disk in [&raw, &qcow2] {
        assert_boots(disk, "bios");
    }
    if !Path::new(OVMF).is_file() {
        skip(test, &format!("{OVMF} is missing (apt-get install ovmf): the UEFI boots were not tried"));
        return;
    }
    for disk in [&raw, &qcow2] {
        assert_boots(disk, "uefi");
    }
}

#[test]
fn qemu_boots_the_disk_without_rosv() {
    // The disk is a complete machine: QEMU with nothing but the disk (no
    // -kernel, no virtio devices) runs the program and exits through the
    // debug exit device with (3 << 1) | 1.
    let test = "qemu_boots_the_disk_without_rosv";
    if !can_build(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let disk = exit_disk(directory.path(), "qcow2");
    let output = Command::new("timeout")
        .arg(support::TIMEOUT_SECONDS)
        .args(["qemu-system-x86_64", "-M", "pc", "-accel", "tcg", "-cpu", "max", "-m", "128M", "-nodefaults"])
        .args(["-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .arg("-drive")
        .arg(format!("file={},format=qcow2,if=ide,snapshot=on", disk.display()))
        .output()
        .expect("run QEMU");
    let console = text(&output.stdout);
    assert!(console.contains("exiting with status 3"), "{console}\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(7), "{console}");
}

#[test]
fn vmdk_vdi_and_gce_disks_pass_qemu_img() {
    let test = "vmdk_vdi_and_gce_disks_pass_qemu_img";
    if !can_build(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    for (format, name) in [("vmdk", "vmdk"), ("vdi", "vdi"), ("qcow2", "qcow2")] {
        let disk = exit_disk(directory.path(), format);
        let check =
            Command::new("qemu-img").args(["check", "-f", name]).arg(&disk).output().expect("qemu-img");
        assert!(check.status.success(), "{format}: {}{}", text(&check.stdout), text(&check.stderr));
        let info =
            Command::new("qemu-img").args(["info", "--output=json"]).arg(&disk).output().expect("qemu-img");
        assert!(text(&info.stdout).contains(&format!("\"format\": \"{name}\"")), "{}", text(&info.stdout));
    }
    let archive = exit_disk(directory.path(), "gce");
    let listing = Command::new("tar").arg("-tvzf").arg(&archive).output().expect("tar");
    let listing = text(&listing.stdout);
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.len(), 1, "{listing}");
    assert!(entries[0].ends_with(" disk.raw"), "{listing}");
    let size: u64 = entries[0].split_whitespace().nth(2).and_then(|size| size.parse().ok()).expect("a size");
    assert_eq!(size % (1 << 30), 0, "GCE wants whole GiB: {size}");
    // The raw disk inside is the bootable one.
    let unpacked = directory.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("a directory");
    let extracted =
        Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&unpacked).status().expect("tar");
    assert!(extracted.success());
    assert_boots(&unpacked.join("disk.raw"), "bios");
}

#[test]
fn disks_that_cannot_boot_are_refused() {
    let test = "disks_that_cannot_boot_are_refused";
    if !can_build(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let zeros = directory.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).expect("write a disk");
    let tiny = directory.path().join("tiny.img");
    std::fs::write(&tiny, b"not a disk").expect("write a disk");
    let broken = directory.path().join("broken.qcow2");
    std::fs::write(&broken, b"QFI\xfb\0\0\0\x03 and then nothing sensible").expect("write a disk");
    let cases: [(&Path, &str, &str); 4] = [
        (&zeros, "bios", "lacks the boot signature 0x55AA"),
        (&zeros, "uefi", "no valid GPT listing an EFI system partition"),
        (&tiny, "bios", "less than one sector"),
        (&broken, "bios", "is not a readable qcow2 disk"),
    ];
    for (disk, firmware, message) in cases {
        let output = rosv_run(&["--firmware", firmware, path(disk)]);
        assert_eq!(output.status.code(), Some(125), "{}", disk.display());
        let stderr = text(&output.stderr);
        assert!(stderr.contains(message), "{} with {firmware}: {stderr}", disk.display());
    }
    // A disk boots with what it was built with.
    let disk = exit_disk(directory.path(), "raw");
    let output = rosv_run(&[path(&disk), "--", "/other"]);
    assert_eq!(output.status.code(), Some(125));
    assert!(text(&output.stderr).contains("build it again"), "{}", text(&output.stderr));
}
