/* The run (SPEC §4): what is skipped, applied, recorded, halted, resumed. */
#include "testutil.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

static migrate_outcome outcome(const migrate_report *r, size_t i)
{
    const migrate_result *m = migrate_report_get(r, i);
    assert_non_null(m);
    return m->outcome;
}

/* The "applied" ids of the state file, joined with spaces ("" if none). */
static char *applied(tu_world *w)
{
    char *text = tu_read(w->state_path, NULL);
    char *out = calloc(1, 4096);
    if (text == NULL)
        return out;
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    const cJSON *id;
    cJSON_ArrayForEach(id, cJSON_GetObjectItem(root, "applied"))
    {
        if (out[0])
            strcat(out, " ");
        strcat(out, id->valuestring);
    }
    cJSON_Delete(root);
    free(text);
    return out;
}

static void assert_applied(tu_world *w, const char *expected)
{
    char *got = applied(w);
    assert_string_equal(got, expected);
    free(got);
}

static void assert_ran(tu_world *w, const char *expected)
{
    char *got = tu_ran(w);
    assert_string_equal(got, expected);
    free(got);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack ? haystack : "(null)", needle);
}

static void test_applies_in_order_and_records_each(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/002_b.lua");
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_logging_script(w, "v1.2.0/001_c.lua");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, "1.0.0", "1.2.0", &r), MIGRATE_OK);
    assert_int_equal(migrate_report_count(r), 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(outcome(r, i), MIGRATE_APPLIED);
    assert_null(migrate_report_error(r));
    migrate_report_free(r);
    assert_ran(w, "v1.1.0/001_a\nv1.1.0/002_b\nv1.2.0/001_c\n");
    assert_applied(w, "v1.1.0/001_a v1.1.0/002_b v1.2.0/001_c");
}

static void test_state_file_has_details_and_private_modes(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    struct stat st;
    assert_int_equal(stat(w->state_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *dir = tu_path(w->home, ".teleclaude");
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(dir);
    char *text = tu_read(w->state_path, NULL);
    cJSON *root = cJSON_Parse(text);
    cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "migrations"), "v1.1.0/001_a");
    assert_string_equal(cJSON_GetObjectItem(m, "outcome")->valuestring, "applied");
    assert_int_equal(strlen(cJSON_GetObjectItem(m, "sha256")->valuestring), 64);
    assert_int_equal(strlen(cJSON_GetObjectItem(m, "applied_at")->valuestring), 20);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(m, "seconds")));
    cJSON_Delete(root);
    free(text);
}

static void test_second_run_skips_by_state_and_runs_no_lua(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    /* Now the script would fail if any of it ran, even its top level. */
    tu_script(w, "v1.1.0/001_a.lua", "error('the runner loaded a recorded migration')");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_STATE);
    migrate_report_free(r);
}

static void test_check_true_skips_and_is_recorded(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_done.lua",
              "function check() return true end\n"
              "function migrate() error('migrate must not run when check() is true') end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_CHECK);
    migrate_report_free(r);
    assert_applied(w, "v1.1.0/001_done");
    char *text = tu_read(w->state_path, NULL);
    assert_contains(text, "\"skipped_check\"");
    free(text);
}

static void test_migrate_false_with_reason_halts(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.1.0/002_no.lua",
              "function check() return false end\n"
              "function migrate() return false, 'config has no [server] section' end\n");
    tu_logging_script(w, "v1.1.0/003_c.lua");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_int_equal(outcome(r, 0), MIGRATE_APPLIED);
    assert_int_equal(outcome(r, 1), MIGRATE_FAILED);
    assert_int_equal(outcome(r, 2), MIGRATE_NOT_RUN);
    const migrate_result *f = migrate_report_failed(r);
    assert_ptr_equal(f, migrate_report_get(r, 1));
    assert_contains(f->error, "v1.1.0/002_no");
    assert_contains(f->error, "002_no.lua");
    assert_contains(f->error, "migrate() returned false");
    assert_contains(f->error, "config has no [server] section");
    assert_contains(migrate_report_error(r), "config has no [server] section");
    migrate_report_free(r);
    assert_ran(w, "v1.1.0/001_a\n");
    assert_applied(w, "v1.1.0/001_a");
}

static void test_migrate_false_without_reason_halts(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_no.lua",
              "function check() return false end function migrate() return false end");
    tu_logging_script(w, "v1.1.0/002_b.lua");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_contains(migrate_report_failed(r)->error, "no reason given");
    assert_int_equal(outcome(r, 1), MIGRATE_NOT_RUN);
    migrate_report_free(r);
    assert_ran(w, "");
    assert_applied(w, "");
}

