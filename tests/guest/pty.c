/* Checks pseudo-terminals: openpty and posix_openpt with lock and unlock,
 * the slave's name, node and devpts (mounted again too), canonical and
 * raw reads, echo, output processing, VMIN/VTIME, FIONREAD, window sizes,
 * poll, packet mode, full buffers, output flow control (Ctrl-S, Ctrl-Q,
 * IXANY, tcflow), chmod and chown of the slave's node, SIGHUP when the
 * session leader exits, and with forkpty: the controlling terminal, Ctrl-C
 * as SIGINT, SIGWINCH, SIGTTIN for a background job, and hangups both ways
 * (SIGHUP when the master closes, EIO at the master once the slave
 * closed).
 * Run with no argument: one line per check, then "<n> checks failed",
 * exit status the count. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#define DEVPTS_SUPER_MAGIC 0x1cd1
/* How long an event that must come may take on a loaded machine. */
#define PATIENCE_MS 20000

/* Waits for `events` on `fd`; the events that came (0: none in time). */
static int wait_for(int fd, short events, int timeout_ms) {
    struct pollfd entry = {fd, events, 0};
    int count = poll(&entry, 1, timeout_ms);
    return count == 1 ? entry.revents : 0;
}

/* Reads from `fd` into `buffer` until it holds `expected` or time runs out;
 * returns what it read (NUL-terminated). */
static size_t read_until(int fd, char *buffer, size_t size, const char *expected) {
    size_t length = 0;
    buffer[0] = 0;
    while (length + 1 < size && !strstr(buffer, expected)) {
        if (!(wait_for(fd, POLLIN, PATIENCE_MS) & (POLLIN | POLLHUP))) {
            break;
        }
        ssize_t got = read(fd, buffer + length, size - 1 - length);
        if (got <= 0) {
            break;
        }
        length += (size_t)got;
        buffer[length] = 0;
    }
    return length;
}

/* Reads from `fd` until a whole line starting with `prefix` came (or time
 * ran out); returns that line, or what came. */
static const char *read_line(int fd, char *buffer, size_t size, const char *prefix) {
    size_t length = 0;
    buffer[0] = 0;
    for (;;) {
        const char *line = strstr(buffer, prefix);
        if (line && strchr(line, '\n')) {
            return line;
        }
        if (length + 1 >= size || !(wait_for(fd, POLLIN, PATIENCE_MS) & (POLLIN | POLLHUP))) {
            return buffer;
        }
        ssize_t got = read(fd, buffer + length, size - 1 - length);
        if (got <= 0) {
            return buffer;
        }
        length += (size_t)got;
        buffer[length] = 0;
    }
}

