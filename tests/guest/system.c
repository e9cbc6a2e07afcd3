/* Checks keys in a session keyring, RLIMIT_FSIZE (SIGXFSZ, EFBIG) and RLIMIT_AS (malloc and mmap
 * failing), and what a process learns of its use of the machine and of the system:
 * getrusage, times, sysinfo and adjtimex (a read, a refused tick), the host and domain
 * names that uname reports, personality, membarrier, process_vm_readv and
 * process_vm_writev on the own process, and kcmp on its descriptors.
 * Changes the names only in a UTS namespace of its own (or where the
 * kernel has one namespace: a virtual machine of its own). Passes on
 * Linux. One line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static long long now_ns(clockid_t clock) {
    struct timespec time;
    clock_gettime(clock, &time);
    return time.tv_sec * 1000000000LL + time.tv_nsec;
}

static void spin_for_processor_time(long long ns) {
    long long end = now_ns(CLOCK_PROCESS_CPUTIME_ID) + ns;
    long long deadline = now_ns(CLOCK_MONOTONIC) + 10000000000LL;
    while (now_ns(CLOCK_PROCESS_CPUTIME_ID) < end && now_ns(CLOCK_MONOTONIC) < deadline)
        ;
}

static long long microseconds(struct timeval time) {
    return time.tv_sec * 1000000LL + time.tv_usec;
}

static void check_usage(void) {
    clock_t ticks_before = times(NULL);
    spin_for_processor_time(60000000LL);
    for (int sleeps = 0; sleeps < 3; sleeps++) {
        struct timespec short_sleep = {0, 1000000};
        nanosleep(&short_sleep, NULL);
    }
    struct rusage self, thread, children;
    check(getrusage(RUSAGE_SELF, &self) == 0, "getrusage RUSAGE_SELF", "failed");
    check(self.ru_nvcsw >= 3, "sleeps count as voluntary context switches", "%ld", self.ru_nvcsw);
    long long used = microseconds(self.ru_utime) + microseconds(self.ru_stime);
    check(used >= 50000, "the process's processor time", "%lld us", used);
    check(self.ru_maxrss > 0, "a resident set", "%ld KiB", self.ru_maxrss);
    /* The thread's time is read first: the process's, read after it,
     * can only be larger (time passes between the two calls). */
    struct rusage after;
    int thread_result = getrusage(RUSAGE_THREAD, &thread);
    int after_result = getrusage(RUSAGE_SELF, &after);
    long long thread_used = microseconds(thread.ru_utime) + microseconds(thread.ru_stime);
    long long used_after = microseconds(after.ru_utime) + microseconds(after.ru_stime);
    check(thread_result == 0 && after_result == 0 && thread_used <= used_after + 1000,
          "RUSAGE_THREAD is no more than the process", "thread %lld us, process %lld us", thread_used,
          used_after);
    check(getrusage(RUSAGE_CHILDREN, &children) == 0, "RUSAGE_CHILDREN", "failed");
    errno = 0;
    check(getrusage(7, &self) == -1 && errno == EINVAL, "an unknown target: EINVAL", "errno %d", errno);
    struct tms usage;
    clock_t ticks_after = times(&usage);
    long hertz = sysconf(_SC_CLK_TCK);
    check(ticks_after > ticks_before && usage.tms_utime + usage.tms_stime >= hertz / 20, "times",
          "%ld ticks elapsed, %ld used", (long)(ticks_after - ticks_before),
          (long)(usage.tms_utime + usage.tms_stime));
    struct sysinfo information;
    check(sysinfo(&information) == 0 && information.totalram > 0 && information.freeram <= information.totalram &&
              information.mem_unit >= 1 && information.procs >= 1,
          "sysinfo", "total %lu free %lu", information.totalram, information.freeram);
    struct timex discipline;
    memset(&discipline, 0, sizeof discipline);
    int state = adjtimex(&discipline);
    struct timeval wall;
    gettimeofday(&wall, NULL);
    check(state >= 0 && discipline.time.tv_sec >= wall.tv_sec - 2 && discipline.time.tv_sec <= wall.tv_sec,
          "adjtimex reads the clock", "state %d", state);
    /* A tick outside 9000 to 11000 us is refused before anything changes
     * (EPERM first for a caller that may not change the clock). */
    memset(&discipline, 0, sizeof discipline);
    discipline.modes = ADJ_TICK;
    discipline.tick = 100;
    errno = 0;
    int refused = adjtimex(&discipline);
    check(refused == -1 && (errno == EINVAL || (errno == EPERM && geteuid() != 0)),
          "adjtimex refuses a tick out of range", "returned %d", refused);
}

