/* Checks local (AF_UNIX) sockets between threads: socket pairs of every
 * type, servers bound to paths and to abstract names, datagrams and their
 * senders, message boundaries, half closes, readiness through poll and
 * epoll, options and the errors of misuse, credentials that data sent
 * before SO_PASSCRED does not carry, descriptors that peeks pass on, where
 * stream reads stop (descriptors, another sender). Prints one line per check
 * ("ok <name>" or "FAIL <name>: <why>") and exits with the number of
 * failed checks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "checks.h"

/* An address for `path`, and its length as Linux counts it. */
static socklen_t path_address(struct sockaddr_un *address, const char *path) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    strcpy(address->sun_path, path);
    return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

/* An abstract address: a NUL, then `name` (without its own NUL). */
static socklen_t abstract_address(struct sockaddr_un *address, const char *name) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    memcpy(address->sun_path + 1, name, strlen(name));
    return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

static void check_pairs(void) {
    int pair[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "stream pair", "socketpair failed");
    check(write(pair[0], "hello", 5) == 5 && write(pair[0], " world", 6) == 6, "stream write", "write failed");
    int waiting = -1;
    check(ioctl(pair[1], FIONREAD, &waiting) == 0 && waiting == 11, "stream FIONREAD", "%d bytes", waiting);
    char buffer[64] = {0};
    ssize_t got = read(pair[1], buffer, sizeof buffer);
    check(got == 11 && memcmp(buffer, "hello world", 11) == 0, "stream joins writes", "read %zd", got);
    check(send(pair[1], "back", 4, 0) == 4 && recv(pair[0], buffer, 4, 0) == 4, "stream both ways",
          "send or recv failed");
    check(recv(pair[1], buffer, sizeof buffer, MSG_DONTWAIT) == -1 && errno == EAGAIN, "stream empty EAGAIN",
          "recv did not refuse");

    check(shutdown(pair[0], SHUT_WR) == 0, "stream shutdown", "shutdown failed");
    check(read(pair[1], buffer, sizeof buffer) == 0, "stream end after shutdown", "no end of stream");
    signal(SIGPIPE, SIG_IGN);
    check(write(pair[0], "x", 1) == -1 && errno == EPIPE, "stream EPIPE after shutdown", "write did not fail");
    check(write(pair[1], "y", 1) == 1 && read(pair[0], buffer, 1) == 1, "stream other half open",
          "the other direction closed too");
    close(pair[0]);
    struct pollfd poller = {.fd = pair[1], .events = POLLIN | POLLRDHUP};
    check(poll(&poller, 1, 0) == 1 && (poller.revents & POLLHUP) && (poller.revents & POLLRDHUP),
          "stream peer closed: POLLHUP", "revents %#x", poller.revents);
    check(send(pair[1], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE, "stream peer closed: EPIPE",
          "send did not fail");
    close(pair[1]);

    check(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) == 0, "seqpacket pair", "socketpair failed");
    send(pair[0], "one", 3, 0);
    send(pair[0], "second message", 14, 0);
    got = recv(pair[1], buffer, sizeof buffer, 0);
    check(got == 3, "seqpacket boundaries", "first recv got %zd", got);
    struct iovec vector = {.iov_base = buffer, .iov_len = 6};
    struct msghdr header = {.msg_iov = &vector, .msg_iovlen = 1};
    got = recvmsg(pair[1], &header, 0);
    check(got == 6 && (header.msg_flags & MSG_TRUNC), "seqpacket truncation", "got %zd flags %#x", got,
          header.msg_flags);
    check(recv(pair[1], buffer, sizeof buffer, MSG_DONTWAIT) == -1 && errno == EAGAIN,
          "seqpacket rest discarded", "the message's rest was kept");
    close(pair[0]);
    check(recv(pair[1], buffer, sizeof buffer, 0) == 0, "seqpacket end", "no end after the peer closed");
    close(pair[1]);

    check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) == 0, "datagram pair", "socketpair failed");
    check((fcntl(pair[0], F_GETFD) & FD_CLOEXEC) != 0, "datagram pair cloexec", "no FD_CLOEXEC");
    send(pair[0], "a", 1, 0);
    send(pair[0], "bb", 2, 0);
    check(recv(pair[1], buffer, sizeof buffer, 0) == 1 && recv(pair[1], buffer, sizeof buffer, 0) == 2,
          "datagram boundaries", "datagrams merged");
    close(pair[0]);
    check(send(pair[1], "x", 1, 0) == -1 && errno == ECONNREFUSED, "datagram peer gone", "send did not fail");
    close(pair[1]);

    check(socketpair(AF_INET, SOCK_STREAM, 0, pair) == -1 && errno == EOPNOTSUPP, "inet pair refused",
          "socketpair did not fail");
    check(socket(AF_UNIX, SOCK_STREAM, 7) == -1 && errno == EPROTONOSUPPORT, "bad protocol",
          "socket did not fail");
}

