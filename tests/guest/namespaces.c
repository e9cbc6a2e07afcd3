/* Checks namespaces: the /proc/PID/ns links (their text, inode numbers
 * and stat), setns and its nstype rule, the NS_GET_* requests, UTS
 * namespaces (a host name of their own), user namespaces (uid_map,
 * gid_map and setgroups with Linux's write-once and permission rules,
 * ids seen through the maps, capabilities inside, unprivileged creation),
 * IPC namespaces (System V objects of their own), network namespaces
 * (only a loop, down until brought up, and ports of their own), mount namespaces
 * (mounts private to the copy), cgroup and time
 * namespaces, and invalid flag combinations. Must start as root; prints
 * one line per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
/* linux/nsfs.h */
#define NS_GET_USERNS 0xb701
#define NS_GET_PARENT 0xb702
#define NS_GET_NSTYPE 0xb703
#define NS_GET_OWNER_UID 0xb704

#define FAILS_WITH(call, expected) ((call) == -1 && errno == (expected))
#define DIRECTORY "/tmp/namespaces-test"
#define SECRET "/tmp/namespaces-secret"

/* The inode number /proc/self/ns/NAME's text shows, or 0. */
static unsigned long long link_inode(const char *path, const char *kind) {
    char text[64] = {0};
    if (readlink(path, text, sizeof text - 1) < 0) {
        return 0;
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s:[", kind);
    if (strncmp(text, prefix, strlen(prefix)) != 0 || text[strlen(text) - 1] != ']') {
        return 0;
    }
    return strtoull(text + strlen(prefix), NULL, 10);
}

static unsigned long long own(const char *name) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/ns/%s", name);
    const char *kind = strcmp(name, "pid_for_children") == 0    ? "pid"
                       : strcmp(name, "time_for_children") == 0 ? "time"
                                                                : name;
    return link_inode(path, kind);
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        return -1;
    }
    ssize_t written = write(fd, text, strlen(text));
    int saved = errno;
    close(fd);
    errno = saved;
    return written == (ssize_t)strlen(text) ? 0 : -1;
}

static void read_file(const char *path, char *text, size_t size) {
    text[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return;
    }
    ssize_t length = read(fd, text, size - 1);
    text[length > 0 ? length : 0] = 0;
    close(fd);
}

/* Runs `body` in a forked child; the child's exit status is the number
 * of its failed checks. Its output comes before the parent's next line. */
static void in_child(void (*body)(void)) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        failures = 0;
        body();
        fflush(stdout);
        _exit(failures);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status)) {
        check(0, "child ends", "status %#x", status);
    } else {
        failures += WEXITSTATUS(status);
    }
}

static const char *const NAMES[] = {"cgroup", "ipc",  "mnt",  "net",  "pid",
                                    "pid_for_children", "time", "time_for_children", "user", "uts"};

static void links(void) {
    for (size_t index = 0; index < sizeof NAMES / sizeof NAMES[0]; index++) {
        char path[64], name[80];
        snprintf(path, sizeof path, "/proc/self/ns/%s", NAMES[index]);
        unsigned long long inode = own(NAMES[index]);
        snprintf(name, sizeof name, "ns/%s reads kind:[inode]", NAMES[index]);
        check(inode != 0, name, "readlink %s", path);
        struct stat first, second, link;
        int stated = stat(path, &first) == 0 && stat(path, &second) == 0;
        snprintf(name, sizeof name, "ns/%s stat gives its inode", NAMES[index]);
        check(stated && first.st_ino == inode && first.st_dev == second.st_dev && first.st_ino == second.st_ino,
              name, "st_ino %llu, link %llu", (unsigned long long)first.st_ino, inode);
        snprintf(name, sizeof name, "ns/%s is a link", NAMES[index]);
        check(lstat(path, &link) == 0 && S_ISLNK(link.st_mode), name, "mode %o", link.st_mode);
    }
    check(own("pid") == own("pid_for_children"), "pid_for_children starts as pid", "differ");
    check(own("time") == own("time_for_children"), "time_for_children starts as time", "differ");
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/uts", getpid());
    check(link_inode(path, "uts") == own("uts"), "ns of /proc/PID equals /proc/self", "differ");
}

