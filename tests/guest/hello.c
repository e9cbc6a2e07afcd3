/* Greets, then prints its arguments and environment, one per line. */
#include <stdio.h>

int main(int argc, char **argv, char **envp) {
    printf("Hello, world!\n");
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    for (char **variable = envp; *variable; variable++)
        printf("env %s\n", *variable);
    return 0;
}
