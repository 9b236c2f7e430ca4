/* soak.c - the library as a daemon uses it: thousands of runs in one
 * process, most of them going wrong in some way.
 *
 * The runs cycle through: a tree applied from scratch, the same run again
 * (everything skipped by the state), a check() that is already true, a
 * migrate() that raises, a script that loops until its timeout, one that
 * allocates until its memory limit, one that does not compile, a dry run,
 * and one that logs and round-trips JSON heavily. After a warm-up, resident
 * memory (VmRSS) and open descriptors are sampled; at the end RSS may have
 * grown by at most 8 MiB and the descriptor count must be the same.
 *
 * usage: soak [--full] [--runs N]   (600 runs; --full or REL_FULL=1: 10000) */
#include "rel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 200
#define MAX_RSS_GROWTH_KIB (8 * 1024)

typedef struct script {
    const char *rel;
    const char *lua;
} script;

static const script TREE[] = {
    {"v1.0.0/001_apply.lua",
     "function check() return fs.exists('~/applied') end\n"
     "function migrate() fs.write('~/applied', 'x') return true end\n"},
    {"v1.0.0/002_already.lua",
     "function check() return true end\n"
     "function migrate() error('never called') end\n"},
    {"v1.0.0/003_json.lua",
     "function check() return fs.exists('~/conf.json') and fs.read_json('~/conf.json').v == 2 end\n"
     "function migrate()\n"
     "  local c = fs.exists('~/conf.json') and fs.read_json('~/conf.json') or {}\n"
     "  c.v = 2 c.list = json.array({}) c.name = 'soak'\n"
     "  fs.write_json('~/conf.json', c)\n"
     "  return true\n"
     "end\n"},
    {"v1.1.0/001_raises.lua",
     "function check() return false end\n"
     "function migrate() error('this migration always fails') end\n"},
    {"v1.2.0/001_loops.lua",
     "function check() return false end\n"
     "function migrate() while true do end end\n"},
    {"v1.3.0/001_allocates.lua",
     "function check() return false end\n"
     "function migrate() local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end end\n"},
    {"v1.4.0/001_broken.lua", "function check() return false end\nfunction migrate( return true end\n"},
    {"v1.5.0/001_chatty.lua",
     "function check() return false end\n"
     "function migrate()\n"
     "  for i = 1, 50 do log.info('line ' .. i) end\n"
     "  local t = json.decode(json.encode({a = {1, 2, 3}, b = json.null, c = 'x'}))\n"
     "  return t.a[3] == 3 and false, 'chatty: stops here on purpose'\n"
     "end\n"},
};

typedef struct soak_run {
    const char *from, *to;
    bool reset, dry;
    unsigned timeout_ms;
    int expect;
} soak_run;

static const soak_run CYCLE[] = {
    {NULL, "1.0.0", true, false, 2000, MIGRATE_OK},   /* applied + skipped by check */
    {NULL, "1.0.0", false, false, 2000, MIGRATE_OK},  /* all skipped by the state */
    {"1.0.0", "1.1.0", false, false, 2000, MIGRATE_EFAILED},
    {"1.1.0", "1.2.0", false, false, 5, MIGRATE_EFAILED},
    {"1.2.0", "1.3.0", false, false, 2000, MIGRATE_EFAILED},
    {"1.3.0", "1.4.0", false, false, 2000, MIGRATE_EMANIFEST},
    {NULL, "1.0.0", true, true, 2000, MIGRATE_OK},
    {"1.4.0", "1.5.0", false, false, 2000, MIGRATE_EFAILED},
};
#define NCYCLE (sizeof CYCLE / sizeof CYCLE[0])

