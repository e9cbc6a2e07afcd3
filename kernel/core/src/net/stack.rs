//! The stack proper: the interface, its sockets, the ports they hold, and
//! the bookkeeping that smoltcp leaves to its user — listening sockets with
//! a backlog (in `listeners`), sockets closing after their descriptor is
//! gone, DHCP, and waking the threads that wait on a socket.

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, raw, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpProtocol, IpVersion, Ipv4Cidr, Ipv6Cidr,
};

mod listeners;

use listeners::Listener;

use super::held::Held;
use super::link::{Link, NetworkDevice};
use super::multicast::{self, Arrival, Multicast};
use super::segments::Figures;
use super::unreachable::{self, Errors, Unreachable};
use super::{Configuration, Settings};
use crate::errno::Errno;
use crate::vfs::WaiterList;

/// The loopback network.
const LOOPBACK: Ipv4Cidr = Ipv4Cidr::new(Ipv4Addr::new(127, 0, 0, 1), 8);
/// `::1/128`.
const LOOPBACK_V6: Ipv6Cidr = Ipv6Cidr::new(core::net::Ipv6Addr::LOCALHOST, 128);
/// How often the machine reminds its stack of its own addresses (well
/// within the neighbor cache's lifetime for an entry).
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(20);
/// Packets and bytes a raw socket holds to send.
const RAW_SEND_SLOTS: usize = 16;
const RAW_SEND_BYTES: usize = 128 * 1024;
/// How long a closed connection may take to finish its goodbyes.
const CLOSING_TIMEOUT: Duration = Duration::from_secs(60);

/// The transport protocols sockets speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Raw IP (`net::raw`).
    Raw,
}

/// Who to wake when a socket moves, and what it looked like last.
struct Watch {
    protocol: Protocol,
    waiters: Weak<WaiterList>,
    fingerprint: u64,
}

/// The interface, its sockets and their bookkeeping.
pub struct Stack {
    interface: Interface,
    link: Link,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    fixed_nameservers: Vec<Ipv4Addr>,
    configuration: Configuration,
    configuration_changed: bool,
    watches: BTreeMap<SocketHandle, Watch>,
    listeners: BTreeMap<u64, Listener>,
    next_listener: u64,
    closing: Vec<(SocketHandle, Instant)>,
    /// The time of the last poll.
    now: Instant,
    /// When the stack last heard of its own addresses.
    announced: Option<Instant>,
    ports: BTreeMap<(Protocol, u16), usize>,
    next_ephemeral: u16,
    /// Connections whose keep-alive starts later: when, and the interval.
    keep_alive_starts: BTreeMap<SocketHandle, (Instant, Duration)>,
    /// Turns of the listeners sharing a port.
    next_turn: usize,
    /// Bytes connections hold back (`MSG_MORE`, `TCP_CORK`).
    held: Held,
    /// Multicast groups joined, and the datagrams sent to them.
    multicast: Multicast,
    /// ICMP errors about UDP datagrams sent, by socket.
    errors: Errors,
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Stack")
            .field("link", &self.link)
            .field("configuration", &self.configuration)
            .finish()
    }
}

/// The link-local address of a card with `mac` (RFC 4291 §2.5.1: the
/// modified EUI-64 interface identifier).
fn link_local(mac: [u8; 6]) -> core::net::Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    core::net::Ipv6Addr::from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, a ^ 2, b, c, 0xff, 0xfe, d, e, f])
}

/// Nanoseconds since boot of a smoltcp time.
fn nanoseconds(instant: Instant) -> u64 {
    u64::try_from(instant.total_micros()).unwrap_or(0).saturating_mul(1000)
}

