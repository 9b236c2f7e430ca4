/* fault_sweep.c - every file-system call of a run, made to fail in turn.
 *
 * For each fault kind (EIO, ENOSPC, EINTR, a short write, a disk that stays
 * full) and each N = 1, 2, ... until a run makes fewer than N calls, a child
 * process runs the migrations with the Nth call under the test directory
 * failing. Afterwards: the child returned (no crash, no abort), the state
 * file parses and lists a prefix of the migrations (the old state or a newer
 * one), every recorded migration's effect is there exactly once, no temp
 * file is left, and a run without faults then completes with every
 * migration applied exactly once. The same for fs.write, fs.copy and
 * fs.write_json called from a script: the target holds the old or the new
 * content, never a mix. The run sweep is repeated with opts.rehearse; a run
 * its rehearsal refused must have recorded nothing new.
 *
 * usage: fault_sweep [--full]   (or REL_FULL=1; without it: EIO and EINTR only) */
#include "rel.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fault_kind {
    const char *name;
    const char *ops;   /* NULL: every operation */
    const char *err;
    const char *action;
    bool sticky;
} fault_kind;

static const fault_kind KINDS[] = {
    {"EIO", NULL, "EIO", "fail", false},
    {"EINTR", NULL, "EINTR", "fail", false},
    {"ENOSPC", NULL, "ENOSPC", "fail", false},
    {"short write", "write", NULL, "short", false},
    {"disk full (ENOSPC on every write from N on)", "write,copy_file_range,fsync", "ENOSPC", "fail",
     true},
};

/* ---- the multi-migration run ---------------------------------------------- */

static const char *const IDS[] = {"v1.0.0/001_a", "v1.0.0/002_b", "v1.1.0/001_c", "v1.1.0/002_d",
                                  "v1.1.0/003_e"};
#define NIDS (sizeof IDS / sizeof IDS[0])

/* Each migration appends its id to ~/effects.log through fs.write, so a
 * second application shows as a repeated line. */
static const char APPEND_SCRIPT[] =
    "local function log() return fs.exists('~/effects.log') and fs.read('~/effects.log') or '' end\n"
    "function check() return (log()):find(migration.id .. '\\n', 1, true) ~= nil end\n"
    "function migrate() fs.write('~/effects.log', log() .. migration.id .. '\\n') return true end\n";

typedef struct world {
    rel_world base;
    char *state, *state_dir, *effects;
} world;

static void world_init(world *w, const char *tag)
{
    rel_world_init(&w->base, tag, 5000);
    w->state_dir = rel_fmt("%s/.teleclaude", w->base.home);
    w->state = rel_fmt("%s/migration_state.json", w->state_dir);
    w->effects = rel_fmt("%s/effects.log", w->base.home);
}

static void world_free(world *w)
{
    rel_world_free(&w->base);
    free(w->state_dir);
    free(w->state);
    free(w->effects);
}

/* A fresh home; resumed: the first migration already applied and recorded,
 * so a fault has an old state file to preserve. */
static void reset_home(world *w, bool resumed)
{
    rel_reset_home(w->base.home);
    if (resumed) {
        char *state = rel_fmt("{\"applied\": [\"%s\"], \"custom\": 1}\n", IDS[0]);
        rel_write(w->state, state);
        free(state);
        char *effects = rel_fmt("%s\n", IDS[0]);
        rel_write(w->effects, effects);
        free(effects);
    }
}

typedef struct child_args {
    world *w;
    const fault_kind *kind;
    const char *prefix;
    long nth;
} child_args;

static int run_with_fault(void *arg, rel_outcome *o)
{
    child_args *a = arg;
    if (a->kind->sticky)
        setenv("FAULTSHIM_STICKY", "1", 1);
    else
        unsetenv("FAULTSHIM_STICKY");
    migrate_report *report = NULL;
    rel_shim_arm(a->prefix, a->kind->ops, a->nth, a->kind->err, a->kind->action);
    o->rc = migrate_run(NULL, NULL, &a->w->base.opts, &report);
    rel_shim_disarm();
    o->calls = rel_shim_calls();
    snprintf(o->fired_at, sizeof o->fired_at, "%s", rel_shim_fired_at());
    const char *err = migrate_report_error(report);
    snprintf(o->error, sizeof o->error, "%s", err ? err : "");
    migrate_report_free(report);
    return 0;
}

