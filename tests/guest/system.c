/* Checks what a process learns of its use of the machine and of the system:
 * getrusage, times, sysinfo and adjtimex (read only), the host and domain
 * names that uname reports, personality, membarrier, process_vm_readv and
 * process_vm_writev on the own process, and kcmp on its descriptors.
 * Changes the names only in a UTS namespace of its own (or where the
 * kernel has one namespace: a virtual machine of its own). Passes on
 * Linux. One line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
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
    struct rusage self, thread, children;
    check(getrusage(RUSAGE_SELF, &self) == 0, "getrusage RUSAGE_SELF", "failed");
    long long used = microseconds(self.ru_utime) + microseconds(self.ru_stime);
    check(used >= 50000, "the process's processor time", "%lld us", used);
    check(self.ru_maxrss > 0, "a resident set", "%ld KiB", self.ru_maxrss);
    check(getrusage(RUSAGE_THREAD, &thread) == 0 &&
              microseconds(thread.ru_utime) + microseconds(thread.ru_stime) <= used + 10000,
          "RUSAGE_THREAD is no more than the process", "failed");
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

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_usage();
    check_personality();
    check_membarrier();
    check_own_memory_and_descriptors();
    check_names();
    printf("%d checks failed\n", failures);
    return failures;
}