static void test_error_halts_with_file_line_and_traceback(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.1.0/002_boom.lua",
              "local function helper()\n"
              "  error('disk layout unexpected')\n" /* line 2 */
              "end\n"
              "function check() return false end\n"
              "function migrate()\n"
              "  helper()\n" /* line 6 */
              "  return true\n"
              "end\n");
    tu_logging_script(w, "v1.2.0/001_c.lua");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    const char *err = migrate_report_failed(r)->error;
    assert_contains(err, "migrate() failed");
    assert_contains(err, "002_boom.lua:2: disk layout unexpected");
    assert_contains(err, "stack traceback");
    assert_contains(err, "002_boom.lua:6:");
    assert_int_equal(outcome(r, 2), MIGRATE_NOT_RUN);
    migrate_report_free(r);
    assert_ran(w, "v1.1.0/001_a\n");
    assert_applied(w, "v1.1.0/001_a");
}

static void test_check_error_is_reported_as_check(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_a.lua",
              "function check() local t = nil; return t.x end\n"
              "function migrate() return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_contains(migrate_report_failed(r)->error, "check() failed");
    assert_contains(migrate_report_failed(r)->error, "001_a.lua:1:");
    migrate_report_free(r);
}

static void test_run_resumes_at_failed_migration(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.1.0/002_b.lua",
              "function check() return false end function migrate() error('not yet') end");
    tu_logging_script(w, "v1.1.0/003_c.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_EFAILED);
    tu_logging_script(w, "v1.1.0/002_b.lua"); /* the fix ships */
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_STATE);
    assert_int_equal(outcome(r, 1), MIGRATE_APPLIED);
    assert_int_equal(outcome(r, 2), MIGRATE_APPLIED);
    migrate_report_free(r);
    assert_ran(w, "v1.1.0/001_a\nv1.1.0/002_b\nv1.1.0/003_c\n");
    assert_applied(w, "v1.1.0/001_a v1.1.0/002_b v1.1.0/003_c");
}

static void test_resumes_from_prepopulated_state_file_keeping_unknown_keys(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_logging_script(w, "v1.1.0/002_b.lua");
    tu_write(w->home, ".teleclaude/migration_state.json",
             "{\"applied\": [\"v1.1.0/001_a\"], \"owner\": {\"team\": \"infra\"}}");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_STATE);
    assert_int_equal(outcome(r, 1), MIGRATE_APPLIED);
    migrate_report_free(r);
    assert_ran(w, "v1.1.0/002_b\n");
    assert_applied(w, "v1.1.0/001_a v1.1.0/002_b");
    char *text = tu_read(w->state_path, NULL);
    assert_contains(text, "  \"owner\": {\n    \"team\": \"infra\"\n  }");
    free(text);
}

static void test_post_migrate_check_false_is_not_idempotent(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_sloppy.lua",
              "function check() return false end\n"
              "function migrate() fs.write('~/x', 'y') return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_contains(migrate_report_failed(r)->error, "check() still returns false");
    assert_contains(migrate_report_failed(r)->error, "not idempotent");
    migrate_report_free(r);
    assert_applied(w, "");
}

static void test_non_boolean_return_names_function_and_value(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_noreturn.lua",
              "function check() end\nfunction migrate() return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_contains(migrate_report_failed(r)->error, "check() returned nil");
    assert_contains(migrate_report_failed(r)->error, "forgotten `return`");
    migrate_report_free(r);
    tu_script(w, "v1.1.0/001_noreturn.lua",
              "function check() return false end\nfunction migrate() return 'done' end\n");
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_contains(migrate_report_failed(r)->error, "migrate() returned string done");
    migrate_report_free(r);
}

static void test_script_may_return_a_table_of_functions(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_table.lua",
              "local M = {}\n"
              "function M.check() return fs.exists('~/t') end\n"
              "function M.migrate() fs.write('~/t', '1') return true end\n"
              "return M\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_APPLIED);
    migrate_report_free(r);
}

static void test_syntax_error_anywhere_runs_nothing(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_logging_script(w, "v1.1.0/002_b.lua");
    tu_script(w, "v1.2.0/001_broken.lua", "function check() return false end\nfunction migrate(\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EMANIFEST);
    assert_contains(migrate_report_error(r), "v1.2.0/001_broken");
    assert_contains(migrate_report_error(r), "001_broken.lua:3:");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(outcome(r, i), MIGRATE_NOT_RUN);
    migrate_report_free(r);
    assert_ran(w, "");
    assert_applied(w, "");
}

static void test_missing_migrate_function_runs_nothing(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.1.0/002_half.lua", "function check() return false end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EMANIFEST);
    assert_contains(migrate_report_error(r), "002_half.lua: no migrate() function");
    migrate_report_free(r);
    assert_ran(w, "");
}

