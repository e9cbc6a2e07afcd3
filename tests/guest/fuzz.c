/* A system-call fuzzer: calls every system call number with arguments drawn
 * from interesting values (0, -1, small numbers, huge sizes, kernel-half and
 * non-canonical pointers, pointers running into a guard page, valid buffers,
 * descriptors of every kind), deterministically from a seed, on several
 * threads. Each call is printed before it is made, so the last line a
 * thread printed names the culprit when the machine dies.
 *
 *   fuzz [--seed N] [--calls N] [--threads N] [--exclude NR[,NR...]]
 *        [--no-populate] [--no-huge-offsets]
 *
 * --calls is per thread. --exclude leaves system call numbers out;
 * --no-populate clears MAP_POPULATE and MAP_LOCKED from mmap flags and
 * leaves out mlock and mlockall (they fill guest memory); --no-huge-offsets
 * keeps file offsets and lengths given to pwrite, ftruncate, fallocate and
 * friends below 1 MiB. The last two exist to set aside what exhausts or
 * corrupts memory while that is being fixed.
 *
 * Calls that would end the run or wreck the fuzzer's own state are steered,
 * not skipped: memory calls work only inside a sacrificial region, the log
 * descriptor is never closed or replaced, signals that cannot be caught are
 * never sent, clones run a child that exits at once (and tells its parent
 * with SIGCHLD or nothing), rt_sigreturn gets a
 * crafted frame that lands in a recovery point. Only exit, exit_group and
 * reboot are never made. A watchdog interrupts calls that block (with a
 * signal, as Linux lets any blocking call be interrupted) and reports a
 * call that stays stuck.
 *
 * It prints "fuzz: done: ..." and exits with 0 when every thread finished;
 * 3 when a call stayed blocked, 4 when the fuzzer itself faulted. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define HIGHEST_NUMBER 470
#define MAX_THREADS 8
#define LOG_FD 700
#define WAKE_SIGNAL 40
#define PAGE 4096UL
#define REGION_ADDRESS 0x500000000000UL
#define REGION_SIZE (256 * PAGE)
#define SCRATCH_SIZE (64 * 1024)
#define MAX_DESCRIPTORS 48

/* --- raw system calls and output ------------------------------------- */

static long raw6(long number, long a0, long a1, long a2, long a3, long a4, long a5) {
    register long r10 __asm__("r10") = a3;
    register long r8 __asm__("r8") = a4;
    register long r9 __asm__("r9") = a5;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

#define raw(n, a, b, c) raw6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

struct line {
    char text[640];
    size_t length;
};

static void put(struct line *line, const char *text) {
    while (*text && line->length < sizeof line->text - 1)
        line->text[line->length++] = *text++;
}

static void put_hex(struct line *line, unsigned long value) {
    char digits[19];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value & 15];
        value >>= 4;
    } while (value);
    put(line, "0x");
    while (count && line->length < sizeof line->text - 1)
        line->text[line->length++] = digits[--count];
}

static void put_decimal(struct line *line, unsigned long value) {
    char digits[21];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (count && line->length < sizeof line->text - 1)
        line->text[line->length++] = digits[--count];
}

/* Writes the line with a newline; the line keeps its text. */
static void emit(struct line *line) {
    line->text[line->length] = '\n';
    size_t done = 0;
    while (done < line->length + 1) {
        long written = raw(SYS_write, LOG_FD, line->text + done, line->length + 1 - done);
        if (written <= 0)
            break;
        done += (size_t)written;
    }
}

static void say(const char *text) {
    struct line line = {.length = 0};
    put(&line, text);
    emit(&line);
}

/* --- the pseudo-random generator (splitmix64) ------------------------- */

static uint64_t next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t *state, uint64_t bound) { return next(state) % bound; }

/* --- what the arguments are drawn from --------------------------------- */

static int descriptors[MAX_DESCRIPTORS];
static int highest_descriptor = 2;
static int descriptor_count;
/* Everything a call may write to lies in mappings of its own, each
 * followed by an unmapped page, so that no size given with a valid pointer
 * reaches the fuzzer's own data. */
static char *scratch[MAX_THREADS];
static char *guard_end; /* the first byte of a page that is never mapped */
static unsigned long initial_break;
static void *signal_restorer;
static int exclude_populate, exclude_huge_offsets;
static unsigned char excluded[HIGHEST_NUMBER + 1];

static const char *const paths[] = {
    "/tmp/fuzz/file", "/tmp/fuzz/dir", "/tmp/fuzz/new", "/tmp/fuzz/dir/sub", "/tmp/fuzz/link",
    "/proc/self/status", "/proc/self/maps", "/dev/null", "/", ".", "..", "", "/nonexistent/x",
    "/tmp/fuzz/dir/../file", "/dev/zero", "/proc/self/fd/3",
};
#define PATH_COUNT (sizeof paths / sizeof paths[0])
static char *path_copies[PATH_COUNT]; /* in a read-only page */
static char *long_path;                /* ends at guard_end */

