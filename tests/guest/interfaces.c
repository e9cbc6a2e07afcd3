/* Checks what a program learns about the network interfaces: the
 * interface list through getifaddrs and if_nameindex (netlink, as the C
 * libraries ask), and the SIOCGIF* requests on a socket; prints each
 * interface with an IPv4 address as "interface <name> <address>/<prefix>".
 * Exits with the number of failed checks. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.h"

static int prefix_of(const struct sockaddr *mask) {
    unsigned int bits = ntohl(((const struct sockaddr_in *)mask)->sin_addr.s_addr);
    int prefix = 0;
    while (bits & 0x80000000u) {
        prefix++;
        bits <<= 1;
    }
    return prefix;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct ifaddrs *list = NULL;
    check(getifaddrs(&list) == 0, "getifaddrs", "getifaddrs failed");
    int saw_loop = 0;
    for (struct ifaddrs *entry = list; entry != NULL; entry = entry->ifa_next) {
        if (entry->ifa_addr == NULL || entry->ifa_addr->sa_family != AF_INET) {
            continue;
        }
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)entry->ifa_addr)->sin_addr, text, sizeof text);
        printf("interface %s %s/%d\n", entry->ifa_name, text, prefix_of(entry->ifa_netmask));
        if (strcmp(entry->ifa_name, "lo") == 0 && strcmp(text, "127.0.0.1") == 0 &&
            (entry->ifa_flags & IFF_LOOPBACK) && (entry->ifa_flags & IFF_UP)) {
            saw_loop = 1;
        }
    }
    check(saw_loop, "getifaddrs lists lo", "no lo with 127.0.0.1");
    freeifaddrs(list);

    unsigned int loop_index = if_nametoindex("lo");
    check(loop_index > 0, "if_nametoindex", "lo has no index");
    char name[IF_NAMESIZE] = {0};
    check(if_indextoname(loop_index, name) != NULL && strcmp(name, "lo") == 0, "if_indextoname", "name %s",
          name);
    check(if_nametoindex("nothing0") == 0, "if_nametoindex unknown", "an index for nothing0");
    struct if_nameindex *names = if_nameindex();
    int listed = 0;
    for (struct if_nameindex *entry = names; entry != NULL && entry->if_index != 0; entry++) {
        listed += strcmp(entry->if_name, "lo") == 0;
    }
    check(listed == 1, "if_nameindex", "lo listed %d times", listed);
    if_freenameindex(names);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strcpy(request.ifr_name, "lo");
    check(ioctl(fd, SIOCGIFFLAGS, &request) == 0 && (request.ifr_flags & IFF_LOOPBACK), "SIOCGIFFLAGS",
          "flags %#x", request.ifr_flags);
    check(ioctl(fd, SIOCGIFADDR, &request) == 0 &&
              ((struct sockaddr_in *)&request.ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK),
          "SIOCGIFADDR", "not 127.0.0.1");
    check(ioctl(fd, SIOCGIFNETMASK, &request) == 0 && prefix_of(&request.ifr_netmask) == 8, "SIOCGIFNETMASK",
          "not /8");
    check(ioctl(fd, SIOCGIFMTU, &request) == 0 && request.ifr_mtu > 0, "SIOCGIFMTU", "mtu %d", request.ifr_mtu);
    check(ioctl(fd, SIOCGIFINDEX, &request) == 0 && (unsigned)request.ifr_ifindex == loop_index, "SIOCGIFINDEX",
          "index %d", request.ifr_ifindex);
    strcpy(request.ifr_name, "nothing0");
    check(ioctl(fd, SIOCGIFFLAGS, &request) == -1 && errno == ENODEV, "SIOCGIFFLAGS unknown", "no ENODEV");
    struct ifreq slots[8];
    struct ifconf configuration = {.ifc_len = sizeof slots, .ifc_req = slots};
    check(ioctl(fd, SIOCGIFCONF, &configuration) == 0 && configuration.ifc_len >= (int)sizeof(struct ifreq) &&
              strcmp(slots[0].ifr_name, "lo") == 0,
          "SIOCGIFCONF", "length %d", configuration.ifc_len);
    close(fd);

    /* /proc/net/dev: a line per interface after two header lines. */
    FILE *devices = fopen("/proc/net/dev", "r");
    char line[256];
    int lines = 0;
    int loop_line = 0;
    while (devices != NULL && fgets(line, sizeof line, devices) != NULL) {
        lines++;
        char name[32];
        unsigned long long received = 0;
        if (lines > 2 && sscanf(line, " %31[^:]: %llu", name, &received) == 2 && strcmp(name, "lo") == 0) {
            loop_line = 1;
        }
    }
    if (devices != NULL) {
        fclose(devices);
    }
    check(lines >= 3 && loop_line, "/proc/net/dev", "%d lines, lo %s", lines, loop_line ? "listed" : "missing");
    printf("%d checks failed\n", failures);
    return failures;
}
