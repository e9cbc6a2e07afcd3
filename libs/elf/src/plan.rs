//! Load plans: what to map where, checked against the file.

use alloc::string::String;
use alloc::vec::Vec;

use crate::header::{ElfError, FileKind, Header, SegmentType};

const PAGE_SIZE: u64 = 4096;
/// One past the highest application address (the lower half on x86-64).
const APPLICATION_END: u64 = 0x0000_8000_0000_0000;
/// A position-independent image must fit in this many bytes.
const IMAGE_SPAN_MAX: u64 = 1 << 40;
/// Longest interpreter path accepted.
const INTERPRETER_MAX: usize = 4096;

/// Access rights of a segment (`p_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights {
    /// `PF_R`.
    pub read: bool,
    /// `PF_W`.
    pub write: bool,
    /// `PF_X`.
    pub execute: bool,
}

impl Rights {
    fn from_flags(flags: u32) -> Self {
        Rights { read: flags & 4 != 0, write: flags & 2 != 0, execute: flags & 1 != 0 }
    }
}

/// One `PT_LOAD` segment, with addresses as linked (before any load bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First virtual address.
    pub vaddr: u64,
    /// Bytes in memory; those past `file_size` are zero.
    pub memory_size: u64,
    /// Offset of the segment's bytes in the file.
    pub file_offset: u64,
    /// Bytes taken from the file.
    pub file_size: u64,
    /// Access rights.
    pub rights: Rights,
}

impl Segment {
    /// One past the last virtual address.
    pub fn end(&self) -> u64 {
        self.vaddr + self.memory_size
    }
}

/// Everything needed to load an executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// Fixed-address or position independent.
    pub kind: FileKind,
    /// The entry point, as linked.
    pub entry: u64,
    /// Loadable segments, in ascending address order, not overlapping.
    pub segments: Vec<Segment>,
    /// The program interpreter (`PT_INTERP`) of a dynamically linked file.
    pub interpreter: Option<String>,
    /// Where the program headers are in memory once loaded, as linked.
    pub program_headers_vaddr: Option<u64>,
    /// Number of program headers (`AT_PHNUM`).
    pub program_header_count: u16,
    /// Whether `PT_GNU_STACK` asks for an executable stack.
    pub has_executable_stack: bool,
}

impl LoadPlan {
    /// Checks `file` and describes how to load it.
    pub fn parse(file: &[u8]) -> Result<Self, ElfError> {
        Self::parse_prefix(file, file.len() as u64)
    }

    /// Checks a file of `file_size` bytes from `prefix`, its first bytes,
    /// which must hold the ELF header, the program headers and the
    /// interpreter's path (they do in the first few KiB of any linker's
    /// output); the segments are checked against `file_size`.
    pub fn parse_prefix(prefix: &[u8], file_size: u64) -> Result<Self, ElfError> {
        if (prefix.len() as u64) > file_size {
            return Err(ElfError::Truncated);
        }
        let file = prefix;
        let header = Header::parse(file)?;
        let mut plan = LoadPlan {
            kind: header.kind,
            entry: header.entry,
            segments: Vec::new(),
            interpreter: None,
            program_headers_vaddr: None,
            program_header_count: header.program_header_count,
            has_executable_stack: false,
        };
        for program_header in header.program_headers(file) {
            match program_header.kind {
                SegmentType::Load => {
                    if program_header.memory_size == 0 {
                        continue;
                    }
                    plan.segments.push(Segment {
                        vaddr: program_header.vaddr,
                        memory_size: program_header.memory_size,
                        file_offset: program_header.offset,
                        file_size: program_header.file_size,
                        rights: Rights::from_flags(program_header.flags),
                    });
                    if program_header.align >= PAGE_SIZE
                        && program_header.vaddr % PAGE_SIZE != program_header.offset % PAGE_SIZE
                    {
                        return Err(ElfError::MisalignedSegment);
                    }
                }
                SegmentType::Interpreter => {
                    plan.interpreter =
                        Some(read_interpreter(file, program_header.offset, program_header.file_size)?);
                }
                SegmentType::ProgramHeaders => plan.program_headers_vaddr = Some(program_header.vaddr),
                SegmentType::GnuStack => plan.has_executable_stack = program_header.flags & 1 != 0,
                _ => {}
            }
        }
        plan.check_segments(file_size)?;
        if plan.program_headers_vaddr.is_none() {
            plan.program_headers_vaddr = plan.file_offset_to_vaddr(header.program_header_offset);
        }
        let entry_is_code = plan
            .segments
            .iter()
            .any(|segment| segment.rights.execute && (segment.vaddr..segment.end()).contains(&plan.entry));
        if !entry_is_code {
            return Err(ElfError::BadEntryPoint);
        }
        Ok(plan)
    }

    fn check_segments(&mut self, file_size: u64) -> Result<(), ElfError> {
        if self.segments.is_empty() {
            return Err(ElfError::NothingToLoad);
        }
        for segment in &self.segments {
            let file_end = segment.file_offset.checked_add(segment.file_size);
            if segment.file_size > segment.memory_size || file_end.is_none_or(|end| end > file_size) {
                return Err(ElfError::SegmentOutsideFile);
            }
            let end = segment.vaddr.checked_add(segment.memory_size).ok_or(ElfError::BadSegmentAddress)?;
            if self.kind == FileKind::Fixed && (end > APPLICATION_END || segment.vaddr < PAGE_SIZE) {
                return Err(ElfError::BadSegmentAddress);
            }
        }
        self.segments.sort_by_key(|segment| segment.vaddr);
        for pair in self.segments.windows(2) {
            if pair[0].end() > pair[1].vaddr {
                return Err(ElfError::OverlappingSegments);
            }
        }
        if self.span() > IMAGE_SPAN_MAX {
            return Err(ElfError::BadSegmentAddress);
        }
        Ok(())
    }

    /// The lowest page address the image occupies, as linked.
    pub fn lowest_page(&self) -> u64 {
        self.segments.first().map_or(0, |segment| segment.vaddr & !(PAGE_SIZE - 1))
    }

    /// One past the highest address the image occupies, as linked.
    pub fn end(&self) -> u64 {
        self.segments.last().map_or(0, Segment::end)
    }

    /// Bytes from the lowest page to the end of the image.
    pub fn span(&self) -> u64 {
        self.end() - self.lowest_page()
    }

    fn file_offset_to_vaddr(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|segment| (segment.file_offset..segment.file_offset + segment.file_size).contains(&offset))
            .map(|segment| segment.vaddr + (offset - segment.file_offset))
    }
}

fn read_interpreter(file: &[u8], offset: u64, size: u64) -> Result<String, ElfError> {
    let start = usize::try_from(offset).map_err(|_| ElfError::BadInterpreter)?;
    let size = usize::try_from(size).map_err(|_| ElfError::BadInterpreter)?;
    if size == 0 || size > INTERPRETER_MAX {
        return Err(ElfError::BadInterpreter);
    }
    let bytes =
        start.checked_add(size).and_then(|end| file.get(start..end)).ok_or(ElfError::BadInterpreter)?;
    let path = bytes.split(|&byte| byte == 0).next().unwrap_or(bytes);
    if path.is_empty() {
        return Err(ElfError::BadInterpreter);
    }
    core::str::from_utf8(path).map(String::from).map_err(|_| ElfError::BadInterpreter)
}