static const unsigned long numbers[] = {
    0, 1, 2, 3, 4, 7, 8, 16, 17, 64, 255, 256, 4095, 4096, 4097, 65536, 0x7fffffff, 0x80000000,
    0xffffffff, 0x100000000UL, 1UL << 40, 1UL << 47, 1UL << 62, 0x7fffffffffffffffUL, -1UL, -2UL,
    -4095UL, -4096UL, (unsigned long)INT32_MIN,
    /* ioctl requests (TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, SIOCGIF*) and
     * Linux's own fcntl commands (F_SETLEASE .. F_GET_SEALS). */
    0x5401, 0x5402, 0x5413, 0x541b, 0x5421, 0x5451, 0x8912, 0x8913, 0x8915, 0x8927, 0x8933, 1024, 1025,
    1026, 1030, 1031, 1032, 1033, 1034,
};

static const unsigned long bad_pointers[] = {
    0x10, 0x1000, 0xfff, 0x0000800000000000UL, 0x8000000000000000UL, 0xdead000000000000UL,
    0xffff800000000000UL, 0xffff800000100000UL, 0xffffffff80000000UL, 0xffffffff80200000UL,
    0xfffffffffffff000UL, -1UL, 0x00007ffffffff000UL,
};

/* A pointer to a valid buffer, one running into the guard page, or a bad
 * one. */
static unsigned long pointer(uint64_t *state, int thread) {
    switch (below(state, 8)) {
    case 0:
    case 1:
    case 2:
        return (unsigned long)(scratch[thread] + below(state, 16) * 256);
    case 3:
        return (unsigned long)(guard_end - (1UL << below(state, 8)));
    case 4:
        return REGION_ADDRESS + below(state, REGION_SIZE / PAGE) * PAGE;
    case 5: {
        unsigned pick = (unsigned)below(state, PATH_COUNT + 1);
        return pick == PATH_COUNT ? (unsigned long)long_path : (unsigned long)path_copies[pick];
    }
    default:
        return bad_pointers[below(state, sizeof bad_pointers / sizeof bad_pointers[0])];
    }
}

static unsigned long number(uint64_t *state) {
    switch (below(state, 6)) {
    case 0:
        return below(state, 32);
    case 1:
        return 1UL << below(state, 64);
    case 2:
        return next(state);
    case 3:
        return next(state) & 0xffff;
    default:
        return numbers[below(state, sizeof numbers / sizeof numbers[0])];
    }
}

static unsigned long descriptor(uint64_t *state) {
    if (descriptor_count == 0 || below(state, 8) == 0)
        return below(state, 2) ? -1UL : below(state, 1100) + 3;
    return (unsigned long)descriptors[below(state, (uint64_t)descriptor_count)];
}

/* An iovec array in scratch whose entries mix valid, bad and huge. */
static unsigned long iovecs(uint64_t *state, int thread) {
    struct iovec *vector = (struct iovec *)(scratch[thread] + SCRATCH_SIZE - 16 * sizeof(struct iovec));
    for (int i = 0; i < 16; i++) {
        vector[i].iov_base = (void *)pointer(state, thread);
        vector[i].iov_len = below(state, 3) ? below(state, 512) : number(state);
    }
    return (unsigned long)vector;
}

static unsigned long argument(uint64_t *state, int thread, int position) {
    uint64_t pick = below(state, 16);
    if (position == 0 && pick < 7)
        return descriptor(state);
    if (pick < 2)
        return descriptor(state);
    if (pick < 7)
        return number(state);
    if (pick < 8)
        return iovecs(state, thread);
    return pointer(state, thread);
}

/* --- signals ----------------------------------------------------------- */

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    unsigned long mask;
};

#define SA_RESTORER_FLAG 0x04000000UL

static __thread sigjmp_buf recovery;
static __thread volatile int is_recovery_armed;
static volatile long signals_caught;

static __thread struct line *current_line;

static void on_signal(int signal, siginfo_t *info, void *context) {
    __atomic_add_fetch(&signals_caught, 1, __ATOMIC_RELAXED);
    int is_fault = info->si_code > 0 &&
                   (signal == SIGSEGV || signal == SIGBUS || signal == SIGILL || signal == SIGFPE ||
                    signal == SIGTRAP);
    if (!is_fault)
        return;
    if (is_recovery_armed) {
        is_recovery_armed = 0;
        siglongjmp(recovery, 1);
    }
    struct line line = {.length = 0};
    put(&line, "fuzz: the fuzzer itself faulted: signal ");
    put_decimal(&line, (unsigned long)signal);
    put(&line, " code ");
    put_decimal(&line, (unsigned long)info->si_code);
    put(&line, " address ");
    put_hex(&line, (unsigned long)info->si_addr);
    static const char *const names[] = {"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi",
                                        "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip", "flags"};
    for (int i = 0; i < 18; i++) {
        put(&line, " ");
        put(&line, names[i]);
        put(&line, " ");
        put_hex(&line, (unsigned long)((ucontext_t *)context)->uc_mcontext.gregs[i]);
    }
    if (current_line) {
        put(&line, " after: ");
        for (size_t c = 0; c < current_line->length && line.length < sizeof line.text - 1; c++)
            line.text[line.length++] = current_line->text[c];
    }
    emit(&line);
    raw(SYS_exit_group, 4, 0, 0);
}

