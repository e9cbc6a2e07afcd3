/* Checks the errors of the memory calls and of waitpid in the cases the
 * Linux Test Project's mprotect, madvise, msync, mmap and waitpid tests
 * make: unmapped, unaligned and locked ranges, unknown advice and flags,
 * files opened without the access a mapping needs, and waits for children
 * that do not exist. One line per check; exits with the number of failed
 * checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#define PAGE 4096L

/* Checks that `result` is -1 with `expected` in errno. */
static void fails_with(long result, int expected, const char *name) {
    int got = errno;
    errno = got;
    check(result == -1 && got == expected, name, "returned %ld, errno %d (%s), wanted %d (%s)", result, got,
          strerror(got), expected, strerror(expected));
}

static void succeeds(long result, const char *name) { check(result == 0, name, "returned %ld", result); }

static long mapped(void *address) { return address == MAP_FAILED ? -1 : 0; }

static char path[] = "/tmp/memory-errors-XXXXXX";

static void check_mprotect(void) {
    fails_with(mprotect(NULL, 1024, PROT_READ), ENOMEM, "mprotect of unmapped page 0 fails with ENOMEM");
    char *pages = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* Through syscall(): musl's wrapper aligns the address itself. */
    fails_with(syscall(SYS_mprotect, pages + 1, 1024, PROT_READ), EINVAL,
               "mprotect of an unaligned address fails with EINVAL");
    fails_with(mprotect(pages, PAGE, 0x1000), EINVAL, "mprotect with unknown protection bits fails with EINVAL");
    munmap(pages + PAGE, PAGE);
    fails_with(mprotect(pages, 2 * PAGE, PROT_READ | PROT_WRITE), ENOMEM,
               "mprotect past the end of a mapping fails with ENOMEM");
    munmap(pages, PAGE);
    int fd = open(path, O_RDONLY);
    char *shared = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    fails_with(mprotect(shared, PAGE, PROT_WRITE), EACCES,
               "mprotect(PROT_WRITE) of a read-only file's shared mapping fails with EACCES");
    char *private = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    succeeds(mprotect(private, PAGE, PROT_READ | PROT_WRITE), "mprotect(PROT_WRITE) of a private mapping works");
    munmap(shared, PAGE);
    munmap(private, PAGE);
    close(fd);
}

static void check_madvise(void) {
    int fd = open(path, O_RDWR);
    char *file = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    fails_with(madvise(file + 100, 2 * PAGE, MADV_NORMAL), EINVAL, "madvise of an unaligned address fails");
    fails_with(madvise(file, 2 * PAGE, 1212), EINVAL, "madvise with an unknown advice fails with EINVAL");
    fails_with(madvise(file, 2 * PAGE, 5), EINVAL, "madvise with an unused advice number fails with EINVAL");
    check(mlock(file, 2 * PAGE) == 0, "mlock of a file mapping works", "errno %d", errno);
    fails_with(madvise(file, 2 * PAGE, MADV_DONTNEED), EINVAL, "MADV_DONTNEED on locked pages fails with EINVAL");
    check(munlock(file, 2 * PAGE) == 0, "munlock works", "errno %d", errno);
    succeeds(madvise(file, 2 * PAGE, MADV_DONTNEED), "MADV_DONTNEED on unlocked shared pages works");
    fails_with(madvise(file, 2 * PAGE, MADV_FREE), EINVAL, "MADV_FREE on a file mapping fails with EINVAL");
    munmap(file + PAGE, PAGE);
    fails_with(madvise(file, 2 * PAGE, MADV_NORMAL), ENOMEM, "madvise over an unmapped page fails with ENOMEM");
    munmap(file, PAGE);
    close(fd);
    char *anonymous = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fails_with(madvise(anonymous, 4 * PAGE, MADV_REMOVE), EINVAL, "MADV_REMOVE on private memory fails");
    anonymous[0] = 1;
    mlock(anonymous, PAGE);
    fails_with(madvise(anonymous, PAGE, MADV_FREE), EINVAL, "MADV_FREE on locked pages fails with EINVAL");
    munlock(anonymous, PAGE);
    succeeds(madvise(anonymous, PAGE, MADV_DONTNEED), "MADV_DONTNEED once unlocked works");
    check(anonymous[0] == 0, "MADV_DONTNEED drops private pages", "reads %d", anonymous[0]);
    munmap(anonymous, 4 * PAGE);
}

