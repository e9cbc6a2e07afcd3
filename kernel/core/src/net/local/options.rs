//! Options of local sockets (`setsockopt`, `getsockopt`).

use alloc::vec::Vec;

use super::{LocalSocket, PeerCredentials};
use crate::errno::Errno;
use crate::net::abi::{option, timeval_bytes, timeval_ns};
use crate::net::address::family;

/// The smallest and largest buffer `SO_SNDBUF` and `SO_RCVBUF` give.
pub(super) const BUFFER_LIMITS: (usize, usize) = (4608, 4 * 1024 * 1024);
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
        }
    }
}

impl LocalSocket {
    /// Sets an option (`setsockopt`).
    pub fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
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
            option::SO_SNDBUF | option::SO_SNDBUFFORCE => {
                options.send_buffer =
                    (integer()?.max(0) as usize * 2).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            option::SO_RCVBUF | option::SO_RCVBUFFORCE => {
                options.receive_buffer =
                    (integer()?.max(0) as usize * 2).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            option::SO_RCVTIMEO => options.receive_timeout_ns = timeval_ns(value)?,
            option::SO_SNDTIMEO => options.send_timeout_ns = timeval_ns(value)?,
            SO_PASSCRED => options.pass_credentials = integer()? != 0,
            SO_PEEK_OFF => {
                let offset = integer()?;
                if offset < -1 {
                    return Err(Errno::EINVAL);
                }
                options.peek_offset = usize::try_from(offset).ok();
            }
            option::SO_REUSEADDR
            | option::SO_REUSEPORT
            | option::SO_KEEPALIVE
            | option::SO_BROADCAST
            | option::SO_PRIORITY
            | option::SO_RCVLOWAT
            | option::SO_SNDLOWAT
            | option::SO_TIMESTAMP => {
                integer()?;
            }
            option::SO_LINGER if value.len() >= 8 => {}
            option::SO_LINGER => return Err(Errno::EINVAL),
            _ => return Err(Errno::ENOPROTOOPT),
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
            option::SO_REUSEADDR | option::SO_KEEPALIVE | option::SO_BROADCAST => integer(0),
            option::SO_LINGER => [0u8; 8].to_vec(),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}
