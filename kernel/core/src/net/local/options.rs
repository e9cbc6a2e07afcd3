//! Options of local sockets (`setsockopt`, `getsockopt`).

use alloc::vec::Vec;

use core::sync::atomic::Ordering;

use super::{LocalSocket, PeerCredentials, State};
use crate::errno::Errno;
use crate::net::abi::{option, timeval_bytes, timeval_ns};
use crate::net::address::family;
use crate::net::settings::{self, Number};

/// A buffer size asked for, bounded by `setting` when `is_bounded`.
fn bounded(asked: i32, is_bounded: bool, setting: &Number) -> usize {
    let asked = asked.max(0) as usize;
    if is_bounded { asked.min(setting.get() as usize) } else { asked }
}

/// The smallest and largest buffer `SO_SNDBUF` and `SO_RCVBUF` give.
pub(super) const BUFFER_LIMITS: (usize, usize) = (4608, 4 * 1024 * 1024);
/// The smallest receive buffer (Linux's `SOCK_MIN_RCVBUF`: 2048 bytes and
/// the size of a buffer's bookkeeping).
const RECEIVE_BUFFER_MIN: usize = 2304;
/// `SO_NO_CHECK`.
const SO_NO_CHECK: i32 = 11;
/// The priorities a process without `CAP_NET_ADMIN` may give (`SO_PRIORITY`).
const PRIORITY_UNPRIVILEGED: core::ops::RangeInclusive<i32> = 0..=6;
/// `SO_PEERCRED`, `SO_PASSCRED` and `SO_PEERSEC` (`asm-generic/socket.h`).
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
/// `SO_PEEK_OFF`.
const SO_PEEK_OFF: i32 = 42;

#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub(super) send_buffer: usize,
    pub(super) receive_buffer: usize,
    pub(super) receive_timeout_ns: Option<u64>,
    pub(super) send_timeout_ns: Option<u64>,
    pub(super) pass_credentials: bool,
    /// Where the next peek starts (`SO_PEEK_OFF`; `None`: -1, off).
    pub(super) peek_offset: Option<usize>,
    /// Socket-level options every socket keeps and reads back, though
    /// they change nothing for local sockets: `SO_REUSEADDR`,
    /// `SO_REUSEPORT`, `SO_KEEPALIVE`, `SO_BROADCAST`, `SO_NO_CHECK`,
    /// `SO_OOBINLINE`, `SO_DONTROUTE`, `SO_TIMESTAMP`, one bit each.
    flags: u8,
    receive_low_water: i32,
    priority: i32,
    /// `SO_LINGER`: on, and the seconds.
    linger: Option<i32>,
}

/// The bit of a socket-level flag option in [`Options::flags`].
fn flag_bit(name: i32) -> Option<u8> {
    let index = match name {
        option::SO_REUSEADDR => 0,
        option::SO_REUSEPORT => 1,
        option::SO_KEEPALIVE => 2,
        option::SO_BROADCAST => 3,
        SO_NO_CHECK => 4,
        option::SO_OOBINLINE => 5,
        option::SO_DONTROUTE => 6,
        option::SO_TIMESTAMP => 7,
        _ => return None,
    };
    Some(1 << index)
}

impl Default for Options {
    fn default() -> Self {
        Options {
            send_buffer: super::DEFAULT_BUFFER,
            receive_buffer: super::DEFAULT_BUFFER,
            receive_timeout_ns: None,
            send_timeout_ns: None,
            pass_credentials: false,
            peek_offset: None,
            flags: 0,
            receive_low_water: 1,
            priority: 0,
            linger: None,
        }
    }
}

