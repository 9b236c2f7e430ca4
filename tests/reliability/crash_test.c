/* crash_test.c - SIGKILL a run at every file-system call and resume it.
 *
 * A 50-migration tree where each migration counts its own applications in a
 * file of its own (check() is true iff the count is 1; migrate() adds one).
 * A child process runs it and the fault shim SIGKILLs it just before its
 * k-th call under the test directory; then the next run resumes. After
 * every kill: the state file parses (or is absent), lists a prefix of the
 * migrations in order, no count exceeds 1, every recorded migration counts
 * exactly 1, and at most one state temp file exists (the next run sweeps
 * it). At the end the state lists all 50 in order.
 *
 * Two phases: a sweep that kills a run from a fresh home at call k for
 * every k (or every step-th k), each followed by a clean resume; then
 * episodes of repeated kills at random calls, resuming until a run gets
 * through, so kills also land in resumed runs and in recovery itself.
 * Then both phases again with opts.rehearse (SPEC §4.6).
 *
 * usage: crash_test [--full] [--kills N] [--seed S]   (REL_FULL=1 as --full) */
#include "rel.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NMIG 50
#define NVERSIONS 5

static const char COUNT_SCRIPT[] =
    "local P = '~/counts/' .. migration.id:gsub('/', '_')\n"
    "local function count() return fs.exists(P) and tonumber(fs.read(P)) or 0 end\n"
    "function check() return count() == 1 end\n"
    "function migrate()\n"
    "  fs.mkdir('~/counts')\n"
    "  fs.write(P, tostring(count() + 1))\n"
    "  return true\n"
    "end\n";

typedef struct world {
    rel_world base;
    char *state_dir, *state, *counts, *log;
    char *ids[NMIG];
} world;

static void world_init(world *w)
{
    rel_world_init(&w->base, "crash", 10000);
    w->state_dir = rel_fmt("%s/.teleclaude", w->base.home);
    w->state = rel_fmt("%s/migration_state.json", w->state_dir);
    w->counts = rel_fmt("%s/counts", w->base.home);
    w->log = rel_fmt("%s/kills.log", w->base.root);
    for (int i = 0; i < NMIG; i++) {
        int v = i / (NMIG / NVERSIONS), n = i % (NMIG / NVERSIONS) + 1;
        /* Numbers out of text order (9 < 10) so the order is by value. */
        w->ids[i] = rel_fmt("v1.%d.0/%d_m", v, n);
        char *path = rel_fmt("%s/%s.lua", w->base.migrations, w->ids[i]);
        rel_write(path, COUNT_SCRIPT);
        free(path);
    }
}

static void world_free(world *w)
{
    rel_world_free(&w->base);
    for (int i = 0; i < NMIG; i++)
        free(w->ids[i]);
    free(w->state_dir);
    free(w->state);
    free(w->counts);
    free(w->log);
}

typedef struct child_args {
    world *w;
    long kill_at; /* 0: no kill, just count */
} child_args;

static int run_child(void *arg, rel_outcome *o)
{
    child_args *a = arg;
    setenv("FAULTSHIM_LOG", a->w->log, 1);
    migrate_report *report = NULL;
    rel_shim_arm(a->w->base.root, NULL, a->kill_at, NULL, "kill");
    o->rc = migrate_run(NULL, NULL, &a->w->base.opts, &report);
    rel_shim_disarm();
    o->calls = rel_shim_calls();
    const char *err = migrate_report_error(report);
    snprintf(o->error, sizeof o->error, "%s", err ? err : "");
    migrate_report_free(report);
    return 0;
}

static int count_of(const world *w, int i)
{
    char *name = rel_fmt("%s/%s", w->counts, w->ids[i]);
    *strchr(name + strlen(w->counts) + 1, '/') = '_';
    char *text = rel_read(name);
    int n = text ? atoi(text) : 0;
    free(text);
    free(name);
    return n;
}

/* The invariants after any run, killed or not; returns how many
 * migrations the state records. */
