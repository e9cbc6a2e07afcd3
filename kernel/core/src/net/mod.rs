//! Networking: one Ethernet interface under smoltcp's TCP/IP stack, and
//! the BSD sockets applications use.
//!
//! [`Network`] owns the interface, the [`link::Link`] under it (the card
//! plus a loop for traffic to the machine itself, which is how `127.0.0.1`
//! works) and every smoltcp socket. The interface has `127.0.0.1/8`,
//! `::1/128` and, when there is a card, the address `--ip` gives or DHCP
//! finds.
//!
//! Two kinds of threads drive the stack. The network thread
//! ([`Network::run_worker`]) sleeps until the card interrupts
//! ([`Network::wake_worker`]) or the stack's next timer, then polls.
//! Application threads poll too, right after they queue data or take it,
//! so sends leave and window updates go out without a thread switch. After
//! each poll every socket whose state moved wakes the threads waiting on it
//! ([`socket`]).

pub mod abi;
pub mod address;
mod held;
pub mod kernel_stream;
pub mod link;
pub mod local;
mod multicast;
mod namespace;
pub mod netlink;
pub mod raw;
mod segments;
pub mod settings;
pub mod socket;
mod stack;
mod unreachable;
pub mod vsock;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU64, Ordering};

pub use link::NetworkDevice;
use spin::{Mutex, Once};
pub(crate) use stack::Stack;

use crate::errno::Errno;
use crate::machine::{Machine, ThreadControl, Wakeup};
use crate::vfs::node::Caller;
use crate::vfs::{FsError, WaiterList};

/// Tries `attempt` until it gives an answer, waiting on `waiters` in
/// between: the calling thread joins the list before each attempt, so a
/// change between the attempt and the block is never missed. `EAGAIN` when
/// `is_nonblocking` or after `timeout_ns`, `EINTR` for a signal.
pub(crate) fn wait_for<T>(
    caller: &Caller<'_>,
    waiters: &WaiterList,
    is_nonblocking: bool,
    timeout_ns: Option<u64>,
    mut attempt: impl FnMut() -> Option<Result<T, Errno>>,
) -> Result<T, Errno> {
    let me = caller.machine.current_thread();
    let deadline = timeout_ns.map(|timeout| caller.machine.monotonic_ns().saturating_add(timeout));
    loop {
        waiters.add(&me);
        let outcome = if let Some(result) = attempt() {
            Some(result)
        } else if is_nonblocking || deadline.is_some_and(|deadline| caller.machine.monotonic_ns() >= deadline)
        {
            Some(Err(Errno::EAGAIN))
        } else if caller.is_interrupted() || caller.machine.block(deadline) == Wakeup::Stop {
            Some(Err(Errno::EINTR))
        } else {
            None
        };
        if let Some(result) = outcome {
            waiters.remove(&me);
            return result;
        }
    }
}

/// A socket error as the file interface reports it: interrupted waits
/// restart, broken connections raise `SIGPIPE`, as for pipes.
pub(crate) fn file_error(error: Errno) -> FsError {
    match error {
        Errno::EINTR => FsError::Interrupted,
        Errno::EAGAIN => FsError::WouldBlock,
        Errno::EPIPE => FsError::BrokenPipe,
        other => FsError::Errno(other),
    }
}

/// How the interface gets its address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// A static address and prefix length (`--ip`); without one, DHCP.
    pub address: Option<(Ipv4Addr, u8)>,
    /// The default gateway (`--defaultgw`), with a static address.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers (`--nameserver`), added to those DHCP gives.
    pub nameservers: Vec<Ipv4Addr>,
    /// Log what the network did every [`ACTIVITY_REPORT_INTERVAL_NS`]
    /// (`--net-activity`): the card's interrupts and notifications, the
    /// network thread's wakeups and the stack's polls.
    pub reports_activity: bool,
}

/// The longest the network thread sleeps while the stack has a timer
/// pending, in nanoseconds: below smoltcp's shortest retransmission
/// timeout (1 s), so a send that arms one need not wake the thread.
const MAX_WORKER_SLEEP_NS: u64 = 500_000_000;

/// How often `--net-activity` reports, in nanoseconds.
pub const ACTIVITY_REPORT_INTERVAL_NS: u64 = 5_000_000_000;

