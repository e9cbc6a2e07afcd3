/* Checks the errors Linux gives for sockets used wrongly or without the
 * privilege a call needs: the kinds socket() refuses, option levels a
 * socket does not have, flags a protocol does not take, bad lengths and
 * pointers, control messages network sockets ignore, interface requests,
 * multicast groups an accepted connection does not inherit, repeated
 * connects on TCP sockets, privileged ports, raw sockets (refused without
 * CAP_NET_RAW, an ICMP echo through them with it) and socket nodes without
 * write permission. Passes on Linux too
 * (as root, where it drops privileges in child processes). Prints one
 * line per check ("ok <name>" or "FAIL <name>: <why>") and exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#ifndef MCAST_JOIN_GROUP
#define MCAST_JOIN_GROUP 42
#define MCAST_LEAVE_GROUP 45
#endif

/* A TCP listener on 127.0.0.1 at any port; sets `*bound`. */
static int tcp_listener(struct sockaddr_in *bound) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    memset(bound, 0, sizeof *bound);
    bound->sin_family = AF_INET;
    bound->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)bound, sizeof *bound) != 0 || listen(listener, 8) != 0) {
        close(listener);
        return -1;
    }
    socklen_t length = sizeof *bound;
    getsockname(listener, (struct sockaddr *)bound, &length);
    return listener;
}

/* A connected pair of TCP sockets over the loopback. */
static int tcp_pair(int *client, int *server) {
    struct sockaddr_in address;
    int listener = tcp_listener(&address);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0 || connect(*client, (struct sockaddr *)&address, sizeof address) != 0)
        return -1;
    *server = accept(listener, NULL, NULL);
    close(listener);
    return *server >= 0 ? 0 : -1;
}

static void check_socket_kinds(void) {
    check(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP) == -1 && errno == EPROTONOSUPPORT,
          "TCP socket with UDP EPROTONOSUPPORT", "errno");
    check(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP) == -1 && errno == EPROTONOSUPPORT,
          "UDP socket with TCP EPROTONOSUPPORT", "errno");
    check(socket(AF_INET, SOCK_RAW, 0) == -1 && errno == EPROTONOSUPPORT, "raw socket without a protocol EPROTONOSUPPORT",
          "errno");
    check(socketpair(AF_INET, SOCK_RAW, 0, (int[2]){0}) == -1 && errno == EPROTONOSUPPORT,
          "raw socketpair without a protocol EPROTONOSUPPORT", "errno");
    check(socket(AF_INET, SOCK_SEQPACKET, 0) == -1 && errno == ESOCKTNOSUPPORT, "INET seqpacket ESOCKTNOSUPPORT",
          "errno");
    check(socket(AF_UNIX, SOCK_STREAM, 5) == -1 && errno == EPROTONOSUPPORT, "UNIX protocol EPROTONOSUPPORT",
          "errno");
    check(socket(AF_INET, 99, 0) == -1 && errno == EINVAL, "unknown type EINVAL", "errno");
    check(socket(0, SOCK_STREAM, 0) == -1 && errno == EAFNOSUPPORT, "unknown family EAFNOSUPPORT", "errno");
    int pair[2];
    check(socketpair(AF_INET, SOCK_STREAM, 0, pair) == -1 && errno == EOPNOTSUPP, "INET socketpair EOPNOTSUPP",
          "errno");
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    check(listen(udp, 1) == -1 && errno == EOPNOTSUPP, "listen on UDP EOPNOTSUPP", "errno");
    check(accept(udp, NULL, NULL) == -1 && errno == EOPNOTSUPP, "accept on UDP EOPNOTSUPP", "errno");
    close(udp);
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    check(accept(tcp, NULL, NULL) == -1 && errno == EINVAL, "accept before listen EINVAL", "errno");
    close(tcp);
}

/* getsockopt on a level the socket does not have: IPv4 refuses it as an
 * operation, setsockopt and the socket's own level as an option. */
