/* Checks priority-inheritance and robust mutexes (PI futexes), POSIX
 * message queues (priorities, attributes, timeouts, poll,
 * a receiver woken by another thread, mq_notify with a signal, names) and
 * System V message queues (types, MSG_EXCEPT, MSG_NOERROR,
 * IPC_NOWAIT, senders and receivers waiting for each other in threads, a
 * removal failing waiters with EIDRM, msgctl) and semaphore sets (atomic
 * operation lists, IPC_NOWAIT, semtimedop's timeout, waiters counted by
 * GETNCNT and GETZCNT and woken by other threads, every semctl command),
 * as Linux gives them. Passes on Linux. One line per check; exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"

struct message {
    long kind;
    char text[64];
};

union semun {
    int value;
    struct semid_ds *status;
    unsigned short *values;
};

static int send_text(int queue, long kind, const char *text, int flags) {
    struct message message = {kind, {0}};
    strncpy(message.text, text, sizeof message.text - 1);
    return msgsnd(queue, &message, strlen(text), flags);
}

static void pause_briefly(void) {
    struct timespec step = {0, 2000000};
    nanosleep(&step, NULL);
}

static int queue_for_threads;

static void *send_later(void *argument) {
    (void)argument;
    pause_briefly();
    send_text(queue_for_threads, 9, "late", 0);
    return NULL;
}

static void *receive_once(void *argument) {
    (void)argument;
    struct message message;
    long result = msgrcv(queue_for_threads, &message, sizeof message.text, 0, 0);
    return (void *)(result < 0 ? (long)-errno : result);
}

static void check_message_queues(void) {
    int queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    check(queue >= 0, "msgget", "failed");
    send_text(queue, 3, "three", 0);
    send_text(queue, 1, "one", 0);
    send_text(queue, 2, "two", 0);
    send_text(queue, 1, "uno", 0);
    struct message message;
    memset(&message, 0, sizeof message);
    long got = msgrcv(queue, &message, sizeof message.text, 2, 0);
    check(got == 3 && message.kind == 2 && memcmp(message.text, "two", 3) == 0, "msgrcv by type", "%ld", got);
    got = msgrcv(queue, &message, sizeof message.text, -2, 0);
    check(got == 3 && message.kind == 1 && memcmp(message.text, "one", 3) == 0,
          "a negative type takes the lowest type up to it", "%ld kind %ld", got, message.kind);
    got = msgrcv(queue, &message, sizeof message.text, 1, MSG_EXCEPT);
    check(got == 5 && message.kind == 3, "MSG_EXCEPT", "%ld kind %ld", got, message.kind);
    errno = 0;
    got = msgrcv(queue, &message, 2, 0, 0);
    check(got == -1 && errno == E2BIG, "a message longer than the buffer: E2BIG", "%ld", got);
    got = msgrcv(queue, &message, 2, 0, MSG_NOERROR);
    check(got == 2 && memcmp(message.text, "un", 2) == 0, "MSG_NOERROR cuts the message", "%ld", got);
    errno = 0;
    check(msgrcv(queue, &message, sizeof message.text, 0, IPC_NOWAIT) == -1 && errno == ENOMSG,
          "IPC_NOWAIT on an empty queue: ENOMSG", "errno %d", errno);
    errno = 0;
    check(send_text(queue, 0, "zero", 0) == -1 && errno == EINVAL, "type 0: EINVAL", "errno %d", errno);

    queue_for_threads = queue;
    pthread_t sender;
    pthread_create(&sender, NULL, send_later, NULL);
    got = msgrcv(queue, &message, sizeof message.text, 9, 0);
    pthread_join(sender, NULL);
    check(got == 4 && message.kind == 9, "a waiting receiver gets another thread's message", "%ld", got);

    struct msqid_ds status;
    check(msgctl(queue, IPC_STAT, &status) == 0 && status.msg_qnum == 0 && status.msg_lspid == getpid() &&
              status.msg_lrpid == getpid(),
          "IPC_STAT", "qnum %lu lspid %d", (unsigned long)status.msg_qnum, (int)status.msg_lspid);
    status.msg_qbytes = 8;
    check(msgctl(queue, IPC_SET, &status) == 0, "IPC_SET msg_qbytes", "failed");
    send_text(queue, 1, "12345678", 0);
    errno = 0;
    check(send_text(queue, 1, "x", IPC_NOWAIT) == -1 && errno == EAGAIN, "a full queue: EAGAIN", "errno %d",
          errno);
    struct msginfo info;
    check(msgctl(0, IPC_INFO, (struct msqid_ds *)&info) >= 0 && info.msgmax > 0, "IPC_INFO", "failed");
    msgrcv(queue, &message, sizeof message.text, 0, 0);

    pthread_t receiver;
    pthread_create(&receiver, NULL, receive_once, NULL);
    /* Nothing counts a waiting receiver: give it a second to wait. */
    for (int tries = 0; tries < 500; tries++)
        pause_briefly();
    check(msgctl(queue, IPC_RMID, NULL) == 0, "IPC_RMID", "failed");
    void *result;
    pthread_join(receiver, &result);
    check((long)result == -EIDRM, "a removed queue fails its waiters with EIDRM", "%ld", (long)result);
    errno = 0;
    check(msgsnd(queue, &message, 1, 0) == -1 && errno == EINVAL, "a removed queue: EINVAL", "errno %d",
          errno);
}