static void test_dry_run_calls_no_migrate_and_writes_nothing(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.1.0/002_done.lua",
              "function check() return true end function migrate() return true end");
    w->opts.dry_run = true;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_PENDING);
    assert_int_equal(outcome(r, 1), MIGRATE_SKIPPED_CHECK);
    migrate_report_free(r);
    assert_int_equal(tu_count_entries(w->home), 0); /* no state dir, no lock, no ran.log */
}

static void test_dry_run_reads_existing_state(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_logging_script(w, "v1.1.0/002_b.lua");
    tu_write(w->home, ".teleclaude/migration_state.json", "{\"applied\": [\"v1.1.0/001_a\"]}");
    char *before = tu_read(w->state_path, NULL);
    w->opts.dry_run = true;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_STATE);
    assert_int_equal(outcome(r, 1), MIGRATE_PENDING);
    migrate_report_free(r);
    char *after = tu_read(w->state_path, NULL);
    assert_string_equal(before, after);
    free(before);
    free(after);
    char *dir = tu_path(w->home, ".teleclaude");
    assert_int_equal(tu_count_entries(dir), 1); /* still no lock file */
    free(dir);
}

static void test_state_ahead_of_to_is_a_warning(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_write(w->home, ".teleclaude/migration_state.json",
             "{\"applied\": [\"v1.1.0/001_a\", \"v2.0.0/001_future\"]}");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, "1.0.0", "1.1.0", &r), MIGRATE_OK);
    assert_int_equal(migrate_report_warning_count(r), 1);
    assert_contains(migrate_report_warning(r, 0), "v2.0.0/001_future");
    assert_contains(migrate_report_warning(r, 0), "rolled back");
    assert_null(migrate_report_warning(r, 1));
    migrate_report_free(r);
}

static void test_changed_applied_script_is_a_warning(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    tu_script(w, "v1.1.0/001_a.lua", "-- edited after release\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_STATE);
    assert_int_equal(migrate_report_warning_count(r), 1);
    assert_contains(migrate_report_warning(r, 0), "v1.1.0/001_a");
    assert_contains(migrate_report_warning(r, 0), "changed since it was applied");
    migrate_report_free(r);
}

/* Dates a file in the past, as an installed script is: only then is its
 * size+mtime stamp trusted (the last seconds are too racy). */
static void age(tu_world *w, const char *rel, time_t seconds_ago)
{
    char *path = tu_path(w->migrations, rel);
    struct timespec times[2] = {{time(NULL) - seconds_ago, 0}, {time(NULL) - seconds_ago, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    free(path);
}

static void test_same_size_edit_with_new_mtime_still_warns(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_a.lua",
              "function check() return true end function migrate() return true end -- A\n");
    age(w, "v1.1.0/001_a.lua", 3600);
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    char *text = tu_read(w->state_path, NULL);
    assert_contains(text, "\"stamp\": \"size=");
    free(text);
    /* Nothing changed: no warning (and, by the stamp, no hashing). */
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(migrate_report_warning_count(r), 0);
    migrate_report_free(r);
    /* Same size, other bytes, another mtime: the stamp differs, so it is
     * hashed again and the change is reported. */
    tu_script(w, "v1.1.0/001_a.lua",
              "function check() return true end function migrate() return true end -- B\n");
    age(w, "v1.1.0/001_a.lua", 1800);
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(migrate_report_warning_count(r), 1);
    assert_contains(migrate_report_warning(r, 0), "changed since it was applied");
    migrate_report_free(r);
}

typedef struct seen {
    char log[4096];
} seen;

static int record_event(const migrate_event *ev, void *payload)
{
    seen *s = payload;
    char line[512];
    switch (ev->kind) {
    case MIGRATE_EVENT_PLAN:
        snprintf(line, sizeof line, "plan %zu|", ev->total);
        break;
    case MIGRATE_EVENT_START:
        snprintf(line, sizeof line, "start %zu %s|", ev->index, ev->migration->id);
        break;
    case MIGRATE_EVENT_DONE:
        snprintf(line, sizeof line, "done %zu %s|", ev->index,
                 migrate_outcome_name(ev->migration->outcome));
        break;
    case MIGRATE_EVENT_LOG:
        snprintf(line, sizeof line, "log %d %s %s|", ev->level, ev->migration->id, ev->message);
        break;
    case MIGRATE_EVENT_WARNING:
        snprintf(line, sizeof line, "warning|");
        break;
    }
    strncat(s->log, line, sizeof s->log - strlen(s->log) - 1);
    return 0;
}

static void test_events_and_script_logs(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_talk.lua",
              "function check() return fs.exists('~/t') end\n"
              "function migrate()\n"
              "  log.info('moving', 2, 'files')\n"
              "  log.warn('odd')\n"
              "  print('printed')\n"
              "  log.error('bad', nil)\n"
              "  fs.write('~/t', '') return true\n"
              "end\n");
    seen s = {{0}};
    w->opts.on_event = record_event;
    w->opts.payload = &s;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_string_equal(s.log, "plan 1|start 0 v1.1.0/001_talk|"
                               "log 0 v1.1.0/001_talk moving 2 files|"
                               "log 1 v1.1.0/001_talk odd|"
                               "log 0 v1.1.0/001_talk printed|"
                               "log 2 v1.1.0/001_talk bad nil|"
                               "done 0 applied|");
    char *json = migrate_report_json(r);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "status")->valuestring, "ok");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(root, "from")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "dry_run")));
    cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "migrations"), 0);
    assert_string_equal(cJSON_GetObjectItem(m, "id")->valuestring, "v1.1.0/001_talk");
    assert_string_equal(cJSON_GetObjectItem(m, "version")->valuestring, "1.1.0");
    assert_string_equal(cJSON_GetObjectItem(m, "outcome")->valuestring, "applied");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(m, "error")));
    cJSON *log = cJSON_GetObjectItem(m, "log");
    assert_int_equal(cJSON_GetArraySize(log), 4);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(log, 1), "level")->valuestring,
                        "warn");
    cJSON_Delete(root);
    free(json);
    migrate_report_free(r);
}