impl Stack {
    /// The stack over `card` (or the loop alone).
    pub fn new(card: Option<Arc<dyn NetworkDevice>>, settings: &Settings, seed: u64, now: Instant) -> Self {
        let has_card = card.is_some();
        let mut link = Link::new(card);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(link.mac_address())));
        config.random_seed = seed;
        // The card's IPv6 address comes from the routers' advertisements
        // (SLAAC, RFC 4862), as QEMU's user network sends them.
        config.slaac = has_card;
        let mut interface = Interface::new(config, &mut link, now);
        let mut configuration =
            Configuration { address: None, gateway: None, nameservers: settings.nameservers.clone() };
        interface.update_ip_addrs(|addresses| {
            let _ = addresses.push(IpCidr::Ipv4(LOOPBACK));
            let _ = addresses.push(IpCidr::Ipv6(LOOPBACK_V6));
            if has_card {
                // SLAAC solicits routers from it.
                let _ = addresses.push(IpCidr::Ipv6(Ipv6Cidr::new(link_local(link.mac_address()), 64)));
            }
            if let Some((address, prefix)) = settings.address {
                let _ = addresses.push(IpCidr::Ipv4(Ipv4Cidr::new(address, prefix)));
                configuration.address = Some((address, prefix));
            }
        });
        if let (Some(gateway), Some(_)) = (settings.gateway, settings.address) {
            let _ = interface.routes_mut().add_default_ipv4_route(gateway);
            configuration.gateway = Some(gateway);
        }
        let mut sockets = SocketSet::new(Vec::new());
        let dhcp = (has_card && settings.address.is_none()).then(|| sockets.add(dhcpv4::Socket::new()));
        let ephemeral = super::settings::local_port_range();
        let span = u64::from(ephemeral.end() - ephemeral.start()).max(1);
        Stack {
            interface,
            link,
            sockets,
            dhcp,
            fixed_nameservers: settings.nameservers.clone(),
            configuration,
            configuration_changed: false,
            watches: BTreeMap::new(),
            listeners: BTreeMap::new(),
            next_listener: 0,
            closing: Vec::new(),
            now,
            announced: None,
            ports: BTreeMap::new(),
            next_ephemeral: ephemeral.start() + (seed % span) as u16,
            keep_alive_starts: BTreeMap::new(),
            next_turn: 0,
            held: Held::default(),
            multicast: Multicast::default(),
            errors: Errors::default(),
        }
    }

    /// The interface's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.link.mac_address()
    }

    /// The card's MTU.
    pub fn mtu(&self) -> usize {
        self.link.mtu()
    }

    /// What went through the loop and the card.
    pub fn counters(&self) -> [super::link::Counters; 2] {
        self.link.counters()
    }

    /// The configuration now.
    pub fn configuration(&self) -> Configuration {
        self.configuration.clone()
    }

    /// The interface's IPv6 addresses and prefix lengths.
    pub fn ipv6_addresses(&self) -> Vec<(core::net::Ipv6Addr, u8)> {
        self.interface
            .ip_addrs()
            .iter()
            .filter_map(|cidr| match cidr {
                IpCidr::Ipv6(cidr) => Some((cidr.address(), cidr.prefix_len())),
                IpCidr::Ipv4(_) => None,
            })
            .collect()
    }

    /// Whether the configuration changed since the last call.
    pub fn take_configuration_change(&mut self) -> bool {
        core::mem::take(&mut self.configuration_changed)
    }

    /// Lets the acknowledgements of a connection to another machine wait up
    /// to [`ACK_DELAY`] for data to carry them, as Linux's delayed
    /// acknowledgement does: a request answered at once then costs one
    /// segment back instead of two (each an exit to the hypervisor).
    /// smoltcp still acknowledges at once every full segment's worth of
    /// data and every window that at least doubled. A connection to the
    /// machine itself acknowledges at once: on the loop an acknowledgement
    /// costs no exit, and its 64 KiB segments are larger than a send
    /// buffer's worth of small writes, which Nagle's algorithm would hold
    /// back until the delayed acknowledgement came.
    pub fn choose_ack_delay(&mut self, handle: SocketHandle) {
        let remote = self.tcp(handle).remote_endpoint();
        let is_remote = remote.is_some_and(|remote| {
            let address = match remote.addr {
                smoltcp::wire::IpAddress::Ipv4(address) => core::net::IpAddr::V4(address),
                smoltcp::wire::IpAddress::Ipv6(address) => core::net::IpAddr::V6(address),
            };
            !address.is_loopback() && !self.is_local_address(address)
        });
        self.tcp(handle).set_ack_delay(is_remote.then_some(ACK_DELAY));
    }

    /// Whether `address` is one of the machine's own.
    pub fn is_local_address(&self, address: core::net::IpAddr) -> bool {
        match address {
            core::net::IpAddr::V4(address) => address.is_unspecified() || self.interface.has_ip_addr(address),
            core::net::IpAddr::V6(address) => address.is_unspecified() || self.interface.has_ip_addr(address),
        }
    }

    /// The address the machine sends from to reach `destination`, as
    /// Linux's route lookup picks it: the loopback address for a loopback
    /// destination, the destination itself when it is the machine's own,
    /// else an interface address of its family (`None` without one).
    pub fn source_address(&self, destination: core::net::IpAddr) -> Option<core::net::IpAddr> {
        use core::net::{IpAddr, Ipv6Addr};
        use smoltcp::wire::IpAddress;
        match destination {
            IpAddr::V4(address) if address.is_loopback() => return Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(address) if address.is_loopback() => return Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            address if self.is_local_address(address) => return Some(address),
            _ => {}
        }
        let destination = match destination {
            IpAddr::V4(address) => IpAddress::Ipv4(address),
            IpAddr::V6(address) => IpAddress::Ipv6(address),
        };
        match self.interface.get_source_address(&destination)? {
            IpAddress::Ipv4(address) => Some(IpAddr::V4(address)),
            IpAddress::Ipv6(address) => Some(IpAddr::V6(address)),
        }
    }

    /// Receives and sends until nothing moves; returns when the next poll is
    /// due, in nanoseconds since boot.
    pub fn poll(&mut self, now: Instant) -> Option<u64> {
        self.now = now;
        if self.announced.is_none_or(|announced| now - announced >= ANNOUNCE_INTERVAL) {
            self.announced = Some(now);
            for cidr in self.interface.ip_addrs().to_vec() {
                match cidr {
                    IpCidr::Ipv4(cidr) => self.link.announce(cidr.address()),
                    IpCidr::Ipv6(cidr) => self.link.announce_ipv6(cidr.address()),
                }
            }
            if let (Some((address, _)), Some(gateway)) =
                (self.configuration.address, self.configuration.gateway)
            {
                self.link.solicit(address, gateway);
            }
        }
        self.interface.poll_maintenance(now);
        self.start_keep_alives(now);
        self.held.flush_due(now, &mut self.sockets);
        // Frames the stack sends itself arrive in the next round; a bound
        // keeps a flood from holding the lock forever.
        for _ in 0..64 {
            let mut moved = false;
            loop {
                match self.interface.poll_ingress_single(now, &mut self.link, &mut self.sockets) {
                    PollIngressSingleResult::None => break,
                    PollIngressSingleResult::PacketProcessed => {}
                    PollIngressSingleResult::SocketStateChanged => {
                        moved = true;
                        // A handshake may have taken the last listening
                        // socket: the next packet may need a fresh one.
                        self.tend_listeners();
                    }
                }
            }
            while self.interface.poll_egress(now, &mut self.link, &mut self.sockets)
                == PollResult::SocketStateChanged
            {
                moved = true;
            }
            if !self.link.has_looped() && !moved {
                break;
            }
        }
        self.link.flush();
        for frame in self.link.take_unreachable() {
            if let Some((sender, error)) = unreachable::parse(&frame) {
                self.record_error(sender, error);
            }
        }
        for frame in self.link.take_group_datagrams() {
            if let Some((source, destination, payload)) = multicast::parse(&frame) {
                self.deliver_to_group(source, destination, payload);
            }
        }
        self.tend_dhcp();
        self.tend_listeners();
        self.reap_closing(now);
        self.wake_watchers();
        let next = self.interface.poll_at(now, &self.sockets);
        let keep_alive = self.keep_alive_starts.values().map(|(at, _)| *at).min();
        [next, keep_alive, self.held.next_due(), self.next_deferred_due()]
            .into_iter()
            .flatten()
            .min()
            .map(nanoseconds)
    }

    /// Turns keep-alive on for a connection, or off (`None`), or changes
    /// its interval. smoltcp sends the first probe of a connection that
    /// turns it on at once, whatever the interval; Linux waits the interval
    /// first, so here the connection turns it on only once the interval
    /// has passed (and the probe that then goes out at once is due).
    pub fn set_keep_alive(&mut self, handle: SocketHandle, interval: Option<Duration>) {
        self.keep_alive_starts.remove(&handle);
        let now = self.now;
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
        if socket.keep_alive() == interval {
            return;
        }
        let is_connected = !matches!(socket.state(), tcp::State::Closed | tcp::State::Listen);
        match interval {
            Some(interval) if socket.keep_alive().is_none() && is_connected => {
                self.keep_alive_starts.insert(handle, (now + interval, interval));
            }
            interval => socket.set_keep_alive(interval),
        }
    }

    fn start_keep_alives(&mut self, now: Instant) {
        let sockets = &mut self.sockets;
        self.keep_alive_starts.retain(|handle, (at, interval)| {
            if *at > now {
                return true;
            }
            sockets.get_mut::<tcp::Socket<'_>>(*handle).set_keep_alive(Some(*interval));
            false
        });
    }

    fn tend_dhcp(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let event = match self.sockets.get_mut::<dhcpv4::Socket<'_>>(handle).poll() {
            None => return,
            Some(dhcpv4::Event::Configured(config)) => {
                Some((config.address, config.router, config.dns_servers.iter().copied().collect::<Vec<_>>()))
            }
            // smoltcp also reports this while the first lease is still
            // being negotiated: only a lease we had can end.
            Some(dhcpv4::Event::Deconfigured) if self.configuration.address.is_none() => return,
            Some(dhcpv4::Event::Deconfigured) => None,
        };
        self.interface.update_ip_addrs(|addresses| {
            addresses.retain(|cidr| matches!(cidr, IpCidr::Ipv6(_)) || *cidr == IpCidr::Ipv4(LOOPBACK));
            if let Some((address, _, _)) = &event {
                let _ = addresses.push(IpCidr::Ipv4(*address));
            }
        });
        self.interface.routes_mut().remove_default_ipv4_route();
        let mut nameservers = self.fixed_nameservers.clone();
        match event {
            Some((address, router, servers)) => {
                if let Some(router) = router {
                    let _ = self.interface.routes_mut().add_default_ipv4_route(router);
                }
                for server in servers {
                    if !nameservers.contains(&server) {
                        nameservers.push(server);
                    }
                }
                self.configuration = Configuration {
                    address: Some((address.address(), address.prefix_len())),
                    gateway: router,
                    nameservers,
                };
                log::info!("eth0: DHCP gave {address}, gateway {router:?}");
            }
            None => {
                self.configuration = Configuration { address: None, gateway: None, nameservers };
                log::warn!("eth0: the DHCP lease ended");
            }
        }
        self.configuration_changed = true;
        // The new address becomes known at once.
        self.announced = None;
    }

    fn reap_closing(&mut self, now: Instant) {
        let sockets = &mut self.sockets;
        let keep_alive_starts = &mut self.keep_alive_starts;
        self.closing.retain(|(handle, since)| {
            let state = sockets.get::<tcp::Socket<'_>>(*handle).state();
            let is_done =
                matches!(state, tcp::State::Closed | tcp::State::TimeWait) || now - *since > CLOSING_TIMEOUT;
            if is_done {
                keep_alive_starts.remove(handle);
                sockets.remove(*handle);
            }
            !is_done
        });
    }

    /// Wakes the waiters of every watched socket that changed.
    fn wake_watchers(&mut self) {
        let sockets = &self.sockets;
        self.watches.retain(|handle, watch| {
            let Some(waiters) = watch.waiters.upgrade() else { return false };
            let fingerprint = fingerprint(sockets, *handle, watch.protocol);
            if fingerprint != watch.fingerprint {
                watch.fingerprint = fingerprint;
                waiters.notify();
            }
            true
        });
    }

    /// Wakes `waiters` whenever the socket behind `handle` changes.
    pub fn watch(&mut self, handle: SocketHandle, protocol: Protocol, waiters: &Arc<WaiterList>) {
        let fingerprint = fingerprint(&self.sockets, handle, protocol);
        self.watches.insert(handle, Watch { protocol, waiters: Arc::downgrade(waiters), fingerprint });
    }

    /// The interface's context, for `connect`.
    pub fn tcp_and_context(
        &mut self,
        handle: SocketHandle,
    ) -> (&mut tcp::Socket<'static>, &mut smoltcp::iface::Context) {
        (self.sockets.get_mut::<tcp::Socket<'_>>(handle), self.interface.context())
    }

    /// The TCP socket behind `handle`.
    pub fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket<'_>>(handle)
    }

    /// The UDP socket behind `handle`.
    pub fn udp(&mut self, handle: SocketHandle) -> &mut udp::Socket<'static> {
        self.sockets.get_mut::<udp::Socket<'_>>(handle)
    }

    /// Adds a TCP socket with receive and send buffers of `sizes` bytes
    /// (which the application chose): `ENOBUFS` without the memory.
    pub fn add_tcp(&mut self, sizes: (usize, usize)) -> Result<SocketHandle, Errno> {
        Ok(self.sockets.add(new_tcp_socket(sizes).ok_or(Errno::ENOBUFS)?))
    }

    /// Adds a UDP socket holding up to `packets` datagrams of `bytes` bytes
    /// in all, each way: `ENOBUFS` without the memory.
    pub fn add_udp(&mut self, packets: usize, bytes: usize) -> Result<SocketHandle, Errno> {
        let buffer = || {
            let mut metadata = Vec::new();
            metadata.try_reserve_exact(packets).ok()?;
            metadata.resize(packets, udp::PacketMetadata::EMPTY);
            Some(udp::PacketBuffer::new(metadata, zeroed(bytes)?))
        };
        let (receive, send) = (buffer().ok_or(Errno::ENOBUFS)?, buffer().ok_or(Errno::ENOBUFS)?);
        Ok(self.sockets.add(udp::Socket::new(receive, send)))
    }

    /// Whether the peer of the TCP connection behind `handle` said
    /// goodbye with a FIN (true when the connection's segments are not
    /// known). A closed smoltcp socket forgets its ends, so the caller
    /// keeps them in `ends`, which this fills in while they are known.
    pub fn peer_finished(
        &mut self,
        handle: SocketHandle,
        ends: &mut Option<(core::net::SocketAddr, core::net::SocketAddr)>,
    ) -> bool {
        if let Some(known) = connection_ends(self.sockets.get::<tcp::Socket<'_>>(handle)) {
            *ends = Some(known);
        }
        let Some((local, remote)) = *ends else { return true };
        self.link.ledger().figures(local, remote).is_none_or(|figures| figures.fin_received())
    }

    /// Adds a raw IPv4 socket of IP protocol `protocol` that holds
    /// `packets` received packets in `bytes` (none: it only sends).
    pub fn add_raw(&mut self, protocol: u8, packets: usize, bytes: usize) -> Result<SocketHandle, Errno> {
        let buffer = |packets: usize, bytes: usize| {
            let mut metadata = Vec::new();
            metadata.try_reserve_exact(packets).ok()?;
            metadata.resize(packets, raw::PacketMetadata::EMPTY);
            Some(raw::PacketBuffer::new(metadata, zeroed(bytes)?))
        };
        let receive = buffer(packets, bytes).ok_or(Errno::ENOBUFS)?;
        let send = buffer(RAW_SEND_SLOTS, RAW_SEND_BYTES).ok_or(Errno::ENOBUFS)?;
        let socket = raw::Socket::new(Some(IpVersion::Ipv4), Some(IpProtocol::from(protocol)), receive, send);
        Ok(self.sockets.add(socket))
    }

    /// The raw socket behind `handle`.
    pub fn raw(&mut self, handle: SocketHandle) -> &mut raw::Socket<'static> {
        self.sockets.get_mut::<raw::Socket<'static>>(handle)
    }

    /// Lets a TCP connection finish on its own: it goes once closed.
    pub fn close_tcp(&mut self, handle: SocketHandle) {
        self.watches.remove(&handle);
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
        // Held bytes go before the FIN, as far as they fit.
        self.held.flush(handle, socket);
        self.held.forget(handle);
        if let Some(ends) = connection_ends(socket) {
            // Nobody asks for its figures any more.
            self.link.ledger_mut().forget(ends.0, ends.1);
        }
        if socket.recv_queue() > 0 {
            // Unread data: tell the peer at once, as Linux does.
            socket.abort();
        } else {
            socket.close();
        }
        self.closing.push((handle, self.now));
    }

    /// Removes a socket at once.
    pub fn remove(&mut self, handle: SocketHandle) {
        self.watches.remove(&handle);
        self.keep_alive_starts.remove(&handle);
        self.held.forget(handle);
        self.multicast.forget(handle);
        self.errors.clear(handle);
        if let smoltcp::socket::Socket::Tcp(socket) = self.sockets.remove(handle)
            && let Some(ends) = connection_ends(&socket)
        {
            self.link.ledger_mut().forget(ends.0, ends.1);
        }
    }

    /// Sends `bytes` on the connection behind `handle` after the bytes it
    /// holds, holding back what is left of a segment if `hold`
    /// (`net::held`); returns how many of `bytes` it took.
    pub fn send_gathered(&mut self, handle: SocketHandle, bytes: &[u8], hold: bool, now: Instant) -> usize {
        let path = self.link.mtu().saturating_sub(40);
        let segment = self
            .tcp_figures(handle)
            .and_then(|figures| figures.peer_mss())
            .map_or(path, |mss| (mss as usize).min(path));
        let tcp = self.sockets.get_mut::<tcp::Socket<'_>>(handle);
        if !tcp.may_send() {
            return 0;
        }
        self.held.send(handle, tcp, bytes, hold, segment, now)
    }

    /// Queues what the connection behind `handle` holds back (the cork
    /// came off).
    pub fn release_held(&mut self, handle: SocketHandle) {
        self.held.flush(handle, self.sockets.get_mut::<tcp::Socket<'_>>(handle));
    }

    /// How many bytes the connection behind `handle` holds back.
    pub fn held_length(&self, handle: SocketHandle) -> usize {
        self.held.length(handle)
    }

    /// Counts a membership of the multicast `group`; the first joins it
    /// (an IGMP report on the card). `ENOBUFS` when the interface's table
    /// of groups is full.
    pub fn join_group(&mut self, group: Ipv4Addr) -> Result<(), Errno> {
        if self.multicast.join(group) && self.interface.join_multicast_group(group).is_err() {
            self.multicast.leave(group);
            return Err(Errno::ENOBUFS);
        }
        Ok(())
    }

    /// Drops a membership of the multicast `group`; the last leaves it.
    pub fn leave_group(&mut self, group: Ipv4Addr) {
        if self.multicast.leave(group) {
            let _ = self.interface.leave_multicast_group(group);
        }
    }

    /// Queues a datagram to a multicast group (received, or sent here with
    /// `IP_MULTICAST_LOOP`) for every UDP socket bound to its port, if the
    /// machine belongs to the group, and wakes their waiters.
    pub fn deliver_to_group(
        &mut self,
        source: core::net::SocketAddr,
        destination: core::net::SocketAddrV4,
        payload: &[u8],
    ) {
        if !self.multicast.is_member(*destination.ip()) {
            return;
        }
        let group = IpAddress::Ipv4(*destination.ip());
        let members: Vec<SocketHandle> = self
            .sockets
            .iter()
            .filter_map(|(handle, socket)| match socket {
                smoltcp::socket::Socket::Udp(udp) => {
                    let endpoint = udp.endpoint();
                    let is_bound_there = endpoint.port == destination.port()
                        && endpoint.addr.is_none_or(|address| address == group);
                    is_bound_there.then_some(handle)
                }
                _ => None,
            })
            .collect();
        for handle in members {
            if !self.multicast.admits(handle, *destination.ip(), source.ip()) {
                continue;
            }
            let arrival = Arrival { payload: payload.to_vec(), source, destination };
            if self.multicast.queue(handle, arrival)
                && let Some(waiters) = self.watches.get(&handle).and_then(|watch| watch.waiters.upgrade())
            {
                waiters.notify();
            }
        }
    }

    /// Keeps an ICMP error about a datagram `sender` sent for the UDP
    /// socket bound there, and wakes its waiters.
    fn record_error(&mut self, sender: core::net::SocketAddrV4, error: Unreachable) {
        let address = IpAddress::Ipv4(*sender.ip());
        let socket = self.sockets.iter().find_map(|(handle, socket)| match socket {
            smoltcp::socket::Socket::Udp(udp) => {
                let endpoint = udp.endpoint();
                let is_bound_there =
                    endpoint.port == sender.port() && endpoint.addr.is_none_or(|bound| bound == address);
                is_bound_there.then_some(handle)
            }
            _ => None,
        });
        let Some(handle) = socket else { return };
        self.errors.record(handle, error);
        if let Some(waiters) = self.watches.get(&handle).and_then(|watch| watch.waiters.upgrade()) {
            waiters.notify();
        }
    }

    /// The next queued ICMP error of the UDP socket behind `handle`.
    pub fn take_queued_error(&mut self, handle: SocketHandle) -> Option<Unreachable> {
        self.errors.take(handle)
    }

    /// The ICMP error the UDP socket behind `handle` reports next, if
    /// `reports` (it is connected or collects errors); otherwise its
    /// errors are dropped.
    pub fn take_pending_error(&mut self, handle: SocketHandle, reports: bool) -> Option<Errno> {
        if !reports {
            self.errors.clear(handle);
            return None;
        }
        self.errors.take_pending(handle)
    }

    /// Whether the UDP socket behind `handle` has an ICMP error to report.
    pub fn has_error(&self, handle: SocketHandle) -> bool {
        self.errors.has_error(handle)
    }

    /// Sets the groups the UDP socket behind `handle` takes from listed
    /// sources only (`IP_ADD_SOURCE_MEMBERSHIP`), and those sources.
    pub fn set_group_sources(&mut self, handle: SocketHandle, groups: &[(Ipv4Addr, Vec<Ipv4Addr>)]) {
        self.multicast.set_sources(handle, groups);
    }

    /// The next multicast datagram waiting for the UDP socket behind
    /// `handle`, taken or (`is_peek`) left.
    pub fn take_group_datagram(&mut self, handle: SocketHandle, is_peek: bool) -> Option<Arrival> {
        self.multicast.take(handle, is_peek)
    }

    /// The size of the next multicast datagram waiting for `handle`.
    pub fn next_group_datagram_length(&self, handle: SocketHandle) -> Option<usize> {
        self.multicast.next_length(handle)
    }

    /// What the segments of the TCP connection behind `handle` said, while
    /// it has both ends.
    pub fn tcp_figures(&mut self, handle: SocketHandle) -> Option<Figures> {
        let (local, remote) = connection_ends(self.sockets.get::<tcp::Socket<'_>>(handle))?;
        self.link.ledger().figures(local, remote).copied()
    }
}

/// `size` zero bytes, if the memory can be had.
/// A TCP socket's local and remote ends, while it has them.
fn connection_ends(socket: &tcp::Socket<'_>) -> Option<(core::net::SocketAddr, core::net::SocketAddr)> {
    let address = |endpoint: smoltcp::wire::IpEndpoint| {
        let ip = match endpoint.addr {
            smoltcp::wire::IpAddress::Ipv4(address) => core::net::IpAddr::V4(address),
            smoltcp::wire::IpAddress::Ipv6(address) => core::net::IpAddr::V6(address),
        };
        core::net::SocketAddr::new(ip, endpoint.port)
    };
    Some((address(socket.local_endpoint()?), address(socket.remote_endpoint()?)))
}

fn zeroed(size: usize) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(size).ok()?;
    bytes.resize(size, 0);
    Some(bytes)
}

