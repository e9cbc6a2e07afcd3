/* Checks that calls which block end when Linux ends them: receive
 * timeouts (and the values Linux refuses), splice and tee waiting on
 * pipes, a writer blocked when its reader goes, and futex waits woken
 * with a count of 0 or after a copy-on-write break. Every blocking call
 * runs under a watchdog of its own, so a hang shows as a failed check
 * (EINTR) instead of a stuck test. Passes on Linux too. Prints one line
 * per check ("ok <name>" or "FAIL <name>: <why>") and exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* From linux/futex.h, which musl builds do not have. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128

/* The watchdog: a call of the main thread still blocked `seconds` after
 * `watchdog(seconds)` is interrupted by SIGALRM (a handler without
 * SA_RESTART), so it fails with EINTR; `watchdog(0)` disarms it. A thread
 * keeps the time, so the check needs no timer system calls. */
static void on_alarm(int signal_number) { (void)signal_number; }

static pthread_t main_thread;
static volatile double watchdog_deadline;

static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

static void watchdog(unsigned seconds) { watchdog_deadline = seconds ? now_seconds() + seconds : 0; }

static void *keep_watch(void *argument) {
    (void)argument;
    for (;;) {
        usleep(20000);
        double deadline = watchdog_deadline;
        if (deadline != 0 && now_seconds() > deadline) {
            watchdog_deadline = 0;
            pthread_kill(main_thread, SIGALRM);
        }
    }
    return NULL;
}

static void install_watchdog(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    main_thread = pthread_self();
    pthread_t thread;
    pthread_create(&thread, NULL, keep_watch, NULL);
}

/* Joins `thread` if it ends within five seconds (pthread_join itself
 * goes back to waiting after a signal); whether it did. */
static int joined(pthread_t thread) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    return pthread_timedjoin_np(thread, NULL, &deadline) == 0;
}

static void check_receive_timeouts(void) {
    int pair[2];
    char buffer[8];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "timeout pair", "socketpair");
    struct timeval bad = {1, 1000000};
    check(setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad) == -1 && errno == EDOM,
          "SO_RCVTIMEO microseconds past a second EDOM", "accepted");
    bad.tv_usec = -1;
    check(setsockopt(pair[0], SOL_SOCKET, SO_SNDTIMEO, &bad, sizeof bad) == -1 && errno == EDOM,
          "SO_SNDTIMEO negative microseconds EDOM", "accepted");
    struct timeval good = {1, 0};
    check(setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &good, 8) == -1 && errno == EINVAL,
          "SO_RCVTIMEO short value EINVAL", "accepted");
    /* Negative seconds: accepted, and the socket then never waits. */
    struct timeval negative = {-1, 0};
    check(setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &negative, sizeof negative) == 0,
          "SO_RCVTIMEO negative seconds accepted", "refused");
    struct timeval read_back = {5, 5};
    socklen_t length = sizeof read_back;
    getsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &read_back, &length);
    check(read_back.tv_sec == 0 && read_back.tv_usec == 0, "negative SO_RCVTIMEO reads as zero", "%ld.%06ld",
          (long)read_back.tv_sec, (long)read_back.tv_usec);
    watchdog(5);
    double start = now_seconds();
    ssize_t got = recv(pair[0], buffer, sizeof buffer, 0);
    watchdog(0);
    check(got == -1 && errno == EAGAIN && now_seconds() - start < 2, "negative SO_RCVTIMEO does not wait",
          "recv gave %zd", got);
    struct timeval short_limit = {0, 100000};
    setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &short_limit, sizeof short_limit);
    watchdog(5);
    start = now_seconds();
    got = recv(pair[0], buffer, sizeof buffer, 0);
    double waited = now_seconds() - start;
    watchdog(0);
    check(got == -1 && errno == EAGAIN && waited >= 0.09 && waited < 3, "SO_RCVTIMEO ends the wait",
          "recv gave %zd after %.2f s", got, waited);

    /* The send side: a full buffer and SO_SNDTIMEO. */
    struct timeval send_limit = {0, 100000};
    setsockopt(pair[0], SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
    static char chunk[1 << 16];
    watchdog(10);
    ssize_t sent;
    while ((sent = send(pair[0], chunk, sizeof chunk, 0)) > 0)
        ;
    watchdog(0);
    check(sent == -1 && errno == EAGAIN, "SO_SNDTIMEO ends a send into a full buffer", "send gave %zd", sent);

    close(pair[0]);
    close(pair[1]);
}

static long splice_(int in, int out, size_t length, unsigned flags) {
    return syscall(SYS_splice, in, NULL, out, NULL, length, flags);
}

static long tee_(int in, int out, size_t length, unsigned flags) {
    return syscall(SYS_tee, in, out, length, flags);
}

/* A helper thread that acts on a pipe after 100 ms: writes a byte into
 * `fd`, closes it, or reads everything from it. */
enum action { WRITE_BYTE, CLOSE_END, DRAIN };