static void install_handler(int signal) {
    if (signal == SIGKILL || signal == SIGSTOP)
        return;
    struct kernel_sigaction action = {
        .handler = (void *)on_signal,
        .flags = SA_SIGINFO | SA_RESTORER_FLAG,
        .restorer = signal_restorer,
        .mask = 0,
    };
    raw6(SYS_rt_sigaction, signal, (long)&action, 0, 8, 0, 0);
}

static void install_handlers(void) {
    /* The C library's restorer, as its sigaction installs it. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_signal;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &action, NULL);
    struct kernel_sigaction installed;
    raw6(SYS_rt_sigaction, SIGUSR1, 0, (long)&installed, 8, 0, 0);
    signal_restorer = installed.restorer;
    for (int signal = 1; signal <= 64; signal++)
        install_handler(signal);
}

static void unblock_all(void) {
    unsigned long none = 0;
    raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8, 0, 0);
}

/* --- steering ---------------------------------------------------------- */

static int is_fatal_signal(unsigned long signal) { return signal == SIGKILL || signal == SIGSTOP; }

static int is_log_descriptor(unsigned long fd) { return (unsigned int)fd == LOG_FD; }

/* A length that stays inside the sacrificial region from `address`, or one
 * that runs past the end of the application's half. */
static unsigned long region_length(uint64_t *state, unsigned long address) {
    unsigned long room = REGION_ADDRESS + REGION_SIZE - address;
    switch (below(state, 4)) {
    case 0:
        return 0;
    case 1:
        return -1UL - below(state, 2) * PAGE;
    case 2:
        return 0x0000800000000000UL - address + PAGE * (1 + below(state, 2));
    default:
        return below(state, room + 1) & (below(state, 2) ? ~(PAGE - 1) : -1UL);
    }
}

static unsigned long region_address(uint64_t *state) {
    unsigned long address = REGION_ADDRESS + below(state, REGION_SIZE / PAGE) * PAGE;
    if (below(state, 8) == 0)
        address += below(state, PAGE);
    return address;
}

static unsigned long small_offset(uint64_t *state, unsigned long value) {
    return exclude_huge_offsets ? value % (1UL << 20) : (below(state, 4) ? value : next(state));
}

/* A sigset that leaves the watchdog's signal deliverable. */
static unsigned long wake_safe_mask(uint64_t *state, int thread, int with_size) {
    unsigned long *mask = (unsigned long *)(scratch[thread] + 0x3000);
    mask[0] = next(state) & ~(1UL << (WAKE_SIGNAL - 1));
    mask[1] = 8;
    if (with_size) {
        /* pselect6's sixth argument: { const sigset_t *, size_t }. */
        unsigned long *pair = mask + 2;
        pair[0] = below(state, 4) ? (unsigned long)mask : bad_pointers[below(state, 4)];
        pair[1] = below(state, 4) ? 8 : number(state);
        return (unsigned long)pair;
    }
    switch (below(state, 4)) {
    case 0:
        return 0;
    case 1:
        return bad_pointers[below(state, sizeof bad_pointers / sizeof bad_pointers[0])];
    default:
        return (unsigned long)mask;
    }
}

/* A siginfo in scratch sent with a signal is marked as sent by a program,
 * so that the handler does not take a queued SIGSEGV for a fault. */
static void queued_as_user(unsigned long info, int thread) {
    if (info >= (unsigned long)scratch[thread] && info <= (unsigned long)scratch[thread] + SCRATCH_SIZE - 16)
        ((int *)info)[2] = -1; /* si_code: SI_QUEUE */
}

/* Rewrites the arguments of calls that would wreck the fuzzer. Returns 0 to
 * leave the call out entirely. */
static int steer(long number_, unsigned long *a, uint64_t *state, int thread) {
    /* An x32 number whose low part ends the run is left out too, in case
     * a kernel ignored the x32 bit. */
    long low_part = number_ >= 0x40000000L && number_ < 0x40001000L ? number_ - 0x40000000L : -1;
    if (low_part == SYS_exit || low_part == SYS_exit_group || low_part == SYS_reboot)
        return 0;
    switch (number_) {
    case SYS_exit:
    case SYS_exit_group:
    case SYS_reboot:
        return 0;
    /* Descriptors are unsigned ints: the kernel looks at the low 32 bits. */
    case SYS_close:
        if ((unsigned int)a[0] <= 2 || is_log_descriptor(a[0]))
            a[0] = descriptor(state);
        if ((unsigned int)a[0] <= 2 || is_log_descriptor(a[0]))
            a[0] = 1000;
        break;
    case SYS_close_range:
        if ((unsigned int)a[0] <= 2)
            a[0] = 3 + below(state, 40);
        if ((unsigned int)a[0] <= LOG_FD && (unsigned int)a[1] >= LOG_FD)
            a[1] = LOG_FD - 1;
        break;
    case SYS_dup2:
    case SYS_dup3:
        if ((unsigned int)a[1] <= 2 || is_log_descriptor(a[1]))
            a[1] = 3 + below(state, 200);
        break;
    case SYS_fcntl:
        /* F_DUPFD may land anywhere; F_SETSIG must not choose SIGKILL. */
        if (a[1] == F_SETSIG && is_fatal_signal(a[2]))
            a[2] = SIGUSR2;
        if (is_log_descriptor(a[0]))
            a[0] = descriptor(state);
        break;
    case SYS_mmap:
        if (exclude_populate)
            a[3] &= ~(unsigned long)(MAP_POPULATE | MAP_LOCKED);
        if (a[3] & MAP_FIXED) {
            a[0] = region_address(state);
            a[1] = region_length(state, a[0]);
        }
        break;
    case SYS_munmap:
    case SYS_mprotect:
    case SYS_madvise:
    case SYS_msync:
    case SYS_mlock:
    case SYS_munlock:
    case SYS_remap_file_pages:
    case SYS_pkey_mprotect:
    case SYS_mbind:
    case SYS_mlock2:
        if (exclude_populate && (number_ == SYS_mlock || number_ == SYS_mlock2))
            return 0;
        a[0] = region_address(state);
        a[1] = region_length(state, a[0]);
        break;
    case SYS_mlockall:
        if (exclude_populate)
            return 0;
        break;
    case SYS_mremap:
        a[0] = region_address(state);
        a[1] = region_length(state, a[0]);
        if (a[3] & MREMAP_FIXED)
            a[4] = region_address(state);
        break;
    case SYS_brk:
        if (a[0] != 0 && a[0] < initial_break)
            a[0] = initial_break + below(state, 64) * PAGE;
        break;
    case SYS_shmat:
        a[1] = below(state, 2) ? 0 : region_address(state);
        break;
    case SYS_shmdt:
        a[0] = region_address(state);
        break;
    case SYS_process_madvise:
    case SYS_process_vm_writev:
        /* They name ranges through iovecs; keep them off this process. */
        a[0] = 0x7fffffff;
        break;
    case SYS_arch_prctl:
        if (a[0] == 0x1002 /* ARCH_SET_FS */) {
            unsigned long base = 0;
            raw(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &base, 0);
            a[1] = base;
        }
        break;
    case SYS_kill:
    case SYS_tkill:
        if (is_fatal_signal(a[1]))
            a[1] = SIGUSR2;
        break;
    case SYS_tgkill:
    case SYS_rt_tgsigqueueinfo:
        if (is_fatal_signal(a[2]))
            a[2] = SIGUSR2;
        if (number_ == SYS_rt_tgsigqueueinfo)
            queued_as_user(a[3], thread);
        break;
    case SYS_rt_sigqueueinfo:
    case SYS_pidfd_send_signal:
        if (is_fatal_signal(a[1]))
            a[1] = SIGUSR2;
        queued_as_user(a[2], thread);
        break;
    case SYS_rt_sigaction: {
        /* A crafted action (the fuzzer's handler, random flags and mask),
         * none, or a bad pointer; the handler is put back afterwards. */
        struct kernel_sigaction *action = (struct kernel_sigaction *)(scratch[thread] + 0x2000);
        action->handler = (void *)on_signal;
        action->flags = (next(state) & (SA_SIGINFO | SA_NOCLDSTOP | SA_NOCLDWAIT | SA_NODEFER)) |
                        SA_RESTORER_FLAG;
        action->restorer = signal_restorer;
        action->mask = next(state) & ~(1UL << (WAKE_SIGNAL - 1));
        uint64_t pick = below(state, 4);
        a[1] = pick == 0 ? 0 : pick == 1 ? pointer(state, thread) : (unsigned long)action;
        if (a[1] >= (unsigned long)scratch[thread] && a[1] < (unsigned long)scratch[thread] + SCRATCH_SIZE)
            a[1] = (unsigned long)action;
        if (below(state, 2))
            a[3] = 8;
        break;
    }
    case SYS_rt_sigsuspend:
        a[0] = wake_safe_mask(state, thread, 0);
        a[1] = below(state, 4) ? 8 : a[1];
        break;
    case SYS_ppoll:
        a[3] = wake_safe_mask(state, thread, 0);
        break;
    case SYS_epoll_pwait:
    case SYS_epoll_pwait2:
        a[4] = wake_safe_mask(state, thread, 0);
        break;
    case SYS_pselect6:
        a[5] = below(state, 4) ? wake_safe_mask(state, thread, 1) : 0;
        break;
    case SYS_sigaltstack:
        /* Only look, or pass a bad pointer: a new stack could be unmapped
         * under a handler. */
        if (a[0] >= (unsigned long)scratch[thread] && a[0] < (unsigned long)scratch[thread] + SCRATCH_SIZE)
            a[0] = 0;
        if (a[0] >= REGION_ADDRESS && a[0] < REGION_ADDRESS + REGION_SIZE)
            a[0] = 0;
        break;
    case SYS_timer_create:
    case SYS_mq_notify: {
        /* A sigevent whose signal can be caught. */
        int position = number_ == SYS_timer_create ? 1 : 1;
        struct sigevent *event = (struct sigevent *)(scratch[thread] + 0x2800);
        memset(event, 0, sizeof *event);
        event->sigev_notify = below(state, 2) ? SIGEV_SIGNAL : (int)number(state);
        event->sigev_signo = (int)below(state, 65);
        if (is_fatal_signal((unsigned long)event->sigev_signo))
            event->sigev_signo = SIGUSR2;
        if (a[position] >= (unsigned long)scratch[thread] &&
            a[position] < (unsigned long)scratch[thread] + SCRATCH_SIZE)
            a[position] = (unsigned long)event;
        break;
    }
    case SYS_setrlimit:
    case SYS_prlimit64: {
        int resource_position = number_ == SYS_setrlimit ? 0 : 1;
        int limit_position = number_ == SYS_setrlimit ? 1 : 2;
        unsigned long resource = a[resource_position];
        /* RLIMIT_CPU's hard limit ends the process with SIGKILL; below
         * RLIMIT_SIGPENDING's, the watchdog's real-time wake signal cannot
         * be queued (tgkill fails with EAGAIN, on Linux too) and a call
         * that blocks stays blocked. */
        if (resource == 0 /* RLIMIT_CPU */ || resource == 11 /* RLIMIT_SIGPENDING */) {
            unsigned long *infinity = (unsigned long *)(scratch[thread] + 0x2c00);
            infinity[0] = infinity[1] = -1UL;
            a[limit_position] = (unsigned long)infinity;
        }
        break;
    }
    case SYS_seccomp:
        a[0] = 2 + below(state, 3);
        break;
    case SYS_pwrite64:
    case SYS_pread64:
    case SYS_preadv:
    case SYS_pwritev:
    case SYS_preadv2:
    case SYS_pwritev2:
        a[3] = small_offset(state, a[3]);
        break;
    case SYS_ftruncate:
    case SYS_truncate:
        a[1] = small_offset(state, a[1]);
        break;
    case SYS_fallocate:
        a[2] = small_offset(state, a[2]);
        a[3] = small_offset(state, a[3]);
        break;
    case SYS_lseek:
        if (exclude_huge_offsets)
            a[1] %= 1UL << 20;
        break;
    case SYS_sendfile:
    case SYS_copy_file_range:
    case SYS_splice:
        if (exclude_huge_offsets && number_ != SYS_sendfile)
            a[4] %= 1UL << 20;
        break;
    default:
        break;
    }
    /* Whatever writes to the log would garble it, and whatever replaces it
     * would lose it. */
    for (int i = 0; i < 6; i++)
        if (is_log_descriptor(a[i]))
            a[i] = LOG_FD + 1;
    return 1;
}

/* --- calls that need a harness of their own ----------------------------- */

/* clone, clone3, fork and vfork: the child exits at once, touching no
 * memory (its stack and thread pointer may be anything), with every signal
 * blocked so that none is delivered onto its stack. */
static long clone_with_exiting_child(long number_, unsigned long *a) {
    unsigned long all = -1UL, saved = 0;
    raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, (long)&saved, 8, 0, 0);
    register long r10 __asm__("r10") = (long)a[3];
    register long r8 __asm__("r8") = (long)a[4];
    register long r9 __asm__("r9") = (long)a[5];
    long result;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov $60, %%eax\n\t"
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "ud2\n"
                     "1:"
                     : "=a"(result)
                     : "a"(number_), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    raw6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&saved, 0, 8, 0, 0);
    return result;
}

