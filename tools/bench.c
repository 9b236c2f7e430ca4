/*
 * bench.c - libmigrate against the physical floor (BENCHMARKS.md).
 *
 * Every scenario is timed next to its floor: the work no implementation can
 * avoid (fresh Lua states, fsyncs, readdir, cJSON), measured in the same run
 * on the same file system, so the ratio says what the library adds.
 *
 *   make bench                      full size (2-4 minutes, up to 3 GiB of disk)
 *   BENCH_SCALE=tiny build/bench    seconds; what `make test` runs
 *   BENCH_REPS=n BENCH_DIR=/path    repetitions, where the temp tree goes
 *
 * The last line is "N passed, N failed": a scenario passes when it ran and
 * produced a sane number; whether it met its target is the table's PASS/MISS.
 */
#include "internal.h"

#include <cJSON.h>
#include <yaml.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "median.h"

/* ---- counting lua_States ------------------------------------------------------
 * The library is linked statically, Lua dynamically: this definition wins
 * for the library's calls and forwards to liblua, so the count proves how
 * many states a run created (the "nothing to do" path must create none). */
static unsigned long states_created;

lua_State *lua_newstate(lua_Alloc f, void *ud)
{
    static lua_State *(*real)(lua_Alloc, void *);
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "lua_newstate");
    if (real == NULL)
        return NULL;
    states_created++;
    return real(f, ud);
}

/* ---- helpers ---------------------------------------------------------------- */

/* CPU-bound scenarios are timed in process CPU time (user + system), I/O-
 * bound ones in wall time: on a shared machine the wall time of a CPU-bound
 * run measures the neighbours. BENCH_CLOCK=wall times everything by wall. */
static bool cpu_clock;
static bool wall_only;

static double now(void)
{
    struct timespec t;
    clock_gettime(cpu_clock && !wall_only ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die(path);
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0)
            die(path);
        p += n;
        len -= (size_t)n;
    }
    close(fd);
}


static char root[1024]; /* the bench's temp directory */

static char *at(const char *rel)
{
    static char buf[8][1100];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", root, rel);
    return p;
}

static void rmtree(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "bench: could not remove %s\n", path);
}

/* ---- the no-op migration and its floor ------------------------------------
 * check() is false until migrate() ran in the same state: idempotent for
 * real, so a run applies it, confirms it and records it. */
static const char NOOP[] = "-- a migration that changes nothing\n"
                           "local done = false\n"
                           "function check() return done end\n"
                           "function migrate() done = true return true end\n";

static void call_global(lua_State *L, const char *name)
{
    lua_getglobal(L, name);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "bench: floor script: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    lua_pop(L, 1);
}

/* The Lua work no runner can skip for one script: a fresh state with the
 * sandbox's libraries, its chunk, check, migrate, check. */
static void floor_lua_one(void)
{
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL},
    };
    lua_State *L = luaL_newstate();
    for (const luaL_Reg *lib = libs; lib->func != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    if (luaL_loadbufferx(L, NOOP, sizeof NOOP - 1, "=noop", "t") != LUA_OK ||
        lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "bench: floor script: %s\n", lua_tostring(L, -1));
        exit(2);
    }
    call_global(L, "check");
    call_global(L, "migrate");
    call_global(L, "check");
    lua_close(L);
}

/* temp, write, fsync, close, rename, fsync dir: SPEC §6's durable write. */
static void floor_atomic_write(const char *path, const char *data, size_t len)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.floor-tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        die(tmp);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0)
            die(tmp);
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0)
        die(tmp);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        die(dir);
    close(dfd);
}

/* ---- trees -------------------------------------------------------------------- */

typedef struct tree {
    char dir[1100];
    int count, versions;
} tree;

static void version_name(char *out, size_t len, int v)
{
    snprintf(out, len, "v1.%d.0", v + 1);
}

