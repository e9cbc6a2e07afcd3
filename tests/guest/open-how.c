/* Checks openat2: struct open_how of every size rule (EINVAL below the
 * first version, E2BIG for nonzero bytes past it, EFAULT), strict flags
 * and mode, and the RESOLVE_* limits of the path walk: NO_SYMLINKS and
 * NO_MAGICLINKS (ELOOP), NO_XDEV across a mount (EXDEV), BENEATH (EXDEV
 * for absolute paths, symlinks and ".." above the directory), IN_ROOT
 * (the directory is "/" and ".." stops there), CACHED with O_CREAT
 * (EAGAIN). Passes on Linux. One line per check; exits with the number of
 * failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checks.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

#define NO_XDEV 0x01
#define NO_MAGICLINKS 0x02
#define NO_SYMLINKS 0x04
#define BENEATH 0x08
#define IN_ROOT 0x10
#define CACHED 0x20

static int open2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct how how = {flags, mode, resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Whether openat2 failed with `expected`; closes what it opened. */
static int fails_with(int result, int expected) {
    if (result >= 0) {
        close(result);
        return 0;
    }
    return errno == expected;
}

static int opened(int result) {
    if (result < 0) {
        return 0;
    }
    close(result);
    return 1;
}

static void check_sizes(int directory) {
    struct {
        struct how how;
        uint64_t extra;
    } bigger = {{O_RDONLY, 0, 0}, 0};
    check(opened((int)syscall(SYS_openat2, directory, "file", &bigger, sizeof bigger)), "larger_zeroed_how",
          "errno %d", errno);
    bigger.extra = 1;
    errno = 0;
    check(fails_with((int)syscall(SYS_openat2, directory, "file", &bigger, sizeof bigger), E2BIG),
          "nonzero_tail_is_e2big", "errno %d", errno);
    errno = 0;
    check(fails_with((int)syscall(SYS_openat2, directory, "file", &bigger.how, 16), EINVAL), "short_how_is_einval",
          "errno %d", errno);
    errno = 0;
    check(fails_with((int)syscall(SYS_openat2, directory, "file", &bigger.how, 8192), E2BIG),
          "huge_how_is_e2big", "errno %d", errno);
    errno = 0;
    check(fails_with((int)syscall(SYS_openat2, directory, "file", (void *)8, sizeof(struct how)), EFAULT),
          "bad_how_is_efault", "errno %d", errno);
}

static void check_flags(int directory) {
    errno = 0;
    check(fails_with(open2(directory, "file", O_RDONLY, 0600, 0), EINVAL), "mode_without_create_is_einval",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "new", O_RDWR | O_CREAT, 010000, 0), EINVAL), "bad_mode_is_einval",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "file", O_RDONLY | (1ULL << 40), 0, 0), EINVAL), "unknown_flag_is_einval",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "file", O_RDONLY, 0, 0x4000), EINVAL), "unknown_resolve_is_einval",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "file", O_RDONLY, 0, BENEATH | IN_ROOT), EINVAL),
          "beneath_and_in_root_is_einval", "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "file", O_PATH | O_RDWR, 0, 0), EINVAL), "path_with_access_is_einval",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "created", O_RDWR | O_CREAT, 0600, CACHED), EAGAIN),
          "cached_create_is_eagain", "errno %d", errno);
    check(opened(open2(directory, "created", O_RDWR | O_CREAT, 0640, 0)), "create", "errno %d", errno);
    struct stat status;
    check(fstatat(directory, "created", &status, 0) == 0 && (status.st_mode & 0777) == (0640 & ~umask(022)),
          "create_mode", "mode %o", status.st_mode);
}

