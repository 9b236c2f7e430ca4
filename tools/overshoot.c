/*
 * overshoot.c - how far past its deadline each way a script can spend time
 * ends (SPEC §3, RELIABILITY.md "One deadline per call").
 *
 * Every case is a migration whose migrate() spends its time one way (C
 * work the VM hook never sees, Lua code, coroutines, swallowed errors),
 * then writes ~/escaped and returns true. It runs through the public API,
 * migrate_run() with timeout_ms = 200 on a temp tree, OVERSHOOT_REPS times
 * (default 5). A run counts only if it failed as a timeout and ~/escaped
 * does not exist.
 *
 * The clock is the wall clock (the deadline's own), so a loaded machine
 * shows in the figures. The overshoot is measured from migrate()'s first
 * statement (a log.info, timestamped by the event callback: some
 * microseconds after the deadline was armed, so the figure is short by
 * that much) to the DONE event of the failed migration, less timeout_ms;
 * the return of migrate_run() (the state closed, the report built) is
 * shown too. A case whose time is one C call logs "c" before the call and
 * "after" after it: "in C" counts the runs in which the deadline passed
 * with "c" logged and no "after", i.e. it fired inside that call. "off
 * CPU" is the median of the wall time from migrate()'s start to DONE less
 * the thread's CPU time over it: how much of the run the machine's other
 * work took (the deadline counts that time too).
 *
 * DONE follows the closing of the script's Lua state, so a figure includes
 * the unwinding and freeing every object the script made (some 20 ms for
 * a few hundred thousand strings here); a call's own polls are
 * microseconds apart.
 *
 *   make bench                    runs bench, then this
 *   build/overshoot [name...]     cases whose name contains one of the words
 *   OVERSHOOT_REPS=n              runs per case
 *   OVERSHOOT_VERBOSE=1           each run's marks on stderr
 *   OVERSHOOT_BODY='lua'          time this body instead (1 GiB memory_limit;
 *                                 log.info('c') and log.info('after') mark a call)
 *
 * Last line: "N passed, N failed" (a case passes when every run timed out
 * and nothing escaped; the figures are reported, not judged).
 */
#include <migrate.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "median.h"

#define TIMEOUT_MS 200u
#define MAX_REPS 50

/* The case's C call is between these two log lines. */
#define C "log.info('c') "
#define A " log.info('after')"
#define LOOP_FN "function() while true do end end"

typedef struct ocase {
    const char *name;
    const char *body;
    size_t memory_limit; /* 0: 256 MiB */
    bool one_call;       /* the time is one C call, marked "c" ... "after" */
} ocase;

