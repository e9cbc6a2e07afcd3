/* Catches SIGINT and reports each one: prints "ready", then "SIGINT <n>"
 * for the n-th SIGINT it gets, forever; SIGTERM (not caught) ends it. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t interrupts;

static void on_interrupt(int signal) {
    (void)signal;
    interrupts++;
}

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = on_interrupt;
    sigaction(SIGINT, &action, NULL);
    sigset_t blocked;
    sigset_t waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigprocmask(SIG_BLOCK, &blocked, &waiting);
    printf("ready\n");
    fflush(stdout);
    int reported = 0;
    for (;;) {
        /* SIGINT comes only while waiting here, so none is missed. */
        while (interrupts == reported) {
            sigsuspend(&waiting);
        }
        while (reported < interrupts) {
            reported++;
            printf("SIGINT %d\n", reported);
        }
        fflush(stdout);
    }
}
