//! Loading an executable into the address space and building its stack.
//!
//! Executables (fixed-address or position independent) are mapped segment
//! by segment; a page two segments share gets the union of their rights. A
//! dynamically linked executable also gets its interpreter (`PT_INTERP`,
//! the C library's dynamic linker) mapped at [`INTERPRETER_BASE`], and
//! starts there: the interpreter finds the executable through `AT_PHDR` and
//! `AT_ENTRY`, and loads the libraries itself with ordinary system calls.
//! The main thread's stack is an 8 MiB area below [`STACK_TOP`], mapped on
//! demand except for the pages the initial stack occupies.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use rosv_elf::{ElfError, FileKind, LoadPlan};

use crate::errno::Errno;
use crate::initial_stack::{self, AuxValue, StackContents, auxv};
use crate::machine::{Machine, Rights, Vdso};
use crate::memory::{
    AddressSpace, Area, AreaKind, FileArea, PAGE_SIZE, PIE_BASE, STACK_SIZE, STACK_TOP, page_align_up,
};
use crate::vfs::Node;

/// Size of one program header (`AT_PHENT`).
const PROGRAM_HEADER_SIZE: u64 = 56;
/// `AT_MINSIGSTKSZ`: enough for a signal frame with SSE state.
const MINIMUM_SIGNAL_STACK: u64 = 2048;
/// `AT_CLKTCK`: the clock tick Linux reports.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// Where a dynamically linked executable's interpreter is mapped: below
/// the area `mmap` hands out from, as Linux places it near the top.
pub const INTERPRETER_BASE: u64 = 0x7f00_0000_0000;
/// Where the vDSO's data page is mapped; its image follows.
pub const VDSO_DATA_ADDRESS: u64 = INTERPRETER_BASE - 0x10_0000;
/// Where the vDSO's image is mapped (`AT_SYSINFO_EHDR`).
pub const VDSO_ADDRESS: u64 = VDSO_DATA_ADDRESS + PAGE_SIZE;

/// Why an executable could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The file is not a valid executable.
    Elf(ElfError),
    /// The file is dynamically linked and its interpreter was not given.
    DynamicallyLinked(String),
    /// The interpreter is not a valid position-independent executable.
    BadInterpreter(String, ElfError),
    /// The image does not fit or memory ran out.
    Memory(Errno),
}

impl fmt::Display for LoadError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Elf(error) => write!(formatter, "{error}"),
            LoadError::DynamicallyLinked(interpreter) => {
                write!(formatter, "its interpreter {interpreter} is missing")
            }
            LoadError::BadInterpreter(interpreter, error) => {
                write!(formatter, "its interpreter {interpreter} cannot be loaded: {error}")
            }
            LoadError::Memory(errno) if *errno == Errno::ENOMEM => {
                write!(formatter, "out of memory")
            }
            LoadError::Memory(_) => {
                write!(formatter, "the image does not fit in the address space")
            }
        }
    }
}

impl From<ElfError> for LoadError {
    fn from(error: ElfError) -> Self {
        LoadError::Elf(error)
    }
}

impl From<Errno> for LoadError {
    fn from(errno: Errno) -> Self {
        LoadError::Memory(errno)
    }
}

/// Where the main thread starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    /// The entry point.
    pub entry: u64,
    /// The initial stack pointer.
    pub stack_pointer: u64,
}

/// An executable file as the loader reads it: its headers first, then each
/// segment straight into the memory it is loaded at, so a large program
/// is never held twice.
pub trait ExecutableFile {
    /// Bytes in the file.
    fn size(&self) -> u64;
    /// Fills `buffer` with the file's bytes from `offset` (which the loader
    /// keeps inside the file).
    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), Errno>;

    /// The file as a node whose pages can be mapped, and its path: then
    /// the segments map the file's pages, read on first touch, instead of
    /// being read whole.
    fn mappable(&self) -> Option<(Arc<dyn Node>, Arc<str>)> {
        None
    }
}

impl ExecutableFile for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, buffer: &mut [u8]) -> Result<(), Errno> {
        let start = usize::try_from(offset).map_err(|_| Errno::EIO)?;
        let bytes = self.get(start..start + buffer.len()).ok_or(Errno::EIO)?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }
}

