/* Sleeps far longer than any test waits. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("sleeping\n");
    fflush(stdout);
    sleep(100000);
    return 0;
}
