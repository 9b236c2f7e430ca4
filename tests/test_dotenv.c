/* test_dotenv.c - the dotenv module: what python-dotenv 0.21 gives for the
 * cases a user meets (the full comparison is tests/dotenv/diff.py), its
 * errors, the lazy global in the sandbox, and the .env splicers' refusals. */
#include "testutil.h"

#include "internal.h"

#include <lauxlib.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A state with json, dotenv, and the backend as `backend`. */
static int setup(void **state)
{
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    mig_open_json(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "json");
    mig_open_dotenv(L, true);
    lua_setglobal(L, "backend");
    lua_setglobal(L, "dotenv");
    *state = L;
    return 0;
}

static int teardown(void **state)
{
    lua_close(*state);
    return 0;
}

/* Runs code (its asserts are the test); fails the test if it raises. */
static void run_ok(lua_State *L, const char *code)
{
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("does not compile: %s", lua_tostring(L, -1));
    if (lua_pcall(L, 0, 0, 0) != LUA_OK)
        fail_msg("%s\nraised: %s", code, lua_tostring(L, -1));
}

/* Decoding: the python-dotenv results a .env author relies on. */
static void test_decode_reads_what_python_dotenv_reads(void **state)
{
    run_ok(*state,
           "local function same(text, want)\n"
           "  local got = dotenv.decode(text)\n"
           "  local n = 0\n"
           "  for k, v in pairs(got) do n = n + 1\n"
           "    assert(want[k] == v, ('%q: %s is %q, want %q'):format(text, k, tostring(v), tostring(want[k])))\n"
           "  end\n"
           "  for _ in pairs(want) do n = n - 1 end\n"
           "  assert(n == 0, ('%q: wrong key count'):format(text))\n"
           "end\n"
           "same('export A=1\\n', {A = '1'})\n"
           "same('A=x y  # comment\\n', {A = 'x y'})\n"
           "same('A=x#y\\n', {A = 'x#y'})\n"
           "same('A= #y\\n', {A = '#y'})\n"
           "same(\"A='a\\\\nb\\\\'c'\", {A = 'a\\\\nb\\'c'})\n"
           "same('A=\"a\\\\nb\\\\tc\\\\\"d\"', {A = 'a\\nb\\tc\"d'})\n"
           "same('A=\"line1\\nline2\"\\nB=2', {A = 'line1\\nline2', B = '2'})\n"
           "same('A=1\\r\\nB=2\\r\\n', {A = '1', B = '2'})\n"
           "same('A=1\\nA=2\\n', {A = '2'})\n"
           "same('A\\n', {A = json.null})\n"
           "same('A=1 junk\\nB=2\\n', {A = '1 junk', B = '2'})\n"
           "same('A=\"x\" junk\\nB=2\\n', {B = '2'})\n"
           "same('A=x\\u{a0}# cut: U+00A0 is whitespace\\n', {A = 'x'})\n"
           "same('A=x\\u{a0}\\u{a0}\\n', {A = 'x'})\n"
           "same('\\u{feff}A=1', {['\\u{feff}A'] = '1'})\n"
           "same('A=\\0\\n', {A = '\\0'})\n"
           "same('', {})\n");
}

static void test_decode_keeps_first_definition_order(void **state)
{
    run_ok(*state, "local t = dotenv.decode('B=1\\nA=2\\nB=3\\nC\\n')\n"
                   "assert(json.encode(t) == '{\"B\":\"3\",\"A\":\"2\",\"C\":null}', json.encode(t))\n");
}

static void test_decode_errors_name_the_reason_and_the_line(void **state)
{
    run_ok(*state,
           "local ok, e = pcall(function() local v = dotenv.decode('A=\\xff\\n') return v end)\n"
           "assert(not ok and e:find('^%[string \"[^\"]*\"%]:1: dotenv.decode: invalid UTF%-8 at byte 3$'), e)\n"
           "ok, e = pcall(dotenv.decode, {})\n"
           "assert(not ok and e:find('string expected, got table'), e)\n");
}