/// Bytes read from the start of an executable for its headers: the ELF
/// header, the program headers and the interpreter's path lie there.
pub const HEADER_BYTES: usize = 64 * 1024;
/// Bytes of a segment read from the file at a time.
const SEGMENT_CHUNK: usize = 1024 * 1024;

/// The first bytes of `file`, where its headers are.
pub fn read_headers(file: &dyn ExecutableFile) -> Result<Vec<u8>, Errno> {
    let length = (HEADER_BYTES as u64).min(file.size()) as usize;
    let mut prefix = vec![0u8; length];
    file.read_at(0, &mut prefix)?;
    Ok(prefix)
}

/// The program to start.
#[derive(Clone, Copy)]
pub struct Program<'a> {
    /// The executable file.
    pub file: &'a dyn ExecutableFile,
    /// The interpreter its `PT_INTERP` names, for a dynamically linked
    /// executable (see [`interpreter_path`]).
    pub interpreter: Option<&'a dyn ExecutableFile>,
    /// Its path in the image (`AT_EXECFN`).
    pub path: &'a str,
    /// `argv`.
    pub arguments: &'a [Vec<u8>],
    /// `envp`, as `NAME=value`.
    pub environment: &'a [Vec<u8>],
    /// The bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
}

impl fmt::Debug for Program<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Program")
            .field("path", &self.path)
            .field("size", &self.file.size())
            .field("is_dynamic", &self.interpreter.is_some())
            .finish()
    }
}

/// Maps `program` into `memory` and builds its initial stack.
///
/// Every page written here is mapped first, so no copy faults while the
/// caller holds the address space.
pub fn load(
    machine: &dyn Machine,
    memory: &mut AddressSpace,
    program: &Program<'_>,
) -> Result<Launch, LoadError> {
    let plan = LoadPlan::parse_prefix(&read_headers(program.file)?, program.file.size())?;
    // Everything is checked before anything is mapped.
    let interpreter = match (&plan.interpreter, program.interpreter) {
        (None, _) => None,
        (Some(path), None) => return Err(LoadError::DynamicallyLinked(path.clone())),
        (Some(path), Some(file)) => {
            let bad = |error| LoadError::BadInterpreter(path.clone(), error);
            let interpreter = LoadPlan::parse_prefix(&read_headers(file)?, file.size()).map_err(bad)?;
            if interpreter.kind != FileKind::PositionIndependent || interpreter.interpreter.is_some() {
                return Err(bad(ElfError::NotExecutable));
            }
            Some((interpreter, file))
        }
    };
    let base = match plan.kind {
        FileKind::Fixed => 0,
        FileKind::PositionIndependent => PIE_BASE - plan.lowest_page(),
    };
    map_segments(machine, memory, &plan, base, program.file)?;
    let image_end = page_align_up(base + plan.end()).ok_or(Errno::ENOMEM)?;
    memory.set_heap_start(image_end);

    let program_headers = plan.program_headers_vaddr.ok_or(ElfError::BadProgramHeaders)? + base;
    let entry = base + plan.entry;
    let vdso = match machine.vdso() {
        Some(vdso) => {
            map_vdso(machine, memory, &vdso)?;
            VDSO_ADDRESS
        }
        None => 0,
    };
    let (interpreter_base, start) = match interpreter {
        None => (0, entry),
        Some((interpreter, file)) => {
            let interpreter_base = INTERPRETER_BASE - interpreter.lowest_page();
            map_segments(machine, memory, &interpreter, interpreter_base, file)?;
            (interpreter_base, interpreter_base + interpreter.entry)
        }
    };
    let auxiliary = [
        (auxv::AT_PHDR, AuxValue::Value(program_headers)),
        (auxv::AT_PHENT, AuxValue::Value(PROGRAM_HEADER_SIZE)),
        (auxv::AT_PHNUM, AuxValue::Value(u64::from(plan.program_header_count))),
        (auxv::AT_PAGESZ, AuxValue::Value(PAGE_SIZE)),
        (auxv::AT_BASE, AuxValue::Value(interpreter_base)),
        (auxv::AT_FLAGS, AuxValue::Value(0)),
        (auxv::AT_ENTRY, AuxValue::Value(entry)),
        (auxv::AT_UID, AuxValue::Value(0)),
        (auxv::AT_EUID, AuxValue::Value(0)),
        (auxv::AT_GID, AuxValue::Value(0)),
        (auxv::AT_EGID, AuxValue::Value(0)),
        (auxv::AT_PLATFORM, AuxValue::Platform),
        (auxv::AT_HWCAP, AuxValue::Value(machine.hardware_capabilities())),
        (auxv::AT_CLKTCK, AuxValue::Value(CLOCK_TICKS_PER_SECOND)),
        (auxv::AT_SECURE, AuxValue::Value(0)),
        (auxv::AT_RANDOM, AuxValue::RandomBytes),
        (auxv::AT_HWCAP2, AuxValue::Value(0)),
        (auxv::AT_EXECFN, AuxValue::ExecutablePath),
        (auxv::AT_MINSIGSTKSZ, AuxValue::Value(MINIMUM_SIGNAL_STACK)),
    ];
    let mut auxiliary = Vec::from(auxiliary);
    if vdso != 0 {
        auxiliary.push((auxv::AT_SYSINFO_EHDR, AuxValue::Value(vdso)));
    }
    let stack = initial_stack::build(
        STACK_TOP,
        &StackContents {
            arguments: program.arguments,
            environment: program.environment,
            auxiliary: &auxiliary,
            executable_path: program.path.as_bytes(),
            random: program.random,
        },
    );
    if stack.bytes.len() as u64 > STACK_SIZE / 4 {
        return Err(LoadError::Memory(Errno::E2BIG));
    }
    let stack_rights = Rights { execute: plan.has_executable_stack, ..Rights::READ_WRITE };
    memory.add_area(machine, STACK_TOP - STACK_SIZE, STACK_TOP, stack_rights, AreaKind::Stack, false)?;
    memory.populate(machine, stack.stack_pointer & !(PAGE_SIZE - 1), STACK_TOP)?;
    machine.write_memory(stack.stack_pointer, &stack.bytes).map_err(|_| Errno::EFAULT)?;
    memory.stack_layout = stack.layout;
    Ok(Launch { entry: start, stack_pointer: stack.stack_pointer })
}

