//! The devices the monitor emulates itself, on port I/O and MMIO exits.
//!
//! KVM's in-kernel irqchip and PIT handle the interrupt controllers and the
//! timer; what reaches user space is decided here:
//!
//! - COM1 (0x3f8-0x3ff): a 16550 (vm-superio), its output the console,
//!   its input what the host gives (`monitor::run_with_input`);
//! - the debug-exit port (`rosv_abi::exit::DEBUG_EXIT_PORT`): the kernel's
//!   first way to power off, carrying the exit status;
//! - the i8042 command port (0x64): the reset pulse (0xfe) ends the VM,
//!   as on Firecracker;
//! - virtio-mmio block devices (`virtio_block`), the network card
//!   (`virtio_net`) and the socket device (`virtio_vsock`), one 4 KiB
//!   window each;
//! - everything else: reads return all ones, writes are dropped, as on an
//!   ISA bus with nothing behind the address.

use std::io::Write;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::virtio_block::VirtioBlock;
use crate::virtio_mmio::WINDOW_SIZE;
use crate::virtio_net::VirtioNet;
use crate::virtio_vsock::VirtioVsock;

/// The first port of COM1.
pub const COM1: u16 = 0x3f8;
/// The last of the eight ports a 16550 decodes.
const COM1_LAST: u16 = COM1 + 7;
/// COM1's ISA interrupt line.
pub const COM1_IRQ: u32 = 4;
/// The i8042 data port, whose reads the kernel never depends on.
const I8042_DATA: u16 = 0x60;
/// The i8042 command and status port.
const I8042_COMMAND: u16 = 0x64;
/// The i8042 command that pulses the CPU reset line.
const I8042_PULSE_RESET: u8 = 0xfe;

/// What a guest access asks of the monitor beyond the device's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing: the vCPU goes on.
    None,
    /// The guest wrote its exit status to the debug-exit port.
    PowerOff(u8),
    /// The guest pulsed the reset line.
    Reset,
}

/// Raises COM1's interrupt line through an eventfd that KVM turns into
/// an interrupt (KVM_IRQFD).
#[derive(Debug)]
pub struct InterruptLine(pub EventFd);

impl Trigger for InterruptLine {
    type E = std::io::Error;

    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// A device behind a virtio-mmio register window.
enum VirtioDevice {
    Block(VirtioBlock),
    Net(VirtioNet),
    Vsock(VirtioVsock),
}

impl VirtioDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match self {
            VirtioDevice::Block(device) => device.read(offset, data),
            VirtioDevice::Net(device) => device.read(offset, data),
            VirtioDevice::Vsock(device) => device.read(offset, data),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match self {
            VirtioDevice::Block(device) => device.write(offset, data),
            VirtioDevice::Net(device) => device.write(offset, data),
            VirtioDevice::Vsock(device) => device.write(offset, data),
        }
    }
}

/// The emulated devices of one VM.
pub struct Devices {
    serial: Serial<InterruptLine, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
    /// Virtio devices and the physical address of their windows.
    virtio: Vec<(u64, VirtioDevice)>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Devices").finish_non_exhaustive()
    }
}

impl Devices {
    /// Devices whose serial output goes to `console`, its interrupt to
    /// `serial_interrupt`.
    pub fn new(console: Box<dyn Write + Send>, serial_interrupt: InterruptLine) -> Self {
        Devices { serial: Serial::new(serial_interrupt, console), virtio: Vec::new() }
    }

    /// Puts bytes from the host into COM1's receive buffer, as far as it
    /// has room (the UART interrupts if the guest asked for it); returns
    /// how many were taken.
    pub fn enqueue_serial_input(&mut self, bytes: &[u8]) -> usize {
        let count = bytes.len().min(self.serial.fifo_capacity());
        if count == 0 {
            return 0;
        }
        self.serial.enqueue_raw_bytes(&bytes[..count]).unwrap_or(0)
    }

    /// Adds a block device whose registers are at `paddr`.
    pub fn add_block(&mut self, paddr: u64, device: VirtioBlock) {
        self.virtio.push((paddr, VirtioDevice::Block(device)));
    }

    /// Adds a network card whose registers are at `paddr`.
    pub fn add_net(&mut self, paddr: u64, device: VirtioNet) {
        self.virtio.push((paddr, VirtioDevice::Net(device)));
    }

    /// Adds a socket device whose registers are at `paddr`.
    pub fn add_vsock(&mut self, paddr: u64, device: VirtioVsock) {
        self.virtio.push((paddr, VirtioDevice::Vsock(device)));
    }

    /// The virtio device whose window holds `paddr`, and the offset in it.
    fn virtio_at(&mut self, paddr: u64) -> Option<(&mut VirtioDevice, u64)> {
        self.virtio.iter_mut().find_map(|(base, device)| {
            let offset = paddr.checked_sub(*base)?;
            (offset < WINDOW_SIZE).then_some((device, offset))
        })
    }

