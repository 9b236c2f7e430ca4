/* The deadline (SPEC §3): one per call, on every coroutine, uncatchable;
 * C work that never reaches a hook still ends; the Lua 5.4.4 crashes a
 * script can reach are refused; the library refuses a too-small stack.
 *
 * Each escape runs a migrate() that tries to get past the timeout and then
 * writes ~/escaped and returns true. The only assertions: the run fails as
 * a timeout (or with the named error) and ~/escaped does not exist. No
 * elapsed-time bound (the machine is shared); a watchdog alarm turns a
 * hang into a red test instead of a stuck suite. */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The C stack a script may use (src/sandbox.c, test build only). */
extern size_t mig_test_script_stack;

/* Generous under valgrind; a fixed build ends each case in well under 1 s. */
#define WATCHDOG_SECONDS 120

static int setup(void **state)
{
    tu_world_setup(state);
    tu_world *w = *state;
    w->opts.timeout_ms = 200;
    w->opts.memory_limit = 64u << 20;
    alarm(WATCHDOG_SECONDS);
    return 0;
}

static size_t default_budget;

static int teardown(void **state)
{
    alarm(0);
    mig_test_script_stack = default_budget;
    return tu_world_teardown(state);
}

/* Runs a migration whose migrate() is body followed by the escape write.
 * NULL when it failed with a message containing needle and ~/escaped does
 * not exist, else what went wrong (malloc'd). No cmocka assertion, so it
 * may run on another thread. */
static char *stop_problem(tu_world *w, const char *body, const char *needle)
{
    size_t n = strlen(body) + 512;
    char *src = malloc(n), *problem = NULL;
    if (src == NULL)
        return strdup("out of memory");
    snprintf(src, n,
             "function check() return false end\n"
             "function migrate()\n%s\nfs.write('~/escaped', 'the script ran on')\n"
             "return true\nend\n",
             body);
    tu_script(w, "v1.0.0/001_escape.lua", src);
    free(src);
    migrate_report *r = NULL;
    int rc = tu_run(w, NULL, NULL, &r);
    const migrate_result *f = r != NULL ? migrate_report_failed(r) : NULL;
    const char *got = f != NULL ? f->error : r != NULL ? migrate_report_error(r) : NULL;
    if (rc != MIGRATE_EFAILED || f == NULL || strstr(f->error, needle) == NULL) {
        size_t len = strlen(needle) + (got != NULL ? strlen(got) : 0) + 100;
        problem = malloc(len);
        if (problem != NULL)
            snprintf(problem, len, "rc %d, error \"%s\" does not contain \"%s\"", rc,
                     got != NULL ? got : "(none)", needle);
    } else if (tu_exists(w->home, "escaped")) {
        problem = strdup("the script wrote ~/escaped after the failure");
    }
    migrate_report_free(r);
    return problem;
}

static void expect_stopped(tu_world *w, const char *body, const char *needle)
{
    char *problem = stop_problem(w, body, needle);
    if (problem != NULL) {
        print_error("%s\n", problem);
        free(problem);
        fail();
    }
}

#define STOPPED(name, body, needle)                                                            \
    static void test_##name(void **state) { expect_stopped(*state, body, needle); }
#define TIMES_OUT(name, body) STOPPED(name, body, "timed out after 200 ms")

#define LOOP_FN "function() while true do end end"
#define LOOPING_CLOSE "setmetatable({}, {__close = " LOOP_FN "})"

/* ---- every way of catching the timeout ---- */
TIMES_OUT(pcall_swallows, "pcall(" LOOP_FN ")")
TIMES_OUT(pcall_in_a_loop_swallows, "for i = 1, 1000 do pcall(" LOOP_FN ") end")
TIMES_OUT(xpcall_swallows, "xpcall(" LOOP_FN ", function(e) return e end)")
TIMES_OUT(xpcall_handler_loops, "xpcall(error, " LOOP_FN ")")
TIMES_OUT(resume_returns_it, "coroutine.resume(coroutine.create(" LOOP_FN "))")
TIMES_OUT(resume_in_a_loop_returns_it,
          "for i = 1, 1000 do coroutine.resume(coroutine.create(" LOOP_FN ")) end")
