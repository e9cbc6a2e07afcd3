/* Checks job control: stop signals stop every thread of a process and
 * SIGCONT resumes it (and is delivered), wait4/waitid report stops and
 * continues, SIGCHLD carries CLD_STOPPED/CLD_CONTINUED unless
 * SA_NOCLDSTOP, a stopped group that becomes orphaned gets SIGHUP and
 * SIGCONT, the terminal's stop signals do not stop an orphaned group, and
 * a new session has no controlling terminal until it opens one; a stop
 * completes while threads sleep in a futex, poll, a pipe read and
 * nanosleep, and a call that completes while stopped returns only after
 * SIGCONT.
 * Run with no argument: one line per check, then "<n> checks failed",
 * exit status the count. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* From <linux/futex.h>, which musl's toolchain may lack. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1

/* Counters the children advance, in memory they share with the parent. */
static volatile uint64_t *counters;

static void sleep_ms(int milliseconds) {
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000};
    while (nanosleep(&pause, &pause) == -1 && errno == EINTR) {
    }
}

static void *count_forever(void *argument) {
    volatile uint64_t *counter = argument;
    for (;;) {
        (*counter)++;
    }
    return NULL;
}

/* Whether the counters stay still over a while (the process is stopped). */
static int counters_stand_still(void) {
    uint64_t before[2] = {counters[0], counters[1]};
    sleep_ms(100);
    return counters[0] == before[0] && counters[1] == before[1];
}

/* Whether both counters move again within a minute. */
static int counters_move(void) {
    uint64_t before[2] = {counters[0], counters[1]};
    for (int tries = 0; tries < 1200; tries++) {
        sleep_ms(50);
        if (counters[0] != before[0] && counters[1] != before[1]) {
            return 1;
        }
    }
    return 0;
}

static volatile sig_atomic_t continues_seen;

static void on_continue(int signal) {
    (void)signal;
    continues_seen++;
    counters[2] = continues_seen;
}

/* A child of its own group (so the terminal's stop signals may stop it)
 * with two threads counting and a SIGCONT handler. */
static pid_t start_counting_child(void) {
    counters[0] = counters[1] = counters[2] = 0;
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGCONT, on_continue);
        pthread_t thread;
        pthread_create(&thread, NULL, count_forever, (void *)&counters[1]);
        count_forever((void *)&counters[0]);
    }
    setpgid(pid, pid);
    /* Up to 60 s: forking and starting a thread under emulation on a busy
     * host can take seconds. */
    for (int tries = 0; tries < 6000 && (counters[0] == 0 || counters[1] == 0); tries++) {
        sleep_ms(10);
    }
    return pid;
}

static void check_stop_and_continue(void) {
    pid_t pid = start_counting_child();
    check(counters[0] != 0 && counters[1] != 0, "child_threads_count", "counters %lu %lu",
          (unsigned long)counters[0], (unsigned long)counters[1]);
    check(kill(pid, SIGSTOP) == 0, "kill_sigstop", "kill failed");
    int status = 0;
    pid_t waited = waitpid(pid, &status, WUNTRACED);
    check(waited == pid && WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "wait_reports_stop",
          "waitpid gave %d, status %#x", (int)waited, status);
    check(counters_stand_still(), "stopped_threads_stand_still", "a counter moved");
    check(waitpid(pid, &status, WUNTRACED | WNOHANG) == 0, "stop_reported_once", "a second report");
    check(kill(pid, SIGCONT) == 0, "kill_sigcont", "kill failed");
    waited = waitpid(pid, &status, WCONTINUED);
    check(waited == pid && WIFCONTINUED(status), "wait_reports_continue", "waitpid gave %d, status %#x",
          (int)waited, status);
    check(counters_move(), "continued_threads_run", "a counter stood still");
    for (int tries = 0; tries < 6000 && counters[2] == 0; tries++) {
        sleep_ms(10);
    }
    check(counters[2] == 1, "sigcont_handler_runs", "handler ran %lu times", (unsigned long)counters[2]);

    /* The terminal's stop signal, at its default action, stops it too. */
    kill(pid, SIGTSTP);
    waited = waitpid(pid, &status, WUNTRACED);
    check(waited == pid && WIFSTOPPED(status) && WSTOPSIG(status) == SIGTSTP, "sigtstp_stops",
          "status %#x", status);
    /* SIGKILL ends a stopped process. */
    kill(pid, SIGKILL);
    waited = waitpid(pid, &status, 0);
    check(waited == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "sigkill_ends_stopped",
          "status %#x", status);
}