static size_t check_after(const world *w, const char *what)
{
    char **ids;
    size_t n;
    const char *why;
    int parsed = rel_state_ids(w->state, &ids, &n, &why);
    REL_CHECK(parsed >= 0, "%s: state file corrupt (%s)", what, why);
    bool prefix = n <= NMIG;
    for (size_t i = 0; prefix && i < n; i++)
        prefix = strcmp(ids[i], w->ids[i]) == 0;
    REL_CHECK(prefix, "%s: the state does not list a prefix of the migrations in order", what);
    int over = 0, unrecorded_missing = 0;
    for (int i = 0; i < NMIG; i++) {
        int c = count_of(w, i);
        over += c > 1;
        unrecorded_missing += (size_t)i < n && c != 1;
    }
    REL_CHECK(over == 0, "%s: %d migrations applied more than once", what, over);
    REL_CHECK(unrecorded_missing == 0, "%s: %d recorded migrations have no effect", what,
              unrecorded_missing);
    REL_CHECK(rel_count_prefixed(w->state_dir, ".migration_state.json.tmp-") <= 1,
              "%s: state temp files accumulate", what);
    rel_free_ids(ids, n);
    return n;
}

/* The state and the counts once a run got through. A write killed before
 * its rename leaves a temp beside its count file; that count did not move,
 * so the resumed run writes the file again, and every successful write
 * sweeps its target's leftovers: none survives a complete run. */
static void check_done(const world *w, const char *what)
{
    REL_CHECK(rel_count_prefixed(w->counts, ".v") == 0,
              "%s: fs.write temp files survived a complete run", what);
    size_t n = check_after(w, what);
    REL_CHECK(n == NMIG, "%s: %zu of %d recorded", what, n, NMIG);
    REL_CHECK(rel_count_prefixed(w->state_dir, ".migration_state.json.tmp-") == 0,
              "%s: a state temp file survived a complete run", what);
}

/* ---- the points hit ---------------------------------------------------------- */

#define MAX_POINTS 64
typedef struct points {
    char names[MAX_POINTS][64];
    int hits[MAX_POINTS];
    int count;
    long kills;
    char *seen_k; /* which call numbers of a fresh run were hit */
    long max_k;
} points;

static const char *kind_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, ".migration_state.json.tmp-", 26) == 0)
        return "state temp";
    if (strcmp(base, "migration_state.json") == 0)
        return "state file";
    if (strcmp(base, "migration_state.json.lock") == 0)
        return "lock file";
    if (strcmp(base, ".teleclaude") == 0)
        return "state dir";
    if (strstr(base, ".tmp-") != NULL)
        return "count temp";
    if (strstr(path, "/counts/") != NULL)
        return "count file";
    if (strcmp(base, "counts") == 0)
        return "counts dir";
    if (strstr(path, ".lua") != NULL)
        return "script";
    return "parent dir"; /* mkdir -p of the home and above */
}

/* Reads the last line of the shim's kill log: "<n> <op> <path>". */
static void note_kill(points *p, const world *w)
{
    char *log = rel_read(w->log);
    if (log == NULL)
        return;
    size_t len = strlen(log);
    while (len > 0 && log[len - 1] == '\n')
        log[--len] = '\0';
    char *line = strrchr(log, '\n');
    line = line ? line + 1 : log;
    char op[32], path[4096];
    long n;
    if (sscanf(line, "%ld %31s %4095s", &n, op, path) == 3) {
        char name[64];
        snprintf(name, sizeof name, "%s %s", op, kind_of(path));
        int i = 0;
        while (i < p->count && strcmp(p->names[i], name) != 0)
            i++;
        if (i == p->count && p->count < MAX_POINTS)
            snprintf(p->names[p->count++], sizeof p->names[0], "%s", name);
        if (i < MAX_POINTS)
            p->hits[i]++;
    }
    free(log);
    p->kills++;
}

/* ---- the phases ------------------------------------------------------------------ */

