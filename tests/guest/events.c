/* Checks eventfd and epoll between threads: counters and semaphores, waits
 * that other threads end, timeouts, level- and edge-triggered and one-shot
 * interests, descriptors closed while watched, nested instances, signals
 * that interrupt a wait, and Linux's errors. Prints one line per check
 * ("ok <name>" or "FAIL <name>: <why>") and exits with the number of failed
 * checks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1U << 28)
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000LL + now.tv_nsec / 1000000;
}

static void pause_ms(int milliseconds) {
    struct timespec pause = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static int watch(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event = {.events = events, .data.u64 = data};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

static void signal_counter(int fd, uint64_t value) {
    if (write(fd, &value, sizeof value) != sizeof value)
        perror("write to eventfd");
}

/* ---- eventfd ---- */

static void check_eventfd(void) {
    int fd = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t value = 4;
    check(fd >= 0 && write(fd, &value, 8) == 8, "eventfd2 and a write", "fd %d", fd);
    check(read(fd, &value, 8) == 8 && value == 7, "a read takes the whole count", "read %llu",
          (unsigned long long)value);
    check(read(fd, &value, 8) == -1 && errno == EAGAIN, "an empty non-blocking eventfd: EAGAIN", "no EAGAIN");
    check(read(fd, &value, 4) == -1 && errno == EINVAL, "reads shorter than 8 bytes: EINVAL", "no EINVAL");
    value = UINT64_MAX;
    check(write(fd, &value, 8) == -1 && errno == EINVAL, "writing 2^64-1: EINVAL", "no EINVAL");
    value = UINT64_MAX - 1;
    check(write(fd, &value, 8) == 8, "the count reaches 2^64-2", "failed");
    value = 1;
    check(write(fd, &value, 8) == -1 && errno == EAGAIN, "no room above 2^64-2: EAGAIN", "no EAGAIN");
    check((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "EFD_CLOEXEC", "not set");
    char link[64], target[64] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, target, sizeof target - 1);
    check(length > 0 && strcmp(target, "anon_inode:[eventfd]") == 0, "/proc/self/fd names an eventfd",
          "'%s'", target);
    close(fd);
    fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    int ones = 0;
    while (read(fd, &value, 8) == 8 && value == 1)
        ones++;
    check(ones == 2, "a semaphore hands out ones", "%d ones", ones);
    close(fd);
    check(eventfd(0, 0x80) == -1 && errno == EINVAL, "unknown eventfd flags: EINVAL", "no EINVAL");
}

static int counter_fd;
enum { WRITERS = 4, WRITES = 500 };

static void *count_up(void *argument) {
    (void)argument;
    for (int round = 0; round < WRITES; round++)
        signal_counter(counter_fd, 1);
    return NULL;
}

static void check_eventfd_between_threads(void) {
    counter_fd = eventfd(0, 0);
    pthread_t writers[WRITERS];
    for (int index = 0; index < WRITERS; index++)
        pthread_create(&writers[index], NULL, count_up, NULL);
    uint64_t total = 0, value;
    while (total < WRITERS * WRITES && read(counter_fd, &value, 8) == 8)
        total += value;
    for (int index = 0; index < WRITERS; index++)
        pthread_join(writers[index], NULL);
    check(total == WRITERS * WRITES, "blocking reads collect what 4 threads add", "total %llu",
          (unsigned long long)total);
    close(counter_fd);
}

/* ---- waits that other threads end ---- */

struct waiter {
    int epfd;
    int timeout_ms;
    volatile int is_waiting;
    volatile int is_done;
    int result;
    int error;
    struct epoll_event event;
};

static void *wait_for_events(void *argument) {
    struct waiter *waiter = argument;
    waiter->is_waiting = 1;
    waiter->result = epoll_wait(waiter->epfd, &waiter->event, 1, waiter->timeout_ms);
    waiter->error = errno;
    waiter->is_done = 1;
    return NULL;
}

/* Starts a thread waiting on `epfd` and gives it time to block. */
static pthread_t start_waiter(struct waiter *waiter, int epfd) {
    memset(waiter, 0, sizeof *waiter);
    waiter->epfd = epfd;
    waiter->timeout_ms = 10000;
    pthread_t thread;
    pthread_create(&thread, NULL, wait_for_events, waiter);
    while (!waiter->is_waiting)
        pause_ms(1);
    pause_ms(50);
    return thread;
}

