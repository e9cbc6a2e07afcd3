/* Checks timers: POSIX timers on the monotonic, wall and processor-time
 * clocks (signals with their values and overrun counts, to the process or
 * to one thread, the C library's SIGEV_THREAD, SIGEV_NONE, absolute
 * expiries, timer_gettime), interval
 * timers (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF) and alarm, timerfds
 * (counts, poll, epoll, absolute expiries, Linux's errors), and sleeps
 * (clock_nanosleep with TIMER_ABSTIME on every clock that allows it,
 * Linux's errors for the others, nanosleep writing back the time left).
 * POSIX timers deleted and interval timers kept by execve.
 * Waits are bounded in seconds and order is checked rather than duration,
 * so a loaded host passes too. Passes on Linux. One line per check; exits
 * with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

#define MS 1000000LL
#define SECOND 1000000000LL

/* struct sigevent as the kernel reads it, with the thread id the C
 * libraries name differently. */
struct kernel_sigevent {
    union sigval value;
    int signal;
    int notify;
    int thread_id;
    int padding[11];
};

static long long now_on(clockid_t clock) {
    struct timespec time;
    clock_gettime(clock, &time);
    return time.tv_sec * SECOND + time.tv_nsec;
}

static struct timespec timespec_of(long long ns) {
    struct timespec time = {ns / SECOND, ns % SECOND};
    return time;
}

static int create_timer(clockid_t clock, int notify, int signal, int value, int thread_id, int *id) {
    struct kernel_sigevent event;
    memset(&event, 0, sizeof event);
    event.value.sival_int = value;
    event.signal = signal;
    event.notify = notify;
    event.thread_id = thread_id;
    return (int)syscall(SYS_timer_create, clock, &event, id);
}

static int set_timer(int id, int flags, long long value_ns, long long interval_ns) {
    struct itimerspec setting = {timespec_of(interval_ns), timespec_of(value_ns)};
    return (int)syscall(SYS_timer_settime, id, flags, &setting, NULL);
}

static long long timer_left(int id) {
    struct itimerspec setting;
    if (syscall(SYS_timer_gettime, id, &setting) != 0)
        return -1;
    return setting.it_value.tv_sec * SECOND + setting.it_value.tv_nsec;
}

static void block(int signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

static void unblock(int signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* Waits up to 10 s for `signal`; its number, or -1. */
static int wait_for(int signal, siginfo_t *info) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    struct timespec timeout = {10, 0};
    return sigtimedwait(&set, info, &timeout);
}

static void check_periodic_timer_overruns(void) {
    int signal = SIGRTMIN + 1;
    block(signal);
    int id = -1;
    check(create_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, signal, 4242, 0, &id) == 0, "timer_create",
          "failed");
    check(set_timer(id, 0, 10 * MS, 10 * MS) == 0, "timer_settime periodic", "failed");
    struct timespec pause_time = timespec_of(120 * MS);
    nanosleep(&pause_time, NULL);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int got = wait_for(signal, &info);
    check(got == signal && info.si_code == SI_TIMER && info.si_value.sival_int == 4242,
          "timer signal carries its value", "got %d code %d value %d", got, info.si_code,
          info.si_value.sival_int);
    check(info.si_overrun >= 1, "expirations while pending count as overruns", "overrun %d",
          info.si_overrun);
    int overrun = (int)syscall(SYS_timer_getoverrun, id);
    check(overrun == info.si_overrun, "timer_getoverrun matches si_overrun", "%d vs %d", overrun,
          info.si_overrun);
    long long left = timer_left(id);
    check(left > 0 && left <= 10 * MS, "timer_gettime of a periodic timer", "%lld ns left", left);
    check(syscall(SYS_timer_delete, id) == 0, "timer_delete", "failed");
    errno = 0;
    check(syscall(SYS_timer_delete, id) == -1 && errno == EINVAL, "timer_delete twice: EINVAL",
          "not refused");
    /* What was pending when the timer went is dropped, or the last one. */
    struct timespec none = {0, 0};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    while (sigtimedwait(&set, NULL, &none) == signal)
        ;
    unblock(signal);
}

static volatile sig_atomic_t handled_value;
static volatile sig_atomic_t handled_count;

static void on_timer(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    handled_value = info->si_value.sival_int;
    handled_count++;
}

static void wait_for_handled(int count) {
    long long deadline = now_on(CLOCK_MONOTONIC) + 10 * SECOND;
    while (handled_count < count && now_on(CLOCK_MONOTONIC) < deadline) {
        struct timespec step = timespec_of(1 * MS);
        nanosleep(&step, NULL);
    }
}

