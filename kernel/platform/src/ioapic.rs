//! I/O APICs: routing device interrupt lines (GSIs) to vectors.
//!
//! Each I/O APIC has an index register at offset 0 and a data window at
//! 0x10; redirection entry `n` is registers `0x10 + 2n` (low) and
//! `0x11 + 2n` (high) (82093AA datasheet §3.2). All entries start masked.

use alloc::vec::Vec;

use crate::acpi::{InterruptOverride, IoApic};
use crate::sync::SpinMutex;

const REGISTER_SELECT: u64 = 0x00;
const REGISTER_WINDOW: u64 = 0x10;
const VERSION: u32 = 0x01;
const REDIRECTION_TABLE: u32 = 0x10;
const MASKED: u32 = 1 << 16;
const LEVEL_TRIGGERED: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;

#[derive(Debug)]
struct Controller {
    base: u64,
    gsi_base: u32,
    entries: u32,
}

impl Controller {
    fn read(&self, register: u32) -> u32 {
        // SAFETY: `base` maps this I/O APIC's registers uncached; selecting
        // a register and reading the window has no other effect.
        unsafe {
            core::ptr::write_volatile((self.base + REGISTER_SELECT) as *mut u32, register);
            core::ptr::read_volatile((self.base + REGISTER_WINDOW) as *const u32)
        }
    }

    fn write(&self, register: u32, value: u32) {
        // SAFETY: as in `read`; redirection entries only steer interrupts.
        unsafe {
            core::ptr::write_volatile((self.base + REGISTER_SELECT) as *mut u32, register);
            core::ptr::write_volatile((self.base + REGISTER_WINDOW) as *mut u32, value);
        }
    }
}

#[derive(Debug, Default)]
struct Routing {
    controllers: Vec<Controller>,
    overrides: Vec<InterruptOverride>,
}

static ROUTING: SpinMutex<Routing> =
    SpinMutex::new(Routing { controllers: Vec::new(), overrides: Vec::new() });

/// Maps the I/O APICs and masks all their inputs.
pub fn init(io_apics: &[IoApic], overrides: &[InterruptOverride]) {
    let mut routing = ROUTING.lock();
    for io_apic in io_apics {
        let Some(base) = crate::paging::map_device(io_apic.address, 4096) else {
            log::warn!("ioapic: cannot map {:#x}", io_apic.address);
            continue;
        };
        let mut controller = Controller { base, gsi_base: io_apic.gsi_base, entries: 0 };
        controller.entries = ((controller.read(VERSION) >> 16) & 0xff) + 1;
        for entry in 0..controller.entries {
            controller.write(REDIRECTION_TABLE + 2 * entry, MASKED);
        }
        log::debug!(
            "ioapic: {} inputs from GSI {} at {:#x}",
            controller.entries,
            controller.gsi_base,
            io_apic.address
        );
        routing.controllers.push(controller);
    }
    routing.overrides = overrides.to_vec();
}

/// How a device signals on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Edge-triggered, active high (ISA devices, virtio-mmio).
    Edge,
    /// Level-triggered, active high (PCI INTx as QEMU and Firecracker wire
    /// it to the I/O APIC).
    Level,
}

/// Delivers global system interrupt `gsi` as `vector` to the processor with
/// APIC id `destination`. Legacy IRQs follow the firmware's overrides; other
/// lines signal as `trigger` says.
pub fn route(gsi: u32, vector: u8, destination: u32, trigger: Trigger) -> bool {
    let routing = ROUTING.lock();
    let default_flags = match trigger {
        Trigger::Edge => 0,
        Trigger::Level => 0b11 << 2,
    };
    let (gsi, flags) = match routing.overrides.iter().find(|entry| u32::from(entry.irq) == gsi) {
        Some(entry) => (entry.gsi, entry.flags),
        None => (gsi, default_flags),
    };
    let Some(controller) = routing
        .controllers
        .iter()
        .find(|controller| (controller.gsi_base..controller.gsi_base + controller.entries).contains(&gsi))
    else {
        return false;
    };
    let mut low = u32::from(vector);
    if flags & 0b11 == 0b11 {
        low |= ACTIVE_LOW;
    }
    if (flags >> 2) & 0b11 == 0b11 {
        low |= LEVEL_TRIGGERED;
    }
    let entry = gsi - controller.gsi_base;
    controller.write(REDIRECTION_TABLE + 2 * entry + 1, destination << 24);
    controller.write(REDIRECTION_TABLE + 2 * entry, low);
    true
}
