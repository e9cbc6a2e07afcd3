//! The binary shapes tracers read and write: `struct user_regs_struct`,
//! the offsets of `struct user` (`PTRACE_PEEKUSER`), and
//! `struct ptrace_syscall_info`.

use super::TraceState;

/// Registers in `struct user_regs_struct`.
pub const REGISTER_COUNT: usize = 27;
/// Size of `struct user_regs_struct`.
pub const REGISTERS_SIZE: usize = REGISTER_COUNT * 8;
/// Size of `struct user_fpregs_struct` (the FXSAVE area).
pub const FP_REGISTERS_SIZE: usize = 512;
/// Offset of `u_debugreg` in `struct user`.
pub const DEBUG_REGISTERS_OFFSET: u64 = 848;
/// Size of `struct user`.
pub const USER_AREA_SIZE: u64 = DEBUG_REGISTERS_OFFSET + 8 * 8;

/// The code and stack selectors Linux gives 64-bit user code: tools
/// check them (applications here run in ring 0 with the kernel's).
pub const USER_CODE_SELECTOR: u64 = 0x33;
/// See [`USER_CODE_SELECTOR`].
pub const USER_STACK_SELECTOR: u64 = 0x2b;

/// RFLAGS bits a tracer may change (Linux's `FLAG_MASK`, without the trap
/// flag, which only `PTRACE_SINGLESTEP` sets): carry, parity, adjust,
/// zero, sign, direction, overflow, resume, alignment check.
const CHANGEABLE_FLAGS: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000;

/// The first address that is not canonical in the lower half.
const LOWER_HALF_END: u64 = 1 << 47;

/// Register `index` of `user_regs_struct` as the tracer sees it.
pub fn register(state: &TraceState, index: usize) -> u64 {
    let registers = &state.registers;
    match index {
        0 => registers.r15,
        1 => registers.r14,
        2 => registers.r13,
        3 => registers.r12,
        4 => registers.rbp,
        5 => registers.rbx,
        6 => registers.r11,
        7 => registers.r10,
        8 => registers.r9,
        9 => registers.r8,
        10 => registers.rax,
        11 => registers.rcx,
        12 => registers.rdx,
        13 => registers.rsi,
        14 => registers.rdi,
        15 => state.original_rax,
        16 => registers.rip,
        17 => USER_CODE_SELECTOR,
        18 => registers.rflags & !super::stops::TRAP_FLAG,
        19 => registers.rsp,
        20 => USER_STACK_SELECTOR,
        21 => state.thread_pointer,
        _ => 0,
    }
}