struct delayed {
    int fd;
    enum action action;
};

static void *act_later(void *argument) {
    struct delayed *delayed = argument;
    usleep(100000);
    static char sink[1 << 16];
    switch (delayed->action) {
    case WRITE_BYTE:
        write(delayed->fd, "w", 1);
        break;
    case CLOSE_END:
        close(delayed->fd);
        break;
    case DRAIN:
        read(delayed->fd, sink, sizeof sink);
        break;
    }
    return NULL;
}

static pthread_t later(struct delayed *delayed) {
    pthread_t thread;
    pthread_create(&thread, NULL, act_later, delayed);
    return thread;
}

/* Fills a pipe's write end until it would block. */
static void fill(int fd) {
    static char chunk[4096];
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    while (write(fd, chunk, sizeof chunk) > 0)
        ;
    fcntl(fd, F_SETFL, flags);
}

static void check_splice_and_tee(void) {
    int source[2], target[2];
    char byte;
    check(pipe(source) == 0 && pipe(target) == 0, "splice pipes", "pipe");
    signal(SIGPIPE, SIG_IGN);

    /* splice from an empty pipe waits for a writer's data. */
    struct delayed delayed = {source[1], WRITE_BYTE};
    pthread_t thread = later(&delayed);
    watchdog(5);
    long moved = splice_(source[0], target[1], 16, 0);
    watchdog(0);
    check(moved == 1 && read(target[0], &byte, 1) == 1 && byte == 'w', "splice waits for data",
          "moved %ld", moved);
    check(joined(thread), "splice: writer thread", "stuck");

    /* tee from an empty pipe waits for data too, and leaves it there. */
    thread = later(&delayed);
    watchdog(5);
    moved = tee_(source[0], target[1], 16, 0);
    watchdog(0);
    check(moved == 1 && read(target[0], &byte, 1) == 1 && read(source[0], &byte, 1) == 1, "tee waits for data",
          "moved %ld", moved);
    check(joined(thread), "tee: writer thread", "stuck");

    /* tee into a full pipe waits for room. */
    write(source[1], "t", 1);
    fill(target[1]);
    struct delayed drain = {target[0], DRAIN};
    thread = later(&drain);
    watchdog(5);
    moved = tee_(source[0], target[1], 16, 0);
    watchdog(0);
    check(moved == 1, "tee waits for room", "moved %ld", moved);
    check(joined(thread), "tee: reader thread", "stuck");
    read(source[0], &byte, 1);
    while (read(target[0], &byte, 1) == 1 && byte != 't')
        ;

    /* splice into a full pipe whose reader goes: EPIPE. */
    write(source[1], "s", 1);
    fill(target[1]);
    struct delayed close_reader = {target[0], CLOSE_END};
    thread = later(&close_reader);
    watchdog(5);
    moved = splice_(source[0], target[1], 16, 0);
    watchdog(0);
    check(moved == -1 && errno == EPIPE, "splice into a pipe whose reader goes EPIPE", "moved %ld", moved);
    check(joined(thread), "splice: closing thread", "stuck");
    close(target[1]);
    read(source[0], &byte, 1);

    /* splice and tee from an empty pipe whose last writer goes: 0. */
    check(pipe(target) == 0, "second target", "pipe");
    struct delayed close_writer = {source[1], CLOSE_END};
    thread = later(&close_writer);
    watchdog(5);
    moved = splice_(source[0], target[1], 16, 0);
    watchdog(0);
    check(moved == 0, "splice from a pipe whose writer goes gives 0", "moved %ld", moved);
    check(joined(thread), "splice: closing writer", "stuck");
    close(source[0]);
    check(pipe(source) == 0, "second source", "pipe");
    close_writer.fd = source[1];
    thread = later(&close_writer);
    watchdog(5);
    moved = tee_(source[0], target[1], 16, 0);
    watchdog(0);
    check(moved == 0, "tee from a pipe whose writer goes gives 0", "moved %ld", moved);
    check(joined(thread), "tee: closing writer", "stuck");
    close(source[0]);
    close(target[0]);
    close(target[1]);
}

struct pipe_writer {
    int fd;
    ssize_t first, second;
    int second_errno;
};

static void *write_into_pipe(void *argument) {
    struct pipe_writer *writer = argument;
    static char chunk[1 << 20];
    writer->first = write(writer->fd, chunk, sizeof chunk);
    writer->second = write(writer->fd, chunk, sizeof chunk);
    writer->second_errno = errno;
    return NULL;
}

static volatile sig_atomic_t pipe_signals;
static void on_pipe(int signal_number) {
    (void)signal_number;
    pipe_signals++;
}

/* A writer blocked in the middle of a large write when the reader closes:
 * it returns what it wrote, its next write fails with EPIPE and, unless
 * ignored, raises SIGPIPE. */
