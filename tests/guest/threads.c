/* Checks threads, their synchronisation and the scheduler: thread ids,
 * joining, detaching, thread-local storage, mutexes, condition variables,
 * barriers, cancellation, timed waits, sleep accuracy, affinity, every CPU
 * running threads, and preemption of busy threads. The optional argument is
 * the number of CPUs the machine has (default: the online CPUs). Prints one
 * line per check ("ok <name>" or "FAIL <name>: <why>"; timing checks append
 * the measured value) and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* How late a timed wait, sleep or cancellation may end. An emulated machine
 * on a loaded host stalls for seconds now and then, so only a gross failure
 * (a wait that never ends, or ends far too late) fails here; `rosv bench
 * soak` measures how late waits really end. */
#define TOLERANCE_MS 10000

static int ncpu;


/* Like check(), but also prints the measurement when the check passes. */
__attribute__((format(printf, 3, 4))) static void measured(int passed, const char *name, const char *measurement,
                                                           ...) {
    va_list arguments;
    va_start(arguments, measurement);
    printf("%s %s: ", passed ? "ok" : "FAIL", name);
    vprintf(measurement, arguments);
    printf("\n");
    va_end(arguments);
    if (!passed)
        failures++;
}

static int64_t nanoseconds(struct timespec time) { return (int64_t)time.tv_sec * 1000000000 + time.tv_nsec; }

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return nanoseconds(now);
}

static double milliseconds(int64_t ns) { return ns / 1e6; }

static struct timespec after_ms(clockid_t clock, long ms) {
    struct timespec time;
    clock_gettime(clock, &time);
    time.tv_nsec += ms % 1000 * 1000000;
    time.tv_sec += ms / 1000 + time.tv_nsec / 1000000000;
    time.tv_nsec %= 1000000000;
    return time;
}

static void nap_ms(long ms) {
    struct timespec nap = {ms / 1000, ms % 1000 * 1000000};
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {
    }
}

/* Polls a flag for up to two seconds; returns whether it was set. */
static int wait_for(atomic_int *flag) {
    for (int i = 0; i < 2000 && !atomic_load(flag); i++)
        nap_ms(1);
    return atomic_load(flag);
}

static long gettid_(void) { return syscall(SYS_gettid); }

/* Stops early, e.g. when threads that would wait for each other are missing. */
_Noreturn static void finish(void) {
    printf("%d checks failed\n", failures);
    exit(failures);
}

/* ---- thread ids ---- */

#define ID_THREADS 8
static pthread_barrier_t id_barrier;
static long id_tids[ID_THREADS];
static pid_t id_pids[ID_THREADS];

static void *id_thread(void *argument) {
    int index = (int)(intptr_t)argument;
    id_tids[index] = gettid_();
    id_pids[index] = getpid();
    /* Keep every thread alive until all have recorded their ids. */
    pthread_barrier_wait(&id_barrier);
    return NULL;
}

static void check_thread_ids(void) {
    long main_tid = gettid_();
    check(main_tid == getpid(), "main thread id equals the process id", "gettid %ld, getpid %d", main_tid,
          (int)getpid());
    pthread_barrier_init(&id_barrier, NULL, ID_THREADS);
    pthread_t threads[ID_THREADS];
    int created = 0;
    for (int i = 0; i < ID_THREADS; i++)
        if (pthread_create(&threads[i], NULL, id_thread, (void *)(intptr_t)i) == 0)
            created++;
    if (created != ID_THREADS) {
        check(0, "thread ids are distinct", "created only %d of %d threads", created, ID_THREADS);
        finish(); /* the barrier would never open */
    }
    for (int i = 0; i < ID_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&id_barrier);
    int distinct = 1, same_process = 1;
    for (int i = 0; i < ID_THREADS; i++) {
        if (id_tids[i] <= 0 || id_tids[i] == main_tid)
            distinct = 0;
        for (int j = 0; j < i; j++)
            if (id_tids[i] == id_tids[j])
                distinct = 0;
        if (id_pids[i] != getpid())
            same_process = 0;
    }
    check(distinct, "thread ids are distinct", "two threads share an id");
    check(same_process, "threads share the process id", "getpid differs in a thread");
}

/* ---- create, join, exit, detach ---- */

static void *value_thread(void *argument) {
    intptr_t n = (intptr_t)argument;
    intptr_t sum = 0;
    for (intptr_t i = 1; i <= n; i++)
        sum += i;
    return (void *)sum;
}

