//! The few files under `/etc` that the C libraries read for names, users
//! and DNS, added to an image that lacks them.
//!
//! Without `/etc/hosts`, `localhost` goes to DNS; without `/etc/passwd`,
//! servers that drop privileges (nginx's `nobody`) stop; without
//! `/etc/nsswitch.conf`, glibc asks DNS before the hosts file. The
//! resolver's configuration is the kernel's: it writes the DNS servers it
//! learned to `/run/resolv.conf`, which `/etc/resolv.conf` links to. The
//! machine's clock is UTC: `/etc/localtime` and the zone file for UTC (from
//! the host's tzdata, where it has it) say so to programs that ask, such as
//! Debian's PHP.

use crate::packages::lookup;
use rosv_rofs::writer::{Contents, Directory, Node};

/// Where the kernel writes the resolver's configuration.
const RESOLVER_CONFIGURATION: &str = "/run/resolv.conf";

/// IPv4 only, as the kernel's network: a program that resolved `localhost`
/// to `::1` first would fail to connect there.
const HOSTS: &str = "127.0.0.1\tlocalhost\n";
const PASSWD: &str = "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n\
                        protocols: files\nservices: files\n";

/// Where tzdata keeps the zone file for UTC.
const UTC_ZONE: &str = "/usr/share/zoneinfo/Etc/UTC";

/// Adds each missing file to `root`; returns the guest paths added. An
/// image whose `/etc` is not a directory is left alone.
pub fn complete(root: &mut Directory) -> Vec<String> {
    let mut files: Vec<(&str, Node)> = vec![
        ("/etc/hosts", Node::File(Contents::Bytes(HOSTS.into()))),
        ("/etc/passwd", Node::File(Contents::Bytes(PASSWD.into()))),
        ("/etc/group", Node::File(Contents::Bytes(GROUP.into()))),
        ("/etc/nsswitch.conf", Node::File(Contents::Bytes(NSSWITCH.into()))),
        ("/etc/resolv.conf", Node::Symlink(RESOLVER_CONFIGURATION.into())),
    ];
    if std::path::Path::new(UTC_ZONE).is_file() {
        files.push((UTC_ZONE, Node::File(Contents::HostFile(UTC_ZONE.into()))));
        files.push(("/usr/share/zoneinfo/UTC", Node::Symlink("Etc/UTC".into())));
        files.push(("/etc/localtime", Node::Symlink(UTC_ZONE.into())));
    }
    let mut added = Vec::new();
    for (path, node) in files {
        if lookup(root, path).is_none() && root.insert(path, node).is_ok() {
            added.push(path.to_string());
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_added_and_present_ones_kept() {
        let mut root = Directory::default();
        root.insert("/etc/hosts", Node::File(Contents::Bytes(b"10.0.0.1 mine\n".to_vec()))).unwrap();
        let added = complete(&mut root);
        assert_eq!(added[..4], ["/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/resolv.conf"]);
        assert_eq!(
            lookup(&root, "/etc/hosts"),
            Some(&Node::File(Contents::Bytes(b"10.0.0.1 mine\n".to_vec()))),
            "the image's own file stays"
        );
        assert_eq!(lookup(&root, "/etc/resolv.conf"), Some(&Node::Symlink("/run/resolv.conf".into())));
        assert!(complete(&mut root).is_empty(), "a second pass adds nothing");
    }

    #[test]
    fn an_etc_that_is_not_a_directory_is_left_alone() {
        let mut root = Directory::default();
        root.insert("/etc", Node::Symlink("/elsewhere".into())).unwrap();
        assert!(complete(&mut root).iter().all(|path| !path.starts_with("/etc/")), "nothing below the link");
        assert_eq!(root.entries.get("etc"), Some(&Node::Symlink("/elsewhere".into())));
    }
}
