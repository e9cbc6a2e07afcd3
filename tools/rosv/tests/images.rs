//! Images from manifests and directories, booted on each machine.
//!
//! `rosv build` with a manifest or a host directory, then `rosv run` of the
//! image on microvm (virtio-mmio) and pc (legacy, modern and transitional
//! virtio-pci), and the errors for what cannot work.

mod guests;
mod support;

use guests::Variant;
use support::{path, rosv, text};

#[test]
fn a_manifest_image_boots_on_every_machine_and_transport() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let hello = guests::c_program("hello", Variant::MuslStatic);
    std::fs::create_dir(directory.path().join("etc")).expect("create etc");
    std::fs::write(directory.path().join("etc/motd"), "hi\n").expect("write motd");
    let manifest = directory.path().join("app.manifest");
    let manifest_text =
        format!("[manifest]\n/usr/bin/hello: {}\n/etc/**: etc/**\n/bin/hi: ->/usr/bin/hello\n", path(&hello));
    std::fs::write(&manifest, manifest_text).expect("write the manifest");
    let image = directory.path().join("image");
    let build = rosv(&["build", path(&manifest), "-o", path(&image), "--", "/bin/hi", "from the image"]);
    assert!(build.status.success());
    for machine in
        [&["--machine", "microvm"][..], &["--machine", "microvm", "--acpi", "off"], &["--machine", "pc"]]
    {
        for virtio in [&[][..], &["--virtio", "legacy"], &["--virtio", "transitional"], &["--virtio", "mmio"]]
        {
            let is_pc = machine[1] == "pc";
            if virtio.get(1).is_some_and(|transport| (*transport == "mmio") == is_pc) {
                continue;
            }
            let mut arguments = vec!["run", "--timeout", "120"];
            arguments.extend(machine);
            arguments.extend(virtio);
            arguments.push(path(&image));
            let output = rosv(&arguments);
            assert_eq!(output.status.code(), Some(0), "{arguments:?}");
            assert!(
                text(&output.stdout).contains("argv[0]=/bin/hi\nargv[1]=from the image\n"),
                "{arguments:?}"
            );
        }
    }
}

#[test]
fn a_directory_becomes_the_root_of_an_image() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let root = directory.path().join("root");
    std::fs::create_dir_all(root.join("bin")).expect("create bin");
    std::fs::copy(guests::c_program("hello", Variant::GlibcStaticPie), root.join("bin/hello")).expect("copy");
    let image = directory.path().join("image");
    assert!(rosv(&["build", path(&root), "-o", path(&image), "--", "/bin/hello"]).status.success());
    let output = rosv(&[
        "run",
        "--timeout",
        "120",
        "--machine",
        "pc",
        "--virtio",
        "legacy",
        path(&image),
        "--",
        "/bin/hello",
        "x",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("argv[1]=x\n"));
}

#[test]
fn build_errors_name_the_manifest_line() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let manifest = directory.path().join("bad.manifest");
    std::fs::write(&manifest, "# nothing yet\n/a: missing-file\n").expect("write");
    let output = rosv(&["build", path(&manifest), "-o", path(&directory.path().join("image"))]);
    assert_eq!(output.status.code(), Some(125));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("bad.manifest:2: ") && stderr.contains("missing-file does not exist"),
        "{stderr}"
    );
    std::fs::write(&manifest, "relative: x\n").expect("write");
    let output = rosv(&["build", path(&manifest), "-o", path(&directory.path().join("image"))]);
    assert!(text(&output.stderr).contains("line 1: the guest path `relative` is not absolute"));
}

