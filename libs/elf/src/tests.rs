extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

/// A program header to put in a synthetic file.
#[derive(Clone, Copy)]
struct Program {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    file_size: u64,
    memory_size: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, file_size: u64, memory_size: u64) -> Program {
    Program { kind: 1, flags, offset, vaddr, file_size, memory_size }
}

/// Builds an ELF file of `size` bytes with the given type, entry and
/// program headers (placed right after the ELF header).
fn elf(kind: u16, entry: u64, programs: &[Program], size: usize) -> Vec<u8> {
    let mut file = vec![0u8; size.max(64 + 56 * programs.len())];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2;
    file[5] = 1;
    file[6] = 1;
    file[16..18].copy_from_slice(&kind.to_le_bytes());
    file[18..20].copy_from_slice(&62u16.to_le_bytes());
    file[24..32].copy_from_slice(&entry.to_le_bytes());
    file[32..40].copy_from_slice(&64u64.to_le_bytes());
    file[52..54].copy_from_slice(&64u16.to_le_bytes());
    file[54..56].copy_from_slice(&56u16.to_le_bytes());
    file[56..58].copy_from_slice(&(programs.len() as u16).to_le_bytes());
    for (index, program) in programs.iter().enumerate() {
        let at = 64 + index * 56;
        file[at..at + 4].copy_from_slice(&program.kind.to_le_bytes());
        file[at + 4..at + 8].copy_from_slice(&program.flags.to_le_bytes());
        file[at + 8..at + 16].copy_from_slice(&program.offset.to_le_bytes());
        file[at + 16..at + 24].copy_from_slice(&program.vaddr.to_le_bytes());
        file[at + 24..at + 32].copy_from_slice(&program.vaddr.to_le_bytes());
        file[at + 32..at + 40].copy_from_slice(&program.file_size.to_le_bytes());
        file[at + 40..at + 48].copy_from_slice(&program.memory_size.to_le_bytes());
        file[at + 48..at + 56].copy_from_slice(&4096u64.to_le_bytes());
    }
    file
}

fn static_executable() -> Vec<u8> {
    elf(
        2,
        0x401000,
        &[load(5, 0, 0x400000, 0x2000, 0x2000), load(6, 0x2000, 0x402000, 0x100, 0x5000)],
        0x2100,
    )
}

#[test]
fn plans_a_static_executable() {
    let plan = LoadPlan::parse(&static_executable()).unwrap();
    assert_eq!(plan.kind, FileKind::Fixed);
    assert_eq!(plan.entry, 0x401000);
    assert_eq!(plan.segments.len(), 2);
    assert!(plan.segments[0].rights.execute && !plan.segments[0].rights.write);
    assert!(plan.segments[1].rights.write);
    assert_eq!(plan.program_headers_vaddr, Some(0x400040));
    assert_eq!(plan.interpreter, None);
    assert_eq!((plan.lowest_page(), plan.end()), (0x400000, 0x407000));
}

