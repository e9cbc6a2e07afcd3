/* Checks process tracing (ptrace) as debuggers and strace use it: the stop
 * after TRACEME and execve, system-call stops with TRACESYSGOOD and
 * GET_SYSCALL_INFO, a call's result changed and a call skipped, PEEK and
 * POKE of data and text, registers, signals suppressed and injected,
 * SEIZE and INTERRUPT, fork events with the child traced too, the exec
 * event, the errors Linux gives, and what happens when a tracer exits
 * (EXITKILL kills, otherwise the tracee is let go), single steps and an
 * int3 breakpoint. One line per check;
 * exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

/* Request and option numbers, spelled out: musl's and glibc's headers do
 * not all name them. */
#define REQUEST_SEIZE 0x4206
#define REQUEST_INTERRUPT 0x4207
#define REQUEST_GETREGSET 0x4204
#define REQUEST_GET_SYSCALL_INFO 0x420e
#define REQUEST_SETOPTIONS 0x4200
#define REQUEST_GETEVENTMSG 0x4201
#define REQUEST_GETSIGINFO 0x4202
#define OPTION_TRACESYSGOOD 0x1
#define OPTION_TRACEFORK 0x2
#define OPTION_TRACEEXEC 0x10
#define OPTION_EXITKILL 0x100000
#define EVENT_FORK 1
#define EVENT_EXEC 4
#define EVENT_STOP 128
#define WAIT_ALL 0x40000000

/* struct ptrace_syscall_info, as Linux lays it out. */
struct syscall_info {
    uint8_t op;
    uint8_t pad[3];
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t stack_pointer;
    union {
        struct {
            uint64_t nr;
            uint64_t args[6];
        } entry;
        struct {
            int64_t rval;
            uint8_t is_error;
        } exit;
    };
};

static long request(long what, pid_t pid, unsigned long address, unsigned long data) {
    return syscall(SYS_ptrace, what, pid, address, data);
}

/* A word the tracer reads and changes in the child's copy. */
static volatile long marker = 0x1234;

/* Waits for `pid` (all kinds of children); returns the status, -1 on error. */
static int wait_for(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, WAIT_ALL) != pid) {
        return -1;
    }
    return status;
}

/* The child: stops itself so that the tracer can look, after TRACEME. */
static void trace_me_and_stop(void) {
    if (request(PTRACE_TRACEME, 0, 0, 0) != 0) {
        _exit(90);
    }
    raise(SIGSTOP);
}

static void check_traceme_exec(void) {
    pid_t child = fork();
    if (child == 0) {
        if (request(PTRACE_TRACEME, 0, 0, 0) != 0) {
            _exit(90);
        }
        char *arguments[] = {"ptrace", "--exit", "7", NULL};
        execv("/proc/self/exe", arguments);
        _exit(91);
    }
    int status = wait_for(child);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP, "traceme_exec_stops_with_sigtrap",
          "status %#x", status);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", child);
    FILE *file = fopen(path, "r");
    char line[128];
    int tracer = -1, is_traced_state = 0;
    while (file != NULL && fgets(line, sizeof line, file) != NULL) {
        sscanf(line, "TracerPid:\t%d", &tracer);
        if (strncmp(line, "State:\tt", 8) == 0) {
            is_traced_state = 1;
        }
    }
    if (file != NULL) {
        fclose(file);
    }
    check(tracer == getpid() && is_traced_state, "proc_status_shows_the_tracer_and_t", "tracer %d state t %d",
          tracer, is_traced_state);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 7, "traceme_exec_child_runs_on", "status %#x", status);
    /* Reaped, the tracee leaves nothing to wait for. */
    errno = 0;
    pid_t left = waitpid(-1, &status, WAIT_ALL);
    check(left == -1 && errno == ECHILD, "a_reaped_tracee_leaves_no_wait", "waitpid %d", left);
}

/* Resumes `child` with PTRACE_SYSCALL until it stops at the entry of
 * system call `number`; returns the last status (0 if it never did). */
