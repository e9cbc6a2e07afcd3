//! The frame a signal handler runs on, and `rt_sigreturn`.
//!
//! The frame follows Linux's x86-64 layout (arch/x86/kernel/signal_64.c), so
//! C libraries' restorers and unwinders understand it:
//!
//! ```text
//! rsp -> pretcode (sa_restorer)     frame + 0
//!        struct ucontext            frame + 8   (uc_flags, uc_link, uc_stack,
//!                                                uc_mcontext, uc_sigmask)
//!        struct siginfo             frame + 312
//!        saved FPU state            64-byte aligned, above the frame
//! ```
//!
//! The handler starts with RDI = signal, RSI = &siginfo, RDX = &ucontext and
//! RSP pointing at `pretcode`, as if called; returning runs the restorer,
//! whose `rt_sigreturn` restores everything from the ucontext.

use alloc::vec;

use super::{SS_AUTODISARM, SS_DISABLE, SS_ONSTACK, SignalInfo, UNBLOCKABLE, flag};
use crate::errno::Errno;
use crate::machine::Registers;
use crate::process::{SignalAction, ThreadState};
use crate::syscall::Context;
use crate::user::User;

const RED_ZONE: u64 = 128;
const UCONTEXT_OFFSET: u64 = 8;
const MCONTEXT_OFFSET: u64 = UCONTEXT_OFFSET + 40;
const SIGMASK_OFFSET: u64 = UCONTEXT_OFFSET + 296;
const SIGINFO_OFFSET: u64 = 312;
const FRAME_SIZE: u64 = SIGINFO_OFFSET + 128;
/// `uc_mcontext.fpstate`: the 25th word of `struct sigcontext`.
const FPSTATE_SLOT: u64 = MCONTEXT_OFFSET + 24 * 8;
/// RFLAGS bits an application may set through `rt_sigreturn`: CF, PF, AF,
/// ZF, SF, TF, DF, OF, AC, RF (Linux `FIX_EFLAGS`), plus IF, which stays on.
const USER_RFLAGS: u64 = 0x0001_0000 | 0x0004_0000 | 0xdd5;
const RFLAGS_IF: u64 = 0x200;
const RFLAGS_TF: u64 = 0x100;
const RFLAGS_DF: u64 = 0x400;

/// The general registers in `struct sigcontext` order (r8 to r15, rdi, rsi,
/// rbp, rbx, rdx, rax, rcx, rsp, rip, eflags).
fn mcontext_words(registers: &Registers) -> [u64; 18] {
    [
        registers.r8,
        registers.r9,
        registers.r10,
        registers.r11,
        registers.r12,
        registers.r13,
        registers.r14,
        registers.r15,
        registers.rdi,
        registers.rsi,
        registers.rbp,
        registers.rbx,
        registers.rdx,
        registers.rax,
        registers.rcx,
        registers.rsp,
        registers.rip,
        registers.rflags,
    ]
}

/// Offsets in the processor's save image: the x87 control word, MXCSR and
/// the mask of its supported bits.
const FPU_CONTROL: usize = 0;
const FPU_MXCSR: usize = 24;
const FPU_MXCSR_MASK: usize = 28;

/// The initial floating-point state in the save format of `saved`: x87
/// control word 0x37f and MXCSR 0x1f80 (every exception masked), all else
/// clear; an XSAVE header of zeros puts every other component in its
/// initial state.
fn initial_fpu(saved: &[u8]) -> alloc::vec::Vec<u8> {
    let mut image = vec![0u8; saved.len()];
    if image.len() >= FPU_MXCSR_MASK + 4 {
        image[FPU_CONTROL..FPU_CONTROL + 2].copy_from_slice(&0x037fu16.to_le_bytes());
        image[FPU_MXCSR..FPU_MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        image[FPU_MXCSR_MASK..FPU_MXCSR_MASK + 4].copy_from_slice(&saved[FPU_MXCSR_MASK..FPU_MXCSR_MASK + 4]);
    }
    image
}

/// The alternate signal stack a thread set with `sigaltstack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlternateStack {
    /// Its lowest address.
    pub base: u64,
    /// `SS_DISABLE` and `SS_AUTODISARM` as set.
    pub flags: u32,
    /// Its size in bytes (0 when disabled).
    pub size: u64,
}