static const ocase cases[] = {
    /* ---- C work: the pattern functions (src/pattern.c) ---- */
    {"find: ('a'):rep(20000):find('.-.-.-.-.-b')",
     "local s = ('a'):rep(20000) " C "s:find('.-.-.-.-.-b')" A, 0, true},
    {"match: ('a'):rep(30000), '(.-)*$'",
     "local s = ('a'):rep(30000) " C "string.match(s, '(.-)*$')" A, 0, true},
    {"gsub: ('a'):rep(20000), '.-.-.-.-b'",
     "local s = ('a'):rep(20000) " C "string.gsub(s, '.-.-.-.-b', 'x')" A, 0, true},
    {"gmatch: ('a'):rep(20000), 'a*a*a*a*b'",
     "local s = ('a'):rep(20000) " C "for _ in s:gmatch('a*a*a*a*b') do end" A, 0, true},
    {"plain find: 2 MiB needle in 4 MiB",
     "local h, n = ('a'):rep(4 << 20), ('a'):rep(2 << 20) .. 'b' " C "h:find(n, 1, true)" A,
     0, true},
    {"gsub of 4 MiB, table replacement",
     "local s = ('x'):rep(4 << 20) " C "s:gsub('.', {x = 'y'})" A, 0, true},
    {"gsub of 4 MiB, Lua callback",
     "local s = ('x'):rep(4 << 20) " C "s:gsub('.', function(c) return c end)" A, 0, true},
    /* ---- C work: string.rep, table.* (src/sandbox.c) ---- */
    {"string.rep('', math.maxinteger), then loop",
     C "assert(string.rep('', math.maxinteger) == '')" A " while true do end", 0, false},
    {"string.rep('x', 512 MiB)", C "string.rep('x', 512 << 20)" A, (size_t)1 << 30, true},
    {"string.rep('ab', 128 Mi, ',')", C "string.rep('ab', 128 << 20, ',')" A, (size_t)1 << 30,
     true},
    {"table.move({}, 1, 1 << 60, 1)", C "table.move({}, 1, 1 << 60, 1)" A, 0, true},
    {"table.concat of 1 Mi floats",
     "local t = {} for i = 1, 1 << 20 do t[i] = i + 0.5 end " C "table.concat(t, ',')" A,
     0, true},
    {"table.sort of 1 Mi, Lua comparator",
     "local t = {} for i = 1, 1 << 20 do t[i] = (i * 7919) % 1000003 end "
     C "table.sort(t, function(a, b) return a < b end)" A,
     0, true},
    {"table.sort of 1 Mi, no comparator",
     "local t = {} for i = 1, 1 << 20 do t[i] = (i * 7919) % 1000003 end "
     C "table.sort(t)" A,
     0, true},
    /* ---- Lua code, coroutines, swallowed errors (the hooks) ---- */
    {"tight Lua loop", "while true do end", 0, false},
    {"loop inside a coroutine", "coroutine.resume(coroutine.create(" LOOP_FN "))", 0, false},
    {"coroutines spawning coroutines (tree)",
     "local function node(d)\n"
     "  for i = 1, 100 do end\n"
     "  if d < 120 then\n"
     "    coroutine.resume(coroutine.create(node), d + 1)\n"
     "    coroutine.resume(coroutine.create(node), d + 1)\n"
     "  end\n"
     "end\n"
     "node(1)",
     0, false},
    {"pcall swallowing, 1000 times", "for i = 1, 1000 do pcall(" LOOP_FN ") end", 0, false},
    {"xpcall swallowing", "xpcall(" LOOP_FN ", function(e) return e end)", 0, false},
    {"pcall(coroutine.wrap(loop))", "pcall(coroutine.wrap(" LOOP_FN "))", 0, false},
    {"looping __close under coroutine.close",
     "local co = coroutine.create(function()\n"
     "  local x <close> = setmetatable({}, {__close = " LOOP_FN "})\n"
     "  coroutine.yield()\n"
     "end)\n"
     "coroutine.resume(co)\n"
     "coroutine.close(co)",
     0, false},
    /* ---- what follows the timeout: closing a state of many objects ---- */
    {"loop making up to 300,000 strings",
     "local t = {} for i = 1, 300000 do t[i] = tostring(i + 0.5) end while true do end", 0,
     false},
    /* ---- C work nobody polls: linear, so bounded by memory_limit ---- */
    {"(unpolled) s:upper() of 64 MiB, repeated",
     "local s = ('x'):rep(64 << 20) " C "while true do local u = s:upper() end", (size_t)1 << 30,
     false},
};
#define NCASES (sizeof cases / sizeof cases[0])

typedef struct marks {
    double start, c, after, done;
    double cpu_start, cpu_done; /* the thread's CPU time at start and done */
} marks;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Marks when the case started, entered its C call, and finished; never
 * cancels (returns 0). */
static int on_event(const migrate_event *ev, void *payload)
{
    marks *m = payload;
    double t = now();
    if (ev->kind == MIGRATE_EVENT_LOG && strcmp(ev->message, "start") == 0) {
        m->start = t;
        m->cpu_start = cpu_now();
    } else if (ev->kind == MIGRATE_EVENT_DONE) {
        m->done = t;
        m->cpu_done = cpu_now();
    }
    else if (ev->kind == MIGRATE_EVENT_LOG && strcmp(ev->message, "c") == 0)
        m->c = t;
    else if (ev->kind == MIGRATE_EVENT_LOG && strcmp(ev->message, "after") == 0)
        m->after = t;
    return 0;
}

static void die(const char *what)
{
    fprintf(stderr, "overshoot: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
        die(path);
}


static bool wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return true;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]) != NULL)
            return true;
    return false;
}

static char root[1024], migrations[1100], home[1100], script[1300], escaped[1200];

/* One run of case c; false (with why on stderr) unless it timed out and
 * nothing escaped. */
static bool run_once(const ocase *c, marks *m, double *returned)
{
    memset(m, 0, sizeof *m);
    migrate_options o = MIGRATE_OPTIONS_INIT;
    o.migrations_dir = migrations;
    o.home = home;
    o.timeout_ms = TIMEOUT_MS;
    o.memory_limit = c->memory_limit;
    o.on_event = on_event;
    o.payload = m;
    migrate_report *r = NULL;
    int rc = migrate_run(NULL, NULL, &o, &r);
    *returned = now();
    const migrate_result *f = r != NULL ? migrate_report_failed(r) : NULL;
    char want[64];
    snprintf(want, sizeof want, "timed out after %u ms", TIMEOUT_MS);
    bool ok = rc == MIGRATE_EFAILED && f != NULL && strstr(f->error, want) != NULL &&
              m->start > 0 && m->done > 0;
    if (!ok)
        fprintf(stderr, "overshoot: %s: rc %d: %.300s\n", c->name, rc,
                f != NULL ? f->error : r != NULL && migrate_report_error(r) ? migrate_report_error(r)
                                                                              : "?");
    migrate_report_free(r);
    if (access(escaped, F_OK) == 0) {
        fprintf(stderr, "overshoot: %s: the script wrote ~/escaped\n", c->name);
        unlink(escaped);
        ok = false;
    }
    return ok;
}

