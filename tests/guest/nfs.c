/* Works an NFS mount the way programs use files, one line per check.
 *
 *   nfs files ROOT
 *       makes, writes, reads, renames, links and removes files and
 *       directories under ROOT, checks their attributes, and leaves
 *       ROOT/kept (the host checks it); prints "ok WHAT" or "FAIL WHAT"
 *       per check and "files done FAILURES".
 *   nfs big ROOT MIB
 *       writes ROOT/big (MIB MiB of pattern(0)) in 1 MiB writes, fsyncs,
 *       reads it back in 64 KiB reads and prints "big checksum HEX" (FNV-1a
 *       of the bytes read) and "big done FAILURES".
 *   nfs threads ROOT THREADS MIB
 *       each thread writes ROOT/tK (MIB MiB of pattern(K)) and reads it
 *       back, comparing; prints "threads done FAILURES".
 *   nfs stall ROOT
 *       reads ROOT/big over and over after printing "reading"; once a read
 *       fails prints "read failed ERRNO-NAME after MS ms" and exits.
 *   nfs bench ROOT MIB FILES
 *       prints "bench write MIB/S", "bench read MIB/S" (a MIB MiB file in
 *       1 MiB calls) and "bench small OPS/S" (FILES files of 4 KiB made,
 *       written and closed).
 *
 * pattern(K) gives byte (offset * 7 + K + offset / 4096) % 253 at offset. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static int failures;

static void check(int condition, const char *what) {
    if (condition) {
        printf("ok %s\n", what);
    } else {
        printf("FAIL %s (errno %d %s)\n", what, errno, strerror(errno));
        failures++;
    }
    fflush(stdout);
}

static void fill(unsigned char *buffer, size_t length, uint64_t offset, int key) {
    for (size_t index = 0; index < length; index++) {
        uint64_t at = offset + index;
        buffer[index] = (unsigned char)((at * 7 + (uint64_t)key + at / 4096) % 253);
    }
}

static double now_seconds(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

static int write_text(const char *path, const char *text, int flags) {
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
    if (fd < 0)
        return -1;
    ssize_t written = write(fd, text, strlen(text));
    int closed = close(fd);
    return written == (ssize_t)strlen(text) && closed == 0 ? 0 : -1;
}

static int read_text(const char *path, char *buffer, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t count = read(fd, buffer, size - 1);
    close(fd);
    if (count < 0)
        return -1;
    buffer[count] = 0;
    return (int)count;
}

static int count_entries(const char *path) {
    DIR *directory = opendir(path);
    if (!directory)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)))
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, ".."))
            count++;
    closedir(directory);
    return count;
}

static int files(const char *root) {
    char path[512], other[512], text[256];
    struct stat status;

    snprintf(path, sizeof path, "%s/work", root);
    check(mkdir(path, 0755) == 0, "mkdir work");
    snprintf(path, sizeof path, "%s/work/a", root);
    check(write_text(path, "hello over nfs\n", O_TRUNC) == 0, "create and write a");
    check(read_text(path, text, sizeof text) == 15 && !strcmp(text, "hello over nfs\n"), "read a back");
    check(write_text(path, "more\n", O_APPEND) == 0, "append to a");
    check(stat(path, &status) == 0 && status.st_size == 20 && S_ISREG(status.st_mode), "stat a: 20 bytes");
    check(open(path, O_WRONLY | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST, "O_EXCL on a: EEXIST");
    check(chmod(path, 0600) == 0 && stat(path, &status) == 0 && (status.st_mode & 07777) == 0600,
          "chmod a 0600");
    struct timespec times[2] = {{1000000000, 0}, {1234567890, 0}};
    check(utimensat(AT_FDCWD, path, times, 0) == 0 && stat(path, &status) == 0 &&
              status.st_mtime == 1234567890,
          "utimensat a");
    check(truncate(path, 5) == 0 && stat(path, &status) == 0 && status.st_size == 5, "truncate a to 5");
    check(read_text(path, text, sizeof text) == 5 && !strcmp(text, "hello"), "read a after truncate");

    snprintf(other, sizeof other, "%s/work/b", root);
    check(rename(path, other) == 0, "rename a to b");
    check(stat(path, &status) < 0 && errno == ENOENT, "a is gone");
    check(read_text(other, text, sizeof text) == 5, "b holds a's bytes");
    snprintf(path, sizeof path, "%s/work/c", root);
    check(link(other, path) == 0 && stat(other, &status) == 0 && status.st_nlink == 2, "link b to c");
    check(unlink(other) == 0 && stat(path, &status) == 0 && status.st_nlink == 1, "unlink b, c keeps it");
    snprintf(other, sizeof other, "%s/work/s", root);
    check(symlink("c", other) == 0, "symlink s to c");
    ssize_t length = readlink(other, text, sizeof text);
    check(length == 1 && text[0] == 'c', "readlink s");
    check(read_text(other, text, sizeof text) == 5, "read through s");
    check(lstat(other, &status) == 0 && S_ISLNK(status.st_mode), "lstat s: a symlink");
    snprintf(other, sizeof other, "%s/work/fifo", root);
    check(mkfifo(other, 0644) == 0 && stat(other, &status) == 0 && S_ISFIFO(status.st_mode), "mkfifo");

    snprintf(path, sizeof path, "%s/work/d1/d2/d3", root);
    snprintf(other, sizeof other, "%s/work/d1", root);
    check(mkdir(other, 0755) == 0, "mkdir d1");
    snprintf(other, sizeof other, "%s/work/d1/d2", root);
    check(mkdir(other, 0755) == 0 && mkdir(path, 0755) == 0, "mkdir d1/d2/d3");
    check(mkdir(path, 0755) < 0 && errno == EEXIST, "mkdir again: EEXIST");
    snprintf(other, sizeof other, "%s/work/d1", root);
    check(rmdir(other) < 0 && errno == ENOTEMPTY, "rmdir d1: ENOTEMPTY");
    snprintf(path, sizeof path, "%s/work/d1/d2", root);
    snprintf(other, sizeof other, "%s/work/moved", root);
    check(rename(path, other) == 0, "rename d1/d2 to moved");
    snprintf(path, sizeof path, "%s/work/moved/d3/../../c", root);
    check(stat(path, &status) == 0, "moved/d3/../../c resolves");
    snprintf(path, sizeof path, "%s/work", root);
    check(count_entries(path) == 5, "work lists 5 entries");
    snprintf(path, sizeof path, "%s/work/nothing", root);
    check(open(path, O_RDONLY) < 0 && errno == ENOENT, "open a missing file: ENOENT");
    check(unlink(root) < 0, "unlink the mount's root fails");

    /* Many entries: the listing takes several READDIRPLUS calls. */
    snprintf(path, sizeof path, "%s/work/many", root);
    mkdir(path, 0755);
    int made = 0;
    for (int index = 0; index < 300; index++) {
        snprintf(other, sizeof other, "%s/work/many/entry-with-a-long-name-%04d", root, index);
        made += write_text(other, "x", O_TRUNC) == 0;
    }
    check(made == 300 && count_entries(path) == 300, "300 files listed");

    /* A shared mapping of a file reads its bytes. */
    snprintf(path, sizeof path, "%s/work/c", root);
    int fd = open(path, O_RDONLY);
    char *mapped = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    check(mapped != MAP_FAILED && !memcmp(mapped, "hello", 5), "mmap c");
    if (fd >= 0)
        close(fd);

    struct statfs filesystem;
    check(statfs(root, &filesystem) == 0 && filesystem.f_type == 0x6969 && filesystem.f_blocks > 0,
          "statfs: NFS_SUPER_MAGIC");

    /* For the host to check. */
    snprintf(path, sizeof path, "%s/kept", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/kept/note", root);
    check(write_text(path, "written by the guest\n", O_TRUNC) == 0, "write kept/note");
    snprintf(path, sizeof path, "%s/kept/owned", root);
    check(write_text(path, "", O_TRUNC) == 0 && chown(path, 1234, 567) == 0, "chown kept/owned");
    snprintf(path, sizeof path, "%s/from-host", root);
    check(read_text(path, text, sizeof text) > 0 && !strcmp(text, "written by the host\n"),
          "read from-host");
    printf("files done %d\n", failures);
    return failures;
}

