/* Checks processes: fork with copy-on-write memory, shared mappings across
 * fork, wait4/waitpid/waitid statuses, pipes between processes, execve
 * (of itself, of a #! script, of an execute-only file as another user,
 * failures that leave the caller running),
 * close-on-exec, vfork and posix_spawn, SIGCHLD, kill to a child,
 * process groups and sessions, fork from a threaded process.
 * Run with no argument: one line per check, then "<n> checks failed", exit
 * status the count. The program re-runs itself (argv[1] names a role). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

extern char **environ;

static const char *self_path = "/proc/self/exe";

/* Roles the program plays when started with arguments. */
static int run_role(int count, char **arguments) {
    const char *role = arguments[1];
    if (strcmp(role, "exit-with") == 0) {
        return atoi(arguments[2]);
    }
    if (strcmp(role, "echo-arguments") == 0) {
        /* Prints its arguments after the role, separated by '|'. */
        for (int index = 2; index < count; index++) {
            printf("%s%s", arguments[index], index + 1 < count ? "|" : "\n");
        }
        fflush(stdout);
        return 0;
    }
    if (strcmp(role, "descriptor-open") == 0) {
        /* Exit status 0 when descriptor argv[2] is open. */
        return fcntl(atoi(arguments[2]), F_GETFD) == -1 ? 1 : 0;
    }
    if (strcmp(role, "environment") == 0) {
        const char *value = getenv("ROSV_CHECK");
        return value != NULL && strcmp(value, "present") == 0 ? 0 : 1;
    }
    if (strcmp(role, "script with-argument") == 0) {
        /* Started through a #! line: everything after the interpreter is
         * one argument (argv[1]), then the script's path and the caller's
         * arguments after its argv[0]. */
        int is_right = count == 4 && strstr(arguments[2], "processes-script") != NULL &&
                       strcmp(arguments[3], "tail") == 0;
        return is_right ? 0 : 1;
    }
    if (strcmp(role, "dumpable") == 0) {
        return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    }
    if (strcmp(role, "exe-is") == 0) {
        /* Exit status 0 when /proc/self/exe names argv[2]. */
        char exe[4096] = {0};
        ssize_t length = readlink("/proc/self/exe", exe, sizeof exe - 1);
        return length > 0 && strcmp(exe, arguments[2]) == 0 ? 0 : 1;
    }
    return 100;
}

static int wait_status(pid_t pid) {
    int status = -1;
    if (waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return status;
}

static void check_fork_and_exit_status(void) {
    pid_t pid = fork();
    if (pid == 0) {
        _exit(42);
    }
    check(pid > 0, "fork_returns_child", "fork gave %d", (int)pid);
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 42, "wait_exit_status", "status %#x", status);
    check(waitpid(pid, &status, 0) == -1 && errno == ECHILD, "reaped_once", "second wait did not fail");
    check(wait(NULL) == -1 && errno == ECHILD, "no_children_left", "wait did not fail with ECHILD");
}

