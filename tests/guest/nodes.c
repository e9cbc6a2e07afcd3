/* Checks the nodes mknod makes on a writable filesystem: named pipes that
 * work as pipes between opens (opens that wait for the other side, ENXIO
 * for a writer without readers, data dropped when the last end closes),
 * device nodes that open the kernel's devices by number (and ENXIO for a
 * number no driver has), socket nodes, regular files, and Linux's errors
 * (directories, unknown types, existing names, devices without
 * CAP_MKNOD), and pipes, sockets and eventfds opened again through
 * /proc/self/fd (bash's "<(...)" as /dev/fd/63). Must start as root. Prints one line per check and exits with
 * the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

static char directory[200];
static char fifo[256];

static void sleep_ms(long milliseconds) {
    struct timespec time = {milliseconds / 1000, (milliseconds % 1000) * 1000000};
    nanosleep(&time, NULL);
}

static volatile int reader_fd = -2;

static void *open_reader(void *unused) {
    (void)unused;
    reader_fd = open(fifo, O_RDONLY);
    return NULL;
}

static void check_fifos(void) {
    struct stat status = {0};
    check(mkfifo(fifo, 0640) == 0 && stat(fifo, &status) == 0 && S_ISFIFO(status.st_mode) &&
              (status.st_mode & 07777) == 0640 && status.st_size == 0,
          "mkfifo makes a named pipe", "mode %o", status.st_mode);
    errno = 0;
    check(open(fifo, O_WRONLY | O_NONBLOCK) == -1 && errno == ENXIO,
          "a nonblocking writer without readers is ENXIO", "no ENXIO");
    int both = open(fifo, O_RDWR);
    check(both >= 0 && write(both, "abc", 3) == 3, "O_RDWR opens at once and writes", "failed");
    int reading = open(fifo, O_RDONLY | O_NONBLOCK);
    char buffer[16];
    check(reading >= 0 && read(reading, buffer, sizeof buffer) == 3 && memcmp(buffer, "abc", 3) == 0,
          "another open reads what was written", "failed");
    errno = 0;
    check(read(reading, buffer, sizeof buffer) == -1 && errno == EAGAIN, "then the pipe is empty", "no EAGAIN");
    check(write(both, "left", 4) == 4, "data left behind", "write failed");
    close(reading);
    close(both);
    both = open(fifo, O_RDWR | O_NONBLOCK);
    errno = 0;
    check(both >= 0 && read(both, buffer, sizeof buffer) == -1 && errno == EAGAIN,
          "is gone once every end closed", "no EAGAIN");
    close(both);

    pthread_t thread;
    pthread_create(&thread, NULL, open_reader, NULL);
    sleep_ms(200);
    check(reader_fd == -2, "a reader's open waits for a writer", "returned %d", reader_fd);
    int writing = open(fifo, O_WRONLY);
    pthread_join(thread, NULL);
    check(writing >= 0 && reader_fd >= 0, "and ends when one opens", "writer %d reader %d", writing, reader_fd);
    check(write(writing, "xyz", 3) == 3 && read(reader_fd, buffer, sizeof buffer) == 3, "data flows", "failed");
    close(writing);
    check(read(reader_fd, buffer, sizeof buffer) == 0, "and ends when the writer closes", "no end of file");
    close(reader_fd);
    unlink(fifo);
}

static void check_devices(void) {
    char path[256];
    struct stat status = {0};
    snprintf(path, sizeof path, "%s/null", directory);
    check(mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0 && stat(path, &status) == 0 &&
              S_ISCHR(status.st_mode) && status.st_rdev == makedev(1, 3),
          "mknod makes a character device node", "rdev %lx", (unsigned long)status.st_rdev);
    int fd = open(path, O_RDWR);
    char buffer[8] = {1, 1, 1, 1};
    check(fd >= 0 && write(fd, "gone", 4) == 4 && read(fd, buffer, sizeof buffer) == 0,
          "it opens the null device", "failed");
    close(fd);
    unlink(path);
    snprintf(path, sizeof path, "%s/zero", directory);
    check(mknod(path, S_IFCHR | 0444, makedev(1, 5)) == 0, "a node for the zero device", "mknod failed");
    fd = open(path, O_RDONLY);
    check(fd >= 0 && read(fd, buffer, 4) == 4 && memcmp(buffer, "\0\0\0\0", 4) == 0, "reads zeros", "failed");
    close(fd);
    unlink(path);
    snprintf(path, sizeof path, "%s/nothing", directory);
    check(mknod(path, S_IFCHR | 0600, makedev(250, 251)) == 0, "a node for a device no driver has",
          "mknod failed");
    errno = 0;
    check(open(path, O_RDONLY) == -1 && errno == ENXIO, "opening it is ENXIO", "no ENXIO");
    unlink(path);

    snprintf(path, sizeof path, "%s/socket", directory);
    check(mknod(path, S_IFSOCK | 0600, 0) == 0 && stat(path, &status) == 0 && S_ISSOCK(status.st_mode),
          "mknod makes a socket node", "failed");
    errno = 0;
    check(open(path, O_RDONLY) == -1 && errno == ENXIO, "which cannot be opened", "no ENXIO");
    unlink(path);
    snprintf(path, sizeof path, "%s/regular", directory);
    check(mknod(path, 0644, 0) == 0 && stat(path, &status) == 0 && S_ISREG(status.st_mode) &&
              status.st_size == 0,
          "mknod without a type makes a regular file", "failed");
    errno = 0;
    check(mknod(path, S_IFIFO | 0600, 0) == -1 && errno == EEXIST, "an existing name is EEXIST", "no EEXIST");
    unlink(path);
    errno = 0;
    check(mknod(path, S_IFDIR | 0700, 0) == -1 && errno == EPERM, "a directory is EPERM", "no EPERM");
    errno = 0;
    check(mknod(path, S_IFMT | 0700, 0) == -1 && errno == EINVAL, "an unknown type is EINVAL", "no EINVAL");

    check(chmod(directory, 0777) == 0 && setresuid(-1, 1000, -1) == 0, "become uid 1000", "failed");
    errno = 0;
    check(mknod(path, S_IFCHR | 0600, makedev(1, 3)) == -1 && errno == EPERM,
          "a device node without CAP_MKNOD is EPERM", "no EPERM");
    check(mknod(path, S_IFIFO | 0600, 0) == 0 && stat(path, &status) == 0 && status.st_uid == 1000,
          "anyone makes a named pipe, owned by them", "failed");
    unlink(path);
    check(setresuid(-1, 0, -1) == 0, "back to root", "setresuid failed");
}

/* Opening /proc/self/fd/N opens an anonymous pipe again as a FIFO opens;
 * sockets and anonymous inodes refuse with ENXIO. */
