/* Checks what the kernel accounts to processes: user against system time
 * (times, getrusage for the process, the thread and the children, wait4's
 * usage, /proc/self/stat and task/TID/stat), the processors' times in
 * /proc/stat, and the I/O counters of /proc/self/io and task/TID/io. One
 * line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static int64_t clock_ns(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static volatile uint64_t sink;

/* Spins in application code until the thread used `ms` of processor time. */
static void spin_in_user_mode(int ms) {
    int64_t end = clock_ns(CLOCK_THREAD_CPUTIME_ID) + (int64_t)ms * 1000000;
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < end)
        for (int i = 0; i < 100000; i++)
            sink += (uint64_t)i * 7;
}

/* Makes cheap system calls until the thread used `ms` of processor time. */
static void spin_in_system_calls(int ms) {
    int64_t end = clock_ns(CLOCK_THREAD_CPUTIME_ID) + (int64_t)ms * 1000000;
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < end)
        for (int i = 0; i < 1000; i++)
            syscall(SYS_getppid);
}

static int64_t timeval_us(struct timeval value) { return (int64_t)value.tv_sec * 1000000 + value.tv_usec; }

/* Fields 14 to 17 (utime, stime, cutime, cstime) of a stat file. */
static int stat_times(const char *path, long long times[4]) {
    char text[1024];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0)
        return -1;
    text[length] = 0;
    /* The name may hold spaces: count fields after its closing parenthesis. */
    char *after = strrchr(text, ')');
    if (!after)
        return -1;
    char state;
    long long skipped;
    if (sscanf(after + 2, "%c %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &state,
               &skipped, &skipped, &skipped, &skipped, &skipped, &skipped, &skipped, &skipped, &skipped,
               &skipped, &times[0], &times[1], &times[2], &times[3]) != 15)
        return -1;
    return 0;
}

/* The processors' summed times from /proc/stat's "cpu" line. */
struct processor_times {
    long long user, nice, system, idle, total;
};

static int processor_times(struct processor_times *times) {
    char text[256];
    FILE *file = fopen("/proc/stat", "r");
    if (!file)
        return -1;
    char *line = fgets(text, sizeof text, file);
    fclose(file);
    long long fields[10] = {0};
    if (!line || strncmp(line, "cpu ", 4) != 0)
        return -1;
    int count = sscanf(line + 4, "%lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &fields[0], &fields[1],
                       &fields[2], &fields[3], &fields[4], &fields[5], &fields[6], &fields[7], &fields[8],
                       &fields[9]);
    if (count < 8)
        return -1;
    times->user = fields[0];
    times->nice = fields[1];
    times->system = fields[2];
    times->idle = fields[3];
    /* guest and guest_nice are part of user and nice already. */
    times->total = 0;
    for (int i = 0; i < 8; i++)
        times->total += fields[i];
    return 0;
}

/* The counters of an io file: rchar, wchar, syscr, syscw, read_bytes,
 * write_bytes, cancelled_write_bytes. */
static const char *io_names[7] = {"rchar",       "wchar",       "syscr",
                                  "syscw",       "read_bytes",  "write_bytes",
                                  "cancelled_write_bytes"};

static int io_counters(const char *path, long long counters[7]) {
    char text[512];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0)
        return -1;
    text[length] = 0;
    char *line = text;
    for (int i = 0; i < 7; i++) {
        size_t name_length = strlen(io_names[i]);
        if (strncmp(line, io_names[i], name_length) != 0 || line[name_length] != ':')
            return -1;
        counters[i] = atoll(line + name_length + 1);
        char *next = strchr(line, '\n');
        if (!next)
            return -1;
        line = next + 1;
    }
    return *line == 0 ? 0 : -1;
}

