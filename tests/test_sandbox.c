/* The sandbox (SPEC §3): each known way out of a Lua sandbox fails as an
 * ordinary migration failure, and the host process carries on. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int setup(void **state)
{
    tu_world_setup(state);
    tu_world *w = *state;
    w->opts.timeout_ms = 300;
    w->opts.memory_limit = 16u << 20;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs a migration whose migrate() is `body`; expects it to fail with a
 * message containing `needle`, within a few seconds. */
static void expect_failure(tu_world *w, const char *body, const char *needle)
{
    char src[4096];
    snprintf(src, sizeof src, "function check() return false end\nfunction migrate()\n%s\nend\n",
             body);
    tu_script(w, "v1.0.0/001_escape.lua", src);
    migrate_report *r = NULL;
    double t0 = now();
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_true(now() - t0 < 10.0);
    const migrate_result *f = migrate_report_failed(r);
    assert_non_null(f);
    if (strstr(f->error, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", f->error, needle);
    migrate_report_free(r);
}

/* Runs a migration whose migrate() is `body` and must succeed. */
static void expect_success(tu_world *w, const char *body)
{
    char src[4096];
    snprintf(src, sizeof src, "function check() return migration.done == 1 end\n"
                              "function migrate()\n%s\nreturn false, 'reached the end'\nend\n",
             body);
    tu_script(w, "v1.0.0/001_ok.lua", src);
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    const char *err = migrate_report_failed(r)->error;
    if (strstr(err, "reached the end") == NULL)
        fail_msg("the script did not reach its end: %s", err);
    migrate_report_free(r);
}

#define ESCAPE(name, body, needle)                                                           \
    static void test_##name(void **state) { expect_failure(*state, body, needle); }

ESCAPE(os_exit_is_absent, "os.exit(3)", "field 'exit'")
ESCAPE(os_execute_is_absent, "os.execute('touch /tmp/pwned')", "field 'execute'")
ESCAPE(os_remove_is_absent, "os.remove('/tmp/x')", "field 'remove'")
ESCAPE(io_is_absent, "io.open('/etc/passwd')", "global 'io'")
ESCAPE(debug_is_absent, "debug.getregistry()", "global 'debug'")
ESCAPE(package_loadlib_is_absent, "package.loadlib('libc.so.6', 'system')", "global 'package'")
ESCAPE(dofile_is_absent, "dofile('/etc/passwd')", "global 'dofile'")
ESCAPE(loadfile_is_absent, "loadfile('/etc/passwd')", "global 'loadfile'")
ESCAPE(string_dump_is_absent, "string.dump(function() end)", "field 'dump'")
ESCAPE(string_dump_method_is_absent, "local s = 'x'; s:dump()", "method 'dump'")
ESCAPE(binary_chunk_is_refused, "assert(load('\\27Lua\\84\\0'))", "binary chunk")
ESCAPE(binary_mode_is_refused, "load('return 1', 'x', 'b')", "only text chunks")
ESCAPE(gc_metamethod_is_refused,
       "setmetatable({}, {__gc = function() while true do end end})", "__gc")
ESCAPE(collectgarbage_steering_is_refused, "collectgarbage('stop')", "only \"count\"")
ESCAPE(require_path_is_refused, "require('../../../etc/passwd')", "not a module name")
ESCAPE(require_of_c_module_is_not_found, "require('io')", "module 'io' not found")
ESCAPE(endless_loop_times_out, "while true do end", "001_escape.lua:3: migrate() timed out after 300 ms")
ESCAPE(pcall_cannot_catch_the_timeout,
       "while true do pcall(function() while true do end end) end", "timed out")
ESCAPE(xpcall_cannot_catch_the_timeout,
       "local ok = xpcall(function() while true do end end, function(e) return e end)\n"
       "while true do end",
       "timed out")
ESCAPE(coroutine_cannot_hide_from_the_timeout,
       "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
       "timed out")
ESCAPE(error_handler_loop_times_out,
       "xpcall(error, function() while true do end end)", "timed out")
ESCAPE(close_handler_of_wrapped_coroutine_times_out,
       "local f = coroutine.wrap(function()\n"
       "  local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
       "  while true do end\n"
       "end)\n"
       "f()",
       "timed out")
ESCAPE(close_handler_of_closed_coroutine_times_out,
       "local co = coroutine.create(function()\n"
       "  local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
       "  while true do end\n"
       "end)\n"
       "coroutine.resume(co)\n"
       "coroutine.close(co)",
       "timed out")
ESCAPE(wrapped_coroutine_errors_carry_their_position,
       "coroutine.wrap(function() error('inner') end)()", "001_escape.lua:3: inner")
/* A long timeout, so the memory limit is what stops it even under valgrind. */
static void test_memory_bomb_hits_the_limit(void **state)
{
    tu_world *w = *state;
    w->opts.timeout_ms = 60000;
    expect_failure(w, "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end",
                   "memory limit of 16777216 bytes exceeded");
}
ESCAPE(one_huge_allocation_hits_the_limit, "local s = string.rep('x', 1e9)", "memory")
ESCAPE(pcall_around_memory_bomb_still_stops,
       "while true do pcall(string.rep, 'x', 1e9) end", "timed out")
/* With room enough, Lua's own stack limit stops it (with 16 MiB, the memory
 * limit comes first: also a clean failure, tested above). */
static void test_deep_recursion_is_an_error(void **state)
{
    tu_world *w = *state;
    w->opts.memory_limit = 256u << 20;
    w->opts.timeout_ms = 60000;
    expect_failure(w, "local function f(n) return 1 + f(n + 1) end return f(1)", "stack overflow");
}
ESCAPE(write_outside_roots_is_refused, "fs.write('/etc/libmigrate-test', 'x')",
       "outside allowed roots")

static void test_safe_library_functions_work(void **state)
{
    expect_success(*state,
                   "assert(load('return 1 + 1')() == 2)\n"
                   "assert(string.format('%03d', 7) == '007')\n"
                   "assert(table.concat({1, 2}, ',') == '1,2')\n"
                   "assert(math.max(1, 5) == 5 and utf8.char(233) == '\\u{e9}')\n"
                   "assert(type(os.time()) == 'number' and type(os.clock()) == 'number')\n"
                   "assert(os.date('!%Y', 0) == '1970' and os.difftime(2, 1) == 1)\n"
                   "assert(os.getenv('HOME') ~= nil or true)\n"
                   "assert(collectgarbage('count') > 0)\n"
                   "assert(coroutine.wrap(function() coroutine.yield(5) end)() == 5)\n"
                   "local gen = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
                   "assert(gen(1) == 2 and gen(10) == 20)\n"
                   "local closed = false\n"
                   "local co = coroutine.create(function()\n"
                   "  local x <close> = setmetatable({}, {__close = function() closed = true end})\n"
                   "  coroutine.yield()\n"
                   "end)\n"
                   "coroutine.resume(co) assert(coroutine.close(co) and closed)\n"
                   "local okx, v = xpcall(function() return 7 end, print) assert(okx and v == 7)\n"
                   "local okh, h = xpcall(error, function(e) return 'handled ' .. tostring(e) end, 'x')\n"
                   "assert(not okh and h == 'handled x', h)\n"
                   "assert(getmetatable('') == false)\n"
                   "assert(select('#', pcall(error)) == 2)\n"
                   "local ok, e = pcall(error, 'caught') assert(not ok and e == 'caught')\n"
                   "assert(setmetatable({}, {__index = {x = 1}}).x == 1)\n"
                   "assert(semver.compare('1.10.0', '1.9.0') == 1)\n"
                   "assert(json ~= nil and log ~= nil and fs ~= nil)\n");
}

/* table, math, utf8, coroutine and os open on first use; a script sees
 * them as if they had always been there, except through rawget. */
static void test_libraries_open_on_first_use(void **state)
{
    expect_success(*state, "assert(rawget(_G, 'math') == nil and getmetatable(_G) == false)\n"
                           "assert(math.floor(1.5) == 1 and rawget(_G, 'math') == math)\n"
                           "assert(os.exit == nil and os.execute == nil and os.remove == nil)\n"
                           "assert(os.getenv ~= nil and os.time ~= nil)\n");
}

static void test_a_library_assigned_before_use_stays_assigned(void **state)
{
    expect_success(*state, "math = nil assert(math == nil)\n"
                           "table = 5 assert(table == 5)\n"
                           "local co = coroutine assert(co.wrap(function() end))\n"
                           "coroutine = nil assert(coroutine == nil)\n");
}

static void test_pairs_of_globals_lists_every_library(void **state)
{
    expect_success(*state,
                   "local seen = {}\n"
                   "for k in pairs(_G) do seen[k] = true end\n"
                   "for _, n in ipairs({'table', 'math', 'utf8', 'coroutine', 'os', 'string',\n"
                   "                    'fs', 'json', 'log', 'migration', 'semver'}) do\n"
                   "  assert(seen[n], n)\n"
                   "end\n");
}

/* The strict-globals idiom replaces the globals' metatable. */
static void test_strict_globals_keep_every_library(void **state)
{
    expect_success(*state,
                   "setmetatable(_G, {__index = function(_, k)\n"
                   "  error('undefined global ' .. tostring(k), 2)\n"
                   "end})\n"
                   "assert(math.floor(2.5) == 2 and utf8.char(65) == 'A' and os.time())\n"
                   "assert(table.concat({1}) == '1')\n"
                   "local ok, e = pcall(function() return undefined_thing end)\n"
                   "assert(not ok and e:find('undefined global undefined_thing'), e)\n"
                   "assert(coroutine.wrap(function() coroutine.yield(3) end)() == 3)\n");
}

static void test_top_level_cannot_write(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_eager.lua",
              "fs.write('~/eager', 'x')\n"
              "function check() return false end function migrate() return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EMANIFEST);
    assert_non_null(strstr(migrate_report_error(r), "top level"));
    migrate_report_free(r);
    assert_false(tu_exists(w->home, "eager"));
}

/* What the top level read would be stale by the time migrate() runs: it
 * runs once, in the compile pass, before any migration. Path helpers that
 * touch nothing stay usable there, in a required module too. */
static void test_top_level_cannot_read(void **state)
{
    tu_world *w = *state;
    tu_write(w->home, "seen", "x");
    tu_script(w, "v1.0.0/paths.lua", "return {seen = fs.join(fs.expand('~'), 'seen')}\n");
    tu_script(w, "v1.0.0/001_paths.lua",
              "local paths = require('paths')\n"
              "function check() return fs.exists(paths.seen) end\n"
              "function migrate() return true end\n");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    static const char *const reads[] = {"fs.read('~/seen')", "fs.exists('~/seen')",
                                        "fs.list('~')", "fs.stat('~/seen')",
                                        "fs.read_json('~/seen')"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        char lua[256];
        snprintf(lua, sizeof lua,
                 "local early = %s\n"
                 "function check() return false end function migrate() return true end\n",
                 reads[i]);
        tu_script(w, "v1.1.0/001_early.lua", lua);
        migrate_report *r = NULL;
        assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EMANIFEST);
        const char *e = migrate_report_error(r);
        assert_non_null(strstr(e, "001_early.lua:1:"));
        assert_non_null(strstr(e, "not allowed: the top level of a script runs when it is loaded"));
        assert_non_null(strstr(e, "read in check() or migrate()"));
        assert_int_equal(migrate_report_get(r, 1)->outcome, MIGRATE_NOT_RUN);
        migrate_report_free(r);
    }
}

static void test_check_cannot_write(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_nosy.lua",
              "function check() fs.write('~/nosy', 'x') return false end\n"
              "function migrate() return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "check() must not change anything"));
    migrate_report_free(r);
    assert_false(tu_exists(w->home, "nosy"));
}

static void test_state_file_is_not_writable_from_a_script(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
    char *before = tu_read(w->state_path, NULL);
    tu_script(w, "v1.1.0/001_tamper.lua",
              "function check() return false end\n"
              "function migrate() fs.write('~/.teleclaude/migration_state.json', '{}') end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "not writable from a script"));
    migrate_report_free(r);
    char *after = tu_read(w->state_path, NULL);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_require_finds_sibling_then_lib(void **state)
{
    tu_world *w = *state;
    tu_script(w, "lib/textutil.lua", "return { shout = function(s) return s:upper() end }");
    tu_script(w, "lib/shared/paths.lua", "return { config = '~/config.json' }");
    tu_script(w, "v1.0.0/helpers.lua", "local M = {} M.where = 'sibling' return M");
    tu_script(w, "lib/helpers.lua", "return { where = 'lib' }");
    tu_script(w, "v1.0.0/001_uses.lua",
              "local helpers = require('helpers')\n"
              "local text = require('textutil')\n"
              "local paths = require('shared.paths')\n"
              "assert(require('helpers') == helpers)\n"
              "function check() return false end\n"
              "function migrate()\n"
              "  return false, helpers.where .. ' ' .. text.shout('lib') .. ' ' .. paths.config\n"
              "end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "sibling LIB ~/config.json"));
    migrate_report_free(r);
}

static void test_require_reports_module_errors_with_their_file(void **state)
{
    tu_world *w = *state;
    tu_script(w, "lib/broken.lua", "local x = \n");
    tu_script(w, "v1.0.0/001_uses.lua",
              "function check() return false end\n"
              "function migrate() require('broken') return true end\n");
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    assert_non_null(strstr(migrate_report_failed(r)->error, "lib/broken.lua:2:"));
    migrate_report_free(r);
}

static void test_host_survives_every_escape_in_one_process(void **state)
{
    /* All of the above ran in this very process; it is still here, and a
     * normal run still works. */
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_fine.lua",
              "function check() return fs.exists('~/fine') end\n"
              "function migrate() fs.write('~/fine', 'ok') return true end\n");
    assert_int_equal(tu_run(w, NULL, NULL, NULL), MIGRATE_OK);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, tu_world_teardown)
    const struct CMUnitTest tests[] = {
        T(os_exit_is_absent),
        T(os_execute_is_absent),
        T(os_remove_is_absent),
        T(io_is_absent),
        T(debug_is_absent),
        T(package_loadlib_is_absent),
        T(dofile_is_absent),
        T(loadfile_is_absent),
        T(string_dump_is_absent),
        T(string_dump_method_is_absent),
        T(binary_chunk_is_refused),
        T(binary_mode_is_refused),
        T(gc_metamethod_is_refused),
        T(collectgarbage_steering_is_refused),
        T(require_path_is_refused),
        T(require_of_c_module_is_not_found),
        T(endless_loop_times_out),
        T(pcall_cannot_catch_the_timeout),
        T(xpcall_cannot_catch_the_timeout),
        T(coroutine_cannot_hide_from_the_timeout),
        T(error_handler_loop_times_out),
        T(close_handler_of_wrapped_coroutine_times_out),
        T(close_handler_of_closed_coroutine_times_out),
        T(wrapped_coroutine_errors_carry_their_position),
        T(memory_bomb_hits_the_limit),
        T(one_huge_allocation_hits_the_limit),
        T(pcall_around_memory_bomb_still_stops),
        T(deep_recursion_is_an_error),
        T(write_outside_roots_is_refused),
        T(safe_library_functions_work),
        T(libraries_open_on_first_use),
        T(a_library_assigned_before_use_stays_assigned),
        T(pairs_of_globals_lists_every_library),
        T(strict_globals_keep_every_library),
        T(top_level_cannot_write),
        T(top_level_cannot_read),
        T(check_cannot_write),
        T(state_file_is_not_writable_from_a_script),
        T(require_finds_sibling_then_lib),
        T(require_reports_module_errors_with_their_file),
        T(host_survives_every_escape_in_one_process),
    };
    return cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
}
