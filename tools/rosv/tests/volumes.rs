//! Boot tests of ext4 volumes (`rosv run --volume FILE:/data`): a tree of
//! files the host's tools read back, a machine killed while it fsyncs,
//! SQLite across two boots and busybox's tar. Each checks the image with
//! the host's `e2fsck -fn` afterwards; each is skipped, visibly, where the
//! ext4 tools are missing.

mod guests;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Guest, path, rosv, rosv_run, skip, text};

/// Directories and files per directory of the tree test: 10,000 files
/// made, 5,000 kept, which a TCG guest writes in some 2 minutes.
const DIRECTORIES: usize = 100;
const FILES: usize = 100;

/// The time limit of the boots that write 10,000 files, in seconds: a
/// loaded host runs a TCG guest several times slower.
const TREE_TIMEOUT_SECONDS: &str = "1200";

/// Branches of the archive the tar test unpacks, and files in each.
const BRANCHES: usize = 100;
const LEAVES: usize = 100;

/// A host ext4 tool, on the path or in the system directories.
fn tool(name: &str) -> Option<PathBuf> {
    let mut directories: Vec<PathBuf> =
        std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect()).unwrap_or_default();
    directories.extend(["/usr/sbin".into(), "/sbin".into()]);
    directories.into_iter().map(|directory| directory.join(name)).find(|candidate| candidate.is_file())
}

/// Whether the ext4 tools are here; says why a test is skipped otherwise.
fn has_tools(test: &str) -> bool {
    let missing: Vec<&str> =
        ["mkfs.ext4", "e2fsck", "debugfs"].into_iter().filter(|name| tool(name).is_none()).collect();
    if !missing.is_empty() {
        skip(test, &format!("{} not installed (apt-get install e2fsprogs)", missing.join(", ")));
    }
    missing.is_empty()
}