static void check_copy_on_write(void) {
    static int global = 1;
    int *heap = malloc(sizeof *heap);
    *heap = 2;
    char *anonymous = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    anonymous[0] = 'p';
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *shared = 0;
    pid_t pid = fork();
    if (pid == 0) {
        int is_copy = global == 1 && *heap == 2 && anonymous[0] == 'p';
        global = 10;
        *heap = 20;
        anonymous[0] = 'c';
        anonymous[4096] = 'c';
        *shared = 1234;
        _exit(is_copy && global == 10 && *heap == 20 ? 0 : 1);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child_sees_and_owns_a_copy", "status %#x", status);
    check(global == 1 && *heap == 2 && anonymous[0] == 'p' && anonymous[4096] == 0, "parent_memory_unchanged",
          "global %d heap %d anonymous %c", global, *heap, anonymous[0]);
    check(*shared == 1234, "shared_mapping_is_shared", "shared word %d", *shared);
    /* The parent still writes its own pages after the child is gone. */
    global = 3;
    *heap = 4;
    anonymous[0] = 'q';
    check(global == 3 && *heap == 4 && anonymous[0] == 'q', "parent_writes_after_fork", "writes lost");
    free(heap);
    munmap(anonymous, 8192);
    munmap(shared, 4096);
}

static void check_pipe_between_processes(void) {
    int pipe_ends[2];
    check(pipe(pipe_ends) == 0, "pipe", "pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        close(pipe_ends[0]);
        const char message[] = "through the pipe";
        ssize_t written = write(pipe_ends[1], message, sizeof message);
        _exit(written == sizeof message ? 0 : 1);
    }
    close(pipe_ends[1]);
    char buffer[64] = {0};
    ssize_t total = 0;
    for (;;) {
        ssize_t length = read(pipe_ends[0], buffer + total, sizeof buffer - 1 - total);
        if (length <= 0) {
            break;
        }
        total += length;
    }
    close(pipe_ends[0]);
    check(strcmp(buffer, "through the pipe") == 0, "pipe_carries_data_and_end", "read '%s'", buffer);
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pipe_writer_status", "status %#x", status);
}

/* A program of mode 0111 runs for a user who may not read it: execve
 * asks execute permission only. */
static void check_execute_only(void) {
    const char *copy = "/tmp/processes-execute-only";
    unlink(copy);
    int from = open(self_path, O_RDONLY);
    int to = open(copy, O_CREAT | O_WRONLY | O_TRUNC, 0700);
    char block[65536];
    ssize_t length = 0;
    int copied = from >= 0 && to >= 0;
    while (copied && (length = read(from, block, sizeof block)) > 0) {
        copied = write(to, block, (size_t)length) == length;
    }
    close(from);
    close(to);
    check(copied && length == 0 && chmod(copy, 0111) == 0, "copy_execute_only", "errno %d", errno);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(4243) != 0 || setuid(4243) != 0) {
            _exit(100);
        }
        if (open(copy, O_RDONLY) != -1 || errno != EACCES) {
            _exit(101);
        }
        char *arguments[] = {"processes", "exit-with", "7", NULL};
        execv(copy, arguments);
        _exit(102);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 7, "exec_execute_only_file", "status %#x", status);
    unlink(copy);
}

