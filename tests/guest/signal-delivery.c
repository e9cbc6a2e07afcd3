/* Checks how signals are queued, waited for and delivered: real-time
 * signals queued with their values and standard ones merged, sigqueue and
 * rt_tgsigqueueinfo, sigtimedwait and sigwaitinfo (also for a signal sent
 * to the process that every thread blocks), signalfd with poll and epoll,
 * the alternate stack seen from a handler on it, sigsuspend and pselect
 * with their masks, select writing back the time left, SIGFPE from
 * unmasked floating-point exceptions, RLIMIT_SIGPENDING, and which
 * interrupted calls a handler with SA_RESTART resumes. Passes on
 * Linux too. One line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static pid_t thread_id(void) {
    return (pid_t)syscall(SYS_gettid);
}

static void block_only(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int index = 0; index < count; index++)
        sigaddset(&set, signals[index]);
    sigprocmask(SIG_SETMASK, &set, NULL);
}

static void unblock_all(void) {
    sigset_t set;
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
}

/* What the queued-signal handler saw, in order. */
static volatile int seen_count;
static volatile int seen_values[16];
static volatile int seen_codes[16];

static void record(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    if (seen_count < 16) {
        seen_values[seen_count] = info->si_value.sival_int;
        seen_codes[seen_count] = info->si_code;
    }
    seen_count++;
}

static void handle(int signal, void (*handler)(int, siginfo_t *, void *), int flags) {
    struct sigaction action = {0};
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | flags;
    sigaction(signal, &action, NULL);
}

static void check_real_time_queueing(void) {
    int signal = SIGRTMIN + 1;
    handle(signal, record, 0);
    handle(SIGUSR1, record, 0);
    int blocked[] = {signal, SIGUSR1};
    block_only(blocked, 2);
    seen_count = 0;
    int queued = 0;
    for (int value = 1; value <= 5; value++)
        queued += sigqueue(getpid(), signal, (union sigval){.sival_int = value * 10}) == 0;
    check(queued == 5, "five blocked real-time signals are queued", "%d queued", queued);
    sigset_t pending;
    sigpending(&pending);
    check(sigismember(&pending, signal) == 1, "sigpending shows the blocked real-time signal", "not pending");
    unblock_all();
    int in_order = seen_count == 5;
    for (int index = 0; in_order && index < 5; index++)
        in_order = seen_values[index] == (index + 1) * 10 && seen_codes[index] == SI_QUEUE;
    check(in_order, "five handler runs, in order, each with its si_value", "%d runs, first value %d",
          (int)seen_count, seen_count ? (int)seen_values[0] : -1);

    block_only(blocked, 2);
    seen_count = 0;
    for (int round = 0; round < 3; round++)
        kill(getpid(), SIGUSR1);
    unblock_all();
    check(seen_count == 1, "three blocked SIGUSR1 merge into one handler run", "%d runs", (int)seen_count);
    {
        struct sigaction action = {0};
        action.sa_handler = SIG_DFL;
        sigaction(signal, &action, NULL);
        sigaction(SIGUSR1, &action, NULL);
    }
}

static void check_thread_directed_queueing(void) {
    int signal = SIGRTMIN + 2;
    int blocked[] = {signal};
    block_only(blocked, 1);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signal;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = 4242;
    long sent = syscall(SYS_rt_tgsigqueueinfo, getpid(), thread_id(), signal, &info);
    check(sent == 0, "rt_tgsigqueueinfo queues a signal to a thread", "returned %ld", sent);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    siginfo_t taken;
    int got = sigwaitinfo(&set, &taken);
    check(got == signal && taken.si_value.sival_int == 4242 && taken.si_code == SI_QUEUE &&
              taken.si_pid == getpid(),
          "sigwaitinfo takes it with its value, code and sender", "signal %d value %d code %d", got,
          taken.si_value.sival_int, taken.si_code);
    sent = syscall(SYS_rt_tgsigqueueinfo, getpid(), 999999, signal, &info);
    check(sent == -1 && errno == ESRCH, "rt_tgsigqueueinfo to no such thread fails with ESRCH", "returned %ld",
          sent);

    struct timespec start, end, timeout = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    got = sigtimedwait(&set, &taken, &timeout);
    clock_gettime(CLOCK_MONOTONIC, &end);
    long waited_ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    check(got == -1 && errno == EAGAIN && waited_ms >= 19, "sigtimedwait times out with EAGAIN",
          "returned %d after %ld ms", got, waited_ms);
    unblock_all();
}

static volatile int waiter_got;

static void *wait_for_usr2(void *argument) {
    (void)argument;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    siginfo_t info;
    waiter_got = sigwaitinfo(&set, &info);
    return NULL;
}

