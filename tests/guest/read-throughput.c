/* A benchmark, not a test: reads the file named by argv[1] from start to
 * end with read() and buffers of 4 KiB, 64 KiB and 1 MiB, three passes
 * each, and prints the best time per MiB of each buffer size as
 * "read with <size> buffers: <ns> ns". Exits 0, or 1 if the file cannot be
 * read. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Reads the whole file with `size`-byte reads; returns the bytes read, or
 * -1 on an error. */
static long long read_all(const char *path, char *buffer, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long long total = 0;
    ssize_t got;
    while ((got = read(fd, buffer, size)) > 0)
        total += got;
    close(fd);
    return got < 0 ? -1 : total;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 1;
    }
    static const size_t sizes[] = {4096, 65536, 1 << 20};
    static const char *names[] = {"4 KiB", "64 KiB", "1 MiB"};
    char *buffer = malloc(1 << 20);
    for (int which = 0; which < 3; which++) {
        double best = 0;
        for (int pass = 0; pass < 3; pass++) {
            int64_t start = monotonic_ns();
            long long total = read_all(argv[1], buffer, sizes[which]);
            int64_t elapsed = monotonic_ns() - start;
            if (total <= 0) {
                fprintf(stderr, "cannot read %s\n", argv[1]);
                return 1;
            }
            double per_mib = (double)elapsed / ((double)total / (1 << 20));
            if (pass == 0 || per_mib < best)
                best = per_mib;
        }
        printf("read with %s buffers: %.1f ns\n", names[which], best);
    }
    return 0;
}
