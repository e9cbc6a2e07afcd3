//! Signal delivery: the frame a handler runs on, and `rt_sigreturn`.
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

use crate::errno::Errno;
use crate::machine::Registers;
use crate::process::{SIG_DFL, SignalAction};
use crate::syscall::Context;
use crate::user::User;

/// `sa_flags` bits.
pub mod flag {
    /// The handler takes three arguments.
    pub const SIGINFO: u64 = 0x4;
    /// `sa_restorer` is set.
    pub const RESTORER: u64 = 0x0400_0000;
    /// Run the handler on the alternate stack.
    pub const ONSTACK: u64 = 0x0800_0000;
    /// Restart interrupted system calls.
    pub const RESTART: u64 = 0x1000_0000;
    /// Do not block the signal while its handler runs.
    pub const NODEFER: u64 = 0x4000_0000;
    /// Reset the disposition to the default once delivered.
    pub const RESETHAND: u64 = 0x8000_0000;
}

/// `si_code` values.
pub mod code {
    /// Sent by `kill`.
    pub const USER: i32 = 0;
    /// Sent by `tkill` / `tgkill`.
    pub const TKILL: i32 = -6;
    /// Sent by the kernel (`SIGPIPE`).
    pub const KERNEL: i32 = 0x80;
}

/// `sigaltstack` flag: the alternate stack is disabled.
pub const SS_DISABLE: u32 = 2;
/// `sigaltstack` flag: the thread runs on the alternate stack.
pub const SS_ONSTACK: u32 = 1;

/// What a pending signal carries into `siginfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalInfo {
    /// `si_code`.
    pub code: i32,
    /// `si_pid` of the sender.
    pub pid: u32,
    /// `si_uid` of the sender.
    pub uid: u32,
    /// `si_addr`, for signals a fault raised (it takes the place of the
    /// sender's pid and uid).
    pub address: Option<u64>,
}

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
    let (old_mask, (stack_base, stack_flags, stack_size)) = {
        let state = context.thread.state.lock();
        (state.signal_mask, state.alternate_stack)
    };
    let is_on_alternate_stack =
        stack_size != 0 && registers.rsp > stack_base && registers.rsp <= stack_base + stack_size;
    let mut top = registers.rsp.wrapping_sub(RED_ZONE);
    if action.flags & flag::ONSTACK != 0
        && stack_flags & SS_DISABLE == 0
        && stack_size != 0
        && !is_on_alternate_stack
    {
        top = stack_base + stack_size;
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
    put(UCONTEXT_OFFSET + 16, stack_base);
    let current_stack_flags = if is_on_alternate_stack { SS_ONSTACK } else { stack_flags & SS_DISABLE };
    put(UCONTEXT_OFFSET + 24, u64::from(current_stack_flags));
    put(UCONTEXT_OFFSET + 32, stack_size);
    for (index, word) in mcontext_words(registers).into_iter().enumerate() {
        put(MCONTEXT_OFFSET + index as u64 * 8, word);
    }
    put(MCONTEXT_OFFSET + 18 * 8, 0x33); // cs, gs, fs, ss as Linux reports them
    put(FPSTATE_SLOT, fpstate);
    put(SIGMASK_OFFSET, old_mask);
    bytes[SIGINFO_OFFSET as usize..SIGINFO_OFFSET as usize + 4]
        .copy_from_slice(&u32::from(signal).to_le_bytes());
    bytes[SIGINFO_OFFSET as usize + 8..SIGINFO_OFFSET as usize + 12]
        .copy_from_slice(&info.code.to_le_bytes());
    match info.address {
        Some(address) => bytes[SIGINFO_OFFSET as usize + 16..SIGINFO_OFFSET as usize + 24]
            .copy_from_slice(&address.to_le_bytes()),
        None => {
            bytes[SIGINFO_OFFSET as usize + 16..SIGINFO_OFFSET as usize + 20]
                .copy_from_slice(&info.pid.to_le_bytes());
            bytes[SIGINFO_OFFSET as usize + 20..SIGINFO_OFFSET as usize + 24]
                .copy_from_slice(&info.uid.to_le_bytes());
        }
    }
    user.write_bytes(frame, &bytes)?;
    user.write_bytes(fpstate, &fpu)?;

    {
        let mut state = context.thread.state.lock();
        state.signal_mask |= action.mask;
        if action.flags & flag::NODEFER == 0 {
            state.signal_mask |= 1 << (signal - 1);
        }
    }
    if action.flags & flag::RESETHAND != 0 {
        context.process.state.lock().signal_actions[usize::from(signal - 1)] = SignalAction::default();
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

/// `rt_sigreturn`: restores the registers, signal mask and floating-point
/// state saved by [`setup_frame`]; RSP points just past `pretcode`.
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
    const UNBLOCKABLE: u64 = (1 << 8) | (1 << 18);
    context.thread.state.lock().signal_mask = word(SIGMASK_OFFSET) & !UNBLOCKABLE;
    Ok(())
}

/// Whether `action` for `signal` is the default action that ends the process.
pub fn terminates(action: &SignalAction, signal: u8) -> bool {
    action.handler == SIG_DFL && !matches!(signal, 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28)
}

/// A fault in application code, as a signal: what the kernel delivers when
/// demand paging cannot resolve it (Linux's `force_sig_fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The signal (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`).
    pub signal: u8,
    /// `si_code` (`SEGV_MAPERR`, `FPE_INTDIV`, ...).
    pub code: i32,
    /// `si_addr`: the faulting data address, or the instruction's.
    pub address: u64,
}

/// `si_code` values of faults.
pub mod fault_code {
    /// `SEGV_MAPERR`: nothing is mapped there.
    pub const SEGV_MAPERR: i32 = 1;
    /// `SEGV_ACCERR`: mapped, but the access is not allowed.
    pub const SEGV_ACCERR: i32 = 2;
    /// `BUS_ADRALN`: misaligned access.
    pub const BUS_ADRALN: i32 = 1;
    /// `BUS_ADRERR`: no such place in the object (past a mapped file's end).
    pub const BUS_ADRERR: i32 = 2;
    /// `ILL_ILLOPN`: illegal operand (an undefined instruction).
    pub const ILL_ILLOPN: i32 = 2;
    /// `FPE_INTDIV`: integer division by zero.
    pub const FPE_INTDIV: i32 = 1;
    /// `FPE_FLTINV`: invalid floating-point operation.
    pub const FPE_FLTINV: i32 = 7;
    /// `TRAP_BRKPT`: a breakpoint.
    pub const TRAP_BRKPT: i32 = 1;
    /// `SI_KERNEL`: raised by the kernel without a more precise reason.
    pub const KERNEL: i32 = 0x80;
}