static int run_to_entry(pid_t child, long number) {
    for (int stops = 0; stops < 100; stops++) {
        if (request(PTRACE_SYSCALL, child, 0, 0) != 0) {
            return 0;
        }
        int status = wait_for(child);
        if (!WIFSTOPPED(status)) {
            return 0;
        }
        struct user_regs_struct registers;
        if (WSTOPSIG(status) == (SIGTRAP | 0x80) && request(PTRACE_GETREGS, child, 0, (long)&registers) == 0 &&
            (long)registers.orig_rax == number && (long)registers.rax == -ENOSYS) {
            return status;
        }
    }
    return 0;
}

static void check_syscall_stops(void) {
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        trace_me_and_stop();
        long first = syscall(SYS_getppid);
        long second = syscall(SYS_getppid);
        long third = syscall(SYS_getppid);
        _exit(first == 4242 && second == 777 && third == parent ? 0 : 1);
    }
    int status = wait_for(child);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "traceme_child_stops_for_its_sigstop",
          "status %#x", status);
    request(REQUEST_SETOPTIONS, child, 0, OPTION_TRACESYSGOOD);
    status = run_to_entry(child, SYS_getppid);
    check(status != 0, "syscall_entry_stop_reports_sigtrap_0x80", "no entry stop of getppid");
    struct syscall_info info;
    memset(&info, 0, sizeof info);
    long size = request(REQUEST_GET_SYSCALL_INFO, child, sizeof info, (long)&info);
    check(size >= 24 && info.op == 1 && info.entry.nr == SYS_getppid && info.arch == 0xc000003e,
          "get_syscall_info_describes_the_entry", "size %ld op %d nr %lu", size, info.op,
          (unsigned long)info.entry.nr);
    request(PTRACE_SYSCALL, child, 0, 0);
    status = wait_for(child);
    memset(&info, 0, sizeof info);
    size = request(REQUEST_GET_SYSCALL_INFO, child, sizeof info, (long)&info);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80) && info.op == 2 &&
              info.exit.rval == parent && info.exit.is_error == 0,
          "get_syscall_info_describes_the_exit", "status %#x op %d rval %ld", status, info.op,
          (long)info.exit.rval);
    /* The result becomes 4242. */
    struct user_regs_struct registers;
    request(PTRACE_GETREGS, child, 0, (long)&registers);
    check(registers.cs == 0x33 && registers.ss == 0x2b && registers.orig_rax == SYS_getppid,
          "getregs_shows_user_selectors_and_orig_rax", "cs %#llx ss %#llx orig_rax %lld",
          (unsigned long long)registers.cs, (unsigned long long)registers.ss, (long long)registers.orig_rax);
    registers.rax = 4242;
    check(request(PTRACE_SETREGS, child, 0, (long)&registers) == 0, "setregs_changes_the_result", "failed");
    /* The second call is skipped: -1 as its number, 777 as its result. */
    status = run_to_entry(child, SYS_getppid);
    long offset = offsetof(struct user, regs.orig_rax);
    errno = 0;
    long peeked = 0;
    request(PTRACE_PEEKUSER, child, offset, (long)&peeked);
    check(status != 0 && peeked == SYS_getppid, "peekuser_reads_orig_rax", "status %#x orig_rax %ld", status,
          peeked);
    request(PTRACE_POKEUSER, child, offset, -1);
    request(PTRACE_POKEUSER, child, offsetof(struct user, regs.rax), 777);
    /* Exit stop of the skipped call, then on to the end. */
    request(PTRACE_SYSCALL, child, 0, 0);
    status = wait_for(child);
    request(PTRACE_GETREGS, child, 0, (long)&registers);
    check(WIFSTOPPED(status) && registers.rax == 777, "a_skipped_call_returns_the_tracers_value",
          "status %#x rax %lld", status, (long long)registers.rax);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the_child_saw_the_changed_results", "status %#x",
          status);
}

