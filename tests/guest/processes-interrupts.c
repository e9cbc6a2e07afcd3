/* Catches SIGINT and SIGQUIT and reports each one: prints "ready", then
 * "SIGINT <n>" for the n-th SIGINT it gets (and "SIGQUIT <n>" likewise),
 * forever; SIGTERM (not caught) ends it. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t interrupts;
static volatile sig_atomic_t quits;

static void on_signal(int signal) {
    if (signal == SIGINT) {
        interrupts++;
    } else {
        quits++;
    }
}

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGQUIT, &action, NULL);
    sigset_t blocked;
    sigset_t waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGQUIT);
    sigprocmask(SIG_BLOCK, &blocked, &waiting);
    printf("ready\n");
    fflush(stdout);
    int reported = 0;
    int reported_quits = 0;
    for (;;) {
        /* The signals come only while waiting here, so none is missed. */
        while (interrupts == reported && quits == reported_quits) {
            sigsuspend(&waiting);
        }
        while (reported < interrupts) {
            reported++;
            printf("SIGINT %d\n", reported);
        }
        while (reported_quits < quits) {
            reported_quits++;
            printf("SIGQUIT %d\n", reported_quits);
        }
        fflush(stdout);
    }
}
