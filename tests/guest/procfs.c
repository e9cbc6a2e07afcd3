/* Checks the files of /proc and /sys that programs and runtimes read: the
 * process's status, limits, mounts, maps, command line, environment,
 * auxiliary vector, cgroup, oom_score_adj, fdinfo (with the lines of
 * eventfds, timerfds, signalfds, inotify and epoll) and mem; the kernel's settings under
 * /proc/sys; the machine's memory, processors, version and configuration;
 * the processor lists of /sys and the cgroup (v2) limits. Prints one line
 * per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static char text[1 << 16];

/* Reads `path` whole into `text`; returns its length, or -1. */
static long slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long length = 0;
    ssize_t got;
    while (length < (long)sizeof text - 1 && (got = read(fd, text + length, sizeof text - 1 - length)) > 0)
        length += got;
    close(fd);
    text[length] = 0;
    return length;
}

static int has(const char *path, const char *needle) {
    return slurp(path) >= 0 && strstr(text, needle) != NULL;
}

static long number_in(const char *path) {
    if (slurp(path) < 0)
        return -1;
    return strtol(text, NULL, 10);
}

/* The number of processors a list such as "0-3,5" names. */
static int count_list(const char *list) {
    int count = 0;
    while (*list && *list != '\n') {
        char *end;
        long first = strtol(list, &end, 10), last = first;
        if (*end == '-')
            last = strtol(end + 1, &end, 10);
        count += (int)(last - first + 1);
        list = *end == ',' ? end + 1 : end;
    }
    return count;
}

static void check_process(int argc, char **argv, char **envp) {
    check(has("/proc/self/status", "\nUid:\t") && strstr(text, "\nCapEff:\t") && strstr(text, "\nThreads:\t1\n") &&
              strstr(text, "\nVmRSS:\t"),
          "status has the ids, capabilities, threads and memory", "%s", text);
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    char expected[128];
    snprintf(expected, sizeof expected, "Max open files            %-20lu %-20lu files", (unsigned long)files.rlim_cur,
             (unsigned long)files.rlim_max);
    check(has("/proc/self/limits", expected), "limits shows RLIMIT_NOFILE", "no '%s' in %s", expected, text);
    check(has("/proc/self/mountinfo", " / / ") && strstr(text, " /proc ") && strstr(text, " - proc "),
          "mountinfo shows the root and /proc", "%s", text);
    check(has("/proc/mounts", " /proc proc "), "/proc/mounts shows /proc", "%s", text);
    check(has("/proc/self/smaps", "\nRss:") && strstr(text, "\nKernelPageSize:"), "smaps has the sizes", "%s",
          text);

    char joined[4096];
    long length = 0;
    for (int index = 0; index < argc; index++) {
        size_t size = strlen(argv[index]) + 1;
        memcpy(joined + length, argv[index], size);
        length += (long)size;
    }
    check(slurp("/proc/self/cmdline") == length && memcmp(text, joined, (size_t)length) == 0,
          "cmdline is argv, each ending in a zero byte", "%ld bytes", length);
    length = 0;
    for (char **variable = envp; *variable && length < 3000; variable++) {
        size_t size = strlen(*variable) + 1;
        memcpy(joined + length, *variable, size);
        length += (long)size;
    }
    check(slurp("/proc/self/environ") == length && memcmp(text, joined, (size_t)length) == 0,
          "environ is the initial environment", "%ld bytes expected", length);

    long auxv_length = slurp("/proc/self/auxv");
    unsigned long page_size = 0, entry = 0;
    for (long at = 0; at + 16 <= auxv_length; at += 16) {
        unsigned long key, value;
        memcpy(&key, text + at, 8);
        memcpy(&value, text + at + 8, 8);
        if (key == AT_PAGESZ)
            page_size = value;
        if (key == AT_ENTRY)
            entry = value;
    }
    check(page_size == 4096 && entry == getauxval(AT_ENTRY), "auxv holds the auxiliary vector", "page size %lu",
          page_size);
    check(has("/proc/self/cgroup", "0::/"), "cgroup names the unified hierarchy", "%s", text);

    check(number_in("/proc/self/oom_score_adj") == 0, "oom_score_adj starts at 0", "%s", text);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    check(fd >= 0 && write(fd, "100", 3) == 3, "oom_score_adj takes a value", "write failed");
    check(fd >= 0 && write(fd, "2000", 4) == -1 && errno == EINVAL, "oom_score_adj refuses values past 1000",
          "no EINVAL");
    if (fd >= 0)
        close(fd);
    check(number_in("/proc/self/oom_score_adj") == 100, "and keeps it", "%s", text);
    /* fopen's "w" truncates: the file takes that too (LTP's library does
     * this to protect its processes). */
    FILE *stream = fopen("/proc/self/oom_score_adj", "w");
    check(stream != NULL && fprintf(stream, "%d", 200) > 0 && fclose(stream) == 0,
          "oom_score_adj opened with O_TRUNC takes a value", "fopen or fclose failed");
    check(number_in("/proc/self/oom_score_adj") == 200, "and keeps it too", "%s", text);
    check(has("/proc/self/comm", "procfs"), "comm names the program", "%s", text);
    long size = 0, resident = 0, shared = 0, program = 0, library = 0, data = 0;
    check(slurp("/proc/self/statm") > 0 &&
              sscanf(text, "%ld %ld %ld %ld %ld %ld", &size, &resident, &shared, &program, &library, &data) == 6 &&
              resident > 0 && resident <= size && shared <= resident && data > 0 && data <= size,
          "statm counts resident and data pages", "%s", text);
    check(has("/proc/self/stat", "1") && strchr(text, ')') && strstr(strchr(text, ')'), ") R "),
          "stat has the state after the name", "%s", text);
    /* After the name: 50 fields (52 in all), exit_signal (SIGCHLD) the
     * 38th; procps reads them by position. */
    int fields = 0;
    char *after = strchr(text, ')');
    int exit_signal = 0;
    for (char *word = after ? strtok(after + 1, " \n") : NULL; word; word = strtok(NULL, " \n")) {
        fields++;
        if (fields == 36)
            exit_signal = atoi(word);
    }
    check(fields == 50 && exit_signal == SIGCHLD, "stat has Linux's 52 fields, exit_signal the 38th",
          "%d fields after the name, the 38th field %d", fields, exit_signal);
}

