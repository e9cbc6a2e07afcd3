/* Checks the system calls a static program depends on. Prints one line per
 * check ("ok <name>" or "FAIL <name>: <why>") and exits with the number of
 * failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(int passed, const char *name, const char *why) {
    if (passed) {
        printf("ok %s\n", name);
    } else {
        printf("FAIL %s: %s (errno %d)\n", name, why, errno);
        failures++;
    }
}

int main(int argc, char **argv) {
    struct utsname name;
    check(uname(&name) == 0 && strcmp(name.sysname, "Linux") == 0 && strcmp(name.machine, "x86_64") == 0,
          "uname", "not Linux x86_64");

    struct timespec monotonic1, monotonic2, realtime;
    check(clock_gettime(CLOCK_MONOTONIC, &monotonic1) == 0, "clock_gettime monotonic", "failed");
    check(clock_gettime(CLOCK_REALTIME, &realtime) == 0 && realtime.tv_sec > 1600000000,
          "clock_gettime realtime", "not a plausible date");
    struct timeval now;
    check(gettimeofday(&now, NULL) == 0 && now.tv_sec > 1600000000, "gettimeofday", "not a plausible date");
    struct timespec nap = {0, 20 * 1000 * 1000};
    check(nanosleep(&nap, NULL) == 0, "nanosleep", "failed");
    clock_gettime(CLOCK_MONOTONIC, &monotonic2);
    long elapsed_ms = (monotonic2.tv_sec - monotonic1.tv_sec) * 1000 + (monotonic2.tv_nsec - monotonic1.tv_nsec) / 1000000;
    check(elapsed_ms >= 20, "monotonic clock advances across a sleep", "less than the sleep");

    unsigned char random1[32] = {0}, random2[32] = {0};
    check(getrandom(random1, sizeof random1, 0) == sizeof random1 &&
              getrandom(random2, sizeof random2, 0) == sizeof random2 && memcmp(random1, random2, 32) != 0,
          "getrandom", "no fresh bytes");

    char exe[256] = {0};
    ssize_t length = readlink("/proc/self/exe", exe, sizeof exe - 1);
    check(length > 0 && strcmp(exe, argv[0]) == 0, "readlink /proc/self/exe", exe);

    check(getpid() > 0 && syscall(SYS_gettid) == getpid(), "getpid and gettid", "main thread id differs");

    /* The raw system call: musl's sbrk() refuses to grow the heap. */
    char *start = (char *)syscall(SYS_brk, 0);
    char *end = (char *)syscall(SYS_brk, start + (1 << 20));
    check(end == start + (1 << 20) && end[-1] == 0, "brk", "cannot grow");

    char *area = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(area != MAP_FAILED, "mmap anonymous", "failed");
    if (area != MAP_FAILED) {
        memset(area, 0x5a, 8 << 20);
        check(area[(8 << 20) - 1] == 0x5a, "mmap memory is usable", "wrong contents");
        check(mprotect(area, 4096, PROT_READ) == 0, "mprotect", "failed");
        check(munmap(area, 8 << 20) == 0, "munmap", "failed");
    }
    check(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 42, 0) == MAP_FAILED && errno == EBADF,
          "mmap of a closed descriptor fails with EBADF", "wrong result");

    /* stdout is whatever the host's is: a terminal (a character device),
       or, as the boot tests capture it, a pipe. */
    struct stat status;
    int is_terminal = isatty(1);
    int is_not_terminal = !is_terminal && errno == ENOTTY;
    check(fstat(1, &status) == 0 && (is_terminal ? S_ISCHR(status.st_mode) : S_ISFIFO(status.st_mode)),
          "fstat stdout agrees with isatty", "wrong type");
    check(is_terminal || is_not_terminal, "isatty on stdout", "failed with an error other than ENOTTY");
    char byte;
    check(read(0, &byte, 1) == 0, "stdin reads end of file", "not EOF");
    check(write(7, "x", 1) == -1 && errno == EBADF, "write to a closed descriptor fails with EBADF", "wrong result");

    struct rlimit limit;
    check(getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur == 8 << 20, "getrlimit stack", "not 8 MiB");

    struct sigaction action = {0};
    action.sa_handler = SIG_IGN;
    check(sigaction(SIGPIPE, &action, NULL) == 0, "sigaction", "failed");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    check(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "sigprocmask", "failed");

    char directory[64];
    check(getcwd(directory, sizeof directory) != NULL && strcmp(directory, "/") == 0, "getcwd", "not /");
    check(open("/no/such/file", O_RDONLY) == -1 && errno == ENOENT, "open of a missing file fails with ENOENT",
          "wrong result");

    printf("%d checks failed\n", failures);
    return failures;
}
