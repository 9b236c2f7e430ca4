/* The state file and its lock (SPEC §4.1-2, §6): corrupt states are never
 * touched, crashes never lose a record, two runners never run at once. */
#include "testutil.h"

#include "internal.h"

#include <cJSON.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *state_dir(tu_world *w)
{
    return tu_path(w->home, ".teleclaude");
}

static void expect_corrupt_untouched(tu_world *w, const char *content, const char *why)
{
    tu_logging_script(w, "v1.0.0/001_a.lua");
    tu_write(w->home, ".teleclaude/migration_state.json", content);
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ESTATE);
    const char *err = migrate_report_error(r);
    if (strstr(err, "migration_state.json") == NULL || strstr(err, why) == NULL)
        fail_msg("error \"%s\" should name the file and \"%s\"", err, why);
    assert_int_equal(migrate_report_get(r, 0) ? migrate_report_get(r, 0)->outcome
                                              : MIGRATE_NOT_RUN,
                     MIGRATE_NOT_RUN);
    migrate_report_free(r);
    char *after = tu_read(w->state_path, NULL);
    assert_string_equal(after, content); /* byte for byte */
    free(after);
    char *ran = tu_ran(w);
    assert_string_equal(ran, "");
    free(ran);
}

static void test_state_not_json_is_untouched(void **state)
{
    expect_corrupt_untouched(*state, "{\"applied\": [", "not valid JSON");
}

static void test_state_not_an_object_is_untouched(void **state)
{
    expect_corrupt_untouched(*state, "[\"v1.0.0/001_a\"]", "not a JSON object");
}

static void test_state_applied_not_an_array_is_untouched(void **state)
{
    expect_corrupt_untouched(*state, "{\"applied\": \"v1.0.0/001_a\"}", "not an array");
}

static void test_state_applied_with_non_string_is_untouched(void **state)
{
    expect_corrupt_untouched(*state, "{\"applied\": [\"v1.0.0/001_a\", 7]}",
                             "\"applied\"[1] is not a string");
}

static void test_state_duplicate_id_is_untouched(void **state)
{
    expect_corrupt_untouched(*state, "{\"applied\": [\"v1.0.0/001_a\", \"v1.0.0/001_a\"]}",
                             "listed twice");
}

static void test_state_empty_file_is_untouched(void **state)
{
    expect_corrupt_untouched(*state, "", "not valid JSON");
}

static void test_recover_corrupt_state_moves_it_aside(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    const char *garbage = "\x01garbage{";
    tu_write(w->home, ".teleclaude/migration_state.json", garbage);
    w->opts.recover_corrupt_state = true;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(migrate_report_get(r, 0)->outcome, MIGRATE_APPLIED);
    assert_int_equal(migrate_report_warning_count(r), 1);
    assert_non_null(strstr(migrate_report_warning(r, 0), "moved aside to"));
    migrate_report_free(r);
    /* The corrupt bytes are kept, under a .corrupt-<UTC time> name. */
    char *dir = state_dir(w);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cat %s/migration_state.json.corrupt-2*Z", dir);
    FILE *p = popen(cmd, "r");
    char kept[64] = "";
    assert_non_null(fgets(kept, sizeof kept, p));
    pclose(p);
    assert_string_equal(kept, garbage);
    free(dir);
}

static void test_dry_run_with_recover_moves_nothing(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    tu_write(w->home, ".teleclaude/migration_state.json", "nope");
    w->opts.recover_corrupt_state = true;
    w->opts.dry_run = true;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(migrate_report_get(r, 0)->outcome, MIGRATE_PENDING);
    assert_int_equal(migrate_report_warning_count(r), 1);
    migrate_report_free(r);
    char *dir = state_dir(w);
    assert_int_equal(tu_count_entries(dir), 1);
    free(dir);
}

/* ---- a crash between the temp write and the rename ------------------------ */

static int count_temps(tu_world *w)
{
    char *dir = state_dir(w);
    int n = tu_count_temps(dir);
    free(dir);
    return n;
}

/* The seam fires before every atomic rename, fs.write's too: crash at the
 * one where a state temp file is about to become the state. */
static tu_world *crash_world;
static void crash_hook(const char *point)
{
    if (strcmp(point, "write_atomic:before-rename") == 0 && count_temps(crash_world) == 1)
        kill(getpid(), SIGKILL);
}