/* Calls pthread_exit from a few frames down. */
static int exit_deeply(int depth) {
    if (depth == 0)
        pthread_exit((void *)(intptr_t)0x5eed);
    if (depth < 0)
        return 0;
    return exit_deeply(depth - 1) + 1;
}

static void *exiting_thread(void *argument) {
    exit_deeply((int)(intptr_t)argument);
    return NULL;
}

static atomic_int detached_done;

static void *detached_thread(void *argument) {
    (void)argument;
    nap_ms(5);
    atomic_fetch_add(&detached_done, 1);
    return NULL;
}

static void check_create_join(void) {
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    int created = 1, right = 1;
    for (int i = 0; i < THREADS; i++)
        created &= pthread_create(&threads[i], NULL, value_thread, (void *)(intptr_t)(i * 1000)) == 0;
    for (int i = 0; created && i < THREADS; i++) {
        void *result = NULL;
        if (pthread_join(threads[i], &result) != 0 || (intptr_t)result != (intptr_t)i * 1000 * (i * 1000 + 1) / 2)
            right = 0;
    }
    check(created && right, "pthread_join returns the thread's value", created ? "wrong value" : "create failed");

    pthread_t thread;
    void *result = NULL;
    int rc = pthread_create(&thread, NULL, exiting_thread, (void *)(intptr_t)10);
    if (rc == 0)
        rc = pthread_join(thread, &result);
    check(rc == 0 && result == (void *)(intptr_t)0x5eed, "pthread_exit passes its value to pthread_join",
          "error %d, value %p", rc, result);

    /* Detach a running thread; create others detached. */
    rc = pthread_create(&thread, NULL, detached_thread, NULL);
    int detach = rc == 0 ? pthread_detach(thread) : rc;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    int extra = 0;
    for (int i = 0; i < 16; i++)
        if (pthread_create(&thread, &attributes, detached_thread, NULL) == 0)
            extra++;
    pthread_attr_destroy(&attributes);
    for (int i = 0; i < 2000 && atomic_load(&detached_done) < 1 + extra; i++)
        nap_ms(1);
    nap_ms(10); /* let them finish exiting */
    check(rc == 0 && detach == 0, "pthread_detach", "create %d, detach %d", rc, detach);
    check(extra == 16 && atomic_load(&detached_done) == 17, "detached threads run to completion",
          "%d of 17 finished (%d created)", atomic_load(&detached_done), extra + 1);
}

/* ---- thread-local storage ---- */

#define TLS_THREADS 8
static __thread volatile int tls_value = 42;
static __thread volatile char tls_zeroes[100];
static __thread _Alignas(64) volatile char tls_aligned[64] = {1};
static pthread_barrier_t tls_barrier;

struct tls_result {
    int index, initial, kept, aligned;
    uintptr_t address;
};

static void *tls_thread(void *argument) {
    struct tls_result *result = argument;
    int zeroes = 1;
    for (size_t i = 0; i < sizeof tls_zeroes; i++)
        zeroes &= tls_zeroes[i] == 0;
    result->initial = tls_value == 42 && zeroes && tls_aligned[0] == 1;
    result->aligned = (uintptr_t)tls_aligned % 64 == 0;
    result->address = (uintptr_t)&tls_value;
    tls_value = 1000 + result->index;
    for (size_t i = 0; i < sizeof tls_zeroes; i++)
        tls_zeroes[i] = (char)(result->index + 1);
    /* Every thread has now written its own values. */
    pthread_barrier_wait(&tls_barrier);
    sched_yield();
    nap_ms(1);
    result->kept = tls_value == 1000 + result->index && tls_zeroes[99] == result->index + 1;
    return NULL;
}

