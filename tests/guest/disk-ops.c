/* A benchmark, not a test: `disk-ops DIRECTORY SIZE_MIB` measures, in
 * DIRECTORY, what programs that keep data do to a disk filesystem, and
 * prints each as "<name>: <ns> ns":
 *   - writing SIZE_MIB MiB in 1 MiB writes and fsyncing once (ns per MiB);
 *   - a 4 KiB write followed by fsync, 50 times (ns per pair);
 *   - creating, renaming and removing 200 small files (ns per file each).
 * Exits 0, or 1 when a call fails. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILES 200
#define FSYNCS 50

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: disk-ops DIRECTORY SIZE_MIB\n");
        return 2;
    }
    const char *directory = argv[1];
    long size_mib = atol(argv[2]);
    char path[4096], target[4096];
    static char buffer[1 << 20];
    for (size_t index = 0; index < sizeof buffer; index++)
        buffer[index] = (char)(index * 131 + 7);

    snprintf(path, sizeof path, "%s/stream", directory);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail("open stream");
    int64_t start = monotonic_ns();
    for (long mib = 0; mib < size_mib; mib++)
        if (write(fd, buffer, sizeof buffer) != (ssize_t)sizeof buffer)
            fail("write stream");
    if (fsync(fd) != 0)
        fail("fsync stream");
    printf("write 1 MiB pieces, then fsync: %lld ns\n", (long long)((monotonic_ns() - start) / size_mib));
    close(fd);
    unlink(path);

    snprintf(path, sizeof path, "%s/log", directory);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail("open log");
    start = monotonic_ns();
    for (int round = 0; round < FSYNCS; round++) {
        if (write(fd, buffer, 4096) != 4096)
            fail("write log");
        if (fsync(fd) != 0)
            fail("fsync log");
    }
    printf("4 KiB write + fsync: %lld ns\n", (long long)((monotonic_ns() - start) / FSYNCS));
    close(fd);
    unlink(path);

    start = monotonic_ns();
    for (int index = 0; index < FILES; index++) {
        snprintf(path, sizeof path, "%s/file%d", directory, index);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || write(fd, buffer, 100) != 100)
            fail("create");
        close(fd);
    }
    printf("create a 100-byte file: %lld ns\n", (long long)((monotonic_ns() - start) / FILES));
    start = monotonic_ns();
    for (int index = 0; index < FILES; index++) {
        snprintf(path, sizeof path, "%s/file%d", directory, index);
        snprintf(target, sizeof target, "%s/renamed%d", directory, index);
        if (rename(path, target) != 0)
            fail("rename");
    }
    printf("rename: %lld ns\n", (long long)((monotonic_ns() - start) / FILES));
    start = monotonic_ns();
    for (int index = 0; index < FILES; index++) {
        snprintf(target, sizeof target, "%s/renamed%d", directory, index);
        if (unlink(target) != 0)
            fail("unlink");
    }
    printf("unlink: %lld ns\n", (long long)((monotonic_ns() - start) / FILES));
    return 0;
}
