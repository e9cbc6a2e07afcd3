/* Checks inotify for changes made by the program itself: a directory's
 * watch sees entries made, opened, written, closed, changed, renamed (two
 * events joined by a cookie) and removed, with their names; a file's
 * watch sees its own events and its deletion (IN_DELETE_SELF, then
 * IN_IGNORED); IN_ONESHOT, IN_ONLYDIR, IN_MASK_ADD and IN_MASK_CREATE;
 * inotify_rm_watch; reads through read, poll and epoll, and the errors;
 * dnotify (F_NOTIFY): a one-shot and a DN_MULTISHOT watch signalling the
 * directory's owner with the F_SETSIG signal, and its removal.
 * Prints one line per check and exits with the number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checks.h"

static char directory[200];

/* The events read at once, as "MASK name" lines, and the cookies. */
struct seen {
    char text[2048];
    unsigned cookies[16];
    int count;
};

static const char *event_name(unsigned mask) {
    static char name[64];
    name[0] = 0;
    const struct {
        unsigned bit;
        const char *name;
    } bits[] = {
        {IN_ACCESS, "ACCESS"},       {IN_MODIFY, "MODIFY"},         {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
        {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},    {IN_CREATE, "CREATE"},
        {IN_DELETE, "DELETE"},       {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_IGNORED, "IGNORED"},     {IN_ISDIR, "ISDIR"},
    };
    for (size_t index = 0; index < sizeof bits / sizeof bits[0]; index++) {
        if (mask & bits[index].bit) {
            if (name[0])
                strcat(name, "|");
            strcat(name, bits[index].name);
        }
    }
    return name;
}

static void drain(int fd, struct seen *seen) {
    char buffer[4096] __attribute__((aligned(8)));
    memset(seen, 0, sizeof *seen);
    ssize_t length = read(fd, buffer, sizeof buffer);
    for (ssize_t at = 0; at < length;) {
        struct inotify_event *event = (struct inotify_event *)(buffer + at);
        char line[128];
        snprintf(line, sizeof line, "%d %s %s\n", event->wd, event_name(event->mask),
                 event->len ? event->name : "-");
        strncat(seen->text, line, sizeof seen->text - strlen(seen->text) - 1);
        if (seen->count < 16)
            seen->cookies[seen->count] = event->cookie;
        seen->count++;
        at += (ssize_t)sizeof *event + event->len;
    }
}

/* The next F_SETSIG signal within `timeout_ms`: its si_fd, or -1. */
static int next_directory_signal(int timeout_ms) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    struct timespec timeout = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    siginfo_t info;
    if (sigtimedwait(&set, &info, &timeout) != SIGRTMIN + 1)
        return -1;
    return info.si_code == POLL_MSG ? info.si_fd : -2;
}