static void test_failed_report_json_says_failed(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_no.lua",
              "function check() return false end function migrate() return false, 'nope' end");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, "1.0.0", "1.1.0", &r), MIGRATE_EFAILED);
    char *json = migrate_report_json(r);
    cJSON *root = cJSON_Parse(json);
    assert_string_equal(cJSON_GetObjectItem(root, "status")->valuestring, "failed");
    assert_string_equal(cJSON_GetObjectItem(root, "from")->valuestring, "1.0.0");
    assert_contains(cJSON_GetObjectItem(root, "error")->valuestring, "nope");
    cJSON_Delete(root);
    free(json);
    migrate_report_free(r);
    /* A run-level error reads "error". */
    assert_int_equal(tu_run(w, "2.0.0", "1.0.0", &r), MIGRATE_EINVAL);
    json = migrate_report_json(r);
    assert_contains(json, "\"status\": \"error\"");
    free(json);
    migrate_report_free(r);
}

static void test_migration_table_describes_the_script(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_who.lua",
              "function check() return false end\n"
              "function migrate()\n"
              "  assert(migration.id == 'v1.1.0/001_who', migration.id)\n"
              "  assert(migration.version == '1.1.0')\n"
              "  assert(migration.path:match('v1.1.0/001_who.lua$'))\n"
              "  assert(migration.from_version == '1.0.0')\n"
              "  assert(migration.to_version == nil)\n"
              "  assert(migration.dry_run == false)\n"
              "  assert(migration.home:sub(1, 1) == '/')\n"
              "  local n = 0 for _ in pairs(migration) do n = n + 1 end\n"
              "  assert(n == 6, n)\n" /* to_version is nil */
              "  assert(not pcall(function() migration.id = 'x' end))\n"
              /* no raw way around it either: the home stays the run's */
              "  local home = migration.home\n"
              "  assert(not pcall(rawset, migration, 'home', '/'))\n"
              "  assert(not pcall(setmetatable, migration, nil))\n"
              "  assert(migration.home == home and home ~= '/')\n"
              "  return false, 'all good'\n"
              "end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, "1.0.0", NULL, &r), MIGRATE_EFAILED);
    assert_contains(migrate_report_failed(r)->error, "all good");
    migrate_report_free(r);
}