static void check_tls(void) {
    tls_value = 7;
    pthread_barrier_init(&tls_barrier, NULL, TLS_THREADS);
    pthread_t threads[TLS_THREADS];
    struct tls_result results[TLS_THREADS] = {0};
    int created = 0;
    for (int i = 0; i < TLS_THREADS; i++) {
        results[i].index = i;
        if (pthread_create(&threads[i], NULL, tls_thread, &results[i]) == 0)
            created++;
    }
    if (created != TLS_THREADS) {
        check(0, "thread-local variables", "created only %d of %d threads", created, TLS_THREADS);
        finish();
    }
    for (int i = 0; i < TLS_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&tls_barrier);
    int initial = 1, kept = 1, aligned = (uintptr_t)tls_aligned % 64 == 0, distinct = 1;
    for (int i = 0; i < TLS_THREADS; i++) {
        initial &= results[i].initial;
        kept &= results[i].kept;
        aligned &= results[i].aligned;
        distinct &= results[i].address != (uintptr_t)&tls_value;
        for (int j = 0; j < i; j++)
            distinct &= results[i].address != results[j].address;
    }
    check(initial, "new threads start with the initial thread-local values", "wrong initial values");
    check(distinct && kept, "thread-local variables are per thread",
          distinct ? "a thread's value changed" : "two threads share an address");
    check(aligned, "thread-local variables are aligned", "a 64-byte aligned variable is misaligned");
    check(tls_value == 7, "the main thread's thread-local value is untouched", "it is %d", tls_value);
}

/* ---- mutex ---- */

#define MUTEX_THREADS 16
#define MUTEX_ROUNDS 5000
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t counter_barrier;
static long counter;

static void *counter_thread(void *argument) {
    (void)argument;
    pthread_barrier_wait(&counter_barrier);
    for (int i = 0; i < MUTEX_ROUNDS; i++) {
        pthread_mutex_lock(&counter_lock);
        long value = counter;
        if (i % 64 == 0)
            sched_yield(); /* give others a chance to see it held */
        counter = value + 1;
        pthread_mutex_unlock(&counter_lock);
    }
    return NULL;
}

static void check_mutex(void) {
    pthread_barrier_init(&counter_barrier, NULL, MUTEX_THREADS);
    pthread_t threads[MUTEX_THREADS];
    int created = 0;
    for (int i = 0; i < MUTEX_THREADS; i++)
        if (pthread_create(&threads[i], NULL, counter_thread, NULL) == 0)
            created++;
    if (created != MUTEX_THREADS) {
        check(0, "a mutex protects a counter incremented by 16 threads", "created only %d threads", created);
        finish();
    }
    for (int i = 0; i < MUTEX_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&counter_barrier);
    check(counter == (long)MUTEX_THREADS * MUTEX_ROUNDS, "a mutex protects a counter incremented by 16 threads",
          "counter is %ld, expected %ld", counter, (long)MUTEX_THREADS * MUTEX_ROUNDS);
    check(pthread_mutex_trylock(&counter_lock) == 0 && pthread_mutex_trylock(&counter_lock) == EBUSY &&
              pthread_mutex_unlock(&counter_lock) == 0,
          "pthread_mutex_trylock", "wrong result");
}

/* ---- condition variables: a bounded queue ---- */

#define QUEUE_SIZE 4
#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS 1000 /* per producer */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    int items[QUEUE_SIZE];
    int head, count, closed;
    unsigned char consumed[PRODUCERS * ITEMS];
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void *producer(void *argument) {
    int first = (int)(intptr_t)argument * ITEMS;
    for (int i = 0; i < ITEMS; i++) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == QUEUE_SIZE)
            pthread_cond_wait(&queue.not_full, &queue.lock);
        queue.items[(queue.head + queue.count) % QUEUE_SIZE] = first + i;
        queue.count++;
        pthread_cond_signal(&queue.not_empty);
        pthread_mutex_unlock(&queue.lock);
    }
    return NULL;
}

static void *consumer(void *argument) {
    (void)argument;
    intptr_t taken = 0;
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0 && !queue.closed)
            pthread_cond_wait(&queue.not_empty, &queue.lock);
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.lock);
            return (void *)taken;
        }
        int item = queue.items[queue.head];
        queue.head = (queue.head + 1) % QUEUE_SIZE;
        queue.count--;
        queue.consumed[item]++;
        pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.lock);
        taken++;
    }
}

