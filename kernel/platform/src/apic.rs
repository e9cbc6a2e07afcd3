//! The local APIC: interrupts' end, inter-processor interrupts, the timer.
//!
//! x2APIC mode (registers as MSRs) when the processor has it, else xAPIC
//! (registers in a 4 KiB MMIO page, mapped uncached). Register offsets are
//! the xAPIC ones (Intel SDM vol. 3A §11.4.1); in x2APIC mode register
//! `offset` is MSR `0x800 + offset / 16` (§11.12.1).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

use crate::calibration::{self, CountReading};
use crate::cpu;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const IA32_TSC_DEADLINE: u32 = 0x6e0;

const ID: u32 = 0x20;
const TASK_PRIORITY: u32 = 0x80;
const END_OF_INTERRUPT: u32 = 0xb0;
const SPURIOUS_VECTOR_REGISTER: u32 = 0xf0;
const ERROR_STATUS: u32 = 0x280;
const INTERRUPT_COMMAND_LOW: u32 = 0x300;
const INTERRUPT_COMMAND_HIGH: u32 = 0x310;
const LVT_TIMER: u32 = 0x320;
const LVT_LINT0: u32 = 0x350;
const LVT_LINT1: u32 = 0x360;
const LVT_ERROR: u32 = 0x370;
const TIMER_INITIAL_COUNT: u32 = 0x380;
const TIMER_CURRENT_COUNT: u32 = 0x390;
const TIMER_DIVIDE: u32 = 0x3e0;

const SOFTWARE_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const TIMER_MODE_TSC_DEADLINE: u32 = 0b10 << 17;
const DIVIDE_BY_1: u32 = 0b1011;
const DELIVERY_PENDING: u32 = 1 << 12;
const DELIVERY_NMI: u32 = 0b100 << 8;
const DELIVERY_INIT: u32 = 0b101 << 8;
const DELIVERY_STARTUP: u32 = 0b110 << 8;
const LEVEL_ASSERT: u32 = 1 << 14;

/// The vector of spurious interrupts (its low four bits must be ones).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The vector of APIC errors.
pub const ERROR_VECTOR: u8 = 0xfe;
/// The vector of the local timer.
pub const TIMER_VECTOR: u8 = 0xf0;

static IS_X2APIC: AtomicBool = AtomicBool::new(false);
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0);
static HAS_TSC_DEADLINE: AtomicBool = AtomicBool::new(false);
/// Timer ticks per second in one-shot mode (divide by 1).
static TIMER_HZ: AtomicU64 = AtomicU64::new(0);

fn read(register: u32) -> u32 {
    if IS_X2APIC.load(Ordering::Relaxed) {
        // SAFETY: reading an x2APIC register MSR has no side effect (the
        // registers read here are ID, ESR, the timer's, the task priority
        // and the in-service and request bits).
        unsafe { Msr::new(0x800 + register / 16).read() as u32 }
    } else {
        let address = XAPIC_BASE.load(Ordering::Relaxed) + u64::from(register);
        // SAFETY: the xAPIC page is mapped uncached by `init_bootstrap`, and
        // `register` is one of the offsets above, all 4-byte aligned.
        unsafe { core::ptr::read_volatile(address as *const u32) }
    }
}

fn write(register: u32, value: u32) {
    if IS_X2APIC.load(Ordering::Relaxed) {
        // SAFETY: writing the local APIC's own registers affects only
        // interrupt delivery, which this module manages.
        unsafe { Msr::new(0x800 + register / 16).write(u64::from(value)) }
    } else {
        let address = XAPIC_BASE.load(Ordering::Relaxed) + u64::from(register);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(address as *mut u32, value) }
    }
}

/// Chooses the APIC mode and maps the xAPIC page if needed, on the boot
/// processor; `local_apic_address` comes from the MADT or MP table.
pub fn init_bootstrap(features: &cpu::Features, local_apic_address: u64) -> bool {
    IS_X2APIC.store(features.has_x2apic, Ordering::Relaxed);
    HAS_TSC_DEADLINE.store(features.has_tsc_deadline, Ordering::Relaxed);
    if !features.has_x2apic {
        let Some(base) = crate::paging::map_device(local_apic_address, 4096) else {
            return false;
        };
        XAPIC_BASE.store(base, Ordering::Relaxed);
    }
    init_local();
    if !features.has_tsc_deadline {
        calibrate_timer();
    }
    true
}