static int set_for_threads;

static void *take_one(void *argument) {
    (void)argument;
    struct sembuf take = {0, -1, 0};
    return (void *)(long)(semop(set_for_threads, &take, 1) == 0 ? 0 : -errno);
}

/* Waits (up to 10 s) until `command` (GETNCNT, GETZCNT) of semaphore 0 is `count`. */
static int wait_for_count(int set, int command, int count) {
    for (int tries = 0; tries < 5000; tries++) {
        if (semctl(set, 0, command) == count)
            return 1;
        pause_briefly();
    }
    return 0;
}

static void check_semaphores(void) {
    int set = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    check(set >= 0, "semget", "failed");
    unsigned short values[3] = {1, 2, 0};
    union semun argument = {.values = values};
    check(semctl(set, 0, SETALL, argument) == 0, "SETALL", "failed");
    struct sembuf both[2] = {{0, -1, 0}, {1, -3, IPC_NOWAIT}};
    errno = 0;
    check(semop(set, both, 2) == -1 && errno == EAGAIN, "operations that cannot all apply: EAGAIN",
          "errno %d", errno);
    check(semctl(set, 0, GETVAL) == 1 && semctl(set, 1, GETVAL) == 2, "none of them applied", "%d %d",
          semctl(set, 0, GETVAL), semctl(set, 1, GETVAL));
    struct sembuf together[2] = {{0, -1, 0}, {1, 1, 0}};
    check(semop(set, together, 2) == 0 && semctl(set, 1, GETVAL) == 3, "operations apply together", "failed");
    check(semctl(set, 1, GETPID) == getpid(), "GETPID", "%d", semctl(set, 1, GETPID));
    struct sembuf zero = {2, 0, 0};
    check(semop(set, &zero, 1) == 0, "waiting for zero on zero", "failed");
    struct timespec timeout = {0, 20000000};
    struct sembuf take = {0, -1, 0};
    errno = 0;
    check(semtimedop(set, &take, 1, &timeout) == -1 && errno == EAGAIN, "semtimedop times out: EAGAIN",
          "errno %d", errno);
    struct sembuf beyond = {3, 1, 0};
    errno = 0;
    check(semop(set, &beyond, 1) == -1 && errno == EFBIG, "a semaphore out of range: EFBIG", "errno %d", errno);
    union semun big = {.value = 40000};
    errno = 0;
    check(semctl(set, 0, SETVAL, big) == -1 && errno == ERANGE, "SETVAL past SEMVMX: ERANGE", "errno %d",
          errno);

    set_for_threads = set;
    pthread_t taker;
    pthread_create(&taker, NULL, take_one, NULL);
    check(wait_for_count(set, GETNCNT, 1), "GETNCNT counts a waiting thread", "%d", semctl(set, 0, GETNCNT));
    struct sembuf give = {0, 1, 0};
    semop(set, &give, 1);
    void *result;
    pthread_join(taker, &result);
    check(result == NULL && semctl(set, 0, GETNCNT) == 0, "another thread's increment wakes it", "%ld",
          (long)result);

    struct semid_ds status;
    union semun status_argument = {.status = &status};
    check(semctl(set, 0, IPC_STAT, status_argument) == 0 && status.sem_nsems == 3, "IPC_STAT", "nsems %lu",
          (unsigned long)status.sem_nsems);
    unsigned short read_back[3];
    union semun read_argument = {.values = read_back};
    check(semctl(set, 0, GETALL, read_argument) == 0 && read_back[0] == 0 && read_back[1] == 3,
          "GETALL", "%u %u", read_back[0], read_back[1]);
    struct seminfo info;
    union semun info_argument = {.values = (unsigned short *)&info};
    check(semctl(0, 0, IPC_INFO, info_argument) >= 0 && info.semvmx == 32767, "IPC_INFO", "semvmx %d",
          info.semvmx);

    pthread_create(&taker, NULL, take_one, NULL);
    wait_for_count(set, GETNCNT, 1);
    check(semctl(set, 0, IPC_RMID) == 0, "IPC_RMID", "failed");
    pthread_join(taker, &result);
    check((long)result == -EIDRM, "a removed set fails its waiters with EIDRM", "%ld", (long)result);
}