static void check_queue(void) {
    pthread_t producers[PRODUCERS], consumers[CONSUMERS];
    int created = 0;
    for (int i = 0; i < CONSUMERS; i++)
        created += pthread_create(&consumers[i], NULL, consumer, NULL) == 0;
    for (int i = 0; i < PRODUCERS; i++)
        created += pthread_create(&producers[i], NULL, producer, (void *)(intptr_t)i) == 0;
    if (created != PRODUCERS + CONSUMERS) {
        check(0, "condition variables: 3 producers, 3 consumers", "created only %d threads", created);
        finish();
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(producers[i], NULL);
    pthread_mutex_lock(&queue.lock);
    queue.closed = 1;
    pthread_cond_broadcast(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
    intptr_t taken = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        void *result;
        pthread_join(consumers[i], &result);
        taken += (intptr_t)result;
    }
    int once = 0;
    for (int i = 0; i < PRODUCERS * ITEMS; i++)
        once += queue.consumed[i] == 1;
    check(once == PRODUCERS * ITEMS && taken == PRODUCERS * ITEMS,
          "condition variables: 3 producers, 3 consumers, every item consumed once",
          "%d of %d items consumed exactly once, %ld taken", once, PRODUCERS * ITEMS, (long)taken);
}

/* ---- barrier ---- */

#define BARRIER_THREADS 8
#define BARRIER_ROUNDS 20
static pthread_barrier_t barrier;
static int barrier_slots[BARRIER_THREADS];
static atomic_int barrier_serial[BARRIER_ROUNDS];
static atomic_int barrier_errors;

static void *barrier_thread(void *argument) {
    int index = (int)(intptr_t)argument;
    for (int round = 0; round < BARRIER_ROUNDS; round++) {
        barrier_slots[index] = round;
        int rc = pthread_barrier_wait(&barrier);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&barrier_serial[round], 1);
        else if (rc != 0)
            atomic_fetch_add(&barrier_errors, 1);
        for (int i = 0; i < BARRIER_THREADS; i++)
            if (barrier_slots[i] != round)
                atomic_fetch_add(&barrier_errors, 1);
        /* Nobody starts the next round before everyone has looked. */
        rc = pthread_barrier_wait(&barrier);
        if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
            atomic_fetch_add(&barrier_errors, 1);
    }
    return NULL;
}

static void check_barrier(void) {
    pthread_barrier_init(&barrier, NULL, BARRIER_THREADS);
    pthread_t threads[BARRIER_THREADS];
    int created = 0;
    for (int i = 0; i < BARRIER_THREADS; i++)
        created += pthread_create(&threads[i], NULL, barrier_thread, (void *)(intptr_t)i) == 0;
    if (created != BARRIER_THREADS) {
        check(0, "a barrier keeps 8 threads in step for 20 rounds", "created only %d threads", created);
        finish();
    }
    for (int i = 0; i < BARRIER_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    int serial = 1;
    for (int round = 0; round < BARRIER_ROUNDS; round++)
        serial &= atomic_load(&barrier_serial[round]) == 1;
    check(atomic_load(&barrier_errors) == 0, "a barrier keeps 8 threads in step for 20 rounds",
          "%d threads passed early", atomic_load(&barrier_errors));
    check(serial, "a barrier names one serial thread per round", "wrong number of serial threads");
}

/* ---- cancellation ---- */

static atomic_int cancel_started, cancel_cleaned;
static pthread_mutex_t cancel_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cancel_cond = PTHREAD_COND_INITIALIZER;
static int cancel_give_up;

static void cleanup_flag(void *argument) {
    (void)argument;
    atomic_store(&cancel_cleaned, 1);
}

static void cleanup_unlock(void *argument) {
    (void)argument;
    atomic_store(&cancel_cleaned, 1);
    pthread_mutex_unlock(&cancel_lock);
}

static void *sleeping_thread(void *argument) {
    pthread_cleanup_push(cleanup_flag, NULL);
    atomic_store(&cancel_started, 1);
    sleep(60); /* a cancellation point; far longer than a cancel may take */
    pthread_cleanup_pop(0);
    return argument;
}

static void *waiting_thread(void *argument) {
    pthread_mutex_lock(&cancel_lock);
    pthread_cleanup_push(cleanup_unlock, NULL);
    atomic_store(&cancel_started, 1);
    while (!cancel_give_up)
        pthread_cond_wait(&cancel_cond, &cancel_lock);
    pthread_cleanup_pop(0);
    pthread_mutex_unlock(&cancel_lock);
    return argument;
}

static void check_cancel_sleep(void) {
    const char *name = "pthread_cancel interrupts sleep";
    atomic_store(&cancel_started, 0);
    atomic_store(&cancel_cleaned, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, sleeping_thread, NULL) != 0) {
        check(0, name, "create failed");
        return;
    }
    wait_for(&cancel_started);
    nap_ms(20); /* now it is asleep */
    int64_t start = monotonic_ns();
    int rc = pthread_cancel(thread);
    void *result = NULL;
    pthread_join(thread, &result);
    double elapsed = milliseconds(monotonic_ns() - start);
    check(rc == 0 && result == PTHREAD_CANCELED && atomic_load(&cancel_cleaned) && elapsed < TOLERANCE_MS, name,
          "cancel %d, canceled %d, cleanup ran %d, join after %.1f ms", rc, result == PTHREAD_CANCELED,
          atomic_load(&cancel_cleaned), elapsed);
}

