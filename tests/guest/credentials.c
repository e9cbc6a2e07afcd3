/* Checks credentials and the permission checks that follow them: the
 * set*id calls with Linux's rules for root and others, supplementary
 * groups, capabilities (capget, capset, prctl), file owners, chmod and
 * chown (set-id bits cleared), the set-group-id directory, access and
 * faccessat2 with and without AT_EACCESS, the sticky directory, and who
 * may send signals to whom (kill, its process-group form, sigqueue). Must
 * start as root; prints one line per check and exits with the number of
 * failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "checks.h"

/* linux/capability.h, which musl's headers lack. */
struct __user_cap_header_struct {
    unsigned version;
    int pid;
};
struct __user_cap_data_struct {
    unsigned effective, permitted, inheritable;
};
#define _LINUX_CAPABILITY_VERSION_3 0x20080522
#define CAP_CHOWN 0
#define CAP_DAC_OVERRIDE 1
#define CAP_SETUID 7
#define CAP_SYS_ADMIN 21

#define FAILS_WITH(call, expected) ((call) == -1 && errno == (expected))
#define DIRECTORY "/tmp/credentials-test"

static void ids(uid_t *user, gid_t *group) {
    uid_t saved_user, effective_user;
    gid_t saved_group, effective_group;
    getresuid(user, &effective_user, &saved_user);
    getresgid(group, &effective_group, &saved_group);
    user[1] = effective_user;
    user[2] = saved_user;
    group[1] = effective_group;
    group[2] = saved_group;
}

static int has_ids(uid_t real, uid_t effective, uid_t saved) {
    uid_t user[3];
    gid_t group[3];
    ids(user, group);
    return user[0] == real && user[1] == effective && user[2] == saved;
}

static int owner_of(const char *path, uid_t *user, gid_t *group, mode_t *mode) {
    struct stat status;
    if (stat(path, &status) != 0)
        return 0;
    *user = status.st_uid;
    *group = status.st_gid;
    *mode = status.st_mode & 07777;
    return 1;
}

static int capability_sets(unsigned *effective, unsigned *permitted) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0)
        return 0;
    *effective = data[0].effective;
    *permitted = data[0].permitted;
    return 1;
}

