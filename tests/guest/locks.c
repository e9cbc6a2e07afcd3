/* Checks advisory locks and the status flags of open files: fcntl's POSIX
 * record locks (owned by the process, released when it closes any
 * descriptor of the file) and open file description locks (owned by the
 * description), their conflicts, what F_GETLK and F_OFD_GETLK report,
 * Linux's validation of struct flock, a waiting lock woken by a release and
 * cut short by a signal; flock between descriptions and its release when
 * the last duplicate closes; and what F_GETFL reports after open and
 * F_SETFL; across processes, the conflicting lock F_GETLK reports (the one
 * that starts first) and EDEADLK for a wait that would close a cycle.
 * Prints one line per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* glibc defines O_LARGEFILE as 0 on 64-bit targets; the kernel reports its
 * own value. */
#define KERNEL_O_LARGEFILE 0100000

static char path[256];

static struct flock range(short type, short whence, off_t start, off_t length) {
    struct flock lock;
    memset(&lock, 0, sizeof lock);
    lock.l_type = type;
    lock.l_whence = whence;
    lock.l_start = start;
    lock.l_len = length;
    return lock;
}

static int set(int fd, int command, short type, off_t start, off_t length) {
    struct flock lock = range(type, SEEK_SET, start, length);
    return fcntl(fd, command, &lock);
}

static void sleep_ms(long milliseconds) {
    struct timespec time = {milliseconds / 1000, (milliseconds % 1000) * 1000000};
    nanosleep(&time, NULL);
}

