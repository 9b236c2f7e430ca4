/* Regression tests for bugs the reliability work found (RELIABILITY.md):
 * each names what broke and how it was found. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
    tu_world *w = malloc(sizeof *w);
    tu_world_init(w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    tu_world_free(*state);
    free(*state);
    return 0;
}

static void expect_timeout_message(tu_world *w, const char *body)
{
    char src[512];
    snprintf(src, sizeof src, "function check() return false end\nfunction migrate()\n%s\nend\n",
             body);
    tu_script(w, "v1.0.0/001_spin.lua", src);
    w->opts.timeout_ms = 50;
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    const migrate_result *f = migrate_report_failed(r);
    assert_non_null(f);
    if (strstr(f->error, "migrate() timed out after 50 ms") == NULL ||
        strstr(f->error, "invalid option") != NULL)
        fail_msg("timeout message: %s", f->error);
    migrate_report_free(r);
}

/* The timeout was raised with "%u", which lua_pushfstring does not know:
 * the error became "invalid option '%u' to 'lua_pushfstring'" (seen in
 * valgrind's slow runs, where memory tests timed out instead). */
static void test_timeout_message_names_the_limit(void **state)
{
    expect_timeout_message(*state, "while true do end");
}

/* The same message from the path that refuses to run handlers after the
 * deadline (an xpcall message handler). */
static void test_timeout_in_xpcall_handler_names_the_limit(void **state)
{
    expect_timeout_message(*state, "xpcall(function() while true do end end, "
                                   "function() while true do end end)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timeout_message_names_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_in_xpcall_handler_names_the_limit, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
