//! What a dynamically linked file needs: its `DT_NEEDED` libraries and
//! where it asks for them to be searched (System V ABI, "Dynamic Section").
//!
//! The tools read this to pack an executable's libraries into an image;
//! the kernel never does (the C library's dynamic linker does it there).

use alloc::string::String;
use alloc::vec::Vec;

use rosv_abi::bytes::u64_at;

use crate::header::{ElfError, Header, SegmentType};

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
/// Bytes of one dynamic entry (`d_tag`, `d_val`).
const ENTRY_SIZE: usize = 16;
/// The most dynamic entries read.
const ENTRY_LIMIT: usize = 4096;

/// The dynamic linking needs of a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dependencies {
    /// `DT_NEEDED` library names, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, else `DT_RPATH`, split at `:` (may hold `$ORIGIN`).
    pub search_path: Vec<String>,
    /// `DT_SONAME`, the name a library is known by.
    pub soname: Option<String>,
}

/// Reads the dynamic section of `file` (an executable or a shared
/// library); a file without one needs nothing.
pub fn dependencies(file: &[u8]) -> Result<Dependencies, ElfError> {
    let header = Header::parse(file)?;
    let headers: Vec<_> = header.program_headers(file).collect();
    let Some(dynamic) = headers.iter().find(|header| header.kind == SegmentType::Dynamic) else {
        return Ok(Dependencies::default());
    };
    let start = usize::try_from(dynamic.offset).map_err(|_| ElfError::BadDynamicSection)?;
    let length = usize::try_from(dynamic.file_size).map_err(|_| ElfError::BadDynamicSection)?;
    let section =
        start.checked_add(length).and_then(|end| file.get(start..end)).ok_or(ElfError::BadDynamicSection)?;
    let mut entries = Vec::new();
    for index in 0..(section.len() / ENTRY_SIZE).min(ENTRY_LIMIT) {
        let tag = u64_at(section, index * ENTRY_SIZE).ok_or(ElfError::BadDynamicSection)?;
        let value = u64_at(section, index * ENTRY_SIZE + 8).ok_or(ElfError::BadDynamicSection)?;
        if tag == DT_NULL {
            break;
        }
        entries.push((tag, value));
    }
    let find = |wanted: u64| entries.iter().find(|(tag, _)| *tag == wanted).map(|(_, value)| *value);
    let Some(table_address) = find(DT_STRTAB) else {
        return Ok(Dependencies::default());
    };
    // The string table is found by address: map it to a file offset
    // through the loadable segment that holds it.
    let table_offset = headers
        .iter()
        .filter(|header| header.kind == SegmentType::Load)
        .find(|header| (header.vaddr..header.vaddr.saturating_add(header.file_size)).contains(&table_address))
        .and_then(|header| header.offset.checked_add(table_address - header.vaddr))
        .ok_or(ElfError::BadDynamicSection)?;
    let table_size = find(DT_STRSZ).unwrap_or(0);
    let table_start = usize::try_from(table_offset).map_err(|_| ElfError::BadDynamicSection)?;
    let table_end = usize::try_from(table_offset.saturating_add(table_size))
        .map_err(|_| ElfError::BadDynamicSection)?
        .min(file.len());
    let table = file.get(table_start..table_end).ok_or(ElfError::BadDynamicSection)?;
    let string = |offset: u64| -> Result<String, ElfError> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|offset| table.get(offset..))
            .ok_or(ElfError::BadDynamicSection)?;
        let end = bytes.iter().position(|&byte| byte == 0).ok_or(ElfError::BadDynamicSection)?;
        core::str::from_utf8(&bytes[..end]).map(String::from).map_err(|_| ElfError::BadDynamicSection)
    };
    let mut dependencies = Dependencies::default();
    for (tag, value) in &entries {
        if *tag == DT_NEEDED {
            dependencies.needed.push(string(*value)?);
        }
    }
    let search = find(DT_RUNPATH).or(find(DT_RPATH));
    if let Some(offset) = search {
        dependencies.search_path =
            string(offset)?.split(':').filter(|part| !part.is_empty()).map(String::from).collect();
    }
    dependencies.soname = find(DT_SONAME).map(string).transpose()?;
    Ok(dependencies)
}
