//! The interrupt descriptor table and the dispatch of exceptions.
//!
//! All 256 vectors enter through small assembly stubs that push a uniform
//! [`InterruptFrame`] and call [`dispatch`]. Page faults in the application
//! half are first offered to the kernel's memory manager (demand paging);
//! faults inside the user-copy routines turn into `EFAULT`; other faults in
//! application code go to the kernel's application-fault hook (a signal);
//! faults in kernel code are fatal and reported with a backtrace.

use core::arch::global_asm;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::InterruptDescriptorTable;

use crate::apic;
use crate::memory::USER_END;
use crate::percpu::{DOUBLE_FAULT_IST, EXCEPTION_IST, INTERRUPT_IST, NMI_IST};
use crate::{diagnostics, user};

/// Vector of the non-maskable interrupt.
const NON_MASKABLE_INTERRUPT: u64 = 2;
/// Vector of the page fault exception.
const PAGE_FAULT: u64 = 14;
/// Size of each entry stub (see the assembly below).
const STUB_SIZE: u64 = 16;

/// The registers saved on entry, in the order the stubs push them.
#[repr(C)]
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct InterruptFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// The vector number.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The kind of access that caused a page fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

/// Why application code was diverted into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diversion {
    /// It faulted and demand paging could not help.
    Fault {
        /// The exception vector.
        vector: u8,
        /// The faulting address, for page faults.
        address: Option<u64>,
    },
    /// An interrupt arrived while it ran, and the thread was asked for
    /// attention ([`crate::sched::request_attention`]): a signal is
    /// pending.
    Attention,
}

/// What the kernel provides to handle faults and diversions.
#[derive(Debug, Clone, Copy)]
pub struct FaultHandlers {
    /// Tries to make `address` accessible (demand paging); `true` if the
    /// faulting instruction may run again.
    pub resolve_page_fault: fn(address: u64, access: Access) -> bool,
    /// Runs on the thread's kernel stack, with interrupts disabled, when
    /// application code was diverted: it may change the registers the code
    /// resumes with (to run a signal handler) or end the thread.
    pub diverted: fn(frame: &mut InterruptFrame, diversion: Diversion),
}

static HANDLERS: Once<FaultHandlers> = Once::new();
static IDT: Once<InterruptDescriptorTable> = Once::new();

unsafe extern "C" {
    static rosv_interrupt_stubs: u8;
}

/// Masks every line of the legacy 8259 PICs: the kernel takes device
/// interrupts through the APIC.
fn mask_legacy_pic() {
    // SAFETY: writing the interrupt mask registers of both PICs only stops
    // them from raising interrupts.
    unsafe {
        x86_64::instructions::port::Port::<u8>::new(0x21).write(0xff);
        x86_64::instructions::port::Port::<u8>::new(0xa1).write(0xff);
    }
}

/// Loads the IDT (built by [`init`]) on an application processor.
pub(crate) fn load() {
    if let Some(idt) = IDT.get() {
        idt.load();
    }
}

