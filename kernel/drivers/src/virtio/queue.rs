//! A virtqueue with waiting: requests from many threads in flight at once.
//!
//! [`Virtqueue::submit`] adds a chain, notifies the device when it asks
//! for it, and blocks until the chain comes back. Finished chains are
//! collected both by the interrupt handler ([`Virtqueue::handle_interrupt`])
//! and by every waiter before it parks, so a completion is never missed
//! and a device without a usable interrupt can be polled.
//!
//! [`set_up_queue`] is the part every driver shares: sizing a queue,
//! placing its rings and activating it.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use rosv_sync::WaitQueue;
use rosv_virtio::spec::feature;
use rosv_virtio::{Buffer, QueueLayout, SplitQueue};

use super::{DeviceError, QueueAddresses, Transport};
use crate::hardware::{DmaRegion, Hardware};

struct State {
    queue: SplitQueue<Box<dyn DmaRegion>>,
    /// The request each token in flight belongs to. Tokens are reused as
    /// soon as the device returns them, before their submitter has looked,
    /// so results are kept by request, never by token.
    owners: Vec<u64>,
    next_request: u64,
    /// Bytes written, per request, for chains back from the device and
    /// not yet taken by their submitter.
    finished: BTreeMap<u64, u32>,
    is_broken: bool,
}

impl State {
    /// Takes every chain the device returned; true if there were any.
    fn collect(&mut self) -> bool {
        let mut found = false;
        loop {
            match self.queue.pop_used() {
                Ok(Some(used)) => {
                    self.finished.insert(self.owners[usize::from(used.token)], used.written_bytes);
                    found = true;
                }
                Ok(None) => return found,
                Err(error) => {
                    log::error!("virtio: {error}; the device is abandoned");
                    self.is_broken = true;
                    return true;
                }
            }
        }
    }
}

/// Sets up queue `index` of a device whose features are negotiated as
/// `features`: picks its size (the transport's fixed one, or the largest
/// power of two within both `max_size` and the device's maximum), places
/// its rings in DMA memory and hands them to the device. [`Virtqueue`]
/// starts with it; drivers that never wait use the bare queue it returns.
pub(crate) fn set_up_queue(
    transport: &Arc<dyn Transport>,
    index: u16,
    features: u64,
    hardware: &dyn Hardware,
    max_size: u16,
) -> Result<SplitQueue<Box<dyn DmaRegion>>, DeviceError> {
    let offered = transport.max_queue_size(index);
    if offered == 0 {
        return Err(DeviceError::NoQueue(index));
    }
    let size = if transport.is_queue_size_fixed() {
        offered
    } else {
        let wanted = offered.min(max_size).max(1);
        1 << (15 - wanted.leading_zeros())
    };
    let layout = QueueLayout::new(size, transport.layout_kind()).ok_or(DeviceError::QueueTooLarge(size))?;
    let memory = hardware.allocate_dma(layout.total_size).ok_or(DeviceError::OutOfMemory)?;
    let queue = SplitQueue::new(
        memory,
        layout,
        features & feature::INDIRECT_DESC != 0,
        features & feature::EVENT_IDX != 0,
    );
    let addresses = QueueAddresses {
        descriptor_table: queue.descriptor_table_address(),
        driver_area: queue.driver_area_address(),
        device_area: queue.device_area_address(),
    };
    transport.activate_queue(index, &layout, addresses)?;
    Ok(queue)
}

/// One virtqueue of a device.
pub struct Virtqueue {
    index: u16,
    transport: Arc<dyn Transport>,
    state: spin::Mutex<State>,
    completions: WaitQueue,
    room: WaitQueue,
    is_polling: AtomicBool,
}

impl core::fmt::Debug for Virtqueue {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("Virtqueue").field("index", &self.index).finish()
    }
}

impl Virtqueue {
    /// Sets up queue `index` of a device whose features are negotiated as
    /// `features`, with at most `max_size` descriptors (where the transport
    /// lets the driver choose).
    pub fn new(
        transport: Arc<dyn Transport>,
        index: u16,
        features: u64,
        hardware: &dyn Hardware,
        max_size: u16,
    ) -> Result<Self, DeviceError> {
        let queue = set_up_queue(&transport, index, features, hardware, max_size)?;
        let size = queue.layout().size;
        Ok(Virtqueue {
            index,
            transport,
            state: spin::Mutex::new(State {
                queue,
                owners: vec![0; usize::from(size)],
                next_request: 0,
                finished: BTreeMap::new(),
                is_broken: false,
            }),
            completions: WaitQueue::new(),
            room: WaitQueue::new(),
            is_polling: AtomicBool::new(false),
        })
    }

    /// Number of descriptors.
    pub fn size(&self) -> u16 {
        self.state.lock().queue.layout().size
    }

    /// Makes waiters poll the used ring instead of sleeping until an
    /// interrupt (for devices whose interrupt cannot be routed).
    pub fn set_polling(&self, is_polling: bool) {
        self.is_polling.store(is_polling, Ordering::Relaxed);
    }

    fn wait<T>(&self, queue: &WaitQueue, mut condition: impl FnMut() -> Option<T>) -> T {
        if self.is_polling.load(Ordering::Relaxed) {
            loop {
                if let Some(value) = condition() {
                    return value;
                }
                core::hint::spin_loop();
            }
        }
        queue.wait_until(condition)
    }

    /// Offers `buffers` as one chain, waits until the device returns it and
    /// returns the bytes it wrote. The buffers must stay untouched until
    /// then, which the borrow this call holds guarantees.
    pub fn submit(&self, buffers: &[Buffer]) -> Result<u32, DeviceError> {
        let request = self.wait(&self.room, || {
            let mut state = self.state.lock();
            if state.is_broken {
                return Some(Err(DeviceError::Broken));
            }
            if !state.queue.can_add(buffers.len()) && state.collect() {
                // Their submitters may be asleep with no interrupt coming.
                self.completions.wake_all();
            }
            if !state.queue.can_add(buffers.len()) {
                return None;
            }
            let request = match state.queue.add(buffers) {
                Ok(token) => {
                    let request = state.next_request;
                    state.next_request += 1;
                    state.owners[usize::from(token)] = request;
                    Ok(request)
                }
                Err(_) => Err(DeviceError::Broken),
            };
            if state.queue.should_notify() {
                self.transport.notify(self.index);
            }
            Some(request)
        })?;
        let result = self.wait(&self.completions, || {
            let mut state = self.state.lock();
            let found = state.collect();
            let outcome = match state.finished.remove(&request) {
                Some(written) => Some(Ok(written)),
                None if state.is_broken => Some(Err(DeviceError::Broken)),
                None => None,
            };
            drop(state);
            if found {
                // Chains of other waiters may have come back with this one:
                // with event indices the device interrupts once for them all.
                self.completions.wake_all();
            }
            outcome
        });
        self.room.wake_one();
        result
    }

    /// Collects the chains the device returned and wakes their submitters.
    pub fn handle_interrupt(&self) {
        self.state.lock().collect();
        self.completions.wake_all();
    }
}