static void check_reopened(void) {
    int ends[2];
    if (pipe(ends) != 0) {
        check(0, "pipe", "failed");
        return;
    }
    char path[64], buffer[8] = {0};
    snprintf(path, sizeof path, "/proc/self/fd/%d", ends[0]);
    struct stat status;
    check(stat(path, &status) == 0 && S_ISFIFO(status.st_mode) && (status.st_mode & 0777) == 0600,
          "a pipe's descriptor link leads to a FIFO of mode 0600", "mode %o", status.st_mode);
    int reader = open(path, O_RDONLY);
    snprintf(path, sizeof path, "/dev/fd/%d", ends[1]);
    int writer = open(path, O_WRONLY);
    check(reader >= 0 && writer >= 0 && reader != ends[0] && writer != ends[1],
          "a pipe's ends open again through /proc/self/fd and /dev/fd", "%d %d", reader, writer);
    check(write(writer, "via", 3) == 3 && read(ends[0], buffer, sizeof buffer) == 3 && memcmp(buffer, "via", 3) == 0,
          "the reopened writing end writes into the same pipe", "read '%s'", buffer);
    check(write(ends[1], "back", 4) == 4 && read(reader, buffer, sizeof buffer) == 4 && memcmp(buffer, "back", 4) == 0,
          "the reopened reading end reads from the same pipe", "read '%s'", buffer);
    close(writer);
    close(ends[1]);
    check(read(reader, buffer, sizeof buffer) == 0 && read(ends[0], buffer, sizeof buffer) == 0,
          "both reading ends see the end once every writer closed", "data left");
    snprintf(path, sizeof path, "/proc/self/fd/%d", ends[0]);
    int late = open(path, O_RDONLY);
    check(late >= 0 && read(late, buffer, sizeof buffer) == 0,
          "a reading end without writers opens without waiting, at its end", "open failed");
    close(late);
    close(reader);
    close(ends[0]);
    if (pipe(ends) == 0) {
        close(ends[0]);
        snprintf(path, sizeof path, "/proc/self/fd/%d", ends[1]);
        writer = open(path, O_WRONLY | O_NONBLOCK);
        check(writer >= 0, "a writing end without readers opens without ENXIO", "open failed");
        close(writer);
        close(ends[1]);
    }
    int counter = eventfd(0, 0), sock = socket(AF_INET, SOCK_STREAM, 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", counter);
    errno = 0;
    check(open(path, O_RDWR) == -1 && errno == ENXIO, "an eventfd does not open through its link (ENXIO)",
          "errno %d", errno);
    snprintf(path, sizeof path, "/proc/self/fd/%d", sock);
    errno = 0;
    check(open(path, O_RDWR) == -1 && errno == ENXIO, "a socket does not open through its link (ENXIO)",
          "errno %d", errno);
    close(counter);
    close(sock);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/nodes-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(directory) == NULL) {
        printf("FAIL mkdtemp (errno %d)\n1 checks failed\n", errno);
        return 1;
    }
    umask(022);
    snprintf(fifo, sizeof fifo, "%s/fifo", directory);
    check_fifos();
    check_devices();
    check_reopened();
    check(rmdir(directory) == 0, "the test directory is left empty", "rmdir failed");
    printf("\n%d checks failed\n", failures);
    return failures;
}
