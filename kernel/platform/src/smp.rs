//! Starting the application processors (INIT-SIPI-SIPI).
//!
//! A start-up IPI starts a processor in real mode at a page below 1 MiB. A
//! trampoline copied to [`TRAMPOLINE_PADDR`] takes it through protected mode
//! into long mode on the kernel's page tables (which map the trampoline's
//! page at its own address while processors start), onto its idle thread's
//! stack, and into [`ap_entry`]. Processors start one after another: each
//! gets the trampoline's data slots to itself.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::acpi::Processor;
use crate::memory::{self, PhysicalRange};
use crate::percpu::MAX_CPUS;
use crate::{apic, cpu, interrupts, paging, percpu, sched, syscall, time};

/// Where the trampoline runs: page 8, free low memory on every hypervisor
/// the kernel knows once boot structures have been read.
const TRAMPOLINE_PADDR: u64 = 0x8000;
const STARTUP_PAGE: u8 = (TRAMPOLINE_PADDR >> 12) as u8;

static STARTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static USES_XSAVE: AtomicBool = AtomicBool::new(false);
static STARTED_COUNT: AtomicUsize = AtomicUsize::new(1);

unsafe extern "C" {
    static rosv_ap_trampoline_start: u8;
    static rosv_ap_trampoline_end: u8;
    static rosv_ap_trampoline_cr3: u8;
    static rosv_ap_trampoline_stack: u8;
    static rosv_ap_trampoline_index: u8;
    static rosv_ap_trampoline_entry: u8;
}

/// The trampoline's bytes as linked into the kernel.
fn trampoline() -> &'static [u8] {
    let start = &raw const rosv_ap_trampoline_start;
    let end = &raw const rosv_ap_trampoline_end as usize;
    // SAFETY: both symbols delimit the trampoline in `.rodata`, which is
    // mapped and never written.
    unsafe { core::slice::from_raw_parts(start, end - start as usize) }
}

/// The physical address of a trampoline data slot, once copied.
fn slot(symbol: *const u8) -> u64 {
    TRAMPOLINE_PADDR + (symbol as u64 - &raw const rosv_ap_trampoline_start as u64)
}

fn write_slot(symbol: *const u8, value: u64) {
    let address = memory::physical_to_virtual(slot(symbol));
    // SAFETY: the slot lies in the trampoline page, which belongs to the
    // processor start-up while it runs (nothing else uses low memory).
    unsafe { core::ptr::write_volatile(address as *mut u64, value) };
}

/// Starts every usable processor in `processors` except this one; returns
/// how many processors run (this one included). `uses_xsave` is passed on to
/// each processor's setup.
pub fn start_application_processors(processors: &[Processor], uses_xsave: bool) -> usize {
    USES_XSAVE.store(uses_xsave, Ordering::Relaxed);
    let me = apic::id();
    let others: alloc::vec::Vec<u32> = processors
        .iter()
        .filter(|processor| processor.is_usable && processor.apic_id != me)
        .map(|processor| processor.apic_id)
        .take(MAX_CPUS - 1)
        .collect();
    if others.is_empty() {
        return 1;
    }
    let code = trampoline();
    if code.len() > 4096 {
        log::warn!("smp: the trampoline does not fit in a page; running on one processor");
        return 1;
    }
    let destination = memory::physical_to_virtual(TRAMPOLINE_PADDR) as *mut u8;
    // SAFETY: the trampoline page is free low memory, mapped through the
    // physical map, and the trampoline fits in it (checked above).
    unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), destination, code.len()) };
    write_slot(&raw const rosv_ap_trampoline_cr3, paging::level_4_table_paddr());
    write_slot(&raw const rosv_ap_trampoline_entry, ap_entry as *const () as u64);
    if !paging::map_identity(PhysicalRange { start: TRAMPOLINE_PADDR, size: 4096 }) {
        log::warn!("smp: cannot map the trampoline; running on one processor");
        return 1;
    }
    for (offset, &apic_id) in others.iter().enumerate() {
        let index = offset + 1;
        percpu::prepare_cpu(index);
        let stack = sched::prepare_ap(index, apic_id);
        write_slot(&raw const rosv_ap_trampoline_stack, stack);
        write_slot(&raw const rosv_ap_trampoline_index, index as u64);
        if start(index, apic_id) {
            STARTED_COUNT.fetch_add(1, Ordering::Relaxed);
            log::debug!("smp: processor {index} (APIC id {apic_id}) is up");
        } else {
            log::warn!("smp: processor with APIC id {apic_id} did not start");
        }
    }
    paging::unmap_identity(PhysicalRange { start: TRAMPOLINE_PADDR, size: 4096 });
    STARTED_COUNT.load(Ordering::Relaxed)
}

