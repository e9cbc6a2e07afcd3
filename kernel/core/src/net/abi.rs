//! What every kind of socket shares with applications: the `SOCK_*`,
//! `MSG_*`, option and `shutdown` numbers, and timeouts as `struct
//! timeval`s (Linux `uapi/linux/socket.h`, `asm-generic/socket.h`,
//! `netinet/tcp.h`, `netinet/in.h`).

use alloc::vec::Vec;

use crate::errno::Errno;

/// Socket types (`SOCK_*`).
pub mod kind {
    /// A byte stream (TCP).
    pub const STREAM: u32 = 1;
    /// Datagrams (UDP).
    pub const DATAGRAM: u32 = 2;
    /// Raw packets.
    pub const RAW: u32 = 3;
    /// Sequenced packets.
    pub const SEQPACKET: u32 = 5;
}

/// Flags of `send` and `recv` (`MSG_*`).
pub mod message {
    /// Out-of-band data.
    pub const OOB: u32 = 0x1;
    /// Look without taking.
    pub const PEEK: u32 = 0x2;
    /// The datagram was longer than the buffer (reported in `msg_flags`).
    pub const TRUNC: u32 = 0x20;
    /// Do not wait.
    pub const DONTWAIT: u32 = 0x40;
    /// Read the error queue.
    pub const ERRQUEUE: u32 = 0x2000;
    /// Wait for the whole buffer.
    pub const WAITALL: u32 = 0x100;
    /// No `SIGPIPE` on a broken connection.
    pub const NOSIGNAL: u32 = 0x4000;
    /// More data follows (a hint).
    pub const MORE: u32 = 0x8000;
}

/// Option levels and names (`SOL_SOCKET`, `IPPROTO_TCP`, `IPPROTO_IP`).
pub mod option {
    /// Socket-level options.
    pub const SOL_SOCKET: i32 = 1;
    /// IP options.
    pub const IPPROTO_IP: i32 = 0;
    /// TCP options.
    pub const IPPROTO_TCP: i32 = 6;
    /// UDP options.
    pub const IPPROTO_UDP: i32 = 17;
    /// IPv6 options.
    pub const IPPROTO_IPV6: i32 = 41;

    /// `SO_REUSEADDR`.
    pub const SO_REUSEADDR: i32 = 2;
    /// `SO_TYPE`.
    pub const SO_TYPE: i32 = 3;
    /// `SO_ERROR`.
    pub const SO_ERROR: i32 = 4;
    /// `SO_DONTROUTE`.
    pub const SO_DONTROUTE: i32 = 5;
    /// `SO_BROADCAST`.
    pub const SO_BROADCAST: i32 = 6;
    /// `SO_SNDBUF`.
    pub const SO_SNDBUF: i32 = 7;
    /// `SO_RCVBUF`.
    pub const SO_RCVBUF: i32 = 8;
    /// `SO_KEEPALIVE`.
    pub const SO_KEEPALIVE: i32 = 9;
    /// `SO_OOBINLINE`.
    pub const SO_OOBINLINE: i32 = 10;
    /// `SO_PRIORITY`.
    pub const SO_PRIORITY: i32 = 12;
    /// `SO_LINGER`.
    pub const SO_LINGER: i32 = 13;
    /// `SO_REUSEPORT`.
    pub const SO_REUSEPORT: i32 = 15;
    /// `SO_RCVLOWAT`.
    pub const SO_RCVLOWAT: i32 = 18;
    /// `SO_SNDLOWAT`.
    pub const SO_SNDLOWAT: i32 = 19;
    /// `SO_RCVTIMEO` (the `timeval` form).
    pub const SO_RCVTIMEO: i32 = 20;
    /// `SO_SNDTIMEO` (the `timeval` form).
    pub const SO_SNDTIMEO: i32 = 21;
    /// `SO_TIMESTAMP`.
    pub const SO_TIMESTAMP: i32 = 29;
    /// `SO_ACCEPTCONN`.
    pub const SO_ACCEPTCONN: i32 = 30;
    /// `SO_SNDBUFFORCE`.
    pub const SO_SNDBUFFORCE: i32 = 32;
    /// `SO_RCVBUFFORCE`.
    pub const SO_RCVBUFFORCE: i32 = 33;
    /// `SO_PROTOCOL`.
    pub const SO_PROTOCOL: i32 = 38;
    /// `SO_DOMAIN`.
    pub const SO_DOMAIN: i32 = 39;