static void make_tree(tree *t, const char *name, int count, int versions)
{
    snprintf(t->dir, sizeof t->dir, "%s", at(name));
    t->count = count;
    t->versions = versions;
    if (mkdir(t->dir, 0755) != 0)
        die(t->dir);
    int per = count / versions;
    for (int v = 0; v < versions; v++) {
        char vname[64], path[1300];
        version_name(vname, sizeof vname, v);
        snprintf(path, sizeof path, "%s/%s", t->dir, vname);
        if (mkdir(path, 0755) != 0)
            die(path);
        for (int i = 0; i < per; i++) {
            snprintf(path, sizeof path, "%s/%s/%03d_noop.lua", t->dir, vname, i + 1);
            write_file(path, NOOP, sizeof NOOP - 1);
            /* As installed from a package: written a while ago. */
            struct timespec then[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
            if (utimensat(AT_FDCWD, path, then, 0) != 0)
                die(path);
        }
    }
}

static void tree_id(const tree *t, int i, char *out, size_t len)
{
    int per = t->count / t->versions;
    char vname[64];
    version_name(vname, sizeof vname, i / per);
    snprintf(out, len, "%s/%03d_noop", vname, i % per + 1);
}

static void tree_top(const tree *t, char *out, size_t len)
{
    snprintf(out, len, "1.%d.0", t->versions);
}

/* ---- runs ------------------------------------------------------------------------ */

typedef struct marks {
    double t[2];
    int n;
} marks;

/* A script's log.info("mark") is timestamped: the scenarios that time one
 * fs or json call measure exactly that call. */
static int on_event(const migrate_event *ev, void *payload)
{
    marks *m = payload;
    if (ev->kind == MIGRATE_EVENT_LOG && strcmp(ev->message, "mark") == 0 && m->n < 2)
        m->t[m->n++] = now();
    return 0;
}

/* What the last rehearsed run's view held at most (report's figure). */
static size_t last_rehearsal_peak;

static bool run_rehearsed(const char *migrations, const char *state, bool dry, bool rehearse,
                          const char *to, migrate_outcome want, marks *m)
{
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = migrations;
    o.home = root;
    o.state_path = state;
    o.dry_run = dry;
    o.rehearse = rehearse;
    o.memory_limit = (size_t)2 << 30;
    o.on_event = m ? on_event : NULL;
    o.payload = m;
    migrate_report *r = NULL;
    int rc = migrate_run(NULL, to, &o, &r);
    bool ok = rc == MIGRATE_OK && migrate_report_warning_count(r) == 0;
    for (size_t i = 0; ok && i < migrate_report_count(r); i++)
        ok = migrate_report_get(r, i)->outcome == want;
    if (!ok)
        fprintf(stderr, "bench: run of %s: %s (%zu warnings)\n", migrations,
                migrate_report_error(r) ? migrate_report_error(r) : "unexpected outcome",
                migrate_report_warning_count(r));
    last_rehearsal_peak = migrate_report_rehearsal_peak(r);
    migrate_report_free(r);
    return ok;
}

static bool run_library(const char *migrations, const char *state, bool dry, const char *to,
                        migrate_outcome want, marks *m)
{
    return run_rehearsed(migrations, state, dry, false, to, want, m);
}

/* ---- the table ---------------------------------------------------------------------- */

typedef struct row {
    const char *name, *unit, *target_text;
    double value, floor, ratio, target;
    bool ran, met;
    const char *clock; /* set by add_row() */
} row;

static row rows[32];
static int nrows;

static void add_row(row r)
{
    r.clock = r.unit[0] != 's' ? "" : cpu_clock && !wall_only ? "cpu" : "wall";
    r.met = r.ran && isfinite(r.ratio) && r.ratio <= r.target;
    rows[nrows++] = r;
}

static bool sane(double x)
{
    return isfinite(x) && x > 0;
}

/* Times fn and floor alternately, reps times each; medians out. */
typedef bool (*timed_fn)(void *ctx, double *seconds);

static bool measure(timed_fn subject, timed_fn floor_fn, void *ctx, int reps, double *s_med,
                    double *f_med)
{
    double s[64], f[64];
    *s_med = *f_med = NAN;
    if (reps > 64)
        reps = 64;
    for (int i = 0; i < reps; i++) {
        if (!subject(ctx, &s[i]) || !floor_fn(ctx, &f[i]))
            return false;
    }
    *s_med = median(s, reps);
    *f_med = median(f, reps);
    return sane(*s_med) && sane(*f_med);
}

/* ---- durable run -------------------------------------------------------------------- */

typedef struct run_ctx {
    tree *t;
    char state[1200];
    char to[64];
    size_t final_state_size;
    char *filler;
} run_ctx;

/* A real run from scratch (rehearsed or not); notes the state's size. */
static bool real_run(run_ctx *c, bool rehearse, double *sec)
{
    unlink(c->state);
    double t0 = now();
    bool ok = run_rehearsed(c->t->dir, c->state, false, rehearse, NULL, MIGRATE_APPLIED, NULL);
    *sec = now() - t0;
    struct stat st;
    if (ok && stat(c->state, &st) == 0)
        c->final_state_size = (size_t)st.st_size;
    return ok;
}

static bool durable_subject(void *p, double *sec)
{
    return real_run(p, false, sec);
}

/* The state grows by one entry per record: write k has k/N of its final size. */
static bool durable_floor(void *p, double *sec)
{
    run_ctx *c = p;
    size_t n = (size_t)c->t->count;
    char *filler = realloc(c->filler, c->final_state_size + 1); /* its size varies a little */
    if (filler == NULL)
        return false;
    c->filler = filler;
    memset(c->filler, 'x', c->final_state_size);
    char *path = at("floor-state.json");
    double t0 = now();
    for (size_t k = 1; k <= n; k++) {
        floor_lua_one();
        floor_atomic_write(path, c->filler, c->final_state_size * k / n);
    }
    *sec = now() - t0;
    unlink(path);
    return true;
}

/* ---- dry run ---------------------------------------------------------------------- */

static bool dry_subject(void *p, double *sec)
{
    run_ctx *c = p;
    double t0 = now();
    bool ok = run_library(c->t->dir, c->state, true, NULL, MIGRATE_PENDING, NULL);
    *sec = now() - t0;
    return ok;
}

static bool lua_floor(void *p, double *sec)
{
    run_ctx *c = p;
    double t0 = now();
    for (int i = 0; i < c->t->count; i++)
        floor_lua_one();
    *sec = now() - t0;
    return true;
}

/* ---- rehearsal (SPEC §4.6) ----------------------------------------------------------- */

/* A preview: the rehearsal alone (check, migrate, check of each on the view). */
static bool preview_subject(void *p, double *sec)
{
    run_ctx *c = p;
    double t0 = now();
    bool ok = run_rehearsed(c->t->dir, c->state, true, true, NULL, MIGRATE_PENDING, NULL);
    *sec = now() - t0;
    return ok;
}

static bool rehearsed_subject(void *p, double *sec)
{
    return real_run(p, true, sec);
}

/* What a rehearsed run cannot do without: the durable floor, and the
 * rehearsal itself (timed as a preview of the same tree). */
static bool rehearsed_floor(void *p, double *sec)
{
    run_ctx *c = p;
    double durable, rehearsal;
    char saved[sizeof c->state];
    memcpy(saved, c->state, sizeof saved);
    snprintf(c->state, sizeof c->state, "%s", at("absent-state.json"));
    bool ok = preview_subject(c, &rehearsal);
    memcpy(c->state, saved, sizeof saved);
    ok = ok && durable_floor(c, &durable);
    *sec = durable + rehearsal;
    return ok;
}

/* ---- nothing to do ------------------------------------------------------------------ */

/* A state recording every migration of the tree but the last, as SPEC §6
 * describes it; one real run then records the last one, so the state is
 * exactly what the library writes itself. Recording 10,000 one by one
 * would rewrite a growing state 10,000 times. */
static bool prepare_all_recorded(run_ctx *c)
{
    char sha[65], id[128];
    mig_sha256_hex(NOOP, sizeof NOOP - 1, sha);
    cJSON *doc = cJSON_CreateObject();
    cJSON *applied = cJSON_AddArrayToObject(doc, "applied");
    cJSON *details = cJSON_AddObjectToObject(doc, "migrations");
    for (int i = 0; i + 1 < c->t->count; i++) {
        tree_id(c->t, i, id, sizeof id);
        cJSON_AddItemToArray(applied, cJSON_CreateString(id));
        cJSON *d = cJSON_AddObjectToObject(details, id);
        cJSON_AddStringToObject(d, "outcome", "applied");
        cJSON_AddStringToObject(d, "applied_at", "2026-01-01T00:00:00Z");
        cJSON_AddNumberToObject(d, "seconds", 0.0001);
        cJSON_AddStringToObject(d, "sha256", sha);
    }
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (text == NULL)
        return false;
    write_file(c->state, text, strlen(text));
    free(text);
    migrate_options o;
    migrate_options_init(&o, MIGRATE_OPTIONS_VERSION);
    o.migrations_dir = c->t->dir;
    o.home = root;
    o.state_path = c->state;
    migrate_report *r = NULL;
    int rc = migrate_run(NULL, c->to, &o, &r);
    bool ok = rc == MIGRATE_OK && migrate_report_warning_count(r) == 0;
    migrate_report_free(r);
    return ok;
}

static bool nothing_subject(void *p, double *sec)
{
    run_ctx *c = p;
    double t0 = now();
    bool ok = run_library(c->t->dir, c->state, false, c->to, MIGRATE_SKIPPED_STATE, NULL);
    *sec = now() - t0;
    return ok;
}

/* The readdir calls of the tree; with stat_scripts, also one fstatat() of
 * each script, relative to its open directory. */
static void list_dir_floor(const char *dir, int depth, bool stat_scripts)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        die(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (depth == 0 && e->d_name[0] == 'v') {
            char sub[1400];
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            list_dir_floor(sub, 1, stat_scripts);
        } else if (depth == 1 && stat_scripts && e->d_name[0] != '.') {
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, 0) != 0)
                die(e->d_name);
        }
    }
    closedir(d);
}

