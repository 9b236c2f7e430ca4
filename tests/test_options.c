/* Options (SPEC §7, §7.1): versions, defaults, the checks made before a run
 * does anything, and the state file kept out of scripts' reach whatever
 * path reaches it. */
#include "testutil.h"

#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

/* ---- versions and defaults ------------------------------------------------------- */

static void test_init_fills_the_defaults_and_the_initializer_agrees(void **state)
{
    (void)state;
    migrate_options a, b = MIGRATE_OPTIONS_INIT;
    memset(&a, 0x5a, sizeof a);
    assert_int_equal(migrate_options_init(&a, MIGRATE_OPTIONS_VERSION), MIGRATE_OK);
    assert_int_equal(a.version, MIGRATE_OPTIONS_VERSION);
    assert_null(a.migrations_dir);
    assert_null(a.home);
    assert_null(a.state_path);
    assert_null(a.allowed_roots);
    assert_false(a.dry_run);
    assert_false(a.rehearse);
    assert_false(a.recover_corrupt_state);
    assert_int_equal(a.memory_limit, (size_t)256 << 20);
    assert_int_equal(a.rehearsal_memory_limit, (size_t)256 << 20);
    assert_int_equal(a.timeout_ms, 300000);
    assert_int_equal(a.lock_timeout_ms, 0);
    assert_null(a.on_event);
    assert_null(a.payload);
    /* Field by field (padding may differ). */
    assert_int_equal(b.version, a.version);
    assert_true(b.migrations_dir == a.migrations_dir && b.home == a.home &&
                b.state_path == a.state_path && b.allowed_roots == a.allowed_roots);
    assert_true(b.dry_run == a.dry_run && b.rehearse == a.rehearse &&
                b.recover_corrupt_state == a.recover_corrupt_state);
    assert_int_equal(b.memory_limit, a.memory_limit);
    assert_int_equal(b.rehearsal_memory_limit, a.rehearsal_memory_limit);
    assert_int_equal(b.timeout_ms, a.timeout_ms);
    assert_int_equal(b.lock_timeout_ms, a.lock_timeout_ms);
    assert_true(b.on_event == a.on_event && b.payload == a.payload);
}

static void test_init_refuses_an_unknown_version_and_leaves_opts_alone(void **state)
{
    (void)state;
    migrate_options o;
    memset(&o, 0x5a, sizeof o);
    migrate_options before = o;
    assert_int_equal(migrate_options_init(&o, 0), MIGRATE_EINVAL);
    assert_int_equal(migrate_options_init(&o, MIGRATE_OPTIONS_VERSION + 1), MIGRATE_EINVAL);
    assert_memory_equal(&o, &before, sizeof o);
    assert_int_equal(migrate_options_init(NULL, MIGRATE_OPTIONS_VERSION), MIGRATE_EINVAL);
}

/* An options struct not made by init (version 0) or from a newer header is
 * refused by both entry points, with a message; nothing is touched. */
static void test_run_and_discover_refuse_an_unknown_options_version(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    migrate_report *r = NULL;
    w->opts.version = 0;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EINVAL);
    assert_contains(migrate_report_error(r), "opts.version is 0");
    assert_contains(migrate_report_error(r), "migrate_options_init");
    migrate_report_free(r);
    assert_int_equal(migrate_discover(NULL, NULL, &w->opts, &r), MIGRATE_EINVAL);
    assert_contains(migrate_report_error(r), "opts.version is 0");
    assert_int_equal(migrate_report_count(r), 0);
    migrate_report_free(r);
    w->opts.version = MIGRATE_OPTIONS_VERSION + 1;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EINVAL);
    assert_contains(migrate_report_error(r), "opts.version is 2");
    migrate_report_free(r);
    assert_int_equal(tu_count_entries(w->home), 0);
}

/* ---- checked before anything runs -------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    void (*set)(tu_world *w, char **keep);
    const char *message; /* expected in the run's error */
} bad_case;