    /// `TCP_NODELAY`.
    pub const TCP_NODELAY: i32 = 1;
    /// `TCP_MAXSEG`.
    pub const TCP_MAXSEG: i32 = 2;
    /// `TCP_CORK`.
    pub const TCP_CORK: i32 = 3;
    /// `TCP_KEEPIDLE`.
    pub const TCP_KEEPIDLE: i32 = 4;
    /// `TCP_KEEPINTVL`.
    pub const TCP_KEEPINTVL: i32 = 5;
    /// `TCP_KEEPCNT`.
    pub const TCP_KEEPCNT: i32 = 6;
    /// `TCP_DEFER_ACCEPT`.
    pub const TCP_DEFER_ACCEPT: i32 = 9;
    /// `TCP_QUICKACK`.
    pub const TCP_QUICKACK: i32 = 12;
    /// `TCP_USER_TIMEOUT`.
    pub const TCP_USER_TIMEOUT: i32 = 18;
    /// `TCP_FASTOPEN`.
    pub const TCP_FASTOPEN: i32 = 23;

    /// `IP_TOS`.
    pub const IP_TOS: i32 = 1;
    /// `IP_TTL`.
    pub const IP_TTL: i32 = 2;
    /// `IP_PKTINFO`.
    pub const IP_PKTINFO: i32 = 8;
    /// `IP_MTU_DISCOVER`.
    pub const IP_MTU_DISCOVER: i32 = 10;
    /// `IP_RECVERR`.
    pub const IP_RECVERR: i32 = 11;
}

/// A control message a receive delivers (`struct cmsghdr` and its data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// The level (`SOL_SOCKET`, `IPPROTO_IP`, `IPPROTO_TCP`).
    pub level: i32,
    /// The type at that level.
    pub kind: i32,
    /// The data.
    pub data: Vec<u8>,
}

/// `shutdown` directions.
pub mod shut {
    /// No more receiving.
    pub const READ: u32 = 0;
    /// No more sending.
    pub const WRITE: u32 = 1;
    /// Neither.
    pub const BOTH: u32 = 2;
}

/// Reads a `struct timeval` as a timeout, as Linux's `sock_set_timeout`
/// does: zero is none (wait for ever), negative seconds mean not to wait at
/// all (`Some(0)`), microseconds outside a second are `EDOM`, and a value
/// shorter than a `timeval` is `EINVAL`.
pub fn timeval_ns(value: &[u8]) -> Result<Option<u64>, Errno> {
    if value.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let seconds = i64::from_ne_bytes(value[..8].try_into().map_err(|_| Errno::EINVAL)?);
    let microseconds = i64::from_ne_bytes(value[8..16].try_into().map_err(|_| Errno::EINVAL)?);
    if !(0..1_000_000).contains(&microseconds) {
        return Err(Errno::EDOM);
    }
    if seconds < 0 {
        return Ok(Some(0));
    }
    let total = (seconds as u64).saturating_mul(1_000_000_000).saturating_add(microseconds as u64 * 1000);
    Ok((total > 0).then_some(total))
}

/// A timeout as the `struct timeval` an application reads (zero: none).
pub fn timeval_bytes(timeout_ns: Option<u64>) -> Vec<u8> {
    let total = timeout_ns.unwrap_or(0);
    let mut bytes = ((total / 1_000_000_000) as i64).to_ne_bytes().to_vec();
    bytes.extend_from_slice(&(((total % 1_000_000_000) / 1000) as i64).to_ne_bytes());
    bytes
}
