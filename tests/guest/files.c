/* Checks the file system calls: files and directories in /tmp, devices in
 * /dev, the process in /proc, the read-only root image, pipes between
 * threads, descriptor duplication, and the errors Linux gives. Prints one
 * line per check ("ok <name>" or "FAIL <name>: <why>") and exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

/* Whether `call` failed with `expected`. */
#define FAILS_WITH(call, expected) ((call) == -1 && errno == (expected))

static int contains(const char *path, const char *needle) {
    static char text[65536];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    size_t length = 0;
    ssize_t got;
    while (length < sizeof text - 1 && (got = read(fd, text + length, sizeof text - 1 - length)) > 0)
        length += (size_t)got;
    close(fd);
    text[length] = 0;
    return strstr(text, needle) != NULL;
}

static int directory_has(const char *path, const char *name) {
    DIR *directory = opendir(path);
    if (!directory)
        return 0;
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL)
        if (strcmp(entry->d_name, name) == 0)
            found = 1;
    closedir(directory);
    return found;
}

static void check_tmp(void) {
    int fd = open("/tmp/file", O_CREAT | O_RDWR | O_TRUNC, 0644);
    check(fd >= 0, "create a file in /tmp", "open failed");
    check(write(fd, "hello, world", 12) == 12, "write a file", "short write");
    char buffer[64] = {0};
    check(lseek(fd, 7, SEEK_SET) == 7 && read(fd, buffer, sizeof buffer) == 5 && memcmp(buffer, "world", 5) == 0,
          "seek and read back", "read '%s'", buffer);
    struct stat status;
    check(fstat(fd, &status) == 0 && S_ISREG(status.st_mode) && status.st_size == 12 && (status.st_mode & 0777) == 0644,
          "fstat a file", "mode %o size %ld", status.st_mode, (long)status.st_size);
    check(pwrite(fd, "HELLO", 5, 0) == 5 && pread(fd, buffer, 12, 0) == 12 && memcmp(buffer, "HELLO, world", 12) == 0 &&
              lseek(fd, 0, SEEK_CUR) == 12,
          "pread and pwrite keep the offset", "read '%.12s'", buffer);
    struct iovec vectors[2] = {{"ab", 2}, {"cd", 2}};
    check(writev(fd, vectors, 2) == 4 && lseek(fd, 0, SEEK_END) == 16, "writev appends vectors", "size wrong");
    check(ftruncate(fd, 5) == 0 && fstat(fd, &status) == 0 && status.st_size == 5, "ftruncate", "size %ld",
          (long)status.st_size);
    close(fd);

    fd = open("/tmp/file", O_WRONLY | O_APPEND);
    check(fd >= 0 && write(fd, "!", 1) == 1 && lseek(fd, 0, SEEK_CUR) == 6, "O_APPEND writes at the end",
          "offset %ld", (long)lseek(fd, 0, SEEK_CUR));
    close(fd);
    check(FAILS_WITH(open("/tmp/file", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST), "O_EXCL on an existing file fails with EEXIST",
          "wrong result");

    FILE *stream = fopen("/tmp/stdio", "w+");
    check(stream && fprintf(stream, "line %d\n", 42) > 0 && fflush(stream) == 0, "stdio writes", "fopen or fprintf failed");
    if (stream) {
        rewind(stream);
        char line[32] = {0};
        check(fgets(line, sizeof line, stream) && strcmp(line, "line 42\n") == 0, "stdio reads back", "read '%s'", line);
        fclose(stream);
    }

    check(mkdir("/tmp/dir", 0755) == 0, "mkdir", "failed");
    check(FAILS_WITH(mkdir("/tmp/dir", 0755), EEXIST), "mkdir of an existing directory fails with EEXIST", "wrong result");
    for (const char *name = "abc"; *name; name++) {
        char path[32];
        snprintf(path, sizeof path, "/tmp/dir/%c", *name);
        close(open(path, O_CREAT | O_WRONLY, 0600));
    }
    check(directory_has("/tmp/dir", "a") && directory_has("/tmp/dir", "c") && directory_has("/tmp/dir", ".."),
          "readdir lists a directory", "entries missing");
    check(FAILS_WITH(rmdir("/tmp/dir"), ENOTEMPTY), "rmdir of a full directory fails with ENOTEMPTY", "wrong result");
    check(rename("/tmp/dir/a", "/tmp/dir/renamed") == 0 && FAILS_WITH(access("/tmp/dir/a", F_OK), ENOENT) &&
              access("/tmp/dir/renamed", F_OK) == 0,
          "rename", "the names are wrong");
    check(FAILS_WITH(rename("/tmp/dir", "/tmp/dir/inside"), EINVAL), "renaming a directory into itself fails with EINVAL",
          "wrong result");
    check(FAILS_WITH(unlink("/tmp/dir"), EISDIR), "unlink of a directory fails with EISDIR", "wrong result");
    check(unlink("/tmp/dir/renamed") == 0 && unlink("/tmp/dir/b") == 0 && unlink("/tmp/dir/c") == 0 &&
              rmdir("/tmp/dir") == 0,
          "unlink and rmdir", "failed");

    check(symlink("/tmp/file", "/tmp/link") == 0, "symlink", "failed");
    char target[64] = {0};
    check(readlink("/tmp/link", target, sizeof target - 1) == 9 && strcmp(target, "/tmp/file") == 0, "readlink",
          "read '%s'", target);
    struct stat link_status;
    check(lstat("/tmp/link", &link_status) == 0 && S_ISLNK(link_status.st_mode) && stat("/tmp/link", &status) == 0 &&
              S_ISREG(status.st_mode),
          "lstat sees the link, stat its target", "wrong types");
    check(link("/tmp/file", "/tmp/hard") == 0 && stat("/tmp/file", &status) == 0 && status.st_nlink == 2,
          "hard links count", "nlink %ld", (long)status.st_nlink);
    check(FAILS_WITH(open("/tmp/link", O_RDONLY | O_NOFOLLOW), ELOOP), "O_NOFOLLOW on a symlink fails with ELOOP",
          "wrong result");

    fd = open("/tmp/hard", O_RDONLY);
    unlink("/tmp/hard");
    unlink("/tmp/file");
    check(fd >= 0 && read(fd, buffer, sizeof buffer) == 6 && FAILS_WITH(access("/tmp/file", F_OK), ENOENT),
          "an unlinked open file stays readable", "failed");
    close(fd);

    check(mkdir("/tmp/work", 0700) == 0 && chdir("/tmp/work") == 0, "chdir", "failed");
    char directory[PATH_MAX] = {0};
    check(getcwd(directory, sizeof directory) && strcmp(directory, "/tmp/work") == 0, "getcwd follows chdir", "got '%s'",
          directory);
    fd = open("relative", O_CREAT | O_WRONLY, 0644);
    check(fd >= 0 && access("/tmp/work/relative", F_OK) == 0, "relative paths start at the working directory",
          "not found");
    close(fd);
    check(chdir("..") == 0 && getcwd(directory, sizeof directory) && strcmp(directory, "/tmp") == 0,
          "chdir .. goes up", "got '%s'", directory);
    chdir("/");

    check(chmod("/tmp/work/relative", 0600) == 0 && stat("/tmp/work/relative", &status) == 0 &&
              (status.st_mode & 07777) == 0600,
          "chmod", "mode %o", status.st_mode);
    struct timespec times[2] = {{1000000000, 0}, {1100000000, 5}};
    check(utimensat(AT_FDCWD, "/tmp/work/relative", times, 0) == 0 && stat("/tmp/work/relative", &status) == 0 &&
              status.st_mtim.tv_sec == 1100000000 && status.st_atim.tv_sec == 1000000000,
          "utimensat sets times", "mtime %ld", (long)status.st_mtim.tv_sec);
    struct statfs filesystem;
    check(statfs("/tmp", &filesystem) == 0 && filesystem.f_bsize > 0, "statfs /tmp", "failed");
    /* /dev/shm is a tmpfs on Linux, and statfs says so by its magic number. */
    check(statfs("/dev/shm", &filesystem) == 0 && filesystem.f_type == 0x01021994, "statfs /dev/shm is tmpfs",
          "type %lx", (long)filesystem.f_type);

    int source = open("/tmp/work/relative", O_RDWR);
    write(source, "sendfile data", 13);
    int copy = open("/tmp/work/copy", O_CREAT | O_WRONLY, 0644);
    off_t offset = 0;
    check(source >= 0 && copy >= 0 && sendfile(copy, source, &offset, 100) == 13 && offset == 13, "sendfile copies",
          "offset %ld", (long)offset);
    close(source);
    close(copy);
}

static void check_dev(void) {
    int fd = open("/dev/null", O_RDWR);
    char buffer[16];
    check(fd >= 0 && write(fd, "x", 1) == 1 && read(fd, buffer, sizeof buffer) == 0, "/dev/null", "failed");
    close(fd);
    memset(buffer, 1, sizeof buffer);
    fd = open("/dev/zero", O_RDONLY);
    check(fd >= 0 && read(fd, buffer, sizeof buffer) == sizeof buffer && buffer[0] == 0 && buffer[15] == 0, "/dev/zero",
          "failed");
    close(fd);
    unsigned char first[16] = {0}, second[16] = {0};
    fd = open("/dev/urandom", O_RDONLY);
    check(fd >= 0 && read(fd, first, 16) == 16 && read(fd, second, 16) == 16 && memcmp(first, second, 16) != 0,
          "/dev/urandom", "no fresh bytes");
    close(fd);
    fd = open("/dev/tty", O_RDWR);
    struct termios settings;
    check(fd >= 0 && isatty(fd) && tcgetattr(fd, &settings) == 0, "/dev/tty is a terminal", "failed");
    close(fd);
    struct stat standard;
    check(fstat(1, &standard) == 0 && isatty(1) == S_ISCHR(standard.st_mode), "stdout is a terminal exactly when a character device",
          "isatty and fstat disagree");
    fd = open("/tmp/work/copy", O_RDONLY);
    check(!isatty(fd) && errno == ENOTTY, "a file is not a terminal", "isatty said yes");
    close(fd);
    check(FAILS_WITH(open("/dev/nothing", O_RDONLY), ENOENT), "a missing device fails with ENOENT", "wrong result");
    struct stat status;
    check(stat("/dev/null", &status) == 0 && S_ISCHR(status.st_mode), "/dev/null is a character device", "mode %o",
          status.st_mode);
}

static void check_proc(const char *self) {
    char path[PATH_MAX] = {0};
    check(readlink("/proc/self/exe", path, sizeof path - 1) > 0 && strcmp(path, self) == 0, "/proc/self/exe", "got '%s'",
          path);
    check(contains("/proc/self/maps", "[stack]") && contains("/proc/self/maps", self), "/proc/self/maps",
          "no stack or executable");
    int fd = open("/tmp/work/copy", O_RDONLY);
    char link_path[64], target[PATH_MAX] = {0};
    snprintf(link_path, sizeof link_path, "/proc/self/fd/%d", fd);
    check(readlink(link_path, target, sizeof target - 1) > 0 && strcmp(target, "/tmp/work/copy") == 0, "/proc/self/fd links",
          "got '%s'", target);
    check(directory_has("/proc/self/fd", "0") && directory_has("/proc/self/fd", "2"), "/proc/self/fd lists descriptors",
          "entries missing");
    close(fd);
    check(contains("/proc/cpuinfo", "processor"), "/proc/cpuinfo", "no processor");
    check(contains("/proc/meminfo", "MemTotal:"), "/proc/meminfo", "no MemTotal");
    check(contains("/proc/mounts", " /tmp ") && contains("/proc/mounts", " /proc proc "), "/proc/mounts",
          "mounts missing");
    FILE *uptime = fopen("/proc/uptime", "r");
    double seconds = -1;
    check(uptime && fscanf(uptime, "%lf", &seconds) == 1 && seconds >= 0, "/proc/uptime", "read %f", seconds);
    if (uptime)
        fclose(uptime);
}

static void check_root(const char *self) {
    int fd = open(self, O_RDONLY);
    char magic[4] = {0};
    check(fd >= 0 && read(fd, magic, 4) == 4 && memcmp(magic, "\177ELF", 4) == 0, "the executable reads from the root",
          "no ELF magic");
    void *image = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    check(image != MAP_FAILED && memcmp(image, "\177ELF", 4) == 0, "mmap of a file copies its bytes", "mmap failed");
    if (image != MAP_FAILED)
        munmap(image, 8192);
    close(fd);
    check(FAILS_WITH(open(self, O_RDWR), EROFS), "writing the read-only root fails with EROFS", "wrong result");
    check(FAILS_WITH(mkdir("/newdir", 0755), EROFS), "mkdir on the read-only root fails with EROFS", "wrong result");
    check(access(self, X_OK) == 0 && FAILS_WITH(access(self, W_OK), EROFS), "access on the root", "wrong result");
    check(directory_has("/", "dev") && directory_has("/", "proc") && directory_has("/", "tmp") &&
              directory_has("/", strrchr(self, '/') + 1),
          "the root lists its files and mount points", "entries missing");
}

/* ---- reads from several threads at once ---- */

#define READERS 4
#define READ_CHUNK (64 * 1024)

struct reader {
    int fd;
    int index;
    size_t size;
    unsigned char *into;
    int failed;
    ssize_t result;
    int error;
};

/* Reads every READERS-th chunk of the file, so that the readers' requests
 * reach the disk at the same time. */
static void *chunk_reader(void *argument) {
    struct reader *reader = argument;
    for (size_t offset = (size_t)reader->index * READ_CHUNK; offset < reader->size; offset += READERS * READ_CHUNK) {
        size_t length = reader->size - offset < READ_CHUNK ? reader->size - offset : READ_CHUNK;
        ssize_t result = pread(reader->fd, reader->into + offset, length, (off_t)offset);
        if (result != (ssize_t)length && !reader->failed) {
            reader->failed = 1;
            reader->result = result;
            reader->error = errno;
        }
    }
    return NULL;
}

static void check_concurrent_reads(const char *self) {
    int fd = open(self, O_RDONLY);
    struct stat status;
    if (fd < 0 || fstat(fd, &status) != 0 || status.st_size <= 0) {
        check(0, "threads read one file at once", "cannot open the executable");
        return;
    }
    size_t size = (size_t)status.st_size;
    unsigned char *alone = malloc(size), *together = calloc(1, size);
    size_t done = 0;
    ssize_t got;
    while (done < size && (got = read(fd, alone + done, size - done)) > 0)
        done += (size_t)got;
    pthread_t threads[READERS];
    struct reader readers[READERS];
    int started = 0;
    for (int i = 0; i < READERS; i++) {
        readers[i] = (struct reader){fd, i, size, together, 0, 0, 0};
        started += pthread_create(&threads[i], NULL, chunk_reader, &readers[i]) == 0;
    }
    int failed = started != READERS;
    for (int i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        if (readers[i].failed && !failed) {
            errno = readers[i].error;
            printf("reader %d: pread returned %zd\n", i, readers[i].result);
        }
        failed |= readers[i].failed;
    }
    check(done == size && !failed && memcmp(alone, together, size) == 0, "threads read one file at once",
          "%zu of %zu bytes read alone, readers %s", done, size, failed ? "failed" : "disagree");
    free(alone);
    free(together);
    close(fd);
}

/* ---- pipes between threads ---- */

#define PIPE_TOTAL (1 << 20)

static void *pipe_writer(void *argument) {
    int fd = (int)(intptr_t)argument;
    char chunk[3000];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)(i % 251);
    size_t sent = 0;
    while (sent < PIPE_TOTAL) {
        size_t length = PIPE_TOTAL - sent < sizeof chunk ? PIPE_TOTAL - sent : sizeof chunk;
        ssize_t written = write(fd, chunk, length);
        if (written <= 0)
            break;
        sent += (size_t)written;
    }
    close(fd);
    return (void *)sent;
}