static void files_and_setns(void) {
    int uts = open("/proc/self/ns/uts", O_RDONLY);
    check(uts >= 0, "ns/uts opens", "open");
    check(ioctl(uts, NS_GET_NSTYPE) == CLONE_NEWUTS, "NS_GET_NSTYPE", "not CLONE_NEWUTS");
    check(FAILS_WITH(setns(uts, CLONE_NEWIPC), EINVAL), "setns with another nstype is EINVAL", "no EINVAL");
    check(setns(uts, 0) == 0, "setns to the own UTS namespace", "setns");
    check(setns(uts, CLONE_NEWUTS) == 0, "setns with the matching nstype", "setns");
    int owner = ioctl(uts, NS_GET_USERNS);
    struct stat owner_stat;
    check(owner >= 0 && fstat(owner, &owner_stat) == 0 && owner_stat.st_ino == own("user"),
          "NS_GET_USERNS gives the owning user namespace", "ioctl");
    check(FAILS_WITH(ioctl(owner, NS_GET_PARENT), EPERM), "the initial user namespace has no parent",
          "no EPERM");
    check(FAILS_WITH(ioctl(uts, NS_GET_PARENT), EINVAL), "NS_GET_PARENT of a UTS namespace is EINVAL",
          "no EINVAL");
    uid_t owner_uid = 1;
    check(ioctl(owner, NS_GET_OWNER_UID, &owner_uid) == 0 && owner_uid == 0, "NS_GET_OWNER_UID", "uid %u",
          owner_uid);
    close(owner);
    close(uts);
    int null = open("/dev/null", O_RDONLY);
    check(FAILS_WITH(setns(null, 0), EINVAL), "setns on another file is EINVAL", "no EINVAL");
    close(null);
}

static char outer_host[65];

static void uts_child(void) {
    unsigned long long before = own("uts");
    check(unshare(CLONE_NEWUTS) == 0, "unshare(CLONE_NEWUTS)", "unshare");
    check(own("uts") != before && own("uts") != 0, "a new UTS namespace has a new number", "same");
    struct utsname names;
    check(uname(&names) == 0 && strcmp(names.nodename, outer_host) == 0, "the new namespace starts with the names",
          "%s", names.nodename);
    check(sethostname("inner", 5) == 0, "sethostname inside", "sethostname");
    check(uname(&names) == 0 && strcmp(names.nodename, "inner") == 0, "uname shows the inner name", "%s",
          names.nodename);
    char text[80];
    read_file("/proc/sys/kernel/hostname", text, sizeof text);
    check(strcmp(text, "inner\n") == 0, "/proc/sys/kernel/hostname shows it", "%s", text);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/uts", getppid());
    int outer = open(path, O_RDONLY);
    check(outer >= 0 && setns(outer, CLONE_NEWUTS) == 0, "setns back to the parent's", "setns");
    check(uname(&names) == 0 && strcmp(names.nodename, outer_host) == 0, "the parent's name again", "%s",
          names.nodename);
    close(outer);
}

static void clone_child(void) {
    /* clone(CLONE_NEWUTS) as fork does it: the child alone is in it. */
    unsigned long long before = own("uts");
    fflush(stdout);
    long child = syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
    if (child == 0) {
        _exit(own("uts") != before && sethostname("cloned", 6) == 0 ? 0 : 1);
    }
    int status = 0;
    check(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "clone(CLONE_NEWUTS) gives the child a namespace", "status %#x", status);
    check(own("uts") == before, "the caller stays in its own", "moved");
    check(FAILS_WITH(syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0), EINVAL),
          "CLONE_NEWNS with CLONE_FS is EINVAL", "no EINVAL");
    check(FAILS_WITH(syscall(SYS_clone, CLONE_NEWUSER | CLONE_FS | SIGCHLD, 0, 0, 0, 0), EINVAL),
          "CLONE_NEWUSER with CLONE_FS is EINVAL", "no EINVAL");
}

