//! PCI configuration space through the legacy I/O ports (0xCF8/0xCFC).
//!
//! Configuration mechanism #1: write the function's address and the
//! register's offset to `CONFIG_ADDRESS`, then access `CONFIG_DATA`. The
//! two steps must not interleave between processors, hence the lock.

use x86_64::instructions::port::Port;

use crate::sync::SpinMutex;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

static LOCK: SpinMutex<()> = SpinMutex::new(());

fn address(bus: u8, device: u8, function: u8, offset: u8) -> u32 {
    0x8000_0000
        | u32::from(bus) << 16
        | u32::from(device & 0x1f) << 11
        | u32::from(function & 0x7) << 8
        | u32::from(offset & 0xfc)
}

/// Reads the 32-bit configuration register at `offset` (rounded down to a
/// multiple of 4) of a function.
pub fn read_config(bus: u8, device: u8, function: u8, offset: u8) -> u32 {
    let _guard = LOCK.lock();
    // SAFETY: the configuration ports belong to this module; the lock keeps
    // the address/data pair together.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(address(bus, device, function, offset));
        Port::<u32>::new(CONFIG_DATA).read()
    }
}

/// Writes the 32-bit configuration register at `offset` of a function.
pub fn write_config(bus: u8, device: u8, function: u8, offset: u8, value: u32) {
    let _guard = LOCK.lock();
    // SAFETY: as in `read_config`.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(address(bus, device, function, offset));
        Port::<u32>::new(CONFIG_DATA).write(value);
    }
}
