//! Socket options (`setsockopt`, `getsockopt`) of TCP and UDP sockets, as
//! `socket(7)`, `ip(7)`, `tcp(7)` and `udp(7)` describe them.
//!
//! Every option Linux has for these sockets at these levels is accepted
//! with Linux's checks and reads back what was set. Those the stack acts
//! on: the buffers, `SO_LINGER`, `SO_REUSEPORT`, the timeouts, `IP_TTL`,
//! `TCP_NODELAY` and `TCP_CORK` (held partial segments), keep-alive and
//! `TCP_USER_TIMEOUT`, `TCP_INQ`, `TCP_INFO`, `UDP_CORK`, `IP_PKTINFO`,
//! `IP_RECVERR`, `SO_TIMESTAMP(NS)`, multicast memberships and
//! `IP_MULTICAST_LOOP`/`IP_MULTICAST_IF`. The rest (priorities, marks, type
//! of service, multicast time to live) only matter on a network the
//! machine does not have or smoltcp does not let the stack set: one
//! interface, no queueing disciplines, no multicast routing.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::socket::tcp;
use smoltcp::time::Duration;

use super::{Datagram, Kind, Socket, State, is_synchronized};
use crate::errno::Errno;
use crate::net::abi::{kind, option, timeval_bytes, timeval_ns};
use crate::net::address::family;
use crate::net::settings::{self, Number};
use crate::net::stack::Stack;
use crate::vfs::node::Caller;

mod ip;

pub(super) use ip::joined_groups;
use ip::{ip_option, ipv6_option, set_ip_option, set_ipv6_option};

/// The default size of each of a TCP socket's two buffers.
const DEFAULT_BUFFER: usize = 64 * 1024;
/// The smallest send and receive buffers (Linux's `SOCK_MIN_SNDBUF` and
/// `SOCK_MIN_RCVBUF`), and the largest the `FORCE` variants give (the
/// others give up to twice `net.core.rmem_max` or `wmem_max`).
const SEND_BUFFER_MIN: usize = 4608;
const RECEIVE_BUFFER_MIN: usize = 2304;
const BUFFER_FORCE_MAX: usize = 4 * 1024 * 1024;
/// The default idle time before keep-alive probes (`TCP_KEEPIDLE`), the
/// time between them (`TCP_KEEPINTVL`) and how many go unanswered before
/// the connection is dropped (`TCP_KEEPCNT`): `net.ipv4.tcp_keepalive_*`.
const KEEPALIVE_IDLE_SECONDS: u32 = 7200;
const KEEPALIVE_INTERVAL_SECONDS: u32 = 75;
const KEEPALIVE_PROBES: u32 = 9;
/// The largest keep-alive time (`MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL`)
/// and probe count (`MAX_TCP_KEEPCNT`).
const KEEPALIVE_SECONDS_MAX: i32 = 32767;
const KEEPALIVE_PROBES_MAX: i32 = 127;
/// The segment size of a connection that has none yet
/// (`TCP_MSS_DEFAULT`), and the range `TCP_MAXSEG` takes.
const DEFAULT_MSS: u32 = 536;
const MSS_RANGE: core::ops::RangeInclusive<i32> = 88..=32767;
/// The congestion control smoltcp runs (`socket-tcp-reno`).
const CONGESTION_CONTROL: &str = "reno";
/// How many times a SYN is sent, unless set (`net.ipv4.tcp_syn_retries`),
/// and the most `TCP_SYNCNT` takes (`MAX_TCP_SYNCNT`).
const SYN_RETRIES_DEFAULT: u8 = 6;
const SYN_RETRIES_MAX: i32 = 127;
/// How long a closed connection waits in `FIN-WAIT-2` unless `TCP_LINGER2`
/// says otherwise (`net.ipv4.tcp_fin_timeout`), and the most it takes
/// (`TCP_FIN_TIMEOUT_MAX`).
const FIN_TIMEOUT_SECONDS: i32 = 60;
const FIN_TIMEOUT_MAX_SECONDS: i32 = 120;
/// The time to live of packets, unless set (`net.ipv4.ip_default_ttl`).
const DEFAULT_TTL: u8 = 64;
/// `IFNAMSIZ`.
const INTERFACE_NAME_MAX: usize = 16;

