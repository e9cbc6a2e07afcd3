//! The `syscall` instruction's entry point.
//!
//! Applications run in ring 0, so `syscall` changes neither privilege nor
//! stack (Intel SDM vol. 2B, SYSCALL): it leaves the return address in RCX
//! and RFLAGS in R11, masks RFLAGS with IA32_FMASK and jumps to IA32_LSTAR.
//! The entry saves the application's RSP in the per-CPU block, switches to
//! the current thread's kernel stack, and saves a [`SyscallFrame`]. `sysret`
//! cannot be used to return (it always drops to ring 3), so the exit restores
//! RFLAGS with `popfq` and jumps to RCX on the application's stack.

use core::arch::global_asm;

use spin::Once;
use x86_64::registers::model_specific::{LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::{PrivilegeLevel, VirtAddr};

use crate::interrupts::InterruptFrame;
use crate::percpu::{KERNEL_CODE_SELECTOR, KERNEL_STACK_TOP_OFFSET, SYSCALL_USER_RSP_OFFSET};

/// The registers of a system call, as saved on the kernel stack.
///
/// Arguments are in `rdi, rsi, rdx, r10, r8, r9`, the number in `rax`, and
/// the handler leaves the result in `rax` (Linux x86-64 syscall ABI).
#[repr(C)]
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r9: u64,
    pub r8: u64,
    pub r10: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rax: u64,
    /// The application's RFLAGS (from R11).
    pub rflags: u64,
    /// The return address (from RCX).
    pub rip: u64,
    /// The application's stack pointer.
    pub rsp: u64,
}

impl SyscallFrame {
    /// The system call number.
    pub fn number(&self) -> u64 {
        self.rax
    }

    /// The six arguments, in order.
    pub fn arguments(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

/// The kernel's system call handler.
pub type SyscallHandler = fn(&mut SyscallFrame);

static HANDLER: Once<SyscallHandler> = Once::new();

/// Registers `handler` and points this processor's IA32_LSTAR at the entry.
pub fn init(handler: SyscallHandler) {
    HANDLER.call_once(|| handler);
    init_cpu();
}

/// Points this processor's IA32_LSTAR, STAR and FMASK at the entry.
pub(crate) fn init_cpu() {
    let code = SegmentSelector::new(KERNEL_CODE_SELECTOR / 8, PrivilegeLevel::Ring0);
    let data = SegmentSelector::new(KERNEL_CODE_SELECTOR / 8 + 1, PrivilegeLevel::Ring0);
    // The SYSRET selectors are never used; STAR requires user selectors that
    // relate to each other, so derive them from the kernel ones.
    let user_code = SegmentSelector::new(KERNEL_CODE_SELECTOR / 8 + 3, PrivilegeLevel::Ring3);
    let user_data = SegmentSelector::new(KERNEL_CODE_SELECTOR / 8 + 2, PrivilegeLevel::Ring3);
    if Star::write(user_code, user_data, code, data).is_err() {
        log::error!("syscall: STAR selectors refused");
    }
    LStar::write(VirtAddr::new(rosv_syscall_entry as *const () as u64));
    // Interrupts stay off until the entry is on the kernel stack; direction,
    // trap and alignment-check flags are cleared for the kernel's code.
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK,
    );
}

extern "C" fn dispatch(frame: &mut SyscallFrame) {
    crate::sched::enter_kernel_by_system_call();
    match HANDLER.get() {
        Some(handler) => handler(frame),
        None => frame.rax = (-38i64) as u64,
    }
    crate::sched::preempt_point();
    crate::sched::stop_point();
    crate::sched::notice_attention_point();
    crate::sched::leave_kernel();
}

/// Resumes application code by returning from a system call with `frame`.
///
/// # Safety
/// `frame` must point at a complete [`SyscallFrame`] at the top of the
/// current thread's kernel stack, and the per-CPU block must point at that
/// stack.
pub(crate) unsafe fn return_to_application(frame: u64) -> ! {
    crate::sched::leave_kernel();
    // SAFETY: by the contract, the frame is where the exit path expects it.
    unsafe {
        core::arch::asm!("mov rsp, {}", "jmp rosv_syscall_exit", in(reg) frame, options(noreturn));
    }
}

unsafe extern "C" {
    fn rosv_syscall_entry();
    static rosv_syscall_exit_pop_rip: u8;
    static rosv_syscall_exit_load_rsp: u8;
    static rosv_syscall_exit_jump: u8;
}

/// Finishes the system-call exit for an interrupt that arrived in its last
/// three instructions: `popfq` enables interrupts one instruction before
/// the jump to application code (unlike `sti`, it has no shadow), so an
/// interrupt may find the return address and stack pointer still on their
/// way. `frame` is changed to resume application code directly, with what
/// the exit would have left (RCX holding the return address, as `syscall`
/// leaves it), so that the interrupt counts as one in application code: a
/// signal it brings is then delivered. Returns whether it changed the
/// frame.
pub(crate) fn complete_exit(frame: &mut InterruptFrame) -> bool {
    let pop_rip = &raw const rosv_syscall_exit_pop_rip as u64;
    let load_rsp = &raw const rosv_syscall_exit_load_rsp as u64;
    let jump = &raw const rosv_syscall_exit_jump as u64;
    let read = |address: u64| {
        // SAFETY: in the exit's last instructions RSP points into the
        // thread's kernel stack at the frame's saved RIP and RSP, which the
        // exit is reading; both are 8-byte aligned words of that stack.
        unsafe { core::ptr::read_volatile(address as *const u64) }
    };
    let (rip, rsp) = match frame.rip {
        at if at == pop_rip => (read(frame.rsp), read(frame.rsp + 8)),
        at if at == load_rsp => (frame.rcx, read(frame.rsp)),
        at if at == jump => (frame.rcx, frame.rsp),
        _ => return false,
    };
    frame.rip = rip;
    frame.rcx = rip;
    frame.rsp = rsp;
    true
}

global_asm!(
    r#"
    .section .text.rosv_syscall, "ax"
    .global rosv_syscall_entry
rosv_syscall_entry:
    mov %rsp, %gs:{user_rsp}
    mov %gs:{kernel_stack}, %rsp
    push %gs:{user_rsp}
    push %rcx
    push %r11
    push %rax
    push %rdi
    push %rsi
    push %rdx
    push %r10
    push %r8
    push %r9
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    call {dispatch}
    .global rosv_syscall_exit
rosv_syscall_exit:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r9
    pop %r8
    pop %r10
    pop %rdx
    pop %rsi
    pop %rdi
    pop %rax
    mov (%rsp), %r11
    popfq
    .global rosv_syscall_exit_pop_rip
rosv_syscall_exit_pop_rip:
    pop %rcx
    .global rosv_syscall_exit_load_rsp
rosv_syscall_exit_load_rsp:
    mov (%rsp), %rsp
    .global rosv_syscall_exit_jump
rosv_syscall_exit_jump:
    jmp *%rcx
    "#,
    user_rsp = const SYSCALL_USER_RSP_OFFSET,
    kernel_stack = const KERNEL_STACK_TOP_OFFSET,
    dispatch = sym dispatch,
    options(att_syntax),
);
