/* Checks what TCP and UDP sockets report and how sends gather, over the
 * loopback interface: TCP_INFO's figures after traffic, MSG_MORE and
 * TCP_CORK holding data back, UDP MSG_MORE making one datagram of several
 * sends, multicast delivery to the members of a group, the UDP error
 * queue, and the TCP_SYNCNT and TCP_WINDOW_CLAMP values. Prints one line per check ("ok <name>" or "FAIL <name>: <why>")
 * and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* Linux's `struct tcp_info` up to `tcpi_snd_wnd` (uapi/linux/tcp.h): the C
 * libraries' copies differ in length, so the checks use their own. */
struct linux_tcp_info {
    uint8_t state, ca_state, retransmits, probes, backoff, options, wscale, flags;
    uint32_t rto, ato, snd_mss, rcv_mss;
    uint32_t unacked, sacked, lost, retrans, fackets;
    uint32_t last_data_sent, last_ack_sent, last_data_recv, last_ack_recv;
    uint32_t pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh, snd_cwnd, advmss, reordering;
    uint32_t rcv_rtt, rcv_space, total_retrans;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
    uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
    uint64_t delivery_rate, busy_time, rwnd_limited, sndbuf_limited;
    uint32_t delivered, delivered_ce;
    uint64_t bytes_sent, bytes_retrans;
    uint32_t dsack_dups, reord_seen, rcv_ooopack, snd_wnd;
};

#define OPTION_TIMESTAMPS 1
#define OPTION_WINDOW_SCALE 4

static struct sockaddr_in loopback(unsigned short port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

/* A connected pair of TCP sockets over the loopback: `client` connected,
 * `server` accepted. */
static int connected_pair(int *client, int *server) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *)&address, &length) != 0)
        return -1;
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (*client < 0 || connect(*client, (struct sockaddr *)&address, sizeof address) != 0)
        return -1;
    *server = accept(listener, NULL, NULL);
    close(listener);
    return *server < 0 ? -1 : 0;
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

static int read_all(int fd, unsigned char *bytes, size_t length) {
    while (length > 0) {
        ssize_t got = read(fd, bytes, length);
        if (got <= 0)
            return -1;
        bytes += got;
        length -= (size_t)got;
    }
    return 0;
}

static int tcp_info_of(int fd, struct linux_tcp_info *information) {
    memset(information, 0, sizeof *information);
    socklen_t length = sizeof *information;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, information, &length) != 0)
        return -1;
    return (int)length;
}

/* ---- TCP_INFO ---- */

#define BULK 60000
#define EXCHANGES 20
#define SMALL 100

/* Sends BULK bytes one way, then EXCHANGES small requests answered by
 * small replies; every byte sent has been acknowledged once its answer
 * came. */
