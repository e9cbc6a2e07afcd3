/* Makes calls that buggy programs make, with sizes and descriptors far past
 * any limit, and faults of every kind in its own code, and checks that each
 * gets Linux's error or signal (the same program passes on Linux). One line
 * per check, "N checks failed" at the end, exit status N. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "checks.h"

/* The sizes below are meant to be past every limit. */
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#pragma GCC diagnostic ignored "-Wpragmas"

#define HUGE_LENGTH (1UL << 40)
#define MAX_RW_COUNT (INT_MAX & ~4095)

static char buffer[65536];

/* --- sizes past every limit ---------------------------------------------- */

static void sends_too_large_for_a_datagram(void) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(9)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    errno = 0;
    long sent = sendto(udp, buffer, HUGE_LENGTH, 0, (struct sockaddr *)&address, sizeof address);
    check(sent == -1 && errno == EMSGSIZE, "udp_sendto_huge_length", "returned %ld", sent);

    int pair[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, pair);
    errno = 0;
    sent = send(pair[0], buffer, HUGE_LENGTH, MSG_DONTWAIT);
    check(sent == -1 && errno == EMSGSIZE, "local_datagram_send_huge_length", "returned %ld", sent);

    /* 32 MiB in one message, from real memory. */
    size_t large = 32UL << 20;
    char *message = mmap(NULL, large, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(message != MAP_FAILED, "map_32_mib", "mmap failed");
    if (message == MAP_FAILED)
        return;
    memset(message, 'x', large);
    struct iovec vector = {.iov_base = message, .iov_len = large};
    struct msghdr header = {.msg_name = &address, .msg_namelen = sizeof address, .msg_iov = &vector,
                            .msg_iovlen = 1};
    errno = 0;
    sent = sendmsg(udp, &header, 0);
    check(sent == -1 && errno == EMSGSIZE, "udp_sendmsg_32_mib", "returned %ld", sent);
    header.msg_name = NULL;
    header.msg_namelen = 0;
    errno = 0;
    sent = sendmsg(pair[0], &header, MSG_DONTWAIT);
    check(sent == -1 && errno == EMSGSIZE, "local_datagram_sendmsg_32_mib", "returned %ld", sent);

    /* A send buffer asked for far too large is clamped. */
    int wanted = INT_MAX;
    setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &wanted, sizeof wanted);
    int granted = 0;
    socklen_t length = sizeof granted;
    getsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &granted, &length);
    check(granted > 0 && granted <= (16 << 20), "send_buffer_clamped", "SO_SNDBUF %d", granted);
    errno = 0;
    sent = sendmsg(pair[0], &header, MSG_DONTWAIT);
    check(sent == -1 && errno == EMSGSIZE, "local_datagram_sendmsg_32_mib_large_buffer", "returned %ld", sent);
    setsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &wanted, sizeof wanted);
    getsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &granted, &length);
    check(granted > 0 && granted <= (16 << 20), "receive_buffer_clamped", "SO_RCVBUF %d", granted);

    /* A stream takes what fits and says how much. */
    int stream[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, stream);
    errno = 0;
    sent = send(stream[0], message, large, MSG_DONTWAIT);
    check((sent > 0 && sent < (long)large) || (sent == -1 && errno == EAGAIN), "local_stream_send_32_mib",
          "returned %ld", sent);
    errno = 0;
    sent = send(stream[0], buffer, HUGE_LENGTH, MSG_DONTWAIT);
    check(sent == -1 && (errno == EAGAIN || errno == EFAULT), "local_stream_send_huge_length", "returned %ld",
          sent);
    munmap(message, large);
    close(udp);
    close(pair[0]);
    close(pair[1]);
    close(stream[0]);
    close(stream[1]);
}