static void test_crash_before_rename_keeps_old_state_and_leaves_no_temp_after_next_save(
    void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    char *before = tu_read(w->state_path, NULL);
    tu_logging_script(w, "v1.0.0/002_b.lua");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crash_world = w;
        tu_seam_hook = crash_hook;
        migrate_run(NULL, NULL, &w->opts, NULL);
        _exit(0); /* not reached: the hook kills us */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* The crash left the old state, whole, and a temp file beside it. */
    char *after = tu_read(w->state_path, NULL);
    assert_string_equal(before, after);
    assert_int_equal(count_temps(w), 1);
    /* 002_b's effect happened before the crash; its check() sees it, so the
     * next run records it without running it again. */
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(migrate_report_get(r, 1)->outcome, MIGRATE_SKIPPED_CHECK);
    migrate_report_free(r);
    assert_int_equal(count_temps(w), 0);
    char *ran = tu_ran(w);
    assert_string_equal(ran, "v1.0.0/001_a\nv1.0.0/002_b\n");
    free(ran);
    free(before);
    free(after);
}

/* ---- the lock --------------------------------------------------------------- */

/* A child process that holds the lock until it reads a byte from `release`. */
static pid_t hold_lock(tu_world *w, int *release_fd)
{
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    char *dir = state_dir(w);
    mkdir(dir, 0700);
    free(dir);
    char *lock = malloc(strlen(w->state_path) + 6);
    sprintf(lock, "%s.lock", w->state_path);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]); /* else this child would keep its own release pipe open */
        close(ready[0]);
        int fd = open(lock, O_RDWR | O_CREAT, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) != 0)
            _exit(1);
        char c = 'x';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    free(lock);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    *release_fd = go[1];
    return pid;
}

static void test_lock_held_by_another_process_is_elocked(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    int release;
    pid_t holder = hold_lock(w, &release);
    migrate_report *r = NULL;
    w->opts.lock_timeout_ms = 100;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ELOCKED);
    assert_non_null(strstr(migrate_report_error(r), "migration_state.json.lock"));
    migrate_report_free(r);
    char *ran = tu_ran(w);
    assert_string_equal(ran, "");
    free(ran);
    /* A dry run takes no lock, so it is not blocked. */
    w->opts.dry_run = true;
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    w->opts.dry_run = false;
    /* Once the holder is gone (here: exits), the lock is free again. */
    close(release);
    waitpid(holder, NULL, 0);
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    /* The lock file stays. */
    char *lock = malloc(strlen(w->state_path) + 6);
    sprintf(lock, "%s.lock", w->state_path);
    assert_true(tu_exists(lock, NULL));
    free(lock);
}

static void test_lock_waits_up_to_lock_timeout(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    int release;
    pid_t holder = hold_lock(w, &release);
    /* The releaser lets go only once this process has opened the lock
     * file, so the run below has to wait for it: no guessed delay. */
    char *lock = malloc(strlen(w->state_path) + 6);
    sprintf(lock, "%s.lock", w->state_path);
    pid_t me = getpid();
    pid_t releaser = fork();
    if (releaser == 0) {
        bool seen = tu_wait_fd_open(me, lock, 60);
        close(release);
        _exit(seen ? 0 : 1);
    }
    free(lock);
    close(release);
    w->opts.lock_timeout_ms = 10000;
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    int st = 0;
    waitpid(releaser, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* it saw the run waiting */
    waitpid(holder, NULL, 0);
    char *ran = tu_ran(w);
    assert_string_equal(ran, "v1.0.0/001_a\n");
    free(ran);
}

static void test_200_runs_leave_no_file_descriptor_open(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    tu_script(w, "v1.0.0/002_fails.lua",
              "function check() return fs.exists('~/never') end\n"
              "function migrate() fs.read('~/ran.log') error('again') end\n");
    int before = tu_count_fds();
    for (int i = 0; i < 200; i++) {
        migrate_report *r = NULL;
        w->opts.dry_run = i % 3 == 0;
        /* A dry run calls no migrate(), so only real runs fail. */
        assert_int_equal(tu_run(w, NULL, NULL, &r), w->opts.dry_run ? MIGRATE_OK : MIGRATE_EFAILED);
        migrate_report_free(r);
    }
    assert_int_equal(tu_count_fds(), before);
}

/* ---- the incremental state printer ---------------------------------------------- */

/* The state file must be exactly what a full print of its document gives. */
static void assert_state_prints_whole(tu_world *w)
{
    char *text = tu_read(w->state_path, NULL);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    char *full = mig_json_print(root);
    size_t n = strlen(full);
    assert_true(n > 0 && strlen(text) == n + 1 && text[n] == '\n');
    text[n] = '\0';
    assert_string_equal(text, full);
    free(full);
    cJSON_Delete(root);
    free(text);
}

static void test_incremental_state_save_matches_a_full_print(void **state)
{
    tu_world *w = *state;
    tu_write(w->home, ".teleclaude/migration_state.json",
             "{\"owner\": {\"name\": \"tab\\there \\\"quoted\\\" \\u00e9\", \"n\": [1, 2.5, -3e2]},"
             " \"applied\": [\"v0.9.0/001_old\"], \"zeta\": null,"
             " \"migrations\": {\"v0.9.0/001_old\": {\"outcome\": \"applied\", \"custom\": true}}}");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4; i++) {
            char rel[64];
            snprintf(rel, sizeof rel, "v1.%d.0/%03d_step.lua", round, i + 1);
            tu_logging_script(w, rel);
        }
        assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
        assert_state_prints_whole(w);
    }
    /* A migration recorded again (check() true after its state entry was
     * dropped by hand) replaces its details: still one whole document. */
    char *text = tu_read(w->state_path, NULL);
    cJSON *root = cJSON_Parse(text);
    cJSON *applied = cJSON_GetObjectItem(root, "applied");
    cJSON_DeleteItemFromArray(applied, 1);
    char *edited = cJSON_Print(root);
    tu_write(w->home, ".teleclaude/migration_state.json", edited);
    free(edited);
    cJSON_Delete(root);
    free(text);
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(migrate_report_get(r, 0)->outcome, MIGRATE_SKIPPED_CHECK);
    migrate_report_free(r);
    assert_state_prints_whole(w);
    /* ...and its fresh details, not the text printed for it before. */
    text = tu_read(w->state_path, NULL);
    root = cJSON_Parse(text);
    cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "migrations"), "v1.0.0/001_step");
    assert_string_equal(cJSON_GetObjectItem(m, "outcome")->valuestring, "skipped_check");
    applied = cJSON_GetObjectItem(root, "applied");
    int n = cJSON_GetArraySize(applied);
    assert_int_equal(n, 13);
    assert_string_equal(cJSON_GetArrayItem(applied, n - 1)->valuestring, "v1.0.0/001_step");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "migrations"), "v0.9.0/001_old"), "custom")));
    cJSON_Delete(root);
    free(text);
}

