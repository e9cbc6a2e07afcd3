/* A soak of timers and cancellation:
 * `soak SECONDS [SLEEPERS [CANCELLERS [SPINNERS]]]`.
 *
 * Sleeper threads wait for short timeouts in every way a program can
 * (clock_nanosleep relative and absolute, nanosleep, futex waits, poll,
 * select, epoll_wait, timed condition variables), each wait checked to end
 * no earlier than asked and within a generous bound. Canceller threads start
 * threads that spin in application code without making a system call, then
 * either cancel them (asynchronous cancellation) or signal them, checking
 * that each cancellation or handler completes within the same bound.
 * Spinner threads keep every processor busy in application code
 * throughout, so that sleepers wake on time only if the kernel preempts. A
 * watchdog reports any thread that made no progress for a long time.
 *
 * Prints the counts of each kind of wait and of cancellation, the worst
 * lateness seen, then "soak failures: N" and exits with N (at most 100). A
 * hang that stops every timer shows as the host's timeout instead. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A wait or a cancellation that takes this much longer than asked fails:
 * far beyond any scheduling delay of a loaded, emulated machine, far below
 * "never". */
#define LATE_LIMIT_NS (10LL * 1000 * 1000 * 1000)
/* A thread silent for this long is reported as stuck. */
#define STUCK_LIMIT_NS (30LL * 1000 * 1000 * 1000)
#define MAX_THREADS 64

/* From <linux/futex.h>, which musl's compiler wrapper cannot see. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAIT_BITSET_PRIVATE (9 | 128)
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

enum wait_kind {
    WAIT_CLOCK_NANOSLEEP,
    WAIT_CLOCK_NANOSLEEP_ABSOLUTE,
    WAIT_NANOSLEEP,
    WAIT_FUTEX,
    WAIT_FUTEX_BITSET_ABSOLUTE,
    WAIT_POLL,
    WAIT_SELECT,
    WAIT_EPOLL,
    WAIT_CONDVAR,
    WAIT_KINDS,
};

static const char *const wait_names[WAIT_KINDS] = {
    "clock_nanosleep", "clock_nanosleep abs", "nanosleep", "futex wait", "futex bitset abs",
    "poll",            "select",              "epoll_wait", "condvar timedwait",
};

enum cancel_kind { CANCEL_ASYNC, CANCEL_SIGNAL, CANCEL_KINDS };

static const char *const cancel_names[CANCEL_KINDS] = {"pthread_cancel spinner", "signal spinner"};

struct tally {
    atomic_long count;
    atomic_long early;
    atomic_long late;
    atomic_llong worst_over_ns;
};

static struct tally wait_tallies[WAIT_KINDS];
static struct tally cancel_tallies[CANCEL_KINDS];
static atomic_int failures;
static atomic_int stopping;
static int64_t end_ns;

/* Per worker: what it is doing and when it last made progress. */
struct worker {
    atomic_llong progress_ns;
    atomic_int doing;
    int is_canceller;
    int is_spinner;
    unsigned seed;
};

static struct worker workers[MAX_THREADS];

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static struct timespec to_timespec(int64_t ns) {
    struct timespec time = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    return time;
}

static unsigned next_random(unsigned *seed) {
    *seed = *seed * 1103515245 + 12345;
    return (*seed >> 16) & 0x7fff;
}

static void record(struct tally *tally, const char *name, int64_t asked_ns, int64_t took_ns) {
    atomic_fetch_add(&tally->count, 1);
    int64_t over = took_ns - asked_ns;
    if (over < 0) {
        atomic_fetch_add(&tally->early, 1);
        atomic_fetch_add(&failures, 1);
        printf("FAIL %s ended %lld ns early (asked %lld ns)\n", name, (long long)-over, (long long)asked_ns);
        return;
    }
    long long worst = atomic_load(&tally->worst_over_ns);
    while (over > worst && !atomic_compare_exchange_weak(&tally->worst_over_ns, &worst, over)) {
    }
    if (over > LATE_LIMIT_NS) {
        atomic_fetch_add(&tally->late, 1);
        atomic_fetch_add(&failures, 1);
        printf("FAIL %s ended %.1f ms late (asked %.1f ms)\n", name, over / 1e6, asked_ns / 1e6);
    }
}

static atomic_int never_changes;
static pthread_mutex_t condvar_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_signalled = PTHREAD_COND_INITIALIZER;

