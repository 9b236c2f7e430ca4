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
#include <string.h>
#include <sys/stat.h>
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

/* Raises the error value on top of L's stack; a string is first given the
 * position of the script's call (level 1), as luaL_error would have, for
 * an error raised where no script line is in view (inside a lua_pcall of
 * the C function's own work, or a coroutine that wrap resumed). */
int mig_raise_at_caller(lua_State *L);

/* ---- Arrays ---------------------------------------------------------------- */

/* Doubles the capacity *cap (0: nothing allocated yet; then `first`) of
 * an array of `size`-byte items and returns the reallocated block with *cap
 * updated, or NULL, with items and *cap unchanged, when memory is short or
 * the size would overflow. */
void *mig_grow(void *items, size_t *cap, size_t size, size_t first);

/* ---- Numbers ---------------------------------------------------------------- */

/* Writes v in decimal at `at`, zero-padded to at least min_digits (at most
 * 20), and returns the end. By hand and inline: it sits on json.encode's
 * hot path, where snprintf was a tenth of the time. */
static inline char *mig_put_uint(char *at, unsigned long long v, int min_digits)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0 || n < min_digits);
    while (n > 0)
        *at++ = digits[--n];
    return at;
}

/* ---- Test seams ---------------------------------------------------------- */

/* Named points where a test build (-DMIGRATE_TEST_SEAMS) lets the test
 * program act: crash, fail, or observe. Release builds compile them away. */
#ifdef MIGRATE_TEST_SEAMS
void migrate_test_seam(const char *point); /* defined by the test program */
#define MIG_TEST_SEAM(point) migrate_test_seam(point)
/* The C stack a script may use (sandbox.c's SCRIPT_STACK), for the test
 * that proves the C-stack guard (test_deadline). */
extern size_t mig_test_script_stack;
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
 * ("open", "write", "chown", "chmod", "fsync", "close", "rename", "fsync dir"). */
int mig_write_atomic(const char *path, const void *data, size_t len, int mode, const char **stage);

/* The general form: fill(fd, ctx) writes the new content into the temp
 * file (returning 0 or an errno value); the protocol around it is the
 * same. The replaced file's owner and group carry over when the caller
 * may give files away (root). sweep: first remove path's leftover temps
 * (mig_sweep_temps); false only for a file whose temps the caller swept
 * under a lock it still holds (the state file, once per run). */
typedef int (*mig_fill_fn)(int fd, void *ctx);
int mig_replace_atomic(const char *path, mig_fill_fn fill, void *ctx, int mode, bool sweep,
                       const char **stage);
/* The same in the directory open as dirfd (O_PATH is enough), for the
 * entry name (one component): how fs.c writes, never re-resolving a path.
 * The temp, the rename and the directory sync all go through dirfd. An
 * existing entry is looked at without following it; a mode taken over
 * from it loses any setuid/setgid bit. */
int mig_replace_atomic_at(int dirfd, const char *name, mig_fill_fn fill, void *ctx, int mode,
                          bool sweep, const char **stage);
int mig_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, int mode,
                        const char **stage);

/* Removes the temp files (".<name>.tmp-XXXXXX") that writers of path killed
 * mid-write left beside it. mig_write_atomic() calls it before each
 * write: the caller holds the state lock, so no other run of ours is
 * writing there, and at worst a foreign concurrent writer of the same file
 * sees its rename fail; never a partial file. */
void mig_sweep_temps(const char *path);
void mig_sweep_temps_at(int dirfd, const char *name);

/* write() all of buf, retrying EINTR and short writes. 0 or an errno value. */
int mig_write_all(int fd, const void *buf, size_t len);

/* fsync() the directory that holds path. Returns 0 or an errno value. */
int mig_fsync_parent(const char *path);
/* fsync() the directory open as dirfd (an O_PATH one too). */
int mig_fsync_dirfd(int dirfd);
/* The same after a mkdirat() in dirfd (the sync mig_mkdir_parents does;
 * the power-loss simulator's "mkdir" switch skips both). */
int mig_fsync_new_dir(int dirfd);

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