static void check_dnotify(void) {
    char path[256], second[256];
    snprintf(path, sizeof path, "%s/dnotify", directory);
    snprintf(second, sizeof second, "%s/dnotify-2", directory);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = open(directory, O_RDONLY | O_DIRECTORY);
    int plain = open("/proc/self/status", O_RDONLY);
    check(fcntl(plain, F_NOTIFY, DN_CREATE) == -1 && errno == ENOTDIR, "F_NOTIFY needs a directory", "accepted");
    close(plain);
    check(fcntl(fd, F_NOTIFY, DN_MULTISHOT) == 0, "F_NOTIFY with no kind of change", "failed");
    check(fcntl(fd, F_SETSIG, SIGRTMIN + 1) == 0 && fcntl(fd, F_NOTIFY, DN_CREATE) == 0, "F_NOTIFY DN_CREATE",
          "failed");
    check(fcntl(fd, F_GETOWN) == getpid(), "F_NOTIFY makes the caller the owner", "%d", fcntl(fd, F_GETOWN));
    close(open(path, O_CREAT | O_WRONLY, 0644));
    int got = next_directory_signal(2000);
    check(got == fd, "an entry made signals with the descriptor", "%d", got);
    close(open(second, O_CREAT | O_WRONLY, 0644));
    got = next_directory_signal(100);
    check(got == -1, "a one-shot watch signals once", "%d", got);
    check(fcntl(fd, F_NOTIFY, DN_DELETE | DN_MULTISHOT) == 0, "F_NOTIFY DN_DELETE | DN_MULTISHOT", "failed");
    unlink(path);
    unlink(second);
    int first = next_directory_signal(2000);
    got = next_directory_signal(2000);
    check(first == fd && got == fd, "a multishot watch signals every time", "%d %d", first, got);
    check(fcntl(fd, F_NOTIFY, 0) == 0, "F_NOTIFY 0 ends the watch", "failed");
    close(open(path, O_CREAT | O_WRONLY, 0644));
    unlink(path);
    got = next_directory_signal(100);
    check(got == -1, "an ended watch is silent", "%d", got);
    close(fd);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/watches-XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(directory) == NULL) {
        printf("FAIL mkdtemp (errno %d)\n1 checks failed\n", errno);
        return 1;
    }
    char file[256], renamed[256], sub[256];
    snprintf(file, sizeof file, "%s/file", directory);
    snprintf(renamed, sizeof renamed, "%s/renamed", directory);
    snprintf(sub, sizeof sub, "%s/sub", directory);

    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    check(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) && (fcntl(fd, F_GETFL) & O_NONBLOCK),
          "inotify_init1 with IN_NONBLOCK and IN_CLOEXEC", "failed");
    int watch = inotify_add_watch(fd, directory, IN_ALL_EVENTS & ~(IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE));
    check(watch > 0, "inotify_add_watch on a directory", "failed");
    struct seen seen;
    errno = 0;
    char small[8];
    check(read(fd, small, sizeof small) == -1 && errno == EAGAIN, "nothing to read yet", "no EAGAIN");

    int out = open(file, O_WRONLY | O_CREAT, 0644);
    check(out >= 0 && write(out, "data", 4) == 4 && close(out) == 0, "make and write a file", "failed");
    int pending = 0;
    check(ioctl(fd, FIONREAD, &pending) == 0 && pending > 0, "FIONREAD counts the waiting bytes", "%d", pending);
    errno = 0;
    check(read(fd, small, sizeof small) == -1 && errno == EINVAL, "a buffer too small for an event is EINVAL",
          "no EINVAL");
    drain(fd, &seen);
    char expected[512];
    snprintf(expected, sizeof expected, "%d CREATE file\n%d MODIFY file\n%d CLOSE_WRITE file\n", watch, watch,
             watch);
    check(strcmp(seen.text, expected) == 0, "create, modify and close_write, named", "got:\n%s", seen.text);

    check(chmod(file, 0600) == 0 && rename(file, renamed) == 0 && mkdir(sub, 0755) == 0 && rmdir(sub) == 0,
          "change, rename, make and remove", "failed");
    drain(fd, &seen);
    snprintf(expected, sizeof expected,
             "%d ATTRIB file\n%d MOVED_FROM file\n%d MOVED_TO renamed\n%d CREATE|ISDIR sub\n%d DELETE|ISDIR sub\n",
             watch, watch, watch, watch, watch);
    check(strcmp(seen.text, expected) == 0, "attrib, moves, and a directory's create and delete", "got:\n%s",
          seen.text);
    check(seen.count == 5 && seen.cookies[1] != 0 && seen.cookies[1] == seen.cookies[2] && seen.cookies[0] == 0,
          "the two halves of a rename share a cookie", "cookies %u %u", seen.cookies[1], seen.cookies[2]);

    /* A file's own watch, IN_MASK_ADD, IN_MASK_CREATE and IN_ONESHOT. */
    int own = inotify_add_watch(fd, renamed, IN_OPEN);
    check(own > 0 && own != watch, "a second watch on the file", "failed");
    check(inotify_add_watch(fd, renamed, IN_CLOSE_NOWRITE | IN_MASK_ADD) == own, "IN_MASK_ADD keeps the watch",
          "failed");
    errno = 0;
    check(inotify_add_watch(fd, renamed, IN_OPEN | IN_MASK_CREATE) == -1 && errno == EEXIST,
          "IN_MASK_CREATE on a watched file is EEXIST", "no EEXIST");
    int in = open(renamed, O_RDONLY);
    close(in);
    drain(fd, &seen);
    snprintf(expected, sizeof expected, "%d OPEN -\n%d CLOSE_NOWRITE -\n", own, own);
    check(strcmp(seen.text, expected) == 0, "the file's watch sees open and close, unnamed", "got:\n%s",
          seen.text);
    check(inotify_add_watch(fd, renamed, IN_OPEN | IN_ONESHOT) == own, "make it one-shot", "failed");
    in = open(renamed, O_RDONLY);
    close(in);
    in = open(renamed, O_RDONLY);
    close(in);
    drain(fd, &seen);
    snprintf(expected, sizeof expected, "%d OPEN -\n%d IGNORED -\n", own, own);
    check(strcmp(seen.text, expected) == 0, "IN_ONESHOT reports once, then ends", "got:\n%s", seen.text);

    errno = 0;
    check(inotify_add_watch(fd, renamed, IN_OPEN | IN_ONLYDIR) == -1 && errno == ENOTDIR,
          "IN_ONLYDIR on a file is ENOTDIR", "no ENOTDIR");
    errno = 0;
    check(inotify_add_watch(fd, renamed, 0) == -1 && errno == EINVAL, "an empty mask is EINVAL", "no EINVAL");
    errno = 0;
    check(inotify_add_watch(out, renamed, IN_OPEN) == -1 && errno == EBADF, "a closed descriptor is EBADF",
          "no EBADF");
    int other = open(renamed, O_RDONLY);
    drain(fd, &seen);
    errno = 0;
    check(inotify_add_watch(other, renamed, IN_OPEN) == -1 && errno == EINVAL, "a file that is not inotify: EINVAL",
          "no EINVAL");
    close(other);
    drain(fd, &seen);

    /* Deleting a watched file ends its watch. */
    int doomed = inotify_add_watch(fd, renamed, IN_DELETE_SELF | IN_ATTRIB);
    struct pollfd ready = {fd, POLLIN, 0};
    check(poll(&ready, 1, 0) == 0, "poll: nothing waiting", "ready");
    check(unlink(renamed) == 0, "unlink the file", "failed");
    check(poll(&ready, 1, 0) == 1 && (ready.revents & POLLIN), "poll: events waiting", "not ready");
    int epoll = epoll_create1(0);
    struct epoll_event interest = {.events = EPOLLIN, .data.fd = fd}, got;
    check(epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &interest) == 0 && epoll_wait(epoll, &got, 1, 0) == 1,
          "epoll: readable", "not ready");
    close(epoll);
    drain(fd, &seen);
    snprintf(expected, sizeof expected, "%d ATTRIB -\n%d DELETE_SELF -\n%d IGNORED -\n%d DELETE renamed\n", doomed,
             doomed, doomed, watch);
    check(strcmp(seen.text, expected) == 0,
          "attrib (the link count), delete_self and ignored for the file, then delete in the directory",
          "got:\n%s", seen.text);
    errno = 0;
    check(inotify_rm_watch(fd, doomed) == -1 && errno == EINVAL, "an ended watch cannot be removed", "no EINVAL");
    check(inotify_rm_watch(fd, watch) == 0, "inotify_rm_watch", "failed");
    drain(fd, &seen);
    snprintf(expected, sizeof expected, "%d IGNORED -\n", watch);
    check(strcmp(seen.text, expected) == 0, "which queues IN_IGNORED", "got:\n%s", seen.text);
    close(fd);
    FILE *limit = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
    int queued = 0;
    check(limit != NULL && fscanf(limit, "%d", &queued) == 1 && queued >= 16384,
          "/proc/sys/fs/inotify/max_queued_events", "%d", queued);
    if (limit != NULL)
        fclose(limit);
    check_dnotify();
    check(rmdir(directory) == 0, "the test directory is left empty", "rmdir failed");
    printf("\n%d checks failed\n", failures);
    return failures;
}
