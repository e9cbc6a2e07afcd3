use alloc::vec::Vec;

use super::*;
use crate::device::MemoryDisk;
use crate::fake::FakeMachine;
use crate::fs::testing;
use crate::vfs::Vfs;
use crate::vfs::file::flags;

fn mount(image: Vec<u8>) -> Arc<RofsFileSystem> {
    RofsFileSystem::mount(Arc::new(MemoryDisk::writable(image))).unwrap()
}

#[test]
fn files_directories_and_links_read_back() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let rofs = mount(testing::sample_image());
    let root = rofs.root();
    let etc = root.lookup(&caller, "etc").unwrap();
    assert_eq!(etc.parent().unwrap().inode(), root.inode());
    assert!(root.parent().is_none());
    let motd = etc.lookup(&caller, "motd").unwrap();
    let metadata = motd.metadata(&caller).unwrap();
    assert_eq!((metadata.size_bytes, metadata.mode()), (1300, 0o100755));
    let mut buffer = [0u8; 2000];
    assert_eq!(motd.read_at(&caller, 1000, &mut buffer).unwrap(), 300);
    assert!(buffer[..300].iter().all(|&byte| byte == 7));
    let link = etc.lookup(&caller, "link").unwrap();
    assert_eq!(link.read_link(&caller).unwrap().text(), "motd");
    let mut names = Vec::new();
    let mut offset = 0;
    while let Some(entry) = etc.read_directory(&caller, offset).unwrap() {
        names.push(entry.name);
        offset = entry.next_offset;
    }
    assert_eq!(names, ["empty", "link", "motd"]);
    assert_eq!(motd.write_at(&caller, 0, b"x"), Err(FsError::ReadOnly));
    assert_eq!(etc.lookup(&caller, "nope").err(), Some(FsError::NotFound));
    assert!(rofs.is_read_only());
}

#[test]
fn small_reads_go_to_the_disk_once_per_block() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let big = alloc::vec![3u8; 40_000];
    let rofs = mount(testing::rofs_image(&[("/big", &big)], &[]));
    let file = rofs.root().lookup(&caller, "big").unwrap();
    let before = rofs.disk().disk_reads();
    let mut buffer = [0u8; 100];
    for offset in (0..8192).step_by(100) {
        file.read_at(&caller, offset, &mut buffer).unwrap();
    }
    let reads = rofs.disk().disk_reads() - before;
    assert!(reads <= 3, "{reads} disk reads for two blocks");
    let mut large = alloc::vec![0u8; 40_000];
    assert_eq!(file.read_at(&caller, 0, &mut large).unwrap(), 40_000);
    assert!(large.iter().all(|&byte| byte == 3));
}

#[test]
fn a_corrupt_image_is_refused() {
    let mut image = testing::sample_image();
    image[0] ^= 0xff;
    let disk = Arc::new(MemoryDisk::writable(image));
    assert_eq!(RofsFileSystem::mount(disk).err(), Some(RofsError::NotRofs));
}

#[test]
fn writes_through_the_vfs_fail_with_erofs() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let vfs = Vfs::new(mount(testing::sample_image()), "/dev/vda");
    let root = vfs.root();
    assert_eq!(vfs.open(&caller, &root, "/etc/motd", flags::O_RDWR, 0).err(), Some(FsError::ReadOnly));
    assert_eq!(
        vfs.open(&caller, &root, "/new", flags::O_CREAT | flags::O_WRONLY, 0o644).err(),
        Some(FsError::ReadOnly)
    );
    assert_eq!(vfs.make_directory(&caller, &root, "/etc/sub", 0o755), Err(FsError::ReadOnly));
    assert_eq!(vfs.unlink(&caller, &root, "/etc/motd"), Err(FsError::ReadOnly));
    let file = vfs.open(&caller, &root, "/etc/motd", flags::O_RDONLY, 0).unwrap();
    let mut buffer = [0u8; 10];
    assert_eq!(file.read(&caller, &mut buffer), Ok(10));
    assert_eq!(vfs.read_file(&caller, "/bin/hello").unwrap(), b"\x7fELF hello");
}