static void test_read_json_and_write_json_keep_order_mode_and_name_the_file(void **state)
{
    tu_world *w = *state;
    tu_write(w->home, "conf.json", "{\n  \"b\": 1,\n  \"a\": [],\n  \"c\": {}\n}\n");
    char *conf = tu_path(w->home, "conf.json");
    assert_int_equal(chmod(conf, 0640), 0);
    tu_write(w->home, "broken.json", "{\"a\": 1,\n \"b\" 2}");
    tu_script(w, "v1.0.0/001_json.lua",
              "function check() return fs.read_json('~/conf.json').b == 2 end\n"
              "function migrate()\n"
              "  local c = fs.read_json('~/conf.json')\n"
              "  c.b = 2\n"
              "  c.d = true\n"
              "  fs.write_json('~/conf.json', c)\n"
              "  return true\n"
              "end\n");
    tu_script(w, "v1.0.1/001_broken.lua",
              "function check() return false end\n"
              "function migrate() fs.read_json('~/broken.json') return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_int_equal(outcome(r, 0), MIGRATE_APPLIED);
    const char *err = migrate_report_failed(r)->error;
    assert_contains(err, "fs.read_json: \"~/broken.json\"");
    assert_contains(err, "line 2");
    assert_contains(err, "001_broken.lua:2:");
    migrate_report_free(r);
    char *text = tu_read(conf, NULL);
    assert_string_equal(text, "{\n  \"b\": 2,\n  \"a\": [],\n  \"c\": {},\n  \"d\": true\n}\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(conf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    free(conf);
}

static void test_null_options_and_null_out_are_accepted(void **state)
{
    (void)state;
    /* Defaults: "migrations" relative to the working directory, $HOME. */
    migrate_report *r = NULL;
    int rc = migrate_discover("0.0.1", "0.0.1", NULL, &r);
    assert_true(rc == MIGRATE_OK || rc == MIGRATE_EMANIFEST);
    migrate_report_free(r);
    assert_int_equal(migrate_run("x", NULL, NULL, NULL), MIGRATE_EINVAL);
    assert_int_equal(migrate_report_count(NULL), 0);
    assert_null(migrate_report_get(NULL, 0));
    assert_null(migrate_report_json(NULL));
    migrate_report_free(NULL);
    assert_int_equal(migrate_options_init(NULL, MIGRATE_OPTIONS_VERSION), MIGRATE_EINVAL);
}

static void test_strerror_and_names(void **state)
{
    (void)state;
    assert_string_equal(migrate_strerror(MIGRATE_OK), "success");
    assert_string_equal(migrate_strerror(MIGRATE_ELOCKED), "state is locked by another run");
    assert_string_equal(migrate_strerror(12345), "unknown error code");
    assert_string_equal(migrate_outcome_name(MIGRATE_SKIPPED_STATE), "skipped_state");
    assert_string_equal(migrate_outcome_name(MIGRATE_NOT_RUN), "not_run");
    assert_string_equal(migrate_outcome_name((migrate_outcome)99), "unknown");
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", MIGRATE_VERSION_MAJOR, MIGRATE_VERSION_MINOR,
             MIGRATE_VERSION_PATCH);
    assert_string_equal(migrate_library_version(), v);
}


/* ---- one sandbox per script: the compile pass's, kept for the run -------------------- */

static int sandboxes_made;
static void count_sandboxes(const char *point)
{
    if (strcmp(point, "sandbox:new") == 0)
        sandboxes_made++;
}

/* How many times each of up to 16 scripts' top level logged "loaded <n>". */
static int loaded_lines[16];
static int count_loaded(const migrate_event *ev, void *payload)
{
    (void)payload;
    int n;
    if (ev->kind == MIGRATE_EVENT_LOG && sscanf(ev->message, "loaded %d", &n) == 1 && n >= 0 &&
        n < 16)
        loaded_lines[n]++;
    return 0;
}

/* n scripts whose check() is true only in the sandbox where migrate() ran,
 * each logging "loaded <i>" from its top level; script `failing` (if not
 * negative) fails in migrate(). */
static void kept_scripts(tu_world *w, int n, int failing)
{
    for (int i = 0; i < n; i++) {
        char rel[64], lua[512];
        snprintf(rel, sizeof rel, "v1.%d.0/001_kept.lua", i);
        snprintf(lua, sizeof lua,
                 "log.info('loaded %d')\n"
                 "local done = false\n"
                 "function check() return done end\n"
                 "function migrate() %s done = true return true end\n",
                 i, i == failing ? "error('broken')" : "");
        tu_script(w, rel, lua);
    }
}

static int run_counting(tu_world *w, migrate_report **r)
{
    sandboxes_made = 0;
    memset(loaded_lines, 0, sizeof loaded_lines);
    w->opts.on_event = count_loaded;
    tu_seam_hook = count_sandboxes;
    int rc = tu_run(w, NULL, NULL, r);
    tu_seam_hook = NULL;
    w->opts.on_event = NULL;
    return rc;
}

/* The first n migrations applied, each top level's line reported once. */
static void assert_applied_and_loaded_once(const migrate_report *r, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(outcome(r, (size_t)i), MIGRATE_APPLIED);
        assert_int_equal(loaded_lines[i], 1);
    }
}

static void test_each_script_is_loaded_once(void **state)
{
    tu_world *w = *state;
    kept_scripts(w, 6, -1);
    migrate_report *r = NULL;
    assert_int_equal(run_counting(w, &r), MIGRATE_OK);
    assert_int_equal(sandboxes_made, 6);
    assert_applied_and_loaded_once(r, 6);
    migrate_report_free(r);
}

