/* Uses up memory the way buggy programs do, so the tests can see how the
 * kernel ends them: `oom touch` mallocs and touches memory until it is
 * killed; `oom threads N` starts N threads that each touch a megabyte. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *toucher(void *unused) {
    for (;;) {
        char *block = malloc(1 << 20);
        if (block == NULL) {
            sleep(1);
            continue;
        }
        memset(block, 1, 1 << 20);
    }
    return unused;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "touch") == 0) {
        toucher(NULL);
    }
    if (argc > 2 && strcmp(argv[1], "threads") == 0) {
        int count = atoi(argv[2]);
        for (int index = 1; index < count; index++) {
            pthread_t thread;
            pthread_create(&thread, NULL, toucher, NULL);
        }
        toucher(NULL);
    }
    fprintf(stderr, "usage: oom touch | oom threads N\n");
    return 2;
}
