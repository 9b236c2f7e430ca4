/* run.c - migrate_run() and migrate_discover() (SPEC §4). */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STR2(x) #x
#define STR(x) STR2(x)

const char *migrate_library_version(void)
{
    return STR(MIGRATE_VERSION_MAJOR) "." STR(MIGRATE_VERSION_MINOR) "." STR(
        MIGRATE_VERSION_PATCH);
}

typedef struct run {
    migrate_options o;
    const char *from, *to;
    migrate_version vfrom, vto;
    migrate_report *report;
    mig_plan plan;
    mig_scripts scripts; /* the script cache */
    mig_runstate st; /* the lock, the state and its protection */
    char *home;
    char **roots; /* NULL-terminated */
    size_t current; /* the migration whose log lines arrive now */
    bool prechecking;  /* log lines are counted, not reported */
    size_t precheck_lines;
    bool reloading;    /* log lines were reported when the script was first loaded */
    /* The rehearsal's view while it runs (SPEC §4.6), else NULL: the fs of
     * every sandbox made meanwhile acts on it, and nothing is recorded. */
    mig_view *view;
    /* The event callback returned non-zero (migrate.h, migrate_event_fn):
     * read by the sandboxes (mig_sandbox_config.cancel) and between
     * migrations. cancel_at says at which event, for the message. */
    bool cancelled;
    char cancel_at[192];
    char err[MIG_ERRLEN];
} run;

/* ---- events ------------------------------------------------------------------ */

static const char *event_name(migrate_event_kind kind)
{
    switch (kind) {
    case MIGRATE_EVENT_PLAN: return "PLAN";
    case MIGRATE_EVENT_START: return "START";
    case MIGRATE_EVENT_DONE: return "DONE";
    case MIGRATE_EVENT_LOG: return "LOG";
    case MIGRATE_EVENT_WARNING: return "WARNING";
    }
    return "?";
}

/* Calls the host's callback; a non-zero return cancels the run at its next
 * safe point (the first one only: later returns change nothing). */
static void emit(run *r, migrate_event_kind kind, size_t index, int level, const char *message)
{
    if (r->o.on_event == NULL)
        return;
    migrate_event ev = {
        .kind = kind,
        .index = index,
        .total = r->plan.count,
        .migration = kind == MIGRATE_EVENT_START || kind == MIGRATE_EVENT_DONE ||
                             kind == MIGRATE_EVENT_LOG
                         ? mig_report_at(r->report, index)
                         : NULL,
        .level = level,
        .message = message,
        .rehearsal = r->view != NULL,
    };
    if (r->o.on_event(&ev, r->o.payload) == 0 || r->cancelled)
        return;
    r->cancelled = true;
    if (ev.migration != NULL)
        snprintf(r->cancel_at, sizeof r->cancel_at, "the %s event of %s", event_name(kind),
                 ev.migration->id);
    else
        snprintf(r->cancel_at, sizeof r->cancel_at, "the %s event", event_name(kind));
}

/* The run-level error of a cancelled run; `interrupted` is the migration
 * whose script the cancel stopped, or NULL. */
static int cancelled(run *r, const char *interrupted)
{
    return mig_errf(r->err, MIGRATE_ECANCELED,
                    "cancelled: the event callback returned non-zero at %s; %s%s%swhat was "
                    "applied before stays recorded, nothing after ran",
                    r->cancel_at, interrupted ? interrupted : "",
                    interrupted ? " was interrupted and is marked failed" : "",
                    interrupted ? "; " : "");
}