static void check_names_and_nodes(void) {
    int master, slave;
    char name[64];
    check(openpty(&master, &slave, name, NULL, NULL) == 0, "openpty", "openpty failed");
    check(strncmp(name, "/dev/pts/", 9) == 0, "slave-name", "name %s", name);
    const char *from_ptsname = ptsname(master);
    check(from_ptsname && strcmp(from_ptsname, name) == 0, "ptsname", "ptsname says %s",
          from_ptsname ? from_ptsname : "nothing");
    const char *from_ttyname = ttyname(slave);
    check(from_ttyname && strcmp(from_ttyname, name) == 0, "ttyname", "ttyname says %s",
          from_ttyname ? from_ttyname : "nothing");
    check(isatty(master) && isatty(slave), "isatty", "master %d slave %d", isatty(master), isatty(slave));
    unsigned number = 99999;
    check(ioctl(master, TIOCGPTN, &number) == 0 && (int)number == atoi(name + 9), "TIOCGPTN", "number %u",
          number);
    struct stat node, open;
    check(stat(name, &node) == 0 && fstat(slave, &open) == 0, "stat-slave", "stat failed");
    check(S_ISCHR(node.st_mode) && major(node.st_rdev) == 136 && minor(node.st_rdev) == number,
          "slave-device", "mode %o device %u:%u", node.st_mode, major(node.st_rdev), minor(node.st_rdev));
    /* Owner read and write; the group may write (mode 0620) or not (a
     * devpts mounted with mode=600); nobody else. */
    check((node.st_mode & 0606) == 0600 && (node.st_mode & 0050) == 0 && node.st_uid == geteuid(),
          "slave-owner", "mode %o uid %u", node.st_mode & 07777, node.st_uid);
    check(node.st_ino == open.st_ino && node.st_dev == open.st_dev && node.st_rdev == open.st_rdev,
          "slave-fstat-is-stat", "node %lu/%lu open %lu/%lu", (unsigned long)node.st_ino,
          (unsigned long)node.st_dev, (unsigned long)open.st_ino, (unsigned long)open.st_dev);
    char link[64] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", slave);
    check(readlink(path, link, sizeof link - 1) > 0 && strcmp(link, name) == 0, "proc-fd-link", "link %s",
          link);
    struct stat multiplexer;
    check(stat("/dev/ptmx", &multiplexer) == 0 && S_ISCHR(multiplexer.st_mode) &&
              multiplexer.st_rdev == makedev(5, 2),
          "ptmx-node", "ptmx %o", multiplexer.st_mode);
    check(stat("/dev/pts/ptmx", &multiplexer) == 0 && multiplexer.st_rdev == makedev(5, 2), "pts-ptmx-node",
          "no /dev/pts/ptmx");
    struct statfs filesystem;
    check(statfs("/dev/pts", &filesystem) == 0 && filesystem.f_type == DEVPTS_SUPER_MAGIC, "devpts-statfs",
          "type %lx", (unsigned long)filesystem.f_type);
    int is_listed = 0;
    DIR *directory = opendir("/dev/pts");
    for (struct dirent *entry; directory && (entry = readdir(directory));) {
        is_listed |= strcmp(entry->d_name, name + 9) == 0;
    }
    if (directory) {
        closedir(directory);
    }
    check(is_listed, "devpts-lists-slave", "%s not in /dev/pts", name + 9);
    FILE *mounts = fopen("/proc/mounts", "r");
    char line[256];
    int is_mounted = 0;
    while (mounts && fgets(line, sizeof line, mounts)) {
        is_mounted |= strncmp(line, "devpts /dev/pts devpts ", 23) == 0;
    }
    if (mounts) {
        fclose(mounts);
    }
    check(is_mounted, "devpts-mounted", "no devpts line in /proc/mounts");
    close(slave);
    close(master);
    /* The node goes with the master. */
    check(access(name, F_OK) == -1, "node-goes-with-master", "%s still there", name);
}

/* `mount -t devpts` elsewhere shows a devpts with its ptmx. */
static void check_mount(void) {
    const char *directory = "/tmp/pty-check-mount";
    mkdir(directory, 0755);
    if (mount("devpts", directory, "devpts", 0, NULL) != 0 && errno == EPERM) {
        skip("mount-devpts", "mounting is not permitted here");
        return;
    }
    struct statfs filesystem;
    struct stat multiplexer;
    check(statfs(directory, &filesystem) == 0 && filesystem.f_type == DEVPTS_SUPER_MAGIC, "mount-devpts",
          "type %lx", (unsigned long)filesystem.f_type);
    check(stat("/tmp/pty-check-mount/ptmx", &multiplexer) == 0 && multiplexer.st_rdev == makedev(5, 2),
          "mounted-ptmx", "no ptmx");
    check(umount(directory) == 0, "umount-devpts", "failed");
    rmdir(directory);
}

static void check_lock(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    check(master >= 0, "posix_openpt", "failed");
    int locked = -1;
    check(ioctl(master, TIOCGPTLCK, &locked) == 0 && locked == 1, "starts-locked", "lock %d", locked);
    char name[64];
    snprintf(name, sizeof name, "%s", ptsname(master));
    int slave = open(name, O_RDWR | O_NOCTTY);
    check(slave == -1 && errno == EIO, "locked-open-is-EIO", "open gave %d", slave);
    check(grantpt(master) == 0 && unlockpt(master) == 0, "unlockpt", "failed");
    check(ioctl(master, TIOCGPTLCK, &locked) == 0 && locked == 0, "unlocked", "lock %d", locked);
    slave = open(name, O_RDWR | O_NOCTTY);
    check(slave >= 0, "unlocked-open", "open failed");
    int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    struct stat by_name, by_peer;
    check(peer >= 0 && fstat(peer, &by_peer) == 0 && fstat(slave, &by_name) == 0 &&
              by_peer.st_rdev == by_name.st_rdev,
          "TIOCGPTPEER", "peer %d", peer);
    close(peer);
    close(slave);
    close(master);
}

