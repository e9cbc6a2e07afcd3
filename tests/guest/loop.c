/* Checks loop devices: /dev/loop-control finds, adds and removes them;
 * a device bound to a file (LOOP_SET_FD, LOOP_CONFIGURE) reads and writes
 * the file's bytes, reports them (LOOP_GET_STATUS64, BLKGETSIZE64,
 * BLKSSZGET), follows its window (offset, size limit, LOOP_SET_CAPACITY)
 * and block size; Linux's errors for an unbound device, a bound one, a
 * directory and bad flags; /proc/filesystems lists ext4; /sys/block and
 * /sys/dev/block describe the device (size, ro, dev, stat counting
 * writes, loop/backing_file, offset, size limit). Passes on Linux
 * as root. One line per check; exits with the number of failed checks. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "checks.h"

/* Linux's loop and block device interface (include/uapi/linux/loop.h and
 * fs.h), stated here because musl's headers leave them out. */
#define LOOP_SET_FD 0x4C00
#define LOOP_CLR_FD 0x4C01
#define LOOP_SET_STATUS64 0x4C04
#define LOOP_GET_STATUS64 0x4C05
#define LOOP_SET_CAPACITY 0x4C07
#define LOOP_SET_BLOCK_SIZE 0x4C09
#define LOOP_CONFIGURE 0x4C0A
#define LOOP_CTL_ADD 0x4C80
#define LOOP_CTL_REMOVE 0x4C81
#define LOOP_CTL_GET_FREE 0x4C82
#define LO_FLAGS_READ_ONLY 1
#define BLKSSZGET 0x1268
#define BLKGETSIZE64 0x80081272

struct loop_info64 {
    uint64_t lo_device;
    uint64_t lo_inode;
    uint64_t lo_rdevice;
    uint64_t lo_offset;
    uint64_t lo_sizelimit;
    uint32_t lo_number;
    uint32_t lo_encrypt_type;
    uint32_t lo_encrypt_key_size;
    uint32_t lo_flags;
    uint8_t lo_file_name[64];
    uint8_t lo_crypt_name[64];
    uint8_t lo_encrypt_key[32];
    uint64_t lo_init[2];
};

struct loop_config {
    uint32_t fd;
    uint32_t block_size;
    struct loop_info64 info;
    uint64_t reserved[8];
};

#define FILE_BYTES (64 * 1024)

static char backing_path[64];