static void user_child(void) {
    unsigned long long before = own("user");
    int initial = open("/proc/self/ns/user", O_RDONLY);
    check(unshare(CLONE_NEWUSER) == 0, "unshare(CLONE_NEWUSER)", "unshare");
    check(own("user") != before, "a new user namespace has a new number", "same");
    check(getuid() == 65534 && getgid() == 65534, "ids show as the overflow id before the maps", "%u %u",
          getuid(), getgid());
    char text[128];
    read_file("/proc/self/uid_map", text, sizeof text);
    check(text[0] == 0, "uid_map starts empty", "%s", text);
    read_file("/proc/self/setgroups", text, sizeof text);
    check(strcmp(text, "allow\n") == 0, "setgroups starts as allow", "%s", text);
    check(FAILS_WITH(write_file("/proc/self/uid_map", "0 0 1 9\n"), EINVAL), "a malformed map is EINVAL",
          "no EINVAL");
    check(write_file("/proc/self/setgroups", "deny") == 0, "setgroups deny", "write");
    check(write_file("/proc/self/uid_map", "0 0 1\n") == 0, "uid_map written", "write");
    check(write_file("/proc/self/gid_map", "0 0 1\n") == 0, "gid_map written", "write");
    check(FAILS_WITH(write_file("/proc/self/uid_map", "0 0 1\n"), EPERM), "uid_map is written once", "no EPERM");
    check(FAILS_WITH(write_file("/proc/self/setgroups", "allow"), EPERM), "setgroups is fixed after gid_map",
          "no EPERM");
    read_file("/proc/self/uid_map", text, sizeof text);
    unsigned inside = 1, outside = 1, count = 0;
    check(sscanf(text, "%u %u %u", &inside, &outside, &count) == 3 && inside == 0 && outside == 0 && count == 1,
          "uid_map reads back", "%s", text);
    check(getuid() == 0 && geteuid() == 0 && getgid() == 0, "ids seen through the maps", "%u", getuid());
    gid_t group = 0;
    check(FAILS_WITH(setgroups(1, &group), EPERM), "setgroups is refused once denied", "no EPERM");
    check(unshare(CLONE_NEWUTS) == 0 && sethostname("userns", 6) == 0,
          "a UTS namespace made inside may be renamed", "unshare");
    int user = open("/proc/self/ns/user", O_RDONLY);
    check(FAILS_WITH(ioctl(user, NS_GET_PARENT), EPERM), "NS_GET_PARENT does not reach outside",
          "no EPERM");
    uid_t owner_uid = 1;
    check(ioctl(user, NS_GET_OWNER_UID, &owner_uid) == 0 && owner_uid == 0, "NS_GET_OWNER_UID of the new one",
          "%u", owner_uid);
    check(FAILS_WITH(setns(initial, CLONE_NEWUSER), EPERM), "no way back to the parent user namespace",
          "no EPERM");
    close(user);
    close(initial);
}

