/* Prints the terminal's size, then again whenever SIGWINCH says it
   changed, until its input ends. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t has_changed;

static void on_change(int signal) {
    (void)signal;
    has_changed = 1;
}

static void print_size(const char *when) {
    struct winsize size;
    if (ioctl(1, TIOCGWINSZ, &size) == 0) {
        printf("%s: %d rows, %d columns\n", when, size.ws_row, size.ws_col);
    } else {
        printf("%s: no terminal\n", when);
    }
    fflush(stdout);
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_change; /* no SA_RESTART: a signal ends the read */
    sigaction(SIGWINCH, &action, NULL);
    print_size("start");
    char buffer[256];
    for (;;) {
        ssize_t length = read(0, buffer, sizeof buffer);
        if (has_changed) {
            has_changed = 0;
            print_size("resized");
        }
        if (length == 0) {
            break;
        }
        if (length > 0) {
            printf("read %zd bytes\n", length);
            fflush(stdout);
        }
    }
    printf("end of input\n");
    return 0;
}