/// A fresh volume of `size` made by `rosv volume create`.
fn volume(directory: &Path, size: &str) -> PathBuf {
    let file = directory.join("data.ext4");
    let output = rosv(&["volume", "create", path(&file), "--size", size]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    file
}

/// Runs `e2fsck` with `arguments` on `image`: its exit status and output.
fn e2fsck(arguments: &[&str], image: &Path) -> (i32, String) {
    let e2fsck = tool("e2fsck").expect("e2fsck was found");
    let output = Command::new(e2fsck).args(arguments).arg(image).output().expect("run e2fsck");
    (output.status.code().unwrap_or(-1), text(&output.stdout) + &text(&output.stderr))
}

/// Asserts that `e2fsck -fn` finds nothing wrong.
fn assert_clean(image: &Path, when: &str) {
    let (status, report) = e2fsck(&["-fn"], image);
    assert_eq!(status, 0, "{when}: e2fsck -fn found problems:\n{report}");
}

/// What `debugfs -R request` prints.
fn debugfs(image: &Path, request: &str) -> Vec<u8> {
    let debugfs = tool("debugfs").expect("debugfs was found");
    let output = Command::new(debugfs).arg("-R").arg(request).arg(image).output().expect("run debugfs");
    output.stdout
}

/// The (name, size) pairs of a directory, as `debugfs -R "ls -p"` lists
/// them, without `.` and `..`, sorted.
fn host_listing(image: &Path, directory: &str) -> Vec<(String, u64)> {
    let listing = text(&debugfs(image, &format!("ls -p {directory}")));
    let mut entries: Vec<(String, u64)> = listing
        .lines()
        .filter_map(|line| {
            // /inode/mode/uid/gid/name/size/
            let fields: Vec<&str> = line.split('/').collect();
            let (name, size) = (fields.get(5)?, fields.get(6)?);
            (*name != "." && *name != "..").then(|| (name.to_string(), size.parse().unwrap_or(u64::MAX)))
        })
        .collect();
    entries.sort();
    entries
}

/// content(name) of `tests/guest/disk-tree.c`.
fn content(name: &str) -> Vec<u8> {
    let hash =
        name.bytes().fold(2_166_136_261u32, |value, byte| (value ^ u32::from(byte)).wrapping_mul(16_777_619));
    let size = 100 + 37 * (hash % 200) as usize;
    (0..size).map(|offset| (hash.wrapping_add(offset as u32) % 251) as u8).collect()
}

/// The pids of `parent`'s children.
fn children(parent: u32) -> Vec<u32> {
    let tasks =
        std::fs::read_dir(format!("/proc/{parent}/task")).map(|tasks| tasks.flatten().collect::<Vec<_>>());
    tasks
        .unwrap_or_default()
        .iter()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| list.split_whitespace().filter_map(|pid| pid.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// A tree written in the guest reads back the same through the host's
/// debugfs; a second boot that fsyncs file after file is killed (SIGKILL
/// to QEMU) at a random moment, and afterwards the journal replays to a
/// filesystem `e2fsck -fn` finds clean, holding every file the guest said
/// it had synced.
#[test]
fn a_tree_survives_and_a_killed_machine_keeps_what_it_synced() {
    let test = "a_tree_survives_and_a_killed_machine_keeps_what_it_synced";
    if !has_tools(test) {
        return;
    }
    let program = guests::c_program("disk-tree", guests::Variant::GlibcStatic);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let image = volume(directory.path(), "256M");
    let volume_argument = format!("{}:/data", path(&image));
    let (directories, files) = (DIRECTORIES.to_string(), FILES.to_string());
    let output = rosv(&[
        "run",
        "--timeout",
        TREE_TIMEOUT_SECONDS,
        "--volume",
        &volume_argument,
        "--exec",
        path(&program),
        "--",
        "tree",
        "/data",
        &directories,
        &files,
    ]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("\ntree done\n"), "{stdout}");
    assert_eq!(output.status.code(), Some(0));
    assert_clean(&image, "after the tree");
    let mut guest_listing: Vec<Vec<(String, u64)>> = vec![Vec::new(); DIRECTORIES];
    for line in stdout.lines().filter_map(|line| line.strip_prefix("entry d")) {
        let (entry, size) = line.rsplit_once(' ').expect("entry dK/NAME SIZE");
        let (index, name) = entry.split_once('/').expect("dK/NAME");
        let index: usize = index.parse().expect("a directory number");
        guest_listing[index].push((name.to_string(), size.parse().expect("a size")));
    }
    for (index, entries) in guest_listing.iter_mut().enumerate() {
        entries.sort();
        assert_eq!(entries.len(), FILES / 2, "d{index}");
        assert_eq!(*entries, host_listing(&image, &format!("/d{index}")), "d{index}");
    }
    assert_eq!(debugfs(&image, "cat /d7/r12"), content("f12"));

    // The second boot churns until it is killed.
    let mut guest =
        Guest::start(&["--volume", &volume_argument, "--exec", path(&program), "--", "churn", "/data"]);
    if !guest.wait_for("synced churn/k5 ", Duration::from_secs(120)) {
        guest.abandon("the churn did not start");
    }
    let nanoseconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |time| time.subsec_nanos());
    let deadline = Instant::now() + Duration::from_millis(200 + u64::from(nanoseconds % 3000));
    while Instant::now() < deadline && guest.wait_for("synced", deadline - Instant::now()) {}
    let hypervisors = children(guest.id());
    assert!(!hypervisors.is_empty(), "rosv started no hypervisor");
    for pid in hypervisors {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    let (_, console) = guest.finish();
    let synced: Vec<(String, usize)> = console
        .lines()
        .filter_map(|line| line.strip_prefix("synced "))
        .filter_map(|line| {
            let (name, size) = line.split_once(' ')?;
            Some((name.to_string(), size.parse().ok()?))
        })
        .collect();
    assert!(synced.len() > 5, "{console}");
    let (status, report) = e2fsck(&["-fy", "-E", "journal_only"], &image);
    assert!(status < 4, "replaying the journal: {report}");
    assert_clean(&image, "after the kill");
    for (name, size) in &synced {
        let file_name = name.rsplit('/').next().expect("a name");
        let expected = content(file_name);
        assert_eq!(expected.len(), *size);
        assert_eq!(debugfs(&image, &format!("cat /{name}")), expected, "{name} after the kill");
    }
    // The tree of the first boot is still there.
    assert_eq!(host_listing(&image, "/d3"), guest_listing[3]);
}

/// An image directory holding `programs` (host paths, placed at the same
/// paths) and `files` (guest path, host file), built by `rosv build`.
fn image_with(directory: &Path, programs: &[&str], files: &[(&str, &Path)]) -> PathBuf {
    let root = directory.join("tree");
    for program in programs {
        let target = root.join(program.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create the tree");
        std::fs::copy(program, &target).expect("copy the program");
    }
    for (name, source) in files {
        std::fs::copy(source, root.join(name.trim_start_matches('/'))).expect("copy a file");
    }
    let image = directory.join("image");
    let built = rosv(&["build", path(&root), "-o", path(&image)]);
    assert!(built.status.success(), "{}", text(&built.stderr));
    image
}

/// SQLite in WAL mode (its `-shm` file shared through `MAP_SHARED`) keeps
/// a database on a volume across two boots; the host's sqlite3 reads the
/// same rows from the image afterwards.
#[test]
fn sqlite_keeps_a_database_on_a_volume_across_boots() {
    let test = "sqlite_keeps_a_database_on_a_volume_across_boots";
    if !has_tools(test) {
        return;
    }
    if !Path::new("/usr/bin/sqlite3").is_file() {
        skip(test, "sqlite3 is not installed (apt-get install sqlite3)");
        return;
    }
    let directory = tempfile::tempdir().expect("a temporary directory");
    let image = image_with(directory.path(), &["/usr/bin/sqlite3"], &[]);
    let data = volume(directory.path(), "64M");
    let volume_argument = format!("{}:/data", path(&data));
    let boot = |statements: &[&str]| {
        let mut arguments =
            vec!["--volume", &volume_argument, path(&image), "--", "/usr/bin/sqlite3", "/data/db"];
        arguments.extend_from_slice(statements);
        rosv_run(&arguments)
    };
    let first = boot(&[
        "PRAGMA journal_mode=WAL;",
        "CREATE TABLE t(x INTEGER, y TEXT);",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO t SELECT i, 'row ' || i FROM n;",
        "SELECT count(*), sum(x) FROM t;",
    ]);
    assert_eq!(text(&first.stdout), "wal\n10000|50005000\n");
    assert_eq!(first.status.code(), Some(0));
    assert_clean(&data, "after the first boot");
    let second = boot(&[
        "INSERT INTO t VALUES (10001, 'second boot');",
        "SELECT count(*), sum(x), max(y) FROM t;",
        "PRAGMA journal_mode;",
        "PRAGMA integrity_check;",
    ]);
    assert_eq!(text(&second.stdout), "10001|50015001|second boot\nwal\nok\n");
    assert_eq!(second.status.code(), Some(0));
    assert_clean(&data, "after the second boot");
    let copy = directory.path().join("copy.db");
    debugfs(&data, &format!("dump /db {}", path(&copy)));
    let host = Command::new("/usr/bin/sqlite3").arg(&copy).arg("SELECT count(*), max(y) FROM t;").output();
    assert_eq!(text(&host.expect("run sqlite3").stdout), "10001|second boot\n");
}

/// Every entry below `root`: its path, type and permission bits, and its
/// contents or symlink target.
fn walk(root: &Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("read a directory").flatten() {
            let path = entry.path();
            let metadata = std::fs::symlink_metadata(&path).expect("stat an entry");
            let relative = path.strip_prefix(root).expect("below the root").to_string_lossy().into_owned();
            let mode = metadata.permissions().mode() & 0o7777;
            let description = if metadata.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).expect("read a link").display())
            } else if metadata.is_dir() {
                pending.push(path.clone());
                format!("directory {mode:o}")
            } else {
                let bytes = std::fs::read(&path).expect("read a file");
                let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
                    (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
                });
                format!("file {mode:o} {} {digest:x}", bytes.len())
            };
            entries.push((relative, description));
        }
    }
    entries.sort();
    entries
}

