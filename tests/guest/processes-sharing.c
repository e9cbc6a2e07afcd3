/* Checks what processes made by clone share: the memory (CLONE_VM:
 * stores, mmap and munmap, vfork, posix_spawn's report of a failed exec),
 * the descriptor table (CLONE_FILES), the working directory, root and umask (CLONE_FS), the
 * signal handlers (CLONE_SIGHAND, which needs CLONE_VM), what fork copies
 * instead, unshare splitting them again (for the calling thread alone in a
 * process of several threads), execve taking a private table and
 * handlers, and /proc/PID/fd following a shared table.
 * Run with no argument: one line per check, then "<n> checks failed",
 * exit status the count. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

static const char *self_path = "/proc/self/exe";

/* The descriptor the exec'd child opens: high, so that it is free in the
 * parent too. */
#define HIGH_DESCRIPTOR 100

/* Roles the program plays when started with an argument. */
static int run_role(char **arguments) {
    const char *role = arguments[1];
    if (strcmp(role, "open-high") == 0) {
        /* Opens a file at HIGH_DESCRIPTOR; 0 when that worked. */
        int file = open("/dev/null", O_RDONLY);
        return fcntl(file, F_DUPFD, HIGH_DESCRIPTOR) == HIGH_DESCRIPTOR ? 0 : 1;
    }
    if (strcmp(role, "exit") == 0) {
        return 0;
    }
    return 100;
}

/* clone as fork does it: no new stack, the child returns 0. */
static pid_t clone_process(unsigned long flags) {
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
}