static void check_record_locks(void) {
    int first = open(path, O_RDWR);
    int second = open(path, O_RDWR);
    check(first >= 0 && second >= 0, "record locks: two opens of one file", "open failed");

    check(set(first, F_SETLK, F_WRLCK, 10, 10) == 0, "F_SETLK takes a write lock", "failed");
    /* The same process's POSIX locks never conflict, whatever descriptor. */
    check(set(second, F_SETLK, F_WRLCK, 15, 1) == 0, "the process's own POSIX locks do not conflict", "failed");
    errno = 0;
    check(set(second, F_OFD_SETLK, F_RDLCK, 12, 1) == -1 && errno == EAGAIN,
          "an OFD lock conflicts with the process's POSIX lock", "no EAGAIN");
    struct flock probe = range(F_RDLCK, SEEK_SET, 0, 0);
    check(fcntl(second, F_OFD_GETLK, &probe) == 0 && probe.l_type == F_WRLCK && probe.l_start == 10 &&
              probe.l_len == 10 && probe.l_pid == getpid() && probe.l_whence == SEEK_SET,
          "F_OFD_GETLK reports the POSIX lock and its process", "type %d start %ld len %ld pid %d",
          probe.l_type, (long)probe.l_start, (long)probe.l_len, probe.l_pid);
    probe = range(F_RDLCK, SEEK_SET, 20, 5);
    check(fcntl(second, F_OFD_GETLK, &probe) == 0 && probe.l_type == F_UNLCK && probe.l_start == 20,
          "F_OFD_GETLK past the lock reports F_UNLCK", "type %d", probe.l_type);

    /* Unlocking the middle splits the lock. */
    check(set(first, F_SETLK, F_UNLCK, 12, 2) == 0, "F_UNLCK over part of a lock", "failed");
    check(set(second, F_OFD_SETLK, F_WRLCK, 12, 2) == 0, "the unlocked part can be taken", "failed");
    errno = 0;
    check(set(second, F_OFD_SETLK, F_WRLCK, 11, 1) == -1 && errno == EAGAIN, "the rest stays locked",
          "no EAGAIN");
    probe = range(F_WRLCK, SEEK_SET, 0, 0);
    check(fcntl(first, F_GETLK, &probe) == 0 && probe.l_type == F_WRLCK && probe.l_start == 12 &&
              probe.l_len == 2 && probe.l_pid == -1,
          "F_GETLK reports an OFD lock with pid -1", "type %d start %ld len %ld pid %d", probe.l_type,
          (long)probe.l_start, (long)probe.l_len, probe.l_pid);

    /* Closing any descriptor of the file ends the process's POSIX locks. */
    int third = open(path, O_RDONLY);
    close(third);
    check(set(second, F_OFD_SETLK, F_WRLCK, 0, 12) == 0, "closing a descriptor releases POSIX locks",
          "still locked");
    check(set(second, F_OFD_SETLK, F_UNLCK, 0, 0) == 0, "F_OFD_SETLK unlocks everything", "failed");
    check(set(first, F_SETLK, F_WRLCK, 0, 0) == 0, "then the whole file can be locked", "failed");
    check(set(first, F_SETLK, F_UNLCK, 0, 0) == 0, "and unlocked", "failed");

    /* A negative length locks the bytes before the start. */
    struct flock backwards = range(F_WRLCK, SEEK_SET, 100, -10);
    check(fcntl(first, F_OFD_SETLK, &backwards) == 0, "a negative length", "failed");
    probe = range(F_WRLCK, SEEK_SET, 0, 0);
    check(fcntl(second, F_OFD_GETLK, &probe) == 0 && probe.l_start == 90 && probe.l_len == 10,
          "covers the bytes before the start", "start %ld len %ld", (long)probe.l_start, (long)probe.l_len);
    /* SEEK_CUR counts from the file offset. */
    lseek(second, 200, SEEK_SET);
    struct flock current = range(F_WRLCK, SEEK_CUR, 5, 1);
    check(fcntl(second, F_OFD_SETLK, &current) == 0, "SEEK_CUR", "failed");
    probe = range(F_WRLCK, SEEK_SET, 150, 0);
    check(fcntl(first, F_OFD_GETLK, &probe) == 0 && probe.l_start == 205 && probe.l_len == 1,
          "starts at the file offset", "start %ld", (long)probe.l_start);

    /* Linux's validation. */
    struct flock bad = range(F_WRLCK, 7, 0, 1);
    errno = 0;
    check(fcntl(first, F_SETLK, &bad) == -1 && errno == EINVAL, "an unknown l_whence is EINVAL", "no EINVAL");
    bad = range(9, SEEK_SET, 0, 1);
    errno = 0;
    check(fcntl(first, F_SETLK, &bad) == -1 && errno == EINVAL, "an unknown l_type is EINVAL", "no EINVAL");
    bad = range(F_UNLCK, SEEK_SET, 0, 1);
    errno = 0;
    check(fcntl(first, F_GETLK, &bad) == -1 && errno == EINVAL, "F_GETLK of F_UNLCK is EINVAL", "no EINVAL");
    bad = range(F_WRLCK, SEEK_SET, -1, 1);
    errno = 0;
    check(fcntl(first, F_SETLK, &bad) == -1 && errno == EINVAL, "a negative start is EINVAL", "no EINVAL");
    bad = range(F_WRLCK, SEEK_SET, 0, 1);
    bad.l_pid = 1;
    errno = 0;
    check(fcntl(first, F_OFD_SETLK, &bad) == -1 && errno == EINVAL, "F_OFD_SETLK with a pid is EINVAL",
          "no EINVAL");
    int reading = open(path, O_RDONLY);
    errno = 0;
    check(set(reading, F_SETLK, F_WRLCK, 0, 1) == -1 && errno == EBADF,
          "a write lock on a read-only descriptor is EBADF", "no EBADF");
    errno = 0;
    check(fcntl(first, F_SETLK, (struct flock *)8) == -1 && errno == EFAULT, "a bad address is EFAULT",
          "no EFAULT");
    close(reading);
    close(first);
    close(second);
}

static int waiting_fd;
static volatile int waited;

static void *take_waiting(void *unused) {
    (void)unused;
    waited = set(waiting_fd, F_OFD_SETLKW, F_WRLCK, 0, 1) == 0 ? 1 : -1;
    return NULL;
}

static void on_signal(int number) { (void)number; }

static void *interrupt_later(void *target) {
    sleep_ms(200);
    pthread_kill(*(pthread_t *)target, SIGUSR1);
    return NULL;
}

static void check_waiting(void) {
    int holder = open(path, O_RDWR);
    waiting_fd = open(path, O_RDWR);
    check(set(holder, F_OFD_SETLK, F_WRLCK, 0, 1) == 0, "waiting: the lock is held", "failed");
    pthread_t thread;
    pthread_create(&thread, NULL, take_waiting, NULL);
    sleep_ms(200);
    check(waited == 0, "F_OFD_SETLKW waits while the lock is held", "returned %d", waited);
    close(holder);
    pthread_join(thread, NULL);
    check(waited == 1, "and takes it when the holder closes", "returned %d", waited);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGUSR1, &action, NULL);
    int other = open(path, O_RDWR);
    pthread_t self = pthread_self(), interrupter;
    pthread_create(&interrupter, NULL, interrupt_later, &self);
    errno = 0;
    int result = set(other, F_OFD_SETLKW, F_WRLCK, 0, 1);
    check(result == -1 && errno == EINTR, "a signal ends the wait with EINTR", "result %d", result);
    pthread_join(interrupter, NULL);
    close(other);
    close(waiting_fd);
}