static bool nothing_floor_with(run_ctx *c, double *sec, bool stat_scripts)
{
    double t0 = now();
    list_dir_floor(c->t->dir, 0, stat_scripts);
    char *text = NULL;
    size_t len = 0;
    if (mig_read_file(c->state, (size_t)1 << 30, &text, &len) != 0)
        return false;
    cJSON *doc = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON_Delete(doc);
    *sec = now() - t0;
    return doc != NULL;
}

static bool nothing_floor(void *p, double *sec)
{
    return nothing_floor_with(p, sec, false);
}

/* SPEC §4.2 wants a warning for every applied script whose content no
 * longer matches its recorded sha256, on every run: nothing can tell
 * without at least looking at each script's metadata, so this floor adds
 * one fstatat() per script (what the library's size+mtime stamps cost
 * when nothing changed; without them it reads and hashes each script). */
static bool nothing_stat_floor(void *p, double *sec)
{
    return nothing_floor_with(p, sec, true);
}

/* ---- one script that times one call ------------------------------------------------- */

typedef struct call_ctx {
    char migrations[1100];
    char state[1200];
    char src[1100], dst[1100];
    size_t bytes;
    char *data;
} call_ctx;

/* A tree of one migration whose migrate() is `body` between two marks. */
static void make_call_tree(call_ctx *c, const char *name, const char *prologue, const char *body)
{
    char path[1300], script[8192];
    snprintf(c->migrations, sizeof c->migrations, "%s", at(name));
    snprintf(c->state, sizeof c->state, "%s/state.json", c->migrations);
    snprintf(path, sizeof path, "%s/v1.0.0", c->migrations);
    if (mkdir(c->migrations, 0755) != 0 || mkdir(path, 0755) != 0)
        die(path);
    snprintf(script, sizeof script,
             "local done = false\n"
             "function check() return done end\n"
             "function migrate()\n"
             "  %s\n"
             "  log.info('mark')\n"
             "  %s\n"
             "  log.info('mark')\n"
             "  done = true\n"
             "  return true\n"
             "end\n",
             prologue, body);
    snprintf(path, sizeof path, "%s/v1.0.0/001_call.lua", c->migrations);
    write_file(path, script, strlen(script));
}

static bool call_subject(void *p, double *sec)
{
    call_ctx *c = p;
    marks m = {{0, 0}, 0};
    unlink(c->state);
    unlink(c->dst);
    bool ok = run_library(c->migrations, c->state, false, NULL, MIGRATE_APPLIED, &m);
    *sec = m.t[1] - m.t[0];
    return ok && m.n == 2;
}