static void check_option_levels(void) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0), tcp = socket(AF_INET, SOCK_STREAM, 0);
    int udp6 = socket(AF_INET6, SOCK_DGRAM, 0);
    int value = 1;
    socklen_t length = sizeof value;
    check(getsockopt(udp, 500, SO_OOBINLINE, &value, &length) == -1 && errno == EOPNOTSUPP,
          "getsockopt of an unknown level EOPNOTSUPP", "errno");
    length = sizeof value;
    check(getsockopt(tcp, IPPROTO_UDP, SO_OOBINLINE, &value, &length) == -1 && errno == EOPNOTSUPP,
          "getsockopt of UDP's level on TCP EOPNOTSUPP", "errno");
    length = sizeof value;
    check(getsockopt(udp, IPPROTO_TCP, TCP_NODELAY, &value, &length) == -1 && errno == EOPNOTSUPP,
          "getsockopt of TCP's level on UDP EOPNOTSUPP", "errno");
    length = sizeof value;
    check(getsockopt(udp, IPPROTO_UDP, 999, &value, &length) == -1 && errno == ENOPROTOOPT,
          "getsockopt of an unknown UDP option ENOPROTOOPT", "errno");
    length = sizeof value;
    check(getsockopt(udp6, 500, SO_OOBINLINE, &value, &length) == -1 && errno == ENOPROTOOPT,
          "getsockopt of an unknown level on IPv6 ENOPROTOOPT", "errno");
    check(setsockopt(udp, 500, SO_OOBINLINE, &value, sizeof value) == -1 && errno == ENOPROTOOPT,
          "setsockopt of an unknown level ENOPROTOOPT", "errno");
    close(udp);
    close(tcp);
    close(udp6);
}

static void check_flags_lengths_and_control(void) {
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    bind(udp, (struct sockaddr *)&address, sizeof address);
    socklen_t length = sizeof address;
    getsockname(udp, (struct sockaddr *)&address, &length);
    check(sendto(udp, "x", 1, MSG_OOB, (struct sockaddr *)&address, sizeof address) == -1 && errno == EOPNOTSUPP,
          "MSG_OOB on UDP EOPNOTSUPP", "errno");
    close(udp);

    int client = -1, server = -1;
    check(tcp_pair(&client, &server) == 0, "TCP pair", "connect or accept");
    char buffer[16];
    struct sockaddr_in from;
    send(server, "abcd", 4, 0);
    usleep(100000);
    socklen_t negative = (socklen_t)-1;
    check(recvfrom(client, buffer, 2, 0, (struct sockaddr *)&from, &negative) == -1 && errno == EINVAL,
          "recvfrom with a negative address length EINVAL", "errno");
    socklen_t from_length = sizeof from;
    ssize_t got = recvfrom(client, buffer, sizeof buffer, MSG_DONTWAIT, (struct sockaddr *)&from, &from_length);
    check(got > 0 && from_length == 0, "recvfrom on TCP gives no address", "got %zd, length %u", got, from_length);

    struct iovec vector = {buffer, sizeof buffer};
    struct msghdr header = {0};
    header.msg_iov = &vector;
    header.msg_iovlen = 1025;
    check(recvmsg(client, &header, MSG_DONTWAIT) == -1 && errno == EMSGSIZE, "recvmsg past UIO_MAXIOV EMSGSIZE",
          "errno");
    header.msg_iovlen = 4096;
    check(sendmsg(client, &header, 0) == -1 && errno == EMSGSIZE, "sendmsg past UIO_MAXIOV EMSGSIZE", "errno");

    /* SCM_RIGHTS on TCP: ignored, the data goes (a control length that
     * is not padded to the alignment is fine). */
    union {
        char bytes[64];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct cmsghdr *message = (struct cmsghdr *)control.bytes;
    message->cmsg_len = sizeof(struct cmsghdr) + sizeof(int);
    message->cmsg_level = SOL_SOCKET;
    message->cmsg_type = SCM_RIGHTS;
    int passed = 0;
    memcpy(CMSG_DATA(message), &passed, sizeof passed);
    vector.iov_base = "hi";
    vector.iov_len = 2;
    header.msg_iovlen = 1;
    header.msg_control = control.bytes;
    header.msg_controllen = message->cmsg_len;
    check(sendmsg(server, &header, 0) == 2, "SCM_RIGHTS on TCP is ignored", "errno");

    int mark = -1;
    check(ioctl(client, SIOCATMARK, &mark) == 0 && mark == 0, "SIOCATMARK", "mark %d", mark);
    check(ioctl(client, SIOCATMARK, NULL) == -1 && errno == EFAULT, "SIOCATMARK to a bad pointer EFAULT", "errno");
    close(client);
    close(server);

    int datagram = socket(AF_INET, SOCK_DGRAM, 0);
    check(ioctl(datagram, SIOCSIFFLAGS, NULL) == -1 && errno == EFAULT, "SIOCSIFFLAGS from a bad pointer EFAULT",
          "errno");
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strcpy(request.ifr_name, "lo");
    check(ioctl(datagram, SIOCGIFFLAGS, &request) == 0 && (request.ifr_flags & IFF_UP), "SIOCGIFFLAGS of lo",
          "flags %#x", request.ifr_flags);
    check(ioctl(datagram, SIOCSIFFLAGS, &request) == 0, "SIOCSIFFLAGS keeping lo up", "errno");
    close(datagram);
}

/* Multicast groups: MCAST_JOIN_GROUP works on TCP sockets too, and an
 * accepted connection is in none of its listener's groups. */
static void check_multicast_groups(void) {
    struct group_req group;
    memset(&group, 0, sizeof group);
    struct sockaddr_in *group_address = (struct sockaddr_in *)&group.gr_group;
    group_address->sin_family = AF_INET;
    group_address->sin_addr.s_addr = inet_addr("224.0.0.1");
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    check(setsockopt(listener, SOL_IP, MCAST_JOIN_GROUP, &group, sizeof group) == 0, "MCAST_JOIN_GROUP on TCP",
          "errno");
    check(setsockopt(listener, SOL_IP, MCAST_JOIN_GROUP, &group, 100) == -1 && errno == EINVAL,
          "MCAST_JOIN_GROUP short EINVAL", "errno");
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener, (struct sockaddr *)&address, sizeof address);
    listen(listener, 1);
    socklen_t length = sizeof address;
    getsockname(listener, (struct sockaddr *)&address, &length);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, (struct sockaddr *)&address, sizeof address);
    int accepted = accept(listener, NULL, NULL);
    check(accepted >= 0 && setsockopt(accepted, SOL_IP, MCAST_LEAVE_GROUP, &group, sizeof group) == -1 &&
              errno == EADDRNOTAVAIL,
          "an accepted connection is in no group", "errno");
    check(setsockopt(listener, SOL_IP, MCAST_LEAVE_GROUP, &group, sizeof group) == 0, "MCAST_LEAVE_GROUP",
          "errno");
    close(accepted);
    close(client);
    close(listener);
}

