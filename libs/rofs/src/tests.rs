use std::io::Cursor;

use proptest::prelude::*;

use crate::writer::{Contents, Directory, Node, write_image};
use crate::{FileType, Rofs, RofsError};

fn image(root: &Directory) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    let size = write_image(root, &mut cursor).unwrap();
    let bytes = cursor.into_inner();
    assert_eq!(size, bytes.len() as u64);
    bytes
}

fn sample() -> Directory {
    let mut root = Directory::default();
    root.insert("/bin/hello", Node::File(Contents::Bytes(b"\x7fELF...".to_vec()))).unwrap();
    root.insert("/etc/empty", Node::File(Contents::Bytes(Vec::new()))).unwrap();
    root.insert("/etc/motd", Node::File(Contents::Bytes(vec![7u8; 1300]))).unwrap();
    root.insert("/usr/bin", Node::Symlink("/bin".into())).unwrap();
    root.insert("/etc/up", Node::Symlink("../bin/hello".into())).unwrap();
    root.insert("/loop", Node::Symlink("/loop".into())).unwrap();
    root
}

#[test]
fn reads_back_what_was_written() {
    let bytes = image(&sample());
    let rofs = Rofs::mount(bytes.as_slice()).unwrap();
    let motd = rofs.resolve("/etc/motd").unwrap();
    let metadata = rofs.metadata(motd).unwrap();
    assert_eq!((metadata.file_type, metadata.size), (FileType::Regular, 1300));
    let mut buffer = vec![0u8; 2000];
    assert_eq!(rofs.read(motd, 0, &mut buffer).unwrap(), 1300);
    assert!(buffer[..1300].iter().all(|&byte| byte == 7));
    assert_eq!(rofs.read(motd, 1290, &mut buffer).unwrap(), 10);
    assert_eq!(rofs.read(motd, 5000, &mut buffer).unwrap(), 0);
    assert_eq!(rofs.resolve("/usr/bin/hello").unwrap(), rofs.resolve("/bin/hello").unwrap());
    assert_eq!(rofs.resolve("/etc/up").unwrap(), rofs.resolve("/bin/hello").unwrap());
    assert_eq!(rofs.resolve("/etc/../bin/./hello").unwrap(), rofs.resolve("/bin/hello").unwrap());
    assert_eq!(rofs.resolve("/nope"), Err(RofsError::NotFound));
    assert_eq!(rofs.resolve("/etc/motd/x"), Err(RofsError::NotDirectory));
    assert_eq!(rofs.resolve("/loop"), Err(RofsError::TooManySymlinks));
    let names: Vec<&str> = rofs.read_dir(rofs.root()).unwrap().map(|entry| entry.name).collect();
    assert_eq!(names, ["bin", "etc", "loop", "usr"]);
}

#[test]
fn directory_entries_are_reached_by_index() {
    let bytes = image(&sample());
    let rofs = Rofs::mount(bytes.as_slice()).unwrap();
    let etc = rofs.resolve("/etc").unwrap();
    let names: Vec<&str> =
        (0..).map_while(|index| rofs.directory_entry(etc, index).unwrap()).map(|entry| entry.name).collect();
    assert_eq!(names, ["empty", "motd", "up"]);
    let motd = rofs.resolve("/etc/motd").unwrap();
    assert_eq!(rofs.directory_entry(motd, 0), Err(RofsError::NotDirectory));
    // The writer stores no permission bits.
    assert_eq!(rofs.metadata(motd).unwrap().permissions, 0);
}

#[test]
fn layout_follows_the_rofs_format() {
    let bytes = image(&sample());
    assert_eq!(&bytes[..8], &0xDEAD_BEADu64.to_le_bytes());
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 1);
    assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 512);
    // File data starts at block 1: the first file written is /bin/hello.
    assert_eq!(&bytes[512..519], b"\x7fELF...");
    assert_eq!(bytes.len() % 512, 0);
}

#[test]
fn corrupt_images_are_errors() {
    let good = image(&sample());
    assert_eq!(Rofs::mount(&good[..100]).err(), Some(RofsError::Truncated));
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 1;
    assert_eq!(Rofs::mount(bad_magic.as_slice()).err(), Some(RofsError::NotRofs));
    let truncated = &good[..good.len() - 512];
    assert_eq!(Rofs::mount(truncated).err(), Some(RofsError::Truncated));
    // Point the root directory's entries past the entry table.
    let mut bad_root = good.clone();
    let first_block = u64::from_le_bytes(good[24..32].try_into().unwrap()) as usize;
    let entries = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
    let symlinks = u64::from_le_bytes(good[48..56].try_into().unwrap()) as usize;
    let mut offset = first_block * 512;
    for _ in 0..entries {
        let length = u16::from_le_bytes(good[offset + 8..offset + 10].try_into().unwrap()) as usize;
        offset += 10 + length;
    }
    for _ in 0..symlinks {
        let length = u16::from_le_bytes(good[offset..offset + 2].try_into().unwrap()) as usize;
        offset += 2 + length;
    }
    bad_root[offset + 24..offset + 32].copy_from_slice(&1000u64.to_le_bytes());
    assert_eq!(Rofs::mount(bad_root.as_slice()).err(), Some(RofsError::Corrupt(1)));
}

