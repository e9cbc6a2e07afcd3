/* Checks chroot: its errors in Linux's order (the path's own errors, then
 * search permission, then CAP_SYS_CHROOT), and that afterwards absolute
 * paths, absolute symlinks and ".." stay inside the new root, while a
 * descriptor opened before still reaches outside. Must start as root.
 * Prints one line per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checks.h"

int main(void) {
    const char *base = getenv("TMPDIR");
    char parent[200], root[256], path[300];
    snprintf(parent, sizeof parent, "%s", base != NULL ? base : "/tmp");
    snprintf(root, sizeof root, "%s/chroot-XXXXXX", parent);
    if (mkdtemp(root) == NULL) {
        printf("FAIL mkdtemp (errno %d)\n1 checks failed\n", errno);
        return 1;
    }
    const char *name = strrchr(root, '/') + 1;
    snprintf(path, sizeof path, "%s/inside", root);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    check(fd >= 0 && write(fd, "in", 2) == 2 && close(fd) == 0, "a file inside", "failed");
    snprintf(path, sizeof path, "%s/sub", root);
    check(mkdir(path, 0755) == 0, "a directory inside", "failed");
    snprintf(path, sizeof path, "%s/sub/absolute", root);
    check(symlink("/inside", path) == 0, "an absolute symlink inside", "failed");
    snprintf(path, sizeof path, "%s/closed", root);
    check(mkdir(path, 0700) == 0, "a directory only root may search", "failed");

    snprintf(path, sizeof path, "%s/inside", root);
    errno = 0;
    check(chroot(path) == -1 && errno == ENOTDIR, "chroot of a file is ENOTDIR", "no ENOTDIR");
    snprintf(path, sizeof path, "%s/missing", root);
    errno = 0;
    check(chroot(path) == -1 && errno == ENOENT, "chroot of a missing path is ENOENT", "no ENOENT");
    errno = 0;
    check(chroot((const char *)8) == -1 && errno == EFAULT, "chroot of a bad address is EFAULT", "no EFAULT");
    check(chmod(root, 0755) == 0 && setresuid(-1, 1000, -1) == 0, "become uid 1000", "failed");
    snprintf(path, sizeof path, "%s/closed", root);
    errno = 0;
    check(chroot(path) == -1 && errno == EACCES, "without search permission: EACCES before EPERM", "no EACCES");
    errno = 0;
    check(chroot(root) == -1 && errno == EPERM, "without CAP_SYS_CHROOT: EPERM", "no EPERM");
    errno = 0;
    check(chdir(path) == -1 && errno == EACCES, "chdir needs search permission too", "no EACCES");

    check(setresuid(-1, 0, -1) == 0, "back to root", "setresuid failed");

    int outside = open(parent, O_RDONLY | O_DIRECTORY);
    check(chroot(root) == 0 && chdir("/") == 0, "chroot and chdir to the new root", "failed");
    char text[8] = {0};
    fd = open("/inside", O_RDONLY);
    check(fd >= 0 && read(fd, text, sizeof text) == 2 && strcmp(text, "in") == 0, "absolute paths start inside",
          "failed");
    close(fd);
    struct stat top, above, through;
    check(stat("/", &top) == 0 && stat("/..", &above) == 0 && stat("/sub/../..", &through) == 0 &&
              top.st_ino == above.st_ino && top.st_ino == through.st_ino,
          "\"..\" stays at the new root", "inodes differ");
    fd = open("/sub/absolute", O_RDONLY);
    check(fd >= 0, "absolute symlinks resolve inside", "failed");
    close(fd);
    char cwd[256];
    check(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, "/") == 0, "getcwd names the new root", "%s", cwd);
    struct stat escaped;
    check(fstatat(outside, name, &escaped, 0) == 0 && escaped.st_ino == top.st_ino,
          "a descriptor from before still reaches outside", "failed");

    /* Clean up through the old directory. */
    check(unlinkat(outside, "inside", 0) == -1, "names outside are relative to that descriptor", "unlinked");
    char relative[300];
    const char *leaves[] = {"inside", "sub/absolute"};
    for (int index = 0; index < 2; index++) {
        snprintf(relative, sizeof relative, "%s/%s", name, leaves[index]);
        unlinkat(outside, relative, 0);
    }
    const char *directories[] = {"sub", "closed"};
    for (int index = 0; index < 2; index++) {
        snprintf(relative, sizeof relative, "%s/%s", name, directories[index]);
        unlinkat(outside, relative, AT_REMOVEDIR);
    }
    check(unlinkat(outside, name, AT_REMOVEDIR) == 0, "the test directory is left empty", "rmdir failed");
    printf("\n%d checks failed\n", failures);
    return failures;
}