static void check_timer_handler_on_the_wall_clock(void) {
    int signal = SIGRTMIN + 2;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_timer;
    action.sa_flags = SA_SIGINFO;
    sigaction(signal, &action, NULL);
    handled_count = 0;
    int id = -1;
    check(create_timer(CLOCK_REALTIME, SIGEV_SIGNAL, signal, 99, 0, &id) == 0, "timer on CLOCK_REALTIME",
          "failed");
    long long start = now_on(CLOCK_REALTIME);
    check(set_timer(id, TIMER_ABSTIME, start + 30 * MS, 0) == 0, "absolute expiry", "failed");
    wait_for_handled(1);
    check(handled_count == 1 && handled_value == 99, "handler runs with the timer's value",
          "count %d value %d", (int)handled_count, (int)handled_value);
    check(now_on(CLOCK_REALTIME) >= start + 30 * MS, "not before its time", "early");
    check(timer_left(id) == 0, "an expired one-shot timer reads as disarmed", "%lld", timer_left(id));
    syscall(SYS_timer_delete, id);
}

static volatile int target_ready;
static volatile pid_t target_tid;
static volatile int target_signal;

static void *wait_in_thread(void *argument) {
    (void)argument;
    target_tid = (pid_t)syscall(SYS_gettid);
    __sync_synchronize();
    target_ready = 1;
    siginfo_t info;
    target_signal = wait_for(SIGRTMIN + 3, &info);
    return NULL;
}

static void check_timer_to_one_thread(void) {
    int signal = SIGRTMIN + 3;
    block(signal);
    pthread_t thread;
    target_ready = 0;
    pthread_create(&thread, NULL, wait_in_thread, NULL);
    while (!target_ready)
        sched_yield();
    int id = -1;
    int created = create_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL | SIGEV_THREAD_ID, signal, 1, target_tid, &id);
    check(created == 0, "SIGEV_THREAD_ID timer", "failed");
    set_timer(id, 0, 20 * MS, 0);
    pthread_join(thread, NULL);
    check(target_signal == signal, "the named thread takes the signal", "got %d", target_signal);
    syscall(SYS_timer_delete, id);
    errno = 0;
    created = create_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL | SIGEV_THREAD_ID, signal, 1, 999999, &id);
    check(created == -1 && errno == EINVAL, "SIGEV_THREAD_ID of no thread: EINVAL", "not refused");
    unblock(signal);
}

static volatile int thread_notified;

static void on_expiry_in_a_thread(union sigval value) {
    thread_notified = value.sival_int;
}

/* The C library's SIGEV_THREAD: a thread of its own takes the signal
 * (SIGEV_THREAD_ID underneath) and calls the function. */
static void check_thread_notification(void) {
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD;
    event.sigev_notify_function = on_expiry_in_a_thread;
    event.sigev_value.sival_int = 17;
    timer_t timer;
    check(timer_create(CLOCK_MONOTONIC, &event, &timer) == 0, "timer_create with SIGEV_THREAD", "errno %d", errno);
    struct itimerspec soon = {{0, 0}, timespec_of(20 * MS)};
    timer_settime(timer, 0, &soon, NULL);
    long long deadline = now_on(CLOCK_MONOTONIC) + 10 * SECOND;
    while (thread_notified == 0 && now_on(CLOCK_MONOTONIC) < deadline) {
        struct timespec step = timespec_of(1 * MS);
        nanosleep(&step, NULL);
    }
    check(thread_notified == 17, "the function runs with the value", "%d", thread_notified);
    timer_delete(timer);
}

