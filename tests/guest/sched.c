/* Checks scheduling policies and priorities: the sched_* calls and their
 * errors, sched_setattr/sched_getattr, nice values through setpriority and
 * getpriority, I/O priorities, and that a SCHED_FIFO thread keeps its
 * processor from a normal thread on the same processor until it sleeps;
 * across processes: a forked child keeps its parent's policy and nice
 * value, other processes are named by their ids (sched_getparam,
 * sched_getaffinity, setpriority for a process or a process group), and a user may not
 * change root's processes. Needs root (as rosv's applications run by default). Passes on Linux.
 * One line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

struct sched_attributes {
    uint32_t size;
    uint32_t policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t utilisation_min, utilisation_max;
};

/* musl leaves sched_setscheduler and friends out (Linux applies them to
 * threads, not processes): call the kernel directly. */
static int set_scheduler(pid_t thread, int policy, const struct sched_param *parameters) {
    return (int)syscall(SYS_sched_setscheduler, thread, policy, parameters);
}

static int get_scheduler(pid_t thread) {
    return (int)syscall(SYS_sched_getscheduler, thread);
}

static int set_parameters(pid_t thread, const struct sched_param *parameters) {
    return (int)syscall(SYS_sched_setparam, thread, parameters);
}

static int get_parameters(pid_t thread, struct sched_param *parameters) {
    return (int)syscall(SYS_sched_getparam, thread, parameters);
}

static long long now_ns(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return time.tv_sec * 1000000000LL + time.tv_nsec;
}

static void check_calls(void) {
    check(sched_get_priority_max(SCHED_FIFO) == 99 && sched_get_priority_min(SCHED_RR) == 1 &&
              sched_get_priority_max(SCHED_OTHER) == 0,
          "priority ranges", "%d %d", sched_get_priority_max(SCHED_FIFO), sched_get_priority_min(SCHED_RR));
    errno = 0;
    check(sched_get_priority_max(4) == -1 && errno == EINVAL, "an unknown policy: EINVAL", "errno %d", errno);
    struct sched_param parameters = {.sched_priority = 0};
    errno = 0;
    check(set_scheduler(0, SCHED_FIFO, &parameters) == -1 && errno == EINVAL,
          "SCHED_FIFO at priority 0: EINVAL", "errno %d", errno);
    parameters.sched_priority = 5;
    errno = 0;
    check(set_scheduler(0, SCHED_OTHER, &parameters) == -1 && errno == EINVAL,
          "SCHED_OTHER at priority 5: EINVAL", "errno %d", errno);
    errno = 0;
    check(set_scheduler(999999, SCHED_OTHER, &parameters) == -1 && errno == ESRCH, "no such thread: ESRCH",
          "errno %d", errno);
    parameters.sched_priority = 20;
    check(set_scheduler(0, SCHED_RR, &parameters) == 0, "SCHED_RR", "failed");
    struct sched_param read_back = {0};
    check(get_scheduler(0) == SCHED_RR && get_parameters(0, &read_back) == 0 && read_back.sched_priority == 20,
          "sched_getscheduler and sched_getparam", "%d %d", get_scheduler(0), read_back.sched_priority);
    struct timespec slice = {0, 0};
    check(sched_rr_get_interval(0, &slice) == 0 && (slice.tv_sec > 0 || slice.tv_nsec > 0),
          "sched_rr_get_interval of a round-robin thread", "%ld ns", slice.tv_nsec);
    parameters.sched_priority = 30;
    check(set_parameters(0, &parameters) == 0 && get_parameters(0, &read_back) == 0 && read_back.sched_priority == 30,
          "sched_setparam", "%d", read_back.sched_priority);
    parameters.sched_priority = 0;
    set_scheduler(0, SCHED_OTHER, &parameters);

    struct sched_attributes attributes;
    memset(&attributes, 0, sizeof attributes);
    attributes.size = 48;
    attributes.policy = SCHED_OTHER;
    attributes.nice = 4;
    check(syscall(SYS_sched_setattr, 0, &attributes, 0) == 0, "sched_setattr", "errno %d", errno);
    memset(&attributes, 0, sizeof attributes);
    check(syscall(SYS_sched_getattr, 0, &attributes, sizeof attributes, 0) == 0 && attributes.nice == 4 &&
              attributes.policy == SCHED_OTHER && attributes.size >= 48,
          "sched_getattr", "nice %d size %u", attributes.nice, attributes.size);
    check(getpriority(PRIO_PROCESS, 0) == 4, "getpriority sees the nice value", "%d", getpriority(PRIO_PROCESS, 0));
    check(setpriority(PRIO_PROCESS, 0, -3) == 0 && getpriority(PRIO_PROCESS, 0) == -3,
          "setpriority (as root, a better one too)", "%d", getpriority(PRIO_PROCESS, 0));
    setpriority(PRIO_PROCESS, 0, 0);
    errno = 0;
    check(getpriority(7, 0) == -1 && errno == EINVAL, "an unknown target: EINVAL", "errno %d", errno);
    int best_effort_3 = (2 << 13) | 3;
    check(syscall(SYS_ioprio_set, 1, 0, best_effort_3) == 0 && syscall(SYS_ioprio_get, 1, 0) == best_effort_3,
          "ioprio_set and ioprio_get", "%ld", syscall(SYS_ioprio_get, 1, 0));
}

