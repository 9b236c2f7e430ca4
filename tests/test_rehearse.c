/* test_rehearse.c - opts.rehearse (SPEC §4.6): the preview writes nothing
 * and reports every change; a real run with rehearse leaves the tree a run
 * without it leaves; a rehearsal that fails, runs out of view memory or is
 * cancelled leaves the disk untouched to the byte (and to the mtime), also
 * the state file and its lock. */
#include "internal.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the whole tree, as one string ------------------------------------------- */

typedef struct digest {
    char *text;
    size_t len, cap;
} digest;

static void add(digest *d, const char *s)
{
    size_t n = strlen(s);
    if (d->len + n + 1 > d->cap) {
        d->cap = (d->len + n + 1) * 2;
        d->text = realloc(d->text, d->cap);
        assert_non_null(d->text);
    }
    memcpy(d->text + d->len, s, n + 1);
    d->len += n;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry under dir: its path, type, mode, and for a file its sha256
 * and mtime (a rewrite with the same bytes still shows), for a link its
 * target. */
static void walk(digest *d, const char *dir, const char *rel)
{
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    char *names[512];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dp)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && n < 512)
            names[n++] = strdup(e->d_name);
    closedir(dp);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char *p = tu_path(dir, names[i]), *r = tu_path(rel, names[i]);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        char line[PATH_MAX * 2 + 200];
        if (S_ISDIR(st.st_mode)) {
            snprintf(line, sizeof line, "%s dir %o\n", r, (unsigned)(st.st_mode & 07777));
            add(d, line);
            walk(d, p, r);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t k = readlink(p, target, sizeof target - 1);
            assert_true(k >= 0);
            target[k] = '\0';
            snprintf(line, sizeof line, "%s link %s\n", r, target);
            add(d, line);
        } else {
            char *content = tu_read(dir, names[i]);
            assert_non_null(content);
            char hex[65];
            mig_sha256_hex(content, (size_t)st.st_size, hex);
            free(content);
            snprintf(line, sizeof line, "%s file %o %s %lld.%09ld\n", r,
                     (unsigned)(st.st_mode & 07777), hex, (long long)st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec);
            add(d, line);
        }
        free(p);
        free(r);
        free(names[i]);
    }
}

static char *tree(const char *dir)
{
    digest d = {NULL, 0, 0};
    add(&d, "");
    walk(&d, dir, ".");
    return d.text;
}

static void assert_tree_is(const char *dir, const char *want)
{
    char *now = tree(dir);
    assert_string_equal(now, want);
    free(now);
}

/* ---- migrations ------------------------------------------------------------ */

static const char config[] =
    "# the daemon's config, hand-edited\r\n"
    "name: café\r\n"
    "old_key: 1   # keep this comment\r\n"
    "other: 2\r\n";

static const char rename_key[] =
    "local P = '~/.teleclaude/config.yml'\n"
    "function check() return not fs.read(P):find('old_key', 1, true) end\n"
    "function migrate()\n"
    "  fs.write(P, (fs.read(P):gsub('old_key', 'new_key')))\n"
    "  return true\n"
    "end\n";

static const char make_things[] =
    "function check() return fs.exists('~/data/moved/x.txt') end\n"
    "function migrate()\n"
    "  fs.mkdir('~/data/sub')\n"
    "  fs.write('~/data/sub/x.txt', 'hello\\n', '0600')\n"
    "  fs.copy('~/.teleclaude/config.yml', '~/data/config.bak')\n"
    "  fs.rename('~/data/sub', '~/data/moved')\n"
    "  fs.symlink('moved/x.txt', '~/data/link')\n"
    "  fs.chmod('~/data/config.bak', '0640')\n"
    "  fs.remove('~/old.txt')\n"
    "  assert(fs.read('~/data/link') == 'hello\\n')\n"
    "  return true\n"
    "end\n";

static const char fails_late[] =
    "function check() return false end\n"
    "function migrate()\n"
    "  local cfg = fs.read('~/.teleclaude/config.yml')\n"
    "  if not cfg:find('expected_key', 1, true) then\n"
    "    error('the config has no expected_key')\n"
    "  end\n"
    "  return true\n"
    "end\n";

static void seed_home(tu_world *w)
{
    tu_write(w->home, ".teleclaude/config.yml", config);
    tu_write(w->home, "old.txt", "old\n");
}

/* ---- the preview ----------------------------------------------------------- */