static void check_names(void) {
    if (unshare(CLONE_NEWUTS) != 0 && errno != ENOSYS && errno != EINVAL) {
        skip("sethostname", "no UTS namespace of its own (errno %d)", errno);
        return;
    }
    check(sethostname("rosv-check", 10) == 0 && setdomainname("check.example", 13) == 0,
          "sethostname and setdomainname", "errno %d", errno);
    struct utsname names;
    uname(&names);
    check(strcmp(names.nodename, "rosv-check") == 0 && strcmp(names.domainname, "check.example") == 0,
          "uname reports them", "%s %s", names.nodename, names.domainname);
    char host[65];
    check(gethostname(host, sizeof host) == 0 && strcmp(host, "rosv-check") == 0, "gethostname", "%s", host);
    char long_name[80];
    memset(long_name, 'x', sizeof long_name);
    errno = 0;
    check(sethostname(long_name, 65) == -1 && errno == EINVAL, "a name past 64 bytes: EINVAL", "errno %d",
          errno);
}

static void check_personality(void) {
    int current = personality(0xffffffff);
    check((current & PER_MASK) == PER_LINUX, "PER_LINUX", "%#x", current);
    personality(current | ADDR_NO_RANDOMIZE);
    int now = personality(0xffffffff);
    check(now & ADDR_NO_RANDOMIZE, "ADDR_NO_RANDOMIZE is reported back", "%#x", now);
    personality(current);
}

