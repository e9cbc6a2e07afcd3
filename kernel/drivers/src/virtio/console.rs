//! The virtio console device driver, with several ports (virtio 1.2 §5.3).
//!
//! [`VirtioConsole`] negotiates `MULTIPORT`, sets up the control queues and
//! the queues of the first [`MAX_PORTS`] ports, and answers the device's
//! control messages: a port the device adds is reported ready and open;
//! its name and whether the host side has it open are recorded. Each port
//! then carries bytes both ways, its buffers allocated at the first use of
//! each direction (a stream uses one, and a small VM has a few MiB):
//!
//! - receiving: from the first read on, [`RECEIVE_SLOTS`] buffers are
//!   always offered; the device fills them as the host sends,
//!   [`VirtioConsole::receive`] copies bytes out and offers a buffer again
//!   once it is empty. When the host closes its side and everything it
//!   sent has been read, the port reads as closed (the end of the input).
//! - sending: [`VirtioConsole::send`] copies bytes into an idle buffer and
//!   offers it; the device returns it once the host has taken the bytes,
//!   so [`VirtioConsole::is_sent`] tells when output has left the guest.
//!
//! Nothing here waits. The kernel's interrupt handler calls
//! [`VirtioConsole::handle_interrupt`] (which also processes control
//! messages) and then wakes whatever waits on the ports.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_virtio::SplitQueue;
use rosv_virtio::console::{
    CONTROL_RECEIVE_QUEUE, CONTROL_SIZE, CONTROL_TRANSMIT_QUEUE, Control, config, event, feature,
    receive_queue, transmit_queue,
};
use spin::Mutex;

use super::buffers::BufferRing;
use super::queue::set_up_queue;
use super::{DeviceError, Transport, fail, finish_initialization, initialize};
use crate::hardware::{DmaRegion, Hardware};

/// Ports whose queues the driver sets up; the device may have more, which
/// stay unused.
pub const MAX_PORTS: u32 = 8;
/// Receive buffers per port.
const RECEIVE_SLOTS: usize = 8;
/// Transmit buffers per port.
const TRANSMIT_SLOTS: usize = 8;
/// Bytes per data buffer.
const DATA_SLOT_SIZE: usize = 4096;
/// Buffers per control queue.
const CONTROL_SLOTS: usize = 16;
/// Bytes per control buffer: a header and a port name.
const CONTROL_SLOT_SIZE: usize = 256;
/// Descriptors per data queue the driver asks for: one per buffer.
const DATA_QUEUE_SIZE: u16 = 8;
/// Descriptors per control queue the driver asks for.
const CONTROL_QUEUE_SIZE: u16 = 16;

/// What a read from a port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// This many bytes were copied.
    Bytes(usize),
    /// Nothing yet: the host may still send.
    Nothing,
    /// The host closed its side and everything it sent has been read.
    Closed,
}

/// A queue's rings in DMA memory.
type Rings = SplitQueue<Box<dyn DmaRegion>>;

/// One direction of a port.
enum Direction {
    /// The rings, set up at start; no buffers yet.
    Unused(Rings),
    /// The rings and their buffers (all offered, for receiving).
    Active(BufferRing),
    /// The buffers could not be allocated.
    Failed,
}

/// A bytes-carrying port.
struct Port {
    receive: Direction,
    transmit: Direction,
    /// Whether the device added the port.
    is_added: bool,
    /// A received buffer partly read: its slot, the next byte, the end.
    partly_read: Option<(u16, usize, usize)>,
    name: Option<String>,
    is_host_open: bool,
}

/// A virtio console with several ports.
pub struct VirtioConsole {
    transport: Arc<dyn Transport>,
    hardware: &'static dyn Hardware,
    control_receive: Mutex<BufferRing>,
    control_transmit: Mutex<BufferRing>,
    ports: Vec<Mutex<Port>>,
}

impl core::fmt::Debug for VirtioConsole {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.debug_struct("VirtioConsole").field("ports", &self.ports.len()).finish()
    }
}

