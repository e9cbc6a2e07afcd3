//! Per-CPU state: the GDT, the TSS with its interrupt stacks, and the block
//! that GS points at.
//!
//! The syscall entry finds the current thread's kernel stack through GS (at
//! fixed offsets of [`PerCpu`]), because application code runs in ring 0 and
//! `syscall` does not switch stacks. Every interrupt and exception runs on an
//! IST stack, so nothing is ever pushed onto an application's stack, whose
//! red zone (the 128 bytes below RSP) may hold live data.

use core::cell::UnsafeCell;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in the IDT, 0-based in the TSS) for exceptions.
pub(crate) const EXCEPTION_IST: u16 = 0;
/// IST slot for double faults, so a kernel stack overflow is still reported.
pub(crate) const DOUBLE_FAULT_IST: u16 = 1;
/// IST slot for NMIs and machine checks.
pub(crate) const NMI_IST: u16 = 2;
/// IST slot for device interrupts.
pub(crate) const INTERRUPT_IST: u16 = 3;
const IST_STACK_SIZE: usize = 32 * 1024;
const IST_STACKS: usize = 4;

/// Offset of [`PerCpu::syscall_user_rsp`] from GS.
pub(crate) const SYSCALL_USER_RSP_OFFSET: usize = 8;
/// Offset of [`PerCpu::kernel_stack_top`] from GS.
pub(crate) const KERNEL_STACK_TOP_OFFSET: usize = 16;

/// The block GS points at. Its layout is read by assembly.
#[repr(C)]
#[derive(Debug)]
struct PerCpu {
    self_pointer: u64,
    syscall_user_rsp: u64,
    kernel_stack_top: u64,
    cpu_index: u64,
}

#[repr(C, align(16))]
struct IstStacks(UnsafeCell<[[u8; IST_STACK_SIZE]; IST_STACKS]>);

// SAFETY: each stack is used only by the CPU hardware when it delivers an
// interrupt through the TSS; Rust code never forms references into it.
unsafe impl Sync for IstStacks {}

struct PerCpuCell(UnsafeCell<PerCpu>);

// SAFETY: the block belongs to the boot CPU; it is written through GS by
// that CPU only (with interrupts off in the syscall entry) and by
// `set_kernel_stack_top`, which runs on the same CPU.
unsafe impl Sync for PerCpuCell {}

static BOOT_CPU: PerCpuCell = PerCpuCell(UnsafeCell::new(PerCpu {
    self_pointer: 0,
    syscall_user_rsp: 0,
    kernel_stack_top: 0,
    cpu_index: 0,
}));
static BOOT_IST_STACKS: IstStacks = IstStacks(UnsafeCell::new([[0; IST_STACK_SIZE]; IST_STACKS]));
static BOOT_TSS: Once<TaskStateSegment> = Once::new();
static BOOT_GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

#[derive(Debug, Clone, Copy)]
struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// The kernel code selector, which `syscall` loads from STAR.
pub(crate) const KERNEL_CODE_SELECTOR: u16 = 0x08;

/// Installs the boot CPU's GDT, TSS and GS block.
pub(crate) fn init_boot_cpu() {
    let tss = BOOT_TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let stacks = BOOT_IST_STACKS.0.get() as u64;
        for slot in 0..IST_STACKS {
            let top = stacks + ((slot + 1) * IST_STACK_SIZE) as u64;
            tss.interrupt_stack_table[slot] = VirtAddr::new(top);
        }
        tss
    });
    let (gdt, selectors) = BOOT_GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    debug_assert_eq!(selectors.code.0, KERNEL_CODE_SELECTOR);
    gdt.load();
    // SAFETY: (1) the selectors index the GDT just loaded, whose code and data
    // descriptors are flat 64-bit kernel segments; (2) the TSS descriptor
    // points at a static TSS, loaded once on this CPU.
    unsafe {
        CS::set_reg(selectors.code);
        SS::set_reg(selectors.data);
        DS::set_reg(selectors.data);
        ES::set_reg(selectors.data);
        load_tss(selectors.tss);
    }
    let block = BOOT_CPU.0.get();
    // SAFETY: the block is static and only this CPU touches it; GS is loaded
    // with its address right after, before any code reads through GS.
    unsafe {
        (*block).self_pointer = block as u64;
        crate::cpu::set_gs_base(block as u64);
    }
}

/// Sets the stack the next `syscall` on this CPU switches to.
pub(crate) fn set_kernel_stack_top(top: u64) {
    let block = BOOT_CPU.0.get();
    // SAFETY: the field is read only by the syscall entry on this CPU, which
    // cannot run concurrently with this store on the same CPU.
    unsafe { (*block).kernel_stack_top = top };
}