/// What the stack's drivers did, counted for the activity report.
#[derive(Debug, Default)]
struct Activity {
    /// Times the network thread woke.
    worker_wakeups: AtomicU64,
    /// Polls of the whole stack by the network thread.
    worker_polls: AtomicU64,
    /// Polls of the whole stack by application threads, after a socket
    /// call.
    caller_polls: AtomicU64,
}

/// One network interface as applications see it (`getifaddrs`,
/// `SIOCGIF*`): the stack's single interface shows as `lo` (the loop and
/// `127.0.0.1/8`) and, with a card, `eth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The name.
    pub name: &'static str,
    /// The index, from 1.
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The MTU.
    pub mtu: u32,
    /// The hardware address (none for the loop).
    pub mac_address: Option<[u8; 6]>,
    /// The IPv4 address and prefix length, once known.
    pub address: Option<(Ipv4Addr, u8)>,
    /// The IPv6 addresses and prefix lengths.
    pub ipv6_addresses: Vec<(core::net::Ipv6Addr, u8)>,
    /// Frames and bytes through it so far.
    pub counters: link::Counters,
}

/// Interface flags (`IFF_*`, Linux `uapi/linux/if.h`).
pub mod interface_flags {
    /// Administratively up.
    pub const UP: u32 = 0x1;
    /// Has a broadcast address.
    pub const BROADCAST: u32 = 0x2;
    /// The loop.
    pub const LOOPBACK: u32 = 0x8;
    /// Resources allocated.
    pub const RUNNING: u32 = 0x40;
    /// Takes multicast.
    pub const MULTICAST: u32 = 0x1000;
    /// The link is up.
    pub const LOWER_UP: u32 = 0x10000;
}

/// The loop's MTU, as Linux gives `lo`.
const LOOP_MTU: u32 = 65_536;

/// The interface's configuration at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configuration {
    /// The address and prefix length, once known.
    pub address: Option<(Ipv4Addr, u8)>,
    /// The default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// DNS servers.
    pub nameservers: Vec<Ipv4Addr>,
}

/// The machine's network: its interface, stack and sockets.
pub struct Network {
    stack: Mutex<Stack>,
    has_card: bool,
    card: Option<Arc<dyn NetworkDevice>>,
    reports_activity: bool,
    activity: Activity,
    worker: Once<Arc<dyn ThreadControl>>,
    /// When the worker next wakes on its own (ns; `u64::MAX`: never).
    worker_deadline: AtomicU64,
    /// The earliest poll application threads' polls asked for since the
    /// worker last looked (ns; `u64::MAX`: none).
    requested: AtomicU64,
    /// Threads waiting for the configuration to change.
    configuration_waiters: Mutex<Vec<Arc<dyn ThreadControl>>>,
    /// The names local (`AF_UNIX`) sockets are bound to.
    local_names: Arc<local::Names>,
    /// Whether the loop interface is up: always at boot, in a new network
    /// namespace only once asked (as on Linux).
    is_loop_up: core::sync::atomic::AtomicBool,
}

impl core::fmt::Debug for Network {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Network").field("has_card", &self.has_card).finish()
    }
}

/// Nanoseconds as smoltcp's time.
fn instant(now_ns: u64) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros((now_ns / 1000) as i64)
}

impl Network {
    /// The network over `card` (or the loop alone), configured by
    /// `settings`; `seed` varies sequence numbers and ports between boots.
    pub fn new(
        card: Option<Arc<dyn NetworkDevice>>,
        settings: &Settings,
        seed: u64,
        now_ns: u64,
    ) -> Arc<Self> {
        let has_card = card.is_some();
        let stack = Stack::new(card.clone(), settings, seed, instant(now_ns));
        Arc::new(Network {
            stack: Mutex::new(stack),
            has_card,
            card,
            reports_activity: settings.reports_activity,
            activity: Activity::default(),
            worker: Once::new(),
            worker_deadline: AtomicU64::new(u64::MAX),
            requested: AtomicU64::new(u64::MAX),
            configuration_waiters: Mutex::new(Vec::new()),
            local_names: local::Names::new(),
            is_loop_up: core::sync::atomic::AtomicBool::new(true),
        })
    }

    /// The names local sockets are bound to.
    pub fn local_names(&self) -> &Arc<local::Names> {
        &self.local_names
    }

