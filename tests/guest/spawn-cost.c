/* A benchmark, not a test: the time to start and reap a process three
 * ways, printed as "NAME: T ns" lines (T per process): fork + _exit +
 * waitpid, vfork + execve of this program (which exits at once) +
 * waitpid, and posix_spawn of it + waitpid. The argument is the number
 * of rounds; "exit" as the argument makes the program end at once. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return time.tv_sec * 1000000000LL + time.tv_nsec;
}

static int reap(pid_t pid) {
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exit") == 0) {
        return 0;
    }
    int rounds = argc > 1 ? atoi(argv[1]) : 200;
    /* The program runs itself: by the path it was started with. */
    const char *self = strchr(argv[0], '/') != NULL ? argv[0] : "/proc/self/exe";
    char *const arguments[] = {argv[0], "exit", NULL};

    long long start = now_ns();
    for (int round = 0; round < rounds; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            _exit(0);
        }
        if (!reap(pid)) {
            fprintf(stderr, "fork failed\n");
            return 1;
        }
    }
    printf("fork+exit+wait: %lld ns\n", (now_ns() - start) / rounds);

    start = now_ns();
    for (int round = 0; round < rounds; round++) {
        pid_t pid = vfork();
        if (pid == 0) {
            execve(self, arguments, environ);
            _exit(127);
        }
        if (!reap(pid)) {
            fprintf(stderr, "vfork+exec of %s failed\n", self);
            return 1;
        }
    }
    printf("vfork+exec+wait: %lld ns\n", (now_ns() - start) / rounds);

    start = now_ns();
    for (int round = 0; round < rounds; round++) {
        pid_t pid = -1;
        if (posix_spawn(&pid, self, NULL, NULL, arguments, environ) != 0 || !reap(pid)) {
            fprintf(stderr, "posix_spawn of %s failed\n", self);
            return 1;
        }
    }
    printf("posix_spawn+wait: %lld ns\n", (now_ns() - start) / rounds);
    return 0;
}