static void check_msync(void) {
    struct rlimit data;
    getrlimit(RLIMIT_DATA, &data);
    fails_with(msync((void *)data.rlim_max, PAGE, MS_ASYNC), EINVAL,
               "msync at RLIMIT_DATA's maximum (unaligned) fails with EINVAL");
    char *pages = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fails_with(msync(pages + 1, PAGE, MS_SYNC), EINVAL, "msync of an unaligned address fails with EINVAL");
    fails_with(msync(pages, PAGE, MS_ASYNC | MS_SYNC), EINVAL, "msync with MS_ASYNC and MS_SYNC fails");
    fails_with(msync(pages, PAGE, 0x100), EINVAL, "msync with unknown flags fails with EINVAL");
    mlock(pages, PAGE);
    fails_with(msync(pages, PAGE, MS_INVALIDATE), EBUSY, "msync(MS_INVALIDATE) of locked pages fails with EBUSY");
    munlock(pages, PAGE);
    succeeds(msync(pages, PAGE, MS_INVALIDATE), "msync(MS_INVALIDATE) of unlocked pages works");
    munmap(pages + PAGE, PAGE);
    fails_with(msync(pages, 3 * PAGE, MS_SYNC), ENOMEM, "msync over an unmapped page fails with ENOMEM");
    fails_with(msync(pages + PAGE, PAGE, MS_SYNC), ENOMEM, "msync of an unmapped page fails with ENOMEM");
    munmap(pages, 3 * PAGE);
}

static void check_mmap(void) {
    int write_only = open(path, O_WRONLY);
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, MAP_SHARED, write_only, 0)), EACCES,
               "mmap of a write-only descriptor fails with EACCES");
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, write_only, 0)), EACCES,
               "a private mmap of a write-only descriptor fails with EACCES");
    int read_only = open(path, O_RDONLY);
    fails_with(mapped(mmap(NULL, PAGE, PROT_WRITE, MAP_SHARED, read_only, 0)), EACCES,
               "a writable shared mmap of a read-only descriptor fails with EACCES");
    fails_with(mapped(mmap(NULL, 0, PROT_READ, MAP_PRIVATE, read_only, 0)), EINVAL,
               "mmap of length 0 fails with EINVAL");
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, 0, read_only, 0)), EINVAL,
               "mmap without MAP_SHARED or MAP_PRIVATE fails with EINVAL");
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, read_only, 100)), EINVAL,
               "mmap at an unaligned offset fails with EINVAL");
    fails_with(mapped(mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, read_only, 0x7ffffffffffff000)), EOVERFLOW,
               "mmap ending past the largest file offset fails with EOVERFLOW");
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 1000, 0)), EBADF,
               "mmap of a closed descriptor fails with EBADF");
    int directory = open("/tmp", O_RDONLY);
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, directory, 0)), ENODEV,
               "mmap of a directory fails with ENODEV");
    int pipe_ends[2];
    pipe(pipe_ends);
    fails_with(mapped(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, pipe_ends[0], 0)), ENODEV,
               "mmap of a pipe fails with ENODEV");
    fails_with(mapped(mmap(NULL, (size_t)-PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)), ENOMEM,
               "mmap larger than the address space fails with ENOMEM");
    close(pipe_ends[0]);
    close(pipe_ends[1]);
    close(directory);
    close(read_only);
    close(write_only);
}

static void check_waitpid(void) {
    fails_with(waitpid(-1, NULL, 0), ECHILD, "waitpid(-1) without children fails with ECHILD");
    fails_with(waitpid(-1, NULL, -1), EINVAL, "waitpid with unknown options fails with EINVAL");
    fails_with(waitpid(999999, NULL, 0), ECHILD, "waitpid for a process that is no child fails with ECHILD");
    fails_with(waitpid(-999999, NULL, WNOHANG), ECHILD, "waitpid for an empty group fails with ECHILD");
    fails_with(waitpid(INT_MIN, NULL, WNOHANG), ESRCH, "waitpid(INT_MIN) fails with ESRCH");
    pid_t child = fork();
    if (child == 0)
        _exit(7);
    int status = 0;
    check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 7,
          "waitpid reaps a child", "status %#x", status);
    fails_with(waitpid(child, NULL, 0), ECHILD, "waitpid for a reaped child fails with ECHILD");
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = mkstemp(path);
    static char contents[2 * PAGE];
    memset(contents, 'x', sizeof contents);
    if (fd < 0 || write(fd, contents, sizeof contents) != (ssize_t)sizeof contents) {
        printf("cannot make %s\n1 checks failed\n", path);
        return 1;
    }
    close(fd);
    check_mprotect();
    check_madvise();
    check_msync();
    check_mmap();
    check_waitpid();
    unlink(path);
    printf("%d checks failed\n", failures);
    return failures;
}
