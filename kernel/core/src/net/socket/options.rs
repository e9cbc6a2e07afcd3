//! Socket options (`setsockopt`, `getsockopt`) of TCP and UDP sockets.

use alloc::vec::Vec;

use smoltcp::socket::tcp;
use smoltcp::time::Duration;

use super::{Kind, Socket, State};
use crate::errno::Errno;
use crate::net::abi::{kind, option, timeval_bytes, timeval_ns};
use crate::vfs::node::Caller;

/// The default size of each of a TCP socket's two buffers.
const DEFAULT_BUFFER: usize = 64 * 1024;
/// The smallest and largest buffer `SO_RCVBUF` and `SO_SNDBUF` give.
const BUFFER_LIMITS: (usize, usize) = (4 * 1024, 4 * 1024 * 1024);
/// The default idle time before keep-alive probes (`TCP_KEEPIDLE`).
const KEEPALIVE_IDLE_SECONDS: u32 = 7200;

#[derive(Debug, Clone, Copy)]
pub(super) struct Options {
    pub(super) reuse_address: bool,
    pub(super) keep_alive: bool,
    pub(super) keepalive_idle_seconds: u32,
    pub(super) no_delay: bool,
    pub(super) receive_buffer: usize,
    pub(super) send_buffer: usize,
    pub(super) linger: Option<u32>,
    pub(super) receive_timeout_ns: Option<u64>,
    pub(super) send_timeout_ns: Option<u64>,
    pub(super) broadcast: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reuse_address: false,
            keep_alive: false,
            keepalive_idle_seconds: KEEPALIVE_IDLE_SECONDS,
            no_delay: false,
            receive_buffer: DEFAULT_BUFFER,
            send_buffer: DEFAULT_BUFFER,
            linger: None,
            receive_timeout_ns: None,
            send_timeout_ns: None,
            broadcast: false,
        }
    }
}