static uint64_t fnv(uint64_t hash, const unsigned char *bytes, size_t length) {
    for (size_t index = 0; index < length; index++)
        hash = (hash ^ bytes[index]) * 1099511628211ull;
    return hash;
}

static int big(const char *root, long mib) {
    char path[512];
    snprintf(path, sizeof path, "%s/big", root);
    unsigned char *buffer = malloc(MIB);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check(fd >= 0, "create big");
    int written = 1;
    for (long index = 0; index < mib && fd >= 0; index++) {
        fill(buffer, MIB, (uint64_t)index * MIB, 0);
        written &= write(fd, buffer, MIB) == MIB;
    }
    check(written, "write big");
    check(fd >= 0 && fsync(fd) == 0, "fsync big");
    close(fd);
    fd = open(path, O_RDONLY);
    uint64_t hash = 14695981039346656037ull;
    long total = 0;
    ssize_t count;
    while (fd >= 0 && (count = read(fd, buffer, 65536)) > 0) {
        hash = fnv(hash, buffer, (size_t)count);
        total += count;
    }
    check(total == mib * MIB, "read big back whole");
    close(fd);
    printf("big checksum %016llx\n", (unsigned long long)hash);
    printf("big done %d\n", failures);
    return failures;
}

struct worker {
    const char *root;
    int key;
    long mib;
    int is_ok;
};

