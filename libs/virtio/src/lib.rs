//! virtio split virtqueues, feature bits and device request formats.
//!
//! The driver side of a split virtqueue ([`SplitQueue`], virtio 1.2 §2.7)
//! keeps its bookkeeping (free descriptors, in-flight chains, ring indices)
//! in ordinary memory and touches the rings only through [`SharedMemory`],
//! which the kernel implements with volatile accesses to DMA memory and tests
//! implement with a byte vector. Nothing the device writes is trusted: a
//! used element naming a descriptor that is not in flight, or a length
//! larger than what the chain offered, is an error, never a panic.
//!
//! With the `testing` feature, [`device`] adds the other side: a device
//! that takes descriptor chains from the available ring and returns them
//! through the used ring, over a model of guest physical memory. Tests pair
//! the two in one process; the fuzz targets feed each side arbitrary bytes.
//!
//! [`spec`] holds the transport-independent constants; [`block`],
//! [`console`], [`entropy`], [`net`], [`p9`] and [`vsock`] the formats of the
//! block, console, entropy, network, 9P transport and socket devices.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod block;
pub mod console;
pub mod entropy;
mod layout;
mod memory;
pub mod net;
pub mod p9;
mod queue;
pub mod spec;
pub mod vsock;

#[cfg(feature = "testing")]
pub mod device;
#[cfg(feature = "testing")]
pub mod testing;

pub use layout::{LayoutKind, QueueLayout};
pub use memory::SharedMemory;
pub use queue::{Buffer, QueueError, SplitQueue, Used};

#[cfg(test)]
mod tests;