static void check_data(void) {
    int master, slave;
    char buffer[512];
    openpty(&master, &slave, NULL, NULL, NULL);
    check(write(master, "abc", 3) == 3, "write-master", "write failed");
    check(wait_for(slave, POLLIN, 200) == 0, "partial-line-unreadable", "slave readable early");
    int available = -1;
    check(ioctl(slave, FIONREAD, &available) == 0 && available == 0, "FIONREAD-partial", "%d", available);
    write(master, "\x7f" "d\n", 3);
    check(wait_for(slave, POLLIN, PATIENCE_MS) & POLLIN, "line-readable", "no line");
    check(ioctl(slave, FIONREAD, &available) == 0 && available == 4, "FIONREAD-line", "%d", available);
    ssize_t length = read(slave, buffer, sizeof buffer);
    check(length == 4 && memcmp(buffer, "abd\n", 4) == 0, "canonical-read", "read %zd", length);
    length = read_until(master, buffer, sizeof buffer, "\r\n");
    check(strcmp(buffer, "abc\b \bd\r\n") == 0, "echo", "echo %zd bytes: %.*s", length, (int)length, buffer);
    /* Output processing: ONLCR by default, nothing without OPOST. */
    write(slave, "x\ny", 3);
    length = read_until(master, buffer, sizeof buffer, "y");
    check(strcmp(buffer, "x\r\ny") == 0, "onlcr", "read %s", buffer);
    check(ioctl(master, FIONREAD, &available) == 0 && available == 0, "FIONREAD-master", "%d", available);
    struct termios settings;
    tcgetattr(slave, &settings);
    cfmakeraw(&settings);
    tcsetattr(slave, TCSANOW, &settings);
    write(slave, "x\ny", 3);
    length = read_until(master, buffer, sizeof buffer, "y");
    check(strcmp(buffer, "x\ny") == 0, "raw-output", "read %s", buffer);
    write(master, "q\r", 2);
    check(wait_for(slave, POLLIN, PATIENCE_MS) & POLLIN, "raw-readable", "nothing");
    length = read(slave, buffer, sizeof buffer);
    check(length == 2 && memcmp(buffer, "q\r", 2) == 0, "raw-read", "read %zd", length);
    check(wait_for(master, POLLIN, 100) == 0, "raw-no-echo", "master readable");
    /* VMIN 0, VTIME 2: a read with nothing to read returns 0 after a while. */
    settings.c_cc[VMIN] = 0;
    settings.c_cc[VTIME] = 2;
    tcsetattr(slave, TCSANOW, &settings);
    struct timespec before, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    length = read(slave, buffer, sizeof buffer);
    clock_gettime(CLOCK_MONOTONIC, &after);
    long elapsed_ms = (after.tv_sec - before.tv_sec) * 1000 + (after.tv_nsec - before.tv_nsec) / 1000000;
    check(length == 0 && elapsed_ms >= 150, "vtime", "read %zd after %ld ms", length, elapsed_ms);
    /* Window size set on the master reads back on the slave. */
    struct winsize size = {.ws_row = 33, .ws_col = 101};
    struct winsize read_back = {0};
    check(ioctl(master, TIOCSWINSZ, &size) == 0 && ioctl(slave, TIOCGWINSZ, &read_back) == 0 &&
              read_back.ws_row == 33 && read_back.ws_col == 101,
          "window-size", "%d x %d", read_back.ws_row, read_back.ws_col);
    /* poll, select and epoll see the slave's output on the master. */
    int epoll = epoll_create1(0);
    struct epoll_event interest = {.events = EPOLLIN, .data.fd = master};
    epoll_ctl(epoll, EPOLL_CTL_ADD, master, &interest);
    struct epoll_event ready;
    check(epoll_wait(epoll, &ready, 1, 0) == 0, "epoll-quiet", "ready early");
    write(slave, "!", 1);
    check(epoll_wait(epoll, &ready, 1, PATIENCE_MS) == 1, "epoll", "not ready");
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(master, &readable);
    struct timeval no_time = {0, 0};
    check(select(master + 1, &readable, NULL, NULL, &no_time) == 1, "select", "not ready");
    read(master, buffer, sizeof buffer);
    close(epoll);
    close(slave);
    close(master);
}