impl LocalSocket {
    /// Sets an option (`setsockopt`); `may_administer`: the caller has
    /// `CAP_NET_ADMIN`.
    pub fn set_option(&self, level: i32, name: i32, value: &[u8], may_administer: bool) -> Result<(), Errno> {
        let integer = || -> Result<i32, Errno> {
            let bytes: [u8; 4] =
                value.get(..4).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
            Ok(i32::from_ne_bytes(bytes))
        };
        if level != option::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut options = self.options.lock();
        match name {
            // Linux bounds the request by `net.core.wmem_max` or
            // `rmem_max` (not the `FORCE` variants), then doubles it; the
            // kernel's own bound stays.
            option::SO_SNDBUF | option::SO_SNDBUFFORCE => {
                let asked = bounded(integer()?, name == option::SO_SNDBUF, &settings::WMEM_MAX);
                options.send_buffer = asked.saturating_mul(2).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            option::SO_RCVBUF | option::SO_RCVBUFFORCE => {
                let asked = bounded(integer()?, name == option::SO_RCVBUF, &settings::RMEM_MAX);
                options.receive_buffer = asked.saturating_mul(2).clamp(RECEIVE_BUFFER_MIN, BUFFER_LIMITS.1);
            }
            option::SO_RCVTIMEO => options.receive_timeout_ns = timeval_ns(value)?,
            option::SO_SNDTIMEO => options.send_timeout_ns = timeval_ns(value)?,
            SO_PASSCRED => {
                options.pass_credentials = integer()? != 0;
                if let State::Connected { channel, side, .. } = &self.inner.lock().state {
                    channel.passes_credentials[*side].store(options.pass_credentials, Ordering::Relaxed);
                }
            }
            SO_PEEK_OFF => {
                let offset = integer()?;
                if offset < -1 {
                    return Err(Errno::EINVAL);
                }
                options.peek_offset = usize::try_from(offset).ok();
            }
            option::SO_RCVLOWAT => {
                // Negative means as much as an int holds; 0 means 1.
                let value = integer()?;
                options.receive_low_water = if value < 0 { i32::MAX } else { value.max(1) };
            }
            option::SO_PRIORITY => {
                let value = integer()?;
                if !PRIORITY_UNPRIVILEGED.contains(&value) && !may_administer {
                    return Err(Errno::EPERM);
                }
                options.priority = value;
            }
            option::SO_LINGER => {
                let on = integer()?;
                let seconds = value.get(4..8).ok_or(Errno::EINVAL)?;
                let seconds = i32::from_ne_bytes(seconds.try_into().map_err(|_| Errno::EINVAL)?);
                options.linger = (on != 0).then_some(seconds.max(0));
            }
            name => match flag_bit(name) {
                Some(bit) if integer()? != 0 => options.flags |= bit,
                Some(bit) => options.flags &= !bit,
                // Linux has no setting of `SO_SNDLOWAT`.
                None => return Err(Errno::ENOPROTOOPT),
            },
        }
        Ok(())
    }

    /// Reads an option (`getsockopt`).
    pub fn option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let integer = |value: i32| value.to_ne_bytes().to_vec();
        if level != option::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        let options = *self.options.lock();
        Ok(match name {
            option::SO_TYPE => integer(self.kind.socket_type() as i32),
            option::SO_DOMAIN => integer(i32::from(family::UNIX)),
            option::SO_PROTOCOL | option::SO_ERROR => integer(0),
            option::SO_ACCEPTCONN => integer(i32::from(self.is_listening())),
            option::SO_SNDBUF => integer(options.send_buffer as i32),
            option::SO_RCVBUF => integer(options.receive_buffer as i32),
            option::SO_RCVTIMEO => timeval_bytes(options.receive_timeout_ns),
            option::SO_SNDTIMEO => timeval_bytes(options.send_timeout_ns),
            SO_PASSCRED => integer(i32::from(options.pass_credentials)),
            SO_PEEK_OFF => integer(options.peek_offset.map_or(-1, |offset| offset as i32)),
            SO_PEERCRED => {
                // `struct ucred`: the peer's process, user and group when
                // the connection was made; none (pid 0, ids -1) without
                // one.
                let unknown = PeerCredentials { process_id: 0, user_id: u32::MAX, group_id: u32::MAX };
                self.inner.lock().peer_credentials.unwrap_or(unknown).encode().to_vec()
            }
            option::SO_RCVLOWAT => integer(options.receive_low_water),
            option::SO_SNDLOWAT => integer(1),
            option::SO_PRIORITY => integer(options.priority),
            option::SO_LINGER => {
                let mut bytes = integer(i32::from(options.linger.is_some()));
                bytes.extend_from_slice(&options.linger.unwrap_or(0).to_ne_bytes());
                bytes
            }
            name => match flag_bit(name) {
                Some(bit) => integer(i32::from(options.flags & bit != 0)),
                None => return Err(Errno::ENOPROTOOPT),
            },
        })
    }
}