/* Runs `test` in a child process as user 65534 and returns its exit
 * status (-1 if it did not exit). */
static int as_nobody(int (*test)(void)) {
    pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(100);
        _exit(test());
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* 0 when binding port 80 fails with EACCES. */
static int bind_privileged_port(void) {
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons(80);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int result = bind(tcp, (struct sockaddr *)&address, sizeof address);
    return result == -1 && errno == EACCES ? 0 : 1;
}

static const char *const node_path = "/tmp/socket-errors.socket";

/* 0 when connecting to a socket node without write permission fails with
 * EACCES. */
static int connect_without_permission(void) {
    int local = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {0};
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, node_path);
    int result = connect(local, (struct sockaddr *)&address, sizeof address);
    return result == -1 && errno == EACCES ? 0 : 1;
}

/* A TCP socket on 127.0.0.1 bound to a port the stack chose (port 0 asked),
 * not listening: connections to it are refused. Sets `*bound`. */
static int tcp_bound(struct sockaddr_in *bound) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    memset(bound, 0, sizeof *bound);
    bound->sin_family = AF_INET;
    bound->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof *bound;
    if (bind(s, (struct sockaddr *)bound, sizeof *bound) != 0 ||
        getsockname(s, (struct sockaddr *)bound, &length) != 0) {
        close(s);
        return -1;
    }
    return s;
}

/* connect() a second time answers from where the first one stands, as
 * Linux's socket state does: EALREADY or EISCONN while it lasts, the
 * unreported error or ECONNABORTED once it failed, and a new connection
 * after that; a port the stack chose goes with the failed attempt. */