/* As root: owners, chown, chmod, the set-group-id directory. */
static void check_root_files(void) {
    uid_t user = 0;
    gid_t group = 0;
    mode_t mode = 0;
    mkdir(DIRECTORY, 0777);
    chmod(DIRECTORY, 0777);
    int fd = open(DIRECTORY "/root-file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    check(fd >= 0, "root creates a file", "open failed");
    close(fd);
    check(owner_of(DIRECTORY "/root-file", &user, &group, &mode) && user == 0 && group == 0,
          "a new file belongs to its creator", "owner %u:%u", user, group);
    check(chown(DIRECTORY "/root-file", 1000, 1000) == 0, "root gives a file away", "chown failed");
    check(owner_of(DIRECTORY "/root-file", &user, &group, &mode) && user == 1000 && group == 1000,
          "stat shows the new owner", "owner %u:%u", user, group);
    check(chmod(DIRECTORY "/root-file", 06755) == 0 && owner_of(DIRECTORY "/root-file", &user, &group, &mode) &&
              mode == 06755,
          "root sets set-id bits on another's file", "mode %o", mode);
    check(chown(DIRECTORY "/root-file", -1, -1) == 0 && owner_of(DIRECTORY "/root-file", &user, &group, &mode) &&
              mode == 0755,
          "chown clears set-user-id and set-group-id (with group execute)", "mode %o", mode);
    chmod(DIRECTORY "/root-file", 02644);
    check(chown(DIRECTORY "/root-file", 1000, 1000) == 0 && owner_of(DIRECTORY "/root-file", &user, &group, &mode) &&
              mode == 02644,
          "chown keeps set-group-id without group execute", "mode %o", mode);

    mkdir(DIRECTORY "/shared", 0777);
    chown(DIRECTORY "/shared", 0, 4242);
    chmod(DIRECTORY "/shared", 02777);
    fd = open(DIRECTORY "/shared/file", O_CREAT | O_WRONLY, 0644);
    close(fd);
    check(owner_of(DIRECTORY "/shared/file", &user, &group, &mode) && group == 4242,
          "a set-group-id directory gives its group to new files", "group %u", group);
    mkdir(DIRECTORY "/shared/sub", 0755);
    check(owner_of(DIRECTORY "/shared/sub", &user, &group, &mode) && group == 4242 && (mode & 02000),
          "and its group and bit to new directories", "group %u mode %o", group, mode);

    mkdir(DIRECTORY "/sticky", 0777);
    chmod(DIRECTORY "/sticky", 01777);
    fd = open(DIRECTORY "/sticky/roots", O_CREAT | O_WRONLY, 0666);
    close(fd);
    fd = open(DIRECTORY "/private", O_CREAT | O_WRONLY, 0600);
    check(fd >= 0 && write(fd, "secret", 6) == 6, "root writes a private file", "write failed");
    close(fd);
    fd = open(DIRECTORY "/script", O_CREAT | O_WRONLY, 0644);
    close(fd);
    mkdir(DIRECTORY "/closed", 0700);
    fd = open(DIRECTORY "/closed/inner", O_CREAT | O_WRONLY, 0644);
    close(fd);
    check(access(DIRECTORY "/private", R_OK | W_OK) == 0, "root may read and write any file", "access failed");
    check(FAILS_WITH(access(DIRECTORY "/script", X_OK), EACCES), "root may not execute a file without x bits",
          "access succeeded");
}

/* Capabilities and prctl while still root. */
static void check_capabilities(void) {
    unsigned effective = 0, permitted = 0;
    check(capability_sets(&effective, &permitted) && effective & (1u << CAP_CHOWN) &&
              permitted & (1u << CAP_SETUID),
          "root has capabilities", "effective %#x permitted %#x", effective, permitted);
    struct __user_cap_header_struct header = {0x12345678, 0};
    check(syscall(SYS_capget, &header, NULL) == 0 && header.version == _LINUX_CAPABILITY_VERSION_3,
          "capget tells the preferred version", "version %#x", header.version);
    check(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 1, "the bounding set holds CAP_SYS_ADMIN",
          "prctl failed");
    check(FAILS_WITH(prctl(PR_CAPBSET_READ, 1000, 0, 0, 0), EINVAL), "PR_CAPBSET_READ refuses unknown capabilities",
          "no EINVAL");
    check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0, "no_new_privs starts clear", "prctl failed");
    check(FAILS_WITH(prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0), EINVAL), "PR_SET_NO_NEW_PRIVS takes only 1",
          "no EINVAL");
    check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
          "no_new_privs sets", "prctl failed");
    check(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0, "keepcaps starts clear", "prctl failed");
    check(FAILS_WITH(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0), EINVAL), "PR_SET_KEEPCAPS takes 0 or 1", "no EINVAL");
    check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0) == 0, "no ambient capabilities",
          "prctl failed");
    check(FAILS_WITH(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0), EPERM),
          "raising an ambient capability needs it inheritable", "no EPERM");

    gid_t groups[2] = {20, 10};
    check(setgroups(2, groups) == 0, "root sets supplementary groups", "setgroups failed");
    gid_t read_back[4] = {0};
    int count = getgroups(4, read_back);
    check(count == 2 && ((read_back[0] == 10 && read_back[1] == 20) || (read_back[0] == 20 && read_back[1] == 10)),
          "getgroups returns them", "count %d", count);
}

