use alloc::vec;

use super::*;
use crate::device::MemoryDisk;
use crate::fake::FakeMachine;

#[test]
fn disks_appear_in_dev_and_mount_by_type() {
    let machine = FakeMachine::new();
    let caller = Caller::kernel(&machine);
    let data: Arc<dyn BlockDevice> = Arc::new(MemoryDisk::writable(testing::sample_image()));
    let blank: Arc<dyn BlockDevice> = Arc::new(MemoryDisk::writable(vec![0u8; 4096]));
    let vfs =
        standard_tree(&machine, super::Root::Ramfs, &[data, blank], SystemInformation::default()).unwrap();
    assert_eq!(vfs.mounts()[0].filesystem().type_name(), "ramfs", "a ramfs root without an image");
    mount_by_type(&vfs, &caller, "rofs", "/dev/vda", "/data").unwrap();
    assert_eq!(vfs.read_file(&caller, "/data/etc/motd").unwrap().len(), 1300);
    assert_eq!(
        mount_by_type(&vfs, &caller, "rofs", "/dev/vdb", "/blank").err(),
        Some(MountError::Image(RofsError::NotRofs))
    );
    assert_eq!(
        mount_by_type(&vfs, &caller, "rofs", "/dev/null", "/x").err(),
        Some(MountError::NotBlockDevice)
    );
    assert_eq!(mount_by_type(&vfs, &caller, "xfs", "/dev/vda", "/x").err(), Some(MountError::UnknownType));
    assert_eq!(
        mount_by_type(&vfs, &caller, "ramfs", "none", "/missing/x").err(),
        Some(MountError::Path(FsError::NotFound))
    );
    mount_by_type(&vfs, &caller, "ramfs", "none", "/scratch").unwrap();
    assert!(vfs.resolve(&caller, &vfs.root(), "/scratch", true).unwrap().is_directory());
}

#[test]
fn disks_are_named_like_linux_virtio_disks() {
    assert_eq!([disk_name(0), disk_name(1), disk_name(25), disk_name(26)], ["vda", "vdb", "vdz", "vdaa"]);
}