static bool cp_floor(void *p, double *sec)
{
    call_ctx *c = p;
    char dst[1200], cmd[4096];
    snprintf(dst, sizeof dst, "%s.cp", c->dst);
    unlink(dst);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", c->src, dst);
    double t0 = now();
    int rc = system(cmd);
    *sec = now() - t0;
    unlink(dst);
    return rc == 0;
}

static bool cp_sync_floor(void *p, double *sec)
{
    call_ctx *c = p;
    char dst[1200], cmd[4096];
    snprintf(dst, sizeof dst, "%s.cp", c->dst);
    unlink(dst);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && sync '%s'", c->src, dst, dst);
    double t0 = now();
    int rc = system(cmd);
    *sec = now() - t0;
    unlink(dst);
    return rc == 0;
}

static bool write_floor(void *p, double *sec)
{
    call_ctx *c = p;
    char dst[1200];
    snprintf(dst, sizeof dst, "%s.floor", c->dst);
    unlink(dst);
    double t0 = now();
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return false;
    for (size_t off = 0; off < c->bytes;) {
        ssize_t n = write(fd, c->data + off, c->bytes - off);
        if (n < 0)
            return false;
        off += (size_t)n;
    }
    bool ok = fsync(fd) == 0;
    close(fd);
    *sec = now() - t0;
    unlink(dst);
    return ok;
}

static bool atomic_write_floor(void *p, double *sec)
{
    call_ctx *c = p;
    char dst[1200];
    snprintf(dst, sizeof dst, "%s.floor", c->dst);
    double t0 = now();
    floor_atomic_write(dst, c->data, c->bytes);
    *sec = now() - t0;
    unlink(dst);
    return true;
}

static bool json_floor(void *p, double *sec)
{
    call_ctx *c = p;
    double t0 = now();
    cJSON *doc = cJSON_ParseWithLength(c->data, c->bytes);
    char *out = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    bool ok = out != NULL;
    free(out);
    *sec = now() - t0;
    return ok;
}

/* The least a Lua json module can do with cJSON: the floor above plus
 * turning the tree into plain Lua tables (no key order, no checks), which
 * the floor cannot count and no decode can skip. */
static void floor_push_tree(lua_State *L, const cJSON *item)
{
    lua_Integer n = 0;
    luaL_checkstack(L, 4, "bench");
    switch (item->type & 0xFF) {
    case cJSON_NULL: lua_pushlightuserdata(L, NULL); break;
    case cJSON_False: lua_pushboolean(L, 0); break;
    case cJSON_True: lua_pushboolean(L, 1); break;
    case cJSON_Number: lua_pushnumber(L, item->valuedouble); break;
    case cJSON_String: lua_pushstring(L, item->valuestring); break;
    case cJSON_Array:
        lua_createtable(L, cJSON_GetArraySize(item), 0);
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            floor_push_tree(L, c);
            lua_rawseti(L, -2, ++n);
        }
        break;
    default:
        lua_createtable(L, 0, cJSON_GetArraySize(item));
        for (const cJSON *c = item->child; c != NULL; c = c->next) {
            lua_pushstring(L, c->string);
            floor_push_tree(L, c);
            lua_rawset(L, -3);
        }
        break;
    }
}

static bool json_lua_floor(void *p, double *sec)
{
    call_ctx *c = p;
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return false;
    double t0 = now();
    cJSON *doc = cJSON_ParseWithLength(c->data, c->bytes);
    if (doc != NULL)
        floor_push_tree(L, doc);
    char *out = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    bool ok = out != NULL;
    free(out);
    *sec = now() - t0;
    lua_close(L);
    return ok;
}

/* A config as a daemon keeps one: objects of settings, nested a few deep. */
static char *make_config(size_t target, size_t *len)
{
    size_t cap = target + 4096, n = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n, "{\"version\": 3, \"sessions\": [");
    for (int i = 0; n + 600 < target; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "%s{\"id\": \"session-%06d\", \"name\": \"user %d on host-%d\", "
                              "\"port\": %d, \"enabled\": %s, \"ratio\": %.3f, \"tags\": "
                              "[\"alpha\", \"beta\", \"gamma-%d\"], \"limits\": {\"cpu\": %d, "
                              "\"memory\": %d, \"files\": null}, \"path\": \"/srv/data/%d\"}",
                              i ? ", " : "", i, i, i % 97, 1024 + i % 50000,
                              i % 2 ? "true" : "false", (double)(i % 1000) / 7.0, i % 13,
                              i % 8, 256 * (i % 16), i);
    n += (size_t)snprintf(s + n, cap - n, "], \"owner\": \"ops\"}");
    *len = n;
    return s;
}

/* ---- yaml ----------------------------------------------------------------------------- */

/* A config.yml as the daemon keeps one: commented sections, lists of maps,
 * ${VAR} values, block and flow collections, the scalar kinds YAML 1.1
 * resolves; ends with a commented `owner:`, the key the edit scenario sets.
 * Both yaml scenarios read it. */
