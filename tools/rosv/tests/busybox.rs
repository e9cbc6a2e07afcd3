//! Debian's busybox-static in rosv, compared byte for byte with the host.
//!
//! One deterministic tree (`tree` below) goes into an image with busybox
//! through a manifest; each busybox command runs in the VM (on microvm with
//! virtio-mmio, and on pc with legacy and with modern virtio-pci) and on the
//! host over the same tree, and the two standard outputs and exit statuses
//! must be equal. What makes the comparison fair:
//!
//! - ROFS stores no owners: the guest sees uid/gid 0, and busybox runs on
//!   the host as root, or as root of a user namespace (`unshare -r`) for
//!   other users. It keeps the modification times of files and
//!   directories, not of symlinks: the host's symlinks get mtime 0 and are
//!   compared without times (`stat -c`).
//! - Both sides run with only `TZ=UTC0` and `LC_ALL=C` in the environment.
//! - Directories report what ext4 reports for small directories (4096
//!   bytes in one block, two links plus one per subdirectory); block counts
//!   (`du`) are compared only when the host's tree is on ext4.
//! - `find` prints entries in directory order, which ext4 chooses by hash:
//!   its lines are compared sorted (and `grep` gets files by name, not `-r`).

use std::process::{Command, Output};

mod busybox_tree;
mod support;

use busybox_tree::{Fixture, fixture};
use support::{TIMEOUT_SECONDS, text};

/// A machine and virtio transport to compare on.
#[derive(Debug, Clone, Copy)]
struct Board {
    machine: &'static str,
    virtio: &'static str,
}

const MICROVM_MMIO: Board = Board { machine: "microvm", virtio: "mmio" };
const PC_LEGACY: Board = Board { machine: "pc", virtio: "legacy" };
const PC_MODERN: Board = Board { machine: "pc", virtio: "modern" };

/// What a run printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    stdout: String,
    status: Option<i32>,
}

/// The environment of busybox on both sides.
const ENVIRONMENT: [(&str, &str); 2] = [("TZ", "UTC0"), ("LC_ALL", "C")];

/// Runs busybox with `arguments` on the host, in the tree.
fn on_host(fixture: &Fixture, arguments: &[String]) -> Run {
    let mut command = if is_root() {
        Command::new(&fixture.busybox)
    } else {
        let mut command = Command::new("unshare");
        command.arg("--map-root-user").arg(&fixture.busybox);
        command
    };
    let output = command
        .args(arguments)
        .current_dir(&fixture.tree)
        .env_clear()
        .envs(ENVIRONMENT)
        .output()
        .expect("run busybox on the host");
    assert!(output.stderr.is_empty(), "busybox {arguments:?} on the host: {}", text(&output.stderr));
    Run { stdout: text(&output.stdout), status: output.status.code() }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}

