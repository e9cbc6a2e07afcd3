/*
 * Prints what arrived in argv and envp, so that a test can compare it with
 * what it passed, however large: "argc N", one line per argument
 * "argument I: L bytes, digest D", then "environment: N entries, L bytes,
 * digest D" (environment entries in order, each followed by its NUL), where
 * D is the 64-bit FNV-1a hash in hexadecimal. Exits with status 0.
 *
 * No C library and no SSE instructions, so that it runs wherever rosv runs.
 * Build: gcc -static -nostdlib -fno-builtin -mgeneral-regs-only
 *        -fno-stack-protector -O1
 */

enum { SYS_WRITE = 1, SYS_EXIT_GROUP = 231 };

static long system_call(long number, long first, long second, long third)
{
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(first), "S"(second), "d"(third)
                     : "rcx", "r11", "memory");
    return result;
}

static char line[128];
static unsigned long line_length;

static void put_text(const char *text)
{
    while (*text && line_length < sizeof line)
        line[line_length++] = *text++;
}

static void put_number(unsigned long value, unsigned base)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    while (count > 0 && line_length < sizeof line)
        line[line_length++] = digits[--count];
}

static void end_line(void)
{
    if (line_length < sizeof line)
        line[line_length++] = '\n';
    system_call(SYS_WRITE, 1, (long)line, (long)line_length);
    line_length = 0;
}

/* FNV-1a over `length` bytes, continuing from `hash`. */
static unsigned long digest(unsigned long hash, const unsigned char *bytes, unsigned long length)
{
    for (unsigned long index = 0; index < length; index++) {
        hash ^= bytes[index];
        hash *= 0x100000001b3UL;
    }
    return hash;
}

static unsigned long length_of(const char *text)
{
    unsigned long length = 0;
    while (text[length])
        length++;
    return length;
}

#define FNV_OFFSET 0xcbf29ce484222325UL

/* Called from _start with the initial stack: argc, argv..., 0, envp..., 0. */
__attribute__((used)) static void start(long *stack)
{
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    put_text("argc ");
    put_number((unsigned long)argc, 10);
    end_line();
    for (long index = 0; index < argc; index++) {
        unsigned long length = length_of(argv[index]);
        put_text("argument ");
        put_number((unsigned long)index, 10);
        put_text(": ");
        put_number(length, 10);
        put_text(" bytes, digest ");
        put_number(digest(FNV_OFFSET, (const unsigned char *)argv[index], length), 16);
        end_line();
    }
    unsigned long entries = 0, total = 0, hash = FNV_OFFSET;
    for (char **entry = envp; *entry; entry++) {
        unsigned long length = length_of(*entry) + 1;
        hash = digest(hash, (const unsigned char *)*entry, length);
        total += length;
        entries++;
    }
    put_text("environment: ");
    put_number(entries, 10);
    put_text(" entries, ");
    put_number(total, 10);
    put_text(" bytes, digest ");
    put_number(hash, 16);
    end_line();
    system_call(SYS_EXIT_GROUP, 0, 0, 0);
}

__asm__(".globl _start\n"
        "_start:\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call start\n"
        "    hlt\n");
