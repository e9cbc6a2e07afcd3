/* Checks what setting the wall clock does to timers and sleeps, as Linux
 * does it: a POSIX timer armed at an absolute wall-clock time expires at
 * once when the clock is set past it and waits on when the clock is set
 * back, while a relative one keeps its time; a timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET reads ECANCELED after a step; an absolute
 * clock_nanosleep ends when the clock is set past its time. It sets the
 * machine's clock, so it runs only as root and only in rosv (on a host
 * it would move the host's clock). One line per check; exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

#define SECOND 1000000000LL

static long long wall_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec * SECOND + now.tv_nsec;
}

static int set_wall_ns(long long ns) {
    struct timespec time = {.tv_sec = ns / SECOND, .tv_nsec = ns % SECOND};
    return clock_settime(CLOCK_REALTIME, &time);
}

static struct timespec spec(long long ns) {
    struct timespec time = {.tv_sec = ns / SECOND, .tv_nsec = ns % SECOND};
    return time;
}

static timer_t signalling_timer(int signal) {
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = signal;
    timer_t timer;
    if (timer_create(CLOCK_REALTIME, &event, &timer) != 0) {
        return (timer_t)0;
    }
    return timer;
}

/* Whether `signal` (blocked) arrives within `ns`. */
static int arrives(int signal, long long ns) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    struct timespec wait = spec(ns);
    return sigtimedwait(&set, NULL, &wait) == signal;
}

static long long left_ns(timer_t timer) {
    struct itimerspec setting;
    if (timer_gettime(timer, &setting) != 0) {
        return -1;
    }
    return setting.it_value.tv_sec * SECOND + setting.it_value.tv_nsec;
}

static void check_timers(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);

    /* Forward past an absolute timer: it expires at once. */
    timer_t absolute = signalling_timer(SIGUSR1);
    timer_t relative = signalling_timer(SIGUSR2);
    struct itimerspec setting = {.it_value = spec(wall_ns() + 100 * SECOND)};
    check(timer_settime(absolute, TIMER_ABSTIME, &setting, NULL) == 0, "arm_absolute", "timer_settime");
    setting.it_value = spec(100 * SECOND);
    check(timer_settime(relative, 0, &setting, NULL) == 0, "arm_relative", "timer_settime");
    check(set_wall_ns(wall_ns() + 200 * SECOND) == 0, "step_forward", "clock_settime");
    check(arrives(SIGUSR1, 5 * SECOND), "absolute_expires_after_step", "no signal within 5 s");
    long long left = left_ns(relative);
    check(left > 90 * SECOND, "relative_keeps_its_time", "%lld ns left", left);
    check(!arrives(SIGUSR2, SECOND / 10), "relative_not_expired", "expired");

    /* Back before an absolute timer: it waits on, by the clock. */
    setting.it_value = spec(wall_ns() + SECOND);
    check(timer_settime(absolute, TIMER_ABSTIME, &setting, NULL) == 0, "arm_absolute_again", "timer_settime");
    check(set_wall_ns(wall_ns() - 1000 * SECOND) == 0, "step_back", "clock_settime");
    check(!arrives(SIGUSR1, 2 * SECOND), "absolute_waits_after_step_back", "expired");
    left = left_ns(absolute);
    check(left > 900 * SECOND, "absolute_time_left_follows", "%lld ns left", left);
    left = left_ns(relative);
    check(left > 85 * SECOND && left <= 100 * SECOND, "relative_unmoved_by_step_back", "%lld ns left", left);
    timer_delete(absolute);
    timer_delete(relative);
}

static void check_timerfd(void) {
    int fd = timerfd_create(CLOCK_REALTIME, 0);
    struct itimerspec setting = {.it_value = spec(wall_ns() + 1000 * SECOND)};
    check(timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &setting, NULL) == 0, "timerfd_arm",
          "timerfd_settime");
    check(set_wall_ns(wall_ns() + SECOND) == 0, "timerfd_step", "clock_settime");
    uint64_t count = 0;
    check(read(fd, &count, sizeof count) == -1 && errno == ECANCELED, "timerfd_cancelled", "not ECANCELED");
    int flags = TFD_NONBLOCK;
    int other = timerfd_create(CLOCK_REALTIME, flags);
    check(timerfd_settime(other, TFD_TIMER_ABSTIME, &setting, NULL) == 0, "timerfd_arm_plain", "timerfd_settime");
    check(set_wall_ns(wall_ns() + SECOND) == 0, "timerfd_step_again", "clock_settime");
    check(read(other, &count, sizeof count) == -1 && errno == EAGAIN, "timerfd_without_cancel", "not EAGAIN");
    close(fd);
    close(other);
}

static volatile int slept;

static void *sleep_until(void *target) {
    struct timespec time = spec(*(long long *)target);
    slept = clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &time, NULL) == 0 ? 1 : -1;
    return NULL;
}

static void check_absolute_sleep(void) {
    long long target = wall_ns() + 1000 * SECOND;
    pthread_t thread;
    check(pthread_create(&thread, NULL, sleep_until, &target) == 0, "sleeper", "pthread_create");
    struct timespec pause = spec(SECOND / 5);
    nanosleep(&pause, NULL);
    check(slept == 0, "sleeping", "woke early");
    check(set_wall_ns(target + SECOND) == 0, "sleep_step", "clock_settime");
    for (int tries = 0; tries < 50 && slept == 0; tries++) {
        nanosleep(&pause, NULL);
    }
    check(slept == 1, "sleep_ends_at_step", "state %d", slept);
    if (slept != 0) {
        pthread_join(thread, NULL);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct utsname system;
    uname(&system);
    if (getuid() != 0 || strstr(system.release, "rosv") == NULL) {
        printf("SKIPPED clock-step: sets the machine's clock: root in rosv only\n0 checks failed\n");
        return 0;
    }
    check_timers();
    check_timerfd();
    check_absolute_sleep();
    printf("%d checks failed\n", failures);
    return failures;
}
