//! The tree through the system calls: directories, names, links, status,
//! the working directory.

use alloc::string::String;
use alloc::vec::Vec;

use super::files::{Harness, errno};
use super::*;
use crate::errno::Errno;
use crate::vfs::file::flags::{O_CREAT, O_DIRECTORY, O_RDONLY, O_WRONLY};

const AT_FDCWD: u64 = -100i64 as u64;

impl Harness {
    fn path_call(&self, number: u64, paths: &[&str], rest: &[u64]) -> i64 {
        let mut arguments = [0u64; 6];
        let mut index = 0;
        for path in paths {
            arguments[index] = self.text(path);
            index += 1;
        }
        for value in rest {
            arguments[index] = *value;
            index += 1;
        }
        self.call(number, arguments)
    }

    /// The names `getdents64` lists for directory `fd`, read `capacity`
    /// bytes at a time.
    fn list(&self, fd: i64, capacity: u64) -> Vec<String> {
        let mut names = Vec::new();
        loop {
            let length = self.call(nr::GETDENTS64, [fd as u64, BUFFER, capacity, 0, 0, 0]);
            assert!(length >= 0, "getdents64: {length}");
            if length == 0 {
                return names;
            }
            let mut bytes = alloc::vec![0u8; length as usize];
            self.machine.read_memory(BUFFER, &mut bytes).unwrap();
            let mut at = 0;
            while at < bytes.len() {
                let record = u16::from_le_bytes([bytes[at + 16], bytes[at + 17]]) as usize;
                let name = &bytes[at + 19..at + record];
                let end = name.iter().position(|&byte| byte == 0).unwrap();
                names.push(String::from_utf8(name[..end].to_vec()).unwrap());
                at += record;
            }
        }
    }

    fn mode_of(&self, path: &str, number: u64) -> u32 {
        assert_eq!(self.path_call(number, &[path], &[BUFFER + 0x2000]), 0, "{path}");
        self.stat_word(24) as u32
    }
}