struct server {
    int listener;
    int result;
};

/* Accepts one connection and echoes what arrives until the end. */
static void *echo_server(void *argument) {
    struct server *server = argument;
    int connection = accept(server->listener, NULL, NULL);
    if (connection < 0) {
        server->result = -1;
        return NULL;
    }
    char buffer[4096];
    ssize_t got;
    long total = 0;
    while ((got = read(connection, buffer, sizeof buffer)) > 0) {
        for (ssize_t sent = 0; sent < got;) {
            ssize_t step = write(connection, buffer + sent, got - sent);
            if (step <= 0) {
                server->result = -2;
                close(connection);
                return NULL;
            }
            sent += step;
        }
        total += got;
    }
    server->result = (int)(total & 0x7fffffff);
    close(connection);
    return NULL;
}

/* Writes `length` bytes of a pattern from another thread. */
struct writer {
    int fd;
    long length;
};

static void *pattern_writer(void *argument) {
    struct writer *writer = argument;
    char buffer[8192];
    for (long sent = 0; sent < writer->length;) {
        long step = writer->length - sent < (long)sizeof buffer ? writer->length - sent : (long)sizeof buffer;
        for (long i = 0; i < step; i++) {
            buffer[i] = (char)((sent + i) % 251);
        }
        ssize_t written = write(writer->fd, buffer, step);
        if (written <= 0) {
            return NULL;
        }
        sent += written;
    }
    shutdown(writer->fd, SHUT_WR);
    return NULL;
}

