//! Boot tests of host directories shared over 9P (`rosv run --volume
//! DIR:/data[:ro]`): a tree made on the host reads the same in the guest,
//! what the guest makes, renames, removes and writes is on the host
//! afterwards, `:ro` refuses changes, threads write at once, a file the
//! host deletes mid-run is gone in the guest, `mount(2)` finds a share by
//! its tag; the built-in monitor and Firecracker refuse directories. The
//! guest program `tests/guest/p9.c` runs natively on the host too, so
//! both sides describe the tree the same way.

mod guests;
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use support::{Guest, path, rosv, rosv_run, text};

/// The guest program.
fn program() -> PathBuf {
    guests::c_program("p9", guests::Variant::GlibcStatic)
}

/// The byte at `offset` of the pattern seeded by `seed`, as
/// `tests/guest/p9.c` makes it.
fn pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 7) as u8
}

/// The `entry` lines `p9 walk DIRECTORY` prints when run on the host.
fn host_walk(directory: &Path) -> Vec<String> {
    let output =
        Command::new(program()).args(["walk", path(directory)]).output().expect("run p9 on the host");
    assert!(output.status.success(), "p9 walk on the host: {}", text(&output.stdout));
    entries(&text(&output.stdout))
}

fn entries(console: &str) -> Vec<String> {
    console
        .lines()
        .filter(|line| line.starts_with("entry "))
        .map(|line| line.trim_end().to_string())
        .collect()
}

/// `rosv run --volume DIRECTORY:/data[:ro] --exec p9 -- arguments`,
/// asserted to end with status 0 and no failed check.
fn run_p9(directory: &Path, read_only: bool, extra: &[&str], arguments: &[&str]) -> String {
    let volume = format!("{}:/data{}", path(directory), if read_only { ":ro" } else { "" });
    let program = program();
    let mut all = vec!["--volume", &volume];
    all.extend_from_slice(extra);
    all.extend_from_slice(&["--exec", path(&program), "--"]);
    all.extend_from_slice(arguments);
    let output = rosv_run(&all);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\n0 checks failed\n"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    stdout
}

/// Sets a file's modification time to `seconds` and `nanoseconds`.
fn set_modified(file: &Path, seconds: u64, nanoseconds: u32) {
    let time = UNIX_EPOCH + Duration::new(seconds, nanoseconds);
    std::fs::File::options().write(true).open(file).expect("open").set_modified(time).expect("set the time");
}

/// A tree with files of several sizes and modes, nested directories,
/// symlinks (one dangling) and fixed times.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deeper/deepest")).expect("directories");
    std::fs::create_dir(root.join("empty")).expect("an empty directory");
    std::fs::write(root.join("hello.txt"), "hello from the host\n").expect("a file");
    std::fs::write(root.join("empty.txt"), "").expect("an empty file");
    let large: Vec<u8> = (0..3_000_000u64).map(|offset| pattern(3, offset)).collect();
    std::fs::write(root.join("docs/large.bin"), &large).expect("a large file");
    std::fs::write(root.join("docs/deeper/deepest/leaf"), "leaf\n").expect("a leaf");
    std::fs::write(root.join("script.sh"), "#!/bin/sh\necho hi\n").expect("a script");
    std::fs::set_permissions(root.join("script.sh"), std::fs::Permissions::from_mode(0o751)).expect("chmod");
    std::fs::write(root.join("secret"), "s").expect("a private file");
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::set_permissions(root.join("docs/deeper"), std::fs::Permissions::from_mode(0o750))
        .expect("chmod");
    std::os::unix::fs::symlink("hello.txt", root.join("link")).expect("a symlink");
    std::os::unix::fs::symlink("../hello.txt", root.join("docs/up")).expect("a relative symlink");
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).expect("a dangling symlink");
    set_modified(&root.join("hello.txt"), 1_234_567_890, 123_456_789);
    set_modified(&root.join("docs/large.bin"), 1_000_000_000, 0);
}

/// A tree made on the host lists the same in the guest: names, types,
/// modes, sizes, modification times to the nanosecond, contents and
/// symlink targets.
#[test]
fn a_host_tree_reads_the_same_in_the_guest() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    make_tree(directory.path());
    let expected = host_walk(directory.path());
    assert_eq!(expected.len(), 13, "{expected:?}");
    let stdout = run_p9(directory.path(), false, &[], &["walk", "/data"]);
    assert!(stdout.contains("\nwalk done\n"), "{stdout}");
    assert_eq!(entries(&stdout), expected);
}

/// On the pc machine the share is a virtio-9p PCI function, modern or
/// legacy; the tree reads the same.
#[test]
fn a_host_tree_reads_the_same_over_pci() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    make_tree(directory.path());
    let expected = host_walk(directory.path());
    for transport in ["modern", "legacy"] {
        let stdout =
            run_p9(directory.path(), false, &["--machine", "pc", "--virtio", transport], &["walk", "/data"]);
        assert_eq!(entries(&stdout), expected, "{transport}");
    }
}