/* fdinfo: a descriptor's position, flags (with O_CLOEXEC), mount and
 * inode, as lsof reads them; the session files; smaps_rollup. */
static void check_descriptor_info(void) {
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    char buffer[64];
    check(fd >= 0 && read(fd, buffer, sizeof buffer) == (ssize_t)sizeof buffer, "status opens and reads", "%s",
          strerror(errno));
    struct stat status;
    fstat(fd, &status);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    long position = -1, mount = -1;
    unsigned long open_flags = 0, inode = 0;
    check(slurp(path) > 0 &&
              sscanf(text, "pos:\t%ld\nflags:\t%lo\nmnt_id:\t%ld\nino:\t%lu", &position, &open_flags, &mount,
                     &inode) == 4,
          "fdinfo has pos, flags, mnt_id and ino", "%s", text);
    check(position == 64 && (open_flags & O_ACCMODE) == O_RDONLY && (open_flags & O_CLOEXEC) &&
              inode == (unsigned long)status.st_ino && mount > 0,
          "fdinfo's values are the descriptor's", "%ld %lo %lu/%lu %ld", position, open_flags, inode,
          (unsigned long)status.st_ino, mount);
    close(fd);
    check(slurp(path) < 0 && errno == ENOENT, "a closed descriptor has no fdinfo", "%s", strerror(errno));
    check(access("/proc/self/fdinfo/0", R_OK) == 0, "fdinfo lists standard input", "%s", strerror(errno));
    check(has("/proc/self/smaps_rollup", "[rollup]\nRss:") && strstr(text, "\nAnonymous:"), "smaps_rollup",
          "%s", text);
    check(slurp("/proc/self/loginuid") > 0 && text[0] >= '0' && text[0] <= '9', "loginuid is a number", "%s",
          text);
    check(slurp("/proc/self/sessionid") > 0 && text[0] >= '0' && text[0] <= '9', "sessionid is a number", "%s",
          text);
}

