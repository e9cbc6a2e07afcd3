//! The ELF header and program headers, decoded with bounds checks.

use core::fmt;

use rosv_abi::bytes::{u16_at, u32_at, u64_at};

const MAGIC: &[u8; 4] = b"\x7fELF";
const CLASS_64: u8 = 2;
const DATA_LITTLE_ENDIAN: u8 = 1;
const MACHINE_X86_64: u16 = 62;
const HEADER_SIZE: usize = 64;
const PROGRAM_HEADER_SIZE: usize = 56;
/// More program headers than this is not a real executable.
const PROGRAM_HEADERS_MAX: usize = 256;

/// What is wrong with an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// The file does not start with the ELF magic number.
    NotElf,
    /// Not a 64-bit, little-endian, x86-64 file.
    WrongArchitecture,
    /// Not an executable (a relocatable object or core dump).
    NotExecutable,
    /// The file ends inside a header or table it declares.
    Truncated,
    /// The program header table is malformed.
    BadProgramHeaders,
    /// A segment's file range lies outside the file or exceeds its memory size.
    SegmentOutsideFile,
    /// A segment's address range wraps or leaves the application half.
    BadSegmentAddress,
    /// Two loadable segments overlap in memory.
    OverlappingSegments,
    /// A segment's address and file offset disagree modulo the page size.
    MisalignedSegment,
    /// The file has no loadable segment.
    NothingToLoad,
    /// The entry point lies outside every executable segment.
    BadEntryPoint,
    /// The interpreter path is malformed.
    BadInterpreter,
    /// The dynamic section or its string table is malformed.
    BadDynamicSection,
}

impl core::error::Error for ElfError {}

impl fmt::Display for ElfError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ElfError::NotElf => "not an ELF file",
            ElfError::WrongArchitecture => "not a 64-bit little-endian x86-64 ELF file",
            ElfError::NotExecutable => "not an executable (an object file or core dump)",
            ElfError::Truncated => "the file is truncated",
            ElfError::BadProgramHeaders => "the program header table is malformed",
            ElfError::SegmentOutsideFile => "a segment lies outside the file",
            ElfError::BadSegmentAddress => "a segment's address range is invalid",
            ElfError::OverlappingSegments => "two loadable segments overlap",
            ElfError::MisalignedSegment => "a segment's address and file offset are misaligned",
            ElfError::NothingToLoad => "the file has no loadable segment",
            ElfError::BadEntryPoint => "the entry point is outside the executable segments",
            ElfError::BadInterpreter => "the interpreter path is malformed",
            ElfError::BadDynamicSection => "the dynamic section is malformed",
        })
    }
}

/// The `e_type` of an executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `ET_EXEC`: linked at fixed addresses.
    Fixed,
    /// `ET_DYN`: position independent (a PIE or a shared object).
    PositionIndependent,
}

/// The fields of the ELF header a loader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Fixed or position independent.
    pub kind: FileKind,
    /// `e_entry`.
    pub entry: u64,
    /// `e_phoff`: file offset of the program header table.
    pub program_header_offset: u64,
    /// `e_phentsize`.
    pub program_header_size: u16,
    /// `e_phnum`.
    pub program_header_count: u16,
}

impl Header {
    /// Decodes and checks the ELF header.
    pub fn parse(file: &[u8]) -> Result<Self, ElfError> {
        if file.len() < 4 || &file[..4] != MAGIC {
            return Err(ElfError::NotElf);
        }
        if file.len() < HEADER_SIZE {
            return Err(ElfError::Truncated);
        }
        if file[4] != CLASS_64 || file[5] != DATA_LITTLE_ENDIAN || u16_at(file, 18) != Some(MACHINE_X86_64) {
            return Err(ElfError::WrongArchitecture);
        }
        let kind = match u16_at(file, 16) {
            Some(2) => FileKind::Fixed,
            Some(3) => FileKind::PositionIndependent,
            _ => return Err(ElfError::NotExecutable),
        };
        let header = Header {
            kind,
            entry: u64_at(file, 24).ok_or(ElfError::Truncated)?,
            program_header_offset: u64_at(file, 32).ok_or(ElfError::Truncated)?,
            program_header_size: u16_at(file, 54).ok_or(ElfError::Truncated)?,
            program_header_count: u16_at(file, 56).ok_or(ElfError::Truncated)?,
        };
        if usize::from(header.program_header_size) != PROGRAM_HEADER_SIZE
            || usize::from(header.program_header_count) > PROGRAM_HEADERS_MAX
        {
            return Err(ElfError::BadProgramHeaders);
        }
        let table_end = header
            .program_header_offset
            .checked_add(u64::from(header.program_header_count) * PROGRAM_HEADER_SIZE as u64)
            .ok_or(ElfError::BadProgramHeaders)?;
        if table_end > file.len() as u64 {
            return Err(ElfError::Truncated);
        }
        Ok(header)
    }