impl AlternateStack {
    /// No alternate stack.
    pub const DISABLED: AlternateStack = AlternateStack { base: 0, flags: SS_DISABLE, size: 0 };

    /// Whether `stack_pointer` lies on it (never, for one disarmed while
    /// a handler runs on it).
    pub fn holds(&self, stack_pointer: u64) -> bool {
        self.flags & SS_AUTODISARM == 0
            && self.size != 0
            && stack_pointer > self.base
            && stack_pointer - self.base <= self.size
    }

    /// `ss_flags` as `sigaltstack` reports them for code running with
    /// `stack_pointer`.
    pub fn reported_flags(&self, stack_pointer: u64) -> u32 {
        let state = if self.size == 0 {
            SS_DISABLE
        } else if self.holds(stack_pointer) {
            SS_ONSTACK
        } else {
            0
        };
        state | (self.flags & SS_AUTODISARM)
    }

    /// The change `sigaltstack` asks for, made by code running with
    /// `stack_pointer`: `EPERM` while on the stack, `EINVAL` for unknown
    /// flags, `ENOMEM` below `minimum_size`.
    pub fn replace(
        &mut self,
        new: AlternateStack,
        stack_pointer: u64,
        minimum_size: u64,
    ) -> Result<(), Errno> {
        if self.holds(stack_pointer) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE {
            return Err(Errno::EINVAL);
        }
        if *self == new {
            return Ok(());
        }
        *self = if mode == SS_DISABLE {
            AlternateStack { base: 0, flags: new.flags, size: 0 }
        } else if new.size < minimum_size {
            return Err(Errno::ENOMEM);
        } else {
            new
        };
        Ok(())
    }
}

impl ThreadState {
    /// The mask a handler's frame saves (and `rt_sigreturn` restores): the
    /// one `sigsuspend` or `ppoll` replaced for their wait, else the
    /// current one.
    fn mask_to_restore(&mut self) -> u64 {
        self.saved_mask.take().unwrap_or(self.signal_mask)
    }
}