/* Waits up to 20 s for `pid` to report a stop or an end. */
static int wait_untraced(pid_t pid, int *status) {
    for (int round = 0; round < 2000; round++) {
        pid_t got = waitpid(pid, status, WUNTRACED | WNOHANG);
        if (got != 0) {
            return got;
        }
        sleep_ms(10);
    }
    return 0;
}

/* A stop that comes while the process starts threads completes, and stops
 * the threads started around it too. */
static void check_stop_while_threads_start(void) {
    enum { FIRST = 8, THREADS = 8 };
    for (int index = 0; index < THREADS; index++) {
        counters[FIRST + index] = 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        for (int index = 0; index < THREADS; index++) {
            pthread_t thread;
            pthread_create(&thread, NULL, count_forever, (void *)&counters[FIRST + index]);
        }
        for (;;) {
            pause();
        }
    }
    for (int tries = 0; tries < 6000 && counters[FIRST] == 0; tries++) {
        sleep_ms(1);
    }
    kill(pid, SIGSTOP);
    int status = 0;
    int got = wait_untraced(pid, &status);
    check(got == pid && WIFSTOPPED(status), "stop_while_threads_start", "waitpid gave %d, status %#x", got,
          status);
    uint64_t before = 0, after = 0;
    for (int index = 0; index < THREADS; index++) {
        before += counters[FIRST + index];
    }
    sleep_ms(100);
    for (int index = 0; index < THREADS; index++) {
        after += counters[FIRST + index];
    }
    check(got == pid && before == after, "threads_started_around_a_stop_stand_still", "counters moved");
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

static void check_waitid_and_sigchld(void) {
    sigset_t child_set;
    sigemptyset(&child_set);
    sigaddset(&child_set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child_set, NULL);
    pid_t pid = start_counting_child();
    struct timespec timeout = {60, 0};
    siginfo_t info;
    kill(pid, SIGSTOP);
    memset(&info, 0, sizeof info);
    int taken = sigtimedwait(&child_set, &info, &timeout);
    check(taken == SIGCHLD && info.si_code == CLD_STOPPED && info.si_pid == pid && info.si_status == SIGSTOP,
          "sigchld_cld_stopped", "signal %d, code %d, status %d", taken, info.si_code, info.si_status);
    memset(&info, 0, sizeof info);
    int result = waitid(P_PID, (id_t)pid, &info, WSTOPPED | WNOWAIT);
    check(result == 0 && info.si_code == CLD_STOPPED && info.si_status == SIGSTOP, "waitid_wstopped_nowait",
          "code %d, status %d", info.si_code, info.si_status);
    memset(&info, 0, sizeof info);
    result = waitid(P_PID, (id_t)pid, &info, WSTOPPED);
    check(result == 0 && info.si_code == CLD_STOPPED && info.si_pid == pid, "waitid_wstopped",
          "code %d", info.si_code);
    memset(&info, 0, sizeof info);
    result = waitid(P_PID, (id_t)pid, &info, WSTOPPED | WNOHANG);
    check(result == 0 && info.si_pid == 0, "waitid_stop_taken", "pid %d", (int)info.si_pid);
    kill(pid, SIGCONT);
    memset(&info, 0, sizeof info);
    taken = sigtimedwait(&child_set, &info, &timeout);
    check(taken == SIGCHLD && info.si_code == CLD_CONTINUED && info.si_status == SIGCONT,
          "sigchld_cld_continued", "signal %d, code %d, status %d", taken, info.si_code, info.si_status);
    memset(&info, 0, sizeof info);
    result = waitid(P_PID, (id_t)pid, &info, WCONTINUED);
    check(result == 0 && info.si_code == CLD_CONTINUED, "waitid_wcontinued", "code %d", info.si_code);

    /* SA_NOCLDSTOP: no SIGCHLD for a stop, but wait still reports it. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    action.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, NULL);
    kill(pid, SIGSTOP);
    int status = 0;
    pid_t waited = waitpid(pid, &status, WUNTRACED);
    struct timespec short_timeout = {0, 100 * 1000000};
    taken = sigtimedwait(&child_set, &info, &short_timeout);
    check(waited == pid && WIFSTOPPED(status) && taken == -1, "sa_nocldstop", "waited %d, signal %d",
          (int)waited, taken);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    action.sa_flags = 0;
    sigaction(SIGCHLD, &action, NULL);
    /* The SIGKILL's own SIGCHLD. */
    sigtimedwait(&child_set, &info, &short_timeout);
    sigprocmask(SIG_UNBLOCK, &child_set, NULL);
}

/* A SIGTSTP sent to a process whose group is orphaned (no parent in
 * another group of its session) is dropped: nobody could continue it. */
static void check_orphaned_group_ignores_sigtstp(void) {
    int report[2];
    pipe(report);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        kill(getpid(), SIGTSTP);
        write(report[1], "r", 1);
        _exit(0);
    }
    close(report[1]);
    char byte = 0;
    ssize_t length = read(report[0], &byte, 1);
    int status = 0;
    waitpid(pid, &status, 0);
    close(report[0]);
    check(length == 1 && WIFEXITED(status), "orphaned_group_ignores_sigtstp", "read %zd, status %#x",
          length, status);
}