static void check_flock(void) {
    int first = open(path, O_RDWR);
    int second = open(path, O_RDONLY);
    check(flock(first, LOCK_EX) == 0, "flock: LOCK_EX", "failed");
    errno = 0;
    check(flock(second, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK,
          "flock: another description is refused", "no EWOULDBLOCK");
    int duplicate = dup(first);
    check(flock(duplicate, LOCK_EX | LOCK_NB) == 0, "flock: a duplicate shares the lock", "failed");
    close(first);
    errno = 0;
    check(flock(second, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK,
          "flock: the lock lasts while a duplicate is open", "no EWOULDBLOCK");
    close(duplicate);
    check(flock(second, LOCK_EX | LOCK_NB) == 0, "flock: closing the last duplicate releases it", "failed");
    check(set(second, F_SETLK, F_RDLCK, 0, 0) == 0, "flock and record locks are separate", "failed");
    errno = 0;
    check(flock(second, LOCK_SH | LOCK_EX) == -1 && errno == EINVAL, "flock: LOCK_SH|LOCK_EX is EINVAL",
          "no EINVAL");
    errno = 0;
    check(flock(second, LOCK_NB) == -1 && errno == EINVAL, "flock: LOCK_NB alone is EINVAL", "no EINVAL");
    errno = 0;
    check(flock(-1, LOCK_SH) == -1 && errno == EBADF, "flock: a bad descriptor is EBADF", "no EBADF");
    check(flock(second, LOCK_UN) == 0, "flock: LOCK_UN", "failed");
    close(second);
}

static void check_status_flags(void) {
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    int expected = O_RDWR | O_APPEND | KERNEL_O_LARGEFILE | O_NOFOLLOW;
    check(fcntl(fd, F_GETFL) == expected, "F_GETFL after open", "%#x, not %#x", fcntl(fd, F_GETFL), expected);
    check(fcntl(fd, F_SETFL, O_NONBLOCK | O_NOATIME | O_ASYNC | O_SYNC | O_RDONLY) == 0, "F_SETFL", "failed");
    expected = O_RDWR | O_NONBLOCK | O_NOATIME | KERNEL_O_LARGEFILE | O_NOFOLLOW;
    check(fcntl(fd, F_GETFL) == expected, "F_SETFL changes only what it may (O_ASYNC needs a fasync file)",
          "%#x, not %#x", fcntl(fd, F_GETFL), expected);
    close(fd);
    char directory[256];
    snprintf(directory, sizeof directory, "%s", path);
    *strrchr(directory, '/') = 0;
    fd = open(directory, O_RDONLY | O_DIRECTORY);
    expected = O_RDONLY | O_DIRECTORY | KERNEL_O_LARGEFILE;
    check(fcntl(fd, F_GETFL) == expected, "F_GETFL of a directory", "%#x, not %#x", fcntl(fd, F_GETFL), expected);
    close(fd);
    fd = open(directory, O_PATH);
    check(fcntl(fd, F_GETFL) == O_PATH, "F_GETFL of an O_PATH descriptor", "%#x", fcntl(fd, F_GETFL));
    close(fd);
    int ends[2];
    check(pipe2(ends, O_NONBLOCK) == 0 && fcntl(ends[0], F_GETFL) == (O_RDONLY | O_NONBLOCK) &&
              fcntl(ends[1], F_GETFL) == (O_WRONLY | O_NONBLOCK),
          "F_GETFL of a pipe", "%#x %#x", fcntl(ends[0], F_GETFL), fcntl(ends[1], F_GETFL));
    check(fcntl(ends[0], F_SETFL, O_ASYNC) == 0 && fcntl(ends[0], F_GETFL) == (O_RDONLY | O_ASYNC),
          "a pipe keeps O_ASYNC", "%#x", fcntl(ends[0], F_GETFL));
    close(ends[0]);
    close(ends[1]);
    fd = open(directory, O_PATH);
    errno = 0;
    check(fcntl(fd, F_SETFL, O_NONBLOCK) == -1 && errno == EBADF, "F_SETFL of an O_PATH descriptor is EBADF",
          "no EBADF");
    close(fd);

    /* O_NOATIME is for the file's owner. */
    check(chmod(directory, 0755) == 0 && setresuid(-1, 1000, -1) == 0, "become uid 1000", "failed");
    errno = 0;
    check(open(path, O_RDONLY | O_NOATIME) == -1 && errno == EPERM, "others' O_NOATIME opens are EPERM",
          "no EPERM");
    fd = open(path, O_RDONLY);
    errno = 0;
    check(fd >= 0 && fcntl(fd, F_SETFL, O_NOATIME) == -1 && errno == EPERM, "and so is adding it with F_SETFL",
          "no EPERM");
    close(fd);
    check(setresuid(-1, 0, -1) == 0, "back to root", "setresuid failed");
}

/* Another process asks F_GETLK for the whole file over two locks of ours;
 * then the two processes each hold one byte and wait for the other's:
 * one of them gets EDEADLK instead of waiting for ever. */
static void check_between_processes(void) {
    int fd = open(path, O_RDWR);
    set(fd, F_SETLK, F_WRLCK, 3, 2);
    set(fd, F_SETLK, F_RDLCK, 1, 1);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct flock probe = range(F_WRLCK, SEEK_SET, 0, 0);
        int ok = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type == F_RDLCK && probe.l_start == 1 &&
                 probe.l_len == 1 && probe.l_pid == getppid();
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "F_GETLK reports the conflicting lock that starts first",
          "status %#x", status);
    set(fd, F_SETLK, F_UNLCK, 0, 0);

    set(fd, F_SETLK, F_WRLCK, 0, 1);
    int ready[2];
    if (pipe(ready) != 0)
        return;
    child = fork();
    if (child == 0) {
        int own = open(path, O_RDWR);
        int taken = set(own, F_SETLK, F_WRLCK, 1, 1);
        char byte = 'r';
        if (write(ready[1], &byte, 1) != 1 || taken != 0)
            _exit(3);
        int waited_for = set(own, F_SETLKW, F_WRLCK, 0, 1);
        _exit(waited_for == 0 ? 0 : errno == EDEADLK ? 2 : 4);
    }
    char byte;
    check(read(ready[0], &byte, 1) == 1, "the other process holds its byte", "read failed");
    close(ready[0]);
    close(ready[1]);
    sleep_ms(300);
    /* Should the kernel miss the cycle, an alarm ends the wait. */
    struct sigaction alarm_action = {0};
    alarm_action.sa_handler = on_signal;
    sigemptyset(&alarm_action.sa_mask);
    struct sigaction old_action;
    sigaction(SIGALRM, &alarm_action, &old_action);
    alarm(10);
    int result = set(fd, F_SETLKW, F_WRLCK, 1, 1);
    int parent_errno = errno;
    alarm(0);
    sigaction(SIGALRM, &old_action, NULL);
    /* Whoever got EDEADLK gives way: the other's wait then ends. */
    set(fd, F_SETLK, F_UNLCK, 0, 0);
    waitpid(child, &status, 0);
    int parent_deadlocked = result == -1 && parent_errno == EDEADLK;
    int child_deadlocked = WIFEXITED(status) && WEXITSTATUS(status) == 2;
    check(parent_deadlocked != child_deadlocked && WIFEXITED(status) && (WEXITSTATUS(status) == 0 || child_deadlocked),
          "a wait that would close a cycle fails with EDEADLK", "parent %d (errno %d), child status %#x", result,
          parent_errno, status);
    close(fd);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    char directory[200];
    snprintf(directory, sizeof directory, "%s/locks-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(directory) == NULL) {
        printf("FAIL mkdtemp (errno %d)\n1 checks failed\n", errno);
        return 1;
    }
    snprintf(path, sizeof path, "%s/file", directory);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    check(fd >= 0 && write(fd, "locks", 5) == 5, "the test file", "create failed");
    close(fd);
    check_record_locks();
    check_waiting();
    check_flock();
    check_status_flags();
    check_between_processes();
    unlink(path);
    check(rmdir(directory) == 0, "the test directory is left empty", "rmdir failed");
    printf("\n%d checks failed\n", failures);
    return failures;
}
