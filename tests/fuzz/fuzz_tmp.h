/* fuzz_tmp.h - scratch space shared by the fuzz targets: one directory per
 * process, on tmpfs when there is one (the library fsyncs; the disk is not
 * under test), removed with everything in it at exit. Header-only, so each
 * target stays a single translation unit for its build rule. */
#ifndef FUZZ_TMP_H
#define FUZZ_TMP_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_scratch[64];

static int fuzz_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* rm -rf path, links not followed. */
static inline void fuzz_remove_tree(const char *path)
{
    nftw(path, fuzz_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_remove_scratch(void)
{
    fuzz_remove_tree(fuzz_scratch);
}

/* The process's scratch directory ("libmigrate-fuzz-<name>-XXXXXX"), made on
 * first call; aborts when it cannot be. */
static inline const char *fuzz_scratch_dir(const char *name)
{
    if (fuzz_scratch[0] == '\0') {
        snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/libmigrate-fuzz-%s-XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", name);
        if (mkdtemp(fuzz_scratch) == NULL)
            abort();
        atexit(fuzz_remove_scratch);
    }
    return fuzz_scratch;
}

#endif
