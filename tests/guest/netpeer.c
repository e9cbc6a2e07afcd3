/* One end of a TCP conversation with the host, for the network tests.
 *
 *   netpeer serve PORT                 listens on 0.0.0.0:PORT, prints
 *                                      "listening on PORT", accepts one
 *                                      connection, reads a line and answers
 *                                      "echo: <line>"
 *   netpeer connect ADDR PORT MESSAGE  connects (to an IPv4 or IPv6
 *                                      address; to IPv6 ones for up to
 *                                      five seconds while the network is
 *                                      unreachable, as the address comes
 *                                      from the router), sends MESSAGE and
 *                                      a newline, prints "received: <line>"
 *                                      for the line that comes back
 *
 * Exits 0 when the conversation took place; on any error prints what failed
 * with the errno text and exits 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

static int fail(const char *what) {
    printf("netpeer: %s: %s\n", what, strerror(errno));
    return 1;
}

static int parse_port(const char *text, struct sockaddr_in *address) {
    char *end;
    long port = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || port < 1 || port > 65535) {
        printf("netpeer: \"%s\" is not a port from 1 to 65535\n", text);
        return -1;
    }
    address->sin_port = htons((unsigned short)port);
    return 0;
}

/* Reads up to and without the first newline into `line` (NUL-terminated);
 * the peer closing first ends the line too. Returns its length, or -1. */
static ssize_t read_line(int fd, char *line, size_t capacity) {
    size_t length = 0;
    while (length + 1 < capacity) {
        ssize_t count = read(fd, line + length, 1);
        if (count < 0)
            return -1;
        if (count == 0 || line[length] == '\n')
            break;
        length++;
    }
    line[length] = '\0';
    return (ssize_t)length;
}

static int write_all(int fd, const char *bytes, size_t length) {
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written < 0)
            return -1;
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

static int serve(const char *port_text) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (parse_port(port_text, &address) != 0)
        return 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0)
        return fail("socket");
    int on = 1;
    if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        return fail("setsockopt SO_REUSEADDR");
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0)
        return fail("bind");
    if (listen(listener, 1) != 0)
        return fail("listen");
    printf("listening on %s\n", port_text);
    fflush(stdout);
    int connection = accept(listener, NULL, NULL);
    if (connection < 0)
        return fail("accept");
    char line[LINE_MAX_BYTES];
    if (read_line(connection, line, sizeof line) < 0)
        return fail("read");
    printf("received: %s\n", line);
    char answer[LINE_MAX_BYTES + 16];
    int length = snprintf(answer, sizeof answer, "echo: %s\n", line);
    if (write_all(connection, answer, (size_t)length) != 0)
        return fail("write");
    if (close(connection) != 0)
        return fail("close");
    close(listener);
    return 0;
}

static int connect_and_send(const char *address_text, const char *port_text, const char *message) {
    struct sockaddr_in address = {.sin_family = AF_INET};
    struct sockaddr_in6 address6 = {.sin6_family = AF_INET6};
    int is_ipv6 = inet_pton(AF_INET6, address_text, &address6.sin6_addr) == 1;
    if (!is_ipv6 && inet_pton(AF_INET, address_text, &address.sin_addr) != 1) {
        printf("netpeer: \"%s\" is not an IPv4 or IPv6 address\n", address_text);
        return 1;
    }
    if (parse_port(port_text, &address) != 0)
        return 1;
    address6.sin6_port = address.sin_port;
    int fd = -1;
    for (int attempt = 0;; attempt++) {
        fd = socket(is_ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return fail("socket");
        int connected = is_ipv6 ? connect(fd, (struct sockaddr *)&address6, sizeof address6)
                                : connect(fd, (struct sockaddr *)&address, sizeof address);
        if (connected == 0)
            break;
        if (!is_ipv6 || (errno != ENETUNREACH && errno != EADDRNOTAVAIL) || attempt == 50)
            return fail("connect");
        close(fd);
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
    }
    if (write_all(fd, message, strlen(message)) != 0 || write_all(fd, "\n", 1) != 0)
        return fail("write");
    char line[LINE_MAX_BYTES];
    if (read_line(fd, line, sizeof line) < 0)
        return fail("read");
    printf("received: %s\n", line);
    if (close(fd) != 0)
        return fail("close");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2]);
    if (argc == 5 && strcmp(argv[1], "connect") == 0)
        return connect_and_send(argv[2], argv[3], argv[4]);
    printf("usage: netpeer serve PORT | netpeer connect ADDR PORT MESSAGE\n");
    return 1;
}
