//! The `epoll_ctl` vocabulary: `struct epoll_event`, its flag bits, and
//! the operations.

/// The event bits of `struct epoll_event` that are not readiness
/// (Linux `include/uapi/linux/eventpoll.h`).
#[allow(missing_docs)]
pub mod flags {
    pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
    pub const EPOLLWAKEUP: u32 = 1 << 29;
    pub const EPOLLONESHOT: u32 = 1 << 30;
    pub const EPOLLET: u32 = 1 << 31;
}

/// A `struct epoll_event`: readiness and flag bits, and the caller's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EpollEvent {
    /// Event bits (readiness as `poll` numbers it, and [`flags`]).
    pub events: u32,
    /// Handed back untouched with every report.
    pub data: u64,
}

impl EpollEvent {
    /// Its size: the structure is packed on x86-64.
    pub const SIZE_BYTES: usize = 12;

    /// The structure's bytes.
    pub fn encode(&self) -> [u8; Self::SIZE_BYTES] {
        let mut bytes = [0u8; Self::SIZE_BYTES];
        bytes[..4].copy_from_slice(&self.events.to_le_bytes());
        bytes[4..].copy_from_slice(&self.data.to_le_bytes());
        bytes
    }

    /// Reads the structure from its bytes.
    pub fn decode(bytes: &[u8; Self::SIZE_BYTES]) -> Self {
        let [first, second, third, fourth, data @ ..] = *bytes;
        EpollEvent {
            events: u32::from_le_bytes([first, second, third, fourth]),
            data: u64::from_le_bytes(data),
        }
    }
}

/// What `epoll_ctl` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `EPOLL_CTL_ADD`: watch a new (descriptor, description) pair.
    Add,
    /// `EPOLL_CTL_MOD`: change an interest's events and data; re-arms it.
    Modify,
    /// `EPOLL_CTL_DEL`: stop watching.
    Delete,
}