static void check_tcp_info(void) {
    int client, server;
    if (connected_pair(&client, &server) != 0) {
        check(0, "TCP_INFO: a connection", "no connection");
        return;
    }
    int on = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    struct linux_tcp_info fresh;
    int length = tcp_info_of(client, &fresh);
    check(length == (int)sizeof fresh, "TCP_INFO: Linux's length", "length %d", length);
    check(fresh.state == 1 && fresh.bytes_received == 0 && fresh.data_segs_in == 0 && fresh.segs_out >= 2,
          "TCP_INFO: a fresh connection is established and has the handshake's segments",
          "state %u received %llu data segments in %u segments out %u", fresh.state,
          (unsigned long long)fresh.bytes_received, fresh.data_segs_in, fresh.segs_out);
    check(fresh.snd_mss > 0 && fresh.rcv_mss > 0 && fresh.advmss >= fresh.snd_mss && fresh.snd_cwnd > 0 &&
              fresh.pmtu > fresh.snd_mss,
          "TCP_INFO: segment sizes, path MTU and congestion window", "snd_mss %u rcv_mss %u advmss %u cwnd %u pmtu %u",
          fresh.snd_mss, fresh.rcv_mss, fresh.advmss, fresh.snd_cwnd, fresh.pmtu);
    check((fresh.options & OPTION_WINDOW_SCALE) && (fresh.wscale & 0xf) > 0 && (fresh.wscale >> 4) > 0,
          "TCP_INFO: window scaling agreed in the handshake", "options %#x scales %#x", fresh.options,
          fresh.wscale);
    unsigned char *bytes = calloc(1, BULK);
    int moved = bytes && write_all(client, bytes, BULK) == 0 && read_all(server, bytes, BULK) == 0;
    unsigned char request[SMALL] = {1}, reply[SMALL];
    for (int exchange = 0; moved && exchange < EXCHANGES; exchange++) {
        moved = write_all(client, request, SMALL) == 0 && read_all(server, request, SMALL) == 0 &&
                write_all(server, reply, SMALL) == 0 && read_all(client, reply, SMALL) == 0;
    }
    check(moved, "TCP_INFO: traffic both ways", "a transfer failed");
    free(bytes);
    struct linux_tcp_info sender, receiver;
    tcp_info_of(client, &sender);
    tcp_info_of(server, &receiver);
    unsigned long long client_sent = BULK + EXCHANGES * SMALL, server_sent = EXCHANGES * SMALL;
    /* Linux counts the connecting side's SYN among the bytes acknowledged
     * (not the listening side's), and no SYN among those received. The
     * acknowledgement of the last reply may still be delayed. */
    check(sender.bytes_acked == client_sent + 1 && sender.bytes_received == server_sent,
          "TCP_INFO: bytes acknowledged and received by the client", "acked %llu received %llu",
          (unsigned long long)sender.bytes_acked, (unsigned long long)sender.bytes_received);
    check(receiver.bytes_received == client_sent && receiver.bytes_acked >= server_sent - SMALL &&
              receiver.bytes_acked <= server_sent,
          "TCP_INFO: bytes acknowledged and received by the server", "acked %llu received %llu",
          (unsigned long long)receiver.bytes_acked, (unsigned long long)receiver.bytes_received);
    check(sender.data_segs_out >= 1 + EXCHANGES && sender.segs_out >= sender.data_segs_out &&
              sender.data_segs_in == EXCHANGES && sender.segs_in >= sender.data_segs_in &&
              receiver.data_segs_in >= 1 + EXCHANGES && receiver.data_segs_out == EXCHANGES,
          "TCP_INFO: segments in and out", "client out %u/%u in %u/%u, server out %u in %u", sender.data_segs_out,
          sender.segs_out, sender.data_segs_in, sender.segs_in, receiver.data_segs_out, receiver.data_segs_in);
    check(sender.bytes_sent == client_sent && sender.total_retrans == 0 && sender.retransmits == 0 &&
              sender.bytes_retrans == 0,
          "TCP_INFO: bytes sent, nothing retransmitted over the loopback", "sent %llu retransmitted %u (%llu bytes)",
          (unsigned long long)sender.bytes_sent, sender.total_retrans, (unsigned long long)sender.bytes_retrans);
    check(sender.rtt > 0 && sender.rtt < 5000000 && sender.min_rtt > 0 && sender.min_rtt <= sender.rtt * 8 &&
              sender.rto >= sender.rtt,
          "TCP_INFO: a measured round trip", "rtt %u rttvar %u min %u rto %u", sender.rtt, sender.rttvar,
          sender.min_rtt, sender.rto);
    check(sender.unacked == 0 && sender.notsent_bytes == 0 && sender.snd_wnd > 0,
          "TCP_INFO: nothing in flight once answered, the peer's window", "unacked %u not sent %u window %u",
          sender.unacked, sender.notsent_bytes, sender.snd_wnd);
    check(sender.last_data_recv < 5000 && sender.last_data_sent < 5000 && sender.last_ack_recv < 5000,
          "TCP_INFO: the last data and acknowledgement are recent", "sent %u ms received %u ms ack %u ms",
          sender.last_data_sent, sender.last_data_recv, sender.last_ack_recv);
    check(sender.rcv_mss >= SMALL && receiver.rcv_mss >= SMALL, "TCP_INFO: the receive segment size follows the data",
          "client %u server %u", sender.rcv_mss, receiver.rcv_mss);
    close(client);
    close(server);
}

/* ---- gathered sends ---- */

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

/* Whether `fd` becomes readable within `milliseconds`. */
static int readable(int fd, int milliseconds) {
    struct pollfd entry = {.fd = fd, .events = POLLIN};
    return poll(&entry, 1, milliseconds) == 1;
}

