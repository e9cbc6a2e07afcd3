use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;

use super::*;

/// A host directory with files, a nested tree and symlinks.
fn host_files() -> tempfile::TempDir {
    let directory = tempfile::tempdir().unwrap();
    let root = directory.path();
    fs::create_dir_all(root.join("tree/sub/deeper")).unwrap();
    fs::create_dir_all(root.join("tree/empty")).unwrap();
    fs::write(root.join("tree/a.txt"), "a").unwrap();
    fs::write(root.join("tree/sub/deeper/b.txt"), "b").unwrap();
    fs::write(root.join("tree/sub/nothing"), "").unwrap();
    symlink("sub/deeper/b.txt", root.join("tree/link")).unwrap();
    fs::write(root.join("program"), "\x7fELF").unwrap();
    symlink("program", root.join("program-link")).unwrap();
    directory
}

fn file(path: &Path) -> Node {
    Node::File(Contents::HostFile(path.to_path_buf()))
}

fn symlink_to(target: &str) -> Node {
    Node::Symlink(target.to_string())
}

/// The node at `guest` in `root`.
fn node<'a>(root: &'a Directory, guest: &str) -> Option<&'a Node> {
    let mut components = guest.split('/').filter(|part| !part.is_empty()).peekable();
    let mut directory = root;
    while let Some(name) = components.next() {
        let child = directory.entries.get(name)?;
        if components.peek().is_none() {
            return Some(child);
        }
        let Node::Directory(inner) = child else { return None };
        directory = inner;
    }
    None
}