/* How many times each id appears as a line of the effects log. */
static void count_effects(const world *w, int counts[NIDS], int *unknown)
{
    memset(counts, 0, NIDS * sizeof counts[0]);
    *unknown = 0;
    char *log = rel_read(w->effects);
    for (char *save = NULL, *line = log ? strtok_r(log, "\n", &save) : NULL; line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        size_t i = 0;
        while (i < NIDS && strcmp(IDS[i], line) != 0)
            i++;
        if (i < NIDS)
            counts[i]++;
        else
            ++*unknown;
    }
    free(log);
}

/* Whether the state file keeps the key the resumed home started with:
 * keys the library does not know survive every rewrite (SPEC §6). */
static bool keeps_custom_key(const world *w)
{
    char *text = rel_read(w->state);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    bool kept = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "custom"));
    cJSON_Delete(root);
    free(text);
    return kept;
}

/* The invariants that hold after any run, faulty or not; *recorded is the
 * number of migrations the state lists. */
static void check_consistent(const world *w, const char *what, size_t *recorded)
{
    char **ids;
    size_t n;
    const char *why;
    int parsed = rel_state_ids(w->state, &ids, &n, &why);
    REL_CHECK(parsed >= 0, "%s: state file corrupt (%s)", what, why);
    if (strstr(what, "resumed") != NULL)
        REL_CHECK(keeps_custom_key(w), "%s: the state lost a key it did not know", what);
    bool prefix = n <= NIDS;
    for (size_t i = 0; prefix && i < n; i++)
        prefix = strcmp(ids[i], IDS[i]) == 0;
    REL_CHECK(prefix, "%s: the state does not list a prefix of the migrations in order", what);
    int counts[NIDS], unknown;
    count_effects(w, counts, &unknown);
    bool once = unknown == 0;
    for (size_t i = 0; i < NIDS; i++)
        once = once && counts[i] <= 1 && (i >= n || counts[i] == 1);
    REL_CHECK(once, "%s: an effect is missing, doubled or garbled (recorded %zu)", what, n);
    REL_CHECK(rel_count_prefixed(w->state_dir, ".migration_state.json.tmp-") == 0,
              "%s: a state temp file was left behind", what);
    REL_CHECK(rel_count_prefixed(w->base.home, ".effects.log.tmp-") == 0,
              "%s: a temp file of fs.write was left behind", what);
    rel_free_ids(ids, n);
    *recorded = n;
}

static bool valid_code(int rc)
{
    return rc <= MIGRATE_OK && rc >= MIGRATE_ENOMEM;
}

/* Errors the library absorbs: EINTR and short writes are retried. */
static bool must_succeed(const fault_kind *k, const char *fired_at)
{
    if (strcmp(k->action, "short") == 0)
        return true;
    return strcmp(k->err, "EINTR") == 0 &&
           (strncmp(fired_at, "write ", 6) == 0 || strncmp(fired_at, "copy_file_range ", 16) == 0);
}

/* One faulty run and the clean run after it; false once N is past the
 * last call. */
static bool sweep_step(world *w, const fault_kind *k, bool resumed, long nth)
{
    reset_home(w, resumed);
    child_args a = {w, k, w->base.root, nth};
    rel_outcome o;
    rel_in_child(run_with_fault, &a, &o);
    char *what = rel_fmt("%s N=%ld (%s) %s", k->name, nth, o.fired_at[0] ? o.fired_at : "no call",
                         resumed ? "resumed" : "fresh");
    REL_CHECK(o.exited && o.status == 0 && o.rc != 1000, "%s: the run did not return (signal %d)",
              what, o.sig);
    REL_CHECK(valid_code(o.rc), "%s: return code %d", what, o.rc);
    REL_CHECK(o.rc == MIGRATE_OK || o.error[0] != '\0', "%s: an error without a message", what);
    size_t recorded;
    check_consistent(w, what, &recorded);
    if (strstr(o.error, "in the rehearsal") != NULL) { /* refused: nothing was written */
        int counts[NIDS], unknown, effects = 0;
        count_effects(w, counts, &unknown);
        for (size_t i = 0; i < NIDS; i++)
            effects += counts[i];
        REL_CHECK(recorded == (resumed ? 1u : 0u) && effects == (resumed ? 1 : 0),
                  "%s: the rehearsal failed, yet %zu are recorded and %d effects there", what,
                  recorded, effects);
    }
    if (o.rc == MIGRATE_OK)
        REL_CHECK(recorded == NIDS, "%s: OK but only %zu recorded", what, recorded);
    if (must_succeed(k, o.fired_at))
        REL_CHECK(o.rc == MIGRATE_OK, "%s: a retryable fault failed the run: %s", what, o.error);
    migrate_report *report = NULL;
    int rc = migrate_run(NULL, NULL, &w->base.opts, &report);
    REL_CHECK(rc == MIGRATE_OK, "%s: the run after the fault failed: %s", what,
              migrate_report_error(report));
    migrate_report_free(report);
    char *after = rel_fmt("%s, then a clean run", what);
    check_consistent(w, after, &recorded);
    REL_CHECK(recorded == NIDS, "%s: %zu of %zu recorded", after, recorded, NIDS);
    free(after);
    free(what);
    rel_case();
    return o.fired_at[0] != '\0';
}