static char *make_yaml_config(size_t target, size_t *len)
{
    size_t cap = target + 4096, n = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    n += (size_t)snprintf(s + n, cap - n, "# teleclaude configuration\nversion: 3\nsessions:\n");
    for (int i = 0; n + 600 < target; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "  # session %d\n"
                              "  - id: session-%06d\n"
                              "    name: user %d on host-%d\n"
                              "    port: %d\n"
                              "    enabled: %s\n"
                              "    ratio: %.3f\n"
                              "    token: ${TOKEN_%d}\n"
                              "    tags: [alpha, beta, gamma-%d]\n"
                              "    limits:\n"
                              "      cpu: %d\n"
                              "      memory: %d\n"
                              "      files: ~\n"
                              "    path: \"/srv/data/%d\"\n",
                              i, i, i, i % 97, 1024 + i % 50000, i % 2 ? "yes" : "off",
                              (double)(i % 1000) / 7.0, i, i % 13, i % 8, 256 * (i % 16), i);
    n += (size_t)snprintf(s + n, cap - n, "\n# who runs it\nowner: ops\n");
    *len = n;
    return s;
}

/* The floor of any Lua yaml module on libyaml: its event parse, building
 * plain Lua tables (every scalar a string, no resolution, no key order, no
 * anchors). */
static bool yaml_lua_floor(void *p, double *sec)
{
    call_ctx *c = p;
    lua_State *L = luaL_newstate();
    yaml_parser_t parser;
    yaml_event_t ev;
    bool ok = true, done = false;
    /* per open collection: whether it is a mapping, and whether a key waits */
    bool is_map[256], has_key[256];
    int depth = 0;
    lua_Integer items[256];
    if (L == NULL || !yaml_parser_initialize(&parser))
        return false;
    lua_checkstack(L, 600);
    double t0 = now();
    yaml_parser_set_input_string(&parser, (const unsigned char *)c->data, c->bytes);
    while (ok && !done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            ok = false;
            break;
        }
        bool value = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_SCALAR_EVENT:
            lua_pushlstring(L, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            value = true;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            ok = depth < 255;
            lua_newtable(L);
            is_map[depth] = ev.type == YAML_MAPPING_START_EVENT;
            has_key[depth] = false;
            items[depth++] = 0;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            value = true;
            break;
        default: break;
        }
        if (value && depth > 0) {
            int d = depth - 1;
            if (!is_map[d]) {
                lua_rawseti(L, -2, ++items[d]);
            } else if (!has_key[d]) {
                has_key[d] = true;
            } else {
                lua_rawset(L, -3);
                has_key[d] = false;
            }
        }
        yaml_event_delete(&ev);
    }
    *sec = now() - t0;
    yaml_parser_delete(&parser);
    lua_close(L);
    return ok;
}

/* ---- memory: a fresh process, so the peak is this run's own ----------------------------- */

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

static int rss_child(const char *migrations, const char *state)
{
    long base = status_kib("VmRSS");
    /* Resets VmHWM to the current RSS: the peak is then the run's. */
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1)
            base = -1;
        close(fd);
    }
    snprintf(root, sizeof root, "%s", migrations);
    *strrchr(root, '/') = '\0';
    bool ok = run_library(migrations, state, true, NULL, MIGRATE_PENDING, NULL);
    long peak = status_kib("VmHWM");
    if (!ok || base < 0 || peak < 0)
        return 1;
    printf("%ld\n", peak - base);
    return 0;
}

static double measure_rss(tree *t)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/proc/%d/exe --rss-child '%s' '%s'", (int)getpid(), t->dir,
             at("absent-state.json"));
    FILE *p = popen(cmd, "r");
    long kib = -1;
    if (p == NULL || fscanf(p, "%ld", &kib) != 1)
        kib = -1;
    if (p != NULL && pclose(p) != 0)
        kib = -1;
    return kib < 0 ? NAN : (double)kib / 1024.0;
}

/* ---- main --------------------------------------------------------------------------- */

/* BENCH_ONLY=dry,nothing runs only those scenarios. */
static bool want(const char *scenario)
{
    const char *only = getenv("BENCH_ONLY");
    return only == NULL || strstr(only, scenario) != NULL;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v != NULL && atoi(v) > 0 ? atoi(v) : dflt;
}

/* ---- scenarios ------------------------------------------------------------------------ */

typedef struct sizes {
    bool tiny;
    int reps, reps_slow;
    size_t copy_bytes, write_bytes, json_bytes, edit_bytes;
    tree small, big; /* 1,000 and 10,000 no-op migrations in 100 versions */
} sizes;

static void scenario_durable(sizes *z)
{
    double s, f;
    cpu_clock = false;
    run_ctx dur = {.t = &z->small};
    snprintf(dur.state, sizeof dur.state, "%s", at("durable-state.json"));
    bool ok = measure(durable_subject, durable_floor, &dur, z->reps, &s, &f);
    add_row((row){"durable run, from scratch", "s", "<= 1.10", s, f, s / f, 1.10, ok, 0, NULL});
    free(dur.filler);
}

static void scenario_dry(sizes *z)
{
    double s, f;
    cpu_clock = true;
    run_ctx dry = {.t = &z->big};
    snprintf(dry.state, sizeof dry.state, "%s", at("absent-state.json"));
    bool ok = measure(dry_subject, lua_floor, &dry, z->reps, &s, &f);
    add_row((row){"dry run", "s", "<= 1.5", s, f, s / f, 1.5, ok, 0, NULL});

    /* Big and small timed alternately, so both see the same machine load. */
    run_ctx few = {.t = &z->small};
    snprintf(few.state, sizeof few.state, "%s", at("absent-state.json"));
    double vb[64], vs[64];
    int reps = z->reps > 64 ? 64 : z->reps;
    for (int i = 0; i < reps && ok; i++)
        ok = dry_subject(&dry, &vb[i]) && dry_subject(&few, &vs[i]);
    s = ok ? median(vb, reps) : NAN;
    f = ok ? median(vs, reps) : NAN;
    add_row((row){"scaling: dry 10x / dry 1x", "s", "<= 10.5", s, f, s / f, 10.5,
                  ok && sane(s) && sane(f), 0, NULL});
}