    /// The resolver's configuration for this network, as `/etc/resolv.conf`
    /// gives it: one `nameserver` line for each DNS server known.
    pub fn resolver_configuration(&self) -> String {
        let mut text = String::from("# Written by rosv from the network's configuration.\n");
        for nameserver in self.configuration().nameservers {
            text.push_str(&alloc::format!("nameserver {nameserver}\n"));
        }
        text
    }

    /// The interfaces, `lo` first.
    pub fn interfaces(&self) -> Vec<Interface> {
        use interface_flags::*;
        // One look at the stack, so the interfaces agree with each other.
        let (counters, mac_address, mtu, address, card_ipv6) = {
            let stack = self.stack.lock();
            let card_ipv6: Vec<_> =
                stack.ipv6_addresses().into_iter().filter(|(address, _)| !address.is_loopback()).collect();
            (stack.counters(), stack.mac_address(), stack.mtu(), stack.configuration().address, card_ipv6)
        };
        let loop_flags = if self.is_loop_up() { UP | LOOPBACK | RUNNING | LOWER_UP } else { LOOPBACK };
        let mut interfaces = vec![Interface {
            name: "lo",
            index: 1,
            flags: loop_flags,
            mtu: LOOP_MTU,
            mac_address: None,
            address: Some((Ipv4Addr::LOCALHOST, 8)),
            ipv6_addresses: vec![(core::net::Ipv6Addr::LOCALHOST, 128)],
            counters: counters[link::LOOP_SIDE],
        }];
        if self.has_card {
            interfaces.push(Interface {
                name: "eth0",
                index: 2,
                flags: UP | BROADCAST | RUNNING | MULTICAST | LOWER_UP,
                mtu: mtu as u32,
                mac_address: Some(mac_address),
                address,
                ipv6_addresses: card_ipv6,
                counters: counters[link::CARD_SIDE],
            });
        }
        interfaces
    }

    /// Whether the loop interface is up.
    pub fn is_loop_up(&self) -> bool {
        self.is_loop_up.load(Ordering::Relaxed)
    }

    /// Brings the loop interface up or takes it down (`SIOCSIFFLAGS`,
    /// `RTM_NEWLINK`); while down, connecting to a loop address is
    /// `ENETUNREACH`.
    pub fn set_loop_up(&self, is_up: bool) {
        self.is_loop_up.store(is_up, Ordering::Relaxed);
    }

    /// Whether there is a network card (else only the loop).
    pub fn has_card(&self) -> bool {
        self.has_card
    }

    /// The interface's configuration now.
    pub fn configuration(&self) -> Configuration {
        self.stack.lock().configuration()
    }

    /// Runs `operation` on the stack, then polls it so that what the
    /// operation queued goes out at once.
    pub(crate) fn with_stack<T>(&self, now_ns: u64, operation: impl FnOnce(&mut Stack) -> T) -> T {
        let (result, next, configuration_changed) = {
            let mut stack = self.stack.lock();
            let result = operation(&mut stack);
            self.activity.caller_polls.fetch_add(1, Ordering::Relaxed);
            let next = stack.poll(instant(now_ns));
            (result, next, stack.take_configuration_change())
        };
        self.after_poll(next, configuration_changed);
        result
    }

    /// Processes what arrived and sends what is due; returns when the stack
    /// next needs a poll, in nanoseconds since boot (`None`: only when
    /// something arrives).
    pub fn poll(&self, now_ns: u64) -> Option<u64> {
        let (next, configuration_changed) = {
            let mut stack = self.stack.lock();
            let next = stack.poll(instant(now_ns));
            (next, stack.take_configuration_change())
        };
        if configuration_changed {
            self.wake_configuration_waiters();
        }
        next
    }

    fn after_poll(&self, next: Option<u64>, configuration_changed: bool) {
        if configuration_changed {
            self.wake_configuration_waiters();
        }
        // The worker sleeps until its deadline: wake it if the stack now
        // needs a poll before that (see `run_worker`).
        if let Some(next) = next {
            self.requested.fetch_min(next, Ordering::SeqCst);
            if next < self.worker_deadline.load(Ordering::SeqCst) {
                self.wake_worker();
            }
        }
    }

