use super::user::{MapError, UserNamespace, parse_map};
use super::*;

#[test]
fn maps_parse_and_translate_both_ways() {
    let outer = UserNamespace::initial().user_map();
    let map = parse_map("0 1000 1\n1 100000 65536\n", &outer).unwrap();
    assert_eq!(map.to_kernel(0), Some(1000));
    assert_eq!(map.to_kernel(5), Some(100_004));
    assert_eq!(map.from_kernel(1000), Some(0));
    assert_eq!(map.from_kernel(7), None);
}

#[test]
fn bad_maps_are_refused() {
    let outer = UserNamespace::initial().user_map();
    for text in ["", "0 0", "0 0 0", "0 0 1 2", "0 0 1\n0 5 1", "0 0 2\n5 1 1", "x 0 1", "0 4294967295 2"] {
        assert_eq!(parse_map(text, &outer).err(), Some(MapError::Invalid), "{text:?}");
    }
}

#[test]
fn a_child_namespace_maps_once_and_nests_to_a_limit() {
    let initial = UserNamespace::initial();
    let child = UserNamespace::new_child(&initial, (1000, 1000)).unwrap();
    assert_eq!(child.user_seen(1000), user::OVERFLOW_ID);
    let map = parse_map("0 1000 1", &initial.user_map()).unwrap();
    child.set_map(false, map.clone()).unwrap();
    assert_eq!(child.set_map(false, map), Err(MapError::NotPermitted));
    assert_eq!(child.user_seen(1000), 0);
    assert_eq!(child.map_text(false, &initial), "         0       1000          1\n");
    let mut namespace = child;
    for _ in 1..user::DEPTH_MAX {
        namespace = UserNamespace::new_child(&namespace, (0, 0)).unwrap();
    }
    assert!(UserNamespace::new_child(&namespace, (0, 0)).is_none());
}

#[test]
fn setgroups_is_denied_only_before_the_group_map() {
    let child = UserNamespace::new_child(&UserNamespace::initial(), (0, 0)).unwrap();
    assert_eq!(child.set_setgroups("maybe"), Err(MapError::Invalid));
    child.set_setgroups("deny\n").unwrap();
    assert_eq!(child.set_setgroups("allow"), Err(MapError::NotPermitted));
    child.set_map(true, parse_map("0 0 1", &UserNamespace::initial().group_map()).unwrap()).unwrap();
    assert_eq!(child.set_setgroups("deny"), Err(MapError::NotPermitted));
}

#[test]
fn new_namespaces_have_new_numbers_and_copied_names() {
    let uts = initial_uts();
    let owner = UserNamespace::initial();
    let machine = crate::fake::FakeMachine::new();
    let copy = uts.new_child(&owner, &machine, 1);
    assert_ne!(copy.inode(), uts.inode());
    assert!(copy.inode() >= FIRST_DYNAMIC_INODE);
    copy.names().unwrap().set_host_name("inner").unwrap();
    assert_ne!(uts.names().unwrap().host_name(), "inner");
}

#[test]
fn a_copied_mount_table_keeps_later_mounts_to_itself() {
    let machine = crate::fake::FakeMachine::new();
    let original = crate::fs::testing::standard(&machine);
    let caller = crate::vfs::Caller::kernel(&machine);
    let copy = original.copy();
    assert_eq!(copy.mounts().len(), original.mounts().len());
    copy.mount(&caller, "/mnt", crate::fs::ramfs::RamFs::new(0o755), "inner").unwrap();
    assert_eq!(copy.mounts().len(), original.mounts().len() + 1);
    let root = copy.root();
    copy.make_directory(&caller, &root, "/mnt/only-here", 0o755).unwrap();
    assert!(copy.resolve(&caller, &root, "/mnt/only-here", true).is_ok());
    let original_root = original.root();
    assert!(original.resolve(&caller, &original_root, "/mnt/only-here", true).is_err());
    // A location of the original lands on the copy's mount of it.
    let moved = copy.translate(&original_root);
    assert!(alloc::sync::Arc::ptr_eq(&moved.mount, &root.mount));
}