static void warn(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(run *r, const char *fmt, ...)
{
    char msg[MIG_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mig_report_warn(r->report, msg); /* out of memory: the event still says it */
    emit(r, MIGRATE_EVENT_WARNING, 0, 0, msg);
}

static void warn_message(void *ud, const char *message)
{
    warn(ud, "%s", message);
}

static void on_log(void *ud, int level, const char *message, size_t len)
{
    run *r = ud;
    if (r->reloading)
        return;
    if (r->prechecking) {
        r->precheck_lines++;
        return;
    }
    mig_report_log(r->report, r->current, level, message, len);
    emit(r, MIGRATE_EVENT_LOG, r->current, level, message);
}

/* ---- paths ------------------------------------------------------------------ */

/* Lexically normalized absolute form of path (relative to the working
 * directory); malloc'd, or NULL. Used where the path may not exist yet. */
static char *absolute(const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
        return NULL;
    size_t n = strlen(path) + (path[0] != '/' ? strlen(cwd) + 1 : 0) + 2;
    char *in = malloc(n), *out = malloc(n);
    if (in == NULL || out == NULL) {
        free(in);
        free(out);
        return NULL;
    }
    snprintf(in, n, "%s%s%s", path[0] != '/' ? cwd : "", path[0] != '/' ? "/" : "", path);
    mig_path_normalize(in, out);
    free(in);
    return out;
}

/* Absolute and symlink-free as far as it exists: fs compares what scripts
 * name against these, after resolving the scripts' paths the same way. The
 * longest prefix that exists is resolved and the missing rest kept as it
 * is ("~/link/new/state.json" with only ~/link there: the link's target
 * plus "/new/state.json"). */
static char *resolve(const char *path)
{
    char *abs = absolute(path);
    if (abs == NULL)
        return NULL;
    size_t cut = strlen(abs);
    for (;;) {
        char saved = abs[cut];
        abs[cut] = '\0';
        char *real = realpath(cut > 0 ? abs : "/", NULL);
        abs[cut] = saved;
        if (real != NULL) {
            size_t n = strlen(real) + strlen(abs + cut) + 1;
            char *out = malloc(n);
            if (out != NULL)
                snprintf(out, n, "%s%s", strcmp(real, "/") == 0 && cut > 0 ? "" : real,
                         abs + cut);
            free(real);
            free(abs);
            return out;
        }
        if ((errno != ENOENT && errno != ENOTDIR) || cut == 0)
            return abs;
        while (cut > 0 && abs[cut - 1] != '/')
            cut--;
        while (cut > 0 && abs[cut - 1] == '/')
            cut--;
    }
}

/* After mig_options_check_run(): home, roots and state_path are absolute and
 * home and the roots exist. */
static int resolve_paths(run *r)
{
    const char *home = r->o.home ? r->o.home : getenv("HOME");
    if (home == NULL || *home == '\0')
        return mig_errf(r->err, MIGRATE_EINVAL, "no home directory: set opts.home or $HOME");
    r->home = resolve(home);
    if (r->o.state_path != NULL) {
        r->st.state_path = resolve(r->o.state_path);
    } else if (r->home != NULL) {
        size_t n = strlen(r->home) + sizeof "/.teleclaude/migration_state.json";
        if ((r->st.state_path = malloc(n)) != NULL)
            snprintf(r->st.state_path, n, "%s/.teleclaude/migration_state.json", r->home);
    }
    if (r->st.state_path != NULL) {
        size_t n = strlen(r->st.state_path) + sizeof ".lock";
        if ((r->st.lock_path = malloc(n)) != NULL)
            snprintf(r->st.lock_path, n, "%s.lock", r->st.state_path);
    }
    size_t nroots = 0;
    while (r->o.allowed_roots != NULL && r->o.allowed_roots[nroots] != NULL)
        nroots++;
    r->roots = calloc(nroots ? nroots + 1 : 2, sizeof *r->roots);
    if (r->home == NULL || r->st.lock_path == NULL || r->roots == NULL)
        return mig_errf(r->err, MIGRATE_ENOMEM, "out of memory resolving paths");
    for (size_t i = 0; i < (nroots ? nroots : 1); i++) {
        r->roots[i] = resolve(nroots ? r->o.allowed_roots[i] : r->home);
        if (r->roots[i] == NULL)
            return mig_errf(r->err, MIGRATE_ENOMEM, "out of memory resolving paths");
    }
    return MIGRATE_OK;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- scripts ---------------------------------------------------------------------- */

static int read_script(run *r, size_t i)
{
    return mig_scripts_read(&r->scripts, i, &r->plan.items[i], r->err);
}

static mig_sandbox_config sandbox_config(run *r, size_t i)
{
    mig_sandbox_config c = {
        .migrations_dir = r->o.migrations_dir,
        .entry = &r->plan.items[i],
        .from = r->from,
        .to = r->to,
        /* A rehearsal runs migrate() as a real run does: a script cannot
         * tell it from one (SPEC §4.6). */
        .dry_run = r->o.dry_run && r->view == NULL,
        .memory_limit = r->o.memory_limit,
        .timeout_ms = r->o.timeout_ms,
        .fsenv = {r->home, (const char *const *)r->roots,
                  (const char *const *)r->st.protect.paths, NULL, NULL,
                  mig_protect_view(&r->st.protect), r->view},
        .log = on_log,
        .log_ud = r,
        .cancel = &r->cancelled,
    };
    return c;
}

static bool fail(run *r, size_t i, const char *what, const char *detail);

/* A dry run's check() is read-only and its answer is only published once
 * every script compiled, so the compile pass may ask it in the sandbox it
 * already built instead of the run phase building a second one (half the
 * Lua work of a dry run). An answer is kept only when check() logged
 * nothing, since its lines cannot be published yet; one that logged is
 * called again, live, by the run phase, so events and the report are what
 * they were. (So a dry-run check() that logs and then times out costs two
 * timeouts.) */
static void precheck(run *r, size_t i, mig_sandbox *sb, double t0, bool *stop)
{
    char *msg = NULL;
    r->prechecking = true;
    r->precheck_lines = 0;
    mig_call_result c = mig_sandbox_call(sb, "check", NULL, &msg);
    r->prechecking = false;
    if (c == MIG_CALL_ERROR)
        *stop = true; /* the run halts there: later answers would be unused */
    if (r->precheck_lines == 0)
        mig_scripts_set_precheck(&r->scripts, i, c, msg, now_seconds() - t0);
    else
        free(msg);
}

/* The run phase's side of precheck(): the outcome run_one() would give. */
static int use_precheck(run *r, size_t i)
{
    const mig_script *s = &r->scripts.items[i];
    mig_report_set_seconds(r->report, i, s->precheck_seconds);
    if (s->precheck == MIG_PRECHECK_ERROR) {
        fail(r, i, "check() failed", s->precheck_error);
        return MIGRATE_EFAILED;
    }
    mig_report_set_outcome(r->report, i,
                           s->precheck == MIG_PRECHECK_TRUE ? MIGRATE_SKIPPED_CHECK : MIGRATE_PENDING,
                           NULL);
    return MIGRATE_OK;
}

/* A real run keeps the sandbox the compile pass built for a script, within
 * a memory bound (see mig_scripts_keep()); a dry run's sandbox served for
 * precheck() already. */
static bool keep_loaded(run *r, size_t i, mig_sandbox *sb)
{
    return !r->o.dry_run && mig_scripts_keep(&r->scripts, i, sb, r->o.memory_limit);
}

/* SPEC §4.3: every pending script compiles and defines check() and
 * migrate() before any of them runs. */
static void read_pending(run *r)
{
    /* Every source is read before the first sandbox is built: the sources
     * stay allocated for the run, and one allocated between two sandboxes
     * made each new sandbox land in cold, fresh heap (a sandbox took 40 us
     * instead of 25). The first read error stops this pass; the compile
     * pass reads what is left in order, so errors come in the same order. */
    bool reading = true;
    for (size_t i = 0; i < r->plan.count; i++) {
        r->scripts.items[i].applied = mig_state_has(r->st.state, r->plan.items[i].id);
        if (!r->scripts.items[i].applied && reading && read_script(r, i) != MIGRATE_OK)
            reading = false;
    }
}

/* Builds the sandbox of pending script i (its top level runs): *sb, or an
 * error with r->err (MIGRATE_EMANIFEST, MIGRATE_ECANCELED, ...). */
static int compile_one(run *r, size_t i, mig_sandbox **sb, double *t0)
{
    const mig_entry *e = &r->plan.items[i];
    *sb = NULL;
    int rc = r->scripts.items[i].source != NULL ? MIGRATE_OK : read_script(r, i);
    if (rc != MIGRATE_OK)
        return rc;
    r->current = i;
    mig_sandbox_config cfg = sandbox_config(r, i);
    char *msg = NULL;
    *t0 = now_seconds();
    rc = mig_sandbox_new(&cfg, r->scripts.items[i].source, r->scripts.items[i].len, sb, &msg);
    if (r->cancelled) { /* from a LOG event of a top level */
        mig_sandbox_free(*sb);
        *sb = NULL;
        free(msg);
        return cancelled(r, NULL);
    }
    if (rc != MIGRATE_OK)
        mig_errf(r->err, rc, "%s: cannot load %s: %s", e->id, e->path, msg ? msg : "out of memory");
    free(msg);
    return rc;
}

/* SPEC §4.3: every pending script compiles and defines check() and
 * migrate() before any of them runs. */
static int compile_pending(run *r)
{
    read_pending(r);
    bool stop_prechecks = !r->o.dry_run;
    for (size_t i = 0; i < r->plan.count; i++) {
        if (r->scripts.items[i].applied)
            continue;
        mig_sandbox *sb;
        double t0;
        int rc = compile_one(r, i, &sb, &t0);
        if (rc != MIGRATE_OK)
            return rc;
        if (!stop_prechecks)
            precheck(r, i, sb, t0, &stop_prechecks);
        if (!keep_loaded(r, i, sb))
            mig_sandbox_free(sb);
    }
    return MIGRATE_OK;
}

/* An unchanged stamp means an unchanged script: no read, no hash. A stamp
 * that differs while the content does not (a reinstall, a touch) is
 * refreshed in memory and saved with the run's next state write, if any. */
static void warn_if_changed(run *r, size_t i)
{
    const mig_entry *e = &r->plan.items[i];
    char stamp[64];
    mig_scripts_stamp(&r->scripts, e, stamp);
    const char *known = mig_state_stamp(r->st.state, e->id);
    if (stamp[0] != '\0' && known != NULL && strcmp(stamp, known) == 0)
        return;
    const char *recorded = mig_state_sha256(r->st.state, e->id);
    if (recorded == NULL)
        return;
    char now[65];
    if (!mig_scripts_hash(e, now))
        return;
    if (strcmp(now, recorded) != 0)
        warn(r, "%s: %s changed since it was applied (sha256 %.12s... then, %.12s... now); "
                "it is not run again", e->id, e->path, recorded, now);
    else if (stamp[0] != '\0' && !r->o.dry_run)
        mig_state_set_stamp(r->st.state, e->id, stamp); /* out of memory: hashed again next time */
}

/* ---- one migration ---------------------------------------------------------------- */

static bool fail(run *r, size_t i, const char *what, const char *detail)
{
    const mig_entry *e = &r->plan.items[i];
    size_t n = strlen(e->id) + strlen(e->path) + strlen(what) + strlen(detail) + 16;
    char *msg = malloc(n);
    if (msg != NULL)
        snprintf(msg, n, "%s (%s): %s: %s", e->id, e->path, what, detail);
    bool failed = mig_report_set_outcome(r->report, i, MIGRATE_FAILED, msg ? msg : what);
    free(msg);
    return failed;
}

static int record(run *r, size_t i, const char *outcome, double seconds)
{
    const mig_entry *e = &r->plan.items[i];
    if (r->o.dry_run || r->view != NULL)
        return MIGRATE_OK;
    int rc = mig_runstate_record(&r->st, e->id, outcome, seconds, r->scripts.items[i].sha256,
                                 r->scripts.items[i].stamp);
    if (rc != MIGRATE_OK)
        fail(r, i, "its effect is in place but could not be recorded", r->err);
    return rc;
}

/* check(), then migrate() and check() again; sets the outcome. Returns
 * MIGRATE_OK, MIGRATE_EFAILED, or the error of recording it. */
static int run_one(run *r, size_t i, mig_sandbox *sb, double t0)
{
    char *msg = NULL;
    bool failed = false;
    mig_call_result c = mig_sandbox_call(sb, "check", NULL, &msg);
    int rc = MIGRATE_OK;
    if (c == MIG_CALL_ERROR) {
        fail(r, i, r->cancelled ? "check() was cancelled" : "check() failed",
             msg ? msg : "out of memory");
        rc = MIGRATE_EFAILED;
    } else if (c == MIG_CALL_TRUE) {
        mig_report_set_outcome(r->report, i, MIGRATE_SKIPPED_CHECK, NULL);
        rc = record(r, i, "skipped_check", now_seconds() - t0);
    } else if (r->o.dry_run && r->view == NULL) {
        mig_report_set_outcome(r->report, i, MIGRATE_PENDING, NULL);
    } else {
        free(msg);
        msg = NULL;
        c = mig_sandbox_call(sb, "migrate", NULL, &msg);
        if (c == MIG_CALL_ERROR) {
            failed = fail(r, i, r->cancelled ? "migrate() was cancelled" : "migrate() failed",
                          msg ? msg : "out of memory");
        } else if (c == MIG_CALL_FALSE) {
            failed = fail(r, i, "migrate() returned false", msg ? msg : "no reason given");
        } else {
            free(msg);
            msg = NULL;
            c = mig_sandbox_call(sb, "check", NULL, &msg);
            if (c == MIG_CALL_ERROR)
                failed = fail(r, i,
                     r->cancelled ? "check() after migrate() was cancelled (migrate() had "
                                    "finished; its effect is not recorded)"
                                  : "check() after migrate() failed",
                     msg ? msg : "out of memory");
            else if (c == MIG_CALL_FALSE)
                failed = fail(r, i, "check() still returns false after migrate() succeeded",
                     "the migration is not idempotent, or its check() does not recognise "
                     "its own effect");
        }
        if (failed) {
            rc = MIGRATE_EFAILED;
        } else {
            mig_report_set_outcome(r->report, i, MIGRATE_APPLIED, NULL);
            rc = record(r, i, "applied", now_seconds() - t0);
        }
    }
    free(msg);
    return rc;
}

/* Moves what migration i changed in the view into its result. */
static int keep_changes(run *r, size_t i)
{
    mig_sandbox_config cfg = sandbox_config(r, i);
    return mig_view_flush(r->view, &cfg.fsenv, r->report, i);
}

/* Migration i's turn (see run_migrations()); sb: its sandbox when the
 * caller built it (the rehearsal's pass), else NULL. */
static int run_step(run *r, size_t i, mig_sandbox *sb)
{
    if (r->cancelled)
        return cancelled(r, NULL);
    r->current = i;
    emit(r, MIGRATE_EVENT_START, i, 0, NULL);
    if (r->cancelled) {
        emit(r, MIGRATE_EVENT_DONE, i, 0, NULL);
        return cancelled(r, NULL);
    }
    int rc = MIGRATE_OK;
    if (r->scripts.items[i].applied) {
        mig_report_set_outcome(r->report, i, MIGRATE_SKIPPED_STATE, NULL);
        if (r->view == NULL || r->o.dry_run) /* else the real run says it */
            warn_if_changed(r, i);
    } else if (r->scripts.items[i].precheck != MIG_PRECHECK_NONE) {
        rc = use_precheck(r, i);
    } else {
        double t0 = now_seconds();
        mig_sandbox *own = sb != NULL ? NULL : mig_scripts_take_loaded(&r->scripts, i);
        char *msg = NULL;
        int made = MIGRATE_OK;
        if (sb == NULL && own == NULL) {
            mig_sandbox_config cfg = sandbox_config(r, i);
            r->reloading = true;
            made = mig_sandbox_new(&cfg, r->scripts.items[i].source, r->scripts.items[i].len, &own,
                                   &msg);
            r->reloading = false;
        }
        if (made != MIGRATE_OK) {
            fail(r, i, "cannot load", msg ? msg : "out of memory");
            rc = MIGRATE_EFAILED;
        } else {
            rc = run_one(r, i, sb != NULL ? sb : own, t0);
        }
        free(msg);
        mig_sandbox_free(own);
        mig_report_set_seconds(r->report, i, now_seconds() - t0);
        if (r->view != NULL && keep_changes(r, i) != MIGRATE_OK && rc == MIGRATE_OK) {
            fail(r, i, "its changes in the rehearsal could not be recorded", "out of memory");
            rc = MIGRATE_EFAILED;
        }
    }
    /* Every step above returns non-OK exactly when it failed migration i. */
    if (r->cancelled && rc != MIGRATE_OK)
        rc = cancelled(r, r->plan.items[i].id);
    emit(r, MIGRATE_EVENT_DONE, i, 0, NULL);
    return rc;
}

/* The run-level error of a failed migration is its message. */
static int blame_failed(run *r, int rc)
{
    const migrate_result *failed = migrate_report_failed(r->report);
    if (rc == MIGRATE_EFAILED && failed != NULL)
        snprintf(r->err, sizeof r->err, "%s", failed->error);
    return rc;
}

/* A cancel (see emit()) takes effect between migrations: before a START,
 * or right after it (the migration is NOT_RUN, its DONE still sent); and
 * inside a script through the sandbox, which fails the call: that
 * migration is FAILED, as migrate.h documents. */
static int run_migrations(run *r)
{
    int rc = MIGRATE_OK;
    for (size_t i = 0; i < r->plan.count && rc == MIGRATE_OK; i++)
        rc = run_step(r, i, NULL);
    return blame_failed(r, rc);
}

/* ---- the rehearsal (SPEC §4.6) ----------------------------------------------------- */

/* Whether two states record the same migrations. */
static bool same_applied(const mig_state *a, const mig_state *b)
{
    if (mig_state_count(a) != mig_state_count(b))
        return false;
    for (size_t i = 0; i < mig_state_count(a); i++)
        if (!mig_state_has(b, mig_state_id(a, i)))
            return false;
    return true;
}

/* After a rehearsal that passed: the lock (made now if there was no lock
 * file to take before), the state read again as a real run reads it
 * (leftover temps swept, a corrupt one moved aside), and the same
 * migrations still to do, or the run stops with nothing written. */
static int prepare_real_run(run *r)
{
    int rc = MIGRATE_OK;
    if (r->st.lock_fd < 0) {
        rc = mig_runstate_lock(&r->st, r->o.lock_timeout_ms, true);
        mig_protect_free(&r->st.protect);
        if (rc == MIGRATE_OK)
            rc = mig_runstate_protect(&r->st, r->roots);
    }
    mig_state *rehearsed = r->st.state;
    r->st.state = NULL;
    if (rc == MIGRATE_OK)
        rc = mig_runstate_load(&r->st, r->o.recover_corrupt_state, false);
    if (rc == MIGRATE_OK && !same_applied(rehearsed, r->st.state))
        rc = mig_errf(r->err, MIGRATE_ELOCKED,
                      "%s: another run recorded migrations while this one rehearsed (there was "
                      "no lock file to hold yet); nothing was run for real: run again",
                      r->st.state_path);
    mig_state_free(rehearsed);
    return rc;
}

/* Marks every result as the rehearsal's, "applied" read as "would apply". */
static void mark_rehearsed(run *r)
{
    for (size_t i = 0; i < r->plan.count; i++) {
        const migrate_result *m = mig_report_at(r->report, i);
        if (m->outcome == MIGRATE_APPLIED)
            mig_report_set_outcome(r->report, i, MIGRATE_PENDING, NULL);
        mig_report_set_rehearsal(r->report, i, true);
    }
}

/* The rehearsal: each script compiled, then at once rehearsed on the view
 * in the sandbox just built, which is then freed (1,000 waiting sandboxes
 * cost more in fresh memory than the Lua they save). Nothing is written,
 * so running migration i before script i + 1 compiles changes nothing a
 * disk could show; SPEC §4.3 still holds for the outcome: a script that
 * does not compile fails the run with MIGRATE_EMANIFEST (the compile pass
 * goes on after a rehearsal failure to find one), and every migration is
 * then NOT_RUN, with no changes. Only the events tell: rehearsal events of
 * the migrations before it were sent. */
static int rehearsal_pass(run *r)
{
    read_pending(r);
    int rc = MIGRATE_OK;
    for (size_t i = 0; i < r->plan.count && !r->cancelled; i++) {
        mig_sandbox *sb = NULL;
        double t0;
        int made = r->scripts.items[i].applied ? MIGRATE_OK : compile_one(r, i, &sb, &t0);
        if (made != MIGRATE_OK) {
            for (size_t j = 0; j < r->plan.count; j++) {
                mig_report_set_outcome(r->report, j, MIGRATE_NOT_RUN, NULL);
                mig_report_clear_changes(r->report, j);
            }
            return made;
        }
        if (rc == MIGRATE_OK)
            rc = run_step(r, i, sb);
        mig_sandbox_free(sb);
    }
    return blame_failed(r, rc);
}

/* Runs every pending migration on the view, then (not for a preview) for
 * real, under the same lock, only if all of them passed. */
static int rehearse(run *r)
{
    int rc = rehearsal_pass(r);
    mig_report_set_rehearsal_peak(r->report, mig_view_peak(r->view));
    mig_view_free(r->view);
    r->view = NULL;
    if (rc != MIGRATE_OK || r->o.dry_run) {
        mark_rehearsed(r);
        for (size_t i = 0; rc == MIGRATE_EFAILED && i < r->plan.count; i++) {
            const migrate_result *m = mig_report_at(r->report, i);
            if (m->outcome != MIGRATE_FAILED)
                continue;
            size_t n = strlen(m->error) + 96;
            char *msg = malloc(n);
            if (msg != NULL) {
                snprintf(msg, n, "in the rehearsal%s: %s",
                         r->o.dry_run ? "" : " (the upgrade was refused: nothing was written)",
                         m->error);
                mig_report_set_outcome(r->report, i, MIGRATE_FAILED, msg);
                snprintf(r->err, sizeof r->err, "%s", msg);
                free(msg);
            }
        }
        return rc;
    }
    if ((rc = prepare_real_run(r)) != MIGRATE_OK) {
        mark_rehearsed(r);
        return rc;
    }
    /* The real run: every result starts again; the changes stay. */
    for (size_t i = 0; i < r->plan.count; i++) {
        mig_report_set_outcome(r->report, i, MIGRATE_NOT_RUN, NULL);
        mig_report_set_seconds(r->report, i, 0);
        mig_report_clear_log(r->report, i);
    }
    return run_migrations(r);
}

/* ---- the whole run ----------------------------------------------------------------- */

static int parse_bounds(run *r, const char *from, const char *to)
{
    const char *why = NULL;
    r->from = from;
    r->to = to;
    if (from != NULL && mig_version_parse(from, strlen(from), &r->vfrom, &why) != MIGRATE_OK)
        return mig_errf(r->err, MIGRATE_EINVAL, "from version \"%s\": not a SemVer version (%s)",
                        from, why);
    if (to != NULL && mig_version_parse(to, strlen(to), &r->vto, &why) != MIGRATE_OK)
        return mig_errf(r->err, MIGRATE_EINVAL, "to version \"%s\": not a SemVer version (%s)",
                        to, why);
    if (from != NULL && to != NULL && migrate_version_compare(&r->vfrom, &r->vto) > 0)
        return mig_errf(r->err, MIGRATE_EINVAL,
                        "from %s is newer than to %s: downgrades are not supported", from, to);
    return MIGRATE_OK;
}

static int discover(run *r)
{
    int rc = mig_plan_discover(r->o.migrations_dir, r->from ? &r->vfrom : NULL,
                               r->to ? &r->vto : NULL, &r->plan, r->err);
    for (size_t i = 0; rc == MIGRATE_OK && i < r->plan.count; i++) {
        const mig_entry *e = &r->plan.items[i];
        if (mig_report_add(r->report, e->id, e->version, e->path) != MIGRATE_OK)
            rc = mig_errf(r->err, MIGRATE_ENOMEM, "out of memory");
    }
    if (rc == MIGRATE_OK && mig_scripts_alloc(&r->scripts, r->plan.count) != MIGRATE_OK)
        rc = mig_errf(r->err, MIGRATE_ENOMEM, "out of memory");
    return rc;
}

static int begin(run *r, const char *from, const char *to, const migrate_options *opts,
                 migrate_report **out)
{
    memset(r, 0, sizeof *r);
    mig_runstate_init(&r->st, warn_message, r, r->err);
    mig_scripts_init(&r->scripts);
    /* Nothing of opts past its version is read before the version is known. */
    int rc = mig_options_copy(opts, &r->o, r->err);
    r->report = mig_report_new(from, to, rc == MIGRATE_OK && r->o.dry_run);
    if (out != NULL)
        *out = r->report;
    if (r->report == NULL)
        return MIGRATE_ENOMEM;
    mig_report_set_rehearse(r->report, rc == MIGRATE_OK && r->o.rehearse);
    return rc != MIGRATE_OK ? rc : parse_bounds(r, from, to);
}

/* Sets the report's error, releases everything but the report. */
static int finish(run *r, int rc, migrate_report **out)
{
    if (rc != MIGRATE_OK && r->report != NULL)
        mig_report_fail(r->report, rc, r->err[0] ? r->err : migrate_strerror(rc));
    mig_scripts_free(&r->scripts);
    mig_plan_free(&r->plan);
    mig_runstate_free(&r->st); /* releases the lock */
    mig_view_free(r->view);
    for (size_t i = 0; r->roots != NULL && r->roots[i] != NULL; i++)
        free(r->roots[i]);
    free(r->roots);
    free(r->home);
    if (out == NULL)
        migrate_report_free(r->report);
    return rc;
}

int migrate_run(const char *from, const char *to, const migrate_options *opts,
                migrate_report **out)
{
    run r;
    int rc = begin(&r, from, to, opts, out);
    /* Bad options, and a small stack (scripts nest C calls on this
     * thread's), are refused before anything is locked, read or run. */
    if (rc == MIGRATE_OK)
        rc = mig_options_check_run(&r.o, r.err);
    if (rc == MIGRATE_OK)
        rc = mig_stack_check(r.err);
    if (rc == MIGRATE_OK)
        rc = resolve_paths(&r);
    /* A dry run writes nothing, not even the lock file: it reads the state
     * without the lock, which is safe because the state is only ever
     * replaced whole by rename. */
    /* A rehearsal writes nothing until it passed: it locks only a lock
     * file that exists, reads the state as a dry run does, and makes its
     * view before the scripts are loaded (their fs acts on it). */
    if (rc == MIGRATE_OK && !r.o.dry_run)
        rc = mig_runstate_lock(&r.st, r.o.lock_timeout_ms, !r.o.rehearse);
    if (rc == MIGRATE_OK)
        rc = mig_runstate_protect(&r.st, r.roots);
    if (rc == MIGRATE_OK)
        rc = mig_runstate_load(&r.st, r.o.recover_corrupt_state, r.o.dry_run || r.o.rehearse);
    if (rc == MIGRATE_OK && r.o.rehearse && (r.view = mig_view_new(r.o.rehearsal_memory_limit)) == NULL)
        rc = mig_errf(r.err, MIGRATE_ENOMEM, "out of memory making the rehearsal's view");
    if (rc == MIGRATE_OK)
        rc = discover(&r);
    if (rc == MIGRATE_OK) {
        mig_runstate_warn_ahead(&r.st, &r.vto, r.to);
        if (!r.cancelled) /* by a WARNING before it */
            emit(&r, MIGRATE_EVENT_PLAN, 0, 0, NULL);
        if (r.cancelled)
            rc = cancelled(&r, NULL);
        else if (r.o.rehearse)
            rc = rehearse(&r);
        else if ((rc = compile_pending(&r)) == MIGRATE_OK)
            rc = run_migrations(&r);
    }
    return finish(&r, rc, out);
}

int migrate_discover(const char *from, const char *to, const migrate_options *opts,
                     migrate_report **out)
{
    run r;
    int rc = begin(&r, from, to, opts, out);
    if (rc == MIGRATE_OK)
        rc = mig_options_check_discover(&r.o, r.err);
    if (rc == MIGRATE_OK)
        rc = discover(&r);
    for (size_t i = 0; rc == MIGRATE_OK && i < r.plan.count; i++)
        mig_report_set_outcome(r.report, i, MIGRATE_PENDING, NULL);
    return finish(&r, rc, out);
}
