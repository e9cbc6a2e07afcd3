/* Checks futex_waitv: its errors (EINVAL for flags, counts, entry flags,
 * unaligned words and clocks; EFAULT; EAGAIN when a word differs), its
 * absolute timeouts on the monotonic and the wall clock (ETIMEDOUT), and
 * that a wake of any one word ends the wait with that word's index, from
 * another thread (private words) and from another process (a word in
 * shared memory). Passes on Linux. One line per check; exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

struct waitv {
    uint64_t value;
    uint64_t address;
    uint32_t flags;
    uint32_t reserved;
};

#define FUTEX_WAKE 1
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | 128)
#define SIZE_U32 0x02
#define PRIVATE_WORD 0x80

static long waitv(struct waitv *entries, unsigned count, unsigned flags, struct timespec *timeout, int clock) {
    return syscall(SYS_futex_waitv, entries, count, flags, timeout, clock);
}

static struct timespec in_ms(int clock, long ms) {
    struct timespec now;
    clock_gettime(clock, &now);
    now.tv_nsec += ms * 1000000L;
    now.tv_sec += now.tv_nsec / 1000000000L;
    now.tv_nsec %= 1000000000L;
    return now;
}

static uint32_t words[3];

static void *wake_second(void *argument) {
    (void)argument;
    struct timespec pause = {0, 50 * 1000000L};
    nanosleep(&pause, NULL);
    words[1] = 1;
    syscall(SYS_futex, &words[1], FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    return NULL;
}

static void check_errors(void) {
    struct waitv entry = {0, (uintptr_t)&words[0], SIZE_U32 | PRIVATE_WORD, 0};
    struct timespec soon = in_ms(CLOCK_MONOTONIC, 10);
    errno = 0;
    check(waitv(&entry, 1, 1, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "flags_are_einval", "errno %d",
          errno);
    errno = 0;
    check(waitv(&entry, 0, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "no_words_is_einval",
          "errno %d", errno);
    errno = 0;
    check(waitv(&entry, 129, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "too_many_words_is_einval",
          "errno %d", errno);
    errno = 0;
    check(waitv(NULL, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "null_vector_is_einval",
          "errno %d", errno);
    errno = 0;
    check(waitv((struct waitv *)8, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EFAULT, "bad_vector_is_efault",
          "errno %d", errno);
    errno = 0;
    check(waitv(&entry, 1, 0, &soon, CLOCK_BOOTTIME) == -1 && errno == EINVAL, "bad_clock_is_einval",
          "errno %d", errno);
    struct waitv bad = entry;
    bad.flags = PRIVATE_WORD;
    errno = 0;
    check(waitv(&bad, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "no_size_is_einval", "errno %d",
          errno);
    bad = entry;
    bad.reserved = 1;
    errno = 0;
    check(waitv(&bad, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "reserved_is_einval", "errno %d",
          errno);
    bad = entry;
    bad.address += 1;
    errno = 0;
    check(waitv(&bad, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EINVAL, "unaligned_is_einval",
          "errno %d", errno);
    bad = entry;
    bad.value = 7;
    errno = 0;
    check(waitv(&bad, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == EAGAIN, "different_value_is_eagain",
          "errno %d", errno);
    errno = 0;
    check(waitv(&entry, 1, 0, &soon, CLOCK_MONOTONIC) == -1 && errno == ETIMEDOUT, "monotonic_timeout",
          "errno %d", errno);
    struct timespec wall = in_ms(CLOCK_REALTIME, 10);
    errno = 0;
    check(waitv(&entry, 1, 0, &wall, CLOCK_REALTIME) == -1 && errno == ETIMEDOUT, "realtime_timeout",
          "errno %d", errno);
}

static void check_wakes(void) {
    struct waitv entries[3];
    for (int index = 0; index < 3; index++) {
        words[index] = 0;
        entries[index] = (struct waitv){0, (uintptr_t)&words[index], SIZE_U32 | PRIVATE_WORD, 0};
    }
    pthread_t waker;
    pthread_create(&waker, NULL, wake_second, NULL);
    struct timespec limit = in_ms(CLOCK_MONOTONIC, 20000);
    long woken = waitv(entries, 3, 0, &limit, CLOCK_MONOTONIC);
    check(woken == 1, "thread_wake_answers_its_index", "answer %ld", woken);
    pthread_join(waker, NULL);

    /* A word in memory two processes share, woken by the other. */
    uint32_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(shared != MAP_FAILED, "shared_mapping", "errno %d", errno);
    shared[0] = 0;
    shared[1] = 0;
    pid_t child = fork();
    if (child == 0) {
        struct timespec pause = {0, 50 * 1000000L};
        nanosleep(&pause, NULL);
        shared[0] = 1;
        syscall(SYS_futex, &shared[0], FUTEX_WAKE, 1, NULL, NULL, 0);
        _exit(0);
    }
    struct waitv across[2] = {
        {0, (uintptr_t)&words[2], SIZE_U32 | PRIVATE_WORD, 0},
        {0, (uintptr_t)&shared[0], SIZE_U32, 0},
    };
    limit = in_ms(CLOCK_MONOTONIC, 20000);
    woken = waitv(across, 2, 0, &limit, CLOCK_MONOTONIC);
    check(woken == 1, "process_wake_answers_its_index", "answer %ld", woken);
    int status = -1;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "waker_exited", "status %#x", status);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint32_t probe = 0;
    struct waitv entry = {1, (uintptr_t)&probe, SIZE_U32 | PRIVATE_WORD, 0};
    if (waitv(&entry, 1, 0, NULL, 0) == -1 && errno == ENOSYS) {
        skip("futex_waitv", "the kernel has no futex_waitv");
    } else {
        check_errors();
        check_wakes();
    }
    printf("%d checks failed\n", failures);
    return failures;
}