static void check_execve(void) {
    int pipe_ends[2];
    check(pipe(pipe_ends) == 0, "exec_pipe", "pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipe_ends[1], 1);
        close(pipe_ends[0]);
        close(pipe_ends[1]);
        char *arguments[] = {"processes", "echo-arguments", "one", "two words", "", "three", NULL};
        execv(self_path, arguments);
        _exit(99);
    }
    close(pipe_ends[1]);
    char buffer[128] = {0};
    ssize_t total = 0;
    for (;;) {
        ssize_t length = read(pipe_ends[0], buffer + total, sizeof buffer - 1 - total);
        if (length <= 0) {
            break;
        }
        total += length;
    }
    close(pipe_ends[0]);
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec_status", "status %#x", status);
    check(strcmp(buffer, "one|two words||three\n") == 0, "exec_arguments", "got '%s'", buffer);

    /* Run through a symbolic link, /proc/self/exe still names the file. */
    char real_path[4096] = {0};
    check(readlink(self_path, real_path, sizeof real_path - 1) > 0, "exe_readlink", "errno %d", errno);
    unlink("/tmp/processes-link");
    check(symlink(real_path, "/tmp/processes-link") == 0, "exe_link", "symlink: errno %d", errno);
    pid = fork();
    if (pid == 0) {
        char *arguments[] = {"processes", "exe-is", real_path, NULL};
        execv("/tmp/processes-link", arguments);
        _exit(99);
    }
    status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exe_resolved", "status %#x", status);
    unlink("/tmp/processes-link");

    pid = fork();
    if (pid == 0) {
        char *arguments[] = {"processes", "environment", NULL};
        char *environment[] = {"ROSV_CHECK=present", NULL};
        execve(self_path, arguments, environment);
        _exit(99);
    }
    status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec_environment", "status %#x", status);

    char *arguments[] = {"missing", NULL};
    errno = 0;
    check(execv("/no/such/program", arguments) == -1 && errno == ENOENT, "exec_missing_is_enoent",
          "errno %d", errno);
    int fd = open("/tmp/processes-not-elf", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    check(fd >= 0 && write(fd, "plain text\n", 11) == 11, "write_not_elf", "could not write");
    close(fd);
    errno = 0;
    check(execv("/tmp/processes-not-elf", arguments) == -1 && errno == ENOEXEC, "exec_not_elf_is_enoexec",
          "errno %d", errno);
    fd = open("/tmp/processes-not-executable", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    close(fd);
    errno = 0;
    check(execv("/tmp/processes-not-executable", arguments) == -1 && errno == EACCES, "exec_mode_is_eacces",
          "errno %d", errno);
    errno = 0;
    check(execv("/tmp", arguments) == -1 && errno == EACCES, "exec_directory_is_eacces", "errno %d", errno);
    check_execute_only();
}

static void check_script(void) {
    char target[256] = {0};
    ssize_t length = readlink(self_path, target, sizeof target - 1);
    check(length > 0, "readlink_self", "readlink failed");
    int fd = open("/tmp/processes-script", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    char line[300];
    int line_length = snprintf(line, sizeof line, "#!%s script with-argument  \necho never\n", target);
    check(fd >= 0 && write(fd, line, line_length) == line_length, "write_script", "could not write");
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        char *arguments[] = {"processes-script", "tail", NULL};
        execv("/tmp/processes-script", arguments);
        _exit(99);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec_script_interpreter", "status %#x", status);
}

static void check_close_on_exec(void) {
    int kept = open("/", O_RDONLY | O_DIRECTORY);
    int closed = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char kept_text[16], closed_text[16];
    snprintf(kept_text, sizeof kept_text, "%d", kept);
    snprintf(closed_text, sizeof closed_text, "%d", closed);
    pid_t pid = fork();
    if (pid == 0) {
        char *arguments[] = {"processes", "descriptor-open", kept_text, NULL};
        execv(self_path, arguments);
        _exit(99);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exec_keeps_descriptors", "status %#x", status);
    pid = fork();
    if (pid == 0) {
        char *arguments[] = {"processes", "descriptor-open", closed_text, NULL};
        execv(self_path, arguments);
        _exit(99);
    }
    status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exec_closes_cloexec", "status %#x", status);
    close(kept);
    close(closed);
}

static void check_vfork_and_spawn(void) {
    pid_t pid = vfork();
    if (pid == 0) {
        char *arguments[] = {"processes", "exit-with", "5", NULL};
        execv(self_path, arguments);
        _exit(99);
    }
    int status = wait_status(pid);
    check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 5, "vfork_exec", "status %#x", status);

    char *arguments[] = {"processes", "exit-with", "6", NULL};
    pid_t spawned = -1;
    int error = posix_spawn(&spawned, self_path, NULL, NULL, arguments, environ);
    check(error == 0 && spawned > 0, "posix_spawn", "error %d", error);
    status = wait_status(spawned);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 6, "posix_spawn_status", "status %#x", status);

    int code = system(NULL);
    if (access("/bin/sh", X_OK) == 0) {
        check(code != 0, "system_has_shell", "system(NULL) = %d", code);
    } else {
        skip("system_has_shell", "no /bin/sh in this image");
    }
}

static volatile sig_atomic_t child_signals;

static void on_child(int signal) {
    (void)signal;
    child_signals++;
}

static void check_signals_and_kill(void) {
    struct sigaction action = {0};
    action.sa_handler = on_child;
    sigaction(SIGCHLD, &action, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    check(kill(pid, SIGTERM) == 0, "kill_child", "kill failed");
    int status = wait_status(pid);
    check(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "wait_killed_status", "status %#x", status);
    check(child_signals >= 1, "sigchld_delivered", "%d SIGCHLD", (int)child_signals);

    pid = fork();
    if (pid == 0) {
        _exit(3);
    }
    siginfo_t info = {0};
    int result = waitid(P_PID, pid, &info, WEXITED);
    check(result == 0 && info.si_pid == pid && info.si_code == CLD_EXITED && info.si_status == 3, "waitid",
          "result %d pid %d code %d status %d", result, (int)info.si_pid, info.si_code, info.si_status);

    pid = fork();
    if (pid == 0) {
        usleep(200 * 1000);
        _exit(0);
    }
    check(waitpid(pid, &status, WNOHANG) == 0, "wnohang_running_child", "child already reaped");
    check(wait_status(pid) == 0, "wait_after_wnohang", "status wrong");

    action.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &action, NULL);
    pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    errno = 0;
    check(waitpid(pid, &status, 0) == -1 && errno == ECHILD, "ignored_sigchld_reaps", "errno %d", errno);
    action.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &action, NULL);
    check(kill(999999, 0) == -1 && errno == ESRCH, "kill_missing_is_esrch", "errno %d", errno);

    /* A child that has ended but is not reaped takes signals and drops
       them; once reaped it is gone. */
    pid = fork();
    if (pid == 0) {
        _exit(4);
    }
    siginfo_t ended = {0};
    result = waitid(P_PID, pid, &ended, WEXITED | WNOWAIT);
    check(result == 0 && kill(pid, 0) == 0 && kill(pid, SIGTERM) == 0, "kill_zombie_succeeds", "errno %d",
          errno);
    status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 4, "zombie_keeps_its_status", "status %#x", status);
    errno = 0;
    check(kill(pid, 0) == -1 && errno == ESRCH, "kill_reaped_is_esrch", "errno %d", errno);
}