static void landed(void) { siglongjmp(recovery, 1); }

static unsigned long landing_stacks[MAX_THREADS][512] __attribute__((aligned(16)));

/* rt_sigreturn with a crafted frame: mostly it lands in `landed`, which
 * jumps back here; a bad instruction pointer, flags or floating-point
 * state pointer should become a SIGSEGV, which the handler recovers from. */
static long crafted_sigreturn(uint64_t *state, int thread, struct line *line) {
    struct frame {
        ucontext_t context;
        unsigned char room[1024];
    };
    struct frame *frame = (struct frame *)(scratch[thread] + 0x4000);
    memset(frame, 0, sizeof *frame);
    mcontext_t *registers = &frame->context.uc_mcontext;
    /* Bad instruction pointers: never kernel code, which ring 0 would run. */
    static const unsigned long bad_rips[] = {
        0, 0x10, 0x1000, 0x0000800000000000UL, 0x8000000000000000UL, 0xdead000000000000UL,
        0xffff800000000000UL, 0xfffffffffffff000UL,
    };
    unsigned long rip = (unsigned long)landed;
    if (below(state, 4) == 0)
        rip = bad_rips[below(state, sizeof bad_rips / sizeof bad_rips[0])];
    registers->gregs[REG_RIP] = (long)rip;
    registers->gregs[REG_RSP] = (long)&landing_stacks[thread][500] - 8;
    /* Random flags, but not TF (every instruction would trap) or DF (the C
     * library assumes it clear). */
    registers->gregs[REG_EFL] = (long)((next(state) & ~0x500UL) | 0x202);
    registers->gregs[REG_CSGSFS] = below(state, 2) ? 0x33 : (long)next(state);
    uint64_t pick = below(state, 4);
    registers->fpregs = pick == 0 ? (void *)bad_pointers[below(state, 13)] : NULL;
    if (pick == 1) {
        /* Floating-point state with random bits. */
        unsigned long *fp = (unsigned long *)(((unsigned long)frame->room + 63) & ~63UL);
        for (int i = 0; i < 64; i++)
            fp[i] = below(state, 2) ? 0 : next(state);
        registers->fpregs = (void *)fp;
    }
    sigemptyset(&frame->context.uc_sigmask);
    put(line, " sigreturn rip=");
    put_hex(line, rip);
    emit(line);
    if (sigsetjmp(recovery, 1) == 0) {
        is_recovery_armed = 1;
        __asm__ volatile("mov %0, %%rsp\n\t"
                         "mov $15, %%eax\n\t"
                         "syscall\n\t"
                         "ud2"
                         :
                         : "r"(&frame->context)
                         : "memory");
    }
    is_recovery_armed = 0;
    unblock_all();
    return 0;
}