static void check_process_signal_reaches_a_waiting_thread(void) {
    /* Every thread blocks SIGUSR2; one waits for it. A signal sent to the
     * process must reach that thread. */
    int blocked[] = {SIGUSR2};
    block_only(blocked, 1);
    pthread_t waiter;
    waiter_got = 0;
    pthread_create(&waiter, NULL, wait_for_usr2, NULL);
    usleep(50 * 1000);
    kill(getpid(), SIGUSR2);
    pthread_join(waiter, NULL);
    check(waiter_got == SIGUSR2, "a signal to the process reaches the thread in sigwaitinfo", "got %d",
          (int)waiter_got);
    unblock_all();
}

static void check_signalfd(void) {
    int signal = SIGRTMIN + 3;
    int blocked[] = {SIGUSR1, signal};
    block_only(blocked, 2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, signal);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    check(fd >= 0, "signalfd makes a descriptor", "returned %d", fd);
    struct signalfd_siginfo records[4];
    ssize_t got = read(fd, records, sizeof records);
    check(got == -1 && errno == EAGAIN, "an empty non-blocking signalfd reads EAGAIN", "read %zd", got);
    struct pollfd watched = {.fd = fd, .events = POLLIN};
    check(poll(&watched, 1, 0) == 0, "an empty signalfd is not readable", "revents %#x", watched.revents);
    int epoll = epoll_create1(0);
    struct epoll_event interest = {.events = EPOLLIN, .data.u32 = 77};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &interest);
    raise(SIGUSR1);
    sigqueue(getpid(), signal, (union sigval){.sival_int = 31337});
    check(poll(&watched, 1, 1000) == 1 && (watched.revents & POLLIN), "poll sees pending signals",
          "revents %#x", watched.revents);
    struct epoll_event event = {0};
    int ready = epoll_wait(epoll, &event, 1, 1000);
    check(ready == 1 && event.data.u32 == 77, "epoll sees pending signals", "ready %d", ready);
    check(read(fd, records, 100) == -1 && errno == EINVAL, "a read shorter than a record fails with EINVAL",
          "errno %d", errno);
    got = read(fd, records, sizeof records);
    check(got == 2 * (ssize_t)sizeof(struct signalfd_siginfo), "a read takes both pending signals",
          "read %zd", got);
    check(records[0].ssi_signo == SIGUSR1 && records[0].ssi_code == SI_TKILL &&
              records[0].ssi_pid == (uint32_t)getpid(),
          "the first record is raise's SIGUSR1 (SI_TKILL)", "signo %u code %d pid %u", records[0].ssi_signo,
          records[0].ssi_code, records[0].ssi_pid);
    check(records[1].ssi_signo == (uint32_t)signal && records[1].ssi_code == SI_QUEUE &&
              records[1].ssi_int == 31337,
          "the second is sigqueue's, with its value", "signo %u code %d int %d", records[1].ssi_signo,
          records[1].ssi_code, records[1].ssi_int);
    sigset_t pending;
    sigpending(&pending);
    check(!sigismember(&pending, SIGUSR1) && !sigismember(&pending, signal), "reading took them",
          "still pending");
    close(epoll);
    close(fd);
    unblock_all();
}

static char alternate[64 * 1024];
static volatile int on_stack_flags = -1, change_errno, local_on_alternate;

static void look_at_the_stack(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    (void)context;
    stack_t current;
    sigaltstack(NULL, &current);
    on_stack_flags = current.ss_flags;
    char local;
    local_on_alternate = &local >= alternate && &local < alternate + sizeof alternate;
    stack_t replacement = {.ss_sp = alternate, .ss_size = sizeof alternate, .ss_flags = 0};
    change_errno = sigaltstack(&replacement, NULL) == 0 ? 0 : errno;
}

static void check_alternate_stack(void) {
    stack_t stack = {.ss_sp = alternate, .ss_size = sizeof alternate, .ss_flags = 0};
    check(sigaltstack(&stack, NULL) == 0, "sigaltstack sets an alternate stack", "failed");
    handle(SIGUSR2, look_at_the_stack, SA_ONSTACK);
    raise(SIGUSR2);
    check(local_on_alternate, "an SA_ONSTACK handler runs on the alternate stack", "it does not");
    check(on_stack_flags == SS_ONSTACK, "sigaltstack reports SS_ONSTACK inside the handler", "flags %d",
          (int)on_stack_flags);
    check(change_errno == EPERM, "changing the alternate stack while on it fails with EPERM", "errno %d",
          (int)change_errno);
    stack_t now;
    sigaltstack(NULL, &now);
    check(now.ss_flags == 0 && now.ss_sp == alternate, "outside the handler it is enabled, not in use",
          "flags %d", now.ss_flags);
    stack_t small = {.ss_sp = alternate, .ss_size = 100, .ss_flags = 0};
    check(sigaltstack(&small, NULL) == -1 && errno == ENOMEM, "a stack below MINSIGSTKSZ fails with ENOMEM",
          "errno %d", errno);
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    sigaltstack(NULL, &now);
    check(now.ss_flags == SS_DISABLE, "SS_DISABLE turns it off", "flags %d", now.ss_flags);
    signal(SIGUSR2, SIG_DFL);
}

