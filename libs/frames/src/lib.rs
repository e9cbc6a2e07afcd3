//! Physical page frames: a buddy allocator and per-frame reference counts.
//!
//! [`Buddy`] hands out blocks of 2^order frames by frame number and keeps
//! its free lists in a table of [`Link`]s the caller provides, one per
//! frame; [`ReferenceCounts`] counts the users of each allocated block.
//! Neither touches the frames' memory: the kernel does that through its
//! physical map.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod buddy;
mod references;

pub use buddy::{Buddy, FreeError, Link, ORDER_COUNT};
pub use references::ReferenceCounts;

/// The size of a frame in bytes.
pub const FRAME_SIZE: u64 = 4096;

/// The smallest order whose block holds `bytes` bytes, if any order does.
pub fn order_for_bytes(bytes: u64) -> Option<usize> {
    let frames = bytes.div_ceil(FRAME_SIZE).max(1);
    let order = frames.next_power_of_two().trailing_zeros() as usize;
    (order < ORDER_COUNT).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_up_to_powers_of_two_frames() {
        assert_eq!(order_for_bytes(0), Some(0));
        assert_eq!(order_for_bytes(1), Some(0));
        assert_eq!(order_for_bytes(4096), Some(0));
        assert_eq!(order_for_bytes(4097), Some(1));
        assert_eq!(order_for_bytes(96 * 1024), Some(5));
        assert_eq!(order_for_bytes(1 << 40), None);
        assert_eq!(order_for_bytes(u64::MAX), None);
    }
}