/* --- the workers ------------------------------------------------------- */

struct worker {
    int index;
    pid_t tid;
    uint64_t seed;
    unsigned long calls;
    volatile unsigned long current; /* the call under way, 0 between calls */
    volatile unsigned long made;
    volatile int is_done;
    struct line last; /* the line of the call under way */
};

static struct worker workers[MAX_THREADS];

static void tidy_after(long number_, unsigned long *a, long result) {
    switch (number_) {
    case SYS_rt_sigaction:
        if (a[0] >= 1 && a[0] <= 64)
            install_handler((int)a[0]);
        break;
    case SYS_rt_sigprocmask:
    case SYS_rt_sigsuspend:
        unblock_all();
        break;
    case SYS_mmap:
    case SYS_mremap:
        if (result > 0 && (unsigned long)result < 0x0000800000000000UL &&
            ((unsigned long)result < REGION_ADDRESS || (unsigned long)result >= REGION_ADDRESS + REGION_SIZE)) {
            unsigned long length = number_ == SYS_mmap ? a[1] : a[2];
            raw(SYS_munmap, result, length, 0);
        }
        break;
    case SYS_timer_settime:
        raw(SYS_timer_delete, a[0], 0, 0);
        break;
    case SYS_setitimer:
    case SYS_alarm: {
        /* A timer that fires every microsecond would starve the run. */
        unsigned long off[4] = {0, 0, 0, 0};
        for (int which = 0; which < 3; which++)
            raw(SYS_setitimer, which, off, 0);
        break;
    }
    default:
        break;
    }
}