static void check_blocked_writer(int ignored) {
    const char *how = ignored ? "SIGPIPE ignored" : "SIGPIPE caught";
    int pipes[2];
    check(pipe(pipes) == 0, "writer pipe", "%s", how);
    pipe_signals = 0;
    if (ignored) {
        signal(SIGPIPE, SIG_IGN);
    } else {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = on_pipe;
        sigaction(SIGPIPE, &action, NULL);
    }
    struct pipe_writer writer = {pipes[1], 0, 0, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, write_into_pipe, &writer);
    usleep(200000);
    char buffer[16];
    read(pipes[0], buffer, sizeof buffer);
    close(pipes[0]);
    check(joined(thread), "a blocked writer ends when its reader goes", "%s: stuck", how);
    check(writer.first > 0 && writer.first < (1 << 20), "a blocked writer returns what it wrote",
          "%s: first write %zd", how, writer.first);
    check(writer.second == -1 && writer.second_errno == EPIPE, "the next write fails with EPIPE",
          "%s: second write %zd (errno %d)", how, writer.second, writer.second_errno);
    if (!ignored)
        check(pipe_signals >= 1, "the next write raises SIGPIPE", "%d signals", (int)pipe_signals);
    close(pipes[1]);
    signal(SIGPIPE, SIG_IGN);
}

struct futex_waiter {
    int *word;
    int operation;
    long result;
};

static void *wait_on_futex(void *argument) {
    struct futex_waiter *waiter = argument;
    waiter->result = syscall(SYS_futex, waiter->word, waiter->operation, 0, NULL, NULL, 0);
    return NULL;
}

/* Gives a thread just started the time to go to sleep on its futex. */
static void settle(void) { usleep(200000); }

static void check_futexes(void) {
    static int word;
    check(syscall(SYS_futex, &word, FUTEX_WAKE, 0, NULL, NULL, 0) == 0, "FUTEX_WAKE 0 with no waiter",
          "woke someone");
    /* Linux wakes one waiter for a count of 0 (it checks the count after
     * waking). */
    struct futex_waiter waiter = {&word, FUTEX_WAIT, -2};
    pthread_t thread;
    pthread_create(&thread, NULL, wait_on_futex, &waiter);
    settle();
    long woken = syscall(SYS_futex, &word, FUTEX_WAKE, 0, NULL, NULL, 0);
    int ended = joined(thread);
    if (!ended) {
        syscall(SYS_futex, &word, FUTEX_WAKE, 1, NULL, NULL, 0);
        pthread_join(thread, NULL);
    }
    check(ended && woken == 1 && waiter.result == 0, "FUTEX_WAKE 0 wakes one waiter", "woken %ld, ended %d",
          woken, ended);

    /* A wake after a copy-on-write break: a thread waits on a word in a
     * private page, a child shares the page copy-on-write, and the
     * parent's store copies it; the wake at the same address must still
     * find the waiter, as Linux keys private mappings by address. */
    for (int private = 0; private <= 1; private++) {
        const char *kind = private ? "FUTEX_PRIVATE_FLAG" : "shared futex";
        int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        check(page != MAP_FAILED, "copy-on-write page", "%s: mmap", kind);
        if (page == MAP_FAILED)
            continue;
        page[0] = 0;
        page[1] = 0;
        int operation = private ? FUTEX_WAIT | FUTEX_PRIVATE_FLAG : FUTEX_WAIT;
        struct futex_waiter cow_waiter = {page, operation, -2};
        pthread_create(&thread, NULL, wait_on_futex, &cow_waiter);
        settle();
        int ready[2];
        pipe(ready);
        pid_t child = fork();
        if (child == 0) {
            /* Holds the page shared until the parent has woken. */
            char byte;
            read(ready[0], &byte, 1);
            _exit(page[1] == 0 ? 0 : 1);
        }
        page[1] = 1;
        woken = syscall(SYS_futex, page, private ? FUTEX_WAKE | FUTEX_PRIVATE_FLAG : FUTEX_WAKE, 1, NULL, NULL, 0);
        ended = joined(thread);
        if (!ended) {
            page[0] = 1;
            syscall(SYS_futex, page, private ? FUTEX_WAKE | FUTEX_PRIVATE_FLAG : FUTEX_WAKE, 1, NULL, NULL, 0);
            pthread_join(thread, NULL);
        }
        write(ready[1], "x", 1);
        int status = -1;
        watchdog(5);
        pid_t reaped = waitpid(child, &status, 0);
        watchdog(0);
        check(child > 0 && ended && woken == 1 && cow_waiter.result == 0, "a wake after a copy-on-write break",
              "%s: woken %ld, ended %d", kind, woken, ended);
        check(reaped == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child keeps its copy of the page", "%s: status %#x", kind, status);
        close(ready[0]);
        close(ready[1]);
        munmap(page, 4096);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    install_watchdog();
    check_receive_timeouts();
    check_splice_and_tee();
    check_blocked_writer(1);
    check_blocked_writer(0);
    check_futexes();
    printf("%d checks failed\n", failures);
    return failures;
}
