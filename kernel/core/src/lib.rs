//! The rosv kernel's logic, independent of the hardware.
//!
//! Everything here runs against the [`machine::Machine`] trait: the kernel
//! binary implements it with the platform crate, tests with a fake. See the
//! crate README for the main types.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod credentials;
pub mod device;
pub mod errno;
pub mod fs;
pub mod futex;
pub mod initial_stack;
pub mod keys;
pub mod linux;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod mqueue;
pub mod namespace;
pub mod net;
pub mod pages;
pub mod process;
pub mod processor;
pub mod ptrace;
pub mod random;
pub mod restore;
pub mod scheduling;
pub mod signal;
pub mod streams;
pub mod syscall;
pub mod terminal;
pub mod timers;
pub mod user;
pub mod uts;
pub mod vfs;

#[cfg(test)]
mod fake;
