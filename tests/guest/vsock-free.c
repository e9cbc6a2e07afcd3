/*
 * vsock and a tiny HTTP server with no C library and no SSE instructions,
 * for hosts whose KVM cannot run a C library's code in ring 0:
 *
 *   vsock-free serve PORT     prints "cid N" (IOCTL_VM_SOCKETS_GET_LOCAL_CID),
 *                             listens on vsock PORT, waits for a connection
 *                             with poll, reads a line, answers
 *                             "echo: <line>", checks the end of the stream
 *                             and exits with status 0.
 *   vsock-free connect PORT MESSAGE
 *                             connects to the host (CID 2) on PORT, sends
 *                             MESSAGE and a newline, prints
 *                             "received: <line>" for the answer, exits 0.
 *   vsock-free http PORT      serves HTTP on TCP port PORT (all addresses)
 *                             for ever: every request is answered 200 with
 *                             "hello from vsock-free <n>\n".
 *
 * Any failure prints what failed and exits with status 1.
 *
 * Build: gcc -static -nostdlib -fno-builtin -mgeneral-regs-only
 *        -fno-stack-protector -O1 (nothing may touch %fs or the SSE registers).
 */

enum {
    SYS_READ = 0,
    SYS_WRITE = 1,
    SYS_CLOSE = 3,
    SYS_POLL = 7,
    SYS_IOCTL = 16,
    SYS_SOCKET = 41,
    SYS_CONNECT = 42,
    SYS_ACCEPT = 43,
    SYS_SHUTDOWN = 48,
    SYS_BIND = 49,
    SYS_LISTEN = 50,
    SYS_GETSOCKNAME = 51,
    SYS_SETSOCKOPT = 54,
    SYS_EXIT_GROUP = 231,
    AF_INET = 2,
    AF_VSOCK = 40,
    SOCK_STREAM = 1,
    SOCK_NONBLOCK = 04000,
    SOL_SOCKET = 1,
    SO_REUSEADDR = 2,
    POLLIN = 1,
    SHUT_WR = 1,
    EAGAIN = 11,
    IOCTL_VM_SOCKETS_GET_LOCAL_CID = 0x7b9,
    VMADDR_CID_ANY = -1,
    VMADDR_CID_HOST = 2,
};

/* struct sockaddr_vm */
struct vsock_address {
    unsigned short family;
    unsigned short reserved;
    unsigned int port;
    unsigned int cid;
    unsigned char flags;
    unsigned char zero[3];
};

/* struct sockaddr_in: the port and address in network byte order. */
struct inet_address {
    unsigned short family;
    unsigned char port[2];
    unsigned char ipv4[4];
    unsigned char zero[8];
};