#[test]
fn host_files_keep_their_permission_bits() {
    use std::os::unix::fs::PermissionsExt;
    let directory = std::env::temp_dir().join(format!("rosv-rofs-permissions-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let program = directory.join("program");
    std::fs::write(&program, b"#!").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o4750)).unwrap();
    let mut root = Directory::default();
    root.insert("/p", Node::File(Contents::HostFile(program))).unwrap();
    root.insert("/b", Node::File(Contents::Bytes(b"#!".to_vec()))).unwrap();
    let bytes = image(&root);
    std::fs::remove_dir_all(&directory).unwrap();
    // The structure region: entries "b" and "p" (11 bytes each), then the
    // inodes of /, /b and /p.
    let inodes = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize * 512 + 22;
    let mode = |inode: usize| u64::from_le_bytes(bytes[inodes + inode * 32..][..8].try_into().unwrap());
    assert_eq!((mode(0), mode(1), mode(2)), (0o040000, 0o100000, 0o104750));
    let rofs = Rofs::mount(bytes.as_slice()).unwrap();
    assert_eq!(rofs.metadata(rofs.resolve("/p").unwrap()).unwrap().file_type, FileType::Regular);
}

#[test]
fn insert_refuses_bad_paths() {
    let mut root = Directory::default();
    assert!(root.insert("/", Node::Symlink("x".into())).is_err());
    assert!(root.insert("/a/../b", Node::Symlink("x".into())).is_err());
    root.insert("/f", Node::File(Contents::Bytes(vec![]))).unwrap();
    assert!(root.insert("/f/g", Node::File(Contents::Bytes(vec![]))).is_err());
}

/// File contents: often empty or on a block boundary, sometimes several
/// blocks long.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => prop::sample::select(vec![1usize, 511, 512, 513, 1024, 1537]).prop_map(|length| vec![0x5a; length]),
        6 => proptest::collection::vec(any::<u8>(), 0..3000),
    ]
}

fn tree() -> impl Strategy<Value = Directory> {
    let name =
        "[a-zA-Z0-9._ -]{1,12}|[éü日本]{1,3}".prop_filter("not . or ..", |name| name != "." && name != "..");
    let leaf = prop_oneof![
        contents().prop_map(|bytes| Node::File(Contents::Bytes(bytes))),
        "/?[a-z./]{1,20}".prop_map(Node::Symlink),
        Just(Node::Directory(Directory::default())),
    ];
    let node = leaf.prop_recursive(4, 48, 6, move |inner| {
        proptest::collection::btree_map(name.clone(), inner, 0..6)
            .prop_map(|entries| Node::Directory(Directory { entries, modify_time: None }))
    });
    proptest::collection::btree_map("[a-z]{1,8}", node, 0..6)
        .prop_map(|entries| Directory { entries, modify_time: None })
}

/// Numbers of nodes and of symlinks below `directory`.
fn count(directory: &Directory) -> (u64, u64) {
    directory.entries.values().fold((0, 0), |(nodes, symlinks), node| match node {
        Node::Directory(inner) => {
            let (inner_nodes, inner_symlinks) = count(inner);
            (nodes + 1 + inner_nodes, symlinks + inner_symlinks)
        }
        Node::Symlink(_) => (nodes + 1, symlinks + 1),
        Node::File(_) => (nodes + 1, symlinks),
    })
}

/// Checks the directory `inode` of `rofs` against `expected`, by listing
/// and by path lookup from the root.
fn compare<S: crate::BlockSource>(rofs: &Rofs<S>, inode: u64, path: &str, expected: &Directory) {
    let found: Vec<(String, u64)> =
        rofs.read_dir(inode).unwrap().map(|entry| (entry.name.to_string(), entry.inode)).collect();
    assert_eq!(found.len(), expected.entries.len());
    assert_eq!(rofs.metadata(inode).unwrap().size, expected.entries.len() as u64);
    for ((name, child), (expected_name, node)) in found.iter().zip(&expected.entries) {
        assert_eq!(name, expected_name);
        let child_path = format!("{path}/{name}");
        let metadata = rofs.metadata(*child).unwrap();
        match node {
            Node::File(Contents::Bytes(bytes)) => {
                assert_eq!((metadata.file_type, metadata.size), (FileType::Regular, bytes.len() as u64));
                assert_eq!(rofs.resolve(&child_path), Ok(*child));
                let mut buffer = vec![0u8; bytes.len() + 10];
                let read = rofs.read(*child, 0, &mut buffer).unwrap();
                assert_eq!(&buffer[..read], bytes.as_slice());
            }
            Node::Symlink(target) => {
                assert_eq!((metadata.file_type, metadata.size), (FileType::Symlink, target.len() as u64));
                assert_eq!(rofs.read_link(*child).unwrap(), target);
            }
            Node::Directory(inner) => {
                assert_eq!(rofs.resolve(&child_path), Ok(*child));
                compare(rofs, *child, &child_path, inner);
            }
            Node::File(Contents::HostFile(_)) => unreachable!(),
        }
    }
}

