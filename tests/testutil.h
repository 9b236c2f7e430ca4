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
/* Temp files of atomic writes left in dir (".<name>.tmp-XXXXXX"); 0 if
 * dir does not exist. */
int tu_count_temps(const char *dir);
/* tu_wait_fd_open(): whether another process holds a descriptor on a path. */
#include "procfd.h"
/* Number of open file descriptors of this process. */
int tu_count_fds(void);

/* Called at every MIG_TEST_SEAM(point) of the test build of the library
 * when set; reset to NULL after each use by the test that set it. */
extern void (*tu_seam_hook)(const char *point);

/* A throw-away world for one test: root/migrations and root/home. */
#include "migrate.h"
typedef struct tu_world {
    char *root, *migrations, *home, *state_path;
    migrate_options opts; /* migrations_dir, home set; short timeouts */
} tu_world;
void tu_world_init(tu_world *w);
void tu_world_free(tu_world *w);
/* cmocka setup/teardown giving each test a fresh tu_world as *state. */
int tu_world_setup(void **state);
int tu_world_teardown(void **state);
/* Writes a migration script (or any file) under the migrations dir. */
void tu_script(tu_world *w, const char *rel, const char *lua);
/* A script whose migrate() appends its id to ~/ran.log (so a test can see
 * what ran, in what order) and whose check() looks for its id there. */
void tu_logging_script(tu_world *w, const char *rel);
/* The content of ~/ran.log ("" when absent); free() it. */
char *tu_ran(tu_world *w);
/* migrate_run(from, to, &w->opts); the report is stored in *out. */
int tu_run(tu_world *w, const char *from, const char *to, migrate_report **out);

#endif