/// busybox's `tar -x` of an archive into a volume gives the tree Linux's
/// tar gives from the same archive, as the host's debugfs reads it back.
#[test]
fn busybox_tar_extracts_the_same_tree_onto_a_volume() {
    let test = "busybox_tar_extracts_the_same_tree_onto_a_volume";
    if !has_tools(test) {
        return;
    }
    if !Path::new("/bin/busybox").is_file() {
        skip(test, "busybox is not installed (apt-get install busybox-static)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().expect("a temporary directory");
    let source = directory.path().join("source/tree");
    for branch in 0..BRANCHES {
        let branch_directory = source.join(format!("b{branch}/deeper"));
        std::fs::create_dir_all(&branch_directory).expect("make a directory");
        for leaf in 0..LEAVES {
            let size = (branch * LEAVES + leaf) * 97 % 4_000;
            let bytes: Vec<u8> = (0..size).map(|offset| (offset * 7 + leaf) as u8).collect();
            let file = source.join(format!("b{branch}/f{leaf}"));
            std::fs::write(&file, bytes).expect("write a file");
            let mode = if leaf % 3 == 0 { 0o755 } else { 0o640 };
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        std::fs::write(branch_directory.join("note"), format!("branch {branch}\n")).expect("write a note");
        std::os::unix::fs::symlink(format!("../f{branch}"), branch_directory.join("link")).expect("symlink");
    }
    std::fs::write(source.join("big"), vec![0x42u8; 3 << 20]).expect("write a big file");
    let archive = directory.path().join("tree.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&archive)
        .arg("-C")
        .arg(directory.path().join("source"))
        .arg("tree")
        .status()
        .expect("run tar");
    assert!(status.success());
    let linux = directory.path().join("linux");
    std::fs::create_dir(&linux).expect("make a directory");
    let status =
        Command::new("tar").arg("-xf").arg(&archive).arg("-C").arg(&linux).status().expect("run tar");
    assert!(status.success());

    let image = image_with(directory.path(), &["/bin/busybox"], &[("/tree.tar", &archive)]);
    let data = volume(directory.path(), "256M");
    let volume_argument = format!("{}:/data", path(&data));
    let output = rosv(&[
        "run",
        "--timeout",
        TREE_TIMEOUT_SECONDS,
        "--volume",
        &volume_argument,
        path(&image),
        "--",
        "/bin/busybox",
        "tar",
        "-xf",
        "/tree.tar",
        "-C",
        "/data",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_clean(&data, "after tar");
    let dumped = directory.path().join("dumped");
    std::fs::create_dir(&dumped).expect("make a directory");
    debugfs(&data, &format!("rdump /tree {}", path(&dumped)));
    let expected = walk(&linux.join("tree"));
    assert_eq!(expected.len(), BRANCHES * LEAVES + BRANCHES * 3 + BRANCHES + 1);
    assert_eq!(walk(&dumped.join("tree")), expected);
}
