/* Checks TCP listeners and the network's settings against Linux: shutdown
 * of a listening socket (waiting accepts fail, unaccepted connections are
 * reset, it may listen again), shutdown of an unconnected socket, a reset
 * after shutting the writing reported as ECONNRESET, the
 * backlog bound (backlog + 1 connections, further SYNs dropped) and a
 * second listen changing it, TCP_DEFER_ACCEPT's rounding and waiting for
 * data, TCP_LINGER2 and SO_OOBINLINE read back, the /proc/sys/net files
 * programs read and the ones root may change (in a network namespace of
 * its own where the machine has them), and the credentials a sender may
 * state with SCM_CREDENTIALS. Prints one line per check ("ok <name>" or
 * "FAIL <name>: <why>") and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* Linux's TCP_ESTABLISHED and TCP_SYN_SENT in tcp_info's first byte. */
#define STATE_ESTABLISHED 1
#define STATE_SYN_SENT 2

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

/* A socket listening on the loopback with `backlog`; its address in
 * `address`. */
static int listener_on(unsigned short port, int backlog, struct sockaddr_in *address) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    *address = loopback(port);
    socklen_t length = sizeof *address;
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listener < 0 || bind(listener, (struct sockaddr *)address, sizeof *address) != 0 ||
        listen(listener, backlog) != 0 || getsockname(listener, (struct sockaddr *)address, &length) != 0)
        return -1;
    return listener;
}

static int connect_to(const struct sockaddr_in *address, int flags) {
    int client = socket(AF_INET, SOCK_STREAM | flags, 0);
    if (client < 0)
        return -1;
    if (connect(client, (const struct sockaddr *)address, sizeof *address) != 0 && errno != EINPROGRESS) {
        close(client);
        return -1;
    }
    return client;
}

static short events_of(int fd) {
    struct pollfd entry = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
    poll(&entry, 1, 0);
    return entry.revents;
}

static int tcp_state(int fd) {
    uint8_t info[8] = {0};
    socklen_t length = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &length) != 0)
        return -1;
    return info[0];
}

static void sleep_ms(long milliseconds) {
    struct timespec time = {.tv_sec = milliseconds / 1000, .tv_nsec = (milliseconds % 1000) * 1000000};
    nanosleep(&time, NULL);
}

static int accept_waiter_listener;
static int accept_waiter_result, accept_waiter_errno;

static void *wait_in_accept(void *unused) {
    (void)unused;
    accept_waiter_result = accept(accept_waiter_listener, NULL, NULL);
    accept_waiter_errno = errno;
    return NULL;
}

