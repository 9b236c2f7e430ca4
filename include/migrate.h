/*
 * migrate.h - libmigrate, deployment migrations for a self-upgrading daemon.
 *
 * An update executor links this library and calls migrate_run() to run the
 * idempotent Lua 5.4 scripts found under a migrations tree, in SemVer order,
 * between the version it upgrades from and the one it upgrades to. Each
 * applied migration is recorded durably in a JSON state file, so a run that
 * is interrupted resumes where it stopped and a finished one is never redone.
 *
 * Conventions (the same for every function below):
 * - Functions that can fail return an int: MIGRATE_OK (0) or a negative
 *   MIGRATE_E* code; migrate_strerror() names it. Functions that cannot fail
 *   say what they do with a NULL argument instead of crashing.
 * - Output parameters are named `out`. Strings handed back are owned by the
 *   object they come from (a report) unless the comment says "free() it";
 *   "a static string" lives as long as the program.
 * - Strings and arrays the caller passes in (versions, options) are only
 *   read during the call; the library keeps no pointer to them afterwards.
 * - The library never prints, never exits, never aborts and keeps no global
 *   mutable state: concurrent calls on different state paths are safe, and
 *   the host may use Lua and cJSON itself, side by side with the library.
 *
 * Build with `pkg-config --cflags --libs migrate` (README.md, "Install and
 * link"). The SONAME is libmigrate.so.MAJOR: within one MAJOR version every
 * declaration below stays source and binary compatible. A change to a
 * public struct's layout or to a function's signature takes a new MAJOR; a
 * new function, a new MINOR; a fix that changes neither, a new PATCH.
 * migrate_options is the exception that lets the API grow without a new
 * MAJOR: it carries its own version (see "Options"), so a later MINOR may
 * add fields at its end and still run a host built against this header.
 *
 * 1.0.0 (SONAME libmigrate.so.1) is the one break of the 0.x API: versioned
 * options (migrate_options_init() takes the version and returns int), the
 * event callback returns int (non-zero cancels the run, MIGRATE_ECANCELED),
 * options checked before anything runs, and the rehearsal's fields.
 * 1.1.0 adds the rehearsal itself (opts.rehearse, SPEC §4.6): the `rehearsal`
 * fields of migrate_result and migrate_event (at their ends: both structs
 * are only ever handed out by the library) and migrate_change with its
 * accessors.
 */
#ifndef MIGRATE_H
#define MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; the single source of the library's version
 * (the Makefile, the file names, the SONAME, migrate.pc and
 * migrate_library_version() all come from these three lines). */
#define MIGRATE_VERSION_MAJOR 1
#define MIGRATE_VERSION_MINOR 1
#define MIGRATE_VERSION_PATCH 0

/* Marks the public functions: the library is built with hidden visibility,
 * and only what carries this (all named migrate_*) leaves libmigrate.so. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define MIGRATE_EXTERN __attribute__((visibility("default")))
#else
#define MIGRATE_EXTERN
#endif

/* Return codes. Every failing call leaves its specific message in the
 * report when there is one (migrate_report_error()). */
enum {
    MIGRATE_OK = 0,         /* success */
    MIGRATE_EFAILED = -1,   /* a migration failed; see migrate_report_failed() */
    MIGRATE_EINVAL = -2,    /* bad argument: malformed version, downgrade, bad option */
    MIGRATE_EMANIFEST = -3, /* bad migrations tree or a script that does not compile */
    MIGRATE_ESTATE = -4,    /* the state file is corrupt (and was left untouched) */
    MIGRATE_ELOCKED = -5,   /* another run holds the lock past lock_timeout_ms */
    MIGRATE_EIO = -6,       /* an operating-system call failed (lock, state write) */
    MIGRATE_ENOMEM = -7,    /* out of memory in the library itself */
    MIGRATE_ECANCELED = -8  /* the event callback asked the run to stop (returned non-zero) */
};

/* Log levels of MIGRATE_EVENT_LOG events (a script's log.info/warn/error). */
enum { MIGRATE_LOG_INFO = 0, MIGRATE_LOG_WARN = 1, MIGRATE_LOG_ERROR = 2 };

/* A short English description of a return code, e.g. "a migration failed";
 * "unknown error code" for a value that is none of the above. Never NULL; a
 * static string. */
MIGRATE_EXTERN const char *migrate_strerror(int code);

/* The version of the library actually linked, "MAJOR.MINOR.PATCH"; a
 * static string. A host can compare it with MIGRATE_VERSION_* (the header
 * it was compiled against) to detect a mismatched install. */
