/* Checks signals that do not wait for a system call: faults (SIGSEGV,
 * SIGFPE, SIGILL) that handlers catch, and signals sent to threads that
 * spin without making system calls, which must not disturb any register of
 * the code they interrupt. Prints one line per check ("ok <name>" or
 * "FAIL <name>: <why>") and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static sigjmp_buf escape;
static volatile sig_atomic_t caught_signal, caught_code;
static void *volatile caught_address;

static void on_fault(int signal, siginfo_t *info, void *context) {
    (void)context;
    caught_signal = signal;
    caught_code = info->si_code;
    caught_address = info->si_addr;
    siglongjmp(escape, 1);
}

static void catch_faults(int signal) {
    struct sigaction action = {0};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO;
    sigaction(signal, &action, NULL);
}

static void check_segmentation_faults(void) {
    catch_faults(SIGSEGV);
    volatile int *unmapped = (volatile int *)0x10000;
    caught_signal = 0;
    if (sigsetjmp(escape, 1) == 0)
        *unmapped = 1;
    check(caught_signal == SIGSEGV && caught_code == SEGV_MAPERR && caught_address == (void *)unmapped,
          "a write to unmapped memory raises SIGSEGV (SEGV_MAPERR, si_addr)", "signal %d code %d address %p",
          (int)caught_signal, (int)caught_code, caught_address);
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    caught_signal = 0;
    if (sigsetjmp(escape, 1) == 0)
        page[8] = 1;
    check(caught_signal == SIGSEGV && caught_code == SEGV_ACCERR && caught_address == page + 8,
          "a write to a read-only page raises SIGSEGV (SEGV_ACCERR)", "signal %d code %d", (int)caught_signal,
          (int)caught_code);
    /* The handler may return: the signal's mask is restored. */
    caught_signal = 0;
    if (sigsetjmp(escape, 1) == 0)
        *unmapped = 2;
    check(caught_signal == SIGSEGV, "SIGSEGV is caught again after a handler jumped out", "not caught");
    munmap(page, 4096);
}

static char *fixable_page;
static volatile int fixes;

static void fix_and_return(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    fixes++;
    mprotect((void *)((uintptr_t)info->si_addr & ~(uintptr_t)4095), 4096, PROT_READ | PROT_WRITE);
}

static void check_handler_that_returns(void) {
    struct sigaction action = {0};
    action.sa_sigaction = fix_and_return;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, NULL);
    fixable_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fixable_page[100] = 42; /* faults once; the handler opens the page; the write runs again */
    check(fixes == 1 && fixable_page[100] == 42, "a handler that fixes the fault lets the instruction run again",
          "%d fixes, value %d", fixes, fixable_page[100]);
    munmap(fixable_page, 4096);
    catch_faults(SIGSEGV);
}

static void check_arithmetic_and_illegal_instructions(void) {
    catch_faults(SIGFPE);
    caught_signal = 0;
    volatile int zero = 0, result = 0;
    if (sigsetjmp(escape, 1) == 0)
        result = 10 / zero;
    check(caught_signal == SIGFPE && caught_code == FPE_INTDIV, "division by zero raises SIGFPE (FPE_INTDIV)",
          "signal %d code %d (result %d)", (int)caught_signal, (int)caught_code, result);
    catch_faults(SIGILL);
    caught_signal = 0;
    if (sigsetjmp(escape, 1) == 0)
        __asm__ volatile("ud2");
    check(caught_signal == SIGILL && caught_code == ILL_ILLOPN, "an undefined instruction raises SIGILL",
          "signal %d code %d", (int)caught_signal, (int)caught_code);
}

/* ---- signals to threads that never make a system call ---- */

static atomic_int stop_spinning;
static atomic_int handled;

static void on_user_signal(int signal) {
    (void)signal;
    atomic_fetch_add(&handled, 1);
    /* Clobber what the interrupted code must get back. */
    __asm__ volatile("xor %%ecx, %%ecx\n\txor %%r11d, %%r11d\n\tmov $7, %%eax" ::: "rcx", "r11", "rax", "cc");
}

static void *spin_until_told(void *argument) {
    (void)argument;
    while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed))
        ;
    return NULL;
}

/* Keeps values in RCX and R11 (which a system call would destroy) across a
 * busy loop, many times; returns how often they changed. */