static volatile int handled;

static void count_it(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    (void)context;
    handled++;
}

static void check_waits_with_masks(void) {
    handle(SIGUSR1, count_it, 0);
    int blocked[] = {SIGUSR1};
    block_only(blocked, 1);
    raise(SIGUSR1);
    handled = 0;
    sigset_t empty;
    sigemptyset(&empty);
    int result = sigsuspend(&empty);
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    check(result == -1 && errno == EINTR && handled == 1, "sigsuspend runs the handler and fails with EINTR",
          "result %d handled %d", result, (int)handled);
    check(sigismember(&now, SIGUSR1) == 1, "sigsuspend restores the mask it replaced", "SIGUSR1 unblocked");

    raise(SIGUSR1);
    handled = 0;
    struct timespec timeout = {5, 0};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    result = pselect(0, NULL, NULL, NULL, &timeout, &empty);
    clock_gettime(CLOCK_MONOTONIC, &end);
    check(result == -1 && errno == EINTR && handled == 1 && end.tv_sec - start.tv_sec < 4,
          "pselect waits with its mask: a pending signal interrupts it", "result %d handled %d",
          result, (int)handled);
    sigprocmask(SIG_SETMASK, NULL, &now);
    check(sigismember(&now, SIGUSR1) == 1, "pselect restores the mask", "SIGUSR1 unblocked");

    int pipe_ends[2];
    pipe(pipe_ends);
    raise(SIGUSR1);
    handled = 0;
    struct pollfd watched = {.fd = pipe_ends[0], .events = POLLIN};
    struct timespec short_wait = {0, 10 * 1000 * 1000};
    result = ppoll(&watched, 1, &short_wait, NULL);
    check(result == 0 && handled == 0, "ppoll without a mask leaves a blocked signal pending",
          "result %d handled %d", result, (int)handled);
    result = ppoll(&watched, 1, &short_wait, &empty);
    check(result == -1 && errno == EINTR && handled == 1, "ppoll with a mask lets it through", "result %d",
          result);

    /* The system call itself: C libraries may pass select a copy. */
    struct timeval left = {0, 30 * 1000};
    result = (int)syscall(SYS_select, 0, NULL, NULL, NULL, &left);
    check(result == 0 && left.tv_sec == 0 && left.tv_usec == 0, "select writes back no time left at its end",
          "left %ld.%06ld", (long)left.tv_sec, (long)left.tv_usec);
    write(pipe_ends[1], "x", 1);
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(pipe_ends[0], &readable);
    left = (struct timeval){5, 0};
    result = (int)syscall(SYS_select, pipe_ends[0] + 1, &readable, NULL, NULL, &left);
    long left_us = left.tv_sec * 1000000L + left.tv_usec;
    check(result == 1 && left_us > 1000000 && left_us <= 5000000, "select writes back the time left",
          "result %d left %ld us", result, left_us);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    unblock_all();
    signal(SIGUSR1, SIG_DFL);
}

static sigjmp_buf escape;
static volatile int fpe_code;

static void on_fpe(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    fpe_code = info->si_code;
    siglongjmp(escape, 1);
}

static void set_mxcsr(unsigned value) {
    __asm__ volatile("ldmxcsr %0" : : "m"(value));
}

/* Whether this runs under QEMU's emulator (TCG), whose hypervisor leaf
 * says "TCGTCGTCGTCG": it raises no SSE floating-point exceptions. */
static int is_emulated(void) {
    unsigned eax, ebx, ecx, edx;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
    if (!(ecx & (1u << 31)))
        return 0;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(0x40000000), "c"(0));
    char vendor[13] = {0};
    memcpy(vendor, &ebx, 4);
    memcpy(vendor + 4, &ecx, 4);
    memcpy(vendor + 8, &edx, 4);
    return strcmp(vendor, "TCGTCGTCGTCG") == 0;
}