static void check_listener_shutdown(void) {
    struct sockaddr_in address;
    int listener = listener_on(0, 5, &address);

    /* Shutting the writing of a listener changes nothing. */
    check(shutdown(listener, SHUT_WR) == 0, "listener_shut_write_succeeds", "shutdown");
    check(events_of(listener) == 0, "listener_shut_write_polls_nothing", "revents %#x", events_of(listener));
    int client = connect_to(&address, 0);
    int accepted = accept(listener, NULL, NULL);
    check(client >= 0 && accepted >= 0, "listener_shut_write_still_accepts", "client %d accepted %d", client,
          accepted);
    close(client);
    close(accepted);

    /* An accept waiting in another thread fails when reading is shut. */
    accept_waiter_listener = listener;
    pthread_t waiter;
    pthread_create(&waiter, NULL, wait_in_accept, NULL);
    sleep_ms(100);
    check(shutdown(listener, SHUT_RD) == 0, "listener_shut_read_succeeds", "shutdown");
    pthread_join(waiter, NULL);
    check(accept_waiter_result == -1 && accept_waiter_errno == EINVAL, "waiting_accept_fails_with_einval",
          "accept %d errno %d", accept_waiter_result, accept_waiter_errno);
    close(listener);

    /* Unaccepted connections are reset; later accepts fail; nobody
     * listens. */
    listener = listener_on(0, 5, &address);
    client = connect_to(&address, 0);
    send(client, "hi", 2, MSG_NOSIGNAL);
    sleep_ms(50);
    check(events_of(listener) == POLLIN, "pending_connection_polls_in", "revents %#x", events_of(listener));
    check(shutdown(listener, SHUT_RDWR) == 0, "listener_shut_both_succeeds", "shutdown");
    check(events_of(listener) == (POLLOUT | POLLHUP), "shut_listener_polls_out_and_hup", "revents %#x",
          events_of(listener));
    struct pollfd entry = {.fd = client, .events = POLLIN};
    poll(&entry, 1, 1000);
    char byte;
    errno = 0;
    ssize_t got = recv(client, &byte, 1, 0);
    check(got == -1 && errno == ECONNRESET, "unaccepted_connection_is_reset", "recv %zd", got);
    close(client);
    errno = 0;
    check(accept(listener, NULL, NULL) == -1 && errno == EINVAL, "accept_after_shutdown_fails", "accept");
    fcntl(listener, F_SETFL, O_NONBLOCK);
    errno = 0;
    check(accept(listener, NULL, NULL) == -1 && errno == EINVAL, "nonblocking_accept_after_shutdown_fails",
          "accept");
    fcntl(listener, F_SETFL, 0);
    client = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    check(connect(client, (struct sockaddr *)&address, sizeof address) == -1 && errno == ECONNREFUSED,
          "connect_after_listener_shutdown_is_refused", "connect");
    close(client);

    /* A second shutdown finds nothing connected, and poll shows it. */
    errno = 0;
    check(shutdown(listener, SHUT_RDWR) == -1 && errno == ENOTCONN, "second_shutdown_is_enotconn", "shutdown");
    check(events_of(listener) == (POLLIN | POLLOUT | POLLHUP | POLLRDHUP), "second_shutdown_polls_hangup",
          "revents %#x", events_of(listener));

    /* It may listen again, on a port of its own. */
    socklen_t length = sizeof address;
    check(listen(listener, 5) == 0 && getsockname(listener, (struct sockaddr *)&address, &length) == 0,
          "listen_again_after_shutdown", "listen");
    client = connect_to(&address, 0);
    accepted = accept(listener, NULL, NULL);
    check(client >= 0 && accepted >= 0, "listen_again_accepts", "client %d accepted %d", client, accepted);
    close(client);
    close(accepted);
    close(listener);

    /* A port bind named stays the socket's across the shutdown. */
    unsigned short port = ntohs(address.sin_port);
    listener = listener_on(port, 5, &address);
    shutdown(listener, SHUT_RD);
    length = sizeof address;
    check(listen(listener, 5) == 0 && getsockname(listener, (struct sockaddr *)&address, &length) == 0 &&
              ntohs(address.sin_port) == port,
          "named_port_kept_across_shutdown", "port %d, was %d", ntohs(address.sin_port), port);
    client = connect_to(&address, 0);
    accepted = accept(listener, NULL, NULL);
    check(client >= 0 && accepted >= 0, "named_port_listens_again", "client %d accepted %d", client, accepted);
    close(client);
    close(accepted);
    close(listener);

    /* An unconnected socket: ENOTCONN, yet poll shows what was shut. */
    int unconnected = socket(AF_INET, SOCK_STREAM, 0);
    check(events_of(unconnected) == (POLLOUT | POLLHUP), "unconnected_polls_out_and_hup", "revents %#x",
          events_of(unconnected));
    errno = 0;
    check(shutdown(unconnected, SHUT_WR) == -1 && errno == ENOTCONN, "unconnected_shutdown_is_enotconn",
          "shutdown");
    check(events_of(unconnected) == (POLLOUT | POLLHUP), "unconnected_shut_write_polls_the_same",
          "revents %#x", events_of(unconnected));
    shutdown(unconnected, SHUT_RD);
    check(events_of(unconnected) == (POLLIN | POLLOUT | POLLHUP | POLLRDHUP), "unconnected_shut_read_polls_in",
          "revents %#x", events_of(unconnected));
    close(unconnected);
}

/* A connection whose writing was shut and which the peer then resets
 * reports ECONNRESET (through SO_ERROR and poll's POLLERR, once), as one
 * the peer closed in order reports nothing. */