MIGRATE_EXTERN const char *migrate_library_version(void);

/* ---- SemVer 2.0.0 ---------------------------------------------------- */

/* A parsed version. prerelease and build point into the text that was
 * parsed (not NUL-terminated at their end: use the lengths); they are NULL
 * with length 0 when absent. Valid while that text is; the caller owns the
 * struct itself (usually on its stack), nothing in it is to be freed. */
typedef struct migrate_version {
    uint64_t major, minor, patch; /* the three numeric parts */
    const char *prerelease;       /* after "-", without it: "rc.1"; or NULL */
    size_t prerelease_len;        /* its length; 0 when absent */
    const char *build;            /* after "+", without it: "build.5"; or NULL */
    size_t build_len;             /* its length; 0 when absent */
} migrate_version;

/* Parses strict SemVer 2.0.0 ("1.2.3-rc.1+build.5"), optionally preceded by
 * one "v", into *out. Leading zeros and numbers above UINT64_MAX are refused.
 * Returns MIGRATE_OK, or MIGRATE_EINVAL (text or out NULL, or not SemVer;
 * *out, when given, is then all zeros). */
MIGRATE_EXTERN int migrate_version_parse(const char *text, migrate_version *out);

/* SemVer precedence of two parsed versions (build metadata ignored):
 * -1 if a < b, 0 if equal, 1 if a > b. Cannot fail: a NULL sorts before
 * any version (and two NULLs are equal). */
MIGRATE_EXTERN int migrate_version_compare(const migrate_version *a, const migrate_version *b);

/* Parses both texts and sets *out to their precedence (-1, 0, 1).
 * Returns MIGRATE_OK or MIGRATE_EINVAL (either is NULL or not a version, or
 * out is NULL; *out is then left unchanged). */
MIGRATE_EXTERN int migrate_version_cmp(const char *a, const char *b, int *out);

/* Sets *out to whether from < v <= to by SemVer precedence (the range a
 * run from `from` to `to` covers); a NULL from or to is unbounded on that
 * side. Returns MIGRATE_OK or MIGRATE_EINVAL (a text is not a version, or v
 * or out is NULL; *out is then left unchanged). */
MIGRATE_EXTERN int migrate_version_in_range(const char *v, const char *from, const char *to,
                                            bool *out);

/* ---- Results and events ---------------------------------------------- */

/* What happened to one migration in a run (SPEC §4). */
typedef enum migrate_outcome {
    MIGRATE_PENDING,       /* found, not run (discover, or dry run would apply it) */
    MIGRATE_APPLIED,       /* migrate() ran, check() confirmed it, recorded */
    MIGRATE_SKIPPED_STATE, /* already recorded in the state file; no Lua ran */
    MIGRATE_SKIPPED_CHECK, /* check() said its effect is present; recorded */
    MIGRATE_FAILED,        /* check() or migrate() failed or was cancelled; the run halted here */
    MIGRATE_NOT_RUN        /* after a failure or a cancel; not attempted */
} migrate_outcome;

/* "pending", "applied", "skipped_state", "skipped_check", "failed",
 * "not_run"; "unknown" for any other value. A static string. */
MIGRATE_EXTERN const char *migrate_outcome_name(migrate_outcome outcome);

/* One migration of a run. The struct and every string in it are owned by
 * the report it comes from and stay valid until migrate_report_free() (in an
 * event: only during the callback). Its strings are never NULL, except
 * error (or any of them in the report of a run that ran out of memory). */
typedef struct migrate_result {
    const char *id;      /* "v1.1.0/001_rename_config_key" */
    const char *version; /* "1.1.0" (the directory name without its "v") */
    const char *path;    /* the script file, under migrations_dir */
    migrate_outcome outcome; /* what happened to it; migrate_outcome_name() */
    const char *error;   /* FAILED: id, path, function, Lua error, traceback; else NULL */
    double seconds;      /* wall time spent in this migration's Lua */
    /* The outcome is the rehearsal's (opts.rehearse, SPEC §4.6): a preview
     * (dry_run with rehearse), or a rehearsal that failed, so that the
     * upgrade was refused and nothing was written. PENDING then means "the
     * rehearsal applied it". false after a real run. */
    bool rehearsal;
} migrate_result;

/* What one migration changed in the rehearsal (SPEC §4.6), in the order it
 * did it: applying them in order to the files as they were gives the files
 * as the rehearsal left them. */