static void check_repeated_connects(void) {
    struct sockaddr_in target;
    int target_socket = tcp_bound(&target);
    const struct sockaddr *to = (const struct sockaddr *)&target;

    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    check(connect(s, to, sizeof target) == -1 && errno == EINPROGRESS, "a refused non-blocking connect starts",
          "not EINPROGRESS");
    struct pollfd ready = {.fd = s, .events = POLLOUT};
    poll(&ready, 1, 5000);
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &length);
    check(error == ECONNREFUSED, "SO_ERROR reports the refusal", "SO_ERROR %d", error);
    check(connect(s, to, sizeof target) == -1 && errno == ECONNABORTED,
          "connect after the reported refusal is ECONNABORTED", "not ECONNABORTED");
    check(listen(target_socket, 8) == 0, "the target listens", "listen failed");
    int flags = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, flags & ~O_NONBLOCK);
    check(connect(s, to, sizeof target) == 0, "a third connect makes a new connection", "connect failed");
    check(connect(s, to, sizeof target) == -1 && errno == EISCONN, "then connect is EISCONN", "not EISCONN");
    close(s);
    close(target_socket);

    /* A non-blocking connect that completed: the next connect succeeds. */
    int listener = tcp_listener(&target);
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(s, to, sizeof target);
    int accepted = accept(listener, NULL, NULL);
    close(accepted);
    ready.fd = s;
    poll(&ready, 1, 5000);
    check(connect(s, to, sizeof target) == 0, "connect after a non-blocking connect completed succeeds",
          "connect failed");
    check(connect(s, to, sizeof target) == -1 && errno == EISCONN, "and the one after is EISCONN", "not EISCONN");
    close(s);
    close(listener);

    /* A blocking connect refused: the port the stack chose at bind is free
     * again, and the next connect sends a new SYN. */
    target_socket = tcp_bound(&target);
    struct sockaddr_in client;
    int c = tcp_bound(&client);
    check(connect(c, to, sizeof target) == -1 && errno == ECONNREFUSED, "a blocking connect is refused",
          "not ECONNREFUSED");
    int other = socket(AF_INET, SOCK_STREAM, 0);
    check(bind(other, (struct sockaddr *)&client, sizeof client) == 0,
          "a chosen port goes with the refused connection", "bind failed");
    check(connect(c, to, sizeof target) == -1 && errno == ECONNREFUSED, "connecting again is refused again",
          "not ECONNREFUSED");
    close(other);
    close(c);
    close(target_socket);
}

/* 0 when raw sockets need CAP_NET_RAW: EPERM for ICMP and IPPROTO_RAW. */
static int raw_without_capability(void) {
    int icmp = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    int icmp_errno = errno;
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    return icmp == -1 && icmp_errno == EPERM && raw == -1 && errno == EPERM ? 0 : 1;
}

/* The Internet checksum of `length` bytes. */
static uint16_t internet_checksum(const void *bytes, size_t length) {
    const uint8_t *byte = bytes;
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < length; i += 2)
        sum += (uint32_t)byte[i] << 8 | byte[i + 1];
    if (length % 2)
        sum += (uint32_t)byte[length - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons((uint16_t)~sum);
}

/* A raw ICMP socket, as ping uses one: an echo request to the loopback
 * comes back as a reply, IP header first, from the loopback address; a
 * filter drops the types it names. IPPROTO_RAW sockets send packets the
 * program heads. */