/* A file-system object by identity: what every path that reaches it
 * (through symlinks, bind mounts, hard links) stats to. */
typedef struct mig_file_id {
    dev_t dev;
    ino_t ino;
} mig_file_id;

/* The run's state, protected by identity rather than by spelling (SPEC
 * §5): run.c fills it in once the state directory exists (after the lock
 * is taken; a dry run, which writes nothing, may have none) and keeps it up
 * to date while scripts run. fs refuses any call that would create, write,
 * replace, rename, remove or chmod
 * - an entry of the directory `dir` whose name is one of `names`, or
 *   starts with `temp_prefix` (a state write's temp file) — whether or not
 *   that entry exists yet: compare fstat() of the directory the call acts
 *   in (its resolved parent descriptor) with `dir`, then the final name;
 * - an object whose (st_dev, st_ino) is in `ancestors` (the state
 *   directory and every directory above it, "/" last): removing or renaming
 *   one (or renaming something over it) would take the state with it;
 * - an object whose (st_dev, st_ino) is in `files` (the state file as it is
 *   now, if it exists, and the lock file): a hard link or any other name
 *   reaching them. A state save replaces the state file, so run.c updates
 *   files[] after each save; readers must read it at call time.
 * The pointers stay valid for the whole run. */
typedef struct mig_protection {
    mig_file_id dir;            /* the directory that holds the state file and its lock */
    const char *const *names;   /* NULL-terminated: the state file's and the lock's base names */
    const char *temp_prefix;    /* ".<state base name>.tmp-" */
    const mig_file_id *ancestors; /* dir first, then each parent up to "/" */
    size_t n_ancestors;
    const mig_file_id *files;   /* the state file (when it exists) and the lock */
    size_t n_files;
} mig_protection;

/* Where a script's fs may act. Owned by the sandbox; must outlive the
 * lua_State. Paths are absolute and symlink-free. */
typedef struct mig_fsenv {
    const char *home;                    /* what "~/" expands to */
    const char *const *roots;            /* NULL-terminated allowed roots */
    /* NULL-terminated: the state file and its lock, by every spelling
     * run.c knows (also under each allowed root that is the same
     * directory as one of the state's ancestors, e.g. a bind mount of the
     * home); a string check, kept beside `protection`. */
    const char *const *protected_paths;
    const char *readonly_reason;         /* NULL: writable; else why not */
    const char *closed_reason;           /* NULL: may be read; else why not */
    const mig_protection *protection;    /* NULL: none (tests, dry runs); see above */
    struct mig_view *view;               /* NULL: the real files; else the rehearsal's view */
} mig_fsenv;

/* ---- The rehearsal's view (view.c; fs.c acts on it) --------------------------- */

/* Returned where an errno value would be: the view is over its limit. */
#define MIG_VIEW_FULL (-7)

/* A file's bytes in the view, shared by the files fs.copy made of it. */
typedef struct mig_blob {
    size_t refs, len;
    char data[];
} mig_blob;

enum { MIG_VN_FILE, MIG_VN_DIR, MIG_VN_LINK, MIG_VN_OTHER, MIG_VN_GONE };

/* One entry of the view (see view.c). */
typedef struct mig_vnode {
    struct mig_vnode *parent;   /* NULL for "/" */
    struct mig_vnode **kids;    /* sorted by name (strcmp) */
    size_t nkids, cap;
    char *name;
    int kind;                   /* MIG_VN_* */
    unsigned mode;              /* permission bits (07777) */
    int64_t mtime;
    uint64_t size;              /* a real file's or directory's st_size */
    dev_t dev;                  /* the real entry it mirrors; 0, 0: made in the view */
    ino_t ino;
    char *backing;              /* DIR: the real directory beneath it (NULL: none);
                                 * FILE without blob, OTHER: the real file */
    mig_blob *blob;             /* FILE: its bytes, when the view holds them */
    char *link;                 /* LINK: its target */
} mig_vnode;

typedef struct mig_view mig_view;