static void pin_to_first_processor(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static volatile int ready, stop;
static volatile unsigned long counter;

static void *count(void *argument) {
    (void)argument;
    pin_to_first_processor();
    ready = 1;
    while (!stop)
        counter++;
    return NULL;
}

static void check_fifo_keeps_its_processor(void) {
    pin_to_first_processor();
    pthread_t normal;
    pthread_create(&normal, NULL, count, NULL);
    long long deadline = now_ns() + 10000000000LL;
    while ((!ready || counter == 0) && now_ns() < deadline) {
        struct timespec step = {0, 1000000};
        nanosleep(&step, NULL);
    }
    struct sched_param parameters = {.sched_priority = 10};
    check(set_scheduler(0, SCHED_FIFO, &parameters) == 0, "SCHED_FIFO", "errno %d", errno);
    /* Spinning without a system call, the FIFO thread keeps the processor
     * the normal thread needs. */
    unsigned long before = counter;
    long long end = now_ns() + 200000000LL;
    while (now_ns() < end)
        ;
    unsigned long during = counter - before;
    parameters.sched_priority = 0;
    set_scheduler(0, SCHED_OTHER, &parameters);
    struct timespec pause_time = {0, 50000000};
    nanosleep(&pause_time, NULL);
    unsigned long after = counter - before;
    check(during == 0, "a FIFO thread runs before a normal one", "the normal thread counted %lu", during);
    check(after > 0, "the normal one runs once the FIFO one stops", "it never ran");
    stop = 1;
    pthread_join(normal, NULL);
}

/* A child that waits for its parent to close the pipe; returns its id. */
static pid_t waiting_child(int gate[2]) {
    if (pipe(gate) != 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        char byte;
        close(gate[1]);
        while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    close(gate[0]);
    return child;
}

static void end_child(pid_t child, int gate[2]) {
    close(gate[1]);
    int status;
    waitpid(child, &status, 0);
}

static void check_other_processes(void) {
    struct sched_param parameters = {.sched_priority = 7};
    check(set_scheduler(0, SCHED_FIFO, &parameters) == 0, "the parent takes SCHED_FIFO 7",
          "sched_setscheduler failed");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct sched_param own = {0};
        int policy = get_scheduler(0);
        get_parameters(0, &own);
        _exit(policy == SCHED_FIFO && own.sched_priority == 7 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child keeps its parent's policy",
          "status %#x", status);
    parameters.sched_priority = 0;
    set_scheduler(0, SCHED_OTHER, &parameters);

    int gate[2];
    child = waiting_child(gate);
    struct sched_param read_back = {0};
    check(get_parameters(child, &read_back) == 0 && read_back.sched_priority == 0,
          "sched_getparam names another process", "priority %d", read_back.sched_priority);
    parameters.sched_priority = 3;
    check(set_scheduler(child, SCHED_RR, &parameters) == 0 && get_scheduler(child) == SCHED_RR,
          "sched_setscheduler changes another process", "policy %d", get_scheduler(child));
    parameters.sched_priority = 0;
    set_scheduler(child, SCHED_OTHER, &parameters);
    cpu_set_t processors, only_first;
    CPU_ZERO(&processors);
    CPU_ZERO(&only_first);
    CPU_SET(0, &only_first);
    check(sched_getaffinity(child, sizeof processors, &processors) == 0 && CPU_ISSET(0, &processors),
          "sched_getaffinity names another process (taskset -p)", "failed");
    check(sched_setaffinity(child, sizeof only_first, &only_first) == 0 &&
              sched_getaffinity(child, sizeof processors, &processors) == 0 && CPU_COUNT(&processors) == 1,
          "sched_setaffinity changes another process", "%d processors", CPU_COUNT(&processors));
    errno = 0;
    check(sched_getaffinity(-5, sizeof processors, &processors) == -1 && errno == ESRCH,
          "a negative id is no process (ESRCH)", "errno %d", errno);
    errno = 0;
    check(setpriority(PRIO_PROCESS, child, 5) == 0 && getpriority(PRIO_PROCESS, child) == 5,
          "setpriority changes another process", "nice %d", getpriority(PRIO_PROCESS, child));
    setpgid(child, child);
    errno = 0;
    check(setpriority(PRIO_PGRP, child, 6) == 0 && getpriority(PRIO_PGRP, child) == 6,
          "and every process of a process group", "nice %d", getpriority(PRIO_PGRP, child));
    check(getpriority(PRIO_PROCESS, 0) == 0, "leaving the caller's own alone", "nice %d",
          getpriority(PRIO_PROCESS, 0));
    fflush(stdout);
    pid_t user = fork();
    if (user == 0) {
        if (setresuid(1000, 1000, 1000) != 0)
            _exit(2);
        struct sched_param some = {0};
        int refused = set_scheduler(child, SCHED_BATCH, &some) == -1 && errno == EPERM;
        refused = refused && setpriority(PRIO_PROCESS, child, 10) == -1 && errno == EPERM;
        refused = refused && get_parameters(child, &some) == 0;
        _exit(refused ? 0 : 1);
    }
    waitpid(user, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a user may read but not change root's process (EPERM)", "status %#x", status);
    end_child(child, gate);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_calls();
    check_fifo_keeps_its_processor();
    check_other_processes();
    printf("%d checks failed\n", failures);
    return failures;
}