/* Past the bound on what waiting scripts may hold (never more than
 * memory_limit), a script is loaded again at its turn: same outcomes, and
 * its top level's lines are still reported once. */
static void test_scripts_past_the_memory_bound_are_loaded_again(void **state)
{
    tu_world *w = *state;
    w->opts.memory_limit = 150u << 10;
    kept_scripts(w, 12, -1);
    migrate_report *r = NULL;
    assert_int_equal(run_counting(w, &r), MIGRATE_OK);
    assert_true(sandboxes_made > 12);
    assert_true(sandboxes_made < 24);
    assert_applied_and_loaded_once(r, 12);
    migrate_report_free(r);
}

/* A failure halts the run with later scripts loaded and waiting: they are
 * released (ASan and valgrind see a leak otherwise), and resume works. */
static void test_a_halt_releases_the_waiting_scripts(void **state)
{
    tu_world *w = *state;
    kept_scripts(w, 5, 2);
    int fds = tu_count_fds();
    migrate_report *r = NULL;
    assert_int_equal(run_counting(w, &r), MIGRATE_EFAILED);
    assert_int_equal(sandboxes_made, 5);
    assert_int_equal(outcome(r, 1), MIGRATE_APPLIED);
    assert_int_equal(outcome(r, 2), MIGRATE_FAILED);
    assert_int_equal(outcome(r, 3), MIGRATE_NOT_RUN);
    assert_int_equal(outcome(r, 4), MIGRATE_NOT_RUN);
    migrate_report_free(r);
    assert_int_equal(tu_count_fds(), fds);
    kept_scripts(w, 5, -1);
    assert_int_equal(run_counting(w, &r), MIGRATE_OK);
    assert_int_equal(sandboxes_made, 3);
    assert_int_equal(outcome(r, 4), MIGRATE_APPLIED);
    migrate_report_free(r);
}

/* ---- cancelling from the event callback (migrate.h, migrate_event_fn) -------------- */

/* Records every event as record_event() does and returns non-zero at the
 * first event of kind `at` (and, for START/DONE/LOG, of migration index
 * `index`; for LOG, whose message is `message`). */
typedef struct canceller {
    seen s;
    migrate_event_kind at;
    size_t index;
    const char *message;
    int cancels;   /* how many times it returned non-zero */
    int ticks;     /* LOG events whose message starts with "tick" */
} canceller;

static int cancel_at(const migrate_event *ev, void *payload)
{
    canceller *c = payload;
    record_event(ev, &c->s);
    if (ev->kind == MIGRATE_EVENT_LOG && strncmp(ev->message, "tick", 4) == 0)
        c->ticks++;
    bool here = ev->kind == c->at &&
                (ev->kind == MIGRATE_EVENT_PLAN || ev->kind == MIGRATE_EVENT_WARNING ||
                 ev->index == c->index) &&
                (c->message == NULL || (ev->message && strcmp(ev->message, c->message) == 0));
    if (!here)
        return 0;
    c->cancels++;
    return 1;
}

static void three_logging_scripts(tu_world *w)
{
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_logging_script(w, "v1.2.0/001_b.lua");
    tu_logging_script(w, "v1.3.0/001_c.lua");
}

static void assert_status(const migrate_report *r, const char *status)
{
    char *json = migrate_report_json(r);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "status")->valuestring, status);
    cJSON_Delete(root);
    free(json);
}

static void test_cancel_from_plan_runs_nothing(void **state)
{
    tu_world *w = *state;
    three_logging_scripts(w);
    canceller c = {.at = MIGRATE_EVENT_PLAN};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_string_equal(c.s.log, "plan 3|");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(outcome(r, i), MIGRATE_NOT_RUN);
    assert_null(migrate_report_failed(r));
    assert_contains(migrate_report_error(r), "cancelled");
    assert_contains(migrate_report_error(r), "the PLAN event");
    assert_status(r, "canceled");
    migrate_report_free(r);
    assert_ran(w, "");
    assert_applied(w, "");
}

/* Migration 1 stays recorded; 2 and 3 do not run; every START has its
 * DONE; and the next run resumes at 2. */