static void home_empty(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.home = "";
}
static void home_relative(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.home = "home";
}
static void home_missing(tu_world *w, char **keep)
{
    *keep = tu_path(w->root, "nohome");
    w->opts.home = *keep;
}
static void home_a_file(tu_world *w, char **keep)
{
    tu_write(w->root, "file", "");
    *keep = tu_path(w->root, "file");
    w->opts.home = *keep;
}
static const char *roots_with_empty[3];
static void root_empty(tu_world *w, char **keep)
{
    (void)keep;
    roots_with_empty[0] = w->home;
    roots_with_empty[1] = "";
    w->opts.allowed_roots = roots_with_empty;
}
static const char *roots_relative[2] = {"home", NULL};
static void root_relative(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.allowed_roots = roots_relative;
}
static const char *roots_missing[3];
static void root_missing(tu_world *w, char **keep)
{
    *keep = tu_path(w->root, "noroot");
    roots_missing[0] = w->home;
    roots_missing[1] = *keep;
    w->opts.allowed_roots = roots_missing;
}
static const char *roots_none[1] = {NULL};
static void roots_empty_list(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.allowed_roots = roots_none;
}
static void state_empty(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.state_path = "";
}
static void state_relative(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.state_path = "state.json";
}
static void state_a_directory(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.state_path = w->home;
}
static void state_trailing_slash(tu_world *w, char **keep)
{
    *keep = tu_path(w->home, "newdir/");
    w->opts.state_path = *keep;
}
static void state_under_a_file(tu_world *w, char **keep)
{
    tu_write(w->root, "file", "");
    *keep = tu_path(w->root, "file/sub/state.json");
    w->opts.state_path = *keep;
}
static void state_through_a_dangling_link(tu_world *w, char **keep)
{
    char *link = tu_path(w->root, "dangling");
    char *target = tu_path(w->root, "nowhere");
    if (symlink(target, link) != 0) /* made by the dry-run round already */
        assert_int_equal(errno, EEXIST);
    *keep = tu_path(link, "state/state.json");
    w->opts.state_path = *keep;
    free(link);
    free(target);
}
static void migrations_empty(tu_world *w, char **keep)
{
    (void)keep;
    w->opts.migrations_dir = "";
}

static const bad_case bad_cases[] = {
    {"home empty", home_empty, "opts.home is \"\": the home must be an absolute path"},
    {"home relative", home_relative, "opts.home is \"home\": the home must be an absolute path"},
    {"home missing", home_missing, "/nohome\": it does not exist"},
    {"home a file", home_a_file, "/file\": not a directory"},
    {"root empty", root_empty, "opts.allowed_roots[1] is \"\": a root must be an absolute path"},
    {"root relative", root_relative,
     "opts.allowed_roots[0] is \"home\": a root must be an absolute path"},
    {"root missing", root_missing, "/noroot\": it does not exist"},
    {"roots an empty list", roots_empty_list, "opts.allowed_roots is an empty list"},
    {"state_path empty", state_empty, "opts.state_path is \"\""},
    {"state_path relative", state_relative,
     "opts.state_path is \"state.json\": the state file must be an absolute path"},
    {"state_path a directory", state_a_directory, "a directory, not a file"},
    {"state_path ends in /", state_trailing_slash, "it names a directory, not a file"},
    {"state_path under a file", state_under_a_file, "/file is not a directory"},
    {"state_path through a dangling symlink", state_through_a_dangling_link,
     "/dangling is a symlink to nothing"},
    {"migrations_dir empty", migrations_empty, "opts.migrations_dir is \"\""},
};

/* Each is MIGRATE_EINVAL with its message, for a real run and a dry run,
 * and nothing happened: no script ran, no lock or state directory was made
 * anywhere, no home was created. */
static void test_bad_options_are_refused_before_anything_runs(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    migrate_options good = w->opts;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        for (int dry = 0; dry < 2; dry++) {
            char *keep = NULL;
            w->opts = good;
            w->opts.dry_run = dry;
            bad_cases[i].set(w, &keep);
            migrate_report *r = NULL;
            int rc = tu_run(w, NULL, NULL, &r);
            if (rc != MIGRATE_EINVAL)
                fail_msg("%s: returned %d (%s): %s", bad_cases[i].name, rc,
                         migrate_strerror(rc), migrate_report_error(r));
            assert_contains(migrate_report_error(r), bad_cases[i].message);
            assert_int_equal(migrate_report_count(r), 0); /* not even the tree was read */
            migrate_report_free(r);
            assert_int_equal(tu_count_entries(w->home), 0);
            assert_false(tu_exists(w->root, "nohome"));
            assert_false(tu_exists(w->root, "noroot"));
            free(keep);
        }
    }
    w->opts = good;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    migrate_report_free(r);
}

/* $HOME stands in for opts.home and is checked the same way, by name. */
static void test_home_from_the_environment_is_checked_too(void **state)
{
    tu_world *w = *state;
    char *saved = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    w->opts.home = NULL;
    migrate_report *r = NULL;
    setenv("HOME", "relative/home", 1);
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EINVAL);
    assert_contains(migrate_report_error(r), "$HOME is \"relative/home\": the home must be");
    migrate_report_free(r);
    unsetenv("HOME");
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EINVAL);
    assert_contains(migrate_report_error(r), "no home directory");
    migrate_report_free(r);
    setenv("HOME", w->home, 1);
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    migrate_report_free(r);
    if (saved != NULL)
        setenv("HOME", saved, 1);
    else
        unsetenv("HOME");
    free(saved);
}

