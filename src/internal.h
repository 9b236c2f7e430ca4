/*
 * internal.h - declarations shared between the library's source files.
 *
 * Nothing here is public. Every non-static symbol is prefixed mig_ and, in
 * the shared library, hidden (-fvisibility=hidden); only migrate_* marked
 * MIGRATE_EXTERN in migrate.h is exported.
 */
#ifndef MIGRATE_INTERNAL_H
#define MIGRATE_INTERNAL_H

#include "migrate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <lua.h>

/* ---- Errors -------------------------------------------------------------- */

/* Run-level error text. Fixed size: errors are built while memory may be
 * short, and a path plus a reason fits comfortably. */
#define MIG_ERRLEN 4096

/* snprintf into err (may be NULL); always returns `code` so a failing path
 * reads `return mig_errf(err, MIGRATE_EIO, "...", ...);`. */
int mig_errf(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* strerror(errnum) without the thread-safety problem of strerror(). */
const char *mig_strerror(int errnum, char *buf, size_t len);

/* ---- Test seams ---------------------------------------------------------- */

/* Named points where a test build (-DMIGRATE_TEST_SEAMS) lets the test
 * program act: crash, fail, or observe. Release builds compile them away. */
#ifdef MIGRATE_TEST_SEAMS
void migrate_test_seam(const char *point); /* defined by the test program */
#define MIG_TEST_SEAM(point) migrate_test_seam(point)
#else
#define MIG_TEST_SEAM(point) ((void)0)
#endif

/* ---- SemVer (version.c) ------------------------------------------------- */

/* Like migrate_version_parse() on the first len bytes of text; on failure
 * *why (if not NULL) is a static English reason ("leading zero in minor"). */
int mig_version_parse(const char *text, size_t len, migrate_version *out, const char **why);

/* Pushes the `semver` table (compare, parse, in_range). */
void mig_open_semver(lua_State *L);

/* ---- SHA-256 (sha256.c) ---------------------------------------------------- */

typedef struct mig_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
} mig_sha256;
void mig_sha256_init(mig_sha256 *s);
void mig_sha256_update(mig_sha256 *s, const void *data, size_t len);
void mig_sha256_final(mig_sha256 *s, unsigned char digest[32]);
/* Hex digest of data into hex (65 bytes with the NUL). */
void mig_sha256_hex(const void *data, size_t len, char hex[65]);

/* ---- Durable files (durable.c) ------------------------------------------- */

/* Replaces path with data, atomically and durably (SPEC §6): a temp file
 * ".<name>.tmp-XXXXXX" created O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC in the
 * same directory, a full write (EINTR and short writes handled), fsync,
 * checked close, rename over path, fsync of the directory. On any error the
 * temp file is removed and path keeps its old content.
 * mode < 0: keep the mode of the existing file, or 0644 & ~umask for a new
 * one; otherwise exactly `mode`.
 * Returns 0 or an errno value; *stage (if not NULL) names the failing step
 * ("open", "write", "fsync", "close", "rename", "fsync dir"). */
int mig_write_atomic(const char *path, const void *data, size_t len, int mode, const char **stage);

/* fsync() the directory that holds path. Returns 0 or an errno value. */
int mig_fsync_parent(const char *path);

/* Reads a whole regular file into a malloc'd, NUL-terminated buffer.
 * Returns 0 or an errno value (EFBIG past max bytes). */
int mig_read_file(const char *path, size_t max, char **out, size_t *len);

/* mkdir -p with `mode` for the directories it creates. 0 or an errno value. */
int mig_mkdir_parents(const char *path, mode_t mode);

/* ---- Embedded Lua sources (generated from lua/ by tools/embed.c) -------- */

typedef struct mig_embedded {
    const char *name; /* "lua/fs.lua": the chunk name is "@" + name */
    const char *data;
    size_t len;
} mig_embedded;
/* The embedded file with that name, or NULL. */
const mig_embedded *mig_embedded_find(const char *name);

/* ---- fs module (fs.c, lua/fs.lua) ------------------------------------------ */

/* Where a script's fs may act. Owned by the sandbox; must outlive the
 * lua_State. Paths are absolute and symlink-free. */
typedef struct mig_fsenv {
    const char *home;                    /* what "~/" expands to */
    const char *const *roots;            /* NULL-terminated allowed roots */
    const char *const *protected_paths;  /* NULL-terminated: state file, its lock */
    const char *readonly_reason;         /* NULL: writable; else why not */
} mig_fsenv;

/* Pushes the `fs` table: the C primitives of fs.c; lua/fs.lua adds the
 * helpers written in Lua when the sandbox runs it with (fs, json). */
void mig_open_fs(lua_State *L, mig_fsenv *env);

/* ---- json module (json.c) ------------------------------------------------- */

/* Pushes the `json` table: decode, encode, null, array, object. */
void mig_open_json(lua_State *L);

#endif /* MIGRATE_INTERNAL_H */
