/* Discovery (SPEC §2): which migrations a run covers, in what order, and
 * which trees are refused. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char NOOP[] = "function check() return false end function migrate() return true end";

/* The ids of a discovery, joined with spaces. */
static char *ids(tu_world *w, const char *from, const char *to, int *rc)
{
    migrate_report *r = NULL;
    *rc = migrate_discover(from, to, &w->opts, &r);
    assert_non_null(r);
    char *out = calloc(1, 4096);
    for (size_t i = 0; i < migrate_report_count(r); i++) {
        const migrate_result *m = migrate_report_get(r, i);
        assert_int_equal(m->outcome, MIGRATE_PENDING);
        if (i > 0)
            strcat(out, " ");
        strcat(out, m->id);
    }
    migrate_report_free(r);
    return out;
}

static void expect_ids(tu_world *w, const char *from, const char *to, const char *expected)
{
    int rc;
    char *got = ids(w, from, to, &rc);
    assert_int_equal(rc, MIGRATE_OK);
    assert_string_equal(got, expected);
    free(got);
}

static void three_versions(tu_world *w)
{
    tu_script(w, "v1.0.0/001_a.lua", NOOP);
    tu_script(w, "v1.1.0/001_b.lua", NOOP);
    tu_script(w, "v2.0.0/001_c.lua", NOOP);
}

static void test_range_excludes_from_and_includes_to(void **state)
{
    tu_world *w = *state;
    three_versions(w);
    expect_ids(w, "1.0.0", "1.1.0", "v1.1.0/001_b");
    expect_ids(w, "1.0.0", "2.0.0", "v1.1.0/001_b v2.0.0/001_c");
    expect_ids(w, "0.9.0", "1.0.0", "v1.0.0/001_a");
    expect_ids(w, "1.1.0", "1.1.0", "");
}

static void test_null_bounds_are_unbounded(void **state)
{
    tu_world *w = *state;
    three_versions(w);
    expect_ids(w, NULL, NULL, "v1.0.0/001_a v1.1.0/001_b v2.0.0/001_c");
    expect_ids(w, NULL, "1.1.0", "v1.0.0/001_a v1.1.0/001_b");
    expect_ids(w, "1.0.0", NULL, "v1.1.0/001_b v2.0.0/001_c");
}

static void test_downgrade_is_refused(void **state)
{
    tu_world *w = *state;
    three_versions(w);
    migrate_report *r = NULL;
    assert_int_equal(migrate_discover("2.0.0", "1.0.0", &w->opts, &r), MIGRATE_EINVAL);
    assert_non_null(strstr(migrate_report_error(r), "downgrade"));
    migrate_report_free(r);
    assert_int_equal(migrate_run("2.0.0", "1.0.0", &w->opts, &r), MIGRATE_EINVAL);
    migrate_report_free(r);
}

static void test_malformed_bounds_are_refused(void **state)
{
    tu_world *w = *state;
    migrate_report *r = NULL;
    assert_int_equal(migrate_discover("1.0", "2.0.0", &w->opts, &r), MIGRATE_EINVAL);
    assert_non_null(strstr(migrate_report_error(r), "\"1.0\""));
    migrate_report_free(r);
    assert_int_equal(migrate_discover("1.0.0", "v2.0.0-", &w->opts, NULL), MIGRATE_EINVAL);
}

static void test_order_is_version_then_number_numerically(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.10.0/001_late.lua", NOOP);
    tu_script(w, "v1.9.0/010_y.lua", NOOP);
    tu_script(w, "v1.9.0/2_x.lua", NOOP);
    tu_script(w, "v1.9.0/helpers.lua", "return {}");
    tu_script(w, "v1.10.0-beta.1/001_pre.lua", NOOP);
    tu_script(w, "v1.10.0-beta.11/001_pre.lua", NOOP);
    tu_script(w, "v1.10.0-beta.2/001_pre.lua", NOOP);
    tu_script(w, "README.md", "not a version");
    tu_script(w, "lib/util.lua", "return {}");
    expect_ids(w, NULL, NULL,
               "v1.9.0/2_x v1.9.0/010_y v1.10.0-beta.1/001_pre v1.10.0-beta.2/001_pre "
               "v1.10.0-beta.11/001_pre v1.10.0/001_late");
}