static void check_cancel_cond_wait(void) {
    const char *name = "pthread_cancel interrupts pthread_cond_wait";
    atomic_store(&cancel_started, 0);
    atomic_store(&cancel_cleaned, 0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, waiting_thread, NULL) != 0) {
        check(0, name, "create failed");
        return;
    }
    wait_for(&cancel_started);
    /* The thread only releases the lock inside pthread_cond_wait. */
    pthread_mutex_lock(&cancel_lock);
    pthread_mutex_unlock(&cancel_lock);
    int rc = pthread_cancel(thread);
    int cleaned = wait_for(&cancel_cleaned);
    if (!cleaned) { /* wake it so that the join cannot hang */
        pthread_mutex_lock(&cancel_lock);
        cancel_give_up = 1;
        pthread_cond_broadcast(&cancel_cond);
        pthread_mutex_unlock(&cancel_lock);
    }
    void *result = NULL;
    pthread_join(thread, &result);
    int unlocked = pthread_mutex_trylock(&cancel_lock) == 0;
    if (unlocked)
        pthread_mutex_unlock(&cancel_lock);
    check(rc == 0 && result == PTHREAD_CANCELED && cleaned && unlocked, name,
          "cancel %d, canceled %d, cleanup ran %d, mutex unlocked %d", rc, result == PTHREAD_CANCELED, cleaned,
          unlocked);
}

/* ---- timed waits ---- */

static int in_range(double elapsed, long timeout) { return elapsed >= timeout && elapsed < timeout + TOLERANCE_MS; }

static void check_cond_timedwait(clockid_t clock, const char *name) {
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    int rc = pthread_condattr_setclock(&attributes, clock);
    pthread_cond_t cond;
    pthread_cond_init(&cond, &attributes);
    pthread_condattr_destroy(&attributes);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    int64_t start = monotonic_ns();
    struct timespec deadline = after_ms(clock, 50);
    if (rc == 0)
        do
            rc = pthread_cond_timedwait(&cond, &lock, &deadline);
        while (rc == 0); /* spurious wakeups: nobody signals */
    double elapsed = milliseconds(monotonic_ns() - start);
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&cond);
    measured(rc == ETIMEDOUT && in_range(elapsed, 50), name, "returned %s after %.1f ms",
             rc == ETIMEDOUT ? "ETIMEDOUT" : strerror(rc), elapsed);
}

static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

struct timedlock_result {
    int rc;
    double elapsed;
};

static void *timedlock_thread(void *argument) {
    struct timedlock_result *result = argument;
    int64_t start = monotonic_ns();
    struct timespec deadline = after_ms(CLOCK_REALTIME, 50);
    result->rc = pthread_mutex_timedlock(&held_lock, &deadline);
    result->elapsed = milliseconds(monotonic_ns() - start);
    if (result->rc == 0)
        pthread_mutex_unlock(&held_lock);
    return NULL;
}

static void check_mutex_timedlock(void) {
    const char *name = "pthread_mutex_timedlock on a held mutex times out after 50 ms";
    struct timedlock_result result = {-1, 0};
    pthread_t thread;
    pthread_mutex_lock(&held_lock);
    int rc = pthread_create(&thread, NULL, timedlock_thread, &result);
    if (rc == 0)
        pthread_join(thread, NULL);
    pthread_mutex_unlock(&held_lock);
    measured(rc == 0 && result.rc == ETIMEDOUT && in_range(result.elapsed, 50), name, "returned %s after %.1f ms",
             result.rc == ETIMEDOUT ? "ETIMEDOUT" : strerror(result.rc), result.elapsed);
    struct timespec deadline = after_ms(CLOCK_REALTIME, 50);
    rc = pthread_mutex_timedlock(&held_lock, &deadline);
    check(rc == 0, "pthread_mutex_timedlock on a free mutex", "error %d", rc);
    if (rc == 0)
        pthread_mutex_unlock(&held_lock);
}

/* ---- sleeps ---- */