static void check_times(void) {
    struct tms before = {0}, after = {0};
    times(&before);
    spin_in_user_mode(300);
    times(&after);
    check(after.tms_utime - before.tms_utime >= 10, "times counts a busy loop as user time",
          "utime grew by %ld ticks, stime by %ld", (long)(after.tms_utime - before.tms_utime),
          (long)(after.tms_stime - before.tms_stime));
    times(&before);
    spin_in_system_calls(300);
    times(&after);
    check(after.tms_stime - before.tms_stime >= 5, "times counts a loop of system calls as system time",
          "stime grew by %ld ticks, utime by %ld", (long)(after.tms_stime - before.tms_stime),
          (long)(after.tms_utime - before.tms_utime));
    int64_t cpu_ms = clock_ns(CLOCK_PROCESS_CPUTIME_ID) / 1000000;
    int64_t ticks_ms = (int64_t)(after.tms_utime + after.tms_stime) * 1000 / sysconf(_SC_CLK_TCK);
    check(ticks_ms <= cpu_ms + 20 && ticks_ms + 40 >= cpu_ms, "user and system time add up to the process clock",
          "%lld ms of ticks, %lld ms of clock", (long long)ticks_ms, (long long)cpu_ms);
}

static void check_getrusage(void) {
    struct rusage self = {0}, thread = {0};
    check(getrusage(RUSAGE_SELF, &self) == 0 && timeval_us(self.ru_utime) >= 200000 &&
              timeval_us(self.ru_stime) >= 50000,
          "getrusage(RUSAGE_SELF) splits user and system time", "utime %lld us, stime %lld us",
          (long long)timeval_us(self.ru_utime), (long long)timeval_us(self.ru_stime));
    check(getrusage(RUSAGE_THREAD, &thread) == 0 && timeval_us(thread.ru_utime) >= 200000 &&
              timeval_us(thread.ru_stime) >= 50000,
          "getrusage(RUSAGE_THREAD) splits user and system time", "utime %lld us, stime %lld us",
          (long long)timeval_us(thread.ru_utime), (long long)timeval_us(thread.ru_stime));
    long long fields[4] = {0};
    check(stat_times("/proc/self/stat", fields) == 0 && fields[0] >= 20 && fields[1] >= 5,
          "/proc/self/stat shows utime and stime", "utime %lld, stime %lld", fields[0], fields[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)syscall(SYS_gettid));
    check(stat_times(path, fields) == 0 && fields[0] >= 20 && fields[1] >= 5,
          "task/TID/stat shows the thread's utime and stime", "utime %lld, stime %lld", fields[0],
          fields[1]);
}

static int64_t spinner_utime;

static void *spin_thread(void *argument) {
    (void)argument;
    spin_in_user_mode(200);
    char path[64];
    long long fields[4] = {0};
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)syscall(SYS_gettid));
    if (stat_times(path, fields) == 0)
        spinner_utime = fields[0];
    return NULL;
}

static void check_threads(void) {
    struct rusage before = {0}, after = {0};
    getrusage(RUSAGE_SELF, &before);
    pthread_t thread;
    pthread_create(&thread, NULL, spin_thread, NULL);
    pthread_join(thread, NULL);
    getrusage(RUSAGE_SELF, &after);
    check(spinner_utime >= 10, "a thread's task/TID/stat shows its own user time", "utime %lld",
          (long long)spinner_utime);
    /* The sum, not user time alone: Linux splits a thread's time between
     * user and system by sampled ticks, which a loaded host can skew. */
    int64_t grown = timeval_us(after.ru_utime) + timeval_us(after.ru_stime) - timeval_us(before.ru_utime) -
                    timeval_us(before.ru_stime);
    check(grown >= 150000, "an ended thread's time stays the process's", "user and system time grew by %lld us",
          (long long)grown);
}

