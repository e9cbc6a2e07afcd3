//! Execution contexts: switching stacks between kernel threads, and running
//! an application thread until it exits.
//!
//! A context is the stack pointer of a suspended thread; everything else it
//! needs (the callee-saved registers and the resume address) was pushed on
//! its stack by [`switch`]. A new context starts in a small trampoline that
//! jumps to the application's entry point with the application's stack.
//!
//! [`run_application`] suspends the calling (boot) thread and starts an
//! application thread; [`exit_application`], called from that thread's
//! system call or fault handling, resumes the boot thread with a status.

use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::cpu;
use crate::percpu;

/// A suspended thread: its saved stack pointer.
#[derive(Debug, Default)]
struct Context {
    stack_pointer: u64,
}

struct ContextCell(UnsafeCell<Context>);

// SAFETY: the cell is used by one CPU: written by `run_application` when it
// suspends the boot thread, read by `exit_application` on the same CPU after
// that, never concurrently.
unsafe impl Sync for ContextCell {}

/// The boot thread, while an application runs.
static SUSPENDED_BOOT_THREAD: ContextCell =
    ContextCell(UnsafeCell::new(Context { stack_pointer: 0 }));
static EXIT_STATUS: AtomicU8 = AtomicU8::new(0);

/// Size of an application thread's kernel stack (used by system calls).
pub const APPLICATION_KERNEL_STACK_SIZE: usize = 64 * 1024;

/// Runs application code at `entry` with stack pointer `stack_pointer` on
/// this CPU until it calls [`exit_application`]; returns the exit status.
pub fn run_application(entry: u64, stack_pointer: u64) -> u8 {
    let kernel_stack = KernelStack::new(APPLICATION_KERNEL_STACK_SIZE);
    let application = Context::new_application(&kernel_stack, entry, stack_pointer);
    // SAFETY: (1) `application` was just prepared on `kernel_stack`, which
    // lives until this function returns, after the application exited; (2)
    // the boot thread's context is stored in the static cell that
    // `exit_application` resumes.
    unsafe { switch(&mut *SUSPENDED_BOOT_THREAD.0.get(), &application) };
    EXIT_STATUS.load(Ordering::Relaxed)
}

/// Ends the running application with `status` and resumes the boot thread
/// in [`run_application`].
pub fn exit_application(status: u8) -> ! {
    EXIT_STATUS.store(status, Ordering::Relaxed);
    let mut abandoned = Context::default();
    // SAFETY: only called from an application thread started by
    // `run_application`, so the cell holds the suspended boot thread, whose
    // stack is alive; the application's context is abandoned.
    unsafe { switch(&mut abandoned, &*SUSPENDED_BOOT_THREAD.0.get()) };
    unreachable!("the boot thread never switches back to an exited application")
}

unsafe extern "C" {
    fn rosv_context_switch(save_to: *mut u64, load_from: u64);
    fn rosv_application_trampoline();
}

/// The registers `rosv_context_switch` pops, lowest address first, followed
/// by its return address.
#[repr(C)]
struct InitialFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    rbx: u64,
    rbp: u64,
    return_address: u64,
}

/// A kernel stack for a thread, owned by it.
#[derive(Debug)]
struct KernelStack {
    memory: alloc::boxed::Box<[u128]>,
}

impl KernelStack {
    /// Allocates a zeroed stack of at least `size` bytes.
    fn new(size: usize) -> Self {
        let words = size.div_ceil(16);
        KernelStack {
            memory: alloc::vec![0u128; words].into_boxed_slice(),
        }
    }

    /// The address one past the top of the stack (16-byte aligned).
    fn top(&self) -> u64 {
        self.memory.as_ptr_range().end as u64
    }
}

impl Context {
    /// A context that, when switched to, enters application code at `entry`
    /// with RSP = `stack_pointer`, using `kernel_stack` for system calls.
    fn new_application(kernel_stack: &KernelStack, entry: u64, stack_pointer: u64) -> Self {
        // After `rosv_context_switch` pops the frame, RSP is 16-byte aligned,
        // as the trampoline's call needs.
        let frame_address = kernel_stack.top() - core::mem::size_of::<InitialFrame>() as u64 - 16;
        let frame = InitialFrame {
            r15: 0,
            r14: 0,
            r13: kernel_stack.top(),
            r12: entry,
            rbx: stack_pointer,
            rbp: 0,
            return_address: rosv_application_trampoline as *const () as u64,
        };
        // SAFETY: the frame lies at the top of a stack this context owns and
        // nothing else references yet; the address is 8-byte aligned.
        unsafe { (frame_address as *mut InitialFrame).write(frame) };
        Context {
            stack_pointer: frame_address,
        }
    }
}

/// Suspends the current thread into `current` and resumes `next`.
///
/// Returns when something switches back to `current`.
///
/// # Safety
/// `next` must have been created by [`Context::new_application`] or filled
/// by an earlier `switch`, and the stack it refers to must still be alive.
unsafe fn switch(current: &mut Context, next: &Context) {
    // SAFETY: `next` holds a stack prepared as the routine expects (caller's
    // contract); `current` receives this thread's stack pointer.
    unsafe { rosv_context_switch(&mut current.stack_pointer, next.stack_pointer) }
}

/// Called by the trampoline before it enters the application: the entry
/// state every application thread starts from.
extern "C" fn prepare_application_entry(kernel_stack_top: u64) {
    percpu::set_kernel_stack_top(kernel_stack_top);
    cpu::reset_floating_point();
}

global_asm!(
    r#"
    .section .text.rosv_context, "ax"
    .global rosv_context_switch
rosv_context_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

    .global rosv_application_trampoline
rosv_application_trampoline:
    mov %r13, %rdi
    call {prepare}
    mov %r12, %rcx
    mov %rbx, %rsp
    pushq $0x202
    popfq
    xor %eax, %eax
    xor %ebx, %ebx
    xor %edx, %edx
    xor %esi, %esi
    xor %edi, %edi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    jmp *%rcx
    "#,
    prepare = sym prepare_application_entry,
    options(att_syntax),
);