static int hang_up_pipe = -1;

static void on_hang_up(int signal) {
    (void)signal;
    write(hang_up_pipe, "h", 1);
}

/* A stopped group that loses its last parent outside it (in its session)
 * is sent SIGHUP and SIGCONT. */
static void check_orphaned_stopped_group_is_hung_up(void) {
    int report[2];
    pipe(report);
    pid_t middle = fork();
    if (middle == 0) {
        /* A session of its own, so that its child's group is orphaned once
         * it is gone whoever adopts that child. */
        setsid();
        pid_t stopped = fork();
        if (stopped == 0) {
            setpgid(0, 0);
            hang_up_pipe = report[1];
            signal(SIGHUP, on_hang_up);
            raise(SIGSTOP);
            write(report[1], "c", 1);
            _exit(0);
        }
        int status = 0;
        waitpid(stopped, &status, WUNTRACED);
        _exit(WIFSTOPPED(status) ? 0 : 1);
    }
    close(report[1]);
    int status = 0;
    waitpid(middle, &status, 0);
    char bytes[2] = {0, 0};
    ssize_t length = read(report[0], bytes, 1);
    if (length == 1) {
        length += read(report[0], bytes + 1, 1);
    }
    close(report[0]);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && length == 2 && bytes[0] == 'h' && bytes[1] == 'c',
          "orphaned_stopped_group_hung_up", "status %#x, read %zd '%c%c'", status, length, bytes[0], bytes[1]);
}

/* A new session has no controlling terminal (/dev/tty fails with ENXIO)
 * until its leader opens a terminal without O_NOCTTY. */
static void check_controlling_terminal(void) {
    int before = open("/dev/tty", O_RDWR);
    check(before >= 0, "dev_tty_opens", "open failed");
    close(before);
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        int result = 0;
        if (open("/dev/tty", O_RDWR) != -1 || errno != ENXIO) {
            result |= 1;
        }
        int console = open("/dev/console", O_RDWR | O_NOCTTY);
        if (console < 0 || open("/dev/tty", O_RDWR) != -1) {
            result |= 2;
        }
        close(console);
        console = open("/dev/console", O_RDWR);
        if (console < 0 || open("/dev/tty", O_RDWR) < 0) {
            result |= 4;
        }
        _exit(result);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "new_session_acquires_terminal", "status %#x",
          status);
}

/* What the sleeping threads of check_stop_with_sleeping_threads share
 * with the parent: a futex word, and each thread's result (0 until its
 * call returned to it). */
struct sleepers {
    uint32_t futex_word;
    int poll_pipe[2];
    int read_pipe[2];
    volatile int results[4];
};

static struct sleepers *sleepers;