/// Option numbers `abi` does not name.
mod number {
    pub const SO_BINDTODEVICE: i32 = 25;
    pub const SO_TIMESTAMPNS: i32 = 35;
    pub const SO_MARK: i32 = 36;
    pub const SO_RCVTIMEO_NEW: i32 = 66;
    pub const SO_SNDTIMEO_NEW: i32 = 67;
    pub const TCP_SYNCNT: i32 = 7;
    pub const TCP_LINGER2: i32 = 8;
    pub const TCP_WINDOW_CLAMP: i32 = 10;
    pub const TCP_INFO: i32 = 11;
    pub const UDP_CORK: i32 = 1;
    pub const TCP_CONGESTION: i32 = 13;
    pub const TCP_INQ: i32 = 36;
    pub const IP_RECVTOS: i32 = 13;
    pub const IP_MULTICAST_IF: i32 = 32;
    pub const IP_MULTICAST_TTL: i32 = 33;
    pub const IP_MULTICAST_LOOP: i32 = 34;
    pub const IP_ADD_MEMBERSHIP: i32 = 35;
    pub const IP_DROP_MEMBERSHIP: i32 = 36;
    pub const IP_ADD_SOURCE_MEMBERSHIP: i32 = 39;
    pub const IP_DROP_SOURCE_MEMBERSHIP: i32 = 40;
    pub const MCAST_JOIN_GROUP: i32 = 42;
    pub const MCAST_LEAVE_GROUP: i32 = 45;
    pub const IPPROTO_IPV6: i32 = 41;
    pub const IPV6_UNICAST_HOPS: i32 = 16;
    pub const IPV6_MULTICAST_HOPS: i32 = 18;
    pub const IPV6_MULTICAST_LOOP: i32 = 19;
    pub const IPV6_V6ONLY: i32 = 26;
    pub const IPV6_RECVPKTINFO: i32 = 49;
    pub const IPV6_TCLASS: i32 = 67;
}
pub(super) use number::{SO_TIMESTAMPNS, TCP_INQ};

/// How received datagrams are stamped with their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timestamps {
    /// Not at all.
    Off,
    /// `SO_TIMESTAMP`: a `struct timeval`.
    Microseconds,
    /// `SO_TIMESTAMPNS`: a `struct timespec`.
    Nanoseconds,
}

/// A multicast group the socket joined, from any source (no sources) or
/// from those listed (`IP_ADD_SOURCE_MEMBERSHIP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Membership {
    pub(super) group: [u8; 4],
    pub(super) sources: Vec<[u8; 4]>,
}

#[derive(Debug, Clone)]
pub(super) struct Options {
    pub(super) reuse_address: bool,
    pub(super) reuse_port: bool,
    pub(super) keep_alive: bool,
    pub(super) keepalive_idle_seconds: u32,
    pub(super) keepalive_interval_seconds: u32,
    pub(super) keepalive_probes: u32,
    pub(super) user_timeout_ms: u32,
    pub(super) no_delay: bool,
    pub(super) cork: bool,
    pub(super) quick_ack: bool,
    pub(super) max_segment: Option<u32>,
    pub(super) defer_accept_seconds: i32,
    pub(super) fast_open_queue: i32,
    pub(super) reports_inq: bool,
    /// `TCP_SYNCNT` and `TCP_WINDOW_CLAMP` (0: none), read back only.
    pub(super) syn_retries: u8,
    pub(super) window_clamp: u32,
    pub(super) receive_buffer: usize,
    pub(super) send_buffer: usize,
    pub(super) linger: Option<u32>,
    pub(super) receive_timeout_ns: Option<u64>,
    pub(super) send_timeout_ns: Option<u64>,
    pub(super) broadcast: bool,
    /// `SO_OOBINLINE` and `SO_DONTROUTE`, kept and read back.
    pub(super) out_of_band_inline: bool,
    pub(super) dont_route: bool,
    /// `TCP_LINGER2`: -1 (no `FIN-WAIT-2` wait), 0 (the system's) or the
    /// seconds set, read back.
    pub(super) linger2_seconds: i32,
    pub(super) priority: i32,
    pub(super) mark: u32,
    pub(super) device: Option<String>,
    pub(super) timestamps: Timestamps,
    pub(super) type_of_service: u8,
    pub(super) time_to_live: Option<u8>,
    pub(super) receives_type_of_service: bool,
    pub(super) packet_information: bool,
    pub(super) receives_errors: bool,
    pub(super) multicast_time_to_live: u8,
    pub(super) multicast_loop: bool,
    pub(super) multicast_interface: [u8; 4],
    pub(super) memberships: Vec<Membership>,
    pub(super) is_v6_only: bool,
    pub(super) traffic_class: u8,
    pub(super) receives_packet_information_v6: bool,
    pub(super) udp_cork: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reuse_address: false,
            reuse_port: false,
            keep_alive: false,
            keepalive_idle_seconds: KEEPALIVE_IDLE_SECONDS,
            keepalive_interval_seconds: KEEPALIVE_INTERVAL_SECONDS,
            keepalive_probes: KEEPALIVE_PROBES,
            user_timeout_ms: 0,
            no_delay: false,
            cork: false,
            quick_ack: true,
            max_segment: None,
            defer_accept_seconds: 0,
            fast_open_queue: 0,
            reports_inq: false,
            syn_retries: SYN_RETRIES_DEFAULT,
            window_clamp: 0,
            receive_buffer: DEFAULT_BUFFER,
            send_buffer: DEFAULT_BUFFER,
            linger: None,
            receive_timeout_ns: None,
            send_timeout_ns: None,
            broadcast: false,
            out_of_band_inline: false,
            dont_route: false,
            linger2_seconds: 0,
            priority: 0,
            mark: 0,
            device: None,
            timestamps: Timestamps::Off,
            type_of_service: 0,
            time_to_live: None,
            receives_type_of_service: false,
            packet_information: false,
            receives_errors: false,
            multicast_time_to_live: 1,
            multicast_loop: true,
            multicast_interface: [0; 4],
            memberships: Vec::new(),
            is_v6_only: false,
            traffic_class: 0,
            receives_packet_information_v6: false,
            udp_cork: false,
        }
    }
}