static void check_path_server(void) {
    const char *path = "/tmp/rosv-test.socket";
    unlink(path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address;
    socklen_t length = path_address(&address, path);
    check(bind(listener, (struct sockaddr *)&address, length) == 0, "bind path", "bind failed");
    struct stat status;
    check(stat(path, &status) == 0 && S_ISSOCK(status.st_mode), "socket node", "mode %o", status.st_mode);
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    check(bind(other, (struct sockaddr *)&address, length) == -1 && errno == EADDRINUSE, "bind path in use",
          "second bind did not fail");
    check(open(path, O_RDONLY) == -1 && errno == ENXIO, "open socket ENXIO", "open did not fail");
    check(connect(other, (struct sockaddr *)&address, length) == -1 && errno == ECONNREFUSED,
          "connect before listen", "connect did not fail");
    check(listen(listener, 4) == 0, "listen", "listen failed");

    struct sockaddr_un name;
    socklen_t name_length = sizeof name;
    check(getsockname(listener, (struct sockaddr *)&name, &name_length) == 0 && name_length == length &&
              strcmp(name.sun_path, path) == 0,
          "getsockname path", "length %u path %s", name_length, name.sun_path);

    struct server server = {.listener = listener};
    pthread_t thread;
    pthread_create(&thread, NULL, echo_server, &server);
    check(connect(other, (struct sockaddr *)&address, length) == 0, "connect path", "connect failed");
    name_length = sizeof name;
    check(getpeername(other, (struct sockaddr *)&name, &name_length) == 0 && strcmp(name.sun_path, path) == 0,
          "getpeername path", "length %u", name_length);
    name_length = sizeof name;
    check(getsockname(other, (struct sockaddr *)&name, &name_length) == 0 &&
              name_length == offsetof(struct sockaddr_un, sun_path),
          "client unnamed", "length %u", name_length);
    struct ucred credentials = {0};
    socklen_t credentials_length = sizeof credentials;
    check(getsockopt(other, SOL_SOCKET, SO_PEERCRED, &credentials, &credentials_length) == 0 &&
              credentials.pid == getpid(),
          "SO_PEERCRED", "pid %d", credentials.pid);
    int type = 0;
    socklen_t type_length = sizeof type;
    check(getsockopt(other, SOL_SOCKET, SO_TYPE, &type, &type_length) == 0 && type == SOCK_STREAM, "SO_TYPE",
          "type %d", type);

    /* A megabyte through the echo server, written and read at once. */
    const long total = 1 << 20;
    struct writer writer = {.fd = other, .length = total};
    pthread_t writing;
    pthread_create(&writing, NULL, pattern_writer, &writer);
    long received = 0;
    int intact = 1;
    char buffer[5000];
    ssize_t got;
    while ((got = read(other, buffer, sizeof buffer)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            if (buffer[i] != (char)((received + i) % 251)) {
                intact = 0;
            }
        }
        received += got;
    }
    pthread_join(writing, NULL);
    pthread_join(thread, NULL);
    check(received == total && intact && server.result == total, "megabyte echo", "received %ld intact %d server %d",
          received, intact, server.result);
    close(other);
    close(listener);
    check(unlink(path) == 0, "unlink socket node", "unlink failed");
    int late = socket(AF_UNIX, SOCK_STREAM, 0);
    check(connect(late, (struct sockaddr *)&address, length) == -1 && errno == ENOENT, "connect after unlink",
          "connect did not fail");
    close(late);
}

static void check_abstract_and_datagrams(void) {
    int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
    struct sockaddr_un address;
    socklen_t length = abstract_address(&address, "rosv-abstract");
    check(bind(listener, (struct sockaddr *)&address, length) == 0 && listen(listener, 2) == 0, "abstract listen",
          "bind or listen failed");
    check(accept(listener, NULL, NULL) == -1 && errno == EAGAIN, "accept EAGAIN", "accept did not refuse");
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    int client = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    check(connect(client, (struct sockaddr *)&address, length) == 0, "abstract connect", "connect failed");
    struct epoll_event ready;
    check(epoll_wait(epoll, &ready, 1, 1000) == 1 && ready.data.fd == listener, "epoll sees a connection",
          "epoll_wait found nothing");
    struct sockaddr_un peer;
    socklen_t peer_length = sizeof peer;
    int connection = accept4(listener, (struct sockaddr *)&peer, &peer_length, SOCK_CLOEXEC);
    check(connection >= 0 && peer_length == offsetof(struct sockaddr_un, sun_path), "accept unnamed peer",
          "length %u", peer_length);
    struct sockaddr_un name;
    socklen_t name_length = sizeof name;
    getsockname(connection, (struct sockaddr *)&name, &name_length);
    check(name_length == length && memcmp(&name, &address, length) == 0, "accepted socket named",
          "length %u", name_length);
    event.data.fd = connection;
    epoll_ctl(epoll, EPOLL_CTL_ADD, connection, &event);
    send(client, "packet", 6, 0);
    check(epoll_wait(epoll, &ready, 1, 1000) == 1 && ready.data.fd == connection, "epoll sees a packet",
          "epoll_wait found nothing");
    char buffer[64];
    check(recv(connection, buffer, sizeof buffer, 0) == 6, "packet received", "recv failed");
    close(epoll);
    close(connection);
    close(client);
    close(listener);

    /* Datagrams addressed by path, and their sender's address. */
    const char *server_path = "/tmp/rosv-datagram.server";
    const char *client_path = "/tmp/rosv-datagram.client";
    unlink(server_path);
    unlink(client_path);
    int server = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un server_address;
    socklen_t server_length = path_address(&server_address, server_path);
    bind(server, (struct sockaddr *)&server_address, server_length);
    int sender = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un client_address;
    socklen_t client_length = path_address(&client_address, client_path);
    bind(sender, (struct sockaddr *)&client_address, client_length);
    check(send(sender, "x", 1, 0) == -1 && errno == ENOTCONN, "datagram unconnected", "send did not fail");
    check(sendto(sender, "query", 5, 0, (struct sockaddr *)&server_address, server_length) == 5, "datagram sendto",
          "sendto failed");
    struct sockaddr_un from;
    socklen_t from_length = sizeof from;
    ssize_t got = recvfrom(server, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &from_length);
    check(got == 5 && from_length == client_length && strcmp(from.sun_path, client_path) == 0, "datagram sender",
          "got %zd from length %u", got, from_length);
    check(sendto(server, "answer", 6, 0, (struct sockaddr *)&from, from_length) == 6 &&
              recv(sender, buffer, sizeof buffer, 0) == 6,
          "datagram answer", "the answer did not arrive");
    int anonymous = socket(AF_UNIX, SOCK_DGRAM, 0);
    sendto(anonymous, "anon", 4, 0, (struct sockaddr *)&server_address, server_length);
    from_length = sizeof from;
    got = recvfrom(server, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &from_length);
    check(got == 4 && from_length == 0, "datagram unnamed sender", "from length %u", from_length);
    struct sockaddr_un nowhere;
    socklen_t nowhere_length = abstract_address(&nowhere, "rosv-nobody");
    check(sendto(anonymous, "x", 1, 0, (struct sockaddr *)&nowhere, nowhere_length) == -1 && errno == ECONNREFUSED,
          "datagram to nobody", "sendto did not fail");
    int stream = socket(AF_UNIX, SOCK_STREAM, 0);
    check(connect(stream, (struct sockaddr *)&server_address, server_length) == -1 && errno == EPROTOTYPE,
          "connect wrong type", "connect did not fail");
    close(stream);
    close(anonymous);
    close(sender);
    close(server);
    unlink(server_path);
    unlink(client_path);
}

/* Sends `fd` over `socket` with one byte of data. */
static int send_descriptor(int socket, int fd) {
    char byte = 'f';
    struct iovec vector = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control = {0};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &fd, sizeof fd);
    return (int)sendmsg(socket, &message, 0);
}

