/* A benchmark, not a test: (a) two threads play ping-pong through two futex
 * words for N round trips (argv[1], default 20000) and the time per switch
 * is reported (a round trip is two switches); (b) the cost of
 * clock_gettime(CLOCK_MONOTONIC) over M calls (argv[2], default 1000000).
 * Prints "context switch: <ns> ns" and "clock_gettime: <ns> ns", exits 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* From <linux/futex.h>, which musl-gcc cannot see. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define WARMUP 100

/* ping: main to partner, pong: partner to main; 1 means "your turn". */
static atomic_int ping, pong;
static long round_trips;

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void wait_turn(atomic_int *word) {
    /* FUTEX_WAIT returns at once if the word is no longer 0. */
    while (atomic_load(word) == 0)
        syscall(SYS_futex, word, FUTEX_WAIT, 0, NULL, NULL, 0);
    atomic_store(word, 0);
}

static void give_turn(atomic_int *word) {
    atomic_store(word, 1);
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void *partner(void *argument) {
    (void)argument;
    for (long i = 0; i < WARMUP + round_trips; i++) {
        wait_turn(&ping);
        give_turn(&pong);
    }
    return NULL;
}

static long argument(int argc, char **argv, int index, long fallback) {
    long value = argc > index ? atol(argv[index]) : fallback;
    return value > 0 ? value : fallback;
}

int main(int argc, char **argv) {
    round_trips = argument(argc, argv, 1, 20000);
    long calls = argument(argc, argv, 2, 1000000);

    pthread_t thread;
    if (pthread_create(&thread, NULL, partner, NULL) != 0) {
        fprintf(stderr, "cannot create a thread\n");
        return 1;
    }
    for (int i = 0; i < WARMUP; i++) {
        give_turn(&ping);
        wait_turn(&pong);
    }
    int64_t start = monotonic_ns();
    for (long i = 0; i < round_trips; i++) {
        give_turn(&ping);
        wait_turn(&pong);
    }
    int64_t elapsed = monotonic_ns() - start;
    pthread_join(thread, NULL);
    printf("context switch: %.1f ns\n", (double)elapsed / (2.0 * round_trips));

    struct timespec now;
    start = monotonic_ns();
    for (long i = 0; i < calls; i++)
        clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed = monotonic_ns() - start;
    printf("clock_gettime: %.1f ns\n", (double)elapsed / calls);
    return 0;
}
