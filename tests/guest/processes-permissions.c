/* Checks who may signal whom: kill, pidfd_send_signal, rt_sigqueueinfo and
 * tgkill to another process succeed as root, fail with EPERM for another
 * user unless its real or effective id is the target's real or saved id,
 * and SIGCONT is always allowed within the session; process_vm_readv and
 * process_vm_writev reach a child's memory, and another user's only as
 * root.
 * Run as root with no argument: one line per check, then
 * "<n> checks failed", exit status the count. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

/* An id no account on the host uses. */
#define OTHER_USER 4243
#define THIRD_USER 4244

/* A child that waits to be killed, as `user` (0: root). */
static pid_t start_sleeper(uid_t user) {
    pid_t pid = fork();
    if (pid == 0) {
        if (user != 0 && (setgid(user) != 0 || setuid(user) != 0)) {
            _exit(20);
        }
        for (;;) {
            pause();
        }
    }
    return pid;
}

static int pidfd_open_of(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* What each way of sending `signal` to `target` gives, as errno values
 * (0 for success), one per byte: kill, pidfd_send_signal,
 * rt_sigqueueinfo, tgkill. */
static unsigned results_towards(pid_t target, int signal) {
    int pidfd = pidfd_open_of(target);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signal;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    unsigned packed = 0;
    for (int index = 0; index < 4; index++) {
        errno = 0;
        long outcome = -1;
        switch (index) {
        case 0:
            outcome = kill(target, signal);
            break;
        case 1:
            outcome = pidfd < 0 ? -1 : syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0);
            break;
        case 2:
            outcome = syscall(SYS_rt_sigqueueinfo, target, signal, &info);
            break;
        default:
            outcome = syscall(SYS_tgkill, target, target, signal);
        }
        /* EPERM is 1: a refusal shows as 1 in its byte. */
        unsigned code = outcome == 0 ? 0 : (unsigned)errno & 0xff;
        packed |= code << (index * 8);
    }
    if (pidfd >= 0) {
        close(pidfd);
    }
    return packed;
}

/* Runs `check_as` in a child that becomes `user`, with the child's exit
 * status as the result. */
static int as_user(uid_t user, int (*check_as)(void *), void *argument) {
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(user) != 0 || setuid(user) != 0) {
            _exit(100);
        }
        _exit(check_as(argument));
    }
    int status = -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

/* As another user, towards root's process: every way fails with EPERM,
 * signal 0 included; SIGCONT goes through (same session). Exit status:
 * a bit per failed expectation. */
static int towards_root(void *argument) {
    pid_t target = *(pid_t *)argument;
    int failed = 0;
    errno = 0;
    if (kill(target, SIGTERM) != -1 || errno != EPERM) {
        failed |= 1;
    }
    errno = 0;
    if (kill(target, 0) != -1 || errno != EPERM) {
        failed |= 2;
    }
    if (results_towards(target, SIGUSR1) != 0x01010101) {
        failed |= 4;
    }
    int pidfd = pidfd_open_of(target);
    errno = 0;
    if (pidfd < 0 || syscall(SYS_pidfd_send_signal, pidfd, SIGUSR1, NULL, 0) != -1 || errno != EPERM) {
        failed |= 8;
    }
    if (kill(target, SIGCONT) != 0) {
        failed |= 16;
    }
    /* A group of root's processes only: EPERM. */
    errno = 0;
    if (kill(-target, SIGTERM) != -1 || errno != EPERM) {
        failed |= 32;
    }
    /* -1 skips what it may not signal and succeeds. */
    if (kill(-1, 0) != 0) {
        failed |= 64;
    }
    return failed;
}

/* As the target's own user: every way succeeds. */
static int towards_own(void *argument) {
    pid_t target = *(pid_t *)argument;
    return results_towards(target, 0) == 0 && kill(target, SIGCONT) == 0 ? 0 : 1;
}

/* Real id another user's, effective id the target's: allowed. */
static int with_effective_id_only(void *argument) {
    pid_t target = *(pid_t *)argument;
    return kill(target, 0) == 0 ? 0 : 1;
}

/* Each process's own copy after fork. */
static char remote_word[16] = "parent";

