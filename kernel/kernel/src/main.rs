//! The rosv kernel: the composition root that boots the machine step by step.
//!
//! Built for `x86_64-unknown-none` this is the kernel; built for the host it
//! is only a stub that says so (it lets `cargo build --workspace` work).

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod boot;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("rosv-kernel runs inside a virtual machine; build it with `cargo xtask kernel`");
    std::process::exit(2);
}