/* Receives with `flags` into a buffer of `size` bytes; returns the
 * descriptor that came along (-1 without one) and sets `*got`. */
static int receive_descriptor(int s, size_t size, int flags, ssize_t *got) {
    char data[4];
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control = {0};
    struct iovec vector = {.iov_base = data, .iov_len = size};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = size > 0, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    *got = recvmsg(s, &message, flags);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (*got < 0 || header == NULL || header->cmsg_type != SCM_RIGHTS)
        return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(header), sizeof fd);
    return fd;
}

/* A peek passes on a copy of the descriptors and leaves them queued; a
 * stream read of nothing takes them without the data. */
static void check_peeking_descriptors(int type, const char *kind) {
    int pair[2];
    char name[96];
    socketpair(AF_UNIX, type, 0, pair);
    send_descriptor(pair[0], STDOUT_FILENO);
    ssize_t got = 0;
    int peeked = receive_descriptor(pair[1], 4, MSG_PEEK, &got);
    snprintf(name, sizeof name, "%s: a peek passes the descriptor on", kind);
    check(got == 1 && peeked >= 0, name, "got %zd, descriptor %d", got, peeked);
    int received = receive_descriptor(pair[1], 4, 0, &got);
    snprintf(name, sizeof name, "%s: the read after the peek gets it again", kind);
    check(got == 1 && received >= 0 && received != peeked, name, "got %zd, descriptor %d", got, received);
    close(peeked);
    close(received);
    if (type == SOCK_STREAM) {
        send_descriptor(pair[0], STDOUT_FILENO);
        received = receive_descriptor(pair[1], 0, 0, &got);
        check(got == 0 && received >= 0, "stream: a read of nothing takes the descriptor", "got %zd, descriptor %d",
              got, received);
        close(received);
        char byte = 0;
        check(read(pair[1], &byte, 1) == 1 && byte == 'f', "and leaves the data", "read %c", byte);
    }
    close(pair[0]);
    close(pair[1]);
}

