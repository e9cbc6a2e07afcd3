//! Boot tests of the writable root: the image's ROFS under an overlay.
//!
//! One image holds busybox, a C program that changes the image's files
//! (`tests/guest/overlay.c`), a small tree under `/image` and a tar archive
//! that unpacks a tree of its own and replaces one of the image's files.
//! busybox's `tar -x` runs in the guest into `/` and on the host into a
//! copy of the image's tree, and what each then lists, stats and checksums
//! must agree. A second archive of 10,000 files unpacks into `/` the same
//! way.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod guests;
mod support;

use support::{TIMEOUT_SECONDS, text};

/// The image's own tree: path and contents.
const IMAGE_FILES: [(&str, &str); 5] = [
    ("image/keep.txt", "keep\n"),
    ("image/rename.txt", "rename\n"),
    ("image/remove.txt", "remove\n"),
    ("image/dir/a.txt", "a\n"),
    ("image/dir/sub/b.txt", "b\n"),
];

struct Fixture {
    directory: PathBuf,
    busybox: PathBuf,
    image: PathBuf,
    /// Every path the archive holds, relative to the root.
    archived: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn write(path: &Path, contents: &[u8], permissions: u32) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create a directory");
    std::fs::write(path, contents).expect("write a file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(permissions)).expect("set permissions");
}

/// The tree the archive unpacks: nested directories, files of many sizes
/// (empty to 300 KiB, a sparse-looking one of zeroes), modes, symlinks and
/// a replacement for one of the image's files.
fn archive_tree(root: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    let mut state: u64 = 0x0dd5_eed5;
    for directory in 0..6 {
        for file in 0..12 {
            let path = format!("unpacked/d{directory}/s{}/f{file}.dat", file % 3);
            let size = (file * 7919 + directory * 104_729) % 300_000;
            let contents: Vec<u8> = (0..size)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            write(&root.join(&path), &contents, if file % 4 == 0 { 0o600 } else { 0o644 });
            paths.push(path);
        }
    }
    write(&root.join("unpacked/zeroes.bin"), &[0u8; 70_000], 0o640);
    write(&root.join("unpacked/empty.txt"), b"", 0o644);
    write(&root.join("unpacked/tool.sh"), b"#!/bin/sh\necho tool\n", 0o755);
    paths.extend(["unpacked/zeroes.bin", "unpacked/empty.txt", "unpacked/tool.sh"].map(String::from));
    symlink("d0/s0/f0.dat", root.join("unpacked/relative")).expect("symlink");
    symlink("/image/keep.txt", root.join("unpacked/absolute")).expect("symlink");
    std::fs::create_dir_all(root.join("unpacked/empty-dir")).expect("empty directory");
    write(&root.join("image/dir/a.txt"), b"replaced by the archive\n", 0o644);
    paths.extend(["unpacked/relative", "unpacked/absolute", "image/dir/a.txt"].map(String::from));
    paths
}

fn build() -> Fixture {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("overlay");
    if directory.exists() {
        std::fs::remove_dir_all(&directory).expect("remove the last run's files");
    }
    for (path, contents) in IMAGE_FILES {
        write(&directory.join(path), contents.as_bytes(), 0o644);
    }
    let source = directory.join("source");
    let archived = archive_tree(&source);
    let tar = Command::new("tar")
        .args(["--sort=name", "--owner=0", "--group=0", "--mtime=@1000000000", "-cf"])
        .arg(directory.join("archive.tar"))
        .arg("-C")
        .arg(&source)
        .args(["unpacked", "image"])
        .status()
        .expect("run tar");
    assert!(tar.success(), "tar -c failed");
    let busybox = which("busybox");
    let program = guests::c_program("overlay", guests::Variant::MuslStatic);
    let manifest = directory.join("image.manifest");
    std::fs::write(
        &manifest,
        format!(
            "/bin/busybox: {}\n/bin/overlay: {}\n/archive.tar: archive.tar\n/image/**: image/**\n",
            busybox.display(),
            program.display()
        ),
    )
    .expect("write the manifest");
    let image = directory.join("built");
    let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&image)
        .args(["--", "/bin/overlay"])
        .output()
        .expect("run rosv build");
    assert!(output.status.success(), "rosv build: {}", text(&output.stderr));
    Fixture { directory, busybox, image, archived }
}

fn which(program: &str) -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|directory| directory.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH (on Debian: apt-get install busybox-static)"))
}