typedef enum migrate_change_kind {
    MIGRATE_CHANGE_CREATED,  /* a file (fs.write, fs.copy), directory (fs.mkdir) or symlink appeared */
    MIGRATE_CHANGE_MODIFIED, /* a file's content was replaced (and maybe its mode) */
    MIGRATE_CHANGE_REMOVED,  /* path went, and all under it (fs.remove, fs.remove_tree) */
    MIGRATE_CHANGE_RENAMED,  /* from moved to path (fs.rename), replacing what was there */
    MIGRATE_CHANGE_MODE      /* path's permission bits, old_mode to mode (fs.chmod) */
} migrate_change_kind;

/* "created", "modified", "removed", "renamed", "mode"; "unknown" else. */
MIGRATE_EXTERN const char *migrate_change_kind_name(migrate_change_kind kind);

/* A file's diff is kept when both texts are at most this big and hold no
 * NUL byte (else diff is NULL and size says how big the new file is). */
#define MIGRATE_MAX_DIFF_BYTES ((size_t)1 << 20)

/* One change; owned by its report, like migrate_result. Paths are
 * absolute, with symlinks resolved (the real place the change is at). */
typedef struct migrate_change {
    migrate_change_kind kind;
    const char *path;     /* where */
    const char *type;     /* "file", "dir" or "link": what path is (was, for REMOVED) */
    const char *from;     /* RENAMED: the old path; a file fs.copy made: its source; else NULL */
    const char *target;   /* a created link's target, as given; else NULL */
    int mode;             /* CREATED, MODIFIED, MODE: the permission bits after; else -1 */
    int old_mode;         /* MODIFIED, MODE: the bits before; else -1 */
    const char *diff;     /* CREATED/MODIFIED file: unified diff ("--- old" / "+++ new",
                           * "/dev/null" for a new file); NULL when content did not
                           * change, or is binary or over MIGRATE_MAX_DIFF_BYTES */
    uint64_t size;        /* CREATED/MODIFIED file: its size after */
} migrate_change;

/* Text a script hands the library (a `return false, reason`, an error it
 * raised, a warning) is kept in the report, and in its JSON, up to
 * MIGRATE_MAX_SCRIPT_TEXT bytes; a log line up to MIGRATE_MAX_LOG_LINE.
 * Longer text is cut at a UTF-8 character boundary and ends in
 * "\u2026 [cut: N bytes]", N the bytes left out. Events see log lines whole.
 * This keeps a script's strings, which its memory_limit no longer counts
 * once copied out of its Lua state, from growing the host. */
#define MIGRATE_MAX_SCRIPT_TEXT 65536
#define MIGRATE_MAX_LOG_LINE 4096

/* What a progress event reports; see migrate_event for its fields. */
typedef enum migrate_event_kind {
    MIGRATE_EVENT_PLAN,    /* the plan is known: total migrations in range */
    MIGRATE_EVENT_START,   /* migration `index` is about to run */
    MIGRATE_EVENT_DONE,    /* migration `index` finished: migration->outcome */
    MIGRATE_EVENT_LOG,     /* a script called log.*: level, message */
    MIGRATE_EVENT_WARNING  /* a runner warning (state ahead of `to`, ...): message */
} migrate_event_kind;

/* Handed to the callback; it and everything it points to are owned by the
 * library and valid only during the call (copy what you keep). */
typedef struct migrate_event {
    migrate_event_kind kind;           /* which event; says which fields are set */
    size_t index, total;               /* position in the plan (0-based), plan size */
    const migrate_result *migration;   /* START, DONE, LOG; else NULL */
    int level;                         /* LOG: MIGRATE_LOG_INFO/WARN/ERROR */
    const char *message;               /* LOG, WARNING; else NULL */
    bool rehearsal;                    /* START, DONE, LOG: sent from the rehearsal (SPEC §4.6) */
} migrate_event;