static void check_sleeps(void) {
    struct timespec nap = {0, 20 * 1000000};
    int64_t start = monotonic_ns();
    int rc = nanosleep(&nap, NULL);
    double elapsed = milliseconds(monotonic_ns() - start);
    measured(rc == 0 && in_range(elapsed, 20), "nanosleep 20 ms", "slept %.1f ms", elapsed);

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct timespec deadline = now;
    deadline.tv_nsec += 20 * 1000000;
    deadline.tv_sec += deadline.tv_nsec / 1000000000;
    deadline.tv_nsec %= 1000000000;
    while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL)) == EINTR) {
    }
    int64_t end = monotonic_ns();
    elapsed = milliseconds(end - nanoseconds(now));
    measured(rc == 0 && end >= nanoseconds(deadline) && elapsed < 20 + TOLERANCE_MS,
             "clock_nanosleep to an absolute monotonic time 20 ms ahead", "slept %.1f ms%s", elapsed, rc == 0 ? "" : " (failed)");

    check(sched_yield() == 0, "sched_yield", "failed");
}

/* ---- CPUs ---- */

struct pin_result {
    int rc0, cpu0, count, rc_last, cpu_last;
};

static void *pin_thread(void *argument) {
    struct pin_result *result = argument;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    result->rc0 = sched_setaffinity(0, sizeof set, &set);
    result->cpu0 = sched_getcpu();
    CPU_ZERO(&set);
    result->count = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    if (ncpu > 1) {
        CPU_ZERO(&set);
        CPU_SET(ncpu - 1, &set);
        result->rc_last = sched_setaffinity(0, sizeof set, &set);
        result->cpu_last = sched_getcpu();
    }
    return NULL;
}

static void check_affinity(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = sched_getaffinity(0, sizeof set, &set);
    char name[64];
    snprintf(name, sizeof name, "sched_getaffinity reports %d CPUs", ncpu);
    check(rc == 0 && CPU_COUNT(&set) == ncpu, name, "error %d, %d CPUs", rc ? errno : 0, CPU_COUNT(&set));

    /* Pin a helper thread, not the main thread, whose mask new threads inherit. */
    struct pin_result result = {-1, -1, -1, -1, -1};
    pthread_t thread;
    if (pthread_create(&thread, NULL, pin_thread, &result) == 0)
        pthread_join(thread, NULL);
    check(result.rc0 == 0 && result.cpu0 == 0 && result.count == 1, "sched_setaffinity pins a thread to CPU 0",
          "setaffinity %d, then on CPU %d, mask of %d CPUs", result.rc0, result.cpu0, result.count);
    if (ncpu > 1) {
        snprintf(name, sizeof name, "sched_setaffinity moves a thread to CPU %d", ncpu - 1);
        check(result.rc_last == 0 && result.cpu_last == ncpu - 1, name, "setaffinity %d, then on CPU %d",
              result.rc_last, result.cpu_last);
    }
}

static pthread_barrier_t cpu_barrier;
static atomic_uint_least64_t cpus_seen[CPU_SETSIZE / 64];
static atomic_int cpus_distinct, cpus_bad;

static void *cpu_thread(void *argument) {
    (void)argument;
    pthread_barrier_wait(&cpu_barrier);
    int64_t deadline = monotonic_ns() + 3000000000LL;
    while (atomic_load(&cpus_distinct) < ncpu && monotonic_ns() < deadline) {
        int cpu = sched_getcpu();
        if (cpu < 0 || cpu >= ncpu) {
            atomic_store(&cpus_bad, cpu < 0 ? -1 : cpu);
            break;
        }
        uint64_t bit = (uint64_t)1 << (cpu % 64);
        if (!(atomic_fetch_or(&cpus_seen[cpu / 64], bit) & bit))
            atomic_fetch_add(&cpus_distinct, 1);
    }
    return NULL;
}

