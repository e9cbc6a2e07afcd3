//! The application's standard streams on this machine: virtio-console
//! ports named for them, records on the serial port with
//! `--serial-streams`, else the console.
//!
//! Each port the host named after a stream (`rosv_abi::streams`) becomes
//! a [`HostChannel`]; the console's interrupt wakes whatever waits on any
//! of its ports. With `--serial-streams` the serial port carries all of
//! them ([`SerialStreams`]). `rosv_core::streams` makes the open files
//! from the channels.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use core::fmt::Write;

use rosv_abi::streams::{
    CONTROL_MESSAGE_MAX, CONTROL_PORT, Input, InputDeframer, OUTPUT_HEADER_MAX, OUTPUT_RECORD_MAX,
    RESTORED_LINE, RestoreNotice, format_output_header, port_name,
};
use rosv_cmdline::Options;
use rosv_core::process::ProcessFiles;
use rosv_core::streams::{ChannelClosed, Channels, HostChannel, Received, StandardStreams, StreamSettings};
use rosv_core::terminal::termios::WindowSize;
use rosv_core::vfs::Vfs;
use rosv_core::vfs::waiters::WaiterList;
use rosv_drivers::virtio::console::{self as virtio_console, VirtioConsole};
use rosv_platform::console::Console;
use rosv_platform::ioapic::Trigger;
use rosv_platform::{apic, console, interrupts, ioapic, time};

use crate::application;

/// A virtio console, the threads waiting on any of its ports, and the
/// streams it carries.
#[derive(Debug)]
pub struct ConsoleDevice {
    /// The driver.
    pub driver: Arc<VirtioConsole>,
    /// Woken at every interrupt of the device.
    pub waiters: Arc<WaiterList>,
    /// The streams on its ports, once connected.
    pub streams: spin::Once<Arc<StandardStreams>>,
}

impl ConsoleDevice {
    /// A console device over `driver`.
    pub fn new(driver: VirtioConsole) -> ConsoleDevice {
        ConsoleDevice { driver: Arc::new(driver), waiters: Arc::default(), streams: spin::Once::new() }
    }

    /// Takes what the device sent, wakes the waiters and serves the
    /// streams (the interrupt handler).
    pub fn handle_interrupt(&self) {
        self.driver.handle_interrupt();
        self.waiters.notify();
        if let Some(streams) = self.streams.get() {
            streams.serve();
        }
    }

