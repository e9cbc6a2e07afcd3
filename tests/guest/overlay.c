/* Checks the writable root: an overlay over the image. The image holds
 * /image/keep.txt ("keep\n"), /image/rename.txt ("rename\n"),
 * /image/remove.txt, /image/dir/a.txt ("a\n") and /image/dir/sub/b.txt
 * ("b\n"). The program changes, renames and removes those files and makes
 * new ones in /, and checks what it reads, lists and stats afterwards,
 * including the inotify events of the changes. Prints "<n> checks failed"
 * and exits with that count. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "checks.h"

#define FAILS_WITH(call, error) ((call) == -1 && errno == (error))

/* Whether the file at `path` holds exactly `expected`. */
static int holds(const char *path, const char *expected) {
    char buffer[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t length = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    return length == (ssize_t)strlen(expected) && memcmp(buffer, expected, (size_t)length) == 0;
}

static int write_file(const char *path, int flags, const char *text) {
    int fd = open(path, O_WRONLY | flags, 0644);
    if (fd < 0)
        return -1;
    ssize_t written = write(fd, text, strlen(text));
    close(fd);
    return written == (ssize_t)strlen(text) ? 0 : -1;
}

/* How many times `directory` lists `name` (readdir, not lookup). */
static int listed(const char *directory, const char *name) {
    DIR *listing = opendir(directory);
    if (!listing)
        return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(listing)))
        count += strcmp(entry->d_name, name) == 0;
    closedir(listing);
    return count;
}

static void check_copy_up(void) {
    struct stat before, after;
    check(stat("/image/keep.txt", &before) == 0 && holds("/image/keep.txt", "keep\n"), "an image file reads through",
          "wrong contents");
    int reader = open("/image/keep.txt", O_RDONLY);
    check(write_file("/image/keep.txt", O_APPEND, "more\n") == 0, "appending to an image file", "write failed");
    check(holds("/image/keep.txt", "keep\nmore\n"), "the change reads back", "wrong contents");
    char buffer[16] = {0};
    check(reader >= 0 && read(reader, buffer, sizeof buffer - 1) == 10 && strcmp(buffer, "keep\nmore\n") == 0,
          "a descriptor opened before the change sees it", "read '%s'", buffer);
    close(reader);
    check(stat("/image/keep.txt", &after) == 0 && after.st_ino == before.st_ino && after.st_dev == before.st_dev,
          "the copy keeps the inode number", "%lu became %lu", (unsigned long)before.st_ino,
          (unsigned long)after.st_ino);
    check(chmod("/image/dir/a.txt", 0600) == 0 && stat("/image/dir/a.txt", &after) == 0 &&
              (after.st_mode & 07777) == 0600 && holds("/image/dir/a.txt", "a\n"),
          "chmod copies an image file up with its contents", "mode %o", after.st_mode);
    check(setxattr("/image/dir/sub/b.txt", "user.tag", "x", 1, 0) == 0 && holds("/image/dir/sub/b.txt", "b\n"),
          "setxattr copies up", "failed");
    char names[256] = {0};
    check(listxattr("/image/dir/sub/b.txt", names, sizeof names) == 9 && strcmp(names, "user.tag") == 0,
          "only the program's attributes show", "listed '%s'", names);
    int fd = open("/image/dir/sub/b.txt", O_RDWR);
    char *mapped = fd >= 0 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (mapped != MAP_FAILED) {
        mapped[0] = 'B';
        munmap(mapped, 4096);
    }
    close(fd);
    check(mapped != MAP_FAILED && holds("/image/dir/sub/b.txt", "B\n"), "a shared mapping writes the copy",
          "wrong contents");
}