impl Socket {
    /// Sets an option (`setsockopt`); `value` holds the application's
    /// bytes.
    pub fn set_option(&self, caller: &Caller<'_>, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        let integer = || -> Result<i32, Errno> {
            let bytes: [u8; 4] =
                value.get(..4).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
            Ok(i32::from_ne_bytes(bytes))
        };
        let mut options = self.options.lock();
        match (level, name) {
            (option::SOL_SOCKET, option::SO_REUSEADDR) => options.reuse_address = integer()? != 0,
            (option::SOL_SOCKET, option::SO_KEEPALIVE) => options.keep_alive = integer()? != 0,
            (option::SOL_SOCKET, option::SO_BROADCAST) => options.broadcast = integer()? != 0,
            (option::SOL_SOCKET, option::SO_RCVBUF | option::SO_RCVBUFFORCE) => {
                options.receive_buffer = (integer()?.max(0) as usize).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            (option::SOL_SOCKET, option::SO_SNDBUF | option::SO_SNDBUFFORCE) => {
                options.send_buffer = (integer()?.max(0) as usize).clamp(BUFFER_LIMITS.0, BUFFER_LIMITS.1);
            }
            (option::SOL_SOCKET, option::SO_LINGER) => {
                if value.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let on = i32::from_ne_bytes(value[..4].try_into().map_err(|_| Errno::EINVAL)?);
                let seconds = i32::from_ne_bytes(value[4..8].try_into().map_err(|_| Errno::EINVAL)?);
                options.linger = (on != 0).then_some(seconds.max(0) as u32);
            }
            (option::SOL_SOCKET, option::SO_RCVTIMEO | option::SO_SNDTIMEO) => {
                let timeout = timeval_ns(value)?;
                if name == option::SO_RCVTIMEO {
                    options.receive_timeout_ns = timeout;
                } else {
                    options.send_timeout_ns = timeout;
                }
            }
            (
                option::SOL_SOCKET,
                option::SO_REUSEPORT
                | option::SO_DONTROUTE
                | option::SO_OOBINLINE
                | option::SO_PRIORITY
                | option::SO_RCVLOWAT
                | option::SO_SNDLOWAT
                | option::SO_TIMESTAMP,
            ) => {
                integer()?;
            }
            (option::IPPROTO_TCP, _) if self.kind != Kind::Stream => return Err(Errno::ENOPROTOOPT),
            (option::IPPROTO_TCP, option::TCP_NODELAY) => options.no_delay = integer()? != 0,
            (option::IPPROTO_TCP, option::TCP_KEEPIDLE) => {
                let seconds = integer()?;
                if !(1..=32767).contains(&seconds) {
                    return Err(Errno::EINVAL);
                }
                options.keepalive_idle_seconds = seconds as u32;
            }
            (
                option::IPPROTO_TCP,
                option::TCP_MAXSEG
                | option::TCP_CORK
                | option::TCP_KEEPINTVL
                | option::TCP_KEEPCNT
                | option::TCP_DEFER_ACCEPT
                | option::TCP_QUICKACK
                | option::TCP_USER_TIMEOUT
                | option::TCP_FASTOPEN,
            ) => {
                integer()?;
            }
            (
                option::IPPROTO_IP,
                option::IP_TOS
                | option::IP_TTL
                | option::IP_PKTINFO
                | option::IP_MTU_DISCOVER
                | option::IP_RECVERR,
            ) => {
                integer()?;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        let options = *options;
        if let State::Stream(stream) = &*self.state.lock() {
            let handle = stream.handle;
            self.stack(caller, |stack| apply_tcp_options(stack.tcp(handle), &options));
        }
        Ok(())
    }

    /// Reads an option (`getsockopt`) as the bytes the application gets.
    pub fn option(&self, caller: &Caller<'_>, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let integer = |value: i32| value.to_ne_bytes().to_vec();
        let options = *self.options.lock();
        Ok(match (level, name) {
            (option::SOL_SOCKET, option::SO_TYPE) => integer(match self.kind {
                Kind::Stream => kind::STREAM as i32,
                Kind::Datagram => kind::DATAGRAM as i32,
            }),
            (option::SOL_SOCKET, option::SO_PROTOCOL) => integer(match self.kind {
                Kind::Stream => option::IPPROTO_TCP,
                Kind::Datagram => option::IPPROTO_UDP,
            }),
            (option::SOL_SOCKET, option::SO_DOMAIN) => integer(i32::from(crate::net::address::family::INET)),
            (option::SOL_SOCKET, option::SO_ERROR) => {
                integer(self.take_error(caller).map_or(0, |error| error.0))
            }
            (option::SOL_SOCKET, option::SO_ACCEPTCONN) => integer(i32::from(self.is_listening())),
            (option::SOL_SOCKET, option::SO_REUSEADDR) => integer(i32::from(options.reuse_address)),
            (option::SOL_SOCKET, option::SO_KEEPALIVE) => integer(i32::from(options.keep_alive)),
            (option::SOL_SOCKET, option::SO_BROADCAST) => integer(i32::from(options.broadcast)),
            (option::SOL_SOCKET, option::SO_RCVBUF) => integer(options.receive_buffer as i32),
            (option::SOL_SOCKET, option::SO_SNDBUF) => integer(options.send_buffer as i32),
            (option::SOL_SOCKET, option::SO_REUSEPORT | option::SO_OOBINLINE | option::SO_DONTROUTE) => {
                integer(0)
            }
            (option::SOL_SOCKET, option::SO_RCVLOWAT | option::SO_SNDLOWAT) => integer(1),
            (option::SOL_SOCKET, option::SO_LINGER) => {
                let mut bytes = integer(i32::from(options.linger.is_some()));
                bytes.extend_from_slice(&(options.linger.unwrap_or(0) as i32).to_ne_bytes());
                bytes
            }
            (option::SOL_SOCKET, option::SO_RCVTIMEO) => timeval_bytes(options.receive_timeout_ns),
            (option::SOL_SOCKET, option::SO_SNDTIMEO) => timeval_bytes(options.send_timeout_ns),
            (option::IPPROTO_TCP, _) if self.kind != Kind::Stream => return Err(Errno::ENOPROTOOPT),
            (option::IPPROTO_TCP, option::TCP_NODELAY) => integer(i32::from(options.no_delay)),
            (option::IPPROTO_TCP, option::TCP_KEEPIDLE) => integer(options.keepalive_idle_seconds as i32),
            (option::IPPROTO_TCP, option::TCP_MAXSEG) => integer(1460),
            (option::IPPROTO_TCP, option::TCP_KEEPINTVL) => integer(75),
            (option::IPPROTO_TCP, option::TCP_KEEPCNT) => integer(9),
            (option::IPPROTO_TCP, option::TCP_CORK | option::TCP_DEFER_ACCEPT | option::TCP_QUICKACK) => {
                integer(0)
            }
            (option::IPPROTO_IP, option::IP_TTL) => integer(64),
            (option::IPPROTO_IP, option::IP_TOS) => integer(0),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }
}

pub(super) fn apply_tcp_options(tcp: &mut tcp::Socket<'static>, options: &Options) {
    tcp.set_nagle_enabled(!options.no_delay);
    tcp.set_keep_alive(
        options.keep_alive.then(|| Duration::from_secs(u64::from(options.keepalive_idle_seconds))),
    );
}