static void test_cancel_from_start_of_migration_two_keeps_migration_one(void **state)
{
    tu_world *w = *state;
    three_logging_scripts(w);
    canceller c = {.at = MIGRATE_EVENT_START, .index = 1};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_string_equal(c.s.log, "plan 3|start 0 v1.1.0/001_a|done 0 applied|"
                                 "start 1 v1.2.0/001_b|done 1 not_run|");
    assert_int_equal(c.cancels, 1);
    assert_int_equal(outcome(r, 0), MIGRATE_APPLIED);
    assert_int_equal(outcome(r, 1), MIGRATE_NOT_RUN);
    assert_int_equal(outcome(r, 2), MIGRATE_NOT_RUN);
    assert_null(migrate_report_failed(r));
    assert_contains(migrate_report_error(r), "the START event of v1.2.0/001_b");
    assert_status(r, "canceled");
    migrate_report_free(r);
    assert_ran(w, "v1.1.0/001_a\n");
    assert_applied(w, "v1.1.0/001_a");

    w->opts.on_event = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_OK);
    assert_int_equal(outcome(r, 0), MIGRATE_SKIPPED_STATE);
    assert_int_equal(outcome(r, 1), MIGRATE_APPLIED);
    migrate_report_free(r);
    assert_applied(w, "v1.1.0/001_a v1.2.0/001_b v1.3.0/001_c");
}

static void test_cancel_from_done_keeps_that_migration(void **state)
{
    tu_world *w = *state;
    three_logging_scripts(w);
    canceller c = {.at = MIGRATE_EVENT_DONE, .index = 0};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_string_equal(c.s.log, "plan 3|start 0 v1.1.0/001_a|done 0 applied|");
    assert_int_equal(outcome(r, 1), MIGRATE_NOT_RUN);
    migrate_report_free(r);
    assert_applied(w, "v1.1.0/001_a");
}

/* A LOG event arrives while the script runs: the script stops inside that
 * log call. A loop that logs through pcall, through a coroutine, and
 * through xpcall with a handler that swallows errors cannot go on: the
 * callback sees exactly the tick it cancelled at, nothing the script does
 * after (writing ~/caught) happens, and migration 2 is FAILED saying
 * "cancelled" (not a timeout) while 1 stays recorded and 3 never runs. */
static void test_cancel_from_a_log_event_stops_a_looping_script(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.2.0/001_loop.lua",
              "function check() return false end\n"
              "function migrate()\n"
              "  local i = 0\n"
              "  while true do\n"
              "    i = i + 1\n"
              "    local ok, err = pcall(log.info, 'tick ' .. i)\n"
              "    if not ok then fs.write('~/caught', tostring(err)) end\n"
              "    local co = coroutine.create(function() log.info('tick co ' .. i) end)\n"
              "    local cok, cerr = coroutine.resume(co)\n"
              "    if not cok then fs.write('~/caught', tostring(cerr)) end\n"
              "    xpcall(log.info, function() fs.write('~/caught', 'x') end, 'tick x ' .. i)\n"
              "  end\n"
              "end\n");
    tu_logging_script(w, "v1.3.0/001_c.lua");
    w->opts.timeout_ms = 60000; /* a timeout would take a minute: not what stops it */
    canceller c = {.at = MIGRATE_EVENT_LOG, .index = 1, .message = "tick co 3"};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_int_equal(c.cancels, 1);
    assert_int_equal(c.ticks, 8); /* tick 1, co 1, x 1, ..., tick 3, co 3: no more */
    assert_false(tu_exists(w->home, "caught"));
    assert_int_equal(outcome(r, 0), MIGRATE_APPLIED);
    assert_int_equal(outcome(r, 1), MIGRATE_FAILED);
    assert_int_equal(outcome(r, 2), MIGRATE_NOT_RUN);
    const char *err = migrate_report_failed(r)->error;
    assert_contains(err, "migrate() was cancelled");
    assert_null(strstr(err, "timed out"));
    assert_contains(migrate_report_error(r), "the LOG event of v1.2.0/001_loop");
    assert_contains(migrate_report_error(r), "v1.2.0/001_loop was interrupted");
    assert_status(r, "canceled");
    migrate_report_free(r);
    assert_applied(w, "v1.1.0/001_a");
    assert_ran(w, "v1.1.0/001_a\n");
}

/* A cancel from check()'s log line: migrate() never runs; the migration
 * was started, so it is FAILED (cancelled), not NOT_RUN. */
static void test_cancel_from_a_log_in_check_fails_that_migration(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_spin.lua",
              "function check() log.info('checking') return false end\n"
              "function migrate() fs.write('~/migrated', '') return true end\n");
    w->opts.timeout_ms = 60000;
    canceller c = {.at = MIGRATE_EVENT_LOG, .index = 0, .message = "checking"};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_int_equal(outcome(r, 0), MIGRATE_FAILED);
    assert_contains(migrate_report_failed(r)->error, "check() was cancelled");
    assert_false(tu_exists(w->home, "migrated"));
    migrate_report_free(r);
}

/* Not one more statement runs after the log call that cancelled: a write
 * right after it does not happen, though no hook would come between. */
