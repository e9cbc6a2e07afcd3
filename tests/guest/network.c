/* Checks TCP and UDP sockets over the loopback interface, between threads:
 * addresses, connections and their errors, a megabyte through one
 * connection, half closes, many clients at once, non-blocking calls, poll
 * and epoll readiness, timeouts, options and message calls. Prints one
 * line per check ("ok <name>" or "FAIL <name>: <why>") and exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

/* A listening TCP socket on an ephemeral loopback port; the port in
 * `port`. */
static int listener(unsigned short *port, int backlog) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    *port = ntohs(address.sin_port);
    return fd;
}

static int connect_to(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loopback(port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int write_all(int fd, const unsigned char *bytes, size_t length) {
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written <= 0)
            return -1;
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

/* ---- addresses and errors ---- */

static void check_creation(void) {
    check(socket(AF_INET, 99, 0) == -1 && errno == EINVAL, "an unknown socket type: EINVAL", "no EINVAL");
    check(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -1 && errno == EPROTONOSUPPORT,
          "TCP sockets speak only TCP: EPROTONOSUPPORT", "no EPROTONOSUPPORT");
    check(bind(1, NULL, 0) == -1 && errno == ENOTSOCK, "bind on a terminal: ENOTSOCK", "no ENOTSOCK");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct stat status;
    check(fd >= 0 && fstat(fd, &status) == 0 && S_ISSOCK(status.st_mode), "fstat says socket",
          "mode %o", status.st_mode);
    int type = 0;
    socklen_t length = sizeof type;
    check(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM && length == 4,
          "SO_TYPE", "type %d length %u", type, length);
    struct sockaddr_in address;
    length = sizeof address;
    check(getpeername(fd, (struct sockaddr *)&address, &length) == -1 && errno == ENOTCONN,
          "getpeername before connecting: ENOTCONN", "no ENOTCONN");
    char byte;
    check(recv(fd, &byte, 1, 0) == -1 && errno == ENOTCONN, "recv before connecting: ENOTCONN", "no ENOTCONN");
    struct sockaddr_in far = {.sin_family = AF_INET, .sin_port = htons(80)};
    far.sin_addr.s_addr = inet_addr("203.0.113.9");
    check(bind(fd, (struct sockaddr *)&far, sizeof far) == -1 && errno == EADDRNOTAVAIL,
          "bind to a foreign address: EADDRNOTAVAIL", "no EADDRNOTAVAIL");
    check(bind(fd, (struct sockaddr *)&address, 3) == -1 && errno == EINVAL, "a short address: EINVAL",
          "no EINVAL");
    close(fd);
}

static void check_ports(void) {
    unsigned short port;
    int first = listener(&port, 4);
    int second = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loopback(port);
    check(first >= 0 && port >= 1024, "an ephemeral port", "port %u", port);
    check(bind(second, (struct sockaddr *)&address, sizeof address) == -1 && errno == EADDRINUSE,
          "a port in use: EADDRINUSE", "no EADDRINUSE");
    close(first);
    check(bind(second, (struct sockaddr *)&address, sizeof address) == 0, "a closed listener frees its port",
          "bind failed");
    close(second);
    int refused = connect_to(port);
    check(refused == -1 && errno == ECONNREFUSED, "no listener: ECONNREFUSED", "connect gave %d", refused);
}

/* ---- one connection ---- */

#define BULK_BYTES (1024 * 1024)

static unsigned char pattern(size_t index) {
    return (unsigned char)(index * 31 + index / 4096);
}

static void *send_bulk(void *argument) {
    int fd = *(int *)argument;
    unsigned char *bytes = malloc(BULK_BYTES);
    for (size_t index = 0; index < BULK_BYTES; index++)
        bytes[index] = pattern(index);
    long result = write_all(fd, bytes, BULK_BYTES);
    shutdown(fd, SHUT_WR);
    free(bytes);
    return (void *)result;
}

static void check_connection(void) {
    unsigned short port;
    int server = listener(&port, 4);
    int client = connect_to(port);
    check(client >= 0, "connect to a listener", "connect failed");
    struct sockaddr_in peer;
    socklen_t length = sizeof peer;
    int accepted = accept4(server, (struct sockaddr *)&peer, &length, SOCK_CLOEXEC);
    struct sockaddr_in mine;
    socklen_t mine_length = sizeof mine;
    getsockname(client, (struct sockaddr *)&mine, &mine_length);
    check(accepted >= 0 && length == sizeof peer && peer.sin_port == mine.sin_port &&
              peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "accept gives the client's address", "accepted %d, port %u vs %u", accepted, ntohs(peer.sin_port),
          ntohs(mine.sin_port));
    length = sizeof peer;
    check(getpeername(client, (struct sockaddr *)&peer, &length) == 0 && ntohs(peer.sin_port) == port,
          "getpeername", "port %u", ntohs(peer.sin_port));

    pthread_t sender;
    pthread_create(&sender, NULL, send_bulk, &client);
    unsigned char *received = malloc(BULK_BYTES + 1);
    size_t total = 0;
    ssize_t count;
    while ((count = read(accepted, received + total, BULK_BYTES + 1 - total)) > 0)
        total += (size_t)count;
    void *sent;
    pthread_join(sender, &sent);
    int intact = total == BULK_BYTES;
    for (size_t index = 0; intact && index < total; index++)
        intact = received[index] == pattern(index);
    check(sent == NULL && count == 0 && intact, "a megabyte arrives intact, then end of file",
          "received %zu bytes, last read %zd", total, count);
    free(received);

    /* The other direction still works after the client's half close. */
    check(write(accepted, "reply", 5) == 5, "write after the peer's half close", "write failed");
    char buffer[16] = {0};
    check(read(client, buffer, sizeof buffer) == 5 && memcmp(buffer, "reply", 5) == 0,
          "read after a half close", "read '%s'", buffer);
    close(accepted);
    check(read(client, buffer, sizeof buffer) == 0, "the peer's close: end of file", "no end of file");
    close(client);
    close(server);
}

static void check_vectors(void) {
    unsigned short port;
    int server = listener(&port, 4);
    int client = connect_to(port);
    int accepted = accept(server, NULL, NULL);
    struct iovec out[3] = {{"one ", 4}, {"two ", 4}, {"three", 5}};
    check(writev(client, out, 3) == 13, "writev on a socket", "writev failed");
    struct msghdr message = {.msg_iov = out, .msg_iovlen = 3};
    check(sendmsg(client, &message, MSG_NOSIGNAL) == 13, "sendmsg", "sendmsg failed");
    long long deadline = now_ms() + 2000;
    int waiting = 0;
    while (now_ms() < deadline && (ioctl(accepted, FIONREAD, &waiting) != 0 || waiting < 26))
        usleep(1000);
    check(waiting == 26, "FIONREAD counts waiting bytes", "FIONREAD %d", waiting);
    char first[6], second[40] = {0};
    struct iovec in[2] = {{first, sizeof first}, {second, sizeof second}};
    struct msghdr incoming = {.msg_iov = in, .msg_iovlen = 2};
    ssize_t count = recvmsg(accepted, &incoming, 0);
    check(count == 26 && memcmp(first, "one tw", 6) == 0 && memcmp(second, "o threeone two three", 20) == 0,
          "recvmsg scatters", "recvmsg %zd", count);
    char peeked[4];
    write(client, "peek", 4);
    usleep(10000);
    check(recv(accepted, peeked, 4, MSG_PEEK) == 4 && recv(accepted, peeked, 4, 0) == 4 &&
              memcmp(peeked, "peek", 4) == 0,
          "MSG_PEEK leaves the data", "peek failed");
    close(client);
    close(accepted);
    close(server);
}

/* ---- many clients ---- */

#define CLIENTS 16

static unsigned short shared_port;

static void *client_thread(void *argument) {
    long index = (long)argument;
    int fd = connect_to(shared_port);
    if (fd < 0)
        return (void *)1;
    char message[32], answer[32] = {0};
    int length = snprintf(message, sizeof message, "client %ld", index);
    if (write(fd, message, (size_t)length) != length)
        return (void *)2;
    ssize_t count = read(fd, answer, sizeof answer);
    close(fd);
    return (void *)(long)(count != length || memcmp(message, answer, (size_t)length) != 0);
}

static void check_many_clients(void) {
    int server = listener(&shared_port, CLIENTS);
    pthread_t threads[CLIENTS];
    for (long index = 0; index < CLIENTS; index++)
        pthread_create(&threads[index], NULL, client_thread, (void *)index);
    int echoed = 0;
    for (int served = 0; served < CLIENTS; served++) {
        int fd = accept(server, NULL, NULL);
        char buffer[32];
        ssize_t count = read(fd, buffer, sizeof buffer);
        if (count > 0 && write(fd, buffer, (size_t)count) == count)
            echoed++;
        close(fd);
    }
    int failed = 0;
    for (int index = 0; index < CLIENTS; index++) {
        void *result;
        pthread_join(threads[index], &result);
        failed += result != NULL;
    }
    check(echoed == CLIENTS && failed == 0, "sixteen clients at once", "%d echoed, %d clients failed", echoed,
          failed);
    close(server);
}

/* ---- non-blocking calls, poll and epoll ---- */

static void check_nonblocking(void) {
    unsigned short port;
    int server = listener(&port, 4);
    fcntl(server, F_SETFL, O_NONBLOCK);
    check(accept(server, NULL, NULL) == -1 && errno == EAGAIN, "accept with nobody waiting: EAGAIN",
          "no EAGAIN");
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(epfd, EPOLL_CTL_ADD, server, &event);

    int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = loopback(port);
    int connected = connect(client, (struct sockaddr *)&address, sizeof address);
    check(connected == 0 || errno == EINPROGRESS, "a non-blocking connect", "connect gave errno");
    struct pollfd writable = {.fd = client, .events = POLLOUT};
    int error = -1;
    socklen_t length = sizeof error;
    check(poll(&writable, 1, 2000) == 1 && (writable.revents & POLLOUT) &&
              getsockopt(client, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0,
          "the connection completes: POLLOUT and SO_ERROR 0", "revents %#x error %d", writable.revents, error);
    struct epoll_event ready;
    check(epoll_wait(epfd, &ready, 1, 2000) == 1 && ready.data.u32 == 1 && (ready.events & EPOLLIN),
          "epoll: the listener is readable", "no event");
    int accepted = accept4(server, NULL, NULL, SOCK_NONBLOCK);
    check(accepted >= 0, "accept after epoll", "accept failed");
    char byte;
    check(read(accepted, &byte, 1) == -1 && errno == EAGAIN, "a read with nothing sent: EAGAIN", "no EAGAIN");

    event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    event.data.u32 = 2;
    epoll_ctl(epfd, EPOLL_CTL_ADD, accepted, &event);
    check(epoll_wait(epfd, &ready, 1, 0) == 0, "epoll: no data yet", "an event came");
    write(client, "x", 1);
    check(epoll_wait(epfd, &ready, 1, 2000) == 1 && ready.data.u32 == 2 && (ready.events & EPOLLIN),
          "epoll: data arrives", "no event");
    shutdown(client, SHUT_WR);
    long long started = now_ms();
    int saw_hangup = 0;
    while (!saw_hangup && now_ms() - started < 2000) {
        if (epoll_wait(epfd, &ready, 1, 2000) == 1 && (ready.events & EPOLLRDHUP))
            saw_hangup = 1;
    }
    check(saw_hangup, "epoll: EPOLLRDHUP after the peer's shutdown", "no EPOLLRDHUP");
    close(epfd);
    close(accepted);
    close(client);

    int refused = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    address = loopback(1);
    connect(refused, (struct sockaddr *)&address, sizeof address);
    struct pollfd failing = {.fd = refused, .events = POLLOUT};
    error = 0;
    check(poll(&failing, 1, 2000) == 1 && (failing.revents & (POLLERR | POLLHUP)) &&
              getsockopt(refused, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == ECONNREFUSED,
          "a refused non-blocking connect: POLLERR and SO_ERROR ECONNREFUSED", "revents %#x error %d",
          failing.revents, error);
    close(refused);
    close(server);
}

static void check_options(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1, value = 0;
    socklen_t length = sizeof value;
    check(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 &&
              getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0 && value == 1,
          "TCP_NODELAY reads back", "value %d", value);
    check(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR", "refused");
    check(setsockopt(fd, SOL_SOCKET, 12345, &one, sizeof one) == -1 && errno == ENOPROTOOPT,
          "an unknown option: ENOPROTOOPT", "no ENOPROTOOPT");
    close(fd);

    unsigned short port;
    int server = listener(&port, 1);
    int client = connect_to(port);
    int accepted = accept(server, NULL, NULL);
    struct timeval timeout = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(accepted, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char byte;
    long long started = now_ms();
    ssize_t count = read(accepted, &byte, 1);
    long long waited = now_ms() - started;
    check(count == -1 && errno == EAGAIN && waited >= 150, "SO_RCVTIMEO ends a read with EAGAIN",
          "read %zd after %lld ms", count, waited);
    close(accepted);
    close(client);
    close(server);
}

/* ---- UDP ---- */

static void check_datagrams(void) {
    int server = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    bind(server, (struct sockaddr *)&address, sizeof address);
    getsockname(server, (struct sockaddr *)&address, &length);
    int client = socket(AF_INET, SOCK_DGRAM, 0);
    check(send(client, "x", 1, 0) == -1 && errno == EDESTADDRREQ, "send without a destination: EDESTADDRREQ",
          "no EDESTADDRREQ");
    check(sendto(client, "datagram one", 12, 0, (struct sockaddr *)&address, sizeof address) == 12,
          "sendto", "sendto failed");
    char buffer[64] = {0};
    struct sockaddr_in source;
    socklen_t source_length = sizeof source;
    ssize_t count = recvfrom(server, buffer, 4, MSG_TRUNC, (struct sockaddr *)&source, &source_length);
    struct sockaddr_in client_address;
    socklen_t client_length = sizeof client_address;
    getsockname(client, (struct sockaddr *)&client_address, &client_length);
    check(count == 12 && memcmp(buffer, "data", 4) == 0 && source.sin_port == client_address.sin_port,
          "recvfrom: a cut datagram, its real length and its sender", "count %zd port %u vs %u", count,
          ntohs(source.sin_port), ntohs(client_address.sin_port));
    check(sendto(server, "answer", 6, 0, (struct sockaddr *)&source, source_length) == 6 &&
              recv(client, buffer, sizeof buffer, 0) == 6 && memcmp(buffer, "answer", 6) == 0,
          "a reply to the sender", "no reply");
    connect(client, (struct sockaddr *)&address, sizeof address);
    check(send(client, "connected", 9, 0) == 9 && recv(server, buffer, sizeof buffer, 0) == 9,
          "send on a connected datagram socket", "failed");
    struct pollfd readable = {.fd = server, .events = POLLIN};
    check(poll(&readable, 1, 0) == 0, "poll: nothing to read", "revents %#x", readable.revents);
    send(client, "z", 1, 0);
    check(poll(&readable, 1, 2000) == 1 && (readable.revents & POLLIN), "poll: a datagram to read",
          "revents %#x", readable.revents);
    close(client);
    close(server);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_creation();
    check_ports();
    check_connection();
    check_vectors();
    check_many_clients();
    check_nonblocking();
    check_options();
    check_datagrams();
    printf("%d checks failed\n", failures);
    return failures;
}