static void vectors_past_the_limits(void) {
    int null = open("/dev/null", O_WRONLY);
    struct iovec vectors[1025];
    for (int i = 0; i < 1025; i++)
        vectors[i] = (struct iovec){.iov_base = buffer, .iov_len = 1};
    errno = 0;
    long written = writev(null, vectors, 1025);
    check(written == -1 && errno == EINVAL, "writev_1025_vectors", "returned %ld", written);
    errno = 0;
    written = writev(null, vectors, 1 << 30);
    check(written == -1 && errno == EINVAL, "writev_huge_count", "returned %ld", written);
    written = writev(null, vectors, 1024);
    check(written == 1024, "writev_1024_vectors", "returned %ld", written);
    vectors[0].iov_len = SIZE_MAX;
    errno = 0;
    written = writev(null, vectors, 2);
    check(written == -1 && errno == EINVAL, "writev_length_past_ssize_max", "returned %ld", written);
    /* Totals are cut to MAX_RW_COUNT, as Linux does (which writes all of
     * it to /dev/null without reading; a kernel that copies stops at the
     * end of the mapping). */
    vectors[0].iov_len = 0x7fffffff;
    vectors[1].iov_len = 0x7fffffff;
    written = writev(null, vectors, 2);
    check(written > 0 && written <= MAX_RW_COUNT, "writev_total_clamped", "returned %ld", written);
    /* A buffer low enough that 1 TiB past it is still the application's
     * (Linux checks the whole range first: EFAULT beyond TASK_SIZE). */
    char *low = mmap((void *)0x10000000, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    check(low == (char *)0x10000000, "map_low_buffer", "mmap returned %p", (void *)low);
    written = write(null, low, HUGE_LENGTH);
    check(written > 0 && written <= MAX_RW_COUNT, "write_huge_length_to_null", "returned %ld", written);
    errno = 0;
    written = write(null, low, 0x0000800000000000UL);
    check(written == -1 && errno == EFAULT, "write_past_the_application_end", "returned %ld", written);
    close(null);
}

/* --- descriptor limits ----------------------------------------------------- */

static void descriptor_limits(void) {
    struct rlimit limit = {.rlim_cur = RLIM_INFINITY, .rlim_max = RLIM_INFINITY};
    errno = 0;
    int result = setrlimit(RLIMIT_NOFILE, &limit);
    check(result == -1 && errno == EPERM, "nofile_limit_infinity_refused", "returned %d", result);
    getrlimit(RLIMIT_NOFILE, &limit);
    check(limit.rlim_max != RLIM_INFINITY && limit.rlim_max <= 1048576, "nofile_limit_kept",
          "limit %lu", (unsigned long)limit.rlim_max);
    struct rlimit above = {.rlim_cur = 1048577, .rlim_max = 1048577};
    errno = 0;
    result = setrlimit(RLIMIT_NOFILE, &above);
    check(result == -1 && errno == EPERM, "nofile_limit_above_nr_open_refused", "returned %d", result);

    errno = 0;
    result = dup2(0, 1 << 30);
    check(result == -1 && errno == EBADF, "dup2_huge_descriptor", "returned %d", result);
    errno = 0;
    result = fcntl(0, F_DUPFD, 1 << 30);
    check(result == -1 && errno == EINVAL, "dupfd_huge_minimum", "returned %d", result);

    struct pollfd fds[4] = {{.fd = 0, .events = POLLIN}};
    errno = 0;
    result = poll(fds, 1U << 30, 0);
    check(result == -1 && errno == EINVAL, "poll_huge_count", "returned %d", result);
    errno = 0;
    result = poll(fds, (nfds_t)-1, 0);
    check(result == -1 && errno == EINVAL, "poll_count_minus_one", "returned %d", result);
    struct timespec zero = {0, 0};
    errno = 0;
    result = ppoll(fds, 1U << 30, &zero, NULL);
    check(result == -1 && errno == EINVAL, "ppoll_huge_count", "returned %d", result);

    /* select cuts a huge count to the table's size, as Linux does. */
    fd_set readable;
    FD_ZERO(&readable);
    struct timeval none = {0, 0};
    errno = 0;
    result = select(1 << 30, &readable, NULL, NULL, &none);
    check(result == 0, "select_huge_count", "returned %d", result);
    errno = 0;
    result = select(-1, &readable, NULL, NULL, &none);
    check(result == -1 && errno == EINVAL, "select_negative_count", "returned %d", result);
    errno = 0;
    result = pselect(1 << 30, &readable, NULL, NULL, &zero, NULL);
    check(result == 0, "pselect_huge_count", "returned %d", result);

    /* After raising the limit to the most Linux allows, the same holds. */
    struct rlimit most = {.rlim_cur = 1048576, .rlim_max = 1048576};
    setrlimit(RLIMIT_NOFILE, &most);
    errno = 0;
    result = dup2(0, 1 << 30);
    check(result == -1 && errno == EBADF, "dup2_huge_descriptor_raised_limit", "returned %d", result);
    errno = 0;
    result = poll(fds, 1U << 30, 0);
    check(result == -1 && errno == EINVAL, "poll_huge_count_raised_limit", "returned %d", result);
    errno = 0;
    result = select(1 << 30, &readable, NULL, NULL, &none);
    check(result == 0, "select_huge_count_raised_limit", "returned %d", result);
}

/* --- faults in application code --------------------------------------------- */

static sigjmp_buf recovery;
static volatile int caught_signal, caught_code;

static void on_fault(int signal, siginfo_t *info, void *context) {
    (void)context;
    caught_signal = signal;
    caught_code = info->si_code;
    siglongjmp(recovery, 1);
}

/* Runs `fault` and says which signal it raised (0 for none). */
static int signal_of(void (*fault)(void)) {
    caught_signal = 0;
    if (sigsetjmp(recovery, 1) == 0)
        fault();
    return caught_signal;
}

static void jump_to_non_canonical(void) {
    void (*target)(void) = (void (*)(void))0x8000000000000000UL;
    __asm__ volatile("" : "+r"(target));
    target();
}

static void jump_to_kernel_half(void) {
    void (*target)(void) = (void (*)(void))0xffff800000000000UL;
    __asm__ volatile("" : "+r"(target));
    target();
}

static void return_to_non_canonical(void) {
    __asm__ volatile("push %0\n\tret" : : "r"(0x0000800000001000UL));
}

static void load_from_non_canonical(void) {
    volatile unsigned long *bad = (volatile unsigned long *)0xdead000000000000UL;
    __asm__ volatile("" : "+r"(bad));
    (void)*bad;
}

static void push_on_non_canonical_stack(void) {
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "mov %0, %%rsp\n\t"
                     "push %%rax\n\t"
                     "mov %%rbx, %%rsp"
                     :
                     : "r"(0x8000000000001000UL)
                     : "rbx", "memory");
}

