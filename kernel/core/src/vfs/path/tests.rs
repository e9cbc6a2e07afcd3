use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::fake::FakeMachine;
use crate::fs::testing;
use crate::vfs::{FsError, NewNode};

fn names(vfs: &Vfs, caller: &Caller<'_>, directory: &Location) -> Vec<String> {
    let mut names = Vec::new();
    let mut offset = 0;
    while let Some(entry) = vfs.read_directory(caller, directory, offset).unwrap() {
        names.push(entry.name);
        offset = entry.next_offset;
    }
    names
}

#[test]
fn paths_resolve_across_mount_points_and_dot_dot() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    let motd = vfs.resolve(&caller, &root, "/etc/motd", true).unwrap();
    assert_eq!(motd.metadata(&caller).unwrap().size_bytes, 1300);
    let etc = vfs.resolve(&caller, &root, "etc", true).unwrap();
    assert!(vfs.resolve(&caller, &etc, "motd", true).unwrap().is_same(&motd));
    for path in ["/tmp/../etc/motd", "/dev/../etc/./motd", "/proc/self/../../etc/motd", "/../../etc/motd"] {
        assert!(vfs.resolve(&caller, &root, path, true).unwrap().is_same(&motd), "{path}");
    }
    let dev = vfs.resolve(&caller, &root, "/dev", true).unwrap();
    assert_ne!(dev.mount.device(), root.mount.device());
    assert!(vfs.resolve(&caller, &dev, "..", true).unwrap().is_same(&root));
    assert_eq!(vfs.path_of(&caller, &dev).unwrap(), "/dev");
    assert_eq!(vfs.path_of(&caller, &root).unwrap(), "/");
    let shm = vfs.resolve(&caller, &root, "/dev/shm", true).unwrap();
    assert_eq!(vfs.path_of(&caller, &shm).unwrap(), "/dev/shm");
}

#[test]
fn symlinks_are_followed_up_to_forty_times() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    let motd = vfs.resolve(&caller, &root, "/etc/motd", true).unwrap();
    assert!(vfs.resolve(&caller, &root, "/etc/link", true).unwrap().is_same(&motd));
    assert!(vfs.resolve(&caller, &root, "/lib/link", true).unwrap().is_same(&motd));
    let link = vfs.resolve(&caller, &root, "/etc/link", false).unwrap();
    assert_eq!(link.file_type(), FileType::Symlink);
    assert_eq!(vfs.resolve(&caller, &root, "/loop", true).unwrap_err(), FsError::TooManyLinks);
    // A chain of links in /tmp: link0 -> link1 -> ... -> target.
    let tmp = vfs.resolve(&caller, &root, "/tmp", true).unwrap();
    tmp.node.create(&caller, "target", NewNode::File, 0o644).unwrap();
    for index in 0..41 {
        let next = if index == 40 { String::from("target") } else { alloc::format!("link{}", index + 1) };
        tmp.node.create(&caller, &alloc::format!("link{index}"), NewNode::Symlink(&next), 0o777).unwrap();
    }
    assert!(vfs.resolve(&caller, &root, "/tmp/link1", true).is_ok(), "40 links are followed");
    assert_eq!(vfs.resolve(&caller, &root, "/tmp/link0", true).unwrap_err(), FsError::TooManyLinks);
}

#[test]
fn trailing_slashes_and_lengths_follow_linux() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    assert_eq!(vfs.resolve(&caller, &root, "/etc/motd/", true).unwrap_err(), FsError::NotDirectory);
    assert_eq!(vfs.resolve(&caller, &root, "/etc/motd/x", true).unwrap_err(), FsError::NotDirectory);
    assert!(vfs.resolve(&caller, &root, "/etc/", true).unwrap().is_directory());
    // A trailing slash follows a final symlink even when asked not to.
    assert!(vfs.resolve(&caller, &root, "/lib/", false).unwrap().is_directory());
    assert_eq!(vfs.resolve(&caller, &root, "", true).unwrap_err(), FsError::NotFound);
    assert_eq!(vfs.resolve(&caller, &root, "/nope", true).unwrap_err(), FsError::NotFound);
    let long_name = "x".repeat(256);
    assert_eq!(vfs.resolve(&caller, &root, &long_name, true).unwrap_err(), FsError::NameTooLong);
    let long_path = "/a".repeat(2048);
    assert_eq!(vfs.resolve(&caller, &root, &long_path, true).unwrap_err(), FsError::NameTooLong);
}

#[test]
fn parents_split_off_the_last_component() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    let parent = vfs.resolve_parent(&caller, &root, "/tmp/new/").unwrap();
    assert_eq!(
        (parent.name.as_str(), parent.last, parent.has_trailing_slash),
        ("new", LastComponent::Normal, true)
    );
    assert_eq!(vfs.path_of(&caller, &parent.directory).unwrap(), "/tmp");
    assert_eq!(vfs.resolve_parent(&caller, &root, "//").unwrap().last, LastComponent::Root);
    assert_eq!(vfs.resolve_parent(&caller, &root, "etc/..").unwrap().last, LastComponent::DotDot);
    assert_eq!(vfs.resolve_parent(&caller, &root, ".").unwrap().last, LastComponent::Dot);
    assert_eq!(vfs.resolve_parent(&caller, &root, "/etc/motd/x").unwrap_err(), FsError::NotDirectory);
}

#[test]
fn listings_show_dot_entries_and_mount_points() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = testing::standard(&machine);
    let root = vfs.root();
    assert_eq!(
        names(&vfs, &caller, &root),
        [".", "..", "bin", "etc", "lib", "loop", "dev", "proc", "run", "sys", "tmp"]
    );
    let dev = vfs.resolve(&caller, &root, "/dev", true).unwrap();
    let listed = names(&vfs, &caller, &dev);
    for name in ["null", "zero", "urandom", "console", "tty", "ptmx", "pts", "vda", "shm"] {
        assert!(listed.iter().any(|listed| listed == name), "{name} in {listed:?}");
    }
    let mounts: Vec<String> =
        vfs.mounts().iter().map(|mount| vfs.path_of(&caller, &Location::root_of(mount)).unwrap()).collect();
    assert_eq!(
        mounts,
        ["/", "/dev", "/dev/pts", "/dev/shm", "/proc", "/run", "/sys", "/sys/fs/cgroup", "/tmp"]
    );
}
