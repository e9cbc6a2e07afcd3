//! The ROFS reader on arbitrary images: mount, then walk every directory
//! and read every file, as the kernel would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rosv_rofs::{FileType, Rofs};

fuzz_target!(|bytes: &[u8]| {
    let Ok(rofs) = Rofs::mount(bytes) else {
        return;
    };
    let mut pending = vec![rofs.root()];
    let mut visited = 0;
    while let Some(directory) = pending.pop() {
        visited += 1;
        if visited > 10_000 {
            break;
        }
        let Ok(entries) = rofs.read_dir(directory) else {
            continue;
        };
        for entry in entries {
            match rofs.metadata(entry.inode).map(|metadata| metadata.file_type) {
                Ok(FileType::Directory) => pending.push(entry.inode),
                Ok(FileType::Regular) => {
                    let mut buffer = [0u8; 512];
                    let _ = rofs.read(entry.inode, 0, &mut buffer);
                }
                Ok(FileType::Symlink) => {
                    let _ = rofs.read_link(entry.inode);
                }
                Err(_) => {}
            }
        }
    }
    let _ = rofs.resolve("/a/../b/./c");
});
