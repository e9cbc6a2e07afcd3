/* Measures how fast bytes move between two threads through a TCP
 * connection over the loopback, a local stream socket and a pipe, with
 * 4 KiB and 64 KiB writes. Prints "name: N ns" lines, N the nanoseconds per
 * MiB moved (the best of three runs). Takes the MiB per run as its
 * argument (default 64). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000LL + now.tv_nsec;
}

struct drain {
    int fd;
    long long total;
};

/* Reads until the end of the stream. */
static void *drain(void *argument) {
    struct drain *drain = argument;
    static char buffer[256 * 1024];
    ssize_t got;
    while ((got = read(drain->fd, buffer, sizeof buffer)) > 0) {
        drain->total += got;
    }
    return NULL;
}

/* A connected TCP pair over the loopback: ends[0] writes, ends[1] reads. */
static int tcp_pair(int ends[2]) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &length) != 0) {
        return -1;
    }
    ends[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(ends[0], (struct sockaddr *)&address, sizeof address) != 0) {
        return -1;
    }
    ends[1] = accept(listener, NULL, NULL);
    close(listener);
    return ends[1] < 0 ? -1 : 0;
}

/* Moves `mib` MiB through a fresh pair of `kind` in writes of `chunk`
 * bytes; returns the nanoseconds per MiB, or -1. */
static double run(const char *kind, long mib, size_t chunk) {
    int ends[2];
    int made;
    if (strcmp(kind, "tcp") == 0) {
        made = tcp_pair(ends);
    } else if (strcmp(kind, "local") == 0) {
        made = socketpair(AF_UNIX, SOCK_STREAM, 0, ends);
    } else {
        int pipe_ends[2];
        made = pipe(pipe_ends);
        ends[0] = pipe_ends[1];
        ends[1] = pipe_ends[0];
    }
    if (made != 0) {
        return -1;
    }
    struct drain reader = {.fd = ends[1]};
    pthread_t thread;
    pthread_create(&thread, NULL, drain, &reader);
    char *buffer = calloc(1, chunk);
    long long total = mib << 20;
    long long start = now_ns();
    for (long long sent = 0; sent < total;) {
        ssize_t written = write(ends[0], buffer, chunk);
        if (written <= 0) {
            return -1;
        }
        sent += written;
    }
    close(ends[0]);
    pthread_join(thread, NULL);
    long long elapsed = now_ns() - start;
    close(ends[1]);
    free(buffer);
    return reader.total == total ? (double)elapsed / (double)mib : -1;
}

int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 64;
    const char *kinds[] = {"tcp", "local", "pipe"};
    const char *names[] = {"tcp loopback", "local stream", "pipe"};
    size_t chunks[] = {4096, 65536};
    for (int kind = 0; kind < 3; kind++) {
        for (int size = 0; size < 2; size++) {
            double best = -1;
            for (int attempt = 0; attempt < 3; attempt++) {
                double result = run(kinds[kind], mib, chunks[size]);
                if (result < 0) {
                    fprintf(stderr, "%s failed\n", names[kind]);
                    return 1;
                }
                if (best < 0 || result < best) {
                    best = result;
                }
            }
            printf("%s %zu KiB: %.1f ns\n", names[kind], chunks[size] / 1024, best);
        }
    }
    return 0;
}