static void check_sigev_none_and_errors(void) {
    int id = -1;
    check(create_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0, 0, &id) == 0, "SIGEV_NONE timer", "failed");
    set_timer(id, 0, 5 * SECOND, 0);
    long long left = timer_left(id);
    check(left > 0 && left <= 5 * SECOND, "SIGEV_NONE counts down", "%lld ns left", left);
    errno = 0;
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    check(syscall(SYS_timer_settime, id, 0, &bad, NULL) == -1 && errno == EINVAL,
          "nanoseconds out of range: EINVAL", "not refused");
    syscall(SYS_timer_delete, id);
    /* (Linux keeps counting down a disarmed SIGEV_NONE timer: disarm one
     * that signals instead.) */
    block(SIGRTMIN + 5);
    create_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 5, 0, 0, &id);
    set_timer(id, 0, 5 * SECOND, 0);
    set_timer(id, 0, 0, 0);
    check(timer_left(id) == 0, "a zero value disarms", "%lld", timer_left(id));
    syscall(SYS_timer_delete, id);
    unblock(SIGRTMIN + 5);
    errno = 0;
    check(create_timer(CLOCK_MONOTONIC_RAW, SIGEV_NONE, 0, 0, 0, &id) == -1 && errno == EOPNOTSUPP,
          "no timers on CLOCK_MONOTONIC_RAW", "errno %d", errno);
    errno = 0;
    check(create_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, 65, 0, 0, &id) == -1 && errno == EINVAL,
          "signal 65: EINVAL", "not refused");
    errno = 0;
    check(create_timer(CLOCK_MONOTONIC, 3, SIGUSR1, 0, 0, &id) == -1 && errno == EINVAL,
          "unknown notification: EINVAL", "not refused");
    /* The C library's own timer_create, with no event: SIGALRM. */
    timer_t timer;
    check(timer_create(CLOCK_MONOTONIC, NULL, &timer) == 0 && timer_delete(timer) == 0,
          "timer_create without an event", "failed");
}

static volatile int spinning;

static void *spin(void *argument) {
    (void)argument;
    while (spinning)
        __asm__ volatile("" ::: "memory");
    return NULL;
}

static void check_processor_time_timer(void) {
    int signal = SIGRTMIN + 4;
    block(signal);
    int id = -1;
    check(create_timer(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, signal, 5, 0, &id) == 0,
          "timer on the process's processor time", "failed");
    long long used = now_on(CLOCK_PROCESS_CPUTIME_ID);
    set_timer(id, 0, 50 * MS, 0);
    /* Spin until the signal is pending (bounded by the wall clock). */
    long long deadline = now_on(CLOCK_MONOTONIC) + 10 * SECOND;
    sigset_t pending;
    do {
        sigpending(&pending);
    } while (!sigismember(&pending, signal) && now_on(CLOCK_MONOTONIC) < deadline);
    long long spent = now_on(CLOCK_PROCESS_CPUTIME_ID) - used;
    check(sigismember(&pending, signal), "it expires while the process computes", "never");
    check(spent >= 50 * MS, "after the processor time asked for", "%lld ns used", spent);
    siginfo_t info;
    wait_for(signal, &info);
    syscall(SYS_timer_delete, id);
    unblock(signal);
}

static volatile sig_atomic_t alarms, virtual_alarms, profiling_alarms;

static void on_alarm(int signal) {
    if (signal == SIGALRM)
        alarms++;
    else if (signal == SIGVTALRM)
        virtual_alarms++;
    else if (signal == SIGPROF)
        profiling_alarms++;
}

static void spin_until(volatile sig_atomic_t *counter, int count) {
    long long deadline = now_on(CLOCK_MONOTONIC) + 10 * SECOND;
    while (*counter < count && now_on(CLOCK_MONOTONIC) < deadline)
        __asm__ volatile("" ::: "memory");
}

static void check_interval_timers(void) {
    signal(SIGALRM, on_alarm);
    signal(SIGVTALRM, on_alarm);
    signal(SIGPROF, on_alarm);
    struct itimerval periodic = {{0, 20000}, {0, 20000}};
    struct itimerval off = {{0, 0}, {0, 0}};
    struct itimerval old;
    check(setitimer(ITIMER_REAL, &periodic, NULL) == 0, "setitimer ITIMER_REAL", "failed");
    spin_until(&alarms, 3);
    setitimer(ITIMER_REAL, &off, &old);
    check(alarms >= 3, "ITIMER_REAL repeats", "%d alarms", (int)alarms);
    check(old.it_interval.tv_usec == 20000, "the old interval is written back", "%ld",
          (long)old.it_interval.tv_usec);
    struct itimerval profiling = {{0, 0}, {0, 30000}};
    setitimer(ITIMER_PROF, &profiling, NULL);
    spin_until(&profiling_alarms, 1);
    check(profiling_alarms == 1, "ITIMER_PROF while computing", "%d", (int)profiling_alarms);
    setitimer(ITIMER_VIRTUAL, &profiling, NULL);
    spin_until(&virtual_alarms, 1);
    check(virtual_alarms == 1, "ITIMER_VIRTUAL while computing", "%d", (int)virtual_alarms);
    struct itimerval later = {{1, 0}, {5, 0}};
    setitimer(ITIMER_REAL, &later, NULL);
    struct itimerval now;
    getitimer(ITIMER_REAL, &now);
    check(now.it_value.tv_sec >= 3 && now.it_value.tv_sec <= 5 && now.it_interval.tv_sec == 1,
          "getitimer", "%ld s left, interval %ld s", (long)now.it_value.tv_sec, (long)now.it_interval.tv_sec);
    setitimer(ITIMER_REAL, &off, NULL);
    errno = 0;
    struct itimerval bad = {{0, 0}, {0, 1000000}};
    check(setitimer(ITIMER_REAL, &bad, NULL) == -1 && errno == EINVAL, "microseconds out of range: EINVAL",
          "not refused");
    errno = 0;
    check(setitimer(3, &off, NULL) == -1 && errno == EINVAL, "unknown interval timer: EINVAL",
          "not refused");
    check(alarm(10) == 0, "alarm with none set returns 0", "not 0");
    unsigned left = alarm(0);
    check(left == 10 || left == 9, "alarm returns the seconds left", "%u", left);
    alarms = 0;
    alarm(1);
    spin_until(&alarms, 1);
    check(alarms == 1, "alarm sends SIGALRM", "%d", (int)alarms);
    signal(SIGALRM, SIG_DFL);
    signal(SIGVTALRM, SIG_DFL);
    signal(SIGPROF, SIG_DFL);
}