static void unprivileged_child(void) {
    check(setresgid(1000, 1000, 1000) == 0 && setresuid(1000, 1000, 1000) == 0, "become user 1000", "setres*id");
    /* A change of ids makes the process undumpable, and its /proc files
     * root's: make them its own again, as a login's processes are. */
    prctl(PR_SET_DUMPABLE, 1);
    check(FAILS_WITH(unshare(CLONE_NEWUTS), EPERM), "an unprivileged user may not make a UTS namespace",
          "no EPERM");
    check(FAILS_WITH(sethostname("nope", 4), EPERM), "nor rename the initial one", "no EPERM");
    check(unshare(CLONE_NEWUSER) == 0, "but may make a user namespace", "unshare");
    check(FAILS_WITH(write_file("/proc/self/uid_map", "0 0 1\n"), EPERM),
          "mapping another user needs privilege", "no EPERM");
    check(write_file("/proc/self/uid_map", "0 1000 1\n") == 0, "mapping the own user", "write");
    check(FAILS_WITH(write_file("/proc/self/gid_map", "0 1000 1\n"), EPERM),
          "mapping the own group needs setgroups deny", "no EPERM");
    check(write_file("/proc/self/setgroups", "deny") == 0 && write_file("/proc/self/gid_map", "0 1000 1\n") == 0,
          "then the group maps", "write");
    check(getuid() == 0 && getgid() == 0, "root inside", "%u %u", getuid(), getgid());
    struct stat status;
    check(stat("/proc/self/uid_map", &status) == 0 && status.st_uid == 0, "own files show the mapped owner", "%u",
          status.st_uid);
    check(stat("/", &status) == 0 && status.st_uid == 65534, "root's files show as the overflow id", "%u",
          status.st_uid);
    check(unshare(CLONE_NEWUTS) == 0 && sethostname("inside", 6) == 0, "full capabilities inside", "unshare");
    check(setuid(5) == -1 && errno == EINVAL, "an unmapped id is EINVAL", "setuid");
    check(FAILS_WITH(open(SECRET, O_RDONLY), EACCES), "no capability over files of unmapped owners",
          "no EACCES");
    check(FAILS_WITH(kill(getppid(), 0), EPERM), "nor over processes outside", "no EPERM");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    check(FAILS_WITH(clock_settime(CLOCK_REALTIME, &now), EPERM), "nor over the machine's clock", "no EPERM");
    char own_file[] = DIRECTORY "-own";
    int fd = open(own_file, O_CREAT | O_WRONLY, 0600);
    check(fd >= 0 && fchown(fd, 0, 0) == 0, "chown to a mapped id", "fchown");
    check(FAILS_WITH(fchown(fd, 5, -1), EINVAL), "chown to an unmapped id is EINVAL", "no EINVAL");
    close(fd);
    unlink(own_file);
}