static void check_floating_point_exceptions(void) {
    handle(SIGFPE, on_fpe, 0);
    volatile double zero = 0.0, one = 1.0, big = 1e308;
    volatile double result;
    if (is_emulated()) {
        skip("an unmasked SSE division by zero raises SIGFPE (FPE_FLTDIV)", "QEMU's emulator raises no SSE exceptions");
        skip("an unmasked SSE overflow raises SIGFPE (FPE_FLTOVF)", "QEMU's emulator raises no SSE exceptions");
        goto x87;
    }
    /* SSE: unmask division by zero (MXCSR bit 9), then overflow (bit 10). */
    fpe_code = 0;
    if (sigsetjmp(escape, 1) == 0) {
        set_mxcsr(0x1f80 & ~(1u << 9));
        result = one / zero;
    }
    set_mxcsr(0x1f80);
    check(fpe_code == FPE_FLTDIV, "an unmasked SSE division by zero raises SIGFPE (FPE_FLTDIV)", "code %d",
          (int)fpe_code);
    fpe_code = 0;
    if (sigsetjmp(escape, 1) == 0) {
        set_mxcsr(0x1f80 & ~(1u << 10));
        result = big * big;
    }
    set_mxcsr(0x1f80);
    check(fpe_code == FPE_FLTOVF, "an unmasked SSE overflow raises SIGFPE (FPE_FLTOVF)", "code %d",
          (int)fpe_code);
x87:
    /* x87: unmask division by zero in the control word; the fault comes at
     * the next waiting instruction. */
    fpe_code = 0;
    if (sigsetjmp(escape, 1) == 0) {
        unsigned short control = 0x037f & ~(1u << 2);
        __asm__ volatile("fninit\n\tfldcw %0\n\tfld1\n\tfldz\n\tfdivrp\n\tfwait\n\tfstp %%st(0)"
                         :
                         : "m"(control));
    }
    __asm__ volatile("fninit");
    check(fpe_code == FPE_FLTDIV, "an unmasked x87 division by zero raises SIGFPE (FPE_FLTDIV)", "code %d",
          (int)fpe_code);
    (void)result;
    signal(SIGFPE, SIG_DFL);
}

static void check_sigpending_limit(void) {
    /* Linux counts the signals queued for the user, in every process: so
     * at most the limit are queued here before EAGAIN. */
    enum { LIMIT = 64 };
    int signal = SIGRTMIN + 4;
    int blocked[] = {signal};
    block_only(blocked, 1);
    struct rlimit old, small = {LIMIT, LIMIT};
    getrlimit(RLIMIT_SIGPENDING, &old);
    setrlimit(RLIMIT_SIGPENDING, &small);
    int sent = 0, last_errno = 0;
    for (int round = 0; round <= LIMIT && last_errno == 0; round++) {
        if (sigqueue(getpid(), signal, (union sigval){.sival_int = round}) == 0)
            sent++;
        else
            last_errno = errno;
    }
    setrlimit(RLIMIT_SIGPENDING, &old);
    check(sent <= LIMIT && last_errno == EAGAIN, "sigqueue past RLIMIT_SIGPENDING fails with EAGAIN",
          "%d sent, errno %d", sent, last_errno);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    struct timespec none = {0, 0};
    int taken = 0;
    while (sigtimedwait(&set, NULL, &none) == signal)
        taken++;
    check(taken == sent, "the queued ones are all there", "%d of %d taken", taken, sent);
    unblock_all();
}

static volatile sig_atomic_t restart_handled;

static void count_restart_signal(int signal) {
    (void)signal;
    restart_handled++;
}

/* The parent waits for a child that signals it first and ends 200 ms
 * later: waitpid resumes after a handler installed with SA_RESTART (as
 * glibc's signal() installs it) and fails with EINTR after one without. */
static void check_wait_restarts(int flags, const char *name) {
    struct sigaction action = {0};
    action.sa_handler = count_restart_signal;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    struct sigaction old;
    sigaction(SIGUSR2, &action, &old);
    restart_handled = 0;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
        kill(parent, SIGUSR2);
        pause.tv_nsec = 200 * 1000 * 1000;
        nanosleep(&pause, NULL);
        _exit(7);
    }
    int status = 0;
    pid_t waited = waitpid(child, &status, 0);
    int wait_errno = errno;
    if (flags & SA_RESTART)
        check(waited == child && WIFEXITED(status) && WEXITSTATUS(status) == 7 && restart_handled == 1, name,
              "waitpid gave %d (errno %d), status %#x, %d handled", waited, wait_errno, status, restart_handled);
    else
        check(waited == -1 && wait_errno == EINTR && restart_handled == 1, name,
              "waitpid gave %d (errno %d), %d handled", waited, wait_errno, restart_handled);
    if (waited != child)
        waitpid(child, &status, 0);
    sigaction(SIGUSR2, &old, NULL);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_real_time_queueing();
    check_thread_directed_queueing();
    check_process_signal_reaches_a_waiting_thread();
    check_signalfd();
    check_alternate_stack();
    check_waits_with_masks();
    check_floating_point_exceptions();
    check_sigpending_limit();
    check_wait_restarts(SA_RESTART, "waitpid resumes after an SA_RESTART handler");
    check_wait_restarts(0, "waitpid fails with EINTR after a handler without SA_RESTART");
    printf("%d checks failed\n", failures);
    return failures;
}