/* Called synchronously from inside migrate_run(), on the calling thread,
 * with the options' payload. It must return normally: no longjmp out of it
 * and no C++ exception through it (it may run while a script's Lua code is
 * on the stack). It must not call migrate_run() on the same state path
 * (that would wait for its own lock).
 *
 * Return 0 to let the run go on. Non-zero asks it to stop at the next safe
 * point; the run then returns MIGRATE_ECANCELED (a daemon shutting down):
 * - from PLAN, or a WARNING before it: nothing runs, every migration is
 *   NOT_RUN (no START event follows);
 * - from START of migration i: migration i does not run; it and every
 *   later one are NOT_RUN (a DONE event for i still follows, outcome
 *   NOT_RUN, so every START has its DONE);
 * - from DONE of migration i (or a WARNING while it ran): i keeps its
 *   outcome (applied and recorded, say), the later ones are NOT_RUN;
 * - from LOG (a script is running): the script stops at once, inside the
 *   log call, with an error that no pcall, coroutine or __close handler in
 *   the script can catch, exactly like a timeout. A LOG from a script's
 *   check() or migrate() makes that migration FAILED, with an error saying
 *   it was cancelled (migrate_report_failed() returns it; what migrate()
 *   had already written stays written, as after a timeout). A LOG from a
 *   script's top level (its load, before any migration runs) leaves every
 *   migration NOT_RUN.
 * Whatever was applied before stays recorded in the state file, so the
 * next run resumes after it. Further return values are ignored once the run
 * is cancelled. Without a callback a run cannot be cancelled. */
typedef int (*migrate_event_fn)(const migrate_event *event, void *payload);

/* ---- Options ----------------------------------------------------------- */

/* The version of migrate_options this header describes. The struct's first
 * field says which version the caller filled in, as in libgit2: a library
 * with a newer struct then knows which fields an older host cannot have set
 * (each MINOR that adds fields raises it). */
#define MIGRATE_OPTIONS_VERSION 1u

/* The defaults of memory_limit, rehearsal_memory_limit and timeout_ms. */
#define MIGRATE_DEFAULT_MEMORY_LIMIT ((size_t)256 << 20)
#define MIGRATE_DEFAULT_REHEARSAL_MEMORY_LIMIT ((size_t)256 << 20)
#define MIGRATE_DEFAULT_TIMEOUT_MS 300000u

/* How a run behaves. Start from migrate_options_init(&opts,
 * MIGRATE_OPTIONS_VERSION) or `migrate_options opts = MIGRATE_OPTIONS_INIT;`,
 * which give every field its default, and set what you need. Every pointer
 * is borrowed, read during the call only.
 *
 * migrate_run() checks the options before anything runs (no lock taken, no
 * state read, no Lua), and refuses with MIGRATE_EINVAL and a message naming
 * the option and the reason (e.g. `opts.allowed_roots[1] is "": a root must
 * be an absolute path`):
 * - version other than MIGRATE_OPTIONS_VERSION (0: the struct was not
 *   initialized);
 * - home (or $HOME when home is NULL), and every allowed root: empty,
 *   relative, missing or not a directory. The library never creates a
 *   home and never guesses one from the working directory;
 * - allowed_roots an empty list (NULL, not an empty list, means { home });
 * - state_path empty, relative (a daemon's working directory is no place
 *   for its state), ending in "/", or naming something that exists and is
 *   not a regular file; or its nearest existing ancestor not a directory
 *   (or a symlink to nothing).
 *   Its directory may be missing: a real run creates it (0700);
 * - migrations_dir empty (relative is fine: the working directory's, like
 *   the default "migrations"; a missing one is MIGRATE_EMANIFEST).
 * migrate_discover() checks only version and migrations_dir, the only
 * options it uses. */
typedef struct migrate_options {
    unsigned version;                  /* MIGRATE_OPTIONS_VERSION */
    const char *migrations_dir;        /* default "migrations" (relative: to the working dir) */
    const char *home;                  /* default $HOME; what "~/" means to scripts; absolute */
    const char *state_path;            /* default <home>/.teleclaude/migration_state.json; absolute */
    const char *const *allowed_roots;  /* NULL-terminated; where fs may act; default { home } */
    bool dry_run;                      /* run check() only; write nothing at all */
    /* Rehearse the whole upgrade first (SPEC §4.6): every pending
     * migration's check(), migrate() and confirming check() run against a
     * copy-on-write view of the files held in memory, which writes nothing.
     * Only if every one passes does the real run follow, under the same
     * lock. A failure there returns MIGRATE_EFAILED with nothing at all
     * written (no state, no lock file, no file of the user's): the failed
     * result's `rehearsal` is true and its error starts "in the rehearsal".
     * With dry_run as well: a preview, the rehearsal alone (no lock taken).
     * Each migration's changes (migrate_result_change) say what it did or
     * would do. Events from the rehearsal have `rehearsal` set. See
     * migrate_run() for what the view cannot show. */
    bool rehearse;
    bool recover_corrupt_state;        /* move a corrupt state aside instead of failing */
    size_t memory_limit;               /* bytes per script state; default (and 0) 256 MiB */
    size_t rehearsal_memory_limit;     /* bytes the rehearsal's view may hold; default (and 0) 256 MiB */
    unsigned timeout_ms;               /* per check()/migrate() call; default 300000; 0 none */
    unsigned lock_timeout_ms;          /* wait for the lock this long; default 0 (fail at once) */
    migrate_event_fn on_event;         /* optional progress callback; may cancel the run */
    void *payload;                     /* handed to on_event */
} migrate_options;