/// Runs `/bin/busybox` with `arguments` in a VM on `board`, in `/tree`.
fn in_guest(fixture: &Fixture, board: Board, arguments: &[String]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rosv"));
    command.args(["run", "--timeout", TIMEOUT_SECONDS, "--machine", board.machine, "--virtio", board.virtio]);
    for (name, value) in ENVIRONMENT {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    command.args(["-w", "/tree"]).arg(&fixture.image).arg("--").arg("/bin/busybox").args(arguments);
    let output = command.output().expect("run rosv");
    Run { stdout: program_output(&output, board, arguments), status: output.status.code() }
}

/// The program's output: rosv's standard output, which is the program's
/// alone; its standard error must be as empty as on the host.
fn program_output(output: &Output, board: Board, arguments: &[String]) -> String {
    assert!(
        output.stderr.is_empty(),
        "busybox {arguments:?} on {board:?} ({:?}) wrote to standard error:\n{}\nstandard output:\n{}",
        output.status.code(),
        text(&output.stderr),
        text(&output.stdout)
    );
    text(&output.stdout)
}

/// A busybox command line and whether its lines are compared sorted.
#[derive(Debug, Clone)]
struct Comparison {
    arguments: Vec<String>,
    is_unordered: bool,
}

fn ordered(arguments: &[&str]) -> Comparison {
    Comparison { arguments: arguments.iter().map(|word| word.to_string()).collect(), is_unordered: false }
}

fn with_paths(arguments: &[&str], paths: &[&str]) -> Comparison {
    let mut comparison = ordered(arguments);
    comparison.arguments.extend(paths.iter().map(|path| path.to_string()));
    comparison
}

/// Every comparison of file commands over the tree.
fn file_commands(fixture: &Fixture) -> Vec<Comparison> {
    let files: Vec<&str> = fixture.files.iter().map(String::as_str).collect();
    let symlinks: Vec<&str> = fixture.symlinks.iter().map(String::as_str).collect();
    let directories: Vec<&str> = fixture.directories.iter().map(String::as_str).collect();
    let files_and_directories: Vec<&str> = files.iter().chain(&directories).copied().collect();
    let text_files: Vec<&str> = files.iter().copied().filter(|path| path.ends_with(".txt")).collect();
    let mut cat = text_files.clone();
    cat.extend(["links/to-readme", "links/to-docs/notes/list.txt"]);
    let mut checksummed = files.clone();
    checksummed.extend(["links/to-readme", "links/to-docs/guide.txt"]);
    let find = |arguments: &[&str]| Comparison { is_unordered: true, ..ordered(arguments) };
    let mut comparisons = vec![
        ordered(&["ls", "-1", "-R", "."]),
        ordered(&["ls", "-1", "-A", "data", "docs", "links", "empty-dir"]),
        with_paths(&["ls", "-l", "-n", "-d"], &files_and_directories),
        with_paths(&["ls", "-l", "-n", "-d", "--full-time"], &files_and_directories),
        with_paths(&["stat", "-c", "%n %s %b %h %f %Y %y"], &files_and_directories),
        with_paths(&["stat", "-c", "%N %s %h %f"], &symlinks),
        with_paths(&["cat"], &cat),
        with_paths(&["wc"], &files),
        with_paths(&["sha256sum"], &checksummed),
        find(&["find", "."]),
        find(&["find", ".", "-type", "l"]),
        find(&["find", ".", "-name", "*.txt", "-size", "+1k"]),
        ordered(&["sort", "docs/notes/list.txt"]),
        ordered(&["sort", "-n", "data/numbers.txt"]),
        ordered(&["sort", "-r", "-u", "docs/notes/list.txt", "README.txt"]),
        with_paths(&["grep", "-n", "-i", "apple"], &text_files),
        ordered(&["grep", "-c", "fox", "data/big.txt", "docs/guide.txt", "README.txt"]),
        ordered(&["grep", "-v", "-e", "a", "docs/notes/list.txt"]),
    ];
    if is_on_ext4(&fixture.tree) {
        comparisons.push(find(&["du", "-a", "."]));
    }
    comparisons
}

/// Whether `path` is on ext2, ext3 or ext4, whose block counts ROFS
/// reports.
fn is_on_ext4(path: &std::path::Path) -> bool {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"ext2/ext3"))
}

/// Sorts the lines of `run`'s output when `comparison` says order is the
/// filesystem's choice.
fn normalized(comparison: &Comparison, mut run: Run) -> Run {
    if comparison.is_unordered {
        let mut lines: Vec<&str> = run.stdout.lines().collect();
        lines.sort_unstable();
        run.stdout = lines.iter().map(|line| format!("{line}\n")).collect();
    }
    run
}