impl VirtioConsole {
    /// Starts the console behind `transport`: negotiates `MULTIPORT`
    /// (refusing a device without it, whose single port carries no name),
    /// sets up the queues and tells the device it is ready, which makes it
    /// announce its ports; call [`VirtioConsole::process_control`] (or
    /// wait for interrupts) to take them.
    pub fn new(transport: Arc<dyn Transport>, hardware: &'static dyn Hardware) -> Result<Self, DeviceError> {
        let features = initialize(&*transport, feature::MULTIPORT)?;
        if features & feature::MULTIPORT == 0 {
            fail(&*transport);
            return Err(DeviceError::Unsupported);
        }
        let console =
            Self::start(transport.clone(), hardware, features).inspect_err(|_| fail(&*transport))?;
        finish_initialization(&*transport);
        console.control_receive.lock().notify(&*transport);
        console.send_control(Control { port: 0, event: event::DEVICE_READY, value: 1 });
        Ok(console)
    }

    fn start(
        transport: Arc<dyn Transport>,
        hardware: &'static dyn Hardware,
        features: u64,
    ) -> Result<Self, DeviceError> {
        let max_ports = transport.read_config_u32(config::MAX_PORTS).clamp(1, MAX_PORTS);
        let queue = |index| set_up_queue(&transport, index, features, hardware, DATA_QUEUE_SIZE);
        let control_queue = |index| set_up_queue(&transport, index, features, hardware, CONTROL_QUEUE_SIZE);
        let mut control_receive = BufferRing::new(
            CONTROL_RECEIVE_QUEUE,
            control_queue(CONTROL_RECEIVE_QUEUE)?,
            hardware,
            CONTROL_SLOT_SIZE,
            CONTROL_SLOTS,
        )?;
        let control_transmit = BufferRing::new(
            CONTROL_TRANSMIT_QUEUE,
            control_queue(CONTROL_TRANSMIT_QUEUE)?,
            hardware,
            CONTROL_SLOT_SIZE,
            CONTROL_SLOTS,
        )?;
        while let Some(slot) = control_receive.take_idle() {
            control_receive.offer(slot, CONTROL_SLOT_SIZE, true)?;
        }
        let mut ports = Vec::new();
        for port in 0..max_ports {
            ports.push(Mutex::new(Port {
                receive: Direction::Unused(queue(receive_queue(port))?),
                transmit: Direction::Unused(queue(transmit_queue(port))?),
                is_added: false,
                partly_read: None,
                name: None,
                is_host_open: false,
            }));
        }
        Ok(VirtioConsole {
            transport,
            hardware,
            control_receive: Mutex::new(control_receive),
            control_transmit: Mutex::new(control_transmit),
            ports,
        })
    }

    /// Acknowledges the device's interrupt and processes the control
    /// messages it sent. The kernel's interrupt handler calls it, then
    /// wakes whatever waits on the ports.
    pub fn handle_interrupt(&self) {
        self.transport.acknowledge_interrupt();
        self.process_control();
    }

    /// Processes the control messages the device has sent; true if there
    /// were any.
    pub fn process_control(&self) -> bool {
        let mut found = false;
        loop {
            let message = {
                let mut ring = self.control_receive.lock();
                let Some((slot, written)) = ring.take_used() else { break };
                let mut bytes = [0u8; CONTROL_SLOT_SIZE];
                let length = written.min(CONTROL_SLOT_SIZE);
                ring.read_slot(slot, 0, &mut bytes[..length]);
                // A failure was logged, and the buffer stays idle.
                let _ = ring.offer(slot, CONTROL_SLOT_SIZE, true);
                ring.notify(&*self.transport);
                (bytes, length)
            };
            found = true;
            let (bytes, length) = message;
            match Control::decode(&bytes[..length]) {
                Some(control) => self.on_control(control, &bytes[CONTROL_SIZE..length]),
                None => log::warn!("virtio-console: a control message of {length} bytes"),
            }
        }
        self.control_transmit.lock().reclaim();
        found
    }

    fn on_control(&self, control: Control, payload: &[u8]) {
        let Some(port) = self.ports.get(control.port as usize) else {
            if control.event == event::DEVICE_ADD {
                self.send_control(Control { port: control.port, event: event::PORT_READY, value: 0 });
            }
            return;
        };
        match control.event {
            event::DEVICE_ADD => {
                port.lock().is_added = true;
                self.send_control(Control { port: control.port, event: event::PORT_READY, value: 1 });
                // The guest side is open from the start: the kernel binds
                // the ports it knows as soon as they exist.
                self.send_control(Control { port: control.port, event: event::PORT_OPEN, value: 1 });
            }
            event::DEVICE_REMOVE => {
                let mut port = port.lock();
                port.is_added = false;
                port.is_host_open = false;
                port.name = None;
            }
            event::PORT_OPEN => port.lock().is_host_open = control.value != 0,
            event::PORT_NAME => {
                let name = String::from_utf8_lossy(payload);
                port.lock().name = Some(String::from(name.trim_end_matches('\0')));
            }
            event::CONSOLE_PORT | event::RESIZE => {}
            other => log::debug!("virtio-console: control event {other} for port {}", control.port),
        }
    }

