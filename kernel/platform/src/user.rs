//! Copies between kernel memory and application memory that survive faults.
//!
//! A copy is one `rep movsb`. If it touches an application page that is not
//! mapped, the page-fault handler first lets the kernel map it (demand
//! paging); if that fails, it resumes the copy routine at its fixup label,
//! which returns the number of bytes not copied (Linux's exception-table
//! technique, reduced to one instruction).

use core::arch::global_asm;

use crate::memory::USER_END;

/// An application address range could not be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAddress;

unsafe extern "C" {
    /// Copies `length` bytes from `source` to `destination`; returns how many
    /// were not copied because of a fault.
    fn rosv_user_copy(destination: *mut u8, source: *const u8, length: usize) -> usize;
    /// Loads the `u32` at `address` into `*value`; returns 1 on a fault.
    fn rosv_user_load_u32(address: *const u32, value: *mut u32) -> u64;
    /// Compares the `u32` at `address` with `expected` and, if equal, stores
    /// `new`; `*observed` gets the old value; returns 1 on a fault.
    fn rosv_user_cmpxchg_u32(address: *mut u32, expected: u32, new: u32, observed: *mut u32) -> u64;
    static rosv_user_copy_faulting_instruction: u8;
    static rosv_user_copy_fixup: u8;
    static rosv_user_load_faulting_instruction: u8;
    static rosv_user_cmpxchg_faulting_instruction: u8;
    static rosv_user_access_fault: u8;
}

/// The address to resume at if `rip` faulted inside a user access.
pub(crate) fn fixup_for(rip: u64) -> Option<u64> {
    if rip == &raw const rosv_user_copy_faulting_instruction as u64 {
        return Some(&raw const rosv_user_copy_fixup as u64);
    }
    let single = [
        &raw const rosv_user_load_faulting_instruction as u64,
        &raw const rosv_user_cmpxchg_faulting_instruction as u64,
    ];
    single.contains(&rip).then_some(&raw const rosv_user_access_fault as u64)
}

fn check_word(address: u64) -> Result<(), BadAddress> {
    if !address.is_multiple_of(4) {
        return Err(BadAddress);
    }
    check_range(address, 4)
}

/// Atomically loads the aligned `u32` at application address `address`.
pub fn load_u32(address: u64) -> Result<u32, BadAddress> {
    check_word(address)?;
    let mut value = 0;
    // SAFETY: the address is aligned and in the application half, where
    // faults are caught by the fixup; `value` is a valid kernel location.
    let fault = unsafe { rosv_user_load_u32(address as *const u32, &mut value) };
    if fault == 0 { Ok(value) } else { Err(BadAddress) }
}

/// Atomically replaces the aligned `u32` at `address` with `new` if it holds
/// `expected`; returns the value it held (`Ok` if it was `expected`).
pub fn compare_exchange_u32(address: u64, expected: u32, new: u32) -> Result<Result<u32, u32>, BadAddress> {
    check_word(address)?;
    let mut observed = 0;
    // SAFETY: as in `load_u32`; the exchange touches only application memory.
    let fault = unsafe { rosv_user_cmpxchg_u32(address as *mut u32, expected, new, &mut observed) };
    if fault != 0 {
        return Err(BadAddress);
    }
    Ok(if observed == expected { Ok(observed) } else { Err(observed) })
}

fn check_range(address: u64, length: usize) -> Result<(), BadAddress> {
    let end = address.checked_add(length as u64).ok_or(BadAddress)?;
    if end > USER_END {
        return Err(BadAddress);
    }
    Ok(())
}

/// Copies application memory at `address` into `destination`.
pub fn read(address: u64, destination: &mut [u8]) -> Result<(), BadAddress> {
    if destination.is_empty() {
        return Ok(());
    }
    check_range(address, destination.len())?;
    // SAFETY: the source range lies in the application half, where faults
    // are caught by the fixup; the destination is a valid kernel buffer.
    let left = unsafe { rosv_user_copy(destination.as_mut_ptr(), address as *const u8, destination.len()) };
    if left == 0 { Ok(()) } else { Err(BadAddress) }
}

/// Copies `source` into application memory at `address`.
pub fn write(address: u64, source: &[u8]) -> Result<(), BadAddress> {
    if source.is_empty() {
        return Ok(());
    }
    check_range(address, source.len())?;
    // SAFETY: the destination lies in the application half, so no kernel
    // data is overwritten, and faults are caught by the fixup.
    let left = unsafe { rosv_user_copy(address as *mut u8, source.as_ptr(), source.len()) };
    if left == 0 { Ok(()) } else { Err(BadAddress) }
}

global_asm!(
    r#"
    .section .text.rosv_user_copy, "ax"
    .global rosv_user_copy
    .global rosv_user_copy_faulting_instruction
    .global rosv_user_copy_fixup
rosv_user_copy:
    mov %rdx, %rcx
rosv_user_copy_faulting_instruction:
    rep movsb
rosv_user_copy_fixup:
    mov %rcx, %rax
    ret

    .global rosv_user_load_u32
    .global rosv_user_load_faulting_instruction
    .global rosv_user_cmpxchg_u32
    .global rosv_user_cmpxchg_faulting_instruction
    .global rosv_user_access_fault
rosv_user_load_u32:
rosv_user_load_faulting_instruction:
    mov (%rdi), %eax
    mov %eax, (%rsi)
    xor %eax, %eax
    ret

rosv_user_cmpxchg_u32:
    mov %esi, %eax
rosv_user_cmpxchg_faulting_instruction:
    lock cmpxchg %edx, (%rdi)
    mov %eax, (%rcx)
    xor %eax, %eax
    ret

rosv_user_access_fault:
    mov $1, %eax
    ret
    "#,
    options(att_syntax),
);
