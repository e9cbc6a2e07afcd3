//! Boot tests of the device layer: the kernel finds its root disk over
//! every virtio transport it supports, on QEMU's microvm (virtio-mmio,
//! versions 1 and 2, from the command line or the ACPI DSDT), on QEMU's pc
//! machine with qboot (legacy, modern and transitional virtio-pci, MSI-X or
//! INTx), and on Firecracker where it is available.
//!
//! The VMs are started with raw QEMU and Firecracker commands, so each test
//! names exactly the devices it attaches.

mod guests;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use guests::Variant;
use support::{TIMEOUT_SECONDS, path, text};

const QBOOT: &str = "/usr/share/qemu/qboot.rom";

/// An image directory (kernel.elf, root.rofs) holding `program`.
fn image(directory: &Path, program: &Path) -> PathBuf {
    let image = directory.join("image");
    let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(["build", "--exec", path(program), "-o", path(&image)])
        .output()
        .expect("run rosv build");
    assert!(output.status.success(), "{}", text(&output.stderr));
    image
}

/// Boots the image's kernel on QEMU with `machine` and `devices`, its
/// root.rofs attached as the drive `root`, and `command_line`.
fn qemu(image: &Path, machine: &[&str], devices: &[&str], command_line: &str) -> Output {
    let drive = format!("file={},if=none,id=root,format=raw,readonly=on", path(&image.join("root.rofs")));
    let output = Command::new("timeout")
        .arg(TIMEOUT_SECONDS)
        .arg("qemu-system-x86_64")
        .args(machine)
        .args(["-accel", "tcg", "-cpu", "max", "-m", "128M", "-smp", "2", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-serial", "stdio", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .args(["-kernel", path(&image.join("kernel.elf")), "-drive", &drive])
        .args(devices)
        .args(["-append", command_line])
        .output()
        .expect("run qemu-system-x86_64");
    println!(
        "--- QEMU {machine:?} {devices:?}: {command_line}\nstatus {:?}\n{}{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Asserts that the program ran from the disk and exited 0 (QEMU's debug
/// exit turns status 0 into 1), and that the disk was found as `found`.
fn assert_booted_from_disk(output: &Output, found: &str) {
    let stdout = text(&output.stdout);
    assert!(stdout.contains(found), "expected {found:?}:\n{stdout}");
    assert!(stdout.contains("Hello, world!"), "{stdout}");
    assert_eq!(output.status.code(), Some(1), "{stdout}");
}

fn hello_image(directory: &Path) -> PathBuf {
    image(directory, &guests::c_program("hello", Variant::MuslStatic))
}

#[test]
fn microvm_disks_are_found_on_the_command_line_and_in_the_dsdt() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = hello_image(directory.path());
    let block = ["-device", "virtio-blk-device,drive=root"];
    // QEMU's virtio-mmio transport is legacy (version 1) unless told
    // otherwise; with ACPI off it lists devices on the command line.
    let cases: [(&str, &[&str], &str); 4] = [
        ("microvm,acpi=off", &[], "mmio 0xfeb00e00 (v1, gsi 12)"),
        ("microvm,acpi=on", &[], "(v1, gsi"),
        ("microvm,acpi=off", &["-global", "virtio-mmio.force-legacy=false"], "(v2, gsi 12)"),
        ("microvm,acpi=on", &["-global", "virtio-mmio.force-legacy=false"], "(v2, gsi"),
    ];
    for (machine, extra, found) in cases {
        let devices: Vec<&str> = extra.iter().chain(block.iter()).copied().collect();
        let output = qemu(&image, &["-M", machine], &devices, "--verbose /hello-musl");
        assert_booted_from_disk(&output, found);
        assert!(text(&output.stdout).contains("vda: virtio block device at mmio"));
        assert!(text(&output.stdout).contains("read-only"));
    }
}

#[test]
fn pc_disks_work_over_legacy_modern_and_transitional_pci() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = hello_image(directory.path());
    let machine = ["-M", "pc", "-bios", QBOOT];
    let cases = [
        ("virtio-blk-pci,drive=root,disable-modern=on", "(legacy, MSI-X)"),
        ("virtio-blk-pci,drive=root,disable-legacy=on", "(modern, MSI-X)"),
        ("virtio-blk-pci,drive=root,disable-legacy=off,disable-modern=off", "(modern, MSI-X)"),
        // Without MSI-X vectors the device interrupts through its pin.
        ("virtio-blk-pci,drive=root,disable-modern=on,vectors=0", "(legacy, INTx line"),
        ("virtio-blk-pci,drive=root,disable-legacy=on,vectors=0", "(modern, INTx line"),
    ];
    for (device, found) in cases {
        let output = qemu(&image, &machine, &["-device", device], "--verbose /hello-musl");
        assert_booted_from_disk(&output, found);
    }
}

#[test]
fn nopci_skips_enumeration_and_its_bootchart_phase() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = hello_image(directory.path());
    let block = ["-device", "virtio-blk-device,drive=root"];
    let output = qemu(&image, &["-M", "microvm"], &block, "--bootchart --nopci /hello-musl");
    assert_booted_from_disk(&output, "devices started");
    assert!(!text(&output.stdout).contains("pci enumerated"), "{}", text(&output.stdout));
    let output = qemu(&image, &["-M", "microvm"], &block, "--bootchart /hello-musl");
    assert_booted_from_disk(&output, "pci enumerated");
    // Linux's pci=off, which Firecracker appends without a PCI bus, counts
    // as --nopci.
    let output = qemu(&image, &["-M", "microvm"], &block, "--bootchart pci=off /hello-musl");
    assert_booted_from_disk(&output, "devices started");
    assert!(!text(&output.stdout).contains("pci enumerated"), "{}", text(&output.stdout));
}

#[test]
fn entropy_devices_are_started() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = hello_image(directory.path());
    let output = qemu(
        &image,
        &["-M", "microvm"],
        &["-device", "virtio-blk-device,drive=root", "-device", "virtio-rng-device"],
        "--verbose /hello-musl",
    );
    assert_booted_from_disk(&output, "virtio entropy source at mmio");
    let output = qemu(
        &image,
        &["-M", "pc", "-bios", QBOOT],
        &["-device", "virtio-blk-pci,drive=root", "-device", "virtio-rng-pci"],
        "--verbose /hello-musl",
    );
    assert_booted_from_disk(&output, "virtio entropy source at pci");
}