    /// A port read of `data.len()` bytes at `port`.
    pub fn port_in(&mut self, port: u16, data: &mut [u8]) {
        data.fill(0xff);
        match port {
            COM1..=COM1_LAST if data.len() == 1 => data[0] = self.serial.read((port - COM1) as u8),
            I8042_DATA | I8042_COMMAND => data.fill(0),
            _ => {}
        }
    }

    /// A port write of `data` at `port`.
    pub fn port_out(&mut self, port: u16, data: &[u8]) -> Effect {
        match (port, data) {
            (COM1..=COM1_LAST, &[value]) => {
                // A console that can no longer be written (a closed pipe)
                // must not stop the guest: its bytes are dropped.
                let _ = self.serial.write((port - COM1) as u8, value);
                Effect::None
            }
            (rosv_abi::exit::DEBUG_EXIT_PORT, &[status, ..]) => Effect::PowerOff(status),
            (I8042_COMMAND, &[I8042_PULSE_RESET]) => Effect::Reset,
            _ => Effect::None,
        }
    }

    /// An MMIO read at `paddr`.
    pub fn mmio_read(&mut self, paddr: u64, data: &mut [u8]) {
        match self.virtio_at(paddr) {
            Some((device, offset)) => device.read(offset, data),
            None => data.fill(0xff),
        }
    }

    /// An MMIO write at `paddr`.
    pub fn mmio_write(&mut self, paddr: u64, data: &[u8]) -> Effect {
        if let Some((device, offset)) = self.virtio_at(paddr) {
            device.write(offset, data);
        }
        Effect::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn devices() -> (Devices, Sink, EventFd) {
        let sink = Sink::default();
        let event = EventFd::new(vmm_sys_util::eventfd::EFD_NONBLOCK).unwrap();
        let line = InterruptLine(event.try_clone().unwrap());
        (Devices::new(Box::new(sink.clone()), line), sink, event)
    }

    #[test]
    fn serial_output_reaches_the_console() {
        let (mut devices, sink, _event) = devices();
        for &byte in b"hi\n" {
            assert_eq!(devices.port_out(COM1, &[byte]), Effect::None);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"hi\n");
        let mut status = [0u8];
        devices.port_in(COM1 + 5, &mut status);
        assert_ne!(status[0] & 0x20, 0, "the transmitter is always ready");
    }

    #[test]
    fn the_serial_interrupt_fires_when_the_guest_enables_it() {
        let (mut devices, _sink, event) = devices();
        devices.port_out(COM1 + 1, &[0x02]); // transmitter-empty interrupt
        devices.port_out(COM1, b"x");
        assert!(event.read().unwrap() >= 1);
    }

    #[test]
    fn host_input_waits_for_room_in_the_uart() {
        let (mut devices, _sink, event) = devices();
        devices.port_out(COM1 + 1, &[0x01]); // received-data interrupt
        let input: Vec<u8> = (0..100).collect();
        let taken = devices.enqueue_serial_input(&input);
        assert!(taken > 0 && taken < input.len(), "the FIFO takes part: {taken}");
        assert_eq!(devices.enqueue_serial_input(&input[taken..]), 0, "and nothing more while full");
        assert!(event.read().unwrap() >= 1, "the guest is told");
        let mut byte = [0u8];
        devices.port_in(COM1, &mut byte);
        assert_eq!(byte, [0]);
        assert_eq!(devices.enqueue_serial_input(&input[taken..]), 1, "a read makes room");
    }

    #[test]
    fn power_off_and_reset_are_reported() {
        let (mut devices, _sink, _event) = devices();
        assert_eq!(devices.port_out(0xf4, &[3]), Effect::PowerOff(3));
        assert_eq!(devices.port_out(0xf4, &[200, 0, 0, 0]), Effect::PowerOff(200));
        assert_eq!(devices.port_out(0x64, &[0xfe]), Effect::Reset);
        assert_eq!(devices.port_out(0x64, &[0xad]), Effect::None);
    }

    #[test]
    fn unknown_ports_and_addresses_read_as_all_ones() {
        let (mut devices, _sink, _event) = devices();
        let mut word = [0u8; 4];
        devices.port_in(0xcfc, &mut word);
        assert_eq!(word, [0xff; 4]);
        assert_eq!(devices.port_out(0xcf8, &[0, 0, 0, 0x80]), Effect::None);
        let mut value = [0u8; 8];
        devices.mmio_read(0xd000_0000, &mut value);
        assert_eq!(value, [0xff; 8]);
        assert_eq!(devices.mmio_write(0xc000_0000, &[123]), Effect::None);
        let mut status = [0u8];
        devices.port_in(0x64, &mut status);
        assert_eq!(status, [0], "the i8042 has nothing to say");
    }
}
