/* testutil.h - helpers shared by the cmocka tests: temporary trees, files,
 * and the test seam hook. Every helper fails the current test on error. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh directory under $TMPDIR (or /tmp); free() the path. */
char *tu_tmpdir(void);
/* rm -rf path (does not follow symlinks). */
void tu_rmtree(const char *path);
/* Joins a and b with one "/"; free() it. */
char *tu_path(const char *a, const char *b);
/* Writes content to dir/rel, creating parent directories. */
void tu_write(const char *dir, const char *rel, const char *content);
/* The content of dir/rel (rel may be NULL), or NULL if it cannot be read; free() it. */
char *tu_read(const char *dir, const char *rel);
/* Whether dir/rel exists (lstat). */
bool tu_exists(const char *dir, const char *rel);
/* Number of entries in a directory (without . and ..), or -1. */
int tu_count_entries(const char *dir);
/* Number of open file descriptors of this process. */
int tu_count_fds(void);

/* Called at every MIG_TEST_SEAM(point) of the test build of the library
 * when set; reset to NULL after each use by the test that set it. */
extern void (*tu_seam_hook)(const char *point);

#endif
