//! The serial console: a 16550 UART at COM1, and the kernel's logger.
//!
//! Output is polled: each byte waits for the transmit holding register to be
//! empty (16550 LSR bit 5). Hypervisors emulate the UART with an always-ready
//! transmitter, so this costs one port read and one port write per byte.
//! Input is taken when the UART interrupts ([`set_receive_interrupt`],
//! [`read_received`]), for hosts that carry the application's streams on
//! the serial port.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::port::Port;

use crate::sync::SpinMutex;

const COM1: u16 = 0x3f8;
const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;
const LINE_STATUS_DATA_READY: u8 = 1 << 0;
const LINE_STATUS_TRANSMIT_EMPTY: u8 = 1 << 5;
/// Interrupt enable register bit: received data available.
const INTERRUPT_RECEIVED_DATA: u8 = 1 << 0;
/// COM1's ISA interrupt line.
pub const COM1_IRQ: u32 = 4;
/// Upper bound on polls of the line status before a byte is sent anyway, so
/// a missing or stuck UART cannot hang the kernel.
const TRANSMIT_POLL_LIMIT: u32 = 100_000;

/// The 16550 at COM1.
#[derive(Debug)]
struct Uart {
    base: u16,
}

static UART: SpinMutex<Uart> = SpinMutex::new(Uart { base: COM1 });
static IS_VERBOSE: AtomicBool = AtomicBool::new(false);

impl Uart {
    fn write_register(&self, register: u16, value: u8) {
        // SAFETY: COM1's registers are I/O ports owned by this driver; writing
        // them affects only the UART.
        unsafe { Port::new(self.base + register).write(value) }
    }

    fn read_register(&self, register: u16) -> u8 {
        // SAFETY: as above; reading the line status has no side effects,
        // reading the data register takes a received byte, which only this
        // driver consumes.
        unsafe { Port::new(self.base + register).read() }
    }

    fn init(&self) {
        self.write_register(INTERRUPT_ENABLE, 0);
        self.write_register(LINE_CONTROL, 0x80);
        self.write_register(DATA, 1);
        self.write_register(INTERRUPT_ENABLE, 0);
        self.write_register(LINE_CONTROL, 0x03);
        self.write_register(FIFO_CONTROL, 0x07);
        self.write_register(MODEM_CONTROL, 0x03);
    }

    fn write_byte(&self, byte: u8) {
        for _ in 0..TRANSMIT_POLL_LIMIT {
            if self.read_register(LINE_STATUS) & LINE_STATUS_TRANSMIT_EMPTY != 0 {
                break;
            }
            core::hint::spin_loop();
        }
        self.write_register(DATA, byte);
    }

    fn write_bytes(&self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_byte(byte);
        }
    }
}

/// Programs COM1 for 115200 baud, 8N1, FIFO on, interrupts off.
pub fn init() {
    UART.lock().init();
}

/// Writes bytes to the console as they are.
pub fn write_bytes(bytes: &[u8]) {
    UART.lock().write_bytes(bytes);
}

/// Writes `header` and `payload` with nothing from another writer between
/// them (an output record, see `rosv_abi::streams`).
pub fn write_record(header: &[u8], payload: &[u8]) {
    let uart = UART.lock();
    uart.write_bytes(header);
    uart.write_bytes(payload);
}

/// Makes the UART interrupt (on [`COM1_IRQ`]) when it has received bytes,
/// or stops it from doing so.
pub fn set_receive_interrupt(is_enabled: bool) {
    let value = if is_enabled { INTERRUPT_RECEIVED_DATA } else { 0 };
    UART.lock().write_register(INTERRUPT_ENABLE, value);
}

/// Moves received bytes into `buffer`; returns how many there were.
pub fn read_received(buffer: &mut [u8]) -> usize {
    let uart = UART.lock();
    let mut count = 0;
    while count < buffer.len() && uart.read_register(LINE_STATUS) & LINE_STATUS_DATA_READY != 0 {
        buffer[count] = uart.read_register(DATA);
        count += 1;
    }
    count
}

/// Writes to the console without taking its lock, for reports made while the
/// kernel may be broken (a fault or a panic inside a console write).
pub(crate) fn write_bytes_unlocked(bytes: &[u8]) {
    Uart { base: COM1 }.write_bytes(bytes);
}

/// A `fmt::Write` sink for the console.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_bytes(text.as_bytes());
        Ok(())
    }
}

/// A `fmt::Write` sink that bypasses the console lock; see
/// [`write_bytes_unlocked`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EmergencyConsole;

impl Write for EmergencyConsole {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_bytes_unlocked(text.as_bytes());
        Ok(())
    }
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let uart = UART.lock();
        let mut sink = LockedSink(&uart);
        let _ = match record.level() {
            log::Level::Error => writeln!(sink, "rosv: error: {}", record.args()),
            log::Level::Warn => writeln!(sink, "rosv: warning: {}", record.args()),
            _ if IS_VERBOSE.load(Ordering::Relaxed) => {
                writeln!(sink, "rosv: [{}] {}", record.target(), record.args())
            }
            _ => writeln!(sink, "rosv: {}", record.args()),
        };
        drop(uart);
        crate::kernel_log::record(record.level(), record.args());
    }

    fn flush(&self) {}
}

struct LockedSink<'a>(&'a Uart);

impl Write for LockedSink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.write_bytes(text.as_bytes());
        Ok(())
    }
}

static LOGGER: Logger = Logger;

/// Routes the `log` facade to the console at `level`.
pub fn init_logger(level: log::LevelFilter) {
    IS_VERBOSE.store(level >= log::LevelFilter::Debug, Ordering::Relaxed);
    // A second call only changes the level.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
