/* Creates and joins short-lived threads one after another:
 * `thread-churn COUNT`. Each thread the kernel ends must give its memory
 * back, so a small machine runs any number of them. Prints
 * "COUNT threads created and joined" and exits 0, or names the failing
 * call and exits 1. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *nothing(void *argument) {
    return argument;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 1000;
    for (long index = 0; index < count; index++) {
        pthread_t thread;
        int rc = pthread_create(&thread, NULL, nothing, (void *)index);
        if (rc != 0) {
            printf("pthread_create failed after %ld threads: %s\n", index, strerror(rc));
            return 1;
        }
        void *result = NULL;
        rc = pthread_join(thread, &result);
        if (rc != 0 || result != (void *)index) {
            printf("pthread_join of thread %ld failed: %s\n", index, strerror(rc));
            return 1;
        }
    }
    printf("%ld threads created and joined\n", count);
    return 0;
}