/// INIT, then start-up IPIs until the processor reports in. A processor
/// normally answers within microseconds; the second wait is long because
/// one that answers after we gave up would run on the next one's stack or
/// find the trampoline unmapped (a triple fault resets the machine), and an
/// emulated processor on an overloaded host was seen to take over 2 s. Ten
/// seconds is what Linux waits too.
fn start(index: usize, apic_id: u32) -> bool {
    apic::send_init(apic_id);
    spin_for_ns(10_000);
    for wait_ns in [1_000_000, 10_000_000_000] {
        apic::send_startup(apic_id, STARTUP_PAGE);
        let deadline = time::since_boot_ns() + wait_ns;
        while time::since_boot_ns() < deadline {
            if STARTED[index].load(Ordering::Acquire) {
                return true;
            }
            core::hint::spin_loop();
        }
    }
    false
}

fn spin_for_ns(duration: u64) {
    let deadline = time::since_boot_ns() + duration;
    while time::since_boot_ns() < deadline {
        core::hint::spin_loop();
    }
}

/// The first Rust code on an application processor, on its idle stack.
extern "C" fn ap_entry(index: u64) -> ! {
    let index = index as usize;
    percpu::load(index);
    interrupts::load();
    cpu::init_control_registers();
    let features = cpu::features();
    cpu::init_extended_state(&features, USES_XSAVE.load(Ordering::Relaxed));
    syscall::init_cpu();
    apic::init_local();
    STARTED[index].store(true, Ordering::Release);
    sched::start_ap(index)
}

global_asm!(
    r#"
    .set TRAMPOLINE, {trampoline}
    .section .rodata.rosv_ap_trampoline, "a"
    .balign 16
    .global rosv_ap_trampoline_start
    .global rosv_ap_trampoline_end
    .global rosv_ap_trampoline_cr3
    .global rosv_ap_trampoline_stack
    .global rosv_ap_trampoline_index
    .global rosv_ap_trampoline_entry
rosv_ap_trampoline_start:
    .code16
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (rosv_ap_gdt_pointer - rosv_ap_trampoline_start)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $(TRAMPOLINE + rosv_ap_protected - rosv_ap_trampoline_start)

    .code32
rosv_ap_protected:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov (TRAMPOLINE + rosv_ap_trampoline_cr3 - rosv_ap_trampoline_start), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $((1 << 8) | (1 << 11) | 1), %eax
    wrmsr
    mov %cr0, %eax
    or $(1 << 31), %eax
    mov %eax, %cr0
    ljmp $0x18, $(TRAMPOLINE + rosv_ap_long - rosv_ap_trampoline_start)

    .code64
rosv_ap_long:
    mov (TRAMPOLINE + rosv_ap_trampoline_stack - rosv_ap_trampoline_start), %rsp
    mov (TRAMPOLINE + rosv_ap_trampoline_index - rosv_ap_trampoline_start), %rdi
    mov (TRAMPOLINE + rosv_ap_trampoline_entry - rosv_ap_trampoline_start), %rax
    xor %ebp, %ebp
    jmp *%rax

    .balign 8
rosv_ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
rosv_ap_gdt_end:
rosv_ap_gdt_pointer:
    .word rosv_ap_gdt_end - rosv_ap_gdt - 1
    .long TRAMPOLINE + rosv_ap_gdt - rosv_ap_trampoline_start
    .balign 8
rosv_ap_trampoline_cr3:
    .quad 0
rosv_ap_trampoline_stack:
    .quad 0
rosv_ap_trampoline_index:
    .quad 0
rosv_ap_trampoline_entry:
    .quad 0
rosv_ap_trampoline_end:
    .code64
    "#,
    trampoline = const TRAMPOLINE_PADDR,
    options(att_syntax),
);