static void check_membarrier(void) {
    enum { GLOBAL = 1, PRIVATE_EXPEDITED = 8, REGISTER_PRIVATE_EXPEDITED = 16 };
    long supported = syscall(SYS_membarrier, 0, 0, 0);
    check(supported >= 0 && (supported & (GLOBAL | PRIVATE_EXPEDITED)) == (GLOBAL | PRIVATE_EXPEDITED),
          "membarrier MEMBARRIER_CMD_QUERY", "%ld", supported);
    errno = 0;
    check(syscall(SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) == -1 && errno == EPERM,
          "private expedited before registering: EPERM", "errno %d", errno);
    check(syscall(SYS_membarrier, REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
              syscall(SYS_membarrier, PRIVATE_EXPEDITED, 0, 0) == 0,
          "private expedited once registered", "errno %d", errno);
    check(syscall(SYS_membarrier, GLOBAL, 0, 0) == 0, "global", "errno %d", errno);
    errno = 0;
    check(syscall(SYS_membarrier, GLOBAL, 1, 0) == -1 && errno == EINVAL, "unknown flags: EINVAL", "errno %d",
          errno);
}

static void check_kernel_log(void) {
    long size = syscall(SYS_syslog, 10, NULL, 0);
    check(size > 0, "syslog SYSLOG_ACTION_SIZE_BUFFER", "%ld", size);
    static char text[1 << 16];
    long read = syscall(SYS_syslog, 3, text, sizeof text);
    check(read >= 0 && (read == 0 || text[0] == '<'), "syslog SYSLOG_ACTION_READ_ALL gives <level> lines",
          "%ld: %.20s", read, text);
    errno = 0;
    check(syscall(SYS_syslog, 3, NULL, 10) == -1 && errno == EINVAL, "no buffer: EINVAL", "errno %d", errno);
}

static void check_own_memory_and_descriptors(void) {
    char source[16] = "process_vm_read", first[8] = {0}, second[8] = {0};
    struct iovec local[2] = {{first, 7}, {second, 8}};
    struct iovec remote[1] = {{source, 15}};
    ssize_t moved = process_vm_readv(getpid(), local, 2, remote, 1, 0);
    check(moved == 15 && memcmp(first, "process", 7) == 0 && memcmp(second, "_vm_read", 8) == 0,
          "process_vm_readv of the own process", "%zd", moved);
    char target[4] = {0};
    struct iovec from[1] = {{source, 4}};
    struct iovec to[1] = {{target, 4}};
    check(process_vm_writev(getpid(), from, 1, to, 1, 0) == 4 && memcmp(target, "proc", 4) == 0,
          "process_vm_writev of the own process", "failed");
    errno = 0;
    struct iovec bad[1] = {{(void *)8, 4}};
    check(process_vm_readv(getpid(), local, 1, bad, 1, 0) == -1 && errno == EFAULT, "an unmapped address: EFAULT",
          "errno %d", errno);
    int copy = dup(1);
    pid_t self = getpid();
    check(syscall(SYS_kcmp, self, self, 0, 1, copy) == 0, "kcmp of a duplicate: the same file", "%ld",
          syscall(SYS_kcmp, self, self, 0, 1, copy));
    int other = dup(0);
    long order = syscall(SYS_kcmp, self, self, 0, 0, 1);
    long reverse = syscall(SYS_kcmp, self, self, 0, 1, 0);
    /* (0 and 1 may be one terminal file: then both compare equal.) */
    check((order == 0 && reverse == 0) || (order == 1 && reverse == 2) || (order == 2 && reverse == 1),
          "kcmp orders different files", "%ld %ld", order, reverse);
    close(other);
    close(copy);
    check(syscall(SYS_kcmp, self, self, 1, 0, 0) == 0, "kcmp of the address space", "failed");
    errno = 0;
    check(syscall(SYS_kcmp, self, self, 0, 1, 999) == -1 && errno == EBADF, "kcmp of no descriptor: EBADF",
          "errno %d", errno);
}

static volatile sig_atomic_t file_size_signals;

static void on_file_size(int signal) {
    (void)signal;
    file_size_signals++;
}

/* RLIMIT_FSIZE: a write is cut at the limit, then refused with EFBIG and
 * SIGXFSZ; RLIMIT_AS: malloc and mmap fail rather than the program. */
static void check_limits(void) {
    signal(SIGXFSZ, on_file_size);
    struct rlimit original, limited;
    getrlimit(RLIMIT_FSIZE, &original);
    limited = original;
    limited.rlim_cur = 1000;
    setrlimit(RLIMIT_FSIZE, &limited);
    int fd = open("/tmp/rosv-file-size", O_CREAT | O_TRUNC | O_RDWR, 0600);
    static char bytes[1500];
    ssize_t written = write(fd, bytes, sizeof bytes);
    check(written == 1000 && file_size_signals == 0, "a write is cut at RLIMIT_FSIZE", "%zd", written);
    errno = 0;
    written = write(fd, bytes, 10);
    check(written == -1 && errno == EFBIG && file_size_signals == 1, "past it: EFBIG and SIGXFSZ",
          "%zd, %d signals", written, (int)file_size_signals);
    close(fd);
    unlink("/tmp/rosv-file-size");
    setrlimit(RLIMIT_FSIZE, &original);
    signal(SIGXFSZ, SIG_DFL);

    getrlimit(RLIMIT_AS, &original);
    limited = original;
    limited.rlim_cur = 512UL << 20;
    check(setrlimit(RLIMIT_AS, &limited) == 0, "RLIMIT_AS", "refused");
    void *huge = malloc(1UL << 30);
    check(huge == NULL, "malloc past RLIMIT_AS returns NULL", "it did not");
    free(huge);
    errno = 0;
    void *mapped = mmap(NULL, 1UL << 30, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(mapped == MAP_FAILED && errno == ENOMEM, "mmap past RLIMIT_AS: ENOMEM", "errno %d", errno);
    void *small = malloc(1 << 20);
    check(small != NULL, "what fits is still given", "malloc failed");
    free(small);
    setrlimit(RLIMIT_AS, &original);
}

enum {
    KEYCTL_JOIN_SESSION_KEYRING = 1,
    KEYCTL_UPDATE = 2,
    KEYCTL_REVOKE = 3,
    KEYCTL_SETPERM = 5,
    KEYCTL_DESCRIBE = 6,
    KEYCTL_LINK = 8,
    KEYCTL_UNLINK = 9,
    KEYCTL_SEARCH = 10,
    KEYCTL_READ = 11,
    KEYCTL_INVALIDATE = 21,
    SESSION_KEYRING = -3,
};

static long key_control(long operation, long first, long second, long third, long fourth) {
    return syscall(SYS_keyctl, operation, first, second, third, fourth);
}

/* The session keyring: a key added, read, described, updated, found,
 * linked into another keyring and unlinked, revoked, invalidated. In a
 * session keyring of its own, so that the host's is left alone. */
static void check_keys(void) {
    long session = key_control(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0);
    check(session > 0, "a session keyring of its own", "errno %d", errno);
    long key = syscall(SYS_add_key, "user", "rosv:secret", "opensesame", 10, SESSION_KEYRING);
    check(key > 0, "add_key", "errno %d", errno);
    char buffer[128] = {0};
    long length = key_control(KEYCTL_READ, key, (long)buffer, sizeof buffer, 0);
    check(length == 10 && memcmp(buffer, "opensesame", 10) == 0, "KEYCTL_READ", "%ld", length);
    char expected[64];
    snprintf(expected, sizeof expected, "user;%d;%d;3f010000;rosv:secret", (int)geteuid(), (int)getegid());
    length = key_control(KEYCTL_DESCRIBE, key, (long)buffer, sizeof buffer, 0);
    check(length == (long)strlen(expected) + 1 && strcmp(buffer, expected) == 0, "KEYCTL_DESCRIBE", "%s", buffer);
    check(syscall(SYS_add_key, "user", "rosv:secret", "changed", 7, SESSION_KEYRING) == key,
          "adding it again updates it in place", "a new key");
    check(key_control(KEYCTL_UPDATE, key, (long)"updated", 7, 0) == 0 &&
              key_control(KEYCTL_READ, key, (long)buffer, sizeof buffer, 0) == 7 && memcmp(buffer, "updated", 7) == 0,
          "KEYCTL_UPDATE", "failed");
    check(syscall(SYS_request_key, "user", "rosv:secret", NULL, 0) == key, "request_key finds it", "errno %d",
          errno);
    long ring = syscall(SYS_add_key, "keyring", "rosv-ring", NULL, 0, SESSION_KEYRING);
    check(ring > 0 && key_control(KEYCTL_LINK, key, ring, 0, 0) == 0, "a keyring, and a link into it", "errno %d",
          errno);
    int serials[4] = {0};
    length = key_control(KEYCTL_READ, ring, (long)serials, sizeof serials, 0);
    check(length == 4 && serials[0] == key, "reading a keyring lists its keys", "%ld", length);
    check(key_control(KEYCTL_SEARCH, ring, (long)"user", (long)"rosv:secret", 0) == key, "KEYCTL_SEARCH",
          "errno %d", errno);
    check(key_control(KEYCTL_UNLINK, key, ring, 0, 0) == 0, "KEYCTL_UNLINK", "errno %d", errno);
    errno = 0;
    check(key_control(KEYCTL_UNLINK, key, ring, 0, 0) == -1 && errno == ENOENT, "unlinked twice: ENOENT",
          "errno %d", errno);
    check(key_control(KEYCTL_SETPERM, key, 0x3f3f0000, 0, 0) == 0 &&
              key_control(KEYCTL_DESCRIBE, key, (long)buffer, sizeof buffer, 0) > 0 && strstr(buffer, ";3f3f0000;"),
          "KEYCTL_SETPERM", "%s", buffer);
    errno = 0;
    check(syscall(SYS_request_key, "user", "rosv:missing", NULL, 0) == -1 && errno == ENOKEY,
          "request_key of a missing key: ENOKEY", "errno %d", errno);
    errno = 0;
    check(syscall(SYS_add_key, "no-such-type", "x", "y", 1, SESSION_KEYRING) == -1 && errno == ENODEV,
          "an unknown type: ENODEV", "errno %d", errno);
    check(key_control(KEYCTL_REVOKE, key, 0, 0, 0) == 0, "KEYCTL_REVOKE", "errno %d", errno);
    errno = 0;
    check(key_control(KEYCTL_READ, key, (long)buffer, sizeof buffer, 0) == -1 && errno == EKEYREVOKED,
          "a revoked key: EKEYREVOKED", "errno %d", errno);
    check(key_control(KEYCTL_INVALIDATE, ring, 0, 0, 0) == 0, "KEYCTL_INVALIDATE", "errno %d", errno);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_keys();
    check_limits();
    check_usage();
    check_personality();
    check_membarrier();
    check_kernel_log();
    check_own_memory_and_descriptors();
    check_names();
    printf("%d checks failed\n", failures);
    return failures;
}