static void test_preview_writes_nothing_and_reports_every_change(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_things.lua", make_things);
    char *before = tree(w->root);
    w->opts.dry_run = true;
    w->opts.rehearse = true;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_tree_is(w->root, before); /* no state, no lock, no data/ */
    assert_false(tu_exists(w->home, ".teleclaude/migration_state.json.lock"));
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(migrate_report_get(r, i)->outcome, MIGRATE_PENDING);
        assert_true(migrate_report_get(r, i)->rehearsal);
    }
    /* Migration 1: one modified file, its diff exact to the line. */
    assert_int_equal(migrate_result_change_count(r, 0), 1);
    const migrate_change *c = migrate_result_change(r, 0, 0);
    assert_int_equal(c->kind, MIGRATE_CHANGE_MODIFIED);
    assert_string_equal(c->type, "file");
    assert_non_null(strstr(c->diff, "-old_key: 1   # keep this comment\r\n"));
    assert_non_null(strstr(c->diff, "+new_key: 1   # keep this comment\r\n"));
    assert_non_null(strstr(c->diff, " name: café\r\n")); /* context */
    assert_int_equal(c->mode, 0644 & ~0);
    /* Migration 2: each kind of change, in the order made. */
    const migrate_change_kind kinds[] = {MIGRATE_CHANGE_CREATED, MIGRATE_CHANGE_CREATED,
                                         MIGRATE_CHANGE_CREATED, MIGRATE_CHANGE_CREATED,
                                         MIGRATE_CHANGE_RENAMED, MIGRATE_CHANGE_CREATED,
                                         MIGRATE_CHANGE_MODE,    MIGRATE_CHANGE_REMOVED};
    const char *ends[] = {"/data", "/data/sub", "/data/sub/x.txt", "/data/config.bak",
                          "/data/moved", "/data/link", "/data/config.bak", "/old.txt"};
    assert_int_equal(migrate_result_change_count(r, 1), 8);
    for (size_t j = 0; j < 8; j++) {
        c = migrate_result_change(r, 1, j);
        assert_int_equal(c->kind, kinds[j]);
        size_t n = strlen(c->path), m = strlen(ends[j]);
        assert_true(n > m && strcmp(c->path + n - m, ends[j]) == 0);
    }
    c = migrate_result_change(r, 1, 2);
    assert_int_equal(c->mode, 0600);
    assert_string_equal(c->diff, strstr(c->diff, "--- /dev/null\n"));
    c = migrate_result_change(r, 1, 3); /* the copy: of the config as migration 1 left it */
    assert_non_null(c->from);
    assert_non_null(strstr(c->diff, "+new_key: 1"));
    assert_string_equal(migrate_result_change(r, 1, 5)->target, "moved/x.txt");
    assert_int_equal(migrate_result_change(r, 1, 6)->old_mode, 0644);
    assert_int_equal(migrate_result_change(r, 1, 6)->mode, 0640);
    char *json = migrate_report_json(r);
    assert_non_null(strstr(json, "\"rehearse\": true"));
    assert_non_null(strstr(json, "\"kind\": \"renamed\""));
    assert_non_null(strstr(json, "\"mode\": \"0640\""));
    free(json);
    migrate_report_free(r);
    free(before);
}

/* GNU patch, which no one here wrote, applies every diff the preview gives
 * and turns the old file into exactly the new one. */
static void test_preview_diffs_apply_with_gnu_patch(void **state)
{
    tu_world *w = *state;
    if (system("patch --version >/dev/null 2>&1") != 0) {
        skip();
        return;
    }
    seed_home(w);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    w->opts.dry_run = true;
    w->opts.rehearse = true;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    const migrate_change *c = migrate_result_change(r, 0, 0);
    assert_non_null(c);
    tu_write(w->root, "patched.yml", config);
    tu_write(w->root, "change.diff", c->diff);
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "patch -s --no-backup-if-mismatch '%s/patched.yml' '%s/change.diff'",
             w->root, w->root);
    assert_int_equal(system(cmd), 0);
    char *got = tu_read(w->root, "patched.yml");
    char *want = strdup(config);
    char *at = strstr(want, "old_key");
    memcpy(at, "new_key", 7);
    assert_string_equal(got, want);
    free(got);
    free(want);
    migrate_report_free(r);
}

/* ---- a real run with rehearse ------------------------------------------------ */