static void privileged_instruction(void) { __asm__ volatile("ud2"); }

static void sigreturn_from_unmapped_frame(void) {
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "mov $0x1000, %%rsp\n\t"
                     "mov $15, %%eax\n\t"
                     "syscall\n\t"
                     "mov %%rbx, %%rsp"
                     :
                     :
                     : "rax", "rbx", "rcx", "r11", "memory");
}

static void faults_are_the_applications(void) {
    static char alternate_stack[65536];
    stack_t stack = {.ss_sp = alternate_stack, .ss_size = sizeof alternate_stack};
    sigaltstack(&stack, NULL);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigaction(SIGSEGV, &action, NULL);
    sigaction(SIGBUS, &action, NULL);
    sigaction(SIGILL, &action, NULL);
    int signal = signal_of(jump_to_non_canonical);
    check(signal == SIGSEGV, "jump_to_non_canonical_address", "signal %d", signal);
    signal = signal_of(jump_to_kernel_half);
    check(signal == SIGSEGV, "jump_to_kernel_address", "signal %d", signal);
    signal = signal_of(return_to_non_canonical);
    check(signal == SIGSEGV, "return_to_non_canonical_address", "signal %d", signal);
    signal = signal_of(load_from_non_canonical);
    check(signal == SIGSEGV && caught_code == 0x80, "general_protection_fault", "signal %d code %d", signal,
          caught_code);
    signal = signal_of(push_on_non_canonical_stack);
    check(signal == SIGSEGV || signal == SIGBUS, "stack_segment_fault", "signal %d", signal);
    signal = signal_of(privileged_instruction);
    check(signal == SIGILL, "invalid_opcode", "signal %d", signal);
    signal = signal_of(sigreturn_from_unmapped_frame);
    check(signal == SIGSEGV, "rt_sigreturn_bad_frame", "signal %d", signal);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sends_too_large_for_a_datagram();
    vectors_past_the_limits();
    descriptor_limits();
    faults_are_the_applications();
    printf("%d checks failed\n", failures);
    return failures;
}
