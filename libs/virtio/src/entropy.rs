//! The virtio entropy device (§5.4): one queue of writable buffers that the
//! device fills with random bytes; no features, no configuration.

/// The index of the request queue.
pub const REQUEST_QUEUE: u16 = 0;