/// The first four bytes of an option's value as an `int`; a shorter value
/// is `EINVAL`.
fn integer(value: &[u8]) -> Result<i32, Errno> {
    let bytes: [u8; 4] = value.get(..4).ok_or(Errno::EINVAL)?.try_into().map_err(|_| Errno::EINVAL)?;
    Ok(i32::from_ne_bytes(bytes))
}

/// An option value that may be an `int` or a single byte, as Linux's IP
/// options take them.
fn integer_or_byte(value: &[u8]) -> Result<i32, Errno> {
    match value.len() {
        0 => Err(Errno::EINVAL),
        1..=3 => Ok(i32::from(value[0])),
        _ => integer(value),
    }
}

/// A buffer size as `SO_SNDBUF` or `SO_RCVBUF` sets it: doubled (the
/// kernel's bookkeeping shares the space), within the limits.
fn buffer_size(value: &[u8], minimum: usize, largest: &Number, is_forced: bool) -> Result<usize, Errno> {
    let requested = integer(value)?.max(0) as usize;
    // Linux bounds the request by the setting, then doubles it.
    let requested = if is_forced { requested } else { requested.min(largest.get() as usize) };
    Ok(requested.saturating_mul(2).clamp(minimum, BUFFER_FORCE_MAX.max(minimum)))
}