/* The splicers: values written so python-dotenv reads them back. */
static void test_set_keeps_everything_but_the_value(void **state)
{
    run_ok(*state,
           "local t = '# c\\nexport A=\"old\"  # why\\nB=1'\n"
           "assert(backend.set(t, {'A'}, 'new') == '# c\\nexport A=\"new\"  # why\\nB=1')\n"
           "assert(backend.set(t, {'B'}, 'a b') == '# c\\nexport A=\"old\"  # why\\nB=\\'a b\\'')\n"
           "assert(backend.set(t, {'C'}, 'x') == t .. '\\nC=x')\n"
           "assert(backend.set('A=1\\r\\n', {'C'}, 'x') == 'A=1\\r\\nC=x\\r\\n')\n"
           "assert(backend.set('A=1 # c\\n', {'A'}, '') == \"A='' # c\\n\")\n"
           "assert(backend.set('A\\n', {'A'}, 'v') == 'A=v\\n')\n");
}

static void test_delete_takes_the_comment_above(void **state)
{
    run_ok(*state,
           "local t = 'A=1\\n\\n# about B\\n# more\\nB=2\\nC=3\\n'\n"
           "assert(backend.delete(t, {'B'}) == 'A=1\\n\\nC=3\\n')\n"
           "assert(backend.delete('# c\\n\\nA=1\\n', {'A'}) == '# c\\n\\n')\n"
           "assert(backend.delete('A=1\\nB=2', {'B'}) == 'A=1')\n");
}

static void test_insert_and_rename(void **state)
{
    run_ok(*state,
           "local t = 'A=1\\n# b\\nB=2\\n'\n"
           "assert(backend.insert(t, {'N'}, 'v', {before = 'B', comment = 'new'}) ==\n"
           "       'A=1\\n# new\\nN=v\\n# b\\nB=2\\n')\n"
           "assert(backend.insert(t, {'N'}, 'v', {after = 'A'}) == 'A=1\\nN=v\\n# b\\nB=2\\n')\n"
           "assert(backend.insert('export A=1\\n', {'N'}, 'v') == 'export A=1\\nexport N=v\\n')\n"
           "assert(backend.rename(\"'A'=1 # c\\n\", {'A'}, 'Z') == \"'Z'=1 # c\\n\")\n");
}

static void test_unsafe_edits_are_refused_with_the_reason(void **state)
{
    run_ok(*state,
           "local function refused(needle, f, ...)\n"
           "  local ok, e = pcall(f, ...)\n"
           "  assert(not ok and e:find(needle, 1, true), tostring(e))\n"
           "end\n"
           "refused('${', backend.set, 'A=1\\n', {'A'}, '${HOME}')\n"
           "refused('backslash', backend.set, 'A=1\\n', {'A'}, 'x\\\\')\n"
           "refused('must be a string, not a number', backend.set, 'A=1\\n', {'A'}, 5)\n"
           "refused('must be a string, not a boolean', backend.set, 'A=1\\n', {'A'}, true)\n"
           "refused('must be a string, not a null', backend.set, 'A=1\\n', {'A'}, json.null)\n"
           "refused('more than once', backend.set, 'A=1\\nA=2\\n', {'A'}, 'x')\n"
           "refused('more than once', backend.rename, 'A=1\\nA=2\\n', {'A'}, 'B')\n"
           "refused('flat', backend.set, 'A=1\\n', {'A', 'B'}, 'x')\n"
           "refused('flat', backend.move, 'A=1\\n', {'A'}, {'B'})\n"
           "refused('no sequences', backend.append, 'A=1\\n', {'A'}, 'x')\n"
           "refused('not a plain .env key', backend.set, 'A=1\\n', {'B C'}, 'x')\n"
           "refused('exists already', backend.rename, 'A=1\\nB=2\\n', {'A'}, 'B')\n"
           "refused('invalid UTF-8', backend.set, 'A=1\\n', {'A'}, '\\xff')\n");
}

/* ---- in the sandbox ------------------------------------------------------ */