static void check_full_buffers(void) {
    int master, slave;
    char block[1024];
    memset(block, 'z', sizeof block);
    openpty(&master, &slave, NULL, NULL, NULL);
    struct termios settings;
    tcgetattr(slave, &settings);
    cfmakeraw(&settings);
    tcsetattr(slave, TCSANOW, &settings);
    fcntl(slave, F_SETFL, O_NONBLOCK);
    long written = 0;
    ssize_t length;
    while ((length = write(slave, block, sizeof block)) > 0 && written < 16 * 1024 * 1024) {
        written += length;
    }
    check(length == -1 && errno == EAGAIN && written >= 1024, "slave-write-fills", "wrote %ld, then errno %d",
          written, errno);
    /* The master drains it all; then the slave takes writes again. */
    char buffer[4096];
    long drained = 0;
    while (drained < written && (length = read(master, buffer, sizeof buffer)) > 0) {
        drained += length;
    }
    check(drained == written, "master-drains", "drained %ld of %ld", drained, written);
    check(write(slave, "ok", 2) == 2, "slave-writes-again", "errno %d", errno);
    read(master, buffer, sizeof buffer);
    fcntl(master, F_SETFL, O_NONBLOCK);
    written = 0;
    while ((length = write(master, block, sizeof block)) > 0 && written < 16 * 1024 * 1024) {
        written += length;
    }
    check(length == -1 && errno == EAGAIN && written >= 1024, "master-write-fills", "wrote %ld, then errno %d",
          written, errno);
    close(slave);
    close(master);
}