/* What is allowed stays allowed: a symlinked home, a missing state
 * directory (made 0700), a relative migrations_dir. */
static void test_good_options_still_run(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    char *link = tu_path(w->root, "homelink");
    assert_int_equal(symlink(w->home, link), 0);
    char *statep = tu_path(w->root, "var/lib/app/state.json");
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(w->root), 0);
    w->opts.migrations_dir = "migrations";
    w->opts.home = link;
    w->opts.state_path = statep;
    migrate_report *r = NULL;
    int rc = tu_run(w, NULL, NULL, &r);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, MIGRATE_OK);
    migrate_report_free(r);
    assert_true(tu_exists(w->root, "var/lib/app/state.json"));
    free(link);
    free(statep);
}

/* ---- the state, by identity ------------------------------------------------------ */

/* A script (migration 2, after 1 made the state file) that tries to
 * replace the state file at `path`, which names it by another spelling;
 * migration 2 must fail, the state keep migration 1 alone. */
static void forging_scripts(tu_world *w, const char *path)
{
    tu_logging_script(w, "v1.0.0/001_a.lua");
    char lua[4096];
    snprintf(lua, sizeof lua,
             "function check() return false end\n"
             "function migrate()\n"
             "  fs.write('%s', '{\"applied\": [\"v1.0.0/001_a\", \"v1.1.0/001_forge\", "
             "\"v1.2.0/001_later\"]}')\n"
             "  return true\n"
             "end\n",
             path);
    tu_script(w, "v1.1.0/001_forge.lua", lua);
    tu_logging_script(w, "v1.2.0/001_later.lua");
}

static void assert_forgery_refused(tu_world *w, const char *state_path)
{
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    const migrate_result *failed = migrate_report_failed(r);
    assert_non_null(failed);
    assert_string_equal(failed->id, "v1.1.0/001_forge");
    assert_contains(failed->error, "the migration state is not writable from a script");
    migrate_report_free(r);
    char *text = tu_read(state_path, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "001_forge"));
    free(text);
}

/* state_path through a symlinked directory whose state directory does not
 * exist yet: the run makes it through the link, and the target's own
 * spelling must be protected too. */
static void test_state_through_a_symlinked_directory_cannot_be_forged(void **state)
{
    tu_world *w = *state;
    char *real = tu_path(w->home, "real");
    char *link = tu_path(w->home, "link");
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, link), 0);
    char *statep = tu_path(link, "state/migration_state.json");
    w->opts.state_path = statep;
    forging_scripts(w, "~/real/state/migration_state.json");
    assert_forgery_refused(w, statep);
    free(real);
    free(link);
    free(statep);
}

/* A second allowed root that is a symlink to the home: the roots are
 * resolved, so its spelling of the state is the home's. */
static void test_state_under_a_symlinked_second_root_cannot_be_forged(void **state)
{
    tu_world *w = *state;
    char *second = tu_path(w->root, "second");
    assert_int_equal(symlink(w->home, second), 0);
    const char *roots[] = {w->home, second, NULL};
    w->opts.allowed_roots = roots;
    char path[4096];
    snprintf(path, sizeof path, "%s/.teleclaude/migration_state.json", second);
    forging_scripts(w, path);
    assert_forgery_refused(w, w->state_path);
    free(second);
}

/* The home bind-mounted at a second allowed root: no string names both,
 * only the directory's identity does. Needs a mount namespace (root, or
 * CAP_SYS_ADMIN): run in a child that makes its own; skipped, saying so,
 * where that is not permitted. The child reports with its exit status
 * (cmocka's asserts belong to the parent). */
static int bind_mounted_child(tu_world *w, const char *second)
{
    if (unshare(CLONE_NEWNS) != 0)
        return 77;
    /* The type is ignored for both, but valgrind checks it is a string. */
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(w->home, second, "none", MS_BIND, NULL) != 0)
        return 77;
    const char *roots[] = {w->home, second, NULL};
    w->opts.allowed_roots = roots;
    char path[4096];
    snprintf(path, sizeof path, "%s/.teleclaude/migration_state.json", second);
    forging_scripts(w, path);
    migrate_report *r = NULL;
    int rc = tu_run(w, NULL, NULL, &r);
    const migrate_result *failed = migrate_report_failed(r);
    int status = rc != MIGRATE_EFAILED ? 1
                 : failed == NULL || strcmp(failed->id, "v1.1.0/001_forge") != 0 ? 2
                 : strstr(failed->error, "the migration state is not writable") == NULL ? 3
                                                                                        : 0;
    if (status != 0)
        fprintf(stderr, "bind mount: rc %d: %s\n", rc, migrate_report_error(r));
    migrate_report_free(r);
    char *text = tu_read(w->state_path, NULL);
    if (status == 0 && (text == NULL || strstr(text, "001_forge") != NULL))
        status = 4;
    free(text);
    umount(second);
    return status;
}

