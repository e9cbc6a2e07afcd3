//! The rosv kernel: the composition root that boots the machine step by step.
//!
//! [`boot`] is the boot sequence, a plain list of steps matching the
//! bootchart; [`machine`] gives the kernel's logic (`rosv-core`) the
//! platform's services; [`application`] runs one command of the command
//! line; [`streams`] carries its standard streams to the host. Built for the host this is only a stub that says how to build it.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod application;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod bootchart;
#[cfg(target_os = "none")]
mod cloud_init;
#[cfg(target_os = "none")]
mod devices;
#[cfg(target_os = "none")]
mod hardware;
#[cfg(target_os = "none")]
mod machine;
#[cfg(target_os = "none")]
mod streams;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("rosv-kernel runs inside a virtual machine; build it with `cargo xtask kernel`");
    std::process::exit(2);
}
