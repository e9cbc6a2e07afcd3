/* Checks extended attributes on a writable filesystem (ramfs in rosv, the
 * host's /tmp on Linux): setting, reading, listing and removing them by
 * path, without following a symlink and by descriptor; XATTR_CREATE and
 * XATTR_REPLACE; the size queries and ERANGE; Linux's limits and errors for
 * names and values; the user namespace's rules (regular files and
 * directories only, the file's permissions) and trusted attributes for
 * root. Must start as root. Prints one line per check and exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "checks.h"

#define CREATE 1
#define REPLACE 2

/* The calls, made directly so glibc and musl run the same checks. */
static long set(const char *path, const char *name, const void *value, size_t size, int flags) {
    return syscall(SYS_setxattr, path, name, value, size, flags);
}
static long get(const char *path, const char *name, void *value, size_t size) {
    return syscall(SYS_getxattr, path, name, value, size);
}
static long list(const char *path, char *names, size_t size) { return syscall(SYS_listxattr, path, names, size); }
static long removed(const char *path, const char *name) { return syscall(SYS_removexattr, path, name); }

/* Whether the NUL-separated `names` of `length` bytes hold `name`. */
static int lists(const char *names, long length, const char *name) {
    for (long at = 0; at < length; at += (long)strlen(names + at) + 1)
        if (strcmp(names + at, name) == 0)
            return 1;
    return 0;
}

