//! Volumes written by dosfstools and mtools, read back.

extern crate std;

use std::path::Path;
use std::process::Command;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, println, vec};

use super::*;

struct Bytes(Vec<u8>);

impl Disk for Bytes {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let source = self.0.get(start..start + buffer.len()).ok_or(DiskError)?;
        buffer.copy_from_slice(source);
        Ok(())
    }
}

fn has_program(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|directory| directory.join(program).is_file()))
}

/// A volume of `size_kib` made by `mkfs.vfat -F bits` with `files` copied
/// in by `mcopy`; `None` (after saying SKIPPED) without the tools.
fn volume(test: &str, bits: u32, size_kib: u32, files: &[(&str, &[u8])]) -> Option<Vec<u8>> {
    for program in ["mkfs.vfat", "mcopy"] {
        if !has_program(program) && !Path::new("/usr/sbin").join(program).is_file() {
            println!("SKIPPED {test}: {program} is not installed (dosfstools, mtools)");
            return None;
        }
    }
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let image = scratch.path().join("volume.img");
    let mkfs = if has_program("mkfs.vfat") {
        String::from("mkfs.vfat")
    } else {
        String::from("/usr/sbin/mkfs.vfat")
    };
    let status = Command::new(mkfs)
        .args(["-C", "-F", &bits.to_string(), "-S", "512", "-s", "1", "-n", "CIDATA"])
        .arg(&image)
        .arg(size_kib.to_string())
        .output()
        .expect("run mkfs.vfat");
    assert!(status.status.success(), "mkfs.vfat: {}", String::from_utf8_lossy(&status.stderr));
    for (name, contents) in files {
        let host = scratch.path().join(name);
        std::fs::write(&host, contents).expect("write a file to copy");
        let status = Command::new("mcopy")
            .arg("-i")
            .arg(&image)
            .arg(&host)
            .arg(format!("::{name}"))
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .expect("run mcopy");
        assert!(status.status.success(), "mcopy: {}", String::from_utf8_lossy(&status.stderr));
    }
    Some(std::fs::read(&image).expect("read the volume"))
}

fn long_file() -> Vec<u8> {
    (0..5000u32).map(|index| (index % 251) as u8).collect()
}

fn check_variant(test: &str, bits: u32, size_kib: u32, expected: FatType) {
    let long = long_file();
    let files: [(&str, &[u8]); 4] = [
        ("meta-data", b"local-hostname: fat-host\n"),
        ("user-data", b"#cloud-config\nhostname: fat-host\n"),
        ("SHORT.TXT", b"short"),
        ("long-file.bin", &long),
    ];
    let Some(bytes) = volume(test, bits, size_kib, &files) else { return };
    let disk = Bytes(bytes);
    let volume = Volume::open(&disk).expect("a FAT volume");
    assert_eq!(volume.fat_type(), expected);
    assert!(volume.label(&disk).unwrap().eq_ignore_ascii_case("cidata"));
    for (name, contents) in files {
        assert_eq!(volume.read_root_file(&disk, name).unwrap().as_deref(), Some(contents), "{name}");
    }
    assert_eq!(volume.read_root_file(&disk, "META-DATA").unwrap().as_deref(), Some(files[0].1));
    assert_eq!(volume.read_root_file(&disk, "vendor-data").unwrap(), None);
}

#[test]
fn reads_fat12() {
    check_variant("reads_fat12", 12, 1024, FatType::Fat12);
}

#[test]
fn reads_fat16() {
    check_variant("reads_fat16", 16, 16 * 1024, FatType::Fat16);
}

#[test]
fn reads_fat32() {
    check_variant("reads_fat32", 32, 40 * 1024, FatType::Fat32);
}

#[test]
fn a_broken_chain_is_an_error() {
    let long = long_file();
    let Some(mut bytes) = volume("a_broken_chain_is_an_error", 16, 16 * 1024, &[("long-file.bin", &long)])
    else {
        return;
    };
    let disk = Bytes(bytes.clone());
    let volume = Volume::open(&disk).expect("a FAT volume");
    let root = volume.root_directory(&disk).unwrap();
    let entry = directory::entries(&root).find(|entry| entry.has_name("long-file.bin")).unwrap();
    // Point the file's second cluster back at its first.
    let fat = volume.fat_offset as usize;
    let second = u16_at(&bytes, fat + entry.first_cluster as usize * 2) as usize;
    bytes[fat + second * 2..fat + second * 2 + 2]
        .copy_from_slice(&(entry.first_cluster as u16).to_le_bytes());
    let looping = Bytes(bytes.clone());
    // The file's size bounds the walk: the loop only repeats data...
    assert!(volume.read_root_file(&looping, "long-file.bin").unwrap().is_some());
    // ...but a chain that ends early, or leaves the volume, is refused.
    bytes[fat + second * 2..fat + second * 2 + 2].copy_from_slice(&0xffffu16.to_le_bytes());
    assert_eq!(volume.read_root_file(&Bytes(bytes.clone()), "long-file.bin"), Err(FatError::BadChain));
    bytes[fat + second * 2..fat + second * 2 + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
    assert_eq!(volume.read_root_file(&Bytes(bytes), "long-file.bin"), Err(FatError::BadChain));
}

#[test]
fn other_disks_are_not_fat() {
    assert_eq!(Volume::open(&Bytes(vec![0u8; 4096])), None);
    assert_eq!(Volume::open(&Bytes(vec![0u8; 100])), None);
    let Some(mut bytes) = volume("other_disks_are_not_fat", 12, 1024, &[]) else { return };
    // Zero bytes per sector, then a volume smaller than its own FATs.
    let saved = bytes[11];
    bytes[11] = 0;
    bytes[12] = 0;
    assert_eq!(Volume::open(&Bytes(bytes.clone())), None);
    bytes[11] = saved;
    bytes[12] = 2;
    bytes[19..21].copy_from_slice(&4u16.to_le_bytes());
    assert_eq!(Volume::open(&Bytes(bytes)), None);
}