static int make_backing(void) {
    snprintf(backing_path, sizeof backing_path, "/tmp/loop-check-%d", (int)getpid());
    int fd = open(backing_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        return -1;
    }
    static unsigned char bytes[FILE_BYTES];
    for (int index = 0; index < FILE_BYTES; index++) {
        bytes[index] = (unsigned char)(index % 251);
    }
    if (write(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes) {
        close(fd);
        return -1;
    }
    return fd;
}

static int open_loop(int number, int flags) {
    char path[32];
    snprintf(path, sizeof path, "/dev/loop%d", number);
    return open(path, flags);
}

/* The text of /sys/block/loop<number>/<name>, without its newline; empty
 * when it cannot be read. */
static const char *block_file(int number, const char *name) {
    static char text[256];
    char path[96];
    snprintf(path, sizeof path, "/sys/block/loop%d/%s", number, name);
    text[0] = 0;
    int fd = open(path, O_RDONLY);
    ssize_t length = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
    text[length > 0 ? length : 0] = 0;
    if (fd >= 0) {
        close(fd);
    }
    char *newline = strchr(text, '\n');
    if (newline && newline[1] == 0) {
        *newline = 0;
    }
    return text;
}

/* Sectors written and milliseconds busy, from the device's stat file. */
static int block_stat(int number, unsigned long long *sectors_written, unsigned long long *busy_ms) {
    return sscanf(block_file(number, "stat"), "%*u %*u %*u %*u %*u %*u %llu %*u %*u %llu", sectors_written,
                  busy_ms) == 2;
}

static void check_filesystems_list(void) {
    FILE *list = fopen("/proc/filesystems", "r");
    char line[128];
    int has_ext4 = 0, has_tmpfs_nodev = 0;
    while (list && fgets(line, sizeof line, list)) {
        has_ext4 |= strcmp(line, "\text4\n") == 0;
        has_tmpfs_nodev |= strcmp(line, "nodev\ttmpfs\n") == 0;
    }
    if (list) {
        fclose(list);
    }
    check(has_ext4 && has_tmpfs_nodev, "proc_filesystems", "ext4 %d, tmpfs %d", has_ext4, has_tmpfs_nodev);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_filesystems_list();
    int control = open("/dev/loop-control", O_RDWR);
    if (control < 0 && getuid() != 0) {
        skip("loop_devices", "not root");
        printf("0 checks failed\n");
        return 0;
    }
    check(control >= 0, "open_control", "open /dev/loop-control");
    struct stat status;
    check(fstat(control, &status) == 0 && S_ISCHR(status.st_mode) && major(status.st_rdev) == 10 &&
              minor(status.st_rdev) == 237,
          "control_node", "mode %o rdev %u:%u", status.st_mode, major(status.st_rdev), minor(status.st_rdev));
    int number = ioctl(control, LOOP_CTL_GET_FREE);
    check(number >= 0, "get_free", "LOOP_CTL_GET_FREE gave %d", number);
    check(ioctl(control, LOOP_CTL_ADD, number) == -1 && errno == EEXIST, "add_existing", "not EEXIST");
    check(ioctl(control, LOOP_CTL_REMOVE, -1) == -1 && errno == EINVAL, "remove_unspecified", "not EINVAL");

    int device = open_loop(number, O_RDWR);
    check(device >= 0, "open_device", "open /dev/loop%d", number);
    check(fstat(device, &status) == 0 && S_ISBLK(status.st_mode) && major(status.st_rdev) == 7 &&
              minor(status.st_rdev) == (unsigned)number,
          "device_node", "mode %o rdev %u:%u", status.st_mode, major(status.st_rdev), minor(status.st_rdev));
    struct loop_info64 info;
    check(ioctl(device, LOOP_GET_STATUS64, &info) == -1 && errno == ENXIO, "unbound_status", "not ENXIO");
    check(ioctl(device, LOOP_CLR_FD, 0) == -1 && errno == ENXIO, "unbound_clear", "not ENXIO");
    uint64_t size = 1;
    check(ioctl(device, BLKGETSIZE64, &size) == 0 && size == 0, "unbound_size", "size %llu",
          (unsigned long long)size);
    int directory = open("/tmp", O_RDONLY | O_DIRECTORY);
    check(ioctl(device, LOOP_SET_FD, directory) == -1 && errno == EINVAL, "directory_refused", "not EINVAL");
    close(directory);

    int backing = make_backing();
    check(backing >= 0, "backing_file", "create %s", backing_path);
    check(ioctl(device, LOOP_SET_FD, backing) == 0, "set_fd", "LOOP_SET_FD");
    check(ioctl(device, LOOP_SET_FD, backing) == -1 && errno == EBUSY, "set_fd_bound", "not EBUSY");
    check(ioctl(control, LOOP_CTL_REMOVE, number) == -1 && errno == EBUSY, "remove_bound", "not EBUSY");
    size = 0;
    check(ioctl(device, BLKGETSIZE64, &size) == 0 && size == FILE_BYTES, "size", "size %llu",
          (unsigned long long)size);
    int sector_size = 0;
    check(ioctl(device, BLKSSZGET, &sector_size) == 0 && sector_size == 512, "sector_size", "%d", sector_size);
    struct stat file_status;
    fstat(backing, &file_status);
    memset(&info, 0, sizeof info);
    int got = ioctl(device, LOOP_GET_STATUS64, &info);
    check(got == 0 && info.lo_number == (unsigned)number && info.lo_inode == file_status.st_ino &&
              info.lo_offset == 0 && info.lo_sizelimit == 0 && (info.lo_flags & LO_FLAGS_READ_ONLY) == 0,
          "status", "number %u inode %llu (file %llu) flags %#x", info.lo_number,
          (unsigned long long)info.lo_inode, (unsigned long long)file_status.st_ino, info.lo_flags);

    unsigned char bytes[512];
    check(pread(device, bytes, sizeof bytes, 1024) == (ssize_t)sizeof bytes && bytes[0] == 1024 % 251 &&
              bytes[511] == (1024 + 511) % 251,
          "read_device", "first byte %u", bytes[0]);
    unsigned long long written_before = 0, written_after = 0, busy_ms = 0;
    check(block_stat(number, &written_before, &busy_ms), "sys_stat", "%s", block_file(number, "stat"));
    memset(bytes, 0xab, sizeof bytes);
    check(pwrite(device, bytes, sizeof bytes, 4096) == (ssize_t)sizeof bytes, "write_device", "pwrite");
    check(fsync(device) == 0, "fsync_device", "fsync");
    unsigned char file_bytes[512] = {0};
    check(pread(backing, file_bytes, sizeof file_bytes, 4096) == (ssize_t)sizeof file_bytes &&
              memcmp(file_bytes, bytes, sizeof bytes) == 0,
          "write_reaches_file", "byte %u", file_bytes[0]);
    /* Only the write count: the busy time counts whole milliseconds (Linux:
     * jiffies) with a request in flight, which a fast disk can leave at 0. */
    check(block_stat(number, &written_after, &busy_ms) && written_after > written_before,
          "sys_stat_counts_writes", "%s (before: %llu written)", block_file(number, "stat"), written_before);

    /* What sysfs says of the bound device. */
    char expected[64];
    snprintf(expected, sizeof expected, "%d", FILE_BYTES / 512);
    check(strcmp(block_file(number, "size"), expected) == 0, "sys_size", "size %s", block_file(number, "size"));
    check(strcmp(block_file(number, "ro"), "0") == 0, "sys_ro", "ro %s", block_file(number, "ro"));
    snprintf(expected, sizeof expected, "7:%d", number);
    check(strcmp(block_file(number, "dev"), expected) == 0, "sys_dev", "dev %s", block_file(number, "dev"));
    check(strcmp(block_file(number, "loop/backing_file"), backing_path) == 0, "sys_backing_file", "%s",
          block_file(number, "loop/backing_file"));
    check(strcmp(block_file(number, "loop/offset"), "0") == 0 && strcmp(block_file(number, "loop/sizelimit"), "0") == 0,
          "sys_window", "offset %s", block_file(number, "loop/offset"));
    char uevent_path[64], uevent[256] = "";
    snprintf(uevent_path, sizeof uevent_path, "/sys/dev/block/7:%d/uevent", number);
    int uevent_fd = open(uevent_path, O_RDONLY);
    if (uevent_fd >= 0) {
        ssize_t length = read(uevent_fd, uevent, sizeof uevent - 1);
        uevent[length > 0 ? length : 0] = 0;
        close(uevent_fd);
    }
    snprintf(expected, sizeof expected, "DEVNAME=loop%d\n", number);
    check(strstr(uevent, expected) != NULL, "sys_dev_block_uevent", "%s", uevent);
    DIR *listing = opendir("/sys/block");
    snprintf(expected, sizeof expected, "loop%d", number);
    int is_listed = 0;
    for (struct dirent *entry; listing && (entry = readdir(listing));) {
        is_listed |= strcmp(entry->d_name, expected) == 0;
    }
    if (listing) {
        closedir(listing);
    }
    check(is_listed, "sys_block_lists", "%s not in /sys/block", expected);
    check(pread(device, bytes, sizeof bytes, FILE_BYTES) == 0, "read_at_end", "not 0");

    /* A window of the file: 4 KiB in, at most 8 KiB. */
    memset(&info, 0, sizeof info);
    info.lo_offset = 4096;
    info.lo_sizelimit = 8192;
    strcpy((char *)info.lo_file_name, "window");
    check(ioctl(device, LOOP_SET_STATUS64, &info) == 0, "set_status", "LOOP_SET_STATUS64");
    size = 0;
    ioctl(device, BLKGETSIZE64, &size);
    check(size == 8192, "window_size", "size %llu", (unsigned long long)size);
    check(pread(device, bytes, 1, 0) == 1 && bytes[0] == 0xab, "window_start", "byte %u", bytes[0]);
    memset(&info, 0, sizeof info);
    ioctl(device, LOOP_GET_STATUS64, &info);
    check(info.lo_offset == 4096 && info.lo_sizelimit == 8192 && strcmp((char *)info.lo_file_name, "window") == 0,
          "window_status", "offset %llu limit %llu name %s", (unsigned long long)info.lo_offset,
          (unsigned long long)info.lo_sizelimit, info.lo_file_name);
    info.lo_encrypt_key_size = 33;
    check(ioctl(device, LOOP_SET_STATUS64, &info) == -1 && errno == EINVAL, "key_too_long", "not EINVAL");

    /* The file grows: the device follows at LOOP_SET_CAPACITY. */
    memset(&info, 0, sizeof info);
    ioctl(device, LOOP_SET_STATUS64, &info);
    check(ftruncate(backing, 2 * FILE_BYTES) == 0, "grow_file", "ftruncate");
    size = 0;
    ioctl(device, BLKGETSIZE64, &size);
    check(size == FILE_BYTES, "size_before_capacity", "size %llu", (unsigned long long)size);
    check(ioctl(device, LOOP_SET_CAPACITY, 0) == 0, "set_capacity", "LOOP_SET_CAPACITY");
    ioctl(device, BLKGETSIZE64, &size);
    check(size == 2 * FILE_BYTES, "size_after_capacity", "size %llu", (unsigned long long)size);
    check(ioctl(device, LOOP_SET_BLOCK_SIZE, 1000) == -1 && errno == EINVAL, "odd_block_size", "not EINVAL");
    check(ioctl(device, LOOP_SET_BLOCK_SIZE, 4096) == 0, "block_size", "LOOP_SET_BLOCK_SIZE");
    sector_size = 0;
    ioctl(device, BLKSSZGET, &sector_size);
    check(sector_size == 4096, "block_size_reported", "%d", sector_size);

    check(ioctl(device, LOOP_CLR_FD, 0) == 0, "clear", "LOOP_CLR_FD");
    close(device);
    device = open_loop(number, O_RDWR);
    check(ioctl(device, LOOP_GET_STATUS64, &info) == -1 && errno == ENXIO, "cleared", "not ENXIO");
    check(block_file(number, "loop/backing_file")[0] == 0 && strcmp(block_file(number, "size"), "0") == 0,
          "sys_cleared", "size %s", block_file(number, "size"));

    /* LOOP_CONFIGURE: refuses unknown flags, binds read-only on request. */
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = backing;
    config.info.lo_flags = 0x10000;
    check(ioctl(device, LOOP_CONFIGURE, &config) == -1 && errno == EINVAL, "configure_bad_flags", "not EINVAL");
    config.info.lo_flags = LO_FLAGS_READ_ONLY;
    config.block_size = 1024;
    check(ioctl(device, LOOP_CONFIGURE, &config) == 0, "configure", "LOOP_CONFIGURE");
    memset(&info, 0, sizeof info);
    ioctl(device, LOOP_GET_STATUS64, &info);
    check(info.lo_flags & LO_FLAGS_READ_ONLY, "configure_read_only", "flags %#x", info.lo_flags);
    check(strcmp(block_file(number, "ro"), "1") == 0, "sys_configured_ro", "ro %s", block_file(number, "ro"));
    sector_size = 0;
    ioctl(device, BLKSSZGET, &sector_size);
    check(sector_size == 1024, "configure_block_size", "%d", sector_size);
    check(pwrite(device, bytes, 512, 0) == -1 && (errno == EPERM || errno == EROFS), "read_only_write",
          "not EPERM");
    check(ioctl(device, LOOP_CLR_FD, 0) == 0, "clear_configured", "LOOP_CLR_FD");
    close(device);
    close(backing);
    unlink(backing_path);
    close(control);
    printf("%d checks failed\n", failures);
    return failures;
}