static long sweep_run(world *w, const fault_kind *k, bool resumed)
{
    long n = 1;
    while (sweep_step(w, k, resumed, n))
        n++;
    printf("  run (%s home), %s: N = 1..%ld\n", resumed ? "resumed" : "fresh", k->name, n - 1);
    return n - 1;
}

/* ---- fs primitives driven from a script ---------------------------------------- */

typedef struct primitive {
    const char *name;
    const char *target;   /* under ~/data */
    const char *migrate;  /* the body of migrate() */
    const char *check;    /* the body of check() */
} primitive;

/* The new content is large enough to need more than one write when a
 * write comes up short. */
static const primitive PRIMS[] = {
    {"fs.write", "target.txt", "fs.write('~/data/target.txt', NEW) return true",
     "return fs.exists('~/data/target.txt') and fs.read('~/data/target.txt') == NEW"},
    {"fs.copy", "target.txt", "fs.copy('~/data/source.txt', '~/data/target.txt') return true",
     "return fs.exists('~/data/target.txt') and fs.read('~/data/target.txt') == NEW"},
    {"fs.write_json", "target.json",
     "local t = fs.read_json('~/data/target.json') t.new = NEW fs.write_json('~/data/target.json', t) "
     "return true",
     "return fs.read_json('~/data/target.json').new == NEW"},
};

static char *big_text(char fill, bool lines)
{
    size_t n = 100000;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (lines && i % 61 == 60) ? '\n' : (char)(fill + (int)(i % 7));
    s[n] = '\0';
    return s;
}

typedef struct prim_world {
    world w;
    const primitive *p;
    char *data, *target, *old_content, *new_content;
} prim_world;

static void prim_reset(prim_world *pw)
{
    rel_rmtree(pw->w.base.home);
    char *source = rel_fmt("%s/source.txt", pw->data);
    rel_write(source, pw->new_content);
    free(source);
    rel_write(pw->target, pw->old_content);
}

static void prim_init(prim_world *pw, const primitive *p, const char *old_text, const char *new_text)
{
    world_init(&pw->w, "fault-prim");
    pw->p = p;
    pw->data = rel_fmt("%s/data", pw->w.base.home);
    pw->target = rel_fmt("%s/%s", pw->data, p->target);
    bool json = strcmp(p->name, "fs.write_json") == 0;
    pw->old_content = json ? strdup("{\n  \"old\": true\n}\n") : strdup(old_text);
    pw->new_content = strdup(new_text); /* what the source file holds */
    char *script = rel_fmt("local NEW = [[%s]]\nfunction check() %s end\nfunction migrate() %s end\n",
                           new_text, p->check, p->migrate);
    char *path = rel_fmt("%s/v1.0.0/001_prim.lua", pw->w.base.migrations);
    rel_write(path, script);
    free(path);
    free(script);
    /* What the target holds after a clean run is "new". */
    prim_reset(pw);
    migrate_report *report = NULL;
    if (migrate_run(NULL, NULL, &pw->w.base.opts, &report) != MIGRATE_OK)
        rel_die("%s: the clean run fails: %s", p->name, migrate_report_error(report));
    migrate_report_free(report);
    free(pw->new_content);
    pw->new_content = rel_read(pw->target);
}

static void prim_free(prim_world *pw)
{
    world_free(&pw->w);
    free(pw->data);
    free(pw->target);
    free(pw->old_content);
    free(pw->new_content);
}

