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
 *   vsock-free tcp-connect PORT MESSAGE
 *                             connects to 127.0.0.1:PORT over TCP, sends
 *                             MESSAGE and a newline, shuts its sending side
 *                             down, prints "received: <all>" for what comes
 *                             back until the end of the stream (or "reset by
 *                             peer" when the connection is reset), exits 0.
 *   vsock-free tcp-serve PORT listens on TCP port PORT, accepts one
 *                             connection, reads it to the end of the
 *                             stream, answers "echo: <all>", closes and
 *                             exits 0.
 *   vsock-free lambda         a Lambda runtime: asks the Runtime API at
 *                             $AWS_LAMBDA_RUNTIME_API (IPv4:PORT) for
 *                             invocations for ever; an event containing
 *                             "fail" is answered with an error, any other
 *                             with {"echo":EVENT,"count":N}.
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
    ECONNRESET_NUMBER = 104,
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

/* A TCP connection to IPv4 address `ipv4` (four bytes) and `port`. */
static long tcp_connect(const unsigned char *ipv4, unsigned int port)
{
    struct inet_address address;
    long result;

    address.family = AF_INET;
    address.port[0] = (unsigned char)(port >> 8);
    address.port[1] = (unsigned char)port;
    for (int index = 0; index < 4; index++)
        address.ipv4[index] = ipv4[index];
    for (int index = 0; index < 8; index++)
        address.zero[index] = 0;
    long socket = system_call(SYS_SOCKET, AF_INET, SOCK_STREAM, 0);
    if (socket < 0)
        fail("socket", socket);
    if ((result = system_call(SYS_CONNECT, socket, (long)&address, sizeof address)) < 0)
        fail("connect", result);
    return socket;
}

/* Reads until the end of the stream or `room` bytes; returns the count. */
static long read_all(long fd, char *buffer, long room)
{
    long received = 0;
    while (received < room) {
        long count = system_call(SYS_READ, fd, (long)(buffer + received), room - received);
        if (count < 0)
            fail("read", count);
        if (count == 0)
            break;
        received += count;
    }
    return received;
}

static void connect_tcp(unsigned int port, const char *message)
{
    static const unsigned char loopback[4] = { 127, 0, 0, 1 };
    char answer[4096];
    long result;

    long socket = tcp_connect(loopback, port);
    write_all(socket, message, (long)length_of(message));
    write_all(socket, "\n", 1);
    if ((result = system_call(SYS_SHUTDOWN, socket, SHUT_WR, 0)) < 0)
        fail("shutdown", result);
    long received = 0;
    while (received < (long)sizeof answer - 1) {
        long count = system_call(SYS_READ, socket, (long)(answer + received), (long)sizeof answer - 1 - received);
        if (count == -ECONNRESET_NUMBER) {
            /* A reset after our shutdown is reported, as Linux reports it. */
            print("reset by peer\n");
            system_call(SYS_EXIT_GROUP, 0, 0, 0);
        }
        if (count < 0)
            fail("read", count);
        if (count == 0)
            break;
        received += count;
    }
    answer[received] = '\0';
    print("received: ");
    print(answer);
    system_call(SYS_CLOSE, socket, 0, 0);
    system_call(SYS_EXIT_GROUP, 0, 0, 0);
}

static void serve_tcp_once(unsigned int port)
{
    struct inet_address address;
    static char received[4096];
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
    if ((result = system_call(SYS_BIND, listener, (long)&address, sizeof address)) < 0)
        fail("bind", result);
    if ((result = system_call(SYS_LISTEN, listener, 4, 0)) < 0)
        fail("listen", result);
    print("serving tcp\n");
    long connection = system_call(SYS_ACCEPT, listener, 0, 0);
    if (connection < 0)
        fail("accept", connection);
    /* The host shut its sending side: the stream ends, and the answer
     * still goes back. */
    long count = read_all(connection, received, sizeof received);
    write_all(connection, "echo: ", 6);
    write_all(connection, received, count);
    system_call(SYS_CLOSE, connection, 0, 0);
    print("served tcp\n");
    system_call(SYS_EXIT_GROUP, 0, 0, 0);
}

/* Whether `text` starts with `prefix`. */
static int starts_with(const char *text, const char *prefix)
{
    while (*prefix != '\0' && *text == *prefix) {
        text++;
        prefix++;
    }
    return *prefix == '\0';
}

/* Whether `text` starts with `prefix`, letters compared without case. */
static int starts_with_folded(const char *text, const char *prefix)
{
    for (; *prefix != '\0'; text++, prefix++) {
        char left = *text, right = *prefix;
        if (left >= 'A' && left <= 'Z')
            left = (char)(left - 'A' + 'a');
        if (right >= 'A' && right <= 'Z')
            right = (char)(right - 'A' + 'a');
        if (left != right)
            return 0;
    }
    return 1;
}

/* Whether `needle` occurs in the `length` bytes at `text`. */
static int contains(const char *text, long length, const char *needle)
{
    long needle_length = (long)length_of(needle);
    for (long at = 0; at + needle_length <= length; at++) {
        long index = 0;
        while (index < needle_length && text[at + index] == needle[index])
            index++;
        if (index == needle_length)
            return 1;
    }
    return 0;
}

static char *append(char *at, const char *text)
{
    while (*text != '\0')
        *at++ = *text++;
    return at;
}

static char *append_number(char *at, unsigned long value)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (count > 0)
        *at++ = digits[--count];
    return at;
}