static void test_state_under_a_bind_mounted_second_root_cannot_be_forged(void **state)
{
    tu_world *w = *state;
    char *second = tu_path(w->root, "second");
    assert_int_equal(mkdir(second, 0755), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(bind_mounted_child(w, second));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    free(second);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip(); /* no mount namespace here: the symlinked spellings are tested above */
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* What run.c hands fs: the state directory, its ancestors and the files
 * by (st_dev, st_ino), refreshed when a save replaces the file; and the
 * spellings of the state under a root that reaches its directory by
 * another path (a symlink standing in for a bind mount here: roots given
 * to mig_protect_init are normally resolved, so only a second mount of
 * the same directory differs by name). */
static void test_protection_names_the_state_by_identity(void **state)
{
    tu_world *w = *state;
    char *dir = tu_path(w->home, ".teleclaude");
    assert_int_equal(mkdir(dir, 0700), 0);
    tu_write(dir, "migration_state.json", "{}");
    tu_write(dir, "migration_state.json.lock", "");
    char *lock = tu_path(dir, "migration_state.json.lock");
    char *other = tu_path(w->root, "other");
    assert_int_equal(symlink(w->root, other), 0); /* reaches home's parent */
    char *roots[] = {w->home, other, NULL};
    mig_protect p;
    assert_int_equal(mig_protect_init(&p, w->state_path, lock, -1, roots), MIGRATE_OK);
    const mig_protection *v = mig_protect_view(&p);
    assert_non_null(v);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(v->dir.dev == st.st_dev && v->dir.ino == st.st_ino);
    assert_string_equal(v->names[0], "migration_state.json");
    assert_string_equal(v->names[1], "migration_state.json.lock");
    assert_null(v->names[2]);
    assert_string_equal(v->temp_prefix, ".migration_state.json.tmp-");
    assert_true(v->ancestors[0].dev == st.st_dev && v->ancestors[0].ino == st.st_ino);
    assert_int_equal(stat("/", &st), 0);
    assert_true(v->ancestors[v->n_ancestors - 1].ino == st.st_ino);
    assert_int_equal(stat(w->home, &st), 0);
    assert_true(v->ancestors[1].ino == st.st_ino);
    assert_int_equal(v->n_files, 2);
    assert_int_equal(stat(w->state_path, &st), 0);
    assert_true(v->files[0].ino == st.st_ino);
    /* A save replaces the file: refresh follows. */
    char *fresh = tu_path(dir, "fresh");
    tu_write(dir, "fresh", "{}");
    assert_int_equal(rename(fresh, w->state_path), 0);
    assert_int_equal(stat(w->state_path, &st), 0);
    assert_false(v->files[0].ino == st.st_ino);
    mig_protect_refresh(&p);
    assert_true(v->files[0].ino == st.st_ino);
    assert_int_equal(v->n_files, 2);
    /* The strings: the real spelling, then the one under `other`. */
    char expect[4096];
    snprintf(expect, sizeof expect, "%s/home/.teleclaude/migration_state.json", other);
    bool found = false;
    for (size_t i = 0; p.paths[i] != NULL; i++)
        found = found || strcmp(p.paths[i], expect) == 0;
    if (!found)
        fail_msg("%s not among the protected paths", expect);
    mig_protect_free(&p);
    /* No state directory yet (a dry run): strings only. */
    char *nodir = tu_path(w->root, "none/state.json");
    char *nolock = tu_path(w->root, "none/state.json.lock");
    assert_int_equal(mig_protect_init(&p, nodir, nolock, -1, roots), MIGRATE_OK);
    assert_null(mig_protect_view(&p));
    assert_string_equal(p.paths[0], nodir);
    mig_protect_free(&p);
    free(nodir);
    free(nolock);
    free(fresh);
    free(other);
    free(lock);
    free(dir);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tu_world_setup, tu_world_teardown)
    const struct CMUnitTest tests[] = {
        T(test_init_fills_the_defaults_and_the_initializer_agrees),
        T(test_init_refuses_an_unknown_version_and_leaves_opts_alone),
        T(test_run_and_discover_refuse_an_unknown_options_version),
        T(test_bad_options_are_refused_before_anything_runs),
        T(test_home_from_the_environment_is_checked_too),
        T(test_good_options_still_run),
        T(test_state_through_a_symlinked_directory_cannot_be_forged),
        T(test_state_under_a_symlinked_second_root_cannot_be_forged),
        T(test_state_under_a_bind_mounted_second_root_cannot_be_forged),
        T(test_protection_names_the_state_by_identity),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