static void *late_writer(void *argument) {
    struct timespec nap = {0, 50 * 1000 * 1000};
    nanosleep(&nap, NULL);
    write((int)(intptr_t)argument, "late", 4);
    return NULL;
}

static volatile sig_atomic_t pipe_signals;
static void on_sigpipe(int signal) { pipe_signals += signal == SIGPIPE; }

static void check_pipes(void) {
    int ends[2];
    check(pipe(ends) == 0, "pipe", "failed");
    pthread_t writer;
    pthread_create(&writer, NULL, pipe_writer, (void *)(intptr_t)ends[1]);
    size_t received = 0;
    int in_order = 1;
    char buffer[4096];
    ssize_t got;
    while ((got = read(ends[0], buffer, sizeof buffer)) > 0) {
        for (ssize_t i = 0; i < got; i++)
            if (buffer[i] != (char)(((received + (size_t)i) % 3000) % 251))
                in_order = 0;
        received += (size_t)got;
    }
    void *sent;
    pthread_join(writer, &sent);
    check(received == PIPE_TOTAL && (size_t)sent == PIPE_TOTAL && in_order && got == 0,
          "a pipe carries 1 MiB between threads, then EOF", "received %zu of %zu", received, (size_t)sent);
    close(ends[0]);

    pipe2(ends, O_NONBLOCK);
    check(FAILS_WITH(read(ends[0], buffer, 1), EAGAIN), "an empty O_NONBLOCK pipe fails with EAGAIN", "wrong result");
    struct pollfd entry = {ends[0], POLLIN, 0};
    check(poll(&entry, 1, 0) == 0, "poll sees an empty pipe", "ready");
    write(ends[1], "x", 1);
    check(poll(&entry, 1, 1000) == 1 && (entry.revents & POLLIN), "poll sees data", "revents %x", entry.revents);
    check(FAILS_WITH(lseek(ends[0], 0, SEEK_SET), ESPIPE), "lseek on a pipe fails with ESPIPE", "wrong result");
    close(ends[0]);
    close(ends[1]);

    pipe(ends);
    pthread_t late;
    pthread_create(&late, NULL, late_writer, (void *)(intptr_t)ends[1]);
    memset(buffer, 0, sizeof buffer);
    check(read(ends[0], buffer, sizeof buffer) == 4 && memcmp(buffer, "late", 4) == 0,
          "a blocked read wakes when another thread writes", "read '%s'", buffer);
    pthread_join(late, NULL);
    close(ends[0]);
    struct sigaction action = {0};
    action.sa_handler = on_sigpipe;
    sigaction(SIGPIPE, &action, NULL);
    check(FAILS_WITH(write(ends[1], "x", 1), EPIPE) && pipe_signals == 1, "writing without readers raises SIGPIPE, EPIPE",
          "%d signals", (int)pipe_signals);
    close(ends[1]);
}