static void expect_manifest_error(tu_world *w, const char *needle1, const char *needle2)
{
    migrate_report *r = NULL;
    assert_int_equal(migrate_discover(NULL, NULL, &w->opts, &r), MIGRATE_EMANIFEST);
    const char *err = migrate_report_error(r);
    assert_non_null(err);
    if (strstr(err, needle1) == NULL || (needle2 && strstr(err, needle2) == NULL))
        fail_msg("error \"%s\" does not name \"%s\" and \"%s\"", err, needle1,
                 needle2 ? needle2 : "");
    migrate_report_free(r);
    /* A run refuses the same tree before running anything. */
    assert_int_equal(migrate_run(NULL, NULL, &w->opts, NULL), MIGRATE_EMANIFEST);
}

static void test_malformed_version_directory_is_an_error(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_a.lua", NOOP);
    tu_script(w, "v1.2/001_b.lua", NOOP);
    expect_manifest_error(w, "v1.2", "SemVer");
}

static void test_version_file_instead_of_directory_is_an_error(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0", "oops");
    expect_manifest_error(w, "v1.0.0", "directory");
}

static void test_equal_precedence_directories_are_an_error(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.2.0/001_a.lua", NOOP);
    tu_script(w, "v1.2.0+build.5/001_b.lua", NOOP);
    expect_manifest_error(w, "v1.2.0+build.5", "same version precedence");
}

static void test_duplicate_numbers_name_both_files(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/1_first.lua", NOOP);
    tu_script(w, "v1.0.0/001_second.lua", NOOP);
    expect_manifest_error(w, "1_first.lua", "001_second.lua");
}

static void test_malformed_numbered_name_is_an_error(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001-rename.lua", NOOP);
    expect_manifest_error(w, "001-rename.lua", "<digits>_<name>.lua");
}

static void test_number_overflow_is_an_error(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/99999999999999999999_big.lua", NOOP);
    expect_manifest_error(w, "99999999999999999999_big.lua", "too large");
}

static void test_missing_migrations_dir_is_an_error(void **state)
{
    tu_world *w = *state;
    w->opts.migrations_dir = "/nonexistent/migrations";
    expect_manifest_error(w, "/nonexistent/migrations", "No such file");
}

static void test_discover_runs_no_lua_and_writes_nothing(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_a.lua", "error('must not run')");
    expect_ids(w, NULL, NULL, "v1.0.0/001_a");
    assert_int_equal(tu_count_entries(w->home), 0);
}

static void test_result_fields(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.2.0-rc.1/007_x-y.lua", NOOP);
    migrate_report *r = NULL;
    assert_int_equal(migrate_discover(NULL, NULL, &w->opts, &r), MIGRATE_OK);
    const migrate_result *m = migrate_report_get(r, 0);
    assert_string_equal(m->id, "v1.2.0-rc.1/007_x-y");
    assert_string_equal(m->version, "1.2.0-rc.1");
    char *path = tu_path(w->migrations, "v1.2.0-rc.1/007_x-y.lua");
    assert_string_equal(m->path, path);
    free(path);
    assert_null(m->error);
    assert_null(migrate_report_get(r, 1));
    assert_null(migrate_report_failed(r));
    assert_null(migrate_report_error(r));
    migrate_report_free(r);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, tu_world_setup, tu_world_teardown)
    const struct CMUnitTest tests[] = {
        T(test_range_excludes_from_and_includes_to),
        T(test_null_bounds_are_unbounded),
        T(test_downgrade_is_refused),
        T(test_malformed_bounds_are_refused),
        T(test_order_is_version_then_number_numerically),
        T(test_malformed_version_directory_is_an_error),
        T(test_version_file_instead_of_directory_is_an_error),
        T(test_equal_precedence_directories_are_an_error),
        T(test_duplicate_numbers_name_both_files),
        T(test_malformed_numbered_name_is_an_error),
        T(test_number_overflow_is_an_error),
        T(test_missing_migrations_dir_is_an_error),
        T(test_discover_runs_no_lua_and_writes_nothing),
        T(test_result_fields),
    };
    return cmocka_run_group_tests_name("discover", tests, NULL, NULL);
}