/* The defaults, as an initializer (C and C++): every field as
 * migrate_options_init() sets it. */
#define MIGRATE_OPTIONS_INIT                                                                   \
    {                                                                                          \
        MIGRATE_OPTIONS_VERSION, NULL, NULL, NULL, NULL, false, false, false,                  \
            MIGRATE_DEFAULT_MEMORY_LIMIT, MIGRATE_DEFAULT_REHEARSAL_MEMORY_LIMIT,              \
            MIGRATE_DEFAULT_TIMEOUT_MS, 0u, NULL, NULL                                         \
    }

/* Fills *opts with the defaults above (strings NULL mean their default)
 * for the given version of the struct: pass MIGRATE_OPTIONS_VERSION.
 * Returns MIGRATE_OK, or MIGRATE_EINVAL when opts is NULL or version is one
 * this library does not know (0, or newer than its own); *opts is then left
 * untouched. */
MIGRATE_EXTERN int migrate_options_init(migrate_options *opts, unsigned version);

/* ---- Running ------------------------------------------------------------ */

/* The outcome of migrate_run() or migrate_discover(); opaque. The caller
 * owns it and frees it with migrate_report_free(). Reading one report from
 * several threads at once is safe; nothing in the library changes it after
 * the run that made it returns. */
typedef struct migrate_report migrate_report;

/* The thread stack migrate_run() needs: call it on a thread whose stack
 * (pthread_attr_setstacksize, or the main thread's RLIMIT_STACK) is at
 * least this big, from no deeper than MIGRATE_MIN_STACK / 8 into it. Scripts
 * get MIGRATE_MIN_STACK / 2 for calls nested through C (past it they fail
 * with "C stack overflow"); the rest is the library's own frames and the
 * error path. On a thread with less free stack, migrate_run() runs nothing
 * and returns MIGRATE_EINVAL with a message saying how much it found.
 * migrate_discover() runs no Lua and has no such need. */
#define MIGRATE_MIN_STACK (1024u * 1024u)

/*
 * Runs the migrations with from < version <= to (either bound may be NULL
 * for "unbounded"), in version then number order, as SPEC §4 describes:
 * lock <state_path>.lock, load the state, compile every pending script, then
 * for each migration skip it (recorded, or check() true) or run migrate()
 * and confirm with check(), recording each success durably before the next.
 * The first failure halts the run; what was applied before stays recorded.
 * Each script's top level runs once, when it is compiled; its Lua state
 * then waits for the script's turn. Waiting states hold at most 64 MiB (and
 * never more than memory_limit), over 1,000 small scripts; a script past
 * that is loaded again at its turn.
 *
 * opts NULL means defaults. *out receives a report whenever one could be
 * allocated, also on error (its migrate_report_error() says why), and NULL
 * otherwise (MIGRATE_ENOMEM); the caller owns it: free it with
 * migrate_report_free(). out may be NULL if the caller wants none. from, to
 * and opts are only read during the call.
 *
 * Returns MIGRATE_OK, MIGRATE_EFAILED (a migration failed), MIGRATE_EINVAL
 * (bad version, from > to, an option refused as "Options" says, less stack
 * than MIGRATE_MIN_STACK), MIGRATE_EMANIFEST (bad tree, a script that does
 * not compile or lacks check/migrate), MIGRATE_ESTATE (corrupt state file,
 * untouched), MIGRATE_ELOCKED, MIGRATE_EIO, MIGRATE_ENOMEM or
 * MIGRATE_ECANCELED (the event callback returned non-zero; see
 * migrate_event_fn for what then ran and what did not).
 *
 * The state file and its lock are never writable from a script, whatever
 * path reaches them: a symlinked spelling, or the home reachable at a
 * second allowed root (a bind mount): scripts' fs calls that would write,
 * rename, remove or chmod them (or an ancestor directory, or the state's
 * temp files) fail the migration.
 */
MIGRATE_EXTERN int migrate_run(const char *from, const char *to, const migrate_options *opts,
                               migrate_report **out);

