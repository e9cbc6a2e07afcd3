/* Checks the writable settings of /proc/sys and /proc/sysvipc: root's
 * writes to the System V IPC limits take effect in the IPC calls
 * (kernel/msgmax, msgmnb, msgmni, sem, shmmax, shmmni), the names follow
 * (kernel/hostname, domainname), other settings take values in Linux's
 * ranges and refuse others with EINVAL (pid_max, vm/overcommit_memory,
 * fs/file-max, fs/nr_open), read-only ones refuse writes, another user
 * cannot write (EACCES); /proc/sysvipc/{msg,sem,shm} list the objects in
 * Linux's columns. On Linux it runs in new IPC and UTS namespaces, so the
 * host keeps its settings; the others are only rewritten with their own
 * value there. Must start as root. One line per check; exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

/* Writes `text` to `path`: 0, or the errno of the open or the write. */
static int write_setting(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0) {
        return errno;
    }
    ssize_t written = write(fd, text, strlen(text));
    int error = written < 0 ? errno : 0;
    close(fd);
    return error;
}

static long long read_setting(const char *path) {
    FILE *file = fopen(path, "r");
    long long value = -1;
    if (file) {
        if (fscanf(file, "%lld", &value) != 1) {
            value = -1;
        }
        fclose(file);
    }
    return value;
}

static void read_text(const char *path, char *buffer, size_t size) {
    buffer[0] = 0;
    FILE *file = fopen(path, "r");
    if (file) {
        size_t length = fread(buffer, 1, size - 1, file);
        buffer[length] = 0;
        fclose(file);
    }
}

/* Rewrites a machine-wide setting with its own value, then a value out of
 * range, which must fail with EINVAL and leave it alone. */
static void check_range(const char *name, const char *path, const char *bad) {
    long long before = read_setting(path);
    char text[32];
    snprintf(text, sizeof text, "%lld\n", before);
    int same = write_setting(path, text);
    int refused = write_setting(path, bad);
    check(before >= 0 && same == 0 && refused == EINVAL && read_setting(path) == before, name,
          "value %lld, rewrite %d, %s gave %d", before, same, bad, refused);
}

static void check_message_limits(void) {
    check(write_setting("/proc/sys/kernel/msgmax", "100\n") == 0 && read_setting("/proc/sys/kernel/msgmax") == 100,
          "msgmax_written", "reads %lld", read_setting("/proc/sys/kernel/msgmax"));
    int queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct {
        long kind;
        char text[200];
    } message = {1, {0}};
    check(msgsnd(queue, &message, 101, IPC_NOWAIT) == -1 && errno == EINVAL, "msgmax_enforced",
          "a 101-byte message was not refused");
    check(msgsnd(queue, &message, 100, IPC_NOWAIT) == 0, "msgmax_allows", "a 100-byte message was refused");
    write_setting("/proc/sys/kernel/msgmnb", "300\n");
    int small = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct msqid_ds status;
    check(msgctl(small, IPC_STAT, &status) == 0 && status.msg_qbytes == 300, "msgmnb_new_queue", "qbytes %lu",
          (unsigned long)status.msg_qbytes);
    check(write_setting("/proc/sys/kernel/msgmax", "-1\n") == EINVAL, "msgmax_negative", "not EINVAL");
    check(write_setting("/proc/sys/kernel/msgmni", "40000\n") == EINVAL, "msgmni_range", "not EINVAL");
    check(write_setting("/proc/sys/kernel/msgmax", "many\n") == EINVAL, "msgmax_text", "not EINVAL");

    char listing[4096];
    read_text("/proc/sysvipc/msg", listing, sizeof listing);
    const char *header = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime "
                         "     rtime      ctime\n";
    check(strncmp(listing, header, strlen(header)) == 0, "sysvipc_msg_header", "%.120s", listing);
    char row[64];
    snprintf(row, sizeof row, "         0 %10d   600         100          1", queue);
    check(strstr(listing, row) != NULL, "sysvipc_msg_row", "no \"%s\" in\n%s", row, listing);
    msgctl(queue, IPC_RMID, NULL);
    msgctl(small, IPC_RMID, NULL);
}