#[test]
fn machines_and_transports_that_do_not_fit_are_refused() {
    let program = guests::syscall_exit();
    for (arguments, message) in [
        (&["--machine", "pc", "--virtio", "mmio"][..], "--virtio mmio needs --machine microvm"),
        (&["--virtio", "modern"], "--virtio modern needs --machine pc"),
        (&["--hypervisor", "firecracker", "--machine", "pc"], "Firecracker has no pc machine"),
        (&["--hypervisor", "firecracker", "--virtio", "legacy"], "virtio-mmio only"),
    ] {
        let mut run = vec!["run"];
        run.extend(arguments);
        run.extend(["--exec", path(&program)]);
        let output = rosv(&run);
        assert_eq!(output.status.code(), Some(125), "{arguments:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(message) && stderr.lines().count() == 1, "{arguments:?}: {stderr}");
    }
}

#[test]
fn an_image_without_a_default_command_asks_for_one() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let root = directory.path().join("root");
    std::fs::create_dir(&root).expect("create root");
    std::fs::copy(guests::syscall_exit(), root.join("exit")).expect("copy");
    let image = directory.path().join("image");
    assert!(rosv(&["build", path(&root), "-o", path(&image)]).status.success());
    let output = rosv(&["run", path(&image)]);
    assert_eq!(output.status.code(), Some(125));
    assert!(text(&output.stderr).contains("the image has no default command; give one after `--`"));
    let output = rosv(&["run", "--timeout", "120", path(&image), "--", "/exit"]);
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn more_disks_mount_where_mount_fs_says() {
    let directory = tempfile::tempdir().expect("temporary directory");
    // A second image holding only data, attached as /dev/vdb.
    let data = directory.path().join("data");
    std::fs::create_dir(&data).expect("create the data tree");
    std::fs::write(data.join("greeting"), "hello from the second disk\n").expect("write the data");
    let data_image = directory.path().join("data-image");
    assert!(rosv(&["build", path(&data), "-o", path(&data_image)]).status.success());
    let disk = data_image.join("root.rofs");
    let busybox = "/bin/busybox";
    for machine in [&["--machine", "microvm"][..], &["--machine", "pc"]] {
        let mut arguments = vec!["run", "--timeout", "120"];
        arguments.extend_from_slice(machine);
        arguments.extend(["--disk", path(&disk), "--kernel-args=--mount-fs=rofs,/dev/vdb,/data"]);
        arguments.extend(["--exec", busybox, "--", "cat", "/data/greeting"]);
        let output = rosv(&arguments);
        assert!(text(&output.stdout).contains("hello from the second disk\n"), "{machine:?}");
        assert_eq!(output.status.code(), Some(0), "{machine:?}");
    }
    // A mount that cannot be made ends the boot with its reason.
    let output = rosv(&[
        "run",
        "--timeout",
        "120",
        "--kernel-args=--mount-fs=rofs,/dev/vdc,/data",
        "--exec",
        busybox,
        "--",
        "true",
    ]);
    assert!(text(&output.stderr).contains("--mount-fs=rofs,/dev/vdc,/data:"), "{}", text(&output.stderr));
    assert_ne!(output.status.code(), Some(0));
    let missing = rosv(&["run", "--disk", "/no/such/disk", "--exec", busybox, "--", "true"]);
    assert!(text(&missing.stderr).contains("--disk /no/such/disk: no such file"));
}

#[test]
fn a_root_disk_that_is_not_rofs_is_reported_as_such() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let image = directory.path().join("image");
    let program = guests::syscall_exit();
    assert!(rosv(&["build", "--exec", path(&program), "-o", path(&image)]).status.success());
    let disk = image.join("root.rofs");
    let good = std::fs::read(&disk).expect("read the root disk");
    // A wrong magic number: not ROFS at all.
    let mut bad_magic = good.clone();
    bad_magic[..8].copy_from_slice(&0x1234_5678u64.to_le_bytes());
    std::fs::write(&disk, &bad_magic).expect("write the root disk");
    let output = rosv(&["run", "--timeout", "120", path(&image)]);
    let stderr = text(&output.stderr);
    assert!(
        stderr
            .contains("the root disk (vda) is not a ROFS image (bad magic 0x12345678, expected 0xdeadbead)"),
        "{stderr}"
    );
    assert!(!stderr.contains("no such file or directory"), "{stderr}");
    assert_eq!(output.status.code(), Some(125));
    // The right magic number, but a version this reader does not know.
    let mut damaged = good;
    damaged[8..16].copy_from_slice(&7u64.to_le_bytes());
    std::fs::write(&disk, &damaged).expect("write the root disk");
    let output = rosv(&["run", "--timeout", "120", path(&image)]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the root disk (vda) is a damaged ROFS image: the superblock's magic"),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(125));
}