TIMES_OUT(wrap_inside_pcall, "pcall(coroutine.wrap(" LOOP_FN "))")
TIMES_OUT(close_of_a_looping_close_handler,
          "local co = coroutine.create(function()\n"
          "  local x <close> = " LOOPING_CLOSE "\n"
          "  coroutine.yield()\n"
          "end)\n"
          "coroutine.resume(co)\n"
          "coroutine.close(co)")
TIMES_OUT(close_handler_in_the_main_thread,
          "pcall(function() local x <close> = " LOOPING_CLOSE " end)")
TIMES_OUT(close_handler_catches_with_pcall,
          "do local x <close> = setmetatable({}, {__close = function() pcall(" LOOP_FN
          ") end}) end")
TIMES_OUT(pcall_inside_a_coroutine,
          "coroutine.wrap(function() pcall(" LOOP_FN ") end)()")
TIMES_OUT(load_reader_swallows, "load(" LOOP_FN ")")
TIMES_OUT(error_object_tostring_in_handler,
          "pcall(function() while true do end end)\n"
          "error(setmetatable({}, {__tostring = " LOOP_FN "}))")
/* No coroutine runs the 1000 instructions a per-thread count needs: a
 * binary tree of coroutines, each doing a little work, 2^120 of them. */
TIMES_OUT(coroutine_spawning_tree,
          "local function node(d)\n"
          "  for i = 1, 100 do end\n"
          "  if d < 120 then\n"
          "    coroutine.resume(coroutine.create(node), d + 1)\n"
          "    coroutine.resume(coroutine.create(node), d + 1)\n"
          "  end\n"
          "end\n"
          "node(1)")
TIMES_OUT(wrap_spawning_tree,
          "local function node(d)\n"
          "  for i = 1, 100 do end\n"
          "  if d < 120 then\n"
          "    pcall(coroutine.wrap(node), d + 1)\n"
          "    pcall(coroutine.wrap(node), d + 1)\n"
          "  end\n"
          "end\n"
          "node(1)")

/* ---- C work that reaches no hook ---- */
/* Each returns "" (at once): then the loop times out. */
TIMES_OUT(rep_of_empty_string,
          "assert(string.rep('', math.maxinteger) == '') while true do end")
TIMES_OUT(rep_with_empty_separator,
          "assert(string.rep('', math.maxinteger, '') == '') while true do end")
TIMES_OUT(table_move_huge_range, "table.move({}, 1, 1 << 60, 1)")
TIMES_OUT(table_move_huge_range_caught, "pcall(table.move, {}, 1, 1 << 60, 2)")
/* Too big for the limit: refused before any byte is written. */
STOPPED(rep_beyond_the_memory_limit, "string.rep('x', 1 << 40)", "memory_limit")

/* ---- the collector ---- */
STOPPED(weak_keys_are_refused, "setmetatable({}, {__mode = 'k'})", "__mode")
STOPPED(weak_values_are_refused, "setmetatable({}, {__mode = 'v'})", "__mode")

/* ---- the Lua 5.4.4 crashes ---- */
/* Each coroutine closes the previous one from its __close handler: stock
 * 5.4.4 does not count these in its C-stack limit and segfaults. */
#define STOPPED_SLOWLY(name, body, needle)                                                     \
    static void test_##name(void **state)                                                      \
    {                                                                                          \
        tu_world *w = *state;                                                                  \
        w->opts.timeout_ms = 60000; /* the bound, not the clock, must stop it */               \
        expect_stopped(w, body, needle);                                                       \
    }
STOPPED_SLOWLY(nested_close_is_bounded,
        "local prev\n"
        "for i = 1, 10000 do\n"
        "  local inner = prev\n"
        "  local co = coroutine.create(function()\n"
        "    local x <close> = setmetatable({}, {__close = function()\n"
        "      if inner then assert(coroutine.close(inner)) end end})\n"
        "    coroutine.yield()\n"
        "  end)\n"
        "  coroutine.resume(co)\n"
        "  prev = co\n"
        "end\n"
        "assert(coroutine.close(prev))",
        "nested too deeply")