static void scenario_nothing(sizes *z)
{
    double s = NAN, f = NAN;
    cpu_clock = true;
    run_ctx none = {.t = &z->big};
    snprintf(none.state, sizeof none.state, "%s", at("all-recorded-state.json"));
    tree_top(&z->big, none.to, sizeof none.to);
    bool ok = prepare_all_recorded(&none);
    unsigned long before = states_created;
    ok = ok && measure(nothing_subject, nothing_floor, &none, z->reps, &s, &f);
    unsigned long made = states_created - before;
    add_row((row){"nothing to do", "s", "<= 2", s, f, s / f, 2.0, ok, 0, NULL});
    add_row((row){"nothing to do: lua_States created", "", "== 0", (double)made, NAN,
                  (double)made, 0.0, ok, 0, NULL});
    if (ok)
        ok = measure(nothing_subject, nothing_stat_floor, &none, z->reps, &s, &f);
    add_row((row){"nothing to do, floor + a stat a script", "s", "<= 2", s, f, s / f, 2.0, ok,
                  0, NULL});
}

static void scenario_rehearse(sizes *z)
{
    double s, f;
    cpu_clock = true;
    run_ctx pre = {.t = &z->small};
    snprintf(pre.state, sizeof pre.state, "%s", at("absent-state.json"));
    bool ok = measure(preview_subject, dry_subject, &pre, z->reps, &s, &f);
    add_row((row){"rehearsal (preview) / dry run", "s", "<= 1.3", s, f, s / f, 1.3, ok, 0, NULL});

    cpu_clock = false;
    run_ctx real = {.t = &z->small};
    snprintf(real.state, sizeof real.state, "%s", at("rehearsed-state.json"));
    /* A first run sizes the state the floor writes. */
    double first;
    ok = rehearsed_subject(&real, &first) &&
         measure(rehearsed_subject, rehearsed_floor, &real, z->reps, &s, &f);
    add_row((row){"run with rehearse / durable + rehearsal", "s", "<= 1.15", s, f, s / f, 1.15,
                  ok, 0, NULL});
    free(real.filler);

    /* A preview of a 1 GiB fs.copy: the copy is a reference in the view.
     * The source is sparse: the view never reads it. */
    call_ctx cp = {0};
    snprintf(cp.src, sizeof cp.src, "%s", at("rehearse-src.bin"));
    int fd = open(cp.src, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)z->copy_bytes) != 0)
        die(cp.src);
    close(fd);
    make_call_tree(&cp, "rehearse-copy", "",
                   "fs.copy(migration.home .. '/rehearse-src.bin', migration.home .. "
                   "'/rehearse-dst.bin')");
    ok = run_rehearsed(cp.migrations, cp.state, true, true, NULL, MIGRATE_PENDING, NULL);
    double mib = (double)last_rehearsal_peak / (1 << 20);
    add_row((row){z->tiny ? "preview of a 4 MiB fs.copy: view" : "preview of a 1 GiB fs.copy: view",
                  "MiB", "< 1", mib, NAN, mib, 1.0, ok && isfinite(mib), 0, NULL});
    unlink(cp.src);
}

static void scenario_memory(sizes *z)
{
    cpu_clock = false;
    double mib = measure_rss(&z->big);
    add_row((row){"memory: dry run peak RSS - baseline", "MiB", "<= 16", mib, NAN, mib, 16.0,
                  sane(mib), 0, NULL});
}

static void scenario_json(sizes *z)
{
    double s = NAN, f = NAN;
    cpu_clock = true;
    call_ctx js = {0};
    js.data = make_config(z->json_bytes, &js.bytes);
    make_call_tree(&js, "json", "local text = fs.read(migration.home .. '/config.json')",
                   "local out = json.encode(json.decode(text))");
    bool ok = js.data != NULL;
    if (ok) {
        write_file(at("config.json"), js.data, js.bytes);
        ok = measure(call_subject, json_floor, &js, z->reps, &s, &f);
    }
    add_row((row){"json decode+encode", "s", "<= 1.5", s, f, s / f, 1.5, ok, 0, NULL});
    if (ok)
        ok = measure(call_subject, json_lua_floor, &js, z->reps, &s, &f);
    add_row((row){"json, floor + Lua tables", "s", "<= 1.5", s, f, s / f, 1.5, ok, 0, NULL});
    free(js.data);
    unlink(at("config.json"));
}

/* ---- yaml.edit: one edit on a 1 MB config ------------------------------------------------
 * An edit must cost about one re-parse, not work quadratic in the file:
 * doc:set + doc:text() (the document already open) against one
 * yaml.decode of the same text, in one Lua state without the sandbox. */

typedef struct yaml_edit_ctx {
    lua_State *L;
    const char *data;
    size_t bytes;
} yaml_edit_ctx;