static void check_timerfd(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    check(fd >= 0, "timerfd_create", "failed");
    uint64_t count = 0;
    errno = 0;
    check(read(fd, &count, sizeof count) == -1 && errno == EAGAIN, "a disarmed timerfd has nothing",
          "read something");
    struct itimerspec periodic = {timespec_of(20 * MS), timespec_of(20 * MS)};
    check(timerfd_settime(fd, 0, &periodic, NULL) == 0, "timerfd_settime", "failed");
    struct pollfd entry = {fd, POLLIN, 0};
    check(poll(&entry, 1, 10000) == 1 && (entry.revents & POLLIN), "poll sees an expiry", "not readable");
    struct timespec pause_time = timespec_of(70 * MS);
    nanosleep(&pause_time, NULL);
    check(read(fd, &count, sizeof count) == 8 && count >= 2, "a read returns the expirations",
          "count %llu", (unsigned long long)count);
    errno = 0;
    check(read(fd, &count, 4) == -1 && errno == EINVAL, "a short read: EINVAL", "not refused");
    struct itimerspec setting;
    timerfd_gettime(fd, &setting);
    check(setting.it_interval.tv_nsec == 20 * MS && setting.it_value.tv_nsec <= 20 * MS,
          "timerfd_gettime", "interval %ld value %ld", setting.it_interval.tv_nsec, setting.it_value.tv_nsec);
    int epoll = epoll_create1(0);
    struct epoll_event interest = {.events = EPOLLIN, .data.u32 = 7};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &interest);
    struct epoll_event ready;
    check(epoll_wait(epoll, &ready, 1, 10000) == 1 && ready.data.u32 == 7, "epoll sees an expiry",
          "nothing");
    close(epoll);
    struct itimerspec off = {{0, 0}, {0, 0}};
    timerfd_settime(fd, 0, &off, NULL);
    close(fd);

    fd = timerfd_create(CLOCK_REALTIME, 0);
    struct itimerspec absolute = {{0, 0}, timespec_of(now_on(CLOCK_REALTIME) + 30 * MS)};
    check(timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &absolute, NULL) == 0,
          "absolute timerfd on the wall clock", "failed");
    check(read(fd, &count, sizeof count) == 8 && count == 1, "a blocking read waits for it", "count %llu",
          (unsigned long long)count);
    timerfd_gettime(fd, &setting);
    check(setting.it_value.tv_sec == 0 && setting.it_value.tv_nsec == 0, "expired, it reads as disarmed",
          "%ld ns", setting.it_value.tv_nsec);
    errno = 0;
    check(timerfd_settime(fd, 4, &absolute, NULL) == -1 && errno == EINVAL, "unknown flags: EINVAL",
          "not refused");
    close(fd);
    errno = 0;
    check(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0) == -1 && errno == EINVAL,
          "no timerfd on processor time", "not refused");
    errno = 0;
    check(timerfd_settime(1, 0, &absolute, NULL) == -1 && errno == EINVAL, "not a timerfd: EINVAL",
          "errno %d", errno);
}

static void on_interrupt(int signal) {
    (void)signal;
}

