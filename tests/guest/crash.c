/* Reads through a pointer into unmapped memory. */
#include <stdio.h>

int main(void) {
    volatile int *bad = (int *)0x10;
    printf("about to crash\n");
    fflush(stdout);
    return *bad;
}