static bool lua_timed(lua_State *L, const char *code, const char *text, size_t len, double *sec)
{
    if (luaL_loadstring(L, code) != LUA_OK)
        return false;
    lua_pushlstring(L, text, len);
    double t0 = now();
    bool ok = lua_pcall(L, 1, 0, 0) == LUA_OK;
    *sec = now() - t0;
    if (!ok) {
        fprintf(stderr, "bench: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_gc(L, LUA_GCCOLLECT);
    return ok;
}

static bool yaml_edit_subject(void *p, double *sec)
{
    yaml_edit_ctx *c = p;
    /* the document opens outside the timed part: a second chunk times the
     * edit alone */
    lua_pushlstring(c->L, c->data, c->bytes);
    lua_setglobal(c->L, "bench_text");
    if (luaL_dostring(c->L, "bench_doc = yaml.edit(bench_text)") != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(c->L, -1));
        return false;
    }
    return lua_timed(c->L,
                     "bench_doc:set('owner', 'platform team')\n"
                     "assert(#bench_doc:text() > 0)\n"
                     "bench_doc = nil",
                     "", 0, sec);
}

static bool yaml_decode_floor(void *p, double *sec)
{
    yaml_edit_ctx *c = p;
    return lua_timed(c->L, "local v = yaml.decode(...)", c->data, c->bytes, sec);
}

static void scenario_yaml_edit(sizes *z)
{
    double s = NAN, f = NAN;
    cpu_clock = true;
    yaml_edit_ctx c = {0};
    c.data = make_yaml_config(z->tiny ? (size_t)100 << 10 : (size_t)1 << 20, &c.bytes);
    c.L = luaL_newstate();
    bool ok = c.data != NULL && c.L != NULL;
    if (ok) {
        luaL_openlibs(c.L);
        mig_open_json(c.L);
        lua_getfield(c.L, -1, "decode");
        mig_open_yaml(c.L, -1);
        lua_setglobal(c.L, "yaml");
        lua_pop(c.L, 1);
        lua_setglobal(c.L, "json");
        ok = measure(yaml_edit_subject, yaml_decode_floor, &c, z->reps, &s, &f);
    }
    add_row((row){"yaml doc:set+text vs decode, 1 MB", "s", "<= 3", s, f, s / f, 3, ok, 0, NULL});
    if (c.L != NULL)
        lua_close(c.L);
    free((char *)c.data);
}

/* A document edit against one json.decode of the same file, both timed
 * inside migrate(): an edit should cost about one re-parse (the check
 * after it decodes the new text once), never work quadratic in the file. */
typedef struct edit_ctx {
    call_ctx edit, decode;
} edit_ctx;

static bool edit_subject(void *p, double *sec)
{
    return call_subject(&((edit_ctx *)p)->edit, sec);
}

static bool edit_floor(void *p, double *sec)
{
    return call_subject(&((edit_ctx *)p)->decode, sec);
}

static void scenario_edit(sizes *z)
{
    double s = NAN, f = NAN;
    cpu_clock = true;
    edit_ctx e = {0};
    e.edit.data = make_config(z->edit_bytes, &e.edit.bytes);
    /* the document is opened (and doc.lua loaded) before the first mark */
    make_call_tree(&e.edit, "edit",
                   "local d = json.edit(fs.read(migration.home .. '/edit.json'))",
                   "d:set({'sessions', 500, 'limits', 'cpu'}, 99); local out = d:text()");
    make_call_tree(&e.decode, "edit-floor", "local text = fs.read(migration.home .. '/edit.json')",
                   "local v = json.decode(text)");
    bool ok = e.edit.data != NULL;
    if (ok) {
        write_file(at("edit.json"), e.edit.data, e.edit.bytes);
        ok = measure(edit_subject, edit_floor, &e, z->reps, &s, &f);
    }
    add_row((row){"json doc:set + text, 1 MB", "s", "<= 3", s, f, s / f, 3.0, ok, 0, NULL});
    free(e.edit.data);
    unlink(at("edit.json"));
}

static void scenario_yaml(sizes *z)
{
    double s = NAN, f = NAN;
    cpu_clock = true;
    call_ctx ys = {0};
    ys.data = make_yaml_config(z->json_bytes, &ys.bytes);
    make_call_tree(&ys, "yaml", "local text = fs.read(migration.home .. '/config.yml')",
                   "local value = yaml.decode(text)");
    bool ok = ys.data != NULL;
    if (ok) {
        write_file(at("config.yml"), ys.data, ys.bytes);
        ok = measure(call_subject, yaml_lua_floor, &ys, z->reps, &s, &f);
    }
    add_row((row){"yaml.decode, libyaml events + Lua tables", "s", "<= 1.5", s, f, s / f, 1.5, ok,
                  0, NULL});
    free(ys.data);
    unlink(at("config.yml"));
}

static void scenario_write(sizes *z)
{
    double s = NAN, f = NAN;
    cpu_clock = false;
    call_ctx wr = {0};
    wr.bytes = z->write_bytes;
    wr.data = malloc(wr.bytes);
    snprintf(wr.dst, sizeof wr.dst, "%s", at("written.bin"));
    char prologue[256];
    snprintf(prologue, sizeof prologue, "local data = string.rep('x', %zu)", wr.bytes);
    make_call_tree(&wr, "write", prologue, "fs.write(migration.home .. '/written.bin', data)");
    bool ok = wr.data != NULL;
    if (ok) {
        memset(wr.data, 'x', wr.bytes);
        ok = measure(call_subject, write_floor, &wr, z->reps, &s, &f);
    }
    add_row((row){"fs.write vs write+fsync", "s", "<= 1.1", s, f, s / f, 1.1, ok, 0, NULL});
    /* fs.write is atomic: temp, write, fsync, rename, fsync dir (SPEC §5). */
    double v[64];
    int reps = z->reps > 64 ? 64 : z->reps;
    for (int i = 0; i < reps && ok; i++)
        ok = atomic_write_floor(&wr, &v[i]);
    f = ok ? median(v, reps) : NAN;
    add_row((row){"fs.write vs atomic write floor", "s", "<= 1.1", s, f, s / f, 1.1,
                  ok && sane(f), 0, NULL});
    free(wr.data);
    unlink(wr.dst);
}

static void make_copy_source(const char *path, size_t bytes)
{
    size_t chunk_len = (size_t)1 << 20;
    char *chunk = malloc(chunk_len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (chunk == NULL || fd < 0)
        die(path);
    for (size_t i = 0; i < chunk_len; i++)
        chunk[i] = (char)(i * 2654435761u >> 13);
    for (size_t done = 0; done < bytes; done += chunk_len)
        if (write(fd, chunk, chunk_len) != (ssize_t)chunk_len)
            die(path);
    if (fsync(fd) != 0)
        die(path);
    close(fd);
    free(chunk);
}

/* fs.copy is durable (it fsyncs the copy), cp is not: both are reported,
 * the second floor (cp, then sync of the copy) being the like-for-like one. */
static void scenario_copy(sizes *z)
{
    double s, f;
    cpu_clock = false;
    call_ctx cp = {0};
    snprintf(cp.src, sizeof cp.src, "%s", at("copy-src.bin"));
    snprintf(cp.dst, sizeof cp.dst, "%s", at("copy-dst.bin"));
    make_copy_source(cp.src, z->copy_bytes);
    make_call_tree(&cp, "copy", "",
                   "fs.copy(migration.home .. '/copy-src.bin', migration.home .. "
                   "'/copy-dst.bin')");
    bool ok = measure(call_subject, cp_floor, &cp, z->reps_slow, &s, &f);
    add_row((row){"fs.copy vs cp (time)", "s", "<= 1.11", s, f, s / f, 1.0 / 0.9, ok, 0, NULL});
    double v[64];
    int reps = z->reps_slow > 64 ? 64 : z->reps_slow;
    for (int i = 0; i < reps && ok; i++)
        ok = cp_sync_floor(&cp, &v[i]);
    f = ok ? median(v, reps) : NAN;
    add_row((row){"fs.copy vs cp + sync (time)", "s", "<= 1.11", s, f, s / f, 1.0 / 0.9,
                  ok && sane(f), 0, NULL});
    unlink(cp.src);
    unlink(cp.dst);
}

static int print_table(void)
{
    printf("\n%-38s %5s %10s %10s %7s %8s  %s\n", "scenario", "clock", "median", "floor",
           "ratio", "target", "");
    int passed = 0, failed = 0;
    for (int i = 0; i < nrows; i++) {
        row *r = &rows[i];
        char value[32], fl[32];
        snprintf(value, sizeof value, "%.4g %s", r->value, r->unit);
        if (isnan(r->floor))
            snprintf(fl, sizeof fl, "-");
        else
            snprintf(fl, sizeof fl, "%.4g %s", r->floor, r->unit);
        printf("%-38s %5s %10s %10s %7.3f %8s  %s\n", r->name, r->clock, value, fl, r->ratio,
               r->target_text, !r->ran ? "DID NOT RUN" : r->met ? "PASS" : "MISS");
        if (r->ran)
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--rss-child") == 0)
        return rss_child(argv[2], argv[3]);
    const char *scale = getenv("BENCH_SCALE");
    wall_only = getenv("BENCH_CLOCK") != NULL && strcmp(getenv("BENCH_CLOCK"), "wall") == 0;
    sizes z = {.tiny = scale != NULL && strcmp(scale, "tiny") == 0};
    z.copy_bytes = z.tiny ? (size_t)4 << 20 : (size_t)1 << 30;
    z.write_bytes = z.tiny ? (size_t)4 << 20 : (size_t)100 << 20;
    z.json_bytes = z.tiny ? (size_t)200 << 10 : (size_t)10 << 20;
    z.edit_bytes = z.tiny ? (size_t)200 << 10 : (size_t)1 << 20;
    z.reps = env_int("BENCH_REPS", z.tiny ? 3 : 5);
    z.reps_slow = env_int("BENCH_REPS", 3);
    const char *base = getenv("BENCH_DIR") ? getenv("BENCH_DIR")
                       : getenv("TMPDIR")  ? getenv("TMPDIR")
                                           : "/tmp";
    snprintf(root, sizeof root, "%s/migrate-bench-XXXXXX", base);
    if (mkdtemp(root) == NULL)
        die(root);
    printf("libmigrate %s bench, scale %s, in %s\n", migrate_library_version(),
           z.tiny ? "tiny" : "full", root);
    fflush(stdout);
    int versions = z.tiny ? 4 : 100;
    make_tree(&z.small, "tree-small", z.tiny ? 20 : 1000, versions);
    make_tree(&z.big, "tree-big", z.tiny ? 200 : 10000, versions);

    static const struct {
        const char *name;
        void (*run)(sizes *);
    } scenarios[] = {
        {"durable", scenario_durable}, {"dry", scenario_dry},   {"nothing", scenario_nothing},
        {"memory", scenario_memory},   {"json", scenario_json}, {"yaml", scenario_yaml},
        {"edit", scenario_edit},       {"yaml_edit", scenario_yaml_edit},
        {"write", scenario_write},     {"copy", scenario_copy},
        {"rehearse", scenario_rehearse},
    };
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (!want(scenarios[i].name))
            continue;
        scenarios[i].run(&z);
        fprintf(stderr, "bench: %s done\n", scenarios[i].name);
    }
    rmtree(root);
    return print_table() ? 1 : 0;
}