static void *work(void *worker) {
    struct worker *self = worker;
    self->tid = (pid_t)raw(SYS_gettid, 0, 0, 0);
    current_line = &self->last;
    uint64_t state = self->seed * 0x100000001b3ULL + (uint64_t)self->index;
    long first = (long)below(&state, HIGHEST_NUMBER + 1);
    for (unsigned long call = 1; call <= self->calls; call++) {
        long number_ = call <= HIGHEST_NUMBER + 1 ? (first + (long)call) % (HIGHEST_NUMBER + 1)
                                                  : (long)below(&state, HIGHEST_NUMBER + 1);
        /* Now and then a number no table has, or an x32 one (bit 30). */
        if (below(&state, 64) == 0)
            number_ = below(&state, 2) ? (long)next(&state) : 0x40000000L + (long)below(&state, 548);
        unsigned long a[6];
        for (int i = 0; i < 6; i++)
            a[i] = argument(&state, self->index, i);
        if (number_ >= 0 && number_ <= HIGHEST_NUMBER && excluded[number_])
            continue;
        if (!steer(number_, a, &state, self->index))
            continue;
        struct line *line = &self->last;
        line->length = 0;
        put(line, "T");
        put_decimal(line, (unsigned long)self->index);
        put(line, " #");
        put_decimal(line, call);
        put(line, " ");
        put_decimal(line, (unsigned long)number_);
        put(line, "(");
        for (int i = 0; i < 6; i++) {
            put_hex(line, a[i]);
            put(line, i < 5 ? ", " : ")");
        }
        self->current = call;
        long result;
        switch (number_) {
        case SYS_clone:
        case SYS_clone3:
        case SYS_fork:
        case SYS_vfork:
            if (number_ == SYS_clone3 && a[0] >= (unsigned long)scratch[self->index] &&
                a[0] < (unsigned long)scratch[self->index] + SCRATCH_SIZE && below(&state, 2)) {
                /* struct clone_args with small, plausible fields. */
                unsigned long *clone_args = (unsigned long *)a[0];
                for (int i = 0; i < 11; i++)
                    clone_args[i] = below(&state, 3) ? 0 : number(&state);
                clone_args[0] &= ~0xffUL;
                /* The signal the parent gets when the child ends: none or
                 * SIGCHLD, never one the fuzzer takes for its own fault. */
                clone_args[4] = below(&state, 2) ? 0 : SIGCHLD;
                a[1] = below(&state, 2) ? 88 : a[1];
            }
            if (number_ == SYS_clone)
                a[0] = (a[0] & ~0xffUL) | (below(&state, 2) ? 0 : SIGCHLD);
            emit(line);
            result = clone_with_exiting_child(number_, a);
            break;
        case SYS_rt_sigreturn:
            result = crafted_sigreturn(&state, self->index, line);
            break;
        default:
            emit(line);
            result = raw6(number_, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
            break;
        }
        self->current = 0;
        self->made++;
        tidy_after(number_, a, result);
        if (call % 64 == 0) {
            /* Descriptors the calls opened, so the table does not fill. */
            raw(SYS_close_range, highest_descriptor + 1, LOG_FD - 1, 0);
            raw(SYS_close_range, LOG_FD + 1, ~0U, 0);
        }
    }
    __atomic_store_n(&self->is_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* --- set-up -------------------------------------------------------------- */

static void add(int fd) {
    if (fd >= 0 && descriptor_count < MAX_DESCRIPTORS) {
        descriptors[descriptor_count++] = fd;
        if (fd > highest_descriptor)
            highest_descriptor = fd;
    }
}

static void open_descriptors(void) {
    mkdir("/tmp/fuzz", 0755);
    mkdir("/tmp/fuzz/dir", 0755);
    int file = open("/tmp/fuzz/file", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (file >= 0)
        (void)!write(file, "some bytes of a regular file\n", 29);
    add(file);
    symlink("/tmp/fuzz/file", "/tmp/fuzz/link");
    add(open("/tmp/fuzz/file", O_RDONLY | O_APPEND));
    add(open("/tmp/fuzz/dir", O_RDONLY | O_DIRECTORY));
    add(open("/", O_RDONLY | O_DIRECTORY));
    add(open("/tmp/fuzz", O_PATH));
    add(open("/dev/null", O_RDWR));
    add(open("/dev/zero", O_RDONLY));
    add(open("/proc/self/status", O_RDONLY));
    add(open("/proc/self/maps", O_RDONLY));
    int pipe_ends[2];
    if (pipe2(pipe_ends, O_NONBLOCK) == 0) {
        add(pipe_ends[0]);
        add(pipe_ends[1]);
    }
    if (pipe(pipe_ends) == 0) {
        add(pipe_ends[0]);
        add(pipe_ends[1]);
    }
    add(eventfd(3, EFD_NONBLOCK));
    add(eventfd(0, 0));
    int epoll = epoll_create1(0);
    add(epoll);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(5555)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener >= 0 && bind(listener, (struct sockaddr *)&address, sizeof address) == 0 &&
        listen(listener, 8) == 0) {
        add(listener);
        int client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(client, (struct sockaddr *)&address, sizeof address);
        add(client);
        struct timespec pause_ = {0, 50 * 1000 * 1000};
        nanosleep(&pause_, NULL);
        add(accept4(listener, NULL, NULL, SOCK_NONBLOCK));
    }
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    address.sin_port = htons(5556);
    if (udp >= 0)
        bind(udp, (struct sockaddr *)&address, sizeof address);
    add(udp);
    add(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0));
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0) {
        add(pair[0]);
        add(pair[1]);
    }
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, pair) == 0) {
        add(pair[0]);
        add(pair[1]);
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) == 0)
        add(pair[0]);
    int named = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un local = {.sun_family = AF_UNIX};
    strcpy(local.sun_path, "/tmp/fuzz/socket");
    if (named >= 0 && bind(named, (struct sockaddr *)&local, sizeof local) == 0)
        listen(named, 4);
    add(named);
    add(socket(AF_NETLINK, SOCK_RAW, 0));
    for (int i = 0; i < descriptor_count && epoll >= 0; i++) {
        struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i};
        if (descriptors[i] != epoll)
            epoll_ctl(epoll, EPOLL_CTL_ADD, descriptors[i], &event);
    }
}