/* Caught, the error is an ordinary one (no crash is near): the script sees it. */
STOPPED_SLOWLY(nested_close_is_bounded_even_caught,
        "local prev\n"
        "for i = 1, 10000 do\n"
        "  local inner = prev\n"
        "  local co = coroutine.create(function()\n"
        "    local x <close> = setmetatable({}, {__close = function()\n"
        "      if inner then assert(coroutine.close(inner)) end end})\n"
        "    coroutine.yield()\n"
        "  end)\n"
        "  coroutine.resume(co)\n"
        "  prev = co\n"
        "end\n"
        "local ok, a, b = pcall(coroutine.close, prev)\n"
        "error(tostring(ok) .. ' ' .. tostring(a) .. ' ' .. tostring(b))",
        "true false")

/* ---- C-stack depth, run on a thread of exactly the documented minimum ---- */
typedef struct on_thread {
    tu_world *w;
    const char *body, *needle;
    char *problem;
} on_thread;

static void *run_stopped(void *arg)
{
    on_thread *t = arg;
    t->problem = stop_problem(t->w, t->body, t->needle);
    return NULL;
}

/* On a stack of exactly `stack` bytes, ours: pthread_attr_setstacksize
 * would let glibc hand out a bigger cached stack of an earlier thread. */
static void run_on_stack(size_t stack, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t th;
    void *mem = NULL;
    assert_int_equal(posix_memalign(&mem, 65536, stack), 0);
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstack(&attr, mem, stack), 0);
    assert_int_equal(pthread_create(&th, &attr, fn, arg), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    free(mem);
}

static void expect_stopped_on_min_stack(tu_world *w, const char *body, const char *needle)
{
    w->opts.timeout_ms = 60000; /* the depth guard, not the clock, must stop it */
    on_thread t = {w, body, needle, NULL};
    run_on_stack(MIGRATE_MIN_STACK, run_stopped, &t);
    if (t.problem != NULL) {
        print_error("%s\n", t.problem);
        free(t.problem);
        fail();
    }
}

#define DEEP(name, body)                                                                       \
    static void test_##name(void **state)                                                      \
    {                                                                                          \
        expect_stopped_on_min_stack(*state, body, "C stack");                                  \
    }

DEEP(deep_gsub_callbacks,
     "local function f(s) return (s:gsub('.', f)) end\nf(string.rep('x', 400))")
DEEP(deep_sort_comparators,
     "local function f() table.sort({3, 2, 1}, function(a, b) f() return a < b end) end\nf()")
DEEP(deep_tostring_metamethods,
     "local mt = {}\nmt.__tostring = function(v) return string.format('%s %s', v.next or '',\n"
     "  string.rep('y', 10)) end\n"
     "local v\nfor i = 1, 1000 do v = setmetatable({next = v}, mt) end\ntostring(v)")
DEEP(deep_index_metamethods_through_c,
     "local t = setmetatable({}, {__index = function(t, k) return table.concat(t, '', 1, 1) end})\n"
     "local x = t[1]")
DEEP(deep_resume_chain,
     "local function f() coroutine.wrap(f)() end\nf()")

/* ---- the C-stack guard itself ----
 * At MIGRATE_MIN_STACK none of the chains above gets past Lua's own limit
 * of 200 nested C calls (the deepest, gsub callbacks, uses about 420 KiB
 * of the 512 KiB a script may: RELIABILITY.md), so they pass without the
 * guard too. Here the test build's budget is 64 KiB, which every chain
 * passes long before Lua's limit: the guard must stop it with its own
 * error, and that error is fatal, so a script that catches it with pcall
 * and goes on still fails and writes nothing. */