    /// The program headers, in file order.
    pub fn program_headers<'a>(&self, file: &'a [u8]) -> impl Iterator<Item = ProgramHeader> + 'a {
        let offset = self.program_header_offset as usize;
        (0..usize::from(self.program_header_count))
            .filter_map(move |index| ProgramHeader::decode(file, offset + index * PROGRAM_HEADER_SIZE))
    }
}

/// A program header's type (`p_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentType {
    /// `PT_LOAD`.
    Load,
    /// `PT_DYNAMIC`.
    Dynamic,
    /// `PT_INTERP`.
    Interpreter,
    /// `PT_NOTE`.
    Note,
    /// `PT_PHDR`.
    ProgramHeaders,
    /// `PT_TLS`.
    ThreadLocal,
    /// `PT_GNU_STACK`.
    GnuStack,
    /// Any other type, ignored by loaders.
    Other(u32),
}

impl SegmentType {
    fn from_raw(value: u32) -> Self {
        match value {
            1 => SegmentType::Load,
            2 => SegmentType::Dynamic,
            3 => SegmentType::Interpreter,
            4 => SegmentType::Note,
            6 => SegmentType::ProgramHeaders,
            7 => SegmentType::ThreadLocal,
            0x6474_e551 => SegmentType::GnuStack,
            other => SegmentType::Other(other),
        }
    }
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type`.
    pub kind: SegmentType,
    /// `p_flags` (PF_X = 1, PF_W = 2, PF_R = 4).
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub file_size: u64,
    /// `p_memsz`.
    pub memory_size: u64,
    /// `p_align`.
    pub align: u64,
}

impl ProgramHeader {
    fn decode(file: &[u8], at: usize) -> Option<Self> {
        Some(ProgramHeader {
            kind: SegmentType::from_raw(u32_at(file, at)?),
            flags: u32_at(file, at + 4)?,
            offset: u64_at(file, at + 8)?,
            vaddr: u64_at(file, at + 16)?,
            file_size: u64_at(file, at + 32)?,
            memory_size: u64_at(file, at + 40)?,
            align: u64_at(file, at + 48)?,
        })
    }
}

/// The file offset of the `p_type` field of the first `PT_NOTE` program
/// header that holds a note of `owner` and `note_type`, if any.
///
/// The tools overwrite that field to hide a note from loaders.
pub fn find_note_header(file: &[u8], owner: &[u8], note_type: u32) -> Result<Option<usize>, ElfError> {
    let header = Header::parse(file)?;
    for index in 0..usize::from(header.program_header_count) {
        let at = header.program_header_offset as usize + index * PROGRAM_HEADER_SIZE;
        let Some(program_header) = ProgramHeader::decode(file, at) else {
            return Err(ElfError::Truncated);
        };
        if program_header.kind != SegmentType::Note {
            continue;
        }
        let start = usize::try_from(program_header.offset).map_err(|_| ElfError::SegmentOutsideFile)?;
        let size = usize::try_from(program_header.file_size).map_err(|_| ElfError::SegmentOutsideFile)?;
        let notes = start
            .checked_add(size)
            .and_then(|end| file.get(start..end))
            .ok_or(ElfError::SegmentOutsideFile)?;
        if contains_note(notes, owner, note_type) {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

fn contains_note(mut notes: &[u8], owner: &[u8], note_type: u32) -> bool {
    let padded = |length: usize| length.div_ceil(4) * 4;
    while notes.len() >= 12 {
        let (Some(name_size), Some(desc_size), Some(kind)) =
            (u32_at(notes, 0), u32_at(notes, 4), u32_at(notes, 8))
        else {
            return false;
        };
        let name_size = name_size as usize;
        let name_end = 12 + padded(name_size);
        let Some(name) = notes.get(12..12 + name_size) else {
            return false;
        };
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        if name == owner && kind == note_type {
            return true;
        }
        let Some(rest) = notes.get(name_end + padded(desc_size as usize)..) else {
            return false;
        };
        notes = rest;
    }
    false
}