/* Dropping privileges: real 1000, effective 1000, saved 0. */
static void check_set_ids(void) {
    check(setresgid(1000, 1000, 1000) == 0, "root sets every group id", "setresgid failed");
    check(setreuid(1000, 1000) == 0 && has_ids(1000, 1000, 1000),
          "setreuid changing the real id saves the effective one", "ids differ");
    unsigned effective = 1, permitted = 1;
    check(capability_sets(&effective, &permitted) && effective == 0 && permitted == 0,
          "leaving root for good drops every capability", "effective %#x permitted %#x", effective, permitted);
    check(FAILS_WITH(setuid(0), EPERM), "a user cannot become root again", "setuid succeeded");
    check(FAILS_WITH(setresuid(-1, 2000, -1), EPERM), "nor take an id it does not hold", "setresuid succeeded");
    check(FAILS_WITH(setgroups(0, NULL), EPERM), "nor set groups", "setgroups succeeded");
    check(FAILS_WITH(setgid(0), EPERM), "nor take group 0", "setgid succeeded");
    check(setfsuid(0) == 1000 && setfsuid(-1) == 1000, "setfsuid refuses and reports the old id", "fsuid changed");
    check(FAILS_WITH(prctl(PR_CAPBSET_DROP, CAP_CHOWN, 0, 0, 0), EPERM), "dropping from the bounding set needs CAP_SETPCAP",
          "no EPERM");
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{1u << CAP_CHOWN, 1u << CAP_CHOWN, 0}, {0, 0, 0}};
    check(FAILS_WITH(syscall(SYS_capset, &header, data), EPERM), "capset cannot add permitted capabilities",
          "capset succeeded");
}

/* As user 1000: the permission checks. */
static void check_user_files(void) {
    uid_t user = 0;
    gid_t group = 0;
    mode_t mode = 0;
    check(FAILS_WITH(open(DIRECTORY "/private", O_RDONLY), EACCES), "a user may not read root's private file",
          "open succeeded");
    check(FAILS_WITH(access(DIRECTORY "/private", R_OK), EACCES), "access says so too", "access succeeded");
    check(access(DIRECTORY "/private", F_OK) == 0, "but sees that it exists", "access failed");
    check(FAILS_WITH(chmod(DIRECTORY "/private", 0666), EPERM), "nor chmod it", "chmod succeeded");
    check(FAILS_WITH(chown(DIRECTORY "/private", 1000, 1000), EPERM), "nor take it", "chown succeeded");
    check(FAILS_WITH(utimensat(AT_FDCWD, DIRECTORY "/private", NULL, 0), EACCES), "nor touch it",
          "utimensat succeeded");
    int fd = open(DIRECTORY "/mine", O_CREAT | O_RDWR, 0400);
    check(fd >= 0, "a user creates a file it cannot write, and writes it once open", "open failed");
    check(fd >= 0 && write(fd, "x", 1) == 1, "the new descriptor writes", "write failed");
    close(fd);
    check(owner_of(DIRECTORY "/mine", &user, &group, &mode) && user == 1000 && group == 1000,
          "the file belongs to the user", "owner %u:%u", user, group);
    check(FAILS_WITH(open(DIRECTORY "/mine", O_WRONLY), EACCES), "but cannot open it for writing again",
          "open succeeded");
    check(chmod(DIRECTORY "/mine", 02600) == 0 && owner_of(DIRECTORY "/mine", &user, &group, &mode) && mode == 02600,
          "its owner chmods it and keeps set-group-id in its own group", "mode %o", mode);
    check(FAILS_WITH(chown(DIRECTORY "/mine", -1, 4242), EPERM), "the owner cannot give it to a foreign group",
          "chown succeeded");
    check(chown(DIRECTORY "/mine", 1000, 1000) == 0, "the owner may chown to its own ids", "chown failed");
    check(FAILS_WITH(chown(DIRECTORY "/mine", 2000, -1), EPERM), "but not to another user", "chown succeeded");
    check(FAILS_WITH(unlink(DIRECTORY "/sticky/roots"), EPERM), "a sticky directory keeps others' files",
          "unlink succeeded");
    fd = open(DIRECTORY "/sticky/users", O_CREAT | O_WRONLY, 0644);
    close(fd);
    check(unlink(DIRECTORY "/sticky/users") == 0, "but lets owners remove theirs", "unlink failed");
    struct stat status;
    check(FAILS_WITH(stat(DIRECTORY "/closed/inner", &status), EACCES),
          "a directory without search permission hides its files", "stat succeeded");
    check(FAILS_WITH(mkdir(DIRECTORY "/shared/../closed/new", 0755), EACCES), "and takes no new ones",
          "mkdir succeeded");
    check(setresuid(-1, -1, -1) == 0, "setresuid with no change succeeds", "setresuid failed");
}

