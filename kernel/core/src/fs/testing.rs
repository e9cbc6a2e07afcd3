//! Trees for tests: the standard tree over a ROFS image built on the spot.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_rofs::writer::{Contents, Directory, Node, write_image};

use super::procfs::SystemInformation;
use crate::device::{BlockDevice, MemoryDisk};
use crate::fake::FakeMachine;
use crate::process::{Process, ProcessFiles};
use crate::random::Random;
use crate::vfs::Vfs;

/// A ROFS image holding `files` (path, contents) and `symlinks` (path,
/// target).
pub fn rofs_image(files: &[(&str, &[u8])], symlinks: &[(&str, &str)]) -> Vec<u8> {
    let mut root = Directory::default();
    for (path, contents) in files {
        root.insert(path, Node::File(Contents::Bytes(contents.to_vec()))).unwrap();
    }
    for (path, target) in symlinks {
        root.insert(path, Node::Symlink(String::from(*target))).unwrap();
    }
    let mut image = std::io::Cursor::new(Vec::new());
    write_image(&root, &mut image).unwrap();
    image.into_inner()
}

/// The image most tests use: `/bin/hello`, `/etc/motd` (1300 bytes of 7),
/// `/etc/link` to `motd`, `/lib` to `/etc`.
pub fn sample_image() -> Vec<u8> {
    rofs_image(
        &[("/bin/hello", b"\x7fELF hello"), ("/etc/motd", &[7u8; 1300]), ("/etc/empty", b"")],
        &[("/etc/link", "motd"), ("/lib", "/etc"), ("/loop", "/loop")],
    )
}

/// The standard tree over [`sample_image`], with one writable 64 KiB disk.
pub fn standard(machine: &FakeMachine) -> Arc<Vfs> {
    let image: Arc<dyn BlockDevice> = Arc::new(MemoryDisk::writable(sample_image()));
    let disk: Arc<dyn BlockDevice> = Arc::new(MemoryDisk::writable(alloc::vec![0u8; 64 * 1024]));
    let system = SystemInformation { memory_total_bytes: 128 << 20 };
    super::standard_tree(machine, super::Root::Rofs(image), &[disk], system).unwrap()
}

/// A process in the standard tree, in `/`.
pub fn process(machine: &FakeMachine) -> Arc<Process> {
    let vfs = standard(machine);
    let files = ProcessFiles::open(vfs, machine, "/").unwrap();
    let network = crate::net::Network::new(None, &crate::net::Settings::default(), 1, 0);
    Process::new(
        String::from("/bin/hello"),
        crate::fake::address_space(machine),
        files,
        network,
        Random::seeded(machine),
        0,
    )
}