static void check_new_files_and_removal(void) {
    check(write_file("/new.txt", O_CREAT | O_EXCL, "new\n") == 0 && holds("/new.txt", "new\n"),
          "a new file in the root", "failed");
    check(mkdir("/image/dir/made", 0755) == 0 && write_file("/image/dir/made/f", O_CREAT, "f\n") == 0,
          "a new directory in an image directory", "failed");
    check(unlink("/image/remove.txt") == 0 && FAILS_WITH(access("/image/remove.txt", F_OK), ENOENT) &&
              listed("/image", "remove.txt") == 0,
          "removing an image file hides it", "still there");
    check(write_file("/image/remove.txt", O_CREAT | O_EXCL, "again\n") == 0 && holds("/image/remove.txt", "again\n") &&
              listed("/image", "remove.txt") == 1,
          "a removed name can be made again", "failed");
    check(FAILS_WITH(rmdir("/image/dir/sub"), ENOTEMPTY), "an image directory with files is not empty", "removed");
    check(unlink("/image/dir/sub/b.txt") == 0 && rmdir("/image/dir/sub") == 0 && listed("/image/dir", "sub") == 0,
          "an emptied image directory goes", "failed");
    check(mkdir("/image/dir/sub", 0700) == 0 && listed("/image/dir/sub", "b.txt") == 0 &&
              FAILS_WITH(access("/image/dir/sub/b.txt", F_OK), ENOENT),
          "a directory made again starts empty", "old entries show");
    check(listed("/image/dir", "a.txt") == 1 && listed("/image/dir", "made") == 1 && listed("/image", "keep.txt") == 1,
          "listings hold each name once", "wrong counts");
}

static void check_renames_and_links(void) {
    struct stat before, after;
    stat("/image/rename.txt", &before);
    check(rename("/image/rename.txt", "/renamed.txt") == 0 && holds("/renamed.txt", "rename\n") &&
              FAILS_WITH(access("/image/rename.txt", F_OK), ENOENT) && listed("/image", "rename.txt") == 0,
          "an image file moves to another directory", "failed");
    check(stat("/renamed.txt", &after) == 0 && after.st_ino == before.st_ino, "a moved file keeps its number",
          "changed");
    check(rename("/new.txt", "/image/keep.txt") == 0 && holds("/image/keep.txt", "new\n"),
          "a new file replaces an image file", "failed");
    check(FAILS_WITH(rename("/image/dir", "/moved-dir"), EXDEV), "an image directory does not move (EXDEV)",
          "wrong result");
    check(rename("/image/dir/made", "/made") == 0 && holds("/made/f", "f\n"), "a new directory moves", "failed");
    check(link("/image/dir/a.txt", "/a-link") == 0 && stat("/a-link", &after) == 0 && after.st_nlink == 2 &&
              stat("/image/dir/a.txt", &before) == 0 && before.st_ino == after.st_ino,
          "a hard link to an image file", "links %lu", (unsigned long)after.st_nlink);
    check(symlink("/made/f", "/image/f-link") == 0 && holds("/image/f-link", "f\n"), "a symlink in an image directory",
          "failed");
}

static void check_unnamed_files_and_statfs(void) {
    int fd = open("/image", O_TMPFILE | O_RDWR, 0600);
    check(fd >= 0 && write(fd, "unnamed\n", 8) == 8, "O_TMPFILE in an image directory", "failed");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    check(linkat(AT_FDCWD, path, AT_FDCWD, "/image/named.txt", AT_SYMLINK_FOLLOW) == 0 &&
              holds("/image/named.txt", "unnamed\n"),
          "an O_TMPFILE file gets a name", "failed");
    close(fd);
    struct statfs figures;
    check(statfs("/", &figures) == 0 && figures.f_type == 0x794c7630 && figures.f_bfree > 0, "statfs of the root",
          "type %lx", (unsigned long)figures.f_type);
}

static void check_events(void) {
    int watcher = inotify_init1(IN_NONBLOCK);
    int watch = inotify_add_watch(watcher, "/image", IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_TO);
    check(watch >= 0, "watching an image directory", "failed");
    write_file("/image/events.txt", O_CREAT, "x");
    unlink("/image/dir/a.txt");
    unlink("/image/events.txt");
    char buffer[4096] __attribute__((aligned(8)));
    ssize_t length = read(watcher, buffer, sizeof buffer);
    int created = 0, modified = 0, deleted = 0;
    for (ssize_t at = 0; at < length;) {
        struct inotify_event *event = (struct inotify_event *)(buffer + at);
        if (event->len && strcmp(event->name, "events.txt") == 0) {
            created += (event->mask & IN_CREATE) != 0;
            modified += (event->mask & IN_MODIFY) != 0;
            deleted += (event->mask & IN_DELETE) != 0;
        }
        at += (ssize_t)sizeof *event + event->len;
    }
    check(created == 1 && modified == 1 && deleted == 1, "inotify reports changes made through the overlay",
          "create %d modify %d delete %d", created, modified, deleted);
    close(watcher);
}

int main(void) {
    check_copy_up();
    check_new_files_and_removal();
    check_renames_and_links();
    check_unnamed_files_and_statfs();
    check_events();
    printf("%d checks failed\n", failures);
    return failures;
}
