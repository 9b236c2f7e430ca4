#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void (*tu_seam_hook)(const char *point);

void migrate_test_seam(const char *point);
void migrate_test_seam(const char *point)
{
    if (tu_seam_hook != NULL)
        tu_seam_hook(point);
}

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    char *p = tu_path(base, "libmigrate-test-XXXXXX");
    assert_non_null(mkdtemp(p));
    return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        chmod(path, 0700); /* tests may leave read-only dirs behind */
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void tu_rmtree(const char *path)
{
    /* Make every directory writable first, so a test that chmod'ed one
     * 0500 does not leave garbage behind. */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null", path);
    if (system(cmd) != 0) { /* nothing to do: nftw reports what remains */
    }
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

char *tu_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void mkparents(char *path)
{
    for (char *s = strchr(path + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *s = '/';
    }
}

void tu_write(const char *dir, const char *rel, const char *content)
{
    char *p = tu_path(dir, rel);
    mkparents(p);
    FILE *f = fopen(p, "wb");
    if (f == NULL)
        fail_msg("open %s: %s", p, strerror(errno));
    size_t n = strlen(content);
    assert_int_equal(fwrite(content, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(p);
}

char *tu_read(const char *dir, const char *rel)
{
    char *p = rel != NULL ? tu_path(dir, rel) : strdup(dir);
    FILE *f = fopen(p, "rb");
    free(p);
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

bool tu_exists(const char *dir, const char *rel)
{
    char *p = rel != NULL ? tu_path(dir, rel) : strdup(dir);
    struct stat st;
    bool ok = lstat(p, &st) == 0;
    free(p);
    return ok;
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int tu_count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp-") != NULL)
            n++;
    closedir(d);
    return n;
}

int tu_count_fds(void)
{
    int n = tu_count_entries("/proc/self/fd");
    return n - 1; /* the one opendir itself holds */
}

void tu_world_init(tu_world *w)
{
    memset(w, 0, sizeof *w);
    w->root = tu_tmpdir();
    w->migrations = tu_path(w->root, "migrations");
    w->home = tu_path(w->root, "home");
    w->state_path = tu_path(w->home, ".teleclaude/migration_state.json");
    assert_int_equal(mkdir(w->migrations, 0755), 0);
    assert_int_equal(mkdir(w->home, 0755), 0);
    migrate_options_init(&w->opts, MIGRATE_OPTIONS_VERSION);
    w->opts.migrations_dir = w->migrations;
    w->opts.home = w->home;
    w->opts.timeout_ms = 2000;
    w->opts.memory_limit = 64u << 20;
}

void tu_world_free(tu_world *w)
{
    tu_rmtree(w->root);
    free(w->root);
    free(w->migrations);
    free(w->home);
    free(w->state_path);
}

int tu_world_setup(void **state)
{
    tu_world *w = malloc(sizeof *w);
    assert_non_null(w);
    tu_world_init(w);
    *state = w;
    return 0;
}

int tu_world_teardown(void **state)
{
    tu_world_free(*state);
    free(*state);
    return 0;
}

void tu_script(tu_world *w, const char *rel, const char *lua)
{
    tu_write(w->migrations, rel, lua);
}

void tu_logging_script(tu_world *w, const char *rel)
{
    tu_script(w, rel,
              "local function ran()\n"
              "  return fs.exists('~/ran.log') and fs.read('~/ran.log') or ''\n"
              "end\n"
              "function check()\n"
              "  return ran():find(migration.id .. '\\n', 1, true) ~= nil\n"
              "end\n"
              "function migrate()\n"
              "  fs.write('~/ran.log', ran() .. migration.id .. '\\n')\n"
              "  return true\n"
              "end\n");
}

char *tu_ran(tu_world *w)
{
    char *s = tu_read(w->home, "ran.log");
    return s != NULL ? s : strdup("");
}

int tu_run(tu_world *w, const char *from, const char *to, migrate_report **out)
{
    return migrate_run(from, to, &w->opts, out);
}