struct poll_entry {
    int fd;
    short events;
    short revents;
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

static long system_call5(long number, long first, long second, long third, long fourth, long fifth)
{
    long result;
    register long r10 __asm__("r10") = fourth;
    register long r8 __asm__("r8") = fifth;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(first), "S"(second), "d"(third), "r"(r10), "r"(r8)
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

static void print_number(unsigned long value)
{
    char digits[24];
    int at = 23;
    digits[at] = '\0';
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    print(digits + at);
}

static void fail(const char *what, long result)
{
    print("vsock-free: ");
    print(what);
    print(" failed: ");
    print_number((unsigned long)-result);
    print("\n");
    system_call(SYS_EXIT_GROUP, 1, 0, 0);
}

static int equal(const char *left, const char *right)
{
    while (*left != '\0' && *left == *right) {
        left++;
        right++;
    }
    return *left == *right;
}

static unsigned long number(const char *text)
{
    unsigned long value = 0;
    while (*text >= '0' && *text <= '9')
        value = value * 10 + (unsigned long)(*text++ - '0');
    return value;
}

/* Reads until a newline or `room` bytes; returns the count. */
static long read_line(long fd, char *buffer, long room)
{
    long received = 0;
    while (received < room && (received == 0 || buffer[received - 1] != '\n')) {
        long count = system_call(SYS_READ, fd, (long)(buffer + received), room - received);
        if (count < 0)
            fail("read", count);
        if (count == 0)
            break;
        received += count;
    }
    return received;
}

static void write_all(long fd, const char *bytes, long length)
{
    while (length > 0) {
        long count = system_call(SYS_WRITE, fd, (long)bytes, length);
        if (count <= 0)
            fail("write", count);
        bytes += count;
        length -= count;
    }
}

static void vsock_address(struct vsock_address *address, unsigned int cid, unsigned int port)
{
    address->family = AF_VSOCK;
    address->reserved = 0;
    address->port = port;
    address->cid = cid;
    address->flags = 0;
    for (int index = 0; index < 3; index++)
        address->zero[index] = 0;
}

static void serve(unsigned int port)
{
    struct vsock_address address;
    unsigned int cid = 0;
    char line[256];
    long result;

    long listener = system_call(SYS_SOCKET, AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (listener < 0)
        fail("socket", listener);
    if ((result = system_call(SYS_IOCTL, listener, IOCTL_VM_SOCKETS_GET_LOCAL_CID, (long)&cid)) < 0)
        fail("ioctl", result);
    print("cid ");
    print_number(cid);
    print("\n");
    vsock_address(&address, (unsigned int)VMADDR_CID_ANY, port);
    if ((result = system_call(SYS_BIND, listener, (long)&address, sizeof address)) < 0)
        fail("bind", result);
    if ((result = system_call(SYS_LISTEN, listener, 4, 0)) < 0)
        fail("listen", result);
    if ((result = system_call(SYS_ACCEPT, listener, 0, 0)) != -EAGAIN)
        fail("a nonblocking accept with nothing waiting", result);
    print("listening\n");
    struct poll_entry entry = { (int)listener, POLLIN, 0 };
    if ((result = system_call(SYS_POLL, (long)&entry, 1, 60000)) != 1 || !(entry.revents & POLLIN))
        fail("poll", result);
    long connection = system_call(SYS_ACCEPT, listener, 0, 0);
    if (connection < 0)
        fail("accept", connection);
    long received = read_line(connection, line, sizeof line);
    write_all(connection, "echo: ", 6);
    write_all(connection, line, received);
    /* The host closes after the answer: the stream ends. */
    if ((result = read_line(connection, line, sizeof line)) != 0)
        fail("the end of the stream", result);
    system_call(SYS_CLOSE, connection, 0, 0);
    system_call(SYS_CLOSE, listener, 0, 0);
    print("served\n");
    system_call(SYS_EXIT_GROUP, 0, 0, 0);
}

static void connect_host(unsigned int port, const char *message)
{
    struct vsock_address address;
    char answer[256];
    long result;

    long socket = system_call(SYS_SOCKET, AF_VSOCK, SOCK_STREAM, 0);
    if (socket < 0)
        fail("socket", socket);
    vsock_address(&address, VMADDR_CID_HOST, port);
    if ((result = system_call(SYS_CONNECT, socket, (long)&address, sizeof address)) < 0)
        fail("connect", result);
    write_all(socket, message, (long)length_of(message));
    write_all(socket, "\n", 1);
    if ((result = system_call(SYS_SHUTDOWN, socket, SHUT_WR, 0)) < 0)
        fail("shutdown", result);
    long received = read_line(socket, answer, sizeof answer - 1);
    answer[received] = '\0';
    print("received: ");
    print(answer);
    system_call(SYS_EXIT_GROUP, 0, 0, 0);
}

static void serve_http(unsigned int port)
{
    struct inet_address address;
    char request[4096];
    unsigned long served = 0;
    int one = 1;
    long result;

    address.family = AF_INET;
    address.port[0] = (unsigned char)(port >> 8);
    address.port[1] = (unsigned char)port;
    for (int index = 0; index < 4; index++)
        address.ipv4[index] = 0;
    for (int index = 0; index < 8; index++)
        address.zero[index] = 0;
    long listener = system_call(SYS_SOCKET, AF_INET, SOCK_STREAM, 0);
    if (listener < 0)
        fail("socket", listener);
    system_call5(SYS_SETSOCKOPT, listener, SOL_SOCKET, SO_REUSEADDR, (long)&one, sizeof one);
    if ((result = system_call(SYS_BIND, listener, (long)&address, sizeof address)) < 0)
        fail("bind", result);
    if ((result = system_call(SYS_LISTEN, listener, 16, 0)) < 0)
        fail("listen", result);
    print("serving http\n");
    for (;;) {
        long connection = system_call(SYS_ACCEPT, listener, 0, 0);
        if (connection < 0)
            fail("accept", connection);
        /* Read the head: up to the empty line. */
        long received = 0;
        while (received < (long)sizeof request) {
            long count = system_call(SYS_READ, connection, (long)(request + received), sizeof request - received);
            if (count <= 0)
                break;
            received += count;
            if (received >= 4 && request[received - 4] == '\r' && request[received - 3] == '\n' &&
                request[received - 2] == '\r' && request[received - 1] == '\n')
                break;
        }
        served++;
        char body[64];
        const char *greeting = "hello from vsock-free ";
        long length = 0;
        while (greeting[length] != '\0') {
            body[length] = greeting[length];
            length++;
        }
        char digits[24];
        int at = 23;
        unsigned long value = served;
        do {
            digits[--at] = (char)('0' + value % 10);
            value /= 10;
        } while (value != 0);
        while (at < 23)
            body[length++] = digits[at++];
        body[length++] = '\n';
        const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ";
        write_all(connection, head, (long)length_of(head));
        at = 23;
        value = (unsigned long)length;
        do {
            digits[--at] = (char)('0' + value % 10);
            value /= 10;
        } while (value != 0);
        write_all(connection, digits + at, 23 - at);
        write_all(connection, "\r\n\r\n", 4);
        write_all(connection, body, length);
        system_call(SYS_CLOSE, connection, 0, 0);
    }
}

__attribute__((used)) void start(long *stack)
{
    long argc = stack[0];
    char **argv = (char **)(stack + 1);

    if (argc == 3 && equal(argv[1], "serve"))
        serve((unsigned int)number(argv[2]));
    if (argc == 4 && equal(argv[1], "connect"))
        connect_host((unsigned int)number(argv[2]), argv[3]);
    if (argc == 3 && equal(argv[1], "http"))
        serve_http((unsigned int)number(argv[2]));
    print("usage: vsock-free serve PORT | connect PORT MESSAGE | http PORT\n");
    system_call(SYS_EXIT_GROUP, 1, 0, 0);
}

/* The entry: the stack holds argc, then argv. */
__asm__(".globl _start\n"
        "_start:\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call start\n"
        "    hlt\n");