static void test_rehearsed_run_leaves_what_a_plain_run_leaves(void **state)
{
    tu_world *w = *state;
    tu_world plain;
    tu_world_init(&plain);
    seed_home(w);
    seed_home(&plain);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_things.lua", make_things);
    tu_script(&plain, "v1.0.0/001_rename.lua", rename_key);
    tu_script(&plain, "v1.0.0/002_things.lua", make_things);
    w->opts.rehearse = true;
    migrate_report *r, *p;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(tu_run(&plain, NULL, NULL, &p), MIGRATE_OK);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(migrate_report_get(r, i)->outcome, MIGRATE_APPLIED);
        assert_false(migrate_report_get(r, i)->rehearsal);
        assert_int_equal(migrate_result_change_count(p, i), 0); /* no rehearsal, no changes */
    }
    assert_int_equal(migrate_result_change_count(r, 1), 8);
    /* The same trees, but for mtimes and the state's times: compare
     * contents, modes and links. */
    char *a = tu_read(w->home, ".teleclaude/config.yml"), *b = tu_read(plain.home, ".teleclaude/config.yml");
    assert_string_equal(a, b);
    free(a);
    free(b);
    const char *same[] = {"data/moved/x.txt", "data/config.bak"};
    for (size_t i = 0; i < 2; i++) {
        char *x = tu_read(w->home, same[i]), *y = tu_read(plain.home, same[i]);
        assert_non_null(x);
        assert_string_equal(x, y);
        struct stat sx, sy;
        char *px = tu_path(w->home, same[i]), *py = tu_path(plain.home, same[i]);
        assert_int_equal(stat(px, &sx), 0);
        assert_int_equal(stat(py, &sy), 0);
        assert_int_equal(sx.st_mode, sy.st_mode);
        free(px);
        free(py);
        free(x);
        free(y);
    }
    assert_false(tu_exists(w->home, "old.txt"));
    assert_true(tu_exists(w->home, ".teleclaude/migration_state.json"));
    migrate_report_free(r);
    migrate_report_free(p);
    tu_world_free(&plain);
}

/* ---- a rehearsal that fails ------------------------------------------------------ */

static void check_refused(tu_world *w, const char *before, migrate_report *r)
{
    assert_tree_is(w->root, before);
    const migrate_result *failed = migrate_report_failed(r);
    assert_non_null(failed);
    assert_true(failed->rehearsal);
    assert_non_null(strstr(failed->error, "in the rehearsal (the upgrade was refused: nothing was written)"));
    assert_non_null(strstr(failed->error, "the config has no expected_key"));
    assert_non_null(strstr(migrate_report_error(r), "in the rehearsal"));
    /* The first migration passed the rehearsal: would apply, not applied. */
    assert_int_equal(migrate_report_get(r, 0)->outcome, MIGRATE_PENDING);
    assert_true(migrate_report_get(r, 0)->rehearsal);
    assert_int_equal(migrate_result_change_count(r, 0), 1);
}

static void test_rehearsal_failure_leaves_a_fresh_home_untouched(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_fails.lua", fails_late);
    char *before = tree(w->root);
    w->opts.rehearse = true;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    check_refused(w, before, r); /* no state file, no lock file */
    migrate_report_free(r);
    /* Without rehearse, the same upgrade is half-applied: the case this
     * option exists for (and proof that the tree comparison can fail). */
    w->opts.rehearse = false;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    char *after = tree(w->root);
    assert_string_not_equal(after, before);
    free(after);
    migrate_report_free(r);
    free(before);
}

static void test_rehearsal_failure_leaves_state_and_lock_untouched(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_logging_script(w, "v0.9.0/001_log.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK); /* a state and a lock exist */
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_fails.lua", fails_late);
    char *before = tree(w->root);
    w->opts.rehearse = true;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_int_equal(migrate_report_get(r, 0)->outcome, MIGRATE_SKIPPED_STATE);
    assert_tree_is(w->root, before);
    migrate_report_free(r);
    free(before);
}

static void test_view_memory_limit_fails_the_rehearsal(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_script(w, "v1.0.0/001_big.lua",
              "function check() return fs.exists('~/big') end\n"
              "function migrate() fs.write('~/big', string.rep('x', 1 << 20)) return true end\n");
    char *before = tree(w->root);
    w->opts.rehearse = true;
    w->opts.rehearsal_memory_limit = 64 * 1024;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "view is full"));
    assert_non_null(strstr(migrate_report_failed(r)->error, "opts.rehearsal_memory_limit"));
    assert_tree_is(w->root, before);
    migrate_report_free(r);
    /* The default limit holds it, and the real run writes it. */
    w->opts.rehearsal_memory_limit = 0;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_true(tu_exists(w->home, "big"));
    migrate_report_free(r);
    free(before);
}

/* SPEC §4.3 holds with rehearse: a script that does not compile fails the
 * run with MIGRATE_EMANIFEST, also when it comes after a migration that the
 * rehearsal already ran (or one that failed there), and nothing ran. */
static void test_a_script_that_does_not_compile_wins(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_broken.lua", "function check( return true end\n");
    char *before = tree(w->root);
    w->opts.rehearse = true;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) /* the first migration now fails in the rehearsal */
            tu_script(w, "v1.0.0/001_rename.lua", fails_late);
        free(before);
        before = tree(w->root);
        migrate_report *r;
        assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EMANIFEST);
        assert_non_null(strstr(migrate_report_error(r), "002_broken"));
        for (size_t i = 0; i < 2; i++) {
            assert_int_equal(migrate_report_get(r, i)->outcome, MIGRATE_NOT_RUN);
            assert_int_equal(migrate_result_change_count(r, i), 0);
        }
        assert_tree_is(w->root, before);
        migrate_report_free(r);
    }
    free(before);
}