/* A change fs made in the view, until the run moves it into the report. */
typedef struct mig_vchange {
    migrate_change_kind kind;
    const char *type;           /* "file", "dir", "link" (static) */
    char *path, *from, *target;
    int mode, old_mode;
    uint64_t size;
    mig_blob *old_blob, *new_blob; /* a file's content before and after, */
    char *old_disk, *new_disk;     /* or the real file holding it, or neither: empty */
} mig_vchange;

mig_view *mig_view_new(size_t limit);
void mig_view_free(mig_view *v);
mig_vnode *mig_view_root(mig_view *v);
unsigned mig_view_umask(const mig_view *v);
size_t mig_view_peak(const mig_view *v);
/* dir's entry name (a node made from the real one on first sight), or
 * *out NULL when there is none. 0 or an error code. */
int mig_view_child(mig_view *v, const mig_fsenv *env, mig_vnode *dir, const char *name,
                   mig_vnode **out);
/* A new node of kind at dir/name (replacing what was there), mtime now. */
int mig_view_put(mig_view *v, mig_vnode *dir, const char *name, int kind, mig_vnode **out);
int mig_view_remove(mig_view *v, mig_vnode *n);
/* Moves n to dst_dir/name (replacing what was there). */
int mig_view_move(mig_view *v, mig_vnode *n, mig_vnode *dst_dir, const char *name);
int mig_view_set_string(mig_view *v, char **field, const char *s);
mig_blob *mig_view_blob(mig_view *v, const char *data, size_t len, int *err);
mig_blob *mig_view_blob_ref(mig_blob *b);
void mig_view_blob_drop(mig_view *v, mig_blob *b);
/* Journals a change (strings copied, blobs referenced). */
int mig_view_log(mig_view *v, const mig_vchange *c);
/* Moves the journal into migration i's changes in r, with diffs. */
int mig_view_flush(mig_view *v, const mig_fsenv *env, migrate_report *r, size_t i);

/* The real file system under the confinement of env (fs.c), for the view:
 * lstat of a symlink-free absolute path (a link's target into link), and
 * a regular file's bytes (at most max, else EFBIG; *out malloc'd). */
int mig_fs_disk_lstat(const mig_fsenv *env, const char *path, struct stat *st, char *link,
                      size_t link_size);
int mig_fs_disk_read(const mig_fsenv *env, const char *path, size_t max, char **out, size_t *len);

/* ---- Unified diffs (diff.c) ------------------------------------------------------ */

/* The diff from text a to text b, each line prefixed by indent: "" when
 * they are equal; malloc'd. NULL when out of memory or (*too_large) when
 * the texts differ in too many lines to compare. */
char *mig_unified_diff(const char *indent, const char *label_a, const char *a, size_t la,
                       const char *label_b, const char *b, size_t lb, bool *too_large);

/* Lexical normalization of an absolute path into out (strlen(path) + 2
 * bytes suffice): ".", ".." and "//" folded, no symlink looked at. */
void mig_path_normalize(const char *path, char *out);

/* Pushes the `fs` table: the C primitives of fs.c; lua/fs.lua adds the
 * helpers written in Lua when the sandbox runs it with (fs, json). */
void mig_open_fs(lua_State *L, mig_fsenv *env);

/* ---- encoders' output (outbuf.c) --------------------------------------------- */

/* The text json.encode or yaml.encode is writing: a userdata at stack slot
 * `slot`, grown by replacing it there, so that a raised error leaves
 * nothing to free. The stack above the slot is the encoder's own. */
typedef struct mig_outbuf {
    lua_State *L;
    const char *what; /* "json.encode": names the function in errors */
    char *data;
    size_t len, cap;
    int slot;
} mig_outbuf;

/* Pushes the (empty) buffer's userdata; its slot is the new stack top. */
void mig_outbuf_init(mig_outbuf *b, lua_State *L, const char *what);
/* Makes room for n more bytes, or raises "<what>: output too large". */
void mig_outbuf_grow(mig_outbuf *b, size_t n);
/* n copies of c. */
void mig_outbuf_fill(mig_outbuf *b, char c, size_t n);
/* Pushes the text written so far as a Lua string. */
void mig_outbuf_push(mig_outbuf *b);