static void check_resolve(int directory) {
    check(opened(open2(directory, "link", O_RDONLY, 0, 0)), "symlink_followed", "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "link", O_RDONLY, 0, NO_SYMLINKS), ELOOP), "no_symlinks_is_eloop",
          "errno %d", errno);
    check(opened(open2(directory, "link", O_PATH | O_NOFOLLOW, 0, NO_SYMLINKS)), "no_symlinks_nofollow_opens",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "/proc/self/exe", O_RDONLY, 0, NO_MAGICLINKS), ELOOP),
          "no_magiclinks_is_eloop", "errno %d", errno);
    check(opened(open2(directory, "/proc/self/exe", O_RDONLY, 0, 0)), "magiclink_followed",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(AT_FDCWD, "/proc/version", O_RDONLY, 0, NO_XDEV), EXDEV), "no_xdev_is_exdev",
          "errno %d", errno);
    check(opened(open2(directory, "sub/file", O_RDONLY, 0, NO_XDEV)), "no_xdev_same_mount_opens", "errno %d",
          errno);
    errno = 0;
    check(fails_with(open2(directory, "/proc/version", O_RDONLY, 0, BENEATH), EXDEV), "beneath_absolute_is_exdev",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "../outside", O_RDONLY, 0, BENEATH), EXDEV), "beneath_dotdot_is_exdev",
          "errno %d", errno);
    errno = 0;
    check(fails_with(open2(directory, "absolute-link", O_RDONLY, 0, BENEATH), EXDEV),
          "beneath_absolute_link_is_exdev", "errno %d", errno);
    check(opened(open2(directory, "sub/../file", O_RDONLY, 0, BENEATH)), "beneath_inside_opens", "errno %d",
          errno);
    errno = 0;
    check(fails_with(open2(directory, "/proc/version", O_RDONLY, 0, IN_ROOT), ENOENT), "in_root_absolute_is_inside",
          "errno %d", errno);
    check(opened(open2(directory, "/file", O_RDONLY, 0, IN_ROOT)), "in_root_slash_is_directory", "errno %d",
          errno);
    check(opened(open2(directory, "../../file", O_RDONLY, 0, IN_ROOT)), "in_root_dotdot_stops", "errno %d",
          errno);
    check(opened(open2(directory, "absolute-in-root", O_RDONLY, 0, IN_ROOT)), "in_root_absolute_link_is_inside",
          "errno %d", errno);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char base[] = "/tmp/open-how-XXXXXX";
    check(mkdtemp(base) != NULL, "mkdtemp", "failed");
    char path[128];
    snprintf(path, sizeof path, "%s/dir", base);
    check(mkdir(path, 0755) == 0, "mkdir", "failed");
    int directory = open(path, O_RDONLY | O_DIRECTORY);
    check(directory >= 0, "open_directory", "failed");
    close(openat(directory, "file", O_CREAT | O_WRONLY, 0644));
    check(mkdirat(directory, "sub", 0755) == 0, "mkdir_sub", "failed");
    close(openat(directory, "sub/file", O_CREAT | O_WRONLY, 0644));
    snprintf(path, sizeof path, "%s/outside", base);
    close(open(path, O_CREAT | O_WRONLY, 0644));
    check(symlinkat("file", directory, "link") == 0, "symlink", "failed");
    check(symlinkat("/proc/version", directory, "absolute-link") == 0, "symlink_absolute", "failed");
    check(symlinkat("/sub/file", directory, "absolute-in-root") == 0, "symlink_in_root", "failed");
    if (syscall(SYS_openat2, AT_FDCWD, "/", NULL, 0) == -1 && errno == ENOSYS) {
        skip("openat2", "the kernel has no openat2");
    } else {
        check_sizes(directory);
        check_flags(directory);
        check_resolve(directory);
    }
    const char *names[] = {"file", "sub/file", "link", "absolute-link", "absolute-in-root", "created"};
    for (unsigned index = 0; index < sizeof names / sizeof names[0]; index++) {
        unlinkat(directory, names[index], 0);
    }
    unlinkat(directory, "sub", AT_REMOVEDIR);
    close(directory);
    snprintf(path, sizeof path, "%s/outside", base);
    unlink(path);
    snprintf(path, sizeof path, "%s/dir", base);
    rmdir(path);
    rmdir(base);
    printf("%d checks failed\n", failures);
    return failures;
}
