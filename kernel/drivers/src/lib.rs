//! Device drivers: PCI enumeration, virtio transports and devices.
//!
//! Drivers are safe code over the [`Hardware`] trait: register windows
//! (memory-mapped or I/O ports), DMA memory, PCI configuration space. The
//! kernel implements it with the platform's types; the tests implement it
//! with the device model of `rosv-virtio`, so every driver runs on the host.
//!
//! - [`pci`]: finds the functions on the PCI buses, decodes their BARs and
//!   capabilities, programs MSI-X tables.
//! - [`virtio`]: one [`virtio::Transport`] interface over virtio-mmio
//!   (versions 1 and 2), modern virtio-pci and legacy virtio-pci; the
//!   [`virtio::Virtqueue`] that submits requests and waits for them; the
//!   block, entropy and network devices written once against the
//!   transport.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod hardware;
pub mod pci;
pub mod virtio;

pub use hardware::{DmaRegion, Hardware, RegisterWindow};

#[cfg(test)]
mod tests;
