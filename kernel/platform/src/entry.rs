//! The boot entries and the switch to the kernel's higher-half address.
//!
//! All entries live in `.boot`, which is linked at its physical address so
//! that it runs before paging (PVH) or under the loader's identity map
//! (Linux 64-bit). They install boot page tables that map the first GiB three
//! times (at 0, at `PHYSICAL_MAP_OFFSET` and at `KERNEL_VIRTUAL_OFFSET`), load
//! a boot GDT, and jump to the higher half, where `.bss` is cleared and [`crate::boot`] takes
//! over in Rust.
//!
//! - PVH (`XEN_ELFNOTE_PHYS32_ENTRY`): 32-bit protected mode, paging off,
//!   EBX = physical address of `hvm_start_info` (PVH spec, "x86/HVM direct
//!   boot ABI").
//! - Linux 64-bit (ELF entry): long mode, RSI = physical address of
//!   `boot_params` (Linux Documentation/arch/x86/boot.rst, "64-bit Boot
//!   Protocol").
//! - Multiboot2 (the header's entry address tag; GRUB from a disk): 32-bit
//!   protected mode, paging off, EAX = the loader magic, EBX = physical
//!   address of the boot information (Multiboot2 specification §3.2). The
//!   header opens `.boot`, well within the file's first 32 KiB.

use core::arch::global_asm;

/// Value passed to the Rust entry for a PVH boot.
pub const PROTOCOL_PVH: u64 = 1;
/// Value passed to the Rust entry for a Linux 64-bit boot.
pub const PROTOCOL_LINUX: u64 = 2;
/// Value passed to the Rust entry for a Multiboot2 boot.
pub const PROTOCOL_MULTIBOOT2: u64 = 3;

// Page-table entry bits used by the boot tables: present, writable, and (in a
// page directory) a 2 MiB page.
global_asm!(
    r#"
    .set PTE_PRESENT_WRITABLE, 0x3
    .set PTE_HUGE, 0x80
    .set CR4_PAE, 1 << 5
    .set EFER_MSR, 0xc0000080
    .set EFER_LME_NXE, (1 << 8) | (1 << 11)
    .set CR0_PE_PG, (1 << 31) | 1

    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long {phys32_entry}
    .asciz "Xen"
    .long rosv_pvh_entry32

    .section .boot.text, "ax"
    .balign 8
rosv_multiboot2_header:
    .long {multiboot2_magic}
    .long {multiboot2_i386}
    .long rosv_multiboot2_header_end - rosv_multiboot2_header
    .long 0x100000000 - ({multiboot2_magic} + {multiboot2_i386} + (rosv_multiboot2_header_end - rosv_multiboot2_header))
    // The entry address tag: GRUB enters here rather than at the ELF entry,
    // which is the Linux 64-bit one.
    .short {multiboot2_entry_tag}
    .short 0
    .long 12
    .long rosv_multiboot2_entry32
    .balign 8
    .short 0
    .short 0
    .long 8
rosv_multiboot2_header_end:

    .code32
    .global rosv_multiboot2_entry32
rosv_multiboot2_entry32:
    cli
    cld
    // Anything but a Multiboot2 loader: stop here rather than read EBX.
    cmp ${multiboot2_loader_magic}, %eax
    jne 2f
    mov ${multiboot2}, %esi
    jmp rosv_boot_protected32
2:
    hlt
    jmp 2b

    .global rosv_pvh_entry32
rosv_pvh_entry32:
    cli
    cld
    mov ${pvh}, %esi

    // Both 32-bit entries: EBX holds the boot structure, ESI the protocol.
rosv_boot_protected32:
    mov %ebx, %edi
    rdtsc
    mov %eax, rosv_boot_entry_tsc
    mov %edx, rosv_boot_entry_tsc + 4
    mov $rosv_boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME_NXE, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PE_PG, %eax
    mov %eax, %cr0
    lgdt rosv_boot_gdt_pointer
    ljmp $0x08, $1f
    .code64
1:
    // The upper halves of 64-bit registers are undefined after the switch.
    mov %edi, %edi
    mov %esi, %esi
    jmp rosv_boot_common64

    .global rosv_linux_entry64
rosv_linux_entry64:
    cli
    cld
    mov %rsi, %rdi
    rdtsc
    mov %eax, rosv_boot_entry_tsc(%rip)
    mov %edx, rosv_boot_entry_tsc + 4(%rip)
    lea rosv_boot_pml4(%rip), %rax
    mov %rax, %cr3
    mov $EFER_MSR, %ecx
    rdmsr
    or $EFER_LME_NXE, %eax
    wrmsr
    lgdt rosv_boot_gdt_pointer(%rip)
    lea 1f(%rip), %rax
    push $0x08
    push %rax
    lretq
1:
    mov ${linux}, %esi

rosv_boot_common64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    movabs $rosv_boot_stack_top, %rsp
    movabs $rosv_boot_high, %rax
    jmp *%rax

    .section .boot.data, "aw"
    .balign 8
    .global rosv_boot_entry_tsc
rosv_boot_entry_tsc:
    .quad 0
rosv_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
rosv_boot_gdt_end:
    .balign 8
rosv_boot_gdt_pointer:
    .word rosv_boot_gdt_end - rosv_boot_gdt - 1
    .quad rosv_boot_gdt

    .balign 4096
rosv_boot_pml4:
    .quad rosv_boot_pdpt + PTE_PRESENT_WRITABLE
    .fill 255, 8, 0
    .quad rosv_boot_pdpt + PTE_PRESENT_WRITABLE
    .fill 254, 8, 0
    .quad rosv_boot_pdpt + PTE_PRESENT_WRITABLE
rosv_boot_pdpt:
    .quad rosv_boot_pd + PTE_PRESENT_WRITABLE
    .fill 509, 8, 0
    .quad rosv_boot_pd + PTE_PRESENT_WRITABLE
    .quad 0
rosv_boot_pd:
    .set page, 0
    .rept 512
    .quad (page << 21) | PTE_HUGE | PTE_PRESENT_WRITABLE
    .set page, page + 1
    .endr

    .section .text.rosv_boot_high, "ax"
rosv_boot_high:
    mov %rdi, %r12
    mov %rsi, %r13
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    // Both ends are 16-byte aligned (the linker script): clear by words.
    shr $3, %rcx
    xor %eax, %eax
    rep stosq
    mov %r12, %rdi
    mov %r13, %rsi
    xor %ebp, %ebp
    call {rust_entry}
    ud2

    .section .bss.rosv_boot_stack, "aw", @nobits
    .balign 16
rosv_boot_stack_bottom:
    .space {boot_stack_size}
    .global rosv_boot_stack_top
rosv_boot_stack_top:
    "#,
    phys32_entry = const rosv_abi::pvh::XEN_ELFNOTE_PHYS32_ENTRY,
    rust_entry = sym crate::boot::rust_entry,
    boot_stack_size = const crate::boot::BOOT_STACK_SIZE,
    pvh = const PROTOCOL_PVH,
    linux = const PROTOCOL_LINUX,
    multiboot2 = const PROTOCOL_MULTIBOOT2,
    multiboot2_magic = const rosv_abi::multiboot2::HEADER_MAGIC,
    multiboot2_i386 = const rosv_abi::multiboot2::ARCHITECTURE_I386,
    multiboot2_entry_tag = const rosv_abi::multiboot2::HEADER_TAG_ENTRY_ADDRESS,
    multiboot2_loader_magic = const rosv_abi::multiboot2::BOOTLOADER_MAGIC,
    options(att_syntax),
);
