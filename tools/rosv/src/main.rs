//! `rosv`: build rosv images and run them.
//!
//! - `rosv run` boots an image, or a host executable packed on the fly,
//!   on QEMU, Firecracker or its own KVM monitor (`rosv-vmm`), and exits
//!   with the application's status;
//! - `rosv build` writes an image directory, or a disk that boots by
//!   itself through BIOS or UEFI firmware (`disk`);
//! - `rosv kernel` writes the kernel ELF for use with any VMM;
//! - `rosv serve` is the function host: HTTP requests boot VMs on demand;
//! - `rosv bench boot` measures boot times; `rosv bench soak` and
//!   `rosv bench boots` count the failures of long or repeated runs.

#![forbid(unsafe_code)]

mod bench;
mod boot_config;
mod builtin;
mod cli;
mod detached;
mod disk;
mod endurance;
mod executable;
mod firecracker;
mod guest_elf;
mod host;
mod image;
mod image_tree;
mod kernel;
mod kernel_symbols;
mod libraries;
mod machine;
mod manifest;
mod network;
mod nfs;
mod oci;
mod output;
mod packages;
mod qemu;
mod serve;
mod streams;
mod system_files;
mod vm;
mod volume;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let arguments = cli::Cli::parse();
    match cli::execute(arguments) {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            eprintln!("rosv: {error:#}");
            ExitCode::from(vm::TOOL_FAILURE)
        }
    }
}
