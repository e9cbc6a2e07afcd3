use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::device::{BlockDevice, MemoryDisk};
use crate::fake::FakeMachine;
use crate::fs::procfs::SystemInformation;
use crate::fs::{Root, standard_tree, testing};
use crate::vfs::file::flags;
use crate::vfs::operations::TimesChange;
use crate::vfs::{Caller, FsError, RenameMode, Vfs};

/// The image: `/etc/motd` (1300 bytes of 7), `/etc/empty`, `/etc/link`,
/// `/bin/hello`, `/share/doc/a` and `/share/doc/b`.
fn overlay(machine: &FakeMachine) -> Arc<Vfs> {
    let image = testing::rofs_image(
        &[
            ("/bin/hello", b"\x7fELF hello"),
            ("/etc/motd", &[7u8; 1300]),
            ("/etc/empty", b""),
            ("/share/doc/a", b"a"),
            ("/share/doc/b", b"b"),
        ],
        &[("/etc/link", "motd")],
    );
    let disk: Arc<dyn BlockDevice> = Arc::new(MemoryDisk::writable(image));
    standard_tree(machine, Root::Overlay(disk), &[], SystemInformation::default()).unwrap()
}

fn names(vfs: &Vfs, caller: &Caller<'_>, path: &str) -> Vec<String> {
    let directory = vfs.resolve(caller, &vfs.root(), path, true).unwrap();
    let mut names = Vec::new();
    let mut offset = 2;
    while let Some(entry) = vfs.read_directory(caller, &directory, offset).unwrap() {
        names.push(entry.name);
        offset = entry.next_offset;
    }
    names.sort();
    names
}

fn write(vfs: &Vfs, caller: &Caller<'_>, path: &str, open_flags: u32, bytes: &[u8]) {
    let file = vfs.open(caller, &vfs.root(), path, flags::O_WRONLY | open_flags, 0o644).unwrap();
    assert_eq!(file.write(caller, bytes).unwrap(), bytes.len());
}

fn inode(vfs: &Vfs, caller: &Caller<'_>, path: &str) -> u64 {
    vfs.resolve(caller, &vfs.root(), path, false).unwrap().metadata(caller).unwrap().inode
}

#[test]
fn writing_a_lower_file_copies_it_up_and_keeps_its_number() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = overlay(&machine);
    assert_eq!(vfs.mounts()[0].filesystem().type_name(), "overlay");
    let before = inode(&vfs, &caller, "/etc/motd");
    let reader = vfs.open(&caller, &vfs.root(), "/etc/motd", flags::O_RDONLY, 0).unwrap();
    write(&vfs, &caller, "/etc/motd", 0, b"new");
    let mut buffer = [0u8; 4];
    assert_eq!(reader.read(&caller, &mut buffer).unwrap(), 4);
    assert_eq!(&buffer, b"new\x07", "a descriptor opened before the copy sees it");
    assert_eq!(vfs.read_file(&caller, "/etc/motd").unwrap().len(), 1300);
    assert_eq!(inode(&vfs, &caller, "/etc/motd"), before);
    let metadata = vfs.resolve(&caller, &vfs.root(), "/etc/motd", false).unwrap().metadata(&caller).unwrap();
    assert_eq!(metadata.permissions, 0o755, "the copy keeps the mode");
    // O_TRUNC copies up nothing of the old contents.
    write(&vfs, &caller, "/bin/hello", flags::O_TRUNC, b"hi");
    assert_eq!(vfs.read_file(&caller, "/bin/hello").unwrap(), b"hi");
    assert_eq!(names(&vfs, &caller, "/etc"), ["empty", "link", "motd"], "no name twice");
    assert_eq!(vfs.read_file(&caller, "/etc/link").unwrap().len(), 1300, "a lower symlink reaches the copy");
}

#[test]
fn removing_a_lower_name_hides_it_and_a_new_directory_is_opaque() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = overlay(&machine);
    let root = vfs.root();
    vfs.unlink(&caller, &root, "/etc/empty").unwrap();
    assert_eq!(vfs.resolve(&caller, &root, "/etc/empty", false).err(), Some(FsError::NotFound));
    assert_eq!(names(&vfs, &caller, "/etc"), ["link", "motd"]);
    assert_eq!(vfs.remove_directory(&caller, &root, "/share/doc"), Err(FsError::NotEmpty));
    vfs.unlink(&caller, &root, "/share/doc/a").unwrap();
    vfs.unlink(&caller, &root, "/share/doc/b").unwrap();
    assert!(names(&vfs, &caller, "/share/doc").is_empty());
    vfs.remove_directory(&caller, &root, "/share/doc").unwrap();
    assert!(names(&vfs, &caller, "/share").is_empty());
    vfs.make_directory(&caller, &root, "/share/doc", 0o700).unwrap();
    assert!(names(&vfs, &caller, "/share/doc").is_empty(), "the lower entries stay hidden");
    assert_eq!(vfs.resolve(&caller, &root, "/share/doc/a", false).err(), Some(FsError::NotFound));
    write(&vfs, &caller, "/etc/empty", flags::O_CREAT, b"back");
    assert_eq!(vfs.read_file(&caller, "/etc/empty").unwrap(), b"back");
    assert_eq!(names(&vfs, &caller, "/etc"), ["empty", "link", "motd"]);
    let directory = vfs.resolve(&caller, &root, "/share/doc", true).unwrap();
    assert!(directory.node.list_extended(&caller).unwrap().is_empty(), "the opaque mark is private");
}