/* Real root, effective user: access() checks with the real ids. */
static void check_access_ids(void) {
    check(setresuid(0, 1000, 0) == 0, "root takes effective user 1000, keeping real root", "setresuid failed");
    check(FAILS_WITH(open(DIRECTORY "/private", O_RDONLY), EACCES), "the effective user opens nothing of root's",
          "open succeeded");
    check(access(DIRECTORY "/private", R_OK) == 0, "access uses the real user (root)", "access failed");
    check(FAILS_WITH(faccessat(AT_FDCWD, DIRECTORY "/private", R_OK, AT_EACCESS), EACCES),
          "AT_EACCESS uses the effective user", "faccessat succeeded");
    check(setresuid(-1, 0, -1) == 0, "the saved root comes back", "setresuid failed");
    unsigned effective = 0, permitted = 0;
    check(capability_sets(&effective, &permitted) && effective & (1u << CAP_DAC_OVERRIDE),
          "with its capabilities", "effective %#x", effective);
    check(setfsuid(1000) == 0, "setfsuid to a user", "setfsuid failed");
    check(FAILS_WITH(open(DIRECTORY "/private", O_RDONLY), EACCES), "file checks follow the filesystem id",
          "open succeeded");
    setfsuid(0);
    check(open(DIRECTORY "/private", O_RDONLY) >= 0, "and come back with it", "open failed");
}

/* A process of user 1000 may signal its own user's processes and not
 * root's (EPERM for kill, a process group of root's and sigqueue; SIGCONT
 * within its session is allowed); root may signal it. */
static void check_signal_permissions(void) {
    int gate[2];
    if (pipe(gate) != 0) {
        check(0, "signal permissions", "pipe failed");
        return;
    }
    fflush(stdout);
    pid_t root_child = fork();
    if (root_child == 0) {
        char byte;
        close(gate[1]);
        setpgid(0, 0);
        while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
    }
    setpgid(root_child, root_child);
    pid_t user_child = fork();
    if (user_child == 0) {
        failures = 0;
        close(gate[0]);
        close(gate[1]);
        if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) {
            check(0, "a child becomes user 1000", "setresuid failed");
            fflush(stdout);
            _exit(1);
        }
        check(FAILS_WITH(kill(root_child, 0), EPERM), "a user may not signal root's process", "kill succeeded");
        check(FAILS_WITH(kill(root_child, SIGTERM), EPERM), "nor send it SIGTERM", "kill succeeded");
        check(FAILS_WITH(kill(-root_child, SIGTERM), EPERM), "nor signal root's process group", "kill succeeded");
        union sigval value = {.sival_int = 1};
        check(FAILS_WITH(sigqueue(root_child, SIGUSR1, value), EPERM), "nor queue a signal to it",
              "sigqueue succeeded");
        check(kill(root_child, SIGCONT) == 0, "but may send SIGCONT within its session", "kill failed");
        check(kill(getpid(), 0) == 0, "and signal itself", "kill failed");
        fflush(stdout);
        _exit(failures);
    }
    int status = 0;
    waitpid(user_child, &status, 0);
    failures += WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    check(WIFEXITED(status), "the user's child ends normally", "status %#x", status);
    check(kill(root_child, 0) == 0, "root's process is still there", "kill failed");
    close(gate[1]);
    waitpid(root_child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "and ends when told", "status %#x", status);
    close(gate[0]);
}

static void clean_up(void) {
    const char *files[] = {"/root-file", "/shared/file", "/sticky/roots", "/private",
                           "/script",    "/mine",        "/closed/inner", NULL};
    for (int index = 0; files[index]; index++) {
        char path[256];
        snprintf(path, sizeof path, "%s%s", DIRECTORY, files[index]);
        unlink(path);
    }
    rmdir(DIRECTORY "/shared/sub");
    rmdir(DIRECTORY "/shared");
    rmdir(DIRECTORY "/sticky");
    rmdir(DIRECTORY "/closed");
    rmdir(DIRECTORY);
}

int main(void) {
    if (geteuid() != 0) {
        printf("SKIPPED credentials: must start as root\n");
        return 0;
    }
    clean_up();
    check_root_files();
    check_capabilities();
    check_access_ids();
    check_signal_permissions();
    check_set_ids();
    check_user_files();
    printf("%d checks failed\n", failures);
    return failures;
}