static void check_wakeups(void) {
    int epfd = epoll_create1(EPOLL_CLOEXEC), fd = eventfd(0, 0), ends[2];
    pipe2(ends, O_NONBLOCK);
    watch(epfd, fd, EPOLLIN, 11);
    watch(epfd, ends[0], EPOLLIN, 12);
    struct waiter waiter;
    pthread_t thread = start_waiter(&waiter, epfd);
    long long start = now_ms();
    signal_counter(fd, 1);
    pthread_join(thread, NULL);
    check(waiter.result == 1 && waiter.event.data.u64 == 11 && now_ms() - start < 10000,
          "a write to an eventfd ends another thread's epoll_wait", "result %d data %llu", waiter.result,
          (unsigned long long)waiter.event.data.u64);
    uint64_t value;
    read(fd, &value, 8);
    thread = start_waiter(&waiter, epfd);
    write(ends[1], "x", 1);
    pthread_join(thread, NULL);
    check(waiter.result == 1 && waiter.event.data.u64 == 12 && waiter.event.events == EPOLLIN,
          "a write to a pipe ends another thread's epoll_wait", "result %d", waiter.result);
    close(ends[1]);
    struct epoll_event event;
    check(epoll_wait(epfd, &event, 1, 0) == 1 && (event.events & EPOLLHUP) && event.data.u64 == 12,
          "the writer's close hangs the reader up", "events %#x", event.events);
    close(ends[0]);
    /* A nested instance: the outer one's waiter wakes. */
    int outer = epoll_create1(0);
    watch(outer, epfd, EPOLLIN, 13);
    thread = start_waiter(&waiter, outer);
    signal_counter(fd, 1);
    pthread_join(thread, NULL);
    check(waiter.result == 1 && waiter.event.data.u64 == 13, "nested: a write wakes the outer instance's waiter",
          "result %d", waiter.result);
    struct pollfd entry = {.fd = epfd, .events = POLLIN};
    check(poll(&entry, 1, 0) == 1 && entry.revents == POLLIN, "poll sees an instance with events", "revents %#x",
          entry.revents);
    check(watch(epfd, outer, EPOLLIN, 0) == -1 && errno == ELOOP, "a loop of instances: ELOOP", "no ELOOP");
    close(outer);
    close(epfd);
    close(fd);
}

/* ---- timeouts ---- */

static void check_timeouts(void) {
    int epfd = epoll_create(1);
    struct epoll_event event;
    long long start = now_ms();
    /* "At once" allows for a loaded host stalling the emulated machine. */
    check(epoll_wait(epfd, &event, 1, 0) == 0 && now_ms() - start < 10000, "timeout 0 returns at once",
          "took %lld ms", now_ms() - start);
    start = now_ms();
    int result = epoll_wait(epfd, &event, 1, 50);
    long long elapsed = now_ms() - start;
    check(result == 0 && elapsed >= 50, "a 50 ms timeout waits 50 ms", "result %d after %lld ms", result,
          elapsed);
    struct timespec timeout = {0, 30 * 1000000};
    start = now_ms();
    result = syscall(SYS_epoll_pwait2, epfd, &event, 1, &timeout, NULL, 8);
    elapsed = now_ms() - start;
    check(result == 0 && elapsed >= 30, "epoll_pwait2 waits out a timespec", "result %d after %lld ms", result,
          elapsed);
    sigset_t mask;
    sigemptyset(&mask);
    check(epoll_pwait(epfd, &event, 1, 0, &mask) == 0, "epoll_pwait with a signal mask", "failed");
    close(epfd);
}

/* ---- level, edge and one-shot ---- */

static int wait_now(int epfd, struct epoll_event *events, int count) { return epoll_wait(epfd, events, count, 0); }

static void check_triggers(void) {
    int level = epoll_create1(0), edge = epoll_create1(0), ends[2];
    pipe2(ends, O_NONBLOCK);
    watch(level, ends[0], EPOLLIN, 1);
    watch(edge, ends[0], EPOLLIN | EPOLLET, 2);
    struct epoll_event events[4];
    write(ends[1], "ab", 2);
    check(wait_now(level, events, 4) == 1 && wait_now(level, events, 4) == 1,
          "level-triggered: reported while data waits", "not twice");
    check(wait_now(edge, events, 4) == 1 && wait_now(edge, events, 4) == 0,
          "edge-triggered: reported once per change", "not once");
    write(ends[1], "c", 1);
    check(wait_now(edge, events, 4) == 1, "edge-triggered: a new write is reported", "not reported");
    char buffer[8];
    read(ends[0], buffer, sizeof buffer);
    check(wait_now(level, events, 4) == 0, "level-triggered: nothing once drained", "still reported");
    int oneshot = epoll_create1(0);
    watch(oneshot, ends[1], EPOLLOUT | EPOLLONESHOT, 3);
    check(wait_now(oneshot, events, 4) == 1 && wait_now(oneshot, events, 4) == 0,
          "one-shot: reported once", "not once");
    struct epoll_event rearm = {.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = 4};
    epoll_ctl(oneshot, EPOLL_CTL_MOD, ends[1], &rearm);
    check(wait_now(oneshot, events, 4) == 1 && events[0].data.u64 == 4, "one-shot: EPOLL_CTL_MOD re-arms",
          "not re-armed");
    close(oneshot);
    close(level);
    close(edge);
    close(ends[0]);
    close(ends[1]);
}