static void expect_guard_stops(tu_world *w, const char *body)
{
    mig_test_script_stack = 64u << 10; /* teardown restores it */
    w->opts.timeout_ms = 10000;         /* without the guard: a red test, not a hang */
    on_thread t = {w, body, "deeper than a migration may", NULL};
    run_on_stack(MIGRATE_MIN_STACK, run_stopped, &t);
    if (t.problem != NULL) {
        print_error("%s\n", t.problem);
        free(t.problem);
        fail();
    }
}

static void test_guard_stops_gsub_chain_caught_by_pcall(void **state)
{
    expect_guard_stops(*state,
                       "local function f(s) return (s:gsub('.', f)) end\n"
                       "for i = 1, 100 do pcall(f, 'x') end");
}

/* gsub callback, sort comparator, __index metamethod and pcall in turn. */
static void test_guard_stops_mixed_chain(void **state)
{
    expect_guard_stops(*state,
                       "local n = 0\n"
                       "local function f(s)\n"
                       "  n = n + 1\n"
                       "  local k = n % 4\n"
                       "  if k == 0 then s:gsub('.', f)\n"
                       "  elseif k == 1 then table.sort({2, 1}, function(a, b) f(s) return a < b end)\n"
                       "  elseif k == 2 then local _ = setmetatable({}, {__index = function() f(s) end}).x\n"
                       "  else pcall(f, s) end\n"
                       "end\n"
                       "pcall(f, 'x')");
}

/* ---- the stack the library needs ---- */
typedef struct small_stack_run {
    tu_world *w;
    int rc;
    char message[512];
} small_stack_run;

static void *run_plain(void *arg)
{
    small_stack_run *s = arg;
    migrate_report *r = NULL;
    s->rc = tu_run(s->w, NULL, NULL, &r);
    const char *e = r != NULL ? migrate_report_error(r) : NULL;
    snprintf(s->message, sizeof s->message, "%s", e != NULL ? e : "");
    migrate_report_free(r);
    return NULL;
}

static void test_small_stack_is_refused(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    small_stack_run s = {w, -1, ""};
    run_on_stack(MIGRATE_MIN_STACK / 4, run_plain, &s);
    assert_int_equal(s.rc, MIGRATE_EINVAL);
    if (strstr(s.message, "stack") == NULL)
        fail_msg("message \"%s\" does not name the stack", s.message);
    char *ran = tu_ran(w);
    assert_string_equal(ran, "");
    free(ran);
}

static void test_min_stack_is_enough(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    small_stack_run s = {w, -1, ""};
    run_on_stack(MIGRATE_MIN_STACK, run_plain, &s);
    assert_int_equal(s.rc, MIGRATE_OK);
}

/* The main thread's stack is RLIMIT_STACK below its top (glibc's guess
 * from /proc/self/maps is not used for it; see mig_stack_check). In a
 * forked child with the soft limit set to `limit` (RLIM_INFINITY: lifted to
 * the hard limit), so it does not stay on this process. Exit status 0 is
 * "refused, naming RLIMIT_STACK", 1 "ran", 2 "failed otherwise (or refused
 * without saying what to raise)", 3 "could not set the limit". */
static int main_thread_run(tu_world *w, rlim_t limit)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_STACK, &rl) != 0)
            _exit(3);
        rl.rlim_cur = limit == RLIM_INFINITY ? rl.rlim_max : limit;
        if (setrlimit(RLIMIT_STACK, &rl) != 0)
            _exit(3);
        migrate_report *r = NULL;
        int rc = tu_run(w, NULL, NULL, &r);
        const char *e = r != NULL ? migrate_report_error(r) : NULL;
        int code = rc == MIGRATE_OK ? 1
                   : rc == MIGRATE_EINVAL && e != NULL && strstr(e, "RLIMIT_STACK") != NULL ? 0
                   : 2;
        migrate_report_free(r);
        _exit(code);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_main_thread_small_rlimit_is_refused(void **state)
{
    tu_world *w = *state;
    tu_logging_script(w, "v1.0.0/001_a.lua");
    assert_int_equal(main_thread_run(w, 256u << 10), 0);
    char *ran = tu_ran(w);
    assert_string_equal(ran, "");
    free(ran);
    /* The same process with the limit it was started with runs. */
    assert_int_equal(main_thread_run(w, RLIM_INFINITY), 1);
    ran = tu_ran(w);
    assert_string_equal(ran, "v1.0.0/001_a\n");
    free(ran);
}