/// The interpreter a dynamically linked executable of `file_size` bytes
/// names, from its `headers` ([`read_headers`]), if it names one (`None`
/// too when the file is not a valid executable: loading it will say why).
pub fn interpreter_path(headers: &[u8], file_size: u64) -> Option<String> {
    LoadPlan::parse_prefix(headers, file_size).ok()?.interpreter
}

/// Maps the vDSO: its data page (read-only; the clock the code reads, one
/// frame all processes share) and its image (read and execute) just above.
fn map_vdso(machine: &dyn Machine, memory: &mut AddressSpace, vdso: &Vdso) -> Result<(), LoadError> {
    let image_end = page_align_up(VDSO_ADDRESS + vdso.image.len() as u64).ok_or(Errno::ENOMEM)?;
    memory.add_area(machine, VDSO_DATA_ADDRESS, VDSO_ADDRESS, Rights::READ, AreaKind::VdsoData, false)?;
    let code = Rights { execute: true, ..Rights::READ };
    memory.add_area(machine, VDSO_ADDRESS, image_end, code, AreaKind::Vdso, false)?;
    let data_frame = vdso_data::frame(vdso).map_err(|_| Errno::ENOMEM)?;
    memory.tables().map_frame(VDSO_DATA_ADDRESS, data_frame, Rights::READ).map_err(|_| Errno::ENOMEM)?;
    for page in (VDSO_ADDRESS..image_end).step_by(PAGE_SIZE as usize) {
        memory.tables().map_page(page, Rights::READ_WRITE).map_err(|_| Errno::ENOMEM)?;
    }
    machine.write_memory(VDSO_ADDRESS, vdso.image).map_err(|_| Errno::EFAULT)?;
    memory.tables().protect_range(VDSO_ADDRESS, image_end, code);
    Ok(())
}

/// How one page of a loaded image gets its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageSource {
    /// The file's page at this offset, mapped privately on first touch.
    File(u64),
    /// Bytes of one or more segments copied now (a page a segment's file
    /// part ends in, or one several segments share).
    Copied,
    /// Zeroes only (`.bss`), mapped on first touch.
    Zero,
}

