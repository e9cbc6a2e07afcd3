/* Works a disk filesystem the way a program that keeps data does.
 *
 *   disk-tree tree ROOT DIRECTORIES FILES
 *       makes ROOT/dK/fN (K < DIRECTORIES, N < FILES), each holding
 *       content(name); renames every even one to rN and removes every
 *       odd one; fsyncs each directory and the filesystem; then prints
 *       "entry dK/NAME SIZE" for every entry, in listing order, and
 *       "tree done".
 *   disk-tree churn ROOT
 *       forever: writes ROOT/churn/tI, fsyncs it, renames it to kI,
 *       fsyncs the directory and prints "synced churn/kI SIZE"; writes
 *       ROOT/churn/jI and removes jI-1. The host stops the machine at
 *       some moment: every file it saw reported must be whole.
 *
 * content(name) is SIZE bytes, SIZE = 100 + 37 * (hash % 200), each byte
 * (hash + offset) % 251, hash being FNV-1a of the name. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t hash(const char *name) {
    uint32_t value = 2166136261u;
    for (; *name; name++)
        value = (value ^ (unsigned char)*name) * 16777619u;
    return value;
}

static size_t content(const char *name, char *buffer) {
    uint32_t value = hash(name);
    size_t size = 100 + 37 * (value % 200);
    for (size_t offset = 0; offset < size; offset++)
        buffer[offset] = (char)((value + offset) % 251);
    return size;
}

static void fail(const char *what, const char *path) {
    printf("FAIL %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

/* Writes content(name) to path and fsyncs it when asked; returns the size. */
static size_t write_file(const char *path, const char *name, int syncs) {
    static char buffer[8192];
    size_t size = content(name, buffer);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail("open", path);
    if (write(fd, buffer, size) != (ssize_t)size)
        fail("write", path);
    if (syncs && fsync(fd) != 0)
        fail("fsync", path);
    close(fd);
    return size;
}

static void sync_directory(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0)
        fail("fsync directory", path);
    close(fd);
}

static int tree(const char *root, int directories, int files) {
    char path[512], target[512], name[64];
    for (int directory = 0; directory < directories; directory++) {
        snprintf(path, sizeof path, "%s/d%d", root, directory);
        if (mkdir(path, 0755) != 0)
            fail("mkdir", path);
        for (int file = 0; file < files; file++) {
            snprintf(name, sizeof name, "f%d", file);
            snprintf(path, sizeof path, "%s/d%d/f%d", root, directory, file);
            write_file(path, name, 0);
            if (file % 2 == 0) {
                snprintf(target, sizeof target, "%s/d%d/r%d", root, directory, file);
                if (rename(path, target) != 0)
                    fail("rename", path);
            } else if (unlink(path) != 0) {
                fail("unlink", path);
            }
        }
        snprintf(path, sizeof path, "%s/d%d", root, directory);
        sync_directory(path);
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || syncfs(fd) != 0)
        fail("syncfs", root);
    close(fd);
    for (int directory = 0; directory < directories; directory++) {
        snprintf(path, sizeof path, "%s/d%d", root, directory);
        DIR *listing = opendir(path);
        if (!listing)
            fail("opendir", path);
        struct dirent *entry;
        while ((entry = readdir(listing))) {
            if (entry->d_name[0] == '.')
                continue;
            snprintf(target, sizeof target, "%s/d%d/%s", root, directory, entry->d_name);
            struct stat status;
            if (stat(target, &status) != 0)
                fail("stat", target);
            /* Each holds what its first name gave it. */
            char expected[8192], actual[8192];
            snprintf(name, sizeof name, "f%s", entry->d_name + 1);
            size_t size = content(name, expected);
            int file = open(target, O_RDONLY);
            if (file < 0 || read(file, actual, sizeof actual) != (ssize_t)size || memcmp(actual, expected, size))
                fail("contents", target);
            close(file);
            printf("entry d%d/%s %lld\n", directory, entry->d_name, (long long)status.st_size);
        }
        closedir(listing);
    }
    printf("tree done\n");
    return 0;
}

static int churn(const char *root) {
    char directory[256], path[512], target[512], name[64];
    snprintf(directory, sizeof directory, "%s/churn", root);
    if (mkdir(directory, 0755) != 0 && errno != EEXIST)
        fail("mkdir", directory);
    sync_directory(root);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("churn started\n");
    for (long index = 0;; index++) {
        snprintf(path, sizeof path, "%s/t%ld", directory, index);
        snprintf(name, sizeof name, "k%ld", index);
        size_t size = write_file(path, name, 1);
        snprintf(target, sizeof target, "%s/k%ld", directory, index);
        if (rename(path, target) != 0)
            fail("rename", path);
        sync_directory(directory);
        printf("synced churn/k%ld %zu\n", index, size);
        snprintf(path, sizeof path, "%s/j%ld", directory, index);
        snprintf(name, sizeof name, "j%ld", index);
        write_file(path, name, 0);
        if (index > 0) {
            snprintf(path, sizeof path, "%s/j%ld", directory, index - 1);
            if (unlink(path) != 0)
                fail("unlink", path);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "tree") == 0)
        return tree(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "churn") == 0)
        return churn(argv[2]);
    fprintf(stderr, "usage: disk-tree tree ROOT DIRECTORIES FILES | disk-tree churn ROOT\n");
    return 2;
}