fn write_manifest(directory: &Path, text: &str) -> PathBuf {
    let path = directory.join("image.manifest");
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_manifest_places_files_trees_and_symlinks() {
    let host = host_files();
    let base = host.path();
    let manifest = write_manifest(
        base,
        "[manifest]\n/bin/prog: program\n/bin/via-link: program-link\n/bin/sh: ->prog\n\
         /data/**: tree/**\n/copy: tree\n/lib/&/a.txt: tree/&\n",
    );
    let root = from_manifest(&manifest).unwrap();
    assert_eq!(node(&root, "/bin/prog"), Some(&file(&base.join("program"))));
    // A file named directly is read through its symlink.
    assert_eq!(node(&root, "/bin/via-link"), Some(&file(&base.join("program-link"))));
    assert_eq!(node(&root, "/bin/sh"), Some(&symlink_to("prog")));
    assert_eq!(node(&root, "/lib/a.txt"), Some(&file(&base.join("tree/a.txt"))));
    for top in ["/data", "/copy"] {
        let at = |path: &str| node(&root, &format!("{top}/{path}"));
        assert_eq!(at("a.txt"), Some(&file(&base.join("tree/a.txt"))));
        assert_eq!(at("sub/deeper/b.txt"), Some(&file(&base.join("tree/sub/deeper/b.txt"))));
        assert_eq!(at("sub/nothing"), Some(&file(&base.join("tree/sub/nothing"))));
        // In trees, host symlinks stay symlinks, and empty directories stay.
        assert_eq!(at("link"), Some(&symlink_to("sub/deeper/b.txt")));
        let empty = Directory {
            modify_time: Some(host_modify_time(&fs::metadata(base.join("tree/empty")).unwrap())),
            ..Directory::default()
        };
        assert_eq!(at("empty"), Some(&Node::Directory(empty)));
    }
    assert_eq!(root.entries.keys().collect::<Vec<_>>(), ["bin", "copy", "data", "lib"]);
}

#[test]
fn a_directory_becomes_the_root() {
    let host = host_files();
    let root = from_directory(&host.path().join("tree")).unwrap();
    assert_eq!(root.entries.keys().collect::<Vec<_>>(), ["a.txt", "empty", "link", "sub"]);
    assert_eq!(node(&root, "/link"), Some(&symlink_to("sub/deeper/b.txt")));
}

#[test]
fn images_keep_the_host_modification_times() {
    let host = host_files();
    let base = host.path();
    let set_time = |path: &Path, seconds: u64| {
        let time = std::time::UNIX_EPOCH + std::time::Duration::new(seconds, 250_000_000);
        fs::File::open(path).unwrap().set_modified(time).unwrap();
    };
    set_time(&base.join("tree/a.txt"), 1_500_000_000);
    set_time(&base.join("tree/sub/deeper"), 1_400_000_000);
    set_time(&base.join("tree"), 1_300_000_000);
    let root = from_directory(&base.join("tree")).unwrap();
    let mut cursor = std::io::Cursor::new(Vec::new());
    rosv_rofs::writer::write_image(&root, &mut cursor).unwrap();
    let bytes = cursor.into_inner();
    let rofs = rosv_rofs::Rofs::mount(bytes.as_slice()).unwrap();
    let modified = |guest: &str| {
        let inode = if guest == "/" { rofs.root() } else { rofs.resolve(guest).unwrap() };
        let times = rofs.metadata(inode).unwrap().modify_time.unwrap();
        (times.modify_seconds, times.modify_nanoseconds)
    };
    assert_eq!(modified("/a.txt"), (1_500_000_000, 250_000_000));
    assert_eq!(modified("/sub/deeper"), (1_400_000_000, 250_000_000));
    assert_eq!(modified("/"), (1_300_000_000, 250_000_000));
}

#[test]
fn trees_merge_into_shared_directories() {
    let host = host_files();
    let manifest =
        write_manifest(host.path(), "/usr/**: tree/**\n/usr/sub/extra: program\n/usr/bin/x: ->y\n");
    let root = from_manifest(&manifest).unwrap();
    assert!(node(&root, "/usr/sub/deeper/b.txt").is_some());
    assert!(node(&root, "/usr/sub/extra").is_some());
    assert!(node(&root, "/usr/bin/x").is_some());
}

/// The error building the tree of a manifest with `text` gives, as text.
fn manifest_error(text: &str) -> String {
    let host = host_files();
    let manifest = write_manifest(host.path(), text);
    let error = from_manifest(&manifest).unwrap_err().to_string();
    let prefix = format!("{}:", manifest.display());
    assert!(error.starts_with(&prefix), "{error}");
    assert!(!error.contains('\n'), "{error}");
    error[prefix.len()..].to_string()
}

#[test]
fn missing_host_files_are_named_with_their_line() {
    let error = manifest_error("/a: program\n\n/b: no-such-file\n");
    assert!(error.starts_with("3: "), "{error}");
    assert!(error.contains("no-such-file does not exist; fix the host path"), "{error}");
    let error = manifest_error("/t/**: missing/**\n");
    assert!(error.starts_with("1: ") && error.contains("missing does not exist"), "{error}");
    let error = manifest_error("/t/**: program/**\n");
    assert!(error.contains("is not a directory"), "{error}");
}

#[test]
fn overlapping_entries_name_both_lines() {
    let error = manifest_error("/data/**: tree/**\n/data/a.txt: program\n");
    assert!(error.starts_with("2: /data/a.txt is also given by "), "{error}");
    assert!(error.ends_with(":1; keep one of the two"), "{error}");
    let error = manifest_error("/x/y: program\n/x: ->elsewhere\n");
    assert!(error.starts_with("2: /x is also given by "), "{error}");
    let error = manifest_error("/x: program\n/x/y: program\n");
    assert!(error.starts_with("2: /x/y would lie below /x, which "), "{error}");
    let error = manifest_error("/: program\n");
    assert!(error.starts_with("1: the root / must be a directory"), "{error}");
    let error = manifest_error("/a: program\n/a: program\n");
    assert!(error.contains("line 2: `/a` is already given on line 1"), "{error}");
}

#[test]
fn special_files_and_foreign_names_are_refused() {
    let host = host_files();
    let listener = std::os::unix::net::UnixListener::bind(host.path().join("tree/socket")).unwrap();
    let error = from_directory(&host.path().join("tree")).unwrap_err().to_string();
    assert!(error.contains("socket is a socket, which an image cannot hold; leave it out"), "{error}");
    drop(listener);
    fs::remove_file(host.path().join("tree/socket")).unwrap();
    fs::write(host.path().join("tree").join(OsStr::from_bytes(b"caf\xe9")), "").unwrap();
    let error = from_directory(&host.path().join("tree")).unwrap_err().to_string();
    assert!(error.contains("is not UTF-8") && error.contains("rename it"), "{error}");
}

#[test]
fn an_unreadable_manifest_is_named() {
    let error = from_manifest(Path::new("/no/such.manifest")).unwrap_err().to_string();
    assert!(error.starts_with("cannot read the manifest /no/such.manifest"), "{error}");
}