static void check_packet_mode(void) {
    int master, slave;
    unsigned char buffer[64];
    openpty(&master, &slave, NULL, NULL, NULL);
    int on = 1;
    check(ioctl(master, TIOCPKT, &on) == 0, "TIOCPKT", "failed");
    write(slave, "d", 1);
    wait_for(master, POLLIN, PATIENCE_MS);
    ssize_t length = read(master, buffer, sizeof buffer);
    check(length == 2 && buffer[0] == TIOCPKT_DATA && buffer[1] == 'd', "packet-data", "read %zd: %d", length,
          buffer[0]);
    struct {
        int action;
        int is_flow;
        unsigned char status;
        const char *name;
    } cases[] = {
        {TCIFLUSH, 0, TIOCPKT_FLUSHREAD, "packet-flushread"},
        {TCOFLUSH, 0, TIOCPKT_FLUSHWRITE, "packet-flushwrite"},
        {TCOOFF, 1, TIOCPKT_STOP, "packet-stop"},
        {TCOON, 1, TIOCPKT_START, "packet-start"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        int result = cases[index].is_flow ? tcflow(slave, cases[index].action)
                                          : tcflush(slave, cases[index].action);
        int events = wait_for(master, POLLPRI, PATIENCE_MS);
        length = read(master, buffer, sizeof buffer);
        check(result == 0 && (events & POLLPRI) && length == 1 && (buffer[0] & cases[index].status),
              cases[index].name, "events %x read %zd: %x", events, length, buffer[0]);
    }
    close(slave);
    close(master);
}

/* Waits until `fd` is writable (`is_writable`) or not; whether it came. */
static int await_writable(int fd, int is_writable) {
    for (int waited_ms = 0; waited_ms < PATIENCE_MS; waited_ms += 10) {
        if (((wait_for(fd, POLLOUT, 0) & POLLOUT) != 0) == is_writable) {
            return 1;
        }
        usleep(10000);
    }
    return 0;
}

/* Output flow control: Ctrl-S typed on the master stops the slave's output
 * (writes wait, echo is held) until Ctrl-Q or, with IXANY, any character;
 * tcflow stops output until TCOON and sends STOP and START; packet mode
 * reports typed stops and starts. */
static void check_flow_control(void) {
    int master, slave;
    char buffer[64];
    openpty(&master, &slave, NULL, NULL, NULL);
    struct termios settings;
    tcgetattr(slave, &settings);
    settings.c_lflag &= ~(ICANON | ECHO);
    settings.c_oflag &= ~OPOST;
    settings.c_iflag |= IXON;
    settings.c_iflag &= ~IXANY;
    tcsetattr(slave, TCSANOW, &settings);
    fcntl(slave, F_SETFL, O_NONBLOCK);
    fcntl(master, F_SETFL, O_NONBLOCK);

    write(master, "\x13", 1);
    check(await_writable(slave, 0), "flow-stop-no-pollout", "the slave stayed writable");
    ssize_t length = write(slave, "x", 1);
    check(length == -1 && errno == EAGAIN, "flow-stop-eagain", "write %zd errno %d", length, errno);
    length = read(master, buffer, sizeof buffer);
    check(length == -1 && errno == EAGAIN, "flow-stop-nothing-shown", "read %zd", length);
    write(master, "\x11", 1);
    check(await_writable(slave, 1), "flow-start-pollout", "the slave stayed stopped");
    length = write(slave, "x", 1);
    size_t shown = read_until(master, buffer, sizeof buffer, "x");
    check(length == 1 && shown == 1 && buffer[0] == 'x', "flow-start-writes", "wrote %zd, read %zu", length,
          shown);
    length = read(slave, buffer, sizeof buffer);
    check(length == -1 && errno == EAGAIN, "flow-characters-not-input", "read %zd", length);

    /* A blocking writer waits until output starts. */
    fcntl(slave, F_SETFL, 0);
    write(master, "\x13", 1);
    await_writable(slave, 0);
    pid_t child = fork();
    if (child == 0) {
        _exit(write(slave, "late", 4) == 4 ? 0 : 1);
    }
    usleep(200000);
    length = read(master, buffer, sizeof buffer);
    check(length == -1 && errno == EAGAIN, "flow-writer-waits", "read %zd", length);
    write(master, "\x11", 1);
    shown = read_until(master, buffer, sizeof buffer, "late");
    int status = -1;
    waitpid(child, &status, 0);
    check(strcmp(buffer, "late") == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "flow-writer-resumes", "read \"%s\", status %x", buffer, status);
    fcntl(slave, F_SETFL, O_NONBLOCK);

    /* Echo typed while stopped shows once output starts. */
    settings.c_lflag |= ECHO;
    tcsetattr(slave, TCSANOW, &settings);
    write(master, "\x13", 1);
    await_writable(slave, 0);
    write(master, "e", 1);
    wait_for(slave, POLLIN, PATIENCE_MS);
    length = read(master, buffer, sizeof buffer);
    check(length == -1 && errno == EAGAIN, "flow-echo-held", "read %zd", length);
    write(master, "\x11", 1);
    shown = read_until(master, buffer, sizeof buffer, "e");
    check(strcmp(buffer, "e") == 0, "flow-echo-shown", "read \"%s\"", buffer);
    read(slave, buffer, sizeof buffer);
    settings.c_lflag &= ~ECHO;

    /* With IXANY any character starts output, and is input too. */
    settings.c_iflag |= IXANY;
    tcsetattr(slave, TCSANOW, &settings);
    write(master, "\x13", 1);
    await_writable(slave, 0);
    write(master, "a", 1);
    check(await_writable(slave, 1), "flow-ixany-starts", "the slave stayed stopped");
    wait_for(slave, POLLIN, PATIENCE_MS);
    length = read(slave, buffer, sizeof buffer);
    check(length == 1 && buffer[0] == 'a', "flow-ixany-input", "read %zd", length);

    /* TCOOFF holds until TCOON, whatever is typed. */
    check(tcflow(slave, TCOOFF) == 0 && !(wait_for(slave, POLLOUT, 0) & POLLOUT), "flow-tcooff",
          "the slave stayed writable");
    write(master, "\x11z", 2);
    wait_for(slave, POLLIN, PATIENCE_MS);
    read(slave, buffer, sizeof buffer);
    check(!(wait_for(slave, POLLOUT, 0) & POLLOUT), "flow-tcooff-holds", "typing started output");
    check(tcflow(slave, TCOON) == 0 && (wait_for(slave, POLLOUT, 0) & POLLOUT), "flow-tcoon",
          "the slave stayed stopped");
    check(tcflow(slave, TCIOFF) == 0 && tcflow(slave, TCION) == 0, "flow-tcioff-tcion", "errno %d", errno);
    shown = read_until(master, buffer, sizeof buffer, "\x11");
    check(strcmp(buffer, "\x13\x11") == 0, "flow-sends-stop-start", "read %zu bytes", shown);

    /* Packet mode reports what was typed. */
    int on = 1;
    ioctl(master, TIOCPKT, &on);
    const char *typed[] = {"\x13", "\x11"};
    const int statuses[] = {TIOCPKT_STOP, TIOCPKT_START};
    const char *names[] = {"packet-typed-stop", "packet-typed-start"};
    for (int index = 0; index < 2; index++) {
        write(master, typed[index], 1);
        int events = wait_for(master, POLLPRI, PATIENCE_MS);
        length = read(master, buffer, sizeof buffer);
        check((events & POLLPRI) && length == 1 && (buffer[0] & statuses[index]), names[index],
              "events %x read %zd: %x", events, length, buffer[0]);
    }
    close(slave);
    close(master);
}

/* chmod and chown of /dev/pts/N, by path and by descriptor, show in stat of
 * the node and of the open slave. */
static void check_owner_and_mode(void) {
    int master, slave;
    char name[64];
    struct stat node, open_slave;
    openpty(&master, &slave, name, NULL, NULL);
    stat(name, &node);
    /* The mode of a new node is devpts's mode= option: 0620 or 0600. */
    check(node.st_uid == getuid() && (node.st_mode & 07757) == 0600, "pts-new-owner", "mode %o uid %d",
          node.st_mode & 07777, (int)node.st_uid);
    check(chmod(name, 0600) == 0 && stat(name, &node) == 0 && (node.st_mode & 07777) == 0600 &&
              S_ISCHR(node.st_mode),
          "pts-chmod", "mode %o errno %d", node.st_mode, errno);
    check(fchmod(slave, 0622) == 0 && fstat(slave, &open_slave) == 0 && (open_slave.st_mode & 07777) == 0622,
          "pts-fchmod", "mode %o errno %d", open_slave.st_mode, errno);
    check(chown(name, 1234, 5678) == 0 && stat(name, &node) == 0 && node.st_uid == 1234 && node.st_gid == 5678,
          "pts-chown", "owner %d:%d errno %d", (int)node.st_uid, (int)node.st_gid, errno);
    check(fchown(slave, -1, 4321) == 0 && fstat(slave, &open_slave) == 0 && open_slave.st_uid == 1234 &&
              open_slave.st_gid == 4321,
          "pts-fchown", "owner %d:%d errno %d", (int)open_slave.st_uid, (int)open_slave.st_gid, errno);
    close(slave);
    close(master);
}

static volatile sig_atomic_t leader_hangups;

static void count_leader_hangup(int signal) {
    (void)signal;
    leader_hangups++;
}

/* A session leader's exit sends SIGHUP to its terminal's foreground group,
 * whose members then have no controlling terminal. */
static void check_leader_exit(void) {
    int master, slave, to_parent[2], to_leader[2];
    char report[2] = {0, 0};
    openpty(&master, &slave, NULL, NULL, NULL);
    pipe(to_parent);
    pipe(to_leader);
    pid_t leader = fork();
    if (leader == 0) {
        setsid();
        ioctl(slave, TIOCSCTTY, 0);
        if (fork() == 0) {
            signal(SIGHUP, count_leader_hangup);
            write(to_leader[1], "r", 1);
            for (int waited = 0; waited < PATIENCE_MS / 10 && !leader_hangups; waited++) {
                usleep(10000);
            }
            pid_t session;
            report[0] = leader_hangups ? 'h' : 'n';
            report[1] = ioctl(slave, TIOCGSID, &session) == -1 ? 'l' : 'k';
            write(to_parent[1], report, 2);
            _exit(0);
        }
        char ready;
        read(to_leader[0], &ready, 1);
        _exit(0);
    }
    close(to_parent[1]);
    waitpid(leader, NULL, 0);
    wait_for(to_parent[0], POLLIN, PATIENCE_MS);
    read(to_parent[0], report, 2);
    check(report[0] == 'h', "leader-exit-sighup", "got %c", report[0]);
    check(report[1] == 'l', "leader-exit-detaches", "got %c", report[1]);
    close(to_parent[0]);
    close(to_leader[0]);
    close(to_leader[1]);
    close(slave);
    close(master);
}

/* The master reads what the slave wrote, then EIO once the slave closed. */
static void check_slave_close(void) {
    int master, slave;
    char buffer[64];
    openpty(&master, &slave, NULL, NULL, NULL);
    write(slave, "bye\n", 4);
    close(slave);
    check(wait_for(master, POLLIN, PATIENCE_MS) & POLLHUP, "master-pollhup", "no POLLHUP");
    ssize_t length = read(master, buffer, sizeof buffer);
    check(length == 5 && memcmp(buffer, "bye\r\n", 5) == 0, "master-reads-rest", "read %zd", length);
    length = read(master, buffer, sizeof buffer);
    check(length == -1 && errno == EIO, "master-eio", "read %zd", length);
    close(master);
}

static volatile sig_atomic_t interrupts, resizes, hangups;

static void count_signal(int signal) {
    if (signal == SIGINT) {
        interrupts++;
    } else if (signal == SIGWINCH) {
        resizes++;
    } else if (signal == SIGHUP) {
        hangups++;
    }
}

/* The child of forkpty: reports on its terminal, then answers the parent's
 * lines: "signals" (what it got), "job" (a background reader stops), and
 * exits at the end of its input. */
static int run_child(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = count_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGWINCH, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    const char *name = ttyname(0);
    int tty = open("/dev/tty", O_RDWR);
    char stat_text[512] = {0};
    int stat_file = open("/proc/self/stat", O_RDONLY);
    read(stat_file, stat_text, sizeof stat_text - 1);
    close(stat_file);
    /* Field 7 is tty_nr, after the name in parentheses. */
    int tty_number = -1;
    char *fields = strrchr(stat_text, ')');
    if (fields) {
        sscanf(fields + 2, "%*c %*d %*d %*d %d", &tty_number);
    }
    struct stat own;
    fstat(0, &own);
    printf("child tty=%s leader=%d foreground=%d devtty=%d ttynr=%d\n", name ? name : "none",
           getsid(0) == getpid(), tcgetpgrp(0) == getpgrp(), tty >= 0, tty_number == (int)own.st_rdev);
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof line, stdin) || errno == EINTR) {
        if (strncmp(line, "signals", 7) == 0) {
            printf("got interrupts=%d resizes=%d\n", interrupts, resizes);
        } else if (strncmp(line, "job", 3) == 0) {
            pid_t reader = fork();
            if (reader == 0) {
                setpgid(0, 0);
                char byte;
                read(0, &byte, 1);
                _exit(0);
            }
            int status = 0;
            waitpid(reader, &status, WUNTRACED);
            printf("job stopped=%d by=%d\n", WIFSTOPPED(status), WIFSTOPPED(status) ? WSTOPSIG(status) : 0);
            kill(reader, SIGKILL);
            waitpid(reader, &status, 0);
        }
        fflush(stdout);
        line[0] = 0;
        clearerr(stdin);
        errno = 0;
    }
    return 0;
}