static void check_descriptors(void) {
    int fd = open("/tmp/work/copy", O_RDONLY);
    int copy = dup(fd);
    char buffer[8];
    check(copy > fd && read(fd, buffer, 4) == 4 && lseek(copy, 0, SEEK_CUR) == 4, "dup shares the offset", "offset %ld",
          (long)lseek(copy, 0, SEEK_CUR));
    check(dup2(fd, 20) == 20 && fcntl(20, F_GETFD) == 0, "dup2", "failed");
    check(dup3(fd, 21, O_CLOEXEC) == 21 && fcntl(21, F_GETFD) == FD_CLOEXEC, "dup3 with O_CLOEXEC", "flags %d",
          fcntl(21, F_GETFD));
    check(fcntl(fd, F_DUPFD, 30) == 30 && fcntl(fd, F_DUPFD_CLOEXEC, 30) == 31, "F_DUPFD takes the lowest free number",
          "failed");
    check(fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && (fcntl(copy, F_GETFL) & O_NONBLOCK), "status flags are shared",
          "not shared");
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int writable = open("/tmp/work/copy", O_RDWR);
    check(fcntl(writable, F_SETLK, &lock) == 0 && fcntl(writable, F_GETLK, &lock) == 0 && lock.l_type == F_UNLCK,
          "record locks are granted", "failed");
    close(writable);
    check(close(20) == 0 && close(21) == 0 && close(30) == 0 && close(31) == 0 && close(copy) == 0 && close(fd) == 0,
          "close", "failed");
    check(FAILS_WITH(close(fd), EBADF) && FAILS_WITH(read(99, buffer, 1), EBADF), "bad descriptors fail with EBADF",
          "wrong result");
}

