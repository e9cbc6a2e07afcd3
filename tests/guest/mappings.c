/* Checks file mappings and shared memory: MAP_SHARED coherence with read,
 * write and other mappings, private copies, msync, mremap, madvise,
 * mincore, memfd_create with seals, shm_open and System V shared memory.
 * One line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checks.h"

#define PAGE 4096

static int temporary_file(const char *name, const char *contents, size_t size) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/%s", name);
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd >= 0 && size > 0) {
        if (ftruncate(fd, size) != 0 || pwrite(fd, contents, strlen(contents), 0) < 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void check_shared_coherence(void) {
    int fd = temporary_file("shared", "hello, mappings", 2 * PAGE);
    char *first = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *second = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check(first != MAP_FAILED && second != MAP_FAILED && first != second, "shared_maps", "mmap failed");
    if (first == MAP_FAILED || second == MAP_FAILED) {
        return;
    }
    check(memcmp(first, "hello, mappings", 15) == 0, "shared_sees_file", "got %.15s", first);
    memcpy(first + PAGE, "stored", 6);
    check(memcmp(second + PAGE, "stored", 6) == 0, "shared_sees_other_mapping", "got %.6s", second + PAGE);
    char buffer[8] = {0};
    check(pread(fd, buffer, 6, PAGE) == 6 && memcmp(buffer, "stored", 6) == 0, "read_sees_shared_store",
          "read %.6s", buffer);
    check(pwrite(fd, "WRITTEN", 7, 100) == 7 && memcmp(first + 100, "WRITTEN", 7) == 0, "shared_sees_write",
          "mapping has %.7s", first + 100);
    check(msync(first, 2 * PAGE, MS_SYNC) == 0, "msync_sync", "msync failed");
    check(msync(first, PAGE, MS_ASYNC | MS_SYNC) == -1 && errno == EINVAL, "msync_bad_flags", "accepted");
    check(msync(first + 1, PAGE, MS_SYNC) == -1 && errno == EINVAL, "msync_unaligned", "accepted");
    munmap(first, 2 * PAGE);
    munmap(second, 2 * PAGE);
    close(fd);
    unlink("/tmp/shared");
}

static void check_private_copies(void) {
    int fd = temporary_file("private", "original", PAGE);
    char *private = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *shared = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    if (private == MAP_FAILED || shared == MAP_FAILED) {
        check(0, "private_maps", "mmap failed");
        return;
    }
    memcpy(private, "CHANGED!", 8);
    char buffer[9] = {0};
    pread(fd, buffer, 8, 0);
    check(memcmp(buffer, "original", 8) == 0 && memcmp(shared, "original", 8) == 0, "private_store_stays_private",
          "file has %s", buffer);
    check(madvise(private, PAGE, MADV_DONTNEED) == 0 && memcmp(private, "original", 8) == 0,
          "dontneed_gives_file_back", "got %.8s", private);
    /* After DONTNEED a private page that was never written follows the file. */
    pwrite(fd, "rewrite!", 8, 0);
    check(memcmp(private, "rewrite!", 8) == 0, "untouched_private_page_follows_file", "got %.8s", private);
    char *anonymous = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    anonymous[0] = 'x';
    check(madvise(anonymous, PAGE, MADV_DONTNEED) == 0 && anonymous[0] == 0, "dontneed_zeroes_anonymous",
          "got %d", anonymous[0]);
    munmap(anonymous, PAGE);
    munmap(private, PAGE);
    munmap(shared, PAGE);
    close(fd);
    unlink("/tmp/private");
}

static sigjmp_buf bus_escape;

static void on_bus_error(int signal) {
    siglongjmp(bus_escape, signal);
}

static void check_bus_error_past_the_end(void) {
    int fd = temporary_file("short", "x", 100);
    char *mapping = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    struct sigaction action = {0}, previous;
    action.sa_handler = on_bus_error;
    sigaction(SIGBUS, &action, &previous);
    volatile int caught = sigsetjmp(bus_escape, 1);
    if (caught == 0) {
        volatile char byte = mapping[PAGE];
        (void)byte;
    }
    check(caught == SIGBUS, "sigbus_past_end_of_file", "signal %d", caught);
    sigaction(SIGBUS, &previous, NULL);
    munmap(mapping, 2 * PAGE);
    close(fd);
    unlink("/tmp/short");
}