proptest! {
    #[test]
    fn random_trees_round_trip(root in tree()) {
        let bytes = image(&root);
        prop_assert_eq!(bytes.len() % 512, 0);
        let rofs = Rofs::mount(bytes.as_slice()).unwrap();
        compare(&rofs, rofs.root(), "", &root);
        let (nodes, symlinks) = count(&root);
        let word = |index: usize| u64::from_le_bytes(bytes[index * 8..index * 8 + 8].try_into().unwrap());
        prop_assert_eq!((word(5), word(6), word(7)), (nodes, symlinks, nodes + 1));
    }

    #[test]
    fn mutated_images_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24)) {
        let mut bytes = image(&sample());
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if let Ok(rofs) = Rofs::mount(bytes.as_slice()) {
            for path in ["/bin/hello", "/etc/motd", "/usr/bin/hello", "/etc/up", "/loop"] {
                if let Ok(inode) = rofs.resolve(path) {
                    let _ = rofs.metadata(inode);
                    let mut buffer = [0u8; 64];
                    let _ = rofs.read(inode, 0, &mut buffer);
                    let _ = rofs.read_dir(inode).map(|entries| entries.count());
                }
            }
        }
    }
}

#[test]
fn host_files_keep_their_modification_times() {
    let directory = std::env::temp_dir().join(format!("rofs-times-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("old");
    std::fs::write(&path, b"old contents").unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    let then = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
    file.set_modified(then).unwrap();
    drop(file);
    let mut root = sample();
    root.insert("/data/old", Node::File(Contents::HostFile(path.clone()))).unwrap();
    root.insert(
        "/dated",
        Node::Directory(Directory {
            modify_time: Some(rosv_abi::rofs::InodeTimes { modify_seconds: 42, modify_nanoseconds: 7 }),
            ..Directory::default()
        }),
    )
    .unwrap();
    let bytes = image(&root);
    std::fs::remove_dir_all(&directory).unwrap();
    let rofs = Rofs::mount(bytes.as_slice()).unwrap();
    let old = rofs.metadata(rofs.resolve("/data/old").unwrap()).unwrap();
    let times = old.modify_time.expect("the writer records times");
    assert_eq!((times.modify_seconds, times.modify_nanoseconds), (1_000_000_000, 123_456_789));
    let dated = rofs.metadata(rofs.resolve("/dated").unwrap()).unwrap();
    assert_eq!(dated.modify_time.map(|times| times.modify_seconds), Some(42));
    let generated = rofs.metadata(rofs.resolve("/etc/motd").unwrap()).unwrap();
    assert!(generated.modify_time.is_some_and(|times| times.modify_seconds > 1_600_000_000), "written now");
}

#[test]
fn directories_count_their_subdirectories_as_links() {
    let bytes = image(&sample());
    let rofs = Rofs::mount(bytes.as_slice()).unwrap();
    // bin, etc and usr are directories, loop a symlink.
    assert_eq!(rofs.metadata(rofs.root()).unwrap().link_count, 5);
    assert_eq!(rofs.metadata(rofs.resolve("/etc").unwrap()).unwrap().link_count, 2);
    assert_eq!(rofs.metadata(rofs.resolve("/etc/motd").unwrap()).unwrap().link_count, 1);
}

#[test]
fn images_without_the_extension_mount_without_times() {
    // OSv's writer leaves block 0 zero after the superblock.
    let mut bytes = image(&sample());
    bytes[rosv_abi::rofs::EXTENSION_OFFSET..512].fill(0);
    let rofs = Rofs::mount(bytes.as_slice()).unwrap();
    assert_eq!(rofs.metadata(rofs.resolve("/etc/motd").unwrap()).unwrap().modify_time, None);
}

#[test]
fn a_damaged_extension_is_refused() {
    let offset = rosv_abi::rofs::EXTENSION_OFFSET;
    let original = image(&sample());
    for (field, value) in [(8, 2u64), (16, u64::MAX - 4), (24, 1)] {
        let mut bytes = original.clone();
        bytes[offset + field..offset + field + 8].copy_from_slice(&value.to_le_bytes());
        assert_eq!(Rofs::mount(bytes.as_slice()).map(|_| ()), Err(RofsError::Corrupt(0)), "field at {field}");
    }
}