/* ---- closing watched descriptors, errors ---- */

static void check_closing_and_errors(void) {
    int epfd = epoll_create1(0), fd = eventfd(1, 0);
    watch(epfd, fd, EPOLLIN, 5);
    int copy = dup(fd);
    close(fd);
    struct epoll_event event;
    check(wait_now(epfd, &event, 1) == 1, "a duplicate keeps the interest alive", "not reported");
    close(copy);
    check(wait_now(epfd, &event, 1) == 0, "closing the last descriptor ends the interest", "still reported");
    check(epoll_ctl(epfd, EPOLL_CTL_DEL, copy, NULL) == -1 && errno == EBADF, "EPOLL_CTL_DEL of a closed fd: EBADF",
          "no EBADF");
    fd = eventfd(0, 0);
    check(watch(epfd, fd, EPOLLIN, 0) == 0 && watch(epfd, fd, EPOLLIN, 0) == -1 && errno == EEXIST,
          "adding twice: EEXIST", "no EEXIST");
    int other = eventfd(0, 0);
    struct epoll_event change = {.events = EPOLLIN};
    check(epoll_ctl(epfd, EPOLL_CTL_MOD, other, &change) == -1 && errno == ENOENT, "changing what is not watched: ENOENT",
          "no ENOENT");
    check(watch(epfd, epfd, EPOLLIN, 0) == -1 && errno == EINVAL, "watching itself: EINVAL", "no EINVAL");
    check(watch(fd, other, EPOLLIN, 0) == -1 && errno == EINVAL, "an eventfd as the instance: EINVAL", "no EINVAL");
    check(epoll_ctl(epfd, 9, other, &change) == -1 && errno == EINVAL, "an unknown operation: EINVAL", "no EINVAL");
    check(watch(epfd, 999, EPOLLIN, 0) == -1 && errno == EBADF, "watching a closed descriptor: EBADF", "no EBADF");
    int file = open("/tmp/events-plain", O_CREAT | O_RDWR, 0644);
    check(file >= 0 && watch(epfd, file, EPOLLIN, 0) == -1 && errno == EPERM, "watching a regular file: EPERM",
          "no EPERM");
    check(watch(epfd, other, EPOLLIN | EPOLLEXCLUSIVE, 0) == 0, "EPOLLEXCLUSIVE is accepted", "refused");
    check(epoll_wait(epfd, &event, 0, 0) == -1 && errno == EINVAL, "maxevents 0: EINVAL", "no EINVAL");
    /* Through a volatile pointer: the compiler must not see the bad buffers. */
    struct epoll_event *volatile nowhere = NULL;
    check(epoll_wait(epfd, nowhere, 1, 0) == 0, "nothing ready: the buffer is not touched", "failed");
    signal_counter(fd, 1);
    nowhere = (struct epoll_event *)16;
    check(epoll_wait(epfd, nowhere, 1, 0) == -1 && errno == EFAULT, "a bad event buffer: EFAULT", "no EFAULT");
    /* The system call itself: some C libraries check the size first. */
    check(syscall(SYS_epoll_create, 0) == -1 && errno == EINVAL, "epoll_create(0): EINVAL", "no EINVAL");
    check(epoll_create1(1) == -1 && errno == EINVAL, "unknown epoll_create1 flags: EINVAL", "no EINVAL");
    close(file);
    unlink("/tmp/events-plain");
    close(other);
    close(fd);
    close(epfd);
}

/* ---- signals ---- */

static volatile sig_atomic_t handled;
static void on_signal(int signal) { handled += signal == SIGUSR1; }

static void check_interruption(void) {
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    action.sa_flags = SA_RESTART; /* epoll_wait is never restarted all the same */
    sigaction(SIGUSR1, &action, NULL);
    int epfd = epoll_create1(0);
    struct waiter waiter;
    pthread_t thread = start_waiter(&waiter, epfd);
    /* A signal that lands before the wait starts only runs the handler:
     * send until the wait ends. */
    for (int attempt = 0; attempt < 100 && !waiter.is_done; attempt++) {
        pthread_kill(thread, SIGUSR1);
        pause_ms(50);
    }
    pthread_join(thread, NULL);
    check(waiter.result == -1 && waiter.error == EINTR && handled > 0, "a signal interrupts epoll_wait: EINTR",
          "result %d errno %d, %d handled", waiter.result, waiter.error, (int)handled);
    close(epfd);
}

int main(void) {
    check_eventfd();
    check_eventfd_between_threads();
    check_wakeups();
    check_timeouts();
    check_triggers();
    check_closing_and_errors();
    check_interruption();
    printf("%d checks failed\n", failures);
    return failures;
}
