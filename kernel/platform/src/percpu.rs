//! Per-CPU state: the GDT, the TSS with its interrupt stacks, and the block
//! that GS points at.
//!
//! The syscall entry finds the current thread's kernel stack through GS (at
//! fixed offsets of [`PerCpu`]), because application code runs in ring 0 and
//! `syscall` does not switch stacks. Every interrupt and exception runs on an
//! IST stack, so nothing is ever pushed onto an application's stack, whose
//! red zone (the 128 bytes below RSP) may hold live data. The exception and
//! interrupt stacks belong to the running thread (the scheduler points the
//! TSS at them on every switch), so a thread can block or be preempted
//! inside a handler; double faults and NMIs use per-CPU stacks.

use core::cell::UnsafeCell;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// The most processors the kernel drives.
pub const MAX_CPUS: usize = 64;

/// IST slot (0-based in the TSS) for exceptions: the thread's own stack.
pub(crate) const EXCEPTION_IST: u16 = 0;
/// IST slot for double faults, so a kernel stack overflow is still reported.
pub(crate) const DOUBLE_FAULT_IST: u16 = 1;
/// IST slot for NMIs, debug exceptions and machine checks.
pub(crate) const NMI_IST: u16 = 2;
/// IST slot for device interrupts: the thread's own stack.
pub(crate) const INTERRUPT_IST: u16 = 3;
/// Size of the per-CPU double-fault and NMI stacks.
const EMERGENCY_STACK_SIZE: usize = 16 * 1024;

/// Offset of [`PerCpu::syscall_user_rsp`] from GS.
pub(crate) const SYSCALL_USER_RSP_OFFSET: usize = 8;
/// Offset of [`PerCpu::kernel_stack_top`] from GS.
pub(crate) const KERNEL_STACK_TOP_OFFSET: usize = 16;
/// Offset of [`PerCpu::cpu_index`] from GS.
const CPU_INDEX_OFFSET: usize = 24;

/// The block GS points at. Its layout is read by assembly.
#[repr(C)]
#[derive(Debug)]
struct PerCpu {
    self_pointer: u64,
    syscall_user_rsp: u64,
    kernel_stack_top: u64,
    cpu_index: u64,
}

struct Slot {
    block: UnsafeCell<PerCpu>,
    tss: UnsafeCell<TaskStateSegment>,
    gdt: Once<(GlobalDescriptorTable, Selectors)>,
}

// SAFETY: slot `n` is written only by CPU `n` (its block through GS with
// interrupts off, its TSS when that CPU switches threads) and, before CPU
// `n` starts, by the CPU that prepares it.
unsafe impl Sync for Slot {}

static SLOTS: [Slot; MAX_CPUS] = [const {
    Slot {
        block: UnsafeCell::new(PerCpu {
            self_pointer: 0,
            syscall_user_rsp: 0,
            kernel_stack_top: 0,
            cpu_index: 0,
        }),
        tss: UnsafeCell::new(TaskStateSegment::new()),
        gdt: Once::new(),
    }
}; MAX_CPUS];

#[repr(C, align(16))]
struct BootStacks(UnsafeCell<[[u8; EMERGENCY_STACK_SIZE]; 4]>);

// SAFETY: only the boot processor's TSS points into these stacks, and only
// the hardware uses them, when it delivers an exception or interrupt.
unsafe impl Sync for BootStacks {}

/// The boot processor's stacks until threads bring their own: exceptions,
/// double faults, NMIs, interrupts.
static BOOT_STACKS: BootStacks = BootStacks(UnsafeCell::new([[0; EMERGENCY_STACK_SIZE]; 4]));

#[derive(Debug, Clone, Copy)]
struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// The kernel code selector, which `syscall` loads from STAR.
pub(crate) const KERNEL_CODE_SELECTOR: u16 = 0x08;