static void check_memory_and_registers(void) {
    pid_t child = fork();
    if (child == 0) {
        trace_me_and_stop();
        _exit(marker == 0x5678 ? 0 : 1);
    }
    int status = wait_for(child);
    long word = 0;
    long result = request(PTRACE_PEEKDATA, child, (unsigned long)&marker, (long)&word);
    check(result == 0 && word == 0x1234, "peekdata_reads_the_childs_memory", "result %ld word %#lx", result, word);
    result = request(PTRACE_POKEDATA, child, (unsigned long)&marker, 0x5678);
    check(result == 0, "pokedata_writes_the_childs_memory", "result %ld", result);
    /* Text: read a word of code and write it back (read-only mapping). */
    unsigned long code = (unsigned long)&check_memory_and_registers;
    result = request(PTRACE_PEEKTEXT, child, code, (long)&word);
    long same = *(volatile long *)code;
    check(result == 0 && word == same, "peektext_reads_code", "result %ld", result);
    result = request(PTRACE_POKETEXT, child, code, same);
    check(result == 0, "poketext_writes_read_only_code", "result %ld", result);
    struct user_regs_struct registers, from_set;
    struct iovec vector = {&from_set, sizeof from_set};
    request(PTRACE_GETREGS, child, 0, (long)&registers);
    result = request(REQUEST_GETREGSET, child, 1, (long)&vector);
    check(result == 0 && vector.iov_len == sizeof from_set && from_set.rip == registers.rip &&
              from_set.rsp == registers.rsp && registers.rip != 0,
          "getregset_prstatus_matches_getregs", "result %ld length %zu", result, vector.iov_len);
    struct user_fpregs_struct fpu;
    struct iovec fp_vector = {&fpu, sizeof fpu};
    result = request(REQUEST_GETREGSET, child, 2, (long)&fp_vector);
    check(result == 0 && fp_vector.iov_len == 512 && fpu.cwd == 0x37f, "getregset_prfpreg_reads_the_fpu",
          "result %ld length %zu cwd %#x", result, fp_vector.iov_len, fpu.cwd);
    errno = 0;
    result = request(PTRACE_PEEKDATA, child, 8, (long)&word);
    check(result == -1 && errno == EIO, "peekdata_of_nothing_is_eio", "result %ld", result);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the_child_saw_the_poked_word", "status %#x", status);
}

static volatile sig_atomic_t handled_usr1;
static void on_usr1(int signal) {
    (void)signal;
    handled_usr1++;
}

static void check_signal_injection(void) {
    pid_t child = fork();
    if (child == 0) {
        signal(SIGUSR1, on_usr1);
        trace_me_and_stop();
        raise(SIGUSR1);
        int after_suppressed = handled_usr1;
        raise(SIGUSR2);
        _exit(after_suppressed == 0 && handled_usr1 == 1 ? 0 : 10 + handled_usr1);
    }
    wait_for(child);
    request(PTRACE_CONT, child, 0, 0);
    int status = wait_for(child);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    request(REQUEST_GETSIGINFO, child, 0, (long)&info);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == SIGUSR1 && info.si_signo == SIGUSR1 && info.si_code == SI_TKILL,
          "the_tracer_sees_a_signal_first", "status %#x signo %d code %d", status, info.si_signo, info.si_code);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == SIGUSR2, "the_next_signal_stops_too", "status %#x", status);
    /* SIGUSR2 (which would kill it) becomes SIGUSR1. */
    request(PTRACE_CONT, child, 0, SIGUSR1);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "signals_are_suppressed_and_replaced", "status %#x",
          status);
}

static void check_seize_and_interrupt(void) {
    pid_t child = fork();
    if (child == 0) {
        for (;;) {
            pause();
        }
    }
    long result = request(REQUEST_SEIZE, child, 0, OPTION_TRACESYSGOOD);
    check(result == 0, "seize_attaches_without_stopping", "result %ld", result);
    int status = 0;
    check(waitpid(child, &status, WNOHANG | WAIT_ALL) == 0, "a_seized_tracee_runs_on", "status %#x", status);
    errno = 0;
    result = request(PTRACE_CONT, child, 0, 0);
    check(result == -1 && errno == ESRCH, "a_running_tracee_refuses_requests", "result %ld", result);
    request(REQUEST_INTERRUPT, child, 0, 0);
    status = wait_for(child);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && status >> 16 == EVENT_STOP,
          "interrupt_stops_with_event_stop", "status %#x", status);
    errno = 0;
    result = request(PTRACE_ATTACH, child, 0, 0);
    check(result == -1 && errno == EPERM, "a_second_attach_is_eperm", "result %ld", result);
    request(PTRACE_CONT, child, 0, 0);
    kill(child, SIGKILL);
    status = wait_for(child);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "sigkill_ends_a_tracee", "status %#x", status);
}