static bool prim_step(prim_world *pw, const fault_kind *k, long nth)
{
    prim_reset(pw);
    child_args a = {&pw->w, k, pw->data, nth};
    rel_outcome o;
    rel_in_child(run_with_fault, &a, &o);
    char *what = rel_fmt("%s, %s N=%ld (%s)", pw->p->name, k->name, nth,
                         o.fired_at[0] ? o.fired_at : "no call");
    REL_CHECK(o.exited && o.status == 0 && o.rc != 1000, "%s: the run did not return (signal %d)",
              what, o.sig);
    char *now = rel_read(pw->target);
    bool is_old = now && strcmp(now, pw->old_content) == 0;
    bool is_new = now && strcmp(now, pw->new_content) == 0;
    REL_CHECK(is_old || is_new, "%s: the target is neither old nor new (%zu bytes)", what,
              now ? strlen(now) : 0);
    REL_CHECK(o.rc != MIGRATE_OK || is_new, "%s: OK but the target is not new", what);
    REL_CHECK(o.rc == MIGRATE_OK || o.rc == MIGRATE_EFAILED || o.rc == MIGRATE_EIO,
              "%s: return code %d (%s)", what, o.rc, o.error);
    if (must_succeed(k, o.fired_at))
        REL_CHECK(o.rc == MIGRATE_OK, "%s: a retryable fault failed the run: %s", what, o.error);
    char *prefix = rel_fmt(".%s.tmp-", pw->p->target);
    REL_CHECK(rel_count_prefixed(pw->data, prefix) == 0, "%s: a temp file was left behind", what);
    free(prefix);
    free(now);
    migrate_report *report = NULL;
    int rc = migrate_run(NULL, NULL, &pw->w.base.opts, &report);
    now = rel_read(pw->target);
    REL_CHECK(rc == MIGRATE_OK && now && strcmp(now, pw->new_content) == 0,
              "%s: the run after the fault did not finish the job: %s", what,
              migrate_report_error(report));
    migrate_report_free(report);
    free(now);
    free(what);
    rel_case();
    return o.fired_at[0] != '\0';
}

static long sweep_primitive(const primitive *p, const fault_kind *k)
{
    bool lines = strcmp(p->name, "fs.write_json") != 0;
    char *old_text = big_text('a', lines), *new_text = big_text('A', lines);
    prim_world pw;
    prim_init(&pw, p, old_text, new_text);
    long n = 1;
    while (prim_step(&pw, k, n))
        n++;
    prim_free(&pw);
    free(old_text);
    free(new_text);
    printf("  %s, %s: N = 1..%ld\n", p->name, k->name, n - 1);
    return n - 1;
}

int main(int argc, char **argv)
{
    rel_with_shim(argv);
    bool quick = !rel_full(argc, argv);
    size_t nkinds = quick ? 2 : sizeof KINDS / sizeof KINDS[0];
    world w;
    world_init(&w, "fault");
    for (size_t i = 0; i < NIDS; i++) {
        char *path = rel_fmt("%s/%.6s/%s.lua", w.base.migrations, IDS[i], IDS[i] + 7);
        rel_write(path, APPEND_SCRIPT);
        free(path);
    }
    long faults = 0;
    printf("fault sweep: %zu migrations, each appending its id through fs.write\n", NIDS);
    for (size_t k = 0; k < nkinds; k++) {
        faults += sweep_run(&w, &KINDS[k], false);
        faults += sweep_run(&w, &KINDS[k], true);
    }
    /* With opts.rehearse (SPEC §4.6): faults in the rehearsal's reads too. */
    printf("fault sweep with rehearse:\n");
    w.base.opts.rehearse = true;
    for (size_t k = 0; k < nkinds; k++) {
        faults += sweep_run(&w, &KINDS[k], false);
        faults += sweep_run(&w, &KINDS[k], true);
    }
    w.base.opts.rehearse = false;
    world_free(&w);
    for (size_t p = 0; p < sizeof PRIMS / sizeof PRIMS[0]; p++)
        for (size_t k = 0; k < nkinds; k++)
            faults += sweep_primitive(&PRIMS[p], &KINDS[k]);
    printf("fault sweep: %ld faults injected, each followed by a clean run\n", faults);
    return rel_summary();
}
