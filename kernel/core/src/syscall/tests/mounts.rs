//! `mount` and `umount2` through the system calls.

use super::files::{Harness, errno};
use super::*;
use crate::errno::Errno;
use crate::vfs::file::flags::{O_CREAT, O_RDONLY, O_WRONLY};

const MS_RDONLY: u64 = 1;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SHARED: u64 = 1 << 20;
const MNT_DETACH: u64 = 2;
const MNT_EXPIRE: u64 = 4;
const MNT_FORCE: u64 = 1;

impl Harness {
    fn mount(&self, source: &str, target: &str, type_name: &str, flags: u64, data: Option<&str>) -> i64 {
        let data = data.map_or(0, |data| self.text(data));
        let (source, target, type_name) = (self.text(source), self.text(target), self.text(type_name));
        self.call(nr::MOUNT, [source, target, type_name, flags, data, 0])
    }

    fn umount(&self, target: &str, flags: u64) -> i64 {
        self.call(nr::UMOUNT2, [self.text(target), flags, 0, 0, 0, 0])
    }

    fn make_directory(&self, path: &str) {
        assert_eq!(self.call(nr::MKDIR, [self.text(path), 0o755, 0, 0, 0, 0]), 0, "mkdir {path}");
    }

    fn close(&self, fd: i64) {
        assert_eq!(self.call(nr::CLOSE, [fd as u64, 0, 0, 0, 0, 0]), 0);
    }
}

#[test]
fn a_tmpfs_is_mounted_used_and_unmounted_once_unused() {
    let harness = Harness::new();
    harness.make_directory("/tmp/mnt");
    assert_eq!(harness.mount("none", "/tmp/mnt", "tmpfs", 0, Some("mode=0700,size=1m")), 0);
    let fd = harness.open("/tmp/mnt/file", O_CREAT | O_WRONLY, 0o644);
    assert!(fd >= 0);
    assert_eq!(harness.write(fd, b"held"), 4);
    // An open file keeps it busy; a directory that is no mount's root is
    // not a mount; the root cannot go.
    assert_eq!(harness.umount("/tmp/mnt", 0), errno(Errno::EBUSY));
    assert_eq!(harness.umount("/tmp/..", 0), errno(Errno::EBUSY));
    harness.make_directory("/tmp/mnt/inner");
    assert_eq!(harness.umount("/tmp/mnt/inner", 0), errno(Errno::EINVAL));
    harness.close(fd);
    assert_eq!(harness.mode_of_path("/tmp/mnt"), 0o40700);
    assert_eq!(harness.umount("/tmp/mnt", 0), 0);
    assert_eq!(
        harness.open("/tmp/mnt/file", O_RDONLY, 0),
        errno(Errno::ENOENT),
        "the tmpfs went with its mount"
    );
    assert_eq!(harness.umount("/tmp/mnt", 0), errno(Errno::EINVAL), "nothing mounted any more");
}

#[test]
fn bad_mounts_get_linuxs_errors() {
    let harness = Harness::new();
    harness.make_directory("/tmp/mnt");
    assert_eq!(harness.mount("none", "/tmp/mnt", "nosuchfs", 0, None), errno(Errno::ENODEV));
    assert_eq!(harness.mount("none", "/tmp/missing", "tmpfs", 0, None), errno(Errno::ENOENT));
    assert_eq!(harness.mount("none", "/tmp/mnt", "tmpfs", 0, Some("bogus=1")), errno(Errno::EINVAL));
    assert_eq!(harness.mount("/dev/null", "/tmp/mnt", "ext4", 0, None), errno(Errno::ENOTBLK));
    let fd = harness.open("/tmp/mnt/plain", O_CREAT | O_WRONLY, 0o644);
    harness.close(fd);
    assert_eq!(harness.mount("none", "/tmp/mnt/plain", "tmpfs", 0, None), errno(Errno::ENOTDIR));
    assert_eq!(harness.umount("/tmp/mnt", 0x100), errno(Errno::EINVAL));
    assert_eq!(harness.umount("/tmp/mnt", MNT_EXPIRE | MNT_FORCE), errno(Errno::EINVAL));
    assert_eq!(harness.mount("none", "/", "tmpfs", MS_PRIVATE | MS_SHARED, None), errno(Errno::EINVAL));
    assert_eq!(harness.mount("none", "/", "none", MS_PRIVATE | MS_REC, None), 0, "propagation changes");
    harness.process.state.lock().credentials = crate::process::Credentials::of(1000, 1000);
    assert_eq!(harness.mount("none", "/tmp/mnt", "tmpfs", 0, None), errno(Errno::EPERM));
    assert_eq!(harness.umount("/tmp", 0), errno(Errno::EPERM));
}