/// Installs the IDT on the boot CPU.
pub(crate) fn init() {
    mask_legacy_pic();
    let idt = IDT.call_once(|| {
        let stubs = &raw const rosv_interrupt_stubs as u64;
        let stub = |vector: u64| VirtAddr::new(stubs + vector * STUB_SIZE);
        let mut idt = InterruptDescriptorTable::new();
        // SAFETY: for every entry below, the address is the stub for that
        // vector, which saves all registers, calls `dispatch` and returns with
        // IRETQ, and each IST index names a stack the TSS provides.
        unsafe {
            idt.divide_error.set_handler_addr(stub(0)).set_stack_index(EXCEPTION_IST);
            idt.debug.set_handler_addr(stub(1)).set_stack_index(NMI_IST);
            idt.non_maskable_interrupt.set_handler_addr(stub(2)).set_stack_index(NMI_IST);
            idt.breakpoint.set_handler_addr(stub(3)).set_stack_index(EXCEPTION_IST);
            idt.overflow.set_handler_addr(stub(4)).set_stack_index(EXCEPTION_IST);
            idt.bound_range_exceeded.set_handler_addr(stub(5)).set_stack_index(EXCEPTION_IST);
            idt.invalid_opcode.set_handler_addr(stub(6)).set_stack_index(EXCEPTION_IST);
            idt.device_not_available.set_handler_addr(stub(7)).set_stack_index(EXCEPTION_IST);
            idt.double_fault.set_handler_addr(stub(8)).set_stack_index(DOUBLE_FAULT_IST);
            idt.invalid_tss.set_handler_addr(stub(10)).set_stack_index(EXCEPTION_IST);
            idt.segment_not_present.set_handler_addr(stub(11)).set_stack_index(EXCEPTION_IST);
            idt.stack_segment_fault.set_handler_addr(stub(12)).set_stack_index(EXCEPTION_IST);
            idt.general_protection_fault.set_handler_addr(stub(13)).set_stack_index(EXCEPTION_IST);
            idt.page_fault.set_handler_addr(stub(14)).set_stack_index(EXCEPTION_IST);
            idt.x87_floating_point.set_handler_addr(stub(16)).set_stack_index(EXCEPTION_IST);
            idt.alignment_check.set_handler_addr(stub(17)).set_stack_index(EXCEPTION_IST);
            idt.machine_check.set_handler_addr(stub(18)).set_stack_index(NMI_IST);
            idt.simd_floating_point.set_handler_addr(stub(19)).set_stack_index(EXCEPTION_IST);
            idt.virtualization.set_handler_addr(stub(20)).set_stack_index(EXCEPTION_IST);
            idt.cp_protection_exception.set_handler_addr(stub(21)).set_stack_index(EXCEPTION_IST);
            for vector in 32..=255u8 {
                idt[vector].set_handler_addr(stub(u64::from(vector))).set_stack_index(INTERRUPT_IST);
            }
        }
        idt
    });
    idt.load();
}

/// Registers the kernel's fault handlers; later calls are ignored.
pub fn set_fault_handlers(handlers: FaultHandlers) {
    HANDLERS.call_once(|| handlers);
}

/// A device interrupt handler. It runs with interrupts disabled on the
/// interrupted thread's interrupt stack: it may wake threads, not block.
pub type InterruptHandler = alloc::boxed::Box<dyn Fn() + Send + Sync>;

/// Vectors handed out to devices, from here up.
const FIRST_DEVICE_VECTOR: u8 = 0x30;
/// One past the last device vector (the APIC's own vectors follow).
const DEVICE_VECTOR_END: u8 = 0xe0;

static DEVICE_HANDLERS: [Once<InterruptHandler>; 256] = [const { Once::new() }; 256];
static NEXT_DEVICE_VECTOR: core::sync::atomic::AtomicU8 =
    core::sync::atomic::AtomicU8::new(FIRST_DEVICE_VECTOR);

/// Gives `handler` a vector of its own; `None` when all are taken.
pub fn allocate_vector(handler: InterruptHandler) -> Option<u8> {
    let vector = NEXT_DEVICE_VECTOR.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    if vector >= DEVICE_VECTOR_END {
        return None;
    }
    DEVICE_HANDLERS[usize::from(vector)].call_once(|| handler);
    Some(vector)
}

/// Called by the stubs with interrupts disabled, on an IST stack.
extern "C" fn dispatch(frame: &mut InterruptFrame) {
    // Time in the handlers is the interrupted thread's system time when it
    // was running its own code (a diversion opens a stint of its own).
    let is_stint_opened = frame.vector != NON_MASKABLE_INTERRUPT && crate::sched::enter_kernel();
    match frame.vector {
        PAGE_FAULT => page_fault(frame),
        NON_MASKABLE_INTERRUPT => diagnostics::report_where_this_cpu_is(frame),
        0..=31 => exception(frame),
        vector => {
            crate::syscall::complete_exit(frame);
            external_interrupt(vector as u8);
            // External interrupts arrive only where interrupts were enabled:
            // in application code or an idle loop, where switching is safe.
            crate::sched::preempt_point();
            if frame.rip < USER_END {
                crate::sched::stop_point();
                if crate::sched::take_attention() {
                    divert(frame, Diversion::Attention);
                }
            }
        }
    }
    if is_stint_opened {
        crate::sched::leave_kernel();
    }
}