/// What the guest makes, renames, removes, links and writes (64 MiB
/// included) is on the host after the run, and the host's listing of it
/// is the guest's. Files keep the invoking user's ownership.
#[test]
fn guest_changes_reach_the_host() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(directory.path().join("before"), "made before the boot\n").expect("a file");
    let stdout = run_p9(directory.path(), false, &["--memory", "512"], &["write", "/data"]);
    assert!(stdout.contains("\nwrite done\n"), "{stdout}");
    let out = directory.path().join("out");
    let read = |name: &str| std::fs::read(out.join(name)).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(read("new-name"), b"renamed\n");
    assert_eq!(read("replaced"), b"second\n");
    assert_eq!(read("a/b/deep.txt"), b"deep\n");
    assert_eq!(read("truncated"), b"0123");
    assert_eq!(read("appended"), b"one\ntwo\n");
    for gone in ["old-name", "replacer", "doomed", "gone-dir"] {
        assert!(!out.join(gone).exists(), "{gone} is still there");
    }
    assert_eq!(std::fs::read_link(out.join("link")).expect("the symlink"), Path::new("kept.txt"));
    let kept = std::fs::metadata(out.join("kept.txt")).expect("kept.txt");
    assert_eq!(kept.nlink(), 2);
    assert_eq!(kept.mode() & 0o7777, 0o600);
    assert_eq!((kept.mtime(), kept.mtime_nsec()), (1_600_000_000, 123_456_789));
    assert_eq!(std::fs::metadata(out.join("a")).expect("a").mode() & 0o7777, 0o750);
    let owner = std::fs::metadata(directory.path()).expect("the directory").uid();
    assert_eq!(kept.uid(), owner, "files keep the invoking user's ownership");
    let big = read("big");
    assert_eq!(big.len(), 64 << 20);
    if let Some(offset) = (0..big.len()).find(|&offset| big[offset] != pattern(7, offset as u64)) {
        panic!("big differs at byte {offset}");
    }
    // Both sides list the same tree, the file made before the boot too.
    let stdout = run_p9(directory.path(), false, &[], &["walk", "/data"]);
    assert_eq!(entries(&stdout), host_walk(directory.path()));
    assert!(stdout.contains("entry before f 644 21 "), "{stdout}");
}

/// `:ro` refuses every change with EROFS and leaves the host untouched.
#[test]
fn a_read_only_share_gives_erofs() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(directory.path().join("hello.txt"), "hello\n").expect("a file");
    let before = host_walk(directory.path());
    let stdout = run_p9(directory.path(), true, &[], &["readonly", "/data"]);
    assert!(stdout.contains("ok create is EROFS"), "{stdout}");
    assert_eq!(host_walk(directory.path()), before);
}

/// Eight threads write, fsync and read back files of their own at once;
/// the host holds each file's bytes.
#[test]
fn many_threads_write_distinct_files_at_once() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let stdout = run_p9(directory.path(), false, &["--cpus", "2"], &["threads", "/data", "8"]);
    assert_eq!(stdout.matches("ok thread").count(), 8, "{stdout}");
    for index in 0..8u64 {
        let bytes = std::fs::read(directory.path().join(format!("t{index}"))).expect("a thread's file");
        assert_eq!(bytes.len(), 4 << 20);
        assert!(
            bytes.iter().enumerate().all(|(offset, byte)| *byte == pattern(index, offset as u64)),
            "t{index} differs"
        );
    }
}

/// A file the host deletes while the guest runs is ENOENT in the guest
/// (never a hang), and a descriptor opened before still reads it.
#[test]
fn a_file_deleted_on_the_host_is_gone_in_the_guest() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let victim = directory.path().join("victim");
    std::fs::write(&victim, "doomed\n").expect("a file");
    let volume = format!("{}:/data", path(directory.path()));
    let program = program();
    let mut guest = Guest::start(&["--volume", &volume, "--exec", path(&program), "--", "vanish", "/data"]);
    if !guest.wait_for("victim ready", Duration::from_secs(120)) {
        guest.abandon("the guest did not open the file");
    }
    std::fs::remove_file(&victim).expect("delete the file");
    let (status, console) = guest.finish();
    assert!(console.contains("ok stat of the deleted file fails"), "{console}");
    assert!(console.contains("\n0 checks failed\n"), "{console}");
    assert_eq!(status, Some(0));
}

/// `mount(2)` of type 9p takes a share's tag as its source; an unknown
/// tag is ENOENT.
#[test]
fn mount_finds_a_share_by_its_tag() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(directory.path().join("file"), "x").expect("a file");
    let stdout = run_p9(directory.path(), false, &[], &["mount", "rosv0"]);
    assert!(stdout.contains("ok the mounted share lists"), "{stdout}");
}

/// The built-in monitor and Firecracker say that they cannot share host
/// directories, before starting anything.
#[test]
fn other_monitors_refuse_host_directories() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let volume = format!("{}:/data", path(directory.path()));
    let program = program();
    for (hypervisor, name) in [("builtin", "the built-in monitor"), ("firecracker", "Firecracker")] {
        let output =
            rosv(&["run", "--hypervisor", hypervisor, "--volume", &volume, "--exec", path(&program)]);
        assert_eq!(output.status.code(), Some(125), "{hypervisor}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(&format!("{name} cannot share host directories")), "{stderr}");
    }
}