    fn wake_configuration_waiters(&self) {
        let waiters = core::mem::take(&mut *self.configuration_waiters.lock());
        for thread in waiters {
            thread.wake();
        }
    }

    /// Wakes the network thread: the card interrupted, or a timer moved.
    /// Safe to call from an interrupt handler.
    pub fn wake_worker(&self) {
        if let Some(worker) = self.worker.get() {
            worker.wake();
        }
    }

    /// The network thread's body: polls whenever woken or due.
    ///
    /// One poll per wakeup. An application thread's poll that needs the
    /// stack polled again before the worker's published deadline wakes it;
    /// one that polled before the deadline was published leaves its wish in
    /// `requested`, which the worker reads after publishing (both sides
    /// sequentially consistent, so each sees the other's write). The worker
    /// never sleeps longer than [`MAX_WORKER_SLEEP_NS`] while a timer is
    /// pending, so that the retransmission timers application threads arm
    /// with every send (a second or more away) wake nobody.
    pub fn run_worker(&self, machine: &dyn Machine) -> ! {
        self.worker.call_once(|| machine.current_thread());
        let mut next_report = machine.monotonic_ns().saturating_add(ACTIVITY_REPORT_INTERVAL_NS);
        loop {
            self.activity.worker_wakeups.fetch_add(1, Ordering::Relaxed);
            let now = machine.monotonic_ns();
            if self.reports_activity && now >= next_report {
                next_report = now.saturating_add(ACTIVITY_REPORT_INTERVAL_NS);
                log::info!("{}", self.describe_activity());
            }
            self.activity.worker_polls.fetch_add(1, Ordering::Relaxed);
            let due = self.poll(now).map(|due| due.min(now.saturating_add(MAX_WORKER_SLEEP_NS)));
            self.worker_deadline.store(due.unwrap_or(u64::MAX), Ordering::SeqCst);
            let requested = self.requested.swap(u64::MAX, Ordering::SeqCst);
            let mut next = match due {
                Some(due) => due.min(requested),
                None => requested,
            };
            if self.reports_activity {
                next = next.min(next_report);
            }
            machine.block((next != u64::MAX).then_some(next));
        }
    }

    /// Waits until the interface has an address, at most `timeout_ns`;
    /// returns the configuration then.
    pub fn wait_for_address(&self, machine: &dyn Machine, timeout_ns: u64) -> Configuration {
        let deadline = machine.monotonic_ns().saturating_add(timeout_ns);
        let me = machine.current_thread();
        loop {
            self.configuration_waiters.lock().push(me.clone());
            let configuration = self.configuration();
            let now = machine.monotonic_ns();
            if configuration.address.is_some() || now >= deadline {
                self.configuration_waiters.lock().retain(|waiter| !Arc::ptr_eq(waiter, &me));
                return configuration;
            }
            machine.block(Some(deadline));
        }
    }

    /// What the network did since boot, in one line: the card's counts,
    /// the network thread's wakeups and polls, application threads' polls
    /// and the frames on each side of the link.
    pub fn describe_activity(&self) -> String {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = self.stack.lock().counters();
        let card = self.card.as_ref().map(|card| card.describe_activity()).unwrap_or_default();
        alloc::format!(
            "net activity: {card}; worker wakeups {}, worker polls {}, caller polls {}; \
             card frames in {} out {}, loop frames {}",
            read(&self.activity.worker_wakeups),
            read(&self.activity.worker_polls),
            read(&self.activity.caller_polls),
            counters[link::CARD_SIDE].received_packets,
            counters[link::CARD_SIDE].sent_packets,
            counters[link::LOOP_SIDE].sent_packets,
        )
    }

    /// One line describing the interface, for the boot log.
    pub fn describe(&self) -> String {
        let configuration = self.configuration();
        let mac = self.stack.lock().mac_address();
        let mut text = alloc::format!(
            "eth0 {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5]
        );
        match configuration.address {
            Some((address, prefix)) => text.push_str(&alloc::format!(" {address}/{prefix}")),
            None => text.push_str(" without an address"),
        }
        if let Some(gateway) = configuration.gateway {
            text.push_str(&alloc::format!(" gateway {gateway}"));
        }
        for nameserver in &configuration.nameservers {
            text.push_str(&alloc::format!(" nameserver {nameserver}"));
        }
        text
    }
}

#[cfg(test)]
mod tests;