/* Maps `size` bytes followed by an unmapped page; NULL if it cannot. */
static char *guarded(size_t size) {
    char *pages = mmap(NULL, size + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
        return NULL;
    munmap(pages + size, PAGE);
    return pages;
}

static int map_memory(void) {
    for (int i = 0; i < MAX_THREADS; i++)
        if (!(scratch[i] = guarded(SCRATCH_SIZE)))
            return 0;
    char *strings = guarded(PAGE);
    char *long_pages = guarded(2 * PAGE);
    if (!strings || !long_pages)
        return 0;
    char *place = strings;
    for (size_t i = 0; i < PATH_COUNT; i++) {
        path_copies[i] = place;
        strcpy(place, paths[i]);
        place += strlen(paths[i]) + 1;
    }
    mprotect(strings, PAGE, PROT_READ);
    guard_end = long_pages + 2 * PAGE;
    long_path = guard_end - 5001;
    memset(long_pages, 0x5a, 2 * PAGE);
    memset(long_path, 'a', 5000);
    long_path[5000] = 0;
    mmap((void *)REGION_ADDRESS, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
         -1, 0);
    initial_break = (unsigned long)raw(SYS_brk, 0, 0, 0);
    return 1;
}

static unsigned long parse(const char *text) { return strtoul(text, NULL, 0); }

static void parse_exclusions(const char *text) {
    while (*text) {
        char *end;
        unsigned long value = strtoul(text, &end, 0);
        if (end == text)
            break;
        if (value <= HIGHEST_NUMBER)
            excluded[value] = 1;
        text = *end == ',' ? end + 1 : end;
    }
}

static long monotonic_ms(void) {
    struct timespec now;
    raw(SYS_clock_gettime, CLOCK_MONOTONIC, &now, 0);
    return now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    unsigned long seed = 1, calls = 2000, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = parse(argv[++i]);
        else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = parse(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = parse(argv[++i]);
        else if (!strcmp(argv[i], "--exclude") && i + 1 < argc)
            parse_exclusions(argv[++i]);
        else if (!strcmp(argv[i], "--no-populate"))
            exclude_populate = 1;
        else if (!strcmp(argv[i], "--no-huge-offsets"))
            exclude_huge_offsets = 1;
    }
    if (threads < 1 || threads > MAX_THREADS)
        threads = 2;
    /* The log goes to a descriptor the calls leave alone; 0, 1 and 2
     * become /dev/null for them to play with. */
    if (dup2(1, LOG_FD) != LOG_FD)
        return 5;
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd <= 2 && null >= 0; fd++)
        dup2(null, fd);
    if (null > 2)
        close(null);
    install_handlers();
    if (!map_memory()) {
        say("fuzz: cannot map its memory");
        return 6;
    }
    open_descriptors();
    struct line line = {.length = 0};
    put(&line, "fuzz: seed ");
    put_decimal(&line, seed);
    put(&line, ", ");
    put_decimal(&line, calls);
    put(&line, " calls on each of ");
    put_decimal(&line, threads);
    put(&line, " threads, ");
    put_decimal(&line, (unsigned long)descriptor_count);
    put(&line, " descriptors");
    emit(&line);

    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    for (unsigned long i = 0; i < threads; i++) {
        workers[i] = (struct worker){.index = (int)i, .seed = seed, .calls = calls};
        pthread_t thread;
        if (pthread_create(&thread, &attributes, work, &workers[i]) != 0) {
            say("fuzz: cannot create a thread");
            return 6;
        }
    }
    /* The watchdog: interrupts a call blocked for more than 100 ms and
     * gives up on one blocked for 60 s despite the interruptions. */
    unsigned long seen[MAX_THREADS] = {0};
    long since[MAX_THREADS] = {0};
    for (;;) {
        struct timespec pause_ = {0, 20 * 1000 * 1000};
        raw(SYS_nanosleep, &pause_, 0, 0);
        unsigned long done = 0;
        long now = monotonic_ms();
        for (unsigned long i = 0; i < threads; i++) {
            struct worker *worker = &workers[i];
            if (__atomic_load_n(&worker->is_done, __ATOMIC_ACQUIRE)) {
                done++;
                continue;
            }
            unsigned long current = worker->current;
            if (current == 0 || current != seen[i]) {
                seen[i] = current;
                since[i] = now;
                continue;
            }
            if (now - since[i] > 60000) {
                struct line stuck = {.length = 0};
                put(&stuck, "fuzz: a call stayed blocked: ");
                for (size_t c = 0; c < worker->last.length; c++)
                    stuck.text[stuck.length++] = worker->last.text[c];
                emit(&stuck);
                raw(SYS_exit_group, 3, 0, 0);
            }
            if (now - since[i] > 100)
                raw(SYS_tgkill, raw(SYS_getpid, 0, 0, 0), worker->tid, WAKE_SIGNAL);
        }
        if (done == threads)
            break;
    }
    unsigned long made = 0;
    for (unsigned long i = 0; i < threads; i++)
        made += workers[i].made;
    line.length = 0;
    put(&line, "fuzz: done: seed ");
    put_decimal(&line, seed);
    put(&line, ", ");
    put_decimal(&line, made);
    put(&line, " calls made, ");
    put_decimal(&line, (unsigned long)signals_caught);
    put(&line, " signals caught");
    emit(&line);
    raw(SYS_exit_group, 0, 0, 0);
    return 0;
}