static void check_errors(void) {
    check(FAILS_WITH(open("/tmp/missing", O_RDONLY), ENOENT), "a missing file fails with ENOENT", "wrong result");
    check(FAILS_WITH(open("/tmp/work/copy/x", O_RDONLY), ENOTDIR), "a file used as a directory fails with ENOTDIR",
          "wrong result");
    check(FAILS_WITH(open("/tmp", O_WRONLY), EISDIR), "writing a directory fails with EISDIR", "wrong result");
    symlink("/tmp/loop", "/tmp/loop");
    check(FAILS_WITH(open("/tmp/loop", O_RDONLY), ELOOP), "a symlink loop fails with ELOOP", "wrong result");
    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    check(FAILS_WITH(open(long_name, O_RDONLY), ENAMETOOLONG), "a long name fails with ENAMETOOLONG", "wrong result");
    check(FAILS_WITH(rmdir("/tmp/work"), ENOTEMPTY) && FAILS_WITH(rmdir("/tmp/work/copy"), ENOTDIR),
          "rmdir errors", "wrong result");
    check(FAILS_WITH(rename("/tmp/work/copy", "/dev/copy"), EXDEV), "renaming across mounts fails with EXDEV",
          "wrong result");
}

int main(int argc, char **argv) {
    (void)argc;
    check_tmp();
    check_dev();
    check_proc(argv[0]);
    check_root(argv[0]);
    check_concurrent_reads(argv[0]);
    check_pipes();
    check_descriptors();
    check_errors();
    printf("%d checks failed\n", failures);
    return failures;
}