/* ---- events and cancelling ---------------------------------------------------------- */

typedef struct events {
    int starts[2];      /* [rehearsal?] */
    int dones[2];
    int logs[2];
    int cancel_at_start; /* in the rehearsal: cancel at START of this index + 1 */
    bool cancel_on_log;
} events;

static int on_event(const migrate_event *ev, void *payload)
{
    events *e = payload;
    int k = ev->rehearsal ? 1 : 0;
    if (ev->kind == MIGRATE_EVENT_START) {
        e->starts[k]++;
        if (ev->rehearsal && e->cancel_at_start == (int)ev->index + 1)
            return 1;
    } else if (ev->kind == MIGRATE_EVENT_DONE) {
        e->dones[k]++;
    } else if (ev->kind == MIGRATE_EVENT_LOG) {
        e->logs[k]++;
        if (ev->rehearsal && e->cancel_on_log)
            return 1;
    }
    return 0;
}

static void test_events_say_which_pass_sent_them(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_log.lua",
              "function check() return fs.exists('~/logged') end\n"
              "function migrate() log.info('hello') fs.write('~/logged', '') return true end\n");
    events e = {0};
    w->opts.rehearse = true;
    w->opts.on_event = on_event;
    w->opts.payload = &e;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(e.starts[1], 2);
    assert_int_equal(e.dones[1], 2);
    assert_int_equal(e.starts[0], 2);
    assert_int_equal(e.dones[0], 2);
    assert_int_equal(e.logs[1], 1);
    assert_int_equal(e.logs[0], 1);
    /* The report keeps the real run's log line, once. */
    char *json = migrate_report_json(r);
    const char *first = strstr(json, "\"hello\"");
    assert_non_null(first);
    assert_null(strstr(first + 1, "\"hello\""));
    free(json);
    migrate_report_free(r);
}

static void test_cancel_in_the_rehearsal_writes_nothing(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_script(w, "v1.0.0/001_rename.lua", rename_key);
    tu_script(w, "v1.0.0/002_loop.lua",
              "function check() return false end\n"
              "function migrate()\n"
              "  log.info('working')\n"
              "  while true do end\n"
              "end\n");
    char *before = tree(w->root);
    w->opts.rehearse = true;
    w->opts.on_event = on_event;
    /* Between migrations: at the START of migration 2. */
    events e = {.cancel_at_start = 2};
    w->opts.payload = &e;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_tree_is(w->root, before);
    assert_int_equal(e.starts[0], 0); /* no real pass began */
    migrate_report_free(r);
    /* Inside a script that never returns: from its LOG event. */
    events e2 = {.cancel_on_log = true};
    w->opts.payload = &e2;
    w->opts.timeout_ms = 0; /* only the cancel can stop it */
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_non_null(strstr(migrate_report_error(r), "cancelled"));
    assert_tree_is(w->root, before);
    migrate_report_free(r);
    free(before);
}

/* ---- the same rules as on disk ------------------------------------------------------------ */

static void test_rehearsal_keeps_state_protected_and_check_read_only(void **state)
{
    tu_world *w = *state;
    seed_home(w);
    tu_logging_script(w, "v0.9.0/001_log.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    tu_script(w, "v1.0.0/001_state.lua",
              "function check() return false end\n"
              "function migrate() fs.write('~/.teleclaude/migration_state.json', '{}') return true end\n");
    char *before = tree(w->root);
    w->opts.rehearse = true;
    migrate_report *r;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "not writable from a script"));
    assert_tree_is(w->root, before);
    migrate_report_free(r);
    tu_script(w, "v1.0.0/001_state.lua",
              "function check() fs.write('~/x', '') return false end\n"
              "function migrate() return true end\n");
    free(before);
    before = tree(w->root);
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "fs.write: not allowed"));
    assert_tree_is(w->root, before);
    migrate_report_free(r);
    free(before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_preview_writes_nothing_and_reports_every_change,
                                        tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_preview_diffs_apply_with_gnu_patch, tu_world_setup,
                                        tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_rehearsed_run_leaves_what_a_plain_run_leaves,
                                        tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_rehearsal_failure_leaves_a_fresh_home_untouched,
                                        tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_rehearsal_failure_leaves_state_and_lock_untouched,
                                        tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_view_memory_limit_fails_the_rehearsal,
                                        tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_a_script_that_does_not_compile_wins, tu_world_setup,
                                        tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_events_say_which_pass_sent_them, tu_world_setup,
                                        tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_in_the_rehearsal_writes_nothing,
                                        tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_rehearsal_keeps_state_protected_and_check_read_only,
                                        tu_world_setup, tu_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