static mqd_t queue_for_sender;

static void *send_to_queue_later(void *argument) {
    (void)argument;
    pause_briefly();
    mq_send(queue_for_sender, "later", 5, 7);
    return NULL;
}

static void check_posix_queues(void) {
    const char *name = "/rosv-ipc-check";
    mq_unlink(name);
    struct mq_attr attributes = {.mq_maxmsg = 3, .mq_msgsize = 32};
    mqd_t queue = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attributes);
    check(queue != (mqd_t)-1, "mq_open", "failed");
    errno = 0;
    check(mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attributes) == (mqd_t)-1 && errno == EEXIST,
          "O_EXCL on an existing queue: EEXIST", "errno %d", errno);
    mq_send(queue, "one", 3, 1);
    mq_send(queue, "five", 4, 5);
    mq_send(queue, "three", 5, 3);
    struct mq_attr now;
    check(mq_getattr(queue, &now) == 0 && now.mq_curmsgs == 3 && now.mq_maxmsg == 3 && now.mq_msgsize == 32,
          "mq_getattr", "curmsgs %ld", (long)now.mq_curmsgs);
    struct pollfd entry = {queue, POLLIN | POLLOUT, 0};
    check(poll(&entry, 1, 0) == 1 && entry.revents == POLLIN, "a full queue polls readable only", "revents %x",
          entry.revents);
    char text[64];
    unsigned priority = 0;
    ssize_t got = mq_receive(queue, text, sizeof text, &priority);
    check(got == 4 && priority == 5 && memcmp(text, "five", 4) == 0, "the highest priority first",
          "%zd priority %u", got, priority);
    got = mq_receive(queue, text, sizeof text, &priority);
    check(got == 5 && priority == 3, "then the next", "%zd priority %u", got, priority);
    errno = 0;
    check(mq_receive(queue, text, 8, NULL) == -1 && errno == EMSGSIZE, "a buffer shorter than mq_msgsize: EMSGSIZE",
          "errno %d", errno);
    char long_text[40] = {0};
    errno = 0;
    check(mq_send(queue, long_text, sizeof long_text, 0) == -1 && errno == EMSGSIZE,
          "a message longer than mq_msgsize: EMSGSIZE", "errno %d", errno);
    mq_receive(queue, text, sizeof text, NULL);
    struct mq_attr nonblocking = {.mq_flags = O_NONBLOCK};
    mq_setattr(queue, &nonblocking, NULL);
    errno = 0;
    check(mq_receive(queue, text, sizeof text, NULL) == -1 && errno == EAGAIN, "O_NONBLOCK on empty: EAGAIN",
          "errno %d", errno);
    struct mq_attr blocking = {.mq_flags = 0};
    mq_setattr(queue, &blocking, NULL);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 30000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    errno = 0;
    check(mq_timedreceive(queue, text, sizeof text, NULL, &deadline) == -1 && errno == ETIMEDOUT,
          "mq_timedreceive times out: ETIMEDOUT", "errno %d", errno);

    queue_for_sender = queue;
    pthread_t sender;
    pthread_create(&sender, NULL, send_to_queue_later, NULL);
    got = mq_receive(queue, text, sizeof text, &priority);
    pthread_join(sender, NULL);
    check(got == 5 && priority == 7, "a waiting receiver gets another thread's message", "%zd", got);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGUSR1;
    event.sigev_value.sival_int = 31;
    check(mq_notify(queue, &event) == 0, "mq_notify", "failed");
    errno = 0;
    check(mq_notify(queue, &event) == -1 && errno == EBUSY, "a second registration: EBUSY", "errno %d", errno);
    mq_send(queue, "ping", 4, 0);
    siginfo_t info;
    struct timespec wait = {10, 0};
    int signal = sigtimedwait(&set, &info, &wait);
    check(signal == SIGUSR1 && info.si_code == SI_MESGQ && info.si_value.sival_int == 31,
          "a message in the empty queue sends the signal", "signal %d code %d", signal, info.si_code);
    check(mq_notify(queue, &event) == 0 && mq_notify(queue, NULL) == 0, "registered again, then removed",
          "failed");
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    char description[128] = {0};
    check(read(queue, description, sizeof description - 1) > 0 && strncmp(description, "QSIZE:4", 7) == 0,
          "reading the descriptor describes the queue", "%s", description);

    check(mq_close(queue) == 0 && mq_unlink(name) == 0, "mq_close and mq_unlink", "failed");
    errno = 0;
    check(mq_open(name, O_RDWR) == (mqd_t)-1 && errno == ENOENT, "an unlinked name: ENOENT", "errno %d", errno);
    errno = 0;
    check(mq_open("/rosv/nested", O_RDWR | O_CREAT, 0600, NULL) == (mqd_t)-1 && errno == EACCES,
          "a name with a slash inside: EACCES", "errno %d", errno);
}