static void check_sleeps(void) {
    static const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI};
    static const char *names[] = {"CLOCK_REALTIME", "CLOCK_MONOTONIC", "CLOCK_BOOTTIME", "CLOCK_TAI"};
    for (unsigned index = 0; index < sizeof clocks / sizeof clocks[0]; index++) {
        long long target = now_on(clocks[index]) + 20 * MS;
        struct timespec until = timespec_of(target);
        int result = clock_nanosleep(clocks[index], TIMER_ABSTIME, &until, NULL);
        char name[64];
        snprintf(name, sizeof name, "clock_nanosleep TIMER_ABSTIME on %s", names[index]);
        check(result == 0 && now_on(clocks[index]) >= target, name, "result %d", result);
    }
    struct timespec short_time = timespec_of(1 * MS);
    check(clock_nanosleep(CLOCK_MONOTONIC_RAW, 0, &short_time, NULL) == EOPNOTSUPP,
          "clock_nanosleep on CLOCK_MONOTONIC_RAW: EOPNOTSUPP", "allowed");
    check(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &short_time, NULL) == EINVAL,
          "clock_nanosleep on the thread's own clock: EINVAL", "allowed");
    spinning = 1;
    pthread_t spinner;
    pthread_create(&spinner, NULL, spin, NULL);
    long long used = now_on(CLOCK_PROCESS_CPUTIME_ID);
    struct timespec some = timespec_of(30 * MS);
    int result = clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &some, NULL);
    long long spent = now_on(CLOCK_PROCESS_CPUTIME_ID) - used;
    spinning = 0;
    pthread_join(spinner, NULL);
    check(result == 0 && spent >= 30 * MS, "clock_nanosleep on the process's processor time",
          "result %d, %lld ns used", result, spent);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigaction(SIGALRM, &action, NULL);
    struct itimerval soon = {{0, 0}, {0, 30000}};
    setitimer(ITIMER_REAL, &soon, NULL);
    struct timespec long_time = {20, 0}, left = {0, 0};
    errno = 0;
    int slept = nanosleep(&long_time, &left);
    check(slept == -1 && errno == EINTR && left.tv_sec >= 5 && left.tv_sec < 20,
          "an interrupted nanosleep writes back the time left", "result %d, %ld s left", slept,
          (long)left.tv_sec);
    signal(SIGALRM, SIG_DFL);
}

/* POSIX timers are deleted by execve, interval timers are kept: the
 * program runs itself again with the ids, and the new image checks. */
static void check_timers_across_execve(void) {
    struct kernel_sigevent event;
    memset(&event, 0, sizeof event);
    event.notify = SIGEV_NONE;
    int id = -1;
    syscall(SYS_timer_create, CLOCK_MONOTONIC, &event, &id);
    struct itimerspec far = {{0, 0}, {100, 0}};
    syscall(SYS_timer_settime, id, 0, &far, NULL);
    pid_t child = fork();
    if (child == 0) {
        /* A forked child has no timers of its parent: it makes its own. */
        int own = -1;
        syscall(SYS_timer_create, CLOCK_MONOTONIC, &event, &own);
        syscall(SYS_timer_settime, own, 0, &far, NULL);
        id = own;
        struct itimerval interval = {{0, 0}, {100, 0}};
        setitimer(ITIMER_REAL, &interval, NULL);
        char id_text[16];
        snprintf(id_text, sizeof id_text, "%d", id);
        execl("/proc/self/exe", "timers", "after-exec", id_text, (char *)NULL);
        _exit(120);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "execve_deletes_posix_timers",
          "the new image saw status %#x (1: the POSIX timer survived, 2: the interval timer did not)", status);
    syscall(SYS_timer_delete, id);
}

/* In the new image: the POSIX timer is gone, ITIMER_REAL still runs. */
static int after_exec(int id) {
    struct itimerspec setting;
    if (syscall(SYS_timer_gettime, id, &setting) != -1 || errno != EINVAL) {
        return 1;
    }
    struct itimerval interval;
    getitimer(ITIMER_REAL, &interval);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    return interval.it_value.tv_sec > 0 ? 0 : 2;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "after-exec") == 0) {
        return after_exec(atoi(argv[2]));
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    check_timers_across_execve();
    check_periodic_timer_overruns();
    check_timer_handler_on_the_wall_clock();
    check_timer_to_one_thread();
    check_thread_notification();
    check_sigev_none_and_errors();
    check_processor_time_timer();
    check_interval_timers();
    check_timerfd();
    check_sleeps();
    printf("%d checks failed\n", failures);
    return failures;
}