static int wait_status(pid_t pid) {
    int status = -1;
    if (waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return status;
}

static int exited_with(int status, int code) {
    return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

static int is_open(int descriptor) {
    return fcntl(descriptor, F_GETFD) != -1;
}

static void check_descriptor_tables(void) {
    /* CLONE_FILES: what the child opens, the parent has. */
    int report[2];
    pipe(report);
    pid_t pid = clone_process(CLONE_FILES);
    if (pid == 0) {
        int opened = open("/dev/null", O_RDONLY);
        write(report[1], &opened, sizeof opened);
        _exit(0);
    }
    int opened = -1;
    read(report[0], &opened, sizeof opened);
    wait_status(pid);
    check(opened >= 0 && is_open(opened), "clone_files_child_open_seen", "descriptor %d not open", opened);
    /* ... and what it closes, the parent loses. */
    pid = clone_process(CLONE_FILES);
    if (pid == 0) {
        _exit(close(opened) == 0 ? 0 : 1);
    }
    int status = wait_status(pid);
    check(exited_with(status, 0) && !is_open(opened) && errno == EBADF, "clone_files_child_close_seen",
          "status %#x, still open: %d", status, is_open(opened));

    /* fork: a copy, each side's changes its own. */
    int kept = open("/dev/null", O_RDONLY);
    pid = fork();
    if (pid == 0) {
        close(kept);
        _exit(fcntl(report[0], F_DUPFD, HIGH_DESCRIPTOR) == HIGH_DESCRIPTOR ? 0 : 1);
    }
    status = wait_status(pid);
    check(is_open(kept), "fork_child_close_not_seen", "descriptor closed in the parent");
    check(exited_with(status, 0) && !is_open(HIGH_DESCRIPTOR), "fork_child_open_not_seen", "status %#x",
          status);
    close(kept);

    /* unshare(CLONE_FILES) in a sharing child: its later opens stay its own. */
    pid = clone_process(CLONE_FILES);
    if (pid == 0) {
        if (syscall(SYS_unshare, CLONE_FILES) != 0) {
            _exit(1);
        }
        int private_file = fcntl(report[0], F_DUPFD, HIGH_DESCRIPTOR);
        _exit(private_file == HIGH_DESCRIPTOR && close(report[1]) == 0 ? 0 : 2);
    }
    status = wait_status(pid);
    check(exited_with(status, 0) && !is_open(HIGH_DESCRIPTOR) && is_open(report[1]), "unshare_files_splits",
          "status %#x, high open %d, write end open %d", status, is_open(HIGH_DESCRIPTOR), is_open(report[1]));
    check(syscall(SYS_unshare, CLONE_FILES) == 0, "unshare_files_alone", "failed");

    /* close_range(CLOSE_RANGE_UNSHARE) closes in a private copy. */
    int closing = open("/dev/null", O_RDONLY);
    pid = clone_process(CLONE_FILES);
    if (pid == 0) {
        long result = syscall(SYS_close_range, closing, closing, 2 /* CLOSE_RANGE_UNSHARE */);
        _exit(result == 0 && !is_open(closing) ? 0 : 1);
    }
    status = wait_status(pid);
    check(exited_with(status, 0) && is_open(closing), "close_range_unshare_private", "status %#x, open %d",
          status, is_open(closing));
    close(closing);

    /* /proc/PID/fd of a sharing child lists what the parent opens later. */
    int gate[2];
    pipe(gate);
    pid = clone_process(CLONE_FILES);
    if (pid == 0) {
        char byte;
        _exit(read(gate[0], &byte, 1) == 1 ? 0 : 1);
    }
    int null_file = open("/dev/null", O_RDONLY);
    int late = fcntl(null_file, F_DUPFD, HIGH_DESCRIPTOR + 1);
    close(null_file);
    char path[64];
    char target[256] = {0};
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, late);
    ssize_t length = readlink(path, target, sizeof target - 1);
    check(length > 0 && strcmp(target, "/dev/null") == 0, "proc_fd_follows_shared_table", "%s: %zd '%s'", path,
          length, target);
    write(gate[1], "x", 1);
    wait_status(pid);
    close(late);
    close(gate[0]);
    close(gate[1]);
    close(report[0]);
    close(report[1]);
}

static void check_filesystem_context(void) {
    char before[4096];
    getcwd(before, sizeof before);
    mode_t old_mask = umask(022);

    /* CLONE_FS: chdir and umask in the child are the parent's too. */
    pid_t pid = clone_process(CLONE_FS);
    if (pid == 0) {
        umask(077);
        _exit(chdir("/tmp") == 0 ? 0 : 1);
    }
    int status = wait_status(pid);
    char now[4096] = {0};
    getcwd(now, sizeof now);
    mode_t shared_mask = umask(022);
    check(exited_with(status, 0) && strcmp(now, "/tmp") == 0, "clone_fs_chdir_seen", "cwd '%s'", now);
    check(shared_mask == 077, "clone_fs_umask_seen", "umask %o", (unsigned)shared_mask);
    chdir(before);

    /* fork: the child's chdir and umask are its own. */
    pid = fork();
    if (pid == 0) {
        umask(077);
        _exit(chdir("/tmp") == 0 ? 0 : 1);
    }
    status = wait_status(pid);
    getcwd(now, sizeof now);
    mode_t own_mask = umask(022);
    check(exited_with(status, 0) && strcmp(now, before) == 0 && own_mask == 022, "fork_chdir_umask_private",
          "cwd '%s', umask %o", now, (unsigned)own_mask);

    /* unshare(CLONE_FS) in a sharing child splits them again. */
    pid = clone_process(CLONE_FS);
    if (pid == 0) {
        if (syscall(SYS_unshare, CLONE_FS) != 0) {
            _exit(1);
        }
        umask(077);
        _exit(chdir("/tmp") == 0 ? 0 : 2);
    }
    status = wait_status(pid);
    getcwd(now, sizeof now);
    own_mask = umask(022);
    check(exited_with(status, 0) && strcmp(now, before) == 0 && own_mask == 022, "unshare_fs_splits",
          "status %#x, cwd '%s', umask %o", status, now, (unsigned)own_mask);

    /* chroot is shared too (in a child, which then sees the new root). */
    if (geteuid() != 0) {
        skip("clone_fs_chroot_seen", "not root");
    } else {
        int marker = open("/tmp/sharing-marker", O_CREAT | O_WRONLY, 0644);
        close(marker);
        pid = fork();
        if (pid == 0) {
            pid_t inner = clone_process(CLONE_FS);
            if (inner == 0) {
                _exit(chroot("/tmp") == 0 ? 0 : 1);
            }
            int inner_status = wait_status(inner);
            _exit(exited_with(inner_status, 0) && access("/sharing-marker", F_OK) == 0 ? 0 : 1);
        }
        status = wait_status(pid);
        check(exited_with(status, 0), "clone_fs_chroot_seen", "status %#x", status);
        unlink("/tmp/sharing-marker");
    }
    umask(old_mask);
}

static void on_signal(int signal) {
    (void)signal;
}

/* A CLONE_VM child's work: a stack of its own, a function to run. */
static char child_stack[64 * 1024] __attribute__((aligned(16)));

static int install_handlers(void *argument) {
    (void)argument;
    signal(SIGUSR1, on_signal);
    signal(SIGUSR2, SIG_IGN);
    return 0;
}

static int split_handlers(void *argument) {
    (void)argument;
    long result = syscall(SYS_unshare, CLONE_SIGHAND);
    return result == -1 && errno == EINVAL ? 0 : 1;
}

static int execute_self(void *argument) {
    char *arguments[] = {(char *)self_path, argument, NULL};
    execv(self_path, arguments);
    _exit(127);
}

static pid_t clone_with_stack(int (*function)(void *), unsigned long flags, void *argument) {
    return clone(function, child_stack + sizeof child_stack, (int)flags | SIGCHLD, argument);
}

static void check_signal_handlers(void) {
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    errno = 0;
    long result = syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, NULL, NULL, 0);
    if (result == 0) {
        _exit(0);
    }
    check(result == -1 && errno == EINVAL, "clone_sighand_needs_vm", "result %ld", result);

    /* CLONE_SIGHAND | CLONE_VM: the child's sigaction is the parent's. */
    pid_t pid = clone_with_stack(install_handlers, CLONE_VM | CLONE_SIGHAND, NULL);
    int status = wait_status(pid);
    struct sigaction usr1;
    struct sigaction usr2;
    sigaction(SIGUSR1, NULL, &usr1);
    sigaction(SIGUSR2, NULL, &usr2);
    check(pid > 0 && exited_with(status, 0) && usr1.sa_handler == on_signal && usr2.sa_handler == SIG_IGN,
          "clone_sighand_sigaction_seen", "status %#x", status);

    /* Handlers cannot be split once shared. */
    pid = clone_with_stack(split_handlers, CLONE_VM | CLONE_SIGHAND, NULL);
    status = wait_status(pid);
    check(exited_with(status, 0), "unshare_shared_sighand_einval", "status %#x", status);
    check(syscall(SYS_unshare, CLONE_SIGHAND) == 0, "unshare_sighand_alone", "failed");

    /* fork: a copy of the handlers. */
    pid = fork();
    if (pid == 0) {
        signal(SIGUSR1, SIG_DFL);
        _exit(0);
    }
    wait_status(pid);
    sigaction(SIGUSR1, NULL, &usr1);
    check(usr1.sa_handler == on_signal, "fork_sigaction_private", "handler changed");

    /* execve in a child sharing the handlers resets its own copy only. */
    pid = clone_with_stack(execute_self, CLONE_VM | CLONE_VFORK | CLONE_SIGHAND, "exit");
    status = wait_status(pid);
    sigaction(SIGUSR1, NULL, &usr1);
    check(exited_with(status, 0) && usr1.sa_handler == on_signal, "execve_keeps_shared_handlers",
          "status %#x", status);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

/* Written by CLONE_VM children, read by the parent. */
static volatile int shared_word;
static volatile char *volatile child_mapping;
static void *parent_mapping;

static int store_word(void *argument) {
    shared_word = (int)(intptr_t)argument;
    return 0;
}

static int map_page(void *argument) {
    (void)argument;
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        return 1;
    }
    page[0] = 0x5a;
    child_mapping = page;
    return 0;
}