static void check_reset_after_shutdown(void) {
    for (int resets = 0; resets < 2; resets++) {
        struct sockaddr_in address;
        int listener = listener_on(0, 1, &address);
        int client = connect_to(&address, 0);
        int server = accept(listener, NULL, NULL);
        shutdown(client, SHUT_WR);
        sleep_ms(50);
        if (resets) {
            struct linger linger = {.l_onoff = 1, .l_linger = 0};
            setsockopt(server, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
        }
        close(server);
        sleep_ms(100);
        short revents = events_of(client);
        int error = -1;
        socklen_t length = sizeof error;
        getsockopt(client, SOL_SOCKET, SO_ERROR, &error, &length);
        char byte;
        ssize_t got = recv(client, &byte, 1, MSG_DONTWAIT);
        if (resets) {
            check((revents & POLLERR) && error == ECONNRESET, "reset_after_shut_write_is_econnreset",
                  "revents %#x, error %d", revents, error);
            check(got == 0 && !(events_of(client) & POLLERR), "reset_after_shut_write_reported_once",
                  "recv %zd, revents %#x", got, events_of(client));
        } else {
            check(!(revents & POLLERR) && error == 0 && got == 0, "close_after_shut_write_is_no_error",
                  "revents %#x, error %d, recv %zd", revents, error, got);
        }
        close(client);
        close(listener);
    }
}

/* How many of `clients` finished their handshake, waiting up to
 * `patience_ms` for `expected` of them. */
static int established(const int *clients, int count, int expected, int patience_ms) {
    int done = 0;
    for (int waited = 0; waited <= patience_ms; waited += 50) {
        done = 0;
        for (int i = 0; i < count; i++)
            done += tcp_state(clients[i]) == STATE_ESTABLISHED;
        if (done >= expected)
            break;
        sleep_ms(50);
    }
    return done;
}

static void check_backlog(void) {
    enum { CLIENTS = 6 };
    for (int backlog = 0; backlog <= 2; backlog++) {
        struct sockaddr_in address;
        int listener = listener_on(0, backlog, &address);
        int clients[CLIENTS];
        for (int i = 0; i < CLIENTS; i++) {
            clients[i] = connect_to(&address, SOCK_NONBLOCK);
            sleep_ms(20);
        }
        int done = established(clients, CLIENTS, backlog + 1, 300);
        /* Give the others time to finish, if they (wrongly) would. */
        sleep_ms(200);
        done = established(clients, CLIENTS, 0, 0);
        int waiting = 0;
        for (int i = 0; i < CLIENTS; i++)
            waiting += tcp_state(clients[i]) == STATE_SYN_SENT;
        char name[64];
        snprintf(name, sizeof name, "backlog_%d_completes_%d", backlog, backlog + 1);
        check(done == backlog + 1 && waiting == CLIENTS - done, name, "%d established, %d waiting", done,
              waiting);
        int expected = done;
        if (backlog == 0) {
            /* A second listen with a larger backlog queues more: the
             * dropped SYNs come again. (A burst of them may complete more
             * handshakes on the connecting side than the queue takes.) */
            listen(listener, 2);
            done = established(clients, CLIENTS, 3, 4000);
            sleep_ms(300);
            check(done >= 3, "second_listen_raises_the_backlog", "%d established", done);
            expected = 3;
        }
        fcntl(listener, F_SETFL, O_NONBLOCK);
        int accepted = 0, connection;
        while ((connection = accept(listener, NULL, NULL)) >= 0) {
            accepted++;
            close(connection);
        }
        snprintf(name, sizeof name, "backlog_%d_queues_%d", backlog, expected);
        check(accepted == expected, name, "%d accepted", accepted);
        for (int i = 0; i < CLIENTS; i++)
            close(clients[i]);
        close(listener);
    }
}

static void check_defer_accept(void) {
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    static const int asked[] = {0, 1, 2, 3, 4, 8, 30, 100, 1000, -1};
    static const int kept[] = {0, 1, 3, 3, 7, 15, 31, 127, 1087, 0};
    for (unsigned i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        int value = asked[i], got = -2;
        socklen_t length = sizeof got;
        setsockopt(probe, IPPROTO_TCP, TCP_DEFER_ACCEPT, &value, sizeof value);
        getsockopt(probe, IPPROTO_TCP, TCP_DEFER_ACCEPT, &got, &length);
        char name[64];
        snprintf(name, sizeof name, "defer_accept_%d_reads_%d", asked[i], kept[i]);
        check(got == kept[i], name, "read %d", got);
    }
    close(probe);

    struct sockaddr_in address;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int seconds = 10;
    setsockopt(listener, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds);
    address = loopback(0);
    socklen_t length = sizeof address;
    bind(listener, (struct sockaddr *)&address, sizeof address);
    listen(listener, 5);
    getsockname(listener, (struct sockaddr *)&address, &length);
    int client = connect_to(&address, 0);
    sleep_ms(200);
    fcntl(listener, F_SETFL, O_NONBLOCK);
    errno = 0;
    check(accept(listener, NULL, NULL) == -1 && errno == EAGAIN, "deferred_connection_waits_for_data",
          "accept");
    send(client, "x", 1, 0);
    int accepted = -1;
    for (int waited = 0; waited < 2000 && accepted < 0; waited += 20) {
        accepted = accept(listener, NULL, NULL);
        if (accepted < 0)
            sleep_ms(20);
    }
    char byte = 0;
    check(accepted >= 0 && recv(accepted, &byte, 1, 0) == 1 && byte == 'x', "deferred_connection_comes_with_data",
          "accepted %d", accepted);
    close(accepted);
    close(client);
    close(listener);
}

/* The first number in /proc/sys/`path`, or -1. */
static long setting(const char *path) {
    char full[128];
    snprintf(full, sizeof full, "/proc/sys/%s", path);
    FILE *file = fopen(full, "r");
    long value = -1;
    if (file == NULL || fscanf(file, "%ld", &value) != 1)
        value = -1;
    if (file != NULL)
        fclose(file);
    return value;
}

static int write_setting(const char *path, const char *text) {
    char full[128];
    snprintf(full, sizeof full, "/proc/sys/%s", path);
    int fd = open(full, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t written = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return written == (ssize_t)strlen(text) ? 0 : -1;
}

static void check_options(void) {
    int stream = socket(AF_INET, SOCK_STREAM, 0);
    int value = 0;
    socklen_t length = sizeof value;
    long fin_timeout = setting("net/ipv4/tcp_fin_timeout");
    getsockopt(stream, IPPROTO_TCP, TCP_LINGER2, &value, &length);
    check(value == fin_timeout && fin_timeout > 0, "linger2_defaults_to_fin_timeout", "%d, fin timeout %ld",
          value, fin_timeout);
    static const int asked[] = {-5, 0, 30, 120, 1000};
    for (unsigned i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        int expected = asked[i] < 0 ? -1 : asked[i] == 0 ? (int)fin_timeout : asked[i] > 120 ? 120 : asked[i];
        value = asked[i];
        int result = setsockopt(stream, IPPROTO_TCP, TCP_LINGER2, &value, sizeof value);
        length = sizeof value;
        getsockopt(stream, IPPROTO_TCP, TCP_LINGER2, &value, &length);
        char name[64];
        snprintf(name, sizeof name, "linger2_%d_reads_%d", asked[i], expected);
        check(result == 0 && value == expected, name, "set %d, read %d", result, value);
    }
    int datagram = socket(AF_INET, SOCK_DGRAM, 0);
    int sockets[] = {stream, datagram};
    for (int i = 0; i < 2; i++) {
        int one = 1;
        value = 0;
        length = sizeof value;
        setsockopt(sockets[i], SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
        getsockopt(sockets[i], SOL_SOCKET, SO_OOBINLINE, &value, &length);
        check(value == 1, i == 0 ? "tcp_oobinline_reads_back" : "udp_oobinline_reads_back", "read %d", value);
    }
    /* Buffers are bounded by rmem_max and wmem_max, then doubled. */
    long receive_most = setting("net/core/rmem_max"), send_most = setting("net/core/wmem_max");
    int pair[2], local_datagram = socket(AF_UNIX, SOCK_DGRAM, 0);
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    int bounded[] = {stream, datagram, pair[0], local_datagram};
    static const char *const bounded_names[] = {"tcp_buffers_bounded_by_settings", "udp_buffers_bounded_by_settings",
                                                "local_stream_buffers_bounded_by_settings",
                                                "local_datagram_buffers_bounded_by_settings"};
    for (int i = 0; i < 4; i++) {
        int huge = 1 << 30;
        setsockopt(bounded[i], SOL_SOCKET, SO_RCVBUF, &huge, sizeof huge);
        setsockopt(bounded[i], SOL_SOCKET, SO_SNDBUF, &huge, sizeof huge);
        int receive = 0, send = 0;
        length = sizeof receive;
        getsockopt(bounded[i], SOL_SOCKET, SO_RCVBUF, &receive, &length);
        length = sizeof send;
        getsockopt(bounded[i], SOL_SOCKET, SO_SNDBUF, &send, &length);
        check(receive == 2 * receive_most && send == 2 * send_most, bounded_names[i],
              "receive %d (rmem_max %ld), send %d (wmem_max %ld)", receive, receive_most, send, send_most);
    }
    close(stream);
    close(datagram);
    close(pair[0]);
    close(pair[1]);
    close(local_datagram);
}

static void check_settings_files(void) {
    static const char *const flags[] = {"net/ipv4/tcp_sack", "net/ipv4/tcp_timestamps",
                                        "net/ipv4/tcp_window_scaling"};
    for (unsigned i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        long value = setting(flags[i]);
        check(value == 0 || value == 1 || (i == 1 && value == 2), flags[i], "%ld", value);
    }
    long syncookies = setting("net/ipv4/tcp_syncookies");
    check(syncookies >= 0 && syncookies <= 2, "net/ipv4/tcp_syncookies", "%ld", syncookies);
    long fin_timeout = setting("net/ipv4/tcp_fin_timeout");
    check(fin_timeout > 0, "net/ipv4/tcp_fin_timeout", "%ld", fin_timeout);
    static const char *const triples[] = {"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"};
    for (int i = 0; i < 2; i++) {
        FILE *file = fopen(triples[i], "r");
        long least = 0, usual = 0, most = 0;
        int read = file != NULL ? fscanf(file, "%ld %ld %ld", &least, &usual, &most) : 0;
        if (file != NULL)
            fclose(file);
        check(read == 3 && least > 0 && least <= usual && usual <= most, triples[i] + 10, "%ld %ld %ld", least,
              usual, most);
    }
    FILE *file = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    long first = 0, last = 0;
    int read = file != NULL ? fscanf(file, "%ld %ld", &first, &last) : 0;
    if (file != NULL)
        fclose(file);
    check(read == 2 && first >= 1024 && first <= last && last <= 65535, "net/ipv4/ip_local_port_range",
          "%ld %ld", first, last);
    static const char *const core[] = {"net/core/somaxconn", "net/core/rmem_max", "net/core/wmem_max",
                                       "net/core/rmem_default", "net/core/wmem_default"};
    for (unsigned i = 0; i < sizeof core / sizeof core[0]; i++) {
        long value = setting(core[i]);
        check(value > 0, core[i], "%ld", value);
    }
}

/* Sets the loopback interface up (a fresh network namespace has it
 * down). */
static void loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq request = {0};
    strcpy(request.ifr_name, "lo");
    ioctl(fd, SIOCGIFFLAGS, &request);
    request.ifr_flags |= IFF_UP;
    ioctl(fd, SIOCSIFFLAGS, &request);
    close(fd);
}

/* Changes settings and sees them honoured, in a child process: in a
 * network namespace of its own where the machine has them, so that Linux's
 * own settings stay as they were. Exits with its failures. */
static void change_settings(void) {
    failures = 0;
    if (unshare(CLONE_NEWNET) == 0)
        loopback_up();
    else if (errno != EINVAL)
        exit(0);
    check(write_setting("net/ipv4/ip_local_port_range", "40000 40009\n") == 0, "port_range_written", "write");
    for (int i = 0; i < 3; i++) {
        int fd = socket(AF_INET, i == 2 ? SOCK_DGRAM : SOCK_STREAM, 0);
        struct sockaddr_in address = loopback(0);
        socklen_t length = sizeof address;
        int result = i == 1 ? listen(fd, 1) : bind(fd, (struct sockaddr *)&address, sizeof address);
        getsockname(fd, (struct sockaddr *)&address, &length);
        unsigned short port = ntohs(address.sin_port);
        const char *names[] = {"bound_port_from_range", "listening_port_from_range", "udp_port_from_range"};
        check(result == 0 && port >= 40000 && port <= 40009, names[i], "port %u", port);
        close(fd);
    }
    errno = 0;
    check(write_setting("net/ipv4/ip_local_port_range", "50000 40000\n") == -1 && errno == EINVAL,
          "reversed_port_range_refused", "write");
    errno = 0;
    check(write_setting("net/ipv4/ip_local_port_range", "100 200\n") == -1 && errno == EINVAL,
          "privileged_port_range_refused", "write");
    write_setting("net/ipv4/ip_local_port_range", "32768 60999\n");

    check(write_setting("net/core/somaxconn", "1\n") == 0 && setting("net/core/somaxconn") == 1,
          "somaxconn_written", "write");
    struct sockaddr_in address;
    int listener = listener_on(0, 100, &address);
    int clients[4];
    for (int i = 0; i < 4; i++) {
        clients[i] = connect_to(&address, SOCK_NONBLOCK);
        sleep_ms(20);
    }
    int done = established(clients, 4, 2, 300);
    sleep_ms(200);
    done = established(clients, 4, 0, 0);
    check(done == 2, "somaxconn_bounds_the_backlog", "%d established", done);
    for (int i = 0; i < 4; i++)
        close(clients[i]);
    close(listener);
    write_setting("net/core/somaxconn", "4096\n");
    exit(failures);
}

/* The effective capabilities of this process, from /proc/self/status. */
static unsigned long long capabilities(void) {
    FILE *file = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long effective = 0;
    while (file != NULL && fgets(line, sizeof line, file) != NULL)
        if (sscanf(line, "CapEff: %llx", &effective) == 1)
            break;
    if (file != NULL)
        fclose(file);
    return effective;
}

/* Sends one byte with `credentials` stated; 0 or the error. */
static int send_stating(int fd, pid_t pid, uid_t uid, gid_t gid) {
    char byte = 'c';
    struct iovec vector = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_CREDENTIALS;
    header->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred credentials = {.pid = pid, .uid = uid, .gid = gid};
    memcpy(CMSG_DATA(header), &credentials, sizeof credentials);
    return sendmsg(fd, &message, 0) == 1 ? 0 : errno;
}

/* The process id the receiver sees with the next byte, or -1. */
static pid_t received_pid(int fd) {
    char byte;
    struct iovec vector = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct msghdr message = {
        .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes};
    if (recvmsg(fd, &message, 0) != 1)
        return -1;
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    if (header == NULL || header->cmsg_type != SCM_CREDENTIALS)
        return -1;
    struct ucred credentials;
    memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
    return credentials.pid;
}

static void check_stated_credentials(void) {
    enum { CAP_SETGID_BIT = 6, CAP_SETUID_BIT = 7, CAP_SYS_ADMIN_BIT = 21 };
    unsigned long long effective = capabilities();
    int may_name_process = (effective >> CAP_SYS_ADMIN_BIT) & 1;
    int may_name_user = (effective >> CAP_SETUID_BIT) & 1;
    int may_name_group = (effective >> CAP_SETGID_BIT) & 1;
    int pair[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, pair);
    int one = 1;
    setsockopt(pair[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);

    int result = send_stating(pair[0], getpid(), getuid(), getgid());
    check(result == 0 && received_pid(pair[1]) == getpid(), "own_credentials_stated", "error %d", result);
    uid_t other_user = getuid() == 4321 ? 4322 : 4321;
    gid_t other_group = getgid() == 4321 ? 4322 : 4321;
    result = send_stating(pair[0], getpid(), other_user, getgid());
    check(result == (may_name_user ? 0 : EPERM), "other_user_needs_cap_setuid", "error %d", result);
    if (result == 0)
        received_pid(pair[1]);
    result = send_stating(pair[0], getpid(), getuid(), other_group);
    check(result == (may_name_group ? 0 : EPERM), "other_group_needs_cap_setgid", "error %d", result);
    if (result == 0)
        received_pid(pair[1]);

    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    result = send_stating(pair[0], child, getuid(), getgid());
    check(result == (may_name_process ? 0 : EPERM), "other_process_needs_cap_sys_admin", "error %d", result);
    if (result == 0) {
        pid_t seen = received_pid(pair[1]);
        check(seen == child, "other_process_reaches_the_receiver", "pid %d, child %d", seen, child);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    result = send_stating(pair[0], 0x3ffffff0, getuid(), getgid());
    check(result == (may_name_process ? ESRCH : EPERM), "missing_process_is_esrch_or_eperm", "error %d", result);
    result = send_stating(pair[0], getpid(), (uid_t)-1, getgid());
    check(result == (may_name_user ? EINVAL : EPERM), "invalid_user_is_einval_or_eperm", "error %d", result);
    close(pair[0]);
    close(pair[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_listener_shutdown();
    check_reset_after_shutdown();
    check_backlog();
    check_defer_accept();
    check_options();
    check_settings_files();
    check_stated_credentials();
    pid_t child = fork();
    if (child == 0)
        change_settings();
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFEXITED(status))
        failures += WEXITSTATUS(status);
    else
        check(0, "settings_child_ended", "status %#x", status);
    printf("%d checks failed\n", failures);
    return failures;
}