#[test]
fn a_corrupt_root_disk_is_a_clear_error() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = hello_image(directory.path());
    // Keep the superblock's magic, break the structure's location.
    let root = image.join("root.rofs");
    let mut bytes = std::fs::read(&root).expect("read the image");
    bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&root, bytes).expect("write the image");
    let output =
        qemu(&image, &["-M", "microvm"], &["-device", "virtio-blk-device,drive=root"], "/hello-musl");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("the root disk (vda) is a damaged ROFS image"), "{stdout}");
    assert!(!stdout.contains("Hello, world!"), "{stdout}");
    assert_ne!(output.status.code(), Some(1), "{stdout}");
}

#[test]
fn firecracker_finds_its_drive() {
    let test = "firecracker_finds_its_drive";
    if !support::firecracker_available(test) {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    // A program that needs no SSE, which kvm_pvm hosts cannot run in ring 0.
    let image = image(directory.path(), &guests::syscall_exit());
    let settings = serde_json::json!({
        "boot-source": {
            "kernel_image_path": image.join("kernel.elf"),
            "boot_args": "--verbose --bootchart --noxsave /syscall-exit",
        },
        "drives": [{
            "drive_id": "root",
            "path_on_host": image.join("root.rofs"),
            "is_root_device": false,
            "is_read_only": true,
        }],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
    });
    let config = directory.path().join("firecracker.json");
    std::fs::write(&config, settings.to_string()).expect("write the configuration");
    // Firecracker's drives are virtio-mmio devices, or modern virtio-pci
    // ones (MSI-X, BARs above 4 GiB) with --enable-pci.
    // Without --enable-pci Firecracker appends pci=off, and the kernel does
    // not probe for a bus that is not there.
    let cases: [(&[&str], &str, bool); 2] = [
        (&[], "vda: virtio block device at mmio 0xc0001000 (v2, gsi 5)", false),
        (&["--enable-pci"], "(modern, MSI-X)", true),
    ];
    for (options, found, scans_pci) in cases {
        let output = Command::new("timeout")
            .arg(TIMEOUT_SECONDS)
            .arg("firecracker")
            .args(["--no-api", "--config-file", path(&config), "--level", "Off"])
            .args(options)
            .output()
            .expect("run firecracker");
        let stdout = text(&output.stdout);
        println!(
            "--- firecracker {options:?}\nstatus {:?}\n{stdout}{}",
            output.status.code(),
            text(&output.stderr)
        );
        assert!(stdout.contains(found), "{stdout}");
        assert!(stdout.contains("syscall-only program"), "{stdout}");
        assert_eq!(stdout.contains("pci enumerated"), scans_pci, "{stdout}");
    }
}

#[test]
fn rootfs_chooses_what_is_mounted_at_the_root() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = hello_image(directory.path());
    let block = ["-device", "virtio-blk-device,drive=root"];
    let output = qemu(&image, &["-M", "microvm"], &block, "--rootfs=rofs /hello-musl");
    assert_booted_from_disk(&output, "Hello, world!");
    // An empty ramfs root: the disk is still /dev/vda, the program is not
    // at the root.
    let output = qemu(&image, &["-M", "microvm"], &block, "--rootfs=ramfs /hello-musl");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("/hello-musl: no such file or directory"), "{stdout}");
    assert!(!stdout.contains("Hello, world!"), "{stdout}");
    // ROFS asked for, but nothing to mount it from.
    let output = qemu(&image, &["-M", "microvm"], &[], "--rootfs=rofs /hello-musl");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("--rootfs=rofs: the machine has no initrd and no disk"), "{stdout}");
    let output = qemu(&image, &["-M", "microvm"], &block, "--rootfs=zfs /hello-musl");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("--rootfs=zfs: the root filesystem is overlay, rofs or ramfs"), "{stdout}");
}