/* Closing descriptors while reading /proc/self/fd in small steps skips
 * none of the others: the listing continues from a descriptor number, not
 * an index, which Python's subprocess relies on when it closes every
 * descriptor it finds there. */
static void check_descriptor_listing_while_closing(void) {
    int first = -1, last = -1;
    for (int index = 0; index < 12; index++) {
        int fd = open("/dev/null", O_RDONLY);
        if (first < 0)
            first = fd;
        last = fd;
    }
    int listing = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    char buffer[96];
    long got;
    while ((got = syscall(SYS_getdents64, listing, buffer, sizeof buffer)) > 0) {
        for (long at = 0; at < got;) {
            unsigned short length;
            memcpy(&length, buffer + at + 16, sizeof length);
            int number = atoi(buffer + at + 19);
            if (number >= first && number <= last && number != listing)
                close(number);
            at += length;
        }
    }
    close(listing);
    int left = 0;
    for (int fd = first; fd <= last; fd++)
        left += fcntl(fd, F_GETFD) >= 0 && fd != listing;
    check(got == 0 && left == 0, "closing while listing /proc/self/fd misses none", "%d left of %d..%d", left,
          first, last);
}

static void check_settings(void) {
    struct utsname names;
    uname(&names);
    char line[256];
    snprintf(line, sizeof line, "%s\n", names.release);
    check(slurp("/proc/sys/kernel/osrelease") > 0 && strcmp(text, line) == 0, "osrelease is uname's release", "%s",
          text);
    snprintf(line, sizeof line, "%s\n", names.nodename);
    check(slurp("/proc/sys/kernel/hostname") > 0 && strcmp(text, line) == 0, "hostname is uname's node name", "%s",
          text);
    check(number_in("/proc/sys/kernel/pid_max") >= 32768, "pid_max", "%s", text);
    check(slurp("/proc/sys/kernel/tainted") > 0 && text[0] >= '0' && text[0] <= '9', "tainted is a number", "%s",
          text);
    check(slurp("/proc/sys/kernel/core_pattern") > 0, "core_pattern reads", "nothing read");
    check(number_in("/proc/sys/kernel/shmmni") > 0 && number_in("/proc/sys/kernel/shmmax") > 0 &&
              number_in("/proc/sys/kernel/shmall") > 0,
          "the shared memory limits", "%s", text);
    check(number_in("/proc/sys/kernel/msgmax") > 0 && number_in("/proc/sys/kernel/msgmnb") > 0 &&
              number_in("/proc/sys/kernel/msgmni") > 0,
          "the message queue limits", "%s", text);
    long semaphores[4] = {0};
    check(slurp("/proc/sys/kernel/sem") > 0 &&
              sscanf(text, "%ld %ld %ld %ld", &semaphores[0], &semaphores[1], &semaphores[2], &semaphores[3]) == 4 &&
              semaphores[1] == semaphores[0] * semaphores[3],
          "sem lists four semaphore limits", "%s", text);
    char first[64], second[64];
    slurp("/proc/sys/kernel/random/uuid");
    snprintf(first, sizeof first, "%.63s", text);
    slurp("/proc/sys/kernel/random/uuid");
    snprintf(second, sizeof second, "%.63s", text);
    check(strlen(first) == 37 && first[8] == '-' && first[14] == '4' && strcmp(first, second) != 0,
          "random/uuid is a new version-4 UUID each time", "%s %s", first, second);
    slurp("/proc/sys/kernel/random/boot_id");
    snprintf(first, sizeof first, "%.63s", text);
    slurp("/proc/sys/kernel/random/boot_id");
    check(strlen(first) == 37 && strcmp(first, text) == 0, "random/boot_id stays", "%s %s", first, text);
    check(number_in("/proc/sys/vm/overcommit_memory") == 0, "overcommit_memory is the heuristic", "%s", text);
    check(number_in("/proc/sys/fs/nr_open") >= 1024 && number_in("/proc/sys/fs/file-max") > 0,
          "nr_open and file-max", "%s", text);
}

