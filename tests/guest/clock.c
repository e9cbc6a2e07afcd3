/* Checks the clocks the vDSO serves against the system calls: the vDSO is
 * mapped and found, its monotonic clock never runs behind the kernel's
 * (on every thread), wall-clock functions agree with each other, and
 * clocks it does not serve fall back to the system call. Prints one line
 * per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static int64_t nanoseconds(const struct timespec *time) {
    return (int64_t)time->tv_sec * 1000000000 + time->tv_nsec;
}

static int64_t library_ns(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return nanoseconds(&now);
}

static int64_t system_call_ns(clockid_t clock) {
    struct timespec now;
    syscall(SYS_clock_gettime, clock, &now);
    return nanoseconds(&now);
}

#define ROUNDS 20000

/* Alternates the library's (vDSO) and the kernel's monotonic clock;
 * returns how often a reading was behind the one before it. */
static void *interleave(void *argument) {
    (void)argument;
    long backwards = 0;
    int64_t last = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int64_t now = round % 2 ? system_call_ns(CLOCK_MONOTONIC) : library_ns(CLOCK_MONOTONIC);
        backwards += now < last;
        last = now;
    }
    return (void *)backwards;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const unsigned char *vdso = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    check(vdso != NULL && memcmp(vdso, "\177ELF", 4) == 0, "AT_SYSINFO_EHDR points at the vDSO", "got %p",
          (const void *)vdso);

    pthread_t threads[3];
    int created = 0;
    for (int i = 0; i < 3; i++)
        created += pthread_create(&threads[i], NULL, interleave, NULL) == 0;
    long backwards = (long)interleave(NULL);
    for (int i = 0; i < created; i++) {
        void *result;
        pthread_join(threads[i], &result);
        backwards += (long)result;
    }
    check(created == 3 && backwards == 0, "the vDSO's monotonic clock never runs behind the kernel's",
          "%ld readings went backwards", backwards);

    int64_t library = library_ns(CLOCK_REALTIME), kernel = system_call_ns(CLOCK_REALTIME);
    /* Read one after the other; a loaded host may stall the machine between
     * the two reads, but not for seconds. */
    check(kernel >= library && kernel - library < 5000000000LL, "both wall clocks agree",
          "vDSO %lld, kernel %lld", (long long)library, (long long)kernel);
    struct timeval wall;
    gettimeofday(&wall, NULL);
    time_t seconds = time(NULL);
    check(wall.tv_sec >= library / 1000000000 && seconds >= wall.tv_sec && seconds - wall.tv_sec <= 1 &&
              wall.tv_usec >= 0 && wall.tv_usec < 1000000,
          "gettimeofday and time agree with clock_gettime", "%ld.%06ld, %ld", (long)wall.tv_sec,
          (long)wall.tv_usec, (long)seconds);

    static const clockid_t served[] = {CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
                                       CLOCK_REALTIME_COARSE};
    int agree = 1;
    for (unsigned i = 0; i < sizeof served / sizeof served[0]; i++) {
        int64_t before = system_call_ns(served[i]), value = library_ns(served[i]);
        int64_t after = system_call_ns(served[i]);
        agree &= before <= value && value <= after;
    }
    check(agree, "raw, coarse and boot-time clocks read between two system calls", "some did not");

    struct timespec used;
    int status = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    check(status == 0 && nanoseconds(&used) > 0, "a clock the vDSO does not serve falls back to the kernel",
          "status %d, %lld ns", status, (long long)nanoseconds(&used));
    printf("%d checks failed\n", failures);
    return failures;
}