/// A run of consecutive pages loaded the same way.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: u64,
    end: u64,
    rights: Rights,
    source: PageSource,
}

fn map_segments(
    machine: &dyn Machine,
    memory: &mut AddressSpace,
    plan: &LoadPlan,
    base: u64,
    file: &dyn ExecutableFile,
) -> Result<(), LoadError> {
    let mappable = file.mappable();
    let mut pages: BTreeMap<u64, (Rights, PageSource)> = BTreeMap::new();
    for segment in &plan.segments {
        let rights = Rights {
            read: segment.rights.read,
            write: segment.rights.write,
            execute: segment.rights.execute,
        };
        let start = base + segment.vaddr;
        let file_end = start + segment.file_size;
        let first = start & !(PAGE_SIZE - 1);
        let end = page_align_up(base + segment.end()).ok_or(Errno::ENOMEM)?;
        // The file's pages can stand for memory only where file offsets and
        // addresses agree within a page.
        let is_congruent = mappable.is_some() && (start - segment.file_offset).is_multiple_of(PAGE_SIZE);
        for page in (first..end).step_by(PAGE_SIZE as usize) {
            let source = if page >= file_end {
                PageSource::Zero
            } else if is_congruent && page >= start && page + PAGE_SIZE <= file_end {
                PageSource::File(segment.file_offset + (page - start))
            } else {
                PageSource::Copied
            };
            let (union, existing) = pages.entry(page).or_insert((Rights::NONE, source));
            union.read |= rights.read;
            union.write |= rights.write;
            union.execute |= rights.execute;
            if *existing != source {
                // Two segments share the page: it is assembled here.
                *existing = if *existing == PageSource::Zero && source == PageSource::Zero {
                    PageSource::Zero
                } else {
                    PageSource::Copied
                };
            }
        }
    }
    // One area per run of consecutive pages with the same rights and source
    // (file pages also at consecutive offsets).
    let mut runs: Vec<Run> = Vec::new();
    for (&page, &(rights, source)) in &pages {
        if let Some(run) = runs.last_mut()
            && run.end == page
            && run.rights == rights
        {
            let continues = match (run.source, source) {
                (PageSource::File(first), PageSource::File(offset)) => offset == first + (page - run.start),
                (previous, next) => previous == next,
            };
            if continues {
                run.end += PAGE_SIZE;
                continue;
            }
        }
        runs.push(Run { start: page, end: page + PAGE_SIZE, rights, source });
    }
    for run in &runs {
        let file = match (run.source, &mappable) {
            (PageSource::File(offset), Some((node, path))) => Some(FileArea {
                node: node.clone(),
                offset,
                is_shared: false,
                may_write: true,
                path: path.clone(),
            }),
            _ => None,
        };
        memory.add(
            machine,
            run.start,
            Area { end: run.end, rights: run.rights, kind: AreaKind::Image, file, is_locked: false },
            false,
        )?;
        if run.source == PageSource::Copied {
            for page in (run.start..run.end).step_by(PAGE_SIZE as usize) {
                memory.tables().map_page(page, Rights::READ_WRITE).map_err(|_| Errno::ENOMEM)?;
            }
        }
    }
    // Copy the segments' bytes that land on copied pages.
    let mut chunk = vec![
        0u8;
        SEGMENT_CHUNK.min(
            plan.segments.iter().map(|segment| segment.file_size).max().unwrap_or(0) as usize,
        )
    ];
    for segment in &plan.segments {
        let start = base + segment.vaddr;
        for run in runs.iter().filter(|run| run.source == PageSource::Copied) {
            let from = run.start.max(start);
            let to = run.end.min(start + segment.file_size);
            let mut address = from;
            while address < to {
                let step = (to - address).min(chunk.len() as u64) as usize;
                file.read_at(segment.file_offset + (address - start), &mut chunk[..step])?;
                machine.write_memory(address, &chunk[..step]).map_err(|_| Errno::EFAULT)?;
                address += step as u64;
            }
        }
    }
    for run in runs.iter().filter(|run| run.source == PageSource::Copied) {
        memory.tables().protect_range(run.start, run.end, run.rights);
    }
    Ok(())
}

pub mod environment;
pub mod executable;
pub mod vdso_data;

#[cfg(test)]
mod tests;