static void check_machine(void) {
    long processors = sysconf(_SC_NPROCESSORS_ONLN);
    check(slurp("/sys/devices/system/cpu/online") > 0 && count_list(text) == processors,
          "/sys/devices/system/cpu/online lists the online processors", "%s vs %ld", text, processors);
    check(slurp("/sys/devices/system/cpu/possible") > 0 && count_list(text) >= processors, "possible processors",
          "%s", text);
    long count = 0;
    if (slurp("/proc/cpuinfo") > 0)
        for (char *at = text; (at = strstr(at, "processor\t:")) != NULL; at++)
            count++;
    check(count == processors, "cpuinfo has a paragraph per processor", "%ld", count);
    check(has("/proc/cpuinfo", "\nvendor_id\t: ") && strstr(text, "\ncpu family\t: ") && strstr(text, "\nmodel name\t: ") &&
              strstr(text, "\ncpu MHz\t\t: ") && strstr(text, "\naddress sizes\t: ") && strstr(text, "\nflags\t\t: fpu ") &&
              strstr(text, " sse2 "),
          "cpuinfo has Linux's fields and flags", "%.600s", text);
    /* What lscpu, hwloc and runtimes read: each processor's topology, the
     * NUMA node. */
    long cores = 0, packages = 0;
    for (long cpu = 0; cpu < processors; cpu++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/core_cpus_list", cpu);
        cores += slurp(path) > 0 && count_list(text) >= 1;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id", cpu);
        packages += number_in(path) >= 0;
    }
    check(cores == processors && packages == processors, "each processor has its topology", "%ld %ld of %ld",
          cores, packages, processors);
    check(slurp("/sys/devices/system/cpu/cpu0/topology/core_siblings_list") > 0 && count_list(text) >= 1,
          "core siblings", "%s", text);
    check(access("/sys/devices/system/cpu/cpu0/cache", F_OK) == 0, "cpu0 has a cache directory", "%s",
          strerror(errno));
    check(slurp("/sys/devices/system/node/online") > 0 && text[0] == '0', "node 0 is online", "%s", text);
    check(access("/sys/devices/system/cpu/cpu0/topology/no_such_file", F_OK) != 0 && errno == ENOENT,
          "no other topology files", "%s", strerror(errno));
    check(has("/proc/meminfo", "MemTotal:") && strstr(text, "MemAvailable:"), "meminfo", "%s", text);
    check(has("/proc/vmstat", "nr_free_pages ") && strstr(text, "\npgpgin ") && strstr(text, "\npswpout "), "vmstat",
          "%s", text);
    check(has("/proc/version", "Linux version "), "version", "%s", text);
    check(has("/proc/filesystems", "\tproc\n"), "filesystems lists proc", "%s", text);
    check(slurp("/proc/uptime") > 0 && strtod(text, NULL) > 0, "uptime", "%s", text);
    check(slurp("/proc/config.gz") > 20 && (unsigned char)text[0] == 0x1f && (unsigned char)text[1] == 0x8b,
          "config.gz is gzip", "%ld bytes", slurp("/proc/config.gz"));

    /* cgroup v2 at /sys/fs/cgroup (the host may have version 1 there). */
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0 || access("/sys/fs/cgroup/cpu.max", F_OK) != 0) {
        printf("ok cgroup: no cgroup v2 limits here\n");
        return;
    }
    long quota = -1, period = -1;
    if (slurp("/sys/fs/cgroup/cpu.max") > 0 && strncmp(text, "max", 3) != 0)
        sscanf(text, "%ld %ld", &quota, &period);
    check(period > 0 && quota / period == processors, "cpu.max allows the processors' time", "%s", text);
    long memory = number_in("/sys/fs/cgroup/memory.max");
    long total = slurp("/proc/meminfo") > 0 ? strtol(strstr(text, "MemTotal:") + 9, NULL, 10) * 1024 : 0;
    check(memory == total, "memory.max is the machine's memory (MemTotal)", "%ld vs %ld", memory, total);
    check(has("/proc/self/mountinfo", " /sys/fs/cgroup ") && strstr(text, " - cgroup2 "),
          "mountinfo shows the cgroup2 mount", "%s", text);
}