    /// Takes the device's first control messages: the ports it has and
    /// their names. Devices answer the driver's messages in their own time
    /// (QEMU from its main loop), so this waits until every port the
    /// device added is named and nothing more came for a moment, or at
    /// most [`SETTLE_LIMIT_NS`] (a device that says nothing). A stream
    /// whose port comes later still finds it ([`PortChannel`]).
    pub fn settle(&self) {
        let started = time::since_boot_ns();
        let mut last_message = started;
        loop {
            let now = time::since_boot_ns();
            if self.driver.process_control() {
                last_message = now;
                continue;
            }
            let ports = self.driver.ports();
            let is_complete = !ports.is_empty() && ports.iter().all(|(_, name)| name.is_some());
            if (is_complete && now - last_message > SETTLE_QUIET_NS) || now - started > SETTLE_LIMIT_NS {
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// The channel of the port the device names (or will name) `name`.
    fn channel(&self, name: &'static str) -> Arc<dyn HostChannel> {
        Arc::new(PortChannel {
            driver: self.driver.clone(),
            name,
            port: spin::Once::new(),
            waiters: self.waiters.clone(),
        })
    }
}

/// How long [`ConsoleDevice::settle`] waits for a console's ports at most.
const SETTLE_LIMIT_NS: u64 = 500_000_000;
/// How long no control message must come before the ports are taken as
/// complete.
const SETTLE_QUIET_NS: u64 = 5_000_000;

/// One port of a virtio console, as a stream's channel. The port is found
/// by its name at first use, so one the device names late still works;
/// until then the channel neither takes nor gives bytes.
struct PortChannel {
    driver: Arc<VirtioConsole>,
    name: &'static str,
    port: spin::Once<u32>,
    waiters: Arc<WaiterList>,
}

impl PortChannel {
    fn port(&self) -> Option<u32> {
        if let Some(port) = self.port.get() {
            return Some(*port);
        }
        let port = self.driver.port_named(self.name)?;
        Some(*self.port.call_once(|| port))
    }
}

impl HostChannel for PortChannel {
    fn receive(&self, buffer: &mut [u8]) -> Received {
        let Some(port) = self.port() else { return Received::Nothing };
        match self.driver.receive(port, buffer) {
            virtio_console::Received::Bytes(length) => Received::Bytes(length),
            virtio_console::Received::Nothing => Received::Nothing,
            virtio_console::Received::Closed => Received::Closed,
        }
    }

    fn peek(&self) -> Received {
        let Some(port) = self.port() else { return Received::Nothing };
        if self.driver.has_received(port) {
            Received::Bytes(1)
        } else if self.driver.is_host_open(port) {
            Received::Nothing
        } else {
            Received::Closed
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<usize, ChannelClosed> {
        let Some(port) = self.port() else { return Ok(0) };
        self.driver.send(port, bytes).map_err(|_| ChannelClosed)
    }

    fn can_send(&self) -> bool {
        self.port().is_some_and(|port| self.driver.can_send(port))
    }

    fn is_sent(&self) -> bool {
        self.port().is_none_or(|port| self.driver.is_sent(port))
    }

    fn waiters(&self) -> &WaiterList {
        &self.waiters
    }
}

/// Bytes of standard input the kernel holds before it stops taking more
/// from the UART (the host then waits, as its UART's buffer is full).
const SERIAL_INPUT_LIMIT: usize = 64 * 1024;

/// What the host sent on the serial port, taken apart (see
/// `rosv_abi::streams`, input frames).
#[derive(Default)]
struct SerialInput {
    deframer: InputDeframer,
    stdin: VecDeque<u8>,
    is_stdin_ended: bool,
    control: VecDeque<u8>,
    is_receiving: bool,
}

/// The standard streams framed on the serial port (`--serial-streams`),
/// for hosts whose only channel it is (Firecracker, the built-in monitor).
pub struct SerialStreams {
    input: spin::Mutex<SerialInput>,
    waiters: Arc<WaiterList>,
    /// The streams, once connected.
    streams: spin::Once<Arc<StandardStreams>>,
}

impl core::fmt::Debug for SerialStreams {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str("SerialStreams")
    }
}

impl SerialStreams {
    /// Starts taking input frames from the UART's interrupt. Without an
    /// interrupt, standard input reads as empty.
    fn start() -> Arc<SerialStreams> {
        let streams = Arc::new(SerialStreams {
            input: spin::Mutex::new(SerialInput::default()),
            waiters: Arc::default(),
            streams: spin::Once::new(),
        });
        let handler = streams.clone();
        let routed = interrupts::allocate_vector(alloc::boxed::Box::new(move || handler.take_input()))
            .is_some_and(|vector| ioapic::route(console::COM1_IRQ, vector, apic::id(), Trigger::Edge));
        if routed {
            streams.input.lock().is_receiving = true;
            console::set_receive_interrupt(true);
            // What the host sent before the interrupt was on.
            streams.take_input();
        } else {
            log::warn!(
                "--serial-streams: the serial port's interrupt cannot be routed; standard input is empty"
            );
            streams.input.lock().is_stdin_ended = true;
        }
        streams
    }

    /// Takes what the UART received (the interrupt handler, and readers
    /// making room).
    fn take_input(&self) {
        let mut buffer = [0u8; 64];
        let mut input = self.input.lock();
        loop {
            if input.stdin.len() >= SERIAL_INPUT_LIMIT {
                // Taken up again once a read makes room.
                console::set_receive_interrupt(false);
                input.is_receiving = false;
                break;
            }
            let length = console::read_received(&mut buffer);
            if length == 0 {
                break;
            }
            let SerialInput { deframer, stdin, is_stdin_ended, control, .. } = &mut *input;
            deframer.feed(&buffer[..length], &mut |frame| match frame {
                Input::Data(bytes) => stdin.extend(bytes),
                Input::End => *is_stdin_ended = true,
                Input::Control(message) => {
                    let mut line = [0u8; CONTROL_MESSAGE_MAX];
                    control.extend(message.encode(&mut line));
                }
            });
        }
        drop(input);
        self.waiters.notify();
        if let Some(streams) = self.streams.get() {
            streams.serve();
        }
    }

    fn channel(self: &Arc<Self>, kind: SerialChannelKind) -> Arc<dyn HostChannel> {
        Arc::new(SerialChannel { streams: self.clone(), kind })
    }
}

/// Which stream a [`SerialChannel`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SerialChannelKind {
    /// Standard input.
    Input,
    /// Standard output (1) or error (2), in output records.
    Output(u8),
    /// Control messages.
    Control,
}

/// One stream framed on the serial port.
struct SerialChannel {
    streams: Arc<SerialStreams>,
    kind: SerialChannelKind,
}

impl HostChannel for SerialChannel {
    fn receive(&self, buffer: &mut [u8]) -> Received {
        let mut input = self.streams.input.lock();
        let input_state = &mut *input;
        let (queue, is_ended) = match self.kind {
            SerialChannelKind::Input => (&mut input_state.stdin, input_state.is_stdin_ended),
            SerialChannelKind::Control => (&mut input_state.control, false),
            SerialChannelKind::Output(_) => return Received::Closed,
        };
        if queue.is_empty() {
            return if is_ended { Received::Closed } else { Received::Nothing };
        }
        let length = buffer.len().min(queue.len());
        for (slot, byte) in buffer.iter_mut().zip(queue.drain(..length)) {
            *slot = byte;
        }
        let wants_more = !input.is_receiving && input.stdin.len() < SERIAL_INPUT_LIMIT / 2;
        if wants_more {
            input.is_receiving = true;
            drop(input);
            console::set_receive_interrupt(true);
            self.streams.take_input();
        }
        Received::Bytes(length)
    }

    fn peek(&self) -> Received {
        let input = self.streams.input.lock();
        let (length, is_ended) = match self.kind {
            SerialChannelKind::Input => (input.stdin.len(), input.is_stdin_ended),
            SerialChannelKind::Control => (input.control.len(), false),
            SerialChannelKind::Output(_) => return Received::Closed,
        };
        match (length, is_ended) {
            (0, true) => Received::Closed,
            (0, false) => Received::Nothing,
            (length, _) => Received::Bytes(length),
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<usize, ChannelClosed> {
        let SerialChannelKind::Output(descriptor) = self.kind else { return Err(ChannelClosed) };
        let length = bytes.len().min(OUTPUT_RECORD_MAX);
        if length > 0 {
            let mut header = [0u8; OUTPUT_HEADER_MAX];
            console::write_record(format_output_header(descriptor, length, &mut header), &bytes[..length]);
        }
        Ok(length)
    }

    fn can_send(&self) -> bool {
        matches!(self.kind, SerialChannelKind::Output(_))
    }

    fn is_sent(&self) -> bool {
        true
    }

    fn waiters(&self) -> &WaiterList {
        &self.streams.waiters
    }
}

/// The channels of the first console whose ports carry the streams (any
/// port named for one), found by name. A console with the control port
/// alone (the function host's) carries control messages only: the
/// streams stay on the serial console.
fn channels(consoles: &[Arc<ConsoleDevice>]) -> Channels {
    let has_port = |device: &Arc<ConsoleDevice>, name| device.driver.port_named(name).is_some();
    let carries_streams = |device: &&Arc<ConsoleDevice>| {
        (0..3).filter_map(port_name).chain([CONTROL_PORT]).any(|name| has_port(device, name))
    };
    let Some(device) = consoles.iter().find(carries_streams) else {
        return Channels::default();
    };
    let is_control_only = (0..3).filter_map(port_name).all(|name| !has_port(device, name));
    Channels {
        streams: core::array::from_fn(|descriptor| {
            port_name(descriptor as u8).filter(|_| !is_control_only).map(|name| device.channel(name))
        }),
        control: Some(device.channel(CONTROL_PORT)),
    }
}

/// Applies the host's restore notices: the clock, entropy and identity
/// of a VM started from a snapshot (`rosv_core::restore`), then says so
/// on the console when the host asked for the boot report (the function
/// host waits for that line before it sends the VM work).
fn handle_restore(notice: &RestoreNotice, does_report: bool) {
    rosv_core::restore::apply(application::machine(), notice);
    if does_report {
        let id: alloc::string::String =
            notice.instance_id.iter().map(|byte| alloc::format!("{byte:02x}")).collect();
        let _ = writeln!(Console, "{RESTORED_LINE}{id}");
    }
}

/// The standard streams for `options` over the consoles (or the serial
/// port), falling back to the console device file; from then on the
/// devices' interrupts serve them.
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
    let serial = options.serial_streams.then(SerialStreams::start);
    let found = match &serial {
        Some(serial) => Channels {
            streams: [
                Some(serial.channel(SerialChannelKind::Input)),
                Some(serial.channel(SerialChannelKind::Output(1))),
                Some(serial.channel(SerialChannelKind::Output(2))),
            ],
            control: Some(serial.channel(SerialChannelKind::Control)),
        },
        None => channels(consoles),
    };
    let named: Vec<bool> = found.streams.iter().map(Option::is_some).collect();
    log::debug!("standard streams on host channels: {named:?}, control: {}", found.control.is_some());
    let streams = Arc::new(StandardStreams::connect(found, settings, &console));
    let does_report = options.report_boot || options.verbose;
    streams.on_restore(alloc::boxed::Box::new(move |notice| handle_restore(notice, does_report)));
    for device in consoles {
        device.streams.call_once(|| streams.clone());
    }
    if let Some(serial) = &serial {
        serial.streams.call_once(|| streams.clone());
    }
    // What came before the streams were there.
    streams.serve();
    Some(streams)
}