    /// Sends a control message (dropped, with a warning, if every control
    /// buffer is with the device).
    fn send_control(&self, control: Control) {
        let mut ring = self.control_transmit.lock();
        ring.reclaim();
        let Some(slot) = ring.take_idle() else {
            log::warn!("virtio-console: no control buffer for {control:?}");
            return;
        };
        ring.write_slot(slot, &control.encode());
        if ring.offer(slot, CONTROL_SIZE, false).is_ok() {
            ring.notify(&*self.transport);
        }
    }

    /// Port `index`'s receive buffers, allocated and offered to the device
    /// at the first call; `None` if the port was not added or they cannot
    /// be allocated.
    fn receive_ring<'a>(&self, index: u32, port: &'a mut Port) -> Option<&'a mut BufferRing> {
        if !port.is_added {
            return None;
        }
        if let Direction::Unused(_) = port.receive
            && let Direction::Unused(rings) = core::mem::replace(&mut port.receive, Direction::Failed)
        {
            let ring =
                BufferRing::new(receive_queue(index), rings, self.hardware, DATA_SLOT_SIZE, RECEIVE_SLOTS)
                    .and_then(|mut ring| {
                        while let Some(slot) = ring.take_idle() {
                            ring.offer(slot, DATA_SLOT_SIZE, true)?;
                        }
                        ring.notify(&*self.transport);
                        Ok(ring)
                    });
            match ring {
                Ok(ring) => port.receive = Direction::Active(ring),
                Err(error) => log::warn!("virtio-console: port {index}: {error}"),
            }
        }
        match &mut port.receive {
            Direction::Active(ring) => Some(ring),
            Direction::Unused(_) | Direction::Failed => None,
        }
    }

    /// Port `index`'s transmit buffers, allocated at the first call.
    fn transmit_ring<'a>(&self, index: u32, port: &'a mut Port) -> Option<&'a mut BufferRing> {
        if !port.is_added {
            return None;
        }
        if let Direction::Unused(_) = port.transmit
            && let Direction::Unused(rings) = core::mem::replace(&mut port.transmit, Direction::Failed)
        {
            match BufferRing::new(transmit_queue(index), rings, self.hardware, DATA_SLOT_SIZE, TRANSMIT_SLOTS)
            {
                Ok(ring) => port.transmit = Direction::Active(ring),
                Err(error) => log::warn!("virtio-console: port {index}: {error}"),
            }
        }
        match &mut port.transmit {
            Direction::Active(ring) => Some(ring),
            Direction::Unused(_) | Direction::Failed => None,
        }
    }

    /// The ports the device added, with their names.
    pub fn ports(&self) -> Vec<(u32, Option<String>)> {
        self.ports
            .iter()
            .enumerate()
            .filter_map(|(index, port)| {
                let port = port.lock();
                port.is_added.then(|| (index as u32, port.name.clone()))
            })
            .collect()
    }

    /// The port the device named `name`, if it added one.
    pub fn port_named(&self, name: &str) -> Option<u32> {
        self.ports().into_iter().find(|(_, known)| known.as_deref() == Some(name)).map(|(index, _)| index)
    }

    /// Whether the host has port `index` open.
    pub fn is_host_open(&self, index: u32) -> bool {
        self.ports.get(index as usize).is_some_and(|port| port.lock().is_host_open)
    }

    /// Copies bytes the host sent on port `index` into `buffer`, without
    /// waiting.
    pub fn receive(&self, index: u32, buffer: &mut [u8]) -> Received {
        let Some(port) = self.ports.get(index as usize) else {
            return Received::Closed;
        };
        let mut port = port.lock();
        let port = &mut *port;
        let is_host_open = port.is_host_open;
        let mut partly_read = port.partly_read.take();
        let received = match self.receive_ring(index, port) {
            Some(ring) => take_received(ring, &mut partly_read, is_host_open, buffer, &*self.transport),
            None => Received::Closed,
        };
        port.partly_read = partly_read;
        received
    }

    /// Whether port `index` has received bytes not yet read.
    pub fn has_received(&self, index: u32) -> bool {
        let Some(port) = self.ports.get(index as usize) else { return false };
        let mut port = port.lock();
        let port = &mut *port;
        if port.partly_read.is_some() {
            return true;
        }
        // Looking at the used ring takes the next buffer out of it.
        let taken = self.receive_ring(index, port).and_then(BufferRing::take_used);
        match taken {
            Some((slot, written)) => {
                port.partly_read = Some((slot, 0, written.min(DATA_SLOT_SIZE)));
                true
            }
            None => false,
        }
    }

    /// Queues bytes for the host on port `index` without waiting; returns
    /// how many were taken (0: every buffer is with the device, try again
    /// after its interrupt). Fails with [`DeviceError::PortClosed`] once
    /// the host has closed the port.
    pub fn send(&self, index: u32, bytes: &[u8]) -> Result<usize, DeviceError> {
        let port = self.ports.get(index as usize).ok_or(DeviceError::PortClosed)?;
        let mut port = port.lock();
        let is_host_open = port.is_host_open;
        let ring = self.transmit_ring(index, &mut port).ok_or(DeviceError::PortClosed)?;
        if !is_host_open {
            return Err(DeviceError::PortClosed);
        }
        if ring.is_broken() {
            return Err(DeviceError::Broken);
        }
        ring.reclaim();
        if bytes.is_empty() {
            return Ok(0);
        }
        let Some(slot) = ring.take_idle() else {
            return Ok(0);
        };
        let length = bytes.len().min(ring.slot_size());
        ring.write_slot(slot, &bytes[..length]);
        ring.offer(slot, length, false)?;
        ring.notify(&*self.transport);
        Ok(length)
    }

    /// Whether [`VirtioConsole::send`] on port `index` would take bytes
    /// now (after collecting the buffers the device has finished with).
    pub fn can_send(&self, index: u32) -> bool {
        let Some(port) = self.ports.get(index as usize) else { return false };
        let mut port = port.lock();
        let is_host_open = port.is_host_open;
        match self.transmit_ring(index, &mut port) {
            Some(ring) if is_host_open => {
                ring.reclaim();
                ring.has_idle()
            }
            _ => false,
        }
    }

    /// Whether everything sent on port `index` has left the guest (or can
    /// no longer: the host closed the port, or the device broke it).
    pub fn is_sent(&self, index: u32) -> bool {
        let Some(port) = self.ports.get(index as usize) else { return true };
        let mut port = port.lock();
        let is_host_open = port.is_host_open;
        match &mut port.transmit {
            Direction::Active(ring) => {
                ring.reclaim();
                ring.is_all_idle() || ring.is_broken() || !is_host_open
            }
            Direction::Unused(_) | Direction::Failed => true,
        }
    }
}