fn external_interrupt(vector: u8) {
    match vector {
        apic::SPURIOUS_VECTOR => {}
        apic::ERROR_VECTOR => {
            let error = apic::take_error();
            apic::end_of_interrupt();
            log::warn!("local APIC error {error:#x}");
        }
        apic::TIMER_VECTOR => {
            apic::end_of_interrupt();
            crate::sched::on_timer_interrupt();
        }
        crate::sched::RESCHEDULE_VECTOR => {
            apic::end_of_interrupt();
            crate::sched::on_reschedule_interrupt();
        }
        crate::tlb::SHOOTDOWN_VECTOR => {
            apic::end_of_interrupt();
            crate::tlb::on_shootdown_interrupt();
        }
        vector => {
            // The handler quiets its device before the end of interrupt, so
            // that a level-triggered line is not delivered again at once.
            match DEVICE_HANDLERS[usize::from(vector)].get() {
                Some(handler) => handler(),
                None => log::debug!("unexpected interrupt on vector {vector}"),
            }
            apic::end_of_interrupt();
        }
    }
}

fn page_fault(frame: &mut InterruptFrame) {
    let address = Cr2::read_raw();
    let access = if frame.error_code & (1 << 4) != 0 {
        Access::Execute
    } else if frame.error_code & (1 << 1) != 0 {
        Access::Write
    } else {
        Access::Read
    };
    if address < USER_END && crate::paging::loaded_tables_allow(address, access) {
        // Another processor widened the rights; this TLB was stale.
        x86_64::instructions::tlb::flush(VirtAddr::new(address));
        return;
    }
    if address < USER_END
        && let Some(handlers) = HANDLERS.get()
        && (handlers.resolve_page_fault)(address, access)
    {
        return;
    }
    if let Some(stack) = crate::sched::current_if_any().and_then(|thread| thread.overflowed_stack_at(address))
    {
        diagnostics::report_stack_overflow(frame, address, stack);
        crate::power::abort(rosv_abi::exit::status::KERNEL_FAILURE)
    }
    if let Some(fixup) = user::fixup_for(frame.rip) {
        frame.rip = fixup;
        return;
    }
    fail(frame, Some(address));
}

fn exception(frame: &mut InterruptFrame) {
    fail(frame, None);
}

/// Hands a fault in application code to the kernel (diverting the code to
/// it), or reports a fault in kernel code and aborts.
fn fail(frame: &mut InterruptFrame, address: Option<u64>) {
    if HANDLERS.get().is_some() && is_application_code(frame) {
        divert(frame, Diversion::Fault { vector: frame.vector as u8, address });
        return;
    }
    diagnostics::report_kernel_fault(frame, address);
    crate::power::abort(rosv_abi::exit::status::KERNEL_FAILURE)
}

/// RFLAGS.IF: interrupts enabled.
const RFLAGS_INTERRUPTS_ENABLED: u64 = 1 << 9;

/// Whether `frame` interrupted application code rather than the kernel.
/// Application code is anything below [`USER_END`]; and, since
/// applications run in ring 0, where a jump to a non-canonical or
/// kernel-half address faults at the target, also any address outside
/// the kernel's code reached by an application thread with interrupts
/// enabled: the kernel runs with them disabled except in its idle loops,
/// which lie in its code.
pub(crate) fn is_application_code(frame: &InterruptFrame) -> bool {
    if frame.rip < USER_END {
        return true;
    }
    frame.rflags & RFLAGS_INTERRUPTS_ENABLED != 0
        && !crate::layout::is_kernel_text(frame.rip)
        && crate::sched::current().kind() == crate::sched::ThreadKind::Application
}