static void check_forkpty(void) {
    int master;
    char name[64];
    struct winsize size = {.ws_row = 24, .ws_col = 80};
    pid_t child = forkpty(&master, name, NULL, &size);
    if (child == 0) {
        _exit(run_child());
    }
    check(child > 0, "forkpty", "failed");
    char buffer[1024];
    char expected[128];
    snprintf(expected, sizeof expected, "child tty=%s leader=1 foreground=1 devtty=1 ttynr=1\r\n",
             name);
    read_until(master, buffer, sizeof buffer, "\n");
    check(strcmp(buffer, expected) == 0, "child-terminal", "child said: %s", buffer);
    /* Ctrl-C interrupts the child; a new size sends SIGWINCH. */
    write(master, "\x03", 1);
    read_until(master, buffer, sizeof buffer, "^C");
    check(strstr(buffer, "^C") != NULL, "ctrl-c-echo", "echo %s", buffer);
    size.ws_col = 132;
    ioctl(master, TIOCSWINSZ, &size);
    /* The signals may take a moment: ask until both arrived. */
    int is_signalled = 0;
    for (int tries = 0; tries < 100 && !is_signalled; tries++) {
        write(master, "signals\n", 8);
        const char *line = read_line(master, buffer, sizeof buffer, "got ");
        is_signalled = strncmp(line, "got interrupts=1 resizes=1\r\n", 28) == 0;
        if (!is_signalled) {
            usleep(100000);
        }
    }
    check(is_signalled, "sigint-and-sigwinch", "child said: %s", buffer);
    write(master, "job\n", 4);
    const char *line = read_line(master, buffer, sizeof buffer, "job stopped");
    check(strncmp(line, "job stopped=1 by=21\r\n", 21) == 0, "background-read-sigttin", "child said: %s", line);
    /* End of input: Ctrl-D at the start of a line. */
    write(master, "\x04", 1);
    int status = -1;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child-exit", "status %x", status);
    close(master);
}

