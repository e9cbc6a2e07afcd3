/* Checks the owners and permissions of System V IPC objects: shared memory
 * segments, message queues and semaphore sets keep their owner, creator
 * and mode; IPC_STAT reports them and IPC_SET changes them; another user
 * is refused what the mode does not grant (EACCES from shmget, shmat,
 * msgget, semget, IPC_STAT) and may not change or remove what it does not
 * own (EPERM from IPC_SET, IPC_RMID, SHM_LOCK); SHM_LOCK sets SHM_LOCKED;
 * *_STAT and *_STAT_ANY take the index IPC_INFO bounds; shm_nattch counts
 * attaches inherited by fork and drops when a child exits; a removed
 * segment keeps SHM_DEST and no key until its last detach.
 * Run as root with no argument: one line per check, then
 * "<n> checks failed", exit status the count. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks.h"

/* An id no account on the host uses. */
#define OTHER_USER 4243
#define PAGE 4096

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef SHM_LOCKED
#define SHM_LOCKED 02000
#endif
#ifndef SHM_DEST
#define SHM_DEST 01000
#endif

/* Runs `check_as(argument)` in a child as `user`; its exit status (a bit
 * per failed expectation), or 200 if it did not exit. */
static int as_user(uid_t user, int (*check_as)(int), int argument) {
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(user) != 0 || setuid(user) != 0) {
            _exit(100);
        }
        _exit(check_as(argument));
    }
    int status = -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

static key_t segment_key;

/* Another user, towards root's 0600 segment. */
static int refused_segment(int id) {
    struct shmid_ds status;
    int failed = 0;
    if (!(shmget(segment_key, PAGE, 0400) == -1 && errno == EACCES)) failed |= 1;
    if (shmget(segment_key, PAGE, 0) != id) failed |= 2;
    if (!(shmat(id, NULL, SHM_RDONLY) == (void *)-1 && errno == EACCES)) failed |= 4;
    if (!(shmctl(id, IPC_STAT, &status) == -1 && errno == EACCES)) failed |= 8;
    if (!(shmctl(id, IPC_RMID, NULL) == -1 && errno == EPERM)) failed |= 16;
    if (!(shmctl(id, SHM_LOCK, NULL) == -1 && errno == EPERM)) failed |= 32;
    if (shmctl(id, SHM_STAT_ANY, &status) != id) failed |= 64;
    return failed;
}

/* Another user, once root gave it the segment with mode 0640. */
static int granted_segment(int id) {
    struct shmid_ds status;
    int failed = 0;
    char *address = shmat(id, NULL, 0);
    if (address == (void *)-1 || address[0] != 'r') failed |= 1;
    if (shmctl(id, IPC_STAT, &status) != 0 || status.shm_perm.uid != OTHER_USER) failed |= 2;
    status.shm_perm.mode = 0600;
    if (shmctl(id, IPC_SET, &status) != 0) failed |= 4;
    return failed;
}

static unsigned long attaches(int id) {
    struct shmid_ds status;
    return shmctl(id, IPC_STAT, &status) == 0 ? (unsigned long)status.shm_nattch : 999;
}