static void check_cpus_used(void) {
    char name[64];
    if (ncpu == 1) {
        int cpu = sched_getcpu();
        check(cpu == 0, "sched_getcpu returns 0 on the only CPU", "returned %d", cpu);
        return;
    }
    snprintf(name, sizeof name, "threads run on all %d CPUs", ncpu);
    int threads = 4 * ncpu;
    pthread_t *ids = calloc(threads, sizeof *ids);
    pthread_barrier_init(&cpu_barrier, NULL, threads);
    int created = 0;
    for (int i = 0; i < threads; i++)
        created += pthread_create(&ids[i], NULL, cpu_thread, NULL) == 0;
    if (created != threads) {
        check(0, name, "created only %d of %d threads", created, threads);
        finish();
    }
    for (int i = 0; i < threads; i++)
        pthread_join(ids[i], NULL);
    pthread_barrier_destroy(&cpu_barrier);
    free(ids);
    char missing[256] = "";
    for (int cpu = 0; cpu < ncpu && strlen(missing) < sizeof missing - 16; cpu++)
        if (!(atomic_load(&cpus_seen[cpu / 64]) & (uint64_t)1 << (cpu % 64)))
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %d", cpu);
    if (atomic_load(&cpus_bad))
        check(0, name, "sched_getcpu returned %d", atomic_load(&cpus_bad));
    else
        check(atomic_load(&cpus_distinct) == ncpu, name, "never saw CPU%s", missing);
}

/* ---- preemption ---- */

/* Spinners give up after this many iterations so that a kernel without
 * preemption fails the check rather than hanging forever. */
#define SPIN_LIMIT (1ULL << 32)
static atomic_int stop_spinning;
static atomic_int sleeper_rounds;

static void *spinner(void *argument) {
    unsigned long long *count = argument;
    volatile unsigned long long n = 0;
    while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed) && n < SPIN_LIMIT)
        n = n + 1;
    *count = n;
    return NULL;
}

static void *periodic_sleeper(void *argument) {
    (void)argument;
    while (!atomic_load(&stop_spinning)) {
        nap_ms(5);
        atomic_fetch_add(&sleeper_rounds, 1);
    }
    return NULL;
}

static void check_preemption(void) {
    int spinners = ncpu + 1;
    pthread_t *threads = calloc(spinners, sizeof *threads);
    unsigned long long *counts = calloc(spinners, sizeof *counts);
    int created = 0;
    pthread_t sleeper;
    int sleeper_created = pthread_create(&sleeper, NULL, periodic_sleeper, NULL) == 0;
    for (int i = 0; i < spinners; i++)
        created += pthread_create(&threads[i], NULL, spinner, &counts[i]) == 0;
    int wakeups = 0;
    double longest = 0;
    for (int i = 0; i < 10; i++) {
        int64_t start = monotonic_ns();
        nap_ms(50);
        double elapsed = milliseconds(monotonic_ns() - start);
        if (elapsed > longest)
            longest = elapsed;
        wakeups++;
    }
    int rounds = atomic_load(&sleeper_rounds);
    atomic_store(&stop_spinning, 1);
    for (int i = 0; i < created; i++)
        pthread_join(threads[i], NULL);
    if (sleeper_created)
        pthread_join(sleeper, NULL);
    int ran = 0, stopped = 0;
    for (int i = 0; i < created; i++) {
        ran += counts[i] > 0;
        stopped += counts[i] < SPIN_LIMIT;
    }
    free(threads);
    free(counts);
    char name[96];
    snprintf(name, sizeof name, "the main thread sleeps and wakes while %d threads spin", spinners);
    measured(created == spinners && wakeups == 10 && longest < 50 + TOLERANCE_MS, name,
             "%d wakeups, longest 50 ms sleep took %.1f ms", wakeups, longest);
    measured(sleeper_created && rounds >= 1, "a thread sleeping 5 ms at a time makes progress meanwhile",
             "%d rounds", rounds);
    snprintf(name, sizeof name, "all %d spinning threads run and stop", spinners);
    check(created == spinners && ran == spinners && stopped == spinners, name,
          "%d of %d created, %d ran, %d stopped by the flag", created, spinners, ran, stopped);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* a hang still shows the last check */
    ncpu = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1 || ncpu > CPU_SETSIZE) {
        fprintf(stderr, "usage: %s [number of CPUs]\n", argv[0]);
        return 100;
    }
    check_thread_ids();
    check_create_join();
    check_tls();
    check_mutex();
    check_queue();
    check_barrier();
    check_cancel_sleep();
    check_cancel_cond_wait();
    check_cond_timedwait(CLOCK_REALTIME, "pthread_cond_timedwait times out after 50 ms (realtime clock)");
    check_cond_timedwait(CLOCK_MONOTONIC, "pthread_cond_timedwait times out after 50 ms (monotonic clock)");
    check_mutex_timedlock();
    check_sleeps();
    check_affinity();
    check_cpus_used();
    check_preemption();
    finish();
}