/// Runs the handler of `signal` next: builds its frame on the application's
/// stack and points `registers` at the handler. `Err` means the frame could
/// not be written, which ends the process (as Linux's forced SIGSEGV does).
pub fn setup_frame(
    context: Context<'_>,
    registers: &mut Registers,
    signal: u8,
    info: SignalInfo,
    action: SignalAction,
) -> Result<(), Errno> {
    if action.flags & flag::RESTORER == 0 || action.restorer == 0 {
        // Without a restorer the handler could not return.
        return Err(Errno::EFAULT);
    }
    let user = User::new(context.machine);
    let (old_mask, stack) = {
        let mut state = context.thread.state.lock();
        (state.mask_to_restore(), state.alternate_stack)
    };
    let mut top = registers.rsp.wrapping_sub(RED_ZONE);
    if action.flags & flag::ONSTACK != 0 && stack.reported_flags(registers.rsp) & !SS_AUTODISARM == 0 {
        top = stack.base + stack.size;
    }
    let fpu = context.machine.save_fpu();
    let fpstate = top.checked_sub(fpu.len() as u64).ok_or(Errno::EFAULT)? & !63;
    let frame = (fpstate.checked_sub(FRAME_SIZE).ok_or(Errno::EFAULT)? & !15) - 8;

    let mut bytes = vec![0u8; FRAME_SIZE as usize];
    let mut put = |offset: u64, value: u64| {
        bytes[offset as usize..offset as usize + 8].copy_from_slice(&value.to_le_bytes());
    };
    put(0, action.restorer);
    put(UCONTEXT_OFFSET, 0); // uc_flags
    put(UCONTEXT_OFFSET + 8, 0); // uc_link
    put(UCONTEXT_OFFSET + 16, stack.base);
    put(UCONTEXT_OFFSET + 24, u64::from(stack.flags));
    put(UCONTEXT_OFFSET + 32, stack.size);
    for (index, word) in mcontext_words(registers).into_iter().enumerate() {
        put(MCONTEXT_OFFSET + index as u64 * 8, word);
    }
    put(MCONTEXT_OFFSET + 18 * 8, 0x33); // cs, gs, fs, ss as Linux reports them
    put(FPSTATE_SLOT, fpstate);
    put(SIGMASK_OFFSET, old_mask);
    bytes[SIGINFO_OFFSET as usize..].copy_from_slice(&info.encode(signal));
    user.write_bytes(frame, &bytes)?;
    user.write_bytes(fpstate, &fpu)?;
    // As on Linux, the handler starts with the initial floating-point
    // state (an exception left pending in it would fault again).
    context.machine.restore_fpu(&initial_fpu(&fpu));

    {
        let mut state = context.thread.state.lock();
        state.signal_mask |= action.mask;
        if action.flags & flag::NODEFER == 0 {
            state.signal_mask |= super::bit(signal);
        }
        state.signal_mask &= !UNBLOCKABLE;
        if stack.flags & SS_AUTODISARM != 0 {
            state.alternate_stack = AlternateStack::DISABLED;
        }
    }
    if action.flags & flag::RESETHAND != 0 {
        context
            .process
            .signal_handlers
            .with(|handlers| handlers[usize::from(signal - 1)] = SignalAction::default());
    }
    registers.rdi = u64::from(signal);
    registers.rsi = frame + SIGINFO_OFFSET;
    registers.rdx = frame + UCONTEXT_OFFSET;
    registers.rax = 0;
    registers.rsp = frame;
    registers.rip = action.handler;
    registers.rflags &= !(RFLAGS_DF | RFLAGS_TF);
    Ok(())
}

/// `rt_sigreturn`: restores the registers, signal mask, alternate stack
/// and floating-point state saved by [`setup_frame`]; RSP points just past
/// `pretcode`.
pub fn restore_frame(context: Context<'_>, registers: &mut Registers) -> Result<(), Errno> {
    let user = User::new(context.machine);
    let frame = registers.rsp.wrapping_sub(8);
    let bytes = user.read_bytes(frame, FRAME_SIZE as usize)?;
    let word = |offset: u64| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[offset as usize..offset as usize + 8]);
        u64::from_le_bytes(raw)
    };
    let saved: [u64; 18] = core::array::from_fn(|index| word(MCONTEXT_OFFSET + index as u64 * 8));
    let [r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, rflags] = saved;
    if rip >= crate::memory::APPLICATION_END || rsp >= crate::memory::APPLICATION_END {
        return Err(Errno::EFAULT);
    }
    let fpstate = word(FPSTATE_SLOT);
    if fpstate != 0 {
        let fpu = user.read_bytes(fpstate, context.machine.save_fpu().len())?;
        context.machine.restore_fpu(&fpu);
    }
    *registers = Registers {
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
        rdi,
        rsi,
        rbp,
        rbx,
        rdx,
        rax,
        rcx,
        rsp,
        rip,
        rflags: (registers.rflags & !USER_RFLAGS) | (rflags & USER_RFLAGS) | RFLAGS_IF,
    };
    let stack = AlternateStack {
        base: word(UCONTEXT_OFFSET + 16),
        flags: word(UCONTEXT_OFFSET + 24) as u32,
        size: word(UCONTEXT_OFFSET + 32),
    };
    let mut state = context.thread.state.lock();
    state.signal_mask = word(SIGMASK_OFFSET) & !UNBLOCKABLE;
    // As on Linux, a stack the frame cannot restore (the code it returns to
    // runs on the current one) is left as it is, silently.
    let _ = state.alternate_stack.replace(stack, rsp, super::MINIMUM_ALTERNATE_STACK);
    Ok(())
}
