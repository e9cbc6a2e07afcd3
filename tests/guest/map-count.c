/* Checks vm.max_map_count: a process maps separate areas until mmap fails
 * with ENOMEM close to the limit /proc/sys/vm/max_map_count states; then
 * an munmap that would cut a hole in an area and an mprotect that would
 * split one fail with ENOMEM, while an munmap of a whole area works and
 * makes room again. Passes on Linux. One line per check; exits with the
 * number of failed checks. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checks.h"

#define PAGE 4096UL
/* Three pages an area, a gap of three between areas (no merging). */
#define AREA (3 * PAGE)
#define STRIDE (2 * AREA)
#define MOST_AREAS 1000000

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    long limit = 0;
    FILE *setting = fopen("/proc/sys/vm/max_map_count", "r");
    check(setting != NULL && fscanf(setting, "%ld", &limit) == 1 && limit > 0 && limit < MOST_AREAS,
          "read_max_map_count", "limit %ld", limit);
    if (setting != NULL) {
        fclose(setting);
    }
    if (limit <= 0 || limit >= MOST_AREAS) {
        printf("%d checks failed\n", failures);
        return failures;
    }
    /* A window for the areas, reserved and given back at once. */
    size_t window = (size_t)(limit + 16) * STRIDE;
    char *base = mmap(NULL, window, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    check(base != MAP_FAILED && munmap(base, window) == 0, "reserve_window", "errno %d", errno);
    char **areas = calloc((size_t)limit + 16, sizeof *areas);
    long count = 0;
    int last_error = 0;
    while (count < limit + 16) {
        char *area = mmap(base + count * STRIDE, AREA, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (area == MAP_FAILED) {
            last_error = errno;
            break;
        }
        areas[count++] = area;
    }
    check(last_error == ENOMEM, "mmap_stops_with_enomem", "stopped after %ld areas with errno %d", count,
          last_error);
    check(count < limit && count > limit - 2000, "mmap_stops_near_the_limit", "%ld areas, limit %ld", count,
          limit);
    errno = 0;
    check(count > 2 && munmap(areas[1] + PAGE, PAGE) == -1 && errno == ENOMEM, "munmap_hole_is_enomem",
          "errno %d", errno);
    errno = 0;
    check(count > 2 && mprotect(areas[1] + PAGE, PAGE, PROT_READ) == -1 && errno == ENOMEM,
          "mprotect_split_is_enomem", "errno %d", errno);
    check(count > 2 && mprotect(areas[1], AREA, PROT_READ) == 0, "mprotect_whole_area_works", "errno %d",
          errno);
    check(count > 2 && munmap(areas[1] + 2 * PAGE, PAGE) == 0, "munmap_area_end_works", "errno %d", errno);
    check(count > 6 && munmap(areas[2], AREA) == 0 && munmap(areas[3], AREA) == 0 &&
              munmap(areas[5] + PAGE, PAGE) == 0,
          "munmap_hole_after_room_works", "errno %d", errno);
    areas[2] = areas[3] = NULL;
    for (long index = 0; index < count; index++) {
        if (areas[index] != NULL) {
            munmap(areas[index], AREA);
        }
    }
    free(areas);
    printf("%d checks failed\n", failures);
    return failures;
}
