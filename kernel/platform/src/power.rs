//! Ending the virtual machine with the application's exit status.
//!
//! Power-off tries, in order: QEMU's `isa-debug-exit` device (QEMU exits at
//! once with `(status << 1) | 1`), ACPI S5 where the ACPI tables describe it,
//! the i8042 reset line (Firecracker ends the VM; QEMU started with
//! `-no-reboot` exits), and finally a triple fault. Hypervisors without a
//! device ignore the writes meant for it.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::VirtAddr;
use x86_64::instructions::port::Port;
use x86_64::structures::DescriptorTablePointer;

use rosv_abi::exit::{DEBUG_EXIT_PORT, RECORD_MAX_LEN, format_record};

use crate::acpi::SoftOff;
use crate::console;

const I8042_COMMAND: u16 = 0x64;
const I8042_PULSE_RESET: u8 = 0xfe;
/// How long to wait for the hypervisor to act on a reset request.
const RESET_GRACE_NS: u64 = 1_000_000_000;

static PRINTS_EXIT_RECORD: AtomicBool = AtomicBool::new(false);
static SOFT_OFF: spin::Once<SoftOff> = spin::Once::new();
static HALTS_ON_ABORT: AtomicBool = AtomicBool::new(false);

/// How the kernel ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShutdownPolicy {
    /// Print the exit record (see `rosv_abi::exit`) before powering off.
    pub prints_exit_record: bool,
    /// After a kernel failure, halt (for a debugger) instead of powering off.
    pub halts_on_abort: bool,
}

/// Sets the shutdown policy from the kernel options.
pub fn configure(policy: ShutdownPolicy) {
    PRINTS_EXIT_RECORD.store(policy.prints_exit_record, Ordering::Relaxed);
    HALTS_ON_ABORT.store(policy.halts_on_abort, Ordering::Relaxed);
}

/// Records how ACPI puts this machine in S5, found at boot.
pub fn configure_soft_off(soft_off: SoftOff) {
    SOFT_OFF.call_once(|| soft_off);
}

/// Enters ACPI S5 if the machine has it.
fn enter_soft_off() {
    let Some(soft_off) = SOFT_OFF.get() else {
        return;
    };
    match *soft_off {
        SoftOff::Pm1Control { port_a, port_b, value } => {
            // SAFETY: the ports are the PM1 control blocks the FADT names;
            // writing SLP_TYP | SLP_EN to them powers off, the intent.
            unsafe { Port::<u16>::new(port_a).write(value) };
            if let Some(port_b) = port_b {
                // SAFETY: as above, for the PM1b block.
                unsafe { Port::<u16>::new(port_b).write(value) };
            }
        }
        SoftOff::SleepControl { is_port: true, address, value } => {
            if let Ok(port) = u16::try_from(address) {
                // SAFETY: the FADT's sleep control port; writing SLP_TYP |
                // SLP_EN to it powers off, the intent.
                unsafe { Port::<u8>::new(port).write(value) };
            }
        }
        SoftOff::SleepControl { is_port: false, address, value } => {
            if let Some(register) = crate::paging::map_device(address, 1) {
                // SAFETY: the FADT's sleep control register, mapped uncached
                // just above; see above.
                unsafe { core::ptr::write_volatile(register as *mut u8, value) };
            }
        }
    }
}

/// Powers the machine off, reporting `status` to the host.
pub fn power_off(status: u8) -> ! {
    crate::cpu::disable_interrupts();
    if PRINTS_EXIT_RECORD.load(Ordering::Relaxed) {
        let mut buffer = [0u8; RECORD_MAX_LEN];
        console::write_bytes_unlocked(format_record(status, &mut buffer));
    }
    // SAFETY: the debug-exit port is ours by convention with the tools and
    // unused by any device the kernel drives.
    unsafe { Port::<u8>::new(DEBUG_EXIT_PORT).write(status) };
    enter_soft_off();
    // SAFETY: pulsing the i8042 reset line ends the machine, the intent.
    unsafe { Port::<u8>::new(I8042_COMMAND).write(I8042_PULSE_RESET) };
    // Firecracker stops the VM from another thread after the reset request;
    // give it time before resorting to a triple fault, which it reports as
    // an error.
    let deadline = crate::time::since_boot_ns() + RESET_GRACE_NS;
    while crate::time::since_boot_ns() < deadline {
        core::hint::spin_loop();
    }
    triple_fault()
}

/// Ends the machine after a kernel failure, or halts when the options ask to
/// keep it for a debugger.
pub fn abort(status: u8) -> ! {
    if HALTS_ON_ABORT.load(Ordering::Relaxed) {
        let _ = writeln!(console::EmergencyConsole, "rosv: halted after a failure (--noshutdown)");
        halt_forever();
    }
    power_off(status)
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        crate::cpu::disable_interrupts();
        crate::cpu::halt();
    }
}

fn triple_fault() -> ! {
    let empty = DescriptorTablePointer { limit: 0, base: VirtAddr::zero() };
    // SAFETY: loading an empty IDT and raising an exception makes the CPU
    // shut down (triple fault), which is the intent.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("ud2", options(noreturn));
    }
}
