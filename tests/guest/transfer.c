/* Checks the calls that move data between descriptors without passing it
 * through the program (splice, tee, vmsplice, copy_file_range, sendfile
 * between files), the calls that shape or flush a file's space (fallocate,
 * sync_file_range, syncfs), file handles, and two errors programs test for
 * (wait4 without children, an ioctl a file does not know). The system
 * calls are made directly, so glibc and musl run the same checks. Prints
 * one line per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

#define SPLICE_NONBLOCK 2
#define KEEP_SIZE 1
#define PUNCH_HOLE 2
#define ZERO_RANGE 0x10
#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6

static char directory[256];

/* The files the checks make, removed at the end. */
static const char *const names[] = {"splice-source", "splice-target", "tee-file", "copy-source", "copy-target",
                                    "sendfile-target", "fallocate", "ioctl", "vectors"};

static long splice_(int in, long long *in_offset, int out, long long *out_offset, size_t length, unsigned flags) {
    return syscall(SYS_splice, in, in_offset, out, out_offset, length, flags);
}

static long copy_range(int in, long long *in_offset, int out, long long *out_offset, size_t length,
                       unsigned flags) {
    return syscall(SYS_copy_file_range, in, in_offset, out, out_offset, length, flags);
}

/* A new file in the test directory holding `contents`, open read-write. */
static int file_with(const char *name, const char *contents) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0 && contents != NULL && write(fd, contents, strlen(contents)) != (ssize_t)strlen(contents)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what `fd` holds from offset 0 into `buffer` as a string. */
static const char *contents_of(int fd, char *buffer, size_t size) {
    ssize_t length = pread(fd, buffer, size - 1, 0);
    buffer[length < 0 ? 0 : length] = 0;
    return buffer;
}