static inline void mig_outbuf_reserve(mig_outbuf *b, size_t n)
{
    if (b->cap - b->len < n)
        mig_outbuf_grow(b, n);
}

static inline void mig_outbuf_add(mig_outbuf *b, const char *s, size_t n)
{
    mig_outbuf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static inline void mig_outbuf_char(mig_outbuf *b, char c)
{
    mig_outbuf_reserve(b, 1);
    b->data[b->len++] = c;
}

/* ---- json module (json.c) ------------------------------------------------- */

/* Pushes the `json` table: decode, encode, null, array, object. */
void mig_open_json(lua_State *L);
/* Pushes the table of json's internals that the document layer and the
 * editors build on (never a script's global): keys(t) (a table's keys in
 * json's order), kind(v) ("object"/"array"/nil), skip(text, pos), object,
 * array, rename, decode, encode, null. Built once per lua_State. */
void mig_json_push_internals(lua_State *L);

/* ---- documents (doc.c, lua/doc.lua) --------------------------------------- */

/* Pushes what the embedded chunk `name` ("lua/doc.lua") returns when called
 * with json's internals; loaded on first use, then cached per lua_State. */
void mig_push_doc_chunk(lua_State *L, const char *name);
/* Pushes the document layer: a table with new(backend, text) (SPEC §5.1). */
void mig_push_doc(lua_State *L);

/* ---- Bounded copies (cut.c) ------------------------------------------------ */

/* A malloc'd copy of the len bytes at s, or, past max bytes, of a prefix
 * ending at a character boundary plus "\u2026 [cut: N bytes]". NULL when out
 * of memory. mig_strdup_cut(s): strlen(s) bytes, MIGRATE_MAX_SCRIPT_TEXT. */
char *mig_strndup_cut(const char *s, size_t len, size_t max);
char *mig_strdup_cut(const char *s);

/* ---- dotenv module (dotenv.c, lua/dotenv.lua) ---------------------------- */

/* Replaces the json table on top of the stack with the `dotenv` table:
 * decode (python-dotenv 0.21's dotenv_values(interpolate=False)) and edit
 * (a .env document). with_backend (tests): the document backend is pushed
 * after it. Raises if lua/dotenv.lua is not embedded. */
void mig_open_dotenv(lua_State *L, bool with_backend);

/* The light userdata that is json.null (and yaml.null). */
void *mig_json_null(void);

/* ---- yaml module (yaml.c, yaml_encode.c) ----------------------------------- */

/* Pushes the `yaml` table: decode, encode, null. `json_decode` is the stack
 * index of json.decode as mig_open_json made it (taken before any script
 * ran): yaml shares its upvalues, the marker metatables and the key-order
 * registry, so that a decoded mapping is a json object (key order kept,
 * json.encode-able) and an empty sequence a json array. */
void mig_open_yaml(lua_State *L, int json_decode);

/* yaml.encode(value [, {indent = n}]), a C closure over the same three
 * upvalues as json's functions (object metatable, array metatable, key
 * orders). */
int mig_yaml_encode(lua_State *L);

/* ---- YAML node positions (yaml_doc.c) ------------------------------------ */
/* Pushes scan(text, path), the primitive under lua/yaml_edit.lua: the byte
 * range, style, anchor and tag of each node along path (an array of string
 * keys and 1-based indices) and of the children of each container on it;
 * raises on invalid YAML. */
void mig_push_yaml_scan(lua_State *L);
/* Sets yaml.edit(text) -> document (SPEC §5.1) in the yaml table on top of
 * the stack, which already holds decode and encode. */
void mig_yaml_add_edit(lua_State *L);

/* ---- Options (options.c) ---------------------------------------------------- */

/* *out = the caller's options (NULL: the defaults) with the defaults filled
 * in where a field says "default" (migrations_dir, memory limits);
 * MIGRATE_EINVAL with err for a version the library does not know. */
int mig_options_copy(const migrate_options *in, migrate_options *out, char *err);
/* The checks of migrate.h's "Options" on a copy made by mig_options_copy():
 * MIGRATE_OK, or MIGRATE_EINVAL (or MIGRATE_ENOMEM) with err naming the
 * option. They only stat(); nothing is created, opened or locked. */
int mig_options_check_run(const migrate_options *o, char *err);
int mig_options_check_discover(const migrate_options *o, char *err);

/* ---- State protection (protect.c) ------------------------------------------ */

/* What run.c hands fs so that no script can change the state (the
 * mig_protection and the protected_paths of mig_fsenv), and the storage
 * behind it. */
typedef struct mig_protect {
    mig_protection view;       /* what fs reads: points into the fields below */
    char **paths;              /* NULL-terminated; mig_fsenv.protected_paths; [0] the state
                                * file, [1] the lock, as resolved now */
    const char *names[3];
    char *temp_prefix;
    mig_file_id *ancestors;
    mig_file_id files[2];
    mig_file_id lock_id;
    bool have_lock;
    bool by_identity;          /* view is filled in (the state directory exists) */
} mig_protect;

/* Fills p for the state file at state_path and its lock (lock_fd, or -1
 * when no lock is held, as in a dry run): state_path and lock_path (both
 * absolute) resolved again (the state directory may have been created
 * since they were first resolved, through a symlink), the directory's
 * identity, its ancestors', the files', and every spelling of the two
 * files under `roots` (NULL-terminated, resolved) that reach the same
 * directory. MIGRATE_OK or MIGRATE_ENOMEM. A state directory that does
 * not exist leaves by_identity false (only the strings protect). */
int mig_protect_init(mig_protect *p, const char *state_path, const char *lock_path, int lock_fd,
                     char *const *roots);
/* After a state save: the state file's new identity into files[]. */
void mig_protect_refresh(mig_protect *p);
/* The view for mig_fsenv.protection: NULL unless by_identity. */
const mig_protection *mig_protect_view(const mig_protect *p);
void mig_protect_free(mig_protect *p);

/* ---- A run's lock and state (runstate.c) ----------------------------------- */

/* Where the run's warnings go (run.c reports them and sends the event). */
typedef void (*mig_warn_fn)(void *ud, const char *message);

/* The lock, the state and its protection, for one run. */
typedef struct mig_runstate {
    char *state_path, *lock_path; /* absolute, malloc'd (owned; set by the run) */
    int lock_fd;                  /* -1 until mig_runstate_lock() */
    struct mig_state *state;      /* after mig_runstate_load() */
    mig_protect protect;          /* the state, out of scripts' reach */
    mig_warn_fn warn;
    void *warn_ud;
    char *err;                    /* the run's MIG_ERRLEN buffer */
} mig_runstate;

void mig_runstate_init(mig_runstate *s, mig_warn_fn warn, void *warn_ud, char *err);
/* Creates the state's directory and takes the flock on lock_path, waiting
 * up to lock_timeout_ms. MIGRATE_OK, MIGRATE_ELOCKED, MIGRATE_EIO or
 * MIGRATE_ENOMEM with err. Without create (a rehearsal, which writes
 * nothing) only an existing lock file is locked; with none, MIGRATE_OK and
 * lock_fd stays -1. */
int mig_runstate_lock(mig_runstate *s, unsigned lock_timeout_ms, bool create);
/* Fills s->protect (see mig_protect_init). MIGRATE_OK or MIGRATE_ENOMEM. */
int mig_runstate_protect(mig_runstate *s, char *const *roots);
/* Removes a real run's leftover temporary state files, then loads the
 * state; a corrupt one with recover_corrupt is moved aside (a
 * dry run only warns) and an empty state used. */
int mig_runstate_load(mig_runstate *s, bool recover_corrupt, bool dry_run);
/* Warns of ids recorded for versions above `to` (nothing if to_text NULL). */
void mig_runstate_warn_ahead(mig_runstate *s, const migrate_version *to, const char *to_text);
/* Records id's outcome (and its stamp, if not "") and saves the state.
 * MIGRATE_OK, or the error with err. */
int mig_runstate_record(mig_runstate *s, const char *id, const char *outcome, double seconds,
                        const char *sha256, const char *stamp);
/* Releases the lock and everything s holds. */
void mig_runstate_free(mig_runstate *s);

/* ---- Reports (report.c) ---------------------------------------------------- */

/* A new empty report, or NULL when out of memory. */
migrate_report *mig_report_new(const char *from, const char *to, bool dry_run);
/* Appends a migration with outcome NOT_RUN. MIGRATE_OK or MIGRATE_ENOMEM. */
int mig_report_add(migrate_report *r, const char *id, const char *version, const char *path);
/* The mutable result i (for the runner). */
migrate_result *mig_report_at(migrate_report *r, size_t i);
/* Sets result i's outcome (and, for MIGRATE_FAILED, its error, copied;
 * any earlier error is dropped); a fallback text if the copy
 * cannot be made); the only writer of both. Returns whether
 * the result is now FAILED. */
bool mig_report_set_outcome(migrate_report *r, size_t i, migrate_outcome outcome,
                            const char *message);
/* Sets result i's seconds. */
void mig_report_set_seconds(migrate_report *r, size_t i, double seconds);
/* Records the run-level error (copied) and returns code. */
int mig_report_fail(migrate_report *r, int code, const char *message);
/* Appends a warning (copied). MIGRATE_OK or MIGRATE_ENOMEM. */
int mig_report_warn(migrate_report *r, const char *message);
/* Appends a script's log line to result i; past a bound, lines are counted
 * as dropped instead of stored (events still carry every line). */
void mig_report_log(migrate_report *r, size_t i, int level, const char *message, size_t len);
void mig_report_set_rehearse(migrate_report *r, bool rehearse);
void mig_report_set_rehearsal(migrate_report *r, size_t i, bool rehearsal);
void mig_report_set_rehearsal_peak(migrate_report *r, size_t bytes);
/* Drops migration i's log lines (the rehearsal's, before the real run's). */
void mig_report_clear_log(migrate_report *r, size_t i);
void mig_report_clear_changes(migrate_report *r, size_t i);
/* Adds a change to migration i (every string copied). */
int mig_report_add_change(migrate_report *r, size_t i, const migrate_change *c);

/* cJSON's formatted print with two-space indents and ": " (the layout of
 * the state file and the report), malloc'd; NULL when out of memory. */
struct cJSON;
char *mig_json_print(const struct cJSON *item);
/* cJSON_ParseWithLengthOpts under a process-wide mutex (cjson_parse.c):
 * cJSON writes a static on every parse. Every parse in the library goes
 * through here. */
struct cJSON *mig_cjson_parse(const char *text, size_t len, const char **end, bool require_null);

/* ---- Discovery (discover.c) ---------------------------------------------- */

typedef struct mig_entry {
    char *id;            /* "v1.1.0/001_x" */
    char *version;       /* "1.1.0": the directory name without its "v" */
    char *path;          /* "<migrations_dir>/v1.1.0/001_x.lua" */
    char *dir;           /* "<migrations_dir>/v1.1.0": require() looks here first */
    migrate_version ver; /* parsed from version (points into it) */
    uint64_t number;
} mig_entry;

typedef struct mig_plan {
    mig_entry *items;
    size_t count;
} mig_plan;

/* Lists the migrations of migrations_dir with from < version <= to (NULL:
 * unbounded), in version then number order, validating the whole tree
 * (SPEC §2). MIGRATE_OK, MIGRATE_EMANIFEST or MIGRATE_ENOMEM, with err. */
int mig_plan_discover(const char *migrations_dir, const migrate_version *from,
                      const migrate_version *to, mig_plan *out, char *err);
void mig_plan_free(mig_plan *plan);

/* ---- State file (state.c) -------------------------------------------------- */

typedef struct mig_state mig_state;

/* Loads path. Missing: an empty state. MIGRATE_OK, MIGRATE_ESTATE (corrupt:
 * the file is not touched), MIGRATE_EIO or MIGRATE_ENOMEM, with err. */
int mig_state_load(const char *path, mig_state **out, char *err);
/* An empty state (for a recovered corrupt one), or NULL when out of memory. */
mig_state *mig_state_new(void);
bool mig_state_has(const mig_state *s, const char *id);
/* The sha256 recorded for id, or NULL. */
const char *mig_state_sha256(const mig_state *s, const char *id);
/* The stamp (size and mtime of the script file, as the runner formats them)
 * recorded for id, or NULL; and setting it in memory, saved by the next
 * mig_state_save(). The runner re-hashes an applied script only when its
 * stamp changed. MIGRATE_OK or MIGRATE_ENOMEM. */
const char *mig_state_stamp(const mig_state *s, const char *id);
int mig_state_set_stamp(mig_state *s, const char *id, const char *stamp);
/* Number of applied ids and the i-th one, in recorded order. */
size_t mig_state_count(const mig_state *s);
const char *mig_state_id(const mig_state *s, size_t i);
/* Records id as applied (in memory). MIGRATE_OK or MIGRATE_ENOMEM. */
int mig_state_record(mig_state *s, const char *id, const char *outcome, double seconds,
                     const char *sha256);
/* Writes the whole state durably (mode 0600). The caller holds the state
 * lock and swept path's leftover temps after taking it: a save does not
 * look for them again. MIGRATE_OK, MIGRATE_EIO or MIGRATE_ENOMEM, with err. */
int mig_state_save(const mig_state *s, const char *path, char *err);
void mig_state_free(mig_state *s);

/* ---- Patterns (pattern.c) -------------------------------------------------- */

/* Sets find, match, gmatch and gsub in the table at index `strings`: Lua
 * 5.4's pattern functions, same results and errors, that poll the
 * deadline (mig_deadline_poll) while they work, so backtracking cannot
 * outlive a script's timeout. */
void mig_open_patterns(lua_State *L, int strings);

/* ---- Sandbox (sandbox.c) -------------------------------------------------- */

typedef struct mig_sandbox_config {
    const char *migrations_dir; /* require() falls back to <dir>/lib */
    const mig_entry *entry;     /* the script */
    const char *from, *to;      /* the run's bounds as given, may be NULL */
    bool dry_run;
    size_t memory_limit;        /* bytes; 0: none */
    unsigned timeout_ms;        /* per call; 0: none */
    mig_fsenv fsenv;            /* copied; readonly_reason is managed per call */
    void (*log)(void *ud, int level, const char *message, size_t len);
    void *log_ud;
    /* NULL, or a flag the host's side sets (from inside log, or between
     * calls) to stop the script: once *cancel is true, the running call
     * stops at its next hook, or at once when log returns, with an error
     * as uncatchable as a timeout ("... cancelled"), and every later call
     * fails at its first hook. */
    const bool *cancel;
} mig_sandbox_config;

typedef struct mig_sandbox mig_sandbox;

typedef enum mig_call_result {
    MIG_CALL_TRUE,  /* returned true */
    MIG_CALL_FALSE, /* returned false; *message the reason given, or NULL */
    MIG_CALL_ERROR  /* raised, timed out, out of memory or broke the contract */
} mig_call_result;

/* Creates a fresh Lua state for one script, runs its top level (read-only)
 * and checks that it defines check() and migrate(). MIGRATE_OK,
 * MIGRATE_EMANIFEST (*message: why, with file:line) or MIGRATE_ENOMEM.
 * *message is malloc'd (free() it) or NULL. */
int mig_sandbox_new(const mig_sandbox_config *cfg, const char *source, size_t len,
                    mig_sandbox **out, char **message);
/* Calls "check" (always read-only) or "migrate" (read-only when
 * readonly_reason is not NULL). *message: malloc'd reason or error with
 * traceback, or NULL. */
mig_call_result mig_sandbox_call(mig_sandbox *sb, const char *fn, const char *readonly_reason,
                                 char **message);
void mig_sandbox_free(mig_sandbox *sb);
/* An upper bound of the memory sb holds: its struct, its allocation block
 * and every byte its Lua state has allocated. */
size_t mig_sandbox_footprint(const mig_sandbox *sb);

/* Raises the call's uncatchable timeout error (a longjmp out of the
 * caller) when the deadline of the running check()/migrate()/top level has
 * passed, or its cancel error when the run was cancelled
 * (mig_sandbox_config.cancel), else returns. For C code that loops without reaching a Lua hook
 * (pattern matching, string.rep, table.move, ...): cheap (a clock read,
 * about 20 ns), so call it every few thousand steps. The caller must hold
 * nothing that a longjmp would leak (no malloc'd memory, no open fd): keep
 * work buffers in Lua userdata or a luaL_Buffer. A no-op for a lua_State
 * that is not a sandbox's, or one whose call has no timeout. */
/* MIGRATE_OK when the calling thread has the free stack migrate_run()
 * needs (migrate.h: MIGRATE_MIN_STACK), else MIGRATE_EINVAL with err. */
int mig_stack_check(char *err);

#define MIG_HAVE_DEADLINE_POLL 1
void mig_deadline_poll(lua_State *L);

/* ---- The run's script cache (scripts.c) ------------------------------------ */

typedef enum mig_precheck {
    MIG_PRECHECK_NONE, /* the run phase calls check() live */
    MIG_PRECHECK_TRUE,
    MIG_PRECHECK_FALSE,
    MIG_PRECHECK_ERROR
} mig_precheck;

/* One pending script, read once: validated and then run from the same
 * bytes, so what is recorded (its sha256) is what ran. */
typedef struct mig_script {
    char *source;
    size_t len;
    char sha256[65];
    char stamp[64]; /* size and mtime, see scripts.c; "" when stat failed */
    bool applied;   /* recorded in the state when the run began */
    /* Dry run: what check() answered in the compile pass. */
    mig_precheck precheck;
    double precheck_seconds;
    char *precheck_error; /* MIG_PRECHECK_ERROR: the message, malloc'd */
    mig_sandbox *loaded;  /* the compile pass's sandbox, kept for the run, or NULL */
} mig_script;

typedef struct mig_scripts {
    mig_script *items; /* one per plan entry; source NULL when not pending */
    size_t count;
    size_t loaded_bytes; /* what the kept sandboxes hold */
    int vdir_fd;         /* the open directory of vdir, or -1 */
    const char *vdir;
} mig_scripts;

/* Empty (nothing to free yet). */
void mig_scripts_init(mig_scripts *s);
/* count empty slots. MIGRATE_OK or MIGRATE_ENOMEM. */
int mig_scripts_alloc(mig_scripts *s, size_t count);
void mig_scripts_free(mig_scripts *s);
/* Stamps, reads and hashes script i (at e->path). MIGRATE_OK, or
 * MIGRATE_EMANIFEST / MIGRATE_ENOMEM with err. */
int mig_scripts_read(mig_scripts *s, size_t i, const mig_entry *e, char *err);
/* Keeps what a dry run's compile-pass check() answered (c, msg, taken over;
 * an error without a message is not kept). */
void mig_scripts_set_precheck(mig_scripts *s, size_t i, mig_call_result c, char *msg,
                              double seconds);
/* Keeps sb for script i's run phase if the kept sandboxes stay within
 * min(memory_limit, 64 MiB); false: the caller frees it. */
bool mig_scripts_keep(mig_scripts *s, size_t i, mig_sandbox *sb, size_t memory_limit);
/* The kept sandbox of script i (now the caller's), or NULL. */
mig_sandbox *mig_scripts_take_loaded(mig_scripts *s, size_t i);
/* The stamp of the script file at e->path now ("" if none can be taken). */
void mig_scripts_stamp(mig_scripts *s, const mig_entry *e, char out[64]);
/* The sha256 of the script file at e->path now; false if it cannot be read. */
bool mig_scripts_hash(const mig_entry *e, char out[65]);

#endif /* MIGRATE_INTERNAL_H */
