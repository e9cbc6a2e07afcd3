//! The network of a new network namespace: a stack of its own with only
//! the loop (down until brought up, as on Linux), its own ports and its
//! own sockets; the machine's card stays in the initial namespace.
//!
//! Local (`AF_UNIX`) socket names stay shared with the network the new one
//! is made from, since a path names a socket across namespaces on Linux
//! (abstract names, which Linux keeps per namespace, are shared too).

use alloc::sync::{Arc, Weak};
use core::sync::atomic::{AtomicU64, Ordering};

use spin::{Mutex, Once};

use super::{Activity, Network, Settings, Stack, instant};
use crate::machine::Machine;

impl Network {
    /// A loop-only network for a new namespace made from `self`, whose
    /// stack a service thread of `machine` polls while the network lives.
    pub fn for_namespace(self: &Arc<Self>, machine: &dyn Machine, seed: u64) -> Arc<Network> {
        let now_ns = machine.monotonic_ns();
        let network = Arc::new(Network {
            stack: Mutex::new(Stack::new(None, &Settings::default(), seed, instant(now_ns))),
            has_card: false,
            card: None,
            reports_activity: false,
            activity: Activity::default(),
            worker: Once::new(),
            worker_deadline: AtomicU64::new(u64::MAX),
            requested: AtomicU64::new(u64::MAX),
            configuration_waiters: Mutex::new(alloc::vec::Vec::new()),
            local_names: self.local_names.clone(),
            is_loop_up: core::sync::atomic::AtomicBool::new(false),
        });
        let held = Arc::downgrade(&network);
        let _ = machine.spawn_service("network", alloc::boxed::Box::new(move |machine| serve(held, machine)));
        network
    }
}

/// A namespace network's thread: polls whenever woken or due, as
/// [`Network::run_worker`] does, and ends once the network is gone.
fn serve(held: Weak<Network>, machine: &dyn Machine) {
    if let Some(network) = held.upgrade() {
        network.worker.call_once(|| machine.current_thread());
    }
    loop {
        let next = {
            let Some(network) = held.upgrade() else { return };
            let now = machine.monotonic_ns();
            let due = network.poll(now).map(|due| due.min(now.saturating_add(super::MAX_WORKER_SLEEP_NS)));
            network.worker_deadline.store(due.unwrap_or(u64::MAX), Ordering::SeqCst);
            let requested = network.requested.swap(u64::MAX, Ordering::SeqCst);
            // Wake at least now and then to see whether the network is
            // still held.
            due.unwrap_or(u64::MAX).min(requested).min(now.saturating_add(super::MAX_WORKER_SLEEP_NS))
        };
        machine.block(Some(next));
    }
}