/* The state letter /proc/PID/stat shows for `pid` (0 if unreadable). */
static char state_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    char state = 0;
    if (file != NULL) {
        char line[512] = {0};
        if (fgets(line, sizeof line, file) != NULL) {
            char *end = strrchr(line, ')');
            state = end != NULL && end[1] == ' ' ? end[2] : 0;
        }
        fclose(file);
    }
    return state;
}

/* A child shows R while it computes and S once it waits: a parent that
 * waits for S (as test harnesses do) finds it done with its work. */
static void check_process_states(void) {
    volatile int *marker = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(marker != MAP_FAILED, "state_shared_page", "errno %d", errno);
    if (marker == MAP_FAILED) {
        return;
    }
    *marker = 0;
    pid_t child = fork();
    if (child == 0) {
        /* Compute for a while (200 ms of the clock), then mark and wait. */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 200000000L);
        *marker = 1;
        pause();
        _exit(0);
    }
    char state = 0;
    int seen_running = 0;
    for (int attempt = 0; attempt < 2000; attempt++) {
        state = state_of(child);
        seen_running |= state == 'R';
        if (state == 'S') {
            break;
        }
        usleep(5000);
    }
    check(state == 'S' && *marker == 1, "sleeping_child_is_s_after_its_work", "state %c, marker %d", state,
          *marker);
    check(seen_running, "computing_child_is_r", "never seen running");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    munmap((void *)marker, 4096);
}

/* Reads descriptor `fd`'s fdinfo into `text`; returns the text after the
 * common lines (pos, flags, mnt_id, ino), or "" if they are not there. */
static const char *object_info(int fd) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    if (slurp(path) < 0)
        return "";
    char *after = strstr(text, "\nino:\t");
    if (!after)
        return "";
    after = strchr(after + 1, '\n');
    return after ? after + 1 : "";
}

/* The lines eventfds, timerfds, signalfds, inotify and epoll instances
 * add to fdinfo, in Linux 6's formats. */
static void check_object_info(void) {
    int event = eventfd(5, EFD_SEMAPHORE);
    const char *info = object_info(event);
    unsigned long long count = 0;
    int semaphore = -1, id = -1;
    check(sscanf(info, "eventfd-count: %llx\neventfd-id: %d\neventfd-semaphore: %d", &count, &id,
                 &semaphore) == 3 &&
              count == 5 && semaphore == 1 && strncmp(info, "eventfd-count:                5\n", 32) == 0,
          "fdinfo of an eventfd has its count, id and mode", "%s", info);

    int timer = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec setting = {.it_interval = {1, 500}, .it_value = {100, 0}};
    timerfd_settime(timer, 0, &setting, NULL);
    info = object_info(timer);
    int clock_id = -1;
    unsigned long long ticks = 1, value_seconds = 0, value_ns = 0, interval_seconds = 0, interval_ns = 0;
    char flags[8] = "";
    check(sscanf(info, "clockid: %d\nticks: %llu\nsettime flags: %7s\nit_value: (%llu, %llu)\nit_interval: (%llu, %llu)",
                 &clock_id, &ticks, flags, &value_seconds, &value_ns, &interval_seconds, &interval_ns) == 7 &&
              clock_id == CLOCK_MONOTONIC && ticks == 0 && strcmp(flags, "00") == 0 && value_seconds >= 98 &&
              value_seconds <= 100 && interval_seconds == 1 && interval_ns == 500,
          "fdinfo of a timerfd has its clock, ticks, flags and setting", "%s", info);
    timerfd_settime(timer, TFD_TIMER_ABSTIME, &setting, NULL);
    info = object_info(timer);
    check(strstr(info, "\nsettime flags: 01\n") != NULL, "fdinfo of a timerfd has its last settime flags", "%s",
          info);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGTERM);
    int signals = signalfd(-1, &mask, 0);
    info = object_info(signals);
    check(strcmp(info, "sigmask:\t0000000000004200\n") == 0, "fdinfo of a signalfd has its mask", "%s", info);

    int watches = inotify_init1(0);
    struct stat directory;
    stat("/tmp", &directory);
    int watch = inotify_add_watch(watches, "/tmp", IN_CREATE | IN_DELETE);
    info = object_info(watches);
    unsigned int shown_watch = 0, shown_mask = 0, shown_device = 0;
    unsigned long shown_inode = 0;
    check(sscanf(info, "inotify wd:%x ino:%lx sdev:%x mask:%x", &shown_watch, &shown_inode, &shown_device,
                 &shown_mask) == 4 &&
              (int)shown_watch == watch && shown_inode == (unsigned long)directory.st_ino &&
              shown_mask == (IN_CREATE | IN_DELETE) &&
              shown_device == (major(directory.st_dev) << 20 | minor(directory.st_dev)),
          "fdinfo of an inotify instance has its watches", "%s", info);

    int poller = epoll_create1(0);
    struct epoll_event interest = {.events = EPOLLIN | EPOLLET, .data.u64 = 0x1234};
    epoll_ctl(poller, EPOLL_CTL_ADD, event, &interest);
    info = object_info(poller);
    char expected[128];
    snprintf(expected, sizeof expected, "tfd: %8d events: %8x data: %16x  pos:0 ino:", event,
             EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP, 0x1234);
    check(strncmp(info, expected, strlen(expected)) == 0 && strstr(info, " sdev:") != NULL,
          "fdinfo of an epoll instance has its interests", "%s", info);
    close(poller);
    close(watches);
    close(signals);
    close(timer);
    close(event);
}