static void mount_child(void) {
    unsigned long long before = own("mnt");
    check(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)", "unshare");
    check(own("mnt") != before, "a new mount namespace has a new number", "same");
    check(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make every mount private", "mount");
    check(mount("inner", DIRECTORY, "tmpfs", 0, NULL) == 0, "mount inside", "mount");
    int fd = open(DIRECTORY "/file", O_CREAT | O_WRONLY, 0644);
    check(fd >= 0, "a file in the private mount", "open");
    close(fd);
    char text[8192];
    read_file("/proc/self/mountinfo", text, sizeof text);
    check(strstr(text, DIRECTORY) != NULL, "mountinfo shows the mount", "missing");
}

#define IPC_KEY 0x6e730001

static void ipc_child(void) {
    unsigned long long before = own("ipc");
    check(shmget(IPC_KEY, 0, 0) >= 0, "the parent's segment is seen before", "shmget");
    check(unshare(CLONE_NEWIPC) == 0 && own("ipc") != before, "unshare(CLONE_NEWIPC)", "unshare");
    check(FAILS_WITH(shmget(IPC_KEY, 0, 0), ENOENT), "a new IPC namespace has no segments", "no ENOENT");
    check(FAILS_WITH(msgget(IPC_KEY, 0), ENOENT), "nor message queues", "no ENOENT");
    int queue = msgget(IPC_KEY, IPC_CREAT | 0600);
    check(queue >= 0, "a queue made inside", "msgget");
    char text[4096];
    read_file("/proc/sysvipc/shm", text, sizeof text);
    check(strstr(text, "1853030401") == NULL, "/proc/sysvipc/shm lists only its own", "%s", text);
    msgctl(queue, IPC_RMID, NULL);
}

static struct sockaddr_in loop_address(unsigned short port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

static int listener(unsigned short *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loop_address(*port);
    socklen_t length = sizeof address;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(address.sin_port);
    return fd;
}

static unsigned short outer_port;

static void net_child(void) {
    unsigned long long before = own("net");
    check(unshare(CLONE_NEWNET) == 0 && own("net") != before, "unshare(CLONE_NEWNET)", "unshare");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq request = {0};
    strcpy(request.ifr_name, "lo");
    check(ioctl(fd, SIOCGIFFLAGS, &request) == 0 && (request.ifr_flags & IFF_LOOPBACK) &&
              !(request.ifr_flags & IFF_UP),
          "the new loop starts down", "flags %#x", request.ifr_flags);
    struct ifreq other = {0};
    strcpy(other.ifr_name, "eth0");
    check(FAILS_WITH(ioctl(fd, SIOCGIFINDEX, &other), ENODEV), "no card in the new namespace", "no ENODEV");
    int client = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loop_address(outer_port);
    check(FAILS_WITH(connect(client, (struct sockaddr *)&address, sizeof address), ENETUNREACH),
          "connecting over a loop that is down is ENETUNREACH", "no ENETUNREACH");
    close(client);
    request.ifr_flags |= IFF_UP;
    check(ioctl(fd, SIOCSIFFLAGS, &request) == 0, "SIOCSIFFLAGS brings the loop up", "ioctl");
    check(ioctl(fd, SIOCGIFFLAGS, &request) == 0 && (request.ifr_flags & IFF_UP), "the loop is up",
          "flags %#x", request.ifr_flags);
    close(fd);
    unsigned short port = outer_port;
    int server = listener(&port);
    check(server >= 0, "the outer listener's port is free here", "bind");
    client = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(client, (struct sockaddr *)&address, sizeof address) == 0, "connecting to the own listener",
          "connect");
    int accepted = accept(server, NULL, NULL);
    check(accepted >= 0 && write(client, "x", 1) == 1, "it accepts", "accept");
    char byte = 0;
    check(read(accepted, &byte, 1) == 1 && byte == 'x', "and data goes over the new loop", "read");
    close(accepted);
    close(client);
    close(server);
}

static void cgroup_and_time_child(void) {
    unsigned long long cgroup = own("cgroup"), time = own("time");
    check(unshare(CLONE_NEWCGROUP) == 0 && own("cgroup") != cgroup, "unshare(CLONE_NEWCGROUP)", "unshare");
    check(unshare(CLONE_NEWTIME) == 0, "unshare(CLONE_NEWTIME)", "unshare");
    check(own("time") == time && own("time_for_children") != time, "a new time namespace is for children",
          "%llu %llu", own("time"), own("time_for_children"));
    unsigned long long for_children = own("time_for_children");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        _exit(own("time") == for_children ? 0 : 1);
    }
    int status = 0;
    check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child is in it", "status %#x", status);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        printf("SKIPPED: must start as root\n");
        return 0;
    }
    gethostname(outer_host, sizeof outer_host - 1);
    links();
    files_and_setns();
    in_child(uts_child);
    char host[65] = {0};
    gethostname(host, sizeof host - 1);
    check(strcmp(host, outer_host) == 0, "the outer host name is unchanged", "%s", host);
    in_child(clone_child);
    in_child(user_child);
    close(open(SECRET, O_CREAT | O_WRONLY, 0600));
    in_child(unprivileged_child);
    unlink(SECRET);
    gethostname(host, sizeof host - 1);
    check(strcmp(host, outer_host) == 0, "the outer host name is still unchanged", "%s", host);
    mkdir(DIRECTORY, 0755);
    in_child(mount_child);
    struct stat status;
    check(stat(DIRECTORY "/file", &status) == -1 && errno == ENOENT, "the mount stays in its namespace",
          "file seen");
    char text[8192];
    read_file("/proc/self/mountinfo", text, sizeof text);
    check(strstr(text, DIRECTORY) == NULL, "the outer mountinfo lacks it", "shown");
    rmdir(DIRECTORY);
    int segment = shmget(IPC_KEY, 4096, IPC_CREAT | 0600);
    check(segment >= 0, "a segment in the initial IPC namespace", "shmget");
    in_child(ipc_child);
    check(FAILS_WITH(msgget(IPC_KEY, 0), ENOENT), "the child's queue stays in its namespace", "no ENOENT");
    shmctl(segment, IPC_RMID, NULL);
    int outer = listener(&outer_port);
    check(outer >= 0, "a listener in the initial network namespace", "bind");
    in_child(net_child);
    struct pollfd waiting = {.fd = outer, .events = POLLIN};
    check(poll(&waiting, 1, 0) == 0, "the outer listener got no connection", "polled");
    close(outer);
    in_child(cgroup_and_time_child);
    printf("%d checks failed\n", failures);
    return failures;
}