/* Closing the master hangs up the slave: the session leader gets SIGHUP,
 * reads find the end, writes fail with EIO. */
static void check_hangup(void) {
    int report[2];
    pipe(report);
    int master;
    pid_t child = forkpty(&master, NULL, NULL, NULL);
    if (child == 0) {
        close(report[0]);
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = count_signal;
        sigaction(SIGHUP, &action, NULL);
        write(1, "ready\n", 6);
        char buffer[16];
        ssize_t length;
        do {
            length = read(0, buffer, sizeof buffer);
        } while (length == -1 && errno == EINTR);
        /* A read the hangup ended fails with EIO; one that began after it
         * finds the end of the file. */
        int is_first_read_ended = length == 0 || (length == -1 && errno == EIO);
        ssize_t again = read(0, buffer, sizeof buffer);
        for (int tries = 0; tries < 200 && !hangups; tries++) {
            usleep(50000);
        }
        ssize_t written = write(1, "x", 1);
        char line[96];
        int size = snprintf(line, sizeof line, "hangups=%d ended=%d again=%zd write=%zd errno=%d\n", hangups,
                            is_first_read_ended, again, written, errno);
        write(report[1], line, size);
        _exit(0);
    }
    close(report[1]);
    char buffer[128];
    read_until(master, buffer, sizeof buffer, "ready");
    close(master);
    ssize_t length = read_until(report[0], buffer, sizeof buffer, "\n");
    check(strcmp(buffer, "hangups=1 ended=1 again=0 write=-1 errno=5\n") == 0, "hangup", "child said %zd: %s", length,
          buffer);
    int status;
    waitpid(child, &status, 0);
    close(report[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_names_and_nodes();
    check_mount();
    check_lock();
    check_data();
    check_full_buffers();
    check_packet_mode();
    check_flow_control();
    check_owner_and_mode();
    check_leader_exit();
    check_slave_close();
    check_forkpty();
    check_hangup();
    printf("%d checks failed\n", failures);
    return failures;
}