static int unmap_page(void *argument) {
    (void)argument;
    return munmap(parent_mapping, 4096) == 0 ? 0 : 1;
}

static int split_memory(void *argument) {
    (void)argument;
    long result = syscall(SYS_unshare, CLONE_VM);
    return result == -1 && errno == EINVAL ? 0 : 1;
}

/* clone(CLONE_VM | SIGCHLD) on child_stack, straight through the system
 * call: the child stores `value` at `word` and exits. */
static long raw_clone_vm_store(volatile int *word, int value) {
    long result;
    register long child_tid __asm__("r10") = 0;
    register long tls __asm__("r8") = 0;
    register volatile int *target __asm__("r9") = word;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "movl %%edx, (%%r9)\n\t"
                     "mov $60, %%eax\n\t"
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "1:"
                     : "=a"(result)
                     : "a"((long)SYS_clone), "D"((long)(CLONE_VM | SIGCHLD)), "S"(child_stack + sizeof child_stack),
                       "d"((long)value), "r"(child_tid), "r"(tls), "r"(target)
                     : "rcx", "r11", "memory");
    return result;
}

static void check_shared_memory(void) {
    /* A raw clone(CLONE_VM) child stores into the parent's memory. */
    shared_word = 0;
    long result = raw_clone_vm_store(&shared_word, 41);
    int status = wait_status((pid_t)result);
    check(result > 0 && exited_with(status, 0) && shared_word == 41, "clone_vm_store_seen",
          "status %#x, word %d", status, shared_word);

    pid_t pid = clone_with_stack(store_word, CLONE_VM, (void *)(intptr_t)42);
    status = wait_status(pid);
    check(exited_with(status, 0) && shared_word == 42, "clone_vm_function_store_seen", "status %#x, word %d",
          status, shared_word);

    /* vfork: the child runs in the parent's memory until it leaves. */
    pid = vfork();
    if (pid == 0) {
        shared_word = 43;
        _exit(0);
    }
    status = wait_status(pid);
    check(exited_with(status, 0) && shared_word == 43, "vfork_store_seen", "status %#x, word %d", status,
          shared_word);

    /* A mapping the child makes is the parent's too, and so is an unmap. */
    child_mapping = NULL;
    pid = clone_with_stack(map_page, CLONE_VM, NULL);
    status = wait_status(pid);
    check(exited_with(status, 0) && child_mapping != NULL && child_mapping[0] == 0x5a, "clone_vm_mmap_seen",
          "status %#x, mapping %p", status, (void *)child_mapping);
    if (child_mapping != NULL) {
        munmap((void *)child_mapping, 4096);
    }
    parent_mapping = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid = clone_with_stack(unmap_page, CLONE_VM, NULL);
    status = wait_status(pid);
    errno = 0;
    int synced = msync(parent_mapping, 4096, MS_ASYNC);
    check(exited_with(status, 0) && synced == -1 && errno == ENOMEM, "clone_vm_munmap_seen",
          "status %#x, msync %d errno %d", status, synced, errno);

    /* Memory another process holds cannot be split; one's own can. */
    pid = clone_with_stack(split_memory, CLONE_VM, NULL);
    status = wait_status(pid);
    check(exited_with(status, 0), "unshare_shared_vm_einval", "status %#x", status);
    check(syscall(SYS_unshare, CLONE_VM) == 0, "unshare_vm_alone", "failed");

    /* posix_spawn of a missing program reports ENOENT (glibc through the
     * shared memory of its CLONE_VM child, musl through a pipe). */
    char *arguments[] = {"missing", NULL};
    pid_t spawned = -1;
    int error = posix_spawn(&spawned, "/nonexistent/program", NULL, NULL, arguments, NULL);
    if (error == 0) {
        wait_status(spawned);
    }
    check(error == ENOENT, "posix_spawn_missing_enoent", "error %d", error);

    /* ... and a program that runs still works, its memory its own. */
    shared_word = 7;
    char *exit_arguments[] = {(char *)self_path, "exit", NULL};
    error = posix_spawn(&spawned, self_path, NULL, NULL, exit_arguments, NULL);
    status = error == 0 ? wait_status(spawned) : -1;
    check(error == 0 && exited_with(status, 0) && shared_word == 7, "posix_spawn_runs", "error %d, status %#x",
          error, status);
}

