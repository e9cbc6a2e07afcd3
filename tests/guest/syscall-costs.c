/* A benchmark, not a test: the cost of a cheap system call (getppid, made
 * with syscall() so no C library caches it), of a futex round trip between
 * two threads (one wakes the other, which wakes it back) and of a pipe
 * round trip between two threads (a byte there and back). Prints
 * "name: N ns" lines, the best of three runs. Its optional argument is
 * the round trips per run (default 20000; the system calls are ten times
 * as many). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* From linux/futex.h, which musl builds do not have. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static long rounds;
static _Atomic int turn;

static void futex_wait(_Atomic int *word, int value) {
    while (atomic_load(word) == value)
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

/* The other side of the futex ping-pong: waits for turn 1, hands back 0. */
static void *futex_partner(void *argument) {
    (void)argument;
    for (long i = 0; i < rounds; i++) {
        futex_wait(&turn, 0);
        atomic_store(&turn, 0);
        futex_wake(&turn);
    }
    return NULL;
}

static double futex_round_trip(void) {
    atomic_store(&turn, 0);
    pthread_t thread;
    pthread_create(&thread, NULL, futex_partner, NULL);
    int64_t start = monotonic_ns();
    for (long i = 0; i < rounds; i++) {
        atomic_store(&turn, 1);
        futex_wake(&turn);
        futex_wait(&turn, 1);
    }
    int64_t elapsed = monotonic_ns() - start;
    pthread_join(thread, NULL);
    return (double)elapsed / rounds;
}

static int there[2], back[2];

static void *pipe_partner(void *argument) {
    (void)argument;
    char byte;
    for (long i = 0; i < rounds; i++) {
        if (read(there[0], &byte, 1) != 1 || write(back[1], &byte, 1) != 1)
            break;
    }
    return NULL;
}

static double pipe_round_trip(void) {
    pthread_t thread;
    pthread_create(&thread, NULL, pipe_partner, NULL);
    char byte = 'x';
    int64_t start = monotonic_ns();
    for (long i = 0; i < rounds; i++) {
        if (write(there[1], &byte, 1) != 1 || read(back[0], &byte, 1) != 1)
            break;
    }
    int64_t elapsed = monotonic_ns() - start;
    pthread_join(thread, NULL);
    return (double)elapsed / rounds;
}

static double cheap_call(void) {
    long calls = rounds * 10;
    int64_t start = monotonic_ns();
    for (long i = 0; i < calls; i++)
        syscall(SYS_getppid);
    return (double)(monotonic_ns() - start) / calls;
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atol(argv[1]) : 20000;
    if (rounds <= 0 || pipe(there) != 0 || pipe(back) != 0)
        return 1;
    const char *names[] = {"getppid system call", "futex round trip", "pipe round trip"};
    double (*measures[])(void) = {cheap_call, futex_round_trip, pipe_round_trip};
    for (int which = 0; which < 3; which++) {
        double best = 0;
        for (int run = 0; run < 3; run++) {
            double figure = measures[which]();
            if (run == 0 || figure < best)
                best = figure;
        }
        printf("%s: %.1f ns\n", names[which], best);
    }
    return 0;
}
