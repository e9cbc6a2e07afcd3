//! x86-64 ELF executables: validation and load plans.
//!
//! [`LoadPlan::parse`] checks an ELF file's header and program headers and
//! describes how to load it. Only what an executable loader needs is read
//! (System V ABI, "Program Loading"); section headers are ignored except by
//! [`find_note_header`], which the tools use on kernel images.
//! [`dependencies`] reads the libraries a dynamically linked file needs, for
//! the tools that pack them into images.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod dynamic;
mod header;
mod plan;

pub use dynamic::{Dependencies, dependencies};
pub use header::{ElfError, FileKind, Header, ProgramHeader, SegmentType, find_note_header};
pub use plan::{LoadPlan, Rights, Segment};

#[cfg(test)]
mod tests;
