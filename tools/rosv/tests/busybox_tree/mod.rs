//! The tree the busybox comparisons work on, and the image that holds it.
//!
//! The tree is the same on every run: nested directories, an empty one,
//! text files of many sizes (empty, one block, over 64 KiB), a binary file,
//! a file name with a space, relative, absolute, directory and dangling
//! symlinks. Files and directories get distinct modification times, with
//! nanoseconds, which the image records; symlinks, whose times the image
//! does not record, get mtime 0.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The tree, busybox and the image holding both.
#[derive(Debug)]
pub struct Fixture {
    /// busybox on the host.
    pub busybox: PathBuf,
    /// The tree on the host (`/tree` in the guest).
    pub tree: PathBuf,
    /// The image directory.
    pub image: PathBuf,
    /// Regular files, relative to the tree, sorted.
    pub files: Vec<String>,
    /// Symlinks, relative to the tree, sorted.
    pub symlinks: Vec<String>,
    /// Directories below the tree's root, sorted.
    pub directories: Vec<String>,
}

/// The fixture, built once per test run.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

/// A small deterministic generator (Knuth's MMIX LCG).
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const WORDS: [&str; 12] =
    ["apple", "Banana", "cherry", "date", "elder", "fig", "grape", "Apple", "kiwi", "lemon", "mango", "fox"];

/// Regular files: path, contents, permissions.
fn files() -> Vec<(&'static str, Vec<u8>, u32)> {
    let mut generator = Generator(0x5eed);
    let readme = b"rosv busybox comparison\nThe quick brown fox jumps over the lazy dog.\nApple pie\n\ttabs\tand  spaces \n"
        .to_vec();
    let guide: String = (0..80)
        .map(|line| {
            let words: Vec<&str> = (0..6).map(|word| WORDS[(line * 7 + word * 5) % WORDS.len()]).collect();
            format!("{line:03}: {}\n", words.join(" "))
        })
        .collect();
    let list: String =
        ["pear", "Apple", "banana", "apple", "Cherry", "banana", "fig", "10", "9", "", "zucchini", "plum"]
            .iter()
            .map(|word| format!("{word}\n"))
            .collect();
    let numbers: String = (0..300).map(|_| format!("{}\n", generator.next() as i64 % 6000 - 500)).collect();
    let big: String = (0..1300)
        .map(|line| {
            format!("line {line:05} of big.txt: the quick brown fox jumps {:08x}\n", generator.next())
        })
        .collect();
    assert!(big.len() > 64 * 1024, "big.txt is over 64 KiB");
    let block: String = (0..64).map(|line| format!("{line:063}\n")).collect();
    assert_eq!(block.len(), 4096);
    let binary: Vec<u8> = (0..5000).map(|_| generator.next() as u8).collect();
    vec![
        ("README.txt", readme, 0o644),
        ("empty.txt", Vec::new(), 0o644),
        ("bin/tool.sh", b"#!/bin/sh\necho tool\n".to_vec(), 0o755),
        ("docs/guide.txt", guide.into_bytes(), 0o644),
        ("docs/with space.txt", b"a file name with a space\n".to_vec(), 0o640),
        ("docs/notes/list.txt", list.into_bytes(), 0o644),
        ("docs/notes/deep/level3.txt", b"three levels down\n".to_vec(), 0o444),
        ("data/numbers.txt", numbers.into_bytes(), 0o644),
        ("data/big.txt", big.into_bytes(), 0o644),
        ("data/block.txt", block.into_bytes(), 0o664),
        ("data/binary.bin", binary, 0o600),
    ]
}

/// Symlinks: path and target.
const SYMLINKS: [(&str, &str); 4] = [
    ("links/absolute", "/tree/docs/guide.txt"),
    ("links/dangling", "missing.txt"),
    ("links/to-docs", "../docs"),
    ("links/to-readme", "../README.txt"),
];

/// Directories, parents first.
const DIRECTORIES: [&str; 7] = ["bin", "data", "docs", "docs/notes", "docs/notes/deep", "empty-dir", "links"];

fn build() -> Fixture {
    let busybox = find_busybox();
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox");
    if directory.exists() {
        std::fs::remove_dir_all(&directory).expect("remove the last run's tree");
    }
    let tree = directory.join("tree");
    for name in DIRECTORIES {
        std::fs::create_dir_all(tree.join(name)).expect("create a directory");
    }
    let files = files();
    for (path, contents, permissions) in &files {
        std::fs::write(tree.join(path), contents).expect("write a file");
        std::fs::set_permissions(tree.join(path), std::fs::Permissions::from_mode(*permissions))
            .expect("set permissions");
    }
    for (path, target) in SYMLINKS {
        symlink(target, tree.join(path)).expect("create a symlink");
    }
    let symlinks: Vec<PathBuf> = SYMLINKS.iter().map(|(path, _)| tree.join(path)).collect();
    let touch = Command::new("touch").args(["-h", "-d", "@0"]).args(&symlinks).status().expect("run touch");
    assert!(touch.success(), "touch -h -d @0 failed");
    // Directories last (adding entries changes their mtime).
    let mut paths: Vec<PathBuf> = files.iter().map(|(path, ..)| tree.join(path)).collect();
    paths.extend(DIRECTORIES.iter().rev().map(|path| tree.join(path)));
    paths.push(tree.clone());
    for (index, path) in paths.iter().enumerate() {
        std::fs::File::open(path)
            .and_then(|file| file.set_modified(modify_time(index as u64)))
            .expect("set a modification time");
    }

    let manifest = directory.join("image.manifest");
    let text = format!(
        "# busybox and the tree it works on\n/bin/busybox: {}\n/tree/**: tree/**\n",
        busybox.display()
    );
    std::fs::write(&manifest, text).expect("write the manifest");
    let image = directory.join("image");
    let output = Command::new(env!("CARGO_BIN_EXE_rosv"))
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&image)
        .args(["--", "/bin/busybox", "ls", "-l", "/tree"])
        .output()
        .expect("run rosv build");
    assert!(output.status.success(), "rosv build: {}", String::from_utf8_lossy(&output.stderr));

    let mut file_paths: Vec<String> = files.iter().map(|(path, ..)| path.to_string()).collect();
    file_paths.sort();
    Fixture {
        busybox,
        tree,
        image,
        files: file_paths,
        symlinks: SYMLINKS.iter().map(|(path, _)| path.to_string()).collect(),
        directories: DIRECTORIES.iter().map(|path| path.to_string()).collect(),
    }
}

/// The modification time of the `index`th file or directory: spread over
/// years, with nanoseconds.
fn modify_time(index: u64) -> std::time::SystemTime {
    let seconds = 1_000_000_000 + index * 37 * 86_400 + index * 3_671;
    std::time::UNIX_EPOCH
        + std::time::Duration::new(seconds, ((index + 1) * 123_456_789 % 1_000_000_000) as u32)
}

/// busybox on PATH; it must be Debian's static build.
fn find_busybox() -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|directory| directory.join("busybox"))
        .find(|path| path.is_file())
        .expect(
            "busybox is not on PATH; install the static build (on Debian: apt-get install busybox-static)",
        )
}
