/* The checking programs' reporting: one line per check, "ok <name>" or
 * "FAIL <name>: <why> (errno <n>)", counted in `failures`; the programs
 * print "<n> checks failed" at the end and exit with that count. A check
 * the machine cannot make prints "skip <name>: <why>". */
#ifndef ROSV_CHECKS_H
#define ROSV_CHECKS_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static int failures;

__attribute__((format(printf, 3, 4))) static void check(int passed, const char *name, const char *why, ...) {
    if (passed) {
        printf("ok %s\n", name);
        return;
    }
    int saved = errno;
    va_list arguments;
    va_start(arguments, why);
    printf("FAIL %s: ", name);
    vprintf(why, arguments);
    printf(" (errno %d)\n", saved);
    va_end(arguments);
    failures++;
}

/* A check this machine cannot make: "skip <name>: <why>", not counted. */
__attribute__((unused, format(printf, 2, 3))) static void skip(const char *name, const char *why, ...) {
    va_list arguments;
    va_start(arguments, why);
    printf("skip %s: ", name);
    vprintf(why, arguments);
    printf("\n");
    va_end(arguments);
}

#endif