static void check_fork_event(void) {
    pid_t child = fork();
    if (child == 0) {
        trace_me_and_stop();
        pid_t grandchild = fork();
        if (grandchild == 0) {
            _exit(5);
        }
        int status = 0;
        waitpid(grandchild, &status, 0);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 99);
    }
    wait_for(child);
    request(REQUEST_SETOPTIONS, child, 0, OPTION_TRACEFORK);
    request(PTRACE_CONT, child, 0, 0);
    unsigned long reported = 0;
    pid_t grandchild = 0;
    int saw_event = 0, saw_start = 0, grandchild_exit = -1, child_exit = -1;
    for (int round = 0; round < 20 && child_exit < 0; round++) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WAIT_ALL);
        if (pid < 0) {
            break;
        }
        if (pid == child && WIFSTOPPED(status) && status >> 8 == (SIGTRAP | EVENT_FORK << 8)) {
            saw_event = 1;
            request(REQUEST_GETEVENTMSG, child, 0, (long)&reported);
            request(PTRACE_CONT, child, 0, 0);
        } else if (pid == child && WIFEXITED(status)) {
            child_exit = WEXITSTATUS(status);
        } else if (pid == child) {
            request(PTRACE_CONT, child, 0, WIFSTOPPED(status) ? WSTOPSIG(status) : 0);
        } else if (WIFSTOPPED(status)) {
            grandchild = pid;
            saw_start |= WSTOPSIG(status) == SIGSTOP;
            request(PTRACE_CONT, pid, 0, 0);
        } else if (WIFEXITED(status)) {
            grandchild_exit = WEXITSTATUS(status);
        }
    }
    check(saw_event && (pid_t)reported == grandchild && grandchild != 0, "fork_event_names_the_new_child",
          "event %d message %lu grandchild %d", saw_event, reported, grandchild);
    check(saw_start, "the_new_child_is_traced_from_a_sigstop", "no stop");
    check(grandchild_exit == 5, "the_tracer_sees_the_traced_grandchild_exit", "exit %d", grandchild_exit);
    check(child_exit == 5, "the_child_reaped_its_own_child", "exit %d", child_exit);
}

static void check_exec_event(void) {
    pid_t child = fork();
    if (child == 0) {
        trace_me_and_stop();
        char *arguments[] = {"ptrace", "--exit", "9", NULL};
        execv("/proc/self/exe", arguments);
        _exit(91);
    }
    wait_for(child);
    request(REQUEST_SETOPTIONS, child, 0, OPTION_TRACEEXEC);
    request(PTRACE_CONT, child, 0, 0);
    int status = wait_for(child);
    unsigned long message = 0;
    request(REQUEST_GETEVENTMSG, child, 0, (long)&message);
    check(WIFSTOPPED(status) && status >> 8 == (SIGTRAP | EVENT_EXEC << 8) && (pid_t)message == child,
          "exec_event_replaces_the_sigtrap", "status %#x message %lu", status, message);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 9, "the_new_program_runs", "status %#x", status);
}

static void check_permissions(void) {
    errno = 0;
    long result = request(PTRACE_ATTACH, getpid(), 0, 0);
    check(result == -1 && errno == EPERM, "attaching_to_oneself_is_eperm", "result %ld", result);
    errno = 0;
    result = request(PTRACE_CONT, getpid() == 1 ? 2 : 1, 0, 0);
    check(result == -1 && errno == ESRCH, "requests_for_an_untraced_process_are_esrch", "result %ld", result);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        if (setuid(1000) != 0) {
            _exit(2);
        }
        errno = 0;
        long attached = request(PTRACE_ATTACH, parent, 0, 0);
        _exit(attached == -1 && errno == EPERM ? 0 : 1);
    }
    int status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another_user_may_not_attach", "status %#x", status);
    child = fork();
    if (child == 0) {
        trace_me_and_stop();
        errno = 0;
        long again = request(PTRACE_TRACEME, 0, 0, 0);
        _exit(again == -1 && errno == EPERM ? 0 : 1);
    }
    wait_for(child);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "traceme_twice_is_eperm", "status %#x", status);
}