/// Runs the image with `options` and then the command `words` (commands
/// separated by lone `;`), in `/`.
fn run(fixture: &Fixture, options: &[&str], words: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(["run", "--timeout", TIMEOUT_SECONDS, "-w", "/", "--env", "TZ=UTC0"])
        .args(options)
        .arg(&fixture.image)
        .arg("--")
        .args(words)
        .output()
        .expect("run rosv");
    println!(
        "--- {words:?}: status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

#[test]
fn a_program_changes_renames_and_removes_files_of_the_image() {
    let output = run(fixture(), &[], &["/bin/overlay"]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\n0 checks failed\n"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn removing_an_image_file_hides_it_from_ls_and_rofs_keeps_it() {
    let fixture = fixture();
    let removed = run(
        fixture,
        &[],
        &["/bin/busybox", "rm", "/image/remove.txt", ";", "/bin/busybox", "ls", "-a", "/image"],
    );
    assert_eq!(text(&removed.stdout), ".\n..\ndir\nkeep.txt\nrename.txt\n");
    assert_eq!(removed.status.code(), Some(0));
    let kept = run(
        fixture,
        &["--kernel-args=--rootfs=rofs"],
        &["/bin/busybox", "rm", "/image/remove.txt", ";", "/bin/busybox", "ls", "/image"],
    );
    assert!(text(&kept.stderr).contains("Read-only file system"), "{}", text(&kept.stderr));
    assert_eq!(text(&kept.stdout), "dir\nkeep.txt\nremove.txt\nrename.txt\n");
    assert_eq!(kept.status.code(), Some(0));
}

/// The commands that describe the unpacked tree, relative to the root.
fn descriptions(fixture: &Fixture) -> Vec<Vec<String>> {
    let mut files: Vec<String> = fixture
        .archived
        .iter()
        .filter(|path| !path.ends_with("relative") && !path.ends_with("absolute"))
        .cloned()
        .collect();
    files.extend(IMAGE_FILES.iter().map(|(path, _)| path.to_string()));
    files.sort();
    files.dedup();
    let mut directories: Vec<String> = files
        .iter()
        .filter_map(|path| Path::new(path).parent())
        .flat_map(|parent| {
            parent.ancestors().map(|path| path.to_string_lossy().into_owned()).collect::<Vec<_>>()
        })
        .filter(|path| !path.is_empty())
        .collect();
    directories.push("unpacked/empty-dir".into());
    directories.sort();
    directories.dedup();
    let with = |command: &[&str], paths: &[String]| -> Vec<String> {
        command.iter().map(|word| word.to_string()).chain(paths.iter().cloned()).collect()
    };
    vec![
        with(&["find"], &["unpacked".into(), "image".into()]),
        with(&["stat", "-c", "%n %s %f %h %u %g %Y"], &files),
        with(&["stat", "-c", "%n %f %u %g"], &directories),
        with(&["stat", "-c", "%N %s %f"], &["unpacked/relative".into(), "unpacked/absolute".into()]),
        with(&["sha256sum"], &files),
        with(&["cat"], &["unpacked/absolute".into()]),
    ]
}

fn sorted(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[test]
fn tar_unpacks_into_the_root_as_on_linux() {
    let fixture = fixture();
    let descriptions = descriptions(fixture);
    // The host: the image's tree, then the archive over it, with busybox.
    let host_root = fixture.directory.join("host-root");
    if host_root.exists() {
        std::fs::remove_dir_all(&host_root).expect("remove the last run's tree");
    }
    for (path, contents) in IMAGE_FILES {
        write(&host_root.join(path), contents.as_bytes(), 0o644);
        // The image keeps the times of the files it was built from.
        let built = std::fs::metadata(fixture.directory.join(path)).and_then(|metadata| metadata.modified());
        std::fs::File::options()
            .write(true)
            .open(host_root.join(path))
            .and_then(|file| file.set_modified(built?))
            .expect("copy a modification time");
    }
    // The host's symlink to /image/keep.txt reads the host's /image: the
    // guest's target is compared by `stat %N`, its contents by this.
    let unpack = Command::new(&fixture.busybox)
        .args(["tar", "-xf"])
        .arg(fixture.directory.join("archive.tar"))
        .current_dir(&host_root)
        .status()
        .expect("run busybox tar");
    assert!(unpack.success());
    let mut words: Vec<String> =
        ["/bin/busybox", "tar", "-xf", "/archive.tar"].iter().map(|word| word.to_string()).collect();
    for description in &descriptions {
        words.push(";".into());
        words.push("/bin/busybox".into());
        words.extend(description.iter().cloned());
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let guest = run(fixture, &[], &words);
    assert_eq!(guest.status.code(), Some(0), "{}", text(&guest.stderr));
    let mut host = String::new();
    for description in &descriptions {
        let output = Command::new(&fixture.busybox)
            .args(description)
            .current_dir(&host_root)
            .env_clear()
            .env("TZ", "UTC0")
            .output()
            .expect("run busybox");
        if description == descriptions.last().expect("descriptions") {
            // The host has no /image/keep.txt; the guest reads the image's.
            assert!(!output.status.success());
            host.push_str("keep\n");
        } else {
            assert!(output.status.success(), "{description:?}: {}", text(&output.stderr));
            host.push_str(&text(&output.stdout));
        }
    }
    let guest_text = text(&guest.stdout);
    assert_eq!(sorted(&guest_text), sorted(&host), "guest:\n{guest_text}\nhost:\n{host}");
    assert!(guest_text.contains("image/dir/a.txt 24 "), "the archive replaced an image file");
}

/// busybox's `tar -x` of a 10,000-file archive into `/` gives the tree it
/// gives on the host: the same directories, files with the same sizes,
/// modes and contents, and the same symlinks.
#[test]
fn ten_thousand_files_unpack_into_the_root_as_on_linux() {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("overlay-big");
    if directory.exists() {
        std::fs::remove_dir_all(&directory).expect("remove the last run's files");
    }
    let source = directory.join("source");
    for branch in 0..100 {
        for leaf in 0..100 {
            let size = (branch * 100 + leaf) * 131 % 3_000;
            let contents: Vec<u8> = (0..size).map(|offset| (offset * 13 + branch + leaf) as u8).collect();
            let mode = if leaf % 5 == 0 { 0o750 } else { 0o644 };
            write(&source.join(format!("big/b{branch}/f{leaf}")), &contents, mode);
        }
        symlink(format!("f{branch}"), source.join(format!("big/b{branch}/link"))).expect("symlink");
    }
    let archive = directory.join("big.tar");
    let tar = Command::new("tar")
        .args(["--owner=0", "--group=0", "-cf"])
        .arg(&archive)
        .arg("-C")
        .arg(&source)
        .arg("big")
        .status()
        .expect("run tar");
    assert!(tar.success(), "tar -c failed");
    let busybox = which("busybox");
    let manifest = directory.join("image.manifest");
    let manifest_text = format!("/bin/busybox: {}\n/big.tar: big.tar\n", busybox.display());
    std::fs::write(&manifest, manifest_text).expect("write the manifest");
    let image = directory.join("built");
    let built = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&image)
        .args(["--", "/bin/busybox", "true"])
        .output()
        .expect("run rosv build");
    assert!(built.status.success(), "rosv build: {}", text(&built.stderr));

    // Each description lists one kind of entry under `big`, the same way
    // in both places.
    let descriptions: [&[&str]; 4] = [
        &["find", "big", "-type", "d"],
        &["find", "big", "-type", "f", "-exec", "/bin/busybox", "stat", "-c", "%n %s %a", "{}", "+"],
        &["find", "big", "-type", "f", "-exec", "/bin/busybox", "md5sum", "{}", "+"],
        &["find", "big", "-type", "l", "-exec", "/bin/busybox", "stat", "-c", "%N", "{}", "+"],
    ];
    let mut words = vec!["/bin/busybox", "tar", "-xf", "/big.tar"];
    for description in descriptions {
        words.push(";");
        words.push("/bin/busybox");
        words.extend(description);
    }
    let guest = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .args(["run", "--timeout", "1200", "--memory", "256M", "-w", "/"])
        .arg(&image)
        .arg("--")
        .args(&words)
        .output()
        .expect("run rosv");
    assert_eq!(guest.status.code(), Some(0), "{}", text(&guest.stderr));

    let host_root = directory.join("host-root");
    std::fs::create_dir_all(&host_root).expect("make a directory");
    let unpack = Command::new(&busybox)
        .args(["tar", "-xf"])
        .arg(&archive)
        .current_dir(&host_root)
        .status()
        .expect("run busybox tar");
    assert!(unpack.success());
    let mut host = String::new();
    for description in descriptions {
        let output =
            Command::new(&busybox).args(description).current_dir(&host_root).output().expect("run busybox");
        assert!(output.status.success(), "{description:?}: {}", text(&output.stderr));
        host.push_str(&text(&output.stdout));
    }
    let guest_text = text(&guest.stdout);
    assert_eq!(guest_text.lines().count(), 100 + 10_000 + 10_000 + 100 + 1, "{}", text(&guest.stderr));
    assert!(sorted(&guest_text) == sorted(&host), "the guest's tree differs from the host's");
}