/// The interrupted registers and the reason, where a diverted thread finds
/// them: at the top of its kernel stack.
#[repr(C)]
struct Diverted {
    frame: InterruptFrame,
    diversion: Diversion,
}

/// RFLAGS bits cleared for the kernel code a diversion runs: IF, TF, DF, AC.
const DIVERTED_RFLAGS_CLEARED: u64 = (1 << 9) | (1 << 8) | (1 << 10) | (1 << 18);

/// Makes interrupted application code continue in the kernel instead: the
/// interrupt returns into `rosv_diverted`, on the thread's kernel stack with
/// interrupts disabled, which calls the kernel's `diverted` handler with the
/// saved registers and then resumes them. The handler may block or fault,
/// which it could not do on the interrupt stack, whose next use would
/// overwrite it.
fn divert(frame: &mut InterruptFrame, diversion: Diversion) {
    let top = crate::percpu::kernel_stack_top();
    let at = (top - core::mem::size_of::<Diverted>() as u64) & !15;
    // SAFETY: the thread was running application code, so nothing lives on
    // its kernel stack (system calls use it only while they run), and `at`
    // lies within the stack's top, aligned for `Diverted`.
    unsafe { (at as *mut Diverted).write(Diverted { frame: frame.clone(), diversion }) };
    frame.rip = rosv_diverted as *const () as u64;
    frame.rsp = at;
    frame.rflags &= !DIVERTED_RFLAGS_CLEARED;
}

/// Where diverted application code continues (through `rosv_diverted`).
extern "C" fn diverted(diverted: &mut Diverted) -> ! {
    crate::sched::enter_kernel();
    if let Some(handlers) = HANDLERS.get() {
        (handlers.diverted)(&mut diverted.frame, diverted.diversion);
    }
    resume_application(&diverted.frame)
}

/// Resumes application code with every register of `frame` (RCX and R11
/// included, which the system-call return path cannot restore), after
/// giving the scheduler and a pending stop their turn.
pub fn resume_application(frame: &InterruptFrame) -> ! {
    crate::sched::preempt_point();
    crate::sched::stop_point();
    crate::sched::notice_attention_point();
    crate::sched::leave_kernel();
    let mut resumed = frame.clone();
    {
        use x86_64::instructions::segmentation::{CS, SS, Segment};
        resumed.cs = u64::from(CS::get_reg().0);
        resumed.ss = u64::from(SS::get_reg().0);
    }
    // SAFETY: `resumed` is a complete frame on this stack; the common exit
    // pops its registers and returns through IRETQ, abandoning the stack
    // below it, which nothing needs any more.
    unsafe {
        core::arch::asm!(
            "mov rsp, {}",
            "jmp rosv_interrupt_return",
            in(reg) &raw const resumed,
            options(noreturn)
        )
    }
}

unsafe extern "C" {
    fn rosv_diverted();
}

/// The name of an exception vector.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        2 => "non-maskable interrupt",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range exceeded",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack-segment fault",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point exception",
        17 => "alignment check",
        18 => "machine check",
        19 => "SIMD floating-point exception",
        20 => "virtualization exception",
        21 => "control protection exception",
        _ => "exception",
    }
}

// One 16-byte stub per vector. Vectors for which the CPU pushes no error code
// push a zero, so every frame has the same shape (Intel SDM vol. 3A §6.13).
global_asm!(
    r#"
    .section .text.rosv_interrupts, "ax"
    .balign 16
    .global rosv_interrupt_stubs
rosv_interrupt_stubs:
    .set vector, 0
    .rept 256
    .balign 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push $0
    .endif
    push $vector
    jmp rosv_interrupt_common
    .set vector, vector + 1
    .endr

rosv_interrupt_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    cld
    call {dispatch}
    .global rosv_interrupt_return
rosv_interrupt_return:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

    .global rosv_diverted
rosv_diverted:
    mov %rsp, %rdi
    cld
    call {diverted}
    ud2
    "#,
    dispatch = sym dispatch,
    diverted = sym diverted,
    options(att_syntax),
);
