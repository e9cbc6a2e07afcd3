use alloc::vec::Vec;

use super::*;
use crate::fake::FakeMachine;
use crate::vfs::{Caller, NewNode, RenameMode};

fn entries(directory: &dyn Node, caller: &Caller<'_>) -> Vec<(String, u64)> {
    let mut entries = Vec::new();
    let mut offset = 0;
    while let Some(entry) = directory.read_directory(caller, offset).unwrap() {
        entries.push((entry.name, entry.next_offset));
        offset = entry.next_offset;
    }
    entries
}

fn links(node: &Arc<dyn Node>, caller: &Caller<'_>) -> u64 {
    node.metadata(caller).unwrap().link_count
}

#[test]
fn files_grow_shrink_and_keep_their_bytes() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let ramfs = RamFs::new(0o755);
    let root = ramfs.root();
    let file = root.create(&caller, "file", NewNode::File, 0o644).unwrap();
    assert_eq!(file.write_at(&caller, 0, b"hello").unwrap(), 5);
    assert_eq!(file.write_at(&caller, 10, b"world").unwrap(), 5);
    let mut buffer = [0xffu8; 32];
    assert_eq!(file.read_at(&caller, 0, &mut buffer).unwrap(), 15);
    assert_eq!(&buffer[..15], b"hello\0\0\0\0\0world");
    assert_eq!(file.append(&caller, b"!").unwrap(), (1, 16));
    file.truncate(&caller, 3).unwrap();
    assert_eq!(file.read_at(&caller, 0, &mut buffer).unwrap(), 3);
    assert_eq!(file.read_at(&caller, 100, &mut buffer).unwrap(), 0);
    let metadata = file.metadata(&caller).unwrap();
    assert_eq!((metadata.size_bytes, metadata.mode()), (3, 0o100644));
    assert_eq!(file.write_at(&caller, u64::MAX - 1, b"xx"), Err(FsError::TooLarge));
    assert_eq!(root.read_at(&caller, 0, &mut buffer), Err(FsError::IsDirectory));
}

#[test]
fn directories_count_links_and_refuse_removal_while_full() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let root = RamFs::new(0o755).root();
    let directory = root.create(&caller, "directory", NewNode::Directory, 0o755).unwrap();
    assert_eq!(links(&root, &caller), 3);
    assert_eq!(links(&directory, &caller), 2);
    assert!(Arc::ptr_eq(&directory.parent().unwrap(), &root) || directory.parent().unwrap().inode() == 1);
    let file = directory.create(&caller, "file", NewNode::File, 0o644).unwrap();
    assert_eq!(root.create(&caller, "directory", NewNode::File, 0o644).err(), Some(FsError::Exists));
    assert_eq!(root.remove(&caller, "directory", true), Err(FsError::NotEmpty));
    assert_eq!(root.remove(&caller, "directory", false), Err(FsError::IsDirectory));
    assert_eq!(directory.remove(&caller, "file", true), Err(FsError::NotDirectory));
    directory.link(&caller, "second", &*file).unwrap();
    assert_eq!(links(&file, &caller), 2);
    directory.remove(&caller, "file", false).unwrap();
    directory.remove(&caller, "second", false).unwrap();
    assert_eq!(links(&file, &caller), 0);
    // An unlinked file keeps its contents for those who have it open.
    file.write_at(&caller, 0, b"still here").unwrap();
    assert_eq!(directory.link(&caller, "back", &*file), Err(FsError::NotFound));
    root.remove(&caller, "directory", true).unwrap();
    assert_eq!(links(&root, &caller), 2);
    assert_eq!(root.lookup(&caller, "directory").err(), Some(FsError::NotFound));
}

#[test]
fn directory_offsets_stay_valid_while_entries_change() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let root = RamFs::new(0o755).root();
    for name in ["a", "b", "c"] {
        root.create(&caller, name, NewNode::File, 0o644).unwrap();
    }
    let listed = entries(&*root, &caller);
    let after_a = listed[0].1;
    root.remove(&caller, "b", false).unwrap();
    root.create(&caller, "d", NewNode::File, 0o644).unwrap();
    let rest: Vec<String> = {
        let mut names = Vec::new();
        let mut offset = after_a;
        while let Some(entry) = root.read_directory(&caller, offset).unwrap() {
            names.push(entry.name);
            offset = entry.next_offset;
        }
        names
    };
    assert_eq!(rest, ["c", "d"]);
}

#[test]
fn renames_replace_exchange_and_move_directories() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let root = RamFs::new(0o755).root();
    let left = root.create(&caller, "left", NewNode::Directory, 0o755).unwrap();
    let right = root.create(&caller, "right", NewNode::Directory, 0o755).unwrap();
    let file = left.create(&caller, "file", NewNode::File, 0o644).unwrap();
    let other = right.create(&caller, "other", NewNode::File, 0o644).unwrap();
    left.rename(&caller, "file", &*right, "other", RenameMode::Replace).unwrap();
    assert_eq!(right.lookup(&caller, "other").unwrap().inode(), file.inode());
    assert_eq!(links(&other, &caller), 0);
    assert_eq!(left.lookup(&caller, "file").err(), Some(FsError::NotFound));
    let inner = left.create(&caller, "inner", NewNode::Directory, 0o755).unwrap();
    assert_eq!(
        left.rename(&caller, "inner", &*right, "other", RenameMode::Replace),
        Err(FsError::NotDirectory)
    );
    assert_eq!(left.rename(&caller, "inner", &*right, "other", RenameMode::NoReplace), Err(FsError::Exists));
    left.rename(&caller, "inner", &*right, "moved", RenameMode::Replace).unwrap();
    assert_eq!(inner.parent().unwrap().inode(), right.inode());
    assert_eq!((links(&left, &caller), links(&right, &caller)), (2, 3));
    right.rename(&caller, "moved", &*right, "other", RenameMode::Exchange).unwrap();
    assert_eq!(right.lookup(&caller, "other").unwrap().inode(), inner.inode());
    assert_eq!(right.lookup(&caller, "moved").unwrap().inode(), file.inode());
    assert_eq!(right.rename(&caller, "nothing", &*left, "x", RenameMode::Replace), Err(FsError::NotFound));
    let elsewhere = RamFs::new(0o755).root();
    assert_eq!(
        right.rename(&caller, "moved", &*elsewhere, "x", RenameMode::Replace),
        Err(FsError::CrossDevice)
    );
}