#[test]
fn reads_the_interpreter() {
    let mut file = elf(
        3,
        0x1000,
        &[
            Program { kind: 3, flags: 4, offset: 0x200, vaddr: 0x200, file_size: 28, memory_size: 28 },
            load(5, 0, 0, 0x2000, 0x2000),
        ],
        0x2000,
    );
    file[0x200..0x200 + 28].copy_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
    let plan = LoadPlan::parse(&file).unwrap();
    assert_eq!(plan.kind, FileKind::PositionIndependent);
    assert_eq!(plan.interpreter.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
}

#[test]
fn refuses_malformed_files() {
    let cases: Vec<(Vec<u8>, ElfError)> = vec![
        (b"#!/bin/sh\n".to_vec(), ElfError::NotElf),
        (static_executable()[..40].to_vec(), ElfError::Truncated),
        (
            {
                let mut file = static_executable();
                file[4] = 1;
                file
            },
            ElfError::WrongArchitecture,
        ),
        (
            {
                let mut file = static_executable();
                file[16] = 1;
                file
            },
            ElfError::NotExecutable,
        ),
        (elf(2, 0x401000, &[load(5, 0, 0x400000, 0x3000, 0x3000)], 0x2000), ElfError::SegmentOutsideFile),
        (elf(2, 0x401000, &[load(5, 0, 0x400000, 0x2000, 0x1000)], 0x2000), ElfError::SegmentOutsideFile),
        (
            elf(
                2,
                0x401000,
                &[load(5, 0, 0x400000, 0x2000, 0x2000), load(6, 0, 0x401000, 0x10, 0x10)],
                0x2000,
            ),
            ElfError::OverlappingSegments,
        ),
        (elf(2, 0x401000, &[load(5, 0x10, 0x400000, 0x10, 0x10)], 0x2000), ElfError::MisalignedSegment),
        (elf(2, 0x401000, &[], 0x2000), ElfError::NothingToLoad),
        (elf(2, 0x900000, &[load(5, 0, 0x400000, 0x2000, 0x2000)], 0x2000), ElfError::BadEntryPoint),
        (elf(2, 0x401000, &[load(6, 0, 0x400000, 0x2000, 0x2000)], 0x2000), ElfError::BadEntryPoint),
        (
            elf(2, 0x401000, &[load(5, 0, 0xffff_8000_0000_0000, 0x2000, 0x2000)], 0x2000),
            ElfError::BadSegmentAddress,
        ),
        (
            elf(2, 0x401000, &[load(5, 0, u64::MAX - 0xfff, 0x10, 0x2000)], 0x2000),
            ElfError::BadSegmentAddress,
        ),
    ];
    for (index, (file, expected)) in cases.into_iter().enumerate() {
        assert_eq!(LoadPlan::parse(&file), Err(expected), "case {index}");
    }
}

#[test]
fn reads_this_test_binary() {
    let file = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let plan = LoadPlan::parse(&file).unwrap();
    assert!(!plan.segments.is_empty());
    assert!(plan.program_headers_vaddr.is_some());
}

#[test]
fn finds_a_note_header() {
    let mut file = elf(
        2,
        0x401000,
        &[
            load(5, 0, 0x400000, 0x2000, 0x2000),
            Program { kind: 4, flags: 4, offset: 0x300, vaddr: 0, file_size: 40, memory_size: 40 },
        ],
        0x2000,
    );
    let notes: [&[u8]; 2] = [
        &[4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, b'G', b'N', b'U', 0, 9, 9, 9, 9],
        &[4, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, b'X', b'e', b'n', 0, 0, 0, 32, 0],
    ];
    file[0x300..0x314].copy_from_slice(notes[0]);
    file[0x314..0x328].copy_from_slice(notes[1]);
    assert_eq!(find_note_header(&file, b"Xen", 18), Ok(Some(64 + 56)));
    assert_eq!(find_note_header(&file, b"Xen", 17), Ok(None));
    assert_eq!(find_note_header(b"nope", b"Xen", 18), Err(ElfError::NotElf));
}

proptest! {
    #[test]
    fn never_panics_on_mutations(flips in proptest::collection::vec((0usize..0x2100, any::<u8>()), 0..16)) {
        let mut file = static_executable();
        for (at, value) in flips {
            file[at] = value;
        }
        let _ = LoadPlan::parse(&file);
        let _ = find_note_header(&file, b"Xen", 18);
    }

    #[test]
    fn dynamic_sections_never_panic(flips in proptest::collection::vec((0usize..0x1000, any::<u8>()), 0..16)) {
        let mut file = library(&["libc.so.6"], Some("/lib"), "libx.so");
        for (at, value) in flips {
            file[at] = value;
        }
        let _ = dependencies(&file);
    }

    #[test]
    fn never_panics_on_noise(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut file = bytes;
        if file.len() >= 4 {
            file[..4].copy_from_slice(b"\x7fELF");
        }
        let _ = LoadPlan::parse(&file);
    }
}

/// A shared library (ET_DYN) whose dynamic section needs `needed`, with
/// `runpath` and `soname`, its string table at file offset and address
/// 0x400.
fn library(needed: &[&str], runpath: Option<&str>, soname: &str) -> Vec<u8> {
    let mut file = vec![0u8; 0x1000];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 2;
    file[5] = 1;
    file[16..18].copy_from_slice(&3u16.to_le_bytes());
    file[18..20].copy_from_slice(&62u16.to_le_bytes());
    file[32..40].copy_from_slice(&64u64.to_le_bytes());
    file[54..56].copy_from_slice(&56u16.to_le_bytes());
    file[56..58].copy_from_slice(&2u16.to_le_bytes());
    let mut strings = vec![0u8];
    let mut add = |text: &str| {
        let offset = strings.len() as u64;
        strings.extend_from_slice(text.as_bytes());
        strings.push(0);
        offset
    };
    let mut entries: Vec<(u64, u64)> = needed.iter().map(|name| (1, add(name))).collect();
    if let Some(runpath) = runpath {
        entries.push((29, add(runpath)));
    }
    entries.push((14, add(soname)));
    entries.push((5, 0x400));
    entries.push((10, strings.len() as u64));
    entries.push((0, 0));
    // PT_LOAD of the whole file at 0; PT_DYNAMIC at 0x200.
    let headers = [(1u32, 0u64, 0u64, 0x1000u64), (2, 0x200, 0x200, entries.len() as u64 * 16)];
    for (index, (kind, offset, vaddr, size)) in headers.into_iter().enumerate() {
        let at = 64 + index * 56;
        file[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        file[at + 4..at + 8].copy_from_slice(&4u32.to_le_bytes());
        file[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        file[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
        file[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        file[at + 40..at + 48].copy_from_slice(&size.to_le_bytes());
    }
    for (index, (tag, value)) in entries.iter().enumerate() {
        file[0x200 + index * 16..][..8].copy_from_slice(&tag.to_le_bytes());
        file[0x208 + index * 16..][..8].copy_from_slice(&value.to_le_bytes());
    }
    file[0x400..0x400 + strings.len()].copy_from_slice(&strings);
    file
}

#[test]
fn reads_needed_libraries_and_search_paths() {
    let file = library(&["libm.so.6", "libc.so.6"], Some("$ORIGIN/../lib:/opt/lib"), "libfoo.so.1");
    let found = dependencies(&file).unwrap();
    assert_eq!(found.needed, ["libm.so.6", "libc.so.6"]);
    assert_eq!(found.search_path, ["$ORIGIN/../lib", "/opt/lib"]);
    assert_eq!(found.soname.as_deref(), Some("libfoo.so.1"));
    // A string offset past the table is an error, not a panic.
    let mut broken = file.clone();
    broken[0x208..0x210].copy_from_slice(&0x9999u64.to_le_bytes());
    assert_eq!(dependencies(&broken), Err(ElfError::BadDynamicSection));
    // Without a dynamic section nothing is needed.
    let mut plain = file;
    plain[64 + 56..64 + 60].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(dependencies(&plain), Ok(Dependencies::default()));
}

#[test]
fn a_prefix_with_the_headers_plans_the_whole_file() {
    let file = static_executable();
    let prefix = &file[..0x200];
    assert_eq!(LoadPlan::parse_prefix(prefix, file.len() as u64).unwrap(), LoadPlan::parse(&file).unwrap());
    assert_eq!(
        LoadPlan::parse(prefix).unwrap_err(),
        ElfError::SegmentOutsideFile,
        "the prefix alone is short"
    );
    assert_eq!(
        LoadPlan::parse_prefix(prefix, 0x1000).unwrap_err(),
        ElfError::SegmentOutsideFile,
        "segments are checked against the file's size"
    );
    assert_eq!(LoadPlan::parse_prefix(&file, 0x100).unwrap_err(), ElfError::Truncated);
}