/* A run killed at call k (0: never); true if it was killed. */
static bool run_once(world *w, long k, points *p, const char *what)
{
    child_args a = {w, k};
    rel_outcome o;
    rel_in_child(run_child, &a, &o);
    bool killed = !o.exited && o.sig == SIGKILL;
    REL_CHECK(killed || (o.exited && o.status == 0 && o.rc == MIGRATE_OK),
              "%s: the run neither finished nor was killed (signal %d, rc %d: %s)", what, o.sig,
              o.rc, o.error);
    if (killed)
        note_kill(p, w);
    return killed;
}

static long calls_of_full_run(world *w)
{
    rel_reset_home(w->base.home);
    child_args a = {w, 0};
    rel_outcome o;
    rel_in_child(run_child, &a, &o);
    if (!o.exited || o.rc != MIGRATE_OK)
        rel_die("the run without kills fails: %s", o.error);
    check_done(w, "a run without kills");
    return o.calls;
}

static void sweep(world *w, long total, long step, points *p)
{
    for (long k = 1; k <= total; k += step) {
        rel_reset_home(w->base.home);
        char *what = rel_fmt("killed at call %ld of a fresh run", k);
        if (run_once(w, k, p, what)) {
            p->seen_k[k] = 1;
            check_after(w, what);
        }
        run_once(w, 0, p, what);
        check_done(w, what);
        free(what);
        rel_case();
    }
}

static void episodes(world *w, long total, long kills, points *p, int *runs_out)
{
    int episodes_done = 0;
    long start = p->kills;
    while (p->kills - start < kills) {
        rel_reset_home(w->base.home);
        int runs = 0;
        for (;;) {
            long k = 1 + random() % total;
            char *what = rel_fmt("episode %d, run %d killed at call %ld", episodes_done, runs, k);
            runs++;
            bool killed = run_once(w, k, p, what);
            check_after(w, what);
            free(what);
            rel_case();
            if (!killed)
                break;
        }
        check_done(w, "the end of an episode");
        rel_case();
        episodes_done++;
        *runs_out += runs;
    }
    printf("  random: %ld kills in %d episodes (%d runs)\n", p->kills - start, episodes_done,
           *runs_out);
}

int main(int argc, char **argv)
{
    rel_with_shim(argv);
    bool full = rel_full(argc, argv);
    long kills = full ? 300 : 40;
    unsigned seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kills") == 0 && i + 1 < argc)
            kills = atol(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = (unsigned)atol(argv[++i]);
    }
    srandom(seed);
    /* The same, then again with opts.rehearse: its run makes every call
     * twice (the rehearsal reads, the real run writes), and a kill in the
     * rehearsal must leave nothing behind. */
    for (int pass = 0; pass < 2; pass++) {
        bool rehearse = pass == 1;
        world w;
        world_init(&w);
        w.base.opts.rehearse = rehearse;
        long total = calls_of_full_run(&w);
        points p = {.seen_k = calloc((size_t)total + 2, 1), .max_k = total};
        long step = full ? 1 : total / 25;
        printf("crash test%s: %d migrations; a run from a fresh home makes %ld file-system "
               "calls\n", rehearse ? " with rehearse" : "", NMIG, total);
        sweep(&w, total, step, &p);
        long swept = 0;
        for (long k = 1; k <= total; k++)
            swept += p.seen_k[k];
        printf("  sweep: killed at %ld of the %ld calls (every %ld), each resumed\n", swept,
               total, step);
        int runs = 0;
        episodes(&w, total, rehearse ? kills / 2 : kills, &p, &runs);
        printf("crash test%s: %ld kills, %ld distinct call numbers, %d distinct kinds of "
               "point:\n", rehearse ? " with rehearse" : "", p.kills, swept, p.count);
        for (int i = 0; i < p.count; i++)
            printf("  %5d  before %s\n", p.hits[i], p.names[i]);
        free(p.seen_k);
        world_free(&w);
    }
    return rel_summary();
}