#[test]
fn files_rename_across_layers_and_lower_directories_do_not() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = overlay(&machine);
    let root = vfs.root();
    let number = inode(&vfs, &caller, "/etc/motd");
    vfs.rename(&caller, (&root, "/etc/motd"), (&root, "/bin/motd"), RenameMode::Replace).unwrap();
    assert_eq!(names(&vfs, &caller, "/etc"), ["empty", "link"]);
    assert_eq!(names(&vfs, &caller, "/bin"), ["hello", "motd"]);
    assert_eq!(inode(&vfs, &caller, "/bin/motd"), number);
    vfs.rename(&caller, (&root, "/bin/motd"), (&root, "/bin/hello"), RenameMode::Replace).unwrap();
    assert_eq!(vfs.read_file(&caller, "/bin/hello").unwrap().len(), 1300);
    assert_eq!(names(&vfs, &caller, "/bin"), ["hello"]);
    assert_eq!(
        vfs.rename(&caller, (&root, "/share"), (&root, "/moved"), RenameMode::Replace),
        Err(FsError::CrossDevice),
        "a directory with lower entries moves only by copying"
    );
    vfs.make_directory(&caller, &root, "/new", 0o755).unwrap();
    write(&vfs, &caller, "/new/file", flags::O_CREAT, b"x");
    vfs.rename(&caller, (&root, "/new"), (&root, "/etc/new"), RenameMode::Replace).unwrap();
    assert_eq!(vfs.read_file(&caller, "/etc/new/file").unwrap(), b"x");
    // A new directory over an empty lower one replaces it.
    vfs.unlink(&caller, &root, "/share/doc/a").unwrap();
    vfs.unlink(&caller, &root, "/share/doc/b").unwrap();
    vfs.rename(&caller, (&root, "/etc/new"), (&root, "/share/doc"), RenameMode::Replace).unwrap();
    assert_eq!(names(&vfs, &caller, "/share/doc"), ["file"]);
    assert!(vfs.resolve(&caller, &root, "/etc/new", false).is_err());
    write(&vfs, &caller, "/tmp-file", flags::O_CREAT, b"t");
    vfs.rename(&caller, (&root, "/tmp-file"), (&root, "/etc/link"), RenameMode::Exchange).unwrap();
    assert_eq!(vfs.read_file(&caller, "/etc/link").unwrap(), b"t");
    assert_eq!(
        vfs.read_link(&caller, &vfs.resolve(&caller, &root, "/tmp-file", false).unwrap()).unwrap(),
        "motd"
    );
}

#[test]
fn hard_links_to_lower_files_share_the_copy() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = overlay(&machine);
    let root = vfs.root();
    let target = vfs.resolve(&caller, &root, "/etc/motd", false).unwrap();
    vfs.link(&caller, &target, (&root, "/motd-link")).unwrap();
    write(&vfs, &caller, "/motd-link", 0, b"shared");
    assert_eq!(&vfs.read_file(&caller, "/etc/motd").unwrap()[..6], b"shared");
    assert_eq!(inode(&vfs, &caller, "/motd-link"), inode(&vfs, &caller, "/etc/motd"));
    let metadata = vfs.resolve(&caller, &root, "/etc/motd", false).unwrap().metadata(&caller).unwrap();
    assert_eq!(metadata.link_count, 2);
    vfs.rename(&caller, (&root, "/etc/motd"), (&root, "/motd-link"), RenameMode::Replace).unwrap();
    assert_eq!(
        names(&vfs, &caller, "/etc"),
        ["empty", "link", "motd"],
        "renaming a link onto its twin does nothing"
    );
    assert_eq!(&vfs.read_file(&caller, "/motd-link").unwrap()[..6], b"shared");
}

