//! ROFS images: the kernel's validating reader and the tools' writer.

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod reader;
#[cfg(any(test, feature = "std"))]
pub mod writer;

pub use reader::{BlockSource, DirectoryEntry, FileType, Metadata, Rofs, RofsError, SourceError};

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;