static void check_passing_descriptors(void) {
    int pair[2];
    int pipe_ends[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    pipe(pipe_ends);
    check(send_descriptor(pair[0], pipe_ends[1]) == 1, "SCM_RIGHTS send", "sendmsg failed");
    close(pipe_ends[1]);

    char byte;
    struct iovec vector = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    ssize_t got = recvmsg(pair[1], &message, MSG_CMSG_CLOEXEC);
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    int received = -1;
    if (header != NULL && header->cmsg_type == SCM_RIGHTS && header->cmsg_len == CMSG_LEN(sizeof(int))) {
        memcpy(&received, CMSG_DATA(header), sizeof received);
    }
    check(got == 1 && received >= 0 && message.msg_controllen == CMSG_SPACE(sizeof(int)), "SCM_RIGHTS receive",
          "got %zd fd %d controllen %zu", got, received, (size_t)message.msg_controllen);
    check(received >= 0 && (fcntl(received, F_GETFD) & FD_CLOEXEC), "MSG_CMSG_CLOEXEC", "no FD_CLOEXEC");
    char buffer[16] = {0};
    check(write(received, "through", 7) == 7 && read(pipe_ends[0], buffer, sizeof buffer) == 7 &&
              memcmp(buffer, "through", 7) == 0,
          "passed pipe works", "the pipe's write end did not arrive");
    close(received);
    check(read(pipe_ends[0], buffer, sizeof buffer) == 0, "passed pipe closes", "a writer remains");

    /* Without room for the descriptor, it is dropped and MSG_CTRUNC set. */
    int other[2];
    pipe(other);
    send_descriptor(pair[0], other[1]);
    close(other[1]);
    struct msghdr bare = {.msg_iov = &vector, .msg_iovlen = 1};
    check(recvmsg(pair[1], &bare, 0) == 1 && (bare.msg_flags & MSG_CTRUNC), "MSG_CTRUNC", "flags %#x",
          bare.msg_flags);
    check(read(other[0], buffer, sizeof buffer) == 0, "dropped descriptor closed", "a writer remains");
    check(send_descriptor(pair[0], 9999) == -1 && errno == EBADF, "SCM_RIGHTS bad descriptor",
          "sendmsg did not fail");
    close(other[0]);
    close(pipe_ends[0]);
    close(pair[0]);
    close(pair[1]);
}

/* Receives up to `size` bytes from `s` into `data` and the credentials that
 * came with them into `*credentials`; returns the byte count, -1 on error
 * and -2 when no credentials came. */
static ssize_t receive_credentials(int s, char *data, size_t size, struct ucred *credentials) {
    union {
        char bytes[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } control;
    struct iovec vector = {.iov_base = data, .iov_len = size};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1};
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    ssize_t got = recvmsg(s, &message, 0);
    if (got < 0)
        return -1;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (header == NULL || header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_CREDENTIALS)
        return -2;
    memcpy(credentials, CMSG_DATA(header), sizeof *credentials);
    return got;
}

/* Data sent while neither end passes credentials carries none: a receiver
 * that asks later sees no process and the overflow ids. Data sent after it
 * asked carries the sender's. */
static void check_credentials_after_the_fact(int type, const char *kind) {
    int pair[2];
    char name[96];
    if (socketpair(AF_UNIX, type, 0, pair) != 0) {
        check(0, kind, "socketpair");
        return;
    }
    char data[8];
    struct ucred credentials = {0};
    int one = 1;
    ssize_t sent = write(pair[0], "early", 5);
    setsockopt(pair[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    ssize_t got = receive_credentials(pair[1], data, sizeof data, &credentials);
    snprintf(name, sizeof name, "%s: data sent before SO_PASSCRED carries no sender", kind);
    check(sent == 5 && got == 5 && credentials.pid == 0 && credentials.uid == 65534 && credentials.gid == 65534,
          name, "got %zd, pid %d uid %u gid %u", got, (int)credentials.pid, credentials.uid, credentials.gid);
    sent = write(pair[0], "late", 4);
    got = receive_credentials(pair[1], data, sizeof data, &credentials);
    snprintf(name, sizeof name, "%s: data sent after SO_PASSCRED carries its sender", kind);
    check(sent == 4 && got == 4 && credentials.pid == getpid() && credentials.uid == getuid(), name,
          "got %zd, pid %d uid %u", got, (int)credentials.pid, credentials.uid);
    close(pair[0]);
    close(pair[1]);
}

/* A stream read goes on through the bytes that came with descriptors and
 * stops after them; for a receiver of credentials it stops where another
 * sender's bytes begin, even with MSG_WAITALL. */
static void check_stream_read_boundaries(void) {
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    write(pair[0], "aa", 2);
    send_descriptor(pair[0], STDOUT_FILENO);
    write(pair[0], "cc", 2);
    send_descriptor(pair[0], STDOUT_FILENO);
    ssize_t got = 0;
    int peeked = receive_descriptor(pair[1], 4, MSG_PEEK, &got);
    check(got == 3 && peeked >= 0, "stream: a peek reads through the bytes with descriptors", "got %zd, fd %d",
          got, peeked);
    close(peeked);
    for (int round = 0; round < 2; round++) {
        int received = receive_descriptor(pair[1], 4, 0, &got);
        check(got == 3 && received >= 0,
              round == 0 ? "stream: a read stops after the bytes with descriptors"
                         : "stream: the next read stops after the next ones",
              "got %zd, fd %d", got, received);
        close(received);
    }
    close(pair[0]);
    close(pair[1]);

    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    write(pair[0], "aa", 2);
    int one = 1;
    setsockopt(pair[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    write(pair[0], "bb", 2);
    write(pair[0], "cc", 2);
    char data[8];
    got = recv(pair[1], data, sizeof data, MSG_WAITALL | MSG_DONTWAIT);
    check(got == 2, "stream: data of another sender is not glued on", "got %zd", got);
    struct ucred credentials = {0};
    got = receive_credentials(pair[1], data, sizeof data, &credentials);
    check(got == 4 && credentials.pid == getpid(), "stream: one sender's writes are read together",
          "got %zd, pid %d", got, (int)credentials.pid);
    close(pair[0]);
    close(pair[1]);
}

/* Socket-level options every socket keeps, read back as set. */
static void check_socket_level_options(void) {
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    int one = 1, value = -1;
    socklen_t length = sizeof value;
    int names[] = {SO_BROADCAST, SO_REUSEADDR, SO_KEEPALIVE, SO_NO_CHECK};
    int kept = 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        value = -1;
        length = sizeof value;
        kept &= setsockopt(pair[0], SOL_SOCKET, names[i], &one, sizeof one) == 0 &&
                getsockopt(pair[0], SOL_SOCKET, names[i], &value, &length) == 0 && value == 1;
    }
    check(kept, "flag options are read back as set", "option %d read %d", names[0], value);
    int low = 100;
    value = -1;
    length = sizeof value;
    check(setsockopt(pair[0], SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low) == 0 &&
              getsockopt(pair[0], SOL_SOCKET, SO_RCVLOWAT, &value, &length) == 0 && value == 100,
          "SO_RCVLOWAT is read back", "read %d", value);
    check(setsockopt(pair[0], SOL_SOCKET, SO_SNDLOWAT, &low, sizeof low) == -1 && errno == ENOPROTOOPT,
          "SO_SNDLOWAT cannot be set", "not ENOPROTOOPT");
    int zero = 0;
    value = -1;
    length = sizeof value;
    check(setsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &zero, sizeof zero) == 0 &&
              getsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &value, &length) == 0 && value == 2304,
          "the smallest receive buffer is 2304 bytes", "read %d", value);
    struct linger linger = {.l_onoff = 1, .l_linger = 7}, read_back = {0};
    length = sizeof read_back;
    check(setsockopt(pair[0], SOL_SOCKET, SO_LINGER, &linger, sizeof linger) == 0 &&
              getsockopt(pair[0], SOL_SOCKET, SO_LINGER, &read_back, &length) == 0 && read_back.l_onoff == 1 &&
              read_back.l_linger == 7,
          "SO_LINGER is read back", "read %d %d", read_back.l_onoff, read_back.l_linger);
    close(pair[0]);
    close(pair[1]);
}

/* A packet socket must be connected to send, and then ignores an address
 * given with the send; a stream socket refuses one. */
static void check_sending_to_an_address(void) {
    struct sockaddr_un address;
    socklen_t length = abstract_address(&address, "rosv-packet-address");
    int pair[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair);
    check(sendto(pair[0], "x", 1, 0, (struct sockaddr *)&address, length) == 1,
          "a connected packet socket ignores the address of a send", "sendto failed");
    int unconnected = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    check(sendto(unconnected, "x", 1, 0, (struct sockaddr *)&address, length) == -1 && errno == ENOTCONN,
          "an unconnected packet socket cannot send", "not ENOTCONN");
    close(unconnected);
    close(pair[0]);
    close(pair[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    check(sendto(pair[0], "x", 1, 0, (struct sockaddr *)&address, length) == -1 && errno == EISCONN,
          "a connected stream socket refuses an address", "not EISCONN");
    close(pair[0]);
    close(pair[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_pairs();
    check_passing_descriptors();
    check_path_server();
    check_abstract_and_datagrams();
    check_credentials_after_the_fact(SOCK_STREAM, "stream");
    check_credentials_after_the_fact(SOCK_DGRAM, "datagram");
    check_socket_level_options();
    check_peeking_descriptors(SOCK_STREAM, "stream");
    check_peeking_descriptors(SOCK_DGRAM, "datagram");
    check_peeking_descriptors(SOCK_SEQPACKET, "packet");
    check_sending_to_an_address();
    check_stream_read_boundaries();
    printf("%d checks failed\n", failures);
    return failures;
}