int main(int argc, char **argv)
{
    bool verbose = getenv("OVERSHOOT_VERBOSE") != NULL;
    int reps = getenv("OVERSHOOT_REPS") ? atoi(getenv("OVERSHOOT_REPS")) : 5;
    if (reps < 1 || reps > MAX_REPS)
        reps = 5;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(root, sizeof root, "%s/migrate-overshoot-XXXXXX", base);
    if (mkdtemp(root) == NULL)
        die(root);
    snprintf(migrations, sizeof migrations, "%s/m", root);
    snprintf(home, sizeof home, "%s/home", root);
    snprintf(escaped, sizeof escaped, "%s/escaped", home);
    char vdir[1200];
    snprintf(vdir, sizeof vdir, "%s/v1.0.0", migrations);
    if (mkdir(migrations, 0755) != 0 || mkdir(vdir, 0755) != 0 || mkdir(home, 0755) != 0)
        die(root);
    snprintf(script, sizeof script, "%s/001_case.lua", vdir);

    printf("libmigrate %s deadline overshoot, timeout_ms %u, %d runs per case, wall clock\n",
           migrate_library_version(), TIMEOUT_MS, reps);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 1)
        load[0] = -1;
    printf("load average %.2f at the start\n", load[0]);
    printf("%-44s %9s %9s %11s %6s %8s\n", "case", "median", "max", "max@return", "in C",
           "off CPU");
    fflush(stdout);
    int passed = 0, failed = 0;
    const char *own = getenv("OVERSHOOT_BODY");
    ocase custom = {"OVERSHOOT_BODY", own, (size_t)1 << 30, true};
    for (size_t i = 0; i < (own != NULL ? 1 : NCASES); i++) {
        const ocase *c = own != NULL ? &custom : &cases[i];
        if (own == NULL && !wanted(c->name, argc, argv))
            continue;
        size_t n = strlen(c->body) + 256;
        char *src = malloc(n);
        if (src == NULL)
            die("malloc");
        snprintf(src, n,
                 "function check() return false end\n"
                 "function migrate()\nlog.info('start')\n%s\n"
                 "fs.write('~/escaped', 'the script ran on')\nreturn true\nend\n",
                 c->body);
        write_file(script, src);
        free(src);
        double over[MAX_REPS] = {0}, off_cpu[MAX_REPS] = {0}, ret_max = 0;
        int in_c = 0;
        bool ok = true;
        for (int k = 0; k < reps; k++) {
            marks m;
            double returned;
            ok = run_once(c, &m, &returned) && ok;
            double deadline = m.start + TIMEOUT_MS / 1000.0;
            over[k] = (m.done - deadline) * 1000;
            off_cpu[k] = ((m.done - m.start) - (m.cpu_done - m.cpu_start)) * 1000;
            if ((returned - deadline) * 1000 > ret_max)
                ret_max = (returned - deadline) * 1000;
            if (m.c > 0 && m.c < deadline && m.after == 0)
                in_c++;
            if (verbose)
                fprintf(stderr,
                        "  run %d: c at %.1f ms, after at %.1f ms, overshoot %.1f ms, "
                        "off CPU %.1f ms\n",
                        k + 1, m.c > 0 ? (m.c - m.start) * 1000 : -1.0,
                        m.after > 0 ? (m.after - m.start) * 1000 : -1.0, over[k],
                        off_cpu[k]);
        }
        double med = median(over, reps), max = over[reps - 1], off = median(off_cpu, reps);
        char inc[16] = "-";
        if (c->one_call)
            snprintf(inc, sizeof inc, "%d/%d", in_c, reps);
        printf("%-44s %6.1f ms %6.1f ms %8.1f ms %6s %5.0f ms%s\n", c->name, med, max, ret_max,
               inc, off, ok ? "" : "  FAILED");
        fflush(stdout);
        if (ok)
            passed++;
        else
            failed++;
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "overshoot: could not remove %s\n", root);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
