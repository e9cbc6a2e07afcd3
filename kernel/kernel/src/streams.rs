//! The application's standard streams on this machine: virtio-console
//! ports named for them, else the console.
//!
//! Each port the host named after a stream (`rosv_abi::streams`) becomes
//! a [`HostChannel`]; the console's interrupt wakes whatever waits on any
//! of its ports. `rosv_core::streams` makes the open files from them.

use alloc::sync::Arc;
use alloc::vec::Vec;

use rosv_abi::streams::{CONTROL_PORT, port_name};
use rosv_cmdline::Options;
use rosv_core::process::ProcessFiles;
use rosv_core::streams::{ChannelClosed, Channels, HostChannel, Received, StandardStreams, StreamSettings};
use rosv_core::terminal::termios::WindowSize;
use rosv_core::vfs::Vfs;
use rosv_core::vfs::waiters::WaiterList;
use rosv_drivers::virtio::console::{self, VirtioConsole};
use rosv_platform::{sched, time};

use crate::application;

/// A virtio console and the threads waiting on any of its ports.
#[derive(Debug)]
pub struct ConsoleDevice {
    /// The driver.
    pub driver: Arc<VirtioConsole>,
    /// Woken at every interrupt of the device.
    pub waiters: Arc<WaiterList>,
}

impl ConsoleDevice {
    /// Takes what the device sent and wakes the waiters (the interrupt
    /// handler).
    pub fn handle_interrupt(&self) {
        self.driver.handle_interrupt();
        self.waiters.notify();
    }

    /// Takes the device's first control messages: the ports it has and
    /// their names. Devices answer as the driver notifies them, so this
    /// waits only for messages that keep coming, or briefly for a device
    /// that has said nothing yet.
    pub fn settle(&self) {
        const FIRST_MESSAGE_NS: u64 = 200_000_000;
        let deadline = time::since_boot_ns() + FIRST_MESSAGE_NS;
        let mut has_spoken = false;
        loop {
            let found = self.driver.process_control();
            has_spoken |= found;
            if !found && (has_spoken || time::since_boot_ns() > deadline) {
                return;
            }
            if !found {
                core::hint::spin_loop();
            }
        }
    }

    fn channel(&self, port: u32) -> Arc<dyn HostChannel> {
        Arc::new(PortChannel { driver: self.driver.clone(), port, waiters: self.waiters.clone() })
    }
}

/// One port of a virtio console, as a stream's channel.
struct PortChannel {
    driver: Arc<VirtioConsole>,
    port: u32,
    waiters: Arc<WaiterList>,
}

impl HostChannel for PortChannel {
    fn receive(&self, buffer: &mut [u8]) -> Received {
        match self.driver.receive(self.port, buffer) {
            console::Received::Bytes(length) => Received::Bytes(length),
            console::Received::Nothing => Received::Nothing,
            console::Received::Closed => Received::Closed,
        }
    }

    fn peek(&self) -> Received {
        if self.driver.has_received(self.port) {
            Received::Bytes(1)
        } else if self.driver.is_host_open(self.port) {
            Received::Nothing
        } else {
            Received::Closed
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<usize, ChannelClosed> {
        self.driver.send(self.port, bytes).map_err(|_| ChannelClosed)
    }

    fn can_send(&self) -> bool {
        self.driver.can_send(self.port)
    }

    fn is_sent(&self) -> bool {
        self.driver.is_sent(self.port)
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }
}

/// The channels the consoles offer: the ports named for each stream and
/// for control messages, from the first console that has them.
fn channels(consoles: &[Arc<ConsoleDevice>]) -> Channels {
    let mut channels = Channels::default();
    for device in consoles {
        for (descriptor, slot) in channels.streams.iter_mut().enumerate() {
            let Some(name) = port_name(descriptor as u8) else { continue };
            if slot.is_none()
                && let Some(port) = device.driver.port_named(name)
            {
                *slot = Some(device.channel(port));
            }
        }
        if channels.control.is_none()
            && let Some(port) = device.driver.port_named(CONTROL_PORT)
        {
            channels.control = Some(device.channel(port));
        }
    }
    channels
}

/// The standard streams for `options` over the consoles, falling back to
/// the console device file; starts the stream service when it has work.
pub fn connect(
    consoles: &[Arc<ConsoleDevice>],
    options: &Options,
    vfs: &Vfs,
) -> Option<Arc<StandardStreams>> {
    let machine = application::machine();
    let console = match ProcessFiles::console(vfs, machine) {
        Ok(console) => console,
        Err(error) => {
            log::error!("cannot open /dev/console: {error}");
            return None;
        }
    };
    let (columns, rows) = options.terminal_size.unwrap_or((80, 24));
    let settings = StreamSettings {
        terminals: options.terminal_streams,
        mode: options.terminal_mode,
        window: WindowSize { rows, columns, ..WindowSize::default() },
    };
    let found = channels(consoles);
    let named: Vec<bool> = found.streams.iter().map(Option::is_some).collect();
    log::debug!("standard streams on console ports: {named:?}, control port: {}", found.control.is_some());
    let streams = Arc::new(StandardStreams::connect(found, settings, &console));
    if streams.needs_service() {
        let service = streams.clone();
        sched::spawn_kernel("streams", move || service.run_service(application::machine()));
    }
    Some(streams)
}