#[test]
fn directories_are_made_listed_and_removed() {
    let harness = Harness::new();
    assert_eq!(harness.path_call(nr::MKDIR, &["/tmp/dir"], &[0o755]), 0);
    assert_eq!(harness.path_call(nr::MKDIR, &["/tmp/dir"], &[0o755]), errno(Errno::EEXIST));
    assert_eq!(harness.path_call(nr::MKDIR, &["/tmp/none/dir"], &[0o755]), errno(Errno::ENOENT));
    assert_eq!(harness.path_call(nr::MKDIR, &["/etc/dir"], &[0o755]), errno(Errno::EROFS));
    assert_eq!(harness.path_call(nr::MKDIR, &["/etc/motd/dir"], &[0o755]), errno(Errno::ENOTDIR));
    assert_eq!(harness.mode_of("/tmp/dir", nr::STAT), 0o040755);
    for name in ["a", "b", "c"] {
        assert!(harness.open(&alloc::format!("/tmp/dir/{name}"), O_CREAT | O_WRONLY, 0o644) > 0);
    }
    let fd = harness.open("/tmp/dir", O_RDONLY | O_DIRECTORY, 0);
    assert_eq!(harness.list(fd, 4096), [".", "..", "a", "b", "c"]);
    assert_eq!(harness.call(nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.list(fd, 32), [".", "..", "a", "b", "c"], "one entry per call");
    assert_eq!(harness.call(nr::GETDENTS64, [fd as u64, BUFFER, 8, 0, 0, 0]), 0, "at the end");
    assert_eq!(harness.call(nr::LSEEK, [fd as u64, 0, 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::GETDENTS64, [fd as u64, BUFFER, 8, 0, 0, 0]), errno(Errno::EINVAL));
    let file = harness.open("/tmp/dir/a", O_RDONLY, 0);
    assert_eq!(harness.call(nr::GETDENTS64, [file as u64, BUFFER, 4096, 0, 0, 0]), errno(Errno::ENOTDIR));
    assert_eq!(harness.path_call(nr::RMDIR, &["/tmp/dir"], &[]), errno(Errno::ENOTEMPTY));
    assert_eq!(harness.path_call(nr::RMDIR, &["/tmp/dir/a"], &[]), errno(Errno::ENOTDIR));
    assert_eq!(harness.path_call(nr::UNLINK, &["/tmp/dir"], &[]), errno(Errno::EISDIR));
    assert_eq!(harness.path_call(nr::UNLINK, &["/tmp/dir/a/"], &[]), errno(Errno::ENOTDIR));
    for name in ["a", "b"] {
        assert_eq!(harness.path_call(nr::UNLINK, &[&alloc::format!("/tmp/dir/{name}")], &[]), 0);
    }
    assert_eq!(
        harness.path_call(nr::UNLINKAT, &[], &[AT_FDCWD, harness.text("/tmp/dir/c"), 0x200]),
        errno(Errno::ENOTDIR)
    );
    assert_eq!(harness.call(nr::UNLINKAT, [AT_FDCWD, harness.text("/tmp/dir/c"), 0, 0, 0, 0]), 0);
    assert_eq!(harness.call(nr::UNLINKAT, [AT_FDCWD, harness.text("/tmp/dir"), 0x200, 0, 0, 0]), 0);
    assert_eq!(harness.path_call(nr::RMDIR, &["/tmp/dir"], &[]), errno(Errno::ENOENT));
    assert_eq!(harness.path_call(nr::RMDIR, &["/tmp"], &[]), errno(Errno::EBUSY));
    assert_eq!(harness.path_call(nr::RMDIR, &["/tmp/."], &[]), errno(Errno::EINVAL));
    assert_eq!(harness.path_call(nr::RMDIR, &["/"], &[]), errno(Errno::EBUSY));
}

#[test]
fn renames_links_and_symlinks_follow_linux() {
    let harness = Harness::new();
    assert_eq!(harness.path_call(nr::MKDIR, &["/tmp/a"], &[0o755]), 0);
    assert_eq!(harness.path_call(nr::MKDIR, &["/tmp/a/b"], &[0o755]), 0);
    assert!(harness.open("/tmp/file", O_CREAT | O_WRONLY, 0o644) > 0);
    assert!(harness.open("/tmp/other", O_CREAT | O_WRONLY, 0o644) > 0);
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp/a", "/tmp/a/b/c"], &[]), errno(Errno::EINVAL));
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp/file", "/tmp/a"], &[]), errno(Errno::EISDIR));
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp/a", "/tmp/file"], &[]), errno(Errno::ENOTDIR));
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp/file", "/dev/file"], &[]), errno(Errno::EXDEV));
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp/missing", "/tmp/x"], &[]), errno(Errno::ENOENT));
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp", "/tmp2"], &[]), errno(Errno::EBUSY));
    let renameat2 = |old: &str, new: &str, flags: u64| {
        harness.call(nr::RENAMEAT2, [AT_FDCWD, harness.text(old), AT_FDCWD, harness.text(new), flags, 0])
    };
    assert_eq!(renameat2("/tmp/file", "/tmp/other", 1), errno(Errno::EEXIST));
    assert_eq!(renameat2("/tmp/file", "/tmp/a", 2), 0, "exchange a file and a directory");
    assert_eq!(harness.mode_of("/tmp/file", nr::STAT) & 0o170000, 0o040000);
    assert_eq!(renameat2("/tmp/file", "/tmp/nothing", 2), errno(Errno::ENOENT));
    assert_eq!(renameat2("/tmp/file", "/tmp/x", 3), errno(Errno::EINVAL));
    assert_eq!(harness.path_call(nr::RENAME, &["/tmp/other", "/tmp/renamed"], &[]), 0);
    // Hard links share the file; directories cannot have them.
    assert_eq!(harness.path_call(nr::LINK, &["/tmp/renamed", "/tmp/second"], &[]), 0);
    assert_eq!(harness.path_call(nr::STAT, &["/tmp/second"], &[BUFFER + 0x2000]), 0);
    assert_eq!(harness.stat_word(16), 2);
    assert_eq!(harness.path_call(nr::LINK, &["/tmp/file", "/tmp/dirlink"], &[]), errno(Errno::EPERM));
    assert_eq!(harness.path_call(nr::LINK, &["/tmp/renamed", "/tmp/second"], &[]), errno(Errno::EEXIST));
    assert_eq!(harness.path_call(nr::LINK, &["/etc/motd", "/tmp/motd"], &[]), errno(Errno::EXDEV));
    // Symlinks.
    assert_eq!(harness.path_call(nr::SYMLINK, &["/etc/motd", "/tmp/link"], &[]), 0);
    assert_eq!(harness.path_call(nr::SYMLINK, &["x", "/tmp/link"], &[]), errno(Errno::EEXIST));
    assert_eq!(harness.path_call(nr::SYMLINK, &["", "/tmp/empty"], &[]), errno(Errno::ENOENT));
    assert_eq!(harness.path_call(nr::READLINK, &["/tmp/link"], &[BUFFER, 100]), 9);
    assert_eq!(harness.path_call(nr::READLINK, &["/tmp/link"], &[BUFFER, 4]), 4);
    assert_eq!(harness.path_call(nr::READLINK, &["/tmp/renamed"], &[BUFFER, 100]), errno(Errno::EINVAL));
    assert_eq!(harness.path_call(nr::READLINK, &["/tmp/link"], &[BUFFER, 0]), errno(Errno::EINVAL));
    assert_eq!(harness.mode_of("/tmp/link", nr::LSTAT) & 0o170000, 0o120000);
    assert_eq!(harness.mode_of("/tmp/link", nr::STAT) & 0o170000, 0o100000);
}

#[test]
fn status_calls_report_files_and_filesystems() {
    let harness = Harness::new();
    assert_eq!(harness.path_call(nr::STAT, &["/etc/motd"], &[BUFFER + 0x2000]), 0);
    assert_eq!((harness.stat_word(48), harness.stat_word(24) as u32), (1300, 0o100755));
    let link = harness.text("/etc/link");
    assert_eq!(harness.call(nr::NEWFSTATAT, [AT_FDCWD, link, BUFFER + 0x2000, 0x100, 0, 0]), 0);
    assert_eq!(harness.stat_word(24) as u32 & 0o170000, 0o120000);
    assert_eq!(
        harness.call(nr::NEWFSTATAT, [AT_FDCWD, link, BUFFER + 0x2000, 0x8, 0, 0]),
        errno(Errno::EINVAL)
    );
    let etc = harness.open("/etc", O_RDONLY | O_DIRECTORY, 0);
    assert_eq!(harness.call(nr::NEWFSTATAT, [etc as u64, harness.text("motd"), BUFFER + 0x2000, 0, 0, 0]), 0);
    assert_eq!(harness.stat_word(48), 1300);
    let file = harness.open("/etc/motd", O_RDONLY, 0);
    assert_eq!(
        harness.call(nr::NEWFSTATAT, [file as u64, harness.text("x"), BUFFER, 0, 0, 0]),
        errno(Errno::ENOTDIR)
    );
    assert_eq!(
        harness.call(nr::NEWFSTATAT, [file as u64, harness.text(""), BUFFER, 0, 0, 0]),
        errno(Errno::ENOENT)
    );
    assert_eq!(
        harness.call(nr::STATX, [file as u64, harness.text(""), 0x1000, 0x7ff, BUFFER + 0x2000, 0]),
        0
    );
    assert_eq!(harness.stat_word(40), 1300);
    assert_eq!(harness.stat_word(0) & 0xffff_ffff, 0x7ff);
    assert_eq!(harness.path_call(nr::STATFS, &["/proc/self"], &[BUFFER + 0x2000]), 0);
    assert_eq!(harness.stat_word(0), 0x9fa0);
    assert_eq!(harness.call(nr::FSTATFS, [file as u64, BUFFER + 0x2000, 0, 0, 0, 0]), 0);
    assert_eq!(harness.stat_word(80) & 1, 1, "ST_RDONLY");
    // access: root may read and write anything writable; execute needs a bit.
    assert_eq!(harness.path_call(nr::ACCESS, &["/etc/motd"], &[4]), 0);
    assert_eq!(harness.path_call(nr::ACCESS, &["/etc/motd"], &[2]), errno(Errno::EROFS));
    assert_eq!(harness.path_call(nr::ACCESS, &["/etc/missing"], &[0]), errno(Errno::ENOENT));
    assert_eq!(harness.path_call(nr::ACCESS, &["/etc/motd"], &[8]), errno(Errno::EINVAL));
    assert!(harness.open("/tmp/plain", O_CREAT | O_WRONLY, 0o644) > 0);
    assert_eq!(harness.path_call(nr::ACCESS, &["/tmp/plain"], &[1]), errno(Errno::EACCES));
    assert_eq!(harness.path_call(nr::CHMOD, &["/tmp/plain"], &[0o755]), 0);
    assert_eq!(harness.path_call(nr::ACCESS, &["/tmp/plain"], &[1]), 0);
    assert_eq!(harness.path_call(nr::CHMOD, &["/etc/motd"], &[0o600]), errno(Errno::EROFS));
    assert_eq!(harness.path_call(nr::CHOWN, &["/tmp/plain"], &[0, 0]), 0);
    // utimensat sets times; UTIME_OMIT keeps one.
    let times = [5u64, 0, 0, (1 << 30) - 2];
    let bytes: Vec<u8> = times.iter().flat_map(|word| word.to_le_bytes()).collect();
    harness.machine.write_memory(BUFFER + 0x100, &bytes).unwrap();
    assert_eq!(
        harness.call(nr::UTIMENSAT, [AT_FDCWD, harness.text("/tmp/plain"), BUFFER + 0x100, 0, 0, 0]),
        0
    );
    assert_eq!(harness.path_call(nr::STAT, &["/tmp/plain"], &[BUFFER + 0x2000]), 0);
    assert_eq!(harness.stat_word(72), 5, "access time");
    assert_ne!(harness.stat_word(88), 5, "modification time kept");
    // umask applies to new files.
    assert_eq!(harness.call(nr::UMASK, [0o077, 0, 0, 0, 0, 0]), 0o022);
    assert!(harness.open("/tmp/private", O_CREAT | O_WRONLY, 0o666) > 0);
    assert_eq!(harness.mode_of("/tmp/private", nr::STAT), 0o100600);
    assert_eq!(harness.path_call(nr::TRUNCATE, &["/tmp/private"], &[100]), 0);
    assert_eq!(harness.path_call(nr::STAT, &["/tmp/private"], &[BUFFER + 0x2000]), 0);
    assert_eq!(harness.stat_word(48), 100);
    assert_eq!(harness.path_call(nr::TRUNCATE, &["/tmp"], &[0]), errno(Errno::EISDIR));
}

#[test]
fn the_working_directory_follows_chdir() {
    let harness = Harness::new();
    assert_eq!(harness.path_call(nr::MKDIR, &["/tmp/work"], &[0o755]), 0);
    assert_eq!(harness.path_call(nr::CHDIR, &["/tmp/work"], &[]), 0);
    assert_eq!(harness.call(nr::GETCWD, [BUFFER, 100, 0, 0, 0, 0]), 10);
    let mut path = [0u8; 10];
    harness.machine.read_memory(BUFFER, &mut path).unwrap();
    assert_eq!(&path, b"/tmp/work\0");
    assert!(harness.open("here", O_CREAT | O_WRONLY, 0o644) > 0);
    assert_eq!(harness.path_call(nr::STAT, &["/tmp/work/here"], &[BUFFER + 0x2000]), 0);
    assert_eq!(harness.path_call(nr::STAT, &["../work/./here"], &[BUFFER + 0x2000]), 0);
    assert_eq!(harness.path_call(nr::CHDIR, &["here"], &[]), errno(Errno::ENOTDIR));
    assert_eq!(harness.path_call(nr::CHDIR, &["/nowhere"], &[]), errno(Errno::ENOENT));
    let etc = harness.open("/etc", O_RDONLY | O_DIRECTORY, 0);
    assert_eq!(harness.call(nr::FCHDIR, [etc as u64, 0, 0, 0, 0, 0]), 0);
    assert!(harness.open("motd", O_RDONLY, 0) > 0);
    assert_eq!(harness.path_call(nr::READLINK, &["/proc/self/cwd"], &[BUFFER, 100]), 4);
    let file = harness.open("motd", O_RDONLY, 0);
    assert_eq!(harness.call(nr::FCHDIR, [file as u64, 0, 0, 0, 0, 0]), errno(Errno::ENOTDIR));
    assert_eq!(harness.call(nr::GETCWD, [BUFFER, 4, 0, 0, 0, 0]), errno(Errno::ERANGE));
    // A removed working directory has no path.
    assert_eq!(harness.path_call(nr::CHDIR, &["/tmp/work"], &[]), 0);
    assert_eq!(harness.path_call(nr::UNLINK, &["here"], &[]), 0);
    assert_eq!(harness.path_call(nr::RMDIR, &["/tmp/work"], &[]), 0);
    assert_eq!(harness.call(nr::GETCWD, [BUFFER, 100, 0, 0, 0, 0]), errno(Errno::ENOENT));
}

#[test]
fn extended_attributes_live_on_ramfs_and_read_only_files_have_none() {
    let harness = Harness::new();
    let name = harness.text("user.comment");
    let call = |number, path: &str, rest: &[u64]| harness.path_call(number, &[path], rest);
    assert_eq!(call(nr::GETXATTR, "/tmp", &[name, BUFFER, 64]), errno(Errno::ENODATA));
    assert_eq!(call(nr::LGETXATTR, "/tmp", &[name, BUFFER, 64]), errno(Errno::ENODATA));
    assert_eq!(call(nr::LISTXATTR, "/tmp", &[BUFFER, 64]), 0);
    harness.machine.write_memory(BUFFER, b"note").unwrap();
    assert_eq!(call(nr::SETXATTR, "/tmp", &[name, BUFFER, 4, 0]), 0);
    assert_eq!(call(nr::GETXATTR, "/tmp", &[name, BUFFER + 64, 64]), 4);
    assert_eq!(call(nr::LISTXATTR, "/tmp", &[BUFFER + 64, 64]), 13, "user.comment and its NUL");
    assert_eq!(call(nr::REMOVEXATTR, "/tmp", &[name]), 0);
    assert_eq!(call(nr::REMOVEXATTR, "/tmp", &[name]), errno(Errno::ENODATA));
    // The image's files are read-only and have none.
    assert_eq!(call(nr::SETXATTR, "/etc/motd", &[name, BUFFER, 4, 0]), errno(Errno::EROFS));
    assert_eq!(call(nr::GETXATTR, "/etc/motd", &[name, BUFFER, 64]), errno(Errno::ENODATA));
    assert_eq!(call(nr::GETXATTR, "/no/such/file", &[name, BUFFER, 64]), errno(Errno::ENOENT));
    assert_eq!(harness.call(nr::FGETXATTR, [99, name, BUFFER, 64, 0, 0]), errno(Errno::EBADF));
    assert_eq!(harness.call(nr::FLISTXATTR, [0, BUFFER, 64, 0, 0, 0]), 0);
}
