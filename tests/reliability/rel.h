/* rel.h - helpers shared by the reliability programs (fault sweep, crash
 * test, concurrency, soak). They are plain programs, not cmocka suites:
 * most of their work happens in forked children, and each ends with the
 * line "N passed, N failed" that tests/run.sh reads. */
#ifndef REL_H
#define REL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "migrate.h"

/* A check inside the current case; on failure it prints where and why and
 * carries on, so one run shows every broken promise. */
#define REL_CHECK(cond, ...) rel_check((cond), __FILE__, __LINE__, __VA_ARGS__)
void rel_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Ends a case (one faulty run, one kill, one round...): it passed if none
 * of its checks failed. The summary counts cases, not checks. */
void rel_case(void);
/* Whether to run the full version: --full as the first argument, or
 * REL_FULL=1 in the environment (tests/run.sh passes no arguments). */
bool rel_full(int argc, char **argv);
/* Ends the last case, prints the summary line ("N passed, N failed", in
 * cases, and the number of checks) and returns the exit status. */
int rel_summary(void);

/* Fails the whole program (setup errors, not findings). */
void rel_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A fresh directory under $TMPDIR (or /tmp), symlink-free; free() it. */
char *rel_tmpdir(const char *tag);
void rel_rmtree(const char *path);
/* printf into a malloc'd string. */
char *rel_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes path (and its parents), plain stdio: for setup only. */
void rel_write(const char *path, const char *content);
/* The content of path, or NULL if it cannot be read; free() it. */
char *rel_read(const char *path);
bool rel_exists(const char *path);
/* Names in dir that start with prefix. */
int rel_count_prefixed(const char *dir, const char *prefix);
int rel_count_fds(void);
/* tu_wait_fd_open(), shared with the cmocka tests: whether another process
 * holds a descriptor on a path. */
#include "procfd.h"
/* VmRSS of this process in KiB. */
long rel_rss_kib(void);

/* ---- a world: one program's throw-away tree ------------------------------- */

/* A fresh <tag> directory holding migrations/ and home/, and options that
 * point at them: the state in its default place under home, memory_limit
 * 32 MiB, timeout_ms as given. */
typedef struct rel_world {
    char *root, *migrations, *home;
    migrate_options opts;
} rel_world;
void rel_world_init(rel_world *w, const char *tag, unsigned timeout_ms);
/* Removes the tree and frees the paths. */
void rel_world_free(rel_world *w);
/* Empties home, leaving only the file "keep" so that it exists. */
void rel_reset_home(const char *home);

/* The state file at path: *ids (malloc'd array of malloc'd strings) and
 * *count. Returns 1 when it parses and is well-formed, 0 when absent, -1
 * when corrupt (*why says how). */
int rel_state_ids(const char *path, char ***ids, size_t *count, const char **why);
void rel_free_ids(char **ids, size_t count);

/* ---- the fault shim ------------------------------------------------------- */

/* Re-executes the program with build/.../faultshim.so preloaded unless it
 * already is; afterwards the rel_shim_* calls work. */
void rel_with_shim(char **argv);
/* Sets FAULTSHIM_* (NULL leaves a variable unset) and arms the shim. */
void rel_shim_arm(const char *prefix, const char *ops, long nth, const char *err,
                  const char *action);
void rel_shim_disarm(void);
long rel_shim_calls(void);
const char *rel_shim_fired_at(void);

/* ---- children --------------------------------------------------------------- */

/* What a child run reports to its parent through a pipe. */
typedef struct rel_outcome {
    bool exited;      /* false: killed by a signal (sig), or wait failed */
    int sig;
    int status;       /* exit status when exited */
    int rc;           /* migrate_run's return code, if the child got that far */
    long calls;       /* shim calls counted */
    char fired_at[512];
    char error[512];  /* the report's run-level error, if any */
} rel_outcome;

/* Runs fn(arg, &o) in a forked child, which fills o (except exited, sig
 * and status) and returns its exit status. */
void rel_in_child(int (*fn)(void *arg, rel_outcome *o), void *arg, rel_outcome *out);

#endif