static void check_tcp_more(void) {
    int client, server;
    if (connected_pair(&client, &server) != 0) {
        check(0, "MSG_MORE: a connection", "no connection");
        return;
    }
    int on = 1, off = 0;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    char bytes[16] = {0};
    check(send(client, "ab", 2, MSG_MORE) == 2 && !readable(server, 20), "MSG_MORE holds a partial segment back",
          "the bytes arrived");
    check(send(client, "cd", 2, 0) == 2 && readable(server, 5000) && read(server, bytes, sizeof bytes) == 4 &&
              memcmp(bytes, "abcd", 4) == 0,
          "a send without MSG_MORE sends what was held with it", "got '%.4s'", bytes);
    long long started = now_ms();
    send(client, "ef", 2, MSG_MORE);
    int arrived = readable(server, 5000);
    long long waited = now_ms() - started;
    check(arrived && waited >= 150 && read(server, bytes, sizeof bytes) == 2,
          "held bytes go on their own after about 200 ms", "arrived %d after %lld ms", arrived, waited);
    int corked = -1;
    socklen_t length = sizeof corked;
    setsockopt(client, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    getsockopt(client, IPPROTO_TCP, TCP_CORK, &corked, &length);
    check(corked == 1 && write(client, "gh", 2) == 2 && write(client, "ij", 2) == 2 && !readable(server, 20),
          "TCP_CORK holds partial segments back", "corked %d", corked);
    setsockopt(client, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    memset(bytes, 0, sizeof bytes);
    check(readable(server, 5000) && read(server, bytes, sizeof bytes) == 4 && memcmp(bytes, "ghij", 4) == 0,
          "taking the cork off sends what it held", "got '%.4s'", bytes);
    setsockopt(client, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    check(write(client, "kl", 2) == 2 && !readable(server, 20), "corked again", "the bytes arrived");
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    check(readable(server, 5000) && read(server, bytes, sizeof bytes) == 2,
          "TCP_NODELAY sends what the cork held", "nothing arrived");
    setsockopt(client, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    setsockopt(client, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    memset(bytes, 0, sizeof bytes);
    int sent = send(client, "mn", 2, MSG_MORE) == 2 && shutdown(client, SHUT_WR) == 0;
    check(sent && readable(server, 5000) && read(server, bytes, sizeof bytes) == 2 && memcmp(bytes, "mn", 2) == 0 &&
              read(server, bytes, sizeof bytes) == 0,
          "held bytes go before the end of the stream", "got '%.2s'", bytes);
    close(client);
    close(server);
}

static void check_udp_more(void) {
    int sender = socket(AF_INET, SOCK_DGRAM, 0), receiver = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (bind(receiver, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockname(receiver, (struct sockaddr *)&address, &length) != 0 ||
        connect(sender, (struct sockaddr *)&address, sizeof address) != 0) {
        check(0, "UDP MSG_MORE: sockets", "setup failed");
        return;
    }
    char bytes[16] = {0};
    check(send(sender, "12", 2, MSG_MORE) == 2 && send(sender, "34", 2, MSG_MORE) == 2 && !readable(receiver, 20),
          "UDP MSG_MORE gathers without sending", "a datagram arrived");
    check(send(sender, "5", 1, 0) == 1 && readable(receiver, 5000) && recv(receiver, bytes, sizeof bytes, 0) == 5 &&
              memcmp(bytes, "12345", 5) == 0 && recv(receiver, bytes, sizeof bytes, MSG_DONTWAIT) == -1 &&
              errno == EAGAIN,
          "UDP: the last send makes one datagram of all", "got '%.5s'", bytes);
    int on = 1, off = 0, corked = -1;
    length = sizeof corked;
    setsockopt(sender, IPPROTO_UDP, UDP_CORK, &on, sizeof on);
    getsockopt(sender, IPPROTO_UDP, UDP_CORK, &corked, &length);
    check(corked == 1 && send(sender, "ab", 2, 0) == 2 && send(sender, "cd", 2, 0) == 2 && !readable(receiver, 20),
          "UDP_CORK gathers", "corked %d", corked);
    setsockopt(sender, IPPROTO_UDP, UDP_CORK, &off, sizeof off);
    memset(bytes, 0, sizeof bytes);
    check(readable(receiver, 5000) && recv(receiver, bytes, sizeof bytes, 0) == 4 && memcmp(bytes, "abcd", 4) == 0,
          "taking UDP_CORK off sends one datagram", "got '%.4s'", bytes);
    static char large[65000];
    check(send(sender, large, sizeof large, MSG_MORE) == sizeof large &&
              send(sender, large, 1000, MSG_MORE) == -1 && errno == EMSGSIZE,
          "UDP MSG_MORE beyond a datagram's size: EMSGSIZE", "no EMSGSIZE");
    close(sender);
    close(receiver);
}

/* ---- multicast ---- */

#define GROUP "239.1.2.3"

/* How many datagrams `fd` receives, each within 100 ms of the last. */
static int datagrams(int fd) {
    char bytes[64];
    int count = 0;
    while (readable(fd, 100) && recv(fd, bytes, sizeof bytes, 0) >= 0)
        count++;
    return count;
}

static void check_multicast(void) {
    int on = 1;
    struct sockaddr_in address = {.sin_family = AF_INET};
    int members[3], other = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t length = sizeof address;
    /* Three sockets on one port, another on a port of its own. */
    members[0] = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(members[0], SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    bind(members[0], (struct sockaddr *)&address, sizeof address);
    getsockname(members[0], (struct sockaddr *)&address, &length);
    for (int index = 1; index < 3; index++) {
        members[index] = socket(AF_INET, SOCK_DGRAM, 0);
        setsockopt(members[index], SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        check(bind(members[index], (struct sockaddr *)&address, sizeof address) == 0,
              "multicast: sockets share a port", "bind failed");
    }
    struct sockaddr_in elsewhere = {.sin_family = AF_INET};
    bind(other, (struct sockaddr *)&elsewhere, sizeof elsewhere);
    struct sockaddr_in group = {.sin_family = AF_INET, .sin_port = address.sin_port};
    group.sin_addr.s_addr = inet_addr(GROUP);
    struct ip_mreq request = {.imr_multiaddr = group.sin_addr};
    request.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    struct in_addr interface = {htonl(INADDR_LOOPBACK)};
    int loop = -1, ttl = -1;
    length = sizeof loop;
    getsockopt(sender, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, &length);
    getsockopt(sender, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, &length);
    check(loop == 1 && ttl == 1, "multicast: loop on and a time to live of 1 by default", "loop %d ttl %d", loop, ttl);
    check(setsockopt(sender, IPPROTO_IP, IP_MULTICAST_IF, &interface, sizeof interface) == 0,
          "IP_MULTICAST_IF takes the loopback's address", "refused");
    sendto(sender, "0", 1, 0, (struct sockaddr *)&group, sizeof group);
    int before = datagrams(members[0]) + datagrams(members[1]) + datagrams(members[2]);
    check(before == 0, "multicast: nothing arrives before a socket joins", "%d arrived", before);
    check(setsockopt(members[0], IPPROTO_IP, IP_ADD_MEMBERSHIP, &request, sizeof request) == 0,
          "IP_ADD_MEMBERSHIP", "refused");
    check(setsockopt(members[0], IPPROTO_IP, IP_ADD_MEMBERSHIP, &request, sizeof request) == -1 && errno == EADDRINUSE,
          "joining twice: EADDRINUSE", "no EADDRINUSE");
    setsockopt(members[0], IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
    check(sendto(sender, "1", 1, 0, (struct sockaddr *)&group, sizeof group) == 1, "a send to the group", "failed");
    char byte = 0;
    struct sockaddr_in source = {0};
    union {
        struct cmsghdr header;
        char bytes[128];
    } control;
    struct iovec vector = {&byte, 1};
    struct msghdr message = {.msg_name = &source, .msg_namelen = sizeof source, .msg_iov = &vector,
                             .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
    int first = readable(members[0], 5000) && recvmsg(members[0], &message, 0) == 1;
    check(first && byte == '1' && source.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "the member receives the datagram, from the loopback", "received %d '%c' from %s", first, byte,
          inet_ntoa(source.sin_addr));
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    struct in_pktinfo information = {0};
    if (header && header->cmsg_type == IP_PKTINFO)
        memcpy(&information, CMSG_DATA(header), sizeof information);
    check(information.ipi_ifindex == 1 && information.ipi_spec_dst.s_addr == htonl(INADDR_LOOPBACK) &&
              information.ipi_addr.s_addr == group.sin_addr.s_addr,
          "IP_PKTINFO of a datagram to a group: the interface, the reply's address, the group",
          "index %d destination %s", information.ipi_ifindex, inet_ntoa(information.ipi_addr));
    int counts[3] = {datagrams(members[0]), datagrams(members[1]), datagrams(members[2])};
    int elsewhere_count = datagrams(other);
    check(counts[0] == 0 && counts[1] == 1 && counts[2] == 1 && elsewhere_count == 0,
          "every socket on the port gets one copy, no other socket any",
          "copies %d %d %d, elsewhere %d", counts[0] + 1, counts[1], counts[2], elsewhere_count);
    check(setsockopt(members[0], IPPROTO_IP, IP_DROP_MEMBERSHIP, &request, sizeof request) == 0,
          "IP_DROP_MEMBERSHIP", "refused");
    sendto(sender, "2", 1, 0, (struct sockaddr *)&group, sizeof group);
    int after = datagrams(members[0]) + datagrams(members[1]) + datagrams(members[2]);
    check(after == 0, "multicast: nothing arrives once the last member left", "%d arrived", after);
    check(setsockopt(members[0], IPPROTO_IP, IP_DROP_MEMBERSHIP, &request, sizeof request) == -1 &&
              errno == EADDRNOTAVAIL,
          "leaving a group not joined: EADDRNOTAVAIL", "no EADDRNOTAVAIL");
    struct ip_mreq_source from = {.imr_multiaddr = group.sin_addr, .imr_interface = request.imr_interface};
    from.imr_sourceaddr.s_addr = htonl(INADDR_LOOPBACK);
    check(setsockopt(members[1], IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &from, sizeof from) == 0,
          "IP_ADD_SOURCE_MEMBERSHIP", "refused");
    from.imr_sourceaddr.s_addr = inet_addr("10.9.9.9");
    check(setsockopt(members[2], IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, &from, sizeof from) == 0,
          "IP_ADD_SOURCE_MEMBERSHIP from another source", "refused");
    sendto(sender, "3", 1, 0, (struct sockaddr *)&group, sizeof group);
    int sourced[3] = {datagrams(members[0]), datagrams(members[1]), datagrams(members[2])};
    check(sourced[0] == 1 && sourced[1] == 1 && sourced[2] == 0,
          "a source membership admits its source only; sockets without one get everything",
          "copies %d %d %d", sourced[0], sourced[1], sourced[2]);
    for (int index = 0; index < 3; index++)
        close(members[index]);
    close(other);
    close(sender);
}

/* ---- the error queue ---- */

/* `struct sock_extended_err` (linux/errqueue.h). */
struct extended_error {
    uint32_t error;
    uint8_t origin, type, code, pad;
    uint32_t info, data;
};

#define ORIGIN_ICMP 2

/* Whether `fd` reports an error within `milliseconds`. */
static int errs(int fd, int milliseconds) {
    struct pollfd entry = {.fd = fd};
    return poll(&entry, 1, milliseconds) == 1 && (entry.revents & POLLERR);
}

static void check_error_queue(void) {
    int on = 1;
    /* A loopback port nobody listens on. */
    int gone = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in closed = loopback(0);
    socklen_t length = sizeof closed;
    bind(gone, (struct sockaddr *)&closed, sizeof closed);
    getsockname(gone, (struct sockaddr *)&closed, &length);
    close(gone);
    int collector = socket(AF_INET, SOCK_DGRAM, 0);
    int set = setsockopt(collector, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
    check(set == 0 && sendto(collector, "hello", 5, 0, (struct sockaddr *)&closed, sizeof closed) == 5 &&
              errs(collector, 5000),
          "IP_RECVERR: an unreachable port makes POLLERR", "no POLLERR");
    char data[64] = {0};
    union {
        struct cmsghdr header;
        char bytes[256];
    } control;
    struct sockaddr_in name = {0};
    struct iovec vector = {data, sizeof data};
    struct msghdr message = {.msg_name = &name, .msg_namelen = sizeof name, .msg_iov = &vector, .msg_iovlen = 1,
                             .msg_control = &control, .msg_controllen = sizeof control};
    ssize_t got = recvmsg(collector, &message, MSG_ERRQUEUE);
    check(got == 5 && memcmp(data, "hello", 5) == 0 && (message.msg_flags & MSG_ERRQUEUE) &&
              name.sin_port == closed.sin_port && name.sin_addr.s_addr == closed.sin_addr.s_addr,
          "MSG_ERRQUEUE gives the datagram back, with where it went", "got %zd flags %#x port %u", got,
          message.msg_flags, ntohs(name.sin_port));
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    struct extended_error error = {0};
    struct sockaddr_in offender = {0};
    if (header && header->cmsg_len >= CMSG_LEN(sizeof error + sizeof offender)) {
        memcpy(&error, CMSG_DATA(header), sizeof error);
        memcpy(&offender, CMSG_DATA(header) + sizeof error, sizeof offender);
    }
    check(header && header->cmsg_level == IPPROTO_IP && header->cmsg_type == IP_RECVERR &&
              error.error == ECONNREFUSED && error.origin == ORIGIN_ICMP && error.type == 3 && error.code == 3 &&
              offender.sin_family == AF_INET && offender.sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "IP_RECVERR: the extended error of an unreachable port", "level %d type %d errno %u origin %u %u/%u",
          header ? header->cmsg_level : -1, header ? header->cmsg_type : -1, error.error, error.origin, error.type,
          error.code);
    check(recvmsg(collector, &message, MSG_ERRQUEUE) == -1 && errno == EAGAIN,
          "an empty error queue: EAGAIN", "no EAGAIN");
    close(collector);

    int connected = socket(AF_INET, SOCK_DGRAM, 0);
    connect(connected, (struct sockaddr *)&closed, sizeof closed);
    check(send(connected, "x", 1, 0) == 1 && errs(connected, 5000),
          "a connected socket sees the unreachable port", "no POLLERR");
    check(send(connected, "y", 1, 0) == -1 && errno == ECONNREFUSED, "its next call: ECONNREFUSED",
          "no ECONNREFUSED");
    close(connected);

    int quiet = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(quiet, "z", 1, 0, (struct sockaddr *)&closed, sizeof closed);
    usleep(200 * 1000);
    check(recv(quiet, data, sizeof data, MSG_DONTWAIT) == -1 && errno == EAGAIN && !errs(quiet, 0),
          "an unconnected socket without IP_RECVERR ignores the error", "it was reported");
    close(quiet);
}

/* Reads the TCP option `name` of `s` as an int (-1 on error). */
static int tcp_integer(int s, int name) {
    int value = -1;
    socklen_t length = sizeof value;
    if (getsockopt(s, IPPROTO_TCP, name, &value, &length) != 0)
        return -1;
    return value;
}

/* TCP_SYNCNT takes 1 to 127 (6 unless set); TCP_WINDOW_CLAMP raises what
 * is below half the smallest receive buffer and takes 0 only while the
 * socket is closed. */
static void check_tcp_retries_and_clamp(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int values[] = {0, -1, 128, 20};
    check(tcp_integer(s, TCP_SYNCNT) == 6, "TCP_SYNCNT is 6 unless set", "read %d", tcp_integer(s, TCP_SYNCNT));
    check(setsockopt(s, IPPROTO_TCP, TCP_SYNCNT, &values[0], sizeof(int)) == -1 && errno == EINVAL &&
              setsockopt(s, IPPROTO_TCP, TCP_SYNCNT, &values[1], sizeof(int)) == -1 &&
              setsockopt(s, IPPROTO_TCP, TCP_SYNCNT, &values[2], sizeof(int)) == -1,
          "TCP_SYNCNT out of 1 to 127 is EINVAL", "accepted");
    check(setsockopt(s, IPPROTO_TCP, TCP_SYNCNT, &values[3], sizeof(int)) == 0 && tcp_integer(s, TCP_SYNCNT) == 20,
          "TCP_SYNCNT is read back", "read %d", tcp_integer(s, TCP_SYNCNT));
    int zero = 0, small = 100, receive = -1;
    socklen_t length = sizeof receive;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &zero, sizeof zero);
    getsockopt(s, SOL_SOCKET, SO_RCVBUF, &receive, &length);
    check(setsockopt(s, IPPROTO_TCP, TCP_WINDOW_CLAMP, &small, sizeof small) == 0 &&
              tcp_integer(s, TCP_WINDOW_CLAMP) == receive / 2,
          "a small TCP_WINDOW_CLAMP becomes half the smallest buffer", "read %d for a buffer of %d",
          tcp_integer(s, TCP_WINDOW_CLAMP), receive);
    check(setsockopt(s, IPPROTO_TCP, TCP_WINDOW_CLAMP, &zero, sizeof zero) == 0 &&
              tcp_integer(s, TCP_WINDOW_CLAMP) == 0,
          "a closed socket's clamp comes off with 0", "read %d", tcp_integer(s, TCP_WINDOW_CLAMP));
    listen(s, 1);
    check(setsockopt(s, IPPROTO_TCP, TCP_WINDOW_CLAMP, &zero, sizeof zero) == -1 && errno == EINVAL,
          "a listener's clamp cannot be 0", "not EINVAL");
    close(s);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_tcp_info();
    check_tcp_more();
    check_udp_more();
    check_multicast();
    check_error_queue();
    check_tcp_retries_and_clamp();
    printf("%d checks failed\n", failures);
    return failures;
}