#[test]
fn attribute_changes_copy_up_and_unnamed_files_get_names() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = overlay(&machine);
    let root = vfs.root();
    let hello = vfs.resolve(&caller, &root, "/bin/hello", false).unwrap();
    vfs.change_mode(&caller, &hello, 0o600).unwrap();
    let again = vfs.resolve(&caller, &root, "/bin/hello", false).unwrap();
    assert_eq!(again.metadata(&caller).unwrap().permissions, 0o600);
    assert_eq!(vfs.read_file(&caller, "/bin/hello").unwrap(), b"\x7fELF hello");
    assert_eq!(
        hello.node.set_extended(&caller, "trusted.overlay.opaque", b"y", None),
        Err(FsError::NotPermitted)
    );
    let motd = vfs.resolve(&caller, &root, "/etc/motd", false).unwrap();
    vfs.change_owner(&caller, &motd, Some(1000), Some(100)).unwrap();
    let link = vfs.resolve(&caller, &root, "/etc/link", false).unwrap();
    vfs.set_times(&caller, &link, Some(5_000_000_000), Some(7_000_000_000), TimesChange::Explicit).unwrap();
    let motd = vfs.resolve(&caller, &root, "/etc/motd", false).unwrap().metadata(&caller).unwrap();
    assert_eq!((motd.owner_user, motd.owner_group, motd.size_bytes), (1000, 100, 1300));
    let link = vfs.resolve(&caller, &root, "/etc/link", false).unwrap();
    assert_eq!(link.metadata(&caller).unwrap().modify_time_ns, 7_000_000_000);
    assert_eq!(vfs.read_link(&caller, &link).unwrap(), "motd", "a symlink copies up as a symlink");
    hello.node.set_extended(&caller, "user.note", b"kept", None).unwrap();
    assert_eq!(hello.node.list_extended(&caller).unwrap(), ["user.note"]);

    let unnamed = vfs.open(&caller, &root, "/etc", flags::O_TMPFILE | flags::O_RDWR, 0o640).unwrap();
    assert_eq!(unnamed.write(&caller, b"temporary").unwrap(), 9);
    assert!(!names(&vfs, &caller, "/etc").iter().any(|name| name.starts_with('#')));
    let location = unnamed.location().unwrap().clone();
    assert_eq!(location.metadata(&caller).unwrap().link_count, 0);
    vfs.link(&caller, &location, (&root, "/etc/named")).unwrap();
    assert_eq!(vfs.read_file(&caller, "/etc/named").unwrap(), b"temporary");
    let exclusive =
        vfs.open(&caller, &root, "/", flags::O_TMPFILE | flags::O_RDWR | flags::O_EXCL, 0o600).unwrap();
    let location = exclusive.location().unwrap().clone();
    assert_eq!(vfs.link(&caller, &location, (&root, "/never")), Err(FsError::NotFound));
    assert_eq!(
        vfs.open(&caller, &root, "/", flags::O_TMPFILE | flags::O_RDONLY, 0).err(),
        Some(FsError::InvalidArgument)
    );
    let statistics = vfs.mounts()[0].filesystem().statistics();
    assert_eq!(statistics.magic, 0x794c_7630);
}

#[test]
fn mount_points_stay_reachable_over_the_overlay() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = overlay(&machine);
    let root = vfs.root();
    assert!(vfs.resolve(&caller, &root, "/proc", true).unwrap().is_directory());
    write(&vfs, &caller, "/tmp/x", flags::O_CREAT, b"x");
    assert_eq!(vfs.read_file(&caller, "/tmp/x").unwrap(), b"x");
    let listed = names(&vfs, &caller, "/");
    for name in ["bin", "dev", "etc", "proc", "share", "tmp"] {
        assert_eq!(listed.iter().filter(|listed| *listed == name).count(), 1, "{name} in {listed:?}");
    }
    vfs.make_directory(&caller, &root, "/data", 0o755).unwrap();
    assert_eq!(
        vfs.path_of(&caller, &vfs.resolve(&caller, &root, "/share/doc", true).unwrap()).unwrap(),
        "/share/doc"
    );
    write(&vfs, &caller, "/share/doc/c", flags::O_CREAT, b"c");
    assert_eq!(
        vfs.path_of(&caller, &vfs.resolve(&caller, &root, "/share/doc", true).unwrap()).unwrap(),
        "/share/doc"
    );
}

#[test]
fn threads_copy_up_and_create_at_once_without_losing_changes() {
    let machine = FakeMachine::new();
    let vfs = overlay(&machine);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let vfs = &vfs;
            let machine = &machine;
            scope.spawn(move || {
                let caller = Caller::kernel(machine);
                let root = vfs.root();
                for round in 0..25 {
                    let file =
                        vfs.open(&caller, &root, "/etc/motd", flags::O_WRONLY | flags::O_APPEND, 0).unwrap();
                    assert_eq!(file.write(&caller, &[b'a' + thread as u8]).unwrap(), 1);
                    let path = alloc::format!("/share/doc/t{thread}-{round}");
                    write(vfs, &caller, &path, flags::O_CREAT | flags::O_EXCL, b"x");
                    if round % 2 == 0 {
                        vfs.unlink(&caller, &root, &path).unwrap();
                    }
                }
            });
        }
    });
    let caller = Caller::kernel(&machine);
    let contents = vfs.read_file(&caller, "/etc/motd").unwrap();
    assert_eq!(contents.len(), 1300 + 100, "every append reached the one copy");
    for thread in 0..4u8 {
        assert_eq!(contents[1300..].iter().filter(|&&byte| byte == b'a' + thread).count(), 25);
    }
    let listed = names(&vfs, &caller, "/share/doc");
    assert_eq!(listed.len(), 2 + 4 * 12, "{listed:?}");
}