/// Enables this processor's local APIC: spurious and error vectors, no
/// task priority, LINT0 masked (the 8259 is unused), LINT1 as NMI, timer
/// masked.
pub fn init_local() {
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: setting the global enable (and x2APIC mode where CPUID has it)
    // in IA32_APIC_BASE keeps the APIC's address; it only turns it on.
    unsafe {
        let mut base = msr.read() | APIC_BASE_ENABLE;
        if IS_X2APIC.load(Ordering::Relaxed) {
            base |= APIC_BASE_X2APIC;
        }
        msr.write(base);
    }
    write(TASK_PRIORITY, 0);
    write(LVT_LINT0, LVT_MASKED);
    // LINT1 carries NMIs (the wiring every PC uses), which the hypervisor
    // can raise to ask what each processor is doing.
    write(LVT_LINT1, DELIVERY_NMI);
    write(LVT_ERROR, u32::from(ERROR_VECTOR));
    write(LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(SPURIOUS_VECTOR_REGISTER, SOFTWARE_ENABLE | u32::from(SPURIOUS_VECTOR));
    write(ERROR_STATUS, 0);
    end_of_interrupt();
}

/// This processor's APIC id.
pub fn id() -> u32 {
    let value = read(ID);
    if IS_X2APIC.load(Ordering::Relaxed) { value } else { value >> 24 }
}

/// Signals the end of the interrupt being handled.
pub fn end_of_interrupt() {
    write(END_OF_INTERRUPT, 0);
}

/// Reads and clears the error status.
pub fn take_error() -> u32 {
    write(ERROR_STATUS, 0);
    read(ERROR_STATUS)
}

fn send(destination: u32, command: u32) {
    if IS_X2APIC.load(Ordering::Relaxed) {
        // SAFETY: the interrupt command register sends an IPI; the callers
        // send only the vectors and start-up sequences this kernel handles.
        unsafe { Msr::new(0x830).write((u64::from(destination) << 32) | u64::from(command)) }
    } else {
        write(INTERRUPT_COMMAND_HIGH, destination << 24);
        write(INTERRUPT_COMMAND_LOW, command);
        while read(INTERRUPT_COMMAND_LOW) & DELIVERY_PENDING != 0 {
            core::hint::spin_loop();
        }
    }
}

/// Sends interrupt `vector` to the processor with APIC id `destination`.
pub fn send_ipi(destination: u32, vector: u8) {
    send(destination, u32::from(vector));
}

/// Sends an INIT IPI (Intel SDM vol. 3A §8.4.4.1).
pub fn send_init(destination: u32) {
    send(destination, DELIVERY_INIT | LEVEL_ASSERT);
}

/// Sends a start-up IPI that starts the processor in real mode at
/// physical address `page << 12`.
pub fn send_startup(destination: u32, page: u8) {
    send(destination, DELIVERY_STARTUP | u32::from(page));
}

/// Arms this processor's timer to interrupt at TSC value `deadline`
/// (immediately if it has passed). `sets_mode` also programs its mode and
/// vector, which only a timer [`disarm_timer`] masked (or one never armed)
/// needs.
pub fn arm_timer(deadline: u64, sets_mode: bool) {
    if HAS_TSC_DEADLINE.load(Ordering::Relaxed) {
        if sets_mode {
            write(LVT_TIMER, TIMER_MODE_TSC_DEADLINE | u32::from(TIMER_VECTOR));
        }
        // SAFETY: IA32_TSC_DEADLINE only arms the timer.
        unsafe { Msr::new(IA32_TSC_DEADLINE).write(deadline.max(1)) };
        return;
    }
    let now = cpu::read_tsc();
    let ticks_ns = crate::time::ticks_to_ns(deadline.saturating_sub(now));
    let count = (u128::from(ticks_ns) * u128::from(TIMER_HZ.load(Ordering::Relaxed)) / 1_000_000_000)
        .clamp(1, u128::from(u32::MAX)) as u32;
    if sets_mode {
        write(LVT_TIMER, u32::from(TIMER_VECTOR));
        write(TIMER_DIVIDE, DIVIDE_BY_1);
    }
    write(TIMER_INITIAL_COUNT, count);
}

/// The address and data of a message-signalled interrupt (MSI or MSI-X)
/// delivering `vector` to the processor with APIC id `destination`: fixed
/// delivery, edge-triggered, physical destination (Intel SDM vol. 3
/// §11.11.1, 11.11.2).
pub fn msi_message(vector: u8, destination: u32) -> (u64, u32) {
    (0xfee0_0000 | u64::from(destination & 0xff) << 12, u32::from(vector))
}

/// Stops this processor's timer.
pub fn disarm_timer() {
    write(LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    if HAS_TSC_DEADLINE.load(Ordering::Relaxed) {
        // SAFETY: writing 0 disarms the TSC-deadline timer.
        unsafe { Msr::new(IA32_TSC_DEADLINE).write(0) };
    } else {
        write(TIMER_INITIAL_COUNT, 0);
    }
}

/// Measures the one-shot timer's frequency against the TSC. The timer
/// counts at tens of MHz or more, so a quarter of a millisecond gives its
/// rate to better than a part in a thousand, provided each count is paired
/// with the TSC of the same moment (see `calibration`): each end of the
/// window takes the tightest of several bracketed readings, and the rate
/// is the median of three windows.
fn calibrate_timer() {
    const WINDOW_NS: u64 = 250_000;
    const WINDOWS: usize = 3;
    const READINGS: usize = 8;
    let read_pair = || {
        let readings: [CountReading; READINGS] = core::array::from_fn(|_| {
            let tsc_before = cpu::read_tsc();
            let count = read(TIMER_CURRENT_COUNT);
            CountReading { tsc_before, count, tsc_after: cpu::read_tsc() }
        });
        calibration::tightest(&readings).expect("there are readings")
    };
    write(LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(TIMER_DIVIDE, DIVIDE_BY_1);
    let tsc_hz = crate::time::tsc_hz();
    let mut rates = [0u64; WINDOWS];
    for rate in &mut rates {
        write(TIMER_INITIAL_COUNT, u32::MAX);
        let start = read_pair();
        let end_tsc = start.0 + WINDOW_NS * tsc_hz / 1_000_000_000;
        while cpu::read_tsc() < end_tsc {
            core::hint::spin_loop();
        }
        let end = read_pair();
        *rate = calibration::counting_rate_hz(start, end, tsc_hz).unwrap_or(1);
    }
    write(TIMER_INITIAL_COUNT, 0);
    rates.sort_unstable();
    TIMER_HZ.store(rates[WINDOWS / 2], Ordering::Relaxed);
}

/// What this processor's local APIC holds, for reports of a stuck machine.
#[derive(Debug, Clone, Copy)]
pub struct ApicState {
    /// The timer's local vector table entry.
    pub lvt_timer: u32,
    /// The one-shot timer's initial and current counts.
    pub timer_counts: (u32, u32),
    /// IA32_TSC_DEADLINE, in TSC-deadline mode.
    pub tsc_deadline: Option<u64>,
    /// The in-service and requested bits of vectors 0xe0..=0xff (the
    /// kernel's own vectors): an in-service bit that stays set blocks every
    /// interrupt of its priority class and below.
    pub in_service_high: u32,
    /// See `in_service_high`.
    pub requested_high: u32,
    /// The task priority.
    pub task_priority: u32,
}

/// Reads this processor's local APIC state (registers without side
/// effects only, so an NMI may call it).
pub fn state() -> ApicState {
    const IN_SERVICE_224: u32 = 0x170;
    const REQUESTED_224: u32 = 0x270;
    let tsc_deadline = HAS_TSC_DEADLINE.load(Ordering::Relaxed).then(|| {
        // SAFETY: reading IA32_TSC_DEADLINE has no side effect.
        unsafe { Msr::new(IA32_TSC_DEADLINE).read() }
    });
    ApicState {
        lvt_timer: read(LVT_TIMER),
        timer_counts: (read(TIMER_INITIAL_COUNT), read(TIMER_CURRENT_COUNT)),
        tsc_deadline,
        in_service_high: read(IN_SERVICE_224),
        requested_high: read(REQUESTED_224),
        task_priority: read(TASK_PRIORITY),
    }
}

/// Whether the timer counts in TSC-deadline mode.
pub fn has_tsc_deadline() -> bool {
    HAS_TSC_DEADLINE.load(Ordering::Relaxed)
}

/// Whether the APIC runs in x2APIC mode.
pub fn is_x2apic() -> bool {
    IS_X2APIC.load(Ordering::Relaxed)
}