/* Waits `asked_ns` in the way `kind` names; returns 0, or -1 if the call
 * itself failed. */
static int wait_once(enum wait_kind kind, int64_t asked_ns, int epoll_fd) {
    struct timespec relative = to_timespec(asked_ns);
    int milliseconds = (int)(asked_ns / 1000000);
    switch (kind) {
    case WAIT_CLOCK_NANOSLEEP:
        return clock_nanosleep(CLOCK_MONOTONIC, 0, &relative, NULL) == 0 ? 0 : -1;
    case WAIT_CLOCK_NANOSLEEP_ABSOLUTE: {
        struct timespec until = to_timespec(monotonic_ns() + asked_ns);
        return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == 0 ? 0 : -1;
    }
    case WAIT_NANOSLEEP:
        return nanosleep(&relative, NULL);
    case WAIT_FUTEX: {
        long rc = syscall(SYS_futex, &never_changes, FUTEX_WAIT_PRIVATE, 0, &relative, NULL, 0);
        return rc == -1 && errno == ETIMEDOUT ? 0 : -1;
    }
    case WAIT_FUTEX_BITSET_ABSOLUTE: {
        struct timespec until = to_timespec(monotonic_ns() + asked_ns);
        long rc = syscall(SYS_futex, &never_changes, FUTEX_WAIT_BITSET_PRIVATE, 0, &until, NULL,
                          FUTEX_BITSET_MATCH_ANY);
        return rc == -1 && errno == ETIMEDOUT ? 0 : -1;
    }
    case WAIT_POLL:
        return poll(NULL, 0, milliseconds);
    case WAIT_SELECT: {
        struct timeval timeout = {.tv_sec = asked_ns / 1000000000, .tv_usec = asked_ns % 1000000000 / 1000};
        return select(0, NULL, NULL, NULL, &timeout);
    }
    case WAIT_EPOLL: {
        struct epoll_event event;
        return epoll_wait(epoll_fd, &event, 1, milliseconds);
    }
    case WAIT_CONDVAR: {
        pthread_mutex_lock(&condvar_lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t deadline = (int64_t)until.tv_sec * 1000000000 + until.tv_nsec + asked_ns;
        until = to_timespec(deadline);
        int rc = 0;
        while (rc == 0)
            rc = pthread_cond_timedwait(&never_signalled, &condvar_lock, &until);
        pthread_mutex_unlock(&condvar_lock);
        return rc == ETIMEDOUT ? 0 : -1;
    }
    case WAIT_KINDS:
        break;
    }
    return -1;
}

static void *sleeper(void *argument) {
    struct worker *self = argument;
    int epoll_fd = epoll_create1(0);
    if (epoll_fd < 0) {
        printf("FAIL epoll_create1: %s\n", strerror(errno));
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    unsigned round = next_random(&self->seed);
    while (!atomic_load(&stopping) && monotonic_ns() < end_ns) {
        enum wait_kind kind = (enum wait_kind)(round++ % WAIT_KINDS);
        /* 1 to 20 ms, whole milliseconds so that poll and epoll ask for
         * exactly the same. */
        int64_t asked_ns = (int64_t)(1 + next_random(&self->seed) % 20) * 1000000;
        atomic_store(&self->doing, (int)kind);
        int64_t start = monotonic_ns();
        int rc = wait_once(kind, asked_ns, epoll_fd);
        int64_t took = monotonic_ns() - start;
        if (rc != 0) {
            atomic_fetch_add(&failures, 1);
            printf("FAIL %s returned %d: %s\n", wait_names[kind], rc, strerror(errno));
        }
        /* The realtime clock of the condition variable may step; its wait
         * is still measured on the monotonic clock, which must cover it. */
        record(&wait_tallies[kind], wait_names[kind], asked_ns, took);
        atomic_store(&self->progress_ns, monotonic_ns());
    }
    close(epoll_fd);
    return NULL;
}

/* ---- spinning threads, cancelled or signalled ---- */

struct spinner {
    atomic_int started;
    atomic_int stop;
    atomic_long spins;
};

static _Thread_local atomic_int *handled_flag;

static void on_signal(int signal) {
    (void)signal;
    if (handled_flag)
        atomic_store(handled_flag, 1);
}

struct signalled_spinner {
    struct spinner spinner;
    atomic_int handled;
};

static void *async_spinner(void *argument) {
    struct spinner *spinner = argument;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    atomic_store(&spinner->started, 1);
    /* No system call, no cancellation point: only an interrupt can stop
     * this loop. */
    while (!atomic_load_explicit(&spinner->stop, memory_order_relaxed))
        atomic_fetch_add_explicit(&spinner->spins, 1, memory_order_relaxed);
    return NULL;
}

static void *signal_spinner(void *argument) {
    struct signalled_spinner *signalled = argument;
    handled_flag = &signalled->handled;
    atomic_store(&signalled->spinner.started, 1);
    while (!atomic_load_explicit(&signalled->spinner.stop, memory_order_relaxed))
        atomic_fetch_add_explicit(&signalled->spinner.spins, 1, memory_order_relaxed);
    return NULL;
}

/* Waits for `flag` without a timer: yields, so that it works even where
 * the timers would not. False after `limit_ns`. */
static int wait_for_flag(atomic_int *flag, int64_t limit_ns) {
    int64_t deadline = monotonic_ns() + limit_ns;
    while (!atomic_load(flag)) {
        if (monotonic_ns() > deadline)
            return 0;
        sched_yield();
    }
    return 1;
}

/* Lets the spinner spin for 0 to 5 ms of its own. */
static void let_spin(struct worker *self) {
    struct timespec pause = to_timespec((int64_t)(next_random(&self->seed) % 6) * 1000000);
    nanosleep(&pause, NULL);
}

static void cancel_round(struct worker *self) {
    struct spinner spinner = {0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, async_spinner, &spinner) != 0) {
        atomic_fetch_add(&failures, 1);
        printf("FAIL pthread_create: %s\n", strerror(errno));
        return;
    }
    if (!wait_for_flag(&spinner.started, LATE_LIMIT_NS)) {
        atomic_fetch_add(&failures, 1);
        printf("FAIL a spinner did not start in %lld s\n", LATE_LIMIT_NS / 1000000000);
    }
    let_spin(self);
    int64_t start = monotonic_ns();
    int rc = pthread_cancel(thread);
    void *result = NULL;
    pthread_join(thread, &result);
    int64_t took = monotonic_ns() - start;
    if (rc != 0 || result != PTHREAD_CANCELED) {
        atomic_fetch_add(&failures, 1);
        printf("FAIL pthread_cancel returned %d, the thread %s\n", rc,
               result == PTHREAD_CANCELED ? "was cancelled" : "returned");
    }
    record(&cancel_tallies[CANCEL_ASYNC], cancel_names[CANCEL_ASYNC], 0, took);
}

static void signal_round(struct worker *self) {
    struct signalled_spinner signalled = {0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, signal_spinner, &signalled) != 0) {
        atomic_fetch_add(&failures, 1);
        printf("FAIL pthread_create: %s\n", strerror(errno));
        return;
    }
    wait_for_flag(&signalled.spinner.started, LATE_LIMIT_NS);
    let_spin(self);
    int64_t start = monotonic_ns();
    pthread_kill(thread, SIGUSR1);
    int is_handled = wait_for_flag(&signalled.handled, 6 * LATE_LIMIT_NS);
    int64_t took = monotonic_ns() - start;
    atomic_store(&signalled.spinner.stop, 1);
    pthread_join(thread, NULL);
    if (!is_handled)
        printf("FAIL a spinning thread did not run its signal handler in %lld s\n",
               6 * LATE_LIMIT_NS / 1000000000);
    record(&cancel_tallies[CANCEL_SIGNAL], cancel_names[CANCEL_SIGNAL], 0, took);
}

