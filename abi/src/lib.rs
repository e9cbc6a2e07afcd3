//! Contracts shared by the rosv kernel and the rosv host tools.
//!
//! The kernel decodes boot structures and ROFS images with these definitions
//! and the tools encode them, so both sides always agree on every byte.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod boot_config;
pub mod bytes;
pub mod exit;
pub mod linux_boot;
pub mod memory;
pub mod multiboot2;
pub mod pvh;
pub mod rofs;
pub mod streams;
pub mod vdso;