int main(void) {
    const char *base = getenv("TMPDIR");
    char directory[200], file[256], link[256];
    snprintf(directory, sizeof directory, "%s/attributes-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(directory) == NULL) {
        printf("FAIL mkdtemp (errno %d)\n1 checks failed\n", errno);
        return 1;
    }
    snprintf(file, sizeof file, "%s/file", directory);
    snprintf(link, sizeof link, "%s/link", directory);
    int fd = open(file, O_RDWR | O_CREAT, 0644);
    check(fd >= 0 && symlink("file", link) == 0, "set up", "open or symlink failed");

    check(set(file, "user.colour", "blue", 4, 0) == 0, "setxattr user.colour", "failed");
    char value[128] = {0};
    check(get(file, "user.colour", NULL, 0) == 4, "getxattr with size 0 gives the size", "wrong size");
    check(get(file, "user.colour", value, sizeof value) == 4 && memcmp(value, "blue", 4) == 0,
          "getxattr gives the value", "got %s", value);
    check(get(link, "user.colour", value, sizeof value) == 4, "getxattr follows a symlink", "failed");
    errno = 0;
    check(get(file, "user.colour", value, 2) == -1 && errno == ERANGE, "a buffer too small is ERANGE",
          "no ERANGE");
    errno = 0;
    check(set(file, "user.colour", "red", 3, CREATE) == -1 && errno == EEXIST, "XATTR_CREATE of an existing one",
          "no EEXIST");
    errno = 0;
    check(set(file, "user.size", "1", 1, REPLACE) == -1 && errno == ENODATA, "XATTR_REPLACE of a missing one",
          "no ENODATA");
    check(set(file, "user.colour", "red", 3, REPLACE) == 0 && get(file, "user.colour", value, sizeof value) == 3,
          "XATTR_REPLACE replaces", "failed");
    errno = 0;
    check(set(file, "user.colour", "red", 3, CREATE | REPLACE) == -1 && errno == EEXIST,
          "both flags: XATTR_CREATE decides for an existing one", "no EEXIST");
    errno = 0;
    check(set(file, "user.colour", "red", 3, 4) == -1 && errno == EINVAL, "unknown flags are EINVAL", "no EINVAL");
    check(syscall(SYS_fsetxattr, fd, "user.empty", "", 0, 0) == 0 &&
              syscall(SYS_fgetxattr, fd, "user.empty", value, sizeof value) == 0,
          "an empty value, by descriptor", "failed");

    char names[256];
    long length = list(file, names, sizeof names);
    check(length > 0 && lists(names, length, "user.colour") && lists(names, length, "user.empty"),
          "listxattr names them", "length %ld", length);
    check(list(file, NULL, 0) == length, "listxattr with size 0 gives the size", "wrong size");
    errno = 0;
    check(list(file, names, 3) == -1 && errno == ERANGE, "a list buffer too small is ERANGE", "no ERANGE");
    check(syscall(SYS_flistxattr, fd, names, sizeof names) == length, "flistxattr", "different length");

    check(removed(file, "user.empty") == 0, "removexattr", "failed");
    errno = 0;
    check(removed(file, "user.empty") == -1 && errno == ENODATA, "removing it again is ENODATA", "no ENODATA");
    errno = 0;
    check(get(file, "user.empty", value, sizeof value) == -1 && errno == ENODATA, "and it is gone",
          "no ENODATA");

    errno = 0;
    check(set(file, "other.name", "x", 1, 0) == -1 && errno == EOPNOTSUPP, "an unknown namespace is EOPNOTSUPP",
          "no EOPNOTSUPP");
    errno = 0;
    check(set(file, "user.", "x", 1, 0) == -1 && errno == EINVAL, "a bare prefix is EINVAL", "no EINVAL");
    errno = 0;
    check(set(file, "", "x", 1, 0) == -1 && errno == ERANGE, "an empty name is ERANGE", "no ERANGE");
    char long_name[300];
    memset(long_name, 'n', sizeof long_name);
    memcpy(long_name, "user.", 5);
    long_name[256] = 0;
    errno = 0;
    check(set(file, long_name, "x", 1, 0) == -1 && errno == ERANGE, "a name over 255 bytes is ERANGE",
          "no ERANGE");
    static char big[65537];
    errno = 0;
    check(set(file, "user.big", big, sizeof big, 0) == -1 && errno == E2BIG, "a value over 64 KiB is E2BIG",
          "no E2BIG");

    /* user.* only on regular files and directories. */
    errno = 0;
    check(syscall(SYS_lsetxattr, link, "user.x", "x", 1, 0) == -1 && errno == EPERM,
          "user attributes on a symlink are EPERM", "no EPERM");
    errno = 0;
    check(syscall(SYS_lgetxattr, link, "user.x", value, sizeof value) == -1 && errno == ENODATA,
          "and reading them is ENODATA", "no ENODATA");
    check(set(directory, "user.on-directory", "d", 1, 0) == 0, "user attributes on a directory", "failed");
    check(set(file, "trusted.secret", "t", 1, 0) == 0 && get(file, "trusted.secret", value, sizeof value) == 1,
          "trusted attributes for root", "failed");

    /* The file's permissions decide for user.*; trusted.* needs
     * CAP_SYS_ADMIN. */
    check(chmod(directory, 0755) == 0 && setresuid(-1, 1000, -1) == 0, "become uid 1000", "failed");
    check(get(file, "user.colour", value, sizeof value) == 3, "others read a readable file's attributes",
          "failed");
    errno = 0;
    check(set(file, "user.colour", "x", 1, 0) == -1 && errno == EACCES,
          "others cannot change a file they cannot write", "no EACCES");
    errno = 0;
    check(get(file, "trusted.secret", value, sizeof value) == -1 && errno == ENODATA,
          "trusted attributes are hidden from others", "no ENODATA");
    length = list(file, names, sizeof names);
    check(length > 0 && !lists(names, length, "trusted.secret") && lists(names, length, "user.colour"),
          "and missing from their listings", "length %ld", length);
    check(setresuid(-1, 0, -1) == 0, "back to root", "setresuid failed");

    close(fd);
    unlink(link);
    unlink(file);
    check(rmdir(directory) == 0, "the test directory is left empty", "rmdir failed");
    printf("\n%d checks failed\n", failures);
    return failures;
}
