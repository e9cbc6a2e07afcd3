/* A static program with no C library: writes a line, exits with status 3. */
    .globl _start
    .text
_start:
    mov $1, %eax
    mov $1, %edi
    lea message(%rip), %rsi
    mov $message_end - message, %edx
    syscall
    mov $231, %eax
    mov $3, %edi
    syscall
    hlt

    .section .rodata
message:
    .ascii "syscall-only program\n"
message_end:
