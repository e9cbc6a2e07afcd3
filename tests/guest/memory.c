/* Checks how the kernel's memory behaves at its limits: mappings larger
 * than RAM, sparse files, files that fill RAM, thread stacks that run out,
 * memory given back when files and threads go. One line per check; exits
 * with the number of failed checks. Meant for a guest of 64-256 MiB. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "checks.h"

/* A /proc/meminfo field, in KiB (-1 if missing). */
static long meminfo(const char *field) {
    FILE *file = fopen("/proc/meminfo", "r");
    char line[256];
    long value = -1;
    size_t length = strlen(field);
    while (file && fgets(line, sizeof line, file)) {
        if (strncmp(line, field, length) == 0 && line[length] == ':') {
            value = atol(line + length + 1);
        }
    }
    if (file) {
        fclose(file);
    }
    return value;
}

static void check_meminfo(void) {
    long total = meminfo("MemTotal"), free = meminfo("MemFree"), available = meminfo("MemAvailable");
    check(total > 0 && free > 0 && free <= total, "meminfo_figures", "total %ld free %ld", total, free);
    check(available > 0 && available <= free, "meminfo_available", "available %ld free %ld", available, free);
}

static void check_mappings_larger_than_ram(void) {
    size_t total = (size_t)meminfo("MemTotal") * 1024;
    void *huge = mmap(NULL, 2 * total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check(huge == MAP_FAILED && errno == ENOMEM, "mmap_more_than_ram", "mmap of 2 x RAM gave %p", huge);
    void *reserved =
        mmap(NULL, 2 * total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    check(reserved != MAP_FAILED, "mmap_noreserve_more_than_ram", "MAP_NORESERVE refused");
    if (reserved != MAP_FAILED) {
        munmap(reserved, 2 * total);
    }
    void *block = malloc(2 * total);
    check(block == NULL, "malloc_more_than_ram", "malloc of 2 x RAM gave %p", block);
    free(block);
}

static void check_populate_runs_out(void) {
    enum { CHUNK = 1 << 20, MAX_CHUNKS = 4096 };
    static void *chunks[MAX_CHUNKS];
    /* The buffer written to tmpfs below is made resident first: with RAM
     * used up, the first touch of a page of it would need a frame that is
     * not there, and the process would be ended, as Linux's OOM killer
     * would end it, before the write could say anything. */
    static char page[65536];
    memset(page, 1, sizeof page);
    int count = 0;
    while (count < MAX_CHUNKS) {
        void *chunk = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (chunk == MAP_FAILED) {
            break;
        }
        chunks[count++] = chunk;
    }
    int saved = errno;
    long total_kib = meminfo("MemTotal");
    check(count < MAX_CHUNKS && saved == ENOMEM, "populate_until_enomem", "%d MiB, errno %d", count, saved);
    check(count * 1024L >= total_kib * 85 / 100, "populate_most_of_ram", "%d MiB of %ld KiB", count, total_kib);
    /* With RAM used up, a write to tmpfs takes what memory is left and
     * says so: all of it, a short count (as Linux's generic write returns
     * what it copied before an allocation failed), then ENOSPC or ENOMEM;
     * never a crash or a hang. How much is left after the chunks depends
     * on the kernel's own size. */
    int fd = open("/tmp/after-populate", O_CREAT | O_RDWR | O_TRUNC, 0600);
    errno = 0;
    ssize_t written = write(fd, page, sizeof page);
    int first_errno = errno;
    int is_whole = written == sizeof page;
    int is_refused = written < 0 && (first_errno == ENOSPC || first_errno == ENOMEM);
    int is_short = written > 0 && written < (ssize_t)sizeof page;
    if (is_short) {
        errno = 0;
        ssize_t rest = write(fd, page + written, sizeof page - (size_t)written);
        is_short = rest < 0 && (errno == ENOSPC || errno == ENOMEM);
    }
    check(is_whole || is_refused || is_short, "write_when_memory_is_short", "write gave %zd (errno %d)", written,
          first_errno);
    close(fd);
    unlink("/tmp/after-populate");
    for (int index = 0; index < count; index++) {
        munmap(chunks[index], CHUNK);
    }
    void *again = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    check(again != MAP_FAILED, "memory_comes_back_after_munmap", "mmap failed");
    if (again != MAP_FAILED) {
        munmap(again, CHUNK);
    }
}

static void check_sparse_files(void) {
    const off_t far = 0x19274d17b36d09b4LL;
    int fd = open("/tmp/sparse", O_CREAT | O_RDWR | O_TRUNC, 0600);
    check(write(fd, "abcd", 4) == 4, "sparse_write", "write failed");
    check(ftruncate(fd, far) == 0, "ftruncate_far", "ftruncate failed");
    struct stat status;
    fstat(fd, &status);
    check(status.st_size == far && status.st_blocks <= 8, "sparse_size", "size %lld blocks %lld",
          (long long)status.st_size, (long long)status.st_blocks);
    check(pwrite(fd, "xyz", 3, far) == 3, "pwrite_far", "pwrite failed");
    char buffer[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    check(pread(fd, buffer, 8, far - 5) == 8 && memcmp(buffer, "\0\0\0\0\0xyz", 8) == 0, "hole_reads_zero",
          "pread gave other bytes");
    errno = 0;
    ssize_t past = pwrite(fd, "x", 1, INT64_MAX);
    check(past == -1 && errno == EFBIG, "pwrite_past_largest_file", "pwrite gave %zd", past);
    errno = 0;
    check(ftruncate(fd, -1) == -1 && errno == EINVAL, "ftruncate_negative", "ftruncate(-1) accepted");
    close(fd);
    unlink("/tmp/sparse");
}

static void check_files_fill_ram(void) {
    static char chunk[1 << 16];
    memset(chunk, 7, sizeof chunk);
    struct statfs before;
    statfs("/tmp", &before);
    check(before.f_blocks > 0 && before.f_bfree > 0, "tmp_statfs", "blocks %lld free %lld",
          (long long)before.f_blocks, (long long)before.f_bfree);
    int fd = open("/tmp/filler", O_CREAT | O_RDWR | O_TRUNC, 0600);
    long long total = 0;
    ssize_t written;
    while ((written = write(fd, chunk, sizeof chunk)) > 0) {
        total += written;
    }
    check(written == -1 && errno == ENOSPC, "file_fills_to_enospc", "write gave %zd after %lld bytes", written,
          total);
    check(total >= (long long)before.f_bfree * before.f_bsize * 8 / 10, "file_takes_most_free_memory",
          "%lld of %lld bytes", total, (long long)before.f_bfree * before.f_bsize);
    close(fd);
    unlink("/tmp/filler");
    struct statfs after;
    statfs("/tmp", &after);
    /* The kernel's heap may have grown meanwhile, and keeps what it took. */
    check(after.f_bfree + 512 >= before.f_bfree, "unlink_gives_memory_back", "free %lld, was %lld",
          (long long)after.f_bfree, (long long)before.f_bfree);
}

static void *sleeper(void *unused) {
    for (;;) {
        sleep(1000);
    }
    return unused;
}

static void *quick(void *argument) {
    return argument;
}

static void check_threads_run_out(void) {
    enum { MAX_THREADS = 20000 };
    static pthread_t threads[MAX_THREADS];
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 65536);
    int count = 0, error = 0;
    while (count < MAX_THREADS && (error = pthread_create(&threads[count], &attributes, sleeper, NULL)) == 0) {
        count++;
    }
    check(error == EAGAIN || error == ENOMEM, "pthread_create_runs_out", "%d threads, error %d", count, error);
    for (int index = 0; index < count; index++) {
        pthread_cancel(threads[index]);
        pthread_join(threads[index], NULL);
    }
    long free_before = meminfo("MemFree");
    int made = 0;
    for (; made < 300; made++) {
        pthread_t thread;
        if (pthread_create(&thread, &attributes, quick, NULL) != 0) {
            break;
        }
        pthread_join(thread, NULL);
    }
    long free_after = meminfo("MemFree");
    check(made == 300, "threads_after_running_out", "only %d of 300", made);
    check(free_after + 2048 >= free_before, "ended_threads_free_their_memory", "free %ld KiB, was %ld KiB",
          free_after, free_before);
}

int main(void) {
    check_meminfo();
    check_mappings_larger_than_ram();
    check_sparse_files();
    check_files_fill_ram();
    check_populate_runs_out();
    check_threads_run_out();
    printf("%d checks failed\n", failures);
    return failures;
}
