//! The drivers against device models, on the host.

mod console;
mod fake;
mod model;
mod net;
mod pci;
mod queue;
mod virtio;
mod vsock;