static void *sleep_in_futex(void *argument) {
    (void)argument;
    while (__atomic_load_n(&sleepers->futex_word, __ATOMIC_ACQUIRE) == 0) {
        syscall(SYS_futex, &sleepers->futex_word, FUTEX_WAIT, 0, NULL, NULL, 0);
    }
    sleepers->results[0] = 1;
    return NULL;
}

static void *sleep_in_poll(void *argument) {
    (void)argument;
    struct pollfd wanted = {sleepers->poll_pipe[0], POLLIN, 0};
    int ready = poll(&wanted, 1, -1);
    sleepers->results[1] = ready == 1 && (wanted.revents & POLLIN) ? 1 : 2;
    return NULL;
}

static void *sleep_in_read(void *argument) {
    (void)argument;
    char byte = 0;
    ssize_t got = read(sleepers->read_pipe[0], &byte, 1);
    sleepers->results[2] = got == 1 && byte == 'r' ? 1 : 2;
    return NULL;
}

static void *sleep_in_nanosleep(void *argument) {
    (void)argument;
    struct timespec start, end, length = {2, 0};
    clock_gettime(CLOCK_MONOTONIC, &start);
    int slept = nanosleep(&length, NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    /* Stopped and continued, a nanosleep goes on and sleeps its length. */
    int is_whole = end.tv_sec - start.tv_sec > 2 || (end.tv_sec - start.tv_sec == 2 && end.tv_nsec >= start.tv_nsec);
    sleepers->results[3] = slept == 0 && is_whole ? 1 : 2;
    return NULL;
}

static int results_so_far(void) {
    int count = 0;
    for (int index = 0; index < 4; index++) {
        count += sleepers->results[index] != 0;
    }
    return count;
}

static void check_stop_with_sleeping_threads(void) {
    sleepers = mmap(NULL, sizeof *sleepers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sleepers == MAP_FAILED || pipe(sleepers->poll_pipe) != 0 || pipe(sleepers->read_pipe) != 0) {
        check(0, "sleepers_set_up", "mmap or pipe failed");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        void *(*bodies[4])(void *) = {sleep_in_futex, sleep_in_poll, sleep_in_read, sleep_in_nanosleep};
        pthread_t threads[4];
        for (int index = 0; index < 4; index++) {
            pthread_create(&threads[index], NULL, bodies[index], NULL);
        }
        /* The main thread sleeps in a futex too, joining. */
        for (int index = 0; index < 4; index++) {
            pthread_join(threads[index], NULL);
        }
        int all_right = 1;
        for (int index = 0; index < 4; index++) {
            all_right &= sleepers->results[index] == 1;
        }
        _exit(all_right ? 0 : 1);
    }
    sleep_ms(300);
    kill(pid, SIGSTOP);
    int status = 0;
    int got = wait_untraced(pid, &status);
    check(got == pid && WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "stop_completes_with_sleepers",
          "waitpid gave %d, status %#x", got, status);
    /* Each call can complete now, but none returns to its thread before
     * the process is continued. */
    __atomic_store_n(&sleepers->futex_word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &sleepers->futex_word, FUTEX_WAKE, 10, NULL, NULL, 0);
    ssize_t written = write(sleepers->poll_pipe[1], "p", 1) + write(sleepers->read_pipe[1], "r", 1);
    sleep_ms(500);
    int early = results_so_far();
    check(written == 2 && early == 0, "stopped_threads_do_not_return", "%d calls returned while stopped",
          early);
    kill(pid, SIGCONT);
    status = 0;
    got = waitpid(pid, &status, 0);
    check(got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "sleepers_finish_after_sigcont",
          "status %#x; results %d %d %d %d", status, sleepers->results[0], sleepers->results[1],
          sleepers->results[2], sleepers->results[3]);
    munmap(sleepers, sizeof *sleepers);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counters == MAP_FAILED) {
        printf("FAIL mmap\n1 checks failed\n");
        return 1;
    }
    check_stop_and_continue();
    check_stop_with_sleeping_threads();
    check_stop_while_threads_start();
    check_waitid_and_sigchld();
    check_orphaned_group_ignores_sigtstp();
    check_orphaned_stopped_group_is_hung_up();
    check_controlling_terminal();
    /* Reap whatever was adopted. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    printf("%d checks failed\n", failures);
    return failures;
}
