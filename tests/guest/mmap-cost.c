/* A benchmark, not a test: the time of mmap + a store + munmap of one page
 * while 1,000, 10,000 and 60,000 other mappings exist (Linux allows 65,530
 * by default), printed as "mmap+touch+munmap with N mappings: T ns" lines.
 * Neighbouring mappings get different rights, so that none merge. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return time.tv_sec * 1000000000LL + time.tv_nsec;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    static const int counts[] = {1000, 10000, 60000};
    for (unsigned which = 0; which < sizeof counts / sizeof counts[0]; which++) {
        int count = counts[which];
        char **live = malloc(sizeof(char *) * count);
        for (int index = 0; index < count; index++) {
            int rights = index % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
            live[index] = mmap(NULL, 4096, rights, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (live[index] == MAP_FAILED) {
                perror("mmap");
                return 1;
            }
        }
        long long start = now_ns();
        for (int round = 0; round < rounds; round++) {
            volatile char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (page == MAP_FAILED) {
                perror("mmap");
                return 1;
            }
            page[0] = 1;
            munmap((void *)page, 4096);
        }
        long long elapsed = now_ns() - start;
        printf("mmap+touch+munmap with %d mappings: %lld ns\n", count, elapsed / rounds);
        for (int index = 0; index < count; index++) {
            munmap(live[index], 4096);
        }
        free(live);
    }
    return 0;
}