/* What a thread that split off its table and working directory saw. */
struct split_report {
    int victim;
    int unshared;
    int victim_closed;
    int high_opened;
    char directory[256];
    mode_t old_mask;
};

static void *split_thread(void *argument) {
    struct split_report *report = argument;
    report->unshared = (int)syscall(SYS_unshare, CLONE_FILES | CLONE_FS);
    report->victim_closed = close(report->victim) == 0;
    report->high_opened = dup2(report->victim_closed ? 0 : report->victim, HIGH_DESCRIPTOR + 2) >= 0;
    if (chdir("/tmp") == 0) {
        getcwd(report->directory, sizeof report->directory);
    }
    report->old_mask = umask(077);
    return NULL;
}

static void check_thread_unshare(void) {
    /* unshare(CLONE_FILES | CLONE_FS) in one thread of two: what it closes,
     * opens, its chdir and umask stay its own. */
    char before[4096] = {0};
    getcwd(before, sizeof before);
    mode_t old_mask = umask(022);
    struct split_report report = {.victim = open("/dev/null", O_RDONLY)};
    pthread_t thread;
    int created = pthread_create(&thread, NULL, split_thread, &report);
    if (created == 0) {
        pthread_join(thread, NULL);
    }
    char now[4096] = {0};
    getcwd(now, sizeof now);
    mode_t mask = umask(022);
    check(created == 0 && report.unshared == 0, "thread_unshare_succeeds", "created %d, unshare %d", created,
          report.unshared);
    check(report.victim_closed && is_open(report.victim), "thread_unshare_files_close_private",
          "closed %d, still open here %d", report.victim_closed, is_open(report.victim));
    check(report.high_opened && !is_open(HIGH_DESCRIPTOR + 2), "thread_unshare_files_open_private",
          "opened %d, open here %d", report.high_opened, is_open(HIGH_DESCRIPTOR + 2));
    check(strcmp(report.directory, "/tmp") == 0 && strcmp(now, before) == 0, "thread_unshare_fs_chdir_private",
          "thread '%s', here '%s'", report.directory, now);
    check(report.old_mask == 022 && mask == 022, "thread_unshare_fs_umask_private", "thread saw %o, here %o",
          (unsigned)report.old_mask, (unsigned)mask);
    close(report.victim);
    umask(old_mask);
}

static void check_execve_unshares(void) {
    /* A CLONE_FILES child that calls execve closes its close-on-exec
     * descriptors in a copy: the parent keeps them, and what the new
     * program opens is its own. */
    int kept = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = clone_with_stack(execute_self, CLONE_VM | CLONE_VFORK | CLONE_FILES, "open-high");
    int status = wait_status(pid);
    check(exited_with(status, 0) && is_open(kept), "execve_keeps_parents_close_on_exec", "status %#x, open %d",
          status, is_open(kept));
    check(!is_open(HIGH_DESCRIPTOR), "execve_opens_privately", "descriptor %d open", HIGH_DESCRIPTOR);
    close(kept);
}

int main(int count, char **arguments) {
    if (count > 1) {
        return run_role(arguments);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    check_descriptor_tables();
    check_filesystem_context();
    check_signal_handlers();
    check_shared_memory();
    check_thread_unshare();
    check_execve_unshares();
    printf("%d checks failed\n", failures);
    return failures;
}
