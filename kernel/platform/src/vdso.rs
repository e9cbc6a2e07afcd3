//! The vDSO: a tiny shared object mapped into the application, whose
//! clock functions read the TSC instead of making a system call.
//!
//! C libraries find it through `AT_SYSINFO_EHDR` and look up
//! `__vdso_clock_gettime`, `__vdso_gettimeofday`, `__vdso_time` and
//! `__vdso_getcpu` in its dynamic symbol table (`DT_HASH`). Every symbol
//! has the version `LINUX_2.6`, as Linux's: glibc and musl accept symbols
//! with or without versions, but Go's runtime needs the version
//! definitions. The whole object is one page assembled below: ELF header,
//! two program headers, the dynamic section, hash table, symbols, symbol
//! versions (`DT_VERSYM`, `DT_VERDEF`), strings and the code, all at offsets
//! equal to their addresses (the object is linked at 0). The code reads
//! the data page the loader maps just below it (`rosv_abi::vdso`) with
//! RIP-relative addressing, so it runs wherever the page is copied. A
//! clock the vDSO does not handle, or a data page that says the TSC is
//! unusable, falls back to the system call.

use core::arch::global_asm;

use rosv_abi::vdso;

unsafe extern "C" {
    static rosv_vdso_start: u8;
    static rosv_vdso_end: u8;
}

/// The vDSO image (at most one page).
pub fn image() -> &'static [u8] {
    let start = &raw const rosv_vdso_start;
    let end = &raw const rosv_vdso_end;
    // SAFETY: both symbols are defined by the assembly below around the
    // image, in the kernel's read-only text, which is never written.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