static void check_mremap(void) {
    char *block = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(block, "keep me");
    strcpy(block + PAGE, "and me");
    char *moved = mremap(block, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    check(moved != MAP_FAILED && strcmp(moved, "keep me") == 0 && strcmp(moved + PAGE, "and me") == 0,
          "mremap_grow_keeps_contents", "mremap gave %p", moved);
    if (moved == MAP_FAILED) {
        return;
    }
    moved[63 * PAGE] = 'z';
    char *shrunk = mremap(moved, 64 * PAGE, PAGE, 0);
    check(shrunk == moved, "mremap_shrink_in_place", "gave %p for %p", shrunk, moved);
    char *neighbour = mmap(moved + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    errno = 0;
    check(neighbour == moved + PAGE && mremap(moved, PAGE, 2 * PAGE, 0) == MAP_FAILED && errno == ENOMEM,
          "mremap_cannot_grow_into_a_neighbour", "neighbour %p, errno %d", neighbour, errno);
    munmap(neighbour, PAGE);
    check(mremap(moved, PAGE, 2 * PAGE, 0) == moved, "mremap_grows_in_place", "did not");
    check(mremap(moved, 2 * PAGE, PAGE, 0) == moved, "mremap_shrinks_back", "did not");
    char *target = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *fixed = mremap(moved, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + PAGE);
    check(fixed == target + PAGE && strcmp(fixed, "keep me") == 0, "mremap_fixed", "gave %p", fixed);
    /* Through syscall(): glibc passes the fifth argument with MREMAP_FIXED only. */
    char *kept = (char *)syscall(SYS_mremap, fixed, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    check(kept != MAP_FAILED && strcmp(kept, "keep me") == 0 && fixed[0] == 0, "mremap_dontunmap",
          "gave %p, old page holds %d", kept, fixed[0]);
    errno = 0;
    check(mremap(fixed, PAGE, PAGE, MREMAP_FIXED, target) == MAP_FAILED && errno == EINVAL,
          "mremap_fixed_needs_maymove", "errno %d", errno);
    unsigned char residency[4];
    check(mincore(target, 4 * PAGE, residency) == 0 && residency[1] == 1, "mincore_reports_mapped_page",
          "page 1: %d", residency[1]);
    errno = 0;
    check(mincore(target + 1, PAGE, residency) == -1 && errno == EINVAL, "mincore_unaligned", "errno %d", errno);
    munmap(target, 4 * PAGE);
    if (kept != MAP_FAILED) {
        munmap(kept, PAGE);
    }
    errno = 0;
    check(mincore(target, PAGE, residency) == -1 && errno == ENOMEM, "mincore_unmapped", "errno %d", errno);
}

static void check_memfd(void) {
    int fd = (int)syscall(SYS_memfd_create, "rosv-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    check(fd >= 0, "memfd_create", "failed");
    if (fd < 0) {
        return;
    }
    check(ftruncate(fd, PAGE) == 0 && write(fd, "sealed?", 7) == 7, "memfd_write", "failed");
    char *mapping = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check(mapping != MAP_FAILED && memcmp(mapping, "sealed?", 7) == 0, "memfd_maps", "mapping %p", mapping);
    if (mapping != MAP_FAILED) {
        munmap(mapping, PAGE);
    }
    check(fcntl(fd, F_GET_SEALS) == 0, "memfd_starts_unsealed", "seals %d", fcntl(fd, F_GET_SEALS));
    check(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0, "memfd_add_seals",
          "failed");
    errno = 0;
    check(write(fd, "x", 1) == -1 && errno == EPERM, "sealed_write_refused", "errno %d", errno);
    errno = 0;
    check(ftruncate(fd, 2 * PAGE) == -1 && errno == EPERM, "sealed_grow_refused", "errno %d", errno);
    errno = 0;
    check(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM,
          "sealed_writable_mapping_refused", "errno %d", errno);
    check(mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) != MAP_FAILED, "sealed_readable_mapping", "refused");
    check(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0, "seal_the_seals", "failed");
    errno = 0;
    check(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == -1 && errno == EPERM, "no_seals_after_seal_seal",
          "errno %d", errno);
    close(fd);
    int unsealable = (int)syscall(SYS_memfd_create, "plain", 0);
    errno = 0;
    check(fcntl(unsealable, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM, "memfd_without_sealing",
          "errno %d", errno);
    close(unsealable);
    errno = 0;
    check(syscall(SYS_memfd_create, "bad", 0x100) == -1 && errno == EINVAL, "memfd_bad_flags", "errno %d",
          errno);
}

static void check_shm_open(void) {
    int fd = shm_open("/rosv-test", O_CREAT | O_RDWR | O_EXCL, 0600);
    check(fd >= 0, "shm_open", "failed");
    if (fd < 0) {
        return;
    }
    ftruncate(fd, PAGE);
    int other = shm_open("/rosv-test", O_RDWR, 0);
    char *first = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *second = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
    strcpy(first, "through shm");
    check(second != MAP_FAILED && strcmp(second, "through shm") == 0, "shm_open_shares", "got %s", second);
    munmap(first, PAGE);
    munmap(second, PAGE);
    close(fd);
    close(other);
    check(shm_unlink("/rosv-test") == 0, "shm_unlink", "failed");
}

static void check_system_v(void) {
    int id = shmget(IPC_PRIVATE, 3 * PAGE, IPC_CREAT | 0600);
    check(id >= 0, "shmget", "failed");
    if (id < 0) {
        return;
    }
    char *first = shmat(id, NULL, 0);
    char *second = shmat(id, NULL, 0);
    check(first != (void *)-1 && second != (void *)-1 && first != second, "shmat_twice", "failed");
    if (first == (void *)-1 || second == (void *)-1) {
        return;
    }
    strcpy(first + 2 * PAGE, "system five");
    check(strcmp(second + 2 * PAGE, "system five") == 0, "shmat_shares", "got %s", second + 2 * PAGE);
    struct shmid_ds status;
    int stat_result = shmctl(id, IPC_STAT, &status);
    check(stat_result == 0 && status.shm_segsz == 3 * PAGE && status.shm_nattch == 2,
          "shmctl_stat", "size %zu, attached %lu", (size_t)status.shm_segsz, (unsigned long)status.shm_nattch);
    check(shmdt(first) == 0, "shmdt", "failed");
    check(shmctl(id, IPC_RMID, NULL) == 0, "shmctl_rmid", "failed");
    check(strcmp(second + 2 * PAGE, "system five") == 0, "removed_segment_lives_while_attached", "lost");
    check(shmdt(second) == 0, "shmdt_last", "failed");
    errno = 0;
    check(shmat(id, NULL, 0) == (void *)-1 && errno == EINVAL, "removed_segment_is_gone", "errno %d", errno);
    key_t key = 0x5eed;
    int keyed = shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600);
    errno = 0;
    check(keyed >= 0 && shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0600) == -1 && errno == EEXIST,
          "shmget_exclusive", "errno %d", errno);
    check(shmget(key, PAGE, 0) == keyed, "shmget_finds_key", "different id");
    errno = 0;
    check(shmget(key, 2 * PAGE, 0) == -1 && errno == EINVAL, "shmget_too_large_for_key", "errno %d", errno);
    shmctl(keyed, IPC_RMID, NULL);
    errno = 0;
    check(shmget(0x5eee, PAGE, 0) == -1 && errno == ENOENT, "shmget_missing_key", "errno %d", errno);
}

int main(void) {
    check_shared_coherence();
    check_private_copies();
    check_bus_error_past_the_end();
    check_mremap();
    check_memfd();
    check_shm_open();
    check_system_v();
    printf("%d checks failed\n", failures);
    return failures;
}
