/* Checks process descriptors: pidfd_open, CLONE_PIDFD (clone and clone3),
 * poll readable when the process ends, pidfd_send_signal, pidfd_getfd,
 * waitid(P_PIDFD), ESRCH once the process is reaped, and a /proc/PID
 * directory descriptor standing for a pidfd.
 * Run with no argument: one line per check, then "<n> checks failed",
 * exit status the count. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif

static int pidfd_open(pid_t pid, unsigned flags) {
    return (int)syscall(434, pid, flags);
}

static int pidfd_send_signal(int pidfd, int signal, siginfo_t *info, unsigned flags) {
    return (int)syscall(424, pidfd, signal, info, flags);
}

static int pidfd_getfd(int pidfd, int target, unsigned flags) {
    return (int)syscall(438, pidfd, target, flags);
}

static int is_readable(int fd, int timeout_ms) {
    struct pollfd entry = {fd, POLLIN, 0};
    return poll(&entry, 1, timeout_ms) == 1 && (entry.revents & POLLIN) != 0;
}

static void check_open_poll_and_wait(void) {
    int gate[2];
    pipe(gate);
    pid_t pid = fork();
    if (pid == 0) {
        char byte;
        read(gate[0], &byte, 1);
        _exit(7);
    }
    int pidfd = pidfd_open(pid, 0);
    check(pidfd >= 0, "pidfd_open", "failed");
    check((fcntl(pidfd, F_GETFD) & FD_CLOEXEC) != 0, "pidfd_close_on_exec", "flag missing");
    check(!is_readable(pidfd, 100), "pidfd_not_readable_while_running", "readable");
    write(gate[1], "x", 1);
    check(is_readable(pidfd, 10000), "pidfd_readable_when_ended", "never readable");
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int result = waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED);
    check(result == 0 && info.si_pid == pid && info.si_code == CLD_EXITED && info.si_status == 7,
          "waitid_p_pidfd", "result %d, pid %d, code %d, status %d", result, (int)info.si_pid, info.si_code,
          info.si_status);
    check(pidfd_send_signal(pidfd, SIGTERM, NULL, 0) == -1 && errno == ESRCH, "reaped_gives_esrch",
          "signal went somewhere");
    check(pidfd_open(pid, 0) == -1 && errno == ESRCH, "open_of_reaped_fails", "opened");
    close(pidfd);
    close(gate[0]);
    close(gate[1]);
    check(pidfd_open(getpid(), 0xff) == -1 && errno == EINVAL, "bad_flags_einval", "accepted");
    int not_pidfd = open("/dev/null", O_RDONLY);
    check(waitid(P_PIDFD, (id_t)not_pidfd, &info, WEXITED) == -1 && errno == EBADF, "waitid_other_file_ebadf",
          "accepted");
    close(not_pidfd);
}

static void check_send_signal_and_getfd(void) {
    int report[2];
    pipe(report);
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        int secret = open("/proc/self/exe", O_RDONLY);
        dup2(secret, 42);
        write(report[1], "r", 1);
        for (;;) {
            pause();
        }
    }
    close(report[1]);
    char byte;
    read(report[0], &byte, 1);
    close(report[0]);
    int pidfd = pidfd_open(pid, 0);
    int taken = pidfd_getfd(pidfd, 42, 0);
    struct stat own, theirs;
    check(taken >= 0 && fstat(taken, &theirs) == 0 && stat("/proc/self/exe", &own) == 0 &&
              own.st_ino == theirs.st_ino,
          "pidfd_getfd", "taken %d", taken);
    check(taken >= 0 && (fcntl(taken, F_GETFD) & FD_CLOEXEC) != 0, "pidfd_getfd_close_on_exec", "flag missing");
    close(taken);
    check(pidfd_getfd(pidfd, 77, 0) == -1 && errno == EBADF, "pidfd_getfd_bad_descriptor", "accepted");
    check(pidfd_send_signal(pidfd, 0, NULL, 0) == 0, "pidfd_send_signal_zero", "failed");
    check(pidfd_send_signal(pidfd, SIGKILL, NULL, 0) == 0, "pidfd_send_signal", "failed");
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "signal_killed_child", "status %#x", status);
    close(pidfd);
}

/* A descriptor open on a process's /proc directory stands for a pidfd in
 * pidfd_send_signal; any other directory is refused with EBADF. */
static void check_proc_directory_signal(void) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;) {
            pause();
        }
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    int directory = open(path, O_RDONLY | O_DIRECTORY);
    int other = open("/proc", O_RDONLY | O_DIRECTORY);
    check(pidfd_send_signal(other, SIGKILL, NULL, 0) == -1 && errno == EBADF, "proc_root_is_no_pidfd",
          "accepted");
    check(directory >= 0 && pidfd_send_signal(directory, SIGKILL, NULL, 0) == 0, "proc_directory_signals",
          "directory %d", directory);
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "proc_directory_killed_child", "status %#x",
          status);
    check(pidfd_send_signal(directory, SIGKILL, NULL, 0) == -1 && errno == ESRCH, "proc_directory_reaped_esrch",
          "accepted");
    close(directory);
    close(other);
}

static void check_clone_pidfd(void) {
    int pidfd = -1;
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
    if (pid == 0) {
        _exit(3);
    }
    check(pid > 0 && pidfd >= 0, "clone_pidfd", "pid %d, pidfd %d", (int)pid, pidfd);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    check(waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) == 0 && info.si_pid == pid && info.si_status == 3,
          "clone_pidfd_waits", "pid %d, status %d", (int)info.si_pid, info.si_status);
    close(pidfd);

    /* clone3: struct clone_args, version 0 (64 bytes). */
    uint64_t arguments[8] = {0};
    int pidfd3 = -1;
    arguments[0] = CLONE_PIDFD;
    arguments[1] = (uint64_t)(uintptr_t)&pidfd3;
    arguments[4] = SIGCHLD;
    pid = (pid_t)syscall(435, arguments, sizeof arguments);
    if (pid == 0) {
        _exit(4);
    }
    check(pid > 0 && pidfd3 >= 0, "clone3_pidfd", "pid %d, pidfd %d", (int)pid, pidfd3);
    int status = 0;
    check(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 4, "clone3_child_exits", "status %#x",
          status);
    close(pidfd3);
    check(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &pidfd, 0, 0) == -1 &&
              errno == EINVAL,
          "clone_pidfd_with_parent_settid_einval", "accepted");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_open_poll_and_wait();
    check_send_signal_and_getfd();
    check_clone_pidfd();
    check_proc_directory_signal();
    printf("%d checks failed\n", failures);
    return failures;
}