static void *work(void *argument) {
    struct worker *worker = argument;
    char path[512];
    snprintf(path, sizeof path, "%s/t%d", worker->root, worker->key);
    unsigned char *buffer = malloc(MIB), *expected = malloc(MIB);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    worker->is_ok = fd >= 0;
    for (long index = 0; index < worker->mib && worker->is_ok; index++) {
        fill(buffer, MIB, (uint64_t)index * MIB, worker->key);
        worker->is_ok = write(fd, buffer, MIB) == MIB;
    }
    worker->is_ok &= fsync(fd) == 0;
    for (long index = 0; index < worker->mib && worker->is_ok; index++) {
        fill(expected, MIB, (uint64_t)index * MIB, worker->key);
        /* Reads of 128 KiB, as a program reading in a loop makes them. */
        for (long part = 0; part < MIB && worker->is_ok; part += 131072) {
            ssize_t count = pread(fd, buffer + part, 131072, index * MIB + part);
            worker->is_ok = count == 131072;
        }
        worker->is_ok = worker->is_ok && !memcmp(buffer, expected, MIB);
    }
    if (fd >= 0)
        close(fd);
    free(buffer);
    free(expected);
    return NULL;
}

static int threads(const char *root, int count, long mib) {
    pthread_t handles[64];
    struct worker workers[64];
    if (count > 64)
        count = 64;
    for (int index = 0; index < count; index++) {
        workers[index] = (struct worker){root, index, mib, 0};
        pthread_create(&handles[index], NULL, work, &workers[index]);
    }
    for (int index = 0; index < count; index++) {
        pthread_join(handles[index], NULL);
        char what[64];
        snprintf(what, sizeof what, "thread %d wrote and read back t%d", index, index);
        check(workers[index].is_ok, what);
    }
    printf("threads done %d\n", failures);
    return failures;
}

static int stall(const char *root) {
    char path[512];
    snprintf(path, sizeof path, "%s/big", root);
    unsigned char *buffer = malloc(MIB);
    printf("reading\n");
    fflush(stdout);
    /* The time of the last call that succeeded. */
    double last = now_seconds();
    for (;;) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            break;
        last = now_seconds();
        ssize_t count;
        while ((count = read(fd, buffer, MIB)) > 0)
            last = now_seconds();
        close(fd);
        if (count < 0)
            break;
    }
    int error = errno;
    printf("read failed %s after %.0f ms\n", error == EIO ? "EIO" : strerror(error),
           (now_seconds() - last) * 1000);
    return 0;
}

static int bench(const char *root, long mib, int count) {
    char path[512];
    unsigned char *buffer = malloc(MIB);
    fill(buffer, MIB, 0, 1);
    snprintf(path, sizeof path, "%s/bench", root);
    double start = now_seconds();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (long index = 0; index < mib; index++)
        if (write(fd, buffer, MIB) != MIB)
            failures++;
    fsync(fd);
    close(fd);
    printf("bench write %.1f MiB/s\n", (double)mib / (now_seconds() - start));
    start = now_seconds();
    fd = open(path, O_RDONLY);
    while (read(fd, buffer, MIB) > 0) {
    }
    close(fd);
    printf("bench read %.1f MiB/s\n", (double)mib / (now_seconds() - start));
    snprintf(path, sizeof path, "%s/small", root);
    mkdir(path, 0755);
    start = now_seconds();
    for (int index = 0; index < count; index++) {
        snprintf(path, sizeof path, "%s/small/f%d", root, index);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, buffer, 4096) != 4096)
            failures++;
        close(fd);
    }
    printf("bench small %.0f ops/s\n", (double)count / (now_seconds() - start));
    printf("bench done %d\n", failures);
    return failures;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "files"))
        return files(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "big"))
        return big(argv[2], atol(argv[3]));
    if (argc >= 5 && !strcmp(argv[1], "threads"))
        return threads(argv[2], atoi(argv[3]), atol(argv[4]));
    if (argc >= 3 && !strcmp(argv[1], "stall"))
        return stall(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "bench"))
        return bench(argv[2], atol(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: nfs files|big|threads|stall|bench ROOT ...\n");
    return 2;
}