static void check_identity(void) {
    pid_t parent = getpid();
    int pipe_ends[2];
    check(pipe(pipe_ends) == 0, "identity_pipe", "pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        pid_t ids[4] = {getpid(), getppid(), (pid_t)syscall(SYS_gettid), 0};
        ids[3] = setpgid(0, 0) == 0 && getpgid(0) == getpid() ? 1 : 0;
        ssize_t written = write(pipe_ends[1], ids, sizeof ids);
        _exit(written == sizeof ids ? 0 : 1);
    }
    pid_t ids[4] = {0};
    ssize_t got = read(pipe_ends[0], ids, sizeof ids);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    wait_status(pid);
    check(got == sizeof ids && ids[0] == pid && ids[1] == parent && ids[2] == pid, "child_ids",
          "pid %d ppid %d tid %d (expected %d %d)", (int)ids[0], (int)ids[1], (int)ids[2], (int)pid, (int)parent);
    check(ids[3] == 1, "setpgid_own_group", "setpgid failed");

    pid = fork();
    if (pid == 0) {
        pid_t session = setsid();
        _exit(session == getpid() && getsid(0) == getpid() && getpgid(0) == getpid() ? 0 : 1);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "setsid_in_child", "status %#x", status);
}

/* PR_SET_DUMPABLE (nginx's workers set it): kept across fork, set again by
 * execve. */
static void check_dumpable(void) {
    check(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1, "dumpable_at_start", "not dumpable");
    check(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0) == -1 && errno == EINVAL, "dumpable_refuses_2", "accepted");
    check(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable_clears",
          "prctl failed");
    pid_t pid = fork();
    if (pid == 0) {
        _exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : 1);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dumpable_inherited", "status %#x", status);
    pid = fork();
    if (pid == 0) {
        execl(self_path, self_path, "dumpable", (char *)NULL);
        _exit(99);
    }
    status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 1, "dumpable_after_execve", "status %#x", status);
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* PR_SET_PDEATHSIG (PostgreSQL's children ask for it): a grandchild whose
 * parent ends gets the signal; a forked child does not inherit it. */
static void check_parent_death_signal(void) {
    int pipe_ends[2];
    check(pipe(pipe_ends) == 0, "pdeathsig_pipe", "pipe failed");
    pid_t middle = fork();
    if (middle == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            int signal_number = -1;
            int is_set = prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0) == 0 &&
                         prctl(PR_GET_PDEATHSIG, &signal_number, 0, 0, 0) == 0 && signal_number == SIGUSR1;
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGUSR1);
            sigprocmask(SIG_BLOCK, &set, NULL);
            pid_t forked = fork();
            if (forked == 0) {
                int inherited = -1;
                prctl(PR_GET_PDEATHSIG, &inherited, 0, 0, 0);
                _exit(inherited == 0 ? 0 : 1);
            }
            int status = -1;
            waitpid(forked, &status, 0);
            /* Tell the middle process to end, then wait for the signal. */
            char ready = is_set && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 'y' : 'n';
            write(pipe_ends[1], &ready, 1);
            struct timespec limit = {20, 0};
            int taken = sigtimedwait(&set, NULL, &limit);
            char result = taken == SIGUSR1 ? 's' : 't';
            write(pipe_ends[1], &result, 1);
            _exit(0);
        }
        char ready = 0;
        read(pipe_ends[0], &ready, 1);
        write(pipe_ends[1], &ready, 1);
        _exit(0);
    }
    int status = wait_status(middle);
    char answers[2] = {0};
    ssize_t got = read(pipe_ends[0], &answers[0], 1);
    got += read(pipe_ends[0], &answers[1], 1);
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    check(WIFEXITED(status) && got == 2 && answers[0] == 'y', "pdeathsig_set_not_inherited", "got %c",
          answers[0]);
    check(answers[1] == 's', "pdeathsig_sent_when_parent_ends", "got %c", answers[1]);
}