static int events;
static int on_event(const migrate_event *ev, void *payload)
{
    (void)ev;
    (void)payload;
    events++;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long runs = rel_full(argc, argv) ? 10000 : 600;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--runs") == 0)
            runs = atol(argv[i + 1]);
    char *root = rel_tmpdir("soak");
    char *migrations = rel_fmt("%s/migrations", root), *home = rel_fmt("%s/home", root);
    for (size_t i = 0; i < sizeof TREE / sizeof TREE[0]; i++) {
        char *path = rel_fmt("%s/%s", migrations, TREE[i].rel);
        rel_write(path, TREE[i].lua);
        free(path);
    }
    char *keep = rel_fmt("%s/keep", home), *state = rel_fmt("%s/.teleclaude/migration_state.json", home);
    char *applied = rel_fmt("%s/applied", home), *conf = rel_fmt("%s/conf.json", home);
    rel_write(keep, "");
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = migrations;
    o.home = home;
    o.memory_limit = 8u << 20;
    o.on_event = on_event;
    long rss0 = 0, peak = 0;
    int fds0 = 0, unexpected = 0;
    long outcomes[MIGRATE_NOT_RUN + 1] = {0};
    double t0 = now();
    for (long i = 0; i < runs; i++) {
        if (i == WARMUP || (runs <= WARMUP && i == 0)) {
            rss0 = rel_rss_kib();
            fds0 = rel_count_fds();
        }
        const soak_run *r = &CYCLE[i % NCYCLE];
        if (r->reset) {
            unlink(state);
            unlink(applied);
            unlink(conf);
        }
        o.dry_run = r->dry;
        o.timeout_ms = r->timeout_ms;
        migrate_report *report = NULL;
        int rc = migrate_run(r->from, r->to, &o, &report);
        if (rc != r->expect && unexpected++ < 5)
            printf("run %ld (%s..%s): returned %d, expected %d: %s\n", i, r->from ? r->from : "-",
                   r->to, rc, r->expect, migrate_report_error(report));
        for (size_t k = 0; k < migrate_report_count(report); k++)
            outcomes[migrate_report_get(report, k)->outcome]++;
        char *json = migrate_report_json(report);
        free(json);
        migrate_report_free(report);
        long rss = rel_rss_kib();
        peak = rss > peak ? rss : peak;
        /* Growth that levels off is the allocator settling; a leak keeps on. */
        if ((i + 1) % (runs >= 5000 ? 2500 : 250) == 0)
            printf("soak: after %ld runs VmRSS %ld KiB, %d descriptors\n", i + 1, rss,
                   rel_count_fds());
    }
    double seconds = now() - t0;
    long rss1 = rel_rss_kib();
    int fds1 = rel_count_fds();
    REL_CHECK(unexpected == 0, "%d runs returned something unexpected", unexpected);
    rel_case();
    printf("soak: %ld runs in %.1f s (%.2f ms each), %d events\n", runs, seconds,
           seconds * 1000 / (double)runs, events);
    printf("soak: outcomes applied %ld, skipped_state %ld, skipped_check %ld, pending %ld, "
           "failed %ld, not_run %ld\n",
           outcomes[MIGRATE_APPLIED], outcomes[MIGRATE_SKIPPED_STATE],
           outcomes[MIGRATE_SKIPPED_CHECK], outcomes[MIGRATE_PENDING], outcomes[MIGRATE_FAILED],
           outcomes[MIGRATE_NOT_RUN]);
    printf("soak: VmRSS %ld KiB after %d warm-up runs, %ld KiB at the end (peak %ld), growth %ld KiB\n",
           rss0, WARMUP, rss1, peak, rss1 - rss0);
    printf("soak: open descriptors %d after warm-up, %d at the end\n", fds0, fds1);
    REL_CHECK(rss1 - rss0 <= MAX_RSS_GROWTH_KIB, "RSS grew by %ld KiB", rss1 - rss0);
    rel_case();
    REL_CHECK(fds1 == fds0, "descriptors: %d, then %d", fds0, fds1);
    rel_case();
    REL_CHECK(outcomes[MIGRATE_APPLIED] > 0 && outcomes[MIGRATE_SKIPPED_STATE] > 0 &&
                  outcomes[MIGRATE_SKIPPED_CHECK] > 0 && outcomes[MIGRATE_FAILED] > 0,
              "the runs did not cover every outcome");
    rel_case();
    rel_rmtree(root);
    free(root);
    free(migrations);
    free(home);
    free(keep);
    free(state);
    free(applied);
    free(conf);
    return rel_summary();
}