/* One HTTP/1.1 exchange with the Runtime API on a connection of its own;
 * the answer (head and body) goes into `answer`, its length returned. */
static long exchange(const unsigned char *ipv4, unsigned int port, const char *request, long request_length,
                     char *answer, long room)
{
    long socket = tcp_connect(ipv4, port);
    write_all(socket, request, request_length);
    long received = read_all(socket, answer, room);
    system_call(SYS_CLOSE, socket, 0, 0);
    return received;
}

static void lambda_runtime(char **environment)
{
    static char answer[65536];
    static char request[65536 + 1024];
    unsigned char ipv4[4] = { 0, 0, 0, 0 };
    unsigned int port = 0;
    const char *api = 0;

    for (; *environment != 0; environment++)
        if (starts_with(*environment, "AWS_LAMBDA_RUNTIME_API="))
            api = *environment + length_of("AWS_LAMBDA_RUNTIME_API=");
    if (api == 0)
        fail("finding AWS_LAMBDA_RUNTIME_API", -22);
    for (int part = 0; part < 4; part++) {
        ipv4[part] = (unsigned char)number(api);
        while (*api >= '0' && *api <= '9')
            api++;
        if (*api != (part < 3 ? '.' : ':'))
            fail("parsing AWS_LAMBDA_RUNTIME_API", -22);
        api++;
    }
    port = (unsigned int)number(api);
    print("runtime api port ");
    print_number(port);
    print("\n");
    for (unsigned long count = 1;; count++) {
        char *at = append(request, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: runtime\r\n"
                                   "Connection: close\r\n\r\n");
        long length = exchange(ipv4, port, request, at - request, answer, sizeof answer - 1);
        answer[length] = '\0';
        /* The request id and the event. */
        char id[128];
        long id_length = 0;
        long body = -1;
        for (long line = 0; line < length; line++) {
            if (line != 0 && answer[line - 1] != '\n')
                continue;
            if (answer[line] == '\r' && line + 1 < length && answer[line + 1] == '\n') {
                body = line + 2;
                break;
            }
            if (starts_with_folded(answer + line, "Lambda-Runtime-Aws-Request-Id:")) {
                long from = line + (long)length_of("Lambda-Runtime-Aws-Request-Id:");
                while (from < length && answer[from] == ' ')
                    from++;
                while (from < length && answer[from] != '\r' && id_length < (long)sizeof id - 1)
                    id[id_length++] = answer[from++];
            }
        }
        id[id_length] = '\0';
        if (id_length == 0 || body < 0)
            fail("reading an invocation", -71);
        print("invocation ");
        print(id);
        print("\n");
        const char *event = answer + body;
        long event_length = length - body;
        int is_failure = contains(event, event_length, "fail");
        static char document[65536 + 64];
        char *end = document;
        if (is_failure) {
            end = append(end, "{\"errorMessage\":\"asked to fail\",\"errorType\":\"Asked\"}");
        } else {
            end = append(end, "{\"echo\":");
            for (long index = 0; index < event_length && end - document < (long)sizeof document - 64; index++)
                *end++ = event[index];
            end = append(end, ",\"count\":");
            end = append_number(end, count);
            end = append(end, "}");
        }
        at = append(request, "POST /2018-06-01/runtime/invocation/");
        at = append(at, id);
        at = append(at, is_failure ? "/error" : "/response");
        at = append(at, " HTTP/1.1\r\nHost: runtime\r\nConnection: close\r\nContent-Type: application/json\r\n");
        if (is_failure)
            at = append(at, "Lambda-Runtime-Function-Error-Type: Asked\r\n");
        at = append(at, "Content-Length: ");
        at = append_number(at, (unsigned long)(end - document));
        at = append(at, "\r\n\r\n");
        for (char *byte = document; byte < end; byte++)
            *at++ = *byte;
        length = exchange(ipv4, port, request, at - request, answer, sizeof answer - 1);
        answer[length] = '\0';
        if (!starts_with_folded(answer, "HTTP/1.1 202"))
            fail("posting the outcome", -71);
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
    if (argc == 4 && equal(argv[1], "tcp-connect"))
        connect_tcp((unsigned int)number(argv[2]), argv[3]);
    if (argc == 3 && equal(argv[1], "tcp-serve"))
        serve_tcp_once((unsigned int)number(argv[2]));
    if (argc == 2 && equal(argv[1], "lambda"))
        lambda_runtime(argv + argc + 1);
    print("usage: vsock-free serve PORT | connect PORT MESSAGE | http PORT | tcp-connect PORT MESSAGE | tcp-serve PORT | lambda\n");
    system_call(SYS_EXIT_GROUP, 1, 0, 0);
}

/* The entry: the stack holds argc, then argv. */
__asm__(".globl _start\n"
        "_start:\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call start\n"
        "    hlt\n");