/// How long an acknowledgement may wait for data to carry it.
const ACK_DELAY: Duration = Duration::from_millis(10);

/// A TCP socket with buffers of the given sizes; `None` without the memory.
fn new_tcp_socket((receive, send): (usize, usize)) -> Option<tcp::Socket<'static>> {
    let mut socket =
        tcp::Socket::new(tcp::SocketBuffer::new(zeroed(receive)?), tcp::SocketBuffer::new(zeroed(send)?));
    // Acknowledge at once until the peer is known: see `choose_ack_delay`.
    socket.set_nagle_enabled(true);
    socket.set_ack_delay(None);
    Some(socket)
}

/// A summary of a socket's state that changes whenever a waiter may care.
fn fingerprint(sockets: &SocketSet<'_>, handle: SocketHandle, protocol: Protocol) -> u64 {
    match protocol {
        Protocol::Tcp => {
            let socket = sockets.get::<tcp::Socket<'_>>(handle);
            (socket.state() as u64)
                | (socket.recv_queue() as u64) << 8
                | (socket.send_queue() as u64) << 32
                | u64::from(socket.can_send()) << 62
        }
        Protocol::Udp => {
            let socket = sockets.get::<udp::Socket<'_>>(handle);
            (socket.recv_queue() as u64) | (socket.send_queue() as u64) << 32
        }
        Protocol::Raw => {
            let socket = sockets.get::<raw::Socket<'_>>(handle);
            (socket.recv_queue() as u64) | (socket.send_queue() as u64) << 32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_that_cannot_be_had_are_refused_not_a_panic() {
        assert_eq!(zeroed(16).map(|bytes| bytes.len()), Some(16));
        assert!(zeroed(usize::MAX).is_none());
        assert!(new_tcp_socket((usize::MAX, 16)).is_none());
        assert!(new_tcp_socket((4096, 4096)).is_some());
    }
}