static void *thread_main(void *argument) {
    (void)argument;
    for (;;) {
        pause();
    }
    return NULL;
}

static void check_fork_with_threads(void) {
    pthread_t thread;
    check(pthread_create(&thread, NULL, thread_main, NULL) == 0, "start_thread", "pthread_create failed");
    pid_t pid = fork();
    if (pid == 0) {
        /* Only the forking thread lives on in the child, which can still
         * start threads and end normally. */
        pthread_t other;
        int started = pthread_create(&other, NULL, thread_main, NULL) == 0;
        _exit(started ? 7 : 1);
    }
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 7, "fork_in_threaded_process", "status %#x", status);
}

static void check_shared_semaphore(void) {
    sem_t *semaphore = mmap(NULL, sizeof *semaphore, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check(semaphore != MAP_FAILED && sem_init(semaphore, 1, 0) == 0, "shared_semaphore_init", "failed");
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100 * 1000);
        _exit(sem_post(semaphore) == 0 ? 0 : 1);
    }
    /* The parent blocks in the futex until the child posts. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    int waited = sem_timedwait(semaphore, &deadline);
    check(waited == 0, "shared_semaphore_wakes_across_processes", "sem_timedwait gave %d", waited);
    int status = wait_status(pid);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shared_semaphore_poster", "status %#x", status);
    munmap(semaphore, sizeof *semaphore);
}

/* A fork bomb run as an ordinary user meets RLIMIT_NPROC with EAGAIN, and
 * its children can all be killed. */
static void check_fork_bomb(void) {
    pid_t bomber = fork();
    if (bomber == 0) {
        struct rlimit limit = {20, 20};
        if (setrlimit(RLIMIT_NPROC, &limit) != 0 || setgid(4242) != 0 || setuid(4242) != 0) {
            _exit(10);
        }
        setpgid(0, 0);
        int started = 0, refused = 0;
        for (int attempt = 0; attempt < 1000; attempt++) {
            pid_t pid = fork();
            if (pid == 0) {
                pause();
                _exit(0);
            }
            if (pid < 0) {
                refused = errno == EAGAIN;
                break;
            }
            started++;
        }
        signal(SIGTERM, SIG_IGN);
        kill(0, SIGTERM);
        int reaped = 0;
        while (wait(NULL) > 0) {
            reaped++;
        }
        _exit(refused && started > 0 && started < 1000 && reaped == started ? 0 : 11);
    }
    int status = wait_status(bomber);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork_bomb_meets_rlimit_nproc", "status %#x", status);
}

static void check_many_children(void) {
    int reaped = 0;
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            _exit(round);
        }
        int status = wait_status(pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == round) {
            reaped++;
        }
    }
    check(reaped == 20, "twenty_children", "%d reaped", reaped);
}

int main(int count, char **arguments) {
    if (count > 1) {
        return run_role(count, arguments);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    check_fork_and_exit_status();
    check_copy_on_write();
    check_pipe_between_processes();
    check_execve();
    check_script();
    check_close_on_exec();
    check_vfork_and_spawn();
    check_signals_and_kill();
    check_identity();
    check_dumpable();
    check_parent_death_signal();
    check_fork_with_threads();
    check_shared_semaphore();
    check_many_children();
    check_fork_bomb();
    printf("%d checks failed\n", failures);
    return failures;
}