static pthread_mutex_t inheriting;
static long shared_count;

static void *add_many(void *argument) {
    (void)argument;
    for (int index = 0; index < 20000; index++) {
        pthread_mutex_lock(&inheriting);
        shared_count++;
        pthread_mutex_unlock(&inheriting);
    }
    return NULL;
}

static void *try_while_held(void *argument) {
    (void)argument;
    return (void *)(long)pthread_mutex_trylock(&inheriting);
}

static void *lock_and_leave(void *argument) {
    pthread_mutex_lock((pthread_mutex_t *)argument);
    return NULL;
}

/* Priority-inheritance mutexes (the kernel's PI futexes under contention)
 * and a robust one whose owner ends while holding it. */
static void check_inheriting_mutexes(void) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    check(pthread_mutexattr_setprotocol(&attributes, PTHREAD_PRIO_INHERIT) == 0, "PTHREAD_PRIO_INHERIT", "refused");
    pthread_mutex_init(&inheriting, &attributes);
    pthread_t adders[4];
    for (int index = 0; index < 4; index++)
        pthread_create(&adders[index], NULL, add_many, NULL);
    for (int index = 0; index < 4; index++)
        pthread_join(adders[index], NULL);
    check(shared_count == 80000, "a contended PI mutex excludes", "count %ld", shared_count);
    pthread_mutex_lock(&inheriting);
    pthread_t trier;
    void *result;
    pthread_create(&trier, NULL, try_while_held, NULL);
    pthread_join(trier, &result);
    check((long)result == EBUSY, "trylock of a held PI mutex: EBUSY", "%ld", (long)result);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    check(pthread_mutex_unlock(&inheriting) == 0, "unlock", "failed");
    check(pthread_mutex_timedlock(&inheriting, &deadline) == 0 && pthread_mutex_unlock(&inheriting) == 0,
          "timedlock of a free PI mutex", "failed");

    pthread_mutex_t robust;
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &attributes);
    pthread_t owner;
    pthread_create(&owner, NULL, lock_and_leave, &robust);
    pthread_join(owner, NULL);
    int locked = pthread_mutex_lock(&robust);
    check(locked == EOWNERDEAD, "a robust PI mutex whose owner ended: EOWNERDEAD", "%d", locked);
    check(pthread_mutex_consistent(&robust) == 0 && pthread_mutex_unlock(&robust) == 0 &&
              pthread_mutex_lock(&robust) == 0 && pthread_mutex_unlock(&robust) == 0,
          "made consistent, it works again", "failed");
    pthread_mutexattr_destroy(&attributes);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    check_inheriting_mutexes();
    check_posix_queues();
    check_message_queues();
    check_semaphores();
    printf("%d checks failed\n", failures);
    return failures;
}