static volatile long memory_word = 0x1234;

/* /proc/PID/mem: the process's memory at its addresses, its own and a
 * child's; an address with nothing mapped reads as EIO. */
static void check_memory_file(void) {
    int fd = open("/proc/self/mem", O_RDWR);
    long value = 0;
    check(fd >= 0 && pread(fd, &value, sizeof value, (off_t)(uintptr_t)&memory_word) == sizeof value &&
              value == 0x1234,
          "/proc/self/mem reads a variable at its address", "fd %d, value %#lx (%s)", fd, value, strerror(errno));
    long changed = 0x5678;
    check(pwrite(fd, &changed, sizeof changed, (off_t)(uintptr_t)&memory_word) == sizeof changed &&
              memory_word == 0x5678,
          "/proc/self/mem writes a variable at its address", "%#lx (%s)", memory_word, strerror(errno));
    errno = 0;
    check(pread(fd, &value, sizeof value, 4096) == -1 && errno == EIO, "/proc/self/mem fails with EIO unmapped",
          "%s", strerror(errno));
    close(fd);
    int ready[2], done[2];
    if (pipe(ready) != 0 || pipe(done) != 0)
        return;
    pid_t child = fork();
    if (child == 0) {
        memory_word = 0x4242;
        char byte = 1;
        if (write(ready[1], &byte, 1) != 1 || read(done[0], &byte, 1) != 1)
            _exit(2);
        _exit(memory_word == 0x7777 ? 0 : 1);
    }
    char byte;
    read(ready[0], &byte, 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)child);
    fd = open(path, O_RDWR);
    value = 0;
    check(fd >= 0 && pread(fd, &value, sizeof value, (off_t)(uintptr_t)&memory_word) == sizeof value &&
              value == 0x4242,
          "/proc/CHILD/mem reads the child's memory", "fd %d, value %#lx (%s)", fd, value, strerror(errno));
    changed = 0x7777;
    check(fd >= 0 && pwrite(fd, &changed, sizeof changed, (off_t)(uintptr_t)&memory_word) == sizeof changed,
          "/proc/CHILD/mem writes the child's memory", "%s", strerror(errno));
    close(fd);
    write(done[1], &byte, 1);
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child sees what was written", "status %#x", status);
    check(memory_word == 0x5678, "the parent's memory stays its own", "%#lx", memory_word);
    close(ready[0]);
    close(ready[1]);
    close(done[0]);
    close(done[1]);
}

int main(int argc, char **argv, char **envp) {
    check_process(argc, argv, envp);
    check_descriptor_info();
    check_descriptor_listing_while_closing();
    check_object_info();
    check_memory_file();
    check_settings();
    check_machine();
    check_process_states();
    printf("%d checks failed\n", failures);
    return failures;
}