static void check_raw_sockets(void) {
    int icmp = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    check(icmp >= 0, "raw ICMP socket with CAP_NET_RAW", "socket");
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    check(raw >= 0, "IPPROTO_RAW socket with CAP_NET_RAW", "socket");
    if (icmp < 0)
        return;
    int value = 0;
    socklen_t length = sizeof value;
    check(getsockopt(icmp, SOL_SOCKET, SO_TYPE, &value, &length) == 0 && value == SOCK_RAW, "raw SO_TYPE",
          "%d", value);
    length = sizeof value;
    check(getsockopt(icmp, SOL_SOCKET, SO_PROTOCOL, &value, &length) == 0 && value == IPPROTO_ICMP,
          "raw SO_PROTOCOL", "%d", value);
    length = sizeof value;
    check(getsockopt(raw, IPPROTO_IP, IP_HDRINCL, &value, &length) == 0 && value == 1,
          "IPPROTO_RAW includes the header", "%d", value);
    /* Let only echo replies (type 0) through, as ping does. */
    uint32_t filter = ~(1u << 0);
    check(setsockopt(icmp, SOL_RAW, 1 /* ICMP_FILTER */, &filter, sizeof filter) == 0, "ICMP_FILTER", "errno");
    struct timeval timeout = {.tv_sec = 2};
    setsockopt(icmp, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    uint8_t request[16] = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'r', 'o', 's', 'v', 'p', 'i', 'n', 'g'};
    uint16_t sum = internet_checksum(request, sizeof request);
    memcpy(request + 2, &sum, 2);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(sendto(icmp, request, sizeof request, 0, (struct sockaddr *)&to, sizeof to) == sizeof request,
          "raw ICMP echo request sent", "sendto");
    uint8_t reply[128] = {0};
    struct sockaddr_in from = {0};
    socklen_t from_length = sizeof from;
    ssize_t got = recvfrom(icmp, reply, sizeof reply, 0, (struct sockaddr *)&from, &from_length);
    int header = (reply[0] & 0x0f) * 4;
    check(got == header + (ssize_t)sizeof request && reply[0] >> 4 == 4 && reply[9] == IPPROTO_ICMP &&
              reply[header] == 0 && memcmp(reply + header + 4, request + 4, sizeof request - 4) == 0,
          "raw ICMP echo reply received with its IP header", "got %zd, type %d", got, reply[header]);
    check(from.sin_family == AF_INET && from.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "raw reply's source",
          "%08x", ntohl(from.sin_addr.s_addr));
    errno = 0;
    check(sendto(icmp, request, sizeof request, 0, NULL, 0) == -1 && errno == EDESTADDRREQ,
          "raw send without an address EDESTADDRREQ", "errno");
    errno = 0;
    check(listen(icmp, 1) == -1 && errno == EOPNOTSUPP, "raw listen EOPNOTSUPP", "errno");
    if (raw >= 0) {
        /* An echo request headed by the program, zero source filled in. */
        uint8_t packet[20 + sizeof request] = {0x45, 0, 0, 0, 0, 0, 0, 0, 64, IPPROTO_ICMP};
        memcpy(packet + 16, &to.sin_addr, 4);
        request[7] = 2;
        request[2] = request[3] = 0;
        sum = internet_checksum(request, sizeof request);
        memcpy(request + 2, &sum, 2);
        memcpy(packet + 20, request, sizeof request);
        check(sendto(raw, packet, sizeof packet, 0, (struct sockaddr *)&to, sizeof to) == sizeof packet,
              "IPPROTO_RAW headed packet sent", "sendto");
        got = recvfrom(icmp, reply, sizeof reply, 0, NULL, NULL);
        header = (reply[0] & 0x0f) * 4;
        check(got == header + (ssize_t)sizeof request && reply[header] == 0 && reply[header + 7] == 2,
              "its echo reply comes to the ICMP socket", "got %zd", got);
        close(raw);
    }
    close(icmp);
}

static void check_privileges(void) {
    check(as_nobody(bind_privileged_port) == 0, "a privileged port needs CAP_NET_BIND_SERVICE", "not EACCES");
    check(as_nobody(raw_without_capability) == 0, "raw sockets need CAP_NET_RAW", "not EPERM");
    check_raw_sockets();
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {0};
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, node_path);
    unlink(node_path);
    check(bind(listener, (struct sockaddr *)&address, sizeof address) == 0 && listen(listener, 1) == 0 &&
              chmod(node_path, 0555) == 0,
          "a read-only socket node", "errno");
    check(as_nobody(connect_without_permission) == 0, "connecting needs write permission on the node",
          "not EACCES");
    unlink(node_path);
    close(listener);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    check_socket_kinds();
    check_option_levels();
    check_flags_lengths_and_control();
    check_multicast_groups();
    check_repeated_connects();
    if (getuid() == 0)
        check_privileges();
    else
        skip("privileges", "not running as root");
    printf("%d checks failed\n", failures);
    return failures;
}