/* ---- threads ------------------------------------------------------------------ */

typedef struct worker {
    tu_world world;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *k = arg;
    for (int i = 0; i < 10; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "v1.0.%d/001_step.lua", i);
        tu_logging_script(&k->world, rel);
        migrate_report *r = NULL;
        if (migrate_run(NULL, NULL, &k->world.opts, &r) != MIGRATE_OK ||
            migrate_report_count(r) != (size_t)i + 1)
            k->failures++;
        migrate_report_free(r);
    }
    return NULL;
}

static void test_concurrent_runs_on_different_state_paths_are_independent(void **state)
{
    (void)state;
    enum { N = 4 };
    worker workers[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        tu_world_init(&workers[i].world);
        workers[i].failures = 0;
        /* one of them also times out and fails, in parallel with the others */
        if (i == 0)
            tu_script(&workers[i].world, "v0.0.1/001_slow.lua",
                      "function check() return false end\n"
                      "function migrate() while true do end end\n");
        workers[i].world.opts.timeout_ms = 50;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, work, &workers[i]), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    assert_int_equal(workers[0].failures, 10); /* halted at the slow one each time */
    for (int i = 1; i < N; i++) {
        assert_int_equal(workers[i].failures, 0);
        char *ran = tu_ran(&workers[i].world);
        assert_int_equal(strlen(ran), 10 * strlen("v1.0.0/001_step\n"));
        free(ran);
    }
    for (int i = 0; i < N; i++)
        tu_world_free(&workers[i].world);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tu_world_setup, tu_world_teardown)
    const struct CMUnitTest tests[] = {
        T(test_state_not_json_is_untouched),
        T(test_state_not_an_object_is_untouched),
        T(test_state_applied_not_an_array_is_untouched),
        T(test_state_applied_with_non_string_is_untouched),
        T(test_state_duplicate_id_is_untouched),
        T(test_state_empty_file_is_untouched),
        T(test_recover_corrupt_state_moves_it_aside),
        T(test_dry_run_with_recover_moves_nothing),
        T(test_crash_before_rename_keeps_old_state_and_leaves_no_temp_after_next_save),
        T(test_lock_held_by_another_process_is_elocked),
        T(test_lock_waits_up_to_lock_timeout),
        T(test_200_runs_leave_no_file_descriptor_open),
        T(test_incremental_state_save_matches_a_full_print),
        cmocka_unit_test(test_concurrent_runs_on_different_state_paths_are_independent),
    };
    return cmocka_run_group_tests_name("state", tests, NULL, NULL);
}