static void sandbox_script(tu_world *w, const char *body)
{
    char src[4096];
    snprintf(src, sizeof src, "function check() return false end\n"
                              "function migrate()\n%s\nerror('reached the end')\nend\n",
             body);
    tu_script(w, "v1.0.0/001_env.lua", src);
    migrate_report *r = NULL;
    assert_int_equal(tu_run(w, NULL, NULL, &r), MIGRATE_EFAILED);
    const char *err = migrate_report_failed(r)->error;
    if (strstr(err, "reached the end") == NULL)
        fail_msg("the script did not reach its end: %s", err);
    migrate_report_free(r);
}

static void test_sandbox_opens_dotenv_on_first_use(void **state)
{
    sandbox_script(*state,
                   "assert(rawget(_G, 'dotenv') == nil)\n"
                   "local t = dotenv.decode('export A=\"1\" # c\\nB\\n')\n"
                   "assert(t.A == '1' and t.B == json.null and rawget(_G, 'dotenv') == dotenv)\n"
                   "assert(dotenv.backend == nil)\n"
                   "local ok, e = pcall(function() local v = dotenv.decode('\\xff') return v end)\n"
                   "assert(not ok and e:find('001_env.lua:7: dotenv.decode: invalid UTF%-8'), e)\n");
}

/* Documents: the layer's checks and messages over the .env backend. */
static void test_documents_edit_a_env_file(void **state)
{
    sandbox_script(*state,
                   "local text = '# bot\\nexport TOKEN=abc # old\\nA.B=1\\n'\n"
                   "local d = dotenv.edit(text)\n"
                   "assert(d:get('TOKEN') == 'abc' and d:has({'A.B'}) and not d:has('NOPE'))\n"
                   "assert(table.concat(d:keys(), ',') == 'TOKEN,A.B')\n"
                   "d:set('TOKEN', 'abc') assert(not d:changed())\n"
                   "d:set('TOKEN', 'xyz')\n"
                   "assert(d:text() == '# bot\\nexport TOKEN=xyz # old\\nA.B=1\\n', d:text())\n"
                   "local ok, e = pcall(d.set, d, 'TOKEN', '${HOME}')\n"
                   "assert(not ok and e:find('dotenv.edit: set TOKEN: the value contains', 1, true), e)\n"
                   "ok, e = pcall(d.set, d, 'A.B', '2')\n"
                   "assert(not ok and e:find('a .env file is flat', 1, true), e)\n"
                   "d:set({'A.B'}, '2') d:delete('TOKEN') d:insert('N', 'a b', {comment = 'new'})\n"
                   "assert(tostring(d) == 'A.B=2\\n# new\\nN=\\'a b\\'\\n', tostring(d))\n"
                   "fs.write('~/.env', '# keep\\nK=1')\n"
                   "assert(fs.edit('~/.env', function(doc) doc:rename('K', 'KEY') end))\n"
                   "assert(fs.read('~/.env') == '# keep\\nKEY=1', fs.read('~/.env'))\n"
                   "assert(not fs.edit('~/.env', function(doc) doc:set('KEY', '1') end))\n");
}

static void test_sandbox_dotenv_survives_a_replaced_json(void **state)
{
    sandbox_script(*state, "json = nil\n"
                           "assert(dotenv.decode('A').A ~= nil)\n");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define W(name) cmocka_unit_test_setup_teardown(name, tu_world_setup, tu_world_teardown)
    const struct CMUnitTest tests[] = {
        T(test_decode_reads_what_python_dotenv_reads),
        T(test_decode_keeps_first_definition_order),
        T(test_decode_errors_name_the_reason_and_the_line),
        T(test_set_keeps_everything_but_the_value),
        T(test_delete_takes_the_comment_above),
        T(test_insert_and_rename),
        T(test_unsafe_edits_are_refused_with_the_reason),
        W(test_sandbox_opens_dotenv_on_first_use),
        W(test_documents_edit_a_env_file),
        W(test_sandbox_dotenv_survives_a_replaced_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