/* A tracer (a child of ours) seizes another child of ours, `victim`, with
 * `options`, then exits. */
static void trace_then_exit(pid_t victim, long options) {
    pid_t tracer = fork();
    if (tracer == 0) {
        if (request(REQUEST_SEIZE, victim, 0, options) != 0) {
            _exit(1);
        }
        request(REQUEST_INTERRUPT, victim, 0, 0);
        int status = wait_for(victim);
        _exit(WIFSTOPPED(status) ? 0 : 3);
    }
    int status = wait_for(tracer);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, options ? "exitkill_tracer_stopped_its_tracee"
                                                                 : "plain_tracer_stopped_its_tracee",
          "status %#x", status);
}

static void check_tracer_exit(void) {
    pid_t victim = fork();
    if (victim == 0) {
        for (;;) {
            pause();
        }
    }
    trace_then_exit(victim, OPTION_EXITKILL);
    int status = wait_for(victim);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "exitkill_kills_the_tracee_with_its_tracer",
          "status %#x", status);
    victim = fork();
    if (victim == 0) {
        for (;;) {
            pause();
        }
    }
    trace_then_exit(victim, 0);
    /* Let go: it runs (pause) and a SIGTERM ends it as usual. */
    usleep(100 * 1000);
    check(waitpid(victim, &status, WNOHANG) == 0, "a_tracee_outlives_its_tracer", "status %#x", status);
    kill(victim, SIGTERM);
    status = wait_for(victim);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "the_detached_tracee_runs_on", "status %#x", status);
}

/* A function the tracer puts a breakpoint on. */
__attribute__((noinline)) static int breakpoint_target(int value) {
    __asm__ volatile("nop");
    return value + 1;
}

static void check_single_step_and_breakpoint(void) {
    pid_t child = fork();
    if (child == 0) {
        trace_me_and_stop();
        _exit(breakpoint_target(41) == 42 ? 0 : 1);
    }
    wait_for(child);
    struct user_regs_struct registers;
    request(PTRACE_GETREGS, child, 0, (long)&registers);
    unsigned long long previous = registers.rip;
    int steps = 0, moved = 0;
    for (; steps < 5; steps++) {
        if (request(PTRACE_SINGLESTEP, child, 0, 0) != 0) {
            break;
        }
        int status = wait_for(child);
        if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
            break;
        }
        request(PTRACE_GETREGS, child, 0, (long)&registers);
        moved += registers.rip != previous;
        previous = registers.rip;
    }
    check(steps == 5 && moved >= 4, "single_steps_trap_after_each_instruction", "steps %d moved %d", steps, moved);
    unsigned long address = (unsigned long)&breakpoint_target;
    long original = 0;
    request(PTRACE_PEEKTEXT, child, address, (long)&original);
    long patched = (original & ~0xffL) | 0xcc;
    request(PTRACE_POKETEXT, child, address, patched);
    request(PTRACE_CONT, child, 0, 0);
    int status = wait_for(child);
    request(PTRACE_GETREGS, child, 0, (long)&registers);
    check(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && registers.rip == address + 1,
          "int3_stops_after_the_breakpoint", "status %#x rip %#llx target %#lx", status,
          (unsigned long long)registers.rip, address);
    request(PTRACE_POKETEXT, child, address, original);
    registers.rip = address;
    request(PTRACE_SETREGS, child, 0, (long)&registers);
    request(PTRACE_CONT, child, 0, 0);
    status = wait_for(child);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the_child_runs_on_past_the_breakpoint", "status %#x",
          status);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--exit") == 0) {
        return atoi(argv[2]);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    check_traceme_exec();
    check_syscall_stops();
    check_memory_and_registers();
    check_signal_injection();
    check_seize_and_interrupt();
    check_fork_event();
    check_exec_event();
    check_permissions();
    check_tracer_exit();
    check_single_step_and_breakpoint();
    printf("%d checks failed\n", failures);
    return failures;
}