static void check_splice(void) {
    char buffer[256];
    int source = file_with("splice-source", "0123456789abcdef");
    int pipe_ends[2];
    check(source >= 0 && pipe(pipe_ends) == 0, "splice: set up", "open or pipe failed");
    long long offset = 4;
    long moved = splice_(source, &offset, pipe_ends[1], NULL, 6, 0);
    ssize_t got = read(pipe_ends[0], buffer, sizeof buffer);
    check(moved == 6 && offset == 10 && got == 6 && memcmp(buffer, "456789", 6) == 0,
          "splice: file at an offset into a pipe", "moved %ld, offset %lld, read %zd", moved, offset, got);
    check(lseek(source, 0, SEEK_CUR) == 16, "splice: an explicit offset leaves the file offset", "offset %ld",
          (long)lseek(source, 0, SEEK_CUR));
    lseek(source, 0, SEEK_SET);
    moved = splice_(source, NULL, pipe_ends[1], NULL, 3, 0);
    check(moved == 3 && lseek(source, 0, SEEK_CUR) == 3, "splice: without an offset the file offset moves",
          "moved %ld, offset %ld", moved, (long)lseek(source, 0, SEEK_CUR));
    int target = file_with("splice-target", NULL);
    offset = 2;
    moved = splice_(pipe_ends[0], NULL, target, &offset, 100, 0);
    check(moved == 3 && offset == 5 && pread(target, buffer, 3, 2) == 3 && memcmp(buffer, "012", 3) == 0,
          "splice: pipe into a file at an offset", "moved %ld, offset %lld", moved, offset);

    int other[2];
    check(pipe(other) == 0 && write(pipe_ends[1], "pipe", 4) == 4, "splice: second pipe", "pipe failed");
    moved = splice_(pipe_ends[0], NULL, other[1], NULL, 100, 0);
    got = read(other[0], buffer, sizeof buffer);
    check(moved == 4 && got == 4 && memcmp(buffer, "pipe", 4) == 0, "splice: pipe to pipe", "moved %ld, read %zd",
          moved, got);

    errno = 0;
    check(splice_(pipe_ends[0], &offset, other[1], NULL, 1, 0) == -1 && errno == ESPIPE,
          "splice: an offset for a pipe is ESPIPE", "no ESPIPE");
    errno = 0;
    check(splice_(source, NULL, target, NULL, 1, 0) == -1 && errno == EINVAL,
          "splice: between two files is EINVAL", "no EINVAL");
    errno = 0;
    check(splice_(pipe_ends[0], NULL, other[1], NULL, 1, 0x100) == -1 && errno == EINVAL,
          "splice: unknown flags are EINVAL", "no EINVAL");
    check(splice_(-1, NULL, -1, NULL, 0, 0) == 0, "splice: a length of 0 moves nothing", "not 0");
    errno = 0;
    check(splice_(pipe_ends[0], NULL, pipe_ends[1], NULL, 1, 0) == -1 && errno == EINVAL,
          "splice: a pipe into itself is EINVAL", "no EINVAL");
    errno = 0;
    check(splice_(pipe_ends[1], NULL, other[1], NULL, 1, 0) == -1 && errno == EBADF,
          "splice: from a writing end is EBADF", "no EBADF");
    errno = 0;
    check(splice_(pipe_ends[0], NULL, other[1], NULL, 1, SPLICE_NONBLOCK) == -1 && errno == EAGAIN,
          "splice: SPLICE_F_NONBLOCK on an empty pipe is EAGAIN", "no EAGAIN");
    close(pipe_ends[1]);
    check(splice_(pipe_ends[0], NULL, other[1], NULL, 1, 0) == 0,
          "splice: an empty pipe without writers gives 0", "did not give 0");
    close(other[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    offset = 0;
    check(splice_(source, &offset, other[1], NULL, 4, 0) == -1 && errno == EPIPE,
          "splice: into a pipe without readers is EPIPE", "no EPIPE");
    close(pipe_ends[0]);
    close(other[1]);
    close(source);
    close(target);
}

static void check_tee_and_vmsplice(void) {
    char buffer[64];
    int first[2], second[2];
    check(pipe(first) == 0 && pipe(second) == 0 && write(first[1], "teatime", 7) == 7, "tee: set up",
          "pipe failed");
    long copied = syscall(SYS_tee, first[0], second[1], 3, 0);
    ssize_t got = read(second[0], buffer, sizeof buffer);
    check(copied == 3 && got == 3 && memcmp(buffer, "tea", 3) == 0, "tee: copies the front of a pipe",
          "copied %ld, read %zd", copied, got);
    got = read(first[0], buffer, sizeof buffer);
    check(got == 7 && memcmp(buffer, "teatime", 7) == 0, "tee: leaves the source's bytes", "read %zd", got);
    errno = 0;
    check(syscall(SYS_tee, first[0], first[1], 1, 0) == -1 && errno == EINVAL, "tee: to the same pipe is EINVAL",
          "no EINVAL");
    int file = file_with("tee-file", "x");
    errno = 0;
    check(syscall(SYS_tee, file, second[1], 1, 0) == -1 && errno == EINVAL, "tee: from a file is EINVAL",
          "no EINVAL");
    errno = 0;
    check(syscall(SYS_tee, first[0], second[1], 1, SPLICE_NONBLOCK) == -1 && errno == EAGAIN,
          "tee: SPLICE_F_NONBLOCK on an empty pipe is EAGAIN", "no EAGAIN");

    struct iovec pieces[2] = {{"vm", 2}, {"splice", 6}};
    long written = syscall(SYS_vmsplice, first[1], pieces, 2, 0);
    got = read(first[0], buffer, sizeof buffer);
    check(written == 8 && got == 8 && memcmp(buffer, "vmsplice", 8) == 0, "vmsplice: into a pipe",
          "wrote %ld, read %zd", written, got);
    char front[3] = {0}, back[4] = {0};
    struct iovec into[2] = {{front, 2}, {back, 3}};
    check(write(first[1], "abcde", 5) == 5 && syscall(SYS_vmsplice, first[0], into, 2, 0) == 5 &&
              memcmp(front, "ab", 2) == 0 && memcmp(back, "cde", 3) == 0,
          "vmsplice: out of a pipe's reading end", "got %s %s", front, back);
    errno = 0;
    check(syscall(SYS_vmsplice, file, pieces, 2, 0) == -1 && errno == EBADF, "vmsplice: a file is EBADF",
          "no EBADF");
    /* More than the pipe holds: what fits goes in, without waiting for a
     * reader (this thread is the only one). */
    static char large[200000];
    struct iovec whole = {large, sizeof large};
    long taken = syscall(SYS_vmsplice, first[1], &whole, 1, 0);
    check(taken > 0 && taken < (long)sizeof large, "vmsplice: a full pipe takes what fits and returns",
          "took %ld", taken);
    /* And splice from a file into the full pipe's room only. */
    char drain[4096];
    check(read(first[0], drain, sizeof drain) == (ssize_t)sizeof drain, "vmsplice: drain a page", "read failed");
    long long offset = 0;
    long moved = splice_(file, &offset, first[1], NULL, 1, 0);
    check(moved == 1, "splice: into a pipe with a little room", "moved %ld", moved);
    int counter = eventfd(0, 0);
    int other[2];
    check(pipe(other) == 0, "splice: an empty pipe", "pipe failed");
    errno = 0;
    check(splice_(other[0], NULL, counter, NULL, 1, 0) == -1 && errno == EINVAL,
          "splice: into an eventfd is EINVAL, without waiting for data", "no EINVAL");
    close(counter);
    close(other[0]);
    close(other[1]);
    close(file);
    close(first[0]);
    close(first[1]);
    close(second[0]);
    close(second[1]);
}

static void check_copy_file_range(void) {
    char buffer[256];
    int source = file_with("copy-source", "hello, copy_file_range");
    int target = file_with("copy-target", "XXXXXXXXXX");
    long long in_offset = 7, out_offset = 2;
    long copied = copy_range(source, &in_offset, target, &out_offset, 4, 0);
    check(copied == 4 && in_offset == 11 && out_offset == 6 &&
              strcmp(contents_of(target, buffer, sizeof buffer), "XXcopyXXXX") == 0,
          "copy_file_range: between offsets", "copied %ld: %s", copied, buffer);
    lseek(source, 0, SEEK_SET);
    lseek(target, 0, SEEK_SET);
    copied = copy_range(source, NULL, target, NULL, 1000, 0);
    check(copied == 22 && lseek(source, 0, SEEK_CUR) == 22 && lseek(target, 0, SEEK_CUR) == 22 &&
              strcmp(contents_of(target, buffer, sizeof buffer), "hello, copy_file_range") == 0,
          "copy_file_range: with the file offsets, stopping at the end", "copied %ld: %s", copied, buffer);
    in_offset = 100;
    check(copy_range(source, &in_offset, target, NULL, 10, 0) == 0, "copy_file_range: past the end copies 0",
          "not 0");
    in_offset = 0, out_offset = 4;
    errno = 0;
    check(copy_range(source, &in_offset, source, &out_offset, 8, 0) == -1 && errno == EINVAL,
          "copy_file_range: overlapping ranges of one file are EINVAL", "no EINVAL");
    errno = 0;
    check(copy_range(source, NULL, target, NULL, 1, 1) == -1 && errno == EINVAL,
          "copy_file_range: flags are EINVAL", "no EINVAL");
    int dir = open(directory, O_RDONLY | O_DIRECTORY);
    errno = 0;
    check(copy_range(dir, NULL, target, NULL, 1, 0) == -1 && errno == EISDIR,
          "copy_file_range: from a directory is EISDIR", "no EISDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/copy-target", directory);
    int appending = open(path, O_WRONLY | O_APPEND);
    errno = 0;
    in_offset = 0;
    check(copy_range(source, &in_offset, appending, NULL, 1, 0) == -1 && errno == EBADF,
          "copy_file_range: to an O_APPEND file is EBADF", "no EBADF");
    int ends[2];
    check(pipe(ends) == 0, "copy_file_range: pipe", "pipe failed");
    errno = 0;
    check(copy_range(source, NULL, ends[1], NULL, 1, 0) == -1 && errno == EINVAL,
          "copy_file_range: to a pipe is EINVAL", "no EINVAL");

    /* sendfile between two regular files, and into a pipe. */
    long long offset = 7;
    int copy = file_with("sendfile-target", NULL);
    long sent = syscall(SYS_sendfile, copy, source, &offset, 4);
    check(sent == 4 && offset == 11 && strcmp(contents_of(copy, buffer, sizeof buffer), "copy") == 0,
          "sendfile: file to file", "sent %ld: %s", sent, buffer);
    offset = 0;
    sent = syscall(SYS_sendfile, ends[1], source, &offset, 1000);
    ssize_t got = read(ends[0], buffer, sizeof buffer);
    check(sent == 22 && got == 22, "sendfile: file to pipe, stopping at the end", "sent %ld, read %zd", sent, got);
    close(ends[0]);
    close(ends[1]);
    close(appending);
    close(dir);
    close(copy);
    close(source);
    close(target);
}

static void check_fallocate(void) {
    struct stat status;
    struct statfs filesystem;
    int fd = file_with("fallocate", "0123456789");
    check(fd >= 0 && fstatfs(fd, &filesystem) == 0, "fallocate: set up", "open or fstatfs failed");
    check(fallocate(fd, 0, 0, 100) == 0 && fstat(fd, &status) == 0 && status.st_size == 100,
          "fallocate: grows the file", "size %ld", (long)status.st_size);
    check(fallocate(fd, KEEP_SIZE, 0, 4096) == 0 && fstat(fd, &status) == 0 && status.st_size == 100,
          "fallocate: FALLOC_FL_KEEP_SIZE keeps the size", "size %ld", (long)status.st_size);
    char buffer[10];
    check(fallocate(fd, PUNCH_HOLE | KEEP_SIZE, 2, 3) == 0 && pread(fd, buffer, 10, 0) == 10 &&
              memcmp(buffer, "01\0\0\00056789", 10) == 0 && fstat(fd, &status) == 0 && status.st_size == 100,
          "fallocate: a punched hole reads as zeros", "contents or size changed");
    errno = 0;
    check(fallocate(fd, PUNCH_HOLE, 0, 1) == -1 && errno == EOPNOTSUPP,
          "fallocate: a hole without FALLOC_FL_KEEP_SIZE is EOPNOTSUPP", "no EOPNOTSUPP");
    errno = 0;
    check(fallocate(fd, 0, 0, 0) == -1 && errno == EINVAL, "fallocate: a length of 0 is EINVAL", "no EINVAL");
    errno = 0;
    check(fallocate(fd, 0, -1, 1) == -1 && errno == EINVAL, "fallocate: a negative offset is EINVAL",
          "no EINVAL");
    errno = 0;
    check(fallocate(fd, 0x8 | KEEP_SIZE, 0, 4096) == -1 && errno == EOPNOTSUPP,
          "fallocate: FALLOC_FL_COLLAPSE_RANGE with FALLOC_FL_KEEP_SIZE is EOPNOTSUPP", "no EOPNOTSUPP");
    errno = 0;
    check(fallocate(fd, 0x100, 0, 4096) == -1 && errno == EOPNOTSUPP, "fallocate: an unknown mode is EOPNOTSUPP",
          "no EOPNOTSUPP");
    if (filesystem.f_type == TMPFS_MAGIC || filesystem.f_type == RAMFS_MAGIC) {
        errno = 0;
        check(fallocate(fd, ZERO_RANGE, 0, 1) == -1 && errno == EOPNOTSUPP,
              "fallocate: FALLOC_FL_ZERO_RANGE is EOPNOTSUPP on tmpfs", "no EOPNOTSUPP");
    }
    int ends[2];
    check(pipe(ends) == 0, "fallocate: pipe", "pipe failed");
    errno = 0;
    check(fallocate(ends[1], 0, 0, 1) == -1 && errno == ESPIPE, "fallocate: a pipe is ESPIPE", "no ESPIPE");
    int reading = open("/proc/self/exe", O_RDONLY);
    errno = 0;
    check(fallocate(reading, 0, 0, 1) == -1 && errno == EBADF, "fallocate: a read-only descriptor is EBADF",
          "no EBADF");

    check(sync_file_range(fd, 0, 0, 7) == 0, "sync_file_range: a file", "failed");
    errno = 0;
    check(sync_file_range(fd, 0, 0, 8) == -1 && errno == EINVAL, "sync_file_range: unknown flags are EINVAL",
          "no EINVAL");
    errno = 0;
    check(sync_file_range(fd, -1, 0, 0) == -1 && errno == EINVAL, "sync_file_range: a negative offset is EINVAL",
          "no EINVAL");
    errno = 0;
    check(sync_file_range(ends[0], 0, 0, 0) == -1 && errno == ESPIPE, "sync_file_range: a pipe is ESPIPE",
          "no ESPIPE");
    check(syscall(SYS_syncfs, fd) == 0, "syncfs: a file's filesystem", "failed");
    errno = 0;
    check(syscall(SYS_syncfs, 999) == -1 && errno == EBADF, "syncfs: a closed descriptor is EBADF", "no EBADF");
    close(reading);
    close(ends[0]);
    close(ends[1]);
    close(fd);
}

static void check_pipe_sizes(void) {
    int ends[2] = {-1, -1};
    check(pipe2(ends, O_NONBLOCK) == 0 && fcntl(ends[0], F_GETPIPE_SZ) == 65536, "a pipe holds 64 KiB",
          "%d", fcntl(ends[0], F_GETPIPE_SZ));
    check(fcntl(ends[1], F_SETPIPE_SZ, 1) == 4096 && fcntl(ends[0], F_GETPIPE_SZ) == 4096,
          "F_SETPIPE_SZ rounds up to a page", "%d", fcntl(ends[0], F_GETPIPE_SZ));
    check(fcntl(ends[1], F_SETPIPE_SZ, 100000) == 131072, "and to a power of two", "%d",
          fcntl(ends[0], F_GETPIPE_SZ));
    static char bytes[140000];
    check(write(ends[1], bytes, sizeof bytes) == 131072, "the pipe then holds that much", "wrong count");
    errno = 0;
    check(fcntl(ends[1], F_SETPIPE_SZ, 4096) == -1 && errno == EBUSY, "it cannot shrink below its contents",
          "no EBUSY");
    errno = 0;
    check(fcntl(ends[1], F_SETPIPE_SZ, (1U << 31) + 1) == -1 && errno == EINVAL, "past 2 GiB is EINVAL",
          "no EINVAL");
    int file = file_with("ioctl", "x");
    errno = 0;
    check(fcntl(file, F_GETPIPE_SZ) == -1 && errno == EBADF, "F_GETPIPE_SZ of a file is EBADF", "no EBADF");
    close(file);
    close(ends[0]);
    close(ends[1]);
}

/* preadv2 and pwritev2 take per-call flags: RWF_HIPRI is a hint a
 * buffered file ignores, RWF_DSYNC and RWF_SYNC flush what was written,
 * and an unknown flag is refused with EOPNOTSUPP. */
static void check_vector_flags(void) {
    int fd = file_with("vectors", "0123456789");
    char first[4] = {0}, second[3] = {0};
    struct iovec parts[2] = {{first, 3}, {second, 2}};
    long got = syscall(SYS_preadv2, fd, parts, 2, 2L, 0L, 0x1 /* RWF_HIPRI */);
    check(got == 5 && memcmp(first, "234", 3) == 0 && memcmp(second, "56", 2) == 0, "preadv2 RWF_HIPRI reads",
          "%ld", got);
    struct iovec out = {"xy", 2};
    got = syscall(SYS_pwritev2, fd, &out, 1, 0L, 0L, 0x4 /* RWF_SYNC */);
    char buffer[16];
    check(got == 2 && strcmp(contents_of(fd, buffer, sizeof buffer), "xy23456789") == 0, "pwritev2 RWF_SYNC writes",
          "%ld %s", got, buffer);
    got = syscall(SYS_pwritev2, fd, &out, 1, 8L, 0L, 0x2 /* RWF_DSYNC */);
    check(got == 2 && strcmp(contents_of(fd, buffer, sizeof buffer), "xy234567xy") == 0,
          "pwritev2 RWF_DSYNC writes", "%ld %s", got, buffer);
    errno = 0;
    got = syscall(SYS_preadv2, fd, parts, 2, 0L, 0L, 0x40000000L);
    check(got == -1 && errno == EOPNOTSUPP, "preadv2 refuses an unknown flag", "%ld", got);
    close(fd);
}

static void check_handles_and_errors(void) {
    struct {
        unsigned int bytes;
        int type;
        unsigned char handle[128];
    } handle = {128, 0, {0}};
    int mount_id;
    char path[512];
    snprintf(path, sizeof path, "%s/missing", directory);
    errno = 0;
    check(syscall(SYS_name_to_handle_at, AT_FDCWD, path, &handle, &mount_id, 0) == -1 && errno == ENOENT,
          "name_to_handle_at: a missing path is ENOENT", "no ENOENT");
    errno = 0;
    check(syscall(SYS_name_to_handle_at, AT_FDCWD, directory, &handle, &mount_id, 0x10000) == -1 && errno == EINVAL,
          "name_to_handle_at: unknown flags are EINVAL", "no EINVAL");

    int status;
    errno = 0;
    check(wait4(-1, &status, WNOHANG, NULL) == -1 && errno == ECHILD, "wait4: no children is ECHILD", "no ECHILD");
    char target[8];
    errno = 0;
    check(readlink("", target, sizeof target) == -1 && errno == ENOENT, "readlink: an empty path is ENOENT",
          "no ENOENT");
    int null = open("/dev/null", O_WRONLY);
    errno = 0;
    check(null >= 0 && fsync(null) == -1 && errno == EINVAL, "fsync: a character device is EINVAL", "no EINVAL");
    close(null);
    int fd = file_with("ioctl", "x");
    errno = 0;
    check(ioctl(fd, 0x12345678, 0) == -1 && errno == ENOTTY, "ioctl: an unknown request is ENOTTY", "no ENOTTY");
    close(fd);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/transfer-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(directory) == NULL) {
        printf("FAIL mkdtemp (errno %d)\n1 checks failed\n", errno);
        return 1;
    }
    check_splice();
    check_tee_and_vmsplice();
    check_copy_file_range();
    check_fallocate();
    check_pipe_sizes();
    check_handles_and_errors();
    check_vector_flags();
    for (size_t index = 0; index < sizeof names / sizeof names[0]; index++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", directory, names[index]);
        unlink(path);
    }
    check(rmdir(directory) == 0, "the test directory is left empty", "rmdir failed");
    printf("\n%d checks failed\n", failures);
    return failures;
}