/// Runs `comparisons` on the host and in the guest on `board` and asserts
/// that each printed the same and ended the same.
fn compare(board: Board, comparisons: &[Comparison]) {
    let fixture = fixture();
    let mut differences = Vec::new();
    for comparison in comparisons {
        let host = normalized(comparison, on_host(fixture, &comparison.arguments));
        let guest = normalized(comparison, in_guest(fixture, board, &comparison.arguments));
        if host != guest {
            differences.push(format!(
                "busybox {:?} on {board:?}: status {:?} on the host, {:?} in the guest\n{}",
                comparison.arguments,
                host.status,
                guest.status,
                first_difference(&host.stdout, &guest.stdout)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} differ:\n{}",
        differences.len(),
        comparisons.len(),
        differences.join("\n")
    );
}

/// The first line where `host` and `guest` differ, with a few lines of
/// context from each.
fn first_difference(host: &str, guest: &str) -> String {
    let (host_lines, guest_lines): (Vec<&str>, Vec<&str>) = (host.lines().collect(), guest.lines().collect());
    let Some(index) = (0..host_lines.len().max(guest_lines.len()))
        .find(|&index| host_lines.get(index) != guest_lines.get(index))
    else {
        return format!(
            "the lines agree; the bytes differ ({} on the host, {} in the guest)",
            host.len(),
            guest.len()
        );
    };
    let window = |lines: &[&str]| -> String {
        lines.iter().skip(index.saturating_sub(2)).take(6).map(|line| format!("    {line}\n")).collect()
    };
    format!(
        "first difference at line {} of {} (host) and {} (guest)\n  host:\n{}  guest:\n{}",
        index + 1,
        host_lines.len(),
        guest_lines.len(),
        window(&host_lines),
        window(&guest_lines)
    )
}

/// Commands that need no files: they run on today's kernel.
fn commands_without_files() -> Vec<Comparison> {
    vec![
        ordered(&["echo", "hello from busybox", "ü", "-n", "a  b"]),
        ordered(&["printf", "%s=%d\\n", "answer", "42"]),
        ordered(&["true"]),
        ordered(&["false"]),
        ordered(&["basename", "/tree/docs/guide.txt", ".txt"]),
        ordered(&["expr", "6", "*", "7"]),
    ]
}

#[test]
fn commands_without_files_match_the_host_on_every_machine() {
    for board in [MICROVM_MMIO, PC_LEGACY, PC_MODERN] {
        compare(board, &commands_without_files());
    }
}

#[test]
fn file_commands_match_the_host_on_microvm_with_virtio_mmio() {
    compare(MICROVM_MMIO, &file_commands(fixture()));
}

#[test]
fn file_commands_match_the_host_on_pc_with_legacy_virtio_pci() {
    compare(PC_LEGACY, &file_commands(fixture()));
}

#[test]
fn file_commands_match_the_host_on_pc_with_modern_virtio_pci() {
    compare(PC_MODERN, &file_commands(fixture()));
}

/// The host half of the comparisons on its own: every command succeeds on
/// the host, and what makes the comparison fair holds (so a comparison
/// cannot pass because both sides failed the same way).
#[test]
fn file_commands_run_on_the_host_as_the_guest_will_see_the_tree() {
    let fixture = fixture();
    for comparison in file_commands(fixture) {
        let run = on_host(fixture, &comparison.arguments);
        assert_eq!(run.status, Some(0), "{:?}", comparison.arguments);
        assert!(!run.stdout.is_empty(), "{:?}", comparison.arguments);
    }
    let long = on_host(fixture, &file_commands(fixture)[2].arguments).stdout;
    for line in long.lines() {
        assert!(line.contains(" 0        0 "), "owner: {line}");
    }
    // Every file and directory has a time of its own, to the nanosecond.
    let stat = on_host(fixture, &file_commands(fixture)[4].arguments).stdout;
    let mut times: Vec<&str> = stat.lines().filter_map(|line| line.rsplit(' ').nth(1)).collect();
    assert!(times.iter().all(|time| time.len() == 18 && !time.ends_with(".000000000")), "{stat}");
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), fixture.files.len() + fixture.directories.len(), "{stat}");
    let found = on_host(fixture, &ordered(&["find", "."]).arguments).stdout;
    assert_eq!(
        found.lines().count(),
        1 + fixture.directories.len() + fixture.files.len() + fixture.symlinks.len()
    );
}

/// What the guest will mount: the image's root holds busybox and the tree,
/// byte for byte.
#[test]
fn the_image_holds_busybox_and_the_tree() {
    use rosv_rofs::{FileType, Rofs};
    let fixture = fixture();
    let bytes = std::fs::read(fixture.image.join("root.rofs")).expect("read the root image");
    let rofs = Rofs::mount(bytes.as_slice()).expect("mount the root image");
    let contents = |path: &str| {
        let inode = rofs.resolve(path).unwrap_or_else(|error| panic!("{path}: {error}"));
        let mut buffer = vec![0u8; rofs.metadata(inode).expect("metadata").size as usize];
        assert_eq!(rofs.read(inode, 0, &mut buffer), Ok(buffer.len()), "{path}");
        buffer
    };
    assert_eq!(contents("/bin/busybox"), std::fs::read(&fixture.busybox).expect("read busybox"));
    for file in &fixture.files {
        let host = std::fs::read(fixture.tree.join(file)).expect("read a tree file");
        assert_eq!(contents(&format!("/tree/{file}")), host, "{file}");
    }
    let tree = rofs.resolve("/tree").expect("/tree");
    for symlink in &fixture.symlinks {
        let (parent, name) = symlink.rsplit_once('/').expect("symlinks are in a directory");
        let directory = rofs.resolve(&format!("/tree/{parent}")).expect("the symlink's directory");
        let inode = rofs.lookup(directory, name).expect("the symlink");
        let target = std::fs::read_link(fixture.tree.join(symlink)).expect("read a host symlink");
        assert_eq!(Some(rofs.read_link(inode).expect("a symlink")), target.to_str(), "{symlink}");
    }
    for directory in &fixture.directories {
        let inode = rofs.resolve(&format!("/tree/{directory}")).expect("a directory");
        assert_eq!(rofs.metadata(inode).expect("metadata").file_type, FileType::Directory);
    }
    let names: Vec<&str> = rofs.read_dir(tree).expect("list /tree").map(|entry| entry.name).collect();
    assert_eq!(names, ["README.txt", "bin", "data", "docs", "empty-dir", "empty.txt", "links"]);
}