static void check_segments(void) {
    segment_key = ftok("/", 'p');
    shmctl(shmget(segment_key, PAGE, 0), IPC_RMID, NULL);
    int id = shmget(segment_key, PAGE, IPC_CREAT | IPC_EXCL | 0600);
    check(id >= 0, "shmget_keyed", "failed");
    struct shmid_ds status;
    int got = shmctl(id, IPC_STAT, &status);
    check(got == 0 && status.shm_perm.uid == 0 && status.shm_perm.cuid == 0 && status.shm_perm.gid == 0 &&
              (status.shm_perm.mode & 0777) == 0600 && status.shm_perm.__key == segment_key,
          "shm_stat_owner_and_mode", "uid %u cuid %u mode %o", status.shm_perm.uid, status.shm_perm.cuid,
          status.shm_perm.mode);
    int failed = as_user(OTHER_USER, refused_segment, id);
    check(failed == 0, "shm_refused_to_other_user", "failed expectations %#x", failed);

    check(shmctl(id, SHM_LOCK, NULL) == 0 && shmctl(id, IPC_STAT, &status) == 0 &&
              (status.shm_perm.mode & SHM_LOCKED) != 0,
          "shm_lock_sets_locked", "mode %o", status.shm_perm.mode);
    check(shmctl(id, SHM_UNLOCK, NULL) == 0 && shmctl(id, IPC_STAT, &status) == 0 &&
              (status.shm_perm.mode & SHM_LOCKED) == 0,
          "shm_unlock_clears_locked", "mode %o", status.shm_perm.mode);

    char *mine = shmat(id, NULL, 0);
    check(mine != (void *)-1, "shmat_as_root", "failed");
    mine[0] = 'r';
    shmctl(id, IPC_STAT, &status);
    status.shm_perm.uid = OTHER_USER;
    status.shm_perm.gid = OTHER_USER;
    status.shm_perm.mode = 0640;
    check(shmctl(id, IPC_SET, &status) == 0, "shm_set", "failed");
    got = shmctl(id, IPC_STAT, &status);
    check(got == 0 && status.shm_perm.uid == OTHER_USER && status.shm_perm.cuid == 0 &&
              (status.shm_perm.mode & 0777) == 0640,
          "shm_set_changes_owner_not_creator", "uid %u cuid %u mode %o", status.shm_perm.uid,
          status.shm_perm.cuid, status.shm_perm.mode);
    failed = as_user(OTHER_USER, granted_segment, id);
    check(failed == 0, "shm_granted_to_new_owner", "failed expectations %#x", failed);
    check(shmctl(id, IPC_STAT, &status) == 0 && (status.shm_perm.mode & 0777) == 0600, "shm_set_by_new_owner",
          "mode %o", status.shm_perm.mode);

    /* Attaches: one here; a child inherits it and adds one, and they go
     * when it exits. */
    int pipe_ends[2];
    check(pipe(pipe_ends) == 0, "pipe", "failed");
    check(attaches(id) == 1, "nattch_one", "%lu", attaches(id));
    pid_t child = fork();
    if (child == 0) {
        char *again = shmat(id, NULL, SHM_RDONLY);
        unsigned long seen = attaches(id);
        char byte = again != (void *)-1 && again[0] == 'r' ? (char)seen : 0;
        if (write(pipe_ends[1], &byte, 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    char seen = 0;
    check(read(pipe_ends[0], &seen, 1) == 1 && seen == 3, "nattch_counts_inherited_and_child_attaches", "%d",
          seen);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    check(attaches(id) == 1, "nattch_drops_at_child_exit", "%lu", attaches(id));
    close(pipe_ends[0]);
    close(pipe_ends[1]);

    /* The index IPC_INFO bounds. */
    struct shminfo info;
    int highest = shmctl(0, IPC_INFO, (struct shmid_ds *)&info);
    check(highest >= id, "shm_info_highest_index", "%d < %d", highest, id);
    check(shmctl(id, SHM_STAT, &status) == id && shmctl(id, SHM_STAT_ANY, &status) == id, "shm_stat_by_index",
          "failed");

    /* Removed while attached: marked, keyless, then gone. */
    check(shmctl(id, IPC_RMID, NULL) == 0, "shm_rmid", "failed");
    got = shmctl(id, IPC_STAT, &status);
    check(got == 0 && (status.shm_perm.mode & SHM_DEST) != 0 && status.shm_perm.__key == IPC_PRIVATE,
          "removed_segment_marked_and_keyless", "mode %o key %d", status.shm_perm.mode, status.shm_perm.__key);
    check(shmget(segment_key, PAGE, 0) == -1 && errno == ENOENT, "removed_segment_key_free", "failed");
    check(shmdt(mine) == 0, "shmdt_last", "failed");
    check(shmctl(id, IPC_STAT, &status) == -1 && errno == EINVAL, "removed_segment_gone_after_detach", "failed");
}

static key_t queue_key;

static int refused_queue(int id) {
    struct msqid_ds status;
    int failed = 0;
    if (!(msgget(queue_key, 0200) == -1 && errno == EACCES)) failed |= 1;
    if (msgget(queue_key, 0) != id) failed |= 2;
    if (!(msgctl(id, IPC_STAT, &status) == -1 && errno == EACCES)) failed |= 4;
    if (!(msgctl(id, IPC_RMID, NULL) == -1 && errno == EPERM)) failed |= 8;
    if (!(msgctl(id, MSG_STAT, &status) == -1 && errno == EACCES)) failed |= 16;
    if (msgctl(id, MSG_STAT_ANY, &status) != id) failed |= 32;
    return failed;
}

static key_t set_key;

static int refused_set(int id) {
    struct semid_ds status;
    int failed = 0;
    if (!(semget(set_key, 1, 0400) == -1 && errno == EACCES)) failed |= 1;
    if (!(semget(set_key, 2, 0) == -1 && errno == EINVAL)) failed |= 2;
    if (!(semctl(id, 0, IPC_STAT, &status) == -1 && errno == EACCES)) failed |= 4;
    if (!(semctl(id, 0, IPC_RMID) == -1 && errno == EPERM)) failed |= 8;
    if (semctl(id, 0, SEM_STAT_ANY, &status) != id) failed |= 16;
    return failed;
}

static void check_queues_and_sets(void) {
    queue_key = ftok("/", 'q');
    msgctl(msgget(queue_key, 0), IPC_RMID, NULL);
    int queue = msgget(queue_key, IPC_CREAT | IPC_EXCL | 0600);
    check(queue >= 0, "msgget_keyed", "failed");
    int failed = as_user(OTHER_USER, refused_queue, queue);
    check(failed == 0, "msg_refused_to_other_user", "failed expectations %#x", failed);
    struct msqid_ds queue_status;
    check(msgctl(queue, MSG_STAT, &queue_status) == queue, "msg_stat_by_index", "failed");
    msgctl(queue, IPC_RMID, NULL);

    set_key = ftok("/", 's');
    semctl(semget(set_key, 0, 0), 0, IPC_RMID);
    int set = semget(set_key, 1, IPC_CREAT | IPC_EXCL | 0600);
    check(set >= 0, "semget_keyed", "failed");
    failed = as_user(OTHER_USER, refused_set, set);
    check(failed == 0, "sem_refused_to_other_user", "failed expectations %#x", failed);
    struct semid_ds set_status;
    check(semctl(set, 0, SEM_STAT, &set_status) == set, "sem_stat_by_index", "failed");
    semctl(set, 0, IPC_RMID);
}

int main(void) {
    if (geteuid() != 0) {
        skip("ipc_permissions", "needs root");
        printf("0 checks failed\n");
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_segments();
    check_queues_and_sets();
    printf("%d checks failed\n", failures);
    return failures;
}