#[test]
fn read_only_bind_and_moved_mounts_behave_as_on_linux() {
    let harness = Harness::new();
    harness.make_directory("/tmp/data");
    harness.make_directory("/tmp/view");
    harness.make_directory("/tmp/moved");
    assert_eq!(harness.mount("none", "/tmp/data", "tmpfs", MS_RDONLY, None), 0);
    assert_eq!(harness.open("/tmp/data/file", O_CREAT | O_WRONLY, 0o644), errno(Errno::EROFS));
    assert_eq!(harness.mount("none", "/tmp/data", "none", MS_REMOUNT, None), 0);
    let fd = harness.open("/tmp/data/file", O_CREAT | O_WRONLY, 0o644);
    assert_eq!(harness.write(fd, b"shared"), 6);
    harness.close(fd);
    // A bind mount shows the same files, with the same device number.
    assert_eq!(harness.mount("/tmp/data", "/tmp/view", "", MS_BIND, None), 0);
    let fd = harness.open("/tmp/view/file", O_RDONLY, 0);
    assert_eq!(harness.read(fd, 16).unwrap(), b"shared");
    harness.close(fd);
    assert_eq!(harness.path_call_device("/tmp/view/file"), harness.path_call_device("/tmp/data/file"));
    assert_ne!(harness.path_call_device("/tmp/view"), harness.path_call_device("/"));
    // Read-only for the bind alone.
    assert_eq!(harness.mount("none", "/tmp/view", "none", MS_REMOUNT | MS_BIND | MS_RDONLY, None), 0);
    assert_eq!(harness.open("/tmp/view/other", O_CREAT | O_WRONLY, 0o644), errno(Errno::EROFS));
    let fd = harness.open("/tmp/data/other", O_CREAT | O_WRONLY, 0o644);
    assert!(fd >= 0);
    harness.close(fd);
    // A mount moves, with its files.
    assert_eq!(harness.mount("/tmp/view", "/tmp/moved", "", MS_MOVE, None), 0);
    assert_eq!(harness.umount("/tmp/view", 0), errno(Errno::EINVAL), "nothing is at the old place");
    let fd = harness.open("/tmp/moved/file", O_RDONLY, 0);
    assert!(fd >= 0);
    harness.close(fd);
    // Detaching takes a busy mount out at once.
    let fd = harness.open("/tmp/moved/file", O_RDONLY, 0);
    assert_eq!(harness.umount("/tmp/moved", 0), errno(Errno::EBUSY));
    assert_eq!(harness.umount("/tmp/moved", MNT_DETACH), 0);
    assert_eq!(harness.read(fd, 16).unwrap(), b"shared", "an open file still reads");
    harness.close(fd);
    assert_eq!(harness.open("/tmp/moved/file", O_RDONLY, 0), errno(Errno::ENOENT));
    assert_eq!(harness.umount("/tmp/data", 0), 0);
}

#[test]
fn proc_mounted_again_shows_the_same_processes() {
    let harness = Harness::new();
    harness.make_directory("/tmp/proc2");
    assert_eq!(harness.mount("proc", "/tmp/proc2", "proc", 0, None), 0);
    let fd = harness.open("/tmp/proc2/self/comm", O_RDONLY, 0);
    assert!(fd >= 0, "{fd}");
    assert_eq!(harness.read(fd, 64).unwrap(), b"hello\n");
    harness.close(fd);
    let fd = harness.open("/proc/mounts", O_RDONLY, 0);
    let mounts = harness.read(fd, 4096).unwrap();
    harness.close(fd);
    assert!(
        String::from_utf8_lossy(&mounts).contains("proc /tmp/proc2 proc"),
        "{}",
        String::from_utf8_lossy(&mounts)
    );
    assert_eq!(harness.umount("/tmp/proc2", 0), 0);
    let fd = harness.open("/proc/self/comm", O_RDONLY, 0);
    assert!(fd >= 0, "the first /proc stays");
}

impl Harness {
    /// `st_mode` of `path`.
    fn mode_of_path(&self, path: &str) -> u32 {
        assert_eq!(self.call(nr::STAT, [self.text(path), BUFFER + 0x2000, 0, 0, 0, 0]), 0, "{path}");
        self.stat_word(24) as u32
    }

    /// `st_dev` of `path`.
    fn path_call_device(&self, path: &str) -> u64 {
        assert_eq!(self.call(nr::STAT, [self.text(path), BUFFER + 0x2000, 0, 0, 0, 0]), 0, "{path}");
        self.stat_word(0)
    }
}
