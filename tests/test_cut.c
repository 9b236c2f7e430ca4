/* test_cut.c - text a script hands the library is kept up to a bound
 * (MIGRATE_MAX_SCRIPT_TEXT, MIGRATE_MAX_LOG_LINE) and marked as cut. */
#include "internal.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The report's copy of a long text: the bound plus the mark, no more. */
static void assert_cut(const char *text, size_t bound)
{
    assert_non_null(text);
    const char *mark = strstr(text, "\xE2\x80\xA6 [cut: ");
    assert_non_null(mark);
    assert_true(strlen(text) <= bound + 64);
    assert_true((size_t)(mark - text) <= bound);
}

static void test_cut_helper(void **state)
{
    (void)state;
    char *s = mig_strndup_cut("abcdef", 6, 6);
    assert_string_equal(s, "abcdef");
    free(s);
    s = mig_strndup_cut("abcdef", 6, 4);
    assert_string_equal(s, "abcd\xE2\x80\xA6 [cut: 2 bytes]");
    free(s);
    /* "é" is two bytes: a cut inside it keeps the character out whole. */
    s = mig_strndup_cut("a\xC3\xA9z", 4, 2);
    assert_string_equal(s, "a\xE2\x80\xA6 [cut: 3 bytes]");
    free(s);
}

static void test_long_reason_is_cut(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_reason.lua",
              "function check() return false end\n"
              "function migrate() return false, ('r'):rep(4 << 20) end\n");
    migrate_report *rep = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &rep), MIGRATE_EFAILED);
    const migrate_result *f = migrate_report_failed(rep);
    assert_non_null(f);
    assert_cut(f->error, MIGRATE_MAX_SCRIPT_TEXT + 512);
    assert_non_null(strstr(f->error, "[cut: "));
    char *json = migrate_report_json(rep);
    assert_non_null(json);
    assert_true(strlen(json) < 2 * MIGRATE_MAX_SCRIPT_TEXT);
    assert_non_null(strstr(json, "[cut: "));
    free(json);
    migrate_report_free(rep);
}

static void test_long_error_is_cut(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_error.lua",
              "function check() return false end\n"
              "function migrate() error(('e'):rep(3 << 20)) end\n");
    migrate_report *rep = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &rep), MIGRATE_EFAILED);
    const migrate_result *f = migrate_report_failed(rep);
    assert_non_null(f);
    assert_cut(f->error, MIGRATE_MAX_SCRIPT_TEXT + 512);
    migrate_report_free(rep);
}

static void test_short_text_is_whole(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_short.lua",
              "function check() return false end\n"
              "function migrate() log.info(('l'):rep(100)) return false, 'plain reason' end\n");
    migrate_report *rep = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &rep), MIGRATE_EFAILED);
    const migrate_result *f = migrate_report_failed(rep);
    assert_non_null(strstr(f->error, "plain reason"));
    assert_null(strstr(f->error, "[cut: "));
    char *json = migrate_report_json(rep);
    assert_null(strstr(json, "[cut: "));
    free(json);
    migrate_report_free(rep);
}

static void test_long_log_line_is_cut(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_log.lua",
              "function check() return false end\n"
              "function migrate() log.info(('l'):rep(1 << 20)) return false, 'x' end\n");
    migrate_report *rep = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &rep), MIGRATE_EFAILED);
    char *json = migrate_report_json(rep);
    assert_non_null(json);
    char needle[64];
    snprintf(needle, sizeof needle, "[cut: %d bytes]", (1 << 20) - MIGRATE_MAX_LOG_LINE);
    assert_non_null(strstr(json, needle));
    assert_true(strlen(json) < 2 * MIGRATE_MAX_LOG_LINE + 4096);
    free(json);
    migrate_report_free(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cut_helper),
        cmocka_unit_test_setup_teardown(test_long_reason_is_cut, tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_long_error_is_cut, tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_short_text_is_whole, tu_world_setup, tu_world_teardown),
        cmocka_unit_test_setup_teardown(test_long_log_line_is_cut, tu_world_setup, tu_world_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
