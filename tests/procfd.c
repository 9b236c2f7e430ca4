#include "procfd.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

bool tu_wait_fd_open(pid_t pid, const char *path, double seconds)
{
    char real[4096];
    if (realpath(path, real) == NULL) /* the descriptor's link is resolved */
        snprintf(real, sizeof real, "%s", path);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char dir[64];
        snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
        DIR *d = opendir(dir);
        if (d == NULL)
            return false; /* gone */
        struct dirent *de;
        bool found = false;
        while (!found && (de = readdir(d)) != NULL) {
            char link[320], target[4096];
            snprintf(link, sizeof link, "%s/%s", dir, de->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n > 0) {
                target[n] = '\0';
                found = strcmp(target, real) == 0;
            }
        }
        closedir(d);
        if (found)
            return true;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > seconds)
            return false;
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
}