/* As another user, towards root's process: EPERM both ways. */
static int remote_memory_refused(void *argument) {
    pid_t target = *(pid_t *)argument;
    char buffer[16];
    struct iovec local = {buffer, sizeof buffer};
    struct iovec remote = {remote_word, sizeof remote_word};
    errno = 0;
    int failed = 0;
    if (process_vm_readv(target, &local, 1, &remote, 1, 0) != -1 || errno != EPERM) {
        failed |= 1;
    }
    errno = 0;
    if (process_vm_writev(target, &local, 1, &remote, 1, 0) != -1 || errno != EPERM) {
        failed |= 2;
    }
    return failed;
}

static void check_remote_memory(pid_t root_sleeper) {
    int ready[2];
    int done[2];
    pipe(ready);
    pipe(done);
    pid_t pid = fork();
    if (pid == 0) {
        strcpy(remote_word, "child");
        write(ready[1], "r", 1);
        char byte;
        read(done[0], &byte, 1);
        _exit(strcmp(remote_word, "written") == 0 ? 0 : 1);
    }
    char byte;
    read(ready[0], &byte, 1);
    char buffer[16] = {0};
    struct iovec local = {buffer, sizeof buffer};
    struct iovec remote = {remote_word, sizeof remote_word};
    ssize_t moved = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    check(moved == (ssize_t)sizeof remote_word && strcmp(buffer, "child") == 0 &&
              strcmp(remote_word, "parent") == 0,
          "process_vm_readv_of_a_child", "moved %zd, '%s'", moved, buffer);
    char written[16] = "written";
    struct iovec source = {written, sizeof written};
    moved = process_vm_writev(pid, &source, 1, &remote, 1, 0);
    write(done[1], "d", 1);
    int status = -1;
    waitpid(pid, &status, 0);
    check(moved == (ssize_t)sizeof written && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              strcmp(remote_word, "parent") == 0,
          "process_vm_writev_of_a_child", "moved %zd, status %#x", moved, status);
    errno = 0;
    check(process_vm_readv(pid, &local, 1, &remote, 1, 0) == -1 && errno == ESRCH,
          "process_vm_readv_of_a_reaped_child", "errno %d", errno);
    int failed = as_user(THIRD_USER, remote_memory_refused, &root_sleeper);
    check(failed == 0, "process_vm_of_another_user_refused", "failures %#x", failed);
    close(ready[0]);
    close(ready[1]);
    close(done[0]);
    close(done[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (geteuid() != 0) {
        skip("kill_permissions", "needs root");
        printf("%d checks failed\n", failures);
        return failures;
    }
    /* The root process in a group of its own, so -pid names it. */
    pid_t root_sleeper = start_sleeper(0);
    setpgid(root_sleeper, root_sleeper);
    pid_t other_sleeper = start_sleeper(OTHER_USER);
    usleep(100 * 1000);

    check(results_towards(other_sleeper, 0) == 0, "root_signals_another_user", "refused");
    check_remote_memory(root_sleeper);
    int failed = as_user(THIRD_USER, towards_root, &root_sleeper);
    check(failed == 0, "another_user_is_refused_but_sigcont", "failures %#x", failed);
    failed = as_user(OTHER_USER, towards_own, &other_sleeper);
    check(failed == 0, "the_same_user_signals", "status %d", failed);

    /* setresuid(THIRD_USER, OTHER_USER, THIRD_USER): only the effective id
     * matches the target's real id. */
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(THIRD_USER) != 0 || setresuid(THIRD_USER, OTHER_USER, THIRD_USER) != 0) {
            _exit(100);
        }
        _exit(with_effective_id_only(&other_sleeper));
    }
    int status = -1;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the_effective_id_counts", "status %#x", status);

    /* A target whose saved id is the sender's: setresuid(OTHER, OTHER,
     * THIRD) leaves THIRD as the saved id. */
    pid_t saved = fork();
    if (saved == 0) {
        if (setgid(OTHER_USER) != 0 || setresuid(OTHER_USER, OTHER_USER, THIRD_USER) != 0) {
            _exit(20);
        }
        for (;;) {
            pause();
        }
    }
    usleep(100 * 1000);
    failed = as_user(THIRD_USER, with_effective_id_only, &saved);
    check(failed == 0, "the_target_saved_id_counts", "status %d", failed);

    kill(root_sleeper, SIGKILL);
    kill(other_sleeper, SIGKILL);
    kill(saved, SIGKILL);
    int reaped = 0;
    while (wait(NULL) > 0) {
        reaped++;
    }
    check(reaped == 3, "sleepers_reaped", "%d reaped", reaped);
    printf("%d checks failed\n", failures);
    return failures;
}
