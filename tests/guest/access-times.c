/* Checks access times: on a tmpfs mounted with the default policy
 * (relatime) a read or a directory listing updates an access time that is
 * older than the last modification, and leaves a newer one; strictatime
 * updates it always, noatime never, nodiratime never for directories;
 * mmap counts as a read; a
 * description opened with O_NOATIME leaves it; the update does not move
 * the change time. Run as root (it mounts): one line per check, then
 * "<n> checks failed", exit status the count. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

#define MOUNT_POINT "/tmp/access-times"

/* Sets the access time of `path` `offset` seconds from its modification
 * time. */
static void set_access_time(const char *path, long offset) {
    struct stat status;
    stat(path, &status);
    struct timespec times[2] = {{status.st_mtime + offset, 0}, {0, UTIME_OMIT}};
    utimensat(AT_FDCWD, path, times, 0);
}

static time_t access_time(const char *path) {
    struct stat status;
    return stat(path, &status) == 0 ? status.st_atime : -1;
}

static void read_file(const char *path, int open_flags) {
    char buffer[16];
    int fd = open(path, O_RDONLY | open_flags);
    if (fd >= 0) {
        if (read(fd, buffer, sizeof buffer) < 0) {
            buffer[0] = 0;
        }
        close(fd);
    }
}

static void list_directory(const char *path) {
    DIR *directory = opendir(path);
    if (directory != NULL) {
        while (readdir(directory) != NULL) {
        }
        closedir(directory);
    }
}

/* Mounts a tmpfs with `flags`, makes a file and a directory in it, and
 * says whether reads and listings update an old and a future access time. */
static void check_policy(const char *name, unsigned long flags, int updates_old, int updates_future,
                         int updates_directory) {
    if (mount("tmpfs", MOUNT_POINT, "tmpfs", flags, NULL) != 0) {
        check(0, name, "mount failed");
        return;
    }
    const char *file = MOUNT_POINT "/file";
    const char *directory = MOUNT_POINT "/directory";
    int fd = open(file, O_CREAT | O_WRONLY, 0644);
    check(fd >= 0 && write(fd, "contents", 8) == 8, "write_file", "errno %d", errno);
    close(fd);
    mkdir(directory, 0755);
    char label[96];

    set_access_time(file, -1000);
    time_t before = access_time(file);
    read_file(file, 0);
    snprintf(label, sizeof label, "%s_read_of_old_atime", name);
    check((access_time(file) > before) == updates_old, label, "before %ld after %ld", (long)before,
          (long)access_time(file));

    set_access_time(file, 1000);
    before = access_time(file);
    read_file(file, 0);
    snprintf(label, sizeof label, "%s_read_of_future_atime", name);
    check((access_time(file) != before) == updates_future, label, "before %ld after %ld", (long)before,
          (long)access_time(file));

    set_access_time(file, -1000);
    before = access_time(file);
    int mapped_fd = open(file, O_RDONLY);
    void *mapping = mmap(NULL, 4096, PROT_READ, MAP_SHARED, mapped_fd, 0);
    snprintf(label, sizeof label, "%s_mmap_of_old_atime", name);
    check(mapping != MAP_FAILED && (access_time(file) > before) == updates_old, label, "before %ld after %ld",
          (long)before, (long)access_time(file));
    if (mapping != MAP_FAILED) {
        munmap(mapping, 4096);
    }
    close(mapped_fd);

    set_access_time(directory, -1000);
    before = access_time(directory);
    list_directory(directory);
    snprintf(label, sizeof label, "%s_listing", name);
    check((access_time(directory) > before) == updates_directory, label, "before %ld after %ld", (long)before,
          (long)access_time(directory));

    if (updates_old) {
        set_access_time(file, -1000);
        before = access_time(file);
        struct stat status;
        stat(file, &status);
        struct timespec change = status.st_ctim;
        sleep(1);
        read_file(file, O_NOATIME);
        snprintf(label, sizeof label, "%s_o_noatime_read", name);
        check(access_time(file) == before, label, "before %ld after %ld", (long)before, (long)access_time(file));
        read_file(file, 0);
        stat(file, &status);
        snprintf(label, sizeof label, "%s_read_keeps_ctime", name);
        check(status.st_ctim.tv_sec == change.tv_sec && status.st_ctim.tv_nsec == change.tv_nsec &&
                  status.st_atime > before,
              label, "ctime moved or atime kept");
    }
    unlink(file);
    rmdir(directory);
    check(umount(MOUNT_POINT) == 0, "umount", "errno %d", errno);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        skip("access_times", "needs root");
        printf("0 checks failed\n");
        return 0;
    }
    mkdir(MOUNT_POINT, 0755);
    check_policy("relatime", 0, 1, 0, 1);
    check_policy("strictatime", MS_STRICTATIME, 1, 1, 1);
    check_policy("noatime", MS_NOATIME, 0, 0, 0);
    check_policy("nodiratime", MS_NODIRATIME, 1, 0, 0);
    rmdir(MOUNT_POINT);
    printf("%d checks failed\n", failures);
    return failures;
}
