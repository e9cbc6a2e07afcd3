/* Wake-ups under preemption: `wakeups [SECONDS]` (default 8).
 *
 * Spinner threads keep every processor busy in application code, so that
 * each processor's time slices end by its timer; pairs of threads hand a
 * turn back and forth across processors with futexes, each spending a
 * while in the kernel (a large read) before handing over, so that slices
 * end while a thread is in a system call and woken threads are queued on
 * busy processors; sleeper threads wait for short timeouts. A watchdog
 * fails the run as soon as any thread makes no progress for STALL_SECONDS:
 * a lost wake-up, a lost timer interrupt or a starved run queue all show
 * so, instead of as a machine that never ends.
 *
 * Prints one check per kind of thread, then "<n> checks failed". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* From <linux/futex.h>, which musl's compiler wrapper cannot see. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

#define STALL_SECONDS 10
#define MAX_SPINNERS 16
#define PAIRS 3
#define SLEEPERS 3
#define MAX_THREADS (MAX_SPINNERS + 2 * PAIRS + SLEEPERS)
#define READ_SIZE (512 * 1024)

enum kind { SPINNER, PASSER, SLEEPER };
static const char *const kind_names[] = {"spinner", "passer", "sleeper"};

struct worker {
    enum kind kind;
    int index;
    _Atomic uint64_t progress;
    pthread_t thread;
};

/* A pair's turn: 0 or 1, the side that may go. */
struct pair {
    _Atomic uint32_t turn;
};

static struct worker workers[MAX_THREADS];
static struct pair pairs[PAIRS];
static int worker_count;
static atomic_int stop;

static int64_t now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* A pair's turn once the run is over: neither side's. */
#define TURN_STOPPED 2

/* Waits without a time limit: a lost wake-up must stall the thread, for
 * the watchdog to see. */
static void futex_wait(_Atomic uint32_t *word, uint32_t value) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static void *spin(void *argument) {
    struct worker *self = argument;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (volatile int i = 0; i < 10000; i++) {
        }
        atomic_fetch_add_explicit(&self->progress, 1, memory_order_relaxed);
    }
    return NULL;
}

static void *pass(void *argument) {
    struct worker *self = argument;
    struct pair *pair = &pairs[self->index / 2];
    uint32_t side = (uint32_t)(self->index % 2);
    char *buffer = malloc(READ_SIZE);
    int zero = open("/dev/zero", O_RDONLY);
    if (buffer == NULL || zero < 0) {
        perror("wakeups: passer setup");
        exit(2);
    }
    for (;;) {
        uint32_t turn = atomic_load(&pair->turn);
        if (turn == TURN_STOPPED) {
            break;
        }
        if (turn != side) {
            futex_wait(&pair->turn, turn);
            continue;
        }
        /* Time in the kernel, where a slice may end. */
        if (read(zero, buffer, READ_SIZE) < 0) {
            perror("wakeups: read");
            exit(2);
        }
        /* Hand over, unless the run ended meanwhile. */
        uint32_t expected = side;
        if (!atomic_compare_exchange_strong(&pair->turn, &expected, 1 - side)) {
            break;
        }
        futex_wake(&pair->turn, 1);
        atomic_fetch_add_explicit(&self->progress, 1, memory_order_relaxed);
    }
    close(zero);
    free(buffer);
    return NULL;
}

static void *nap(void *argument) {
    struct worker *self = argument;
    struct timespec pause = {0, 200 * 1000 + self->index * 50 * 1000};
    while (!atomic_load(&stop)) {
        nanosleep(&pause, NULL);
        atomic_fetch_add_explicit(&self->progress, 1, memory_order_relaxed);
    }
    return NULL;
}

static void start(enum kind kind, int index) {
    struct worker *worker = &workers[worker_count++];
    worker->kind = kind;
    worker->index = index;
    void *(*entry)(void *) = kind == SPINNER ? spin : kind == PASSER ? pass : nap;
    if (pthread_create(&worker->thread, NULL, entry, worker) != 0) {
        perror("wakeups: pthread_create");
        exit(2);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int seconds = argc > 1 ? atoi(argv[1]) : 8;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int spinners = cpus < 1 ? 1 : cpus > MAX_SPINNERS ? MAX_SPINNERS : (int)cpus;
    printf("wakeups: %d s, %d spinners, %d passing pairs, %d sleepers\n", seconds, spinners, PAIRS, SLEEPERS);
    for (int i = 0; i < spinners; i++) {
        start(SPINNER, i);
    }
    for (int i = 0; i < 2 * PAIRS; i++) {
        start(PASSER, i);
    }
    for (int i = 0; i < SLEEPERS; i++) {
        start(SLEEPER, i);
    }

    uint64_t seen[MAX_THREADS] = {0};
    int64_t since[MAX_THREADS];
    int64_t begin = now_ns();
    for (int i = 0; i < worker_count; i++) {
        since[i] = begin;
    }
    int stalled = -1;
    int64_t worst_ns = 0;
    while (stalled < 0 && now_ns() - begin < (int64_t)seconds * 1000000000) {
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
        int64_t now = now_ns();
        for (int i = 0; i < worker_count; i++) {
            uint64_t progress = atomic_load(&workers[i].progress);
            if (progress != seen[i]) {
                seen[i] = progress;
                since[i] = now;
            } else if (now - since[i] > worst_ns) {
                worst_ns = now - since[i];
            }
            if (now - since[i] > (int64_t)STALL_SECONDS * 1000000000) {
                stalled = i;
            }
        }
    }
    if (stalled >= 0) {
        /* Threads may be stuck: report and leave without joining. */
        struct worker *worker = &workers[stalled];
        check(0, "every thread keeps making progress", "%s %d made no progress for %d s", kind_names[worker->kind],
              worker->index, STALL_SECONDS);
        printf("1 checks failed\n");
        fflush(stdout);
        _exit(1);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < PAIRS; i++) {
        atomic_store(&pairs[i].turn, TURN_STOPPED);
        futex_wake(&pairs[i].turn, 2);
    }
    uint64_t totals[3] = {0};
    for (int i = 0; i < worker_count; i++) {
        pthread_join(workers[i].thread, NULL);
        totals[workers[i].kind] += atomic_load(&workers[i].progress);
    }
    printf("wakeups: %llu spins, %llu turns passed, %llu naps, longest pause %lld ms\n",
           (unsigned long long)totals[SPINNER], (unsigned long long)totals[PASSER],
           (unsigned long long)totals[SLEEPER], (long long)(worst_ns / 1000000));
    check(totals[SPINNER] > 0, "spinners ran", "no spin counted");
    check(totals[PASSER] > 0, "turns were passed", "no turn passed");
    check(totals[SLEEPER] > 0, "sleepers woke", "no nap counted");
    check(1, "every thread keeps making progress", "%s", "stalled");
    printf("%d checks failed\n", failures);
    return failures;
}
