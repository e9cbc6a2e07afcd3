/*
 * A TCP client with no C library, for hosts whose KVM cannot run a C
 * library's SSE code in ring 0: `connect-free ADDRESS PORT MESSAGE` connects
 * to ADDRESS:PORT (IPv4), sends MESSAGE and a newline, prints
 * "received: <line>" for the line that comes back, and exits with status 0.
 * Any failure prints what failed and exits with status 1.
 *
 * Build: gcc -static -nostdlib -fno-builtin -mgeneral-regs-only
 *        -fno-stack-protector -O1 (nothing may touch %fs or the SSE registers).
 */

enum {
    SYS_READ = 0,
    SYS_WRITE = 1,
    SYS_SOCKET = 41,
    SYS_CONNECT = 42,
    SYS_EXIT_GROUP = 231,
    AF_INET = 2,
    SOCK_STREAM = 1,
};

/* struct sockaddr_in: the port and address in network byte order. */
struct address {
    unsigned short family;
    unsigned char port[2];
    unsigned char ipv4[4];
    unsigned char zero[8];
};

static long system_call(long number, long first, long second, long third)
{
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(first), "S"(second), "d"(third)
                     : "rcx", "r11", "memory");
    return result;
}

static unsigned long length_of(const char *text)
{
    unsigned long length = 0;
    while (text[length] != '\0')
        length++;
    return length;
}

static void print(const char *text)
{
    system_call(SYS_WRITE, 1, (long)text, (long)length_of(text));
}

static void fail(const char *what)
{
    print("connect-free: ");
    print(what);
    print(" failed\n");
    system_call(SYS_EXIT_GROUP, 1, 0, 0);
}

/* Reads a decimal number up to `end` (or the end of the text); returns the
 * position after it, or 0 when there is no number below `limit`. */
static const char *number(const char *text, char end, unsigned long limit, unsigned long *value)
{
    *value = 0;
    if (*text < '0' || *text > '9')
        return 0;
    while (*text >= '0' && *text <= '9') {
        *value = *value * 10 + (unsigned long)(*text - '0');
        if (*value > limit)
            return 0;
        text++;
    }
    return *text == end ? text : 0;
}

static int parse_address(const char *text, struct address *address)
{
    unsigned long value;
    for (int index = 0; index < 4; index++) {
        text = number(text, index < 3 ? '.' : '\0', 255, &value);
        if (text == 0)
            return 0;
        address->ipv4[index] = (unsigned char)value;
        if (index < 3)
            text++;
    }
    return 1;
}

__attribute__((used)) void start(long *stack)
{
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    struct address address;
    unsigned long port;
    char answer[256];
    long received = 0;

    if (argc != 4)
        fail("usage: connect-free ADDRESS PORT MESSAGE;");
    address.family = AF_INET;
    for (int index = 0; index < 8; index++)
        address.zero[index] = 0;
    if (!parse_address(argv[1], &address))
        fail("reading the address");
    if (number(argv[2], '\0', 65535, &port) == 0)
        fail("reading the port");
    address.port[0] = (unsigned char)(port >> 8);
    address.port[1] = (unsigned char)port;

    long socket = system_call(SYS_SOCKET, AF_INET, SOCK_STREAM, 0);
    if (socket < 0)
        fail("socket");
    if (system_call(SYS_CONNECT, socket, (long)&address, sizeof address) < 0)
        fail("connect");
    if (system_call(SYS_WRITE, socket, (long)argv[3], (long)length_of(argv[3])) < 0 ||
        system_call(SYS_WRITE, socket, (long)"\n", 1) != 1)
        fail("write");
    while (received < (long)sizeof answer - 1 && (received == 0 || answer[received - 1] != '\n')) {
        long count = system_call(SYS_READ, socket, (long)(answer + received), sizeof answer - 1 - received);
        if (count <= 0)
            fail("read");
        received += count;
    }
    answer[received] = '\0';
    print("received: ");
    print(answer);
    system_call(SYS_EXIT_GROUP, 0, 0, 0);
}

/* The entry: the stack holds argc, then argv. */
__asm__(".globl _start\n"
        "_start:\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call start\n"
        "    hlt\n");