static void *keep_registers(void *argument) {
    (void)argument;
    long changed = 0;
    while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed)) {
        uint64_t a = 0x1111222233334444, b = 0x5555666677778888, c = 0x99990000aaaabbbb, out_a, out_b, out_c;
        __asm__ volatile("mov %[a], %%rcx\n\t"
                         "mov %[b], %%r11\n\t"
                         "mov %[c], %%rax\n\t"
                         "mov $20000, %%edx\n"
                         "1:\n\t"
                         "dec %%edx\n\t"
                         "jnz 1b\n\t"
                         "mov %%rcx, %[out_a]\n\t"
                         "mov %%r11, %[out_b]\n\t"
                         "mov %%rax, %[out_c]\n\t"
                         : [out_a] "=&r"(out_a), [out_b] "=&r"(out_b), [out_c] "=&r"(out_c)
                         : [a] "r"(a), [b] "r"(b), [c] "r"(c)
                         : "rcx", "r11", "rax", "rdx", "cc");
        changed += out_a != a || out_b != b || out_c != c;
    }
    return (void *)changed;
}

static double seconds_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void check_signals_to_spinning_threads(void) {
    signal(SIGUSR1, on_user_signal);
    atomic_store(&stop_spinning, 0);
    atomic_store(&handled, 0);
    pthread_t spinner, keeper;
    int created = pthread_create(&spinner, NULL, spin_until_told, NULL) == 0;
    created += pthread_create(&keeper, NULL, keep_registers, NULL) == 0;
    struct timespec start, pause = {0, 2 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    nanosleep(&pause, NULL);
    pthread_kill(spinner, SIGUSR1);
    while (atomic_load(&handled) == 0 && seconds_since(&start) < 20)
        nanosleep(&pause, NULL);
    check(created == 2 && atomic_load(&handled) == 1, "a thread spinning without system calls takes a signal",
          "%d handled after %.1f s", atomic_load(&handled), seconds_since(&start));
    int sent = 0;
    for (int i = 0; i < 60; i++) {
        sent += pthread_kill(keeper, SIGUSR1) == 0;
        nanosleep(&pause, NULL);
    }
    while (atomic_load(&handled) < sent + 1 && seconds_since(&start) < 40)
        nanosleep(&pause, NULL);
    atomic_store(&stop_spinning, 1);
    void *changed = NULL;
    pthread_join(spinner, NULL);
    pthread_join(keeper, &changed);
    check(atomic_load(&handled) > 1 && changed == NULL,
          "signals interrupting arbitrary code give back every register (RCX, R11 and RAX too)",
          "%d of %d signals handled, registers changed %ld times", atomic_load(&handled) - 1, sent, (long)changed);
}

/* ---- a signal sent before a new thread first runs ---- */

/* From <linux/futex.h>, which musl's compiler wrapper cannot see. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1

static atomic_int fresh_handled;
static atomic_int fresh_tid;
static char fresh_stack[64 * 1024] __attribute__((aligned(16)));

static void on_fresh_signal(int signal) {
    (void)signal;
    atomic_store(&fresh_handled, 1);
    syscall(SYS_futex, &fresh_handled, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Spins without a system call until its handler ran. */
static int fresh_spinner(void *argument) {
    (void)argument;
    while (!atomic_load_explicit(&fresh_handled, memory_order_relaxed)) {
    }
    return 0;
}

/* The C libraries block signals while they create a thread and unblock
 * them with a system call in it, where the kernel delivers what waits: a
 * bare clone() has no such call, so the signal must be noticed on the new
 * thread's way into application code. On one processor the new thread
 * first runs only once this one blocks, after the signal was sent. */
static void check_signal_before_first_run(void) {
    const char *name = "a signal sent before a new thread first runs reaches it while it spins";
    struct sigaction action = {0};
    action.sa_handler = on_fresh_signal;
    sigaction(SIGUSR2, &action, NULL);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    int tid =
        clone(fresh_spinner, fresh_stack + sizeof fresh_stack, flags, NULL, &fresh_tid, NULL, &fresh_tid);
    if (tid < 0) {
        check(0, name, "clone failed");
        return;
    }
    syscall(SYS_tgkill, getpid(), tid, SIGUSR2);
    /* No timeout: a processor with a timer armed would be interrupted
     * sooner or later and notice the signal then; with none, a missed
     * signal hangs here until the machine's time limit. */
    while (!atomic_load(&fresh_handled))
        syscall(SYS_futex, &fresh_handled, FUTEX_WAIT, 0, NULL, NULL, 0);
    /* The thread ends once its handler ran; wait for the kernel to clear
     * its tid before its stack may be reused. */
    for (int value; (value = atomic_load(&fresh_tid)) != 0;)
        syscall(SYS_futex, &fresh_tid, FUTEX_WAIT, value, NULL, NULL, 0);
    check(1, name, "handled");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_segmentation_faults();
    check_handler_that_returns();
    check_arithmetic_and_illegal_instructions();
    check_signals_to_spinning_threads();
    check_signal_before_first_run();
    printf("%d checks failed\n", failures);
    return failures;
}
