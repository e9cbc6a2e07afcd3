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
    static rosv_user_copy_faulting_instruction: u8;
    static rosv_user_copy_fixup: u8;
}

/// The address to resume at if `rip` faulted inside a user copy.
pub(crate) fn fixup_for(rip: u64) -> Option<u64> {
    let faulting = &raw const rosv_user_copy_faulting_instruction as u64;
    (rip == faulting).then_some(&raw const rosv_user_copy_fixup as u64)
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
    let left = unsafe {
        rosv_user_copy(
            destination.as_mut_ptr(),
            address as *const u8,
            destination.len(),
        )
    };
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
    "#,
    options(att_syntax),
);