/* Lists the migrations migrate_run() would consider, every one PENDING,
 * whether or not the state records them. Runs no Lua, reads no state file,
 * takes no lock and writes nothing. Same arguments, report ownership and
 * errors as migrate_run() (never MIGRATE_EFAILED, MIGRATE_ESTATE or
 * MIGRATE_ELOCKED). */
MIGRATE_EXTERN int migrate_discover(const char *from, const char *to, const migrate_options *opts,
                                    migrate_report **out);

/* ---- Reports -------------------------------------------------------------- */

/* None of these fails; each accepts a NULL report (no migrations, no
 * warnings, no error). What they return is owned by the report and valid
 * until migrate_report_free(), except migrate_report_json()'s string. */

/* Number of migrations in the report (0 for a NULL report). */
MIGRATE_EXTERN size_t migrate_report_count(const migrate_report *r);

/* Migration i (0-based, in run order), or NULL when i is out of range. Once
 * the tree was read, the report holds every migration in range, also those
 * skipped or not run. */
MIGRATE_EXTERN const migrate_result *migrate_report_get(const migrate_report *r, size_t i);

/* The migration that failed, or NULL if none did. */
MIGRATE_EXTERN const migrate_result *migrate_report_failed(const migrate_report *r);

/* The run-level error message ("migrations/v1.x: not a SemVer version ..."),
 * or NULL when the run returned MIGRATE_OK. For MIGRATE_EFAILED it is the
 * failed migration's message, the same as migrate_report_failed()->error;
 * for MIGRATE_ECANCELED it says at which event the callback cancelled the
 * run and which migration, if any, was interrupted. */
MIGRATE_EXTERN const char *migrate_report_error(const migrate_report *r);

/* Number of runner warnings (also sent as MIGRATE_EVENT_WARNING events). */
MIGRATE_EXTERN size_t migrate_report_warning_count(const migrate_report *r);

/* Warning i (0-based, in the order they arose), or NULL when i is out of
 * range. */
MIGRATE_EXTERN const char *migrate_report_warning(const migrate_report *r, size_t i);

/* The report as JSON: {"from", "to", "dry_run", "status": "ok"|"failed"|
 * "canceled"|"error", "error", "warnings": [...], "migrations": [{"id", "version",
 * "outcome", "seconds", "error", "log": [{"level", "message"}]}]}; a
 * migration's "log" keeps its first 1000 lines of at most 4096 bytes each,
 * and "log_dropped" counts the rest. Returns a new NUL-terminated string the
 * caller owns, allocated with malloc(): free() it (also when the host gave
 * cJSON other allocators). NULL when r is NULL or out of memory. "status"
 * is "ok" for MIGRATE_OK; "canceled" for MIGRATE_ECANCELED (also when the
 * cancel interrupted a migration, which is then "failed"); otherwise
 * "failed" when a migration failed (MIGRATE_EFAILED, or its effect could
 * not be recorded), and "error" for every other code. Also "rehearse" (the
 * option), with it "rehearsal_peak_bytes" (migrate_report_rehearsal_peak()),
 * and per migration "rehearsal" (migrate_result.rehearsal) and "changes":
 * [{"kind", "path", "type", "from", "target", "mode", "old_mode" (octal
 * strings like "0644"), "size", "diff"}], each key only where the change
 * has it (a file's "diff" is null when none is kept). */
MIGRATE_EXTERN char *migrate_report_json(const migrate_report *r);

/* Number of changes migration i made in the rehearsal: with opts.rehearse,
 * those of each migration the rehearsal ran (0 for every migration of a run
 * without it, and for i out of range). */
MIGRATE_EXTERN size_t migrate_result_change_count(const migrate_report *r, size_t i);

/* Change j of migration i, in the order they were made; NULL out of range. */
MIGRATE_EXTERN const migrate_change *migrate_result_change(const migrate_report *r, size_t i,
                                                           size_t j);

/* The most memory the rehearsal's view held during the run, in bytes (what
 * rehearsal_memory_limit bounds): to size that limit. 0 without rehearse. */
MIGRATE_EXTERN size_t migrate_report_rehearsal_peak(const migrate_report *r);

/* Frees a report and everything it owns (every migrate_result and string
 * read from it, except migrate_report_json()'s); NULL is fine. */
MIGRATE_EXTERN void migrate_report_free(migrate_report *r);

#ifdef __cplusplus
}
#endif

#endif /* MIGRATE_H */