static void test_cancel_from_a_log_stops_the_very_next_statement(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.1.0/001_write.lua",
              "function check() return fs.exists('~/after') end\n"
              "function migrate() log.info('tick') fs.write('~/after', '') return true end\n");
    canceller c = {.at = MIGRATE_EVENT_LOG, .index = 0, .message = "tick"};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_false(tu_exists(w->home, "after"));
    assert_int_equal(outcome(r, 0), MIGRATE_FAILED);
    assert_contains(migrate_report_failed(r)->error, "migrate() was cancelled");
    migrate_report_free(r);
    assert_applied(w, "");
}

/* A top level's log line arrives in the compile pass, before any
 * migration: cancelling there runs none. */
static void test_cancel_from_a_top_level_log_runs_nothing(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.1.0/001_a.lua");
    tu_script(w, "v1.2.0/001_talk.lua",
              "log.info('loading')\n"
              "while true do end\n"
              "function check() return false end function migrate() return true end\n");
    w->opts.timeout_ms = 60000;
    canceller c = {.at = MIGRATE_EVENT_LOG, .index = 1, .message = "loading"};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_ECANCELED);
    assert_int_equal(outcome(r, 0), MIGRATE_NOT_RUN);
    assert_int_equal(outcome(r, 1), MIGRATE_NOT_RUN);
    assert_null(migrate_report_failed(r));
    assert_status(r, "canceled");
    migrate_report_free(r);
    assert_ran(w, "");
}

/* A WARNING before the plan (here: the state records a newer version)
 * cancels before PLAN is even sent. */
static void test_cancel_from_a_warning_before_the_plan(void **state)
{
    tu_world *w = *state;
    three_logging_scripts(w);
    tu_write(w->home, ".teleclaude/migration_state.json", "{\"applied\": [\"v9.0.0/001_x\"]}");
    canceller c = {.at = MIGRATE_EVENT_WARNING};
    w->opts.on_event = cancel_at;
    w->opts.payload = &c;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, "1.3.0", &r), MIGRATE_ECANCELED);
    assert_string_equal(c.s.log, "warning|");
    assert_contains(migrate_report_error(r), "the WARNING event");
    migrate_report_free(r);
    assert_ran(w, "");
}

static void test_ecanceled_has_a_name(void **state)
{
    (void)state;
    assert_int_equal(MIGRATE_ECANCELED, -8);
    assert_string_equal(migrate_strerror(MIGRATE_ECANCELED),
                        "the run was cancelled by its event callback");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tu_world_setup, tu_world_teardown)
    const struct CMUnitTest tests[] = {
        T(test_applies_in_order_and_records_each),
        T(test_each_script_is_loaded_once),
        T(test_scripts_past_the_memory_bound_are_loaded_again),
        T(test_a_halt_releases_the_waiting_scripts),
        T(test_state_file_has_details_and_private_modes),
        T(test_second_run_skips_by_state_and_runs_no_lua),
        T(test_check_true_skips_and_is_recorded),
        T(test_migrate_false_with_reason_halts),
        T(test_migrate_false_without_reason_halts),
        T(test_error_halts_with_file_line_and_traceback),
        T(test_check_error_is_reported_as_check),
        T(test_run_resumes_at_failed_migration),
        T(test_resumes_from_prepopulated_state_file_keeping_unknown_keys),
        T(test_post_migrate_check_false_is_not_idempotent),
        T(test_non_boolean_return_names_function_and_value),
        T(test_script_may_return_a_table_of_functions),
        T(test_syntax_error_anywhere_runs_nothing),
        T(test_missing_migrate_function_runs_nothing),
        T(test_dry_run_calls_no_migrate_and_writes_nothing),
        T(test_dry_run_reads_existing_state),
        T(test_state_ahead_of_to_is_a_warning),
        T(test_changed_applied_script_is_a_warning),
        T(test_same_size_edit_with_new_mtime_still_warns),
        T(test_events_and_script_logs),
        T(test_failed_report_json_says_failed),
        T(test_migration_table_describes_the_script),
        T(test_read_json_and_write_json_keep_order_mode_and_name_the_file),
        T(test_null_options_and_null_out_are_accepted),
        T(test_strerror_and_names),
        T(test_cancel_from_plan_runs_nothing),
        T(test_cancel_from_start_of_migration_two_keeps_migration_one),
        T(test_cancel_from_done_keeps_that_migration),
        T(test_cancel_from_a_log_event_stops_a_looping_script),
        T(test_cancel_from_a_log_in_check_fails_that_migration),
        T(test_cancel_from_a_log_stops_the_very_next_statement),
        T(test_cancel_from_a_top_level_log_runs_nothing),
        T(test_cancel_from_a_warning_before_the_plan),
        T(test_ecanceled_has_a_name),
    };
    return cmocka_run_group_tests_name("run", tests, NULL, NULL);
}
