/* replay.c - runs a fuzz target over its committed corpus (tests/fuzz/<t>/)
 * without libFuzzer, so that every seed and every reproducer of a fixed
 * crash is a regression test in make test, with gcc's sanitizers as well.
 * usage: replay_<target> [DIR...]   (default: the corpus compiled in) */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char current[4096];

static void on_crash(int sig)
{
    static const char msg[] = "replay: crashed on ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, current, strlen(current));
    (void)!write(2, "\n", 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* The whole file as a malloc'd buffer of exactly its size (so ASan sees
 * a read past the end), or NULL. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *buf = NULL;
    size_t got;
    char chunk[4096];
    *len = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf = realloc(buf, *len + got);
        memcpy(buf + *len, chunk, got);
        *len += got;
    }
    fclose(f);
    return buf != NULL ? buf : malloc(1);
}

static int replay_dir(const char *dir)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, by_name), done = 0;
    if (n < 0) {
        perror(dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        snprintf(current, sizeof current, "%s/%s", dir, list[i]->d_name);
        bool hidden = list[i]->d_name[0] == '.';
        free(list[i]);
        size_t len;
        uint8_t *data = hidden ? NULL : slurp(current, &len);
        if (data == NULL)
            continue;
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        done++;
    }
    free(list);
    return done;
}

int main(int argc, char **argv)
{
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    int total = 0;
    for (int i = 1; i <= (argc > 1 ? argc - 1 : 1); i++) {
        int n = replay_dir(argc > 1 ? argv[i] : REPLAY_CORPUS);
        if (n < 0) {
            printf("0 passed, 1 failed\n");
            return 1;
        }
        total += n;
    }
    printf("%d passed, 0 failed\n", total);
    return 0;
}