/* Spins in application code, never making a system call, until the end. */
static void *busy_spinner(void *argument) {
    struct worker *self = argument;
    while (!atomic_load_explicit(&stopping, memory_order_relaxed) && monotonic_ns() < end_ns)
        atomic_store_explicit(&self->progress_ns, monotonic_ns(), memory_order_relaxed);
    atomic_store(&self->progress_ns, monotonic_ns());
    return NULL;
}

static void *canceller(void *argument) {
    struct worker *self = argument;
    unsigned round = 0;
    while (!atomic_load(&stopping) && monotonic_ns() < end_ns) {
        atomic_store(&self->doing, (int)(round % CANCEL_KINDS));
        if (round++ % CANCEL_KINDS == CANCEL_ASYNC)
            cancel_round(self);
        else
            signal_round(self);
        atomic_store(&self->progress_ns, monotonic_ns());
    }
    return NULL;
}

static void print_tally(const char *name, const struct tally *tally) {
    printf("%-24s %8ld done %5ld early %5ld late, worst %9.3f ms over\n", name, atomic_load(&tally->count),
           atomic_load(&tally->early), atomic_load(&tally->late), atomic_load(&tally->worst_over_ns) / 1e6);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    int sleepers = argc > 2 ? atoi(argv[2]) : 8;
    int cancellers = argc > 3 ? atoi(argv[3]) : 2;
    int spinners = argc > 4 ? atoi(argv[4]) : 0;
    if (seconds < 1 || sleepers < 0 || cancellers < 0 || spinners < 0 ||
        sleepers + cancellers + spinners > MAX_THREADS) {
        fprintf(stderr, "usage: soak SECONDS [SLEEPERS [CANCELLERS [SPINNERS]]] (at most %d threads)\n",
                MAX_THREADS);
        return 100;
    }
    struct sigaction action = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &action, NULL);
    printf("soak: %d s, %d sleepers, %d cancellers, %d spinners, %ld CPUs\n", seconds, sleepers, cancellers,
           spinners, sysconf(_SC_NPROCESSORS_ONLN));
    int64_t start = monotonic_ns();
    end_ns = start + (int64_t)seconds * 1000000000;
    pthread_t threads[MAX_THREADS];
    int count = sleepers + cancellers + spinners;
    for (int index = 0; index < count; index++) {
        struct worker *worker = &workers[index];
        worker->is_canceller = index >= sleepers && index < sleepers + cancellers;
        worker->is_spinner = index >= sleepers + cancellers;
        worker->seed = 0x9e3779b9u * (unsigned)(index + 1);
        atomic_store(&worker->progress_ns, start);
        void *(*body)(void *) = worker->is_spinner ? busy_spinner : worker->is_canceller ? canceller : sleeper;
        int rc = pthread_create(&threads[index], NULL, body, worker);
        if (rc != 0) {
            printf("FAIL pthread_create: %s\n", strerror(rc));
            return 100;
        }
    }
    /* The watchdog: reports workers stuck in one wait. It sleeps itself, so
     * a machine whose every timer stopped shows as the host's timeout. */
    int reported[MAX_THREADS] = {0};
    while (monotonic_ns() < end_ns + STUCK_LIMIT_NS) {
        struct timespec second = {.tv_sec = 1};
        nanosleep(&second, NULL);
        int64_t now = monotonic_ns();
        int busy = 0;
        for (int index = 0; index < count; index++) {
            struct worker *worker = &workers[index];
            int64_t silent = now - atomic_load(&worker->progress_ns);
            if (silent < STUCK_LIMIT_NS || reported[index])
                continue;
            if (now > end_ns && silent < now - end_ns + STUCK_LIMIT_NS)
                continue;
            reported[index] = 1;
            atomic_fetch_add(&failures, 1);
            int doing = atomic_load(&worker->doing);
            printf("FAIL thread %d stuck for %.1f s in %s\n", index, silent / 1e9,
                   worker->is_spinner     ? "spinning"
                   : worker->is_canceller ? cancel_names[doing]
                                          : wait_names[doing]);
        }
        for (int index = 0; index < count; index++)
            busy += !reported[index] && atomic_load(&workers[index].progress_ns) < end_ns;
        if (now >= end_ns && busy == 0)
            break;
    }
    atomic_store(&stopping, 1);
    for (int index = 0; index < count; index++)
        if (!reported[index])
            pthread_join(threads[index], NULL);
    double elapsed = (monotonic_ns() - start) / 1e9;
    printf("soak ran %.1f s\n", elapsed);
    for (int kind = 0; kind < WAIT_KINDS; kind++)
        print_tally(wait_names[kind], &wait_tallies[kind]);
    for (int kind = 0; kind < CANCEL_KINDS; kind++)
        print_tally(cancel_names[kind], &cancel_tallies[kind]);
    int failed = atomic_load(&failures);
    printf("soak failures: %d\n", failed);
    fflush(stdout);
    /* Stuck threads are left behind: leave without waiting for them. */
    _exit(failed > 100 ? 100 : failed);
}