static void check_children(void) {
    struct tms before = {0}, after = {0};
    times(&before);
    struct rusage children_before = {0};
    getrusage(RUSAGE_CHILDREN, &children_before);
    pid_t child = fork();
    if (child == 0) {
        spin_in_user_mode(200);
        spin_in_system_calls(100);
        _exit(0);
    }
    int status;
    struct rusage usage = {0};
    check(wait4(child, &status, 0, &usage) == child && timeval_us(usage.ru_utime) >= 100000 &&
              timeval_us(usage.ru_stime) >= 20000,
          "wait4 reports the child's user and system time", "utime %lld us, stime %lld us",
          (long long)timeval_us(usage.ru_utime), (long long)timeval_us(usage.ru_stime));
    times(&after);
    check(after.tms_cutime - before.tms_cutime >= 10 && after.tms_cstime - before.tms_cstime >= 2,
          "times counts a reaped child's time", "cutime grew by %ld, cstime by %ld",
          (long)(after.tms_cutime - before.tms_cutime), (long)(after.tms_cstime - before.tms_cstime));
    struct rusage children = {0};
    getrusage(RUSAGE_CHILDREN, &children);
    check(timeval_us(children.ru_utime) - timeval_us(children_before.ru_utime) >= 100000,
          "getrusage(RUSAGE_CHILDREN) counts a reaped child", "utime grew by %lld us",
          (long long)(timeval_us(children.ru_utime) - timeval_us(children_before.ru_utime)));
    long long fields[4] = {0};
    check(stat_times("/proc/self/stat", fields) == 0 && fields[2] >= 10,
          "/proc/self/stat shows the children's time", "cutime %lld, cstime %lld", fields[2], fields[3]);
}

static void check_processor_times(void) {
    struct processor_times before = {0}, after = {0};
    long processors = sysconf(_SC_NPROCESSORS_ONLN);
    check(processor_times(&before) == 0, "/proc/stat has a cpu line", "unreadable");
    int64_t start = clock_ns(CLOCK_MONOTONIC);
    spin_in_system_calls(200);
    usleep(200000);
    processor_times(&after);
    int64_t elapsed_ticks = (clock_ns(CLOCK_MONOTONIC) - start) / 10000000;
    check(after.system > before.system, "/proc/stat system time grows under system calls", "%lld then %lld",
          before.system, after.system);
    /* Every processor's time goes somewhere: the sum grows with the clock. */
    long long grown = after.total - before.total;
    check(grown * 2 >= elapsed_ticks * processors && grown <= (elapsed_ticks + 2) * processors * 2,
          "/proc/stat times grow with the clock on every processor",
          "%lld ticks over %lld ticks on %ld processors", grown, (long long)elapsed_ticks, processors);
}

static void check_io(void) {
    long long before[7] = {0}, after[7] = {0};
    check(io_counters("/proc/self/io", before) == 0, "/proc/self/io has Linux's seven counters", "unparsable");
    char path[] = "/tmp/accounting-XXXXXX";
    int fd = mkstemp(path);
    static char buffer[65536];
    memset(buffer, 'x', sizeof buffer);
    ssize_t written = write(fd, buffer, sizeof buffer);
    written += write(fd, buffer, 1000);
    ssize_t got = pread(fd, buffer, sizeof buffer, 0);
    got += pread(fd, buffer, sizeof buffer, 0);
    close(fd);
    unlink(path);
    io_counters("/proc/self/io", after);
    check(after[1] - before[1] >= written && written == 66536, "wchar counts bytes written", "%lld then %lld",
          before[1], after[1]);
    /* The first read of /proc/self/io itself counts too. */
    check(after[0] - before[0] >= got && got == 131072, "rchar counts bytes read", "%lld then %lld", before[0],
          after[0]);
    check(after[2] - before[2] >= 3 && after[3] - before[3] >= 2, "syscr and syscw count calls",
          "syscr %lld then %lld, syscw %lld then %lld", before[2], after[2], before[3], after[3]);
    char task[64];
    long long thread[7] = {0};
    snprintf(task, sizeof task, "/proc/self/task/%d/io", (int)syscall(SYS_gettid));
    check(io_counters(task, thread) == 0 && thread[1] >= 66536, "task/TID/io shows the thread's counters",
          "wchar %lld", thread[1]);
    io_counters("/proc/self/io", before);
    pid_t child = fork();
    if (child == 0) {
        int null = open("/dev/null", O_WRONLY);
        for (int i = 0; i < 4; i++)
            if (write(null, buffer, sizeof buffer) < 0)
                _exit(1);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    io_counters("/proc/self/io", after);
    check(after[1] - before[1] >= 4 * 65536, "a reaped child's writes count in its parent's io",
          "wchar %lld then %lld", before[1], after[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_times();
    check_getrusage();
    check_threads();
    check_children();
    check_processor_times();
    check_io();
    printf("%d checks failed\n", failures);
    return failures;
}