global_asm!(
    r#"
    .pushsection .text.rosv_vdso, "ax"
    .balign 4096
    .global rosv_vdso_start
rosv_vdso_start:
    .byte 0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0
    .quad 0
    .short 3
    .short 62
    .long 1
    .quad 0
    .quad rosv_vdso_program_headers - rosv_vdso_start
    .quad 0
    .long 0
    .short 64
    .short 56
    .short 2
    .short 64
    .short 0
    .short 0
rosv_vdso_program_headers:
    .long 1
    .long 5
    .quad 0
    .quad 0
    .quad 0
    .quad rosv_vdso_end - rosv_vdso_start
    .quad rosv_vdso_end - rosv_vdso_start
    .quad 4096
    .long 2
    .long 4
    .quad rosv_vdso_dynamic - rosv_vdso_start
    .quad rosv_vdso_dynamic - rosv_vdso_start
    .quad rosv_vdso_dynamic - rosv_vdso_start
    .quad rosv_vdso_dynamic_end - rosv_vdso_dynamic
    .quad rosv_vdso_dynamic_end - rosv_vdso_dynamic
    .quad 8
    .balign 8
rosv_vdso_dynamic:
    .quad 4, rosv_vdso_hash - rosv_vdso_start
    .quad 5, rosv_vdso_strings - rosv_vdso_start
    .quad 6, rosv_vdso_symbols - rosv_vdso_start
    .quad 10, rosv_vdso_strings_end - rosv_vdso_strings
    .quad 11, 24
    .quad 14, rosv_vdso_name_soname - rosv_vdso_strings
    .quad 0x6ffffff0, rosv_vdso_versions - rosv_vdso_start
    .quad 0x6ffffffc, rosv_vdso_version_definitions - rosv_vdso_start
    .quad 0x6ffffffd, 2
    .quad 0, 0
rosv_vdso_dynamic_end:
rosv_vdso_hash:
    .long 1, 9
    .long 1
    .long 0, 2, 3, 4, 5, 6, 7, 8, 0
    .balign 8
rosv_vdso_symbols:
    .quad 0, 0, 0
    .long rosv_vdso_name_clock_gettime - rosv_vdso_strings
    .byte 0x12, 0
    .short 1
    .quad rosv_vdso_clock_gettime - rosv_vdso_start
    .quad rosv_vdso_clock_gettime_end - rosv_vdso_clock_gettime
    .long rosv_vdso_name_clock_gettime + 7 - rosv_vdso_strings
    .byte 0x22, 0
    .short 1
    .quad rosv_vdso_clock_gettime - rosv_vdso_start
    .quad rosv_vdso_clock_gettime_end - rosv_vdso_clock_gettime
    .long rosv_vdso_name_gettimeofday - rosv_vdso_strings
    .byte 0x12, 0
    .short 1
    .quad rosv_vdso_gettimeofday - rosv_vdso_start
    .quad rosv_vdso_gettimeofday_end - rosv_vdso_gettimeofday
    .long rosv_vdso_name_gettimeofday + 7 - rosv_vdso_strings
    .byte 0x22, 0
    .short 1
    .quad rosv_vdso_gettimeofday - rosv_vdso_start
    .quad rosv_vdso_gettimeofday_end - rosv_vdso_gettimeofday
    .long rosv_vdso_name_time - rosv_vdso_strings
    .byte 0x12, 0
    .short 1
    .quad rosv_vdso_time - rosv_vdso_start
    .quad rosv_vdso_time_end - rosv_vdso_time
    .long rosv_vdso_name_time + 7 - rosv_vdso_strings
    .byte 0x22, 0
    .short 1
    .quad rosv_vdso_time - rosv_vdso_start
    .quad rosv_vdso_time_end - rosv_vdso_time
    .long rosv_vdso_name_getcpu - rosv_vdso_strings
    .byte 0x12, 0
    .short 1
    .quad rosv_vdso_getcpu - rosv_vdso_start
    .quad rosv_vdso_getcpu_end - rosv_vdso_getcpu
    .long rosv_vdso_name_getcpu + 7 - rosv_vdso_strings
    .byte 0x22, 0
    .short 1
    .quad rosv_vdso_getcpu - rosv_vdso_start
    .quad rosv_vdso_getcpu_end - rosv_vdso_getcpu
rosv_vdso_versions:
    .short 0, 2, 2, 2, 2, 2, 2, 2, 2
    .balign 4
rosv_vdso_version_definitions:
    .short 1, 1, 1, 1
    .long 0x0deebfa1, 20, 28
    .long rosv_vdso_name_soname - rosv_vdso_strings, 0
    .short 1, 0, 2, 1
    .long 0x03ae75f6, 20, 0
    .long rosv_vdso_name_version - rosv_vdso_strings, 0
rosv_vdso_strings:
    .byte 0
rosv_vdso_name_soname:
    .asciz "linux-vdso.so.1"
rosv_vdso_name_version:
    .asciz "LINUX_2.6"
rosv_vdso_name_clock_gettime:
    .asciz "__vdso_clock_gettime"
rosv_vdso_name_gettimeofday:
    .asciz "__vdso_gettimeofday"
rosv_vdso_name_time:
    .asciz "__vdso_time"
rosv_vdso_name_getcpu:
    .asciz "__vdso_getcpu"
rosv_vdso_strings_end:

    .balign 16
rosv_vdso_now_ns:
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    sub (rosv_vdso_start - {page} + {tsc_base})(%rip), %rax
    jae rosv_vdso_now_ns_scale
    xor %eax, %eax
rosv_vdso_now_ns_scale:
    mulq (rosv_vdso_start - {page} + {multiplier})(%rip)
    shrd ${shift}, %rdx, %rax
    add %r8, %rax
    ret

    .balign 16
rosv_vdso_clock_gettime:
    cmpq $0, (rosv_vdso_start - {page} + {flags})(%rip)
    je rosv_vdso_clock_gettime_system_call
    xor %r8d, %r8d
    cmp $1, %edi
    je rosv_vdso_clock_gettime_now
    cmp $4, %edi
    je rosv_vdso_clock_gettime_now
    cmp $6, %edi
    je rosv_vdso_clock_gettime_now
    cmp $7, %edi
    je rosv_vdso_clock_gettime_now
    mov (rosv_vdso_start - {page} + {realtime})(%rip), %r8
    test %edi, %edi
    je rosv_vdso_clock_gettime_now
    cmp $5, %edi
    jne rosv_vdso_clock_gettime_system_call
rosv_vdso_clock_gettime_now:
    call rosv_vdso_now_ns
    mov $1000000000, %ecx
    xor %edx, %edx
    div %rcx
    mov %rax, (%rsi)
    mov %rdx, 8(%rsi)
    xor %eax, %eax
    ret
rosv_vdso_clock_gettime_system_call:
    mov $228, %eax
    syscall
    ret
rosv_vdso_clock_gettime_end:

    .balign 16
rosv_vdso_gettimeofday:
    cmpq $0, (rosv_vdso_start - {page} + {flags})(%rip)
    je rosv_vdso_gettimeofday_system_call
    test %rdi, %rdi
    jz rosv_vdso_gettimeofday_zone
    mov (rosv_vdso_start - {page} + {realtime})(%rip), %r8
    call rosv_vdso_now_ns
    mov $1000000000, %ecx
    xor %edx, %edx
    div %rcx
    mov %rax, (%rdi)
    mov %rdx, %rax
    xor %edx, %edx
    mov $1000, %ecx
    div %rcx
    mov %rax, 8(%rdi)
rosv_vdso_gettimeofday_zone:
    test %rsi, %rsi
    jz rosv_vdso_gettimeofday_done
    movq $0, (%rsi)
rosv_vdso_gettimeofday_done:
    xor %eax, %eax
    ret
rosv_vdso_gettimeofday_system_call:
    mov $96, %eax
    syscall
    ret
rosv_vdso_gettimeofday_end:

    .balign 16
rosv_vdso_time:
    cmpq $0, (rosv_vdso_start - {page} + {flags})(%rip)
    je rosv_vdso_time_system_call
    mov (rosv_vdso_start - {page} + {realtime})(%rip), %r8
    call rosv_vdso_now_ns
    mov $1000000000, %ecx
    xor %edx, %edx
    div %rcx
    test %rdi, %rdi
    jz rosv_vdso_time_done
    mov %rax, (%rdi)
rosv_vdso_time_done:
    ret
rosv_vdso_time_system_call:
    mov $201, %eax
    syscall
    ret
rosv_vdso_time_end:

    .balign 16
rosv_vdso_getcpu:
    mov $309, %eax
    syscall
    ret
rosv_vdso_getcpu_end:

    .global rosv_vdso_end
rosv_vdso_end:
    .popsection
    "#,
    page = const vdso::PAGE_SIZE,
    flags = const vdso::FLAGS,
    tsc_base = const vdso::TSC_BASE,
    multiplier = const vdso::TSC_TO_NS_MULTIPLIER,
    realtime = const vdso::REALTIME_OFFSET_NS,
    shift = const vdso::TSC_TO_NS_SHIFT,
    options(att_syntax),
);