/// Installs the boot CPU's GDT, TSS and GS block (CPU index 0), with static
/// stacks for every IST slot.
pub(crate) fn init_boot_cpu() {
    let stacks = BOOT_STACKS.0.get() as u64;
    let top = |slot: u64| stacks + (slot + 1) * EMERGENCY_STACK_SIZE as u64;
    // SAFETY: CPU 0's slot, prepared by CPU 0 before its TSS is loaded.
    unsafe {
        let tss = &mut *SLOTS[0].tss.get();
        tss.interrupt_stack_table[usize::from(EXCEPTION_IST)] = VirtAddr::new(top(0));
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] = VirtAddr::new(top(1));
        tss.interrupt_stack_table[usize::from(NMI_IST)] = VirtAddr::new(top(2));
        tss.interrupt_stack_table[usize::from(INTERRUPT_IST)] = VirtAddr::new(top(3));
    }
    load(0);
}

/// Prepares the per-CPU slot of application processor `index`, with fresh
/// double-fault and NMI stacks; called before the processor starts.
pub(crate) fn prepare_cpu(index: usize) {
    let stacks: &'static mut [u128] =
        alloc::boxed::Box::leak(alloc::vec![0u128; 2 * EMERGENCY_STACK_SIZE / 16].into_boxed_slice());
    let base = stacks.as_ptr() as u64;
    // SAFETY: the processor has not started, so nothing else uses its slot.
    unsafe {
        let tss = &mut *SLOTS[index].tss.get();
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] =
            VirtAddr::new(base + EMERGENCY_STACK_SIZE as u64);
        tss.interrupt_stack_table[usize::from(NMI_IST)] =
            VirtAddr::new(base + 2 * EMERGENCY_STACK_SIZE as u64);
    }
}

/// Loads slot `index`'s GDT, TSS and GS block on the calling processor.
pub(crate) fn load(index: usize) {
    let slot = &SLOTS[index];
    let (gdt, selectors) = slot.gdt.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        // SAFETY: the TSS is static and lives in this slot for good.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(slot.tss.get()) });
        (gdt, Selectors { code, data, tss })
    });
    debug_assert_eq!(selectors.code.0, KERNEL_CODE_SELECTOR);
    gdt.load();
    // SAFETY: (1) the selectors index the GDT just loaded, whose code and data
    // descriptors are flat 64-bit kernel segments; (2) the TSS descriptor
    // points at this slot's TSS, loaded once, by this processor only.
    unsafe {
        CS::set_reg(selectors.code);
        SS::set_reg(selectors.data);
        DS::set_reg(selectors.data);
        ES::set_reg(selectors.data);
        load_tss(selectors.tss);
    }
    let block = slot.block.get();
    // SAFETY: the block belongs to this processor; GS is loaded with its
    // address right after, before any code reads through GS.
    unsafe {
        (*block).self_pointer = block as u64;
        (*block).cpu_index = index as u64;
        crate::cpu::set_gs_base(block as u64);
    }
}

/// The index of the calling processor (0 for the boot processor).
pub fn current_index() -> usize {
    let index: u64;
    // SAFETY: GS points at this processor's block from `load` on, and the
    // index field is at a fixed offset.
    unsafe {
        core::arch::asm!("mov {}, gs:[{offset}]", out(reg) index, offset = const CPU_INDEX_OFFSET, options(nostack, readonly, preserves_flags))
    };
    index as usize
}

/// The top of the running thread's kernel stack.
pub(crate) fn kernel_stack_top() -> u64 {
    let slot = &SLOTS[current_index()];
    // SAFETY: this processor's own slot; the field is written only by this
    // processor, with interrupts disabled, when it switches threads.
    unsafe { (*slot.block.get()).kernel_stack_top }
}

/// Points the calling processor at a thread's stacks: `kernel` for system
/// calls, `exception` and `interrupt` for the IST.
pub(crate) fn set_thread_stacks(kernel: u64, exception: u64, interrupt: u64) {
    let slot = &SLOTS[current_index()];
    // SAFETY: this processor's own slot, written with interrupts disabled
    // (the scheduler switches threads with interrupts off); the hardware reads
    // the TSS only when it delivers the next interrupt.
    unsafe {
        (*slot.block.get()).kernel_stack_top = kernel;
        let tss = &mut *slot.tss.get();
        tss.interrupt_stack_table[usize::from(EXCEPTION_IST)] = VirtAddr::new(exception);
        tss.interrupt_stack_table[usize::from(INTERRUPT_IST)] = VirtAddr::new(interrupt);
    }
}