/* What a script may still do: none of the guards gets in its way. */
static void test_ordinary_coroutines_and_pcall_still_work(void **state)
{
    tu_world *w = *state;
    tu_script(w, "v1.0.0/001_ok.lua",
              "function check() return fs.exists('~/done') end\n"
              "function migrate()\n"
              "  local ok, e = pcall(error, 'x')\n"
              "  assert(not ok and e == 'x')\n"
              "  assert(select(2, xpcall(error, function(m) return 'h:' .. m end, 'y')) == 'h:y')\n"
              "  local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
              "  assert(co(1) == 2 and co(5) == 10)\n"
              "  local c2 = coroutine.create(function() local x <close> = setmetatable({}, {__close = function() end}) coroutine.yield() end)\n"
              "  coroutine.resume(c2)\n"
              "  assert(coroutine.close(c2))\n"
              "  assert(load(function() return nil end))\n"
              "  local t = {5, 3, 9, 1}\n"
              "  table.sort(t) assert(table.concat(t, ',') == '1,3,5,9')\n"
              "  table.sort(t, function(a, b) return a > b end) assert(t[1] == 9)\n"
              "  assert(table.concat(table.move({1, 2, 3}, 1, 3, 2), ',') == '1,1,2,3')\n"
              "  assert(string.rep('ab', 3, '-') == 'ab-ab-ab' and string.rep('x', 0) == '')\n"
              "  assert(select('#', table.unpack({1, 2, 3})) == 3)\n"
              "  local function depth(n) if n == 0 then return 0 end\n"
              "    return 1 + select(2, ('x'):gsub('x', function() return tostring(depth(n - 1)) end)) end\n"
              "  depth(20)\n"
              "  fs.write('~/done', 'yes')\n"
              "  return true\n"
              "end\n");
    migrate_report *r = NULL;
    int rc = tu_run(w, NULL, NULL, &r);
    if (rc != MIGRATE_OK)
        fail_msg("%s", migrate_report_failed(r) ? migrate_report_failed(r)->error : "?");
    assert_true(tu_exists(w->home, "done"));
    migrate_report_free(r);
}

#define T(name) cmocka_unit_test_setup_teardown(test_##name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(pcall_swallows),
        T(pcall_in_a_loop_swallows),
        T(xpcall_swallows),
        T(xpcall_handler_loops),
        T(resume_returns_it),
        T(resume_in_a_loop_returns_it),
        T(wrap_inside_pcall),
        T(close_of_a_looping_close_handler),
        T(close_handler_in_the_main_thread),
        T(close_handler_catches_with_pcall),
        T(pcall_inside_a_coroutine),
        T(load_reader_swallows),
        T(error_object_tostring_in_handler),
        T(coroutine_spawning_tree),
        T(wrap_spawning_tree),
        T(rep_of_empty_string),
        T(rep_with_empty_separator),
        T(table_move_huge_range),
        T(table_move_huge_range_caught),
        T(rep_beyond_the_memory_limit),
        T(weak_keys_are_refused),
        T(weak_values_are_refused),
        T(nested_close_is_bounded),
        T(nested_close_is_bounded_even_caught),
        T(deep_gsub_callbacks),
        T(deep_sort_comparators),
        T(deep_tostring_metamethods),
        T(deep_index_metamethods_through_c),
        T(deep_resume_chain),
        T(guard_stops_gsub_chain_caught_by_pcall),
        T(guard_stops_mixed_chain),
        T(small_stack_is_refused),
        T(min_stack_is_enough),
        T(main_thread_small_rlimit_is_refused),
        T(ordinary_coroutines_and_pcall_still_work),
    };
    default_budget = mig_test_script_stack;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