impl Socket {
    /// Sets an option (`setsockopt`); `value` holds the application's
    /// bytes.
    pub fn set_option(&self, caller: &Caller<'_>, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        if level == option::SOL_SOCKET && name == number::SO_BINDTODEVICE {
            let device = self.device_name(value)?;
            self.options.lock().device = device;
            return Ok(());
        }
        if (level, name) == (number::IPPROTO_IPV6, number::IPV6_V6ONLY) && self.is_ipv6 {
            // Only before the socket has an address.
            let is_v6_only = integer(value)? != 0;
            if self.local_address(caller).port() != 0 {
                return Err(Errno::EINVAL);
            }
            self.options.lock().is_v6_only = is_v6_only;
            return Ok(());
        }
        if (level, name) == (option::IPPROTO_TCP, number::TCP_WINDOW_CLAMP)
            && self.kind == Kind::Stream
            && integer(value)? == 0
            && !matches!(&*self.state.lock(), State::Unconnected { .. })
        {
            return Err(Errno::EINVAL);
        }
        let mut options = self.options.lock();
        let groups_before = joined_groups(&options);
        match (level, name) {
            (option::SOL_SOCKET, _) => set_socket_option(&mut options, name, value)?,
            (option::IPPROTO_TCP, _) if self.kind != Kind::Stream => return Err(Errno::ENOPROTOOPT),
            (option::IPPROTO_TCP, _) => set_tcp_option(&mut options, name, value)?,
            (option::IPPROTO_IP, _) => set_ip_option(&mut options, self.kind, name, value)?,
            (number::IPPROTO_IPV6, _) if self.is_ipv6 => set_ipv6_option(&mut options, name, value)?,
            (option::IPPROTO_UDP, number::UDP_CORK) if self.kind == Kind::Datagram => {
                options.udp_cork = integer(value)? != 0;
                if !options.udp_cork {
                    drop(options);
                    // Taking the cork off sends what was gathered.
                    return self.send_pending(caller);
                }
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        let groups_after = joined_groups(&options);
        let sources_changed = matches!(
            (level, name),
            (option::IPPROTO_IP, number::IP_ADD_SOURCE_MEMBERSHIP | number::IP_DROP_SOURCE_MEMBERSHIP)
        );
        let snapshot = options.clone();
        drop(options);
        let options = snapshot;
        if groups_after != groups_before {
            self.change_groups(caller, &groups_before, &groups_after)?;
        }
        if groups_after != groups_before || sources_changed {
            let sources = self.options.lock().group_sources();
            if let State::Datagram(Datagram { handle: Some(handle), .. }) = &*self.state.lock() {
                let handle = *handle;
                self.stack(caller, |stack| stack.set_group_sources(handle, &sources));
            }
        }
        match &mut *self.state.lock() {
            State::Stream(stream) => {
                let handle = stream.handle;
                // Taking the cork off, or turning Nagle's algorithm off,
                // sends what was held back.
                let releases = level == option::IPPROTO_TCP
                    && ((name == option::TCP_CORK && !options.cork)
                        || (name == option::TCP_NODELAY && options.no_delay));
                self.stack(caller, |stack| {
                    apply_tcp_options(stack, handle, &options);
                    if releases {
                        stack.release_held(handle);
                    }
                });
            }
            State::Datagram(datagram) => {
                datagram.receives_errors = options.receives_errors;
                if let Some(handle) = datagram.handle {
                    self.stack(caller, |stack| stack.udp(handle).set_hop_limit(options.time_to_live));
                }
            }
            State::Listening { listener, .. } => {
                if (level, name) == (option::IPPROTO_TCP, option::TCP_DEFER_ACCEPT) {
                    let (listener, seconds) = (*listener, options.defer_accept_seconds as u32);
                    self.stack(caller, |stack| stack.set_defer_accept(listener, seconds));
                }
            }
            State::Unconnected { .. } => {}
        }
        Ok(())
    }

    /// Joins the groups in `after` and not in `before` and leaves those
    /// in `before` and not in `after`; a group the machine cannot join is
    /// no membership of the socket's (`ENOBUFS`).
    fn change_groups(&self, caller: &Caller<'_>, before: &[[u8; 4]], after: &[[u8; 4]]) -> Result<(), Errno> {
        let mut failed = None;
        self.stack(caller, |stack| {
            for group in after.iter().filter(|group| !before.contains(group)) {
                if let Err(error) = stack.join_group(Ipv4Addr::from(*group)) {
                    failed = Some((*group, error));
                }
            }
            for group in before.iter().filter(|group| !after.contains(group)) {
                stack.leave_group(Ipv4Addr::from(*group));
            }
        });
        let Some((group, error)) = failed else { return Ok(()) };
        self.options.lock().memberships.retain(|membership| membership.group != group);
        Err(error)
    }

    /// The device `SO_BINDTODEVICE` names: `None` for an empty name,
    /// `ENODEV` for one the machine does not have.
    fn device_name(&self, value: &[u8]) -> Result<Option<String>, Errno> {
        let length =
            value.iter().position(|byte| *byte == 0).unwrap_or(value.len()).min(INTERFACE_NAME_MAX - 1);
        if length == 0 {
            return Ok(None);
        }
        let name = core::str::from_utf8(&value[..length]).map_err(|_| Errno::ENODEV)?;
        if !self.network.interfaces().iter().any(|interface| interface.name == name) {
            return Err(Errno::ENODEV);
        }
        Ok(Some(String::from(name)))
    }

    /// Reads an option (`getsockopt`) as the bytes the application gets.
    pub fn option(&self, caller: &Caller<'_>, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let integer = |value: i32| value.to_ne_bytes().to_vec();
        let options = self.options.lock().clone();
        Ok(match (level, name) {
            (option::SOL_SOCKET, option::SO_TYPE) => integer(match self.kind {
                Kind::Stream => kind::STREAM as i32,
                Kind::Datagram => kind::DATAGRAM as i32,
            }),
            (option::SOL_SOCKET, option::SO_PROTOCOL) => integer(match self.kind {
                Kind::Stream => option::IPPROTO_TCP,
                Kind::Datagram => option::IPPROTO_UDP,
            }),
            (option::SOL_SOCKET, option::SO_DOMAIN) => {
                let family = if self.is_ipv6 { family::INET6 } else { family::INET };
                integer(i32::from(family))
            }
            (option::SOL_SOCKET, option::SO_ERROR) => {
                integer(self.take_error(caller).map_or(0, |error| error.0))
            }
            (option::SOL_SOCKET, number::SO_BINDTODEVICE) => {
                // The name and its NUL; nothing when unbound.
                let mut bytes = options.device.map(String::into_bytes).unwrap_or_default();
                if !bytes.is_empty() {
                    bytes.push(0);
                }
                bytes
            }
            (option::SOL_SOCKET, _) => socket_option(&options, name, self.is_listening())?,
            (option::IPPROTO_TCP, _) if self.kind != Kind::Stream => return Err(self.foreign_level()),
            (option::IPPROTO_TCP, number::TCP_INFO) => self.tcp_information(caller, &options),
            (option::IPPROTO_TCP, option::TCP_MAXSEG) => {
                let connected_mss = match &*self.state.lock() {
                    State::Stream(stream) if stream.was_connected => {
                        Some(self.network.stack.lock().mtu() - 40)
                    }
                    _ => None,
                };
                let mss = match (connected_mss, options.max_segment) {
                    (Some(path), Some(chosen)) => (path as u32).min(chosen),
                    (Some(path), None) => path as u32,
                    (None, chosen) => chosen.unwrap_or(DEFAULT_MSS),
                };
                integer(mss as i32)
            }
            (option::IPPROTO_TCP, _) => tcp_option(&options, name)?,
            (option::IPPROTO_IP, _) => ip_option(&options, name)?,
            (number::IPPROTO_IPV6, _) if self.is_ipv6 => ipv6_option(&options, name)?,
            (option::IPPROTO_UDP, number::UDP_CORK) if self.kind == Kind::Datagram => {
                integer(i32::from(options.udp_cork))
            }
            (option::IPPROTO_UDP, _) if self.kind == Kind::Datagram => return Err(Errno::ENOPROTOOPT),
            _ => return Err(self.foreign_level()),
        })
    }

    /// What `getsockopt` says of a level that is not the socket's: the
    /// IPv4 layer refuses it as an operation (`EOPNOTSUPP`), the IPv6 one
    /// as an unknown option.
    fn foreign_level(&self) -> Errno {
        if self.is_ipv6 { Errno::ENOPROTOOPT } else { Errno::EOPNOTSUPP }
    }

    /// `struct tcp_info` (Linux `uapi/linux/tcp.h`, up to `tcpi_rehash`):
    /// the state, the buffers smoltcp knows, and what the connection's
    /// segments said (`net::segments`); zero for what the stack does not
    /// do (pacing, SACK scoreboards, delivery rates).
    fn tcp_information(&self, caller: &Caller<'_>, options: &Options) -> Vec<u8> {
        const SIZE: usize = 240;
        /// `TCP_INFINITE_SSTHRESH`, and the reordering Linux assumes.
        const NO_THRESHOLD: u32 = 0x7fff_ffff;
        const REORDERING: u32 = 3;
        /// `TCP_CA_Open`, `TCP_CA_Recovery` and `TCP_CA_Loss`.
        const CA_OPEN: u8 = 0;
        const CA_RECOVERY: u8 = 3;
        const CA_LOSS: u8 = 4;
        let mut bytes = vec![0u8; SIZE];
        let put = |bytes: &mut Vec<u8>, at: usize, value: u32| {
            bytes[at..at + 4].copy_from_slice(&value.to_ne_bytes());
        };
        let put_wide = |bytes: &mut Vec<u8>, at: usize, value: u64| {
            bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
        };
        let mtu = self.network.stack.lock().mtu() as u32;
        let now = caller.machine.monotonic_ns();
        let (state, connection) = match &*self.state.lock() {
            State::Listening { .. } => (LINUX_LISTEN, None),
            State::Unconnected { .. } | State::Datagram(_) => (LINUX_CLOSE, None),
            State::Stream(stream) => {
                let handle = stream.handle;
                self.stack(caller, |stack| {
                    let figures = stack.tcp_figures(handle);
                    let held = stack.held_length(handle);
                    let tcp = stack.tcp(handle);
                    let buffers = (tcp.send_queue() + held, tcp.recv_capacity() - tcp.recv_queue());
                    let ack_delay = tcp.ack_delay().map_or(0, |delay| delay.total_micros() as u32);
                    (linux_state(tcp.state()), Some((buffers, ack_delay, figures)))
                })
            }
        };
        bytes[0] = state;
        let Some(((queued, receive_space), ack_delay, figures)) = connection else { return bytes };
        let path_mss = mtu - 40;
        let chosen = |mss: u32| options.max_segment.map_or(mss, |chosen| chosen.min(mss));
        let send_mss =
            chosen(figures.and_then(|figures| figures.peer_mss()).unwrap_or(path_mss).min(path_mss));
        let advertised_mss = chosen(figures.and_then(|figures| figures.own_mss()).unwrap_or(path_mss));
        put(&mut bytes, 12, ack_delay);
        put(&mut bytes, 16, send_mss);
        put(&mut bytes, 60, mtu);
        put(&mut bytes, 84, advertised_mss);
        put(&mut bytes, 88, REORDERING);
        put(&mut bytes, 96, receive_space as u32);
        let Some(figures) = figures else {
            // A connection that lost its ends (reset): what the buffers say.
            put(&mut bytes, 8, figures_free_rto());
            put(&mut bytes, 20, advertised_mss.min(DEFAULT_MSS));
            put(&mut bytes, 24, queued.div_ceil(send_mss as usize) as u32);
            put(&mut bytes, 76, NO_THRESHOLD);
            put(&mut bytes, 80, 1);
            return bytes;
        };
        // Milliseconds since a moment smoltcp timed (µs since boot), 0 if
        // it never came.
        let since = |moment: Option<smoltcp::time::Instant>| {
            moment.map_or(0, |moment| {
                let at_ns = u64::try_from(moment.total_micros()).unwrap_or(0).saturating_mul(1000);
                (now.saturating_sub(at_ns) / 1_000_000) as u32
            })
        };
        let in_flight = figures.bytes_in_flight();
        bytes[1] = if figures.is_in_fast_recovery() {
            CA_RECOVERY
        } else if figures.recent_retransmissions > 0 {
            CA_LOSS
        } else {
            CA_OPEN
        };
        bytes[2] = figures.recent_retransmissions;
        bytes[5] = figures.options();
        let (send_scale, receive_scale) = figures.window_scales();
        bytes[6] = (send_scale & 0xf) | (receive_scale << 4);
        put(&mut bytes, 8, figures.retransmission_timeout_us());
        let receive_mss = match figures.largest_received {
            0 => advertised_mss.min(DEFAULT_MSS),
            largest => largest.min(advertised_mss),
        };
        put(&mut bytes, 20, receive_mss);
        put(&mut bytes, 24, in_flight.div_ceil(u64::from(send_mss)) as u32);
        put(&mut bytes, 36, u32::from(figures.recent_retransmissions));
        put(&mut bytes, 44, since(figures.last_data_sent));
        put(&mut bytes, 52, since(figures.last_data_received));
        put(&mut bytes, 56, since(figures.last_acknowledgement));
        put(&mut bytes, 64, figures.own_window);
        put(&mut bytes, 68, figures.smoothed_rtt_us.unwrap_or(0));
        put(&mut bytes, 72, figures.rtt_variation_us);
        put(
            &mut bytes,
            76,
            figures.slow_start_threshold.map_or(NO_THRESHOLD, |threshold| threshold / send_mss),
        );
        put(&mut bytes, 80, (figures.congestion_window / send_mss).max(1));
        put(&mut bytes, 100, figures.retransmissions);
        put_wide(&mut bytes, 120, figures.bytes_acknowledged());
        put_wide(&mut bytes, 128, figures.bytes_received());
        put(&mut bytes, 136, figures.segments_out);
        put(&mut bytes, 140, figures.segments_in);
        put(&mut bytes, 144, (queued as u64).saturating_sub(in_flight) as u32);
        put(&mut bytes, 148, figures.min_rtt_us.unwrap_or(0));
        put(&mut bytes, 152, figures.data_segments_in);
        put(&mut bytes, 156, figures.data_segments_out);
        put_wide(&mut bytes, 200, figures.bytes_sent);
        put_wide(&mut bytes, 208, figures.bytes_retransmitted);
        put(&mut bytes, 224, figures.out_of_order);
        put(&mut bytes, 228, figures.peer_window);
        put(&mut bytes, 232, figures.own_window);
        bytes
    }
}

/// The retransmission timeout of a connection whose round trip is not
/// known (µs).
fn figures_free_rto() -> u32 {
    crate::net::segments::Figures::default().retransmission_timeout_us()
}

/// Linux's TCP states (`include/net/tcp_states.h`).
const LINUX_LISTEN: u8 = 10;
const LINUX_CLOSE: u8 = 7;

fn linux_state(state: tcp::State) -> u8 {
    match state {
        tcp::State::Established => 1,
        tcp::State::SynSent => 2,
        tcp::State::SynReceived => 3,
        tcp::State::FinWait1 => 4,
        tcp::State::FinWait2 => 5,
        tcp::State::TimeWait => 6,
        tcp::State::Closed => LINUX_CLOSE,
        tcp::State::CloseWait => 8,
        tcp::State::LastAck => 9,
        tcp::State::Listen => LINUX_LISTEN,
        tcp::State::Closing => 11,
    }
}

fn set_socket_option(options: &mut Options, name: i32, value: &[u8]) -> Result<(), Errno> {
    match name {
        option::SO_REUSEADDR => options.reuse_address = integer(value)? != 0,
        option::SO_REUSEPORT => options.reuse_port = integer(value)? != 0,
        option::SO_KEEPALIVE => options.keep_alive = integer(value)? != 0,
        option::SO_BROADCAST => options.broadcast = integer(value)? != 0,
        option::SO_RCVBUF | option::SO_RCVBUFFORCE => {
            options.receive_buffer =
                buffer_size(value, RECEIVE_BUFFER_MIN, &settings::RMEM_MAX, name == option::SO_RCVBUFFORCE)?;
        }
        option::SO_SNDBUF | option::SO_SNDBUFFORCE => {
            options.send_buffer =
                buffer_size(value, SEND_BUFFER_MIN, &settings::WMEM_MAX, name == option::SO_SNDBUFFORCE)?;
        }
        option::SO_LINGER => {
            if value.len() < 8 {
                return Err(Errno::EINVAL);
            }
            let on = integer(value)?;
            let seconds = integer(&value[4..])?;
            options.linger = (on != 0).then_some(seconds.max(0) as u32);
        }
        option::SO_RCVTIMEO | number::SO_RCVTIMEO_NEW => options.receive_timeout_ns = timeval_ns(value)?,
        option::SO_SNDTIMEO | number::SO_SNDTIMEO_NEW => options.send_timeout_ns = timeval_ns(value)?,
        option::SO_PRIORITY => options.priority = integer(value)?,
        number::SO_MARK => options.mark = integer(value)? as u32,
        option::SO_TIMESTAMP | number::SO_TIMESTAMPNS => {
            let on = integer(value)? != 0;
            options.timestamps = match (on, name) {
                (false, _) => Timestamps::Off,
                (true, option::SO_TIMESTAMP) => Timestamps::Microseconds,
                (true, _) => Timestamps::Nanoseconds,
            };
        }
        option::SO_OOBINLINE => options.out_of_band_inline = integer(value)? != 0,
        option::SO_DONTROUTE => options.dont_route = integer(value)? != 0,
        option::SO_RCVLOWAT | option::SO_SNDLOWAT => {
            integer(value)?;
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

fn socket_option(options: &Options, name: i32, is_listening: bool) -> Result<Vec<u8>, Errno> {
    let integer = |value: i32| value.to_ne_bytes().to_vec();
    Ok(match name {
        option::SO_ACCEPTCONN => integer(i32::from(is_listening)),
        option::SO_REUSEADDR => integer(i32::from(options.reuse_address)),
        option::SO_REUSEPORT => integer(i32::from(options.reuse_port)),
        option::SO_KEEPALIVE => integer(i32::from(options.keep_alive)),
        option::SO_BROADCAST => integer(i32::from(options.broadcast)),
        option::SO_RCVBUF => integer(options.receive_buffer as i32),
        option::SO_SNDBUF => integer(options.send_buffer as i32),
        option::SO_OOBINLINE => integer(i32::from(options.out_of_band_inline)),
        option::SO_DONTROUTE => integer(i32::from(options.dont_route)),
        option::SO_RCVLOWAT | option::SO_SNDLOWAT => integer(1),
        option::SO_PRIORITY => integer(options.priority),
        number::SO_MARK => integer(options.mark as i32),
        option::SO_TIMESTAMP => integer(i32::from(options.timestamps == Timestamps::Microseconds)),
        number::SO_TIMESTAMPNS => integer(i32::from(options.timestamps == Timestamps::Nanoseconds)),
        option::SO_LINGER => {
            let mut bytes = integer(i32::from(options.linger.is_some()));
            bytes.extend_from_slice(&(options.linger.unwrap_or(0) as i32).to_ne_bytes());
            bytes
        }
        option::SO_RCVTIMEO | number::SO_RCVTIMEO_NEW => timeval_bytes(options.receive_timeout_ns),
        option::SO_SNDTIMEO | number::SO_SNDTIMEO_NEW => timeval_bytes(options.send_timeout_ns),
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

fn set_tcp_option(options: &mut Options, name: i32, value: &[u8]) -> Result<(), Errno> {
    if name == number::TCP_CONGESTION {
        let length = value.iter().position(|byte| *byte == 0).unwrap_or(value.len());
        // Only the algorithm the stack runs is there to choose.
        return if &value[..length] == CONGESTION_CONTROL.as_bytes() { Ok(()) } else { Err(Errno::ENOENT) };
    }
    let value = integer(value)?;
    let seconds = |value: i32| {
        if (1..=KEEPALIVE_SECONDS_MAX).contains(&value) { Ok(value as u32) } else { Err(Errno::EINVAL) }
    };
    match name {
        option::TCP_NODELAY => options.no_delay = value != 0,
        option::TCP_CORK => options.cork = value != 0,
        option::TCP_QUICKACK => options.quick_ack = value != 0,
        option::TCP_KEEPIDLE => options.keepalive_idle_seconds = seconds(value)?,
        option::TCP_KEEPINTVL => options.keepalive_interval_seconds = seconds(value)?,
        option::TCP_KEEPCNT => {
            if !(1..=KEEPALIVE_PROBES_MAX).contains(&value) {
                return Err(Errno::EINVAL);
            }
            options.keepalive_probes = value as u32;
        }
        option::TCP_USER_TIMEOUT => {
            options.user_timeout_ms = u32::try_from(value).map_err(|_| Errno::EINVAL)?
        }
        option::TCP_MAXSEG => {
            if value != 0 && !MSS_RANGE.contains(&value) {
                return Err(Errno::EINVAL);
            }
            options.max_segment = (value != 0).then_some(value as u32);
        }
        option::TCP_DEFER_ACCEPT => options.defer_accept_seconds = super::stream::defer_accept_seconds(value),
        // Negative: none; longer than Linux's most, that.
        number::TCP_LINGER2 => options.linger2_seconds = value.clamp(-1, FIN_TIMEOUT_MAX_SECONDS),
        option::TCP_FASTOPEN => {
            if value < 0 {
                return Err(Errno::EINVAL);
            }
            options.fast_open_queue = value;
        }
        number::TCP_INQ => {
            if !(0..=1).contains(&value) {
                return Err(Errno::EINVAL);
            }
            options.reports_inq = value == 1;
        }
        number::TCP_SYNCNT => {
            if !(1..=SYN_RETRIES_MAX).contains(&value) {
                return Err(Errno::EINVAL);
            }
            options.syn_retries = value as u8;
        }
        // Anything below half the smallest receive buffer is raised to it;
        // 0 (allowed on a closed socket only) takes the clamp off.
        number::TCP_WINDOW_CLAMP if value == 0 => options.window_clamp = 0,
        number::TCP_WINDOW_CLAMP => options.window_clamp = value.max(RECEIVE_BUFFER_MIN as i32 / 2) as u32,
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(())
}

fn tcp_option(options: &Options, name: i32) -> Result<Vec<u8>, Errno> {
    let integer = |value: i32| value.to_ne_bytes().to_vec();
    Ok(match name {
        option::TCP_NODELAY => integer(i32::from(options.no_delay)),
        option::TCP_CORK => integer(i32::from(options.cork)),
        option::TCP_QUICKACK => integer(i32::from(options.quick_ack)),
        option::TCP_KEEPIDLE => integer(options.keepalive_idle_seconds as i32),
        option::TCP_KEEPINTVL => integer(options.keepalive_interval_seconds as i32),
        option::TCP_KEEPCNT => integer(options.keepalive_probes as i32),
        option::TCP_USER_TIMEOUT => integer(options.user_timeout_ms as i32),
        option::TCP_DEFER_ACCEPT => integer(options.defer_accept_seconds),
        number::TCP_LINGER2 if options.linger2_seconds == 0 => integer(FIN_TIMEOUT_SECONDS),
        number::TCP_LINGER2 => integer(options.linger2_seconds),
        option::TCP_FASTOPEN => integer(options.fast_open_queue),
        number::TCP_INQ => integer(i32::from(options.reports_inq)),
        number::TCP_SYNCNT => integer(i32::from(options.syn_retries)),
        number::TCP_WINDOW_CLAMP => integer(options.window_clamp as i32),
        number::TCP_CONGESTION => {
            let mut bytes = vec![0u8; INTERFACE_NAME_MAX];
            bytes[..CONGESTION_CONTROL.len()].copy_from_slice(CONGESTION_CONTROL.as_bytes());
            bytes
        }
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

/// How long a connection may go without hearing from its peer before it
/// is dropped: `TCP_USER_TIMEOUT`, or with keep-alive the idle time and
/// every unanswered probe.
pub(super) fn established_timeout(options: &Options) -> Option<Duration> {
    if options.user_timeout_ms > 0 {
        return Some(Duration::from_millis(u64::from(options.user_timeout_ms)));
    }
    options.keep_alive.then(|| {
        let probes = u64::from(options.keepalive_interval_seconds) * u64::from(options.keepalive_probes);
        Duration::from_secs(u64::from(options.keepalive_idle_seconds) + probes)
    })
}

/// Puts a stream socket's options into its smoltcp socket. Keep-alive
/// probes go out after the idle time and then every idle time (smoltcp has
/// one interval); the connection is dropped once probes have gone
/// unanswered for the interval times the count, as on Linux.
pub(super) fn apply_tcp_options(stack: &mut Stack, handle: smoltcp::iface::SocketHandle, options: &Options) {
    let tcp = stack.tcp(handle);
    // A corked socket's partial segments wait before smoltcp sees them
    // (`net::held`).
    tcp.set_nagle_enabled(!options.no_delay);
    tcp.set_hop_limit(options.time_to_live);
    if is_synchronized(tcp.state()) {
        tcp.set_timeout(established_timeout(options));
    }
    let keep_alive =
        options.keep_alive.then(|| Duration::from_secs(u64::from(options.keepalive_idle_seconds)));
    stack.set_keep_alive(handle, keep_alive);
    stack.choose_ack_delay(handle);
}