static void check_semaphore_limits(void) {
    check(write_setting("/proc/sys/kernel/sem", "10 100 5 20\n") == 0, "sem_written", "write");
    char text[128];
    read_text("/proc/sys/kernel/sem", text, sizeof text);
    check(strcmp(text, "10\t100\t5\t20\n") == 0, "sem_reads_back", "%s", text);
    check(semget(IPC_PRIVATE, 11, IPC_CREAT | 0600) == -1 && errno == EINVAL, "semmsl_enforced", "not EINVAL");
    int set = semget(IPC_PRIVATE, 10, IPC_CREAT | 0600);
    check(set >= 0, "semmsl_allows", "semget of 10");
    struct sembuf operations[6] = {{0, 1, 0}, {1, 1, 0}, {2, 1, 0}, {3, 1, 0}, {4, 1, 0}, {5, 1, 0}};
    check(semop(set, operations, 6) == -1 && errno == E2BIG, "semopm_enforced", "not E2BIG");
    check(write_setting("/proc/sys/kernel/sem", "10 100 5 40000\n") == ERANGE, "semmni_range", "not ERANGE");
    char listing[4096];
    read_text("/proc/sysvipc/sem", listing, sizeof listing);
    const char *header = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n";
    check(strncmp(listing, header, strlen(header)) == 0, "sysvipc_sem_header", "%.100s", listing);
    char row[64];
    snprintf(row, sizeof row, "         0 %10d   600         10", set);
    check(strstr(listing, row) != NULL, "sysvipc_sem_row", "no \"%s\" in\n%s", row, listing);
    semctl(set, 0, IPC_RMID);
}

static void check_shared_memory_limits(void) {
    check(write_setting("/proc/sys/kernel/shmmax", "8192\n") == 0, "shmmax_written", "write");
    check(shmget(IPC_PRIVATE, 8193, IPC_CREAT | 0600) == -1 && errno == EINVAL, "shmmax_enforced", "not EINVAL");
    int segment = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    check(segment >= 0, "shmmax_allows", "shmget of 8192");
    check(write_setting("/proc/sys/kernel/shmmni", "40000\n") == EINVAL, "shmmni_range", "not EINVAL");
    char listing[4096];
    read_text("/proc/sysvipc/shm", listing, sizeof listing);
    const char *header = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      "
                         "atime      dtime      ctime                   rss                  swap\n";
    check(strncmp(listing, header, strlen(header)) == 0, "sysvipc_shm_header", "%.100s", listing);
    char row[96];
    snprintf(row, sizeof row, "         0 %10d   600                  8192 %5d", segment, (int)getpid());
    check(strstr(listing, row) != NULL, "sysvipc_shm_row", "no \"%s\" in\n%s", row, listing);
    shmctl(segment, IPC_RMID, NULL);
}

static void check_names(void) {
    check(write_setting("/proc/sys/kernel/hostname", "settings-check\n") == 0, "hostname_written", "write");
    struct utsname names;
    uname(&names);
    check(strcmp(names.nodename, "settings-check") == 0, "hostname_followed", "uname says %s", names.nodename);
    write_setting("/proc/sys/kernel/domainname", "example.test\n");
    uname(&names);
    check(strcmp(names.domainname, "example.test") == 0, "domainname_followed", "uname says %s",
          names.domainname);
}

static void check_permissions(void) {
    check(write_setting("/proc/sys/kernel/osrelease", "9.9\n") == EACCES, "read_only_setting", "not EACCES");
    pid_t child = fork();
    if (child == 0) {
        if (setuid(65534) != 0) {
            _exit(2);
        }
        _exit(write_setting("/proc/sys/kernel/msgmax", "50\n") == EACCES ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "other_user_refused", "child status %#x", status);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getuid() != 0) {
        printf("SKIPPED settings: must start as root\n0 checks failed\n");
        return 0;
    }
    /* Linux: keep the host's IPC limits and names. rosv has one machine
     * per VM and no namespaces. */
    struct utsname system;
    uname(&system);
    if (unshare(CLONE_NEWIPC | CLONE_NEWUTS) != 0 && strstr(system.release, "rosv") == NULL) {
        printf("SKIPPED settings: no IPC and UTS namespaces to keep the host's settings in\n0 checks failed\n");
        return 0;
    }
    check_message_limits();
    check_semaphore_limits();
    check_shared_memory_limits();
    check_names();
    check_range("pid_max", "/proc/sys/kernel/pid_max", "100\n");
    check_range("overcommit_memory", "/proc/sys/vm/overcommit_memory", "3\n");
    check_range("file_max", "/proc/sys/fs/file-max", "-5\n");
    check_range("nr_open", "/proc/sys/fs/nr_open", "10\n");
    check_range("pipe_max_size", "/proc/sys/fs/pipe-max-size", "2147483649\n");
    check_permissions();
    printf("%d checks failed\n", failures);
    return failures;
}