/// Sets register `index` of `user_regs_struct` to `value`. Selectors and
/// the GS base keep their values (whatever is written); a non-canonical
/// FS base is refused (`EIO`), as Linux does.
pub fn set_register(state: &mut TraceState, index: usize, value: u64) -> Result<(), crate::errno::Errno> {
    let registers = &mut state.registers;
    let slot = match index {
        0 => &mut registers.r15,
        1 => &mut registers.r14,
        2 => &mut registers.r13,
        3 => &mut registers.r12,
        4 => &mut registers.rbp,
        5 => &mut registers.rbx,
        6 => &mut registers.r11,
        7 => &mut registers.r10,
        8 => &mut registers.r9,
        9 => &mut registers.r8,
        10 => &mut registers.rax,
        11 => &mut registers.rcx,
        12 => &mut registers.rdx,
        13 => &mut registers.rsi,
        14 => &mut registers.rdi,
        15 => {
            state.original_rax = value;
            return Ok(());
        }
        16 => &mut registers.rip,
        18 => {
            registers.rflags = (registers.rflags & !CHANGEABLE_FLAGS) | (value & CHANGEABLE_FLAGS);
            state.is_changed.0 = true;
            return Ok(());
        }
        19 => &mut registers.rsp,
        21 => {
            if value >= LOWER_HALF_END {
                return Err(crate::errno::Errno::EIO);
            }
            if value != state.thread_pointer {
                state.thread_pointer = value;
                state.is_changed.1 = true;
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    *slot = value;
    state.is_changed.0 = true;
    Ok(())
}

/// `struct user_regs_struct` of the stop.
pub fn encode_registers(state: &TraceState) -> [u8; REGISTERS_SIZE] {
    let mut bytes = [0u8; REGISTERS_SIZE];
    for (index, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&register(state, index).to_le_bytes());
    }
    bytes
}

/// Applies a `struct user_regs_struct` the tracer wrote (`bytes` may be
/// shorter: the registers it covers).
pub fn decode_registers(state: &mut TraceState, bytes: &[u8]) -> Result<(), crate::errno::Errno> {
    for (index, chunk) in bytes.chunks_exact(8).enumerate().take(REGISTER_COUNT) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        set_register(state, index, u64::from_le_bytes(word))?;
    }
    Ok(())
}

/// The word at `offset` of `struct user` (`PTRACE_PEEKUSER`): registers,
/// and the debug registers (all zero: no watchpoints are set). `EIO` for
/// an offset outside it or not a multiple of 8.
pub fn peek_user(state: &TraceState, offset: u64) -> Result<u64, crate::errno::Errno> {
    if !offset.is_multiple_of(8) || offset >= USER_AREA_SIZE {
        return Err(crate::errno::Errno::EIO);
    }
    let index = (offset / 8) as usize;
    Ok(if index < REGISTER_COUNT { register(state, index) } else { 0 })
}

/// `PTRACE_POKEUSER`: a register, or a debug register cleared (setting
/// one is refused with `EIO`: there are no hardware watchpoints). Other
/// words of `struct user` are ignored, as Linux ignores them.
pub fn poke_user(state: &mut TraceState, offset: u64, value: u64) -> Result<(), crate::errno::Errno> {
    if !offset.is_multiple_of(8) || offset >= USER_AREA_SIZE {
        return Err(crate::errno::Errno::EIO);
    }
    let index = (offset / 8) as usize;
    if index < REGISTER_COUNT {
        return set_register(state, index, value);
    }
    if offset >= DEBUG_REGISTERS_OFFSET && value != 0 {
        return Err(crate::errno::Errno::EIO);
    }
    Ok(())
}

/// `struct user_fpregs_struct`: the FXSAVE area of the saved state.
pub fn encode_fp_registers(state: &TraceState) -> [u8; FP_REGISTERS_SIZE] {
    let mut bytes = [0u8; FP_REGISTERS_SIZE];
    let length = state.fpu.len().min(FP_REGISTERS_SIZE);
    bytes[..length].copy_from_slice(&state.fpu[..length]);
    bytes
}

/// Writes `bytes` (at most the FXSAVE area) over the saved state.
pub fn decode_fp_registers(state: &mut TraceState, bytes: &[u8]) {
    let length = bytes.len().min(state.fpu.len()).min(FP_REGISTERS_SIZE);
    state.fpu[..length].copy_from_slice(&bytes[..length]);
    state.is_changed.2 = true;
}

/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `PTRACE_SYSCALL_INFO_*`.
const SYSCALL_INFO_NONE: u8 = 0;
const SYSCALL_INFO_ENTRY: u8 = 1;
const SYSCALL_INFO_EXIT: u8 = 2;
/// Size of `struct ptrace_syscall_info` (its largest shape, seccomp's).
pub const SYSCALL_INFO_SIZE: usize = 88;

/// `struct ptrace_syscall_info` of the stop, and the size of the shape
/// it has (what `PTRACE_GET_SYSCALL_INFO` returns). A system-call stop
/// reported with `SIGTRAP | 0x80` has the entry or exit shape; any other
/// stop only the common part, as on Linux.
pub fn syscall_info(state: &TraceState) -> ([u8; SYSCALL_INFO_SIZE], usize) {
    let mut bytes = [0u8; SYSCALL_INFO_SIZE];
    let is_good = state.options & super::option::TRACESYSGOOD != 0;
    let operation = match state.stop {
        Some(super::StopKind::SyscallEntry) if is_good => SYSCALL_INFO_ENTRY,
        Some(super::StopKind::SyscallExit) if is_good => SYSCALL_INFO_EXIT,
        _ => SYSCALL_INFO_NONE,
    };
    bytes[0] = operation;
    bytes[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    bytes[8..16].copy_from_slice(&state.registers.rip.to_le_bytes());
    bytes[16..24].copy_from_slice(&state.registers.rsp.to_le_bytes());
    let record = &state.syscall;
    match operation {
        SYSCALL_INFO_ENTRY => {
            bytes[24..32].copy_from_slice(&record.number.to_le_bytes());
            for (index, argument) in record.arguments.iter().enumerate() {
                let at = 32 + index * 8;
                bytes[at..at + 8].copy_from_slice(&argument.to_le_bytes());
            }
            (bytes, 80)
        }
        SYSCALL_INFO_EXIT => {
            // The result as the tracer may have changed it.
            let result = state.registers.rax;
            bytes[24..32].copy_from_slice(&result.to_le_bytes());
            bytes[32] = u8::from((result as i64) < 0 && (result as i64) >= -4095);
            (bytes, 33)
        }
        _ => (bytes, 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptrace::{StopKind, TraceState};

    fn state() -> TraceState {
        let mut state = TraceState::new(1, 0, false);
        state.registers.rax = 0x11;
        state.registers.rip = 0x40_1000;
        state.registers.rsp = 0x7fff_0000;
        state.registers.rflags = 0x202;
        state.original_rax = 39;
        state.thread_pointer = 0x7f00_0000;
        state.fpu = alloc::vec![0u8; 1024];
        state
    }

    #[test]
    fn registers_follow_user_regs_struct_with_user_selectors() {
        let state = state();
        let bytes = encode_registers(&state);
        let word = |index: usize| u64::from_le_bytes(bytes[index * 8..index * 8 + 8].try_into().unwrap());
        assert_eq!(word(10), 0x11, "rax");
        assert_eq!(word(15), 39, "orig_rax");
        assert_eq!(word(16), 0x40_1000, "rip");
        assert_eq!(word(17), USER_CODE_SELECTOR);
        assert_eq!(word(19), 0x7fff_0000, "rsp");
        assert_eq!(word(20), USER_STACK_SELECTOR);
        assert_eq!(word(21), 0x7f00_0000, "fs_base");
        assert_eq!(peek_user(&state, 16 * 8), Ok(0x40_1000));
        assert_eq!(peek_user(&state, DEBUG_REGISTERS_OFFSET + 7 * 8), Ok(0));
        assert_eq!(peek_user(&state, 3), Err(crate::errno::Errno::EIO));
        assert_eq!(peek_user(&state, USER_AREA_SIZE), Err(crate::errno::Errno::EIO));
    }

    #[test]
    fn a_tracer_changes_registers_but_not_the_interrupt_or_trap_flags() {
        let mut state = state();
        let mut bytes = encode_registers(&state);
        bytes[10 * 8..11 * 8].copy_from_slice(&42u64.to_le_bytes());
        bytes[18 * 8..19 * 8].copy_from_slice(&0x1u64.to_le_bytes());
        bytes[17 * 8..18 * 8].copy_from_slice(&0x8u64.to_le_bytes());
        decode_registers(&mut state, &bytes).unwrap();
        assert_eq!(state.registers.rax, 42);
        // Carry set; interrupts stay enabled, the trap flag stays clear.
        assert_eq!(state.registers.rflags, 0x203);
        assert!(state.is_changed.0);
        assert_eq!(register(&state, 17), USER_CODE_SELECTOR, "selectors keep their values");
        assert_eq!(poke_user(&mut state, 18 * 8, 0x100), Ok(()));
        assert_eq!(state.registers.rflags & 0x100, 0);
        assert_eq!(poke_user(&mut state, 21 * 8, 1 << 47), Err(crate::errno::Errno::EIO));
        assert_eq!(poke_user(&mut state, DEBUG_REGISTERS_OFFSET, 0), Ok(()));
        assert_eq!(poke_user(&mut state, DEBUG_REGISTERS_OFFSET, 1), Err(crate::errno::Errno::EIO));
        assert_eq!(poke_user(&mut state, 15 * 8, u64::MAX), Ok(()));
        assert_eq!(state.original_rax, u64::MAX);
    }

    #[test]
    fn syscall_info_has_the_entry_and_exit_shapes_only_with_tracesysgood() {
        let mut state = state();
        state.syscall.number = 39;
        state.syscall.arguments = [1, 2, 3, 4, 5, 6];
        state.stop = Some(StopKind::SyscallEntry);
        assert_eq!(syscall_info(&state).1, 24, "without TRACESYSGOOD: no shape");
        state.options = crate::ptrace::option::TRACESYSGOOD;
        let (bytes, size) = syscall_info(&state);
        assert_eq!((bytes[0], size), (1, 80));
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 0xc000_003e);
        assert_eq!(u64::from_le_bytes(bytes[24..32].try_into().unwrap()), 39);
        assert_eq!(u64::from_le_bytes(bytes[72..80].try_into().unwrap()), 6);
        state.stop = Some(StopKind::SyscallExit);
        state.registers.rax = (-2i64) as u64;
        let (bytes, size) = syscall_info(&state);
        assert_eq!((bytes[0], size, bytes[32]), (2, 33, 1));
    }
}