/// Copies received bytes from `ring` into `buffer`, continuing with the
/// buffer `partly_read` names; offers emptied buffers again.
fn take_received(
    ring: &mut BufferRing,
    partly_read: &mut Option<(u16, usize, usize)>,
    is_host_open: bool,
    buffer: &mut [u8],
    transport: &dyn Transport,
) -> Received {
    if buffer.is_empty() {
        return Received::Bytes(0);
    }
    loop {
        if let Some((slot, start, end)) = *partly_read {
            let length = buffer.len().min(end - start);
            ring.read_slot(slot, start, &mut buffer[..length]);
            if start + length == end {
                *partly_read = None;
                // A failure was logged, and the buffer stays idle.
                let _ = ring.offer(slot, DATA_SLOT_SIZE, true);
                ring.notify(transport);
            } else {
                *partly_read = Some((slot, start + length, end));
            }
            return Received::Bytes(length);
        }
        match ring.take_used() {
            Some((slot, 0)) => {
                let _ = ring.offer(slot, DATA_SLOT_SIZE, true);
                ring.notify(transport);
            }
            Some((slot, written)) => *partly_read = Some((slot, 0, written.min(DATA_SLOT_SIZE))),
            None if is_host_open && !ring.is_broken() => return Received::Nothing,
            None => return Received::Closed,
        }
    }
}
