//! The rosv kernel's hardware layer: the only crate with `unsafe` code.
//!
//! It owns the boot entries, the CPU's tables (GDT, IDT, TSS), paging, the
//! heap, the serial console, the TSC, the `syscall` entry, copies to and
//! from application memory, context switches and power-off, and hands the
//! rest of the kernel safe functions and types for each. The kernel binary
//! (`rosv-kernel`) calls these in the order its boot follows.
//!
//! Most modules exist only when building for the kernel target
//! (`x86_64-unknown-none`); the pure ones (memory maps, locks, firmware table
//! decoding, the log ring) also build on the host, where their unit tests run.

#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod acpi;
pub mod calibration;
pub mod cpu;
pub mod kernel_log;
pub mod memory;
pub mod rtc;
pub mod scheduling_policy;
pub mod sync;
pub mod timer_arming;

#[cfg(target_os = "none")]
pub mod apic;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod device;
#[cfg(target_os = "none")]
mod diagnostics;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
pub mod firmware;
#[cfg(target_os = "none")]
pub mod frames;
#[cfg(target_os = "none")]
pub mod interrupts;
#[cfg(target_os = "none")]
pub mod ioapic;
#[cfg(target_os = "none")]
pub mod layout;
#[cfg(target_os = "none")]
pub mod paging;
#[cfg(target_os = "none")]
pub mod pci;
#[cfg(target_os = "none")]
mod percpu;
#[cfg(target_os = "none")]
pub mod power;
#[cfg(target_os = "none")]
pub mod sched;
#[cfg(target_os = "none")]
pub mod smp;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod time;
#[cfg(target_os = "none")]
pub mod tlb;
#[cfg(target_os = "none")]
pub mod user;
#[cfg(target_os = "none")]
pub mod vdso;

/// Sets up the boot CPU: segments and TSS, the IDT, control registers.
#[cfg(target_os = "none")]
pub fn init_boot_cpu() {
    percpu::init_boot_cpu();
    interrupts::init();
    cpu::init_control_registers();
}
